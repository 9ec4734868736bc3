"""dlia.models.caption: the scene vocabulary, the Captioner against a torch twin and finite
differences, masking, greedy = beam 1, a short learning run, checkpoints and exact resume."""

from __future__ import annotations

import numpy
import pytest

import dlia
from dlia.cli.caption import SceneData
from dlia.data.shapes import WORDS, scene
from dlia.models.caption import (
    VOCAB,
    CaptionConfig,
    Captioner,
    CaptionTrainer,
    caption_batch,
    decode,
    encode,
    evaluate,
    load_model,
    parameter_count,
    parameter_shapes,
    prepare_images,
    read_checkpoint,
)
from dlia.models.decoding import beam_search, length_penalty
from dlia.models.seq2seq import BOS, EOS, PAD

TINY = dict(embedding_size=6, hidden_size=7, channels=(3, 4), image_size=8, train_size=24, val_size=6, batch_size=8,
            eval_every=2, max_epochs=2)


def tiny(cell: str = "gru", **more) -> CaptionConfig:
    return CaptionConfig(**{**TINY, "cell": cell, **more})


def pictures(n: int, size: int = 8, seed: int = 0) -> numpy.ndarray:
    return prepare_images([s.image for s in _scenes(n, seed)], size)


def _scenes(n: int, seed: int = 0, shapes: int | None = None, size: int = 32) -> list:
    rng = numpy.random.default_rng(seed)
    return [scene(rng, size, shapes) for _ in range(n)]


CAPTIONS = [encode("a small red circle at the top left"),
            encode("a large blue square at the center and a small green triangle at the bottom right"),
            encode("a small yellow triangle at the right")]


def test_vocabulary_shares_seq2seq_specials() -> None:
    assert VOCAB[:3] == ("<pad>", "<bos>", "<eos>") and (PAD, BOS, EOS) == (0, 1, 2)
    assert VOCAB[3:] == WORDS and len(VOCAB) == 21  # the model's copy of dlia.data.shapes.WORDS
    s = "a large blue square at the bottom left and a small red circle at the top"
    assert decode(encode(s)) == s and min(encode(s)) >= 3
    with pytest.raises(ValueError, match="'zebra' is not a scene word"):
        encode("a zebra")


def test_caption_batch_layout() -> None:
    tin, tout, lengths = caption_batch([[5, 6], [7]])
    assert tin.tolist() == [[BOS, 5, 6], [BOS, 7, PAD]]
    assert tout.tolist() == [[5, 6, EOS], [7, EOS, PAD]]
    assert lengths.tolist() == [3, 2]
    with pytest.raises(ValueError, match="outside the words"):
        caption_batch([[1]])


@pytest.mark.parametrize("bad,message", [
    (dict(cell="rnn"), "cell must be one of gru, lstm"),
    (dict(attention="luong"), "attention must be one of none, bahdanau"),
    (dict(hidden_size=0), "hidden_size must be an integer"),
    (dict(image_size=20), "image_size must be a multiple of 16"),
    (dict(channels=(4, 0)), "channels must be"),
    (dict(learning_rate=float("nan")), "learning_rate must be a finite number > 0"),
    (dict(seed=-1), "seed must be"),
    (dict(batch_size=True), "batch_size must be an integer"),
])
def test_config_is_checked(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CaptionConfig(**bad)
    with pytest.raises(ValueError, match="unknown caption config keys: layers"):
        CaptionConfig.from_dict({"layers": 2})


@pytest.mark.parametrize("attention", ["none", "bahdanau"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_parameter_count_and_shapes_follow_the_config(cell: str, attention: str) -> None:
    c = tiny(cell, attention=attention)
    m = Captioner(c)
    assert parameter_count(c) == sum(p.size for p in m.parameters())
    assert parameter_shapes(c) == {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert CaptionConfig.from_dict(c.to_dict()) == c


def test_prepare_images_resizes_with_a_box_filter() -> None:
    a = numpy.zeros((4, 4, 3), numpy.uint8)
    a[:2, :2] = 200  # the top-left 2×2 block → the top-left pixel at half size
    x = prepare_images([a, numpy.zeros((2, 2, 3), numpy.uint8)], 2)
    assert x.shape == (2, 3, 2, 2) and x.dtype == numpy.float32
    assert x[0, :, 0, 0] == pytest.approx([200 / 255] * 3) and (x[0, :, 1, 1] == 0).all()
    with pytest.raises(ValueError, match="uint8"):
        prepare_images([numpy.zeros((4, 4), numpy.uint8)], 2)


def _torch_twin(m: Captioner):
    pytest.importorskip("torch")
    from benchmarks.bench_caption import torch_twin

    return torch_twin(m)  # float64 like m; load_state_dict is strict: the same names and shapes


def _torch_loss(t, config: CaptionConfig, images: numpy.ndarray, captions: list[list[int]]):
    import torch
    from benchmarks.bench_caption import torch_logits

    tin, tout, lengths = caption_batch(captions)
    logits = torch_logits(t, config, torch.tensor(images), torch.tensor(tin))
    real = numpy.arange(tin.shape[1])[None, :] < lengths[:, None]
    target = torch.tensor(numpy.where(real, tout, -100))
    return torch.nn.functional.cross_entropy(logits.reshape(-1, len(VOCAB)), target.reshape(-1), ignore_index=-100)


@pytest.mark.parametrize("attention", ["none", "bahdanau"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_loss_and_gradients_equal_a_torch_twin(cell: str, attention: str) -> None:
    m = Captioner(tiny(cell, seed=3, attention=attention)).double()
    if attention == "bahdanau":  # position vectors start at zero: make them matter
        m.position.data[...] = numpy.random.default_rng(1).standard_normal(m.position.shape)
    t = _torch_twin(m)
    images = pictures(3).astype(numpy.float64)
    ours = m.loss(images, CAPTIONS)
    ours.backward()
    theirs = _torch_loss(t, m.config, images, CAPTIONS)
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-10)
    grads = dict(t.named_parameters())
    for name, p in m.named_parameters():
        numpy.testing.assert_allclose(p.grad.numpy(), grads[name].grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)
    # the BatchNorm statistics move the same way in training mode
    numpy.testing.assert_allclose(m.state_dict()["encoder.blocks.1.running_var"].numpy(),
                                  t.state_dict()["encoder.blocks.1.running_var"].numpy(), rtol=1e-10)


@pytest.mark.parametrize("cell,attention", [("gru", "none"), ("lstm", "none"), ("gru", "bahdanau"), ("lstm", "bahdanau")])
def test_loss_gradients_match_finite_differences(cell: str, attention: str) -> None:
    m = Captioner(tiny(cell, seed=4, attention=attention)).double()
    images = pictures(3, seed=1).astype(numpy.float64)
    m.zero_grad()
    m.loss(images, CAPTIONS).backward()
    rng = numpy.random.default_rng(0)
    eps = 1e-6
    for name, p in m.named_parameters():
        d = rng.standard_normal(p.shape)
        base = p.data.copy()
        p.data[...] = base + eps * d
        up = m.loss(images, CAPTIONS).item()
        p.data[...] = base - eps * d
        down = m.loss(images, CAPTIONS).item()
        p.data[...] = base
        assert (up - down) / (2 * eps) == pytest.approx(float((p.grad.numpy() * d).sum()), rel=1e-5, abs=1e-8), name


def test_padding_and_batch_neighbours_do_not_change_a_caption_loss() -> None:
    m = Captioner(tiny(seed=5))
    m.eval()  # BatchNorm on running statistics: a picture's features do not depend on its batch
    images = pictures(3, seed=2)
    with dlia.no_grad():
        whole = m.loss(images, CAPTIONS).item()
        alone = [m.loss(images[i:i + 1], [c]).item() for i, c in enumerate(CAPTIONS)]
        tokens = [len(c) + 1 for c in CAPTIONS]
        assert whole == pytest.approx(numpy.dot(alone, tokens) / sum(tokens), rel=1e-5)
        # what stands after a caption's end (PAD or anything else) never changes its logits
        tin, _, lengths = caption_batch(CAPTIONS)
        garbage = numpy.where(numpy.arange(tin.shape[1])[None, :] < lengths[:, None], tin, 7)
        a, b = m(images, tin).numpy(), m(images, garbage).numpy()
    for i, n in enumerate(lengths):
        numpy.testing.assert_array_equal(a[i, :n], b[i, :n])


@pytest.mark.parametrize("attention", ["none", "bahdanau"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_beam_one_equals_greedy(cell: str, attention: str) -> None:
    m = Captioner(tiny(cell, seed=6, attention=attention))
    m.eval()
    images = pictures(5, seed=3)
    greedy = m.greedy(images, max_len=9)
    assert m.beam(images, beam=1, max_len=9) == greedy
    assert all(len(g) <= 9 for g in greedy)
    assert m.caption(images, beam=1, max_len=9) == [decode(g) for g in greedy]


def test_beam_search_finds_a_more_probable_sequence_than_greedy() -> None:
    # tokens: 0 PAD, 1 BOS, 2 EOS, 3 A, 4 B. After BOS: A 0.6, B 0.4; after A: EOS 0.4, A 0.3, B 0.3;
    # after B: EOS 0.98. Greedy: A EOS (0.24); beam 2: B EOS (0.392).
    table = numpy.full((5, 5), 1e-12)
    table[BOS, [3, 4]] = 0.6, 0.4
    table[3, [EOS, 3, 4]] = 0.4, 0.3, 0.3
    table[4, [EOS, 3, 4]] = 0.98, 0.01, 0.01
    table[:, [PAD, BOS]] = 0

    def step(prev: numpy.ndarray, state: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray, None]:
        with numpy.errstate(divide="ignore"):
            return numpy.log(table[prev]), state, None

    def select(state: numpy.ndarray, rows: numpy.ndarray) -> numpy.ndarray:
        return state[rows]

    g = beam_search(step, select, numpy.zeros(1), BOS, EOS, beam=1, max_len=5)
    b = beam_search(step, select, numpy.zeros(1), BOS, EOS, beam=2, max_len=5)
    assert g.tokens == [3, EOS] and numpy.exp(g.score) == pytest.approx(0.24)
    assert b.tokens == [4, EOS] and numpy.exp(b.score) == pytest.approx(0.392)
    n = beam_search(step, select, numpy.zeros(1), BOS, EOS, beam=3, max_len=5, alpha=0.7)
    assert n.normalized == pytest.approx(n.score / length_penalty(len(n.tokens), 0.7))
    with pytest.raises(ValueError, match="beam must be an integer"):
        beam_search(step, select, numpy.zeros(1), BOS, EOS, beam=0, max_len=5)


def test_learns_to_name_colour_and_size_of_one_shape_scenes() -> None:
    """A restricted task that learns in seconds: one shape per scene, 16×16 pictures, the caption its
    colour and size ("red small"): 150 steps name held-out scenes (the size word comes a step after
    the colour word, so the picture must be carried in the state)."""
    config = CaptionConfig(embedding_size=32, hidden_size=64, channels=(8, 16), image_size=16, seed=0)
    train, test = _scenes(600, seed=0, shapes=1, size=64), _scenes(200, seed=1, shapes=1, size=64)
    x, xt = prepare_images([s.image for s in train], 16), prepare_images([s.image for s in test], 16)

    def words(s) -> str:
        return f"{s.shapes[0].colour} {s.shapes[0].size}"

    captions = [encode(words(s)) for s in train]
    m = Captioner(config)
    opt = dlia.optim.Adam(m.parameters(), lr=1e-2)
    rng = numpy.random.default_rng(0)
    for _ in range(150):
        idx = rng.choice(len(train), 32, replace=False)
        opt.zero_grad()
        m.loss(x[idx], [captions[i] for i in idx]).backward()
        opt.step()
    ev = evaluate(m, xt, [words(s) for s in test])
    assert ev.exact >= 0.8, ev.exact


def test_checkpoint_round_trip_and_exact_resume(tmp_path) -> None:
    config = tiny(seed=2, eval_every=3, max_epochs=3)
    data = SceneData(config)
    whole = CaptionTrainer(config, data)
    whole.fit(tmp_path / "whole")
    assert whole.iteration == 9 and len(whole.history["val_loss"]) == 3
    part = CaptionTrainer(config, data)
    assert part.fit(tmp_path / "part", max_steps=4) is False
    path = sorted((tmp_path / "part").glob("caption_epoch*.npz"))[-1]
    assert path.name.startswith("caption_epoch001.3_")
    resumed = CaptionTrainer.resume(path, SceneData)
    assert resumed.iteration == 4 and resumed.history == part.history
    resumed.fit(tmp_path / "part")
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    for k in a:
        numpy.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)
    # the stop at 4 (between two evaluations) wrote a checkpoint but recorded nothing
    assert whole.history == resumed.history and resumed.history["val_iteration"] == [3, 6, 9]
    assert (whole.best_val_loss, whole.best_checkpoint) == (resumed.best_val_loss, resumed.best_checkpoint)
    # a checkpoint holds the config, the vocabulary and weights that caption as the trainer's model did
    last = sorted((tmp_path / "whole").glob("caption_epoch*.npz"))[-1]
    c, ckpt = read_checkpoint(last)
    assert c == config and ckpt.vocab == list(VOCAB)
    model, _ = load_model(last)
    whole.model.eval()
    assert model.caption(data.val_images) == whole.model.caption(data.val_images)


def test_same_seed_same_scenes_and_weights() -> None:
    a, b = CaptionTrainer(tiny(seed=9), SceneData(tiny(seed=9))), CaptionTrainer(tiny(seed=9), SceneData(tiny(seed=9)))
    assert a.data.val_sentences == b.data.val_sentences
    assert [a.train_step() for _ in range(3)] == [b.train_step() for _ in range(3)]
    c = CaptionTrainer(tiny(seed=10), SceneData(tiny(seed=10)))
    assert c.data.val_sentences != a.data.val_sentences
    # training, validation and test scenes come from three different seeds
    assert len(set(tiny(seed=9).scene_seeds()) | set(tiny(seed=10).scene_seeds())) == 6


def test_attention_weights_are_a_distribution_over_the_cells_and_follow_greedy() -> None:
    m = Captioner(tiny(seed=11, attention="bahdanau"))
    m.eval()
    images = pictures(4, seed=5)
    seqs, atts = m.greedy_with_attention(images, max_len=6)
    assert seqs == m.greedy(images, max_len=6)
    G = m.encoder.grid ** 2
    for s, a in zip(seqs, atts, strict=True):
        assert len(a) == len(s)  # one picture of weights per word, none for EOS
        for w in a:
            assert w.shape == (G,) and (w >= 0).all() and w.sum() == pytest.approx(1, abs=1e-6)
    tin, _, _ = caption_batch(CAPTIONS)
    with dlia.no_grad():
        _, weights = m.forward_with_attention(pictures(3), tin)
    assert weights.shape == (3, tin.shape[1], G)
    numpy.testing.assert_allclose(weights.numpy().sum(axis=2), 1, atol=1e-6)
    assert Captioner(tiny(attention="none")).forward_with_attention(pictures(3), tin)[1] is None


def test_a_checkpoint_without_the_attention_field_is_the_plain_model(tmp_path) -> None:
    """Checkpoints written before attention existed have no "attention" in their config."""
    from dlia.io import save_checkpoint

    config = tiny(seed=12, attention="none")
    m = Captioner(config)
    old = {k: v for k, v in config.to_dict().items() if k != "attention"}
    path = save_checkpoint(tmp_path / "old.npz", m, config=old, vocab=list(VOCAB))
    c, _ = read_checkpoint(path)
    assert c.attention == "none"
    model, _ = load_model(path)
    m.eval()
    assert model.caption(pictures(2)) == m.caption(pictures(2))
