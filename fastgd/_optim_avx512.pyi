# Stub of the avx512 build of src/_optim.pxi: the same functions as the baseline build.
from fastgd._optim_baseline import *
