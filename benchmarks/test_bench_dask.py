"""Benchmark of fastgd.dask.DataParallel: time per epoch on two workers against one, on
2,000,000 x 100 float64 rows made on the workers of a two-worker LocalCluster (processes,
one thread each, started here), the same model in every contender:
LinearRegression(optimizer="sgd", batch_size=32, learning_rate=0.01), 5 epochs.

    python -m pytest benchmarks/test_bench_dask.py --benchmark-group-by=group

The contenders (group dask-2000000x100-batch32-5epochs):

  fit-one-worker          the estimator's own fit, in one worker process, on all rows
                          (one NumPy array; it shuffles across all rows)
  DataParallel-1-worker   DataParallel with every block on one worker: one replica
                          (it shuffles within each block of 250,000 rows)
  DataParallel-2-workers  half the blocks on each worker: two replicas, averaged every
                          epoch (sync_every=1) or every 5 (sync_every=5: once a fit)

Per-epoch time is the reported time / 5.  Each test also checks the objective its model
reaches against fit-one-worker's: within 1%.  With --benchmark-disable (the smoke run) each
fit runs once, on SMOKE rows.  Needs dask[distributed] (skipped without it).
"""
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
import dask.array as da  # noqa: E402

import fastgd  # noqa: E402
from fastgd.dask import DataParallel  # noqa: E402

FULL = dict(rows=2_000_000, features=100, blocks=8)
SMOKE = dict(rows=20_000, features=10, blocks=4)
EPOCHS = 5


def _model():
    return fastgd.LinearRegression(optimizer="sgd", batch_size=32, learning_rate=0.01, max_iter=EPOCHS, tol=None,
                                   random_state=0)


def _half_squared_error(coef, intercept, X, y):
    return float(0.5 * np.mean((X @ coef + intercept - y) ** 2))


def _objective(cluster, model):
    """The model's objective (mean half squared error; alpha is 0), computed on the worker holding
    all rows in one block, so that no block moves."""
    X, y = cluster["whole"]
    return cluster["client"].submit(_half_squared_error, model.coef_, model.intercept_, X, y,
                                    workers=[cluster["first"]], pure=False).result()


@pytest.fixture(scope="module")
def cluster(request):
    shape = SMOKE if request.config.getoption("benchmark_disable", False) else FULL
    rows, features, blocks = shape["rows"], shape["features"], shape["blocks"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as local, distributed.Client(local) as client:
        first, second = sorted(client.nthreads())  # not scheduler_info(): see tests/test_dask.py
        rng = da.random.default_rng(0)
        X = rng.standard_normal((rows, features), chunks=(rows // blocks, features))
        y = X @ np.linspace(-1, 1, features) + 0.5 + 0.1 * rng.standard_normal(rows, chunks=rows // blocks)
        half = rows // 2
        # the same rows three times over: split between the workers, all on the first, in one block on the first
        spread = [client.persist(part, workers=[worker], allow_other_workers=False)
                  for part, worker in ((X[:half], first), (X[half:], second), (y[:half], first), (y[half:], second))]
        spread = da.concatenate(spread[:2]), da.concatenate(spread[2:])
        # (copies: blocks of their own, not X's, half of which the second worker holds)
        alone = client.persist([X.map_blocks(np.copy), y.map_blocks(np.copy)], workers=[first],
                               allow_other_workers=False)
        whole = client.persist([X.rechunk({0: -1}), y.rechunk(-1)], workers=[first], allow_other_workers=False)
        distributed.wait([*spread, *alone, *whole])
        yield dict(client=client, first=first, spread=spread, alone=alone,
                   whole=[distributed.futures_of(array)[0] for array in whole])


def _fit_one_worker(cluster):
    X, y = cluster["whole"]
    return cluster["client"].submit(_model().fit, X, y, workers=[cluster["first"]], pure=False).result()


CONTENDERS = {
    "fit-one-worker": _fit_one_worker,
    "DataParallel-1-worker": lambda c: DataParallel(_model(), client=c["client"]).fit(*c["alone"]),
    "DataParallel-2-workers-sync_every=1": lambda c: DataParallel(_model(), client=c["client"]).fit(*c["spread"]),
    "DataParallel-2-workers-sync_every=5": lambda c: DataParallel(_model(), client=c["client"],
                                                                  sync_every=5).fit(*c["spread"]),
}


@pytest.fixture(scope="module")
def reference_objective(cluster):
    return _objective(cluster, _fit_one_worker(cluster))


@pytest.mark.parametrize("contender", list(CONTENDERS))
def test_fit_5_epochs(benchmark, cluster, reference_objective, contender):
    rows, features = cluster["alone"][0].shape
    benchmark.group = f"dask-{rows}x{features}-batch32-{EPOCHS}epochs"
    fit = CONTENDERS[contender]
    model = benchmark.pedantic(lambda: fit(cluster), rounds=3 if benchmark.enabled else 1, warmup_rounds=1)
    if contender.startswith("DataParallel"):
        assert model.n_replicas_ == (2 if "2-workers" in contender else 1) and model.n_iter_ == EPOCHS
    objective = _objective(cluster, model)
    assert abs(objective - reference_objective) <= 0.01 * reference_objective
