"""Compiled gate math of one LSTM or GRU time step (``_rnn.c``), when the install could build it.

A recurrent layer's step is one matrix product and then the gate math: sigmoids, tanhs and
products over a few (B, H) blocks, 10-20 small NumPy operations per step. ``_rnn.c`` does each
step's gate math, forward or backward, in one call that reads every input once and writes every
output once. The NumPy reference is ``lstm_cell_forward`` & co. in ``dlia/core/ops/rnn.py``: the
same values up to float32 rounding (the C code's σ and tanh are within 2e-7 relative error of the
exact functions); the tests compare the two.

The kernels serve float32 NumPy arrays whose per-step blocks are C-contiguous; everything else
(float64 gradient checks, CuPy arrays) runs on the NumPy path. ``use(False)`` turns them off, for
comparisons and tests; ``available`` says whether they can be used (and loads them), ``reason()``
why not.

Two ways to call them:

- ``lstm_fwd(gx, gh, c_prev, acts, c, h, tc)`` and its three siblings take arrays, check them and
  call the kernel: for tests and occasional use (~10 µs per call, mostly reading the seven arrays'
  addresses: ``a.ctypes.data`` costs ~0.9 µs).
- ``entry_points()`` gives the C functions themselves, which take raw addresses (ints):
  a loop over time steps computes ``base + s * stride`` per step and pays only ctypes' call
  (~0.9 µs with ten arguments; ~1.3 µs through a stepper, measured on the 2-core machine).
  ``dlia.core.ops.rnn``'s ``*_stepper`` functions do this for the layer ops. The LSTM op calls
  ``lstm_fwd_seq`` and ``lstm_bwd_seq`` instead where it can: every time step in one call, the
  batch rows split between the threads once (``lstm_forward_sequence`` / ``lstm_backward_sequence``).
"""

from __future__ import annotations

import contextlib
import ctypes
from typing import Any, NamedTuple

import numpy

from dlia.backend import blas
from dlia.backend.loader import KernelLibrary

#: must equal dlia_rnn_version() in _rnn.c; raise both when the C functions' arguments change
_VERSION = 4

_ptr, _int = ctypes.c_void_p, ctypes.c_int
_KERNELS = KernelLibrary(
    "dlia.backend._rnn", prefix="dlia_rnn", version=_VERSION, structs={},
    functions={"dlia_rnn_lstm_fwd": ([_int, _int] + [_ptr] * 7 + [_int], None),
               "dlia_rnn_lstm_bwd": ([_int, _int] + [_ptr] * 7 + [_int], None),
               "dlia_rnn_gru_fwd": ([_int, _int] + [_ptr] * 6 + [_int], None),
               "dlia_rnn_gru_bwd": ([_int, _int] + [_ptr] * 7 + [_int], None),
               "dlia_rnn_lstm_pack": ([_int, _ptr, _ptr], None),
               "dlia_rnn_lstm_fwd_fused": ([_int, _int] + [_ptr] * 8 + [_int], None),
               "dlia_rnn_lstm_fwd_seq": ([_int, _int, _int] + [_ptr] * 6 + [_int], None),
               "dlia_rnn_lstm_pack_bwd": ([_int, _ptr, _ptr], None),
               "dlia_rnn_lstm_bwd_seq": ([_int, _int, _int] + [_ptr] * 8 + [_int], None),
               "dlia_rnn_elementary": ([_int, ctypes.c_long, _ptr, _ptr], None)})


def __getattr__(name: str) -> Any:
    if name == "available":  # whether the compiled kernels were built and could be loaded (loads them)
        return _KERNELS.available
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def reason() -> str | None:
    """Why the compiled kernels are not available (None when they are)."""
    return _KERNELS.why_not()


def use(flag: bool) -> contextlib.AbstractContextManager[None]:
    """Within the block, the recurrent ops uses the compiled kernels (True, where available) or not (False)."""
    return _KERNELS.use(flag)


class EntryPoints(NamedTuple):
    """The C functions, each called with ``(B, H, <addresses in the order of its array form>, threads)``;
    an address is an int (``array.ctypes.data`` plus an offset), or None for gru_fwd's absent b_hh."""

    lstm_fwd: Any
    lstm_bwd: Any
    gru_fwd: Any
    gru_bwd: Any
    #: ``(B, H, gx, h_prev, packed, c_prev, acts, c, h, tc, threads)``: lstm_fwd with gh = h_prev·W_hhᵀ
    #: computed inside from ``lstm_pack(w_hh)``
    lstm_fwd_fused: Any
    #: ``(T, B, H, gx, hseq, packed, cseq, acts, tcseq, threads)``: every step of ``lstm_fwd_fused``
    #: over (T, ·, ·) sequences (hseq and cseq (T + 1, B, H), the initial state in block 0)
    lstm_fwd_seq: Any
    #: ``(T, B, H, acts, cseq, tcseq, dy, packed_bwd, dh, dc, dpre, threads)``: every step of
    #: ``lstm_bwd`` from T − 1 down to 0, each followed by dh = dpre[s]·W_hh (``lstm_pack_bwd``)
    lstm_bwd_seq: Any


def entry_points() -> EntryPoints | None:
    """The kernels taking raw addresses, or None where they are off (``use(False)``) or not built."""
    lib = _KERNELS.lib if _KERNELS.enabled else None
    if lib is None:
        return None
    return EntryPoints(lib.dlia_rnn_lstm_fwd, lib.dlia_rnn_lstm_bwd, lib.dlia_rnn_gru_fwd, lib.dlia_rnn_gru_bwd,
                       lib.dlia_rnn_lstm_fwd_fused, lib.dlia_rnn_lstm_fwd_seq, lib.dlia_rnn_lstm_bwd_seq)


def lstm_pack(w_hh: Any) -> Any:
    """W_hh (4H, H), float32, packed for ``lstm_fwd_fused``: ceil(H/16) panels of H rows × 64 floats,
    row k of panel p holding W_hh[q·H + 16p + l, k] for gates q = i, f, g, o and lanes l < 16 (0 past H)."""
    w = numpy.ascontiguousarray(w_hh, dtype=numpy.float32)
    hs = w.shape[1]
    if w.shape != (4 * hs, hs):
        raise ValueError(f"w_hh must have shape (4·H, H), got {w.shape}")
    packed = numpy.empty(((hs + 15) // 16, hs, 64), numpy.float32)
    _lib().dlia_rnn_lstm_pack(hs, w.ctypes.data, packed.ctypes.data)
    return packed


def lstm_pack_bwd(w_hh: Any) -> Any:
    """W_hh (4H, H), float32, packed for ``lstm_bwd_seq``'s products dh = dpre·W_hh: ceil(H/64)
    panels of 4H rows × 64 floats, row j of panel p holding W_hh[j, 64p .. 64p + 63] (0 past H)."""
    w = numpy.ascontiguousarray(w_hh, dtype=numpy.float32)
    hs = w.shape[1]
    if w.shape != (4 * hs, hs):
        raise ValueError(f"w_hh must have shape (4·H, H), got {w.shape}")
    packed = numpy.empty(((hs + 63) // 64, 4 * hs, 64), numpy.float32)
    _lib().dlia_rnn_lstm_pack_bwd(hs, w.ctypes.data, packed.ctypes.data)
    return packed


def applies(*arrays: Any) -> bool:
    """Whether the kernels are on and can take these arrays (None entries are skipped): NumPy,
    float32, aligned. Callers still check that each step's block is C-contiguous."""
    if not _KERNELS.enabled or _KERNELS.lib is None:
        return False
    return all(a is None or (type(a) is numpy.ndarray and a.dtype == numpy.float32 and a.flags.aligned)
               for a in arrays)


# Below this many gate elements per step (B·k·H) a call runs on one thread, which is all of
# char-rnn's sizes (batch 50 × 512 units is 102,400 LSTM gate elements). Measured on the 2-core
# machine (µs per call, best of 7, at B = 50; other processes were running, so the two-thread
# figures are whatever the second core had to spare):
#                    1 thread            2 threads (core busy / core idle)     NumPy reference
#   LSTM fwd H=128   15                  400-550 / -                           56-65
#   LSTM fwd H=512   72-120              340-600 / -                           210-350
#   GRU  fwd H=256   21                  360-630 / 11                          81-150
#   LSTM bwd H=1024  94-180              360-700 / 91                          380-690
# A call that has to wait for a busy second core (OpenBLAS between the steps, another process)
# takes hundreds of µs instead of tens; an idle one saves up to ~45 %. One thread is the safe
# choice until a step is large enough for that wait not to matter.
_SERIAL_BELOW = 1_000_000


def threads(rows: int, elements: int) -> int:
    """OpenMP threads for a step of ``rows`` batch rows and ``elements`` gate elements (B·k·H)."""
    return 1 if elements < _SERIAL_BELOW else _KERNELS.threads(rows)


# The fused LSTM step (product + gate math) splits its panels between threads from this many
# multiply-adds per step (B·H·4H; batch 50: H ≥ 200), where BLAS would use every core for the
# product alone. Measured on the 2-core machine with the other core busy (so: what a second core
# had to spare), one LSTM op's forward over 50 steps at batch 50, OpenBLAS on 2 threads:
#   H = 512   fused on 2 threads 108-115 ms, on 1 thread 139-144, BLAS product + step kernel 158-210
#   H = 128   fused on 2 threads 12-17 ms,   on 1 thread 10-13,   BLAS product + step kernel 13-14
# (one thread, core idle: H = 128 6.0 against 6.7 ms, H = 512 78 against 86 ms).
_FUSED_SERIAL_BELOW = 8_000_000


def fused_threads(rows: int, hidden: int) -> int:
    """OpenMP threads for ``lstm_fwd_fused`` on ``rows`` batch rows of ``hidden`` units."""
    if rows * hidden * 4 * hidden < _FUSED_SERIAL_BELOW:
        return 1
    return _KERNELS.threads((hidden + 15) // 16)


# The whole-sequence kernels split the batch rows between threads once per call (no synchronisation
# between steps). That pays only where the second core is free: after a large product on its own
# threads, NumPy's OpenBLAS keeps them polling for ~0.1 s, and a char-rnn training step whose products
# ran there trained at 43k chars/s with two kernel threads against 71k with one (2×128 LSTM, quiet
# 2-core machine). Inside ``dlia.backend.blas.own_threads()`` the products run on dlia's threads and
# nothing polls: two kernel threads then win (88k against 64k chars/s at 2×128, 7.3k against 5.7k at
# 2×512; torch 82k and 7.0k in the same run). So several threads only there, from this many
# multiply-adds per call (T·B·4H·H; ~20 µs of work); tests lower it to exercise the split on small shapes.
_SEQ_SERIAL_BELOW = 1 << 21


def seq_threads(steps: int, rows: int, hidden: int) -> int:
    """OpenMP threads for ``lstm_fwd_seq`` / ``lstm_bwd_seq`` over ``steps`` steps of ``rows`` rows:
    one unless the call is large enough and runs inside ``blas.own_threads()``, then one per core
    (``OMP_NUM_THREADS`` and NumPy's OpenBLAS thread count cap it, as they cap the products there)."""
    if steps * rows * 4 * hidden * hidden < _SEQ_SERIAL_BELOW or not blas.in_use():
        return 1
    # capped like the products there: OPENBLAS_NUM_THREADS=1 keeps the whole step on one thread
    return max(1, min(_KERNELS.threads(rows), blas.openblas_threads()))


# -- the array form: checked, for tests and occasional calls ---------------------------------------
def _address(name: str, a: Any, shape: tuple[int, ...], optional: bool = False) -> int | None:
    """The address of ``a`` after checking what the C code assumes of it (it cannot check anything)."""
    if a is None and optional:
        return None
    if type(a) is not numpy.ndarray or a.dtype != numpy.float32 or not a.flags.c_contiguous or not a.flags.aligned:
        raise TypeError(f"{name} must be a C-contiguous float32 NumPy array, got "
                        f"{type(a).__name__} {getattr(a, 'dtype', '')}")
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return a.ctypes.data


def _lib() -> Any:
    if _KERNELS.lib is None:
        raise RuntimeError(f"the compiled RNN kernels are not available: {_KERNELS.reason}")
    return _KERNELS.lib


def lstm_fwd(gx: Any, gh: Any, c_prev: Any, acts: Any, c: Any, h: Any, tc: Any) -> None:
    """``lstm_cell_forward`` compiled: gx, gh (B, 4H) in; acts (B, 4H), c, h, tc (B, H) out.
    ``acts`` may be ``gx`` itself (overwritten in place)."""
    b, hs = c_prev.shape
    g4, g1 = (b, 4 * hs), (b, hs)
    args = [_address("gx", gx, g4), _address("gh", gh, g4), _address("c_prev", c_prev, g1), _address("acts", acts, g4),
            _address("c", c, g1), _address("h", h, g1), _address("tc", tc, g1)]
    _lib().dlia_rnn_lstm_fwd(b, hs, *args, threads(b, 4 * b * hs))


def lstm_bwd(acts: Any, c_prev: Any, tc: Any, dy: Any, dh: Any, dc: Any, dpre: Any) -> None:
    """``lstm_cell_backward`` compiled: ``dc`` (B, H) is read and overwritten with the gradient
    reaching c_{t−1}; ``dpre`` (B, 4H) out."""
    b, hs = c_prev.shape
    g4, g1 = (b, 4 * hs), (b, hs)
    args = [_address("acts", acts, g4), _address("c_prev", c_prev, g1), _address("tc", tc, g1),
            _address("dy", dy, g1), _address("dh", dh, g1), _address("dc", dc, g1), _address("dpre", dpre, g4)]
    _lib().dlia_rnn_lstm_bwd(b, hs, *args, threads(b, 4 * b * hs))


def gru_fwd(gx: Any, gh: Any, b_hh: Any, h_prev: Any, acts: Any, h: Any) -> None:
    """``gru_cell_forward`` compiled: gx, gh (B, 3H) and b_hh (3H,) or None in; acts (B, 4H) and
    h (B, H) out. ``h`` may be ``h_prev`` itself."""
    b, hs = h_prev.shape
    args = [_address("gx", gx, (b, 3 * hs)), _address("gh", gh, (b, 3 * hs)), _address("b_hh", b_hh, (3 * hs,), True),
            _address("h_prev", h_prev, (b, hs)), _address("acts", acts, (b, 4 * hs)), _address("h", h, (b, hs))]
    _lib().dlia_rnn_gru_fwd(b, hs, *args, threads(b, 3 * b * hs))


def gru_bwd(acts: Any, h_prev: Any, dy: Any, dh: Any, dh_dir: Any, dgx: Any, dgh: Any) -> None:
    """``gru_cell_backward`` compiled: ``dh_dir`` (B, H) is read and overwritten with δh·z; dgx,
    dgh (B, 3H) out."""
    b, hs = h_prev.shape
    g1 = (b, hs)
    args = [_address("acts", acts, (b, 4 * hs)), _address("h_prev", h_prev, g1), _address("dy", dy, g1),
            _address("dh", dh, g1), _address("dh_dir", dh_dir, g1), _address("dgx", dgx, (b, 3 * hs)),
            _address("dgh", dgh, (b, 3 * hs))]
    _lib().dlia_rnn_gru_bwd(b, hs, *args, threads(b, 3 * b * hs))


def elementary(which: str, x: Any) -> Any:
    """The C code's own e^x, σ(x) or tanh(x) (``which`` = "exp", "sigmoid", "tanh") of a float32
    array, for the tests of their accuracy."""
    x = numpy.ascontiguousarray(x, dtype=numpy.float32)
    out = numpy.empty_like(x)
    _lib().dlia_rnn_elementary(("exp", "sigmoid", "tanh").index(which), x.size, x.ctypes.data, out.ctypes.data)
    return out
