"""Benchmarks of the regression loop: 5-epoch fits of plain SGD on 100,000 x 100 data,
one thread, with the models of ``fastgd.bench._regression_contenders`` (those
``python -m fastgd bench --regression`` times).

    python -m pytest benchmarks/test_regression.py --benchmark-group-by=group

The groups, per model and dtype:

  ...-100000x100-batch1-5epochs    fastgd at batch_size=1 against scikit-learn's
                                   SGDRegressor / SGDClassifier: the same algorithm
                                   (per-sample SGD), like for like
  ...-100000x100-batch32-5epochs   fastgd's mini-batch SGD against the NumPy loop at batch 32
  ...-10000x100-batch1-5epochs     fastgd against the NumPy loop at batch 1, on the first
                                   10,000 rows (all of them would take the NumPy loop ~20 s a fit)

Per-epoch time is the reported time / 5.  With --benchmark-disable (the smoke run)
each fit runs once, on the first SMOKE_ROWS rows.
"""
import pytest

pytest.importorskip("sklearn")
from threadpoolctl import threadpool_limits  # noqa: E402

from fastgd import bench  # noqa: E402

N_SAMPLES, N_FEATURES = bench.REGRESSION_SHAPE
SMOKE_ROWS = 1_000
CASES = [  # (contender, batch size, rows)
    ("fastgd", 1, N_SAMPLES), ("scikit-learn", 1, N_SAMPLES),
    ("fastgd", 32, N_SAMPLES), ("reference", 32, N_SAMPLES),
    ("fastgd", 1, bench.REFERENCE_ROWS_AT_BATCH_1), ("reference", 1, bench.REFERENCE_ROWS_AT_BATCH_1),
]


@pytest.fixture(scope="module")
def data():
    return bench._regression_data()


@pytest.mark.parametrize("contender, batch_size, rows", CASES, ids=[f"{c}-batch{b}-{n}rows" for c, b, n in CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("task", ["linear", "logistic"])
def test_fit_5_epochs(benchmark, data, task, dtype, contender, batch_size, rows):
    X, targets = data
    n = rows if benchmark.enabled else min(rows, SMOKE_ROWS)
    X, y = X[:n].astype(dtype), targets[task][:n]
    make = bench._regression_contenders(task)[contender, batch_size]
    benchmark.group = (f"{task}-regression-{dtype}-{rows}x{N_FEATURES}-batch{batch_size}-"
                       f"{bench.REGRESSION_EPOCHS}epochs")
    with threadpool_limits(1):
        model = benchmark.pedantic(lambda: make().fit(X, y), rounds=3 if benchmark.enabled else 1,
                                   warmup_rounds=1 if benchmark.enabled else 0)
    assert model.coef_.size >= N_FEATURES and model.coef_.dtype == X.dtype  # it trained, in X's dtype
    assert (model.coef_ != 0).any()
