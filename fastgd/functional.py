"""One in-place step of each algorithm on raw arrays, for users who keep their own state.

Each function checks its arrays and options as the optimizer classes do, then
runs the same compiled step on one parameter (an array, or a fastgd.Parameter,
whose array is updated).  State arrays must have the
parameter's shape and dtype; ``step`` is the number of this step, counting
from 1.  A number the algorithm keeps across steps (NAdam's ``mu_product``)
is passed in and its new value returned.
"""
import numpy as np

from . import _checks, optim
from ._backend import engine


def _prepare(param, grad, states):
    param = _checks.check_param(optim._data(param), "param")  # a Parameter's array (torch's take nn.Parameter)
    if grad is None:
        raise TypeError(f"grad is None; expected a NumPy array of shape {param.shape}")
    grad = _checks.convert_grad(grad, param, "grad")
    present = {name: _checks.check_state_array(array, param, name)
               for name, array in states.items() if array is not None}
    _checks.check_no_overlap([param, *present.values()], ["param", *present],
                             "the parameter and each state array must be arrays of their own")
    _checks.check_apart(grad, "grad", [("param", param), *present.items()])
    return param, grad


def _step_count(step):
    """The step count before the step numbered `step` (the compiled step counts it)."""
    return _checks.check_count(step, "step", 1, optim.MAX_STEP,
                               f"a whole number from 1 to {optim.MAX_STEP} (the number of this step)") - 1


def _run(cls, param, grad, states, options, step=1, arguments=None, scalars=None):
    """One step of optimizer class cls's algorithm on one parameter, with its state arrays by
    name (as the State names them; None where not given) and its scalar state by name (as the
    ScalarStates name them); returns them all by name, the arrays with any the step created
    (SGD's first momentum buffer), the numbers as the step left them.  arguments: the
    argument's name for a state's, where they differ, for messages."""
    algorithm = cls.algorithm
    options = cls._settled_options(options, "", constructor=True)  # (the compiled step reads them again)
    numbers = algorithm.new_scalars(1)
    for j, scalar in enumerate(algorithm.scalar_state):
        numbers[0, j] = _checks.check_scalar_state((scalars or {})[scalar.name], scalar.name, scalar.kind)
    param, grad = _prepare(param, grad, {(arguments or {}).get(name, name): array for name, array in states.items()})
    cls._check_in_dtype(options, [param], "")
    group = {"params": [param], **options}
    # plain views of the arrays given (the compiled step takes no subclass: a np.memmap, say)
    state_lists = {state.name: [None if states.get(state.name) is None else np.asarray(states[state.name])]
                   for state in algorithm.state}
    steps = np.array([_step_count(step)], dtype=np.int64)
    fresh = np.zeros(1, dtype=np.uint8)
    plan = engine.Plan(algorithm.kernel, algorithm.engine_options(), algorithm.engine_state(), algorithm.counts_steps,
                       [param], [param], state_lists, steps, fresh, numbers, [(0, 1)], [1])
    outcome = plan.check([group], [grad], 1, True)  # everything is checked
    if outcome == optim._STEP_OVERFLOWS:
        raise optim._step_overflow(plan, [group], False)
    if outcome == optim._STATE_MISSING:  # the state the options need and the caller did not pass
        made = optim._missing_state(algorithm, plan, [group], [param])
        for state, _, _ in made:  # a buffer the step makes and returns, or an argument missing
            if not state.from_gradient:
                raise ValueError(f"{(arguments or {}).get(state.name, state.name)} is required by {cls.__name__}"
                                 + (f" with {state.needed_when}={options[state.needed_when]!r}"
                                    if state.needed_when else ""))
        for state, i, array in made:
            state_lists[state.name][i] = array
            fresh[i] = state.from_gradient
    outcome = plan.step([group], [grad], 1, True)
    if outcome != optim._DONE:
        raise RuntimeError(f"the step found the parameter, its gradient or a state array changed since they were "
                           f"checked (outcome {outcome}): reshaped or resized in place by another thread while it "
                           "ran? Nothing was stepped; if nothing else changes them, this is fastgd's error: please "
                           "report")
    return {**{name: arrays[0] if states.get(name) is None else states[name] for name, arrays in state_lists.items()},
            **{scalar.name: float(value) for scalar, value in zip(algorithm.scalar_state, numbers[0])}}


def sgd(param, grad, momentum_buffer=None, *, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
        nesterov=False, maximize=False):
    """One SGD step in place; returns the momentum buffer.

    On the first momentum step pass ``momentum_buffer=None``: a new buffer
    holding the gradient is returned (torch's rule); pass it back on later steps.
    """
    options = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                   nesterov=nesterov, maximize=maximize)
    return _run(optim.SGD, param, grad, {"momentum_buffer": momentum_buffer}, options)["momentum_buffer"]


def adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr=1e-3, betas=(0.9, 0.999),
         eps=1e-8, weight_decay=0, amsgrad=False, maximize=False, decoupled_weight_decay=False):
    """One Adam step in place (AdamW's with ``decoupled_weight_decay=True``)."""
    options = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                   decoupled_weight_decay=decoupled_weight_decay)
    _run(optim.Adam, param, grad, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq,
                                   "max_exp_avg_sq": max_exp_avg_sq}, options, step)


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
    _run(optim.RMSprop, param, grad, {"square_avg": square_avg, "grad_avg": grad_avg,
                                      "momentum_buffer": momentum_buffer}, options)


def adagrad(param, grad, state_sum, *, step, lr=1e-2, lr_decay=0, weight_decay=0, eps=1e-10, maximize=False):
    """One Adagrad step in place; ``state_sum`` starts at initial_accumulator_value."""
    options = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=0,
                   eps=eps, maximize=maximize)
    _run(optim.Adagrad, param, grad, {"sum": state_sum}, options, step, arguments={"sum": "state_sum"})


def adamax(param, grad, exp_avg, exp_inf, *, step, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
           maximize=False):
    """One Adamax step in place."""
    options = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize)
    _run(optim.Adamax, param, grad, {"exp_avg": exp_avg, "exp_inf": exp_inf}, options, step)


def adadelta(param, grad, square_avg, acc_delta, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False):
    """One Adadelta step in place."""
    options = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
    _run(optim.Adadelta, param, grad, {"square_avg": square_avg, "acc_delta": acc_delta}, options)


def lion(param, grad, exp_avg, *, lr=1e-4, betas=(0.9, 0.99), weight_decay=0, maximize=False):
    """One Lion step in place."""
    options = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize)
    _run(optim.Lion, param, grad, {"exp_avg": exp_avg}, options)


def radam(param, grad, exp_avg, exp_avg_sq, *, step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
          decoupled_weight_decay=False, maximize=False):
    """One RAdam step in place."""
    options = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                   decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    _run(optim.RAdam, param, grad, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, options, step)


def nadam(param, grad, exp_avg, exp_avg_sq, *, step, mu_product, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
          weight_decay=0, momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    """One NAdam step in place; returns the new mu_product, to pass to the next step (1.0 on the first)."""
    options = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                   decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    return _run(optim.NAdam, param, grad, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}, options, step,
                scalars={"mu_product": mu_product})["mu_product"]
