"""Tests of fastgd.bench's regression benchmark: the rows it calls like for like are the
same algorithm, and its table says which rows are which; and of the demo's command line.

Oracle: scikit-learn's SGDRegressor / SGDClassifier, whose per-sample SGD without
shuffling visits the rows in the same order as fastgd's batch_size=1.
"""
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

import fastgd  # noqa: E402
from fastgd import bench  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("task", ["linear", "logistic"])
def test_batch_1_is_scikit_learns_algorithm(task, dtype):
    # Shuffling aside (the two draw different permutations), the batch-1 contenders
    # must be the same computation: the same weights after two epochs in order.
    contenders = bench._regression_contenders(task)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 7)).astype(dtype)
    y = X @ rng.standard_normal(7) + 0.5
    y = y if task == "linear" else (y > 0.5).astype(np.int64)
    models = {}
    for contender in ("fastgd", "scikit-learn"):
        model = contenders[contender, 1]().set_params(shuffle=False, max_iter=2)
        models[contender] = model.fit(X, y)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    assert models["fastgd"].coef_.dtype == models["scikit-learn"].coef_.dtype == dtype  # both fit in X's dtype
    for attribute in ("coef_", "intercept_"):  # (scikit-learn keeps a float32 model's intercept in float64)
        ours, theirs = (np.ravel(getattr(models[c], attribute)) for c in ("fastgd", "scikit-learn"))
        np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=tolerance)


def test_every_contender_runs_the_same_options():
    for task in ("linear", "logistic"):
        contenders = bench._regression_contenders(task)
        assert set(contenders) == {("fastgd", 1), ("reference", 1), ("scikit-learn", 1),
                                   ("fastgd", 32), ("reference", 32)}
        for (contender, batch_size), make in contenders.items():
            params = make().get_params()
            assert params["max_iter"] == bench.REGRESSION_EPOCHS and params["tol"] is None
            assert params["shuffle"] and params["fit_intercept"]
            if contender == "scikit-learn":
                assert params["penalty"] is None and params["learning_rate"] == "constant"
                assert params["eta0"] == bench.REGRESSION_LEARNING_RATE and not params["average"]
            else:
                assert params["optimizer"] == "sgd" and params["batch_size"] == batch_size
                assert params["alpha"] == 0 and params["lr_schedule"] == "constant"
                assert params["learning_rate"] == bench.REGRESSION_LEARNING_RATE


def test_format_regression_marks_what_is_not_like_for_like():
    rows = []
    for task in ("linear", "logistic"):
        for batch_size in bench.REGRESSION_BATCH_SIZES:
            for dtype, scale in (("float64", 1.0), ("float32", 0.5)):
                reference = 2.0 if batch_size == 1 else 0.2
                times = {"fastgd": 0.01 * scale, "scikit-learn": 0.04, "reference": reference}
                rows.append((task, dtype, batch_size, times))
    text = bench.format_regression(rows)
    lines = text.splitlines()
    table = [line.split() for line in lines[2:10]]
    assert [line[:3] for line in table[:4]] == [["linear", "1", "float64"], ["linear", "1", "float32"],
                                                ["linear", "32", "float64"], ["linear", "32", "float32"]]
    assert table[0][3:] == ["10", "ms", "40", "ms", "4.00x", "~2", "s", "200x", "1.00x"]
    assert table[3][3:] == ["5", "ms", "(40", "ms)", "(8.00x)", "200", "ms", "40x", "0.50x"]
    assert "like for like" in text and "context only" in text
    assert f"first {bench.REFERENCE_ROWS_AT_BATCH_1:,} rows" in text



@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_foreach_lion_is_lion(dtype, maximize):
    """The torch-foreach contender of Lion (torch.optim has none) steps as fastgd.Lion does."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    options = dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1, maximize=maximize)
    params = [rng.standard_normal(n).astype(dtype) for n in (100, 7)]
    starts = [p.copy() for p in params]
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    step = bench._torch_foreach_lion(torch, tensors, **options)
    opt = fastgd.Lion(params, **options)
    for _ in range(6):
        grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
        for tensor, grad in zip(tensors, grads):
            tensor.grad = torch.from_numpy(grad.copy())
        step()
        opt.step(grads)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for p, t in zip(params, tensors):
        np.testing.assert_allclose(t.detach().numpy(), p, rtol=tolerance, atol=tolerance)
    assert all(not np.array_equal(p, start) for p, start in zip(params, starts))  # they moved


def test_format_clip_reports_costs_and_speedups():
    rows = [("float32", 1000, {"fastgd": 1e-6, "fastgd-clip": 2.5e-6, "torch-fused": 60e-6, "torch-fused-clip": 150e-6}),
            ("float64", 10_000_000, {"fastgd": 0.01, "fastgd-clip": 0.0125, "torch-fused": None,
                                     "torch-fused-clip": None})]
    lines = bench.format_clip(rows).splitlines()
    assert lines[2].split() == ["float32", "1e3", "in", "10", "1", "us", "2.5", "us", "2.50x", "60", "us", "150", "us",
                                "2.50x", "60.00x"]
    assert lines[3].split() == ["float64", "1e7", "in", "10", "10", "ms", "12.5", "ms", "1.25x", "-", "-", "-", "-"]


def test_every_clip_contender_runs():
    for contender in bench.CLIP_CONTENDERS:
        if contender.startswith("torch") and not bench.torch_available():
            continue
        bench.make_clip_step(contender, "float32", 1003)()


def test_format_sparse_compares_like_with_like():
    rows = [("scikit-learn hinge", 1, 0.12, 0.66), ("fastgd hinge", 1, 0.04, 0.66),
            ("scikit-learn log_loss", 1, 0.14, 0.66), ("fastgd log_loss", 1, 0.07, 0.65),
            ("fastgd log_loss, Adam, lazy", 32, 0.06, 0.66)]
    lines = bench.format_sparse(rows).splitlines()
    assert lines[3].split()[-1] == "3.00x"  # hinge against scikit-learn's hinge
    assert lines[5].split()[-1] == "2.00x"  # log_loss against scikit-learn's log_loss
    assert lines[6].split()[-1] == "(2.00x)"  # Adam against the faster scikit-learn row, as context


def test_sparse_data_is_text_like():
    X, y, X_test, y_test = bench.sparse_data(rows=500, features=2**10, nonzeros=10)
    assert X.format == "csr" and X.shape == (500, 2**10) and X_test.shape[0] == bench.SPARSE_TEST_ROWS
    assert X.indices.dtype == np.int32 and (X.data > 0).all() and X.getnnz(axis=1).max() <= 10
    assert 0.3 < y.mean() < 0.7


def test_demo_prints_its_tables_and_refuses_too_few_samples(tmp_path):
    """python -m fastgd demo: the tables on stdout, each row after its header (the progress lines
    go to stderr, before); --samples below the least is an argparse error, not a traceback."""
    run = lambda *args: subprocess.run([sys.executable, "-m", "fastgd", "demo", "--no-plot", *args],  # noqa: E731
                                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    done = run("--samples", "20")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    logistic = lines.index(next(line for line in lines if line.startswith("optimizer batch")))
    assert [line.split()[0] for line in lines[logistic + 2:logistic + 6]] == ["sgd", "sgd", "adam", "adagrad"]
    assert "trained logistic adam" in done.stderr
    for bad in ("0", "19", "many"):
        refused = run("--samples", bad)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert f"argument --samples: expected a whole number >= 20, got '{bad}'" in refused.stderr


@pytest.mark.parametrize("options, message", [
    (["--sparse", "--repeat", "1", "--threads", "2"], "--sparse does not read --threads"),
    (["--sparse", "--sizes", "1e3", "--dtypes", "float64"], "--sparse does not read --dtypes, --sizes"),
    (["--clip", "--optimizers", "sgd"], "--clip does not read --optimizers"),
    (["--sparse", "--regression"], "not allowed with argument"),
    (["--clip", "--sparse"], "not allowed with argument"),
])
def test_options_a_mode_does_not_read_are_refused(options, message, capsys):
    # they were taken and ignored, exit 0: --sparse --repeat 1 --threads 2 ran three rounds on
    # one thread, --clip --sparse timed clipping alone, --regression vanished beside either
    from fastgd.__main__ import main
    with pytest.raises(SystemExit) as exited:
        main(["bench", *options])
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_run_refuses_an_unread_option_without_a_parser():
    # arguments built by code, not parsed by add_arguments' parser (which exits): a ValueError
    import argparse
    args = argparse.Namespace(sparse=True, clip=False, regression=False, optimizers=None, dtypes=None, sizes=[1000],
                              contenders=None, threads=None, repeat=None)
    with pytest.raises(ValueError, match="--sparse does not read --sizes"):
        bench.run(args)
