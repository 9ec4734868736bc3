"""``dlia lstsq``: least squares by the normal equations, by gradient descent (Algorithm 4.1) and
by the autodiff engine."""

from __future__ import annotations

import argparse

import numpy

from dlia.cli.common import check_memory, check_output, path_name, picture, positive_float, positive_int
from dlia.cli.errors import UserError
from dlia.models import least_squares as ls


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lstsq", help="least squares: closed form vs gradient descent vs autodiff",
                       description="Minimise ½‖Ax - b‖² three ways: normal equations, gradient descent with step ε "
                                   "until ‖AᵀAx - Aᵀb‖ ≤ δ (Goodfellow et al., Algorithm 4.1), and the autodiff "
                                   "engine with SGD. Compares all with numpy.linalg.lstsq.")
    p.add_argument("--data", metavar="CSV", type=path_name, help="a CSV file (UTF-8, numbers only): columns of A, last column b; "
                                                 "default: a random well-conditioned problem")
    p.add_argument("--rows", type=positive_int, default=None, help="rows of the random A (default 100)")
    p.add_argument("--cols", type=positive_int, default=None, help="columns of the random A (default 3)")
    p.add_argument("--eps", type=positive_float, default=None, help="step size ε (default: 1/λmax of AᵀA)")
    p.add_argument("--delta", type=positive_float, default=1e-8, help="tolerance δ (default 1e-8)")
    p.add_argument("--max-iter", type=positive_int, default=100_000, help="iteration limit (default 100000)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the generated problem")
    p.add_argument("--plot", metavar="PNG", type=picture, help="plot the objective over iterations")
    p.set_defaults(run=run)


def load_csv(path: str) -> tuple[numpy.ndarray, numpy.ndarray]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    rows = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise UserError(f"{path} is empty")
    values = []
    for n, line in rows:
        try:
            values.append([float(v) for v in line.split(",")])
        except ValueError:
            raise UserError(f"{path}, line {n}: {line.strip()[:40]!r} is not comma-separated numbers "
                            "(no header row; comment lines start with #)") from None
    widths = {len(v) for v in values}
    if len(widths) > 1:
        raise UserError(f"{path}: every row must hold the same number of comma-separated numbers "
                        f"(rows hold {' or '.join(map(str, sorted(widths)))})")
    data = numpy.array(values)
    if data.shape[1] < 2:
        raise UserError(f"{path}: need at least two columns (A's columns, then b)")
    if not numpy.isfinite(data).all():
        raise UserError(f"{path}: holds NaN or infinite values")
    return data[:, :-1], data[:, -1]


def lstsq_memory(rows: int, cols: int) -> int:
    """Peak bytes for a rows×cols problem: A in float64 about four times over (A itself, the copies
    the rank check, ``numpy.linalg.lstsq`` and the autodiff fit make), and a few cols×cols matrices."""
    return 8 * (4 * rows * cols + 4 * cols * cols)


def run(args: argparse.Namespace) -> int:
    check_output(args.plot, "--plot", inputs=[("--data", args.data)])
    if args.data is not None:  # --data "" is a file name too (none), not "no --data"
        if args.rows is not None or args.cols is not None:
            raise UserError("--rows and --cols size a random problem; with --data the file sets the size (drop them)")
        a, b = load_csv(args.data)
    else:
        rows, cols = args.rows or 100, args.cols or 3
        check_memory(f"--rows {rows} --cols {cols}", lstsq_memory(rows, cols), "use a smaller problem")
        a, b = ls.make_problem(rows, cols, seed=args.seed)
    if numpy.linalg.matrix_rank(a) < a.shape[1]:
        raise UserError(f"A ({a.shape[0]}×{a.shape[1]}) has dependent columns: the least-squares solution is not unique")
    try:
        stable = ls.max_stable_step(a)
    except ValueError as e:
        raise UserError(str(e)) from None
    eps = args.eps if args.eps is not None else stable / 2
    reference = numpy.linalg.lstsq(a, b, rcond=None)[0]
    closed = ls.normal_equations(a, b)
    print(f"A is {a.shape[0]}×{a.shape[1]}; stable steps need ε < 2/λmax = {stable:.4g}")
    print(f"numpy.linalg.lstsq    x = {numpy.array2string(reference, precision=6)}")
    print(f"normal equations      x = {numpy.array2string(closed, precision=6)}  "
          f"(max diff {numpy.abs(closed - reference).max():.2e})")
    gd = ls.gradient_descent(a, b, eps=eps, delta=args.delta, max_iter=args.max_iter)
    status = f"converged in {gd.iterations} iterations" if gd.converged else f"stopped after {gd.iterations} iterations"
    print(f"gradient descent      x = {numpy.array2string(gd.x, precision=6)}  (ε = {eps:.4g}, δ = {args.delta:g}: "
          f"{status}; max diff {numpy.abs(gd.x - reference).max():.2e})")
    steps = min(gd.iterations, 20_000) or 1
    x_ad, hist = ls.autodiff_fit(a, b, lr=eps, steps=steps)
    print(f"autodiff + SGD        x = {numpy.array2string(x_ad, precision=6)}  ({steps} steps; max diff "
          f"{numpy.abs(x_ad - reference).max():.2e})")
    if args.plot:
        from dlia.viz.plots import curves_plot

        f_star = ls.objective(a, b, reference)
        curves = {"gradient descent (Alg. 4.1)": numpy.maximum(numpy.array(gd.objective) - f_star, 1e-300),
                  "autodiff + SGD": numpy.maximum(numpy.array(hist) - f_star, 1e-300)}
        path = curves_plot(curves, f"least squares: f(x) - f(x*), ε = {eps:.3g}", args.plot, ylabel="f(x) - f(x*)")
        print(f"plot written to {path}")
    return 0
