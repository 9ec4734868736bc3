"""Large float32 matrix products on dlia's own threads (``_blas.c``), each part one
single-threaded call of the OpenBLAS that NumPy ships; on request, within ``own_threads()``.

Why: after a product on its threads, NumPy's OpenBLAS keeps them polling for the next one for about
0.1 s, holding the second core of a 2-core machine against dlia's compiled kernels for the rest of a
training step (``_blas.c`` has the measurements). The LSTM's whole-sequence kernels can split the
batch rows between two threads, but that only pays while nothing else polls on the second core:
a char-rnn training step (2×128 LSTM) ran at 64k chars/s with the kernels on one thread and the
products on OpenBLAS's threads, and at 88k with both on dlia's threads (torch: 82k in the same run).

Elsewhere OpenBLAS's own threads are the better choice: their polling is what makes a stream of
small products fast (waking an idle thread costs up to ~300 µs on a virtual machine), and the digits
CNN trained at 1.22x torch with them against 1.05-1.11x with its products on dlia's threads. So the
products go to dlia's threads only inside ``with own_threads():``, which ``dlia char-rnn train``
enters around each LSTM training step (``dlia.models.charrnn``); a user's own LSTM loop can do the
same. Inside the block, which path a product takes depends only on its shape, so results are as
reproducible as outside it. The block is process-wide (not per Python thread).

``matmul(a, b)`` is ``a @ b`` for 2-D arrays, through that path inside the block where it applies,
through NumPy otherwise; the ops with large products (``linear``, ``matmul``, the recurrent layers,
the im2col convolution, the attention) call it. It applies to float32 NumPy arrays (C-ordered or
transposed views) whose product has at least ``SPLIT_FROM`` multiply-adds (``VECTOR_FROM`` for a
matrix-vector product), when ``_blas.c`` was built and NumPy's OpenBLAS exposes ``cblas_sgemm`` and
``openblas_set_num_threads`` (NumPy's own wheels, 1.26 and 2.x: the library in ``numpy.libs`` or
``numpy/.dylibs``). A NumPy built on another BLAS (MKL, Accelerate) keeps plain ``a @ b``. While a
product runs there, OpenBLAS's thread count is 1 (then restored); ``OPENBLAS_NUM_THREADS`` or
``openblas_set_num_threads`` still cap the threads used, and so does ``OMP_NUM_THREADS``.
``use(False)`` turns the path off (comparisons, tests); ``available`` says whether it can be used,
``reason()`` why not.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy

from dlia.backend.device import get_array_module
from dlia.backend.loader import KernelLibrary

#: must equal dlia_blas_version() in _blas.c
_VERSION = 1

_ptr, _long, _int = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
_KERNELS = KernelLibrary(
    "dlia.backend._blas", prefix="dlia_blas", version=_VERSION, structs={},
    functions={"dlia_blas_sgemm": ([_ptr, _int, _ptr, _ptr, _int, _int, _long, _long, _long, _ptr, _long, _ptr, _long,
                                    ctypes.c_float, _ptr, _long, _int], None)})

#: products with fewer multiply-adds (M·N·K) go to NumPy as they are: OpenBLAS itself runs those
#: below 2^19 on one thread (its threshold: 65536 × 4 per thread), so they never wake its threads
SPLIT_FROM = 1 << 19
#: a matrix-vector product (M or N is 1), which NumPy hands to OpenBLAS's gemv, runs on its threads
#: from this many (2304 × 4): such products take dlia's path from here, on one thread
VECTOR_FROM = 9216
#: from this many multiply-adds a product is split between the threads (~30 µs of work on one core,
#: against the few µs of waking a second thread); below it, one call on the calling thread
THREADS_FROM = 1 << 21


class _OpenBLAS(NamedTuple):
    sgemm: int  # addresses of the C functions
    ilp64: bool
    set_threads: int
    get_threads: int
    path: str
    threads: Any  # openblas_get_num_threads as a Python callable


# (cblas_sgemm, openblas_set_num_threads, openblas_get_num_threads, 64-bit integers): NumPy 2's
# scipy-openblas64, NumPy 1.26's openblas64_, then 32-bit-integer builds of either
_SYMBOLS = [("scipy_cblas_sgemm64_", "scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_", True),
            ("cblas_sgemm64_", "openblas_set_num_threads64_", "openblas_get_num_threads64_", True),
            ("scipy_cblas_sgemm", "scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads", False),
            ("cblas_sgemm", "openblas_set_num_threads", "openblas_get_num_threads", False)]

_openblas: _OpenBLAS | None = None
_openblas_reason: str | None = None
_searched = False


def _numpy_openblas() -> tuple[_OpenBLAS | None, str | None]:
    """NumPy's bundled OpenBLAS and its three functions, or why not (``_find`` then tries a few products)."""
    root = os.path.dirname(numpy.__file__)
    paths = sorted(glob.glob(os.path.join(root, os.pardir, "numpy.libs", "*openblas*"))
                   + glob.glob(os.path.join(root, ".dylibs", "*openblas*")))
    if not paths:
        return None, "NumPy does not ship OpenBLAS here (another BLAS: its own threads are used)"
    for path in paths:
        try:
            lib = ctypes.CDLL(os.path.abspath(path))  # already loaded by NumPy: the same library
        except OSError:
            continue
        for sgemm, set_, get, ilp64 in _SYMBOLS:
            try:
                found = [ctypes.cast(getattr(lib, name), ctypes.c_void_p).value for name in (sgemm, set_, get)]
            except AttributeError:
                continue
            return _OpenBLAS(found[0], ilp64, found[1], found[2], path, ctypes.CFUNCTYPE(ctypes.c_int)(found[2])), None
    return None, f"NumPy's OpenBLAS ({os.path.basename(paths[0])}) lacks cblas_sgemm or openblas_set_num_threads"


def _self_test() -> str | None:
    """A few small products through the path against NumPy (float64): None when they agree."""
    rng = numpy.random.default_rng(0)
    for m, n, k, ta, tb, threads in [(37, 29, 23, False, False, 1), (37, 29, 23, True, True, 2),
                                     (70, 5, 9, True, False, 2), (5, 70, 9, False, True, 2)]:
        a = rng.standard_normal((k, m) if ta else (m, k), dtype=numpy.float32)
        b = rng.standard_normal((n, k) if tb else (k, n), dtype=numpy.float32)
        a, b = (a.T if ta else a), (b.T if tb else b)
        out = numpy.full((m, n), numpy.nan, numpy.float32)
        _call(a, b, out, threads)
        if not numpy.allclose(out, a.astype(numpy.float64) @ b, rtol=1e-4, atol=1e-4):
            return "a test product through NumPy's OpenBLAS gave wrong values"
    return None


def _find() -> _OpenBLAS | None:
    global _openblas, _openblas_reason, _searched
    if not _searched:
        _searched = True
        if _KERNELS.lib is None:
            _openblas_reason = _KERNELS.reason
        else:
            _openblas, _openblas_reason = _numpy_openblas()
            if _openblas is not None and (error := _self_test()) is not None:
                _openblas, _openblas_reason = None, error
    return _openblas


def __getattr__(name: str) -> Any:
    if name == "available":  # whether the split products can be used (loads the library, finds OpenBLAS)
        return _find() is not None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def reason() -> str | None:
    """Why the split products are not available (None when they are)."""
    return None if _find() is not None else _openblas_reason


_owned = 0  # how many own_threads() blocks are open


@contextlib.contextmanager
def own_threads() -> Iterator[None]:
    """Within the block, large float32 products run on dlia's threads, and the LSTM's whole-sequence
    kernels split their rows between them (the module's docstring says when that pays). Blocks nest;
    where the path is not available the block changes nothing."""
    global _owned
    _owned += 1
    try:
        yield
    finally:
        _owned -= 1


def in_use() -> bool:
    """Whether products run on dlia's threads now: inside ``own_threads()``, available and not turned
    off by ``use(False)``."""
    return _owned > 0 and _KERNELS.enabled and _find() is not None


def use(flag: bool) -> contextlib.AbstractContextManager[None]:
    """Within the block, ``matmul`` splits large products (True, where available) or leaves them to NumPy (False)."""
    return _KERNELS.use(flag)


def _layout(a: Any) -> tuple[bool, int] | None:
    """(transposed, leading dimension) of a 2-D float32 array as CBLAS takes it, or None where its
    strides fit neither (the caller copies it). The stride of an axis of length 1 is never used, so
    it may be anything (a ``v[:, None]`` view has stride 0 there)."""
    s0, s1 = a.strides
    rows, cols = a.shape
    if cols == 1:
        s1 = 4
    if rows == 1:
        s0 = 4 * cols
    if s1 == 4 and s0 % 4 == 0 and s0 >= 4 * max(cols, 1):
        return False, s0 // 4
    if s0 == 4 and s1 % 4 == 0 and s1 >= 4 * max(rows, 1):
        return True, s1 // 4
    return None


def _operand(a: Any) -> Any:
    """``a`` itself where CBLAS can read it as it is (a layout, aligned), else a C-ordered aligned copy."""
    if a.flags.aligned and _layout(a) is not None:
        return a
    return numpy.array(a, dtype=numpy.float32, order="C", copy=True)


def _call(a: Any, b: Any, out: Any, threads: int) -> None:
    """out = a @ b through ``_blas.c`` (the layouts were checked by the caller)."""
    ob = _openblas
    (ta, lda), (tb, ldb) = _layout(a), _layout(b)
    m, k = a.shape
    n = b.shape[1]
    _KERNELS.lib.dlia_blas_sgemm(ob.sgemm, int(ob.ilp64), ob.set_threads, ob.get_threads, int(ta), int(tb), m, n, k,
                                 a.ctypes.data, lda, b.ctypes.data, ldb, 0.0, out.ctypes.data, n, threads)


def _writable_result(out: Any, shape: tuple[int, int], a: Any, b: Any) -> bool:
    """Whether ``out`` can take the product as it is: a C-ordered, aligned, writable float32 NumPy
    array of the product's shape, sharing no memory with the operands (NumPy handles those cases)."""
    return (type(out) is numpy.ndarray and out.dtype == numpy.float32 and out.shape == shape and out.flags.c_contiguous
            and out.flags.aligned and out.flags.writeable and not numpy.may_share_memory(out, a)
            and not numpy.may_share_memory(out, b))


def openblas_threads() -> int:
    """NumPy's OpenBLAS thread count (``OPENBLAS_NUM_THREADS``, ``openblas_set_num_threads``), which caps
    the threads of a split product and, inside ``own_threads()``, of the LSTM's sequence kernels; a
    large number where that OpenBLAS was not found."""
    ob = _find()
    return 1 << 30 if ob is None else ob.threads()


def matmul(a: Any, b: Any, out: Any = None) -> Any:
    """``a @ b`` for 2-D arrays ``a`` (M, K) and ``b`` (K, N), into ``out`` (M, N) if given, else a new
    C-ordered array. Inside ``own_threads()``, large float32 NumPy products run on dlia's threads (the
    module's docstring says why); everything else (CuPy arrays included) is the array module's
    ``matmul(a, b, out=out)``."""
    if (not _owned or type(a) is not numpy.ndarray or type(b) is not numpy.ndarray or a.ndim != 2 or b.ndim != 2
            or a.dtype != numpy.float32 or b.dtype != numpy.float32):
        return a @ b if out is None else get_array_module(a).matmul(a, b, out=out)
    m, k = a.shape
    n = b.shape[1]
    if (m * n * k < (VECTOR_FROM if m == 1 or n == 1 else SPLIT_FROM) or k != b.shape[0] or not in_use()
            or (out is not None and not _writable_result(out, (m, n), a, b))
            or (not _openblas.ilp64 and max(a.size, b.size, m * n, *(abs(x) // 4 for x in a.strides + b.strides))
                >= 2**31)):  # sizes a CBLAS with 32-bit integers cannot take
        return a @ b if out is None else numpy.matmul(a, b, out=out)  # NumPy's results, and its errors
    a, b = _operand(a), _operand(b)
    if out is None:
        out = numpy.empty((m, n), numpy.float32)
    _call(a, b, out, _KERNELS.threads(2) if m * n * k >= THREADS_FROM else 1)
    return out
