"""Linear and logistic regression trained by mini-batch gradient descent, as scikit-learn estimators.

The training driver (validation, shuffling, learning-rate schedules,
convergence and early stopping) is here and runs once per epoch; the epoch
itself is ``_epoch``: a compiled loop that never returns to Python inside an
epoch here, and the textbook NumPy loop in ``fastgd.reference``.  Both update
the same flat parameter vector (weights row by row, then intercepts) with a
fastgd optimizer's state, so they give the same model for the same seed.
"""
import contextlib
import functools
import inspect
import io
import itertools
import math
import pickle
import threading
import types
import warnings
from numbers import Integral, Real

import numpy as np
import sklearn
from scipy import sparse
from scipy.special import expit as _expit
from sklearn import config_context, get_config
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils._param_validation import (
    Interval, InvalidParameterError, StrOptions, validate_parameter_constraints,
)
from sklearn.utils._available_if import available_if
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _check_sample_weight, check_array, check_is_fitted, check_random_state, validate_data,
)

from . import _checks, lr_scheduler, optim

# optimizer name -> (optimizer class, the estimator parameters that set its options, fixed options)
OPTIMIZERS = {
    "sgd": (optim.SGD, (), {}),
    "momentum": (optim.SGD, ("momentum", "dampening"), {}),
    "nesterov": (optim.SGD, ("momentum",), {"nesterov": True}),
    "rmsprop": (optim.RMSprop, ("rho", "eps", "centered"), {}),
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
#: the optimizers whose step is the rate times the gradient (with momentum, a sum of them): the others
#: (adaptive, or a sign's) step each weight by about the rate, whatever the gradient's size
GRADIENT_SIZED = tuple(name for name, (cls, _, _) in OPTIMIZERS.items() if cls is optim.SGD)
#: the estimator parameters named otherwise than the option they set (alpha is the penalty's here)
_OPTION_OF = {"rho": "alpha"}
#: and those of a narrower kind than it: RMSprop takes an alpha of 1 and more, as torch's, which
#: weigh the squared gradients by 0 or less
_NARROWER = {"rho": "fraction"}


def _options_of(optimizer, params):
    """The options that estimator parameters (a dict) give the optimizer named (but its lr):
    renamed where _OPTION_OF says, None (or missing: a subclass's signature may lack one) the
    optimizer's default (given too, so that a parameter set to None between partial_fit calls is
    followed), with its fixed ones."""
    cls, names, fixed = OPTIMIZERS[optimizer]
    defaults = _defaults_of(cls)
    options = {_OPTION_OF.get(name, name): params.get(name) for name in names}
    options = {name: defaults[name] if value is None else value for name, value in options.items()}
    if "betas" in options:
        options["betas"] = tuple(options["betas"])  # a list from a config file, say
    return {**options, **fixed}


def _option_kinds():
    """Each estimator parameter that sets an optimizer option -> that option's kind, and so its
    range (_checks.KINDS), as the optimizers declare it (narrowed where _NARROWER says): the
    estimators check them (whatever the optimizer, as every parameter) by the optimizers' rules."""
    kinds = {}
    for cls, names, _ in OPTIMIZERS.values():
        declared = {option.name: option.kind for option in cls.algorithm.options}
        for name in names:
            kind = kinds.setdefault(name, declared[_OPTION_OF.get(name, name)])
            assert kind == declared[_OPTION_OF.get(name, name)], f"{name} is of two kinds"
    return {**kinds, **_NARROWER}


_OPTION_KINDS = _option_kinds()


def _is_aligned(a):
    """Whether the array (or CSR matrix) a lies at aligned addresses, in one piece, as the compiled
    loop reads it (np.frombuffer, a network frame or a memmap at an odd offset may not; a CSR
    matrix's data may be a strided view), a CSR matrix's index arrays of one native dtype, int32
    or int64 (the compiled loop's two)."""
    parts = (a.data, a.indices, a.indptr) if sparse.issparse(a) else (a,)
    return all(part.flags.aligned and part.flags.c_contiguous for part in parts) and (
        not sparse.issparse(a) or (a.indices.dtype == a.indptr.dtype and a.indices.dtype in (np.int32, np.int64)
                                   and a.indices.dtype.isnative))


def _from_nonzeros(shape, dtype, where, values):
    """The array that _NonzerosPickler wrote as its nonzeros."""
    array = np.zeros(shape, dtype=dtype)
    array.reshape(-1)[where] = values
    return array


class _NonzerosPickler(pickle.Pickler):
    """Writes the arrays it meets that are less than half nonzero as their nonzeros and where they
    are (a sparsified model's weights and optimizer state, see _Driver.__getstate__)."""

    def reducer_override(self, obj):
        if not (type(obj) is np.ndarray and obj.dtype.kind in "fiu" and obj.size >= 1024
                and 2 * np.count_nonzero(obj) < obj.size):
            return NotImplemented
        where = np.flatnonzero(obj)
        return _from_nonzeros, (obj.shape, obj.dtype.str, where.astype(np.min_scalar_type(obj.size)),
                                obj.reshape(-1)[where])


def _aligned(a):
    """a, or an aligned, contiguous copy of it if it is not so (a CSR matrix's indices and indptr
    in one native dtype, int32 or int64: one may be given int32 and the other int64, or either in
    another integer dtype SciPy takes, such as uint32)."""
    if _is_aligned(a):
        return a
    a = a.copy()
    if sparse.issparse(a):
        both = np.result_type(a.indices.dtype.newbyteorder("="), a.indptr.dtype.newbyteorder("="))
        index = np.int32 if both == np.int32 else np.int64
        a.indices, a.indptr = (np.ascontiguousarray(part, dtype=index) for part in (a.indices, a.indptr))
    return a


#: the sparse formats _check_sparse_indices checks as they are, before SciPy converts them; the
#: others (DOK, DIA: their conversions check) are checked once converted to CSR
_CHECKED_FORMATS = ("csr", "csc", "bsr", "coo", "lil")

#: what a divergence warning advises
#: what a diverged fit's message advises, after "Try " (or "Else try ")
_TRY = "a smaller learning_rate or alpha, or scale the features (e.g. StandardScaler) and a regressor's y."


def _check_sparse_indices(X, name="X"):
    """Raise ValueError unless a sparse X's index arrays lie within its shape, before anything reads
    through them: SciPy's conversions (CSC or COO to CSR) and products do not check, and read or
    write out of bounds.  CSR, CSC and BSR: indptr rising from 0 to at most the entries, indices
    below the minor dimension (of blocks, for BSR); COO: each entry's row and column inside; LIL
    (whose rows and data are lists a user may edit; SciPy's conversion trusts them): a row's
    indices as many as its values, inside."""
    if not sparse.issparse(X) or X.format not in _CHECKED_FORMATS or X.ndim != 2:
        return  # dense, a format checked once made CSR (see _CHECKED_FORMATS), or 1-D (validate_data refuses it)
    if X.format == "lil":
        try:
            sizes = [len(row) for row in X.rows]
            consistent = len(sizes) == X.shape[0] and sizes == [len(values) for values in X.data]
            indices = np.fromiter(itertools.chain.from_iterable(X.rows), dtype=np.int64, count=sum(sizes))
        except (TypeError, ValueError, OverflowError):  # a row that is no list of integers
            consistent = False
        if consistent and (indices.size == 0 or 0 <= indices.min() <= indices.max() < X.shape[1]):
            return
        raise ValueError(f"{name}'s rows are out of range: a LIL matrix's rows and data must hold, for each of its "
                         f"{X.shape[0]} rows, as many indices as values, each index in [0, {X.shape[1]})")
    if X.format == "coo":
        coords = [(np.asarray(index), size) for index, size in zip(X.coords, X.shape)]
        if any(index.dtype.kind not in "iu" for index, _ in coords):  # (SciPy's conversion would truncate them)
            raise ValueError(f"{name}'s coordinates are {' and '.join(str(index.dtype) for index, _ in coords)} "
                             "arrays; expected integer ones (a COO matrix's rows and columns)")
        if all(index.size == np.shape(X.data)[0] and (index.size == 0 or 0 <= index.min() <= index.max() < size)
               for index, size in coords):
            return
        raise ValueError(f"{name}'s coordinates are out of range: a COO matrix's rows must lie in [0, {X.shape[0]}) "
                         f"and its columns in [0, {X.shape[1]}), one each per entry")
    rows, columns = X.shape if X.format != "bsr" else (X.shape[0] // X.blocksize[0], X.shape[1] // X.blocksize[1])
    major, minor = (columns, rows) if X.format == "csc" else (rows, columns)
    _check_compressed(X, np.asarray(X.indptr), np.asarray(X.indices), major, minor, name=name)


def _check_compressed(X, indptr, indices, major, minor, check_indices=True, name="X"):
    """Raise ValueError unless a compressed X's indptr rises from 0 to at most its entries over
    its `major` rows (columns, blocks) and, if check_indices, the indices it reaches lie in [0, minor)."""
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":  # (as scikit-learn's check_array)
        raise ValueError(f"{name}'s indptr and indices are {indptr.dtype} and {indices.dtype} arrays; expected "
                         "integer ones (a sparse matrix's index arrays are int32 or int64)")
    entries = min(indices.size, np.shape(X.data)[0])
    in_range = (indptr.ndim == indices.ndim == 1 and indptr.size == major + 1 and indptr[0] == 0
                and (np.diff(indptr) >= 0).all() and indptr[-1] <= entries)
    if in_range and check_indices and indptr[-1] > 0:
        in_range = 0 <= indices[:indptr[-1]].min() <= indices[:indptr[-1]].max() < minor
    if not in_range:
        raise ValueError(f"{name}'s indptr or indices are out of range: a {X.format.upper()} matrix's indptr must rise "
                         f"from 0 to at most its {entries} entries, and its indices lie in [0, {minor})")


def _checked_before_conversion(X, name="X"):
    """X checked (see _check_sparse_indices); a sparse X that SciPy converts to CSR (CSC, BSR, COO,
    LIL) as a copy, checked again: the conversion reads and writes through the index arrays
    unchecked, and another thread may write X's own meanwhile.  (Checked first as given, for the
    message: SciPy's copy checks some of them itself.)"""
    _check_sparse_indices(X, name)
    if sparse.issparse(X) and X.format in _CHECKED_FORMATS and X.format != "csr":
        X = X.copy()
        _check_sparse_indices(X, name)
    return X


def _own_indices(X, indices=True, name="X"):
    """X, a CSR matrix, over private copies of its indptr (and its indices, unless indices is
    False), checked (see _check_sparse_indices): SciPy's products and row selections read
    through them unchecked, and another thread may write X's own arrays meanwhile (a fit's
    epochs take that; a product or a row selection of X itself would reach memory out of bounds).
    Its values stay X's: a value written meanwhile changes a result, never what is read."""
    indptr = np.array(X.indptr, copy=True)
    index = np.array(X.indices, copy=True) if indices else X.indices
    _check_compressed(X, indptr, index, X.shape[0], X.shape[1], check_indices=indices, name=name)
    entries = min(index.size, np.shape(X.data)[0])
    return sparse.csr_matrix((X.data[:entries], index[:entries], indptr), shape=X.shape, copy=False)


def _entries_summed(X):
    """A CSR X whose rows each hold a feature once at most, as it is; else a copy with each row's
    entries of one feature summed into one (SciPy's sum_duplicates, which also sorts each row's
    indices, run on private, checked index arrays: see _own_indices).  Lazy updates step the
    weights that a row's nonzero entries touch, and the L1 penalty after another optimizer's
    step than plain SGD's truncates them: entries of one feature that cancel are the matrix's
    0, which touches none, as in the matrix stored without them.  A row holds no feature
    twice if its indices rise; a row whose indices do not rise is sorted in the copy, duplicates
    or not."""
    rows = _own_indices(X, indices=False)  # a private, checked indptr over X's own indices
    indptr, indices = rows.indptr, rows.indices[:rows.indptr[-1]]
    rising = indices[1:] > indices[:-1]
    starts = indptr[1:-1]
    rising[starts[(starts > 0) & (starts < indptr[-1])] - 1] = True  # from one row's last entry to the next's first
    if rising.all():
        return X
    copy = _own_indices(X)
    copy = sparse.csr_matrix((np.array(copy.data, copy=True), copy.indices, copy.indptr), shape=X.shape, copy=False)
    copy.sum_duplicates()
    return copy


def _row_chunks(X, rows=None):
    """X (a sparse X over a private, checked indptr: see _own_indices) and the selections of the
    rows listed (all: None) that take about 4 MB of X at a time: X is never copied whole, nor converted."""
    if sparse.issparse(X):
        X = _own_indices(X, indices=False)
    n = X.shape[0] if rows is None else rows.size
    row_bytes = (X.shape[1] * X.dtype.itemsize if not sparse.issparse(X)  # (a sparse row's: its stored entries')
                 else X.nnz // max(1, X.shape[0]) * (X.dtype.itemsize + X.indices.dtype.itemsize))
    step = max(1, (1 << 22) // max(1, row_bytes))
    return X, [slice(start, min(start + step, n)) if rows is None else rows[start:start + step]
               for start in range(0, n, step)]


#: the names a warm refit gives the weights it keeps, in its messages (_start_from)
_KEPT = ("coef_ (kept by warm_start)", "intercept_ (kept by warm_start)")
#: the largest size BLAS takes (a 32-bit int): dense batches of several rows go through it
_BLAS_MOST = 2**31 - 1


@functools.cache
def _defaults_of(cls):
    """A class's (an optimizer's, an estimator's) default options, from its signature."""
    return {name: parameter.default for name, parameter in inspect.signature(cls).parameters.items()}


def _reads_model(method):
    """A method that reads the fitted model: never while a fit or partial_fit runs (see _Calls)."""
    @functools.wraps(method)
    def read(self, *args, **kwargs):
        calls = vars(self).get("_calls_under_way") or self._calls()
        calls.start_reading()  # (not a context manager: this runs at every prediction)
        try:
            return method(self, *args, **kwargs)
        finally:
            calls.stop_reading()
    return read


class _OneCallAtATime:
    """An estimator whose fit and partial_fit (and the like) run one at a time, and whose reads of
    the model wait for them (see _Calls, _reads_model); its pickles and copies drop the
    _Calls (its attribute _calls_under_way): each has its own."""

    def _calls(self):
        """The estimator's _Calls (made once, the first time one is asked for)."""
        with _CALL_LOCKS:
            return vars(self).setdefault("_calls_under_way", _Calls())


class _Driver(_OneCallAtATime, BaseEstimator):
    """What every estimator here shares: the training driver, the linear scores."""

    #: whether y may hold several targets a row (2-D)
    _multi_output = False
    #: whether intercept_ is 0-d where coef_ is 1-D, as scikit-learn's LinearRegression's is a float
    #: (its SGDRegressor's of shape (1,))
    _scalar_intercept = False
    #: scikit-learn's SGD bookkeeping: early_stopping's held-out rows (a partial_fit after a fit
    #: holds out rows too, and t_ counts each epoch's held-out rows as if trained on), and under
    #: plain SGD with an L1 penalty the lazy average of its weight vector (see Objective's
    #: lazy_average), and n_iter_ counts the epochs of the last call (a partial_fit's: 1).  The
    #: estimators of their own train a partial_fit on every row (where MLPClassifier's refuses
    #: early_stopping), count steps and epochs over the calls, and average the iterates.  (The drop-ins' convergence test, with
    #: the norms a call keeps for it, is scikit-learn's too: see _SGDDropIn._objective.)
    _sgd_bookkeeping = False

    @classmethod
    def _get_param_names(cls):
        """scikit-learn's (the constructor's parameter names, sorted), read from its signature once
        a class: get_params runs at every call (_validate_params)."""
        if "_param_names" not in cls.__dict__:
            cls._param_names = tuple(super()._get_param_names())
        return list(cls._param_names)

    @classmethod
    def _none_is_default(cls):
        """The parameters setting optimizer options whose default, None, stands for the optimizer's
        own (see _optimizer_options), read from the signature once a class: None is valid for them."""
        if "_defaults_none" not in cls.__dict__:
            signature = inspect.signature(cls.__init__).parameters
            cls._defaults_none = frozenset(name for name in _OPTION_KINDS
                                           if name in signature and signature[name].default is None)
        return cls._defaults_none

    def _validate_params(self):
        # every call checks the parameters (set_params between partial_fit calls is followed, so
        # checked), but not again those last checked: the same values, of the same immutable
        # types.  What is checked and what is remembered as checked are one reading of them
        params = self.get_params(deep=False)
        checked = _immutable_params(params)
        if checked is not None and checked == vars(self).get("_params_checked"):
            return
        validate_parameter_constraints(self._parameter_constraints, params, caller_name=type(self).__name__)
        none_is_default = self._none_is_default()
        for name, kind in _OPTION_KINDS.items():
            value = params.get(name)  # (a subclass's signature may lack it, as scikit-learn's check allows)
            if name not in params or (value is None and name in none_is_default):
                continue
            try:
                _checks.check_option(value, kind, name)
            except (TypeError, ValueError):  # (in scikit-learn's words, as the other parameters')
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be {_checks.expected(kind)}"
                    f"{' or None' if name in none_is_default else ''}. Got {value!r} instead.") from None
        if "optimizer" in params:  # and the rules between options that the optimizer declares, on the ones it gets
            cls = OPTIMIZERS[params["optimizer"]][0]
            try:
                cls._check_rules({**_defaults_of(cls), **_options_of(params["optimizer"], params)}, "", constructor=True)
            except ValueError as error:
                raise InvalidParameterError(f"The parameters of {type(self).__name__} do not suit "
                                            f"optimizer={params['optimizer']!r}: {error}") from None
        self._params_checked = checked

    def _more_checks(self, for_partial_fit):
        """The checks of the parameters beyond their constraints (_validate_params)."""
        if for_partial_fit:
            _refuse_balanced_in_partial_fit(self)

    @contextlib.contextmanager
    def _checked_call(self, partial):
        """A fit or partial_fit under way (see _Calls), its parameters checked first, within it:
        set_params waits for the call, so that it trains with the values checked."""
        with self._calls().training(type(self).__name__, "partial_fit" if partial else "fit"):
            self._validate_params()
            self._more_checks(partial)
            yield

    # -- what the reference overrides -------------------------------------

    def _optimizer_module(self):
        return optim

    def _epoch(self, X, targets, sample_weight, order, batch_size, rates):
        """One epoch in the compiled loop, stepping the optimizer through its engine; returns the
        weighted loss sum (NaN if it diverged), the number of batches stepped, for the drop-ins the
        sum of scikit-learn's objective over the rows (see Objective's sgd_objective), and whether
        the loop found the weights all finite at the end (else they are unchecked)."""
        result = np.zeros(4)
        in_order = self._in_order(X, order, batch_size)
        objective = optim.engine.Objective(self._loss, fit_intercept=self.fit_intercept,
                                           intercept_decay=self._intercept_decay(X), plain_sgd=self._plain,
                                           lazy=self.lazy_updates and not self._plain, **self._objective_options())

        def epoch(plan, groups, grads, n_threads, checked):
            return optim.engine.epoch(plan, groups, grads, n_threads, checked, X, targets, sample_weight, order,
                                      batch_size, objective, rates, in_order, result, self._n_outputs)

        self._optimizer._step_with(epoch, [self._grad])
        return float(result[0]), int(result[1]), float(result[2]), bool(result[3])

    def _plain_sgd(self):
        """Whether the optimizer steps by plain SGD, p -= lr g ("sgd", or "momentum" with a
        momentum of 0): the compiled epoch then takes the steps itself (Objective's plain_sgd),
        scikit-learn's way."""
        return self.optimizer == "sgd" or (self.optimizer == "momentum" and self.momentum == 0)

    # -- training driver --------------------------------------------------------

    def _intercept_decay(self, X):
        """The factor of the intercept's step (the gradient's, for these estimators)."""
        return 1.0

    def _class_weighted(self, sample_weight, targets, dtype):
        """The rows' weights, their class's weight folded in (LogisticRegression's class_weight)."""
        return sample_weight

    def _weight_sum(self, y, sample_weight, classes):
        """The weight of the rows of labels or targets y in the objective: their sample weights'
        sum, or their count (DataParallel's replicas weigh in its average by it); classes: every
        label, sorted (None for a regressor)."""
        return float(len(y) if sample_weight is None else np.sum(sample_weight, dtype=np.float64))

    def _objective_share(self, y, sample_weight, classes):
        """The weight of the rows of y in the objective that loss_curve_ holds (DataParallel's
        replicas and blocks weigh in its curve by it): their weight sum (_weight_sum), as the
        objective is their weighted mean loss."""
        return self._weight_sum(y, sample_weight, classes)

    def _optimizer_options(self):
        """The options the estimator's parameters give its optimizer (_options_of)."""
        names = OPTIMIZERS[self.optimizer][1]
        return {"lr": self._initial_lr(), **_options_of(self.optimizer, {name: getattr(self, name) for name in names})}

    def _new_optimizer(self):
        cls = getattr(self._optimizer_module(), OPTIMIZERS[self.optimizer][0].__name__)
        self._optimizer_made = (self.optimizer, self._optimizer_options(), self._schedule())
        return cls([self._theta], **self._optimizer_made[1])

    def _follow_parameters(self):
        """What partial_fit changes when parameters were set since the last call: another
        optimizer starts with a new state (the weights and the schedule's step count go on);
        changed options (the learning rate included) are set in the optimizer's param group,
        and another schedule starts from the initial learning rate."""
        made_for, options_then, schedule_then = self._optimizer_made
        if self.optimizer != made_for:
            self._optimizer = self._new_optimizer()
            return
        options = self._optimizer_options()
        group = self._optimizer.param_groups[0]
        # checked as a new optimizer's would be (fit makes one): its constructor-only rules too
        type(self._optimizer)._check_options({**group, **options}, "", constructor=True)
        for name, value in options.items():
            if options_then.get(name) != value or (name == "lr" and self._schedule() != schedule_then):
                group[name] = value
        self._optimizer_made = (made_for, options, self._schedule())

    def _initialize(self, n_features, n_outputs, dtype):
        self._theta = np.zeros(n_outputs * (n_features + 1), dtype=dtype)
        self._grad = np.zeros_like(self._theta)
        self._t = np.zeros(1, dtype=np.int64)
        self._optimizer = self._new_optimizer()
        self.n_iter_ = 0
        self.loss_curve_ = []


    def _start_from(self, coef, intercept, names=("coef_init", "intercept_init")):
        """Set the weights to coef and intercept (either None: left as they are), read by
        _weights_read in the model's dtype (_set_weights)."""
        self._set_weights(*self._weights_read(coef, intercept, names, self._theta.dtype), names)

    def _set_weights(self, coef, intercept, names):
        """Set the weights to coef and intercept as _weights_read read them in the model's dtype
        (either None: left as they are), if finite."""
        k = self._n_outputs
        d = self._theta.size // k - 1
        if coef is not None:
            _check_finite(coef, names[0])
            self._theta[: k * d] = coef.ravel()
        if intercept is not None:
            _check_finite(intercept, names[1])
            self._theta[k * d:] = intercept.ravel()

    def _weights_read(self, coef, intercept, names, dtype):
        """coef and intercept (either None: None) as arrays of dtype (None: their own), (k, d) and
        (k,), a sparse one densified (_dense), real numbers as objects converted, as scikit-learn's
        (complex ones refused: a cast would drop their imaginary part).  As scikit-learn, one output's
        coef may have any shape of its d values, several outputs' must be (k, d); the intercept must
        be (k,) (or a scalar for one output); the callers ravel an intercept_ that the user assigned
        (a sparse one, say), which scikit-learn does not check.  names: theirs, for the messages."""
        k = self._n_outputs
        d = self._theta.size // k - 1
        read = []
        for given, name, shape in zip((coef, intercept), names, ((k, d), (k,))):
            if given is None:
                read.append(None)
                continue
            values = _dense(given, None, name)
            if values.dtype.kind == "O":  # real numbers as objects: converted, as there
                try:
                    values = values.astype(np.float64)
                except (TypeError, ValueError, OverflowError):
                    pass
            if values.dtype.kind not in "biuf":  # a complex one would lose its imaginary part
                raise TypeError(f"{name} holds {values.dtype} values; expected real numbers")
            if k == 1:  # any shape of d values; an intercept's scalar too (as scikit-learn's check)
                fits = values.size == d if len(shape) == 2 else values.size == 1 and values.ndim <= 1
            else:
                fits = values.shape == shape
            if not fits:
                expected = (d,) if len(shape) == 2 and self._coef_1d else shape
                raise ValueError(f"{name} has shape {values.shape}; expected {expected}")
            read.append(np.asarray(values, dtype=dtype).reshape(shape))
        return read

    def _follow_weights(self):
        """As scikit-learn, partial_fit goes on from coef_ and intercept_ as they stand, arrays of
        the user's own included (a coef_ of None: zeros, as there; with average set, as there, from the
        weights trained: coef_ shows, or will show, their average)."""
        if not self._shows_weights():
            k = self._n_outputs
            if self.coef_ is None:  # scikit-learn's partial_fit then makes both anew
                self._start_from(np.zeros((k, self._theta.size // k - 1)), np.zeros(k))
            else:
                self._set_weights(*self._weights_assigned(self._theta.dtype), ("coef_", "intercept_"))

    def _weights_assigned(self, dtype):
        """coef_ and intercept_ as they stand, arrays the user assigned included (an intercept_ of
        None: zeros), read (_weights_read) as partial_fit goes on from them and predict multiplies by them."""
        intercept = (np.zeros(self._n_outputs) if self.intercept_ is None
                     else np.ravel(_dense(self.intercept_, None, "intercept_")))
        return self._weights_read(self.coef_, intercept, ("coef_", "intercept_"), dtype)

    #: with warm_start and average, fit goes on from the weights trained, as partial_fit does, not
    #: from their average that coef_ shows (as scikit-learn's SGDRegressor; its SGDClassifier
    #: starts from coef_)
    _refit_from_trained = True

    def _kept_weights(self):
        """What a warm fit starts from (with the names its messages give them, see _start_from):
        coef_ and intercept_ as they stand, arrays the user assigned included (as partial_fit goes
        on from them), or, if _refit_from_trained, with average set the weights trained."""
        if self.average and self._refit_from_trained:
            coef, intercept = _split(self._theta, self._n_outputs)
            coef = coef[0] if self._coef_1d else coef  # in coef_'s shape (see _publish), for the messages
        elif self.coef_ is None:  # set so by the user: zeros, as partial_fit goes on from then
            k = self._n_outputs
            coef, intercept = np.zeros((k, self._theta.size // k - 1)), np.zeros(k)
            coef = coef[0] if self._coef_1d else coef
        else:
            coef, intercept = self.coef_, self.intercept_
        return np.array(_dense(coef, None, "coef_")), np.ravel(_dense(intercept, None, "intercept_")), _KEPT

    def _shows_weights(self):
        """Whether coef_ and intercept_ are what the estimator trains on: those _publish made of
        the weights trained (not of their average, average since set off), or with average set
        (their assignment then not followed, see _follow_weights)."""
        return bool(self.average) or (self._published_shown() and self._published[2] is self._theta)

    def _published_shown(self):
        """Whether coef_ and intercept_ are the very arrays _publish made (a user's own array is
        not, even a view of them, such as coef_[::-1])."""
        published = vars(self).get("_published")  # (a copy's own: not pickled, see __setstate__)
        return published is not None and self.coef_ is published[0] and self.intercept_ is published[1]

    def _penalties(self):
        """(L2 strength, L1 strength) of the penalty ("l2", "l1", "elasticnet" or None, of strength alpha)."""
        alpha = float(self.alpha)
        if self.penalty == "l2":
            return alpha, 0.0
        if self.penalty == "l1":
            return 0.0, alpha
        if self.penalty == "elasticnet":
            return alpha * (1 - self.l1_ratio), alpha * self.l1_ratio
        return 0.0, 0.0

    def _penalty(self, flat=None):
        """The penalty (in float64) of the weights as they stand, which an epoch's objective adds
        to its loss (see _objective), or of those of the flat vector given (see _split)."""
        l2, l1 = self._penalties()
        k = self._n_outputs
        flat = self._theta if flat is None else flat
        coef = flat[: flat.size - k].astype(np.float64, copy=False)
        penalty = 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # weights that overflow: the divergence error tells
            if l2:
                penalty += 0.5 * l2 * float(coef @ coef)
            if l1:
                penalty += l1 * float(np.abs(coef).sum())
        return penalty

    def _objective(self, loss_sum, weight_sum, sgd_sum, n, penalty):
        """An epoch's objective (loss_curve_'s), in float64, each term at the weights it was
        computed at: the weighted mean of the batches' losses, each at the weights it stepped
        from, plus the penalty of the weights the epoch started from (penalty, _penalty's then):
        with full-batch steps, the objective before the epoch's step.  (The penalty after the
        epoch beside the loss before it added two points' terms: above both points' objective.)
        sgd_sum: the sum of scikit-learn's objective over the n rows (the drop-ins')."""
        return loss_sum / weight_sum + penalty

    def _objective_options(self):
        """The epoch's Objective, but for its loss and intercept (see _regression.pxi): the penalties,
        the L1 penalty's state and the average."""
        l2, l1 = self._penalties()
        options = dict(alpha=l2, l1=l1, l1_state=getattr(self, "_l1_state", None), first_step=self._next_step(),
                       lazy_average=getattr(self, "_lazy_average", None), row_weight=self._row_weight())
        if self._averaged_as:  # (the call's, as _start_call decided it with the lazy average)
            options.update(average=self._average_theta, average_start=self._average_start)
        return options

    def _row_weight(self):
        """The mean weight of the rows given to the calls since the fit began (each call's rows
        once, however many epochs it runs), partial_fit calls included:
        what a row weighs in a batch's gradient of the weighted mean loss (see Objective).  Not the
        call's own mean: a stream of one-row partial_fit calls would cancel each row's weight."""
        total, rows = self._weights_seen
        return total / rows if rows else 1.0

    def _start_call(self, reset):
        """What each fit or partial_fit call starts anew: the truncated gradient's L1 penalty and
        the drop-ins' kept norms of the weights (as scikit-learn's weight vector keeps them for a
        call, see Objective's sgd_norms, and its intercepts in double), and with each fit the average
        and the weights seen (_row_weight)."""
        _, l1 = self._penalties()
        k = self._n_outputs
        if reset or getattr(self, "_weights_seen", None) is None:
            self._weights_seen = np.zeros(2)  # the weight sum and count of the rows trained on (_row_weight)
        self._l1_state = np.zeros((self._theta.size - k) + 1) if l1 > 0 else None
        self._sgd_norms = np.full(2 * k, np.nan) if self._sgd_bookkeeping else None
        kept = getattr(self, "_sgd_intercepts", None)
        self._sgd_intercepts = np.full(2 * k, np.nan) if self._sgd_bookkeeping else None
        if self._sgd_intercepts is not None and kept is not None and kept.size == 2 * k:
            carried = self._intercepts_carried(reset)
            self._sgd_intercepts[carried] = kept[carried]
        # (decided once a call, as its optimizer was made: an attribute set by another thread
        # meanwhile would step the rest of the call otherwise than its optimizer and its average)
        self._plain = self._plain_sgd()
        lazy = self._sgd_bookkeeping and l1 > 0 and self.average and self._plain
        self._lazy_average = np.array([1.0, 0.0]) if lazy else None  # [S, ratio], a call's
        if reset or getattr(self, "_average_theta", None) is None or self._averaged_as != self.average:
            # a new average: from step `average` of the fit, or, when average was switched on or
            # changed between partial_fit calls, from the next step (the steps before are not in it)
            self._average_theta = np.zeros_like(self._theta) if self.average else None
            start = min(int(self.average), 1 << 62)  # (a step count beyond int64's: never)
            self._average_start = start if reset else max(start, self._next_step())
            self._averaged_as = self.average

    def _shown(self):
        """The flat vector that coef_ and intercept_ show: the averaged one, once averaging started
        (by the average the model was trained with: set_params(average=...) applies from the next call)."""
        if self._averaged_as and self._average_theta is not None and self._t[0] >= self._average_start:
            return self._average_theta
        return self._theta

    def _publish(self, theta=None):
        """coef_ and intercept_ as views of the flat parameter vector (theta: of that one)."""
        source = self._shown() if theta is None else theta
        coef, intercepts = _split(source, self._n_outputs)
        self.coef_ = coef[0] if self._coef_1d else coef
        self.intercept_ = intercepts.reshape(()) if self._coef_1d and self._scalar_intercept else intercepts
        self._published = (self.coef_, self.intercept_, source)  # see _shows_weights

    def _raise_non_finite(self, X, targets, sample_weight, group):
        """Raise the error of an epoch whose objective or weights became non-finite (the epoch's param
        group: its rate and eps): X's own error if it holds NaN or inf, else y's or
        sample_weight's if written meanwhile, else _Diverged, saying what to try."""
        # X was not checked up front: a non-finite entry makes its row's loss non-finite (and
        # scikit-learn's assume_finite is the user's word that X is finite, which it was not)
        with config_context(assume_finite=False):
            check_array(X, dtype=None, input_name="X", estimator=self, accept_sparse=True)
        for values, name in ((targets, "y"), (sample_weight, "sample_weight")):  # checked up front
            if values is not None and not np.isfinite(values).all():
                raise ValueError(f"{name} holds NaN or inf now, which it did not when this call began "
                                 "(written during the call, by another thread?); the model is left as it "
                                 "was before this call")
        in_float32 = (" In float32, a batch's loss beyond float32's range ends the fit too (y or "
                      "sample_weight of an extreme magnitude, huge or tiny): scale them, or fit float64 data."
                      if self._theta.dtype == np.float32 else "")
        rate = ("learning_rate='optimal'" if getattr(self, "learning_rate", None) == "optimal"
                else f"learning rate {group['lr']:g}")  # ("optimal": a rate of its own a step)
        raise _Diverged(
            f"the objective became non-finite in epoch {self.n_iter_} with optimizer={self.optimizer!r} "
            f"and {rate} (in {self._theta.dtype}); the model is left as it was "
            "before this call. " + ("With eps=0 the step divides 0 by 0 wherever a gradient stayed 0: "
                                    "use eps > 0. Else try " if group.get("eps") == 0 else "Try ")
            + _TRY + in_float32
        )

    def _next_step(self):
        """The number of the fit's next step: its steps count from 1 (_t holds how many were taken).
        The compiled epoch numbers its steps from it (step_number), as the rates (_step_numbers)."""
        return int(self._t[0]) + 1

    def _step_numbers(self, n_batches):
        """The numbers of the steps the next epoch may take, n_batches of them, in float64."""
        return self._next_step() + np.arange(n_batches, dtype=np.float64)

    def _in_order(self, X, order, batch_size):
        """Whether an epoch over the rows `order` of X takes all of X in order: every row, and
        without shuffling or in one full batch (whose gradient the order does not change)."""
        return order.size == X.shape[0] and (not self.shuffle or batch_size >= order.size)

    def _run_epochs(self, X, targets, sample_weight, n_epochs, rows=None, validation=None, stop=None):
        """Train for up to n_epochs on the rows of X (all of them, or those listed in `rows`: X is
        never copied); validation: (rows, targets, sample_weight) held out for early stopping;
        stop: a threading.Event that ends the epochs early once set (another class's fit failed).
        Returns whether a fit with tol set ran all max_iter epochs (ConvergenceWarning)."""
        n = X.shape[0] if rows is None else rows.size
        batch_size = n if self.batch_size is None else min(self.batch_size, n)
        if batch_size > 1 and not sparse.issparse(X) and max(X.shape[1], batch_size, self._n_outputs) > _BLAS_MOST:
            raise ValueError(f"dense X of {X.shape[1]} features in batches of {batch_size} rows, {self._n_outputs} "
                             f"outputs: a batch of several rows goes through BLAS, which takes sizes up to "
                             f"{_BLAS_MOST}; pass X as a sparse matrix, or a smaller batch_size")
        group = self._optimizer.param_groups[0]
        if sample_weight is None:
            weight_sum = float(n)
        else:
            with np.errstate(over="ignore"):  # (a sum beyond float64: refused below)
                weight_sum = float((sample_weight if rows is None else sample_weight[rows]).sum(dtype=np.float64))
        if not weight_sum > 0 and not self._sgd_bookkeeping:  # the drop-ins' objective is unweighted
            raise ValueError(f"sample_weight sums to {weight_sum:g}{' over the rows trained on' if rows is not None else ''}; "
                             "the objective is the weighted mean loss, which needs weights with a positive sum")
        if not self._sgd_bookkeeping and not (math.isfinite(weight_sum) and weight_sum / n >= np.finfo(X.dtype).tiny):
            # a batch's gradient divides by the mean weight: inf, or past X's dtype's range in its inverse
            raise ValueError(f"sample_weight sums to {weight_sum:g} over {n} rows (a mean of {weight_sum / n:g}), "
                             f"beyond what training in {X.dtype} can divide by; the fit depends only on the weights' "
                             "ratios: scale them (e.g. divide them by their mean)")
        self._weights_seen += (weight_sum, n)
        epochs_before, passed_over = self.n_iter_, 0
        no_improvement = _NoImprovement(self.tol, self.n_iter_no_change)
        # the rows of each epoch: as scikit-learn's SGD takes them, all of X's rows shuffled
        # (unless taken in order), those not listed in `rows` (held out) skipped
        order = np.arange(n, dtype=np.intp) if rows is None else rows.astype(np.intp)
        in_order = self._in_order(X, order, batch_size)
        shuffled = np.arange(X.shape[0], dtype=np.intp) if self.shuffle and not in_order else None
        if shuffled is not None and rows is not None:
            listed = np.zeros(X.shape[0], dtype=bool)
            listed[rows] = True
        check = self.tol is not None
        n_batches = -(-n // batch_size)
        for epoch in range(n_epochs):
            if stop is not None and stop.is_set():
                break
            lr = self._learning_rate(self.n_iter_)
            if lr is not None:
                group["lr"] = lr
            if shuffled is not None:
                self._shuffle(shuffled)
                order = shuffled if rows is None else shuffled[listed[shuffled]]
            rates = self._batch_rates(n_batches)
            penalty = self._penalty()
            loss_sum, batches, sgd_sum, finite = self._epoch(X, targets, sample_weight, order, batch_size, rates)
            self._t[0] += batches
            passed_over += n_batches - batches  # PA-I's rows of zeros
            if rates is not None and batches:
                group["lr"] = float(rates[batches - 1])
            self.n_iter_ += 1
            objective = self._objective(loss_sum, weight_sum, sgd_sum, n, penalty)
            if not (math.isfinite(loss_sum) and math.isfinite(objective) and (finite or _all_finite(self._theta))):
                self._raise_non_finite(X, targets, sample_weight, group)
            self.loss_curve_.append(objective)
            if validation is not None:
                # the drop-ins score the weights trained, as scikit-learn, the own estimators the model
                self._publish(self._theta if self._sgd_bookkeeping else None)
                score = self._validation_score(X, *validation)
                self.validation_scores_.append(score)
                current = -score
            else:
                current = objective
            if self.verbose:
                print(f"-- Epoch {self.n_iter_}: objective {objective:.6g}, lr {group['lr']:.3g}")
            if not check:
                continue
            if no_improvement.ends_at(current):
                if self._schedule() == "adaptive" and group["lr"] > 1e-6:
                    group["lr"] /= 5
                    no_improvement.count = 0
                else:
                    if self.verbose:
                        print(f"Convergence after {self.n_iter_} epochs")
                    break
        # as scikit-learn, a fit that ran every epoch, even if it met the stopping rule in the last
        # one (the caller does not warn of a partial_fit, as scikit-learn's does not)
        ran_out = check and n_epochs == self.max_iter and self.n_iter_ - epochs_before == n_epochs
        if self._sgd_bookkeeping and batch_size == 1:  # scikit-learn's t_ counts every row of every epoch
            self._t[0] += passed_over + (self.n_iter_ - epochs_before) * (0 if validation is None else validation[0].size)
        self._publish()
        return ran_out

    def _classes_apart(self, reset):
        """Whether a fit (reset: or the first partial_fit) or a partial_fit trains each output apart
        (see SGDClassifier._fit_classes_apart)."""
        return False

    def _seed_shuffles(self, seed):
        """Start the shuffles of the epochs from seed (an int below 2^31)."""
        self._shuffle_seed, self._shuffle_bits = seed, np.random.PCG64(seed)

    def _shuffles_as_scikit_learn(self):
        """Whether the epochs are shuffled as scikit-learn's SGD shuffles them, its seeds drawn from
        random_state at every call, partial_fit's too (else at the first)."""
        return False

    def _shuffle(self, order):
        """Shuffle order (X's rows) for the next epoch: a new permutation from the generator each
        epoch, or scikit-learn's SGD's, its last order permuted again by the steps of its seed."""
        if self._shuffles_as_scikit_learn():
            optim.engine.shuffle_again(order, self._shuffle_seed)
        else:
            optim.engine.shuffle(order, self._shuffle_bits)

    def _draw_seeds(self, rng, hold_out):
        """At the start of a fit (and of each partial_fit call, see _shuffles_as_scikit_learn): (the
        shuffling seeds, one for all outputs or one per output where they are trained apart, drawn
        from rng, random_state's generator; the early-stopping
        split hold_out makes, or None where hold_out is None), in the order scikit-learn's
        estimator takes them from a shared generator (a RandomState or NumPy's global one): the
        same rows held out, and the generator left where scikit-learn leaves it."""
        seed = rng.randint(_MAX_INT)
        return [seed], None if hold_out is None else hold_out()

    # When a fit's objective says it diverged (see _rising): it ended above its first epoch's (whose
    # mean holds the climb from the starting weights: a fit that settles mostly ends below it) and
    # either _RISE times its best but not falling in each of its last _RISES epochs while under
    # _BLOWN_UP times its first epoch's (a perceptron's objective, 0 at zero weights, may start near
    # 0 and fall after a jump: the fit recovers), or
    # after rising in each of its last n_iter_no_change epochs (at least _RISES of them) by steps
    # that do not shrink (the last at least half the first: a fit settling onto its level from
    # above its first epoch's rises by ever smaller steps) and by _CLIMB of its level in all (an
    # objective that creeps, 0.1% in 60 epochs, is at its level).  A fit ending below _SETTLED
    # times zero weights' objective settled, whatever its curve did (an optimizer's noise near 0,
    # after a warm start at the optimum).  Apart from the curve (see _worse_than_none), the model
    # returned diverged where its own objective is over _WORSE times zero weights' (which the best
    # weights do not exceed: a model worse than none, by a margin for noise about an optimum near
    # it, as with labels that carry no signal) and above the objective of the weights it started from.
    _RISE, _RISES, _CLIMB, _BLOWN_UP, _WORSE, _SETTLED = 10.0, 3, 0.01, 100.0, 2.0, 0.01

    def _objective_at_zero(self, targets, sample_weight, rows):
        """The objective of zero weights and intercepts over the rows trained on (all, or those
        listed): the loss at score 0 (_row_losses' at 0), weighted as the objective weighs it; None
        where not known (the drop-ins': they follow scikit-learn, which has no such test) or not
        positive.  (Each estimator's in closed form: _row_losses over every row would cost a pass
        and arrays of n x k scores.)"""
        return None

    #: a method giving each row's loss (in float64) at its scores (n, k) for its targets (n, 1 or
    #: k), as the objective takes it, where _objective_at_zero is known; None where it is not
    _row_losses = None

    def _rising(self, at_zero=None, curve=None, epochs=None):
        """What a fit whose objective says it diverged says (see _RISE), however it ended (tol,
        max_iter, or tol=None), else None.  at_zero: _objective_at_zero's; curve and epochs:
        another's than loss_curve_ and n_iter_ (DataParallel's)."""
        curve, epochs = (self.loss_curve_, self.n_iter_) if curve is None else (curve, epochs)
        if not curve:
            return None
        first, best, last = curve[0], min(curve), curve[-1]
        if at_zero is not None and last < self._SETTLED * at_zero:
            return None
        rises = min(self.n_iter_no_change, len(curve) - 1)
        steps = np.diff(curve[-rises - 1:])
        climbed = (rises >= self._RISES and bool((steps > 0).all()) and steps[-1] >= steps[0] / 2
                   and steps.sum() >= self._CLIMB * abs(last))
        recovering = (len(curve) > self._RISES and bool((np.diff(curve[-self._RISES - 1:]) < 0).all())
                      and last <= self._BLOWN_UP * first)
        if not (last > first and ((last > self._RISE * best and not recovering) or climbed)):
            return None
        said = (f"above its first epoch's ({first:.6g}) and "
                + (f"rising in each of its last {rises}" if climbed else f"far above its best ({best:.6g})"))
        return f"The fit ended in epoch {epochs} with an objective of {last:.6g}, {said}: it diverged. Try " + _TRY

    def _worse_than_none(self, at_zero, started, model):
        """What a fit whose model, as returned (coef_ and intercept_: the average, with average),
        diverged says (see _WORSE), else None: model is its objective over the rows trained on
        (_model_objective's: a pass over them after the fit, as the curve's last point is before
        the last step, and the iterate's), at_zero _objective_at_zero's over them (not None),
        started the objective of the weights it started from (at_zero from zero weights)."""
        if not (model > self._WORSE * at_zero and model > started):
            return None
        return (f"The fitted model's objective over the rows trained on is {model:.6g}, over {self._WORSE:g} times "
                f"that of zero weights ({at_zero:.6g})"
                + ("" if started == at_zero else f" and above that of the weights it started from ({started:.6g})")
                + ": it diverged. Try " + _TRY)

    def _diverged(self, at_zero, started, objective, curve=None, epochs=None):
        """What a fit that diverged says, by its curve (_rising) or by the model it returns
        (_worse_than_none, where at_zero is known: objective, the model's objective or a function
        giving it, is then read), else None."""
        return self._rising(at_zero, curve, epochs) or (at_zero is not None and self._worse_than_none(
            at_zero, started, objective() if callable(objective) else objective))

    def _model_objective(self, X, targets, sample_weight, rows):
        """The objective (in float64) of the model as coef_ and intercept_ show it (the average, with
        average) over the rows of X listed (all: None): see _model_losses and _objective_from."""
        return self._objective_from(*self._model_losses(X, targets, sample_weight, rows))

    def _model_losses(self, X, targets, sample_weight, rows):
        """The sum of _row_losses, weighted by sample_weight, of the model as coef_ and intercept_
        show it over the rows of X listed (all: None), and the sum of their weights, in float64,
        4 MB of rows at a time (X is never copied whole, nor converted)."""
        weights_in_x, intercept = _split(self._shown(), self._n_outputs)  # (scores in X's dtype, losses in float64)
        intercept = intercept.astype(np.float64)
        X, chunks = _row_chunks(X, rows)
        total = weight_sum = 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # a model that overflows: inf, worse than any
            for chunk in chunks:
                # a sparse chunk's product reads through its indices: checked copies (see _own_indices);
                # one expression, so that no chunk is held while the next is copied
                scores = np.asarray((_own_indices(X[chunk]) if sparse.issparse(X) else X[chunk])
                                    @ weights_in_x.T).astype(np.float64) + intercept
                losses = self._row_losses(scores, targets.reshape(targets.shape[0], -1)[chunk])
                weights = None if sample_weight is None else sample_weight[chunk].astype(np.float64)
                total += float(losses.sum() if weights is None else losses @ weights)
                weight_sum += float(losses.size if weights is None else weights.sum())
        return total, weight_sum

    def _objective_from(self, total, weight_sum):
        """The objective of the model as coef_ and intercept_ show it, from its _model_losses over
        some rows: their weighted mean loss plus the penalty of its weights; inf where NaN (a model
        that overflows is worse than any)."""
        with np.errstate(over="ignore", invalid="ignore"):
            objective = total / weight_sum + self._penalty(self._shown()) if weight_sum > 0 else math.nan
        return objective if not math.isnan(objective) else math.inf

    def _validation_score(self, X, rows, y, sample_weight):
        """score() of the held-out rows of X, taken a chunk at a time (X is never copied whole):
        fastgd's predict without validating them again (X's feature names were checked with X), a
        subclass's own predict as scikit-learn's score calls it; a subclass's own score, as
        scikit-learn's early stopping calls it, on the held-out rows."""
        X, chunks = _row_chunks(X, rows)
        if type(self).score is not (ClassifierMixin if isinstance(self, ClassifierMixin) else RegressorMixin).score:
            with warnings.catch_warnings():  # X's rows without the names they were checked with, as scikit-learn's
                warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
                return float(self.score(X[rows], y, sample_weight=sample_weight))
        if type(self).predict.__module__ == __name__:
            def predict(rows):
                return self._predicted(self._scores(rows, validated=True))
        else:
            predict = self.predict
        predicted = np.concatenate([predict(X[chunk]) for chunk in chunks])
        metric = accuracy_score if isinstance(self, ClassifierMixin) else r2_score
        return float(metric(y, predicted, sample_weight=sample_weight))

    def _prepare(self, X, y, sample_weight, reset):
        # X's finite check costs a pass over X; without early stopping the first epoch makes it
        # instead (a NaN or inf in a row makes that row's loss non-finite: see _run_epochs)
        X = _checked_before_conversion(X)
        if sparse.issparse(y):  # (validate_data takes a CSR y where it may have several columns)
            raise TypeError("Sparse data was passed for y, but dense data is required. Use '.toarray()' to convert "
                            "to a dense numpy array.")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], order="C", reset=reset, accept_sparse="csr",
                             y_numeric=not isinstance(self, ClassifierMixin),
                             multi_output=self._multi_output,
                             ensure_all_finite=self.early_stopping)
        if X.shape[0] == 0:
            raise ValueError("X has no samples; fitting needs at least one")
        with np.errstate(over="ignore"):  # a weight beyond X's dtype becomes inf: refused by name (_fit_unguarded)
            sample_weight = None if sample_weight is None else _check_sample_weight(sample_weight, X, dtype=X.dtype)
        X, y, sample_weight = (None if a is None else _aligned(a) for a in (X, y, sample_weight))
        if sparse.issparse(X) and (self.lazy_updates or (self._penalties()[1] > 0 and not self._plain_sgd())):
            X = _entries_summed(X)  # (the L1 truncation after another optimizer's step skips the matrix's zeros)
        return X, y, sample_weight

    def _fit(self, X, y, sample_weight, n_epochs, reset, classes=None, init=None, partial=False):
        """Train; a call that fails (divergence included) leaves the estimator as it was.
        init: the (coef, intercept) a fit starts from (and their names, for messages), or None;
        partial: a partial_fit (one epoch, which neither holds rows out, but in the drop-ins, nor
        warns that max_iter ran out).  The caller is within _checked_call."""
        self._writable_arrays()
        before = _Snapshot(self, weights=not self._trains_copies(reset))
        failed = None
        try:
            trained_apart = self._fit_unguarded(X, y, sample_weight, n_epochs, reset, classes, init, partial)
        except BaseException as error:
            failed = error
        # the call's last step, the model put back (failed) or the classes trained apart written
        # back (see _fit_classes_apart): run to its end, from its start again if Ctrl-C comes
        # meanwhile (then raised: the call is over), so that no model is left half of each
        interrupted = None
        while True:
            try:
                before.restore() if failed is not None else _write_rows(trained_apart)
                break
            except KeyboardInterrupt as error:
                interrupted = error
        if isinstance(failed, _Diverged) and not reset and not _all_finite(self._theta):
            raise ValueError("the weights held NaN or inf as this call began (written into coef_ or intercept_ "
                             "in place?): expected finite weights to go on from; the model is left as it "
                             "was before this call") from None
        if failed is not None:
            raise failed
        if interrupted is not None:
            raise interrupted
        return self

    def _as_trained(self, y, sample_weight, classes, reset, dtype):
        """The targets of labels or values y and the rows' weights in the objective (sample_weight
        times the class weights), in dtype, as a call trains on them."""
        targets = np.ascontiguousarray(self._targets(y, classes, reset, dtype), dtype=dtype)
        return targets, self._class_weighted(sample_weight, targets, dtype)

    def _trains_copies(self, reset):
        """Whether the call will train copies of the weights (and of their average), leaving
        them as they are until it has succeeded: a failed call then has no need to put them back."""
        return False

    def _fit_unguarded(self, X, y, sample_weight, n_epochs, reset, classes, init, partial):
        """_fit's work; returns the (flat vector, rows) pairs of classes trained apart, for _fit
        to write back once the call has succeeded (none elsewhere: see _fit_classes_apart)."""
        X, y, sample_weight = self._prepare(X, y, sample_weight, reset)
        with np.errstate(over="ignore"):  # a value beyond X's dtype becomes inf: refused below, or by the epoch, by name
            if not reset and X.dtype != self._theta.dtype:  # partial_fit goes on in the model's dtype
                given, X = X, X.astype(self._theta.dtype)
                # (a CSR matrix's values: its first nnz, past them spare storage; the cast sums duplicates)
                before, after = (given.data[:given.nnz], X.data[:X.nnz]) if sparse.issparse(X) else (given, X)
                if np.isinf(after).any() and np.isfinite(before).all():  # (a NaN or inf given: the epoch says so)
                    raise ValueError(f"X holds values beyond {X.dtype}'s range, the model's dtype, in which partial_fit "
                                     "goes on: expected values within it (or refit in X's dtype)")
                sample_weight = None if sample_weight is None else sample_weight.astype(X.dtype, copy=False)
            given_weight = sample_weight  # (the held-out rows' score weighs them by it alone, as score does)
            targets, sample_weight = self._as_trained(y, sample_weight, classes, reset, X.dtype)
        # checked in X's dtype, after the class weights: else a value beyond float32's range, or
        # a NaN class weight, reached the loop as the divergence error ("a smaller learning_rate")
        class_weight = getattr(self, "_expanded_class_weight", None)  # (the drop-ins' reach the loop apart)
        weighted = _weights_named(self)
        for values, name in ((targets, "y"), (sample_weight, weighted),
                             (None if class_weight is None else np.asarray(class_weight, X.dtype), "class_weight")):
            if values is not None and not np.isfinite(values).all():
                raise ValueError(f"{name} holds NaN or inf in {X.dtype}, in which training runs (X's dtype; "
                                 "partial_fit: the model's): expected finite values (within that dtype's range)")
        from_zero = False  # whether the weights start at zero (else _worse_than_none needs their objective)
        if not reset:
            self._follow_parameters()
            self._follow_weights()
        else:
            size = self._n_outputs * (X.shape[1] + 1)
            warm = (self.warm_start and hasattr(self, "_theta") and self._theta.size == size
                    and self._theta.dtype == X.dtype)
            if warm:  # keep the weights, start a new optimizer
                self._optimizer = self._new_optimizer()
                self._t[...] = 0
                self.n_iter_, self.loss_curve_ = 0, []
            else:
                self._initialize(X.shape[1], self._n_outputs, X.dtype)
            from_zero = not warm and init is None
            if init is not None:
                self._start_from(*init)
        self._start_call(reset)
        if partial and self._sgd_bookkeeping:  # scikit-learn's n_iter_: the epochs of this call
            self.n_iter_ = 0
        validating = self.early_stopping and (not partial or self._sgd_bookkeeping)
        if validating or reset or not hasattr(self, "validation_scores_"):  # else the fit's are kept
            self.validation_scores_ = [] if validating else None
        train = validation = seeds = split = None

        def hold_out():  # by index: X is not copied
            # scikit-learn's SGD split (stratified by class, from random_state itself), the rows
            # trained on in their order (an epoch shuffles them if shuffle is set)
            splitter = StratifiedShuffleSplit if isinstance(self, ClassifierMixin) else ShuffleSplit
            return next(splitter(test_size=self.validation_fraction, random_state=self.random_state)
                        .split(np.zeros((X.shape[0], 1)), y))

        if reset or self._shuffles_as_scikit_learn():
            # the epochs' shuffles start from seeds of their own (one per class where they are
            # trained apart), drawn from random_state as scikit-learn draws them
            seeds, split = self._draw_seeds(_generator(self.random_state), hold_out if validating else None)
            self._seed_shuffles(seeds[0])
        elif validating:  # (a drop-in's partial_fit of mini-batches or another optimizer: shuffles go on)
            split = hold_out()
        if validating:
            train, val = split
            # each in X's order, as scikit-learn's validation mask takes them (the held-out score,
            # summed in another order, can tip where it is rounding alone: R^2 of a constant target)
            train, val = np.sort(train), np.sort(val)
            validation = (val, y[val], None if given_weight is None else given_weight[val])
            if validation[2] is not None and not (validation[2] > 0).any():  # scikit-learn's test
                raise ValueError("the sample weights of the held-out rows (validation_fraction, for early "
                                 "stopping) are all zero or below; give some of them weight, or another "
                                 "random_state")
        trained_apart = []
        if self._classes_apart(reset):  # (which warns of its classes' divergence)
            ran_out, trained_apart = self._fit_classes_apart(X, targets, sample_weight, n_epochs, train, validation,
                                                             seeds, partial)
        else:
            at_zero = None if partial else self._objective_at_zero(targets, sample_weight, train)
            started = (at_zero if from_zero or at_zero is None
                       else self._model_objective(X, targets, sample_weight, train))
            ran_out = self._run_epochs(X, targets, sample_weight, n_epochs, train, validation)
            # (scikit-learn's partial_fit warns of nothing)
            if not partial and (diverged := self._diverged(
                    at_zero, started, lambda: self._model_objective(X, targets, sample_weight, train))):
                warnings.warn(diverged, ConvergenceWarning)
                ran_out = False  # more epochs are not the answer
        if ran_out and not partial:
            self._warn_ran_out()
        return trained_apart

    def _warn_ran_out(self):
        """Warn that a fit ran every epoch without meeting its stopping rule (scikit-learn's warning)."""
        warnings.warn(f"Maximum number of epochs (max_iter={self.max_iter}) reached before the objective stopped "
                      f"improving by tol={self.tol:g}; consider increasing max_iter to improve the fit.",
                      ConvergenceWarning)

    @_reads_model
    def _scores(self, X, validated=False):
        """The linear scores X @ coef_.T + intercept_; validated: X is rows of the X a fit validated
        (early stopping's held-out rows: its feature names were checked with it)."""
        check_is_fitted(self, "coef_")
        if not validated:
            if not (sparse.issparse(X) and X.format == "csr"):  # a CSR X is checked as its indices are copied (below)
                X = _checked_before_conversion(X)
            given = X
            X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False, accept_sparse="csr")
            if sparse.issparse(given) and given.format not in _CHECKED_FORMATS:
                _check_sparse_indices(X)
        if sparse.issparse(X):  # multiplied through private, checked indices (see _own_indices)
            X = _own_indices(X)
        if self.coef_ is None:  # (assigned so: scikit-learn's predict fails too)
            raise ValueError("coef_ is None; expected the weights: fit the model, or assign coef_ an array")
        coef, intercept = self._weights_assigned(None)  # (in their own dtype, as scikit-learn's product)
        scores = X @ coef.T + intercept  # in the dtype of both, as scikit-learn's
        if not np.isfinite(scores).all():  # scikit-learn's are then NaN (or inf) without a word
            raise ValueError(f"the scores X @ coef_.T + intercept_ are not finite for {np.sum(~np.isfinite(scores))} "
                             "values: X or the weights hold NaN or inf, or their products overflow; expected finite "
                             "scores (scale the features)")
        binary = isinstance(self, ClassifierMixin) and self._n_outputs == 1
        return scores[:, 0] if (self._coef_1d or binary) else scores

    def _predicted(self, scores):
        """predict's answer from the scores."""
        return scores

    @_reads_model
    def set_params(self, **params):
        # as a read: waits for a fit or partial_fit under way, which goes on with the parameters it
        # began with (and, if it fails, puts back its own state only before this applies)
        return super().set_params(**params)

    @_reads_model
    def __getstate__(self):
        # as a prediction reads the model: never during a fit or partial_fit (waits for its end; one
        # that another thread starts while the pickler writes is the caller's race)
        state = dict(super().__getstate__())  # a copy: BaseEstimator's may be the instance's own __dict__
        state.pop("_calls_under_way", None)  # a copy has its own
        state.pop("_params_checked", None)  # (checked again by a copy: see _validate_params)
        state.pop("_published", None)  # a copy's own, if it shows its weights (__setstate__)
        # the weights pickled once (as scikit-learn's, and in a joblib file, which writes each
        # reference to an array apart): with the optimizer that steps them; coef_ and intercept_,
        # their views, and the epochs' scratch gradient (written before each read) made anew; the L1
        # penalty's state, which each call makes anew, not kept
        state.pop("_grad", None)
        state.pop("_l1_state", None)
        optimizer = state.get("_optimizer")
        if optimizer is not None and optimizer.param_groups[0]["params"][0] is self._theta:
            del state["_theta"]
        if hasattr(self, "_theta") and hasattr(self, "coef_") and self._published_shown():
            del state["coef_"], state["intercept_"]
            state["_views"] = True
        if sparse.issparse(state.get("coef_")):  # sparsified: the weights pickled sparse too, as coef_
            packed = {name: state.pop(name) for name in ("_optimizer", "_theta", "_average_theta") if name in state}
            buffer = io.BytesIO()
            _NonzerosPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(packed)
            state["_nonzeros"] = buffer.getvalue()
        return state

    def __setstate__(self, state):
        # coef_ and intercept_ are views of the flat parameter vector the optimizer updates, not
        # pickled (nor deep-copied): make them views again, so that the copy trains from the coef_
        # it shows, as the original does (a sparsified coef_, or arrays the user assigned, which
        # the next partial_fit goes on from, are pickled as they are)
        views = state.pop("_views", False)
        if "_nonzeros" in state:
            state.update(pickle.loads(state.pop("_nonzeros")))
        super().__setstate__(state)
        if "_theta" not in state and "_optimizer" in state:
            self._theta = self._optimizer.param_groups[0]["params"][0]
        if hasattr(self, "_theta"):
            self._grad = np.zeros(self._theta.shape, self._theta.dtype)  # (a plain array: _theta may be a memory map)
        self._join_optimizer()
        if views:
            self._publish()

    def _join_optimizer(self):
        """Make the optimizer step _theta itself: joblib writes each reference to an array as an
        array of its own (the optimizer's state kept)."""
        optimizer = vars(self).get("_optimizer")
        if optimizer is not None and optimizer.param_groups[0]["params"][0] is not self._theta:
            optimizer._adopt([self._theta])

    def _writable_arrays(self):
        """Copy the arrays a call trains that it cannot write: unpickled from read-only buffers
        (pickle 5's out-of-band ones) or as memory maps (joblib.load(mmap_mode=...)), which a model
        loaded for predictions shares with the file until it trains; and its own arrays (private)
        that are views of a buffer they were loaded from (pickle 5, joblib.load), which a failed
        call's _Snapshot would take for views of the model's arrays (coef_'s) and not copy."""
        shown = hasattr(self, "_theta") and hasattr(self, "coef_") and self._published_shown()
        copies = {}  # (all made before any is set: a copy that fails, out of memory, changes nothing)
        for name, value in vars(self).items():
            if not isinstance(value, np.ndarray):
                continue
            if not value.flags.writeable or type(value) is not np.ndarray:
                copies[name] = optim._writable(value)
            elif name.startswith("_") and value.base is not None:
                copies[name] = value.copy()
        if copies:
            vars(self).update(copies)
            self._join_optimizer()
            if shown:
                self._publish()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = self._multi_output
        return tags


class _BaseGD(_Driver):
    """LinearRegression's and LogisticRegression's parameters, and their schedules."""

    def __init_subclass__(cls, **kwargs):
        # each estimator's __init__ under its own name, so that a wrong keyword's TypeError names it
        super().__init_subclass__(**kwargs)
        if "__init__" not in vars(cls) and cls.__init__ is _BaseGD.__init__:
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
        "lazy_updates": ["boolean"],
        # (the optimizers' options: checked by the optimizers' rules, _OPTION_KINDS, in _validate_params;
        # listed here so that scikit-learn's check of the constraints finds every parameter)
        **{name: "no_validation" for name in _OPTION_KINDS},
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), None],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "average": [Interval(Integral, 0, None, closed="neither"), "boolean"],
    }

    def __init__(self, *, optimizer="sgd", learning_rate=0.01, batch_size=32, max_iter=100, tol=1e-4,
                 n_iter_no_change=5, alpha=0.0, fit_intercept=True, shuffle=True, lr_schedule="constant",
                 power_t=0.25, gamma=0.9, step_size=10, eta_min=0.0, early_stopping=False,
                 validation_fraction=0.1, random_state=None, warm_start=False, verbose=0,
                 momentum=0.9, dampening=0.0, betas=None, eps=None, amsgrad=False,
                 weight_decay=1e-2, rho=0.99, centered=False, lr_decay=0.0, initial_accumulator_value=0.0,
                 lazy_updates=False, penalty="l2", l1_ratio=0.15, average=False):
        _set_parameters(self, locals())

    # -- the driver's hooks, as these estimators define them (the drop-in SGD ones have theirs) --

    def fit(self, X, y, sample_weight=None):
        """Train for up to max_iter epochs (fewer if it converges), from zero weights, or with
        warm_start from the weights trained (in X's dtype; X's features and the outputs must match)."""
        with self._checked_call(partial=False):
            init = self._kept_weights() if self.warm_start and hasattr(self, "_theta") else None
            return self._fit(X, y, sample_weight, self.max_iter, reset=True, init=init)

    # The learning-rate schedules, for the compiled loop and the reference alike: per epoch
    # (_learning_rate: the closed forms of lr_scheduler's ExponentialLR, StepLR and
    # CosineAnnealingLR with T_max=max_iter), or per batch (_batch_rates: scikit-learn's
    # invscaling, written beside them); "adaptive" (scikit-learn's) is the driver's.
    def _learning_rate(self, epoch):
        eta0, schedule = float(self.learning_rate), self.lr_schedule
        if schedule == "exponential":
            return lr_scheduler._exponential_lr(eta0, self.gamma, epoch)
        if schedule == "step":
            return lr_scheduler._step_lr(eta0, self.gamma, self.step_size, epoch)
        if schedule == "cosine":
            # (a max_iter beyond a double, which scikit-learn's constraint takes: a cosine that flat)
            return lr_scheduler._cosine_lr(eta0, self.eta_min, min(self.max_iter, 1 << 62), epoch)
        return None  # constant, adaptive (set by the driver) and invscaling (per batch)

    def _batch_rates(self, n_batches):
        """The learning rate of each step the next epoch may take (n_batches, in order; the
        compiled epoch numbers them, see step_number), or None: the param group's lr throughout.
        invscaling: eta0 / t ** power_t, t counting the steps of the whole fit from 1."""
        if self.lr_schedule != "invscaling":
            return None
        return lr_scheduler._inverse_scaling_lr(float(self.learning_rate), float(self.power_t),
                                                self._step_numbers(n_batches))

    def _initial_lr(self):
        return float(self.learning_rate)

    def _schedule(self):
        return self.lr_schedule




#: parameter values that cannot change in place (a tuple of them neither)
_IMMUTABLE = (type(None), bool, int, float, str, np.generic)


def _immutable_params(params):
    """The parameters (get_params' dict) as (name, type, value), or None if one of them is of a
    type that may change in place (a dict, a list, a RandomState, ...)."""
    listed = []
    for name, value in params.items():
        if not (isinstance(value, _IMMUTABLE)
                or (type(value) is tuple and all(isinstance(item, _IMMUTABLE) for item in value))):
            return None
        listed.append((name, type(value), tuple(map(type, value)) if type(value) is tuple else None, value))
    return tuple(listed)


def _dense(weights, dtype, name):
    """Weights given or assigned (coef_init, coef_, ...) as an array of dtype: a sparse matrix's
    (sparsify() makes coef_ one; as scikit-learn, one may be assigned) densified through private,
    checked index arrays (as X's: see _own_indices; SciPy's toarray reads and writes through
    them unchecked, and the user may edit coef_.indices); name: the weights', for a message."""
    if not sparse.issparse(weights):
        return np.asarray(weights, dtype=dtype)
    if weights.ndim == 1 and weights.format == "dok":  # (a dict: no index arrays to check)
        weights = weights.tocoo()
    if weights.ndim == 1 and weights.format in ("csr", "coo"):  # SciPy's 1-D sparse arrays (sparsify() of one
        # output's coef_ makes a CSR one), as a row over the same arrays, checked as a matrix's
        try:  # (SciPy's constructors check the shapes of the arrays, and COO's its coordinates)
            row = (sparse.csr_matrix((weights.data, weights.indices, weights.indptr), shape=(1, weights.shape[0]),
                                     copy=False) if weights.format == "csr" else
                   sparse.coo_matrix((weights.data, (np.zeros_like(weights.coords[0]), weights.coords[0])),
                                     shape=(1, weights.shape[0]), copy=False))
        except ValueError as error:
            raise ValueError(f"{name}'s index arrays are out of range: {error}") from None
        return _dense(row, dtype, name).reshape(-1)
    if weights.ndim != 2:
        raise ValueError(f"{name} is a {weights.ndim}-D {weights.format.upper()} sparse array; expected a "
                         "2-D sparse matrix, a 1-D CSR, COO or DOK array, or a dense array")
    # (a CSR one checked once, in its private index arrays; the others as given, then converted)
    weights = _own_indices(weights, name=name) if weights.format == "csr" else _checked_before_conversion(weights, name)
    return np.asarray(weights.toarray(), dtype=dtype)


class _Diverged(ValueError):
    """A fit's objective became non-finite (its message says how to avoid it)."""


def _all_finite(weights):
    """Whether the weights are all finite: their sum of squares is (one read, no temporary), or
    else (it may overflow: no warning of that) each weight is."""
    with np.errstate(over="ignore"):
        return math.isfinite(weights @ weights) or bool(np.isfinite(weights).all())


def _check_finite(weights, name):
    if not np.isfinite(weights).all():
        raise ValueError(f"{name} holds NaN or inf; expected finite weights to start from")


def _weights_named(model):
    """What a row's weight is called in messages: the sample weight, times the class weight where the
    estimator has one."""
    return "sample_weight (times class_weight)" if hasattr(model, "class_weight") else "sample_weight"


def _label_type(label):
    """A label's type as _check_one_label_type tells them apart: "string" or "number"."""
    return "string" if isinstance(label, str) else "number"


def _check_one_label_type(labels, name):
    """Labels must be all strings or all numbers (np.unique cannot order a mix)."""
    if labels is None:
        return
    # a list as it is: NumPy would make ["a", 1] strings (scikit-learn refuses the mix there too)
    labels = labels if isinstance(labels, np.ndarray) else np.asarray(labels, dtype=object)
    if labels.dtype == object:
        kinds = {_label_type(label) for label in labels.ravel()}
        if len(kinds) > 1:
            raise ValueError(f"{name} mixes string and number labels; use labels of one type "
                             "(e.g. all strings: y.astype(str))")


def _check_same_classes(classes, known):
    """Raise ValueError unless the classes a later partial_fit call is given (None: none) are those
    the model has, known (set by the first fit or partial_fit)."""
    if classes is not None and not np.array_equal(np.unique(np.asarray(classes)), known):
        raise ValueError(f"classes={np.unique(np.asarray(classes)).tolist()} is not the same as the model's "
                         f"classes_, {known.tolist()} (of the first call to fit or partial_fit)")


def _class_index(model, y, classes, reset):
    """Each label's index in model.classes_, which the first call sets (from `classes`, or
    the labels of y), with model._n_outputs (one output for two classes, else one a class), and
    model._expanded_class_weight (a weight a class, from model.class_weight)."""
    for labels, name in ((y, "y"), (classes, "classes")):
        _check_one_label_type(labels, name)
    if classes is not None:  # an array-like of finite labels, as scikit-learn's unique_labels takes them
        kind = type_of_target(classes, input_name="classes")
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"Unknown label type in classes: {kind}; expected a 1-D array-like of class labels "
                             "(integers or strings)")
    if y.dtype.kind not in "biu":  # integer labels (y is 1-D) are classes already: spare a pass
        check_classification_targets(y)
    new_classes = reset or not hasattr(model, "classes_")
    if not new_classes:
        _check_same_classes(classes, model.classes_)
    if new_classes:
        model.classes_ = np.unique(y) if classes is None else np.unique(np.asarray(classes))
        if model.classes_.dtype == object:  # strings (numbers and mixes were refused): "<U", as scikit-learn's
            model.classes_ = model.classes_.astype(str)
        if model.classes_.size < 2:
            got = f"{model.classes_.size} class{'' if model.classes_.size == 1 else 'es'}: {model.classes_.tolist()}"
            raise ValueError(f"{type(model).__name__} needs samples of at least 2 classes; got {got}"
                             if classes is None else f"classes names {got}; {type(model).__name__} needs at "
                             "least 2, and every label that y may hold")
        model._n_outputs = 1 if model.classes_.size == 2 else model.classes_.size
    index = np.searchsorted(model.classes_, y)
    if not (new_classes and classes is None):  # classes taken from y know every label
        known = model.classes_[np.minimum(index, model.classes_.size - 1)] == y
        if not known.all():
            unknown = np.unique(y[~known])
            raise ValueError(f"y has labels {unknown.tolist()} not in classes {model.classes_.tolist()}")
    # each call's (partial_fit follows set_params); "balanced" from the call's own labels
    model._expanded_class_weight = (np.ones(model.classes_.size) if model.class_weight is None  # (its cost spared)
                                    else compute_class_weight(model.class_weight, classes=model.classes_, y=y))
    if not np.isfinite(model._expanded_class_weight).all():
        raise ValueError(f"class_weight={model.class_weight!r} holds NaN or inf; expected finite weights")
    return index


def _refuse_balanced_in_partial_fit(model):
    """As scikit-learn, on a first call only: "balanced" weights would be those of one batch's
    classes.  After a fit, a call weighs its rows by its own batch's balance, as scikit-learn's."""
    if getattr(model, "class_weight", None) == "balanced" and not hasattr(model, "classes_"):  # a regressor has none
        raise ValueError("class_weight='balanced' is not supported for partial_fit: compute the weights with "
                         "sklearn.utils.class_weight.compute_class_weight and pass them as a dict")


#: the bound of the seeds drawn from random_state (scikit-learn's MAX_INT, for C's int)
_MAX_INT = np.iinfo(np.int32).max

_GENERATORS = threading.local()


def _generator(random_state):
    """check_random_state(random_state), for draws made at once: an int seeds again a
    RandomState of this thread's (the same draws; making one takes about 0.1 ms, seeding 2 us,
    and a partial_fit of k classes apart draws from k + 1 seeds)."""
    if not isinstance(random_state, Integral):
        return check_random_state(random_state)
    if not hasattr(_GENERATORS, "generator"):
        _GENERATORS.generator = np.random.RandomState()
    _GENERATORS.generator.seed(random_state)
    return _GENERATORS.generator


#: scikit-learn 1.8 deprecates a negative power_t (its SGD warns after fit) and says that 1.10
#: refuses it: the drop-ins do as the scikit-learn installed
_REFUSES_NEGATIVE_POWER_T = tuple(int(part) for part in sklearn.__version__.split(".")[:2]) >= (1, 10)


class _NoImprovement:
    """scikit-learn's SGD stopping rule: a fit stops once `patience` epochs in a row have not
    brought the monitored value (the objective, or minus the validation score) tol below the
    best before them."""

    def __init__(self, tol, patience):
        self.tol, self.patience, self.best, self.count = tol, patience, math.inf, 0

    def ends_at(self, current):
        """Count an epoch that ended at `current`; returns whether the fit stops there."""
        self.count = self.count + 1 if current > self.best - self.tol else 0
        self.best = min(self.best, current)
        return self.count >= self.patience


#: held while an estimator's _Calls (its attribute _calls_under_way) is made, once
_CALL_LOCKS = threading.Lock()


class _Calls:
    """What runs on an estimator at once: one fit, partial_fit, sparsify or densify (another, in
    another thread, raises RuntimeError naming the one under way), and reads of the model
    (scores, predictions) never during one.  A read waits until the call under way ends (it
    then reads the new model, or the old one if the call failed: the weights mid-epoch,
    unscaled on sparse data, are neither), and a call waits until
    the reads under way end, and lets the reads that waited for the call before it in first (else
    a loop of partial_fit calls would starve them).  Reads by the training thread itself (early
    stopping's scores), and reads within a read, go through."""

    def __init__(self):
        self._condition = threading.Condition()
        self._readers = {}  # thread ident: its reads under way
        self._waiting = 0  # reads waiting for a call to end
        self._trainer = None  # the ident of the thread whose call is under way
        self._call = None  # and the call's name

    @contextlib.contextmanager
    def training(self, name, call):
        """The call (its method's name) of the estimator (its class's name) under way."""
        me = threading.get_ident()
        with self._condition:
            while self._waiting and self._trainer is None:
                self._condition.wait()
            if self._trainer is not None:
                where = "within it, in this thread" if self._trainer == me else "in another thread"
                raise RuntimeError(f"{call} refused: a {self._call} of this {name} is running already ({where}); "
                                   "an estimator runs one fit, partial_fit, sparsify or densify at a time")
            self._trainer, self._call = me, call
            try:
                while any(reader != me for reader in self._readers):
                    self._condition.wait()
            except BaseException:  # interrupted (Ctrl-C) while waiting: the call never started
                self._trainer = None
                self._condition.notify_all()
                raise
        try:
            yield
        finally:
            with self._condition:
                self._trainer = None
                self._condition.notify_all()

    def start_reading(self):
        me = threading.get_ident()
        with self._condition:
            if me not in self._readers and self._trainer != me:
                while self._trainer is not None:
                    self._waiting += 1
                    try:
                        self._condition.wait()
                    finally:
                        self._waiting -= 1
                if not self._waiting:
                    self._condition.notify_all()  # a call waiting for the waiting reads to start
            self._readers[me] = self._readers.get(me, 0) + 1

    def stop_reading(self):
        me = threading.get_ident()
        with self._condition:
            left = self._readers.pop(me) - 1
            if left:
                self._readers[me] = left
            else:
                self._condition.notify_all()


class _Snapshot:
    """An estimator's attributes, with copies of the contents of its arrays, lists, optimizer
    and random generators: what a failed call puts back.  Views (coef_ and intercept_ of the
    flat parameter vector) come back with the arrays they view; the gradient is scratch, and so
    are the weights and their average when the call leaves them untouched until it succeeds
    (weights False, see _trains_copies)."""

    def __init__(self, model, weights=True):
        self.model = model
        self.attributes = dict(vars(model))
        unchanged = ("_grad",) if weights else ("_grad", "_theta", "_average_theta")
        self.arrays = {k: v.copy() for k, v in self.attributes.items()
                       if isinstance(v, np.ndarray) and v.base is None and k not in unchanged}
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


class _LinearClassifier(ClassifierMixin):
    """What the two classifiers share: a score per class (one when binary), the label scored
    highest, and partial_fit's first call, which needs every class."""

    def _first_call(self, classes):
        """Whether this partial_fit is the first; it needs classes."""
        first = not hasattr(self, "coef_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return first

    def decision_function(self, X):
        """The scores X @ coef_.T + intercept_: one column per class, or one value when binary."""
        return self._scores(X)

    @_reads_model  # the scores and classes_ of one model
    def predict(self, X):
        return self._predicted(self.decision_function(X))

    def _predicted(self, scores):
        """The label scored highest."""
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]


class LinearRegression(RegressorMixin, _BaseGD):
    """Least squares (mean squared error / 2 + alpha/2 ||coef||^2) by mini-batch gradient descent.

    ``batch_size=1`` is stochastic gradient descent, ``None`` full-batch
    gradient descent; the optimizers are fastgd's (see ``optimizer``).
    """  # (its Parameters: _GD_PARAMETERS, added below)

    _loss = "squared"
    _multi_output = True
    _scalar_intercept = True

    def _targets(self, y, classes, reset, dtype):
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
        with self._checked_call(partial=True):
            return self._fit(X, y, sample_weight, 1, reset=not hasattr(self, "coef_"), partial=True)

    def _objective_at_zero(self, targets, sample_weight, rows):
        # the squared error / 2 of predicting 0, its weighted mean (in float64: y's squares may
        # leave float32's range)
        targets = targets.reshape(targets.shape[0], -1)
        if rows is not None:
            targets, sample_weight = targets[rows], None if sample_weight is None else sample_weight[rows]
        with np.errstate(over="ignore", invalid="ignore"):  # (weights beyond float64: the fit refuses them)
            if sample_weight is not None and not sample_weight.sum(dtype=np.float64) > 0:
                return None
            at_zero = float(np.average(np.square(targets, dtype=np.float64).sum(axis=1), weights=sample_weight)) / 2
        return at_zero if at_zero > 0 else None

    def _row_losses(self, scores, targets):
        return 0.5 * np.square(scores - targets).sum(axis=1)  # (the squared error / 2)

    def predict(self, X):
        """The fitted linear function at X."""
        return self._scores(X)


class LogisticRegression(_LinearClassifier, _BaseGD):
    """Logistic regression (mean log loss + alpha/2 ||coef||^2) by mini-batch gradient descent.

    Two classes give one weight vector (``coef_`` of shape (1, n_features));
    more give a multinomial (softmax) model with one row per class.
    """  # (its Parameters: _GD_PARAMETERS, and class_weight, added below)

    _coef_1d = False
    _parameter_constraints = {**_BaseGD._parameter_constraints,
                              "class_weight": [StrOptions({"balanced"}), dict, None]}

    def __init__(self, *, optimizer="sgd", learning_rate=0.01, batch_size=32, max_iter=100, tol=1e-4,
                 n_iter_no_change=5, alpha=0.0, fit_intercept=True, shuffle=True, lr_schedule="constant",
                 power_t=0.25, gamma=0.9, step_size=10, eta_min=0.0, early_stopping=False,
                 validation_fraction=0.1, random_state=None, warm_start=False, verbose=0,
                 momentum=0.9, dampening=0.0, betas=None, eps=None, amsgrad=False,
                 weight_decay=1e-2, rho=0.99, centered=False, lr_decay=0.0, initial_accumulator_value=0.0,
                 lazy_updates=False, penalty="l2", l1_ratio=0.15, average=False, class_weight=None):
        # (the shared parameters' defaults are _BaseGD's: tests/test_linear_model.py checks it)
        _set_parameters(self, locals())

    def _targets(self, y, classes, reset, dtype):
        index = _class_index(self, y, classes, reset)
        self._loss = "log" if self.classes_.size == 2 else "multinomial"
        exact = 2 ** (np.finfo(dtype).nmant + 1)  # the compiled loop reads each row's class index in X's dtype
        if self.classes_.size - 1 > exact:
            raise ValueError(f"{self.classes_.size} classes: {np.dtype(dtype).name} X holds class indices exactly up "
                             f"to {exact} only (each row's index reaches the compiled loop in X's dtype); pass X as "
                             "float64")
        return index

    def _weight_sum(self, y, sample_weight, classes):
        # the class weights folded in, as _class_weighted folds them: "balanced" by these rows'
        # labels, as a call on them weighs them (DataParallel gives its replicas the dict of all of y's)
        if self.class_weight is None:
            return super()._weight_sum(y, sample_weight, classes)
        per_class = compute_class_weight(self.class_weight, classes=classes, y=y)
        index = np.minimum(np.searchsorted(classes, y), classes.size - 1)  # (an unknown label: the call refuses it)
        weights = per_class[index]
        return float(np.sum(weights if sample_weight is None else weights * sample_weight, dtype=np.float64))

    def _class_weighted(self, sample_weight, targets, dtype):
        """sample_weight times each row's class weight, as scikit-learn's LogisticRegression weighs
        rows (the objective is then their weighted mean loss)."""
        weights = np.asarray(self._expanded_class_weight, dtype=np.float64)
        if np.all(weights == 1):
            return sample_weight
        per_row = weights[targets.astype(np.intp)].astype(dtype)
        return per_row if sample_weight is None else sample_weight * per_row

    def _objective_at_zero(self, targets, sample_weight, rows):
        return math.log(len(self.classes_))  # the log loss of even odds, whatever the weights

    def _row_losses(self, scores, targets):
        index = targets[:, 0].astype(np.intp)  # (each row's class index)
        if scores.shape[1] == 1:  # two classes: log(1 + e^s) - [class 1] s
            return np.logaddexp(0.0, scores[:, 0]) - index * scores[:, 0]
        top = scores.max(axis=1)  # the softmax's: log sum e^s - s of the row's class
        return top + np.log(np.exp(scores - top[:, None]).sum(axis=1)) - scores[np.arange(index.size), index]

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), keeping the weights and optimizer state of earlier calls; the
        current parameters apply (another optimizer starts with a new state).

        The first call needs ``classes``, every label that will ever be seen; later calls may
        pass the same classes again."""
        with self._checked_call(partial=True):
            first = self._first_call(classes)
            return self._fit(X, y, sample_weight, 1, reset=first, classes=classes, partial=True)

    def predict_proba(self, X):
        """Class probabilities; each row sums to 1."""
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """The logarithms of the class probabilities, computed without overflow for any score."""
        scores = self.decision_function(X)
        with np.errstate(under="ignore"):  # a confident row's probability rounds to 0 or 1
            if scores.ndim == 1:  # log sigmoid(-z), log sigmoid(z): -log(1 + exp(-+z)), stably
                scores = np.column_stack([-scores, scores])
                return -np.logaddexp(0, -scores)
            shifted = scores - scores.max(axis=1, keepdims=True)
            return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# -- scikit-learn's SGDClassifier and SGDRegressor, as drop-in replacements -------------------

# scikit-learn's loss name -> (the epoch's loss, its epsilon: a fixed threshold, or None for the
# estimator's epsilon parameter)
SGD_LOSSES = {
    "hinge": ("hinge", 1.0), "perceptron": ("hinge", 0.0), "squared_hinge": ("squared_hinge", 1.0),
    "modified_huber": ("modified_huber", 0.0), "log_loss": ("margin_log", 0.0),
    "squared_error": ("squared_error", 0.0), "huber": ("huber", None), "epsilon_insensitive": ("epsilon_insensitive", None),
    "squared_epsilon_insensitive": ("squared_epsilon_insensitive", None),
}
#: the Parameters section of LinearRegression's and LogisticRegression's docstrings (the README's
#: table says more of each)
_GD_PARAMETERS = """
    Parameters
    ----------
    optimizer : str, default="sgd"
        "sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad", "adamax",
        "adadelta", "lion", "radam" or "nadam": fastgd's optimizers, as torch.optim's.
    learning_rate : float, default=0.01
        The initial learning rate.
    batch_size : int or None, default=32
        Rows per step: 1 is stochastic gradient descent, None full-batch gradient descent.
    max_iter : int, default=100
        Epochs at most.
    tol : float or None, default=1e-4
        Stop when the objective (or the validation score) has not improved by tol for
        n_iter_no_change epochs; None runs every epoch.
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping (or, "adaptive", dividing the rate by 5).
    alpha : float, default=0.0
        Strength of the penalty (alpha / 2 ||coef||^2 for "l2").
    fit_intercept : bool, default=True
        Learn an intercept.
    shuffle : bool, default=True
        Shuffle the rows every epoch.
    lr_schedule : str, default="constant"
        "constant", "invscaling" (learning_rate / t ** power_t a step), "exponential"
        (learning_rate * gamma ** epoch), "step" (learning_rate * gamma ** (epoch // step_size)),
        "cosine" (down to eta_min at max_iter) or "adaptive" (scikit-learn's).
    power_t, gamma, step_size, eta_min : float, float, int, float, default=0.25, 0.9, 10, 0.0
        The schedules' settings (see lr_schedule).
    early_stopping : bool, default=False
        Hold out validation_fraction of the rows and stop on their score.
    validation_fraction : float, default=0.1
        The share held out for early stopping.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffles and the validation split.
    warm_start : bool, default=False
        fit starts from the weights trained before, with a new optimizer state.
    verbose : int, default=0
        Print each epoch's objective.
    momentum, dampening : float, default=0.9, 0.0
        Those of "momentum" and "nesterov" (dampening: "momentum" only).
    betas, eps : pair of float or None, float or None, default=None
        Those of the optimizers that have them (None: the optimizer's default).
    amsgrad : bool, default=False
        AMSGrad, for "adam" and "adamw".
    weight_decay : float, default=1e-2
        The decoupled weight decay of "adamw".
    rho, centered : float, bool, default=0.99, False
        "rmsprop"'s smoothing constant (its alpha), and whether it is centered.
    lr_decay, initial_accumulator_value : float, default=0.0
        "adagrad"'s learning-rate decay and starting sum.
    lazy_updates : bool, default=False
        On sparse data, an optimizer other than plain SGD steps only the weights a batch touches.
    penalty : {"l2", "l1", "elasticnet"} or None, default="l2"
        The penalty; L1 by the cumulative truncated gradient, after each step.
    l1_ratio : float, default=0.15
        The L1 share of "elasticnet".
    average : bool or int, default=False
        Averaged SGD: coef_ and intercept_ are the mean of the iterates from the first step
        (True) or from step `average` on.
"""

#: the Parameters section of the drop-ins' docstrings (%s: the scikit-learn class)
_SGD_PARAMETERS = """
    Parameters
    ----------
    loss, penalty, alpha, l1_ratio, fit_intercept, max_iter, tol, shuffle, verbose, epsilon, \
%srandom_state, learning_rate, eta0, power_t, early_stopping, validation_fraction, \
n_iter_no_change, %swarm_start, average
        scikit-learn's %s's, with its defaults and meanings (learning_rate also "pa1" and
        "pa2", the passive-aggressive steps of eta0 as aggressiveness C).
    batch_size : int or None, default=1
        Rows per step: 1 is scikit-learn's per-sample SGD, None full-batch gradient descent.
    optimizer : str, default="sgd"
        "sgd" (scikit-learn's algorithm; "momentum" with momentum=0 is the same), or another of
        fastgd's optimizers: "momentum",
        "nesterov", "rmsprop", "adam", "adamw", "adagrad", "adamax", "adadelta", "lion", "radam",
        "nadam", stepping with learning_rate's rates. learning_rate="optimal" (SGDClassifier's default) sizes
        plain SGD's steps: with an optimizer other than "sgd", "momentum" and "nesterov" (whose
        steps are about the rate, whatever the gradient's size) it warns; pass
        learning_rate="constant" and eta0 (1e-3, say) there.
    momentum, dampening, betas, eps, amsgrad, weight_decay, rho, centered, lr_decay, \
initial_accumulator_value
        The optimizers' options, as LinearRegression's.
    lazy_updates : bool, default=False
        On sparse data, an optimizer other than plain SGD steps only the weights a batch touches.
"""

SGD_SCHEDULES = ("constant", "optimal", "invscaling", "adaptive", "pa1", "pa2")
#: scikit-learn's passive-aggressive steps (its learning_rate) -> the epoch's passive_aggressive
PASSIVE_AGGRESSIVE = {"pa1": 1, "pa2": 2}
SPARSE_INTERCEPT_DECAY = 0.01


class _SGDDropIn(_Driver):
    """scikit-learn's SGD parameters (names, defaults and meanings) over fastgd's training
    driver: per-sample SGD at batch_size=1 with optimizer="sgd", scikit-learn's algorithm;
    mini-batches and the other optimizers beside it.

    Sample and class weights scale each row's step, as in scikit-learn (not the weighted
    mean of LinearRegression).  The L1 penalty (l1, elasticnet) is scikit-learn's cumulative
    truncated gradient, applied after each step: it sets weights exactly to zero, as a
    proximal step would, and keeps scikit-learn's results.  The convergence test is
    scikit-learn's (see _objective).
    """

    _sgd_bookkeeping = True
    _refit_from_trained = False  # see _Driver: scikit-learn's SGDClassifier starts from coef_

    def _per_sample_sgd(self):
        """Whether the estimator runs scikit-learn's algorithm: plain SGD a row at a time."""
        return self.batch_size == 1 and self._plain_sgd()

    def _shuffles_as_scikit_learn(self):
        return self._per_sample_sgd()

    def _intercepts_carried(self, reset):
        """Which of the intercepts kept in double ([k intercepts, k averages], Objective's
        sgd_intercepts) this call goes on from, as scikit-learn does where its intercept_ (or
        _standard_intercept, _average_intercept) is a float64 array: a binary classifier's
        intercept into a partial_fit; the others it rounds to the data's dtype between calls."""
        return np.array([not reset and self._n_outputs == 1, False])[np.repeat([0, 1], self._n_outputs)]

    _parameter_constraints = {
        **{name: constraint for name, constraint in _BaseGD._parameter_constraints.items()
           if name not in ("learning_rate", "lr_schedule", "gamma", "step_size", "eta_min", "power_t")},
        "loss": [StrOptions(set(SGD_LOSSES))],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), None],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [StrOptions(set(SGD_SCHEDULES))],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left") if _REFUSES_NEGATIVE_POWER_T
                    else Interval(Real, None, None, closed="neither")],
        "n_jobs": [Integral, None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def _more_checks(self, for_partial_fit):
        # as scikit-learn, on a first partial_fit only (after a fit, a partial_fit holds out
        # rows as fit does, and runs its one epoch on the others)
        if self.early_stopping and for_partial_fit and not hasattr(self, "coef_"):
            raise ValueError("early_stopping should be False with partial_fit")
        super()._more_checks(for_partial_fit)
        if getattr(self, "n_jobs", None) == 0:  # joblib's error, which scikit-learn meets on every path
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if self.learning_rate == "optimal" and self.alpha == 0:
            raise ValueError("alpha must be > 0 since learning_rate is 'optimal': alpha is used to compute "
                             "the optimal learning rate")
        if self.learning_rate == "optimal" and self.optimizer not in GRADIENT_SIZED:
            first = lr_scheduler._optimal_lr(float(self.alpha), 1)
            default = " (the default)" if _defaults_of(type(self)).get("learning_rate") == "optimal" else ""
            warnings.warn(f"learning_rate='optimal'{default} is plain SGD's schedule, 1 / (alpha (t0 + t)), "
                          f"whose first rate is {first:.3g} at alpha={self.alpha:g}; optimizer={self.optimizer!r} "
                          "steps each weight by about its rate whatever the gradient's size, so such rates throw "
                          "the weights far and train a poor model. Pass learning_rate='constant' (or 'invscaling', "
                          "'adaptive') and eta0, e.g. eta0=1e-3 (torch's Adam default)", UserWarning, stacklevel=5)
        if self.penalty == "elasticnet" and self.l1_ratio is None:
            raise ValueError("l1_ratio must be set when penalty is 'elasticnet'")
        if self.learning_rate in PASSIVE_AGGRESSIVE:
            needed = "hinge" if isinstance(self, ClassifierMixin) else "epsilon_insensitive"
            if self.loss != needed:
                raise ValueError(f"Learning rate {self.learning_rate!r} only works with loss {needed!r}")
            if not self._per_sample_sgd():
                raise ValueError(f"learning_rate={self.learning_rate!r} is an online step of its own, a row at a time "
                                 f"(eta0 its aggressiveness); it needs plain SGD (optimizer='sgd', or 'momentum' with "
                                 f"momentum=0) and batch_size=1, got optimizer={self.optimizer!r}, "
                                 f"batch_size={self.batch_size!r}")

    def _initial_lr(self):
        return 1.0 if self.learning_rate == "optimal" else float(self.eta0)  # "optimal": per batch

    def _start_call(self, reset):
        super()._start_call(reset)
        if self.learning_rate == "adaptive":  # scikit-learn's rate is a call's: each starts at eta0
            self._optimizer.param_groups[0]["lr"] = self._initial_lr()

    def _schedule(self):
        return self.learning_rate

    def _learning_rate(self, epoch):
        return None  # scikit-learn's schedules are per step (_batch_rates) or the driver's (adaptive)

    def _batch_rates(self, n_batches):
        """invscaling: eta0 / t ** power_t; optimal: 1 / (alpha (t0 + t - 1)), t counting the steps of
        the whole fit from 1 (scikit-learn counts samples: the same at batch_size=1); see _BaseGD's."""
        t = self._step_numbers(n_batches)
        if self.learning_rate == "invscaling":
            return lr_scheduler._inverse_scaling_lr(float(self.eta0), float(self.power_t), t)
        if self.learning_rate == "optimal":
            return lr_scheduler._optimal_lr(float(self.alpha), t)
        return None

    def _penalty(self, flat=None):
        return 0.0  # (each row's term holds it: see _objective)

    def _objective(self, loss_sum, weight_sum, sgd_sum, n, penalty):
        """scikit-learn's (>= 1.8): the mean over the epoch's rows of each row's loss (unweighted)
        plus the penalty of the weights' norms as its weight vector keeps them before the row's
        step (see Objective's sgd_objective; passive-aggressive steps: the loss alone).  The one
        place of this rule: _penalty and _objective_share follow it."""
        return sgd_sum / n

    def _objective_share(self, y, sample_weight, classes):
        return float(len(y))  # (a mean over rows: see _objective)

    def _objective_options(self):
        epsilon = SGD_LOSSES[self.loss][1]
        return dict(super()._objective_options(), epsilon=self.epsilon if epsilon is None else epsilon,
                    weights_scale_steps=True, clamp_decay=True, sgd_objective=True, sgd_norms=self._sgd_norms,
                    sgd_intercepts=self._sgd_intercepts,
                    passive_aggressive=PASSIVE_AGGRESSIVE.get(self.learning_rate, 0),
                    aggressiveness=float(self.eta0), **self._class_weights())

    def _class_weights(self):
        return {}

    def _intercept_decay(self, X):
        # scikit-learn's SGD steps the intercept by a hundredth of its gradient on sparse data
        return SPARSE_INTERCEPT_DECAY if sparse.issparse(X) else 1.0

    @property
    def _loss(self):
        return SGD_LOSSES[self.loss][0]

    @property
    def t_(self):
        """1 + the number of steps taken (scikit-learn's t_; it counts samples, the same at batch_size=1)."""
        check_is_fitted(self, "coef_")
        return float(self._next_step())

    def densify(self):
        """coef_ as a dense array again (after sparsify), edits made to the sparse one kept (as
        scikit-learn's: the next partial_fit goes on from it, see _follow_weights); returns the
        estimator."""
        with self._calls().training(type(self).__name__, "densify"):  # never while a fit changes coef_
            check_is_fitted(self, "coef_")
            if sparse.issparse(self.coef_):
                self.coef_ = _dense(self.coef_, None, "coef_").reshape(-1 if self._coef_1d else (self._n_outputs, -1))
        return self

    def sparsify(self):
        """coef_ as a scipy.sparse CSR matrix (or array, as scikit-learn's sparse_interface setting
        says), for models with mostly zero weights (L1); predictions are the same.  Training goes on
        from the dense weights; fit and partial_fit make coef_ dense.  Pickled, a sparsified model
        writes the arrays it keeps that are less than half nonzero (the weights trained, an optimizer's
        state) as their nonzeros."""
        with self._calls().training(type(self).__name__, "sparsify"):  # never while a fit changes coef_
            check_is_fitted(self, "coef_")
            if sparse.issparse(self.coef_):  # sparsified already: as it is, as scikit-learn's
                return self
            # scikit-learn's: where its configuration names a sparse interface (1.9 on), coef_'s shape
            # in that interface's CSR class; before, a CSR matrix (of a regressor's coef_ as one row)
            interface = get_config().get("sparse_interface")
            if interface is None:
                self.coef_ = sparse.csr_matrix(np.atleast_2d(self.coef_))
            else:
                coef = sparse.csr_array(self.coef_)
                self.coef_ = coef if interface == "sparray" else sparse.csr_matrix(coef)
        return self

    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Train for up to max_iter epochs (fewer if it converges), from coef_init and intercept_init
        (default: zero, or the current weights with warm_start)."""
        with self._checked_call(partial=False):
            if self.warm_start and coef_init is None and intercept_init is None and hasattr(self, "coef_"):
                init = self._kept_weights()
            else:
                init = (coef_init, intercept_init)
            if self.power_t < 0:  # scikit-learn's deprecation (its fit warns after training; partial_fit not
                # at all): before it here, so that a warning made an error leaves the model as it was
                warnings.warn("Negative values for `power_t` are deprecated in version 1.8 and will raise an error "
                              "in 1.10. Use values in the range [0.0, inf) instead.", FutureWarning)
            self._fit(X, y, sample_weight, self.max_iter, reset=True, init=init)
        return self


class SGDRegressor(RegressorMixin, _SGDDropIn):
    """scikit-learn's SGDRegressor (same parameters and defaults; the same results at batch_size=1,
    with the rows in their order or shuffled as scikit-learn shuffles them), with
    mini-batches (batch_size) and fastgd's optimizers (optimizer and its options)."""  # (and _SGD_PARAMETERS)

    _parameter_constraints = {**_SGDDropIn._parameter_constraints,
                              "loss": [StrOptions({"squared_error", "huber", "epsilon_insensitive",
                                                   "squared_epsilon_insensitive"})]}
    _coef_1d = True
    _refit_from_trained = True  # see _Driver: scikit-learn's SGDRegressor refits from the weights trained

    def _draw_seeds(self, rng, hold_out):
        # scikit-learn's _fit_regressor: the split, the shuffling seed, then its dataset's seed
        split = None if hold_out is None else hold_out()
        seed = rng.randint(0, _MAX_INT)
        rng.randint(1, _MAX_INT)
        return [seed], split

    def _intercepts_carried(self, reset):
        # scikit-learn's regressor keeps both in float64, into a partial_fit and a warm refit
        return np.full(2, not reset or self.warm_start)

    def __init__(self, loss="squared_error", *, penalty="l2", alpha=0.0001, l1_ratio=0.15, fit_intercept=True,
                 max_iter=1000, tol=1e-3, shuffle=True, verbose=0, epsilon=0.1, random_state=None,
                 learning_rate="invscaling", eta0=0.01, power_t=0.25, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=5, warm_start=False, average=False,
                 batch_size=1, optimizer="sgd", momentum=0.9, dampening=0.0, betas=None, eps=None,
                 amsgrad=False, weight_decay=1e-2, rho=0.99, centered=False, lr_decay=0.0,
                 initial_accumulator_value=0.0, lazy_updates=False):
        _set_parameters(self, locals())

    def _targets(self, y, classes, reset, dtype):
        self._n_outputs = 1
        return y

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), going on from the weights and optimizer state of earlier calls."""
        with self._checked_call(partial=True):
            return self._fit(X, y, sample_weight, 1, reset=not hasattr(self, "coef_"), partial=True)

    def predict(self, X):
        """The fitted linear function at X."""
        return self._scores(X)


def _split(flat, k):
    """The flat parameter vector of k outputs (the compiled loop's layout: k rows of weights, then
    the k intercepts) as views of its weights, (k, d), and of its intercepts."""
    return flat[:flat.size - k].reshape(k, -1), flat[flat.size - k:]


def _class_row(flat, k, c, row):
    """Copy class c's weights and intercept (of k classes in the flat vector, see _split) into
    row (d + 1 values): what _write_rows writes back."""
    weights, intercepts = _split(flat, k)
    row[:-1], row[-1] = weights[c], intercepts[c]


def _write_rows(pairs):
    """Write each (flat vector, rows) pair's rows (row c: class c's weights and intercept, as
    _class_row copies them) into its flat vector, in two copies (made again if run again)."""
    for flat, rows in pairs:
        weights, intercepts = _split(flat, rows.shape[0])
        weights[...], intercepts[...] = rows[:, :-1], rows[:, -1]


def _fit_binary_draws(rng, hold_out=None):
    """scikit-learn's fit_binary's draws from rng: its dataset's seed, the early-stopping split
    (hold_out's, if given), then the shuffling seed; returns ([that seed], the split or None)."""
    rng.randint(1, _MAX_INT)
    split = None if hold_out is None else hold_out()
    return [int(rng.randint(_MAX_INT))], split


class SGDClassifier(_LinearClassifier, _SGDDropIn):
    """scikit-learn's SGDClassifier (same parameters and defaults; the same results at batch_size=1,
    with the rows in their order or shuffled as scikit-learn shuffles them; more than two classes
    one vs all), with mini-batches (batch_size) and fastgd's optimizers (optimizer and its options).
    The classes of one vs all are trained together, in one pass over the data an epoch, but in a
    fit with tol set and in every call of per-sample SGD shuffled or with weights of more than
    8 MB: there, as in scikit-learn, each class is trained apart (stops on its own, takes the rows
    in an order of its own, keeps its weights in cache), n_jobs classes at a time."""
    # (its Parameters: _SGD_PARAMETERS, added below)

    _coef_1d = False

    def __init__(self, loss="hinge", *, penalty="l2", alpha=0.0001, l1_ratio=0.15, fit_intercept=True,
                 max_iter=1000, tol=1e-3, shuffle=True, verbose=0, epsilon=0.1, n_jobs=None, random_state=None,
                 learning_rate="optimal", eta0=0.01, power_t=0.5, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, class_weight=None, warm_start=False, average=False,
                 batch_size=1, optimizer="sgd", momentum=0.9, dampening=0.0, betas=None, eps=None,
                 amsgrad=False, weight_decay=1e-2, rho=0.99, centered=False, lr_decay=0.0,
                 initial_accumulator_value=0.0, lazy_updates=False):
        _set_parameters(self, locals())

    def _targets(self, y, classes, reset, dtype):
        if y.ndim != 1:
            raise ValueError(f"y has shape {y.shape}; SGDClassifier takes one label a row (1-D y)")
        index = _class_index(self, y, classes, reset)
        k = self._n_outputs
        # +1 for the row's class, -1 for the others (one vs all; class 1 of two)
        columns = np.array([1]) if k == 1 else np.arange(k)
        return np.where(index[:, None] == columns, 1.0, -1.0).reshape(-1) if k > 1 else np.where(index == 1, 1.0, -1.0)

    #: the size of the weights (bytes) beyond which per-sample SGD trains a class at a time, its
    #: weights staying in cache, rather than all in one pass (20 classes on CSR rows, one thread: at
    #: 2^18 features a pass per class took half as long as one pass for all, at 2^14 twice as long)
    _APART_BYTES = 8 << 20

    def _classes_apart(self, reset):
        # (shuffled, scikit-learn's per-sample SGD takes each class's rows in an order of its own)
        return self._n_outputs > 1 and ((reset and self.tol is not None) or (
            self._shuffles_as_scikit_learn() and (self.shuffle or self._theta.nbytes > self._APART_BYTES)))

    def _trains_copies(self, reset):
        # a partial_fit of classes apart going on from the weights it trained (else they may be
        # the user's coef_, which _follow_weights copies in first)
        return not reset and self._classes_apart(reset) and self._shows_weights()

    def _draw_seeds(self, rng, hold_out):
        if self._n_outputs == 1:
            return _fit_binary_draws(rng, hold_out)
        # its _fit_multiclass: the split, then a seed per class (a class trained apart draws its
        # shuffling seed from it: _one_class)
        split = None if hold_out is None else hold_out()
        return rng.randint(_MAX_INT, size=self._n_outputs).tolist(), split

    def _fit_classes_apart(self, X, targets, sample_weight, n_epochs, train, validation, seeds, partial):
        """A call's epochs as scikit-learn's one vs all (see _classes_apart): each class trained apart, a
        binary model of its own (class weight and shuffling seed its own, on the held-out rows all
        share), so that it stops, and with "adaptive" lowers its rate, on its own; n_jobs classes
        at a time, on threads (scikit-learn's joblib Parallel, as its own).  Afterwards n_iter_ is
        the most epochs a class ran and t_ counts that many; per epoch, loss_curve_ holds the
        classes' objectives summed and validation_scores_ their one-vs-all scores averaged, a
        stopped class's last value kept; the optimizer starts anew (plain SGD has no state).
        seeds: each class's shuffling seed (_draw_seeds'); partial: a partial_fit, which goes on
        with the average and warns of nothing.
        Returns whether a class ran all max_iter epochs, and the (flat vector, rows) pairs that
        _fit writes back (_write_rows) once the call has succeeded."""
        k, d = self._n_outputs, X.shape[1]
        targets = targets.reshape(-1, k)
        # each class's weights and intercept (and average) a row of one array, which it trains in place:
        # copied in as its training starts (then in cache for it), all written back as the call's last
        # step, once it has succeeded (_fit: a partial_fit then needs no copy to put back, see
        # _trains_copies); the weights' rows in the gradient's scratch array, which this path leaves
        # unused (a new array each call would cost a page fault every 4 kB)
        rows = self._grad.reshape(k, d + 1)
        averages = np.empty_like(rows) if self.average else None
        # their gradients' scratch, as _grad: written before each read (plain SGD's scaled step never
        # writes it).  np.empty, not np.zeros: once glibc serves arrays this large from its heap, as it
        # does after one is freed, np.zeros writes their zeros, 24 MB a partial_fit call at 3 x 2^20 weights
        grads = np.empty(rows.shape, rows.dtype)
        classes = [self._one_class(c, rows[c], grads[c], None if averages is None else averages[c], seeds[c])
                   for c in range(k)]  # made here: they read self
        # (flat vector, its classes' rows): each class copies its row in, _fit writes them all back
        pairs = [(self._theta, rows)] + ([(self._average_theta, averages)] if self.average else [])
        stop = threading.Event()
        running, idle = [0], threading.Condition()  # the classes training, and their end

        def fit(c, one):
            # a class that fails stops the others, and the fit fails once every thread has returned
            # (joblib would raise at once, and leave the other classes training)
            with idle:
                running[0] += 1
            try:
                return fit_class(c, one)
            finally:
                with idle:
                    running[0] -= 1
                    idle.notify_all()

        def fit_class(c, one):
            if stop.is_set():  # (started after the call failed: trains nothing)
                return False, None
            one_validation = None
            if validation is not None:
                held_out, labels, weight = validation
                one_validation = (held_out, np.where(labels == self.classes_[c], 1, -1), weight)
            try:
                for flat, class_rows in pairs:
                    _class_row(flat, k, c, class_rows[c])
                ran_out = one._run_epochs(X, np.ascontiguousarray(targets[:, c]), sample_weight, n_epochs, train,
                                          one_validation, stop)
                return ran_out, None
            except BaseException as error:
                stop.set()
                return False, error

        try:
            outcomes = Parallel(n_jobs=self.n_jobs, require="sharedmem")(
                delayed(fit)(c, one) for c, one in enumerate(classes))
        except BaseException:  # this thread's (Ctrl-C, say): the classes still training end too, and
            stop.set()  # the call fails once none trains its row (joblib leaves its threads running)
            with idle:
                while running[0]:
                    idle.wait()
            raise
        for _, error in outcomes:
            if error is not None:
                raise error
        rising = [] if partial else [(label, said) for label, one in zip(self.classes_, classes)
                                     if (said := one._rising())]
        ran_out = any(ran for ran, _ in outcomes) and not rising
        if rising:
            label = rising[0][0].item() if isinstance(rising[0][0], np.generic) else rising[0][0]
            warnings.warn(f"{len(rising)} of the {k} classes (one vs all) diverged; class {label!r}: "
                          f"{rising[0][1]}", ConvergenceWarning)
        self.n_iter_ = max(one.n_iter_ for one in classes)
        self._t[0] = max(one._t[0] for one in classes)

        def held(lists):  # each class's values, its last one kept to the end
            return np.array([values + values[-1:] * (self.n_iter_ - len(values)) for values in lists])

        with np.errstate(over="ignore"):  # (huge objectives sum to inf; a fit's curve starts empty)
            self.loss_curve_ += held([one.loss_curve_ for one in classes]).sum(axis=0).tolist()
        if validation is not None:
            self.validation_scores_ = held([one.validation_scores_ for one in classes]).mean(axis=0).tolist()
        self._publish()
        return ran_out, pairs

    def _one_class(self, c, theta, grad, average, seed):
        """Class c of one vs all as a binary model of its own, at the start of a call: its weights
        and intercept theta (and their average, or None), which it trains in place, its gradient's
        scratch grad, its class weight (the rest's is 1), its shuffling seed drawn from seed, as
        scikit-learn's fit_binary draws it."""
        # self's parameters, as clone would give them but not copied: the model reads them only
        one = type(self)(**self.get_params(deep=False))
        one._n_outputs, one.n_features_in_, one.classes_ = 1, self.n_features_in_, np.array([-1, 1])
        one._expanded_class_weight = np.array([1.0, self._expanded_class_weight[c]])  # the rest, then the class
        one._theta, one._grad, one._t = theta, grad, self._t.copy()
        one._optimizer = one._new_optimizer()
        one._seed_shuffles(_fit_binary_draws(_generator(seed))[0][0])
        one.n_iter_, one.loss_curve_ = 0, []
        one.validation_scores_ = [] if self.early_stopping else None
        if self.average:  # (as this call's _start_call left it: new in a fit, going on in a partial_fit)
            one._average_theta = average
            one._average_start, one._averaged_as = self._average_start, self._averaged_as
        one._start_call(reset=False)
        return one

    def _class_weights(self):
        weights = np.asarray(self._expanded_class_weight, dtype=np.float64)
        if np.all(weights == 1):
            return {}
        if self._n_outputs == 1:  # binary: class 1 is +1, class 0 is -1
            return {"weight_pos": weights[1:].copy(), "weight_neg": weights[:1].copy()}
        return {"weight_pos": weights.copy(), "weight_neg": np.ones_like(weights)}

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), going on from the weights and optimizer state of earlier calls.
        The first call needs ``classes``, every label that will ever be seen."""
        with self._checked_call(partial=True):
            first = self._first_call(classes)
            return self._fit(X, y, sample_weight, 1, reset=first, classes=classes, partial=True)

    def _has_probabilities(self):
        if self.loss not in ("log_loss", "modified_huber"):
            raise AttributeError(f"probability estimates are not available for loss={self.loss!r}")
        return True

    @available_if(_has_probabilities)
    def predict_proba(self, X):
        """Class probabilities (log_loss: the logistic model's, normalized one vs all; modified_huber:
        (clip(score, -1, 1) + 1) / 2, normalized), as scikit-learn's."""
        scores = self.decision_function(X).astype(np.float64)  # float32 scores would tie sooner
        if self.loss == "log_loss":  # (scikit-learn's expit: below about -709 a score's is 0, and
            positive = _expit(scores)  # a row of such scores uniform; 1 - expit(s) 0 above about 36)
        else:
            positive = (np.clip(scores, -1, 1) + 1) / 2
        if scores.ndim == 1:
            return np.column_stack([1 - positive, positive])
        total = positive.sum(axis=1, keepdims=True)
        uniform = total == 0  # modified_huber: every class below -1
        return np.where(uniform, 1 / positive.shape[1], positive / np.where(uniform, 1, total))

    @available_if(_has_probabilities)
    def predict_log_proba(self, X):
        """The logarithms of predict_proba."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


def _set_parameters(model, values):
    for name, value in values.items():
        if name not in ("self", "__class__"):
            setattr(model, name, value)


LinearRegression.__doc__ = LinearRegression.__doc__.rstrip() + "\n" + _GD_PARAMETERS
LogisticRegression.__doc__ = LogisticRegression.__doc__.rstrip() + "\n" + _GD_PARAMETERS + """\
    class_weight : dict, "balanced" or None, default=None
        A weight per class, multiplying its rows' sample weights ("balanced": n_samples /
        (n_classes * count)).
"""
SGDClassifier.__doc__ = SGDClassifier.__doc__.rstrip() + "\n" + _SGD_PARAMETERS % ("n_jobs, ", "class_weight, ",
                                                                                   "SGDClassifier")
SGDRegressor.__doc__ = SGDRegressor.__doc__.rstrip() + "\n" + _SGD_PARAMETERS % ("", "", "SGDRegressor")
