"""Recurrent layers as fused ops: one op per layer and direction runs every time step forward and,
in its vjp, back through time — a (batch 50, 50 steps) sequence is one node of the autodiff graph,
not thousands of small ones.

Time-major inside: ``x`` is (T, B, I). The input projection of all steps is one matrix product
``x·W_ihᵀ + b`` before the loop; each step adds one product ``h·W_hhᵀ`` and runs the gate math of
one cell, fused (``*_cell_forward``); the backward runs the cells' vjps in reverse
(``*_cell_backward``), one product ``δ·W_hh`` per step for the recurrent gradient, and after the
loop the weight gradients as three large products over all steps at once. The cell functions
below are the NumPy reference; ``dlia.backend.rnn`` holds the same math compiled (float32 on the
CPU), and tests compare the two.

Gate orders and equations are PyTorch's (so ``torch.nn.LSTM``'s weights load unchanged):
LSTM ``i, f, g, o``: c' = σ(f)∘c + σ(i)∘tanh(g), h' = σ(o)∘tanh(c');
GRU ``r, z, n``: n = tanh(W_in x + b_in + r∘(W_hn h + b_hn)), h' = (1 − z)∘n + z∘h;
RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu).

Each op returns one packed array ``(T + 1, B, H)``: rows 0..T−1 are the outputs h_t in time order,
row T is the final cell state (LSTM) or a copy of the final hidden state; the layer slices it.
"""

from __future__ import annotations

from typing import Any

import numpy

from dlia.core.function import Function, shape_error


# -- the cells: NumPy reference of the fused gate math (the compiled kernels compute the same) ------
def _sigmoid(xp: Any, z: Any, out: Any) -> Any:
    """σ(z) = ½(1 + tanh(z/2)): one transcendental and no overflow for large |z|."""
    xp.multiply(z, 0.5, out=out)
    xp.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def lstm_cell_forward(xp: Any, gx: Any, gh: Any, c_prev: Any, acts: Any, c: Any, h: Any, tc: Any) -> None:
    """One LSTM step's gate math on (B, 4H) pre-activations ``gx + gh`` (gate order i, f, g, o).

    Writes ``acts`` = [σ(i), σ(f), tanh(g), σ(o)], ``c`` = σ(f)∘c_prev + σ(i)∘tanh(g),
    ``tc`` = tanh(c) and ``h`` = σ(o)∘tanh(c) (all (B, H) but ``acts``).
    """
    hs = c.shape[1]
    z = gx + gh
    _sigmoid(xp, z[:, :2 * hs], acts[:, :2 * hs])
    xp.tanh(z[:, 2 * hs:3 * hs], out=acts[:, 2 * hs:3 * hs])
    _sigmoid(xp, z[:, 3 * hs:], acts[:, 3 * hs:])
    i, f, g, o = acts[:, :hs], acts[:, hs:2 * hs], acts[:, 2 * hs:3 * hs], acts[:, 3 * hs:]
    xp.multiply(f, c_prev, out=c)
    c += i * g
    xp.tanh(c, out=tc)
    xp.multiply(o, tc, out=h)


def lstm_cell_backward(xp: Any, acts: Any, c_prev: Any, tc: Any, dy: Any, dh: Any, dc: Any, dpre: Any) -> None:
    """The vjp of one LSTM step. The gradient reaching h_t is ``dy + dh`` (from the output at this
    step and from the next step); ``dc`` holds the gradient reaching c_t and is overwritten with
    the one reaching c_{t−1}; ``dpre`` (B, 4H) gets the gradient of the pre-activations:

        δo = dh·tanh(c)·σo(1−σo)          δc = dc + dh·σo·(1 − tanh²c)
        δi = δc·g·σi(1−σi)   δf = δc·c_prev·σf(1−σf)   δg = δc·σi·(1 − g²)   dc_prev = δc·σf
    """
    hs = tc.shape[1]
    i, f, g, o = acts[:, :hs], acts[:, hs:2 * hs], acts[:, 2 * hs:3 * hs], acts[:, 3 * hs:]
    dht = dy + dh
    dct = dc + dht * o * (1.0 - tc * tc)
    xp.multiply(dct * g, i * (1.0 - i), out=dpre[:, :hs])
    xp.multiply(dct * c_prev, f * (1.0 - f), out=dpre[:, hs:2 * hs])
    xp.multiply(dct * i, 1.0 - g * g, out=dpre[:, 2 * hs:3 * hs])
    xp.multiply(dht * tc, o * (1.0 - o), out=dpre[:, 3 * hs:])
    xp.multiply(dct, f, out=dc)


def gru_cell_forward(xp: Any, gx: Any, gh: Any, b_hh: Any, h_prev: Any, acts: Any, h: Any) -> None:
    """One GRU step (gate order r, z, n) from ``gx`` = x·W_ihᵀ + b_ih and ``gh`` = h·W_hhᵀ, both
    (B, 3H), and ``b_hh`` (3H,) or None. Writes ``acts`` (B, 4H) = [r, z, n, W_hn h + b_hn] and
    ``h`` = (1 − z)∘n + z∘h_prev, where r, z = σ(gx + gh + b_hh) and n = tanh(gx_n + r∘(gh_n + b_hn)).
    """
    hs = h.shape[1]
    if b_hh is not None:
        gh = gh + b_hh
    _sigmoid(xp, gx[:, :2 * hs] + gh[:, :2 * hs], acts[:, :2 * hs])
    r, z = acts[:, :hs], acts[:, hs:2 * hs]
    acts[:, 3 * hs:] = gh[:, 2 * hs:]
    n = acts[:, 2 * hs:3 * hs]
    xp.tanh(gx[:, 2 * hs:] + r * gh[:, 2 * hs:], out=n)
    xp.subtract(h_prev, n, out=h)  # h' = n + z∘(h_prev − n)
    h *= z
    h += n


def gru_cell_backward(xp: Any, acts: Any, h_prev: Any, dy: Any, dh: Any, dh_dir: Any, dgx: Any, dgh: Any) -> None:
    """The vjp of one GRU step. The gradient reaching h_t is ``dy + dh + dh_dir``, where ``dh_dir`` is
    the part the next step passed straight through z∘h (overwritten with this step's: δh·z); the
    caller adds ``dgh·W_hh`` for the rest. Writes ``dgx`` and ``dgh`` (B, 3H), the gradients of
    x·W_ihᵀ + b_ih and of h·W_hhᵀ + b_hh:

        δz = δh·(h_prev − n)·z(1−z)     δn = δh·(1−z)·(1−n²)     δr = δn·(W_hn h + b_hn)·r(1−r)
        dgx = [δr, δz, δn]     dgh = [δr, δz, δn∘r]
    """
    hs = h_prev.shape[1]
    r, z, n, ghn = acts[:, :hs], acts[:, hs:2 * hs], acts[:, 2 * hs:3 * hs], acts[:, 3 * hs:]
    dht = dy + dh + dh_dir
    dn = dht * (1.0 - z) * (1.0 - n * n)
    xp.multiply(dn * ghn, r * (1.0 - r), out=dgx[:, :hs])
    xp.multiply(dht * (h_prev - n), z * (1.0 - z), out=dgx[:, hs:2 * hs])
    dgx[:, 2 * hs:] = dn
    dgh[:, :2 * hs] = dgx[:, :2 * hs]
    xp.multiply(dn, r, out=dgh[:, 2 * hs:])
    xp.multiply(dht, z, out=dh_dir)
