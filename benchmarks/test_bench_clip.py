"""Gradient clipping and an Adam step, over 10 parameters of n elements in all: fastgd's step
alone and clipped_step, torch's fused step alone and clip_grad_norm_ before it.

Groups are named ``clip-adam-{dtype}-n={n}``; contenders are built by
``fastgd.bench.make_clip_step``, the code ``python -m fastgd bench --clip`` times.
"""
import pytest

from fastgd import bench


@pytest.fixture(params=bench.CLIP_CONTENDERS)
def clip_contender(request):
    if request.param.startswith("torch") and not bench.torch_available():
        pytest.skip("torch is not installed")
    return request.param


@pytest.mark.parametrize("n", bench.CLIP_SIZES, ids=bench.format_size)
@pytest.mark.parametrize("dtype", bench.DTYPES)
def test_clip_and_step(benchmark, clip_contender, threads, dtype, n):
    step = bench.make_clip_step(clip_contender, dtype, n, threads)
    benchmark.group = f"clip-adam-{dtype}-n={bench.format_size(n)}"
    if benchmark.enabled:
        step()
    benchmark(step)
