# Types of the fastgd package (the modules' own stubs hold the details).
from . import clip as clip
from . import functional as functional
from . import reference as reference
from .linear_model import LinearRegression as LinearRegression
from .linear_model import LogisticRegression as LogisticRegression
from fastgd import optim as optim
from fastgd.optim import *
from fastgd.clip import *

__version__: str

__all__ = ["LinearRegression", "LogisticRegression", "functional", "reference", "show_config", "__version__"]
__all__ += optim.__all__
__all__ += clip.__all__

def show_config() -> None: ...
