"""Benchmarks of the sparse epoch: 5-epoch fits of scikit-learn's SGDClassifier and fastgd's on
the text-like CSR problem of ``fastgd.bench.sparse_data`` (200,000 rows x 2^18 features, 100
nonzeros a row), one thread, the contenders ``python -m fastgd bench --sparse`` times.

    python -m pytest benchmarks/test_sparse.py --benchmark-group-by=group

Groups: sparse-hinge and sparse-log_loss, per-sample SGD with the same loss, penalty and schedule
in both (like for like); fastgd's mini-batch Adam with lazy updates in the log_loss group, as
context (another algorithm).  With --benchmark-disable (the smoke run) each fit runs once on a
small problem.
"""
import pytest

pytest.importorskip("sklearn")
from threadpoolctl import threadpool_limits  # noqa: E402

from fastgd import bench  # noqa: E402

SMOKE = dict(rows=2_000, features=2**12, nonzeros=20)


@pytest.fixture(scope="module")
def data(request):
    enabled = not request.config.getoption("benchmark_disable", False)
    return bench.sparse_data() if enabled else bench.sparse_data(**SMOKE)


@pytest.mark.parametrize("name, batch_size", list(bench._sparse_contenders()), ids=lambda v: str(v).replace(" ", "-"))
def test_fit_5_epochs(benchmark, data, name, batch_size):
    X, y, X_test, y_test = data
    make = bench._sparse_contenders()[name, batch_size]
    benchmark.group = "sparse-hinge" if "hinge" in name else "sparse-log_loss"
    with threadpool_limits(1):
        model = benchmark.pedantic(lambda: make().fit(X, y), rounds=3 if benchmark.enabled else 1,
                                   warmup_rounds=1 if benchmark.enabled else 0)
    assert model.score(X_test, y_test) > 0.55  # it learned (the labels hold 5% noise)
