"""The 8×8 handwritten digits (scikit-learn's ``load_digits``: 1797 images, values 0..16)."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy

from dlia.data.paths import DataNotFoundError, find_data_file


def _cache():
    from dlia.data.download import cache_dir

    return cache_dir()


def find_digits(path: str | os.PathLike[str] | None = None, download: bool = False, timeout: float = 30.0,
                announce: Callable[[str], None] | None = None) -> Path:
    """Where ``digits.npz`` is: ``path`` (a file or its folder), else the data folders, else — with
    ``download`` — the cache after fetching it there (``announce`` is told first).

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
        path: the file, or a folder holding ``digits.npz``; default: search the data folders.
        download: when no ``path`` is given and the file is nowhere, download it into the cache
            (``dlia.data.download.fetch``) instead of failing.

    Returns:
        ``(images, labels)``: float32 images scaled to [0, 1] of shape (N, 8, 8), int64 labels.

    Raises:
        DataNotFoundError: no such file (and no download asked for, or it failed: the message
            says why). ValueError: the file is not a valid digits archive.
    """
    p = find_digits(path, download)
    try:
        with numpy.load(p, allow_pickle=False) as z:
            images, target = z["images"], z["target"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        hint = "; 'dlia data get digits --force' downloads it again" if p.parent == _cache() else ""
        from dlia.io.checkpoint import npz_problem

        raise ValueError(f"{p} is not a valid digits archive (need arrays 'images' and 'target'): {npz_problem(e)}"
                         f"{hint}") from None
    if images.ndim != 3 or len(images) != len(target):
        raise ValueError(f"{p}: expected images (N, H, W) and N targets, got {images.shape} and {target.shape}")
    return images.astype(numpy.float32) / 16.0, target.astype(numpy.int64)
