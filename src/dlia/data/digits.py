"""The 8×8 handwritten digits (scikit-learn's ``load_digits``: 1797 images, values 0..16)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy

from dlia.data.paths import DataError, DataNotFoundError, find_data_file, shipped_file
from dlia.io.npz import NpzError, read_npz

#: fewest samples a digits file may hold: the commands hold one in five out for testing, and both
#: parts must be non-empty
MIN_SAMPLES = 5


def _cache():
    from dlia.data.download import cache_dir

    return cache_dir()


def find_digits(path: str | os.PathLike[str] | None = None, download: bool = False, timeout: float = 30.0,
                announce: Callable[[str], None] | None = None) -> Path:
    """Where ``digits.npz`` is: ``path`` (a file or its folder), else the copy shipped with dlia,
    else the data folders, else — with ``download`` — the cache after fetching it there
    (``announce`` is told first).

    Raises:
        DataNotFoundError: it is nowhere (and downloading was not asked for, or failed: the message
            says why).
    """
    try:
        return find_data_file("digits.npz", path)
    except DataNotFoundError as e:
        if path is not None or not download:
            raise
        from dlia.data.download import DownloadError, fetch, offline

        if announce is not None and not offline():
            announce("digits.npz is not here yet: downloading it (45 kB) into the cache; 'dlia data list' shows where")
        try:
            return fetch("digits", timeout=timeout)
        except DownloadError as d:
            raise DataNotFoundError(f"{e}; downloading failed: {d}") from None


def load_digits(path: str | os.PathLike[str] | None = None, download: bool = False) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Load ``digits.npz`` (arrays ``images`` uint8 (N, 8, 8) and ``target``).

    Args:
        path: the file, or a folder holding ``digits.npz``; default: the copy shipped with dlia
            (then the data folders, for an installation without it).
        download: when no ``path`` is given and the file is nowhere, download it into the cache
            (``dlia.data.download.fetch``) instead of failing.

    Returns:
        ``(images, labels)``: float32 images scaled to [0, 1] of shape (N, 8, 8), int64 labels.

    Raises:
        DataNotFoundError: no such file (and no download asked for, or it failed: the message
            says why).
        DataError: the file is not a valid digits archive, or its contents are unusable (labels
            outside the integers 0..9, pixels outside 0..16, fewer than ``MIN_SAMPLES`` samples).
    """
    p = find_digits(path, download)
    hint = ("; 'dlia data get digits --force' downloads it again" if p.parent == _cache() else
            "; reinstall dlia to restore it" if p == shipped_file("digits.npz") else "")
    try:
        arrays = read_npz(p)
        images, target = arrays["images"], arrays["target"]
    except (OSError, NpzError, KeyError) as e:
        why = f"no array {e}" if isinstance(e, KeyError) else getattr(e, "strerror", None) or str(e)
        raise DataError(f"{p} is not a valid digits archive (need arrays 'images' and 'target'): {why}{hint}") from None
    _check_digits(p, images, target, hint)
    return images.astype(numpy.float32) / 16.0, target.astype(numpy.int64)


def _check_digits(p: Path, images: numpy.ndarray, target: numpy.ndarray, hint: str) -> None:
    """Refuse what would crash or silently mislead training: labels outside 0..9, fractional labels
    (an int cast would truncate them), pixels outside 0..16, or too few samples to split."""
    if images.ndim != 3 or target.ndim != 1 or len(images) != len(target):
        raise DataError(f"{p}: expected images (N, H, W) and N targets, got {images.shape} and {target.shape}{hint}")
    if images.dtype.kind not in "uif" or target.dtype.kind not in "uif":
        raise DataError(f"{p}: images and targets must be numbers, got {images.dtype} and {target.dtype}{hint}")
    if len(target) < MIN_SAMPLES:
        raise DataError(f"{p}: holds {len(target)} sample{'s' * (len(target) != 1)}; "
                        f"training and testing need at least {MIN_SAMPLES} (one in five is held out){hint}")
    if not numpy.isfinite(images).all() or images.min() < 0 or images.max() > 16:
        raise DataError(f"{p}: pixel values must lie in 0..16 (found {images.min()}..{images.max()}){hint}")
    bad = ~numpy.isin(target, numpy.arange(10))  # also catches 2.5, NaN and -1
    if bad.any():
        i = int(numpy.argmax(bad))
        raise DataError(f"{p}: labels must be the integers 0..9, but sample {i} has label {target[i]}"
                        f"{f' (and {int(bad.sum()) - 1} more)' if bad.sum() > 1 else ''}{hint}")
