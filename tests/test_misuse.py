"""What a user, or another thread, can do to an optimizer, and what each gets: a clear error
(after which nothing has changed and the optimizer goes on exactly as one that never saw the
call) or behaviour defined as torch.optim defines it.

Oracles: torch.optim (for-loop implementation) where torch defines the behaviour, and an
optimizer driven from one thread (or never given the bad call) for the rest.
"""
import hashlib
import re
import threading
import time
import warnings

import numpy as np
import pytest

import fastgd
import fastgd.optim
from conftest import (
    DTYPES,
    NAMES,
    OPTIONS,
    STATE_NAMES,
    ReentrantParameter,
    assert_all_close,
    assert_state_dicts_equal,
    assert_unchanged,
    build,
    build_torch,
    compare_state_with_torch,
    fast_cls,
    random_arrays,
    snapshot,
    torch_numpy,
    torch_step,
)
from test_errors import FULL_OPTIONS, good_grads, stepped

F = fastgd.functional


def dtype_id(dtype):
    return np.dtype(dtype).name


dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)


def assert_same_parameters(params, twin_params):
    for i, (p, q) in enumerate(zip(params, twin_params)):
        assert p.dtype == q.dtype and np.array_equal(p, q), f"parameter {i} differs from the twin's"


def existing_state_names(opt, index):
    return [key for key, value in opt.state_dict()["state"].get(index, {}).items() if isinstance(value, np.ndarray)]


# -- threads ------------------------------------------------------------------------------------

#: elements of the large parameter (float64, 16 MB): a step takes milliseconds, so calls overlap
BIG = 2**21
#: the same for the races of a step with load_state_dict / add_param_group (4 MB: their checks copy it often)
MEDIUM = 2**19
TRIES = 30
CALLERS = 3
#: the contract's messages: a step refused because another step (or a change) of the optimizer is under way
STEP_BUSY = re.compile("another call is changing this")
CHANGE_BUSY = re.compile("another call is changing this|running")
#: a step racing load_state_dict / add_param_group may also be refused because the optimizer changed under it
STEP_DURING_CHANGE = re.compile("another call is changing this|running|changed")

CONCURRENT = [
    pytest.param("SGD", {"lr": 0.01, "momentum": 0.9}, {}, id="SGD-momentum"),
    # AMSGrad switched on after construction: its state array is created by the first step
    pytest.param("Adam", {"lr": 0.01}, {"amsgrad": True}, id="Adam-amsgrad-switched-on"),
    pytest.param("Adagrad", {"lr": 0.1}, {}, id="Adagrad"),
    pytest.param("RMSprop", {"centered": True, "momentum": 0.5}, {}, id="RMSprop-centered-momentum"),
]


def race(calls, timeout=60):
    """Run each function of `calls` on a thread of its own, released together; returns
    ("ok", result) or ("raised", exception) for each."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(k):
        barrier.wait()
        try:
            results[k] = ("ok", calls[k]())
        except BaseException as error:  # noqa: BLE001 - reported to the test
            results[k] = ("raised", error)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a call did not return (deadlock?)"
    return results


def digest_of(arrays, digest=None):
    """A digest of the arrays' bytes (read in place, not copied)."""
    digest = digest or hashlib.sha1()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    return digest


def fingerprint(opt, params):
    """A digest of the parameters' bytes, the number of param groups and every entry of the
    state dict: equal digests mean bit-identical optimizers."""
    digest = digest_of(params)
    digest.update(repr(len(opt.param_groups)).encode())
    state = opt.state_dict()["state"]
    for i in sorted(state):
        for key in sorted(state[i]):
            value = state[i][key]
            digest.update(f"{i}/{key}/".encode())
            if isinstance(value, np.ndarray):
                digest_of([value], digest)
            else:
                digest.update(repr(value).encode())
    return digest.hexdigest()


def big_problem(name, kwargs, seed, size):
    """make() -> (a fresh optimizer, its parameters) over a large and a small parameter; and the
    gradients every step uses."""
    rng = np.random.default_rng(seed)
    starts = [rng.standard_normal(size), rng.standard_normal((3, 2))]
    grads = [rng.standard_normal(size), rng.standard_normal((3, 2))]

    def make():
        params = [s.copy() for s in starts]
        return fast_cls(name)(params, **kwargs), params

    return make, grads


def check_step_outcomes(results):
    """Every step completed or was refused with RuntimeError saying another step is under way;
    returns how many completed."""
    completed = 0
    for kind, value in results:
        if kind == "ok":
            completed += 1
        else:
            assert isinstance(value, RuntimeError) and STEP_BUSY.search(str(value)), \
                f"a concurrent step raised {type(value).__name__}: {value}"
    return completed


#: every this many attempts the whole state dict is compared too (copying it is what costs)
FULL_CHECK_EVERY = 5


@pytest.mark.parametrize(("name", "kwargs", "switched"), CONCURRENT)
def test_concurrent_steps_complete_or_are_refused(name, kwargs, switched):
    """Threads calling step() on one optimizer at once, the first step among them: each call
    completes or raises RuntimeError ("another call is changing this ..."); the result is bit for bit that of one thread
    making as many steps as completed (every step has the same gradients, so order cannot matter).
    One more step from a single thread follows, so that state spoiled by the race shows in the
    parameters, which are compared every time; the whole state dict is compared now and then."""
    rng = np.random.default_rng(1)
    starts = [rng.standard_normal(BIG), rng.standard_normal((3, 2))]
    grads = [rng.standard_normal(BIG), rng.standard_normal((3, 2))]
    params = [s.copy() for s in starts]  # refilled for every attempt: fresh pages cost more than the steps

    def make():
        for p, s in zip(params, starts):
            p[...] = s
        opt = fast_cls(name)(params, **kwargs)
        opt.param_groups[0].update(switched)
        return opt

    reference = make()
    expected_params, expected_all = [], []
    for count in range(2 * CALLERS + 2):
        if count:
            reference.step(grads)
        expected_params.append(digest_of(params).hexdigest())
        expected_all.append(fingerprint(reference, params))
    for attempt in range(TRIES):
        opt = make()
        completed = 0
        for round_ in range(2):  # the first step (state created), then steps on existing state
            completed += check_step_outcomes(race([lambda: opt.step(grads)] * CALLERS))
            assert completed >= round_ + 1, f"attempt {attempt}: no step of round {round_} completed"
        what = f"attempt {attempt}: {completed} steps completed, but the optimizer is not that of {completed} steps"
        if attempt % FULL_CHECK_EVERY == 0:
            assert fingerprint(opt, params) == expected_all[completed], what
        opt.step(grads)
        assert digest_of(params).hexdigest() == expected_params[completed + 1], what + " (seen one step later)"


#: the load_state_dict / add_param_group thread waits this long (cycled over the attempts) after the
#: step's thread is released, to land before, during and after the step
DELAYS = (0.0, 0.00025, 0.0005, 0.001, 0.002, 0.004)

CHANGERS = [
    pytest.param("Adam", {"lr": 0.01, "amsgrad": True}, id="Adam-amsgrad"),
    pytest.param("SGD", {"lr": 0.01, "momentum": 0.9}, id="SGD-momentum"),
]


def classify(kind, value, allowed, what):
    """ "ok", "busy" (RuntimeError matching `allowed`) or, for a step, "count" (the ValueError of a
    step given gradients for fewer parameters than a group added meanwhile)."""
    if kind == "ok":
        return "ok"
    if isinstance(value, RuntimeError) and allowed.search(str(value)):
        return "busy"
    if what == "step" and isinstance(value, ValueError) and "gradients for" in str(value):
        return "count"
    pytest.fail(f"{what} raised {type(value).__name__}: {value}")


@pytest.mark.parametrize(("name", "kwargs"), CHANGERS)
def test_load_state_dict_while_a_step_runs(name, kwargs):
    """load_state_dict from another thread while a step runs completes before or after the step, or
    raises RuntimeError ("another call is changing this ..."/"running"): the optimizer is then one of those single-threaded
    orders give, and goes on as that one does."""
    make, grads = big_problem(name, kwargs, seed=2, size=MEDIUM)
    other, _ = make()
    for k in range(3):
        other.step([g * (k + 2) for g in grads])
    saved = other.state_dict()

    def ready():
        opt, params = make()
        opt.step(grads)  # state exists
        return opt, params

    def single(*ops):
        opt, params = ready()
        for op in ops:
            op(opt)
        now = fingerprint(opt, params)
        opt.step(grads)
        return now, fingerprint(opt, params)

    def step(opt):
        opt.step(grads)

    def load(opt):
        opt.load_state_dict(saved)

    orders = {
        ("ok", "ok"): [single(step, load), single(load, step)],
        ("ok", "busy"): [single(step)],
        ("busy", "ok"): [single(load)],
        ("busy", "busy"): [single()],
    }
    for attempt in range(TRIES):
        opt, params = ready()
        delay = DELAYS[attempt % len(DELAYS)]
        results = race([lambda: opt.step(grads), lambda: (time.sleep(delay), opt.load_state_dict(saved))])
        outcome = (classify(*results[0], STEP_DURING_CHANGE, "step"),
                   classify(*results[1], CHANGE_BUSY, "load_state_dict"))
        assert outcome in orders, f"attempt {attempt}: outcome {outcome}"
        now = fingerprint(opt, params)
        matches = [after for before, after in orders[outcome] if before == now]
        assert matches, f"attempt {attempt} ({outcome}): the optimizer is in none of the states a single thread reaches"
        opt.step(grads)
        assert fingerprint(opt, params) in matches, f"attempt {attempt}: the next step differs"


@pytest.mark.parametrize(("name", "kwargs"), CHANGERS)
def test_add_param_group_while_a_step_runs(name, kwargs):
    """add_param_group from another thread while a step runs completes before the step (which then
    has gradients for too few parameters: ValueError) or after it, or raises RuntimeError; the
    optimizer is then one of those single-threaded orders give, and goes on as that one does."""
    make, grads = big_problem(name, kwargs, seed=3, size=MEDIUM)

    def ready():
        opt, params = make()
        opt.step(grads)
        return opt, params, np.ones(5)

    def fingerprint_all(opt, params, added):
        return fingerprint(opt, params + ([added] if len(opt.param_groups) == 2 else []))

    def go_on(opt):
        opt.step(grads + ([np.full(5, 0.5)] if len(opt.param_groups) == 2 else []))

    def single(*ops):
        opt, params, added = ready()
        for op in ops:
            if op == "step":
                opt.step(grads)
            else:
                opt.add_param_group({"params": [added]})
        now = fingerprint_all(opt, params, added)
        go_on(opt)
        return now, fingerprint_all(opt, params, added)

    orders = {
        ("ok", "ok"): [single("step", "add")],
        ("count", "ok"): [single("add")],
        ("busy", "ok"): [single("add")],
        ("ok", "busy"): [single("step")],
        ("busy", "busy"): [single()],
    }
    for attempt in range(TRIES):
        opt, params, added = ready()
        delay = DELAYS[attempt % len(DELAYS)]
        results = race([lambda: opt.step(grads),
                        lambda: (time.sleep(delay), opt.add_param_group({"params": [added]}))])
        outcome = (classify(*results[0], STEP_DURING_CHANGE, "step"),
                   classify(*results[1], CHANGE_BUSY, "add_param_group"))
        assert outcome in orders, f"attempt {attempt}: outcome {outcome}"
        now = fingerprint_all(opt, params, added)
        matches = [after for before, after in orders[outcome] if before == now]
        assert matches, f"attempt {attempt} ({outcome}): the optimizer is in none of the states a single thread reaches"
        go_on(opt)
        assert fingerprint_all(opt, params, added) in matches, f"attempt {attempt}: the next step differs"


# -- a gradient that shares memory with what the step writes ---------------------------------------


class HookedRate(float):
    """An lr whose reading (float()) calls a hook once: user code run by the step's gathering."""

    hook = None

    def __float__(self):
        hook, HookedRate.hook = HookedRate.hook, None
        if hook is not None:
            hook()
        return float.__float__(self)


@pytest.mark.parametrize("reader", ["data", "lr"])
@pytest.mark.parametrize("edit", ["clear the group's params", "drop the later groups"])
def test_user_code_in_the_gathering_that_edits_param_groups(reader, edit):
    # the compiled step read the lists it had checked at their old lengths after a Parameter
    # subclass's .data property or an option's __float__ shrank them: a segfault or a
    # use-after-free (found under AddressSanitizer)
    first = ReentrantParameter(np.zeros(64))
    opt = fastgd.SGD([{"params": [first, np.zeros(64)]}, {"params": [np.zeros(64)]}, {"params": [np.zeros(64)]}],
                     lr=0.1)
    grads = [np.ones(64)] * 4
    opt.step(grads)  # the compiled plan is made
    starts = [np.array(p, copy=True) for group in opt.param_groups for p in group["params"]]
    call = {"clear the group's params": lambda: opt.param_groups[0]["params"].clear(),
            "drop the later groups": lambda: opt.param_groups.__delitem__(slice(1, None))}[edit]
    if reader == "data":
        first.arm("data", call)
    else:
        HookedRate.hook = call
        opt.param_groups[0]["lr"] = HookedRate(0.2)  # a value of a new kind: read by float()
    try:
        opt.step(grads)
    except ValueError as error:  # the edit followed: the gradients no longer fit
        assert "gradients for" in str(error)
        for p, start in zip([first.data] + [p for g in opt.param_groups for p in g["params"]][1:], starts):
            np.testing.assert_array_equal(p, start)
    finally:
        HookedRate.hook = None
    remaining = [p for group in opt.param_groups for p in group["params"]]
    opt.step([np.ones(64)] * len(remaining))  # and the optimizer steps on with the groups as they are


@pytest.mark.parametrize("name", NAMES)
def test_gradient_sharing_memory_with_its_parameter(name):
    """A gradient overlapping its parameter (or the parameter itself) is refused: the kernels would
    read what they write."""
    buf = np.arange(11.0)
    p = buf[1:]  # a writable C-contiguous view: a valid parameter
    assert p.flags.c_contiguous and p.flags.writeable
    other = np.ones(3)
    opt = fast_cls(name)([p, other], **FULL_OPTIONS[name])
    twin_params = [np.arange(11.0)[1:].copy(), np.ones(3)]
    twin = fast_cls(name)(twin_params, **FULL_OPTIONS[name])
    grads = [np.linspace(-1, 1, 10), np.full(3, 0.5)]
    opt.step(grads)
    twin.step(grads)
    snap = snapshot(opt, [buf, other])
    for label, grad in (("overlapping", buf[:-1]), ("the-parameter", p), ("a-view-of-it", p.reshape(10))):
        before = grad.copy()
        with pytest.raises(ValueError, match="shares memory"):
            opt.step([grad, np.full(3, 0.5)])
        assert_unchanged(opt, [buf, other], snap)
        assert np.array_equal(grad, before), label
    opt.step(grads)
    twin.step(grads)
    assert_same_parameters([p, other], twin_params)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_grad_that_is_its_data(name):
    holders = [fastgd.Parameter(np.linspace(0, 1, 4)), fastgd.Parameter(np.ones(2))]
    opt = fast_cls(name)(holders, **FULL_OPTIONS[name])
    holders[0].grad, holders[1].grad = np.ones(4), np.ones(2)
    opt.step()
    data = [h.data for h in holders]
    snap = snapshot(opt, data)
    holders[0].grad = holders[0].data
    with pytest.raises(ValueError, match="shares memory"):
        opt.step()
    assert_unchanged(opt, data, snap)


def test_functional_gradient_that_is_a_state_array_or_the_parameter():
    """fastgd.functional takes the state arrays from the caller: a gradient that is one of them, or
    the parameter, is refused and nothing changes."""
    rng = np.random.default_rng(4)
    p = rng.standard_normal(5)
    exp_avg, exp_avg_sq = rng.standard_normal(5), rng.random(5)
    state_sum = rng.random(5)
    arrays = [p, exp_avg, exp_avg_sq, state_sum]
    before = [a.copy() for a in arrays]
    calls = [
        ("adam-grad-is-exp_avg", lambda: F.adam(p, exp_avg, exp_avg, exp_avg_sq, step=2)),
        ("adam-grad-is-exp_avg_sq", lambda: F.adam(p, exp_avg_sq, exp_avg, exp_avg_sq, step=2)),
        ("adam-grad-is-param", lambda: F.adam(p, p, exp_avg, exp_avg_sq, step=2)),
        ("adagrad-grad-is-sum", lambda: F.adagrad(p, state_sum, state_sum, step=2)),
        ("sgd-grad-is-param", lambda: F.sgd(p, p, lr=0.1)),
        ("sgd-grad-overlaps-param", lambda: F.sgd(p[1:], p[:-1], lr=0.1)),
    ]
    for label, call in calls:
        with pytest.raises(ValueError, match="shares memory"):
            call()
        for a, b in zip(arrays, before):
            assert np.array_equal(a, b), label


# -- masked arrays ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_masked_gradient_is_refused(name):
    """A masked array's mask would be silently dropped: TypeError naming it, nothing changed."""
    opt, params = stepped(name)
    twin, twin_params = stepped(name)
    grads = good_grads(params)
    bad = list(grads)
    bad[2] = np.ma.masked_array(grads[2], mask=[True, False, False, True])
    snap = snapshot(opt, params)
    with pytest.raises(TypeError, match="masked"):
        opt.step(bad)
    assert_unchanged(opt, params, snap)
    unmasked = list(grads)
    unmasked[0] = np.ma.masked_array(grads[0])  # a masked array with nothing masked is still one
    with pytest.raises(TypeError, match="masked"):
        opt.step(unmasked)
    assert_unchanged(opt, params, snap)
    opt.step(grads)
    twin.step(grads)
    assert_same_parameters(params, twin_params)


def test_masked_gradient_is_refused_by_functional():
    p = np.zeros(4)
    with pytest.raises(TypeError, match="masked"):
        F.sgd(p, np.ma.masked_array(np.ones(4), mask=[False, True, False, False]), lr=0.1)
    assert np.array_equal(p, np.zeros(4))


# -- n_threads -------------------------------------------------------------------------------------


def test_max_threads_is_a_positive_int():
    assert type(fastgd.optim.MAX_THREADS) is int and fastgd.optim.MAX_THREADS >= 1


@pytest.mark.parametrize("name", NAMES)
def test_huge_n_threads_is_refused(name):
    with pytest.raises(ValueError, match="n_threads"):
        fast_cls(name)([np.zeros(3)], n_threads=2**40)


@pytest.mark.parametrize("name", NAMES)
def test_n_threads_above_the_maximum_is_refused(name):
    with pytest.raises(ValueError, match="n_threads"):
        fast_cls(name)([np.zeros(3)], n_threads=fastgd.optim.MAX_THREADS + 1)


@pytest.mark.parametrize("name", NAMES)
def test_n_threads_at_the_maximum_steps_as_one_thread_does(name):
    """The largest accepted n_threads works, and gives the bits of one thread."""
    rng = np.random.default_rng(5)
    starts = [rng.standard_normal(10_000), rng.standard_normal((3, 3))]
    results = []
    for n_threads in (fastgd.optim.MAX_THREADS, 1):
        params = [s.copy() for s in starts]
        opt = fast_cls(name)(params, n_threads=n_threads, **OPTIONS[name][-1])
        assert opt.n_threads == n_threads
        for k in range(3):
            opt.step([np.full(s.shape, 0.1 * (k + 1)) for s in starts])
        results.append(params)
    assert_same_parameters(*results)


@pytest.mark.parametrize("name", NAMES)
def test_n_threads_assigned_after_construction_is_checked(name):
    """opt.n_threads = bad raises as the constructor does (ValueError out of range, TypeError not
    a whole number) and keeps the old value."""
    p = np.zeros(3)
    opt = fast_cls(name)([p], n_threads=2)
    for bad in (2**40, 0, -1, True, 1.5, "2", getattr(fastgd.optim, "MAX_THREADS", 2**40) + 1):
        with pytest.raises(TypeError if isinstance(bad, (bool, float, str)) else ValueError, match="n_threads"):
            opt.n_threads = bad
        assert opt.n_threads == 2 and type(opt.n_threads) is int
    limit = fastgd.optim.MAX_THREADS
    for good in (None, 1, limit):
        opt.n_threads = good
        assert opt.n_threads == good
    opt.step([np.ones(3)])
    assert not np.array_equal(p, np.zeros(3))


# -- a param-group option deleted -------------------------------------------------------------------


@pytest.mark.parametrize("group_index", [0, 1], ids=["group0", "group1"])
@pytest.mark.parametrize("name", NAMES)
def test_deleted_option_is_named(name, group_index):
    """Deleting any of the optimizer's options from a param group makes the next step raise
    ValueError naming it; nothing changes; put back, the optimizer goes on as before."""
    opt, params = stepped(name)
    twin, twin_params = stepped(name)
    grads = good_grads(params)
    options = sorted(opt.defaults)
    assert options
    for option in options:
        snap = snapshot(opt, params)
        value = opt.param_groups[group_index].pop(option)
        with pytest.raises(ValueError, match=f"'{option}'"):
            opt.step(grads)
        assert_unchanged(opt, params, snap, compare_groups=False)
        opt.param_groups[group_index][option] = value
        assert_unchanged(opt, params, snap)
    opt.step(grads)
    twin.step(grads)
    assert_same_parameters(params, twin_params)


# -- a param group's list of parameters edited (torch honours it) -------------------------------------

START_SHAPES = [(4,), (2, 3)]

#: how the list is edited: (label, edit(group, new entries)); new entries get state of their own,
#: kept entries keep theirs (torch keys state by the tensor)
EDITS = {
    "replaced": lambda group, new: group.__setitem__("params", [new[0], new[1]]),
    "item-replaced": lambda group, new: group["params"].__setitem__(0, new[2]),  # same shape: fresh state all the same
    "appended": lambda group, new: group["params"].append(new[0]),
    "reversed": lambda group, new: group["params"].reverse(),
}
NEW_SHAPES = [(5,), (), (4,)]


@dtypes
@pytest.mark.parametrize("edit", list(EDITS))
@pytest.mark.parametrize("name", NAMES)
def test_edited_params_list_is_honoured_as_torch_does(name, edit, dtype, rng):
    torch = pytest.importorskip("torch")
    kwargs = OPTIONS[name][-1]
    groups = [(random_arrays(rng, START_SHAPES, dtype), {})]
    fopt, fparams = build(fast_cls(name), groups, kwargs)
    topt, tparams = build_torch(torch, name, groups, kwargs)
    for _ in range(3):
        grads = random_arrays(rng, START_SHAPES, dtype)
        fopt.step(grads)
        torch_step(torch, topt, tparams, grads)
    new = random_arrays(rng, NEW_SHAPES, dtype)
    EDITS[edit](fopt.param_groups[0], [a.copy() for a in new])
    EDITS[edit](topt.param_groups[0], [torch.tensor(a.copy(), requires_grad=True) for a in new])
    fcurrent, tcurrent = list(fopt.param_groups[0]["params"]), list(topt.param_groups[0]["params"])
    dropped = [p for p in fparams if not any(p is q for q in fcurrent)]
    dropped_before = [p.copy() for p in dropped]
    for _ in range(4):
        grads = random_arrays(rng, [p.shape for p in fcurrent], dtype)
        fopt.step(grads)
        torch_step(torch, topt, tcurrent, grads)
    assert_all_close(fcurrent, torch_numpy(tcurrent))
    compare_state_with_torch(fopt, topt, tcurrent)
    assert fopt.state_dict()["param_groups"][0]["params"] == list(range(len(fcurrent)))
    for p, before in zip(dropped, dropped_before):
        assert np.array_equal(p, before), "an array no longer in the param group was updated"


def bad_list_cases():
    def read_only(shape):
        a = np.zeros(shape)
        a.flags.writeable = False
        return a

    return [
        pytest.param(lambda ps: [[1.0, 2.0, 3.0, 4.0], ps[1]], [(4,), (2, 3)], TypeError,
                     r"parameter 0 is a list", id="python-list"),
        pytest.param(lambda ps: [ps[0], np.zeros((2, 3), dtype=np.int64)], [(4,), (2, 3)], TypeError,
                     r"parameter 1 \(shape \(2, 3\), dtype int64\) has an unsupported dtype", id="int-array"),
        pytest.param(lambda ps: [ps[0], read_only((2, 3))], [(4,), (2, 3)], ValueError,
                     r"parameter 1 \(shape \(2, 3\), dtype float64\) is read-only", id="read-only"),
        pytest.param(lambda ps: [ps[0], ps[0]], [(4,), (4,)], ValueError,
                     r"parameter 1 shares memory with parameter 0", id="given-twice"),
        pytest.param(lambda ps: [ps[0], EMPTY, EMPTY], [(4,), (0,), (0,)], ValueError,
                     r"parameter 2 is parameter 1 \(shape \(0,\), dtype float64\)", id="empty-given-twice"),
    ]


EMPTY = np.zeros(0)


@pytest.mark.parametrize("name", NAMES)
def test_an_array_of_no_elements_given_twice_is_refused(name):
    # the overlap check skipped arrays of no bytes: the constructor and add_param_group took one
    # given twice (torch refuses a tensor in two groups), and after any edit of param_groups by hand
    # every step raised "a parameter is given twice"
    w, empty, held = np.ones(3), np.zeros(0), fastgd.Parameter(np.zeros((2, 0)))
    with pytest.raises(ValueError, match=r"parameter 2 is parameter 1 \(shape \(0,\)"):
        fast_cls(name)([w, empty, empty], **FULL_OPTIONS[name])
    with pytest.raises(ValueError, match=r"parameter 1 is parameter 0 \(shape \(2, 0\)"):
        fast_cls(name)([{"params": [held]}, {"params": [held]}], **FULL_OPTIONS[name])
    opt = fast_cls(name)([w, empty], **FULL_OPTIONS[name])
    with pytest.raises(ValueError, match=r"parameter 2 is parameter 1"):
        opt.add_param_group({"params": [empty]})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize(("make", "grad_shapes", "error", "pattern"), bad_list_cases())
@pytest.mark.parametrize("name", NAMES)
def test_edited_params_list_with_a_bad_entry_is_refused(name, make, grad_shapes, error, pattern):
    """A params list holding what could not be a parameter makes the step raise as the constructor
    would; nothing changes, and with the list put back the optimizer goes on as before."""
    rng = np.random.default_rng(6)
    params = random_arrays(rng, START_SHAPES, np.float64)
    opt = fast_cls(name)(params, **FULL_OPTIONS[name])
    twin_params = [p.copy() for p in params]
    twin = fast_cls(name)(twin_params, **FULL_OPTIONS[name])
    grads = random_arrays(rng, START_SHAPES, np.float64)
    opt.step(grads)
    twin.step(grads)
    snap = snapshot(opt, params)
    original = opt.param_groups[0]["params"]
    entries = make(params)
    before = [np.array(e, copy=True) for e in entries]
    opt.param_groups[0]["params"] = entries
    with pytest.raises(error, match=pattern):
        opt.step([np.ones(s) for s in grad_shapes])
    for entry, b in zip(entries, before):
        assert np.array_equal(np.asarray(entry), b)
    opt.param_groups[0]["params"] = list(original)
    assert_unchanged(opt, params, snap)
    opt.step(grads)
    twin.step(grads)
    assert_same_parameters(params, twin_params)


# -- fastgd.Parameter whose .data is replaced -----------------------------------------------------------


@dtypes
@pytest.mark.parametrize("name", NAMES)
def test_parameter_data_replaced_keeps_its_state_as_torch_does(name, dtype, rng):
    """p.data = another array of the same shape and dtype: the parameter keeps its state and the
    step updates the new array, as torch does for tensor.data = ...; the old array is left alone."""
    torch = pytest.importorskip("torch")
    kwargs = OPTIONS[name][-1]
    groups = [(random_arrays(rng, START_SHAPES, dtype), {})]
    holders = [fastgd.Parameter(a.copy()) for a in groups[0][0]]
    opt = fast_cls(name)(holders, **kwargs)
    topt, tparams = build_torch(torch, name, groups, kwargs)

    def step_both():
        grads = random_arrays(rng, START_SHAPES, dtype)
        for h, g in zip(holders, grads):
            h.grad = g
        opt.step()
        torch_step(torch, topt, tparams, grads)

    for _ in range(3):
        step_both()
    old = holders[0].data
    old_before = old.copy()
    new = random_arrays(rng, [START_SHAPES[0]], dtype)[0]
    holders[0].data = new
    tparams[0].data = torch.tensor(new.copy())
    for _ in range(4):
        step_both()
    assert holders[0].data is new
    assert_all_close([h.data for h in holders], torch_numpy(tparams))
    compare_state_with_torch(opt, topt, tparams)
    assert np.array_equal(old, old_before), "the replaced array was updated"


@pytest.mark.parametrize("replacement", [
    pytest.param(lambda: np.zeros(5), id="other-shape"),
    pytest.param(lambda: np.zeros(4, dtype=np.float32), id="other-dtype"),
])
@pytest.mark.parametrize("name", NAMES)
def test_parameter_data_replaced_by_another_shape_is_refused(name, replacement):
    """p.data = an array its state does not fit: ValueError ("resized or retyped"), nothing changed;
    with the old array put back the optimizer goes on as before."""
    def make():
        holders = [fastgd.Parameter(np.linspace(-1, 1, 4)), fastgd.Parameter(np.ones((2, 3)))]
        return fast_cls(name)(holders, **FULL_OPTIONS[name]), holders

    def step(opt, holders):
        for h in holders:
            h.grad = np.full(h.data.shape, 0.5, dtype=h.data.dtype)
        opt.step()

    opt, holders = make()
    twin, twin_holders = make()
    step(opt, holders)
    step(twin, twin_holders)
    old = holders[0].data
    new = replacement()
    holders[0].data = new
    data = [new, holders[1].data]
    snap = snapshot(opt, data)
    old_before = old.copy()
    with pytest.raises(ValueError, match="resized or retyped"):
        step(opt, holders)
    assert_unchanged(opt, data, snap)
    assert np.array_equal(old, old_before)
    holders[0].data = old
    step(opt, holders)
    step(twin, twin_holders)
    assert_same_parameters([h.data for h in holders], [h.data for h in twin_holders])


@pytest.mark.parametrize("name", NAMES)
def test_parameter_data_reshaped_keeps_its_state(name):
    """p.data = an array of another shape but the same size and dtype: a step checks each state
    array's size and dtype against its parameter, so the state (element-wise) carries over, and
    state_dict reports it in the parameter's new shape."""
    def make():
        holders = [fastgd.Parameter(np.linspace(-1, 1, 4)), fastgd.Parameter(np.ones((2, 3)))]
        return fast_cls(name)(holders, **FULL_OPTIONS[name]), holders

    opt, holders = make()
    twin, twin_holders = make()
    grads = [np.linspace(0.1, 0.4, 4), np.full((2, 3), 0.5)]
    for _ in range(2):
        opt.step(grads)
        twin.step(grads)
    holders[0].data = holders[0].data.reshape(2, 2).copy()
    for _ in range(2):
        opt.step([grads[0].reshape(2, 2), grads[1]])
        twin.step(grads)
    assert np.array_equal(holders[0].data.ravel(), twin_holders[0].data)
    assert np.array_equal(holders[1].data, twin_holders[1].data)
    saved, twin_saved = opt.state_dict()["state"][0], twin.state_dict()["state"][0]
    for key, value in saved.items():
        if isinstance(value, np.ndarray):
            assert value.shape == (2, 2) and np.array_equal(value.ravel(), twin_saved[key]), key


@pytest.mark.parametrize("name", NAMES)
def test_a_step_refused_for_its_gradient_count_keeps_the_state_of_a_parameter_taken_out(name):
    # the step followed the groups (dropping the state of the parameter taken out) before it
    # counted the gradients and raised: put back, the parameter had lost its state
    arrays = [np.linspace(-1, 1, 3), np.ones(2)]
    opt = fast_cls(name)(arrays, **FULL_OPTIONS[name])
    for _ in range(3):
        opt.step([np.full(3, 0.5), np.full(2, 0.5)])
    before = opt.state_dict()
    taken = opt.param_groups[0]["params"].pop()
    for count in (2, 3):  # (as many as before, noticed by the compiled step; more, by the count)
        with pytest.raises(ValueError, match=rf"step\(\) got {count} gradients for 1 parameters"):
            opt.step([np.ones(3), np.ones(2), np.ones(1)][:count])
    opt.param_groups[0]["params"].append(taken)
    assert_state_dicts_equal(opt.state_dict(), before)


# -- a parameter resized or retyped in place ------------------------------------------------------------
# Last in this module: without the check, a parameter grown in place makes the kernels write past
# the end of its state arrays, which can take the interpreter down with it.


def resized_problem(name):
    p, other = np.linspace(-1, 1, 10).copy(), np.ones(3)  # resize() needs an array that owns its data
    opt = fast_cls(name)([p, other], **FULL_OPTIONS[name])
    grads = [np.full(10, 0.5), np.full(3, 0.25)]
    opt.step(grads)
    return opt, [p, other], grads


@pytest.mark.parametrize("size", [5, 100_000], ids=["shrunk", "grown"])
@pytest.mark.parametrize("name", NAMES)
def test_parameter_resized_in_place_is_refused(name, size):
    """p.resize(...) after a step: the state arrays no longer fit, so the next step raises
    ValueError ("resized or retyped", naming a state array); nothing changes; resized back, the
    optimizer goes on as one that never saw the call."""
    opt, params, grads = resized_problem(name)
    twin, twin_params, _ = resized_problem(name)
    names = existing_state_names(opt, 0)
    assert names and set(names) <= set(STATE_NAMES[name])
    p = params[0]
    p.resize(size, refcheck=False)
    twin_params[0].resize(size, refcheck=False)
    snap = snapshot(opt, params)
    with pytest.raises(ValueError, match="resized or retyped") as info:
        opt.step([np.ones(size), np.full(3, 0.25)])
    assert any(n in str(info.value) for n in names), str(info.value)
    assert_unchanged(opt, params, snap)
    p.resize(10, refcheck=False)
    twin_params[0].resize(10, refcheck=False)
    opt.step(grads)
    twin.step(grads)
    assert_same_parameters(params, twin_params)


def retype(array, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # setting .dtype may be deprecated one day
        array.dtype = dtype


@pytest.mark.parametrize("name", NAMES)
def test_parameter_retyped_in_place_is_refused(name):
    """p.dtype = np.float32 on a float64 parameter of 10 elements (now 20 float32): ValueError
    ("resized or retyped"); nothing changes; retyped back, the optimizer goes on as before."""
    opt, params, grads = resized_problem(name)
    twin, twin_params, _ = resized_problem(name)
    for array in (params[0], twin_params[0]):
        retype(array, np.float32)
    assert params[0].shape == (20,)
    snap = snapshot(opt, params)
    with pytest.raises(ValueError, match="resized or retyped"):
        opt.step([np.ones(20, dtype=np.float32), np.full(3, 0.25)])
    assert_unchanged(opt, params, snap)
    for array in (params[0], twin_params[0]):
        retype(array, np.float64)
    opt.step(grads)
    twin.step(grads)
    assert_same_parameters(params, twin_params)


@pytest.mark.parametrize("caller", ["clipped_step", "MultiSteps"])
def test_a_call_refused_as_busy_leaves_edited_groups_to_the_running_step(caller):
    # clipped_step and MultiSteps read each .grad after following param_groups edited by hand,
    # and did so without the optimizer's lock: the step counts' array was replaced while a step
    # running in another thread counted into the old one (a step went uncounted while the
    # moments moved on, about once in 500 steps), and the call refused as busy had changed the
    # optimizer.  A running step is stood for by holding the lock a step holds.
    params = [fastgd.Parameter(np.zeros(3)), fastgd.Parameter(np.zeros(2))]
    for param in params:
        param.grad = np.ones_like(param.data)
    opt = fastgd.Adam(params, lr=1e-3)
    multi = fastgd.MultiSteps(opt, 1)
    opt.step()
    group = opt.param_groups[0]
    if caller == "clipped_step":
        group["params"] = group["params"][::-1]  # edited by hand, as torch allows
    else:  # (MultiSteps refuses other parameters, or another order, before anything): split in two groups
        opt.param_groups[:] = [{**group, "params": [params[0]]}, {**group, "params": [params[1]]}]
    counted_in = opt._steps
    with opt._lock:
        with pytest.raises(RuntimeError, match=STEP_BUSY):
            fastgd.clipped_step(opt, 1e9) if caller == "clipped_step" else multi.step()
        assert opt._steps is counted_in  # the running step's counts are still the optimizer's
    opt.step()
    assert [opt.state_dict()["state"][i]["step"] for i in (0, 1)] == [2, 2]


@pytest.mark.parametrize("n_threads", [2, 8, None])  # 8 threads on this 2-core machine: 20 runs in 20 differed
def test_a_gradient_that_is_another_parameter_reads_it_whole_on_several_threads(n_threads):
    # each thread steps a slice of every parameter, so a slice of parameter 1 read a slice of
    # parameter 0 that another thread had or had not updated yet; the step
    # now runs on one thread, each gradient read after the parameters before it are updated,
    # as torch's loop reads them: p0 = 1 - 1 = 0, then p1 = 0 - p0[n:] = 0
    n = 1 << 21
    for _ in range(5):
        p0, p1 = np.ones(2 * n), np.zeros(n)
        fastgd.SGD([p0, p1], lr=1.0, n_threads=n_threads).step([np.ones(2 * n), p0[n:]])
        assert not p0.any() and not p1.any()


@pytest.mark.parametrize("name, option", [("SGD", "lr"), ("Adam", "weight_decay"), ("Adagrad", "eps")])
def test_a_number_option_beyond_float32s_range_is_refused_for_float32_parameters(name, option):
    # the float32 kernels read it as inf: lr=1e39 gave [nan, -inf, inf] where the step is
    # [1, -1e9, 1e9] (torch refuses such a value for float32 tensors too); float64 takes it
    # The constructor, add_param_group and load_state_dict refuse it as well (they took it, and
    # only the next step failed: a state loaded that the optimizer could not step)
    grad = np.array([0.0, 1e-30, -1e-30])
    for dtype in (np.float32, np.float64):
        param = np.ones(3, dtype)
        if dtype == np.float64:
            getattr(fastgd, name)([param], **{option: 1e39}).step([grad])
            if option == "lr":
                np.testing.assert_allclose(param, 1 - 1e39 * grad)
            continue
        message = rf"{option}=1e\+39 is beyond the range of float32"
        with pytest.raises(ValueError, match=message):
            getattr(fastgd, name)([param], **{option: 1e39})
        opt = getattr(fastgd, name)([param])
        saved = opt.state_dict()
        saved["param_groups"][0][option] = 1e39
        with pytest.raises(ValueError, match=message):
            opt.load_state_dict(saved)
        with pytest.raises(ValueError, match=message):
            opt.add_param_group({"params": [np.ones(2, dtype)], option: 1e39})
        assert len(opt.param_groups) == 1 and opt.param_groups[0][option] != 1e39
        opt.param_groups[0][option] = 1e39  # set by hand: the step refuses it
        with pytest.raises(ValueError, match=message):
            opt.step([grad.astype(dtype)])
        np.testing.assert_array_equal(param, np.ones(3, dtype))
        opt.param_groups[0][option] = 1e30  # within range: steps
        opt.step([grad.astype(dtype)])


@pytest.mark.parametrize("name, option", [("adam", "lr"), ("adam", "eps"), ("sgd", "lr"), ("adagrad", "eps")])
def test_a_functional_step_refuses_a_number_option_beyond_float32s_range_as_the_optimizer(name, option):
    # the functional steps skipped the optimizers' test: adam(lr=1e39) turned a float32
    # parameter into -inf, eps=1e39 ran with eps inf
    import fastgd.functional as F
    param, grad = np.ones(3, np.float32), np.full(3, 0.5, np.float32)
    states = {"adam": (np.zeros(3, np.float32), np.zeros(3, np.float32)), "sgd": (None,),
              "adagrad": (np.zeros(3, np.float32),)}[name]
    kept = [None if a is None else a.copy() for a in states]
    steps = {} if name == "sgd" else {"step": 1}
    with pytest.raises(ValueError, match=rf"{option}=1e\+39 is beyond the range of float32"):
        getattr(F, name)(param, grad, *states, **steps, **{option: 1e39})
    np.testing.assert_array_equal(param, np.ones(3, np.float32))
    for a, b in zip(states, kept):
        assert a is None or np.array_equal(a, b)
    getattr(F, name)(param.astype(np.float64), grad.astype(np.float64),
                     *[None if a is None else a.astype(np.float64) for a in states], **steps, **{option: 1e39})


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "RAdam"])
def test_a_step_size_beyond_float32s_range_is_refused_changing_nothing(name):
    # lr=1e38 is within float32's range, but the first step's size, lr / (1 - beta1) = 1e39, is
    # not: the float32 kernels stepped by -inf, and where the gradient was 0, -inf times the zero
    # moment gave NaN where the exact step leaves the parameter at 1.  float64 takes it
    grad = np.array([0.0, 1.0, -1.0, 0.5], np.float32)
    param = np.ones(4, np.float32)
    opt = getattr(fastgd, name)([param], lr=1e38, weight_decay=0)
    message = r"lr=1e\+38 makes a scalar of step 1 \(its step size, .*\) overflow float32, the dtype of this group"
    with pytest.raises(ValueError, match=message):
        opt.step([grad])
    np.testing.assert_array_equal(param, np.ones(4, np.float32))
    assert opt.state_dict()["state"] == {}  # no state made either
    opt.param_groups[0]["lr"] = 1e37  # a step of 1e38: steps
    opt.step([grad])
    assert param[0] == 1 and np.isfinite(param).all() and param[1] < -1e36
    wide = np.ones(4)
    getattr(fastgd, name)([wide], lr=1e38, weight_decay=0).step([grad.astype(np.float64)])
    assert wide[0] == 1 and np.isfinite(wide).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_infinite_step_scalar_is_refused_in_either_dtype_changing_nothing(dtype):
    # NAdam keeps mu_product in float32 (as torch): with beta1 within float32's rounding of 1, it
    # rounds to 1, and the gradient's coefficient lr (1 - mu) / (1 - mu_product) is -inf: every
    # element became inf, in float64 too (the check looked at float32 parameters' finite scalars
    # alone).  torch raises ZeroDivisionError there; an Adam step size beyond float64's range,
    # lr / (1 - beta1), is refused too (torch's float64 step turns the zero-gradient element into NaN)
    torch = pytest.importorskip("torch")
    options = dict(lr=0.01, betas=(0.99999999, 0.999), momentum_decay=1000.0)
    grad = np.array([0.1, 0.2, -0.3], dtype)
    tparam = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float32 if dtype == np.float32 else torch.float64,
                          requires_grad=True)
    tparam.grad = torch.from_numpy(grad.copy())
    with pytest.raises(ZeroDivisionError):
        torch.optim.NAdam([tparam], foreach=False, **options).step()
    param = np.array([1.0, -2.0, 0.5], dtype)
    opt = fastgd.NAdam([param], **options)
    with pytest.raises(ValueError, match=r"makes a scalar of step 1 \(its step size.*NAdam's 1 / \(1 - mu_product\)"):
        opt.step([grad])
    np.testing.assert_array_equal(param, [1.0, -2.0, 0.5])
    assert opt.state_dict()["state"] == {}
    with pytest.raises(ValueError, match="makes a scalar of step 1"):
        fastgd.functional.nadam(param, grad, np.zeros(3, dtype), np.zeros(3, dtype), step=1, mu_product=1.0, **options)
    np.testing.assert_array_equal(param, [1.0, -2.0, 0.5])
    if dtype == np.float64:
        zero_grad = np.array([0.0, 1e-3, -1.0])
        with pytest.raises(ValueError, match=r"lr=1e\+308 makes a scalar of step 1 .* not be finite"):
            fastgd.Adam([param], lr=1e308).step([zero_grad])
        np.testing.assert_array_equal(param, [1.0, -2.0, 0.5])


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax"])
def test_torch_refuses_the_step_sizes_beyond_float32s_range_that_fastgd_refuses(name):
    # the oracle of the test above: torch's for-loop step computes the step size as a Python
    # float, which does not convert to float32 (its RAdam multiplies the tensor by lr and
    # 1 / bias_correction1 one after the other, and steps; fastgd refuses that one too)
    torch = pytest.importorskip("torch")
    param = torch.ones(4, requires_grad=True)
    param.grad = torch.tensor([0.0, 1.0, -1.0, 0.5])
    with pytest.raises(RuntimeError, match="overflow"):
        getattr(torch.optim, name)([param], lr=1e38, weight_decay=0, foreach=False).step()


def test_a_step_size_just_beyond_float32s_largest_value_is_refused_as_torch_refuses_it():
    # a step size a hair above float32's largest value rounds to it, not to inf, in the kernel;
    # torch refuses it (the Python float does not convert to float32), as fastgd refuses an
    # option there: one bound for both, FLT_MAX (the step's check took it until it rounded to inf)
    largest = float(np.finfo(np.float32).max)
    lr = largest / 2 * (1 + 2.0**-30)  # Adam's first step size with beta1=0.5: 2 lr, just above it
    grad = np.array([0.0, 1.0, -1.0], np.float32)
    param = np.ones(3, np.float32)
    opt = fastgd.Adam([param], lr=lr, betas=(0.5, 0.999))
    with pytest.raises(ValueError, match=r"makes a scalar of step 1 \(its step size"):
        opt.step([grad])
    np.testing.assert_array_equal(param, np.ones(3, np.float32))
    torch = pytest.importorskip("torch")
    tparam = torch.ones(3, requires_grad=True)
    tparam.grad = torch.from_numpy(grad)
    with pytest.raises(RuntimeError, match="overflow"):
        torch.optim.Adam([tparam], lr=lr, betas=(0.5, 0.999), foreach=False).step()


@pytest.mark.parametrize("name, options", [("AdamW", {}), ("Lion", {}), ("Adam", {"decoupled_weight_decay": True}),
                                           ("RAdam", {"decoupled_weight_decay": True}),
                                           ("NAdam", {"decoupled_weight_decay": True})])
def test_a_decoupled_decay_factor_beyond_float32s_range_is_refused_changing_nothing(name, options):
    # lr=1e30 and weight_decay=1e10 are each within float32's range, but decoupled decay's factor,
    # 1 - lr * weight_decay = -1e40, is not: the float32 kernels multiplied every parameter by
    # -inf, a parameter of 0 into NaN (as torch does: see below).  Coupled decay reads no such
    # factor: it steps
    param = np.array([0.0, 1.0, -1.0], np.float32)
    opt = getattr(fastgd, name)([param], lr=1e30, weight_decay=1e10, **options)
    step = "its step" if name == "Lion" else "step 1"  # (Lion counts no steps)
    with pytest.raises(ValueError, match=rf"lr=1e\+30 makes a scalar of {step} .*1 - lr \* weight_decay\) overflow"):
        opt.step([np.zeros(3, np.float32)])
    np.testing.assert_array_equal(param, [0.0, 1.0, -1.0])
    assert opt.state_dict()["state"] == {}
    opt.param_groups[0]["weight_decay"] = 1e-31  # a factor of 0.9: steps
    opt.step([np.zeros(3, np.float32)])
    assert param[0] == 0 and np.isfinite(param).all()
    if name not in ("Lion", "AdamW"):  # (always decoupled)
        coupled = np.array([0.0, 1.0, -1.0], np.float32)
        getattr(fastgd, name)([coupled], lr=1e30, weight_decay=1e10, decoupled_weight_decay=False).step(
            [np.zeros(3, np.float32)])


def test_torch_turns_a_parameter_of_0_into_nan_by_a_decay_factor_beyond_float32s_range():
    # what the test above refuses: torch's p.mul_(1 - lr * weight_decay) takes the factor as -inf
    torch = pytest.importorskip("torch")
    param = torch.tensor([0.0, 1.0, -1.0], requires_grad=True)
    param.grad = torch.zeros(3)
    torch.optim.AdamW([param], lr=1e30, weight_decay=1e10, foreach=False).step()
    assert torch.isnan(param[0]) and torch.isinf(param[1:]).all()


def test_the_step_size_checked_is_the_next_steps():
    # Adam's step size, lr / (1 - 0.9^t), shrinks as t grows: lr=9e37 overflows float32 at the
    # first step (9e38), not at the third (3.3e38); the functional step's count decides
    import fastgd.functional as F
    grad = np.array([0.0, 1.0, -1.0], np.float32)
    for step, refused in ((1, True), (3, False)):
        param, exp_avg, exp_avg_sq = np.ones(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32)
        if refused:
            with pytest.raises(ValueError, match=rf"makes a scalar of step {step} "):
                F.adam(param, grad, exp_avg, exp_avg_sq, step=step, lr=9e37)
            assert (param == 1).all() and not exp_avg.any() and not exp_avg_sq.any()
        else:
            F.adam(param, grad, exp_avg, exp_avg_sq, step=step, lr=9e37)
            assert param[0] == 1 and np.isfinite(param).all() and exp_avg[1] > 0


def test_a_float64_value_beyond_float32s_range_is_refused_where_it_is_converted():
    # a float64 gradient or saved state converted for float32 parameters: 1e39 became inf silently
    # (NumPy's RuntimeWarning aside); inf and NaN are values, kept as they are
    param = np.ones(3, np.float32)
    opt = fastgd.Adam([param])
    with pytest.raises(ValueError, match=r"holds finite values beyond the range of float32"):
        opt.step([np.array([0.0, 1e39, 0.0])])
    np.testing.assert_array_equal(param, np.ones(3, np.float32))
    assert opt.state_dict()["state"] == {}
    opt.step([np.array([0.0, np.inf, 0.0])])  # (non-finite values reach the step, as torch's)
    assert np.isnan(param[1]) and param[0] == param[2] == 1
    state = fastgd.Adam([np.ones(3)]).state_dict()
    saved = {"state": {0: {"step": 1.0, "exp_avg": np.full(3, 1e39), "exp_avg_sq": np.ones(3)}},
             "param_groups": state["param_groups"]}
    fresh = fastgd.Adam([np.ones(3, np.float32)])
    with pytest.raises(ValueError, match=r"exp_avg .*beyond the range of float32"):
        fresh.load_state_dict(saved)
    assert fresh.state_dict()["state"] == {}


def test_a_gradient_dropped_by_another_thread_while_step_reads_it_stays_alive():
    """step() reads each Parameter's .grad and runs the kernels without the GIL: another thread
    setting .grad to a new array meanwhile drops the old one, which the step must still hold (a
    use-after-free otherwise: the sanitizer build reports it, and freed memory read as a gradient
    would move the parameter by another amount).  Every gradient is ones: each step subtracts lr."""
    param = fastgd.Parameter(np.zeros(BIG))
    param.grad = np.ones(BIG)
    opt = fastgd.SGD([param], lr=1.0)
    done = threading.Event()

    def replace():
        while not done.is_set():
            param.grad = np.ones(BIG)

    thread = threading.Thread(target=replace)
    thread.start()
    try:
        for _ in range(30):
            opt.step()
    finally:
        done.set()
        thread.join()
    np.testing.assert_array_equal(param.data, np.full(BIG, -30.0))


def test_a_group_popped_by_another_thread_while_the_step_makes_state(monkeypatch):
    # the step made the state its check found missing from param_groups as they were then read
    # again: a group popped meanwhile (by another thread; here by a stand-in run at that moment)
    # raised IndexError, or a group shifted into its place lent its options to the state made
    opt = fastgd.Adagrad([{"params": [np.zeros(3)], "initial_accumulator_value": 0.5},
                          {"params": [np.zeros(3)], "initial_accumulator_value": 2.0}], lr=0.1)
    opt.add_param_group({"params": [np.zeros(3)], "initial_accumulator_value": 7.0})
    made = fastgd.optim._missing_state

    def popping(*args):
        if len(opt.param_groups) == 3:
            opt.param_groups.pop(1)
        return made(*args)

    monkeypatch.setattr(fastgd.optim, "_missing_state", popping)
    for state in opt._state.values():  # (Adagrad makes its sums at the start: drop one to be made)
        state[2] = None
    opt.step([np.ones(3)] * 3)  # the step as checked: the three groups as they were
    np.testing.assert_allclose(opt._state["sum"][2], 8.0)  # made from the third group's options, stepped
    opt.step([np.ones(3)] * 2)  # the next one follows the edit
    assert len(opt._params) == 2


@pytest.mark.parametrize("what", ["param", "grad"])
def test_an_array_resized_in_place_by_code_the_step_runs_is_refused(what):
    # an option's __float__ runs within the compiled step, after it took the arrays' addresses:
    # resized in place without NumPy's reference check, the array's memory is freed, and the
    # kernels read and wrote it (AddressSanitizer: heap-use-after-free)
    p, q = fastgd.Parameter(np.ones(4096)), fastgd.Parameter(np.ones(4096))
    opt = fastgd.Adam([p, q], lr=0.01)
    p.grad, q.grad = np.full(4096, 0.5), np.full(4096, 0.5)
    opt.step()
    calls = []  # __float__'s calls in the step: the full check's in Python, then the compiled step's

    class Rate(float):
        def __float__(self):
            calls.append(None)
            if len(calls) == 2:
                (p.data if what == "param" else q.grad).resize(4, refcheck=False)
            return float.__float__(self)

    opt.param_groups[0]["lr"] = Rate(0.01)
    before = q.data.copy(), opt.state_dict()["state"][1]["exp_avg"].copy()
    with pytest.raises(ValueError, match=r"gradient \d has shape \((4096|4),\); expected \((4|4096),\)"):
        opt.step()
    np.testing.assert_array_equal(q.data, before[0])
    np.testing.assert_array_equal(opt.state_dict()["state"][1]["exp_avg"], before[1])


def test_the_step_reads_the_options_its_check_saw():
    # after the full check in Python, the compiled step read the group's options again: a value
    # set meanwhile (by another thread, or here by an lr's __float__) was stepped with unchecked,
    # and remembered for the steps after
    w = np.ones(4)
    opt = fastgd.Adam([w], lr=0.1)
    group = opt.param_groups[0]
    calls = []

    class Rate(float):
        def __float__(self):
            calls.append(None)
            if len(calls) == 2:
                group["eps"] = -5.0
            return float.__float__(self)

    group["lr"] = Rate(0.1)
    opt.step([np.ones(4)])
    assert len(calls) >= 2
    expected = np.ones(4)
    fastgd.Adam([expected], lr=0.1).step([np.ones(4)])  # eps 1e-8, as checked
    np.testing.assert_array_equal(w, expected)
    group["lr"] = 0.1
    with pytest.raises(ValueError, match="Invalid eps: -5.0"):
        opt.step([np.ones(4)])
    np.testing.assert_array_equal(w, expected)


@pytest.mark.parametrize("betas", [[0.9, 0.999], (np.float64(0.9), 0.999)])
def test_options_that_need_the_full_check_step_as_plain_ones(betas):
    # the check hands the compiled step its copies of the groups: a list or NumPy scalars read alike
    plain, other = np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)
    a, b = fastgd.Adam([plain], lr=0.01), fastgd.Adam([other], lr=np.float64(0.01), betas=betas)
    for _ in range(3):
        a.step([np.full(5, 0.5)])
        b.step([np.full(5, 0.5)])
    np.testing.assert_array_equal(plain, other)


@pytest.mark.parametrize("made", ["again", "by __new__"])
def test_a_compiled_plan_is_initialized_once_with_the_lists_it_was_made_for(made):
    """The compiled plan (an optimizer's _plan, engine.Plan) sizes its C arrays in __cinit__ for the
    lists it is made with; its __init__ called again, or after Plan.__new__ with fewer parameters,
    for more parameters wrote past those arrays (the sanitizer build reported a heap-buffer-overflow).
    It is refused, and the plan steps as before."""
    small, big = fastgd.Adam([np.zeros(4)]), fastgd.Adam([np.zeros(4) for _ in range(50)])
    a = big.algorithm
    args = (a.kernel, a.engine_options(), a.engine_state(), a.counts_steps, list(big._params), list(big._entries),
            big._state, big._steps, big._fresh, big._scalars, list(big._slices), list(big._auto_threads))
    if made == "again":
        plan = small._plan
    else:
        plan = type(small._plan).__new__(type(small._plan), *(args[:4] + ([np.zeros(4)], [np.zeros(4)]) + args[6:10]
                                                             + ([(0, 1)], [1])))
    with pytest.raises(TypeError, match="initialized once"):
        plan.__init__(*args)
    if made == "again":
        small.step([np.ones(4)])
        expected = fastgd.Adam([np.zeros(4)])
        expected.step([np.ones(4)])
        np.testing.assert_array_equal(small.param_groups[0]["params"][0], expected.param_groups[0]["params"][0])


@pytest.mark.parametrize("where", ["optimizer", "Parameter", "EMA", "functional param", "functional state"])
def test_a_masked_array_is_refused_as_a_parameter_or_state_changing_nothing(where):
    # a masked parameter was taken and every element stepped, the masked ones too, whatever the
    # mask (a masked gradient was refused already)
    import fastgd.functional as F
    from fastgd.swa_utils import EMA
    masked = np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False])
    plain = np.ones(3)
    make = {"optimizer": lambda: fastgd.SGD([masked], lr=0.1).step([np.ones(3)]),
            "Parameter": lambda: fastgd.SGD([fastgd.Parameter(masked)], lr=0.1).step([np.ones(3)]),
            "EMA": lambda: EMA([masked]).update(),
            "functional param": lambda: F.adam(masked, np.ones(3), np.zeros(3), np.zeros(3), step=1),
            "functional state": lambda: F.adam(plain, np.ones(3), masked, np.zeros(3), step=1)}[where]
    with pytest.raises(TypeError, match="is a masked array; the compiled steps write every element and know no mask"):
        make()
    np.testing.assert_array_equal(masked.data, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(plain, np.ones(3))


def test_a_learning_rate_beyond_float32_is_checked_again_once_the_parameter_is_retyped():
    """lr=1e39, valid for a float64 parameter, was remembered once checked: a stateless SGD whose
    parameter was then retyped to float32 in place stepped it with lr as inf in float32 (every
    weight -inf, no error) where a float32 parameter's optimizer refuses it, as torch does."""
    param = np.ones(4)
    opt = fastgd.SGD([param], lr=1e39)
    opt.step([np.zeros(4)])
    retype(param, np.float32)
    before = param.copy()
    with pytest.raises(ValueError, match="beyond the range of float32"):
        opt.step([np.full(8, 1e-30, dtype=np.float32)])
    np.testing.assert_array_equal(param, before)


@pytest.mark.parametrize("change", ["resized", "retyped", "strided"])
def test_a_state_array_changed_in_place_between_steps_is_refused(change):
    """The step remembered a state array once found to match and read its size, dtype and flags no
    more: resized in place (refcheck=False: the optimizer holds it) the next step wrote past its end
    (a segmentation fault), retyped it stepped float64 values into float32 memory, made read-only
    it wrote it, given other strides it wrote it as if contiguous.  A ValueError now, nothing
    changed; set back, the optimizer goes on."""
    param, grads = np.ones(1 << 12), [np.full(1 << 12, 0.5)]
    opt = fastgd.Adam([param], lr=0.1)
    opt.step(grads)
    exp_avg = opt._state["exp_avg"][0]  # (the optimizer's own array: state_dict() gives copies)
    kept = exp_avg.copy()
    if change == "resized":
        exp_avg.resize(16, refcheck=False)
    elif change == "retyped":
        exp_avg.dtype = np.float32
    else:  # (in place, the other order of the same memory: as_strided makes a new view)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # (NumPy 2.4 deprecates setting strides)
            exp_avg.shape, exp_avg.strides = (exp_avg.size // 2, 2), (8, exp_avg.size * 4)
    before = param.copy()
    with pytest.raises(ValueError, match="exp_avg of parameter 0"):
        opt.step(grads)
    np.testing.assert_array_equal(param, before)
    np.testing.assert_array_equal(np.ravel(exp_avg, order="K") if change == "strided" else exp_avg[:16],
                                  kept if change == "strided" else kept[:16].view(exp_avg.dtype)[:16])
    if change == "resized":
        exp_avg.resize(kept.size, refcheck=False)
        exp_avg[...] = kept
    elif change == "retyped":
        exp_avg.dtype = np.float64
    else:  # (C-contiguous again, in the memory's order)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            exp_avg.strides = (16, 8)
        exp_avg.shape = kept.shape
    opt.step(grads)
    assert opt.state_dict()["state"][0]["step"] == 2


def test_a_state_array_made_read_only_is_replaced_by_a_copy_that_steps():
    # the optimizer's own array made read-only in place (as an unpickled one may be): the step goes
    # on with a writable copy, as a twin whose state was left alone, and never writes the original
    param, twin_param, grads = np.ones(64), np.ones(64), [np.linspace(-1, 1, 64)]
    opt, twin = fastgd.Adam([param], lr=0.1), fastgd.Adam([twin_param], lr=0.1)
    opt.step(grads), twin.step([grads[0].copy()])
    exp_avg = opt._state["exp_avg"][0]
    kept = exp_avg.copy()
    exp_avg.flags.writeable = False
    for _ in range(2):
        opt.step(grads), twin.step([grads[0].copy()])
    np.testing.assert_array_equal(param, twin_param)
    np.testing.assert_array_equal(exp_avg, kept)
