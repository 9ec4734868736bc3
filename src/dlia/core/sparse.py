"""Row-sparse gradients: what an embedding lookup sends back instead of a dense (V, D) matrix."""

from __future__ import annotations

from typing import Any

from dlia.backend.device import get_array_module


class SparseGrad:
    """A gradient that is zero except in some rows: ``dense[indices[k]] += values[k]``.

    Rows may repeat until ``coalesce()`` sums them. Optimizers that understand it (SGD without
    momentum, Adagrad, SparseAdam-style lazy updates) touch only these rows; the rest densify.

    Attributes:
        indices: 1-D integer array of row numbers.
        values: array of shape ``(len(indices),) + shape[1:]``.
        shape: shape of the dense gradient.
    """

    __slots__ = ("indices", "values", "shape")

    def __init__(self, indices: Any, values: Any, shape: tuple[int, ...]) -> None:
        self.indices = indices
        self.values = values
        self.shape = tuple(shape)

    @property
    def dtype(self) -> Any:
        return self.values.dtype

    @property
    def data(self) -> Any:
        """The dense array (so code written for dense grads keeps working)."""
        return self.to_dense()

    def to_dense(self) -> Any:
        xp = get_array_module(self.values)
        out = xp.zeros(self.shape, dtype=self.values.dtype)
        xp.add.at(out, self.indices, self.values)
        return out

    def numpy(self) -> Any:
        return self.to_dense()

    def coalesce(self) -> SparseGrad:
        """Sum repeated rows; indices come out sorted and unique."""
        xp = get_array_module(self.values)
        uniq, inv = xp.unique(self.indices, return_inverse=True)
        vals = xp.zeros((len(uniq),) + self.shape[1:], dtype=self.values.dtype)
        xp.add.at(vals, inv.reshape(-1), self.values)
        return SparseGrad(uniq, vals, self.shape)

    def add_to(self, other: Any) -> Any:
        """``self + other`` where ``other`` is a SparseGrad or a dense array."""
        xp = get_array_module(self.values)
        if isinstance(other, SparseGrad):
            return SparseGrad(
                xp.concatenate([other.indices, self.indices]),
                xp.concatenate([other.values, self.values]),
                self.shape,
            )
        out = other.copy()
        xp.add.at(out, self.indices, self.values)
        return out

    def __mul__(self, scale: float) -> SparseGrad:
        return SparseGrad(self.indices, self.values * scale, self.shape)

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"SparseGrad(rows={len(self.indices)}, shape={self.shape})"
