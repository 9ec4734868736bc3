"""``Session``: places a graph on a ``Device`` and runs what the fetches need (TensorFlow 1's
``tf.Session``), through a cached ``Plan`` (``dlia.graph.plan``: the pruned, optimised steps for one
set of fetches and fed nodes) turned into straight-line Python once (``dlia.graph.codegen``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy

from dlia.backend import allocator
from dlia.backend.device import Device, get_device
from dlia.core.sparse import SparseGrad
from dlia.core.tensor import Tensor
from dlia.graph.codegen import generate
from dlia.graph.core import GraphError, Node, NodeKind, _fmt, get_default_graph
from dlia.graph.plan import Plan
from dlia.graph.train import Trainer


def _flatten(fetches: Any, out: list[Node]) -> Any:
    """Collect the nodes of a nested fetch structure; return a template to rebuild it."""
    if isinstance(fetches, Node):
        out.append(fetches)
        return len(out) - 1
    if isinstance(fetches, (list, tuple)):
        return type(fetches), [_flatten(f, out) for f in fetches]
    if isinstance(fetches, dict):
        return dict, {k: _flatten(v, out) for k, v in fetches.items()}
    raise TypeError(f"cannot fetch {type(fetches).__name__}: fetches are nodes, or lists/tuples/dicts of nodes")


def _rebuild(template: Any, values: list[Any]) -> Any:
    if isinstance(template, int):
        return values[template]
    kind, items = template
    if kind is dict:
        return {k: _rebuild(v, values) for k, v in items.items()}
    return kind(_rebuild(v, values) for v in items)


class Session:
    """Runs a graph on a device; holds the values of its variables.

    Args:
        graph: the graph (default: the default graph).
        device: ``"cpu"`` (NumPy), ``"gpu"`` (CuPy) or a ``Device``.

    Example:
        >>> x = placeholder((None,)); y = x * 2
        >>> with Session() as s:           # doctest: +SKIP
        ...     s.run(y, {x: [1, 2]})
        array([2., 4.], dtype=float32)
    """

    def __init__(self, graph: Any = None, device: str | Device | None = None) -> None:
        self.graph = graph or get_default_graph()
        self.device = get_device(device)
        self.xp = self.device.xp
        self._array_type = self.xp.ndarray  # a feed of this type and the right dtype is used as is
        self.vars: dict[Node, Any] = {}
        self._plans: dict[Any, Plan] = {}
        self._last_run: tuple[Any, ...] | None = None
        self._trainers: dict[Node, Any] = {}
        self._code: dict[int, Any] = {}
        self.closed = False
        self.initialize()

    # -- variables -----------------------------------------------------------------------------
    def initialize(self, variables: Iterable[Node] | None = None) -> None:
        """(Re)set variables to their initial values (all of the graph's by default)."""
        for v in variables if variables is not None else self.graph.variables():
            self.vars[v] = self.xp.array(v.value)
        self._trainers.clear()  # optimizer state starts afresh

    def value_array(self, variable: Node) -> Any:
        """The device array holding a variable's value (initialised on first use)."""
        if variable not in self.vars:
            self.initialize([variable])
        return self.vars[variable]

    def value(self, variable: Node) -> numpy.ndarray:
        """A variable's current value (a NumPy copy)."""
        if variable not in self.vars:
            if variable.kind is not NodeKind.VARIABLE:
                raise GraphError(f"{variable.name!r} is not a variable")
            self.initialize([variable])
        return _to_numpy(self.vars[variable]).copy()

    def assign(self, variable: Node, value: Any) -> None:
        """Set a variable's value (shape must match)."""
        arr = self.xp.asarray(value, dtype=variable.static_dtype)
        if arr.shape != variable.static_shape:
            raise GraphError(f"assign: variable {variable.name!r} has shape {variable.static_shape}, value {arr.shape}")
        if variable in self.vars:
            self.vars[variable][...] = arr  # in place: a trainer's tensors share the array
        else:
            self.vars[variable] = arr.copy()

    # -- running -------------------------------------------------------------------------------
    def plan(self, fetches: list[Node], fed: Iterable[Node]) -> Plan:
        key = (tuple(id(f) for f in fetches), frozenset(id(n) for n in fed))
        plan = self._plans.get(key)
        if plan is None:
            allocator.ensure_tuned()  # before the first run's arrays (backend/allocator.py); once per process
            plan = self._plans[key] = Plan(fetches, list(fed))
        return plan

    def run(self, fetches: Any, feed_dict: dict[Any, Any] | None = None) -> Any:
        """Evaluate ``fetches`` (a node or a nested list/tuple/dict of nodes), computing only what
        they need; ``feed_dict`` maps placeholders (or any node, or node names) to values.

        Returns the same structure with NumPy arrays (``None`` for train ops).
        """
        if self.closed:
            raise GraphError("this Session is closed")
        feeds = self._feeds(feed_dict or {})
        # a training loop runs the same node with the same feed keys every step: reuse the last
        # call's plan (a list of fetches could have been changed in place since, so only a node)
        last, fed = self._last_run, tuple(feeds)
        if last is not None and last[0] is fetches and len(last[1]) == len(fed) and \
                all(a is b for a, b in zip(last[1], fed)):
            _, _, nodes, template, plan = last
        else:
            nodes = []
            template = _flatten(fetches, nodes)
            plan = self.plan(nodes, fed)
            self._last_run = (fetches, fed, nodes, template, plan) if isinstance(fetches, Node) else None
        vals = self.execute(plan, feeds)
        out = [None if v is None else _to_numpy(v) for v in vals]
        # results are the caller's: copy what the Session keeps (variables, folded constants), what
        # was fed, and a value fetched twice, so no result aliases another or an input
        stored = {slot for slot, _ in plan.constants} | {slot for _, slot in plan.feeds}
        seen: set[int] = set()
        for k, (n, v, slot) in enumerate(zip(nodes, out, plan.fetch_slots)):
            if isinstance(v, numpy.ndarray):
                if n.kind is NodeKind.VARIABLE or slot in stored or id(v) in seen:
                    out[k] = v = v.copy()
                seen.add(id(v))
        return _rebuild(template, out)

    def _feeds(self, feed_dict: dict[Any, Any]) -> dict[Node, Any]:
        out: dict[Node, Any] = {}
        for key, value in feed_dict.items():
            node = self.graph.node(key) if isinstance(key, str) else key
            if not isinstance(node, Node) or node.graph is not self.graph:
                raise GraphError(f"feed_dict key {key!r} is not a node of graph {self.graph.name!r}")
            arr = value.data if isinstance(value, Tensor) else value
            if not hasattr(arr, "dtype"):
                arr = numpy.asarray(arr)
            dtype = node.static_dtype
            if dtype is not None and arr.dtype != dtype and _lossy(arr.dtype, dtype):
                raise GraphError(f"feed for {node.name!r}: {dtype} placeholder given {arr.dtype} values "
                                 f"(cast them first, e.g. with .astype({str(dtype)!r}))")
            if type(arr) is not self._array_type or arr.dtype != dtype:
                arr = self.xp.asarray(arr, dtype=dtype)
            shape = node.static_shape
            if shape is not None and (arr.ndim != len(shape) or any(d is not None and d != a for d, a in zip(shape, arr.shape))):
                raise GraphError(f"feed for {node.name!r}: expected shape {_fmt(shape)}, got {arr.shape}")
            out[node] = arr
        return out

    def execute(self, plan: Plan, feeds: dict[Node, Any]) -> list[Any]:
        """Run a whole plan; returns the fetched values (device arrays). A plan runs as generated
        straight-line Python (``dlia.graph.codegen``), made once per plan."""
        code = self._code.get(id(plan))
        if code is None:
            fed = [n for n, _ in plan.feeds]
            fn, _, _ = generate(plan, fed, None, self.xp, self)
            code = self._code[id(plan)] = (fn, fed)
        fn, fed = code
        outs, _ = fn(*[feeds[n] for n in fed])
        return list(outs)

    def _train(self, node: Node, grads: list[Any]) -> None:
        trainer = self._trainers.get(node)
        if trainer is None:
            trainer = self._trainers[node] = Trainer(self, node)
        trainer.step(grads)

    def close(self) -> None:
        self.closed = True
        self.vars.clear()
        self._plans.clear()
        self._last_run = None
        self._code.clear()
        self._trainers.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lossy(src: Any, dst: Any) -> bool:
    """Whether feeding ``src`` values to a ``dst`` placeholder would drop their fractional (or
    imaginary) part: floats to integers or booleans, complex numbers to reals."""
    return (dst.kind in "iub" and src.kind in "fc") or (dst.kind == "f" and src.kind == "c")


def _to_numpy(a: Any) -> Any:
    if isinstance(a, numpy.ndarray) or a is None or isinstance(a, tuple):
        return a
    if isinstance(a, SparseGrad):  # a row-sparse gradient is fetched as is (``.to_dense()`` densifies)
        return SparseGrad(_to_numpy(a.indices), _to_numpy(a.values), a.shape)
    if hasattr(a, "get"):
        return a.get()
    return numpy.asarray(a)
