"""Out-of-core paths: dask_ml's Incremental and ParallelPostFit around fastgd's estimators, on
dask arrays of dense blocks and of scipy.sparse CSR blocks, under a two-worker LocalCluster
(the dask_client fixture, conftest.py).

Oracles: the same estimator's partial_fit called here on the same blocks in the same order
(Incremental must hand each block over unchanged), the estimator fitted in memory
(ParallelPostFit must predict as it does), scikit-learn's metrics; on CSR blocks also the
dense blocks' fit (LinearRegression, LogisticRegression) or scikit-learn's SGD on the same
CSR blocks (the drop-ins, which step the intercept by a hundredth on sparse data, as it does).
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse

pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
wrappers = pytest.importorskip("dask_ml.wrappers")

from sklearn import linear_model as sk  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402

import fastgd  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS, FEATURES, BLOCK = 2000, 8, 500


def _data(classifier, seed=0, zeros=0.0):
    """X (standard normal, a share `zeros` of its entries zeroed) and y: a linear model of X plus
    noise, or its sign as classes 0 and 1."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(ROWS, FEATURES))
    X[np.random.default_rng(seed + 10).random(X.shape) < zeros] = 0
    w = rng.normal(size=FEATURES)
    score = X @ w + 0.3
    y = (score > 0).astype(np.int64) if classifier else score + 0.1 * rng.normal(size=ROWS)
    return X, y


def _score(wrapped, classifier, X, y, Xd):
    """The wrapper's score on the dask arrays Xd, y; for regressors on the in-memory X, y: dask_ml
    2025.1's R^2 of dask arrays fails under dask 2026.8 ("cannot broadcast shape (nan,)"), with
    scikit-learn's own SGDRegressor as well."""
    if classifier:
        return wrapped.score(Xd, da.from_array(y, chunks=BLOCK))
    return wrapped.score(X, y)


def _csr_blocks(X):
    """X as a dask array of scipy.sparse CSR blocks of BLOCK rows (made on the workers)."""
    return da.from_array(X, chunks=(BLOCK, FEATURES)).map_blocks(
        sparse.csr_matrix, dtype=X.dtype, meta=sparse.csr_matrix((0, FEATURES), dtype=X.dtype))


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
    assert _score(wrapped, classifier, X, y, Xd) == pytest.approx(metric(y, expected.predict(X)), rel=1e-12)
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
    assert _score(wrapped, classifier, X, y, Xd) == pytest.approx(metric(y, fitted.predict(X)), rel=1e-12)


def _partial_fits(model, X, y, classifier):
    """model.partial_fit on the rows of X, y a block of BLOCK rows at a time, in order."""
    options = {"classes": np.unique(y)} if classifier else {}
    for start in range(0, ROWS, BLOCK):
        model.partial_fit(X[start:start + BLOCK], y[start:start + BLOCK], **options)
    return model


@pytest.mark.parametrize("make, classifier", ESTIMATORS, ids=IDS)
def test_incremental_on_sparse_blocks(dask_client, make, classifier):
    X, y = _data(classifier, zeros=0.6)
    Xd, yd = _csr_blocks(X), da.from_array(y, chunks=BLOCK)
    assert sparse.isspmatrix_csr(Xd.blocks[1].compute())
    X_csr = sparse.csr_matrix(X)
    options = {"classes": np.unique(y)} if classifier else {}
    # shuffle=False: scikit-learn's SGD below must see the rows in the same order
    wrapped = wrappers.Incremental(make().set_params(shuffle=False), shuffle_blocks=False).fit(Xd, yd, **options)
    # each CSR block handed over as it is
    expected = _partial_fits(make().set_params(shuffle=False), X_csr, y, classifier)
    np.testing.assert_array_equal(wrapped.estimator_.coef_, expected.coef_)
    np.testing.assert_array_equal(wrapped.estimator_.intercept_, expected.intercept_)
    if isinstance(expected, (fastgd.SGDRegressor, fastgd.SGDClassifier)):
        # the drop-ins step the intercept by a hundredth of its gradient on sparse rows, as
        # scikit-learn's SGD does (not as on dense rows): their oracle is scikit-learn's, on the
        # same CSR blocks (batch_size=1, optimizer="sgd": its algorithm)
        theirs = getattr(sk, type(expected).__name__)()
        theirs.set_params(**{k: v for k, v in expected.get_params().items() if k in theirs.get_params()})
        oracle = _partial_fits(theirs, X_csr, y, classifier)
    else:
        oracle = _partial_fits(make().set_params(shuffle=False), X, y, classifier)  # dense blocks
    np.testing.assert_allclose(wrapped.estimator_.coef_, oracle.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(wrapped.estimator_.intercept_, oracle.intercept_, rtol=1e-10, atol=1e-12)
    predicted = wrapped.predict(Xd)
    assert isinstance(predicted, da.Array)
    np.testing.assert_array_equal(predicted.compute(), expected.predict(X_csr))
    metric = accuracy_score if classifier else r2_score
    assert _score(wrapped, classifier, X_csr, y, Xd) == pytest.approx(metric(y, expected.predict(X_csr)), rel=1e-12)
    # not a degenerate model (zero weights would match too): one pass beats a constant prediction,
    # the majority class (accuracy) or the mean (R^2 0), by 0.1
    constant = max(np.mean(y == y[0]), np.mean(y != y[0])) if classifier else 0.0
    assert metric(y, expected.predict(X_csr)) > constant + 0.1


@pytest.mark.parametrize("make, classifier", ESTIMATORS, ids=IDS)
def test_parallel_post_fit_predicts_on_sparse_blocks(dask_client, make, classifier):
    X, y = _data(classifier, seed=1, zeros=0.6)
    X_csr = sparse.csr_matrix(X)
    fitted = make().set_params(max_iter=5, tol=None).fit(X_csr, y)
    wrapped = wrappers.ParallelPostFit(make().set_params(max_iter=5, tol=None)).fit(X_csr, y)
    Xd = _csr_blocks(X)
    np.testing.assert_array_equal(wrapped.predict(Xd).compute(), fitted.predict(X_csr))
    if hasattr(fitted, "predict_proba"):
        np.testing.assert_allclose(wrapped.predict_proba(Xd).compute(), fitted.predict_proba(X_csr), rtol=1e-12)
    metric = accuracy_score if classifier else r2_score
    assert _score(wrapped, classifier, X_csr, y, Xd) == pytest.approx(metric(y, fitted.predict(X_csr)), rel=1e-12)


@pytest.mark.parametrize("module", ["fastgd", "fastgd.linear_model"])
def test_importing_fastgd_does_not_import_dask(module):
    env = dict(os.environ, PYTHONPATH=ROOT)
    code = (f"import sys, {module}; found = [m for m in ('dask', 'distributed', 'dask_ml') if m in sys.modules]; "
            "assert not found, found")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT, timeout=120)
