# The optimizer steps compiled for the avx512 SIMD level (flags in setup.py).
include "_optim.pxi"
