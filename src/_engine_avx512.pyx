# The compiled engine for the avx512 SIMD level (flags in fastgd/_simd.py): the optimizer step
# and the regression epoch.
include "_engine.pxi"
include "_regression.pxi"
