"""Translation tasks, vocabularies, length buckets, the trainer's exact resume, evaluation and translate."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest

from dlia.data.dates import HELD_OUT_STYLES, TRAIN_STYLES, dates_dataset
from dlia.data.tasks import dates_task, task_from_description, tsv_task
from dlia.io import CheckpointError
from dlia.models.seq2seq import Seq2Seq, Seq2SeqConfig
from dlia.models.translation import (
    UNK,
    Buckets,
    Seq2SeqTrainer,
    TokenVocab,
    TrainConfig,
    UnknownTokenError,
    evaluate,
    fit,
    parameter_count,
    parameter_shapes,
    read_checkpoint,
    training_bytes,
    translate,
    vocabularies,
)
from dlia.text import corpus_bleu

SMALL = Seq2SeqConfig(embedding_size=8, hidden_size=12, bidirectional=True)


def test_token_vocab_chars_and_words() -> None:
    v = TokenVocab.from_texts("char", ["ba", "ca"])
    assert v.tokens == ["a", "b", "c"] and v.size == 3 + 1 + 3
    assert v.encode("cab") == [UNK + 3, UNK + 1, UNK + 2]
    assert v.join(v.decode(v.encode("cab"))) == "cab"
    with pytest.raises(UnknownTokenError, match=r"unknown characters 'x', 'y'"):
        v.encode("axby")
    assert v.encode("axb", strict=False) == [UNK + 1, UNK, UNK + 2]
    w = TokenVocab.from_texts("word", ["the cat", "a  cat\tsat"])
    assert w.tokens == ["a", "cat", "sat", "the"]
    assert w.decode(w.encode("the dog", strict=False)) == ["the", "<unk>"]
    with pytest.raises(UnknownTokenError, match="unknown word 'dog'"):
        w.encode("the dog")
    assert TokenVocab.from_dict(w.to_dict()) == w
    with pytest.raises(ValueError):
        TokenVocab("word", ["a b"])


def test_dates_task_tests_unseen_dates_of_seen_and_held_out_styles() -> None:
    task = dates_task(500, seed=3, val_size=50, test_size=60)
    assert task.train == dates_dataset(500, TRAIN_STYLES, seed=12)
    seen = {s for s, _ in task.train}
    assert len(task.val) == 50 and set(task.tests) == {"seen styles", "held-out styles"}
    for pairs in (task.val, *task.tests.values()):
        assert not seen & {s for s, _ in pairs}
    assert set(task.tests["held-out styles"]) <= set(dates_dataset(120, HELD_OUT_STYLES, seed=15))
    assert task_from_description(task.description) == task
    src, tgt = vocabularies(task)  # fixed: every character of any style, held-out ones included
    assert all(not src.unknown(s) for s, _ in task.tests["held-out styles"])


def test_tsv_task_splits_by_a_seeded_shuffle_and_builds_vocabularies_from_training_only(tmp_path: Path) -> None:
    f = tmp_path / "p.tsv"
    f.write_text("".join(f"w{i} x{i % 3}\tv{i}\n" for i in range(20)), encoding="utf-8")
    task = tsv_task(f, "word", seed=1)
    assert (len(task.train), len(task.val), len(task.tests["test"])) == (16, 2, 2)
    assert sorted(task.train + task.val + task.tests["test"]) == sorted((f"w{i} x{i % 3}", f"v{i}") for i in range(20))
    assert tsv_task(f, "word", seed=1) == task and tsv_task(f, "word", seed=2).train != task.train
    src, tgt = vocabularies(task)
    assert set(tgt.tokens) == {t for _, t in task.train}
    held = task.val[0][1]
    assert tgt.unknown(held) == [held]
    f.write_text("a\tb\nc\td\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has 2 pairs"):
        tsv_task(f)
    f.write_text("".join(f"w{i} x{i % 3}\tv{i}\n" for i in range(21)), encoding="utf-8")
    with pytest.raises(ValueError, match="not the corpus"):
        task_from_description(task.description)


def test_buckets_cover_every_example_once_with_similar_lengths_and_are_reproducible() -> None:
    rng = numpy.random.default_rng(0)
    lengths = rng.integers(3, 30, size=1000)
    b = Buckets(lengths, batch_size=16, seed=5)
    assert all(len(x) >= 16 for x in b.buckets)
    spans = [(lengths[x].min(), lengths[x].max()) for x in b.buckets]
    assert all(hi < lo2 for (_, hi), (lo2, _) in zip(spans, spans[1:]))  # buckets of consecutive lengths
    e0 = b.epoch(0)
    assert len(e0) == b.n_batches
    assert sorted(numpy.concatenate(e0).tolist()) == list(range(1000))
    assert all(len(x) <= 16 for x in e0)
    bucket_of = numpy.empty(1000, int)
    for k, x in enumerate(b.buckets):
        bucket_of[x] = k
    assert all(len(set(bucket_of[x])) == 1 for x in e0)  # a batch never mixes buckets
    assert all(numpy.array_equal(x, y) for x, y in zip(e0, Buckets(lengths, 16, 5).epoch(0)))  # from (seed, epoch) alone
    assert any(not numpy.array_equal(x, y) for x, y in zip(e0, b.epoch(1)))


@pytest.mark.parametrize("cell,attention,bidirectional,layers", [("gru", "bahdanau", True, 1), ("lstm", "luong", True, 2),
                                                                 ("rnn", "none", False, 2), ("lstm", "luong", False, 1)])
def test_parameter_shapes_are_the_models(cell: str, attention: str, bidirectional: bool, layers: int) -> None:
    config = Seq2SeqConfig(cell=cell, attention=attention, bidirectional=bidirectional, layers=layers,
                           embedding_size=3, hidden_size=5)
    model = Seq2Seq(config, 9, 11)
    assert parameter_shapes(config, 9, 11) == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert parameter_count(config, 9, 11) == sum(p.size for p in model.parameters())
    assert training_bytes(config, 9, 11, 64, 30, 12) < training_bytes(config, 9, 11, 128, 30, 12)


def _params(trainer: Seq2SeqTrainer) -> dict[str, numpy.ndarray]:
    return {k: v.numpy().copy() for k, v in trainer.model.state_dict().items()}


def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path: Path) -> None:
    task = dates_task(300, seed=1, val_size=20, test_size=20)
    model_config = Seq2SeqConfig(embedding_size=8, hidden_size=12, bidirectional=True, dropout=0.2, seed=1)
    config = TrainConfig(batch_size=32, max_steps=14, eval_every=5, sampling=0.3, seed=1)
    whole = Seq2SeqTrainer(model_config, config, task)
    assert whole.n_batches < 14  # the run crosses an epoch boundary (a new shuffle)
    fit(whole, tmp_path / "whole")
    names = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert len(names) == 3 and names[0].startswith("seq2seq_epoch000.") and whole.iteration == 14
    # stop after the first evaluation, then resume from its checkpoint in a "new process"
    part = Seq2SeqTrainer(model_config, config, task)
    fit(part, tmp_path / "part", max_time=0.0)
    assert part.iteration == 1
    first = next((tmp_path / "part").iterdir())
    resumed = Seq2SeqTrainer.resume(first, task_from_description(read_checkpoint(first).task))
    assert resumed.iteration == 1 and resumed.task == task
    fit(resumed, tmp_path / "part")
    a, b = _params(whole), _params(resumed)
    assert all(numpy.array_equal(a[k], b[k]) for k in a)
    for sa, sb in zip(whole.optimizer.state_dict()["state"].values(), resumed.optimizer.state_dict()["state"].values()):
        assert all(numpy.array_equal(numpy.asarray(sa[k]), numpy.asarray(sb[k])) for k in sa)
    # the stop at iteration 1 (between two evaluations) wrote a checkpoint but recorded nothing
    assert whole.history == resumed.history and whole.history["val_iteration"] == [5, 10, 14]
    assert (whole.best_val_loss, whole.best_checkpoint) == (resumed.best_val_loss, resumed.best_checkpoint)
    saved = read_checkpoint(sorted((tmp_path / "whole").iterdir())[-1])
    assert saved.src_vocab == whole.src_vocab and saved.task == task.description and saved.train == config
    other = dates_task(301, seed=1, val_size=20, test_size=20)
    with pytest.raises(CheckpointError, match="another task"):
        Seq2SeqTrainer.resume(first, other)


def test_evaluate_and_translate_agree_with_the_decoders() -> None:
    task = dates_task(200, seed=0, val_size=30, test_size=10)
    trainer = Seq2SeqTrainer(SMALL, TrainConfig(batch_size=16, max_steps=5), task)
    for _ in range(5):
        trainer.train_step()
    vocabs = (trainer.src_vocab, trainer.tgt_vocab)
    pairs = task.val
    out = translate(trainer.model, vocabs, [s for s, _ in pairs], max_len=trainer.max_len)
    ev = evaluate(trainer.model, vocabs, pairs, max_len=trainer.max_len, batch_size=7)
    assert ev.n == 30 and ev.exact == sum(o.text == t for o, (_, t) in zip(out, pairs)) / 30
    assert ev.bleu == pytest.approx(corpus_bleu([o.tokens for o in out], [list(t) for _, t in pairs]).score, abs=1e-12)
    for o, (s, _) in zip(out, pairs):
        assert o.attention.shape == (len(o.tokens) + (len(o.tokens) < trainer.max_len), len(s))
        numpy.testing.assert_allclose(o.attention.sum(axis=1), 1, atol=1e-5)
    beam1 = translate(trainer.model, vocabs, [s for s, _ in pairs], beam=1, max_len=trainer.max_len)
    assert [o.text for o in beam1] == [o.text for o in out]
    with pytest.raises(UnknownTokenError, match="'€'"):
        translate(trainer.model, vocabs, ["25 Nov 2026", "5€"])
