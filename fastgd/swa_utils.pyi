# Types of fastgd.swa_utils: running averages of parameters (EMA, SWA).
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fastgd.optim import Parameter

__all__ = ["EMA", "SWA"]

_Params = Iterable[npt.NDArray[np.floating[Any]] | Parameter]

class _Average:
    averages: list[npt.NDArray[np.floating[Any]]]
    n_averaged: int
    def __init__(self, params: _Params) -> None: ...
    def update(self) -> None: ...
    def copy_to(self, params: _Params | None = None) -> None: ...
    def swap(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None: ...

class EMA(_Average):
    decay: float
    warmup: bool
    def __init__(self, params: _Params, decay: float = 0.999, *, warmup: bool = False) -> None: ...

class SWA(_Average):
    def __init__(self, params: _Params) -> None: ...
