# The optimizer steps compiled for the avx2 SIMD level (flags in setup.py).
include "_optim.pxi"
