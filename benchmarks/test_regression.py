"""Benchmarks of the regression loop: a 5-epoch fit of plain mini-batch SGD
(batch 32) on 100,000 x 100 data, one thread, against the NumPy reference loop
and scikit-learn's SGDRegressor / SGDClassifier(loss="log_loss").

    python -m pytest benchmarks/test_regression.py --benchmark-group-by=group

Per-epoch time is the reported time / 5.
"""
import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.linear_model import SGDClassifier, SGDRegressor  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import fastgd  # noqa: E402
from fastgd import reference  # noqa: E402

N_SAMPLES, N_FEATURES, EPOCHS = 100_000, 100, 5
OPTIONS = dict(optimizer="sgd", batch_size=32, max_iter=EPOCHS, tol=None, learning_rate=1e-3, random_state=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_SAMPLES, N_FEATURES))
    y = X @ rng.standard_normal(N_FEATURES) + 0.1 * rng.standard_normal(N_SAMPLES)
    return X, y


def estimator(task, contender):
    if contender == "scikit-learn":
        if task == "linear":
            return SGDRegressor(max_iter=EPOCHS, tol=None, learning_rate="constant", eta0=1e-3, random_state=0)
        return SGDClassifier(loss="log_loss", max_iter=EPOCHS, tol=None, learning_rate="constant", eta0=1e-3,
                             random_state=0)
    module = fastgd if contender == "fastgd" else reference
    return getattr(module, "LinearRegression" if task == "linear" else "LogisticRegression")(**OPTIONS)


@pytest.mark.parametrize("contender", ["fastgd", "reference", "scikit-learn"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("task", ["linear", "logistic"])
def test_fit_5_epochs(benchmark, data, task, dtype, contender):
    if contender != "fastgd" and dtype == "float32":
        pytest.skip("float32 is timed for fastgd only (against its own float64)")
    X, y = data
    X = X.astype(dtype)
    y = y if task == "linear" else (y > 0).astype(np.int64)
    benchmark.group = f"{task}-regression-100000x100-batch32-5epochs"
    with threadpool_limits(1):
        model = benchmark.pedantic(lambda: estimator(task, contender).fit(X, y), rounds=3 if benchmark.enabled else 1)
    assert model.coef_.size >= N_FEATURES  # it did train
