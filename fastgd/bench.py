"""Time one optimizer step of fastgd against plain NumPy, torch.optim and a memory-bandwidth bound.

``python -m fastgd bench`` prints, per (optimizer, dtype, n), the median time
per step of each contender and how many times faster fastgd is than each.
The contenders:

  fastgd         fastgd's optimizer (compiled, fused kernels)
  reference      fastgd.reference: the same optimizer written in plain NumPy
  torch-fused    torch.optim with fused=True (where torch has it)
  torch-foreach  torch.optim with foreach=True (for Lion, which torch.optim lacks,
                 the same written with torch's _foreach operations)
  torch-forloop  torch.optim with foreach=False (one tensor at a time)
  roofline       an in-place np.add moving as many bytes as the step must
                 read and write: memory speed's yardstick (np.add reads two
                 streams and writes one; a step of more streams can beat it)

``--regression`` adds 5-epoch fits of linear and logistic regression by plain
SGD at batch sizes 1 and 32: batch 1 against scikit-learn's SGDRegressor and
SGDClassifier, the same per-sample algorithm with the same settings (like for
like), and batch 32 against the NumPy loop at batch 32.

``--clip`` times gradient clipping with an Adam step instead:
fastgd's step alone and ``fastgd.clipped_step`` (norm pass, then the step
reading the gradients times the clipping factor), against torch's fused Adam
step alone and ``clip_grad_norm_`` followed by it, over 10 parameters.

``--sparse`` times scikit-learn's SGDClassifier against fastgd's instead, on a
text-like CSR problem.

The pytest benchmarks in the source tree's ``benchmarks/`` build their
contenders with this module's functions, so both time the same code.
"""
import argparse
import gc
import importlib.util
import inspect
import math
import statistics
import sys
import time

import numpy as np

import fastgd
from fastgd import reference

#: options other than the defaults that an optimizer is timed with
BENCH_OPTIONS = {"SGD": {"momentum": 0.9}}


def _traffic(cls, options):
    """Arrays a step reads or writes, per element: the parameter (read and written), the
    gradient (read), and each state array the options need (read and written: those a step
    of one element keeps)."""
    optimizer = cls([np.zeros(1)], **options)
    optimizer.step([np.ones(1)])
    kept = optimizer.state_dict()["state"].get(0, {}).values()
    return 3 + 2 * sum(isinstance(value, np.ndarray) for value in kept)


#: name -> (class name, options, arrays a step reads and writes per element), for every
#: optimizer of fastgd.optim
OPTIMIZERS = {
    name.lower(): (name, BENCH_OPTIONS.get(name, {}), _traffic(cls, BENCH_OPTIONS.get(name, {})))
    for name in fastgd.optim.__all__
    if isinstance(cls := getattr(fastgd.optim, name), type) and getattr(cls, "algorithm", None) is not None
}
DTYPES = ("float32", "float64")
CONTENDERS = ("fastgd", "reference", "torch-fused", "torch-foreach", "torch-forloop", "roofline")
TORCH_MODES = {"torch-fused": {"fused": True}, "torch-foreach": {"foreach": True},
               "torch-forloop": {"foreach": False}}

DEFAULT_SIZES = (1_000, 100_000, 1_000_000, 10_000_000)
DEFAULT_DTYPES = ("float32",)
DEFAULT_REPEAT = 5
#: rounds of the sparse benchmark's fits (the fastest of each contender's is shown)
SPARSE_REPEAT = 3
TARGET_SECONDS = 0.02  # length of one timed batch of steps


class Unavailable(Exception):
    """A contender cannot run a case: torch is missing, or has no such optimizer (Lion) or variant."""


def torch_available():
    """Whether torch can be imported (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def settle_allocator():
    """Put glibc's malloc in the state a long-running program reaches, once per process.

    glibc maps fresh pages from the kernel for every large block (a page fault
    per 4 KiB) until a block of that size has been freed; from then on it keeps
    such blocks for reuse, up to 32 MiB.  Steps that create temporaries (the
    NumPy reference, torch's foreach and for-loop) run 3-5x slower at n = 1e5
    to 1e6 before that, so their times would depend on what ran earlier in the
    process.  Freeing one 31 MiB block settles it; other allocators ignore this.
    """
    block = np.empty(31 << 20, dtype=np.uint8)
    del block


def _arrays(sizes, dtype, seed):
    """One array per size, filled with a repeating block of normal random numbers.

    Repeating a small block keeps setup cheap for large sizes; element-wise
    kernels take the same time whatever the values, as long as no denormals appear.
    """
    block = np.random.default_rng(seed).standard_normal(1 << 16, dtype=dtype)
    return [np.resize(block[:n], n) for n in sizes]


def make_step(contender, optimizer, dtype, sizes, threads=1):
    """A function that runs one step of `optimizer` over one parameter per entry of `sizes`.

    Each call builds its own arrays, so contenders never share memory.
    `threads` is passed to fastgd's optimizer as n_threads when it takes that
    option (torch's threads are process-wide: the caller sets them).  Raises
    Unavailable when the contender cannot run this case.
    """
    class_name, options, traffic = OPTIMIZERS[optimizer]
    dtype = np.dtype(dtype)
    if contender == "roofline":
        a, b = _arrays([round(sum(sizes) * traffic / 3)] * 2, dtype, seed=0)
        return lambda: np.add(a, b, out=a)
    params, grads = _arrays(sizes, dtype, seed=1), _arrays(sizes, dtype, seed=2)
    if contender in ("fastgd", "reference"):
        cls = getattr(fastgd if contender == "fastgd" else reference, class_name)
        if contender == "fastgd" and "n_threads" in inspect.signature(cls).parameters:
            options = {**options, "n_threads": threads}  # not "by size": compare like with like
        opt = cls(params, **options)
        return lambda: opt.step(grads)
    if contender not in TORCH_MODES:
        raise ValueError(f"unknown contender {contender!r}; expected one of {', '.join(CONTENDERS)}")
    if not torch_available():
        raise Unavailable("torch is not installed")
    import torch

    tensors = []
    for param, grad in zip(params, grads):
        tensor = torch.from_numpy(param).requires_grad_()
        tensor.grad = torch.from_numpy(grad)  # set once: no allocation per step
        tensors.append(tensor)
    if not hasattr(torch.optim, class_name):
        if class_name == "Lion" and contender == "torch-foreach":
            return _torch_foreach_lion(torch, tensors, **{**fastgd.Lion([np.zeros(1)]).defaults, **options})
        raise Unavailable(f"torch.optim has no {class_name}")
    try:
        opt = getattr(torch.optim, class_name)(tensors, **options, **TORCH_MODES[contender])
    except (TypeError, ValueError, RuntimeError) as error:
        if not any(mode in str(error) for mode in TORCH_MODES[contender]):  # (the options' error: raised)
            raise
        raise Unavailable(f"torch.optim.{class_name} has no {contender} variant ({error})") from None
    return opt.step


def _torch_foreach_lion(torch, tensors, lr, betas, weight_decay, maximize):
    """A step of Lion (not in torch.optim) as torch.optim's foreach implementations are written:
    one torch._foreach_ call per operation over all tensors, in place where it can be, the
    moving averages by _foreach_lerp as torch's Adam, NAdam, RAdam and Adamax take theirs (the
    contender of fastgd.Lion for torch-foreach; tests/test_bench.py checks it is Lion)."""
    beta1, beta2 = betas
    exp_avgs = [torch.zeros_like(tensor) for tensor in tensors]

    @torch.no_grad()
    def step():
        grads = [tensor.grad for tensor in tensors]
        if maximize:
            grads = torch._foreach_neg(grads)
        directions = torch._foreach_lerp(exp_avgs, grads, 1 - beta1)
        torch._foreach_sign_(directions)
        if weight_decay != 0:
            torch._foreach_mul_(tensors, 1 - lr * weight_decay)
        torch._foreach_add_(tensors, directions, alpha=-lr)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta2)

    return step


def time_steps(step, count):
    """Seconds per call of `step`, over `count` calls in a row (garbage collector off)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(count):
            step()
        return (time.perf_counter() - start) / count
    finally:
        if gc_was_enabled:
            gc.enable()


def calibrate(step, target=TARGET_SECONDS):
    """Warm `step` up, then return how many calls in a row take about `target` seconds."""
    step()  # the first step allocates the optimizer state
    count = 1
    while True:
        per_step = time_steps(step, count)
        if per_step * count >= target / 10:
            return max(1, round(target / per_step))
        count *= 10


def measure(steps, repeat=DEFAULT_REPEAT, target=TARGET_SECONDS):
    """Median seconds per step of each function in the dict `steps`.

    Contenders take turns, one batch each per round, so that a burst of load
    on a shared machine slows all of them rather than one.
    """
    counts = {name: calibrate(step, target) for name, step in steps.items()}
    samples = {name: [] for name in steps}
    for _ in range(repeat):
        for name, step in steps.items():
            samples[name].append(time_steps(step, counts[name]))
    return {name: statistics.median(times) for name, times in samples.items()}


def format_time(seconds):
    """A duration with three significant digits and a unit: '5.81 us', '1.20 ms'."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_size(n):
    """1000 -> '1e3', 1000000 -> '1e6'; other numbers as they are."""
    text = f"{n:.0e}".replace("e+0", "e").replace("e+", "e")
    return text if float(text) == n and n >= 1000 else str(n)


def run_grid(optimizers, dtypes, sizes, contenders, repeat=DEFAULT_REPEAT, threads=1, progress=sys.stderr):
    """Measure every case; returns rows of (optimizer, dtype, n, {contender: seconds or None})."""
    cases = [(o, d, n) for o in optimizers for d in dtypes for n in sizes]
    rows = []
    for index, (optimizer, dtype, n) in enumerate(cases, 1):
        print(f"[{index}/{len(cases)}] {optimizer} {dtype} n={format_size(n)}", file=progress, flush=True)
        steps = {}
        for contender in contenders:
            try:
                steps[contender] = make_step(contender, optimizer, dtype, [n], threads)
            except Unavailable:
                pass
        times = measure(steps, repeat)
        rows.append((optimizer, dtype, n, {c: times.get(c) for c in contenders}))
        del steps, times  # free this case's arrays before the next case allocates
    return rows


def format_table(rows, contenders):
    """The results as text: one line per case, each contender's time and fastgd's speedup over it."""
    others = [c for c in contenders if c != "fastgd"]
    header = ["optimizer", "dtype", "n", "fastgd"]
    for contender in others:
        header += [contender, "speedup"]
    lines = [header]
    for optimizer, dtype, n, times in rows:
        line = [optimizer, dtype, format_size(n), format_time(times["fastgd"])]
        for contender in others:
            seconds = times[contender]
            if seconds is None:
                line += ["-", "-"]
            else:
                line += [format_time(seconds), f"{seconds / times['fastgd']:.2f}x"]
        lines.append(line)
    return "\n".join(_columns(lines, 3))


def _columns(lines, left):
    """Rows of cells as text: columns as wide as their widest cell, the columns `left` (a
    collection of indices, or a count of the first ones) aligned left and the others right,
    a rule under the header row; a list of lines."""
    left = range(left) if isinstance(left, int) else left
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(cell.ljust(w) if i in left else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
            for line in lines]
    text.insert(1, "-" * len(text[0]))
    return text


# -- clipping and a step ----------------------------------------------------------

#: what --clip times: a step of Adam alone, and gradients clipped to a total norm then a step
CLIP_CONTENDERS = ("fastgd", "fastgd-clip", "torch-fused", "torch-fused-clip")
CLIP_SIZES = (1_000, 100_000, 10_000_000)
CLIP_PARAMETERS = 10   # the elements of a case are split over this many parameters
CLIP_MAX_NORM = 1.0    # below the gradients' norm: fastgd's every step clips (torch's clips them in place
                       # once, then scales them by about 1 at every step: the same work)


def make_clip_step(contender, dtype, n, threads=1):
    """A function that runs one Adam step over CLIP_PARAMETERS parameters of n elements in all,
    with its gradients clipped to the total norm CLIP_MAX_NORM first for the "-clip" contenders.
    fastgd clips with clipped_step (the gradients read twice, never written); torch with
    clip_grad_norm_ (read twice, written once) before its fused step.  Raises Unavailable
    without torch."""
    sizes = [n // CLIP_PARAMETERS + (i < n % CLIP_PARAMETERS) for i in range(CLIP_PARAMETERS)]
    optimizer = "adam"
    if contender in ("fastgd", "torch-fused"):
        return make_step(contender, optimizer, dtype, sizes, threads)
    if contender == "fastgd-clip":
        params, grads = _arrays(sizes, np.dtype(dtype), seed=1), _arrays(sizes, np.dtype(dtype), seed=2)
        opt = fastgd.Adam(params, n_threads=threads)
        return lambda: fastgd.clipped_step(opt, CLIP_MAX_NORM, grads)
    if contender != "torch-fused-clip":
        raise ValueError(f"unknown contender {contender!r}; expected one of {', '.join(CLIP_CONTENDERS)}")
    step = make_step("torch-fused", optimizer, dtype, sizes, threads)
    import torch

    tensors = step.__self__.param_groups[0]["params"]
    clip = torch.nn.utils.clip_grad_norm_

    def clipped():
        clip(tensors, CLIP_MAX_NORM)
        step()

    return clipped


#: the passes over gradients or parameters around a step, timed against torch's (pytest-benchmark only)
PASSES = ("clip_grad_norm_", "clip_grad_value_", "ema")


def make_pass(contender, what, dtype, n):
    """A function that runs one pass of `what` over CLIP_PARAMETERS arrays of n elements in all,
    in place, for contender "fastgd" or "torch": clip_grad_norm_ (the norm, then every gradient
    scaled), clip_grad_value_ (every gradient clamped), or "ema" (an EMA update of averages from
    parameters: fastgd.EMA's update against torch._foreach_lerp_, what torch's AveragedModel
    with get_ema_multi_avg_fn runs).  The bounds are far above the values, so each call changes
    nothing and repeats alike (both sides still scale by 1 and clamp every element).  Raises
    Unavailable without torch."""
    if what not in PASSES:
        raise ValueError(f"unknown pass {what!r}; expected one of {', '.join(PASSES)}")
    sizes = [n // CLIP_PARAMETERS + (i < n % CLIP_PARAMETERS) for i in range(CLIP_PARAMETERS)]
    arrays, others = _arrays(sizes, np.dtype(dtype), seed=1), _arrays(sizes, np.dtype(dtype), seed=2)
    bound = 1e30
    if contender == "fastgd":
        if what == "ema":
            ema = fastgd.EMA(others, decay=0.999)
            ema.update()  # (the first copies)
            return ema.update
        clip = fastgd.clip_grad_norm_ if what == "clip_grad_norm_" else fastgd.clip_grad_value_
        return lambda: clip(arrays, bound)
    if contender != "torch":
        raise ValueError(f"unknown contender {contender!r}; expected fastgd or torch")
    if not torch_available():
        raise Unavailable("torch is not installed")
    import torch

    tensors, sources = [torch.from_numpy(a) for a in arrays], [torch.from_numpy(a) for a in others]
    if what == "ema":
        return lambda: torch._foreach_lerp_(tensors, sources, 1 - 0.999)
    params = [torch.nn.Parameter(torch.empty_like(t)) for t in tensors]
    for param, grad in zip(params, tensors):
        param.grad = grad
    clip = torch.nn.utils.clip_grad_norm_ if what == "clip_grad_norm_" else torch.nn.utils.clip_grad_value_
    return lambda: clip(params, bound)


def run_clip(dtypes, sizes, repeat=DEFAULT_REPEAT, threads=1, progress=sys.stderr):
    """Rows of (dtype, n, {contender: seconds or None}), the contenders measured side by side."""
    contenders = [c for c in CLIP_CONTENDERS if torch_available() or not c.startswith("torch")]
    rows = []
    for dtype in dtypes:
        for n in sizes:
            print(f"[clip] {dtype} n={format_size(n)}", file=progress, flush=True)
            steps = {c: make_clip_step(c, dtype, n, threads) for c in contenders}
            times = measure(steps, repeat)
            rows.append((dtype, n, {c: times.get(c) for c in CLIP_CONTENDERS}))
            del steps, times
    return rows


def format_clip(rows):
    """The --clip table: each contender's time, what clipping adds to each step, and fastgd's
    speedup over torch with clipping."""
    header = ["dtype", "n", "fastgd step", "fastgd clip+step", "clip cost", "torch step", "torch clip+step",
              "clip cost", "speedup"]
    lines = [header]
    for dtype, n, times in rows:
        line = [dtype, f"{format_size(n)} in {CLIP_PARAMETERS}", format_time(times["fastgd"]),
                format_time(times["fastgd-clip"]), f"{times['fastgd-clip'] / times['fastgd']:.2f}x"]
        if times["torch-fused"] is None:
            line += ["-", "-", "-", "-"]
        else:
            line += [format_time(times["torch-fused"]), format_time(times["torch-fused-clip"]),
                     f"{times['torch-fused-clip'] / times['torch-fused']:.2f}x",
                     f"{times['torch-fused-clip'] / times['fastgd-clip']:.2f}x"]
        lines.append(line)
    return "\n".join(_columns(lines, 2))


# -- the regression loop ---------------------------------------------------------

REGRESSION_SHAPE = (100_000, 100)
REGRESSION_EPOCHS = 5
REGRESSION_LEARNING_RATE = 1e-3
#: batch 1 is per-sample SGD, scikit-learn's algorithm; 32 is mini-batch SGD, fastgd's default
REGRESSION_BATCH_SIZES = (1, 32)
#: rows the NumPy loop is fitted on at batch size 1: its step costs about 35 us of NumPy
#: calls, so a 5-epoch fit of all 100,000 rows would take about 20 s
REFERENCE_ROWS_AT_BATCH_1 = 10_000


def _regression_contenders(task):
    """(contender, batch size) -> a function returning an unfitted model of `task` ('linear' or 'logistic').

    Every model runs plain SGD for REGRESSION_EPOCHS epochs (tol=None: no convergence test)
    at a constant learning rate, without a penalty, with an intercept, on rows shuffled
    every epoch.  scikit-learn's SGDRegressor and SGDClassifier(loss="log_loss") are
    per-sample SGD with the same loss (squared error / 2, log loss) and these options,
    so they are listed at batch size 1 only: there they are fastgd's algorithm (without
    shuffling, both give the same weights to rounding; tests/test_bench.py checks it).
    At batch size 32 the like-for-like contender is the NumPy reference loop.
    """
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    name = "LinearRegression" if task == "linear" else "LogisticRegression"
    contenders = {}
    for batch_size in REGRESSION_BATCH_SIZES:
        options = dict(optimizer="sgd", batch_size=batch_size, max_iter=REGRESSION_EPOCHS, tol=None,
                       learning_rate=REGRESSION_LEARNING_RATE, alpha=0.0, fit_intercept=True, shuffle=True,
                       random_state=0)
        for contender, module in (("fastgd", fastgd), ("reference", reference)):
            contenders[contender, batch_size] = lambda cls=getattr(module, name), options=options: cls(**options)
    sk = dict(penalty=None, learning_rate="constant", eta0=REGRESSION_LEARNING_RATE, fit_intercept=True,
              shuffle=True, tol=None, max_iter=REGRESSION_EPOCHS, average=False, random_state=0)
    contenders["scikit-learn", 1] = (lambda: SGDRegressor(loss="squared_error", **sk)) if task == "linear" else \
        (lambda: SGDClassifier(loss="log_loss", **sk))
    return contenders


def _regression_rows(contender, batch_size):
    """How many of the data's rows `contender` is fitted on at `batch_size` in run_regression."""
    if contender == "reference" and batch_size == 1:
        return REFERENCE_ROWS_AT_BATCH_1
    return REGRESSION_SHAPE[0]


def _regression_data():
    """X (float64, REGRESSION_SHAPE) and the targets of each task: a noisy linear function, and its sign."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal(REGRESSION_SHAPE)
    y = X @ rng.standard_normal(REGRESSION_SHAPE[1]) + 0.1 * rng.standard_normal(REGRESSION_SHAPE[0])
    return X, {"linear": y, "logistic": (y > 0).astype(np.int64)}


def run_regression(repeat=5, progress=sys.stderr):
    """Time 5-epoch fits of plain SGD on 100,000 x 100 data, one BLAS thread, at batch sizes 1 and 32.

    Per model and dtype, every contender of _regression_contenders fits in turn, one fit
    each per round, and keeps its fastest fit, so that a burst of load on a shared
    machine slows all of them rather than one.  The NumPy loop, which takes seconds,
    fits once; at batch size 1 on the first REFERENCE_ROWS_AT_BATCH_1 rows only, its
    time scaled to all rows (its per-step cost does not grow with the rows; with fewer
    rows more of X stays in cache, which if anything favours it).  scikit-learn, which
    has no batch size, fits once per round and its time is reported at both batch sizes.
    Returns rows of (task, dtype, batch size, {contender: seconds per epoch over all rows}).
    """
    from threadpoolctl import threadpool_limits

    X64, targets = _regression_data()
    rows = []
    with threadpool_limits(1):
        for task in ("linear", "logistic"):
            contenders = _regression_contenders(task)
            for dtype in ("float64", "float32"):
                print(f"[regression] {task} {dtype}", file=progress, flush=True)
                X = X64.astype(dtype)
                fits = {key: [] for key in contenders}
                for round_ in range(repeat):
                    for (contender, batch_size), make in contenders.items():
                        if round_ == 0 or contender != "reference":
                            n = _regression_rows(contender, batch_size)
                            seconds = _time_fit(make, X[:n], targets[task][:n])
                            fits[contender, batch_size].append(seconds * X.shape[0] / n)
                best = {key: min(seconds) / REGRESSION_EPOCHS for key, seconds in fits.items()}
                for batch_size in REGRESSION_BATCH_SIZES:
                    times = {contender: seconds for (contender, b), seconds in best.items() if b == batch_size}
                    times.setdefault("scikit-learn", best["scikit-learn", 1])  # per-sample: no batch size
                    rows.append((task, dtype, batch_size, times))
    rows.sort(key=lambda row: (row[0], row[2], row[1] != "float64"))  # a model's batch-1 rows first, float64 first
    return rows


def _time_fit(make, X, y):
    model = make()
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def _format_speedup(ratio):
    """2.04 -> '2.04x', 21.63 -> '21.6x', 40.0 -> '40x'."""
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.3g}x"


def format_regression(rows):
    """The regression timings as text, with fastgd's speedups, float32 against float64 and a legend.

    scikit-learn's per-sample SGD is a different algorithm from mini-batch SGD, so at
    batch sizes above 1 its time and fastgd's speedup over it are shown in parentheses,
    as context (the time scikit-learn takes for the same epochs) rather than as a
    like-for-like speedup; the NumPy loop is the like-for-like contender there.
    """
    fastgd64 = {(task, batch_size): times["fastgd"] for task, dtype, batch_size, times in rows if dtype == "float64"}
    header = ["model", "batch", "dtype", "fastgd", "scikit-learn", "speedup", "NumPy loop", "speedup", "vs float64"]
    lines = [header]
    for task, dtype, batch_size, times in rows:
        line = [task, str(batch_size), dtype, format_time(times["fastgd"])]
        for contender in ("scikit-learn", "reference"):
            seconds = times.get(contender)
            if seconds is None:
                line += ["-", "-"]
                continue
            cells = [format_time(seconds), _format_speedup(seconds / times["fastgd"])]
            if contender == "scikit-learn" and batch_size != 1:
                cells = [f"({cell})" for cell in cells]
            elif _regression_rows(contender, batch_size) < REGRESSION_SHAPE[0]:
                cells[0] = "~" + cells[0]
            line += cells
        line.append(f"{times['fastgd'] / fastgd64[task, batch_size]:.2f}x")
        lines.append(line)
    text = _columns(lines, {0, 2}) + [
        "",
        "like for like: batch 1 against scikit-learn (the headline: per-sample SGD in both, same loss, learning "
        "rate, epochs, shuffling and dtype, no penalty) and the NumPy loop; batch 32 against the NumPy loop.",
        "(in parentheses) scikit-learn's per-sample SGD beside mini-batch SGD, a different algorithm "
        "(a step per 32 rows): context only.",
        f"~ the NumPy loop at batch 1 is fitted once on the first {REFERENCE_ROWS_AT_BATCH_1:,} rows, "
        f"its time scaled to {REGRESSION_SHAPE[0]:,}.",
    ]
    return "\n".join(text)


# -- sparse data: scikit-learn's SGDClassifier on text-like rows ----------------------------

#: rows, features and nonzeros a row of the text-like CSR problem (a hashed bag of words)
SPARSE_SHAPE = (200_000, 2**18)
SPARSE_NONZEROS = 100
SPARSE_EPOCHS = 5
SPARSE_TEST_ROWS = 20_000
#: the penalty of every contender (scikit-learn's default 1e-4 makes its "optimal" rate so large
#: on these rows that, for the hinge loss, test accuracy swings by 0.1 with the shuffling seed)
SPARSE_ALPHA = 1e-5


def sparse_data(rows=SPARSE_SHAPE[0], features=SPARSE_SHAPE[1], nonzeros=SPARSE_NONZEROS, seed=0):
    """A text-like problem: CSR rows of `nonzeros` positive values at random features (float64,
    int32 indices), labelled by the sign of a sparse linear model with 5% label noise; returns
    (X, y, X_test, y_test), the test rows SPARSE_TEST_ROWS more of the same."""
    from scipy import sparse

    rng = np.random.default_rng(seed)
    total = rows + SPARSE_TEST_ROWS
    indices = np.sort(rng.integers(0, features, size=(total, nonzeros), dtype=np.int32), axis=1)
    values = rng.exponential(size=(total, nonzeros)) / np.sqrt(nonzeros)
    X = sparse.csr_matrix((values.ravel(), indices.ravel(), np.arange(0, total * nonzeros + 1, nonzeros)),
                          shape=(total, features))
    X.sum_duplicates()
    weights = rng.standard_normal(features) * (rng.random(features) < 0.2)
    scores = X @ weights
    y = (scores > np.median(scores)) ^ (rng.random(total) < 0.05)
    return X[:rows], y[:rows].astype(np.int64), X[rows:], y[rows:].astype(np.int64)


def _sparse_contenders():
    """(name, batch size) -> an unfitted classifier: scikit-learn's SGDClassifier and fastgd's, with
    the same loss, penalty, schedule and epochs (per-sample SGD in both: like for like), and
    fastgd's mini-batch Adam with lazy updates beside them."""
    from sklearn.linear_model import SGDClassifier as SkSGDClassifier

    from .linear_model import SGDClassifier

    same = dict(max_iter=SPARSE_EPOCHS, tol=None, random_state=0, alpha=SPARSE_ALPHA)
    contenders = {}
    for loss in ("hinge", "log_loss"):
        contenders[f"scikit-learn {loss}", 1] = lambda loss=loss: SkSGDClassifier(loss=loss, **same)
        contenders[f"fastgd {loss}", 1] = lambda loss=loss: SGDClassifier(loss=loss, **same)
    contenders["fastgd log_loss, Adam, lazy", 32] = lambda: SGDClassifier(
        loss="log_loss", optimizer="adam", batch_size=32, learning_rate="constant", eta0=3e-3, lazy_updates=True,
        **same)
    return contenders


def run_sparse(repeat=SPARSE_REPEAT, progress=sys.stderr):
    """Time 5-epoch fits of each sparse contender on sparse_data(), one thread, fastest of `repeat`
    rounds (each round fits every contender once, so that a burst of load slows them all);
    returns rows of (name, batch size, seconds per epoch, test accuracy)."""
    from threadpoolctl import threadpool_limits

    print("[sparse] making the data", file=progress, flush=True)
    X, y, X_test, y_test = sparse_data()
    contenders = _sparse_contenders()
    best, accuracy = {}, {}
    with threadpool_limits(1):
        for round_ in range(repeat):
            print(f"[sparse] round {round_ + 1} of {repeat}", file=progress, flush=True)
            for key, make in contenders.items():
                model = make()
                start = time.perf_counter()
                model.fit(X, y)
                seconds = (time.perf_counter() - start) / SPARSE_EPOCHS
                best[key] = min(best.get(key, math.inf), seconds)
                accuracy[key] = model.score(X_test, y_test)
    return [(name, batch_size, best[name, batch_size], accuracy[name, batch_size])
            for name, batch_size in contenders]


def format_sparse(rows):
    """The sparse timings as text: each contender's time an epoch, test accuracy, and speedup over
    scikit-learn's SGDClassifier with the same loss (for the Adam row, in parentheses as context:
    the faster of the two)."""
    reference = {name.split()[1]: seconds for name, _, seconds, _ in rows if name.startswith("scikit-learn")}
    lines = [["contender", "batch", "time an epoch", "test accuracy", "vs scikit-learn"]]
    for name, batch_size, seconds, accuracy in rows:
        loss = name.split()[1].rstrip(",")
        against = reference.get(loss) if not name.startswith("scikit-learn") else None
        context = "Adam" in name  # mini-batch Adam: another algorithm than scikit-learn's
        if context:
            against = min(reference.values())
        speedup = "-" if against is None else _format_speedup(against / seconds)
        lines.append([name, str(batch_size), format_time(seconds), f"{accuracy:.4f}",
                      f"({speedup})" if context else speedup])
    text = _columns(lines, 1) + ["", f"{SPARSE_SHAPE[0]:,} rows x 2^18 features, {SPARSE_NONZEROS} nonzeros a row (CSR, float64), "
             f"{SPARSE_EPOCHS} epochs, rows shuffled, L2 penalty alpha {SPARSE_ALPHA:g}, scikit-learn's 'optimal' "
             "rate but for Adam's constant 3e-3; test accuracy on "
             f"{SPARSE_TEST_ROWS:,} more rows; one thread, fastest of the rounds. (in parentheses) mini-batch "
             "Adam, a different algorithm, against the faster scikit-learn row: context, not like for like."]
    return "\n".join(text)


# -- command line -------------------------------------------------------------


def _name_list(kind, allowed):
    """An argparse type: a comma-separated list of names from `allowed` ('all' for every one)."""
    def parse(text):
        names = [name.strip().lower() for name in text.split(",") if name.strip()]
        if names == ["all"]:
            return list(allowed)
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(map(repr, unknown)) or repr(text)}; "
                f"expected a comma-separated list of {', '.join(allowed)} (or all)")
        return list(dict.fromkeys(names))
    return parse


def _sizes(text):
    """An argparse type: a comma-separated list of element counts such as 1e3,100000."""
    sizes = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            value = 0.0
        if not (1 <= value < 2**63 and value == int(value)):
            raise argparse.ArgumentTypeError(f"invalid size {item.strip()!r}; expected whole numbers >= 1 such as 1e3,1e6")
        sizes.append(int(value))
    return sizes


def _contenders(text):
    """An argparse type: a comma-separated list of contenders; torch ones need torch installed."""
    names = _name_list("contender", CONTENDERS)(text)
    missing = [name for name in names if name in TORCH_MODES]
    if missing and not torch_available():
        raise argparse.ArgumentTypeError(f"{', '.join(missing)} need torch, which is not installed")
    return names


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def add_arguments(parser):
    """Add the options of ``python -m fastgd bench`` to an argparse parser."""
    parser.add_argument("--optimizers", type=_name_list("optimizer", tuple(OPTIMIZERS)), default=None,
                        metavar="LIST", help=f"comma-separated, from {', '.join(OPTIMIZERS)}, or all (default: all)")
    parser.add_argument("--dtypes", type=_name_list("dtype", DTYPES), default=None,
                        metavar="LIST", help=f"comma-separated, from {', '.join(DTYPES)}, or all (default: float32)")
    parser.add_argument("--sizes", type=_sizes, default=None, metavar="LIST",
                        help="elements in the one parameter, comma-separated "
                             f"(default: {','.join(map(format_size, DEFAULT_SIZES))})")
    parser.add_argument("--contenders", type=_contenders, default=None, metavar="LIST",
                        help=f"comma-separated, from {', '.join(CONTENDERS)}; fastgd is always timed "
                             "(default: all, the torch ones if torch is installed)")
    parser.add_argument("--repeat", type=_positive_int, default=None, metavar="N",
                        help=f"timed batches of about {TARGET_SECONDS * 1000:.0f} ms per contender; "
                             f"the median is shown (default: {DEFAULT_REPEAT}); with --sparse, rounds of fits, "
                             f"the fastest shown (default: {SPARSE_REPEAT}); with --regression, its fits too")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--regression", action="store_true",
                        help="also time the regression loop: 5-epoch fits of plain SGD on 100,000 x 100 data at "
                             "batch sizes 1 and 32 against scikit-learn's per-sample SGD and the NumPy loop "
                             "(about 20 s more)")
    modes.add_argument("--clip", action="store_true",
                       help="time gradient clipping with an Adam step instead, over 10 parameters: fastgd's "
                            "step alone and clipped_step against torch's fused step alone and clip_grad_norm_ "
                            f"before it (sizes default to {','.join(map(format_size, CLIP_SIZES))}; not "
                            "--optimizers or --contenders)")
    modes.add_argument("--sparse", action="store_true",
                       help="time scikit-learn's SGDClassifier against fastgd's instead, on a text-like CSR "
                            "problem (200,000 rows x 2^18 features, 100 nonzeros a row), one thread: per-sample "
                            "SGD with hinge and log loss in both, and fastgd's mini-batch Adam with lazy updates "
                            "(--repeat only)")
    parser.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                        help="threads for torch, and for fastgd if it takes n_threads (default: 1; "
                             "NumPy uses one)")
    parser.set_defaults(bench_parser=parser)


#: the options that each mode does not read (python -m fastgd bench refuses them there)
_UNREAD = {"sparse": ("optimizers", "dtypes", "sizes", "contenders", "threads"),
           "clip": ("optimizers", "contenders")}


def run(args):
    """Run the benchmark described by parsed arguments and print the table; returns the exit status."""
    has_torch = torch_available()
    for mode, unread in _UNREAD.items():
        given = [f"--{name}" for name in unread if getattr(args, name) is not None]
        if getattr(args, mode) and given:
            message = f"--{mode} does not read {', '.join(given)}; see --help"
            parser = getattr(args, "bench_parser", None)  # (arguments that add_arguments' parser did not parse)
            if parser is None:
                raise ValueError(message)
            parser.error(message)
    args.sizes_given = args.sizes is not None
    if args.sizes is None:
        args.sizes = list(DEFAULT_SIZES)
    args.optimizers = list(OPTIMIZERS) if args.optimizers is None else args.optimizers
    args.dtypes = list(DEFAULT_DTYPES) if args.dtypes is None else args.dtypes
    args.threads = 1 if args.threads is None else args.threads
    args.repeat = (SPARSE_REPEAT if args.sparse else DEFAULT_REPEAT) if args.repeat is None else args.repeat
    if args.contenders is None:
        contenders = [c for c in CONTENDERS if has_torch or c not in TORCH_MODES]
    else:
        contenders = ["fastgd"] + [c for c in args.contenders if c != "fastgd"]
    uses_torch = not args.sparse and (any(c in TORCH_MODES for c in contenders) or (args.clip and has_torch))
    versions = (f"fastgd {fastgd.__version__} (SIMD: {fastgd._level}, {args.threads} thread"
                f"{'s' if args.threads > 1 else ''}), numpy {np.__version__}")
    if uses_torch:
        import torch

        torch.set_num_threads(args.threads)
        threads = torch.get_num_threads()
        versions += f", torch {torch.__version__} ({threads} thread{'s' if threads > 1 else ''})"

    settle_allocator()
    start = time.perf_counter()
    if args.clip:
        return _run_clip(args, versions, start)
    if args.sparse:
        import sklearn

        print(f"{versions}, scikit-learn {sklearn.__version__}")
        print(format_sparse(run_sparse(args.repeat, progress=sys.stderr)))
        print(f"\ntook {time.perf_counter() - start:.0f} s")
        return 0
    rows = run_grid(args.optimizers, args.dtypes, args.sizes, contenders, args.repeat, args.threads)
    print(versions)
    changed = (f"{name} {', '.join(f'{k}={v}' for k, v in options.items())}" for name, options in BENCH_OPTIONS.items())
    print("every contender with torch.optim's default options but " + ", ".join(changed))
    print(f"median time per step over {args.repeat} batches; speedup = contender's time / fastgd's time")
    print()
    print(format_table(rows, contenders))
    print()
    if "roofline" in contenders:
        print("roofline: in-place np.add moving the bytes the step reads and writes; "
              "its speedup near 1x means fastgd runs at memory speed")
    if args.regression:
        print()
        print(f"regression: time per epoch of a {REGRESSION_EPOCHS}-epoch fit on {REGRESSION_SHAPE[0]:,} x "
              f"{REGRESSION_SHAPE[1]} data, one thread, fastest of {args.repeat} fits (the NumPy loop: one fit); "
              f"plain SGD, constant learning rate {REGRESSION_LEARNING_RATE:g}, no penalty,")
        print("rows shuffled every epoch; speedup = contender's time / fastgd's time")
        print()
        print(format_regression(run_regression(args.repeat, progress=sys.stderr)))
        print()
    print(f"took {time.perf_counter() - start:.0f} s.")
    if not args.sizes_given and args.dtypes == list(DEFAULT_DTYPES):
        print("The full grid, both dtypes and more sizes (about 3x as long):")
        print("  python -m fastgd bench --dtypes all --sizes 1e3,1e4,1e5,1e6,1e7")
    if not args.regression:
        print("the regression loop against NumPy and scikit-learn:  python -m fastgd bench --regression")
    print("and, from a source checkout, the pytest-benchmark suite (with a many-small-parameters case):")
    print("  python -m pytest benchmarks --benchmark-group-by=group")
    return 0


def _run_clip(args, versions, start):
    sizes = args.sizes if args.sizes_given else list(CLIP_SIZES)
    rows = run_clip(args.dtypes, sizes, args.repeat, args.threads)
    print(versions)
    print(f"Adam (torch.optim's defaults; torch's fused step), {CLIP_PARAMETERS} parameters of n/{CLIP_PARAMETERS} "
          f"elements, gradients clipped to the total norm {CLIP_MAX_NORM:g}; median time per step over {args.repeat} "
          "batches")
    print("clip cost = clip+step / step alone; speedup = torch clip+step / fastgd clip+step")
    print()
    print(format_clip(rows))
    print()
    print(f"took {time.perf_counter() - start:.0f} s")
    return 0
