# Stub of a compiled module built from src/_regression.pxi (one module per SIMD level:
# _regression_baseline, _regression_avx2, _regression_avx512; the other two re-export this one).
# One epoch of mini-batch gradient descent, called by fastgd.linear_model after its checks.
from typing import Any

import numpy as np
import numpy.typing as npt

LOSSES: dict[str, int]
def epoch(
    X: npt.NDArray[Any],
    y: npt.NDArray[Any],
    sample_weight: npt.NDArray[Any] | None,
    order: npt.NDArray[np.intp],
    batch_size: int,
    loss: str,
    alpha: float,
    fit_intercept: bool,
    theta: npt.NDArray[Any],
    grad: npt.NDArray[Any],
    state: list[npt.NDArray[Any] | None],
    steps: npt.NDArray[np.int64],
    algorithm: str,
    options: dict[str, Any],
    decoupled: bool,
    first_momentum_step: bool,
    eta0: float,
    power_t: float,
    t: npt.NDArray[np.int64],
    in_order: bool,
) -> float: ...
def shuffle(order: npt.NDArray[np.intp], bit_generator: np.random.BitGenerator) -> None: ...
def draws_up_to(bit_generator: np.random.BitGenerator, high: int, count: int) -> npt.NDArray[np.uint64]: ...
def log_loss_terms(z: npt.ArrayLike) -> tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]]: ...
