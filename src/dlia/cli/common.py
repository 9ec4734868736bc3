"""Helpers shared by subcommands: argument types that reject bad values with one clear line, and
finding (or downloading) the digits."""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "a non-negative integer")


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a non-negative finite number, got {value:g}")
    return value


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


def path_name(text: str) -> str:
    """A file or folder name: the argparse type of every path option, so that an empty name (``--out ''``,
    a variable that was never set) is refused in one line instead of meaning the current folder,
    the standard output or the option's default."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file or folder name, got an empty one")
    return text


def picture(text: str) -> str:
    """A picture file name: .png (or no suffix), .svg, .pdf or .jpg, checked before any work."""
    from dlia.viz.plots import plot_format

    path_name(text)
    try:
        plot_format(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def seed(text: str) -> int:
    """A random seed: a non-negative integer."""
    return _int_at_least(text, 0, "a non-negative integer")


def digits_file(data: str | None, timeout: float = 10.0) -> tuple[str | None, str]:
    """``(path of digits.npz, "")`` from ``--data``, the copy shipped with dlia, the data folders, or a
    download into the cache (announced first; ``timeout`` seconds per source), or ``(None, why not)``
    when it is nowhere and cannot be downloaded. A ``--data`` path that does not exist raises DataNotFoundError."""
    from dlia.data import DataNotFoundError
    from dlia.data.digits import find_digits

    try:
        return str(find_digits(data, download=True, timeout=timeout, announce=lambda m: print(m, flush=True))), ""
    except DataNotFoundError as e:
        if data is not None:
            raise
        return None, str(e)


def load_digits_8x8(path: str):
    """``(images, labels)`` of the digits file at ``path`` (``dlia.data.load_digits``), refused in one
    ``UserError`` line when it is not a valid digits file or its images are not 8×8: the digits
    models (the CNN's dense layer, the demo's 64-input MLP, the FCN's 8×8 canvases) are built for
    8×8 images, and another size would fail with a shape error after training started."""
    from dlia.data import load_digits

    try:
        images, labels = load_digits(path)
    except ValueError as e:
        raise UserError(str(e)) from None
    if images.shape[1:] != (8, 8):
        h, w = images.shape[1:]
        raise UserError(f"{path} holds {h}×{w} images (images of shape {images.shape}); the digits models need "
                        f"8×8 images like those of 'dlia data get digits'")
    return images, labels


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


def memory_limit() -> int | None:
    """Bytes this process can use: the machine's physical memory, or the address-space limit
    (``ulimit -v``) when that is lower; None where neither can be read."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    except (ImportError, ValueError, OSError):
        pass
    return min(limits) if limits else None


def _size(nbytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes / 1e3:.3g} kB"


def check_memory(what: str, nbytes: float, advice: str = "") -> None:
    """Refuse, before anything is allocated, work that would need more memory than this process can
    have, instead of a MemoryError traceback or the kernel's OOM killer minutes later.

    Args:
        what: the option and value that imply the size, as the user typed them ("--sizes 3000").
        nbytes: an estimate of the bytes the work needs at its peak.
        advice: what to do instead ("use smaller sizes").

    Raises:
        UserError: ``nbytes`` is more than ``memory_limit()``.
    """
    limit = memory_limit()
    if limit is not None and nbytes > limit:
        raise UserError(f"{what} would need ~{_size(nbytes)} of memory; this machine has {_size(limit)}"
                        + (f"; {advice}" if advice else ""))


def read_image(path: str, bytes_per_pixel: int = 0):
    """Open and decode an image file with Pillow; every way that can fail is one ``UserError`` line.

    Pillow refuses images of more than twice ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (decompression
    bombs: a small file that decodes to gigabytes); between once and twice that limit it only warns,
    and that warning becomes one ``note:`` line on stderr instead of Python's two-line warning.
    ``bytes_per_pixel`` is what the caller's work needs per pixel: the size read from the header is
    checked against the machine's memory (``check_memory``) before any pixel is decoded.

    Returns:
        The decoded ``PIL.Image.Image``, in the file's own mode (see ``eight_bit``).
    """
    import stat
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        # a FIFO or a device would block Pillow's read forever (or never end): only regular files
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            raise UserError(f"{path} is not a regular file (a pipe or a device?), not an image")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            for w in caught:
                if issubclass(w.category, Image.DecompressionBombWarning):
                    print(f"note: {path} is very large ({im.width}×{im.height} pixels, more than Pillow's "
                          f"decompression-bomb limit of {Image.MAX_IMAGE_PIXELS}); reading it anyway", file=sys.stderr)
            check_memory(f"{path} ({im.width}×{im.height} pixels)", im.width * im.height * bytes_per_pixel)
            im.load()
            return im.copy()
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, not an image") from None
    except UnidentifiedImageError:
        raise UserError(f"{path} is not an image Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise UserError(f"{path} is too large to read safely: {str(e).rstrip('.')}") from None
    except (OSError, SyntaxError, ValueError) as e:  # unreadable, truncated or corrupt files
        raise UserError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


#: integer modes wider than 8 bits and the value that maps to 255 (the largest value of the mode)
_WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 2**31 - 1}


def eight_bit(im):
    """A 16- or 32-bit greyscale image (Pillow mode ``I;16``, ``I``) scaled to 8-bit ``L``:
    65535 → 255, as an image editor does, where Pillow's own ``convert("L")`` clips everything above
    255 to white. An ``I`` image whose values all fit in 0..65535 is a 16-bit image Pillow widened,
    and is scaled as one. Other modes are returned unchanged."""
    import numpy
    from PIL import Image

    top = _WIDE_MODES.get(im.mode)
    if top is None:
        return im
    a = numpy.asarray(im).astype(numpy.int64)
    if im.mode == "I" and a.size and 0 <= a.min() and a.max() <= 65535:
        top = 65535
    a = numpy.clip(a, 0, None)  # negative values of a signed 32-bit image are below black
    return Image.fromarray(((a * 255 + top // 2) // top).astype(numpy.uint8), mode="L")


def keep_run_settings(config: Any, given: dict[str, Any], extendable: str | None = None) -> None:
    """On ``--resume`` the run's own settings win: say which of the ``given`` flags (config field →
    value from the command line) differ from the run's ``config`` and are ignored. The ``extendable``
    field (``max_epochs``, ``epochs``: how long to go on) is taken from the command line when given."""
    ignored = [f"--{k.replace('_', '-')} {v}" for k, v in given.items() if k != extendable and v != getattr(config, k)]
    if ignored:
        print(f"resuming with the run's own settings; ignoring {', '.join(ignored)}")
    if extendable is not None and extendable in given:
        setattr(config, extendable, given[extendable])


def resume_path(given: str, prefix: str, kind: str) -> Path:
    """The checkpoint ``--resume`` names: the file given, or the latest ``<prefix>_epoch*.npz`` in a
    folder; ``kind`` names the model in the messages ("char-rnn").

    Raises:
        UserError: no such file or folder, or a folder without such checkpoints.
    """
    from dlia.io import latest_checkpoint

    p = Path(given)
    if p.is_dir():
        found = latest_checkpoint(p, prefix)
        if found is None:
            raise UserError(f"no {kind} checkpoint in {p} (files named {prefix}_epoch*.npz)")
        return found
    if not p.exists():
        raise UserError(f"no such checkpoint or folder: {p}")
    return p


def model_path(given: str, prefix: str, kind: str, command: str | None = None) -> Path:
    """The checkpoint a command reads (``sample``, ``translate``, ``describe``, ...): the file given,
    or in a run folder its best checkpoint (the latest one's record of it), else the latest.
    ``command`` (e.g. "dlia caption train"), when given, is named as the writer of such files.

    Raises:
        UserError: no such file or folder, or a folder without ``<prefix>_epoch*.npz`` checkpoints.
    """
    from dlia.io import CheckpointError, latest_checkpoint, load_checkpoint

    p = Path(given)
    if not p.is_dir():
        if not p.exists():
            raise UserError(f"no such checkpoint or folder: {p}")
        return p
    latest = latest_checkpoint(p, prefix)
    if latest is None:
        writer = f", written by '{command}'" if command else ""
        raise UserError(f"no {kind} checkpoint in {p} (files named {prefix}_epoch*.npz{writer})")
    try:
        best = load_checkpoint(latest).extra.get("best_checkpoint")
    except CheckpointError:
        return latest  # reported in full when it is read again
    if isinstance(best, str) and "/" not in best and (p / best).is_file():
        return p / best
    return latest


def run_folder(checkpoint_dir: str | None, resume_from: Path | None, prefix: str, default: str) -> Path:
    """The folder a training run writes its ``<prefix>_epoch*.npz`` checkpoints into, checked so that
    two runs' checkpoints never mix: a new run (``resume_from`` None) goes to ``checkpoint_dir`` or
    ``default``, which must hold none yet; a resumed run continues in its checkpoint's folder, or in
    ``checkpoint_dir`` if that holds none of another run.

    Raises:
        UserError: the folder holds another run's checkpoints, saying what to do instead.
    """
    from dlia.io import latest_checkpoint

    if resume_from is None:
        out = Path(checkpoint_dir or default)
        if latest_checkpoint(out, prefix) is not None:
            raise UserError(f"{out} already holds checkpoints of an earlier run: continue it with --resume {out}, "
                            f"or train into another folder with --checkpoint-dir")
        return out
    out = Path(checkpoint_dir) if checkpoint_dir else resume_from.parent
    other = latest_checkpoint(out, prefix) if out.resolve() != resume_from.parent.resolve() else None
    if other is not None:
        raise UserError(f"--checkpoint-dir {out} already holds checkpoints of another run ({other.name}); "
                        f"continue into {resume_from.parent} (leave out --checkpoint-dir) or an empty folder")
    return out


def best_file(best: str | None, out: Path, resume_from: Path | None) -> Path | None:
    """Where a finished session's best checkpoint (its file name ``best``) is: in ``out``, or, for a
    run resumed into another folder, in the resumed checkpoint's folder; None when there is none."""
    for folder in (out, resume_from.parent if resume_from is not None else out):
        if best is not None and (folder / best).is_file():
            return folder / best
    return None


def duration(seconds: float) -> str:
    """``1h02m`` or ``3m07s``: progress bars' ETA and training times."""
    seconds = max(0, int(seconds))
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"

