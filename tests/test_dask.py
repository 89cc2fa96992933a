"""Tests of fastgd.dask.DataParallel (local SGD on a Dask cluster), on a two-worker process
LocalCluster (the dask_client fixture, conftest.py).

Oracles: the single-machine fit of the same estimator (exactly equal where the method says
so: full-batch steps with one block a replica average to the full-batch step on all rows,
for any optimizer linear in the gradient), objectives computed here in NumPy and
scikit-learn's metrics.  No number produced by fastgd itself is hard-coded.
"""
import os
import re
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from scipy import sparse  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402

import fastgd  # noqa: E402
from fastgd.dask import DataParallel  # noqa: E402


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_without_dask_the_import_error_says_what_to_install():
    code = "import sys; sys.modules['distributed'] = None; import fastgd.dask"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode != 0
    assert 'pip install "fastgd[dask]"' in result.stderr


def test_without_a_client_the_input_type_is_checked_first_then_the_client_is_asked_for():
    # no client at all (the fixture's is the default one in this process): a process of its own
    code = """if True:
        import numpy as np, dask.array as da, fastgd
        from fastgd.dask import DataParallel
        model = DataParallel(fastgd.SGDClassifier())
        X, y = np.ones((4, 2)), np.array([0, 1, 0, 1])
        for data in ((X, y), (da.from_array(X), da.from_array(y))):
            try:
                model.fit(*data)
            except Exception as error:
                print(type(error).__name__, error)
        print(hasattr(model, "estimator_"))
    """
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
    wrong_type, no_client, fitted = result.stdout.splitlines()
    assert wrong_type.startswith("TypeError X is a ndarray; expected a dask array")
    assert no_client.startswith("ValueError DataParallel found no Dask client")
    assert "pass one as client=" in no_client
    assert fitted == "False"


def _data(rows, features, classifier, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    score = X @ rng.normal(size=features) + 0.3
    if classifier:
        return X, (score + 0.5 * rng.normal(size=rows) > 0).astype(np.int64)
    return X, score + 0.1 * rng.normal(size=rows)


def _workers(client):
    """The cluster's worker addresses, asked of the scheduler.  Not scheduler_info()["workers"]:
    the client refreshes that cache every few seconds without the workers (distributed 2026.8),
    so a refresh between its fetch and its return leaves it empty."""
    return sorted(client.nthreads())


def _placed(client, X, y, blocks_per_worker, *more, parts=None, sparse_format="csr"):
    """X, y (and any more arrays of a value a row) as dask arrays whose blocks are sent to the
    workers in turn (the blocks of each worker adjacent), each worker holding blocks_per_worker
    blocks (of the rows in `parts`, an array of row indices a block, if given; else of equal
    parts); then the futures of the blocks sent.  A sparse X is sent as blocks of
    sparse_format.  The arrays are persisted here, where checked: left to DataParallel's persist
    at each call, a block's task (an alias of its sent data) may be stolen by the other worker
    while its own is busy, moving the block (seen with distributed 2024.1, in a full run), so that
    the replicas of a partial_fit trained on other blocks from one call to the next."""
    client.wait_for_workers(2, timeout=120)  # the fixture's two workers (one may be restarting)
    workers = _workers(client)
    if parts is None:
        parts = np.array_split(np.arange(X.shape[0]), len(workers) * blocks_per_worker)
    arrays = [X, y, *more]
    wanted = [workers[index // blocks_per_worker] for index in range(len(parts))]  # each block's worker
    for _ in range(5):  # (a block moved as it was persisted: sent again)
        blocks, futures = [[] for _ in arrays], []
        for rows, worker in zip(parts, wanted):
            for array, pieces in zip(arrays, blocks):
                piece = array[rows]
                meta = None
                if sparse.issparse(piece):
                    piece, meta = piece.asformat(sparse_format), sparse.csr_matrix((0, piece.shape[1])).asformat(sparse_format)
                future = client.scatter(piece, workers=[worker], hash=False)
                futures.append(future)
                pieces.append(da.from_delayed(future, shape=piece.shape, dtype=array.dtype, meta=meta))
        placed = client.persist([da.concatenate(pieces) for pieces in blocks])
        persisted = [future for placed_array in placed for future in distributed.futures_of(placed_array)]
        distributed.wait(persisted)
        holders = client.who_has(persisted)
        if all(sorted(holders[key]) == [worker] for placed_array in placed
               for key, worker in zip(_block_keys(placed_array), wanted)):
            return (*placed, futures)
    raise AssertionError(f"Dask kept moving the blocks as they were persisted: {holders}")


def _block_keys(array):
    """A dask array's keys, a row block each (one chunk of columns), in row order."""
    return [key[0] if isinstance(key, list) else key for key in array.__dask_keys__()]


def _objective(model, X, y):
    """The estimator's objective (its mean loss plus its L2 penalty), computed here."""
    coef, intercept = np.ravel(model.coef_), np.ravel(model.intercept_)
    scores = X @ coef + intercept[0]
    if isinstance(model, fastgd.LinearRegression) or getattr(model, "loss", None) == "squared_error":
        loss = 0.5 * np.mean((scores - y) ** 2)
    else:
        loss = log_loss(y, 1 / (1 + np.exp(-scores)))
    return loss + 0.5 * model.alpha * coef @ coef


def _optimum(X, y, alpha, classifier):
    """The objective's minimum (no penalty on the intercept), by L-BFGS from SciPy."""
    from scipy.optimize import minimize

    def objective(theta):
        coef, intercept = theta[:-1], theta[-1]
        scores = X @ coef + intercept
        if classifier:  # mean log loss of labels 0/1, stably, and its gradient
            loss = np.mean(np.logaddexp(0, scores) - y * scores)
            residual = 1 / (1 + np.exp(-scores)) - y
        else:
            loss = 0.5 * np.mean((scores - y) ** 2)
            residual = scores - y
        gradient = np.append(X.T @ residual / y.size + alpha * coef, residual.mean())
        return loss + 0.5 * alpha * coef @ coef, gradient

    found = minimize(objective, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B", options=dict(gtol=1e-10))
    assert found.success, found.message
    return found.fun


@pytest.mark.parametrize("make", [
    lambda: fastgd.LinearRegression(optimizer="momentum", learning_rate=0.1, alpha=0.01),
    lambda: fastgd.LogisticRegression(optimizer="nesterov", learning_rate=0.5, alpha=0.01),
], ids=["LinearRegression", "LogisticRegression"])
@pytest.mark.parametrize("sync_every", [1, None])
def test_full_batch_steps_average_to_the_single_machine_steps(dask_client, make, sync_every):
    # one block a replica, one full-batch step a replica an epoch, averaged by rows: the same
    # step as on all rows at once (the mean gradient is the rows' weighted mean of the blocks'),
    # and the momentum buffers kept per replica average the same way (linear in the gradients)
    classifier = isinstance(make(), fastgd.LogisticRegression)
    X, y = _data(1001, 6, classifier)
    Xd, yd, _held = _placed(dask_client, X, y, blocks_per_worker=1)
    epochs = 1 if sync_every is None else 5
    options = dict(batch_size=None, max_iter=epochs, tol=None)
    parallel = DataParallel(make().set_params(**options), client=dask_client, sync_every=sync_every).fit(Xd, yd)
    single = make().set_params(**options).fit(X, y)
    assert parallel.n_replicas_ == 2
    assert parallel.n_iter_ == epochs
    np.testing.assert_allclose(parallel.coef_, single.coef_, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(parallel.intercept_, single.intercept_, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("make", [
    lambda: fastgd.LinearRegression(optimizer="momentum", learning_rate=0.1, alpha=0.01),
    lambda: fastgd.LogisticRegression(optimizer="sgd", learning_rate=0.5, alpha=0.01),
], ids=["LinearRegression", "LogisticRegression"])
def test_sample_weights_average_by_their_sums(dask_client, make):
    # with sample_weight the objective is the weighted mean loss: the replicas' full-batch steps
    # average to the single-machine one when weighted by their blocks' weight sums
    classifier = isinstance(make(), fastgd.LogisticRegression)
    X, y = _data(1001, 6, classifier, seed=4)
    weights = np.random.default_rng(5).uniform(0.1, 3.0, size=y.size) * (np.arange(y.size) < 700)
    Xd, yd, wd, _held = _placed(dask_client, X, y, 1, weights)
    options = dict(batch_size=None, max_iter=4, tol=None)
    parallel = DataParallel(make().set_params(**options), client=dask_client).fit(Xd, yd, sample_weight=wd)
    single = make().set_params(**options).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(parallel.coef_, single.coef_, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(parallel.intercept_, single.intercept_, rtol=1e-10, atol=1e-14)
    unweighted = make().set_params(**options).fit(X, y)
    assert not np.allclose(parallel.coef_, unweighted.coef_, rtol=1e-3)  # the weights mattered
    assert parallel.score(Xd, yd, sample_weight=wd) == pytest.approx(single.score(X, y, sample_weight=weights),
                                                                     rel=1e-9)
    # the second worker's rows all weigh 0: nothing to train its replica on
    idle = np.where(np.arange(y.size) < 501, weights, 0.0)
    Xd, yd, wd, _held = _placed(dask_client, X, y, 1, idle)
    named = r"sample_weight \(times class_weight\)" if classifier else "sample_weight"
    with pytest.raises(ValueError, match=named + " sums to 0 over the blocks one worker holds"):
        DataParallel(make().set_params(**options), client=dask_client).fit(Xd, yd, sample_weight=wd)
    # a block of weights summing below 0, or a NaN weight, is refused as these estimators' partial_fit
    # refuses it (they were skipped: the block's rows left out of the fit without a word)
    for value, message in ((-1.0, r"sample_weight sums to -\d+"), (np.nan, "sample_weight contains NaN")):
        bad = weights.copy()
        bad[:250] = value if np.isnan(value) else -weights[:250]
        Xd, yd, wd, _held = _placed(dask_client, X, y, 2, bad)
        with pytest.raises(ValueError, match=message):
            DataParallel(make().set_params(**options), client=dask_client).fit(Xd, yd, sample_weight=wd)


@pytest.mark.parametrize("cls", [fastgd.SGDRegressor, fastgd.SGDClassifier])
def test_the_drop_ins_curve_with_sample_weight_is_their_objective(dask_client, cls):
    # the drop-ins' objective is the mean of the rows' losses, unweighted (scikit-learn's); the
    # replicas' curve weighed each block's by its weight sum: with weights 1 and 10 the first
    # epoch read 0.77 where the estimator's own fit over the same rows in the same order (the
    # oracle) has 1.77, and tol stopped it an epoch apart
    X, y = _data(400, 5, cls is fastgd.SGDClassifier, seed=2)
    weights = np.r_[np.ones(200), np.full(200, 10.0)]
    Xd, yd, wd, _held = _placed(dask_client, X, y, 2, weights, parts=np.array_split(np.arange(400), 2))
    options = dict(shuffle=False, max_iter=8, tol=None, eta0=0.001, learning_rate="constant")
    parallel = DataParallel(cls(**options), client=dask_client).fit(Xd, yd, sample_weight=wd)  # (one replica)
    single = cls(**options).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(parallel.coef_, single.coef_, rtol=1e-12)
    np.testing.assert_allclose(parallel.loss_curve_, single.loss_curve_, rtol=1e-12)


def test_a_classifiers_column_of_labels_warns_once_and_trains_as_its_labels(dask_client):
    # each block's partial_fit warned (scikit-learn's column_or_1d): 20 warnings for 4 blocks x 5 epochs
    X, y = _data(400, 3, classifier=True)
    Xd, yd, _held = _placed(dask_client, X, y, 2)
    options = dict(max_iter=5, tol=None, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        column = DataParallel(fastgd.SGDClassifier(**options), client=dask_client).fit(Xd, yd[:, None])
    said = [w for w in caught if issubclass(w.category, DataConversionWarning)]
    assert len(said) == 1 and "(400, 1), a column" in str(said[0].message) and said[0].filename == __file__
    labels = DataParallel(fastgd.SGDClassifier(**options), client=dask_client).fit(Xd, yd)
    np.testing.assert_array_equal(column.coef_, labels.coef_)


def test_the_drop_ins_replicas_weigh_in_the_curve_by_their_rows(dask_client):
    # across replicas too: the averaged curve weighed each replica's objective by its weight sum
    # (1 and 10 a row); the oracle is each replica's own partial_fit over its block, by rows
    X, y = _data(300, 5, False, seed=3)
    weights = np.r_[np.ones(100), np.full(200, 10.0)]
    parts = [np.arange(100), np.arange(100, 300)]
    Xd, yd, wd, _held = _placed(dask_client, X, y, 1, weights, parts=parts)
    options = dict(shuffle=False, max_iter=1, tol=None, eta0=0.001, learning_rate="constant")
    parallel = DataParallel(fastgd.SGDRegressor(**options), client=dask_client).fit(Xd, yd, sample_weight=wd)
    assert parallel.n_replicas_ == 2
    own = [fastgd.SGDRegressor(**options).partial_fit(X[rows], y[rows], sample_weight=weights[rows]).loss_curve_[-1]
           for rows in parts]
    assert parallel.loss_curve_[0] == pytest.approx((100 * own[0] + 200 * own[1]) / 300, rel=1e-12)


def test_a_worker_whose_weights_sum_below_0_is_refused_naming_the_sum(dask_client):
    # a drop-in's partial_fit trains on weights summing below 0 (as scikit-learn's); a replica's
    # share of the average cannot be negative (the message said the weights summed to 0)
    X, y = _data(400, 3, classifier=False)
    weights = np.where(np.arange(400) < 200, 1.0, -1.0)
    Xd, yd, wd, _held = _placed(dask_client, X, y, 1, weights)
    with pytest.raises(ValueError, match="^sample_weight sums to -200 over the blocks one worker holds"):
        DataParallel(fastgd.SGDRegressor(max_iter=2, tol=None), client=dask_client).fit(Xd, yd, sample_weight=wd)


@pytest.mark.parametrize("blocks_per_worker", [1, 2])
def test_weights_summing_beyond_float64_over_the_workers_are_refused(dask_client, blocks_per_worker):
    # each worker's sum finite (1 block: 1.5e308) or each block's (2 blocks: 1e308 each), their
    # total inf: the shares w / total were 0 (a model of zeros, a curve of zeros) or NaN (a model of
    # NaN at max_iter=1; later, an error blaming coef_ written in place), where the estimator refuses
    # such weights ("sums to inf"); the model is left as it was
    X, y = _data(400, 3, classifier=True)
    weights = np.full(400, 1.5e308 / 200 if blocks_per_worker == 1 else 1e308 / 100)
    with pytest.raises(ValueError, match="sample_weight sums to inf"):
        fastgd.LogisticRegression(max_iter=1, tol=None).fit(X, y, sample_weight=weights)
    Xd, yd, wd, _held = _placed(dask_client, X, y, blocks_per_worker, weights)
    model = DataParallel(fastgd.LogisticRegression(max_iter=1, tol=None), client=dask_client)
    with pytest.raises(ValueError, match="sample_weight sums to inf over the rows"):
        model.fit(Xd, yd, sample_weight=wd)
    assert not hasattr(model, "estimator_")


def test_another_estimator_refits_anew_and_partial_fit_refuses_it(dask_client):
    # set_params(estimator=...) of another class between partial_fit calls trained the replicas of
    # the old one (a classifier's predictions, scored as a regressor's R^2); and a refit with a
    # regressor kept the classifier's classes_, which the next partial_fit passed on (TypeError)
    X, y = _data(400, 3, classifier=True)
    Xd, yd, _held = _placed(dask_client, X, y, 1)
    target = yd.astype(np.float64)
    model = DataParallel(fastgd.SGDClassifier(max_iter=2, tol=None), client=dask_client).fit(Xd, yd)
    model.set_params(estimator=fastgd.SGDRegressor(max_iter=2, tol=None))
    coef = model.coef_.copy()
    with pytest.raises(ValueError, match="the estimator is a SGDRegressor now; the replicas .* are SGDClassifiers"):
        model.partial_fit(Xd, target)
    np.testing.assert_array_equal(model.coef_, coef)
    model.fit(Xd, target)
    assert not hasattr(model, "classes_") and isinstance(model.estimator_, fastgd.SGDRegressor)
    model.partial_fit(Xd, target)
    assert model.n_iter_ == 3


def test_predict_takes_an_x_of_unknown_width(dask_client):
    # the probe of the output's shape was np.zeros((1, X.shape[1])): TypeError on a NaN width
    X, y = _data(400, 3, classifier=True)
    Xd, yd, _held = _placed(dask_client, X, y, 1)
    model = DataParallel(fastgd.SGDClassifier(max_iter=2, tol=None), client=dask_client).fit(Xd, yd)
    unknown = Xd.map_blocks(lambda block: block, chunks=(Xd.chunks[0], (np.nan,)))
    assert np.isnan(unknown.shape[1])
    np.testing.assert_array_equal(model.predict(unknown).compute(), model.estimator_.predict(X))


@pytest.mark.parametrize("class_weight", [{0: 3.0, 1: 0.5}, "balanced"])
def test_class_weights_average_as_the_single_machine_steps(dask_client, class_weight):
    # LogisticRegression folds class weights into the rows' weights: a replica's share of the
    # average is its rows' weight with them (by rows alone, full-batch steps parted from the single fit's)
    X, y = _data(1001, 6, classifier=True, seed=7)
    y[:400] = 1  # the classes spread unevenly over the two workers
    Xd, yd, _held = _placed(dask_client, X, y, blocks_per_worker=1)
    options = dict(batch_size=None, max_iter=5, tol=None, learning_rate=0.5, class_weight=class_weight)
    parallel = DataParallel(fastgd.LogisticRegression(**options), client=dask_client).fit(Xd, yd)
    single = fastgd.LogisticRegression(**options).fit(X, y)
    np.testing.assert_allclose(parallel.coef_, single.coef_, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(parallel.intercept_, single.intercept_, rtol=1e-10, atol=1e-14)


def test_sparse_blocks_train_as_dense_blocks(dask_client):
    X, y = _data(1001, 8, classifier=True, seed=6)
    X[:, ::2] = 0
    # (not an SGD drop-in: on sparse rows their intercept steps are scaled, as scikit-learn's)
    make = lambda: fastgd.LogisticRegression(optimizer="adam", batch_size=64, max_iter=3, tol=None,  # noqa: E731
                                             random_state=0)
    Xs, ys, _held = _placed(dask_client, sparse.csr_matrix(X), y, 2)
    Xd, yd, _held_dense = _placed(dask_client, X, y, 2)
    on_sparse = DataParallel(make(), client=dask_client).fit(Xs, ys)
    on_dense = DataParallel(make(), client=dask_client).fit(Xd, yd)
    assert on_sparse.n_replicas_ == 2
    np.testing.assert_allclose(on_sparse.coef_, on_dense.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(on_sparse.intercept_, on_dense.intercept_, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(on_sparse.predict(Xs).compute(), on_dense.predict(X))
    # blocks of another sparse format are trained on as their CSR copies (made once a block)
    Xc, yc, _held_coo = _placed(dask_client, sparse.csr_matrix(X), y, 2, sparse_format="coo")
    on_coo = DataParallel(make(), client=dask_client).fit(Xc, yc)
    np.testing.assert_array_equal(on_coo.coef_, on_sparse.coef_)
    np.testing.assert_array_equal(on_coo.predict(Xc).compute(), on_sparse.predict(Xs).compute())


def _broken_block(block, fmt):
    """A block as a sparse matrix of fmt whose second entry's row (its index array's) lies far out of range."""
    matrix = sparse.csr_matrix(block).asformat(fmt)
    (matrix.row if fmt == "coo" else matrix.indices)[1] = 10**8
    return matrix


@pytest.mark.parametrize("fmt", ["coo", "csc"])
def test_sparse_blocks_of_out_of_range_indices_are_refused_before_scipy_converts_them(dask_client, fmt):
    # a worker converted a COO or CSC block to CSR before any check: SciPy's conversion wrote out
    # of bounds, killing the worker (or, in-process, the client), and after the workers' restarts a
    # fit could return a model; the estimator's own fit refuses such an X
    X, y = _data(200, 4, classifier=False, seed=11)
    blocks = da.from_array(X, chunks=(50, 4)).map_blocks(_broken_block, fmt, dtype=X.dtype,
                                                          meta=sparse.csr_matrix((0, 4)).asformat(fmt))
    with pytest.raises(ValueError, match="a block of X's .* out of range"):
        DataParallel(fastgd.LinearRegression(max_iter=2, tol=None), client=dask_client).fit(
            blocks, da.from_array(y, chunks=50))


def test_empty_blocks_train_nowhere_and_predict_nothing(dask_client):
    # X[mask] gives empty blocks; a worker holding them alone trained no replica and failed the fit
    # ("sample_weight sums to 0"), and the averaged model's predictions failed on them
    X, y = _data(600, 5, classifier=True, seed=2)
    options = dict(batch_size=None, max_iter=3, tol=None)
    rows = np.arange(600)
    Xd, yd, _held = _placed(dask_client, X, y, 1, parts=[rows, rows[:0]])  # all rows on one worker
    parallel = DataParallel(fastgd.LogisticRegression(**options), client=dask_client).fit(Xd, yd)
    single = fastgd.LogisticRegression(**options).fit(X, y)
    assert parallel.n_replicas_ == 1
    np.testing.assert_allclose(parallel.coef_, single.coef_, rtol=1e-12)
    np.testing.assert_array_equal(parallel.predict(Xd).compute(), single.predict(X))
    np.testing.assert_array_equal(parallel.predict_proba(Xd).compute(), single.predict_proba(X))
    assert parallel.score(Xd, yd) == single.score(X, y)
    empty_X, empty_y, _held_empty = _placed(dask_client, X, y, 1, parts=[rows[:0], rows[:0]])
    with pytest.raises(ValueError, match="X has no rows"):
        DataParallel(fastgd.LogisticRegression(**options), client=dask_client).fit(empty_X, empty_y)


def test_a_regressor_refuses_classes(dask_client):
    X, y = _data(200, 3, classifier=False)
    Xd, yd, _held = _placed(dask_client, X, y, 1)
    model = DataParallel(fastgd.SGDRegressor(), client=dask_client)
    for call in (model.fit, model.partial_fit):
        with pytest.raises(TypeError, match="classes is for classifiers; SGDRegressor is a regressor"):
            call(Xd, yd, classes=[0, 1])
    assert not hasattr(model, "estimator_")


def test_dask_dataframes_train_as_their_arrays_on_the_client_given():
    # on a cluster of one worker, which holds every block: on the module's two, the blocks that a
    # fit converts or persists may land on either worker (the scheduler places a new task where
    # it sees the least wait), and two fits of equal data could then group them differently.
    # Its client is not the default one: fit waited through Dask's default client ("No clients
    # found"), and score computed through it
    distributed = pytest.importorskip("distributed")
    pandas = pytest.importorskip("pandas")  # (before dask.dataframe, whose older releases raise a plain
    dd = pytest.importorskip("dask.dataframe")  # ImportError without it, which importorskip does not skip)
    X, y = _data(1000, 4, classifier=False, seed=7)
    make = lambda: fastgd.LinearRegression(max_iter=3, tol=None, random_state=0)  # noqa: E731
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            # persisted: the partitions are futures of this client, which only it can compute with
            frame, target = client.persist([dd.from_pandas(pandas.DataFrame(X, columns=list("abcd")), npartitions=4),
                                            dd.from_pandas(pandas.Series(y), npartitions=4)])
            from_frames = DataParallel(make(), client=client).fit(frame, target)
            with client.as_current():  # (the lengths are counted on the cluster)
                arrays = frame.to_dask_array(lengths=True), target.to_dask_array(lengths=True)
            from_arrays = DataParallel(make(), client=client).fit(*arrays)
            predicted = client.compute(from_frames.predict(frame)).result()
            score = from_frames.score(frame, target)
    np.testing.assert_array_equal(from_frames.coef_, from_arrays.coef_)
    np.testing.assert_array_equal(predicted, from_arrays.predict(X))
    assert score == pytest.approx(from_arrays.score(X, y), rel=1e-12)


def test_partial_fit_goes_on_with_each_replicas_optimizer_state(dask_client):
    X, y = _data(800, 5, classifier=True, seed=3)
    Xd, yd, _held = _placed(dask_client, X, y, blocks_per_worker=1)
    make = lambda: fastgd.LogisticRegression(optimizer="momentum", batch_size=None, learning_rate=0.5)  # noqa: E731
    parallel, single = DataParallel(make(), client=dask_client), make()
    for _ in range(3):
        parallel.partial_fit(Xd, yd, classes=[0, 1])
        single.partial_fit(X, y, classes=[0, 1])
    assert parallel.n_iter_ == 3 and len(parallel.loss_curve_) == 3
    np.testing.assert_allclose(parallel.coef_, single.coef_, rtol=1e-10)
    np.testing.assert_array_equal(parallel.classes_, [0, 1])


def test_string_classes_are_the_estimators(dask_client):
    # classes given as an object array were kept so, where the estimator (as scikit-learn) makes "<U"
    X, y = _data(200, 3, classifier=True, seed=4)
    labels = np.array(["no", "yes"])[y]
    Xd, yd, _held = _placed(dask_client, X, labels, blocks_per_worker=1)
    parallel = DataParallel(fastgd.SGDClassifier(), client=dask_client)
    parallel.partial_fit(Xd, yd, classes=np.array(["no", "yes"], dtype=object))
    assert parallel.classes_.dtype == parallel.estimator_.classes_.dtype == np.dtype("<U3")
    assert set(parallel.predict(X)) <= {"no", "yes"}


@pytest.mark.parametrize("make, classifier", [
    (lambda: fastgd.LinearRegression(learning_rate=0.01, batch_size=32, alpha=1e-3), False),
    (lambda: fastgd.LogisticRegression(learning_rate=0.5, batch_size=32, alpha=1e-3, lr_schedule="exponential",
                                       gamma=0.8), True),
    (lambda: fastgd.SGDRegressor(batch_size=8, eta0=0.05, alpha=1e-3), False),
    (lambda: fastgd.SGDClassifier(loss="log_loss", batch_size=8, alpha=1e-3), True),
], ids=["LinearRegression", "LogisticRegression", "SGDRegressor", "SGDClassifier"])
def test_local_sgd_reaches_the_single_machine_objective(dask_client, make, classifier):
    # the goal (same epochs, optimizer and batch size: within 1% of the single-machine
    # objective), where the single-machine fit converges: within 1% of the optimum itself
    X, y = _data(20000, 10, classifier, seed=1)
    Xd, yd, _held = _placed(dask_client, X, y, blocks_per_worker=2)
    options = dict(max_iter=10, tol=None, random_state=0)
    parallel = DataParallel(make().set_params(**options), client=dask_client).fit(Xd, yd)
    single = make().set_params(**options).fit(X, y)
    assert parallel.n_replicas_ == 2
    reached, expected = _objective(parallel.estimator_, X, y), _objective(single, X, y)
    assert abs(expected - _optimum(X, y, 1e-3, classifier)) <= 0.01 * expected
    assert abs(reached - expected) <= 0.01 * expected
    assert parallel.score(Xd, yd) == pytest.approx(parallel.estimator_.score(X, y), rel=1e-12)
    predicted = parallel.predict(Xd)
    assert isinstance(predicted, da.Array)
    np.testing.assert_array_equal(predicted.compute(), parallel.estimator_.predict(X))


def _rule_met_at(curve, tol, patience):
    """The first epoch (1-based) after which scikit-learn's SGD stopping rule stops a fit with
    this objective curve: patience epochs in a row not tol below the best before them; else None."""
    best, count = np.inf, 0
    for epoch, value in enumerate(curve, 1):
        count = count + 1 if value > best - tol else 0
        best = min(best, value)
        if count >= patience:
            return epoch
    return None


@pytest.mark.parametrize("sync_every", [1, 3])
def test_fit_stops_by_the_estimators_tol_rule(dask_client, sync_every):
    """With tol set, fit ends with the round in which the averaged objectives meet the
    estimator's stopping rule, the model that of a fit of that many epochs without tol (the
    rounds after it cancelled); a fit that runs out warns as the estimator's fit does."""
    X, y = _data(2000, 4, classifier=True, seed=3)
    Xd, yd, _held = _placed(dask_client, X, y, blocks_per_worker=1)
    make = lambda **options: fastgd.SGDClassifier(random_state=0, **options)  # noqa: E731
    stopped = DataParallel(make(tol=1e-3, max_iter=300), client=dask_client, sync_every=sync_every).fit(Xd, yd)
    met = _rule_met_at(stopped.loss_curve_, 1e-3, 5)
    assert met is not None and stopped.n_iter_ == -(-met // sync_every) * sync_every < 300
    assert len(stopped.loss_curve_) == stopped.n_iter_
    assert _rule_met_at(stopped.loss_curve_[:stopped.n_iter_ - sync_every], 1e-3, 5) is None  # no round before
    run = DataParallel(make(tol=None, max_iter=stopped.n_iter_), client=dask_client, sync_every=sync_every).fit(Xd, yd)
    np.testing.assert_array_equal(run.coef_, stopped.coef_)
    np.testing.assert_array_equal(run.intercept_, stopped.intercept_)
    with pytest.warns(ConvergenceWarning, match=r"max_iter=2\) reached before the objective stopped improving"):
        short = DataParallel(make(tol=1e-3, max_iter=2), client=dask_client, sync_every=sync_every).fit(Xd, yd)
    assert short.n_iter_ == 2


def test_verbose_prints_each_round(dask_client, capsys):
    X, y = _data(200, 3, classifier=False)
    Xd, yd = da.from_array(X, chunks=(100, 3)), da.from_array(y, chunks=100)
    DataParallel(fastgd.LinearRegression(max_iter=4, tol=None), client=dask_client, sync_every=2,
                 verbose=1).fit(Xd, yd)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" on ")[0] for line in lines] == ["-- Epochs 1-2", "-- Epochs 3-4"]


def test_bad_input_is_refused_and_changes_nothing(dask_client):
    X, y = _data(200, 3, classifier=True)
    Xd, yd = da.from_array(X, chunks=(100, 3)), da.from_array(y, chunks=100)
    model = DataParallel(fastgd.LogisticRegression(max_iter=2, tol=None), client=dask_client).fit(Xd, yd)
    coef = model.coef_.copy()
    with pytest.raises(TypeError, match="X is a ndarray; expected a dask array"):
        model.fit(X, yd)
    with pytest.raises(ValueError, match="along its columns"):
        model.fit(da.from_array(X, chunks=(100, 2)), yd)
    with pytest.raises(ValueError, match="row blocks"):
        model.fit(Xd, da.from_array(y, chunks=50))
    with pytest.raises(ValueError, match="sample_weight's"):
        model.fit(Xd, yd, sample_weight=da.ones(200, chunks=40))
    # blocks of unknown size: each array named with its own remedy (y's and sample_weight's were
    # said to differ from X's, and the rechunk suggested fails on unknown sizes)
    unknown = lambda a: a[a == a] if a.ndim == 1 else a[(a == a).all(axis=1)]  # noqa: E731 (nan chunks)
    for args, name in (((unknown(Xd), yd), "X"), ((Xd, unknown(yd)), "y"),
                       ((Xd, yd, unknown(da.ones(200, chunks=100))), "sample_weight")):
        with pytest.raises(ValueError, match=rf"{name} has blocks of unknown size; .*\({name}.compute_chunk_sizes"):
            model.fit(*args)
    with pytest.raises(TypeError, match=r"verbose='loud'; expected an integer or a bool"):  # (it printed)
        DataParallel(fastgd.LogisticRegression(), client=dask_client, verbose="loud").fit(Xd, yd)
    with pytest.raises(ValueError, match="warm_start=True; DataParallel.fit starts from zero weights"):
        DataParallel(fastgd.LogisticRegression(warm_start=True), client=dask_client).fit(Xd, yd)  # (it was ignored)
    np.testing.assert_array_equal(model.coef_, coef)
    warm = DataParallel(fastgd.LogisticRegression(max_iter=2, tol=None, warm_start=True), client=dask_client)
    warm.partial_fit(Xd, yd, classes=[0, 1])  # (partial_fit goes on, as scikit-learn's, whatever warm_start)
    with pytest.raises(ValueError, match="early_stopping=True; DataParallel holds no rows out"):
        DataParallel(fastgd.LogisticRegression(early_stopping=True), client=dask_client).fit(Xd, yd)
    with pytest.raises(TypeError, match="sample_weight is a ndarray"):
        model.fit(Xd, yd, sample_weight=np.ones(200))
    with pytest.raises(ValueError, match="average=10; DataParallel averages from the first step"):
        DataParallel(fastgd.SGDClassifier(average=10), client=dask_client).fit(Xd, yd)
    def unread(block):
        raise RuntimeError("X was read")

    for rule, message in (({"learning_rate": "optimal", "alpha": 0.0}, "alpha must be > 0"),
                          ({"penalty": "elasticnet", "l1_ratio": None}, "l1_ratio"), ({"n_jobs": 0}, "n_jobs == 0")):
        with pytest.raises(ValueError, match=message):  # the estimator's rules between parameters, before X is read
            DataParallel(fastgd.SGDClassifier(**rule), client=dask_client).fit(Xd.map_blocks(unread, dtype=Xd.dtype), yd)
    with pytest.raises(ValueError, match="sync_every=0"):
        DataParallel(fastgd.LogisticRegression(), client=dask_client, sync_every=0).fit(Xd, yd)
    for timeout in (True, float("inf"), 0, -1.0):  # (True and inf got through, and failed within Dask)
        with pytest.raises(ValueError, match="expected a finite positive number of seconds"):
            DataParallel(fastgd.LogisticRegression(), client=dask_client, timeout=timeout).fit(Xd, yd)
    with pytest.raises(TypeError, match="expected a fastgd estimator"):
        DataParallel(object(), client=dask_client).fit(Xd, yd)
    for client in (5, dask_client.scheduler.address):  # an AttributeError from within fit, before
        with pytest.raises(TypeError, match="client must be a distributed.Client or None"):
            DataParallel(fastgd.LogisticRegression(), client=client).fit(Xd, yd)
    with pytest.raises(ValueError, match="classes must be passed"):
        DataParallel(fastgd.LogisticRegression(), client=dask_client).partial_fit(Xd, yd)
    grown = DataParallel(fastgd.LogisticRegression(max_iter=2, tol=None), client=dask_client)
    grown.partial_fit(Xd, yd, classes=[0, 1])
    with pytest.raises(ValueError, match=r"classes=\[0, 1, 2\] is not the same"):
        grown.partial_fit(Xd, yd, classes=[0, 1, 2])
    with pytest.raises(TimeoutError, match="timeout"):
        model.set_params(timeout=1e-6).fit(Xd, yd)
    np.testing.assert_array_equal(model.coef_, coef)


def test_a_worker_lost_mid_fit_ends_in_a_fit_or_a_clear_error(dask_client):
    # the data is made on the workers (a graph Dask can recompute), the fit runs in a thread,
    # and one worker process exits while it runs; its nanny starts a new one
    rows, features = 20000, 10
    X = da.random.RandomState(0).normal(size=(rows, features), chunks=(2500, features))
    y = X @ da.from_array(np.linspace(-1, 1, features), chunks=features) + 0.3
    model = DataParallel(fastgd.LinearRegression(max_iter=60, tol=None, random_state=0), client=dask_client,
                         timeout=60)
    outcome = {}

    def fit():
        try:
            model.fit(X, y)
            outcome["fitted"] = True
        except Exception as error:  # the outcome is checked below
            outcome["error"] = error

    thread = threading.Thread(target=fit, daemon=True)
    thread.start()
    victim = _workers(dask_client)[0]
    while thread.is_alive() and not dask_client.run_on_scheduler(_training):
        thread.join(0.02)
    killed_during_fit = thread.is_alive()
    dask_client.run(_exit_at_once, workers=[victim], wait=False)
    thread.join(180)
    assert killed_during_fit, "the fit ended before a worker could be lost"
    assert not thread.is_alive(), "the fit hung after a worker was lost"
    if "error" in outcome:
        error = outcome["error"]
        assert isinstance(error, (TimeoutError, distributed.client.FutureCancelledError, RuntimeError,
                                  distributed.scheduler.KilledWorker)), repr(error)
        assert str(error)
        assert not hasattr(model, "estimator_")  # a failed fit changes nothing
    else:
        assert model.n_iter_ == 60
        Xc, yc = da.compute(X[:2000], y[:2000])
        assert model.score(Xc, yc) > 0.99
    dask_client.wait_for_workers(2, timeout=180)  # a new worker process; slow on a loaded machine
    deadline = time.monotonic() + 60  # it was lost (its nanny started another), once the scheduler hears of it
    while victim in _workers(dask_client) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert victim not in _workers(dask_client)


def test_blocks_lost_with_a_worker_are_said_to_be_gone(dask_client):
    # scattered blocks (nowhere else to be had): one worker process exits mid-fit, losing its share
    X, y = _data(20000, 10, classifier=False)
    Xd, yd, futures = _placed(dask_client, X, y, 2)
    model = DataParallel(fastgd.LinearRegression(max_iter=1, tol=None, random_state=0), client=dask_client,
                         timeout=60).fit(Xd, yd)
    coef = model.coef_.copy()
    model.set_params(estimator__max_iter=200)
    outcome = {}

    def fit():
        try:
            model.fit(Xd, yd)
        except Exception as error:  # checked below
            outcome["in a later fit" if outcome else "during the fit"] = error

    thread = threading.Thread(target=fit, daemon=True)
    thread.start()
    victim = _workers(dask_client)[0]
    while thread.is_alive() and not dask_client.run_on_scheduler(_training):
        thread.join(0.02)
    assert thread.is_alive(), "the fit ended before a worker could be lost"
    dask_client.run(_exit_at_once, workers=[victim], wait=False)
    thread.join(180)
    assert not thread.is_alive(), "the fit hung after a worker was lost"
    fit()  # a later fit on the same blocks
    for attempt in ("during the fit", "in a later fit"):
        error = outcome.pop(attempt)
        assert isinstance(error, RuntimeError), (attempt, repr(error))
        assert "block(s) of X, y or sample_weight are gone from the cluster" in str(error), attempt
    np.testing.assert_array_equal(model.coef_, coef)  # unchanged
    dask_client.wait_for_workers(2, timeout=180)


def _training(dask_scheduler):
    """On the scheduler: whether a round of DataParallel's epochs is among its tasks."""
    return any(str(key).startswith("fastgd-epochs") for key in dask_scheduler.tasks)


async def _exit_at_once():
    """On a worker: end its process at once, as a crash would (run(wait=False) takes a coroutine)."""
    os._exit(1)


def test_blocks_of_another_array_type_are_refused(dask_client):
    # (a pydata sparse COO block, say: it failed within with an AttributeError, 'COO' has no 'flags')
    X, y = _data(200, 3, classifier=True)
    Xd, yd = da.from_array(X, chunks=(100, 3)), da.from_array(y, chunks=100)
    model = DataParallel(fastgd.LogisticRegression(max_iter=2, tol=None), client=dask_client).fit(Xd, yd)
    coef = model.coef_.copy()
    with pytest.raises(TypeError, match=r"a block of X is a builtins.list; expected NumPy arrays or scipy.sparse "
                                        r"matrices \(convert the blocks first: X.map_blocks"):
        model.fit(Xd.map_blocks(lambda block: block.tolist(), dtype=X.dtype, meta=np.empty((0, 0))), yd)
    np.testing.assert_array_equal(model.coef_, coef)


def test_a_block_at_an_odd_address_is_aligned_once_while_it_lives():
    import gc

    from fastgd import dask as fastgd_dask
    raw = np.zeros(8 * 300 + 1, dtype=np.uint8)
    block = np.frombuffer(raw.data, dtype=np.float64, count=300, offset=1).reshape(100, 3)
    block[...] = np.arange(300).reshape(100, 3)
    assert not block.flags.aligned
    import tracemalloc
    first = fastgd_dask._aligned_once(block, "X")
    tracemalloc.start()
    again = fastgd_dask._aligned_once(block, "X")
    copied = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert first is again and first.flags.aligned and copied < block.nbytes  # one copy, made once
    np.testing.assert_array_equal(first, block)
    aligned = np.ones(4)
    assert fastgd_dask._aligned_once(aligned, "X") is aligned  # an aligned block is not copied
    key = id(block)
    del block, first, again
    gc.collect()
    assert key not in fastgd_dask._ALIGNED  # the copy goes with its block


def _slow(block):
    import time
    time.sleep(1.5)
    return block


def test_the_client_reads_the_weights_once_a_call(dask_client, monkeypatch):
    # a round's objectives are a task of their own: the client read each round's average, the
    # weights with them (8 MB at 2^20 features), to get them
    read = []
    result = distributed.Future.result

    def recording(future, *args, **kwargs):
        read.append(str(future.key))
        return result(future, *args, **kwargs)

    monkeypatch.setattr(distributed.Future, "result", recording)
    X, y = _data(400, 3, classifier=False)
    model = DataParallel(fastgd.LinearRegression(max_iter=6, tol=None, random_state=0), client=dask_client,
                         sync_every=2)
    model.fit(da.from_array(X, chunks=(100, 3)), da.from_array(y, chunks=100))
    assert sum(key.startswith("fastgd-average") for key in read) == 1  # the last round's, for the weights
    assert sum(key.startswith("fastgd-objectives") for key in read) == 3  # one a round
    assert len(model.loss_curve_) == 6 and model.loss_curve_[-1] < model.loss_curve_[0]


def test_a_timeout_leaves_the_users_data_alone(dask_client):
    X, y = _data(400, 3, classifier=False)
    Xs = dask_client.persist(da.from_array(X, chunks=(100, 3)).map_blocks(_slow))
    ys = dask_client.persist(da.from_array(y, chunks=100))
    with pytest.raises(TimeoutError, match="persisting X and y did not finish"):
        DataParallel(fastgd.LinearRegression(max_iter=2, tol=None), client=dask_client, timeout=0.2).fit(Xs, ys)
    np.testing.assert_allclose(Xs.compute(), X)  # not cancelled
    model = DataParallel(fastgd.LinearRegression(max_iter=50, tol=None), client=dask_client, timeout=1e-3)
    before = _fastgd_tasks(dask_client)
    # the epochs' rounds time out, or on a loaded machine the persisting of the data ready already
    # (a round trip to the scheduler, longer than 1 ms there): the data is left alone either way
    with pytest.raises(TimeoutError, match="epochs|persisting X and y did not finish"):
        model.fit(Xs, ys)
    np.testing.assert_allclose(Xs.compute(), X)
    _assert_none_left(dask_client, before)


def test_a_fit_failing_some_rounds_in_leaves_none_of_its_tasks(dask_client):
    # it diverges some rounds in (one an epoch); the error is held, as a traceback in a reference
    # cycle holds it until a full garbage collection (late in a long run, minutes away)
    X, y = _data(400, 3, classifier=False)
    before = _fastgd_tasks(dask_client)
    with pytest.raises(ValueError, match=r"non-finite in epoch (\d+)") as info:
        model = DataParallel(fastgd.LinearRegression(learning_rate=5.0, max_iter=200, tol=None, random_state=0),
                             client=dask_client)
        model.fit(da.from_array(X, chunks=(100, 3)), da.from_array(y, chunks=100))
    assert int(re.search(r"epoch (\d+)", str(info.value))[1]) > 2  # rounds were read before it
    _assert_none_left(dask_client, before)  # (info holds the error until the test ends)


def _broken(block, block_info=None):
    if block_info[0]["chunk-location"][0] == 1:
        raise RuntimeError("a bad input file")
    return block


def test_a_block_failing_to_compute_raises_its_error_and_holds_no_block(dask_client):
    X, y = _data(400, 3, classifier=True)
    Xd, yd = da.from_array(X, chunks=(100, 3)), da.from_array(y, chunks=100)
    model = DataParallel(fastgd.LogisticRegression(max_iter=2, tol=None), client=dask_client).fit(Xd, yd)
    coef = model.coef_.copy()
    before = _fastgd_tasks(dask_client, "_broken-")
    with pytest.raises(RuntimeError, match="a bad input file") as info:  # (an IndexError from within hid it)
        model.fit(Xd.map_blocks(_broken, dtype=Xd.dtype), yd)
    np.testing.assert_array_equal(model.coef_, coef)
    # the error held (as by a notebook's last traceback) keeps none of the blocks computed
    _assert_none_left(dask_client, before, "_broken-")
    assert info.value is not None


def _assert_none_left(client, before, prefix="fastgd-"):
    """Wait (up to 60 s) for the scheduler to let go of every task of prefix's but those in before:
    it lets a cancelled task go once the cancel reaches it, and one already running once it ends
    (Dask does not stop a running task; an audit saw them gone within about 5 s)."""
    deadline = time.monotonic() + 60
    while left := [task for key, task in _fastgd_tasks(client, prefix).items() if key not in before]:
        assert time.monotonic() < deadline, f"{prefix} tasks were still on the scheduler after 60 s: {left}"
        time.sleep(0.2)


def _fastgd_tasks(client, prefix="fastgd-"):
    """(key, state, the clients wanting it, its dependents) of each task the scheduler holds whose
    key names prefix (fastgd's by default; an array's keys are tuples); as a dict by key."""
    return {task[0]: task for task in client.run_on_scheduler(_tasks) if prefix in task[0]}


def _tasks(dask_scheduler):
    """On the scheduler: (key, state, the clients wanting it, its dependents) of each task it holds."""
    return [(str(key), task.state, sorted(client.client_key for client in task.who_wants or ()),  # (None: no client ever wanted it)
             sorted(str(dependent.key) for dependent in task.dependents))
            for key, task in dask_scheduler.tasks.items() if task.state != "released"]


def test_clones_and_copies_with_a_client(dask_client):
    import pickle

    from sklearn.base import clone
    X, y = _data(400, 3, classifier=True)
    Xd, yd = da.from_array(X, chunks=(100, 3)), da.from_array(y, chunks=100)
    model = DataParallel(fastgd.LogisticRegression(max_iter=2, tol=None), client=dask_client)
    copy_ = clone(model)
    assert copy_.client is dask_client and copy_.estimator is not model.estimator
    model.fit(Xd, yd)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.client is None  # a Client is not pickled: the copy uses the default client
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    import copy  # copies keep it (they dropped it as pickling does)
    for copied in (copy.copy(model), copy.deepcopy(model)):
        assert copied.client is dask_client
        np.testing.assert_array_equal(copied.predict(X), model.predict(X))
    deep = copy.deepcopy(model)
    assert deep.estimator_ is not model.estimator_ and deep._replicas[0] is not model._replicas[0]
    deep.partial_fit(Xd, yd)
    assert deep.n_iter_ == model.n_iter_ + 1
    assert hasattr(model, "predict_proba")
    assert not hasattr(DataParallel(fastgd.LinearRegression()), "predict_proba")
    assert not hasattr(DataParallel(fastgd.SGDClassifier(loss="hinge")), "predict_proba")
    assert not hasattr(DataParallel(fastgd.LinearRegression()), "decision_function")


def test_partial_fit_follows_the_estimators_current_parameters(dask_client):
    X, y = _data(800, 5, classifier=False, seed=8)
    Xd, yd, _held = _placed(dask_client, X, y, blocks_per_worker=1)
    make = lambda: fastgd.LinearRegression(optimizer="momentum", batch_size=None, learning_rate=0.05)  # noqa: E731
    parallel, single = DataParallel(make(), client=dask_client), make()
    parallel.partial_fit(Xd, yd)
    single.partial_fit(X, y)
    parallel.set_params(estimator__learning_rate=0.2)
    single.set_params(learning_rate=0.2)
    for _ in range(2):
        parallel.partial_fit(Xd, yd)
        single.partial_fit(X, y)
    np.testing.assert_allclose(parallel.coef_, single.coef_, rtol=1e-10)


def test_a_failed_fit_leaves_a_random_state_where_it_was(dask_client):
    X, y = _data(400, 3, classifier=False)
    y[5] = np.nan
    Xd, yd = da.from_array(X, chunks=(100, 3)), da.from_array(y, chunks=100)
    generator = np.random.RandomState(0)
    before = generator.get_state()[1].copy(), generator.get_state()[2]
    with pytest.raises(ValueError, match="NaN"):
        DataParallel(fastgd.LinearRegression(max_iter=2, tol=None, random_state=generator),
                     client=dask_client).fit(Xd, yd)
    np.testing.assert_array_equal(generator.get_state()[1], before[0])
    assert generator.get_state()[2] == before[1]


def test_a_fit_failing_early_in_a_long_chain_of_rounds_leaves_the_client_usable(dask_client):
    # its rounds (one an epoch) were cancelled first to last, and the scheduler cancels what
    # depends on a task one call deeper each: 1,000 rounds and more overflowed its stack and cut the
    # client off, so the next fit failed too
    X, y = _data(400, 3, classifier=True)
    spoiled = X.copy()
    spoiled[350, 1] = np.nan
    chunks = dict(chunks=(100, 3))
    with pytest.raises(ValueError, match="NaN"):
        DataParallel(fastgd.SGDClassifier(max_iter=3000, tol=None, random_state=0), client=dask_client).fit(
            da.from_array(spoiled, **chunks), da.from_array(y, chunks=100))
    model = DataParallel(fastgd.SGDClassifier(max_iter=3, tol=None, random_state=0), client=dask_client).fit(
        da.from_array(X, **chunks), da.from_array(y, chunks=100))
    assert model.score(X, y) > 0.8


def test_balanced_class_weights_are_those_of_all_of_y(dask_client):
    # each replica's partial_fit calls refused "balanced" on the workers, with a message about
    # partial_fit the user did not call; the oracle: scikit-learn's weights over all of y
    from sklearn.utils.class_weight import compute_class_weight
    X, y = _data(400, 3, classifier=True)
    y[:150] = 2  # three classes of unequal counts
    Xd, yd, _held = _placed(dask_client, X, y, blocks_per_worker=2)  # the same replicas for each fit
    weights = dict(zip([0, 1, 2], compute_class_weight("balanced", classes=np.arange(3), y=y)))
    options = dict(max_iter=3, tol=None, random_state=0)
    balanced = DataParallel(fastgd.SGDClassifier(class_weight="balanced", **options), client=dask_client).fit(Xd, yd)
    given = DataParallel(fastgd.SGDClassifier(class_weight=weights, **options), client=dask_client).fit(Xd, yd)
    np.testing.assert_allclose(balanced.coef_, given.coef_, rtol=1e-12)
    assert not np.allclose(balanced.coef_, DataParallel(fastgd.SGDClassifier(**options), client=dask_client)
                           .fit(Xd, yd).coef_)
    with pytest.raises(ValueError, match="class_weight='balanced'.*partial_fit"):
        DataParallel(fastgd.SGDClassifier(class_weight="balanced"), client=dask_client).partial_fit(
            Xd, yd, classes=[0, 1, 2])


def test_the_averaged_weights_are_read_only(dask_client):
    # an edit of coef_ in place was accepted and then lost: partial_fit goes on from the replicas
    X, y = _data(400, 3, classifier=False)
    Xd, yd = da.from_array(X, chunks=(100, 3)), da.from_array(y, chunks=100)
    model = DataParallel(fastgd.SGDRegressor(max_iter=2, tol=None, random_state=0), client=dask_client).fit(Xd, yd)
    for name in ("coef_", "intercept_"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(model, name)[0] = 7.0
    np.testing.assert_array_equal(model.coef_, model.estimator_.coef_)


def test_a_diverging_fit_warns_as_the_estimators(dask_client):
    # full-batch steps at 2.25 / L: the objective grows 1.5x an epoch; the estimator's fit warns that
    # it diverged, and DataParallel's fit of it (whose curve climbs the same way) said nothing
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=200)
    with_ones = np.c_[X, np.ones(200)]
    lr = 2.25 / np.linalg.eigvalsh(with_ones.T @ with_ones / 200).max()
    estimator = fastgd.LinearRegression(batch_size=None, learning_rate=lr, max_iter=8, tol=None)
    with pytest.warns(ConvergenceWarning, match="it diverged"):
        model = DataParallel(estimator, client=dask_client).fit(da.from_array(X, chunks=100), da.from_array(y, chunks=100))
    assert model.loss_curve_[-1] > 2 * model.loss_curve_[0]


@pytest.mark.parametrize("case", ["one epoch", "average", "fitted well", "classifier fitted well"])
def test_the_returned_model_is_judged_as_the_estimators_judge_theirs(dask_client, case):
    """The estimators warn when the model a fit returns has an objective over twice zero weights'
    (see test_a_returned_model_worse_than_none_warns); DataParallel judged the curve alone, which
    missed a one-epoch fit (its point is before the step) and an average far from its iterate.
    The oracle: the objective computed here from the averaged model's predictions."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = X @ np.array([1.0, -2, 3, 0.5, 0]) + 1 + 0.3 * rng.standard_normal(300)
    LR = fastgd.LinearRegression
    estimator = {"one epoch": LR(learning_rate=10, batch_size=None, max_iter=1, tol=None),
                 # (Dask places the three blocks: on one worker, a block a step, lr=10 left this
                 # average at about zero weights' objective; lr=30 puts it far above on any placement)
                 "average": LR(optimizer="rmsprop", learning_rate=30, batch_size=None, average=True, max_iter=20,
                               tol=None),
                 "fitted well": LR(random_state=0, max_iter=20, tol=None),
                 "classifier fitted well": fastgd.LogisticRegression(random_state=0, max_iter=20, tol=None)}[case]
    if case.startswith("classifier"):
        y = (y > 1).astype(int)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = DataParallel(estimator, client=dask_client).fit(da.from_array(X, chunks=100),
                                                                 da.from_array(y, chunks=100))
    said = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    if case.startswith("classifier"):
        scores = model.decision_function(X)
        objective, at_zero = np.mean(np.logaddexp(0, scores) - y * scores), np.log(2)
    else:
        objective, at_zero = 0.5 * np.mean((model.predict(X) - y) ** 2), np.mean(y ** 2) / 2
    if "well" in case:
        assert objective < at_zero and not any("diverged" in message for message in said), said
    else:
        assert objective > 2 * at_zero
        assert len(said) == 1 and "fitted model's objective over the rows trained on" in said[0], said


@pytest.mark.parametrize("make", [fastgd.LinearRegression, fastgd.LogisticRegression])
def test_a_block_of_zero_weights_is_skipped_by_the_returned_models_objective(dask_client, make):
    # training skips a block whose weights sum to 0; the returned model's objective pass took it
    # and failed the fit (scikit-learn's check refuses weights that are all zero)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3))
    y = X @ np.array([1.0, -2, 0.5])
    y = (y > 0).astype(int) if make is fastgd.LogisticRegression else y
    weights = np.ones(400)
    weights[100:200] = 0
    # placed: the zero-weight block beside another on its worker (alone on one, as Dask may put
    # it, the fit is refused: that worker's weights sum to 0, test_sample_weights_average_by_their_sums)
    Xd, yd, wd, _held = _placed(dask_client, X, y, 2, weights)
    model = DataParallel(make(max_iter=3, tol=None, random_state=0), client=dask_client).fit(Xd, yd, wd)
    assert model.n_replicas_ == 2 and model.n_iter_ == 3 and np.isfinite(model.coef_).all()


@pytest.mark.parametrize("make", [fastgd.SGDRegressor, fastgd.LinearRegression])
def test_replicas_shuffle_their_blocks_anew_every_epoch(make):
    """A replica's epoch is a partial_fit call a block; a drop-in's, as scikit-learn's, draws its
    shuffling seed from random_state at each call, so that replicas seeded by an int would take
    a block in one order every epoch.  Each replica shuffles from a generator of its own."""
    X, y = _data(50, 3, classifier=False, seed=2)
    first, second = DataParallel(make(random_state=0))._new_replicas(2)
    orders = []
    for replica in (first, first, second):
        order = np.arange(50, dtype=np.intp)
        replica.partial_fit(X, y)
        replica._shuffle(order)  # (what its shuffles have come to)
        orders.append(order.tolist())
    assert orders[0] != orders[1] and orders[0] != orders[2]


def test_mixed_string_and_number_labels_are_named_as_the_estimator_names_them(dask_client):
    # da.unique sorted them: NumPy's "'<' not supported between instances of 'int' and 'str'"
    X, y = _data(40, 3, classifier=True)
    labels = np.array(["no" if label else 1 for label in y], dtype=object)
    labels[:20] = 1  # one block of numbers only, the other a mix
    Xd, yd = da.from_array(X, chunks=(20, 3)), da.from_array(labels, chunks=20)
    with pytest.raises(ValueError) as own:
        fastgd.LogisticRegression().fit(X, labels)
    model = DataParallel(fastgd.LogisticRegression(max_iter=2), client=dask_client)
    with pytest.raises(ValueError, match=re.escape(str(own.value))):
        model.fit(Xd, yd)
    assert not hasattr(model, "estimator_")


@pytest.mark.parametrize("second", ["fit", "partial_fit"])
def test_a_call_while_another_runs_is_refused_as_the_estimators_refuse_it(dask_client, monkeypatch, second):
    # two threads' partial_fit both started from the same replicas: the last to end overwrote the
    # other's epoch without a word
    X, y = _data(60, 3, classifier=False)
    Xd, yd = da.from_array(X, chunks=30), da.from_array(y, chunks=30)
    model = DataParallel(fastgd.LinearRegression(max_iter=2, tol=None), client=dask_client).partial_fit(Xd, yd)
    started, release = threading.Event(), threading.Event()
    train = DataParallel._train

    def held(self, *args, **kwargs):  # the first call, held in its training until the second has run
        started.set()
        release.wait(60)
        return train(self, *args, **kwargs)

    monkeypatch.setattr(DataParallel, "_train", held)
    first = threading.Thread(target=lambda: model.partial_fit(Xd, yd))
    first.start()
    try:
        assert started.wait(60)
        with pytest.raises(RuntimeError, match=f"{second} refused: a partial_fit of this DataParallel is running "
                                               r"already \(in another thread\)"):
            getattr(model, second)(Xd, yd)
    finally:
        release.set()
        first.join(60)
    monkeypatch.setattr(DataParallel, "_train", train)
    assert model.n_iter_ == 2 and len(model.loss_curve_) == 2
    model.partial_fit(Xd, yd)  # (the lock released)
    assert model.n_iter_ == 3
