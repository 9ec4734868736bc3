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


POW_BASES = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]
POW_EXPONENTS = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0]


def _pow_grads(lib, base, exponent, base_grad, exponent_grad):
    """Gradients of Σ base**exponent from dlia or torch (inputs that are floats stay constants)."""
    make = dlia.tensor if lib is dlia else torch.tensor
    a = make(np.asarray(base), requires_grad=True) if base_grad else base
    b = make(np.asarray(exponent), requires_grad=True) if exponent_grad else exponent
    with np.errstate(divide="ignore", invalid="ignore"):
        (a**b).sum().backward()
    return [t.grad.numpy() for t, wanted in ((a, base_grad), (b, exponent_grad)) if wanted]


def test_pow_gradients_at_zero_and_negative_bases_match_torch():
    """x**0 has gradient 0 even at x = 0 (not 0·0⁻¹ = NaN); d/db is 0 at a zero base when b ≥ 0,
    -inf when b < 0, and NaN for a negative base; x**0.5 and x**-1 at 0 give inf, as in torch."""
    grid = np.array([(a, b) for a in POW_BASES for b in POW_EXPONENTS])
    base, exponent = grid[:, 0].copy(), grid[:, 1].copy()
    ours, theirs = _pow_grads(dlia, base, exponent, True, True), _pow_grads(torch, base, exponent, True, True)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, t, rtol=1e-12)  # NaN and ±inf in the same places
    for b in POW_EXPONENTS:  # a Python-number exponent (x ** 0), and one given as a 0-d tensor
        for exponent in (b, np.array(b)):
            np.testing.assert_allclose(_pow_grads(dlia, np.array(POW_BASES), exponent, True, False)[0],
                                       _pow_grads(torch, np.array(POW_BASES), torch.tensor(b), True, False)[0], rtol=1e-12)
    for a in (0.0, 2.0, -2.0):  # a Python-number base (2.0 ** x)
        exponents = np.array(POW_EXPONENTS)
        np.testing.assert_allclose(_pow_grads(dlia, a, exponents, False, True)[0],
                                   _pow_grads(torch, a, torch.from_numpy(exponents), False, True)[0], rtol=1e-12)


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
