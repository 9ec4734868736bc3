"""Helpers shared by subcommands: argument types that reject bad values with one clear line, and
finding (or downloading) the digits."""

from __future__ import annotations

import argparse
import math


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value:g}")
    return value


def picture(text: str) -> str:
    """A picture file name: .png (or no suffix), .svg, .pdf or .jpg, checked before any work."""
    from dlia.viz.plots import plot_format

    try:
        plot_format(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def seed(text: str) -> int:
    """A random seed: a non-negative integer."""
    return _int_at_least(text, 0, "a non-negative integer")


def digits_file(data: str | None, timeout: float = 10.0) -> tuple[str | None, str]:
    """``(path of digits.npz, "")`` from ``--data``, the data folders, or a download into the cache
    (announced first; ``timeout`` seconds per source), or ``(None, why not)`` when it is nowhere and
    cannot be downloaded. A ``--data`` path that does not exist raises DataNotFoundError."""
    from dlia.data import DataNotFoundError
    from dlia.data.digits import find_digits

    try:
        return str(find_digits(data, download=True, timeout=timeout, announce=lambda m: print(m, flush=True))), ""
    except DataNotFoundError as e:
        if data is not None:
            raise
        return None, str(e)
