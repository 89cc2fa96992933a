"""The SIMD levels fastgd compiles its kernels for, and the flags of each.

setup.py reads this file to build one extension module per level, and the
compiled _cpu module its list of levels;
fastgd.show_config() reads it to report what was built.  Never
``-ffast-math`` (it changes NaN semantics and can flush denormals for the
whole process) and never ``-march=native`` (the wheel would crash on older
CPUs): a level is chosen at import time instead.
"""

LEVELS = ("baseline", "avx2", "avx512")

# -fno-math-errno lets GCC vectorize sqrt, -fno-trapping-math lets it vectorize
# the selects between option-dependent values; neither changes a result.
# -ffp-contract=off keeps a * b + c two roundings, as NumPy and most of torch's
# CPU kernels round it (not its lerp, fused where the CPU has FMA: README), so
# every SIMD level and every split across threads gives the same bits (MSVC has no
# such flag: src/_fp.h's pragma does it there).
COMMON_FLAGS = {
    "unix": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"],
    "msvc": ["/O2"],
}

LEVEL_FLAGS = {
    "unix": {
        "baseline": [],
        "avx2": ["-mavx2", "-mfma"],
        "avx512": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl",
                   "-mprefer-vector-width=512"],
    },
    "msvc": {
        "baseline": [],
        "avx2": ["/arch:AVX2"],
        "avx512": ["/arch:AVX512"],
    },
}


def compiler_family(compiler_type):
    """'msvc' for Microsoft's compiler, 'unix' for GCC and Clang."""
    return "msvc" if compiler_type == "msvc" else "unix"


def levels_for_platform(platform):
    """The levels worth building for a platform tag such as 'linux-x86_64' or 'win-amd64'."""
    machine = platform.rsplit("-", 1)[-1].lower()
    if machine in ("x86_64", "amd64", "intel"):
        return LEVELS
    return LEVELS[:1]
