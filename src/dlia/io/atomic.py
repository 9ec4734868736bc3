"""Atomic file writes: write a temporary file in the same folder, fsync it, then rename over the
target, so a crash or Ctrl-C never leaves a half-written file behind.

The temporary file is ``.NAME.PID.RANDOM.tmp`` (hidden, next to NAME; PID is the writing process).
Only SIGKILL or a power cut can leave one behind; the next write of NAME removes those of NAME
whose process is gone (``remove_stale_temp_files``), and never any other file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

#: errno values that mean "the bytes could not be stored" (disk full, quota, file too large, I/O error)
FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


class OutputError(OSError):
    """An output file cannot be written where it was asked for (a folder in its place, a file where
    a folder should be, no permission); the message names the path."""


def _file_in_the_way(folder: Path) -> Path:
    for p in [folder, *folder.parents]:
        if p.exists():
            return p
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: permissions of written files: what ``open()`` would give (0o666 less the umask), not mkstemp's 0o600
_MODE = 0o666 & ~_umask()


def _alive(pid: str | None) -> bool:
    """Whether process ``pid`` may still be writing its temporary file (None: a name without a PID,
    from before dlia wrote PIDs: stale)."""
    if pid is None:
        return False
    if int(pid) == os.getpid() or os.name != "posix":  # elsewhere no harmless probe exists: keep the file
        return True
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except PermissionError:  # it exists, under another user
        return True
    except (ProcessLookupError, OverflowError):  # gone, or a number no process can have
        return False
    return True


def remove_stale_temp_files(folder: str | os.PathLike[str], name_regex: str) -> list[Path]:
    """Remove the temporary files ``atomic_write`` left in ``folder`` for targets whose name matches
    ``name_regex`` (a regular expression for the whole name) when the process that wrote them is gone
    (killed mid-write). Files of running writers, and every other file, are left alone.

    Returns:
        The files removed.
    """
    pattern = re.compile(rf"\.(?:{name_regex})\.(?:(?P<pid>\d+)\.)?[a-z0-9_]{{8}}\.tmp")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no such folder (yet), or unreadable: nothing to clean
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m and entry.is_file(follow_symlinks=False) and not _alive(m.group("pid")):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it atomically replaces ``path``. Temporary
    files of ``path`` left by a killed earlier write are removed first.

    Raises:
        OutputError: the folder cannot be created or written, ``path`` is a folder, a device
            (``/dev/null``), a pipe or a socket, which the rename would replace, or the disk is
            full (the temporary file is removed then).

    Example:
        >>> with atomic_write("out.txt", "w") as f:  # doctest: +SKIP
        ...     f.write("done")
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.exists() and not target.is_file() and not target.is_dir():  # the rename would replace it
        raise OutputError(f"cannot write {target}: not a regular file (a device, pipe or socket)")
    try:
        if target.is_dir():
            raise IsADirectoryError(21, "is a folder")
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(folder, re.escape(target.name))
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    except (FileExistsError, NotADirectoryError):  # a file where a folder of the path should be
        raise OutputError(f"cannot write {target}: {_file_in_the_way(folder)} is a file, not a folder") from None
    except OSError as e:
        raise OutputError(f"cannot write {target}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), _MODE)
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in FULL:  # a full disk while writing: say which file
            raise OutputError(f"cannot write {target}: {e.strerror}") from None
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
