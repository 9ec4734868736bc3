"""nn.RNN / nn.GRU / nn.LSTM against their torch.nn twins with copied weights, the fused ops against
finite differences, and the layers' argument and shape checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.helpers import check_vjp

import dlia
from dlia import nn
from dlia.core.ops import rnn as rnn_ops

MODES = ["LSTM", "GRU", "RNN", "RNN_relu"]


def _pair(mode: str, dtype: torch.dtype = torch.float64, **kw) -> tuple[torch.nn.Module, nn.Module]:
    name, extra = (mode, {}) if mode != "RNN_relu" else ("RNN", {"nonlinearity": "relu"})
    torch.manual_seed(hash(mode) % 1000)
    theirs = getattr(torch.nn, name)(**kw, **extra).to(dtype)
    ours = getattr(nn, name)(**kw, **extra, dtype=np.float64 if dtype == torch.float64 else np.float32)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


def _run(module, x, state, lstm: bool):
    out, st = module(x, state)
    return out, (list(st) if lstm else [st])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_layer_matches_torch_forward_and_every_gradient(mode, bidirectional, batch_first):
    theirs, ours = _pair(mode, input_size=5, hidden_size=7, num_layers=2, bidirectional=bidirectional,
                         batch_first=batch_first)
    rng = np.random.default_rng(0)
    d, lstm = 2 if bidirectional else 1, mode == "LSTM"
    x = rng.standard_normal((3, 6, 5) if batch_first else (6, 3, 5))
    states = [rng.standard_normal((2 * d, 3, 7)) for _ in range(2 if lstm else 1)]
    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    dx = dlia.tensor(x, requires_grad=True)
    ds = [dlia.tensor(s, requires_grad=True) for s in states]
    tout, tst = _run(theirs, tx, tuple(ts) if lstm else ts[0], lstm)
    dout, dst = _run(ours, dx, tuple(ds) if lstm else ds[0], lstm)
    assert dout.shape == tuple(tout.shape) and [s.shape for s in dst] == [tuple(s.shape) for s in tst]
    np.testing.assert_allclose(dout.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(dst, tst):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    # one random cotangent on the output and on every final state
    us = [rng.standard_normal(tuple(t.shape)) for t in [tout, *tst]]
    sum((t * torch.tensor(u)).sum() for t, u in zip([tout, *tst], us)).backward()
    total = None
    for o, u in zip([dout, *dst], us):
        term = (o * dlia.tensor(u)).sum()
        total = term if total is None else total + term
    total.backward()
    np.testing.assert_allclose(dx.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for a, b in zip(ds, ts):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, name).grad, p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_float32_matches_torch_and_keeps_float32(mode):
    theirs, ours = _pair(mode, torch.float32, input_size=16, hidden_size=32, num_layers=2, batch_first=True)
    x = np.random.default_rng(1).standard_normal((4, 20, 16)).astype(np.float32)
    tout = theirs(torch.tensor(x))[0]
    dout = ours(dlia.tensor(x))[0]
    assert dout.dtype == np.float32
    np.testing.assert_allclose(dout.numpy(), tout.detach().numpy(), rtol=1e-4, atol=2e-5)


def test_state_dict_names_and_shapes_are_torchs():
    for mode in ("LSTM", "GRU", "RNN"):
        t = getattr(torch.nn, mode)(3, 4, num_layers=2, bidirectional=True, bias=True)
        d = getattr(nn, mode)(3, 4, num_layers=2, bidirectional=True, bias=True)
        assert {k: tuple(v.shape) for k, v in t.state_dict().items()} == {k: v.shape for k, v in d.state_dict().items()}
        t = getattr(torch.nn, mode)(3, 4, bias=False)
        d = getattr(nn, mode)(3, 4, bias=False)
        assert list(t.state_dict()) == list(d.state_dict())


def test_initial_state_defaults_to_zeros_and_unbatched_input_works():
    theirs, ours = _pair("LSTM", input_size=3, hidden_size=4, num_layers=2)
    x = np.random.default_rng(2).standard_normal((5, 3))  # (T, I): one sequence, as torch accepts
    tout, (th, tc) = theirs(torch.tensor(x))
    dout, (dh, dc) = ours(dlia.tensor(x))
    assert dout.shape == (5, 4) and dh.shape == (2, 4) and dc.shape == (2, 4)
    np.testing.assert_allclose(dout.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dc.numpy(), tc.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_truncated_bptt_carries_the_state_across_chunks():
    """Two halves with the state carried (detached) give the same outputs as the whole sequence."""
    _, ours = _pair("GRU", input_size=3, hidden_size=4)
    x = np.random.default_rng(3).standard_normal((10, 2, 3))
    whole, _ = ours(dlia.tensor(x))
    first, h = ours(dlia.tensor(x[:6]))
    second, _ = ours(dlia.tensor(x[6:]), h.detach())
    np.testing.assert_allclose(np.concatenate([first.numpy(), second.numpy()]), whole.numpy(), rtol=1e-12)


def test_dropout_between_layers_only_while_training():
    gen = dlia.Generator(0)
    layer = nn.LSTM(3, 8, num_layers=3, dropout=0.5, generator=gen, dtype=np.float64)
    x = dlia.tensor(np.random.default_rng(4).standard_normal((4, 2, 3)))
    layer.eval()
    a, b = layer(x)[0].numpy(), layer(x)[0].numpy()
    np.testing.assert_array_equal(a, b)
    layer.train()
    c, d = layer(x)[0].numpy(), layer(x)[0].numpy()
    assert not np.array_equal(c, a) and not np.array_equal(c, d)
    single = nn.LSTM(3, 8, num_layers=1, dropout=0.5, generator=dlia.Generator(0))  # no layer after the last: no dropout
    np.testing.assert_array_equal(single(x.float())[0].numpy(), single(x.float())[0].numpy())


def test_frozen_weights_get_no_gradient():
    layer = nn.LSTM(3, 4, dtype=np.float64)
    layer.weight_ih_l0.requires_grad = False
    out, _ = layer(dlia.tensor(np.ones((2, 1, 3))))
    out.sum().backward()
    assert layer.weight_ih_l0.grad is None and layer.weight_hh_l0.grad is not None


def test_shape_and_argument_errors_name_the_problem():
    layer = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(dlia.ShapeError, match="input_size=3"):
        layer(dlia.zeros(5, 2, 7))
    with pytest.raises(dlia.ShapeError, match=r"h0 of shape \(2, 2, 4\)"):
        layer(dlia.zeros(5, 2, 3), (dlia.zeros(1, 2, 4), dlia.zeros(2, 2, 4)))
    with pytest.raises(TypeError, match="pair"):
        layer(dlia.zeros(5, 2, 3), dlia.zeros(2, 2, 4))
    with pytest.raises(dlia.ShapeError, match="empty"):
        layer(dlia.zeros(0, 2, 3))
    with pytest.raises(ValueError, match="hidden_size"):
        nn.GRU(3, 0)
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="dtype"):
        nn.LSTM(3, 4)(dlia.zeros(2, 1, 3, dtype=np.float64))


# -- the fused ops against finite differences ----------------------------------------------------
@pytest.mark.parametrize("reverse", [False, True])
def test_lstm_op_gradients_match_finite_differences(reverse):
    rng = np.random.default_rng(5)
    t, b, i, h = 4, 2, 3, 3
    arrays = [rng.standard_normal(s) * 0.5 for s in [(t, b, i), (b, h), (b, h), (4 * h, i), (4 * h, h), (4 * h,), (4 * h,)]]
    check_vjp(lambda *a: rnn_ops.LSTM.apply(*a, reverse=reverse), *arrays)


@pytest.mark.parametrize("reverse", [False, True])
def test_gru_op_gradients_match_finite_differences(reverse):
    rng = np.random.default_rng(6)
    t, b, i, h = 4, 2, 3, 3
    arrays = [rng.standard_normal(s) * 0.5 for s in [(t, b, i), (b, h), (3 * h, i), (3 * h, h), (3 * h,), (3 * h,)]]
    check_vjp(lambda *a: rnn_ops.GRU.apply(*a, reverse=reverse), *arrays)


@pytest.mark.parametrize("relu", [False, True])
def test_rnn_op_gradients_match_finite_differences(relu):
    rng = np.random.default_rng(7)
    t, b, i, h = 4, 2, 3, 3
    arrays = [rng.standard_normal(s) * 0.5 for s in [(t, b, i), (b, h), (h, i), (h, h)]]  # no bias
    check_vjp(lambda *a: rnn_ops.RNN.apply(*a, relu=relu), *arrays)


def test_a_sequence_is_one_node_of_the_graph():
    """The fused op: a 2-layer LSTM over 50 steps adds a handful of autodiff nodes, not thousands."""
    layer = nn.LSTM(4, 8, num_layers=2)
    out, _ = layer(dlia.zeros(50, 3, 4))
    from dlia.core.autodiff import topological_order

    assert len(topological_order(out.sum())) < 10


@pytest.mark.gpu
@pytest.mark.skipif(not dlia.gpu_available, reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_layers_on_the_gpu_equal_the_cpu(mode):
    rng = np.random.default_rng(8)
    layer = getattr(nn, mode)(3, 5, num_layers=2, bidirectional=True, dtype=np.float64)
    x = rng.standard_normal((6, 2, 3))
    results = []
    for dev in ("cpu", "gpu"):
        layer.to(dev)
        xt = dlia.tensor(x, requires_grad=True, device=dev)
        out = layer(xt)[0]
        (out * out).sum().backward()
        results.append((out.numpy(), xt.grad if dev == "cpu" else dlia.tensor(xt.grad).numpy()))
        layer.zero_grad()
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-10)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-10)


def test_the_docs_sequence_layer_example_runs_as_written():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "rnn.md").read_text()
    section = text.split("## Sequence layers", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(code, "docs/rnn.md", "exec"), scope)
    assert scope["out"].shape == (50, 100, 128) and scope["h_n"].shape == (2, 50, 128)
    assert scope["out2"].shape == (50, 100, 128) and scope["c2"].shape == (2, 50, 128)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_embedded_equals_the_layer_on_the_embedded_ids(mode, batch_first, bias):
    """forward_embedded(E, ids) projects the table E·W_ihᵀ instead of each embedded step: the same
    outputs, final states and gradients (of E, of every weight, of the initial state) as
    layer(embedding(E, ids)), float64 and float32."""
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
        _, ours = _pair(mode, torch.float64 if dtype == np.float64 else torch.float32, input_size=4, hidden_size=5,
                        num_layers=2, bias=bias, batch_first=batch_first)
        rng = np.random.default_rng(3)
        ids = rng.integers(0, 7, (3, 6))  # (B, T) or (T, B): the layer reads either as its layout says
        emb = dlia.tensor(rng.standard_normal((7, 4)).astype(dtype), requires_grad=True)
        lstm = mode == "LSTM"
        h0 = [dlia.tensor(rng.standard_normal((2, 3 if batch_first else 6, 5)).astype(dtype), requires_grad=True)
              for _ in range(2 if lstm else 1)]
        state = tuple(h0) if lstm else h0[0]
        results = []
        for embedded in (False, True):
            for t in (emb, *h0, *ours.parameters()):
                t.grad = None
            out, st = ours.forward_embedded(emb, ids, state) if embedded else ours(dlia.embedding(emb, ids), state)
            finals = list(st) if lstm else [st]
            probe = np.random.default_rng(4)
            loss = (out * dlia.tensor(probe.standard_normal(out.shape).astype(dtype))).sum()
            for f in finals:
                loss = loss + (f * dlia.tensor(probe.standard_normal(f.shape).astype(dtype))).sum()
            loss.backward()
            results.append([out.numpy(), *[f.numpy() for f in finals],
                            *[t.grad.numpy() for t in (emb, *h0, *ours.parameters())]])
        for a, b in zip(*results):
            assert a.dtype == dtype
            np.testing.assert_allclose(b, a, rtol=tol, atol=tol)


def test_forward_embedded_of_a_bidirectional_layer_embeds_first():
    _, ours = _pair("GRU", input_size=4, hidden_size=3, bidirectional=True)
    emb = dlia.tensor(np.random.default_rng(0).standard_normal((5, 4)))
    ids = np.array([[0, 4], [2, 2], [1, 3]])
    np.testing.assert_array_equal(ours.forward_embedded(emb, ids)[0].numpy(), ours(dlia.embedding(emb, ids))[0].numpy())


def test_a_projected_input_of_the_wrong_width_is_refused():
    _, ours = _pair("LSTM", input_size=4, hidden_size=3)
    with pytest.raises(ValueError, match="projected input has 4·hidden_size features"):
        ours(dlia.tensor(np.zeros((2, 1, 4))), projected=True)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_an_empty_batch_gives_empty_outputs_as_torch(mode):
    theirs, ours = _pair(mode, input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    x = dlia.tensor(np.zeros((5, 0, 3)), requires_grad=True)
    out, st = ours(x)
    tout, tst = theirs(torch.zeros(5, 0, 3, dtype=torch.float64))
    assert out.shape == tuple(tout.shape) == (5, 0, 8)
    out.sum().backward()
    assert x.grad.shape == (5, 0, 3) and not np.asarray(ours.weight_hh_l0.grad).any()


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("shape", [(5, None, 3), (None, 2, 3), (None, None, 3)])
def test_graph_mode_with_unknown_time_and_batch_sizes_equals_eager(mode, shape):
    """No initial state and a placeholder whose batch or length is known only at run time."""
    from dlia import graph as G

    layer = getattr(nn, mode)(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, generator=dlia.Generator(1))
    g = G.Graph()
    with g.as_default():
        x = G.placeholder(shape, dtype=np.float64)
        out, st = layer(x)
        h_n = st[0] if mode == "LSTM" else st
        loss = (out * out).sum() + h_n.sum()
        dx = G.gradients(loss, [x])[0]
    xv = np.random.default_rng(9).standard_normal((5, 2, 3))
    with G.Session(graph=g) as sess:
        got_out, got_dx = sess.run([out, dx], {x: xv})
    xt = dlia.tensor(xv, requires_grad=True)
    eout, est = layer(xt)
    ((eout * eout).sum() + (est[0] if mode == "LSTM" else est).sum()).backward()
    np.testing.assert_allclose(np.asarray(got_out), eout.numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got_dx), xt.grad, rtol=1e-12)


def test_forward_embedded_names_a_table_of_the_wrong_width():
    layer = nn.LSTM(4, 8)
    with pytest.raises(dlia.ShapeError, match=r"input_size=4\)"):
        layer.forward_embedded(dlia.zeros(10, 5), np.zeros((3, 2), np.int64))
