"""fastgd: fused, in-place gradient-descent optimizers for NumPy arrays.

The optimizers have torch.optim's names, defaults and update equations; each
step is one compiled pass over memory per parameter.
"""
from . import accumulation, clip, functional, lr_scheduler, optim, reference, swa_utils
from .accumulation import *  # noqa: F403 (gradient accumulation: accumulation.__all__)
from ._backend import level as _level
from .optim import *  # noqa: F403 (the optimizers, Optimizer, Parameter: optim.__all__)
from .clip import *  # noqa: F403 (gradient clipping: clip.__all__)
from .swa_utils import *  # noqa: F403 (weight averages: swa_utils.__all__)

# the one place the version is written: pyproject.toml reads this line (without importing fastgd)
__version__ = "0.1.0"

#: the estimators, imported from linear_model when first asked for (see __getattr__)
_ESTIMATORS = ("LinearRegression", "LogisticRegression", "SGDClassifier", "SGDRegressor")

__all__ = optim.__all__ + clip.__all__ + swa_utils.__all__ + accumulation.__all__ + [
    *_ESTIMATORS, "functional", "lr_scheduler", "reference", "show_config", "__version__",
]


def __getattr__(name):
    # the estimators need scikit-learn and SciPy: import them only when asked for
    if name in _ESTIMATORS:
        from . import linear_model

        return getattr(linear_model, name)
    raise AttributeError(f"module 'fastgd' has no attribute {name!r}")


def show_config():
    """Print the SIMD level in use, the levels built and a release build's compile flags."""
    import sys

    from . import _backend, _cpu, _simd

    family = "msvc" if sys.platform == "win32" else "unix"  # (the platform's default compiler's flags)
    print(f"fastgd {__version__}")
    print(f"SIMD level in use: {_backend.level}")
    print(f"SIMD levels built: {', '.join(_backend.built_levels())}")
    print(f"SIMD levels this CPU supports: {', '.join(_cpu.supported_levels())}")
    # (setup.py's for a release build: a FASTGD_DEBUG or FASTGD_SANITIZE build, not told apart here,
    # takes others)
    print(f"compile flags of a release build ({'MSVC' if family == 'msvc' else 'GCC/Clang'}; a FASTGD_DEBUG=1 "
          "or FASTGD_SANITIZE=1 build takes others, see setup.py):")
    for level in _backend.built_levels():
        flags = _simd.COMMON_FLAGS[family] + _simd.LEVEL_FLAGS[family][level]
        print(f"  {level}: {' '.join(flags)}")
