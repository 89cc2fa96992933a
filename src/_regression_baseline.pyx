# The regression epoch loop compiled for the baseline SIMD level (flags in setup.py).
include "_regression.pxi"
