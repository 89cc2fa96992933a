"""Gradient clipping with torch.nn.utils' names, semantics and return values, on NumPy arrays.

Gradients are given as a list of arrays, or of ``fastgd.Parameter``\\ s (their
``.grad`` is read; a None gradient is skipped, as torch skips it), or as one
of those.  Each function is one compiled pass over all the arrays
(``src/_multi_tensor.pxi``); the norm is summed in double, in blocks, so that
float32 gradients of 1e8 elements still get their norm to float32 rounding.

torch returns the total norm as a 0-d tensor of the gradients' dtype; here it
is the NumPy scalar of that dtype (``np.float32``/``np.float64``; float64 if
the gradients mix the two, as torch promotes; ``np.float32(0.0)`` for no
gradients, of any order, as torch returns ``tensor(0.)``).

To clip and step reading the gradients twice rather than three times, the
step applies the clipping factor as it reads them (the gradients are not
written)::

    total_norm = fastgd.get_total_norm(grads)
    if np.isfinite(total_norm):  # else skip the step: nothing changes
        opt.step(grads, grad_scale=fastgd.clip_coef(max_norm, total_norm))

which ``fastgd.clipped_step(opt, max_norm, grads)`` does.
"""
import math
import types
import warnings

import numpy as np

from . import _checks
from ._backend import engine
from .optim import Parameter, _check_optimizer, _torch_keywords

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_", "clip_coef",
           "clipped_step"]


def _listed(items, name):
    """items as a list: one array or Parameter becomes a list of it."""
    if type(items) is list:
        return items
    if isinstance(items, (np.ndarray, np.floating, Parameter)):
        return [items]
    if isinstance(items, (str, bytes, dict)) or not hasattr(items, "__iter__"):
        raise TypeError(f"{name} must be an array, a fastgd.Parameter or a list of them, got {type(items).__name__}")
    return list(items)


def _gradients(items, name, writable):
    """The gradients of items, checked in full: raises, naming the first that cannot be used."""
    grads = []
    for i, item in enumerate(items):
        grad = item.grad if isinstance(item, Parameter) else item
        where = f"{name}[{i}].grad" if isinstance(item, Parameter) else f"{name}[{i}]"
        if grad is None:
            continue
        given, grad = grad, _checks.check_gradient(
            grad, where, "a NumPy array of float32 or float64 (a gradient), a fastgd.Parameter (its .grad is read) or "
                         "None (skipped)")
        if writable and grad is not given:
            raise TypeError(f"{where} is a NumPy scalar ({type(given).__name__}), which clipping cannot change in "
                            "place; pass the gradient as an array (np.asarray)")
        if writable and not grad.flags.writeable:
            raise ValueError(f"{where} (shape {grad.shape}, dtype {grad.dtype}) is read-only; "
                             "clipping changes the gradients in place")
        grads.append(grad)
    return grads


def _readable(grads):
    """Arrays the compiled passes read: the gradients as plain arrays (np.memmap, np.matrix and
    other subclasses viewed), copied if not contiguous, aligned and native."""
    return [np.require(np.asarray(g), g.dtype.newbyteorder("="), ["C", "A"]) for g in grads]


def _norm_type(norm_type):
    value = None
    if not isinstance(norm_type, (bool, np.bool_)):
        try:
            value = float(norm_type)
        except (TypeError, ValueError):
            pass
        except OverflowError:  # (a whole number beyond a double's range)
            raise ValueError(f"norm_type must be a number a double holds (or inf), got {norm_type!r}") from None
    if value is None:
        raise TypeError(f"norm_type must be a real number (or a string of one: 'inf', '-inf'), got {norm_type!r}")
    if math.isnan(value):
        raise ValueError("norm_type must not be NaN")
    return value


def _norm_pass(items, name, p):
    """One compiled pass: (the p-norm, whether a gradient is float64, whether one is empty)."""
    found = engine.total_norm(items, Parameter, p)
    if found is None:  # an array the compiled pass does not read as it is: check in full, copy
        found = engine.total_norm(_readable(_gradients(items, name, False)), None, p)
    return found


def _check_norm_of_nothing(p, empty, what="gradient"):
    """Refuse a norm of order p over an empty `what` (empty: whether there is one) where the norm
    of no elements has no value, as torch refuses it."""
    if empty and (p < 0 or math.isinf(p)):
        raise ValueError(f"the norm of order {p} of an empty {what} has no value (a negative order's sum, or the "
                         "largest or smallest magnitude of no elements), as torch refuses it: choose a "
                         "norm_type >= 0 and finite")


def _total_norm(items, name, norm_type, error_if_nonfinite, scale=1.0):
    """The total norm, as torch returns it; scale: that of the items times it (clipped_step's
    grad_scale, MultiSteps' 1/every_k for the mean of its sums), multiplied in double before
    rounding to the gradients' dtype."""
    p = norm_type if type(norm_type) is float and norm_type == norm_type else _norm_type(norm_type)
    norm, any_float64, any_empty = _norm_pass(items, name, p)
    _check_norm_of_nothing(p, any_empty)
    if p < 0 and not any((item.grad if isinstance(item, Parameter) else item) is not None for item in items):
        norm = 0.0  # no gradients at all: 0, as torch's (the pass gives the empty sum's or minimum's inf)
    if scale != 1.0:  # a norm scales with its vector, but the count of nonzero ones (p = 0)
        norm = (norm if scale != 0 else 0.0) if p == 0 else norm * abs(scale)
    with np.errstate(over="ignore"):  # float32 gradients whose norm rounds past float32's largest: inf, as torch's
        total = np.float64(norm) if any_float64 else np.float32(norm)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"the total norm of order {p} of the gradients is {total}, not finite, so they cannot be "
            "clipped; pass error_if_nonfinite=False to scale them by it anyway (or skip the step: "
            "fastgd.clipped_step skips it)")
    return total


def _check_foreach(foreach):
    """torch's foreach picks an implementation: taken (None or a bool) and ignored; one pass here."""
    _torch_keywords(foreach=foreach)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The ``norm_type``-norm of all the gradients as one vector (torch.nn.utils.get_total_norm):
    a NumPy scalar of their dtype.  ``norm_type``: a real number, ``inf`` (the largest
    magnitude), ``-inf`` or 0 (the number of gradients holding a nonzero element, as torch's norm
    of the gradients' norms counts them).  error_if_nonfinite: raise
    RuntimeError if the norm is NaN or infinite (an element is).  foreach: as torch takes it
    (None, True or False), ignored: there is one implementation, a compiled pass."""
    _check_foreach(foreach)
    return _total_norm(_listed(tensors, "tensors"), "tensors", norm_type, error_if_nonfinite)


def clip_coef(max_norm, total_norm):
    """The factor clipping multiplies the gradients by, torch's ``min(max_norm / (total_norm + 1e-6), 1)``
    computed as torch computes it, in total_norm's dtype (a Python float counts as float64);
    NaN for a NaN norm.  Pass it to ``opt.step(grad_scale=...)``."""
    max_norm = _check_max_norm(max_norm, nan_ok=True)
    if isinstance(total_norm, np.ndarray) and total_norm.ndim == 0:
        total_norm = total_norm[()]
    _checks.check_real_type(total_norm, "total_norm", "a real number, as get_total_norm returns it")
    if isinstance(total_norm, np.float32):
        return np.float32(engine.clip_coef(max_norm, float(total_norm), True))
    return np.float64(engine.clip_coef(max_norm, float(total_norm), False))


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale the gradients in place by clip_coef(max_norm, total_norm) (torch.nn.utils.clip_grads_with_norm_;
    foreach ignored, as get_total_norm)."""
    _check_foreach(foreach)
    items = _listed(parameters, "parameters")
    _scale(items, clip_coef(max_norm, total_norm))


def _scale(items, coef):
    if not engine.scale_all(items, Parameter, float(coef)):
        grads = _gradients(items, "parameters", True)  # raises, or the arrays are unusual but valid
        for grad in grads:
            np.multiply(grad, grad.dtype.type(coef), out=grad)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients in place so that their total norm is at most max_norm, as
    torch.nn.utils.clip_grad_norm_ (get_total_norm, then clip_grads_with_norm_); returns the
    total norm before clipping, a NumPy scalar of the gradients' dtype.  A non-finite norm
    scales them by NaN (or 0), as torch does, unless error_if_nonfinite raises first.
    foreach ignored, as get_total_norm."""
    _check_foreach(foreach)
    items = _listed(parameters, "parameters")
    if not items and isinstance(parameters, types.GeneratorType):  # (one used up already, most likely)
        warnings.warn("clip_grad_norm_ got an empty generator of parameters: there is nothing to clip",
                      UserWarning, stacklevel=2)
    total = _total_norm(items, "parameters", norm_type, error_if_nonfinite)
    _scale(items, clip_coef(max_norm, total))
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to [-clip_value, clip_value] in place (torch.nn.utils.clip_grad_value_;
    NaN stays NaN; a NaN clip_value makes every element NaN, as torch's clamp does).  foreach
    ignored, as get_total_norm.  Returns None."""
    _checks.check_real_type(clip_value, "clip_value")
    _check_foreach(foreach)
    value = _checks.as_double(clip_value, "clip_value")
    items = _listed(parameters, "parameters")
    if value != value:
        _scale(items, value)  # x * NaN is NaN for every x
        return
    if not engine.clamp_all(items, Parameter, -value, value):
        for grad in _gradients(items, "parameters", True):
            low, high = grad.dtype.type(-value), grad.dtype.type(value)
            np.minimum(np.maximum(grad, low, out=grad), high, out=grad)


def clipped_step(optimizer, max_norm, grads=None, *, norm_type=2.0, grad_scale=1.0):
    """One step of optimizer with its gradients clipped to the total norm max_norm, reading them
    twice (the norm, then the step, which scales them as it reads them) and writing them never;
    skipped, changing nothing, if the norm is not finite: a gradient holds NaN or inf (or the
    norm of finite float32 gradients overflows float32, where torch scales them by 0), but
    for norm_type <= 0 (0, -inf, negative orders), whose norm can stay finite, and for which a
    third read (the largest magnitude) tells.
    grads: as optimizer.step takes them (None: each fastgd.Parameter's .grad).  Returns
    (total_norm, stepped).  A gradient array that several parameters share is scaled once (torch's
    clip_grad_norm_ scales it in place once for each; the norm counts it once for each in both).
    grad_scale (finite): the gradients are read times it, as ``optimizer.step`` reads them, the norm
    theirs (that of the gradients times it: a loss-scaled step unscaled, as torch's
    ``GradScaler.unscale_`` before ``clip_grad_norm_``)."""
    _check_optimizer(optimizer)
    _check_max_norm(max_norm)
    if type(grad_scale) is not float or not -math.inf < grad_scale < math.inf:  # (the common case checked at once)
        grad_scale = _checks.check_grad_scale(grad_scale)
    read = grads is None
    if read:
        grads = optimizer._gradients_locked(None)  # each .grad of the parameters param_groups list now
    elif type(grads) is not list:
        grads = _listed(grads, "grads")
    total, coef = _clipping(grads, max_norm, norm_type, grad_scale)
    if coef is None:
        return total, False
    # the step reads each .grad again, as torch's reads each p.grad after clip_grad_norm_: the
    # list read for the norm is in the order the groups had then, which another thread may change
    optimizer.step(None if read else grads, grad_scale=grad_scale * coef)
    return total, True


def _check_max_norm(max_norm, nan_ok=False):
    """max_norm as a float: a real number a double holds; NaN only where nan_ok (torch's
    clip_coef then scales by NaN; a step refuses it)."""
    _checks.check_real_type(max_norm, "max_norm")
    value = _checks.as_double(max_norm, "max_norm")
    if value != value and not nan_ok:
        raise ValueError("max_norm must not be NaN: the step would scale the gradients by NaN")
    return value


def _clipping(grads, max_norm, norm_type, scale=1.0):
    """The total norm of grads (times scale: see _total_norm) and the factor, a float,
    that clips them to max_norm; the factor is None if a gradient holds NaN or inf (skip the step).
    One pass over the gradients (two for norm_type <= 0: see clipped_step)."""
    total = _total_norm(grads, "grads", norm_type, False, scale)
    if not math.isfinite(total):
        return total, None
    if _norm_type(norm_type) <= 0 and not math.isfinite(_norm_pass(grads, "grads", math.inf)[0]):
        # an order <= 0 lets an inf (0: a NaN too) through to a finite norm: the largest
        # magnitude, a second read, tells
        return total, None
    return total, engine.clip_coef(float(max_norm), float(total), type(total) is np.float32)
