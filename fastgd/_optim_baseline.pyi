# Stub of a compiled module built from src/_optim.pxi (one module per SIMD level:
# _optim_baseline, _optim_avx2, _optim_avx512; the other two stubs re-export this one).
# One multi-tensor step of every param group in one call (Plan.step); it hands back,
# having changed nothing, when an array or option needs fastgd.optim's full checks.
from typing import Any, final

import numpy as np
import numpy.typing as npt

STEP_DONE: int
STEP_ARRAYS_UNREADY: int
STEP_OPTIONS_UNCHECKED: int
@final
class Plan:
    def __init__(
        self,
        algorithm: str,
        params: list[npt.NDArray[Any]],
        state: dict[str, list[npt.NDArray[Any] | None]],
        state_names: tuple[str, ...],
        steps: npt.NDArray[np.int64],
        slices: list[tuple[int, int]],
        auto_threads: list[int],
        decoupled: bool,
        checks: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], bool],
    ) -> None: ...
    def step(
        self,
        groups: list[dict[str, Any]],
        grads: list[npt.NDArray[Any] | None],
        n_threads: int,
        checked: bool = False,
    ) -> int: ...
    def retire(self) -> None: ...
    def kernel_states(self, i: int, group: dict[str, Any]) -> tuple[list[npt.NDArray[Any] | None], bool]: ...
