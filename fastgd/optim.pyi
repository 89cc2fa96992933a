# Types of fastgd.optim (the optimizers and Parameter).
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt
from typing_extensions import TypeAlias

# A parameter is updated in place: a float32 or float64 array, or a Parameter holding one.
_FloatArray: TypeAlias = npt.NDArray[np.floating[Any]]
_Param: TypeAlias = _FloatArray | Parameter
# {"params": [...], "lr": ..., other options of the optimizer}
_ParamGroup: TypeAlias = Mapping[str, Any]
# or torch's named parameters, (name, parameter) pairs (the group keeps the names in "param_names")
# (one union of the elements: a list mixing a Parameter and an array, or the groups' dicts, is one
# iterable to mypy; mixing arrays and groups, which the constructor refuses, type-checks)
_Params: TypeAlias = Iterable[_Param | tuple[str, _Param] | _ParamGroup]
# a gradient: an array, or a NumPy float scalar (a 0-d parameter's, as np.sum returns it)
_Grad: TypeAlias = npt.NDArray[np.floating[Any]] | np.floating[Any]
# one gradient (or None, to skip that parameter) per parameter, in order
# a list or a tuple, as step() takes them (a list's elements unchecked: list is invariant, so a
# list[NDArray[float32]] would not be a list[_Grad | None])
_Grads: TypeAlias = list[Any] | tuple[_Grad | None, ...]

__all__ = ["Optimizer", "Parameter", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "Adadelta", "Lion", "RAdam", "NAdam", "MAX_THREADS"]

PARALLEL_MIN_SIZE: int
MAX_THREADS: int
MAX_STEP: int
SCHEDULER_KEYS: frozenset[str]
TORCH_KEYWORDS: tuple[str, ...]

# The description of an algorithm (Optimizer.algorithm): see fastgd/optim.py.
class Option(NamedTuple):
    name: str
    kind: str
    fields: tuple[str | None, ...] | None = None

class State(NamedTuple):
    name: str
    needed_when: str | None = None
    initial: float | str = 0.0
    from_gradient: bool = False
    def new(self, group: Mapping[str, Any], param: npt.NDArray[Any]) -> npt.NDArray[Any]: ...

class ScalarState(NamedTuple):
    name: str
    initial: float
    kind: str = "rate"

class Rule(NamedTuple):
    reads: tuple[str, ...]
    check: Callable[[Mapping[str, Any], str], None]
    constructor_only: bool = False

class Algorithm(NamedTuple):
    kernel: str
    options: tuple[Option, ...]
    state: tuple[State, ...]
    counts_steps: bool = True
    rules: tuple[Rule, ...] = ()
    state_at_start: bool = False
    scalar_state: tuple[ScalarState, ...] = ()
    def new_scalars(self, count: int) -> npt.NDArray[np.float64]: ...
    def engine_options(self) -> tuple[tuple[str, str, float, float, tuple[str | None, ...], bool], ...]: ...
    def engine_state(self) -> tuple[tuple[tuple[str, str | None], ...], tuple[str, ...]]: ...

class Parameter:
    # set: an array as it is, a Parameter's data, anything else as np.asarray makes it
    @property
    def data(self) -> npt.NDArray[Any]: ...
    @data.setter
    def data(self, value: npt.ArrayLike | Parameter) -> None: ...
    grad: npt.NDArray[Any] | np.floating[Any] | None
    def __init__(self, data: npt.ArrayLike, grad: npt.NDArray[Any] | np.floating[Any] | None = None) -> None: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[Callable[..., Any], tuple[type[Parameter]], dict[str, Any]]: ...
    def __getstate__(self) -> dict[str, Any]: ...
    def __setstate__(self, state: dict[str, Any]) -> None: ...
    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> npt.NDArray[Any]: ...
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any: ...
    def __array_function__(
        self, func: Callable[..., Any], types: Iterable[type], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...
    # the array's other attributes and methods (.shape, .dtype, .T, .sum(), ...)
    def __getattr__(self, name: str) -> Any: ...
    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __dlpack_device__(self) -> Any: ...
    def __array_namespace__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __setattr__(self, name: str, value: Any) -> None: ...
    def __delattr__(self, name: str) -> None: ...
    def __dir__(self) -> list[str]: ...
    def __getitem__(self, key: Any) -> Any: ...
    def __setitem__(self, key: Any, value: Any) -> None: ...
    def __len__(self) -> int: ...
    def __contains__(self, value: object) -> bool: ...
    def __eq__(self, other: object) -> Any: ...
    def __ne__(self, other: object) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __bool__(self) -> bool: ...
    def __float__(self) -> float: ...
    def __int__(self) -> int: ...
    def __index__(self) -> int: ...
    def __complex__(self) -> complex: ...
    def __copy__(self) -> Parameter: ...
    def __round__(self, ndigits: int | None = None) -> Any: ...
    def __format__(self, spec: str) -> str: ...
    # the data's own operators, a Parameter operand as its data; in place: the Parameter itself
    def __add__(self, other: Any) -> Any: ...
    def __radd__(self, other: Any) -> Any: ...
    def __iadd__(self, other: Any) -> Any: ...
    def __sub__(self, other: Any) -> Any: ...
    def __rsub__(self, other: Any) -> Any: ...
    def __isub__(self, other: Any) -> Any: ...
    def __mul__(self, other: Any) -> Any: ...
    def __rmul__(self, other: Any) -> Any: ...
    def __imul__(self, other: Any) -> Any: ...
    def __matmul__(self, other: Any) -> Any: ...
    def __rmatmul__(self, other: Any) -> Any: ...
    def __imatmul__(self, other: Any) -> Any: ...
    def __truediv__(self, other: Any) -> Any: ...
    def __rtruediv__(self, other: Any) -> Any: ...
    def __itruediv__(self, other: Any) -> Any: ...
    def __floordiv__(self, other: Any) -> Any: ...
    def __rfloordiv__(self, other: Any) -> Any: ...
    def __ifloordiv__(self, other: Any) -> Any: ...
    def __mod__(self, other: Any) -> Any: ...
    def __rmod__(self, other: Any) -> Any: ...
    def __imod__(self, other: Any) -> Any: ...
    def __divmod__(self, other: Any) -> Any: ...
    def __rdivmod__(self, other: Any) -> Any: ...
    def __lshift__(self, other: Any) -> Any: ...
    def __rlshift__(self, other: Any) -> Any: ...
    def __ilshift__(self, other: Any) -> Any: ...
    def __rshift__(self, other: Any) -> Any: ...
    def __rrshift__(self, other: Any) -> Any: ...
    def __irshift__(self, other: Any) -> Any: ...
    def __and__(self, other: Any) -> Any: ...
    def __rand__(self, other: Any) -> Any: ...
    def __iand__(self, other: Any) -> Any: ...
    def __xor__(self, other: Any) -> Any: ...
    def __rxor__(self, other: Any) -> Any: ...
    def __ixor__(self, other: Any) -> Any: ...
    def __or__(self, other: Any) -> Any: ...
    def __ror__(self, other: Any) -> Any: ...
    def __ior__(self, other: Any) -> Any: ...
    def __pow__(self, other: Any, mod: Any = None) -> Any: ...
    def __rpow__(self, other: Any, mod: Any = None) -> Any: ...
    def __ipow__(self, other: Any, mod: Any = None) -> Any: ...
    def __lt__(self, other: Any) -> Any: ...
    def __le__(self, other: Any) -> Any: ...
    def __gt__(self, other: Any) -> Any: ...
    def __ge__(self, other: Any) -> Any: ...
    def __neg__(self) -> Any: ...
    def __pos__(self) -> Any: ...
    def __abs__(self) -> Any: ...
    def __invert__(self) -> Any: ...

class Optimizer:
    algorithm: ClassVar[Algorithm | None]
    defaults: dict[str, Any]
    param_groups: list[dict[str, Any]]
    def __init__(self, params: _Params, defaults: Mapping[str, Any], n_threads: int | None = None) -> None: ...
    @property
    def n_threads(self) -> int | None: ...
    @n_threads.setter
    def n_threads(self, value: int | None) -> None: ...
    def add_param_group(self, param_group: _ParamGroup) -> None: ...
    # step(grads) returns None; step(closure) returns what the closure returns
    def step(
        self,
        grads: _Grads | Callable[[], Any] | None = None,
        closure: Callable[[], Any] | None = None,
        *,
        grad_scale: float = 1.0,
    ) -> Any: ...
    def zero_grad(self, set_to_none: bool = True) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None: ...

class SGD(Optimizer):
    def __init__(
        self,
        params: _Params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
        n_threads: int | None = None,
    ) -> None: ...

class Adam(Optimizer):
    def __init__(
        self,
        params: _Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        n_threads: int | None = None,
    ) -> None: ...

class AdamW(Adam):
    def __init__(
        self,
        params: _Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        n_threads: int | None = None,
    ) -> None: ...

class RMSprop(Optimizer):
    def __init__(
        self,
        params: _Params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        *,
        n_threads: int | None = None,
    ) -> None: ...

class Adagrad(Optimizer):
    def __init__(
        self,
        params: _Params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        n_threads: int | None = None,
    ) -> None: ...

class Adamax(Optimizer):
    def __init__(
        self,
        params: _Params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        n_threads: int | None = None,
    ) -> None: ...

class Adadelta(Optimizer):
    def __init__(
        self,
        params: _Params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
        n_threads: int | None = None,
    ) -> None: ...

class Lion(Optimizer):
    def __init__(
        self,
        params: _Params,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0,
        *,
        maximize: bool = False,
        n_threads: int | None = None,
    ) -> None: ...

class RAdam(Optimizer):
    def __init__(
        self,
        params: _Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        n_threads: int | None = None,
    ) -> None: ...

class NAdam(Optimizer):
    def __init__(
        self,
        params: _Params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        n_threads: int | None = None,
    ) -> None: ...
