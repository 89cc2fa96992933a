"""fastgd's optimizer classes against torch.optim and fastgd.reference.

Covers every algorithm x option set x dtype over 100 steps, param groups,
options changed through param_groups, None gradients, fastgd.Parameter with
step()/zero_grad(), add_param_group, accepted gradient conversions and
state-dict round trips (bit-identical continuation, pickling).
"""
import copy
import inspect
import math
import os
import pickle

import numpy as np
import pytest

import fastgd
from fastgd import optim
from conftest import (
    DTYPES,
    NAMES,
    OPTIONS,
    RTOL,
    SHAPES,
    STATE_NAMES,
    assert_all_close,
    assert_close,
    assert_state_close,
    assert_state_dicts_equal,
    build,
    build_torch,
    compare_state_with_torch,
    fast_cls,
    flat,
    grad_sequence,
    option_cases,
    random_arrays,
    ref_cls,
    ReentrantParameter,
    state_by_name,
    torch_numpy,
    torch_class,
    torch_step,
)

STEPS = 100


def dtype_id(dtype):
    return np.dtype(dtype).name


dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)


# -- every algorithm x option set x dtype, 100 steps ---------------------------------


@dtypes
@pytest.mark.parametrize(("name", "kwargs"), option_cases())
def test_matches_reference(name, kwargs, dtype, rng):
    groups = [(random_arrays(rng, SHAPES, dtype), {})]
    fopt, fparams = build(fast_cls(name), groups, kwargs)
    ropt, rparams = build(ref_cls(name), groups, kwargs)
    for grads in grad_sequence(rng, SHAPES, dtype, STEPS):
        fopt.step(grads)
        ropt.step(grads)
    assert_all_close(fparams, rparams)
    fstate, rstate = fopt.state_dict()["state"], ropt.state_dict()["state"]
    assert set(fstate) == set(rstate)
    for i in fstate:
        assert set(fstate[i]) == set(rstate[i])
    farrays, fsteps = state_by_name(fopt.state_dict())
    rarrays, rsteps = state_by_name(ropt.state_dict())
    assert fsteps == rsteps
    assert all(step == STEPS for step in fsteps.values())
    assert_state_close(farrays, rarrays, "state vs reference")
    # the parameters really moved (the comparison is not between two untouched copies)
    for p, p0 in zip(fparams, flat(groups)):
        if p.size:
            assert not np.array_equal(p, p0)


@dtypes
@pytest.mark.parametrize(("name", "kwargs"), option_cases())
def test_matches_torch(name, kwargs, dtype, rng):
    torch = pytest.importorskip("torch")
    groups = [(random_arrays(rng, SHAPES, dtype), {})]
    fopt, fparams = build(fast_cls(name), groups, kwargs)
    topt, tparams = build_torch(torch, name, groups, kwargs)
    for grads in grad_sequence(rng, SHAPES, dtype, STEPS):
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    compared = compare_state_with_torch(fopt, topt, tparams)
    if name != "SGD" or kwargs.get("momentum", 0):
        assert compared >= len(SHAPES)
    # the options fastgd keeps are torch's, with torch's values
    for fgroup, tgroup in zip(fopt.param_groups, topt.param_groups):
        for key, value in fgroup.items():
            if key != "params":
                assert key in tgroup
                assert tgroup[key] == (tuple(value) if key == "betas" else value)


@pytest.mark.parametrize("name", NAMES)
def test_defaults_are_torchs(name):
    torch = pytest.importorskip("torch")
    fopt = fast_cls(name)([np.zeros(2)])
    topt = torch_class(torch, name)([torch.zeros(2, requires_grad=True)])
    options = {key: value for key, value in fopt.param_groups[0].items() if key != "params"}
    assert options == fopt.defaults
    for key, value in options.items():
        assert topt.defaults[key] == value, key


#: torch's keywords that choose among its implementations or serve its autograd and CUDA graphs
TORCH_ONLY = ("foreach", "fused", "capturable", "differentiable")


@pytest.mark.parametrize("name", [name for name in NAMES if name != "Lion"])
def test_takes_torchs_implementation_keywords_where_torch_does(name):
    """Code written for torch runs: each class takes the keywords of its torch namesake, all of them,
    with its defaults, and by position those that torch takes by position, in its order."""
    torch = pytest.importorskip("torch")
    torch_names = set(inspect.signature(torch_class(torch, name).__init__).parameters) - {"self"}
    fast_names = set(inspect.signature(fast_cls(name).__init__).parameters) - {"self", "n_threads"}
    assert fast_names == torch_names

    def arguments(cls):  # (those taken by position, in order; every default)
        listed = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "n_threads"]
        return ([p.name for p in listed if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD],
                {p.name: p.default for p in listed})

    assert arguments(fast_cls(name)) == arguments(torch_class(torch, name))
    for keyword in TORCH_ONLY:
        if keyword not in torch_names:  # and not taken where torch does not take it
            with pytest.raises(TypeError, match=keyword):
                fast_cls(name)([np.zeros(2)], **{keyword: False})


@pytest.mark.parametrize("name", [name for name in NAMES if name != "Lion"])
@pytest.mark.parametrize("choice", [dict(foreach=True), dict(foreach=False), dict(fused=True), dict(fused=False)])
def test_foreach_and_fused_change_nothing(name, choice, rng):
    """torch's results do not depend on its implementation; fastgd's do not depend on the keyword."""
    torch = pytest.importorskip("torch")
    if "fused" in choice and "fused" not in inspect.signature(torch_class(torch, name).__init__).parameters:
        pytest.skip(f"torch's {name} has no fused keyword")
    kwargs = OPTIONS[name][-1]
    groups = [(random_arrays(rng, SHAPES, np.float32), {})]
    fopt, fparams = build(fast_cls(name), groups, {**kwargs, **choice})
    plain, plain_params = build(fast_cls(name), groups, kwargs)
    topt, tparams = build_torch(torch, name, groups, kwargs)
    for grads in grad_sequence(rng, SHAPES, np.float32, 5):
        fopt.step(grads)
        plain.step(grads)
        torch_step(torch, topt, tparams, grads)
    for p, q in zip(fparams, plain_params):
        np.testing.assert_array_equal(p, q)
    assert_all_close(fparams, torch_numpy(tparams))
    assert not set(fopt.param_groups[0]) & set(TORCH_ONLY)


@pytest.mark.parametrize("name", NAMES)
def test_torch_keywords_in_param_groups_as_torch(name):
    """torch keeps its keywords in its defaults, so a group may give them too (given to the
    constructor or to add_param_group): taken, checked and kept where the class takes them."""
    torch = pytest.importorskip("torch")
    taken = set(inspect.signature(fast_cls(name).__init__).parameters) & set(TORCH_ONLY)
    given = {"foreach": False, "differentiable": False, "capturable": False, "fused": None}
    group = {key: value for key, value in given.items() if key in taken}
    opt = fast_cls(name)([{"params": [np.zeros(2)], **group}])
    assert {key: opt.param_groups[0][key] for key in group} == group
    if name != "Lion":
        torch_class(torch, name)([{"params": [torch.zeros(2, requires_grad=True)], **group}])
    for key in set(TORCH_ONLY) - taken:  # not taken where the class does not take it
        with pytest.raises(ValueError, match=f"unknown option '{key}'"):
            opt.add_param_group({"params": [np.zeros(3)], key: False})
    for key in taken & {"capturable", "differentiable"}:
        with pytest.raises(ValueError, match=f"param group 1: {key}=True is torch's"):
            opt.add_param_group({"params": [np.zeros(3)], key: True})
    assert len(opt.param_groups) == 1
    opt.add_param_group({"params": [np.zeros(3)], **{key: np.False_ for key in taken}})
    opt.step([np.ones(2), np.ones(3)])


@pytest.mark.parametrize("name", [name for name in NAMES if name != "Lion"])
def test_torch_only_keywords_refused_with_what_fastgd_lacks(name):
    torch = pytest.importorskip("torch")
    taken = inspect.signature(torch_class(torch, name).__init__).parameters
    param = np.zeros(2)
    for keyword in ("capturable", "differentiable"):
        if keyword in taken:
            with pytest.raises(ValueError, match=f"{keyword}=True.*use {keyword}=False"):
                fast_cls(name)([param], **{keyword: True})
            fast_cls(name)([param], **{keyword: False})
            with pytest.raises(TypeError, match=keyword):
                fast_cls(name)([param], **{keyword: "no"})
    with pytest.raises(TypeError, match="foreach must be None, True or False"):
        fast_cls(name)([param], foreach=1)
    if "fused" in taken:  # torch refuses both at once, at construction
        with pytest.raises(RuntimeError):
            torch_class(torch, name)([torch.zeros(2, requires_grad=True)], foreach=True, fused=True)
        with pytest.raises(ValueError, match="foreach and fused cannot both be True"):
            fast_cls(name)([param], foreach=True, fused=True)
    np.testing.assert_array_equal(param, 0)


@pytest.mark.parametrize("where", ["changed later", "given in a group", "added"])
@pytest.mark.parametrize("changed", [dict(momentum=0.0), dict(dampening=0.3), dict(momentum=0.0, dampening=0.3),
                                     dict(nesterov=True, momentum=0.0)])
def test_nesterov_groups_step_as_torch(changed, where, rng):
    """torch checks Nesterov's momentum > 0 and zero dampening on its constructor's options only: a
    group's own, given to it or to add_param_group, or changed afterwards (by hand, or by a scheduler
    cycling momentum down to 0), steps with torch's formula."""
    torch = pytest.importorskip("torch")
    groups = [(random_arrays(rng, SHAPES, np.float64), {}),
              (random_arrays(rng, SHAPES, np.float64), changed if where == "given in a group" else {})]
    kwargs = dict(lr=0.05, momentum=0.9, nesterov="nesterov" not in changed)
    if where == "added":
        fopt, fparams = build(fast_cls("SGD"), groups[:1], kwargs)
        topt, tparams = build_torch(torch, "SGD", groups[:1], kwargs)
        added = [np.array(a, copy=True) for a in groups[1][0]]
        added_torch = [torch.tensor(a.copy(), requires_grad=True) for a in groups[1][0]]
        fopt.add_param_group({"params": added, **changed})
        topt.add_param_group({"params": added_torch, **changed})
        fparams, tparams = fparams + added, tparams + added_torch
    else:
        fopt, fparams = build(fast_cls("SGD"), groups, kwargs)
        topt, tparams = build_torch(torch, "SGD", groups, kwargs)
    for step, grads in enumerate(grad_sequence(rng, SHAPES + SHAPES, np.float64, 6)):
        if step == 3 and where == "changed later":
            fopt.param_groups[1].update(changed)
            topt.param_groups[1].update(changed)
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    compare_state_with_torch(fopt, topt, tparams)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("alpha", [1.0, 1.2, 1.5, 3.0])
@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_takes_alpha_of_one_and_more_as_torch(rng, dtype, alpha, centered):
    # refused before, though torch's RMSprop takes any alpha >= 0 (and its state dicts hold it):
    # at 1 the average stays 0 and the steps are g / eps; past 1 it goes negative, its root NaN
    torch = pytest.importorskip("torch")
    start = rng.standard_normal(64).astype(dtype)
    grads = [rng.standard_normal(64).astype(dtype) for _ in range(4)]
    param, tparam = start.copy(), torch.tensor(start, requires_grad=True)
    options = dict(lr=1e-3, alpha=alpha, centered=centered, momentum=0.5, eps=1e-2)
    opt, topt = fastgd.RMSprop([param], **options), torch.optim.RMSprop([tparam], foreach=False, **options)
    for grad in grads:
        opt.step([grad])
        tparam.grad = torch.tensor(grad)
        topt.step()
    np.testing.assert_allclose(param, tparam.detach().numpy(), rtol=RTOL[np.dtype(dtype)], equal_nan=True)
    assert np.isfinite(param).all() == (alpha == 1.0)
    state, tstate = opt.state_dict()["state"][0], topt.state_dict()["state"][0]
    np.testing.assert_allclose(state["square_avg"], tstate["square_avg"].numpy(), rtol=RTOL[np.dtype(dtype)], equal_nan=True)


# -- param groups, options changed mid-run, None gradients ----------------------------

GROUP_OPTIONS = {
    "SGD": ({"lr": 0.1, "momentum": 0.9, "nesterov": True}, {"lr": 0.03, "weight_decay": 0.1, "maximize": True}),
    "Adam": ({"lr": 0.02, "amsgrad": True}, {"betas": (0.5, 0.8), "weight_decay": 0.1}),
    "AdamW": ({"lr": 0.02, "weight_decay": 0.2}, {"amsgrad": True, "maximize": True, "eps": 1e-5}),
    "RMSprop": ({"centered": True, "alpha": 0.8}, {"momentum": 0.5, "weight_decay": 0.1, "lr": 0.003}),
    "Adagrad": ({"lr_decay": 0.1, "maximize": True}, {"lr": 0.2, "weight_decay": 0.1, "eps": 1e-4}),
    "Adamax": ({"lr": 0.02, "betas": (0.5, 0.8)}, {"weight_decay": 0.1, "maximize": True, "eps": 1e-3}),
    "Adadelta": ({"lr": 0.5, "rho": 0.6}, {"weight_decay": 0.1, "maximize": True, "eps": 1e-3}),
    "Lion": ({"lr": 0.02, "betas": (0.5, 0.8)}, {"weight_decay": 0.1, "maximize": True}),
    "RAdam": ({"lr": 0.02, "betas": (0.5, 0.9)}, {"weight_decay": 0.1, "decoupled_weight_decay": True, "eps": 1e-5}),
    "NAdam": ({"lr": 0.02, "momentum_decay": 0.05}, {"weight_decay": 0.1, "decoupled_weight_decay": True,
                                                     "betas": (0.6, 0.9)}),
}

# torch.optim.Adagrad fills its "sum" state from the constructor's initial_accumulator_value
# even for a group that sets its own, so against torch that option is given to the constructor
GROUP_KWARGS = {name: {"lr": 0.01} for name in NAMES}
GROUP_KWARGS["Adagrad"] = {"lr": 0.01, "initial_accumulator_value": 0.3}


def two_groups(rng, name, dtypes=(np.float32, np.float64)):
    first, second = GROUP_OPTIONS[name]
    return [
        (random_arrays(rng, [(4, 3), ()], dtypes[0]), first),
        (random_arrays(rng, [(5,), (0, 2), (2, 2)], dtypes[1]), second),
    ]


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_with_different_options(name, rng):
    torch = pytest.importorskip("torch")
    groups = two_groups(rng, name)
    kwargs = GROUP_KWARGS[name]
    fopt, fparams = build(fast_cls(name), groups, kwargs)
    topt, tparams = build_torch(torch, name, groups, kwargs)
    ropt, rparams = build(ref_cls(name), groups, kwargs)
    # each group's options: its own, the constructor's for the rest
    for fgroup, tgroup in zip(fopt.param_groups, topt.param_groups):
        for key, value in fgroup.items():
            if key != "params":
                assert tgroup[key] == (tuple(value) if key == "betas" else value)
    shapes = [p.shape for p in fparams]
    for k in range(60):
        grads = [np.asarray(rng.standard_normal(s), dtype=p.dtype) for s, p in zip(shapes, fparams)]
        fopt.step(grads)
        ropt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    assert_all_close(fparams, rparams)
    compare_state_with_torch(fopt, topt, tparams)
    # parameters are numbered in order across groups
    assert [g["params"] for g in fopt.state_dict()["param_groups"]] == [[0, 1], [2, 3, 4]]


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_equal_to_separate_optimizers(name, rng):
    """Each group is updated as an optimizer over that group alone would update it (bitwise)."""
    groups = two_groups(rng, name)
    fopt, fparams = build(fast_cls(name), groups, {})
    singles = [build(fast_cls(name), [(arrays, {})], options) for arrays, options in groups]
    for k in range(10):
        grads = [np.asarray(rng.standard_normal(p.shape), dtype=p.dtype) for p in fparams]
        fopt.step(grads)
        singles[0][0].step(grads[:2])
        singles[1][0].step(grads[2:])
    for p, q in zip(fparams, singles[0][1] + singles[1][1]):
        assert np.array_equal(p, q)


def test_adagrad_state_from_the_start_for_the_constructors_parameters_only(rng):
    """torch's Adagrad makes the state of its constructor's parameters at once, and of those added
    later (add_param_group) at their first step with a gradient: state_dict() says so."""
    torch = pytest.importorskip("torch")
    arrays = [rng.standard_normal(3), rng.standard_normal(2)]
    fopt = fastgd.Adagrad([arrays[0].copy()], lr=0.1)
    tparams = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    topt = torch.optim.Adagrad([tparams[0]], lr=0.1, foreach=False)
    added = arrays[1].copy()
    fopt.add_param_group({"params": [added], "initial_accumulator_value": 0.5})
    topt.add_param_group({"params": [tparams[1]]})
    for grads in ([np.ones(3), None], [np.ones(3), np.full(2, 2.0)]):
        assert set(fopt.state_dict()["state"]) == set(topt.state_dict()["state"])
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert set(fopt.state_dict()["state"]) == set(topt.state_dict()["state"]) == {0, 1}
    # the added group's own initial value (torch's is the constructor's: README)
    np.testing.assert_allclose(fopt.state_dict()["state"][1]["sum"], 0.5 + 4.0)
    np.testing.assert_allclose(added, arrays[1] - 0.1 * 2.0 / (np.sqrt(4.5) + 1e-10))


class _FalseFloat(float):
    """A number whose truth (bool) is not its value's: which state an option needs is read off
    the value the step reads, in one place (Plan.missing)."""

    def __bool__(self):
        return False


@pytest.mark.parametrize("name, options", [("SGD", dict(lr=0.1, momentum=_FalseFloat(0.9))),
                                           ("RMSprop", dict(lr=0.01, momentum=_FalseFloat(0.5)))])
def test_the_state_an_option_needs_follows_the_value_the_step_reads(name, options, rng):
    """A momentum of 0.9 whose bool() is False still gets its momentum buffer: the step, and
    functional's, run as with the plain number, where the state was decided from bool() and the
    step found it missing after each check (RuntimeError)."""
    plain = {key: float(value) for key, value in options.items()}
    start, grads = rng.standard_normal(4), [rng.standard_normal(4) for _ in range(3)]
    results = []
    for opt_options in (options, plain):
        param = start.copy()
        opt = getattr(fastgd, name)([param], **opt_options)
        for g in grads:
            opt.step([g])
        results.append((param, opt.state_dict()["state"][0]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1].keys() == results[1][1].keys() and "momentum_buffer" in results[0][1]
    for key, value in results[1][1].items():
        np.testing.assert_array_equal(results[0][1][key], value)
    if name == "SGD":  # functional's step makes the first buffer and returns it
        buffer = fastgd.functional.sgd(start.copy(), grads[0], None, **options)
        assert buffer is not None and np.array_equal(buffer, grads[0])


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_adagrad_group_initial_accumulator_value(dtype, rng):
    """Each group's state sum starts at that group's initial_accumulator_value (closed form for
    the first step: sum = v0 + g^2, p - lr * g / (sqrt(sum) + eps)), and later steps follow the reference."""
    a, b = random_arrays(rng, [(5,), (2, 3)], dtype)
    ga, gb = random_arrays(rng, [(5,), (2, 3)], dtype)
    groups = [([a], {"initial_accumulator_value": 0.5}), ([b], {})]
    opt, (p, q) = build(fastgd.Adagrad, groups, {"lr": 0.1, "initial_accumulator_value": 2.0})
    ropt, rparams = build(fastgd.reference.Adagrad, groups, {"lr": 0.1, "initial_accumulator_value": 2.0})
    opt.step([ga, gb])
    ropt.step([ga, gb])
    wide = [x.astype(np.float64) for x in (a, b, ga, gb)]
    for got, p0, g, v0 in ((p, wide[0], wide[2], 0.5), (q, wide[1], wide[3], 2.0)):
        expected = p0 - 0.1 * g / (np.sqrt(v0 + g * g) + 1e-10)
        assert_close(got, expected, 10 * np.finfo(dtype).eps, "first step")
    state = opt.state_dict()["state"]
    assert_close(state[0]["sum"], 0.5 + wide[2] ** 2, 4 * np.finfo(dtype).eps)
    assert_close(state[1]["sum"], 2.0 + wide[3] ** 2, 4 * np.finfo(dtype).eps)
    for grads in grad_sequence(rng, [(5,), (2, 3)], dtype, 20):
        opt.step(grads)
        ropt.step(grads)
    assert_all_close([p, q], rparams)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_lion_two_steps_computed_by_hand(dtype):
    """Lion's Algorithm 2 worked by hand for two steps (lr 0.1, betas (0.9, 0.99), weight decay
    0.5): the third element's first interpolation is 0, so it only decays (sign(0) = 0); with
    maximize=True and the gradients negated the steps are the same, bit for bit."""
    start = np.array([1.0, -2.0, 0.5, 3.0], dtype=dtype)
    grads = [np.array([0.5, -0.25, 0.0, 2.0], dtype=dtype), np.array([-1.0, 1.0, 0.25, 0.0], dtype=dtype)]
    # step 1: c = 0.1 g1 = (0.05, -0.025, 0, 0.2); p = 0.95 p - 0.1 sign(c); m = 0.01 g1
    # step 2: c = 0.9 m + 0.1 g2 = (-0.0955, 0.09775, 0.025, 0.018); p = 0.95 p - 0.1 sign(c); m = 0.99 m + 0.01 g2
    expected = [([0.85, -1.8, 0.475, 2.75], [0.005, -0.0025, 0.0, 0.02]),
                ([0.9075, -1.81, 0.35125, 2.5125], [-0.00505, 0.007525, 0.0025, 0.0198])]
    runs = []
    for maximize in (False, True):
        p = start.copy()
        opt = fastgd.Lion([p], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5, maximize=maximize)
        for g, (p_expected, m_expected) in zip(grads, expected):
            opt.step([-g if maximize else g])
            tolerance = 8 * np.finfo(dtype).eps
            np.testing.assert_allclose(p, p_expected, rtol=tolerance, atol=tolerance)
            np.testing.assert_allclose(opt.state_dict()["state"][0]["exp_avg"], m_expected, rtol=tolerance,
                                       atol=tolerance)
        assert opt.state_dict()["state"][0].keys() == {"exp_avg"}  # no step count: Lion has no bias correction
        runs.append(p)
    assert np.array_equal(runs[0], runs[1])


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_lion_is_optax_formula(weight_decay, rng):
    """optax's lion, as its documentation writes it: u = sign((1 - b1) g + b1 mu),
    mu = (1 - b2) g + b2 mu, p = p - lr (u + weight_decay p); fastgd shrinks p first (the same
    step, rounded otherwise), so after 60 steps they agree to rounding."""
    lr, b1, b2 = 0.01, 0.9, 0.99
    p = rng.standard_normal(50)
    expected, mu = p.copy(), np.zeros(50)
    opt = fastgd.Lion([p], lr=lr, betas=(b1, b2), weight_decay=weight_decay)
    for _ in range(60):
        g = rng.standard_normal(50)
        opt.step([g])
        update = np.sign((1 - b1) * g + b1 * mu)
        mu = (1 - b2) * g + b2 * mu
        expected = expected - lr * (update + weight_decay * expected)
    assert_close(p, expected, 1e-12)
    assert_close(opt.state_dict()["state"][0]["exp_avg"], mu, 1e-12)


def test_nadam_mu_product_is_a_float32_product_per_parameter(rng):
    """mu_product, NAdam's ScalarState: per parameter, the product of mu_t = beta1 (1 - 0.5 *
    0.96 ** (t momentum_decay)) over that parameter's own steps, each product rounded to float32
    (torch keeps it as a float32 tensor), saved as a float; a parameter skipped has its own."""
    beta1, momentum_decay = 0.8, 0.3
    params = random_arrays(rng, [(3,), (2,)], np.float64)
    opt = fastgd.NAdam(params, lr=0.01, betas=(beta1, 0.99), momentum_decay=momentum_decay)
    expected, counts = [np.float32(1.0), np.float32(1.0)], [0, 0]
    for k in range(12):
        grads = [rng.standard_normal(3), None if k % 3 == 0 else rng.standard_normal(2)]
        opt.step(grads)
        for i, g in enumerate(grads):
            if g is not None:
                counts[i] += 1
                mu = beta1 * (1 - 0.5 * 0.96 ** (counts[i] * momentum_decay))
                expected[i] = np.float32(expected[i] * np.float32(mu))
        state = opt.state_dict()["state"]
        for i in range(2):
            if counts[i]:
                assert type(state[i]["mu_product"]) is float and state[i]["mu_product"] == float(expected[i])
                assert state[i]["step"] == counts[i]
    assert counts == [12, 8] and expected[0] != expected[1]


def test_nadam_mu_product_follows_its_parameter_as_torch(rng):
    """Parameters reordered in param_groups and a group added mid-run: each keeps its own
    mu_product (a new one starts at 1), as torch keys its state by the tensor."""
    torch = pytest.importorskip("torch")
    shapes = [(4,), (3,), ()]
    groups = [(random_arrays(rng, shapes, np.float64), {})]
    kwargs = dict(lr=0.02, momentum_decay=0.2)
    fopt, fparams = build(fastgd.NAdam, groups, kwargs)
    topt, tparams = build_torch(torch, "NAdam", groups, kwargs)
    for k in range(5):
        grads = [None if (k < 3 and i == 2) else g for i, g in enumerate(random_arrays(rng, shapes, np.float64))]
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    order = [2, 0, 1]
    for opt, ps in ((fopt, fparams), (topt, tparams)):
        opt.param_groups[0]["params"] = [ps[i] for i in order]
    fparams, tparams = [fparams[i] for i in order], [tparams[i] for i in order]
    extra = random_arrays(rng, [(2,)], np.float64)
    fopt.add_param_group({"params": [extra[0].copy()], "momentum_decay": 0.05})
    topt.add_param_group({"params": [torch.tensor(extra[0].copy(), requires_grad=True)], "momentum_decay": 0.05})
    fparams.append(fopt.param_groups[1]["params"][0])
    tparams.append(topt.param_groups[1]["params"][0])
    for _ in range(6):
        grads = random_arrays(rng, [p.shape for p in fparams], np.float64)
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    compare_state_with_torch(fopt, topt, tparams)  # mu_product compared for equality
    # the first two stepped alike; the third missed three steps; the added one has its own group
    assert len({entry["mu_product"] for entry in fopt.state_dict()["state"].values()}) == 3


def test_nadam_bad_mu_product_in_a_state_dict_changes_nothing(rng):
    params = random_arrays(rng, [(3,)], np.float32)
    opt = fastgd.NAdam(params, lr=0.01)
    opt.step(random_arrays(rng, [(3,)], np.float32))
    before = copy.deepcopy(opt.state_dict())
    # (1e39, beyond float32, became inf, and the state_dict() after a step failed its own load)
    for bad, error in [(math.nan, ValueError), (math.inf, ValueError), ("0.9", TypeError), (None, TypeError),
                       (True, TypeError), (np.array([0.9]), TypeError), (1e39, ValueError), (1.5, ValueError),
                       (-0.5, ValueError), (10**400, ValueError)]:
        broken = copy.deepcopy(before)
        broken["state"][0]["mu_product"] = bad
        with pytest.raises(error, match=r"state of parameter 0 .*: mu_product must be a number"):
            opt.load_state_dict(broken)
        assert_state_dicts_equal(opt.state_dict(), before)
    loaded = copy.deepcopy(before)
    loaded["state"][0]["mu_product"] = np.array(0.5, dtype=np.float32)  # as torch's, converted to NumPy
    opt.load_state_dict(loaded)
    assert opt.state_dict()["state"][0]["mu_product"] == 0.5


@pytest.mark.parametrize(("name", "kwargs"), [("Adamax", {"lr": 0.01}), ("Adam", {"lr": 0.01, "amsgrad": True})])
@dtypes
def test_nan_in_the_running_maximum_propagates_as_torch(name, kwargs, dtype, rng):
    """Adamax's exp_inf and AMSGrad's max_exp_avg_sq are torch.maximum's, which keeps a NaN
    from either side: a NaN gradient element stays NaN in that element only, as in torch."""
    torch = pytest.importorskip("torch")
    groups = [(random_arrays(rng, [(37,)], dtype), {})]
    fopt, fparams = build(fast_cls(name), groups, kwargs)
    topt, tparams = build_torch(torch, name, groups, kwargs)
    for k, grads in enumerate(grad_sequence(rng, [(37,)], dtype, 4)):
        if k == 1:
            grads[0][[3, 20]] = np.nan
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    expected = torch_numpy(tparams)[0]
    assert np.array_equal(np.isnan(fparams[0]), np.isnan(expected)) and np.isnan(expected).sum() == 2
    finite = ~np.isnan(expected)
    assert_close(fparams[0][finite], expected[finite], RTOL[np.dtype(dtype)])


CHANGES = {
    "SGD": ({"lr": 0.01, "momentum": 0.9}, {"lr": 0.1}, {"momentum": 0.5, "weight_decay": 0.1}),
    "Adam": ({"lr": 0.01}, {"lr": 0.05}, {"betas": (0.7, 0.9), "weight_decay": 0.1}),
    "AdamW": ({"lr": 0.01}, {"lr": 0.001}, {"weight_decay": 0.5, "eps": 1e-4}),
    "RMSprop": ({"centered": True}, {"lr": 0.001}, {"alpha": 0.5, "maximize": True}),
    "Adagrad": ({"lr": 0.1}, {"lr": 0.02}, {"lr_decay": 0.1, "weight_decay": 0.05}),
    "Adamax": ({"lr": 0.01}, {"lr": 0.05}, {"betas": (0.7, 0.9), "weight_decay": 0.1, "maximize": True}),
    "Adadelta": ({"lr": 1.0}, {"lr": 0.3}, {"rho": 0.5, "eps": 1e-3, "weight_decay": 0.1}),
    "Lion": ({"lr": 0.01}, {"lr": 0.002}, {"betas": (0.7, 0.9), "weight_decay": 0.3, "maximize": True}),
    "RAdam": ({"lr": 0.01}, {"lr": 0.05}, {"betas": (0.7, 0.9), "weight_decay": 0.1, "decoupled_weight_decay": True}),
    "NAdam": ({"lr": 0.01}, {"lr": 0.05}, {"momentum_decay": 0.1, "betas": (0.7, 0.9), "weight_decay": 0.1}),
}


@dtypes
@pytest.mark.parametrize("name", NAMES)
def test_options_changed_through_param_groups(name, dtype, rng):
    """Editing opt.param_groups[i][key] between steps changes the following steps, as in torch."""
    torch = pytest.importorskip("torch")
    kwargs, first_change, second_change = CHANGES[name]
    shapes = [(6,), (2, 3), ()]
    groups = [(random_arrays(rng, shapes, dtype), {})]
    fopt, fparams = build(fast_cls(name), groups, kwargs)
    topt, tparams = build_torch(torch, name, groups, kwargs)
    for k, grads in enumerate(grad_sequence(rng, shapes, dtype, 60)):
        change = {20: first_change, 40: second_change}.get(k, {})
        for opt in (fopt, topt):
            opt.param_groups[0].update(change)
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    for key, value in {**first_change, **second_change}.items():
        assert fopt.param_groups[0][key] == value
    assert_all_close(fparams, torch_numpy(tparams))
    compare_state_with_torch(fopt, topt, tparams)


@pytest.mark.parametrize("name", NAMES)
def test_lr_change_takes_effect(name, rng):
    """The same run with and without an lr change mid-run differs only from the change on."""
    shapes = [(5,), (3, 2)]
    groups = [(random_arrays(rng, shapes, np.float64), {})]
    seq = grad_sequence(rng, shapes, np.float64, 10)
    runs = []
    for new_lr in (None, 0.5):
        opt, params = build(fast_cls(name), groups, {"lr": 0.01})
        history = []
        for k, grads in enumerate(seq):
            if k == 5 and new_lr is not None:
                opt.param_groups[0]["lr"] = new_lr
            opt.step(grads)
            history.append([p.copy() for p in params])
        runs.append(history)
    for k in range(10):
        same = all(np.array_equal(a, b) for a, b in zip(runs[0][k], runs[1][k]))
        assert same == (k < 5), k


@pytest.mark.parametrize("name", NAMES)
def test_a_negative_group_lr_steps_as_torch(name, rng):
    """torch checks lr >= 0 in the constructor only: a group's lr below 0 (given in a group,
    set by hand, as a scheduler may leave it) is used by the step, as here; the constructor's
    lr below 0 is refused by both."""
    torch = pytest.importorskip("torch")
    shapes = [(5,), (3, 2), (4,)]
    arrays = random_arrays(rng, shapes, np.float64)
    groups = [(arrays[:2], {}), (arrays[2:], {"lr": -0.03})]
    fopt, fparams = build(fast_cls(name), groups, OPTIONS[name][-1])
    topt, tparams = build_torch(torch, name, groups, OPTIONS[name][-1])
    for k, grads in enumerate(grad_sequence(rng, shapes, np.float64, 12)):
        if k == 4:
            for opt in (fopt, topt):
                opt.param_groups[0]["lr"] = -0.02
        if k == 8:
            for opt in (fopt, topt):
                opt.param_groups[0]["lr"] = -1.5e-17
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    if name != "Lion":  # (the Lion written here in torch checks nothing)
        with pytest.raises(ValueError, match=r"^Invalid learning rate"):
            torch_class(torch, name)([torch.zeros(2, requires_grad=True)], lr=-0.1)
    with pytest.raises(ValueError, match=r"^Invalid lr: -0.1; expected a finite number >= 0 as the optimizer's lr"):
        fast_cls(name)([np.zeros(2)], lr=-0.1)


@dtypes
@pytest.mark.parametrize("name", NAMES)
def test_none_gradients_skip_parameters(name, dtype, rng):
    """A None gradient skips its parameter: no update, no state or step-count change, as in torch."""
    torch = pytest.importorskip("torch")
    kwargs = OPTIONS[name][-1]  # the option set with every option on
    shapes = [(4,), (3, 3), (), (2, 5)]

    def skip(k, i):
        return (i == 1 and k % 3 == 0) or (i == 2 and k < 10) or (i == 3 and k >= 25) or k == 7

    groups = [(random_arrays(rng, shapes, dtype), {})]
    fopt, fparams = build(fast_cls(name), groups, kwargs)
    ropt, rparams = build(ref_cls(name), groups, kwargs)
    topt, tparams = build_torch(torch, name, groups, kwargs)
    for k, grads in enumerate(grad_sequence(rng, shapes, dtype, 40, skip)):
        before = [p.copy() for p in fparams]
        fopt.step(grads)
        ropt.step(grads)
        torch_step(torch, topt, tparams, grads)
        for i, g in enumerate(grads):
            if g is None:
                assert np.array_equal(fparams[i], before[i]), f"step {k}: parameter {i} moved"
    assert_all_close(fparams, torch_numpy(tparams))
    assert_all_close(fparams, rparams)
    compare_state_with_torch(fopt, topt, tparams)
    if fast_cls(name).algorithm.counts_steps:
        steps = [fopt.state_dict()["state"][i]["step"] for i in range(len(shapes))]
        expected = [sum(not skip(k, i) for k in range(40)) for i in range(len(shapes))]
        assert steps == expected


@pytest.mark.parametrize("name", NAMES)
def test_all_none_step_changes_nothing(name, rng):
    kwargs = OPTIONS[name][-1]
    shapes = [(4,), (2, 2)]
    opt, params = build(fast_cls(name), [(random_arrays(rng, shapes, np.float64), {})], kwargs)
    for grads in grad_sequence(rng, shapes, np.float64, 3):
        opt.step(grads)
    before_params = [p.copy() for p in params]
    before = copy.deepcopy(opt.state_dict())
    opt.step([None, None])
    opt.step((None, None))
    assert all(np.array_equal(p, q) for p, q in zip(params, before_params))
    assert_state_dicts_equal(opt.state_dict(), before)


# -- fastgd.Parameter, step() and zero_grad() ------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_parameter_step_reads_grad(name, rng):
    """step() reads each Parameter's .grad; it gives the same result as step(grads) on arrays."""
    kwargs = OPTIONS[name][-1]
    shapes = [(3,), (2, 4), ()]
    arrays = random_arrays(rng, shapes, np.float32)
    datas = [a.copy() for a in arrays]
    holders = [fastgd.Parameter(d) for d in datas]
    opt = fast_cls(name)(holders, **kwargs)
    plain, pparams = build(fast_cls(name), [(arrays, {})], kwargs)
    assert all(a is b for a, b in zip(opt.param_groups[0]["params"], holders))
    for k, grads in enumerate(grad_sequence(rng, shapes, np.float32, 8, lambda k, i: k == 2 and i == 1)):
        for holder, g in zip(holders, grads):
            holder.grad = g
        opt.step()
        plain.step(grads)
        for holder, p in zip(holders, pparams):
            assert np.array_equal(holder.data, p)
    # the update is in place: .data is still the array the Parameter was made with
    assert all(h.data is d for h, d in zip(holders, datas))
    assert not np.array_equal(datas[0], arrays[0])


@pytest.mark.parametrize("name", NAMES)
def test_zero_grad_vs_torch(name, rng):
    """zero_grad() sets grads to None (the next step skips them); zero_grad(set_to_none=False)
    fills zeros in place (the next step is a step with a zero gradient), as in torch."""
    torch = pytest.importorskip("torch")
    kwargs = OPTIONS[name][-1]
    shapes = [(3,), (2, 4)]
    arrays = random_arrays(rng, shapes, np.float64)
    holders = [fastgd.Parameter(a.copy()) for a in arrays]
    opt = fast_cls(name)(holders, **kwargs)
    topt, tparams = build_torch(torch, name, [(arrays, {})], kwargs)
    for k, grads in enumerate(grad_sequence(rng, shapes, np.float64, 9)):
        for holder, t, g in zip(holders, tparams, grads):
            holder.grad = g.copy()
            t.grad = torch.from_numpy(g.copy())
        if k % 3 == 1:
            grad_arrays = [h.grad for h in holders]
            opt.zero_grad()
            topt.zero_grad()
            assert all(h.grad is None for h in holders)
            before = [h.data.copy() for h in holders]
            opt.step()
            assert all(np.array_equal(h.data, b) for h, b in zip(holders, before))
        elif k % 3 == 2:
            grad_arrays = [h.grad for h in holders]
            opt.zero_grad(set_to_none=False)
            topt.zero_grad(set_to_none=False)
            for h, g in zip(holders, grad_arrays):
                assert h.grad is g and not g.any()
            opt.step()
        else:
            opt.step()
        topt.step()
    assert_all_close([h.data for h in holders], torch_numpy(tparams))
    compare_state_with_torch(opt, topt, tparams)


def test_zero_grad_leaves_plain_arrays_and_none_grads_alone(rng):
    a = rng.standard_normal(3)
    holder = fastgd.Parameter(rng.standard_normal(2))
    opt = fastgd.SGD([a, holder], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert holder.grad is None
    opt.zero_grad()
    assert holder.grad is None


def test_parameter_from_list_and_repr():
    p = fastgd.Parameter([1.0, 2.0])
    assert isinstance(p.data, np.ndarray) and p.data.dtype == np.float64 and p.grad is None
    assert repr(p) == "Parameter([1., 2.], dtype=float64)" and str(p) == str(p.data) == "[1. 2.]"
    wide = fastgd.Parameter(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert repr(wide) == "Parameter([[0., 1., 2.],\n           [3., 4., 5.]], dtype=float32)"
    assert repr(fastgd.Parameter(np.float32(2.5))) == "Parameter(2.5, dtype=float32)"
    assert repr(fastgd.Parameter(np.zeros((0, 3)))) == "Parameter([], shape=(0, 3), dtype=float64)"  # as NumPy's
    opt = fastgd.SGD([p], lr=0.5)
    p.grad = np.array([2.0, -4.0])
    opt.step()
    assert np.array_equal(p.data, np.array([1.0 - 0.5 * 2.0, 2.0 + 0.5 * 4.0]))


# -- add_param_group ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_add_param_group_vs_torch(name, rng):
    torch = pytest.importorskip("torch")
    first, second = GROUP_OPTIONS[name]
    a = random_arrays(rng, [(3,), (2, 2)], np.float64)
    b = random_arrays(rng, [(4,), ()], np.float64)
    fopt, fparams = build(fast_cls(name), [(a, first)], GROUP_KWARGS[name])
    topt, tparams = build_torch(torch, name, [(a, first)], GROUP_KWARGS[name])
    for grads in grad_sequence(rng, [(3,), (2, 2)], np.float64, 5):
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    fnew = [x.copy() for x in b]
    tnew = [torch.tensor(x.copy(), requires_grad=True) for x in b]
    fopt.add_param_group({"params": fnew, **second})
    topt.add_param_group({"params": tnew, **second})
    fparams += fnew
    tparams += tnew
    assert len(fopt.param_groups) == 2
    for grads in grad_sequence(rng, [(3,), (2, 2), (4,), ()], np.float64, 10):
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    compare_state_with_torch(fopt, topt, tparams)
    assert [g["params"] for g in fopt.state_dict()["param_groups"]] == [[0, 1], [2, 3]]


@pytest.mark.parametrize("name", NAMES)
def test_named_parameters_as_torch(name, rng):
    """torch 2.13's named parameters ((name, parameter) pairs, as model.named_parameters()
    gives them): the same steps, the names in each group's "param_names" and the state dict,
    a state dict without names leaving the optimizer's, one with names replacing them, and
    the same refusals of groups with and without names mixed."""
    torch = pytest.importorskip("torch")
    first, second = GROUP_OPTIONS[name]
    a, b = random_arrays(rng, [(3,), (2, 2)], np.float64), random_arrays(rng, [(4,)], np.float64)
    fparams, tparams = [x.copy() for x in a + b], [torch.tensor(x.copy(), requires_grad=True) for x in a + b]
    cls, tcls = fast_cls(name), torch_class(torch, name)
    fopt = cls([("w", fparams[0]), ("layer.bias", fparams[1])], **{**GROUP_KWARGS[name], **first})
    topt = tcls([("w", tparams[0]), ("layer.bias", tparams[1])], foreach=False, **{**GROUP_KWARGS[name], **first})
    fopt.add_param_group({"params": [("extra", fparams[2])], **second})
    topt.add_param_group({"params": [("extra", tparams[2])], **second})
    for grads in grad_sequence(rng, [(3,), (2, 2), (4,)], np.float64, 5):
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    compare_state_with_torch(fopt, topt, tparams)
    names = [g["param_names"] for g in topt.state_dict()["param_groups"]]
    assert names == [["w", "layer.bias"], ["extra"]]
    assert [g["param_names"] for g in fopt.state_dict()["param_groups"]] == names
    assert [g["param_names"] for g in fopt.param_groups] == names
    held = [p for group in fopt.param_groups for p in group["params"]]  # the arrays, not the pairs
    assert len(held) == 3 and all(p is q for p, q in zip(held, fparams))
    unnamed = cls([{"params": [x.copy() for x in a], **first}, {"params": [b[0].copy()], **second}],
                  **GROUP_KWARGS[name])
    fopt.load_state_dict(unnamed.state_dict())
    assert [g["param_names"] for g in fopt.param_groups] == names  # kept, as torch keeps them
    renamed = fopt.state_dict()
    renamed["param_groups"][0]["param_names"] = ["u", "v"]
    fopt.load_state_dict(renamed)
    assert fopt.param_groups[0]["param_names"] == ["u", "v"]
    for make in (lambda c, p: c([("w", p[0]), p[1]], lr=0.1), lambda c, p: c([("w", p[0], 1)], lr=0.1)):
        with pytest.raises(ValueError, match="with names or all without|a .name, parameter. pair"):
            make(cls, [x.copy() for x in a])
    if name != "Lion":  # (torch's own messages; TorchLion is this suite's)
        with pytest.raises(ValueError, match="with/without names"):
            tcls([("w", tparams[0]), tparams[1]], lr=0.1)
    for opt, extra in ((fopt, np.zeros(2)), (topt, torch.zeros(2, requires_grad=True))):
        with pytest.raises(ValueError, match="with/without names|with names or all without"):
            opt.add_param_group({"params": [extra]})
    assert len(fopt.param_groups) == 2
    with pytest.raises(TypeError, match="with a str name; parameter 0's name is a numpy.ndarray"):
        cls([(a[0].copy(), a[1].copy())], lr=0.1)  # two parameters in a tuple, meant as a list
    pairs = iter([("late", np.zeros(2))])
    with pytest.raises(ValueError, match="unknown option 'bogus'"):
        fopt.add_param_group({"params": pairs, "bogus": 1})
    assert len(list(pairs)) == 1  # a refused group's generator is left as it was


# -- accepted gradient conversions ------------------------------------------------------


def unaligned(array):
    """A copy of `array` whose data starts one byte past an aligned address."""
    raw = np.zeros(array.nbytes + 1, dtype=np.uint8)
    out = raw[1:].view(array.dtype).reshape(array.shape)
    out[...] = array
    assert not out.flags.aligned
    return out


def converted_gradient_cases(rng, dtype):
    """(given grad, the grad it must be treated as) pairs."""
    other = np.float64 if dtype == np.float32 else np.float32
    base = rng.standard_normal((4, 6))
    wide = rng.standard_normal((4, 12)).astype(dtype)
    big = base.astype(np.dtype(dtype).newbyteorder(">"))
    return [
        ("other-dtype", base.astype(other), base.astype(other).astype(dtype)),
        ("non-contiguous", wide[:, ::2], np.ascontiguousarray(wide[:, ::2])),
        ("transposed", base.T.astype(dtype).T, np.ascontiguousarray(base.astype(dtype))),
        ("fortran", np.asfortranarray(base.astype(dtype)), np.ascontiguousarray(base.astype(dtype))),
        ("byte-swapped", big, big.astype(dtype)),
        ("unaligned", unaligned(base.astype(dtype)), base.astype(dtype)),
        ("other-dtype-non-contiguous", rng.standard_normal((4, 12)).astype(other)[:, 1::2], None),
    ]


@dtypes
@pytest.mark.parametrize("name", NAMES)
def test_converted_gradients_are_accepted(name, dtype, rng):
    """A grad of the other float dtype, non-contiguous or byte-swapped gives the same result
    as the converted grad."""
    kwargs = OPTIONS[name][-1]
    for label, grad, converted in converted_gradient_cases(rng, dtype):
        if converted is None:
            converted = np.ascontiguousarray(grad, dtype=dtype)
        grad_before = grad.copy()
        start = rng.standard_normal((4, 6)).astype(dtype)
        opt, (p,) = build(fast_cls(name), [([start], {})], kwargs)
        ref, (q,) = build(fast_cls(name), [([start], {})], kwargs)
        for _ in range(3):
            opt.step([grad])
            ref.step([converted])
        assert p.dtype == np.dtype(dtype)
        assert np.array_equal(p, q), label
        assert_state_dicts_equal(opt.state_dict(), ref.state_dict())
        assert np.array_equal(grad, grad_before), f"{label}: the gradient was modified"


@pytest.mark.parametrize("name", NAMES)
def test_step_with_unusual_options_and_gradients_to_convert(name, rng):
    """The compiled step hands back twice (gradients to convert, then options that are NumPy
    scalars to check in full) and still makes one step, bit for bit that of plain input;
    a 0-d parameter's converted gradient stays 0-d."""
    kwargs = {key: np.float64(value) if type(value) is float else value for key, value in OPTIONS[name][-1].items()}
    plain_kwargs = OPTIONS[name][-1]
    starts = [np.array(rng.standard_normal()), rng.standard_normal((3, 2))]
    opt, params = build(fast_cls(name), [([s.copy() for s in starts], {})], kwargs)
    ref, expected = build(fast_cls(name), [([s.copy() for s in starts], {})], plain_kwargs)
    for _ in range(3):
        grads = [np.array(rng.standard_normal()), rng.standard_normal((2, 3)).T]
        opt.step([grads[0].astype(np.float32), grads[1]])  # float32 for float64, non-contiguous
        ref.step([np.asarray(grads[0].astype(np.float32), dtype=np.float64), np.ascontiguousarray(grads[1])])
    assert params[0].shape == ()
    for p, q in zip(params, expected):
        assert np.array_equal(p, q)
    assert_state_dicts_equal(opt.state_dict(), ref.state_dict())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_numpy_scalar_gradients_of_0d_parameters(name, dtype, rng):
    """A NumPy float scalar (what np.sum returns) is a 0-d parameter's gradient, as the 0-d
    array of its value: through .grad, step(grads) and MultiSteps, bit for bit the step of
    that array; it is read, so the norms take it and clipping in place refuses it."""
    start = np.array(rng.standard_normal(), dtype=dtype)
    values = rng.standard_normal(4)
    holder = fastgd.Parameter(start.copy())
    opt, (param,) = build(fast_cls(name), [([start.copy()], {})], OPTIONS[name][-1])
    ref, (expected,) = build(fast_cls(name), [([start.copy()], {})], OPTIONS[name][-1])
    held = fast_cls(name)([holder], **OPTIONS[name][-1])
    for value in values:
        scalar = np.float64(value) * np.ones(3).sum() / 3  # a reduction's result: np.float64
        assert type(scalar) is np.float64
        opt.step([scalar])
        holder.grad = scalar
        held.step()
        ref.step([np.array(scalar)])
    assert np.array_equal(param, expected) and np.array_equal(holder.data, expected)
    accumulated, (summed,) = build(fast_cls(name), [([start.copy()], {})], OPTIONS[name][-1])
    every = fastgd.MultiSteps(accumulated, 2)
    assert [every.step([dtype(v)]) for v in values[:2]] == [False, True]
    ref2, (mean,) = build(fast_cls(name), [([start.copy()], {})], OPTIONS[name][-1])
    ref2.step([np.array(dtype(values[0]) + dtype(values[1]))], grad_scale=0.5)
    assert np.array_equal(summed, mean)
    assert fastgd.get_total_norm([np.float32(3), np.float64(-4)]) == 5.0
    assert fastgd.get_total_norm(np.float32(-2)) == 2.0
    for clip in (lambda g: fastgd.clip_grad_norm_(g, 1.0), lambda g: fastgd.clip_grad_value_(g, 1.0)):
        with pytest.raises(TypeError, match=r"parameters\[0\] is a NumPy scalar \(float64\), which clipping"):
            clip([np.float64(3.0)])


@pytest.mark.parametrize("name", NAMES)
def test_step_with_a_closure_as_torch(name, rng):
    """step(closure), positionally or by keyword: the closure is called once per step, before
    the update (it computes a loss and sets each .grad), and step returns its value, as in
    torch; the parameters follow torch's."""
    torch = pytest.importorskip("torch")
    kwargs = OPTIONS[name][-1]
    targets = random_arrays(rng, [(4,), (2, 3)], np.float64)
    starts = random_arrays(rng, [(4,), (2, 3)], np.float64)
    holders = [fastgd.Parameter(s.copy()) for s in starts]
    opt = fast_cls(name)(holders, **kwargs)
    topt, tparams = build_torch(torch, name, [(starts, {})], kwargs)
    calls = []

    def closure():  # loss sum((p - target)^2) / 2, gradient p - target
        calls.append([h.data.copy() for h in holders])
        for h, t in zip(holders, targets):
            h.grad = h.data - t
        return sum(float(np.sum((h.data - t) ** 2)) / 2 for h, t in zip(holders, targets))

    def torch_closure():
        topt.zero_grad()
        loss = sum(((p - torch.from_numpy(t)) ** 2).sum() / 2 for p, t in zip(tparams, targets))
        loss.backward()
        return loss

    for k in range(12):
        before = [h.data.copy() for h in holders]
        loss = opt.step(closure) if k % 2 else opt.step(closure=closure)
        tloss = topt.step(torch_closure)
        assert len(calls) == k + 1 and all(np.array_equal(c, b) for c, b in zip(calls[-1], before))
        assert loss == pytest.approx(float(tloss), rel=1e-9)
        assert_all_close([h.data for h in holders], torch_numpy(tparams))
    assert opt.step([np.zeros(4), np.zeros((2, 3))]) is None  # step(grads) returns nothing, as before


def test_step_closure_misuse_changes_nothing(rng):
    """A closure that raises, a closure with gradients, or a closure that is not a function:
    a clear error, and nothing changed (an optimizer of plain arrays needs step(grads))."""
    holder = fastgd.Parameter(rng.standard_normal(3))
    opt = fastgd.Adam([holder], lr=0.1)
    holder.grad = rng.standard_normal(3)
    opt.step()
    snap = copy.deepcopy(opt.state_dict()), holder.data.copy()

    def failing():
        holder.grad = np.ones(3)
        raise KeyError("in the closure")

    with pytest.raises(KeyError, match="in the closure"):
        opt.step(failing)
    with pytest.raises(ValueError, match="gradients or a closure"):
        opt.step([np.ones(3)], closure=lambda: 0.0)
    with pytest.raises(TypeError, match="closure must be a function"):
        opt.step(closure=[np.ones(3)])
    assert_state_dicts_equal(opt.state_dict(), snap[0])
    assert np.array_equal(holder.data, snap[1])
    plain = fastgd.SGD([rng.standard_normal(2)], lr=0.1)
    with pytest.raises(TypeError, match="plain array; pass step"):
        plain.step(lambda: 1.0)


def test_grads_may_be_a_tuple(rng):
    a, b = random_arrays(rng, [(3,), (2,)], np.float64)
    ga, gb = random_arrays(rng, [(3,), (2,)], np.float64)
    opt = fastgd.SGD([a, b], lr=0.25)
    a0, b0 = a.copy(), b.copy()
    opt.step((ga, gb))
    np.testing.assert_allclose(a, a0 - 0.25 * ga, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(b, b0 - 0.25 * gb, rtol=1e-15, atol=1e-15)


# -- state dicts ------------------------------------------------------------------------

ROUND_TRIP_CASES = [
    pytest.param(name, kwargs, id=f"{name}-{i}")
    for name in NAMES
    for i, kwargs in enumerate([OPTIONS[name][0], OPTIONS[name][1], OPTIONS[name][-1]])
]


@pytest.mark.parametrize("pickled", [False, True], ids=["dict", "pickled"])
@dtypes
@pytest.mark.parametrize(("name", "kwargs"), ROUND_TRIP_CASES)
def test_state_dict_round_trip_is_bit_identical(name, kwargs, dtype, pickled, rng):
    """Restoring a mid-run state dict into a fresh optimizer over copies of the parameters
    and continuing gives exactly the parameters of an optimizer that never stopped."""
    shapes = [(5, 3), (), (0, 3), (17,)]
    groups = [(random_arrays(rng, shapes, dtype), {})]
    opt, params = build(fast_cls(name), groups, kwargs)
    # parameter 3 gets its first gradient only after the snapshot
    seq = grad_sequence(rng, shapes, dtype, 20, lambda k, i: i == 3 and k < 12)
    for grads in seq[:10]:
        opt.step(grads)
    sd = opt.state_dict()
    if pickled:
        sd = pickle.loads(pickle.dumps(sd))
    copies = [p.copy() for p in params]
    # a fresh optimizer with other options: load_state_dict restores the saved ones
    fresh = fast_cls(name)(copies, lr=0.123)
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["lr"] == kwargs.get("lr", fast_cls(name)([np.zeros(1)]).defaults["lr"])
    assert_state_dicts_equal(fresh.state_dict(), opt.state_dict())
    for grads in seq[10:]:
        opt.step(grads)
        fresh.step(grads)
    for p, q in zip(params, copies):
        assert np.array_equal(p, q)
    assert_state_dicts_equal(fresh.state_dict(), opt.state_dict())


def test_add_param_group_that_fails_changes_nothing(monkeypatch):
    """If add_param_group fails at its last step (here: no memory for the new compiled plan),
    the optimizer is as it was: its steps go on over the old groups alone."""
    opt, twin = fastgd.Adam([np.ones(3)]), fastgd.Adam([np.ones(3)])
    for o in (opt, twin):
        o.step([np.ones(3)])

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(fastgd.optim.engine, "Plan", no_memory)
    with pytest.raises(MemoryError):
        opt.add_param_group({"params": [np.ones(2)]})
    monkeypatch.undo()
    assert len(opt.param_groups) == 1
    assert_state_dicts_equal(opt.state_dict(), twin.state_dict())
    for o in (opt, twin):
        o.step([np.full(3, 0.5)])
    assert np.array_equal(opt.param_groups[0]["params"][0], twin.param_groups[0]["params"][0])


def test_optimizer_subclass_with_its_own_update():
    """The base class holds groups, checks and state; a subclass without a compiled kernel
    supplies _update_all (here: plain gradient descent) or steps raise NotImplementedError."""

    class Plain(fastgd.Optimizer):
        algorithm = fastgd.optim.Algorithm(kernel=None, state=(), options=(
            fastgd.optim.Option("lr", "number"), fastgd.optim.Option("maximize", "flag")))

        def __init__(self, params, lr=0.1):
            super().__init__(params, {"lr": lr, "maximize": False})

        def _update_all(self, grads):
            self._check_all_groups()
            for group, (start, stop) in zip(self.param_groups, self._slices):
                for i in range(start, stop):
                    self._params[i] -= group["lr"] * grads[i]

    w = np.ones(3)
    opt = Plain([w], lr=0.5)
    opt.step([np.full(3, 2.0, dtype=np.float32)])  # gradients arrive converted to the parameter's dtype
    np.testing.assert_array_equal(w, np.zeros(3))
    with pytest.raises(ValueError, match=r"gradient 0 has shape \(1,\); expected \(3,\)"):
        opt.step([np.ones(1)])  # and checked: no silent broadcasting
    np.testing.assert_array_equal(w, np.zeros(3))
    with pytest.raises(ValueError, match="lr"):
        Plain([np.ones(2)], lr=-1.0)

    class Unfinished(fastgd.Optimizer):
        pass

    with pytest.raises(NotImplementedError, match="_update_all"):
        Unfinished([np.ones(2)], {"maximize": False}).step([np.ones(2)])


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_replaced_or_grown_by_hand(name, rng):
    """A step reads opt.param_groups as it is then: a list put in its place is honoured;
    a group appended by hand is taken as add_param_group takes it, and refused as it would be
    (here: its parameters are given twice), changing nothing."""
    params = [rng.standard_normal(5), rng.standard_normal(3)]
    fast, ref = fast_cls(name)([p.copy() for p in params]), ref_cls(name)([p.copy() for p in params])
    grads = [rng.standard_normal(5), rng.standard_normal(3)]
    for opt in (fast, ref):
        opt.step(grads)
        opt.param_groups = [dict(opt.param_groups[0], lr=0.5)]
        opt.step(grads)
    for p, q in zip(fast._params, ref._params):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    before = [p.copy() for p in fast._params]
    fast.param_groups.append(dict(fast.param_groups[0]))
    with pytest.raises(ValueError, match=r"parameter \d shares memory with parameter \d .* given once"):
        fast.step(grads)
    assert all(np.array_equal(p, q) for p, q in zip(fast._params, before))
    added, grads3 = rng.standard_normal(4), grads + [rng.standard_normal(4)]
    for opt in (fast, ref):  # the gradients of the parameters before the group was added: refused
        opt.param_groups[1:] = [dict(opt.param_groups[0], params=[added.copy()])]
        kept = [p.copy() for p in opt._params]
        with pytest.raises(ValueError, match="got 2 gradients for 3 parameters"):
            opt.step(grads)
        assert all(np.array_equal(p, q) for p, q in zip(opt._params, kept))
        opt.step(grads3)
    for p, q in zip(fast._params, ref._params):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_pickled_optimizer_continues_bit_identical(name, rng):
    """A pickled optimizer (params, state and groups together) steps on as the original does."""
    groups = two_groups(rng, name)
    opt, params = build(fast_cls(name), groups, {})
    grads = [[np.asarray(rng.standard_normal(p.shape), dtype=p.dtype) for p in params] for _ in range(8)]
    for step in grads[:4]:
        opt.step(step)
    twin = pickle.loads(pickle.dumps(opt))
    for step in grads[4:]:
        opt.step(step)
        twin.step(step)
    for p, q in zip(params, twin._params):
        assert np.array_equal(p, q) and p is not q
    assert_state_dicts_equal(twin.state_dict(), opt.state_dict())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("edit", [None, "reversed", "bare"])
def test_joblib_loaded_optimizer_keeps_its_state(name, edit, rng, tmp_path):
    """joblib writes each reference to an array apart: the arrays in the groups, and the
    optimizer's own references to them, came back as copies of one another, and the next step
    took the parameters for new ones (their state lost); so did it after the groups' parameters
    were reordered by hand (joined by position, not by identity), or a group's "params" set to
    a bare array (its rows taken for entries).  It steps on as a pickled one."""
    joblib = pytest.importorskip("joblib")
    opt, params = build(fast_cls(name), two_groups(rng, name), {})
    if edit == "bare":
        params = [*params, rng.standard_normal((3, 2))]
        opt.add_param_group({"params": [params[-1]]})
    grads = [[np.asarray(rng.standard_normal(p.shape), dtype=p.dtype) for p in params] for _ in range(6)]
    for step in grads[:3]:
        opt.step(step)
    if edit == "reversed":  # the second group's parameters reordered by hand (followed at the next step)
        opt.param_groups[1]["params"].reverse()
        grads = [step[:2] + step[2:][::-1] for step in grads]
    elif edit == "bare":  # a group's one parameter given bare, as a step takes it
        opt.param_groups[2]["params"] = params[-1]
    joblib.dump(opt, tmp_path / "opt.joblib")
    loaded, pickled = joblib.load(tmp_path / "opt.joblib"), pickle.loads(pickle.dumps(opt))
    for twin in (loaded, pickled):
        for step in grads[3:]:
            twin.step(step)
    assert_state_dicts_equal(loaded.state_dict(), pickled.state_dict())
    for p, q in zip(*([a for group in twin.param_groups for a in group["params"]] for twin in (loaded, pickled))):
        assert np.array_equal(p, q)


def test_an_optimizer_is_not_pickled_halfway_through_a_step():
    # the step holds the optimizer: pickling it from within (as from another thread) raises, as
    # state_dict() does, where it copied state half updated
    param = ReentrantParameter(np.zeros(3))
    opt = fastgd.Adam([param], lr=0.1)
    opt.step([np.ones(3)])
    caught = []

    def pickle_it():
        with pytest.raises(RuntimeError, match="pickling or copying: another call is changing this"):
            pickle.dumps(opt)
        caught.append(True)

    param.arm("data", pickle_it)
    opt.step([np.ones(3)])
    assert caught
    assert pickle.loads(pickle.dumps(opt)).state_dict()["state"][0]["step"] == 2  # after the step, it pickles


@pytest.mark.parametrize("make", [lambda p: fastgd.Adam([p]), lambda p: fastgd.EMA([p]),
                                  lambda p: fastgd.MultiSteps(fastgd.SGD([p], lr=0.1), 2)])
def test_a_shallow_copy_is_refused(make):
    """A shallow copy would share the arrays but not the counters (an SWA's average count, a
    MultiSteps' calls): its updates silently came out wrong."""
    obj = make(np.zeros(3))
    with pytest.raises(TypeError, match="copy.copy of this .* would share its arrays but not its counters"):
        copy.copy(obj)
    copy.deepcopy(obj)


def test_an_unpickled_optimizer_chooses_threads_for_this_machine(monkeypatch):
    # its automatic thread count was the pickling machine's (40 threads on a 2-core one)
    monkeypatch.setattr(optim, "PARALLEL_MIN_SIZE", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    data = pickle.dumps(fastgd.SGD([np.zeros(100)], lr=0.1))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert pickle.loads(data)._auto_threads == [2] == fastgd.SGD([np.zeros(100)], lr=0.1)._auto_threads


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_with_groups(name, rng):
    groups = two_groups(rng, name)
    opt, params = build(fast_cls(name), groups, {})
    shapes = [p.shape for p in params]

    def grads_for(params):
        return [np.asarray(rng.standard_normal(s), dtype=p.dtype) for s, p in zip(shapes, params)]

    for _ in range(7):
        opt.step(grads_for(params))
    sd = pickle.loads(pickle.dumps(opt.state_dict()))
    copies = [p.copy() for p in params]
    # a fresh optimizer over the same param-group layout, with default options
    fresh = fast_cls(name)([{"params": copies[:2]}, {"params": copies[2:]}])
    fresh.load_state_dict(sd)
    for key, value in groups[1][1].items():
        assert fresh.param_groups[1][key] == value
    for _ in range(7):
        grads = grads_for(params)
        opt.step(grads)
        fresh.step(grads)
    for p, q in zip(params, copies):
        assert np.array_equal(p, q)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_layout(name, rng):
    """torch's layout: {"state": {index: {...}}, "param_groups": [{...options, "params": [indices]}]}."""
    kwargs = OPTIONS[name][-1]
    shapes = [(3,), (2, 2), (4,)]
    opt, params = build(fast_cls(name), [(random_arrays(rng, shapes, np.float32), {})], kwargs)
    for grads in grad_sequence(rng, shapes, np.float32, 4, lambda k, i: i == 1 and k == 0):
        opt.step(grads)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert len(sd["param_groups"]) == 1
    group = sd["param_groups"][0]
    assert group["params"] == [0, 1, 2]
    assert {k: v for k, v in group.items() if k != "params"} == {**opt.defaults}
    assert set(sd["state"]) == {0, 1, 2}
    for i, entry in sd["state"].items():
        for key, value in entry.items():
            if key == "step":
                assert type(value) is int
                assert value == (3 if i == 1 else 4)
            elif key in [s.name for s in fast_cls(name).algorithm.scalar_state]:
                assert type(value) is float  # as torch's 0-d tensor, in Python
            else:
                assert key in STATE_NAMES[name]
                assert isinstance(value, np.ndarray)
                assert value.shape == params[i].shape and value.dtype == params[i].dtype
    assert ("step" in sd["state"][0]) == fast_cls(name).algorithm.counts_steps


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_is_a_snapshot(name, rng):
    """state_dict() returns copies; load_state_dict() copies what it is given."""
    kwargs = OPTIONS[name][-1]
    shapes = [(3,), (2, 2)]
    opt, params = build(fast_cls(name), [(random_arrays(rng, shapes, np.float64), {})], kwargs)
    seq = grad_sequence(rng, shapes, np.float64, 4)
    opt.step(seq[0])
    sd = opt.state_dict()
    saved = copy.deepcopy(sd)
    # stepping does not change an earlier snapshot
    opt.step(seq[1])
    assert_state_dicts_equal(sd, saved)
    # changing the snapshot does not change the optimizer
    current = copy.deepcopy(opt.state_dict())
    for entry in sd["state"].values():
        for value in entry.values():
            if isinstance(value, np.ndarray):
                value[...] = 12345.0
    sd["param_groups"][0]["lr"] = 99.0
    assert_state_dicts_equal(opt.state_dict(), current)
    # after loading, changing the loaded dict does not change the optimizer
    other, _ = build(fast_cls(name), [(random_arrays(rng, shapes, np.float64), {})], kwargs)
    loaded = copy.deepcopy(saved)
    other.load_state_dict(loaded)
    for entry in loaded["state"].values():
        for value in entry.values():
            if isinstance(value, np.ndarray):
                value[...] = -1.0
    assert_state_dicts_equal(other.state_dict(), saved)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Lion"])
def test_betas_given_as_a_list_are_not_shared(name):
    """betas given as a list: kept as a tuple, as torch's Adam keeps them (every group shares the
    defaults), and a group's own list is copied into a state dict; a saved state dict changed
    with the optimizer, and an edit of one group's betas changed them all."""
    params = [np.zeros(2), np.zeros(3)]
    opt = getattr(fastgd, name)([{"params": params[:1]}, {"params": params[1:]}], betas=[0.9, 0.99])
    assert opt.defaults["betas"] == (0.9, 0.99) and all(g["betas"] == (0.9, 0.99) for g in opt.param_groups)
    own = [0.8, 0.9]
    opt.param_groups[1]["betas"] = own
    saved = opt.state_dict()
    own[0] = 0.5
    assert saved["param_groups"][1]["betas"] == [0.8, 0.9]
    assert opt.param_groups[0]["betas"] == (0.9, 0.99)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_matches_torch_layout(name, rng):
    """The same entries, step counts and option keys as torch's state_dict after the same steps."""
    torch = pytest.importorskip("torch")
    kwargs = OPTIONS[name][-1]
    shapes = [(3,), (2, 2)]
    groups = [(random_arrays(rng, shapes, np.float64), {})]
    fopt, fparams = build(fast_cls(name), groups, kwargs)
    topt, tparams = build_torch(torch, name, groups, kwargs)
    for grads in grad_sequence(rng, shapes, np.float64, 5):
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    fsd, tsd = fopt.state_dict(), topt.state_dict()
    assert [g["params"] for g in fsd["param_groups"]] == [g["params"] for g in tsd["param_groups"]]
    assert set(fsd["param_groups"][0]) <= set(tsd["param_groups"][0])
    assert set(fsd["state"]) == set(tsd["state"])
    for i in fsd["state"]:
        tentry = {k: v for k, v in tsd["state"][i].items() if v is not None}
        assert set(fsd["state"][i]) == set(tentry)
        for key, value in tentry.items():
            if key == "step":
                assert fsd["state"][i][key] == int(value.item())
            elif key in [s.name for s in fast_cls(name).algorithm.scalar_state]:
                assert type(fsd["state"][i][key]) is float and fsd["state"][i][key] == value.item()
            else:
                assert_state_close({key: [fsd["state"][i][key]]}, {key: [value.numpy()]})


def test_state_dict_restores_float32_state_from_float64_dict(rng):
    """A state array of the other float dtype is converted to the parameter's dtype."""
    p = rng.standard_normal(4).astype(np.float32)
    opt = fastgd.Adam([p], lr=0.01)
    opt.step([rng.standard_normal(4).astype(np.float32)])
    sd = opt.state_dict()
    wide = copy.deepcopy(sd)
    for key in ("exp_avg", "exp_avg_sq"):
        wide["state"][0][key] = sd["state"][0][key].astype(np.float64)
    fresh = fastgd.Adam([p.copy()])
    fresh.load_state_dict(wide)
    assert_state_dicts_equal(fresh.state_dict(), sd)


# -- the description of an algorithm and the compiled engine ---------------------------------------


def _described(algorithm_changes):
    """A subclass of Adam whose description differs from Adam's by algorithm_changes."""
    return type("Described", (fastgd.Adam,), {"algorithm": fastgd.Adam.algorithm._replace(**algorithm_changes)})


@pytest.mark.parametrize(("changes", "pattern"), [
    (dict(kernel="lamb"), "no kernel named 'lamb'"),
    (dict(options=tuple(o for o in fastgd.Adam.algorithm.options if o.name != "eps")), "reads option 'eps'"),
    (dict(options=fastgd.Adam.algorithm.options + (fastgd.optim.Option("momentum", "number"),)),
     "does not read the described 'momentum'"),
    (dict(state=fastgd.Adam.algorithm.state[:2]), "keeps the state"),
    (dict(scalar_state=(fastgd.optim.ScalarState("mu_product", 1.0),)), r"keeps the numbers \(\) a parameter"),
])
def test_engine_refuses_a_description_that_does_not_fit_its_kernel(changes, pattern):
    """Dispatch is by name and checked: an unknown kernel, or a description whose options or
    state are not those the kernel reads, is an error when the optimizer is made, never
    another algorithm's update."""
    cls = _described(changes)
    adam_defaults = fastgd.Adam([np.zeros(1)]).defaults
    options = {o.name: adam_defaults.get(o.name, 0.5) for o in cls.algorithm.options}  # all it describes
    with pytest.raises(ValueError, match=pattern):
        fastgd.Optimizer.__init__(cls.__new__(cls), [np.zeros(3)], options)


@pytest.mark.parametrize("name", NAMES)
def test_every_kernel_reads_what_its_optimizer_describes(name):
    """The kernel's option fields and state names are the description's, by name; the numbers
    kept per parameter, by name and in order."""
    algorithm = fast_cls(name).algorithm
    fields, state, scalar_state, step_bytes = fastgd.optim.engine.kernel_interface(algorithm.kernel)
    described = [field for option in algorithm.options for field in (option.fields or (option.name,))]
    assert sorted(fields) == sorted(field for field in described if field is not None)
    assert sorted(state) == sorted(s.name for s in algorithm.state)
    assert scalar_state == tuple(s.name for s in algorithm.scalar_state)
    assert 0 <= step_bytes <= 4 * 8  # (MAX_STEP_SCALARS doubles)


def test_engine_refuses_scalar_state_in_another_order():
    """The numbers kept per parameter are read by position: the same names in another order (which
    state_dict would save under each other's names) are refused, as a missing one is."""
    kept = (fastgd.optim.ScalarState("mu_product", 1.0), fastgd.optim.ScalarState("spare", 0.0))
    for scalar_state in (kept, kept[::-1], ()):
        cls = type("Described", (fastgd.NAdam,), {"algorithm": fastgd.NAdam.algorithm._replace(
            scalar_state=scalar_state)})
        with pytest.raises(ValueError, match=r"keeps the numbers \('mu_product',\) a parameter, in this order"):
            cls([np.zeros(3)])


class _Halving(fastgd.Optimizer):
    """p -= lr * factor * g, the factor halving at each of the parameter's steps: a number kept
    per parameter (a ScalarState, as NAdam's mu_product), here updated in Python."""

    algorithm = fastgd.optim.Algorithm(
        kernel=None, options=(fastgd.optim.Option("lr", "number"), fastgd.optim.Option("maximize", "flag")),
        state=(), scalar_state=(fastgd.optim.ScalarState("factor", 1.0),))

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr, "maximize": False})

    def _update_all(self, grads):
        for group, (start, stop) in zip(self.param_groups, self._slices):
            for i in range(start, stop):
                if grads[i] is not None:
                    self._steps[i] += 1
                    self._params[i] -= group["lr"] * self._scalars[i, 0] * grads[i]
                    self._scalars[i, 0] *= 0.5


def test_a_step_of_an_update_of_its_own_refused_for_its_count_keeps_the_state_of_a_parameter_taken_out():
    # (no compiled plan) the step followed the groups, dropping the state of the parameter taken
    # out by hand, and then counted the gradients and raised
    opt = _Halving([np.ones(3), np.ones(2)])
    for _ in range(3):
        opt.step([np.ones(3), np.ones(2)])
    before = opt.state_dict()
    taken = opt.param_groups[0]["params"].pop()
    with pytest.raises(ValueError, match=r"step\(\) got 2 gradients for 1 parameters"):
        opt.step([np.ones(3), np.ones(2)])
    opt.param_groups[0]["params"].append(taken)
    assert opt.state_dict() == before


def test_scalar_state_is_kept_saved_and_loaded():
    """A ScalarState is kept per parameter: saved by state_dict once the parameter has stepped
    (as a float, as torch saves mu_product), loaded back (also as torch's 0-d tensor converted
    to an array), carried with its parameter when param_groups are edited, and checked on load."""
    params = [np.ones(3), np.ones(2)]
    opt = _Halving(params)
    opt.step([np.ones(3), None])
    opt.step([np.ones(3), None])
    saved = opt.state_dict()["state"]
    assert saved == {0: {"step": 2, "factor": 0.25}}
    np.testing.assert_allclose(params[0], 1 - 0.1 * (1 + 0.5))

    twin_params = [p.copy() for p in params]
    twin = _Halving(twin_params)
    torch_like = {"state": {0: {"step": np.array(2.0, np.float32), "factor": np.array(0.25)}},
                  "param_groups": opt.state_dict()["param_groups"]}
    twin.load_state_dict(torch_like)
    for o, ps in ((opt, params), (twin, twin_params)):
        o.step([np.ones(3), np.ones(2)])
    assert all(np.array_equal(p, q) for p, q in zip(params, twin_params))
    assert twin.state_dict() == opt.state_dict() == {
        "state": {0: {"step": 3, "factor": 0.125}, 1: {"step": 1, "factor": 0.5}},
        "param_groups": opt.state_dict()["param_groups"]}

    opt.param_groups[0]["params"] = [params[1], params[0]]  # reordered: each keeps its own
    assert opt.state_dict()["state"] == {0: {"step": 1, "factor": 0.5}, 1: {"step": 3, "factor": 0.125}}

    before = opt.state_dict()
    for bad, error in [(math.nan, ValueError), ("0.5", TypeError), (True, TypeError), (np.array([0.5]), TypeError)]:
        broken = copy.deepcopy(before)
        broken["state"][0]["factor"] = bad
        with pytest.raises(error, match="factor must be a finite number"):
            opt.load_state_dict(broken)
        assert opt.state_dict() == before


# -- param_groups edited by hand, sets, the caller's group dicts (audit of session 7) ----------------


def test_zero_grad_and_add_param_group_follow_groups_edited_by_hand():
    torch = pytest.importorskip("torch")
    a, b = fastgd.Parameter(np.ones(2), np.ones(2)), fastgd.Parameter(np.ones(2), np.ones(2))
    opt = fastgd.SGD([a], lr=0.1)
    ta, tb = (torch.ones(2, dtype=torch.float64, requires_grad=True) for _ in range(2))
    ta.grad, tb.grad = torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    topt = torch.optim.SGD([ta], lr=0.1)
    opt.param_groups[0]["params"] = [b]
    topt.param_groups[0]["params"] = [tb]
    opt.zero_grad()
    topt.zero_grad()
    assert (a.grad is None, b.grad is None) == (ta.grad is None, tb.grad is None) == (False, True)
    opt.add_param_group({"params": [a]})  # a left the optimizer with the edit: it may join again
    topt.add_param_group({"params": [ta]})
    with pytest.raises(ValueError, match="shares memory"):
        opt.add_param_group({"params": [b]})  # b is listed already
    assert [len(g["params"]) for g in opt.param_groups] == [1, 1]
    b.grad = np.full(2, 2.0)
    tb.grad = torch.full((2,), 2.0, dtype=torch.float64)
    opt.step()
    topt.step()
    np.testing.assert_allclose([a.data, b.data], [ta.detach().numpy(), tb.detach().numpy()], rtol=1e-15)


def test_param_groups_of_dict_and_list_subclasses_step_as_torch():
    # an OrderedDict group was accepted, then every step failed ("the compiled step refused
    # checked input"); a list subclass as param_groups made each step raise Cython's TypeError
    from collections import OrderedDict

    class Groups(list):
        pass

    torch = pytest.importorskip("torch")
    start = np.arange(6.0)
    grads = [np.full(3, 1.0), np.full(3, -2.0)]
    params = [fastgd.Parameter(start[:3].copy()), fastgd.Parameter(start[3:].copy())]
    tparams = [torch.tensor(start[:3], requires_grad=True), torch.tensor(start[3:], requires_grad=True)]
    opt = fastgd.Adam([OrderedDict(params=[params[0]], lr=0.1)], lr=0.01)
    topt = torch.optim.Adam([OrderedDict(params=[tparams[0]], lr=0.1)], lr=0.01)
    opt.add_param_group(OrderedDict(params=[params[1]]))
    topt.add_param_group(OrderedDict(params=[tparams[1]]))
    for step in range(3):
        if step == 1:
            opt.param_groups = Groups(opt.param_groups)
            topt.param_groups = Groups(topt.param_groups)
        for p, t, g in zip(params, tparams, grads):
            p.grad, t.grad = g, torch.tensor(g)
        opt.step()
        topt.step()
    assert type(opt.param_groups) is Groups  # the user's object, as torch keeps it
    np.testing.assert_allclose([p.data for p in params], [t.detach().numpy() for t in tparams], rtol=1e-14)


def test_zero_grad_without_none_checks_every_grad_first():
    p = fastgd.Parameter(np.ones(4), np.ones(4))
    read_only = np.ones(3)
    read_only.flags.writeable = False
    q = fastgd.Parameter(np.ones(3), read_only)
    opt = fastgd.SGD([p, q], lr=0.1)
    with pytest.raises(ValueError, match=r"parameter 1's \.grad is read-only"):
        opt.zero_grad(set_to_none=False)
    object.__setattr__(q, "grad", [1.0, 2.0, 3.0])  # (refused by q.grad = ...; a subclass or an old pickle may set it)
    with pytest.raises(TypeError, match=r"parameter 1's \.grad is a list; expected a NumPy array"):
        opt.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [1.0] * 4  # nothing changed by the failed calls
    opt.zero_grad()  # to None: any .grad goes
    assert p.grad is None and q.grad is None


def test_sets_of_parameters_are_refused_as_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="ordered collections"):
        torch.optim.SGD([{"params": {torch.zeros(2, requires_grad=True)}}], lr=0.1)
    a, b = fastgd.Parameter(np.ones(2)), fastgd.Parameter(np.ones(2))
    for params in ([{"params": {a, b}}], {a, b}, [{"params": frozenset({a})}]):
        with pytest.raises(TypeError, match="ordered collection"):
            fastgd.SGD(params, lr=0.1)
    opt = fastgd.SGD([a], lr=0.1)
    with pytest.raises(TypeError, match="ordered collection"):
        opt.add_param_group({"params": {b}})
    assert len(opt.param_groups) == 1


def test_the_callers_group_dicts_are_the_groups_as_torch():
    torch = pytest.importorskip("torch")
    group, tgroup = {"params": [np.zeros(2)], "lr": 0.1}, {"params": [torch.zeros(2, requires_grad=True)], "lr": 0.1}
    opt, topt = fastgd.SGD([group], momentum=0.9), torch.optim.SGD([tgroup], momentum=0.9)
    assert (opt.param_groups[0] is group) == (topt.param_groups[0] is tgroup) == True  # noqa: E712
    assert group["momentum"] == tgroup["momentum"] == 0.9  # the defaults filled in
    group["lr"] = 0.5  # a manual schedule through the caller's dict reaches the step
    opt.step([np.ones(2)])
    np.testing.assert_allclose(group["params"][0], -0.5)
    added = {"params": [np.zeros(3)]}
    opt.add_param_group(added)
    assert opt.param_groups[1] is added and added["lr"] == opt.defaults["lr"]


@pytest.mark.parametrize("option", ["lr", "weight_decay", "eps"])
def test_an_option_too_large_for_a_double_is_refused(option):
    with pytest.raises(ValueError, match=f"{option} must be a number a double holds"):
        fastgd.Adam([np.zeros(2)], **{option: 10**400})
    opt = fastgd.Adam([np.zeros(2)])
    opt.param_groups[0][option] = 10**400
    with pytest.raises(ValueError, match=f"{option} must be a number a double holds"):
        opt.step([np.ones(2)])


def test_a_constructor_that_fails_leaves_the_callers_dicts_as_they_were():
    first, second = {"params": (np.zeros(2),)}, {"params": [np.zeros(3)], "momentum": -1.0}
    before = [dict(first), dict(second)]
    with pytest.raises(ValueError, match="momentum"):
        fastgd.SGD([first, second], lr=0.1)
    assert [first, second] == before


def test_zero_grad_clears_whatever_the_groups_list_as_torch():
    torch = pytest.importorskip("torch")
    a = fastgd.Parameter(np.ones(2), np.ones(2))
    ta = torch.ones(2, requires_grad=True)
    ta.grad = torch.ones(2)
    opt, topt = fastgd.SGD([a], lr=0.1), torch.optim.SGD([ta], lr=0.1)
    opt.param_groups[0]["params"] = [a, a]  # listed twice by hand: a step would refuse it, zero_grad clears
    topt.param_groups[0]["params"] = [ta, ta]
    opt.zero_grad()
    topt.zero_grad()
    assert a.grad is None and ta.grad is None


def _torch_beside(name, dtype, options, grads, state=None):
    """Steps of fastgd's and torch's `name` (foreach=False) on one-element parameters from 1.0 over
    `grads`, after loading `state` (entries of one number) into both; returns both parameters."""
    torch = pytest.importorskip("torch")
    ours, param = fast_cls(name)([np.ones(2, dtype)], **options), torch.ones(2, dtype=getattr(torch, np.dtype(dtype).name))
    theirs = getattr(torch.optim, name)([param], foreach=False, **options)
    if state is not None:
        param.grad = torch.zeros_like(param)
        theirs.step()  # its state made, then replaced
        saved = theirs.state_dict()
        saved["state"][0].update({key: torch.full_like(param, value) for key, value in state.items()})
        theirs.load_state_dict(saved)
        ours.load_state_dict({"state": {0: {key: value.numpy().copy() if value.ndim else int(value.item())
                                            for key, value in saved["state"][0].items()}},
                              "param_groups": saved["param_groups"]})
    for g in grads:
        ours.step([np.array(g, dtype)])
        param.grad = torch.tensor(g, dtype=param.dtype)
        theirs.step()
    return ours.param_groups[0]["params"][0], param.detach().numpy()


@pytest.mark.parametrize(("name", "options", "grads"), [
    ("Adamax", dict(lr=1e-4, betas=(0.5, 0.0), eps=1e-12), [[-1e28, 1.0], [0.0, 1.0]]),
    ("Adam", dict(lr=1e-4, betas=(0.5, 0.0), eps=1e-30), [[1e12, 1.0], [0.0, 1.0]]),
    ("AdamW", dict(lr=1e-4, betas=(0.5, 0.0), eps=1e-30), [[1e12, 1.0], [0.0, 1.0]]),
    # (alpha=1 keeps square_avg at 0: the step divides by eps)
    ("RMSprop", dict(lr=1e-3, alpha=1.0, eps=1e-12), [[1e27, 1.0], [0.0, 1.0]]),
    ("RMSprop", dict(lr=1e-3, alpha=1.0, eps=1e-12, centered=True), [[1e27, 1.0], [0.0, 1.0]]),
])
def test_a_small_step_over_a_quotient_beyond_float32_stays_finite_as_torch(name, options, grads):
    # m / denom beyond float32's largest, lr * m / denom within it: fastgd divided first and wrote
    # inf where torch's addcdiv, which multiplies by the step size first, steps to a finite value
    ours, theirs = _torch_beside(name, np.float32, options, grads)
    assert np.isfinite(theirs).all()
    np.testing.assert_allclose(ours, theirs, rtol=4 * np.finfo(np.float32).eps)


@pytest.mark.parametrize(("dtype", "huge"), [(np.float32, 1e19), (np.float32, 3e19), (np.float64, 1e154)])
@pytest.mark.parametrize("eps", [1e-6, 1e-10])
def test_adadelta_at_huge_gradients_as_torch(dtype, huge, eps):
    # fastgd took the root of the quotient (acc_delta + eps) / (square_avg + eps), which leaves the
    # dtype's range before torch's two roots do: a step 0.25-0.45% off, 0, or NaN
    ours, theirs = _torch_beside("Adadelta", dtype, dict(lr=1.0, eps=eps), [[huge, 1.0]] * 2)
    np.testing.assert_allclose(ours, theirs, rtol=4 * np.finfo(dtype).eps)
    ours, theirs = _torch_beside("Adadelta", dtype, dict(lr=1.0, eps=eps), [[0.0, 1.0]],
                                 state={"square_avg": 0.0, "acc_delta": 1e30})
    np.testing.assert_array_equal(ours, theirs)  # the quotient inf times a gradient of 0: NaN


@pytest.mark.parametrize(("dtype", "huge"), [(np.float32, 1e22), (np.float64, 1e157)])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_centered_rmsprop_whose_square_average_overflows_as_torch(dtype, huge, momentum):
    # square_avg and grad_avg ** 2 both inf: inf - inf made the parameter NaN for good, where torch's
    # fused multiply-add keeps the variance inf and steps 0
    ours, theirs = _torch_beside("RMSprop", dtype, dict(lr=0.1, centered=True, momentum=momentum),
                                 [[huge, 1.0], [1.0, 1.0], [1.0, 1.0]])
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, theirs, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grad_avg", [np.inf, -np.inf, np.nan])
def test_centered_rmsprop_with_an_infinite_square_average_and_grad_average_is_nan_as_torch(dtype, grad_avg):
    # the overflowed square_avg kept the variance inf whatever grad_avg held: an inf or NaN one
    # left the parameter finite and frozen (step 0), where torch's inf - inf is NaN
    options = dict(lr=0.1, centered=True)
    state = {"square_avg": np.inf, "grad_avg": grad_avg}
    ours, theirs = _torch_beside("RMSprop", dtype, options, [[1.0, 1.0]], state=state)
    assert np.isnan(ours).all()
    np.testing.assert_array_equal(ours, theirs)
    reference = fastgd.reference.RMSprop([np.ones(2, dtype)], **options)
    reference.step([np.zeros(2, dtype)])  # (its state made, then replaced)
    saved = reference.state_dict()
    saved["state"][0].update({key: np.full(2, value, dtype) for key, value in state.items()})
    reference.load_state_dict(saved)
    with np.errstate(invalid="ignore"):
        reference.step([np.ones(2, dtype)])
    np.testing.assert_array_equal(reference.param_groups[0]["params"][0], ours)


@pytest.mark.parametrize("edit", ["item-replaced", "appended", "reversed"])
def test_step_reading_each_grad_follows_a_params_list_edited_in_place(edit):
    """step() reads the .grad of the Parameters the groups list now (the compiled step reads
    them once it has found the list unchanged): after an edit in place, as torch."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    starts = [rng.standard_normal(4), rng.standard_normal(3), rng.standard_normal(4)]
    fast = [fastgd.Parameter(s.copy()) for s in starts]
    tens = [torch.tensor(s.copy(), requires_grad=True) for s in starts]
    opt, topt = fastgd.Adam(fast[:2], lr=0.1), torch.optim.Adam(tens[:2], lr=0.1)

    def step_both():
        for p, t in zip(fast, tens):
            g = rng.standard_normal(p.data.shape)
            p.grad, t.grad = g, torch.tensor(g.copy())
        opt.step()
        topt.step()

    for _ in range(2):
        step_both()
    for params, every in ((opt.param_groups[0]["params"], fast), (topt.param_groups[0]["params"], tens)):
        if edit == "item-replaced":
            params[0] = every[2]
        elif edit == "appended":
            params.append(every[2])
        else:
            params.reverse()
    for _ in range(2):
        step_both()
    for p, t in zip(fast, tens):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-15)
    assert not np.array_equal(fast[2].data, starts[2]) or edit == "reversed"


class _Reordering(fastgd.Parameter):
    """A Parameter whose .grad, read once `group` is set, reverses that group's list (once, as
    another thread might): the step's gradients are read in one order and the parameters then
    listed in another."""
    __slots__ = ("group", "_grad")

    @property
    def grad(self):
        if getattr(self, "group", None) is not None:
            self.group["params"].reverse()
            self.group = None
        return self._grad

    @grad.setter
    def grad(self, value):
        self._grad = value


@pytest.mark.parametrize("how", ["step", "clipped_step", "MultiSteps"])
def test_parameters_reordered_while_their_gradients_are_read_step_with_their_own(how):
    # each stepped with the other's gradient; MultiSteps, whose sums are by place, refuses
    first, second = _Reordering(np.zeros(3)), _Reordering(np.zeros(3))
    first.grad, second.grad = np.ones(3), -np.ones(3)
    opt = fastgd.SGD([first, second], lr=1.0)
    multi = fastgd.MultiSteps(opt, 1)
    first.group = opt.param_groups[0]
    if how == "MultiSteps":
        with pytest.raises(ValueError, match="same in another order, than when this MultiSteps was made"):
            multi.step()
        assert not first.data.any() and not second.data.any()
        return
    opt.step() if how == "step" else fastgd.clipped_step(opt, 1e9)
    np.testing.assert_array_equal(first.data, -1.0)
    np.testing.assert_array_equal(second.data, 1.0)


def test_a_step_refused_for_a_plain_array_in_the_groups_keeps_every_state():
    # step() reads each .grad; a group listing a Parameter's array (by mistake) is refused, and
    # the refused step had already followed the groups, dropping the Parameter's state
    def run(with_refused_step):
        p, q = fastgd.Parameter(np.linspace(-1, 1, 7)), fastgd.Parameter(np.ones(3))
        opt = fastgd.Adam([p, q], lr=0.1)
        for k in range(2):
            p.grad, q.grad = np.full(7, 0.3 + k), np.full(3, -0.2)
            opt.step()
        if with_refused_step:
            opt.param_groups[0]["params"][0] = p.data
            with pytest.raises(TypeError, match="parameter 0 is a plain array"):
                opt.step()
            opt.param_groups[0]["params"][0] = p
        opt.step()
        return p.data, opt.state_dict()["state"][0]["step"]

    refused, plain = run(True), run(False)
    np.testing.assert_array_equal(refused[0], plain[0])
    assert refused[1] == plain[1] == 3


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RAdam", "NAdam", "Adamax"])
def test_an_inf_gradient_with_beta1_below_half_is_nan_as_torch_in_the_reference_and_fastgd(name):
    # torch's lerp_ computes from the end for weights of 0.5 or more (1 - beta1 here): an inf
    # gradient gives inf - inf = NaN in exp_avg; the NumPy reference's a + w (b - a) gave inf, and
    # RAdam's unrectified first steps (no division by exp_avg_sq) then moved the weight to -inf
    from fastgd import reference
    torch = pytest.importorskip("torch")
    tensor = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    theirs = getattr(torch.optim, name)([tensor], betas=(0.474, 0.893))
    for grad in ([0.5, 0.25], [np.inf, 1.0]):
        tensor.grad = torch.tensor(grad, dtype=torch.float64)
        theirs.step()
    for library in (reference, fastgd):
        param = np.array([1.0, 2.0])
        ours = getattr(library, name)([param], betas=(0.474, 0.893))
        with np.errstate(invalid="ignore"):
            for grad in ([0.5, 0.25], [np.inf, 1.0]):
                ours.step([np.array(grad)])
        # NaN where torch's is (assert_allclose's equal_nan), the rest to rounding
        np.testing.assert_allclose(param, tensor.detach().numpy(), rtol=1e-12, err_msg=library.__name__)
        np.testing.assert_allclose(ours.state_dict()["state"][0]["exp_avg"],
                                   theirs.state_dict()["state"][0]["exp_avg"].numpy(), rtol=1e-12,
                                   err_msg=library.__name__)
