"""One step of each optimizer on one parameter of n elements, for every contender.

Groups are named ``{optimizer}-{dtype}-n={n}``.  The n=1e7 cases are kept in
the smoke run (--benchmark-disable): building them costs a few tenths of a
second each, as the arrays are filled from a small repeated block.
"""
import pytest

from fastgd import bench

SIZES = [1_000, 100_000, 1_000_000, 10_000_000]


@pytest.mark.parametrize("n", SIZES, ids=bench.format_size)
@pytest.mark.parametrize("dtype", bench.DTYPES)
@pytest.mark.parametrize("optimizer", list(bench.OPTIMIZERS))
def test_step(measure, optimizer, dtype, n):
    measure(optimizer, dtype, [n], group=f"{optimizer}-{dtype}-n={n}")
