"""Running averages of parameters, as torch.optim.swa_utils.AveragedModel keeps them: an
exponential moving average (EMA) and the equal-weight average of stochastic weight averaging
(SWA); and torch's SWALR, the learning-rate schedule of the averaging phase.

Each update is one compiled, fused pass over all the parameters (torch's
``_foreach_lerp_``, src/_multi_tensor.pxi): ``average += w * (param - average)``
with w = 1 - decay (EMA) or 1 / (n + 1) (SWA, n the number of updates
averaged so far).  As in torch, the first update copies the parameters.
"""
import math
import operator
import threading

import numpy as np

from . import _checks, lr_scheduler
from ._backend import engine
from .optim import MAX_STEP, Parameter, _data, _OneAtATime, _writable

__all__ = ["EMA", "SWA", "SWALR"]


def _plain(arrays):
    """Plain ndarray views of arrays (subclasses, a np.memmap say), which the compiled passes take."""
    return [np.asarray(array) for array in arrays]


def _separate(arrays, averages=(), name="parameter"):
    """Raise unless the arrays (called name: parameters, or copy_to's targets) share no memory,
    nor with the averages (each may be its own array's): a swap would exchange shared elements
    twice, and copy_to write them twice (checked again by those, as a Parameter's .data, or an
    entry of averages, a public list, may be replaced: by no array, say, which is named)."""
    for i, average in enumerate(averages):
        if not isinstance(average, np.ndarray):
            _checks.check_param(average, f"average {i}")  # (raises, naming it)
    listed = [(array, f"{name} {i}") for i, array in enumerate(arrays) if isinstance(array, np.ndarray)]
    listed += [(average, f"average {i}") for i, average in enumerate(averages)
               if not (i < len(arrays) and isinstance(arrays[i], np.ndarray) and _same_memory(average, arrays[i]))]
    _checks.check_no_overlap([array for array, _ in listed], [name for _, name in listed],
                             "each parameter and each average must be a separate array")


def _listed(params):
    """params (the constructor's, copy_to's targets), paired with the averages by position, as a
    list: an ordered collection of arrays or fastgd.Parameters (not a single one, nor a set)."""
    if isinstance(params, (np.ndarray, Parameter)):
        raise TypeError(f"params must be a list of arrays or fastgd.Parameters, got a single "
                        f"{type(params).__name__}; wrap it in a list: [params]")
    _checks.check_ordered(params)
    try:
        return list(params)
    except TypeError:
        raise TypeError(f"params must be a list of arrays or fastgd.Parameters, got {type(params).__name__}") from None


def _same_memory(a, b):
    return a.ctypes.data == b.ctypes.data and a.nbytes == b.nbytes


class _Average(_OneAtATime):
    """The average of a list of parameters (arrays or fastgd.Parameters, whose .data is read).
    One call at a time changes it: a call while another thread's runs raises RuntimeError."""

    def __init__(self, params):
        entries = _listed(params)
        if not entries:
            raise ValueError("params is an empty list; expected the parameters to average")
        names = [f"parameter {i}" for i in range(len(entries))]
        # read-only parameters are averaged (swap and copy_to refuse them), as torch's AveragedModel averages frozen ones
        arrays = [_checks.check_param(_data(entry), name, written=None) for entry, name in zip(entries, names)]
        _separate(arrays)
        self._lock = threading.Lock()
        self._entries = entries
        #: the averages, one array per parameter (a copy of it until the first update)
        self.averages = [np.array(array, order="C", copy=True) for array in arrays]
        self._n_averaged = 0
        self._apart = ((), ())  # the parameters and averages update() last found apart (_check_apart)

    def _pickled(self):
        return {key: value for key, value in super()._pickled().items() if key != "_apart"}  # (made anew)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.averages = [_writable(a) if isinstance(a, np.ndarray) else a for a in self.averages]
        self._apart = ((), ())

    def _check_apart(self, params, averages):
        """_separate(params, averages), unless they are the arrays it found apart last: update()
        runs too often for the full check, which costs more than an update of small arrays; a
        Parameter's .data or an entry of averages replaced since is checked."""
        arrays, apart = self._apart
        if not (len(arrays) == len(params) and len(apart) == len(averages)
                and all(map(operator.is_, arrays, params)) and all(map(operator.is_, apart, averages))):
            _separate(params, averages)
            self._apart = (tuple(params), tuple(averages))

    def _params(self):
        """The parameters' arrays as they are now (a Parameter's current .data; _check checks them)."""
        return [_data(entry) for entry in self._entries]

    def _check(self, arrays, others, what, written=None, name="parameter", averages_written=True):
        """Raise, naming the array, unless arrays (the parameters, or copy_to's targets: `name`)
        and others (the averages, `what`) pair up as a compiled pass takes them (see _run);
        averages_written: whether the pass writes the averages (update and swap; copy_to reads them)."""
        if len(others) != len(self._entries):  # (averages, a public list, edited by hand)
            raise ValueError(f"averages holds {len(others)} arrays for {len(self._entries)} parameters; "
                             "keep one average a parameter (an entry replaced by an array of its shape and dtype)")
        for i, (array, other) in enumerate(zip(arrays, others)):
            _checks.check_param(array, f"{name} {i}", written)
            _checks.check_param(other, f"average {i}",
                                "update() and swap() write into it" if averages_written else None)
            if array.shape != other.shape or array.dtype != other.dtype:
                raise ValueError(f"{name} {i} ({_checks.describe(array)}) "
                                 f"{'no longer matches' if name == 'parameter' else 'does not match'} its {what} "
                                 f"({_checks.describe(other)}); keep each {name}'s shape and dtype its {what}'s")
            if np.may_share_memory(array, other) and array.ctypes.data != np.asarray(other).ctypes.data:
                # (an entry of averages replaced by a view): the pass would read what it has written
                raise ValueError(f"{name} {i} shares memory in part with its {what}; each average must be an "
                                 "array of its own")

    def _averaging(self):
        """The compiled pass that averages the parameters in (after the first update, which
        copies) and its number."""
        raise NotImplementedError

    def _run(self, operation, params, averages, *number, written=None):
        """operation(averages, params, *number), a compiled pass (averages: a list of the
        averages, as checked); if it refuses the arrays, check them in full (raises, naming the
        parameter; `written`: what writes them, if it does) and pass plain views of subclasses."""
        if not operation(averages, params, *number):
            self._check(params, averages, "average", written)
            if not operation(_plain(averages), _plain(params), *number):
                raise RuntimeError("fastgd: the compiled pass refused checked arrays; please report")

    def update(self):
        """Average the parameters' current values in (the first update copies them)."""
        with self._exclusive("update()"):
            # the lists as checked (another thread may replace an entry of averages meanwhile)
            params, averages = self._params(), list(self.averages)
            self._check_apart(params, averages)  # (else an average that is another parameter's array would write it)
            if self.n_averaged == 0:
                self._run(engine.copy_all, params, averages)
            else:
                operation, number = self._averaging()
                self._run(operation, params, averages, number)
            self._n_averaged = min(self._n_averaged + 1, MAX_STEP)  # (a loaded count may be it)

    def copy_to(self, params=None):
        """Write the averages into the parameters (or into `params`, arrays or fastgd.Parameters of
        the same shapes and dtypes)."""
        with self._exclusive("copy_to()"):
            targets = self._params() if params is None else [_data(entry) for entry in _listed(params)]
            averages = list(self.averages)  # (as checked: another thread may replace an entry meanwhile)
            if len(targets) != len(averages):
                raise ValueError(f"copy_to got {len(targets)} parameters for {len(averages)} averages")
            _separate(targets, averages, "parameter" if params is None else "target")
            if not engine.copy_all(targets, averages):
                self._check(targets, averages, "average", "copy_to() writes the averages into it",
                            "parameter" if params is None else "target", averages_written=False)
                if not engine.copy_all(_plain(targets), _plain(averages)):
                    raise RuntimeError("fastgd: the compiled pass refused checked arrays; please report")

    def swap(self):
        """Exchange the parameters' values and the averages in place (evaluate with the averages,
        then swap back)."""
        with self._exclusive("swap()"):
            params, averages = self._params(), list(self.averages)
            _separate(params, averages)
            self._run(engine.swap_all, params, averages, written="swap() writes the averages into it")

    def state_dict(self):
        """The averages (copies) and the number of updates averaged."""
        with self._exclusive("state_dict()"):
            return {"n_averaged": self.n_averaged, "averages": [a.copy() for a in self.averages]}

    def load_state_dict(self, state_dict):
        """Restore a state_dict() of an average over parameters of the same shapes (checked before
        anything is changed; converted to the parameters' dtypes)."""
        _checks.check_state_keys(state_dict, ("n_averaged", "averages"))
        n_averaged = _checks.check_step_count(state_dict["n_averaged"], "state_dict['n_averaged']", MAX_STEP)
        saved = state_dict["averages"]
        _checks.saved_list(saved, len(self.averages), "state_dict['averages']")
        converted = []
        for i, (array, average) in enumerate(zip(saved, self.averages)):
            _checks.check_param(average, f"average {i}", "load_state_dict() writes into it")
            converted.append(_checks.saved_array(array, average, f"state_dict['averages'][{i}]"))
        with self._exclusive("load_state_dict()"):
            for array, average in zip(converted, self.averages):
                average[...] = array
            self._n_averaged = n_averaged

    @property
    def n_averaged(self):
        """The number of updates averaged (set by hand: checked, as load_state_dict checks it)."""
        return self._n_averaged

    @n_averaged.setter
    def n_averaged(self, value):
        self._n_averaged = _checks.check_step_count(value, "n_averaged", MAX_STEP)


class EMA(_Average):
    """An exponential moving average of parameters: ``average = decay * average + (1 - decay) * param``
    at each update after the first (which copies), as torch's AveragedModel with
    ``get_ema_multi_avg_fn(decay)``.  warmup: the n-th update (n counted from 1, the first,
    which copies, included) uses ``min(decay, (1 + n) / (10 + n))`` instead, so that early
    parameters fade quickly: TensorFlow's ExponentialMovingAverage with ``num_updates`` the
    step count, the average updated after each step (update 2 uses 3/12)."""

    def __init__(self, params, decay=0.999, *, warmup=False):
        self.decay, self.warmup = decay, warmup  # (checked by the setters, before the parameters are copied)
        super().__init__(params)

    @property
    def decay(self):
        """The decay, in [0, 1] (set by hand: checked, as by the constructor)."""
        return self._decay

    @decay.setter
    def decay(self, value):
        _checks.check_real(value, "decay", "unit")
        self._decay = float(value)

    @property
    def warmup(self):
        """Whether the decay warms up (see the class; set by hand: checked)."""
        return self._warmup

    @warmup.setter
    def warmup(self, value):
        _checks.check_flag(value, "warmup")
        self._warmup = bool(value)

    def _averaging(self):
        n = self._n_averaged + 1  # this update's number
        decay = min(self._decay, (1 + n) / (10 + n)) if self._warmup else self._decay
        return engine.lerp_all, 1 - decay


class SWA(_Average):
    """The equal-weight average of the parameters at each update (stochastic weight averaging),
    as torch's AveragedModel keeps it by default on a CPU: ``average + (param - average) / (n + 1)``,
    n the updates averaged so far, each operation rounded in the parameters' dtype."""

    def _averaging(self):
        return engine.mean_all, self._n_averaged + 1


class SWALR(lr_scheduler.LRScheduler):
    """torch.optim.swa_utils.SWALR: anneals each group's learning rate to its ``swa_lr`` (one for
    all groups, or one per group) over ``anneal_epochs`` steps, by a half cosine ("cos") or a
    straight line ("linear"), then holds it there.  Each step goes on from the rate in the group,
    so it can take over from another scheduler (torch's pattern: the other's steps until the
    averaging starts, SWALR's after).  As torch's, it writes ``swa_lr`` into each group and
    counts its own steps (``step(epoch)`` does not move it elsewhere)."""

    _kept = {"anneal_epochs": lr_scheduler._range(lr_scheduler._check_int, 0)}

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        lr_scheduler._check_optimizer(optimizer)
        swa_lrs = [float(_checks.check_finite(value, "swa_lr"))  # (below 0 too, as torch takes it)
                   for value in lr_scheduler._per_group("swa_lr", optimizer, swa_lr)]
        lr_scheduler._check_anneal_strategy(anneal_strategy)
        anneal_epochs = self._checked("anneal_epochs", anneal_epochs)
        with lr_scheduler._undone_on_failure(optimizer):  # checked: now the groups change
            for value, group in zip(swa_lrs, optimizer.param_groups):
                group["swa_lr"] = value
            self._anneal_strategy = anneal_strategy
            self.anneal_epochs = anneal_epochs
            super().__init__(optimizer, last_epoch)

    def _check_state_dict(self, state_dict):
        super()._check_state_dict(state_dict)
        lr_scheduler._check_anneal_strategy(state_dict.get("_anneal_strategy", self._anneal_strategy))

    def _anneal(self, t):
        return (1 - math.cos(math.pi * t)) / 2 if self._anneal_strategy == "cos" else t

    def get_lr(self):
        self._warn_outside_step()
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        # the rate before the annealing began, undone from the group's (which another scheduler may
        # have set since), then this step's blend of it and swa_lr: torch's arithmetic
        before = self._anneal(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        alpha = self._anneal(max(0, min(1, step / max(1, self.anneal_epochs))))
        self._check_group_keys(("swa_lr",))
        rates = []
        for group in self.optimizer.param_groups:
            start = group["swa_lr"] if before == 1 else (group["lr"] - before * group["swa_lr"]) / (1 - before)
            rates.append(group["swa_lr"] * alpha + start * (1 - alpha))
        return rates
