"""Where data files are looked for: an explicit path first, then the usual folders."""

from __future__ import annotations

import os
from pathlib import Path


class DataNotFoundError(FileNotFoundError):
    """A data file was not found; the message says where we looked."""


class DataError(ValueError):
    """A data file that exists but cannot be used; the message names the file and what is wrong."""


def search_dirs() -> list[Path]:
    """Folders searched for data files, in order: ./data, ../shared/data, shared/data, the download
    cache (``$DLIA_CACHE_DIR`` or ``~/.cache/dlia``, where ``dlia data get`` puts files)."""
    from dlia.data.download import cache_dir

    return [Path("data"), Path("..") / "shared" / "data", Path("shared") / "data", cache_dir()]


def find_data_file(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """Resolve a data file: ``path`` if given (a file, or a folder holding ``name``), else search.

    Raises:
        DataNotFoundError: naming the file and every place tried.
    """
    if path is not None:
        p = Path(path)
        if p.is_dir():
            p = p / name
        if p.is_file():
            return p
        raise DataNotFoundError(f"data file not found: {p}")
    tried = []
    for d in search_dirs():
        p = d / name
        if p.is_file():
            return p
        tried.append(str(p))
    from dlia.data.download import DATASETS

    known = next((d.name for d in DATASETS.values() if d.filename == name), None)
    raise DataNotFoundError(f"{name} not found (looked in: {', '.join(tried)}); pass its path with --data"
                            + (f" or download it with 'dlia data get {known}'" if known else ""))
