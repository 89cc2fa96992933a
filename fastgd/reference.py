"""The optimizers written in plain NumPy, as a careful user would write them.

They are the oracle for fastgd's tests and the contender in its benchmarks:
the same classes, options, checks and state as ``fastgd``'s optimizers, with
the update done by NumPy array operations (in place where NumPy allows it)
in torch.optim's order of operations.
"""
import math
import sys

import numpy as np

from . import optim
from .optim import Parameter

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "Adadelta", "Lion", "RAdam", "NAdam", "Parameter"]


def _present(params, grads, start, stop):
    """(index, param, grad) for the parameters of a group that have a gradient, each gradient read
    when its turn comes (one that is a view of a parameter before it reads that one updated, as
    the compiled step reads it)."""
    for i in range(start, stop):
        grad = grads[i]
        if grad is not None:
            yield i, params[i], grad


def _lerp_(start, end, weight):
    """start moved to start + weight (end - start) in place, as torch's lerp_: from end for a
    weight of 0.5 or more (end - (end - start)(1 - weight)), so that an inf in end gives NaN there
    as in torch, not inf."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        np.subtract(end, (end - start) * (1 - weight), out=start)


class _ScaledOnRead(list):
    """The gradients of step(grads, grad_scale=...): each read (grads[i]) times the scale then,
    so that the gradient that is a view of a parameter before it is read updated, as the
    compiled step reads it; iterated over, the gradients as given (for their shapes and Nones)."""

    def __init__(self, grads, grad_scale):
        super().__init__(grads)
        self.grad_scale = grad_scale

    def __getitem__(self, i):
        grad = super().__getitem__(i)
        return None if grad is None else np.multiply(grad, grad.dtype.type(self.grad_scale), out=np.empty_like(grad))


def _decayed_grad(param, grad, weight_decay, maximize):
    grad = -grad if maximize else grad
    return grad + weight_decay * param if weight_decay != 0 else grad


def _adam_decayed_grad(param, grad, group):
    """The gradient after maximize and weight decay as torch's Adam, RAdam and NAdam take it:
    added to the gradient, or with decoupled_weight_decay applied to the parameter (in place) first."""
    if group["weight_decay"] != 0 and group["decoupled_weight_decay"]:
        param *= 1 - group["lr"] * group["weight_decay"]
        return -grad if group["maximize"] else grad
    return _decayed_grad(param, grad, group["weight_decay"], group["maximize"])


class _GroupByGroup:
    """A step of the reference: each group's parameters updated by its own NumPy loop (``_update``),
    with the state the options need created first, as the compiled step has it created, by the
    reference's own reading of the description (the compiled step's is Plan.missing)."""

    _scaled = _ScaledOnRead

    def _update_all(self, grads):
        groups = self._check_all_groups()
        self._create_own_state(groups, grads)
        for group, (start, stop) in zip(groups, self._slices):
            self._update(group, grads, start, stop)

    def _create_own_state(self, groups, grads):
        """Each state array that a parameter with a gradient lacks and its group's options need
        (a State's needed_when option nonzero, or None), at its initial value."""
        for group, (start, stop) in zip(groups, self._slices):
            for state in self.algorithm.state:
                if state.needed_when is None or group[state.needed_when]:
                    for i in range(start, stop):
                        if grads[i] is not None and self._state[state.name][i] is None:
                            self._state[state.name][i] = state.new(group, self._params[i])
                            self._fresh[i] |= state.from_gradient

    def _count(self, i):
        """Parameter i's step, counted: its count, which stops at MAX_STEP, as the engine's."""
        self._steps[i] = min(self._steps[i] + 1, optim.MAX_STEP)
        return int(self._steps[i])


class SGD(_GroupByGroup, optim.SGD):
    def _update(self, group, grads, start, stop):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        buffers = self._state["momentum_buffer"]
        for i, param, grad in _present(self._params, grads, start, stop):
            grad = _decayed_grad(param, grad, group["weight_decay"], group["maximize"])
            if momentum != 0:
                if self._fresh[i]:  # torch: the first momentum buffer is the gradient itself
                    buffers[i][...] = grad
                    self._fresh[i] = 0
                else:
                    buffers[i] *= momentum
                    buffers[i] += (1 - dampening) * grad
                grad = grad + momentum * buffers[i] if group["nesterov"] else buffers[i]
            param -= lr * grad


class Adam(_GroupByGroup, optim.Adam):
    def _update(self, group, grads, start, stop):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        state = self._state
        for i, param, grad in _present(self._params, grads, start, stop):
            grad = _adam_decayed_grad(param, grad, group)
            step = self._count(i)
            exp_avg, exp_avg_sq = state["exp_avg"][i], state["exp_avg_sq"][i]
            _lerp_(exp_avg, grad, 1 - beta1)
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * grad * grad
            second = exp_avg_sq
            if group["amsgrad"]:
                second = state["max_exp_avg_sq"][i]
                np.maximum(second, exp_avg_sq, out=second)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            denom = np.sqrt(second) / bias_correction2 ** 0.5 + eps
            param -= lr / bias_correction1 * (exp_avg / denom)


class AdamW(optim.AdamW, Adam):
    pass


class RMSprop(_GroupByGroup, optim.RMSprop):
    def _update(self, group, grads, start, stop):
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        state = self._state
        for i, param, grad in _present(self._params, grads, start, stop):
            grad = _decayed_grad(param, grad, group["weight_decay"], group["maximize"])
            self._count(i)
            square_avg = state["square_avg"][i]
            square_avg *= alpha
            square_avg += (1 - alpha) * grad * grad
            if group["centered"]:
                grad_avg = state["grad_avg"][i]
                grad_avg += (1 - alpha) * (grad - grad_avg)
                with np.errstate(invalid="ignore", over="ignore"):  # an overflowed square_avg stays inf, as torch's
                    kept = (square_avg == np.inf) & np.isfinite(grad_avg)  # (inf - inf of an inf grad_avg: NaN)
                    variance = np.where(kept, square_avg, square_avg - grad_avg * grad_avg)
                avg = np.sqrt(variance) + eps
            else:
                avg = np.sqrt(square_avg) + eps
            if momentum > 0:
                buffer = state["momentum_buffer"][i]
                buffer *= momentum
                buffer += grad / avg
                param -= lr * buffer
            else:
                param -= lr * (grad / avg)


class Adagrad(_GroupByGroup, optim.Adagrad):
    def _update(self, group, grads, start, stop):
        for i, param, grad in _present(self._params, grads, start, stop):
            grad = _decayed_grad(param, grad, group["weight_decay"], group["maximize"])
            clr = group["lr"] / (1 + (self._count(i) - 1) * group["lr_decay"])
            state_sum = self._state["sum"][i]
            state_sum += grad * grad
            param -= clr * (grad / (np.sqrt(state_sum) + group["eps"]))


class Adamax(_GroupByGroup, optim.Adamax):
    def _update(self, group, grads, start, stop):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        for i, param, grad in _present(self._params, grads, start, stop):
            grad = _decayed_grad(param, grad, group["weight_decay"], group["maximize"])
            step = self._count(i)
            exp_avg, exp_inf = self._state["exp_avg"][i], self._state["exp_inf"][i]
            _lerp_(exp_avg, grad, 1 - beta1)
            np.maximum(exp_inf * beta2, np.abs(grad) + eps, out=exp_inf)
            param -= lr / (1 - beta1 ** step) * (exp_avg / exp_inf)


class Adadelta(_GroupByGroup, optim.Adadelta):
    def _update(self, group, grads, start, stop):
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        for i, param, grad in _present(self._params, grads, start, stop):
            grad = _decayed_grad(param, grad, group["weight_decay"], group["maximize"])
            self._count(i)
            square_avg, acc_delta = self._state["square_avg"][i], self._state["acc_delta"][i]
            square_avg *= rho
            square_avg += (1 - rho) * grad * grad
            delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * grad
            acc_delta *= rho
            acc_delta += (1 - rho) * delta * delta
            param -= lr * delta


class Lion(_GroupByGroup, optim.Lion):
    def _update(self, group, grads, start, stop):
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        for i, param, grad in _present(self._params, grads, start, stop):
            grad = -grad if group["maximize"] else grad
            exp_avg = self._state["exp_avg"][i]
            direction = np.sign(exp_avg * beta1 + (1 - beta1) * grad)
            if weight_decay != 0:
                param *= 1 - lr * weight_decay
            param -= lr * direction
            exp_avg *= beta2
            exp_avg += (1 - beta2) * grad


class RAdam(_GroupByGroup, optim.RAdam):
    def _update(self, group, grads, start, stop):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        for i, param, grad in _present(self._params, grads, start, stop):
            grad = _adam_decayed_grad(param, grad, group)
            step = self._count(i)
            exp_avg, exp_avg_sq = self._state["exp_avg"][i], self._state["exp_avg_sq"][i]
            _lerp_(exp_avg, grad, 1 - beta1)
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * grad * grad
            bias_correction1, bias_correction2 = 1 - beta1 ** step, 1 - beta2 ** step
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * beta2 ** step / bias_correction2
            if rho_t > 5:
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                param -= exp_avg / bias_correction1 * lr * (bias_correction2 ** 0.5 / (np.sqrt(exp_avg_sq) + eps)) * rect
            else:
                param -= exp_avg / bias_correction1 * lr


class NAdam(_GroupByGroup, optim.NAdam):
    def _update(self, group, grads, start, stop):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        momentum_decay = group["momentum_decay"]
        for i, param, grad in _present(self._params, grads, start, stop):
            grad = _adam_decayed_grad(param, grad, group)
            step = self._count(i)
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
            # torch keeps mu_product as a float32 number
            mu_product = float(np.float32(self._scalars[i, 0]) * np.float32(mu))
            self._scalars[i, 0] = mu_product
            exp_avg, exp_avg_sq = self._state["exp_avg"][i], self._state["exp_avg_sq"][i]
            _lerp_(exp_avg, grad, 1 - beta1)
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * grad * grad
            denom = np.sqrt(exp_avg_sq / (1 - beta2 ** step)) + eps
            param += -lr * (1.0 - mu) / (1.0 - mu_product) * (grad / denom)
            param += -lr * mu_next / (1.0 - mu_product * mu_next) * (exp_avg / denom)


def _softmax_residuals(scores, classes):
    scores = scores - scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scores).sum(axis=1, keepdims=True))
    log_proba = scores - log_norm
    rows = np.arange(len(classes))
    losses = -log_proba[rows, classes]
    residuals = np.exp(log_proba)
    residuals[rows, classes] -= 1
    return losses, residuals


def _numpy_epoch(model, X, targets, sample_weight, order, batch_size, rates):
    """The textbook loop: shuffle, slice the batch, forward pass, gradient, optimizer step.
    Returns the weighted loss sum (NaN if it diverged), the number of batches stepped, NaN for
    the drop-ins' objective sum (the reference has no drop-ins), and False: the weights are
    unchecked."""
    k = model._n_outputs
    d = X.shape[1]
    theta = model._theta
    coef, intercept = theta[: k * d].reshape(k, d), theta[k * d:]
    held = intercept.copy()  # without fit_intercept, put back after each step (AdamW's decay moves it)
    total = 0.0
    row_weight = model._row_weight()  # rows given no weights weigh 1
    for batch, start in enumerate(range(0, len(order), batch_size)):
        rows = order[start:start + batch_size]
        X_batch, y_batch = X[rows], targets[rows]
        weight = 1 if sample_weight is None else sample_weight[rows][:, None]
        scores = X_batch @ coef.T + intercept
        if model._loss == "squared":  # one target a row (y 1-D) or k
            residuals = scores - y_batch.reshape(len(rows), k)
            losses = 0.5 * (residuals ** 2).sum(axis=1)
        elif model._loss == "log":
            z = scores[:, 0]
            losses = np.logaddexp(0, z) - y_batch * z
            residuals = (1 / (1 + np.exp(-z)) - y_batch)[:, None]
        else:
            losses, residuals = _softmax_residuals(scores, y_batch.astype(np.intp))
        residuals = weight * residuals
        batch_loss = float(np.sum(losses * (weight if np.ndim(weight) == 0 else weight[:, 0])))
        if not np.isfinite(batch_loss):
            return batch_loss, batch, math.nan, False
        total += batch_loss
        # the gradient of the weighted mean loss, estimated from the batch (each row weighing its
        # weight over the epoch's mean weight), and the penalty's
        scale = 1 / (len(rows) * row_weight) if row_weight != 0 else 0.0
        l2, l1 = model._penalties()
        grad_coef = residuals.T @ X_batch * scale + l2 * coef
        grad_intercept = residuals.sum(axis=0) * scale if model.fit_intercept else np.zeros(k, dtype=X.dtype)
        if rates is not None:
            model._optimizer.param_groups[0]["lr"] = float(rates[batch])
        model._optimizer.step([np.concatenate([grad_coef.ravel(), grad_intercept]).astype(X.dtype)])
        if not model.fit_intercept:
            intercept[...] = held
        lr = model._optimizer.param_groups[0]["lr"]
        if l1:  # the cumulative truncated gradient (Tsuruoka et al. 2009): each weight towards zero
            penalty = model._l1_state  # by what it has not yet received, never across zero
            penalty[-1] += l1 * lr
            flat, before = coef.reshape(-1), coef.reshape(-1).astype(np.float64)
            shrunk = np.where(before > 0, np.maximum(0, before - (penalty[-1] + penalty[:-1])),
                              np.where(before < 0, np.minimum(0, before + (penalty[-1] - penalty[:-1])), before))
            flat[...] = shrunk
            penalty[:-1] += flat - before
        step = model._t[0] + batch + 1
        if model.average and step >= model._average_start:  # the running mean of the iterates
            average = model._average_theta
            average += ((theta - average) / (step - model._average_start + 1)).astype(average.dtype)
    return total, -(-len(order) // batch_size), math.nan, False


def _make_estimator(base):
    def _optimizer_module(self):
        return sys.modules[__name__]

    def _epoch(self, X, targets, sample_weight, order, batch_size, rates):
        return _numpy_epoch(self, X, targets, sample_weight, order, batch_size, rates)

    return type(base.__name__, (base,), {
        "__doc__": f"{base.__name__} with each epoch run by the textbook NumPy loop (the reference).",
        "__module__": __name__, "__qualname__": base.__name__,
        "_optimizer_module": _optimizer_module, "_epoch": _epoch,
    })


def __getattr__(name):
    # the estimators need scikit-learn: build them only when asked for
    if name in ("LinearRegression", "LogisticRegression"):
        from . import linear_model

        estimator = _make_estimator(getattr(linear_model, name))
        globals()[name] = estimator
        return estimator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
