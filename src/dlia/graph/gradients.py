"""Symbolic differentiation: gradient nodes built from each op's own ``vjp`` (like ``tf.gradients``).

For every op node between the ``ys`` and the ``xs`` (in reverse order), a ``vjp`` node calls the
forward op's ``vjp`` with the incoming gradient, at run time, on the context the forward run left;
``grad`` nodes pick one input's gradient out of it (reduced to the input's shape like the eager
engine does), and ``Accumulate`` op nodes sum the contributions of nodes used more than once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy

from dlia.core.autodiff import _add
from dlia.core.function import Function
from dlia.core.ops.arith import MatMul
from dlia.core.ops.shape import GetItem
from dlia.graph.core import GraphError, Node, NodeKind, topological


class OnesLike(Function):
    """ones with the shape and dtype of ``a`` (the seed gradient of a non-scalar output)."""

    def forward(self, a):
        return self.xp.ones_like(a)

    def vjp(self, g):
        return (None,)


class SliceScatter(Function):
    """The gradient of a tensor read through several basic slices (an LSTM's gates, ``split``):
    one zero buffer with each slice's gradient added in place — instead of one full-size array per
    slice and a sum of them, which is what eager backprop has to do."""

    def forward(self, *grads, shape=(), dtype=None, index=()):
        out = self.xp.zeros(shape, dtype=dtype)
        for g, idx in zip(grads, index):
            out[idx] += g
        self.index = index
        return out

    def vjp(self, g):
        return tuple(g[idx] for idx in self.index)


class StackedMatmulGrad(Function):
    """Σ_t a_tᵀ g_t as one product (a_1; …; a_k)ᵀ (g_1; …; g_k): the gradient of a weight that k
    matmuls share (an RNN's weight over its time steps), instead of k small products and a sum."""

    def forward(self, *arrays):
        k = len(arrays) // 2
        a = self.xp.concatenate(arrays[:k], axis=0)
        g = self.xp.concatenate(arrays[k:], axis=0)
        return a.T @ g


class Accumulate(Function):
    """The sum of gradient contributions; understands row-sparse embedding gradients."""

    def forward(self, *grads):
        total = grads[0]
        for g in grads[1:]:
            total = _add(total, g)
        return total


def gradients(ys: Node | Sequence[Node], xs: Node | Sequence[Node], grad_ys: Any = None) -> Any:
    """Nodes for d(sum of ys)/d(x) for each x in ``xs`` (``None`` where x does not affect ys).

    Args:
        ys: output node(s); non-scalar outputs are seeded with ones unless ``grad_ys`` is given.
        xs: the nodes to differentiate with respect to (variables, placeholders, any node).
        grad_ys: seed gradients, one node per y.

    Returns:
        A list like ``xs`` (or a single node if ``xs`` is a single node).
    """
    single = isinstance(xs, Node)
    ys = [ys] if isinstance(ys, Node) else list(ys)
    xs = [xs] if single else list(xs)
    graph = ys[0].graph
    for n in ys + xs:
        if not isinstance(n, Node) or n.graph is not graph:
            raise GraphError(f"gradients: {getattr(n, 'name', n)!r} is not a node of graph {graph.name!r}")
    order = topological(ys)
    # nodes on a path from some x to some y
    targets = {id(x) for x in xs}
    reaches: set[int] = set()
    for node in order:  # inputs come before outputs in ``order``
        if id(node) in targets or (not node.stops_gradient and any(id(i) in reaches for i in node.inputs)):
            reaches.add(id(node))
    contrib: dict[int, list[Node]] = {}
    for k, y in enumerate(ys):
        if grad_ys is not None:
            seed = grad_ys[k]
        elif y.static_shape == ():
            from dlia.graph.core import constant

            seed = constant(numpy.ones((), dtype=y.static_dtype), graph=graph, name=f"{y.name}_grad_seed")
        else:
            seed = OnesLike.apply(y)
        seed.is_gradient = True
        contrib.setdefault(id(y), []).append(seed)
    sliced: dict[int, list[tuple[Node, Any]]] = {}
    total: dict[int, Node] = {}
    for node in reversed(order):
        parts = contrib.get(id(node), [])
        pieces = sliced.get(id(node))
        if pieces:
            parts = parts + [_scatter(pieces, node)]
        if not parts:
            continue
        parts = _stack_weight_grads(parts, node)
        g = parts[0] if len(parts) == 1 else _accumulate(parts, node)
        total[id(node)] = g
        if node.kind is not NodeKind.OP:
            continue
        needs = tuple(id(i) in reaches and (i.static_dtype is None or i.static_dtype.kind == "f")
                      for i in node.inputs)
        d = node.op.differentiable
        if d is not None:
            needs = needs[:d] + (False,) * (len(needs) - d)
        if not any(needs):
            continue
        src = node.inputs[0]
        if node.op is GetItem and _basic(node.attrs["index"]) and src.static_shape is not None \
                and None not in src.static_shape:
            sliced.setdefault(id(src), []).append((g, node.attrs["index"]))  # combined when src is reached
            continue
        vjp = Node(graph, NodeKind.VJP, f"{node.name}_vjp", None, None, op=node.op, inputs=(node, g))
        vjp.is_gradient = True
        for i, (inp, need) in enumerate(zip(node.inputs, needs)):
            if need:
                gi = Node(graph, NodeKind.GRAD, f"{node.name}_grad{i}", inp.static_shape, inp.static_dtype, inputs=(vjp,))
                gi.index, gi.extra, gi.is_gradient = i, inp, True
                contrib.setdefault(id(inp), []).append(gi)
    out = [total.get(id(x)) for x in xs]
    return out[0] if single else out


def _basic(index: Any) -> bool:
    """Whether an index is basic (ints and slices only): such slices never overlap themselves."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice)) or p is None or p is Ellipsis for p in parts)


def _scatter(pieces: list[tuple[Node, Any]], node: Node) -> Node:
    grads = tuple(g for g, _ in pieces)
    out = Node(node.graph, NodeKind.OP, f"{node.name}_grad_slices", node.static_shape, node.static_dtype, op=SliceScatter,
               inputs=grads, attrs={"shape": node.static_shape, "dtype": node.static_dtype,
                                    "index": tuple(i for _, i in pieces)})
    out.is_gradient = True
    return out


def _stack_weight_grads(parts: list[Node], node: Node) -> list[Node]:
    """Replace the contributions of several ``a_t @ node`` matmuls by one ``StackedMatmulGrad``."""
    if node.static_shape is None or len(node.static_shape) != 2:
        return parts
    uses, rest = [], []
    for p in parts:
        vjp = p.inputs[0] if p.kind is NodeKind.GRAD and p.index == 1 else None
        fwd = vjp.inputs[0] if vjp is not None else None
        if (fwd is not None and fwd.op is MatMul and fwd.inputs[1] is node and fwd.inputs[0] is not node
                and fwd.inputs[0].static_shape is not None and len(fwd.inputs[0].static_shape) == 2):
            uses.append((fwd, vjp))
        else:
            rest.append(p)
    if len(uses) < 2:
        return parts
    # the matmuls' own vjps now only serve their first input (a plan asks each op for the input
    # gradients its grad nodes read)
    inputs = tuple(fwd.inputs[0] for fwd, _ in uses) + tuple(vjp.inputs[1] for _, vjp in uses)
    stacked = Node(node.graph, NodeKind.OP, f"{node.name}_grad_stacked", node.static_shape, node.static_dtype,
                   op=StackedMatmulGrad, inputs=inputs)
    stacked.is_gradient = True
    return rest + [stacked]


def _accumulate(parts: list[Node], node: Node) -> Node:
    """Sum contributions pairwise, in the order they become available: a weight shared by 50 time
    steps then holds one running sum instead of 50 partial gradients alive at once."""
    acc = parts[0]
    for k, part in enumerate(parts[1:]):
        acc = Node(node.graph, NodeKind.OP, f"{node.name}_grad_sum{k}", node.static_shape, node.static_dtype,
                   op=Accumulate, inputs=(acc, part))
        acc.is_gradient = True
    return acc
