"""Data-parallel training of fastgd's estimators on a Dask cluster, by local SGD.

``DataParallel(estimator)`` trains a copy of the estimator (a *replica*) on each
worker that holds blocks of a dask array (X, y): each replica runs the
estimator's compiled epoch loop (its ``partial_fit``, one call a block) over the
blocks its worker holds, and every ``sync_every`` epochs the replicas' weights
are replaced by their average, weighted by each replica's rows (their sample weights' sum): local
SGD, or parameter averaging (Zinkevich et al. 2010, "Parallelized Stochastic
Gradient Descent"; Stich 2019, "Local SGD Converges Fast and Communicates
Little").  ``sync_every=None`` averages once, at the end (Zinkevich's one-shot
average).

What travels: the blocks stay on the workers that hold them (a block of y moves
to the worker holding the block of X of the same rows if it is elsewhere).  The
rounds are chained tasks on the cluster: each round, the replicas (weights,
optimizer state, a few scalars) go to one worker, which averages them, and the
average goes back to each replica's worker; the client only reads each round's
objective, and the replicas at the end of a call.  The optimizer state is kept
per replica and never averaged; a replica is bound to a fixed group of blocks,
not to a worker, so a block recomputed on another worker after a worker is lost
takes its replica with it.

This module needs ``dask[distributed]`` (``pip install "fastgd[dask]"``);
``import fastgd`` does not import it.
"""
import contextlib
import copy
import math
import time
import uuid
import warnings
import weakref
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, check_random_state

try:
    import dask.array as da
    from dask import delayed
    from distributed import Client
    from distributed import TimeoutError as _DaskTimeout
    from distributed import futures_of, get_client, wait
except ImportError as error:
    raise ImportError(f"fastgd.dask needs dask[distributed] ({error}); install it with "
                      "pip install \"fastgd[dask]\"") from error

from .linear_model import (
    _MAX_INT, _check_one_label_type, _check_same_classes, _checked_before_conversion, _Driver, _is_aligned,
    _NoImprovement, _OneCallAtATime, _label_type, _reads_model, _weights_named,
)

__all__ = ["DataParallel"]


class DataParallel(_OneCallAtATime, BaseEstimator):
    """Train a fastgd estimator (LinearRegression, LogisticRegression, SGDClassifier,
    SGDRegressor, or any using fastgd.linear_model's driver) on a dask array (dense or of
    scipy.sparse blocks, converted to CSR once a block) or a dask DataFrame spread over a Dask
    cluster's workers,
    averaging the replicas' weights every ``sync_every`` epochs.

    Parameters
    ----------
    estimator : a fastgd estimator, unfitted; its parameters (optimizer, learning rate,
        batch size, ...) apply to each replica.  ``fit`` runs up to its ``max_iter`` epochs and,
        with ``tol`` set, stops by its rule (``n_iter_no_change`` epochs in a row whose averaged
        objective is not ``tol`` below the best before them), at the end of the round of
        ``sync_every`` epochs in which the rule is met; there is no early stopping, and no
        ``warm_start`` (``fit`` starts from zero weights; ``partial_fit`` goes on).
    client : distributed.Client or None (the default client, ``distributed.get_client()``): the calls
        run through it, also where it is not the default.
    sync_every : int or None; epochs between averages (None: average once, after the last).
    timeout : seconds a round (``sync_every`` epochs on every worker), or ``fit``'s pass over
        the blocks for the returned model's objective, may take before ``fit`` raises
        TimeoutError; None waits without limit.
    verbose : int; print each round's epoch count and mean objective when > 0.

    Attributes
    ----------
    estimator_ : the averaged model, an estimator of the wrapped class (its own ``loss_curve_``
        holds the last round's objectives, a block at a time; this one's is per epoch).
    coef_, intercept_, classes_ : the averaged model's (coef_ and intercept_ as read-only views:
        partial_fit goes on from the replicas, not from them).
    n_replicas_ : the number of replicas (workers holding non-empty blocks when the fit started).
    loss_curve_ : per epoch, the replicas' objectives on their own rows (before the
        average), averaged with their rows' shares of the objective as weights: their weight
        sums, or for the SGD drop-ins (whose objective is a mean over rows, unweighted) their
        row counts, so that it is the estimator's own objective.
    n_iter_ : epochs run.

    Notes
    -----
    A replica's epoch is one ``partial_fit`` call per block it holds, in a fixed order, each
    shuffling within its block; per-epoch learning-rate schedules count epochs (not calls).
    The replicas are the workers holding X's non-empty blocks when a call starts: persist X and
    y once for the same model from the same random_state at every run.  Replicas of unequal rows
    take unequal steps, and where a round's steps are small the average then weighs a replica's
    rows by about its share squared (see the README): spread the rows evenly.
    The estimator's ``lr_schedule="adaptive"``/``learning_rate="adaptive"`` acts as
    constant here (it needs the convergence test of each epoch): with ``tol`` set, the fit stops
    where the estimator's own would divide the rate by 5.  With ``sample_weight`` (a dask array with
    X's row blocks) a replica's share of the average is its rows' weight sum; blocks whose
    weights sum to 0 are skipped, the others go to the estimator's ``partial_fit`` (which takes a
    sum below 0 in the drop-ins, as scikit-learn's, and refuses it in LinearRegression and
    LogisticRegression, and a NaN in all), and every worker holding blocks needs a positive sum.  A
    DataFrame's partitions are the blocks; its column names are not kept.  The replicas run
    without convergence test of their own (``fit`` tests the averaged objectives, and warns
    of a divergence as the estimator's fit does: by their curve and, for LinearRegression and
    LogisticRegression, by the returned model's objective over every row, one more pass) and take the estimator's current parameters at
    each call (``set_params(estimator__...)`` between ``partial_fit`` calls applies); an
    ``average`` other than True/False (a step to start from) is refused, as the replicas
    would reach it at different steps.  ``class_weight="balanced"`` is computed over all of y
    in ``fit`` (the replicas, and ``estimator_``, hold the dict of weights) and refused by
    ``partial_fit``, as scikit-learn's.  A pickled DataParallel drops its client (it then
    uses the default one); ``clone`` keeps it.
    """

    def __init__(self, estimator, *, client=None, sync_every=1, timeout=600.0, verbose=0):
        self.estimator = estimator
        self.client = client
        self.sync_every = sync_every
        self.timeout = timeout
        self.verbose = verbose

    # -- checks -------------------------------------------------------------------

    def _check_parameters(self, for_partial_fit=False):
        if not isinstance(self.estimator, _Driver):
            raise TypeError(f"estimator is a {type(self.estimator).__name__}; expected a fastgd estimator "
                            "(LinearRegression, LogisticRegression, SGDClassifier, SGDRegressor)")
        self.estimator._validate_params()
        self.estimator._more_checks(for_partial_fit=False)  # (partial_fit's own rules: below)
        average = getattr(self.estimator, "average", False)
        if not isinstance(average, (bool, np.bool_)) and average > 1:
            raise ValueError(f"the estimator has average={average!r}; DataParallel averages from the first step "
                             "(average=True) or not at all (its replicas would start at different steps)")
        if for_partial_fit and getattr(self.estimator, "class_weight", None) == "balanced":
            raise ValueError("the estimator has class_weight='balanced', which partial_fit cannot compute from "
                             "blocks of y (as scikit-learn's partial_fit refuses it); give a dict of class weights")
        if not for_partial_fit and getattr(self.estimator, "warm_start", False):
            raise ValueError("the estimator has warm_start=True; DataParallel.fit starts from zero weights (call "
                             "partial_fit to go on from the last fit's, or set warm_start=False)")
        if getattr(self.estimator, "early_stopping", False):
            raise ValueError("the estimator has early_stopping=True; DataParallel holds no rows out: it stops by "
                             "tol on the replicas' training objective (set early_stopping=False)")
        if self.sync_every is not None and not (isinstance(self.sync_every, Integral)
                                                and not isinstance(self.sync_every, bool) and self.sync_every >= 1):
            raise ValueError(f"sync_every={self.sync_every!r}; expected an integer >= 1 or None")
        if self.client is not None and not isinstance(self.client, Client):
            raise TypeError(f"client must be a distributed.Client or None (the default client), got "
                            f"{type(self.client).__name__}")
        if self.timeout is not None and not (isinstance(self.timeout, Real) and not isinstance(self.timeout, bool)
                                             and 0 < self.timeout < math.inf):
            raise ValueError(f"timeout={self.timeout!r}; expected a finite positive number of seconds, or None (no "
                             "limit)")
        if not isinstance(self.verbose, Integral):  # (a bool too, as scikit-learn's estimators take)
            raise TypeError(f"verbose={self.verbose!r}; expected an integer or a bool (true: print each round)")

    def _client_and_data(self, X, y, sample_weight):
        """The client (self.client, or Dask's default) and _check_data's X, y and sample_weight;
        data of a type DataParallel cannot take is refused before the default client is looked for."""
        for value, name in ((X, "X"), (y, "y"), (sample_weight, "sample_weight")):
            if value is not None and not (isinstance(value, da.Array) or _is_frame(value)):
                raise TypeError(f"{name} is a {type(value).__name__}; expected a dask array (dask.array.from_array("
                                "...), or made on the workers) or a dask DataFrame or Series")
        client = self.client
        if client is None:
            try:
                client = get_client()
            except ValueError as error:  # Dask's "No global client found and no address provided"
                raise ValueError(f"DataParallel found no Dask client ({error}): pass one as client=, or make a "
                                 "distributed.Client first (the default client)") from error
        return client, self._check_data(client, X, y, sample_weight)

    def _check_data(self, client, X, y, sample_weight):
        """X, y and sample_weight (or None) as dask arrays with the same row blocks (a dask
        DataFrame or Series becomes one, a block a partition, its rows counted on the workers)."""
        X, y = self._dask_array(client, X, "X"), self._dask_array(client, y, "y")
        if X.ndim != 2:
            raise ValueError(f"X has {X.ndim} dimensions; expected 2 (rows, features)")
        if y.ndim not in (1, 2):
            raise ValueError(f"y has {y.ndim} dimensions; expected 1 or 2")
        if X.numblocks[1] != 1:
            raise ValueError(f"X is split into {X.numblocks[1]} blocks along its columns; expected one "
                             "(X.rechunk({1: -1}))")
        if y.ndim == 2 and y.numblocks[1] != 1:
            raise ValueError(f"y is split into {y.numblocks[1]} blocks along its columns; expected one")
        if y.ndim == 2 and y.shape[1] == 1 and is_classifier(self.estimator):  # once, not each block's partial_fit
            warnings.warn(f"y has shape {y.shape}, a column, where a classifier expects one label a row; its one "
                          "column is taken (pass y[:, 0] to say so)", DataConversionWarning, stacklevel=4)
            y = y[:, 0]
        arrays = {"y": y}
        if sample_weight is not None:
            arrays["sample_weight"] = sample_weight = self._dask_array(client, sample_weight, "sample_weight")
            if sample_weight.ndim != 1:
                raise ValueError(f"sample_weight has {sample_weight.ndim} dimensions; expected 1 (a weight a row)")
        for name, array in {"X": X, **arrays}.items():
            if any(math.isnan(c) for c in array.chunks[0]):
                raise ValueError(f"{name} has blocks of unknown size; compute them first "
                                 f"({name}.compute_chunk_sizes())")
        for name, array in arrays.items():
            if array.chunks[0] != X.chunks[0]:
                raise ValueError(f"X's row blocks {X.chunks[0]} and {name}'s {array.chunks[0]} differ; expected "
                                 f"the same ({name}.rechunk({{0: X.chunks[0]}}))")
        return X, y, sample_weight

    def _dask_array(self, client, value, name):
        """value (a dask array, or a dask DataFrame or Series: see _client_and_data) as a dask
        array: a frame's partitions' rows are counted on the workers, within timeout."""
        if _is_frame(value):
            lengths = client.compute(value.map_partitions(len))
            self._wait(client, [lengths], f"counting the rows of {name}'s partitions", ours=[lengths])
            return value.to_dask_array(lengths=list(lengths.result()))
        return value

    # -- where the blocks are ---------------------------------------------------------

    def _blocks(self, client, X, y, sample_weight):
        """Persist X, y and sample_weight; return the futures of their blocks (in row order;
        Nones without sample_weight) and the groups of blocks, (worker, block indices), by the
        worker holding each block of X (the first, by address, of those holding a copy)."""
        # no task of its own touches a block: a new task may run on another worker than the
        # block's, which then moves (Dask prices an unknown task at half a second)
        arrays = client.persist([X, y] + ([] if sample_weight is None else [sample_weight]))
        futures = [_block_futures(a) for a in arrays]
        every = sum(futures, [])
        try:
            self._wait(client, every, "persisting X and y")
        except Exception as error:
            _raise_if_gone(every, error)
            raise
        failed = next((future for future in every if future.status == "error"), None)
        if failed is not None:  # a block failed to compute (a bad input file, say): raise its error,
            error, traceback = failed.exception(), failed.traceback()
            del arrays, futures, every, failed  # without the blocks, which its traceback would keep in memory
            raise error.with_traceback(traceback)
        x_futures, y_futures = futures[:2]
        w_futures = futures[2] if sample_weight is not None else [None] * len(x_futures)
        holders = client.who_has(x_futures)
        groups = {}
        for index, future in enumerate(x_futures):
            if X.chunks[0][index]:  # (a worker holding empty blocks alone has nothing to train a replica on)
                groups.setdefault(sorted(holders[future.key])[0], []).append(index)
        if not groups:
            raise ValueError(f"X has no rows (its row blocks: {X.chunks[0]}); expected at least one")
        return (x_futures, y_futures, w_futures), sorted(groups.items())

    # -- training -----------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, *, classes=None):
        """Train for the estimator's max_iter epochs from zero weights on the blocks of X, y
        (and sample_weight): dask arrays, or a dask DataFrame and Series."""
        with self._calls().training("DataParallel", "fit"):
            self._check_parameters()
            client, (X, y, sample_weight) = self._client_and_data(X, y, sample_weight)
            blocks, groups = self._blocks(client, X, y, sample_weight)
            classes = self._classes(client, y, classes)
            balanced = self._balanced(client, y, classes)
            tol = self.estimator.tol
            with _restoring(self.estimator.random_state):
                state = _State(self._new_replicas(len(groups), balanced), epochs=0, loss_curve=[])
                stopped = self._train(client, state, blocks, groups, classes, int(self.estimator.max_iter),
                                      None if tol is None else _NoImprovement(tol, self.estimator.n_iter_no_change))
                diverged = self._diverged(client, state, blocks, groups, classes)
            self._finish(state, classes)
            if diverged:
                warnings.warn(diverged, ConvergenceWarning)
            elif tol is not None and not stopped:
                self.estimator._warn_ran_out()
            return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over the new blocks of X, y (and sample_weight), going on from the
        replicas of earlier calls (weights and per-replica optimizer state), then one average.
        Classifiers need ``classes`` on the first call.  If the blocks are spread over more
        workers than there are replicas, the new replicas are copies of the first (its
        optimizer state included); if over fewer, the extra replicas are dropped."""
        with self._calls().training("DataParallel", "partial_fit"):
            self._check_parameters(for_partial_fit=True)
            client, (X, y, sample_weight) = self._client_and_data(X, y, sample_weight)
            first = not hasattr(self, "estimator_")
            if not first and type(self.estimator) is not type(self._replicas[0]):
                raise ValueError(f"the estimator is a {type(self.estimator).__name__} now; the replicas "
                                 f"partial_fit goes on from are {type(self._replicas[0]).__name__}s: call fit to start "
                                 "over with it")
            if first and classes is None and is_classifier(self.estimator):
                raise ValueError("classes must be passed on the first call to partial_fit")
            if classes is not None and not is_classifier(self.estimator):
                self._classes(client, y, classes)  # (raises)
            blocks, groups = self._blocks(client, X, y, sample_weight)
            if first:
                classes = None if classes is None else np.unique(np.asarray(classes))
                with _restoring(self.estimator.random_state):
                    state = _State(self._new_replicas(len(groups)), epochs=0, loss_curve=[])
                    self._train(client, state, blocks, groups, classes, 1)
            else:
                known = getattr(self, "classes_", None)
                if known is not None:
                    _check_same_classes(classes, known)
                classes = known
                # copies, with the estimator's current parameters (set_params(estimator__...) applies)
                current = {**self.estimator.get_params(deep=False), "tol": None}
                del current["random_state"]
                replicas = [copy.deepcopy(replica).set_params(**current) for replica in self._replicas]
                replicas += [copy.deepcopy(replicas[0]) for _ in range(len(groups) - len(replicas))]
                state = _State(replicas[:len(groups)], epochs=self.n_iter_, loss_curve=list(self.loss_curve_))
                self._train(client, state, blocks, groups, classes, 1)
            self._finish(state, classes)
            return self

    def _new_replicas(self, count, class_weight=None):
        """Unfitted copies of the estimator, each shuffling from a generator of its own (seeded
        from the estimator's random_state: a drop-in's partial_fit, as scikit-learn's, draws its
        shuffling seed from it at each call, so that an int would shuffle a block alike every
        epoch); class_weight: theirs, if not None."""
        seeds = check_random_state(self.estimator.random_state).randint(_MAX_INT, size=count)
        # tol=None: every epoch runs (no convergence test, nor its warning for each block)
        weighted = {} if class_weight is None else {"class_weight": class_weight}
        return [clone(self.estimator).set_params(random_state=np.random.RandomState(seed), tol=None, **weighted)
                for seed in seeds]

    def _balanced(self, client, y, classes):
        """With class_weight="balanced", the weight of each class over all of y, as scikit-learn's
        fit gives it (n_samples / (n_classes * count)): a dict for the replicas, whose calls each
        see a block of y; else None."""
        if getattr(self.estimator, "class_weight", None) != "balanced":
            return None
        found = client.compute(da.unique(y, return_counts=True))
        self._wait(client, found, "counting the classes of y", ours=found)
        labels, counts = (future.result() for future in found)
        counted = dict(zip(labels.tolist(), counts.tolist()))
        if any(counted.get(label, 0) == 0 for label in classes.tolist()):
            raise ValueError("class_weight='balanced' needs every class in y; classes lists some y does not hold")
        return {label: y.shape[0] / (len(classes) * counted[label]) for label in classes.tolist()}

    def _classes(self, client, y, classes):
        if not is_classifier(self.estimator):
            if classes is not None:
                raise TypeError(f"classes is for classifiers; {type(self.estimator).__name__} is a regressor "
                                "(pass classes=None)")
            return None
        if classes is None:
            if y.dtype == object:  # labels of one type, as the estimator checks them (da.unique cannot sort a mix)
                found = client.compute([delayed(_label_samples)(block) for block in y.to_delayed().ravel()])
                self._wait(client, found, "checking the labels of y", ours=found)
                _check_one_label_type(np.array([label for future in found for label in future.result()], object), "y")
            found = client.compute(da.unique(y))
            self._wait(client, [found], "finding the classes of y", ours=[found])
            classes = found.result()
        return np.unique(np.asarray(classes))

    def _wait(self, client, futures, what, ours=()):
        """Wait for futures (a failed one raises at gather/result); past timeout, cancel `ours`
        (the tasks this call submitted: never the user's data) and raise TimeoutError."""
        try:
            with client.as_current():  # Dask's wait waits through the default client, which may be another
                wait(futures, timeout=self.timeout)
        except _DaskTimeout:
            if ours:
                client.cancel(list(ours))
            raise TimeoutError(f"{what} did not finish within timeout={self.timeout} s on the cluster; "
                               "the model is left as it was before this call") from None

    #: rounds submitted ahead of the one the client reads
    _ROUNDS_AHEAD = 32

    def _train(self, client, state, blocks, groups, classes, n_epochs, stop=None):
        """Run n_epochs epochs in rounds of sync_every epochs.  The rounds are a chain of tasks
        on the cluster (each replica's round starts from its own last round and the average of
        that round's replicas), submitted _ROUNDS_AHEAD ahead of the one the client reads as it
        ends, so that no round waits for the client.  stop (a _NoImprovement, or None): the
        training ends with the round in whose epochs it says so, and the rounds after it are
        cancelled.  Returns whether it ended so.  state changes only when every round run
        succeeded (a failed call leaves the model as it was)."""
        token = uuid.uuid4().hex[:8]
        x_futures, y_futures, w_futures = blocks
        step = n_epochs if self.sync_every is None else int(self.sync_every)
        starts = iter(range(state.epochs, state.epochs + n_epochs, step))
        # (first epoch, epochs, the replicas' futures, the average's, its objectives') of each
        # round submitted and not yet read: a round read is let go, so that the cluster frees its
        # results once the next has run.  The client reads a round's objectives alone, a task of
        # their own: the average holds the weights (8 MB at 2^20 features), which the client needs once
        rounds = []

        def submit_next():
            first = next(starts, None)
            if first is None:
                return
            count = min(step, state.epochs + n_epochs - first)
            # each replica's tasks go to the worker holding its blocks (elsewhere if that worker is
            # lost), from its own last round (at first, the replica itself) and that round's average
            previous, average = ((rounds[-1][2], rounds[-1][3]) if rounds else
                                 ([(replica, 0.0, []) for replica in state.replicas], None))
            replicas = [client.submit(
                _round, last, average, [x_futures[i] for i in group], [y_futures[i] for i in group],
                [w_futures[i] for i in group], classes, first, count, key=f"fastgd-epochs-{token}-{first}-{r}",
                workers=[worker], allow_other_workers=True, pure=False)
                for r, (last, (worker, group)) in enumerate(zip(previous, groups))]
            average = client.submit(_mean, *replicas, key=f"fastgd-average-{token}-{first}", pure=False)
            objectives = client.submit(_objectives, average, key=f"fastgd-objectives-{token}-{first}", pure=False)
            rounds.append((first, count, replicas, average, objectives))

        curve, started, last, stopped = list(state.loss_curve), time.perf_counter(), None, False
        try:
            for _ in range(self._ROUNDS_AHEAD):
                submit_next()
            while rounds and not stopped:
                first, count, _, _, objectives = rounds[0]
                # past the timeout, the handler below cancels the rounds left
                self._wait(client, [objectives], f"epochs {first + 1}-{first + count}")
                curve += objectives.result()
                if self.verbose:
                    print(f"-- Epochs {first + 1}-{first + count} on {len(groups)} replicas: objective "
                          f"{curve[-1]:.6g}, {time.perf_counter() - started:.3g} s")
                started = time.perf_counter()
                submit_next()  # one more in flight (from the last submitted, still held)
                last = rounds.pop(0)
                stopped = stop is not None and any(stop.ends_at(value) for value in curve[-count:])
            replicas = [model for model, _, _, _ in client.gather(last[2])]
            mean = last[3].result()[0]
        except BaseException as error:
            # a round at a time, the last first: the scheduler cancels a task's dependents before
            # it, recursively, so cancelling the whole chain at once recursed once a round (1,000
            # rounds overflowed its stack and cut the client off); the last round has none left.
            # The round read last too: the error's traceback holds its futures, and so its results
            # on the cluster, for as long as the error lives
            for *_, replicas, average, objectives in reversed(([] if last is None else [last]) + rounds):
                client.cancel([objectives, average, *replicas])
            _raise_if_gone(x_futures + y_futures + w_futures, error)
            raise
        for *_, replicas_left, average, objectives in reversed(rounds):  # those after a stop
            client.cancel([objectives, average, *replicas_left])
        for replica in replicas:
            _set_mean(replica, mean)
        state.replicas, state.epochs, state.loss_curve = replicas, last[0] + last[1], curve
        return stopped

    def _diverged(self, client, state, blocks, groups, classes):
        """What the estimator's own fit would say of the averaged model if it diverged (by the
        objective curve, and by the model's objective over every row against zero weights', see
        its _rising and _worse_than_none), else None.  The model's objective is one pass over
        the blocks on their workers (none for the drop-ins, which have no such test)."""
        model = state.replicas[0]  # (each holds the average)
        at_zero = objective = None
        if model._row_losses is not None:
            x_futures, y_futures, w_futures = blocks
            token = uuid.uuid4().hex[:8]
            parts = [client.submit(_model_losses, model, [x_futures[i] for i in group], [y_futures[i] for i in group],
                                   [w_futures[i] for i in group], classes, key=f"fastgd-objective-{token}-{r}",
                                   workers=[worker], allow_other_workers=True, pure=False)
                     for r, (worker, group) in enumerate(groups)]
            try:
                self._wait(client, parts, "the fitted model's objective", ours=parts)
                total, weight, zero = np.sum(client.gather(parts), axis=0)
            except BaseException as error:
                client.cancel(parts)
                _raise_if_gone(x_futures + y_futures + w_futures, error)
                raise
            at_zero = zero / weight if weight > 0 and zero > 0 else None
            objective = model._objective_from(total, weight)
        return model._diverged(at_zero, at_zero, objective, curve=state.loss_curve, epochs=state.epochs)

    def _finish(self, state, classes):
        self._replicas = state.replicas
        self.estimator_ = copy.deepcopy(state.replicas[0])
        self.estimator_.set_params(random_state=self.estimator.random_state)
        self.n_replicas_ = len(state.replicas)
        self.n_iter_ = state.epochs
        self.loss_curve_ = state.loss_curve
        self.n_features_in_ = self.estimator_.n_features_in_
        if classes is not None:
            self.classes_ = self.estimator_.classes_  # (as the estimator makes them: "<U" strings for objects)
        else:  # (a fit with a regressor after one with a classifier)
            vars(self).pop("classes_", None)

    # -- the averaged model ----------------------------------------------------------------

    # read-only views: partial_fit goes on from the replicas, so an edit would be lost without a word
    @property
    def coef_(self):
        check_is_fitted(self, "estimator_")
        return _read_only(self.estimator_.coef_)

    @property
    def intercept_(self):
        check_is_fitted(self, "estimator_")
        return _read_only(self.estimator_.intercept_)

    def _apply(self, method, X):
        check_is_fitted(self, "estimator_")
        function = getattr(self.estimator_, method)
        X = _unframed(X)
        if not isinstance(X, da.Array):
            return function(X)
        if X.ndim != 2 or X.numblocks[1] != 1:
            raise ValueError(f"X has shape {X.shape} in {X.numblocks} blocks; expected 2-D with one block "
                             "along the columns")
        width = self.n_features_in_ if math.isnan(X.shape[1]) else X.shape[1]  # (unknown: each block is checked)
        probe = function(np.zeros((1, width), dtype=X.dtype))

        def blockwise(block):  # (the estimator refuses a block of no rows, which has nothing to predict)
            return function(block) if block.shape[0] else probe[:0]
        if probe.ndim == 1:
            return X.map_blocks(blockwise, drop_axis=1, dtype=probe.dtype, meta=probe[:0])
        return X.map_blocks(blockwise, chunks=(X.chunks[0], (probe.shape[1],)), dtype=probe.dtype, meta=probe[:0])

    @_reads_model
    def predict(self, X):
        """The averaged model's predictions: a NumPy array for a NumPy X, a dask array (lazy)
        for a dask array X."""
        return self._apply("predict", X)

    @available_if(lambda self: hasattr(self.estimator, "decision_function"))
    @_reads_model
    def decision_function(self, X):
        """The averaged model's decision function (classifiers), NumPy or dask as X."""
        return self._apply("decision_function", X)

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    @_reads_model
    def predict_proba(self, X):
        """The averaged model's class probabilities (where the estimator has them), NumPy or dask as X."""
        return self._apply("predict_proba", X)

    @_reads_model
    def score(self, X, y, sample_weight=None):
        """Accuracy (classifiers) or R^2 (regressors) of the averaged model on X, y (NumPy
        or dask; a dask X's predictions are computed on the cluster, then compared here)."""
        predicted = self.predict(X)
        if isinstance(predicted, da.Array):  # on self.client if given, else on Dask's default scheduler
            with self.client.as_current() if self.client is not None else contextlib.nullcontext():
                predicted, y, sample_weight = da.compute(predicted, _unframed(y), _unframed(sample_weight))
        metric = accuracy_score if is_classifier(self.estimator) else r2_score
        return float(metric(np.asarray(y), predicted, sample_weight=sample_weight))

    def __sklearn_clone__(self):
        """An unfitted copy on the same client (a Client cannot be copied)."""
        return type(self)(**{**self.get_params(deep=False), "estimator": clone(self.estimator)})

    def __getstate__(self):
        state = {k: v for k, v in vars(self).items() if k != "_calls_under_way"}  # (a copy's calls are its own)
        state["client"] = None  # a Client cannot be pickled: the copy uses the default client
        return state

    def __copy__(self):
        """A copy on the same client (pickling drops it, see __getstate__; a copy need not)."""
        copied = type(self).__new__(type(self))
        vars(copied).update({k: v for k, v in vars(self).items() if k != "_calls_under_way"})
        return copied

    def __deepcopy__(self, memo):
        """A deep copy on the same client (which is shared, not copied)."""
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        own = {k: v for k, v in vars(self).items() if k not in ("client", "_calls_under_way")}
        vars(copied).update(copy.deepcopy(own, memo), client=self.client)
        return copied

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier" if is_classifier(self.estimator) else "regressor"
        return tags


class _State:
    """The replicas, epochs run and objective curve a call works on (committed at its end)."""

    def __init__(self, replicas, epochs, loss_curve):
        self.replicas, self.epochs, self.loss_curve = replicas, epochs, loss_curve


def _block_futures(array):
    """The futures of a persisted dask array's blocks, in row order."""
    by_key = {future.key: future for future in futures_of(array)}
    return [by_key[block.key] for block in array.to_delayed().ravel()]


@contextlib.contextmanager
def _restoring(random_state):
    """Restore a RandomState given as random_state if the block fails (a failed call changes
    nothing); seeds and None need nothing."""
    saved = random_state.get_state() if isinstance(random_state, np.random.RandomState) else None
    try:
        yield
    except BaseException:
        if saved is not None:
            random_state.set_state(saved)
        raise


def _raise_if_gone(blocks, error):
    """Raise a RuntimeError (from error) if one of the futures of the user's blocks is gone from
    the cluster, as Dask's own error does not say (it names the tasks that needed them)."""
    gone = sum(future is not None and future.status in ("lost", "cancelled") for future in blocks)
    if gone and not isinstance(error, TimeoutError):
        raise RuntimeError(
            f"{gone} block(s) of X, y or sample_weight are gone from the cluster (lost with a worker, or "
            "cancelled), and Dask cannot make them again: blocks scattered to the workers, or made from "
            "futures, are held nowhere else (blocks made from a graph are recomputed), or held by another "
            "client's cluster (pass client= that client). Scatter the data again, or make it on the workers; "
            "the model is left as it was before this call") from error


def _label_samples(block):
    """On a worker: a label of each type (string, number) that an object block of y holds."""
    found = {}
    for label in block.ravel():
        found.setdefault(_label_type(label), label)
    return list(found.values())


def _is_frame(value):
    """Whether value is a dask DataFrame or Series (told without importing dask.dataframe)."""
    return hasattr(value, "to_dask_array") and not isinstance(value, da.Array)


def _unframed(value):
    """A dask DataFrame or Series as a dask array (a block a partition, of unknown size)."""
    return value.to_dask_array() if _is_frame(value) else value


def _local_epochs(model, X_blocks, y_blocks, w_blocks, classes, first_epoch, n_epochs):
    """On a worker: n_epochs epochs of `model` over its blocks that train (_trained_blocks; one
    partial_fit call a block); returns the model, its rows' weight (the estimator's
    _weight_sum: their count, or sample weights' sum, LogisticRegression's class weights folded
    in), their share of the objective (the same, but the drop-ins' row count: their objective is
    an unweighted mean over rows, see _objective_share) and, per epoch, its objective (the mean
    over its blocks, weighted by their shares)."""
    options = {} if classes is None else {"classes": classes}
    blocks, sums = _trained_blocks(model, X_blocks, y_blocks, w_blocks, classes)
    shares = np.array([model._objective_share(y, w, classes) for _, y, w in blocks], dtype=np.float64)
    if hasattr(model, "loss_curve_"):  # the replica travels each round: its curve keeps this round's only
        model.loss_curve_.clear()
    curve = []
    for epoch in range(first_epoch, first_epoch + n_epochs):
        objectives = np.zeros(len(blocks))
        for index, (X, y, w) in enumerate(blocks):
            model.n_iter_ = epoch  # per-epoch schedules read the epoch count (partial_fit adds one a call)
            model.partial_fit(X, y, sample_weight=w, **options)
            objectives[index] = model.loss_curve_[-1]
        model.n_iter_ = epoch + 1
        curve.append(float(shares @ objectives / shares.sum()) if shares.sum() > 0 else 0.0)
    return model, float(sums.sum()), float(shares.sum()), curve


def _trained_blocks(model, X_blocks, y_blocks, w_blocks, classes):
    """On a worker: a replica's blocks that train, as (X, y, w) aligned (_aligned_once), and their
    weight sums (the estimator's _weight_sum), an array.  A block whose weights sum to 0 trains
    nothing and is left out; a sum below 0, or NaN, is kept: the estimator's partial_fit takes it
    or refuses it."""
    blocks, sums = [], []
    for X, y, w in zip(X_blocks, y_blocks, w_blocks):
        X, y = _aligned_once(X, "X"), _aligned_once(y, "y")
        w = None if w is None else _aligned_once(w, "sample_weight")
        total = model._weight_sum(y, w, classes)
        if total != 0:
            blocks.append((X, y, w))
            sums.append(total)
    return blocks, np.array(sums, dtype=np.float64)


#: on a worker: id of a block at an odd address (or sparse, not CSR) -> (a weak reference to it, its copy)
_ALIGNED = {}


def _aligned_once(block, name):
    """The block (of the array called name), or its aligned copy (of a sparse block, a CSR copy),
    made once a block on this worker and kept while the block lives: a block from a network frame
    may sit at an odd address, and a sparse one may be of another format (COO, CSC), which the
    estimators would copy or convert on every call."""
    is_sparse = sparse.issparse(block)
    if not (is_sparse or isinstance(block, np.ndarray)):
        raise TypeError(f"a block of {name} is a {type(block).__module__}.{type(block).__name__}; expected NumPy "
                        f"arrays or scipy.sparse matrices (convert the blocks first: {name}.map_blocks(...))")
    if (not is_sparse or block.format == "csr") and _is_aligned(block):
        return block
    key = id(block)
    entry = _ALIGNED.get(key)
    if entry is None or entry[0]() is not block:
        # (a sparse block's index arrays checked first, in a private copy: SciPy's conversion to CSR
        # reads and writes through them unchecked, as the estimators check an X before converting it)
        checked = _checked_before_conversion(block, f"a block of {name}") if is_sparse else block
        copied = checked.tocsr(copy=checked is block) if is_sparse else block.copy()  # (one copy, not two)
        entry = _ALIGNED[key] = (weakref.ref(block, lambda _, key=key: _ALIGNED.pop(key, None)), copied)
    return entry[1]


def _round(last, mean, X_blocks, y_blocks, w_blocks, classes, first_epoch, n_epochs):
    """On a worker: a replica's round, from its last round's result (model, weight sum, curve)
    and that round's average (None in the first round of a call)."""
    # a copy: a task's input may be another task's result in this worker's memory, which a
    # retried task would start from again
    model = copy.deepcopy(last[0])
    if mean is not None:
        _set_mean(model, mean[0])
    return _local_epochs(model, X_blocks, y_blocks, w_blocks, classes, first_epoch, n_epochs)


def _model_losses(model, X_blocks, y_blocks, w_blocks, classes):
    """On a worker: over a replica's blocks that train (_trained_blocks), the model's loss sum and
    weight sum (its _model_losses over their rows, as its fit trains on them) and zero weights'
    objective times that weight sum."""
    terms = np.zeros(3)
    for X, y, w in _trained_blocks(model, X_blocks, y_blocks, w_blocks, classes)[0]:
        X, y, w = model._prepare(X, y, w, reset=False)
        targets, w = model._as_trained(y, w, classes, False, X.dtype)
        total, weight = model._model_losses(X, targets, w, None)
        at_zero = model._objective_at_zero(targets, w, None)
        terms += (total, weight, 0.0 if at_zero is None else at_zero * weight)
    return terms


def _mean(*results):
    """On a worker: the average of a round's replicas: of their weights (and running averages,
    with average=True), in float64, weighted by their weight sums, and of their objectives per
    epoch, weighted by their shares of the objective.  The optimizer states stay each replica's own."""
    weights = np.array([weight for _, weight, _, _ in results])
    if not (weights > 0).all():
        raise ValueError(f"{_weights_named(results[0][0])} sums to {weights[~(weights > 0)][0]:g} over the blocks "
                         "one worker holds; expected a positive sum on every worker holding blocks (rechunk or "
                         "rebalance the data)")
    with np.errstate(over="ignore"):
        total = weights.sum()
    if not math.isfinite(total):  # (the shares would be 0 or NaN: a model of zeros or NaN)
        raise ValueError(f"sample_weight sums to {total:g} over the rows (beyond float64's range), as the estimator "
                         "refuses it; expected a finite sum: scale the weights")
    shares = weights / total
    mean = {}
    for name in ("_theta", "_average_theta"):
        arrays = [getattr(model, name, None) for model, _, _, _ in results]
        if all(array is not None for array in arrays):
            mean[name] = sum(share * array.astype(np.float64) for share, array in zip(shares, arrays))
    in_objective = np.array([share for _, _, share, _ in results])
    in_objective = in_objective / in_objective.sum() if in_objective.sum() > 0 else in_objective
    return mean, [float(value) for value in in_objective @ np.array([curve for _, _, _, curve in results])]


def _objectives(average):
    """On a worker: a round's objectives per epoch, from its average (what the client reads)."""
    return average[1]


def _read_only(array):
    """A read-only view of an array (anything else as it is)."""
    if not isinstance(array, np.ndarray):
        return array
    view = array.view()
    view.flags.writeable = False
    return view


def _set_mean(model, mean):
    """Write a round's average into a replica."""
    for name, array in mean.items():
        getattr(model, name)[...] = array
    model._publish()
