cdef extern from "_cpu.h":
    int fastgd_simd_level() nogil

LEVELS = ("baseline", "avx2", "avx512")


def supported_levels():
    """The SIMD levels this CPU (and its operating system) can run, lowest first."""
    return LEVELS[:fastgd_simd_level() + 1]
