"""The graph-mode examples run as scripts and learn what they should (examples as acceptance tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str) -> str:
    r = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


def test_tf_workflow_fits_the_line():
    out = run_example("tf_workflow.py")
    assert "c = a * b + 1 = 13" in out
    assert "doubled with x = [1, 2, 3]: [2.0, 4.0, 6.0]" in out
    assert "counter * x: [10.0, 20.0]; after assigning 20: [20.0, 40.0]" in out
    m = re.search(r"learned W = \[(\S+), (\S+)\], b = (\S+) ", out)
    assert m, out
    np.testing.assert_allclose([float(v) for v in m.groups()], [2.0, -3.4, 4.2], atol=0.01)
    losses = [float(v) for v in re.findall(r"loss ([\d.]+)", out)]
    assert losses[-1] < 1e-3 < losses[0]


def test_xor_graph_gets_all_four_points_right():
    out = run_example("xor_graph.py")
    assert "all four points right" in out
    assert "predictions [0, 1, 1, 0] (targets [0, 1, 1, 0])" in out
    p = [float(v) for v in re.search(r"P\(1\) = \[(.*)\]", out)[1].split(",")]
    assert [v > 0.5 for v in p] == [False, True, True, False]


def test_examples_define_graph_and_fetches():
    import runpy

    from dlia import graph as G

    for name in ("tf_workflow.py", "xor_graph.py"):
        scope = runpy.run_path(str(EXAMPLES / name), run_name="not_main")  # builds, does not train
        assert isinstance(scope["graph"], G.Graph)
        fetches = scope["fetches"]
        assert all(isinstance(f, G.Node) and f.graph is scope["graph"] for f in fetches)
        assert any(f.kind == "train" for f in fetches)
