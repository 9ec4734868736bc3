"""The encoder–decoder: decoding (beam 1 = greedy, beam beats greedy), masking, attention, gradients,
learning a small task, bad inputs."""

from __future__ import annotations

import numpy
import pytest

from dlia import optim
from dlia.models.seq2seq import BOS, EOS, PAD, Seq2Seq, Seq2SeqConfig, length_penalty, pad_batch

SMALL = dict(embedding_size=4, hidden_size=5)
VARIANTS = [("gru", "bahdanau", False), ("lstm", "luong", True), ("rnn", "none", False), ("gru", "luong", False),
            ("lstm", "bahdanau", True), ("rnn", "none", True)]


def batch(rows_src: list[list[int]], rows_tgt: list[list[int]]) -> tuple[numpy.ndarray, ...]:
    """(src, src_len, tgt_in, tgt_out, tgt_len) of token lists (targets without BOS/EOS)."""
    src, src_len = pad_batch(rows_src)
    tgt_in, tgt_len = pad_batch([[BOS] + t for t in rows_tgt])
    tgt_out, _ = pad_batch([t + [EOS] for t in rows_tgt])
    return src, src_len, tgt_in, tgt_out, tgt_len


SRC = [[3, 4, 5, 6], [7, 3], [5, 5, 6]]
TGT = [[4, 5], [6, 7, 3, 3], [5]]


def model(cell: str = "gru", attention: str = "bahdanau", bidirectional: bool = False, layers: int = 1,
          seed: int = 0) -> Seq2Seq:
    cfg = Seq2SeqConfig(cell=cell, attention=attention, bidirectional=bidirectional, layers=layers, seed=seed, **SMALL)
    return Seq2Seq(cfg, 9, 8).double()


@pytest.mark.parametrize("cell,attention,bidirectional", VARIANTS)
def test_beam_one_equals_greedy(cell: str, attention: str, bidirectional: bool) -> None:
    m = model(cell, attention, bidirectional, layers=2, seed=3)
    src, src_len, *_ = batch(SRC, TGT)
    g = m.greedy_decode(src, src_len, max_len=7)
    b = m.beam_search(src, src_len, beam=1, max_len=7)
    assert g.sequences == b.sequences
    numpy.testing.assert_allclose(g.scores, b.scores, rtol=1e-12)
    if attention == "none":
        assert g.attention is None and b.attention is None
    else:
        for ga, ba in zip(g.attention, b.attention):
            numpy.testing.assert_allclose(ga[:, :ba.shape[1]], ba, rtol=1e-12)


def hand_built() -> Seq2Seq:
    """A decoder whose next-token distribution depends only on the previous token:
    after BOS: A 0.6, B 0.4; after A: EOS 0.4, A 0.3, B 0.3; after B: EOS 0.98, A 0.01, B 0.01.
    Greedy takes A (0.6) then EOS: 0.24; the best sequence is B EOS: 0.392."""
    cfg = Seq2SeqConfig(cell="rnn", attention="none", embedding_size=5, hidden_size=5)
    m = Seq2Seq(cfg, 4, 5).double()
    A, B = 3, 4
    table = numpy.full((5, 5), 1e-9)  # table[prev, next]
    table[BOS, [A, B]] = 0.6, 0.4
    table[A, [EOS, A, B]] = 0.4, 0.3, 0.3
    table[B, [EOS, A, B]] = 0.98, 0.01, 0.01
    table[[PAD, EOS]] = 0.2
    state = {k: v.numpy() for k, v in m.state_dict().items()}
    state["tgt_embedding.weight"] = numpy.eye(5)
    state["decoder.0.weight_ih"] = 30 * numpy.eye(5)  # h = tanh(30·one_hot(prev)) ≈ one_hot(prev)
    state["decoder.0.weight_hh"] = numpy.zeros((5, 5))
    state["decoder.0.bias_ih"] = state["decoder.0.bias_hh"] = numpy.zeros(5)
    table /= table.sum(axis=1, keepdims=True)
    state["out.weight"] = numpy.log(table).T  # logits = log table[prev]
    state["out.bias"] = numpy.zeros(5)
    m.load_state_dict(state)
    return m


def test_beam_finds_a_more_probable_sequence_than_greedy() -> None:
    m = hand_built()
    src, src_len = pad_batch([[1, 2, 3]])
    g = m.greedy_decode(src, src_len, max_len=5)
    b = m.beam_search(src, src_len, beam=2, max_len=5)
    assert g.sequences == [[3]] and b.sequences == [[4]]
    assert numpy.exp(g.scores[0]) == pytest.approx(0.24, abs=1e-6)
    assert numpy.exp(b.scores[0]) == pytest.approx(0.392, abs=1e-6)
    assert b.scores[0] > g.scores[0]
    assert m.beam_search(src, src_len, beam=1, max_len=5).sequences == g.sequences


def test_length_normalisation() -> None:
    assert length_penalty(1, 0.0) == 1.0 and length_penalty(7, 1.0) == 2.0
    m = hand_built()
    src, src_len = pad_batch([[1]])
    b = m.beam_search(src, src_len, beam=3, max_len=5, length_norm=0.7)
    assert b.normalized[0] == pytest.approx(b.scores[0] / length_penalty(len(b.sequences[0]) + 1, 0.7))


@pytest.mark.parametrize("cell,attention,bidirectional", VARIANTS)
def test_padding_does_not_change_results(cell: str, attention: str, bidirectional: bool) -> None:
    m = model(cell, attention, bidirectional, layers=2, seed=1)
    src, src_len, tgt_in, tgt_out, tgt_len = batch(SRC, TGT)
    logits, _ = m(src, src_len, tgt_in)
    loss = m.loss(src, src_len, tgt_in, tgt_out, tgt_len).item()
    # extra padding columns (filled with junk ids: they must never be read)
    wide = [numpy.pad(a, ((0, 0), (0, 3)), constant_values=5) for a in (src, tgt_in, tgt_out)]
    wlogits, _ = m(wide[0], src_len, wide[1])
    numpy.testing.assert_allclose(wlogits.numpy()[:, :tgt_in.shape[1]], logits.numpy(), atol=1e-12)
    assert m.loss(wide[0], src_len, wide[1], wide[2], tgt_len).item() == pytest.approx(loss, abs=1e-12)
    greedy = m.greedy_decode(src, src_len, max_len=6)
    assert m.greedy_decode(wide[0], src_len, max_len=6).sequences == greedy.sequences
    beam = m.beam_search(src, src_len, beam=3, max_len=6)
    assert m.beam_search(wide[0], src_len, beam=3, max_len=6).sequences == beam.sequences
    # each sentence alone = in the batch
    for i in range(len(SRC)):
        s1, l1, ti, to, tl = batch([SRC[i]], [TGT[i]])
        alone, _ = m(s1, l1, ti)
        numpy.testing.assert_allclose(alone.numpy()[0], logits.numpy()[i, :tl[0]], atol=1e-12)
        assert m.greedy_decode(s1, l1, max_len=6).sequences[0] == greedy.sequences[i]


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_attention_weights_sum_to_one_and_are_zero_on_padding(attention: str) -> None:
    m = model("gru", attention, True, seed=2)
    src, src_len, tgt_in, *_ = batch(SRC, TGT)
    _, weights = m(src, src_len, tgt_in)
    w = weights.numpy()  # (B, T, S)
    assert w.shape == (3, tgt_in.shape[1], src.shape[1])
    numpy.testing.assert_allclose(w.sum(axis=2), 1.0, atol=1e-12)
    for b, n in enumerate(src_len):
        assert (w[b, :, n:] == 0).all() and (w[b, :, :n] > 0).all()
    g = m.greedy_decode(src, src_len, max_len=4)
    for b, a in enumerate(g.attention):
        assert a.shape == (len(g.sequences[b]) + (len(g.sequences[b]) < 4), src.shape[1])
        numpy.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-12)
        assert (a[:, src_len[b]:] == 0).all()


@pytest.mark.parametrize("cell,attention,bidirectional", [("gru", "none", False), ("gru", "bahdanau", True),
                                                          ("lstm", "luong", True), ("rnn", "luong", False)])
def test_loss_gradients_match_finite_differences(cell: str, attention: str, bidirectional: bool) -> None:
    m = model(cell, attention, bidirectional, seed=4)
    data = batch(SRC, TGT)
    m.zero_grad()
    m.loss(*data).backward()
    rng = numpy.random.default_rng(0)
    eps = 1e-6
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        d = rng.standard_normal(p.shape)
        base = p.data.copy()
        p.data[...] = base + eps * d
        up = m.loss(*data).item()
        p.data[...] = base - eps * d
        down = m.loss(*data).item()
        p.data[...] = base
        grad = p.grad.numpy() if hasattr(p.grad, "numpy") else numpy.asarray(p.grad)
        assert (up - down) / (2 * eps) == pytest.approx(float((grad * d).sum()), rel=1e-5, abs=1e-8), name


def test_scheduled_sampling_is_seeded() -> None:
    data = batch(SRC, TGT)
    a = [model(seed=5).loss(*data, sampling=0.5).item() for _ in range(2)]
    assert a[0] == a[1]
    m = model(seed=5)
    assert m.loss(*data, sampling=0.0).item() != pytest.approx(m.loss(*data, sampling=1.0).item())


def reversal_rows(rng: numpy.random.Generator, n: int) -> list[list[int]]:
    """``n`` strings of 2–5 tokens from 6 (ids 3..8): 9,000 possible strings."""
    return [[int(t) for t in rng.integers(3, 9, size=rng.integers(2, 6))] for _ in range(n)]


def test_learns_to_reverse_digit_strings() -> None:
    """Reversing strings it never saw, 500 Adam steps of 32 strings (about 3 s): seed 0 gets them
    all right; seeds 0–9 (model and data) got 83–100 % (five of ten 100 %; 89–100 % before the speed
    work of docs/seq2seq.md "Speed": float32 rounding moves the trajectories at lr 0.02)."""
    cfg = Seq2SeqConfig(cell="gru", attention="bahdanau", embedding_size=16, hidden_size=32, bidirectional=True, seed=0)
    m = Seq2Seq(cfg, 9, 9)
    opt = optim.Adam(m.parameters(), lr=0.02)
    rng = numpy.random.default_rng(0)
    seen = set()
    for _ in range(500):
        rows = reversal_rows(rng, 32)
        seen.update(map(tuple, rows))
        opt.zero_grad()
        loss = m.loss(*batch(rows, [r[::-1] for r in rows]))
        loss.backward()
        opt.step()
    m.eval()
    held_out = [r for r in reversal_rows(numpy.random.default_rng(123), 2000) if tuple(r) not in seen][:200]
    assert len(held_out) == 200
    src, src_len = pad_batch(held_out)
    got = m.greedy_decode(src, src_len, max_len=8).sequences
    exact = numpy.mean([g == r[::-1] for g, r in zip(got, held_out)])
    assert exact >= 0.9, (exact, loss.item())


@pytest.mark.parametrize("bad,message", [
    (dict(src_len=[4, 2, 5]), "length 5 > the padded width 4"),
    (dict(src_len=[4, 0, 3]), "sequence 1 is empty"),
    (dict(src=[[3, 4, 5, 9], [7, 3, 0, 0], [5, 5, 6, 0]]), "id 9 at \\[0, 3\\] is out of range \\[0, 9\\)"),
    (dict(src=[[3, 4, 5, -1], [7, 3, 0, 0], [5, 5, 6, 0]]), "id -1 at \\[0, 3\\] is out of range"),
    (dict(tgt_out=[[4, 5, 8, 0, 0], [6, 7, 3, 3, 2], [5, 2, 0, 0, 0]]), "target id 8"),
    (dict(tgt_len=[3, 5, 6]), "target sequence 2 has length 6"),
    (dict(src=[3, 4, 5]), "must be a \\(batch, length\\) integer array"),
])
def test_bad_inputs_raise_one_clear_line(bad: dict, message: str) -> None:
    m = model()
    src, src_len, tgt_in, tgt_out, tgt_len = batch(SRC, TGT)
    args = dict(src=src, src_len=src_len, tgt_in=tgt_in, tgt_out=tgt_out, tgt_len=tgt_len) | bad
    with pytest.raises(ValueError, match=message) as info:
        m.loss(**args)
    assert "\n" not in str(info.value)
    if not {"tgt_out", "tgt_len"} & set(bad):
        with pytest.raises(ValueError, match=message):
            m.greedy_decode(args["src"], args["src_len"])
        with pytest.raises(ValueError, match=message):
            m.beam_search(args["src"], args["src_len"], beam=2)


def test_bad_config_and_decode_arguments() -> None:
    with pytest.raises(ValueError, match="attention must be one of"):
        Seq2SeqConfig(attention="dot")
    with pytest.raises(ValueError, match="cell must be one of"):
        Seq2SeqConfig(cell="transformer")
    with pytest.raises(ValueError, match="unknown seq2seq config keys: nope"):
        Seq2SeqConfig.from_dict({"nope": 1})
    m = model()
    src, src_len, *_ = batch(SRC, TGT)
    with pytest.raises(ValueError, match="beam must be"):
        m.beam_search(src, src_len, beam=0)
