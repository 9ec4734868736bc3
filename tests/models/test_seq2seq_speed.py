"""The faster pieces of Seq2Seq's training path give what they replace (float64): the masked
encoder run equals the run by groups of one length, the fused decoder cell equals the nn cell."""

from __future__ import annotations

import numpy as np
import pytest

import dlia
from dlia import nn
from dlia.models.seq2seq import Seq2Seq, Seq2SeqConfig

LENGTHS = np.array([4, 2, 3, 4, 1, 6])


def _model(cell: str, bidirectional: bool, layers: int) -> Seq2Seq:
    cfg = Seq2SeqConfig(cell=cell, bidirectional=bidirectional, layers=layers, embedding_size=4, hidden_size=5, seed=2)
    return Seq2Seq(cfg, 9, 8).double()


def _run(m: Seq2Seq, fn, *args) -> list[np.ndarray]:
    """Outputs of ``fn`` and every parameter's gradient of a random projection of them."""
    for p in m.parameters():
        p.grad = None
    outs = [o for o in fn(*args) if o is not None]
    rng = np.random.default_rng(7)
    sum(((o * dlia.tensor(rng.standard_normal(o.shape))).sum() for o in outs), dlia.tensor(0.0)).backward()
    return [o.numpy() for o in outs] + [p.grad.numpy().copy() if p.grad is not None else np.zeros(p.shape)
                                        for p in m.parameters()]


@pytest.mark.parametrize("cell", ["gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_the_masked_encoder_equals_the_run_by_groups_of_one_length(cell, bidirectional, layers):
    """Outputs (zero at padding), final states and all gradients, for lengths in any order."""
    m = _model(cell, bidirectional, layers)
    src = np.random.default_rng(0).integers(3, 9, size=(len(LENGTHS), 7))
    src[np.arange(7)[None, :] >= LENGTHS[:, None]] = 0

    def masked():
        return m._encode_masked(src, LENGTHS, m.src_embedding(src))

    def projected():  # the first layer's projection from the table E·W_ihᵀ
        return m._encode_masked(src, LENGTHS)

    def groups():
        return m._encode_groups(m.src_embedding(src), LENGTHS)[:2]

    ref = _run(m, groups)
    for fn in (masked, projected):
        ours = _run(m, fn)
        assert (ours[0][np.arange(7)[None, :] >= LENGTHS[:, None]] == 0).all()
        for a, b in zip(ours, ref):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["gru", "lstm", "rnn_tanh", "rnn_relu"])
def test_the_fused_decoder_cell_equals_the_nn_cell(kind):
    gen = dlia.Generator(0)
    cell = {"gru": lambda: nn.GRUCell(3, 4, generator=gen), "lstm": lambda: nn.LSTMCell(3, 4, generator=gen),
            "rnn_tanh": lambda: nn.RNNCell(3, 4, generator=gen),
            "rnn_relu": lambda: nn.RNNCell(3, 4, nonlinearity="relu", generator=gen)}[kind]().double()
    m = _model("gru", False, 1)
    rng = np.random.default_rng(1)
    x = dlia.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    h = dlia.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    c = dlia.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    state = (h, c) if kind == "lstm" else h
    results = []
    for fn in (m._cell, lambda cl, x, s: cl(x, s)):
        for t in (x, h, c, *cell.parameters()):
            t.grad = None
        out = fn(cell, x, state)
        outs = list(out) if isinstance(out, tuple) else [out]
        sum((o * dlia.tensor(np.random.default_rng(i).standard_normal(o.shape))).sum() for i, o in enumerate(outs)).backward()
        results.append([o.numpy() for o in outs] + [t.grad.numpy().copy() for t in (x, h, c, *cell.parameters())
                                                     if t.grad is not None])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
