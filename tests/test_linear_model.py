"""Tests of the scikit-learn estimators fastgd.LinearRegression and fastgd.LogisticRegression.

Oracles: scikit-learn's estimator checks, ``fastgd.reference`` (the same
estimators with each epoch run by a plain NumPy loop), direct solvers of the
same objective (sklearn's Ridge and lbfgs LogisticRegression) and closed-form
properties.  No number produced by fastgd itself is hard-coded.
"""
import copy
import functools
import os
import pickle
import subprocess
import sys
import threading
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
from scipy import sparse
from scipy.special import logsumexp

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LinearRegression as SkLinearRegression  # noqa: E402
from sklearn.linear_model import LogisticRegression as SkLogisticRegression  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.linear_model import SGDRegressor as SkSGDRegressor  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastgd  # noqa: E402
from fastgd import reference  # noqa: E402

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adagrad", "adamw", "adamax", "adadelta", "lion", "radam", "nadam")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# -- 1. scikit-learn's estimator checks --------------------------------------------

# scikit-learn lists check_sample_weight_equivalence_on_dense_data as an expected failure of its
# SGD: a weight of 2 is not the same as the sample given twice once the samples are shuffled and
# split into mini-batches.  Here the objective is the weighted mean loss, a batch's gradient its
# estimate, and the check's data fit in one batch of the default size, so it passes for every
# instance below; the full-batch instances are where it must hold whatever the data.


@parametrize_with_checks(
    [fastgd.LinearRegression(max_iter=20), fastgd.LogisticRegression(max_iter=20),
     fastgd.LinearRegression(max_iter=200, batch_size=None, shuffle=False, learning_rate=0.1),
     fastgd.LogisticRegression(max_iter=20, batch_size=None, shuffle=False)],
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- helpers: the objective, computed independently -----------------------------


def linear_objective(coef, intercept, X, y, alpha, sample_weight=None):
    r = X @ coef + intercept - y
    return np.average(0.5 * r**2, weights=sample_weight) + 0.5 * alpha * float(coef @ coef)


def logistic_objective(coef, intercept, X, y, alpha, classes, sample_weight=None):
    coef = np.atleast_2d(coef)
    scores = X @ coef.T + intercept
    if coef.shape[0] == 1:
        z = scores[:, 0]
        t = (y == classes[1]).astype(float)
        losses = np.logaddexp(0, z) - t * z
    else:
        idx = np.searchsorted(classes, y)
        losses = logsumexp(scores, axis=1) - scores[np.arange(len(y)), idx]
    return np.average(losses, weights=sample_weight) + 0.5 * alpha * float(np.sum(coef**2))


def _data(rng, n=23, d=4, task="linear"):
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d)
    if task == "linear":
        y = X @ w + 0.5 + 0.1 * rng.standard_normal(n)
    elif task == "binary":
        y = (X @ w + 0.3 * rng.standard_normal(n) > 0).astype(int)
    else:
        y = np.arange(n) % 3
        X[:, 0] += y
    return X, y


def _opt_kwargs(optimizer):
    lr = {"sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "rmsprop": 0.01, "adam": 0.02,
          "adamw": 0.02, "adagrad": 0.1, "adamax": 0.02, "adadelta": 1.0, "lion": 0.002, "radam": 0.02, "nadam": 0.02}[optimizer]
    kw = dict(optimizer=optimizer, learning_rate=lr)
    if optimizer == "momentum":
        kw["dampening"] = 0.1
    if optimizer == "rmsprop":
        kw.update(centered=True, rho=0.9)
    if optimizer == "adam":
        kw["amsgrad"] = True
    if optimizer == "adamw":
        kw["weight_decay"] = 0.05
    if optimizer == "adagrad":
        kw.update(lr_decay=0.01, initial_accumulator_value=0.1)
    return kw


def _assert_same_model(a, b, tol=1e-10):
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=tol, atol=tol)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=tol, atol=tol)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=tol, atol=tol)
    assert a.n_iter_ == b.n_iter_


# -- 2. equality with the NumPy reference ------------------------------------------------


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("batch_size", [1, 7, None])
@pytest.mark.parametrize("schedule", ["constant", "invscaling", "cosine"])
@pytest.mark.parametrize("task", ["linear", "binary", "multiclass"])
def test_matches_reference(optimizer, batch_size, schedule, task):
    # a seed per case, the same in every run (hash() of a str is salted per process)
    rng = np.random.default_rng(zlib.crc32(repr((optimizer, batch_size, schedule, task)).encode()))
    X, y = _data(rng, task=task)
    sw = rng.uniform(0.5, 2.0, size=len(y))
    kw = dict(_opt_kwargs(optimizer), batch_size=batch_size, lr_schedule=schedule, max_iter=5, tol=None,
              alpha=0.01, shuffle=True, random_state=3)
    name = "LinearRegression" if task == "linear" else "LogisticRegression"
    fast = getattr(fastgd, name)(**kw).fit(X, y, sample_weight=sw)
    ref = getattr(reference, name)(**kw).fit(X, y, sample_weight=sw)
    assert fast.coef_.dtype == np.float64
    assert len(fast.loss_curve_) == 5
    _assert_same_model(fast, ref)


@pytest.mark.parametrize("schedule", ["exponential", "step", "adaptive"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_matches_reference_other_schedules(schedule, fit_intercept):
    rng = np.random.default_rng(7)
    X, y = _data(rng, n=31, task="multiclass")
    kw = dict(optimizer="adam", learning_rate=0.05, batch_size=4, lr_schedule=schedule, gamma=0.7, step_size=2,
              max_iter=8, tol=1e-3, n_iter_no_change=1, fit_intercept=fit_intercept, random_state=0)
    _assert_same_model(fastgd.LogisticRegression(**kw).fit(X, y), reference.LogisticRegression(**kw).fit(X, y))


@pytest.mark.parametrize("schedule", ["constant", "invscaling"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_fit_leaves_the_optimizer_as_its_steps_do(optimizer, schedule):
    """The compiled epoch steps the optimizer as Optimizer.step does: after a fit its step counts
    and state are those of the reference (whose epochs call step()), and its learning rate is the
    schedule's last, eta0 / t ** power_t at the fit's last step t under invscaling."""
    rng = np.random.default_rng(11)
    X, y = _data(rng, n=37, task="linear")
    kw = dict(_opt_kwargs(optimizer), batch_size=8, lr_schedule=schedule, max_iter=3, tol=None, random_state=0)
    fast = fastgd.LinearRegression(**kw).fit(X, y)
    ref = reference.LinearRegression(**kw).fit(X, y)
    steps = 3 * -(-37 // 8)
    expected_lr = kw.get("learning_rate", 0.01) / steps ** 0.25 if schedule == "invscaling" else kw.get("learning_rate", 0.01)
    for model in (fast, ref):
        group = model._optimizer.param_groups[0]
        assert group["lr"] == pytest.approx(expected_lr, rel=1e-15)
    saved, ref_saved = fast._optimizer.state_dict(), ref._optimizer.state_dict()
    assert saved["param_groups"] == ref_saved["param_groups"]
    assert saved["state"].keys() == ref_saved["state"].keys()
    for key, value in saved["state"].get(0, {}).items():
        if key == "step":
            assert value == ref_saved["state"][0]["step"] == steps
        else:
            np.testing.assert_allclose(value, ref_saved["state"][0][key], rtol=1e-10, atol=1e-12)
    assert optimizer == "sgd" or saved["state"]  # state to compare


# -- 3. real data: the objective reached against a direct solver ----------------------------


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def test_ridge_mapping():
    """mean(r^2)/2 + alpha/2 ||w||^2 is minimized by Ridge(alpha=alpha * sum(sample_weight)):
    the gradient of our objective vanishes at Ridge's solution."""
    X, y = _diabetes()
    rng = np.random.default_rng(0)
    sw = rng.uniform(0.5, 2, len(y))
    alpha = 0.05
    r = Ridge(alpha=alpha * sw.sum(), tol=1e-12).fit(X, y, sample_weight=sw)
    res = X @ r.coef_ + r.intercept_ - y
    grad_w = (sw * res) @ X / sw.sum() + alpha * r.coef_
    grad_b = np.average(res, weights=sw)
    assert np.linalg.norm(grad_w) < 1e-8 and abs(grad_b) < 1e-8


@pytest.mark.parametrize("multiclass", [False, True])
def test_logistic_mapping(multiclass):
    """mean log loss + alpha/2 ||W||^2 is minimized by sklearn's LogisticRegression(C=1/(alpha n))."""
    X, y = _data(np.random.default_rng(1), n=60, task="multiclass" if multiclass else "binary")
    alpha = 0.05
    sk = SkLogisticRegression(C=1 / (alpha * len(y)), tol=1e-12, max_iter=10000).fit(X, y)
    scores = X @ sk.coef_.T + sk.intercept_
    if multiclass:
        p = np.exp(scores - logsumexp(scores, axis=1, keepdims=True))
        p[np.arange(len(y)), y] -= 1
        res = p
    else:
        res = (1 / (1 + np.exp(-scores[:, 0])) - y)[:, None]
    grad_w = res.T @ X / len(y) + alpha * sk.coef_
    assert np.linalg.norm(grad_w) < 1e-6 and np.linalg.norm(res.mean(axis=0)) < 1e-6


LINEAR_RUNS = [  # optimizer, learning_rate, batch_size, max_iter, extra options
    ("sgd", 0.1, None, 200, {}),
    ("sgd", 0.01, 1, 50, dict(lr_schedule="invscaling")),
    ("momentum", 0.05, None, 200, {}),
    ("nesterov", 0.01, 16, 100, dict(lr_schedule="cosine")),
    ("adam", 0.01, 32, 100, dict(lr_schedule="cosine")),
    ("adagrad", 0.5, None, 200, {}),
    ("rmsprop", 0.001, 32, 100, {}),
]


@pytest.mark.parametrize("optimizer,lr,batch_size,max_iter,extra", LINEAR_RUNS)
def test_diabetes_reaches_ridge_optimum(optimizer, lr, batch_size, max_iter, extra):
    X, y = _diabetes()
    alpha = 1e-2
    ridge = Ridge(alpha=alpha * len(y), tol=1e-12).fit(X, y)
    best = linear_objective(ridge.coef_, ridge.intercept_, X, y, alpha)
    m = fastgd.LinearRegression(optimizer=optimizer, learning_rate=lr, batch_size=batch_size, max_iter=max_iter,
                                tol=None, alpha=alpha, random_state=0, **extra).fit(X, y)
    reached = linear_objective(m.coef_, m.intercept_, X, y, alpha)
    assert best <= reached <= 1.02 * best, (reached, best)
    assert m.score(X, y) > 0.99 * ridge.score(X, y)


@functools.lru_cache(maxsize=None)
def _classification(dataset):
    """Standardized data and the optimum of the objective with alpha=1e-2 from lbfgs (computed once)."""
    X, y = {"breast_cancer": load_breast_cancer, "digits": load_digits}[dataset](return_X_y=True)
    X = StandardScaler().fit_transform(X)
    sk = SkLogisticRegression(C=1 / (1e-2 * len(y)), tol=1e-8, max_iter=10000).fit(X, y)
    return X, y, sk


LOGISTIC_RUNS = [  # dataset, optimizer, learning_rate, batch_size, max_iter, extra options
    ("breast_cancer", "sgd", 0.5, None, 200, {}),
    ("breast_cancer", "sgd", 0.05, 1, 50, dict(lr_schedule="invscaling")),
    ("breast_cancer", "momentum", 0.1, None, 200, {}),
    ("breast_cancer", "adam", 0.01, 32, 100, dict(lr_schedule="cosine")),
    ("breast_cancer", "adagrad", 0.5, None, 200, {}),
    ("breast_cancer", "rmsprop", 0.001, 32, 200, {}),
    ("digits", "sgd", 0.05, 1, 30, dict(lr_schedule="invscaling")),
    ("digits", "rmsprop", 0.001, 32, 100, dict(lr_schedule="cosine")),
]


@pytest.mark.parametrize("dataset,optimizer,lr,batch_size,max_iter,extra", LOGISTIC_RUNS)
def test_classification_reaches_lbfgs_optimum(dataset, optimizer, lr, batch_size, max_iter, extra):
    X, y, sk = _classification(dataset)
    alpha = 1e-2
    best = logistic_objective(sk.coef_, sk.intercept_, X, y, alpha, sk.classes_)
    m = fastgd.LogisticRegression(optimizer=optimizer, learning_rate=lr, batch_size=batch_size, max_iter=max_iter,
                                  tol=None, alpha=alpha, random_state=0, **extra).fit(X, y)
    assert m.coef_.shape == sk.coef_.shape
    reached = logistic_objective(m.coef_, m.intercept_, X, y, alpha, m.classes_)
    assert best * (1 - 1e-6) <= reached <= 1.02 * best, (reached, best)
    assert m.score(X, y) >= sk.score(X, y) - 0.02


# -- 4. behaviour ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [fastgd.LinearRegression, fastgd.LogisticRegression])
def test_same_seed_bit_identical(cls):
    X, y = _data(np.random.default_rng(0), n=50, task="linear" if cls is fastgd.LinearRegression else "multiclass")
    kw = dict(optimizer="adam", batch_size=8, max_iter=10, random_state=42)
    a, b = cls(**kw).fit(X, y), cls(**kw).fit(X, y)
    assert np.array_equal(a.coef_, b.coef_) and np.array_equal(a.intercept_, b.intercept_)
    assert a.loss_curve_ == b.loss_curve_
    c = cls(**dict(kw, random_state=43)).fit(X, y)
    assert not np.array_equal(a.coef_, c.coef_)


def test_epoch_shuffle_is_a_uniform_permutation():
    from fastgd import _backend
    from scipy.stats import chisquare

    shuffle = _backend.engine.shuffle
    order = np.empty(1000, dtype=np.intp)
    shuffle(order, np.random.PCG64(3))
    assert np.array_equal(np.sort(order), np.arange(1000)) and not np.array_equal(order, np.arange(1000))
    again = np.empty_like(order)
    shuffle(again, np.random.PCG64(3))
    assert np.array_equal(order, again)  # the same generator state, the same order
    # all 24 orders of 4 items equally likely (Fisher-Yates with unbiased draws)
    bits, small, counts = np.random.PCG64(5), np.empty(4, dtype=np.intp), {}
    for _ in range(24_000):
        shuffle(small, bits)
        counts[tuple(small)] = counts.get(tuple(small), 0) + 1
    assert len(counts) == 24
    assert chisquare(list(counts.values())).pvalue > 1e-4


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000, 30_011])
def test_shuffle_again_permutes_as_scikit_learns_sgd(n):
    """The drop-ins' shuffle: scikit-learn's SGD dataset permutes its rows by the same steps
    each epoch (its _shuffle_py, the shuffle its epochs call, and _next_py reads the rows' order)."""
    from fastgd import _backend
    from sklearn.utils._seq_dataset import ArrayDataset64

    for seed in (0, 1, 2**31 - 2, 123_456_789):
        dataset = ArrayDataset64(np.zeros((n, 1)), np.zeros(n), np.ones(n), seed=1)
        order = np.arange(n, dtype=np.intp)
        for _ in range(3):
            dataset._shuffle_py(seed)
            _backend.engine.shuffle_again(order, seed)
            assert order.tolist() == [dataset._next_py()[-1] for _ in range(n)]
    with pytest.raises(ValueError, match="order must be a writable C-contiguous intp array"):
        _backend.engine.shuffle_again(np.arange(5, dtype=np.intp)[::2], 3)


@pytest.mark.parametrize("sparse_x", [False, True])
def test_compiled_epoch_refuses_a_batch_size_below_1_and_takes_a_huge_one_as_all_rows(sparse_x):
    """The compiled epoch (called by the estimators with batch_size >= 1, at most the rows) divided by
    a batch_size of 0 (UBSan: division by zero; a SIGFPE in a plain build), and a batch_size near
    2^63 overflowed n + batch_size - 1 into no batch at all; and shuffle wrote 8 bytes an entry into
    any order array.  A batch_size below 1 and an order not intp are refused; a huge one is all rows."""
    from fastgd import _backend

    X = np.random.default_rng(0).standard_normal((10, 3))
    X = sparse.csr_matrix(X) if sparse_x else X
    y = np.asarray(X.sum(axis=1)).ravel()
    order = np.arange(10, dtype=np.intp)
    model = fastgd.LinearRegression(max_iter=1, tol=None, batch_size=10).fit(X, y)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="batch_size must be at least 1"):
            model._epoch(X, y, None, order, bad, None)
    twin = copy.deepcopy(model)
    huge, whole = model._epoch(X, y, None, order, sys.maxsize, None), twin._epoch(X, y, None, order, 10, None)
    assert huge == whole and huge[1] == 1
    np.testing.assert_array_equal(model.coef_, twin.coef_)
    with pytest.raises(ValueError, match="order must be a writable C-contiguous intp array"):
        _backend.engine.shuffle(np.zeros(5, dtype=np.int32), np.random.PCG64(0))

@pytest.mark.parametrize("high, bits", [(2**32 - 1, 32), (3 * 2**32 + 12345, 34), (2**63 + 1, 64)])
def test_shuffle_draws_from_2_32_up_are_masked_64_bit_draws(high, bits):
    """The draws of a shuffle of more than 2^32 rows: each 64-bit output of the generator
    under the smallest all-ones mask >= high, redrawn while above high."""
    from fastgd import _backend

    draws = _backend.engine.draws_up_to(np.random.PCG64(5), high, 10_000)
    raw = np.random.PCG64(5).random_raw(40_000) & np.uint64(2**bits - 1)
    expected = raw[raw <= np.uint64(high)][:10_000]
    assert len(expected) == 10_000 and np.array_equal(draws, expected)
    assert draws.max() > 2**32 - 2**28 and np.mean(draws / high) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_loss_terms_match_numpy(dtype):
    """The epoch's own exp(-|z|) and log1p(exp(-|z|)) (vectorized, not libm's) against NumPy's
    in extended precision where the platform has it: in double within 1 ulp and 2.1 ulp
    (src/_logloss.h), and the float32 results within an ulp of the exact values rounded to
    float32.  The softplus is least accurate where it is just under 0.5 (z near 0.43)."""
    from fastgd import _backend

    rng = np.random.default_rng(7)
    z = np.concatenate([rng.uniform(-40, 40, 200_000), 1e-3 * rng.standard_normal(20_000),
                        np.linspace(0.4, 0.75, 200_001), np.linspace(-720, 720, 20_001),
                        [0.0, -0.0, 1e-300, 708.0, 709.0, 745.0, 0.4335868426258713, -34.30496438634477]])
    z = np.append(z, np.finfo(dtype).max).astype(dtype)
    e, softplus = _backend.engine.log_loss_terms(z)
    assert e.dtype == dtype and softplus.dtype == dtype
    wide = np.longdouble if np.finfo(np.longdouble).nmant > 52 else np.float64
    exact_e = np.exp(-np.abs(z.astype(wide)))
    exact_softplus = np.log1p(exact_e)
    for got, exact in ((e, exact_e), (softplus, exact_softplus)):
        if dtype == np.float64:
            kept = np.abs(z) <= 708
            ulps = (1.0 if got is e else 2.1) + (wide is not np.longdouble)  # NumPy's own error, without it
            assert np.all(np.abs(got[kept] - exact[kept]) <= ulps * np.spacing(exact[kept].astype(dtype)))
            # below exp(-708), near the smallest normal double, the result is flushed to zero
            assert np.all(np.abs(got[~kept] - exact[~kept]) <= np.exp(-708.0))
        else:
            rounded = exact.astype(dtype)
            assert np.all(np.abs(got - rounded) <= np.spacing(rounded))
    special_e, special_softplus = _backend.engine.log_loss_terms(np.array([np.nan, np.inf, -np.inf], dtype))
    assert np.isnan(special_e[0]) and np.isnan(special_softplus[0])
    assert np.array_equal(special_e[1:], [0, 0]) and np.array_equal(special_softplus[1:], [0, 0])


@pytest.mark.parametrize("cls", [fastgd.LinearRegression, fastgd.LogisticRegression])
def test_tol_none_runs_max_iter(cls):
    X, y = _data(np.random.default_rng(0), n=40, task="linear" if cls is fastgd.LinearRegression else "binary")
    m = cls(tol=None, max_iter=17, learning_rate=0.01).fit(X, y)
    assert m.n_iter_ == 17 and len(m.loss_curve_) == 17
    # with a tolerance it stops early on this easy problem
    m = cls(tol=1e-1, max_iter=500, learning_rate=0.01).fit(X, y)
    assert m.n_iter_ < 500 and len(m.loss_curve_) == m.n_iter_


def test_full_batch_is_one_step_per_epoch():
    """batch_size=None: each epoch is one gradient step on the full objective (computed here)."""
    X, y = _data(np.random.default_rng(2), n=30)
    lr, alpha = 0.1, 0.05
    m = fastgd.LinearRegression(batch_size=None, learning_rate=lr, alpha=alpha, max_iter=3, tol=None).fit(X, y)
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(3):
        r = X @ w + b - y
        w, b = w - lr * (r @ X / len(y) + alpha * w), b - lr * r.mean()
    np.testing.assert_allclose(m.coef_, w, rtol=1e-12)
    np.testing.assert_allclose(m.intercept_, b, rtol=1e-12)
    # and it does not depend on the shuffle
    m2 = fastgd.LinearRegression(batch_size=None, learning_rate=lr, alpha=alpha, max_iter=3, tol=None,
                                 random_state=99).fit(X, y)
    np.testing.assert_allclose(m2.coef_, m.coef_, rtol=1e-12)
    big = fastgd.LinearRegression(batch_size=10_000, learning_rate=lr, alpha=alpha, max_iter=3, tol=None).fit(X, y)
    np.testing.assert_allclose(big.coef_, m.coef_, rtol=1e-12)


@pytest.mark.parametrize("task", ["linear", "binary", "multiclass"])
def test_partial_fit_continues(task):
    X, y = _data(np.random.default_rng(5), n=40, task=task)
    kw = dict(optimizer="adam", learning_rate=0.05, batch_size=6, random_state=1)
    name = "LinearRegression" if task == "linear" else "LogisticRegression"
    extra = {} if task == "linear" else {"classes": np.unique(y)}
    fast, ref = getattr(fastgd, name)(**kw), getattr(reference, name)(**kw)
    for model in (fast, ref):
        model.partial_fit(X, y, **extra)
        first = model.coef_.copy()
        model.partial_fit(X[:25], y[:25])
        assert not np.allclose(first, model.coef_)
        assert model.n_iter_ == 2
    _assert_same_model(fast, ref)
    # two partial_fit calls on the full data = fit with max_iter=2
    one = getattr(fastgd, name)(**kw)
    one.partial_fit(X, y, **extra)
    one.partial_fit(X, y)
    fit = getattr(fastgd, name)(max_iter=2, tol=None, **kw).fit(X, y)
    np.testing.assert_allclose(one.coef_, fit.coef_, rtol=1e-12, atol=1e-14)


def test_partial_fit_needs_classes():
    X, y = _data(np.random.default_rng(0), task="binary")
    with pytest.raises(ValueError, match="classes"):
        fastgd.LogisticRegression().partial_fit(X, y)


@pytest.mark.parametrize("name", ["LogisticRegression", "SGDClassifier"])
def test_classes_of_one_label_are_named_as_the_fault(name):
    X, y = _data(np.random.default_rng(0), task="binary")
    with pytest.raises(ValueError, match=r"classes names 1 class: \[0\]; .* needs at least 2, and every label"):
        getattr(fastgd, name)().partial_fit(X, y, classes=[0])
    with pytest.raises(ValueError, match=r"needs samples of at least 2 classes; got 1 class: \[1\]"):
        getattr(fastgd, name)().fit(X, np.ones_like(y))


def test_partial_fit_rejects_unknown_labels():
    X, y = _data(np.random.default_rng(0), task="binary")
    labels = np.where(y == 1, "yes", "no")
    model = fastgd.LogisticRegression(random_state=0).partial_fit(X, labels, classes=["no", "yes"])
    coef = model.coef_.copy()
    for bad in ("maybe", "zzz", "a"):  # between, after and before the known labels
        with pytest.raises(ValueError, match=f"labels \\['{bad}'\\] not in classes"):
            model.partial_fit(X, np.where(np.arange(len(y)) == 3, bad, labels))
    assert np.array_equal(model.coef_, coef)
    with pytest.raises(ValueError, match="not in classes"):
        fastgd.LogisticRegression().partial_fit(X, labels, classes=["no", "other"])


@pytest.mark.parametrize("cls", [fastgd.LinearRegression, fastgd.LogisticRegression])
def test_float32(cls, monkeypatch):
    X, y = _data(np.random.default_rng(0), n=200, task="linear" if cls is fastgd.LinearRegression else "multiclass")
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    seen = []
    original = cls._epoch

    def spy(self, X, *args):
        seen.append(X)
        return original(self, X, *args)

    monkeypatch.setattr(cls, "_epoch", spy)
    m = cls(learning_rate=0.05, max_iter=20, tol=None, random_state=0).fit(X32, y)
    assert m.coef_.dtype == np.float32 and m.intercept_.dtype == np.float32
    assert m.predict(X32).dtype == (np.float32 if cls is fastgd.LinearRegression else y.dtype)
    # the epochs run on the caller's float32 array itself: no float64 copy, no copy at all
    assert seen and all(x.dtype == np.float32 and np.shares_memory(x, X32) for x in seen)
    assert m.loss_curve_[-1] < 0.9 * m.loss_curve_[0]
    m64 = cls(learning_rate=0.05, max_iter=20, tol=None, random_state=0).fit(X, y)
    np.testing.assert_allclose(m.coef_, m64.coef_, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("is_sparse", [False, True])
def test_string_labels_given_as_objects_give_sklearns_classes(is_sparse):
    """scikit-learn's classes_ (and so its predictions) are "<U" strings for string labels given
    as an object array; fastgd's kept the object dtype."""
    X, y = _data(np.random.default_rng(1), n=40, task="multiclass")
    X = sparse.csr_matrix(X) if is_sparse else X
    for rows in (slice(None), y < 2):  # three classes, two
        X_n, labels = X[rows], np.array(["cat", "dog", "emu"], dtype=object)[y[rows]]
        theirs = sklearn.linear_model.SGDClassifier(max_iter=5, tol=None, random_state=0).fit(X_n, labels)
        for cls in (fastgd.SGDClassifier, fastgd.LogisticRegression):
            for model in (cls(max_iter=5, tol=None, random_state=0).fit(X_n, labels),
                          cls(random_state=0).partial_fit(X_n, labels, classes=theirs.classes_.astype(object))):
                assert model.classes_.dtype == theirs.classes_.dtype
                assert model.classes_.tolist() == theirs.classes_.tolist()
                assert model.predict(X_n).dtype == theirs.predict(X_n).dtype


def test_more_classes_than_float32_indexes_exactly_are_refused():
    """LogisticRegression's loop reads each row's class index in X's dtype: beyond 2**24 classes,
    float32 rounded a row's index to a neighbour's class (or past the last, a read out of bounds)."""
    X = np.zeros((2, 1), dtype=np.float32)
    model = fastgd.LogisticRegression()
    with pytest.raises(ValueError, match=r"16777218 classes: float32 X holds class indices exactly up to 16777216"):
        # (float labels: NumPy 2.4's np.unique of 2**24 distinct integers takes 20 s here, by hashing)
        model.partial_fit(X, [2.0**24 + 1, 3.0], classes=np.arange(2**24 + 2, dtype=np.float64))
    assert not hasattr(model, "classes_") and not hasattr(model, "coef_")


@pytest.mark.parametrize("cls", [fastgd.LogisticRegression, fastgd.SGDClassifier])
def test_a_csr_x_resized_after_its_check_is_refused_by_the_epoch(cls, monkeypatch):
    """Another thread's X.resize between a partial_fit's check of X and its compiled epoch (made
    here at the start of the call's work): the epoch read k off theta's size over X's new
    columns, which, where they divided it, gave one output where the model has three, and the
    multinomial loss read the scores past their end (valgrind: an invalid read).  It raises
    now, and the model is left as it was."""
    K, n, d = 3, 10, 1
    X = sparse.csr_matrix(np.random.default_rng(0).standard_normal((n, d)))
    y = np.full(n, K - 1)
    y[0] = 0
    model = cls(batch_size=4, max_iter=1, tol=None, random_state=0).partial_fit(X, y, classes=np.arange(K))
    before = copy.deepcopy((model.coef_, model.intercept_, model.n_iter_))
    start = type(model)._start_call

    def resized_first(self, reset):
        X.resize((n, K * (d + 1) - 1))  # K * (d + 1) columns over theta's K * (d + 1) values: one output
        return start(self, reset)

    monkeypatch.setattr(type(model), "_start_call", resized_first)
    with pytest.raises(ValueError, match="resized"):
        model.partial_fit(X, y)
    np.testing.assert_array_equal(model.coef_, before[0])
    np.testing.assert_array_equal(model.intercept_, before[1])
    assert model.n_iter_ == before[2]


def test_dense_batches_beyond_blas_sizes_are_refused(monkeypatch):
    """A dense batch of several rows goes through BLAS, whose sizes are 32-bit ints: from 2**31
    features (or rows a batch) the sizes wrapped, and BLAS refused the call without a word (the
    epoch read scores it never wrote) or computed with the wrapped size.  (The limit, lowered
    here: the real one needs X of 16 GiB.)"""
    monkeypatch.setattr(fastgd.linear_model, "_BLAS_MOST", 3)
    X, y = _data(np.random.default_rng(2), n=40, d=4)
    model = fastgd.LinearRegression(batch_size=2, max_iter=2, tol=None).fit(X[:, :3], y)
    before = model.coef_.copy()
    with pytest.raises(ValueError, match="dense X of 4 features in batches of 2 rows, 1 outputs: .* BLAS, which takes "
                                         "sizes up to 3"):
        model.fit(X, y)
    np.testing.assert_array_equal(model.coef_, before)
    with pytest.raises(ValueError, match="dense X of 3 features in batches of 4 rows"):
        model.set_params(batch_size=4).partial_fit(X[:, :3], y)
    np.testing.assert_array_equal(model.coef_, before)
    with pytest.raises(ValueError, match="dense X of 3 features in batches of 2 rows, 4 outputs"):
        fastgd.LinearRegression(batch_size=2).fit(X[:, :3], np.column_stack([y] * 4))
    for taken in (model.set_params(batch_size=1), fastgd.LinearRegression(max_iter=2, tol=None)):
        taken.fit(sparse.csr_matrix(X) if taken.batch_size != 1 else X, y)  # no BLAS: one row, or sparse


def test_weights_whose_squares_overflow_are_finite():
    # (the epoch's finiteness test sums the weights' squares first, and falls back to each weight)
    X, y = np.full((20, 1), 1e-160), np.ones(20)
    model = fastgd.SGDRegressor(penalty=None, max_iter=3, tol=None).fit(X, y, coef_init=[1e160], intercept_init=0.0)
    theirs = SkSGDRegressor(penalty=None, max_iter=3, tol=None).fit(X, y, coef_init=[1e160], intercept_init=0.0)
    np.testing.assert_allclose(model.coef_, theirs.coef_, rtol=1e-12)
    np.testing.assert_allclose(model.intercept_, theirs.intercept_, rtol=1e-6)


def test_string_labels_and_proba():
    X, y = _data(np.random.default_rng(0), n=60, task="multiclass")
    labels = np.array(["cat", "dog", "emu"])[y]
    m = fastgd.LogisticRegression(learning_rate=0.1, max_iter=50, random_state=0).fit(X, labels)
    assert list(m.classes_) == ["cat", "dog", "emu"]
    assert set(m.predict(X)) <= set(labels)
    proba = m.predict_proba(X)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(m.classes_[proba.argmax(axis=1)], m.predict(X))
    assert m.score(X, labels) > 0.6
    b = fastgd.LogisticRegression(max_iter=20, random_state=0).fit(X, np.where(y == 0, "no", "yes"))
    assert b.coef_.shape == (1, X.shape[1])
    pb = b.predict_proba(X)
    np.testing.assert_allclose(pb.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(pb[:, 1], 1 / (1 + np.exp(-b.decision_function(X))), rtol=1e-12)


@pytest.mark.parametrize("cls", [fastgd.LinearRegression, fastgd.LogisticRegression])
def test_early_stopping(cls):
    X, y = _data(np.random.default_rng(0), n=200, task="linear" if cls is fastgd.LinearRegression else "binary")
    m = cls(early_stopping=True, validation_fraction=0.2, max_iter=200, n_iter_no_change=3, random_state=0).fit(X, y)
    assert len(m.validation_scores_) == m.n_iter_ == len(m.loss_curve_)
    assert m.n_iter_ < 200
    assert cls().fit(X, y).validation_scores_ is None


def test_adaptive_schedule_divides_lr_by_five():
    X, y = _data(np.random.default_rng(0), n=50)
    lrs = []

    class Spy(fastgd.LinearRegression):
        def _epoch(self, *args):
            lrs.append(self._optimizer.param_groups[0]["lr"])
            return super()._epoch(*args)

    Spy(lr_schedule="adaptive", learning_rate=0.01, tol=10.0, n_iter_no_change=2, max_iter=9).fit(X, y)
    # tol is huge: after the first epoch (which sets the best so far) no epoch counts as an
    # improvement, so after every 2 more epochs lr is divided by 5
    expected = [0.01 / 5 ** (max(k - 1, 0) // 2) for k in range(9)]
    np.testing.assert_allclose(lrs[:len(expected)], expected[:len(lrs)], rtol=1e-12)
    assert len(lrs) == 9


def test_import_fastgd_does_not_import_sklearn():
    env = dict(os.environ, PYTHONPATH=ROOT)
    code = "import sys, fastgd; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


def _unaligned(array):
    """A copy of `array` at an odd address (as a block arriving in a network frame may be)."""
    raw = np.zeros(array.nbytes + 1, dtype=np.uint8)
    copy = np.frombuffer(raw.data, dtype=array.dtype, count=array.size, offset=1).reshape(array.shape)
    copy[...] = array
    return copy


@pytest.mark.parametrize("make", [fastgd.LinearRegression, fastgd.LogisticRegression, fastgd.SGDRegressor,
                                  fastgd.SGDClassifier])
def test_unaligned_input_trains_as_aligned_input(make):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    weights = np.linspace(0.5, 2, y.size)
    X_odd, y_odd, weights_odd = _unaligned(X), _unaligned(y.astype(np.float64)), _unaligned(weights)
    assert not (X_odd.flags.aligned or y_odd.flags.aligned or weights_odd.flags.aligned)
    odd = make(max_iter=3, tol=None, random_state=0).fit(X_odd, y_odd, sample_weight=weights_odd)
    aligned = make(max_iter=3, tol=None, random_state=0).fit(X, y.astype(np.float64), sample_weight=weights)
    np.testing.assert_array_equal(odd.coef_, aligned.coef_)
    np.testing.assert_array_equal(odd.intercept_, aligned.intercept_)


@pytest.mark.parametrize("part", ["data", "indices", "indptr"])
@pytest.mark.parametrize("make", [fastgd.LogisticRegression, fastgd.SGDClassifier])
def test_unaligned_csr_trains_as_aligned_csr(make, part):
    """A CSR matrix one of whose arrays sits at an odd address trains as the aligned one."""
    from scipy import sparse
    X, y = load_breast_cancer(return_X_y=True)
    X = sparse.csr_matrix(StandardScaler().fit_transform(X) * (np.arange(X.shape[1]) % 3 == 0))
    parts = {"data": X.data, "indices": X.indices, "indptr": X.indptr}
    parts[part] = _unaligned(parts[part])
    X_odd = sparse.csr_matrix((parts["data"], parts["indices"], parts["indptr"]), shape=X.shape, copy=False)
    assert not getattr(X_odd, part).flags.aligned
    odd = make(max_iter=3, tol=None, random_state=0).fit(X_odd, y)
    aligned = make(max_iter=3, tol=None, random_state=0).fit(X, y)
    np.testing.assert_array_equal(odd.coef_, aligned.coef_)
    np.testing.assert_array_equal(odd.intercept_, aligned.intercept_)


# -- 5. errors --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [fastgd.LinearRegression, fastgd.LogisticRegression])
@pytest.mark.parametrize("where", ["X-nan", "X-inf", "y-nan", "y-inf"])
def test_rejects_non_finite(cls, where):
    X, y = _data(np.random.default_rng(0), task="linear" if cls is fastgd.LinearRegression else "binary")
    y = y.astype(float)
    bad = np.nan if where.endswith("nan") else np.inf
    (X if where.startswith("X") else y)[3] = bad
    with pytest.raises(ValueError, match="(?i)nan|inf"):
        cls().fit(X, y)


def _fitted_state(model):
    return (model.coef_.copy(), model.intercept_.copy(), model.n_iter_, list(model.loss_curve_),
            model._optimizer.state_dict(), model._shuffle_bits.state)


def _assert_same_state(a, b):
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2:4] == b[2:4]
    assert a[4]["param_groups"] == b[4]["param_groups"] and a[5] == b[5]
    for key, entry in a[4]["state"].items():
        for name, value in entry.items():
            assert np.array_equal(value, b[4]["state"][key][name])


@pytest.mark.parametrize("cls", [fastgd.LinearRegression, fastgd.LogisticRegression])
@pytest.mark.parametrize("call", ["fit", "warm_start", "partial_fit", "early_stopping"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_changes_nothing(cls, call, bad):
    """X's finite check is made by the first epoch (early stopping: up front); a NaN or inf
    in the last row is still caught, and the model is left as it was."""
    task = "linear" if cls is fastgd.LinearRegression else "multiclass"
    X, y = _data(np.random.default_rng(0), n=60, task=task)
    kw = dict(optimizer="adam", batch_size=8, max_iter=3, tol=None, random_state=0,
              warm_start=call == "warm_start", early_stopping=call == "early_stopping")
    model = cls(**kw)
    if call == "partial_fit":
        model.partial_fit(X, y, **({} if task == "linear" else {"classes": np.unique(y)}))
    else:
        model.fit(X, y)
    before = _fitted_state(model)
    X_bad = X.copy()
    X_bad[-1, 1] = bad
    with pytest.raises(ValueError, match="(?i)input X contains (nan|infinity)"):
        getattr(model, "partial_fit" if call == "partial_fit" else "fit")(X_bad, y)
    _assert_same_state(before, _fitted_state(model))
    again = cls(**kw)
    if call == "partial_fit":
        again.partial_fit(X, y, **({} if task == "linear" else {"classes": np.unique(y)}))
        model.partial_fit(X, y)
        again.partial_fit(X, y)
    else:
        again.fit(X, y)
        model.fit(X, y)
        again.fit(X, y)
    assert np.array_equal(model.coef_, again.coef_)  # the failed call left no trace


@pytest.mark.parametrize("name", ["LinearRegression", "LogisticRegression", "SGDRegressor", "SGDClassifier"])
@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_non_finite_X_is_named_under_assume_finite(name, kind):
    """scikit-learn's assume_finite skips the finite check of X, which the first epoch makes here:
    a NaN in X is still named as such (scikit-learn's check_array message), not taken for a
    divergence that a smaller learning rate would cure."""
    from sklearn import config_context
    from sklearn.utils.validation import check_array
    regression = name in ("LinearRegression", "SGDRegressor")
    X, y = _data(np.random.default_rng(0), n=60, task="linear" if regression else "binary")
    X[5, 1] = np.nan
    X = sparse.csr_matrix(X) if kind == "csr" else X
    with pytest.raises(ValueError) as expected:
        check_array(X, accept_sparse=True, input_name="X")
    model = getattr(fastgd, name)(max_iter=3, tol=None)
    with config_context(assume_finite=True), pytest.raises(ValueError, match=r"Input X contains NaN") as said:
        model.fit(X, y)
    assert str(expected.value) in str(said.value) and not hasattr(model, "coef_")


@pytest.mark.parametrize("name", ["LinearRegression", "LogisticRegression", "SGDRegressor", "SGDClassifier"])
def test_early_stopping_on_a_data_frame_warns_nothing(name):
    """The held-out rows are scored on the X the fit validated: scikit-learn's SGD warns nothing of
    feature names there; fastgd's predict on the plain array warned at every epoch that X had no
    feature names."""
    pd = pytest.importorskip("pandas")  # (installed with dask-ml in CI)
    regression = name in ("LinearRegression", "SGDRegressor")
    X, y = _data(np.random.default_rng(0), n=200, task="linear" if regression else "binary")
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    options = dict(early_stopping=True, max_iter=8, tol=None, random_state=0)
    from sklearn import linear_model as sk
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(sk, "SGDRegressor" if regression else "SGDClassifier")(**options).fit(frame, y)
        model = getattr(fastgd, name)(**options).fit(frame, y)
    plain = getattr(fastgd, name)(**options).fit(X, y)
    assert model.validation_scores_ == plain.validation_scores_ and len(model.validation_scores_) == 8


def test_early_stopping_scores_through_a_subclasss_predict():
    """scikit-learn's early stopping scores the held-out rows with score(), so through a subclass's
    predict; so does fastgd's (its own predict is taken without validating the rows again)."""
    from sklearn import linear_model as sk

    calls = {}

    def always_zero(base):
        class AlwaysZero(base):
            def predict(self, X):
                calls[base] = calls.get(base, 0) + 1
                return np.zeros(X.shape[0], dtype=int)
        return AlwaysZero

    X, y = _data(np.random.default_rng(0), n=200, task="binary")
    options = dict(early_stopping=True, max_iter=6, tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = always_zero(fastgd.SGDClassifier)(**options).fit(X, y)
        always_zero(sk.SGDClassifier)(**options).fit(X, y)
    assert calls == {fastgd.SGDClassifier: 6, sk.SGDClassifier: 6}
    assert len(set(ours.validation_scores_)) == 1  # (the held-out rows' share of class 0)


@pytest.mark.parametrize("seed", ["instance", "global"])
def test_failed_fit_draws_nothing_from_a_shared_generator(seed, global_seed):
    X, y = _data(np.random.default_rng(0), n=40)
    X[-1, 0] = np.nan
    shared = np.random.RandomState(3) if seed == "instance" else None
    if shared is None:
        global_seed(3)
    before = (shared if shared is not None else np.random).get_state()
    with pytest.raises(ValueError, match="(?i)input X contains nan"):
        fastgd.LinearRegression(random_state=shared, max_iter=2).fit(X, y)
    after = (shared if shared is not None else np.random).get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]


def test_failed_fit_keeps_the_fitted_classes():
    X, y = _data(np.random.default_rng(0), task="binary")
    model = fastgd.LogisticRegression(max_iter=2, random_state=0).fit(X, y)
    classes, coef = model.classes_.copy(), model.coef_.copy()
    with pytest.raises(ValueError, match="(?i)class"):
        model.fit(X, np.full(len(y), 7))
    assert np.array_equal(model.classes_, classes) and np.array_equal(model.coef_, coef)


@pytest.mark.parametrize("cls", [fastgd.LinearRegression, fastgd.LogisticRegression])
def test_rejects_bad_shapes_and_options(cls):
    X, y = _data(np.random.default_rng(0), task="linear" if cls is fastgd.LinearRegression else "binary")
    with pytest.raises(ValueError, match="(?i)inconsistent|samples"):
        cls().fit(X, y[:-1])
    with pytest.raises(ValueError, match="(?i)sample"):
        cls().fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="optimizer"):
        cls(optimizer="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        cls().fit(X, y, sample_weight=np.ones(len(y) + 1))


def test_single_class():
    X, _ = _data(np.random.default_rng(0))
    with pytest.raises(ValueError, match="(?i)class"):
        fastgd.LogisticRegression().fit(X, np.ones(len(X)))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_divergence(optimizer):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 3)) * 1e3 + 1e3  # unscaled features
    y = X @ np.array([1.0, -2.0, 3.0])
    m = fastgd.LinearRegression(optimizer=optimizer, learning_rate=10.0, batch_size=10, max_iter=50)
    with pytest.raises(ValueError, match=r"epoch \d+.*learning_rate") as info:
        m.fit(X, y)
    assert "scale" in str(info.value)
    assert not hasattr(m, "coef_")  # left as it was before the call


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])
@pytest.mark.parametrize("task", ["linear", "binary", "multiclass"])
def test_sample_weights_scaled_leave_the_fit_unchanged(task, compiled):
    """The objective is the weighted mean loss: weights times a constant (here 10, as in the
    issue, and 1e-3) give the same fit, mini-batches and shuffling included."""
    rng = np.random.default_rng(8)
    X, y = _data(rng, n=50, task=task)
    sw = rng.uniform(0.5, 2.0, len(y))
    cls = getattr(fastgd if compiled else reference, "LinearRegression" if task == "linear" else "LogisticRegression")
    kw = dict(optimizer="momentum", learning_rate=0.05, batch_size=8, max_iter=10, tol=None, random_state=0)
    base = cls(**kw).fit(X, y, sample_weight=sw)
    for factor in (10.0, 1e-3):
        scaled = cls(**kw).fit(X, y, sample_weight=sw * factor)
        np.testing.assert_allclose(scaled.coef_, base.coef_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(scaled.intercept_, base.intercept_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(scaled.loss_curve_, base.loss_curve_, rtol=1e-9)
    unweighted = cls(**kw).fit(X, y, sample_weight=np.full(len(y), 10.0))
    plain = cls(**kw).fit(X, y)
    np.testing.assert_allclose(unweighted.coef_, plain.coef_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("task", ["linear", "binary"])
def test_weights_whose_sum_or_mean_leaves_the_range_are_refused_by_name(task, dtype):
    # a sum beyond float64 (1e307 a row), or a mean whose inverse is beyond X's dtype, reached the
    # loop and came back as the divergence error, which tells to lower the learning rate; the same
    # weights times a constant within range fit
    rng = np.random.default_rng(4)
    X, y = _data(rng, n=40, task=task)
    X = X.astype(dtype)
    cls = fastgd.LinearRegression if task == "linear" else fastgd.LogisticRegression
    tiny = np.finfo(dtype).tiny
    for weight in ((1e307,) if dtype == np.float64 else ()) + (tiny / 4,):  # (1e307 in float32: scikit-learn's check)
        model = cls(max_iter=3, tol=None)
        with pytest.raises(ValueError, match=r"^sample_weight sums to .* over 40 rows .*beyond what training in "
                                             rf"{np.dtype(dtype).name} can divide by"), warnings.catch_warnings():
            warnings.simplefilter("error")
            model.fit(X, y, sample_weight=np.full(len(y), weight))
        assert not hasattr(model, "coef_")
    big = 1e300 if dtype == np.float64 else 1e30  # (a row's weight times its loss's derivative: within range)
    for weight in (big, 1 / big):  # the unweighted fit
        kw = dict(max_iter=3, tol=None, random_state=0)
        np.testing.assert_allclose(cls(**kw).fit(X, y, sample_weight=np.full(len(y), weight)).coef_,
                                   cls(**kw).fit(X, y).coef_, rtol=1e-4 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("task", ["linear", "binary"])
def test_integer_weights_are_repeated_rows_in_full_batches(task):
    rng = np.random.default_rng(9)
    X, y = _data(rng, n=30, task=task)
    counts = rng.integers(1, 4, len(y))
    cls = fastgd.LinearRegression if task == "linear" else fastgd.LogisticRegression
    kw = dict(optimizer="adam", learning_rate=0.05, batch_size=None, shuffle=False, max_iter=15, tol=None)
    weighted = cls(**kw).fit(X, y, sample_weight=counts.astype(float))
    repeated = cls(**kw).fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])
@pytest.mark.parametrize("batch_size", [1, 8])
def test_weights_act_in_small_batches_as_in_the_weighted_objective(batch_size, compiled):
    # a batch's gradient divided by the batch's own weight sum cancelled a lone row's weight:
    # per-sample fits ignored sample_weight (and class_weight) and went to the unweighted
    # least squares (coef_ 0.35 from the weighted one here); the averaged iterates of small
    # steps go to the weighted least squares now
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 2))
    y = X @ [1.0, -1.0] + (X[:, 0] > 0) * 3.0
    weights = np.where(X[:, 0] > 0, 10.0, 1.0)
    exact = SkLinearRegression().fit(X, y, sample_weight=weights)
    assert np.abs(SkLinearRegression().fit(X, y).coef_ - exact.coef_).max() > 0.3
    cls = fastgd.LinearRegression if compiled else reference.LinearRegression
    ours = cls(batch_size=batch_size, learning_rate=0.005, max_iter=200, tol=None, random_state=0, average=100,
               penalty=None).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(ours.coef_, exact.coef_, atol=0.05)
    np.testing.assert_allclose(ours.intercept_, exact.intercept_, atol=0.05)


def test_weights_act_in_a_stream_of_one_row_partial_fits():
    # a row weighs its weight over the mean weight of the rows trained on since the fit began, not
    # over its call's mean: a call of one row cancelled the row's weight, and the stream went to
    # the unweighted least squares (intercept 1.46 against the weighted 2.16 here)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 2))
    y = X @ [1.0, -1.0] + (X[:, 0] > 0) * 3.0
    weights = np.where(X[:, 0] > 0, 10.0, 1.0)
    exact = SkLinearRegression().fit(X, y, sample_weight=weights)
    model = fastgd.LinearRegression(batch_size=1, learning_rate=0.01, tol=None, random_state=0, average=300,
                                    penalty=None, shuffle=False, max_iter=1)
    twin = reference.LinearRegression(**model.get_params())
    for i in range(5):  # the NumPy reference weighs the rows the same way
        model.partial_fit(X[i:i + 1], y[i:i + 1], sample_weight=weights[i:i + 1])
        twin.partial_fit(X[i:i + 1], y[i:i + 1], sample_weight=weights[i:i + 1])
    np.testing.assert_allclose(model.coef_, twin.coef_, rtol=1e-12)
    for _ in range(15):
        for i in range(len(X)):
            model.partial_fit(X[i:i + 1], y[i:i + 1], sample_weight=weights[i:i + 1])
    np.testing.assert_allclose(model.coef_, exact.coef_, atol=0.05)
    np.testing.assert_allclose(model.intercept_, exact.intercept_, atol=0.05)


@pytest.mark.parametrize("batch_size", [1, 2, None])
@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_plain_sgd_decays_past_zero_by_the_gradient_step(layout, batch_size):
    # lr * alpha = 1.5: the L2 decay 1 - lr alpha is negative.  Sparse rows (and one-row steps)
    # clamped it at 0, scikit-learn's SGD rule, so full-batch descent went to a point 1.5x away
    # from the ridge solution and dense and sparse fits differed; the gradient step converges
    rng = np.random.default_rng(0)
    X = 0.1 * rng.normal(size=(50, 3))
    y = X @ [10.0, -20.0, 5.0] + 0.3
    alpha, lr = 10.0, 0.15
    Xs = X if layout == "dense" else sparse.csr_matrix(X)
    kw = dict(optimizer="sgd", alpha=alpha, learning_rate=lr, tol=None, shuffle=False, batch_size=batch_size)
    if batch_size is None:
        model = fastgd.LinearRegression(max_iter=2000, **kw).fit(Xs, y)
        exact = Ridge(alpha=alpha * len(y)).fit(X, y)
        np.testing.assert_allclose(model.coef_, exact.coef_, rtol=1e-9)
        np.testing.assert_allclose(model.intercept_, exact.intercept_, rtol=1e-9)
    else:  # the NumPy reference takes the gradient step
        model = fastgd.LinearRegression(max_iter=2, **kw).fit(Xs, y)
        twin = reference.LinearRegression(max_iter=2, **kw).fit(X, y)
        np.testing.assert_allclose(model.coef_, twin.coef_, rtol=1e-9)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])
def test_a_warm_refit_without_intercept_holds_the_one_trained(compiled):
    # AdamW's decoupled decay moved the intercept its zero gradient leaves alone
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = X @ [1.0, 2.0, 3.0] + 5
    cls = fastgd.LinearRegression if compiled else reference.LinearRegression
    model = cls(optimizer="adamw", warm_start=True, learning_rate=0.05, max_iter=20, tol=None, shuffle=False)
    intercept = model.fit(X, y).intercept_.copy()
    assert abs(float(intercept)) > 1
    model.set_params(fit_intercept=False, max_iter=5).fit(X, y)
    np.testing.assert_array_equal(model.intercept_, intercept)
    if compiled:
        twin = reference.LinearRegression(**{**model.get_params(), "fit_intercept": True, "max_iter": 20})
        twin.fit(X, y).set_params(fit_intercept=False, max_iter=5).fit(X, y)
        np.testing.assert_allclose(model.coef_, twin.coef_, rtol=1e-9)


@pytest.mark.parametrize("task", ["linear", "binary", "multiclass"])
def test_warm_start_refuses_other_features_and_goes_on_in_another_dtype(task):
    # a warm refit on another number of features (or classes) started from zero without a word,
    # as did one in another dtype; scikit-learn refuses the first and goes on in the second
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.7
    y = {"linear": y, "binary": (y > 0.7).astype(int), "multiclass": np.digitize(y, [-1, 1])}[task]
    cls = fastgd.LinearRegression if task == "linear" else fastgd.LogisticRegression
    kw = dict(optimizer="sgd", learning_rate=0.05, max_iter=1, tol=None, shuffle=False, batch_size=4)
    model = cls(warm_start=True, **kw).fit(X, y)
    before = (model.coef_.copy(), model.intercept_.copy(), model.n_iter_)
    with pytest.raises(ValueError, match=r"coef_ \(kept by warm_start\) has shape"):
        model.fit(np.hstack([X, X[:, :1]]), y)
    if task != "linear":  # another number of classes
        with pytest.raises(ValueError, match=r"coef_ \(kept by warm_start\) has shape"):
            model.fit(X, (y > 0).astype(int) if task == "multiclass" else np.arange(60) % 3)
    np.testing.assert_array_equal(model.coef_, before[0])
    np.testing.assert_array_equal(model.intercept_, before[1])
    assert model.n_iter_ == before[2]
    model.fit(X.astype(np.float32), y)  # the second epoch, in float32
    assert model.coef_.dtype == np.float32
    two_epochs = cls(**{**kw, "max_iter": 2}).fit(X, y)
    np.testing.assert_allclose(model.coef_, two_epochs.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.intercept_, two_epochs.intercept_, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])
@pytest.mark.parametrize("assign", ["new array", "view"])
def test_a_warm_fit_goes_on_from_assigned_weights(assign, compiled):
    # a warm fit went on from the weights trained, not from a coef_ the user assigned, where
    # partial_fit (and the drop-ins' warm fit) go on from it; the closed form: one full-batch
    # step of gradient descent on the mean squared error / 2 + alpha/2 ||coef||^2
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.7
    cls = fastgd.LinearRegression if compiled else reference.LinearRegression
    model = cls(optimizer="sgd", learning_rate=0.1, batch_size=None, max_iter=1, tol=None, alpha=0.5,
                shuffle=False, warm_start=True).fit(X, y)
    if assign == "view":
        model.coef_, model.intercept_ = model.coef_[::-1], model.intercept_[...]  # (0-d: a view of it)
    else:
        model.coef_, model.intercept_ = np.array([3.0, 2.0, 1.0]), np.array([-1.0])
    w, b = model.coef_.copy(), float(np.ravel(model.intercept_)[0])  # (assigned: of shape (1,), or a view)
    residual = X @ w + b - y
    expected_w = w - 0.1 * (X.T @ residual / 50 + 0.5 * w)
    expected_b = b - 0.1 * residual.mean()
    model.fit(X, y)
    np.testing.assert_allclose(model.coef_, expected_w, rtol=1e-12)
    np.testing.assert_allclose(model.intercept_, [expected_b], rtol=1e-12)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])
@pytest.mark.parametrize("task", ["linear", "binary"])
def test_no_weights_after_weighted_calls_are_weights_of_one(task, compiled):
    # rows given no weights counted 1 in the mean weight seen but were not divided by it, so a
    # stream of weighted and unweighted calls went to another weighted solution (A's rows 1.8
    # times B's here rather than 10 times)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = X @ [1.0, -2.0] + 0.5 + rng.normal(size=40)
    if task == "binary":
        y = (y > 0.5).astype(int)
    modules = (fastgd if compiled else reference)
    cls = modules.LinearRegression if task == "linear" else modules.LogisticRegression
    kw = dict(optimizer="sgd", batch_size=None, learning_rate=0.5, shuffle=False, tol=None, penalty=None)
    models = {}
    for second in ("none", "ones"):
        model = models[second] = cls(**kw)
        for _ in range(300 if task == "linear" else 1000):
            model.partial_fit(X[:20], y[:20], sample_weight=np.full(20, 10.0), **({} if task == "linear" else
                                                                                 {"classes": [0, 1]}))
            model.partial_fit(X[20:], y[20:], sample_weight=None if second == "none" else np.ones(20))
    np.testing.assert_allclose(models["none"].coef_, models["ones"].coef_, rtol=1e-12)
    np.testing.assert_allclose(models["none"].intercept_, models["ones"].intercept_, rtol=1e-12)
    # steps on each half in turn circle near the weighted optimum (the wrong one was 0.26 away)
    weights = np.r_[np.full(20, 10.0), np.ones(20)]
    if task == "linear":
        exact = SkLinearRegression().fit(X, y, sample_weight=weights)
    else:
        exact = SkLogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(models["none"].coef_, exact.coef_, atol=0.03)


@pytest.mark.parametrize("weights", [np.zeros(40), np.r_[np.ones(20), -np.ones(20)], np.r_[-np.ones(40)]],
                         ids=["zeros", "cancelling", "negative"])
def test_weights_without_a_positive_sum_are_refused(weights):
    X, y = _data(np.random.default_rng(1), n=40)
    model = fastgd.LinearRegression()
    with pytest.raises(ValueError, match="sample_weight sums to .*positive sum|at least one non-zero"):
        model.fit(X, y, sample_weight=weights)
    assert not hasattr(model, "coef_")


@pytest.mark.parametrize("schedule", ["invscaling", "exponential", "step", "cosine"])
def test_partial_fit_after_a_switch_to_the_constant_schedule_steps_at_learning_rate(schedule):
    # the param group kept the last rate of the schedule before: one full-batch step of plain
    # SGD on the mean squared error / 2 is w - lr * X.T (X w + b - y) / n
    X, y = _data(np.random.default_rng(3), n=40)
    model = fastgd.LinearRegression(optimizer="sgd", learning_rate=0.1, batch_size=None, lr_schedule=schedule,
                                    gamma=0.5, step_size=1, max_iter=3, shuffle=False)
    for _ in range(3):
        model.partial_fit(X, y)
    model.set_params(lr_schedule="constant")
    w, b = model.coef_.copy(), float(np.ravel(model.intercept_)[0])  # (assigned: of shape (1,), or a view)
    residual = X @ w + b - y
    model.partial_fit(X, y)
    np.testing.assert_allclose(model.coef_, w - 0.1 * X.T @ residual / 40, rtol=1e-12)
    np.testing.assert_allclose(model.intercept_, [b - 0.1 * residual.mean()], rtol=1e-12)


@pytest.mark.parametrize("name, start, changed, pattern", [
    ("SGDClassifier", dict(shuffle=True), dict(shuffle=1), "'shuffle' parameter of SGDClassifier must be an instance"),
    ("SGDClassifier", dict(alpha=1e-4), dict(alpha=np.float64(-1.0)), "'alpha' parameter of SGDClassifier must be"),
    ("LogisticRegression", dict(betas=(0.9, 0)), dict(betas=(0.9, False)), "betas"),
    ("LogisticRegression", dict(betas=[0.9, 0.999]), dict(betas=[0.9, 2.0]), "betas"),
])
def test_every_partial_fit_checks_parameters_set_since_the_last(name, start, changed, pattern):
    # a call whose parameters are those checked last spares the check: a value equal to the last
    # checked one but of another type (1 for True, False for 0), or a list changed in place, is
    # checked again
    X, y = _data(np.random.default_rng(4), n=40)
    y = (y > np.median(y)).astype(int)
    model = getattr(fastgd, name)(random_state=0, **start).partial_fit(X, y, classes=[0, 1])
    for key, value in changed.items():
        if isinstance(value, list):
            getattr(model, key)[:] = value  # in place
        else:
            model.set_params(**{key: value})
    coef = model.coef_.copy()
    for _ in range(2):
        with pytest.raises((ValueError, TypeError), match=pattern):
            model.partial_fit(X, y)
    np.testing.assert_array_equal(model.coef_, coef)


@pytest.mark.parametrize("name, explicit", [("eps", 1e-8), ("betas", (0.9, 0.999))])
def test_an_option_set_back_to_none_between_partial_fit_calls_is_the_default(name, explicit):
    # a change to None (the optimizer's default) was not seen: the old value stayed in force;
    # the default is torch's Adam's, given here explicitly to a twin
    X, y = _data(np.random.default_rng(4), n=40)
    models = [fastgd.LinearRegression(optimizer="adam", learning_rate=0.05, random_state=0,
                                      **{name: 0.5 if name == "eps" else (0.5, 0.6)}) for _ in range(2)]
    for model, value in zip(models, (None, explicit)):
        model.partial_fit(X, y)
        model.set_params(**{name: value})
        model.partial_fit(X, y)
    np.testing.assert_array_equal(models[0].coef_, models[1].coef_)
    reference_model = fastgd.LinearRegression(optimizer="adam", learning_rate=0.05, random_state=0,
                                              **{name: 0.5 if name == "eps" else (0.5, 0.6)})
    reference_model.partial_fit(X, y).partial_fit(X, y)
    assert not np.allclose(models[0].coef_, reference_model.coef_)  # the change was followed


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])
@pytest.mark.parametrize("name, options", [
    ("LinearRegression", dict(optimizer="sgd", learning_rate=0.05)),
    ("SGDRegressor", dict(eta0=0.05, learning_rate="constant")),
], ids=["LinearRegression", "SGDRegressor"])
def test_average_switched_on_between_partial_fit_calls_averages_the_steps_after(name, options, compiled):
    # the average counted every step before the switch as a zero iterate: after 5 steps
    # unaveraged and 1 averaged, coef_ showed 1/6 of the weights; the oracle: the mean of the
    # iterates of a twin that never averages (a full batch a call: a step a call)
    if not compiled and name == "SGDRegressor":
        pytest.skip("the reference has the estimators of fastgd's own only")
    X, y = _data(np.random.default_rng(6), n=40)
    cls = getattr(fastgd if compiled else reference, name)
    model, twin = (cls(batch_size=None, shuffle=False, **options) for _ in range(2))
    for _ in range(5):
        model.partial_fit(X, y)
        twin.partial_fit(X, y)
    model.set_params(average=True)
    iterates = []
    for _ in range(3):
        model.partial_fit(X, y)
        twin.partial_fit(X, y)
        iterates.append(np.r_[twin.coef_.ravel(), twin.intercept_])
    np.testing.assert_allclose(np.r_[model.coef_.ravel(), model.intercept_], np.mean(iterates, axis=0), rtol=1e-12)
    model.set_params(average=2)  # changed again: a new average, from the next step
    model.partial_fit(X, y)
    twin.partial_fit(X, y)
    np.testing.assert_allclose(np.r_[model.coef_.ravel(), model.intercept_], np.r_[twin.coef_.ravel(), twin.intercept_],
                               rtol=1e-12)


def test_a_partial_fit_keeps_the_validation_scores_of_the_fit_before():
    # partial_fit (which holds no rows out) emptied validation_scores_ while loss_curve_ went on
    X, y = _data(np.random.default_rng(7), n=200)
    model = fastgd.LinearRegression(early_stopping=True, max_iter=8, tol=None, random_state=0).fit(X, y)
    scores = list(model.validation_scores_)
    assert len(scores) == len(model.loss_curve_) == 8
    model.partial_fit(X, y)
    assert model.validation_scores_ == scores and len(model.loss_curve_) == 9


def test_partial_fit_follows_the_current_parameters():
    """set_params between partial_fit calls takes effect: a learning rate (the weights barely move
    at 1e-9), an optimizer option, and another optimizer (a new state, the weights kept)."""
    X, y = _data(np.random.default_rng(5), n=40)
    model = fastgd.LinearRegression(optimizer="momentum", learning_rate=0.05, random_state=0).partial_fit(X, y)
    before = model.coef_.copy()
    model.set_params(learning_rate=1e-9).partial_fit(X, y)
    assert model._optimizer.param_groups[0]["lr"] == 1e-9
    np.testing.assert_allclose(model.coef_, before, atol=1e-7)
    model.set_params(momentum=0.5, learning_rate=0.05).partial_fit(X, y)
    assert model._optimizer.param_groups[0]["momentum"] == 0.5
    weights = model.coef_.copy()
    model.set_params(optimizer="adam").partial_fit(X, y)
    assert type(model._optimizer) is fastgd.Adam
    assert model._optimizer.state_dict()["state"][0]["step"] == -(-40 // 32)  # a new state
    assert not np.array_equal(model.coef_, weights)
    with pytest.raises(ValueError, match="learning_rate"):
        model.set_params(learning_rate=-1.0).partial_fit(X, y)  # checked on every call


def test_partial_fit_checks_options_as_fit_does():
    # optimizer="nesterov" with momentum=0: fit refused it, partial_fit after set_params took it
    # (the optimizer's Nesterov rule is checked on its constructor's options only, as torch's)
    X, y = _data(np.random.default_rng(7), n=40)
    model = fastgd.LinearRegression(optimizer="nesterov", learning_rate=0.05, random_state=0).partial_fit(X, y)
    coef, intercept = model.coef_.copy(), model.intercept_.copy()
    for method in ("partial_fit", "fit"):
        with pytest.raises(ValueError, match="Nesterov momentum requires a momentum > 0"):
            getattr(model.set_params(momentum=0.0), method)(X, y)
        np.testing.assert_array_equal(model.coef_, coef)
        np.testing.assert_array_equal(model.intercept_, intercept)
    model.set_params(momentum=0.9).partial_fit(X, y)
    assert model._optimizer.param_groups[0]["momentum"] == 0.9


def test_partial_fit_refuses_other_classes():
    X, y = _data(np.random.default_rng(6), n=30, task="multiclass")
    model = fastgd.LogisticRegression().partial_fit(X, y, classes=[0, 1, 2])
    model.partial_fit(X, y, classes=[2, 1, 0])  # the same classes
    coef = model.coef_.copy()
    with pytest.raises(ValueError, match=r"classes=\[0, 1, 2, 3\] is not the same as the model's classes_, \[0, 1, 2\] "
                                         r"\(of the first call to fit or partial_fit\)"):
        model.partial_fit(X, y, classes=[0, 1, 2, 3])
    assert np.array_equal(model.coef_, coef)


@pytest.mark.parametrize("copier", ["pickle", "deepcopy"])
def test_copies_train_from_the_coef_they_show(copier):
    """An unpickled or deep-copied estimator trains from the coef_ it exposes, edits included."""
    X, y = _data(np.random.default_rng(7), n=40)
    model = fastgd.LinearRegression(optimizer="adam", max_iter=3, tol=None, random_state=0).fit(X, y)
    copy_ = pickle.loads(pickle.dumps(model)) if copier == "pickle" else copy.deepcopy(model)
    for m in (model, copy_):
        m.coef_[...] = 0
        m.partial_fit(X, y)
    assert np.array_equal(copy_.coef_, model.coef_) and np.array_equal(copy_.intercept_, model.intercept_)


@pytest.mark.parametrize("multiclass", [False, True])
def test_probabilities_without_overflow(multiclass):
    """Unscaled data gives scores of 1e4 and more: the probabilities are exact (scipy's expit and
    softmax the oracles), without a warning, and predict_log_proba keeps the tiny ones."""
    from scipy.special import expit, log_softmax, softmax

    rng = np.random.default_rng(12)
    X, y = _data(rng, n=60, task="multiclass" if multiclass else "binary")
    model = fastgd.LogisticRegression(max_iter=5, tol=None, random_state=0).fit(X, y)
    X_far = X * 1e5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proba, log_proba = model.predict_proba(X_far), model.predict_log_proba(X_far)
    scores = model.decision_function(X_far)
    if multiclass:
        np.testing.assert_allclose(proba, softmax(scores, axis=1), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(log_proba, log_softmax(scores, axis=1), rtol=1e-12)
    else:
        np.testing.assert_allclose(proba[:, 1], expit(scores), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(log_proba[:, 0], -np.logaddexp(0, scores), rtol=1e-12)
    assert np.isfinite(log_proba).all() and log_proba.min() < -1e3


def test_smaller_items_of_the_estimators(capsys):
    """Mixed string and number labels, a wrong keyword, betas from a config file (a list), and
    verbose output under invscaling (it prints the rate in use)."""
    X, y = _data(np.random.default_rng(13), n=30, task="binary")
    with pytest.raises(ValueError, match="mixes string and number labels"):
        fastgd.LogisticRegression().fit(X, np.array([1, "a"] * 15, dtype=object))
    with pytest.raises(ValueError, match="mixes string and number labels"):
        fastgd.LogisticRegression().partial_fit(X, np.array(["a", "b"] * 15), classes=np.array([1, "a"], dtype=object))
    for cls in (fastgd.LinearRegression, fastgd.LogisticRegression, reference.LogisticRegression):
        with pytest.raises(TypeError, match=rf"^{cls.__name__}\.__init__\(\) got an unexpected keyword"):
            cls(learning_rat=0.1)
    kw = dict(optimizer="adam", max_iter=3, tol=None, random_state=0)
    listed = fastgd.LogisticRegression(betas=[0.8, 0.99], **kw).fit(X, y)
    paired = fastgd.LogisticRegression(betas=(0.8, 0.99), **kw).fit(X, y)
    assert np.array_equal(listed.coef_, paired.coef_)
    capsys.readouterr()
    fastgd.LinearRegression(lr_schedule="invscaling", learning_rate=0.1, batch_size=10, max_iter=2,
                            tol=None, verbose=1).fit(X, y.astype(float))
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("-- Epoch")]
    assert printed[-1].endswith(f"lr {0.1 / 6 ** 0.25:.3g}")  # after 6 steps of 10 rows


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "adamax", "lion", "radam", "nadam"])
def test_betas_none_is_each_optimizers_default(optimizer):
    """betas=None (the default) gives each optimizer its own default betas (Lion's are (0.9, 0.99));
    a pair given is used."""
    X, y = _data(np.random.default_rng(3), n=40, task="binary")
    model = fastgd.LogisticRegression(optimizer=optimizer, max_iter=2, tol=None, random_state=0).fit(X, y)
    default = getattr(fastgd, model._optimizer.__class__.__name__)([np.zeros(1)]).defaults["betas"]
    assert model.betas is None and model._optimizer.param_groups[0]["betas"] == default
    assert default == ((0.9, 0.99) if optimizer == "lion" else (0.9, 0.999))
    given = fastgd.LogisticRegression(optimizer=optimizer, betas=(0.5, 0.6), max_iter=2, tol=None).fit(X, y)
    assert given._optimizer.param_groups[0]["betas"] == (0.5, 0.6)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("task", ["linear", "binary"])
def test_early_stopping_holds_rows_out_by_index(task, shuffle, tmp_path):
    """Early stopping trains on the rows it keeps without copying X: a read-only memory map
    stays on disk (fancy indexing it would make a copy in memory), and the fit is the one made
    from the kept rows copied out, as before (the NumPy loop's the oracle)."""
    rng = np.random.default_rng(14)
    X, y = _data(rng, n=400, task=task)
    path = tmp_path / "X.npy"
    np.save(path, X)
    X_map = np.load(path, mmap_mode="r")
    cls = "LinearRegression" if task == "linear" else "LogisticRegression"
    kw = dict(early_stopping=True, validation_fraction=0.2, n_iter_no_change=3, max_iter=30, batch_size=16,
              shuffle=shuffle, learning_rate=0.02, random_state=0)
    copies = []
    real_getitem = np.memmap.__getitem__

    def getitem(self, key):
        result = real_getitem(self, key)
        if isinstance(result, np.ndarray) and not np.shares_memory(result, self) and result.size > 0.5 * self.size:
            copies.append(result.shape)
        return result

    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as patch:
        warnings.simplefilter("ignore", ConvergenceWarning)
        patch.setattr(np.memmap, "__getitem__", getitem)
        fast = getattr(fastgd, cls)(**kw).fit(X_map, y)
    assert copies == [], "X was copied"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = getattr(reference, cls)(**kw).fit(X, y)
    _assert_same_model(fast, ref)
    assert fast.validation_scores_ == pytest.approx(ref.validation_scores_, rel=1e-9)


@pytest.fixture(scope="module")
def x_on_disk(tmp_path_factory):
    """X, 50,000 x 80 standard normal (32 MB in float64, 16 in float32), and the .npy files it is
    saved to, by (dtype, "C" or "F" order)."""
    X = np.random.default_rng(16).standard_normal((50_000, 80))
    folder = tmp_path_factory.mktemp("memmap")
    paths = {}
    for dtype in (np.float64, np.float32):
        for order in "CF":
            paths[dtype, order] = folder / f"X-{np.dtype(dtype).name}-{order}.npy"
            np.save(paths[dtype, order], np.asarray(X, dtype=dtype, order=order))
    return X, paths


def _peak_allocated(call):
    """The peak of the memory allocated while call() runs (NumPy's arrays included; the pages of a
    memory map are not allocations), in bytes."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        if not tracing:
            tracemalloc.stop()


@pytest.mark.parametrize("method", ["fit", "partial_fit", "fit with early stopping"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["LinearRegression", "LogisticRegression", "SGDRegressor", "SGDClassifier"])
def test_memory_map_trains_without_a_copy(name, dtype, method, x_on_disk):
    """fit and partial_fit read a memory-mapped X where it lies: the memory allocated during the
    call stays below half of X's size (early stopping copies the held-out rows a chunk at a time
    to score them: 10% of X here), where a Fortran-ordered map (copied to C order) allocates all
    of it; and the model is the one trained on X in memory."""
    X, paths = x_on_disk
    classifier = name in ("LogisticRegression", "SGDClassifier")
    score = X @ np.linspace(-1, 1, X.shape[1])
    y = (score > 0).astype(np.int64) if classifier else score
    classes = {"classes": np.array([0, 1])} if classifier else {}

    def train(X):
        model = getattr(fastgd, name)(max_iter=2, tol=None, random_state=0,
                                      early_stopping=method == "fit with early stopping")
        if method != "partial_fit":
            return model.fit(X, y)
        return model.partial_fit(X, y, **classes).partial_fit(X, y, **classes)  # a second call goes on

    X_memory = X.astype(dtype)
    trained = []
    peak = _peak_allocated(lambda: trained.append(train(np.load(paths[dtype, "C"], mmap_mode="r"))))
    assert peak < X_memory.nbytes / 2, f"{peak / 1e6:.1f} MB allocated for X of {X_memory.nbytes / 1e6:.0f} MB"
    assert _peak_allocated(lambda: train(np.load(paths[dtype, "F"], mmap_mode="r"))) >= X_memory.nbytes
    expected = train(X_memory)
    assert trained[0].coef_.dtype == dtype
    np.testing.assert_array_equal(trained[0].coef_, expected.coef_)
    np.testing.assert_array_equal(trained[0].intercept_, expected.intercept_)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_multi_output_regression(optimizer):
    """A 2-D y fits one weight vector per target (coef_ of shape (n_targets, n_features), as
    Ridge's): the same as one fit per target (the objective is their sum; the updates are
    element-wise), the NumPy loop's, and Ridge's solution when trained to convergence."""
    rng = np.random.default_rng(15)
    X = rng.standard_normal((120, 4))
    Y = X @ rng.standard_normal((4, 3)) + rng.standard_normal(3) + 0.1 * rng.standard_normal((120, 3))
    kw = dict(optimizer=optimizer, learning_rate=0.05, batch_size=16, max_iter=40, tol=None, alpha=0.01,
              random_state=0)
    model = fastgd.LinearRegression(**kw).fit(X, Y)
    assert model.coef_.shape == (3, 4) and model.intercept_.shape == (3,) and model.predict(X).shape == (120, 3)
    for j in range(3):
        single = fastgd.LinearRegression(**kw).fit(X, Y[:, j])
        np.testing.assert_allclose(model.coef_[j], single.coef_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(model.intercept_[j], single.intercept_, rtol=1e-9, atol=1e-12)
    _assert_same_model(model, reference.LinearRegression(**kw).fit(X, Y))
    full = fastgd.LinearRegression(optimizer="adam", learning_rate=0.05, batch_size=None, max_iter=3000, tol=None,
                                   alpha=0.01).fit(X, Y)
    ridge = Ridge(alpha=0.01 * len(X)).fit(X, Y)
    np.testing.assert_allclose(full.coef_, ridge.coef_, atol=1e-5)
    np.testing.assert_allclose(full.intercept_, ridge.intercept_, atol=1e-5)
    one_column = fastgd.LinearRegression(**kw).fit(X, Y[:, :1])
    assert one_column.coef_.shape == (1, 4) and one_column.predict(X).shape == (120, 1)
    with pytest.raises(ValueError, match=r"y has shape \(120,\); the model was fitted to 3 targets a row"):
        model.partial_fit(X, Y[:, 0])


@pytest.mark.parametrize("cls", [fastgd.LinearRegression, reference.LinearRegression])
def test_float32_overflow_is_divergence(cls):
    """Targets of 1e30 in float32: the squared error overflows float32 in the first epoch, which
    is a divergence (the NumPy loop's float32 arithmetic overflows there too)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3)).astype(np.float32)
    y = ((X @ np.array([1, 2, 3], np.float32) + 1) * 1e30).astype(np.float32)
    with np.errstate(over="ignore"), pytest.raises(ValueError, match=r"non-finite in epoch 1 .*float32"):
        cls().fit(X, y)


def test_finite_divergence_warns():
    """A learning rate far too large: the objective grows by orders of magnitude each epoch and the
    fit stops for want of improvement; that is reported as divergence, not convergence."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ [1.0, 2.0, 3.0] + 1
    with pytest.warns(ConvergenceWarning, match=r"above its first epoch's .*: it diverged"):
        m = fastgd.LinearRegression(learning_rate=1e3).fit(X, y)
    assert m.loss_curve_[-1] > 1e10 * min(m.loss_curve_)


def test_a_steady_divergence_warns_however_the_fit_ends():
    """Full-batch gradient descent at 2.25 / L (L the largest curvature): the objective grows about
    1.5x an epoch, never past 10x its best within the tol stop's 5 epochs; the fit stopped as if
    converged (tol), or ran out silently (tol=None) or with the advice to raise max_iter."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=200)
    with_ones = np.c_[X, np.ones(200)]
    lr = 2.25 / np.linalg.eigvalsh(with_ones.T @ with_ones / 200).max()
    for max_iter, tol in ((100, 1e-4), (12, None), (5, 1e-4)):
        model = fastgd.LinearRegression(batch_size=None, learning_rate=lr, max_iter=max_iter, tol=tol)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            model.fit(X, y)
        assert all(later > earlier for earlier, later in zip(model.loss_curve_, model.loss_curve_[1:]))
        assert len(said) == 1 and "it diverged" in str(said[0].message)  # (and not "increasing max_iter")
    with warnings.catch_warnings():  # a partial_fit warns of nothing, as scikit-learn's
        warnings.simplefilter("error", ConvergenceWarning)
        for _ in range(8):
            model.partial_fit(X, y)
    # at 2.1 / L the objective first falls, then grows 1.2x an epoch: the fit stops on tol with its
    # last objective 1.5 times its best, having risen in each of its last 5 epochs
    with pytest.warns(ConvergenceWarning, match=r"rising in each of its last 5: it diverged"):
        model = fastgd.LinearRegression(batch_size=None, learning_rate=2.1 / 2.25 * lr).fit(X, y)
    assert model.loss_curve_[-1] < 2 * min(model.loss_curve_)


@pytest.mark.parametrize("cls", [fastgd.LinearRegression, fastgd.LogisticRegression])
def test_a_fit_blown_up_in_its_first_epoch_warns(cls):
    """Features of 1e3 and Lion at a rate of 100: the first epoch's objective is already 1e3-1e10
    times that of zero weights, and the later ones no higher: nothing rose, the fit stopped on tol
    as if converged.  The best weights' objective cannot exceed zero weights' (log K, or the mean
    of y^2 / 2), so a fit ending above twice it diverged."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)) * 1e3
    y = X @ [1e-3, 2e-3, 0, 0] + 1
    y = y if cls is fastgd.LinearRegression else (y > 1).astype(int)
    at_zero = np.mean(y ** 2) / 2 if cls is fastgd.LinearRegression else np.log(2)
    with pytest.warns(ConvergenceWarning, match=r"over 2 times that of zero weights .*: it diverged"):
        model = cls(optimizer="lion", learning_rate=100.0, random_state=0).fit(X, y)
    assert model.n_iter_ < model.max_iter and model.loss_curve_[-1] > 100 * at_zero
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        cls(optimizer="lion", learning_rate=1e-2, max_iter=20, tol=None, random_state=0).fit(X / 1e3, y)  # scaled
        cls(optimizer="lion", learning_rate=100.0, random_state=0).partial_fit(X, y, **(
            {} if cls is fastgd.LinearRegression else {"classes": [0, 1]}))  # as scikit-learn's


@pytest.mark.parametrize("cls, optimizer, batch_size", [(fastgd.LinearRegression, "adadelta", None),
                                                       (fastgd.LogisticRegression, "radam", 32),
                                                       (fastgd.LogisticRegression, "lion", 32)])
def test_a_fit_ending_worse_than_zero_weights_warns(cls, optimizer, batch_size):
    # learning_rate=1000 (lion: 10): the objective never fell below its first epoch's, nor rose
    # each epoch, nor reached 100 times zero weights' (5-80 times), and tol stopped the fit as
    # if it had converged, silently; the zero weights' objective, computed here, is the oracle:
    # the optimum's is no higher
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = X @ rng.normal(size=5) + 1 if cls is fastgd.LinearRegression else rng.integers(0, 3, 200)
    at_zero = np.mean(y ** 2) / 2 if cls is fastgd.LinearRegression else np.log(3)
    lr = 10.0 if optimizer == "lion" else 1000.0
    with pytest.warns(ConvergenceWarning, match=r"times that of zero weights .*: it diverged"):
        model = cls(optimizer=optimizer, learning_rate=lr, batch_size=batch_size, max_iter=20, random_state=0).fit(X, y)
    assert model.loss_curve_[-1] > 2 * at_zero


def test_an_averaged_fit_whose_iterate_wanders_does_not_warn():
    # averaged SGD at a rate where the iterate wanders (its epochs' objective 4 times zero
    # weights') returns a good average: the twice-zero-weights rule read the iterate's curve and
    # warned; the oracle is the returned model's objective, near the optimum's (least squares)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 20))
    y = X @ (0.1 * rng.normal(size=20)) + rng.normal(size=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = fastgd.LinearRegression(batch_size=1, learning_rate=0.07, average=True, random_state=0, max_iter=20,
                                        tol=None).fit(X, y)
    at_zero = np.mean(y ** 2) / 2
    coef, *_ = np.linalg.lstsq(np.column_stack([X, np.ones(2000)]), y, rcond=None)
    optimum = 0.5 * np.mean((np.column_stack([X, np.ones(2000)]) @ coef - y) ** 2)
    assert model.loss_curve_[-1] > 2 * at_zero
    assert 0.5 * np.mean((model.predict(X) - y) ** 2) < optimum * 1.02 < at_zero


def test_a_warm_refit_falling_far_above_zero_weights_does_not_warn():
    """A warm refit starts from the weights of targets 1000 times larger: its objective falls every
    epoch but stays far above zero weights' (y = 0 too: any objective is above theirs); it did not
    diverge, and the fit from zero weights' rule does not apply (it said "diverged")."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, -2.0, 0.5]
    for targets in (y, np.zeros(200)):
        model = fastgd.LinearRegression(learning_rate=1e-3, max_iter=3, tol=None, warm_start=True).fit(X, 1000 * y)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            model.fit(X, targets)
        assert all(later < earlier for earlier, later in zip(model.loss_curve_, model.loss_curve_[1:]))
        assert model.loss_curve_[-1] > 100 * np.mean(targets ** 2) / 2


def test_healthy_fits_do_not_warn_of_divergence():
    """Fits the earlier divergence rules took for divergent: the drop-ins' default on standardized
    iris (setosa's objective, near 0, wanders from 0.005 to 0.03 as scikit-learn's does), warm refits
    at the optimum (the optimizer's noise near 0, a thousandth of zero weights' objective), and early
    stopping with sample weights that sum to 0 over all rows but not over those trained on (the
    objective of zero weights over all rows raised ZeroDivisionError after the fit)."""
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    rng = np.random.default_rng(0)
    Xr = rng.normal(size=(300, 5))
    yr = Xr @ [1.0, -2, 0.5, 3, 0] + 1
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        for loss in ("hinge", "modified_huber", "perceptron"):
            for shuffle in (True, False):
                fastgd.SGDClassifier(loss=loss, random_state=0, shuffle=shuffle).fit(X, y)
        for cls, data, options in ((fastgd.LinearRegression, (Xr, yr), dict(optimizer="nadam", learning_rate=0.1)),
                                   (fastgd.LinearRegression, (Xr, yr), dict(optimizer="radam", learning_rate=0.3)),
                                   (fastgd.LogisticRegression, (X, y), dict(optimizer="lion", learning_rate=0.3))):
            model = cls(warm_start=True, random_state=0, **options)
            for _ in range(4):
                model.fit(*data)
        from sklearn.model_selection import ShuffleSplit  # (the held-out rows, as the fit draws them)
        train, held_out = next(ShuffleSplit(test_size=0.1, random_state=0).split(Xr))
        weights = np.ones(300)
        weights[held_out] = -1.0
        weights[held_out[0]] = 1.0  # (held-out rows need one of positive weight, as scikit-learn's)
        weights[held_out[1]] -= weights.sum()
        assert weights.sum() == 0 and weights[train].sum() > 0
        fastgd.LinearRegression(early_stopping=True, random_state=0).fit(Xr, yr, sample_weight=weights)
    assert not [str(w.message) for w in said if "diverged" in str(w.message)]


def test_a_recovering_perceptron_and_a_creeping_objective_do_not_warn():
    """A perceptron's objective (0 at zero weights) starting near 0, jumping, then falling in each
    of its last epochs, with every training row classified right; and an objective creeping up
    0.1% over its epochs: scikit-learn says nothing of either, and fastgd said "it diverged".
    A climb of a few percent an epoch still is divergence."""
    X = np.array([[1.7, -0.5], [0.0, 0.4], [-0.8, 0.0], [-0.0, -1.8], [1.0, 0.6], [-0.6, -0.2], [0.5, -0.3],
                  [-0.2, -1.5], [0.6, 0.1], [0.3, -1.5]])
    y = np.array([1, 1, 0, 1, 1, 0, 1, 0, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = fastgd.SGDClassifier(loss="perceptron", penalty=None, learning_rate="constant", eta0=1.0,
                                     shuffle=False, max_iter=5, tol=None).fit(X, y)
    curve = model.loss_curve_
    assert model.score(X, y) == 1.0 and curve[-1] > 10 * curve[0] and np.all(np.diff(curve[-4:]) < 0)
    creeping = list(0.29879 + 0.0003 * (np.arange(60) / 59) ** 2)  # rising each epoch, by ever larger steps
    assert model._rising(curve=creeping, epochs=60) is None
    climbing = list(0.3 * 1.03 ** np.arange(10))
    assert "rising in each of its last 5: it diverged" in model._rising(curve=climbing, epochs=10)
    blown_up = [1, 0.5, 0.4, 1e6, 9e5, 8e5, 7e5]  # falling too, but far above where it began
    assert "far above its best (0.4): it diverged" in model._rising(curve=blown_up, epochs=7)


def test_a_fit_settling_from_above_its_first_epoch_does_not_warn():
    """Per-sample modified Huber at a constant rate, rows in order: the objective rises onto its
    level (the first epoch's mean lies below it) by steps 1e2 times smaller each epoch, a rise in
    each of the last 5, and the fit stops on tol as scikit-learn's does, with the same weights and
    no warning; fastgd said it diverged."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import SGDClassifier as SkSGDClassifier
    X, y = make_classification(300, 8, n_informative=5, n_classes=3, random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (y == 2).astype(int)
    for extra in (dict(), dict(tol=None, max_iter=5)):
        options = dict(loss="modified_huber", learning_rate="constant", eta0=0.05, shuffle=False, **extra)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            model = fastgd.SGDClassifier(**options).fit(X, y)
            oracle = SkSGDClassifier(**options).fit(X, y)
        assert not said and model.n_iter_ == oracle.n_iter_
        np.testing.assert_allclose(model.coef_, oracle.coef_, rtol=1e-9)
        steps = np.diff(model.loss_curve_)
        assert model.loss_curve_[-1] > model.loss_curve_[0] and len(steps) >= 4 and (steps > 0).all()


@pytest.mark.parametrize("batch_size", [1, 4])
def test_an_overflowing_l2_decay_is_divergence_in_the_own_estimators(batch_size):
    # lr * alpha = inf: the own estimators take the gradient step, whose weights leave the range
    # (the drop-ins' zeroing past a decay of 0 had reached them: a finite, absurd model)
    X, y = _data(np.random.default_rng(0))
    model = fastgd.LogisticRegression(optimizer="sgd", batch_size=batch_size, learning_rate=1e200, alpha=1e200)
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="non-finite in epoch 1"):
        model.fit(X, (y > np.median(y)).astype(int))
    assert not hasattr(model, "coef_")


def test_max_iter_reached_warns():
    X, y = _data(np.random.default_rng(2))
    with pytest.warns(ConvergenceWarning, match=r"Maximum number of epochs \(max_iter=2\)"):
        fastgd.LinearRegression(max_iter=2, tol=1e-12).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fastgd.LinearRegression(max_iter=2, tol=None).fit(X, y)  # no convergence test asked for
        fastgd.LinearRegression(max_iter=2, tol=1e-12).partial_fit(X, y)  # one epoch a call, as scikit-learn
        for cls in (fastgd.LinearRegression, fastgd.SGDRegressor):  # max_iter=1: a partial_fit runs max_iter epochs
            cls(max_iter=1, tol=1e-12).partial_fit(X, y)
        SkSGDRegressor(max_iter=1, tol=1e-12).partial_fit(X, y)  # (scikit-learn's never warns)


@pytest.mark.parametrize("cls", [fastgd.LinearRegression, fastgd.LogisticRegression])
def test_partial_fit_with_early_stopping_trains_on_every_row(cls):
    # a partial_fit runs one epoch: nothing to stop early, so no rows are held out (the first
    # call held out validation_fraction of its rows, and never trained on them)
    X, y = _data(np.random.default_rng(3))
    if cls is fastgd.LogisticRegression:
        y = (y > np.median(y)).astype(int)
    options = {"classes": [0, 1]} if cls is fastgd.LogisticRegression else {}
    for calls in (1, 2):
        stopping, plain = cls(early_stopping=True, shuffle=False), cls(shuffle=False)
        for _ in range(calls):
            for model in (stopping, plain):
                model.partial_fit(X, y, **options)
        np.testing.assert_array_equal(stopping.coef_, plain.coef_)
        np.testing.assert_array_equal(stopping.intercept_, plain.intercept_)
        assert stopping.validation_scores_ is None


def _model_state(model):
    """Everything a call may change: weights, optimizer state, counters, curves, generator."""
    return (model._theta.copy(), model._optimizer.state_dict(), model._t.copy(), model.n_iter_,
            list(model.loss_curve_), model._shuffle_seed, model._shuffle_bits.state)


def _fails_and_changes_nothing(make, good, bad, match):
    """Two models made alike see partial_fit(*good); then one's partial_fit(*bad) fails (match) and
    leaves it exactly as it was, so that the next partial_fit(*good) gives both the same weights.
    Returns the two."""
    model, twin = make(), make()
    for m in (model, twin):
        m.partial_fit(*good)
    before = _model_state(model)
    with np.errstate(all="ignore"), pytest.raises(ValueError, match=match):
        model.partial_fit(*bad)
    after = _model_state(model)
    assert np.array_equal(after[0], before[0]) and np.array_equal(after[2], before[2])
    assert after[3:] == before[3:]
    assert after[1]["state"].keys() == before[1]["state"].keys()
    for key, value in before[1]["state"].get(0, {}).items():  # (plain SGD keeps none)
        assert np.array_equal(after[1]["state"][0][key], value), key
    assert after[1]["param_groups"] == before[1]["param_groups"]
    for m in (model, twin):
        m.partial_fit(*good)
    assert np.array_equal(model.coef_, twin.coef_) and np.array_equal(model.intercept_, twin.intercept_)
    return model, twin


@pytest.mark.parametrize("load", ["pickle 5", "joblib"])
@pytest.mark.parametrize("make", [
    lambda: fastgd.SGDClassifier(random_state=0, shuffle=False, learning_rate="constant", eta0=0.01),
    lambda: fastgd.LogisticRegression(optimizer="adam", batch_size=10, learning_rate=0.01, shuffle=False)],
    ids=["SGDClassifier", "LogisticRegression-adam"])
def test_a_loaded_model_whose_call_fails_changes_nothing(make, load):
    # loaded by pickle 5 or joblib, the model's arrays are views of the buffers they were read
    # from, which a failed call's snapshot took for views of the model's own (coef_'s) and did not
    # copy: the failed call left its weights
    import io

    import joblib

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 4)), rng.integers(0, 3, 200)
    model = make().partial_fit(X, y, classes=[0, 1, 2])
    if load == "joblib":
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        loaded = joblib.load(io.BytesIO(buffer.getvalue()))
    else:
        loaded = pickle.loads(pickle.dumps(model, protocol=5))
    rate = "eta0" if isinstance(model, fastgd.SGDClassifier) else "learning_rate"
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="non-finite"):
        loaded.set_params(**{rate: 1e305}).partial_fit(X * 1e150, y)
    state = (loaded._optimizer.state_dict(), model._optimizer.state_dict())
    assert np.array_equal(loaded._t, model._t) and repr(state[0]) == repr(state[1])
    assert np.array_equal(loaded.coef_, model.coef_) and np.array_equal(loaded.intercept_, model.intercept_)
    loaded.set_params(**{rate: model.get_params()[rate]})
    for m in (loaded, model):
        m.partial_fit(X, y)
    assert np.array_equal(loaded.coef_, model.coef_) and np.array_equal(loaded.intercept_, model.intercept_)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_diverging_partial_fit_changes_nothing(optimizer):
    """Only the last rows are huge: the optimizer has stepped on the first batches of the epoch when
    the loss overflows. The call fails and everything is as before it; the next clean partial_fit
    gives exactly what a model that never saw the failed call gives."""
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((60, 3)), rng.standard_normal(60)
    bad_X, bad_y = X.copy(), y.copy()
    bad_X[-5:] *= 1e200
    kw = dict(optimizer=optimizer, shuffle=False, batch_size=10, learning_rate=0.01, lr_schedule="invscaling")
    model, twin = _fails_and_changes_nothing(lambda: fastgd.LinearRegression(**kw), (X, y), (bad_X, bad_y),
                                             "non-finite in epoch 2")
    assert model.n_iter_ == twin.n_iter_ == 2 == len(model.loss_curve_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls", [fastgd.SGDRegressor, fastgd.LinearRegression])
def test_a_last_step_that_overflows_a_weight_is_divergence(cls, dtype):
    """Sparse rows and plain SGD with an L2 penalty: the weights are scaled, and the epoch's fold
    checks them as it writes them (the check Python then skips).  The last row's step makes a weight
    inf while every loss, computed before its row's step, and the objective stay finite: the call
    fails and changes nothing, and the next call goes on as if it never ran."""
    rng = np.random.default_rng(5)
    # the last feature: in the last row alone, huge, with a target far off
    X = sparse.hstack([sparse.random(40, 5, density=0.5, random_state=rng, dtype=dtype), np.zeros((40, 1), dtype)],
                      format="csr")
    y = rng.standard_normal(40).astype(dtype)
    last = sparse.csr_matrix(([np.finfo(dtype).max / 1e3], [5], [0, 1]), shape=(1, 6), dtype=dtype)
    bad_X, bad_y = sparse.vstack([X, last], format="csr"), np.append(y, dtype(1e6))
    kw = (dict(penalty="l2", alpha=1e-3, learning_rate="constant", eta0=0.01) if cls is fastgd.SGDRegressor
          else dict(alpha=1e-3, learning_rate=0.01, lr_schedule="constant", batch_size=1))
    _fails_and_changes_nothing(lambda: cls(shuffle=False, **kw), (X, y), (bad_X, bad_y), "non-finite in epoch")


# -- penalties and averaging (issue 13): the L1 penalty by truncated gradient, ASGD ----------------


def test_l1_penalty_reaches_the_lasso():
    # full-batch gradient steps, each followed by the truncation: the Lasso's solution and objective
    from sklearn.datasets import make_regression
    from sklearn.linear_model import Lasso

    X, y = make_regression(200, 10, n_informative=4, noise=1, random_state=0)
    y = y / y.std()
    lasso = Lasso(alpha=0.05).fit(X, y)
    model = fastgd.LinearRegression(penalty="l1", alpha=0.05, batch_size=None, learning_rate=0.1, max_iter=3000,
                                    tol=None, shuffle=False).fit(X, y)

    def objective(coef, intercept):
        return 0.5 * np.mean((X @ coef + intercept - y) ** 2) + 0.05 * np.abs(coef).sum()

    assert objective(model.coef_, float(model.intercept_)) <= objective(lasso.coef_, lasso.intercept_) * (1 + 1e-9)
    np.testing.assert_allclose(model.coef_, lasso.coef_, atol=1e-6)
    assert (model.coef_ == 0).sum() == (lasso.coef_ == 0).sum() > 0  # exact zeros, as the Lasso's
    assert model.loss_curve_[-1] == pytest.approx(objective(model.coef_, float(model.intercept_)), rel=1e-9)


@pytest.mark.parametrize("sparse_rows", [False, True])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("options", [dict(penalty="elasticnet", alpha=0.05, l1_ratio=0.5),
                                     dict(penalty="l1", alpha=0.02), dict(average=3, alpha=0.01),
                                     dict(average=True, penalty="elasticnet", alpha=0.02),
                                     dict(average=True, penalty=None)],
                         ids=["elasticnet", "l1", "average-from-3", "average-elasticnet", "average"])
def test_penalties_and_averaging_match_the_reference(options, optimizer, sparse_rows):
    from scipy import sparse

    # on sparse rows the L1 penalty reaches a row's nonzeros only (lazily, as scikit-learn's): the
    # reference, dense, applies it to every weight, so sparse rows are compared without L1
    if sparse_rows and options.get("penalty") in ("l1", "elasticnet"):
        pytest.skip("L1 on sparse rows is lazy")
    rng = np.random.default_rng(3)
    X, y = _data(rng, n=60, d=5)
    if sparse_rows:
        X[rng.random(X.shape) < 0.5] = 0
    options = dict(optimizer=optimizer, batch_size=8, max_iter=4, tol=None, random_state=0, **options)
    compiled = fastgd.LinearRegression(**options).fit(sparse.csr_matrix(X) if sparse_rows else X, y)
    expected = reference.LinearRegression(**options).fit(X, y)
    np.testing.assert_allclose(compiled.coef_, expected.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(compiled.intercept_, expected.intercept_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(compiled.loss_curve_, expected.loss_curve_, rtol=1e-10)


def test_averaged_coef_is_the_mean_of_the_iterates():
    rng = np.random.default_rng(4)
    X, y = _data(rng, n=40, d=3)
    options = dict(optimizer="adam", batch_size=10, tol=None, shuffle=False, learning_rate=0.05)
    iterates, model = [], fastgd.LinearRegression(max_iter=1, **options)
    for _ in range(3):  # 4 steps an epoch; partial_fit shows the plain iterate without averaging
        model.partial_fit(X, y)
    plain = fastgd.LinearRegression(max_iter=1, **options)
    for _ in range(3):
        for start in range(0, 40, 10):  # one step a call: each iterate in turn
            plain.partial_fit(X[start:start + 10], y[start:start + 10])
            iterates.append(np.append(plain.coef_, plain.intercept_))
    averaged = fastgd.LinearRegression(max_iter=3, average=True, **options).fit(X, y)
    np.testing.assert_allclose(np.append(averaged.coef_, averaged.intercept_), np.mean(iterates, axis=0),
                               rtol=1e-10, atol=1e-12)


def test_class_weight_is_sample_weight_per_class():
    from sklearn.utils.class_weight import compute_sample_weight

    rng = np.random.default_rng(6)
    X = rng.standard_normal((90, 4))
    y = np.repeat([0, 1, 2], [50, 25, 15])
    options = dict(max_iter=5, tol=None, random_state=0, optimizer="adam", batch_size=16)
    for class_weight in ({0: 0.5, 1: 2.0, 2: 3.0}, "balanced"):
        weighted = fastgd.LogisticRegression(class_weight=class_weight, **options).fit(X, y)
        expected = fastgd.LogisticRegression(**options).fit(X, y, sample_weight=compute_sample_weight(class_weight, y))
        np.testing.assert_allclose(weighted.coef_, expected.coef_, rtol=1e-12, atol=1e-15)
    model = fastgd.LogisticRegression(class_weight="balanced")
    with pytest.raises(ValueError, match="balanced"):
        model.partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(model, "coef_")


def test_the_weight_of_rows_in_the_objective_folds_their_class_weights_in():
    # (DataParallel weighs its replicas by it) "balanced" was computed with y=classes: weights of
    # 1 each, as if every class were equally frequent, whatever the rows' labels
    from sklearn.utils.class_weight import compute_sample_weight

    rng = np.random.default_rng(8)
    y = np.repeat([0, 1, 2], [60, 25, 5])
    w = rng.uniform(0.5, 2.0, y.size)
    classes = np.array([0, 1, 2])
    for class_weight in ({0: 0.5, 1: 2.0, 2: 3.0}, "balanced"):
        model = fastgd.LogisticRegression(class_weight=class_weight)
        for sample_weight in (None, w):
            expected = compute_sample_weight(class_weight, y) * (1.0 if sample_weight is None else sample_weight)
            assert model._weight_sum(y, sample_weight, classes) == pytest.approx(expected.sum(), rel=1e-12)


def test_logistic_regression_shares_the_other_parameters_defaults():
    shared = fastgd.LinearRegression().get_params()
    own = fastgd.LogisticRegression().get_params()
    assert own.pop("class_weight") is None
    assert own == shared


@pytest.mark.parametrize("make", [fastgd.SGDClassifier, fastgd.SGDRegressor])
def test_the_drop_ins_share_the_optimizer_options_defaults(make):
    # written again in each drop-in's signature (scikit-learn's own parameters' defaults differ)
    from fastgd.linear_model import OPTIMIZERS
    options = {name for _, names, _ in OPTIMIZERS.values() for name in names} | {"rho", "lazy_updates"}
    shared, own = fastgd.LinearRegression().get_params(), make().get_params()
    assert options <= set(own)
    assert {name: own[name] for name in options} == {name: shared[name] for name in options}


def test_early_stopping_with_average_scores_the_model_returned():
    # the own estimators score the model they return (the average), the drop-ins the weights trained
    from sklearn.datasets import make_regression
    from sklearn.model_selection import ShuffleSplit
    X, y = make_regression(400, 8, noise=20.0, random_state=0)
    y = y / y.std()
    model = fastgd.LinearRegression(average=True, early_stopping=True, learning_rate=0.05, batch_size=1,
                                    random_state=0, tol=1e-3, shuffle=False).fit(X, y)
    _, held_out = next(ShuffleSplit(test_size=0.1, random_state=0).split(X))  # the estimators' split
    assert model.validation_scores_[-1] == pytest.approx(model.score(X[held_out], y[held_out]), rel=1e-12)


_PERSISTED = [
    ("LinearRegression", dict(optimizer="adam"), "linear"),
    ("LogisticRegression", dict(optimizer="rmsprop", momentum=0.9), "multiclass"),
    ("SGDRegressor", dict(average=True), "linear"),
    ("SGDClassifier", dict(optimizer="adagrad", batch_size=4), "binary"),
]


def _fitted(name, options, task):
    X, y = _data(np.random.default_rng(5), n=60, task=task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(fastgd, name)(random_state=0, max_iter=3, **options).fit(X, y), X, y


@pytest.mark.parametrize(("name", "options", "task"), _PERSISTED)
@pytest.mark.parametrize("mmap_mode", [None, "r", "c"])
def test_joblib_loaded_estimator_trains_on_as_a_pickled_one(name, options, task, mmap_mode, tmp_path):
    """joblib (scikit-learn's way to persist a model) writes each reference to an array apart:
    the optimizer's parameter came back apart from the weights the model shows, and partial_fit
    stepped a copy nobody read (coef_ never moved); loaded as a read-only memory map, partial_fit
    and fit raised.  The model trains on as its pickled copy does."""
    joblib = pytest.importorskip("joblib")
    model, X, y = _fitted(name, options, task)
    joblib.dump(model, tmp_path / "model.joblib")
    pickled = pickle.loads(pickle.dumps(model))
    loaded = joblib.load(tmp_path / "model.joblib", mmap_mode=mmap_mode)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # a model loaded for predictions shares the file (copied when it trains; each load copied it)
    assert isinstance(loaded.coef_, np.memmap) == (mmap_mode is not None)
    for twin in (loaded, pickled):
        twin.partial_fit(X, y)
    np.testing.assert_array_equal(loaded.coef_, pickled.coef_)
    np.testing.assert_array_equal(loaded.intercept_, pickled.intercept_)
    assert not np.array_equal(loaded.coef_, model.coef_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib", mmap_mode=mmap_mode).fit(X, y).coef_,
                                      model.fit(X, y).coef_)


def test_a_memory_map_copy_that_fails_leaves_the_loaded_model_as_it_was(tmp_path, monkeypatch):
    # the memory maps are copied before the call's snapshot: a copy that ran out of memory left
    # _theta a copy while the optimizer and coef_ kept the map
    joblib = pytest.importorskip("joblib")
    model, X, y = _fitted("LinearRegression", {"optimizer": "adam"}, "linear")
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib", mmap_mode="r")
    before = dict(vars(loaded))
    original, copies = fastgd.optim._writable, []

    def short_of_memory(array, dtype=None):
        copies.append(1)
        if len(copies) == 3:
            raise MemoryError
        return original(array, dtype)
    monkeypatch.setattr(fastgd.optim, "_writable", short_of_memory)
    with pytest.raises(MemoryError):
        loaded.partial_fit(X, y)
    monkeypatch.undo()
    scratch = {"_params_checked", "_calls_under_way"}  # (the call's own bookkeeping)
    assert len(copies) == 3 and vars(loaded).keys() - scratch == before.keys() - scratch
    for name, value in before.items():
        assert vars(loaded)[name] is value, name
    assert loaded._optimizer.param_groups[0]["params"][0] is loaded._theta


@pytest.mark.parametrize(("name", "options", "task"), _PERSISTED)
def test_estimator_unpickled_from_read_only_buffers_trains_on(name, options, task):
    # pickle 5's out-of-band buffers (as shared memory passes them) came back read-only, and
    # partial_fit raised "output array is read-only"
    model, X, y = _fitted(name, options, task)
    buffers = []
    data = pickle.dumps(model, protocol=5, buffer_callback=buffers.append)
    twin = pickle.loads(data, buffers=[memoryview(b.raw()).toreadonly() for b in buffers])
    twin.partial_fit(X, y)
    model.partial_fit(X, y)
    np.testing.assert_array_equal(twin.coef_, model.coef_)


@pytest.mark.parametrize(("name", "options", "task"),
                         [*_PERSISTED, ("SGDClassifier", dict(penalty="elasticnet"), "binary")])
def test_a_saved_estimator_holds_each_array_once(name, options, task, tmp_path):
    """A pickle, a deep copy or a joblib file of a fitted model holds the arrays it trains on once:
    the weights (as scikit-learn's pickle), their average and the optimizer's state.  It held the
    weights 3 times (6 in a joblib file: each of the optimizer's references, coef_, and the epochs'
    scratch gradient)."""
    joblib = pytest.importorskip("joblib")
    X, y = _data(np.random.default_rng(5), n=40, d=20_000, task=task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = getattr(fastgd, name)(random_state=0, max_iter=2, **options).fit(X, y)
    state = [a for arrays in model._optimizer._state.values() for a in arrays if a is not None]
    needed = sum(a.nbytes for a in [model._theta, *state]) + (model._average_theta.nbytes if options.get("average") else 0)
    joblib.dump(model, tmp_path / "model.joblib")
    sizes = {"pickle": len(pickle.dumps(model)), "joblib": (tmp_path / "model.joblib").stat().st_size}
    tracemalloc.start()
    twin = copy.deepcopy(model)
    sizes["deepcopy"] = tracemalloc.get_traced_memory()[1] - model._theta.nbytes  # the copy's new scratch
    tracemalloc.stop()
    assert all(needed <= size < needed + 100_000 for size in sizes.values()), (needed, sizes)
    for loaded in (twin, pickle.loads(pickle.dumps(model)), joblib.load(tmp_path / "model.joblib")):
        assert loaded._optimizer.param_groups[0]["params"][0] is loaded._theta
        np.testing.assert_array_equal(loaded.coef_, model.coef_)
        loaded.partial_fit(X, y)
        assert not np.array_equal(loaded.coef_, model.coef_)


@pytest.mark.parametrize(("name", "options", "task"), _PERSISTED)
def test_a_copy_of_a_model_whose_weights_were_set_to_none_starts_anew(name, options, task, tmp_path):
    """coef_ and intercept_ set to None: the next partial_fit starts from zeros, as scikit-learn's;
    a pickled or deep-copied model went on from its old weights (None took for what it shows)."""
    joblib = pytest.importorskip("joblib")
    model, X, y = _fitted(name, options, task)
    model.coef_ = model.intercept_ = None
    joblib.dump(model, tmp_path / "model.joblib")
    twins = [copy.deepcopy(model), pickle.loads(pickle.dumps(model)), joblib.load(tmp_path / "model.joblib")]
    for each in (model, *twins):
        each.partial_fit(X[:5], y[:5])
    for twin in twins:
        np.testing.assert_array_equal(twin.coef_, model.coef_)
        np.testing.assert_array_equal(twin.intercept_, model.intercept_)


def test_estimators_sharing_a_random_state_share_it_when_pickled_together():
    # (a deep copy of its state in __getstate__ gave each its own: the pair trained otherwise)
    X, y = _data(np.random.default_rng(12), n=60)
    shared = np.random.RandomState(0)
    pair = [fastgd.SGDRegressor(random_state=shared, max_iter=3, tol=None) for _ in range(2)]
    for copied in (pickle.loads(pickle.dumps(pair)), copy.deepcopy(pair)):
        assert copied[0].random_state is copied[1].random_state
    twins = pickle.loads(pickle.dumps(pair))
    for models in (pair, twins):
        for model in models:
            model.fit(X, y)
    for model, twin in zip(pair, twins):
        np.testing.assert_array_equal(model.coef_, twin.coef_)


def test_pickling_waits_for_a_fit_under_way(monkeypatch):
    """A pickle taken while another thread's fit runs waits for the fit's end, as a prediction
    does: it held the weights of the middle of the call."""
    X, y = _data(np.random.default_rng(6), n=200)
    model = fastgd.LinearRegression(max_iter=5, tol=None, random_state=0).fit(X, y)
    fit, go, ran = _gated_fit(monkeypatch, model, X, y)
    threading.Timer(0.3, go.set).start()  # the epochs start once the pickle below is asked for
    twin = pickle.loads(pickle.dumps(model))
    assert ran.is_set()  # the pickle waited for the epochs
    fit.join()
    np.testing.assert_array_equal(twin.coef_, model.coef_)
    assert twin.n_iter_ == model.n_iter_ == 6


@pytest.mark.parametrize("name", ["LinearRegression", "LogisticRegression", "SGDRegressor", "SGDClassifier"])
@pytest.mark.parametrize("betas", [(0.9,), (float("nan"), 0.5), [0.9, 0.99, 0.999]])
def test_betas_are_checked_whatever_the_optimizer(name, betas):
    # every other option is checked whatever the optimizer; a malformed betas passed silently
    # unless the optimizer used it
    X, y = _data(np.random.default_rng(7), task="binary")
    with pytest.raises((TypeError, ValueError), match=r"betas"):
        getattr(fastgd, name)(optimizer="sgd", betas=betas).fit(X, y)


# the estimator parameters that set an optimizer's option, each with the optimizer it sets, the
# option's name there, and whether None (the optimizer's default) is taken
OPTIONS_SET = [("momentum", "momentum", "momentum", False), ("dampening", "momentum", "dampening", False),
               ("betas", "adam", "betas", True), ("eps", "adam", "eps", True), ("amsgrad", "adam", "amsgrad", False),
               ("weight_decay", "adamw", "weight_decay", False), ("rho", "rmsprop", "alpha", False),
               ("centered", "rmsprop", "centered", False), ("lr_decay", "adagrad", "lr_decay", False),
               ("initial_accumulator_value", "adagrad", "initial_accumulator_value", False)]
OPTION_VALUES = [0.0, 0.5, np.float32(0.25), 1, 1.0, 2.0, -1.0, float("inf"), float("nan"), 10**400, True,
                 np.bool_(False), "0.5", (0.9, 0.99), [0.5, 0.0], (0.9, 1.0), (0.9,), (True, 0.5)]


@pytest.mark.parametrize("name", ["LogisticRegression", "SGDRegressor"])
@pytest.mark.parametrize("parameter, optimizer, option, none_taken", OPTIONS_SET)
def test_optimizer_options_are_checked_by_the_optimizers_rules(name, parameter, optimizer, option, none_taken):
    """An estimator takes an optimizer option's value where that optimizer takes it (the
    optimizer is the oracle; rho, RMSprop's alpha, in [0, 1) alone, as the README says), and
    refuses the others in scikit-learn's words whatever optimizer it runs (momentum=True was
    taken under plain SGD, and refused in other words once the optimizer used it)."""
    X, y = _data(np.random.default_rng(9), task="binary" if name == "LogisticRegression" else "linear")
    cls, _, fixed = fastgd.linear_model.OPTIMIZERS[optimizer]
    for value in OPTION_VALUES + [None]:
        try:
            cls([np.zeros(3)], **{**fixed, option: value, **({"momentum": 0.5} if option == "dampening" else {})})
            taken = value is not None or none_taken
        except (TypeError, ValueError):
            taken = value is None and none_taken
        if parameter == "rho" and taken:
            taken = value < 1
        for runs in (optimizer, "sgd"):
            model = getattr(fastgd, name)(optimizer=runs, max_iter=1, tol=None, **{parameter: value})
            if taken:
                model.fit(X, y)
            else:
                with pytest.raises(ValueError, match=rf"^The '{parameter}' parameter of {name} must be .* Got "):
                    model.fit(X, y)


@pytest.mark.parametrize("name", ["LinearRegression", "SGDRegressor"])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_the_rules_between_options_are_the_optimizers_too(name, momentum):
    # optimizer="nesterov" with momentum=0 passed the estimator's checks, then failed in the
    # optimizer's constructor with a plain ValueError (the README says each option is refused as
    # scikit-learn refuses a parameter); torch's SGD is the oracle of which momenta Nesterov takes
    torch = pytest.importorskip("torch")
    from sklearn.utils._param_validation import InvalidParameterError
    X, y = _data(np.random.default_rng(3), task="linear")
    model = getattr(fastgd, name)(optimizer="nesterov", momentum=momentum, max_iter=2, tol=None)
    try:
        torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=0.1, momentum=momentum, nesterov=True)
    except ValueError:
        with pytest.raises(InvalidParameterError, match="do not suit optimizer='nesterov': Nesterov momentum requires "
                                                         "a momentum > 0"):
            model.fit(X, y)
        assert not hasattr(model, "coef_")
    else:
        model.fit(X, y)


@pytest.mark.parametrize("name", ["LinearRegression", "LogisticRegression"])
def test_scikit_learns_parameter_validation_check_passes(name):
    # scikit-learn's own test of its estimators' constraints (not among check_estimator's): it first
    # asks that every parameter be listed, which the optimizers' options were not once their
    # ranges were left to the optimizers' rules
    from sklearn.utils.estimator_checks import check_param_validation
    check_param_validation(name, getattr(fastgd, name)())


def test_a_float32_objective_beyond_float32_says_so():
    # the divergence error advised a smaller learning rate only, where y beyond what a float32
    # loss holds ends the fit whatever the rate (the float64 fit trains)
    X, y = _data(np.random.default_rng(8))
    y = y * 1e20
    with pytest.raises(ValueError, match="In float32, a batch's loss beyond float32's range ends the fit too"):
        fastgd.LinearRegression(learning_rate=1e-30, max_iter=2, tol=None).fit(X.astype(np.float32), y)
    fastgd.LinearRegression(learning_rate=1e-30, max_iter=2, tol=None).fit(X, y)


@pytest.mark.parametrize("name", ["LinearRegression", "SGDRegressor"])
def test_a_copy_after_set_params_average_shows_the_same_model(name):
    # coef_ shows the average the model was trained with; a pickle or deep copy showed the one
    # the parameter asked for next (set_params(average=False): the weights trained, not their average)
    X, y = _data(np.random.default_rng(9), n=80)
    model = getattr(fastgd, name)(average=True, max_iter=5, tol=None, random_state=0).fit(X, y)
    model.set_params(average=False)
    for twin in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        np.testing.assert_array_equal(twin.coef_, model.coef_)
        np.testing.assert_array_equal(twin.predict(X), model.predict(X))


def _gated_fit(monkeypatch, model, X, y):
    """A thread running model.partial_fit(X, y) whose epochs wait for an event; returns, once its
    first epoch is about to start, the thread, that event (go) and one set when the epochs have
    run (ran).  The caller sets go when it has done what it tests, or from a threading.Timer
    when what it tests waits for the fit: no sleep races the other thread."""
    started, go, ran, run_epochs = threading.Event(), threading.Event(), threading.Event(), type(model)._run_epochs

    def gated(self, *args, **kwargs):
        started.set()
        assert go.wait(60), "the test never let the epochs start"
        try:
            return run_epochs(self, *args, **kwargs)
        finally:
            ran.set()

    monkeypatch.setattr(type(model), "_run_epochs", gated)
    fit = threading.Thread(target=model.partial_fit, args=(X, y))
    fit.start()
    started.wait()
    return fit, go, ran


def test_set_params_waits_for_a_fit_under_way(monkeypatch):
    """The fit goes on with the parameters it began with (each epoch read them anew: a mix, or
    the running fit failing on a bad value), and a fit that fails no longer undoes them."""
    X, y = _data(np.random.default_rng(10), n=200)
    model, twin = (fastgd.LinearRegression(alpha=1e-4, max_iter=5, tol=None, random_state=0).fit(X, y)
                   for _ in range(2))
    fit, go, ran = _gated_fit(monkeypatch, model, X, y)
    threading.Timer(0.3, go.set).start()  # the epochs start once set_params below is called
    model.set_params(alpha=0.5)
    assert ran.is_set()  # set_params waited for the epochs (not fit.is_alive(): the thread may not have ended yet)
    fit.join()
    twin.partial_fit(X, y)
    np.testing.assert_array_equal(model.coef_, twin.coef_)
    assert model.alpha == 0.5


def test_a_fit_during_sparsify_is_refused_naming_it(monkeypatch):
    # a partial_fit refused while another thread's sparsify ran said that a fit was running
    X, y = _data(np.random.default_rng(11), n=200)
    model = fastgd.SGDRegressor(max_iter=5, tol=None, random_state=0).fit(X, y)
    inside, go = threading.Event(), threading.Event()
    get_config = fastgd.linear_model.get_config

    def held():  # (sparsify reads the configuration within the call)
        inside.set()
        go.wait(30)
        return get_config()

    monkeypatch.setattr(fastgd.linear_model, "get_config", held)
    call = threading.Thread(target=model.sparsify)
    call.start()
    try:
        assert inside.wait(30)
        for refused in ("partial_fit", "fit"):
            with pytest.raises(RuntimeError, match=rf"^{refused} refused: a sparsify of this SGDRegressor is running "
                                                   r"already \(in another thread\)"):
                getattr(model, refused)(X, y)
    finally:
        go.set()
        call.join()
    assert sparse.issparse(model.coef_) and model.t_ == fastgd.SGDRegressor(max_iter=5, tol=None,
                                                                             random_state=0).fit(X, y).t_


def test_sparsify_is_never_halfway_through_a_fit(monkeypatch):
    # sparsify copied the weights of the middle of a partial_fit and made them the model
    X, y = _data(np.random.default_rng(11), n=200)
    model = fastgd.SGDRegressor(max_iter=5, tol=None, random_state=0).fit(X, y)
    fit, go, _ = _gated_fit(monkeypatch, model, X, y)
    try:
        for call in (model.sparsify, model.densify):
            with pytest.raises(RuntimeError, match="is running already"):
                call()
    finally:
        go.set()
    fit.join()
    assert not sparse.issparse(model.coef_)


def test_y_made_non_finite_during_a_fit_is_named(monkeypatch):
    # checked up front, y read in place: a NaN another thread wrote into it during the fit got the
    # divergence error ("Try a smaller learning_rate")
    X, y = _data(np.random.default_rng(13), n=200)
    model = fastgd.LinearRegression(max_iter=5, tol=None, random_state=0).fit(X, y)
    before = model.coef_.copy()
    fit, go, _ = _gated_fit(monkeypatch, model, X, y)
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    y[7] = np.nan
    go.set()
    fit.join()
    assert len(errors) == 1 and "y holds NaN or inf now, which it did not when this call began" in str(errors[0])
    np.testing.assert_array_equal(model.coef_, before)


@pytest.mark.parametrize("name", ["LinearRegression", "LogisticRegression", "SGDRegressor", "SGDClassifier"])
def test_a_sparse_y_is_refused_as_scikit_learn_refuses_it(name):
    # LinearRegression (several outputs) let a CSR y through validate_data, then failed on it with
    # NumPy's "setting an array element with a sequence."
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    model = getattr(fastgd, name)(max_iter=2, tol=None).fit(X, y)
    coef = model.coef_.copy()
    for call in (model.fit, model.partial_fit):
        with pytest.raises(TypeError, match=r"Sparse data was passed for y, but dense data is required. Use "
                                            r"'.toarray\(\)'"):
            call(X, sparse.csr_matrix(y.reshape(-1, 1).astype(float)))
    np.testing.assert_array_equal(model.coef_, coef)


@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
def test_a_full_batch_curve_is_the_objective_before_each_step(penalty):
    # each term at the weights it was computed at: the loss was the weights' before the epoch's
    # step, the penalty theirs after it, and their sum above both points' objective (11.85 where
    # the objective went from 10.07 to 6.10); the oracle computes the objective here
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4))
    y = X @ np.array([1.0, 2.0, 3.0, 4.0]) + 1
    options = dict(batch_size=None, tol=None, learning_rate=0.1, alpha=0.5, penalty=penalty, l1_ratio=0.5,
                   shuffle=False)
    l2, l1 = {"l2": (0.5, 0), "l1": (0, 0.5), "elasticnet": (0.25, 0.25)}[penalty]

    def objective(coef, intercept):
        return 0.5 * np.mean((X @ coef + intercept - y) ** 2) + 0.5 * l2 * coef @ coef + l1 * np.abs(coef).sum()

    curve = fastgd.LinearRegression(max_iter=4, **options).fit(X, y).loss_curve_
    before = [objective(np.zeros(4), 0.0)] + [
        objective(m.coef_, float(m.intercept_)) for m in (fastgd.LinearRegression(max_iter=i, **options).fit(X, y)
                                                      for i in (1, 2, 3))]
    np.testing.assert_allclose(curve, before, rtol=1e-12)


def test_early_stopping_scores_the_held_out_rows_as_score_does_with_class_weight():
    # the held-out rows were scored with the class weights folded into their weights (0.86 where
    # score gives 0.51); score, scikit-learn's SGD early stopping and SGDClassifier's weigh them
    # by sample_weight alone
    from sklearn.model_selection import StratifiedShuffleSplit
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + rng.normal(size=400) > 0.8).astype(int)
    weights = rng.uniform(0.5, 2.0, size=400)
    _, held = next(StratifiedShuffleSplit(test_size=0.25, random_state=0).split(np.zeros((400, 1)), y))
    model = fastgd.LogisticRegression(early_stopping=True, class_weight={0: 1.0, 1: 10.0}, max_iter=3, tol=None,
                                      random_state=0, validation_fraction=0.25).fit(X, y, sample_weight=weights)
    assert model.validation_scores_[-1] == pytest.approx(model.score(X[held], y[held], sample_weight=weights[held]),
                                                         rel=1e-12)


def _divergence_problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = X @ np.array([1.0, -2, 3, 0.5, 0]) + 1 + 0.3 * rng.standard_normal(300)
    return X, y


def _fit_warnings(fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fit()
    return model, [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize("case", ["warm refit", "average", "one epoch", "last step", "early stopping", "per sample"])
def test_a_returned_model_worse_than_none_warns(case):
    """The fit's curve missed each of these, all ending with a model whose objective (the oracle:
    computed here from predict) is far over twice zero weights' and above where the fit started,
    and reported nothing, or only that max_iter ran out: a warm refit blown up from the optimum
    (the zero-weights rule was for fits from zero), an average far from its converged iterate (the
    curve is the iterate's), a one-epoch fit (the curve's point is before its step), Lion's
    two-cycle ending on its bad phase, an early-stopped fit past its best, per-sample RMSprop."""
    X, y = _divergence_problem()
    at_zero = np.mean(y ** 2) / 2
    LR = fastgd.LinearRegression
    started = at_zero
    if case == "warm refit":
        model = LR(optimizer="adam", learning_rate=0.01, batch_size=8, max_iter=200, random_state=0,
                   warm_start=True).fit(X, y)
        started = 0.5 * np.mean((model.predict(X) - y) ** 2)
        fit = lambda: model.set_params(learning_rate=100).fit(X, y)  # noqa: E731
    else:
        fit = {"average": lambda: LR(optimizer="rmsprop", learning_rate=10, batch_size=None, average=True).fit(X, y),
               "one epoch": lambda: LR(learning_rate=10, batch_size=None, max_iter=1, tol=None).fit(X, y),
               "last step": lambda: LR(optimizer="lion", learning_rate=10, batch_size=None, max_iter=31,
                                       tol=None).fit(X, y),
               "early stopping": lambda: LR(optimizer="adam", learning_rate=3.16, batch_size=8, early_stopping=True,
                                            random_state=0).fit(X, y),
               "per sample": lambda: LR(optimizer="rmsprop", learning_rate=1, batch_size=1, tol=None,
                                        random_state=0).fit(X, y)}[case]
    model, said = _fit_warnings(fit)
    objective = 0.5 * np.mean((model.predict(X) - y) ** 2)
    assert objective > 2 * at_zero and objective > started
    assert len(said) == 1 and "it diverged" in said[0], said


@pytest.mark.parametrize("classes", [0, 2, 4])
def test_zero_weights_objective_is_the_loss_at_score_zero(classes):
    """The divergence rule's yardstick (see _WORSE): zero weights' objective over the rows trained
    on, weighted as the objective weighs them; the oracles are scikit-learn's log loss of even odds
    and the mean of y^2 / 2 (each estimator's closed form of its _row_losses at score 0)."""
    from sklearn.metrics import log_loss
    rng = np.random.default_rng(0)
    X, weights, rows = rng.standard_normal((200, 3)), rng.random(200) + 0.5, np.arange(0, 200, 3)
    if classes:
        y = np.arange(200) % classes
        model = fastgd.LogisticRegression(max_iter=1, tol=None).fit(X, y)
        even = np.full((rows.size, classes), 1 / classes)
        expected = log_loss(y[rows], even, sample_weight=weights[rows], labels=np.arange(classes))
    else:
        y = X @ np.array([1.0, -2, 3]) + 1
        model = fastgd.LinearRegression(max_iter=1, tol=None).fit(X, y)
        expected = np.average(y[rows] ** 2, weights=weights[rows]) / 2
    targets, weighted = model._as_trained(y, weights, None, False, X.dtype)
    assert model._objective_at_zero(targets, weighted, rows) == pytest.approx(expected, rel=1e-12)


def test_a_returned_model_near_the_optimum_does_not_warn():
    # the same problem fitted well, from zero weights and warm from the optimum: no warning
    X, y = _divergence_problem()
    for fit in (lambda: fastgd.LinearRegression(random_state=0).fit(X, y),
                lambda: fastgd.LinearRegression(optimizer="adam", learning_rate=0.01, batch_size=8, max_iter=50,
                                                random_state=0, average=True).fit(X, y),
                lambda: fastgd.LogisticRegression(random_state=0, max_iter=300).fit(X, (y > 1).astype(int))):
        model, said = _fit_warnings(fit)
        assert not any("diverged" in message for message in said), said


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_regressions_intercept_has_scikit_learns_dimensions(fit_intercept):
    # of shape (1,) for a 1-D y, where scikit-learn's LinearRegression gives a float: f"{m.intercept_:.2f}"
    # raised TypeError
    from sklearn.linear_model import LinearRegression as SkLinearRegression
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    full_batch = dict(batch_size=None, learning_rate=0.3, max_iter=2000, tol=None)
    for y in (X @ [1.0, 2.0, 3.0] + 0.5, np.column_stack([X @ [1.0, 2.0, 3.0], X[:, 0]])):
        ours = fastgd.LinearRegression(fit_intercept=fit_intercept, **full_batch).fit(X, y)
        theirs = SkLinearRegression(fit_intercept=fit_intercept).fit(X, y)
        assert ours.coef_.shape == theirs.coef_.shape
        # (fit_intercept=False with a 2-D y: scikit-learn's is 0.0, fastgd's a zero a target, as its README says)
        assert np.ndim(ours.intercept_) == (y.ndim - 1 if fit_intercept or y.ndim == 1 else 1)
        assert fit_intercept is False and y.ndim == 2 or np.ndim(ours.intercept_) == np.ndim(theirs.intercept_)
        np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-3)
        assert f"{np.ravel(ours.intercept_)[0]:.2f}" == f"{np.ravel(theirs.intercept_)[0]:.2f}"
    ours = fastgd.LinearRegression(**full_batch).fit(X, X @ [1.0, 2.0, 3.0] + 0.5)
    assert f"{ours.intercept_:.2f}" == "0.50" and float(ours.intercept_) == pytest.approx(0.5, abs=1e-3)
    before = ours.predict(X[:2])
    ours.intercept_ += 1.0  # a view of the weights: the model moves with it, as every intercept_ here
    np.testing.assert_allclose(ours.predict(X[:2]), before + 1.0)
