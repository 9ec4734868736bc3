"""exp, log, sqrt, abs, tanh, sigmoid, relu, leaky_relu, clip, where, maximum, minimum, cast."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dlia
from helpers import OpTestCase, cases, compare_torch

UNARY = [[(3, 4)], [(2, 3, 4)], [(5,)], [()]]
BROADCAST = [[(3, 4), (3, 4)], [(3, 1, 4), (2, 4)], [(4, 1), (1, 5)], [(2, 3), ()]]


class TestUnary(OpTestCase):
    cases = [
        *cases("exp", dlia.exp, torch.exp, UNARY),
        *cases("log", dlia.log, torch.log, UNARY, "positive"),
        *cases("sqrt", dlia.sqrt, torch.sqrt, UNARY, "positive"),
        *cases("abs", dlia.abs, torch.abs, UNARY, "distinct"),
        *cases("abs_operator", abs, abs, UNARY[:1], "distinct"),
        *cases("tanh", dlia.tanh, torch.tanh, UNARY),
        *cases("sigmoid", dlia.sigmoid, torch.sigmoid, UNARY),
        *cases("relu", dlia.relu, torch.relu, UNARY, "distinct"),
        *cases("leaky_relu", dlia.leaky_relu, F.leaky_relu, UNARY, "distinct"),
        *cases("leaky_relu", lambda a: dlia.leaky_relu(a, 0.2), lambda a: F.leaky_relu(a, 0.2), UNARY[:2],
               "distinct", tag="0.2"),
        *cases("clip", lambda a: dlia.clip(a, -0.3, 0.4), lambda a: torch.clamp(a, -0.3, 0.4), UNARY, "distinct"),
        *cases("clip", lambda a: dlia.clip(a, lo=-0.3), lambda a: torch.clamp(a, min=-0.3), UNARY[:2], "distinct",
               tag="lo"),
        *cases("clip", lambda a: dlia.clip(a, hi=0.4), lambda a: torch.clamp(a, max=0.4), UNARY[:2], "distinct",
               tag="hi"),
        *cases("clip", lambda a: dlia.clip(a), lambda a: a * 1, UNARY[:1], tag="none"),
        *cases("clamp_method", lambda a: a.clamp(-0.3, 0.4), lambda a: a.clamp(-0.3, 0.4), UNARY[:1], "distinct"),
        *cases("methods", lambda a: a.exp().tanh().sigmoid().relu(), lambda a: a.exp().tanh().sigmoid().relu(),
               UNARY[:2]),
        *cases("methods_positive", lambda a: a.log().abs().sqrt(), lambda a: a.log().abs().sqrt(), UNARY[:1],
               "positive"),
        *cases("cast", lambda a: dlia.cast(a, np.float32) * 1.5, lambda a: a.to(torch.float32) * 1.5, UNARY[:2],
               fd=False),
        *cases("double_float", lambda a: a.double().float(), lambda a: a.double().float(), UNARY[:2], fd=False),
    ]


class TestBinaryElementwise(OpTestCase):
    cases = [
        *cases("maximum", dlia.maximum, torch.maximum, BROADCAST, ("distinct", "grid")),
        *cases("minimum", dlia.minimum, torch.minimum, BROADCAST, ("distinct", "grid")),
        *cases("where", dlia.where, torch.where, [
            [(3, 4), (3, 4), (3, 4)],
            [(3, 4), (3, 1), (4,)],     # cond broadcasts against both branches
            [(2, 3, 4), (4,), ()],
            [(4,), (3, 1), (3, 4)],     # the output is larger than the condition
        ], ("bool", "real", "real")),
    ]


def test_where_with_python_number_branches():
    cond = np.array([True, False, True])
    a = np.array([1.0, 2.0, 3.0])
    compare_torch(lambda x: dlia.where(cond, x, 0.0), lambda x: torch.where(torch.tensor(cond), x, 0.0), a)
    compare_torch(lambda x: dlia.where(cond, -1.0, x), lambda x: torch.where(torch.tensor(cond), -1.0, x), a)


@pytest.mark.parametrize("op, twin", [(dlia.maximum, torch.maximum), (dlia.minimum, torch.minimum)])
def test_extremum_ties_split_the_gradient_like_torch(op, twin):
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.0, 5.0, 0.0])
    compare_torch(op, twin, a, b)


@pytest.mark.parametrize("op, twin, x, expect", [
    (dlia.abs, torch.abs, 0.0, 0.0),
    (dlia.relu, torch.relu, 0.0, 0.0),
    (dlia.leaky_relu, F.leaky_relu, 0.0, 0.01),
    (lambda a: dlia.clip(a, 0.0, 1.0), lambda a: torch.clamp(a, 0.0, 1.0), 0.0, 1.0),
    (lambda a: dlia.clip(a, 0.0, 1.0), lambda a: torch.clamp(a, 0.0, 1.0), 1.0, 1.0),
])
def test_gradient_at_a_kink_follows_torch(op, twin, x, expect):
    compare_torch(op, twin, np.array([x]))
    ours = dlia.tensor(np.array([x]), requires_grad=True)
    op(ours).sum().backward()
    assert ours.grad.numpy()[0] == expect


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_saturate_without_overflow(dtype):
    a = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        outs, xs = compare_torch(lambda x: dlia.sigmoid(x), torch.sigmoid, a, atol=1e-7, rtol=1e-6)
        compare_torch(lambda x: dlia.tanh(x), torch.tanh, a, atol=1e-7, rtol=1e-6)
    assert np.isfinite(xs[0].grad.numpy()).all()


@pytest.mark.parametrize("size", [41, 161, 1001])  # small and large arrays may take different paths
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_sigmoid_is_relatively_accurate_in_both_tails(dtype, rtol, size):
    """σ(x) for very negative x is tiny but not zero: e.g. log σ(-40) must be -40, not -inf.

    σ(x) must match torch to ``rtol`` everywhere. For x > 0, y = σ(x) ≈ 1, so σ' = y(1 - y) and
    log y are only good to a few ulps of 1 in both libraries: there they must agree to that
    absolute accuracy; for x ≤ 0 to ``rtol``.
    """
    a = np.linspace(-40, 40, size).astype(dtype)
    u = np.random.default_rng(size).standard_normal(size).astype(dtype)
    ulps = 4 * np.finfo(dtype).eps * max(np.abs(u).max(), 1.0)
    neg, pos = a <= 0, a > 0
    compare_torch(dlia.sigmoid, torch.sigmoid, a, atol=0, rtol=rtol, grad=False)
    for ours, theirs in [(dlia.sigmoid, torch.sigmoid),
                         (lambda x: dlia.log(dlia.sigmoid(x)), lambda t: torch.log(torch.sigmoid(t)))]:
        x, t = dlia.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        with np.errstate(divide="raise"):
            y = ours(x)
            y.backward(u)
        ty = theirs(t)
        ty.backward(torch.from_numpy(u))
        for got, want in [(y.numpy(), ty.detach().numpy()), (x.grad.numpy(), t.grad.numpy())]:
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got[neg], want[neg], atol=0, rtol=rtol)
            np.testing.assert_allclose(got[pos], want[pos], atol=ulps, rtol=rtol)
