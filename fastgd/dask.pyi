# Types of fastgd.dask.
#
# As in linear_model.pyi, the scikit-learn base (BaseEstimator) is not inherited: the
# public methods are spelled out.  Dask ships partial type information; the arrays and the
# client are typed Any here so that the stub does not need Dask to be read.
from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import Self

__all__ = ["DataParallel"]

class DataParallel:
    estimator: Any  # a fastgd estimator (LinearRegression, LogisticRegression, SGDClassifier, SGDRegressor)
    client: Any  # distributed.Client or None
    sync_every: int | None
    timeout: float | None
    verbose: int
    estimator_: Any
    n_replicas_: int
    n_iter_: int
    loss_curve_: list[float]
    n_features_in_: int
    classes_: npt.NDArray[Any]
    def __init__(
        self, estimator: Any, *, client: Any = None, sync_every: int | None = 1, timeout: float | None = 600.0,
        verbose: int = 0,
    ) -> None: ...
    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, classes: npt.ArrayLike | None = None) -> Self: ...
    def partial_fit(
        self, X: Any, y: Any, classes: npt.ArrayLike | None = None, sample_weight: Any = None,
    ) -> Self: ...
    @property
    def coef_(self) -> npt.NDArray[np.floating[Any]]: ...
    @property
    def intercept_(self) -> npt.NDArray[np.floating[Any]]: ...
    def predict(self, X: Any) -> Any: ...  # a NumPy array for NumPy X, a dask array for a dask array
    def decision_function(self, X: Any) -> Any: ...
    def predict_proba(self, X: Any) -> Any: ...
    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float: ...
    def get_params(self, deep: bool = True) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> Self: ...
    def set_fit_request(
        self, *, classes: bool | str | None = ..., sample_weight: bool | str | None = ...,
    ) -> Self: ...
    def set_partial_fit_request(
        self, *, classes: bool | str | None = ..., sample_weight: bool | str | None = ...,
    ) -> Self: ...
    def set_score_request(self, *, sample_weight: bool | str | None = ...) -> Self: ...
    def __sklearn_clone__(self) -> Self: ...
    def __sklearn_tags__(self) -> Any: ...
