"""fastgd.SGDClassifier and SGDRegressor against scikit-learn's, their oracle.

With batch_size=1 and optimizer="sgd" they run scikit-learn's algorithm, shuffles included, so
their coef_ and intercept_ must be scikit-learn's to 1e-6 relative after 5 epochs: for every
loss, penalty, learning-rate schedule, averaging and class weights (most tests take the rows in
their order, shuffle=False; test_shuffled_* shuffle them).  The settings keep each
problem well conditioned (scikit-learn's "optimal" rate starts near 1/sqrt(sqrt(alpha)), which
makes the default alpha chaotic on unscaled data: there rounding alone moves the weights).
"""
import copy
import functools
import pickle
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from scipy import sparse

sklearn = pytest.importorskip("sklearn")

from sklearn import linear_model as sk  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastgd  # noqa: E402
from fastgd.linear_model import OPTIMIZERS  # noqa: E402

CLASSIFIER_LOSSES = ("hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron", "squared_error",
                     "huber", "epsilon_insensitive", "squared_epsilon_insensitive")
REGRESSOR_LOSSES = ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive")
PENALTIES = ("l2", "l1", "elasticnet", None)
SCHEDULES = ("constant", "optimal", "invscaling", "adaptive")
TOLERANCE = {np.float64: 1e-6, np.float32: 1e-3}


def _expected_failures(estimator):
    # as scikit-learn lists for its SGD: a weight of 2 is not a row seen twice once rows are shuffled
    # and stepped one (or a batch) at a time, and the drop-ins weigh steps as scikit-learn does
    reason = "per-sample steps on shuffled rows: a weight of 2 is not a repeated row (as scikit-learn's SGD)"
    return {"check_sample_weight_equivalence_on_dense_data": reason,
            "check_sample_weight_equivalence_on_sparse_data": reason}


@parametrize_with_checks([fastgd.SGDClassifier(max_iter=20), fastgd.SGDRegressor(max_iter=20),
                          fastgd.SGDClassifier(loss="log_loss", batch_size=8, optimizer="adam", max_iter=20),
                          fastgd.SGDRegressor(penalty="elasticnet", average=True, max_iter=20)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("make", [fastgd.SGDClassifier, fastgd.LogisticRegression])
def test_balanced_class_weight_check_of_linear_classifiers(make):
    # scikit-learn's check_estimator runs it on its LinearClassifierMixin subclasses only, which
    # fastgd's classifiers are not: run here
    from sklearn.utils.estimator_checks import check_class_weight_balanced_linear_classifier

    check_class_weight_balanced_linear_classifier(make.__name__, make())


def _sparse(X, kind):
    """X as it is ("dense"), or with about 60% of its entries zeroed and stored as CSR: int32
    indices ("csr"), or int64 ("csr64"); scikit-learn fits both kinds as fastgd does."""
    if kind == "dense":
        return X
    X = X.copy()
    X[np.random.default_rng(1).random(X.shape) < 0.6] = 0
    X = sparse.csr_matrix(X)
    if kind == "csr64":
        X.indices, X.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    return X


def _classification(n_classes, dtype, kind="dense"):
    X, y = make_classification(200, 6, n_informative=4, n_classes=n_classes, random_state=n_classes)
    return _sparse((X / 2).astype(dtype), kind), y


def _regression(dtype, kind="dense"):
    X, y = make_regression(200, 6, noise=1.0, random_state=0)
    return _sparse((X / 2).astype(dtype), kind), (y / y.std()).astype(dtype)


def _assert_same_fit(ours, theirs, dtype):
    tolerance = TOLERANCE[dtype]
    for name in ("coef_", "intercept_"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert a.shape == b.shape, name
        scale = max(np.abs(b).max(), 1e-3)
        np.testing.assert_allclose(a, b, rtol=0, atol=tolerance * scale, err_msg=name)
    assert ours.n_iter_ == theirs.n_iter_


def _both(ours, theirs, X, y, **fit):
    if sparse.issparse(X) and X.indices.dtype == np.int64:  # scikit-learn's SGD takes int32 indices only
        X32 = X.copy()
        X32.indices, X32.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)
    else:
        X32 = X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ours.fit(X, y, **fit), theirs.fit(X32, y, **fit)


SAME = dict(max_iter=5, tol=None, shuffle=False, random_state=0)


KINDS = ("dense", "csr", "csr64")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("loss", CLASSIFIER_LOSSES)
def test_classifier_losses_match_scikit_learn(loss, n_classes, dtype, kind):
    X, y = _classification(n_classes, dtype, kind)
    options = dict(SAME, loss=loss, alpha=1e-2, learning_rate="constant", eta0=0.01)
    _assert_same_fit(*_both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y), dtype)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss", REGRESSOR_LOSSES)
def test_regressor_losses_match_scikit_learn(loss, dtype, kind):
    X, y = _regression(dtype, kind)
    options = dict(SAME, loss=loss, epsilon=0.3)
    _assert_same_fit(*_both(fastgd.SGDRegressor(**options), sk.SGDRegressor(**options), X, y), dtype)


SHUFFLED_RUNS = [dict(tol=None), dict(tol=1e-3, max_iter=50),
                 dict(tol=1e-3, max_iter=50, early_stopping=True, validation_fraction=0.2, n_iter_no_change=2),
                 dict(tol=None, average=True, penalty="elasticnet")]


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("run", SHUFFLED_RUNS)
@pytest.mark.parametrize("n_classes", [1, 2, 3])  # (1: the regressor)
def test_shuffled_fits_match_scikit_learn(n_classes, run, kind):
    """shuffle=True: the rows in scikit-learn's order each epoch (its permutation, drawn from its
    seed, of all the rows, those held out skipped; each class of one vs all in an order of its own)."""
    if run["tol"] is not None and not run.get("early_stopping") and not OBJECTIVE_IN_SGD:
        pytest.skip("scikit-learn < 1.8 stops on the loss alone")
    if n_classes == 1:
        X, y = _regression(np.float64, kind)
        make, theirs, options = fastgd.SGDRegressor, sk.SGDRegressor, dict(eta0=0.02)
    else:
        X, y = _classification(n_classes, np.float64, kind)
        make, theirs, options = fastgd.SGDClassifier, sk.SGDClassifier, dict(learning_rate="constant", eta0=0.01)
    options.update(dict(max_iter=5, shuffle=True, random_state=7, alpha=1e-3), **run)
    _assert_same_fit(*_both(make(**options), theirs(**options), X, y), np.float64)


@pytest.mark.parametrize("options", [dict(batch_size=8), dict(optimizer="adam")])
def test_mini_batch_and_adam_partial_fits_shuffle_anew_at_every_call(options):
    """Only per-sample SGD follows scikit-learn's partial_fit, whose int random_state shuffles every
    call alike; the others shuffle from a generator seeded at the first call, as LinearRegression."""
    X, y = _regression(np.float64)
    model = fastgd.SGDRegressor(random_state=0, **options)
    probes = []
    for _ in range(2):
        model.partial_fit(X, y)
        probe = np.arange(len(y), dtype=np.intp)
        model._shuffle(probe)  # (the next order its shuffles give: the same if the call had reseeded them)
        probes.append(probe.tolist())
    assert probes[0] != probes[1]


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("options", [dict(), dict(average=True, penalty="elasticnet"),
                                     dict(loss="log_loss", learning_rate="invscaling", eta0=0.1)])
def test_classes_trained_apart_or_together_give_the_same_fit(monkeypatch, options, kind):
    """Per-sample SGD trains the classes of one vs all a class at a time where their weights pass
    _APART_BYTES (a performance choice): the same weights, steps and objectives as one pass."""
    X, y = _classification(3, np.float64, kind)
    fits = []
    for size in (0, 1 << 40):
        monkeypatch.setattr(fastgd.SGDClassifier, "_APART_BYTES", size)
        model = fastgd.SGDClassifier(tol=None, shuffle=False, max_iter=3, random_state=0, **options).fit(X, y)
        model.partial_fit(X[:50], y[:50])
        fits.append(model)
    _assert_same_fit(*fits, np.float64)
    assert fits[0].t_ == fits[1].t_ and fits[0].loss_curve_ == pytest.approx(fits[1].loss_curve_, rel=1e-12)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_optimal_rates_warn_with_optimizers_that_step_by_the_rate(optimizer):
    # "optimal" starts at alpha^(-1/4) (10 here), sized for plain SGD's steps, which scale with the
    # gradient; Adam's and the others' step each weight by about the rate, and went far silently
    X, y = _classification(2, np.float64)
    make = functools.partial(fastgd.SGDClassifier, optimizer=optimizer, batch_size=4, max_iter=2, tol=None)
    if optimizer in ("sgd", "momentum", "nesterov"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            make().fit(X, y)
        return
    with pytest.warns(UserWarning, match=r"first rate is 10 at alpha=0.0001; optimizer='%s'" % optimizer) as record:
        make().partial_fit(X, y, classes=[0, 1])
    assert record[0].filename == __file__  # pointing at the call
    assert "'optimal' (the default)" in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(learning_rate="constant", eta0=1e-3).fit(X, y)
    # SGDRegressor's default is "invscaling" (scikit-learn's): "optimal" is the user's choice there
    with pytest.warns(UserWarning, match=r"learning_rate='optimal' is plain SGD's schedule"):
        fastgd.SGDRegressor(optimizer=optimizer, learning_rate="optimal", max_iter=2, tol=None).fit(X, y)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_optimal_rates_of_a_huge_alpha_fail_as_scikit_learns(optimizer):
    # alpha beyond about 1e21 loses t0 in rounding, so the first "optimal" rate 1 / (alpha t0) is
    # 1 / 0: scikit-learn's fit fails with a ValueError (its overflow check); the warning beside
    # Adam computed the rate in Python floats and raised ZeroDivisionError
    X, y = _classification(2, np.float64)
    with pytest.raises(ValueError, match="Floating-point under-/overflow"):
        sk.SGDClassifier(alpha=1e22, max_iter=2, tol=None).fit(X, y)
    model = fastgd.SGDClassifier(alpha=1e22, optimizer=optimizer, batch_size=4, max_iter=2, tol=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ("optimal" with Adam: see the test above)
        with pytest.raises(ValueError, match=r"non-finite in epoch 1 .* Try a smaller learning_rate or alpha"):
            model.fit(X, y)
    assert not hasattr(model, "coef_")


@pytest.mark.parametrize("cls", ["SGDClassifier", "SGDRegressor", "LogisticRegression"])
def test_assigned_weights_of_another_shape_are_refused_as_partial_fit_refuses_them(cls):
    # predict reshaped a coef_ assigned transposed (or flat, or (2, 6) for 3 x 4) into (k, -1), and
    # broadcast a longer intercept_ whose extra scores it then dropped: numbers from the wrong
    # weights, where scikit-learn's product fails and partial_fit refuses them by name
    X, y = _classification(3, np.float64)
    if cls == "SGDRegressor":
        y = X[:, 0].copy()
    model = getattr(fastgd, cls)(max_iter=2, tol=None).fit(X, y)
    coef, intercept = model.coef_.copy(), model.intercept_.copy()
    k, d = (1, coef.size) if coef.ndim == 1 else coef.shape
    wrong = [("coef_", coef.ravel()[:-1]), ("intercept_", np.zeros(k + 2))]
    if k > 1:  # (one output's coef_ may have any shape of its d values, as scikit-learn's partial_fit takes)
        wrong += [("coef_", coef.T.copy()), ("coef_", coef.ravel()), ("coef_", sparse.csr_matrix(coef.T)),
                  ("coef_", coef.reshape(2, -1))]
    for name, value in wrong:
        setattr(model, name, value)
        for call in (model.predict, model.decision_function if cls != "SGDRegressor" else model.score):
            with pytest.raises(ValueError, match=rf"{name} has shape \(\d+(, \d+)?,?\); expected "):
                call(X) if call != model.score else call(X, y)
        with pytest.raises(ValueError, match=rf"{name} has shape"):
            model.partial_fit(X, y)  # (refused there before too)
        model.coef_, model.intercept_ = coef, intercept
    # what both take: real numbers as objects, a sparse coef_, a scalar intercept_ of one output
    model.coef_ = coef.astype(object)
    expected = X @ coef.T + intercept
    scores = model.decision_function(X) if cls != "SGDRegressor" else model.predict(X)
    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    model.coef_, predicted = coef, model.predict(X)
    model.coef_ = sparse.csr_matrix(coef.reshape(k, d))
    np.testing.assert_array_equal(model.predict(X), predicted)
    if k == 1:
        model.coef_, model.intercept_ = coef.reshape(-1, 1), intercept[0]
        np.testing.assert_array_equal(model.predict(X), predicted)


def test_a_subclass_without_learning_rate_in_its_signature_fits():
    # the warning above looks up the class's default learning_rate, which such a subclass lacks
    class Adam(fastgd.SGDClassifier):
        def __init__(self, alpha=1e-4):
            super().__init__(alpha=alpha, optimizer="adam", batch_size=4, max_iter=2, tol=None)

    X, y = _classification(2, np.float64)
    with pytest.warns(UserWarning, match=r"learning_rate='optimal' is plain SGD's schedule"):
        assert Adam().fit(X, y).coef_.shape == (1, X.shape[1])


def test_shuffled_multiclass_fits_of_other_optimizers_train_classes_together():
    """Only per-sample SGD, scikit-learn's algorithm, trains each class apart to shuffle it as
    scikit-learn does: mini-batch Adam keeps one pass an epoch, and its state for a partial_fit."""
    X, y = _classification(3, np.float64)
    adam = fastgd.SGDClassifier(optimizer="adam", batch_size=4, tol=None, max_iter=2, random_state=0).fit(X, y)
    assert adam._optimizer.state_dict()["state"][0]["step"] == 2 * 50  # 2 epochs of 200 rows in batches of 4


@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize("seeding", ["int", "RandomState"])
@pytest.mark.parametrize("n_classes", [1, 2, 3])
def test_shuffled_partial_fits_match_scikit_learn(n_classes, seeding, average):
    """Each partial_fit draws its seeds from random_state, as scikit-learn's: with an int, every call
    takes the rows in one order; with a RandomState, in a new one; each class of one vs all in an
    order of its own, the average going on (a classifier's without an intercept: README, and
    test_partial_fit_matches_scikit_learn)."""
    X, y = (_regression if n_classes == 1 else functools.partial(_classification, n_classes))(np.float64)
    make, theirs = ((fastgd.SGDRegressor, sk.SGDRegressor) if n_classes == 1
                    else (fastgd.SGDClassifier, sk.SGDClassifier))
    models = [cls(shuffle=True, random_state=7 if seeding == "int" else np.random.RandomState(7), eta0=0.01,
                  learning_rate="constant", average=average, fit_intercept=n_classes == 1 or not average)
              for cls in (make, theirs)]
    fit = {} if n_classes == 1 else {"classes": np.unique(y)}
    for start in (0, 100, 0):
        for model in models:
            model.partial_fit(X[start:start + 100], y[start:start + 100], **fit)
    _assert_same_fit(*models, np.float64)
    if seeding == "RandomState":
        assert models[0].random_state.get_state()[1].tolist() == models[1].random_state.get_state()[1].tolist()


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("penalty", PENALTIES)
def test_penalties_and_schedules_match_scikit_learn(penalty, schedule, kind):
    # on sparse data scikit-learn applies L1 to a row's nonzeros only, and steps the intercept by
    # a hundredth of its gradient: fastgd's drop-ins too
    X, y = _classification(3, np.float64, kind)
    options = dict(SAME, penalty=penalty, learning_rate=schedule, alpha=1e-2, l1_ratio=0.3, eta0=0.05,
                   power_t=0.3)
    _assert_same_fit(*_both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y), np.float64)
    X, y = _regression(np.float64, kind)
    options["alpha"] = 1.0 if schedule == "optimal" else 1e-2  # a first rate of 1 with alpha = 1
    _assert_same_fit(*_both(fastgd.SGDRegressor(**options), sk.SGDRegressor(**options), X, y), np.float64)


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("average", [True, 150, 10_000])
@pytest.mark.parametrize("penalty, schedule", [("l2", "constant"), ("l1", "constant"), ("elasticnet", "optimal"),
                                               ("elasticnet", "invscaling")])
def test_averaging_matches_scikit_learn(penalty, schedule, average, dtype, kind):
    # from the first step, from a later one, and not yet started after 5 epochs (coef_ unaveraged);
    # with an L1 penalty, scikit-learn's lazy average takes in later truncations too (and fastgd's)
    X, y = _regression(dtype, kind)
    options = dict(SAME, average=average, learning_rate=schedule, eta0=0.02, penalty=penalty,
                   alpha=1.0 if schedule == "optimal" else 1e-3)  # a first rate of 1 with alpha = 1
    _assert_same_fit(*_both(fastgd.SGDRegressor(**options), sk.SGDRegressor(**options), X, y), dtype)
    options["alpha"] = 1e-3
    X, y = _classification(3, dtype, kind)
    _assert_same_fit(*_both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y), dtype)


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 1: 0.5, 2: 1.5}])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_class_and_sample_weights_match_scikit_learn(class_weight, n_classes, kind):
    X, y = _classification(n_classes, np.float64, kind)
    if n_classes == 2 and isinstance(class_weight, dict):
        class_weight = {0: 3.0, 1: 0.5}
    weights = np.random.default_rng(0).uniform(0.2, 3.0, size=y.size)
    options = dict(SAME, class_weight=class_weight, learning_rate="constant", eta0=0.02, alpha=1e-3)
    _assert_same_fit(*_both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y,
                            sample_weight=weights), np.float64)


def _four_classes(kind):
    X, y = make_classification(300, 8, n_informative=5, n_classes=4, n_clusters_per_class=1, random_state=4)
    return _sparse(X / 2, kind), y


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("loss, early_stopping", [("hinge", False), ("hinge", True), ("log_loss", False),
                                                  ("modified_huber", False)])
def test_classes_stop_apart_as_scikit_learn(loss, early_stopping, schedule, kind):
    # with tol set, scikit-learn fits each class of one vs all apart: each stops, and with
    # "adaptive" lowers its rate, on its own; n_iter_ is the most epochs a class ran.  Without a
    # penalty the two stopping rules are the same (scikit-learn's averages the penalty over an
    # epoch's steps); "optimal" with modified_huber is chaotic here (rounding grows 100x an epoch)
    if loss == "modified_huber" and schedule == "optimal":
        pytest.skip("chaotic: rounding alone moves the weights")
    X, y = _four_classes(kind)
    options = dict(loss=loss, learning_rate=schedule, eta0=0.05, penalty=None, alpha=1e-3, shuffle=False,
                   random_state=0, early_stopping=early_stopping, max_iter=300)
    ours, theirs = _both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y)
    _assert_same_fit(ours, theirs, np.float64)
    assert ours.t_ == theirs.t_
    assert len(ours.loss_curve_) == ours.n_iter_
    assert (len(ours.validation_scores_) == ours.n_iter_) if early_stopping else ours.validation_scores_ is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        epochs = {sk.SGDClassifier(**options).fit(X, y == label).n_iter_ for label in range(4)}
    assert len(epochs) > 1  # the classes stop at different epochs: a joint stop could not match


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("average", [True, 10, 5000])
def test_classes_apart_average_and_warm_start_as_scikit_learn(average, dtype):
    # each class averages its own steps; a warm start goes on from every class's weights
    X, y = _four_classes("dense")
    X = X.astype(dtype)
    options = dict(learning_rate="invscaling", eta0=0.05, penalty=None, shuffle=False, random_state=0,
                   max_iter=300, average=average, warm_start=True)
    ours, theirs = _both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y)
    _assert_same_fit(ours, theirs, dtype)
    ours, theirs = _both(ours, theirs, X, y)
    _assert_same_fit(ours, theirs, dtype)
    assert ours.t_ == theirs.t_


def test_classes_apart_warn_once_and_a_failed_fit_changes_nothing():
    X, y = _four_classes("dense")
    model = fastgd.SGDClassifier(max_iter=3, shuffle=False, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_iter=3") as caught:
        model.fit(X, y)
    assert len([w for w in caught if issubclass(w.category, ConvergenceWarning)]) == 1
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
    before = (model.coef_.copy(), model.intercept_.copy(), model.t_, list(model.loss_curve_), set(vars(model)))
    with pytest.raises(ValueError, match="non-finite"):  # the last class's fit diverges, the others trained
        model.set_params(class_weight={3: 1e300}).fit(X, y)
    after = (model.coef_, model.intercept_, model.t_, model.loss_curve_, set(vars(model)))
    for was, now in zip(before, after):
        assert np.array_equal(was, now) if isinstance(was, np.ndarray) else was == now


@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_classes_apart_on_threads_give_the_same_fit(kind):
    # n_jobs classes at a time, each on a thread of its own: the same bits as one at a time; a
    # class that diverges on its thread fails the fit, which changes nothing
    X, y = _four_classes(kind)
    options = dict(loss="log_loss", penalty="elasticnet", average=10, early_stopping=True, random_state=0)
    alone, threaded = fastgd.SGDClassifier(**options), fastgd.SGDClassifier(n_jobs=2, **options)
    alone.fit(X, y)
    threaded.fit(X, y)
    for name in ("coef_", "intercept_", "n_iter_", "t_", "loss_curve_", "validation_scores_"):
        assert np.array_equal(getattr(alone, name), getattr(threaded, name)), name
    before = (threaded.coef_.copy(), threaded.t_)
    with pytest.raises(ValueError, match="non-finite"):
        threaded.set_params(class_weight={0: 1e300}, early_stopping=False).fit(X, y)
    assert np.array_equal(threaded.coef_, before[0]) and threaded.t_ == before[1]


@pytest.mark.parametrize("assigned", [False, True])
@pytest.mark.parametrize("average", [False, 3])
@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_a_failed_partial_fit_of_classes_apart_changes_nothing(n_jobs, kind, average, assigned):
    # shuffled per-sample SGD trains the classes apart in every call, on copies of their rows that
    # the call writes back once all have succeeded: the last class diverges after the others
    # trained, the call fails and leaves the weights (and all else) as they were, and the next
    # call gives what a model that never saw the failed one gives.  assigned: coef_ is the user's
    # own array, which the call copies into the weights first
    X, y = _four_classes(kind)
    classes = np.unique(y)
    model, twin = (fastgd.SGDClassifier(n_jobs=n_jobs, average=average, random_state=0) for _ in range(2))
    for m in (model, twin):
        m.partial_fit(X, y, classes=classes)
        if assigned:
            m.coef_ = m.coef_ * 0.5
    model.set_params(class_weight={classes[-1]: 1e300})
    scratch = {"_grad", "_params_checked"}  # (and the parameters last checked, which a call checks first)
    # every attribute (the very object) and the contents of its arrays and lists
    state = {name: (value, value.copy() if isinstance(value, (np.ndarray, list)) else None)
             for name, value in vars(model).items() if name not in scratch}
    optimizer = model._optimizer.state_dict()
    with pytest.raises(ValueError, match="non-finite"):
        model.partial_fit(X, y)
    assert vars(model).keys() - scratch == state.keys()
    for name, (value, contents) in state.items():
        assert vars(model)[name] is value, name
        if contents is not None:
            assert np.array_equal(value, contents, equal_nan=True), name
    assert repr(model._optimizer.state_dict()) == repr(optimizer)
    model.set_params(class_weight=None)
    for m in (model, twin):
        m.partial_fit(X, y)
    for name in ("coef_", "intercept_", "t_", "n_iter_"):
        assert np.array_equal(getattr(model, name), getattr(twin, name)), name


@pytest.mark.parametrize("average", [False, True])
def test_a_partial_fit_of_classes_apart_interrupted_after_training_changes_nothing(average):
    # Ctrl-C after every class trained (here: raised where the call shows the new weights, its
    # last step before it writes them back): nothing changed, and the next call is a twin's.  The
    # rows were written back before that step, which left the new weights in a model otherwise put back
    X, y = _four_classes("csr")
    classes = np.unique(y)

    class Interrupted(fastgd.SGDClassifier):
        interrupt = False

        def _publish(self, theta=None):
            if self.interrupt and self._n_outputs > 1:  # (the one-vs-all model, not a class's own)
                raise KeyboardInterrupt
            super()._publish(theta)

    model, twin = (Interrupted(average=average, random_state=0) for _ in range(2))
    for m in (model, twin):
        m.partial_fit(X, y, classes=classes)
    before = (model._theta.copy(), None if model._average_theta is None else model._average_theta.copy(),
              model.t_, list(model.loss_curve_))
    model.interrupt = True
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(X, y)
    after = (model._theta, model._average_theta, model.t_, model.loss_curve_)
    for was, now in zip(before, after):
        assert np.array_equal(was, now) if isinstance(was, np.ndarray) else was == now
    model.interrupt = False
    for m in (model, twin):
        m.partial_fit(X, y)
    assert np.array_equal(model.coef_, twin.coef_) and np.array_equal(model.intercept_, twin.intercept_)


def _interrupted_once(owner, name, before=True):
    """Patch owner.name (with monkeypatch's setattr) to raise KeyboardInterrupt at its first call,
    before (or after) doing its work: a Ctrl-C landing there; later calls run as they are."""
    original, calls = getattr(owner, name), []

    def patched(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1 and before:
            raise KeyboardInterrupt
        result = original(*args, **kwargs)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return result
    return patched


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_ctrl_c_as_classes_trained_apart_are_written_back_ends_the_call_whole(monkeypatch):
    # the write-back is the call's last step: a Ctrl-C as it began left the new call's n_iter_ and
    # t_ over the old weights (a fit's: zeros); it is written whole, then the interrupt raised
    X, y = _four_classes("csr")
    model, twin = (fastgd.SGDClassifier(max_iter=5, random_state=0) for _ in range(2))
    twin.fit(X, y)
    import fastgd.linear_model as lm
    for before in (True, False):
        monkeypatch.setattr(lm, "_write_rows", _interrupted_once(lm, "_write_rows", before))
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, y)
        monkeypatch.undo()
        for name in ("coef_", "intercept_", "t_", "n_iter_", "loss_curve_"):
            assert np.array_equal(getattr(model, name), getattr(twin, name)), name


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_ctrl_c_while_a_failed_call_is_put_back_puts_it_back_whole(monkeypatch):
    # a second Ctrl-C as the model was put back left the optimizer's state and the shuffling
    # generator as the failed call had left them
    X, y = _regression(np.float64)
    model = fastgd.LinearRegression(optimizer="adam", max_iter=3, random_state=0).fit(X, y)
    twin = copy.deepcopy(model)
    monkeypatch.setattr(fastgd.LinearRegression, "_epoch", _interrupted_once(fastgd.LinearRegression, "_epoch", False))
    monkeypatch.setattr(fastgd.optim.Optimizer, "load_state_dict",
                        _interrupted_once(fastgd.optim.Optimizer, "load_state_dict"))
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(X, y)
    monkeypatch.undo()
    assert repr(model._optimizer.state_dict()) == repr(twin._optimizer.state_dict())
    assert model._shuffle_bits.state == twin._shuffle_bits.state
    for m in (model, twin):
        m.partial_fit(X, y)
    for name in ("coef_", "intercept_", "n_iter_", "loss_curve_"):
        assert np.array_equal(getattr(model, name), getattr(twin, name)), name


@pytest.mark.parametrize("n_classes", [2, 4])
def test_convergence_warning_whenever_every_epoch_ran_as_scikit_learn(n_classes):
    # scikit-learn warns when n_iter_ reaches max_iter, even if that epoch met the stopping rule
    # (without a penalty, which the stopping rule of scikit-learn < 1.8 leaves out)
    X, y = _four_classes("dense") if n_classes == 4 else _classification(2, np.float64)
    for max_iter in range(1, 40):
        options = dict(max_iter=max_iter, shuffle=False, random_state=0, learning_rate="constant", eta0=0.01,
                       penalty=None)
        with warnings.catch_warnings(record=True) as theirs:
            warnings.simplefilter("always")
            fitted = sk.SGDClassifier(**options).fit(X, y)
        with warnings.catch_warnings(record=True) as ours:
            warnings.simplefilter("always")
            fastgd.SGDClassifier(**options).fit(X, y)
        count = [len([w for w in caught if issubclass(w.category, ConvergenceWarning)]) for caught in (ours, theirs)]
        assert count[0] == count[1], max_iter
        if fitted.n_iter_ < max_iter:
            break
    assert fitted.n_iter_ < max_iter  # the loop reached a fit that stopped before max_iter


def test_a_class_that_fails_on_its_thread_stops_the_others(monkeypatch):
    # the fit fails once every class's thread has returned, the others stopped early: none goes
    # on training (and warning) after the call
    X, y = _four_classes("dense")
    running, epochs = [0], []
    lock = threading.Lock()
    run_epochs, epoch = fastgd.SGDClassifier._run_epochs, fastgd.SGDClassifier._epoch

    def counted_run(self, *args, **kwargs):
        with lock:
            running[0] += 1
        try:
            return run_epochs(self, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    def counted_epoch(self, *args, **kwargs):
        epochs.append(self._expanded_class_weight[1])
        return epoch(self, *args, **kwargs)

    monkeypatch.setattr(fastgd.SGDClassifier, "_run_epochs", counted_run)
    monkeypatch.setattr(fastgd.SGDClassifier, "_epoch", counted_epoch)
    # (the other classes' epochs, about 70 us each, count while the failing class's thread waits
    # for a core: a limit of 100,000 epochs a class leaves 10,000 in all for that wait, ~0.7 s)
    model = fastgd.SGDClassifier(class_weight={0: 1e300}, max_iter=100_000, tol=1e-300, n_iter_no_change=100_000,
                                 n_jobs=2)
    with pytest.raises(ValueError, match="non-finite"):
        model.fit(X, y)
    assert running[0] == 0
    assert len(epochs) < 10_000  # the other classes stopped long before their 100,000 epochs


def test_pickling_leaves_the_model_as_it_was():
    model = fastgd.SGDClassifier(max_iter=2, tol=None).fit(*_classification(2, np.float64))
    names = set(vars(model))
    pickle.dumps(model)
    assert set(vars(model)) == names  # __getstate__ once wrote into the model's own __dict__


@pytest.mark.parametrize("average", [False, 50])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_partial_fit_matches_scikit_learn(average, n_classes):
    # Without an intercept when averaging: scikit-learn's partial_fit, once averaging has started,
    # goes on from the intercept it kept when it started (its _standard_intercept is not updated
    # after that), where fastgd goes on from the intercept it trained.
    X, y = _classification(n_classes, np.float64)
    options = dict(shuffle=False, random_state=0, learning_rate="invscaling", eta0=0.05, alpha=1e-3,
                   penalty="elasticnet", average=average, fit_intercept=not average)
    ours, theirs = fastgd.SGDClassifier(**options), sk.SGDClassifier(**options)
    for start in range(0, 200, 50):
        ours.partial_fit(X[start:start + 50], y[start:start + 50], classes=np.arange(n_classes))
        theirs.partial_fit(X[start:start + 50], y[start:start + 50], classes=np.arange(n_classes))
    _assert_same_fit(ours, theirs, np.float64)
    assert ours.t_ == theirs.t_


@pytest.mark.parametrize("options", [dict(batch_size=1, average=True, penalty="l1", alpha=1e-2),
                                     dict(batch_size=1, penalty="elasticnet", learning_rate="pa1", loss="hinge",
                                          eta0=0.5),
                                     dict(batch_size=8, average=True, penalty="l1", alpha=1e-2)])
@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_momentum_of_zero_is_plain_sgd(kind, options):
    # plain SGD by its values, not its name: the compiled epoch already stepped optimizer="momentum",
    # momentum=0 as plain SGD, but the Python layer (by the name) gave it neither scikit-learn's lazy
    # average (coef_ 1e-2 apart on weights of 4e-2) nor its shuffles, and refused pa1
    X, y = _classification(2, np.float64, kind)
    options = {**SAME, "shuffle": True, "learning_rate": "invscaling", "eta0": 0.05, **options}
    plain = fastgd.SGDClassifier(**options).fit(X, y)
    zero = fastgd.SGDClassifier(**options, optimizer="momentum", momentum=0.0, dampening=0.5).fit(X, y)
    np.testing.assert_array_equal(zero.coef_, plain.coef_)
    np.testing.assert_array_equal(zero.intercept_, plain.intercept_)


def test_momentum_set_by_another_thread_during_a_fit_leaves_the_call_as_it_began():
    # whether the epoch steps plain SGD was read from the attributes at every epoch: momentum = 0
    # written between two epochs (as another thread may, without set_params, which waits) stepped
    # the rest as plain SGD while the call's optimizer held 0.9
    X, y = _regression(np.float64)
    options = dict(SAME, optimizer="momentum", momentum=0.9, learning_rate="constant", eta0=0.01)
    expected = fastgd.SGDRegressor(**options).fit(X, y)
    model = fastgd.SGDRegressor(**options)
    epoch, calls = model._epoch, []

    def racing(*args):
        calls.append(1)
        if len(calls) == 2:
            model.momentum = 0.0
        return epoch(*args)

    model._epoch = racing
    model.fit(X, y)
    np.testing.assert_array_equal(model.coef_, expected.coef_)


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("average", [True, 100])
@pytest.mark.parametrize("task", [2, 3, "regression"])
def test_a_fit_then_a_partial_fit_with_average_is_the_longer_fit(task, average, kind):
    # the README's difference: with the average shown, scikit-learn's partial_fit goes on from a
    # stale intercept, fastgd's from the one it trained, so that the next epoch is the fit's next
    X, y = _regression(np.float64, kind) if task == "regression" else _classification(task, np.float64, kind)
    make = fastgd.SGDRegressor if task == "regression" else fastgd.SGDClassifier
    options = dict(SAME, learning_rate="invscaling", eta0=0.05, alpha=1e-3, average=average)
    shorter = make(**dict(options, max_iter=3)).fit(X, y)
    shorter.partial_fit(X, y)
    longer = make(**dict(options, max_iter=4)).fit(X, y)
    np.testing.assert_allclose(shorter.coef_, longer.coef_, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(shorter.intercept_, longer.intercept_, rtol=1e-12, atol=1e-15)
    assert shorter.t_ == longer.t_


@pytest.mark.parametrize("task", [2, 3, "regression"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_partial_fit_after_average_is_set_off_goes_on_from_the_average_shown_as_scikit_learn(task, shuffle):
    # coef_ showed the average: set off, the next call took coef_ for the weights trained (its
    # views were made by the estimator) and went on from those instead
    X, y = _regression(np.float64) if task == "regression" else _classification(task, np.float64)
    options = dict(shuffle=shuffle, random_state=0, learning_rate="constant", eta0=0.05, average=True)
    pair = ((fastgd.SGDRegressor(**options), sk.SGDRegressor(**options)) if task == "regression"
            else (fastgd.SGDClassifier(**options), sk.SGDClassifier(**options)))
    extra = {} if task == "regression" else {"classes": np.arange(task)}
    for model in pair:
        model.partial_fit(X[:100], y[:100], **extra)
        model.set_params(average=False)
        model.partial_fit(X[100:150], y[100:150])
    _assert_same_fit(*pair, np.float64)


@pytest.mark.parametrize("average", [True, 30])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_regressor_warm_refit_with_average_goes_on_from_the_weights_trained(average, fit_intercept):
    # scikit-learn's SGDRegressor (not its classifier) refits from the weights it trained, not
    # from their average that coef_ shows; the plain iterate is that of a fit without average.
    # (Its average then also carries the old one, divided by the step count; fastgd's starts anew)
    X, y = _regression(np.float64)
    options = dict(SAME, fit_intercept=fit_intercept, learning_rate="constant", eta0=0.01, max_iter=2)
    ours = fastgd.SGDRegressor(warm_start=True, average=average, **options).fit(X, y).fit(X, y)
    trained = sk.SGDRegressor(**options).fit(X, y)
    theirs = sk.SGDRegressor(average=average, **options).fit(X, y, coef_init=trained.coef_,
                                                             intercept_init=trained.intercept_)
    _assert_same_fit(ours, theirs, np.float64)
    with pytest.raises(ValueError, match=r"coef_ \(kept by warm_start\) has shape"):  # as scikit-learn refuses it
        ours.fit(X[:, :3], y)


def test_warm_start_and_initial_weights_match_scikit_learn():
    X, y = _regression(np.float64)
    options = dict(SAME, learning_rate="constant", eta0=0.02, warm_start=True)
    coef, intercept = np.linspace(-1, 1, X.shape[1]), np.array([0.3])
    ours, theirs = _both(fastgd.SGDRegressor(**options), sk.SGDRegressor(**options), X, y,
                         coef_init=coef, intercept_init=intercept)
    _assert_same_fit(ours, theirs, np.float64)
    _assert_same_fit(*_both(ours, theirs, X, y), np.float64)  # warm: from the fitted weights


@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_warm_classifier_refit_given_initial_weights_starts_from_them_as_scikit_learns(n_classes):
    # (scikit-learn's regressor ignores them on a warm refit, its classifier does not: the README
    # said both ignored them)
    X, y = _classification(n_classes, np.float64)
    options = dict(SAME, learning_rate="constant", eta0=0.02, warm_start=True)
    k = 1 if n_classes == 2 else n_classes
    coef, intercept = np.linspace(-1, 1, k * X.shape[1]).reshape(k, -1), np.linspace(0.3, 0.5, k)
    ours, theirs = _both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y)
    _assert_same_fit(*_both(ours, theirs, X, y, coef_init=coef, intercept_init=intercept), np.float64)


@pytest.mark.parametrize("loss", ["log_loss", "modified_huber"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_probabilities_match_scikit_learn(loss, n_classes):
    X, y = _classification(n_classes, np.float64)
    options = dict(SAME, loss=loss, learning_rate="constant", eta0=0.05, alpha=1e-3)
    ours, theirs = _both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6, atol=1e-9)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(ours.predict_log_proba(X), theirs.predict_log_proba(X), rtol=1e-6)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("intercepts", [[-710.0, -720.0, -730.0], [-30.0, -700.0, -720.0], [37.0], [-800.0]])
def test_probabilities_of_scores_whose_sigmoid_underflows_are_scikit_learns(intercepts):
    # they were exp(-logaddexp(0, -s)), which keeps subnormal values, where scikit-learn's expit
    # rounds them to 0 (a row of such scores then uniform, 1 - expit(37) 0): up to 0.67 apart
    n_classes = max(2, len(intercepts))
    X, y = _classification(n_classes, np.float64)
    options = dict(SAME, loss="log_loss", learning_rate="constant", eta0=0.05, alpha=1e-3)
    ours, theirs = _both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y)
    for model in (ours, theirs):
        model.coef_, model.intercept_ = np.zeros_like(theirs.coef_), np.array(intercepts)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = theirs.predict_proba(X[:3])
    # (scikit-learn 1.6, the oldest pyproject.toml takes, divides a row of zeros by 0: NaN; its
    # later versions, and fastgd, make the row uniform)
    expected = np.where(np.isnan(expected).all(axis=1, keepdims=True), 1 / expected.shape[1], expected)
    np.testing.assert_array_equal(ours.predict_proba(X[:3]), expected)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(ours.predict_log_proba(X[:3]), np.log(expected))


def test_no_probabilities_for_other_losses():
    model = fastgd.SGDClassifier(max_iter=5, tol=None).fit(*_classification(2, np.float64))
    assert not hasattr(model, "predict_proba")
    with pytest.raises(AttributeError, match="predict_proba"):
        model.predict_proba


def test_sparsify_keeps_predictions():
    X, y = _classification(3, np.float64)
    model = fastgd.SGDClassifier(penalty="l1", alpha=0.05, max_iter=5, tol=None, random_state=0).fit(X, y)
    dense = model.decision_function(X)
    model.sparsify()
    assert sparse.issparse(model.coef_)
    np.testing.assert_allclose(model.decision_function(X), dense)
    np.testing.assert_allclose(model.densify().coef_, np.asarray(model.coef_))


@pytest.mark.parametrize("options", [{}, {"average": True}, {"optimizer": "adam", "batch_size": 8,
                                                                "learning_rate": "constant", "eta0": 1e-3}])
def test_a_sparsified_model_pickles_its_weights_as_their_nonzeros(options):
    # sparsify's purpose in scikit-learn is a model that takes less room: the dense weights fastgd
    # trains from were pickled whole (21 MB against scikit-learn's 0.3 MB for a text model)
    X, y = make_classification(600, 3000, n_informative=10, n_classes=3, random_state=0)
    X = sparse.csr_matrix(np.where(np.abs(X) > 1.5, X, 0))
    model = fastgd.SGDClassifier(penalty="l1", alpha=0.05, max_iter=3, tol=None, random_state=0, **options).fit(X, y)
    dense = len(pickle.dumps(model))
    model.sparsify()
    loaded = pickle.loads(pickle.dumps(model))
    if not options:  # 9% nonzero (an average of the iterates, and Adam's weights and moments, are not sparse)
        assert 10 * np.count_nonzero(model._theta) < model._theta.size
        assert len(pickle.dumps(model)) < dense / 3
    copied = copy.deepcopy(model)
    for other in (loaded, copied):
        np.testing.assert_array_equal(other.coef_.toarray(), model.coef_.toarray())
        np.testing.assert_array_equal(other._theta, model._theta)
    for one in (model, loaded, copied):  # training goes on alike (the optimizer's state kept)
        one.partial_fit(X, y)
    for other in (loaded, copied):
        np.testing.assert_array_equal(other.coef_, model.coef_)
        np.testing.assert_array_equal(other.intercept_, model.intercept_)


@pytest.mark.parametrize("cls", [fastgd.SGDRegressor, fastgd.LinearRegression])
@pytest.mark.parametrize("attribute", ["coef_", "intercept_"])
def test_weights_assigned_as_sparse_matrices_go_on_as_dense_ones(cls, attribute):
    # a sparse intercept_ failed with NumPy's "setting an array element with a sequence"
    X, y = _regression(np.float64)
    models = [cls(max_iter=2, tol=None, random_state=0).partial_fit(X, y) for _ in range(2)]
    value = np.atleast_2d(getattr(models[0], attribute)) + 0.5
    setattr(models[0], attribute, sparse.csr_matrix(value))
    setattr(models[1], attribute, value.reshape(np.shape(getattr(models[1], attribute))))
    for model in models:
        model.partial_fit(X, y)
    np.testing.assert_array_equal(models[0].coef_, models[1].coef_)
    np.testing.assert_array_equal(models[0].intercept_, models[1].intercept_)
    for model in models:  # and a warm fit starts from them
        setattr(model, attribute, sparse.csr_matrix(np.atleast_2d(getattr(model, attribute))) if model is models[0]
                else getattr(model, attribute))
        model.set_params(warm_start=True).fit(X, y)
    np.testing.assert_array_equal(models[0].coef_, models[1].coef_)
    np.testing.assert_array_equal(models[0].intercept_, models[1].intercept_)


def test_sparsify_twice_and_densify_unfitted_as_scikit_learn():
    X, y = _classification(3, np.float64)
    for cls in (fastgd.SGDClassifier, sk.SGDClassifier):  # scikit-learn's sparsify may be called again
        model = cls(max_iter=5, tol=None, random_state=0).fit(X, y).sparsify()
        np.testing.assert_array_equal(model.sparsify().coef_.toarray(), model.densify().coef_)
        with pytest.raises(NotFittedError):
            cls().densify()


@pytest.mark.parametrize("task, edit", [("multiclass", "in place"), ("multiclass", "assigned"),
                                        ("regression", "in place")])  # (a regressor's 1-D CSR takes no "*")
def test_densify_keeps_edits_of_the_sparse_coef_as_scikit_learn(task, edit):
    # densify published the weights trained again, dropping what was done to the sparse coef_
    if task == "regression":
        X, y = _regression(np.float64)
        ours, theirs = _both(fastgd.SGDRegressor(**SAME), sk.SGDRegressor(**SAME), X, y)
    else:
        X, y = _classification(3, np.float64)
        ours, theirs = _both(fastgd.SGDClassifier(**SAME), sk.SGDClassifier(**SAME), X, y)
    for model in (ours, theirs):
        model.sparsify()
        if edit == "in place":
            model.coef_.data[:] = 0.5
        else:
            model.coef_ = model.coef_ * 2
        model.densify()
    np.testing.assert_allclose(ours.coef_.reshape(theirs.coef_.shape), theirs.coef_, rtol=1e-12)
    if task == "regression":  # before 1.9 scikit-learn densifies a regressor's coef_ as (1, d), which its
        theirs.coef_ = theirs.coef_.ravel()  # own partial_fit then refuses
    for model in (ours, theirs):
        model.partial_fit(X[:20], y[:20])
    _assert_same_fit(ours, theirs, np.float64)


@pytest.mark.parametrize("average", [True, 10])
def test_a_copy_shows_an_assigned_coef_with_average_set_as_scikit_learn(average):
    # with average set, a pickle (or deepcopy) published the average again over an assigned coef_
    X, y = _regression(np.float64)
    options = dict(SAME, average=average)
    ours, theirs = _both(fastgd.SGDRegressor(**options), sk.SGDRegressor(**options), X, y)
    for model in (ours, theirs):
        model.coef_, model.intercept_ = np.linspace(-1, 1, X.shape[1]), np.array([0.5])
    for copied in (pickle.loads(pickle.dumps(ours)), copy.deepcopy(ours)):
        np.testing.assert_array_equal(copied.coef_, np.linspace(-1, 1, X.shape[1]))
        np.testing.assert_array_equal(copied.predict(X), ours.predict(X))
        copied.partial_fit(X[:20], y[:20])  # goes on from the weights trained (coef_ shows their average)
    theirs_copy = pickle.loads(pickle.dumps(theirs))
    np.testing.assert_array_equal(theirs_copy.coef_, np.linspace(-1, 1, X.shape[1]))
    theirs_copy.partial_fit(X[:20], y[:20])
    _assert_same_fit(copied, theirs_copy, np.float64)


@pytest.mark.parametrize("interface", ["spmatrix", "sparray"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_sparsify_gives_scikit_learns_class_and_shape(task, interface):
    import sklearn
    if "sparse_interface" not in sklearn.get_config() and interface == "sparray":
        pytest.skip("this scikit-learn has no sparse_interface setting")
    if task == "regression":
        X, y = make_regression(n_samples=60, n_features=5, random_state=0)
        pair = fastgd.SGDRegressor, sk.SGDRegressor
    else:
        X, y = _classification(2 if task == "binary" else 3, np.float64)
        pair = fastgd.SGDClassifier, sk.SGDClassifier
    config = {"sparse_interface": interface} if "sparse_interface" in sklearn.get_config() else {}
    ours, theirs = (cls(max_iter=5, tol=None, random_state=0).fit(X, y) for cls in pair)
    coef, predictions = ours.coef_.copy(), ours.predict(X)
    with sklearn.config_context(**config):
        ours.sparsify()
        theirs.sparsify()
    assert type(ours.coef_) is type(theirs.coef_)
    assert ours.coef_.shape == theirs.coef_.shape
    np.testing.assert_array_equal(ours.coef_.toarray().reshape(coef.shape), coef)  # (1, d) before 1.9
    np.testing.assert_array_equal(ours.predict(X), predictions)
    np.testing.assert_array_equal(ours.densify().coef_, coef)


def test_mini_batches_and_adaptive_optimizers_fit():
    # beyond scikit-learn: a mini-batch Adam fit reaches about per-sample SGD's accuracy
    X, y = _classification(3, np.float64)
    sgd = fastgd.SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0).fit(X, y)
    adam = fastgd.SGDClassifier(loss="log_loss", alpha=1e-3, batch_size=16, optimizer="adam",
                                learning_rate="constant", eta0=0.01, random_state=0).fit(X, y)
    assert adam.score(X, y) >= sgd.score(X, y) - 0.05


def test_bad_parameters_are_refused_and_change_nothing():
    X, y = _classification(2, np.float64)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        fastgd.SGDClassifier(learning_rate="optimal", alpha=0).fit(X, y)
    for model in (fastgd.SGDRegressor(loss="hinge"), sk.SGDRegressor(loss="hinge")):  # the same error, as there
        with pytest.raises(InvalidParameterError, match="The 'loss' parameter of SGDRegressor must be a str among"):
            model.fit(X, y)
    with pytest.raises(ValueError, match="learning_rate"):
        fastgd.SGDClassifier(learning_rate="pa3").fit(X, y)
    model = fastgd.SGDClassifier(class_weight="balanced")
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match="balanced"):
        model.partial_fit(X, y, classes=[0, 1])
    assert pickle.dumps(model) == before


def test_balanced_weights_in_partial_fit_after_fit_as_scikit_learn():
    # refused on a first call (above); after a fit, the call's own labels set the balance
    X, y = _classification(3, np.float64)
    options = dict(SAME, class_weight="balanced", learning_rate="constant", eta0=0.05)
    ours, theirs = _both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y)
    ours.partial_fit(X[:50], y[:50])
    theirs.partial_fit(X[:50], y[:50])
    _assert_same_fit(ours, theirs, np.float64)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adagrad"])
@pytest.mark.parametrize("batch_size", [1, 16])
def test_sparse_and_dense_data_give_the_same_fit(optimizer, batch_size):
    # fastgd's own estimators (intercept stepped as on dense data, L1 on every weight aside):
    # plain SGD keeps its weights scaled and touches a row's nonzeros only, another optimizer
    # steps on the whole (mostly zero) gradient; both are the dense fit to rounding
    X, y = _regression(np.float64, "csr")
    options = dict(optimizer=optimizer, batch_size=batch_size, max_iter=5, tol=None, random_state=0, alpha=0.01)
    on_sparse = fastgd.LinearRegression(**options).fit(X, y)
    on_dense = fastgd.LinearRegression(**options).fit(X.toarray(), y)
    np.testing.assert_allclose(on_sparse.coef_, on_dense.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(on_sparse.intercept_, on_dense.intercept_, rtol=1e-10, atol=1e-12)
    X, y = _classification(3, np.float64, "csr")
    on_sparse = fastgd.LogisticRegression(**options).fit(X, y)
    on_dense = fastgd.LogisticRegression(**options).fit(X.toarray(), y)
    np.testing.assert_allclose(on_sparse.coef_, on_dense.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(on_sparse.predict_proba(X), on_dense.predict_proba(X.toarray()), rtol=1e-10)


@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_an_l2_decay_past_zero_zeroes_the_weights_as_scikit_learn(kind):
    # eta0 * alpha = 2: the weights are set to zero before each row's step, not flipped
    X, y = _regression(np.float64, kind)
    options = dict(SAME, learning_rate="constant", eta0=2.0, alpha=1.0)
    _assert_same_fit(*_both(fastgd.SGDRegressor(**options), sk.SGDRegressor(**options), X, y), np.float64)


@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_own_estimators_average_truncated_iterates_on_sparse_data_too(penalty):
    # LinearRegression and LogisticRegression average the iterates after their truncation; on
    # rows without zeros the L1 penalty's lazy catching up is the dense one's
    rng = np.random.default_rng(0)
    X = rng.uniform(0.5, 1.5, (40, 5))
    options = dict(penalty=penalty, alpha=0.05, average=True, batch_size=1, shuffle=False, max_iter=3, tol=None,
                   learning_rate=0.05)
    y = X @ rng.normal(size=5)
    for model in (fastgd.LinearRegression, fastgd.LogisticRegression):
        target = y if model is fastgd.LinearRegression else (y > np.median(y)).astype(int)
        on_dense, on_sparse = model(**options).fit(X, target), model(**options).fit(sparse.csr_matrix(X), target)
        np.testing.assert_allclose(on_sparse.coef_, on_dense.coef_, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(on_sparse.intercept_, on_dense.intercept_, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fmt", ["csc", "coo"])
def test_other_sparse_formats_are_converted(fmt):
    X, y = _classification(2, np.float64, "csr")
    options = dict(SAME, learning_rate="constant", eta0=0.05)
    model = fastgd.SGDClassifier(**options).fit(X.asformat(fmt), y)
    _assert_same_fit(model, sk.SGDClassifier(**options).fit(X, y), np.float64)
    np.testing.assert_array_equal(model.predict(X.asformat(fmt)), model.predict(X.toarray()))


@pytest.mark.parametrize("estimator", ["SGDClassifier", "LogisticRegression", "LinearRegression"])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "lil"])
def test_out_of_range_sparse_indices_are_refused_before_scipy_reads_them(fmt, estimator):
    # SciPy's products and its conversions to CSR read (and write) through the indices unchecked:
    # predict on such a matrix returned garbage or crashed, and fit on a CSC or COO one corrupted
    # the heap; each raises ValueError now, the model unchanged (LIL: its rows are lists a user
    # may edit, checked once converted)
    X, y = _classification(2, np.float64)
    model = getattr(fastgd, estimator)(max_iter=2, tol=None, random_state=0).fit(X, y)
    untouched = pickle.loads(pickle.dumps(model))
    column = 0 if fmt == "csc" else 1  # the index array counts rows in CSC
    for bad in (X.shape[column] + 3, -1, 2**30):
        broken = sparse.csr_matrix(X).asformat(fmt)
        (broken.rows[2] if fmt == "lil" else broken.col if fmt == "coo" else broken.indices)[1] = bad
        for method in ("predict", "score", "fit", "partial_fit"):
            if hasattr(model, method):
                with pytest.raises(ValueError, match="out of range"):
                    getattr(model, method)(*((broken,) if method == "predict" else (broken, y)))
    for name in ("coef_", "intercept_", "n_iter_"):
        np.testing.assert_array_equal(getattr(model, name), getattr(untouched, name))
    if fmt not in ("coo", "lil"):
        broken = sparse.csr_matrix(X).asformat(fmt)
        broken.indptr[5], broken.indptr[6] = broken.indptr[6], broken.indptr[5]  # falling
        with pytest.raises(ValueError, match="out of range"):
            model.predict(broken)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_weights_of_out_of_range_indices_are_refused_before_scipy_reads_them(fmt):
    # X's indices were checked, the weights' not: SciPy's toarray of a sparse coef_init or
    # intercept_init, or of a sparsified coef_ whose indices were edited in place, read and wrote
    # out of bounds (a segfault) in fit, predict, decision_function, partial_fit and densify
    X, y = _classification(2, np.float64)
    model = fastgd.SGDClassifier(max_iter=2, tol=None, random_state=0)

    def broken(dense):
        matrix = sparse.csr_matrix(np.atleast_2d(dense)).asformat(fmt)
        (matrix.col if fmt == "coo" else matrix.indices)[-1] = 10**9
        return matrix

    weights = np.arange(1.0, X.shape[1] + 1)
    for keyword, value in (("coef_init", broken(weights)), ("intercept_init", broken([1.0]))):
        with pytest.raises(ValueError, match=rf"^{keyword}'s .* out of range"):
            clone(model).fit(X, y, **{keyword: value})
    fitted = clone(model).fit(X, y).sparsify()
    untouched = pickle.loads(pickle.dumps(fitted))
    fitted.coef_ = broken(untouched.coef_.toarray())
    for call in (lambda: fitted.predict(X), lambda: fitted.decision_function(X), lambda: fitted.partial_fit(X, y),
                 lambda: fitted.densify(), lambda: fitted.set_params(warm_start=True).fit(X, y)):
        with pytest.raises(ValueError, match=r"^coef_'s .* out of range"):
            call()
    fitted.coef_ = untouched.coef_
    np.testing.assert_array_equal(fitted.predict(X), untouched.predict(X))
    fitted.intercept_ = broken(untouched.intercept_)
    with pytest.raises(ValueError, match=r"^intercept_'s .* out of range"):
        fitted.partial_fit(X, y)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"])
def test_sparse_weights_of_every_format_fit_and_score_as_dense_ones(fmt):
    # a DOK coef_init raised AttributeError (its dtype was read off a .data it lacks), a LIL one
    # was refused as "object values" (its .data holds lists), and a sparse intercept_ assigned by
    # hand failed predict with NumPy's broadcast error where partial_fit took it
    X, y = _classification(2, np.float64)
    weights, intercept = np.arange(1.0, X.shape[1] + 1) / 10, np.array([0.3])
    as_sparse = lambda a: sparse.csr_matrix(np.atleast_2d(a)).asformat(fmt)  # noqa: E731
    model = fastgd.SGDClassifier(max_iter=2, tol=None, random_state=0)
    dense = clone(model).fit(X, y, coef_init=weights, intercept_init=intercept)
    given = clone(model).fit(X, y, coef_init=as_sparse(weights), intercept_init=intercept)  # (a (1, 1) one: refused)
    np.testing.assert_array_equal(given.coef_, dense.coef_)
    np.testing.assert_array_equal(given.intercept_, dense.intercept_)
    expected = dense.decision_function(X)
    dense.intercept_ = as_sparse(dense.intercept_)
    np.testing.assert_array_equal(dense.decision_function(X), expected)


@pytest.mark.parametrize("fmt", ["csr", "coo", "dok"])
def test_a_one_dimensional_sparse_coef_is_read_through_checked_indices(fmt):
    # SciPy's 1-D sparse arrays (sparsify() of a regressor's coef_ makes a CSR one, under
    # scikit-learn's sparse_interface="sparray"): the same as the dense coef_, and refused
    # once its indices lie out of range
    X, y = _regression(np.float64)
    model = fastgd.SGDRegressor(max_iter=2, tol=None, random_state=0).fit(X, y)
    expected = model.predict(X)
    try:
        one_d = sparse.coo_array(model.coef_).asformat(fmt)
    except (TypeError, ValueError, NotImplementedError):
        one_d = None
    if one_d is None or one_d.ndim != 1:
        pytest.skip(f"this SciPy has no 1-D {fmt.upper()} arrays")
    model.coef_ = one_d
    np.testing.assert_array_equal(model.predict(X), expected)
    if fmt == "dok":  # (a dict: no index arrays to put out of range)
        return
    (model.coef_.coords[0] if fmt == "coo" else model.coef_.indices)[-1] = 10**9
    with pytest.raises(ValueError, match=r"^coef_'s .* out of range"):
        model.predict(X)


@pytest.mark.parametrize("edit", ["a value more", "a value less"])
def test_a_lil_matrix_whose_rows_and_data_disagree_is_refused(edit):
    # SciPy's conversion to CSR trusts the lists: a longer data list wrote past its arrays (a
    # segfault), a shorter one shifted every later row's values by one (a silent wrong fit)
    X, y = _classification(2, np.float64)
    model = fastgd.SGDClassifier(max_iter=2, tol=None, random_state=0).fit(X, y)
    untouched = pickle.loads(pickle.dumps(model))
    broken = sparse.lil_matrix(X)
    if edit == "a value more":
        broken.data[3].append(1.0)
    else:
        broken.data[3].pop()
    for method in ("predict", "score", "fit", "partial_fit"):
        with pytest.raises(ValueError, match="as many indices as values"):
            getattr(model, method)(*((broken,) if method == "predict" else (broken, y)))
    np.testing.assert_array_equal(model.coef_, untouched.coef_)


def test_csr_data_in_a_strided_view_is_copied_as_dense_rows_are():
    X, y = _classification(2, np.float64, "csr")
    strided = X.copy()
    room = np.zeros(2 * X.nnz)
    room[::2] = X.data
    strided.data = room[::2]
    options = dict(SAME, learning_rate="constant", eta0=0.05)
    ours = fastgd.SGDClassifier(**options).fit(strided, y)
    np.testing.assert_array_equal(ours.coef_, fastgd.SGDClassifier(**options).fit(X, y).coef_)


@pytest.mark.parametrize("indices, indptr", [(np.int32, np.int64), (np.int64, np.int32), (">i4", ">i4"),
                                             (np.uint32, np.uint32), (np.uint64, np.int32)])
def test_csr_index_arrays_of_other_dtypes_are_converted(indices, indptr):
    # fit refused them ("both int32 or both int64"), where predict took them
    X, y = _classification(2, np.float64, "csr")
    odd = X.copy()
    odd.indices, odd.indptr = X.indices.astype(indices), X.indptr.astype(indptr)
    options = dict(SAME, learning_rate="constant", eta0=0.05)
    ours = fastgd.SGDClassifier(**options).fit(odd, y)
    np.testing.assert_array_equal(ours.coef_, fastgd.SGDClassifier(**options).fit(X, y).coef_)
    assert odd.indices.dtype == np.dtype(indices)  # the caller's matrix as it was


@pytest.mark.parametrize("fmt, array", [("csr", "indptr"), ("csr", "indices"), ("csc", "indices"), ("bsr", "indptr"),
                                        ("coo", "coords")])
def test_sparse_index_arrays_of_floats_are_refused_by_name(fmt, array):
    # a float indptr failed every method with Python's "slice indices must be integers"; a COO
    # matrix's float coordinates (which SciPy's setter of coords keeps) were truncated silently
    X, y = _classification(2, np.float64, "csr")
    model = fastgd.SGDClassifier(max_iter=2, tol=None, random_state=0).fit(X, y)
    coef = model.coef_.copy()
    odd = X.asformat(fmt, copy=True)
    if array == "coords":
        odd.coords = (odd.coords[0] + 0.5, odd.coords[1])
        assert odd.coords[0].dtype == np.float64
    else:
        setattr(odd, array, getattr(odd, array).astype(np.float64))
    for call in (lambda: model.predict(odd), lambda: model.partial_fit(odd, y), lambda: clone(model).fit(odd, y)):
        with pytest.raises(ValueError, match=r"X's (indptr and indices|coordinates) are .*float64.* expected integer"):
            call()
    np.testing.assert_array_equal(model.coef_, coef)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_bad_sparse_indices_are_refused_and_change_nothing(optimizer):
    X, y = _regression(np.float64, "csr")
    model = fastgd.SGDRegressor(max_iter=2, tol=None, random_state=0, optimizer=optimizer, average=5,
                                penalty="elasticnet").fit(X, y)
    untouched = pickle.loads(pickle.dumps(model))
    for position, index in ((-1, X.shape[1] + 5), (3, -1)):  # past the last feature, negative
        broken = X.copy()
        broken.indices[position] = index
        with pytest.raises(ValueError, match="out of range"):
            model.partial_fit(broken, y)
    broken = X.copy()
    broken.indptr[5] = broken.indptr[4] - 1  # falling
    with pytest.raises(ValueError, match="out of range"):
        model.partial_fit(broken, y)
    for name in ("coef_", "intercept_", "t_", "n_iter_"):
        np.testing.assert_array_equal(getattr(model, name), getattr(untouched, name))
    model.partial_fit(X, y)
    untouched.partial_fit(X, y)
    np.testing.assert_array_equal(model.coef_, untouched.coef_)


def _calls_while_flipping(call, array, values, *, calls=None, seconds=1.5, messages=("out of range",)):
    """call() `calls` times (None: over and over for `seconds`) while another thread writes
    `values` into `array` in place and then its own values back, over and over; returns how
    many calls completed.  The others must raise a ValueError whose message holds one of
    `messages`."""
    original, stop = array.copy(), threading.Event()

    def flip():
        while not stop.is_set():
            array[...] = values
            array[...] = original

    flipper = threading.Thread(target=flip)
    flipper.start()
    completed = made = 0
    try:
        deadline = time.monotonic() + seconds
        while (made < calls) if calls is not None else (time.monotonic() < deadline):
            made += 1
            try:
                call()
            except ValueError as error:
                assert any(message in str(error) for message in messages), error
            else:
                completed += 1
    finally:
        stop.set()
        flipper.join()
    return completed


@pytest.mark.parametrize("optimizer, lazy, steps", [
    ("sgd", False, dict(learning_rate="constant")),  # with elasticnet and average: the lazy average
    ("sgd", False, dict(learning_rate="pa1", loss="epsilon_insensitive")),  # the rows' norms
    ("adam", True, dict(learning_rate="constant")), ("adam", False, dict(learning_rate="constant"))])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_indices_rewritten_by_another_thread_never_reach_outside(optimizer, lazy, steps, dtype):
    """While partial_fit runs without the GIL, another thread flips X.indices between their values
    and ones past the last feature.  Each call completes or raises the out-of-range ValueError: a
    row's indices are checked before it is used and again where each is used, so a value that
    changes in between fails the call (which changes nothing) rather than reaching outside the
    weights (.ci/run's sanitizer build would report that).  A call that completes saw only the
    true indices, so the model equals a twin trained by as many calls on an untouched X."""
    rng = np.random.default_rng(0)
    X = sparse.random(4000, 300, density=0.05, format="csr", random_state=rng, dtype=dtype)
    y = (X @ rng.standard_normal(300) + 0.1).astype(dtype)
    clean = X.copy()
    options = dict(optimizer=optimizer, lazy_updates=lazy, batch_size=1 if optimizer == "sgd" else 16,
                   eta0=0.01, random_state=0, average=10, penalty="elasticnet", **steps)
    model, twin = fastgd.SGDRegressor(**options), fastgd.SGDRegressor(**options)
    model.partial_fit(clean, y)
    twin.partial_fit(clean, y)
    calls = 150
    completed = _calls_while_flipping(lambda: model.partial_fit(X, y), X.indices,
                                     X.indices + 1000 * X.shape[1], calls=calls)
    assert completed < calls  # the flips were seen
    for _ in range(completed):
        twin.partial_fit(clean, y)
    np.testing.assert_array_equal(model.coef_, twin.coef_)
    np.testing.assert_array_equal(model.intercept_, twin.intercept_)


@pytest.mark.parametrize("shape, density, batch_size, optimizer, lazy, past", [
    ((4000, 300), 0.05, 1, "sgd", False, 100_000),
    ((4000, 300), 0.05, 16, "adam", True, 100_000),
    # many more features than a batch's nonzeros: a row that grows after the call counted the
    # longest row could touch more entries than the lazy step has room for
    ((2000, 20_000), 3e-4, 4, "adam", True, 0),
])
def test_indptr_rewritten_by_another_thread_never_reaches_outside(shape, density, batch_size, optimizer, lazy, past):
    """Another thread flips entries of X.indptr to nnz + past and back, so that a row runs to
    or past the last nonzero (and the next one falls): each call completes or raises the
    out-of-range ValueError.  A row is read where indptr said when it was checked (a read of
    indptr after that could reach outside the arrays, which .ci/run's sanitizer build reports),
    and a lazy batch never lists more entries than it has room for."""
    rng = np.random.default_rng(1)
    X = sparse.random(*shape, density=density, format="csr", random_state=rng)
    y = X @ rng.standard_normal(shape[1])
    model = fastgd.SGDRegressor(optimizer=optimizer, lazy_updates=lazy, batch_size=batch_size,
                                learning_rate="constant", eta0=0.01, random_state=0).fit(X, y)
    flipped = np.array(X.indptr)
    flipped[1:-1:7] = X.nnz + past
    calls = 150
    completed = _calls_while_flipping(lambda: model.partial_fit(X, y), X.indptr, flipped, calls=calls)
    assert completed < calls  # the flips were seen
    assert np.isfinite(model.coef_).all()


@pytest.mark.parametrize("flipped", ["indices", "indptr"])
@pytest.mark.parametrize("how", ["predict", "early_stopping", "model objective"])
def test_index_arrays_rewritten_by_another_thread_never_reach_outside_in_scipy(flipped, how):
    """Another thread flips X's indices past the last feature (or entries of indptr past the
    last nonzero) and back while predict runs, a fit whose early stopping scores its held-out
    rows each epoch, or a LinearRegression fit, which computes its returned model's objective over
    the rows after its epochs: each call completes or raises the out-of-range ValueError.  Those
    products and row selections are SciPy's, which read through the index arrays unchecked:
    checking X's own arrays first left a window in which SciPy read memory far out of bounds (a
    segfault, reported by .ci/run's sanitizer build; the model's objective multiplied rows selected
    with X's own indices until a fuzzing run found it); they now read private copies, checked."""
    rng = np.random.default_rng(2)
    X = sparse.random(3000, 200, density=0.05, format="csr", random_state=rng)
    y = X @ rng.standard_normal(200)
    model = fastgd.SGDRegressor(max_iter=3, tol=None, random_state=0).fit(X, y)
    values = np.array(getattr(X, flipped))
    if flipped == "indices":  # (a few, for the fit's objective: the epochs, which check them too, miss them)
        values[::97 if how != "model objective" else 1000] += 10**8
    else:
        values[1:-1:7] = X.nnz + 10**8
    if how == "predict":
        expected = model.predict(X)

        def call():
            np.testing.assert_array_equal(model.predict(X), expected)
    else:
        fitting = (fastgd.SGDRegressor(max_iter=2, early_stopping=True, n_iter_no_change=10, random_state=0)
                   if how == "early_stopping" else fastgd.LinearRegression(max_iter=1, tol=None, random_state=0))

        def call():
            fitting.fit(X, y)
    _calls_while_flipping(call, getattr(X, flipped), values)
    assert np.isfinite(model.predict(X)).all()


@pytest.mark.parametrize("fmt", ["csc", "coo", "bsr"])
@pytest.mark.parametrize("how", ["predict", "fit"])
def test_index_arrays_rewritten_by_another_thread_never_reach_outside_in_conversions(fmt, how):
    """As above, for a matrix SciPy converts to CSR (CSC, COO, BSR), whose conversion reads and
    writes through the index arrays unchecked: another thread flips some of its indices (a COO
    matrix's rows) far out of range and back while predict or fit runs; each call completes or
    raises ValueError (SciPy's own, from its copy's check, when the copy meets a flipped value).
    X is checked, then copied and the copy checked again and converted."""
    rng = np.random.default_rng(3)
    X = sparse.random(3000, 200, density=0.05, format="csr", random_state=rng)
    y = X @ rng.standard_normal(200)
    model = fastgd.SGDRegressor(max_iter=2, tol=None, random_state=0).fit(X, y)
    expected = model.predict(X)
    X = X.asformat(fmt)
    array = X.coords[0] if fmt == "coo" else X.indices
    values = np.array(array)
    values[::97] += 10**8

    def call():
        if how == "predict":
            np.testing.assert_array_equal(model.predict(X), expected)
        else:
            fastgd.SGDRegressor(max_iter=1, tol=None, random_state=0).fit(X, y)

    _calls_while_flipping(call, array, values, messages=("out of range", "exceeds matrix dimension"))


def _lazy_adam_oracle(X, y, batch_size, lr, betas, eps, alpha, epochs, fit_intercept=True, objectives=None):
    """Least squares by mini-batch Adam, each step on the weights that the batch's nonzeros touch
    (and the intercept) only, their state alone updated, written out in NumPy (rows in order).
    objectives: a list that gets each epoch's scikit-learn objective (the mean over rows of the
    loss plus the penalty of the kept norms: those of the weights the last step moved)."""
    n, d = X.shape
    theta = np.zeros(d + 1)
    exp_avg, exp_avg_sq = np.zeros(d + 1), np.zeros(d + 1)
    step, squares = 0, 0.0
    for _ in range(epochs):
        objective = 0.0
        for start in range(0, n, batch_size):
            rows = X[start:start + batch_size]
            residual = rows @ theta[:d] + theta[d] - y[start:start + batch_size]
            objective += 0.5 * residual @ residual + rows.shape[0] * 0.5 * alpha * squares
            grad = np.append(rows.T @ residual / rows.shape[0] + alpha * theta[:d], residual.mean() * fit_intercept)
            entries = np.append(np.unique(rows.indices), d)
            step += 1
            g = grad[entries]
            exp_avg[entries] = betas[0] * exp_avg[entries] + (1 - betas[0]) * g
            exp_avg_sq[entries] = betas[1] * exp_avg_sq[entries] + (1 - betas[1]) * g * g
            denominator = np.sqrt(exp_avg_sq[entries]) / np.sqrt(1 - betas[1] ** step) + eps
            theta[entries] -= lr / (1 - betas[0] ** step) * exp_avg[entries] / denominator
            squares = theta[entries[:-1]] @ theta[entries[:-1]]
        if objectives is not None:
            objectives.append(objective / n)
    return theta


#: scikit-learn's SGD stops on its objective (penalty included) from 1.8 on; before, on the loss
OBJECTIVE_IN_SGD = tuple(int(part) for part in sklearn.__version__.split(".")[:2]) >= (1, 8)


@pytest.mark.skipif(not OBJECTIVE_IN_SGD, reason="scikit-learn < 1.8 stops on the loss alone")
@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("penalty", ["l2", "elasticnet", "l1"])
@pytest.mark.parametrize("loss, n_classes", [("hinge", 2), ("log_loss", 2), ("hinge", 3), ("log_loss", 3),
                                             ("squared_error", 0), ("huber", 0)])
def test_convergence_test_is_scikit_learns(loss, n_classes, penalty, schedule, weighted, kind):
    # with tol set (the default), scikit-learn stops on its objective: the mean over the epoch's
    # rows of each row's loss, unweighted, plus the penalty of its weight vector's kept norms
    # (on sparse rows those of the last stepped row's weights, an L1 truncation left out)
    if n_classes:
        X, y = make_classification(300, 8, n_informative=5, n_classes=n_classes, n_clusters_per_class=1,
                                   random_state=4)
        ours, theirs, eta0 = fastgd.SGDClassifier, sk.SGDClassifier, 0.05
    else:
        X, y = make_regression(300, 8, noise=1.0, random_state=0)
        y = y / y.std()
        ours, theirs, eta0 = fastgd.SGDRegressor, sk.SGDRegressor, 0.01
    if schedule == "optimal" and not n_classes:
        pytest.skip("'optimal' diverges on this regression")
    weights = np.random.default_rng(0).uniform(0.2, 3.0, size=y.size) if weighted else None
    options = dict(loss=loss, penalty=penalty, learning_rate=schedule, eta0=eta0, alpha=1e-3, shuffle=False,
                   random_state=0, max_iter=300)
    ours, theirs = _both(ours(**options), theirs(**options), _sparse(X / 2, kind), y, sample_weight=weights)
    _assert_same_fit(ours, theirs, np.float64)
    assert ours.t_ == theirs.t_


@pytest.mark.skipif(not OBJECTIVE_IN_SGD, reason="scikit-learn < 1.8 stops on the loss alone")
@pytest.mark.parametrize("average", [False, 100])
def test_convergence_test_is_scikit_learns_when_the_scale_is_folded(average):
    # a strong L2 decay makes the sparse weights' scale fall below 1e-9 within an epoch, and the
    # weights are folded into it: the kept norms go on in the weights' own units
    rng = np.random.default_rng(0)
    X = sparse.random(6000, 20, density=0.5, random_state=0, format="csr")
    y = X @ rng.standard_normal(20) + 0.1 * rng.standard_normal(6000)
    options = dict(penalty="l2", learning_rate="constant", eta0=0.05, alpha=0.1, shuffle=False, average=average)
    ours, theirs = _both(fastgd.SGDRegressor(**options), sk.SGDRegressor(**options), X, y)
    _assert_same_fit(ours, theirs, np.float64)
    assert ours.t_ == theirs.t_


def _sparse_hinge_oracle(X, y, eta, alpha, l1_ratio, epochs):
    """Per-sample SGD with the hinge loss and an elastic-net penalty on CSR rows, as scikit-learn's
    sparse path takes it (the L1 truncation lazy, on a row's nonzeros; a hundredth of the
    intercept's step), written out in NumPy (rows in order); returns the weights, the intercept
    and each epoch's objective: the loss plus the penalty of the norms as scikit-learn's weight
    vector keeps them (after a row's step, those of the row's weights; times each decay)."""
    n, d = X.shape
    w, b, received, total = np.zeros(d), 0.0, np.zeros(d), 0.0
    squares = magnitudes = 0.0
    objectives = []
    for _ in range(epochs):
        objective = 0.0
        for i in range(n):
            row = X[i]
            target = 1.0 if y[i] == 1 else -1.0
            margin = target * ((row @ w).item() + b)
            objective += max(0.0, 1 - margin) + alpha * (0.5 * (1 - l1_ratio) * squares + l1_ratio * magnitudes)
            decay = max(0.0, 1 - eta * alpha * (1 - l1_ratio))
            w *= decay
            squares, magnitudes = squares * decay ** 2, magnitudes * decay
            if margin <= 1:
                w[row.indices] += eta * target * row.data
                squares, magnitudes = w[row.indices] @ w[row.indices], np.abs(w[row.indices]).sum()
                b += 0.01 * eta * target
            total += eta * alpha * l1_ratio
            for j in row.indices:
                before = w[j]
                if before > 0:
                    w[j] = max(0.0, before - (total + received[j]))
                elif before < 0:
                    w[j] = min(0.0, before + (total - received[j]))
                received[j] += w[j] - before
        objectives.append(objective / n)
    return w, b, objectives


def test_sparse_objective_keeps_scikit_learns_norms_through_the_l1_truncation():
    X, y = _classification(2, np.float64, "csr")
    model = fastgd.SGDClassifier(penalty="elasticnet", l1_ratio=0.3, alpha=0.01, learning_rate="constant",
                                 eta0=0.05, max_iter=4, tol=None, shuffle=False).fit(X, y)
    coef, intercept, objectives = _sparse_hinge_oracle(X, y, 0.05, 0.01, 0.3, 4)
    np.testing.assert_allclose(model.coef_[0], coef, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.intercept_[0], intercept, rtol=1e-9)
    np.testing.assert_allclose(model.loss_curve_, objectives, rtol=1e-9)


def test_lazy_objective_keeps_the_norms_of_the_touched_weights():
    # a lazy step moves the weights a batch touches: the kept norms are theirs, as the oracle keeps them
    X, y = _regression(np.float64, "csr")
    options = dict(optimizer="adam", batch_size=8, max_iter=3, tol=None, shuffle=False, learning_rate="constant",
                   eta0=0.01, alpha=0.01, fit_intercept=False, lazy_updates=True)
    model = fastgd.SGDRegressor(**options).fit(X, y)
    objectives = []
    expected = _lazy_adam_oracle(X, y, 8, 0.01, (0.9, 0.999), 1e-8, 0.01, 3, fit_intercept=False,
                                 objectives=objectives)
    np.testing.assert_allclose(model.coef_, expected[:-1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.loss_curve_, objectives, rtol=1e-9)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_lazy_updates_step_only_the_touched_weights(index_dtype):
    X, y = _regression(np.float64, "csr")
    X.indices, X.indptr = X.indices.astype(index_dtype), X.indptr.astype(index_dtype)
    options = dict(optimizer="adam", batch_size=8, max_iter=3, tol=None, shuffle=False, learning_rate=0.01,
                   alpha=0.01)
    lazy = fastgd.LinearRegression(lazy_updates=True, **options).fit(X, y)
    expected = _lazy_adam_oracle(X, y, 8, 0.01, (0.9, 0.999), 1e-8, 0.01, 3)
    np.testing.assert_allclose(np.append(lazy.coef_, lazy.intercept_), expected, rtol=1e-9, atol=1e-12)
    dense = fastgd.LinearRegression(lazy_updates=False, **options).fit(X, y)
    assert not np.allclose(lazy.coef_, dense.coef_)  # the dense step moves untouched weights too
    # on dense data, and with plain SGD (whose step already costs only the nonzeros), lazy changes nothing
    on_dense = fastgd.LinearRegression(lazy_updates=True, **options).fit(X.toarray(), y)
    np.testing.assert_array_equal(on_dense.coef_, fastgd.LinearRegression(**options).fit(X.toarray(), y).coef_)
    sgd = dict(options, optimizer="sgd")
    np.testing.assert_array_equal(fastgd.LinearRegression(lazy_updates=True, **sgd).fit(X, y).coef_,
                                  fastgd.LinearRegression(**sgd).fit(X, y).coef_)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_drop_in_decay_past_zero_zeroes_the_weights_dense_as_sparse(batch_size):
    # eta0 * alpha = 1.5: scikit-learn's SGD sets the weights to zero rather than flip them; the
    # sparse rows did, dense mini-batches took the gradient step
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, 2.0, 3.0]
    kw = dict(batch_size=batch_size, learning_rate="constant", eta0=0.05, alpha=30, fit_intercept=False,
              max_iter=3, shuffle=False, tol=None)
    dense = fastgd.SGDRegressor(**kw).fit(X, y)
    np.testing.assert_allclose(fastgd.SGDRegressor(**kw).fit(sparse.csr_matrix(X), y).coef_, dense.coef_, rtol=1e-12)
    if batch_size == 1:
        theirs = sk.SGDRegressor(**{k: v for k, v in kw.items() if k != "batch_size"}).fit(X, y)
        np.testing.assert_allclose(dense.coef_, theirs.coef_, rtol=1e-9)
    else:  # each batch's step: w = max(0, 1 - eta0 alpha) w - eta0 (its mean squared error's gradient)
        w = np.zeros(3)
        for _ in range(3):
            for start in range(0, 40, 4):
                rows = slice(start, start + 4)
                w = max(0.0, 1 - 0.05 * 30) * w - 0.05 * X[rows].T @ (X[rows] @ w - y[rows]) / 4
        np.testing.assert_allclose(dense.coef_, w, rtol=1e-12)


@pytest.mark.parametrize("batch_size, seed", [(1, 2), (4, 17)])  # (rows on which a residue broke a tie)
def test_drop_in_decay_of_exactly_zero_zeroes_the_weights(batch_size, seed):
    # eta0 * alpha = 100 * 0.01 rounds to 1: scikit-learn's decay max(0, 1 - eta0 alpha) is 0 and
    # its weights exact zeros after a step without a mistake; the dense steps took the gradient
    # step, whose rounding left residues of 1e-16 of the weights, and the perceptron's next score
    # was a residue rather than 0, a tie (a mistake) broken the other way
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 2, 60)
    kw = dict(loss="perceptron", learning_rate="constant", eta0=100.0, alpha=0.01, fit_intercept=False,
              max_iter=1, shuffle=False, tol=None)
    mine = fastgd.SGDClassifier(batch_size=batch_size, **kw).fit(X, y)
    if batch_size == 1:
        expected = sk.SGDClassifier(**kw).fit(X, y).coef_.ravel()
    else:  # each batch: w = max(0, 1 - eta0 alpha) w - eta0 (the perceptron's mean gradient)
        w, signs = np.zeros(3), np.where(y == 1, 1.0, -1.0)
        for start in range(0, 60, 4):
            rows = slice(start, start + 4)
            mistakes = signs[rows] * (X[rows] @ w) <= 0
            w = max(0.0, 1 - 100.0 * 0.01) * w + 100.0 * (mistakes * signs[rows]) @ X[rows] / 4
        expected = w
    assert np.count_nonzero(expected) and not np.all(expected == expected[0])
    np.testing.assert_allclose(mine.coef_.ravel(), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("layout", ["dense", "sparse", "lazy"])
def test_an_intercept_not_fitted_stays_where_it_was_set(optimizer, layout):
    # its gradient is zero, but AdamW's decoupled decay moved it (5 to 4.968 in 5 epochs); a fixed
    # intercept of 5 is a fit of y - 5 without one, as scikit-learn's fit_intercept=False keeps it
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = X @ [1.0, 2.0, 3.0] + 5
    Xs = X if layout == "dense" else sparse.csr_matrix(X)
    kw = dict(fit_intercept=False, optimizer=optimizer, lazy_updates=layout == "lazy", max_iter=5, tol=None,
              batch_size=4, learning_rate="constant", eta0=0.01, shuffle=False)
    held = fastgd.SGDRegressor(**kw).fit(Xs, y, intercept_init=5.0)
    assert held.intercept_[0] == 5.0
    shifted = fastgd.SGDRegressor(**kw).fit(Xs, y - 5)
    np.testing.assert_allclose(held.coef_, shifted.coef_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("penalty", [None, "l1", "elasticnet"])
@pytest.mark.parametrize("lazy", [True, False])
def test_sparse_fits_see_the_matrix_not_its_stored_zeros(lazy, penalty):
    # a stored zero listed its weight as touched (a lazy step on a zero gradient: its moments
    # decayed, its momentum moved it), and the L1 truncation took it in too: two equal matrices
    # gave fits ~10% apart
    rng = np.random.default_rng(0)
    X = sparse.random(40, 10, density=0.3, format="csr", random_state=0)
    y = rng.normal(size=40)
    stored = X.copy()
    stored.data[::4] = 0.0
    plain = stored.copy()
    plain.eliminate_zeros()
    assert plain.nnz < stored.nnz and (plain != stored).nnz == 0
    kw = dict(optimizer="adam", lazy_updates=lazy, batch_size=4, learning_rate=0.05, tol=None, shuffle=False,
              max_iter=3, penalty=penalty, alpha=0.01 if penalty else 0.0)
    models = [fastgd.LinearRegression(**kw).fit(matrix, y) for matrix in (stored, plain)]
    for model in models:  # the sums over a row's entries may round differently with the zeros in them
        np.testing.assert_allclose(model.coef_, models[1].coef_, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(model.intercept_, models[1].intercept_, rtol=1e-12, atol=1e-15)
    if lazy and penalty is None:
        expected = _lazy_adam_oracle(plain, y, 4, 0.05, (0.9, 0.999), 1e-8, 0.0, 3)
        np.testing.assert_allclose(np.append(models[0].coef_, models[0].intercept_), expected, rtol=1e-9,
                                   atol=1e-12)


@pytest.mark.parametrize("optimizer, lazy, penalty", [("adam", True, None), ("adam", False, "l1"),
                                                      ("momentum", False, "elasticnet")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("estimator", ["LinearRegression", "SGDRegressor"])
def test_sparse_fits_see_the_matrix_not_its_duplicate_entries(estimator, dtype, optimizer, lazy, penalty):
    # a feature stored twice in a row, as 0.5 and -0.5, is the matrix's 0, but the lazy step
    # listed its weight as touched (its moments decayed, its momentum moved it), and the L1
    # truncation after the exact step truncated it: the fit was that of the storage.  Each row
    # here stores such a pair at a feature it lacks, and one of its entries split in two halves;
    # a third of the rows are stored in falling order
    rng = np.random.default_rng(1)
    X = sparse.random(60, 12, density=0.3, format="csr", random_state=1, dtype=dtype)
    y = rng.normal(size=60).astype(dtype)
    indices, data, indptr = [], [], [0]
    for i in range(X.shape[0]):
        row = X[i]
        free = np.setdiff1d(np.arange(X.shape[1]), row.indices)[0]
        entries = [(j, v) for j, v in zip(row.indices, row.data)] + [(free, 0.5), (free, -0.5)]
        if row.nnz:
            j, v = entries.pop(0)
            entries += [(j, v / 2), (j, v / 2)]
        entries.sort(key=lambda entry: entry[0], reverse=i % 3 == 0)
        indices += [j for j, _ in entries]
        data += [v for _, v in entries]
        indptr.append(len(indices))
    stored = sparse.csr_matrix((np.array(data, dtype=dtype), np.array(indices, dtype=np.int32), indptr),
                               shape=X.shape)
    given = stored.copy()
    summed = stored.copy()
    summed.sum_duplicates()  # the same matrix, each feature once a row (a stored 0 where the pair was)
    assert summed.nnz < stored.nnz and (summed != stored).nnz == 0
    kw = dict(optimizer=optimizer, lazy_updates=lazy, batch_size=4, tol=None, max_iter=3, random_state=0,
              penalty=penalty, alpha=0.01 if penalty else 0.0)
    kw.update(learning_rate="constant", eta0=0.05) if estimator == "SGDRegressor" else kw.update(learning_rate=0.05)
    ours, expected = (getattr(fastgd, estimator)(**kw).fit(matrix, y) for matrix in (stored, summed))
    np.testing.assert_array_equal(ours.coef_, expected.coef_)
    np.testing.assert_array_equal(ours.intercept_, expected.intercept_)
    for name in ("data", "indices", "indptr"):  # the caller's matrix as it was
        np.testing.assert_array_equal(getattr(stored, name), getattr(given, name))


@pytest.mark.parametrize("optimizer", ["adam", "adagrad", "rmsprop", "nadam"])
def test_lazy_updates_work_with_every_optimizer(optimizer):
    # as accurate as the exact dense step and as scikit-learn's per-sample SGD (this data is hard: about 0.5)
    X, y = _classification(3, np.float32, "csr")
    options = dict(loss="log_loss", optimizer=optimizer, batch_size=16, learning_rate="constant", eta0=0.01,
                   max_iter=5, tol=None, random_state=0)
    lazy = fastgd.SGDClassifier(lazy_updates=True, **options).fit(X, y)
    assert lazy.coef_.dtype == np.float32
    dense = fastgd.SGDClassifier(**options).fit(X, y)
    per_sample = sk.SGDClassifier(loss="log_loss", random_state=0).fit(X, y)
    assert lazy.score(X, y) >= max(dense.score(X, y), per_sample.score(X, y)) - 0.05


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("loss", CLASSIFIER_LOSSES)
def test_non_finite_x_is_refused_and_changes_nothing(loss, bad, kind):
    # X is not checked up front: the epoch meets the bad value, whose row's score is then not
    # finite; several losses would read such a score as a zero loss and step on nothing
    X, y = _classification(2, np.float64, kind)
    model = fastgd.SGDClassifier(loss=loss, **SAME).fit(X, y)
    untouched = pickle.loads(pickle.dumps(model))
    broken = X.copy()
    if kind == "dense":
        broken[7, 2] = bad
    else:
        broken.data[11] = bad
    for call in (model.fit, model.partial_fit):
        with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
            call(broken, y)
        for name in ("coef_", "intercept_", "t_", "n_iter_"):
            np.testing.assert_array_equal(getattr(model, name), getattr(untouched, name))
        assert model._optimizer.state_dict()["param_groups"] == untouched._optimizer.state_dict()["param_groups"]


def test_divergence_on_sparse_data_is_reported_as_on_dense():
    X, y = make_regression(200, 6, random_state=0)
    for data in (X * 1e3, sparse.csr_matrix(X * 1e3)):
        with np.errstate(all="ignore"), pytest.raises(ValueError, match="objective became non-finite in epoch"):
            fastgd.LinearRegression(learning_rate=100.0, max_iter=5, tol=None).fit(data, y)


@pytest.mark.parametrize("where", ["coef_", "intercept_"])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_a_nan_written_into_coef_in_place_is_named_not_called_a_divergence(where, n_classes):
    # coef_ is a view of the weights: a NaN written there reached the epoch, whose message blamed
    # "learning rate 1" (the "optimal" schedule's placeholder) and advised a smaller one
    X, y = _classification(n_classes, np.float64)
    model = fastgd.SGDClassifier(random_state=0).partial_fit(X, y, classes=np.arange(n_classes))
    getattr(model, where).flat[0] = np.nan
    names = ("coef_", "intercept_", "t_", "n_iter_", "loss_curve_")
    before = {name: np.array(getattr(model, name), copy=True) for name in names}
    with pytest.raises(ValueError, match=r"^the weights held NaN or inf as this call began \(written into coef_"):
        model.partial_fit(X, y)
    for name in names:
        assert np.array_equal(getattr(model, name), before[name], equal_nan=True), name
    model.set_params(learning_rate="optimal", alpha=1e-300)  # a real divergence: named as such
    np.nan_to_num(getattr(model, where), copy=False)
    with np.errstate(all="ignore"), pytest.raises(ValueError, match=r"non-finite in epoch 1 with optimizer='sgd' "
                                                                       r"and learning_rate='optimal' \(in float64\)"):
        model.partial_fit(X * 1e150, y)


@pytest.mark.parametrize("average", [False, 10, 10_000])
def test_partial_fit_goes_on_from_assigned_weights_as_scikit_learn(average):
    # scikit-learn goes on from coef_ and intercept_ as they stand (with averaging, shown yet or
    # not, from the weights trained, which coef_ does not show)
    X, y = _regression(np.float64)
    options = dict(SAME, average=average)
    ours, theirs = _both(fastgd.SGDRegressor(**options), sk.SGDRegressor(**options), X, y)
    for model in (ours, theirs):
        model.coef_, model.intercept_ = np.linspace(-1, 1, X.shape[1]), np.array([0.5])
        model.partial_fit(X[:20], y[:20])
    _assert_same_fit(ours, theirs, np.float64)
    if not average:
        ours.coef_ = np.linspace(1, 2, X.shape[1])
        copy = pickle.loads(pickle.dumps(ours))  # keeps the assigned coef_, which partial_fit goes on from
        ours.partial_fit(X[:20], y[:20])
        copy.partial_fit(X[:20], y[:20])
        np.testing.assert_array_equal(copy.coef_, ours.coef_)
        ours.coef_ = np.zeros(3)
        with pytest.raises(ValueError, match=r"coef_ has shape \(3,\)"):
            ours.partial_fit(X, y)


@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_partial_fit_goes_on_from_an_assigned_view_of_the_weights_as_scikit_learn(kind):
    # an assigned view of coef_ itself (classes reordered, say) was taken for coef_ as the
    # estimator made it: the next partial_fit went on from the old weights and wrote over it
    X, y = _classification(3, np.float64, kind)
    ours, theirs = _both(fastgd.SGDClassifier(**SAME), sk.SGDClassifier(**SAME), X, y)
    for model in (ours, theirs):
        model.coef_, model.intercept_ = model.coef_[::-1], model.intercept_[::-1]
        model.partial_fit(X[:20], y[:20])
    _assert_same_fit(ours, theirs, np.float64)
    before = ours.coef_.copy()
    ours.coef_ = ours.coef_[:, :-1]  # a view one feature short
    with pytest.raises(ValueError, match=r"coef_ has shape \(3, 5\)"):
        ours.partial_fit(X, y)
    np.testing.assert_array_equal(ours.coef_, before[:, :-1])  # the failed call changed nothing


@pytest.mark.parametrize("first, then", [("invscaling", "constant"), ("optimal", "constant"),
                                         ("optimal", "adaptive"), ("invscaling", "adaptive")])
def test_partial_fit_after_a_schedule_change_as_scikit_learn(first, then):
    # the param group kept the last rate of the schedule before (eta0 unchanged, so the
    # learning rate was not seen to change): 0.06 from scikit-learn's weights
    X, y = _regression(np.float64)
    options = dict(SAME, learning_rate=first, eta0=0.05, alpha=0.01)
    ours, theirs = fastgd.SGDRegressor(**options), sk.SGDRegressor(**options)
    for model in (ours, theirs):
        for _ in range(3):
            model.partial_fit(X, y)
        model.set_params(learning_rate=then)
        for _ in range(2):
            model.partial_fit(X, y)
    _assert_same_fit(ours, theirs, np.float64)


@pytest.mark.parametrize("cls", [fastgd.SGDClassifier, fastgd.LogisticRegression])
def test_scores_that_overflow_are_refused_not_made_nan(cls):
    # rows of finite features whose scores overflow gave NaN decisions, class 0 and NaN
    # probabilities without a word (scikit-learn's too)
    X, y = _classification(2, np.float64)
    model = cls(max_iter=5, tol=None, random_state=0,
                **({"loss": "log_loss"} if cls is fastgd.SGDClassifier else {"learning_rate": 0.5}))
    model.fit(X, y)
    assert np.abs(model.coef_).sum() > 1.01  # so that the first row's score overflows
    huge = np.full((2, X.shape[1]), np.finfo(np.float64).max) * np.sign(model.coef_.ravel())
    huge[1] *= -1
    huge[1, 0] *= -1  # inf - inf inside the product
    for method in ("decision_function", "predict", "predict_proba", "predict_log_proba"):
        with pytest.raises(ValueError, match="scores .* are not finite"):
            getattr(model, method)(huge)
    np.testing.assert_array_equal(model.predict(X), model.predict(X * 1.0))  # finite scores are as before


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("name", ["SGDRegressor", "LinearRegression"])
def test_x_beyond_the_models_dtype_in_a_partial_fit_is_named(name, kind):
    # a float32 model's partial_fit casts float64 X to float32: a finite 1e39 became inf there,
    # and the epoch said "Input X contains infinity", a value the user never gave
    X, y = _regression(np.float32)
    model = getattr(fastgd, name)(max_iter=2, tol=None).fit(X, y)
    before = model.coef_.copy()

    def given(value):  # float64 X holding value
        data = _sparse(X.astype(np.float64), kind)
        (data.data if kind == "csr" else data.reshape(-1))[7] = value
        return data

    with pytest.raises(ValueError, match=r"X holds values beyond float32's range, the model's dtype, in which "
                                         r"partial_fit goes on"):
        model.partial_fit(given(1e39), y)
    np.testing.assert_array_equal(model.coef_, before)
    with pytest.raises(ValueError, match="Input X contains infinity"):  # an inf given: the epoch's to name, as in a fit
        model.partial_fit(given(np.inf), y)
    weights = np.ones(len(y))
    weights[3] = 1e39
    if name == "LinearRegression":  # (which has no class_weight)
        with pytest.raises(ValueError, match=r"^sample_weight holds NaN or inf in float32"):
            model.partial_fit(X.astype(np.float64), y, sample_weight=weights)
    np.testing.assert_array_equal(model.coef_, before)


@pytest.mark.parametrize("name", ["SGDRegressor", "LinearRegression"])
@pytest.mark.parametrize("stored", ["spare storage", "duplicates"])
def test_a_csr_matrix_stored_unlike_its_cast_goes_on_in_a_float32_models_partial_fit(name, stored):
    # the check of values beyond float32 compared the given values with the cast's entry by entry: a
    # NumPy broadcast error where they differ in number (storage past indptr[-1], set by hand, which
    # SciPy does not read; duplicate entries, which the cast sums)
    X, y = _regression(np.float32)
    model = getattr(fastgd, name)(max_iter=2, tol=None, shuffle=False).fit(X, y)
    twin = copy.deepcopy(model)
    given = sparse.csr_matrix(X.astype(np.float64))
    if stored == "spare storage":
        given.data, given.indices = np.r_[given.data, 1e39, np.nan], np.r_[given.indices, 0, 1].astype(given.indices.dtype)
        assert given.data.size == given.nnz + 2
    else:  # each row's entries stored twice, as halves (exact: the cast's sums are the values)
        spans = list(zip(given.indptr[:-1], given.indptr[1:]))
        indices = np.concatenate([np.r_[given.indices[a:b], given.indices[a:b]] for a, b in spans])
        data = np.concatenate([np.r_[given.data[a:b], given.data[a:b]] / 2 for a, b in spans])
        given = sparse.csr_matrix((data, indices, np.r_[0, np.cumsum(2 * np.diff(given.indptr))]), shape=X.shape)
        assert not given.has_canonical_format
    model.partial_fit(given, y)
    twin.partial_fit(sparse.csr_matrix(X.astype(np.float64)), y)  # the same matrix, stored as SciPy makes it
    np.testing.assert_array_equal(model.coef_, twin.coef_)
    np.testing.assert_array_equal(model.intercept_, twin.intercept_)


@pytest.mark.parametrize("case", ["y beyond float32", "NaN class weight", "sample weight beyond float32"])
def test_targets_and_weights_not_finite_in_the_training_dtype_are_named(case):
    # they passed the checks (made in float64, or none for class_weight) and reached the loop
    # as the divergence error, which tells to lower the learning rate
    X, y = _regression(np.float32)
    if case == "NaN class weight":
        for cls in (fastgd.SGDClassifier, fastgd.LogisticRegression):
            for weight in (np.nan, 1e39):  # (1e39: inf in float32)
                model = cls(max_iter=5, tol=None, class_weight={0: weight, 1: 1.0})
                with pytest.raises(ValueError, match=r"class_weight.* holds NaN or inf"):
                    model.fit(X, (y > 0).astype(int))
                assert not hasattr(model, "coef_")
        return
    first = fastgd.SGDRegressor(max_iter=1, tol=None).fit(X, y)  # a float32 model, which float64 data joins
    y, weights = y.astype(np.float64), np.ones(len(y))
    if case == "y beyond float32":
        y[3] = 1e39
    else:
        weights[3] = 1e39
    for model, call in ((fastgd.SGDRegressor(max_iter=5, tol=None), "fit"), (first, "partial_fit")):
        before = None if call == "fit" else model.coef_.copy()
        data = X if call == "fit" else X.astype(np.float64)
        # (NumPy's "overflow encountered in cast" no longer comes first: an error where warnings are)
        with pytest.raises(ValueError, match=r"(y|sample_weight).* (holds NaN or inf in |contains infinity or a "
                                             r"value too large for dtype\(')float32"), warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            getattr(model, call)(data, y, sample_weight=weights)
        if before is None:
            assert not hasattr(model, "coef_")
        else:
            np.testing.assert_array_equal(model.coef_, before)


@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_predictions_during_a_partial_fit_are_the_old_or_the_new_models(kind):
    # other threads' decision_function read the weights mid-epoch (on sparse rows unscaled, and
    # with average the running sums): hundreds of reads a call were neither model's
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100_000, 20))
    y = (X[:, 0] > 0).astype(int)
    data = sparse.csr_matrix(X) if kind == "csr" else X
    model = fastgd.SGDClassifier(learning_rate="constant", eta0=0.01, average=True, random_state=0)
    model.partial_fit(data[:1000], y[:1000], classes=[0, 1])
    rows = X[:50]
    old, seen, done = model.decision_function(rows), [], threading.Event()

    def read():
        while not done.is_set():
            seen.append(model.decision_function(rows))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        model.partial_fit(data, y)
    finally:
        done.set()
        for reader in readers:
            reader.join()
    new = model.decision_function(rows)
    assert not np.array_equal(old, new)
    assert all(np.array_equal(read, old) or np.array_equal(read, new) for read in seen)


def test_a_coef_set_to_none_restarts_from_zeros_and_a_complex_one_is_refused():
    # coef_ = None kept the weights trained (scikit-learn starts from zeros); a complex coef_
    # (or coef_init) lost its imaginary part with a warning
    X, y = _regression(np.float64)
    ours, theirs = _both(fastgd.SGDRegressor(**SAME), sk.SGDRegressor(**SAME), X, y)
    for model in (ours, theirs):
        model.coef_ = None
        model.partial_fit(X[:20], y[:20])
    _assert_same_fit(ours, theirs, np.float64)
    before = ours.coef_.copy()
    ours.coef_ = ours.coef_ + 1j
    with pytest.raises(TypeError, match="coef_ holds complex128 values; expected real numbers"):
        ours.partial_fit(X[:20], y[:20])
    np.testing.assert_array_equal(ours.coef_.real, before)
    with pytest.raises(TypeError, match="coef_init holds complex128 values"):
        fastgd.SGDRegressor().fit(X, y, coef_init=np.ones(X.shape[1]) + 1j)
    for values in ([1j] * X.shape[1], [10 ** 400] + [0] * (X.shape[1] - 1)):  # (the int: OverflowError)
        with pytest.raises(TypeError, match="coef_init holds object values"):
            fastgd.SGDRegressor().fit(X, y, coef_init=np.array(values, dtype=object))
    # real numbers as objects are converted, as scikit-learn converts them (they were refused)
    start = dict(coef_init=np.linspace(-1, 1, X.shape[1]).astype(object), intercept_init=np.array([0.5], dtype=object))
    ours, theirs = _both(fastgd.SGDRegressor(**SAME), sk.SGDRegressor(**SAME), X, y, **start)
    _assert_same_fit(ours, theirs, np.float64)


@pytest.mark.parametrize("cls", [fastgd.SGDRegressor, fastgd.LinearRegression])
def test_a_warm_fit_after_coef_set_to_none_starts_from_zeros(cls):
    # it raised "holds object values" (np.array(None)), where partial_fit starts from zeros
    X, y = _regression(np.float64)
    options = dict(max_iter=3, tol=None, shuffle=False, random_state=0)
    model = cls(warm_start=True, **options).fit(X, y)
    model.coef_ = None
    model.fit(X, y)
    cold = cls(**options).fit(X, y)
    np.testing.assert_allclose(model.coef_, cold.coef_, rtol=1e-12)
    np.testing.assert_allclose(model.intercept_, cold.intercept_, rtol=1e-12)


def test_an_average_past_any_step_count_never_averages():
    # average=2**70 passed the parameter checks, then overflowed a C long in the compiled loop
    X, y = _regression(np.float64)
    never = fastgd.SGDRegressor(average=2**70, **SAME).fit(X, y)
    plain = fastgd.SGDRegressor(**SAME).fit(X, y)
    np.testing.assert_array_equal(never.coef_, plain.coef_)


def test_initial_weights_of_the_wrong_shape_are_refused_as_scikit_learn():
    X, y = _classification(3, np.float64)
    for model in (fastgd.SGDClassifier(), sk.SGDClassifier()):
        with pytest.raises(ValueError):
            model.fit(X, y, coef_init=np.zeros((X.shape[1], 3)))  # transposed
    binary, y2 = _classification(2, np.float64)
    ours, theirs = _both(fastgd.SGDClassifier(**SAME), sk.SGDClassifier(**SAME), binary, y2,
                         coef_init=np.ones((1, binary.shape[1])))  # one output: any shape of its d values
    _assert_same_fit(ours, theirs, np.float64)


def test_scores_of_float32_rows_in_the_dtype_of_both_as_scikit_learn():
    X, y = _classification(3, np.float64)
    ours, theirs = _both(fastgd.SGDClassifier(**SAME), sk.SGDClassifier(**SAME), X, y)
    rows = X.astype(np.float32)
    assert ours.decision_function(rows).dtype == theirs.decision_function(rows).dtype == np.float64
    np.testing.assert_allclose(ours.decision_function(rows), theirs.decision_function(rows), rtol=1e-6)


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize("penalty", [None, "l1", "elasticnet"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_float32_intercepts_in_double_through_a_call_as_scikit_learn(n_classes, penalty, average, kind):
    # rows of zeros score the intercept alone, and the perceptron steps on a score of 0: an
    # intercept summed in float32 (a few 1e-11 where scikit-learn's double sum of the same steps
    # is about 1e-20, of the other sign) sent such fits elsewhere (relative gaps of 0.1 to 3).
    # Into a partial_fit, a binary classifier's goes on in double (scikit-learn's intercept_ is
    # float64 there), more classes' from their float32 rounding, as there
    X, y = make_classification(200, 6, n_informative=4, n_classes=n_classes, random_state=3)
    X = X / 2
    X[np.random.default_rng(1).random(X.shape) < 0.6] = 0
    X = _sparse(X.astype(np.float32), "dense") if kind == "dense" else sparse.csr_matrix(X.astype(np.float32))
    weights = np.tile([0.5, 1.0, 3.0], 70)[:200]  # sample times class weight: not a float32 number
    options = dict(SAME, loss="perceptron", penalty=penalty, learning_rate="constant", eta0=0.02, alpha=1e-2,
                   average=average, class_weight={0: 1.0, 1: 1.1})
    ours, theirs = _both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y, sample_weight=weights)
    _assert_same_fit(ours, theirs, np.float32)
    if not average:  # (with it, scikit-learn's partial_fit goes on from a stale intercept: README)
        for _ in range(2):  # each call starts from intercept_
            ours, theirs = ours.partial_fit(X, y), theirs.partial_fit(X, y)
            _assert_same_fit(ours, theirs, np.float32)


@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize("n_classes, loss", [(2, "hinge"), (3, "hinge"), (2, "log_loss"), (3, "log_loss"),
                                             (2, "modified_huber"), (2, "squared_hinge"), (1, "squared_error"),
                                             (1, "huber")])
def test_float32_sparse_epoch_rounds_as_scikit_learn(n_classes, loss, average):
    # scikit-learn's float32 weight vector rounds the score's product, the L2 decay, the update and
    # the scale to float32 (its sums in double); fastgd rounded them in double, a few float32 ulps
    # apart an epoch, enough on hinge's margin test to move multi-epoch fits of text by 1e-2.  One
    # epoch takes the same roundings; the average's fold (BLAS's axpy there, with or without a fused
    # multiply-add by the kernel BLAS picks) within 2 float32 epsilons of the weights' size (5 to 8 before).
    # Each epoch ends with the weights' scale folded in, where scikit-learn's fit folds it at its
    # end only: a fit of several epochs is its fit of one, then a partial_fit an epoch.  The update
    # is -eta d(loss) rounded once: from d(loss) rounded to float32 first, the smooth losses' weights
    # drifted an ulp apart within a few rows (log loss: 7e-6 relative after an epoch of 50 rows)
    if n_classes == 1:
        X, y = make_regression(400, 30, n_informative=10, noise=1.0, random_state=5)
        y = y / np.abs(y).max()
        ours, theirs = fastgd.SGDRegressor, sk.SGDRegressor
    else:
        X, y = make_classification(400, 30, n_informative=10, n_classes=n_classes, random_state=5)
        ours, theirs = fastgd.SGDClassifier, sk.SGDClassifier
    X[np.random.default_rng(2).random(X.shape) < 0.7] = 0
    X = sparse.csr_matrix((X / 3).astype(np.float32))
    options = dict(SAME, max_iter=1, loss=loss, alpha=1e-3, average=average)
    ours, theirs = _both(ours(**options), theirs(**options), X, y)
    if average:
        atol = 2 * np.finfo(np.float32).eps * np.abs(theirs.coef_).max()
        np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=atol)
    else:
        np.testing.assert_array_equal(ours.coef_, theirs.coef_)
    np.testing.assert_array_equal(ours.intercept_, theirs.intercept_.astype(np.float32))
    # an epoch ends with the weights' scale folded in: scikit-learn's partial_fit does so too (but
    # one vs all's intercepts are float32 between its calls, where a fit keeps them in double
    # through the call, README: hinge's steps of a few rounded rates land on the same float32s)
    if not average and (n_classes != 3 or loss == "hinge"):
        ours = type(ours)(**dict(options, max_iter=3)).fit(X, y)
        for _ in range(2):
            theirs.partial_fit(X, y)
        np.testing.assert_array_equal(ours.coef_, theirs.coef_)


@pytest.mark.parametrize("average", [False, True])
def test_float32_regressor_intercepts_go_on_in_double_as_scikit_learn(average):
    # scikit-learn's regressor keeps its intercepts in float64 from call to call (partial_fit, and
    # a warm refit): fastgd goes on from the double it kept
    X, y = _regression(np.float32)
    X = X.copy()
    X[np.random.default_rng(1).random(X.shape) < 0.6] = 0
    options = dict(SAME, learning_rate="constant", eta0=0.02, average=average, warm_start=True)
    ours, theirs = _both(fastgd.SGDRegressor(**options), sk.SGDRegressor(**options), X, y)
    for call in ("partial_fit", "partial_fit", "fit"):
        ours, theirs = getattr(ours, call)(X, y), getattr(theirs, call)(X, y)
        _assert_same_fit(ours, theirs, np.float32)


@pytest.mark.parametrize("estimator", ["SGDClassifier", "LogisticRegression"])
def test_float32_scaled_weights_fold_at_scikit_learns_float32_floor(estimator):
    # sparse rows under plain SGD keep the weights as scale * coef and the average lazily, its
    # terms growing as 1 / scale: folded only below 1e-9 (float64's floor), float32's digits ran
    # out and the average came out far off (coef_ 4.4 against 0.86); scikit-learn folds float32
    # weights below 1e-6.  The L2 scale here falls to about 1e-9 in the epoch
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3))
    y = (X.sum(axis=1) > 0).astype(int)
    X = sparse.csr_matrix(X)
    if estimator == "SGDClassifier":
        options = dict(SAME, average=True, learning_rate="constant", eta0=0.5, alpha=0.1, max_iter=1)
        make = fastgd.SGDClassifier
    else:
        options = dict(average=True, optimizer="sgd", batch_size=1, learning_rate=0.5, alpha=0.1, max_iter=1,
                       tol=None, shuffle=False, random_state=0)
        make = fastgd.LogisticRegression
    single, double = make(**options).fit(X.astype(np.float32), y), make(**options).fit(X, y)
    np.testing.assert_allclose(single.coef_, double.coef_, rtol=2e-2)  # scikit-learn's own: 4e-3 apart
    if estimator == "SGDClassifier":
        theirs = sk.SGDClassifier(**options).fit(X.astype(np.float32), y)
        np.testing.assert_allclose(single.coef_, theirs.coef_, rtol=1e-2)


@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_float32_lazy_l1_average_resets_at_scikit_learns_float32_floor(kind):
    # the same floor resets scikit-learn's lazy average of L1 truncations: float32 fits follow
    # its float32 bookkeeping (about 1e4 here), not its float64 one (about 4e5)
    rng = np.random.default_rng(0)
    rng.standard_normal((400, 3))  # (rows drawn and dropped: the case the audit found)
    X = rng.standard_normal((400, 4)).astype(np.float32)
    y = (X.sum(axis=1) > 0).astype(int)
    X = X if kind == "dense" else sparse.csr_matrix(X)
    options = dict(SAME, penalty="elasticnet", l1_ratio=0.15, average=True, learning_rate="constant", eta0=0.5,
                   alpha=0.1, max_iter=1)
    ours, theirs = _both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-4)


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("task", ["regression", "binary"])
def test_early_stopping_holds_out_scikit_learns_rows_and_keeps_their_order(task, kind):
    # the same held-out rows (a stratified split for a classifier, from random_state), and with
    # shuffle=False the rows left trained on in their order: scikit-learn's weights
    if task == "regression":
        X, y = _regression(np.float64, kind)
        ours, theirs = fastgd.SGDRegressor, sk.SGDRegressor
    else:
        X, y = _classification(2, np.float64, kind)
        ours, theirs = fastgd.SGDClassifier, sk.SGDClassifier
    options = dict(SAME, early_stopping=True, validation_fraction=0.2, random_state=3)
    ours, theirs = _both(ours(**options), theirs(**options), X, y)
    _assert_same_fit(ours, theirs, np.float64)
    assert ours.t_ == theirs.t_  # the held-out rows counted, as if trained on


def test_early_stopping_scores_the_held_out_rows_in_their_order_as_scikit_learn():
    # they were scored in ShuffleSplit's order, scikit-learn's in X's (a mask): R^2 of a constant
    # target is rounding alone, and the other sum's order tipped when to stop (3 epochs against 6)
    rng = np.random.default_rng(1)
    X = rng.integers(0, 2, (30, 1)) * 3.0
    y, w = np.full(30, -4983096999014637.0), rng.uniform(0.1, 3, 30)
    options = dict(loss="huber", penalty=None, alpha=0.01, learning_rate="optimal", early_stopping=True,
                   validation_fraction=0.3, n_iter_no_change=2, tol=1e-3, max_iter=6, shuffle=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = fastgd.SGDRegressor(**options).fit(X, y, sample_weight=w)
        theirs = sk.SGDRegressor(**options).fit(X, y, sample_weight=w)
    assert ours.n_iter_ == theirs.n_iter_
    _assert_same_fit(ours, theirs, np.float64)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
@pytest.mark.parametrize("options", [dict(batch_size=4), dict(optimizer="momentum")])
def test_a_partial_fit_with_early_stopping_of_mini_batches_holds_out_rows_as_scikit_learn(task, options):
    # partial_fit after fit failed there (the split was drawn for per-sample SGD alone): it holds out
    # validation_fraction of its rows, split as scikit-learn splits them, and scores the model there
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    X, y = (_regression(np.float64) if task == "regression"
            else _classification(2 if task == "binary" else 3, np.float64))
    model = (fastgd.SGDRegressor if task == "regression" else fastgd.SGDClassifier)(
        early_stopping=True, validation_fraction=0.2, max_iter=3, random_state=5, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    model.partial_fit(X, y)
    splitter = ShuffleSplit if task == "regression" else StratifiedShuffleSplit
    _, held_out = next(splitter(test_size=0.2, random_state=5).split(np.zeros((X.shape[0], 1)), y))
    assert model.n_iter_ == 1
    assert model.validation_scores_ == [pytest.approx(model.score(X[held_out], y[held_out]), rel=1e-12)]


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_early_stopping_calls_a_subclass_score_as_scikit_learn(task):
    """A subclass's own score() is what early stopping monitors, as scikit-learn's calls it
    (on the held-out rows): the same epochs, weights and calls."""
    from sklearn.metrics import balanced_accuracy_score, mean_absolute_error

    if task == "regression":
        X, y = _regression(np.float64, "dense")
        bases = fastgd.SGDRegressor, sk.SGDRegressor
        metric = lambda y, predicted, sample_weight: -mean_absolute_error(y, predicted)  # noqa: E731
    else:
        X, y = _classification(2, np.float64, "dense")
        y = (X[:, 0] > 0.7).astype(int)  # imbalanced: balanced accuracy is not accuracy
        bases = fastgd.SGDClassifier, sk.SGDClassifier
        metric = balanced_accuracy_score
    fits = []
    for base in bases:
        class Scored(base):
            calls = []

            def score(self, X, y, sample_weight=None):
                type(self).calls.append(len(y))
                return metric(y, self.predict(X), sample_weight=sample_weight)

        model = Scored(**dict(SAME, max_iter=50, tol=1e-3, early_stopping=True, validation_fraction=0.3,
                              n_iter_no_change=2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append((model.fit(X, y), Scored.calls))
    (mine, my_calls), (sklearns, their_calls) = fits
    _assert_same_fit(mine, sklearns, np.float64)
    assert my_calls == their_calls and len(my_calls) == mine.n_iter_
    pandas = pytest.importorskip("pandas")  # (installed with dask-ml in CI)
    frame = pandas.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    with warnings.catch_warnings():  # the held-out rows scored without a warning of their names, as there
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert type(mine).fit(clone(mine), frame, y).n_iter_ == mine.n_iter_


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("tol", [None, 1e-3])
@pytest.mark.parametrize("task", ["regression", "binary", "3 classes"])
def test_a_shared_generator_is_drawn_from_as_scikit_learn_draws(task, tol, early_stopping, global_seed):
    """random_state a RandomState, or None (NumPy's global generator): a fit draws from it what
    scikit-learn's does, in its order, so that early stopping holds out its rows (two fits in a
    row with one generator included) and the generator is left where scikit-learn leaves it."""
    if task == "regression":
        X, y = _regression(np.float64, "dense")
        ours, theirs = fastgd.SGDRegressor, sk.SGDRegressor
    else:
        X, y = _classification(2 if task == "binary" else 3, np.float64, "dense")
        ours, theirs = fastgd.SGDClassifier, sk.SGDClassifier
    options = dict(SAME, tol=tol, early_stopping=early_stopping, validation_fraction=0.3)
    for shared in ("instance", "global"):
        fits, after = [], []
        for cls in (ours, theirs):
            generator = np.random.RandomState(7)
            if shared == "global":
                global_seed(7)
                generator = np.random.mtrand._rand
            model = cls(**{**options, "random_state": None if shared == "global" else generator})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fits.append([copy.deepcopy(model.fit(X, y)) for _ in range(2)])  # the second from where it was
            after.append(generator.randint(1 << 30, size=4).tolist())
        for mine, sklearns in zip(*fits):
            _assert_same_fit(mine, sklearns, np.float64)
        assert after[0] == after[1], shared


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("tol", [None, 1e-3])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_n_jobs_0_is_refused_in_every_fit(n_classes, tol, method):
    # scikit-learn's joblib refuses n_jobs=0 where it builds a Parallel (more than two classes);
    # fastgd refused it only where it trains classes apart (with tol), and its one pass over the
    # classes took it: refused always now (a binary fit, which has no use for it, too)
    X, y = _classification(n_classes, np.float64)
    options = dict(n_jobs=0, tol=tol, max_iter=3, random_state=0)
    kwargs = {"classes": np.unique(y)} if method == "partial_fit" else {}
    with pytest.raises(ValueError, match="n_jobs == 0 in Parallel has no meaning"):
        getattr(fastgd.SGDClassifier(**options), method)(X, y, **kwargs)
    if n_classes == 3 and method == "fit":
        with pytest.raises(ValueError, match="n_jobs == 0 in Parallel has no meaning"):
            sk.SGDClassifier(**options).fit(X, y)


def test_partial_fit_after_an_early_stopping_fit_as_scikit_learn():
    # refused on a first call; after a fit, one epoch on the call's rows but those held out,
    # the schedule going on from a t_ that counted the fit's held-out rows
    X, y = _regression(np.float64)
    options = dict(SAME, early_stopping=True, average=300)
    with pytest.raises(ValueError, match="early_stopping should be False"):
        fastgd.SGDRegressor(**options).partial_fit(X, y)
    ours, theirs = _both(fastgd.SGDRegressor(**options), sk.SGDRegressor(**options), X, y)
    ours.partial_fit(X[:30], y[:30])
    theirs.partial_fit(X[:30], y[:30])
    _assert_same_fit(ours, theirs, np.float64)
    assert ours.t_ == theirs.t_


#: scikit-learn's SGD estimators document learning_rate="pa1"/"pa2" from 1.8 on (1.6, the oldest
#: scikit-learn fastgd supports, gives other weights for them)
PASSIVE_AGGRESSIVE_IN_SGD = tuple(int(part) for part in sklearn.__version__.split(".")[:2]) >= (1, 8)


@pytest.mark.skipif(not PASSIVE_AGGRESSIVE_IN_SGD, reason="scikit-learn < 1.8 has no learning_rate='pa1' of its own")
@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("penalty", ["l2", None, "elasticnet"])
@pytest.mark.parametrize("learning_rate", ["pa1", "pa2"])
def test_passive_aggressive_steps_match_scikit_learn(learning_rate, penalty, dtype, kind):
    # the sparse rows include rows of zeros, which PA-I passes over (no penalty step, not counted
    # in its steps, counted in t_)
    options = dict(SAME, learning_rate=learning_rate, eta0=0.5, penalty=penalty, average=150)
    for n_classes in (2, 3):
        X, y = _classification(n_classes, dtype, kind)
        ours, theirs = _both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y,
                             sample_weight=np.linspace(0.5, 2, X.shape[0]))
        _assert_same_fit(ours, theirs, dtype)
        assert ours.t_ == theirs.t_
    X, y = _regression(dtype, kind)
    y += 1  # an intercept of about 1: float32's tolerance is relative to it
    options.update(loss="epsilon_insensitive", eta0=0.1)
    _assert_same_fit(*_both(fastgd.SGDRegressor(**options), sk.SGDRegressor(**options), X, y), dtype)


@pytest.mark.skipif(not PASSIVE_AGGRESSIVE_IN_SGD, reason="scikit-learn < 1.8 has no learning_rate='pa1' of its own")
@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_passive_aggressive_squared_norms_in_double(kind):
    # a float32 row whose squared norm is below float32's range is not a row of zeros
    X = np.array([[1.0, 2.0], [1e-23, 0.0], [-1.0, 0.5], [2.0, -1.0]], dtype=np.float32)
    X = sparse.csr_matrix(X) if kind == "csr" else X
    options = dict(SAME, learning_rate="pa1", eta0=1.0, penalty=None)
    _assert_same_fit(*_both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, np.array([1, 0, 0, 1])),
                     np.float32)


def test_passive_aggressive_steps_need_their_loss_and_plain_per_sample_sgd():
    X, y = _classification(2, np.float64)
    with pytest.raises(ValueError, match="'pa1' only works with loss 'hinge'"):
        fastgd.SGDClassifier(loss="perceptron", learning_rate="pa1").fit(X, y)
    with pytest.raises(ValueError, match="'pa2' only works with loss 'epsilon_insensitive'"):
        fastgd.SGDRegressor(learning_rate="pa2").fit(X, y)
    for options in (dict(optimizer="adam"), dict(batch_size=8)):
        with pytest.raises(ValueError, match=r"it needs plain SGD \(optimizer='sgd', or 'momentum' with "
                                             r"momentum=0\) and batch_size=1"):
            fastgd.SGDClassifier(learning_rate="pa1", **options).fit(X, y)


# -- from the review of session 7 ---------------------------------------------------------------------


@pytest.mark.parametrize("task", ["binary", "regression", "multiclass"])
def test_each_call_starts_the_adaptive_rate_at_eta0_as_scikit_learn(task):
    if task == "regression":
        X, y = _regression(np.float64)
        ours, theirs = fastgd.SGDRegressor, sk.SGDRegressor
    else:
        X, y = _classification(2 if task == "binary" else 3, np.float64)
        ours, theirs = fastgd.SGDClassifier, sk.SGDClassifier
    options = dict(learning_rate="adaptive", eta0=0.05, shuffle=False, random_state=0, n_iter_no_change=2, penalty=None)
    a, b = _both(ours(**options), theirs(**options), X, y)
    assert a._optimizer.param_groups[0]["lr"] < 0.05 or task == "multiclass"  # the fit lowered it
    for _ in range(2):
        a.partial_fit(X, y)
        b.partial_fit(X, y)
    _assert_same_fit(a, b, np.float64)


@pytest.mark.parametrize("task", ["regression", "multiclass"])
@pytest.mark.parametrize("average", [True, 50])
def test_early_stopping_scores_the_weights_trained_not_their_average_as_scikit_learn(task, average):
    if task == "regression":
        X, y = _regression(np.float64)
        ours, theirs = fastgd.SGDRegressor, sk.SGDRegressor
        options = dict(loss="squared_epsilon_insensitive", learning_rate="constant", eta0=0.002)
    else:
        X, y = _classification(3, np.float64)
        ours, theirs = fastgd.SGDClassifier, sk.SGDClassifier
        options = dict(learning_rate="constant", eta0=0.001)
    options.update(penalty=None, average=average, shuffle=False, random_state=0, early_stopping=True)
    a, b = _both(ours(**options), theirs(**options), X, y)
    _assert_same_fit(a, b, np.float64)


def test_weights_with_a_sum_below_zero_fit_as_scikit_learn():
    # the drop-ins' objective is the unweighted mean loss: no positive sum is needed
    X, y = _classification(2, np.float64)
    weights = np.ones(len(y))
    weights[:150] = -1.0
    options = dict(SAME, max_iter=3, learning_rate="constant", eta0=1e-3)
    _assert_same_fit(*_both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y,
                            sample_weight=weights), np.float64)
    with pytest.raises(ValueError, match="positive sum"):  # the own estimators' objective divides by it
        fastgd.LogisticRegression(max_iter=3).fit(X, y, sample_weight=weights)


@pytest.mark.parametrize("held_out_weight", [0.0, -0.5])
def test_held_out_weights_all_zero_or_below_are_refused_up_front(held_out_weight):
    # negative ones were taken: scikit-learn tests for a weight > 0
    X, y = _classification(3, np.float64)
    from sklearn.model_selection import StratifiedShuffleSplit
    _, held_out = next(StratifiedShuffleSplit(test_size=0.1, random_state=0).split(np.zeros((len(y), 1)), y))
    weights = np.ones(len(y))
    weights[held_out] = held_out_weight
    for model in (sk.SGDClassifier(early_stopping=True, random_state=0),
                  fastgd.SGDClassifier(early_stopping=True, random_state=0)):
        with pytest.raises(ValueError, match="validation set are all zero|held-out rows .* are all zero"):
            model.fit(X, y, sample_weight=weights)
    assert not hasattr(model, "coef_")  # fastgd's, unchanged (scikit-learn's is left half fitted)


@pytest.mark.parametrize("classes", [[0, 1, np.nan], [0, 1, np.inf], {0, 1}, 2, [None, 1], [0.5, 1.5], ["a", "b", 1],
                                     [0, 1, "x"]])
def test_classes_scikit_learn_refuses_are_refused(classes):
    # NaN or inf classes were taken (a class no label can match; with NaN the next call's
    # classes were "not the same"); a set or a number got a message about one class
    X, y = _classification(2, np.float64)
    with pytest.raises(ValueError):
        sk.SGDClassifier().partial_fit(X, y, classes=classes)
    for model in (fastgd.SGDClassifier(), fastgd.LogisticRegression()):
        with pytest.raises(ValueError, match="classes|array-like"):
            model.partial_fit(X, y if not isinstance(classes, list) or not any(isinstance(c, str) for c in classes)
                              else np.where(y == 1, "a", "b"), classes=classes)
        assert not hasattr(model, "classes_")


@pytest.mark.parametrize("method", ["fit", "predict", "score"])
def test_a_one_dimensional_sparse_x_is_refused_as_scikit_learn_refuses_it(method):
    X, y = _classification(2, np.float64)
    try:  # SciPy before 1.14 cannot make a 1-D CSR array
        row = sparse.csr_array(np.ones(X.shape[1]))
    except ValueError:
        row = None
    if row is None or row.ndim != 1:
        pytest.skip("this SciPy has no 1-D CSR arrays")
    for model in (sk.SGDClassifier(max_iter=2).fit(X, y), fastgd.SGDClassifier(max_iter=2).fit(X, y)):
        with pytest.raises(ValueError, match="Expected 2D input"):
            getattr(model, method)(*((row,) if method == "predict" else (row, y[:1])))


def test_float32_rows_whose_squares_overflow_float32_fit_as_sparse_ones():
    # the kept norms sum x . x in double, as scikit-learn (and the sparse epoch) do
    X, y = _classification(2, np.float32)
    X = X * np.float32(1e19)  # x . x beyond float32's largest
    options = dict(SAME, learning_rate="constant", eta0=1e-30)
    dense = fastgd.SGDClassifier(**options).fit(X, y)
    csr = fastgd.SGDClassifier(**options).fit(sparse.csr_matrix(X), y)
    theirs = sk.SGDClassifier(**options).fit(X, y)
    np.testing.assert_allclose(dense.coef_, csr.coef_, rtol=1e-5)
    _assert_same_fit(dense, theirs, np.float32)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_huge_finite_weights_train_on_without_an_overflow_warning(optimizer):
    # no penalty: weights near 1e200 keep a finite objective, but the check that they are finite
    # (a sum of squares) overflowed and warned "overflow encountered in matmul"
    X, y = _classification(2, np.float64)
    options = dict(SAME, penalty=None, learning_rate="constant", eta0=1e200, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = fastgd.SGDClassifier(**options, optimizer=optimizer, batch_size=1 if optimizer == "sgd" else 4).fit(X, y)
    assert np.isfinite(ours.coef_).all() and np.abs(ours.coef_).max() > 1e160
    if optimizer == "sgd":
        _assert_same_fit(ours, sk.SGDClassifier(**options).fit(X, y), np.float64)


@pytest.mark.parametrize("optimizer", ["adam", "adagrad", "rmsprop"])
def test_eps_0_dividing_0_by_0_is_named_as_the_cause(optimizer):
    # a feature of zeros: its gradient and running averages stay 0, and eps=0 (taken, as torch
    # takes it) makes the step 0/0; the message blamed the learning rate or the features' scale
    X, y = _classification(2, np.float64)
    X[:, 0] = 0
    model = fastgd.SGDClassifier(optimizer=optimizer, eps=0.0, batch_size=4)
    with pytest.raises(ValueError, match=r"With eps=0 the step divides 0 by 0 .*use eps > 0\. Else try a smaller"):
        model.fit(X, y)
    assert not hasattr(model, "coef_")
    fastgd.SGDClassifier(optimizer=optimizer, eps=1e-8, batch_size=4).fit(X, y)


def test_a_large_power_t_and_confident_probabilities_raise_no_floating_point_error():
    X, y = _classification(2, np.float64)
    options = dict(SAME, learning_rate="invscaling", eta0=0.1, power_t=200.0, loss="log_loss")
    with np.errstate(all="raise"):
        ours, theirs = _both(fastgd.SGDClassifier(**options), sk.SGDClassifier(**options), X, y)
        np.testing.assert_allclose(ours.predict_proba(X * 1e3), theirs.predict_proba(X * 1e3), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ours.predict_log_proba(X), theirs.predict_log_proba(X), rtol=1e-12)
    _assert_same_fit(ours, theirs, np.float64)


def test_warm_start_with_other_classes_names_the_kept_weights():
    X, y3 = _classification(3, np.float64)
    _, y4 = _classification(4, np.float64)
    model = fastgd.SGDClassifier(warm_start=True, max_iter=3, tol=None).fit(X, y3)
    before = model.coef_.copy()
    with pytest.raises(ValueError, match=r"coef_ \(kept by warm_start\) has shape \(3, 6\); expected \(4, 6\)"):
        model.fit(X, y4)
    np.testing.assert_array_equal(model.coef_, before)


def test_a_second_call_while_one_runs_is_refused_and_changes_nothing():
    X, y = _classification(3, np.float64)
    model = fastgd.SGDClassifier(max_iter=3, tol=None, random_state=0)

    class Rows:
        """X as an array-like whose conversion, inside the fit, starts another call (as another
        thread would)."""

        def __array__(self, dtype=None, copy=None):
            model.partial_fit(X, y, classes=[0, 1, 2])
            return X if dtype is None else X.astype(dtype)

    with pytest.raises(RuntimeError, match=r"partial_fit refused: a fit of this SGDClassifier is running already "
                                           r"\(within it, in this thread\)"):
        model.fit(Rows(), y)
    assert not hasattr(model, "coef_")
    twin = fastgd.SGDClassifier(max_iter=3, tol=None, random_state=0)
    np.testing.assert_array_equal(model.fit(X, y).coef_, twin.fit(X, y).coef_)
    pickle.loads(pickle.dumps(model)).partial_fit(X, y)  # a copy has a lock of its own


@pytest.mark.parametrize("bad", ["coef_init", "intercept_init"])
def test_non_finite_initial_weights_are_refused_as_such(bad):
    X, y = _classification(2, np.float64)
    init = {"coef_init": np.zeros(6), "intercept_init": np.zeros(1)}
    init[bad][0] = np.nan
    model = fastgd.SGDClassifier(max_iter=2, tol=None)
    with pytest.raises(ValueError, match=f"{bad} holds NaN or inf"):
        model.fit(X, y, **init)
    assert not hasattr(model, "coef_")


@pytest.mark.parametrize("classes, shape", [(3, (1, 3)), (3, (3, 1)), (2, (1, 1)), (2, (2,))])
def test_an_intercept_init_of_another_shape_is_refused_as_scikit_learn_refuses_it(classes, shape):
    # a (1, k) or (k, 1) intercept_init was taken for its k values; scikit-learn's estimators
    # want (k,) (or a scalar for one output), and refuse it: the oracle
    X, y = _classification(classes, np.float64)
    coef = np.zeros(X.shape[1]) if classes == 2 else np.zeros((classes, X.shape[1]))
    with pytest.raises(ValueError, match="does not match dataset"):
        sk.SGDClassifier(max_iter=2, tol=None).fit(X, y, coef_init=coef, intercept_init=np.zeros(shape))
    model = fastgd.SGDClassifier(max_iter=2, tol=None)
    with pytest.raises(ValueError, match=rf"intercept_init has shape \({shape[0]}, ?{shape[1] if len(shape) > 1 else ''}\)"):
        model.fit(X, y, coef_init=coef, intercept_init=np.zeros(shape))
    assert not hasattr(model, "coef_")
    model.fit(X, y, coef_init=coef, intercept_init=np.zeros(classes if classes > 2 else 1))


def test_classes_apart_that_diverge_warn_once():
    X, y = _classification(3, np.float64)
    # (a negative power_t, which scikit-learn 1.10 refuses, made the rates grow here before)
    options = dict(loss="squared_hinge", learning_rate="constant", eta0=0.3, shuffle=False, random_state=0)

    def convergence_warnings(model, labels):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X, labels)
        return [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]

    said = convergence_warnings(fastgd.SGDClassifier(**options), y)
    # oracle: each class's own fit, one vs all, warns alone (the same epochs, apart)
    alone = [convergence_warnings(fastgd.SGDClassifier(**options), (y == label).astype(int)) for label in range(3)]
    diverged = [label for label, warned in enumerate(alone) if warned]
    assert diverged and len(said) == 1
    assert said[0].startswith(f"{len(diverged)} of the 3 classes (one vs all) diverged; class "
                              f"{diverged[0]!r}: {alone[diverged[0]][0]}")


def test_an_interrupted_classes_apart_fit_ends_its_threads(monkeypatch):
    """Ctrl-C (here: KeyboardInterrupt from joblib's Parallel, as the calling thread gets it) while
    the classes train on threads: the classes end at their next epoch, the call raises once they
    have, and the model is unchanged."""
    import time

    from fastgd import linear_model

    started = []

    class Interrupted:
        def __init__(self, **options):
            pass

        def __call__(self, tasks):
            for function, args, kwargs in tasks:  # (the function as delayed() wrapped it, unwrapped)
                started.append(threading.Thread(target=function.function, args=args, kwargs=kwargs, daemon=True))
                started[-1].start()
            time.sleep(0.2)  # the classes are training
            raise KeyboardInterrupt

    monkeypatch.setattr(linear_model, "Parallel", Interrupted)
    epoch = fastgd.SGDClassifier._epoch

    def slow_epoch(self, *args, **kwargs):
        time.sleep(0.05)
        return epoch(self, *args, **kwargs)

    monkeypatch.setattr(fastgd.SGDClassifier, "_epoch", slow_epoch)
    X, y = _classification(3, np.float64)
    model = fastgd.SGDClassifier(tol=0.0, n_iter_no_change=10**9, max_iter=10**6, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    # the call waited for them: none goes on writing rows that the next call trains (and without
    # the stop, each would train a million epochs)
    assert len(started) == 3 and not any(thread.is_alive() for thread in started)
    assert not hasattr(model, "coef_")


def test_a_fit_interrupted_while_waiting_for_a_read_leaves_the_estimator_usable():
    # a fit waits for the reads under way in other threads; a Ctrl-C in that wait left the
    # estimator marked as training for good: every later fit raised, every read hung
    X, y = _regression(np.float64)
    model = fastgd.SGDRegressor(**SAME).fit(X, y)
    calls = model._calls()

    class Interrupted(type(calls._condition)):
        def wait(self, timeout=None):
            raise KeyboardInterrupt

    reader = threading.Thread(target=calls.start_reading)  # a read under way in another thread
    reader.start()
    reader.join()
    ident = reader.ident
    calls._condition = Interrupted()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    calls._condition = threading.Condition()
    calls._readers.pop(ident)  # that read ends
    model.fit(X, y)
    done = []
    other = threading.Thread(target=lambda: done.append(model.predict(X[:2])))
    other.start()
    other.join(10)
    assert done and np.array_equal(done[0], model.predict(X[:2]))


def test_predictions_get_through_between_the_calls_of_a_training_loop():
    # the training thread took its next call before a woken reader could read: in a loop of
    # partial_fit calls one prediction got through in 10 s (a liveness check, not a timing:
    # each call's end lets the reads that waited in)
    X, y = _regression(np.float64)
    X, y = np.tile(X, (20, 1)), np.tile(y, 20)
    model = fastgd.SGDRegressor(random_state=0).partial_fit(X, y)
    done, reads, starved = threading.Event(), [], []

    def train():
        deadline = time.monotonic() + 20
        while not done.is_set():
            if time.monotonic() > deadline:  # the reads did not get in: stop, and fail below
                starved.append(True)
                return
            model.partial_fit(X, y)

    trainer = threading.Thread(target=train)
    trainer.start()
    try:
        for _ in range(20):
            reads.append(model.predict(X[:3]))
    finally:
        done.set()
        trainer.join()
    assert not starved


@pytest.mark.parametrize("name", ["SGDClassifier", "SGDRegressor"])
def test_a_partial_fit_numbers_its_epoch_as_scikit_learn(name, capsys):
    # each call's epochs count from 1 (n_iter_ is the last call's), in what verbose prints and
    # in the divergence message; the count went on from the call before (epoch 5 after a fit of 3)
    make = make_classification if name == "SGDClassifier" else make_regression
    X, y = make(n_samples=60, n_features=4, random_state=0)
    epochs = {}
    for module in (sk, fastgd):
        model = getattr(module, name)(max_iter=3, tol=None, random_state=0, verbose=1).fit(X, y)
        model.partial_fit(X, y)
        capsys.readouterr()
        model.partial_fit(X, y)
        printed = capsys.readouterr().out
        epochs[module] = [line.split()[2].rstrip(":") for line in printed.splitlines() if line.startswith("-- Epoch")]
        assert model.n_iter_ == 1
    assert epochs[fastgd] == epochs[sk] == ["1"]
    model.set_params(verbose=0, learning_rate="constant", eta0=1e200)
    with pytest.raises(ValueError, match="non-finite in epoch 1 "):
        model.partial_fit(X * 1e200, y)
    assert model.n_iter_ == 1


@pytest.mark.parametrize("name, good, bad", [("alpha", 1e-4, -5.0), ("loss", "squared_error", "bogus")])
def test_parameters_set_by_another_thread_are_checked_before_training_with_them(name, good, bad):
    # a thread sets a parameter bad and good again and again while fits run: each call is
    # refused with scikit-learn's message or trains with the good value (the check ran before
    # the call took the estimator, and a set_params in between was trained with unchecked; and
    # a bad-good-bad change around the check left the bad value remembered as checked, so that
    # later calls, with no other thread, trained with it)
    X, y = np.random.default_rng(0).standard_normal((30, 3)), np.arange(30.0) / 30
    model = fastgd.SGDRegressor(max_iter=2, tol=None, random_state=0)
    expected = clone(model).fit(X, y).coef_
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            model.set_params(**{name: bad})
            model.set_params(**{name: good})

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        deadline, trained = time.monotonic() + 1.5, 0
        while time.monotonic() < deadline:
            try:
                np.testing.assert_array_equal(model.fit(X, y).coef_, expected)
                trained += 1
            except ValueError as error:
                assert f"The '{name}' parameter of SGDRegressor must be" in str(error)
    finally:
        stop.set()
        flipper.join()
        sys.setswitchinterval(interval)
    assert trained > 0
    model.set_params(**{name: bad})
    with pytest.raises(ValueError, match=f"The '{name}' parameter of SGDRegressor must be"):
        model.fit(X, y)


@pytest.mark.parametrize("name", ["SGDClassifier", "SGDRegressor"])
def test_a_negative_power_t_warns_as_scikit_learn(name):
    """scikit-learn 1.8 deprecates a negative power_t: fit warns (FutureWarning) once the model
    is fitted; partial_fit says nothing.  Older scikit-learn accepts it silently, and 1.10 refuses it."""
    X, y = _classification(2, np.float64) if name == "SGDClassifier" else _regression(np.float64)
    options = dict(SAME, learning_rate="invscaling", eta0=1e-3, power_t=-0.1)

    def future_warnings(call):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        return [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]

    ours, theirs = getattr(fastgd, name)(**options), getattr(sk, name)(**options)
    try:
        theirs.fit(X, y)
    except ValueError as refused:  # scikit-learn 1.10 and later (as its warning says): refused, as there
        assert "power_t" in str(refused)
        for call in ("fit", "partial_fit"):
            with pytest.raises(type(refused), match=r"power_t"):
                getattr(ours, call)(X, y, **({"classes": np.unique(y)} if call == "partial_fit" and
                                              name == "SGDClassifier" else {}))
            assert not hasattr(ours, "coef_")
        return
    theirs = getattr(sk, name)(**options)
    said = future_warnings(lambda: ours.fit(X, y))
    assert len(said) == 1 and "power_t" in said[0] and hasattr(ours, "coef_")
    if (expected := future_warnings(lambda: theirs.fit(X, y))):
        assert said == expected
    partial = {"classes": np.unique(y)} if name == "SGDClassifier" else {}
    assert future_warnings(lambda: getattr(fastgd, name)(**options).partial_fit(X, y, **partial)) == []
    assert future_warnings(lambda: theirs.partial_fit(X, y)) == []
    # made an error, the warning comes before any training (scikit-learn's after, the model fitted)
    fresh = getattr(fastgd, name)(**options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        with pytest.raises(FutureWarning, match="power_t"):
            fresh.fit(X, y)
    assert not hasattr(fresh, "coef_")


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
def test_float32_objective_keeps_the_norms_of_steps_whose_float32_gradient_underflows(penalty, kind):
    # scikit-learn computes d(loss) in double: a row whose log-loss gradient underflows float32
    # (margins past ~104) still steps there, and its weight vector takes up that row's norms;
    # the float32 objective (loss_curve_, and so the epoch tol stops at) must keep them too
    X = np.array([[10.0, 0.0], [0.0, -10.0]] * 5)
    y = np.array([1, 0] * 5)
    options = dict(loss="log_loss", alpha=0.1, learning_rate="constant", eta0=0.1, max_iter=2, tol=None,
                   shuffle=False, penalty=penalty)
    curves = []
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype) if kind == "dense" else sparse.csr_matrix(X.astype(dtype))
        curves.append(fastgd.SGDClassifier(**options).fit(Xd, y, coef_init=[[20.0, -20.0]]).loss_curve_)
    np.testing.assert_allclose(curves[1], curves[0], rtol=1e-6)


@pytest.mark.skipif(not OBJECTIVE_IN_SGD, reason="scikit-learn < 1.8 prints its loss alone, not its objective")
@pytest.mark.parametrize("penalty", ["l2", "l1"])
@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_objective_skips_the_rows_whose_update_underflows_double_as_scikit_learn(kind, penalty, capsys):
    # the other side of the test above: where -eta * d(loss) underflows double (a margin of ~743
    # with eta 0.01), scikit-learn takes no step and its weight vector keeps its norms
    X = np.array([[0.0, 1.0], [742.5, 0.0]] * 3)
    y = np.array([1, 1, 1, 1, 1, 0])
    X[5] = [-1.0, 0.0]
    Xd = X if kind == "dense" else sparse.csr_matrix(X)
    options = dict(loss="log_loss", alpha=1e-4, learning_rate="constant", eta0=0.01, max_iter=2, tol=None,
                   shuffle=False, penalty=penalty, fit_intercept=False)
    ours = fastgd.SGDClassifier(**options).fit(Xd, y, coef_init=[[1.0, 5.0]])
    capsys.readouterr()
    sk.SGDClassifier(verbose=1, **options).fit(Xd, y, coef_init=np.array([[1.0, 5.0]]))
    theirs = [float(line.split("Objective:")[1]) for line in capsys.readouterr().out.splitlines() if "Objective" in line]
    np.testing.assert_allclose(ours.loss_curve_, theirs, rtol=0, atol=1e-6)  # (printed to 6 decimals)
