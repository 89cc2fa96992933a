# Stub of the avx512 build of the compiled engine: the same functions as the baseline build.
from fastgd._engine_baseline import *
