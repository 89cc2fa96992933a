# The optimizer steps compiled for the baseline SIMD level (flags in setup.py).
include "_optim.pxi"
