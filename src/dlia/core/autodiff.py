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
from dlia.core.tensor import Tensor, wrap


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
