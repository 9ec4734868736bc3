"""Tensor-level behaviour: creation dtypes, conversions, comparisons and method forms of ops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlia
from helpers import check_vjp, compare_torch

RNG = np.random.default_rng(9)


def test_python_data_becomes_float32_or_int64_and_arrays_keep_their_dtype():
    assert dlia.tensor([1.0, 2.0]).dtype == np.float32
    assert dlia.tensor([1, 2]).dtype == np.int64
    assert dlia.tensor(np.ones(2, np.float64)).dtype == np.float64
    assert dlia.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert dlia.zeros(2, 3).shape == (2, 3) and dlia.ones((2,)).dtype == np.float32


def test_item_and_conversions():
    x = dlia.tensor([[2.5]])
    assert x.item() == 2.5 and float(x) == 2.5 and int(dlia.tensor([3])) == 3
    with pytest.raises(ValueError, match="1"):
        dlia.tensor([1.0, 2.0]).item()
    np.testing.assert_array_equal(np.asarray(x), [[2.5]])
    assert dlia.tensor([1.0, 2.0]).tolist() == [1.0, 2.0]


def test_comparisons_give_boolean_tensors_without_gradients():
    x = dlia.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    for mask in (x > 2, x >= 2, x < 2, x <= 2, x == 2, x != 2):
        assert mask.dtype == np.bool_ and not mask.requires_grad
    np.testing.assert_array_equal((x > 1.5).numpy(), [False, True, True])


@pytest.mark.parametrize("axes, twin", [
    ((0, 1), lambda t: t.transpose(0, 1)),
    ((1, 0), lambda t: t.transpose(1, 0)),
    ((-1, 0), lambda t: t.transpose(-1, 0)),
    (((1, 0),), lambda t: t.permute(1, 0)),
    ((), lambda t: t.permute(1, 0)),
])
def test_transpose_method_forms_on_2d(axes, twin):
    compare_torch(lambda x: x.transpose(*axes), twin, RNG.standard_normal((3, 4)))


def test_transpose_method_swaps_two_axes_or_permutes_all_on_3d():
    a = RNG.standard_normal((2, 3, 4))
    compare_torch(lambda x: x.transpose(2, 0), lambda t: t.transpose(2, 0), a)
    compare_torch(lambda x: x.transpose(1, 2, 0), lambda t: t.permute(1, 2, 0), a)
    compare_torch(lambda x: x.transpose([1, 2, 0]), lambda t: t.permute(1, 2, 0), a)


def test_dtype_conversion_is_differentiable():
    a = RNG.standard_normal((2, 3))
    outs, xs = compare_torch(lambda x: x.float() * 2.0, lambda t: t.float() * 2.0, a, atol=1e-6, rtol=1e-6)
    assert outs[0].dtype == np.float32 and xs[0].grad.dtype == np.float64
    check_vjp(lambda x: x.astype(np.float64).tanh(), a)


@pytest.mark.parametrize("dtype, twin", [(np.int64, torch.int64), (np.int32, torch.int32), (np.bool_, torch.bool)])
def test_casting_to_an_integer_or_bool_dtype_cuts_the_graph(dtype, twin):
    a = np.array([-1.5, 0.0, 2.7])
    x, t = dlia.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    k, tk = x.to(dtype=dtype), t.to(twin)
    assert k.dtype == dtype and not k.requires_grad and k.is_leaf and not tk.requires_grad
    (k.double() * x).sum().backward()  # the gradient reaches x only through the float factor
    (tk.double() * t).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_argmax_and_argmin_follow_numpy():
    a = RNG.standard_normal((3, 4))
    x = dlia.tensor(a)
    np.testing.assert_array_equal(x.argmax(1).numpy(), a.argmax(1))
    np.testing.assert_array_equal(x.argmin().numpy(), a.argmin())
    np.testing.assert_array_equal(x.argmax(0).numpy(), torch.tensor(a).argmax(0).numpy())


def test_numpy_arrays_on_the_left_defer_to_tensor_operators():
    a = RNG.standard_normal((4, 2))
    b = RNG.standard_normal((2, 3))
    compare_torch(lambda x: a @ x, lambda t: torch.tensor(a) @ t, b)
    compare_torch(lambda x: a[:, :1] - x[:1], lambda t: torch.tensor(a[:, :1]) - t[:1], b)
    compare_torch(lambda x: 1.0 / (2.0 + x * x), lambda t: 1.0 / (2.0 + t * t), b)


def test_inputs_on_two_devices_name_the_op_and_both():
    """An op given a CPU array and a non-NumPy (GPU) array raises DeviceError before computing."""

    class OnGpu:  # stands in for a CuPy array: only its type and shape are read
        ndim, shape = 1, (3,)

    a, b = dlia.tensor(np.ones(3)), dlia.tensor(np.ones(3))
    b.data = OnGpu()
    with pytest.raises(dlia.DeviceError, match=r"mul: inputs are on different devices \(cpu \(3,\), gpu \(3,\)\)"):
        a * b


@pytest.mark.parametrize("data", [None, ["a"], "1.5", [1.0, None], {"a": 1}, np.array([object()])])
@pytest.mark.parametrize("dtype", [None, np.float32])
def test_data_that_is_not_numbers_is_rejected(data, dtype):
    """dlia.tensor(None) and dlia.tensor(["a"]) made object and string arrays (None with a float dtype: nan)."""
    with pytest.raises(TypeError, match="numbers"):
        dlia.tensor(data, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64, np.int32, np.bool_])
def test_zeros_like_and_ones_like_fill_keeping_the_dtype(dtype):
    values = [np.inf, -np.inf, np.nan, 2.0] if np.dtype(dtype).kind == "f" else [1, 0, 1, 1]
    a = np.array(values).astype(dtype)
    x = dlia.tensor(a)
    for ours, theirs in ((dlia.zeros_like(x), torch.zeros_like(torch.from_numpy(a))),
                         (dlia.ones_like(x), torch.ones_like(torch.from_numpy(a)))):
        assert ours.dtype == theirs.numpy().dtype  # a bool tensor gives bool, not int64
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())  # inf·0 would be NaN


def test_iterating_a_tensor_gives_its_rows_and_stops_as_torch():
    t = dlia.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    rows = list(t)
    assert len(rows) == 3 and [r.shape for r in rows] == [(2,)] * 3
    np.testing.assert_array_equal(rows[2].numpy(), [5.0, 6.0])
    a, b, c = t  # unpacking, as torch allows
    (a + 2 * c).sum().backward()
    np.testing.assert_array_equal(t.grad, [[1, 1], [0, 0], [2, 2]])
    assert list(dlia.zeros(0, 3)) == []
    with pytest.raises(TypeError, match="0-d"):
        iter(dlia.tensor(1.0))


def test_an_op_given_a_raw_numpy_array_says_so_as_torch():
    """A raw array's ``.data`` is a memoryview: the op took it for a GPU array and raised a
    DeviceError calling the NumPy array 'gpu'."""
    from dlia.core import ops

    with pytest.raises(TypeError, match="expected dlia tensors, got a numpy.ndarray"):
        ops.linear(np.zeros((2, 5), np.float32), dlia.zeros(3, 5))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        ops.linear(dlia.zeros(2, 5), np.zeros((3, 5), np.float32))
