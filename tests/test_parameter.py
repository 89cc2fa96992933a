"""fastgd.Parameter behaves as its array: NumPy is the oracle (the same expression on the bare
array), and the array is the Parameter's own data, never a copy."""
import collections
import copy
import gc
import operator
import pickle
import weakref

import numpy as np
import pytest

import fastgd
from fastgd import Parameter


@pytest.fixture
def pair():
    """A Parameter and an independent copy of its array, to run the same operations on."""
    rng = np.random.default_rng(0)
    data = rng.uniform(-2.0, 2.0, (3, 4))
    return Parameter(data), data.copy()


def test_asarray_is_the_data_itself():
    data = np.arange(6.0).reshape(2, 3)
    p = Parameter(data)
    for converted in (np.asarray(p), np.array(p, copy=False), np.asarray(p, dtype=np.float64),
                      np.array(p, copy=None)):
        assert converted is data
    copied = np.array(p)  # np.array copies by default, as for an array
    assert copied is not data and not np.shares_memory(copied, data)
    np.testing.assert_array_equal(copied, data)
    as32 = np.asarray(p, dtype=np.float32)
    assert as32.dtype == np.float32 and not np.shares_memory(as32, data)
    with pytest.raises(ValueError, match="without a copy"):
        np.array(p, dtype=np.float32, copy=False)
    with pytest.raises(ValueError):  # NumPy refuses the same for the bare array
        np.array(data, dtype=np.float32, copy=False)
    assert Parameter(p).data is data


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.mod,
                                operator.lt, operator.le, operator.eq, operator.ne, operator.gt, operator.ge])
def test_binary_operators(pair, op):
    p, data = pair
    other = np.linspace(0.5, 2.0, 4)
    with np.errstate(invalid="ignore"):  # a negative number to a fractional power: NaN, on both sides
        for left, right, bare_left, bare_right in ((p, other, data, other), (other, p, other, data),
                                                   (p, 2.0, data, 2.0), (2.0, p, 2.0, data), (p, p, data, data)):
            got, expected = op(left, right), op(bare_left, bare_right)
            assert type(got) is np.ndarray
            np.testing.assert_array_equal(got, expected)


def test_matmul_both_sides(pair):
    p, data = pair
    vector, matrix = np.arange(4.0), np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(p @ vector, data @ vector)
    np.testing.assert_array_equal(matrix @ p, matrix @ data)
    np.testing.assert_array_equal(p.T @ p, data.T @ data)
    np.testing.assert_array_equal(p @ Parameter(data.T.copy()), data @ data.T)


def test_unary_operators_and_attributes(pair):
    p, data = pair
    for op in (operator.neg, operator.pos, abs):
        np.testing.assert_array_equal(op(p), op(data))
    assert p.shape == data.shape and p.dtype == data.dtype and p.ndim == 2 and p.size == 12
    np.testing.assert_array_equal(p.T, data.T)
    assert np.shares_memory(p.T, p.data)
    assert p.sum() == data.sum() and p.reshape(-1).shape == (12,)
    assert len(p) == 3
    for row, expected in zip(p, data):
        np.testing.assert_array_equal(row, expected)
    assert float(Parameter(np.array(2.5))) == 2.5 and int(Parameter(np.array(3))) == 3
    assert bool(Parameter(np.array([1.0]))) and not bool(Parameter(np.array([0.0])))
    with pytest.raises(ValueError):  # as for the array: the truth of several elements is ambiguous
        bool(p)
    with pytest.raises(AttributeError):
        p.no_such_attribute


def test_indexing_reads_and_writes_the_data(pair):
    p, data = pair
    np.testing.assert_array_equal(p[1], data[1])
    np.testing.assert_array_equal(p[:, 1:3], data[:, 1:3])
    np.testing.assert_array_equal(p[p > 0], data[data > 0])
    view = p[0]
    assert np.shares_memory(view, p.data)
    buffer = p.data
    p[0, 0] = 7.0
    data[0, 0] = 7.0
    p[p < 0] = 0.0
    data[data < 0] = 0.0
    p[1] = Parameter(np.ones(4))
    data[1] = 1.0
    assert p.data is buffer
    np.testing.assert_array_equal(p.data, data)


@pytest.mark.parametrize("op", [operator.iadd, operator.isub, operator.imul, operator.itruediv])
def test_in_place_operators_update_the_data(pair, op):
    p, data = pair
    buffer = p.data
    other = np.linspace(0.5, 2.0, 4)
    result = op(p, other)
    assert result is p and p.data is buffer
    np.testing.assert_array_equal(p.data, op(data, other))
    result = op(p, Parameter(other.copy()))
    assert result is p and p.data is buffer
    np.testing.assert_array_equal(p.data, op(data, other))


def test_numpy_functions_and_ufuncs(pair):
    p, data = pair
    np.testing.assert_array_equal(np.sin(p), np.sin(data))
    assert np.sum(p) == np.sum(data) and np.mean(p, axis=0).tolist() == np.mean(data, axis=0).tolist()
    np.testing.assert_array_equal(np.concatenate([p, p]), np.concatenate([data, data]))
    np.testing.assert_array_equal(np.where(p > 0, p, 0.0), np.where(data > 0, data, 0.0))
    np.testing.assert_array_equal(np.linalg.norm(p), np.linalg.norm(data))
    assert np.shares_memory(np.reshape(p, -1), p.data)
    assert np.add.reduce(p, axis=1).tolist() == np.add.reduce(data, axis=1).tolist()
    np.testing.assert_array_equal(np.maximum.accumulate(p, axis=0), np.maximum.accumulate(data, axis=0))
    out = np.empty_like(data)
    assert np.multiply(p, 2.0, out=out) is out
    np.testing.assert_array_equal(out, data * 2)
    buffer = p.data
    assert np.multiply(p, 2.0, out=p) is p and p.data is buffer  # a Parameter written into stays itself
    np.testing.assert_array_equal(p.data, data * 2)
    assert np.allclose(p, p) and np.array_equal(p, p.data)
    quotient, remainder = np.divmod(p, 0.7, out=(None, Parameter(np.empty_like(data))))
    expected = np.divmod(data * 2, 0.7)
    assert type(quotient) is np.ndarray and type(remainder) is Parameter
    np.testing.assert_array_equal(quotient, expected[0])
    np.testing.assert_array_equal(remainder.data, expected[1])
    bare = p.data.copy()
    np.add.at(p, [0, 0], 1.0)  # unbuffered, in place
    np.add.at(bare, [0, 0], 1.0)
    np.testing.assert_array_equal(p.data, bare)
    assert p.data is buffer


def test_a_parameter_as_a_keyword_of_a_ufunc_is_its_data(pair):
    """A Parameter as where= (or out=) of a ufunc, a reduction or a NumPy function acts as its
    array there too (it recursed without end as where=)."""
    param, data = pair
    mask = data > 0
    where = Parameter(mask.copy())
    for x, m in ((param, where), (data, mask)):  # the same calls on the Parameters and on the arrays
        out = np.zeros((3, 4))
        np.add(x, 1.0, out=out, where=m)
        np.testing.assert_array_equal(out, np.add(data, 1.0, out=np.zeros((3, 4)), where=mask))
        assert np.sum(np.arange(12.0).reshape(3, 4), where=m) == np.sum(np.arange(12.0).reshape(3, 4), where=mask)
        assert np.add.reduce(x, axis=None, where=m) == np.add.reduce(data, axis=None, where=mask)
        assert np.max(x, where=m, initial=-5.0) == np.max(data, where=mask, initial=-5.0)
    target = Parameter(np.zeros((3, 4)))
    assert np.multiply(param, 2.0, out=target, where=where) is target
    np.testing.assert_array_equal(target.data, np.multiply(data, 2.0, out=np.zeros((3, 4)), where=mask))
    np.testing.assert_array_equal(param.data, data)


def test_a_parameter_written_as_a_functions_out_by_position_is_returned_itself():
    # as out= (and a ufunc's out, by either) returns it: np.clip(a, 0, 1, p) returned p.data
    p, a = Parameter(np.zeros(3)), np.array([-1.0, 0.5, 2.0])
    assert np.clip(a, 0, 1, p) is p and np.clip(a, 0, 1, out=p) is p
    assert np.cumsum(a, 0, None, p) is p
    np.testing.assert_array_equal(p.data, np.cumsum(a))
    q = Parameter(a.copy())
    assert type(np.clip(q, 0, 1)) is np.ndarray and np.clip(q, 0, 1, q) is q  # (the first argument: the input)
    np.testing.assert_array_equal(q.data, [0.0, 0.5, 1.0])


def test_hashable_by_identity():
    p, q = Parameter(np.zeros(3)), Parameter(np.zeros(3))
    assert len({p: 1, q: 2}) == 2 and hash(p) == object.__hash__(p)
    assert p in {p} and q not in {p}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickles_with_every_protocol(protocol):
    p = Parameter(np.arange(4.0, dtype=np.float32), grad=np.ones(4, dtype=np.float32))
    q = pickle.loads(pickle.dumps(p, protocol))
    assert type(q) is Parameter and q.data.dtype == np.float32
    np.testing.assert_array_equal(q.data, p.data)
    np.testing.assert_array_equal(q.grad, p.grad)
    r = pickle.loads(pickle.dumps(Parameter(np.zeros(2)), protocol))
    assert r.grad is None


class Named(Parameter):  # a subclass with an attribute of its own (a slot)
    __slots__ = ("name",)


class Tagged(Parameter):  # and one with a __dict__ (a class attribute gives the default)
    tag = None


class Described(Parameter):  # and one whose __init__ sets its own attribute (in its __dict__)
    def __init__(self, data, note):
        super().__init__(data)
        self.note = note


class Scaled(Parameter):  # and one whose property reads its gradient scaled (a slot's value kept apart)
    __slots__ = ("scale",)

    @property
    def grad(self):
        raw = Parameter.grad.__get__(self)
        return None if raw is None else raw * self.scale

    @grad.setter
    def grad(self, value):
        Parameter.grad.__set__(self, value)


class Labelled(Parameter):  # slots as Python also takes them: one named by a string, a private one
    __slots__ = "label"


class Secret(Named):
    __slots__ = ("__secret",)

    def keep(self, value):
        self.__secret = value

    def kept(self):
        return self.__secret


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_subclass_pickles_and_copies_as_itself(protocol):
    named, tagged = Named(np.arange(3.0), grad=np.ones(3)), Tagged(np.zeros(2))
    named.name, tagged.tag = "weight", 5
    for copier in (lambda p: pickle.loads(pickle.dumps(p, protocol)), copy.copy, copy.deepcopy):
        for p in (named, tagged, Named(np.zeros(1))):
            q = copier(p)
            assert type(q) is type(p) and not np.shares_memory(q.data, p.data)
            np.testing.assert_array_equal(q.data, p.data)
            assert getattr(q, "name", "unset") == getattr(p, "name", "unset")
            assert getattr(q, "tag", None) == getattr(p, "tag", None)
    assert copy.deepcopy(tagged).tag == 5 and copy.copy(named).grad is not named.grad
    labelled, secret, described = Labelled(np.ones(2)), Secret(np.ones(1)), Described(np.ones(1), "bias")
    assert described.note == "bias" and not hasattr(described.data, "note")
    labelled.label, secret.name = "bias", "scale"
    secret.keep(7)
    scaled = Scaled(np.zeros(2), grad=np.ones(2))
    scaled.scale = 10.0
    for copier in (lambda p: pickle.loads(pickle.dumps(p, protocol)), copy.copy, copy.deepcopy):
        assert copier(labelled).label == copier(described).note == "bias"
        assert copier(scaled).grad.tolist() == [10.0, 10.0]  # (each copy scaled it once more)
        assert (copier(secret).kept(), copier(secret).name) == (7, "scale")


def test_copies():
    data = np.arange(3.0)
    assert not np.shares_memory(copy.copy(data), data)  # the oracle: an array's copy.copy copies
    p = Parameter(data, grad=np.ones(3))
    for copied in (copy.copy(p), copy.deepcopy(p)):  # the gradient copied too: nothing shared
        assert type(copied) is Parameter
        assert not np.shares_memory(copied.data, p.data) and not np.shares_memory(copied.grad, p.grad)
        np.testing.assert_array_equal(copied.data, p.data)
        np.testing.assert_array_equal(copied.grad, p.grad)
    assert copy.copy(Parameter(data)).grad is None
    assert not hasattr(Parameter.__new__(Parameter), "shape")  # no data yet: no endless lookup


def outcome(function, *args):
    """What function(*args) gives, or the type of what it raises."""
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 (compared with the array's)
        return type(error)


@pytest.mark.parametrize("data", [np.array(2.567), np.array(-0.5, dtype=np.float32), np.array([1.234, 2.345]),
                                  np.arange(6.0).reshape(2, 3)])
def test_round_and_format_as_the_array(data):
    p = Parameter(data)
    for function, args in ((round, ()), (round, (1,)), (format, (".2f",)), (format, (">12",)),
                           (lambda x: f"{x:.3e}", ())):
        assert outcome(function, p, *args) == outcome(function, data, *args)
    assert format(p, "") == str(p) and f"{p}" == str(p)
    if data.ndim == 0:  # a 0-d array formats as its number
        assert f"{p:.2f}" == f"{float(data):.2f}"


def test_optimizers_still_step_it():
    """The step reads .data and .grad; arithmetic on a Parameter between steps changes its data
    in place, which the optimizer follows (the same array), as its torch counterpart does."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    start = rng.standard_normal(5)
    p = Parameter(start.copy())
    t = torch.nn.Parameter(torch.tensor(start.copy()))
    opt, topt = fastgd.Adam([p], lr=0.1), torch.optim.Adam([t], lr=0.1)
    for _ in range(3):
        grad = rng.standard_normal(5)
        p.grad, t.grad = grad, torch.tensor(grad)
        opt.step()
        topt.step()
        p *= 0.5
        with torch.no_grad():
            t *= 0.5
    np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12)
    assert isinstance(p, Parameter) and p.shape == (5,)


def test_setting_an_array_attribute_sets_the_datas():
    # as reading it: p.shape = ... reshapes the data in place (the optimizer follows a reshape)
    data = np.arange(6.0)
    p = Parameter(data, np.ones(6))
    p.shape = (2, 3)
    assert p.data is data and data.shape == (2, 3) and p.shape == (2, 3)
    with pytest.raises(ValueError, match="cannot reshape"):
        p.shape = (4, 2)  # NumPy's own refusal: 6 elements are not 8
    p.grad = None  # its own attributes stay its own
    assert p.grad is None and not hasattr(data, "grad")


def test_membership_and_equality_as_the_array():
    data = np.arange(6.0).reshape(2, 3)
    p = Parameter(data)
    for value in (2.0, 99.0, np.array([3.0, 4.0, 5.0]), np.array([0.0, 1.0, 9.0]), Parameter(np.array(1.0))):
        assert (value in p) == (value in data)
    assert (3.0 in Parameter(np.array(3.0))) == (3.0 in np.array(3.0))
    for other in ("auto", b"x", None, 2.0, data, Parameter(data.copy())):
        for op in (operator.eq, operator.ne):
            np.testing.assert_array_equal(op(p, other), op(data, other if not isinstance(other, Parameter)
                                                          else other.data))


def test_data_is_set_as_the_constructor_takes_it():
    # torch's p.data = q takes q's data; a list or a NumPy scalar becomes an array, as the constructor
    # makes them (a 0-d one stays 0-d, as torch's tensor: p.data * 0.5 is a NumPy scalar)
    p, q = Parameter(np.array(2.0)), Parameter(np.arange(3.0))
    p.data = p.data * 0.5
    assert type(p.data) is np.ndarray and p.data.shape == () and float(np.asarray(p)) == 1.0
    p.data = q
    assert p.data is q.data
    p.data = p
    assert p.data is q.data and repr(p) == repr(q)
    p.data = [1.0, 2.0]
    assert type(p.data) is np.ndarray and np.asarray(p).tolist() == [1.0, 2.0]
    opt = fastgd.SGD([p], lr=0.5)
    p.grad = np.ones(2)
    opt.step()
    assert np.asarray(p).tolist() == [0.5, 1.5]


@pytest.mark.parametrize("data", [None, "x", {}, [1.0, "a"], np.array(["a"]), np.zeros(2, dtype=object)])
def test_data_not_of_numbers_is_refused_where_it_is_set(data):
    # as torch refuses p.data = None (and a Parameter of it) at once: here the object array
    # np.asarray made of it was kept, and refused at the optimizer's next step as "parameter 0 (shape (),
    # dtype object)", naming neither the assignment nor what was given
    torch = pytest.importorskip("torch")
    with pytest.raises((TypeError, ValueError, RuntimeError)):  # (what torch makes a tensor of: numbers alone)
        torch.as_tensor(data)
    assert torch.as_tensor([1.0, 2.0]) is not None and Parameter([1.0, 2.0]).data.tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match=r"^a Parameter's data must be an array of numbers .*dtype (object|<U)"):
        Parameter(data)
    p = Parameter(np.zeros(2))
    before = p.data
    with pytest.raises(TypeError, match=r"^a Parameter's data must be an array of numbers"):
        p.data = data
    assert p.data is before


@pytest.mark.parametrize("grad", [5, 0.5, [1.0, 2.0], np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.float16),
                                  "g"])
def test_a_gradient_a_step_cannot_read_is_refused_where_it_is_set(grad):
    # torch refuses p.grad = 5 at once; here it was kept and refused at the next step.  The
    # oracle of what a step reads: the optimizer's own step(grads), which refuses each
    # (torch's own setter is none: it refuses every NumPy array)
    with pytest.raises(TypeError):
        fastgd.SGD([np.zeros(2)], lr=0.1).step([grad])
    p = Parameter(np.zeros(2), grad=np.ones(2))
    before = p.grad
    with pytest.raises(TypeError, match=r"^a Parameter's grad"):
        p.grad = grad
    assert p.grad is before
    with pytest.raises(TypeError, match=r"^a Parameter's grad"):
        Parameter(np.zeros(2), grad=grad)


def test_a_gradient_a_step_reads_is_taken_where_it_is_set():
    # a float32 or float64 array of any layout (converted by the step), or a NumPy float (a reduction's result)
    p = Parameter(np.zeros(2))
    strided = np.ones(4)[::2]
    p.grad = strided
    assert p.grad is strided
    scalar = Parameter(np.float64(0.0))
    scalar.grad = np.float64(0.5)
    assert type(scalar.grad) is np.ndarray and scalar.grad.shape == () and scalar.grad == 0.5
    # of another shape than the data: refused there, as torch's ("assigned grad has data of a
    # different size"), not at the next step (a NumPy float for a (2,) parameter was taken)
    for wrong in (np.ones((7, 2)), np.ones(3), np.float64(0.5)):
        with pytest.raises(ValueError, match=r"grad must have its data's shape \(2,\), got shape"):
            p.grad = wrong
        assert p.grad is strided
    p.grad = None
    assert p.grad is None


def test_a_numpy_function_returns_the_parameter_it_wrote_into():
    # as a ufunc's out= and as NumPy's own functions return their out array
    data = np.array([-1.0, 0.5, 2.0])
    p = Parameter(np.zeros(3))
    for function, args in ((np.clip, (data, 0, 1)), (np.cumsum, (data,)), (np.dot, (np.eye(3), data))):
        expected = np.zeros(3)
        assert function(*args, out=expected) is expected  # the oracle
        assert function(*args, out=p) is p
        np.testing.assert_array_equal(p.data, expected)


@pytest.mark.parametrize("wrap", [lambda *items: collections.namedtuple("Pair", "w b")(*items),
                                  lambda *items: collections.deque(items),
                                  lambda *items: type("Items", (list,), {})(items)])
@pytest.mark.parametrize("func", [np.concatenate, np.stack, np.vstack, np.column_stack])
def test_numpy_functions_take_parameters_in_any_sequence(wrap, func):
    # Parameters in a deque, a namedtuple or a list subclass came back to __array_function__
    # as they were, which called the function again: RecursionError, where arrays work
    first, second = np.arange(3.0), np.arange(3.0, 6.0)
    expected = func(wrap(first, second))
    np.testing.assert_array_equal(func(wrap(Parameter(first), Parameter(second))), expected)
    np.testing.assert_array_equal(func(wrap(Parameter(first), second)), expected)
    if func is np.concatenate:
        out = Parameter(np.zeros(6))
        assert np.concatenate(wrap(Parameter(first), Parameter(second)), out=out) is out
        np.testing.assert_array_equal(out.data, expected)


def test_numpy_functions_refuse_what_they_refuse_for_arrays():
    with pytest.raises(TypeError, match="needs to be a sequence"):
        np.concatenate({0: np.ones(2)}.values())
    with pytest.raises(TypeError, match="needs to be a sequence"):  # (was a RecursionError)
        np.concatenate({0: Parameter(np.ones(2))}.values())


def test_del_grad_clears_it_as_torchs():
    torch = pytest.importorskip("torch")
    tensor = torch.nn.Parameter(torch.ones(2))
    tensor.grad = torch.ones(2)
    del tensor.grad
    assert tensor.grad is None
    param = Parameter(np.ones(2), grad=np.ones(2))
    opt = fastgd.SGD([param], lr=0.1)
    del param.grad
    assert param.grad is None
    opt.step()  # (a parameter without a gradient is skipped: it raised AttributeError)
    np.testing.assert_array_equal(param.data, np.ones(2))
    assert pickle.loads(pickle.dumps(param)).grad is None


def test_weak_references_as_to_an_array():
    param = Parameter(np.ones(3))
    cache = weakref.WeakValueDictionary({"w": param})
    assert weakref.ref(param)() is param and cache["w"] is param
    del param
    gc.collect()
    assert len(cache) == 0
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert weakref.ref(pickle.loads(pickle.dumps(Parameter(np.ones(2)), protocol)))


def test_dlpack_and_the_array_namespace_are_the_datas():
    param = Parameter(np.arange(3.0))
    assert np.shares_memory(np.from_dlpack(param), param.data)
    assert param.__array_namespace__() is np.ones(1).__array_namespace__()
    assert np.asarray(param) is param.data  # (not through the array interface, which would make a view)
    torch = pytest.importorskip("torch")
    tensor = torch.as_tensor(param)
    tensor[0] = 5.0
    assert param.data[0] == 5.0  # shared, as torch.as_tensor(array) shares it (it copied, element by element)


class _Cached(Parameter):
    """A subclass with a lock it does not pickle, as its __getstate__ and __setstate__ say."""
    __slots__ = ("cache",)

    def __getstate__(self):
        return {"data": self.data, "grad": self.grad}

    def __setstate__(self, state):
        self.data, self.grad, self.cache = state["data"], state["grad"], None


def test_a_subclass_pickles_as_its_getstate_says():
    import threading
    param = _Cached(np.arange(3.0), grad=np.ones(3))
    param.cache = threading.Lock()
    copies = [pickle.loads(pickle.dumps(param, protocol)) for protocol in range(pickle.HIGHEST_PROTOCOL + 1)]
    for made in copies + [copy.deepcopy(param), copy.copy(param)]:  # (each raised "cannot pickle '_thread.lock'")
        assert type(made) is _Cached and made.cache is None
        np.testing.assert_array_equal(made.data, param.data)
        np.testing.assert_array_equal(made.grad, param.grad)


def test_dir_lists_the_arrays_attributes():
    listed = dir(Parameter(np.ones(2)))
    assert {"shape", "dtype", "T", "sum", "data", "grad"} <= set(listed)


class _Duck:
    """An array type of another library: NumPy hands it the functions it is given to."""

    def __array_function__(self, func, types, args, kwargs):
        return "handled by the duck"


def test_a_nested_call_of_the_same_function_dispatches_as_usual():
    # the guard against a call coming back to a Parameter took any call of the same function in
    # the same thread, from a callback, for it: another array type's dispatch was skipped
    param = Parameter(np.ones(2))
    assert np.piecewise(param, [_Duck()], [0.0]) == "handled by the duck"
    inner = []

    def piece(x):
        inner.append(np.piecewise(param, [_Duck()], [0.0]))
        return x

    np.piecewise(Parameter(np.ones(2)), [np.array([True, False])], [piece, 0.0])
    assert inner == ["handled by the duck"]


def test_dir_of_a_parameter_without_data_yet():
    assert "grad" in dir(Parameter.__new__(Parameter))  # (while unpickling: it raised AttributeError)


def _outcome(expression, operand):
    """What expression(operand) gives: its value (as an array, with its type and dtype) and what it
    left in operand's array, or the error it raised (its type and message)."""
    try:
        result = expression(operand)
    except Exception as error:  # noqa: BLE001 (the oracle's error is compared, whatever it is)
        return type(error), str(error)
    if isinstance(result, Parameter):  # an in-place operator's: itself
        result = result.data
    dense = result.toarray() if hasattr(result, "toarray") else np.asarray(result)
    # (repr: NaN equal to NaN, -0.0 apart from 0.0)
    return type(result), dense.dtype, repr(dense.tolist()), repr(np.asarray(operand).tolist())


def test_operators_are_the_datas_own():
    # operators were NumPy's NDArrayOperatorsMixin's ufuncs, not the array's own: an np.matrix's
    # * and ** were element-wise (*= wrote that into the data); a scipy.sparse operand made an object
    # array or raised (the array defers to it); p @= v with a 1-d v broadcast into p, where the array
    # refuses it; float16 ** 0.5 of -0.0 and -inf and bool ** 2's dtype differed (the array's
    # shortcuts); pow(p, 2, 3) named the mixin's function
    import scipy.sparse as sp

    matrix = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    row, sparse = np.array([[1.0, 2.0, 3.0]]), sp.csr_matrix(np.diag([1.0, 2.0, 3.0]))
    cases = [
        (matrix, lambda x: x * x), (matrix, lambda x: x ** 2), (matrix, lambda x: operator.imul(x, matrix)),
        (row, lambda x: x * sparse), (row, lambda x: x @ sparse), (row, lambda x: x + sparse),
        (row, lambda x: x < sparse), (row, lambda x: operator.iadd(x, sparse)),
        (np.ones(3), lambda x: operator.imatmul(x, np.ones(3))), (np.eye(3), lambda x: operator.imatmul(x, np.ones(3))),
        (np.ones(3), lambda x: operator.imatmul(x, np.eye(3) * 2)),
        (np.array([-0.0, -np.inf, 4.0], np.float16), lambda x: x ** 0.5),
        (np.array([True, False]), lambda x: x ** 2), (np.arange(3.0), lambda x: pow(x, 2, 3)),
        (np.arange(3.0), lambda x: 2 ** x), (np.arange(1.0, 4.0), lambda x: divmod(7, x)),
        (np.arange(3), lambda x: operator.ilshift(x, 1)), (np.arange(3), lambda x: ~x),
        (np.arange(-1.0, 2.0), lambda x: abs(-x)),
    ]
    for data, expression in cases:
        expected = _outcome(expression, data.copy())
        assert _outcome(expression, Parameter(data.copy())) == expected, (data, expected)


def test_del_data_is_refused():
    p = Parameter(np.zeros(2))
    with pytest.raises(AttributeError, match="data cannot be deleted"):
        del p.data  # (was taken: every later use of p raised "no attribute 'data'")
    np.testing.assert_array_equal(p + 1, [1.0, 1.0])
