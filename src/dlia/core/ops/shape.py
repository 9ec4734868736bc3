"""Shape ops: reshape, transpose/permute, broadcast_to/expand, getitem, concatenate, stack, split,
squeeze, unsqueeze, flatten. None of them computes; their vjps move gradients back into place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy

from dlia.core.axes import normalize_axis
from dlia.core.function import Function, shape_error
from dlia.core.tensor import Tensor


class Reshape(Function):
    def forward(self, a, shape=()):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise shape_error("reshape", f"cannot reshape {a.size} elements into {tuple(shape)}", a.shape) from None

    def vjp(self, g):
        return (g.reshape(self.shape),)


class Transpose(Function):
    def forward(self, a, axes=None):
        nd = a.ndim
        if axes is None:
            axes = tuple(range(nd))[::-1]
        else:
            axes = tuple(normalize_axis(x, nd, "transpose", a.shape) for x in axes)
            if nd == 0:
                axes = ()  # a 0-d tensor's axis 0 is no axis of its array
        if len(axes) != nd or sorted(axes) != list(range(nd)):
            raise shape_error("transpose", f"axes {axes} are not a permutation of {nd} dims", a.shape)
        self.inverse = [0] * nd
        for i, ax in enumerate(axes):
            self.inverse[ax] = i
        return a.transpose(axes)

    def vjp(self, g):
        return (g.transpose(self.inverse),)


class BroadcastTo(Function):
    def forward(self, a, shape=()):
        try:
            return self.xp.broadcast_to(a, shape)
        except ValueError:
            raise shape_error("broadcast_to", f"cannot broadcast to {tuple(shape)}", a.shape) from None

    def vjp(self, g):
        return (g,)  # the engine sums it back to the input shape


def _has_int_array(idx: Any) -> bool:
    parts = idx if isinstance(idx, tuple) else (idx,)
    return any(hasattr(p, "dtype") and p.dtype.kind in "iu" for p in parts)


class GetItem(Function):
    fresh_grads = True

    def forward(self, a, index=None):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        try:
            return a[index]
        except IndexError as e:
            raise shape_error("getitem", str(e), a.shape) from None

    def vjp(self, g):
        xp = self.xp
        out = xp.zeros(self.shape, dtype=g.dtype)
        if _has_int_array(self.index):
            xp.add.at(out, self.index, g)  # repeated indices accumulate
        else:
            out[self.index] = g
        return (out,)


class _Slot:
    """Marks where a tensor of the index goes in ``IndexBy``'s template."""

    def __repr__(self) -> str:
        return "<tensor>"


_SLOT = _Slot()


class IndexBy(GetItem):
    """``a[index]`` where the index holds tensors: they are inputs of the op (not attributes), so
    an index can be a graph placeholder or a computed tensor. Only ``a`` gets a gradient."""

    differentiable = 1

    def forward(self, a, *parts, template=()):
        it = iter(parts)
        index = tuple(next(it) if t is _SLOT else t for t in template)
        for p in parts:
            if p.dtype.kind not in "iub":
                raise shape_error("getitem", f"tensor indices must be integers or booleans, got {p.dtype}", a.shape, p.shape)
        self.n_parts = len(parts)
        return super().forward(a, index=index[0] if len(index) == 1 else index)

    def vjp(self, g):
        return super().vjp(g) + (None,) * self.n_parts


class Concatenate(Function):
    def forward(self, *arrays, axis=0):
        if any(a.ndim == 0 for a in arrays):
            raise shape_error("concatenate", "zero-dimensional tensors cannot be concatenated (use stack)",
                              *[a.shape for a in arrays])
        self.axis = axis = normalize_axis(axis, arrays[0].ndim, "concatenate", *[a.shape for a in arrays])
        self.sizes = [a.shape[axis] for a in arrays]
        try:
            return self.xp.concatenate(arrays, axis=axis)
        except ValueError as e:
            raise shape_error("concatenate", str(e), *[a.shape for a in arrays]) from None

    def vjp(self, g):
        bounds, total = [], 0
        for n in self.sizes[:-1]:
            total += n
            bounds.append(total)
        return tuple(self.xp.split(g, bounds, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis = normalize_axis(axis, arrays[0].ndim + 1, "stack", *[a.shape for a in arrays])
        try:
            return self.xp.stack(arrays, axis=axis)
        except ValueError as e:
            raise shape_error("stack", str(e), *[a.shape for a in arrays]) from None

    def vjp(self, g):
        return tuple(self.xp.moveaxis(g, self.axis, 0))


def _is_concrete(t: Tensor) -> bool:
    return hasattr(t.data, "ndim")  # a graph node's data is a symbolic stand-in without one


def _index(idx: Any) -> Any:
    """Turn Tensor/list components of an index into arrays."""
    if isinstance(idx, tuple):
        return tuple(_index(i) for i in idx)
    if isinstance(idx, Tensor):
        return idx.data
    if isinstance(idx, list):
        arr = numpy.asarray(idx)
        # an empty list selects nothing (as torch); NumPy would read it as a float array, which is no index
        return arr.astype(numpy.intp) if arr.size == 0 else arr
    return idx


def reshape(a: Tensor, shape: Sequence[int]) -> Tensor:
    """Same elements, new shape (one entry may be -1). Example: ``reshape(ones(6), (2, 3))``."""
    return Reshape.apply(a, shape=tuple(shape))


def flatten(a: Tensor, start: int = 0) -> Tensor:
    """Merge axes ``start..`` into one: (N, C, H, W) with start=1 → (N, C·H·W). On a graph node with
    an unknown batch size, the merged size comes from the known trailing dimensions."""
    start = normalize_axis(start, a.ndim, "flatten", a.shape)
    lead, rest = tuple(a.shape[:start]), tuple(a.shape[start:])
    if None not in lead:
        shape = lead + (-1,)
    elif lead.count(None) == 1 and None not in rest:
        size = 1
        for d in rest:
            size *= d
        shape = tuple(-1 if d is None else d for d in lead) + (size,)
    else:
        raise shape_error("flatten", f"cannot flatten from axis {start} with more than one unknown size", a.shape)
    return Reshape.apply(a, shape=shape)


def transpose(a: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes (reverse them by default). The gradient applies the inverse permutation."""
    return Transpose.apply(a, axes=None if axes is None else tuple(axes))


def permute(a: Tensor, axes: Sequence[int]) -> Tensor:
    """Reorder axes: ``permute(x, (0, 2, 1))`` swaps the last two axes of a 3-D tensor."""
    return Transpose.apply(a, axes=tuple(axes))


def broadcast_to(a: Tensor, shape: Sequence[int]) -> Tensor:
    """Repeat size-1 axes (and prepend new ones) to reach ``shape``; the gradient sums back.

    ``-1`` keeps the size of an existing axis (as torch's ``expand``); a new leading axis needs a size.
    """
    new = len(shape) - a.ndim
    for i, s in enumerate(shape[:new]):
        if s == -1:
            raise shape_error("broadcast_to", f"-1 in {tuple(shape)} names new leading axis {i}, which has no size to keep",
                              a.shape)
    shape = tuple(a.shape[i - new] if s == -1 else s for i, s in enumerate(shape))
    return BroadcastTo.apply(a, shape=shape)


expand = broadcast_to


def getitem(a: Tensor, index: Any) -> Tensor:
    """``a[index]``: basic slicing and integer-array gathers; repeated indices sum their gradients.

    Example: ``tensor([1., 2., 3.])[[0, 0, 2]]`` → ``tensor([1., 1., 3.])``.
    """
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(p, Tensor) and not _is_concrete(p) for p in parts):
        # graph nodes in the index (a placeholder of row numbers, say) become inputs of the op
        symbolic = [isinstance(p, Tensor) and not _is_concrete(p) for p in parts]
        template = tuple(_SLOT if sym else _index(p) for p, sym in zip(parts, symbolic))
        tensors = [p for p, sym in zip(parts, symbolic) if sym]
        if any(t.dtype is not None and t.dtype.kind == "b" for t in tensors):
            raise ValueError("getitem: a boolean mask given as a graph node has a data-dependent result shape; "
                             "use dlia.where(mask, x, 0) or feed integer indices")
        return IndexBy.apply(a, *tensors, template=template)
    return GetItem.apply(a, index=_index(index))


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis; the gradient is split back into the pieces."""
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    return Stack.apply(*tensors, axis=axis)


def split(a: Tensor, sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Cut ``a`` along ``axis`` into chunks (PyTorch semantics).

    Args:
        a: the tensor.
        sections: an int is the size of every chunk (the last may be smaller); a list gives
            each chunk's size and must add up to the axis length.
        axis: the axis to cut.
    """
    axis = normalize_axis(axis, a.ndim, "split", a.shape)
    n = a.shape[axis]
    if isinstance(sections, int):
        if sections <= 0:
            raise ValueError(f"split: chunk size must be positive, got {sections}")
        sizes = [min(sections, n - i) for i in range(0, n, sections)]
    else:
        sizes = list(sections)
        if sum(sizes) != n:
            raise shape_error("split", f"sizes {sizes} add up to {sum(sizes)}, not {n}", a.shape)
    out, start = [], 0
    lead = (slice(None),) * axis
    for s in sizes:
        out.append(GetItem.apply(a, index=lead + (slice(start, start + s),)))
        start += s
    return out


def squeeze(a: Tensor, axis: int | None = None) -> Tensor:
    """Drop size-1 axes (all, or just ``axis``)."""
    if axis is None:
        shape = tuple(n for n in a.shape if n != 1)
    else:
        axis = normalize_axis(axis, a.ndim, "squeeze", a.shape)
        if a.ndim == 0 or a.shape[axis] != 1:
            shape = a.shape  # a scalar, or an axis whose size is not 1: nothing to squeeze (as torch)
        else:
            shape = a.shape[:axis] + a.shape[axis + 1 :]
    return Reshape.apply(a, shape=shape)


def unsqueeze(a: Tensor, axis: int) -> Tensor:
    """Insert a size-1 axis at ``axis``."""
    axis = normalize_axis(axis, a.ndim + 1, "unsqueeze", a.shape)
    return Reshape.apply(a, shape=a.shape[:axis] + (1,) + a.shape[axis:])
