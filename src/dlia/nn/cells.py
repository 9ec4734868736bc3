"""PyTorch's recurrent cells: ``RNNCell``, ``LSTMCell``, ``GRUCell`` — one time step each, with torch's
equations, gate orders, parameter names, shapes and initialisation, so a ``torch.nn.LSTMCell``'s
``state_dict`` loads as it is.

Each has ``weight_ih`` (k·H, I) and ``weight_hh`` (k·H, H) stacking its k gate matrices row-wise, and
two biases ``bias_ih``, ``bias_hh`` (k·H,), all drawn from U(−1/√H, 1/√H). Inputs are (B, I) or
unbatched (I,); the state is (B, H) or (H,) accordingly, zeros when omitted.

They are composed from the engine's ops (``linear``, ``split``, ``sigmoid``, ``tanh``), one graph
node per operation: the readable reference. The sequence layers ``nn.RNN``/``nn.GRU``/``nn.LSTM``
run a whole sequence as one fused op. The lecture's TensorFlow cells are in ``dlia.nn.rnn_cell``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from dlia.core import ops
from dlia.core.creation import zeros
from dlia.core.function import no_grad, shape_error
from dlia.core.random import Generator
from dlia.core.tensor import Tensor
from dlia.nn import init
from dlia.nn.module import Module
from dlia.nn.parameter import Parameter


class RNNCellBase(Module):
    """Parameters, initialisation and input checks shared by the three cells (torch's ``RNNCellBase``).

    Args:
        input_size: the number of input features I.
        hidden_size: the size H of the hidden state.
        bias: whether to learn ``bias_ih`` and ``bias_hh``.
        num_chunks: k, the number of gate blocks stacked in each weight (1, 4 or 3).
        dtype: parameter dtype (float32 by default).
        generator: seeded source for the initial weights.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, dtype: Any = numpy.float32,
                 generator: Generator | None = None) -> None:
        super().__init__()
        for what, n in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(n, bool) or not isinstance(n, (int, numpy.integer)) or n <= 0:
                raise ValueError(f"{type(self).__name__}: {what} must be a positive integer, got {n!r}")
        input_size, hidden_size = int(input_size), int(hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        rows = num_chunks * hidden_size
        self.weight_ih = Parameter(numpy.empty((rows, input_size), dtype=dtype))
        self.weight_hh = Parameter(numpy.empty((rows, hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(numpy.empty(rows, dtype=dtype))
            self.bias_hh = Parameter(numpy.empty(rows, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """Draw every parameter from U(−1/√H, 1/√H), in registration order, as torch does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound, generator)

    def _state(self, input: Tensor, hx: Any, what: str) -> Tensor:  # noqa: A002 - torch's name
        """``hx`` checked against ``input`` (same batchedness, batch size, H and dtype), or zeros like torch."""
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise shape_error(name, f"expected input to be 1D or 2D, got {input.ndim}D", input.shape)
        if input.shape[-1] is not None and input.shape[-1] != self.input_size:
            raise shape_error(name, f"input has {input.shape[-1]} features, expected input_size={self.input_size}",
                              input.shape)
        if input.dtype != self.weight_ih.dtype:  # torch: "mat1 and mat2 must have the same dtype"
            raise TypeError(f"{name}: the input is {input.dtype} but the weights are {self.weight_ih.dtype}")
        state_shape = input.shape[:-1] + (self.hidden_size,)
        if hx is None:
            if None in state_shape:  # a graph node whose batch size is known only when it runs
                with no_grad():
                    return input[..., :1] * 0.0 + zeros(self.hidden_size, dtype=input.dtype)
            return zeros(state_shape, dtype=input.dtype, device=input.device)
        if not isinstance(hx, Tensor):
            hx = Tensor(numpy.asarray(hx))
        if hx.dtype != input.dtype:
            raise TypeError(f"{name}: {what} is {hx.dtype} but the input is {input.dtype}")
        if hx.ndim != input.ndim:
            raise shape_error(name, f"{what} must be {'2D' if input.ndim == 2 else '1D'} like the input, got {hx.ndim}D",
                              input.shape, hx.shape)
        if any(a is not None and b is not None and a != b for a, b in zip(hx.shape, state_shape)):
            raise shape_error(name, f"expected {what} of shape {state_shape}", input.shape, hx.shape)
        return hx

    def _gates(self, input: Tensor, hx: Tensor) -> tuple[Tensor, Tensor]:  # noqa: A002
        """The two projections ``W_ih x + b_ih`` and ``W_hh h + b_hh``, (..., k·H) each."""
        return ops.linear(input, self.weight_ih, self.bias_ih), ops.linear(hx, self.weight_hh, self.bias_hh)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(RNNCellBase):
    """An Elman RNN cell: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act = tanh or relu.

    Shapes: input (B, I) or (I,), h (B, H) or (H,) (zeros when None) → h' like h.
    Parameters: ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih`` (H,), ``bias_hh`` (H,).

    Args:
        input_size: the number of input features I.
        hidden_size: the size H of the hidden state.
        bias: whether to learn the two biases.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        dtype: parameter dtype (float32 by default).
        generator: seeded source for the initial weights.

    Example:
        >>> cell = nn.RNNCell(3, 4)
        >>> cell(dlia.zeros(2, 3)).shape
        (2, 4)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype: Any = numpy.float32, generator: Generator | None = None) -> None:
        if nonlinearity not in ("tanh", "relu"):  # torch finds out only in forward; here at once
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r} (expected 'tanh' or 'relu')")
        super().__init__(input_size, hidden_size, bias, 1, dtype, generator)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        hx = self._state(input, hx, "hx")
        gi, gh = self._gates(input, hx)
        return ops.tanh(gi + gh) if self.nonlinearity == "tanh" else ops.relu(gi + gh)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}")


class LSTMCell(RNNCellBase):
    """A long short-term memory cell with torch's gate order i, f, g, o::

        i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh, 4)
        c' = σ(f)∘c + σ(i)∘tanh(g)
        h' = σ(o)∘tanh(c')

    Shapes: input (B, I) or (I,); ``hx = (h, c)``, each (B, H) or (H,), zeros when None →
    ``(h', c')`` (torch's order; TF's ``BasicLSTMCell`` keeps ``(c, h)``).
    Parameters: ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih`` (4H,), ``bias_hh`` (4H,),
    row blocks in the order i, f, g, o.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = numpy.float32,
                 generator: Generator | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, dtype, generator)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:  # noqa: A002
        if hx is None:
            h = c = self._state(input, None, "hx")
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"LSTMCell: hx must be a (h, c) pair, got {type(hx).__name__}")
            if hx[0] is None or hx[1] is None:
                raise TypeError("LSTMCell: hx must hold two tensors (h, c), got None in it")
            h, c = self._state(input, hx[0], "hx[0]"), self._state(input, hx[1], "hx[1]")
        gi, gh = self._gates(input, h)
        i, f, g, o = ops.split(gi + gh, self.hidden_size, axis=-1)
        c_new = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h_new = ops.sigmoid(o) * ops.tanh(c_new)
        return h_new, c_new


class GRUCell(RNNCellBase):
    """A gated recurrent unit with torch's equations and gate order r, z, n::

        r = σ(W_ir x + b_ir + W_hr h + b_hr)
        z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r∘(W_hn h + b_hn))   the reset gate acts AFTER the recurrent matmul
        h' = (1 − z)∘n + z∘h

    (TF's and the lecture's ``rnn_cell.GRUCell`` applies the reset gate to h before its matmul.)

    Shapes: input (B, I) or (I,), h (B, H) or (H,) (zeros when None) → h' like h.
    Parameters: ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` (3H,), ``bias_hh`` (3H,),
    row blocks in the order r, z, n.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = numpy.float32,
                 generator: Generator | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, dtype, generator)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        hx = self._state(input, hx, "hx")
        gi, gh = self._gates(input, hx)
        i_r, i_z, i_n = ops.split(gi, self.hidden_size, axis=-1)
        h_r, h_z, h_n = ops.split(gh, self.hidden_size, axis=-1)
        r = ops.sigmoid(i_r + h_r)
        z = ops.sigmoid(i_z + h_z)
        n = ops.tanh(i_n + r * h_n)
        return (1 - z) * n + z * hx


__all__ = ["GRUCell", "LSTMCell", "RNNCell", "RNNCellBase"]
