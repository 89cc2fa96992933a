"""fastgd.clip: the norms and clipped gradients against torch.nn.utils and closed forms; the
step's grad_scale against the reference on scaled gradients; skipping non-finite steps."""
import types
import warnings

import numpy as np
import pytest

import fastgd
from fastgd import Parameter

from conftest import DTYPES, NAMES, OPTIONS, RTOL, assert_all_close, build, fast_cls, ref_cls, snapshot, \
    assert_unchanged

NORM_TYPES = (2.0, 1.0, np.inf, 0.5, 3.0, 0.0, -np.inf)
# tails (SIMD, blocks of 1024) and the four stretches of whole blocks read side by side, one block
# each (4099) and three blocks each with two blocks and 5 elements after them (14341)
SIZES = (7, 0, 300, 4099, 1, 2048, 1025, 14341)
#: from the exact norm: float32's rounding; float64's summation error over a few thousand terms
TIGHT = {np.dtype(np.float32): float(np.finfo(np.float32).eps), np.dtype(np.float64): 1e-14}


def gradients(rng, dtype, poison=None, norm_type=2.0):
    """Gradients of several sizes (SIMD tails, an empty one but for the infinity and negative
    norms, which torch refuses for it); poison: a NaN or inf put in one read after the stretches
    (but for those two norms, which read it in one), and in one's third stretch."""
    grads = [(rng.standard_normal(n) * 3).astype(dtype) for n in SIZES if n or 0 <= norm_type < np.inf]
    if poison is not None:
        grads[2][17] = grads[-1][2 * 3072 + 500] = poison
    return grads


def torch_parameters(torch, grads):
    params = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype))
        p.grad = torch.from_numpy(g.copy())
        params.append(p)
    return params


def exact_norm(grads, p):
    """The norm of the concatenated elements, in float64 (p = 0: torch's count of nonzero arrays)."""
    flat = np.concatenate([g.astype(np.float64).ravel() for g in grads])
    if p == 0:
        return float(sum(np.count_nonzero(g) > 0 for g in grads))
    if np.isinf(p):
        return float(np.max(np.abs(flat)) if p > 0 else np.min(np.abs(flat)))
    return float(np.sum(np.abs(flat) ** p) ** (1 / p))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("max_norm", [1.0, 1e6])
def test_clip_grad_norm_matches_torch(rng, dtype, norm_type, max_norm):
    torch = pytest.importorskip("torch")
    grads = gradients(rng, dtype, norm_type=norm_type)
    tparams = torch_parameters(torch, grads)
    exact = exact_norm(grads, norm_type)
    expected_norm = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type)
    norm = fastgd.clip_grad_norm_(grads, max_norm, norm_type)
    assert type(norm) is np.dtype(dtype).type
    # torch sums float32 in float32 blocks: a few ulps from the exact norm, which fastgd rounds once
    rtol = 4e-6 if dtype == np.float32 else 1e-13
    assert norm == pytest.approx(expected_norm.item(), rel=rtol)
    assert norm == pytest.approx(exact, rel=TIGHT[np.dtype(dtype)])
    for g, t in zip(grads, tparams):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_total_norm_is_the_exact_norm_rounded(rng, dtype, norm_type):
    grads = gradients(rng, dtype, norm_type=norm_type)
    assert fastgd.get_total_norm(grads, norm_type) == pytest.approx(exact_norm(grads, norm_type),
                                                                    rel=TIGHT[np.dtype(dtype)])


def test_norm_of_many_float32_elements_to_float32_rounding():
    # 2**22 equal elements: the norm is |x| * 2**11 exactly, which a float32 running sum misses
    x = np.float32(0.1)
    grads = [np.full(2**21, x, dtype=np.float32), np.full(2**21, -x, dtype=np.float32)]
    assert fastgd.get_total_norm(grads) == np.float32(np.float64(x) * 2**11)
    assert fastgd.get_total_norm(grads, 1) == np.float32(np.float64(x) * 2**22)


def test_float64_norm_does_not_overflow_or_underflow():
    for value in (1e200, 1e-200):
        grads = [np.array([3 * value, 4 * value])]
        assert fastgd.get_total_norm(grads) == pytest.approx(5 * value, rel=1e-15)
        assert fastgd.get_total_norm(grads, 3.0) == pytest.approx(value * 91 ** (1 / 3), rel=1e-14)


@pytest.mark.parametrize("norm_type", [25.0, 1100.0, 1113.0, 2000.0, 1e5, 1e300, -2000.0, -1e5])
@pytest.mark.parametrize("value", [2.0, 1.5, 1e-3, 1e-300, 5e-324, 1e-310])
def test_norms_of_a_large_order_are_the_norm(norm_type, value):
    # the largest element scaled into [0.5, 1) still underflowed its power beyond p = 1075 (and
    # the smallest, for p < 0, overflowed it): the norm came out 0, and clip_grad_norm_ clipped
    # nothing; subnormal elements, which no double scale brings near 1, were off from order 20 on.
    # n equal elements have the norm value * n ** (1 / p)
    grads = [np.full(3, value), np.full(1, value)]
    assert fastgd.get_total_norm(grads, norm_type) == pytest.approx(value * 4 ** (1 / norm_type), rel=1e-13)
    grads = [np.array([4.0, value, 2.0])]
    if norm_type > 0:  # the largest term rules
        exact = 4.0 * (1.0 + (value / 4.0) ** norm_type + 0.5 ** norm_type) ** (1.0 / norm_type)
        assert fastgd.get_total_norm(grads, norm_type) == pytest.approx(exact, rel=1e-13)
        clipped = [np.full(4, 2.0)]
        fastgd.clip_grad_norm_(clipped, 1.0, norm_type=norm_type)
        np.testing.assert_allclose(clipped[0], 2.0 / (2.0 * 4 ** (1 / norm_type)), rtol=1e-6)


def test_a_float32_norm_that_overflows_is_inf_silently_as_torchs():
    # finite float32 gradients whose norm overflows float32: torch's norm is inf, without a
    # warning; the cast of fastgd's double norm warned (an overflow in a cast)
    import warnings
    grads = [np.array([3e38, 3e38], dtype=np.float32)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fastgd.get_total_norm(grads) == np.inf
        param = fastgd.Parameter(np.ones(2, dtype=np.float32), grads[0])
        assert fastgd.clipped_step(fastgd.SGD([param], lr=0.1), 1.0) == (np.inf, False)
    np.testing.assert_array_equal(param.data, np.ones(2))  # skipped, as the documentation says
    torch = pytest.importorskip("torch")
    assert torch.nn.utils.get_total_norm([torch.tensor(grads[0])]).item() == np.inf


@pytest.mark.parametrize("norm_type", [1.0, 2.0, np.inf])
def test_a_float32_norm_that_rounds_to_float32s_largest_is_finite(norm_type):
    # float32's largest plus 1e30 (a thousandth of its ulp there) rounds to it: the norm was
    # called inf, the gradients scaled by 0 and clipped_step skipped
    biggest = np.finfo(np.float32).max
    grads = np.array([biggest, 1e30], dtype=np.float32)
    assert fastgd.get_total_norm([grads], norm_type) == biggest
    clipped = grads.copy()
    fastgd.clip_grad_norm_([clipped], 1.0, norm_type)
    param = fastgd.Parameter(np.zeros(2, dtype=np.float32), grads.copy())
    assert fastgd.clipped_step(fastgd.SGD([param], lr=1.0), 1.0, norm_type=norm_type) == (biggest, True)
    np.testing.assert_array_equal(param.data, -clipped)
    if norm_type == 2.0:
        return  # torch's float32 sum of squares overflows (see test_float32_powers_beyond_float32_still_give_the_norm)
    torch = pytest.importorskip("torch")
    tensor = torch.nn.Parameter(torch.zeros(2))
    tensor.grad = torch.tensor(grads)
    assert torch.nn.utils.clip_grad_norm_([tensor], 1.0, norm_type).item() == biggest
    np.testing.assert_array_equal(clipped, tensor.grad.numpy())


@pytest.mark.parametrize(("norm_type", "values", "torch_norm"), [
    (2.0, [3e19, 1e19], np.inf), (7.0, [1e6, 3e5], np.inf), (-2.0, [1e-20, 3e-21], 0.0)])
def test_float32_powers_beyond_float32_still_give_the_norm(norm_type, values, torch_norm):
    """Where the powers of float32 elements leave float32's range but their norm does not, torch's
    float32 sum gets inf or 0 (as the README says); the double sum gets the norm, and clips by it."""
    grads = [np.array(values, dtype=np.float32)]
    exact = np.float32(np.sum(np.abs(np.array(values)) ** norm_type) ** (1 / norm_type))
    assert fastgd.get_total_norm(grads, norm_type) == pytest.approx(exact, rel=1e-6)
    param = Parameter(np.zeros(2, dtype=np.float32), grads[0].copy())
    assert fastgd.clip_grad_norm_([param], 1.0, norm_type) == pytest.approx(exact, rel=1e-6)
    np.testing.assert_allclose(param.grad, grads[0] * min(1.0, 1.0 / (float(exact) + 1e-6)), rtol=1e-6)
    torch = pytest.importorskip("torch")
    assert torch.nn.utils.get_total_norm([torch.tensor(grads[0])], norm_type).item() == torch_norm


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf])
def test_non_finite_gradients_as_torch(rng, dtype, norm_type, poison):
    torch = pytest.importorskip("torch")
    grads = gradients(rng, dtype, poison, norm_type)
    tparams = torch_parameters(torch, grads)
    expected = torch.nn.utils.clip_grad_norm_(tparams, 1.0, norm_type).item()
    norm = fastgd.clip_grad_norm_(grads, 1.0, norm_type)
    if np.isnan(expected):
        assert np.isnan(norm)
    else:
        assert norm == pytest.approx(expected, rel=4e-6)
    for g, t in zip(grads, tparams):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=4e-6, atol=0)
    # error_if_nonfinite: raises when torch raises, and then changes nothing
    grads = gradients(rng, dtype, poison, norm_type)
    before = [g.copy() for g in grads]
    tparams = torch_parameters(torch, grads)
    try:
        torch.nn.utils.clip_grad_norm_(tparams, 1.0, norm_type, error_if_nonfinite=True)
        torch_raised = False
    except RuntimeError:
        torch_raised = True
    if torch_raised:
        with pytest.raises(RuntimeError, match="not finite"):
            fastgd.clip_grad_norm_(grads, 1.0, norm_type, error_if_nonfinite=True)
        for g, b in zip(grads, before):
            np.testing.assert_array_equal(g, b)
    else:
        fastgd.clip_grad_norm_(grads, 1.0, norm_type, error_if_nonfinite=True)


def test_parameters_none_grads_and_single_arrays(rng):
    torch = pytest.importorskip("torch")
    grads = gradients(rng, np.float32)
    params = [Parameter(np.zeros_like(g), g) for g in grads] + [Parameter(np.zeros(3, np.float32))]
    tparams = torch_parameters(torch, grads) + [torch.nn.Parameter(torch.zeros(3))]
    assert fastgd.clip_grad_norm_(params, 0.5) == pytest.approx(
        torch.nn.utils.clip_grad_norm_(tparams, 0.5).item(), rel=4e-6)
    for p, t in zip(params, tparams):
        if p.grad is not None:
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=4e-6)
    single = grads[3].copy()
    assert fastgd.clip_grad_norm_(single, 1.0) == fastgd.get_total_norm([grads[3]])
    assert fastgd.get_total_norm(Parameter(np.zeros(2))) == np.float32(0.0)  # no gradient: torch's tensor(0.)
    empty = fastgd.get_total_norm([])
    assert type(empty) is np.float32 and empty == 0


def test_mixed_dtypes_promote_as_torch(rng):
    torch = pytest.importorskip("torch")
    grads = [gradients(rng, np.float32)[2], gradients(rng, np.float64)[3]]
    tparams = torch_parameters(torch, grads)
    expected = torch.nn.utils.clip_grad_norm_(tparams, 0.5)
    norm = fastgd.clip_grad_norm_(grads, 0.5)
    assert type(norm) is np.float64 and norm == pytest.approx(expected.item(), rel=1e-7)
    for g, t in zip(grads, tparams):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip_value", [0.5, 0.0, -1.0, np.inf, np.nan])
def test_clip_grad_value_matches_torch(rng, dtype, clip_value):
    torch = pytest.importorskip("torch")
    grads = gradients(rng, dtype, np.nan)
    grads[0][0] = np.inf
    tparams = torch_parameters(torch, grads)
    torch.nn.utils.clip_grad_value_(tparams, clip_value)
    assert fastgd.clip_grad_value_(grads, clip_value) is None
    for g, t in zip(grads, tparams):
        np.testing.assert_array_equal(g, t.grad.numpy())


@pytest.mark.parametrize("foreach", [None, True, False])
def test_foreach_is_taken_and_ignored_as_torch(rng, foreach):
    """torch's foreach picks an implementation: the same results whatever it says."""
    torch = pytest.importorskip("torch")
    grads = gradients(rng, np.float32)
    clipped, tparams = [g.copy() for g in grads], torch_parameters(torch, grads)
    expected = torch.nn.utils.clip_grad_norm_(tparams, 1.0, foreach=foreach)
    assert fastgd.clip_grad_norm_(clipped, 1.0, foreach=foreach) == pytest.approx(expected.item(), rel=4e-6)
    assert fastgd.get_total_norm(grads, foreach=foreach) == fastgd.get_total_norm(grads)
    fastgd.clip_grad_value_(clipped, 0.01, foreach=foreach)
    torch.nn.utils.clip_grad_value_(tparams, 0.01, foreach=foreach)
    for g, t in zip(clipped, tparams):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=4e-6)
    fastgd.clip_grads_with_norm_(clipped, 0.001, fastgd.get_total_norm(clipped), foreach=foreach)
    assert fastgd.get_total_norm(clipped) == pytest.approx(0.001, rel=1e-4)
    fastgd.clip_grad_value_(clipped, 0.01, foreach=np.True_)  # a NumPy bool too, as torch and the optimizers
    for call in (lambda: fastgd.clip_grad_norm_(clipped, 1.0, foreach="yes"),
                 lambda: fastgd.clip_grad_value_(clipped, 1.0, foreach=1)):
        with pytest.raises(TypeError, match="foreach"):
            call()


def test_unusual_arrays_are_read_and_written_in_place(rng):
    torch = pytest.importorskip("torch")
    base = rng.standard_normal((40, 6)).astype(np.float32)
    strided = base[::2, ::3]  # not contiguous: clipped in place through the view
    swapped = rng.standard_normal(9).astype(">f8")
    tparams = torch_parameters(torch, [np.ascontiguousarray(strided), swapped.astype(np.float64)])
    expected = torch.nn.utils.clip_grad_norm_(tparams, 0.1)
    assert fastgd.clip_grad_norm_([strided, swapped], 0.1) == pytest.approx(expected.item(), rel=1e-6)
    np.testing.assert_allclose(base[::2, ::3], tparams[0].grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(swapped, tparams[1].grad.numpy(), rtol=1e-6)
    fastgd.clip_grad_value_([strided], 0.01)
    assert np.abs(base[::2, ::3]).max() <= np.float32(0.01)


@pytest.mark.parametrize("norm_type", [np.inf, -np.inf, -1.0, -0.5, 0.0, 0.5, 2.0])
def test_norms_of_an_empty_gradient_as_torch(norm_type):
    # torch refuses the orders whose norm of no elements has no value: inf and the negative ones
    torch = pytest.importorskip("torch")
    grads = [np.array([3.0, 4.0]), np.zeros(0)]
    try:
        expected = torch.nn.utils.get_total_norm([torch.from_numpy(g) for g in grads], norm_type).item()
    except RuntimeError:
        with pytest.raises(ValueError, match="empty"):
            fastgd.get_total_norm(grads, norm_type)
        with pytest.raises(ValueError, match="empty"):
            fastgd.clip_grad_norm_(grads, 1.0, norm_type)
        assert grads[0].tolist() == [3.0, 4.0]
    else:
        assert fastgd.get_total_norm(grads, norm_type) == pytest.approx(expected, rel=1e-15)


def test_an_empty_generator_warns_as_torchs():
    """A generator of parameters used up already (an earlier loop over it) clips nothing: both warn
    there, and neither for an empty list or a generator that yields."""
    torch = pytest.importorskip("torch")
    for clip, make in ((fastgd.clip_grad_norm_, lambda: Parameter(np.full(3, 9.0))),
                       (torch.nn.utils.clip_grad_norm_, lambda: torch.nn.Parameter(torch.full((3,), 9.0)))):
        params = [make()]
        params[0].grad = params[0].data * 1
        used = (p for p in params)
        list(used)
        with pytest.warns(UserWarning, match="empty generator"):
            assert clip(used, 1.0) == 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            clip([], 1.0)
            assert clip((p for p in params), 1.0) > 1  # (the norm before clipping)
        assert np.asarray(params[0].grad).tolist() == pytest.approx([1 / 3 ** 0.5] * 3)


@pytest.mark.parametrize("norm_type", [-np.inf, -1.0, -2.5, np.inf, 0.0, 2.0])
def test_no_gradients_at_all_have_norm_zero_as_torch(norm_type):
    """No gradients (an empty list, or every .grad None): torch's norm is tensor(0.) for every
    order, and error_if_nonfinite does not raise; so are fastgd's norms and clipped steps."""
    torch = pytest.importorskip("torch")
    tparams = [torch.nn.Parameter(torch.zeros(2))]
    for fast_items, torch_items in (([], []), ([Parameter(np.zeros(2)), Parameter(np.zeros(3))], tparams)):
        expected = torch.nn.utils.get_total_norm(torch_items, norm_type)
        clipped = torch.nn.utils.clip_grad_norm_(torch_items, 1.0, norm_type, error_if_nonfinite=True)
        for got in (fastgd.get_total_norm(fast_items, norm_type),
                    fastgd.get_total_norm(fast_items, norm_type, error_if_nonfinite=True),
                    fastgd.clip_grad_norm_(fast_items, 1.0, norm_type),
                    fastgd.clip_grad_norm_(fast_items, 1.0, norm_type, error_if_nonfinite=True)):
            assert type(got) is np.float32 and got == expected.item() == clipped.item()
    w = Parameter(np.ones(2))
    opt = fastgd.SGD([w], lr=0.1)
    total, stepped = fastgd.clipped_step(opt, 1.0, norm_type=norm_type)
    assert type(total) is np.float32 and total == expected.item() and stepped
    assert w.data.tolist() == [1.0, 1.0]


def _listed(data):
    """A Parameter whose grad is a list: refused by p.grad = ..., set as a subclass or an old pickle may."""
    param = Parameter(data)
    object.__setattr__(param, "grad", [1.0])
    return param


def test_bad_input_is_refused_and_changes_nothing(rng):
    good = rng.standard_normal(5).astype(np.float32)
    before = good.copy()
    readonly = rng.standard_normal(3)
    readonly.flags.writeable = False
    cases = [
        (TypeError, "int64", lambda: fastgd.clip_grad_norm_([good, np.arange(3)], 0.1)),
        (TypeError, r"parameters\[1\] is a str", lambda: fastgd.clip_grad_norm_([good, "x"], 0.1)),
        (TypeError, r"parameters\[0\].grad is a list", lambda: fastgd.clip_grad_norm_([_listed(good)], 0.1)),
        (ValueError, "read-only", lambda: fastgd.clip_grad_norm_([good, readonly], 0.1)),
        (ValueError, "read-only", lambda: fastgd.clip_grad_value_([good, readonly], 0.1)),
        (TypeError, "norm_type", lambda: fastgd.clip_grad_norm_([good], 0.1, "two")),
        (ValueError, "norm_type", lambda: fastgd.clip_grad_norm_([good], 0.1, float("nan"))),
        (ValueError, "norm_type must be a number a double holds", lambda: fastgd.clip_grad_norm_([good], 0.1, 10**400)),
        (TypeError, "max_norm", lambda: fastgd.clip_grad_norm_([good], None)),
        (TypeError, "clip_value", lambda: fastgd.clip_grad_value_([good], "1")),
        (ValueError, "clip_value must be a number a double holds", lambda: fastgd.clip_grad_value_([good], 10**400)),
        (TypeError, "parameters must be", lambda: fastgd.clip_grad_norm_(3.0, 1.0)),
        # only a fastgd.Parameter is read for its .grad (a torch tensor's None .grad is no gradient to skip)
        (TypeError, r"parameters\[0\] is a types.SimpleNamespace",
         lambda: fastgd.clip_grad_norm_([types.SimpleNamespace(grad=good)], 0.1)),
    ]
    for error, match, call in cases:
        with pytest.raises(error, match=match):
            call()
        np.testing.assert_array_equal(good, before)
    assert fastgd.get_total_norm([readonly]) == pytest.approx(np.linalg.norm(readonly))  # reading is fine


# -- the step's grad_scale -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_grad_scale_is_a_step_on_scaled_gradients(rng, dtype, name, n_threads):
    shapes = [(3, 4), (5000,), (), (1,)]
    groups = [([np.asarray(rng.standard_normal(s), dtype) for s in shapes], {})]
    for kwargs in OPTIONS[name]:
        fast, params = build(fast_cls(name), groups, dict(kwargs, n_threads=n_threads))
        ref, ref_params = build(ref_cls(name), groups, kwargs)
        for scale in (0.37, 1.0, 0.0, 2.5):
            grads = [np.asarray(rng.standard_normal(s), dtype) for s in shapes]
            kept = [g.copy() for g in grads]
            fast.step(grads, grad_scale=scale)
            ref.step([np.multiply(g, g.dtype.type(scale), out=np.empty_like(g)) for g in grads])
            for g, k in zip(grads, kept):
                np.testing.assert_array_equal(g, k)  # the gradients are only read
            assert_all_close(params, ref_params)


@pytest.mark.parametrize("name", NAMES)
def test_grad_scale_with_a_gradient_that_is_an_earlier_parameter(rng, name):
    """Such a gradient is read after that parameter's update (README), times the scale: by the
    compiled step and by the reference alike (which scaled every gradient before any update)."""
    results = []
    for cls in (fast_cls(name), ref_cls(name)):
        a, b, c = (np.linspace(1.0, 2.0, 5) * k for k in (1, 10, 100))
        opt = cls([{"params": [a, b]}, {"params": [c]}], **OPTIONS[name][-1])
        for _ in range(3):
            opt.step([np.ones(5), a, b], grad_scale=2.5)  # b's gradient is a; c's is b
        results.append((a, b, c))
    assert_all_close(results[0], results[1])
    if name == "SGD" and OPTIONS[name][0] == dict(lr=0.05):  # and as the closed form reads them
        a, b, c = (np.linspace(1.0, 2.0, 5) * k for k in (1, 10, 100))
        opt = fastgd.SGD([a, b, c], lr=0.05)
        opt.step([np.ones(5), a, b], grad_scale=2.5)
        a0, b0, c0 = (np.linspace(1.0, 2.0, 5) * k for k in (1, 10, 100))
        a1 = a0 - 0.05 * 2.5
        b1 = b0 - 0.05 * 2.5 * a1
        np.testing.assert_allclose((a, b, c), (a1, b1, c0 - 0.05 * 2.5 * b1), rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_clipped_step_matches_torch_clip_then_step(rng, dtype, name):
    torch = pytest.importorskip("torch")
    shapes = [(3, 4), (700,), (1,)]
    arrays = [np.asarray(rng.standard_normal(s), dtype) for s in shapes]
    kwargs = dict(OPTIONS[name][-1])
    fast, params = build(fast_cls(name), [(arrays, {})], kwargs)
    tparams = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    topt = getattr(torch.optim, name)(tparams, foreach=False, **kwargs)
    for step in range(4):
        grads = [np.asarray(rng.standard_normal(s) * 4, dtype) for s in shapes]
        for t, g in zip(tparams, grads):
            t.grad = torch.from_numpy(g.copy())
        expected = torch.nn.utils.clip_grad_norm_(tparams, 0.5 + step)
        topt.step()
        norm, stepped = fastgd.clipped_step(fast, 0.5 + step, grads)
        assert stepped and norm == pytest.approx(expected.item(), rel=RTOL[np.dtype(dtype)])
        assert_all_close(params, [t.detach().numpy() for t in tparams])
        # the same with fastgd's two calls
    norm = fastgd.get_total_norm(grads)
    coef = fastgd.clip_coef(1.0, norm)
    expected_coef = torch.clamp(1.0 / (torch.tensor(norm) + 1e-6), max=1.0).item()
    assert type(coef) is type(norm) and coef == pytest.approx(expected_coef, rel=2 * float(np.finfo(dtype).eps))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", [2.0, 1.0, np.inf, 0.0, -1.0])
@pytest.mark.parametrize("loss_scale", [1024.0, 0.25, -8.0])
def test_clipped_step_with_grad_scale_is_torchs_unscale_clip_then_step(rng, dtype, norm_type, loss_scale):
    # torch's GradScaler way: gradients of a scaled loss, unscaled in place (times 1/scale), clipped,
    # stepped; clipped_step reads them times grad_scale and writes them never
    torch = pytest.importorskip("torch")
    shapes = [(3, 4), (700,), (1,)]
    arrays = [np.asarray(rng.standard_normal(s), dtype) for s in shapes]
    fast, params = build(fast_cls("Adam"), [(arrays, {})], dict(lr=0.1))
    tparams = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    topt = torch.optim.Adam(tparams, lr=0.1, foreach=False)
    for step in range(3):
        grads = [np.asarray(rng.standard_normal(s) * 4 * loss_scale, dtype) for s in shapes]
        kept = [g.copy() for g in grads]
        for t, g in zip(tparams, grads):
            t.grad = torch.from_numpy(g.copy()).mul_(1 / loss_scale)
        expected = torch.nn.utils.clip_grad_norm_(tparams, 0.5 + step, norm_type=norm_type)
        topt.step()
        norm, stepped = fastgd.clipped_step(fast, 0.5 + step, grads, norm_type=norm_type, grad_scale=1 / loss_scale)
        assert stepped and norm == pytest.approx(expected.item(), rel=RTOL[np.dtype(dtype)])
        assert_all_close(params, [t.detach().numpy() for t in tparams])
        for g, before in zip(grads, kept):
            np.testing.assert_array_equal(g, before)
    for bad, error in ((np.inf, ValueError), ("2", TypeError)):
        with pytest.raises(error, match="grad_scale"):
            fastgd.clipped_step(fast, 1.0, grads, grad_scale=bad)
    assert_all_close(params, [t.detach().numpy() for t in tparams])


def test_clipped_step_reads_parameters_grads(rng):
    data = [rng.standard_normal(4), rng.standard_normal(3)]
    params = [Parameter(d.copy(), rng.standard_normal(d.shape) * 10) for d in data]
    opt = fastgd.SGD(params, lr=0.1)
    ref = fastgd.reference.SGD([d.copy() for d in data], lr=0.1)
    grads = [p.grad.copy() for p in params]
    norm, stepped = fastgd.clipped_step(opt, 1.0)
    fastgd.clip_grad_norm_(grads, 1.0)
    ref.step(grads)
    assert stepped and norm == fastgd.get_total_norm([p.grad for p in params])
    assert_all_close([p.data for p in params], ref._params)
    with pytest.raises(TypeError, match="plain array"):
        fastgd.clipped_step(fastgd.SGD([np.zeros(2)]), 1.0)
    with pytest.raises(TypeError, match="optimizer must be a fastgd optimizer, got list"):  # (an AttributeError)
        fastgd.clipped_step([np.zeros(2)], 1.0)


def test_clipped_step_scales_a_shared_gradient_once(rng):
    # the documented difference (README): two parameters listing one gradient array count it twice
    # in the norm, as torch's clip_grad_norm_ does, but the step scales it once, where
    # clip_grad_norm_ (torch's and fastgd's) scales it in place once for each parameter
    grad = rng.standard_normal(4) * 10
    params = [Parameter(np.zeros(4), grad), Parameter(np.zeros(4), grad)]
    norm, stepped = fastgd.clipped_step(fastgd.SGD(params, lr=1.0), 1.0)
    expected_norm = np.sqrt(2 * grad @ grad)
    assert stepped and norm == pytest.approx(expected_norm, rel=1e-15)
    for p in params:
        np.testing.assert_allclose(p.data, -grad / (expected_norm + 1e-6), rtol=1e-14)
    shared = grad.copy()
    fastgd.clip_grad_norm_([shared, shared], 1.0)  # in place, once for each listing: by the factor squared
    np.testing.assert_allclose(shared, grad / (expected_norm + 1e-6) ** 2, rtol=1e-14)
    torch = pytest.importorskip("torch")
    tied, listed = torch.tensor(grad), [torch.zeros(4, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    for p in listed:
        p.grad = tied
    assert torch.nn.utils.clip_grad_norm_(listed, 1.0).item() == pytest.approx(expected_norm, rel=1e-15)
    np.testing.assert_allclose(tied.numpy(), shared, rtol=1e-14)


@pytest.mark.parametrize("norm_type", NORM_TYPES + (-2.0, "inf"))
@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf])
def test_clipped_step_skips_non_finite_gradients(rng, poison, norm_type):
    # orders <= 0 can give a finite norm of gradients holding inf (0: NaN too): skipped all the same
    sizes = (6, 0, 50) if 0 <= float(norm_type) < np.inf else (6, 50)  # others refuse an empty gradient
    arrays = [rng.standard_normal(n) for n in sizes]
    opt, params = build(fastgd.Adam, [(arrays, {})], {})
    opt.step([rng.standard_normal(n) for n in sizes])
    snap = snapshot(opt, params)
    grads = [rng.standard_normal(n) for n in sizes]
    grads[-1][3] = poison
    norm, stepped = fastgd.clipped_step(opt, 1.0, grads, norm_type=norm_type)
    assert not stepped
    assert norm == fastgd.get_total_norm(grads, norm_type) or np.isnan(norm)  # the norm of order norm_type
    assert_unchanged(opt, params, snap)


@pytest.mark.parametrize("norm_type", [0.0, -np.inf, -2.0, 1.0])
def test_clipped_step_of_other_orders_is_clip_then_step(rng, norm_type):
    sizes = (6, 50)
    arrays = [rng.standard_normal(n) for n in sizes]
    opt, params = build(fastgd.Adam, [(arrays, {})], {})
    ref = fastgd.reference.Adam([a.copy() for a in arrays])
    for _ in range(3):
        grads = [rng.standard_normal(n) * 3 for n in sizes]
        norm, stepped = fastgd.clipped_step(opt, 0.7, grads, norm_type=norm_type)
        clipped = [g.copy() for g in grads]
        assert stepped and norm == fastgd.clip_grad_norm_(clipped, 0.7, norm_type)
        ref.step(clipped)
        assert_all_close(params, ref._params)


def test_bad_grad_scale_changes_nothing(rng):
    arrays = [rng.standard_normal(6)]
    opt, params = build(fastgd.Adam, [(arrays, {})], {})
    snap = snapshot(opt, params)
    # (an int beyond a double raised OverflowError)
    for value, error in ((float("nan"), ValueError), (np.inf, ValueError), (10**400, ValueError), ("1", TypeError),
                         (True, TypeError), (None, TypeError)):
        with pytest.raises(error, match="grad_scale"):
            opt.step([rng.standard_normal(6)], grad_scale=value)
        assert_unchanged(opt, params, snap)
    opt.step([np.ones(6)], grad_scale=np.float32(0.5))  # a NumPy scalar is a real number


def test_threads_clipping_while_gradients_are_replaced_do_not_crash(rng):
    import threading

    params = [Parameter(rng.standard_normal(2000), rng.standard_normal(2000)) for _ in range(4)]
    stop = threading.Event()

    def replace():
        while not stop.is_set():
            for p in params:
                p.grad = None if rng.random() < 0.3 else np.ones(2000)

    def clip():
        for _ in range(300):
            norm = fastgd.clip_grad_norm_(params, 1.0)
            assert np.isfinite(norm)
            fastgd.clip_grad_value_(params, 0.5)

    threads = [threading.Thread(target=replace)] + [threading.Thread(target=clip) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5])
def test_subnormal_gradients_have_their_norm(norm_type):
    # float64 gradients whose largest element is subnormal: their norm (subnormal too), not NaN;
    # oracle: the sum in long double
    for grads in ([np.full(4, 1e-310)], [np.array([1e-310, 0.0, 0.0]), np.array([-3e-311])], [np.array([5e-324])]):
        flat = np.concatenate(grads).astype(np.longdouble)
        exact = float(np.sum(np.abs(flat) ** norm_type) ** (1 / np.longdouble(norm_type)))
        assert fastgd.get_total_norm(grads, norm_type) == pytest.approx(exact, rel=1e-9, abs=5e-324)
        before = [g.copy() for g in grads]
        fastgd.clip_grad_norm_(grads, 1.0, norm_type)  # far below max_norm: unchanged, as torch leaves them
        for g, b in zip(grads, before):
            np.testing.assert_array_equal(g, b)


@pytest.mark.parametrize("norm_type", [-1.0, -2.5, -7.0])
def test_negative_orders_of_huge_and_tiny_float64_gradients_have_their_norm(norm_type):
    # a negative order's powers overflow over tiny elements and underflow over huge ones: the norm
    # was 0 or inf (and clipped_step skipped the step of finite gradients, taking inf for NaN);
    # oracle: the sum in long double (torch's, for one element, is exact too)
    cases = ([np.array([-1.3913452355560777e300])], [np.array([1e300, 3e299]), np.array([7e301])],
             [np.array([1.34e-200, 2e-200])], [np.array([7.7e-311])], [np.array([1e-300, 1e300])])
    for grads in cases:
        flat = np.concatenate(grads).astype(np.longdouble)
        exact = float(np.sum(np.abs(flat) ** norm_type) ** (1 / np.longdouble(norm_type)))
        assert fastgd.get_total_norm(grads, norm_type) == pytest.approx(exact, rel=1e-12, abs=5e-324)
        weights = [np.zeros_like(g) for g in grads]
        norm, stepped = fastgd.clipped_step(fastgd.SGD(weights, lr=1.0), 0.5, [g.copy() for g in grads],
                                            norm_type=norm_type)
        assert stepped and norm == pytest.approx(exact, rel=1e-12, abs=5e-324)
        factor = min(0.5 / (exact + 1e-6), 1.0)  # clip_coef's, as torch's
        for w, g in zip(weights, grads):
            np.testing.assert_allclose(w, -g * factor, rtol=1e-12)
    assert fastgd.get_total_norm([np.array([0.0, 1e300])], norm_type) == 0.0  # 0 ** norm_type is inf, as in torch


def test_clipped_step_reads_the_parameters_param_groups_list_now(rng):
    # groups edited by hand: the step and the norm are those of the parameters listed now
    a = Parameter(np.zeros(2), np.full(2, 1.0))
    b = Parameter(np.zeros(2), np.full(2, 2.0))
    opt = fastgd.SGD([a], lr=1.0)
    opt.param_groups[0]["params"] = [b]
    norm, stepped = fastgd.clipped_step(opt, 100.0)
    assert stepped and norm == fastgd.get_total_norm([b.grad])
    assert a.data.tolist() == [0.0, 0.0] and b.data.tolist() == [-2.0, -2.0]
    plain = np.zeros(2)
    opt.param_groups[0]["params"] = [plain]
    with pytest.raises(TypeError, match="plain array"):
        fastgd.clipped_step(opt, 0.1)
    assert plain.tolist() == [0.0, 0.0]


def test_clipped_step_refuses_a_nan_max_norm():
    opt = fastgd.SGD([np.zeros(2)], lr=1.0)
    with pytest.raises(ValueError, match="max_norm must not be NaN"):
        fastgd.clipped_step(opt, float("nan"), [np.ones(2)])
    with pytest.raises(ValueError, match="max_norm must be a number a double holds"):
        fastgd.clip_grad_norm_([np.ones(2)], 10**400)


class _Sub(np.ndarray):
    pass


@pytest.mark.parametrize("kind", ["subclass", "memmap", "matrix", "masked"])
def test_gradients_of_an_ndarray_subclass_are_clipped_as_the_step_takes_them(tmp_path, kind):
    # the step takes them (as plain arrays), and refuses a masked one; the norm passes said
    # "cannot unpack non-iterable NoneType object"
    torch = pytest.importorskip("torch")
    values = np.arange(1.0, 7.0).reshape(2, 3)
    if kind == "subclass":
        grad = values.copy().view(_Sub)
    elif kind == "memmap":
        grad = np.memmap(tmp_path / "grad", dtype=np.float64, mode="w+", shape=(2, 3))
        grad[...] = values
    elif kind == "matrix":
        if not hasattr(np, "matrix"):
            pytest.skip("this NumPy has no np.matrix")
        with warnings.catch_warnings():  # NumPy's PendingDeprecationWarning of the class this case means to use
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            grad = np.asmatrix(values.copy())
    else:
        grad = np.ma.masked_array(values.copy())
    if kind == "masked":
        for call in (lambda: fastgd.get_total_norm([grad]), lambda: fastgd.clip_grad_norm_([grad], 1.0)):
            with pytest.raises(TypeError, match=r"tensors\[0\] is a masked array|parameters\[0\] is a masked array"):
                call()
        np.testing.assert_array_equal(grad, values)
        return
    tparam = torch.nn.Parameter(torch.zeros(2, 3, dtype=torch.float64))
    tgrad = tparam.grad = torch.tensor(values)
    assert fastgd.get_total_norm([grad]) == torch.nn.utils.get_total_norm([tgrad]).item()
    param = fastgd.Parameter(np.zeros((2, 3)), grad=grad)
    assert fastgd.clipped_step(fastgd.SGD([param], lr=1.0), 1.0)[1]  # reads it, writes it not
    np.testing.assert_array_equal(np.asarray(grad), values)
    assert fastgd.clip_grad_norm_([grad], 1.0) == torch.nn.utils.clip_grad_norm_([tparam], 1.0).item()
    np.testing.assert_array_equal(np.asarray(grad), tgrad.numpy())  # clipped in place, as torch's
    np.testing.assert_array_equal(param.data, -tgrad.numpy())
