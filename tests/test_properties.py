"""Property tests (hypothesis) over small random shapes, both dtypes and valid hyperparameters."""
import copy
import inspect
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import fastgd
from conftest import NAMES, RTOL, assert_state_dicts_equal, fast_cls, ref_cls

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

dtypes = st.sampled_from([np.float32, np.float64])
shape_lists = st.lists(array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5), min_size=1, max_size=3)
seeds = st.integers(0, 2**32 - 1)


def unit(low=0.0, high=1.0):
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


@st.composite
def sgd_options(draw):
    nesterov = draw(st.booleans())
    momentum = draw(st.one_of(st.just(0.0), unit(0.0, 0.99)))
    if nesterov and momentum == 0:
        momentum = 0.5
    return dict(lr=draw(unit(0, 0.5)), momentum=momentum,
                dampening=0.0 if nesterov else draw(st.one_of(st.just(0.0), unit(0, 1))),
                weight_decay=draw(st.one_of(st.just(0.0), unit(0, 0.5))), nesterov=nesterov,
                maximize=draw(st.booleans()))


@st.composite
def adam_options(draw):
    return dict(lr=draw(unit(0, 0.3)), betas=(draw(unit(0, 0.99)), draw(unit(0, 0.9999))),
                eps=draw(unit(1e-8, 1e-2)), weight_decay=draw(st.one_of(st.just(0.0), unit(0, 0.5))),
                amsgrad=draw(st.booleans()), maximize=draw(st.booleans()))


@st.composite
def rmsprop_options(draw):
    centered = draw(st.booleans())
    # centered: square_avg - grad_avg^2 cancels as alpha -> 0 (at alpha=0 it is g^2 - g^2), so keep alpha away from 0
    alpha = draw(unit(0.1, 0.99) if centered else unit(0, 0.99))
    return dict(lr=draw(unit(0, 0.1)), alpha=alpha, eps=draw(unit(1e-8, 1e-2)),
                weight_decay=draw(st.one_of(st.just(0.0), unit(0, 0.5))),
                momentum=draw(st.one_of(st.just(0.0), unit(0, 0.9))), centered=centered,
                maximize=draw(st.booleans()))


@st.composite
def adagrad_options(draw):
    return dict(lr=draw(unit(0, 0.5)), lr_decay=draw(st.one_of(st.just(0.0), unit(0, 1))),
                weight_decay=draw(st.one_of(st.just(0.0), unit(0, 0.5))),
                initial_accumulator_value=draw(st.one_of(st.just(0.0), unit(0, 1))),
                eps=draw(unit(1e-10, 1e-2)), maximize=draw(st.booleans()))


@st.composite
def adamax_options(draw):
    return dict(lr=draw(unit(0, 0.3)), betas=(draw(unit(0, 0.99)), draw(unit(0, 0.9999))),
                eps=draw(unit(1e-8, 1e-2)), weight_decay=draw(st.one_of(st.just(0.0), unit(0, 0.5))),
                maximize=draw(st.booleans()))


@st.composite
def adadelta_options(draw):
    return dict(lr=draw(unit(0, 1)), rho=draw(unit(0, 1)), eps=draw(unit(1e-8, 1e-2)),
                weight_decay=draw(st.one_of(st.just(0.0), unit(0, 0.5))), maximize=draw(st.booleans()))


@st.composite
def lion_options(draw):
    return dict(lr=draw(unit(0, 0.1)), betas=(draw(unit(0, 0.99)), draw(unit(0, 0.9999))),
                weight_decay=draw(st.one_of(st.just(0.0), unit(0, 0.5))), maximize=draw(st.booleans()))


@st.composite
def radam_options(draw):
    return dict(lr=draw(unit(0, 0.3)), betas=(draw(unit(0, 0.99)), draw(unit(0, 0.9999))),
                eps=draw(unit(1e-8, 1e-2)), weight_decay=draw(st.one_of(st.just(0.0), unit(0, 0.5))),
                decoupled_weight_decay=draw(st.booleans()), maximize=draw(st.booleans()))


@st.composite
def nadam_options(draw):
    return dict(lr=draw(unit(0, 0.3)), betas=(draw(unit(0, 0.99)), draw(unit(0, 0.9999))),
                eps=draw(unit(1e-8, 1e-2)), weight_decay=draw(st.one_of(st.just(0.0), unit(0, 0.5))),
                momentum_decay=draw(unit(0, 0.5)), decoupled_weight_decay=draw(st.booleans()),
                maximize=draw(st.booleans()))


STRATEGIES = {"SGD": sgd_options(), "Adam": adam_options(), "AdamW": adam_options(),
              "RMSprop": rmsprop_options(), "Adagrad": adagrad_options(), "Adamax": adamax_options(),
              "Adadelta": adadelta_options(), "Lion": lion_options(),
              "RAdam": radam_options(), "NAdam": nadam_options()}


@st.composite
def cases(draw, names=NAMES):
    """(algorithm, options, dtype, shapes, seed)."""
    name = draw(st.sampled_from(names))
    return name, draw(STRATEGIES[name]), draw(dtypes), draw(shape_lists), draw(seeds)


def arrays(rng, shapes, dtype):
    return [np.asarray(rng.standard_normal(s), dtype=dtype) for s in shapes]


def new(name, params, options, reference=False):
    return (ref_cls if reference else fast_cls)(name)(params, **options)


# -- fastgd agrees with the NumPy reference ---------------------------------------------------------


@settings(max_examples=150, **SETTINGS)
@given(cases(), st.integers(1, 4))
@example(("Adam", dict(lr=0.095703125, betas=(0.0, 0.999), eps=0.0078125, weight_decay=0.0, amsgrad=False,
                       maximize=True), np.float32, [()], 2254), 1)  # the near cancellation in the docstring
@example(("RMSprop", dict(lr=0.07338938165288403, alpha=0.1, eps=1e-8, weight_decay=0.4919835332310683, momentum=0.0,
                          centered=True, maximize=False), np.float32, [(), (), ()], 1222757210), 3)  # (kappa 432)
def test_matches_reference(case, steps):
    """Norm-wise, to RTOL of the largest the parameter was along the way: rounding errors are
    relative to the operands, and an update that nearly cancels the parameter (p = -0.0955,
    p - lr * ... = -0.0009) leaves a result far smaller than them.  Centered RMSprop divides by
    the root of square_avg - grad_avg^2, which cancels when the gradients barely vary: its
    operands' rounding grows by kappa = square_avg / (square_avg - grad_avg^2), the largest the
    reference's state had along the way (432 in the example: float32 rounding then reaches
    6e-5 of the parameter in fastgd and the reference alike)."""
    name, options, dtype, shapes, seed = case
    rng = np.random.default_rng(seed)
    start = arrays(rng, shapes, dtype)
    params = [p.copy() for p in start]
    ref_params = [p.copy() for p in start]
    opt, ref = new(name, params, options), new(name, ref_params, options, reference=True)
    peaks = [np.linalg.norm(q.astype(np.float64)) for q in ref_params]
    kappas = [1.0] * len(ref_params)
    for _ in range(steps):
        grads = arrays(rng, shapes, dtype)
        opt.step(grads)
        ref.step(grads)
        peaks = [max(peak, np.linalg.norm(q.astype(np.float64))) for peak, q in zip(peaks, ref_params)]
        if name == "RMSprop" and options["centered"]:
            kappas = [max(kappa, _cancellation(square, mean, options["eps"]))
                      for kappa, square, mean in zip(kappas, ref._state["square_avg"], ref._state["grad_avg"])]
    for i, (p, q) in enumerate(zip(params, ref_params)):
        assert p.dtype == q.dtype == np.dtype(dtype)
        assert np.all(np.isfinite(p)) and np.all(np.isfinite(q)), f"parameter {i}: not finite"
        error = np.linalg.norm(p.astype(np.float64) - q.astype(np.float64))
        assert error <= RTOL[np.dtype(dtype)] * peaks[i] * kappas[i], \
            f"parameter {i}: error {error:.3g}, largest {peaks[i]:.3g}, kappa {kappas[i]:.3g}"


def _cancellation(square_avg, grad_avg, eps):
    """The largest square_avg / (sqrt(square_avg - grad_avg^2) + eps)^2 of a state, in float64:
    how much the rounding of square_avg grows in the denominator centered RMSprop takes."""
    square, mean = square_avg.astype(np.float64), grad_avg.astype(np.float64)
    with np.errstate(invalid="ignore"):  # (an overflowed square_avg: inf / inf, left out)
        denominator = np.sqrt(np.maximum(square - mean * mean, 0)) + eps
        return float(np.nanmax(square / (denominator * denominator), initial=1.0))


# -- exact properties ---------------------------------------------------------------------------------


@settings(max_examples=60, **SETTINGS)
@given(dtypes, shape_lists, seeds, unit(0, 2), st.one_of(st.just(0.0), unit(0, 1)), st.booleans())
def test_sgd_without_momentum_is_p_minus_lr_g(dtype, shapes, seed, lr, weight_decay, maximize):
    rng = np.random.default_rng(seed)
    params = arrays(rng, shapes, dtype)
    grads = arrays(rng, shapes, dtype)
    start = [p.astype(np.float64) for p in params]
    fastgd.SGD(params, lr=lr, weight_decay=weight_decay, maximize=maximize).step(grads)
    eps = np.finfo(dtype).eps
    for p, p0, g in zip(params, start, grads):
        g = g.astype(np.float64)
        direction = (-g if maximize else g) + weight_decay * p0
        expected = p0 - lr * direction
        # a few roundings of the terms: |p0| + lr * (|g| + weight_decay * |p0|)
        bound = 4 * eps * (np.abs(p0) + lr * (np.abs(g) + weight_decay * np.abs(p0)))
        assert np.all(np.abs(p.astype(np.float64) - expected) <= bound)


@settings(max_examples=80, **SETTINGS)
@given(cases(), st.integers(1, 4))
def test_maximize_is_minimizing_the_negated_gradient(case, steps):
    """maximize=True with g is bit for bit maximize=False with -g (negation is exact)."""
    name, options, dtype, shapes, seed = case
    rng = np.random.default_rng(seed)
    start = arrays(rng, shapes, dtype)
    up = [p.copy() for p in start]
    down = [p.copy() for p in start]
    opt_up = new(name, up, {**options, "maximize": True})
    opt_down = new(name, down, {**options, "maximize": False})
    for _ in range(steps):
        grads = arrays(rng, shapes, dtype)
        opt_up.step(grads)
        opt_down.step([np.negative(g, out=np.empty_like(g)) for g in grads])  # (-g of a 0-d array is a scalar)
    for p, q in zip(up, down):
        assert np.array_equal(p, q)
    sd_up, sd_down = opt_up.state_dict(), opt_down.state_dict()
    for group in sd_down["param_groups"]:
        group["maximize"] = True
    assert_state_dicts_equal(sd_up, sd_down)


@settings(max_examples=60, **SETTINGS)
@given(cases(), st.integers(0, 3))
def test_a_step_without_gradients_changes_nothing(case, steps_before):
    name, options, dtype, shapes, seed = case
    rng = np.random.default_rng(seed)
    params = arrays(rng, shapes, dtype)
    opt = new(name, params, options)
    for _ in range(steps_before):
        opt.step(arrays(rng, shapes, dtype))
    before = [p.copy() for p in params]
    sd = copy.deepcopy(opt.state_dict())
    opt.step([None] * len(params))
    for p, q in zip(params, before):
        assert np.array_equal(p, q)
    assert_state_dicts_equal(opt.state_dict(), sd)


@settings(max_examples=60, **SETTINGS)
@given(cases(), st.integers(1, 3))
def test_parameters_are_updated_independently(case, steps):
    """One optimizer over several parameters updates each as an optimizer over it alone would."""
    name, options, dtype, shapes, seed = case
    rng = np.random.default_rng(seed)
    start = arrays(rng, shapes, dtype)
    together = [p.copy() for p in start]
    alone = [[p.copy()] for p in start]
    opt = new(name, together, options)
    singles = [new(name, a, options) for a in alone]
    for _ in range(steps):
        grads = arrays(rng, shapes, dtype)
        skip = rng.integers(0, len(shapes))  # one parameter has no gradient this step
        grads[skip] = None
        opt.step(grads)
        for single, g in zip(singles, grads):
            single.step([g])
    for p, (q,) in zip(together, alone):
        assert np.array_equal(p, q)


@settings(max_examples=40, **SETTINGS)
@given(cases(), st.integers(1, 3), st.integers(1, 3), st.booleans())
def test_state_dict_round_trip(case, before, after, pickled):
    """A fresh optimizer over copies, loaded with a mid-run state dict, continues bit for bit."""
    name, options, dtype, shapes, seed = case
    rng = np.random.default_rng(seed)
    params = arrays(rng, shapes, dtype)
    opt = new(name, params, options)
    for _ in range(before):
        opt.step(arrays(rng, shapes, dtype))
    sd = opt.state_dict()
    if pickled:
        sd = pickle.loads(pickle.dumps(sd))
    copies = [p.copy() for p in params]
    fresh = fast_cls(name)(copies)
    fresh.load_state_dict(sd)
    for _ in range(after):
        grads = arrays(rng, shapes, dtype)
        opt.step(grads)
        fresh.step(grads)
    for p, q in zip(params, copies):
        assert np.array_equal(p, q)
    assert_state_dicts_equal(fresh.state_dict(), opt.state_dict())


@settings(max_examples=40, **SETTINGS)
@given(cases(), st.integers(1, 3))
def test_zero_lr_leaves_parameters_unchanged(case, steps):
    name, options, dtype, shapes, seed = case
    rng = np.random.default_rng(seed)
    params = arrays(rng, shapes, dtype)
    before = [p.copy() for p in params]
    opt = new(name, params, {**options, "lr": 0.0})
    for _ in range(steps):
        opt.step(arrays(rng, shapes, dtype))
    for p, q in zip(params, before):
        assert np.array_equal(p, q)


@settings(max_examples=40, **SETTINGS)
@given(cases(), st.integers(1, 3), st.booleans())
def test_other_dtype_gradient_is_the_converted_gradient(case, steps, strided):
    name, options, dtype, shapes, seed = case
    other = np.float64 if dtype == np.float32 else np.float32
    rng = np.random.default_rng(seed)
    start = arrays(rng, shapes, dtype)
    a = [p.copy() for p in start]
    b = [p.copy() for p in start]
    opt_a, opt_b = new(name, a, options), new(name, b, options)
    for _ in range(steps):
        if strided:  # every other element of a wider array: neither the dtype nor the layout fits
            raw = [np.asarray(rng.standard_normal(s + (2,)), dtype=other)[..., 0] for s in shapes]
        else:
            raw = arrays(rng, shapes, other)
        opt_a.step(raw)
        opt_b.step([np.array(g, dtype=dtype, order="C") for g in raw])  # (ascontiguousarray makes 0-d 1-d)
    for p, q in zip(a, b):
        assert p.dtype == np.dtype(dtype)
        assert np.array_equal(p, q)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15, **SETTINGS)
@given(data=st.data())
def test_functional_matches_class(name, data):
    """One functional step from the class's mid-run state gives the class's next step, bit for bit."""
    options = data.draw(STRATEGIES[name])
    dtype = data.draw(dtypes)
    shape = data.draw(array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=6))
    rng = np.random.default_rng(data.draw(seeds))
    (p,) = arrays(rng, [shape], dtype)
    opt = fast_cls(name)([p], **options)
    steps = data.draw(st.integers(0, 3))
    for _ in range(steps):
        opt.step(arrays(rng, [shape], dtype))
    saved = opt.state_dict()["state"].get(0, {})

    def state(key, start=0.0):
        """The class's state array, or before its first step (none saved, as in torch) the user's first one."""
        return saved[key] if key in saved else np.full_like(p, start)

    q = p.copy()
    g = arrays(rng, [shape], dtype)[0]
    opt.step([g])
    F = fastgd.functional
    kw = {k: v for k, v in options.items()}
    if name == "SGD":
        F.sgd(q, g, saved.get("momentum_buffer"), **kw)
    elif name in ("Adam", "AdamW"):
        (F.adam if name == "Adam" else F.adamw)(q, g, state("exp_avg"), state("exp_avg_sq"),
                                                 state("max_exp_avg_sq") if kw["amsgrad"] else None,
                                                 step=steps + 1, **kw)
    elif name == "RMSprop":
        F.rmsprop(q, g, state("square_avg"), state("grad_avg") if kw["centered"] else None,
                  state("momentum_buffer") if kw["momentum"] > 0 else None, **kw)
    elif name == "Adagrad":
        F.adagrad(q, g, state("sum", kw.pop("initial_accumulator_value")), step=steps + 1, **kw)
    else:
        function = getattr(F, name.lower())
        algorithm = fast_cls(name).algorithm
        step = {"step": steps + 1} if "step" in inspect.signature(function).parameters else {}
        numbers = {s.name: saved.get(s.name, s.initial) for s in algorithm.scalar_state}  # NAdam's mu_product
        function(q, g, *[state(s.name) for s in algorithm.state], **step, **numbers, **kw)
    assert np.array_equal(p, q)
