"""One in-place step of each algorithm on raw arrays, for users who keep their own state.

Each function checks its arrays and options as the optimizer classes do, then
runs the same compiled kernel on one parameter.  State arrays must have the
parameter's shape and dtype; ``step`` is the number of this step, counting
from 1.
"""
import numpy as np

from . import _checks, optim
from ._backend import kernels


def _prepare(param, grad, states):
    param = _checks.check_param(param, "param")
    if grad is None:
        raise TypeError(f"grad is None; expected a NumPy array of shape {param.shape}")
    grad = _checks.convert_grad(grad, param, "grad")
    present = {name: _checks.check_state_array(array, param, name)
               for name, array in states.items() if array is not None}
    _checks.check_no_overlap([param, *present.values()], ["param", *present])
    return param, grad


def _step_counter(step):
    """The kernels' step counter for the step numbered `step`: they count it themselves."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step must be a whole number >= 1 (the number of this step), got {step!r}")
    return np.array([step - 1], dtype=np.int64)


def _run(cls, param, grad, states, options, steps):
    """One step of the kernel of optimizer class cls on one parameter, with its state arrays
    in the order of cls.state_names; returns the state lists (the kernel may create an array)."""
    state = {name: [array] for name, array in zip(cls.state_names, states)}
    plan = kernels.Plan(cls._algorithm, [param], state, cls.state_names, steps, [(0, 1)], [1],
                        cls._decoupled, ((), (), (), (), False))
    optim._require_done(plan.step([options], [grad], 1, True))  # the caller has checked everything
    return state


def _require(array, name, reason):
    if array is None:
        raise ValueError(f"{name} is required {reason}")


def sgd(param, grad, momentum_buffer=None, *, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
        nesterov=False, maximize=False):
    """One SGD step in place; returns the momentum buffer.

    On the first momentum step pass ``momentum_buffer=None``: a new buffer
    holding the gradient is returned (torch's rule); pass it back on later steps.
    """
    options = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                   nesterov=nesterov, maximize=maximize)
    optim.SGD._check_options(options, "")
    param, grad = _prepare(param, grad, {"momentum_buffer": momentum_buffer})
    state = _run(optim.SGD, param, grad, [momentum_buffer], options, np.zeros(1, dtype=np.int64))
    return state["momentum_buffer"][0]


def adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr=1e-3, betas=(0.9, 0.999),
         eps=1e-8, weight_decay=0, amsgrad=False, maximize=False, decoupled_weight_decay=False):
    """One Adam step in place (AdamW's with ``decoupled_weight_decay=True``)."""
    options = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
    optim.Adam._check_options(options, "")
    _checks.check_flag(decoupled_weight_decay, "decoupled_weight_decay")
    if amsgrad:
        _require(max_exp_avg_sq, "max_exp_avg_sq", "with amsgrad=True")
    steps = _step_counter(step)
    param, grad = _prepare(param, grad, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq,
                                         "max_exp_avg_sq": max_exp_avg_sq})
    _require(exp_avg, "exp_avg", "by Adam")
    _require(exp_avg_sq, "exp_avg_sq", "by Adam")
    _run(optim.AdamW if decoupled_weight_decay else optim.Adam, param, grad,
         [exp_avg, exp_avg_sq, max_exp_avg_sq], options, steps)


def adamw(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr=1e-3, betas=(0.9, 0.999),
          eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False):
    """One AdamW step in place: Adam with decoupled weight decay."""
    adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step=step, lr=lr, betas=betas, eps=eps,
         weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)


def rmsprop(param, grad, square_avg, grad_avg=None, momentum_buffer=None, *, lr=1e-2, alpha=0.99, eps=1e-8,
            weight_decay=0, momentum=0, centered=False, maximize=False):
    """One RMSprop step in place; ``grad_avg`` is needed when centered, ``momentum_buffer`` with momentum."""
    options = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                   centered=centered, maximize=maximize)
    optim.RMSprop._check_options(options, "")
    if centered:
        _require(grad_avg, "grad_avg", "with centered=True")
    if momentum > 0:
        _require(momentum_buffer, "momentum_buffer", "with momentum > 0")
    param, grad = _prepare(param, grad, {"square_avg": square_avg, "grad_avg": grad_avg,
                                         "momentum_buffer": momentum_buffer})
    _require(square_avg, "square_avg", "by RMSprop")
    _run(optim.RMSprop, param, grad, [square_avg, grad_avg, momentum_buffer], options,
         np.zeros(1, dtype=np.int64))


def adagrad(param, grad, state_sum, *, step, lr=1e-2, lr_decay=0, weight_decay=0, eps=1e-10, maximize=False):
    """One Adagrad step in place; ``state_sum`` starts at initial_accumulator_value."""
    options = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=0,
                   eps=eps, maximize=maximize)
    optim.Adagrad._check_options(options, "")
    steps = _step_counter(step)
    param, grad = _prepare(param, grad, {"state_sum": state_sum})
    _require(state_sum, "state_sum", "by Adagrad")
    _run(optim.Adagrad, param, grad, [state_sum], options, steps)
