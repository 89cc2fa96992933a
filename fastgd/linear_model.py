"""Linear and logistic regression trained by mini-batch gradient descent, as scikit-learn estimators.

The training driver (validation, shuffling, learning-rate schedules,
convergence and early stopping) is here and runs once per epoch; the epoch
itself is ``_epoch``: a compiled loop that never returns to Python inside an
epoch here, and the textbook NumPy loop in ``fastgd.reference``.  Both update
the same flat parameter vector (weights row by row, then intercepts) with a
fastgd optimizer's state, so they give the same model for the same seed.
"""
import math
import types
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight, check_array, check_is_fitted, check_random_state, validate_data,
)

from . import optim

# optimizer name -> (optimizer class, the estimator parameters it takes, fixed options)
OPTIMIZERS = {
    "sgd": (optim.SGD, (), {}),
    "momentum": (optim.SGD, ("momentum", "dampening"), {}),
    "nesterov": (optim.SGD, ("momentum",), {"nesterov": True}),
    "rmsprop": (optim.RMSprop, ("eps", "centered"), {}),
    "adam": (optim.Adam, ("betas", "eps", "amsgrad"), {}),
    "adamw": (optim.AdamW, ("betas", "eps", "amsgrad", "weight_decay"), {}),
    "adagrad": (optim.Adagrad, ("eps", "lr_decay", "initial_accumulator_value"), {}),
    "adamax": (optim.Adamax, ("betas", "eps"), {}),
    "adadelta": (optim.Adadelta, ("eps",), {}),
    "lion": (optim.Lion, ("betas",), {}),
    "radam": (optim.RAdam, ("betas", "eps"), {}),
    "nadam": (optim.NAdam, ("betas", "eps"), {}),
}
SCHEDULES = ("constant", "invscaling", "exponential", "step", "cosine", "adaptive")


class _BaseGD(BaseEstimator):
    """What the two estimators share: parameters, the training driver, the linear scores."""

    def __init_subclass__(cls, **kwargs):
        # each estimator's __init__ under its own name, so that a wrong keyword's TypeError names it
        super().__init_subclass__(**kwargs)
        if "__init__" not in vars(cls):
            shared, qualname = _BaseGD.__init__, f"{cls.__qualname__}.__init__"
            code = shared.__code__
            if hasattr(code, "co_qualname"):  # Python 3.11 on: the name a TypeError gives
                code = code.replace(co_qualname=qualname)
            init = types.FunctionType(code, shared.__globals__, "__init__", shared.__defaults__, shared.__closure__)
            init.__kwdefaults__, init.__doc__ = shared.__kwdefaults__, shared.__doc__
            init.__qualname__ = qualname
            cls.__init__ = init

    _parameter_constraints = {
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "shuffle": ["boolean"],
        "lr_schedule": [StrOptions(set(SCHEDULES))],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, 1, closed="right")],
        "step_size": [Interval(Integral, 1, None, closed="left")],
        "eta_min": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "momentum": [Interval(Real, 0, None, closed="left")],
        "dampening": [Interval(Real, 0, None, closed="left")],
        "betas": [tuple, list, None],
        "eps": [Interval(Real, 0, None, closed="left"), None],
        "amsgrad": ["boolean"],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "rho": [Interval(Real, 0, 1, closed="left")],
        "centered": ["boolean"],
        "lr_decay": [Interval(Real, 0, None, closed="left")],
        "initial_accumulator_value": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, *, optimizer="sgd", learning_rate=0.01, batch_size=32, max_iter=100, tol=1e-4,
                 n_iter_no_change=5, alpha=0.0, fit_intercept=True, shuffle=True, lr_schedule="constant",
                 power_t=0.25, gamma=0.9, step_size=10, eta_min=0.0, early_stopping=False,
                 validation_fraction=0.1, random_state=None, warm_start=False, verbose=0,
                 momentum=0.9, dampening=0.0, betas=None, eps=None, amsgrad=False,
                 weight_decay=1e-2, rho=0.99, centered=False, lr_decay=0.0, initial_accumulator_value=0.0):
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.shuffle = shuffle
        self.lr_schedule = lr_schedule
        self.power_t = power_t
        self.gamma = gamma
        self.step_size = step_size
        self.eta_min = eta_min
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.momentum = momentum
        self.dampening = dampening
        self.betas = betas
        self.eps = eps
        self.amsgrad = amsgrad
        self.weight_decay = weight_decay
        self.rho = rho
        self.centered = centered
        self.lr_decay = lr_decay
        self.initial_accumulator_value = initial_accumulator_value

    # -- what the reference overrides -------------------------------------

    def _optimizer_module(self):
        return optim

    def _epoch(self, X, targets, sample_weight, order, batch_size, rates):
        """One epoch in the compiled loop, stepping the optimizer through its engine; returns the
        weighted loss sum (NaN if it diverged) and the number of batches stepped."""
        result = np.zeros(2)
        in_order = self._in_order(X, order, batch_size)

        def epoch(plan, groups, grads, n_threads, checked):
            return optim.engine.epoch(
                plan, groups, grads, n_threads, checked, X, targets, sample_weight, order, batch_size, self._loss,
                float(self.alpha), self.fit_intercept, rates, in_order, result)

        self._optimizer._step_with(epoch, [self._grad])
        return float(result[0]), int(result[1])

    # -- training driver --------------------------------------------------------

    def _optimizer_options(self):
        """The options the estimator's parameters give its optimizer."""
        cls, names, fixed = OPTIMIZERS[self.optimizer]
        options = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if "betas" in options:
            options["betas"] = tuple(options["betas"])  # a list from a config file, say
        if cls is optim.RMSprop:
            options["alpha"] = self.rho
        return {"lr": float(self.learning_rate), **options, **fixed}

    def _new_optimizer(self):
        cls = getattr(self._optimizer_module(), OPTIMIZERS[self.optimizer][0].__name__)
        self._optimizer_made = (self.optimizer, self._optimizer_options())
        return cls([self._theta], **self._optimizer_made[1])

    def _follow_parameters(self):
        """What partial_fit changes when parameters were set since the last call: another
        optimizer starts with a new state (the weights and the schedule's step count go on);
        changed options (the learning rate included) are set in the optimizer's param group."""
        made_for, options_then = self._optimizer_made
        if self.optimizer != made_for:
            self._optimizer = self._new_optimizer()
            return
        options = self._optimizer_options()
        group = self._optimizer.param_groups[0]
        for name, value in options.items():
            if options_then.get(name) != value:
                group[name] = value
        self._optimizer_made = (made_for, options)

    def _initialize(self, n_features, n_outputs, dtype):
        self._theta = np.zeros(n_outputs * (n_features + 1), dtype=dtype)
        self._grad = np.zeros_like(self._theta)
        self._t = np.zeros(1, dtype=np.int64)
        self._optimizer = self._new_optimizer()
        self.n_iter_ = 0
        self.loss_curve_ = []

    def _publish(self):
        """coef_ and intercept_ as views of the flat parameter vector."""
        k = self._n_outputs
        d = self._theta.size // k - 1
        coef = self._theta[: k * d].reshape(k, d)
        self.coef_ = coef[0] if self._coef_1d else coef
        self.intercept_ = self._theta[k * d:]

    def _objective(self, loss_sum, weight_sum):
        k, d = self._n_outputs, self._theta.size // self._n_outputs - 1
        coef = self._theta[: k * d].astype(np.float64)  # the penalty of float32 weights does not overflow
        return loss_sum / weight_sum + 0.5 * self.alpha * float(coef @ coef)

    def _in_order(self, X, order, batch_size):
        """Whether an epoch over the rows `order` of X takes all of X in order: every row, and
        without shuffling or in one full batch (whose gradient the order does not change)."""
        return order.size == X.shape[0] and (not self.shuffle or batch_size >= order.size)

    # The learning-rate schedules, for the compiled loop and the reference alike: per epoch
    # (_learning_rate), or per batch (_batch_rates); "adaptive" is the driver's.
    def _learning_rate(self, epoch):
        eta0, schedule = float(self.learning_rate), self.lr_schedule
        if schedule == "exponential":
            return eta0 * self.gamma ** epoch
        if schedule == "step":
            return eta0 * self.gamma ** (epoch // self.step_size)
        if schedule == "cosine":
            return self.eta_min + (eta0 - self.eta_min) * (1 + math.cos(math.pi * epoch / self.max_iter)) / 2
        return None  # constant, adaptive (set by the driver) and invscaling (per batch)

    def _batch_rates(self, n_batches):
        """Each batch's learning rate in the next epoch, or None: the param group's lr throughout.
        invscaling: eta0 / t ** power_t, t counting the steps of the whole fit from 1."""
        if self.lr_schedule != "invscaling":
            return None
        return float(self.learning_rate) / (self._t[0] + np.arange(1, n_batches + 1)) ** float(self.power_t)

    def _run_epochs(self, X, targets, sample_weight, n_epochs, rows=None, validation=None):
        """Train for up to n_epochs on the rows of X (all of them, or those listed in `rows`: X is
        never copied); validation: (rows, targets, sample_weight) held out for early stopping."""
        n = X.shape[0] if rows is None else rows.size
        batch_size = n if self.batch_size is None else min(self.batch_size, n)
        group = self._optimizer.param_groups[0]
        if sample_weight is None:
            weight_sum = float(n)
        else:
            weight_sum = float((sample_weight if rows is None else sample_weight[rows]).sum(dtype=np.float64))
        if not weight_sum > 0:
            raise ValueError(f"sample_weight sums to {weight_sum:g}{' over the rows trained on' if rows is not None else ''}; "
                             "the objective is the weighted mean loss, which needs weights with a positive sum")
        best, no_improvement = math.inf, 0
        # the rows of each epoch, shuffled anew each epoch unless taken in order
        order = np.arange(n, dtype=np.intp) if rows is None else rows.astype(np.intp)
        in_order = self._in_order(X, order, batch_size)
        shuffled = None if rows is None else np.arange(n, dtype=np.intp)  # a permutation of the listed rows
        check = self.tol is not None
        for epoch in range(n_epochs):
            lr = self._learning_rate(self.n_iter_)
            if lr is not None:
                group["lr"] = lr
            if self.shuffle and rows is not None:
                optim.engine.shuffle(shuffled, self._shuffle_bits)
                np.take(rows, shuffled, out=order)
            elif not in_order:
                optim.engine.shuffle(order, self._shuffle_bits)
            rates = self._batch_rates(-(-n // batch_size))
            loss_sum, batches = self._epoch(X, targets, sample_weight, order, batch_size, rates)
            self._t[0] += batches
            if rates is not None and batches:
                group["lr"] = float(rates[batches - 1])
            self.n_iter_ += 1
            objective = self._objective(loss_sum, weight_sum)
            if not math.isfinite(objective) or not np.isfinite(self._theta).all():
                # X was not checked up front: a non-finite entry makes its row's loss non-finite
                check_array(X, dtype=None, input_name="X", estimator=self)
                raise _Diverged(
                    f"the objective became non-finite in epoch {self.n_iter_} with optimizer={self.optimizer!r} "
                    f"and learning rate {group['lr']:g} (in {self._theta.dtype}); the model is left as it was "
                    "before this call. Try a smaller learning_rate, or scale the features (e.g. StandardScaler)."
                )
            self.loss_curve_.append(objective)
            if validation is not None:
                self._publish()
                score = self._validation_score(X, *validation)
                self.validation_scores_.append(score)
                current = -score
            else:
                current = objective
            if self.verbose:
                print(f"-- Epoch {self.n_iter_}: objective {objective:.6g}, lr {group['lr']:.3g}")
            if not check:
                continue
            if current > best - self.tol:
                no_improvement += 1
            else:
                no_improvement = 0
            best = min(best, current)
            if no_improvement >= self.n_iter_no_change:
                if self.lr_schedule == "adaptive" and group["lr"] > 1e-6:
                    group["lr"] /= 5
                    no_improvement = 0
                else:
                    self._warn_if_rising()
                    if self.verbose:
                        print(f"Convergence after {self.n_iter_} epochs")
                    break
        else:
            if check and n_epochs == self.max_iter:  # fit (partial_fit runs one epoch a call)
                warnings.warn(
                    f"Maximum number of epochs (max_iter={self.max_iter}) reached before the objective stopped "
                    f"improving by tol={self.tol:g}; consider increasing max_iter to improve the fit.",
                    ConvergenceWarning)
        self._publish()

    #: how many times its best the objective may end, when the fit stops for want of improvement,
    #: before that is taken for divergence (if it also ends above its first epoch's)
    _RISE = 10.0

    def _warn_if_rising(self):
        best, last = min(self.loss_curve_), self.loss_curve_[-1]
        if last > max(self._RISE * best, self.loss_curve_[0]):
            warnings.warn(
                f"The fit stopped in epoch {self.n_iter_} with an objective of {last:.6g}, far above its best "
                f"({best:.6g}): it diverged. Try a smaller learning_rate, or scale the features "
                "(e.g. StandardScaler).", ConvergenceWarning)

    #: rows predicted at a time when scoring held-out rows of X
    _SCORE_CHUNK = 1 << 14

    def _validation_score(self, X, rows, y, sample_weight):
        """score() of the held-out rows of X, taken a chunk at a time (X is never copied whole)."""
        predicted = np.concatenate([self.predict(X[rows[start:start + self._SCORE_CHUNK]])
                                    for start in range(0, rows.size, self._SCORE_CHUNK)])
        metric = accuracy_score if isinstance(self, ClassifierMixin) else r2_score
        return float(metric(y, predicted, sample_weight=sample_weight))

    def _prepare(self, X, y, sample_weight, reset):
        # X's finite check costs a pass over X; without early stopping the first epoch makes it
        # instead (a NaN or inf in a row makes that row's loss non-finite: see _run_epochs)
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], order="C", reset=reset,
                             y_numeric=not isinstance(self, ClassifierMixin),
                             multi_output=not isinstance(self, ClassifierMixin),
                             ensure_all_finite=self.early_stopping)
        if X.shape[0] == 0:
            raise ValueError("X has no samples; fitting needs at least one")
        sample_weight = None if sample_weight is None else _check_sample_weight(sample_weight, X, dtype=X.dtype)
        return X, y, sample_weight

    def _fit(self, X, y, sample_weight, n_epochs, reset, classes=None):
        """Train; a call that fails (divergence included) leaves the estimator as it was."""
        before = _Snapshot(self)
        try:
            return self._fit_unguarded(X, y, sample_weight, n_epochs, reset, classes)
        except BaseException:
            before.restore()
            raise

    def _fit_unguarded(self, X, y, sample_weight, n_epochs, reset, classes):
        X, y, sample_weight = self._prepare(X, y, sample_weight, reset)
        if not reset:  # partial_fit goes on in the model's dtype
            X = X.astype(self._theta.dtype, copy=False)
            sample_weight = None if sample_weight is None else sample_weight.astype(X.dtype, copy=False)
        targets = np.ascontiguousarray(self._targets(y, classes, reset), dtype=X.dtype)
        if not reset:
            self._follow_parameters()
        else:
            self._rng = check_random_state(self.random_state)
            # the epochs' shuffles come from a generator of their own, seeded from random_state
            self._shuffle_bits = np.random.PCG64(self._rng.randint(np.iinfo(np.int32).max))
            size = self._n_outputs * (X.shape[1] + 1)
            warm = (self.warm_start and hasattr(self, "_theta") and self._theta.size == size
                    and self._theta.dtype == X.dtype)
            if warm:  # keep the weights, start a new optimizer
                self._optimizer = self._new_optimizer()
                self._t[...] = 0
                self.n_iter_, self.loss_curve_ = 0, []
            else:
                self._initialize(X.shape[1], self._n_outputs, X.dtype)
        self.validation_scores_ = [] if self.early_stopping else None
        train = validation = None
        if self.early_stopping and reset:  # rows held out by index: X is not copied
            stratify = targets if isinstance(self, ClassifierMixin) else None
            train, val = train_test_split(np.arange(X.shape[0]), test_size=self.validation_fraction,
                                          random_state=self._rng, stratify=stratify)
            validation = (val, y[val], None if sample_weight is None else sample_weight[val])
        self._run_epochs(X, targets, sample_weight, n_epochs, train, validation)
        return self

    def fit(self, X, y, sample_weight=None):
        """Train for up to max_iter epochs (fewer if it converges), from zero weights unless warm_start."""
        self._validate_params()
        return self._fit(X, y, sample_weight, self.max_iter, reset=True)

    def _scores(self, X):
        """The linear scores X @ coef_.T + intercept_."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        k = self._n_outputs
        coef = self.coef_.reshape(k, -1)
        scores = X @ coef.T.astype(X.dtype, copy=False) + self.intercept_.astype(X.dtype, copy=False)
        return scores[:, 0] if (self._coef_1d or self._loss == "log") else scores

    def __setstate__(self, state):
        # coef_ and intercept_ are views of the flat parameter vector the optimizer updates, which a
        # pickle (or deepcopy) stores apart: make them views again, so that the copy trains from the
        # coef_ it shows, as the original does
        super().__setstate__(state)
        if hasattr(self, "_theta") and hasattr(self, "coef_"):
            self._publish()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.target_tags.multi_output = not isinstance(self, ClassifierMixin)
        return tags


def _check_one_label_type(labels, name):
    """Labels must be all strings or all numbers (np.unique cannot order a mix)."""
    if labels is None:
        return
    labels = np.asarray(labels)
    if labels.dtype == object:
        kinds = {"string" if isinstance(label, str) else "number" for label in labels.ravel()}
        if len(kinds) > 1:
            raise ValueError(f"{name} mixes string and number labels; use labels of one type "
                             "(e.g. all strings: y.astype(str))")


class _Diverged(ValueError):
    """The objective became non-finite: the call fails (and changes nothing)."""


class _Snapshot:
    """An estimator's attributes, with copies of the contents of its arrays, lists, optimizer
    and random generators: what a failed call puts back."""

    def __init__(self, model):
        self.model = model
        self.attributes = dict(vars(model))
        self.arrays = {k: v.copy() for k, v in self.attributes.items() if isinstance(v, np.ndarray)}
        self.lists = {k: list(v) for k, v in self.attributes.items() if isinstance(v, list)}
        optimizer = self.attributes.get("_optimizer")
        self.optimizer_state = None if optimizer is None else optimizer.state_dict()
        bits = self.attributes.get("_shuffle_bits")
        self.bits_state = None if bits is None else bits.state
        # a shared generator the call may draw from: NumPy's global one (random_state=None)
        # or the user's RandomState; an int seeds a generator of the call's own
        seed = model.random_state
        self.generator = None if isinstance(seed, Integral) else check_random_state(seed)
        self.generator_state = None if self.generator is None else self.generator.get_state()

    def restore(self):
        vars(self.model).clear()
        vars(self.model).update(self.attributes)
        for name, array in self.arrays.items():
            self.attributes[name][...] = array
        for name, items in self.lists.items():
            self.attributes[name][:] = items
        if self.optimizer_state is not None:
            self.attributes["_optimizer"].load_state_dict(self.optimizer_state)
        if self.bits_state is not None:
            self.attributes["_shuffle_bits"].state = self.bits_state
        if self.generator is not None:
            self.generator.set_state(self.generator_state)


class LinearRegression(RegressorMixin, _BaseGD):
    """Least squares (mean squared error / 2 + alpha/2 ||coef||^2) by mini-batch gradient descent.

    ``batch_size=1`` is stochastic gradient descent, ``None`` full-batch
    gradient descent; the optimizers are fastgd's (see ``optimizer``).
    """

    _loss = "squared"

    def _targets(self, y, classes, reset):
        if y.ndim > 2:
            raise ValueError(f"y has {y.ndim} dimensions; expected one target a row (1-D) or several (2-D)")
        outputs = 1 if y.ndim == 1 else y.shape[1]
        if not reset and (outputs, y.ndim == 1) != (self._n_outputs, self._coef_1d):
            raise ValueError(f"y has shape {y.shape}; the model was fitted to "
                             f"{'one target a row' if self._coef_1d else f'{self._n_outputs} targets a row'}")
        self._n_outputs, self._coef_1d = outputs, y.ndim == 1  # coef_ of shape (n_targets, n_features) for 2-D y
        return y

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), keeping the weights and optimizer state of earlier calls; the
        current parameters apply (another optimizer starts with a new state)."""
        self._validate_params()
        return self._fit(X, y, sample_weight, 1, reset=not hasattr(self, "coef_"))

    def predict(self, X):
        """The fitted linear function at X."""
        return self._scores(X)


class LogisticRegression(ClassifierMixin, _BaseGD):
    """Logistic regression (mean log loss + alpha/2 ||coef||^2) by mini-batch gradient descent.

    Two classes give one weight vector (``coef_`` of shape (1, n_features));
    more give a multinomial (softmax) model with one row per class.
    """

    _coef_1d = False

    def _targets(self, y, classes, reset):
        for labels, name in ((y, "y"), (classes, "classes")):
            _check_one_label_type(labels, name)
        if y.dtype.kind not in "biu":  # integer labels (y is 1-D) are classes already: spare a pass
            check_classification_targets(y)
        new_classes = reset or not hasattr(self, "classes_")
        if not new_classes and classes is not None and not np.array_equal(np.unique(np.asarray(classes)),
                                                                          self.classes_):
            raise ValueError(f"classes={np.unique(np.asarray(classes)).tolist()} is not the same as on the first "
                             f"call to partial_fit, {self.classes_.tolist()}")
        if new_classes:
            self.classes_ = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if self.classes_.size < 2:
                raise ValueError(
                    f"LogisticRegression needs samples of at least 2 classes; got 1 class: {self.classes_.tolist()}"
                )
            self._n_outputs = 1 if self.classes_.size == 2 else self.classes_.size
            self._loss = "log" if self.classes_.size == 2 else "multinomial"
        index = np.searchsorted(self.classes_, y)
        if not (new_classes and classes is None):  # classes taken from y know every label
            known = self.classes_[np.minimum(index, self.classes_.size - 1)] == y
            if not known.all():
                unknown = np.unique(y[~known])
                raise ValueError(f"y has labels {unknown.tolist()} not in classes {self.classes_.tolist()}")
        return index

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), keeping the weights and optimizer state of earlier calls; the
        current parameters apply (another optimizer starts with a new state).

        The first call needs ``classes``, every label that will ever be seen; later calls may
        pass the same classes again."""
        self._validate_params()
        first = not hasattr(self, "coef_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, sample_weight, 1, reset=first, classes=classes)

    def decision_function(self, X):
        """The scores X @ coef_.T + intercept_: one column per class, or one value when binary."""
        return self._scores(X)

    def predict_proba(self, X):
        """Class probabilities; each row sums to 1."""
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """The logarithms of the class probabilities, computed without overflow for any score."""
        scores = self.decision_function(X)
        if scores.ndim == 1:  # log sigmoid(-z), log sigmoid(z): -log(1 + exp(-+z)), stably
            scores = np.column_stack([-scores, scores])
            return -np.logaddexp(0, -scores)
        shifted = scores - scores.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    def predict(self, X):
        scores = self.decision_function(X)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]
