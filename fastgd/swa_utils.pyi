# Types of fastgd.swa_utils: running averages of parameters (EMA, SWA), and SWALR.
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from fastgd.lr_scheduler import LRScheduler
from fastgd.optim import Optimizer, Parameter

__all__ = ["EMA", "SWA", "SWALR"]

_Params = Iterable[npt.NDArray[np.floating[Any]] | Parameter]

class _Average:
    averages: list[npt.NDArray[np.floating[Any]]]
    @property
    def n_averaged(self) -> int: ...
    @n_averaged.setter
    def n_averaged(self, value: int) -> None: ...
    def __init__(self, params: _Params) -> None: ...
    def update(self) -> None: ...
    def copy_to(self, params: _Params | None = None) -> None: ...
    def swap(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None: ...

class EMA(_Average):
    @property
    def decay(self) -> float: ...
    @decay.setter
    def decay(self, value: float) -> None: ...
    @property
    def warmup(self) -> bool: ...
    @warmup.setter
    def warmup(self, value: bool) -> None: ...
    def __init__(self, params: _Params, decay: float = 0.999, *, warmup: bool = False) -> None: ...

class SWA(_Average):
    def __init__(self, params: _Params) -> None: ...

class SWALR(LRScheduler):
    anneal_epochs: int
    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: float | Sequence[float],
        anneal_epochs: int = 10,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        last_epoch: int = -1,
    ) -> None: ...
