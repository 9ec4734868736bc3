"""Keep freed memory for reuse instead of handing it back to the OS after every op.

Training allocates and frees the same few-megabyte arrays at every step. glibc's malloc serves
blocks above its mmap threshold with fresh ``mmap`` pages and unmaps them on free, so each step
pays page faults to zero them again — on a small CNN that was half the run time. Raising the
threshold (to glibc's maximum, 32 MiB) and the trim threshold keeps those blocks in the heap,
which is what a framework's caching allocator achieves. Applied once, at import, only on glibc;
``release_memory()`` gives unused heap memory back on demand.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only (musl has no mallopt)
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def keep_freed_memory() -> bool:
    """Let malloc keep freed blocks of up to 32 MiB for reuse. Returns whether it applied."""
    if _LIBC is None:
        return False
    ok = _LIBC.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1
    ok &= _LIBC.mallopt(_M_TRIM_THRESHOLD, 512 * 1024 * 1024) == 1
    return bool(ok)


def release_memory() -> None:
    """Return unused heap memory to the OS (``malloc_trim``), e.g. after training."""
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


ENABLED = keep_freed_memory()
