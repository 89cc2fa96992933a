"""Learning-rate schedulers with torch.optim.lr_scheduler's names, arguments, defaults and behaviour.

A scheduler changes the options in its optimizer's ``param_groups`` between
steps (``"lr"``, and ``"momentum"`` or ``"betas"`` for the cycling ones), as
torch's do, so it works with every fastgd optimizer: it reads nothing but
``param_groups`` and ``defaults``.  The values it writes are Python floats
(the compiled step reads those without a second look).

As in torch (2.13), ``step()`` moves a schedule on by one from the values in
the param groups (the chainable form: another scheduler's changes carry
over); ``step(epoch)`` (deprecated there too) sets ``last_epoch`` and uses the
closed form where the schedule has one.  Each schedule's closed form is
written once, below; the estimators' ``lr_schedule`` options use them.
"""
import contextlib
import copy
import inspect
import math
import numbers
import reprlib
import types
import warnings
import weakref
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping

import numpy as np

from . import _checks
from .optim import _check_optimizer

__all__ = [
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR",
    "OneCycleLR", "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau",
]


# -- closed forms: the learning rate `epoch` steps after the start, from the base rate ------------------

def _exponential_lr(base_lr, gamma, epoch):
    return base_lr * gamma ** epoch


def _step_lr(base_lr, gamma, step_size, epoch):
    return base_lr * gamma ** (epoch // step_size)


def _raise_if_out_of_range(scheduler, epoch, error):
    """Raise ValueError from error if it is fastgd's own arithmetic of the schedule leaving
    float64's range at that epoch (an OverflowError or a ZeroDivisionError, as torch's raise
    there), naming the scheduler; else nothing: an error of the user's code (a function given,
    see _users; a subclass's own get_lr) goes on as it is."""
    if (isinstance(error, (OverflowError, ZeroDivisionError)) and not getattr(error, "_fastgd_users", False)
            and all(getattr(type(scheduler), name).__module__.startswith("fastgd.")
                    for name in ("get_lr", "_get_closed_form_lr") if hasattr(type(scheduler), name))):
        raise ValueError(f"{type(scheduler).__name__}'s learning rate at epoch {epoch} is beyond float64's range "
                         f"({type(error).__name__}: {error}); expected options, and an epoch, whose schedule stays "
                         "finite") from error


def _users(fn, *args):
    """fn(*args), a function the user gave (an lr_lambda, a scale_fn): an error it raises is marked
    as its own, which _raise_if_out_of_range passes on as it is."""
    try:
        return fn(*args)
    except Exception as error:
        try:
            error._fastgd_users = True
        except AttributeError:  # (an exception object that takes no attributes)
            pass
        raise


def _cos(angle):
    """math.cos of an angle that must be finite: an OverflowError where it is not (math.cos's own
    ValueError, "math domain error", is worded otherwise from Python 3.14 on)."""
    if not math.isfinite(angle):
        raise OverflowError(f"the angle {angle} (pi * epoch / T_max) is beyond float64's range")
    return math.cos(angle)


def _cosine_lr(base_lr, eta_min, T_max, epoch):
    # (halved before the product, not after: the same bits but for subnormal rates, and the product
    # of a span near float64's largest and 1 + cos does not overflow where the rate does not)
    return eta_min + (base_lr - eta_min) * ((1 + _cos(math.pi * epoch / T_max)) / 2)


def _inverse_scaling_lr(base_lr, power_t, t):
    """scikit-learn's "invscaling": eta0 / t ** power_t at step t (from 1); t may be an array."""
    with np.errstate(over="ignore"):  # a large power_t: t ** power_t is inf, the rate 0
        return base_lr / t ** power_t


def _optimal_lr(alpha, t):
    """scikit-learn's SGD "optimal": 1 / (alpha (t0 + t - 1)) at step t (from 1), Bottou's heuristic,
    t0 making the first rate 1 / sqrt(sqrt(alpha)) (scikit-learn's typw / max(1, dloss(1, -typw)),
    and the slope of each of its losses there is <= 0); t may be an array.  inf where alpha is so large
    that t0 is lost in rounding (the first step: alpha t0 = 0), as scikit-learn's, whose fit then fails."""
    typw = math.sqrt(1.0 / math.sqrt(alpha))
    with np.errstate(divide="ignore"):
        return np.divide(1.0, alpha * (1.0 / (typw * alpha) + np.asarray(t) - 1))


_EPOCH_WARNING = ("scheduler.step(epoch) is deprecated, as in torch: call scheduler.step() once per step. "
                  "Until it goes, step(epoch) sets last_epoch and uses the schedule's closed form where it has one.")
_GET_LR_WARNING = "get_lr() computes the next rates of a step; to read the rates set last, call get_last_lr()"


# What the arguments may be: what torch 2.13 takes, but what would crash later or give a schedule that
# makes no sense (a NaN, a fractional count of epochs, which step() and step(epoch) would read apart).

def _check_real(value, name):
    _checks.check_real_type(value, name)
    _checks.as_double(value, name)


def _check_int(value, name, low, expected=None):
    """An int (a float refused with ValueError, as torch refuses it for this argument; no number,
    a string or None, with TypeError, as fastgd refuses no number)."""
    expected = expected or f"an integer >= {low}"
    _checks.check_real_type(value, name, expected)
    if not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    _checks.as_double(value, name)  # (the schedule computes in doubles)
    return int(value)


def _check_whole(value, name, low):
    """A count of epochs: an int or a float of a whole value (torch takes 30.0 as 30), >= low; as an int.
    A fractional one is refused: the schedule step by step and step(epoch)'s closed form would part."""
    _check_real(value, name)
    if not (math.isfinite(value) and value == int(value) and value >= low):
        raise ValueError(f"{name} must be a whole number >= {low} (an int, or a float such as 30.0), got {value!r}")
    return int(value)


def _check_number(value, name, low=-math.inf, high=math.inf, low_open=False, high_open=False):
    _check_real(value, name)
    if math.isnan(value) or not (
            (low < value if low_open else low <= value) and (value < high if high_open else value <= high)):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return value


def _range(check, *args, **kwargs):
    """The rule of an argument a scheduler keeps (see LRScheduler._kept): check(value, name, *args, **kwargs)."""
    return lambda value, name: check(value, name, *args, **kwargs)


_FINITE, _EPOCHS = _range(_checks.check_finite), _range(_check_whole, 1)  # (a count of epochs >= 1)


def _per_group(name, optimizer, value):
    """One value per param group: a list or tuple of that length, or one value for all."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"{name} has {len(value)} values; the optimizer has {len(optimizer.param_groups)} "
                             "param groups (give one value for all, or one per group)")
        return list(value)
    return [value] * len(optimizer.param_groups)


def _group_values(optimizer, key):
    return [group[key] for group in optimizer.param_groups]


def _momentum_key(use_beta1):
    """The option a cycled momentum is written into: "betas" (its beta1), or "momentum"."""
    return "betas" if use_beta1 else "momentum"


def _set_momentum(group, use_beta1, value):
    """Write a cycled momentum (see _momentum_key)."""
    key = _momentum_key(use_beta1)
    group[key] = (float(value), *group[key][1:]) if use_beta1 else float(value)


def _copied(value, optimizer):
    """A deep copy of value, but for the optimizer (and so its parameters), which it shares, and for
    what does not copy (a lock or file in a subclass's attribute), which it shares too, as torch
    shares everything: what state_dict() gives and load_state_dict() takes of a scheduler's own
    attributes, so that neither changes the other later (a callable's: _attributes_of)."""
    memo = {id(optimizer): optimizer}
    try:
        return copy.deepcopy(value, memo)
    except Exception:  # (TypeError: cannot pickle '_thread.lock' object, say) its parts, one by one
        if isinstance(value, dict):
            copied = copy.copy(value)  # (its class: a Counter stays one)
            for key, item in value.items():
                copied[key] = _copied(item, optimizer)
            return copied
        if type(value) in (list, tuple):
            return type(value)(_copied(item, optimizer) for item in value)
        return value


def _attributes_of(fn):
    """What state_dict() saves of a function the user gave (lr_lambda, scale_fn): None for a plain
    function; a callable object's attributes, as torch saves them (a shallow copy of its __dict__:
    an attribute referring to a live object, a tracker of the training, say, goes on referring to
    it when loaded, as the function's closure would)."""
    if isinstance(fn, (types.FunctionType, types.BuiltinFunctionType, np.ufunc)):  # (math.exp, np.exp: no state)
        return None
    if not hasattr(fn, "__dict__"):  # (its state in __slots__, say: torch's state_dict fails too)
        raise TypeError(f"state_dict() saves a callable object's attributes (its __dict__), as torch's does; "
                        f"this scheduler's {type(fn).__name__} object has none: give its class a __dict__, or "
                        "use a function")
    return dict(vars(fn))


@contextlib.contextmanager
def _undone_on_failure(optimizer):
    """Put the options of the optimizer's groups (and its step) back as they were if the block
    raises: a scheduler that fails to start (a function of the user's raising) changes nothing."""
    saved = [(group, {key: value for key, value in group.items() if key != "params"})
             for group in optimizer.param_groups]
    step = vars(optimizer).get("step")
    try:
        yield
    except BaseException:
        for group, options in saved:
            params = group.get("params")
            group.clear()
            group["params"] = params
            group.update(options)
        if step is None:
            vars(optimizer).pop("step", None)
        else:
            vars(optimizer)["step"] = step
        raise


#: the entries of fastgd's schedulers (swa_utils.SWALR's too): torch's names.  load_state_dict checks
#: the entries of these names (_check_entry); a subclass's own (of other names) it loads as they are,
#: as torch's does
_ENTRIES = frozenset({
    "T_0", "T_cur", "T_i", "T_max", "T_mult", "_anneal_func_type", "_anneal_strategy", "_get_lr_called_within_step",
    "_is_initial", "_last_lr", "_milestones", "_scale_fn_custom", "_schedule_phases", "_schedulers", "_step_count",
    "anneal_epochs", "base_lrs", "base_momentums", "best", "cooldown", "cooldown_counter", "cycle_momentum",
    "default_min_lr", "end_factor", "eps", "eta_min", "factor", "gamma", "last_epoch", "lr_lambdas", "max_lrs",
    "max_momentums", "milestones", "min_lrs", "mode", "mode_worse", "num_bad_epochs", "optimizer", "patience",
    "power", "scale_mode", "start_factor", "step_ratio", "step_size", "threshold", "threshold_mode", "total_iters",
    "total_size", "total_steps", "use_beta1"})
#: of those that a scheduler computes (the arguments its constructor keeps as they were given are
#: checked by its own rules: LRScheduler._kept), the entries that count steps (whole numbers), those
#: that a step divides by (above 0), and those that count steps or a fraction of them (finite, as
#: all of the others) (step(epoch) may set a fractional last_epoch, as torch's, and T_cur with it;
#: ReduceLROnPlateau's cooldown counts down from its cooldown, which may be fractional or inf, as torch's)
_WHOLE_ENTRIES = frozenset({"_step_count", "T_i", "_milestones", "num_bad_epochs"})
_POSITIVE_ENTRIES = frozenset({"T_i", "total_size", "step_ratio"})
#: (and the cycled momentums, which a step writes: an inf made the next step write a NaN or inf
#: rate, refused only at the optimizer's step)
_FINITE_ENTRIES = _WHOLE_ENTRIES | _POSITIVE_ENTRIES | {"last_epoch", "T_cur", "base_momentums", "max_momentums"}
#: the entries that hold a number per param group, as many as the optimizer had when they were
#: last written: a group added after the scheduler was made is in _last_lr (after a step), not in
#: base_lrs, as in torch's; those written when the scheduler was made (_MADE_PER_GROUP), which a
#: step zips together, are of one length
_MADE_PER_GROUP = ("base_lrs", "max_lrs", "base_momentums", "max_momentums")
_PER_GROUP_ENTRIES = frozenset({*_MADE_PER_GROUP, "_last_lr", "min_lrs"})
#: entries that are None or a number (ReduceLROnPlateau's min_lr for groups added later: None when
#: it was made with a min_lr per group)
_NONE_OR_NUMBER = frozenset({"default_min_lr"})


def _check_entry(key, held, loaded, owner, groups):
    """Raise ValueError unless a loaded entry can stand where the scheduler holds `held`: of its
    kind (_same_kind; a list of a number per group at most as long as the optimizer's groups: see
    _PER_GROUP_ENTRIES), no NaN, a finite (and whole) number for a count of steps, above 0 for what
    a step divides by (torch loads anything, and fails later or never)."""
    if key in _PER_GROUP_ENTRIES and isinstance(held, list):
        if not (isinstance(loaded, (list, tuple)) and 0 < len(loaded) <= groups):
            raise ValueError(f"state_dict[{key!r}] is {reprlib.repr(loaded)}; expected a list of a number per "
                             f"param group, as the optimizer had them (this {owner}'s has {groups})")
        held = held[:1] * len(loaded)
    if key in _NONE_OR_NUMBER:
        if loaded is None:
            return
        held = 0.0  # a number, whether this scheduler holds one or None
    if not _same_kind(held, loaded):
        raise ValueError(f"state_dict[{key!r}] is {reprlib.repr(loaded)}; this {owner} holds "
                         f"{reprlib.repr(held)} there, and a value of that kind is expected")
    numbers_in = [v for v in (loaded if isinstance(loaded, (list, tuple)) else [loaded])
                  if isinstance(v, numbers.Real) and not isinstance(v, bool)]
    if any(v != v for v in numbers_in):
        raise ValueError(f"state_dict[{key!r}] holds NaN")
    if key in _FINITE_ENTRIES and not all(math.isfinite(_checks.as_double(v, f"state_dict[{key!r}]"))
                                          for v in numbers_in):
        raise ValueError(f"state_dict[{key!r}] is {loaded!r}; expected a finite number")
    if key in _WHOLE_ENTRIES and any(v != int(v) for v in numbers_in):
        raise ValueError(f"state_dict[{key!r}] is {loaded!r}; expected a whole number (a count of steps)")
    if key in _POSITIVE_ENTRIES and any(not v > 0 for v in numbers_in):
        raise ValueError(f"state_dict[{key!r}] is {loaded!r}; expected a number above 0")


def _numbers_in(state):
    """A saved state (and its schedulers' states) with the 0-d arrays of numbers in its lists of a
    number per group (_PER_GROUP_ENTRIES) as their numbers: torch's 0-d tensors, converted, which a
    Tensor lr leaves in base_lrs and _last_lr; the NumPy numbers of fastgd's own entries (_ENTRIES)
    as Python's (a subclass's own entries as they are)."""
    if not isinstance(state, dict):
        return state

    def plain(key, value):
        if key == "_schedulers" and isinstance(value, (list, tuple)):
            return [_numbers_in(inner) for inner in value]
        if key in _PER_GROUP_ENTRIES and type(value) in (list, tuple):
            return type(value)(map(_checks.number_of, value))
        if key in _ENTRIES and isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return value.item()  # a Python number (an np.int64 count wrapped at 2**63)
        return value
    return {key: plain(key, value) for key, value in state.items()}


def _same_kind(held, loaded):
    """Whether a loaded state entry is of the kind the scheduler holds: a number for a number (a
    bool for a bool), a string for a string, a list as long for a list, a dict for a dict; None
    and other kinds take anything (a function's attributes, say)."""
    if isinstance(held, (bool, str)):
        return type(loaded) is type(held)
    if isinstance(held, numbers.Real):
        return isinstance(loaded, numbers.Real) and not isinstance(loaded, bool)
    if isinstance(held, (list, tuple)):
        return isinstance(loaded, (list, tuple)) and len(loaded) == len(held) and all(
            _same_kind(a, b) for a, b in zip(held, loaded))
    if isinstance(held, dict):
        return isinstance(loaded, dict)
    return True


def _lr_of(group, index):
    """param_groups[index]'s lr as a float (as torch's schedulers read it); TypeError naming it
    unless it is a real number (as the optimizer's step refuses it)."""
    lr = group.get("lr")
    _checks.check_real_type(lr, f"param_groups[{index}]['lr']", "a real number, from which the scheduler "
                            "computes the next rate")
    return float(lr)


@contextlib.contextmanager
def _attributes_undone_on_failure(schedulers):
    """Put the attributes of the schedulers back as they were if the block raises (a step
    replaces them, never changes them in place)."""
    saved = [(scheduler, dict(vars(scheduler))) for scheduler in schedulers]
    try:
        yield
    except BaseException:
        for scheduler, attributes in saved:
            vars(scheduler).clear()
            vars(scheduler).update(attributes)
        raise


class _FirstStep:
    """Stands in for an optimizer's step until its first call, which it notes (in the optimizer's
    _opt_called, as torch does) before putting the step back: so that a scheduler stepped first
    can warn, without a wrapper left on every later step.  The step it stands in for is the one
    the optimizer had, its class's or a user's own (an instance attribute, kept as torch's wrapper
    keeps it); it calls that one itself, never optimizer.step again (a user's wrapper of this
    stand-in may be there by then).  It refers to the optimizer weakly, as torch's wrapper does
    (a user's step bound to it as its function): the optimizer holds it, and a strong reference
    would keep both (and the parameters) alive after their last user let go, until the cycle
    collector ran.  Picklable, with the optimizer."""

    def __init__(self, optimizer, own=None, bound=False):
        self._optimizer = weakref.ref(optimizer)
        self._own, self._bound = own, bound  # the user's step (its function if bound), or None

    @classmethod
    def install(cls, optimizer):
        own = vars(optimizer).get("step")
        bound = isinstance(own, types.MethodType) and own.__self__ is optimizer
        optimizer.step = cls(optimizer, own.__func__ if bound else own, bound)

    def __reduce__(self):
        return _FirstStep, (self._optimizer(), self._own, self._bound)

    def _step(self, optimizer):
        """The step this stands in for, bound to optimizer."""
        if self._own is None:  # (bound as the class binds it: a staticmethod's too)
            return inspect.getattr_static(type(optimizer), "step").__get__(optimizer, type(optimizer))
        return types.MethodType(self._own, optimizer) if self._bound else self._own

    def __call__(self, *args, **kwargs):
        optimizer = self._optimizer()
        if optimizer is None:  # (torch's wrapper fails too, on None)
            raise ReferenceError("step() of an optimizer that no longer exists: until its first step, a scheduler "
                                 "stands in for it and refers to the optimizer weakly, as torch's; keep the "
                                 "optimizer, not only its step")
        step = self._step(optimizer)
        _note_step(optimizer)
        return step(*args, **kwargs)


def _note_step(optimizer):
    """What a step of optimizer does for its schedulers: it is noted (torch's _opt_called), and the
    step a scheduler's stand-in took the place of put back.  A step taken another way than by
    optimizer.step() (MultiSteps') calls this itself."""
    stand_in = vars(optimizer).get("step")
    if isinstance(stand_in, _FirstStep):
        if stand_in._own is None:
            del vars(optimizer)["step"]
        else:
            optimizer.step = stand_in._step(optimizer)
    optimizer._opt_called = True


class LRScheduler:
    """Base class of the schedulers: sets each group's ``initial_lr`` (if it has none) when
    ``last_epoch`` is -1, keeps ``base_lrs`` and ``last_epoch``, and makes the first step."""

    #: whether get_lr writes the cycled momentum into the groups (CyclicLR's and OneCycleLR's, with
    #: cycle_momentum), which a step that raises puts back: a class flag, as a user's subclass may
    #: have an attribute named cycle_momentum of its own
    _cycles_momentum = False
    #: the constructor's arguments kept as entries of their name, each with its rule (_range's): the
    #: constructor's, and load_state_dict's for the loaded value (a step would read it as given)
    _kept = {}

    def _checked(self, name, value):
        return self._kept[name](value, name)

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(optimizer)
        _check_int(last_epoch, "last_epoch", -1, "an integer >= -1 (-1: start the schedule)")
        if last_epoch != -1:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param_groups[{i}] has no 'initial_lr': resuming a schedule (last_epoch="
                                   f"{last_epoch}) needs the optimizer state of the run it resumes, loaded first")
        with _undone_on_failure(optimizer):
            if last_epoch == -1:
                for group in optimizer.param_groups:
                    group.setdefault("initial_lr", group["lr"])
            self.optimizer = optimizer
            self.base_lrs = _group_values(optimizer, "initial_lr")
            self.last_epoch = int(last_epoch)
            if not getattr(optimizer, "_opt_called", False) and not isinstance(vars(optimizer).get("step"), _FirstStep):
                _FirstStep.install(optimizer)
            self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def state_dict(self):
        """The scheduler's state: its attributes but the optimizer (copies, but for what does not
        copy, see _copied; torch's keys)."""
        return _copied({key: value for key, value in vars(self).items() if key != "optimizer"}, self.optimizer)

    def load_state_dict(self, state_dict):
        """Restore a state from state_dict() (this scheduler's class, fastgd's or torch's); checked
        before anything changes (the schedulers in it too): each entry must be of the kind this
        scheduler holds there (see _check_entry), and the modes known ones."""
        state_dict = _numbers_in(state_dict)
        self._check_state_dict(state_dict)
        self._load(state_dict)

    def _load(self, state_dict):
        """Take a state that _check_state_dict passed."""
        vars(self).update(_copied(state_dict, self.optimizer))

    def _check_state_dict(self, state_dict):
        """Raise, changing nothing, unless state_dict can be loaded (each subclass checks its own)."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, as state_dict() returns; got {type(state_dict).__name__}")
        loadable = set(vars(self)) - {"optimizer"}
        # another scheduler's entries are refused (its state, loaded by mistake), as are the
        # optimizer and names of the class's methods and attributes; others, a subclass's own (one
        # it makes at a step, say), load as they are, as torch's
        unknown = sorted(map(str, {key for key in set(state_dict) - loadable
                                   if not isinstance(key, str) or key in _ENTRIES or key in vars(self)
                                   or hasattr(type(self), key)}))
        if unknown:
            raise ValueError(f"state_dict has entries {unknown} that a {type(self).__name__} does not have; "
                             f"expected some of {sorted(loadable)}")
        for key, value in state_dict.items():
            if key in _ENTRIES and key not in self._state_of_its_own:
                _check_entry(key, vars(self)[key], value, type(self).__name__, len(self.optimizer.param_groups))
        for key, check in self._kept.items():
            if key in state_dict:
                check(state_dict[key], f"state_dict[{key!r}]")
        made = {key: state_dict.get(key, vars(self).get(key)) for key in _MADE_PER_GROUP}
        lengths = {key: len(value) for key, value in made.items() if isinstance(value, (list, tuple))}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"state_dict's lists of a number per group made with the scheduler are of different "
                             f"lengths ({lengths}, with this {type(self).__name__}'s for those it lacks); expected "
                             "one length, the number of groups when it was made")

    #: entries whose kind a subclass checks itself
    _state_of_its_own = frozenset({"optimizer"})

    def get_last_lr(self):
        """The learning rates of the param groups as this scheduler set them last."""
        return list(self._last_lr)

    def get_lr(self):
        """The learning rates of the next step (a step calls it; get_last_lr() reads the last)."""
        raise NotImplementedError

    def _warn_outside_step(self):
        if not getattr(self, "_get_lr_called_within_step", False):
            warnings.warn(_GET_LR_WARNING, UserWarning, stacklevel=3)

    def step(self, epoch=None):
        """Move the schedule on by one step (call it after the optimizer's step)."""
        if self._step_count == 1:
            self._warn_if_stepped_first()
        if epoch is not None:
            # (10**400: the closed forms raised OverflowError; NaN or inf: a NaN rate, or 0, which the
            # state dict then held and load_state_dict refused)
            _checks.check_finite(epoch, "epoch")
            warnings.warn(_EPOCH_WARNING, UserWarning, stacklevel=2)
        self._step_count += 1
        try:
            self._update_lr(epoch)
        except BaseException:
            self._step_count -= 1
            raise

    def _warn_if_stepped_first(self):
        optimizer = self.optimizer
        if getattr(optimizer, "_opt_called", False):
            return
        if isinstance(vars(optimizer).get("step"), _FirstStep):
            warnings.warn("lr_scheduler.step() was called before optimizer.step(): the first learning rate of the "
                          "schedule is skipped. Call optimizer.step() first, then lr_scheduler.step().",
                          UserWarning, stacklevel=3)
        else:
            warnings.warn("optimizer.step() was replaced after the learning-rate scheduler was made; call "
                          "optimizer.step() before lr_scheduler.step().", UserWarning, stacklevel=3)

    def _update_lr(self, epoch=None):
        """Set the groups' learning rates for the next step: last_epoch + 1 (or epoch, in closed form)."""
        last_epoch = self.last_epoch
        self._get_lr_called_within_step = True
        # the one option get_lr may write (CyclicLR's and OneCycleLR's cycled momentum), as it was in
        # each group (not a copy of every option: this runs at every step); the rates are written last, checked
        written = _momentum_key(self.use_beta1) if self._cycles_momentum and self.cycle_momentum else None
        saved = [] if written is None else [(group, written in group, group.get(written))
                                            for group in self.optimizer.param_groups]
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                closed_form = getattr(self, "_get_closed_form_lr", None)
                values = closed_form() if closed_form is not None else self.get_lr()
            self._set_lrs(values)
        except BaseException as error:
            self.last_epoch = last_epoch
            for group, present, value in saved:
                if present:
                    group[written] = value
                else:
                    group.pop(written, None)
            if isinstance(error, (TypeError, ValueError)):  # from a group's lr that is no number? Named, if so
                for i, group in enumerate(self.optimizer.param_groups):
                    _lr_of(group, i)
            _raise_if_out_of_range(self, last_epoch + 1 if epoch is None else epoch, error)
            raise
        finally:
            self._get_lr_called_within_step = False

    def _check_group_keys(self, keys):
        """Raise ValueError naming the first of keys (which this scheduler wrote into each group
        at its start, and reads from each) that a group lacks: one added since without them (torch's
        raise KeyError); a group copied from another carries them.  In the first step of a scheduler
        made with last_epoch >= 0, KeyError, as LRScheduler's for initial_lr: the run it resumes
        wrote them, and its optimizer state was not loaded."""
        for i, group in enumerate(self.optimizer.param_groups):
            if missing := [key for key in keys if key not in group]:
                if self._is_initial:  # made with last_epoch >= 0 (a start writes the keys): as LRScheduler's
                    raise KeyError(f"param_groups[{i}] has no {missing[0]!r}: resuming a schedule (last_epoch="
                                   f"{self.last_epoch - 1}) needs the optimizer state of the run it resumes, "
                                   "loaded first")
                raise ValueError(f"param_groups[{i}] has no {missing[0]!r}: {type(self).__name__} reads it from each "
                                 "group, as it wrote it there at its start; give a group added since the keys of "
                                 "another (copy it), or make a new scheduler")

    def _check_group_count(self, count):
        groups = self.optimizer.param_groups
        if count != len(groups):
            raise ValueError(f"the optimizer has {len(groups)} param groups; this scheduler was made for "
                             f"{count} (a group added since needs a new scheduler)")

    def _set_lrs(self, values):
        groups = self.optimizer.param_groups
        self._check_group_count(len(values))
        values = [float(lr) for lr in values]
        for group, lr in zip(groups, values):
            group["lr"] = lr
        self._last_lr = _group_values(self.optimizer, "lr")


class _LRScheduler(LRScheduler):
    """LRScheduler by its older name, which torch keeps for the subclasses written against it."""


class _WithFunctions(LRScheduler):
    """A scheduler holding a function per group: only callable objects' attributes are saved."""

    _state_of_its_own = LRScheduler._state_of_its_own | {"lr_lambdas"}

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer(optimizer)
        functions = _per_group("lr_lambda", optimizer, lr_lambda)
        for function in functions:
            if not callable(function):
                raise TypeError(f"lr_lambda must be a function of the epoch, got {type(function).__name__}")
        self.lr_lambdas = functions
        super().__init__(optimizer, last_epoch)

    def state_dict(self):
        saved = {key: value for key, value in vars(self).items() if key not in ("optimizer", "lr_lambdas")}
        saved = _copied(saved, self.optimizer)
        saved["lr_lambdas"] = [_attributes_of(fn) for fn in self.lr_lambdas]
        return saved

    def _check_state_dict(self, state_dict):
        super()._check_state_dict(state_dict)
        saved = state_dict.get("lr_lambdas", [None] * len(self.lr_lambdas))
        # shorter where saved before a group was added, as base_lrs then is: torch loads those
        # entries (a LambdaLR's next step then fails on base_lrs, as torch's does)
        if not isinstance(saved, (list, tuple)) or len(saved) > len(self.lr_lambdas):
            raise ValueError(f"state_dict['lr_lambdas'] must be a list of at most {len(self.lr_lambdas)} entries, "
                             f"one per lr_lambda of this {type(self).__name__}; got "
                             f"{len(saved) if isinstance(saved, (list, tuple)) else type(saved).__name__}")
        for fn, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None and (not isinstance(attributes, dict) or not hasattr(fn, "__dict__")):
                raise TypeError("state_dict['lr_lambdas'] must hold None (a function) or a dict of the "
                                "attributes of a callable object, for each lr_lambda")

    def _load(self, state_dict):
        saved = state_dict.get("lr_lambdas", [None] * len(self.lr_lambdas))
        vars(self).update(_copied({key: value for key, value in state_dict.items() if key != "lr_lambdas"},
                                  self.optimizer))
        for fn, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                vars(fn).update(attributes)


class LambdaLR(_WithFunctions):
    """lr = initial_lr * lr_lambda(epoch); lr_lambda: one function, or a list with one per group."""

    def get_lr(self):
        self._warn_outside_step()
        return [base_lr * _users(fn, self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_WithFunctions):
    """lr *= lr_lambda(epoch) at every step after the first."""

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * _users(fn, self.last_epoch)
                for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups)]


class StepLR(LRScheduler):
    """lr *= gamma every step_size epochs."""

    _kept = {"step_size": _EPOCHS, "gamma": _FINITE}

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = self._checked("step_size", step_size)
        self.gamma = self._checked("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [_step_lr(base_lr, self.gamma, self.step_size, self.last_epoch) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr *= gamma at each milestone epoch (gamma ** n at a milestone listed n times, or mapped
    to n: milestones is counted as torch counts it, Counter(milestones))."""

    _kept = {"gamma": _FINITE}

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = self._counted(milestones)
        self.gamma = self._checked("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _counted(milestones):
        """torch's Counter(milestones), checked: each milestone a whole number of epochs >= 0, each
        count an int >= 0 (torch's closed form fails on a float count)."""
        try:
            counted = list(milestones.items() if isinstance(milestones, Mapping) else
                           ((milestone, 1) for milestone in milestones))
        except TypeError:
            raise TypeError(f"milestones must be a list of epochs (or a mapping from epoch to how many times "
                            f"it counts), got {type(milestones).__name__}") from None
        result = Counter()
        for milestone, count in counted:
            result[_check_whole(milestone, "each milestone", 0)] += _check_int(
                count, f"the count of milestone {milestone!r}", 0)
        return result

    def _check_state_dict(self, state_dict):
        super()._check_state_dict(state_dict)
        if "milestones" in state_dict:  # by the constructor's rules (_same_kind saw a dict)
            try:
                self._counted(state_dict["milestones"])
            except (TypeError, ValueError) as error:
                raise ValueError(f"state_dict['milestones']: {error}") from None

    def _load(self, state_dict):
        super()._load(state_dict)
        self.milestones = self._counted(self.milestones)  # a Counter, as the steps read it

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch not in self.milestones:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch] for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base_lr * self.gamma ** passed for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    """lr = initial_lr * factor for the first total_iters epochs (at least 1), then initial_lr."""

    # total_iters 0 refused: torch's step() would keep factor forever, its closed form gives initial_lr
    _kept = {"factor": _range(_check_number, 0, 1), "total_iters": _EPOCHS}

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        self.factor = self._checked("factor", factor)
        self.total_iters = self._checked("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return _group_values(self.optimizer, "lr")
        if self.factor == 0 or not math.isfinite(1.0 / self.factor):  # nothing to divide back (0, or a subnormal
            return self._get_closed_form_lr()  # whose inverse is inf: torch's rate becomes inf or NaN): the closed form
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        scale = self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor)
        return [base_lr * scale for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """lr = initial_lr * a factor going linearly from start_factor to end_factor over total_iters epochs."""

    _kept = {"start_factor": _range(_check_number, 0, 1, low_open=True), "end_factor": _range(_check_number, 0, 1),
             "total_iters": _EPOCHS}

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        self.start_factor = self._checked("start_factor", start_factor)
        self.end_factor = self._checked("end_factor", end_factor)
        self.total_iters = self._checked("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_values(self.optimizer, "lr")
        change = self.end_factor - self.start_factor
        # the ratio of this epoch's factor to the last's
        ratio = 1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        if not math.isfinite(ratio):  # a subnormal start_factor's first ratio (torch's rate becomes inf)
            return self._get_closed_form_lr()
        return [group["lr"] * ratio for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        change = self.end_factor - self.start_factor
        scale = self.start_factor + change * min(self.total_iters, self.last_epoch) / self.total_iters
        return [base_lr * scale for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr *= gamma every epoch."""

    _kept = {"gamma": _FINITE}

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = self._checked("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:  # resuming: the rate in the group is this epoch's already
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [_exponential_lr(base_lr, self.gamma, self.last_epoch) for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    """lr = initial_lr * (1 - epoch / total_iters) ** power, 0 from total_iters on."""

    # a negative power raises the rate, and 0 to it at total_iters divides by zero (torch's too)
    _kept = {"total_iters": _EPOCHS, "power": _range(_check_number, 0)}

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters = self._checked("total_iters", total_iters)
        self.power = self._checked("power", power)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_values(self.optimizer, "lr")
        epoch, total = self.last_epoch, self.total_iters
        ratio = ((1.0 - epoch / total) / (1.0 - (epoch - 1) / total)) ** self.power
        return [group["lr"] * ratio for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        scale = (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
        return [base_lr * scale for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2, taken step by step
    from the rate in the group (so that changes made by others carry over), as torch does."""

    _kept = {"T_max": _range(_check_number, 0, low_open=True, high_open=True),  # 37.5 too, as torch
             "eta_min": _FINITE}

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = self._checked("T_max", T_max)
        self.eta_min = self._checked("eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        groups, epoch, T_max, eta_min = self.optimizer.param_groups, self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        if self._step_count == 1 and epoch > 0:  # resumed by SequentialLR
            return self._get_closed_form_lr()
        if (epoch - 1 - T_max) % (2 * T_max) == 0:  # from the minimum, where the ratio below is 0 / 0
            return [group["lr"] + (base_lr - eta_min) * (1 - _cos(math.pi / T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        ratio = (1 + _cos(math.pi * epoch / T_max)) / (1 + _cos(math.pi * (epoch - 1) / T_max))
        return [ratio * (group["lr"] - eta_min) + eta_min for group in groups]

    def _get_closed_form_lr(self):
        return [_cosine_lr(base_lr, self.eta_min, self.T_max, self.last_epoch) for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing from initial_lr to eta_min over T_i epochs, restarting at initial_lr with
    T_i *= T_mult; step(epoch) takes a fractional epoch (steps within an epoch)."""

    _kept = {"T_0": _range(_check_int, 1), "T_mult": _range(_check_int, 1), "eta_min": _FINITE}

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        self.T_0 = self._checked("T_0", T_0)
        self.T_i = self.T_0
        self.T_mult = self._checked("T_mult", T_mult)
        self.eta_min = self._checked("eta_min", eta_min)
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        return [_cosine_lr(base_lr, self.eta_min, self.T_i, self.T_cur) for base_lr in self.base_lrs]

    def step(self, epoch=None):
        """One step on, or to `epoch` (a float counts steps within an epoch)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        given = epoch is not None
        if given:
            if isinstance(epoch, bool) or not isinstance(epoch, numbers.Real) or not epoch >= 0:
                raise ValueError(f"epoch must be a number >= 0, got {epoch!r}")
            _checks.as_double(epoch, "epoch")
        else:
            epoch = self.last_epoch + 1
        before = (self.T_cur, self.T_i, self.last_epoch)
        self._get_lr_called_within_step = True
        try:  # (the restart's arithmetic, and the rate's, raise alike: see _raise_if_out_of_range)
            if given:
                T_cur, T_i = self._restart_at(epoch)
            else:
                T_cur, T_i = self.T_cur + 1, self.T_i
                if T_cur >= T_i:
                    T_cur, T_i = T_cur % T_i, T_i * self.T_mult
            self.T_cur, self.T_i, self.last_epoch = T_cur, T_i, math.floor(epoch)
            self._set_lrs(self.get_lr())
        except BaseException as error:
            self.T_cur, self.T_i, self.last_epoch = before
            _raise_if_out_of_range(self, epoch, error)
            raise
        finally:
            self._get_lr_called_within_step = False

    def _restart_at(self, epoch):
        """(T_cur, T_i) at an epoch (a number >= 0), in closed form."""
        if epoch < self.T_0:
            return epoch, self.T_0
        if self.T_mult == 1:
            return epoch % self.T_0, self.T_i
        # epoch lies in restart n, which started at T_0 * (T_mult ** n - 1) / (T_mult - 1)
        n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
        # the log may round a restart's own epoch down a restart (math.log(1000, 10) is
        # 2.9999...: torch's step(111) with T_0=1, T_mult=10 ends the cycle before); the
        # restarts' first epochs, in integers, set n right
        start = lambda n: self.T_0 * (self.T_mult ** n - 1) // (self.T_mult - 1)  # noqa: E731
        n += int(start(n + 1) <= epoch) - int(start(n) > epoch)  # (NumPy bools do not subtract)
        return epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1), self.T_0 * self.T_mult ** n


class CyclicLR(LRScheduler):
    """The learning rate cycles between base_lr and max_lr (step_size_up steps up, step_size_down
    down), the momentum (or beta1) inversely between max_momentum and base_momentum; a step per batch."""

    _cycles_momentum = True
    _kept = {"gamma": _FINITE}

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular",
                 gamma=1.0, scale_fn=None, scale_mode="cycle", cycle_momentum=True, base_momentum=0.8,
                 max_momentum=0.9, last_epoch=-1):
        _check_optimizer(optimizer)
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        for name, values in (("base_lr", base_lrs), ("max_lr", max_lrs)):
            for value in values:
                _check_number(value, name, 0, high_open=True)
        up = float(_check_number(step_size_up, "step_size_up", 0, low_open=True, high_open=True))
        # step_size_down=0 is a sawtooth, as torch's (step_ratio 1: no division by 0)
        down = up if step_size_down is None else float(_check_number(step_size_down, "step_size_down", 0,
                                                                     high_open=True))
        self._checked("gamma", gamma)
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"scale_fn must be a function of the cycle or iteration, got {type(scale_fn).__name__}")
        self._check_modes(mode, scale_fn, scale_mode)
        if cycle_momentum:
            base_momentums, max_momentums = _cycled_momentums(optimizer, base_momentum, max_momentum)
        with _undone_on_failure(optimizer):  # checked: now the groups change
            self.optimizer = optimizer
            if last_epoch == -1:
                for lr, group in zip(base_lrs, optimizer.param_groups):
                    group["lr"] = float(lr)
            self.max_lrs = max_lrs
            self.total_size = up + down
            self.step_ratio = up / self.total_size
            self.mode = mode
            self.gamma = gamma
            self._scale_fn_custom = scale_fn
            self.scale_mode = scale_mode
            self._init_scale_fn()
            self.cycle_momentum = bool(cycle_momentum)
            if cycle_momentum:
                self.base_momentums, self.max_momentums = base_momentums, max_momentums
                _start_momentums(self, base_momentums, max_momentums, last_epoch)
            super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    @staticmethod
    def _check_modes(mode, scale_fn, scale_mode):
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"mode must be 'triangular', 'triangular2' or 'exp_range' (or give a scale_fn), "
                             f"got {mode!r}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")

    def _init_scale_fn(self):
        if self._scale_fn_custom is None:  # the built-in modes scale by cycle, but exp_range
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x):
        """The amplitude's scale at cycle (or iteration) x: the mode's, or the scale_fn given."""
        if self._scale_fn_custom is not None:
            return _users(self._scale_fn_custom, x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 0.5 ** (x - 1)  # (1 / 2.0 ** (x - 1), torch's, overflowed after 1025 cycles; this goes to 0)
        return self.gamma ** x

    def get_lr(self):
        self._warn_outside_step()
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle  # where in the cycle, from 0 to 1
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        # the scale asked for each value, as torch asks (a scale_fn with a state of its own sees its calls)
        at = cycle if self.scale_mode == "cycle" else self.last_epoch
        lrs = [base_lr + (max_lr - base_lr) * scale_factor * self.scale_fn(at)
               for base_lr, max_lr in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            momentums = [high - (high - low) * scale_factor * self.scale_fn(at)
                         for low, high in zip(self.base_momentums, self.max_momentums)]
            _set_momentums(self, momentums, zip(self.base_momentums, self.max_momentums))
        return lrs

    def state_dict(self):
        saved = {key: value for key, value in vars(self).items() if key not in ("optimizer", "_scale_fn_custom")}
        saved = _copied(saved, self.optimizer)
        fn = self._scale_fn_custom
        saved["_scale_fn_custom"] = None if fn is None else _attributes_of(fn)
        return saved

    def _check_state_dict(self, state_dict):
        super()._check_state_dict(state_dict)
        attributes = state_dict.get("_scale_fn_custom")
        if attributes is not None and not isinstance(attributes, dict):
            raise TypeError("state_dict['_scale_fn_custom'] must be None or a dict of the scale_fn's attributes")
        self._check_modes(state_dict.get("mode", self.mode), self._scale_fn_custom,
                          state_dict.get("scale_mode", self.scale_mode))
        if state_dict.get("cycle_momentum", self.cycle_momentum):  # the ends, as the constructor checks them
            use_beta1 = state_dict.get("use_beta1", getattr(self, "use_beta1", False))
            for name in ("base_momentums", "max_momentums"):
                for index, (group, value) in enumerate(zip(self.optimizer.param_groups, state_dict.get(name, ()))):
                    if refused := _refused_momentum(self.optimizer, group, use_beta1, value):
                        raise ValueError(f"state_dict[{name!r}][{index}]={value!r} cannot be param_groups[{index}]'s "
                                         f"{_momentum_name(use_beta1)}, which cycles to it: {refused}")

    def _load(self, state_dict):
        attributes = state_dict.get("_scale_fn_custom")
        vars(self).update(_copied({key: value for key, value in state_dict.items() if key != "_scale_fn_custom"},
                                  self.optimizer))
        if attributes is not None and self._scale_fn_custom is not None:
            vars(self._scale_fn_custom).update(attributes)
        self._init_scale_fn()


def _cycled_momentums(optimizer, base_momentum, max_momentum):
    """The per-group base and max momentums of a scheduler with cycle_momentum=True, checked: each
    finite, and each a value that the optimizer's own checks take as the group's momentum (or
    beta1), which cycles between the two (a value the optimizer refuses would fail a later step)."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError(f"cycle_momentum=True needs an optimizer with a 'momentum' or 'betas' option; "
                         f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)")
    use_beta1 = "betas" in optimizer.defaults
    ends = {name: _per_group(name, optimizer, value)
            for name, value in (("base_momentum", base_momentum), ("max_momentum", max_momentum))}
    for index, group in enumerate(optimizer.param_groups):
        for name, values in ends.items():
            _checks.check_finite(values[index], name)
            if refused := _refused_momentum(optimizer, group, use_beta1, values[index]):
                raise ValueError(f"{name}={values[index]!r} cannot be param_groups[{index}]'s "
                                 f"{_momentum_name(use_beta1)}, which cycles to it: {refused}")
    return ends["base_momentum"], ends["max_momentum"]


def _momentum_name(use_beta1):
    return "betas[0]" if use_beta1 else "momentum"


def _refused_momentum(optimizer, group, use_beta1, value):
    """Why the optimizer's own checks refuse value as the group's momentum (or beta1), or None."""
    trial = {key: option for key, option in group.items() if key != "params"}
    _set_momentum(trial, use_beta1, value)
    try:
        type(optimizer)._check_options(trial, "")
    except ValueError as error:
        return str(error)
    return None


def _set_momentums(scheduler, momentums, ends):
    """Write a step's cycled momentums into the groups, each checked first where it lies outside
    its group's ends ((base, max) pairs, which the start or a load checked; OneCycleLR's, kept in
    the groups, edited there by hand are the optimizer's step's to refuse): a scale above 1 (a
    scale_fn's, or exp_range's with gamma above 1) takes it there.  One the optimizer refuses (its
    next step would) raises ValueError before any is written."""
    groups = scheduler.optimizer.param_groups
    for index, (group, momentum, (low, high)) in enumerate(zip(groups, momentums, ends)):
        if not min(low, high) <= momentum <= max(low, high):
            if refused := _refused_momentum(scheduler.optimizer, group, scheduler.use_beta1, momentum):
                raise ValueError(f"{type(scheduler).__name__} cycles param_groups[{index}]'s "
                                 f"{_momentum_name(scheduler.use_beta1)} to {momentum!r}, out of its range "
                                 f"from base_momentum to max_momentum, where the optimizer refuses it: {refused}")
    for group, momentum in zip(groups, momentums):
        _set_momentum(group, scheduler.use_beta1, momentum)


def _start_momentums(scheduler, base_momentums, max_momentums, last_epoch):
    """CyclicLR's and OneCycleLR's cycled momentum: which option cycles (beta1 or momentum), and on a
    fresh start (last_epoch -1) each group's at its max, both ends kept in the group, as torch's."""
    scheduler.use_beta1 = "betas" in scheduler.optimizer.defaults
    if last_epoch == -1:
        for high, low, group in zip(max_momentums, base_momentums, scheduler.optimizer.param_groups):
            _set_momentum(group, scheduler.use_beta1, high)
            group["max_momentum"], group["base_momentum"] = high, low


class OneCycleLR(LRScheduler):
    """The 1cycle policy: the learning rate anneals from max_lr / div_factor up to max_lr over
    pct_start of total_steps, then down to initial_lr / final_div_factor (three_phase: back to the
    start first), the momentum (or beta1) inversely; a step per batch."""

    _cycles_momentum = True
    _kept = {"total_steps": _range(_check_int, 1)}

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        _check_optimizer(optimizer)
        if total_steps is not None:
            total_steps = self._checked("total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            total_steps = _check_int(epochs, "epochs", 1) * _check_int(steps_per_epoch, "steps_per_epoch", 1)
        else:
            raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
        _check_number(pct_start, "pct_start", 0, 1)
        _check_anneal_strategy(anneal_strategy)
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        for value in max_lrs:
            _check_number(value, "max_lr", 0, high_open=True)
        _check_number(div_factor, "div_factor", 0, low_open=True)
        _check_number(final_div_factor, "final_div_factor", 0, low_open=True)
        if cycle_momentum:
            base_momentums, max_momentums = _cycled_momentums(optimizer, base_momentum, max_momentum)
        up_end = float(pct_start * total_steps) - 1
        if three_phase:
            phases = [
                _phase(up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr", "base_momentum",
                       "max_momentum"),
                _phase(total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            phases = [
                _phase(up_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        _check_phases(phases, f"with pct_start={pct_start!r} and total_steps={total_steps}; choose a pct_start "
                              "that gives each phase a length")
        with _undone_on_failure(optimizer):  # checked: now the groups change
            self.optimizer = optimizer
            self.total_steps = total_steps
            self._schedule_phases = phases
            self._anneal_func_type = anneal_strategy
            if last_epoch == -1:
                for high, group in zip(max_lrs, optimizer.param_groups):
                    group["initial_lr"] = float(high / div_factor)
                    group["max_lr"] = high
                    group["min_lr"] = group["initial_lr"] / final_div_factor
            self.cycle_momentum = bool(cycle_momentum)
            if cycle_momentum:
                _start_momentums(self, base_momentums, max_momentums, last_epoch)
            super().__init__(optimizer, last_epoch)

    def _check_state_dict(self, state_dict):
        super()._check_state_dict(state_dict)
        _check_anneal_strategy(state_dict.get("_anneal_func_type", self._anneal_func_type))
        _check_phases(state_dict.get("_schedule_phases", self._schedule_phases), "in state_dict['_schedule_phases']")

    def _anneal(self, start, end, pct):
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        self._warn_outside_step()
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {step} times; its schedule has total_steps={self.total_steps}")
        lrs, momentums = [], []
        try:
            for group in self.optimizer.param_groups:
                start = 0.0
                for i, phase in enumerate(self._schedule_phases):
                    end = phase["end_step"]
                    if step <= end or i == len(self._schedule_phases) - 1:
                        pct = (step - start) / (end - start)
                        lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                        if self.cycle_momentum:
                            momentums.append(
                                self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct))
                        break
                    start = end
        except KeyError:  # (nothing written yet) which group lacks which key
            names = ("start_lr", "end_lr") + (("start_momentum", "end_momentum") if self.cycle_momentum else ())
            self._check_group_keys(dict.fromkeys(phase[name] for phase in self._schedule_phases for name in names))
            raise
        if self.cycle_momentum:
            _set_momentums(self, momentums, [(group["base_momentum"], group["max_momentum"])
                                             for group in self.optimizer.param_groups])
        return lrs


def _check_phases(phases, where):
    """Raise ValueError if a OneCycleLR phase has no steps: its steps would divide by its length, 0
    (torch's do)."""
    start = 0.0
    for i, phase in enumerate(phases):
        if not isinstance(phase, dict) or isinstance(phase.get("end_step"), bool) or not isinstance(
                phase.get("end_step"), numbers.Real) or not math.isfinite(phase["end_step"]):
            raise ValueError(f"OneCycleLR's phase {i + 1} of {len(phases)} has no end_step {where}; expected a dict "
                             "with a finite number end_step, as OneCycleLR makes them")
        if phase["end_step"] == start:
            raise ValueError(f"OneCycleLR's phase {i + 1} of {len(phases)} would have no steps (from step {start:g} "
                             f"to {start:g}) {where}")
        start = phase["end_step"]


def _check_anneal_strategy(anneal_strategy):
    if anneal_strategy not in ("cos", "linear"):
        raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")


def _phase(end_step, start_lr, end_lr, start_momentum, end_momentum):
    """A phase of OneCycleLR: up to end_step, from and to the group values of those keys."""
    return {"end_step": end_step, "start_lr": start_lr, "end_lr": end_lr,
            "start_momentum": start_momentum, "end_momentum": end_momentum}


def _check_schedulers(owner, schedulers, optimizer):
    for i, scheduler in enumerate(schedulers):
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"{owner}: schedulers[{i}] is a {type(scheduler).__name__}, not a scheduler")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(f"{owner}: schedulers[{i}] is a ReduceLROnPlateau, whose step needs a metric; "
                             "it cannot be chained")
        if scheduler.optimizer is not optimizer:
            raise ValueError(f"{owner}: schedulers[{i}] ({type(scheduler).__name__}) steps another optimizer; "
                             "all must step the same one")


class _OfSchedulers(LRScheduler):
    """A scheduler made of others, whose state it saves with its own."""

    def _everyone(self):
        """This scheduler and all in it (in the schedulers in it too)."""
        found = [self]
        for scheduler in self._schedulers:
            found += scheduler._everyone() if isinstance(scheduler, _OfSchedulers) else [scheduler]
        return found

    @contextlib.contextmanager
    def _undone_on_failure(self):
        """A step that raises in a later scheduler changes nothing: the attributes of this scheduler
        and of those in it (a step replaces them, never changes them in place) are put back, with
        the groups' options."""
        with _attributes_undone_on_failure(self._everyone()), _undone_on_failure(self.optimizer):
            yield

    def state_dict(self):
        saved = _copied({key: value for key, value in vars(self).items()
                         if key not in ("optimizer", "_schedulers")}, self.optimizer)
        saved["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return saved

    _state_of_its_own = LRScheduler._state_of_its_own | {"_schedulers"}

    def _check_state_dict(self, state_dict):
        super()._check_state_dict(state_dict)
        saved = state_dict.get("_schedulers")
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self._schedulers):
            raise ValueError(f"state_dict['_schedulers'] must hold the states of {len(self._schedulers)} schedulers")
        for scheduler, state in zip(self._schedulers, saved):
            scheduler._check_state_dict(state)  # in full: nothing is loaded unless all can be

    def _load(self, state_dict):
        vars(self).update(_copied({key: value for key, value in state_dict.items() if key != "_schedulers"},
                                  self.optimizer))
        for scheduler, state in zip(self._schedulers, state_dict["_schedulers"]):
            scheduler._load(state)


class SequentialLR(_OfSchedulers):
    """schedulers[i] runs from milestones[i - 1] (0 for the first) until milestones[i]."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_optimizer(optimizer)
        schedulers = list(schedulers)
        milestones = [_check_whole(milestone, "each milestone", 0) for milestone in milestones]
        if not schedulers:
            raise ValueError("SequentialLR needs at least one scheduler")
        _check_schedulers("SequentialLR", schedulers, optimizer)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR needs one milestone fewer than schedulers: got {len(schedulers)} "
                             f"schedulers and {len(milestones)} milestones")
        for i, scheduler in enumerate(schedulers[1:], 1):
            if isinstance(scheduler, _OfSchedulers):  # torch fails at the milestone (NotImplementedError)
                raise ValueError(f"SequentialLR: schedulers[{i}] is a {type(scheduler).__name__}; a scheduler "
                                 "after the first restarts at its milestone from its closed form, which one "
                                 "made of schedulers has not (it can come first)")
        for group in optimizer.param_groups:
            if "initial_lr" not in group:
                raise KeyError("a param group has no 'initial_lr': the schedulers given have not been made on it")
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        with self._undone_on_failure():  # (a first step that raises leaves groups and schedulers as they were)
            for group in optimizer.param_groups:  # back to the start, before the schedulers' first steps
                group["lr"] = float(group["initial_lr"])
            self.recursive_undo()
            first = self._schedulers[bisect_right(self._milestones, 0)]
            first._initial_step()
            self._last_lr = first.get_last_lr()

    def recursive_undo(self, sched=None):
        """Take back the first step of each scheduler (of the schedulers in it, for a combined one)."""
        scheduler = self if sched is None else sched
        if hasattr(scheduler, "_schedulers"):
            for inner in scheduler._schedulers:
                self.recursive_undo(inner)
        elif hasattr(scheduler, "last_epoch"):
            scheduler.last_epoch -= 1

    def step(self):
        """Step the scheduler of this epoch (the next one starts from its closed form at 0)."""
        with self._undone_on_failure():
            self.last_epoch += 1
            index = bisect_right(self._milestones, self.last_epoch)
            scheduler = self._schedulers[index]
            if index > 0 and self._milestones[index - 1] == self.last_epoch:
                scheduler._update_lr(0)
            else:
                scheduler.step()
            self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_OfSchedulers):
    """Steps every scheduler given, in order, at each step: their changes compound."""

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("ChainedScheduler needs at least one scheduler")
        if optimizer is None:
            optimizer = getattr(schedulers[0], "optimizer", None)
        _check_optimizer(optimizer)
        _check_schedulers("ChainedScheduler", schedulers, optimizer)
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = _group_values(optimizer, "lr")

    def step(self):
        """Step each scheduler, in order."""
        with self._undone_on_failure():
            for scheduler in self._schedulers:
                scheduler.step()
            self._last_lr = _group_values(self.optimizer, "lr")


class ReduceLROnPlateau(LRScheduler):
    """lr *= factor (down to min_lr) when a metric has not improved (by threshold) for more than
    patience steps; then cooldown steps before counting again.  step(metric) once per epoch."""

    # (patience 2.5 waits as 2 does: torch compares)
    _kept = {"factor": _range(_check_number, 0, 1, high_open=True), "patience": _range(_check_number, 0),
             "cooldown": _range(_check_number, 0), "eps": _range(_check_number), "threshold": _range(_check_number)}

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        _check_optimizer(optimizer)
        self._check_modes(mode, threshold_mode)
        self._checked("factor", factor)
        min_lrs = _per_group("min_lr", optimizer, min_lr)
        for value in min_lrs:
            _check_number(value, "min_lr")
        self.factor = factor
        self.optimizer = optimizer
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.min_lrs = min_lrs
        self.patience = self._checked("patience", patience)
        self.cooldown = self._checked("cooldown", cooldown)
        self.eps = self._checked("eps", eps)
        self.last_epoch = 0
        self._last_lr = _group_values(optimizer, "lr")
        self.mode, self.threshold, self.threshold_mode = mode, self._checked("threshold", threshold), threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self._reset()

    @staticmethod
    def _check_modes(mode, threshold_mode):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self):
        """Whether the steps after a reduction that do not count are running."""
        return self.cooldown_counter > 0

    def _is_better(self, a, best):
        """Whether the metric a improves on best by more than the threshold."""
        if self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold) if self.mode == "min" else a > best * (self.threshold + 1.0)
        return a < best - self.threshold if self.mode == "min" else a > best + self.threshold

    def step(self, metrics, epoch=None):
        """One epoch's metric (a number; lower is better in mode 'min').  A step that raises
        changes nothing."""
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"metrics must be a number (the monitored value), got {type(metrics).__name__}") from None
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            _checks.check_finite(epoch, "epoch")  # (a string was kept, and the next step failed adding 1 to it)
            warnings.warn(_EPOCH_WARNING, UserWarning, stacklevel=2)
        with _attributes_undone_on_failure([self]):
            self._step(current, epoch)

    def _step(self, current, epoch):
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _group_values(self.optimizer, "lr")

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"the optimizer has {len(groups)} param groups, {len(self.min_lrs)} when this "
                                   "ReduceLROnPlateau was made with a min_lr per group; set its min_lrs to one "
                                   "per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        reduced = []  # every group's read before any is written: a step that raises changes nothing
        for i, (group, min_lr) in enumerate(zip(groups, self.min_lrs)):
            old_lr = _lr_of(group, i)
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                reduced.append((group, float(new_lr)))
        for group, lr in reduced:
            group["lr"] = lr

    def _check_state_dict(self, state_dict):
        super()._check_state_dict(state_dict)
        self._check_modes(state_dict.get("mode", self.mode), state_dict.get("threshold_mode", self.threshold_mode))
