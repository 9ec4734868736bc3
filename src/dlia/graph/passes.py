"""Graph passes applied when a Session or ``dlia.compile`` plans a run:

- pruning: only the nodes the fetches need are planned at all;
- constant folding: op nodes whose inputs are all constants are computed once, at planning time;
- common-subexpression elimination: identical op nodes (same op, same inputs, equal attributes) run once;
- memory planning: each value is dropped right after its last use (and each op's saved context right
  after its gradient ran), so peak memory holds only what is still needed;
- elementwise fusion: chains of elementwise ops, each feeding only the next, run as one step whose
  intermediates never enter the value table (see ``Plan``).
"""

from __future__ import annotations

from typing import Any

import numpy

from dlia.core.ops import elementwise as _ew
from dlia.core.ops import nn as _nnops
from dlia.graph.core import NodeKind

#: ops with random or external effects are never folded or merged
IMPURE = {_nnops.Dropout}
#: ops that map each element independently (candidates for fusion)
ELEMENTWISE = {_ew.Exp, _ew.Log, _ew.Sqrt, _ew.Abs, _ew.Tanh, _ew.Sigmoid, _ew.ReLU, _ew.LeakyReLU, _ew.Clip}


def attrs_key(attrs: dict[str, Any]) -> Any:
    """A hashable key for op attributes (arrays and other unhashables by identity)."""
    items = []
    for k in sorted(attrs):
        v = attrs[k]
        try:
            hash(v)
            items.append((k, type(v).__name__, v))
        except TypeError:
            items.append((k, "id", id(v)))
    return tuple(items)


def fold_constants(order: list[Any]) -> dict[int, numpy.ndarray]:
    """Values of op nodes computable from constants alone: node id → array."""
    known: dict[int, Any] = {}
    for node in order:
        if node.kind is NodeKind.CONSTANT:
            known[id(node)] = node.value
        elif node.kind is NodeKind.OP and node.op not in IMPURE and node.inputs and all(id(i) in known for i in node.inputs):
            ctx = object.__new__(node.op)
            known[id(node)] = numpy.asarray(ctx.forward(*[known[id(i)] for i in node.inputs], **node.attrs))
    return known


def eliminate_common(order: list[Any], alias: dict[int, Any], fed: set[int] | frozenset[int] = frozenset()) -> dict[int, Any]:
    """Map each op node to the first identical one (same op, same canonical inputs, equal attrs).
    Fed nodes are never merged: their value comes from the feed, not from their op."""
    seen: dict[Any, Any] = {}
    for node in order:
        if node.kind is not NodeKind.OP or node.op in IMPURE or id(node) in fed:
            continue
        inputs = tuple(id(alias.get(id(i), i)) for i in node.inputs)
        key = (node.op, inputs, attrs_key(node.attrs))
        first = seen.get(key)
        if first is None:
            seen[key] = node
        else:
            alias[id(node)] = first
    return alias
