"""add, sub, mul, div, neg, pow, matmul: finite differences and torch, float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlia
from helpers import OpTestCase, cases, check_vjp, compare_torch

# Binary elementwise shape sets: equal, both-sided broadcasting, scalars on either side.
BROADCAST = [
    [(3, 4), (3, 4)],
    [(3, 1, 4), (2, 4)],
    [(2, 4), (3, 1, 4)],
    [(4, 1), (1, 5)],
    [(5,), (2, 3, 5)],
    [(2, 3), ()],
    [(), (2, 3)],
]


class TestBinaryArith(OpTestCase):
    cases = [
        *cases("add", dlia.add, torch.add, BROADCAST),
        *cases("add_operator", lambda a, b: a + b, lambda a, b: a + b, BROADCAST[:3]),
        *cases("sub", dlia.sub, torch.sub, BROADCAST),
        *cases("sub_operator", lambda a, b: a - b, lambda a, b: a - b, BROADCAST[:3]),
        *cases("mul", dlia.mul, torch.mul, BROADCAST),
        *cases("div", dlia.div, torch.div, BROADCAST, ("real", "positive")),
        *cases("div_operator", lambda a, b: a / b, lambda a, b: a / b, BROADCAST[:3], ("real", "positive")),
        *cases("pow_tensor", dlia.pow, torch.pow, BROADCAST, ("positive", "real")),
    ]


class TestScalarArith(OpTestCase):
    """One tensor and a Python number, on either side (the reflected operators included)."""

    shapes = [[(3, 4)], [(2, 1, 3)], [()]]
    cases = [
        *cases("add_scalar", lambda a: a + 2.5, lambda a: a + 2.5, shapes),
        *cases("radd_scalar", lambda a: 2.5 + a, lambda a: 2.5 + a, shapes),
        *cases("rsub_scalar", lambda a: 1.5 - a, lambda a: 1.5 - a, shapes),
        *cases("rmul_scalar", lambda a: 3.0 * a, lambda a: 3.0 * a, shapes),
        *cases("rdiv_scalar", lambda a: 2.0 / a, lambda a: 2.0 / a, shapes, "positive"),
        *cases("neg", dlia.neg, torch.neg, shapes),
        *cases("neg_operator", lambda a: -a, lambda a: -a, shapes),
        *cases("pow_int", lambda a: dlia.pow(a, 3), lambda a: torch.pow(a, 3), shapes),
        *cases("pow_square_operator", lambda a: a**2, lambda a: a**2, shapes),
        *cases("pow_fraction", lambda a: a**2.5, lambda a: a**2.5, shapes, "positive"),
        *cases("pow_negative", lambda a: dlia.pow(a, -1.5), lambda a: torch.pow(a, -1.5), shapes, "positive"),
        *cases("rpow", lambda a: 2.0**a, lambda a: 2.0**a, shapes),
    ]


class TestMatmul(OpTestCase):
    cases = [
        *cases("matmul", dlia.matmul, torch.matmul, [
            [(3, 4), (4, 5)],          # 2-D
            [(2, 3, 4), (2, 4, 5)],    # batched
            [(2, 1, 3, 4), (3, 4, 2)],  # broadcasting batch dims
            [(2, 3, 4), (4, 5)],       # batched @ 2-D
            [(3, 4), (2, 4, 5)],       # 2-D @ batched
            [(4,), (4, 5)],            # 1-D @ 2-D
            [(3, 4), (4,)],            # 2-D @ 1-D
            [(4,), (4,)],              # 1-D @ 1-D
            [(4,), (2, 4, 5)],         # 1-D @ batched
            [(2, 3, 4), (4,)],         # batched @ 1-D
            [(1, 4), (4, 1)],
        ], atol32=1e-5, rtol32=1e-5),
        *cases("matmul_operator", lambda a, b: a @ b, lambda a, b: a @ b, [[(3, 4), (4, 2)], [(4,), (4,)]]),
    ]


def test_matmul_with_a_constant_on_either_side():
    a = np.random.default_rng(0).standard_normal((3, 4))
    w = np.random.default_rng(1).standard_normal((4, 2))
    compare_torch(lambda x: x @ w, lambda x: x @ torch.from_numpy(w), a)
    compare_torch(lambda x: w.T @ x, lambda x: torch.from_numpy(w.T) @ x, a.T.copy())


def test_pow_tensor_exponent_gradient_is_finite_at_a_zero_base():
    """d/db of a**b at a = 0 is 0·log(0); like torch, dlia gives 0 rather than NaN."""
    a = dlia.tensor(np.array([0.0, 2.0]), requires_grad=True)
    b = dlia.tensor(np.array([2.0, 3.0]), requires_grad=True)
    ta = torch.tensor([0.0, 2.0], dtype=torch.float64, requires_grad=True)
    tb = torch.tensor([2.0, 3.0], dtype=torch.float64, requires_grad=True)
    dlia.pow(a, b).sum().backward()
    torch.pow(ta, tb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_scalars_keep_the_tensor_dtype(dtype):
    x = dlia.tensor(np.ones(3, dtype=dtype))
    for y in (x + 1, 1 - x, x * 2.5, 2.5 / x, x**2, 2.0**x):
        assert y.dtype == dtype


def test_gradient_to_only_one_input():
    """Inputs that do not require grad get none, and the vjp may skip computing it."""
    a = np.random.default_rng(2).standard_normal((3, 4))
    b = np.random.default_rng(3).uniform(0.5, 2, (4,))
    x = dlia.tensor(a, requires_grad=True)
    y = dlia.tensor(b)
    (x / y).sum().backward()
    assert y.grad is None
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(1 / b, (3, 4)))
    check_vjp(lambda p: dlia.tensor(b) ** p, a)
