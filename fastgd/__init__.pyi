# Types of the fastgd package (the modules' own stubs hold the details).
from . import accumulation as accumulation
from . import clip as clip
from . import swa_utils as swa_utils
from .accumulation import MultiSteps as MultiSteps
from .swa_utils import EMA as EMA
from .swa_utils import SWA as SWA
from .swa_utils import SWALR as SWALR
from . import functional as functional
from . import lr_scheduler as lr_scheduler
from . import reference as reference
from .linear_model import LinearRegression as LinearRegression
from .linear_model import LogisticRegression as LogisticRegression
from .linear_model import SGDClassifier as SGDClassifier
from .linear_model import SGDRegressor as SGDRegressor
from fastgd import optim as optim
from fastgd.optim import *
from fastgd.clip import *

__version__: str

# written out (type checkers do not follow `__all__ += module.__all__`; stubtest checks it is the runtime's)
__all__ = [
    "LinearRegression", "LogisticRegression", "SGDClassifier", "SGDRegressor", "functional", "lr_scheduler",
    "reference", "show_config", "__version__",
    "Optimizer", "Parameter", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "Adadelta", "Lion", "RAdam",
    "NAdam", "MAX_THREADS",
    "clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_", "clip_coef", "clipped_step",
    "EMA", "SWA", "SWALR", "MultiSteps",
]

def show_config() -> None: ...
