"""char-rnn as a library: batching, config, the model, training, checkpoints and exact resume, sampling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy
import pytest

import dlia
from dlia.io import CheckpointError, load_checkpoint, save_checkpoint
from dlia.models.charrnn import (
    CharData,
    CharRNN,
    CharRNNConfig,
    CharRNNTrainer,
    StepModel,
    choose,
    fit,
    min_chars,
    parameter_count,
    parameter_shapes,
    read_checkpoint,
    sample,
    split_sizes,
)
from dlia.text import CharVocab

TEXT = "the cat sat on the mat; the dog ate the hat. café 🙂\n" * 12


def tiny(**kw) -> CharRNNConfig:
    values = dict(rnn_size=16, num_layers=2, seq_length=8, batch_size=4, eval_every=5, max_epochs=2)
    return CharRNNConfig(**{**values, **kw})


def trainer_for(config: CharRNNConfig, text: str = TEXT) -> CharRNNTrainer:
    vocab = CharVocab.from_text(text)
    return CharRNNTrainer(config, vocab, CharData(vocab.encode(text), config.batch_size, config.seq_length,
                                                  config.train_frac, config.val_frac))


# -- batching --------------------------------------------------------------------------------------
def test_batches_are_contiguous_streams_cut_in_chunks() -> None:
    ids = numpy.arange(53)
    d = CharData(ids, batch_size=2, seq_length=4, train_frac=0.5, val_frac=0.5)
    # (53 - 1) // 8 = 6 batches over 48 characters: 0..23 train, 24..47 validate,
    # each part in 2 streams: train streams 0..11 and 12..23, validation streams 24..35 and 36..47
    assert (d.n_train, d.n_val) == (3, 3)
    x0, y0 = d.train_batch(0)
    assert x0.tolist() == [[0, 1, 2, 3], [12, 13, 14, 15]]
    assert y0.tolist() == [[1, 2, 3, 4], [13, 14, 15, 16]]
    x1, _ = d.train_batch(1)
    assert x1.tolist() == [[4, 5, 6, 7], [16, 17, 18, 19]]  # row b continues row b of the batch before
    xv, yv = d.val_batch(0)
    assert xv.tolist() == [[24, 25, 26, 27], [36, 37, 38, 39]]  # validation text follows the training text
    xv, yv = d.val_batch(2)
    assert xv.tolist() == [[32, 33, 34, 35], [44, 45, 46, 47]]
    assert yv.tolist() == [[33, 34, 35, 36], [45, 46, 47, 48]]  # the last target is the character after the cut
    assert numpy.shares_memory(d.train_x, ids) and numpy.shares_memory(d.val_x, ids)  # views, no copies
    with pytest.raises(IndexError):
        d.train_batch(3)
    with pytest.raises(IndexError):
        d.val_batch(3)


def test_validation_is_the_end_of_the_text_in_one_block() -> None:
    ids = numpy.arange(10_001)
    d = CharData(ids, batch_size=5, seq_length=10, train_frac=0.95, val_frac=0.05)  # 200 batches: 190 + 10
    assert (d.n_train, d.n_val) == (190, 10)
    seen = numpy.sort(numpy.concatenate([d.val_batch(k)[0].ravel() for k in range(d.n_val)]))
    numpy.testing.assert_array_equal(seen, numpy.arange(9500, 10_000))  # the last 5 %, every character once
    trained = numpy.concatenate([d.train_batch(k)[0].ravel() for k in range(d.n_train)])
    assert trained.max() == 9499


def test_a_text_shorter_than_two_batches_is_refused_with_the_length_needed() -> None:
    config = tiny()
    assert min_chars(config) == 2 * 4 * 8 + 1
    CharData(numpy.zeros(65, numpy.int32), 4, 8)
    with pytest.raises(ValueError, match="the text has 64 characters; .* needs at least 65"):
        CharData(numpy.zeros(64, numpy.int32), 4, 8)


@pytest.mark.parametrize("batches, train, val, expected", [
    (446, 0.95, 0.05, (423, 22)), (2, 0.95, 0.05, (1, 1)), (10, 0.5, 0.5, (5, 5)), (10, 0.5, 0.2, (5, 2)),
    (10, 1.0, 0.01, (9, 1)), (3, 0.9, 0.1, (2, 1)), (5, 0.5, 0.5, (2, 3)),
])
def test_split_sizes(batches: int, train: float, val: float, expected: tuple[int, int]) -> None:
    assert split_sizes(batches, train, val) == expected


# -- config ----------------------------------------------------------------------------------------
def test_config_defaults_are_char_rnns_flags() -> None:
    c = CharRNNConfig()
    assert (c.model, c.rnn_size, c.num_layers, c.seq_length, c.batch_size) == ("lstm", 128, 2, 50, 50)
    assert (c.learning_rate, c.lr_decay, c.lr_decay_after, c.optimizer, c.dropout, c.grad_clip) == (2e-3, 0.97, 10, "adam", 0, 5)
    assert (c.train_frac, c.val_frac) == (0.95, 0.05)
    assert CharRNNConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("values, message", [
    ({"hidden": 3}, "unknown char-rnn config keys: hidden"),
    ({"model": "transformer"}, "model must be one of lstm, gru, rnn"),
    ({"optimizer": "sgd"}, "optimizer must be one of adam, rmsprop"),
    ({"rnn_size": 0}, "rnn_size must be an integer"),
    ({"rnn_size": 2.5}, "rnn_size must be an integer"),
    ({"batch_size": True}, "batch_size must be an integer"),
    ({"dropout": 1.0}, "dropout must be a number"),
    ({"learning_rate": 0}, "learning_rate and lr_decay must be above 0"),
    ({"learning_rate": math.nan}, "learning_rate must be a number"),
    ({"train_frac": 0.9, "val_frac": 0.2}, "train_frac \\+ val_frac must be at most 1"),
    ({"val_frac": 0}, "must be above 0"),
    ({"train_frac": 1.5}, "train_frac must be a number in \\[0, 1\\]"),
    ({"seed": -1}, "seed must be an integer"),
])
def test_config_rejects_bad_values(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CharRNNConfig.from_dict(values)


def test_lr_decays_per_epoch_after_lr_decay_after() -> None:
    t = trainer_for(tiny(lr_decay=0.5, lr_decay_after=2, learning_rate=1.0))
    assert [t.lr_at(e) for e in range(5)] == [1.0, 1.0, 0.5, 0.25, 0.125]
    for _ in range(2 * t.data.n_train + 1):  # into the third epoch
        t.train_step()
    assert t.optimizer.param_groups[0]["lr"] == 0.5


# -- the model and training ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_model_shapes_and_step_model_match_the_layers(kind: str) -> None:
    config = tiny(model=kind, num_layers=3)
    model = CharRNN(config, 11, dlia.Generator(0))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == parameter_shapes(config, 11)
    assert parameter_count(config, 11) == sum(v.size for v in model.parameters())
    x = numpy.random.default_rng(0).integers(0, 11, (3, 9))
    model.eval()
    with dlia.no_grad():
        logits, state = model(dlia.tensor(x))
    assert logits.shape == (3, 9, 11)
    step = StepModel(model)
    for b in range(3):  # the NumPy step function, one character at a time, gives the layers' logits
        s = step.zero_state()
        got = numpy.stack([step.step(int(i), s) for i in x[b]])
        numpy.testing.assert_allclose(got, logits.numpy()[b], rtol=1e-5, atol=1e-5)
        h = (state[0] if kind == "lstm" else state).numpy()[:, b]
        numpy.testing.assert_allclose(numpy.stack(s[:3]), h, rtol=1e-5, atol=1e-5)


def test_training_lowers_the_loss() -> None:
    t = trainer_for(tiny(eval_every=1000, max_epochs=6, learning_rate=1e-2))
    before = t.evaluate()
    assert abs(before - math.log(len(t.vocab))) < 0.5  # an untrained model is near uniform
    for _ in range(t.total_iterations):
        t.train_step()
    after = t.evaluate()
    assert after < before - 1.0, (before, after)
    assert numpy.mean(t.history["train_loss"][-5:]) < numpy.mean(t.history["train_loss"][:5]) - 1.0


def test_the_state_is_carried_across_batches_and_reset_at_each_epoch() -> None:
    t = trainer_for(tiny(max_epochs=2))
    seen = []
    forward = t.model.rnn.forward

    def spy(x, hx=None, **kwargs):  # kwargs: projected=True, from forward_embedded
        seen.append(None if hx is None else hx[0].numpy().copy())
        return forward(x, hx, **kwargs)

    t.model.rnn.forward = spy
    kept = []
    for _ in range(2 * t.data.n_train):
        t.train_step()
        kept.append(t.state[0].numpy().copy())
        assert not t.state[0].requires_grad  # detached: backward stops at the batch boundary
    n = t.data.n_train
    assert seen[0] is None and seen[n] is None  # epoch starts
    for k in [*range(1, n), *range(n + 1, 2 * n)]:
        assert numpy.array_equal(seen[k], kept[k - 1])


# -- checkpoints and resume ------------------------------------------------------------------------
def _weights(path: Path) -> dict[str, numpy.ndarray]:
    return dict(numpy.load(path))


def test_checkpoint_round_trip_and_resume_give_the_same_weights(tmp_path: Path) -> None:
    config = tiny(dropout=0.3, eval_every=7, max_epochs=3)  # dropout: the generator's state matters
    ids = CharVocab.from_text(TEXT).encode(TEXT)
    whole = trainer_for(config)
    fit(whole, tmp_path / "whole")
    final = sorted((tmp_path / "whole").iterdir())
    assert whole.data.n_train == 18  # (624 - 1) // 32 = 19 batches: 18 train, 1 validates
    assert [p.name for p in final][:2] == [f"charrnn_epoch000.39_{whole.history['val_loss'][0]:.4f}.npz",
                                           f"charrnn_epoch000.78_{whole.history['val_loss'][1]:.4f}.npz"]
    # resume from the first checkpoint (mid-epoch: state carried, position 7 of 18) in a fresh trainer
    resumed = CharRNNTrainer.resume(final[0], ids)
    assert resumed.iteration == 7 and resumed.state is not None
    assert resumed.history["val_loss"] == whole.history["val_loss"][:1]
    fit(resumed, tmp_path / "resumed")
    last = f"charrnn_epoch003.00_{whole.history['val_loss'][-1]:.4f}.npz"
    a, b = _weights(tmp_path / "whole" / last), _weights(tmp_path / "resumed" / last)
    assert sorted(a) == sorted(b)
    for k in a:
        if k != "__meta__":
            assert numpy.array_equal(a[k], b[k]), k
    assert resumed.history == whole.history
    assert resumed.best_checkpoint == whole.best_checkpoint


def test_read_checkpoint_validates_before_building(tmp_path: Path) -> None:
    t = trainer_for(tiny())
    t.train_step()
    path = t.save(tmp_path, 3.0)
    config, vocab, _ = read_checkpoint(path)
    assert config == t.config and vocab == t.vocab
    model = CharRNN(config, len(vocab))
    load_checkpoint(path, model)
    for k, v in model.state_dict().items():
        assert numpy.array_equal(v.numpy(), t.model.state_dict()[k].numpy())
    # a config that does not match the weights
    save_checkpoint(tmp_path / "bad.npz", t.model, config={**config.to_dict(), "rnn_size": 10**8}, vocab=vocab.to_list())
    with pytest.raises(CheckpointError, match=r"ask for embedding.weight of shape \(\d+, 100000000\)"):
        read_checkpoint(tmp_path / "bad.npz")
    save_checkpoint(tmp_path / "v.npz", t.model, config=config.to_dict(), vocab=["b", "a"])
    with pytest.raises(CheckpointError, match="not sorted"):
        read_checkpoint(tmp_path / "v.npz")
    save_checkpoint(tmp_path / "o.npz", dlia.nn.Linear(2, 2), config=config.to_dict(), vocab=vocab.to_list())
    with pytest.raises(CheckpointError, match="not a char-rnn checkpoint .*Linear"):
        read_checkpoint(tmp_path / "o.npz")


def test_resume_refuses_another_text_and_a_damaged_state(tmp_path: Path) -> None:
    t = trainer_for(tiny())
    t.train_step()
    path = t.save(tmp_path, 3.0)
    other = TEXT.replace("cat", "cot")
    with pytest.raises(CheckpointError, match="trained on another text"):
        CharRNNTrainer.resume(path, t.vocab.encode(other))
    import zipfile

    meta = numpy.load(path)["__meta__"].tobytes().decode()
    damaged = meta.replace('"dtype": "<f4"', '"dtype": "<f8"', 1)
    entries = {}
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    import io

    buf = io.BytesIO()
    numpy.save(buf, numpy.frombuffer(damaged.encode(), numpy.uint8))
    entries["__meta__.npy"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    with pytest.raises(CheckpointError, match="corrupt training state: expected a float32 array of shape \\(2, 4, 16\\)"):
        CharRNNTrainer.resume(tmp_path / "d.npz", t.vocab.encode(TEXT))


# -- sampling --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained() -> tuple[CharRNN, CharVocab]:
    t = trainer_for(tiny(max_epochs=3, learning_rate=1e-2))
    for _ in range(t.total_iterations):
        t.train_step()
    t.model.eval()
    return t.model, t.vocab


def test_sampling_is_reproducible_per_seed(trained) -> None:
    model, vocab = trained
    a = "".join(sample(model, vocab, "the ", 80, seed=1))
    assert len(a) == 80 and set(a) <= set(vocab.chars)
    assert a == "".join(sample(model, vocab, "the ", 80, seed=1))
    assert a != "".join(sample(model, vocab, "the ", 80, seed=2))
    assert len("".join(sample(model, vocab, "", 5, seed=1))) == 5  # no prime: a random first character


def test_argmax_is_deterministic_and_top_k_1_is_argmax(trained) -> None:
    model, vocab = trained
    greedy = "".join(sample(model, vocab, "the c", 60, mode="argmax", seed=1))
    assert greedy == "".join(sample(model, vocab, "the c", 60, mode="argmax", seed=99))
    assert greedy == "".join(sample(model, vocab, "the c", 60, top_k=1, seed=5))
    assert greedy == "".join(sample(model, vocab, "the c", 60, temperature=1e-4, seed=5))
    # argmax by hand: feed the prime, then always the most likely character
    step, state = StepModel(model), None
    state = step.zero_state()
    for i in vocab.encode("the c"):
        logits = step.step(int(i), state)
    by_hand = []
    for _ in range(60):
        nxt = int(numpy.argmax(logits))
        by_hand.append(vocab.chars[nxt])
        logits = step.step(nxt, state)
    assert greedy == "".join(by_hand)


def test_spaces_mode_samples_only_at_word_starts(trained) -> None:
    model, vocab = trained
    text = "".join(sample(model, vocab, "the", 300, mode="spaces", temperature=2.0, seed=3))
    step = StepModel(model)
    state = step.zero_state()
    for i in vocab.encode("the"):
        logits = step.step(int(i), state)
    prev, drawn = "e", 0
    for ch in text:
        if prev not in " \n":
            assert ch == vocab.chars[int(numpy.argmax(logits))]
        elif ch != vocab.chars[int(numpy.argmax(logits))]:
            drawn += 1
        logits, prev = step.step(vocab.chars.index(ch), state), ch
    assert drawn > 0  # at temperature 2 some word starts differ from the argmax


def test_choose_follows_softmax_with_temperature_and_top_k() -> None:
    logits = numpy.array([2.0, 1.0, 0.0, -1.0])
    rng = numpy.random.default_rng(0)
    for temperature in (0.5, 1.0, 3.0):
        draws = numpy.bincount([choose(logits, temperature, None, rng) for _ in range(20000)], minlength=4) / 20000
        p = numpy.exp(logits / temperature) / numpy.exp(logits / temperature).sum()
        numpy.testing.assert_allclose(draws, p, atol=0.015)
    draws = numpy.bincount([choose(logits, 1.0, 2, rng) for _ in range(20000)], minlength=4) / 20000
    p = numpy.exp(logits[:2]) / numpy.exp(logits[:2]).sum()
    numpy.testing.assert_allclose(draws, [*p, 0, 0], atol=0.015)


def test_sample_refuses_bad_arguments(trained) -> None:
    model, vocab = trained
    with pytest.raises(ValueError, match=r"'Z' \(U\+005A\) is not in the vocabulary"):
        next(sample(model, vocab, "Zoo", 5))
    for kw, message in (({"mode": "beam"}, "sample mode"), ({"temperature": 0}, "temperature"), ({"top_k": 0}, "top_k")):
        with pytest.raises(ValueError, match=message):
            next(sample(model, vocab, "the", 5, **kw))


def test_a_vanishing_temperature_takes_the_argmax() -> None:
    """logits / 1e-320 overflowed to ±inf and inf − inf gave NaN: the last character was drawn."""
    logits = numpy.array([0.5, 3.0, -1.0, 2.9], dtype=numpy.float32)
    rng = numpy.random.default_rng(0)
    assert {choose(logits, t, None, rng) for t in (1e-320, 5e-324, 1e-200) for _ in range(20)} == {1}


def test_a_training_fraction_below_one_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="less than one batch"):
        CharData(numpy.zeros(401, numpy.int32), batch_size=2, seq_length=4, train_frac=0.01, val_frac=0.05)
