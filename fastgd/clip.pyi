# Types of fastgd.clip: gradient clipping with torch.nn.utils' names and semantics.
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fastgd.optim import Optimizer, Parameter, _Grad

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_", "clip_coef",
           "clipped_step"]

# gradients: arrays, or fastgd.Parameters whose .grad is read (None skipped); or one of those
_Gradients = npt.NDArray[np.floating[Any]] | Parameter | Iterable[npt.NDArray[np.floating[Any]] | Parameter | None]
# gradients that are only read: NumPy float scalars too (a 0-d parameter's, as np.sum returns it)
_Read = (npt.NDArray[np.floating[Any]] | Parameter | np.floating[Any]
         | Iterable[npt.NDArray[np.floating[Any]] | Parameter | np.floating[Any] | None])
_Norm = np.float32 | np.float64

def get_total_norm(
    tensors: _Read, norm_type: float | str = 2.0, error_if_nonfinite: bool = False, foreach: bool | None = None
) -> _Norm: ...
def clip_coef(max_norm: float, total_norm: float | np.floating[Any]) -> _Norm: ...
def clip_grads_with_norm_(
    parameters: _Gradients, max_norm: float, total_norm: float | np.floating[Any], foreach: bool | None = None
) -> None: ...
def clip_grad_norm_(
    parameters: _Gradients,
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> _Norm: ...
def clip_grad_value_(parameters: _Gradients, clip_value: float, foreach: bool | None = None) -> None: ...
def clipped_step(
    optimizer: Optimizer,
    max_norm: float,
    grads: Sequence[_Grad | None] | None = None,  # (any iterable: read into a list)
    *,
    norm_type: float | str = 2.0,
    grad_scale: float = 1.0,
) -> tuple[_Norm, bool]: ...
