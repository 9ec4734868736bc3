"""``dlia conv2``: the lecture's Octave demo — ``conv2(A, B, shape)`` and ``xcorr2(A, B, scale)`` —
printed the way Octave prints a matrix."""

from __future__ import annotations

import argparse
import math

import numpy

from dlia.cli.errors import UserError
from dlia.signal import SCALES, SHAPES, conv2, parse_matrix, xcorr2

LECTURE_A = "1,2,3;4,5,6;7,8,9"
LECTURE_B = "1,0;0,0"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("conv2", help="Octave's conv2 and xcorr2 on small matrices",
                       description="True 2-D convolution (the kernel is flipped) with Octave's 'full', 'same' and "
                                   "'valid' shapes, or the 2-D cross-correlation xcorr2 (no flip), printed as "
                                   "Octave prints matrices. Matrices are written as in Octave: rows separated by ';', "
                                   "entries by ',' or spaces. Give A and B in order (dlia conv2 \"1 2;3 4\" \"1 0;0 0\") "
                                   "or as --a/--b; a matrix that starts with a minus sign goes after -- "
                                   "(dlia conv2 -- \"-1,2;3,4\" \"1 1\") or as --a='-1,2;3,4'.")
    p.add_argument("A", nargs="?", default=None, help="the input \"image\" A (or --a)")
    p.add_argument("B", nargs="?", default=None, help="the kernel B (or --b)")
    p.add_argument("--a", metavar="MATRIX", default=None,
                   help=f"the input \"image\" A (default: the lecture's \"{LECTURE_A}\")")
    p.add_argument("--b", metavar="MATRIX", default=None,
                   help=f"the kernel B (default: the lecture's \"{LECTURE_B}\"; with --xcorr, default A itself: "
                        f"the autocorrelation)")
    p.add_argument("--shape", choices=SHAPES, default=None, help="conv2's shape (default full)")
    p.add_argument("--xcorr", action="store_true", help="compute xcorr2(A, B) instead of conv2(A, B)")
    p.add_argument("--scale", choices=SCALES, default=None, help="with --xcorr: xcorr2's scaling (default none)")
    p.set_defaults(run=run)


def _matrix(text: str, flag: str) -> numpy.ndarray:
    try:
        return parse_matrix(text)
    except ValueError as e:
        raise UserError(f"{flag}: {e}") from None


def _digits(x: float) -> int:
    """Digits before the decimal point, as Octave's engine counts them (floor(log10(x)) + 1)."""
    return math.floor(math.log10(x)) + 1 if x > 0 else 0


def format_octave(name: str, c: numpy.ndarray) -> str:
    """``c`` as Octave displays ``name = c`` with ``format short``.

    Integer-valued matrices print without decimals in columns of width digits + 1, two spaces apart;
    others with 5 significant digits (the decimals set by the largest and smallest magnitudes). Either
    switches to e-notation when its field would be wider than 10 characters (integers of ten or more
    digits, such as 1e20, print as 1.0000e+20), as Octave does.
    Every column is printed (Octave splits wide matrices into "Columns ..." blocks).
    """
    if c.size == 0:
        return f"{name} = []({c.shape[0]}x{c.shape[1]})\n"
    finite = c[numpy.isfinite(c)]
    has_special = finite.size < c.size
    abs_finite = numpy.abs(finite)
    max_abs = float(abs_finite.max()) if finite.size else 0.0
    min_abs = float(abs_finite.min()) if finite.size else 0.0

    width = max(_digits(max_abs), _digits(min_abs), 1) + 1
    if numpy.all(finite == numpy.round(finite)) and width <= 10:
        if has_special:
            width = max(width, 4)

        def cell(v: float) -> str:
            return _special(v) if not math.isfinite(v) else f"{int(v) + 0:d}"
    else:
        prec = 5
        lds, rds = [], []
        for x in (max_abs, min_abs):
            d = _digits(x)
            if d > 0:
                lds.append(d)
                rds.append(prec - d if prec > d else prec)
            elif d < 0:
                lds.append(1)
                rds.append(prec - d if prec > d else prec)
            else:
                lds.append(1)
                rds.append(prec - 1)
        ld, rd = max(lds), max(rds)
        width = 1 + ld + 1 + rd
        if width > 10:  # too wide for fixed point: e-notation with prec - 1 decimals
            width = 1 + 1 + 1 + (prec - 1) + 4

            def cell(v: float) -> str:
                return _special(v) if not math.isfinite(v) or v == 0 else f"{v:.{prec - 1}e}"
        else:
            def cell(v: float) -> str:
                return _special(v) if not math.isfinite(v) or v == 0 else f"{v:.{rd}f}"
    lines = ["".join(f"  {cell(float(v)):>{width}}" for v in row) for row in c]
    return f"{name} =\n\n" + "\n".join(lines) + "\n\n"


def _special(v: float) -> str:
    """NaN, Inf, -Inf, and an exact zero as Octave prints it in any format: ``0``."""
    return "NaN" if math.isnan(v) else "0" if v == 0 else ("Inf" if v > 0 else "-Inf")


def _one_of(positional: str | None, option: str | None, name: str) -> tuple[str | None, str]:
    """The matrix text given as the argument or as the option, and how to name it in errors."""
    if positional is not None and option is not None:
        raise UserError(f"{name} is given twice (as an argument and as --{name.lower()}); keep one")
    return (positional, name) if positional is not None else (option, f"--{name.lower()}")


def run(args: argparse.Namespace) -> int:
    a_text, a_name = _one_of(args.A, args.a, "A")
    b_text, b_name = _one_of(args.B, args.b, "B")
    a = _matrix(a_text if a_text is not None else LECTURE_A, a_name)
    if args.xcorr:
        if args.shape is not None:
            raise UserError("--shape is conv2's; xcorr2 always returns the full correlation (drop --shape)")
        b = None if b_text is None else _matrix(b_text, b_name)
        scale = args.scale or "none"
        c = xcorr2(a, b, scale)
        call = f"xcorr2 (A{'' if b is None else ', B'}{'' if scale == 'none' else f', {scale!r}'})"
    else:
        if args.scale is not None:
            raise UserError("--scale applies to --xcorr only")
        b = _matrix(b_text if b_text is not None else LECTURE_B, b_name)
        shape = args.shape or "full"
        c = conv2(a, b, shape)
        call = f"conv2 (A, B, {shape!r})"
    print(format_octave("A", a), end="")
    if b is not None:
        print(format_octave("B", b), end="")
    print(f">> {call}")
    print(format_octave("ans", c), end="")
    return 0
