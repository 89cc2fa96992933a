# Stub of the avx2 build of src/_regression.pxi: the same functions as the baseline build.
from fastgd._regression_baseline import *
