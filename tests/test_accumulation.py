"""fastgd.MultiSteps: k accumulated calls are one step on the mean gradient, for every optimizer."""
import re
import warnings

import numpy as np
import pytest

import fastgd
from fastgd import Parameter

from conftest import DTYPES, NAMES, OPTIONS, RTOL, ReentrantParameter, assert_all_close, assert_unchanged, build, fast_cls, \
    ref_cls, snapshot

SHAPES = ((3, 4), (), (517,), (1,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("every_k", [1, 3, 4])
def test_k_calls_are_one_step_on_the_mean(rng, dtype, name, every_k):
    arrays = [np.asarray(rng.standard_normal(s), dtype) for s in SHAPES]
    kwargs = OPTIONS[name][-1]
    fast, params = build(fast_cls(name), [(arrays, {})], kwargs)
    ref, ref_params = build(ref_cls(name), [(arrays, {})], kwargs)
    multi = fastgd.MultiSteps(fast, every_k)
    for cycle in range(3):
        grads = [[np.asarray(rng.standard_normal(s), dtype) for s in SHAPES] for _ in range(every_k)]
        grads[0][1] = None  # a parameter without a gradient in one call: zero, for the mean
        for k, call in enumerate(grads):
            assert multi.step(call) == (k == every_k - 1)
            if k < every_k - 1:
                assert multi.mini_step == k + 1
        mean = [np.asarray(np.mean([call[i].astype(np.float64) if call[i] is not None else np.zeros(SHAPES[i])
                                    for call in grads], axis=0), dtype)
                if any(call[i] is not None for call in grads) else None for i in range(len(SHAPES))]
        ref.step(mean)
        assert_all_close(params, ref_params)


def test_parameters_grads_none_throughout_and_state_dicts(rng):
    data = [rng.standard_normal(4), rng.standard_normal(3)]
    params = [Parameter(d.copy()) for d in data]
    multi = fastgd.MultiSteps(fastgd.Adam(params, lr=0.1), 2)
    params[0].grad = rng.standard_normal(4)
    assert not multi.step()
    saved = multi.state_dict()
    params[0].grad = rng.standard_normal(4)
    assert multi.step()
    np.testing.assert_array_equal(params[1].data, data[1])  # never had a gradient: skipped
    assert not np.array_equal(params[0].data, data[0])
    other_params = [Parameter(d.copy()) for d in data]
    other = fastgd.MultiSteps(fastgd.Adam(other_params, lr=0.1), 2)
    other.load_state_dict(saved)
    other_params[0].grad = params[0].grad
    assert other.step()
    np.testing.assert_array_equal(other_params[0].data, params[0].data)


def test_bad_input_is_refused_and_changes_nothing(rng):
    arrays = [rng.standard_normal(4).astype(np.float32)]
    opt, params = build(fastgd.SGD, [(arrays, {})], dict(lr=0.1))
    with pytest.raises(ValueError, match="every_k"):
        fastgd.MultiSteps(opt, 0)
    for wrong in ("2", 2.0, True):
        with pytest.raises(TypeError, match="every_k must be a whole number"):
            fastgd.MultiSteps(opt, wrong)
    with pytest.raises(TypeError, match="optimizer"):
        fastgd.MultiSteps(object(), 2)
    multi = fastgd.MultiSteps(opt, 2)
    multi.step([np.ones(4, np.float32)])
    snap = snapshot(opt, params)
    sums = multi.state_dict()["sums"]
    for grads, error in (([np.ones(5)], ValueError), (["x"], TypeError), ([np.ones(4), np.ones(4)], ValueError)):
        with pytest.raises(error):
            multi.step(grads)
        assert multi.mini_step == 1
        np.testing.assert_array_equal(multi.state_dict()["sums"][0], sums[0])
        assert_unchanged(opt, params, snap)
    assert multi.step([np.ones(4)])  # float64 gradient of a float32 parameter: converted
    np.testing.assert_allclose(params[0], arrays[0] - np.float32(0.1), rtol=1e-6)


def test_a_busy_optimizer_at_the_kth_call_changes_nothing(monkeypatch):
    # the k-th call checked the optimizer, released it, added the gradients, then found it busy
    # (another thread's step begun in between) and raised with the cycle's gradients dropped: now
    # it holds the optimizer from the check to the step
    from fastgd import accumulation

    multi = fastgd.MultiSteps(fastgd.SGD([np.zeros(2)], lr=1.0), 2)
    lock, add_all, taken = multi.optimizer._lock, accumulation.engine.add_all, []

    def add_all_as_another_step_begins(*args):
        taken.append(lock.acquire(False))
        return add_all(*args)

    multi.step([np.ones(2)])
    monkeypatch.setattr(accumulation.engine, "add_all", add_all_as_another_step_begins)
    try:
        assert multi.step([np.full(2, 3.0)])
    except RuntimeError:
        assert multi.mini_step == 1  # (the cycle kept, for a retry)
        raise
    finally:
        if taken[0]:
            lock.release()
    assert taken == [False]
    np.testing.assert_array_equal(multi.optimizer.param_groups[0]["params"][0], [-2.0, -2.0])


def test_a_state_dict_with_sums_at_mini_step_0_is_refused():
    # state_dict() never saves sums at mini_step 0: loaded, the next cycle added them in silently
    multi = fastgd.MultiSteps(fastgd.SGD([np.zeros(2)], lr=1.0), 2)
    saved = multi.state_dict()
    saved["sums"] = [np.full(2, 100.0)]
    with pytest.raises(ValueError, match=r"state_dict\['sums'\] holds gradients at mini_step 0"):
        multi.load_state_dict(saved)
    multi.step([np.ones(2)])
    assert multi.step([np.ones(2)])
    np.testing.assert_array_equal(multi.optimizer.param_groups[0]["params"][0], [-1.0, -1.0])


def test_saved_sums_of_no_list_or_no_float_array_are_type_errors():
    # (every refusal was a ValueError, where the optimizer's and EMA's loads raise TypeError for
    # an entry of no list or no float array, ValueError for a wrong length or shape)
    multi = fastgd.MultiSteps(fastgd.SGD([np.zeros(2), np.zeros(3)], lr=1.0), 2)
    multi.step([np.ones(2), np.ones(3)])
    saved = multi.state_dict()
    for sums, error, match in [
            (saved["sums"][0], TypeError, r"\['sums'\] must be a list of 2 arrays or None, one per parameter, got numpy"),
            (saved["sums"][:1], ValueError, r"\['sums'\] must be a list of 2 arrays or None, one per parameter, got a list of 1$"),
            ([saved["sums"][0], "x"], TypeError, r"\['sums'\]\[1\] must be a float array, got str"),
            ([saved["sums"][0], np.ones(3, np.int32)], TypeError, r"\[1\] must be a float array, got an array of dtype int32"),
            ([saved["sums"][0], np.ones(2)], ValueError, r"\['sums'\]\[1\] has shape \(2,\); expected \(3,\)")]:
        with pytest.raises(error, match=match):
            multi.load_state_dict(dict(saved, sums=sums))
    assert multi.step([np.ones(2), np.ones(3)])  # the cycle's sum was kept: two gradients of 1, averaged
    np.testing.assert_array_equal(multi.optimizer.param_groups[0]["params"][0], [-1.0, -1.0])


def test_saved_sums_beyond_float32_are_refused_before_anything_loads():
    # they were cast to inf (the next step wrote -inf into the parameter), after the optimizer's
    # state had been loaded
    multi = fastgd.MultiSteps(fastgd.Adam([np.zeros(3, np.float32)], lr=0.1), 2)
    for g in (1.0, 2.0, 3.0):
        multi.step([np.full(3, g, np.float32)])
    saved = multi.state_dict()
    for g in (4.0, 5.0):
        multi.step([np.full(3, g, np.float32)])
    before = multi.state_dict()
    saved["sums"] = [np.full(3, 1e300)]
    with pytest.raises(ValueError, match=r"state_dict\['sums'\]\[0\] .*beyond the range of float32"):
        multi.load_state_dict(saved)
    after = multi.state_dict()
    assert after["mini_step"] == before["mini_step"] == 1
    np.testing.assert_array_equal(after["sums"][0], before["sums"][0])
    for name in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_array_equal(after["optimizer"]["state"][0][name], before["optimizer"]["state"][0][name])
        assert not np.array_equal(after["optimizer"]["state"][0][name], saved["optimizer"]["state"][0][name])


def test_a_step_that_would_fail_is_refused_before_the_sums_change(rng):
    arrays = [rng.standard_normal(4)]
    opt, params = build(fastgd.SGD, [(arrays, {})], dict(lr=0.1))
    multi = fastgd.MultiSteps(opt, 2)
    multi.step([np.ones(4)])
    opt.param_groups[0]["momentum"] = -1.0
    with pytest.raises(ValueError, match="momentum"):
        multi.step([np.ones(4)])
    assert multi.mini_step == 1
    np.testing.assert_array_equal(multi.state_dict()["sums"][0], np.ones(4))
    opt.param_groups[0]["momentum"] = 0.0
    assert multi.step([np.ones(4)])
    np.testing.assert_allclose(params[0], arrays[0] - 0.1)


@pytest.mark.parametrize("spoiled", ["read-only", "retyped"])
def test_a_parameter_the_step_refuses_is_refused_before_the_sums_change(rng, spoiled):
    # only the options were checked ahead: a parameter the step refuses (read-only, or retyped
    # in place away from its momentum buffer) made the k-th call drop the gradients of the whole
    # cycle, its own added
    start = rng.standard_normal(4)
    param = Parameter(start.copy())
    opt = fastgd.SGD([param], lr=0.1, momentum=0.5)
    multi = fastgd.MultiSteps(opt, 3)
    for grad in (1.0, 1.0, 1.0, 1.0, 2.0):  # a step on the mean 1, then two calls of the next cycle
        multi.step([np.full(4, grad)])
    data = param.data
    if spoiled == "read-only":
        data.flags.writeable = False
    else:
        param.data = data.astype(np.float32)
    with pytest.raises(ValueError, match="parameter 0"):
        multi.step([np.full(4, 6.0)])
    assert multi.mini_step == 2
    np.testing.assert_array_equal(multi.state_dict()["sums"][0], np.full(4, 3.0))
    data.flags.writeable = True
    param.data = data
    assert multi.step([np.full(4, 6.0)])
    # momentum buffers 1, then 0.5 * 1 + 3 (the second mean)
    np.testing.assert_allclose(param.data, start - 0.1 * 1.0 - 0.1 * 3.5)


@pytest.mark.parametrize("given", ["new shape", "old shape"])
def test_a_parameter_reshaped_in_place_is_named(rng, given):
    # the k-th call named the sums' shape as the gradient's and the parameter's as "expected"
    start = rng.standard_normal(6)
    param = start.copy()
    multi = fastgd.MultiSteps(fastgd.SGD([param], lr=0.1), 2)
    multi.step([np.ones(6)])
    param.shape = (2, 3)
    grad = np.full((2, 3) if given == "new shape" else 6, 3.0)
    with pytest.raises(ValueError, match=re.escape("parameter 0 is now of shape (2, 3) and dtype float64; this "
                                                   "MultiSteps was made for shape (6,)")):
        multi.step([grad])
    assert multi.mini_step == 1
    np.testing.assert_array_equal(param.ravel(), start)
    param.shape = (6,)
    assert multi.step([np.full(6, 3.0)])
    np.testing.assert_allclose(param, start - 0.1 * 2.0)


def test_a_group_removed_is_named():
    # the reshape check indexed the optimizer's parameters by the MultiSteps' own: IndexError
    opt = fastgd.SGD([{"params": [np.zeros(3)]}, {"params": [np.zeros(2)]}], lr=0.1)
    multi = fastgd.MultiSteps(opt, 1)
    del opt.param_groups[1]
    with pytest.raises(ValueError, match="param_groups list 1 parameters now; MultiSteps was made for 2"):
        multi.step([np.ones(3), np.ones(2)])


@pytest.mark.parametrize("edit", ["popped", "reversed"])
@pytest.mark.parametrize("given", [True, False], ids=["grads", "Parameter.grad"])
def test_a_call_refused_for_an_edit_of_param_groups_changes_nothing(edit, given):
    # the check compared the parameters the optimizer had followed: step() without gradients made
    # it follow the edit first, dropping a popped parameter's Adam state before refusing; and at
    # the k-th call the optimizer followed it before the refusal, which then stuck after the edit
    # was undone ("another order" at every call, a reorder first named as a reshape)
    a, b = fastgd.Parameter(np.ones(3)), fastgd.Parameter(np.ones(2))
    opt = fastgd.Adam([a, b], lr=0.1)
    twin = fastgd.Adam([np.ones(3), np.ones(2)], lr=0.1)  # the same steps, taken directly
    multi = fastgd.MultiSteps(opt, 2)

    def call():
        a.grad, b.grad = np.full(3, 0.5), np.full(2, 0.5)
        return multi.step([a.grad, b.grad] if given else None)

    assert [call() for _ in range(3)] == [False, True, False]  # a step, and the next cycle's first call
    listed = opt.param_groups[0]["params"]
    listed.pop() if edit == "popped" else listed.reverse()
    with pytest.raises(ValueError, match="make a new MultiSteps"):
        call()  # a k-th call
    listed.append(b) if edit == "popped" else listed.reverse()  # undone
    assert multi.mini_step == 1 and call()
    for _ in range(2):
        twin.step([np.full(3, 0.5), np.full(2, 0.5)])
    for param, expected in zip((a, b), twin._params):
        np.testing.assert_array_equal(param.data, expected)
    assert [entry["step"] for entry in opt.state_dict()["state"].values()] == [2, 2]


def test_an_edit_of_param_groups_before_the_kth_call_holds_the_optimizer_changes_nothing():
    # the k-th call checked the parameters, then (holding the optimizer) had it follow
    # param_groups before checking them again: an edit in between (another thread's; here a
    # stand-in run as the call takes the optimizer) dropped a popped parameter's state, then
    # the call was refused as "2 gradients for 1 parameters"
    a, b = fastgd.Parameter(np.ones(3)), fastgd.Parameter(np.ones(2))
    opt = fastgd.Adam([a, b], lr=0.1)
    multi = fastgd.MultiSteps(opt, 1)
    a.grad, b.grad = np.ones(3), np.ones(2)
    multi.step()
    taken = opt._exclusive

    def edited_first(what):
        opt.param_groups[0]["params"].pop()
        return taken(what)

    opt._exclusive = edited_first
    with pytest.raises(ValueError, match="param_groups list 1 parameters now; MultiSteps was made for 2"):
        multi.step()
    del opt._exclusive
    opt.param_groups[0]["params"].append(b)  # undone
    multi.step()
    assert [entry["step"] for entry in opt.state_dict()["state"].values()] == [2, 2]


def test_masked_sums_are_refused_by_load_state_dict_as_masked_state_is():
    # a masked array's data, masked elements included, was loaded as the sums; the optimizer's
    # state and the averages refuse them (one check, where the loaders convert the arrays)
    opt = fastgd.SGD([np.zeros(3)], lr=0.1)
    multi = fastgd.MultiSteps(opt, 3)
    multi.step([np.ones(3)])
    saved = multi.state_dict()
    spoiled = dict(saved, sums=[np.ma.array(np.full(3, 5.0), mask=[True, False, False])])
    with pytest.raises(TypeError, match=r"state_dict\['sums'\]\[0\] is a masked array"):
        multi.load_state_dict(spoiled)
    np.testing.assert_array_equal(multi.state_dict()["sums"][0], saved["sums"][0])


def test_a_frozen_parameter_reshaped_in_place_is_no_concern():
    # the check above looked at every parameter: one without gradients, reshaped in place (which
    # the optimizer allows), refused calls whose gradient only needed converting, and hid the
    # real error of a bad option
    trained, frozen = np.zeros(4, dtype=np.float32), np.zeros((2, 2))
    opt = fastgd.SGD([trained, frozen], lr=0.1, momentum=0.5)
    multi = fastgd.MultiSteps(opt, 2)
    frozen.shape = (4,)
    grad = np.ones(8)[::2]  # float64 and strided: converted
    assert multi.step([grad, None]) is False
    assert multi.step([grad, None]) is True
    np.testing.assert_allclose(trained, -0.1, rtol=1e-6)
    np.testing.assert_array_equal(frozen, 0)
    opt.param_groups[0]["momentum"] = -1.0
    multi.step([grad, None])
    with pytest.raises(ValueError, match="Invalid momentum: -1.0"):
        multi.step([grad, None])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", [2.0, 1.0, np.inf, 0.0, -np.inf])
def test_clipped_accumulation_matches_torch(rng, dtype, norm_type):
    """MultiSteps(max_norm=...): torch's loop, k backward passes adding into .grad, the mean,
    clip_grad_norm_, Adam's step; a cycle with a NaN or inf in a micro-batch is skipped (torch's
    GradScaler way), changing nothing, and the next cycle goes on."""
    torch = pytest.importorskip("torch")
    shapes, k, max_norm = ((3, 4), (517,), (1,)), 3, 0.5
    # parameters away from 0: steps of lr's size leave float32 a relative error of its rounding
    arrays = [np.asarray(rng.uniform(1.0, 2.0, s) * rng.choice([-1, 1], s), dtype) for s in shapes]
    fast, params = build(fastgd.Adam, [(arrays, {})], {"lr": 0.01})
    multi = fastgd.MultiSteps(fast, k, max_norm=max_norm, norm_type=norm_type)
    tparams = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    topt = torch.optim.Adam(tparams, lr=0.01, foreach=False)
    for cycle in range(6):
        micro = [[np.asarray(rng.standard_normal(s) * 2, dtype) for s in shapes] for _ in range(k)]
        poison = {2: np.nan, 4: np.inf}.get(cycle)
        if poison is not None:
            micro[1][1][7] = poison
        snap = snapshot(fast, params)
        for t in tparams:
            t.grad = None
        for i, call in enumerate(micro):
            result = multi.step(call)
            for t, g in zip(tparams, call):
                t.grad = torch.from_numpy(g.copy()) if t.grad is None else t.grad + torch.from_numpy(g)
            if i < k - 1:
                assert result == (None, False)
        for t in tparams:
            t.grad /= k
        total, stepped = result
        if poison is not None:
            assert not stepped and multi.mini_step == 0
            assert_unchanged(fast, params, snap)
            continue
        expected = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type)
        topt.step()
        assert stepped and type(total) is np.dtype(dtype).type
        assert total == pytest.approx(expected.item(), rel=RTOL[np.dtype(dtype)])
        assert_all_close(params, [t.detach().numpy() for t in tparams])


def test_clipping_options_are_checked():
    opt = fastgd.SGD([np.zeros(3), np.zeros(0)], lr=0.1)
    with pytest.raises(TypeError, match="max_norm"):
        fastgd.MultiSteps(opt, 2, max_norm="1")
    with pytest.raises(TypeError, match="norm_type"):
        fastgd.MultiSteps(opt, 2, max_norm=1.0, norm_type=None)
    with pytest.raises(ValueError, match="empty parameter"):
        fastgd.MultiSteps(opt, 2, max_norm=1.0, norm_type="inf")
    multi = fastgd.MultiSteps(opt, 1, max_norm=np.inf)  # only skips
    total, stepped = multi.step([np.full(3, 3.0), np.zeros(0)])
    assert stepped and total == np.float64(np.sqrt(27.0))
    np.testing.assert_allclose(opt.param_groups[0]["params"][0], -0.3)


def test_made_after_groups_edited_by_hand_it_follows_them():
    opt = fastgd.SGD([np.zeros(2)], lr=1.0)
    b = np.zeros(3)
    opt.param_groups[0]["params"] = [b]
    multi = fastgd.MultiSteps(opt, 1)
    assert multi.step([np.ones(3)])
    np.testing.assert_array_equal(b, -1.0)


@pytest.mark.parametrize("norm_type", [-1.0, -0.5, np.inf, -np.inf])
def test_orders_without_a_norm_of_nothing_refuse_an_empty_parameter(norm_type):
    opt = fastgd.SGD([np.zeros(0), np.zeros(2)], lr=1.0)
    with pytest.raises(ValueError, match="empty parameter"):
        fastgd.MultiSteps(opt, 1, max_norm=1.0, norm_type=norm_type)
    fastgd.MultiSteps(opt, 1, max_norm=1.0, norm_type=0.5)  # a sum of no powers is 0


def test_a_call_while_another_runs_raises_and_changes_nothing():
    p = ReentrantParameter(np.zeros(3), np.ones(3))
    multi = fastgd.MultiSteps(fastgd.SGD([p], lr=1.0), 2)
    multi.step()
    p.arm("grad", multi.step)
    with pytest.raises(RuntimeError, match=r"step\(\): another call is changing this MultiSteps"):
        multi.step()
    assert multi.mini_step == 1 and p.data.tolist() == [0.0] * 3
    assert multi.step()  # the second call of the cycle: one step on the mean
    np.testing.assert_array_equal(p.data, -1.0)


@pytest.mark.parametrize("max_norm", [None, 10.0])
def test_a_scheduler_stepped_after_each_accumulated_step_is_torchs_pattern(max_norm):
    # torch's accumulation: opt.step() then scheduler.step() at every k-th call.  MultiSteps steps
    # past the scheduler's stand-in for the first step: the scheduler must know it stepped (it
    # warned that it was stepped first, and kept its stand-in), and the rates are torch's
    torch = pytest.importorskip("torch")
    w, t = np.zeros(2), torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt, topt = fastgd.SGD([w], lr=1.0), torch.optim.SGD([t], lr=1.0)
    scheduler = fastgd.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    tscheduler = torch.optim.lr_scheduler.StepLR(topt, step_size=1, gamma=0.5)
    multi = fastgd.MultiSteps(opt, 2, max_norm=max_norm)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for call in range(6):
            grad = np.full(2, call + 1.0)
            t.grad = (t.grad if t.grad is not None else torch.zeros(2, dtype=torch.float64)) + torch.tensor(grad) / 2
            stepped = multi.step([grad])
            if max_norm is not None:
                stepped = stepped[1]
            if stepped:
                scheduler.step()
            if call % 2 == 1:
                topt.step()
                tscheduler.step()
                t.grad = None
            assert stepped == (call % 2 == 1)
            assert opt.param_groups[0]["lr"] == topt.param_groups[0]["lr"]
    np.testing.assert_allclose(w, t.detach().numpy(), rtol=1e-15)
    assert "step" not in vars(opt)  # the stand-in is gone


def test_a_scheduler_stepped_before_the_first_accumulated_step_warns_as_torchs():
    w = np.zeros(2)
    opt = fastgd.SGD([w], lr=1.0)
    scheduler = fastgd.lr_scheduler.StepLR(opt, step_size=1)
    multi = fastgd.MultiSteps(opt, 2)
    multi.step([np.ones(2)])  # not a step yet
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\) was called before optimizer.step\(\)"):
        scheduler.step()


def test_a_group_added_is_refused_at_every_call():
    # a call with a gradient per old parameter went through mid-cycle, and the k-th call then
    # failed with the optimizer's count, not "make a new MultiSteps"
    first, second = np.zeros(2), np.zeros(3)
    opt = fastgd.SGD([first, second], lr=1.0)
    multi = fastgd.MultiSteps(opt, 2)
    opt.add_param_group({"params": [np.zeros(4)]})
    for grads in ([np.ones(2), np.ones(3)], [np.ones(2), np.ones(3), np.ones(4)]):
        with pytest.raises(ValueError, match="make a new MultiSteps"):
            multi.step(grads)
        assert multi.mini_step == 0 and not first.any() and not second.any()


@pytest.mark.parametrize("plain", [True, False])
def test_a_multisteps_loaded_by_joblib_steps_as_before(plain, tmp_path):
    # joblib writes each reference to an array apart: the loaded MultiSteps must still know its
    # optimizer's parameters as those it was made for (it refused every call)
    joblib = pytest.importorskip("joblib")
    params = [np.zeros(3), np.zeros(2)] if plain else [Parameter(np.zeros(3)), Parameter(np.zeros(2))]
    multi = fastgd.MultiSteps(fastgd.Adam(params, lr=0.1), 2)
    multi.step([np.ones(3), np.full(2, 2.0)])
    joblib.dump(multi, tmp_path / "multi.joblib")
    loaded = joblib.load(tmp_path / "multi.joblib")
    for each in (multi, loaded):
        each.step([np.full(3, 3.0), np.ones(2)])
    for before, after in zip(multi.optimizer.param_groups[0]["params"], loaded.optimizer.param_groups[0]["params"]):
        np.testing.assert_array_equal(np.asarray(after), np.asarray(before))
        assert np.asarray(after).any()


def test_a_memory_mapped_parameter_accumulates(rng, tmp_path):
    # the sums were made as the parameter's subclass (np.zeros_like keeps it), which the compiled
    # sum refused: "the compiled pass refused checked gradients; please report"
    mapped = np.lib.format.open_memmap(tmp_path / "p.npy", mode="w+", dtype=np.float64, shape=(5,))
    start = rng.standard_normal(5)
    mapped[...], plain = start, start.copy()
    multi, ref = fastgd.MultiSteps(fastgd.Adam([mapped], lr=0.1), 2), fastgd.Adam([plain], lr=0.1)
    grads = [rng.standard_normal(5) for _ in range(4)]
    for call in grads:
        multi.step([call])
    for first, second in zip(grads[::2], grads[1::2]):
        ref.step([(first + second) / 2])
    np.testing.assert_allclose(mapped, plain, rtol=1e-15)


@pytest.mark.parametrize("setting", ["every_k 0", "every_k at mini_step", "max_norm NaN", "norm_type NaN",
                                     "norm_type -inf over an empty parameter", "max_norm over an empty parameter"])
def test_settings_set_by_hand_are_checked_as_the_constructors(setting):
    # set by hand they were taken unchecked: max_norm NaN stepped every parameter to NaN, every_k 0
    # raised ZeroDivisionError at the k-th call, a NaN norm_type the constructor's error, both after
    # the cycle's gradients were consumed
    params = [np.ones(3), np.zeros(0)]
    max_norm = None if setting == "max_norm over an empty parameter" else 1.0
    norm_type = -np.inf if setting == "max_norm over an empty parameter" else 2.0
    multi = fastgd.MultiSteps(fastgd.SGD(params, lr=0.1), 3, max_norm=max_norm, norm_type=norm_type)
    multi.step([np.ones(3), np.zeros(0)])
    name, value = {"every_k 0": ("every_k", 0), "every_k at mini_step": ("every_k", 1),
                   "max_norm NaN": ("max_norm", np.nan), "norm_type NaN": ("norm_type", np.nan),
                   "norm_type -inf over an empty parameter": ("norm_type", -np.inf),
                   "max_norm over an empty parameter": ("max_norm", 1.0)}[setting]
    before = (multi.every_k, multi.max_norm, multi.norm_type)
    with pytest.raises(ValueError, match="every_k|max_norm|norm|order"):
        setattr(multi, name, value)
    assert (multi.every_k, multi.max_norm, multi.norm_type) == before and multi.mini_step == 1
    with pytest.raises(AttributeError):
        multi.mini_step = 0
    with pytest.raises(ValueError, match="turned on or off by the constructor alone"):
        multi.max_norm = None if max_norm is not None else 1.0  # (step's return would change type)
    multi.every_k = 2  # (above mini_step: taken) the cycle steps on its two gradients' mean
    assert multi.step([np.full(3, 3.0), np.zeros(0)]) in (True, (2.0 * np.sqrt(3), True), (np.float64(2.0), True))
    np.testing.assert_allclose(params[0], 1 - 0.1 * 2.0 * (1.0 if max_norm is None else 1 / (2.0 * np.sqrt(3))))


def test_state_dict_refuses_an_edit_of_param_groups_as_step_refuses_it():
    # state_dict() let the optimizer follow an edit step() refuses: a frozen parameter's momentum
    # dropped, and a checkpoint of two sums and one parameter's state that nothing could load
    a, b = np.ones(2), np.ones(1)
    opt = fastgd.SGD([{"params": [a]}, {"params": [b]}], lr=0.1, momentum=0.9)
    multi = fastgd.MultiSteps(opt, 2)
    for _ in range(3):
        multi.step([np.ones(2), np.ones(1)])
    saved = multi.state_dict()
    opt.param_groups[1]["params"] = []
    for call in (multi.state_dict, lambda: multi.load_state_dict(saved)):
        with pytest.raises(ValueError, match="make a new MultiSteps"):
            call()
    opt.param_groups[1]["params"] = [b]
    assert multi.state_dict()["optimizer"]["state"][1]["momentum_buffer"] is not None
    twin = fastgd.SGD([{"params": [np.ones(2)]}, {"params": [np.ones(1)]}], lr=0.1, momentum=0.9)
    for _ in range(2):  # the steps of the four calls: with momentum, as if never edited
        twin.step([np.ones(2), np.ones(1)])
    assert multi.step([np.ones(2), np.ones(1)])
    np.testing.assert_array_equal(b, twin._params[1])


@pytest.mark.parametrize("given", ["new shape", "old shape"])
def test_a_parameters_data_replaced_by_another_shape_is_named(given):
    # checked against the optimizer's copy of the old array: a gradient of the parameter's new shape
    # was refused as not of "the shape of its parameter", the old one; one of the old shape is
    # summed (the check costs a pass over the parameters at every call) until the k-th call names it
    p = Parameter(np.zeros(3))
    multi = fastgd.MultiSteps(fastgd.SGD([p], lr=0.1), 3)
    multi.step([np.ones(3)])
    p.data = np.zeros(5)
    named = pytest.raises(ValueError, match=re.escape("parameter 0 is now of shape (5,) and dtype float64; this "
                                                      "MultiSteps was made for shape (3,)"))
    if given == "new shape":
        p.grad = np.ones(5)
        with named:
            multi.step()  # (its .grad read)
        assert multi.mini_step == 1
    else:
        assert multi.step([np.ones(3)]) is False
        with named:
            multi.step([np.ones(3)])  # the k-th call
        assert multi.mini_step == 2 and not p.data.any()
