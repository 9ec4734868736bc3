"""Loading a family of compiled kernels (one C source under ``backend/``), on first use.

Each family is one C file built by ``setup.py`` into an optional extension module, and one Python
module that declares a :class:`KernelLibrary` for it and wraps its entry points (``native.py`` for
the convolutions). The loader does what every family needs, once, the first time a kernel is asked
for — never at ``import dlia``:

- finds the built library (there is none where the install had no C compiler);
- checks ``<prefix>_version()`` against the number the Python side was written for, so a library
  left over from older sources (a failed rebuild keeps the old file) is never called;
- checks ``<prefix>_sizeof_<struct>()`` against ``ctypes.sizeof`` of each struct's ctypes mirror,
  so a field changed on one side only is refused instead of read at the wrong offsets;
- declares the argument and result types of the entry points;
- loads GNU OpenMP with a short spin (below), and gives each call its thread count.

Where any step fails the library is not used, ``available`` is False, ``reason`` says why, and the
callers take their NumPy paths, which compute the same values. docs/kernels.md shows how to add a family.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def _spin_briefly() -> Iterator[None]:
    """Have GNU OpenMP load with a short spin: idle threads poll 10,000 times (~10 µs) before they
    sleep, instead of its default 300,000. It reads the setting once, when it loads (with the first
    kernel library), so the variable is set only for that moment and the environment is left as it was.

    Some spinning keeps the second core awake between convolutions (without any, the calls right
    after an idle pause ran at single-thread speed); a long spin steals that core from NumPy and
    OpenBLAS in the rest of a training step (the any-size CNN trained 25 % slower than on plain
    NumPy). A user's own GOMP_SPINCOUNT or OMP_WAIT_POLICY wins; torch's OpenMP is a separate copy.
    """
    if "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ:
        yield
        return
    os.environ["GOMP_SPINCOUNT"] = "10000"
    try:
        yield
    finally:
        del os.environ["GOMP_SPINCOUNT"]


def cores() -> int:
    """The cores this process may use, capped by ``OMP_NUM_THREADS`` where that is set (as every
    OpenMP program, torch included, reads it)."""
    try:
        n = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        n = max(1, os.cpu_count() or 1)
    cap = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return min(n, int(cap)) if cap.isdigit() and int(cap) > 0 else n


class KernelLibrary:
    """One family of compiled kernels, loaded the first time ``lib`` (or ``available``) is read.

    Args:
        module: the extension module's name, as in setup.py (``"dlia.backend._native"``).
        prefix: the prefix of the C functions the loader calls (``<prefix>_version``, ``<prefix>_sizeof_<struct>``).
        version: the number ``<prefix>_version()`` must return; raise it in both places whenever an
            entry point's arguments or a struct change.
        structs: C struct name -> its ``ctypes.Structure`` mirror, each checked by size.
        functions: entry point name -> (argument types, result type).
    """

    def __init__(self, module: str, prefix: str, version: int, structs: dict[str, type[ctypes.Structure]],
                 functions: dict[str, tuple[list[Any], Any]]) -> None:
        self.module, self.prefix, self.version = module, prefix, version
        self.structs, self.functions = structs, functions
        self._lib: ctypes.CDLL | None = None
        self._loaded = False
        self._lock = threading.Lock()
        self._pid = 0
        #: why the library is not available (None while it is, or before the first use)
        self.reason: str | None = None
        #: whether callers may use the kernels (``use(False)`` turns them off, for comparisons and tests)
        self.enabled = True

    @property
    def lib(self) -> ctypes.CDLL | None:
        """The loaded library with its entry points declared, or None where it cannot be used."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._lib, self.reason = self._open()
                    self._pid = os.getpid()
                    self._loaded = True
        return self._lib

    @property
    def available(self) -> bool:
        """Whether the kernels were built and pass the checks (loads them on first use)."""
        return self.lib is not None

    def why_not(self) -> str | None:
        """Why the kernels are not available (None when they are; loads them on first use)."""
        return None if self.available else self.reason

    @contextlib.contextmanager
    def use(self, flag: bool) -> Iterator[None]:
        """Within the block the kernels are used (True, where available) or not (False)."""
        before, self.enabled = self.enabled, bool(flag)
        try:
            yield
        finally:
            self.enabled = before

    def _open(self) -> tuple[ctypes.CDLL | None, str | None]:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.origin or spec.origin.endswith(".py"):
            return None, f"{self.module} was not built (setup.py printed why when dlia was installed)"
        try:
            with _spin_briefly():
                lib = ctypes.CDLL(spec.origin)
        except OSError as e:
            return None, f"{spec.origin} cannot be loaded here: {e}"
        try:
            version = getattr(lib, f"{self.prefix}_version")()
            if version != self.version:
                return None, f"{spec.origin} was built from other sources (version {version}, this dlia needs " \
                             f"{self.version}); reinstall dlia to rebuild it"
            for name, mirror in self.structs.items():
                sizeof = getattr(lib, f"{self.prefix}_sizeof_{name}")
                sizeof.restype = ctypes.c_size_t
                if sizeof() != ctypes.sizeof(mirror):
                    return None, f"struct {name} is {sizeof()} bytes in {spec.origin} but {ctypes.sizeof(mirror)} " \
                                 f"in its ctypes mirror {mirror.__name__}: the two definitions differ"
            for name, (argtypes, restype) in self.functions.items():
                fn = getattr(lib, name)
                fn.argtypes, fn.restype = argtypes, restype
        except AttributeError as e:  # a function missing: built from another version of the source
            return None, f"{spec.origin} was built from other sources ({e}); reinstall dlia to rebuild it"
        return lib, None

    def threads(self, parts: int) -> int:
        """OpenMP threads for a call with ``parts`` units of work: one per core, none idle. A forked
        child runs single-threaded: GNU OpenMP's threads do not survive fork()."""
        if os.getpid() != self._pid:
            return 1
        return max(1, min(cores(), parts))
