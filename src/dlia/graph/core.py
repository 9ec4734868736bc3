"""Graphs of symbolic nodes: placeholders, variables, constants, and op nodes built from the very
op classes eager mode runs (``dlia.core.ops``).

A ``Node`` is a ``Tensor`` whose data is ``SYMBOLIC``: every operator, method and ``dlia.*`` op
works on it, and ``Function.apply`` turns the call into a new node instead of computing. Shapes are
inferred at build time by running the op's own forward on small stand-in arrays (unknown ``None``
dimensions take two different sizes; what changes between the two runs stays unknown), so no op
needs a second, shape-only implementation.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Container, Iterator
from enum import StrEnum
from typing import Any

import numpy

from dlia.backend.device import Device, get_device
from dlia.core import function
from dlia.core.function import SYMBOLIC, Function, ShapeError
from dlia.core.random import Generator, default_generator
from dlia.core.tensor import Tensor

#: stand-in sizes for unknown (None) dimensions during shape inference
_PROBES = (5, 7)


class GraphError(ValueError):
    """A graph that cannot be built or run; the message names the node."""


class NodeKind(StrEnum):
    """What a node is (a ``str``: ``node.kind == "variable"`` holds)."""

    PLACEHOLDER = "placeholder"  #: fed at run time
    VARIABLE = "variable"  #: a value the Session keeps between runs
    CONSTANT = "constant"  #: a value baked into the graph (``value``)
    CAPTURE = "capture"  #: an eager tensor ``dlia.compile`` reads at every call (``capture``)
    OP = "op"  #: an op class applied to ``inputs`` with ``attrs``
    VJP = "vjp"  #: all input gradients of the op node ``inputs[0]``, given the output gradient ``inputs[1]``
    GRAD = "grad"  #: gradient number ``index`` of a ``vjp`` node, shaped like ``extra``
    TRAIN = "train"  #: an optimizer update of ``attrs["variables"]`` from the gradients ``inputs``


class Graph:
    """A dataflow graph: nodes are operations, edges are tensors (as TensorFlow 1's ``tf.Graph``).

    Build inside ``with graph.as_default():`` (or use the default graph), then run with a
    ``Session``.

    Args:
        name: the graph's name (default ``graph<N>``).
        device: where arrays made while building live (what ``node.device`` reports, e.g. for a
            layer that makes a constant with ``x.device.xp``); CPU by default. A Session may run
            the graph elsewhere: constants are moved to its device when it plans a run.
    """

    _counter = itertools.count()

    def __init__(self, name: str | None = None, device: str | Device | None = None) -> None:
        self.name = name or f"graph{next(Graph._counter)}"
        self.device = get_device(device)
        self.nodes: list[Node] = []
        self._names: dict[str, int] = {}

    def unique_name(self, base: str) -> str:
        n = self._names.get(base, 0)
        self._names[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    @contextlib.contextmanager
    def as_default(self) -> Iterator[Graph]:
        _DEFAULT.append(self)
        try:
            yield self
        finally:
            _DEFAULT.pop()

    def variables(self, trainable_only: bool = False) -> list[Node]:
        return [n for n in self.nodes if n.kind is NodeKind.VARIABLE and (n.trainable or not trainable_only)]

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"graph {self.name!r} has no node named {name!r}")

    def to_dot(self, fetches: Any = None) -> str:
        """Graphviz DOT text of the graph (or of what ``fetches`` need)."""
        from dlia.graph.dot import to_dot

        return to_dot(self, fetches)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.nodes)} nodes)"


_DEFAULT: list[Graph] = [Graph("default")]


def get_default_graph() -> Graph:
    """The graph new placeholders, variables and constants go to."""
    return _DEFAULT[-1]


def reset_default_graph() -> Graph:
    """Start a fresh default graph (like ``tf.reset_default_graph``)."""
    _DEFAULT[0] = Graph("default")
    del _DEFAULT[1:]
    return _DEFAULT[0]


class Node(Tensor):
    """A symbolic tensor: the output of one graph operation.

    Attributes:
        kind: a ``NodeKind`` (given as one or as its string): placeholder, variable, constant,
            capture (an eager tensor read at run time), op, vjp (all input gradients of one op),
            grad (one of them) or train (an optimizer update).
        op: the op class for ``op`` and ``vjp`` nodes.
        inputs: input nodes.
        attrs: the op's keyword arguments.
        static_shape: the inferred shape, ``None`` for unknown dimensions.
    """

    __slots__ = ("graph", "kind", "op", "inputs", "attrs", "name", "static_shape", "static_dtype", "value",
                 "trainable", "index", "capture", "extra", "is_gradient", "stops_gradient")

    def __init__(self, graph: Graph, kind: NodeKind | str, name: str, shape: tuple[int | None, ...] | None, dtype: Any,
                 op: type[Function] | None = None, inputs: tuple[Node, ...] = (), attrs: dict[str, Any] | None = None,
                 value: Any = None, requires_grad: bool = False) -> None:
        self.data = SYMBOLIC
        self.grad = None
        self._ctx = None
        self._retain = False
        self.requires_grad = requires_grad
        self.graph, self.kind, self.op, self.inputs = graph, NodeKind(kind), op, tuple(inputs)
        self.attrs = attrs or {}
        self.name = graph.unique_name(name)
        self.static_shape = None if shape is None else tuple(shape)
        self.static_dtype = None if dtype is None else numpy.dtype(dtype)
        self.value, self.trainable, self.index = value, False, None
        self.capture, self.extra, self.is_gradient = None, None, False
        #: built with grad mode off (``no_grad`` inside a traced function): ``gradients`` passes no
        #: gradient through it, as backprop would not in eager mode
        self.stops_gradient = False
        graph.add(self)

    # -- what a Tensor reads from its data --------------------------------------------------------
    @property
    def shape(self) -> tuple[int | None, ...] | None:  # type: ignore[override]
        return self.static_shape

    @property
    def dtype(self) -> Any:
        return self.static_dtype

    @property
    def device(self) -> Device:
        """The graph's device: a symbolic node has no data to tell where it lives."""
        return self.graph.device

    @property
    def ndim(self) -> int:
        if self.static_shape is None:
            raise GraphError(f"node {self.name!r} has no static shape")
        return len(self.static_shape)

    @property
    def size(self) -> int | None:  # type: ignore[override]
        if self.static_shape is None or None in self.static_shape:
            return None
        return int(numpy.prod(self.static_shape))

    def numpy(self) -> numpy.ndarray:
        raise GraphError(f"node {self.name!r} is symbolic: run it in a Session to get its value")

    def item(self) -> Any:
        return self.numpy()

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        raise GraphError(f"node {self.name!r} is symbolic: use dlia.graph.gradients(...) in graph mode")

    def named(self, name: str) -> Node:
        """Rename this node (names must stay unique in the graph); returns it."""
        self.name = self.graph.unique_name(name)
        return self

    def __repr__(self) -> str:
        shape = "?" if self.static_shape is None else "(" + ", ".join("?" if d is None else str(d)
                                                                      for d in self.static_shape) + ")"
        op = f" op={self.op.__name__}" if self.op is not None else ""
        return f"<Node {self.name!r} {self.kind}{op} shape={shape} dtype={self.static_dtype}>"

    def __len__(self) -> int:
        if not self.static_shape or self.static_shape[0] is None:
            raise GraphError(f"node {self.name!r}: length unknown until run")
        return self.static_shape[0]

    def __bool__(self) -> bool:
        raise GraphError(f"node {self.name!r} is symbolic: its truth value is unknown until run")

    __hash__ = object.__hash__


def placeholder(shape: Any = None, dtype: Any = numpy.float32, name: str = "placeholder",
                graph: Graph | None = None) -> Node:
    """An input fed at run time (``feed_dict``); ``None`` dimensions take any size.

    Example: ``x = placeholder((None, 784))`` accepts any batch of 784-vectors.
    """
    g = graph or get_default_graph()
    shp = None if shape is None else tuple(None if d is None else int(d) for d in shape)
    return Node(g, NodeKind.PLACEHOLDER, name, shp, dtype)


def Variable(initial_value: Any, name: str = "Variable", trainable: bool = True, dtype: Any = None,  # noqa: N802
             graph: Graph | None = None) -> Node:
    """A tensor whose value lives in the Session and persists between runs; optimizers update it."""
    g = graph or get_default_graph()
    value = initial_value.numpy() if isinstance(initial_value, Tensor) else initial_value
    arr = numpy.asarray(value, dtype=dtype)
    if dtype is None and arr.dtype == numpy.float64 and not isinstance(value, numpy.ndarray):
        arr = arr.astype(numpy.float32)
    node = Node(g, NodeKind.VARIABLE, name, arr.shape, arr.dtype, value=arr.copy(),
                requires_grad=bool(trainable) and arr.dtype.kind == "f")
    node.trainable = bool(trainable)
    return node


def constant(value: Any, dtype: Any = None, name: str = "Const", graph: Graph | None = None) -> Node:
    """A fixed value baked into the graph."""
    g = graph or get_default_graph()
    arr = value.numpy() if isinstance(value, Tensor) else numpy.asarray(value, dtype=dtype)
    if dtype is None and arr.dtype == numpy.float64 and not isinstance(value, (numpy.ndarray, Tensor)):
        arr = arr.astype(numpy.float32)
    return Node(g, NodeKind.CONSTANT, name, arr.shape, arr.dtype, value=arr)


def topological(roots: list[Node], stop: set[int] | frozenset[int] = frozenset()) -> list[Node]:
    """The nodes ``roots`` depend on, inputs before the nodes that use them (an iterative DFS).

    Nodes whose ids are in ``stop`` are included but not expanded (fed nodes); a ``grad`` node also
    depends on the input whose runtime shape it takes (``extra``).
    """
    order: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if id(node) in stop:
            continue
        deps = node.inputs + ((node.extra,) if node.kind is NodeKind.GRAD else ())
        for i in reversed(deps):
            if id(i) not in seen:
                stack.append((i, False))
    return order


# -- building op nodes through Function.apply ------------------------------------------------------
class Trace:
    """What ``dlia.compile`` keeps while it traces (``current_mode().trace``): the eager tensors
    the traced code reads become captures."""

    __slots__ = ("captures", "known")

    def __init__(self, captures: dict[int, Node], known: Container[int] = frozenset()) -> None:
        #: capture node of each eager tensor read so far, by the tensor's id
        self.captures = captures
        #: ids of the tensors held by the modules the traced code called (and by the function's own
        #: globals and closure): such a tensor is captured even when 0-d
        self.known = known


def _as_node(t: Tensor, graph: Graph) -> Node:
    if isinstance(t, Node):
        if t.graph is not graph:
            raise GraphError(f"node {t.name!r} belongs to graph {t.graph.name!r}, not {graph.name!r}")
        return t
    trace = function.current_mode().trace
    # captured tensors are read at every call; other 0-d tensors are Python numbers an op made into
    # tensors, and become constants
    if trace is not None and (t.data.ndim or t.requires_grad or id(t) in trace.known):
        caps = trace.captures
        node = caps.get(id(t))
        if node is None:
            node = Node(graph, NodeKind.CAPTURE, "capture", t.data.shape, t.data.dtype, requires_grad=t.requires_grad)
            node.capture = t
            caps[id(t)] = node
        return node
    return constant(t, graph=graph)


def _stand_in(node: Node, probe: int) -> Any:
    shape = tuple(probe if d is None else d for d in node.static_shape)
    dtype = node.static_dtype
    if dtype.kind in "fc":
        return numpy.ones(shape, dtype=dtype)  # ones: log, sqrt and division stay finite
    return numpy.zeros(shape, dtype=dtype)  # zeros: valid indices and class labels


def infer_shape(op: type[Function], inputs: tuple[Node, ...], attrs: dict[str, Any], name: str) -> tuple[Any, Any]:
    """Run ``op.forward`` on stand-in arrays to learn the output's shape and dtype.

    Random state touched by the op (dropout) is restored, so building a graph draws no numbers.
    """
    if any(n.static_shape is None for n in inputs):
        return None, None
    dynamic = any(None in n.static_shape for n in inputs)
    gens = [default_generator] + [v for v in attrs.values() if isinstance(v, Generator)]
    saved = [g.get_state() for g in gens]
    results = []
    try:
        for probe in (_PROBES if dynamic else _PROBES[:1]):
            ctx = object.__new__(op)
            out = ctx.forward(*[_stand_in(n, probe) for n in inputs], **attrs)
            out = numpy.asarray(out)
            results.append((out.shape, out.dtype))
    except (ShapeError, ValueError, IndexError, TypeError) as e:
        shapes = ", ".join(f"{n.name}: {_fmt(n.static_shape)}" for n in inputs)
        detail = re.sub(r" \(input shapes: [^)]*(\)[^)]*)*\)$", "", str(e))  # stand-in sizes would mislead
        raise GraphError(f"node {name!r} ({op.__name__}): {detail}; inputs {shapes}") from None
    finally:
        for g, st in zip(gens, saved):
            g.set_state(st)
    shape = results[0][0]
    if dynamic:
        other = results[1][0]
        if len(other) != len(shape):
            return None, results[0][1]
        shape = tuple(a if a == b else None for a, b in zip(shape, other))
    return shape, results[0][1]


def _fmt(shape: Any) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def build_op(op: type[Function], inputs: tuple[Tensor, ...], attrs: dict[str, Any]) -> Node:
    """What ``Function.apply`` does with symbolic inputs: a new op node, its shape inferred."""
    graph = next((t.graph for t in inputs if isinstance(t, Node)), None) or get_default_graph()
    nodes = tuple(_as_node(t, graph) for t in inputs)
    name = op.__name__.lower()
    shape, dtype = infer_shape(op, nodes, attrs, name)
    d = op.differentiable
    needs = [n.requires_grad for n in nodes]
    if d is not None:
        needs = needs[:d]
    grad = function.current_mode().grad
    node = Node(graph, NodeKind.OP, name, shape, dtype, op=op, inputs=nodes, attrs=attrs,
                requires_grad=grad and any(needs) and (dtype is None or numpy.dtype(dtype).kind == "f"))
    node.stops_gradient = not grad  # as in eager mode, ops built under no_grad pass no gradient
    return node


function.register_graph_builder(build_op)
