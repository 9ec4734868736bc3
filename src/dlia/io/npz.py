"""Reading ``.npz`` archives (checkpoints, data files) without trusting them.

``numpy.load`` allocates whatever shape an array's header declares before reading its bytes, so a
corrupt or hostile file that declares 10¹¹ elements ends in a MemoryError (or the kernel's OOM
killer). ``read_npz`` first checks every declared size against the bytes the archive really holds,
never unpickles, and turns every way a file can be broken into one ``NpzError`` with a short reason.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy
from numpy.lib import format as npy

#: deflate compresses at most about 1032:1, so a member cannot honestly expand beyond this
_MAX_DEFLATE_RATIO = 1032
_HEADERS = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}


class NpzError(ValueError):
    """A file that is not a readable ``.npz`` archive; the message says why (without the path)."""


def _declared_bytes(f, name: str) -> int:
    """Bytes of array data the ``.npy`` header at the start of ``f`` declares."""
    version = npy.read_magic(f)
    if version not in _HEADERS:
        raise NpzError(f"array {name!r} has an unsupported .npy format version {version}")
    shape, _, dtype = _HEADERS[version](f)
    return math.prod(shape) * dtype.itemsize  # Python ints: no overflow for absurd shapes


def read_npz(path: str | os.PathLike[str]) -> dict[str, numpy.ndarray]:
    """All arrays of the ``.npz`` file at ``path``, by name.

    Raises:
        OSError: the file cannot be opened (missing, a folder, no permission).
        NpzError: it is empty, not a zip archive, truncated or corrupt, holds something other than
            ``.npy`` arrays, holds pickled objects, or declares an array larger than its bytes.
    """
    p = Path(path)
    size = p.stat().st_size
    if size == 0:
        raise NpzError("empty file")
    arrays: dict[str, numpy.ndarray] = {}
    try:
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise NpzError(f"unexpected entry {info.filename!r} (not a .npy array)")
                name = info.filename[:-4]
                if info.compress_size > size or info.file_size > max(info.compress_size, 1) * _MAX_DEFLATE_RATIO:
                    raise NpzError(f"entry {name!r} declares {info.file_size} bytes, more than the file can hold")
                with zf.open(info) as f:
                    need = _declared_bytes(f, name)
                    if need > info.file_size:
                        raise NpzError(f"array {name!r} declares {need} bytes of data, but its entry holds "
                                       f"{info.file_size} bytes")
                with zf.open(info) as f:
                    arrays[name] = npy.read_array(f, allow_pickle=False)
    except NpzError:
        raise
    except zipfile.BadZipFile as e:
        raise NpzError("not an .npz archive" if "not a zip file" in str(e) else f"truncated or corrupt: {e}") from None
    except (ValueError, EOFError, KeyError, struct.error, zlib.error, zipfile.LargeZipFile, NotImplementedError) as e:
        raise NpzError(f"truncated or corrupt: {e}") from None
    return arrays
