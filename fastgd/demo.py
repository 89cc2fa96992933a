"""Train linear and logistic regression with each optimizer and batch size, and plot the loss curves.

``python -m fastgd demo`` fits y = 1 + 2 x + noise by batch (the whole data
set per step), stochastic (one sample per step) and mini-batch (32 samples)
gradient descent and with each optimizer, prints the final loss, the learned
weight and intercept against the true ones and the fit time against
``fastgd.reference`` (the same estimator with a plain NumPy loop per epoch),
then fits a logistic regression on two Gaussian blobs.  With matplotlib
installed it saves the loss curves as a PNG.
"""
import argparse
import sys
import time

import numpy as np

TRUE_WEIGHT, TRUE_INTERCEPT = 2.0, 1.0

#: (label, optimizer, learning rate, batch size, epochs)
LINEAR_RUNS = [
    ("batch GD", "sgd", 0.5, None, 100),
    ("stochastic GD", "sgd", 0.01, 1, 20),
    ("mini-batch GD", "sgd", 0.1, 32, 30),
    ("momentum", "momentum", 0.02, 32, 30),
    ("nesterov", "nesterov", 0.02, 32, 30),
    ("rmsprop", "rmsprop", 0.01, 32, 30),
    ("adam", "adam", 0.05, 32, 30),
    ("adamw", "adamw", 0.05, 32, 30),
    ("adagrad", "adagrad", 0.5, 32, 30),
]


def add_arguments(parser):
    parser.add_argument("--output", default="loss_curves.png", help="PNG file for the loss curves")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the loss curves")
    parser.add_argument("--samples", type=_samples, default=2000, help=f"number of samples, at least {MIN_SAMPLES} "
                        "(default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")


#: the fewest samples --samples takes: the logistic part trains on 3/4 of them and tests on the rest,
#: each with rows of both blobs (almost surely, from 20 on)
MIN_SAMPLES = 20


def _samples(text):
    """An argparse type: a whole number of samples, at least MIN_SAMPLES."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < MIN_SAMPLES:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {MIN_SAMPLES}, got {text!r}")
    return value


def _timed_fit(model, X, y):
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def run(args):
    import fastgd
    from fastgd import reference

    rng = np.random.default_rng(args.seed)
    n = args.samples
    x = rng.uniform(-2, 2, size=(n, 1))
    y = TRUE_INTERCEPT + TRUE_WEIGHT * x[:, 0] + 0.3 * rng.standard_normal(n)
    print(f"Linear regression: y = {TRUE_INTERCEPT:g} + {TRUE_WEIGHT:g} x + noise, {n} samples\n")

    for cls in (fastgd.LinearRegression, reference.LinearRegression):  # warm up: imports, first-call costs
        cls(max_iter=1, tol=None).fit(x[:10], y[:10])
    rows, curves = [], {}
    for label, optimizer, lr, batch_size, epochs in LINEAR_RUNS:
        options = dict(optimizer=optimizer, learning_rate=lr, batch_size=batch_size, max_iter=epochs, tol=None,
                       random_state=args.seed)
        model = fastgd.LinearRegression(**options)
        fast_time = _timed_fit(model, x, y)
        ref_time = _timed_fit(reference.LinearRegression(**options), x, y)
        curves[label] = model.loss_curve_
        rows.append((label, optimizer, "full" if batch_size is None else str(batch_size), epochs,
                     model.loss_curve_[-1], float(model.coef_[0]), float(model.intercept_), fast_time, ref_time))
        print(f"  trained {label:<14} ({optimizer}, batch {rows[-1][2]}, {epochs} epochs) in {fast_time * 1e3:.1f} ms",
              file=sys.stderr, flush=True)

    header = (f"{'run':<14} {'optimizer':<9} {'batch':>5} {'epochs':>6} {'final loss':>10} {'weight':>7} "
              f"{'intercept':>9} {'fastgd ms':>9} {'numpy ms':>9} {'speedup':>7}")
    print(header)
    print("-" * len(header))
    for label, optimizer, batch, epochs, loss, weight, intercept, fast_time, ref_time in rows:
        print(f"{label:<14} {optimizer:<9} {batch:>5} {epochs:>6} {loss:>10.5f} {weight:>7.4f} {intercept:>9.4f} "
              f"{fast_time * 1e3:>9.2f} {ref_time * 1e3:>9.2f} {ref_time / fast_time:>6.1f}x")
    print(f"{'true':<14} {'':<9} {'':>5} {'':>6} {0.5 * 0.3 ** 2:>10.5f} {TRUE_WEIGHT:>7.4f} {TRUE_INTERCEPT:>9.4f}"
          "   (final loss: the noise's variance / 2)")

    # -- logistic regression on two Gaussian blobs
    centers = np.array([[-1.0, -1.0], [1.5, 1.0]])
    labels = rng.integers(0, 2, n)
    X = centers[labels] + rng.standard_normal((n, 2))
    train, test = slice(0, n * 3 // 4), slice(n * 3 // 4, None)
    print(f"\nLogistic regression: two Gaussian blobs, {n * 3 // 4} training / {n - n * 3 // 4} test samples\n")
    rows = []
    for optimizer, lr, batch_size in [("sgd", 0.5, None), ("sgd", 0.05, 1), ("adam", 0.05, 32), ("adagrad", 0.5, 32)]:
        model = fastgd.LogisticRegression(optimizer=optimizer, learning_rate=lr, batch_size=batch_size, max_iter=30,
                                          tol=None, random_state=args.seed)
        fit_time = _timed_fit(model, X[train], labels[train])
        batch = "full" if batch_size is None else str(batch_size)
        print(f"  trained logistic {optimizer} (batch {batch}) in {fit_time * 1e3:.1f} ms", file=sys.stderr, flush=True)
        rows.append(f"{optimizer:<9} {batch:>5} {model.loss_curve_[-1]:>10.5f} "
                    f"{model.score(X[train], labels[train]):>9.3f} {model.score(X[test], labels[test]):>8.3f} "
                    f"{fit_time * 1e3:>9.2f}")
    header = f"{'optimizer':<9} {'batch':>5} {'final loss':>10} {'train acc':>9} {'test acc':>8} {'fastgd ms':>9}"
    print(header)
    print("-" * len(header))
    print("\n".join(rows))

    if not args.no_plot:
        _plot(curves, args.output)
    return 0


def _plot(curves, path):
    try:
        import matplotlib
    except ImportError:
        print("\nmatplotlib is not installed: the loss-curve picture is skipped (pip install matplotlib)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for label, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=label)
    ax.set_yscale("log")
    ax.set_xscale("log")  # most runs converge in a few epochs; a log axis shows them apart
    ax.set_xlabel("epoch")
    ax.set_ylabel("training objective (mean squared error / 2)")
    ax.set_title("fastgd.LinearRegression on y = 1 + 2x + noise")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"\nloss curves saved to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastgd demo", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
