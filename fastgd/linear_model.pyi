# Types of fastgd.linear_model.
#
# At run time the estimators derive from scikit-learn's BaseEstimator and
# RegressorMixin / ClassifierMixin.  scikit-learn ships no type information, so
# instead of inheriting untyped bases (which would make every attribute Any) this
# stub spells out the public methods, the inherited ones (get_params, set_params,
# score) included.
from collections.abc import Mapping
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from typing_extensions import Self, TypeAlias

from .optim import Optimizer

_OptimizerName: TypeAlias = Literal["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad", "adamax", "adadelta", "lion", "radam", "nadam"]
_Schedule: TypeAlias = Literal["constant", "invscaling", "exponential", "step", "cosine", "adaptive"]
_RandomState: TypeAlias = int | np.random.RandomState | None
_Penalty: TypeAlias = Literal["l2", "l1", "elasticnet"] | None

class _Sparse(Protocol):
    # a scipy.sparse matrix or array, of any format (converted to CSR); a protocol, so that
    # these stubs need no SciPy types of their own
    @property
    def format(self) -> str: ...
    @property
    def nnz(self) -> int: ...

_X: TypeAlias = npt.ArrayLike | _Sparse

OPTIMIZERS: dict[str, tuple[type[Optimizer], tuple[str, ...], dict[str, Any]]]
SCHEDULES: tuple[str, ...]
GRADIENT_SIZED: tuple[str, ...]

class _BaseGD:
    optimizer: _OptimizerName
    learning_rate: float
    batch_size: int | None
    max_iter: int
    tol: float | None
    n_iter_no_change: int
    alpha: float
    fit_intercept: bool
    shuffle: bool
    lr_schedule: _Schedule
    power_t: float
    gamma: float
    step_size: int
    eta_min: float
    early_stopping: bool
    validation_fraction: float
    random_state: _RandomState
    warm_start: bool
    verbose: int
    momentum: float
    dampening: float
    betas: tuple[float, float] | list[float] | None
    eps: float | None
    amsgrad: bool
    weight_decay: float
    rho: float
    centered: bool
    lr_decay: float
    initial_accumulator_value: float
    lazy_updates: bool
    penalty: _Penalty
    l1_ratio: float
    average: bool | int
    # fitted attributes
    coef_: npt.NDArray[np.floating[Any]]
    intercept_: npt.NDArray[np.floating[Any]]
    n_iter_: int
    loss_curve_: list[float]
    validation_scores_: list[float] | None
    n_features_in_: int
    feature_names_in_: npt.NDArray[np.object_]  # (set by a fit on named columns: a DataFrame)
    def get_metadata_routing(self) -> Any: ...
    def __init__(
        self,
        *,
        optimizer: _OptimizerName = "sgd",
        learning_rate: float = 0.01,
        batch_size: int | None = 32,
        max_iter: int = 100,
        tol: float | None = 1e-4,
        n_iter_no_change: int = 5,
        alpha: float = 0.0,
        fit_intercept: bool = True,
        shuffle: bool = True,
        lr_schedule: _Schedule = "constant",
        power_t: float = 0.25,
        gamma: float = 0.9,
        step_size: int = 10,
        eta_min: float = 0.0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        random_state: _RandomState = None,
        warm_start: bool = False,
        verbose: int = 0,
        momentum: float = 0.9,
        dampening: float = 0.0,
        betas: tuple[float, float] | list[float] | None = None,
        eps: float | None = None,
        amsgrad: bool = False,
        weight_decay: float = 1e-2,
        rho: float = 0.99,
        centered: bool = False,
        lr_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        lazy_updates: bool = False,
        penalty: _Penalty = "l2",
        l1_ratio: float = 0.15,
        average: bool | int = False,
    ) -> None: ...
    def fit(self, X: _X, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> Self: ...
    def get_params(self, deep: bool = True) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> Self: ...
    # scikit-learn's metadata routing: whether a meta-estimator passes sample_weight (and classes) on
    def set_fit_request(self, *, sample_weight: bool | str | None = ...) -> Self: ...
    def __sklearn_tags__(self) -> Any: ...

class LinearRegression(_BaseGD):
    def set_partial_fit_request(self, *, sample_weight: bool | str | None = ...) -> Self: ...
    def set_score_request(self, *, sample_weight: bool | str | None = ...) -> Self: ...
    def partial_fit(self, X: _X, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> Self: ...
    def predict(self, X: _X) -> npt.NDArray[np.floating[Any]]: ...
    def score(self, X: _X, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> float: ...  # R^2

class LogisticRegression(_BaseGD):
    class_weight: Mapping[Any, float] | Literal["balanced"] | None
    classes_: npt.NDArray[Any]
    def __init__(
        self,
        *,
        optimizer: _OptimizerName = "sgd",
        learning_rate: float = 0.01,
        batch_size: int | None = 32,
        max_iter: int = 100,
        tol: float | None = 1e-4,
        n_iter_no_change: int = 5,
        alpha: float = 0.0,
        fit_intercept: bool = True,
        shuffle: bool = True,
        lr_schedule: _Schedule = "constant",
        power_t: float = 0.25,
        gamma: float = 0.9,
        step_size: int = 10,
        eta_min: float = 0.0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        random_state: _RandomState = None,
        warm_start: bool = False,
        verbose: int = 0,
        momentum: float = 0.9,
        dampening: float = 0.0,
        betas: tuple[float, float] | list[float] | None = None,
        eps: float | None = None,
        amsgrad: bool = False,
        weight_decay: float = 1e-2,
        rho: float = 0.99,
        centered: bool = False,
        lr_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        lazy_updates: bool = False,
        penalty: _Penalty = "l2",
        l1_ratio: float = 0.15,
        average: bool | int = False,
        class_weight: Mapping[Any, float] | Literal["balanced"] | None = None,
    ) -> None: ...
    def set_partial_fit_request(
        self, *, classes: bool | str | None = ..., sample_weight: bool | str | None = ...
    ) -> Self: ...
    def set_score_request(self, *, sample_weight: bool | str | None = ...) -> Self: ...
    def partial_fit(
        self,
        X: _X,
        y: npt.ArrayLike,
        classes: npt.ArrayLike | None = None,
        sample_weight: npt.ArrayLike | None = None,
    ) -> Self: ...
    def decision_function(self, X: _X) -> npt.NDArray[np.floating[Any]]: ...
    def predict_proba(self, X: _X) -> npt.NDArray[np.floating[Any]]: ...
    def predict_log_proba(self, X: _X) -> npt.NDArray[np.floating[Any]]: ...
    def predict(self, X: _X) -> npt.NDArray[Any]: ...
    def score(self, X: _X, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> float: ...  # accuracy

_SGDLoss: TypeAlias = Literal[
    "hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron", "squared_error", "huber",
    "epsilon_insensitive", "squared_epsilon_insensitive",
]
_SGDRegressionLoss: TypeAlias = Literal["squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"]
_SGDSchedule: TypeAlias = Literal["constant", "optimal", "invscaling", "adaptive", "pa1", "pa2"]

SGD_LOSSES: dict[str, tuple[str, float | None]]
SGD_SCHEDULES: tuple[str, ...]
PASSIVE_AGGRESSIVE: dict[str, int]
SPARSE_INTERCEPT_DECAY: float

class _SGDDropIn:
    loss: str
    penalty: _Penalty
    alpha: float
    l1_ratio: float | None
    fit_intercept: bool
    max_iter: int
    tol: float | None
    shuffle: bool
    verbose: int
    epsilon: float
    random_state: _RandomState
    learning_rate: _SGDSchedule
    eta0: float
    power_t: float
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    warm_start: bool
    average: bool | int
    batch_size: int | None
    optimizer: _OptimizerName
    momentum: float
    dampening: float
    betas: tuple[float, float] | list[float] | None
    eps: float | None
    amsgrad: bool
    weight_decay: float
    rho: float
    centered: bool
    lr_decay: float
    initial_accumulator_value: float
    lazy_updates: bool
    # fitted attributes
    coef_: Any  # an array, or a scipy.sparse CSR matrix or array after sparsify()
    intercept_: npt.NDArray[np.floating[Any]]
    n_iter_: int
    loss_curve_: list[float]
    validation_scores_: list[float] | None
    n_features_in_: int
    feature_names_in_: npt.NDArray[np.object_]  # (set by a fit on named columns: a DataFrame)
    def get_metadata_routing(self) -> Any: ...
    @property
    def t_(self) -> float: ...
    def fit(
        self,
        X: _X,
        y: npt.ArrayLike,
        coef_init: npt.ArrayLike | None = None,
        intercept_init: npt.ArrayLike | None = None,
        sample_weight: npt.ArrayLike | None = None,
    ) -> Self: ...
    def densify(self) -> Self: ...
    def sparsify(self) -> Self: ...
    def get_params(self, deep: bool = True) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> Self: ...
    def set_fit_request(
        self,
        *,
        coef_init: bool | str | None = ...,
        intercept_init: bool | str | None = ...,
        sample_weight: bool | str | None = ...,
    ) -> Self: ...
    def __sklearn_tags__(self) -> Any: ...

class SGDRegressor(_SGDDropIn):
    loss: _SGDRegressionLoss
    def __init__(
        self,
        loss: _SGDRegressionLoss = "squared_error",
        *,
        penalty: _Penalty = "l2",
        alpha: float = 0.0001,
        l1_ratio: float | None = 0.15,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float | None = 1e-3,
        shuffle: bool = True,
        verbose: int = 0,
        epsilon: float = 0.1,
        random_state: _RandomState = None,
        learning_rate: _SGDSchedule = "invscaling",
        eta0: float = 0.01,
        power_t: float = 0.25,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        warm_start: bool = False,
        average: bool | int = False,
        batch_size: int | None = 1,
        optimizer: _OptimizerName = "sgd",
        momentum: float = 0.9,
        dampening: float = 0.0,
        betas: tuple[float, float] | list[float] | None = None,
        eps: float | None = None,
        amsgrad: bool = False,
        weight_decay: float = 1e-2,
        rho: float = 0.99,
        centered: bool = False,
        lr_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        lazy_updates: bool = False,
    ) -> None: ...
    def set_partial_fit_request(self, *, sample_weight: bool | str | None = ...) -> Self: ...
    def set_score_request(self, *, sample_weight: bool | str | None = ...) -> Self: ...
    def partial_fit(self, X: _X, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> Self: ...
    def predict(self, X: _X) -> npt.NDArray[np.floating[Any]]: ...
    def score(self, X: _X, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> float: ...  # R^2

class SGDClassifier(_SGDDropIn):
    loss: _SGDLoss
    n_jobs: int | None
    class_weight: Mapping[Any, float] | Literal["balanced"] | None
    classes_: npt.NDArray[Any]
    def __init__(
        self,
        loss: _SGDLoss = "hinge",
        *,
        penalty: _Penalty = "l2",
        alpha: float = 0.0001,
        l1_ratio: float | None = 0.15,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float | None = 1e-3,
        shuffle: bool = True,
        verbose: int = 0,
        epsilon: float = 0.1,
        n_jobs: int | None = None,
        random_state: _RandomState = None,
        learning_rate: _SGDSchedule = "optimal",
        eta0: float = 0.01,
        power_t: float = 0.5,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        class_weight: Mapping[Any, float] | Literal["balanced"] | None = None,
        warm_start: bool = False,
        average: bool | int = False,
        batch_size: int | None = 1,
        optimizer: _OptimizerName = "sgd",
        momentum: float = 0.9,
        dampening: float = 0.0,
        betas: tuple[float, float] | list[float] | None = None,
        eps: float | None = None,
        amsgrad: bool = False,
        weight_decay: float = 1e-2,
        rho: float = 0.99,
        centered: bool = False,
        lr_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        lazy_updates: bool = False,
    ) -> None: ...
    def set_partial_fit_request(
        self, *, classes: bool | str | None = ..., sample_weight: bool | str | None = ...
    ) -> Self: ...
    def set_score_request(self, *, sample_weight: bool | str | None = ...) -> Self: ...
    def partial_fit(
        self,
        X: _X,
        y: npt.ArrayLike,
        classes: npt.ArrayLike | None = None,
        sample_weight: npt.ArrayLike | None = None,
    ) -> Self: ...
    def decision_function(self, X: _X) -> npt.NDArray[np.floating[Any]]: ...
    def predict_proba(self, X: _X) -> npt.NDArray[np.floating[Any]]: ...
    def predict_log_proba(self, X: _X) -> npt.NDArray[np.floating[Any]]: ...
    def predict(self, X: _X) -> npt.NDArray[Any]: ...
    def score(self, X: _X, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None = None) -> float: ...  # accuracy
