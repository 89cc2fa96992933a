"""Fixtures for the pytest-benchmark suite of one optimizer step.

The contenders (fastgd, the NumPy reference, torch.optim's fused, foreach and
for-loop variants, and a memory-bandwidth roofline) are built by
``fastgd.bench.make_step``, the same code ``python -m fastgd bench`` times.
Each test sets ``benchmark.group`` to its case, so

    python -m pytest benchmarks --benchmark-group-by=group

shows all contenders of a case side by side.  torch and fastgd run on one
thread unless the environment variable FASTGD_BENCH_THREADS says otherwise.
"""
import os

import pytest

from fastgd import bench

bench.settle_allocator()  # so that no test's timing depends on which tests ran before it

THREADS = int(os.environ.get("FASTGD_BENCH_THREADS", "1"))

if bench.torch_available():
    import torch

    torch.set_num_threads(THREADS)


@pytest.fixture(params=bench.CONTENDERS)
def contender(request):
    """The name of one contender; the torch ones are skipped when torch is not installed."""
    if request.param in bench.TORCH_MODES and not bench.torch_available():
        pytest.skip("torch is not installed")
    return request.param


@pytest.fixture
def measure(benchmark, contender):
    """``measure(optimizer, dtype, sizes, group)``: benchmark one step of the contender.

    Skips the cases the contender cannot run (torch has no fused RMSprop).
    The step runs once before timing, as the first step allocates the state;
    with --benchmark-disable it runs once in all, to keep the smoke run short.
    """
    def run(optimizer, dtype, sizes, group):
        try:
            step = bench.make_step(contender, optimizer, dtype, sizes, THREADS)
        except bench.Unavailable as error:
            pytest.skip(str(error))
        benchmark.group = group
        if benchmark.enabled:
            step()
        benchmark(step)

    return run


@pytest.fixture
def threads():
    """The threads torch and fastgd run on (FASTGD_BENCH_THREADS, default 1)."""
    return THREADS
