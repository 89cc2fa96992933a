"""Optimizers with torch.optim's names, defaults and update equations, on NumPy arrays.

An optimizer holds a flat list of parameter arrays and, per state name, a flat
list of state arrays; each param group owns a slice of them.  A step is one
compiled multi-tensor call for all groups.  It takes the arrays and options as
they are when they are ready (contiguous arrays of the parameters' dtype and
shape, plain numbers and bools); otherwise it changes nothing and hands back,
and the full checks here raise or convert, before the call is made again.
Subclasses say which options they take, which state they keep and which kernel
updates them; ``fastgd.reference`` overrides ``_update_all`` with plain NumPy.
"""
import os

import numpy as np

from . import _checks
from ._backend import kernels


def _require_done(outcome):
    """Raise if a compiled step refused input that the Python checks had passed (a bug)."""
    if outcome != kernels.STEP_DONE:
        raise RuntimeError(f"fastgd: the compiled step refused checked input (outcome {outcome}); please report")


class Parameter:
    """An array updated in place, with the gradient that the next step reads.

    ``opt.step()`` without arguments reads every ``.grad`` (a parameter whose
    ``.grad`` is None is skipped, as in torch); ``opt.zero_grad()`` clears them.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data, grad=None):
        self.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        self.grad = grad

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}, has_grad={self.grad is not None})"


class Optimizer:
    """Base class: param groups, gradient checks, state and state dicts."""

    #: names of the per-parameter state arrays, as torch names them
    state_names = ()
    #: whether a per-parameter step count is kept (and saved as "step")
    counts_steps = True
    #: whether the class updates with an _update_all of its own, which gets checked,
    #: converted gradients from step() (the compiled one checks and converts them itself)
    _own_update = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._own_update = cls._update_all is not Optimizer._update_all

    def __init__(self, params, defaults, n_threads=None):
        self.defaults = dict(defaults)
        self._check_options(self.defaults, "")
        if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(n_threads, int)
                                      or n_threads < 1):
            raise ValueError(f"n_threads must be None (choose by size) or a whole number >= 1, got {n_threads!r}")
        #: threads per step; None chooses by the size of each param group
        self.n_threads = n_threads
        self.param_groups = []
        self._params, self._holders, self._slices, self._auto_threads = [], [], [], []
        self._state = {name: [] for name in self.state_names}
        self._steps = np.zeros(0, dtype=np.int64)
        groups = _as_groups(params)
        for group in groups:
            self._add_group(group, len(groups) > 1)

    def add_param_group(self, param_group):
        """Add a group of parameters with options of its own (defaults fill the rest)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a param group must be a dict with a 'params' entry, got {type(param_group).__name__}")
        self._add_group(param_group, True)

    def _add_group(self, group, numbered):
        index = len(self.param_groups)
        where = f"param group {index}: " if numbered else ""
        if "params" not in group:
            raise ValueError(f"{where}a param group needs a 'params' entry")
        unknown = sorted(set(group) - set(self.defaults) - {"params"})
        if unknown:
            raise ValueError(
                f"{where}unknown option {', '.join(map(repr, unknown))}; "
                f"{type(self).__name__} takes {', '.join(sorted(self.defaults))}"
            )
        entries = group["params"]
        if isinstance(entries, (np.ndarray, Parameter)):
            entries = [entries]
        entries = list(entries)
        if not entries:
            raise ValueError(f"{where}optimizer got an empty parameter list")
        options = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        self._check_options(options, where)
        start = len(self._params)
        arrays = [
            _checks.check_param(_data(entry), f"parameter {start + i}")
            for i, entry in enumerate(entries)
        ]
        _checks.check_no_overlap(
            self._params + arrays, [f"parameter {i}" for i in range(start + len(arrays))]
        )
        # nothing is changed before this point
        self.param_groups.append({"params": entries, **options})
        self._params += arrays
        self._holders += [entry if isinstance(entry, Parameter) else None for entry in entries]
        self._slices.append((start, len(self._params)))
        self._auto_threads.append(_threads_for(sum(array.size for array in arrays)))
        for states in self._state.values():
            states += [None] * len(arrays)
        self._steps = np.concatenate([self._steps, np.zeros(len(arrays), dtype=np.int64)])
        self._allocate_state(self.param_groups[-1], start, len(self._params))
        self._new_plan()

    # -- what subclasses provide -------------------------------------------

    #: options that are finite numbers >= 0, numbers in [0, 1), pairs of those, and bools
    _nonnegative = ()
    _unit_interval = ()
    _unit_pairs = ()
    _flags = ("maximize",)

    @classmethod
    def _check_options(cls, options, where):
        """Raise TypeError/ValueError, naming the option, if a group's options are not valid."""
        for name in cls._nonnegative:
            _checks.check_real(options[name], where + name)
        for name in cls._unit_interval:
            _checks.check_real(options[name], where + name, below_one=True)
        for name in cls._unit_pairs:
            _checks.check_betas(options[name], where + name)
        for name in cls._flags:
            _checks.check_flag(options[name], where + name)
        cls._check_rules(options, where)

    #: whether the step's fast check tests SGD's rule for Nesterov momentum (see SGD._check_rules)
    _nesterov_rule = False

    @staticmethod
    def _check_rules(options, where):
        """Checks that involve several options; raise ValueError naming them."""

    def _state_needed(self, group):
        """Names of the state arrays a group's options need, with their initial value."""
        return {}

    #: the kernel that updates a parameter (see src/_kernels.pxd)
    _algorithm = None
    #: whether weight decay is decoupled from the gradient (AdamW)
    _decoupled = False

    def _update_all(self, grads):
        """Update every parameter in place from grads (one per parameter, as the caller gave
        them), in one compiled call, having checked them and every group's options.  A subclass
        that overrides this gets the gradients checked and converted by step() (_own_update).

        State the options need but a group lacks (an option switched on
        since the last step) is created by the update, as zeros."""
        if self._plan is None:
            raise NotImplementedError(f"{type(self).__name__} names no compiled kernel (_algorithm); "
                                      "a subclass of Optimizer implements _update_all(grads)")
        threads = self.n_threads or 0
        outcome = self._plan.step(self.param_groups, grads, threads)
        if outcome == kernels.STEP_ARRAYS_UNREADY:
            grads = self._converted(grads)  # raises, naming the array, unless it converts
            outcome = self._plan.step(self.param_groups, grads, threads)
        if outcome == kernels.STEP_OPTIONS_UNCHECKED:
            self._check_all_groups()  # raises, naming the option, unless the values are valid but unusual
            outcome = self._plan.step(self.param_groups, grads, threads, True)
        _require_done(outcome)

    def __getstate__(self):
        # the compiled plan is rebuilt from the lists it refers to
        return {key: value for key, value in vars(self).items() if key != "_plan"}

    def __setstate__(self, state):
        vars(self).update(state)
        self._new_plan()

    def _new_plan(self):
        """What every step reads, gathered for the compiled step; rebuilt when any of it is replaced
        (a step still running on the old plan then fails and changes nothing)."""
        old = getattr(self, "_plan", None)
        if old is not None:
            old.retire()
        if self._algorithm is None:  # a subclass with an update of its own
            self._plan = None
            return
        self._plan = kernels.Plan(
            self._algorithm, self._params, self._state, self.state_names, self._steps,
            self._slices, self._auto_threads, self._decoupled,
            (self._nonnegative, self._unit_interval, self._unit_pairs, self._flags, self._nesterov_rule))

    # -- stepping ------------------------------------------------------------

    def step(self, grads=None):
        """Update every parameter in place from its gradient.

        ``grads`` holds one array (or None, to skip that parameter) per
        parameter, in order; without it, each fastgd.Parameter's ``.grad`` is
        read.  Nothing is changed if any gradient or option is invalid.
        """
        grads = self._gradients(grads)
        self._update_all(self._converted(grads) if self._own_update else grads)

    def _where(self, index):
        return f"param group {index}: " if len(self.param_groups) > 1 else ""

    def _check_all_groups(self):
        for index, group in enumerate(self.param_groups):
            self._check_options(group, self._where(index))

    def _gradients(self, grads):
        if grads is None:
            plain = [i for i, holder in enumerate(self._holders) if holder is None]
            if plain:
                raise TypeError(
                    f"step() without gradients reads fastgd.Parameter.grad, but parameter {plain[0]} "
                    "is a plain array; pass step(grads) with one gradient per parameter"
                )
            grads = [holder.grad for holder in self._holders]
        elif type(grads) is not list:
            if not isinstance(grads, (list, tuple)):
                raise TypeError(
                    f"grads must be a list or tuple with one array per parameter, got {type(grads).__name__}"
                )
            grads = list(grads)
        if len(grads) != len(self._params):
            raise ValueError(f"step() got {len(grads)} gradients for {len(self._params)} parameters")
        return grads

    def _converted(self, grads):
        """The gradients as arrays the kernels read as they are (converted once where needed, the
        same array where not); raises, naming the first parameter or gradient that cannot be used."""
        return [
            _checks.convert_grad(grad, _checks.check_param(param, f"parameter {i}"), f"gradient {i}")
            for i, (param, grad) in enumerate(zip(self._params, grads))
        ]

    def _allocate_state(self, group, start, stop, every=False):
        """Create the state arrays the group's options need and it lacks.

        A group's state is created for all its parameters at once, so looking
        at the first one is enough, except after load_state_dict (``every``)."""
        for name, initial in self._state_needed(group).items():
            states = self._state[name]
            if every or states[start] is None:
                for i in range(start, stop):
                    if states[i] is None:
                        states[i] = np.full_like(self._params[i], initial)

    def zero_grad(self, set_to_none=True):
        """Clear every fastgd.Parameter's gradient: set it to None (torch's default) or fill it with zeros."""
        for holder in self._holders:
            if holder is not None and holder.grad is not None:
                if set_to_none:
                    holder.grad = None
                else:
                    holder.grad[...] = 0

    # -- state dicts -----------------------------------------------------------

    def state_dict(self):
        """A snapshot of the optimizer: plain Python and NumPy copies, picklable.

        The layout is torch's: ``{"state": {index: {...}}, "param_groups": [...]}``
        with parameters numbered in order across groups.
        """
        state = {}
        for i in range(len(self._params)):
            entry = {name: states[i].copy() for name, states in self._state.items() if states[i] is not None}
            if self.counts_steps:
                entry["step"] = int(self._steps[i])
            if entry:
                state[i] = entry
        groups = []
        for group, (start, stop) in zip(self.param_groups, self._slices):
            saved = {key: value for key, value in group.items() if key != "params"}
            saved["params"] = list(range(start, stop))
            groups.append(saved)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a snapshot from state_dict() of an optimizer over parameters of the same shapes.

        Everything is checked before anything is changed.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise TypeError("state_dict must be a dict with the keys 'state' and 'param_groups', as state_dict() returns")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict has {len(saved_groups) if isinstance(saved_groups, (list, tuple)) else 'no list of'} "
                f"param groups; this optimizer has {len(self.param_groups)}"
            )
        options = []
        for index, (saved, (start, stop)) in enumerate(zip(saved_groups, self._slices)):
            where = f"state_dict param group {index}: "
            if not isinstance(saved, dict) or len(saved.get("params", ())) != stop - start:
                raise ValueError(f"{where}expected a dict with {stop - start} params, as this optimizer's group has")
            unknown = sorted(set(saved) - set(self.defaults) - {"params"})
            if unknown:
                raise ValueError(f"{where}unknown option {', '.join(map(repr, unknown))}")
            group = {**self.defaults, **{k: v for k, v in saved.items() if k != "params"}}
            self._check_options(group, where)
            options.append(group)
        if not isinstance(saved_state, dict):
            raise TypeError("state_dict['state'] must be a dict from parameter index to its state")
        new_state = {name: [None] * len(self._params) for name in self.state_names}
        new_steps = np.zeros(len(self._params), dtype=np.int64)
        for key, entry in saved_state.items():
            if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or not 0 <= key < len(self._params):
                raise ValueError(f"state_dict['state'] has key {key!r}; expected parameter indices 0..{len(self._params) - 1}")
            param = self._params[key]
            where = f"state_dict state of parameter {key} ({_checks.describe(param)})"
            if not isinstance(entry, dict):
                raise TypeError(f"{where} must be a dict, got {type(entry).__name__}")
            allowed = set(self.state_names) | ({"step"} if self.counts_steps else set())
            unknown = sorted(set(entry) - allowed)
            if unknown:
                raise ValueError(f"{where} has unknown entries {unknown}; expected some of {sorted(allowed)}")
            for name in self.state_names:
                value = entry.get(name)
                if value is None:
                    continue
                if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                    raise TypeError(f"{where}: {name} must be a float array, got {type(value).__name__}")
                if value.shape != param.shape:
                    raise ValueError(f"{where}: {name} has shape {value.shape}; expected {param.shape}")
                new_state[name][key] = np.array(value, dtype=param.dtype, order="C", copy=True)
            step = entry.get("step", 0)
            if isinstance(step, bool) or not isinstance(step, (int, np.integer, float, np.floating)) \
                    or step != step or step < 0 or int(step) != step:
                raise ValueError(f"{where}: step must be a whole number >= 0, got {step!r}")
            new_steps[key] = int(step)
        # nothing is changed before this point
        for group, saved in zip(self.param_groups, options):
            group.update(saved)
        self._state = new_state
        self._steps = new_steps
        for group, (start, stop) in zip(self.param_groups, self._slices):
            self._allocate_state(group, start, stop, every=True)
        self._new_plan()

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines += [f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params"]
        return "\n".join(lines + [")"])


# Below this many elements in a param group a step runs on one thread: starting threads
# costs tens of microseconds, and one core keeps up with memory until about here.
PARALLEL_MIN_SIZE = 1 << 20


def _threads_for(size):
    """Threads for a step over `size` elements when the user did not say: one per
    PARALLEL_MIN_SIZE elements, at most one per core."""
    return max(1, min(os.cpu_count() or 1, size // PARALLEL_MIN_SIZE))


def _data(entry):
    return entry.data if isinstance(entry, Parameter) else entry


def _as_groups(params):
    if isinstance(params, (np.ndarray, Parameter)):
        raise TypeError(
            "params must be a list of arrays (or of param-group dicts), got a single "
            f"{type(params).__name__}; wrap it in a list: [params]"
        )
    if isinstance(params, dict):
        raise TypeError("params must be a list of arrays or a list of param-group dicts, got a dict; wrap it in a list")
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


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum, dampening, Nesterov momentum and weight decay.

    The first momentum buffer is the gradient itself, as in torch.optim.SGD.
    """

    state_names = ("momentum_buffer",)
    _algorithm = "sgd"
    counts_steps = False

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, n_threads=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize), n_threads)

    _nonnegative = ("lr", "momentum", "dampening", "weight_decay")
    _flags = ("nesterov", "maximize")

    _nesterov_rule = True

    @staticmethod
    def _check_rules(options, where):
        if options["nesterov"] and not (options["momentum"] > 0 and options["dampening"] == 0):
            raise ValueError(f"{where}Nesterov momentum requires a momentum > 0 and zero dampening")


class Adam(Optimizer):
    """Adam with bias correction, optional AMSGrad and L2 weight decay added to the gradient."""

    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _algorithm = "adam"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, n_threads=None):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize), n_threads)

    _nonnegative = ("lr", "eps", "weight_decay")
    _unit_pairs = ("betas",)
    _flags = ("amsgrad", "maximize")
    _moments = {"exp_avg": 0.0, "exp_avg_sq": 0.0}
    _moments_and_max = {**_moments, "max_exp_avg_sq": 0.0}

    def _state_needed(self, group):
        return self._moments_and_max if group["amsgrad"] else self._moments


class AdamW(Adam):
    """Adam with decoupled weight decay: the parameter shrinks by lr * weight_decay before the Adam step."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, n_threads=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, n_threads=n_threads)


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum, in torch's formulation (eps outside the root)."""

    state_names = ("square_avg", "grad_avg", "momentum_buffer")
    _algorithm = "rmsprop"

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *,
                 maximize=False, n_threads=None):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize), n_threads)

    _nonnegative = ("lr", "eps", "weight_decay", "momentum")
    _unit_interval = ("alpha",)
    _flags = ("centered", "maximize")
    _needed = {
        (centered, momentum): {"square_avg": 0.0, **({"grad_avg": 0.0} if centered else {}),
                               **({"momentum_buffer": 0.0} if momentum else {})}
        for centered in (False, True) for momentum in (False, True)
    }

    def _state_needed(self, group):
        return self._needed[bool(group["centered"]), group["momentum"] > 0]


class Adagrad(Optimizer):
    """Adagrad with learning-rate decay lr / (1 + (step - 1) * lr_decay)."""

    state_names = ("sum",)
    _algorithm = "adagrad"

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, *,
                 maximize=False, n_threads=None):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize), n_threads)

    _nonnegative = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def _state_needed(self, group):
        return {"sum": group["initial_accumulator_value"]}
