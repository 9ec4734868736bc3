"""Multi-layer recurrent layers with PyTorch's names, shapes and equations: ``RNN``, ``GRU``, ``LSTM``.

Each layer and direction is one fused op (``dlia.core.ops.rnn``): the whole sequence forward, and
back through time in its vjp. ``load_state_dict`` takes a ``torch.nn.LSTM``'s state dict as is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from dlia.core import ops
from dlia.core.creation import zeros
from dlia.core.function import no_grad, shape_error
from dlia.core.ops import rnn as _rnn
from dlia.core.random import Generator
from dlia.core.tensor import Tensor
from dlia.nn import init
from dlia.nn.module import Module
from dlia.nn.parameter import Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


class RNNBase(Module):
    """What the three layers share: parameters, shape checks, the loop over layers and directions.

    Args:
        mode: ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``.
        input_size: features of each input step.
        hidden_size: features of the hidden state.
        num_layers: stacked layers, each reading the previous one's output.
        bias: whether to learn ``bias_ih`` and ``bias_hh``.
        batch_first: inputs and outputs are (batch, time, features) instead of (time, batch, features);
            the states stay (layers·directions, batch, hidden), as in PyTorch.
        dropout: dropout on the outputs of every layer but the last, while training.
        bidirectional: a second direction reads each sequence backwards; outputs are concatenated.
        dtype: parameter dtype.
        generator: seeded source for the initial weights and the dropout masks.

    ``forward(input, hx, projected=True)`` (not in PyTorch) takes layer 0's input projection
    ``x·W_ihᵀ`` (…, k·hidden_size) instead of ``x``: ``forward_embedded`` uses it.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = numpy.float32, generator: Generator | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        for what, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(v, bool) or not isinstance(v, (int, numpy.integer)) or v <= 0:
                raise ValueError(f"{name}: {what} must be a positive integer, got {v!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        self.mode, self.input_size, self.hidden_size = mode, int(input_size), int(hidden_size)
        self.num_layers, self.bias, self.batch_first = int(num_layers), bool(bias), bool(batch_first)
        self.dropout, self.bidirectional, self.generator = float(dropout), bool(bidirectional), generator
        k, directions = _GATES[mode], 2 if bidirectional else 1
        bound = 1.0 / math.sqrt(hidden_size)  # PyTorch's init: every parameter U(-1/√H, 1/√H)
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                shapes = {"weight_ih": (k * hidden_size, fan_in), "weight_hh": (k * hidden_size, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(k * hidden_size,), bias_hh=(k * hidden_size,))
                for pname, shape in shapes.items():
                    p = Parameter(numpy.empty(shape, dtype=dtype))
                    init.uniform_(p, -bound, bound, generator)
                    setattr(self, f"{pname}_l{layer}{suffix}", p)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _weights(self, layer: int, suffix: str) -> list[Tensor]:
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if self.bias else [])
        return [getattr(self, f"{n}_l{layer}{suffix}") for n in names]

    def _check_state(self, state: Any, batch: int, unbatched: bool, what: str) -> Tensor:
        expected = (self.num_layers * self.num_directions,) + (() if unbatched else (batch,)) + (self.hidden_size,)
        if not isinstance(state, Tensor):
            state = Tensor(numpy.asarray(state))
        if tuple(state.shape) != expected:
            raise shape_error(type(self).__name__.lower(), f"expected {what} of shape {expected}, got {tuple(state.shape)}",
                              tuple(state.shape))
        return state.unsqueeze(1) if unbatched else state

    def _zero_state(self, x: Tensor, batch: int | None) -> Tensor:
        """Zeros of shape (layers·directions, batch, hidden). A graph node whose batch size is not
        known until it runs gets them as a node computed from ``x`` (0·x[0, :, :1] broadcast), with
        no gradient."""
        size = (self.num_layers * self.num_directions, batch, self.hidden_size)
        w = self.weight_ih_l0
        if isinstance(batch, (int, numpy.integer)):
            return zeros(size, dtype=w.dtype, device=w.device)
        with no_grad():
            row = x[0, :, :1] * 0.0 + zeros((1, self.hidden_size), dtype=w.dtype)  # (batch, hidden)
            return ops.stack([row] * size[0], axis=0)

    def _run(self, x: Tensor, states: list[Tensor], projected: bool = False) -> tuple[Tensor, list[Tensor]]:
        """x (T, B, I) and the initial states, each (L·D, B, H) → output (T, B, D·H) and final states.
        ``projected``: x is layer 0's input projection x·W_ihᵀ (T, B, k·H) (``forward_embedded``)."""
        name = type(self).__name__.lower()
        if x.ndim != 3:
            raise shape_error(name, "input must be (time, batch, features) (or 2-D for one unbatched sequence)", x.shape)
        if projected:
            if x.shape[2] != _GATES[self.mode] * self.hidden_size or self.num_directions != 1:
                raise shape_error(name, f"a projected input has {_GATES[self.mode]}·hidden_size features, one direction",
                                  x.shape)
        elif x.shape[2] != self.input_size:
            raise shape_error(name, f"input has {x.shape[2]} features, the layer expects input_size={self.input_size}",
                              x.shape)
        finals: list[list[Tensor]] = [[] for _ in states]
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(("", "_reverse")[:self.num_directions]):
                i = layer * self.num_directions + d
                init_states = [s[i] for s in states]
                reverse = d == 1
                w = self._weights(layer, suffix)
                first = projected and layer == 0
                if first:
                    w = w[1:]  # W_ih is in the projection already
                if self.mode == "LSTM":
                    packed = _rnn.LSTM.apply(x, *init_states, *w, reverse=reverse, projected=first)  # [h_1 .. h_T, c_T]
                    out = packed[:-1]  # from the end: a graph node may not know T
                    finals[0].append(packed[0] if reverse else packed[-2])
                    finals[1].append(packed[-1])
                else:
                    op = _rnn.GRU if self.mode == "GRU" else _rnn.RNN
                    extra = {"relu": True} if self.mode == "RNN_RELU" else {}
                    out = op.apply(x, *init_states, *w, reverse=reverse, projected=first, **extra)
                    finals[0].append(out[0] if reverse else out[-1])
                outs.append(out)
            x = outs[0] if len(outs) == 1 else ops.concatenate(outs, axis=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = ops.dropout(x, self.dropout, True, self.generator)
        return x, [ops.stack(f, axis=0) for f in finals]

    def forward_embedded(self, weight: Tensor, ids: Any, hx: Any = None) -> tuple[Tensor, Any]:
        """``self(ops.embedding(weight, ids), hx)``, the same values and gradients, faster.

        Layer 0 would multiply every embedded step by W_ihᵀ: (T·B, I)·(I, k·H), and twice more in
        its backward (dx, dW_ih). The embedding of an id followed by the projection is a row of
        ``weight·W_ihᵀ`` (V, k·H), so this multiplies the table once (V rows, the vocabulary, instead
        of T·B) and picks its rows by id; the gradients of ``weight`` and W_ih come back through
        the same two ops. For char-rnn (V = 65 against T·B = 2,500 rows) it removes the three
        largest products of layer 0: a training batch of the 2×128 LSTM took 40 instead of 44 ms,
        of the 2×512 LSTM 471 instead of 564 ms (batch 50 × 50 steps, one thread).

        Args:
            weight: the embedding table (V, input_size), as ``nn.Embedding.weight`` (a plain lookup:
                no padding_idx, dense gradient).
            ids: integer ids, (T, B) (or (B, T) with ``batch_first``, or (T,) unbatched).
            hx: the initial state, as ``forward`` takes it.

        Returns:
            What ``forward`` returns. A bidirectional layer runs ``forward`` on the embedded ids.
        """
        if weight.ndim != 2 or weight.shape[1] != self.input_size:
            raise shape_error(type(self).__name__.lower(), f"the embedding table must be (vocabulary, input_size="
                              f"{self.input_size})", tuple(weight.shape))
        if self.num_directions != 1:
            return self(ops.embedding(weight, ids), hx)
        table = ops.matmul(weight, self.weight_ih_l0.T)  # (V, k·H): every id's projection
        if self.batch_first and getattr(ids, "ndim", 0) == 2:
            # gathered time-major, handed over as a batch-first view: the layer's own transpose then
            # gives it back contiguous, so neither its copy of the projection nor the embedding's
            # gradient has to walk a transposed array (char-rnn 2×128: 0.9 ms of a 28 ms step)
            ids = ids.data if isinstance(ids, Tensor) else ids
            return self(ops.embedding(table, ids.T).transpose(0, 1), hx, projected=True)
        return self(ops.embedding(table, ids), hx, projected=True)

    def _forward(self, x: Any, hx: list[Any] | None, what: tuple[str, ...],
                 projected: bool = False) -> tuple[Tensor, list[Tensor]]:
        if not isinstance(x, Tensor):
            x = Tensor(numpy.asarray(x))
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(1)
        elif self.batch_first and x.ndim == 3:
            x = x.transpose(0, 1)
        batch = x.shape[1] if x.ndim == 3 else 0
        if hx is None:
            states = [self._zero_state(x, batch) for _ in what]
        else:
            states = [self._check_state(s, batch, unbatched, w) for s, w in zip(hx, what)]
        out, finals = self._run(x, states, projected)
        if unbatched:
            return out.squeeze(1), [f.squeeze(1) for f in finals]
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, finals

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout:g}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN, ``h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh)`` (or relu), as ``torch.nn.RNN``.

    ``out, h_n = rnn(x, h0)``: x (T, B, I) (or (B, T, I) with ``batch_first``, or (T, I) unbatched);
    out (T, B, D·H); h0 and h_n (num_layers·D, B, H); h0 defaults to zeros.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = numpy.float32, generator: Generator | None = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r} (use 'tanh' or 'relu')")
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype, generator)
        self.nonlinearity = nonlinearity

    def forward(self, input: Any, hx: Any = None, projected: bool = False) -> tuple[Tensor, Tensor]:  # noqa: A002
        out, (h,) = self._forward(input, None if hx is None else [hx], ("h0",), projected)
        return out, h


class GRU(RNNBase):
    """Gated recurrent unit as ``torch.nn.GRU`` (gate order r, z, n)::

        r = σ(W_ir x + b_ir + W_hr h + b_hr)    z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r∘(W_hn h + b_hn))    h' = (1 − z)∘n + z∘h

    ``out, h_n = gru(x, h0)`` with the shapes of ``RNN``. (The lecture's TensorFlow GRU, which
    applies r before the product, is ``dlia.nn.rnn_cell.GRUCell``.)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = numpy.float32, generator: Generator | None = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, generator)

    def forward(self, input: Any, hx: Any = None, projected: bool = False) -> tuple[Tensor, Tensor]:  # noqa: A002
        out, (h,) = self._forward(input, None if hx is None else [hx], ("h0",), projected)
        return out, h


class LSTM(RNNBase):
    """Long short-term memory as ``torch.nn.LSTM`` (gate order i, f, g, o)::

        i, f, o = σ(·), g = tanh(·) of x W_ihᵀ + b_ih + h W_hhᵀ + b_hh
        c' = f∘c + i∘g    h' = o∘tanh(c')

    ``out, (h_n, c_n) = lstm(x, (h0, c0))``; the states are (num_layers·D, B, H), zeros by default.
    The lecture's ``BasicLSTMCell`` (forget bias 1.0 added in the cell) is in ``dlia.nn.rnn_cell``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = numpy.float32, generator: Generator | None = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, generator)

    def forward(self, input: Any, hx: Any = None, projected: bool = False) -> tuple[Tensor, tuple[Tensor, Tensor]]:  # noqa: A002
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTM: the initial state must be a pair (h0, c0)")
        out, (h, c) = self._forward(input, None if hx is None else list(hx), ("h0", "c0"), projected)
        return out, (h, c)
