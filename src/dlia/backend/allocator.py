"""Keep freed memory for reuse instead of handing it back to the OS after every op.

Training allocates and frees the same few-megabyte arrays at every step. glibc's malloc serves
blocks above its mmap threshold with fresh ``mmap`` pages and unmaps them on free, so each step
pays page faults to zero them again — on a small CNN that was half the run time. Raising the
threshold (to glibc's maximum, 32 MiB) and the trim threshold keeps those blocks in the heap,
which is what a framework's caching allocator achieves.

Applied once per process, on glibc only, where dlia's big arrays start: the first convolution,
the first ``backward()`` and the first graph plan call ``ensure_tuned()``; ``import dlia`` alone
changes nothing. ``release_memory()`` gives unused heap memory back on demand.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: None until dlia first tunes malloc (ensure_tuned); then whether the tuning took effect
ENABLED: bool | None = None
_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL | None:
    """glibc, loaded at the first call (find_library runs ldconfig: not something to do at import)."""
    global _LIBC
    if _LIBC is None and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.mallopt  # noqa: B018 - glibc only (musl has no mallopt)
            _LIBC = libc
        except (OSError, AttributeError):
            pass
    return _LIBC


def keep_freed_memory() -> bool:
    """Let malloc keep freed blocks of up to 32 MiB for reuse. Returns whether it applied."""
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, 512 * 1024 * 1024) == 1
    return bool(ok)


def ensure_tuned() -> None:
    """Apply keep_freed_memory() once per process: called before the first big arrays' hot loops
    (the first convolution, backward pass or graph plan), at the cost of one comparison after that."""
    global ENABLED
    if ENABLED is None:
        ENABLED = keep_freed_memory()


def release_memory() -> None:
    """Return unused heap memory to the OS (``malloc_trim``), e.g. after training."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
