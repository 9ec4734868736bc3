"""Recurrent cells: the lecture's TF cells (``dlia.nn.rnn_cell``) and torch's (``nn.RNNCell/LSTMCell/GRUCell``).

Oracles: each slide equation transcribed in plain NumPy; ``torch.nn.LSTM`` with the TF LSTM's weights
mapped onto it; ``torch.nn.*Cell`` with copied weights (forward and every gradient); finite
differences (float64) through a few unrolled steps, with respect to inputs, state and parameters.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

import dlia
from dlia import nn
from dlia.nn import rnn_cell
from helpers import check_vjp, compare_graph_mode

B, I, H, T = 3, 4, 5, 4


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# -- the slides in plain NumPy ---------------------------------------------------------------------
def np_basic_rnn(x, h, kernel, bias):
    """h' = tanh(W·[x, h] + b)."""
    return np.tanh(np.concatenate([x, h], axis=1) @ kernel + bias)


def np_gru(x, h, gates_kernel, gates_bias, candidate_kernel, candidate_bias):
    """r, u = σ(W·[x, h] + b); c = tanh(W_c·[x, r∘h] + b_c); h' = u∘h + (1 − u)∘c."""
    ru = sigmoid(np.concatenate([x, h], axis=1) @ gates_kernel + gates_bias)
    r, u = ru[:, :H], ru[:, H:]
    c = np.tanh(np.concatenate([x, r * h], axis=1) @ candidate_kernel + candidate_bias)
    return u * h + (1 - u) * c


def np_lstm(x, c, h, kernel, bias, forget_bias):
    """i, j, f, o = W·[x, h] + b; c' = c∘σ(f + fb) + σ(i)∘tanh(j); h' = tanh(c')∘σ(o)."""
    i, j, f, o = np.split(np.concatenate([x, h], axis=1) @ kernel + bias, 4, axis=1)
    new_c = c * sigmoid(f + forget_bias) + sigmoid(i) * np.tanh(j)
    return new_c, np.tanh(new_c) * sigmoid(o)


def randomize(cell: nn.Module, rng: np.random.Generator, scale: float = 0.5) -> dict[str, np.ndarray]:
    """Give every parameter (biases too) random values, so a misplaced bias or gate shows."""
    values = {}
    for name, p in cell.named_parameters():
        p.data = rng.normal(0.0, scale, p.shape).astype(p.dtype)
        values[name] = p.data.copy()
    return values


@contextmanager
def parameters_from(cell: nn.Module, tensors: dict[str, dlia.Tensor]):
    """Let ``cell`` read these tensors in place of its parameters (for check_vjp, which differentiates
    only the tensors it is given); its registered parameters are left as they are and restored."""
    saved = {name: getattr(cell, name) for name in tensors}
    for name, t in tensors.items():
        object.__setattr__(cell, name, t)  # bypass registration: forward reads the attribute
    try:
        yield
    finally:
        for name, p in saved.items():
            object.__setattr__(cell, name, p)


# -- the lecture's cells against the slides -------------------------------------------------------
def test_basic_rnn_cell_follows_the_slide():
    rng = np.random.default_rng(0)
    cell = rnn_cell.BasicRNNCell(H, I, dtype=np.float64)
    w = randomize(cell, rng)
    xs, h = rng.standard_normal((T, B, I)), rng.standard_normal((B, H))
    state, expected = dlia.tensor(h), h
    for x in xs:
        out, state = cell(dlia.tensor(x), state)
        expected = np_basic_rnn(x, expected, w["kernel"], w["bias"])
        assert out is state  # output = new_state
        np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-12)


def test_gru_cell_follows_the_slide():
    rng = np.random.default_rng(1)
    cell = rnn_cell.GRUCell(H, I, dtype=np.float64)
    w = randomize(cell, rng)
    xs, h = rng.standard_normal((T, B, I)), rng.standard_normal((B, H))
    state, expected = dlia.tensor(h), h
    for x in xs:
        out, state = cell(dlia.tensor(x), state)
        expected = np_gru(x, expected, w["gates_kernel"], w["gates_bias"], w["candidate_kernel"], w["candidate_bias"])
        assert out is state
        np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("forget_bias", [1.0, -0.7])
def test_basic_lstm_cell_follows_the_slide(forget_bias):
    rng = np.random.default_rng(2)
    cell = rnn_cell.BasicLSTMCell(H, I, forget_bias=forget_bias, dtype=np.float64)
    w = randomize(cell, rng)
    xs, c, h = rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    state = rnn_cell.LSTMStateTuple(dlia.tensor(c), dlia.tensor(h))
    for x in xs:
        out, state = cell(dlia.tensor(x), state)
        c, h = np_lstm(x, c, h, w["kernel"], w["bias"], forget_bias)
        assert isinstance(state, rnn_cell.LSTMStateTuple) and out is state.h
        np.testing.assert_allclose(state.c.numpy(), c, rtol=0, atol=1e-12)
        np.testing.assert_allclose(out.numpy(), h, rtol=0, atol=1e-12)


def test_basic_lstm_cell_with_the_slides_concatenated_state():
    rng = np.random.default_rng(3)
    cell = rnn_cell.BasicLSTMCell(H, I, state_is_tuple=False, dtype=np.float64)
    w = randomize(cell, rng)
    assert cell.state_size == 2 * H and cell.zero_state(B).shape == (B, 2 * H)
    xs, c, h = rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    state = dlia.tensor(np.concatenate([c, h], axis=1))
    for x in xs:
        out, state = cell(dlia.tensor(x), state)
        c, h = np_lstm(x, c, h, w["kernel"], w["bias"], 1.0)
        np.testing.assert_allclose(state.numpy(), np.concatenate([c, h], axis=1), rtol=0, atol=1e-12)
        np.testing.assert_allclose(out.numpy(), h, rtol=0, atol=1e-12)


def test_a_custom_activation_replaces_tanh():
    rng = np.random.default_rng(4)
    cell = rnn_cell.BasicRNNCell(H, I, activation=dlia.relu, dtype=np.float64)
    w = randomize(cell, rng)
    x, h = rng.standard_normal((B, I)), rng.standard_normal((B, H))
    out, _ = cell(dlia.tensor(x), dlia.tensor(h))
    np.testing.assert_allclose(out.numpy(), np.maximum(np.concatenate([x, h], 1) @ w["kernel"] + w["bias"], 0), atol=1e-12)


# -- the TF LSTM is torch's LSTM with mapped weights ---------------------------------------------
def tf_lstm_to_torch(kernel: np.ndarray, bias: np.ndarray, forget_bias: float) -> dict[str, torch.Tensor]:
    """TF's kernel (I + H, 4H) with column blocks [i | j | f | o] → torch's LSTM weights, blocks i, f, g, o."""
    n = kernel.shape[1] // 4
    order = np.concatenate([np.arange(k * n, (k + 1) * n) for k in (0, 2, 1, 3)])  # i, f, j(=g), o
    k, b = kernel[:, order], bias[order].copy()
    b[n : 2 * n] += forget_bias  # torch has no forget_bias: fold it into the f block
    return {"weight_ih_l0": torch.tensor(k[:I].T), "weight_hh_l0": torch.tensor(k[I:].T),
            "bias_ih_l0": torch.tensor(b), "bias_hh_l0": torch.zeros(4 * n, dtype=torch.float64)}


def test_basic_lstm_cell_matches_torch_lstm_with_mapped_weights():
    rng = np.random.default_rng(5)
    forget_bias = 1.0
    cell = rnn_cell.BasicLSTMCell(H, I, forget_bias=forget_bias, dtype=np.float64)
    w = randomize(cell, rng)
    xs_np, c0_np, h0_np = rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    ref = torch.nn.LSTM(I, H, num_layers=1, dtype=torch.float64)
    ref.load_state_dict(tf_lstm_to_torch(w["kernel"], w["bias"], forget_bias))

    xs, c0, h0 = (dlia.tensor(a, requires_grad=True) for a in (xs_np, c0_np, h0_np))
    state, outs = rnn_cell.LSTMStateTuple(c0, h0), []
    for t in range(T):
        out, state = cell(xs[t], state)
        outs.append(out)
    txs, tc0, th0 = (torch.tensor(a, requires_grad=True) for a in (xs_np, c0_np, h0_np))
    touts, (th, tc) = ref(txs, (th0[None], tc0[None]))

    np.testing.assert_allclose(dlia.stack(outs).numpy(), touts.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(state.c.numpy(), tc[0].detach().numpy(), rtol=0, atol=1e-12)

    # the same loss on both sides: the gradients must agree too, once mapped the same way
    u, uc = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    ((dlia.stack(outs) * dlia.tensor(u)).sum() + (state.c * dlia.tensor(uc)).sum()).backward()
    ((touts * torch.tensor(u)).sum() + (tc[0] * torch.tensor(uc)).sum()).backward()
    for ours, theirs in ((xs, txs), (c0, tc0), (h0, th0)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=0, atol=1e-12)
    mapped = tf_lstm_to_torch(cell.kernel.grad.numpy(), cell.bias.grad.numpy(), 0.0)
    np.testing.assert_allclose(mapped["weight_ih_l0"], ref.weight_ih_l0.grad, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mapped["weight_hh_l0"], ref.weight_hh_l0.grad, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mapped["bias_ih_l0"], ref.bias_ih_l0.grad, rtol=0, atol=1e-12)


# -- the TF cells' gradients against finite differences -------------------------------------------
def _unroll(cell: nn.Module, names: tuple[str, ...], lstm: bool):
    """fn(xs, *state, *params) → every step's output and the final state, for check_vjp."""

    def fn(xs, *rest):
        n_state = 2 if lstm else 1
        state, params = rest[:n_state], rest[n_state:]
        state = rnn_cell.LSTMStateTuple(*state) if lstm else state[0]
        outs = []
        with parameters_from(cell, dict(zip(names, params))):
            for t in range(xs.shape[0]):
                out, state = cell(xs[t], state)
                outs.append(out)
        return [*outs, *(state if lstm else [])]

    return fn


@pytest.mark.parametrize("kind", ["BasicRNNCell", "GRUCell", "BasicLSTMCell"])
def test_tf_cell_gradients_match_finite_differences(kind):
    rng = np.random.default_rng(6)
    cell = getattr(rnn_cell, kind)(H, I, dtype=np.float64)
    params = randomize(cell, rng)
    lstm = kind == "BasicLSTMCell"
    state = [rng.standard_normal((B, H)) for _ in range(2 if lstm else 1)]
    check_vjp(_unroll(cell, tuple(params), lstm), rng.standard_normal((3, B, I)), *state, *params.values(), seed=7)


def test_lstm_gradients_through_the_concatenated_state():
    rng = np.random.default_rng(8)
    cell = rnn_cell.BasicLSTMCell(H, I, state_is_tuple=False, dtype=np.float64)
    params = randomize(cell, rng)

    def fn(xs, state, kernel, bias):
        with parameters_from(cell, {"kernel": kernel, "bias": bias}):
            for t in range(xs.shape[0]):
                _, state = cell(xs[t], state)
        return state

    check_vjp(fn, rng.standard_normal((2, B, I)), rng.standard_normal((B, 2 * H)), *params.values(), seed=9)


# -- contract, initialisation, errors --------------------------------------------------------------
def test_tf_contract_sizes_and_zero_state():
    for cell in (rnn_cell.BasicRNNCell(H, I), rnn_cell.GRUCell(H, I)):
        assert cell.state_size == cell.output_size == H
        z = cell.zero_state(B)
        assert z.shape == (B, H) and z.dtype == np.float32 and not z.numpy().any()
    lstm = rnn_cell.BasicLSTMCell(H, I)
    assert lstm.state_size == rnn_cell.LSTMStateTuple(H, H) and lstm.output_size == H
    z = lstm.zero_state(B, dlia.float64)
    assert isinstance(z, rnn_cell.LSTMStateTuple) and z.c.shape == z.h.shape == (B, H) and z.h.dtype == np.float64
    out, state = lstm(dlia.zeros(B, I), z)
    assert out.shape == (B, H) and out.dtype == np.float64  # float32 parameters, float64 state: promoted as torch


def test_tf_cells_are_initialised_as_tf():
    cells = {kind: getattr(rnn_cell, kind)(64, 32, generator=dlia.Generator(0))
             for kind in ("BasicRNNCell", "GRUCell", "BasicLSTMCell")}
    assert [n for n, _ in cells["GRUCell"].named_parameters()] == [
        "gates_kernel", "gates_bias", "candidate_kernel", "candidate_bias"]
    np.testing.assert_array_equal(cells["GRUCell"].gates_bias.numpy(), np.ones(128))  # "not reset, not update"
    for cell in cells.values():
        for name, p in cell.named_parameters():
            if name.endswith("bias"):
                if name != "gates_bias":
                    assert not p.numpy().any(), name
                continue
            fan_in, fan_out = p.shape
            bound = np.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform, TF's default for kernels
            assert p.numpy().max() <= bound and p.numpy().min() >= -bound
            assert p.numpy().max() > 0.95 * bound and p.numpy().std() == pytest.approx(bound / np.sqrt(3), rel=0.05)
    again = rnn_cell.BasicLSTMCell(64, 32, generator=dlia.Generator(0))
    np.testing.assert_array_equal(again.kernel.numpy(), cells["BasicLSTMCell"].kernel.numpy())


def test_tf_cells_reject_bad_shapes_and_arguments():
    cell = rnn_cell.GRUCell(H, I)
    with pytest.raises(dlia.ShapeError, match=r"GRUCell: expected inputs \(batch, 4\) and state \(batch, 5\)"):
        cell(dlia.zeros(B, I + 1), cell.zero_state(B))
    with pytest.raises(dlia.ShapeError, match=r"\(3, 4\), \(2, 5\)"):
        cell(dlia.zeros(B, I), cell.zero_state(2))
    with pytest.raises(dlia.ShapeError):
        cell(dlia.zeros(I), dlia.zeros(H))
    lstm = rnn_cell.BasicLSTMCell(H, I)
    with pytest.raises(TypeError, match="state must be a \\(c, h\\) pair"):
        lstm(dlia.zeros(B, I), dlia.zeros(B, 2 * H))
    with pytest.raises(dlia.ShapeError, match="state \\[c, h\\]"):
        rnn_cell.BasicLSTMCell(H, I, state_is_tuple=False)(dlia.zeros(B, I), dlia.zeros(B, H))
    with pytest.raises(ValueError, match="num_units must be a positive integer"):
        rnn_cell.BasicRNNCell(0, I)
    with pytest.raises(ValueError, match="input_size"):
        rnn_cell.BasicRNNCell(H, None)
    with pytest.raises(TypeError, match="activation must be callable"):
        rnn_cell.BasicRNNCell(H, I, activation="relu")


def test_tf_cells_build_graphs_like_eager():
    """Called on graph placeholders the cells build a graph (parameters become constants) whose
    outputs and gradients equal eager mode's."""
    rng = np.random.default_rng(10)
    lstm, gru = rnn_cell.BasicLSTMCell(H, I, dtype=np.float64), rnn_cell.GRUCell(H, I, dtype=np.float64)
    randomize(lstm, rng), randomize(gru, rng)

    def fn(x, c, h):
        out, state = lstm(x, (c, h))
        return [out, state.c, gru(x, h)[0]]

    compare_graph_mode(fn, *(rng.standard_normal(s) for s in ((B, I), (B, H), (B, H))))


# -- torch's cells ----------------------------------------------------------------------------------
TORCH_CELLS = [
    ("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("RNNCell", {"bias": False}),
    ("LSTMCell", {}), ("LSTMCell", {"bias": False}), ("GRUCell", {}), ("GRUCell", {"bias": False}),
]


def twins(kind: str, options: dict, seed: int) -> tuple[nn.Module, torch.nn.Module]:
    """A torch cell and a dlia cell holding the same (float64) weights."""
    torch.manual_seed(seed)
    theirs = getattr(torch.nn, kind)(I, H, dtype=torch.float64, **options)
    ours = getattr(nn, kind)(I, H, dtype=np.float64, **options)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _run(cell, xs, state, lstm: bool):
    """Unroll over xs; returns every step's h stacked (and the last c for the LSTM)."""
    hs = []
    for t in range(xs.shape[0]):
        state = cell(xs[t], state)
        hs.append(state[0] if lstm else state)
    stack = torch.stack if isinstance(xs, torch.Tensor) else dlia.stack
    return [stack(hs), state[1]] if lstm else [stack(hs)]


@pytest.mark.parametrize(("kind", "options"), TORCH_CELLS, ids=[k + "".join(f"-{v}" for v in o.values()) for k, o in TORCH_CELLS])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_torch_cells_match_torch_forward_and_every_gradient(kind, options, batched):
    rng = np.random.default_rng(11)
    ours, theirs = twins(kind, options, 11)
    lead = (B,) if batched else ()
    lstm = kind == "LSTMCell"
    xs = rng.standard_normal((T, *lead, I))
    states = [rng.standard_normal((*lead, H)) for _ in range(2 if lstm else 1)]
    d_in = [dlia.tensor(a, requires_grad=True) for a in (xs, *states)]
    t_in = [torch.tensor(a, requires_grad=True) for a in (xs, *states)]
    d_out = _run(ours, d_in[0], tuple(d_in[1:]) if lstm else d_in[1], lstm)
    t_out = _run(theirs, t_in[0], tuple(t_in[1:]) if lstm else t_in[1], lstm)
    us = [rng.standard_normal(o.shape) for o in t_out]
    for d, t in zip(d_out, t_out):
        assert d.shape == tuple(t.shape)
        np.testing.assert_allclose(d.numpy(), t.detach().numpy(), rtol=0, atol=1e-12)
    sum((d * dlia.tensor(u)).sum() for d, u in zip(d_out, us)).backward()
    sum((t * torch.tensor(u)).sum() for t, u in zip(t_out, us)).backward()
    for d, t in zip(d_in, t_in):
        np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), rtol=0, atol=1e-12)
    theirs_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(theirs_params)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize(("kind", "options"), TORCH_CELLS, ids=[k + "".join(f"-{v}" for v in o.values()) for k, o in TORCH_CELLS])
def test_torch_cells_unrolled_equal_the_fused_sequence_layers(kind, options):
    """The readable cells are the reference of nn.RNN/GRU/LSTM (one fused op per sequence): with the
    same weights, the cell stepped over a sequence gives the layer's outputs, final state and gradients."""
    rng = np.random.default_rng(16)
    cell, _ = twins(kind, options, 16)
    layer = getattr(nn, kind[: -len("Cell")])(I, H, dtype=np.float64, **options)
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    lstm = kind == "LSTMCell"
    xs = rng.standard_normal((T, B, I))
    states = [rng.standard_normal((B, H)) for _ in range(2 if lstm else 1)]
    c_in = [dlia.tensor(a, requires_grad=True) for a in (xs, *states)]
    l_in = [dlia.tensor(a, requires_grad=True) for a in (xs, *states)]
    c_out = _run(cell, c_in[0], tuple(c_in[1:]) if lstm else c_in[1], lstm)
    out, h_n = layer(l_in[0], tuple(s[None] for s in l_in[1:]) if lstm else l_in[1][None])
    l_out = [out, h_n[1][0]] if lstm else [out]
    for c, l in zip(c_out, l_out):
        np.testing.assert_allclose(l.numpy(), c.numpy(), rtol=0, atol=1e-12)
    us = [dlia.tensor(rng.standard_normal(o.shape)) for o in c_out]
    sum((o * u).sum() for o, u in zip(c_out, us)).backward()
    sum((o * u).sum() for o, u in zip(l_out, us)).backward()
    for c, l in zip(c_in, l_in):
        np.testing.assert_allclose(l.grad.numpy(), c.grad.numpy(), rtol=0, atol=1e-12)
    grads = {f"{n}_l0": p.grad.numpy() for n, p in cell.named_parameters()}
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads[name], rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_torch_cells_start_from_zeros_without_a_state(kind):
    ours, theirs = twins(kind, {}, 12)
    for shape in ((B, I), (I,)):
        x = np.random.default_rng(12).standard_normal(shape)
        got, want = ours(dlia.tensor(x)), theirs(torch.tensor(x))
        for g, w in zip(*(o if kind == "LSTMCell" else (o,) for o in (got, want))):
            assert g.shape == tuple(w.shape)
            np.testing.assert_allclose(g.numpy(), w.detach().numpy(), rtol=0, atol=1e-12)


def test_torch_cells_are_initialised_as_torch():
    hidden = 50
    cell = nn.LSTMCell(20, hidden, generator=dlia.Generator(0))
    assert {n: p.shape for n, p in cell.named_parameters()} == {
        "weight_ih": (200, 20), "weight_hh": (200, 50), "bias_ih": (200,), "bias_hh": (200,)}
    bound = 1 / np.sqrt(hidden)
    for name, p in cell.named_parameters():
        v = p.numpy()
        assert p.dtype == np.float32 and v.min() >= -bound and v.max() <= bound, name
        assert v.std() == pytest.approx(bound / np.sqrt(3), rel=0.15), name  # U(−b, b) has σ = b/√3
    again = nn.LSTMCell(20, hidden, generator=dlia.Generator(0))
    np.testing.assert_array_equal(again.weight_hh.numpy(), cell.weight_hh.numpy())
    assert repr(nn.RNNCell(3, 4, bias=False, nonlinearity="relu")) == "RNNCell(3, 4, bias=False, nonlinearity='relu')"


def test_torch_cells_reject_what_torch_rejects():
    ours, theirs = twins("GRUCell", {}, 13)
    bad = [
        (np.zeros((2, B, I)), None),        # 3-D input
        (np.zeros((B, I + 1)), None),       # wrong input size
        (np.zeros((B, I)), np.zeros((2, H))),  # batch sizes differ
        (np.zeros((B, I)), np.zeros((B, H + 1))),  # wrong hidden size
        (np.zeros(I), np.zeros((1, H))),    # unbatched input, batched state
    ]
    for x, h in bad:
        with pytest.raises((RuntimeError, ValueError)):
            theirs(torch.tensor(x), None if h is None else torch.tensor(h))
        with pytest.raises(dlia.ShapeError, match="GRUCell"):
            ours(dlia.tensor(x), None if h is None else dlia.tensor(h))
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'"):
        nn.RNNCell(I, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        nn.LSTMCell(I, 0)
    with pytest.raises(TypeError, match=r"\(h, c\) pair"):
        nn.LSTMCell(I, H)(dlia.zeros(B, I), dlia.zeros(B, H))


@pytest.mark.gpu
def test_cells_on_gpu_match_cpu():
    if not dlia.gpu_available:
        pytest.skip("no GPU: needs CuPy and a CUDA device")
    rng = np.random.default_rng(14)
    lstm, gru = rnn_cell.BasicLSTMCell(H, I, dtype=np.float64), nn.GRUCell(I, H, dtype=np.float64)
    randomize(lstm, rng)
    arrays = [rng.standard_normal(s) for s in ((B, I), (B, H), (B, H))]
    results = []
    for device in ("cpu", "gpu"):
        lstm.to(device), gru.to(device)
        lstm.zero_grad(), gru.zero_grad()
        x, c, h = (dlia.tensor(a, requires_grad=True, device=device) for a in arrays)
        out, state = lstm(x, (c, h))
        g = gru(x, h)
        ((out * out).sum() + state.c.sum() + (g * g).sum()).backward()
        params = [*lstm.parameters(), *gru.parameters()]
        results.append([t.numpy() for t in (out, state.c, g)] + [t.grad.numpy() for t in (x, c, h, *params)])
    for cpu, gpu in zip(*results):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-10, atol=1e-12)


# -- the docs example -----------------------------------------------------------------------------
DOCS = Path(__file__).resolve().parents[2] / "docs" / "rnn.md"


def cells_section_blocks() -> list[str]:
    """The Python blocks of docs/rnn.md's ``## Cells`` section, in order."""
    text = DOCS.read_text(encoding="utf-8")
    section = re.search(r"^## Cells\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, "docs/rnn.md lost its ## Cells section"
    return re.findall(r"```python\n(.*?)```", section[1], re.S)


def test_the_docs_cell_examples_run_and_are_right(capsys):
    """docs/rnn.md's Cells examples run as written, from the public API only: the lecture's
    ``state = cell(input, state)`` recursion computes the slide's equation, and the weight mapping
    turns a BasicLSTMCell into a torch.nn.LSTM that computes the same thing."""
    blocks = cells_section_blocks()
    assert len(blocks) == 2
    scope: dict = {}
    exec(compile(blocks[0], str(DOCS), "exec"), scope)  # our own docs, run as a test
    assert capsys.readouterr().out == "(6, 4)\n"
    cell = scope["cell"]
    state = scope["init_state"].numpy()
    assert len(scope["rnn_inputs"]) == len(scope["rnn_outputs"]) == 5
    for x, out in zip(scope["rnn_inputs"], scope["rnn_outputs"]):
        state = np_basic_rnn(x.numpy(), state, cell.kernel.numpy(), cell.bias.numpy())
        np.testing.assert_allclose(out.numpy(), state, rtol=1e-6, atol=1e-6)
    assert scope["final_state"] is scope["rnn_outputs"][-1]
    assert cell.kernel.grad is not None and np.abs(cell.kernel.grad.numpy()).sum() > 0  # the loss reached W

    exec(compile(blocks[1], str(DOCS), "exec"), scope)
    lstm, layer = scope["lstm"], scope["layer"]
    ref = torch.nn.LSTM(3, 8)
    ref.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in scope["torch_weights"].items()})
    xs = np.random.default_rng(15).standard_normal((4, 2, 3)).astype(np.float32)
    state, outs = lstm.zero_state(2), []
    for x in xs:
        out, state = lstm(dlia.tensor(x), state)
        outs.append(out.numpy())
    with torch.no_grad():
        want, _ = ref(torch.from_numpy(xs))
    np.testing.assert_allclose(np.stack(outs), want.numpy(), rtol=1e-5, atol=1e-6)
    got, (h_n, c_n) = layer(dlia.tensor(xs))
    np.testing.assert_allclose(got.numpy(), np.stack(outs), rtol=1e-5, atol=1e-6)
    assert scope["outputs"].shape == (5, 2, 8) and scope["c_n"].shape == (1, 2, 8)


def test_torch_cells_refuse_mixed_dtypes_and_half_states_as_torch() -> None:
    for cell in (nn.RNNCell(3, 5), nn.GRUCell(3, 5), nn.LSTMCell(3, 5)):
        with pytest.raises(TypeError, match="float64"):  # torch: mat1 and mat2 must have the same dtype
            cell(dlia.zeros(2, 3, dtype=np.float64))
    with pytest.raises(TypeError, match="None"):
        nn.LSTMCell(3, 5)(dlia.zeros(2, 3), (dlia.zeros(2, 5), None))
    with pytest.raises(TypeError, match="float64"):
        nn.GRUCell(3, 5)(dlia.zeros(2, 3), dlia.zeros(2, 5, dtype=np.float64))


def test_cell_sizes_take_numpy_integers_and_refuse_booleans() -> None:
    assert nn.RNNCell(np.int64(3), np.int64(4)).weight_hh.shape == (4, 4)
    assert rnn_cell.BasicRNNCell(np.int64(4), input_size=np.int64(3)).kernel.shape == (7, 4)
    for make in (lambda: nn.RNNCell(3, True), lambda: nn.LSTMCell(True, 3), lambda: rnn_cell.GRUCell(True, input_size=3)):
        with pytest.raises(ValueError, match="positive integer"):
            make()


def test_a_numpy_state_is_taken_as_a_tensor() -> None:
    cell = nn.GRUCell(3, 5, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3))
    h = np.random.default_rng(1).standard_normal((2, 5))
    np.testing.assert_array_equal(cell(dlia.tensor(x), h).numpy(), cell(dlia.tensor(x), dlia.tensor(h)).numpy())


def test_torch_cells_on_a_placeholder_of_unknown_batch_start_from_zeros() -> None:
    from dlia import graph as G

    cells = [nn.RNNCell(3, 4), nn.GRUCell(3, 4), nn.LSTMCell(3, 4)]
    g = G.Graph()
    with g.as_default():
        x = G.placeholder((None, 3))
        outs = [cells[0](x), cells[1](x), cells[2](x)[1]]
    xv = np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32)
    with G.Session(graph=g) as sess:
        got = sess.run(outs, {x: xv})
    expected = [cells[0](dlia.tensor(xv)), cells[1](dlia.tensor(xv)), cells[2](dlia.tensor(xv))[1]]
    for a, b in zip(got, expected):
        np.testing.assert_allclose(np.asarray(a), b.numpy(), rtol=1e-6)
