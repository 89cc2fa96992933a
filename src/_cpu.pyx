# Which SIMD levels this CPU runs; the levels themselves are listed once, in fastgd/_simd.py.
from fastgd._simd import LEVELS as _LEVELS

cdef extern from "_cpu.h":
    int fastgd_simd_level() nogil


def supported_levels():
    """The SIMD levels this CPU (and its operating system) can run, lowest first."""
    return _LEVELS[:fastgd_simd_level() + 1]
