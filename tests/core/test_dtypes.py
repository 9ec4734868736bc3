"""Type promotion against torch: the dtype (and values) of every binary op over mixed operands.

One table: the ops (``+ - * / **``, comparisons, ``where``, ``maximum``, ``minimum``, ``matmul``) ×
the operands (tensors of float16/float32/float64/int64/bool with dimensions and 0-d, Python
numbers, lists) on either side. torch is the oracle; a list has no torch twin, so it must behave
as a Python number of its kind would (it takes the dtype torch gives that number).
"""

from __future__ import annotations

import operator
import warnings
from typing import Any

import numpy as np
import pytest
import torch

import dlia

DTYPES = [np.float16, np.float32, np.float64, np.int64, np.bool_]
VALUES = {"f": [0.5, 2.0, 3.0], "i": [1, 2, 3], "b": [True, False, True]}
NUMBERS = [2.5, 2, True]
LISTS = [[1.5, 2.5, 0.5], [1, 3, 2], [True, True, False]]


def _operands() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for dt in DTYPES:
        a = np.array(VALUES[np.dtype(dt).kind], dtype=dt)
        out += [(f"{np.dtype(dt).name}(3,)", a), (f"{np.dtype(dt).name}()", np.array(a[1]))]
    return out + [(repr(v), v) for v in NUMBERS + LISTS]


OPERANDS = _operands()
OPS = {
    "add": (operator.add, operator.add),
    "sub": (operator.sub, operator.sub),
    "mul": (operator.mul, operator.mul),
    "div": (operator.truediv, operator.truediv),
    "pow": (operator.pow, operator.pow),
    "lt": (operator.lt, operator.lt),
    "le": (operator.le, operator.le),
    "gt": (operator.gt, operator.gt),
    "ge": (operator.ge, operator.ge),
    "eq": (operator.eq, operator.eq),
    "ne": (operator.ne, operator.ne),
    "maximum": (dlia.maximum, torch.maximum),
    "minimum": (dlia.minimum, torch.minimum),
    "where": (lambda a, b: dlia.where(np.array([True, False, True]), a, b),
              lambda a, b: torch.where(torch.tensor([True, False, True]), a, b)),
}
#: where torch accepts only tensors, a Python number is given to it as the 0-d tensor torch.tensor
#: would make of it in this position (its result type with the other operand)
TENSORS_ONLY = ("maximum", "minimum")


def _torch_side(x: Any, other: Any, tensors_only: bool) -> Any:
    """The torch twin of a dlia operand: tensors as tensors; a Python number as itself; a list
    as a tensor of the dtype torch gives a Python number of its kind beside ``other``."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if isinstance(x, list) or tensors_only:
        number = x[0] if isinstance(x, list) else x
        other_t = torch.from_numpy(other) if isinstance(other, np.ndarray) else torch.tensor(other)
        return torch.tensor(x, dtype=torch.result_type(other_t, number))
    return x


def _is_bool(x: Any) -> bool:
    return isinstance(x, bool) or np.asarray(x).dtype == np.bool_


def _run(fn: Any, a: Any, b: Any) -> tuple[str, Any]:
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = fn(a, b)
    except Exception as e:  # noqa: BLE001 - which error is torch's business; both must refuse
        return "raises", type(e).__name__
    arr = out.numpy() if isinstance(out, dlia.Tensor) else out.detach().numpy()
    return str(arr.dtype), arr


@pytest.mark.parametrize("op", list(OPS))
def test_binary_ops_promote_like_torch(op):
    ours, theirs = OPS[op]
    wrong = []
    for ln, left in OPERANDS:
        for rn, right in OPERANDS:
            if not (isinstance(left, np.ndarray) or isinstance(right, np.ndarray)):
                continue  # no tensor: not a tensor op
            dl = left if not isinstance(left, np.ndarray) else dlia.tensor(left)
            dr = right if not isinstance(right, np.ndarray) else dlia.tensor(right)
            if op == "pow" and _is_bool(left) and _is_bool(right):  # torch refuses two bool tensors but
                assert _run(ours, dl, dr)[0] == "bool", f"{ln} ** {rn}"  # gives bool ** True a bool; dlia always does
                continue
            tl = _torch_side(left, right, op in TENSORS_ONLY)
            tr = _torch_side(right, left, op in TENSORS_ONLY)
            got, want = _run(ours, dl, dr), _run(theirs, tl, tr)
            if got[0] != want[0]:
                wrong.append(f"{ln} {op} {rn}: dlia {got[0]}, torch {want[0]}")
            elif want[0] != "raises":
                np.testing.assert_allclose(got[1].astype(np.float64), want[1].astype(np.float64),
                                           rtol=1e-3, err_msg=f"{ln} {op} {rn}")
    assert not wrong, f"{len(wrong)} results differ from torch:\n" + "\n".join(wrong)


def test_comparisons_compare_in_the_promoted_dtype():
    """float32 vs int64 compares in float32, as in torch (NumPy compares in float64)."""
    x = np.array([16777217.0], np.float32)  # 2**24 + 1 rounds to 2**24 in float32
    k = np.array([16777217])
    for cmp in (operator.eq, operator.lt, operator.ge):
        ours = cmp(dlia.tensor(x), dlia.tensor(k)).numpy()
        np.testing.assert_array_equal(ours, cmp(torch.from_numpy(x), torch.from_numpy(k)).numpy())
        np.testing.assert_array_equal(cmp(dlia.tensor(x), [16777217]).numpy(), ours)


def test_matmul_promotes_like_the_elementwise_ops():
    """torch's matmul wants equal dtypes; dlia promotes as ``*`` does, so an integer matrix does not
    turn a float32 product into float64."""
    w = dlia.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    for other, dtype in ((np.ones((2, 3), np.int64), np.float32), (np.ones((2, 3), np.float64), np.float64),
                         (np.ones((2, 3), np.float16), np.float32)):
        y = dlia.tensor(other) @ w
        assert y.dtype == dtype
        y.sum().backward()
        assert w.grad.dtype == np.float32
        w.grad = None


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_gradients_keep_each_inputs_dtype_under_promotion(dtype):
    """A float tensor times an integer tensor or a list computes in the float dtype, and the
    gradient arrives in it (as in torch)."""
    a = np.array([0.5, -1.0, 2.0], dtype)
    k = np.array([1, 2, 3])
    x, t = dlia.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = (x * dlia.tensor(k) + [1.0, 2.0, 3.0]) / 2, (t * torch.tensor(k) + torch.tensor([1.0, 2.0, 3.0], dtype=t.dtype)) / 2
    assert y.dtype == dtype and ty.dtype == t.dtype
    y.sum().backward()
    ty.sum().backward()
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())


def test_subtracting_a_bool_is_refused_as_in_torch():
    x = dlia.tensor(np.array([1.0, 2.0], np.float32))
    m = dlia.tensor(np.array([True, False]))
    for bad in (lambda: x - m, lambda: m - x, lambda: x - True, lambda: True - x, lambda: m - m):
        with pytest.raises(TypeError, match="bool"):
            bad()


def test_python_integers_outside_the_dtype_range():  # review of issue 10: these raised OverflowError
    u8 = dlia.tensor(np.array([1, 2], np.uint8))
    i32 = dlia.tensor(np.array([1, 2], np.int32))
    tu8 = torch.tensor([1, 2], dtype=torch.uint8)
    # arithmetic wraps in the tensor's dtype, as torch does
    np.testing.assert_array_equal((u8 + (-1)).numpy(), (tu8 + (-1)).numpy())
    assert (u8 + (-1)).dtype == np.uint8
    # comparisons are exact, as in NumPy (torch wraps the number first and answers wrongly)
    np.testing.assert_array_equal((u8 > -1).numpy(), [True, True])
    np.testing.assert_array_equal((i32 < 2**40).numpy(), [True, True])
    np.testing.assert_array_equal((i32 == 2**40).numpy(), [False, False])


@pytest.mark.parametrize("fn", ["exp", "log", "sqrt", "tanh"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_real_functions_of_integer_tensors_are_float32_like_torch(fn, dtype):  # review of issue 10: were float64
    a = np.array([1, 2, 3]).astype(dtype)
    ours, theirs = getattr(dlia, fn)(dlia.tensor(a)), getattr(torch, fn)(torch.from_numpy(a))
    assert ours.dtype == theirs.numpy().dtype == np.float32
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_clip_of_integers_like_torch():  # review of issue 10: float bounds were truncated, -1 for uint8 raised
    i32 = np.array([-2, 1, 3], np.int32)
    ours, theirs = dlia.tensor(i32).clip(0.5, 2.5), torch.from_numpy(i32).clip(0.5, 2.5)
    assert ours.dtype == theirs.numpy().dtype
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # torch wraps -1 to 255 for uint8 first (and clips everything to 100); the bound means "no lower clip"
    ours = dlia.tensor(np.array([10, 250], np.uint8)).clip(-1, 100)
    assert ours.dtype == np.uint8
    np.testing.assert_array_equal(ours.numpy(), [10, 100])
