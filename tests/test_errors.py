"""Bad input: every check raises TypeError or ValueError naming the argument (index, shape)
and what was expected, and a failed step / load_state_dict / add_param_group changes nothing."""
import copy
import math
import re

import numpy as np
import pytest

import fastgd
from conftest import NAMES, STATE_NAMES, assert_state_dicts_equal, assert_unchanged, fast_cls, snapshot

# -- helpers ---------------------------------------------------------------------------

#: the real-valued options of each algorithm (finite; >= 0 but lr and SGD's dampening)
REAL_OPTIONS = {
    "SGD": ("lr", "momentum", "dampening", "weight_decay"),
    "Adam": ("lr", "eps", "weight_decay"),
    "AdamW": ("lr", "eps", "weight_decay"),
    "RMSprop": ("lr", "eps", "weight_decay", "momentum"),
    "Adagrad": ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"),
    "Adamax": ("lr", "eps", "weight_decay"),
    "Adadelta": ("lr", "rho", "eps", "weight_decay"),
    "Lion": ("lr", "weight_decay"),
    "RAdam": ("lr", "eps", "weight_decay"),
    "NAdam": ("lr", "eps", "weight_decay", "momentum_decay"),
}
FLAG_OPTIONS = {
    "SGD": ("nesterov", "maximize"),
    "Adam": ("amsgrad", "maximize"),
    "AdamW": ("amsgrad", "maximize"),
    "RMSprop": ("centered", "maximize"),
    "Adagrad": ("maximize",),
    "Adamax": ("maximize",),
    "Adadelta": ("maximize",),
    "Lion": ("maximize",),
    "RAdam": ("decoupled_weight_decay", "maximize"),
    "NAdam": ("decoupled_weight_decay", "maximize"),
}

#: options that make every state array of the algorithm exist
FULL_OPTIONS = {
    "SGD": {"lr": 0.1, "momentum": 0.9},
    "Adam": {"lr": 0.1, "amsgrad": True},
    "AdamW": {"lr": 0.1, "amsgrad": True},
    "RMSprop": {"lr": 0.01, "momentum": 0.5, "centered": True},
    "Adagrad": {"lr": 0.1},
    "Adamax": {"lr": 0.1},
    "Adadelta": {"lr": 0.1},
    "Lion": {"lr": 0.1},
    "RAdam": {"lr": 0.1},
    "NAdam": {"lr": 0.1},
}

SHAPES = [(3,), (2, 2), (4,), (2, 3)]  # group 0: parameters 0, 1 (float64); group 1: 2, 3 (float32)


def stepped(name, steps=3, seed=0, options=None):
    """An optimizer with two param groups and state, after a few steps, and its parameters
    (options: FULL_OPTIONS[name] unless given)."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(np.float64 if i < 2 else np.float32) for i, s in enumerate(SHAPES)]
    options = FULL_OPTIONS[name] if options is None else options
    opt = fast_cls(name)([{"params": params[:2]}, {"params": params[2:]}], **options)
    for _ in range(steps):
        opt.step(good_grads(params, rng))
    return opt, params


def good_grads(params, rng=None):
    rng = rng or np.random.default_rng(1)
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def real_option_cases(where):
    """(name, option, bad value, exception, message regex) for every real option."""
    cases = []
    for name in NAMES:
        for option in REAL_OPTIONS[name]:
            # a group's lr may be any finite number, as torch's (test_optim: its constructor's is >= 0),
            # and SGD's dampening, which torch does not check
            rate = option == "lr" or (name, option) == ("SGD", "dampening")
            for value in (math.nan, math.inf, -math.inf) + (() if rate else (-1.0, -1e-12)):
                expected = ("a finite number$" if rate else r"a number in \[0, 1\]$" if (name, option) == ("Adadelta", "rho")
                            else "a finite number >= 0")
                pattern = rf"{where}Invalid {option}: {re.escape(repr(value))}; expected {expected}"
                cases.append(pytest.param(name, option, value, ValueError, pattern, id=f"{name}-{option}={value}"))
            for value in ("0.1", None, True, 1j, [0.1]):
                pattern = rf"{where}{option} must be a real number, got {re.escape(repr(value))}"
                cases.append(pytest.param(name, option, value, TypeError, pattern, id=f"{name}-{option}={value!r}"))
        for option in FLAG_OPTIONS[name]:
            for value in (1, "yes", None):
                pattern = rf"{where}{option} must be True or False, got {re.escape(repr(value))}"
                cases.append(pytest.param(name, option, value, TypeError, pattern, id=f"{name}-{option}={value!r}"))
        if name in ("Adam", "AdamW"):
            for value, index in [((1.0, 0.999), 0), ((0.9, 1.0), 1), ((-0.1, 0.999), 0), ((0.9, -0.1), 1),
                                 ((math.nan, 0.999), 0), ((0.9, math.nan), 1), ((math.inf, 0.9), 0), ((0.9, 2.0), 1)]:
                bad = re.escape(repr(value[index]))
                pattern = rf"{where}Invalid betas\[{index}\]: {bad}; expected a number in \[0, 1\)"
                cases.append(pytest.param(name, "betas", value, ValueError, pattern, id=f"{name}-betas={value}"))
            for value in ((0.9,), (0.9, 0.99, 0.999), 0.9, "ab", None):
                pattern = rf"{where}betas must be a pair \(beta1, beta2\), got {re.escape(repr(value))}"
                cases.append(pytest.param(name, "betas", value, TypeError, pattern, id=f"{name}-betas={value!r}"))
            for value in (("0.9", 0.999), (0.9, None)):
                cases.append(pytest.param(name, "betas", value, TypeError, rf"{where}betas\[\d\] must be a real number",
                                          id=f"{name}-betas={value!r}"))
        if name == "RMSprop":  # torch's RMSprop takes any alpha >= 0 (1 and more included)
            for value in (-0.1, math.nan, math.inf):
                pattern = rf"{where}Invalid alpha: {re.escape(repr(value))}; expected a finite number >= 0"
                cases.append(pytest.param(name, "alpha", value, ValueError, pattern, id=f"{name}-alpha={value}"))
            for value in ("0.9", (0.5, 0.5), [0.5]):
                cases.append(pytest.param(name, "alpha", value, TypeError,
                                          rf"{where}alpha must be a real number, got {re.escape(repr(value))}",
                                          id=f"{name}-alpha={value!r}"))
    return cases


def in_group(pattern, where):
    """The message pattern for an option of a numbered group: 'Invalid <where>lr: ...' for values,
    '<where>lr must be ...' for types."""
    if pattern.startswith("Invalid "):
        return "Invalid " + re.escape(where) + pattern[len("Invalid "):]
    return re.escape(where) + pattern


NESTEROV_CASES = [
    pytest.param({"nesterov": True, "momentum": 0}, id="no-momentum"),
    pytest.param({"nesterov": True, "momentum": 0.9, "dampening": 0.1}, id="dampening"),
    pytest.param({"nesterov": True, "momentum": 0.0, "dampening": 0.0}, id="zero-momentum"),
]
NESTEROV_MESSAGE = "Nesterov momentum requires a momentum > 0 and zero dampening"


# -- constructor: bad options ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "option", "value", "error", "pattern"), real_option_cases(""))
def test_bad_option_in_constructor(name, option, value, error, pattern):
    params = [np.zeros(3)]
    with pytest.raises(error, match=pattern):
        fast_cls(name)(params, **{option: value})
    # as a param-group option: named with the group's index when there are several groups
    with pytest.raises(error, match=pattern):
        fast_cls(name)([{"params": params, option: value}])
    with pytest.raises(error, match=in_group(pattern, "param group 1: ")):
        fast_cls(name)([{"params": [np.zeros(2)]}, {"params": params, option: value}])


@pytest.mark.parametrize("options", NESTEROV_CASES)
def test_nesterov_needs_momentum_and_no_dampening(options):
    with pytest.raises(ValueError, match=re.escape(NESTEROV_MESSAGE)):
        fastgd.SGD([np.zeros(3)], **options)
    with pytest.raises(ValueError, match=re.escape(NESTEROV_MESSAGE)):
        fastgd.functional.sgd(np.zeros(3), np.zeros(3), **{"lr": 0.1, **options})
    # a group's own options are not checked, as torch checks only its constructor's (test_optim
    # steps such groups against torch's)
    fastgd.SGD([{"params": [np.zeros(2)]}, {"params": [np.zeros(3)], **options}], lr=0.1)
    fastgd.SGD([np.zeros(2)], lr=0.1).add_param_group({"params": [np.zeros(3)], **options})


@pytest.mark.parametrize("name", NAMES)
def test_unknown_keyword_argument(name):
    with pytest.raises(TypeError, match="unexpected keyword argument 'momentun'"):
        fast_cls(name)([np.zeros(3)], momentun=0.9)
    if name == "Lion":  # not in torch: none of torch's implementation keywords (test_optim checks the others)
        with pytest.raises(TypeError, match="unexpected keyword argument 'foreach'"):
            fast_cls(name)([np.zeros(3)], foreach=False)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_param_group_key(name):
    with pytest.raises(ValueError, match=r"unknown option 'momentun'; " + name + " takes "):
        fast_cls(name)([{"params": [np.zeros(3)], "momentun": 0.9}])
    with pytest.raises(ValueError, match=r"param group 1: unknown option 'bogus', 'foo'"):
        fast_cls(name)([{"params": [np.zeros(3)]}, {"params": [np.zeros(2)], "foo": 1, "bogus": 2}])
    with pytest.raises(ValueError, match=r"param group 0: a param group needs a 'params' entry"):
        fast_cls(name)([{"lr": 0.1}, {"params": [np.zeros(2)]}])


# -- constructor: bad parameters -----------------------------------------------------------------


def bad_param_cases():
    def read_only():
        a = np.zeros(3)
        a.flags.writeable = False
        return [np.zeros(2), a]

    base = np.zeros(12)
    big = np.zeros((3, 4))
    return [
        ("int", lambda: [np.zeros(3), np.zeros(3, dtype=np.int64)], TypeError,
         r"parameter 1 \(shape \(3,\), dtype int64\) has an unsupported dtype; expected float32 or float64"),
        ("int32", lambda: [np.zeros((2, 2), dtype=np.int32)], TypeError,
         r"parameter 0 \(shape \(2, 2\), dtype int32\) has an unsupported dtype"),
        ("float16", lambda: [np.zeros(3, dtype=np.float16)], TypeError,
         r"parameter 0 \(shape \(3,\), dtype float16\) has an unsupported dtype; expected float32 or float64"),
        ("complex", lambda: [np.zeros(3), np.zeros(2, dtype=np.complex128)], TypeError,
         r"parameter 1 \(shape \(2,\), dtype complex128\) has an unsupported dtype"),
        ("bool", lambda: [np.zeros(3, dtype=bool)], TypeError, r"parameter 0 \(shape \(3,\), dtype bool\)"),
        ("object", lambda: [np.zeros(3, dtype=object)], TypeError, r"parameter 0 .*dtype object.*unsupported dtype"),
        ("list", lambda: [[1.0, 2.0]], TypeError,
         r"parameter 0 is a list; expected a NumPy array of float32 or float64"),
        ("list-second", lambda: [np.zeros(2), [1.0, 2.0]], TypeError, r"parameter 1 is a list"),
        ("float", lambda: [np.zeros(2), 1.5], TypeError, r"parameter 1 is a float"),
        ("none", lambda: [None], TypeError, r"parameter 0 is a NoneType"),
        ("read-only", read_only, ValueError,
         r"parameter 1 \(shape \(3,\), dtype float64\) is read-only; the optimizer updates parameters in place"),
        ("same-array-twice", lambda: [base, np.zeros(2), base], ValueError,
         r"parameter 2 shares memory with parameter 0 \(shape \(12,\), dtype float64\)"),
        ("overlapping-views", lambda: [base[0:6], base[4:10]], ValueError,
         r"parameter 1 shares memory with parameter 0 \(shape \(6,\), dtype float64\)"),
        ("view-inside", lambda: [big.reshape(-1), big[1]], ValueError, r"parameter 1 shares memory with parameter 0"),
        ("reinterpreted", lambda: [base, base.view(np.float32)], ValueError,
         r"parameter 1 shares memory with parameter 0"),
        ("parameter-and-its-array", lambda: [fastgd.Parameter(base), base], ValueError,
         r"parameter 1 shares memory with parameter 0"),
        ("overlap-across-groups", lambda: [{"params": [base[:4]]}, {"params": [np.zeros(2), base[3:5]]}], ValueError,
         r"parameter 2 shares memory with parameter 0"),
        ("strided", lambda: [big[:, ::2]], ValueError,
         r"parameter 0 \(shape \(3, 2\), dtype float64\) is not C-contiguous"),
        ("transposed", lambda: [np.zeros(2), big.T], ValueError,
         r"parameter 1 \(shape \(4, 3\), dtype float64\) is not C-contiguous"),
        ("fortran", lambda: [np.asfortranarray(np.zeros((2, 3)))], ValueError,
         r"parameter 0 \(shape \(2, 3\), dtype float64\) is not C-contiguous"),
        ("reversed", lambda: [np.zeros(4)[::-1]], ValueError, r"parameter 0 \(shape \(4,\), dtype float64\) is not C-contiguous"),
        ("misaligned", lambda: [np.ndarray((3,), np.float64, buffer=bytearray(25), offset=1)], ValueError,
         r"parameter 0 \(shape \(3,\), dtype float64\) is not aligned to its dtype"),
        ("byte-swapped", lambda: [np.zeros(3, dtype=">f8")], ValueError,
         r"parameter 0 \(shape \(3,\), dtype >f8\) is not in native byte order"),
        ("parameter-holding-ints", lambda: [fastgd.Parameter(np.arange(3))], TypeError,
         r"parameter 0 \(shape \(3,\), dtype int64\) has an unsupported dtype"),
        ("empty-list", lambda: [], ValueError, r"optimizer got an empty parameter list"),
        ("empty-tuple", lambda: (), ValueError, r"optimizer got an empty parameter list"),
        ("single-array", lambda: np.zeros(3), TypeError,
         r"params must be a list of arrays .*got a single ndarray; wrap it in a list"),
        ("single-parameter", lambda: fastgd.Parameter(np.zeros(3)), TypeError, r"got a single Parameter"),
        ("dict", lambda: {"params": [np.zeros(3)]}, TypeError, r"got a dict; wrap it in a list"),
        ("mix", lambda: [np.zeros(3), {"params": [np.zeros(2)]}], TypeError, r"not a mix"),
        ("not-iterable", lambda: 3.0, TypeError, r"params must be a list of arrays or of param-group dicts, got float"),
        ("none-params", lambda: None, TypeError, r"got NoneType"),
    ] + ([("longdouble", lambda: [np.zeros(3, dtype=np.longdouble)], TypeError,
           rf"parameter 0 \(shape \(3,\), dtype {np.dtype(np.longdouble).name}\) has an unsupported dtype")]
         if np.dtype(np.longdouble).itemsize > 8 else [])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("label", "make", "error", "pattern"), [pytest.param(*c, id=c[0]) for c in bad_param_cases()])
def test_bad_parameters(name, label, make, error, pattern):
    params = make()
    with pytest.raises(error, match=pattern):
        fast_cls(name)(params, lr=0.1)


def test_contiguous_views_that_do_not_overlap_are_accepted():
    base = np.zeros(12)
    a, b = base[:6], base[6:]
    opt = fastgd.SGD([a, b, np.zeros((0, 3)), np.zeros((0, 3))], lr=0.5)  # empty arrays share nothing
    opt.step([np.ones(6), np.full(6, 2.0), np.zeros((0, 3)), np.zeros((0, 3))])
    assert np.array_equal(base, np.concatenate([np.full(6, -0.5), np.full(6, -1.0)]))


# -- step: bad gradients, nothing changed ----------------------------------------------------------


def bad_grad_cases():
    """(label, grads from good grads, exception, message regex); parameter 2 is in the second group."""

    def replace(index, value):
        def make(grads):
            grads = list(grads)
            grads[index] = value(grads[index]) if callable(value) else value
            return grads
        return make

    return [
        ("too-few", lambda g: g[:3], ValueError, r"step\(\) got 3 gradients for 4 parameters"),
        ("too-many", lambda g: g + [g[0]], ValueError, r"step\(\) got 5 gradients for 4 parameters"),
        ("none-list-short", lambda g: [None], ValueError, r"step\(\) got 1 gradients for 4 parameters"),
        ("empty", lambda g: [], ValueError, r"step\(\) got 0 gradients for 4 parameters"),
        ("shape", replace(2, np.zeros((2, 2), np.float32)), ValueError,
         r"gradient 2 has shape \(2, 2\); expected \(4,\), the shape of its parameter"),
        ("shape-transposed", replace(3, lambda g: np.ascontiguousarray(g.T)), ValueError,
         r"gradient 3 has shape \(3, 2\); expected \(2, 3\)"),
        ("shape-broadcastable", replace(2, np.zeros(1, np.float32)), ValueError,
         r"gradient 2 has shape \(1,\); expected \(4,\)"),
        ("shape-0d", replace(0, np.array(1.0)), ValueError, r"gradient 0 has shape \(\); expected \(3,\)"),
        ("list", replace(2, [1.0, 2.0, 3.0, 4.0]), TypeError,
         r"gradient 2 is a list; expected a NumPy array of shape \(4,\) \(or None to skip\)"),
        ("string", replace(2, "abcd"), TypeError, r"gradient 2 is a str; expected a NumPy array of shape \(4,\)"),
        ("float", replace(1, 0.5), TypeError, r"gradient 1 is a float; expected a NumPy array of shape \(2, 2\)"),
        ("parameter-object", replace(1, fastgd.Parameter(np.zeros((2, 2)))), TypeError,
         r"gradient 1 is a fastgd.optim.Parameter"),
        ("int", replace(2, np.zeros(4, dtype=np.int64)), TypeError,
         r"gradient 2 \(shape \(4,\), dtype int64\) has an unsupported dtype; expected float32 or float64 "
         r"like its parameter \(shape \(4,\), dtype float32\)"),
        ("complex", replace(3, lambda g: g.astype(np.complex64)), TypeError,
         r"gradient 3 \(shape \(2, 3\), dtype complex64\) has an unsupported dtype"),
        ("float16", replace(0, np.zeros(3, dtype=np.float16)), TypeError,
         r"gradient 0 \(shape \(3,\), dtype float16\) has an unsupported dtype"),
        ("bool", replace(0, np.zeros(3, dtype=bool)), TypeError, r"gradient 0 \(shape \(3,\), dtype bool\)"),
        ("grads-array", lambda g: np.zeros(4), TypeError,
         r"grads must be a list or tuple with one array per parameter, got ndarray"),
        ("grads-generator", lambda g: (x for x in g), TypeError, r"grads must be a list or tuple .*got generator"),
        ("grads-dict", lambda g: dict(enumerate(g)), TypeError, r"grads must be a list or tuple .*got dict"),
        ("grads-string", lambda g: "abcd", TypeError, r"grads must be a list or tuple .*got str"),
    ]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("label", "make", "error", "pattern"), [pytest.param(*c, id=c[0]) for c in bad_grad_cases()])
def test_bad_gradients_change_nothing(name, label, make, error, pattern):
    opt, params = stepped(name)
    grads = good_grads(params)
    snap = snapshot(opt, params)
    with pytest.raises(error, match=pattern):
        opt.step(make(grads))
    assert_unchanged(opt, params, snap)
    # the optimizer still works, and goes on exactly as one that never saw the bad call
    twin, twin_params = stepped(name)
    opt.step(grads)
    twin.step(grads)
    for p, q in zip(params, twin_params):
        assert np.array_equal(p, q)


@pytest.mark.parametrize("name", NAMES)
def test_bad_gradient_after_first_use_of_the_conversion_path(name):
    """A converted (float64 -> float32) gradient for one parameter and a bad one for another."""
    opt, params = stepped(name)
    grads = good_grads(params)
    grads[3] = grads[3].astype(np.float64)
    grads[1] = np.zeros(5)
    snap = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"gradient 1 has shape \(5,\); expected \(2, 2\)"):
        opt.step(grads)
    assert_unchanged(opt, params, snap)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_made_read_only_after_construction(name):
    opt, params = stepped(name)
    params[2].flags.writeable = False
    snap = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"parameter 2 \(shape \(4,\), dtype float32\) is read-only"):
        opt.step(good_grads(params))
    assert_unchanged(opt, params, snap)


@pytest.mark.parametrize("name", NAMES)
def test_step_without_grads_needs_parameters(name):
    params = [np.zeros(3), fastgd.Parameter(np.zeros(2))]
    params[1].grad = np.ones(2)
    opt = fast_cls(name)(params, lr=0.1)
    data = [params[0], params[1].data]
    snap = snapshot(opt, data)
    with pytest.raises(TypeError, match=r"parameter 0 is a plain array; pass step\(grads\)"):
        opt.step()
    assert_unchanged(opt, data, snap)


@pytest.mark.parametrize("name", NAMES)
def test_bad_parameter_grad_changes_nothing(name):
    holders = [fastgd.Parameter(np.ones(3)), fastgd.Parameter(np.ones((2, 2), np.float32))]
    opt = fast_cls(name)(holders, **FULL_OPTIONS[name])
    holders[0].grad, holders[1].grad = np.ones(3), np.ones((2, 2), np.float32)
    opt.step()
    data = [h.data for h in holders]
    snap = snapshot(opt, data)
    with pytest.raises(ValueError, match=r"grad must have its data's shape \(2, 2\), got shape \(4,\)"):
        holders[1].grad = np.ones(4, np.float32)  # refused where it is set
    object.__setattr__(holders[1], "grad", np.ones(4, np.float32))  # (as a subclass or an old pickle may set it)
    with pytest.raises(ValueError, match=r"gradient 1 has shape \(4,\); expected \(2, 2\)"):
        opt.step()
    with pytest.raises(TypeError, match=r"a Parameter's grad is a list"):  # refused where it is set
        holders[1].grad = [1.0, 1.0, 1.0, 1.0]
    object.__setattr__(holders[1], "grad", [1.0, 1.0, 1.0, 1.0])  # (as a subclass or an old pickle may set it)
    with pytest.raises(TypeError, match=r"gradient 1 is a list"):
        opt.step()
    assert_unchanged(opt, data, snap)


#: options that need state arrays a plain optimizer lacks (dampening: SGD's first momentum step differs)
SWITCHED_ON = {"SGD": {"momentum": 0.9, "dampening": 0.3}, "Adam": {"amsgrad": True}, "AdamW": {"amsgrad": True},
               "RMSprop": {"momentum": 0.5, "centered": True}}


def switched_on(name):
    """An optimizer stepped twice, then given options (in both groups) whose state it lacks."""
    opt, params = stepped(name, steps=2, options={"lr": 0.1})
    for group in opt.param_groups:
        group.update(SWITCHED_ON[name])
    return opt, params


@pytest.mark.parametrize("skipped", [None, 1], ids=["all-grads", "a-None-grad"])
@pytest.mark.parametrize("name", list(SWITCHED_ON))  # Adagrad's one state array exists from the start
def test_memory_error_while_creating_state_changes_nothing(name, skipped, monkeypatch):
    """A step creates the state its options need (np.full) before it updates anything:
    if an array cannot be created, the step changes nothing, the arrays it did create are
    dropped again, and the optimizer goes on as one that never saw the failed call."""
    real_full, calls, fail_at = np.full, [], None

    def full(shape, *args, **kwargs):
        calls.append(shape)
        if len(calls) == fail_at:
            raise MemoryError
        return real_full(shape, *args, **kwargs)

    monkeypatch.setattr(np, "full", full)
    grads = good_grads(switched_on(name)[1])
    if skipped is not None:
        grads[skipped] = None
    twin, twin_params = switched_on(name)
    calls.clear()
    twin.step(grads)
    created = len(calls)
    assert created >= len(SHAPES) - (skipped is not None)  # an array for every parameter stepped, in both groups
    twin.step(grads)
    for fail_at in range(1, created + 1):  # the first, those between, and the last
        opt, params = switched_on(name)
        snap = snapshot(opt, params)
        calls.clear()
        with pytest.raises(MemoryError):
            opt.step(grads)
        assert_unchanged(opt, params, snap)
        opt.step(grads)
        opt.step(grads)
        for p, q in zip(params, twin_params):
            assert np.array_equal(p, q), f"failed at state array {fail_at} of {created}"


@pytest.mark.parametrize("name", list(SWITCHED_ON))
def test_optimizer_changed_while_a_step_creates_state(name, monkeypatch):
    """Code run while a step creates state (here: a patched np.full) cannot change the optimizer:
    adding a param group or loading a state dict then raises RuntimeError, the step fails and
    changes nothing, and the optimizer goes on as one that never saw the failed call."""
    twin, twin_params = switched_on(name)
    real_full = np.full
    for change in ("add_param_group", "load_state_dict"):
        opt, params = switched_on(name)
        snap = snapshot(opt, params)
        saved = opt.state_dict()

        def full(*args, **kwargs):
            if change == "add_param_group":
                opt.add_param_group({"params": [np.ones(3)]})
            else:
                opt.load_state_dict(saved)
            return real_full(*args, **kwargs)

        monkeypatch.setattr(np, "full", full)
        with pytest.raises(RuntimeError, match=rf"{change}\(\): another call is changing this {type(opt).__name__}"):
            opt.step(good_grads(params))
        monkeypatch.undo()
        assert_unchanged(opt, params, snap)
        assert len(opt.param_groups) == 2
        grads = good_grads(params)
        opt.step(grads)
        if change == "add_param_group":
            twin.step(grads)
        assert all(np.array_equal(p, q) for p, q in zip(params, twin_params))


# -- options edited through param_groups ------------------------------------------------------------


@pytest.mark.parametrize("group_index", [0, 1], ids=["group0", "group1"])
@pytest.mark.parametrize(("name", "option", "value", "error", "pattern"), real_option_cases(""))
def test_bad_option_set_through_param_groups(name, option, value, error, pattern, group_index):
    """A bad option put in param_groups makes the next step raise, naming the group and the
    option; nothing changes, in either group; restoring the option makes the optimizer work again."""
    opt, params = stepped(name)
    snap = snapshot(opt, params)
    good = opt.param_groups[group_index][option]
    opt.param_groups[group_index][option] = value
    with pytest.raises((TypeError, ValueError)) as info:
        opt.step(good_grads(params))
    # the user's own edit shows in param_groups; parameters and state are untouched
    assert_unchanged(opt, params, snap, compare_groups=False)
    assert info.type is error
    assert re.search(in_group(pattern, f"param group {group_index}: "), str(info.value)), str(info.value)
    opt.param_groups[group_index][option] = good
    assert_unchanged(opt, params, snap)
    twin, twin_params = stepped(name)
    grads = good_grads(params)
    opt.step(grads)
    twin.step(grads)
    assert all(np.array_equal(p, q) for p, q in zip(params, twin_params))


def test_single_group_messages_have_no_group_number():
    params = [np.zeros(3)]
    opt = fastgd.Adam(params)
    opt.param_groups[0]["eps"] = -0.5
    with pytest.raises(ValueError, match=r"^Invalid eps: -0.5; expected a finite number >= 0$"):
        opt.step([np.ones(3)])
    assert np.array_equal(params[0], np.zeros(3))


# -- add_param_group ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_bad_add_param_group_changes_nothing(name):
    opt, params = stepped(name)
    snap = snapshot(opt, params)
    cases = [
        ({"params": [np.zeros(2)], "lr": math.nan}, ValueError, r"Invalid param group 2: lr: nan; expected a finite number$"),
        ({"params": [np.zeros(2)], "weight_decay": -1.0}, ValueError,
         r"Invalid param group 2: weight_decay: -1.0; expected a finite number >= 0"),
        ({"params": [np.zeros(2)], "lrr": 0.1}, ValueError, r"param group 2: unknown option 'lrr'"),
        ({"lr": 0.1}, ValueError, r"param group 2: a param group needs a 'params' entry"),
        ({"params": [np.zeros(2), params[1]]}, ValueError, r"parameter 5 shares memory with parameter 1"),
        ({"params": [np.zeros(2), np.zeros(3, np.int8)]}, TypeError, r"parameter 5 .*dtype int8.*unsupported dtype"),
        ({"params": [np.zeros((3, 4))[:, 1]]}, ValueError, r"parameter 4 \(shape \(3,\), dtype float64\) is not C-contiguous"),
        ([np.zeros(2)], TypeError, r"a param group must be a dict with a 'params' entry, got list"),
        (np.zeros(2), TypeError, r"a param group must be a dict with a 'params' entry, got ndarray"),
    ]
    for group, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            opt.add_param_group(group)
        assert len(opt.param_groups) == 2
        assert_unchanged(opt, params, snap)
    # still four parameters: four gradients are expected
    with pytest.raises(ValueError, match=r"got 5 gradients for 4 parameters"):
        opt.step(good_grads(params) + [np.zeros(2)])
    opt.step(good_grads(params))


@pytest.mark.parametrize("name", NAMES)
def test_add_param_group_single_array_is_a_group_of_one(name):
    opt, params = stepped(name)
    extra = np.ones(2)
    opt.add_param_group({"params": extra})
    assert len(opt.param_groups) == 3
    assert opt.state_dict()["param_groups"][2]["params"] == [4]
    with pytest.raises(ValueError, match=r"step\(\) got 4 gradients for 5 parameters"):
        opt.step(good_grads(params))


# -- load_state_dict: bad state dicts, nothing changed ---------------------------------------------------


def other_state_dict(name):
    """A valid state dict for `stepped(name)`, different from its own state (more steps)."""
    opt, _ = stepped(name, steps=5, seed=7)
    return opt.state_dict()


def first_array_name(name):
    return next(key for key in STATE_NAMES[name] if key in other_state_dict(name)["state"][0])


def bad_state_dict_cases():
    def edit(fn):
        def make(name):
            sd = copy.deepcopy(other_state_dict(name))
            fn(sd, name)
            return sd
        return make

    def set_state(index, key, value):
        def fn(sd, name):
            k = first_array_name(name) if key is None else key
            sd["state"][index][k] = value(sd["state"][index][k]) if callable(value) else value
        return fn

    def set_group(index, key, value):
        def fn(sd, name):
            sd["param_groups"][index][key] = value
        return fn

    def add_unknown_state(sd, name):
        sd["state"][3]["bogus"] = np.zeros((2, 3), np.float32)

    def foreign_state(sd, name):
        sd["state"][3]["exp_avg" if name in ("SGD", "Adagrad", "RMSprop") else "sum"] = np.zeros((2, 3), np.float32)

    def drop_group(sd, name):
        sd["param_groups"].pop()

    def add_group(sd, name):
        sd["param_groups"].append({**sd["param_groups"][1], "params": [4]})

    def drop_param(sd, name):
        sd["param_groups"][1]["params"] = [2]

    def set_step(value):
        def fn(sd, name):
            if name == "SGD":
                sd["state"][3]["step"] = 1  # SGD keeps no step count
            else:
                sd["state"][3]["step"] = value
        return fn

    return [
        ("not-a-dict", lambda name: [other_state_dict(name)], TypeError,
         r"state_dict must be a dict with the keys 'state' and 'param_groups', as state_dict\(\) returns; got a list"),
        ("missing-key", edit(lambda sd, name: sd.pop("state")), TypeError,
         r"keys 'state' and 'param_groups', as state_dict\(\) returns; it lacks 'state'$"),
        ("extra-key", edit(lambda sd, name: sd.update(extra=1)), TypeError,
         r"keys 'state' and 'param_groups', as state_dict\(\) returns; it also has 'extra'$"),
        ("fewer-groups", edit(drop_group), ValueError, r"state_dict has 1 param groups; this optimizer has 2"),
        ("more-groups", edit(add_group), ValueError, r"state_dict has 3 param groups; this optimizer has 2"),
        ("groups-not-a-list", edit(lambda sd, name: sd.update(param_groups="ab")), ValueError,
         r"state_dict has no list of param groups; this optimizer has 2"),
        ("fewer-params", edit(drop_param), ValueError,
         r"state_dict param group 1: expected a dict whose 'params' is a list of 2 parameter indices, as this "
         r"optimizer's group has that many parameters"),
        ("group-not-a-dict", edit(lambda sd, name: sd["param_groups"].__setitem__(0, [0, 1])), ValueError,
         r"state_dict param group 0: expected a dict whose 'params' is a list of 2 parameter indices"),
        ("params-a-count", edit(lambda sd, name: sd["param_groups"][0].__setitem__("params", 2)), ValueError,
         r"state_dict param group 0: expected a dict whose 'params' is a list of 2 parameter indices"),
        ("bad-lr", edit(set_group(1, "lr", -math.inf)), ValueError, r"Invalid state_dict param group 1: lr: -inf"),
        ("nan-lr", edit(set_group(0, "lr", math.nan)), ValueError, r"Invalid state_dict param group 0: lr: nan"),
        ("state-not-a-dict", edit(lambda sd, name: sd.update(state=[1, 2])), TypeError,
         r"state_dict\['state'\] must be a dict from parameter index to its state"),
        ("wrong-shape", edit(set_state(3, None, lambda a: np.zeros((3, 2), a.dtype))), ValueError,
         r"state of parameter 3 \(shape \(2, 3\), dtype float32\): \w+ has shape \(3, 2\); expected \(2, 3\)"),
        ("wrong-size", edit(set_state(1, None, lambda a: np.zeros(4, a.dtype))), ValueError,
         r"state of parameter 1 \(shape \(2, 2\), dtype float64\): \w+ has shape \(4,\); expected \(2, 2\)"),
        ("scalar-state", edit(set_state(0, None, lambda a: np.float64(1.0))), TypeError,
         r"state of parameter 0 \(shape \(3,\), dtype float64\): \w+ must be a float array"),
        ("list-state", edit(set_state(0, None, lambda a: a.tolist())), TypeError,
         r"state of parameter 0 .*must be a float array, got list"),
        ("int-state", edit(set_state(2, None, lambda a: a.astype(np.int32))), TypeError,
         r"state of parameter 2 .*must be a float array, got an array of dtype int32"),
        ("masked-state", edit(set_state(1, None, lambda a: np.ma.array(a + 5, mask=np.eye(2, dtype=bool)))), TypeError,
         r"state of parameter 1 .*: \w+ is a masked array; the steps read every element"),
        ("entry-not-a-dict", edit(lambda sd, name: sd["state"].__setitem__(1, [np.zeros((2, 2))])), TypeError,
         r"state of parameter 1 \(shape \(2, 2\), dtype float64\) must be a dict, got list"),
        ("unknown-entry", edit(add_unknown_state), ValueError,
         r"state of parameter 3 \(shape \(2, 3\), dtype float32\) has unknown entries \['bogus'\]"),
        ("other-algorithm-entry", edit(foreign_state), ValueError, r"state of parameter 3 .*has unknown entries"),
        ("index-too-large", edit(lambda sd, name: sd["state"].__setitem__(4, sd["state"][0])), ValueError,
         r"state_dict\['state'\] has key 4; expected parameter ids that its param groups list \(\[0, 1, 2, 3\]\)"),
        ("index-negative", edit(lambda sd, name: sd["state"].__setitem__(-1, sd["state"][0])), ValueError,
         r"has key -1; expected parameter ids that its param groups list \(\[0, 1, 2, 3\]\)"),
        ("index-string", edit(lambda sd, name: sd["state"].__setitem__("0", sd["state"][0])), ValueError,
         r"has key '0'; expected parameter ids"),
        ("negative-step", edit(set_step(-1)), ValueError, r"state of parameter 3 .*(step must be a whole number from 0 to \d+, got -1|unknown entries \['step'\])"),
        ("fractional-step", edit(set_step(2.5)), ValueError, r"state of parameter 3 .*(step must be a whole number from 0 to \d+, got 2.5|unknown entries \['step'\])"),
        ("nan-step", edit(set_step(math.nan)), ValueError, r"state of parameter 3 .*(step must be a whole number from 0 to \d+, got nan|unknown entries \['step'\])"),
        ("string-step", edit(set_step("3")), step_type_error, r"state of parameter 3 .*(step must be a whole number from 0 to \d+, got '3'|unknown entries \['step'\])"),
        ("bool-step", edit(set_step(True)), step_type_error, r"state of parameter 3 .*(step must be a whole number from 0 to \d+, got True|unknown entries \['step'\])"),
    ]


def step_type_error(name):
    """A step of no number: a TypeError where the algorithm counts steps; where it does not, the
    step is an unknown entry (ValueError)."""
    return TypeError if fast_cls(name).algorithm.counts_steps else ValueError


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("label", "make", "error", "pattern"),
                         [pytest.param(*c, id=c[0]) for c in bad_state_dict_cases()])
def test_bad_state_dict_changes_nothing(name, label, make, error, pattern):
    if error is step_type_error:
        error = step_type_error(name)
    opt, params = stepped(name)
    snap = snapshot(opt, params)
    bad = make(name)
    with pytest.raises(error, match=pattern):
        opt.load_state_dict(bad)
    assert_unchanged(opt, params, snap)
    # the valid dict the bad one was made from does load, and does change the state
    good = other_state_dict(name)
    opt.load_state_dict(good)
    assert_state_dicts_equal(opt.state_dict(), good)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_for_other_shapes_is_refused(name):
    """A state dict from an optimizer over parameters of other shapes (same count) does not fit."""
    opt, params = stepped(name)
    rng = np.random.default_rng(3)
    others = [rng.standard_normal(s).astype(p.dtype) for s, p in zip([(3,), (2, 2), (5,), (2, 3)], params)]
    other = fast_cls(name)([{"params": others[:2]}, {"params": others[2:]}], **FULL_OPTIONS[name])
    other.step(good_grads(others))
    snap = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"state of parameter 2 \(shape \(4,\), dtype float32\): \w+ has shape \(5,\); expected \(4,\)"):
        opt.load_state_dict(other.state_dict())
    assert_unchanged(opt, params, snap)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_of_one_group_into_two_groups_is_refused(name):
    opt, params = stepped(name)
    single = fast_cls(name)([p.copy() for p in params], **FULL_OPTIONS[name])
    single.step(good_grads(params))
    snap = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"state_dict has 1 param groups; this optimizer has 2"):
        opt.load_state_dict(single.state_dict())
    assert_unchanged(opt, params, snap)


def test_state_dict_of_other_algorithm_is_refused():
    """Its state has entries the algorithm does not keep (its groups' other keys would be kept, as torch keeps them)."""
    adam, params = stepped("Adam")
    sgd, _ = stepped("SGD")
    snap = snapshot(adam, params)
    with pytest.raises(ValueError, match=r"unknown entries \['momentum_buffer'\]"):
        adam.load_state_dict(sgd.state_dict())
    assert_unchanged(adam, params, snap)
    snap = snapshot(sgd, _)
    with pytest.raises(ValueError, match=r"unknown entries \['exp_avg'"):
        sgd.load_state_dict(adam.state_dict())
    assert_unchanged(sgd, _, snap)


def test_adadelta_rho_up_to_one_as_torch(rng):
    """torch.optim.Adadelta takes rho in [0, 1] (rho = 1 included, unlike the betas): a larger
    rho is refused when the optimizer is made, in a group, or when set between steps, naming
    the group, and the refused step changes nothing."""
    with pytest.raises(ValueError, match=r"^Invalid rho: 1.5; expected a number in \[0, 1\]$"):
        fastgd.Adadelta([np.zeros(2)], rho=1.5)
    with pytest.raises(ValueError, match=r"^Invalid param group 1: rho: 1.0000001; expected a number in \[0, 1\]$"):
        fastgd.Adadelta([{"params": [np.zeros(2)]}, {"params": [np.zeros(1)], "rho": 1.0000001}])
    opt, params = stepped("Adadelta", options={"rho": 1.0})
    snap = snapshot(opt, params)
    opt.param_groups[1]["rho"] = 2.0
    with pytest.raises(ValueError, match=r"^Invalid param group 1: rho: 2.0; expected a number in \[0, 1\]$"):
        opt.step(good_grads(params))
    assert_unchanged(opt, params, snap, compare_groups=False)
