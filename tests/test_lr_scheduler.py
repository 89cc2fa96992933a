"""fastgd.lr_scheduler against torch.optim.lr_scheduler (2.13): the same schedulers, made with
the same arguments on a fastgd optimizer and on torch's of the same name with the same param
groups, set the same learning rates (and momentum or beta1) at every one of 1000 steps, to
1e-12 relative; their state dicts round-trip mid-run and load from torch's."""
import copy
import functools
import gc
import math
import pickle
import threading
import types
import warnings
import weakref
import zlib

import numpy as np
import pytest

import fastgd
from fastgd import lr_scheduler, optim

torch = pytest.importorskip("torch")
import torch.optim.lr_scheduler as torch_scheduler  # noqa: E402

STEPS = 1000
GROUP_LRS = (0.1, 0.03, 0.007)
SIZES = (3, 2, 4)
#: the group keys a scheduler writes, compared with torch's at every step
SCHEDULED = ("lr", "momentum", "betas", "initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")
#: every optimizer fastgd exports (one added later included) that torch has too
OPTIMIZERS = [name for name in optim.__all__ if isinstance(getattr(optim, name), type)
              and issubclass(getattr(optim, name), optim.Optimizer) and getattr(optim, name) is not optim.Optimizer
              and hasattr(torch.optim, name)]
MOMENTUM_OPTIONS = {"SGD": dict(momentum=0.9), "RMSprop": dict(momentum=0.5)}


def make_pair(name, options=None):
    """A fastgd optimizer and torch's of the same name, with the same three param groups."""
    options = dict(options or MOMENTUM_OPTIONS.get(name, {}))
    fast = getattr(fastgd, name)([{"params": [np.zeros(n)], "lr": lr} for n, lr in zip(SIZES, GROUP_LRS)], **options)
    tparams = [torch.zeros(n, dtype=torch.float64, requires_grad=True) for n in SIZES]
    theirs = getattr(torch.optim, name)([{"params": [t], "lr": lr} for t, lr in zip(tparams, GROUP_LRS)], **options)
    return fast, theirs


def step_optimizer(opt):
    if isinstance(opt, optim.Optimizer):
        opt.step([np.full(n, 0.1) for n in SIZES])
    else:
        for group in opt.param_groups:
            for t in group["params"]:
                t.grad = torch.full(t.shape, 0.1, dtype=torch.float64)
        opt.step()


def scheduled(opt):
    """The values schedulers write, per group, as plain floats."""
    rows = []
    for group in opt.param_groups:
        row = []
        for key in SCHEDULED:
            value = group.get(key)
            if key == "betas" and value is not None:
                value = value[0]
            row.append(math.nan if value is None else float(value))
        rows.append(row)
    return rows


class Warmup:
    """A callable object: LambdaLR saves its attributes in its state dict."""

    def __init__(self, epochs):
        self.epochs = epochs

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.epochs)


class Fading:
    """A scale_fn with a state of its own: each call fades the scale (so the calls must be torch's,
    one per group for the rates and one per group for the momentums; CyclicLR saves the count)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return 0.9999 ** self.calls


def metric(i):
    """A loss that improves, then stalls and wanders (ReduceLROnPlateau's input)."""
    return 1.0 / (1 + i) ** 0.5 + 0.02 * math.sin(i / 3.0) + (0.3 if 300 < i < 340 else 0.0)


def fractional_epoch(i):
    return i / 7


def swa(module):
    """The module of SWALR beside a module of schedulers: fastgd's swa_utils, or torch's."""
    return fastgd.swa_utils if module is lr_scheduler else torch.optim.swa_utils


# (optimizer, make(module, optimizer) -> schedulers stepped in order each step, epoch(i) or None)
CASES = {
    "LambdaLR": ("SGD", lambda m, o: [m.LambdaLR(o, lambda e: 0.995 ** e)], None),
    "LambdaLR-per-group": ("Adam", lambda m, o: [m.LambdaLR(o, [lambda e: 1 / (1 + e), Warmup(50),
                                                               lambda e: (e % 7 + 1) / 7])], None),
    "MultiplicativeLR": ("SGD", lambda m, o: [m.MultiplicativeLR(o, lambda e: 0.999)], None),
    "MultiplicativeLR-per-group": ("RMSprop", lambda m, o: [m.MultiplicativeLR(
        o, [lambda e: 0.998, lambda e: 1.001 if e % 2 else 0.997, Warmup(3)])], None),
    "StepLR": ("SGD", lambda m, o: [m.StepLR(o, step_size=30)], None),
    "StepLR-gamma": ("Adagrad", lambda m, o: [m.StepLR(o, step_size=7, gamma=0.9)], None),
    "StepLR-closed-form": ("SGD", lambda m, o: [m.StepLR(o, step_size=7, gamma=0.9)], lambda i: i),
    "MultiStepLR": ("SGD", lambda m, o: [m.MultiStepLR(o, milestones=[10, 200, 200, 650], gamma=0.5)], None),
    "MultiStepLR-closed-form": ("AdamW", lambda m, o: [m.MultiStepLR(o, milestones=[3, 500, 500])], lambda i: i),
    # a mapping: torch's Counter(milestones), its values how many times each milestone counts
    "MultiStepLR-mapping": ("SGD", lambda m, o: [m.MultiStepLR(o, milestones={10: 1, 200: 2, 300: 0, 650: 3},
                                                               gamma=0.5)], None),
    "MultiStepLR-mapping-closed-form": ("Adam", lambda m, o: [m.MultiStepLR(o, milestones={3: 2, 500: 1})],
                                        lambda i: i),
    "ConstantLR": ("SGD", lambda m, o: [m.ConstantLR(o)], None),
    "ConstantLR-long": ("Adam", lambda m, o: [m.ConstantLR(o, factor=0.3, total_iters=300)], None),
    "ConstantLR-closed-form": ("SGD", lambda m, o: [m.ConstantLR(o, factor=0.5, total_iters=40)], lambda i: i),
    "LinearLR": ("SGD", lambda m, o: [m.LinearLR(o)], None),
    "LinearLR-down": ("Adam", lambda m, o: [m.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=700)], None),
    "LinearLR-to-zero": ("SGD", lambda m, o: [m.LinearLR(o, start_factor=0.5, end_factor=0.0, total_iters=STEPS)],
                         None),
    "LinearLR-closed-form": ("SGD", lambda m, o: [m.LinearLR(o, start_factor=0.1, total_iters=90)], lambda i: i),
    "ExponentialLR": ("SGD", lambda m, o: [m.ExponentialLR(o, gamma=0.99)], None),
    "ExponentialLR-closed-form": ("RMSprop", lambda m, o: [m.ExponentialLR(o, gamma=0.995)], lambda i: i),
    "PolynomialLR": ("SGD", lambda m, o: [m.PolynomialLR(o)], None),
    "PolynomialLR-square": ("Adam", lambda m, o: [m.PolynomialLR(o, total_iters=800, power=2.0)], None),
    "PolynomialLR-closed-form": ("SGD", lambda m, o: [m.PolynomialLR(o, total_iters=900, power=0.5)], lambda i: i),
    "CosineAnnealingLR": ("SGD", lambda m, o: [m.CosineAnnealingLR(o, T_max=STEPS)], None),
    "CosineAnnealingLR-periods": ("Adam", lambda m, o: [m.CosineAnnealingLR(o, T_max=37, eta_min=1e-4)], None),
    "CosineAnnealingLR-closed-form": ("SGD", lambda m, o: [m.CosineAnnealingLR(o, T_max=100, eta_min=1e-3)],
                                      lambda i: i),
    "CosineAnnealingWarmRestarts": ("SGD", lambda m, o: [m.CosineAnnealingWarmRestarts(o, T_0=10)], None),
    "CosineAnnealingWarmRestarts-mult": ("Adagrad", lambda m, o: [m.CosineAnnealingWarmRestarts(
        o, T_0=7, T_mult=2, eta_min=1e-5)], None),
    "CosineAnnealingWarmRestarts-fractional": ("SGD", lambda m, o: [m.CosineAnnealingWarmRestarts(
        o, T_0=5, T_mult=3, eta_min=1e-4)], fractional_epoch),
    "CyclicLR": ("SGD", lambda m, o: [m.CyclicLR(o, base_lr=0.001, max_lr=0.1, step_size_up=50)], None),
    "CyclicLR-triangular2": ("Adam", lambda m, o: [m.CyclicLR(o, base_lr=[0.001, 0.002, 0.0005], max_lr=0.05,
                                                              step_size_up=20, step_size_down=70,
                                                              mode="triangular2", base_momentum=0.7)], None),
    "CyclicLR-exp_range": ("RMSprop", lambda m, o: [m.CyclicLR(o, base_lr=0.001, max_lr=[0.1, 0.2, 0.3],
                                                               step_size_up=33, mode="exp_range", gamma=0.999,
                                                               max_momentum=[0.9, 0.8, 0.7])], None),
    "CyclicLR-scale_fn": ("AdamW", lambda m, o: [m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=40,
                                                            scale_fn=lambda x: 0.5 * (1 + math.sin(x * math.pi / 2)),
                                                            scale_mode="iterations")], None),
    "CyclicLR-scale_fn-state": ("SGD", lambda m, o: [m.CyclicLR(o, base_lr=0.001, max_lr=0.1, step_size_up=30,
                                                                scale_fn=Fading())], None),
    "CyclicLR-sawtooth": ("SGD", lambda m, o: [m.CyclicLR(o, base_lr=0.001, max_lr=0.1, step_size_up=37,
                                                          step_size_down=0)], None),
    "CyclicLR-sawtooth-exp_range": ("Adam", lambda m, o: [m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=20.5,
                                                                     step_size_down=0.0, mode="exp_range",
                                                                     gamma=0.999)], None),
    "CyclicLR-no-momentum": ("Adagrad", lambda m, o: [m.CyclicLR(o, base_lr=0.001, max_lr=0.1, step_size_up=25,
                                                                 cycle_momentum=False)], None),
    "OneCycleLR": ("SGD", lambda m, o: [m.OneCycleLR(o, max_lr=0.1, total_steps=STEPS)], None),
    "OneCycleLR-linear-three-phase": ("Adam", lambda m, o: [m.OneCycleLR(
        o, max_lr=[0.1, 0.05, 0.01], epochs=10, steps_per_epoch=100, anneal_strategy="linear",
        three_phase=True)], None),
    "OneCycleLR-options": ("RMSprop", lambda m, o: [m.OneCycleLR(
        o, max_lr=0.2, total_steps=STEPS + 10, pct_start=0.25, div_factor=10.0, final_div_factor=100.0,
        base_momentum=[0.8, 0.7, 0.6], max_momentum=0.9)], None),
    "OneCycleLR-no-momentum": ("Adagrad", lambda m, o: [m.OneCycleLR(o, max_lr=0.1, total_steps=STEPS,
                                                                     cycle_momentum=False)], None),
    "SequentialLR": ("SGD", lambda m, o: [m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, total_iters=50),
                                                             m.CosineAnnealingLR(o, T_max=950)], milestones=[50])],
                     None),
    "SequentialLR-three": ("Adam", lambda m, o: [m.SequentialLR(o, [m.ConstantLR(o, factor=0.2, total_iters=10),
                                                                    m.ExponentialLR(o, gamma=0.99),
                                                                    m.StepLR(o, step_size=100, gamma=0.5)],
                                                                milestones=[10, 400])], None),
    "ChainedScheduler": ("SGD", lambda m, o: [m.ChainedScheduler([m.ConstantLR(o, factor=0.5, total_iters=20),
                                                                  m.ExponentialLR(o, gamma=0.999)])], None),
    "ChainedScheduler-optimizer": ("AdamW", lambda m, o: [m.ChainedScheduler(
        [m.LinearLR(o, start_factor=0.2, total_iters=100), m.MultiStepLR(o, milestones=[300, 600]),
         m.CosineAnnealingLR(o, T_max=250)], optimizer=o)], None),
    "two-schedulers": ("SGD", lambda m, o: [m.StepLR(o, step_size=50, gamma=0.5), m.ExponentialLR(o, gamma=0.999)],
                       None),
    "ReduceLROnPlateau": ("SGD", lambda m, o: [m.ReduceLROnPlateau(o)], None),
    "ReduceLROnPlateau-options": ("Adam", lambda m, o: [m.ReduceLROnPlateau(
        o, mode="max", factor=0.5, patience=3, threshold=0.01, threshold_mode="abs", cooldown=5,
        min_lr=[1e-4, 1e-3, 1e-5], eps=1e-6)], None),
    "ReduceLROnPlateau-rel-max": ("RMSprop", lambda m, o: [m.ReduceLROnPlateau(
        o, mode="max", patience=0, threshold=0.001, min_lr=1e-3)], None),
    # schedules that end a rounding below 0 (the optimizers step with that lr, as torch's)
    "LinearLR-to-zero-below": ("Adam", lambda m, o: [m.LinearLR(o, start_factor=1 / 3, end_factor=0.0,
                                                                total_iters=5)], None),
    "OneCycleLR-linear-to-the-end": ("SGD", lambda m, o: [m.OneCycleLR(o, max_lr=0.1, total_steps=STEPS,
                                                                       anneal_strategy="linear")], None),
    # floats where torch takes them: counts of epochs of whole values, a fractional T_max, negative
    # eta_min, fractional patience and cooldown, negative threshold, min_lr and eps
    "StepLR-float": ("SGD", lambda m, o: [m.StepLR(o, step_size=30.0, gamma=0.5)], None),
    "StepLR-float-closed-form": ("SGD", lambda m, o: [m.StepLR(o, step_size=7.0, gamma=0.9)], lambda i: i),
    "MultiStepLR-float": ("Adam", lambda m, o: [m.MultiStepLR(o, milestones=[10.0, 200, 200.0, 650.0])], None),
    "MultiStepLR-float-closed-form": ("SGD", lambda m, o: [m.MultiStepLR(o, milestones=(3.0, 500.0))],
                                      lambda i: i),
    "ConstantLR-float": ("SGD", lambda m, o: [m.ConstantLR(o, factor=0.5, total_iters=40.0)], None),
    "LinearLR-float": ("SGD", lambda m, o: [m.LinearLR(o, start_factor=0.1, total_iters=90.0)], lambda i: i),
    "PolynomialLR-float": ("Adam", lambda m, o: [m.PolynomialLR(o, total_iters=800.0, power=2.0)], None),
    "CosineAnnealingLR-float": ("SGD", lambda m, o: [m.CosineAnnealingLR(o, T_max=37.5, eta_min=1e-4)], None),
    "CosineAnnealingLR-float-closed-form": ("Adam", lambda m, o: [m.CosineAnnealingLR(o, T_max=100.0)],
                                            lambda i: i),
    "CosineAnnealingLR-negative-eta_min": ("SGD", lambda m, o: [m.CosineAnnealingLR(o, T_max=1500.0,
                                                                                    eta_min=-1e-3)], None),
    "CosineAnnealingWarmRestarts-negative-eta_min": ("SGD", lambda m, o: [m.CosineAnnealingWarmRestarts(
        o, T_0=10, eta_min=-1e-4)], None),
    "SequentialLR-float": ("SGD", lambda m, o: [m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, total_iters=50),
                                                                   m.CosineAnnealingLR(o, T_max=950.0)],
                                                               milestones=[50.0])], None),
    "ReduceLROnPlateau-floats": ("SGD", lambda m, o: [m.ReduceLROnPlateau(
        o, factor=0.5, patience=2.5, threshold=-1e-3, cooldown=3.0, min_lr=-1.0, eps=-1e-9)], None),
    "ReduceLROnPlateau-abs-negative": ("Adam", lambda m, o: [m.ReduceLROnPlateau(
        o, mode="max", patience=1.0, threshold=-0.01, threshold_mode="abs")], None),
    # torch.optim.swa_utils.SWALR (fastgd.swa_utils): alone, per group, after another scheduler
    # (torch's pattern, here by SequentialLR), beside one, and stepped with an epoch (which it ignores)
    "SWALR": ("SGD", lambda m, o: [swa(m).SWALR(o, swa_lr=0.05)], None),
    "SWALR-linear-per-group": ("Adam", lambda m, o: [swa(m).SWALR(o, swa_lr=[0.01, 0.02, 0.005], anneal_epochs=300,
                                                                  anneal_strategy="linear")], None),
    "SWALR-no-annealing": ("RMSprop", lambda m, o: [m.SequentialLR(o, [m.ExponentialLR(o, gamma=0.995),
                                                                       swa(m).SWALR(o, 0.02, anneal_epochs=0)],
                                                                   milestones=[400])], None),
    "SWALR-after-cosine": ("SGD", lambda m, o: [m.SequentialLR(o, [m.CosineAnnealingLR(o, T_max=800),
                                                                   swa(m).SWALR(o, 0.01, anneal_epochs=50)],
                                                               milestones=[600])], None),
    "SWALR-beside-exponential": ("AdamW", lambda m, o: [m.ExponentialLR(o, gamma=0.999),
                                                        swa(m).SWALR(o, 0.001, anneal_epochs=20)], None),
    "SWALR-epoch": ("SGD", lambda m, o: [swa(m).SWALR(o, 0.05, anneal_epochs=30)], lambda i: 2 * i),
    "SWALR-below-zero": ("SGD", lambda m, o: [swa(m).SWALR(o, -1e-3, anneal_epochs=100)], None),
}


def step_all(schedulers, i, epoch):
    for scheduler in schedulers:
        if isinstance(scheduler, (lr_scheduler.ReduceLROnPlateau, torch_scheduler.ReduceLROnPlateau)):
            scheduler.step(metric(i))
        elif epoch is None:
            scheduler.step()
        else:
            scheduler.step(epoch(i))


def run(case, side, reload_at=None, from_torch=None):
    """The values the schedulers of `case` set over STEPS steps, on one side ("fastgd" or "torch"),
    and the UserWarnings they gave.  reload_at: at that step, save the optimizer and schedulers,
    and go on with new ones loaded from the saves (pickled); from_torch: at that step, the fastgd
    schedulers load the states of the torch ones that run beside them."""
    name, make, epoch = CASES[case]
    fast, theirs = make_pair(name)
    module = lr_scheduler if side == "fastgd" else torch_scheduler
    opt = fast if side == "fastgd" else theirs
    twin = make(torch_scheduler, theirs) if from_torch else None
    rows, last = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schedulers = make(module, opt)
        rows.append(scheduled(opt))
        for i in range(1, STEPS + 1):
            step_optimizer(opt)
            step_all(schedulers, i, epoch)
            if twin:
                step_optimizer(theirs)
                step_all(twin, i, epoch)
                if i == from_torch:
                    for ours, torch_one in zip(schedulers, twin):
                        ours.load_state_dict(torch_one.state_dict())
            if i == reload_at:
                saved = pickle.loads(pickle.dumps((opt.state_dict(), [s.state_dict() for s in schedulers])))
                opt = make_pair(name)[0]
                schedulers = make(module, opt)
                opt.load_state_dict(saved[0])
                for scheduler, state in zip(schedulers, saved[1]):
                    scheduler.load_state_dict(state)
            rows.append(scheduled(opt))
            last.append([s.get_last_lr() for s in schedulers])
    return np.array(rows), np.array(last, dtype=float), [w for w in caught if issubclass(w.category, UserWarning)]


@functools.lru_cache(maxsize=None)
def torch_run(case):
    """torch's run of a case, once for the tests that compare with it."""
    return run(case, "torch")


def assert_same(ours, theirs):
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0, equal_nan=True)


@pytest.mark.parametrize("case", CASES)
def test_same_schedule_as_torch(case):
    ours, ours_last, ours_warnings = run(case, "fastgd")
    theirs, theirs_last, theirs_warnings = torch_run(case)
    assert_same(ours, theirs)
    assert_same(ours_last, theirs_last)
    assert len(ours_warnings) == len(theirs_warnings), ([str(w.message) for w in ours_warnings],
                                                        [str(w.message) for w in theirs_warnings])
    assert not np.isnan(ours[:, :, 0]).any() and ours[1:, :, 0].std() > 0  # the lr moves
    for group in optim_groups_after(case):
        assert type(group["lr"]) is float


def optim_groups_after(case):
    name, make, epoch = CASES[case]
    fast = make_pair(name)[0]
    schedulers = make(lr_scheduler, fast)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(1, 30):
            step_optimizer(fast)
            step_all(schedulers, i, epoch)
    return fast.param_groups


@pytest.mark.parametrize("case", CASES)
def test_state_dict_round_trip_mid_run(case):
    ours = run(case, "fastgd", reload_at=STEPS // 3)
    theirs = torch_run(case)
    assert_same(ours[0], theirs[0])
    assert_same(ours[1], theirs[1])


@pytest.mark.parametrize("case", CASES)
def test_loads_torch_state_dict_mid_run(case):
    ours = run(case, "fastgd", from_torch=STEPS // 2)
    theirs = torch_run(case)
    assert_same(ours[0], theirs[0])


@pytest.mark.parametrize("case", CASES)
def test_state_dict_keys_are_torchs(case):
    name, make, _ = CASES[case]
    fast, theirs = make_pair(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, torchs = make(lr_scheduler, fast), make(torch_scheduler, theirs)
        for i in range(1, 4):
            step_all(ours, i, None)
            step_all(torchs, i, None)
    for mine, other in zip(ours, torchs):
        assert set(mine.state_dict()) == set(other.state_dict())
        assert isinstance(mine, lr_scheduler.LRScheduler)


def as_numpy(state_dict):
    """torch's optimizer state dict with its tensors as arrays (README: t.numpy())."""
    state = {index: {key: value.numpy() if isinstance(value, torch.Tensor) else value for key, value in entry.items()}
             for index, entry in state_dict["state"].items()}
    return {"state": state, "param_groups": state_dict["param_groups"]}


@pytest.mark.parametrize("case", ["StepLR", "CosineAnnealingLR", "CyclicLR", "OneCycleLR"])
def test_states_of_a_tensor_lr_load_as_their_numbers(case):
    """torch's optimizer with a Tensor lr leaves 0-d tensors in its schedulers' base_lrs and
    _last_lr; converted (t.numpy()), they load as their numbers, as the optimizer's state's lr
    does, and the schedule goes on as torch's (fastgd refused them as not numbers)."""
    make = RESUMABLE[case]
    param = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    theirs = torch.optim.Adam([param], lr=torch.tensor(0.01), foreach=False)
    fast = fastgd.Adam([np.zeros(3)], lr=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torchs, ours = make(torch_scheduler, theirs, -1), make(lr_scheduler, fast, -1)
        for _ in range(3):
            step_any(theirs)
            torchs.step()
        numpy = {key: [v.numpy() if isinstance(v, torch.Tensor) else v for v in value] if isinstance(value, list)
                 else value.numpy() if isinstance(value, torch.Tensor) else value
                 for key, value in torchs.state_dict().items()}
        assert all(isinstance(v, np.ndarray) for v in numpy["_last_lr"])
        saved = as_numpy(theirs.state_dict())
        saved["param_groups"] = [{key: value.numpy() if isinstance(value, torch.Tensor) else value
                                  for key, value in group.items()} for group in saved["param_groups"]]
        fast.load_state_dict(saved)
        ours.load_state_dict(numpy)
        assert all(type(v) is float for v in ours.base_lrs + ours.get_last_lr())
        rows = [resumed(scheduler, opt, 20, step_any)[:, :, 0] for scheduler, opt in ((ours, fast), (torchs, theirs))]
    np.testing.assert_allclose(rows[0], rows[1], rtol=1e-6)  # (torch's lr a float32 tensor)


@pytest.mark.parametrize("name", ["SGD", "Adam"])
@pytest.mark.parametrize(("make", "steps"), [
    pytest.param(lambda m, o: m.LinearLR(o, start_factor=1 / 3, end_factor=0.0, total_iters=5), 12, id="LinearLR"),
    pytest.param(lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=100, anneal_strategy="linear"), 100,
                 id="OneCycleLR-linear"),
])
def test_a_schedule_ending_below_zero_trains_and_reloads_as_torch(name, make, steps):
    """LinearLR down to 0, past total_iters, and OneCycleLR's linear run to its end leave an lr a
    rounding below 0 (torch's arithmetic, matched): the optimizers step with it, as torch's, and
    a checkpoint then taken (fastgd's, or torch's) loads and steps on as torch."""
    fast, theirs = make_pair(name)
    ours, torchs = make(lr_scheduler, fast), make(torch_scheduler, theirs)
    for _ in range(steps):
        for opt, scheduler in ((fast, ours), (theirs, torchs)):
            step_optimizer(opt)
            scheduler.step()
    assert min(group["lr"] for group in theirs.param_groups) < 0  # the case at hand
    assert_same(scheduled(fast), scheduled(theirs))
    loaded = []
    for saved in (fast.state_dict(), as_numpy(theirs.state_dict())):
        opt = make_pair(name)[0]
        opt.load_state_dict(copy.deepcopy(saved))
        for group, current in zip(opt.param_groups, fast.param_groups):
            group["params"][0][...] = current["params"][0]
        loaded.append(opt)
    for opt in [fast, theirs] + loaded:
        step_optimizer(opt)
    expected = [group["params"][0].detach().numpy() for group in theirs.param_groups]
    for opt in [fast] + loaded:
        for group, want in zip(opt.param_groups, expected):
            np.testing.assert_allclose(group["params"][0], want, rtol=1e-12, atol=1e-15)


def train_pair(rng, fast, theirs, make, steps):
    """steps of fastgd's optimizer and torch's on the same random gradients, each scheduled by
    make(module, optimizer); asserts the same parameters at the end, returns the momenta seen."""
    ours, torchs = make(lr_scheduler, fast), make(torch_scheduler, theirs)
    momenta = set()
    for _ in range(steps):
        grads = [rng.standard_normal(n) for n in SIZES]
        fast.step(grads)
        for group, grad in zip(theirs.param_groups, grads):
            group["params"][0].grad = torch.tensor(grad)
        theirs.step()
        ours.step()
        torchs.step()
        momenta.add(fast.param_groups[0].get("momentum"))
    for group, tgroup in zip(fast.param_groups, theirs.param_groups):
        np.testing.assert_allclose(group["params"][0], tgroup["params"][0].detach().numpy(), rtol=1e-10, atol=1e-13)
    return momenta


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("scheduler", ["OneCycleLR", "CyclicLR"])
def test_every_optimizer_trains_the_same(name, scheduler):
    """End to end, with gradients: the fastgd step reads the scheduled lr (and momentum or beta1,
    when the optimizer has one) and gives torch's parameters."""
    rng = np.random.default_rng(zlib.crc32(repr((name, scheduler)).encode()))
    fast, theirs = make_pair(name)
    cycles = "momentum" in fast.defaults or "betas" in fast.defaults
    make = {"OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=0.05, total_steps=200, cycle_momentum=cycles),
            "CyclicLR": lambda m, o: m.CyclicLR(o, base_lr=0.001, max_lr=0.05, step_size_up=15,
                                                cycle_momentum=cycles)}[scheduler]
    train_pair(rng, fast, theirs, make, 200)
    for group, tgroup in zip(fast.param_groups, theirs.param_groups):
        assert group["lr"] == pytest.approx(tgroup["lr"], rel=1e-12)


@pytest.mark.parametrize("scheduler", ["OneCycleLR", "CyclicLR"])
def test_momentum_cycled_to_zero_under_nesterov_trains_as_torch(scheduler):
    """base_momentum=0 on a Nesterov SGD: torch checks Nesterov's momentum > 0 in the constructor
    only, and steps plain SGD where the schedule reaches 0; fastgd's step raised there."""
    rng = np.random.default_rng(zlib.crc32(scheduler.encode()))
    fast, theirs = make_pair("SGD", dict(momentum=0.9, nesterov=True))
    make = {"OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=0.05, total_steps=40, base_momentum=0.0),
            "CyclicLR": lambda m, o: m.CyclicLR(o, base_lr=0.001, max_lr=0.05, step_size_up=5,
                                                base_momentum=0.0, max_momentum=0.9)}[scheduler]
    momenta = train_pair(rng, fast, theirs, make, 40)
    assert 0.0 in momenta  # the case at hand


def test_estimator_schedules_are_the_closed_forms():
    """ExponentialLR, StepLR and CosineAnnealingLR stepped to an epoch give the estimators' rates."""
    pytest.importorskip("sklearn")
    for schedule, make in (("exponential", lambda o: lr_scheduler.ExponentialLR(o, gamma=0.7)),
                           ("step", lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.7)),
                           ("cosine", lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=1e-3))):
        model = fastgd.LinearRegression(learning_rate=0.05, lr_schedule=schedule, gamma=0.7, step_size=3,
                                        eta_min=1e-3, max_iter=20)
        opt = fastgd.SGD([np.zeros(1)], lr=0.05)
        scheduler = make(opt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in range(20):
                scheduler.step(epoch)
                assert model._learning_rate(epoch) == opt.param_groups[0]["lr"]


# -- the order of steps, and get_lr outside a step: the same warnings as torch ---------------------------

@pytest.mark.parametrize("module", ["fastgd", "torch"])
def test_warns_when_stepped_before_the_optimizer(module):
    fast, theirs = make_pair("SGD")
    opt, schedulers = (fast, lr_scheduler) if module == "fastgd" else (theirs, torch_scheduler)
    scheduler = schedulers.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before `?optimizer.step"):
        scheduler.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step_optimizer(opt)
        scheduler.step()  # warns once only
        second = schedulers.ExponentialLR(opt, gamma=0.9)  # made after the optimizer stepped
        step_optimizer(opt)
        second.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        scheduler.get_lr()


def test_no_warning_in_order_and_the_step_is_put_back():
    fast, _ = make_pair("Adam")
    scheduler = lr_scheduler.OneCycleLR(fast, max_lr=0.1, total_steps=10)
    assert "step" in vars(fast)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(10):
            step_optimizer(fast)
            scheduler.step()
    assert "step" not in vars(fast)  # the optimizer's own step again, without a wrapper
    assert pickle.loads(pickle.dumps(fast)).param_groups[0]["max_lr"] == 0.1


def test_optimizer_pickles_before_its_first_step():
    fast, _ = make_pair("SGD")
    lr_scheduler.StepLR(fast, step_size=3)
    for twin in (pickle.loads(pickle.dumps(fast)), copy.deepcopy(fast)):
        step_optimizer(twin)
        assert twin._opt_called and "step" not in vars(twin)
    assert "step" in vars(fast)  # the copies' first steps are their own


def stepped_through_a_wrapper(opt, schedulers, wrap_first):
    """The parameters and the number of the wrapper's calls after 5 steps of opt under a user's
    wrapper of opt.step (it halves the gradients), installed before or after a scheduler is made."""
    calls = []

    def wrap():
        old_step = opt.step

        def halved(self, grads=None):
            calls.append(1)
            if grads is not None:  # (fastgd's step takes them; torch's reads .grad)
                return old_step([g / 2 for g in grads])
            for t in (t for group in self.param_groups for t in group["params"]):
                t.grad /= 2
            return old_step()
        opt.step = types.MethodType(halved, opt)

    if wrap_first:
        wrap()
    scheduler = schedulers.StepLR(opt, step_size=2, gamma=0.5)
    if not wrap_first:
        wrap()
    for _ in range(5):
        step_optimizer(opt)
        scheduler.step()
    params = [np.asarray(p.detach() if hasattr(p, "detach") else p).copy()
              for group in opt.param_groups for p in group["params"]]
    return params, len(calls)


@pytest.mark.parametrize("wrap_first", [True, False])
def test_a_users_wrapper_of_the_step_is_kept_as_torchs(wrap_first):
    """A scheduler stands in for the optimizer's step until its first call: the user's own step,
    set before (it was dropped) or after the scheduler (it recursed forever), runs as in torch."""
    fast, theirs = make_pair("SGD")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch warns of a step replaced after its scheduler, even in order)
        got, fast_calls = stepped_through_a_wrapper(fast, lr_scheduler, wrap_first)
        expected, torch_calls = stepped_through_a_wrapper(theirs, torch_scheduler, wrap_first)
    assert fast_calls == torch_calls == 5
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-15)
    assert fast._opt_called and vars(fast)["step"].__name__ == "halved"


def test_a_static_step_of_a_subclass_runs_past_the_stand_in():
    class Counted(fastgd.SGD):
        calls = []

        @staticmethod
        def step(grads=None):
            Counted.calls.append(grads)

    opt = Counted([np.zeros(2)], lr=0.1)
    lr_scheduler.StepLR(opt, step_size=2)
    opt.step("grads")
    assert Counted.calls == ["grads"] and opt._opt_called and "step" not in vars(opt)


@pytest.mark.parametrize("module", ["fastgd", "torch"])
def test_a_step_replaced_after_the_scheduler_and_stepped_second_warns(module):
    fast, theirs = make_pair("SGD")
    opt, schedulers = (fast, lr_scheduler) if module == "fastgd" else (theirs, torch_scheduler)
    scheduler = schedulers.StepLR(opt, step_size=2)
    old_step = opt.step
    opt.step = types.MethodType(lambda self, *args: old_step(*args), opt)
    with pytest.warns(UserWarning, match="(replaced|overridden) after"):
        scheduler.step()
    step_optimizer(opt)
    assert opt._opt_called


def test_a_first_step_kept_without_its_optimizer_says_so():
    # (an unclear TypeError from vars(None); torch's fails on None too)
    params = [np.zeros(3)]
    opt = fastgd.SGD(params, lr=0.1)
    lr_scheduler.StepLR(opt, step_size=3)
    step = opt.step
    del opt
    with pytest.raises(ReferenceError, match="step\\(\\) of an optimizer that no longer exists"):
        step([np.ones(3)])
    assert params[0].tolist() == [0.0] * 3


@pytest.mark.parametrize("name, kwargs", [("StepLR", {"step_size": 3}),
                                          ("OneCycleLR", {"max_lr": 0.1, "total_steps": 10})])
def test_parameters_are_freed_with_a_scheduler_before_the_first_step(name, kwargs):
    """As torch's (whose scheduler refers to the optimizer's step weakly): the parameters go when
    their last user lets go, not when the cycle collector next runs."""
    gc.disable()
    try:
        for module, optimizers, make in ((torch_scheduler, torch.optim, lambda: torch.zeros(3)),
                                         (lr_scheduler, fastgd, lambda: np.zeros(3))):
            params = [make()]
            freed = weakref.ref(params[0])
            kept = getattr(module, name)(optimizers.SGD(params, lr=0.1, momentum=0.9), **kwargs)
            del params, kept
            assert freed() is None, module.__name__
    finally:
        gc.enable()


# -- bad input: a clear error, and nothing changed -----------------------------------------------------

def groups_of(opt):
    return pickle.dumps([{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups])


@pytest.mark.parametrize("make, error, match", [
    (lambda o: lr_scheduler.StepLR([], step_size=3), TypeError, "optimizer must be a fastgd optimizer"),
    (lambda o: lr_scheduler.StepLR(o, step_size=0), ValueError, "step_size"),
    (lambda o: lr_scheduler.StepLR(o, step_size=2, last_epoch=4), KeyError, "initial_lr"),
    (lambda o: lr_scheduler.ConstantLR(o, factor=1.5), ValueError, "factor"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0), ValueError, "start_factor"),
    (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0]), ValueError, "3 param groups"),
    (lambda o: lr_scheduler.MultiplicativeLR(o, 0.9), TypeError, "function"),
    (lambda o: lr_scheduler.MultiStepLR(o, milestones=5), TypeError, "milestones"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "T_0"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, mode="square"), ValueError, "mode"),
    (lambda o: lr_scheduler.CyclicLR(o, [0.01, 0.02], 0.1), ValueError, "base_lr has 2 values"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1), ValueError, "total_steps"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.5), ValueError, "pct_start"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="cosine"), ValueError,
     "anneal_strategy"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="least"), ValueError, "mode"),
    (lambda o: lr_scheduler.ChainedScheduler([]), ValueError, "at least one"),
    # what torch takes but would crash later or schedule nonsense (step by step and step(epoch) apart)
    (lambda o: lr_scheduler.StepLR(o, step_size=2.5), ValueError, "step_size must be a whole number"),
    (lambda o: lr_scheduler.StepLR(o, step_size="3"), TypeError, "step_size must be a real number"),
    (lambda o: lr_scheduler.MultiStepLR(o, milestones=[3, 7.5]), ValueError, "milestone"),
    (lambda o: lr_scheduler.MultiStepLR(o, milestones=[-1]), ValueError, "milestone"),
    (lambda o: lr_scheduler.MultiStepLR(o, milestones={3: -1}), ValueError,
     r"the count of milestone 3 must be an integer >= 0, got -1"),
    # torch's step() takes a float count, its closed form (Counter.elements) fails on it
    (lambda o: lr_scheduler.MultiStepLR(o, milestones={3: 1.0}), ValueError, r"the count of milestone 3"),
    (lambda o: lr_scheduler.MultiStepLR(o, milestones={3: "2"}), TypeError, r"the count of milestone 3"),
    (lambda o: lr_scheduler.MultiStepLR(o, milestones={2.5: 1}), ValueError, "each milestone"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=0), ValueError, "step_size_up"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_down=-1), ValueError, "step_size_down"),
    (lambda o: lr_scheduler.ConstantLR(o, total_iters=4.5), ValueError, "total_iters"),
    (lambda o: lr_scheduler.ConstantLR(o, total_iters=0), ValueError, r"total_iters must be a whole number >= 1"),
    (lambda o: lr_scheduler.ConstantLR(o, total_iters=0.0), ValueError, r"total_iters must be a whole number >= 1"),
    (lambda o: lr_scheduler.LinearLR(o, total_iters=0.0), ValueError, "total_iters"),
    (lambda o: lr_scheduler.PolynomialLR(o, total_iters=float("inf")), ValueError, "total_iters"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0.0), ValueError, "T_max"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=float("nan")), ValueError, "T_max"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=float("nan")), ValueError, "eta_min"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=10.0), ValueError, "T_0"),  # torch refuses it
    # no number: TypeError, as torch's (its comparison with the least value raises); were ValueErrors
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0="2"), TypeError, "T_0 must be an integer >= 1"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=None), TypeError, "T_0 must be an integer >= 1"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1, total_steps="100"), TypeError, "total_steps"),
    (lambda o: lr_scheduler.StepLR(o, 3, last_epoch="3"), TypeError, r"last_epoch must be an integer >= -1"),
    (lambda o: lr_scheduler.StepLR(o, 3, last_epoch=None), TypeError, r"last_epoch must be an integer >= -1"),
    (lambda o: lr_scheduler.StepLR(o, 3, last_epoch=3.0), ValueError, r"last_epoch must be an integer >= -1"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=10, eta_min=None), TypeError, "eta_min"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=-1), ValueError, "patience"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=float("nan")), ValueError, "patience"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold=float("nan")), ValueError, "threshold"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, cooldown=-2), ValueError, "cooldown"),
    (lambda o: lr_scheduler.PolynomialLR(o, total_iters=4, power=-1.0), ValueError, r"power must be a number in \[0"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=0.1), ValueError,
     r"phase 1 of 2 would have no steps \(from step 0 to 0\)"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.0), ValueError,
     r"phase 2 of 2 would have no steps \(from step 9 to 9\)"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=20, pct_start=0.05, three_phase=True), ValueError,
     "phase 1 of 3 would have no steps"),
    # torch's steps would use these (NaN rates and momentums, a negative momentum); fastgd's optimizer
    # refused them at the step the cycle reached them
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, max_momentum=float("nan")), ValueError,
     "max_momentum must be a finite number"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, base_momentum=[0.8, -1.0, 0.8]), ValueError,
     r"base_momentum=-1.0 cannot be param_groups\[1\]'s momentum, which cycles to it: Invalid momentum"),
    (lambda o: lr_scheduler.OneCycleLR(o, 0.1, total_steps=10, base_momentum=float("inf")), ValueError,
     "base_momentum must be a finite number"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, mode="exp_range", gamma=float("nan")), ValueError, "gamma"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, float("inf")), ValueError, r"max_lr must be a number in \[0, inf\)"),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=float("inf")), ValueError, "step_size_up"),
    (lambda o: lr_scheduler.OneCycleLR(o, float("inf"), total_steps=10), ValueError, "max_lr"),
    (lambda o: lr_scheduler.ExponentialLR(o, gamma=float("inf")), ValueError, "gamma must be a finite number"),
    (lambda o: fastgd.swa_utils.SWALR(o, swa_lr=[0.1, 0.2]), ValueError, "swa_lr has 2 values; the optimizer has 3"),
    (lambda o: fastgd.swa_utils.SWALR(o, swa_lr=float("nan")), ValueError, "swa_lr must be a finite number"),
    (lambda o: fastgd.swa_utils.SWALR(o, swa_lr=float("inf")), ValueError, "swa_lr must be a finite number"),
    (lambda o: fastgd.swa_utils.SWALR(o, swa_lr="0.1"), TypeError, "swa_lr must be a real number"),
    (lambda o: fastgd.swa_utils.SWALR(o, 0.1, anneal_epochs=-1), ValueError, "anneal_epochs must be an integer >= 0"),
    (lambda o: fastgd.swa_utils.SWALR(o, 0.1, anneal_epochs=2.0), ValueError, "anneal_epochs"),  # torch refuses it
    (lambda o: fastgd.swa_utils.SWALR(o, 0.1, anneal_strategy="cosine"), ValueError, "anneal_strategy"),
])
def test_bad_arguments(make, error, match):
    fast, _ = make_pair("SGD")
    before = groups_of(fast)
    with pytest.raises(error, match=match):
        make(fast)
    assert groups_of(fast) == before


@pytest.mark.parametrize("end", ["base_momentum", "max_momentum"])
def test_a_cycled_beta1_the_optimizer_refuses_is_refused_at_the_start(end):
    # Adam's beta1 lies in [0, 1): torch's steps would take 1.0 (then divide by 1 - beta1^t = 0)
    fast = fastgd.Adam([np.zeros(2)], lr=0.01)
    before = groups_of(fast)
    with pytest.raises(ValueError, match=rf"{end}=1.0 cannot be param_groups\[0\]'s betas\[0\]"):
        lr_scheduler.CyclicLR(fast, 0.001, 0.01, **{end: 1.0})
    assert groups_of(fast) == before


def test_lr_lambdas_saved_before_a_group_was_added_load_as_torchs():
    """A state saved after add_param_group lists fewer lr_lambdas than a scheduler made on the
    optimizer with the new group; torch loads it: its MultiplicativeLR goes on, and its LambdaLR's
    next step fails (base_lrs then has fewer entries than the groups), as fastgd's."""
    for name in ("MultiplicativeLR", "LambdaLR"):
        outcomes = []
        for module, make_optimizer, new in ((lr_scheduler, fastgd.SGD, lambda: np.zeros(2)),
                                            (torch_scheduler, torch.optim.SGD,
                                             lambda: torch.zeros(2, dtype=torch.float64, requires_grad=True))):
            def fresh():
                return make_optimizer([new()], lr=0.1)
            opt = fresh()
            scheduler = getattr(module, name)(opt, lambda epoch: 0.9)
            for _ in range(3):
                scheduler.step()
            opt.add_param_group({"params": [new()], "lr": 0.05})
            saved = copy.deepcopy((opt.state_dict(), scheduler.state_dict()))
            again = fresh()
            again.add_param_group({"params": [new()], "lr": 0.05})
            resumed = getattr(module, name)(again, lambda epoch: 0.9)
            again.load_state_dict(saved[0])
            resumed.load_state_dict(saved[1])
            rates = []
            try:
                for _ in range(3):
                    resumed.step()
                    rates.append([group["lr"] for group in again.param_groups])
            except ValueError:
                rates.append("ValueError")
            outcomes.append(rates)
        if name == "MultiplicativeLR":
            np.testing.assert_allclose(outcomes[0], outcomes[1], rtol=1e-12)
        else:
            assert outcomes[0] == outcomes[1] == ["ValueError"]


def test_one_cycle_resumed_on_groups_without_its_keys_raises_key_error_as_torch():
    # a group given initial_lr to resume, but not the max_lr and min_lr the run wrote: torch's
    # KeyError, with the advice of LRScheduler's for initial_lr (not that of a group added since)
    fast, theirs = make_pair("SGD")
    for opt in (fast, theirs):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    before = groups_of(fast)
    with pytest.raises(KeyError, match="max_lr"):
        torch_scheduler.OneCycleLR(theirs, 0.1, total_steps=20, last_epoch=4)
    with pytest.raises(KeyError, match=r"has no 'max_lr': resuming a schedule \(last_epoch=4\) needs the optimizer"):
        lr_scheduler.OneCycleLR(fast, 0.1, total_steps=20, last_epoch=4)
    assert groups_of(fast) == before


def test_constant_lr_refuses_total_iters_0_where_torch_step_and_closed_form_part():
    """torch takes ConstantLR(total_iters=0), but its step() keeps lr * factor while step(epoch)'s
    closed form gives the base rate (and its state dict would not load here): refused."""
    _, theirs = make_pair("SGD")
    chained = torch_scheduler.ConstantLR(theirs, factor=0.5, total_iters=0)
    for _ in range(3):
        step_optimizer(theirs)
        chained.step()
    _, other = make_pair("SGD")
    closed = torch_scheduler.ConstantLR(other, factor=0.5, total_iters=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's: step(epoch) deprecated, stepped before the optimizer
        closed.step(3)
    assert chained.get_last_lr() != closed.get_last_lr()  # they part
    fast, _ = make_pair("SGD")
    with pytest.raises(ValueError, match=r"^total_iters must be a whole number >= 1"):
        lr_scheduler.ConstantLR(fast, factor=0.5, total_iters=0)
    assert "initial_lr" not in fast.param_groups[0]


@pytest.mark.parametrize("make, steps", [
    (lambda m, o: m.PolynomialLR(o, total_iters=4, power=-1.0), 4),
    (lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.0), 10),
    (lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=0.1), 0),
])
def test_refused_where_torch_divides_by_zero_later(make, steps):
    """A negative power, or a OneCycleLR phase of no steps: torch's schedule divides by zero within
    its steps (or its constructor), where fastgd refuses the arguments up front, and a state dict
    that holds them (torch's, made before its steps fail)."""
    _, theirs = make_pair("SGD")
    saved = None
    with pytest.raises(ZeroDivisionError):
        scheduler = make(torch_scheduler, theirs)
        saved = scheduler.state_dict()
        for _ in range(steps):
            step_optimizer(theirs)
            scheduler.step()
    fast, _ = make_pair("SGD")
    with pytest.raises(ValueError):
        make(lr_scheduler, fast)
    if saved is not None:  # into a scheduler of the same class made with arguments that work
        ours = {"PolynomialLR": lambda: lr_scheduler.PolynomialLR(fast, total_iters=4),
                "OneCycleLR": lambda: lr_scheduler.OneCycleLR(fast, max_lr=0.1, total_steps=10)}[type(scheduler).__name__]()
        before = ours.state_dict()
        with pytest.raises(ValueError, match="power|phase"):
            ours.load_state_dict(saved)
        assert ours.state_dict() == before


@pytest.mark.parametrize("milestone", [2.5, -1, "3"])
def test_sequential_lr_refuses_fractional_milestones(milestone):
    fast, _ = make_pair("SGD")
    schedulers = [lr_scheduler.ConstantLR(fast), lr_scheduler.ExponentialLR(fast, 0.9)]
    before = groups_of(fast)
    with pytest.raises(TypeError if isinstance(milestone, str) else ValueError, match="milestone"):
        lr_scheduler.SequentialLR(fast, schedulers, milestones=[milestone])
    assert groups_of(fast) == before


@pytest.mark.parametrize("name", ["CyclicLR", "OneCycleLR"])
def test_cycle_momentum_needs_momentum_or_betas(name):
    fast, _ = make_pair("Adagrad")
    before = groups_of(fast)
    with pytest.raises(ValueError, match="'momentum' or 'betas'"):
        getattr(lr_scheduler, name)(fast, 0.1, 0.2) if name == "CyclicLR" else lr_scheduler.OneCycleLR(
            fast, 0.1, total_steps=5)
    assert groups_of(fast) == before


def test_chaining_checks_the_schedulers():
    fast, _ = make_pair("SGD")
    other, _ = make_pair("SGD")
    plateau = lr_scheduler.ReduceLROnPlateau(fast)
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        lr_scheduler.ChainedScheduler([plateau])
    with pytest.raises(ValueError, match="another optimizer"):
        lr_scheduler.SequentialLR(fast, [lr_scheduler.StepLR(fast, 2), lr_scheduler.StepLR(other, 2)], [3])
    with pytest.raises(ValueError, match="one milestone fewer"):
        lr_scheduler.SequentialLR(fast, [lr_scheduler.StepLR(fast, 2)], milestones=[3])
    with pytest.raises(TypeError, match="not a scheduler"):
        lr_scheduler.ChainedScheduler([lr_scheduler.StepLR(fast, 2), "StepLR"])


def test_a_failed_step_changes_nothing():
    fast, _ = make_pair("SGD")
    scheduler = lr_scheduler.OneCycleLR(fast, max_lr=0.1, total_steps=3)
    for _ in range(3):
        step_optimizer(fast)
        scheduler.step()
    state, before = scheduler.state_dict(), groups_of(fast)
    with pytest.raises(ValueError, match="total_steps=3"):
        scheduler.step()
    assert scheduler.state_dict() == state and groups_of(fast) == before
    step = lr_scheduler.StepLR(make_pair("SGD")[0], step_size=2)
    step.optimizer.add_param_group({"params": [np.zeros(2)], "lr": 0.5})
    with pytest.raises(ValueError, match="4 param groups"), pytest.warns(UserWarning):
        step.step(7)
    assert step.last_epoch == 0 and step.state_dict()["_step_count"] == 1


@pytest.mark.parametrize("spoil", ["no end_step", "end_step of no number", "end_step inf", "end_step -inf"])
def test_one_cycle_phases_of_a_state_dict_are_checked(spoil):
    fast, _ = make_pair("SGD")
    scheduler = lr_scheduler.OneCycleLR(fast, max_lr=0.1, total_steps=10)
    saved, before = scheduler.state_dict(), scheduler.state_dict()
    saved["_schedule_phases"] = copy.deepcopy(saved["_schedule_phases"])
    if spoil == "no end_step":
        del saved["_schedule_phases"][0]["end_step"]
    else:  # (an infinite one froze the schedule, or its next step raised "Invalid lr: nan")
        saved["_schedule_phases"][0]["end_step"] = {"end_step of no number": "3", "end_step inf": math.inf,
                                                    "end_step -inf": -math.inf}[spoil]
    with pytest.raises(ValueError, match="phase 1 of 2 has no end_step"):
        scheduler.load_state_dict(saved)
    assert scheduler.state_dict() == before


def test_load_state_dict_checks_first():
    fast, _ = make_pair("SGD")
    scheduler = lr_scheduler.StepLR(fast, step_size=3)
    state = scheduler.state_dict()
    with pytest.raises(TypeError, match="must be a dict"):
        scheduler.load_state_dict([("last_epoch", 3)])
    with pytest.raises(ValueError, match="'T_max'"):
        scheduler.load_state_dict({"last_epoch": 5, "T_max": 3})
    assert scheduler.state_dict() == state
    chained = lr_scheduler.ChainedScheduler([scheduler, lr_scheduler.ExponentialLR(fast, 0.9)])
    saved = chained.state_dict()
    with pytest.raises(ValueError, match="2 schedulers"):
        chained.load_state_dict({**saved, "_schedulers": saved["_schedulers"][:1]})
    with pytest.raises(ValueError, match="ExponentialLR does not have"):
        chained.load_state_dict({**saved, "_schedulers": [saved["_schedulers"][0], {"step_size": 1}]})
    assert chained.state_dict() == saved
    with pytest.raises(TypeError, match="metrics must be a number"):
        lr_scheduler.ReduceLROnPlateau(fast).step("low")


def test_a_subclass_entry_made_at_a_step_loads_as_torchs():
    # an attribute a subclass makes at a step (not in a fresh one) was refused as unknown; torch
    # loads it (the oracle); another scheduler's entries are still refused (test above)
    def counting(module):
        class CountingStepLR(module.StepLR):
            def get_lr(self):
                if self.last_epoch and self.last_epoch % self.step_size == 0:
                    self.decays = getattr(self, "decays", 0) + 1
                return super().get_lr()
        return CountingStepLR

    param = torch.zeros(2, requires_grad=True)
    for module, make in ((torch_scheduler, lambda: torch.optim.SGD([param], lr=0.1)), (lr_scheduler, _sgd)):
        scheduler = counting(module)(make(), 2)
        for _ in range(5):
            scheduler.optimizer.step() if module is torch_scheduler else scheduler.optimizer.step([np.ones(2)])
            scheduler.step()
        fresh = counting(module)(make(), 2)
        fresh.load_state_dict(scheduler.state_dict())
        assert (fresh.decays, fresh.last_epoch) == (2, 5)
    with pytest.raises(ValueError, match=r"entries \['1'\]"):  # (not a name)
        lr_scheduler.StepLR(_sgd(), 2).load_state_dict({1: 2})


def test_import_and_attribute():
    import fastgd.lr_scheduler as imported

    assert imported is fastgd.lr_scheduler is lr_scheduler
    assert set(lr_scheduler.__all__) == set(torch_scheduler.__all__)


def test_a_scheduler_that_fails_to_start_changes_nothing():
    def failing(x):
        raise ArithmeticError("the user's function failed")

    for make in (lambda o: lr_scheduler.LambdaLR(o, failing),
                 lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, scale_fn=failing)):
        fast, _ = make_pair("SGD")
        before = groups_of(fast)
        with pytest.raises(ArithmeticError, match="user's function"):
            make(fast)
        assert groups_of(fast) == before and "step" not in vars(fast)
        step_optimizer(fast)


RESUMABLE = {
    "LambdaLR": lambda m, o, e: m.LambdaLR(o, lambda epoch: 0.99 ** epoch, last_epoch=e),
    "MultiplicativeLR": lambda m, o, e: m.MultiplicativeLR(o, lambda epoch: 0.99, last_epoch=e),
    "StepLR": lambda m, o, e: m.StepLR(o, step_size=7, gamma=0.5, last_epoch=e),
    "MultiStepLR": lambda m, o, e: m.MultiStepLR(o, milestones=[20, 60, 90], last_epoch=e),
    "ConstantLR": lambda m, o, e: m.ConstantLR(o, factor=0.5, total_iters=60, last_epoch=e),
    "LinearLR": lambda m, o, e: m.LinearLR(o, start_factor=0.2, total_iters=80, last_epoch=e),
    "ExponentialLR": lambda m, o, e: m.ExponentialLR(o, gamma=0.98, last_epoch=e),
    "PolynomialLR": lambda m, o, e: m.PolynomialLR(o, total_iters=120, power=1.5, last_epoch=e),
    "CosineAnnealingLR": lambda m, o, e: m.CosineAnnealingLR(o, T_max=60, eta_min=1e-4, last_epoch=e),
    "CosineAnnealingWarmRestarts": lambda m, o, e: m.CosineAnnealingWarmRestarts(o, T_0=9, T_mult=2, last_epoch=e),
    "CyclicLR": lambda m, o, e: m.CyclicLR(o, 0.001, 0.1, step_size_up=13, last_epoch=e),
    "OneCycleLR": lambda m, o, e: m.OneCycleLR(o, max_lr=0.1, total_steps=300, last_epoch=e),
    "SWALR": lambda m, o, e: swa(m).SWALR(o, 0.01, anneal_epochs=30, anneal_strategy="linear", last_epoch=e),
}


@pytest.mark.parametrize("case", RESUMABLE)
def test_resumed_with_last_epoch(case):
    """A scheduler made with last_epoch=40 on groups that carry a run's keys (initial_lr and the
    like, from a scheduler made before) goes on as torch's."""
    make = RESUMABLE[case]
    fast, theirs = make_pair("SGD")
    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module, opt in ((lr_scheduler, fast), (torch_scheduler, theirs)):
            make(module, opt, -1)  # the keys a run leaves in the groups
            rows[module] = resumed(make(module, opt, 40), opt, 200, step_optimizer)
    assert_same(rows[lr_scheduler], rows[torch_scheduler])


def resumed(scheduler, opt, steps, step):
    """The scheduled values of a resumed scheduler's run, before it and after each of `steps` steps."""
    values = [scheduled(opt)]
    for _ in range(steps):
        step(opt)
        scheduler.step()
        values.append(scheduled(opt))
    return np.array(values)


def step_any(opt):
    """An optimizer step with a gradient of 0.1 for every parameter of every group."""
    params = [p for group in opt.param_groups for p in group["params"]]
    if isinstance(opt, optim.Optimizer):
        opt.step([np.full(np.shape(p), 0.1) for p in params])
    else:
        for t in params:
            t.grad = torch.full(t.shape, 0.1, dtype=torch.float64)
        opt.step()


@pytest.mark.parametrize("case", RESUMABLE)
def test_a_group_added_with_a_schedulers_keys_as_torch(case):
    """add_param_group takes a group copied from another after a scheduler ran (its initial_lr,
    max_lr, ...), as torch does; a scheduler resumed on the groups then goes on as torch's."""
    make = RESUMABLE[case]
    fast, theirs = make_pair("SGD")
    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module, opt, new in ((lr_scheduler, fast, np.zeros(2)),
                                 (torch_scheduler, theirs, torch.zeros(2, dtype=torch.float64, requires_grad=True))):
            scheduler = make(module, opt, -1)
            for _ in range(5):
                step_any(opt)
                scheduler.step()
            copied = {key: value for key, value in opt.param_groups[1].items() if key != "params"}
            opt.add_param_group({**copied, "params": [new], "initial_lr": 0.02})
            rows[module] = resumed(make(module, opt, 40), opt, 100, step_any)
    assert rows[lr_scheduler].shape[1] == 4
    assert_same(rows[lr_scheduler], rows[torch_scheduler])


#: schedulers that go on after add_param_group in torch (from the groups' rates, or each group's keys)
GOING_ON = {
    "StepLR": lambda m, o: m.StepLR(o, 2, 0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, [2, 5], 0.5),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, 0.9),
    "ConstantLR": lambda m, o: m.ConstantLR(o, 0.5, 6),
    "LinearLR": lambda m, o: m.LinearLR(o, 0.5, 1.0, 8),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, 9, 2.0),
    "ReduceLROnPlateau": lambda m, o: m.ReduceLROnPlateau(o, patience=0),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler([m.ConstantLR(o, 0.5, 4), m.ExponentialLR(o, 0.9)]),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=30),
    "SWALR": lambda m, o: swa(m).SWALR(o, 0.01, anneal_epochs=8),
}


@pytest.mark.parametrize("order", ["as the run", "scheduler last"])
@pytest.mark.parametrize("case", GOING_ON)
def test_a_state_saved_after_a_group_was_added_loads_as_torchs(case, order):
    """A run adds a group (copied from another, with the keys schedulers keep) to an optimizer whose
    scheduler goes on stepping it; the optimizer's and scheduler's states saved then load into new
    ones, the group added before or after the new scheduler is made, and the run goes on as
    torch's.  fastgd refused the scheduler's state (its base_lrs and _last_lr of two lengths), and
    its OneCycleLR stopped at the added group."""
    make = GOING_ON[case]
    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in (lr_scheduler, torch_scheduler):
            fast = module is lr_scheduler
            new = (lambda: np.zeros(2)) if fast else (lambda: torch.zeros(2, dtype=torch.float64, requires_grad=True))
            build = fastgd.SGD if fast else torch.optim.SGD
            params = [new(), new()]
            opt = build([params[0]], lr=0.1, momentum=0.9)
            scheduler = make(module, opt)

            def step(opt, scheduler, metric):
                step_any(opt)
                scheduler.step(metric) if case == "ReduceLROnPlateau" else scheduler.step()
                return scheduled(opt)

            for i in range(4):
                step(opt, scheduler, 1.0)
            copied = {key: value for key, value in opt.param_groups[0].items() if key != "params"}
            added = {**copied, "params": [params[1]], "lr": 0.05}
            opt.add_param_group(added)
            values = [step(opt, scheduler, 2.0 + i) for i in range(3)]
            saved = copy.deepcopy((opt.state_dict(), scheduler.state_dict()))
            again = build([params[0]], lr=0.1, momentum=0.9)
            if order == "scheduler last":
                again.add_param_group(dict(added))
            resumed = make(module, again)
            if order == "as the run":
                again.add_param_group(dict(added))
            again.load_state_dict(saved[0])
            resumed.load_state_dict(saved[1])
            for opt, scheduler in ((opt, scheduler), (again, resumed)):
                values += [step(opt, scheduler, 5.0 - i) for i in range(6)]
            rows[module] = np.array(values)
    assert rows[lr_scheduler].shape[1] == 2
    assert_same(rows[lr_scheduler], rows[torch_scheduler])
    assert_same(rows[lr_scheduler][3:9], rows[lr_scheduler][9:])  # the resumed run is the run


def test_scheduler_keys_are_the_keys_schedulers_keep():
    """optim.SCHEDULER_KEYS, which add_param_group takes beside the options, are the keys the
    schedulers write into groups: no more, no fewer."""
    written = set()
    for case, (name, make, epoch) in CASES.items():
        fast = make_pair(name)[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            schedulers = make(lr_scheduler, fast)
            for i in range(1, 5):
                step_optimizer(fast)
                step_all(schedulers, i, epoch)
        for group in fast.param_groups:
            written |= set(group) - set(fast.defaults) - {"params"}
    assert written == optim.SCHEDULER_KEYS
    opt = fastgd.SGD([np.zeros(1)], lr=0.1)
    with pytest.raises(ValueError, match="unknown option 'initial_lrr'.*keys schedulers keep: base_momentum"):
        opt.add_param_group({"params": [np.zeros(2)], "initial_lrr": 0.1})
    assert len(opt.param_groups) == 1
    opt.add_param_group({"params": [np.zeros(2)], "lr": 0.01, "initial_lr": 0.01})
    assert opt.param_groups[1]["initial_lr"] == 0.01


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_a_failed_cycling_step_leaves_the_momentum(name):
    """CyclicLR and OneCycleLR set the momentum (or beta1) before the rates: a step that then
    raises (a group added since) puts it back."""
    for make in (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=4),
                 lambda o: lr_scheduler.OneCycleLR(o, 0.1, total_steps=20)):
        fast, _ = make_pair(name)
        scheduler = make(fast)
        for _ in range(2):
            step_optimizer(fast)
            scheduler.step()
        fast.add_param_group({"params": [np.zeros(2)]})
        state, before = scheduler.state_dict(), groups_of(fast)
        with pytest.raises((ValueError, KeyError), match="4 param groups|initial_lr"):  # OneCycleLR: as torch
            scheduler.step()
        assert scheduler.state_dict() == state and groups_of(fast) == before


def combined(kind, fast):
    first = lr_scheduler.LambdaLR(fast, lambda e: 0.9 ** e)
    second = lr_scheduler.OneCycleLR(fast, 0.1, total_steps=3)
    if kind == "SequentialLR":
        return lr_scheduler.SequentialLR(fast, [first, second], milestones=[2])
    return lr_scheduler.ChainedScheduler([first, second])


@pytest.mark.parametrize("kind", ["SequentialLR", "ChainedScheduler"])
def test_a_combined_scheduler_that_fails_changes_nothing(kind):
    """A later scheduler raising, in load_state_dict or in step, leaves the combined one, the
    schedulers before it and the groups as they were."""
    fast, _ = make_pair("SGD")
    scheduler = combined(kind, fast)
    step_optimizer(fast)
    scheduler.step()
    saved = scheduler.state_dict()
    bad = copy.deepcopy(saved)
    bad["_last_lr"] = [9.0] * 3
    bad["_schedulers"][0]["last_epoch"] = 777
    bad["_schedulers"][1]["lr_lambdas"] = [None]  # OneCycleLR has none: refused
    before = groups_of(fast)
    with pytest.raises(ValueError, match="lr_lambdas"):
        scheduler.load_state_dict(bad)
    assert scheduler.state_dict() == saved and groups_of(fast) == before
    bad = copy.deepcopy(saved)
    bad["_schedulers"][0]["lr_lambdas"] = [None] * (len(fast.param_groups) + 1)  # more than the groups
    with pytest.raises(ValueError, match="lr_lambdas"):
        scheduler.load_state_dict(bad)
    assert scheduler.state_dict() == saved
    with pytest.raises(ValueError, match="total_steps=3"):  # OneCycleLR stepped past its end
        for _ in range(10):
            saved, before = scheduler.state_dict(), groups_of(fast)
            step_optimizer(fast)
            scheduler.step()
    assert scheduler.state_dict() == saved and groups_of(fast) == before


def _sgd():
    return fastgd.SGD([np.zeros(2)], lr=1.0, momentum=0.9)


@pytest.mark.parametrize(("make", "bad"), [
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2), {"step_size": 0}),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2), {"last_epoch": "abc"}),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2), {"base_lrs": [0.1, 0.2, 0.3]}),
    (lambda: lr_scheduler.CosineAnnealingLR(_sgd(), T_max=10), {"T_max": 0}),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd()), {"best": "x"}),
    (lambda: lr_scheduler.CyclicLR(_sgd(), base_lr=0.1, max_lr=1.0), {"mode": "bogus"}),
    (lambda: lr_scheduler.CyclicLR(_sgd(), base_lr=0.1, max_lr=1.0), {"step_ratio": 0.0}),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=1.0, total_steps=10), {"_anneal_func_type": "bogus"}),
    (lambda: lr_scheduler.SequentialLR(*(lambda o: (o, [lr_scheduler.ConstantLR(o), lr_scheduler.ExponentialLR(o, 0.9)]))(_sgd()),
                                       milestones=[3]), {"_milestones": "3"}),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2), {"gamma": float("nan")}),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2), {"step_size": 2.5}),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2), {"_step_count": 1.5}),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2), {"base_lrs": [float("nan")]}),
    (lambda: lr_scheduler.LinearLR(_sgd()), {"total_iters": 0}),
    # counts of steps finite (else the schedule froze, or a later step raised OverflowError)
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2), {"step_size": float("inf")}),
    (lambda: lr_scheduler.CosineAnnealingLR(_sgd(), T_max=10), {"T_max": float("inf")}),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=1.0, total_steps=10), {"total_steps": float("inf")}),
    (lambda: lr_scheduler.CyclicLR(_sgd(), base_lr=0.1, max_lr=1.0), {"last_epoch": float("inf")}),
    (lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=3), {"T_cur": -float("inf")}),
    (lambda: lr_scheduler.SequentialLR(*(lambda o: (o, [lr_scheduler.ConstantLR(o), lr_scheduler.ExponentialLR(o, 0.9)]))(_sgd()),
                                       milestones=[3]), {"_milestones": [float("inf")]}),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd()), {"cooldown_counter": float("nan")}),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd()), {"num_bad_epochs": -float("inf")}),
    # what a step multiplies or adds, finite as the constructor takes it (else a NaN or inf rate)
    (lambda: lr_scheduler.CosineAnnealingLR(_sgd(), T_max=10), {"eta_min": float("inf")}),
    (lambda: lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=3), {"eta_min": -float("inf")}),
    (lambda: lr_scheduler.ExponentialLR(_sgd(), 0.9), {"gamma": float("inf")}),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2), {"gamma": float("inf")}),
    (lambda: lr_scheduler.CyclicLR(_sgd(), base_lr=0.1, max_lr=1.0), {"gamma": float("inf")}),
    (lambda: lr_scheduler.CyclicLR(fastgd.SGD([np.zeros(2)], lr=0.1, momentum=0.9), base_lr=0.01, max_lr=0.1),
     {"max_momentums": [float("inf")]}),
    # the milestones by the constructor's rules (torch's constructor takes these, and its state
    # then makes step() and step(epoch) part, or each step raise)
    (lambda: lr_scheduler.MultiStepLR(_sgd(), [2]), {"milestones": {3: -1}}),
    (lambda: lr_scheduler.MultiStepLR(_sgd(), [2]), {"milestones": {3: 2.5}}),
    (lambda: lr_scheduler.MultiStepLR(_sgd(), [2]), {"milestones": {3.5: 1}}),
    # lists a step zips together, of two lengths (a group's momentum would not cycle)
    (lambda: lr_scheduler.CyclicLR(fastgd.SGD([{"params": [np.zeros(2)]}, {"params": [np.zeros(2)]}], lr=0.1,
                                              momentum=0.9), base_lr=0.01, max_lr=0.1), {"base_momentums": [0.8]}),
    (lambda: fastgd.swa_utils.SWALR(_sgd(), 0.1), {"_anneal_strategy": "cosine"}),
    (lambda: fastgd.swa_utils.SWALR(_sgd(), 0.1), {"anneal_epochs": 2.5}),
])
def test_load_state_dict_checks_the_values(make, bad):
    """torch loads any values (and fails at a later step, or never); fastgd refuses what it cannot
    step with at the load, changing nothing."""
    scheduler = make()
    before = scheduler.state_dict()
    with pytest.raises(ValueError, match="state_dict|mode|anneal"):
        scheduler.load_state_dict(bad)
    assert scheduler.state_dict() == before
    scheduler.load_state_dict(before)  # a state it saved loads


def _momentum_sgd():
    return fastgd.SGD([np.zeros(2)], lr=0.1, momentum=0.9)


# each argument a scheduler keeps as an entry of its name, with a scheduler made from it
KEPT_ARGUMENTS = [
    (lambda o, v: lr_scheduler.StepLR(o, step_size=v), "step_size"),
    (lambda o, v: lr_scheduler.StepLR(o, step_size=2, gamma=v), "gamma"),
    (lambda o, v: lr_scheduler.MultiStepLR(o, [2], gamma=v), "gamma"),
    (lambda o, v: lr_scheduler.ConstantLR(o, factor=v), "factor"),
    (lambda o, v: lr_scheduler.ConstantLR(o, total_iters=v), "total_iters"),
    (lambda o, v: lr_scheduler.LinearLR(o, start_factor=v), "start_factor"),
    (lambda o, v: lr_scheduler.LinearLR(o, end_factor=v), "end_factor"),
    (lambda o, v: lr_scheduler.LinearLR(o, total_iters=v), "total_iters"),
    (lambda o, v: lr_scheduler.ExponentialLR(o, gamma=v), "gamma"),
    (lambda o, v: lr_scheduler.PolynomialLR(o, total_iters=v), "total_iters"),
    (lambda o, v: lr_scheduler.PolynomialLR(o, power=v), "power"),
    (lambda o, v: lr_scheduler.CosineAnnealingLR(o, T_max=v), "T_max"),
    (lambda o, v: lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=v), "eta_min"),
    (lambda o, v: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=v), "T_0"),
    (lambda o, v: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=v), "T_mult"),
    (lambda o, v: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3, eta_min=v), "eta_min"),
    (lambda o, v: lr_scheduler.CyclicLR(o, base_lr=0.01, max_lr=0.1, gamma=v), "gamma"),
    (lambda o, v: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=v), "total_steps"),
    (lambda o, v: lr_scheduler.ReduceLROnPlateau(o, factor=v), "factor"),
    (lambda o, v: lr_scheduler.ReduceLROnPlateau(o, patience=v), "patience"),
    (lambda o, v: lr_scheduler.ReduceLROnPlateau(o, cooldown=v), "cooldown"),
    (lambda o, v: lr_scheduler.ReduceLROnPlateau(o, threshold=v), "threshold"),
    (lambda o, v: lr_scheduler.ReduceLROnPlateau(o, eps=v), "eps"),
    (lambda o, v: fastgd.swa_utils.SWALR(o, 0.05, anneal_epochs=v), "anneal_epochs"),
]
KEPT_VALUES = [-3, -1.0, 0, 0.0, 5e-324, 0.5, 1, 1.0, 2, 2.5, 3, 1e300, float("inf"), -float("inf")]


@pytest.mark.parametrize("make, name", KEPT_ARGUMENTS, ids=[f"{i}-{name}" for i, (_, name) in enumerate(KEPT_ARGUMENTS)])
def test_a_loaded_argument_is_checked_by_the_constructors_rule(make, name):
    """What the constructor refuses for an argument it keeps, load_state_dict refuses for that
    entry, changing nothing (the constructor is the oracle); a loaded start_factor of 0 made
    LinearLR's next step divide by zero, an end_factor of -1 too, a negative anneal_epochs or a
    factor of 5 stepped on.  What it takes, a state holding it loads."""
    for value in KEPT_VALUES:
        try:
            make(_momentum_sgd(), value)
            taken = True
        except (TypeError, ValueError):
            taken = False
        default = 0.5 if name in ("factor", "start_factor", "end_factor", "gamma") else 3
        scheduler = make(_momentum_sgd(), default)
        before = scheduler.state_dict()
        state = {**before, name: value}
        if taken:
            scheduler.load_state_dict(state)
            assert getattr(scheduler, name) == value
        else:
            with pytest.raises(ValueError, match=rf"state_dict\['{name}'\]"):
                scheduler.load_state_dict(state)
            assert scheduler.state_dict() == before


def test_a_subclasss_own_arrays_load_as_they_were():
    """Only the lists of a number per group take 0-d arrays as their numbers (torch's Tensor lr);
    a subclass's own array entries round-trip as arrays."""
    class Buffered(lr_scheduler.StepLR):
        def __init__(self, optimizer):
            self.buffer, self.listed = np.array(0.5), [np.array(1.0)]
            super().__init__(optimizer, step_size=2)

    scheduler = Buffered(_sgd())
    scheduler.load_state_dict(scheduler.state_dict())
    assert type(scheduler.buffer) is np.ndarray and type(scheduler.listed[0]) is np.ndarray


@pytest.mark.parametrize("case", CASES)
def test_every_entry_of_fastgds_schedulers_is_checked_on_load(case):
    # load_state_dict checks the entries lr_scheduler._ENTRIES names (a subclass's own, as torch, not)
    name, make, _ = CASES[case]
    for scheduler in make(lr_scheduler, make_pair(name)[0]):
        for inner in [scheduler, *getattr(scheduler, "_schedulers", [])]:
            assert set(vars(inner)) <= lr_scheduler._ENTRIES


def test_a_subclasss_own_entries_load_whatever_they_became():
    # they were checked against a new scheduler's: a list that grew, or None for a number, was refused
    class Kept(lr_scheduler._LRScheduler):  # (torch's older name, which torch keeps)
        def __init__(self, optimizer):
            self.history, self.lowest = [], 0.0
            super().__init__(optimizer)

        def get_lr(self):
            self.history.append(self.last_epoch)
            self.lowest = None if self.last_epoch > 2 else self.lowest
            return [base * 0.9 ** self.last_epoch for base in self.base_lrs]

    opt = _sgd()
    scheduler = Kept(opt)
    for _ in range(4):
        opt.step([np.zeros(2)])
        scheduler.step()
    again = Kept(_sgd())
    again.load_state_dict(scheduler.state_dict())
    assert again.history == [0, 1, 2, 3, 4] and again.lowest is None and again.last_epoch == 4
    assert isinstance(again, lr_scheduler.LRScheduler) and issubclass(torch_scheduler._LRScheduler,
                                                                       torch_scheduler.LRScheduler)


@pytest.mark.parametrize("source", ["fastgd", "torch"])
def test_reduce_lr_on_plateau_reloads_mid_cooldown_of_a_fractional_cooldown(source):
    # the cooldown counts down from 2.5 through 1.5 and 0.5: the load wanted a whole number
    fast, theirs = make_pair("SGD")
    make = {"cooldown": 2.5, "patience": 0, "min_lr": 0.0}
    ours, twin = lr_scheduler.ReduceLROnPlateau(fast, **make), torch_scheduler.ReduceLROnPlateau(theirs, **make)
    lrs = []
    for i in range(1, 13):
        step_optimizer(fast)
        step_optimizer(theirs)
        ours.step(1.0)
        twin.step(1.0)
        if i == 3:
            assert ours.cooldown_counter == twin.cooldown_counter == 1.5
            saved = (ours if source == "fastgd" else twin).state_dict()
            ours = lr_scheduler.ReduceLROnPlateau(fast, min_lr=[0.0] * len(GROUP_LRS))  # (None for default_min_lr)
            ours.load_state_dict(saved)
        lrs.append((ours.get_last_lr(), twin.get_last_lr()))
    assert_same(*(np.array(side) for side in zip(*lrs)))


def test_sequential_lr_takes_schedulers_of_schedulers_first_only():
    opt = _sgd()
    chained = lr_scheduler.ChainedScheduler([lr_scheduler.ExponentialLR(opt, 0.9)])
    with pytest.raises(ValueError, match=r"schedulers\[1\] is a ChainedScheduler"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.LinearLR(opt, 0.5, total_iters=3), chained], milestones=[2])


def test_a_failed_sequential_lr_changes_neither_the_groups_nor_the_schedulers():
    # its first step fails on a group added since the schedulers were made: the groups' lr were
    # left reset to initial_lr and the schedulers' last_epoch one down (torch leaves the second)
    opt = fastgd.SGD([np.zeros(2)], lr=0.1)
    first, second = lr_scheduler.LambdaLR(opt, lambda e: 0.5 ** e), lr_scheduler.StepLR(opt, 2)
    for _ in range(3):
        first.step()
    opt.add_param_group({"params": [np.zeros(2)], "lr": 0.5, "initial_lr": 0.5})
    before = ([g["lr"] for g in opt.param_groups], first.state_dict(), second.state_dict())
    with pytest.raises(ValueError, match="made for 1"):
        lr_scheduler.SequentialLR(opt, [first, second], milestones=[5])
    assert ([g["lr"] for g in opt.param_groups], first.state_dict(), second.state_dict()) == before
    assert before[0] == [0.0125, 0.5]


def test_a_state_holding_an_object_that_does_not_copy_is_saved_and_loaded_as_torch_does():
    # state_dict() deep-copied every entry: a callable lr_lambda holding a lock (or a subclass's
    # attribute holding a file or writer) raised "cannot pickle '_thread.lock' object", where
    # torch's returns the state, the lock in it shared; lists are still copies both ways
    torch = pytest.importorskip("torch")

    class Halving:
        def __init__(self):
            self.lock, self.factor = threading.Lock(), 0.5

        def __call__(self, epoch):
            return self.factor ** epoch

    param = torch.zeros(2, requires_grad=True)
    theirs = torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([param], lr=1.0), Halving())
    ours = lr_scheduler.LambdaLR(_sgd(), Halving())
    for scheduler in (theirs, ours):
        scheduler.step()
        saved = scheduler.state_dict()
        assert saved["lr_lambdas"][0]["lock"] is scheduler.lr_lambdas[0].lock
        saved["base_lrs"].append(7.0)  # (torch's shares its lists: ours does not)
    assert ours.base_lrs == [1.0]
    saved = ours.state_dict()
    saved["lr_lambdas"][0]["factor"] = 0.25
    fresh = lr_scheduler.LambdaLR(_sgd(), Halving())
    fresh.load_state_dict(saved)
    saved["base_lrs"][0] = 3.0
    assert fresh.base_lrs == [1.0] and fresh.lr_lambdas[0].factor == 0.25
    fresh.step()
    assert fresh.get_last_lr() == [0.25 ** 2]


def test_a_function_without_attributes_is_saved_as_a_function_and_a_slotted_object_is_named():
    # state_dict() raised "vars() argument must have __dict__ attribute" for both (torch's fails too)
    class Slotted:
        __slots__ = ("factor",)

        def __init__(self):
            self.factor = 0.5

        def __call__(self, epoch):
            return self.factor ** epoch

    for function in (math.exp, np.exp):
        scheduler = lr_scheduler.LambdaLR(_sgd(), function)
        scheduler.step()
        saved = scheduler.state_dict()
        assert saved["lr_lambdas"] == [None]
        fresh = lr_scheduler.LambdaLR(_sgd(), function)
        fresh.load_state_dict(saved)
        assert fresh.last_epoch == 1 and fresh.get_last_lr() == scheduler.get_last_lr() == [math.e]
    with pytest.raises(TypeError, match="this scheduler's Slotted object has none"):
        lr_scheduler.LambdaLR(_sgd(), Slotted()).state_dict()


def test_a_cycled_momentum_the_optimizer_refuses_is_refused_by_the_schedulers_step():
    # a scale above 1 (exp_range with gamma > 1, a scale_fn's) cycled the momentum below
    # base_momentum, past 0: the scheduler wrote it, and the optimizer's next step raised
    # "Invalid momentum", the schedule already moved on; the scheduler's step refuses it, changing nothing
    for make in (lambda o: lr_scheduler.CyclicLR(o, 0.001, 0.01, step_size_up=5, mode="exp_range", gamma=1.3),
                 lambda o: lr_scheduler.CyclicLR(o, 0.001, 0.01, step_size_up=5, scale_fn=lambda x: 20.0)):
        opt = fastgd.SGD([np.zeros(3)], lr=0.1, momentum=0.9)
        scheduler = make(opt)
        for _ in range(40):
            before = (scheduler.state_dict(), [dict(group, params=None) for group in opt.param_groups])
            opt.step([np.full(3, 0.1)])  # (raised, the momentum refused, before)
            try:
                scheduler.step()
            except ValueError as error:
                assert "cycles param_groups[0]'s momentum to -" in str(error) and "Invalid momentum" in str(error)
                assert (scheduler.state_dict(), [dict(group, params=None) for group in opt.param_groups]) == before
                break
        else:
            raise AssertionError("the momentum never left the optimizer's range")
        opt.step([np.full(3, 0.1)])  # the optimizer steps on with the last momentum written
    # ends loaded that the optimizer refuses: refused by the load, as by the constructor (were
    # taken, and the cycle wrote them unchecked)
    scheduler = lr_scheduler.CyclicLR(fastgd.SGD([np.zeros(3)], lr=0.1, momentum=0.9), 0.001, 0.01)
    saved = dict(scheduler.state_dict(), base_momentums=[-0.5])
    before = scheduler.state_dict()
    with pytest.raises(ValueError, match=r"state_dict\['base_momentums'\]\[0\]=-0.5 cannot be param_groups\[0\]'s"):
        scheduler.load_state_dict(saved)
    assert scheduler.state_dict() == before


def test_a_callables_attributes_are_saved_and_loaded_sharing_what_they_refer_to_as_torch_does():
    # they were deep copies: after load_state_dict(state_dict()) (a rollback to an in-memory
    # checkpoint), an lr_lambda or scale_fn object read a frozen copy of the tracker it refers to,
    # and the schedule stopped following the training loop, where torch's goes on following it
    torch = pytest.importorskip("torch")

    class Tracker:
        plateaus = 0

    class Halving:  # lr_lambda and scale_fn both: halves at each plateau the tracker has seen
        def __init__(self, tracker):
            self.tracker = tracker

        def __call__(self, epoch):
            return 0.5 ** self.tracker.plateaus

    def makes(module):
        return [lambda o, t: module.LambdaLR(o, Halving(t)),
                lambda o, t: module.CyclicLR(o, 0.01, 0.1, 4, scale_fn=Halving(t))]

    for make, make_theirs in zip(makes(lr_scheduler), makes(torch_scheduler)):
        sequences = []
        for maker, opt in ((make, fastgd.SGD([np.zeros(2)], lr=0.1, momentum=0.9)),
                           (make_theirs, torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9))):
            tracker = Tracker()
            scheduler = maker(opt, tracker)
            scheduler.load_state_dict(scheduler.state_dict())
            lrs = []
            for epoch in range(8):
                tracker.plateaus += epoch in (2, 5)
                opt.step([np.zeros(2)]) if isinstance(opt, fastgd.SGD) else opt.step()
                scheduler.step()
                lrs.append(opt.param_groups[0]["lr"])
            sequences.append(lrs)
        np.testing.assert_allclose(sequences[0], sequences[1], rtol=1e-12)
        assert len(set(sequences[0])) > 2  # (the tracker's plateaus show)


def test_a_state_is_a_copy_but_for_the_optimizer_and_what_does_not_copy():
    # containers alone were copied after the deep copy was dropped (for a lock): a subclass's
    # deque or set that a step updates was shared by the saved state and by a scheduler loaded
    # from it; now every entry is a deep copy but the optimizer (a callable holding it shares
    # it, as torch does) and what cannot be copied
    import collections

    class Remembering(lr_scheduler.StepLR):
        def get_lr(self):
            self.seen = getattr(self, "seen", collections.deque()) + collections.deque([self.last_epoch])
            self.marks = getattr(self, "marks", set()) | {self.last_epoch}
            self.seen.append(-1)  # (in place too)
            return super().get_lr()

    opt = _sgd()
    scheduler = Remembering(opt, 2)
    scheduler.step()
    saved = scheduler.state_dict()
    scheduler.step()
    scheduler.seen.append(99)
    scheduler.marks.add(99)
    assert 99 not in saved["seen"] and 99 not in saved["marks"]
    fresh = Remembering(_sgd(), 2)
    fresh.load_state_dict(saved)
    assert fresh.seen is not saved["seen"] and fresh.marks is not saved["marks"]

    class Holding:
        def __init__(self, optimizer):
            self.optimizer, self.factor = optimizer, 0.5

        def __call__(self, epoch):
            return self.factor ** epoch

    holding = lr_scheduler.LambdaLR(opt, Holding(opt))
    assert holding.state_dict()["lr_lambdas"][0]["optimizer"] is opt


@pytest.mark.parametrize("key", ["step", "get_lr", "optimizer"])
def test_a_state_naming_a_method_or_the_optimizer_is_refused(key):
    # any name but another scheduler's loaded once a subclass's own entries did: "step" replaced
    # the method, and the next step raised "'int' object is not callable"
    scheduler = lr_scheduler.StepLR(_sgd(), 2)
    saved = dict(scheduler.state_dict(), **{key: 3})
    with pytest.raises(ValueError, match=rf"state_dict has entries \['{key}'\]"):
        scheduler.load_state_dict(saved)
    scheduler.step()


def test_a_failed_reduce_lr_on_plateau_step_changes_nothing():
    opt = fastgd.SGD([np.zeros(2)], lr=1.0)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=[0.0])
    scheduler.step(1.0)
    opt.add_param_group({"params": [np.zeros(3)], "lr": 0.5})
    before = scheduler.state_dict()
    with pytest.raises(RuntimeError, match="min_lr per group"):
        scheduler.step(2.0)
    assert scheduler.state_dict() == before
    assert [g["lr"] for g in opt.param_groups] == [1.0, 0.5]


@pytest.mark.parametrize("bad", ["oops", None, [0.1]])
@pytest.mark.parametrize("name", ["ReduceLROnPlateau", "ExponentialLR", "StepLR", "LinearLR", "PolynomialLR",
                                  "CosineAnnealingLR", "MultiplicativeLR"])
def test_a_group_lr_of_no_number_is_named_and_changes_nothing(name, bad):
    # ReduceLROnPlateau wrote the groups' reduced rates one by one, so one failing on the second
    # group had lowered the first's (its docstring says a step that raises changes nothing); the
    # others failed with Python's "can't multiply sequence by non-int" or the like (torch's too)
    opt = fastgd.SGD([{"params": [np.zeros(2)]}, {"params": [np.zeros(2)]}], lr=0.1)
    scheduler = {"ReduceLROnPlateau": lambda: lr_scheduler.ReduceLROnPlateau(opt, patience=0),
                 "ExponentialLR": lambda: lr_scheduler.ExponentialLR(opt, 0.5),
                 "StepLR": lambda: lr_scheduler.StepLR(opt, 1),
                 "LinearLR": lambda: lr_scheduler.LinearLR(opt),
                 "PolynomialLR": lambda: lr_scheduler.PolynomialLR(opt),
                 "CosineAnnealingLR": lambda: lr_scheduler.CosineAnnealingLR(opt, 10),
                 "MultiplicativeLR": lambda: lr_scheduler.MultiplicativeLR(opt, lambda epoch: 0.9)}[name]()
    step = functools.partial(scheduler.step, 1.0) if name == "ReduceLROnPlateau" else scheduler.step
    opt.step([np.zeros(2), np.zeros(2)])
    step()
    opt.param_groups[1]["lr"] = bad
    before = (groups_of(opt), scheduler.state_dict())
    with pytest.raises(TypeError, match=r"param_groups\[1\]\['lr'\] must be a real number, from which"):
        step()
    assert (groups_of(opt), scheduler.state_dict()) == before


@pytest.mark.parametrize(("make", "key"), [
    (lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10), "initial_lr"),
    (lambda opt: fastgd.swa_utils.SWALR(opt, swa_lr=0.1), "swa_lr"),
])
def test_a_group_added_without_a_schedulers_keys_is_named(make, key):
    """A group added plain lacks the keys these schedulers read from each group (torch's raise
    KeyError); the step raises, changing nothing."""
    opt = _sgd()
    scheduler = make(opt)
    opt.step([np.zeros(2)])
    opt.add_param_group({"params": [np.zeros(3)]})
    before = (groups_of(opt), scheduler.state_dict())
    with pytest.raises(ValueError, match=rf"param_groups.1. has no '{key}': {type(scheduler).__name__} reads it"):
        scheduler.step()
    assert (groups_of(opt), scheduler.state_dict()) == before


def test_arguments_too_large_for_a_double_are_refused():
    with pytest.raises(ValueError, match="gamma must be a number a double holds"):
        lr_scheduler.StepLR(_sgd(), 3, gamma=10**400)


@pytest.mark.filterwarnings("ignore:scheduler.step\\(epoch\\) is deprecated")
def test_an_epoch_of_no_finite_number_is_refused_and_changes_nothing():
    # step(nan) or step(inf) set a NaN rate (ExponentialLR: inf took it to 0), whose state dict
    # load_state_dict then refused; CosineAnnealingLR.step(inf) raised "math domain error";
    # ReduceLROnPlateau kept a string epoch, and its next step failed adding 1 to it
    makes = [lambda o: lr_scheduler.ExponentialLR(o, 0.5), lambda o: lr_scheduler.CosineAnnealingLR(o, 10),
             lambda o: lr_scheduler.LambdaLR(o, lambda e: 0.9 ** e), lambda o: lr_scheduler.ReduceLROnPlateau(o)]
    for make in makes:
        opt = _sgd()
        scheduler = make(opt)
        step = scheduler.step if not isinstance(scheduler, lr_scheduler.ReduceLROnPlateau) else (
            lambda epoch: scheduler.step(1.0, epoch=epoch))
        for epoch, error in ((math.nan, ValueError), (math.inf, ValueError), (-math.inf, ValueError),
                             ("3", TypeError), (10**400, ValueError)):
            before = (groups_of(opt), scheduler.state_dict())
            with pytest.raises(error, match="epoch"):
                step(epoch)
            assert (groups_of(opt), scheduler.state_dict()) == before
        step(2)
        make(_sgd()).load_state_dict(scheduler.state_dict())


def test_states_at_the_end_of_a_schedule_and_of_any_function_load_as_torch():
    """A finished OneCycleLR (its next step would raise) and a LambdaLR whose function is a bound
    method of an object that cannot be copied: torch loads both; so does fastgd."""
    import threading

    class Trainer:
        def __init__(self):
            self.lock, self.warm = threading.Lock(), 5

        def lr_at(self, epoch):
            return min(1.0, (epoch + 1) / self.warm)

    trainer = Trainer()
    for make in (lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=10),
                 lambda o: lr_scheduler.LambdaLR(o, trainer.lr_at)):
        opt = _sgd()
        scheduler = make(opt)
        for _ in range(10):
            opt.step([np.ones(2)])
            scheduler.step()
        twin = make(_sgd())
        twin.load_state_dict(scheduler.state_dict())
        assert twin.state_dict() == scheduler.state_dict() and twin.last_epoch == 10
    topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    tsched = torch_scheduler.OneCycleLR(topt, max_lr=1.0, total_steps=10)
    for _ in range(10):
        topt.step()
        tsched.step()
    lr_scheduler.OneCycleLR(_sgd(), max_lr=1.0, total_steps=10).load_state_dict(tsched.state_dict())


@pytest.mark.filterwarnings("ignore:scheduler.step\\(epoch\\) is deprecated")
def test_a_state_after_a_fractional_epoch_loads():
    # step(epoch) takes a fractional epoch, as torch's: the state it leaves loads
    for make, step in ((lambda o: lr_scheduler.StepLR(o, 2), lambda s: s.step(2.5)),
                       (lambda o: lr_scheduler.ReduceLROnPlateau(o), lambda s: s.step(1.0, epoch=2.5))):
        opt = _sgd()
        scheduler = make(opt)
        opt.step([np.ones(2)])
        step(scheduler)
        twin = make(_sgd())
        twin.load_state_dict(scheduler.state_dict())
        assert twin.last_epoch == scheduler.last_epoch == 2.5


def test_a_users_scheduler_may_name_an_attribute_cycle_momentum():
    # the step put back the cycled momentum of any scheduler with that attribute, and read
    # use_beta1, which a user's scheduler lacks (AttributeError); torch's reads neither
    class Warmup(lr_scheduler.LRScheduler):
        def __init__(self, optimizer):
            self.cycle_momentum = True  # the user's own flag
            super().__init__(optimizer)

        def get_lr(self):
            return [base * min(1.0, (self.last_epoch + 1) / 10) for base in self.base_lrs]

    scheduler = Warmup(fastgd.SGD([np.zeros(2)], lr=0.1, momentum=0.9))
    scheduler.step()
    assert scheduler.get_last_lr() == pytest.approx([0.02])


@pytest.mark.parametrize("T_0, T_mult, epoch", [(1, 10, 111), (1, 10, 111111), (1, 3, 121), (2, 17, 614), (3, 2, 45)])
def test_warm_restarts_stepped_to_a_restart_epoch_starts_the_restart(T_0, T_mult, epoch):
    # the restart's number came from a log that rounds down at some restarts (math.log(1000, 10)
    # is 2.9999...): step(111) put the schedule at the end of the cycle before, at eta_min (torch's too)
    walked = lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=T_0, T_mult=T_mult, eta_min=0.001)
    for _ in range(min(epoch, 1000)):  # one step at a time: the oracle (up to 1000 steps)
        walked.step()
    jumped = lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=T_0, T_mult=T_mult, eta_min=0.001)
    jumped.step(epoch)
    assert jumped.T_cur == 0 and jumped.get_last_lr() == [jumped.base_lrs[0]]  # a restart's first epoch
    if epoch <= 1000:
        assert (jumped.T_cur, jumped.T_i, jumped.get_last_lr()) == (walked.T_cur, walked.T_i, walked.get_last_lr())
    jumped.step(epoch - 0.5)  # half an epoch before: the cycle before, near its end
    assert jumped.T_cur == jumped.T_i - 0.5


def test_warm_restarts_stepped_to_a_numpy_epoch_as_to_a_python_one():
    # step(np.float64(4.5)) past the first restart with T_mult > 1 raised NumPy's "boolean
    # subtract is not supported" (an epoch from np.linspace, the documented fractional step);
    # torch steps there: the oracle, as the same Python epoch is
    torch = pytest.importorskip("torch")
    for epoch in (np.float64(4.5), np.int64(10), np.float32(22.25)):
        ours = lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=3, T_mult=2, eta_min=0.001)
        param = torch.zeros(2, requires_grad=True)
        theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            torch.optim.SGD([param], lr=ours.base_lrs[0]), T_0=3, T_mult=2, eta_min=0.001)
        ours.step(epoch)
        theirs.step(epoch)
        assert (ours.T_cur, ours.T_i, ours.last_epoch) == (theirs.T_cur, theirs.T_i, theirs.last_epoch)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)


def test_triangular2_goes_on_past_a_thousand_cycles_towards_base_lr():
    # its scale 1 / 2.0 ** (cycle - 1) overflowed at cycle 1026 (as torch's): every step raised from there
    scheduler = lr_scheduler.CyclicLR(_sgd(), base_lr=0.01, max_lr=0.1, step_size_up=1, step_size_down=1,
                                      mode="triangular2")
    for _ in range(3000):
        scheduler.step()
    assert scheduler.get_last_lr() == [0.01]  # the amplitude, 0.09 / 2 ** 1499, is below base_lr's rounding
    assert scheduler.scale_fn(3) == 0.25


def test_whole_numbers_beyond_a_double_are_refused_by_name():
    # they reached float conversions, which raised OverflowError: int too large to convert to float
    huge = 10 ** 400
    scheduler = lr_scheduler.StepLR(_sgd(), step_size=3)
    saved = scheduler.state_dict()
    saved["last_epoch"] = huge
    with pytest.raises(ValueError, match=r"state_dict\['last_epoch'\] must be a number a double holds, got 1000"):
        scheduler.load_state_dict(saved)
    assert scheduler.last_epoch == 0
    with pytest.raises(ValueError, match="T_0 must be a number a double holds"):
        lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=huge)
    with pytest.raises(ValueError, match="total_steps must be a number a double holds"):
        lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=huge)
    for scheduler in (lr_scheduler.StepLR(_sgd(), step_size=2), lr_scheduler.MultiStepLR(_sgd(), milestones=[2]),
                      lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=2)):
        with pytest.raises(ValueError, match="epoch must be a number a double holds"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # (step(epoch) is deprecated, as torch's)
            scheduler.step(huge)
        assert scheduler.last_epoch == 0
    X = np.random.default_rng(0).normal(size=(20, 2))
    flat = fastgd.LinearRegression(max_iter=huge, lr_schedule="cosine", tol=1e-2, random_state=0).fit(X, X.sum(1))
    constant = fastgd.LinearRegression(max_iter=huge, tol=1e-2, random_state=0).fit(X, X.sum(1))
    np.testing.assert_array_equal(flat.coef_, constant.coef_)  # a cosine over 10**400 epochs is flat


@pytest.mark.filterwarnings("ignore:lr_scheduler.step\\(\\) was called before optimizer.step")
@pytest.mark.parametrize("factor", [1e-310, 5e-324, 0.0])
def test_a_subnormal_factor_returns_to_the_closed_form(factor):
    # the rate was divided back by the factor's inverse, inf for a subnormal: the group's lr became
    # inf or NaN at total_iters (torch's too), and the next step failed
    constant = lr_scheduler.ConstantLR(fastgd.SGD([np.zeros(2)], lr=0.1), factor=factor, total_iters=2)
    for epoch in range(1, 5):
        constant.step()
        assert constant.get_last_lr() == constant._get_closed_form_lr()
        if epoch >= 2:
            assert constant.get_last_lr() == [0.1]
    if factor:
        linear = lr_scheduler.LinearLR(fastgd.SGD([np.zeros(2)], lr=0.1), start_factor=factor, total_iters=4)
        for epoch in range(1, 6):
            linear.step()
            np.testing.assert_allclose(linear.get_last_lr(), linear._get_closed_form_lr(), rtol=1e-15)
        assert linear.get_last_lr() == [0.1]


@pytest.mark.parametrize(("make", "call"), [
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=1e308, step_size_down=1e308), None),
    (lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=1e-310), lambda s: s.step()),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=1e-308), lambda s: s.step()),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0.5), lambda s: s.step(1e308)),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=1, T_mult=3), lambda s: s.step(1e308)),
    (lambda o: lr_scheduler.ExponentialLR(o, gamma=2.0), lambda s: s.step(2000)),
    (lambda o: lr_scheduler.StepLR(o, step_size=1, gamma=10.0), lambda s: s.step(400)),
])
def test_a_schedule_whose_arithmetic_leaves_float64_is_a_value_error_changing_nothing(make, call):
    # OverflowError, ZeroDivisionError or "math domain error" (as torch's raise them), not naming
    # the scheduler or saying what was expected
    opt = _sgd()
    if call is None:
        with pytest.raises(ValueError, match=r"CyclicLR's learning rate at epoch 0 is beyond float64's range"):
            make(opt)
        assert opt.param_groups[0]["lr"] == 1.0 and "initial_lr" not in opt.param_groups[0]
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (step(epoch)'s deprecation)
        scheduler = make(opt)
        before, lr = scheduler.state_dict(), opt.param_groups[0]["lr"]
        with pytest.raises(ValueError, match=rf"{type(scheduler).__name__}'s learning rate at epoch .* is beyond "
                                             "float64's range"):
            call(scheduler)
    assert scheduler.state_dict() == before and opt.param_groups[0]["lr"] == lr


def test_a_numpy_integer_last_epoch_loads_as_an_int_and_counts_past_2_to_the_63():
    # kept as np.int64, it wrapped to -2**63 at the next step (with a RuntimeWarning only)
    opt = _sgd()
    scheduler = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    scheduler.load_state_dict({**scheduler.state_dict(), "last_epoch": np.int64(2**63 - 1)})
    opt.step([np.zeros(2)])
    assert type(scheduler.last_epoch) is int
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler.step()
    assert scheduler.last_epoch == 2**63


def test_cosine_closed_form_near_float64s_largest_span_is_the_chained_forms():
    # (eta0 - eta_min) * (1 + cos) overflowed before the halving: "Invalid lr: -inf" from the closed
    # form (step(epoch), and the estimators' lr_schedule="cosine"), where the chained form is finite
    chained = lr_scheduler.CosineAnnealingLR(fastgd.SGD([np.zeros(1)], lr=0.01), T_max=3, eta_min=9e307)
    rates = []
    for _ in range(3):
        chained.step()
        rates.append(chained.get_last_lr()[0])
    closed = lr_scheduler.CosineAnnealingLR(fastgd.SGD([np.zeros(1)], lr=0.01), T_max=3, eta_min=9e307)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch, rate in enumerate(rates, 1):
            closed.step(epoch)
            assert closed.get_last_lr()[0] == pytest.approx(rate, rel=1e-12)
    assert [lr_scheduler._cosine_lr(0.01, 9e307, 3, epoch) for epoch in (1, 2, 3)] == pytest.approx(rates, rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        closed.step(0)  # where 1 + cos is 2: the product, not the rate, passed float64's largest
    assert math.isfinite(closed.get_last_lr()[0]) and math.isfinite(lr_scheduler._cosine_lr(0.01, 9e307, 3, 0))


def test_an_error_of_the_users_own_code_goes_on_as_it_is():
    # the conversion of a schedule's arithmetic beyond float64 (above) took a lambda's own
    # ZeroDivisionError, or a subclass's, for one: "beyond float64's range"
    with pytest.raises(ZeroDivisionError):
        lr_scheduler.LambdaLR(_sgd(), lambda epoch: 1 / epoch)
    opt = _sgd()
    scheduler = lr_scheduler.MultiplicativeLR(opt, lambda epoch: math.exp(1000 * epoch))
    opt.step([np.zeros(2)])
    with pytest.raises(OverflowError):
        scheduler.step()
    with pytest.raises(OverflowError):
        lr_scheduler.CyclicLR(_sgd(), 0.01, 0.1, scale_fn=lambda x: math.exp(1e4))

    class Own(lr_scheduler.ExponentialLR):
        def get_lr(self):
            raise ZeroDivisionError("my own")

    with pytest.raises(ZeroDivisionError, match="my own"):
        Own(_sgd(), gamma=0.5)
