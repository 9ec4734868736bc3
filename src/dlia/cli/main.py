"""``dlia`` entry point: parses the subcommand and turns user errors into one line and exit code 2."""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
import warnings
from collections.abc import Sequence

from dlia import __version__
from dlia.cli.common import seed
from dlia.cli.errors import UserError

#: subcommand name → module in dlia.cli with ``register(subparsers)`` and ``run(args)``
COMMANDS = {
    "demo": "dlia.cli.demo",
    "neuron": "dlia.cli.neuron",
    "perceptron": "dlia.cli.perceptron",
    "lstsq": "dlia.cli.lstsq",
    "xor": "dlia.cli.xor",
    "conv2": "dlia.cli.conv2",
    "filter": "dlia.cli.filter",
    "cnn": "dlia.cli.cnn",
    "char-rnn": "dlia.cli.charrnn",
    "word2vec": "dlia.cli.word2vec",
    "ngram": "dlia.cli.ngram",
    "nnlm": "dlia.cli.nnlm",
    "lm": "dlia.cli.lm",
    "seq2seq": "dlia.cli.seq2seq",
    "caption": "dlia.cli.caption",
    "graph": "dlia.cli.graph",
    "data": "dlia.cli.data",
}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong, where to look) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Version(argparse._VersionAction):
    """argparse's ``--version``, printed as one line: argparse would wrap it at the terminal's width."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        print(self.version)
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="dlia",
        description="Deep Learning in Action: every model of the lecture, runnable and inspectable.",
    )
    parser.add_argument("--version", action=_Version, version=f"dlia {__version__} ({_kernels()})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module).register(sub)
    _ensure_seed(parser)
    return parser


# each family of compiled kernels (docs/kernels.md): what --version calls it, and its loader module
KERNEL_FAMILIES = {"conv": "dlia.backend.native", "LSTM/GRU": "dlia.backend.rnn", "word2vec": "dlia.backend.w2v",
                   "matmul": "dlia.backend.blas"}


def _kernels() -> str:
    """Which code this install runs on the CPU, family by family: the compiled kernels, or NumPy
    and why (not built, or built from other sources). Loads the libraries (not at import)."""
    parts = []
    for name, module in KERNEL_FAMILIES.items():
        family = importlib.import_module(module)
        parts.append(f"compiled {name} kernels" if family.available else f"{name} on NumPy: {family.reason()}")
    return "; ".join(parts)


def _ensure_seed(parser: argparse.ArgumentParser) -> None:
    """Give every (sub)command a ``--seed``, so scripts can pass one uniformly; commands that draw
    no random numbers accept it and ignore it. Each leaf command also records its own parser, so an
    unknown argument is reported by it (``dlia conv2: error: ...``), not by ``dlia``."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if subs:
        for action in subs:
            for child in set(action.choices.values()):
                _ensure_seed(child)
        return
    parser.set_defaults(parser=parser)
    if "--seed" not in parser._option_string_actions:
        parser.add_argument("--seed", type=seed, default=0,
                            help="random seed (this command draws no random numbers; accepted for uniformity)")
    else:  # seeds are non-negative everywhere (NumPy's generators refuse the others)
        parser._option_string_actions["--seed"].type = seed


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the command's own parser says it, so the line names the command
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 0
    import numpy

    from dlia.data.paths import DataNotFoundError
    from dlia.io.atomic import FULL, OutputError
    from dlia.io.checkpoint import CheckpointError
    from dlia.models.least_squares import DivergenceError

    try:
        # commands report overflow and divergence in their own words, once; a library's warning is one line
        with numpy.errstate(all="ignore"), warnings.catch_warnings():
            warnings.showwarning = functools.partial(_warning_line, args.command)
            code = int(args.run(args) or 0)
            sys.stdout.flush()  # a full disk under `dlia ... > file` shows here, not at exit
            return code
    except (UserError, DataNotFoundError, CheckpointError, DivergenceError, OutputError) as e:
        print(f"dlia {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dlia {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `dlia ... | head` closed the pipe: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the closed pipe
    except OSError as e:
        if e.errno not in FULL:
            raise
        # the standard output (`dlia conv2 > /dev/full`, a full disk): files name themselves via OutputError
        print(f"dlia {args.command}: error: cannot write {e.filename or 'the output'}: {e.strerror}", file=sys.stderr)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the final flush cannot fail again
        return 2


def _warning_line(command: str, message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Show a warning as ``dlia <command>: warning: <first line>`` instead of Python's two lines
    (file, line number and source)."""
    text = str(message).strip().splitlines()
    print(f"dlia {command}: warning: {text[0] if text else category.__name__}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
