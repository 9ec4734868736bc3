"""Helpers of the recurrent layer ops (dlia/core/ops/rnn.py); the ops themselves are tested through
their layers in tests/nn/test_rnn.py, and the step kernels in tests/backend/test_rnn_kernels.py."""

from __future__ import annotations

import numpy as np
import pytest

import dlia
from dlia.core.ops import rnn as ops


@pytest.mark.parametrize("shape", [(4 * 5, 5), (3 * 70, 70), (4 * 128, 128), (64, 3), (1, 1), (130, 0)])
def test_transposed_is_a_c_contiguous_copy_of_the_transpose(shape):
    w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    t = ops.transposed(np, w)
    assert t.flags.c_contiguous and t.dtype == w.dtype and t.shape == shape[::-1]
    np.testing.assert_array_equal(t, w.T)
    assert not np.shares_memory(t, w)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_projected_input_gives_the_values_and_gradients_of_the_input_it_projects(kind, bias, reverse, dtype):
    """op(x·W_ihᵀ, ..., projected=True) without w_ih == op(x, ..., w_ih): outputs, and gradients
    of every other input; the projection's gradient g gives x's and W_ih's as g·W_ih and gᵀ·x."""
    rng = np.random.default_rng(1)
    t, b, i, h = 5, 3, 4, 6
    k = {"lstm": 4, "gru": 3, "rnn_tanh": 1}[kind]
    op = {"lstm": ops.LSTM, "gru": ops.GRU, "rnn_tanh": ops.RNN}[kind]

    def leaf(*shape):
        return dlia.tensor(rng.standard_normal(shape).astype(dtype) * 0.5, requires_grad=True)

    x, w_ih = leaf(t, b, i), leaf(k * h, i)
    states = [leaf(b, h) for _ in range(2 if kind == "lstm" else 1)]
    rest = [leaf(k * h, h)] + ([leaf(k * h), leaf(k * h)] if bias else [])
    ref = op.apply(x, *states, w_ih, *rest, reverse=reverse)
    probe = rng.standard_normal(ref.shape).astype(dtype)
    (ref * dlia.tensor(probe)).sum().backward()
    expected = [a.grad.numpy().copy() for a in (*states, *rest)]
    dx, dw_ih = x.grad.numpy().copy(), w_ih.grad.numpy().copy()
    for a in (*states, *rest):
        a.grad = None

    proj = dlia.tensor(x.data @ w_ih.data.T, requires_grad=True)
    out = op.apply(proj, *states, *rest, reverse=reverse, projected=True)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out.data, ref.data, rtol=tol, atol=tol)
    (out * dlia.tensor(probe)).sum().backward()
    for a, e in zip((*states, *rest), expected):
        np.testing.assert_allclose(a.grad.numpy(), e, rtol=tol * 10, atol=tol * 10)
    g = proj.grad.numpy()
    np.testing.assert_allclose(g @ w_ih.data, dx, rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(np.einsum("tbk,tbi->ki", g, x.data), dw_ih, rtol=tol * 10, atol=tol * 10)


def test_a_projected_input_must_have_k_times_hidden_features():
    x = dlia.tensor(np.zeros((2, 1, 7), np.float32))
    h0 = dlia.tensor(np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="projected input must have 4·2 features"):
        ops.LSTM.apply(x, h0, h0, dlia.tensor(np.zeros((8, 2), np.float32)), projected=True)
