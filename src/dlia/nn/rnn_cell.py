"""The lecture's recurrent cells with TensorFlow 1's contract (``tf.nn.rnn_cell``): ``BasicRNNCell``,
``GRUCell`` and ``BasicLSTMCell``.

A cell is one time step. TF's contract, kept here::

    output, new_state = cell(inputs, state)      # inputs (batch, input_size)
    cell.state_size, cell.output_size            # num_units (an LSTMStateTuple for the LSTM)
    state = cell.zero_state(batch_size)          # the initial state, all zeros

Every cell does what TF's ``_linear`` does: it concatenates its arguments along the feature axis
and multiplies them by ONE kernel of shape (input_size + num_units, k·num_units), so
``W·[x, h] + b`` is a single matmul with ``W = [W_x; W_h]`` stacked row-wise. The parameter names
follow TF's variable names (TF's ``gates/kernel`` becomes ``gates_kernel``: a module attribute
cannot hold a ``/``).

The cells are composed from the engine's ops (``concatenate``, ``matmul``, ``split``, ``sigmoid``,
``tanh``), so autodiff gives their gradients and they work on graph nodes too. They are the
readable reference; the sequence layers ``nn.RNN``/``nn.GRU``/``nn.LSTM`` are the fast path.
PyTorch's cells (other equations, other weight layout) are ``nn.RNNCell``, ``nn.GRUCell`` and
``nn.LSTMCell``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy

from dlia.core import ops
from dlia.core.creation import zeros
from dlia.core.function import shape_error
from dlia.core.random import Generator
from dlia.core.tensor import Tensor
from dlia.nn import init
from dlia.nn.module import Module
from dlia.nn.parameter import Parameter

Activation = Callable[[Tensor], Tensor]


class LSTMStateTuple(NamedTuple):
    """The state of a ``BasicLSTMCell``: the cell state ``c`` and the hidden state ``h``, in TF's
    order (``(c, h)``; PyTorch's ``LSTMCell`` takes and returns ``(h, c)``)."""

    c: Any
    h: Any


def _linear(args: Sequence[Tensor], kernel: Tensor, bias: Tensor) -> Tensor:
    """TF's ``_linear``: ``concat(args, axis=1) @ kernel + bias``.

    Shapes: args (B, n₁), (B, n₂), ... with Σnᵢ = kernel.shape[0]; kernel (Σnᵢ, m); bias (m,) → (B, m).
    """
    return ops.matmul(ops.concatenate(list(args), axis=1), kernel) + bias


def _fits(n: int | None, expected: int | None) -> bool:
    return n is None or expected is None or n == expected  # a graph node may not know a dimension


class _Cell(Module):
    """What the three cells share: sizes, TF's ``state_size``/``output_size``, ``zero_state``, checks."""

    def __init__(self, num_units: int, input_size: int, activation: Activation, dtype: Any) -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(num_units, bool) or not isinstance(num_units, (int, numpy.integer)) or num_units <= 0:
            raise ValueError(f"{name}: num_units must be a positive integer, got {num_units!r}")
        if isinstance(input_size, bool) or not isinstance(input_size, (int, numpy.integer)) or input_size <= 0:
            raise ValueError(f"{name}: input_size must be a positive integer, got {input_size!r}")
        if not callable(activation):
            raise TypeError(f"{name}: activation must be callable (a tensor → tensor function), got {activation!r}")
        self.num_units, self.input_size, self.activation = int(num_units), int(input_size), activation
        self._dtype = numpy.dtype(dtype)

    def _kernel(self, columns: int, generator: Generator | None) -> Parameter:
        """A (input_size + num_units, columns) kernel, Glorot-uniform as TF's default initializer."""
        kernel = Parameter(numpy.empty((self.input_size + self.num_units, columns), dtype=self._dtype))
        # U(±√(6 / (fan_in + fan_out))): symmetric in the two fans, so the (in, out) layout is fine
        return init.xavier_uniform_(kernel, generator=generator)

    def _bias(self, columns: int, value: float) -> Parameter:
        return init.constant_(Parameter(numpy.empty(columns, dtype=self._dtype)), value)

    @property
    def state_size(self) -> Any:
        """The size of the state: ``num_units`` (an ``LSTMStateTuple`` of two for the LSTM)."""
        return self.num_units

    @property
    def output_size(self) -> int:
        """The size of the output: ``num_units``."""
        return self.num_units

    def zero_state(self, batch_size: int, dtype: Any = None) -> Any:
        """The all-zeros initial state for ``batch_size`` sequences (the parameters' dtype and device).

        Returns:
            a (batch_size, num_units) tensor, or for ``BasicLSTMCell`` an ``LSTMStateTuple`` of two.
        """
        dtype = self._dtype if dtype is None else dtype
        device = next(iter(self.parameters())).device

        def one(size: int) -> Tensor:
            return zeros(batch_size, size, dtype=dtype, device=device)

        size = self.state_size
        return LSTMStateTuple(one(size.c), one(size.h)) if isinstance(size, LSTMStateTuple) else one(size)

    def _check(self, inputs: Tensor, h: Tensor, what: str = "state") -> None:
        """inputs must be (B, input_size) and the state part h (B, num_units)."""
        name = type(self).__name__
        x_shape, h_shape = inputs.shape, h.shape
        if x_shape is None or h_shape is None:
            return  # a graph node of unknown rank: the ops check at run time
        ok = len(x_shape) == 2 and len(h_shape) == 2
        if ok:
            ok = _fits(x_shape[1], self.input_size) and _fits(h_shape[1], self.num_units) and _fits(x_shape[0], h_shape[0])
        if not ok:
            raise shape_error(name, f"expected inputs (batch, {self.input_size}) and {what} (batch, {self.num_units})",
                              x_shape, h_shape)

    def extra_repr(self) -> str:
        act = getattr(self.activation, "__name__", repr(self.activation))
        return f"num_units={self.num_units}, input_size={self.input_size}" + ("" if act == "tanh" else f", activation={act}")


class BasicRNNCell(_Cell):
    """The most basic RNN cell (the lecture's baseline): ``output = new_state = act(W·[x, h] + b)``.

    Shapes: inputs (B, input_size), state (B, num_units) → output and new state (B, num_units).

    Parameters (TF's names): ``kernel`` (input_size + num_units, num_units), Glorot-uniform;
    ``bias`` (num_units,), zeros.

    Args:
        num_units: the size of the hidden state.
        input_size: the number of input features (TF infers it on the first call; here the
            parameters exist from the start, as every dlia layer's).
        activation: the nonlinearity, ``dlia.tanh`` by default.
        dtype: parameter dtype (float32 by default).
        generator: seeded source for the initial weights.

    Example:
        >>> cell = BasicRNNCell(4, input_size=3)
        >>> out, state = cell(dlia.zeros(2, 3), cell.zero_state(2))
        >>> out.shape
        (2, 4)
    """

    def __init__(self, num_units: int, input_size: int, activation: Activation = ops.tanh, dtype: Any = numpy.float32,
                 generator: Generator | None = None) -> None:
        super().__init__(num_units, input_size, activation, dtype)
        self.kernel = self._kernel(num_units, generator)
        self.bias = self._bias(num_units, 0.0)

    def forward(self, inputs: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        self._check(inputs, state)
        output = self.activation(_linear([inputs, state], self.kernel, self.bias))
        return output, output


class GRUCell(_Cell):
    """The gated recurrent unit as the lecture writes it (Cho et al. 2014, TF's ``GRUCell``).

    With σ the logistic sigmoid and ∘ the element-wise product::

        r, u = σ(W_g·[x, h] + b_g)          split in two halves: reset gate r, update gate u
        c    = act(W_c·[x, r∘h] + b_c)      the candidate: the reset gate acts BEFORE the matmul
        h'   = u∘h + (1 − u)∘c              output = new state = h'

    Shapes: inputs (B, input_size), state (B, num_units) → output and new state (B, num_units).

    Parameters (TF's ``gates/kernel``, ``gates/bias``, ``candidate/kernel``, ``candidate/bias``):
    ``gates_kernel`` (input_size + num_units, 2·num_units) with columns [r | u], ``gates_bias``
    (2·num_units,) initialised to 1.0 ("not reset and not update": both gates start near σ(1) ≈ 0.73),
    ``candidate_kernel`` (input_size + num_units, num_units), ``candidate_bias`` (num_units,), zeros.
    Kernels are Glorot-uniform.

    This is not PyTorch's GRU: torch applies r after the recurrent matmul,
    ``n = tanh(W_in x + b_in + r∘(W_hn h + b_hn))``, so the two differ for the same weights
    (``h' = z∘h + (1 − z)∘n`` is the same form). ``nn.GRUCell`` is torch's.

    Args:
        num_units: the size of the hidden state.
        input_size: the number of input features.
        activation: the candidate's nonlinearity, ``dlia.tanh`` by default.
        dtype: parameter dtype (float32 by default).
        generator: seeded source for the initial weights.
    """

    def __init__(self, num_units: int, input_size: int, activation: Activation = ops.tanh, dtype: Any = numpy.float32,
                 generator: Generator | None = None) -> None:
        super().__init__(num_units, input_size, activation, dtype)
        self.gates_kernel = self._kernel(2 * num_units, generator)
        self.gates_bias = self._bias(2 * num_units, 1.0)
        self.candidate_kernel = self._kernel(num_units, generator)
        self.candidate_bias = self._bias(num_units, 0.0)

    def forward(self, inputs: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        self._check(inputs, state)
        gates = ops.sigmoid(_linear([inputs, state], self.gates_kernel, self.gates_bias))
        r, u = ops.split(gates, self.num_units, axis=1)
        c = self.activation(_linear([inputs, r * state], self.candidate_kernel, self.candidate_bias))
        new_h = u * state + (1 - u) * c
        return new_h, new_h


class BasicLSTMCell(_Cell):
    """The lecture's LSTM cell (TF's ``BasicLSTMCell``: no peepholes, no projection).

    One matmul gives all four gate pre-activations, split in TF's order i, j, f, o::

        i, j, f, o = split(W·[x, h] + b, 4)   input gate, new input, forget gate, output gate
        c' = c∘σ(f + forget_bias) + σ(i)∘act(j)
        h' = act(c')∘σ(o)                     output = h', new state = (c', h')

    Shapes: inputs (B, input_size); state an ``LSTMStateTuple(c, h)`` (any 2-tuple in that order)
    of two (B, num_units) tensors → output (B, num_units), new state ``LSTMStateTuple(c', h')``.
    With ``state_is_tuple=False`` the state is the slide's concatenation [c, h] of shape
    (B, 2·num_units) instead (TF deprecated it; kept because it is the lecture's code).

    Parameters (TF's names): ``kernel`` (input_size + num_units, 4·num_units) with columns
    [i | j | f | o], Glorot-uniform; ``bias`` (4·num_units,), zeros — the forget gate's head start
    is ``forget_bias``, added at every step rather than stored in the bias.

    The same function as PyTorch's ``LSTM`` with its gate order i, f, g, o (g = j): torch's
    ``weight_ih`` = the kernel's first input_size rows, transposed, with column blocks reordered
    i, f, j, o; ``weight_hh`` = its last num_units rows likewise; ``bias_ih`` = the bias reordered
    with ``forget_bias`` added to the f block; ``bias_hh`` = 0 (docs/rnn.md gives the code).

    Args:
        num_units: the size of the hidden and cell states.
        input_size: the number of input features.
        forget_bias: added to the forget gate's pre-activation (1.0: remember by default at the start).
        state_is_tuple: the state is an ``LSTMStateTuple(c, h)`` (default) or one (B, 2·num_units) tensor.
        activation: the nonlinearity of j and of the output, ``dlia.tanh`` by default.
        dtype: parameter dtype (float32 by default).
        generator: seeded source for the initial weights.
    """

    def __init__(self, num_units: int, input_size: int, forget_bias: float = 1.0, state_is_tuple: bool = True,
                 activation: Activation = ops.tanh, dtype: Any = numpy.float32, generator: Generator | None = None) -> None:
        super().__init__(num_units, input_size, activation, dtype)
        self.forget_bias, self.state_is_tuple = float(forget_bias), state_is_tuple
        self.kernel = self._kernel(4 * num_units, generator)
        self.bias = self._bias(4 * num_units, 0.0)

    @property
    def state_size(self) -> Any:
        """``LSTMStateTuple(num_units, num_units)``, or ``2·num_units`` when ``state_is_tuple=False``."""
        n = self.num_units
        return LSTMStateTuple(n, n) if self.state_is_tuple else 2 * n

    def forward(self, inputs: Tensor, state: Any) -> tuple[Tensor, Any]:
        if self.state_is_tuple:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(f"BasicLSTMCell: state must be a (c, h) pair, got {type(state).__name__} "
                                "(pass state_is_tuple=False for one concatenated [c, h] tensor)")
            c, h = state
            self._check(inputs, c, "c")
        else:
            if state.shape is not None and (len(state.shape) != 2 or not _fits(state.shape[1], 2 * self.num_units)):
                raise shape_error("BasicLSTMCell", f"expected the state [c, h] as (batch, {2 * self.num_units})",
                                  inputs.shape, state.shape)
            c, h = ops.split(state, self.num_units, axis=1)
        self._check(inputs, h, "h")
        i, j, f, o = ops.split(_linear([inputs, h], self.kernel, self.bias), self.num_units, axis=1)
        new_c = c * ops.sigmoid(f + self.forget_bias) + ops.sigmoid(i) * self.activation(j)
        new_h = self.activation(new_c) * ops.sigmoid(o)
        new_state = LSTMStateTuple(new_c, new_h) if self.state_is_tuple else ops.concatenate([new_c, new_h], axis=1)
        return new_h, new_state

    def extra_repr(self) -> str:
        extra = "" if self.forget_bias == 1.0 else f", forget_bias={self.forget_bias}"
        return super().extra_repr() + extra + ("" if self.state_is_tuple else ", state_is_tuple=False")


__all__ = ["BasicLSTMCell", "BasicRNNCell", "GRUCell", "LSTMStateTuple"]
