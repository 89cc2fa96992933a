# Stub of the avx512 build of src/_regression.pxi: the same functions as the baseline build.
from fastgd._regression_baseline import *
