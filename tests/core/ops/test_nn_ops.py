"""dropout, embedding (dense and sparse gradients, padding_idx), one_hot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dlia
from helpers import OpTestCase, cases, check_vjp, compare_torch, dense

RNG = np.random.default_rng(11)
IDX = np.array([[1, 4, 1], [0, 4, 4]])  # repeated rows accumulate


# -- dropout ----------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    x = dlia.ones(200_000)
    y = dlia.dropout(x, p, generator=dlia.Generator(0)).numpy()
    kept = y != 0
    assert abs(1 - kept.mean() - p) < 0.01
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(y.mean() - 1) < 0.02  # inverted dropout keeps the expectation


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_gradient_is_the_mask_over_keep_probability(dtype):
    p = 0.3
    x = dlia.tensor(RNG.uniform(0.5, 2.0, (50, 40)).astype(dtype), requires_grad=True)
    y = dlia.dropout(x, p, generator=dlia.Generator(1))
    y.sum().backward()
    mask = (y.numpy() != 0).astype(dtype)
    assert y.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad.numpy(), mask / (1 - p), rtol=1e-6)
    np.testing.assert_allclose(y.numpy(), x.numpy() * mask / (1 - p), rtol=1e-6)


def test_dropout_gradient_matches_finite_differences_with_a_seeded_generator():
    check_vjp(lambda a: dlia.dropout(a, 0.4, generator=dlia.Generator(3)), RNG.standard_normal((6, 5)))


def test_dropout_is_deterministic_for_a_seed():
    x = dlia.ones(8, 8)
    a = dlia.dropout(x, 0.5, generator=dlia.Generator(42)).numpy()
    b = dlia.dropout(x, 0.5, generator=dlia.Generator(42)).numpy()
    c = dlia.dropout(x, 0.5, generator=dlia.Generator(43)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    dlia.manual_seed(5)
    d = dlia.dropout(x, 0.5).numpy()
    dlia.manual_seed(5)
    np.testing.assert_array_equal(d, dlia.dropout(x, 0.5).numpy())


def test_dropout_identity_and_extremes():
    x = dlia.tensor(RNG.standard_normal(10), requires_grad=True)
    assert dlia.dropout(x, 0.5, training=False) is x
    assert dlia.dropout(x, 0.0) is x
    y = dlia.dropout(x, 1.0)
    np.testing.assert_array_equal(y.numpy(), 0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_bad_probabilities(p):
    with pytest.raises(ValueError, match="dropout"):
        dlia.dropout(dlia.ones(3), p)


# -- embedding --------------------------------------------------------------------------------
class TestEmbedding(OpTestCase):
    cases = [
        *cases("embedding", lambda w, i: dlia.embedding(w, i), lambda w, i: F.embedding(i, w),
               [[(5, 3), (2, 3)], [(6, 2), (7,)], [(4, 3), ()]], ("real", "int:4")),
        *cases("embedding", lambda w, i: dlia.embedding(w, i, padding_idx=1),
               lambda w, i: F.embedding(i, w, padding_idx=1), [[(5, 3), (4, 3)]], ("real", "int:5"), tag="padding",
               fd=False),  # the padding row is frozen on purpose: its gradient is not the derivative
        *cases("embedding", lambda w, i: dlia.embedding(w, i, sparse=True),
               lambda w, i: F.embedding(i, w, sparse=True), [[(5, 3), (2, 3)]], ("real", "int:5"), tag="sparse"),
    ]


@pytest.mark.parametrize("padding_idx", [None, 4, -1, 0])
def test_embedding_sparse_gradient_densifies_to_torch_dense_gradient(padding_idx):
    w = RNG.standard_normal((5, 3))
    outs, xs = compare_torch(
        lambda a: dlia.embedding(a, IDX, sparse=True, padding_idx=padding_idx),
        lambda t: F.embedding(torch.from_numpy(IDX), t, padding_idx=padding_idx), w,
    )
    grad = xs[0].grad
    assert isinstance(grad, dlia.SparseGrad)
    assert grad.shape == (5, 3)
    dense_grad = dense(grad)
    np.testing.assert_allclose(dense(grad.coalesce()), dense_grad)
    assert set(grad.coalesce().indices.tolist()) <= set(IDX.ravel().tolist())


@pytest.mark.parametrize("padding_idx", [2, -1, -5])
def test_embedding_padding_row_gets_no_gradient(padding_idx):
    w = RNG.standard_normal((5, 3))
    idx = np.array([0, 4, 2, 4, 0])
    _, xs = compare_torch(lambda a: dlia.embedding(a, idx, padding_idx=padding_idx),
                          lambda t: F.embedding(torch.from_numpy(idx), t, padding_idx=padding_idx), w)
    np.testing.assert_array_equal(xs[0].grad.numpy()[padding_idx], 0)


def test_embedding_sparse_gradients_accumulate_over_two_backwards():
    w = dlia.tensor(RNG.standard_normal((5, 3)), requires_grad=True)
    dlia.embedding(w, [1, 1, 3], sparse=True).sum().backward()
    dlia.embedding(w, [3, 0], sparse=True).sum().backward()
    expect = np.zeros((5, 3))
    expect[[1, 3, 0]] = [[2.0] * 3, [2.0] * 3, [1.0] * 3]
    np.testing.assert_allclose(dense(w.grad), expect)


def test_embedding_tied_with_a_dense_use_of_the_weight():
    """A sparse lookup gradient and a dense matmul gradient into one table add up like torch."""
    w = RNG.standard_normal((5, 3))
    h = RNG.standard_normal((3, 3))
    compare_torch(
        lambda a: dlia.embedding(a, IDX[0], sparse=True) @ a.T + dlia.tensor(h) @ a.T,
        lambda t: F.embedding(torch.from_numpy(IDX[0]), t) @ t.T + torch.tensor(h) @ t.T, w,
    )


def test_embedding_composed_gradient_matches_finite_differences():
    check_vjp(lambda a: (dlia.embedding(a, IDX) * dlia.embedding(a, IDX[::-1])).tanh(), RNG.standard_normal((5, 3)))


def test_embedding_rejects_bad_indices():
    w = dlia.tensor(np.ones((4, 2)))
    with pytest.raises(IndexError, match="out of range"):
        dlia.embedding(w, [0, 4])
    with pytest.raises(IndexError, match="out of range"):
        dlia.embedding(w, [-1])
    with pytest.raises(ValueError, match="integers"):
        dlia.embedding(w, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        dlia.embedding(w, [0], padding_idx=4)
    with pytest.raises(ValueError, match="padding_idx"):
        dlia.embedding(w, [0], padding_idx=-5)
    with pytest.raises(dlia.ShapeError, match="2-D"):
        dlia.embedding(dlia.tensor(np.ones(4)), [0])


# -- one_hot ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6,), (2, 3), ()])
def test_one_hot_matches_torch(shape):
    idx = RNG.integers(0, 4, shape)
    out = dlia.one_hot(dlia.tensor(idx), 4)
    expect = F.one_hot(torch.tensor(idx), 4).numpy()
    assert out.shape == expect.shape
    assert out.dtype == np.float32
    assert not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), expect)
    np.testing.assert_array_equal(dlia.one_hot(idx.tolist(), 4, dtype=np.int64).numpy(), expect)


def test_one_hot_rejects_bad_indices():
    with pytest.raises(IndexError):
        dlia.one_hot([0, 4], 4)
    with pytest.raises(IndexError):
        dlia.one_hot([-1], 4)
    with pytest.raises(TypeError, match="integers"):
        dlia.one_hot(np.array([0.5]), 4)


# -- linear (fused affine map), when the op is present -----------------------------------------
needs_linear = pytest.mark.skipif(not hasattr(dlia, "linear"), reason="dlia.linear not available")


@needs_linear
@pytest.mark.parametrize("x_shape", [(4, 3), (2, 4, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch_and_finite_differences(x_shape, bias):
    x, w, b = RNG.standard_normal(x_shape), RNG.standard_normal((5, 3)), RNG.standard_normal(5)
    args = (x, w, b) if bias else (x, w)
    compare_torch(dlia.linear, F.linear, *args)
    compare_torch(dlia.linear, F.linear, *[a.astype(np.float32) for a in args], atol=1e-5, rtol=1e-5)
    check_vjp(dlia.linear, *args)


@pytest.mark.parametrize("distinct", [7, 900])
def test_embedding_dense_gradient_sums_every_lookup_of_a_row(distinct):
    """Few distinct ids (a run per id, summed one by one) and many (numpy.add.reduceat) both give
    numpy.add.at's sums, on rows wide enough (512) to matter."""
    rng = np.random.default_rng(5)
    ids = rng.integers(0, distinct, (50, 40))
    w = dlia.tensor(rng.standard_normal((distinct, 512)).astype(np.float32), requires_grad=True)
    g = rng.standard_normal((50, 40, 512)).astype(np.float32)
    (dlia.embedding(w, ids) * dlia.tensor(g)).sum().backward()
    expected = np.zeros((distinct, 512), np.float64)
    np.add.at(expected, ids.ravel(), g.reshape(-1, 512).astype(np.float64))
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-5, atol=1e-4)
