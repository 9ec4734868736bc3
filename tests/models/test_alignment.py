"""Image–sentence ranking: the loss's gradients (finite differences, torch), same-sentence pairs left
out of the negatives, the retrieval metrics on a hand-made score matrix, the bidirectional RNN
against ``nn.GRU(bidirectional=True)``, learning, checkpoints and exact resume."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest

import dlia
from dlia import nn
from dlia.data import scenes_dataset
from dlia.data.shapes import WORDS
from dlia.io import CheckpointError, save_checkpoint
from dlia.models.alignment import (
    AlignConfig,
    Aligner,
    AlignError,
    AlignTrainer,
    Pairs,
    align,
    encode,
    first_hit_ranks,
    fit,
    load_model,
    make_vocab,
    pad_ids,
    parameter_shapes,
    rank_sentences,
    ranking_loss,
    read_checkpoint,
    retrieval_metrics,
    score_matrix,
    scores,
)

VOCAB = make_vocab(WORDS)
TINY = dict(embedding_size=6, hidden_size=8, channels=4, image_size=24)


def _inputs(seed: int = 0) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Regions (4, 3, 5), words (4, 6, 5) and a mask of sentences of 6, 2, 4 and 1 words, float64."""
    rng = numpy.random.default_rng(seed)
    v, s = rng.normal(size=(4, 3, 5)), rng.normal(size=(4, 6, 5))
    mask = numpy.arange(6)[None, :] < numpy.array([6, 2, 4, 1])[:, None]
    return v, s, mask


def _loss(v: numpy.ndarray, s: numpy.ndarray, mask: numpy.ndarray, group: numpy.ndarray, score: str) -> float:
    return ranking_loss(scores(dlia.tensor(v), dlia.tensor(s), mask, score), group, 0.7).item()


@pytest.mark.parametrize("score", ["words", "both"])
def test_ranking_loss_gradients_match_finite_differences(score: str) -> None:
    v, s, mask = _inputs()
    group = numpy.array([0, 1, 0, 2])  # scenes 0 and 2 share a sentence
    tv, ts = dlia.tensor(v, requires_grad=True), dlia.tensor(s, requires_grad=True)
    loss = ranking_loss(scores(tv, ts, mask, score), group, 0.7)
    assert loss.dtype == dlia.float64 and loss.item() > 0
    loss.backward()
    eps = 1e-6
    for x, g in ((v, tv.grad.numpy()), (s, ts.grad.numpy())):
        numeric = numpy.zeros_like(x)
        for i in numpy.ndindex(x.shape):
            old = x[i]
            x[i] = old + eps
            up = _loss(v, s, mask, group, score)
            x[i] = old - eps
            down = _loss(v, s, mask, group, score)
            x[i] = old
            numeric[i] = (up - down) / (2 * eps)
        numpy.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)
    assert numpy.all(ts.grad.numpy()[~mask] == 0)  # padding words get no gradient


@pytest.mark.parametrize("score", ["words", "both"])
def test_ranking_loss_matches_torch_autograd(score: str) -> None:
    torch = pytest.importorskip("torch")
    v, s, mask = _inputs(1)
    group = numpy.array([0, 1, 0, 2])
    tv, ts = dlia.tensor(v, requires_grad=True), dlia.tensor(s, requires_grad=True)
    loss = ranking_loss(scores(tv, ts, mask, score), group, 0.7)
    loss.backward()

    V, S = torch.tensor(v, requires_grad=True), torch.tensor(s, requires_grad=True)
    m = torch.tensor(mask)
    d = torch.einsum("nrh,bth->nrbt", V, S)
    sc = (d.max(dim=1).values * m).sum(dim=2)
    if score == "both":
        sc = sc + d.masked_fill(~m[None, None], -1e30).max(dim=3).values.sum(dim=1)
    diag = sc.diagonal()
    neg = torch.tensor(group[:, None] != group[None, :])
    cost = ((sc - diag[:, None] + 0.7).clamp(min=0) + (sc - diag[None, :] + 0.7).clamp(min=0)) * neg
    ref = cost.sum() / 4
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    numpy.testing.assert_allclose(tv.grad.numpy(), V.grad.numpy(), rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(ts.grad.numpy(), S.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_pairs_with_one_sentence_are_not_negatives() -> None:
    S = numpy.array([[5.0, 4.5, 1.0], [4.8, 5.0, 0.0], [2.0, 0.5, 3.0]])
    # scenes 0 and 1 share a sentence: only pairs with scene 2 count, margin 1
    #   image 0: sentence 2: max(0, 1 − 5 + 1) = 0;   sentence 0 → image 2: max(0, 2 − 5 + 1) = 0
    #   image 1: sentence 2: max(0, 0 − 5 + 1) = 0;   sentence 1 → image 2: max(0, 0.5 − 5 + 1) = 0
    #   image 2: sentences 0, 1: max(0, 2 − 3 + 1) + max(0, 0.5 − 3 + 1) = 0 + 0 ... and the columns:
    #   sentence 2 → images 0, 1: max(0, 1 − 3 + 1) + max(0, 0 − 3 + 1) = 0
    # so the loss is 0, although S_01 > S_00 − 1 and S_10 > S_11 − 1
    assert ranking_loss(dlia.tensor(S), numpy.array([0, 0, 1]), 1.0).item() == 0.0
    # with every sentence distinct those two pairs cost: image 0 vs sentence 1: 4.5 − 5 + 1 = 0.5,
    # sentence 0 vs image 1: 4.8 − 5 + 1 = 0.8 (row 0 / column 0), and 0.8 + 0.5 for scene 1: 2.6 / 3
    assert ranking_loss(dlia.tensor(S), numpy.array([0, 1, 2]), 1.0).item() == pytest.approx(2.6 / 3)


def test_recall_and_median_rank_of_a_hand_made_score_matrix() -> None:
    # 4 pairs; scenes 1 and 3 share a sentence (group 1)
    S = numpy.array([[9.0, 1.0, 2.0, 3.0],   # image 0: its sentence first → rank 1
                     [8.0, 2.0, 7.0, 1.0],   # image 1: sentences 1 and 3 are right; best right is 2.0, beaten by 8, 7 → 3
                     [1.0, 2.0, 3.0, 4.0],   # image 2: 4 (a right? no: group 1) beats 3 → rank 2
                     [0.0, 5.0, 6.0, 1.0]])  # image 3: right ones 5.0 and 1.0 → 5.0, beaten by 6 → rank 2
    group = numpy.array([0, 1, 2, 1])
    numpy.testing.assert_array_equal(first_hit_ranks(S, group), [1, 3, 2, 2])
    # sentence → image: column k; sentence 0: 9 best → 1; sentence 1: right images 1, 3 → max(2, 5) = 5, beaten
    # by 1? no: column 1 = [1, 2, 2, 5] → 5 first → 1; sentence 2: column [2, 7, 3, 6] → 3 beaten by 7, 6 → 3;
    # sentence 3: column [3, 1, 4, 1] → right images 1, 3 give 1, beaten by 3 and 4 → 3
    numpy.testing.assert_array_equal(first_hit_ranks(S.T, group), [1, 1, 3, 3])
    r = retrieval_metrics(S, group)
    assert r.i2t == {"R@1": 0.25, "R@5": 1.0, "R@10": 1.0, "median": 2.0}
    assert r.t2i == {"R@1": 0.5, "R@5": 1.0, "R@10": 1.0, "median": 2.0}
    assert r.mean_r1 == 0.375
    # a tie with the right answer counts against it
    assert first_hit_ranks(numpy.array([[1.0, 1.0], [0.0, 2.0]]), numpy.array([0, 1])).tolist() == [2, 1]


def test_the_two_rnns_are_a_bidirectional_gru_run_on_each_sentence_alone() -> None:
    config = AlignConfig(**TINY)
    model = Aligner(config, len(VOCAB), dlia.Generator(3)).double()
    ids, mask = pad_ids([encode(s, VOCAB) for s in ("a small red circle at the top", "a large blue square at the "
                                                    "center and a small green circle at the top left")])
    words = model.words(ids, mask).numpy()
    bi = nn.GRU(6, 8, batch_first=True, bidirectional=True).double()
    bi.load_state_dict({**{f"{k}": v for k, v in model.rnn_forward.state_dict().items()},
                        **{f"{k}_reverse": v for k, v in model.rnn_backward.state_dict().items()}})
    for b in range(2):
        n = int(mask[b].sum())
        out, _ = bi(model.embedding(ids[b:b + 1, :n]))
        h = out.numpy()[0]
        expected = numpy.maximum((h[:, :8] + h[:, 8:]) @ model.word.weight.numpy().T + model.word.bias.numpy(), 0)
        numpy.testing.assert_allclose(words[b, :n], expected, rtol=1e-12, atol=1e-12)


def test_score_matrix_in_numpy_equals_the_engine() -> None:
    v, s, mask = _inputs(2)
    for score in ("words", "both"):
        numpy.testing.assert_allclose(score_matrix(v, s, mask, score, chunk=3),
                                      scores(dlia.tensor(v), dlia.tensor(s), mask, score).numpy(), rtol=1e-12)


def test_encode_names_unknown_words() -> None:
    with pytest.raises(AlignError, match="'purple', 'rhombus' are not in the model's vocabulary"):
        encode("a purple rhombus at the top", VOCAB)
    with pytest.raises(AlignError, match="empty"):
        encode("  ", VOCAB)


def _pairs(n: int, seed: int, size: int = 24) -> Pairs:
    scenes = scenes_dataset(n, seed=seed, size=size)
    return Pairs.make(numpy.stack([s.image for s in scenes]), [s.sentence for s in scenes], VOCAB)


@pytest.fixture(scope="module")
def data() -> tuple[Pairs, Pairs]:
    return _pairs(240, 1), _pairs(60, 99)


def test_a_tiny_model_learns_to_rank(data: tuple[Pairs, Pairs]) -> None:
    train, test = data
    config = AlignConfig(**{**TINY, "channels": 8, "hidden_size": 16}, batch_size=20, learning_rate=1e-2,
                         max_epochs=8, eval_every=1000)
    trainer = AlignTrainer(config, VOCAB, train, test)
    before = trainer.evaluate()
    losses = [trainer.train_step() for _ in range(trainer.total_iterations)]
    after = trainer.evaluate()
    assert numpy.mean(losses[-12:]) < 0.5 * numpy.mean(losses[:12])
    # chance on 60 pairs is ~2 %; one-shape scenes repeat, so a little more
    assert after.mean_r1 > max(0.35, 3 * before.mean_r1), (before.line(), after.line())


def test_checkpoint_round_trip_and_exact_resume(data: tuple[Pairs, Pairs], tmp_path: Path) -> None:
    train, test = data
    config = AlignConfig(**TINY, batch_size=20, max_epochs=2, eval_every=7, seed=5)
    whole = AlignTrainer(config, VOCAB, train, test)
    assert fit(whole, tmp_path / "whole")
    names = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert [n[:17] for n in names] == ["align_epoch000.58", "align_epoch001.17", "align_epoch001.75", "align_epoch002.00"]

    part = AlignTrainer(config, VOCAB, train, test)
    fit(part, tmp_path / "part", max_steps=4)  # a stop between two evaluations: a checkpoint, nothing recorded
    first = next((tmp_path / "part").iterdir())
    resumed = AlignTrainer.resume(first, train, test)
    assert resumed.iteration == 4 and resumed.history["train_loss"] == part.history["train_loss"]
    assert resumed.history["val_iteration"] == [] and resumed.best_checkpoint is None
    assert fit(resumed, tmp_path / "part")
    for (k, a), (_, b) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items()):
        assert numpy.array_equal(a.numpy(), b.numpy()), k
    assert resumed.history == whole.history and resumed.best_checkpoint == whole.best_checkpoint

    model, vocab, ckpt = load_model(tmp_path / "whole" / names[-1])
    assert vocab == VOCAB and ckpt.extra["iteration"] == 24
    image = test.images[0]
    ranked = rank_sentences(model, vocab, image, test.sentences[:5])
    direct = score_matrix(*_embedded(whole.model, image, test.sentences[:5]), config.score)[0]
    assert sorted(s for _, s in ranked) == pytest.approx(sorted(direct))
    a = align(model, vocab, image, test.sentences[0])
    assert len(a.words) == len(a.regions) == len(a.scores) and a.all.shape == (len(a.words), 9)
    numpy.testing.assert_array_equal(a.regions, a.all.argmax(axis=1))

    with pytest.raises(CheckpointError, match="other scenes"):
        AlignTrainer.resume(first, train, _pairs(10, 3))


def _embedded(model: Aligner, image: numpy.ndarray, sentences: list[str]) -> tuple:
    from dlia.models.alignment import embed

    return embed(model, image[None], [encode(s, VOCAB) for s in sentences])


def test_a_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "x.npz", nn.Linear(2, 3), config={})
    with pytest.raises(CheckpointError, match="not a caption-align checkpoint"):
        read_checkpoint(path)
    config = AlignConfig(**TINY)
    model = Aligner(config, len(VOCAB))
    path = save_checkpoint(tmp_path / "y.npz", model, config={**config.to_dict(), "hidden_size": 9}, vocab=VOCAB)
    with pytest.raises(CheckpointError, match=r"region.weight of shape \(9, 8\)"):
        read_checkpoint(path)
    path = save_checkpoint(tmp_path / "z.npz", model, config=config.to_dict(), vocab=["a", "b"])
    with pytest.raises(CheckpointError, match="vocabulary"):
        read_checkpoint(path)
    assert set(parameter_shapes(config, len(VOCAB))) == set(model.state_dict())


def test_the_same_seed_gives_the_same_model(data: tuple[Pairs, Pairs]) -> None:
    train, test = data
    config = AlignConfig(**TINY, batch_size=20, max_epochs=1)
    a, b = (AlignTrainer(config, VOCAB, train, test) for _ in range(2))
    c = AlignTrainer(AlignConfig(**TINY, batch_size=20, max_epochs=1, seed=1), VOCAB, train, test)
    for t in (a, b, c):
        for _ in range(3):
            t.train_step()
    assert a.history == b.history and a.history != c.history


def test_config_is_checked() -> None:
    with pytest.raises(AlignError, match="image_size must be a multiple of 6"):
        AlignConfig(image_size=40)
    with pytest.raises(AlignError, match="batch_size"):
        AlignConfig(batch_size=1)
    with pytest.raises(AlignError, match="unknown align config keys: layers"):
        AlignConfig.from_dict({"layers": 2})
