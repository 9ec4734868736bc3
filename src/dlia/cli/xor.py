"""``dlia xor``: the lecture's XOR story — a linear model fails, the hand-set hidden layer works,
trained networks succeed (how often?), and backprop step by step."""

from __future__ import annotations

import argparse
import os

import numpy

from dlia.cli.common import check_memory, check_output, picture, positive_float, positive_int
from dlia.cli.errors import UserError
from dlia.models import xor


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("xor", help="XOR: linear model vs hidden layer, training success rates, backprop explained",
                       description="Learning XOR (Goodfellow et al. 6.1): the MSE-optimal linear model, the lecture's "
                                   "hand-set ReLU network, a trained 2-H-1 network, and optionally success rates over "
                                   "many seeds (--compare) and a step-by-step backprop trace (--explain).")
    p.add_argument("--hidden", type=positive_int, default=2, help="hidden units H (default 2)")
    p.add_argument("--activation", choices=xor.ACTIVATIONS, default="sigmoid", help="hidden activation (default sigmoid)")
    p.add_argument("--loss", choices=xor.LOSSES, default="ce", help="mse or ce (binary cross-entropy; default)")
    p.add_argument("--steps", type=positive_int, default=2000, help="Adam steps (default 2000)")
    p.add_argument("--lr", type=positive_float, default=0.05, help="Adam learning rate (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the trained network")
    p.add_argument("--plot", metavar="PNG", type=picture,
                   help="decision boundary and hidden-space picture of the trained network")
    p.add_argument("--explain", action="store_true", help="print every node's value and gradient for one example")
    p.add_argument("--compare", action="store_true",
                   help="success rate over --seeds seeds: sigmoid vs ReLU × MSE vs CE at H = 2 and H = 4")
    p.add_argument("--seeds", type=positive_int, default=None,
                   help="seeds for --compare: --seed, --seed + 1, ... (default 100)")
    p.add_argument("--curves", metavar="PNG", type=picture, help="with --compare: plot the median training loss of each setting")
    p.set_defaults(run=run)


def _matrix(m: numpy.ndarray) -> str:
    m = numpy.asarray(m) + 0.0  # no "-0"
    return "[" + "; ".join(" ".join(f"{v:g}" for v in numpy.atleast_1d(row)) for row in numpy.atleast_2d(m)) + "]"


def explain_table() -> None:
    print("Backprop through a 2-2-1 logistic net, example x = (1, 0), target t = 1, E = ½(t - y)²")
    print(f"{'node':20} {'value':28} {'rule':30} {'by hand':28} {'engine':28}")
    for s in xor.explain():
        print(f"{s.name:20} {_matrix(numpy.round(s.value, 5)):28} {s.formula:30} "
              f"{_matrix(numpy.round(s.by_hand, 6)):28} {_matrix(numpy.round(s.engine, 6)):28}")


def compare(args: argparse.Namespace) -> None:
    print(f"success rate over {args.seeds} seeds ({args.seed}..{args.seed + args.seeds - 1}; all four points right "
          f"after {args.steps} Adam steps, lr {args.lr}):")
    print(f"{'H':>2} {'activation':10} {'loss':5} {'success':>8}")
    curves = {}
    for hidden in (2, 4):
        for act in ("sigmoid", "relu"):
            for loss in ("mse", "ce"):
                r = xor.train_many(hidden, act, loss, seeds=range(args.seed, args.seed + args.seeds), steps=args.steps,
                                   lr=args.lr)
                print(f"{hidden:>2} {act:10} {loss:5} {r.success_rate:>8.0%}")
                curves[f"H={hidden} {act} {loss}"] = numpy.median(r.curves, axis=1)
    if args.curves:
        from dlia.viz.plots import curves_plot

        path = curves_plot(curves, "XOR: median training loss over seeds", args.curves, xlabel="Adam step",
                           ylabel="loss (MSE or cross-entropy)")
        print(f"training curves written to {path}")


def run(args: argparse.Namespace) -> int:
    _check_compare_options(args)
    check_output(args.plot, "--plot")
    check_output(args.curves, "--curves")
    if args.plot and args.curves and os.path.abspath(args.plot) == os.path.abspath(args.curves):
        raise UserError(f"--plot and --curves both name {args.plot}; give two file names")
    _check_sizes(args)
    w, b = xor.linear_fit()
    print(f"linear model by MSE: w = {_matrix(numpy.round(w, 12) + 0.0)}, b = {b:g} → every prediction {b:g}")
    net = xor.lecture_network()
    print("lecture's network f(x) = wᵀ max(0, Wᵀx + c) + b with W = [1 1; 1 1], c = [0 -1], w = [1 -2], b = 0:")
    for key in ("XW", "XW+c", "relu", "output"):
        print(f"  {key:7} = {_matrix(net[key])}")
    model, history = xor.train_one(args.hidden, args.activation, args.loss, args.seed, args.steps, args.lr)
    if not numpy.isfinite(history[-1]):  # NaN weights predict nothing: do not report them as a result
        raise UserError(f"training diverged (final loss {history[-1]}); lower --lr (now {args.lr:g})")
    import dlia

    with dlia.no_grad():
        logits = model(dlia.tensor(xor.X)).numpy().ravel()
    pred = (logits > 0).astype(int)
    print(f"trained 2-{args.hidden}-1 {args.activation} net, {args.loss} loss, seed {args.seed}: final loss "
          f"{history[-1]:.4g}, predictions {pred.tolist()} ({(pred == xor.Y).mean():.0%} correct)")
    if args.plot:
        from dlia.viz.plots import xor_plot

        def predict(points: numpy.ndarray) -> numpy.ndarray:
            with dlia.no_grad():
                return dlia.sigmoid(model(dlia.tensor(points))).numpy().ravel()

        def hidden(points: numpy.ndarray) -> numpy.ndarray:
            with dlia.no_grad():
                return model[1](model[0](dlia.tensor(points))).numpy()

        out = model[2]
        path = xor_plot(predict, hidden, out.weight.numpy().ravel(), float(out.bias.numpy()[0]), xor.X, xor.Y,
                        f"2-{args.hidden}-1 {args.activation} net ({args.loss})", args.plot)
        print(f"plot written to {path}")
    if args.explain:
        print()
        explain_table()
    if args.compare:
        print()
        compare(args)
    return 0


#: measured peak bytes (tracemalloc): ``train_one`` per hidden unit and per step (the loss history);
#: ``train_many`` per seed at H = 4 and per step and seed (the loss curves and their medians);
#: ``--plot`` per hidden unit (the hidden layer on the 201×201 grid, a few float64 copies)
ONE_BYTES_PER_UNIT, ONE_BYTES_PER_STEP = 330, 32
MANY_BYTES_PER_SEED, MANY_BYTES_PER_STEP_SEED = 1600, 16
PLOT_BYTES_PER_UNIT = 201 * 201 * 8 * 4


def _check_sizes(args: argparse.Namespace) -> None:
    """Refuse --hidden, --steps and --seeds that would not fit in memory, before anything is printed."""
    one = args.hidden * (ONE_BYTES_PER_UNIT + (PLOT_BYTES_PER_UNIT if args.plot else 0)) + args.steps * ONE_BYTES_PER_STEP
    check_memory(f"--hidden {args.hidden} --steps {args.steps}", one, "use fewer hidden units or steps")
    if args.compare:
        many = args.seeds * (MANY_BYTES_PER_SEED + args.steps * MANY_BYTES_PER_STEP_SEED)
        check_memory(f"--compare --seeds {args.seeds} --steps {args.steps}", many, "use fewer seeds or steps")


def _check_compare_options(args: argparse.Namespace) -> None:
    if not args.compare:
        for flag, value in (("--curves", args.curves), ("--seeds", args.seeds)):
            if value is not None:
                raise UserError(f"{flag} belongs to --compare (add --compare, or drop {flag})")
    elif args.seeds is None:
        args.seeds = 100
