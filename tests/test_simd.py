"""The SIMD levels and threads: every level this CPU runs, and every split of a step across
threads, gives the same bits as the baseline build on one thread (the kernels keep
a * b + c two roundings, so vector width and chunking cannot change a result)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastgd
import fastgd.optim
from fastgd import _backend, _cpu

RUNNABLE = [level for level in _backend.built_levels() if level in _cpu.supported_levels()]
SETTINGS = [
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.01, momentum=0.9, dampening=0.2, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, betas=(0.3, 0.8))),
    ("AdamW", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    ("Adamax", dict(lr=0.01, weight_decay=0.1, maximize=True)),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1)),
    ("Lion", dict(lr=0.01, weight_decay=0.1, maximize=True)),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.9), weight_decay=0.1)),  # rectified from step 3 of 4
    ("NAdam", dict(lr=0.01, momentum_decay=0.1, weight_decay=0.1, decoupled_weight_decay=True)),
]


def run(name, options, dtype, engine, n_threads, steps=4, skips=False):
    """Parameters after a few steps, with the optimizers' compiled engine replaced by `engine`
    (skips: on step k, parameter k % 3 gets no gradient)."""
    rng = np.random.default_rng(7)
    # odd sizes, so that vector loops have remainders and thread slices uneven ends
    params = [rng.standard_normal(size).astype(dtype) for size in (100_003, 37, 1)]
    saved, fastgd.optim.engine = fastgd.optim.engine, engine
    opt = getattr(fastgd, name)(params, n_threads=n_threads, **options)
    try:
        for k in range(steps):
            grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
            if skips:
                grads[k % 3] = None
            opt.step(grads)
    finally:
        fastgd.optim.engine = saved
    return np.concatenate(params)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, options", SETTINGS)
def test_levels_and_threads_give_the_same_bits(name, options, dtype):
    expected = run(name, options, dtype, _backend.load("baseline"), 1)
    for level in RUNNABLE:
        for n_threads in (1, 2, 3):
            result = run(name, options, dtype, _backend.load(level), n_threads)
            assert np.array_equal(result, expected), (level, n_threads)


@pytest.mark.parametrize("name, options", SETTINGS)
def test_threads_give_the_same_bits_with_parameters_without_a_gradient(name, options):
    expected = run(name, options, np.float64, fastgd.optim.engine, 1, skips=True)
    for n_threads in (2, 3):
        assert np.array_equal(run(name, options, np.float64, fastgd.optim.engine, n_threads, skips=True), expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("task", ["linear", "binary", "multiclass"])
@pytest.mark.parametrize("level", RUNNABLE)
def test_regression_loop_gives_the_same_bits_at_every_level(level, task, dtype):
    """The epoch's own arithmetic (kernels, log loss) is the same at every level; BLAS is the
    same library whichever level runs, so the fits are bit-identical."""
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 7)).astype(dtype)
    score = X @ rng.standard_normal(7) + 0.5
    y = {"linear": score, "binary": score > 0, "multiclass": np.digitize(score, [-1, 0, 1])}[task]
    cls = fastgd.LinearRegression if task == "linear" else fastgd.LogisticRegression
    fits = {}
    for current in ("baseline", level):
        saved, fastgd.optim.engine = fastgd.optim.engine, _backend.load(current)
        try:
            model = cls(optimizer="adam", max_iter=3, tol=None, random_state=0).fit(X, y)
        finally:
            fastgd.optim.engine = saved
        fits[current] = (np.append(model.coef_, model.intercept_), model.loss_curve_)
    assert np.array_equal(fits[level][0], fits["baseline"][0])
    assert fits[level][1] == fits["baseline"][1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("level", RUNNABLE)
def test_log_loss_terms_are_the_same_at_every_level(level, dtype):
    z = np.concatenate([np.linspace(-750, 750, 100_001), [np.nan, np.inf, -np.inf]]).astype(dtype)
    got = _backend.load(level).log_loss_terms(z)
    expected = _backend.load("baseline").log_loss_terms(z)
    for a, b in zip(got, expected):
        assert np.array_equal(a, b, equal_nan=True)


def test_default_level_is_the_best_runnable_one():
    if os.environ.get("FASTGD_SIMD"):
        assert _backend.level == os.environ["FASTGD_SIMD"]
    else:
        assert _backend.level == RUNNABLE[-1]
    assert "baseline" in RUNNABLE


def import_with(level):
    code = "import fastgd; print(fastgd._backend.level)"
    env = {**os.environ, "FASTGD_SIMD": level}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_forced_level_is_used():
    result = import_with("baseline")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "baseline"


def test_unknown_level_is_refused():
    result = import_with("sse9")
    assert result.returncode != 0
    assert "FASTGD_SIMD='sse9' is not a SIMD level; expected one of baseline, avx2, avx512" in result.stderr


@pytest.mark.skipif(set(_backend.built_levels()) <= set(_cpu.supported_levels()),
                    reason="this CPU runs every level that was built")
def test_level_the_cpu_lacks_is_refused():
    missing = [level for level in _backend.built_levels() if level not in _cpu.supported_levels()][0]
    result = import_with(missing)
    assert result.returncode != 0
    assert f"this CPU does not support {missing}" in result.stderr
    assert "Illegal instruction" not in result.stderr


def test_show_config(capsys):
    fastgd.show_config()
    out = capsys.readouterr().out
    assert f"SIMD level in use: {_backend.level}" in out
    assert "SIMD levels built: " + ", ".join(_backend.built_levels()) in out
    assert "-O3" in out or "/O2" in out


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (np.int64(0), ValueError),
                                        (1.5, TypeError), (True, TypeError), ("2", TypeError), (2.0, TypeError)])
def test_bad_n_threads(bad, error):
    with pytest.raises(error, match="n_threads must be None"):
        fastgd.Adam([np.zeros(3)], n_threads=bad)


def test_n_threads_may_be_a_numpy_integer():
    # np.int64(2) was refused as "not a whole number from 1 to 64" (every_k and step take one)
    opt = fastgd.Adam([np.zeros(3)], n_threads=np.int64(2))
    assert opt.n_threads == 2 and type(opt.n_threads) is int


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_levels_give_the_same_bits_for_multi_tensor_passes_and_scaled_steps(dtype):
    """The norms, the averages and a step reading scaled gradients, at every level."""
    def passes(engine):
        rng = np.random.default_rng(3)
        grads = [rng.standard_normal(size).astype(dtype) for size in (100_003, 37, 1)]
        norms = [engine.total_norm(grads, None, p)[0] for p in (2.0, 1.0, np.inf, 0.5, 3.0)]
        averages = [g.copy() for g in grads]
        engine.lerp_all(averages, [g[::-1].copy() for g in grads], 0.3)
        engine.mean_all(averages, [g * 3 for g in grads], 7.0)
        saved, fastgd.optim.engine = fastgd.optim.engine, engine
        try:
            params = [rng.standard_normal(g.shape).astype(dtype) for g in grads]
            opt = fastgd.Adam(params, lr=0.01, weight_decay=0.1, n_threads=2)
            for _ in range(3):
                opt.step(grads, grad_scale=0.37)
        finally:
            fastgd.optim.engine = saved
        return norms, np.concatenate(averages + params)

    expected_norms, expected_arrays = passes(_backend.load("baseline"))
    for level in RUNNABLE:
        norms, arrays = passes(_backend.load(level))
        assert norms == expected_norms and np.array_equal(arrays, expected_arrays), level
