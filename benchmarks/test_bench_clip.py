"""Gradient clipping and an Adam step, over 10 parameters of n elements in all: fastgd's step
alone and clipped_step, torch's fused step alone and clip_grad_norm_ before it.

Groups are named ``clip-adam-{dtype}-n={n}``; contenders are built by
``fastgd.bench.make_clip_step``, the code ``python -m fastgd bench --clip`` times.
The passes alone, fastgd's clip_grad_norm_, clip_grad_value_ and EMA update against torch's
(``fastgd.bench.make_pass``), are in groups ``{pass}-{dtype}-n={n}``.
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


@pytest.mark.parametrize("n", bench.CLIP_SIZES, ids=bench.format_size)
@pytest.mark.parametrize("dtype", bench.DTYPES)
@pytest.mark.parametrize("what", bench.PASSES)
@pytest.mark.parametrize("contender", ["fastgd", "torch"])
def test_pass(benchmark, contender, what, dtype, n):
    if contender == "torch" and not bench.torch_available():
        pytest.skip("torch is not installed")
    run = bench.make_pass(contender, what, dtype, n)
    benchmark.group = f"{what}-{dtype}-n={bench.format_size(n)}"
    if benchmark.enabled:
        run()
    benchmark(run)
