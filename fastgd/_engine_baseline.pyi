# Stub of the compiled engine, built from src/_engine.pxi and src/_regression.pxi (one module
# per SIMD level: _engine_baseline, _engine_avx2, _engine_avx512; the other two re-export this one).
# The optimizers' step (Plan.step) and the regression epoch, called by fastgd.optim and
# fastgd.linear_model; each hands back an Outcome, having changed nothing, when the Python
# layer has to check, convert, create state or build a new plan first.
import enum
from typing import Any, final

import numpy as np
import numpy.typing as npt

MAX_THREADS: int
MAX_STEP: int
KINDS: dict[str, int]
LOSSES: dict[str, int]

class Outcome(enum.IntEnum):
    DONE = 0
    PARAMS_CHANGED = 1
    ARRAYS_UNREADY = 2
    OPTIONS_UNCHECKED = 3
    STATE_MISMATCH = 4
    STATE_MISSING = 5
    STEP_OVERFLOWS = 6

def kernel_interface(name: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], int]: ...
@final
class Plan:
    def __init__(
        self,
        kernel: str,
        options: tuple[tuple[str, str, float, float, tuple[str | None, ...], bool], ...],
        state: tuple[tuple[tuple[str, str | None], ...], tuple[str, ...]],
        counts_steps: bool,
        params: list[npt.NDArray[Any]],
        entries: list[Any],
        state_lists: dict[str, list[npt.NDArray[Any] | None]],
        steps: npt.NDArray[np.int64],
        fresh: npt.NDArray[np.uint8],
        scalars: npt.NDArray[np.float64],
        slices: list[tuple[int, int]],
        auto_threads: list[int],
    ) -> None: ...
    def step(
        self,
        groups: list[dict[str, Any]],
        grads: list[npt.NDArray[Any] | None],
        n_threads: int,
        checked: bool = False,
        grad_scale: float = 1.0,
    ) -> int: ...
    def check(
        self, groups: list[dict[str, Any]], grads: list[npt.NDArray[Any] | None], n_threads: int, checked: bool = False
    ) -> int: ...
    def missing(self) -> list[tuple[str, int, int]]: ...
    def overflow(self) -> tuple[int, int, int | None, bool] | None: ...
    def grads_of(self, groups: list[dict[str, Any]]) -> list[npt.NDArray[Any] | None] | None: ...

@final
class Objective:
    def __init__(
        self,
        loss: str,
        *,
        epsilon: float = 0,
        alpha: float = 0,
        l1: float = 0,
        fit_intercept: bool = True,
        intercept_decay: float = 1,
        weights_scale_steps: bool = False,
        weight_pos: npt.NDArray[np.float64] | None = None,
        weight_neg: npt.NDArray[np.float64] | None = None,
        l1_state: npt.NDArray[np.float64] | None = None,
        average: npt.NDArray[Any] | None = None,
        average_start: int = 1,
        first_step: int = 1,
        lazy: bool = False,
        passive_aggressive: int = 0,
        aggressiveness: float = 1,
        lazy_average: npt.NDArray[np.float64] | None = None,
        sgd_objective: bool = False,
        sgd_norms: npt.NDArray[np.float64] | None = None,
        sgd_intercepts: npt.NDArray[np.float64] | None = None,
        row_weight: float = 1,
        clamp_decay: bool = False,
        plain_sgd: bool = False,
    ) -> None: ...

def epoch(
    optimizer: Plan,
    groups: list[dict[str, Any]],
    grads: list[npt.NDArray[Any] | None],
    n_threads: int,
    checked: bool,
    X: npt.NDArray[Any] | Any,  # a 2-D array, or a scipy.sparse CSR matrix
    y: npt.NDArray[Any],
    sample_weight: npt.NDArray[Any] | None,
    order: npt.NDArray[np.intp],
    batch_size: int,
    objective: Objective,
    rates: npt.NDArray[np.float64] | None,
    in_order: bool,
    result: npt.NDArray[np.float64],
    k: int,
) -> int: ...
# src/_multi_tensor.pxi: passes over lists of arrays (None skipped, or instances of `holder`, fastgd.Parameter,
# whose .grad is read);
# None / False when an array is not ready to be read (or written) as it is
def clip_coef(max_norm: float, total_norm: float, is_float32: bool) -> float: ...
def total_norm(items: list[Any], holder: type | None, norm_type: float) -> tuple[float, bool, bool] | None: ...
def scale_all(items: list[Any], holder: type | None, factor: float) -> bool: ...
def clamp_all(items: list[Any], holder: type | None, low: float, high: float) -> bool: ...
def lerp_all(averages: list[Any], currents: list[Any], weight: float) -> bool: ...
def mean_all(averages: list[Any], currents: list[Any], count: float) -> bool: ...
def copy_all(targets: list[Any], sources: list[Any]) -> bool: ...
def swap_all(a: list[Any], b: list[Any]) -> bool: ...
def add_all(totals: list[Any], arrays: list[Any], copied: list[bool]) -> bool: ...
def shuffle(order: npt.NDArray[np.intp], bit_generator: np.random.BitGenerator) -> None: ...
def shuffle_again(order: npt.NDArray[np.intp], seed: int) -> None: ...
def draws_up_to(bit_generator: np.random.BitGenerator, high: int, count: int) -> npt.NDArray[np.uint64]: ...
def log_loss_terms(z: npt.ArrayLike) -> tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]]: ...
