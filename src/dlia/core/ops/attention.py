"""Attention over a padded sequence as one op: scores, masked softmax and context with one vjp.

A decoder attends once per output step. Composed from the engine's ops, one step of additive
attention is eight nodes (add, tanh, a Linear to one score, reshape, where, softmax, multiply,
sum), each with its own Python overhead, temporaries and vjp; at the sizes of a seq2seq model
(B = 64 rows, S ≈ 20 positions, H ≤ 256) that overhead, not the arithmetic, is most of their
cost. Here they are one node, with the same values (to rounding) and gradients.

With query q (B, H), keys k (B, S, H), values h (B, S, D) and a mask (B, S) (True on real
positions)::

    additive (Bahdanau):  e_j = v·tanh(k_j + q)        v (H,): k_j = W_k h_j + b and q = W_q s are
                                                      computed outside, the keys once per batch
    dot (Luong):          e_j = q·k_j
    a = softmax_j(e_j, padded positions −1e30)        exactly 0 there (exp underflows)
    c = Σ_j a_j h_j

Each op returns one packed array (B, D + S): the context c in columns [0, D), the weights a in
[D, D + S); ``additive_attention``/``dot_attention`` split it. The vjp, for the incoming gradient
(gc, ga) of (c, a)::

    δa = ga + h·gc                  (B, S)      dh = a ⊗ gc                 (B, S, D)
    δe = a∘(δa − Σ_j a_j δa_j)      softmax's vjp; 0 at padded positions (a = 0 there)
    additive: δp = δe v ∘ (1 − tanh²)  (B, S, H);   dk = δp,   dq = Σ_j δp_j,   dv = Σ_{b,j} δe·tanh
    dot:      dk = δe ⊗ q,   dq = Σ_j δe_j k_j
"""

from __future__ import annotations

from typing import Any

import numpy

from dlia.backend import blas
from dlia.core.function import Function, shape_error
from dlia.core.tensor import Tensor

#: a score masked out of the softmax: exp(−1e30 − max) is exactly 0 in float32 and float64
MASKED = -1e30


def _check(name: str, q: Any, keys: Any, values: Any, mask: Any) -> None:
    shapes = [q.shape, keys.shape, values.shape, mask.shape]
    if keys.ndim != 3 or values.ndim != 3 or q.ndim != 2:
        raise shape_error(name, "expected query (B, H), keys (B, S, H) and values (B, S, D)", *shapes)
    if q.shape != (keys.shape[0], keys.shape[2]) or values.shape[:2] != keys.shape[:2]:
        raise shape_error(name, "query (B, H), keys (B, S, H) and values (B, S, D) disagree", *shapes)
    if mask.shape != keys.shape[:2] or mask.dtype.kind != "b":
        raise shape_error(name, "the mask must be a (B, S) boolean array", *shapes)


def _attend(xp: Any, e: Any, values: Any, mask: Any) -> tuple[Any, Any]:
    """Scores e (B, S) (overwritten with the weights) → (packed [context | weights] (B, D + S), weights)."""
    e[~mask] = MASKED
    e -= e.max(axis=1, keepdims=True)
    xp.exp(e, out=e)
    e /= e.sum(axis=1, keepdims=True)
    b, s, d = values.shape
    out = xp.empty((b, d + s), dtype=values.dtype)
    xp.matmul(e[:, None, :], values, out=out[:, None, :d])  # (B, 1, S)·(B, S, D)
    out[:, d:] = e
    return out, e


def _softmax_vjp(xp: Any, g: Any, weights: Any, values: Any, need_values: bool) -> tuple[Any, Any]:
    """(δe (B, S), dh (B, S, D) or None) from the packed gradient ``g`` (B, D + S)."""
    d = values.shape[2]
    gc = g[:, :d]
    da = (values @ gc[:, :, None])[:, :, 0]  # (B, S, D)·(B, D, 1)
    da += g[:, d:]
    de = da - (weights * da).sum(axis=1, keepdims=True)
    de *= weights
    dh = weights[:, :, None] * gc[:, None, :] if need_values else None
    return de, dh


class AdditiveAttention(Function):
    """Bahdanau's attention: inputs q (B, H), keys (B, S, H), v (H,) or (1, H) (a ``Linear(H, 1)``'s
    weight), values (B, S, D); attribute ``mask`` (B, S) bool → packed [context | weights] (B, D + S)."""

    fresh_grads = True

    def forward(self, q, keys, v, values, mask=None):
        xp = self.xp
        _check("additive_attention", q, keys, values, mask)
        hs = keys.shape[2]
        if v.size != hs:
            raise shape_error("additive_attention", f"v must hold {hs} numbers (H of the keys)", v.shape, keys.shape)
        t = keys + q[:, None, :]
        xp.tanh(t, out=t)
        e = blas.matmul(t.reshape(t.shape[0] * t.shape[1], hs), v.reshape(hs, 1)).reshape(t.shape[:2])  # (B, S)
        out, weights = _attend(xp, e, values, mask)
        self.t, self.v, self.values, self.weights = t, v, values, weights
        return out

    def vjp(self, g):
        xp = self.xp
        t, v, values = self.t, self.v, self.values
        hs = t.shape[2]
        de, dh = _softmax_vjp(xp, g, self.weights, values, self.needs[3])
        dp = t * t  # δp = δe·v·(1 − tanh²), built in place
        xp.subtract(1.0, dp, out=dp)
        dp *= v.reshape(hs)
        dp *= de[:, :, None]
        dq = dp.sum(axis=1) if self.needs[0] else None
        dv = blas.matmul(de.reshape(1, de.size), t.reshape(de.size, hs)).reshape(v.shape) if self.needs[2] else None
        return dq, dp if self.needs[1] else None, dv, dh


class DotAttention(Function):
    """Luong's dot attention: inputs q (B, H), keys (B, S, H), values (B, S, D); attribute ``mask``
    (B, S) bool → packed [context | weights] (B, D + S)."""

    fresh_grads = True

    def forward(self, q, keys, values, mask=None):
        xp = self.xp
        _check("dot_attention", q, keys, values, mask)
        e = (keys @ q[:, :, None])[:, :, 0]  # (B, S, H)·(B, H, 1)
        out, weights = _attend(xp, e, values, mask)
        self.q, self.keys, self.values, self.weights = q, keys, values, weights
        return out

    def vjp(self, g):
        de, dh = _softmax_vjp(self.xp, g, self.weights, self.values, self.needs[2])
        dq = (de[:, None, :] @ self.keys)[:, 0] if self.needs[0] else None
        dk = de[:, :, None] * self.q[:, None, :] if self.needs[1] else None
        return dq, dk, dh


def _split(packed: Tensor, d: int) -> tuple[Tensor, Tensor]:
    return packed[:, :d], packed[:, d:]


def additive_attention(q: Tensor, keys: Tensor, v: Tensor, values: Tensor, mask: Any) -> tuple[Tensor, Tensor]:
    """Bahdanau attention in one op: (context (B, D), weights (B, S)) of ``softmax_j(v·tanh(k_j + q))``
    over the positions where ``mask`` (B, S, bool) is True; q (B, H), keys (B, S, H), v (H,) or
    (1, H), values (B, S, D). Weights are 0 where the mask is False."""
    return _split(AdditiveAttention.apply(q, keys, v, values, mask=_mask(mask)), values.shape[2])


def dot_attention(q: Tensor, keys: Tensor, values: Tensor, mask: Any) -> tuple[Tensor, Tensor]:
    """Luong's dot attention in one op: (context (B, D), weights (B, S)) of ``softmax_j(q·k_j)`` over
    the positions where ``mask`` is True; q (B, H), keys (B, S, H), values (B, S, D)."""
    return _split(DotAttention.apply(q, keys, values, mask=_mask(mask)), values.shape[2])


def _mask(mask: Any) -> Any:
    return mask.data if isinstance(mask, Tensor) else numpy.asarray(mask)
