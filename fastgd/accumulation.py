"""Gradient accumulation: an optimizer that steps every k-th call on the mean of the k gradients
(optax's MultiSteps), in place, with buffers allocated once; optionally clipped, and skipped when
not finite (optax's MultiSteps(chain(clip_by_global_norm, ...)) with a non-finite guard)."""
import operator
import threading

import numpy as np

from . import _checks
from ._backend import engine
from .clip import _check_max_norm, _check_norm_of_nothing, _clipping, _norm_type
from .lr_scheduler import _note_step
from .optim import _check_optimizer, _data, _group_entries, _OneAtATime, _writable

__all__ = ["MultiSteps"]


class MultiSteps(_OneAtATime):
    """Accumulate the gradients of ``every_k`` calls of ``step`` and take one step of
    ``optimizer`` on their mean at the k-th (which returns True; the others return False).

    The sums are kept in one buffer per parameter, allocated here in the parameter's dtype,
    as optax keeps them (so float32 gradients whose sum passes float32's largest value make
    it inf, though their mean is finite: the step is then skipped with max_norm, and steps
    by inf without); each call adds into them in one compiled pass (the first of a cycle
    copies), and the k-th step reads them times 1/k (``optimizer.step(..., grad_scale=1/k)``),
    so no call allocates.  A parameter whose gradient is None in a call gets nothing from
    that call (a zero, for the mean); one without a gradient in the whole cycle is skipped by
    the step.

    max_norm (None: no clipping): the mean gradient is clipped to this total norm (of order
    norm_type), as ``clip_grad_norm_`` would clip it, and the step is skipped if it holds NaN
    or inf, as ``clipped_step`` does: one norm pass over the sums at the k-th call, whose
    factor the step applies as it reads them (``grad_scale``); a skipped step changes neither
    the parameters nor the optimizer's state, and starts a new cycle.  ``max_norm=inf`` only
    skips.  With max_norm, ``step`` returns ``(total_norm, stepped)`` as clipped_step does:
    the norm of the mean gradient at the k-th call (None at the others).

    One call at a time: a call while another thread's call runs raises RuntimeError.
    """

    def __init__(self, optimizer, every_k, *, max_norm=None, norm_type=2.0):
        _check_optimizer(optimizer)
        every_k = _checks.check_count(every_k, "every_k", 1)
        max_norm, norm_type = _checked_clipping(max_norm, norm_type)  # (before the optimizer follows its groups)
        with optimizer._exclusive("MultiSteps()"):
            optimizer._follow_param_groups()  # the parameters param_groups list now
            params, entries = list(optimizer._params), list(optimizer._entries)
        self._empty = any(param.size == 0 for param in params)
        if max_norm is not None:  # (the rest checked above: now the norm of these parameters)
            _check_norm_of_nothing(norm_type, self._empty, "parameter")
        self._max_norm, self._norm_type = max_norm, norm_type
        self._lock = threading.Lock()
        self.optimizer = optimizer
        self._every_k, self._mini_step = every_k, 0
        self._sums = [np.zeros_like(param, order="C", subok=False) for param in params]
        self._made_for = entries  # what param_groups listed, in their order: the sums' owners
        self._has = [False] * len(params)

    @property
    def every_k(self):
        """The calls a step takes (set by hand: checked, as by the constructor, and above
        mini_step)."""
        return self._every_k

    @every_k.setter
    def every_k(self, value):
        value = _checks.check_count(value, "every_k", 1)
        with self._exclusive("setting every_k"):
            if value <= self._mini_step:
                raise ValueError(f"every_k must be above mini_step, the calls this cycle has accumulated "
                                 f"({self._mini_step}), got {value}; reset() first to drop them")
            self._every_k = value

    @property
    def max_norm(self):
        """The total norm the mean gradient is clipped to (None: not clipped; set by hand:
        checked, as by the constructor, and a number where it was one, None where None)."""
        return self._max_norm

    @max_norm.setter
    def max_norm(self, value):
        if (value is None) != (self._max_norm is None):  # (what step returns would change with it)
            raise ValueError(f"max_norm={value!r}: clipping is turned on or off by the constructor alone (step() "
                             "returns whether it stepped without, (total_norm, stepped) with): make a new MultiSteps")
        with self._exclusive("setting max_norm"):
            self._max_norm = _checked_clipping(value, self._norm_type, self._empty)[0]

    @property
    def norm_type(self):
        """The order of that norm (set by hand: checked, as by the constructor)."""
        return self._norm_type

    @norm_type.setter
    def norm_type(self, value):
        with self._exclusive("setting norm_type"):
            self._norm_type = _checked_clipping(self._max_norm, value, self._empty)[1]

    @property
    def mini_step(self):
        """The calls accumulated in this cycle (0 to every_k - 1; reset() and load_state_dict()
        change it)."""
        return self._mini_step

    def _pickled(self):
        # the entries made for that are the optimizer's, by position (joblib writes each reference
        # to an array apart), joined again by __setstate__
        state, now = super()._pickled(), self.optimizer._entries
        state["_made_for"] = [None if i < len(now) and made is now[i] else made
                              for i, made in enumerate(self._made_for)]
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._sums = [_writable(array) for array in self._sums]
        self._made_for = [self.optimizer._entries[i] if made is None else made
                          for i, made in enumerate(self._made_for)]

    def step(self, grads=None):
        """Add this call's gradients (as optimizer.step takes them; None: each
        fastgd.Parameter's .grad); at the every_k-th call, step on their mean (clipped, with
        max_norm) and start a new cycle.  Returns whether the optimizer stepped (with max_norm:
        (total_norm, stepped), total_norm None but at the every_k-th call).  Bad gradients (and
        at the every_k-th call, the optimizer's bad options or its step running in another
        thread) raise and change nothing."""
        with self._exclusive("step()"):
            return self._step(grads)

    def _step(self, grads):
        opt = self.optimizer
        self._check_same_parameters()
        if type(grads) is not list or len(grads) != len(self._sums):
            grads = opt._gradients_locked(grads)
        if self._mini_step + 1 < self._every_k:
            self._add(grads)
            return False if self._max_norm is None else (None, False)
        # the every_k-th call holds the optimizer from the check to the step: what would make the
        # step raise (another thread's step included) raises before the sums change
        with opt._exclusive("step()"):
            self._check_same_parameters()  # (again, held: another thread may have edited param_groups meanwhile)
            try:
                opt._check_ready_locked([s if has or g is not None else None
                                         for s, has, g in zip(self._sums, self._has, grads)])
            except ValueError:  # a parameter summed reshaped or retyped since: say so
                self._check_made_for(grads)
                raise
            self._add(grads)
            try:
                sums = [s if has else None for s, has in zip(self._sums, self._has)]
                if self._max_norm is None:
                    opt._step_locked(sums, 1.0 / self._every_k)
                    _note_step(opt)  # (past a scheduler's stand-in, which the lock would refuse)
                    return True
                total, coef = _clipping(sums, self._max_norm, self._norm_type, 1.0 / self._every_k)
                if coef is not None:  # else a NaN or inf: skipped
                    opt._step_locked(sums, coef / self._every_k)
                    _note_step(opt)
                return total, coef is not None
            finally:  # a step that raises changes nothing in the optimizer; the cycle restarts anyway
                self._mini_step = 0
                self._has = [False] * len(self._sums)

    def _add(self, grads):
        """Add this call's gradients into the sums (the sums that start this cycle are copied into)."""
        present = [i for i, g in enumerate(grads) if g is not None]
        given = [grads[i] for i in present]
        sums = [self._sums[i] for i in present]
        first = [not self._has[i] for i in present]
        if not engine.add_all(sums, given, first):
            self._check_made_for(grads)
            given = [_checks.convert_grad(g, s, f"gradient {i}") for i, g, s in zip(present, given, sums)]
            if not engine.add_all(sums, given, first):
                raise RuntimeError("fastgd: the compiled pass refused checked gradients; please report")
        for i in present:
            self._has[i] = True
        self._mini_step += 1

    def _check_same_parameters(self):
        """Raise ValueError unless the optimizer's param_groups list the parameters (the same objects,
        in the same order) that the sums were made for, as they list them now: each sum is added to
        and steps its parameter by place.  (Checked before the optimizer follows an edit of
        param_groups, which drops the state of a parameter they no longer list: a call refused here
        changes nothing, and one made after the edit is undone goes on.)"""
        try:
            entries = _group_entries(self.optimizer.param_groups)
        except (TypeError, KeyError):
            raise TypeError("the optimizer's param_groups must be a list of param-group dicts, each with a 'params' "
                            "entry, as its step reads them") from None
        if len(entries) != len(self._made_for):
            raise ValueError(f"the optimizer's param_groups list {len(entries)} parameters now; MultiSteps was made "
                             f"for {len(self._made_for)}: make a new MultiSteps")
        if not all(map(operator.is_, entries, self._made_for)):
            raise ValueError("the optimizer's param_groups list other parameters, or the same in another order, than "
                             "when this MultiSteps was made: make a new MultiSteps")

    def _check_made_for(self, grads):
        """Raise ValueError if a parameter with gradients in this cycle (given now, or summed) is no
        longer of its sums' shape and dtype: reshaped or retyped in place since this MultiSteps was
        made, or a Parameter's .data replaced by another's (one without is no concern).  Checked
        where a pass refuses the arrays (each call's compiled sum, the k-th call's step), to name
        the cause: a gradient of the old shape is summed until the k-th call refuses the step."""
        for i, (entry, sums) in enumerate(zip(self._made_for, self._sums)):
            param = _data(entry)
            if (grads[i] is not None or self._has[i]) and (param.shape, param.dtype) != (sums.shape, sums.dtype):
                raise ValueError(f"parameter {i} is now of shape {param.shape} and dtype {param.dtype}; this "
                                 f"MultiSteps was made for shape {sums.shape} and dtype {sums.dtype}: make a new "
                                 "MultiSteps")

    def reset(self):
        """Drop the gradients accumulated in this cycle."""
        with self._exclusive("reset()"):
            self._mini_step = 0
            self._has = [False] * len(self._sums)

    def state_dict(self):
        """The optimizer's state_dict, and this cycle's sums (copies) and count (refused, as step()
        refuses it, where param_groups list other parameters than the sums': see step)."""
        with self._exclusive("state_dict()"):
            self._check_same_parameters()  # (before the optimizer's state_dict follows an edit)
            return {"optimizer": self.optimizer.state_dict(), "mini_step": self._mini_step,
                    "sums": [s.copy() if has else None for s, has in zip(self._sums, self._has)]}

    def load_state_dict(self, state_dict):
        """Restore a state_dict() (checked before anything is changed; refused, as step() refuses
        it, where param_groups list other parameters than the sums')."""
        _checks.check_state_keys(state_dict, ("optimizer", "mini_step", "sums"))
        mini_step = _checks.check_step_count(state_dict["mini_step"], "state_dict['mini_step']", self._every_k - 1)
        sums = state_dict["sums"]
        _checks.saved_list(sums, len(self._sums), "state_dict['sums']", "arrays or None")
        if mini_step == 0 and any(saved is not None for saved in sums):
            raise ValueError("state_dict['sums'] holds gradients at mini_step 0, where a cycle has none yet; expected "
                             "None for each (as state_dict() saves them)")
        sums = [None if saved is None else _checks.saved_array(saved, mine, f"state_dict['sums'][{i}]")
                for i, (saved, mine) in enumerate(zip(sums, self._sums))]
        with self._exclusive("load_state_dict()"):
            self._check_same_parameters()  # (the sums are loaded by place)
            self.optimizer.load_state_dict(state_dict["optimizer"])
            for saved, mine in zip(sums, self._sums):
                if saved is not None:
                    mine[...] = saved
            self._mini_step = mini_step
            self._has = [saved is not None for saved in sums]


def _checked_clipping(max_norm, norm_type, empty=False):
    """max_norm (None: no clipping) and norm_type checked together, as the constructor and the
    setters take them (empty: whether a parameter has no elements, whose norm some orders lack);
    returns them, the order as a float."""
    if max_norm is not None:
        _check_max_norm(max_norm)
    order = _norm_type(norm_type)
    if max_norm is not None:
        _check_norm_of_nothing(order, empty, "parameter")
    return max_norm, order
