"""``dlia.graph.dot.to_dot``: one DOT node per graph node with name/op/shape/dtype/device labels,
shapes by kind, gradient nodes styled apart, fetch pruning, and escaping of odd names."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

import dlia
from dlia import graph as G
from dlia.graph.dot import format_shape, nodes_to_draw, to_dot

NODE = re.compile(r"^\s+(\w+) \[(.*)\];$")
EDGE = re.compile(r"^\s+(\w+) -> (\w+) \[(.*)\];$")


def parse(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict[str, str]]]]:
    """Node and edge statements of our DOT output: {id: attrs}, [(src, dst, attrs)]."""
    assert text.startswith("digraph dlia {\n") and text.endswith("}\n")
    nodes, edges = {}, []
    for line in text.splitlines()[1:-1]:
        if m := EDGE.match(line):
            edges.append((m[1], m[2], attrs(m[3])))
        elif (m := NODE.match(line)) and m[1] not in ("graph", "node", "edge"):
            nodes[m[1]] = attrs(m[2])
    return nodes, edges


def attrs(text: str) -> dict[str, str]:
    """key=value pairs: values are "quoted" (with \\" escapes), <html> (balanced) or bare words."""
    out, i = {}, 0
    while i < len(text):
        key = re.match(r"\s*(\w+)=", text[i:])
        assert key, f"bad attribute list at {text[i:]!r}"
        i += key.end()
        if text[i] == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            value, i = text[i + 1:j], j + 1
        elif text[i] == "<":
            depth, j = 0, i
            while True:
                depth += {"<": 1, ">": -1}.get(text[j], 0)
                j += 1
                if depth == 0:
                    break
            value, i = text[i + 1:j - 1], j
        else:
            m = re.match(r"[\w.#-]+", text[i:])
            value, i = m[0], i + m.end()
        out[key[1]] = value
        i += len(re.match(r"\s*,?", text[i:])[0])
    return out


def by_name(nodes: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Graph nodes (not the legend) keyed by the bold name in their label."""
    return {re.match(r"<B>(.*?)</B>", a["label"])[1]: a | {"id": i} for i, a in nodes.items() if i.startswith("n")}


@pytest.fixture
def regression():
    g = G.Graph("regression")
    with g.as_default():
        x = G.placeholder((None, 2), name="x")
        t = G.placeholder((None, 1), name="t")
        W = G.Variable(np.zeros((2, 1), np.float32), name="W")
        b = G.Variable(np.zeros(1, np.float32), name="b")
        y = (x @ W + b).named("y")
        loss = ((y - t) ** 2).mean().named("loss")
        train = G.GradientDescentOptimizer(0.1).minimize(loss)
        other = (x * 3).named("unrelated")
    return g, dict(x=x, t=t, W=W, b=b, y=y, loss=loss, train=train, other=other)


def test_every_node_with_name_op_shape_dtype_and_device(regression):
    g, n = regression
    nodes, edges = parse(to_dot(g, device="gpu"))
    named = by_name(nodes)
    assert set(named) == {node.name for node in g.nodes}
    assert "<B>x</B><BR/>placeholder<BR/>" in named["x"]["label"] and "(?, 2) float32" in named["x"]["label"]
    assert "<BR/>variable<BR/>" in named["W"]["label"] and "(2, 1) float32" in named["W"]["label"]
    assert "<BR/>MatMul<BR/>" in named["matmul"]["label"] and "(?, 1) float32" in named["matmul"]["label"]
    assert "<BR/>Mean<BR/>" in named["loss"]["label"] and "() float32" in named["loss"]["label"]
    assert "<BR/>Mean vjp<BR/>" in named["loss_vjp"]["label"]
    assert all(a["label"].endswith("<BR/>gpu</FONT>") for a in named.values())
    assert "device gpu" in to_dot(g, device="gpu").splitlines()[1]


def test_shapes_by_kind_and_gradient_styling(regression):
    g, _ = regression
    named = by_name(parse(to_dot(g))[0])
    assert named["x"]["shape"] == "parallelogram"
    assert named["W"]["shape"] == "cylinder"
    assert named["Const"]["shape"] == "note"
    assert named["matmul"]["shape"] == "box" and "rounded" in named["matmul"]["style"]
    for node in g.nodes:
        a = named[node.name]
        if node.is_gradient:
            assert "dashed" in a["style"] and a["color"] == "#b03a2e", node
        else:
            assert "dashed" not in a["style"] and "color" not in a, node
    forward_fills = {named[n.name]["fillcolor"] for n in g.nodes if not n.is_gradient}
    gradient_fills = {named[n.name]["fillcolor"] for n in g.nodes if n.is_gradient and n.kind != "train"}
    assert gradient_fills == {"#fbdada"} and not forward_fills & gradient_fills
    kinds = {n.kind for n in g.nodes if n.is_gradient}
    assert {"vjp", "grad", "train", "constant"} <= kinds  # the seed is a gradient constant
    assert named["loss_grad_seed"]["shape"] == "note"  # a gradient node keeps its kind's outline
    assert named["train"]["shape"] == "octagon"


def test_legend_subgraph_explains_the_styles(regression):
    g, _ = regression
    text = to_dot(g)
    legend = text[text.index("subgraph cluster_legend"):]
    for word in ("placeholder", "variable", "constant", "gradient node", "train op", "legend"):
        assert word in legend
    nodes, _ = parse(text)
    assert "dashed" in nodes["legend_gradient"]["style"] and nodes["legend_gradient"]["fillcolor"] == "#fbdada"
    forward = to_dot(g, g.node("y"))
    assert "legend_gradient" not in forward and "legend_placeholder" in forward and "legend_constant" not in forward


def test_edges_carry_shapes_and_gradient_extras(regression):
    g, n = regression
    nodes, edges = parse(to_dot(g))
    ids = {a["id"]: name for name, a in by_name(nodes).items()}
    labelled = {(ids[s], ids[d]): a for s, d, a in edges if s in ids and d in ids}
    assert labelled[("x", "matmul")]["label"] == "(?, 2)"
    assert labelled[("W", "matmul")]["label"] == "(2, 1)"
    assert labelled[("b", "y")]["label"] == "(1,)"
    assert labelled[("matmul_vjp", "matmul_grad1")]["label"] == "[1] (2, 1)"
    assert labelled[("W", "matmul_grad1")]["style"] == "dotted"  # the grad takes W's shape
    assert labelled[("train", "W")]["label"] == "update" and labelled[("train", "b")]["label"] == "update"
    assert labelled[("loss", "loss_vjp")]["style"] == "dashed"
    assert len(edges) == len(labelled) + 6  # the rest are the legend's invisible edges
    assert all(a["style"] == "invis" for s, d, a in edges if s.startswith("legend_"))


def test_fetch_pruning(regression):
    g, n = regression
    y_only = {node.name for node in nodes_to_draw(g, n["y"])}
    assert y_only == {"x", "W", "b", "matmul", "y"}
    assert set(by_name(parse(to_dot(g, n["y"]))[0])) == y_only
    # nested fetches and names, as Session.run takes them
    assert {node.name for node in nodes_to_draw(g, {"a": [n["y"]], "b": ("unrelated",)})} == y_only | {"unrelated",
                                                                                                         "Const_1"}
    everything_but = {node.name for node in nodes_to_draw(g, n["train"])}
    assert "unrelated" not in everything_but and "t" in everything_but and "train" in everything_but
    # a grad node also needs the node whose shape it takes
    grad = g.node("y_grad1")
    assert grad.extra is n["b"] and "b" in {node.name for node in nodes_to_draw(g, grad)}
    assert to_dot(g, n["y"]) == g.to_dot(n["y"]) and to_dot(g) == g.to_dot()


def test_no_gradients_keeps_only_the_forward_graph(regression):
    g, n = regression
    names = {node.name for node in nodes_to_draw(g, n["train"], show_gradients=False)}
    assert names == {"x", "t", "W", "b", "matmul", "y", "sub", "Const", "pow", "loss"}
    text = to_dot(g, n["train"], show_gradients=False)
    assert "dashed" not in text.split("subgraph")[0].replace('style="rounded,dashed"', "")
    assert "update" not in text and "legend_gradient" not in text


def test_bad_fetches():
    g, other = G.Graph("a"), G.Graph("b")
    x = G.placeholder((2,), graph=g)
    y = G.placeholder((2,), graph=other, name="y")
    with pytest.raises(G.GraphError, match="belongs to graph 'b'"):
        to_dot(g, y)
    with pytest.raises(TypeError, match="cannot draw int"):
        to_dot(g, [x, 3])
    with pytest.raises(KeyError, match="no node named 'nope'"):
        to_dot(g, "nope")
    with pytest.raises(TypeError, match="expected a dlia.graph.Graph"):
        to_dot(x)


NASTY = 'a "quoted" <b>&amp; name\\'


def test_escaping_of_names():
    g = G.Graph('my "graph" <&>')
    with g.as_default():
        x = G.placeholder((None, 3), name=NASTY)
        G.constant(1.0, name="tab\there\nnewline")
        (x * 2).named("back\\slash\\")
    text = to_dot(g)
    nodes, _ = parse(text)  # the parser balances <...> and honours \" escapes: it would trip on a raw quote
    label = nodes["n0"]["label"]
    assert "<B>a &quot;quoted&quot; &lt;b&gt;&amp;amp; name\\</B>" in label
    assert nodes["n0"]["tooltip"] == 'a \\"quoted\\" <b>&amp; name\\\\: placeholder, shape (?, 3)'
    assert "tab here" in nodes["n1"]["label"] and "\t" not in text
    assert "newline" in nodes["n1"]["label"] and "\nnewline" not in text
    assert "my &quot;graph&quot; &lt;&amp;&gt;" in text.splitlines()[1]
    for a in nodes.values():  # no markup but ours inside a label
        stripped = re.sub(r"</?(B|BR|FONT)( [A-Z-]+=\"[^\"]*\")*/?>", "", a["label"])
        assert "<" not in stripped and ">" not in stripped and '"' not in stripped


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_graphviz_accepts_the_text(regression):
    g, _ = regression
    with g.as_default():
        G.placeholder((1,), name=NASTY)
        G.placeholder((1,), name="ends with backslash\\")
    r = subprocess.run(["dot", "-Tsvg"], input=to_dot(g), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and "<svg" in r.stdout
    assert "a &quot;quoted&quot; &lt;b&gt;&amp;amp; name\\" in r.stdout or \
        "a &#34;quoted&#34; &lt;b&gt;&amp;amp; name\\" in r.stdout


def test_capture_nodes_and_unknown_shapes():
    from dlia.graph.core import Node

    g = G.Graph("c")
    cap = Node(g, "capture", "capture", (3,), np.float32, requires_grad=True)
    cap.capture = dlia.tensor([1.0, 2.0, 3.0])
    p = G.placeholder(None, name="anything", graph=g)
    (cap + p).named("s")
    named = by_name(parse(to_dot(g))[0])
    assert named["capture"]["shape"] == "box3d"
    assert "<BR/>?<BR/>" not in named["anything"]["label"] and "? float32" in named["anything"]["label"]
    assert named["s"]["label"].count("?") == 1


def test_format_shape():
    assert format_shape(None) == "?"
    assert format_shape(()) == "()"
    assert format_shape((3,)) == "(3,)"
    assert format_shape((None, 1, 8, 8)) == "(?, 1, 8, 8)"
