# Stub of a compiled module built from src/_optim.pxi (one module per SIMD level:
# _optim_baseline, _optim_avx2, _optim_avx512; the other two stubs re-export this one).
# Multi-tensor steps: each updates params[start:stop] in place; the Python layer
# (fastgd.optim) has checked every array and option before it calls in here.
from typing import Any

import numpy as np
import numpy.typing as npt

def first_unready(params: list[npt.NDArray[Any]], grads: list[npt.NDArray[Any] | None]) -> int: ...
def sgd(
    params: list[npt.NDArray[Any]],
    grads: list[npt.NDArray[Any] | None],
    momentum_buffers: list[npt.NDArray[Any] | None],
    start: int,
    stop: int,
    group: dict[str, Any],
    n_threads: int = 1,
) -> None: ...
def adam(
    params: list[npt.NDArray[Any]],
    grads: list[npt.NDArray[Any] | None],
    exp_avgs: list[npt.NDArray[Any] | None],
    exp_avg_sqs: list[npt.NDArray[Any] | None],
    max_exp_avg_sqs: list[npt.NDArray[Any] | None],
    steps: npt.NDArray[np.int64],
    start: int,
    stop: int,
    group: dict[str, Any],
    decoupled: bool,
    n_threads: int = 1,
) -> None: ...
def rmsprop(
    params: list[npt.NDArray[Any]],
    grads: list[npt.NDArray[Any] | None],
    square_avgs: list[npt.NDArray[Any] | None],
    grad_avgs: list[npt.NDArray[Any] | None],
    momentum_buffers: list[npt.NDArray[Any] | None],
    steps: npt.NDArray[np.int64],
    start: int,
    stop: int,
    group: dict[str, Any],
    n_threads: int = 1,
) -> None: ...
def adagrad(
    params: list[npt.NDArray[Any]],
    grads: list[npt.NDArray[Any] | None],
    state_sums: list[npt.NDArray[Any] | None],
    steps: npt.NDArray[np.int64],
    start: int,
    stop: int,
    group: dict[str, Any],
    n_threads: int = 1,
) -> None: ...
def options_valid(
    options: dict[str, Any],
    nonnegative: tuple[str, ...],
    unit_interval: tuple[str, ...],
    unit_pairs: tuple[str, ...],
    flags: tuple[str, ...],
) -> bool: ...
