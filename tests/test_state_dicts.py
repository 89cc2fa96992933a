"""State dicts travel between fastgd and torch.optim (torch 2.13, for-loop implementation).

torch's state dict, its tensors turned into arrays (its "step" a 0-d float32 array),
loads into fastgd, and fastgd's, its arrays turned into tensors, loads into torch;
either way both optimizers then go on alike.  Param-group keys fastgd does not use
(torch's foreach, fused, capturable, differentiable; a scheduler's initial_lr) are
kept.  Adam and AdamW carry torch's decoupled_weight_decay option.  A step count
must be a whole number from 0 to 2**53 (exact in a double); anything else is
refused and changes nothing.
"""
import copy
import math
import pickle
import threading
import warnings

import numpy as np
import pytest

import fastgd
from conftest import (
    DTYPES,
    NAMES,
    OPTIONS,
    SHAPES,
    assert_all_close,
    assert_state_dicts_equal,
    assert_unchanged,
    build,
    build_torch,
    compare_state_with_torch,
    fast_cls,
    grad_sequence,
    random_arrays,
    snapshot,
    torch_numpy,
    torch_step,
)


def dtype_id(dtype):
    return np.dtype(dtype).name


dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)

#: the first option set of each algorithm (its defaults, or nearly), the second and the one with every option;
#: and Adam with torch's decoupled weight decay (AdamW's update)
TRAVEL_CASES = [
    pytest.param(name, kwargs, id=f"{name}-{i}")
    for name in NAMES
    for i, kwargs in zip((0, 1, len(OPTIONS[name]) - 1), (OPTIONS[name][0], OPTIONS[name][1], OPTIONS[name][-1]))
] + [pytest.param("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True), id="Adam-decoupled")]

#: steps before the state dict is taken (0: a state dict saved before any step), and after
FIRST_STEPS = (0, 6)
MORE_STEPS = 8


def skip(k, i):
    """Parameter 3 gets its first gradient only after the state dict is taken (it has no state in it)."""
    return i == 3 and k < FIRST_STEPS[-1]


def to_numpy(value):
    """torch's state dict as NumPy: every tensor becomes an array (torch's 0-d float32 "step" a 0-d
    float32 array), through dicts, lists and tuples; everything else as it is."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().numpy().copy()
    if isinstance(value, dict):
        return {key: to_numpy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_numpy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(to_numpy(item) for item in value)
    return value


def to_torch(torch, value):
    """fastgd's state dict for torch: every array becomes a tensor; ints (fastgd's "step") stay ints."""
    if isinstance(value, np.ndarray):
        return torch.tensor(value)
    if isinstance(value, dict):
        return {key: to_torch(torch, item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_torch(torch, item) for item in value]
    if isinstance(value, tuple):
        return tuple(to_torch(torch, item) for item in value)
    return value


#: options unlike the saved ones: loading a state dict must replace them
OTHER_KWARGS = {"lr": 0.123}


def options_of(group):
    return {key: (tuple(value) if key == "betas" else value) for key, value in group.items() if key != "params"}


# -- torch -> fastgd -------------------------------------------------------------------------


@pytest.mark.parametrize("first", FIRST_STEPS, ids=lambda k: f"after{k}")
@dtypes
@pytest.mark.parametrize(("name", "kwargs"), TRAVEL_CASES)
def test_torch_state_dict_loads_into_fastgd(name, kwargs, dtype, first, rng):
    """torch steps, its state dict (as NumPy) loads into fastgd, which takes torch's parameter
    values and goes on as torch does; torch's option keys that fastgd does not use are kept."""
    torch = pytest.importorskip("torch")
    groups = [(random_arrays(rng, SHAPES, dtype), {})]
    topt, tparams = build_torch(torch, name, groups, kwargs)
    seq = grad_sequence(rng, SHAPES, dtype, first + MORE_STEPS, skip)
    for grads in seq[:first]:
        torch_step(torch, topt, tparams, grads)
    saved = to_numpy(topt.state_dict())
    steps = [entry["step"] for entry in saved["state"].values() if "step" in entry]
    assert all(isinstance(s, np.ndarray) and s.shape == () and s.dtype == np.float32 for s in steps)
    extra = sorted(set(saved["param_groups"][0]) - set(fast_cls(name)([np.zeros(1)]).defaults) - {"params"})
    assert {"foreach", "differentiable"} <= set(extra)  # torch's keys fastgd does not use

    fopt, fparams = build(fast_cls(name), groups, OTHER_KWARGS)
    fopt.load_state_dict(saved)
    for p, value in zip(fparams, torch_numpy(tparams)):
        p[...] = value
    assert options_of(fopt.param_groups[0]) == options_of(topt.param_groups[0])
    for key in extra:
        assert fopt.param_groups[0][key] == topt.param_groups[0][key], key
    compare_state_with_torch(fopt, topt, tparams)

    for grads in seq[first:]:
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    compare_state_with_torch(fopt, topt, tparams)
    for key in extra:
        assert fopt.param_groups[0][key] == topt.param_groups[0][key], key


@pytest.mark.parametrize("name", NAMES)
def test_a_negative_lr_in_a_state_dict_loads_as_torch(name, rng):
    """A group's lr below 0 (a schedule to 0 may end a rounding below it) is saved, and loaded from
    fastgd's state dict and from torch's, both then stepping as torch with that lr."""
    torch = pytest.importorskip("torch")
    groups = [(random_arrays(rng, SHAPES, np.float64), {})]
    topt, tparams = build_torch(torch, name, groups, OPTIONS[name][-1])
    seq = grad_sequence(rng, SHAPES, np.float64, 8)
    for grads in seq[:4]:
        torch_step(torch, topt, tparams, grads)
    topt.param_groups[0]["lr"] = -0.01
    saved = to_numpy(topt.state_dict())
    fopt, fparams = build(fast_cls(name), groups, OTHER_KWARGS)
    fopt.load_state_dict(saved)
    twin, twin_params = build(fast_cls(name), groups, OTHER_KWARGS)
    twin.load_state_dict(fopt.state_dict())
    for p, q, value in zip(fparams, twin_params, torch_numpy(tparams)):
        p[...] = value
        q[...] = value
    assert fopt.param_groups[0]["lr"] == twin.param_groups[0]["lr"] == -0.01
    for grads in seq[4:]:
        fopt.step(grads)
        twin.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    for p, q in zip(fparams, twin_params):
        assert np.array_equal(p, q)


@pytest.mark.parametrize("name", NAMES)
def test_a_group_copied_after_loading_torchs_state_is_added_as_torch(name, rng):
    """After torch's state dict is loaded, a group copied from the optimizer's own (with torch's
    foreach, differentiable, ... kept) is added, as torch adds it, and steps as torch's; a key
    that neither an option nor a group holds is still refused, changing nothing."""
    torch = pytest.importorskip("torch")
    groups = [(random_arrays(rng, SHAPES, np.float64), {})]
    topt, tparams = build_torch(torch, name, groups, OPTIONS[name][-1])
    fopt, fparams = build(fast_cls(name), groups, OTHER_KWARGS)
    fopt.load_state_dict(to_numpy(topt.state_dict()))
    copied = {key: value for key, value in fopt.param_groups[0].items() if key != "params"}
    assert {"foreach", "differentiable"} <= set(copied) - set(fopt.defaults)
    with pytest.raises(ValueError, match=r"param group 1: unknown option 'foreachh'"):
        fopt.add_param_group({**copied, "foreachh": None, "params": [np.zeros(3)]})
    assert len(fopt.param_groups) == 1
    extra = rng.standard_normal(3)
    fopt.add_param_group({**copied, "lr": 0.02, "params": [extra.copy()]})
    tcopied = {key: value for key, value in topt.param_groups[0].items() if key != "params"}
    textra = torch.tensor(extra.copy(), requires_grad=True)
    topt.add_param_group({**tcopied, "lr": 0.02, "params": [textra]})
    fparams, tparams = fparams + fopt.param_groups[1]["params"], tparams + [textra]
    for grads in grad_sequence(rng, SHAPES + ((3,),), np.float64, 5):
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))


@pytest.mark.parametrize("name", NAMES)
def test_empty_param_groups_step_save_and_load_as_torch(name, rng):
    """A group with no parameters (given so, or emptied by hand to freeze its parameters) is
    taken as torch takes it: the other groups step as torch's, the state saves and loads (into
    torch and back), and a group of none may be added."""
    torch = pytest.importorskip("torch")
    groups = [(random_arrays(rng, SHAPES, np.float64), {}), (random_arrays(rng, SHAPES[:1], np.float64), {"lr": 0.01}),
              ([], {"lr": 0.5})]
    kwargs = OPTIONS[name][-1]
    fopt, fparams = build(fast_cls(name), groups, kwargs)
    topt, tparams = build_torch(torch, name, groups, kwargs)
    shapes = SHAPES + SHAPES[:1]
    for grads in grad_sequence(rng, shapes, np.float64, 3):
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    # a fresh pair, the empty group saved and loaded, both ways, before any group is emptied
    twin, _ = build(fast_cls(name), groups, kwargs)
    twin.load_state_dict(to_numpy(topt.state_dict()))
    kept = len(SHAPES)
    assert [group["params"] for group in twin.state_dict()["param_groups"]] == [list(range(kept)), [kept], []]
    assert set(twin.state_dict()["state"]) == set(fopt.state_dict()["state"])
    ttwin, _ = build_torch(torch, name, groups, kwargs)
    ttwin.load_state_dict(to_torch(torch, fopt.state_dict()))
    fopt.param_groups[1]["params"].clear()  # freeze the second group's parameter
    del topt.param_groups[1]["params"][0]
    for grads in grad_sequence(rng, SHAPES, np.float64, 3):
        fopt.step(grads)
        torch_step(torch, topt, tparams[:kept], grads)
    assert_all_close(fparams, torch_numpy(tparams))
    saved = fopt.state_dict()
    assert [group["params"] for group in saved["param_groups"]] == [list(range(kept)), [], []]
    again, _ = build(fast_cls(name), [groups[0], ([], {"lr": 0.01}), groups[2]], kwargs)
    again.load_state_dict(saved)
    assert_state_dicts_equal(again.state_dict(), saved)
    fopt.add_param_group({"params": []})
    topt.add_param_group({"params": []})
    assert len(fopt.param_groups) == len(topt.param_groups) == 4


# -- fastgd -> torch -------------------------------------------------------------------------


@pytest.mark.parametrize("first", FIRST_STEPS, ids=lambda k: f"after{k}")
@dtypes
@pytest.mark.parametrize(("name", "kwargs"), TRAVEL_CASES)
def test_fastgd_state_dict_loads_into_torch(name, kwargs, dtype, first, rng):
    """fastgd steps, its state dict (arrays as tensors, ints as ints) loads into torch over
    tensors holding fastgd's parameter values, and torch goes on as fastgd does."""
    torch = pytest.importorskip("torch")
    groups = [(random_arrays(rng, SHAPES, dtype), {})]
    fopt, fparams = build(fast_cls(name), groups, kwargs)
    seq = grad_sequence(rng, SHAPES, dtype, first + MORE_STEPS, skip)
    for grads in seq[:first]:
        fopt.step(grads)
    saved = to_torch(torch, fopt.state_dict())

    topt, tparams = build_torch(torch, name, [([p.copy() for p in fparams], {})], OTHER_KWARGS)
    topt.load_state_dict(saved)
    for group in topt.param_groups:
        group["foreach"] = False  # the oracle is torch's for-loop implementation
    for key, value in options_of(fopt.param_groups[0]).items():
        assert topt.param_groups[0][key] == value, key
    compare_state_with_torch(fopt, topt, tparams)

    for grads in seq[first:]:
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    compare_state_with_torch(fopt, topt, tparams)


# -- keys fastgd does not use ----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_unknown_group_keys_of_its_own_state_dict_are_kept(name, rng):
    """A scheduler adds initial_lr to each param group (torch's LRScheduler does): the optimizer
    still steps, saves it, and loading its own state dict keeps it."""
    shapes = [(4,), (2, 3)]
    opt, params = build(fast_cls(name), [(random_arrays(rng, shapes, np.float64), {})], OPTIONS[name][-1])
    twin, twin_params = build(fast_cls(name), [([p.copy() for p in params], {})], OPTIONS[name][-1])
    seq = grad_sequence(rng, shapes, np.float64, 6)
    opt.param_groups[0]["initial_lr"] = 0.1
    for grads in seq[:3]:
        opt.step(grads)
        twin.step(grads)
    saved = opt.state_dict()
    assert saved["param_groups"][0]["initial_lr"] == 0.1
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["initial_lr"] == 0.1
    assert opt.state_dict()["param_groups"][0]["initial_lr"] == 0.1
    # the key changes nothing about the steps
    for grads in seq[3:]:
        opt.step(grads)
        twin.step(grads)
    for p, q in zip(params, twin_params):
        assert np.array_equal(p, q)
    # and a fresh optimizer takes it from the state dict
    fresh, _ = build(fast_cls(name), [([p.copy() for p in params], {})], {})
    fresh.load_state_dict(copy.deepcopy(saved))
    assert fresh.param_groups[0]["initial_lr"] == 0.1


def test_loaded_options_are_copies_as_torch():
    # the groups kept the caller's lists: changing betas in a loaded state dict changed the
    # optimizer's next steps (torch deep-copies the saved groups)
    saved = fastgd.Adam([fastgd.Parameter(np.ones(3))], lr=0.1).state_dict()
    saved["param_groups"][0]["betas"] = [0.5, 0.9]
    saved["param_groups"][0]["note"] = ["mine"]
    opt = fastgd.Adam([fastgd.Parameter(np.ones(3))])
    opt.load_state_dict(saved)
    saved["param_groups"][0]["betas"][0] = 0.0
    saved["param_groups"][0]["note"].append("changed")
    assert list(opt.param_groups[0]["betas"]) == [0.5, 0.9]
    assert opt.param_groups[0]["note"] == ["mine"]
    torch = pytest.importorskip("torch")
    twin = torch.optim.Adam([torch.ones(3)])
    saved["param_groups"][0]["betas"] = [0.5, 0.9]
    twin.load_state_dict(saved)
    saved["param_groups"][0]["betas"][0] = 0.0
    assert list(twin.param_groups[0]["betas"]) == [0.5, 0.9]


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_a_tensor_lr_saved_by_torch_loads_as_its_number(name, rng):
    # torch saves a Tensor lr as a 0-d tensor in the group; converted to an array, as the README
    # says, it was refused ("lr must be a real number")
    torch = pytest.importorskip("torch")
    start = rng.standard_normal(5).astype(np.float32)
    grads = [rng.standard_normal(5).astype(np.float32) for _ in range(4)]
    tparam = torch.tensor(start, requires_grad=True)
    topt = getattr(torch.optim, name)([tparam], lr=torch.tensor(0.01), foreach=False)
    for grad in grads[:2]:
        tparam.grad = torch.tensor(grad)
        topt.step()
    saved = topt.state_dict()
    converted = {"state": {i: {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in entry.items()}
                           for i, entry in saved["state"].items()},
                 "param_groups": [{k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in group.items()}
                                  for group in saved["param_groups"]]}
    assert isinstance(converted["param_groups"][0]["lr"], np.ndarray)
    param = tparam.detach().numpy().copy()
    opt = getattr(fastgd, name)([param])
    opt.load_state_dict(converted)
    for grad in grads[2:]:
        tparam.grad = torch.tensor(grad)
        topt.step()
        opt.step([grad])
    np.testing.assert_allclose(param, tparam.detach().numpy(), rtol=1e-6)


# -- decoupled_weight_decay --------------------------------------------------------------------


def test_adam_and_adamw_carry_decoupled_weight_decay():
    """torch 2.13's option: False for Adam, True for AdamW, in defaults, param groups and state dicts."""
    for cls, expected in ((fastgd.Adam, False), (fastgd.AdamW, True)):
        opt = cls([np.zeros(3)])
        assert opt.defaults["decoupled_weight_decay"] is expected
        assert opt.param_groups[0]["decoupled_weight_decay"] is expected
        assert opt.state_dict()["param_groups"][0]["decoupled_weight_decay"] is expected
    assert fastgd.Adam([np.zeros(3)], decoupled_weight_decay=True).param_groups[0]["decoupled_weight_decay"] is True


@dtypes
@pytest.mark.parametrize("amsgrad", [False, True], ids=["plain", "amsgrad"])
def test_adam_with_decoupled_weight_decay_is_adamw(amsgrad, dtype, rng):
    """fastgd.Adam(decoupled_weight_decay=True) follows torch.optim.Adam(decoupled_weight_decay=True),
    and fastgd.AdamW with the same options."""
    torch = pytest.importorskip("torch")
    shapes = [(4, 3), (), (17,)]
    kwargs = dict(lr=0.02, weight_decay=0.2, amsgrad=amsgrad)
    groups = [(random_arrays(rng, shapes, dtype), {})]
    fopt, fparams = build(fastgd.Adam, groups, {**kwargs, "decoupled_weight_decay": True})
    wopt, wparams = build(fastgd.AdamW, groups, kwargs)
    topt, tparams = build_torch(torch, "Adam", groups, {**kwargs, "decoupled_weight_decay": True})
    plain, plain_params = build(fastgd.Adam, groups, kwargs)
    for grads in grad_sequence(rng, shapes, dtype, 20):
        fopt.step(grads)
        wopt.step(grads)
        plain.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    assert_all_close(fparams, wparams)
    compare_state_with_torch(fopt, topt, tparams)
    # L2 weight decay (Adam's own) gives other parameters: the option is not ignored
    assert not all(np.array_equal(p, q) for p, q in zip(fparams, plain_params))


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_decoupled_weight_decay_switched_through_param_groups(name, rng):
    """Setting param_groups[0]["decoupled_weight_decay"] mid-run changes the following steps, as in torch."""
    torch = pytest.importorskip("torch")
    shapes = [(5,), (2, 3)]
    kwargs = dict(lr=0.01, weight_decay=0.3)
    groups = [(random_arrays(rng, shapes, np.float64), {})]
    fopt, fparams = build(fast_cls(name), groups, kwargs)
    topt, tparams = build_torch(torch, "Adam", groups,
                                {**kwargs, "decoupled_weight_decay": name == "AdamW"})
    for k, grads in enumerate(grad_sequence(rng, shapes, np.float64, 16)):
        if k == 8:
            for opt in (fopt, topt):
                opt.param_groups[0]["decoupled_weight_decay"] = name == "Adam"
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(fparams, torch_numpy(tparams))
    compare_state_with_torch(fopt, topt, tparams)


# -- step counts ---------------------------------------------------------------------------------

COUNTING = [name for name in NAMES if fast_cls(name).algorithm.counts_steps]  # SGD keeps no step count

#: the largest step count a state dict may hold: every count up to it is exact in a double
MAX_STEP = 2**53

STEP = 7
ACCEPTED_STEPS = [
    pytest.param(STEP, id="int"),
    pytest.param(np.int64(STEP), id="numpy-int64"),
    pytest.param(np.int32(STEP), id="numpy-int32"),
    pytest.param(np.uint8(STEP), id="numpy-uint8"),
    pytest.param(float(STEP), id="float"),
    pytest.param(np.float64(STEP), id="numpy-float64"),
    pytest.param(np.float32(STEP), id="numpy-float32"),
    pytest.param(np.array(STEP, dtype=np.float32), id="0d-float32"),  # torch's
    pytest.param(np.array(STEP, dtype=np.float64), id="0d-float64"),
    pytest.param(np.array(STEP, dtype=np.int64), id="0d-int64"),
]

REFUSED_STEPS = [
    pytest.param(2**63 - 1, id="int64-max"),
    pytest.param(2**62, id="2**62"),
    pytest.param(MAX_STEP + 1, id="2**53+1"),
    pytest.param(2**64, id="2**64"),
    pytest.param(np.int64(2**62), id="numpy-int64-2**62"),
    pytest.param(np.uint64(2**63), id="numpy-uint64-2**63"),
    pytest.param(float(MAX_STEP + 2), id="float-2**53+2"),
    pytest.param(2.0**62, id="float-2**62"),
    pytest.param(np.array(2.0**62), id="0d-float64-2**62"),
    pytest.param(np.array(2.0**62, dtype=np.float32), id="0d-float32-2**62"),
    pytest.param(-1, id="negative"),
    pytest.param(np.int64(-1), id="numpy-negative"),
    pytest.param(-1.0, id="negative-float"),
    pytest.param(np.array(-1.0, dtype=np.float32), id="0d-negative"),
    pytest.param(2.5, id="fractional"),
    pytest.param(np.array(2.5, dtype=np.float32), id="0d-fractional"),
    pytest.param(math.nan, id="nan"),
    pytest.param(np.array(math.nan, dtype=np.float32), id="0d-nan"),
    pytest.param(math.inf, id="inf"),
    pytest.param(True, id="bool"),
    pytest.param(np.bool_(True), id="numpy-bool"),
    pytest.param(np.array(True), id="0d-bool"),
]


def counted(name, steps=3, seed=0, module=None):
    """An optimizer (every option on) over three float64 parameters after a few steps (fastgd's,
    or of `module`: fastgd.reference)."""
    rng = np.random.default_rng(seed)
    shapes = [(4,), (), (2, 3)]
    cls = fast_cls(name) if module is None else getattr(module, name)
    opt, params = build(cls, [(random_arrays(rng, shapes, np.float64), {})], OPTIONS[name][-1])
    for grads in grad_sequence(rng, shapes, np.float64, steps):
        opt.step(grads)
    return opt, params


def with_steps(state_dict, value):
    """A copy of `state_dict` whose every parameter has the step count `value`."""
    out = copy.deepcopy(state_dict)
    for entry in out["state"].values():
        entry["step"] = copy.deepcopy(value)
    return out


@pytest.mark.parametrize("value", ACCEPTED_STEPS)
@pytest.mark.parametrize("name", COUNTING)
def test_step_count_forms_accepted(name, value):
    """A step count given as an int, a NumPy integer, an integral float or a 0-d array loads as
    that whole number: saved back as an int, and the optimizer goes on as with the int."""
    source, params = counted(name, seed=1)
    saved = source.state_dict()
    opt, opt_params = counted(name, seed=2)
    twin, twin_params = counted(name, seed=2)
    opt.load_state_dict(with_steps(saved, value))
    twin.load_state_dict(with_steps(saved, STEP))
    for i, entry in opt.state_dict()["state"].items():
        assert type(entry["step"]) is int and entry["step"] == STEP, i
    grads = [np.full(p.shape, 0.5) for p in opt_params]
    for _ in range(2):
        opt.step(grads)
        twin.step(grads)
    for p, q in zip(opt_params, twin_params):
        assert np.array_equal(p, q)
    assert_state_dicts_equal(opt.state_dict(), twin.state_dict())


@pytest.mark.parametrize("value", [pytest.param(MAX_STEP, id="int"), pytest.param(float(MAX_STEP), id="float"),
                                   pytest.param(np.array(float(MAX_STEP)), id="0d-float64"),
                                   pytest.param(np.array(MAX_STEP, dtype=np.float32), id="0d-float32")])
@pytest.mark.parametrize("name", COUNTING)
def test_largest_step_count_loads(name, value):
    """2**53, the largest whole number below which every count is exact in a double, loads."""
    opt, _ = counted(name)
    opt.load_state_dict(with_steps(opt.state_dict(), value))
    assert all(entry["step"] == MAX_STEP for entry in opt.state_dict()["state"].values())


@pytest.mark.parametrize("module", [None, fastgd.reference], ids=["fastgd", "reference"])
@pytest.mark.parametrize("name", COUNTING)
def test_the_count_stops_at_the_largest_step_count(name, module):
    """A step at 2**53 keeps the count there, as torch's float step (2**53 + 1 rounds to 2**53, in
    float32 and float64); the state dict then loads (the count went past what a load takes).
    The NumPy reference counts alike."""
    opt, params = counted(name, module=module)
    opt.load_state_dict(with_steps(opt.state_dict(), MAX_STEP))
    opt.step([np.full(p.shape, 0.25) for p in params])
    saved = opt.state_dict()
    assert [entry["step"] for entry in saved["state"].values()] == [MAX_STEP] * len(params)
    counted(name, module=module)[0].load_state_dict(saved)
    for dtype in (np.float32, np.float64):  # the oracle: a float step's arithmetic
        assert dtype(MAX_STEP) + dtype(1) == MAX_STEP


@pytest.mark.parametrize("value", REFUSED_STEPS)
@pytest.mark.parametrize("name", COUNTING)
def test_bad_step_count_refused_and_changes_nothing(name, value):
    """A step count that is not a whole number in [0, 2**53] is refused naming the step (ValueError;
    TypeError for a bool, no number), even when only the last parameter's is bad; nothing changes,
    and the optimizer goes on as one that never saw the call."""
    error = TypeError if np.asarray(value).dtype == bool else ValueError
    opt, params = counted(name)
    twin, twin_params = counted(name)
    bad = counted(name, steps=5, seed=9)[0].state_dict()  # a state dict unlike the optimizer's own
    bad["state"][2]["step"] = value
    snap = snapshot(opt, params)
    with pytest.raises(error, match="step"):
        opt.load_state_dict(bad)
    assert_unchanged(opt, params, snap)
    grads = [np.full(p.shape, 0.25) for p in params]
    opt.step(grads)
    twin.step(grads)
    for p, q in zip(params, twin_params):
        assert np.array_equal(p, q)
    assert_state_dicts_equal(opt.state_dict(), twin.state_dict())


@pytest.mark.parametrize(("name", "kwargs", "dropped"), [
    ("Adam", {}, "step"), ("Adam", {}, "exp_avg_sq"), ("RMSprop", {"momentum": 0.9, "centered": True}, "square_avg"),
    ("NAdam", {}, "mu_product"), ("Adagrad", {}, "sum"), ("SGD", {"momentum": 0.9}, None)])
def test_a_state_cut_short_is_refused_as_torch(name, kwargs, dropped, rng):
    """A parameter's state lacking a part its options need: torch fails (at load or at the next
    step, with KeyError); fastgd refuses it at load, changing nothing.  A whole state loads."""
    torch = pytest.importorskip("torch")
    opt = getattr(fastgd, name)([rng.standard_normal(3)], **kwargs)
    for _ in range(3):
        opt.step([rng.standard_normal(3)])
    saved = opt.state_dict()
    if dropped is not None:
        del saved["state"][0][dropped]
    tparam = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    topt = getattr(torch.optim, name)([tparam], **kwargs)
    tsaved = {"state": {0: {k: torch.tensor(v) for k, v in saved["state"][0].items()}},
              "param_groups": saved["param_groups"]}
    try:
        topt.load_state_dict(tsaved)
        tparam.grad = torch.ones(3, dtype=torch.float64)
        topt.step()
        torch_refused = False
    except KeyError:
        torch_refused = True
    assert torch_refused == (dropped is not None)
    fresh = getattr(fastgd, name)([np.zeros(3)], **kwargs)
    before = fresh.state_dict()
    if dropped is None:
        fresh.load_state_dict(saved)
        return
    with pytest.raises(ValueError, match=rf"state of parameter 0 .* lacks \['{dropped}'\]"):
        fresh.load_state_dict(saved)
    assert_state_dicts_equal(fresh.state_dict(), before)


@pytest.mark.parametrize(("name", "option", "value"), [("Adam", "amsgrad", True), ("RMSprop", "momentum", 0.9),
                                                        ("RMSprop", "centered", True)])
def test_a_state_saved_after_an_option_was_turned_on_loads(name, option, value, rng):
    # the option's state is made at the next step, as the optimizer that saved it would make it
    opt = getattr(fastgd, name)([rng.standard_normal(3)])
    for _ in range(3):
        opt.step([rng.standard_normal(3)])
    opt.param_groups[0][option] = value
    twin = getattr(fastgd, name)([opt.param_groups[0]["params"][0].copy()])
    twin.load_state_dict(opt.state_dict())
    grads = [rng.standard_normal(3)]
    opt.step(grads)
    twin.step(grads)
    np.testing.assert_array_equal(twin.param_groups[0]["params"][0], opt.param_groups[0]["params"][0])


def test_adamw_decouples_within_the_load():
    # a step from another thread between the load's release of the lock and the decoupling ran
    # coupled (L2) decay; the groups must say decoupled when the load lets go of the lock
    opt = fastgd.AdamW([np.ones(3)], lr=0.1, weight_decay=0.5)
    saved = opt.state_dict()
    saved["param_groups"][0]["decoupled_weight_decay"] = False
    seen = []

    class Watched:
        def __init__(self):
            self.lock = threading.Lock()

        def acquire(self, blocking=True):
            return self.lock.acquire(blocking)

        def release(self):
            seen.append([group["decoupled_weight_decay"] for group in opt.param_groups])
            self.lock.release()

    opt._lock = Watched()
    opt.load_state_dict(saved)
    assert seen == [[True]]


@pytest.mark.parametrize("how", ["load_state_dict", "pickle"])
def test_adamw_decouples_its_weight_decay_again_when_loaded_as_torchs(how):
    # torch's AdamW.__setstate__ (which its load_state_dict calls, as unpickling does) sets every
    # group's decoupled_weight_decay back to True, whatever the group or the state dict said
    torch = pytest.importorskip("torch")
    start = np.linspace(-1.0, 1.0, 6)
    p, t = fastgd.Parameter(start.copy()), torch.nn.Parameter(torch.tensor(start))
    opt, topt = fastgd.AdamW([p], lr=0.1, weight_decay=0.5), torch.optim.AdamW([t], lr=0.1, weight_decay=0.5)
    for k in range(3):
        if k == 1:
            opt.param_groups[0]["decoupled_weight_decay"] = topt.param_groups[0]["decoupled_weight_decay"] = False
        if k == 2 and how == "load_state_dict":
            opt.load_state_dict(opt.state_dict())
            topt.load_state_dict(topt.state_dict())
        elif k == 2:
            opt = pickle.loads(pickle.dumps(opt))
            p = opt.param_groups[0]["params"][0]
            topt.__setstate__(topt.__getstate__())  # (torch's unpickling, without pickling its tensors anew)
        assert opt.param_groups[0]["decoupled_weight_decay"] == topt.param_groups[0]["decoupled_weight_decay"]
        p.grad, t.grad = np.cos(np.arange(6.0) + k), torch.tensor(np.cos(np.arange(6.0) + k))
        opt.step()
        topt.step()
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-14, atol=1e-16)


def test_a_step_count_saved_as_float16_loads_without_a_warning():
    # compared with the largest count in float16 (where it is inf), 65504 warned of an overflow
    opt = fastgd.Adam([np.zeros(2)])
    opt.step([np.ones(2)])
    saved = opt.state_dict()
    saved["state"][0]["step"] = np.float16(65504)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.load_state_dict(saved)
    assert opt.state_dict()["state"][0]["step"] == 65504
    saved["state"][0]["step"] = np.longdouble(3) + np.longdouble(2) ** -60  # (not whole: refused, unrounded)
    if saved["state"][0]["step"] != 3:
        with pytest.raises(ValueError, match="step must be a whole number"):
            opt.load_state_dict(saved)


def test_the_saved_groups_ids_say_whose_state_is_whose_as_torchs():
    # each saved state went to the parameter at its key's position, whatever ids the saved groups
    # listed: with [1, 0] torch gives parameter 0 the state saved under id 1, fastgd gave it 0's
    torch = pytest.importorskip("torch")
    tparams = [torch.ones(4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    topt = torch.optim.Adam([{"params": tparams[:2]}, {"params": tparams[2:]}], lr=0.1)
    for scale, t in zip((1.0, 3.0, -2.0), tparams):
        t.grad = torch.full((4,), scale, dtype=torch.float64)
    topt.step()
    saved = topt.state_dict()
    renamed = {0: 7, 1: 4, 2: 9}  # ids of torch's own choosing, listed in another order
    saved["state"] = {renamed[key]: value for key, value in saved["state"].items()}
    saved["param_groups"][0]["params"] = [4, 7]
    saved["param_groups"][1]["params"] = [9]
    loaded = [torch.ones(4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    theirs = torch.optim.Adam([{"params": loaded[:2]}, {"params": loaded[2:]}], lr=0.1)
    theirs.load_state_dict(copy.deepcopy(saved))
    assert theirs.state[loaded[0]]["exp_avg"][0] == topt.state[tparams[1]]["exp_avg"][0]  # (the oracle swaps)
    params = [np.ones(4) for _ in range(3)]
    ours = fastgd.Adam([{"params": params[:2]}, {"params": params[2:]}], lr=0.1)
    ours.load_state_dict(to_numpy(saved))
    compare_state_with_torch(ours, theirs, loaded)
    for grads in ([np.full(4, 0.5), np.full(4, -1.0), np.full(4, 2.0)],) * 2:  # and they go on alike
        ours.step(grads)
        for t, g in zip(loaded, grads):
            t.grad = torch.from_numpy(g.copy())
        theirs.step()
    assert_all_close(params, torch_numpy(loaded))


def test_a_saved_group_listing_an_id_twice_is_refused_changing_nothing():
    # torch maps the id to the later parameter and leaves the other without its state
    opt = fastgd.Adam([np.ones(4), np.ones(4)], lr=0.1)
    opt.step([np.ones(4), np.full(4, 3.0)])
    saved, before = opt.state_dict(), copy.deepcopy(opt.state_dict())
    saved["param_groups"][0]["params"] = [0, 0]
    with pytest.raises(ValueError, match="list parameter id 0 more than once"):
        opt.load_state_dict(saved)
    saved["param_groups"][0]["params"] = [0, 2]
    with pytest.raises(ValueError, match=r"has key 1; expected parameter ids that its param groups list \(\[0, 2\]\)"):
        opt.load_state_dict(saved)
    saved["param_groups"][0]["params"] = [0, 1.0]
    with pytest.raises(TypeError, match="list 1.0 as a parameter id; expected whole numbers"):
        opt.load_state_dict(saved)
    assert_state_dicts_equal(opt.state_dict(), before)


def test_a_bad_state_under_another_id_names_the_parameter_and_its_id():
    # the message named the saved id as the parameter ("parameter 9" of three)
    opt = fastgd.Adam([np.ones(4), np.ones(3)], lr=0.1)
    opt.step([np.ones(4), np.ones(3)])
    saved = opt.state_dict()
    saved["param_groups"][0]["params"] = [np.int64(9), 4]
    saved["state"] = {np.int64(9): saved["state"][0], 4: {**saved["state"][1], "exp_avg": np.ones(5)}}
    with pytest.raises(ValueError, match=r"state of parameter 1 \(saved as id 4\) \(shape \(3,\).*exp_avg has shape \(5,\)"):
        opt.load_state_dict(saved)
