"""sum, mean, max, min, var, logsumexp, softmax, log_softmax over every kind of ``axis``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlia
from helpers import OpCase, OpTestCase, assert_both_raise, compare_graph_mode, compare_torch

AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (2, 1, 0)]


def _dim(x: torch.Tensor, axis):
    return tuple(range(x.ndim)) if axis is None else axis


def reduction_cases(name, ours, theirs, domain="real", shapes=((2, 3, 4),), axes=AXES, **options):
    """One case per axis, keepdims and shape; ``theirs(x, dim, keepdim)`` is torch's twin."""
    out = []
    for shape in shapes:
        for axis in axes:
            for keep in (False, True):
                out.append(OpCase(
                    name,
                    lambda a, axis=axis, keep=keep: ours(a, axis, keep),
                    lambda t, axis=axis, keep=keep: theirs(t, _dim(t, axis), keep),
                    (shape,), domain, tag=f"axis={axis},keepdims={keep}", **options,
                ))
    return out


class TestReductions(OpTestCase):
    cases = [
        *reduction_cases("sum", dlia.sum, lambda t, d, k: torch.sum(t, d, keepdim=k)),
        *reduction_cases("sum", dlia.sum, lambda t, d, k: torch.sum(t, d, keepdim=k), shapes=((5,), (3, 1)),
                         axes=[None, 0, -1]),
        *reduction_cases("mean", dlia.mean, lambda t, d, k: torch.mean(t, d, keepdim=k)),
        *reduction_cases("max", dlia.max, lambda t, d, k: torch.amax(t, d, keepdim=k), "distinct"),
        *reduction_cases("min", dlia.min, lambda t, d, k: torch.amin(t, d, keepdim=k), "distinct"),
        *reduction_cases("var", dlia.var, lambda t, d, k: torch.var(t, d, keepdim=k, correction=0)),
        *reduction_cases("var_ddof1", lambda a, axis, k: dlia.var(a, axis, k, ddof=1),
                         lambda t, d, k: torch.var(t, d, keepdim=k, correction=1), axes=[None, 1, (0, 2)]),
        *reduction_cases("logsumexp", dlia.logsumexp, lambda t, d, k: torch.logsumexp(t, d, keepdim=k)),
        *reduction_cases("sum_method", lambda a, axis, k: a.sum(axis, k), lambda t, d, k: t.sum(d, keepdim=k),
                         axes=[None, (0, -1)]),
        *reduction_cases("mean_method", lambda a, axis, k: a.mean(axis=axis, keepdims=k),
                         lambda t, d, k: t.mean(d, keepdim=k), axes=[None, 1]),
        *reduction_cases("max_method", lambda a, axis, k: a.max(axis, k), lambda t, d, k: t.amax(d, keepdim=k),
                         "distinct", axes=[None, -1]),
        *reduction_cases("min_method", lambda a, axis, k: a.min(axis, k), lambda t, d, k: t.amin(d, keepdim=k),
                         "distinct", axes=[None, -1]),
        *reduction_cases("var_method", lambda a, axis, k: a.var(axis, k), lambda t, d, k: t.var(d, keepdim=k,
                         correction=0), axes=[None, 0]),
        *reduction_cases("logsumexp_method", lambda a, axis, k: a.logsumexp(axis, k),
                         lambda t, d, k: t.logsumexp(d, keepdim=k), axes=[(0, 1), -1]),
    ]


class TestSoftmax(OpTestCase):
    cases = [
        OpCase(name, (lambda a, ax=ax, f=f: f(a, ax)), (lambda t, ax=ax, g=g: g(t, ax)), (shape,), tag=f"axis={ax}")
        for name, f, g in [
            ("softmax", dlia.softmax, torch.softmax),
            ("log_softmax", dlia.log_softmax, torch.log_softmax),
            ("softmax_method", lambda a, ax: a.softmax(ax), lambda t, ax: t.softmax(ax)),
            ("log_softmax_method", lambda a, ax: a.log_softmax(ax), lambda t, ax: t.log_softmax(ax)),
        ]
        for shape, ax in [((5,), 0), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1)]
    ]


def test_default_reductions_give_0d_tensors():
    x = dlia.tensor(np.ones((2, 3)), requires_grad=True)
    for y in (x.sum(), x.mean(), x.max(), x.min(), x.var(), x.logsumexp()):
        assert y.shape == ()
        assert isinstance(y.data, np.ndarray)


@pytest.mark.parametrize("op, twin", [
    (dlia.max, lambda t: torch.amax(t, 1)),
    (dlia.min, lambda t: torch.amin(t, 1)),
])
def test_tied_extremes_share_the_gradient_like_amax(op, twin):
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 5.0]])
    compare_torch(lambda x: op(x, 1), twin, a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_softmax_family_is_stable_for_huge_logits(dtype, scale):
    a = (np.array([[1.0, 0.5, -1.0], [0.0, 0.0, 0.0]]) * scale).astype(dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for ours, theirs in [
            (lambda x: dlia.softmax(x, -1), lambda t: torch.softmax(t, -1)),
            (lambda x: dlia.log_softmax(x, -1), lambda t: torch.log_softmax(t, -1)),
            (lambda x: dlia.logsumexp(x, -1), lambda t: torch.logsumexp(t, -1)),
        ]:
            outs, xs = compare_torch(ours, theirs, a, atol=1e-6, rtol=1e-6)
            assert np.isfinite(outs[0].numpy()).all()
            assert np.isfinite(xs[0].grad.numpy()).all()


def test_logsumexp_of_all_minus_infinity_is_minus_infinity():
    a = np.full((2, 3), -np.inf)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the answer here
        out = dlia.logsumexp(dlia.tensor(a), axis=1)
    np.testing.assert_array_equal(out.numpy(), torch.logsumexp(torch.tensor(a), 1).numpy())


def test_max_of_empty_tensor_raises():
    with pytest.raises(ValueError, match="max"):
        dlia.max(dlia.tensor(np.zeros((0, 3))))


@pytest.mark.parametrize("reduce", [dlia.sum, dlia.mean])
@pytest.mark.parametrize("n", [10, 300])  # 90,000 elements: past the size where the gradient is a view
def test_gradient_of_a_large_sum_or_mean(reduce, n):
    """Large inputs get their gradient as a broadcast view inside the graph; what reaches a leaf's
    .grad is still a fresh, writable array of its own."""
    x = dlia.tensor(np.ones((n, n), np.float32), requires_grad=True)
    reduce(x).backward()
    want = np.full((n, n), 1.0 / (n * n) if reduce is dlia.mean else 1.0, np.float32)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-6)
    assert x.grad.numpy().flags.writeable and x.grad.numpy().flags.owndata
    x.grad.zero_()
    y = dlia.tensor(np.ones((n, n), np.float32), requires_grad=True)
    reduce(y * 3.0).backward()  # through a multiply: the view flows on as the multiply's gradient
    np.testing.assert_allclose(y.grad.numpy(), 3 * want, rtol=1e-6)


def test_large_sum_and_mean_gradients_in_graph_mode():
    """The broadcast-view gradients of large reductions flow through graph mode and dlia.compile."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 300)), rng.standard_normal((300, 300))
    compare_graph_mode(lambda x, y: (x * y).sum() + x.relu().mean(), a, b)
    compare_graph_mode(lambda x, y: dlia.sum(x * y, axis=0), a, b)
    compiled = dlia.compile(lambda x, y: (x * y).sum() + x.tanh().mean())
    xs = [dlia.tensor(v, requires_grad=True) for v in (a, b)]
    es = [dlia.tensor(v, requires_grad=True) for v in (a, b)]
    compiled(*xs).backward()
    ((es[0] * es[1]).sum() + es[0].tanh().mean()).backward()
    for x, e in zip(xs, es):
        np.testing.assert_array_equal(x.grad.numpy(), e.grad.numpy())
        assert x.grad.numpy().flags.writeable


@pytest.mark.parametrize("ours, theirs", [
    (lambda a: a.sum(0), lambda t: t.sum(0)),
    (lambda a: a.mean(-1, True), lambda t: t.mean(-1, keepdim=True)),
    (lambda a: a.max((0,)), lambda t: t.amax((0,))),
    (lambda a: a.var(-1), lambda t: t.var(-1, correction=0)),
    (lambda a: a.logsumexp(0), lambda t: t.logsumexp(0)),
    (lambda a: a.softmax(0), lambda t: t.softmax(0)),
    (lambda a: a.log_softmax(-1), lambda t: t.log_softmax(-1)),
])
def test_a_0d_tensor_takes_axis_0_or_minus_1_like_torch(ours, theirs):
    compare_torch(ours, theirs, np.array(1.5))


def test_argmax_of_a_0d_tensor_over_axis_0_like_torch():
    np.testing.assert_array_equal(dlia.tensor(1.5).argmax(0).numpy(), torch.tensor(1.5).argmax(0).numpy())


# -- empty inputs (issue 10, A14) ------------------------------------------------------------------
@pytest.mark.parametrize("ours, theirs", [
    (lambda a: a.max(1), lambda t: t.amax(1)),
    (lambda a: dlia.min(a, -1, True), lambda t: t.amin(-1, keepdim=True)),
    (lambda a: a.sum(0), lambda t: t.sum(0)),
    (lambda a: a.softmax(0), lambda t: t.softmax(0)),
    (lambda a: a.softmax(1), lambda t: t.softmax(1)),
    (lambda a: a.log_softmax(0), lambda t: t.log_softmax(0)),
    (lambda a: a.logsumexp(0), lambda t: t.logsumexp(0)),
    (lambda a: a.logsumexp(1), lambda t: t.logsumexp(1)),
    (lambda a: a.logsumexp((0, 1)), lambda t: t.logsumexp((0, 1))),
    (lambda a: a.mean(0), lambda t: t.mean(0)),
])
def test_reductions_of_an_empty_tensor_follow_torch(ours, theirs):
    """max(axis=1) of a (0, 3) tensor raised; softmax and logsumexp over an empty axis raised."""
    with np.errstate(all="raise"):  # and quietly, as torch: no NumPy warning for the empty axis
        compare_torch(ours, theirs, np.zeros((0, 3)))


@pytest.mark.parametrize("ours, theirs", [
    (lambda a: a.max(0), lambda t: t.amax(0)),
    (lambda a: a.min(), lambda t: t.amin()),
])
def test_max_over_an_empty_axis_raises_like_torch(ours, theirs):
    err = assert_both_raise(ours, theirs, np.zeros((0, 3)), error=dlia.ShapeError)
    assert "empty" in str(err) and "(0, 3)" in str(err)


def test_float16_mean_accumulates_in_float32_like_torch():
    """The mean of 1000 float16 values of 100 was inf: the sum overflowed float16 before the division."""
    a = np.full(1000, 100.0, np.float16)
    for ours, theirs in [(dlia.mean(dlia.tensor(a)), torch.tensor(a).mean()),
                         (dlia.tensor(a.reshape(10, 100)).mean(1), torch.tensor(a.reshape(10, 100)).mean(1))]:
        assert ours.dtype == np.float16
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    with np.errstate(all="raise"):
        assert np.isnan(dlia.mean(dlia.tensor(np.zeros(0, np.float16))).item())
