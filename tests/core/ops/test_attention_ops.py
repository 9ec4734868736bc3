"""The fused attention ops (dlia/core/ops/attention.py): values and gradients equal to the composition
of the engine's ops they replace, gradients against finite differences (float64), masking, dtypes,
shape errors."""

from __future__ import annotations

import numpy as np
import pytest

import dlia
from dlia.core.ops.attention import additive_attention, dot_attention
from helpers import check_vjp

B, S, H, D = 3, 5, 4, 6
LENGTHS = np.array([5, 2, 3])
MASK = np.arange(S)[None, :] < LENGTHS[:, None]


def composed_additive(q, keys, v, values, mask):
    """What Seq2Seq._attend computed before the op: eight nodes."""
    scores = (dlia.tanh(keys + q.reshape(q.shape[0], 1, q.shape[1])) * v.reshape(1, 1, -1)).sum(axis=2)
    weights = dlia.softmax(dlia.where(mask, scores, -1e30), axis=1)
    return (values * weights.reshape(weights.shape[0], weights.shape[1], 1)).sum(axis=1), weights


def composed_dot(q, keys, values, mask):
    scores = (keys * q.reshape(q.shape[0], 1, q.shape[1])).sum(axis=2)
    weights = dlia.softmax(dlia.where(mask, scores, -1e30), axis=1)
    return (values * weights.reshape(weights.shape[0], weights.shape[1], 1)).sum(axis=1), weights


def inputs(kind, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((B, H)), rng.standard_normal((B, S, H))]
    if kind == "additive":
        arrays.append(rng.standard_normal((1, H)))  # a Linear(H, 1)'s weight
    arrays.append(rng.standard_normal((B, S, D)))
    return [a.astype(dtype) for a in arrays]


OPS = {"additive": (additive_attention, composed_additive), "dot": (dot_attention, composed_dot)}


@pytest.mark.parametrize("kind", ["additive", "dot"])
def test_values_and_gradients_equal_the_composed_ops(kind):
    fused, composed = OPS[kind]
    arrays = inputs(kind)
    rng = np.random.default_rng(1)
    gc, gw = rng.standard_normal((B, D)), rng.standard_normal((B, S))
    results = []
    for fn in (fused, composed):
        xs = [dlia.tensor(a.copy(), requires_grad=True) for a in arrays]
        context, weights = fn(*xs, MASK)
        ((context * dlia.tensor(gc)).sum() + (weights * dlia.tensor(gw)).sum()).backward()
        results.append([context.numpy(), weights.numpy()] + [x.grad.numpy() for x in xs])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["additive", "dot"])
def test_gradients_match_finite_differences(kind):
    fused, _ = OPS[kind]
    check_vjp(lambda *xs: list(fused(*xs[:-1], xs[-1].numpy())), *inputs(kind), MASK, directions=3)


@pytest.mark.parametrize("kind", ["additive", "dot"])
def test_padding_gets_weight_zero_and_changes_nothing(kind):
    """Weights sum to 1 over the real positions and are exactly 0 at the padding; whatever the
    padded keys and values hold, the context and the gradients of the real positions are the same,
    and the padded positions get gradient 0."""
    fused, _ = OPS[kind]
    arrays = inputs(kind)
    other = [a.copy() for a in arrays]
    other[1][~MASK] = 1e3  # keys
    other[-1][~MASK] = -7.0  # values
    results = []
    for arr in (arrays, other):
        xs = [dlia.tensor(a, requires_grad=True) for a in arr]
        context, weights = fused(*xs, MASK)
        (context.sum() + (weights * weights).sum()).backward()
        results.append((context.numpy(), weights.numpy(), [x.grad.numpy() for x in xs]))
    (c1, w1, g1), (c2, w2, g2) = results
    assert (w1[~MASK] == 0).all()
    np.testing.assert_allclose(w1.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(w1, w2)
    for a, b in zip(g1, g2):
        if a.ndim == 3:  # keys and values: the real positions alike, the padded ones 0
            np.testing.assert_array_equal(a[MASK], b[MASK])
            assert (a[~MASK] == 0).all() and (b[~MASK] == 0).all()


@pytest.mark.parametrize("kind", ["additive", "dot"])
def test_float32_stays_float32_and_agrees_with_float64(kind):
    fused, _ = OPS[kind]
    a64 = inputs(kind)
    x32 = [dlia.tensor(a.astype(np.float32), requires_grad=True) for a in a64]
    x64 = [dlia.tensor(a, requires_grad=True) for a in a64]
    for xs in (x32, x64):
        context, weights = fused(*xs, MASK)
        (context.sum() + weights[:, 0].sum()).backward()
        if xs is x32:
            c32 = context.numpy()
    assert c32.dtype == np.float32 and all(x.grad.dtype == np.float32 for x in x32)
    np.testing.assert_allclose(c32, context.numpy(), rtol=1e-5, atol=1e-6)
    for a, b in zip(x32, x64):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_shape_errors_name_the_op():
    q, keys, v, values = (dlia.tensor(a) for a in inputs("additive"))
    with pytest.raises(ValueError, match="additive_attention"):
        additive_attention(q, keys, v, values, MASK[:, :3])
    with pytest.raises(ValueError, match="additive_attention"):
        additive_attention(q, keys, dlia.tensor(np.ones((1, H + 1))), values, MASK)
    with pytest.raises(ValueError, match="dot_attention"):
        dot_attention(q, keys, values[:, :2], MASK)
    with pytest.raises(ValueError, match="dot_attention"):
        dot_attention(q, keys, values, MASK.astype(np.int64))


def test_additive_attention_with_no_hidden_units_gives_uniform_weights():
    """H = 0: every score is v·tanh(·) = 0, so the weights are uniform over the unmasked positions."""
    q, keys, v = dlia.zeros((2, 0)), dlia.zeros((2, 3, 0)), dlia.zeros((0,))
    values = dlia.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    mask = np.array([[True, True, True], [True, True, False]])
    context, weights = additive_attention(q, keys, v, values, mask)
    np.testing.assert_allclose(weights.numpy(), [[1 / 3] * 3, [0.5, 0.5, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(context.numpy(), (weights.numpy()[:, :, None] * values.numpy()).sum(axis=1), rtol=1e-6)
