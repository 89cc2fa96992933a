# Types of the fastgd package (the modules' own stubs hold the details).
from . import functional as functional
from . import reference as reference
from .linear_model import LinearRegression as LinearRegression
from .linear_model import LogisticRegression as LogisticRegression
from .optim import SGD as SGD
from .optim import Adagrad as Adagrad
from .optim import Adam as Adam
from .optim import AdamW as AdamW
from .optim import Optimizer as Optimizer
from .optim import Parameter as Parameter
from .optim import RMSprop as RMSprop

__version__: str

__all__ = [
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Optimizer", "Parameter",
    "LinearRegression", "LogisticRegression", "functional", "reference", "show_config", "__version__",
]

def show_config() -> None: ...
