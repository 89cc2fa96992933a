# The regression epoch loop compiled for the avx2 SIMD level (flags in setup.py).
include "_regression.pxi"
