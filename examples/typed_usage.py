"""A tour of fastgd's public API, written to pass `mypy --strict` against the stubs shipped
in the wheel (.ci/run checks it, and runs it).

    python examples/typed_usage.py
"""
from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

import fastgd
from fastgd import functional, reference

FloatArray = npt.NDArray[np.float64]


def quadratic_gradient(w: FloatArray, target: FloatArray) -> FloatArray:
    """Gradient of 0.5 * ||w - target||^2."""
    return w - target


def optimizers_on_arrays() -> None:
    rng = np.random.default_rng(0)
    target = rng.standard_normal(8)
    factories: list[Callable[[list[FloatArray]], fastgd.Optimizer]] = [
        lambda p: fastgd.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        lambda p: fastgd.Adam(p, lr=0.1, betas=(0.9, 0.99), amsgrad=True),
        lambda p: fastgd.AdamW(p, lr=0.1, weight_decay=0.0),
        lambda p: fastgd.RMSprop(p, lr=0.01, centered=True, momentum=0.5),
        lambda p: fastgd.Adagrad(p, lr=0.5, lr_decay=0.01, n_threads=1),
    ]
    optimizers: list[fastgd.Optimizer] = []
    params: list[FloatArray] = []
    for make in factories:
        w = np.zeros(8)
        optimizers.append(make([w]))
        params.append(w)
    for _ in range(300):
        for opt, w in zip(optimizers, params):
            opt.step([quadratic_gradient(w, target)])
    for opt, w in zip(optimizers, params):
        error = float(np.abs(w - target).max())
        assert error < 0.05, (type(opt).__name__, error)


def parameters_groups_and_state() -> None:
    w = fastgd.Parameter(np.zeros((3, 2), dtype=np.float32))
    b = fastgd.Parameter(np.zeros(2, dtype=np.float32))
    opt = fastgd.Adam([w], lr=1e-2)
    opt.add_param_group({"params": [b], "lr": 1e-3})
    for group in opt.param_groups:
        group["lr"] = float(group["lr"]) * 0.5  # a schedule changes lr between steps
    w.grad = np.ones((3, 2), dtype=np.float32)
    b.grad = np.ones(2, dtype=np.float32)
    opt.step()
    opt.zero_grad()
    assert w.grad is None and b.grad is None
    saved: dict[str, Any] = pickle.loads(pickle.dumps(opt.state_dict()))
    again = fastgd.Adam([fastgd.Parameter(w.data.copy())], lr=1e-2)
    again.add_param_group({"params": [fastgd.Parameter(b.data.copy())], "lr": 1e-3})
    again.load_state_dict(saved)
    assert again.state_dict()["state"][0]["step"] == 1
    temperature = fastgd.Parameter(np.array(1.0))
    scalars = fastgd.SGD([temperature], lr=0.1)
    temperature.grad = np.sum(np.ones(3) * 0.5)  # a reduction's NumPy scalar: a 0-d parameter's gradient
    scalars.step()
    scalars.step([np.float64(0.5)])
    assert float(temperature.data) == 1.0 - 0.1 * 1.5 - 0.1 * 0.5


def functional_steps() -> None:
    param = np.ones(4)
    grad = np.full(4, 0.5)
    buffer = functional.sgd(param, grad, lr=0.1, momentum=0.9)
    assert buffer is not None
    functional.sgd(param, grad, buffer, lr=0.1, momentum=0.9)
    exp_avg, exp_avg_sq = np.zeros(4), np.zeros(4)
    functional.adam(param, grad, exp_avg, exp_avg_sq, step=1, lr=0.1)
    functional.adamw(param, grad, exp_avg, exp_avg_sq, step=2, lr=0.1)
    functional.rmsprop(param, grad, np.zeros(4), lr=0.01)
    functional.adagrad(param, grad, np.zeros(4), step=1, lr=0.1)


def reference_matches() -> None:
    fast_w, ref_w = np.zeros(5), np.zeros(5)
    fast = fastgd.RMSprop([fast_w], lr=0.01)
    ref = reference.RMSprop([ref_w], lr=0.01)
    grad = np.linspace(-1.0, 1.0, 5)
    for _ in range(10):
        fast.step([grad])
        ref.step([grad])
    assert np.allclose(fast_w, ref_w, rtol=1e-12, atol=0)


def estimators() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    regression = fastgd.LinearRegression(optimizer="adam", learning_rate=0.05, max_iter=50, random_state=0)
    prediction = regression.fit(X, y).predict(X)
    assert prediction.shape == (200,)
    assert regression.score(X, y) > 0.95
    regression.partial_fit(X, y)
    assert regression.get_params()["optimizer"] == "adam"
    regression.set_params(learning_rate=0.01)
    labels = (y > 0).astype(int)
    classifier = fastgd.LogisticRegression(optimizer="sgd", learning_rate=0.1, lr_schedule="cosine",
                                           max_iter=30, random_state=0)
    classifier.fit(X, labels)
    probabilities = classifier.predict_proba(X)
    scores = classifier.decision_function(X)
    assert probabilities.shape == (200, 2) and scores.shape == (200,)
    assert classifier.score(X, labels) > 0.8
    assert list(classifier.classes_) == [0, 1]
    classifier.partial_fit(X, labels, classes=[0, 1])
    assert classifier.predict(X).shape == (200,)
    textbook = reference.LinearRegression(max_iter=5, random_state=0).fit(X, y)
    coef: npt.NDArray[np.floating[Any]] = textbook.coef_
    assert coef.shape == (3,)


def sparse_estimators() -> None:
    from scipy import sparse

    rng = np.random.default_rng(2)
    dense = rng.standard_normal((200, 20)) * (rng.random((200, 20)) < 0.2)
    labels = (dense.sum(axis=1) > 0).astype(int)
    for X in (sparse.csr_matrix(dense), sparse.csr_array(dense), sparse.coo_matrix(dense)):
        classifier = fastgd.SGDClassifier(loss="log_loss", max_iter=20, tol=None, random_state=0)
        classifier.fit(X, labels).partial_fit(X, labels)
        assert classifier.decision_function(X).shape == (200,) and classifier.predict_proba(X).shape == (200, 2)
        assert classifier.score(X, labels) > 0.8
        regression = fastgd.LinearRegression(max_iter=20, random_state=0).fit(X, dense.sum(axis=1))
        assert regression.predict(X).shape == (200,)


def clipping_averaging_accumulation() -> None:
    rng = np.random.default_rng(2)
    params = [fastgd.Parameter(np.zeros(4, dtype=np.float32)), fastgd.Parameter(np.zeros(3, dtype=np.float32))]
    opt = fastgd.Adam(params, lr=1e-2)
    ema = fastgd.EMA(params, 0.9, warmup=True)
    swa = fastgd.SWA(params)
    multi = fastgd.MultiSteps(fastgd.SGD([np.zeros(2)], lr=0.1), every_k=2)
    clipped = fastgd.MultiSteps(fastgd.SGD([np.zeros(2)], lr=0.1), every_k=2, max_norm=1.0)
    for _ in range(4):
        for p in params:
            p.grad = rng.standard_normal(p.data.shape).astype(np.float32)
        norm, stepped = fastgd.clipped_step(opt, max_norm=1.0)
        assert stepped and np.isfinite(norm)
        ema.update()
        swa.update()
        stepped_too: bool = multi.step([np.ones(2)])
        mean_norm, clipped_too = clipped.step([np.ones(2)])  # with max_norm: (total norm or None, stepped)
        assert clipped_too == stepped_too and (mean_norm is None) != clipped_too
    grads: list[npt.NDArray[np.float32]] = [rng.standard_normal(5).astype(np.float32)]
    total = fastgd.clip_grad_norm_(grads, 0.5, norm_type="inf")
    fastgd.clip_grad_value_(grads, 0.1)
    scale = fastgd.clip_coef(0.5, fastgd.get_total_norm(grads))
    assert fastgd.get_total_norm([np.float64(3.0), np.full(1, 4.0)]) == 5.0  # a NumPy scalar is read too
    opt.step([np.ones(4, dtype=np.float32), None], grad_scale=float(scale))
    ema.swap()
    ema.swap()
    swa.copy_to()
    assert float(total) >= 0 and swa.n_averaged == 4 and multi.mini_step == 0


def main() -> None:
    print(f"fastgd {fastgd.__version__}")
    fastgd.show_config()
    optimizers_on_arrays()
    parameters_groups_and_state()
    functional_steps()
    reference_matches()
    estimators()
    sparse_estimators()
    clipping_averaging_accumulation()
    print("typed usage example: ok")


if __name__ == "__main__":
    main()
