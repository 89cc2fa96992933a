"""Many small parameters against one large one with as many elements.

1000 parameters of 100 elements and one of 100,000, float32, for Adam and
SGD with momentum: the gap between the two is the cost per parameter (Python
and dispatch overhead) of each contender.  Groups are named
``{optimizer}-float32-many-small``.
"""
import pytest

LAYOUTS = {"1000x100": [100] * 1000, "1x100000": [100_000]}


@pytest.mark.parametrize("contender", ["fastgd", "reference", "torch-fused"], indirect=True)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_many_small(measure, optimizer, layout):
    measure(optimizer, "float32", LAYOUTS[layout], group=f"{optimizer}-float32-many-small")
