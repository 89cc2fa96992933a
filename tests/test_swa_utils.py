"""fastgd.swa_utils: EMA and SWA against torch.optim.swa_utils.AveragedModel and a NumPy oracle."""
import numpy as np
import pytest

import fastgd
from fastgd import Parameter

from conftest import DTYPES, RTOL, ReentrantParameter, assert_all_close

SHAPES = ((3, 4), (), (0, 2), (1037,), (1,))


def sequence(rng, dtype, count):
    return [[np.asarray(rng.standard_normal(s), dtype) for s in SHAPES] for _ in range(count)]


def torch_average(torch, values, multi_avg_fn):
    """torch's AveragedModel over a module holding the parameters, updated with each list of values."""
    module = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values[0]])
    averaged = torch.optim.swa_utils.AveragedModel(module, multi_avg_fn=multi_avg_fn)
    for current in values:
        with torch.no_grad():
            for p, v in zip(module, current):
                p.copy_(torch.from_numpy(v))
        averaged.update_parameters(module)
    return [p.detach().numpy() for p in averaged.module]


def run(average, params, values):
    for current in values:
        for p, v in zip(params, current):
            p[...] = v
        average.update()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decay", [0.9, 0.3, 0.0, 1.0])
def test_ema_matches_torch_and_the_recursion(rng, dtype, decay):
    torch = pytest.importorskip("torch")
    values = sequence(rng, dtype, 6)
    params = [v.copy() for v in values[0]]
    ema = fastgd.EMA(params, decay)
    run(ema, params, values)
    assert ema.n_averaged == 6
    expected = torch_average(torch, values, torch.optim.swa_utils.get_ema_multi_avg_fn(decay))
    assert_all_close(ema.averages, expected, "average")
    oracle = [v.astype(np.float64) for v in values[0]]
    for current in values[1:]:
        oracle = [decay * o + (1 - decay) * c for o, c in zip(oracle, current)]
    assert_all_close(ema.averages, [o.astype(dtype) for o in oracle], "average")


@pytest.mark.parametrize("dtype", DTYPES)
def test_swa_matches_torch_and_the_mean(rng, dtype):
    torch = pytest.importorskip("torch")
    values = sequence(rng, dtype, 7)
    params = [Parameter(v.copy()) for v in values[0]]
    swa = fastgd.SWA(params)
    for current in values:
        for p, v in zip(params, current):
            p.data = v.copy()  # a Parameter's .data replaced is followed
        swa.update()
    # on a CPU torch's default average divides, each operation rounded in the dtype: the same bits
    for a, e in zip(swa.averages, torch_average(torch, values, None)):
        np.testing.assert_array_equal(a, e)
    mean = [np.mean([current[i].astype(np.float64) for current in values], axis=0) for i in range(len(SHAPES))]
    assert_all_close(swa.averages, [m.astype(dtype) for m in mean], "average")


@pytest.mark.parametrize("decay", [0.99, 0.2])
def test_ema_warmup_follows_its_decay_schedule(rng, decay):
    """The n-th update (n from 1; the first copies) uses min(decay, (1 + n) / (10 + n)): n is
    TensorFlow's num_updates, the step count, with the average updated after each step."""
    values = sequence(rng, np.float64, 30)
    params = [v.copy() for v in values[0]]
    ema = fastgd.EMA(params, decay, warmup=True)
    run(ema, params, values)
    oracle = [v.copy() for v in values[0]]  # update 1
    for n, current in enumerate(values[1:], start=2):
        used = min(decay, (1 + n) / (10 + n))
        oracle = [used * o + (1 - used) * c for o, c in zip(oracle, current)]
    assert_all_close(ema.averages, oracle, "average")
    two = fastgd.EMA([np.zeros(1)], 0.999, warmup=True)  # the audit's case: update 2 uses 3/12
    two.update()
    two._entries[0][:] = 1.0
    two.update()
    np.testing.assert_allclose(two.averages[0], [1 - 3 / 12], rtol=1e-15)


def test_copy_to_swap_and_state_dicts(rng):
    values = sequence(rng, np.float32, 3)
    params = [v.copy() for v in values[0]]
    ema = fastgd.EMA(params, 0.5)
    run(ema, params, values)
    averages = [a.copy() for a in ema.averages]
    current = [p.copy() for p in params]
    ema.swap()
    for p, a in zip(params, averages):
        np.testing.assert_array_equal(p, a)
    for a, c in zip(ema.averages, current):
        np.testing.assert_array_equal(a, c)
    ema.swap()
    for p, c in zip(params, current):
        np.testing.assert_array_equal(p, c)
    targets = [np.zeros_like(p) for p in params]
    ema.copy_to(targets)
    for t, a in zip(targets, averages):
        np.testing.assert_array_equal(t, a)
    saved = ema.state_dict()
    ema.update()
    other = fastgd.EMA([p.copy() for p in params], 0.5)
    other.load_state_dict(saved)
    assert other.n_averaged == 3
    for a, b in zip(other.averages, averages):
        np.testing.assert_array_equal(a, b)
    ema.copy_to()
    for p, a in zip(params, ema.averages):
        np.testing.assert_array_equal(p, a)


def test_the_count_stops_at_the_largest_step_count(rng):
    """An update at n_averaged 2**53 (the most a state dict holds) keeps it there, as an optimizer's
    step count, so that the state dict loads again; the average moves by its difference over
    2**53 + 1 (2**53 in float64, as torch's int64 count converts to it)."""
    params = [rng.standard_normal(4)]
    swa = fastgd.SWA(params)
    swa.load_state_dict({"n_averaged": fastgd.optim.MAX_STEP, "averages": [np.zeros(4)]})
    params[0][:] = 2.0**53
    swa.update()
    np.testing.assert_array_equal(swa.averages[0], 0.0 + (2.0**53 - 0.0) / float(2**53 + 1))
    assert swa.n_averaged == fastgd.optim.MAX_STEP == 2**53
    fastgd.SWA([np.zeros(4)]).load_state_dict(swa.state_dict())


def test_bad_input_is_refused_and_changes_nothing(rng):
    params = [rng.standard_normal(4), rng.standard_normal(3)]
    with pytest.raises(ValueError, match="decay"):
        fastgd.EMA(params, 1.5)
    with pytest.raises(TypeError, match="decay"):
        fastgd.EMA(params, "0.9")
    with pytest.raises(TypeError, match="warmup"):
        fastgd.EMA(params, 0.9, warmup=1)
    with pytest.raises(TypeError, match="single"):
        fastgd.SWA(params[0])
    with pytest.raises(ValueError, match="empty"):
        fastgd.SWA([])
    with pytest.raises(TypeError, match="parameter 1"):
        fastgd.SWA([params[0], [1.0]])
    swa = fastgd.SWA(params)
    swa.update()
    before = [a.copy() for a in swa.averages]
    params[1].resize(5, refcheck=False)
    with pytest.raises(ValueError, match="parameter 1"):
        swa.update()
    with pytest.raises(ValueError, match="parameter 1"):
        swa.swap()
    with pytest.raises(ValueError, match="2 averages"):
        swa.copy_to([np.zeros(4)])
    # no number, no list, no float array: TypeError; out of range, too few, the wrong shape: ValueError
    for bad, error, match in [
            ({"n_averaged": -1, "averages": before}, ValueError, r"n_averaged'\] must be a whole number"),
            ({"n_averaged": "1", "averages": before}, TypeError, r"n_averaged'\] must be a whole number"),
            ({"n_averaged": 1, "averages": before[:1]}, ValueError, r"a list of 2 arrays, one per parameter, got a list of 1$"),
            ({"n_averaged": 1, "averages": before[0]}, TypeError, r"a list of 2 arrays, one per parameter, got numpy.ndarray"),
            ({"n_averaged": 1, "averages": [before[0], np.zeros(4)]}, ValueError,
             r"\['averages'\]\[1\] has shape \(4,\); expected \(3,\)"),
            ({"n_averaged": 1, "averages": [before[0], before[1].tolist()]}, TypeError,
             r"\['averages'\]\[1\] must be a float array, got list"),
            ({"n_averaged": 1, "averages": [before[0], before[1].astype(np.int64)]}, TypeError,
             r"\[1\] must be a float array, got an array of dtype int64"),
            ({"averages": before}, TypeError, "n_averaged")]:
        with pytest.raises(error, match=match):
            swa.load_state_dict(bad)
    assert swa.n_averaged == 1
    for a, b in zip(swa.averages, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", [fastgd.EMA, fastgd.SWA])
def test_a_load_that_fails_writes_no_average(cls):
    # the load checked the saved arrays, then wrote the averages one by one: a read-only
    # average (averages is a public list) or a value beyond float32 failed after the first write
    params = [np.zeros(3, np.float32), np.zeros(3, np.float32)]
    average = cls(params)
    average.update()
    readonly = np.zeros(3, np.float32)
    readonly.flags.writeable = False
    cases = [({0: np.full(3, 7.0), 1: np.ones(3)}, readonly, "read-only"),
             ({0: np.full(3, 7.0), 1: np.array([1.0, 1e39, 1.0])}, None, "beyond the range of float32")]
    for saved, second, match in cases:
        if second is not None:
            average.averages[1] = second
        with pytest.raises(ValueError, match=match):
            average.load_state_dict({"n_averaged": 5, "averages": [saved[0], saved[1]]})
        assert average.n_averaged == 1
        np.testing.assert_array_equal(average.averages[0], np.zeros(3, np.float32))
        average.averages[1] = np.zeros(3, np.float32)
    average.load_state_dict({"n_averaged": 5, "averages": [np.full(3, 7.0), np.array([1.0, np.inf, 1.0])]})
    assert average.n_averaged == 5 and average.averages[0].dtype == np.float32
    np.testing.assert_array_equal(average.averages[1], [1, np.inf, 1])


@pytest.mark.parametrize("cls", [fastgd.EMA, fastgd.SWA])
def test_a_parameter_of_another_shape_and_the_same_size_is_refused(rng, cls):
    # the compiled passes paired arrays by size: a transposed .data was averaged element by
    # element in memory order, and swap and copy_to took it too (torch refuses other shapes)
    start = rng.standard_normal((2, 3))
    param = fastgd.Parameter(start.copy())
    average = cls([param])
    average.update()
    param.data = np.ascontiguousarray(start.T)
    for call, name in ((average.update, "parameter"), (average.swap, "parameter"),
                       (lambda: average.copy_to([np.zeros((3, 2))]), "target")):
        with pytest.raises(ValueError, match=rf"{name} 0 \(shape \(3, 2\)"):
            call()
    np.testing.assert_array_equal(average.averages[0], start)
    np.testing.assert_array_equal(param.data, start.T)
    assert average.n_averaged == 1


def test_subclass_arrays_are_averaged(rng, tmp_path):
    mapped = np.lib.format.open_memmap(tmp_path / "p.npy", mode="w+", dtype=np.float64, shape=(5,))
    mapped[...] = rng.standard_normal(5)
    swa = fastgd.SWA([mapped])
    first = np.array(mapped)
    swa.update()
    mapped[...] = rng.standard_normal(5)
    swa.update()
    np.testing.assert_allclose(swa.averages[0], (first + mapped) / 2, rtol=RTOL[np.dtype(np.float64)])


@pytest.mark.parametrize("cls", [fastgd.EMA, fastgd.SWA])
def test_parameters_given_twice_or_overlapping_are_refused(cls):
    # a swap would exchange the shared elements twice, losing the weights
    base = np.arange(6.0)
    for params in ([base, base], [base[:4], base[3:]], {Parameter(base)}):
        with pytest.raises((TypeError, ValueError), match="shares memory|ordered collection"):
            cls(params)


@pytest.mark.parametrize("cls", [fastgd.EMA, fastgd.SWA])
def test_parameters_made_to_share_memory_later_are_refused_by_swap_and_copy_to(cls):
    # a Parameter's .data replaced by a view of another's: swap and copy_to would write the
    # shared elements twice (swap twice then loses the weights); each raises, changing nothing
    base, other = np.arange(6.0), np.full(3, 7.0)
    a, b = Parameter(base), Parameter(other)
    average = cls([a, b])
    average.update()
    b.data = base[3:]
    before = [base.copy(), [x.copy() for x in average.averages]]
    for call, name in ((average.swap, "parameter"), (average.copy_to, "parameter"),
                       (lambda: average.copy_to([base, base[2:5]]), "target")):  # (copy_to's own targets)
        with pytest.raises(ValueError, match=f"{name} 1 shares memory with {name} 0"):
            call()
        np.testing.assert_array_equal(base, before[0])
        for now, then in zip(average.averages, before[1]):
            np.testing.assert_array_equal(now, then)


@pytest.mark.parametrize("cls", [fastgd.EMA, fastgd.SWA])
@pytest.mark.parametrize("shift", [1, -2])
def test_an_average_sharing_memory_in_part_with_its_parameter_is_refused(cls, shift):
    # an entry of averages replaced by a view overlapping its parameter (or copy_to's target):
    # update and swap read what they had written (torch's _foreach_lerp_ refuses it), and the
    # copy was a memcpy of overlapping memory (AddressSanitizer reports it)
    big = np.arange(12.0)
    param = Parameter(big[2:10])
    average = cls([param])
    average.update()
    average.averages[0] = big[2 + shift:10 + shift]
    before = big.copy()
    for call in (average.update, average.swap, average.copy_to):
        with pytest.raises(ValueError, match="parameter 0 shares memory in part with its average|"
                                             "average 0 shares memory with parameter 0"):
            call()
        np.testing.assert_array_equal(big, before)
    target = np.zeros(8)
    average.copy_to([target])  # apart: copied
    np.testing.assert_array_equal(target, big[2 + shift:10 + shift])
    average.averages[0] = param.data  # the parameter itself: nothing to do, nothing refused
    average.update()
    average.swap()
    average.copy_to()
    np.testing.assert_array_equal(big, before)


@pytest.mark.parametrize("cls", [fastgd.EMA, fastgd.SWA])
def test_an_average_sharing_memory_with_another_parameter_is_refused(cls):
    # averages[1] a view overlapping parameter 0: two swaps no longer gave the parameters back, and
    # update() wrote parameter 0 (the check it makes when an average or a parameter was replaced)
    first, second = np.arange(5.0), np.arange(100.0, 105.0)
    average = cls([first, second])
    average.update()
    average.averages[1] = first[:5]
    before = first.copy(), second.copy()
    for call in (average.update, average.swap, average.copy_to):
        with pytest.raises(ValueError, match="average 1 shares memory with parameter 0 .*; "
                                             "each parameter and each average must be a separate array$"):
            call()
        np.testing.assert_array_equal(first, before[0])
        np.testing.assert_array_equal(second, before[1])
    assert average.n_averaged == 1
    average.averages[1] = second.copy()  # (checked again, apart: updated)
    average.update()
    assert average.n_averaged == 2


@pytest.mark.parametrize("cls", [fastgd.EMA, fastgd.SWA])
def test_averages_edited_by_hand_are_refused_by_name(cls):
    # averages is a public list: an entry the compiled pass cannot take, or an entry too many or
    # too few, is named (it was the "please report" error), and nothing changes
    params = [np.arange(3.0), np.arange(2.0)]
    unaligned = np.zeros(3 * 8 + 1, np.uint8)[1:].view(np.float64)
    read_only = np.zeros(3)
    read_only.flags.writeable = False
    for edit, calls, message in (
            (lambda a: a.__setitem__(0, np.zeros(6)[::2]), "update swap copy_to", r"average 0 .* is not C-contiguous"),
            (lambda a: a.__setitem__(0, unaligned), "update swap copy_to", r"average 0 .* is not aligned"),
            (lambda a: a.__setitem__(1, read_only[:2]), "update swap", r"average 1 .* is read-only; update\(\) and swap"),
            (lambda a: a.__setitem__(1, np.zeros(2, np.float32)), "update swap copy_to",
             r"parameter 1 \(shape \(2,\), dtype float64\) no longer matches its average \(shape \(2,\), dtype float32\)"),
            (lambda a: a.append(np.zeros(3)), "update swap", "averages holds 3 arrays for 2 parameters"),
            (lambda a: a.pop(), "update swap", "averages holds 1 arrays for 2 parameters")):
        average = cls(params)
        average.update()
        edit(average.averages)
        before = [p.copy() for p in params], [a.copy() for a in average.averages], average.n_averaged
        for call in calls.split():
            with pytest.raises(ValueError, match=message):
                getattr(average, call)()
            assert all(np.array_equal(p, b) for p, b in zip(params, before[0]))
            assert all(np.array_equal(a, b) for a, b in zip(average.averages, before[1]))
            assert average.n_averaged == before[2]


@pytest.mark.parametrize("cls", [fastgd.EMA, fastgd.SWA])
def test_averages_replaced_by_no_array_and_counts_set_by_hand_are_refused_by_name(cls):
    # an entry of averages replaced by a list, None or a Parameter failed update, swap and copy_to
    # with AttributeError ('list' object has no attribute 'ctypes'); n_averaged, and EMA's decay
    # and warmup, set by hand were taken unchecked (decay=2.0 extrapolated the average to -1;
    # n_averaged=-5 or 1.5 weighed SWA's next update by nonsense), though the constructor and
    # load_state_dict check them
    param = np.arange(3.0)
    average = cls([param])
    average.update()
    saved = average.state_dict()
    for entry, kind in (([0.0, 0.0, 0.0], "list"), (None, "NoneType"), (Parameter(np.zeros(3)), "Parameter")):
        average.averages[0] = entry
        for call in ("update", "swap", "copy_to"):
            with pytest.raises(TypeError, match=rf"average 0 is a .*{kind}; expected a NumPy array"):
                getattr(average, call)()
    average.averages[0] = saved["averages"][0].copy()
    settings = [("n_averaged", -5, ValueError), ("n_averaged", 1.5, ValueError), ("n_averaged", "2", TypeError)]
    if cls is fastgd.EMA:
        settings += [("decay", 2.0, ValueError), ("decay", "0.5", TypeError), ("warmup", 1, TypeError)]
    for name, value, error in settings:
        before = getattr(average, name)
        with pytest.raises(error, match=name):
            setattr(average, name, value)
        assert getattr(average, name) == before
    average.n_averaged = np.int64(1)  # (what load_state_dict takes)
    average.update()
    np.testing.assert_array_equal(average.averages[0], param)  # the mean (or EMA) of two equal updates
    assert average.n_averaged == 2 and type(average.n_averaged) is int
    masked = dict(saved, averages=[np.ma.array(saved["averages"][0], mask=[True, False, False])])
    with pytest.raises(TypeError, match=r"state_dict\['averages'\]\[0\] is a masked array; the steps read every"):
        average.load_state_dict(masked)
    with pytest.raises(TypeError, match="got a single ndarray; wrap it in a list"):
        average.copy_to(np.zeros(3))
    with pytest.raises(TypeError, match="set"):  # (unordered: paired by position, as the constructor refuses it)
        average.copy_to({Parameter(np.zeros(3))})


def test_copy_to_reads_a_read_only_average():
    # only update() and swap() write into the averages: copy_to takes a read-only one, whatever
    # its targets (an ndarray subclass was refused, "update() and swap() write into it")
    average = fastgd.EMA([np.arange(3.0)])
    average.update()
    read_only = np.array([4.0, 5.0, 6.0])
    read_only.flags.writeable = False
    average.averages[0] = read_only
    class Subclass(np.ndarray):
        pass

    for target in (np.zeros(3), np.zeros(3).view(Subclass)):
        average.copy_to([target])
        assert np.asarray(target).tolist() == [4.0, 5.0, 6.0]
    parameter = np.zeros(3).view(Subclass)  # and into the parameters themselves (copy_to())
    average = fastgd.EMA([parameter])
    average.update()
    average.averages[0] = read_only
    average.copy_to()
    assert np.asarray(parameter).tolist() == [4.0, 5.0, 6.0]


def test_copy_to_names_its_targets():
    average = fastgd.EMA([np.arange(3.0), np.arange(2.0)])
    average.update()
    first = np.zeros(3)
    for target, message in ((np.zeros(2, np.float32), r"target 1 \(shape \(2,\), dtype float32\) does not match its "
                                                      r"average \(shape \(2,\), dtype float64\)"),
                            (np.zeros(4)[::2], "target 1 .* is not C-contiguous")):
        with pytest.raises(ValueError, match=message):
            average.copy_to([first, target])
        assert not first.any()


def test_a_call_while_another_runs_raises_and_changes_nothing():
    p = ReentrantParameter(np.ones(3))
    ema = fastgd.EMA([p], 0.5)
    ema.update()
    p.data[...] = 3.0
    for method in ("update", "swap", "copy_to"):
        p.arm("data", ema.update)
        with pytest.raises(RuntimeError, match=r"update\(\): another call is changing this EMA"):
            getattr(ema, method)()
        assert ema.n_averaged == 1 and ema.averages[0].tolist() == [1.0] * 3  # the inner call changed nothing
    assert p.data.tolist() == [3.0] * 3


def test_updates_from_two_threads_lose_nothing():
    import threading

    p = np.zeros(1 << 16)
    swa = fastgd.SWA([p])
    swa.update()
    p[...] = 1.0
    done = []

    def work():
        ran = 0
        for _ in range(200):
            try:
                swa.update()
                ran += 1
            except RuntimeError:  # the other thread's update was running
                pass
        done.append(ran)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert swa.n_averaged == 1 + sum(done)
    twin = fastgd.SWA([np.zeros_like(p)])
    twin.update()
    twin._entries[0][...] = 1.0
    for _ in range(sum(done)):
        twin.update()
    np.testing.assert_array_equal(swa.averages[0], twin.averages[0])  # every element, every update


def test_pickled_averages_and_accumulators_work_on(rng):
    import pickle

    p = rng.standard_normal(5)
    ema = fastgd.EMA([p], 0.5)
    ema.update()
    multi = fastgd.MultiSteps(fastgd.SGD([rng.standard_normal(5)], lr=0.1), 2)
    multi.step([np.ones(5)])
    for obj in (ema, multi):
        twin = pickle.loads(pickle.dumps(obj))
        assert twin._lock is not obj._lock and not twin._lock.locked()
    twin = pickle.loads(pickle.dumps(ema))
    twin.update()
    ema.update()
    np.testing.assert_array_equal(twin.averages[0], ema.averages[0])


def test_averages_and_accumulators_unpickled_from_read_only_buffers_work_on(rng):
    # pickle 5's out-of-band buffers came back read-only: update() and step() then raised
    # "output array is read-only"
    import pickle

    def unpickled(obj):
        buffers = []
        data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        return pickle.loads(data, buffers=[memoryview(b.raw()).toreadonly() for b in buffers])

    p = rng.standard_normal(5)
    for average in (fastgd.EMA([p], 0.5), fastgd.SWA([p])):
        average.update()
        twin = unpickled(average)
        average.update()
        twin.update()  # (its parameter came back read-only too: averaging reads it only)
        np.testing.assert_array_equal(twin.averages[0], average.averages[0])
    multi = fastgd.MultiSteps(fastgd.SGD([np.zeros(5)], lr=0.1), 3)
    multi.step([np.ones(5)])
    twin = unpickled(multi)
    for each in (multi, twin):
        each.step([np.full(5, 2.0)])  # adds into the sums
    np.testing.assert_array_equal(twin._sums[0], multi._sums[0])
    with pytest.raises(ValueError, match="parameter 0 .* is read-only"):  # the user's parameter, which the step updates
        twin.step([np.ones(5)])


@pytest.mark.parametrize("cls", [fastgd.EMA, fastgd.SWA])
def test_read_only_parameters_are_averaged_but_not_written(cls):
    # torch's AveragedModel averages frozen parameters; fastgd refused a read-only one with the
    # optimizers' message ("the optimizer updates parameters in place")
    frozen, free = np.arange(3.0), np.ones(2)
    frozen.flags.writeable = False
    average = cls([frozen, free])
    average.update()
    free += 1
    average.update()
    np.testing.assert_array_equal(average.averages[0], frozen)
    np.testing.assert_allclose(average.averages[1], 1.5 if cls is fastgd.SWA else 1.001)
    for call, name in ((average.swap, "swap"), (average.copy_to, "copy_to")):
        with pytest.raises(ValueError, match=rf"parameter 0 .* is read-only; {name}\(\) writes the averages into it"):
            call()
        np.testing.assert_array_equal(free, 2.0)


def test_a_state_dict_with_a_key_too_many_is_refused_by_name():
    # the message said the dict must have the keys it had, not which one was extra
    average, multi = fastgd.EMA([np.zeros(2)]), fastgd.MultiSteps(fastgd.SGD([np.zeros(2)], lr=0.1), 2)
    for obj, keys in ((average, r"'n_averaged' and 'averages'"), (multi, r"'optimizer', 'mini_step' and 'sums'")):
        with pytest.raises(TypeError, match=rf"the keys {keys}, as state_dict\(\) returns; it also has 'decay'$"):
            obj.load_state_dict({**obj.state_dict(), "decay": 0.5})


@pytest.mark.parametrize("cls", [fastgd.EMA, fastgd.SWA])
def test_an_average_replaced_by_a_memory_map_is_averaged(cls, rng, tmp_path):
    # an entry of averages replaced by an array of its shape and dtype (as the messages allow)
    # that is a subclass: every pass raised "the compiled pass refused checked arrays; please report"
    values = [rng.standard_normal(5) for _ in range(3)]
    param, plain_param = values[0].copy(), values[0].copy()
    average, plain = cls([param]), cls([plain_param])
    average.update(), plain.update()
    mapped = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.float64, shape=(5,))
    mapped[...] = average.averages[0]
    average.averages[0] = mapped
    for value in values[1:]:
        param[...], plain_param[...] = value, value
        average.update(), plain.update()
    np.testing.assert_array_equal(mapped, plain.averages[0])
    average.swap(), plain.swap()
    np.testing.assert_array_equal(param, plain_param)
    np.testing.assert_array_equal(mapped, values[-1])
    target = np.zeros(5)
    average.copy_to([target])
    np.testing.assert_array_equal(target, values[-1])
