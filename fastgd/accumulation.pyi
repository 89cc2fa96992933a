# Types of fastgd.accumulation: gradient accumulation (optax's MultiSteps).
from collections.abc import Mapping
from typing import Any, Generic, overload

import numpy as np
import numpy.typing as npt
from typing_extensions import TypeVar

from fastgd.optim import Optimizer, _Grads

__all__ = ["MultiSteps"]

# what step returns: whether it stepped; with max_norm, (the total norm at the k-th call, whether it stepped)
_Clipped = tuple[np.float32 | np.float64 | None, bool]
_Returned = TypeVar("_Returned", bound=bool | _Clipped, covariant=True, default=bool | _Clipped)

class MultiSteps(Generic[_Returned]):
    optimizer: Optimizer
    every_k: int
    max_norm: float | None
    @property
    def norm_type(self) -> float: ...
    @norm_type.setter
    def norm_type(self, value: float | str) -> None: ...
    @property
    def mini_step(self) -> int: ...
    @overload
    def __init__(
        self: MultiSteps[bool], optimizer: Optimizer, every_k: int, *, max_norm: None = None,
        norm_type: float | str = 2.0,
    ) -> None: ...
    @overload
    def __init__(
        self: MultiSteps[_Clipped], optimizer: Optimizer, every_k: int, *, max_norm: float, norm_type: float | str = 2.0
    ) -> None: ...
    def step(self, grads: _Grads | None = None) -> _Returned: ...
    def reset(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None: ...
