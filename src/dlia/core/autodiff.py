"""Reverse-mode autodiff: an iterative topological walk with gradients collected in a dict.

Broadcasting is undone here, once, by ``unbroadcast``: a vjp may return a gradient of the
broadcast shape and the engine sums it back to its input's shape (and casts it to the input's
dtype, so a float32 leaf gets a float32 gradient even from a float64 result, as in PyTorch).
"""

from __future__ import annotations

from typing import Any

import numpy

from dlia.backend import allocator
from dlia.backend.device import get_array_module
from dlia.core.sparse import SparseGrad
from dlia.core.tensor import Tensor, memory_owner, wrap, write_clock, written_since


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    extra = grad.ndim - len(shape)
    if extra == 1:
        grad = grad.sum(axis=0)
        if grad.shape == shape:
            return grad
    elif extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:
        grad = grad.reshape(shape)
    return grad


def topological_order(root: Tensor) -> list[Tensor]:
    """Non-leaf tensors that ``root`` depends on (and that require grad), inputs before outputs.

    Leaves are left out: backward adds into their ``.grad`` as soon as an edge reaches them.
    Tensors hash by identity, so they serve directly as set and dict keys here.
    """
    order: list[Tensor] = []
    if root._ctx is None:
        return order
    seen = {root}
    stack = [(root, iter(root._ctx.parents or ()))]
    push, pop, append, add = stack.append, stack.pop, order.append, seen.add
    while stack:
        node, it = stack[-1]
        for p in it:
            ctx = p._ctx
            if ctx is not None and p.requires_grad and p not in seen:
                add(p)
                push((p, iter(ctx.parents or ())))
                break
        else:
            pop()
            append(node)
    return order


def backward(root: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires a gradient."""
    if not root.requires_grad:
        raise RuntimeError("backward(): tensor does not require grad and has no grad_fn")
    allocator.ensure_tuned()  # training's per-step arrays: malloc keeps them (backend/allocator.py); once per process
    ctx = root._ctx
    xp = ctx.xp if ctx is not None else get_array_module(root.data)
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward(): grad can be implicitly created only for scalar outputs, "
                f"got shape {root.shape}"
            )
        # a NumPy scalar 1 for the usual scalar loss: cheaper than allocating an array
        grad = root.data.dtype.type(1) if root.shape == () and xp is numpy else xp.ones(root.shape, dtype=root.data.dtype)
    else:
        grad = xp.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=root.data.dtype)
        if grad.shape != root.shape:
            raise RuntimeError(f"backward(): grad shape {grad.shape} does not match tensor shape {root.shape}")
    if ctx is None:  # backward on a leaf itself
        _accumulate(root, grad)
        return

    grads: dict[Tensor, Any] = {root: grad}
    pop, get = grads.pop, grads.get
    clock, written = write_clock[0], {}
    for node in reversed(topological_order(root)):
        g = pop(node, None)
        if g is None:
            continue
        ctx = node._ctx
        parents = ctx.parents
        if parents is None:
            raise RuntimeError(
                f"backward(): trying to backward through the graph a second time "
                f"(op {type(ctx).__name__}); pass retain_graph=True to the first backward"
            )
        if ctx.clock != clock:  # something was written in place since this op ran
            _check_writes(node, ctx, written)
        if node._retain:
            node.grad = wrap(_fresh(g)) if node.grad is None else wrap(_add(g, node.grad.data))
        fresh = ctx.fresh_grads
        for p, need, pg in zip(parents, ctx.needs, ctx.vjp(g)):
            if not need or pg is None:
                continue
            data = p.data
            if pg.shape != data.shape or pg.dtype != data.dtype:
                pg = _fit(pg, data)
            if p._ctx is not None:
                prev = get(p)
                grads[p] = pg if prev is None else _add(prev, pg)
            elif p.grad is None and type(pg) is not SparseGrad and pg.ndim:
                p.grad = wrap(pg if fresh else pg.copy())  # a leaf's .grad is never shared
            else:
                _accumulate(p, pg)
        if not retain_graph:
            ctx.__dict__.clear()  # drops parents and saved arrays; ctx.parents is None again


def _check_writes(node: Tensor, ctx: Any, written: dict[int, Any]) -> None:
    """Raise if memory written in place after ``ctx``'s op ran holds an array the op saved for its
    gradient (its input or output, or a view of one). ``written`` caches, per clock value, the
    arrays written since and their ids, for one backward pass."""
    found = written.get(ctx.clock)
    if found is None:
        arrays = written_since(ctx.clock)  # kept with the ids, so the ids stay theirs
        found = written[ctx.clock] = (arrays, {id(a) for a in arrays})
    ids = found[1]
    if not ids:
        return
    for a in _saved_arrays(ctx.__dict__, 3):
        owner = memory_owner(a)
        if id(owner) in ids:
            role = next((f"input {i}" for i, p in enumerate(ctx.parents) if memory_owner(p.data) is owner),
                        "output" if memory_owner(node.data) is owner else "an array derived from its inputs")
            raise RuntimeError(
                f"backward(): one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: op {type(ctx).__name__} saved its {role} (shape {tuple(a.shape)}) for the gradient, and "
                f"its memory was written in place after the op ran (zero_(), an optimizer step), so the gradient would "
                f"use the new values; run the forward again after the write, or write a copy")


def _saved_arrays(value: Any, depth: int) -> Any:
    """The arrays an op context keeps (its ``__dict__``), looking into lists, tuples, dicts and the
    contexts of other ops (a compiled call keeps those) down to ``depth`` levels."""
    if isinstance(value, numpy.ndarray) or hasattr(value, "__cuda_array_interface__"):
        yield value
    elif depth and isinstance(value, dict):
        for k, v in value.items():
            if k != "parents":
                yield from _saved_arrays(v, depth - 1)
    elif depth and isinstance(value, (list, tuple)):
        for v in value:
            yield from _saved_arrays(v, depth - 1)
    elif depth and hasattr(value, "vjp") and hasattr(value, "__dict__"):
        yield from _saved_arrays(value.__dict__, depth)


def _accumulate(leaf: Tensor, g: Any) -> None:
    """Add ``g`` into ``leaf.grad`` as a fresh array (gradients are never shared between leaves)."""
    prev = leaf.grad
    if type(g) is SparseGrad:
        acc = g if prev is None else g.add_to(prev if type(prev) is SparseGrad else prev.data)
        leaf.grad = acc if type(acc) is SparseGrad else wrap(acc)
    elif prev is None:
        leaf.grad = wrap(_fresh(g))
    else:
        total = _add(g, prev if type(prev) is SparseGrad else prev.data)
        leaf.grad = wrap(total if total.ndim else _fresh(total))


def _fresh(g: Any) -> Any:
    """A new array equal to ``g``. NumPy hands back 0-d results as scalars, which cannot be
    updated in place (``grad.zero_()``), so those become 0-d arrays."""
    return g.copy() if g.ndim else get_array_module(g).array(g)


def _fit(pg: Any, like: Any) -> Any:
    """``pg`` summed back to the shape of the input array ``like`` and cast to its dtype."""
    if type(pg) is SparseGrad:
        return pg
    if pg.shape != like.shape:
        pg = unbroadcast(pg, like.shape)
    return pg if pg.dtype == like.dtype else pg.astype(like.dtype)


def _add(a: Any, b: Any) -> Any:
    """Sum two gradients, either of which may be a sparse row gradient."""
    if type(a) is SparseGrad:
        return a.add_to(b)
    if type(b) is SparseGrad:
        return b.add_to(a)
    return a + b
