"""A small MLP trained in NumPy with fastgd, next to the same model in torch.

scikit-learn's digits (8x8 images, 10 classes), standardized; a 64-128-10
MLP with ReLU and softmax cross-entropy, its forward and backward passes
written in NumPy (float32); mini-batches of 64; Adam with its learning rate
(and beta1) from OneCycleLR, the gradients clipped to the total norm 1 within
the step (fastgd.clipped_step), and an exponential moving average of the
weights (decay 0.99), evaluated at the end by swapping it in.

The same model is trained in torch from the same initial weights on the same
batches (fused Adam, OneCycleLR, clip_grad_norm_, AveragedModel with
get_ema_multi_avg_fn), and a table compares the test accuracies and the time
spent in the optimizer part of each step (clipping, step, scheduler, EMA
update).  Without torch, only the fastgd half runs.

    python examples/mlp_digits.py [--epochs 30]

Exits with an error if fastgd's model does not learn (EMA test accuracy at
most 0.9) or, with torch, if its accuracies are not within 0.03 of torch's or
its final weights or their EMA not within 1e-3 of torch's.
"""
import argparse
import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

import fastgd
from fastgd import lr_scheduler

try:
    import torch
except ImportError:
    torch = None

BATCH_SIZE = 64
HIDDEN = 128
MAX_LR = 1e-2
MAX_NORM = 1.0
EMA_DECAY = 0.99
MIN_ACCURACY = 0.9
MAX_GAP = 0.03  # between fastgd's and torch's test accuracies
# between fastgd's and torch's final weights and EMAs (of order 0.1): the two trainings take the same path,
# apart from the rounding of their forward and backward passes (about 1e-6 apart after 660 steps)
MAX_WEIGHT_GAP = 1e-3


def load_data(seed):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1.0  # the pixels that are blank in every training image
    return ((X_train - mean) / std).astype(np.float32), y_train, ((X_test - mean) / std).astype(np.float32), y_test


def initial_weights(n_in, n_hidden, n_out, rng):
    """torch.nn.Linear's default initialization, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), in its
    layout: weight (out, in), bias (out,)."""
    weights = []
    for fan_in, fan_out in ((n_in, n_hidden), (n_hidden, n_out)):
        bound = 1 / np.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        weights.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    return weights


# ---- fastgd: the model in NumPy ----

def forward(params, X):
    W1, b1, W2, b2 = (p.data for p in params)
    z1 = X @ W1.T + b1
    h = np.maximum(z1, 0)
    return z1, h, h @ W2.T + b2


def backward(params, X, y):
    """Set each parameter's .grad to the gradient of the mean softmax cross-entropy over the batch."""
    W1, b1, W2, b2 = params
    z1, h, logits = forward(params, X)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    dlogits = p / np.float32(len(y))
    W2.grad = dlogits.T @ h
    b2.grad = dlogits.sum(axis=0)
    dz1 = (dlogits @ W2.data) * (z1 > 0)
    W1.grad = dz1.T @ X
    b1.grad = dz1.sum(axis=0)


def accuracy(params, X, y):
    return float(np.mean(forward(params, X)[2].argmax(axis=1) == y))


def train_fastgd(weights, batches, data):
    X_train, y_train, X_test, y_test = data
    params = [fastgd.Parameter(w.copy()) for w in weights]
    opt = fastgd.Adam(params, lr=MAX_LR)
    scheduler = lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=len(batches))
    ema = fastgd.EMA(params, decay=EMA_DECAY)
    clipped = 0
    in_optimizer = 0.0
    start = time.perf_counter()
    for rows in batches:
        backward(params, X_train[rows], y_train[rows])
        t = time.perf_counter()
        norm, stepped = fastgd.clipped_step(opt, MAX_NORM)
        scheduler.step()
        ema.update()
        in_optimizer += time.perf_counter() - t
        if not stepped:
            sys.exit(f"fastgd: the gradient norm is {norm}; the step was skipped")
        clipped += bool(norm > MAX_NORM)
    training = time.perf_counter() - start
    raw = accuracy(params, X_test, y_test)
    ema.swap()  # the averages in the parameters ...
    averaged = accuracy(params, X_test, y_test)
    ema.swap()  # ... and back
    if accuracy(params, X_test, y_test) != raw:
        sys.exit("fastgd: swapping the EMA in and out did not give the weights back")
    return dict(raw=raw, ema=averaged, clipped=clipped, optimizer=in_optimizer, training=training,
                weights=[p.data for p in params], averages=ema.averages)


# ---- torch: the same model ----

def train_torch(weights, batches, data):
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    X_train, y_train, X_test, y_test = (torch.from_numpy(np.asarray(a)) for a in data)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(weights[0].shape[1], weights[0].shape[0]), torch.nn.ReLU(),
                                torch.nn.Linear(weights[2].shape[1], weights[2].shape[0]))
    with torch.no_grad():
        for param, w in zip(model.parameters(), weights):
            param.copy_(torch.from_numpy(w))
    opt = torch.optim.Adam(model.parameters(), lr=MAX_LR, fused=True)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=len(batches))
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(EMA_DECAY))
    clipped = 0
    in_optimizer = 0.0
    start = time.perf_counter()
    for rows in batches:
        rows = torch.from_numpy(rows)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X_train[rows]), y_train[rows]).backward()
        t = time.perf_counter()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
        opt.step()
        scheduler.step()
        ema.update_parameters(model)
        in_optimizer += time.perf_counter() - t
        clipped += bool(norm > MAX_NORM)
    training = time.perf_counter() - start
    with torch.no_grad():
        raw = float((model(X_test).argmax(dim=1) == y_test).double().mean())
        averaged = float((ema(X_test).argmax(dim=1) == y_test).double().mean())
    return dict(raw=raw, ema=averaged, clipped=clipped, optimizer=in_optimizer, training=training,
                weights=[p.detach().numpy() for p in model.parameters()],
                averages=[p.detach().numpy() for p in ema.module.parameters()])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training set (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the batches")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")

    data = load_data(args.seed)
    rng = np.random.default_rng(args.seed)
    weights = initial_weights(data[0].shape[1], HIDDEN, 10, rng)
    n = len(data[1])
    batches = [order[i:i + BATCH_SIZE] for order in (rng.permutation(n) for _ in range(args.epochs))
               for i in range(0, n, BATCH_SIZE)]
    print(f"digits: {n} training and {len(data[3])} test images; a 64-{HIDDEN}-10 MLP, {args.epochs} epochs "
          f"of {len(batches) // args.epochs} batches of {BATCH_SIZE} ({len(batches)} steps), float32, one thread")
    print(f"Adam with OneCycleLR (max_lr {MAX_LR}), gradients clipped to norm {MAX_NORM}, EMA of the weights "
          f"(decay {EMA_DECAY}); fastgd {fastgd.__version__}"
          + (f", torch {torch.__version__}" if torch is not None else ""))

    with threadpool_limits(limits=1):  # NumPy's BLAS on one thread, as torch is
        results = {"fastgd": train_fastgd(weights, batches, data)}
        if torch is not None:
            results["torch"] = train_torch(weights, batches, data)

    row = "{:<8}{:>10}{:>10}{:>10}{:>12}{:>11}{:>11}{:>10}"
    print()
    print("time in the optimizer: clipping, step, scheduler and EMA update (time.perf_counter around them)")
    print(row.format("", "test acc", "with EMA", "clipped", "optimizer", "a step", "vs fastgd", "training"))
    fast = results["fastgd"]
    for name, r in results.items():
        print(row.format(name, f"{r['raw']:.4f}", f"{r['ema']:.4f}", f"{r['clipped']}/{len(batches)}",
                         f"{r['optimizer'] * 1e3:.1f} ms", f"{r['optimizer'] / len(batches) * 1e6:.1f} us",
                         f"{r['optimizer'] / fast['optimizer']:.1f}x", f"{r['training']:.2f} s"))

    failures = []
    if fast["ema"] <= MIN_ACCURACY:
        failures.append(f"fastgd's EMA test accuracy is {fast['ema']:.4f}, not above {MIN_ACCURACY}")
    print()
    if torch is None:
        print("torch is not installed: fastgd's half alone (pip install torch for the comparison)")
    else:
        theirs = results["torch"]
        for what, key in (("final weights", "weights"), ("EMA weights", "averages")):
            gap = max(np.max(np.abs(a - b)) for a, b in zip(fast[key], theirs[key]))
            print(f"largest difference between fastgd's and torch's {what}: {gap:.2e}")
            if not gap <= MAX_WEIGHT_GAP:
                failures.append(f"fastgd's {what} are {gap:.2e} from torch's, more than {MAX_WEIGHT_GAP}")
        for kind in ("raw", "ema"):
            if abs(fast[kind] - theirs[kind]) > MAX_GAP:
                failures.append(f"fastgd's {kind} test accuracy {fast[kind]:.4f} is not within {MAX_GAP} "
                                f"of torch's {theirs[kind]:.4f}")
    if failures:
        sys.exit("FAILED: " + "; ".join(failures))


if __name__ == "__main__":
    main()
