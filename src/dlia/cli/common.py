"""Helpers shared by subcommands: argument types that reject bad values with one clear line, and
finding (or downloading) the digits."""

from __future__ import annotations

import argparse
import errno
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from dlia.cli.errors import UserError


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

    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file name, got an empty one")
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


def check_output(path: str | os.PathLike[str] | None, flag: str, folder: bool = False,
                 inputs: Iterable[tuple[str, str | os.PathLike[str] | None]] = ()) -> None:
    """Refuse, before any work starts, an output that could not be written or would destroy data.

    Every command calls this for each output path it was given, first thing, so that a bad path
    fails in one line instead of after training or downloading. Checked: a file is not expected
    where a folder is (and the other way round), a device or pipe is never replaced, the nearest
    existing folder on the path is a folder we can write in (missing folders are made later, by the
    writer, so a refused run leaves none behind), and the output is none of ``inputs`` (pairs of
    the input's flag and path; the same file under another name or through a hard link counts).

    Raises:
        UserError: naming ``flag``, the path and what is wrong.
    """
    if path is None:
        return
    try:
        _check_output(Path(path), flag, folder, inputs)
    except OSError as e:  # a name the file system refuses outright (too long, say)
        raise UserError(f"cannot write {flag} {path}: {e.strerror or e}") from None


def _check_output(p: Path, flag: str, folder: bool, inputs: Iterable[tuple[str, str | os.PathLike[str] | None]]) -> None:
    path = str(p)
    if folder:
        if p.exists() and not p.is_dir():
            raise UserError(f"cannot write {flag} {path}: it is a file, not a folder")
    elif p.is_dir():
        raise UserError(f"cannot write {flag} {path}: it is a folder; give a file name")
    elif p.exists() and not p.is_file():
        raise UserError(f"cannot write {flag} {path}: it is not a regular file (a device or pipe would be replaced)")
    for name, other in inputs:
        if other is not None and _same_file(p, Path(other)):
            same = "it is" if os.path.abspath(p) == os.path.abspath(other) else "it is the same file as"
            raise UserError(f"cannot write {flag} {path}: {same} the input {name} {other}, which writing would destroy; "
                            f"choose another name")
    nearest = next((q for q in (p if folder else p.parent, *(p if folder else p.parent).parents) if q.exists()), Path("."))
    if not nearest.is_dir():
        raise UserError(f"cannot write {flag} {path}: {nearest} is a file, not a folder")
    # permissions, read-only file systems, /proc and names too long alike: try what the atomic
    # writer will do, a temporary file named after the output, in the nearest existing folder
    try:
        fd, probe = tempfile.mkstemp(prefix=".dlia-probe." if folder else f".{p.name}.", suffix=".tmp", dir=nearest)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise UserError(f"cannot write {flag} {path}: the file name is too long") from None
        raise UserError(f"cannot write {flag} {path}: cannot create files in {nearest} ({e.strerror or e})") from None


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (also through links); False when either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
