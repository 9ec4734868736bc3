"""Compiled direct-convolution kernels (``_native.c``), when the install could build them.

``pip install`` compiles ``dlia/backend/_native.c`` with the machine's C compiler into a small
extension module; where there is no compiler the build skips it and conv2d keeps its NumPy path
(im2col + OpenBLAS), which computes the same values up to rounding. The kernels are called through
ctypes, which releases the GIL during each call, and run on one OpenMP thread per core, the
threads taking images from a shared counter. The library is loaded and checked by
``loader.KernelLibrary`` at the first convolution that could use it, not at ``import dlia``.

They serve float32 convolutions on the CPU with stride 1, dilation 1, one group, padding narrower
than the kernel and inputs and outputs at least 16 pixels wide (narrower ones, like the 8×8
digits, are faster on the NumPy path). ``use(False)`` turns them off, for comparisons and tests.
``available`` says whether they can be used (and loads them), ``reason()`` why not.
"""

from __future__ import annotations

import contextlib
import ctypes
from typing import Any

import numpy

from dlia.backend.loader import KernelLibrary


class _Geometry(ctypes.Structure):
    """``conv_geom`` of _native.c (its size is checked against ``dlia_native_sizeof_conv_geom()``)."""

    _fields_ = [(name, ctypes.c_int) for name in ("N", "C", "H", "W", "K", "kh", "kw", "pt", "pl", "OH", "OW")] + [
        ("xs", ctypes.c_long * 4), ("gs", ctypes.c_long * 4)]


#: must equal dlia_native_version() in _native.c; raise both when the C functions' arguments change
_VERSION = 8

_ptr = ctypes.c_void_p
_KERNELS = KernelLibrary(
    "dlia.backend._native", prefix="dlia_native", version=_VERSION, structs={"conv_geom": _Geometry},
    functions={"dlia_conv_fwd": ([ctypes.POINTER(_Geometry)] + [_ptr] * 4 + [ctypes.c_int], ctypes.c_int),
               "dlia_conv_bwd": ([ctypes.POINTER(_Geometry)] + [_ptr] * 6 + [ctypes.c_int] * 2, ctypes.c_int),
               "dlia_embedding_bwd": ([ctypes.c_long, ctypes.c_long, _ptr, _ptr, _ptr], None),
               "dlia_adam": ([ctypes.c_long] + [_ptr] * 5 + [ctypes.c_float] * 6, None)})


def __getattr__(name: str) -> Any:
    if name == "available":  # whether the compiled kernels were built and could be loaded (loads them)
        return _KERNELS.available
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def reason() -> str | None:
    """Why the compiled kernels are not available (None when they are)."""
    return _KERNELS.why_not()


def use(flag: bool) -> contextlib.AbstractContextManager[None]:
    """Within the block, conv2d uses the compiled kernels (True, where available) or not (False)."""
    return _KERNELS.use(flag)


# Below this many multiply-adds a call runs on one thread: waking a second core (tens to hundreds
# of µs on a virtual machine whose other vCPU was idle) costs more than it saves.
_SERIAL_BELOW = 10_000_000


def _threads(parts: int, work: int) -> int:
    """OpenMP threads for a call with ``parts`` units of work and ``work`` multiply-adds."""
    return 1 if work < _SERIAL_BELOW else _KERNELS.threads(parts)


def _check(code: int) -> None:
    if code != 0:
        raise MemoryError("conv2d: the compiled kernel could not allocate its work buffer")


def applies(x: Any, w: Any, stride: tuple[int, int], padding: tuple[int, ...], dilation: tuple[int, int],
            groups: int, ow: int) -> bool:
    """Whether conv2d(x, w) with these settings runs on the compiled kernels."""
    if not _KERNELS.enabled or type(x) is not numpy.ndarray or type(w) is not numpy.ndarray or _KERNELS.lib is None:
        return False
    kh, kw = w.shape[2:]
    pt, pb, pl, pr = padding
    return (x.dtype == numpy.float32 and w.dtype == numpy.float32 and stride == (1, 1) and dilation == (1, 1)
            and groups == 1 and max(pt, pb) < kh and max(pl, pr) < kw and ow >= 16 and x.shape[3] >= 16
            and x.shape[0] > 0  # an empty batch has nothing to compute
            and _readable(x))


def _readable(a: Any) -> bool:
    """Whether the kernels can read ``a`` through element strides: aligned floats, every stride a
    whole number of them (a field of a structured array, say, is not)."""
    return a.flags.aligned and all(s % a.itemsize == 0 for s in a.strides)


# how many chunks a batch's weight gradient is split into (for the threads to share out), and the
# most memory their partial sums may take together (a 512→512 3×3 layer's gradient is 9.4 MiB)
_CHUNKS = 8
_PARTIALS_BYTES = 32 << 20


def _round16(n: int) -> int:
    return -(-n // 16) * 16


def _work(geo: _Geometry) -> int:
    """Multiply-adds of one pass (forward, input gradient or weight gradient) of the convolution."""
    return geo.N * geo.K * geo.C * geo.kh * geo.kw * geo.OH * geo.OW


def _geometry(x: Any, w: Any, padding: tuple[int, ...], oh: int, ow: int, g: Any = None) -> _Geometry:
    n, c, h, wd = x.shape
    k, _, kh, kw = w.shape
    geo = _Geometry(n, c, h, wd, k, kh, kw, padding[0], padding[2], oh, ow)
    geo.xs[:] = [s // x.itemsize for s in x.strides]
    if g is not None:
        geo.gs[:] = [s // g.itemsize for s in g.strides]  # views and broadcasts work as they are
    return geo


def forward(x: Any, w: Any, b: Any, padding: tuple[int, ...], oh: int, ow: int) -> Any:
    """conv2d's output (N, K, OH, OW)."""
    n, k = x.shape[0], w.shape[0]
    geo = _geometry(x, w, padding, oh, ow)
    wt = numpy.ascontiguousarray(w.transpose(1, 2, 3, 0))
    bias = None if b is None else numpy.ascontiguousarray(b, dtype=numpy.float32)
    out = numpy.empty((n, k, oh, ow), dtype=numpy.float32)
    _check(_KERNELS.lib.dlia_conv_fwd(ctypes.byref(geo), x.ctypes.data, wt.ctypes.data,
                              None if bias is None else bias.ctypes.data, out.ctypes.data, _threads(n, _work(geo))))
    return out


def backward(g: Any, x: Any, w: Any, padding: tuple[int, ...], want: tuple[bool, bool, bool]) -> tuple[Any, Any, Any]:
    """The gradients of conv2d with respect to the input, the weight and the bias, each one only
    where ``want`` says so (else None), from the output gradient g (N, K, OH, OW)."""
    n, c, h, wd = x.shape
    k, _, kh, kw = w.shape
    oh, ow = g.shape[2:]
    if not _readable(g):
        g = numpy.ascontiguousarray(g)
    geo = _geometry(x, w, padding, oh, ow, g)
    # The weight and bias gradients are sums over the batch. The threads take chunks of images and
    # each chunk keeps its own sums, added in chunk order: the same result whatever the threads do,
    # and on any number of cores (the chunks depend on the shapes only).
    per_chunk = 4 * c * kh * kw * _round16(k)
    chunk = max(1, -(-n // max(2, min(_CHUNKS, _PARTIALS_BYTES // per_chunk))))
    chunks = -(-n // chunk)
    gx = numpy.empty((n, c, h, wd), dtype=numpy.float32) if want[0] else None
    wtf = numpy.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 2, 3, 1)) if want[0] else None  # (K, kh, kw, C)
    gwt = numpy.zeros((chunks, c, kh, kw, _round16(k)), dtype=numpy.float32) if want[1] else None
    bsum = numpy.zeros((chunks, k), dtype=numpy.float64) if want[2] else None
    _check(_KERNELS.lib.dlia_conv_bwd(ctypes.byref(geo), x.ctypes.data, g.ctypes.data, None if wtf is None else wtf.ctypes.data,
                              None if gx is None else gx.ctypes.data, None if gwt is None else gwt.ctypes.data,
                              None if bsum is None else bsum.ctypes.data, chunk,
                              _threads(chunks, _work(geo) * (want[0] + want[1]))))
    gw = None if gwt is None else numpy.ascontiguousarray(_in_order(gwt)[..., :k].transpose(3, 0, 1, 2))
    gb = None if bsum is None else _in_order(bsum).astype(numpy.float32)
    return gx, gw, gb


def _in_order(parts: Any) -> Any:
    """The sum of ``parts[0] + parts[1] + ...`` added one after the other (NumPy's own sum over an
    axis may pair them differently for different sizes)."""
    total = parts[0].copy()
    for p in parts[1:]:
        total += p
    return total


# -- two memory-bound loops of a training step -------------------------------------------------------
def _flat32(*arrays: Any) -> bool:
    """Whether the loops can take these arrays (None skipped): C-contiguous aligned float32 NumPy arrays."""
    return all(a is None or (type(a) is numpy.ndarray and a.dtype == numpy.float32 and a.flags.c_contiguous
                             and a.flags.aligned) for a in arrays)


def embedding_backward(idx: Any, rows: Any, out: Any) -> bool:
    """``out[idx[i]] += rows[i]`` for every i in order (``_native.c``: the same sums as the NumPy path,
    in the same order), ``rows`` (n, ·) and ``out`` (V, ·) float32, ``out`` zeroed, every index valid;
    False, having done nothing, where the kernels do not apply."""
    if not _KERNELS.enabled or not _flat32(rows, out) or type(idx) is not numpy.ndarray or rows.ndim != 2 \
            or out.ndim != 2 or rows.shape[1] != out.shape[1] or idx.shape != (rows.shape[0],) or idx.dtype.kind not in "iu" \
            or _KERNELS.lib is None:
        return False
    idx = numpy.ascontiguousarray(idx, dtype=numpy.int64)
    _KERNELS.lib.dlia_embedding_bwd(rows.shape[0], rows.shape[1], idx.ctypes.data, rows.ctypes.data, out.ctypes.data)
    return True


def adam(grad: Any, m: Any, v: Any, vmax: Any, step: Any, c1: float, b2: float, c2: float, bias2: float, eps: float,
         lr_t: float) -> bool:
    """One Adam update in one pass (``dlia_adam`` in ``_native.c`` has the formulas: the same float32
    operations in the same order as ``dlia.optim.algorithms._adam_step``); False, having done nothing,
    where the kernels do not apply (not all float32 NumPy arrays of one size)."""
    if not _KERNELS.enabled or not _flat32(grad, m, v, vmax, step) or _KERNELS.lib is None:
        return False
    n = grad.size
    if any(a is not None and a.size != n for a in (m, v, vmax, step)):
        return False
    _KERNELS.lib.dlia_adam(n, grad.ctypes.data, m.ctypes.data, v.ctypes.data, None if vmax is None else vmax.ctypes.data,
                           step.ctypes.data, c1, b2, c2, bias2, eps, lr_t)
    return True
