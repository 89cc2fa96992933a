"""Shared helpers for fastgd's tests.

The oracles are torch.optim (for-loop implementation, ``foreach=False``) when
torch is importable (for Lion, which torch lacks, Chen et al.'s Algorithm 2 written
here in torch's tensor operations), ``fastgd.reference`` (plain NumPy) and
closed-form math.
Nothing here hard-codes numbers produced by fastgd itself.
"""
import copy
import zlib

import numpy as np
import pytest

import fastgd
from fastgd import reference

NAMES = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "Adadelta", "Lion", "RAdam", "NAdam")
DTYPES = (np.float32, np.float64)

#: norm-wise relative tolerance against torch / the reference, per dtype
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

#: shapes used in the long comparisons: 0-d, empty, odd sizes (SIMD tails), several dims
SHAPES = ((3, 4), (), (0, 3), (37,), (2, 3, 5), (1,))

#: state arrays each algorithm keeps, as torch names them
STATE_NAMES = {
    "SGD": ("momentum_buffer",),
    "Adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "AdamW": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "RMSprop": ("square_avg", "grad_avg", "momentum_buffer"),
    "Adagrad": ("sum",),
    "Adamax": ("exp_avg", "exp_inf"),
    "Adadelta": ("square_avg", "acc_delta"),
    "Lion": ("exp_avg",),
    "RAdam": ("exp_avg", "exp_avg_sq"),
    "NAdam": ("exp_avg", "exp_avg_sq"),  # and its number mu_product (a ScalarState)
}

#: option sets covering every option of every algorithm, alone and combined
OPTIONS = {
    "SGD": [
        dict(lr=0.05),
        dict(lr=0.05, momentum=0.9),
        dict(lr=0.05, momentum=0.9, dampening=0.5),
        dict(lr=0.05, momentum=0.5, dampening=-0.5),  # (torch takes any dampening)
        dict(lr=0.05, momentum=0.9, nesterov=True),
        dict(lr=0.05, weight_decay=0.1),
        dict(lr=0.05, maximize=True),
        dict(lr=0.02, momentum=0.8, dampening=0.1, weight_decay=0.05, maximize=True),
        dict(lr=0.02, momentum=0.7, weight_decay=0.05, nesterov=True, maximize=True),
    ],
    "Adam": [
        dict(lr=0.01),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, betas=(0.5, 0.9)),
        dict(lr=0.01, betas=(0.0, 0.3)),
        dict(lr=0.01, maximize=True),
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=True, maximize=True),
    ],
    "AdamW": [
        dict(lr=0.01),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, weight_decay=0),
        dict(lr=0.01, betas=(0.5, 0.9)),
        dict(lr=0.01, maximize=True),
        dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=True, maximize=True),
    ],
    "RMSprop": [
        dict(),
        dict(centered=True),
        dict(momentum=0.9),
        dict(weight_decay=0.1),
        dict(alpha=0.9),
        dict(alpha=0.3, centered=True),
        dict(maximize=True),
        dict(lr=0.005, alpha=0.7, eps=1e-4, weight_decay=0.05, momentum=0.5, centered=True, maximize=True),
    ],
    "Adagrad": [
        dict(lr=0.05),
        dict(lr=0.05, lr_decay=0.01),
        dict(lr=0.05, weight_decay=0.1),
        dict(lr=0.05, initial_accumulator_value=0.5),
        dict(lr=0.05, maximize=True),
        dict(lr=0.05, eps=1e-3),
        dict(lr=0.05, lr_decay=0.05, weight_decay=0.05, initial_accumulator_value=0.1, eps=1e-6, maximize=True),
    ],
    "Adamax": [
        dict(),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, betas=(0.5, 0.9)),
        dict(lr=0.01, betas=(0.0, 0.0)),
        dict(lr=0.01, eps=0.1),
        dict(lr=0.01, maximize=True),
        dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, maximize=True),
    ],
    "Adadelta": [
        dict(),
        dict(lr=0.5, rho=0.5),
        dict(rho=0.0),
        dict(rho=1.0),
        dict(eps=1e-3),
        dict(weight_decay=0.1),
        dict(maximize=True),
        dict(lr=0.3, rho=0.7, eps=1e-4, weight_decay=0.05, maximize=True),
    ],
    "Lion": [
        dict(weight_decay=0.01),  # the default lr; without decay a 0-d parameter may walk back to its start
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.5, 0.9)),
        dict(lr=0.01, betas=(0.0, 0.0)),
        dict(lr=0.01, weight_decay=0.5),
        dict(lr=0.01, maximize=True),
        dict(lr=0.003, betas=(0.95, 0.98), weight_decay=0.2, maximize=True),
    ],
    "RAdam": [  # rho_t > 5 from step 6 with beta2 = 0.999, from step 3 with 0.9; never with 0.3
        dict(lr=0.01),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=0.01, betas=(0.5, 0.9)),
        dict(lr=0.01, betas=(0.0, 0.3)),
        dict(lr=0.01, eps=1e-3),
        dict(lr=0.01, maximize=True),
        dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, decoupled_weight_decay=True, maximize=True),
    ],
    "NAdam": [
        dict(lr=0.01),
        dict(lr=0.01, momentum_decay=0.1),
        dict(lr=0.01, momentum_decay=0.0),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=0.01, betas=(0.5, 0.9)),
        dict(lr=0.01, betas=(0.0, 0.3)),
        dict(lr=0.01, eps=1e-3),
        dict(lr=0.01, maximize=True),
        dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, momentum_decay=0.01,
             decoupled_weight_decay=True, maximize=True),
    ],
}


def option_cases():
    """(name, kwargs) for every entry of OPTIONS, with readable ids."""
    return [
        pytest.param(name, kwargs, id=f"{name}-{'-'.join(f'{k}={v}' for k, v in kwargs.items()) or 'defaults'}")
        for name in NAMES
        for kwargs in OPTIONS[name]
    ]


def fast_cls(name):
    return getattr(fastgd, name)


def ref_cls(name):
    return getattr(reference, name)


def random_arrays(rng, shapes, dtype):
    return [np.asarray(rng.standard_normal(shape), dtype=dtype) for shape in shapes]


def rel_err(actual, expected):
    """Norm-wise relative error (absolute when the expected value is all zeros / empty)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = np.linalg.norm(expected)
    diff = np.linalg.norm(actual - expected)
    return diff / scale if scale else diff


def assert_close(actual, expected, rtol, what="array"):
    """Same shape, and ||actual - expected|| <= rtol * ||expected||, both finite."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(expected)), f"{what}: oracle is not finite"
    assert np.all(np.isfinite(actual)), f"{what}: not finite: {actual}"
    diff = np.linalg.norm(actual.astype(np.float64) - expected.astype(np.float64))
    scale = np.linalg.norm(expected.astype(np.float64))
    assert diff <= rtol * scale, f"{what}: norm-wise relative error {rel_err(actual, expected):.3g} > {rtol:g}"


def assert_all_close(actuals, expecteds, what="parameter"):
    """Each actual has its oracle's dtype and agrees with it to RTOL[dtype], norm-wise."""
    assert len(actuals) == len(expecteds)
    for i, (a, e) in enumerate(zip(actuals, expecteds)):
        a, e = np.asarray(a), np.asarray(e)
        assert a.dtype == e.dtype, f"{what} {i}: dtype {a.dtype}, expected {e.dtype}"
        assert_close(a, e, RTOL[e.dtype], f"{what} {i}")


# -- snapshots: "nothing changed" ------------------------------------------------


class ReentrantParameter(fastgd.Parameter):
    """A Parameter whose .data or .grad, once armed (arm(name, call)), calls call() the next time
    it is read: a second call arriving while the first runs, as another thread's would."""

    __slots__ = ("_armed", "_values")

    def __init__(self, data, grad=None):
        self._armed, self._values = None, {}
        super().__init__(data, grad)

    def arm(self, name, call):
        self._armed = (name, call)

    def _read(self, name):
        if self._armed is not None and self._armed[0] == name:
            call, self._armed = self._armed[1], None
            call()
        return self._values[name]

    data = property(lambda self: self._read("data"), lambda self, value: self._values.__setitem__("data", value))
    grad = property(lambda self: self._read("grad"), lambda self, value: self._values.__setitem__("grad", value))


def snapshot(opt, params):
    """Deep copies of every parameter and of the optimizer's state dict."""
    return [np.array(p, copy=True) for p in params], copy.deepcopy(opt.state_dict())


def assert_state_dicts_equal(a, b, compare_groups=True):
    assert set(a["state"]) == set(b["state"])
    for key in a["state"]:
        ea, eb = a["state"][key], b["state"][key]
        assert set(ea) == set(eb), f"state {key}: {sorted(ea)} != {sorted(eb)}"
        for name in ea:
            if isinstance(ea[name], np.ndarray):
                assert ea[name].dtype == eb[name].dtype
                assert np.array_equal(ea[name], eb[name], equal_nan=True), f"state {key}[{name!r}] changed"
            else:
                assert ea[name] == eb[name], f"state {key}[{name!r}]: {ea[name]} != {eb[name]}"
    if compare_groups:
        assert a["param_groups"] == b["param_groups"]


def assert_unchanged(opt, params, snap, compare_groups=True):
    before_params, before_sd = snap
    assert len(params) == len(before_params)
    for i, (p, q) in enumerate(zip(params, before_params)):
        assert np.array_equal(p, q, equal_nan=True), f"parameter {i} changed"
    assert_state_dicts_equal(opt.state_dict(), before_sd, compare_groups)


# -- lock-step runs against torch and the reference --------------------------------


def flat(groups):
    return [array for arrays, _ in groups for array in arrays]


def build(cls, groups, kwargs):
    """An optimizer of class `cls` over copies of `groups` ([(arrays, group options), ...])."""
    params = [[np.array(a, copy=True) for a in arrays] for arrays, _ in groups]
    if len(groups) == 1 and not groups[0][1]:
        opt = cls(params[0], **kwargs)
    else:
        opt = cls([{"params": ps, **options} for ps, (_, options) in zip(params, groups)], **kwargs)
    return opt, [p for ps in params for p in ps]


def torch_class(torch, name):
    """torch.optim's class of that name; for Lion, which torch lacks, TorchLion."""
    return getattr(torch.optim, name) if name != "Lion" else torch_lion(torch)


def torch_lion(torch):
    """Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2,
    decoupled weight decay) as a torch.optim.Optimizer in torch's tensor operations: the torch
    oracle of fastgd.Lion, with torch's param groups, state and state dicts."""

    class TorchLion(torch.optim.Optimizer):
        def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0, foreach=None, *, maximize=False):
            super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize,
                                          foreach=foreach, differentiable=False))

        @torch.no_grad()
        def step(self, closure=None):
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                lr, weight_decay = group["lr"], group["weight_decay"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = -p.grad if group["maximize"] else p.grad
                    state = self.state[p]
                    if not state:
                        state["exp_avg"] = torch.zeros_like(p)
                    exp_avg = state["exp_avg"]
                    interpolated = exp_avg * beta1 + (1 - beta1) * grad
                    p.mul_(1 - lr * weight_decay)
                    p.sub_(lr * torch.sign(interpolated))
                    exp_avg.mul_(beta2).add_((1 - beta2) * grad)
            return loss

    return TorchLion


def build_torch(torch, name, groups, kwargs):
    params = [[torch.tensor(np.array(a, copy=True), requires_grad=True) for a in arrays] for arrays, _ in groups]
    cls = torch_class(torch, name)
    if len(groups) == 1 and not groups[0][1]:
        opt = cls(params[0], foreach=False, **kwargs)
    else:
        opt = cls([{"params": ps, **options} for ps, (_, options) in zip(params, groups)], foreach=False, **kwargs)
    return opt, [p for ps in params for p in ps]


def torch_step(torch, opt, tparams, grads):
    for t, g in zip(tparams, grads):
        t.grad = None if g is None else torch.from_numpy(np.array(g, copy=True))
    opt.step()


def torch_numpy(tparams):
    return [t.detach().numpy().copy() for t in tparams]


def assert_state_close(actual, expected, what="state"):
    """actual, expected: {name: [array per parameter]} (same parameters, same order).

    State arrays are moving averages whose entries can be cancellations close
    to 0 (a 0-d exp_avg, say), so each state name is compared norm-wise over
    the concatenation of all parameters' arrays of one dtype, not per array."""
    assert set(actual) == set(expected), f"{what}: {sorted(actual)} != {sorted(expected)}"
    for name in actual:
        assert len(actual[name]) == len(expected[name])
        by_dtype = {}
        for i, (a, e) in enumerate(zip(actual[name], expected[name])):
            a, e = np.asarray(a), np.asarray(e)
            assert a.dtype == e.dtype, f"{what} {i}[{name!r}]: dtype {a.dtype}, expected {e.dtype}"
            assert a.shape == e.shape, f"{what} {i}[{name!r}]: shape {a.shape}, expected {e.shape}"
            pair = by_dtype.setdefault(e.dtype, ([], []))
            pair[0].append(a.ravel())
            pair[1].append(e.ravel())
        for dtype, (a, e) in by_dtype.items():
            assert_close(np.concatenate(a), np.concatenate(e), RTOL[dtype], f"{what}[{name!r}] ({dtype})")


def state_by_name(state_dict):
    """{name: [array (or number, a ScalarState's) per parameter with that state]} and
    {index: step} from a state dict."""
    arrays, steps = {}, {}
    for i in sorted(state_dict["state"]):
        for key, value in state_dict["state"][i].items():
            if key == "step":
                steps[i] = value
            else:
                arrays.setdefault(key, []).append(value)
    return arrays, steps


def compare_state_with_torch(fopt, topt, tparams):
    """fastgd's state (from state_dict) against torch's opt.state: the same entries for
    every parameter torch has state for, the same step counts and numbers (NAdam's
    mu_product, which both keep in float32: equal), and close arrays.
    Returns the number of state arrays compared."""
    state = fopt.state_dict()["state"]
    actual, expected = {}, {}
    for i, t in enumerate(tparams):
        tstate = {key: value for key, value in topt.state.get(t, {}).items() if value is not None}
        if not tstate:
            continue
        assert i in state, f"parameter {i}: torch has state {sorted(tstate)}, fastgd none"
        assert set(state[i]) == set(tstate), f"parameter {i}: state {sorted(state[i])}, torch {sorted(tstate)}"
        for key, value in tstate.items():
            if key == "step":
                assert state[i]["step"] == int(value.item()), f"parameter {i}: step"
            elif key in [scalar.name for scalar in fopt.algorithm.scalar_state]:
                assert type(state[i][key]) is float and state[i][key] == value.item(), (
                    f"parameter {i}: {key} {state[i][key]!r}, torch {value.item()!r}")
            else:
                actual.setdefault(key, []).append(state[i][key])
                expected.setdefault(key, []).append(value.detach().numpy())
    assert_state_close(actual, expected, "state vs torch")
    return sum(len(v) for v in actual.values())


def grad_sequence(rng, shapes, dtype, steps, skip=None):
    """`steps` lists of random gradients; skip(step, index) -> True gives None there."""
    out = []
    for k in range(steps):
        grads = random_arrays(rng, shapes, dtype)
        if skip is not None:
            grads = [None if skip(k, i) else g for i, g in enumerate(grads)]
        out.append(grads)
    return out


@pytest.fixture
def rng(request):
    """A generator seeded from the test's id (a stable digest), so every test is reproducible."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def global_seed():
    """np.random.seed for a test that seeds NumPy's global generator: its state put back after
    the test, so that the later tests' unseeded fits draw as they do when run alone."""
    state = np.random.get_state()
    yield np.random.seed
    np.random.set_state(state)


@pytest.fixture(scope="module")
def dask_client():
    """A client of a two-worker LocalCluster (processes, one thread each), closed after the module.
    dask.distributed is imported here, so that modules not asking for it never import Dask."""
    distributed = pytest.importorskip("distributed")
    import dask

    # a worker lost (the tests that kill one) and not back within lost-worker-timeout (15 s) has its
    # nanny closed for good: on a loaded machine a restart can take longer, and the module's later
    # tests then find one worker; the setting is read in this process, when a worker is removed
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "300s"}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      worker_dashboard_address=None) as cluster:
            with distributed.Client(cluster) as client:
                yield client
