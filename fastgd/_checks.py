"""Validation shared by fastgd's modules: the optimizers, the functional API, the reference, the
schedulers, clipping, accumulation, weight averaging and the estimators.

Every check runs before anything is changed, and every message names the
argument (with its index and shape for arrays) and what was expected.
"""
import math
import numbers
import reprlib
import sys

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def describe(array):
    return f"shape {array.shape}, dtype {array.dtype}"


def type_name(value):
    """The name of value's type for a message: with its module but for a built-in type
    (torch.nn.parameter.Parameter is not a fastgd.Parameter)."""
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def check_param(param, name, written="the optimizer updates parameters in place"):
    """`param` must be a C-contiguous float32/float64 ndarray, not masked, and writable unless
    `written` is None (else it says who writes it); returns it."""
    if not isinstance(param, np.ndarray):
        from .optim import Parameter  # (on the error path only: optim imports this module)
        raise TypeError(  # (callers pass a parameter's array: a fastgd.Parameter here is a state or an average)
            f"{name} is a {type_name(param)}; expected a NumPy array of float32 or float64"
            + (" of its own (a fastgd.Parameter is taken as a parameter only)" if isinstance(param, Parameter) else
               " (a parameter may be a fastgd.Parameter, whose .data is one)")
        )
    if isinstance(param, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array; the compiled steps write every element and know no mask. "
                        f"Pass its data (np.ma.getdata) for every element to be updated")
    if param.dtype.newbyteorder("=") not in FLOAT_DTYPES:
        raise TypeError(f"{name} ({describe(param)}) has an unsupported dtype; expected float32 or float64")
    if not param.dtype.isnative:
        raise ValueError(f"{name} ({describe(param)}) is not in native byte order; expected a native float array")
    if written is not None and not param.flags.writeable:
        raise ValueError(f"{name} ({describe(param)}) is read-only; {written}")
    if not param.flags.c_contiguous:
        raise ValueError(
            f"{name} ({describe(param)}) is not C-contiguous; keep it in a contiguous array "
            "(np.ascontiguousarray) so that it can be updated in place"
        )
    if not param.flags.aligned:
        raise ValueError(
            f"{name} ({describe(param)}) is not aligned to its dtype (its memory starts at an odd byte "
            "offset); keep it in an array NumPy allocated (np.array(array) copies it)"
        )
    return param


def check_ordered(params):
    """Parameters come in a list or another ordered collection, as torch requires: a state dict
    numbers them in order, and a set's order changes from run to run."""
    if isinstance(params, (set, frozenset)):
        raise TypeError("parameters must be given in an ordered collection (a list), not a set: the order of a "
                        "set changes from run to run, and a state dict numbers the parameters in order")


def check_no_overlap(params, names, expected="each parameter must be a separate array, given once"):
    """No two parameters may share memory (the same array passed twice, or overlapping views;
    an array of no elements, which shares none, may not be given twice either); `expected` ends
    the message."""
    empty = {}  # id -> index of the arrays of no bytes, which the spans below leave out
    for index, param in enumerate(params):
        if not param.nbytes and (first := empty.setdefault(id(param), index)) != index:
            raise ValueError(f"{names[index]} is {names[first]} ({describe(param)}); {expected}")
    spans = sorted(
        (param.__array_interface__["data"][0], param.nbytes, index)
        for index, param in enumerate(params)
        if param.nbytes
    )
    for (start, size, index), (next_start, _, next_index) in zip(spans, spans[1:]):
        if next_start < start + size:
            first, second = sorted((index, next_index))
            raise ValueError(
                f"{names[second]} shares memory with {names[first]} "
                f"({describe(params[first])}); {expected}"
            )


def check_gradient(grad, name, instead, like=""):
    """A gradient must be an ndarray of float32 or float64 (any layout or byte order), not masked
    (the compiled passes read every element), or a NumPy float scalar (what NumPy's reductions
    return), taken as the 0-d array of its value; returns it as an array.  `instead`: what a
    message asks for instead of another type, `like`: what ends the dtype's message."""
    if isinstance(grad, np.floating):
        grad = np.asarray(grad)
    if isinstance(grad, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a masked array; an optimizer reads every element of a gradient. Pass "
            f"grad.filled(0) to leave the masked elements' parameters without a gradient step, or plain data"
        )
    if not isinstance(grad, np.ndarray):
        raise TypeError(f"{name} is a {type_name(grad)}; expected {instead}")
    if grad.dtype.kind != "f" or grad.dtype.itemsize not in (4, 8):
        raise TypeError(f"{name} ({describe(grad)}) has an unsupported dtype; expected float32 or float64{like}")
    return grad


def convert_grad(grad, param, name):
    """`grad` as an array the kernels can read for `param`: same shape and dtype, C-contiguous.

    A gradient of the other float dtype, of another byte order, non-contiguous or
    unaligned is converted once (copied); anything else raises."""
    if grad is None:
        return None
    grad = check_gradient(grad, name, f"a NumPy array of shape {param.shape} (or None to skip)",
                          f" like its parameter ({describe(param)})")
    if grad.shape != param.shape:
        raise ValueError(f"{name} has shape {grad.shape}; expected {param.shape}, the shape of its parameter")
    grad = cast(grad, param.dtype, name)
    return grad if grad.flags.aligned else grad.copy()


def cast(array, dtype, name, copy=None):
    """Float array `array` in dtype, C-contiguous (copied where it must be, or if copy is True;
    unlike ascontiguousarray, a 0-d array stays 0-d); raises ValueError where a finite value lies
    beyond dtype's range, which the conversion would make inf; TypeError for a masked array (its data,
    masked elements too, would be taken: the steps read every element)."""
    if isinstance(array, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array; the steps read every element: expected plain data "
                        "(array.filled(...) says what the masked elements hold)")
    if not copy and type(array) is np.ndarray and array.dtype == dtype and array.flags.c_contiguous:
        return array
    with np.errstate(over="raise"):
        try:
            return np.array(array, dtype=dtype, order="C", copy=copy)
        except FloatingPointError:
            raise ValueError(f"{name} ({describe(array)}) holds finite values beyond the range of "
                             f"{np.dtype(dtype)}, its dtype here, which would make them inf; expected values "
                             f"within +-{np.finfo(dtype).max:g}") from None


def saved_list(value, count, name, what="arrays"):
    """A saved list (or tuple) of `count` entries, one per parameter: TypeError for no list,
    ValueError for another length."""
    expected = f"{name} must be a list of {count} {what}, one per parameter"
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{expected}, got {type_name(value)}")
    if len(value) != count:
        raise ValueError(f"{expected}, got a list of {len(value)}")


def saved_array(value, like, name, copy=None):
    """A saved float array loaded into `like`: TypeError for no float array, ValueError for
    another shape; returns it cast to like's dtype (cast, which refuses a masked array)."""
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        got = f"an array of dtype {value.dtype}" if isinstance(value, np.ndarray) else type_name(value)
        raise TypeError(f"{name} must be a float array, got {got}")
    if value.shape != like.shape:
        raise ValueError(f"{name} has shape {value.shape}; expected {like.shape}")
    return cast(value, like.dtype, name, copy=copy)


def check_apart(array, name, others):
    """`array` must share no memory with any of `others`, (name, array) pairs."""
    for other_name, other in others:
        if np.may_share_memory(array, other):
            raise ValueError(f"{name} shares memory with {other_name} ({describe(other)}); the optimizer writes "
                             f"{other_name} while it reads {name}: pass a gradient of its own (e.g. a copy)")


def check_state_array(array, param, name):
    """A state array given by the user must match its parameter and be writable and contiguous."""
    check_param(array, name, written="the step updates its state arrays in place")
    if array.shape != param.shape or array.dtype != param.dtype:
        raise ValueError(f"{name} ({describe(array)}) does not match its parameter ({describe(param)})")
    return array


#: float32's largest finite number
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: the kinds of option an algorithm describes (fastgd.optim.Option), each with its range:
#: kind -> (the compiled step's kind, low, high); a value is in range when low <= value < high
KINDS = {
    "rate": ("number", -sys.float_info.max, math.inf),  # a finite real number (a learning rate)
    "number": ("number", 0.0, math.inf),  # a finite real number >= 0
    "fraction": ("number", 0.0, 1.0),     # a real number in [0, 1)
    "unit": ("number", 0.0, math.nextafter(1.0, math.inf)),  # a real number in [0, 1]
    "flag": ("flag", 0.0, 0.0),           # True or False
}
KINDS["fractions"] = ("pair", *KINDS["fraction"][1:])  # a pair of fractions (check_betas checks each so)


def check_option(value, kind, name):
    """An option's value, of one of the KINDS."""
    if kind == "flag":
        check_flag(value, name)
    elif kind == "fractions":
        check_betas(value, name)
    else:
        check_real(value, name, kind)


def settled(value):
    """A checked option's value as one that reads the same each time: value itself where it is a
    Python or NumPy number or bool, or a tuple of them; else its numbers as floats (a float
    subclass's __float__ may answer anew each time it is asked, a list may be edited)."""
    if type(value) in (float, int, bool) or (isinstance(value, np.generic) and type(value).__module__ == "numpy"):
        return value
    if isinstance(value, (tuple, list)):
        items = tuple(settled(item) for item in value)
        return value if type(value) is tuple and all(a is b for a, b in zip(items, value)) else items
    return float(value)


def check_state_keys(state_dict, keys):
    """Raise TypeError unless state_dict is a dict with the keys `keys` and no others, as a
    state_dict() returns it; the message names what is missing or extra."""
    listed = ", ".join(map(repr, keys[:-1])) + f" and {keys[-1]!r}"
    expected = f"state_dict must be a dict with the keys {listed}, as state_dict() returns"
    if not isinstance(state_dict, dict):
        raise TypeError(f"{expected}; got a {type(state_dict).__name__}")
    missing = [key for key in keys if key not in state_dict]
    extra = [key for key in state_dict if key not in keys]
    if missing or extra:
        raise TypeError(expected + "".join(f"; {what} {', '.join(map(repr, found))}"
                                           for what, found in (("it lacks", missing), ("it also has", extra)) if found))


def is_whole(value):
    """Whether value is a whole number (a Python or NumPy integer) other than a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_count(value, name, low, high=None, expected=None):
    """A count the caller gives: a Python or NumPy integer (not a bool, not a float) in [low, high];
    TypeError for no integer, ValueError for one out of range; returns it as an int.  expected:
    the message's account of what the count may be, if not the range."""
    if expected is None:
        expected = f"a whole number >= {low}" if high is None else f"a whole number from {low} to {high}"
    message = f"{name} must be {expected}, got {value!r}"
    if not is_whole(value):
        raise TypeError(message)
    if not (low <= value and (high is None or value <= high)):
        raise ValueError(message)
    return int(value)


def number_of(value):
    """A 0-d array of a real number (torch's 0-d tensor, converted) as that number (a Python float
    or int), anything else as it is."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
        return value.item()
    return value


def check_step_count(value, name, most):
    """A saved step count: a whole number in [0, most], as an int, a NumPy integer, an integral
    float or a 0-d array of one (torch saves its step as a 0-d float tensor); returns it as an int.
    TypeError for no number, ValueError for one out of range."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value[()]
    if isinstance(value, (np.float16, np.float32)):  # (compared with most in float16, 65504 overflowed)
        value = float(value)
    message = f"{name} must be a whole number from 0 to {most}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise TypeError(message)
    if value != value or not 0 <= value <= most or int(value) != value:
        raise ValueError(message)
    return int(value)


def check_scalar_state(value, name, kind):
    """A saved per-parameter number (torch saves it as a 0-d tensor) in the range of its kind
    (KINDS); returns a float.  TypeError for no real number, ValueError for one out of range."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value[()]
    _, low, high = KINDS[kind]
    check_real_type(value, name, expected(kind))
    if not low <= as_double(value, name) < high:
        raise ValueError(f"{name} must be {expected(kind)}, got {value!r}")
    return float(value)


def expected(kind):
    """What a value of this kind (KINDS) is, for a message."""
    _, low, high = KINDS[kind]
    return {"rate": "a finite number", "number": f"a finite number >= {low:g}", "unit": "a number in [0, 1]",
            "fractions": f"a pair of numbers in [{low:g}, {high:g})", "flag": "True or False",
            }.get(kind, f"a number in [{low:g}, {high:g})")


def check_real(value, name, kind="number"):
    """A hyperparameter: a real number in the range of its kind ("rate", "number", "fraction" or
    "unit"), as KINDS says."""
    # float and int first: isinstance against the numbers ABC is slow, and this runs every step
    if type(value) is not float and type(value) is not int:
        check_real_type(value, name)
    _, low, high = KINDS[kind]
    if not low <= as_double(value, name) < high:
        raise ValueError(f"Invalid {name}: {value!r}; expected {expected(kind)}")


def check_real_type(value, name, expected="a real number"):
    """TypeError unless value is a real number: a Python or NumPy int or float, not a bool
    (NumPy's bool_ is no numbers.Real)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {value!r}")


def check_constructor_lr(value):
    """The lr given to an optimizer's constructor (its defaults' lr), a real number already: >= 0,
    as torch's constructors check it.  A group's lr (set by hand or by a scheduler, loaded from
    a state dict, given in a group) is a "rate": any finite number, as torch's steps take it."""
    if value < 0:
        raise ValueError(f"Invalid lr: {value!r}; expected a finite number >= 0 as the optimizer's lr "
                         "(a group's lr, set later by hand or by a scheduler, may be below 0, as in torch)")


def as_double(value, name):
    """A real number as the double a kernel reads; ValueError for one too large for a double
    (a whole number: float() would raise OverflowError)."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name} must be a number a double holds, got {reprlib.repr(value)}") from None


def check_flag(value, name):
    if value is not True and value is not False and not isinstance(value, np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def check_betas(betas, name="betas"):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"{name} must be a pair (beta1, beta2), got {betas!r}")
    check_real(betas[0], f"{name}[0]", "fraction")
    check_real(betas[1], f"{name}[1]", "fraction")


def check_finite(value, name):
    """A finite real number (a double holds it); returns it as given."""
    check_real_type(value, name)
    if not math.isfinite(as_double(value, name)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def check_grad_scale(value, name="grad_scale"):
    """A factor the gradients are multiplied by: a finite real number; returns it as a float."""
    return float(check_finite(value, name))
