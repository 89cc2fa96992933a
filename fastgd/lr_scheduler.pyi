# Types of fastgd.lr_scheduler (torch.optim.lr_scheduler's schedulers for fastgd's optimizers).
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, SupportsFloat

from typing_extensions import TypeAlias

from fastgd.optim import Optimizer

__all__ = [
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR",
    "OneCycleLR", "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau",
]

# a function of the epoch (or of the cycle, for CyclicLR's scale_fn), or one per param group
_EpochFunction: TypeAlias = Callable[[int], float]
_PerGroup: TypeAlias = float | list[float] | tuple[float, ...]

class LRScheduler:
    optimizer: Optimizer
    base_lrs: list[float]
    last_epoch: int
    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...
    def get_last_lr(self) -> list[float]: ...
    def get_lr(self) -> list[float]: ...
    def step(self, epoch: int | None = None) -> None: ...

class _LRScheduler(LRScheduler): ...

class _WithFunctions(LRScheduler):
    lr_lambdas: list[_EpochFunction]
    def __init__(
        self, optimizer: Optimizer, lr_lambda: _EpochFunction | Sequence[_EpochFunction], last_epoch: int = -1
    ) -> None: ...

class LambdaLR(_WithFunctions):
    def __init__(
        self, optimizer: Optimizer, lr_lambda: _EpochFunction | Sequence[_EpochFunction], last_epoch: int = -1
    ) -> None: ...

class MultiplicativeLR(_WithFunctions):
    def __init__(
        self, optimizer: Optimizer, lr_lambda: _EpochFunction | Sequence[_EpochFunction], last_epoch: int = -1
    ) -> None: ...

class StepLR(LRScheduler):
    step_size: int
    gamma: float
    def __init__(self, optimizer: Optimizer, step_size: float, gamma: float = 0.1, last_epoch: int = -1) -> None: ...

class MultiStepLR(LRScheduler):
    milestones: Counter[int]
    gamma: float
    def __init__(
        self, optimizer: Optimizer, milestones: Iterable[float], gamma: float = 0.1, last_epoch: int = -1
    ) -> None: ...

class ConstantLR(LRScheduler):
    factor: float
    total_iters: int
    def __init__(
        self, optimizer: Optimizer, factor: float = ..., total_iters: float = 5, last_epoch: int = -1
    ) -> None: ...

class LinearLR(LRScheduler):
    start_factor: float
    end_factor: float
    total_iters: int
    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = ...,
        end_factor: float = 1.0,
        total_iters: float = 5,
        last_epoch: int = -1,
    ) -> None: ...

class ExponentialLR(LRScheduler):
    gamma: float
    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None: ...

class PolynomialLR(LRScheduler):
    total_iters: int
    power: float
    def __init__(self, optimizer: Optimizer, total_iters: float = 5, power: float = 1.0, last_epoch: int = -1) -> None: ...

class CosineAnnealingLR(LRScheduler):
    T_max: float
    eta_min: float
    def __init__(self, optimizer: Optimizer, T_max: float, eta_min: float = 0.0, last_epoch: int = -1) -> None: ...

class CosineAnnealingWarmRestarts(LRScheduler):
    T_0: int
    T_i: int
    T_mult: int
    T_cur: float
    eta_min: float
    def __init__(
        self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None: ...
    def step(self, epoch: float | None = None) -> None: ...

class CyclicLR(LRScheduler):
    max_lrs: list[float]
    total_size: float
    step_ratio: float
    mode: str
    gamma: float
    scale_mode: str
    cycle_momentum: bool
    use_beta1: bool
    base_momentums: list[float]
    max_momentums: list[float]
    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: _PerGroup,
        max_lr: _PerGroup,
        step_size_up: float = 2000,
        step_size_down: float | None = None,
        mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: Literal["cycle", "iterations"] = "cycle",
        cycle_momentum: bool = True,
        base_momentum: _PerGroup = 0.8,
        max_momentum: _PerGroup = 0.9,
        last_epoch: int = -1,
    ) -> None: ...
    def scale_fn(self, x: float) -> float: ...

class OneCycleLR(LRScheduler):
    total_steps: int
    cycle_momentum: bool
    use_beta1: bool
    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: _PerGroup,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        cycle_momentum: bool = True,
        base_momentum: _PerGroup = 0.85,
        max_momentum: _PerGroup = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None: ...

class _OfSchedulers(LRScheduler): ...

class SequentialLR(_OfSchedulers):
    def __init__(
        self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[float], last_epoch: int = -1
    ) -> None: ...
    def recursive_undo(self, sched: LRScheduler | None = None) -> None: ...
    def step(self) -> None: ...  # type: ignore[override]

class ChainedScheduler(_OfSchedulers):
    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None) -> None: ...
    def step(self) -> None: ...  # type: ignore[override]

class ReduceLROnPlateau(LRScheduler):
    factor: float
    default_min_lr: float | None
    min_lrs: list[float]
    patience: float
    cooldown: float
    eps: float
    mode: Literal["min", "max"]
    threshold: float
    threshold_mode: Literal["rel", "abs"]
    mode_worse: float
    best: float
    cooldown_counter: float
    num_bad_epochs: int
    def __init__(
        self,
        optimizer: Optimizer,
        mode: Literal["min", "max"] = "min",
        factor: float = 0.1,
        patience: float = 10,
        threshold: float = 1e-4,
        threshold_mode: Literal["rel", "abs"] = "rel",
        cooldown: float = 0,
        min_lr: _PerGroup = 0,
        eps: float = 1e-8,
    ) -> None: ...
    @property
    def in_cooldown(self) -> bool: ...
    def step(self, metrics: SupportsFloat, epoch: int | None = None) -> None: ...  # type: ignore[override]
