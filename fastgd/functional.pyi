# Types of fastgd.functional: one in-place step on raw arrays.
from typing import Any

import numpy as np
import numpy.typing as npt

from .optim import _FloatArray, _Param

def sgd(
    param: _Param,
    grad: npt.NDArray[np.floating[Any]] | np.floating[Any],
    momentum_buffer: _FloatArray | None = None,
    *,
    lr: float = 1e-3,
    momentum: float = 0,
    dampening: float = 0,
    weight_decay: float = 0,
    nesterov: bool = False,
    maximize: bool = False,
) -> _FloatArray | None: ...
def adam(
    param: _Param,
    grad: npt.NDArray[np.floating[Any]] | np.floating[Any],
    exp_avg: _FloatArray,
    exp_avg_sq: _FloatArray,
    max_exp_avg_sq: _FloatArray | None = None,
    *,
    step: int,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> None: ...
def adamw(
    param: _Param,
    grad: npt.NDArray[np.floating[Any]] | np.floating[Any],
    exp_avg: _FloatArray,
    exp_avg_sq: _FloatArray,
    max_exp_avg_sq: _FloatArray | None = None,
    *,
    step: int,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> None: ...
def rmsprop(
    param: _Param,
    grad: npt.NDArray[np.floating[Any]] | np.floating[Any],
    square_avg: _FloatArray,
    grad_avg: _FloatArray | None = None,
    momentum_buffer: _FloatArray | None = None,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0,
    momentum: float = 0,
    centered: bool = False,
    maximize: bool = False,
) -> None: ...
def adagrad(
    param: _Param,
    grad: npt.NDArray[np.floating[Any]] | np.floating[Any],
    state_sum: _FloatArray,
    *,
    step: int,
    lr: float = 1e-2,
    lr_decay: float = 0,
    weight_decay: float = 0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> None: ...
def adamax(
    param: _Param,
    grad: npt.NDArray[np.floating[Any]] | np.floating[Any],
    exp_avg: _FloatArray,
    exp_inf: _FloatArray,
    *,
    step: int,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    maximize: bool = False,
) -> None: ...
def adadelta(
    param: _Param,
    grad: npt.NDArray[np.floating[Any]] | np.floating[Any],
    square_avg: _FloatArray,
    acc_delta: _FloatArray,
    *,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0,
    maximize: bool = False,
) -> None: ...
def lion(
    param: _Param,
    grad: npt.NDArray[np.floating[Any]] | np.floating[Any],
    exp_avg: _FloatArray,
    *,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.9, 0.99),
    weight_decay: float = 0,
    maximize: bool = False,
) -> None: ...
def radam(
    param: _Param,
    grad: npt.NDArray[np.floating[Any]] | np.floating[Any],
    exp_avg: _FloatArray,
    exp_avg_sq: _FloatArray,
    *,
    step: int,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> None: ...
def nadam(
    param: _Param,
    grad: npt.NDArray[np.floating[Any]] | np.floating[Any],
    exp_avg: _FloatArray,
    exp_avg_sq: _FloatArray,
    *,
    step: int,
    mu_product: float,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> float: ...
