"""Where data files are looked for: an explicit path first, then the files shipped inside the
package, then the usual folders."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


class DataNotFoundError(FileNotFoundError):
    """A data file was not found; the message says where we looked."""


class DataError(ValueError):
    """A data file that exists but cannot be used; the message names the file and what is wrong."""


#: data files installed with the package (``dlia/data/shipped/``), small enough to carry everywhere
#: so that the commands work with no network and no data folder
SHIPPED = ("digits.npz", "tinyshakespeare.txt.gz", "questions-words.txt.gz", "wordsim353.tsv.gz")


def shipped_file(name: str) -> Path | None:
    """The path of the data file ``name`` shipped inside the package (one of ``SHIPPED``), or None
    when ``name`` is not shipped or the installation lacks it (a build that dropped package data).

    Example:
        >>> shipped_file("digits.npz").name
        'digits.npz'
    """
    if name not in SHIPPED:
        return None
    # dlia.data is a regular package on disk (dlia has compiled modules, so it is never imported
    # from a zip), hence the resource is a real file with a path
    p = Path(str(resources.files("dlia.data").joinpath("shipped", name)))
    return p if p.is_file() else None


def search_dirs() -> list[Path]:
    """Folders searched for data files, in order: ./data, ../shared/data, shared/data, the download
    cache (``$DLIA_CACHE_DIR`` or ``~/.cache/dlia``, where ``dlia data get`` puts files)."""
    from dlia.data.download import cache_dir

    return [Path("data"), Path("..") / "shared" / "data", Path("shared") / "data", cache_dir()]


def find_data_file(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """Resolve a data file: ``path`` if given (a file, or a folder holding ``name``), else the copy
    shipped inside the package (``shipped_file``), else the first of ``search_dirs()`` holding it.

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
    shipped = shipped_file(name)
    if shipped is not None:
        return shipped
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
