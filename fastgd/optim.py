"""Optimizers with torch.optim's names, defaults and update equations, on NumPy arrays.

Each optimizer class carries the description of its algorithm (``algorithm``):
its options and their kinds (which set their ranges), the state arrays it
keeps and when each is needed, whether it counts steps, rules between
options, and the name of its compiled kernel.  Everything else follows from
that description: the option checks, state creation, ``state_dict``'s
layout, and the compiled step (a ``Plan`` of the engine, built from the
description and the optimizer's arrays).

A step is one compiled call for all groups.  It takes the arrays and options
as they are when they are ready (contiguous arrays of the parameters' dtype
and shape, plain numbers and bools, the state the options need); otherwise it
changes nothing and says what is missing, and the Python layer here checks
in full (and raises), converts, creates state or rebuilds the plan, before
the call is made again.  ``fastgd.reference`` overrides ``_update_all`` with
plain NumPy.
"""
import copy
import copyreg
import functools
import inspect
import math
import operator
import os
import reprlib
import threading
import types
from typing import NamedTuple

import numpy as np

from . import _checks
from ._backend import engine

__all__ = ["Optimizer", "Parameter", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "Adadelta", "Lion", "RAdam", "NAdam", "MAX_THREADS"]
# The description of an algorithm (Optimizer.algorithm): Algorithm, Option, State, ScalarState, Rule.

#: the most threads a step may run on (n_threads)
MAX_THREADS = engine.MAX_THREADS
#: the largest step count (2**53), which a step keeps and a state dict may hold (see the engine)
MAX_STEP = engine.MAX_STEP
#: the keys learning-rate schedulers keep in a param group beside the options (fastgd.lr_scheduler
#: writes these, as torch's do): a new group may carry them; any other key not an option is refused
SCHEDULER_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum", "swa_lr"})
#: torch's keywords that choose among its implementations or serve its autograd and CUDA graphs: a
#: class takes those its torch namesake takes, in its constructor and its groups (_torch_keywords)
TORCH_KEYWORDS = ("foreach", "fused", "capturable", "differentiable")

# what a compiled step returns (src/_engine.pxi)
_DONE, _PARAMS_CHANGED, _ARRAYS_UNREADY, _OPTIONS_UNCHECKED, _STATE_MISMATCH, _STATE_MISSING, _STEP_OVERFLOWS = (
    int(engine.Outcome.DONE), int(engine.Outcome.PARAMS_CHANGED), int(engine.Outcome.ARRAYS_UNREADY),
    int(engine.Outcome.OPTIONS_UNCHECKED), int(engine.Outcome.STATE_MISMATCH), int(engine.Outcome.STATE_MISSING),
    int(engine.Outcome.STEP_OVERFLOWS))


class Option(NamedTuple):
    """One option of an algorithm.  kind: "rate" (finite: a learning rate, which a group may
    set below 0 as torch's may; the constructor's must be >= 0), "number" (finite, >= 0),
    "fraction" (in [0, 1)), "unit" (in [0, 1]), "fractions" (a pair of fractions) or "flag" (True or
    False); fields: the names of its values in the kernel's options (src/_kernels.pxd), None for a
    value the kernel does not read (default: the option's own name)."""
    name: str
    kind: str
    fields: tuple = None


class State(NamedTuple):
    """One state array kept per parameter, named as torch names it.  needed_when: the option
    whose being nonzero (or True) makes it needed (None: always needed), which the compiled
    plan alone reads off the options (Plan.missing); initial: its first
    value, or the name of the option that gives it; from_gradient: its first update sets it to
    the gradient (torch's SGD momentum buffer), and until then it is not saved."""
    name: str
    needed_when: str = None
    initial: object = 0.0
    from_gradient: bool = False

    def new(self, group, param):
        """A new array of this state for param of a group with these options, at its initial value."""
        initial = group[self.initial] if isinstance(self.initial, str) else self.initial
        return np.full(param.shape, initial, dtype=param.dtype)


class ScalarState(NamedTuple):
    """A number kept per parameter (NAdam's mu_product), saved by state_dict as torch saves it;
    the kernel's step scalars read and update it.  kind: its range, as an option's (_checks.KINDS)."""
    name: str
    initial: float
    kind: str = "rate"


class Rule(NamedTuple):
    """A check between options: check(options, where) raises ValueError.  A change of any option
    it reads is checked in Python (the compiled step's fast checks are per option); a rule
    constructor_only is checked on the constructor's own options only (and a functional step's),
    as torch checks it: groups, given or changed later, step as torch steps them."""
    reads: tuple
    check: object
    constructor_only: bool = False


class Algorithm(NamedTuple):
    """All that fastgd needs to know of an algorithm, but its update equations (the kernel).
    scalar_state: ScalarStates kept per parameter; state_at_start: the constructor's parameters
    have the state that no option decides from the start (torch's Adagrad's do); others get it
    at their first step."""
    kernel: str
    options: tuple
    state: tuple
    counts_steps: bool = True
    rules: tuple = ()
    state_at_start: bool = False
    scalar_state: tuple = ()

    def new_scalars(self, count):
        """The scalar state of `count` new parameters: one row each, at the initial values."""
        return np.tile(np.array([s.initial for s in self.scalar_state], dtype=np.float64), (count, 1))

    def engine_options(self):
        """The options as the compiled Plan takes them: (name, kind, low, high, fields, ruled)."""
        ruled = {name for rule in self.rules if not rule.constructor_only for name in rule.reads}
        described = []
        for option in self.options:
            kind, low, high = _checks.KINDS[option.kind]
            fields = option.fields or (option.name,)
            described.append((option.name, kind, low, high, fields, option.name in ruled))
        return tuple(described)

    def engine_state(self):
        """The state as the compiled Plan takes it: ((name, needed_when) per state array, the
        scalar state's names)."""
        return (tuple((state.name, state.needed_when) for state in self.state),
                tuple(scalar.name for scalar in self.scalar_state))


def _missing_state(algorithm, plan, groups, params):
    """(State, i, array) for each state array that the compiled plan found missing at the step
    or check that returned STATE_MISSING (Plan.missing: which state the options need is decided
    there alone), made as its State says from groups, the options that call read."""
    described = {state.name: state for state in algorithm.state}
    return [(described[name], i, described[name].new(groups[g], params[i])) for name, i, g in plan.missing()]


class Parameter:
    """An array updated in place, with the gradient that the next step reads.

    ``opt.step()`` without arguments reads every ``.grad`` (a parameter whose
    ``.grad`` is None is skipped, as in torch); ``opt.zero_grad()`` clears them.

    It behaves as its array ``.data``: ``np.asarray(p)`` is ``p.data`` itself
    (no copy), NumPy functions, ufuncs (a Parameter anywhere in their
    arguments, ``where=`` too, as its data), operators (``@`` on either side),
    comparisons, indexing, iteration, ``str`` and ``repr`` (the class's name
    for ``array``) act on the data (the operators are the data's own), in-place operators
    (``p -= ...``) and item assignment change it in place, ``x in p`` is the
    array's membership, and the array's
    attributes and methods (``p.shape``, ``p.T``, ``p.sum()``) are the data's,
    setting them too (``p.shape = (2, 3)`` reshapes the data in place).
    ``format(p, spec)`` and ``round(p)`` are the array's: a 0-d one formats
    as its number (``f"{p:.2f}"``), a larger one only with an empty spec, and
    NumPy's arrays have no ``round()`` (``np.round(p)`` rounds); ``format(p,
    "")`` is ``str(p)``, as for any object.  ``copy.copy(p)`` copies the data,
    as ``copy.copy`` of an array does, and is ``copy.deepcopy(p)``: the
    gradient is copied too, so that neither copy's arrays are the other's
    (torch's copies of an ``nn.Parameter`` drop it); pickles and copies of a
    subclass are of the subclass, with its attributes (or its own
    ``__getstate__``/``__setstate__``'s).  It stays hashable by identity (as
    a torch tensor), so it can key a dict, and takes weak references; ``del
    p.grad`` sets it to None (torch's).  ``p.data = value``
    stores an array as it is, a Parameter's data, and anything else as
    ``np.asarray`` makes it (as the constructor), if its dtype is of numbers;
    ``p.grad = value`` takes None or what a step reads (a float32 or float64
    array of the data's shape, or a NumPy float, as a 0-d array): else each
    raises TypeError (ValueError for another shape) there, as torch's do, not
    at the next step.  Not the array's: the
    buffer protocol (``memoryview(p)``; ``memoryview(p.data)`` works), the
    array interface (through which ``np.asarray(p)`` would be a new view)
    and ``rng.shuffle(p)``, which takes it for a sequence: shuffle ``p.data``.
    """

    # (weakly referenced, as an array and torch's Parameter: a subclass's own __slots__ need not,
    # and may not, list __weakref__ again)
    __slots__ = ("data", "grad", "__weakref__")
    __hash__ = object.__hash__  # (defining __eq__, element-wise, would make it unhashable)

    def __init__(self, data, grad=None):
        self.data = data  # (converted by __setattr__)
        self.grad = grad

    def __repr__(self):
        # NumPy's repr of the data under this class's name (continuation lines aligned after it)
        prefix = f"{type(self).__name__}("
        shape = f", shape={self.data.shape}" if self.data.size == 0 and self.data.shape != (0,) else ""
        return f"{prefix}{np.array2string(self.data, separator=', ', prefix=prefix)}{shape}, dtype={self.data.dtype})"

    def __str__(self):
        return str(self.data)

    def __reduce__(self):
        # every pickle protocol (0 and 1 cannot pickle __slots__ by themselves), a subclass as
        # itself, made without its __init__, with its __getstate__ (and __setstate__) if it has its own
        return (copyreg.__newobj__, (type(self),), self.__getstate__())

    def __getstate__(self):
        # the attributes, a subclass's too (slots, or a __dict__) (the slots' values as stored,
        # whatever a subclass's property of the same name makes of them)
        state = {}
        for name in copyreg._slotnames(type(self)):  # (pickle's own list: a str __slots__, private names)
            try:
                state[name] = _slot(type(self), name).__get__(self)
            except AttributeError:  # a slot not set
                pass
        try:
            state.update(object.__getattribute__(self, "__dict__"))
        except AttributeError:  # slots alone
            pass
        return state

    def __setstate__(self, state):
        for name, value in state.items():
            slot = _slot(type(self), name)
            if slot is None:
                object.__getattribute__(self, "__dict__")[name] = value
            else:
                slot.__set__(self, value)

    def __copy__(self):
        # an array's copy.copy copies its data: so does this, and its gradient's
        return copy.deepcopy(self)

    # -- as its array ------------------------------------------------------------

    def __array__(self, dtype=None, copy=None):
        # NumPy 2's protocol: copy=None copies only if dtype needs it, False never, True always
        data = self.data
        if copy:
            return np.array(data, dtype=dtype, copy=True)
        if dtype is None or np.dtype(dtype) == data.dtype:
            return data
        if copy is False:
            raise ValueError(f"Parameter of dtype {data.dtype} cannot be viewed as {np.dtype(dtype)} without a copy")
        return data.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        # every Parameter unwrapped, in out, where= and any other keyword too: one left would
        # call this method again, with the same arguments, without end
        result = getattr(ufunc, method)(*_unwrapped(inputs), **_unwrapped(kwargs))
        if out is None:
            return result
        # a Parameter written into is returned as itself: p -= g keeps p a Parameter
        results = result if isinstance(result, tuple) else (result,)
        results = tuple(given if isinstance(given, Parameter) else got for given, got in zip(out, results))
        return results[0] if len(results) == 1 else results

    def __array_function__(self, func, types, args, kwargs):
        plain_args, plain_kwargs = _unwrapped(args), _unwrapped(kwargs)
        call = _dispatching.call
        if call is not None and call[0] is func and len(call[1]) == len(args) and all(
                a is b for a, b in zip(call[1], args)):
            # the call below come back, its arguments as they were: a Parameter in a container
            # _unwrapped leaves as it is (a deque, a namedtuple); NumPy's own function reads it as
            # its array (np.asarray), where dispatching once more would recurse without end
            result = func._implementation(*plain_args, **plain_kwargs)
        else:
            outer, _dispatching.call = call, (func, plain_args)
            try:
                result = func(*plain_args, **plain_kwargs)
            finally:
                _dispatching.call = outer
        # a Parameter written into is returned as itself, as by a ufunc: out=, or out given by
        # position (np.clip(a, 0, 1, p)), the argument after the first whose array came back
        out = kwargs.get("out")
        if isinstance(out, Parameter):
            return out
        return next((given for given in args[1:] if isinstance(given, Parameter) and result is given.data), result)

    def __getattr__(self, name):
        # only reached for what Parameter lacks: the array's public attributes and methods (not
        # __array_interface__, by which np.asarray(p) would be a new view, not p.data)
        if name.startswith("_") or name in Parameter.__slots__:  # a slot not set yet (while unpickling)
            raise AttributeError(f"'Parameter' object has no attribute {name!r}")
        return getattr(self.data, name)

    # the data's protocols of exchange, as methods: NumPy 2.0's from_dlpack looks them up on the type
    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    def __array_namespace__(self, *args, **kwargs):
        return self.data.__array_namespace__(*args, **kwargs)

    def __dir__(self):
        try:
            data = object.__getattribute__(self, "data")
        except AttributeError:  # (not set yet: unpickling, or a subclass's __init__ before its super())
            return super().__dir__()
        return sorted(set(super().__dir__()) | {name for name in dir(data) if not name.startswith("_")})

    def __delattr__(self, name):
        if name == "grad":  # torch's: del p.grad clears it
            self.grad = None
        elif name == "data":  # (as the array's: a Parameter without data would fail at every use)
            raise AttributeError("a Parameter's data cannot be deleted; assign another array to p.data")
        else:
            object.__delattr__(self, name)

    def __setattr__(self, name, value):
        if name == "data":  # an array, as the constructor makes it: a Parameter's data, or np.asarray's
            value = value.data if isinstance(value, Parameter) else value
            array = value if isinstance(value, np.ndarray) else np.asarray(value)
            if array.dtype.kind not in "biufc":  # (as torch's refuses what is no tensor, where it is set)
                got = "None" if value is None else f"a value of type {_checks.type_name(value)}"
                raise TypeError("a Parameter's data must be an array of numbers (float32 or float64, for an optimizer); "
                                + (f"got an array of dtype {array.dtype}" if value is array else
                                   f"got {got}, which np.asarray makes of dtype {array.dtype}"))
            object.__setattr__(self, name, array)
        elif name == "grad" and value is not None:  # checked where it is set (torch's too), as a step reads it
            grad = _checks.check_gradient(
                value, "a Parameter's grad", "a NumPy array of float32 or float64, or None (no gradient)")
            data = getattr(self, "data", None)
            if data is not None and np.shape(grad) != data.shape:  # (torch's refuses it there too)
                raise ValueError(f"a Parameter's grad must have its data's shape {data.shape}, got shape "
                                 f"{np.shape(grad)}")
            object.__setattr__(self, name, grad)
        elif name.startswith("_") or hasattr(type(self), name) or not hasattr(np.ndarray, name):
            object.__setattr__(self, name, value)  # its own: grad, a subclass's (a slot, or in its __dict__)
        else:  # the array's, as reading them is: p.shape = (2, 3) reshapes the data in place
            setattr(self.data, name, value)

    def __getitem__(self, key):
        return self.data[_unwrapped(key)]

    def __setitem__(self, key, value):
        self.data[_unwrapped(key)] = _unwrapped(value)

    def __len__(self):
        return len(self.data)

    def __contains__(self, value):
        return _unwrapped(value) in self.data

    def __eq__(self, other):  # the array's (not np.equal, which refuses a string)
        return self.data == _unwrapped(other)

    def __ne__(self, other):
        return self.data != _unwrapped(other)

    def __iter__(self):
        return iter(self.data)

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    def __index__(self):
        return self.data.__index__()

    def __complex__(self):
        return complex(self.data)

    def __round__(self, ndigits=None):
        return round(self.data) if ndigits is None else round(self.data, ndigits)

    def __format__(self, spec):
        return format(self.data, spec) if spec else str(self)

    # -- operators: the data's own (see _OPERATORS) ---------------------------------

    def __pow__(self, other, mod=None):  # (pow(p, 2, 3): the array's error)
        return pow(self.data, _unwrapped(other)) if mod is None else pow(self.data, _unwrapped(other), mod)

    def __rpow__(self, other, mod=None):
        return pow(_unwrapped(other), self.data) if mod is None else pow(_unwrapped(other), self.data, mod)

    def __ipow__(self, other, mod=None):  # (mod: __pow__'s signature; Python passes none)
        return _operated_in_place(self, operator.ipow, other)

    def __neg__(self):
        return -self.data

    def __pos__(self):
        return +self.data

    def __abs__(self):
        return abs(self.data)

    def __invert__(self):
        return ~self.data


#: a Parameter's binary operators: name -> (the operator, its in-place form or None).  Each is the
#: data's own, a Parameter operand its data: not the ufunc NumPy's NDArrayOperatorsMixin calls (an
#: np.matrix's * is a matrix product; an array's operators defer to a scipy.sparse operand; in-place
#: @ checks its operand's shape, where np.matmul(p, v, out=p) broadcast into p; ** 0.5 is a root)
_OPERATORS = {
    "add": (operator.add, operator.iadd), "sub": (operator.sub, operator.isub), "mul": (operator.mul, operator.imul),
    "matmul": (operator.matmul, operator.imatmul), "truediv": (operator.truediv, operator.itruediv),
    "floordiv": (operator.floordiv, operator.ifloordiv), "mod": (operator.mod, operator.imod),
    "divmod": (divmod, None), "lshift": (operator.lshift, operator.ilshift),
    "rshift": (operator.rshift, operator.irshift), "and": (operator.and_, operator.iand),
    "xor": (operator.xor, operator.ixor), "or": (operator.or_, operator.ior),
}


def _operator_methods(forward, in_place):
    def method(self, other):
        return forward(self.data, _unwrapped(other))

    def reflected(self, other):
        return forward(_unwrapped(other), self.data)

    def in_place_method(self, other):
        return _operated_in_place(self, in_place, other)

    return method, reflected, in_place_method


def _operated_in_place(param, in_place, other):
    """param's data operated on in place: the Parameter itself; an operand that took over (the
    array's operator deferred to it) gives a new object, as `x += operand` rebinds an array's name."""
    data = param.data  # (read once: a subclass's data property may make a new view each time)
    result = in_place(data, _unwrapped(other))
    return param if result is data else result


def _define(name, method):
    method.__name__, method.__qualname__ = name, f"Parameter.{name}"  # (as tracebacks and help() show them)
    setattr(Parameter, name, method)


for _name, (_forward, _inplace) in _OPERATORS.items():
    _method, _reflected, _in_place_method = _operator_methods(_forward, _inplace)
    _define(f"__{_name}__", _method)
    _define(f"__r{_name}__", _reflected)
    if _inplace is not None:
        _define(f"__i{_name}__", _in_place_method)
for _name, _compare in (("lt", operator.lt), ("le", operator.le), ("gt", operator.gt), ("ge", operator.ge)):
    _define(f"__{_name}__", _operator_methods(_compare, None)[0])
del _name, _forward, _inplace, _method, _reflected, _in_place_method, _compare


class _Dispatching(threading.local):
    """The NumPy function a Parameter's __array_function__ is calling in this thread, and its
    positional arguments, or None."""
    call = None


_dispatching = _Dispatching()


def _unwrapped(value):
    """value with every Parameter in it (in lists, tuples and dicts too) replaced by its data."""
    if isinstance(value, Parameter):
        return value.data
    if isinstance(value, (list, tuple)):
        items = [_unwrapped(item) for item in value]
        return type(value)(items) if type(value) in (list, tuple) else value
    if type(value) is dict:
        return {key: _unwrapped(item) for key, item in value.items()}
    return value


class _OneAtATime:
    """What one call at a time may change: a call that finds another running (in another
    thread, or re-entered) raises RuntimeError rather than wait, or race it.  __init__ makes
    the lock (self._lock = threading.Lock()); it is not pickled: an unpickled object has a new one."""

    def _exclusive(self, what):
        """A context in which nothing else changes the object; raises RuntimeError if a call
        holds it already."""
        if not self._lock.acquire(False):
            raise self._busy(what)
        return _Release(self._lock)

    def _busy(self, what):
        return RuntimeError(f"{what}: another call is changing this {type(self).__name__} (in another thread, "
                            "or re-entered); it takes one call at a time")

    def __getstate__(self):
        # pickle and deepcopy start as a call would: never while another runs (one that another
        # thread starts while the pickler writes the arrays is the caller's race, as in torch)
        with self._exclusive("pickling or copying"):
            return self._pickled()

    def _pickled(self):
        """The attributes to pickle (under the lock)."""
        return {key: value for key, value in vars(self).items() if key != "_lock"}

    def __setstate__(self, state):
        vars(self).update(state)
        self._lock = threading.Lock()

    def __copy__(self):
        raise TypeError(f"copy.copy of this {type(self).__name__} would share its arrays but not its counters; "
                        "use copy.deepcopy (an independent copy) or the object itself")


class Optimizer(_OneAtATime):
    """Base class: param groups, checks, state and state dicts, and the step, all read from
    the subclass's ``algorithm``.  A subclass without one implements ``_update_all(grads)``."""

    #: the description of the algorithm (see Algorithm)
    algorithm = None
    #: whether the class updates with an _update_all of its own, which gets checked,
    #: converted gradients from step() (the compiled one checks and converts them itself)
    _own_update = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._own_update = cls._update_all is not Optimizer._update_all

    def __init__(self, params, defaults, n_threads=None):
        self._check_options(defaults, "", constructor=True)
        # a pair given as a list is kept as a tuple, as torch's Adam keeps betas: every group
        # shares the defaults, and an edit in place of one group's would change them all
        self.defaults = {key: tuple(value) if isinstance(value, list) else value for key, value in defaults.items()}
        if self.algorithm is not None:  # (every algorithm has an lr: the compiled step reads it)
            _checks.check_constructor_lr(self.defaults["lr"])
        self.n_threads = n_threads
        self.param_groups = []
        self._lock = threading.Lock()
        self._entries, self._params, self._slices, self._auto_threads = [], [], [], []
        self._state = {state.name: [] for state in self._described_state()}
        self._steps = np.zeros(0, dtype=np.int64)
        self._fresh = np.zeros(0, dtype=np.uint8)
        self._scalars = self._new_scalars(0)
        groups = _as_groups(params)
        given = [dict(group) for group in groups]
        try:
            for group in groups:
                self._add_group(group, len(groups) > 1)
            if self.algorithm is not None and self.algorithm.state_at_start:
                self._create_state_at_start()
        except BaseException:  # the caller's dicts as they were (an earlier group took the defaults)
            for group, was in zip(groups, given):
                group.clear()
                group.update(was)
            raise

    @property
    def n_threads(self):
        """Threads per step, at most MAX_THREADS; None chooses by the size of each param group."""
        return self._n_threads

    @n_threads.setter
    def n_threads(self, value):
        self._n_threads = None if value is None else _checks.check_count(
            value, "n_threads", 1, MAX_THREADS, f"None (choose by size) or a whole number from 1 to {MAX_THREADS}")

    @classmethod
    def _described_state(cls):
        return () if cls.algorithm is None else cls.algorithm.state

    @classmethod
    def _new_scalars(cls, count):
        return np.zeros((count, 0)) if cls.algorithm is None else cls.algorithm.new_scalars(count)

    def add_param_group(self, param_group):
        """Add a group of parameters with options of its own (defaults fill the rest).

        A key that is neither an option, nor one that schedulers keep in groups (SCHEDULER_KEYS,
        such as ``initial_lr``), nor one a group of this optimizer holds (torch's ``foreach``, kept
        from its state dict), is refused, where torch keeps it: a misspelt option would otherwise
        be ignored without a word.  So a group copied from another takes."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a param group must be a dict with a 'params' entry, got {type(param_group).__name__}")
        with self._exclusive("add_param_group()"):
            self._follow_param_groups()  # the group joins the parameters param_groups list now
            self._add_group(param_group, True)

    def _add_group(self, group, numbered):
        index = len(self.param_groups)
        where = _group_where(index, numbered)
        if "params" not in group:
            raise ValueError(f"{where}a param group needs a 'params' entry")
        # a key one of its groups holds (torch's foreach, kept from a state dict) is no misspelling
        held = {key for existing in self.param_groups for key in existing}
        torch_keys = _torch_keywords_of(type(self))
        unknown = sorted(set(group) - set(self.defaults) - {"params", "param_names"} - SCHEDULER_KEYS - torch_keys
                         - held)
        if unknown:
            raise ValueError(
                f"{where}unknown option {', '.join(map(repr, unknown))}; "
                f"{type(self).__name__} takes {', '.join(sorted(self.defaults))} (and "
                + (f"torch's {', '.join(sorted(torch_keys))}, " if torch_keys else "")
                + f"the keys schedulers keep: {', '.join(sorted(SCHEDULER_KEYS))}, or its groups hold)"
            )
        _torch_keywords(**{key: group[key] for key in torch_keys & set(group)}, where=where)
        entries, names = _named_entries(group["params"], where)
        named = names is not None or "param_names" in group
        if any(("param_names" in existing) != named for existing in self.param_groups):
            raise ValueError(f"{where}all param groups must be with names or all without (torch's named parameters, "
                             f"(name, parameter) pairs); this optimizer's are {'without' if named else 'with'}")
        options = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        self._check_options(options, where)
        start = len(self._params)
        arrays = [_checks.check_param(_data(entry), f"parameter {start + i}") for i, entry in enumerate(entries)]
        self._check_in_dtype(options, arrays, where)
        _checks.check_no_overlap(self._params + arrays, [f"parameter {i}" for i in range(start + len(arrays))])
        states = {name: states + [None] * len(arrays) for name, states in self._state.items()}
        self._install(
            entries=self._entries + entries, params=self._params + arrays, state=states,
            steps=np.concatenate([self._steps, np.zeros(len(arrays), dtype=np.int64)]),
            fresh=np.concatenate([self._fresh, np.zeros(len(arrays), dtype=np.uint8)]),
            scalars=np.concatenate([self._scalars, self._new_scalars(len(arrays))]),
            slices=self._slices + [(start, start + len(arrays))],
            auto_threads=self._auto_threads + [_threads_for(sum(array.size for array in arrays))])
        # the caller's dict itself, as torch keeps it: edits made through it reach the steps
        group["params"] = entries
        if names is not None:
            group["param_names"] = names
        group.update({key: value for key, value in options.items() if key not in group})
        self.param_groups.append(group)

    def _sync(self, grads=None):
        """Follow what was done to param_groups by hand, as torch does: a group's "params"
        replaced or edited, a Parameter's .data replaced, a group added or the list replaced.
        State is kept per parameter entry (the array or fastgd.Parameter), so a new entry
        starts with none.  Everything is checked before anything is changed: grads too, if
        given, one per parameter listed (a step refused for its count keeps the state of a
        parameter the groups no longer list, which following them drops)."""
        groups = self.param_groups
        if not isinstance(groups, list) or not groups:
            raise TypeError("param_groups must be a non-empty list of param-group dicts")
        known = {id(entry): i for i, entry in enumerate(self._entries)}
        listed, merged, arrays = [], [], []
        for index, group in enumerate(groups):
            where = self._where(index)
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"{where}a param group must be a dict with a 'params' entry")
            entries = _as_entries(group["params"])
            missing = {k: v for k, v in self.defaults.items() if k not in group}
            self._check_options({**group, **missing}, where)
            start = len(arrays)
            arrays += [_checks.check_param(_data(entry), f"parameter {start + i}") for i, entry in enumerate(entries)]
            self._check_in_dtype({**group, **missing}, arrays[start:], where)
            listed.append(entries)
            merged.append(missing)
        _checks.check_no_overlap(arrays, [f"parameter {i}" for i in range(len(arrays))])
        entries = [entry for group_entries in listed for entry in group_entries]
        if grads is not None:
            self._check_count(grads, len(entries))
        old = [known.get(id(entry)) for entry in entries]
        bounds = np.cumsum([0] + [len(group_entries) for group_entries in listed])
        slices = [(int(start), int(stop)) for start, stop in zip(bounds[:-1], bounds[1:])]
        self._install(
            entries=entries, params=arrays, slices=slices,
            state={name: [None if i is None else states[i] for i in old] for name, states in self._state.items()},
            steps=np.array([0 if i is None else self._steps[i] for i in old], dtype=np.int64),
            fresh=np.array([0 if i is None else self._fresh[i] for i in old], dtype=np.uint8),
            scalars=np.concatenate([self._new_scalars(0)]  # (no parameters left: an empty table)
                                   + [self._new_scalars(1) if i is None else self._scalars[i:i + 1] for i in old]),
            auto_threads=[_threads_for(sum(a.size for a in arrays[start:stop])) for start, stop in slices])
        for group, group_entries, missing in zip(groups, listed, merged):
            group.update(missing)
            group["params"] = group_entries

    # -- checks ----------------------------------------------------------------

    @classmethod
    def _check_options(cls, options, where, constructor=False):
        """Raise TypeError/ValueError, naming the option, if a group's options are not valid
        (constructor: the constructor's own, and the rules constructor_only apply too)."""
        if cls.algorithm is None:
            return
        missing = [option.name for option in cls.algorithm.options if option.name not in options]
        if missing:
            raise ValueError(f"{where}the option {missing[0]!r} is missing; {cls.__name__} needs "
                             f"{', '.join(option.name for option in cls.algorithm.options)}")
        for option in cls.algorithm.options:
            _checks.check_option(options[option.name], option.kind, where + option.name)
        cls._check_rules(options, where, constructor)

    @classmethod
    def _check_rules(cls, options, where, constructor=False):
        for rule in cls.algorithm.rules:
            if constructor or not rule.constructor_only:
                rule.check(options, where)

    def _where(self, index):
        return _group_where(index, len(self.param_groups) > 1)

    @classmethod
    def _check_in_dtype(cls, options, arrays, where):
        """Raise ValueError if a group with float32 parameters has a number option beyond float32's
        range: the kernels read it in that dtype, where it would be inf (torch refuses it too)."""
        if cls.algorithm is None or not any(array.dtype == np.float32 for array in arrays):
            return
        for option in cls.algorithm.options:
            value = options[option.name]
            if _checks.KINDS[option.kind][0] == "number" and abs(float(value)) > _checks.FLOAT32_MAX:
                raise ValueError(f"{where}{option.name}={value!r} is beyond the range of float32, the dtype of "
                                 f"this group's parameters; expected at most {_checks.FLOAT32_MAX:g} in magnitude")

    @classmethod
    def _settled_options(cls, group, where, constructor=False):
        """group's options checked in full (see _check_options), as a copy whose options read the
        same each time (_checks.settled), which the step then reads, so that nothing another
        thread sets meanwhile, or a float subclass answers anew, is stepped with unchecked."""
        group = dict(group)
        cls._check_options(group, where, constructor)
        settled = False
        for option in () if cls.algorithm is None else cls.algorithm.options:
            value = _checks.settled(group[option.name])
            if value is not group[option.name]:  # (a number read anew may not be the one just checked)
                group[option.name], settled = value, True
                _checks.check_option(value, option.kind, where + option.name)
        if settled:
            cls._check_rules(group, where, constructor)
        return group

    def _check_all_groups(self):
        """Check every group's options in full; returns the groups as checked (_settled_options)."""
        checked = []
        for index, (group, (start, stop)) in enumerate(zip(self.param_groups, self._slices)):
            where = self._where(index)
            group = self._settled_options(group, where)
            self._check_in_dtype(group, self._params[start:stop], where)
            checked.append(group)
        return checked

    def _check_ready_locked(self, grads):
        """Raise what a step on grads (one per parameter) would raise, the checks it makes when
        the compiled step asks (see _drive), for a caller that changes something for that step
        before taking it (MultiSteps), holding the lock from this check to the step."""
        if self._plan is not None:  # the compiled checks, and the full ones only where they ask
            self._drive(grads, engine.Plan.check, ready=True)
            return
        self._sync(grads)  # the parameters as they are now, and every group's options
        self._converted(grads)
        self._check_states()

    def _converted(self, grads):
        """The gradients as arrays the kernels read as they are (converted once where needed, the
        same array where not); raises, naming the first parameter or gradient that cannot be used."""
        converted = []
        for i, (param, grad) in enumerate(zip(self._params, grads)):
            param = _checks.check_param(param, f"parameter {i}")
            grad = _checks.convert_grad(grad, param, f"gradient {i}")
            if grad is not None:
                states = [(name, states[i]) for name, states in self._state.items() if states[i] is not None]
                _checks.check_apart(grad, f"gradient {i}", [(f"parameter {i}", param)]
                                    + [(f"the {name} of parameter {i}", state) for name, state in states])
            converted.append(grad)
        return converted

    def _check_states(self):
        """Raise ValueError if a state array no longer matches its parameter; put a writable copy
        in place of one the step cannot write (unpickled read-only, or as a memory map)."""
        for name, states in self._state.items():
            for i, (param, state) in enumerate(zip(self._params, states)):
                if state is not None and (state.size != param.size or state.dtype != param.dtype):
                    raise ValueError(
                        f"the {name} of parameter {i} ({_checks.describe(state)}) no longer matches its parameter "
                        f"({_checks.describe(param)}): the parameter was resized or retyped (in place, or its .data "
                        "replaced), which the optimizer cannot follow; keep each parameter's size and dtype, or "
                        "make a new optimizer")
                if state is not None and not state.flags.c_contiguous:  # (its order no longer the parameter's)
                    raise ValueError(f"the {name} of parameter {i} ({_checks.describe(state)}) is no longer "
                                     "C-contiguous: its shape or strides were set in place; keep the optimizer's "
                                     "state arrays as they are, or make a new optimizer")
        writable = {name: [_writable(state) for state in states] for name, states in self._state.items()}
        if any(a is not b for name, states in self._state.items() for a, b in zip(states, writable[name])):
            self._install(state=writable)

    def _create_state_at_start(self):
        """The state that no option decides (a State needed_when None) for every parameter, as
        torch's Adagrad has its sum from its constructor on; the rest is the step's (Plan.missing)."""
        state = {name: list(arrays) for name, arrays in self._state.items()}
        for group, (start, stop) in zip(self.param_groups, self._slices):
            for described in self.algorithm.state:
                if described.needed_when is None:
                    for i in range(start, stop):
                        if state[described.name][i] is None:
                            state[described.name][i] = described.new(group, self._params[i])
        self._install(state=state)

    def _create_state(self, groups):
        """Create the state arrays that the compiled step found missing (STATE_MISSING), from
        groups, the options it read."""
        made = _missing_state(self.algorithm, self._plan, groups, self._params)
        # nothing is changed before this point
        for state, i, array in made:
            self._state[state.name][i] = array
            if state.from_gradient:
                self._fresh[i] = 1

    # -- stepping ------------------------------------------------------------

    def step(self, grads=None, closure=None, *, grad_scale=1.0):
        """Update every parameter in place from its gradient; returns the closure's value, if given.

        ``grads`` holds one array (or None, to skip that parameter) per
        parameter, in order; without it, each fastgd.Parameter's ``.grad`` is
        read.  ``closure`` (torch's argument, also taken as the only positional
        one) is a function that computes the loss and sets each Parameter's
        ``.grad``: it is called once, before the update and outside the
        optimizer's lock, and step returns what it returns.  ``grad_scale``: a
        finite number every gradient is multiplied by as the step reads it
        (rounded to the gradient's dtype, as torch's ``grad.mul_(scale)``), the
        gradients left unchanged: clipping by norm (``fastgd.clip_coef``) or
        averaging accumulated gradients without a pass that writes them.
        Nothing is changed if any gradient or option is invalid.  One step of an
        optimizer runs at a time: a step while another thread's step of the same
        optimizer runs raises RuntimeError.
        """
        if type(grad_scale) is not float or not -math.inf < grad_scale < math.inf:
            grad_scale = _checks.check_grad_scale(grad_scale)
        if closure is not None or (grads is not None and type(grads) is not list and callable(grads)):
            return self._step_after(grads, closure, grad_scale)
        lock = self._lock
        if not lock.acquire(False):
            raise self._busy("step()")
        try:
            self._step_locked(grads, grad_scale)
        finally:
            lock.release()

    def _step_locked(self, grads, grad_scale=1.0):
        """step(grads, grad_scale=...) for a caller holding the lock."""
        # the compiled step first, as it is: everything else when it asks
        read = grads is None  # from each Parameter's .grad
        if type(grads) is not list or len(grads) != len(self._params):
            grads = self._gradients(grads)
        if self._plan is None:  # (a compiled step notices groups edited by hand itself)
            self._follow_param_groups(None if read else grads)  # (counted there, or by _gradients)
            converted = self._converted(grads) if self._own_update else grads
            self._update_all(converted if grad_scale == 1.0 else self._scaled(converted, grad_scale))
        elif self._plan.step(_as_list(self.param_groups), grads, self._n_threads or 0, False, grad_scale) != _DONE:
            self._drive(grads, engine.Plan.step if grad_scale == 1.0
                        else functools.partial(engine.Plan.step, grad_scale=grad_scale), read=read)

    @staticmethod
    def _scaled(grads, grad_scale):
        """The gradients an _update_all of a subclass's own reads for step(grads, grad_scale=...):
        each times grad_scale, as torch's mul_ makes it, in a new array."""
        return [None if g is None else np.multiply(g, g.dtype.type(grad_scale), out=np.empty_like(g)) for g in grads]

    def _step_after(self, grads, closure, grad_scale):
        """step(closure) or step(closure=closure): call the closure, then step from the .grads."""
        if closure is None:
            grads, closure = None, grads
        elif grads is not None:
            raise ValueError("step() takes gradients or a closure that sets each Parameter.grad, not both")
        if not callable(closure):
            raise TypeError(f"closure must be a function that computes the loss and sets each Parameter.grad, "
                            f"got {type(closure).__name__}")
        loss = closure()
        self.step(grad_scale=grad_scale)
        return loss

    def _update_all(self, grads):
        """What a subclass without a compiled algorithm implements: update every parameter in
        place from grads (checked and converted by step(), one per parameter)."""
        raise NotImplementedError(f"{type(self).__name__} describes no algorithm; "
                                  "a subclass of Optimizer implements _update_all(grads)")

    def _step_with(self, routine, grads):
        """Take steps through a compiled routine of the engine that steps this optimizer's plan
        itself (the regression epoch: routine(plan, param_groups, grads, n_threads, checked)
        returns an Outcome, as Plan.step does), grads being the arrays it writes the gradients
        into.  One step at a time, as step()."""
        with self._exclusive("a compiled step"):
            self._drive(self._gradients(grads), routine)

    def _drive(self, grads, routine, ready=False, read=False):
        """Call routine(plan, groups, grads, n_threads, checked), a compiled routine that steps
        through this optimizer's plan (Plan.step, the regression epoch) reading param_groups (or,
        checked, the copies _check_all_groups checked and returned), until it is done,
        doing what the engine asks for in between: each request is answered (or raises) and the
        call made again.  ready: routine is Plan.check, and state that is only missing (which the
        step would make) is ready too.  read: grads were read from the Parameters' .grad, and are
        read again when the parameters change (reordered, each would step with another's)."""
        # a copy of the list: what a call checked and what it then reads (the state it makes from a
        # group's options, say) are one list of groups, whatever another thread adds or pops meanwhile
        groups, checked = list(self.param_groups), False
        for _ in range(6):  # one answer to each request at most
            outcome = routine(self._plan, groups, grads, self._n_threads or 0, checked)
            if outcome == _DONE or (ready and outcome == _STATE_MISSING):
                return
            if outcome == _PARAMS_CHANGED:
                # (gradients given are counted by _sync, read ones by _gradients)
                self._sync(None if read else grads)
                groups, checked = list(self.param_groups), False  # (their options checked again if need be)
                grads = self._gradients(None) if read else grads
            elif outcome == _ARRAYS_UNREADY:
                grads = self._converted(grads)  # raises, naming the array, unless it converts
            elif outcome == _OPTIONS_UNCHECKED:
                groups, checked = self._check_all_groups(), True  # raises, naming the option, unless valid but unusual
            elif outcome == _STATE_MISMATCH:
                self._check_states()
            elif outcome == _STATE_MISSING:
                self._create_state(groups)
            elif outcome == _STEP_OVERFLOWS:
                raise _step_overflow(self._plan, groups, len(groups) > 1)
        raise RuntimeError(f"the step found param_groups or the parameters changed again after each check (outcome "
                           f"{outcome}): edited by another thread while it ran? Nothing was stepped; if nothing "
                           "else changes them, this is fastgd's error: please report")

    def _pickled(self):
        # the compiled plan is rebuilt from the lists it refers to
        state = {key: value for key, value in super()._pickled().items() if key != "_plan"}
        # which of its references to a parameter are one object (an entry of _entries, the same in
        # a group's "params"; its array in _params): pickled once (joblib writes each reference to
        # an array apart), and joined again by __setstate__
        listed = {id(entry): position for position, entry in enumerate(_listed_entries(self.param_groups))}
        state["_links"] = [(listed.get(id(entry)), param is _data(entry))
                           for entry, param in zip(self._entries, self._params)]
        state["_entries"] = [None if position is not None else entry
                             for entry, (position, _) in zip(self._entries, state["_links"])]
        state["_params"] = [None if same else param for param, (_, same) in zip(self._params, state["_links"])]
        return state

    def __setstate__(self, state):
        links = state.pop("_links", None)
        super().__setstate__(state)
        listed = _listed_entries(self.param_groups)
        links = links or [(None, False)] * len(self._entries)
        entries = [entry if position is None else listed[position]
                   for entry, (position, _) in zip(self._entries, links)]
        params = [_data(entry) if same else param for entry, param, (_, same) in zip(entries, self._params, links)]
        # the step counts and scalars writable, whatever unpickled them (a read-only memory map,
        # say; the state arrays are made so at the first step, see _check_states); threads for
        # this machine's cores
        self._install(entries=entries, params=params, steps=_writable(self._steps, np.int64),
                      fresh=_writable(self._fresh, np.uint8), scalars=_writable(self._scalars, np.float64),
                      auto_threads=[_threads_for(sum(a.size for a in params[start:stop])) for start, stop in self._slices])

    def _adopt(self, arrays):
        """Step `arrays` (as many, of the same shapes and dtypes) in place of the parameters, their
        state kept: an estimator's optimizer, after unpickling, steps the estimator's own array."""
        with self._exclusive("_adopt()"):
            entries = list(arrays)
            for group, (start, stop) in zip(self.param_groups, self._slices):
                group["params"] = entries[start:stop]
            self._install(entries=entries, params=entries)

    _ARRAYS = ("entries", "params", "state", "steps", "fresh", "scalars", "slices", "auto_threads")

    def _install(self, **replaced):
        """Replace some of the arrays and lists a step reads (entries, params, state (new lists),
        steps, fresh, scalars, slices, auto_threads) and the compiled plan made of them, all at
        once: if the plan cannot be made, nothing is replaced."""
        new = {name: replaced.get(name, getattr(self, "_" + name, None)) for name in self._ARRAYS}
        if self.algorithm is None or self._own_update:  # a subclass with an update of its own
            plan = None
        else:
            plan = engine.Plan(
                self.algorithm.kernel, self.algorithm.engine_options(), self.algorithm.engine_state(),
                self.algorithm.counts_steps, list(new["params"]), list(new["entries"]), new["state"], new["steps"],
                new["fresh"], new["scalars"], list(new["slices"]), list(new["auto_threads"]))
        for name, value in new.items():
            setattr(self, "_" + name, value)
        self._plan = plan

    def _follow_param_groups(self, grads=None):
        """Follow param_groups now if they no longer list the optimizer's parameters (step()
        without gradients reads the .grad of each, and counts the gradients given, before the
        compiled step could notice); grads: given for the parameters they list (see _sync)."""
        try:
            listed = _group_entries(self.param_groups)
        except (TypeError, KeyError):
            listed = None
        if listed is None or len(listed) != len(self._entries) or any(
                entry is not known for entry, known in zip(listed, self._entries)):
            self._sync(grads)

    def _gradients_locked(self, grads):
        """_gradients, under the lock: for callers outside a step (it may follow param_groups,
        replacing the arrays a running step counts in)."""
        lock = self._lock  # (not _exclusive: this runs at every clipped step)
        if not lock.acquire(False):
            raise self._busy("step()")
        try:
            return self._gradients(grads)
        finally:
            lock.release()

    def _gradients(self, grads):
        if grads is None and self._plan is not None:  # read by the plan, if the groups list its Parameters
            read = self._plan.grads_of(_as_list(self.param_groups))
            if read is not None:
                return read
        if grads is None:  # checked before following the groups, which drops the state of what they no longer list
            listed = _listed_entries(self.param_groups)  # (following them raises, naming what is wrong)
            plain = [i for i, entry in enumerate(listed) if not isinstance(entry, Parameter)]
            if plain:
                raise TypeError(
                    f"step() without gradients reads fastgd.Parameter.grad, but parameter {plain[0]} "
                    "is a plain array; pass step(grads) with one gradient per parameter"
                )
        if grads is None or (isinstance(grads, (list, tuple)) and len(grads) != len(self._params)):
            self._follow_param_groups(grads)
        if grads is None:
            grads = [entry.grad for entry in self._entries]
        elif type(grads) is not list:
            if not isinstance(grads, (list, tuple)):
                raise TypeError(
                    f"grads must be a list or tuple with one array per parameter, got {type(grads).__name__}"
                )
            grads = list(grads)
        self._check_count(grads)
        return grads

    def _check_count(self, grads, count=None):
        count = len(self._params) if count is None else count
        if len(grads) != count:
            raise ValueError(f"step() got {len(grads)} gradients for {count} parameters")

    def zero_grad(self, set_to_none=True):
        """Clear the gradient of every fastgd.Parameter that param_groups list: set it to None
        (torch's default) or fill it with zeros (each must then be a writable array)."""
        with self._exclusive("zero_grad()"):
            # as torch: whatever the groups list
            cleared = [(i, entry) for i, entry in enumerate(_group_entries(self.param_groups))
                       if isinstance(entry, Parameter) and entry.grad is not None]
            if set_to_none:
                for _, entry in cleared:
                    entry.grad = None
                return
            for i, entry in cleared:  # all checked before any is changed
                where = f"zero_grad(set_to_none=False) fills each .grad with zeros in place, but parameter {i}'s .grad"
                if not isinstance(entry.grad, np.ndarray):
                    raise TypeError(f"{where} is a {type(entry.grad).__name__}; expected a NumPy array "
                                    "(zero_grad() sets it to None instead)")
                if not entry.grad.flags.writeable:
                    raise ValueError(f"{where} is read-only; expected a writable array "
                                     "(zero_grad() sets it to None instead)")
            for _, entry in cleared:
                entry.grad[...] = 0

    # -- state dicts -----------------------------------------------------------

    def state_dict(self):
        """A snapshot of the optimizer: plain Python and NumPy copies, picklable.

        The layout is torch's: ``{"state": {index: {...}}, "param_groups": [...]}``
        with parameters numbered in order across groups, and an entry for each
        parameter that has state; converted to tensors, it loads into torch.optim.
        """
        with self._exclusive("state_dict()"):
            self._follow_param_groups()
            return self._state_dict()

    def _state_dict(self):
        state = {}
        for i in range(len(self._params)):
            entry = {s.name: _shaped_as(self._state[s.name][i], self._params[i]) for s in self._described_state()
                     if self._state[s.name][i] is not None and not (s.from_gradient and self._fresh[i])}
            if self.algorithm is not None and (entry or self._steps[i]):  # it has stepped
                if self.algorithm.counts_steps:
                    entry["step"] = int(self._steps[i])
                entry.update({s.name: float(value) for s, value in zip(self.algorithm.scalar_state, self._scalars[i])})
            if entry:
                state[i] = entry
        groups = []
        for group, (start, stop) in zip(self.param_groups, self._slices):
            # the options copied (a group's betas may be the caller's list); other keys as torch keeps them
            saved = {key: copy.deepcopy(value) if key in self.defaults else value
                     for key, value in group.items() if key != "params"}
            saved["params"] = list(range(start, stop))
            groups.append(saved)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a snapshot from state_dict(), of this optimizer or of the torch.optim optimizer
        of the same name (its tensors converted to arrays), over parameters of the same shapes.

        The saved groups' "params" lists name the parameters (each id once): the state saved
        under the id listed i-th in a group goes to that group's i-th parameter, as in torch.
        Param-group keys that are not options are kept, as torch keeps them.  A parameter's
        state is all or nothing: one lacking a part every step makes (its step, a moment) is
        refused, as torch refuses it.  Everything is checked before anything is changed.
        """
        with self._exclusive("load_state_dict()"):
            self._follow_param_groups()
            self._load_state_dict(state_dict)

    def _load_state_dict(self, state_dict):
        _checks.check_state_keys(state_dict, ("state", "param_groups"))
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict has {len(saved_groups) if isinstance(saved_groups, (list, tuple)) else 'no list of'} "
                f"param groups; this optimizer has {len(self.param_groups)}"
            )
        options = []
        for index, (saved, (start, stop)) in enumerate(zip(saved_groups, self._slices)):
            where = f"state_dict param group {index}: "
            if not isinstance(saved, dict) or not isinstance(saved.get("params"), (list, tuple)) \
                    or len(saved["params"]) != stop - start:
                raise ValueError(f"{where}expected a dict whose 'params' is a list of {stop - start} parameter "
                                 "indices, as this optimizer's group has that many parameters")
            # a copy, as torch's: the caller's lists (betas, say) stay theirs to change; an option
            # saved as a 0-d array (torch's Tensor lr, converted) is its number
            group = {**self.defaults, **copy.deepcopy({k: _checks.number_of(v) if k in self.defaults else v
                                                       for k, v in saved.items() if k != "params"})}
            self._check_options(group, where)
            self._check_in_dtype(group, self._params[start:stop], where)
            options.append(group)
        if not isinstance(saved_state, dict):
            raise TypeError("state_dict['state'] must be a dict from parameter index to its state")
        # the saved groups' ids name the parameters in order, as torch maps them (a state keyed by
        # the id in a group's list i-th goes to that group's i-th parameter)
        ids = [key for saved in saved_groups for key in saved["params"]]
        for key in ids:
            if not _checks.is_whole(key):
                raise TypeError(f"state_dict's param groups list {key!r} as a parameter id; expected whole numbers")
        position = {int(key): index for index, key in enumerate(ids)}
        if len(position) != len(ids):
            twice = next(key for index, key in enumerate(ids) if key in ids[:index])
            raise ValueError(f"state_dict's param groups list parameter id {twice} more than once; expected each "
                             "parameter once")
        new_state = {name: [None] * len(self._params) for name in self._state}
        new_steps = np.zeros(len(self._params), dtype=np.int64)
        counts_steps = self.algorithm is not None and self.algorithm.counts_steps
        scalar_state = () if self.algorithm is None else self.algorithm.scalar_state
        new_scalars = self._new_scalars(len(self._params))
        allowed = set(self._state) | ({"step"} if counts_steps else set()) | {s.name for s in scalar_state}
        for key, entry in saved_state.items():
            if not _checks.is_whole(key) or int(key) not in position:
                raise ValueError(f"state_dict['state'] has key {key!r}; expected parameter ids that its param "
                                 f"groups list ({reprlib.repr(ids)})")
            index = position[int(key)]
            param = self._params[index]
            named = f"{index}" if int(key) == index else f"{index} (saved as id {int(key)})"
            where = f"state_dict state of parameter {named} ({_checks.describe(param)})"
            if not isinstance(entry, dict):
                raise TypeError(f"{where} must be a dict, got {type(entry).__name__}")
            unknown = sorted(set(entry) - allowed)
            if unknown:
                raise ValueError(f"{where} has unknown entries {unknown}; expected some of {sorted(allowed)}")
            # what every step makes (not what an option needs: one turned on later makes its state
            # at the next step, as torch's): the rest of a state cut short would be made up anew
            needed = ({"step"} if counts_steps else set()) | {s.name for s in scalar_state} | {
                s.name for s in self._described_state() if s.needed_when is None}
            lacking = [] if not entry else sorted(
                needed - {name for name, value in entry.items() if value is not None or name not in self._state})
            if lacking:
                raise ValueError(f"{where} lacks {lacking}, which a state saved after a step has; give all "
                                 "of them, or no state for the parameter")
            for name in self._state:
                value = entry.get(name)
                if value is None:
                    continue
                new_state[name][index] = _checks.saved_array(value, param, f"{where}: {name}", copy=True)
            if "step" in entry:
                new_steps[index] = _checks.check_step_count(entry["step"], f"{where}: step", MAX_STEP)
            for j, scalar in enumerate(scalar_state):
                if scalar.name in entry:
                    new_scalars[index, j] = _checks.check_scalar_state(entry[scalar.name], f"{where}: {scalar.name}",
                                                                      scalar.kind)
        self._install(state=new_state, steps=new_steps, scalars=new_scalars,
                      fresh=np.zeros(len(self._params), dtype=np.uint8))
        for group, saved in zip(self.param_groups, options):
            params, names = group["params"], group.get("param_names")
            group.clear()
            group.update(saved)
            group["params"] = params
            if names is not None and "param_names" not in saved:  # as torch: the saved names, else its own
                group["param_names"] = names

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines += [f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params"]
        return "\n".join(lines + [")"])


class _Release:
    """Releases a lock when its with-block ends."""

    __slots__ = ("lock",)

    def __init__(self, lock):
        self.lock = lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.lock.release()


# Below this many elements in a param group a step runs on one thread: starting threads
# costs tens of microseconds, and one core keeps up with memory until about here.
PARALLEL_MIN_SIZE = 1 << 20


def _threads_for(size):
    """Threads for a step over `size` elements when the user did not say: one per
    PARALLEL_MIN_SIZE elements, at most one per core."""
    if size < 2 * PARALLEL_MIN_SIZE:  # (spares os.cpu_count, some 15 us, to every small optimizer)
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_THREADS, size // PARALLEL_MIN_SIZE))


def _as_list(groups):
    """param_groups as the compiled step reads them: a list (a list of the user's own class
    copied, the user's object left as it is, as torch leaves it)."""
    return groups if type(groups) is list else list(groups)


def _shaped_as(state, param):
    """A copy of a state array, in its parameter's shape where the sizes match: a parameter
    reshaped in place keeps its state (a step checks size and dtype)."""
    return state.reshape(param.shape).copy() if state.size == param.size else state.copy()


def _check_optimizer(optimizer):
    """Raise TypeError unless optimizer is a fastgd optimizer (MultiSteps', clipped_step's)."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a fastgd optimizer, got {type(optimizer).__name__}")


def _writable(array, dtype=None):
    """array, or a copy of it that is a plain ndarray, writable, aligned and C-contiguous (one
    unpickled from a read-only buffer or as a memory map, say); None as it is."""
    return None if array is None else np.require(array, dtype, ["C", "W", "A", "E"])


def _group_entries(groups):
    """The entries param groups list, in order."""
    return [entry for group in groups for entry in _as_entries(group["params"])]


def _listed_entries(groups):
    """_group_entries, or [] if they are not param groups (edited by hand)."""
    try:
        return _group_entries(groups)
    except (TypeError, KeyError):
        return []


def _data(entry):
    return entry.data if isinstance(entry, Parameter) else entry


def _as_entries(params):
    """A group's "params" as a list of entries (arrays or fastgd.Parameters)."""
    if isinstance(params, (np.ndarray, Parameter)):
        return [params]
    _checks.check_ordered(params)
    return list(params)


def _named_entries(params, where):
    """A group's "params" as (entries, names): torch's named parameters, (name, parameter) pairs
    (``model.named_parameters()``'s), give their names, which the group keeps in "param_names"
    as torch's does; names is None where none is named.  All or none must be named."""
    entries = _as_entries(params)
    pairs = [isinstance(entry, tuple) for entry in entries]
    if not any(pairs):
        return entries, None
    if not all(pairs):
        raise ValueError(f"{where}all parameters of a group must be with names or all without (torch's named "
                         f"parameters, (name, parameter) pairs); parameter {pairs.index(False)} has none")
    for i, entry in enumerate(entries):
        if len(entry) != 2:
            raise ValueError(f"{where}a named parameter is a (name, parameter) pair; parameter {i} is a tuple of "
                             f"{len(entry)}")
        if not isinstance(entry[0], str):  # (a tuple of two parameters, say, meant as a list)
            raise TypeError(f"{where}a named parameter is a (name, parameter) pair with a str name; parameter {i}'s "
                            f"name is a {_checks.type_name(entry[0])}")
    return [entry[1] for entry in entries], [entry[0] for entry in entries]


def _as_groups(params):
    if isinstance(params, (np.ndarray, Parameter)):
        raise TypeError(
            "params must be a list of arrays (or of param-group dicts), got a single "
            f"{type(params).__name__}; wrap it in a list: [params]"
        )
    if isinstance(params, dict):
        raise TypeError("params must be a list of arrays or a list of param-group dicts, got a dict; wrap it in a list")
    _checks.check_ordered(params)
    try:
        params = list(params)
    except TypeError:
        raise TypeError(
            f"params must be a list of arrays or of param-group dicts, got {type(params).__name__}"
        ) from None
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    if all(isinstance(entry, dict) for entry in params):
        return params
    if any(isinstance(entry, dict) for entry in params):
        raise TypeError("params must be all arrays or all param-group dicts, not a mix")
    return [{"params": params}]


def _slot(cls, name):
    """The descriptor of the slot `name` of cls or a base (a subclass's property of that name passed
    over), or None."""
    for klass in cls.__mro__:
        found = vars(klass).get(name)
        if isinstance(found, types.MemberDescriptorType):
            return found
    return None


def _group_where(index, numbered):
    """How a message names param group `index`: by its number where there are several."""
    return f"param group {index}: " if numbered else ""


def _step_overflow(plan, groups, numbered):
    """The error of a step that returned STEP_OVERFLOWS (Plan.overflow), having changed nothing."""
    _, index, step, is_float32 = plan.overflow()
    step = "its step" if step is None else f"step {step}"
    how = "overflow float32, the dtype of this group's parameters, or not be finite," if is_float32 else "not be finite"
    return ValueError(f"{_group_where(index, numbered)}lr={groups[index]['lr']!r} makes a scalar of {step} "
                      "(its step size, lr times factors such as 1 / (1 - beta1**step) or NAdam's 1 / (1 - "
                      f"mu_product), or decoupled weight decay's 1 - lr * weight_decay) {how} where it would turn "
                      "zero moments (or parameters) into NaN; nothing was changed: expected a smaller lr (or "
                      "weight_decay), or, for NAdam, beta1 further from 1 or a smaller momentum_decay (its "
                      "mu_product, kept in float32, rounds to 1)")


def _torch_keywords(foreach=None, fused=None, capturable=False, differentiable=False, where=""):
    """Check torch's keywords (TORCH_KEYWORDS) given to a constructor or in a group, so that
    torch's code runs: fastgd has one implementation (a fused, compiled pass), so foreach and
    fused (None, True or False) change nothing; it has no autograd or CUDA graphs, so capturable
    and differentiable must be False.  A group keeps those it is given, as torch's do."""
    for name, value in (("foreach", foreach), ("fused", fused)):
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where}{name} must be None, True or False, got {value!r}")
    if foreach and fused:
        raise ValueError(f"{where}foreach and fused cannot both be True (as in torch); fastgd's step is fused "
                         "either way")
    for name, value in (("capturable", capturable), ("differentiable", differentiable)):
        _checks.check_flag(value, f"{where}{name}")
        if value:
            raise ValueError(f"{where}{name}=True is torch's (for its "
                             + ("CUDA graphs" if name == "capturable" else "autograd")
                             + f"); fastgd has neither: use {name}=False")


@functools.cache
def _torch_keywords_of(cls):
    """The TORCH_KEYWORDS an optimizer class takes: its constructor's (its torch namesake's)."""
    return frozenset(TORCH_KEYWORDS) & set(inspect.signature(cls.__init__).parameters)


def _nesterov_rule(options, where):
    if options["nesterov"] and not (options["momentum"] > 0 and options["dampening"] == 0):
        raise ValueError(f"{where}Nesterov momentum requires a momentum > 0 and zero dampening")


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum, dampening, Nesterov momentum and weight decay.

    The first momentum buffer is the gradient itself, as in torch.optim.SGD.
    """

    algorithm = Algorithm(
        kernel="sgd",
        options=(Option("lr", "rate"), Option("momentum", "number"), Option("dampening", "rate"),
                 Option("weight_decay", "number"), Option("nesterov", "flag"), Option("maximize", "flag")),
        state=(State("momentum_buffer", needed_when="momentum", from_gradient=True),),
        counts_steps=False,
        # torch checks it on its constructor's options only: a group of its own, or a scheduler
        # cycling momentum down to 0 (CyclicLR, OneCycleLR), steps plain SGD at momentum 0 there, and so here
        rules=(Rule(reads=("nesterov", "momentum", "dampening"), check=_nesterov_rule, constructor_only=True),),
    )

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None, n_threads=None):
        _torch_keywords(foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize), n_threads)


class Adam(Optimizer):
    """Adam with bias correction, optional AMSGrad, and weight decay added to the gradient
    (or decoupled from it, as AdamW, with ``decoupled_weight_decay=True``)."""

    algorithm = Algorithm(
        kernel="adam",
        options=(Option("lr", "rate"), Option("betas", "fractions", fields=("beta1", "beta2")),
                 Option("eps", "number"), Option("weight_decay", "number"),
                 Option("amsgrad", "flag", fields=(None,)),  # (the engine's: max_exp_avg_sq, or NULL)
                 Option("maximize", "flag"), Option("decoupled_weight_decay", "flag")),
        state=(State("exp_avg"), State("exp_avg_sq"), State("max_exp_avg_sq", needed_when="amsgrad")),
    )

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False, foreach=None, capturable=False, differentiable=False,
                 fused=None, n_threads=None):
        _torch_keywords(foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, decoupled_weight_decay=decoupled_weight_decay), n_threads)


class AdamW(Adam):
    """Adam with decoupled weight decay: the parameter shrinks by lr * weight_decay before the Adam step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None, n_threads=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True, foreach=foreach, capturable=capturable,
                         differentiable=differentiable, fused=fused, n_threads=n_threads)

    def _load_state_dict(self, state_dict):
        # as torch's AdamW.__setstate__, which its load_state_dict calls: every group decouples
        # its weight decay again, whatever the group (or the state dict) said; under the load's
        # lock, so that no step between runs coupled decay
        super()._load_state_dict(state_dict)
        self._decouple()

    def __setstate__(self, state):
        super().__setstate__(state)
        self._decouple()

    def _decouple(self):
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum, in torch's formulation (eps outside the root)."""

    algorithm = Algorithm(
        kernel="rmsprop",
        options=(Option("lr", "rate"), Option("alpha", "number"), Option("eps", "number"),
                 Option("weight_decay", "number"), Option("momentum", "number"),
                 Option("centered", "flag", fields=(None,)),  # (the engine's: grad_avg, or NULL)
                 Option("maximize", "flag")),
        state=(State("square_avg"), State("grad_avg", needed_when="centered"),
               State("momentum_buffer", needed_when="momentum")),
    )

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False, *, n_threads=None):
        _torch_keywords(foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize), n_threads)


class Adagrad(Optimizer):
    """Adagrad with learning-rate decay lr / (1 + (step - 1) * lr_decay)."""

    algorithm = Algorithm(
        kernel="adagrad",
        options=(Option("lr", "rate"), Option("lr_decay", "number"), Option("weight_decay", "number"),
                 Option("initial_accumulator_value", "number", fields=(None,)), Option("eps", "number"),
                 Option("maximize", "flag")),
        state=(State("sum", initial="initial_accumulator_value"),),
        state_at_start=True,
    )

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None, n_threads=None):
        _torch_keywords(foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize), n_threads)


class Adamax(Optimizer):
    """Adamax: Adam with the infinity norm (a decayed running maximum of |g|) in place of the
    root of the second moment, as torch.optim.Adamax."""

    algorithm = Algorithm(
        kernel="adamax",
        options=(Option("lr", "rate"), Option("betas", "fractions", fields=("beta1", "beta2")),
                 Option("eps", "number"), Option("weight_decay", "number"), Option("maximize", "flag")),
        state=(State("exp_avg"), State("exp_inf")),
    )

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False, n_threads=None):
        _torch_keywords(foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize),
                         n_threads)


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012): steps of sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g, scaled
    by lr, with running averages of the squared gradients and steps, as torch.optim.Adadelta."""

    algorithm = Algorithm(
        kernel="adadelta",
        options=(Option("lr", "rate"), Option("rho", "unit"), Option("eps", "number"),  # (torch takes rho = 1 too)
                 Option("weight_decay", "number"), Option("maximize", "flag")),
        state=(State("square_avg"), State("acc_delta")),
    )

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False, n_threads=None):
        _torch_keywords(foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize),
                         n_threads)


class Lion(Optimizer):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2):
    p -= lr * (sign(beta1 * m + (1 - beta1) * g) + weight_decay * p), then
    m = beta2 * m + (1 - beta2) * g.  Not in torch.optim; sign(0) is 0."""

    algorithm = Algorithm(
        kernel="lion",
        options=(Option("lr", "rate"), Option("betas", "fractions", fields=("beta1", "beta2")),
                 Option("weight_decay", "number"), Option("maximize", "flag")),
        state=(State("exp_avg"),),
        counts_steps=False,
    )

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0, *, maximize=False, n_threads=None):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize), n_threads)


class RAdam(Optimizer):
    """RAdam (Liu et al., 2020): Adam whose adaptive step is rectified by the variance of its
    length, and taken as momentum SGD while that variance is intractable (rho_t <= 5), with
    weight decay added to the gradient or decoupled from it, as torch.optim.RAdam."""

    algorithm = Algorithm(
        kernel="radam",
        options=(Option("lr", "rate"), Option("betas", "fractions", fields=("beta1", "beta2")),
                 Option("eps", "number"), Option("weight_decay", "number"),
                 Option("decoupled_weight_decay", "flag"), Option("maximize", "flag")),
        state=(State("exp_avg"), State("exp_avg_sq")),
    )

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, maximize=False, foreach=None, capturable=False, differentiable=False, n_threads=None):
        _torch_keywords(foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize), n_threads)


class NAdam(Optimizer):
    """NAdam (Dozat, 2016): Adam with Nesterov momentum, its momentum coefficient warming up with
    momentum_decay, with weight decay added to the gradient or decoupled from it, as
    torch.optim.NAdam.  The product of the coefficients so far is kept per parameter
    (mu_product, in float32 as torch keeps it) and saved by state_dict."""

    algorithm = Algorithm(
        kernel="nadam",
        options=(Option("lr", "rate"), Option("betas", "fractions", fields=("beta1", "beta2")),
                 Option("eps", "number"), Option("weight_decay", "number"), Option("momentum_decay", "number"),
                 Option("decoupled_weight_decay", "flag"), Option("maximize", "flag")),
        state=(State("exp_avg"), State("exp_avg_sq")),
        scalar_state=(ScalarState("mu_product", 1.0, "unit"),),  # (a product of momentum coefficients)
    )

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, n_threads=None):
        _torch_keywords(foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize), n_threads)
