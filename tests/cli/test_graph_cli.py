"""``dlia graph show``: DOT/SVG output for scripts and built-in models, the missing-Graphviz path,
and one-line errors with exit status 2."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def dlia(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "dlia.cli.main", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def labels(dot_text: str) -> dict[str, str]:
    """Node name → its whole DOT statement (graph nodes only, not the legend)."""
    return {m[1]: line for line in dot_text.splitlines() if (m := re.match(r"  n\d+ \[.*label=<<B>(.*?)</B>", line))}


def script(tmp_path: Path, body: str, name: str = "model.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


SCRIPT = """
    import numpy as np
    from dlia import graph as G

    x = G.placeholder((None, 3), name="inputs")
    W = G.Variable(np.ones((3, 2), np.float32), name="weights")
    y = (x @ W).named("scores")
    loss = y.sum().named("loss")
    train = G.GradientDescentOptimizer(0.1).minimize(loss)
    side = (x * 5).named("side_branch")
    print("built")
"""


def test_script_to_dot(tmp_path):
    src = script(tmp_path, SCRIPT)
    r = dlia("graph", "show", str(src), "-o", str(tmp_path / "g.dot"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["built", f"wrote {tmp_path / 'g.dot'} (12 nodes)"]
    text = (tmp_path / "g.dot").read_text(encoding="utf-8")
    nodes = labels(text)
    for name in ("inputs", "weights", "scores", "loss", "train", "side_branch", "scores_vjp"):
        assert name in nodes
    assert "shape=parallelogram" in nodes["inputs"] and "(?, 3) float32" in nodes["inputs"]
    assert "shape=cylinder" in nodes["weights"] and "<BR/>MatMul<BR/>" in nodes["scores"]
    assert "dashed" in nodes["scores_vjp"] and "dashed" not in nodes["scores"]
    assert "subgraph cluster_legend" in text
    assert not list(tmp_path.glob(".g.dot.*"))  # the atomic write left no temporary file


def test_script_fetches_prune_and_graph_global_wins(tmp_path):
    src = script(tmp_path, SCRIPT + """
    fetches = {"loss": loss}
    graph = G.get_default_graph()
    if __name__ == "__main__":
        raise SystemExit("the main block must not run")
    """)
    r = dlia("graph", "show", str(src), "--no-gradients", "--device", "gpu")  # no -o: DOT on stdout
    assert r.returncode == 0, r.stderr
    nodes = labels(r.stdout)
    assert set(nodes) == {"inputs", "weights", "scores", "loss"}
    assert all("<BR/>gpu</FONT>" in line for line in nodes.values())
    assert r.stderr == "built\n"  # what the script prints goes to stderr when stdout carries the DOT


def test_script_with_its_own_graph(tmp_path):
    src = script(tmp_path, """
        from dlia import graph as G
        g = G.Graph("mine")
        with g.as_default():
            a = G.placeholder((2,), name="a")
            b = (a + 1).named("b")
    """)
    r = dlia("graph", "show", str(src), "-o", str(tmp_path / "g.dot"))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "g.dot").read_text(encoding="utf-8")
    assert "graph 'mine'" in text and set(labels(text)) == {"a", "Const", "b"}


@pytest.mark.parametrize("example, expected", [
    ("tf_workflow.py", {"features", "targets", "W", "bias", "prediction", "loss", "train"}),
    ("xor_graph.py", {"x", "t", "W1", "b1", "W2", "b2", "hidden", "logits", "loss", "probability", "train"}),
])
def test_examples_draw(tmp_path, example, expected):
    r = dlia("graph", "show", str(EXAMPLES / example), "-o", str(tmp_path / "g.dot"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("wrote ")  # the examples' training (their main block) did not run
    nodes = labels((tmp_path / "g.dot").read_text(encoding="utf-8"))
    assert expected <= set(nodes)
    assert "doubled" not in nodes and "counter" not in nodes  # not needed by the fetches


@pytest.mark.parametrize("model, expected", [
    ("mlp", {"images": "(?, 64)", "0.weight": "(128, 64)", "2.bias": "(10,)", "loss": "()"}),
    ("xor", {"x": "(?, 2)", "targets": "(?, 1)", "0.weight": "(2, 2)", "2.weight": "(1, 2)", "loss": "()"}),
    ("cnn", {"images": "1, 8, 8)", "conv1.weight": "(16, 1, 3, 3)", "fc2.weight": "(10, 64)", "loss": "()"}),
])
def test_builtin_models_to_dot(tmp_path, model, expected):
    out = tmp_path / f"{model}.dot"
    r = dlia("graph", "show", model, "-o", str(out))
    assert r.returncode == 0, r.stderr
    nodes = labels(out.read_text(encoding="utf-8"))
    for name, shape in expected.items():
        assert shape in nodes[name], (name, nodes[name])
    weights = [n for n in nodes if n.endswith(".weight")]
    assert weights and all("shape=cylinder" in nodes[n] for n in weights)  # parameters as Variables
    assert "train" in nodes and any(n.endswith("_vjp") for n in nodes)
    gradient = [line for line in nodes.values() if "dashed" in line]
    assert len(gradient) > len(nodes) / 3
    r = dlia("graph", "show", model, "--no-gradients", "-o", str(out))
    assert r.returncode == 0, r.stderr
    forward = labels(out.read_text(encoding="utf-8"))
    assert "loss" in forward and not any("dashed" in line for line in forward.values())


def test_batch_option_fixes_the_batch_dimension(tmp_path):
    r = dlia("graph", "show", "mlp", "--batch", "32")
    assert r.returncode == 0, r.stderr
    assert "(32, 64) float32" in labels(r.stdout)["images"]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed (apt-get install graphviz)")
@pytest.mark.parametrize("source", ["xor", str(EXAMPLES / "tf_workflow.py")])
def test_svg_with_graphviz(tmp_path, source):
    out = tmp_path / "g.svg"
    r = dlia("graph", "show", source, "-o", str(out))
    assert r.returncode == 0, r.stderr
    svg = out.read_text(encoding="utf-8")
    assert "<svg" in svg and "legend" in svg and "loss" in svg
    assert not (tmp_path / "g.svg.dot").exists()


def test_missing_graphviz_writes_dot_and_fails_in_one_line(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    out = tmp_path / "g.svg"
    r = dlia("graph", "show", "xor", "-o", str(out), env=env)
    assert r.returncode == 2, r.stdout
    assert r.stderr == (f"dlia graph: error: Graphviz 'dot' was not found (install graphviz, e.g. apt-get install "
                        f"graphviz); wrote {out}.dot instead\n")
    assert not out.exists()
    assert Path(f"{out}.dot").read_text(encoding="utf-8").startswith("digraph dlia {")


@pytest.mark.parametrize("body, args, message", [
    (None, ["graph", "show", "/no/such/script.py"], "no such file: /no/such/script.py"),
    (None, ["graph", "show", "resnet"], "unknown model or script 'resnet' (built-in models: mlp, cnn, xor"),
    (None, ["graph", "show", "xor", "-o", "g.jpg"], "the output must end in .dot, .svg, .png or .pdf"),
    ("raise RuntimeError('boom\\nsecond line')\n", [], "raised RuntimeError: boom"),
    ("import dlia.nonexistent_module\n", [], "raised ModuleNotFoundError"),
    ("def f(:\n", [], "raised SyntaxError"),
    ("import sys\nsys.exit(3)\n", [], "exited with status 3"),
    ("x = 1\n", [], "built no graph nodes"),
    ("from dlia import graph as G\nx = G.placeholder((2,))\nfetches = [x, 5]\n", [], "cannot draw int"),
    ("from dlia import graph as G\nx = G.placeholder((2,))\n", ["--batch", "4"], "--batch applies to the built-in"),
    (None, ["graph", "show", "mlp", "--device", "tpu"], "invalid choice: 'tpu'"),
    (None, ["graph", "show", "mlp", "--batch", "0"], "must be a positive integer"),
])
def test_errors_are_one_line_exit_2(tmp_path, body, args, message):
    if body is not None:
        args = ["graph", "show", str(script(tmp_path, body, "bad.py")), *args]
    r = dlia(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("dlia graph")
    assert not list(tmp_path.glob("*.dot")) and not list(tmp_path.glob("*.jpg"))


def test_directory_is_not_a_script(tmp_path):
    r = dlia("graph", "show", str(tmp_path))
    assert r.returncode == 2 and "is not a file" in r.stderr and len(r.stderr.splitlines()) == 1


def test_missing_graphviz_never_overwrites_a_dot_file_nobody_named(tmp_path):  # issue #10 B6
    empty = tmp_path / "bin"
    empty.mkdir()
    out = tmp_path / "g.svg"
    Path(f"{out}.dot").write_text("my own notes")
    r = dlia("graph", "show", "xor", "-o", str(out), env={**os.environ, "PATH": str(empty)})
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert f"{out}.dot exists already, so nothing was written" in r.stderr
    assert Path(f"{out}.dot").read_text() == "my own notes" and not out.exists()


def test_a_write_error_names_the_file_once(tmp_path):  # issue #10 B8: was "cannot write X: cannot write X: ..."
    from dlia.cli.errors import UserError
    from dlia.cli.graph import render
    from dlia.io.atomic import OutputError

    (tmp_path / "f").write_text("x")
    with pytest.raises((OutputError, UserError)) as e:
        render("digraph dlia {}\n", tmp_path / "f" / "g.dot")
    assert str(e.value) == f"cannot write {tmp_path}/f/g.dot: {tmp_path}/f is a file, not a folder"
