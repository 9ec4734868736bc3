"""Text corpora: tiny-shakespeare, the classic char-rnn corpus, shipped inside the package."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

from dlia.data.paths import DataError, find_data_file, shipped_file


def find_tinyshakespeare(path: str | os.PathLike[str] | None = None) -> Path:
    """Where the tiny-shakespeare text is: ``path`` (a file, or a folder holding
    ``tinyshakespeare.txt``), else the gzipped copy shipped with dlia, else the data folders
    (``dlia.data.paths.search_dirs``).

    Raises:
        DataNotFoundError: it is nowhere; the message says where we looked.
    """
    if path is None:
        shipped = shipped_file("tinyshakespeare.txt.gz")
        if shipped is not None:
            return shipped
    return find_data_file("tinyshakespeare.txt", path)


def tinyshakespeare(path: str | os.PathLike[str] | None = None) -> str:
    """The tiny-shakespeare corpus: 1,115,394 characters (65 distinct) of Shakespeare's plays,
    karpathy/char-rnn's ``data/tinyshakespeare/input.txt``.

    Args:
        path: a copy to read instead (plain text, or gzip when its name ends in ``.gz``), or a
            folder holding ``tinyshakespeare.txt``; default: the copy shipped with dlia
            (``find_tinyshakespeare``).

    Returns:
        The whole text as one ``str`` (``\\n`` line ends, as in the original file).

    Raises:
        DataNotFoundError: no such file.
        DataError: damaged gzip data, or bytes that are not UTF-8 (the offset is named).

    Example:
        >>> text = tinyshakespeare()
        >>> len(text), text[:14]
        (1115394, 'First Citizen:')
    """
    p = find_tinyshakespeare(path)
    try:
        raw = p.read_bytes()
        if p.suffix == ".gz":
            raw = gzip.decompress(raw)
    except gzip.BadGzipFile as e:  # an OSError without strerror: not gzip at all
        raise DataError(f"{p}: not gzip data ({e})") from None
    except OSError as e:  # no permission to read it
        raise DataError(f"cannot read {p}: {e.strerror or e}") from None
    except (EOFError, zlib.error) as e:  # cut off, or a damaged deflate stream
        raise DataError(f"{p}: damaged gzip data ({e})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p} is not UTF-8 text: byte {e.start} is {raw[e.start]:#04x}") from None
