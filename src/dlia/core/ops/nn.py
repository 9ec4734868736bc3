"""Neural-network ops: embedding lookup (sparse or dense scatter-add gradient), dropout, one_hot."""

from __future__ import annotations

import math
from typing import Any

import numpy

from dlia.backend import blas, native
from dlia.backend.device import get_array_module
from dlia.core.function import Function, shape_error
from dlia.core.random import Generator, default_generator
from dlia.core.sparse import SparseGrad
from dlia.core.tensor import Tensor


class Embedding(Function):
    fresh_grads = True

    differentiable = 1

    def forward(self, weight, indices, sparse=False, padding_idx=None):
        if indices.dtype.kind not in "iu":
            raise shape_error("embedding", f"indices must be integers, got {indices.dtype}", weight.shape, indices.shape)
        n = weight.shape[0]
        if indices.size and (int(indices.max()) >= n or int(indices.min()) < 0):
            raise IndexError(
                f"embedding: index out of range: indices span [{int(indices.min())}, {int(indices.max())}] "
                f"but the table has {n} rows"
            )
        self.indices, self.shape, self.sparse, self.padding_idx = indices, weight.shape, sparse, padding_idx
        return weight[indices]

    def vjp(self, g):
        xp = self.xp
        idx = self.indices.reshape(-1)
        rows = g.reshape((-1,) + self.shape[1:])
        if self.padding_idx is not None:
            rows = rows * (idx != self.padding_idx).reshape((-1,) + (1,) * (len(self.shape) - 1))
        if self.sparse:
            return SparseGrad(idx, rows, self.shape), None
        out = xp.zeros(self.shape, dtype=g.dtype)
        # (rows of width 1 stay below: NumPy sums a contiguous column pairwise, not in order)
        if xp is numpy and rows.ndim == 2 and rows.shape[1] > 1 and native.embedding_backward(idx, rows, out):
            pass  # one compiled pass over the rows: the sums below, in the same order (0.56 vs 2.0 ms in char-rnn)
        elif xp is numpy and idx.size > 1:
            # rows sorted by index and summed per run: 3.7x faster than numpy.add.at for the 2500
            # (batch x steps) lookups of a char-rnn batch (0.59 vs 2.2 ms); the same sums, in order
            order = numpy.argsort(idx, kind="stable")
            keys = idx[order]
            starts = numpy.flatnonzero(numpy.concatenate(([True], keys[1:] != keys[:-1])))
            sorted_rows = rows[order]
            if len(starts) <= 512:
                # few distinct ids (a character vocabulary): one sum per run. reduceat is slow on
                # wide rows: 8.8 ms against 0.35 ms here for 2500 rows of 512 in 65 runs (char-rnn's
                # table of projected gates, nn.LSTM.forward_embedded); 0.29 against 0.16 at 128
                ends = numpy.append(starts[1:], len(keys))
                for key, a, b in zip(keys[starts].tolist(), starts.tolist(), ends.tolist()):
                    sorted_rows[a:b].sum(axis=0, out=out[key])
            else:
                out[keys[starts]] = numpy.add.reduceat(sorted_rows, starts, axis=0)
        else:
            xp.add.at(out, idx, rows)  # CuPy's is a fast scatter-add
        return out, None


class Dropout(Function):
    fresh_grads = True

    def forward(self, a, p=0.5, generator=None):
        gen = generator or default_generator
        keep = gen.random(a.shape, a.dtype) >= p
        if self.xp is not numpy:
            keep = self.xp.asarray(keep)
        self.mask = keep * a.dtype.type(1.0 / (1.0 - p))
        return a * self.mask

    def vjp(self, g):
        return (g * self.mask,)


def embedding(weight: Tensor, indices: Any, sparse: bool = False, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` picked by integer ``indices``: (V, D) and (...) → (..., D).

    The gradient is a scatter-add into the rows used; with ``sparse=True`` it stays a
    ``SparseGrad`` of only those rows, so a huge vocabulary never densifies. Rows equal to
    ``padding_idx`` get no gradient; a negative one counts from the end, as in PyTorch.

    Example: ``embedding(eye(3), tensor([2, 0]))`` → ``[[0, 0, 1], [1, 0, 0]]``.
    """
    if not isinstance(indices, Tensor):
        indices = Tensor(get_array_module(weight.data).asarray(indices))  # on the weight's device
    if weight.ndim != 2:
        raise shape_error("embedding", "weight must be 2-D (num_embeddings, dim)", weight.shape, indices.shape)
    if padding_idx is not None:
        n = weight.shape[0]
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} is outside a table of {n} rows")
        padding_idx %= n
    return Embedding.apply(weight, indices, sparse=sparse, padding_idx=padding_idx)


def dropout(a: Tensor, p: float = 0.5, training: bool = True, generator: Generator | None = None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (inverted dropout).

    Identity when ``training`` is False or ``p`` is 0.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return a
    if p == 1.0:
        return a * 0.0
    return Dropout.apply(a, p=p, generator=generator)


def one_hot(indices: Any, num_classes: int, dtype: Any = numpy.float32) -> Tensor:
    """(...) integer class indices → (..., num_classes) with a 1 at each index. No gradient."""
    idx = indices.data if isinstance(indices, Tensor) else numpy.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got {idx.dtype}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        raise IndexError(f"one_hot: indices span [{int(idx.min())}, {int(idx.max())}], expected [0, {num_classes})")
    xp = get_array_module(idx)
    return Tensor(xp.eye(num_classes, dtype=dtype)[idx])


class Linear(Function):
    """Fused ``x @ weight.T + bias`` for (..., in) inputs and a (out, in) weight, as torch.nn.Linear."""

    fresh_grads = True

    def forward(self, x, weight, bias=None):
        if x.shape[-1] != weight.shape[1]:
            raise shape_error(
                "linear", f"input features {x.shape[-1]} do not match weight's in_features {weight.shape[1]}",
                x.shape, weight.shape,
            )
        self.x, self.w = x, weight
        # one 2-D product for all leading axes (NumPy's @ on a stack runs one product per matrix of
        # it); large float32 ones on dlia's threads inside blas.own_threads()
        rows = math.prod(x.shape[:-1])  # not -1: 0 features are allowed
        out = blas.matmul(x.reshape(rows, x.shape[-1]), weight.T).reshape(x.shape[:-1] + (weight.shape[0],))
        if bias is not None:
            out += bias
        return out

    def vjp(self, g):
        x, w = self.x, self.w
        needs = self.needs
        if g.ndim != 2:
            rows = math.prod(g.shape[:-1])
            g, x = g.reshape(rows, g.shape[-1]), x.reshape(rows, x.shape[-1])
        gx = blas.matmul(g, w).reshape(self.x.shape) if needs[0] else None
        gw = blas.matmul(g.T, x) if needs[1] else None
        gb = g.sum(axis=0) if len(needs) > 2 and needs[2] else None
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Affine map ``x @ weightᵀ + bias`` in one op: (..., in), (out, in), (out,) → (..., out).

    d/dx = g·W, d/dW = gᵀ·x, d/db = Σ g over all leading axes.
    Example: ``linear(ones((2, 3)), ones((4, 3))).shape`` → ``(2, 4)``.
    """
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)
