"""Graphviz DOT text of a dataflow graph (what TensorBoard's graph tab shows for TensorFlow 1).

One DOT node per graph node, labelled with its name, its op (the op class for ``op`` and ``vjp``
nodes, the kind otherwise), static shape, dtype and device; one edge per input, labelled with the
shape of the tensor it carries. The node's outline says what it is: placeholders are parallelograms
(fed from outside), variables cylinders (state kept by the Session), constants notes, ops rounded
boxes. Gradient nodes (built by ``gradients`` and ``minimize``) are dashed and red-filled, so the
backward half of a training graph stands apart from the forward half; a legend explains the styles.

Render the text with Graphviz: ``dot -Tsvg graph.dot -o graph.svg`` (or ``dlia graph show``).
"""

from __future__ import annotations

from typing import Any

from dlia.graph.core import Graph, GraphError, Node

#: (DOT shape, style, fill colour) per kind of node; gradient nodes keep the shape of their kind
_STYLES: dict[str, tuple[str, str, str]] = {
    "placeholder": ("parallelogram", "filled", "#d6e9f8"),
    "variable": ("cylinder", "filled", "#fbe3b5"),
    "constant": ("note", "filled", "#eeeeee"),
    "capture": ("box3d", "filled", "#e4f2d8"),
    "op": ("box", "rounded,filled", "#ffffff"),
    "train": ("octagon", "filled", "#f4b6b6"),
}
#: legend text per entry, in legend order
_LEGEND = {
    "placeholder": "placeholder\n(fed at run time)",
    "variable": "variable\n(state in the Session)",
    "constant": "constant",
    "capture": "capture\n(eager tensor read at run time)",
    "op": "op",
    "gradient": "gradient node: dashed, red\n(vjp, grad, seed, sum)",
    "train": "train op\n(optimizer step)",
}
_GRADIENT_FILL, _GRADIENT_BORDER, _SHAPE_OF = "#fbdada", "#b03a2e", "#aaaaaa"


def format_shape(shape: tuple[int | None, ...] | None) -> str:
    """``(None, 64)`` → ``'(?, 64)'``; ``(3,)`` → ``'(3,)'``; an unknown shape → ``'?'``."""
    if shape is None:
        return "?"
    dims = ", ".join("?" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"


def _html(text: str) -> str:
    """Text for an HTML-like DOT label: entities for markup characters, <BR/> for newlines.

    HTML-like labels take every other character literally (backslashes too), unlike quoted DOT
    strings, where ``\\n``, ``\\l`` and a trailing backslash have meanings of their own.
    """
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    out = "".join(c if c.isprintable() or c == "\n" else " " for c in out)  # no control characters in DOT
    return out.replace("\n", '<BR ALIGN="CENTER"/>')


def _quote(text: str) -> str:
    """A quoted DOT string for attributes that are not labels (colours, styles, tooltips).

    Callers keep a backslash off the end: old Graphviz lexers take an escaped backslash right before
    the closing quote for an escaped quote.
    """
    text = "".join(c if c.isprintable() else " " for c in text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _kind(node: Node) -> str:
    if node.kind in ("vjp", "grad"):
        return "op"
    return node.kind if node.kind in _STYLES else "op"


def _is_gradient(node: Node) -> bool:
    return bool(node.is_gradient) or node.kind in ("vjp", "grad", "train")


def _op_name(node: Node) -> str:
    if node.op is not None and node.kind in ("op", "vjp"):
        return f"{node.op.__name__} vjp" if node.kind == "vjp" else node.op.__name__
    if node.kind == "grad":
        return f"grad [{node.index}]"
    if node.kind == "train":
        return "optimizer step"
    return node.kind


def _nodes_of(fetches: Any, graph: Graph, out: list[Node]) -> None:
    if isinstance(fetches, str):
        fetches = graph.node(fetches)
    if isinstance(fetches, Node):
        if fetches.graph is not graph:
            raise GraphError(f"to_dot: fetch {fetches.name!r} belongs to graph {fetches.graph.name!r}, "
                             f"not {graph.name!r}")
        out.append(fetches)
    elif isinstance(fetches, (list, tuple, set, frozenset)):
        for f in fetches:
            _nodes_of(f, graph, out)
    elif isinstance(fetches, dict):
        for f in fetches.values():
            _nodes_of(f, graph, out)
    else:
        raise TypeError(f"to_dot: cannot draw {type(fetches).__name__}: fetches are nodes, node names, "
                        "or lists/tuples/dicts of them")


def _needed(fetches: list[Node]) -> set[int]:
    """Ids of the fetches and everything they read: inputs, and the node whose shape a grad takes."""
    seen: set[int] = set()
    stack = list(fetches)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.inputs)
        if node.kind == "grad" and isinstance(node.extra, Node):
            stack.append(node.extra)
    return seen


def nodes_to_draw(graph: Graph, fetches: Any = None, show_gradients: bool = True) -> list[Node]:
    """The nodes ``to_dot`` draws, in the graph's (topological) order: all, or what ``fetches`` need."""
    if fetches is None:
        nodes = list(graph.nodes)
    else:
        wanted: list[Node] = []
        _nodes_of(fetches, graph, wanted)
        keep = _needed(wanted)
        nodes = [n for n in graph.nodes if id(n) in keep]
    if not show_gradients:
        nodes = [n for n in nodes if not _is_gradient(n)]
    return nodes


def _node_attrs(kind: str, gradient: bool, label: str, tooltip: str) -> str:
    shape, style, fill = _STYLES[kind]
    if gradient:
        style += ",dashed"
        fill = fill if kind == "train" else _GRADIENT_FILL
    attrs = [f"shape={shape}", f"style={_quote(style)}", f"fillcolor={_quote(fill)}"]
    if gradient:
        attrs.append(f"color={_quote(_GRADIENT_BORDER)}")
    attrs += [f"label=<{label}>", f"tooltip={_quote(tooltip)}"]
    return ", ".join(attrs)


def _label(node: Node, device: str) -> str:
    if node.kind == "vjp":
        shape = "one gradient per input"
    elif node.kind == "train":
        shape = "updates variables"
    else:
        shape = format_shape(node.static_shape) + ("" if node.static_dtype is None else f" {node.static_dtype}")
    return (f"<B>{_html(node.name)}</B><BR/>{_html(_op_name(node))}<BR/>"
            f'<FONT POINT-SIZE="9">{_html(shape)}<BR/>{_html(device)}</FONT>')


def to_dot(graph: Graph, fetches: Any = None, device: str = "cpu", show_gradients: bool = True) -> str:
    """Graphviz DOT text for ``graph``: every node, or only what ``fetches`` need.

    Args:
        graph: the graph to draw.
        fetches: a node, a node name, or a list/tuple/dict of them (as ``Session.run`` takes);
            only these and their ancestors are drawn. ``None`` draws the whole graph.
        device: the device named in each node's label (``"cpu"``, ``"gpu"``).
        show_gradients: ``False`` leaves out gradient and train nodes (the forward graph only).

    Returns:
        DOT source text; render it with ``dot -Tsvg``.

    Example:
        >>> from dlia import graph as G
        >>> g = G.Graph("demo")
        >>> with g.as_default():
        ...     x = G.placeholder((None, 3), name="x")
        ...     y = (x * 2).named("y")
        >>> text = to_dot(g, y)
        >>> [line.split(", label")[0] for line in text.splitlines() if line.startswith("  n0 [")]
        ['  n0 [shape=parallelogram, style="filled", fillcolor="#d6e9f8"']
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"to_dot: expected a dlia.graph.Graph, got {type(graph).__name__}")
    nodes = nodes_to_draw(graph, fetches, show_gradients)
    ids = {id(n): f"n{i}" for i, n in enumerate(nodes)}
    device = str(device)
    title = f"graph {graph.name!r}: {len(nodes)} of {len(graph.nodes)} nodes, device {device}"
    lines = [
        "digraph dlia {",
        f"  graph [rankdir=TB, labelloc=t, fontname=Helvetica, label=<{_html(title)}>];",
        '  node [fontname=Helvetica, fontsize=11, penwidth=1.2, color="#444444"];',
        '  edge [fontname=Helvetica, fontsize=9, color="#555555", fontcolor="#333333"];',
    ]
    for node in nodes:
        tooltip = f"{node.name}: {node.kind}, shape {format_shape(node.static_shape)}"
        attrs = _node_attrs(_kind(node), _is_gradient(node), _label(node, device), tooltip)
        lines.append(f"  {ids[id(node)]} [{attrs}];")
    notes: set[str] = set()
    for node in nodes:
        dst = ids[id(node)]
        style = f', style=dashed, color="{_GRADIENT_BORDER}"' if _is_gradient(node) else ""
        for inp in node.inputs:
            if id(inp) not in ids:
                continue
            shape = f"[{node.index}] {format_shape(node.static_shape)}" if inp.kind == "vjp" else \
                format_shape(inp.static_shape)
            lines.append(f"  {ids[id(inp)]} -> {dst} [label=<{_html(shape)}>{style}];")
        if node.kind == "grad" and isinstance(node.extra, Node) and id(node.extra) in ids:
            lines.append(f'  {ids[id(node.extra)]} -> {dst} [style=dotted, arrowhead=empty, color="{_SHAPE_OF}", '
                         "constraint=false];")
            notes.add("shape")
        if node.kind == "train":
            for var in node.attrs.get("variables", ()):
                if id(var) in ids:
                    lines.append(f"  {dst} -> {ids[id(var)]} [label=<update>, style=dashed, "
                                 f'color="{_GRADIENT_BORDER}", fontcolor="{_GRADIENT_BORDER}", constraint=false];')
                    notes.add("update")
    present = {_kind(n) for n in nodes if not _is_gradient(n)}
    present |= {"train" if n.kind == "train" else "gradient" for n in nodes if _is_gradient(n)}
    legend = [c for c in _LEGEND if c in present]
    if legend:
        lines += ["  subgraph cluster_legend {",
                  '    label=<legend>; style="rounded,dashed"; color="#999999"; fontsize=10;']
        for c in legend:
            kind, gradient = ("op", True) if c == "gradient" else (c, c == "train")
            lines.append(f"    legend_{c} [{_node_attrs(kind, gradient, _html(_LEGEND[c]), c)}, fontsize=9];")
        text = []
        if "shape" in notes:
            text.append("dotted arrow: a gradient takes that node's shape")
        if "update" in notes:
            text.append("red dashed arrow 'update': the train op writes the variable")
        if text:
            legend.append("edges")
            lines.append(f"    legend_edges [shape=plaintext, fontsize=9, label=<{_html(chr(10).join(text))}>];")
        # invisible edges keep the legend in one tidy column
        for a, b in zip(legend, legend[1:]):
            lines.append(f"    legend_{a} -> legend_{b} [style=invis];")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
