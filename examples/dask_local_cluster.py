"""Data-parallel training on a local Dask cluster: fastgd.dask.DataParallel against a fit in
one process.

The script starts a LocalCluster (processes, one thread each), makes a regression problem
on the workers (X from dask.array's random generator, y = X @ w + 0.5 + noise, persisted
there, several blocks a worker) and trains fastgd.LinearRegression on it twice with the same
settings: by DataParallel (a replica on each worker, averaged every epoch; the data stays
on the workers) and by the estimator's own fit in this process, on the same rows gathered
here.  It prints the time per epoch, the R^2 on the data and each model's objective
(mean squared error / 2) above the single fit's, and exits with an error if DataParallel's
R^2 falls short of the single fit's by more than 0.01.

    python examples/dask_local_cluster.py [--rows 1000000] [--features 50] [--epochs 5] [--workers 2]
"""
import argparse
import importlib
import math
import sys
import time

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait

import fastgd
from fastgd.dask import DataParallel


def objective(model, X, y):
    """Mean squared error / 2 of the model on the dask arrays X, y, computed on the cluster."""
    residual = X @ model.coef_ + model.intercept_ - y
    return float((0.5 * residual**2).mean().compute())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      worker_dashboard_address=None) as cluster, Client(cluster) as client:
        # made and kept on the workers: four blocks a worker
        block = math.ceil(args.rows / (4 * args.workers))
        rng = da.random.default_rng(args.seed)
        X = rng.standard_normal((args.rows, args.features), chunks=(block, args.features))
        w = np.linspace(-1, 1, args.features)
        y = X @ w + 0.5 + 0.1 * rng.standard_normal(args.rows, chunks=block)
        X, y = client.persist([X, y])
        wait([X, y])
        client.run(importlib.import_module, "fastgd.linear_model")  # timed below: the training, not the import

        def model():
            return fastgd.LinearRegression(optimizer="sgd", batch_size=32, learning_rate=0.01,
                                           max_iter=args.epochs, tol=None, random_state=args.seed)

        start = time.perf_counter()
        parallel = DataParallel(model(), client=client).fit(X, y)
        parallel_seconds = time.perf_counter() - start

        # the single fit needs every row in this process: fine at the default size (400 MB),
        # not for data that only the cluster can hold
        X_here, y_here = dask.compute(X, y)
        start = time.perf_counter()
        single = model().fit(X_here, y_here)
        single_seconds = time.perf_counter() - start

        rows = {"single-machine": (single_seconds / single.n_iter_, single.score(X_here, y_here),
                                   objective(single, X, y)),
                "DataParallel": (parallel_seconds / parallel.n_iter_, parallel.score(X, y),
                                 objective(parallel, X, y))}

    print(f"{args.rows:,} x {args.features} float64 rows in {X.numblocks[0]} blocks on {args.workers} workers; "
          f"LinearRegression(optimizer='sgd', batch_size=32, learning_rate=0.01), {args.epochs} epochs; "
          f"DataParallel: {parallel.n_replicas_} replicas, averaged every epoch")
    print(f"{'':16}{'s/epoch':>9}{'R^2':>10}{'objective gap':>15}")
    reference = rows["single-machine"][2]
    for name, (seconds, r2, value) in rows.items():
        print(f"{name:16}{seconds:>9.3f}{r2:>10.5f}{100 * (value - reference) / reference:>+14.2f}%")
    if rows["DataParallel"][1] < rows["single-machine"][1] - 0.01:
        sys.exit("DataParallel's R^2 falls short of the single-machine fit's by more than 0.01")


if __name__ == "__main__":
    main()
