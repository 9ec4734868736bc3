"""``dlia perceptron``: Rosenblatt's learning rule on AND, OR, XOR or two Gaussian blobs."""

from __future__ import annotations

import argparse

from dlia.cli.common import check_output, picture, positive_float, positive_int
from dlia.cli.errors import UserError
from dlia.models.neurons import Perceptron, perceptron_data


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("perceptron", help="train a perceptron; watch it fail on XOR",
                       description="Train Rosenblatt's perceptron (outputs ±1) with the perceptron rule. It converges "
                                   "on linearly separable data and never on XOR (Minsky & Papert, 1969).")
    p.add_argument("--data", default="and", choices=["and", "or", "xor", "blobs"], help="data set (default and)")
    p.add_argument("--max-epochs", type=positive_int, default=100, help="give up after this many epochs (default 100)")
    p.add_argument("--lr", type=positive_float, default=1.0, help="learning rate η (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the data and the visiting order")
    p.add_argument("--plot", metavar="PNG", type=picture, help="draw the points and the final separating line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_output(args.plot, "--plot")
    x, y = perceptron_data(args.data, seed=args.seed)
    model = Perceptron(x.shape[1], lr=args.lr)
    try:
        result = model.fit(x, y, max_epochs=args.max_epochs, seed=args.seed)
    except OverflowError as e:
        raise UserError(f"diverged: {e} (lower --lr)") from None
    acc = float((model.predict(x) == y).mean())
    w = ", ".join(f"{v:.3g}" for v in result.weights)
    if result.converged:
        print(f"converged after {result.epochs} epochs and {sum(result.mistakes)} mistakes (updates): "
              f"w = [{w}], b = {result.bias:.3g}, training accuracy {acc:.0%}")
    else:
        print(f"did not converge in {args.max_epochs} epochs ({sum(result.mistakes)} mistakes, still "
              f"{result.mistakes[-1]} in the last epoch): '{args.data}' is not linearly separable, so no line "
              f"w·x + b = 0 splits the classes (Minsky & Papert). Final training accuracy {acc:.0%}.")
    if args.plot:
        from dlia.viz.plots import perceptron_plot

        state = "converged" if result.converged else "did not converge"
        path = perceptron_plot(x, y, result.weights, result.bias,
                               f"perceptron on {args.data}: {state} ({result.epochs} epochs)", args.plot)
        print(f"plot written to {path}")
    return 0
