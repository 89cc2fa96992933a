# Types of fastgd.accumulation: gradient accumulation (optax's MultiSteps).
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fastgd.optim import Optimizer

__all__ = ["MultiSteps"]

class MultiSteps:
    optimizer: Optimizer
    every_k: int
    mini_step: int
    max_norm: float | None
    norm_type: float
    def __init__(
        self, optimizer: Optimizer, every_k: int, *, max_norm: float | None = None, norm_type: float | str = 2.0
    ) -> None: ...
    def step(
        self, grads: Sequence[npt.NDArray[np.floating[Any]] | np.floating[Any] | None] | None = None
    ) -> bool | tuple[np.float32 | np.float64 | None, bool]: ...
    def reset(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None: ...
