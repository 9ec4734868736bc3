"""Recurrent layers as fused ops: one op per layer and direction runs every time step forward and,
in its vjp, back through time — a (batch 50, 50 steps) sequence is one node of the autodiff graph,
not thousands of small ones.

Time-major inside: ``x`` is (T, B, I). The input projection of all steps is one matrix product
``x·W_ihᵀ + b`` before the loop; each step adds one product ``h·W_hhᵀ`` and runs the gate math of
one cell, fused (``*_cell_forward``); the backward runs the cells' vjps in reverse
(``*_cell_backward``), one product ``δ·W_hh`` per step for the recurrent gradient, and after the
loop the weight gradients as three large products over all steps at once. The cell functions
below are the NumPy reference; ``dlia.backend.rnn`` holds the same math compiled (float32 on the
CPU), and tests compare the two. Where the compiled kernels apply, the LSTM runs its whole time
loop, forward or backward with the per-step products, in one compiled call
(``lstm_forward_sequence``, ``lstm_backward_sequence``).

Gate orders and equations are PyTorch's (so ``torch.nn.LSTM``'s weights load unchanged):
LSTM ``i, f, g, o``: c' = σ(f)∘c + σ(i)∘tanh(g), h' = σ(o)∘tanh(c');
GRU ``r, z, n``: n = tanh(W_in x + b_in + r∘(W_hn h + b_hn)), h' = (1 − z)∘n + z∘h;
RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu).

Each op returns one packed array ``(T + 1, B, H)``: rows 0..T−1 are the outputs h_t in time order,
row T is the final cell state (LSTM) or a copy of the final hidden state; the layer slices it.
"""

from __future__ import annotations

from typing import Any

from dlia.backend import blas
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


def rnn_cell_backward(xp: Any, h: Any, dy: Any, dh: Any, dpre: Any, relu: bool) -> None:
    """The vjp of one plain RNN step h = act(pre): ``dpre`` = (dy + dh)·act'(pre), from h itself
    (tanh' = 1 − h², relu' = [h > 0])."""
    xp.add(dy, dh, out=dpre)
    if relu:
        dpre *= h > 0
    else:
        dpre *= 1.0 - h * h


# -- the layer ops --------------------------------------------------------------------------------
_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


class _Recurrent(Function):
    """Shared checks and bookkeeping of the three recurrent layer ops.

    Inputs: ``x`` (T, B, I), the initial state(s) (B, H), ``w_ih`` (k·H, I), ``w_hh`` (k·H, H) and,
    with a bias, ``b_ih`` and ``b_hh`` (k·H,). ``reverse=True`` runs from the last step to the
    first (the backward direction of a bidirectional layer); outputs stay in time order.

    ``projected=True``: ``x`` is already the input projection x·W_ihᵀ (T, B, k·H), without bias,
    and ``w_ih`` is left out of the inputs; the op skips its largest products (projection, dx and
    dW_ih) and its gradient for ``x`` is that of the projection. A model whose input is an
    embedding uses it: the rows of ``E·W_ihᵀ`` (V, k·H) picked by the ids are the projection of the
    embedded ids, for a V-row product instead of a (T·B)-row one (``dlia.models.charrnn``).
    """

    fresh_grads = True
    kind = ""
    n_states = 1

    def _weights(self, weights: tuple[Any, ...], projected: bool) -> tuple[Any, Any, tuple[Any, ...]]:
        """w_ih (None when projected), w_hh and the biases (empty or (b_ih, b_hh)) from the inputs after the states."""
        self.projected = projected
        w_ih, w_hh, *b = (None, *weights) if projected else weights
        return w_ih, w_hh, tuple(b)

    def _needs(self) -> tuple[bool, ...]:
        """``needs`` with a False in w_ih's place when it is not an input (projected), so that every
        input keeps one index; ``_grads`` drops that place again."""
        k = 1 + self.n_states
        return self.needs[:k] + (False,) + self.needs[k:] if self.projected else self.needs

    def _grads(self, grads: tuple[Any, ...]) -> tuple[Any, ...]:
        k = 1 + self.n_states
        return grads[:k] + grads[k + 1:] if self.projected else grads

    def _check(self, x: Any, states: tuple[Any, ...], w_ih: Any, w_hh: Any, b: tuple[Any, ...]) -> int:
        name, k = self.kind, _GATES[self.kind]
        shapes = [x.shape, *[s.shape for s in states], *([] if w_ih is None else [w_ih.shape]), w_hh.shape,
                  *[v.shape for v in b]]
        if x.ndim != 3:
            raise shape_error(name, "input must be (time, batch, features)", *shapes)
        if x.shape[0] == 0:
            raise shape_error(name, "the sequence is empty (length 0)", *shapes)
        if w_hh.ndim != 2 or w_hh.shape[0] != k * w_hh.shape[1]:
            raise shape_error(name, f"weight_hh must be ({k}·hidden, hidden)", *shapes)
        hs = w_hh.shape[1]
        if w_ih is None:
            if x.shape[2] != k * hs:
                raise shape_error(name, f"a projected input must have {k}·{hs} features", *shapes)
        elif w_ih.ndim != 2 or w_ih.shape != (k * hs, x.shape[2]):
            raise shape_error(name, f"weight_ih must be ({k}·{hs}, {x.shape[2]}) for inputs of {x.shape[2]} features",
                              *shapes)
        if any(v.shape != (k * hs,) for v in b):
            raise shape_error(name, f"biases must be ({k * hs},)", *shapes)
        if any(s.shape != (x.shape[1], hs) for s in states):
            raise shape_error(name, f"the initial state must be (batch {x.shape[1]}, hidden {hs})", *shapes)
        dtypes = {a.dtype for a in (x, *states, w_ih, w_hh, *b) if a is not None}
        if len(dtypes) > 1 or x.dtype.kind != "f":
            raise TypeError(f"{name}: input, states and weights must share one floating dtype, got "
                            f"{', '.join(sorted(str(d) for d in dtypes))}")
        return hs

    def _project(self, x: Any, w_ih: Any, b: Any) -> Any:
        """x·W_ihᵀ (+ b) for every step at once, in processing order: (T, B, k·H); a new array.
        Without ``w_ih``, ``x`` is the projection already."""
        if w_ih is None:  # a C-contiguous copy (the steppers need it), whatever x's layout
            g = self.xp.empty(x.shape, dtype=x.dtype)
            if b is None:
                g[...] = x
            else:
                self.xp.add(x, b, out=g)
            return g
        t, bsz, i = x.shape
        g = blas.matmul(x.reshape(t * bsz, i), w_ih.T).reshape(t, bsz, w_ih.shape[0])  # not -1: batch 0 is allowed
        if b is not None:
            g += b
        return g

    def _input_grads(self, dg: Any, x: Any, w_ih: Any, bias: bool) -> tuple[Any, Any, Any]:
        """dx, dW_ih, db from the gradient ``dg`` (T, B, k·H) of every step's input projection
        (without ``w_ih``, dx is ``dg`` itself, in time order)."""
        t, bsz, i = x.shape
        flat = dg.reshape(t * bsz, dg.shape[2])
        needs = self._needs()
        db = flat.sum(axis=0) if bias else None
        if w_ih is None:
            return (xp_flip(dg) if self.reverse else dg) if needs[0] else None, None, db
        dx = None
        if needs[0]:
            dx = blas.matmul(flat, w_ih).reshape(t, bsz, i)
            if self.reverse:
                dx = xp_flip(dx)
        dw = blas.matmul(flat.T, x.reshape(t * bsz, i)) if needs[1 + self.n_states] else None
        return dx, dw, db


def transposed(xp: Any, w: Any) -> Any:
    """``wᵀ`` as a new C-contiguous array, for the per-step products ``h·W_hhᵀ``.

    With B = 50 rows, BLAS (OpenBLAS) re-packs the weight at every step, and packs a C-contiguous
    ``Wᵀ`` faster than the transposed view ``w.T``: 52 instead of 71 µs per product at H = 128,
    875 instead of 1130 µs at H = 512 (one thread). NumPy's own copy of ``w.T`` walks the columns
    of ``w`` and misses the cache at every element (7.4 ms for a 2048×512 weight); copying blocks
    of 64 rows, each transposed into a 64-column band, takes 0.8 ms.
    """
    rows = w.shape[0]
    out = xp.empty((w.shape[1], rows), dtype=w.dtype)
    for r in range(0, rows, 64):
        out[:, r:r + 64] = w[r:r + 64].T
    return out


def xp_flip(a: Any) -> Any:
    """``a`` in reverse order along its first axis, as a new contiguous array."""
    return a[::-1].copy()


class LSTM(_Recurrent):
    kind, n_states = "lstm", 2

    def forward(self, x, h0, c0, *weights, reverse=False, projected=False):
        xp = self.xp
        w_ih, w_hh, bias = self._weights(weights, projected)
        b_ih, b_hh = bias or (None, None)
        hs = self._check(x, (h0, c0), w_ih, w_hh, bias)
        t, bsz = x.shape[:2]
        if reverse:
            x = xp_flip(x)
        acts = self._project(x, w_ih, None if b_ih is None else b_ih + b_hh)  # (T, B, 4H), then the gates
        # [h0, h1 .. hT, cT]: h before each step and the last, then the last cell state, so that the
        # packed output [h1 .. hT, cT] of the forward direction is a view, not a copy
        buf = xp.empty((t + 2, bsz, hs), dtype=x.dtype)
        hseq = buf[:t + 1]
        cseq = xp.empty((t + 1, bsz, hs), dtype=x.dtype)
        tc = xp.empty((t, bsz, hs), dtype=x.dtype)
        hseq[0], cseq[0] = h0, c0
        if lstm_forward_sequence(w_hh, acts, hseq, cseq, acts, tc):  # every step in one compiled call
            pass
        elif (fused := lstm_fused_forward_stepper(xp, w_hh, acts, cseq, acts, hseq, tc) if _fuse(bsz, hs) else None):
            for s in range(t):  # the product and the gate math in one compiled call per step
                fused(s)
        else:
            gh = xp.empty((bsz, 4 * hs), dtype=x.dtype)
            w_hh_t = transposed(xp, w_hh) if t > 1 else w_hh.T  # one step: the copy would cost more than it saves
            step = lstm_forward_stepper(xp, acts, gh, cseq, acts, hseq, tc)
            for s in range(t):
                blas.matmul(hseq[s], w_hh_t, out=gh)
                step(s)
        self.x, self.w_ih, self.w_hh, self.bias, self.reverse = x, w_ih, w_hh, b_ih is not None, reverse
        self.acts, self.hseq, self.cseq, self.tc = acts, hseq, cseq, tc
        buf[t + 1] = cseq[t]
        if not reverse:
            return buf[1:]
        out = xp.empty((t + 1, bsz, hs), dtype=x.dtype)
        out[:t] = hseq[:0:-1]
        out[t] = cseq[t]
        return out

    def vjp(self, g):
        xp = self.xp
        t, bsz, hs = self.tc.shape
        dy = g[t - 1::-1] if self.reverse else g[:t]
        dpre = xp.empty((t, bsz, 4 * hs), dtype=g.dtype)
        dh = xp.zeros((bsz, hs), dtype=g.dtype)
        dc = xp.array(g[t])
        acts, cseq, tc, w_hh = self.acts, self.cseq, self.tc, self.w_hh
        if not lstm_backward_sequence(w_hh, acts, cseq, tc, dy, dh, dc, dpre):  # else step by step:
            step = lstm_backward_stepper(xp, acts, cseq, tc, dy, dh, dc, dpre)
            for s in range(t - 1, -1, -1):
                step(s)
                blas.matmul(dpre[s], w_hh, out=dh)
        dx, dw_ih, db = self._input_grads(dpre, self.x, self.w_ih, self.bias)
        needs = self._needs()
        dw_hh = blas.matmul(dpre.reshape(t * bsz, dpre.shape[2]).T, self.hseq[:t].reshape(t * bsz, hs)) if needs[4] else None
        grads = (dx, dh if needs[1] else None, dc if needs[2] else None, dw_ih, dw_hh)
        if self.bias:
            grads += (db if needs[5] else None, db.copy() if needs[6] else None)
        return self._grads(grads)


class GRU(_Recurrent):
    kind = "gru"

    def forward(self, x, h0, *weights, reverse=False, projected=False):
        xp = self.xp
        w_ih, w_hh, bias = self._weights(weights, projected)
        b_ih, b_hh = bias or (None, None)
        hs = self._check(x, (h0,), w_ih, w_hh, bias)
        t, bsz = x.shape[:2]
        if reverse:
            x = xp_flip(x)
        gx = self._project(x, w_ih, b_ih)
        acts = xp.empty((t, bsz, 4 * hs), dtype=x.dtype)
        hseq = xp.empty((t + 1, bsz, hs), dtype=x.dtype)
        hseq[0] = h0
        gh = xp.empty((bsz, 3 * hs), dtype=x.dtype)
        w_hh_t = transposed(xp, w_hh) if t > 1 else w_hh.T  # one step: the copy would cost more than it saves
        step = gru_forward_stepper(xp, gx, gh, b_hh, hseq, acts)
        for s in range(t):
            blas.matmul(hseq[s], w_hh_t, out=gh)
            step(s)
        self.x, self.w_ih, self.w_hh, self.bias, self.reverse = x, w_ih, w_hh, b_ih is not None, reverse
        self.acts, self.hseq = acts, hseq
        return xp_flip(hseq[1:]) if reverse else hseq[1:]

    def vjp(self, g):
        xp = self.xp
        t, bsz, hs = g.shape
        dy = g[::-1] if self.reverse else g
        dgx = xp.empty((t, bsz, 3 * hs), dtype=g.dtype)
        dgh = xp.empty((t, bsz, 3 * hs), dtype=g.dtype)
        dh = xp.zeros((bsz, hs), dtype=g.dtype)
        dh_dir = xp.zeros((bsz, hs), dtype=g.dtype)
        acts, hseq, w_hh = self.acts, self.hseq, self.w_hh
        step = gru_backward_stepper(xp, acts, hseq, dy, dh, dh_dir, dgx, dgh)
        for s in range(t - 1, -1, -1):
            step(s)
            blas.matmul(dgh[s], w_hh, out=dh)
        dh += dh_dir
        dx, dw_ih, db_ih = self._input_grads(dgx, self.x, self.w_ih, self.bias)
        needs = self._needs()
        flat = dgh.reshape(t * bsz, dgh.shape[2])
        dw_hh = blas.matmul(flat.T, hseq[:t].reshape(t * bsz, hs)) if needs[3] else None
        grads = (dx, dh if needs[1] else None, dw_ih, dw_hh)
        if self.bias:
            grads += (db_ih if needs[4] else None, flat.sum(axis=0) if needs[5] else None)
        return self._grads(grads)


class RNN(_Recurrent):
    kind = "rnn_tanh"

    def forward(self, x, h0, *weights, reverse=False, relu=False, projected=False):
        xp = self.xp
        self.kind = "rnn_relu" if relu else "rnn_tanh"
        w_ih, w_hh, bias = self._weights(weights, projected)
        b_ih, b_hh = bias or (None, None)
        hs = self._check(x, (h0,), w_ih, w_hh, bias)
        t, bsz = x.shape[:2]
        if reverse:
            x = xp_flip(x)
        g = self._project(x, w_ih, None if b_ih is None else b_ih + b_hh)
        hseq = xp.empty((t + 1, bsz, hs), dtype=x.dtype)
        hseq[0] = h0
        gh = xp.empty((bsz, hs), dtype=x.dtype)
        w_hh_t = transposed(xp, w_hh) if t > 1 else w_hh.T  # one step: the copy would cost more than it saves
        for s in range(t):
            blas.matmul(hseq[s], w_hh_t, out=gh)
            gh += g[s]
            if relu:
                xp.maximum(gh, 0.0, out=hseq[s + 1])
            else:
                xp.tanh(gh, out=hseq[s + 1])
        self.x, self.w_ih, self.w_hh, self.bias, self.reverse, self.relu = x, w_ih, w_hh, b_ih is not None, reverse, relu
        self.hseq = hseq
        return xp_flip(hseq[1:]) if reverse else hseq[1:]

    def vjp(self, g):
        xp = self.xp
        t, bsz, hs = g.shape
        dy = g[::-1] if self.reverse else g
        dpre = xp.empty((t, bsz, hs), dtype=g.dtype)
        dh = xp.zeros((bsz, hs), dtype=g.dtype)
        hseq, w_hh = self.hseq, self.w_hh
        for s in range(t - 1, -1, -1):
            rnn_cell_backward(xp, hseq[s + 1], dy[s], dh, dpre[s], self.relu)
            blas.matmul(dpre[s], w_hh, out=dh)
        dx, dw_ih, db = self._input_grads(dpre, self.x, self.w_ih, self.bias)
        needs = self._needs()
        dw_hh = blas.matmul(dpre.reshape(t * bsz, dpre.shape[2]).T, hseq[:t].reshape(t * bsz, hs)) if needs[3] else None
        grads = (dx, dh if needs[1] else None, dw_ih, dw_hh)
        if self.bias:
            grads += (db if needs[4] else None, db.copy() if needs[5] else None)
        return self._grads(grads)


# -- the step functions a layer op's time loop calls: compiled kernels or the NumPy reference --------
# Chosen once per op call (dlia.backend.rnn decides whether its kernels take these arrays), each
# returns ``step(s)`` that runs time step s on the sequences it was given, so the loop pays one
# ctypes call per step (~2 µs), not one per array for its address (~1 µs each). The arrays named
# ``*_seq`` have time as their first axis; ``step(s)`` uses their block s (and s + 1 where it says so).
_WHOLE = None  # the shift of an array used whole at every step (not a sequence)


def _bind(fn: Any, rows: int, hidden: int, threads: int, places: list[tuple[Any, Any, tuple[int, ...]]]) -> Any:
    """``step(s)`` calling ``fn(rows, hidden, *addresses, threads)``, or None where some array
    cannot be handed over by address (its blocks are not C-contiguous, or not of the shape the C
    code assumes: it cannot check anything itself).

    Each place is (array or None, shift, block shape): a sequence's address at step s is that of
    its block s + shift (negative strides, as in a reversed view, are fine); with shift ``_WHOLE``
    the array itself is passed every step; None is passed as NULL.
    """
    bases, strides, limit = [], [], None
    for a, shift, shape in places:
        if a is None:
            bases.append(None)
            strides.append(0)
            continue
        block = a if shift is _WHOLE else a[0] if a.shape[0] else None
        if block is None or block.shape != shape or not block.flags.c_contiguous:
            return None
        if shift is _WHOLE:
            bases.append(a.ctypes.data)
            strides.append(0)
        else:
            bases.append(a.ctypes.data + shift * a.strides[0])
            strides.append(a.strides[0])
            limit = a.shape[0] - shift if limit is None else min(limit, a.shape[0] - shift)
    moving = [(i, bases[i], strides[i]) for i in range(len(bases)) if strides[i]]

    def step(s: int) -> None:
        if not 0 <= s < limit:  # the C code would read or write outside the arrays
            raise IndexError(f"time step {s} is outside the {limit} steps the arrays hold")
        args = bases.copy()
        for i, base, stride in moving:
            args[i] = base + s * stride
        fn(rows, hidden, *args, threads)

    # the arrays whose addresses it holds live as long as it does (a copy made for it would
    # otherwise be freed on return, and the kernel would read freed memory)
    step.arrays = [a for a, _, _ in places if a is not None]  # type: ignore[attr-defined]
    return step


def lstm_forward_stepper(xp: Any, gx_seq: Any, gh: Any, c_seq: Any, acts_seq: Any, h_seq: Any, tc_seq: Any) -> Any:
    """``step(s)`` = ``lstm_cell_forward(xp, gx_seq[s], gh, c_seq[s], acts_seq[s], c_seq[s + 1],
    h_seq[s + 1], tc_seq[s])``, compiled where it can be. ``acts_seq`` may be ``gx_seq``."""
    from dlia.backend import rnn as kernels

    k = kernels.entry_points() if kernels.applies(gx_seq, gh, c_seq, acts_seq, h_seq, tc_seq) else None
    if k is not None:
        rows, hs = c_seq.shape[1:]
        g4, g1 = (rows, 4 * hs), (rows, hs)
        step = _bind(k.lstm_fwd, rows, hs, kernels.threads(rows, 4 * rows * hs),
                     [(gx_seq, 0, g4), (gh, _WHOLE, g4), (c_seq, 0, g1), (acts_seq, 0, g4), (c_seq, 1, g1),
                      (h_seq, 1, g1), (tc_seq, 0, g1)])
        if step is not None:
            return step
    return lambda s: lstm_cell_forward(xp, gx_seq[s], gh, c_seq[s], acts_seq[s], c_seq[s + 1], h_seq[s + 1], tc_seq[s])


def _fuse(rows: int, hidden: int) -> bool:
    """Whether the LSTM forward uses the fused product + gate kernel: where it runs on one thread.
    Where a step is big enough for several threads, OpenBLAS's product on every core and the step
    kernel win on a quiet machine: a 2-layer LSTM's forward + backward at H = 512, batch 50 × 50
    steps, took 286-307 ms that way against 347-350 ms fused on 2 threads (at H = 128, on one
    thread, fused 27 against 27-29 ms; on one core at H = 512 the two tie at 491-492 ms)."""
    from dlia.backend import rnn as kernels

    return kernels.fused_threads(rows, hidden) == 1


def lstm_fused_forward_stepper(xp: Any, w_hh: Any, gx_seq: Any, c_seq: Any, acts_seq: Any, h_seq: Any,
                               tc_seq: Any) -> Any:
    """``step(s)`` = ``lstm_cell_forward(xp, gx_seq[s], h_seq[s]·W_hhᵀ, c_seq[s], acts_seq[s], c_seq[s + 1],
    h_seq[s + 1], tc_seq[s])`` in one compiled call (W_hh packed once, here), or None where the
    kernels do not apply (then: BLAS product + ``lstm_forward_stepper``). ``acts_seq`` may be
    ``gx_seq``. Measured per step at batch 50, one thread, in cache: 57 against 64 µs at H = 128,
    800 against 914 µs at H = 512 (``_rnn.c``); threads: ``dlia.backend.rnn.fused_threads``."""
    from dlia.backend import rnn as kernels

    k = kernels.entry_points() if kernels.applies(w_hh, gx_seq, c_seq, acts_seq, h_seq, tc_seq) else None
    if k is None:
        return None
    rows, hs = c_seq.shape[1:]
    g4, g1 = (rows, 4 * hs), (rows, hs)
    packed = kernels.lstm_pack(w_hh)
    return _bind(k.lstm_fwd_fused, rows, hs, kernels.fused_threads(rows, hs),
                 [(gx_seq, 0, g4), (h_seq, 0, g1), (packed, _WHOLE, packed.shape), (c_seq, 0, g1), (acts_seq, 0, g4),
                  (c_seq, 1, g1), (h_seq, 1, g1), (tc_seq, 0, g1)])


#: whether the LSTM op runs whole sequences in one compiled call where it can (``lstm_forward_sequence``,
#: ``lstm_backward_sequence``); False: one call per step (the tests compare the two)
SEQUENCE_KERNELS = True


def _sequences(arrays: list[tuple[Any, tuple[int, ...]]]) -> bool:
    """Whether each array is C-contiguous and of its shape (what the C code assumes and cannot check)."""
    return all(a.shape == shape and a.flags.c_contiguous for a, shape in arrays)


def lstm_forward_sequence(w_hh: Any, gx_seq: Any, h_seq: Any, c_seq: Any, acts_seq: Any, tc_seq: Any) -> bool:
    """Every step ``s`` of ``lstm_cell_forward(xp, gx_seq[s], h_seq[s]·W_hhᵀ, c_seq[s], acts_seq[s],
    c_seq[s + 1], h_seq[s + 1], tc_seq[s])`` in one compiled call (``dlia_rnn_lstm_fwd_seq``: the rows
    split between the cores once, the time loop in C); False, having done nothing, where it does not
    apply. ``acts_seq`` may be ``gx_seq``."""
    from dlia.backend import rnn as kernels

    if not SEQUENCE_KERNELS or not kernels.applies(w_hh, gx_seq, h_seq, c_seq, acts_seq, tc_seq):
        return False
    k = kernels.entry_points()
    t, rows, hs = tc_seq.shape
    g4, g1 = (t, rows, 4 * hs), (t + 1, rows, hs)
    if k is None or not _sequences([(w_hh, (4 * hs, hs)), (gx_seq, g4), (acts_seq, g4), (h_seq, g1), (c_seq, g1),
                                    (tc_seq, (t, rows, hs))]):
        return False
    packed = kernels.lstm_pack(w_hh)
    k.lstm_fwd_seq(t, rows, hs, gx_seq.ctypes.data, h_seq.ctypes.data, packed.ctypes.data, c_seq.ctypes.data,
                   acts_seq.ctypes.data, tc_seq.ctypes.data, kernels.seq_threads(t, rows, hs))
    return True


def lstm_backward_sequence(w_hh: Any, acts_seq: Any, c_seq: Any, tc_seq: Any, dy_seq: Any, dh: Any, dc: Any,
                           dpre_seq: Any) -> bool:
    """For s from T − 1 down to 0: ``lstm_cell_backward(xp, acts_seq[s], c_seq[s], tc_seq[s], dy_seq[s],
    dh, dc, dpre_seq[s])`` then ``dh = dpre_seq[s]·W_hh``, in one compiled call
    (``dlia_rnn_lstm_bwd_seq``); ``dh`` and ``dc`` end as the gradients reaching the initial state.
    False, having done nothing, where it does not apply."""
    from dlia.backend import rnn as kernels

    if not SEQUENCE_KERNELS or not kernels.applies(w_hh, acts_seq, c_seq, tc_seq, dy_seq, dh, dc, dpre_seq):
        return False
    k = kernels.entry_points()
    t, rows, hs = tc_seq.shape
    g4, g1 = (t, rows, 4 * hs), (t, rows, hs)
    if k is None or not _sequences([(w_hh, (4 * hs, hs)), (acts_seq, g4), (dpre_seq, g4), (c_seq[:t], g1),
                                    (tc_seq, g1), (dh, (rows, hs)), (dc, (rows, hs))]):
        return False
    if dy_seq.shape != g1:
        return False
    dy_seq = dy_seq if dy_seq.flags.c_contiguous else dy_seq.copy()  # reversed, or a broadcast: read only
    packed = kernels.lstm_pack_bwd(w_hh)
    k.lstm_bwd_seq(t, rows, hs, acts_seq.ctypes.data, c_seq.ctypes.data, tc_seq.ctypes.data, dy_seq.ctypes.data,
                   packed.ctypes.data, dh.ctypes.data, dc.ctypes.data, dpre_seq.ctypes.data,
                   kernels.seq_threads(t, rows, hs))
    return True


def lstm_backward_stepper(xp: Any, acts_seq: Any, c_seq: Any, tc_seq: Any, dy_seq: Any, dh: Any, dc: Any,
                          dpre_seq: Any) -> Any:
    """``step(s)`` = ``lstm_cell_backward(xp, acts_seq[s], c_seq[s], tc_seq[s], dy_seq[s], dh, dc,
    dpre_seq[s])``, compiled where it can be (``dc`` is read and overwritten in place)."""
    from dlia.backend import rnn as kernels

    k = kernels.entry_points() if kernels.applies(acts_seq, c_seq, tc_seq, dy_seq, dh, dc, dpre_seq) else None
    if k is not None:
        rows, hs = dc.shape
        g4, g1 = (rows, 4 * hs), (rows, hs)
        step = _bind(k.lstm_bwd, rows, hs, kernels.threads(rows, 4 * rows * hs),
                     [(acts_seq, 0, g4), (c_seq, 0, g1), (tc_seq, 0, g1), (_contiguous_blocks(dy_seq), 0, g1),
                      (dh, _WHOLE, g1), (dc, _WHOLE, g1), (dpre_seq, 0, g4)])
        if step is not None:
            return step
    return lambda s: lstm_cell_backward(xp, acts_seq[s], c_seq[s], tc_seq[s], dy_seq[s], dh, dc, dpre_seq[s])


def gru_forward_stepper(xp: Any, gx_seq: Any, gh: Any, b_hh: Any, h_seq: Any, acts_seq: Any) -> Any:
    """``step(s)`` = ``gru_cell_forward(xp, gx_seq[s], gh, b_hh, h_seq[s], acts_seq[s], h_seq[s + 1])``,
    compiled where it can be (``b_hh`` may be None)."""
    from dlia.backend import rnn as kernels

    k = kernels.entry_points() if kernels.applies(gx_seq, gh, b_hh, h_seq, acts_seq) else None
    if k is not None:
        rows, hs = h_seq.shape[1:]
        g3, g1 = (rows, 3 * hs), (rows, hs)
        step = _bind(k.gru_fwd, rows, hs, kernels.threads(rows, 3 * rows * hs),
                     [(gx_seq, 0, g3), (gh, _WHOLE, g3), (b_hh, _WHOLE, (3 * hs,)), (h_seq, 0, g1),
                      (acts_seq, 0, (rows, 4 * hs)), (h_seq, 1, g1)])
        if step is not None:
            return step
    return lambda s: gru_cell_forward(xp, gx_seq[s], gh, b_hh, h_seq[s], acts_seq[s], h_seq[s + 1])


def gru_backward_stepper(xp: Any, acts_seq: Any, h_seq: Any, dy_seq: Any, dh: Any, dh_dir: Any, dgx_seq: Any,
                         dgh_seq: Any) -> Any:
    """``step(s)`` = ``gru_cell_backward(xp, acts_seq[s], h_seq[s], dy_seq[s], dh, dh_dir, dgx_seq[s],
    dgh_seq[s])``, compiled where it can be (``dh_dir`` is read and overwritten in place)."""
    from dlia.backend import rnn as kernels

    k = kernels.entry_points() if kernels.applies(acts_seq, h_seq, dy_seq, dh, dh_dir, dgx_seq, dgh_seq) else None
    if k is not None:
        rows, hs = dh_dir.shape
        g3, g1 = (rows, 3 * hs), (rows, hs)
        step = _bind(k.gru_bwd, rows, hs, kernels.threads(rows, 3 * rows * hs),
                     [(acts_seq, 0, (rows, 4 * hs)), (h_seq, 0, g1), (_contiguous_blocks(dy_seq), 0, g1),
                      (dh, _WHOLE, g1), (dh_dir, _WHOLE, g1), (dgx_seq, 0, g3), (dgh_seq, 0, g3)])
        if step is not None:
            return step
    return lambda s: gru_cell_backward(xp, acts_seq[s], h_seq[s], dy_seq[s], dh, dh_dir, dgx_seq[s], dgh_seq[s])


def _contiguous_blocks(a: Any) -> Any:
    """``a`` itself where its blocks ``a[s]`` are C-contiguous, else a contiguous copy: an output
    gradient is read only, and may be a broadcast (the gradient of ``.sum()`` has stride 0)."""
    return a if a.shape[0] == 0 or a[0].flags.c_contiguous else a.copy()
