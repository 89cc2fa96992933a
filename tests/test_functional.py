"""fastgd.functional: one in-place step on raw arrays, with the caller's own state.

Driving it step by step gives exactly the class's result (and torch's, to rounding);
first steps match the closed-form update; bad input raises, naming the argument,
and changes nothing.
"""
import inspect
import math
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastgd
from conftest import (
    DTYPES,
    NAMES,
    OPTIONS,
    assert_all_close,
    assert_close,
    build,
    build_torch,
    fast_cls,
    grad_sequence,
    option_cases,
    random_arrays,
    torch_numpy,
    torch_step,
)

F = fastgd.functional
SHAPES = [(4, 3), (), (0, 2), (19,)]


class FunctionalDriver:
    """Keeps per-parameter state as a user of fastgd.functional would, and steps with it."""

    def __init__(self, name, params, kwargs):
        self.name, self.params, self.kwargs = name, params, dict(kwargs)
        self.steps = [0] * len(params)
        zeros = [np.zeros_like(p) for p in params]
        if name not in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad"):  # every state array always needed
            self.arrays = {s.name: [np.zeros_like(p) for p in params] for s in fast_cls(name).algorithm.state}
            self.numbers = {s.name: [s.initial] * len(params) for s in fast_cls(name).algorithm.scalar_state}
        elif name == "SGD":
            self.buffers = [None] * len(params)
        elif name in ("Adam", "AdamW"):
            self.exp_avg = [np.zeros_like(p) for p in params]
            self.exp_avg_sq = zeros
            self.max_exp_avg_sq = [np.zeros_like(p) for p in params] if kwargs.get("amsgrad") else [None] * len(params)
        elif name == "RMSprop":
            self.square_avg = zeros
            self.grad_avg = [np.zeros_like(p) for p in params] if kwargs.get("centered") else [None] * len(params)
            self.buffers = [np.zeros_like(p) for p in params] if kwargs.get("momentum", 0) > 0 else [None] * len(params)
        else:
            initial = self.kwargs.pop("initial_accumulator_value", 0)
            self.sums = [np.full_like(p, initial) for p in params]

    def step(self, grads):
        kw = self.kwargs
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if g is None:
                continue
            self.steps[i] += 1
            if hasattr(self, "arrays"):
                function = getattr(F, self.name.lower())
                step = {"step": self.steps[i]} if "step" in inspect.signature(function).parameters else {}
                numbers = {name: values[i] for name, values in self.numbers.items()}  # NAdam's mu_product
                new = function(p, g, *[arrays[i] for arrays in self.arrays.values()], **step, **numbers, **kw)
                for values in self.numbers.values():  # the function returns its one number's new value
                    values[i] = new
            elif self.name == "SGD":
                self.buffers[i] = F.sgd(p, g, self.buffers[i], **kw)
            elif self.name == "Adam":
                F.adam(p, g, self.exp_avg[i], self.exp_avg_sq[i], self.max_exp_avg_sq[i], step=self.steps[i], **kw)
            elif self.name == "AdamW":
                F.adamw(p, g, self.exp_avg[i], self.exp_avg_sq[i], self.max_exp_avg_sq[i], step=self.steps[i], **kw)
            elif self.name == "RMSprop":
                F.rmsprop(p, g, self.square_avg[i], self.grad_avg[i], self.buffers[i], **kw)
            else:
                F.adagrad(p, g, self.sums[i], step=self.steps[i], **kw)

    def state(self, i):
        """The state of parameter i, named as the classes' state_dict() names it."""
        if hasattr(self, "arrays"):
            step = {"step": self.steps[i]} if fast_cls(self.name).algorithm.counts_steps else {}
            return {**{name: arrays[i] for name, arrays in self.arrays.items()}, **step,
                    **{name: values[i] for name, values in self.numbers.items()}}
        if self.name == "SGD":
            return {} if self.buffers[i] is None else {"momentum_buffer": self.buffers[i]}
        if self.name in ("Adam", "AdamW"):
            out = {"exp_avg": self.exp_avg[i], "exp_avg_sq": self.exp_avg_sq[i], "step": self.steps[i]}
            if self.max_exp_avg_sq[i] is not None:
                out["max_exp_avg_sq"] = self.max_exp_avg_sq[i]
            return out
        if self.name == "RMSprop":
            out = {"square_avg": self.square_avg[i], "step": self.steps[i]}
            if self.grad_avg[i] is not None:
                out["grad_avg"] = self.grad_avg[i]
            if self.buffers[i] is not None:
                out["momentum_buffer"] = self.buffers[i]
            return out
        return {"sum": self.sums[i], "step": self.steps[i]}


def dtype_id(dtype):
    return np.dtype(dtype).name


# -- the functional API step by step is the class -------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize(("name", "kwargs"), option_cases())
def test_functional_equals_class(name, kwargs, dtype, rng):
    """Bit for bit: the same parameters and state as the class after 25 steps (with some None grads)."""
    arrays = random_arrays(rng, SHAPES, dtype)
    params = [a.copy() for a in arrays]
    driver = FunctionalDriver(name, params, kwargs)
    opt, cparams = build(fast_cls(name), [(arrays, {})], kwargs)
    for grads in grad_sequence(rng, SHAPES, dtype, 25, lambda k, i: (i == 3 and k < 4) or (i == 0 and k % 5 == 2)):
        driver.step(grads)
        opt.step(grads)
    for i, (p, q) in enumerate(zip(params, cparams)):
        assert p.dtype == q.dtype
        assert np.array_equal(p, q), f"parameter {i}"
    state = opt.state_dict()["state"]
    for i in range(len(params)):
        expected = state.get(i, {})
        got = driver.state(i)
        assert set(got) == set(expected), i
        for key, value in got.items():
            if key == "step":
                assert value == expected[key]
            else:
                assert np.array_equal(value, expected[key]), f"state {i}[{key!r}]"


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", NAMES)
def test_functional_matches_torch(name, dtype, rng):
    torch = pytest.importorskip("torch")
    kwargs = OPTIONS[name][-1]
    arrays = random_arrays(rng, SHAPES, dtype)
    params = [a.copy() for a in arrays]
    driver = FunctionalDriver(name, params, kwargs)
    topt, tparams = build_torch(torch, name, [(arrays, {})], kwargs)
    for grads in grad_sequence(rng, SHAPES, dtype, 50, lambda k, i: i == 1 and k % 4 == 0):
        driver.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(params, torch_numpy(tparams))


@pytest.mark.parametrize("name", NAMES)
def test_functional_negative_lr_matches_torch(name, rng):
    """The functions take an lr below 0, as torch's functional API and its steps do (torch's
    constructor alone refuses it: its group's lr is set below 0 here)."""
    torch = pytest.importorskip("torch")
    kwargs = {**OPTIONS[name][-1], "lr": -0.01}
    arrays = random_arrays(rng, SHAPES, np.float64)
    params = [a.copy() for a in arrays]
    driver = FunctionalDriver(name, params, kwargs)
    topt, tparams = build_torch(torch, name, [(arrays, {})], {**kwargs, "lr": 0.01})
    topt.param_groups[0]["lr"] = -0.01
    for grads in grad_sequence(rng, SHAPES, np.float64, 20):
        driver.step(grads)
        torch_step(torch, topt, tparams, grads)
    assert_all_close(params, torch_numpy(tparams))


@pytest.mark.parametrize("name", NAMES)
def test_a_parameter_steps_as_its_array(name, rng):
    """A fastgd.Parameter given as param: its array is stepped in place, bit for bit as the bare
    array is (torch's functional steps take an nn.Parameter as a tensor)."""
    kwargs = OPTIONS[name][-1]
    array = random_arrays(rng, [(9,)], np.float64)[0]
    bare, parameter = array.copy(), fastgd.Parameter(array.copy())
    data = parameter.data
    bare_driver = FunctionalDriver(name, [bare], kwargs)
    parameter_driver = FunctionalDriver(name, [parameter], kwargs)
    for grads in grad_sequence(rng, [(9,)], np.float64, 3, lambda k, i: False):
        bare_driver.step(grads)
        parameter_driver.step(grads)
    assert parameter.data is data
    assert np.array_equal(parameter.data, bare)
    assert not np.array_equal(bare, array)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_adamw_is_adam_with_decoupled_weight_decay(dtype, rng):
    p, q = random_arrays(rng, [(7,), (7,)], dtype)
    q[...] = p
    states = [[np.zeros_like(p) for _ in range(3)] for _ in range(2)]
    for step in range(1, 6):
        g = rng.standard_normal(7).astype(dtype)
        F.adamw(p, g, *states[0], step=step, lr=0.05, weight_decay=0.3, amsgrad=True)
        F.adam(q, g, *states[1], step=step, lr=0.05, weight_decay=0.3, amsgrad=True, decoupled_weight_decay=True)
    assert np.array_equal(p, q)
    r = rng.standard_normal(7).astype(dtype)
    s = r.copy()
    F.adamw(r, np.ones(7, dtype), np.zeros(7, dtype), np.zeros(7, dtype), step=1)  # default weight_decay=1e-2
    F.adam(s, np.ones(7, dtype), np.zeros(7, dtype), np.zeros(7, dtype), step=1, weight_decay=1e-2,
           decoupled_weight_decay=True)
    assert np.array_equal(r, s)


# -- closed-form first steps -----------------------------------------------------------------


def assert_update(actual, expected, terms, dtype, ulps=8):
    """|actual - expected| <= ulps * eps * terms, elementwise: terms bounds the magnitudes
    summed into the result, so values near 0 are judged by the size of what cancelled."""
    eps = np.finfo(dtype).eps
    actual64 = np.asarray(actual, dtype=np.float64)
    assert np.asarray(actual).dtype == np.dtype(dtype)
    bound = ulps * eps * np.asarray(terms, dtype=np.float64)
    assert np.all(np.abs(actual64 - expected) <= bound), np.max(np.abs(actual64 - expected) - bound)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.25])
def test_sgd_plain_step_is_p_minus_lr_g(dtype, maximize, weight_decay, rng):
    p0, g = (x.astype(np.float64) for x in random_arrays(rng, [(6, 5), (6, 5)], dtype))
    p = p0.astype(dtype)
    buffer = F.sgd(p, g.astype(dtype), lr=0.3, weight_decay=weight_decay, maximize=maximize)
    assert buffer is None
    sign = -1.0 if maximize else 1.0
    direction = sign * g + weight_decay * p0
    assert_update(p, p0 - 0.3 * direction, np.abs(p0) + 0.3 * (np.abs(g) + weight_decay * np.abs(p0)), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_first_steps(dtype, nesterov, rng):
    """First step: the buffer is the gradient (a new array); second: momentum * buf + (1 - dampening) * g."""
    p0, g1, g2 = random_arrays(rng, [(9,), (9,), (9,)], dtype)
    p = p0.copy()
    momentum, dampening, lr = 0.9, (0.0 if nesterov else 0.4), 0.1
    buf = F.sgd(p, g1, None, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov)
    assert isinstance(buf, np.ndarray) and buf is not g1 and not np.shares_memory(buf, g1)
    assert buf.dtype == np.dtype(dtype) and buf.shape == (9,)
    assert np.array_equal(buf, g1)  # torch: the first buffer is a copy of the gradient
    w = [x.astype(np.float64) for x in (p0, g1, g2)]
    step1 = w[1] + momentum * w[1] if nesterov else w[1]
    expected1 = w[0] - lr * step1
    assert_update(p, expected1, np.abs(w[0]) + lr * 2 * np.abs(w[1]), dtype)
    p1 = p.astype(np.float64)
    same = F.sgd(p, g2, buf, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov)
    assert same is buf  # updated in place and handed back
    expected_buf = momentum * w[1] + (1 - dampening) * w[2]
    assert_update(buf, expected_buf, np.abs(w[1]) + np.abs(w[2]), dtype)
    step2 = w[2] + momentum * expected_buf if nesterov else expected_buf
    assert_update(p, p1 - lr * step2, np.abs(p1) + lr * (np.abs(w[2]) + 2 * np.abs(expected_buf)), dtype, ulps=16)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_first_two_steps_closed_form(dtype, decoupled, amsgrad, rng):
    """Adam's equations, evaluated in float64 by hand for steps 1 and 2."""
    lr, (b1, b2), eps, wd = 0.01, (0.8, 0.95), 1e-3, 0.1
    p0, g1, g2 = random_arrays(rng, [(11,), (11,), (11,)], dtype)
    p, m, v = p0.copy(), np.zeros(11, dtype), np.zeros(11, dtype)
    vmax = np.zeros(11, dtype) if amsgrad else None
    w = [x.astype(np.float64) for x in (p0, g1, g2)]
    ep, em, ev, evmax = w[0], np.zeros(11), np.zeros(11), np.zeros(11)
    for step, (g, eg) in enumerate([(g1, w[1]), (g2, w[2])], start=1):
        F.adam(p, g, m, v, vmax, step=step, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=amsgrad,
               decoupled_weight_decay=decoupled)
        if decoupled:
            ep = ep * (1 - lr * wd)
        else:
            eg = eg + wd * ep
        em = b1 * em + (1 - b1) * eg
        ev = b2 * ev + (1 - b2) * eg * eg
        evmax = np.maximum(evmax, ev)
        second = evmax if amsgrad else ev
        ep = ep - lr / (1 - b1**step) * em / (np.sqrt(second) / math.sqrt(1 - b2**step) + eps)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_close(m, em, rtol, "exp_avg")
    assert_close(v, ev, rtol, "exp_avg_sq")
    if amsgrad:
        assert_close(vmax, evmax, rtol, "max_exp_avg_sq")
    assert_close(p, ep, rtol, "param")
    # the update itself, not only the (large) parameter, matches
    assert_close(p.astype(np.float64) - w[0], ep - w[0], 1e-4 if dtype == np.float32 else 1e-11, "update")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_rmsprop_first_two_steps_closed_form(dtype, centered, momentum, rng):
    lr, alpha, eps, wd = 0.01, 0.6, 1e-4, 0.05
    p0, g1, g2 = random_arrays(rng, [(13,), (13,), (13,)], dtype)
    p = p0.copy()
    sq = np.zeros(13, dtype)
    ga = np.zeros(13, dtype) if centered else None
    buf = np.zeros(13, dtype) if momentum else None
    w = [x.astype(np.float64) for x in (p0, g1, g2)]
    ep, esq, ega, ebuf = w[0], np.zeros(13), np.zeros(13), np.zeros(13)
    for g, eg in [(g1, w[1]), (g2, w[2])]:
        F.rmsprop(p, g, sq, ga, buf, lr=lr, alpha=alpha, eps=eps, weight_decay=wd, momentum=momentum,
                  centered=centered)
        eg = eg + wd * ep
        esq = alpha * esq + (1 - alpha) * eg * eg
        avg = esq
        if centered:
            ega = alpha * ega + (1 - alpha) * eg
            avg = esq - ega * ega
        avg = np.sqrt(avg) + eps
        if momentum:
            ebuf = momentum * ebuf + eg / avg
            ep = ep - lr * ebuf
        else:
            ep = ep - lr * eg / avg
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_close(sq, esq, rtol, "square_avg")
    if centered:
        assert_close(ga, ega, rtol, "grad_avg")
    if momentum:
        assert_close(buf, ebuf, rtol, "momentum_buffer")
    assert_close(p.astype(np.float64) - w[0], ep - w[0], 1e-4 if dtype == np.float32 else 1e-11, "update")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("maximize", [False, True])
def test_adagrad_step_closed_form(dtype, maximize, rng):
    """At step k: sum += g^2; p -= lr / (1 + (k - 1) * lr_decay) * g / (sqrt(sum) + eps)."""
    lr, lr_decay, wd, eps = 0.1, 0.5, 0.2, 1e-6
    p0, g, s0 = random_arrays(rng, [(3, 5), (3, 5), (3, 5)], dtype)
    s0 = np.abs(s0)
    p, s = p0.copy(), s0.copy()
    F.adagrad(p, g, s, step=3, lr=lr, lr_decay=lr_decay, weight_decay=wd, eps=eps, maximize=maximize)
    w = [x.astype(np.float64) for x in (p0, g, s0)]
    eg = (-w[1] if maximize else w[1]) + wd * w[0]
    es = w[2] + eg * eg
    ep = w[0] - lr / (1 + 2 * lr_decay) * eg / (np.sqrt(es) + eps)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_close(s, es, rtol, "sum")
    assert_close(p.astype(np.float64) - w[0], ep - w[0], 1e-4 if dtype == np.float32 else 1e-11, "update")


# -- conversions, odd shapes ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", NAMES)
def test_converted_gradient_gives_the_converted_result(name, dtype, rng):
    other = np.float64 if dtype == np.float32 else np.float32
    p0 = rng.standard_normal((5, 4)).astype(dtype)
    raw = rng.standard_normal((5, 8)).astype(other)[:, ::2]  # other dtype and non-contiguous
    results = []
    for grad in (raw, np.ascontiguousarray(raw, dtype=dtype)):
        params = [p0.copy()]
        driver = FunctionalDriver(name, params, OPTIONS[name][-1])
        driver.step([grad])
        driver.step([grad])
        results.append(params[0])
    assert results[0].dtype == np.dtype(dtype)
    assert np.array_equal(results[0], results[1])


@pytest.mark.parametrize("shape", [(), (0,), (0, 3), (1,), (65,)])
@pytest.mark.parametrize("name", NAMES)
def test_odd_shapes(name, shape, rng):
    p0 = np.asarray(rng.standard_normal(shape))
    g = np.asarray(rng.standard_normal(shape))
    params = [p0.copy()]
    driver = FunctionalDriver(name, params, OPTIONS[name][-1])
    driver.step([g])
    opt, (q,) = build(fast_cls(name), [([p0], {})], OPTIONS[name][-1])
    opt.step([g])
    assert params[0].shape == shape and np.array_equal(params[0], q)


# -- bad input, nothing changed --------------------------------------------------------------------


def arrays64(*shapes):
    rng = np.random.default_rng(5)
    return [rng.standard_normal(s) for s in shapes]


def bad_call_cases():
    """(label, call(arrays) -> None, arrays factory, exception, message regex)."""

    def read_only(a):
        a.flags.writeable = False
        return a

    cases = []

    def add(label, make, call, error, pattern):
        cases.append(pytest.param(make, call, error, pattern, id=label))

    three = lambda: arrays64((3,), (3,), (3,), (3,), (3,))  # noqa: E731
    add("grad-none", three, lambda a: F.sgd(a[0], None, lr=0.1), TypeError,
        r"grad is None; expected a NumPy array of shape \(3,\)")
    add("grad-shape", three, lambda a: F.sgd(a[0], np.zeros(4), lr=0.1), ValueError,
        r"grad has shape \(4,\); expected \(3,\), the shape of its parameter")
    add("grad-list", three, lambda a: F.adam(a[0], [1.0, 2.0, 3.0], a[1], a[2], step=1), TypeError,
        r"grad is a list; expected a NumPy array of shape \(3,\)")
    add("grad-str", three, lambda a: F.adagrad(a[0], "abc", a[1], step=1), TypeError, r"grad is a str")
    add("grad-int", three, lambda a: F.rmsprop(a[0], np.ones(3, int), a[1]), TypeError,
        r"grad \(shape \(3,\), dtype int64\) has an unsupported dtype")
    add("grad-complex", three, lambda a: F.sgd(a[0], np.ones(3, complex), lr=0.1), TypeError,
        r"grad \(shape \(3,\), dtype complex128\) has an unsupported dtype")
    add("param-list", three, lambda a: F.sgd([1.0, 2.0, 3.0], a[1], lr=0.1), TypeError, r"param is a list")
    add("param-int", three, lambda a: F.adam(np.zeros(3, int), a[1], a[2], a[3], step=1), TypeError,
        r"param \(shape \(3,\), dtype int64\) has an unsupported dtype")
    add("param-float16", three, lambda a: F.adagrad(np.zeros(3, np.float16), a[1], a[2], step=1), TypeError,
        r"param \(shape \(3,\), dtype float16\) has an unsupported dtype")
    add("param-read-only", three, lambda a: F.sgd(read_only(a[0]), a[1], lr=0.1), ValueError,
        r"param \(shape \(3,\), dtype float64\) is read-only")
    add("param-strided", lambda: arrays64((6,), (3,), (3,), (3,), (3,)),
        lambda a: F.sgd(a[0][::2], a[1], lr=0.1), ValueError, r"param \(shape \(3,\), dtype float64\) is not C-contiguous")
    add("state-shape", three, lambda a: F.adam(a[0], a[1], np.zeros(4), a[3], step=1), ValueError,
        r"exp_avg \(shape \(4,\), dtype float64\) does not match its parameter \(shape \(3,\), dtype float64\)")
    add("state-dtype", three, lambda a: F.adam(a[0], a[1], a[2], np.zeros(3, np.float32), step=1), ValueError,
        r"exp_avg_sq \(shape \(3,\), dtype float32\) does not match its parameter \(shape \(3,\), dtype float64\)")
    add("state-read-only", three, lambda a: F.adagrad(a[0], a[1], read_only(a[2]), step=1), ValueError,
        r"state_sum \(shape \(3,\), dtype float64\) is read-only; the step updates its state arrays in place")
    add("state-strided", lambda: arrays64((3,), (3,), (6,), (3,), (3,)),
        lambda a: F.rmsprop(a[0], a[1], a[2][::2]), ValueError, r"square_avg \(shape \(3,\), dtype float64\) is not C-contiguous")
    add("state-list", three, lambda a: F.sgd(a[0], a[1], [0.0, 0.0, 0.0], lr=0.1, momentum=0.9), TypeError,
        r"momentum_buffer is a list")
    add("state-is-param", three, lambda a: F.adam(a[0], a[1], a[0], a[2], step=1), ValueError,
        r"exp_avg shares memory with param")
    add("states-alias", three, lambda a: F.adam(a[0], a[1], a[2], a[2], step=1), ValueError,
        r"exp_avg_sq shares memory with exp_avg .*; the parameter and each state array must be arrays of their own")
    add("buffer-is-param", three, lambda a: F.sgd(a[0], a[1], a[0], lr=0.1, momentum=0.9), ValueError,
        r"momentum_buffer shares memory with param")
    add("missing-exp-avg", three, lambda a: F.adam(a[0], a[1], None, a[2], step=1), ValueError,
        r"exp_avg is required by Adam")
    add("missing-exp-avg-sq", three, lambda a: F.adamw(a[0], a[1], a[2], None, step=1), ValueError,
        r"exp_avg_sq is required by Adam")
    add("missing-max", three, lambda a: F.adam(a[0], a[1], a[2], a[3], step=1, amsgrad=True), ValueError,
        r"max_exp_avg_sq is required by Adam with amsgrad=True")
    add("missing-square-avg", three, lambda a: F.rmsprop(a[0], a[1], None), ValueError,
        r"square_avg is required by RMSprop")
    add("missing-grad-avg", three, lambda a: F.rmsprop(a[0], a[1], a[2], centered=True), ValueError,
        r"grad_avg is required by RMSprop with centered=True")
    add("missing-rmsprop-buffer", three, lambda a: F.rmsprop(a[0], a[1], a[2], momentum=0.5), ValueError,
        r"momentum_buffer is required by RMSprop with momentum=0.5")
    # NumPy's bools and numbers count as Python's do: the state is needed all the same
    add("missing-max-np-bool", three, lambda a: F.adam(a[0], a[1], a[2], a[3], step=1, amsgrad=np.True_), ValueError,
        r"max_exp_avg_sq is required by Adam with amsgrad=np.True_")
    add("missing-grad-avg-np-bool", three, lambda a: F.rmsprop(a[0], a[1], a[2], centered=np.True_), ValueError,
        r"grad_avg is required by RMSprop with centered=np.True_")
    add("missing-rmsprop-buffer-np", three, lambda a: F.rmsprop(a[0], a[1], a[2], momentum=np.float32(0.5)),
        ValueError, r"momentum_buffer is required by RMSprop with momentum=np.float32\(0.5\)")
    add("missing-sum", three, lambda a: F.adagrad(a[0], a[1], None, step=1), ValueError,
        r"state_sum is required by Adagrad")
    for value in (0, -1, 1.5, 2.0, True, "1", np.int64(0)):  # step=None: see test_step_none_is_refused
        error = ValueError if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else TypeError
        add(f"adam-step={value!r}", three, lambda a, value=value: F.adam(a[0], a[1], a[2], a[3], step=value),
            error, rf"step must be a whole number from 1 to \d+ \(the number of this step\), got {re.escape(repr(value))}")
        add(f"adagrad-step={value!r}", three, lambda a, value=value: F.adagrad(a[0], a[1], a[2], step=value),
            error, rf"step must be a whole number from 1 to \d+ \(the number of this step\), got {re.escape(repr(value))}")
    add("adam-no-step", three, lambda a: F.adam(a[0], a[1], a[2], a[3]), TypeError, r"step")
    for option, value, error, pattern in [
        ("lr", -math.inf, ValueError, r"Invalid lr: -inf; expected a finite number$"),
        ("lr", math.nan, ValueError, r"Invalid lr: nan"),
        ("lr", math.inf, ValueError, r"Invalid lr: inf"),
        ("lr", "0.1", TypeError, r"lr must be a real number, got '0.1'"),
        ("weight_decay", -1, ValueError, r"Invalid weight_decay: -1"),
        ("momentum", -0.5, ValueError, r"Invalid momentum: -0.5"),
        ("dampening", math.nan, ValueError, r"Invalid dampening: nan"),
        ("nesterov", "no", TypeError, r"nesterov must be True or False, got 'no'"),
        ("maximize", 0, TypeError, r"maximize must be True or False, got 0"),
    ]:
        add(f"sgd-{option}={value!r}", three, lambda a, o=option, v=value: F.sgd(a[0], a[1], **{"lr": 0.1, o: v}),
            error, pattern)
    for option, value, error, pattern in [
        ("betas", (1.0, 0.999), ValueError, r"Invalid betas\[0\]: 1.0; expected a number in \[0, 1\)"),
        ("betas", (0.9, -0.1), ValueError, r"Invalid betas\[1\]: -0.1"),
        ("betas", (0.9, math.nan), ValueError, r"Invalid betas\[1\]: nan"),
        ("betas", 0.9, TypeError, r"betas must be a pair \(beta1, beta2\), got 0.9"),
        ("eps", -1e-8, ValueError, r"Invalid eps: -1e-08"),
        ("eps", math.inf, ValueError, r"Invalid eps: inf"),
        ("amsgrad", None, TypeError, r"amsgrad must be True or False, got None"),
        ("decoupled_weight_decay", 1, TypeError, r"decoupled_weight_decay must be True or False, got 1"),
    ]:
        add(f"adam-{option}={value!r}", three,
            lambda a, o=option, v=value: F.adam(a[0], a[1], a[2], a[3], a[4], step=1, **{o: v}), error, pattern)
    for option, value, error, pattern in [
        ("alpha", -0.1, ValueError, r"Invalid alpha: -0.1; expected a finite number >= 0"),
        ("alpha", math.nan, ValueError, r"Invalid alpha: nan"),
        ("eps", math.nan, ValueError, r"Invalid eps: nan"),
        ("centered", "yes", TypeError, r"centered must be True or False"),
    ]:
        add(f"rmsprop-{option}={value!r}", three,
            lambda a, o=option, v=value: F.rmsprop(a[0], a[1], a[2], a[3], a[4], **{o: v}), error, pattern)
    for option, value, error, pattern in [
        ("lr_decay", -0.1, ValueError, r"Invalid lr_decay: -0.1"),
        ("lr_decay", math.inf, ValueError, r"Invalid lr_decay: inf"),
        ("weight_decay", math.nan, ValueError, r"Invalid weight_decay: nan"),
        ("eps", -1.0, ValueError, r"Invalid eps: -1.0"),
    ]:
        add(f"adagrad-{option}={value!r}", three,
            lambda a, o=option, v=value: F.adagrad(a[0], a[1], a[2], step=1, **{o: v}), error, pattern)
    add("adagrad-unknown-option", three,
        lambda a: F.adagrad(a[0], a[1], a[2], step=1, initial_accumulator_value=0.1), TypeError,
        r"unexpected keyword argument 'initial_accumulator_value'")
    return cases


@pytest.mark.parametrize(("make", "call", "error", "pattern"), bad_call_cases())
def test_bad_call_changes_nothing(make, call, error, pattern):
    arrays = make()
    before = [a.copy() for a in arrays]
    with pytest.raises(error, match=pattern):
        call(arrays)
    for i, (a, b) in enumerate(zip(arrays, before)):
        assert np.array_equal(a, b), f"array {i} changed"


@pytest.mark.parametrize("call", [
    "F.adam(p, g, np.zeros(3), np.zeros(3), step=None)",
    "F.adamw(p, g, np.zeros(3), np.zeros(3), step=None)",
    "F.adagrad(p, g, np.zeros(3), step=None)",
])
def test_step_none_is_refused(call):
    """step=None must raise TypeError like any other step that is not a whole number.

    Run in a child process: if the library hands None on to its kernels the process may crash."""
    code = textwrap.dedent(f"""
        import numpy as np
        import fastgd.functional as F
        p, g = np.ones(3), np.ones(3)
        try:
            {call}
        except TypeError as error:
            assert "step must be a whole number from 1 to" in str(error), error
            assert np.array_equal(p, np.ones(3))
            print("refused")
        else:
            print("accepted")
    """)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(fastgd.__file__)),
                                                      env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, f"the call crashed the process (exit code {result.returncode}): {result.stderr[-500:]}"
    assert result.stdout.strip() == "refused", result.stdout + result.stderr


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_nadam_takes_and_returns_mu_product(dtype, rng):
    """functional.nadam: mu_product in, its new value out (a float32 product, as torch keeps it);
    the steps are the class's, bit for bit; a bad mu_product raises, naming it, and changes nothing."""
    p0 = rng.standard_normal(6).astype(dtype)
    p, m, v = p0.copy(), np.zeros(6, dtype), np.zeros(6, dtype)
    opt, (q,) = build(fastgd.NAdam, [([p0], {})], dict(lr=0.01, momentum_decay=0.1))
    mu_product = 1.0
    for step in range(1, 8):
        g = rng.standard_normal(6).astype(dtype)
        new = F.nadam(p, g, m, v, step=step, mu_product=mu_product, lr=0.01, momentum_decay=0.1)
        mu = 0.9 * (1 - 0.5 * 0.96 ** (step * 0.1))
        assert type(new) is float and new == float(np.float32(np.float32(mu_product) * np.float32(mu)))
        mu_product = new
        opt.step([g])
        assert np.array_equal(p, q) and opt.state_dict()["state"][0]["mu_product"] == mu_product
    before = [p.copy(), m.copy(), v.copy()]
    for bad in (math.nan, 1.5, -0.5, 1e39):  # (a product of momentum coefficients: in [0, 1])
        with pytest.raises(ValueError, match=r"mu_product must be a number in \[0, 1\]"):
            F.nadam(p, g, m, v, step=8, mu_product=bad)
    for bad in ("1.0", None, True):  # no number: a TypeError, as for an option
        with pytest.raises(TypeError, match=r"mu_product must be a number in \[0, 1\]"):
            F.nadam(p, g, m, v, step=8, mu_product=bad)
    assert all(np.array_equal(a, b) for a, b in zip((p, m, v), before))


def test_memory_mapped_state_arrays_are_stepped_and_returned(rng, tmp_path):
    # state arrays that are a subclass (np.memmap) were accepted by the checks and refused by the
    # compiled step: "the step found ... changed since they were checked (outcome 4) ... please report"
    torch = pytest.importorskip("torch")
    mapped = {name: np.lib.format.open_memmap(tmp_path / f"{name}.npy", mode="w+", dtype=np.float64, shape=(5,))
              for name in ("exp_avg", "exp_avg_sq", "momentum_buffer")}
    start, grads = rng.standard_normal(5), [rng.standard_normal(5) for _ in range(3)]
    param, tparam = start.copy(), torch.tensor(start, requires_grad=True)
    topt = torch.optim.Adam([tparam], lr=0.1)
    for step, grad in enumerate(grads, 1):
        fastgd.functional.adam(param, grad, mapped["exp_avg"], mapped["exp_avg_sq"], step=step, lr=0.1)
        tparam.grad = torch.tensor(grad)
        topt.step()
    np.testing.assert_allclose(param, tparam.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(mapped["exp_avg"], topt.state[tparam]["exp_avg"].numpy(), rtol=1e-12)
    buffer = mapped["momentum_buffer"]
    assert fastgd.functional.sgd(param, grads[0], buffer, lr=0.1, momentum=0.9) is buffer  # the caller's own


class _Changing(float):
    """A learning rate whose float() is 0.1 the first time and NaN after: the functions checked
    one reading and the compiled step took another."""

    def __new__(cls):
        self = super().__new__(cls, 0.1)
        self.reads = 0
        return self

    def __float__(self):
        self.reads += 1
        return 0.1 if self.reads == 1 else math.nan


def test_an_option_that_reads_anew_is_checked_as_stepped():
    param = np.ones(3)
    with pytest.raises(ValueError, match="lr: nan"):
        fastgd.functional.sgd(param, np.ones(3), lr=_Changing())
    np.testing.assert_array_equal(param, np.ones(3))  # (was NaN throughout, without an error)
