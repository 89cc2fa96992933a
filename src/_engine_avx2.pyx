# The compiled engine for the avx2 SIMD level (flags in fastgd/_simd.py): the optimizer step
# and the regression epoch, and the multi-tensor passes (norms, averages).
include "_multi_tensor.pxi"
include "_engine.pxi"
include "_regression.pxi"
