"""Out-of-core paths: dask_ml's Incremental and ParallelPostFit around fastgd's estimators, on
dense dask arrays, under a two-worker LocalCluster (the dask_client fixture, conftest.py).

Oracles: the same estimator's partial_fit called here on the same blocks in the same order
(Incremental must hand each block over unchanged), the estimator fitted in memory
(ParallelPostFit must predict as it does), and scikit-learn's metrics.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
wrappers = pytest.importorskip("dask_ml.wrappers")

from sklearn.metrics import accuracy_score, r2_score  # noqa: E402

import fastgd  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS, FEATURES, BLOCK = 2000, 8, 500


def _data(classifier, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(ROWS, FEATURES))
    w = rng.normal(size=FEATURES)
    score = X @ w + 0.3
    y = (score > 0).astype(np.int64) if classifier else score + 0.1 * rng.normal(size=ROWS)
    return X, y


def _score(wrapped, classifier, X, y):
    """The wrapper's score on dask arrays; for regressors on NumPy arrays: dask_ml 2025.1's R^2 of
    dask arrays fails under dask 2026.8 ("cannot broadcast shape (nan,)"), with scikit-learn's
    own SGDRegressor as well."""
    if classifier:
        return wrapped.score(da.from_array(X, chunks=(BLOCK, FEATURES)), da.from_array(y, chunks=BLOCK))
    return wrapped.score(X, y)


ESTIMATORS = [
    (lambda: fastgd.LinearRegression(learning_rate=0.05, random_state=0), False),
    (lambda: fastgd.LogisticRegression(learning_rate=0.1, random_state=0), True),
    (lambda: fastgd.SGDRegressor(random_state=0), False),
    (lambda: fastgd.SGDClassifier(loss="log_loss", random_state=0), True),
]
IDS = ["LinearRegression", "LogisticRegression", "SGDRegressor", "SGDClassifier"]


@pytest.mark.parametrize("make, classifier", ESTIMATORS, ids=IDS)
def test_incremental_hands_each_block_to_partial_fit(dask_client, make, classifier):
    X, y = _data(classifier)
    Xd, yd = da.from_array(X, chunks=(BLOCK, FEATURES)), da.from_array(y, chunks=BLOCK)
    options = {"classes": np.unique(y)} if classifier else {}
    wrapped = wrappers.Incremental(make(), shuffle_blocks=False).fit(Xd, yd, **options)
    expected = make()
    for start in range(0, ROWS, BLOCK):
        expected.partial_fit(X[start:start + BLOCK], y[start:start + BLOCK], **options)
    np.testing.assert_array_equal(wrapped.estimator_.coef_, expected.coef_)
    np.testing.assert_array_equal(wrapped.estimator_.intercept_, expected.intercept_)
    predicted = wrapped.predict(Xd)
    assert isinstance(predicted, da.Array)
    np.testing.assert_array_equal(predicted.compute(), expected.predict(X))
    metric = accuracy_score if classifier else r2_score
    assert _score(wrapped, classifier, X, y) == pytest.approx(metric(y, expected.predict(X)), rel=1e-12)
    assert metric(y, expected.predict(X)) > 0.9  # one pass learns this easy, well-scaled problem


@pytest.mark.parametrize("make, classifier", ESTIMATORS, ids=IDS)
def test_parallel_post_fit_predicts_as_the_estimator(dask_client, make, classifier):
    X, y = _data(classifier, seed=1)
    fitted = make().set_params(max_iter=5, tol=None).fit(X, y)
    wrapped = wrappers.ParallelPostFit(make().set_params(max_iter=5, tol=None)).fit(X, y)
    Xd = da.from_array(X, chunks=(BLOCK, FEATURES))
    np.testing.assert_array_equal(wrapped.predict(Xd).compute(), fitted.predict(X))
    if hasattr(fitted, "predict_proba"):
        np.testing.assert_allclose(wrapped.predict_proba(Xd).compute(), fitted.predict_proba(X), rtol=1e-12)
    metric = accuracy_score if classifier else r2_score
    assert _score(wrapped, classifier, X, y) == pytest.approx(metric(y, fitted.predict(X)), rel=1e-12)


@pytest.mark.parametrize("module", ["fastgd", "fastgd.linear_model"])
def test_importing_fastgd_does_not_import_dask(module):
    env = dict(os.environ, PYTHONPATH=ROOT)
    code = (f"import sys, {module}; found = [m for m in ('dask', 'distributed', 'dask_ml') if m in sys.modules]; "
            "assert not found, found")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, timeout=120)
