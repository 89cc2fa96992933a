"""Choose the compiled engine for this CPU: the build for the best SIMD level it
supports, or for the one named by the FASTGD_SIMD environment variable."""
import importlib
import importlib.util
import os

from ._simd import LEVELS

try:
    from . import _cpu
except ImportError as error:  # a source checkout whose extensions were never built
    raise ImportError(
        "fastgd's compiled kernels are not built: this looks like the source tree. "
        "Install it with `pip install -e .` (or `pip install .` and run from another folder)."
    ) from error


def built_levels():
    """The SIMD levels this installation has a compiled engine for."""
    return tuple(level for level in LEVELS if importlib.util.find_spec(f"fastgd._engine_{level}") is not None)


def choose_level(requested=None):
    """The level to use: `requested` (or $FASTGD_SIMD) if given, else the best one available."""
    built = built_levels()
    supported = _cpu.supported_levels()
    if requested is None:
        requested = os.environ.get("FASTGD_SIMD", "").strip().lower() or None
    if requested is None:
        return [level for level in built if level in supported][-1]
    if requested not in LEVELS:
        raise ValueError(f"FASTGD_SIMD={requested!r} is not a SIMD level; expected one of {', '.join(LEVELS)}")
    if requested not in built:
        raise ValueError(f"FASTGD_SIMD={requested!r}: this build of fastgd has kernels for {', '.join(built)} only")
    if requested not in supported:
        raise ValueError(
            f"FASTGD_SIMD={requested!r}: this CPU does not support {requested} "
            f"(it supports {', '.join(supported)})"
        )
    return requested


def load(level=None):
    """The compiled engine for a SIMD level (default: the chosen one)."""
    return importlib.import_module(f"fastgd._engine_{level or globals()['level']}")


level = choose_level()
#: the compiled engine in use: the optimizer step (Plan) and the regression epoch
engine = load()
