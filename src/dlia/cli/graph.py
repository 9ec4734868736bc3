"""``dlia graph show``: draw a dataflow graph (TensorBoard's graph tab, as a Graphviz picture).

The graph comes from a user's script (run as a module in a fresh default graph, so its main block
is skipped; its global ``graph``, or the default graph, drawn down to what its global ``fetches``
need) or from a built-in model (``mlp``,
``cnn``, ``xor``) built on placeholders with a loss and a train op, so the gradient half shows too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import runpy
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dlia.cli.common import check_memory, check_output, path_name, positive_int
from dlia.cli.errors import UserError

MODELS = ("mlp", "cnn", "xor")
#: output suffix → Graphviz ``-T`` format (``None``: the DOT text itself)
FORMATS = {".dot": None, ".gv": None, ".svg": "svg", ".png": "png", ".pdf": "pdf"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("graph", help="graph mode: draw a dataflow graph (a script's, or a built-in model's)",
                       description="Dataflow graphs of dlia's graph mode (TensorFlow 1 style).")
    cmds = p.add_subparsers(dest="graph_command", metavar="ACTION", required=True)
    s = cmds.add_parser(
        "show", help="draw a graph as Graphviz DOT, SVG, PNG or PDF",
        description="Draw the graph a Python script builds at module level (its global 'graph', else the "
                    "default graph; only what its global 'fetches' need, if it defines them; the script's "
                    "`if __name__ == '__main__':` block does not run) or a built-in model with its loss, "
                    "gradients and train op. .svg/.png/.pdf need Graphviz's 'dot' program.")
    s.add_argument("source", metavar="SOURCE", type=path_name, help=f"a Python script, or a built-in model: {', '.join(MODELS)}")
    s.add_argument("-o", "--output", metavar="OUT", type=path_name,
                   help="output file: .dot, .svg, .png or .pdf (default: print the DOT text)")
    s.add_argument("--no-gradients", action="store_true", help="leave out gradient and train nodes")
    s.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="device named in the labels (default cpu)")
    s.add_argument("--batch", type=positive_int, metavar="N",
                   help="batch size of a built-in model's placeholders (default: unknown, drawn as ?)")
    s.set_defaults(run=show)


# -- built-in models ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _parameters_as_variables(model: Any) -> Iterator[list[Any]]:
    """While inside, each parameter attribute of ``model`` reads as a graph Variable of the same name
    and value, so calling the eager model on a placeholder builds variables (not baked-in constants)."""
    from dlia import graph as G

    swapped, variables = [], []
    for mod_name, mod in model.named_modules():
        for name, p in mod._parameters.items():
            if p is None:
                continue
            var = G.Variable(p, name=f"{mod_name}.{name}" if mod_name else name)
            object.__setattr__(mod, name, var)  # bypasses registration: state_dict still sees p
            swapped.append((mod, name, p))
            variables.append(var)
    try:
        yield variables
    finally:
        for mod, name, p in swapped:
            object.__setattr__(mod, name, p)


def _classifier(model: Any, input_shape: tuple[int, ...], batch: int | None) -> tuple[Any, Any]:
    import numpy

    import dlia
    from dlia import graph as G

    x = G.placeholder((batch, *input_shape), name="images")
    labels = G.placeholder((batch,), dtype=numpy.int64, name="labels")
    with _parameters_as_variables(model) as variables:
        loss = dlia.cross_entropy(model(x), labels).named("loss")
    train = G.AdamOptimizer(1e-3).minimize(loss, variables)
    return G.get_default_graph(), [loss, train]


def build_model(name: str, batch: int | None = None) -> tuple[Any, Any]:
    """The graph (in a fresh default graph) and fetches of a built-in model: placeholders for inputs
    and labels, the model, a cross-entropy loss and an Adam train op."""
    import dlia
    from dlia import graph as G
    from dlia import nn

    G.reset_default_graph()
    gen = dlia.Generator(0)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(64, 128, generator=gen), nn.ReLU(), nn.Linear(128, 10, generator=gen))
        return _classifier(model, (64,), batch)
    if name == "cnn":
        from dlia.models.cnn import DigitsCNN

        return _classifier(DigitsCNN(generator=gen), (1, 8, 8), batch)
    if name == "xor":
        model = nn.Sequential(nn.Linear(2, 2, generator=gen), nn.Sigmoid(), nn.Linear(2, 1, generator=gen))
        x = G.placeholder((batch, 2), name="x")
        t = G.placeholder((batch, 1), name="targets")
        with _parameters_as_variables(model) as variables:
            loss = dlia.binary_cross_entropy_with_logits(model(x), t).named("loss")
        train = G.AdamOptimizer(0.05).minimize(loss, variables)
        return G.get_default_graph(), [loss, train]
    raise UserError(f"unknown model {name!r} (built-in models: {', '.join(MODELS)}; or give a Python script)")


def bytes_per_example(name: str) -> int:
    """Memory one example of the batch costs while a built-in model's graph is built: shape inference
    runs each op on stand-in arrays of the full batch, so about twice the bytes of every per-example
    node (those whose leading dimension is the batch), measured on a graph built for batches of 1."""
    import math

    graph, _ = build_model(name, 1)
    return 2 * sum(math.prod(n.static_shape) * n.static_dtype.itemsize for n in graph.nodes
                   if n.static_shape and n.static_shape[0] == 1 and n.static_dtype is not None)


# -- scripts -----------------------------------------------------------------------------------------
def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


#: the script's ``__name__``: not ``"__main__"``, so its main block (training, say) is skipped
RUN_NAME = "__dlia_graph_show__"


def load_script(path: Path, quiet_stdout: bool = False) -> tuple[Any, Any]:
    """Run ``path`` (as a module, not as ``__main__``) in a fresh default graph; return (graph, fetches
    or None). ``quiet_stdout`` sends what the script prints to stderr (stdout carries the DOT text)."""
    from dlia import graph as G

    if not path.exists():
        raise UserError(f"no such file: {path}")
    if not path.is_file():
        raise UserError(f"{path} is not a file (give a Python script or one of {', '.join(MODELS)})")
    G.reset_default_graph()
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [str(path)]
    sys.path.insert(0, str(path.resolve().parent))  # as `python script.py` does: sibling imports work
    out = contextlib.redirect_stdout(sys.stderr) if quiet_stdout else contextlib.nullcontext()
    try:
        with out:
            scope = runpy.run_path(str(path), run_name=RUN_NAME)
    except SystemExit as e:
        if isinstance(e.code, str):  # sys.exit("message"): Python prints the message and exits with 1
            raise UserError(f"{path} exited with status 1: {e.code}") from None
        if e.code not in (None, 0):
            raise UserError(f"{path} exited with status {e.code}") from None
        raise UserError(f"{path} exited before it finished, so its graph is unknown") from None
    except Exception as e:  # the user's script: any error becomes one line
        raise UserError(f"{path} raised {_first_line(e)}") from None
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    fetches = scope.get("fetches")
    graph = scope.get("graph")
    if not isinstance(graph, G.Graph):
        graph = _graph_of(fetches) or G.get_default_graph()
        if not graph.nodes:  # built in a graph of its own that it did not call `graph`
            others = [v for v in scope.values() if isinstance(v, G.Graph) and v.nodes]
            if len(others) == 1:
                graph = others[0]
    if not graph.nodes:
        raise UserError(f"{path} built no graph nodes (build them at module level, not under "
                        "`if __name__ == '__main__':`, in the default graph or a global named 'graph')")
    return graph, fetches


def _graph_of(fetches: Any) -> Any:
    from dlia import graph as G

    if isinstance(fetches, G.Node):
        return fetches.graph
    items = fetches.values() if isinstance(fetches, dict) else fetches if isinstance(fetches, (list, tuple)) else ()
    for f in items:
        g = _graph_of(f)
        if g is not None:
            return g
    return None


# -- output ------------------------------------------------------------------------------------------
def _write(path: Path, data: bytes) -> None:
    from dlia.io.atomic import OutputError, atomic_write

    try:
        with atomic_write(path, "wb") as f:
            f.write(data)
    except OutputError:  # already "cannot write PATH: why"
        raise
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def render(dot_text: str, path: Path, which: Callable[[str], str | None] = shutil.which) -> Path:
    """Write ``dot_text`` to ``path``: as is for .dot/.gv, else through Graphviz ``dot -T<format>``."""
    fmt = FORMATS[path.suffix.lower()]
    if fmt is None:
        _write(path, dot_text.encode("utf-8"))
        return path
    exe = which("dot")
    if exe is None:
        missing = "Graphviz 'dot' was not found (install graphviz, e.g. apt-get install graphviz)"
        fallback = path.with_name(path.name + ".dot")
        if os.path.lexists(fallback):  # a file the user did not name is never overwritten
            raise UserError(f"{missing}; {fallback} exists already, so nothing was written "
                            f"(write the DOT text with -o NAME.dot)")
        _write(fallback, dot_text.encode("utf-8"))
        raise UserError(f"{missing}; wrote {fallback} instead")
    try:
        r = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"Graphviz 'dot' failed: {e}") from None
    if r.returncode != 0 or not r.stdout:
        detail = r.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UserError(f"Graphviz 'dot -T{fmt}' failed (exit {r.returncode})" + (f": {detail[0]}" if detail else ""))
    _write(path, r.stdout)
    return path


def show(args: argparse.Namespace) -> int:
    from dlia.graph import GraphError
    from dlia.graph.dot import nodes_to_draw, to_dot

    out = Path(args.output) if args.output else None
    if out is not None and out.suffix.lower() not in FORMATS:
        raise UserError(f"cannot write {out.name!r}: the output must end in .dot, .svg, .png or .pdf")
    source = args.source
    if source in MODELS:  # a script of that very name is ./mlp
        check_output(out, "-o")
        if args.batch is not None:
            check_memory(f"--batch {args.batch}", args.batch * bytes_per_example(source), "draw it with a smaller --batch")
        try:
            graph, fetches = build_model(source, args.batch)
        except GraphError as e:
            if source != "cnn" or args.batch is not None:
                raise UserError(str(e)) from None
            # flatten needs a known batch size in graph mode; draw the cnn for batches of 32 instead
            print("note: the cnn's flatten needs a known batch size in graph mode; drawing it for --batch 32",
                  file=sys.stderr)
            graph, fetches = build_model(source, 32)
    elif source.endswith(".py") or os.sep in source or "/" in source or Path(source).exists():
        if args.batch is not None:
            raise UserError("--batch applies to the built-in models only")
        check_output(out, "-o", inputs=[("SOURCE", source)])
        graph, fetches = load_script(Path(source), quiet_stdout=out is None)
    else:
        raise UserError(f"unknown model or script {source!r} (built-in models: {', '.join(MODELS)}; "
                        "or a path to a Python script)")
    try:
        text = to_dot(graph, fetches, device=args.device, show_gradients=not args.no_gradients)
        count = len(nodes_to_draw(graph, fetches, show_gradients=not args.no_gradients))
    except (TypeError, KeyError, GraphError) as e:
        raise UserError(f"cannot draw the fetches of {source}: {e}") from None
    if out is None:
        sys.stdout.write(text)
        return 0
    render(text, out)
    print(f"wrote {out} ({count} nodes)")
    return 0
