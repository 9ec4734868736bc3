"""Compiled word2vec training loop (``_w2v.c``), when the install could build it.

word2vec trains by stochastic gradient descent on one tiny example at a time (a few dot products
of ~100 floats and as many row updates), each example reading rows the previous one may have
written: hundreds of millions of examples per run, which NumPy can only do with a Python step per
example or by batching them (a different algorithm). ``_w2v.c`` runs the loop of the original C
tool and of gensim's Cython, on OpenMP threads without locks (Hogwild). The NumPy reference is
``dlia.models.word2vec.train.numpy_train``: the same draws and the same updates; with ``batch=1``
it applies them one at a time and equals the kernel up to float32 rounding (the tests compare).

``train(params)`` trains a range of chunks of the run (see _w2v.c, "Work") and returns where it
stopped. ``Params`` mirrors the C struct (its size is checked when the library
loads). ``use(False)`` turns the kernel off; ``available`` says whether it can be used (and loads
it), ``reason()`` why not.
"""

from __future__ import annotations

import contextlib
import ctypes
from typing import Any

import numpy

from dlia.backend.loader import KernelLibrary

#: must equal dlia_w2v_version() in _w2v.c; raise both when the struct or the arguments change
_VERSION = 3

_f32p, _ptr = ctypes.POINTER(ctypes.c_float), ctypes.c_void_p


class Params(ctypes.Structure):
    """``w2v_params`` of _w2v.c (the comments there say what each field is)."""

    _fields_ = [("vocab", ctypes.c_int64), ("dim", ctypes.c_int32), ("window", ctypes.c_int32),
                ("negative", ctypes.c_int32), ("hs", ctypes.c_int32), ("sg", ctypes.c_int32),
                ("cbow_mean", ctypes.c_int32), ("max_code", ctypes.c_int32), ("threads", ctypes.c_int32),
                ("seed", ctypes.c_uint64), ("words", ctypes.c_int64), ("chunk_words", ctypes.c_int64),
                ("first_chunk", ctypes.c_int64), ("last_chunk", ctypes.c_int64),
                ("alpha0", ctypes.c_double), ("min_alpha", ctypes.c_double), ("run_words", ctypes.c_double),
                ("syn0", _ptr), ("syn1neg", _ptr), ("syn1", _ptr), ("ids", _ptr), ("starts", _ptr),
                ("sentences", ctypes.c_int64)] + [
        (name, _ptr) for name in ("keep", "alias_keep", "alias", "codes", "points", "code_len", "exp_table", "progress",
                                  "stop", "kept")]


_KERNELS = KernelLibrary(
    "dlia.backend._w2v", prefix="dlia_w2v", version=_VERSION, structs={"w2v_params": Params},
    functions={"dlia_w2v_train": ([ctypes.POINTER(Params)], ctypes.c_longlong),
               "dlia_w2v_mix": ([ctypes.c_longlong, _ptr, _ptr], None)})


def __getattr__(name: str) -> Any:
    if name == "available":  # whether the compiled kernel was built and could be loaded (loads it)
        return _KERNELS.available and _KERNELS.enabled
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def reason() -> str | None:
    """Why the compiled kernel is not available (None when it is)."""
    if _KERNELS.available and not _KERNELS.enabled:
        return "turned off (dlia.backend.w2v.use(False))"
    return _KERNELS.why_not()


def use(flag: bool) -> contextlib.AbstractContextManager[None]:
    """Within the block word2vec trains with the compiled kernel (True, where available) or on NumPy (False)."""
    return _KERNELS.use(flag)


def train(params: Params) -> int:
    """Train chunks [params.first_chunk, params.last_chunk) (the arrays ``params`` points at are
    updated in place) until done or ``*params.stop`` is set; returns n: chunks [first_chunk, n) are
    done. Releases the GIL (ctypes does), so another thread can read ``*params.progress`` meanwhile.

    Raises:
        RuntimeError: the kernel is not available (check ``available`` first).
        MemoryError: the kernel could not allocate its per-thread buffers (nothing was trained).
    """
    lib = _KERNELS.lib
    if lib is None or not _KERNELS.enabled:
        raise RuntimeError(f"the compiled word2vec kernel is not available: {reason()}")
    done = lib.dlia_w2v_train(ctypes.byref(params))
    if done < 0:
        raise MemoryError("the word2vec kernel could not allocate its buffers")
    return int(done)


def mix(x: numpy.ndarray) -> numpy.ndarray:
    """The kernel's hash (splitmix64's finaliser) of every uint64 in ``x``: for the tests of the
    NumPy reference's draws."""
    lib = _KERNELS.lib
    if lib is None:
        raise RuntimeError(f"the compiled word2vec kernel is not available: {reason()}")
    x = numpy.ascontiguousarray(x, dtype=numpy.uint64)
    out = numpy.empty_like(x)
    lib.dlia_w2v_mix(x.size, x.ctypes.data, out.ctypes.data)
    return out


def threads(wanted: int) -> int:
    """The OpenMP threads a run asking for ``wanted`` gets: at most one per core, and one in a
    forked child (GNU OpenMP's threads do not survive fork())."""
    _KERNELS.lib  # noqa: B018 (loads the library, which records the process it was loaded in)
    return _KERNELS.threads(max(1, wanted))
