"""Bengio's NNLM as a library: the context matrix, the model against a torch twin and finite
differences, probabilities and perplexity, the mixture with an n-gram model (EM), training with
early stopping, checkpoints and exact resume, sampling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy
import pytest
import torch

import dlia
from dlia.io import CheckpointError, save_checkpoint
from dlia.models import nnlm
from dlia.models.ngram import NGramLM, build_vocab, encode_sentences
from dlia.models.nnlm import (
    NNLM,
    NNLMConfig,
    NNLMError,
    NNLMTrainer,
    contexts,
    generate,
    mixed_perplexity,
    mixture,
    parameter_count,
    perplexity,
    prob_distribution,
    read_checkpoint,
    token_logprobs,
)
from helpers import dense

WORDS = [f"w{i}" for i in range(12)]


def corpus(seed: int = 0, sentences: int = 120) -> list[list[str]]:
    """Sentences with structure to learn: each word is usually followed by the next one."""
    rng = numpy.random.default_rng(seed)
    out = []
    for _ in range(sentences):
        w, s = int(rng.integers(12)), []
        for _ in range(int(rng.integers(1, 8))):
            s.append(WORDS[w])
            w = (w + 1) % 12 if rng.random() < 0.8 else int(rng.integers(12))
        out.append(s)
    return out


def tiny(**kw) -> NNLMConfig:
    return NNLMConfig(**{**dict(order=3, embedding_dim=6, hidden=8, batch_size=16, epochs=3, lr=0.01), **kw})


def data(min_count: int = 1) -> tuple[list[str], list[numpy.ndarray], list[numpy.ndarray]]:
    sents = corpus()
    vocab = build_vocab(sents[:100], min_count)
    ids = encode_sentences(sents, vocab)
    return vocab, ids[:100], ids[100:]


# -- data ------------------------------------------------------------------------------------------
def test_contexts_pad_each_sentence_and_predict_words_and_end() -> None:
    X, y = contexts([numpy.array([5, 6]), numpy.array([], dtype=numpy.int64), numpy.array([7])], 3)
    assert X.tolist() == [[0, 0], [0, 5], [5, 6], [0, 0], [0, 0], [0, 7]]
    assert y.tolist() == [5, 6, 1, 1, 7, 1]
    assert X.dtype == y.dtype == numpy.int64


@pytest.mark.parametrize("order", [2, 3, 5])
def test_contexts_equal_a_python_loop(order: int) -> None:
    _, ids, _ = data()
    X, y = contexts(ids, order)
    rows, targets = [], []
    for s in ids:
        padded = [0] * (order - 1) + s.tolist() + [1]
        for j in range(order - 1, len(padded)):
            rows.append(padded[j - order + 1:j])
            targets.append(padded[j])
    assert X.tolist() == rows and y.tolist() == targets
    assert len(y) == sum(len(s) + 1 for s in ids)  # the tokens NGramLM.perplexity counts


def test_contexts_refuse_order_below_two() -> None:
    with pytest.raises(NNLMError, match="order must be an integer >= 2"):
        contexts([numpy.array([3])], 1)


# -- the model against torch and finite differences ------------------------------------------------
def torch_twin(model: NNLM) -> tuple[dict[str, torch.Tensor], callable]:
    """The paper's equation written in torch, on copies of ``model``'s weights."""
    w = {k: torch.tensor(v.numpy().copy(), requires_grad=True) for k, v in model.state_dict().items()}
    c = model.config

    def forward(X: numpy.ndarray) -> torch.Tensor:
        x = torch.nn.functional.embedding(torch.from_numpy(X), w["C.weight"]).reshape(len(X), -1)
        y = (torch.tanh(x @ w["H.weight"].T + w["H.bias"]) @ w["U.weight"].T + w["U.bias"]) if c.hidden else w["b"]
        return y + x @ w["W.weight"].T if c.direct else y

    return w, forward


@pytest.mark.parametrize("direct,hidden", [(True, 8), (False, 8), (True, 0)], ids=["direct", "no-direct", "no-hidden"])
def test_logits_loss_and_gradients_equal_torch(direct: bool, hidden: int) -> None:
    config = tiny(direct=direct, hidden=hidden, order=4)
    model = NNLM(config, 15, dlia.Generator(3))
    rng = numpy.random.default_rng(0)
    X, y = rng.integers(0, 15, size=(20, 3)), rng.integers(1, 15, size=20)
    X[0] = [4, 4, 4]  # a row used several times in one example: its gradients add up
    w, forward = torch_twin(model)
    logits, tlogits = model(X), forward(X)
    numpy.testing.assert_allclose(logits.numpy(), tlogits.detach().numpy(), rtol=1e-5, atol=1e-6)
    loss = model.loss(X, y)
    tloss = torch.nn.functional.cross_entropy(tlogits, torch.from_numpy(y))
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-6)
    loss.backward()
    tloss.backward()
    grads = dict(model.named_parameters())
    assert set(grads) == set(w) == set(nnlm.parameter_shapes(config, 15))
    assert isinstance(grads["C.weight"].grad, dlia.SparseGrad)  # only the rows of the batch
    for name, p in grads.items():
        numpy.testing.assert_allclose(dense(p.grad), w[name].grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    assert parameter_count(config, 15) == sum(p.numpy().size for p in grads.values())


@pytest.mark.parametrize("direct", [True, False])
def test_gradients_equal_finite_differences(direct: bool) -> None:
    model = NNLM(tiny(direct=direct, embedding_dim=3, hidden=4), 7, dlia.Generator(1), dtype=numpy.float64)
    rng = numpy.random.default_rng(2)
    X, y = rng.integers(0, 7, size=(9, 2)), rng.integers(1, 7, size=9)
    model.loss(X, y).backward()
    eps = 1e-6
    for name, p in model.named_parameters():
        v = rng.standard_normal(p.numpy().shape)
        base = p.data.copy()
        p.data[...] = base + eps * v
        up = model.loss(X, y).item()
        p.data[...] = base - eps * v
        down = model.loss(X, y).item()
        p.data[...] = base
        assert (up - down) / (2 * eps) == pytest.approx(float(numpy.vdot(dense(p.grad), v)), rel=1e-6, abs=1e-9), name


# -- probabilities ---------------------------------------------------------------------------------
def test_distribution_sums_to_one_and_matches_token_logprobs() -> None:
    vocab, train, _ = data()
    model = NNLM(tiny(), len(vocab), dlia.Generator(0))
    sent = train[0]
    lp = token_logprobs(model, [sent])
    history = [0, 0, *sent.tolist()]
    for t, target in enumerate([*sent.tolist(), 1]):
        p = prob_distribution(model, history[:t + 2])
        assert p.shape == (len(vocab),) and p.sum() == pytest.approx(1.0, abs=1e-12) and (p > 0).all()
        assert math.log(p[target]) == pytest.approx(lp[t], abs=1e-5)
    assert perplexity(model, [sent]) == pytest.approx(math.exp(-lp.mean()))


def test_a_uniform_model_has_perplexity_v() -> None:
    vocab, train, val = data()
    model = NNLM(tiny(), len(vocab))
    for p in model.parameters():
        p.data[...] = 0  # every logit 0: P = 1/V for every word
    assert perplexity(model, val) == pytest.approx(len(vocab), rel=1e-6)


def test_only_unknown_words_are_scored_as_unk() -> None:
    vocab, train, _ = data()
    model = NNLM(tiny(), len(vocab), dlia.Generator(0))
    unknown = encode_sentences([["zz", "yy"]], vocab)
    assert unknown[0].tolist() == [2, 2]
    assert len(token_logprobs(model, unknown)) == 3 and math.isfinite(perplexity(model, unknown))


def test_bad_sentences_are_refused() -> None:
    model = NNLM(tiny(), 10)
    with pytest.raises(NNLMError, match="empty test set"):
        perplexity(model, [])
    with pytest.raises(NNLMError, match="ids in 0..9"):
        token_logprobs(model, [numpy.array([3, 10])])
    with pytest.raises(NNLMError, match="holds <s> or </s>"):
        token_logprobs(model, [numpy.array([3, 1])])


def test_generate_is_seeded_and_never_draws_start() -> None:
    vocab, _, _ = data()
    model = NNLM(tiny(), len(vocab), dlia.Generator(0))
    a, b = generate(model, 4, max_len=6, seed=5), generate(model, 4, max_len=6, seed=5)
    assert a == b and a != generate(model, 4, max_len=6, seed=6)
    assert all(len(s) <= 6 and 0 not in s and 1 not in s for s in a)
    assert generate(model, 1, max_len=3, seed=1, prefix=[4, 5])[0][:2] == [4, 5]


# -- the n-gram side and the mixture ---------------------------------------------------------------
@pytest.mark.parametrize("smoothing,order", [("kn", 3), ("katz", 2), ("add-k", 3), ("mle", 1)])
def test_ngram_token_logprobs_give_its_perplexity(smoothing: str, order: int) -> None:
    sents = corpus()
    lm = NGramLM(order, smoothing).fit(sents[:100], min_count=2)
    test = [*sents[100:], ["unseen", "words"]]
    lp = lm.token_logprobs(test)
    assert lp.shape == (sum(len(s) + 1 for s in test),)
    assert 10 ** -lp.mean() == pytest.approx(lm.perplexity(test), rel=1e-12)
    assert lp[0] == pytest.approx(lm.logprob(test[0][0], ["<s>"]), abs=1e-12)


def test_em_finds_the_best_mixture_weight() -> None:
    rng = numpy.random.default_rng(0)
    p1, p2 = rng.uniform(0.001, 0.5, 400), rng.uniform(0.001, 0.5, 400)
    lam = mixture(p1, p2)
    grid = numpy.linspace(0, 1, 100_001)
    best = grid[numpy.argmin([mixed_perplexity(p1, p2, g) for g in grid[::100]]) * 100]
    assert abs(lam - best) < 2e-3
    fine = grid[(grid > lam - 2e-3) & (grid < lam + 2e-3)]
    assert mixed_perplexity(p1, p2, lam) <= min(mixed_perplexity(p1, p2, g) for g in fine) + 1e-9


def test_mixture_by_hand() -> None:
    # two tokens: p1 = (0.5, 0.1), p2 = (0.1, 0.5): by symmetry λ = 1/2, the mixture gives 0.3 to each
    assert mixture([0.5, 0.1], [0.1, 0.5]) == pytest.approx(0.5)
    assert mixed_perplexity([0.5, 0.1], [0.1, 0.5], 0.5) == pytest.approx(1 / 0.3)
    assert mixed_perplexity([0.5, 0.1], [0.1, 0.5], 1.0) == pytest.approx(1 / math.sqrt(0.05))
    assert mixture([0.5, 0.4], [0.1, 0.2]) == pytest.approx(1.0, abs=1e-6)  # better on every token
    assert mixture([0.5, 0.4], [0.0, 0.0]) == pytest.approx(1.0)  # an n-gram zero: the NNLM takes it
    assert mixed_perplexity([0.0], [0.0], 0.5) == math.inf
    with pytest.raises(NNLMError, match="different tokens"):
        mixture([0.1, 0.2], [0.1])
    with pytest.raises(NNLMError, match=r"in \[0, 1\]"):
        mixture([1.5], [0.1])


# -- training --------------------------------------------------------------------------------------
def test_training_beats_the_unigram_and_adds_an_epoch_of_history() -> None:
    vocab, train, val = data()
    t = NNLMTrainer(tiny(epochs=4, patience=0), vocab, train, val)
    start = t.validation_perplexity()
    seen = []
    assert t.fit(on_batch=lambda done, total, loss, rate: seen.append((done, total)))
    assert len(t.history["val_ppl"]) == 4 and seen[-1][0] == seen[-1][1] == len(t.y)
    unigram = NGramLM(1, "add-k").fit([[vocab[i] for i in s] for s in train], vocab=vocab).perplexity(val)
    assert t.best_ppl < 0.7 * unigram < start


def test_sgd_trains_with_sparse_embedding_updates() -> None:
    vocab, train, val = data()
    t = NNLMTrainer(tiny(optimizer="sgd", lr=0.3, epochs=3), vocab, train, val)
    start = t.validation_perplexity()
    t.fit()
    assert t.best_ppl < 0.8 * start


def test_early_stopping_keeps_the_best_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    vocab, train, val = data()
    t = NNLMTrainer(tiny(epochs=10, patience=2), vocab, train, val)
    ppls = iter([50.0, 40.0, 45.0, 41.0, 10.0])
    weights = []
    monkeypatch.setattr(t, "validation_perplexity", lambda: (weights.append(t.model.W.weight.numpy().copy()), next(ppls))[1])
    assert t.fit()
    assert t.epoch == 4 and t.best_epoch == 2 and t.best_ppl == 40.0  # two epochs without progress: stop
    numpy.testing.assert_array_equal(t.model.W.weight.numpy(), weights[1])


def fingerprint(model: NNLM) -> dict[str, numpy.ndarray]:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_mid_epoch_ends_with_identical_weights(tmp_path: Path, optimizer: str) -> None:
    vocab, train, val = data()
    config = tiny(epochs=3, patience=0, optimizer=optimizer, lr=0.01 if optimizer == "adam" else 0.2)
    whole = NNLMTrainer(config, vocab, train, val)
    whole.fit()
    part = NNLMTrainer(config, vocab, train, val)
    part.run_epoch()
    part.save(tmp_path)
    calls = iter(range(100))
    assert not part.run_epoch(stop=lambda: next(calls) == 7)  # stopped after 8 batches of epoch 2
    ckpt = part.save(tmp_path)
    assert "epoch001." in ckpt.name
    resumed = NNLMTrainer.resume(ckpt, train, val)
    assert (resumed.epoch, resumed.batch) == (1, 8)
    assert resumed.fit(tmp_path)
    for k, v in fingerprint(whole.model).items():
        numpy.testing.assert_array_equal(fingerprint(resumed.model)[k], v, err_msg=k)
    assert resumed.history == whole.history and resumed.best_epoch == whole.best_epoch


def test_resume_restores_best_weights_from_the_best_epoch_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vocab, train, val = data()
    t = NNLMTrainer(tiny(epochs=5, patience=3), vocab, train, val)
    ppls = iter([30.0, 20.0, 25.0, 26.0, 27.0])
    monkeypatch.setattr(t, "validation_perplexity", lambda: next(ppls))
    for _ in range(3):
        t.run_epoch()
        last = t.save(tmp_path)
    assert t.best_checkpoint == "nnlm_epoch002_20.0000.npz" and last.name == "nnlm_epoch003_25.0000.npz"
    r = NNLMTrainer.resume(last, train, val)
    for k, v in t.best_state.items():
        numpy.testing.assert_array_equal(r.best_state[k], v)
    (tmp_path / t.best_checkpoint).unlink()
    with pytest.raises(CheckpointError, match="best epoch.*missing"):
        NNLMTrainer.resume(last, train, val)


def test_resume_refuses_other_data_and_foreign_checkpoints(tmp_path: Path) -> None:
    vocab, train, val = data()
    t = NNLMTrainer(tiny(epochs=1), vocab, train, val)
    t.fit(tmp_path)
    ckpt = next(tmp_path.glob("nnlm_epoch001_*.npz"))
    with pytest.raises(CheckpointError, match="other data"):
        NNLMTrainer.resume(ckpt, train[:50], val)
    other = save_checkpoint(tmp_path / "lin.npz", dlia.nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="not a nnlm checkpoint"):
        read_checkpoint(other)
    config, got_vocab, _ = read_checkpoint(ckpt)
    assert config == t.config and got_vocab == vocab
    model, _, _ = nnlm.load_model(ckpt)
    assert perplexity(model, val) == pytest.approx(t.best_ppl, rel=1e-6)


@pytest.mark.parametrize("bad,match", [
    (dict(order=1), "order must be an integer in"), (dict(optimizer="rmsprop"), "optimizer must be one of"),
    (dict(lr=0.0), "lr must be above 0"), (dict(batch_size=0), "batch_size"), (dict(direct="yes"), "direct"),
    (dict(hidden=0, direct=False), "constant"),
])
def test_config_refuses_bad_values(bad: dict, match: str) -> None:
    with pytest.raises(NNLMError, match=match):
        NNLMConfig(**bad)
    with pytest.raises(NNLMError, match="unknown nnlm config keys: size"):
        NNLMConfig.from_dict({"size": 3})
