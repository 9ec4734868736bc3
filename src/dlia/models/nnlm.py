"""Bengio et al. (2003)'s neural probabilistic language model: the next word from the n−1 words before
it, through a shared table of word vectors, a tanh hidden layer and a softmax over the vocabulary.

The pieces, each usable on its own:

- ``NNLMConfig``: every hyper-parameter, with defaults that train on enwiki-sample.
- ``contexts``: sentences of word ids → the (N, n−1) context matrix and the (N,) targets.
- ``NNLM``: the paper's model, an ``nn.Module`` (trains with ``dlia.optim``, checkpoints with ``dlia.io``).
- ``NNLMTrainer``: shuffled mini-batches, validation perplexity per epoch, early stopping that keeps
  the best weights, checkpoints and exact resume.
- ``token_logprobs``, ``perplexity``, ``prob_distribution``, ``generate``: using a trained model.
- ``mixture``, ``mixed_perplexity``: the paper's interpolation with an n-gram model, its weight
  fitted by EM on validation data.

Data follow ``dlia.models.ngram``'s conventions (its ``build_vocab``/``encode_sentences``: ``<s>``,
``</s>``, ``<unk>`` are ids 0, 1, 2). Each sentence is padded on the left with n−1 ``<s>`` and ends
with ``</s>``; every word and the final ``</s>`` are predicted, ``<s>`` never is. These are exactly
the tokens ``NGramLM.perplexity`` counts, so the two models' per-token probabilities line up one to
one and can be mixed.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy

import dlia
from dlia import nn, optim
from dlia.io import CheckpointError, checkpoint_name, load_checkpoint, save_checkpoint
from dlia.io.checkpoint import expect_model_class, expect_shapes
from dlia.models.ngram import BOS_ID, EOS_ID, UNK_ID

#: the prefix of checkpoint file names: ``nnlm_epoch003_212.3456.npz`` (epoch, validation perplexity)
PREFIX = "nnlm"
OPTIMIZERS = ("adam", "sgd")


class NNLMError(ValueError):
    """Input the NNLM cannot use (a bad setting, no sentences, ids outside the vocabulary); one line
    saying what is wrong."""


@dataclass
class NNLMConfig:
    """Hyper-parameters of ``NNLM`` and its training (``dlia nnlm train``'s flags), defaults measured
    in docs/language-models.md.

    Checked on construction: a bad value raises ``NNLMError`` naming the field.
    """

    order: int = 5  # n: the model predicts a word from the n−1 before it
    embedding_dim: int = 60  # m, the length of a word vector (the paper: 30 to 100)
    hidden: int = 100  # h, tanh hidden units (0: none, the output sees only the direct connections)
    direct: bool = True  # W, direct connections from the word vectors to the output
    optimizer: str = "adam"  # adam | sgd (plain SGD updates only the embedding rows a batch uses)
    lr: float = 3e-3  # Adam's step (3e-3 beat 1e-3 early on enwiki-sample; docs/language-models.md); SGD wants ~0.1-0.5
    batch_size: int = 256  # predicted tokens per step
    epochs: int = 10  # passes over the training tokens at most
    patience: int = 2  # stop after this many epochs without a better validation perplexity (0: never)
    weight_decay: float = 0.0  # L2 penalty λ·p added to every gradient (the paper's 1e-4 for SGD)
    min_count: int = 2  # training words seen fewer times become <unk>
    lowercase: bool = False  # the corpus is lower-cased before anything else
    val_frac: float = 0.1  # the last fraction of a corpus's lines that validates (``dlia nnlm train``)
    seed: int = 0  # the initial weights and the order of the batches

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise NNLMError(f"nnlm config: optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("direct", "lowercase"):
            if not isinstance(getattr(self, name), bool):
                raise NNLMError(f"nnlm config: {name} must be true or false, got {getattr(self, name)!r}")
        for f in fields(self):
            if f.name not in _RANGES:
                continue
            value, (kind, low, high) = getattr(self, f.name), _RANGES[f.name]
            ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and low <= value <= high):
                what = f"an integer in [{low:.0f}, {high:.0f}]" if kind is int else f"a number in [{low:g}, {high:g}]"
                raise NNLMError(f"nnlm config: {f.name} must be {what}, got {value!r}")
        if not 0 < self.val_frac < 1:
            raise NNLMError(f"nnlm config: val_frac must be between 0 and 1 (exclusive), got {self.val_frac!r}")
        if self.lr <= 0:
            raise NNLMError(f"nnlm config: lr must be above 0, got {self.lr!r}")
        if self.hidden == 0 and not self.direct:
            raise NNLMError("nnlm config: hidden 0 without direct connections leaves the output a constant")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NNLMConfig:
        """Build from a dict (a checkpoint's config); unknown keys are rejected."""
        if not isinstance(values, dict):
            raise NNLMError(f"nnlm config: expected a dict, got {type(values).__name__}")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise NNLMError(f"unknown nnlm config keys: {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: (type, lowest, highest) of each numeric field
_RANGES: dict[str, tuple[type, float, float]] = {
    "order": (int, 2, 64), "embedding_dim": (int, 1, 2**31 - 1), "hidden": (int, 0, 2**31 - 1),
    "lr": (float, 0, 1e6), "batch_size": (int, 1, 2**31 - 1), "epochs": (int, 1, 2**31 - 1),
    "patience": (int, 0, 2**31 - 1), "weight_decay": (float, 0, 1e6), "min_count": (int, 1, 2**31 - 1), "val_frac": (float, 0, 1),
    "seed": (int, 0, 2**63 - 1),
}


# -- data ------------------------------------------------------------------------------------------
def contexts(sentences: Sequence[numpy.ndarray], order: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Every predicted token of ``sentences`` with the n−1 ids before it.

    Each sentence s becomes ``<s>``·(n−1), s, ``</s>``; the sentences are joined into one stream and
    every window of n ids ending at a token that is not padding is one example: its first n−1 ids are
    the context, the last the target. A window never crosses sentences, because each sentence brings
    its own n−1 ``<s>``. Built with ``sliding_window_view`` (a view) and one boolean mask.

    Args:
        sentences: int id arrays (``ngram.encode_sentences``), without ``<s>``/``</s>``.
        order: n ≥ 2.

    Returns:
        ``(X, y)``: X int64 of shape (N, n−1), y int64 of shape (N,), N = Σ (len(s) + 1).

    Example:
        >>> X, y = contexts([numpy.array([5, 6])], 3)
        >>> X.tolist(), y.tolist()
        ([[0, 0], [0, 5], [5, 6]], [5, 6, 1])
    """
    if not isinstance(order, int) or isinstance(order, bool) or order < 2:
        raise NNLMError(f"the order must be an integer >= 2 (a context of at least one word), got {order!r}")
    if len(sentences) == 0:
        return numpy.zeros((0, order - 1), numpy.int64), numpy.zeros(0, numpy.int64)
    pad = numpy.full(order - 1, BOS_ID, dtype=numpy.int64)
    stream = numpy.concatenate([part for s in sentences for part in (pad, numpy.asarray(s, numpy.int64), [EOS_ID])])
    windows = numpy.lib.stride_tricks.sliding_window_view(stream, order)
    keep = stream[order - 1:] != BOS_ID  # the window's last id is its target: padding is never predicted
    w = windows[keep]
    return numpy.ascontiguousarray(w[:, :-1]), numpy.ascontiguousarray(w[:, -1])


def _check_ids(sentences: Sequence[Any], V: int) -> list[numpy.ndarray]:
    out = []
    for n, s in enumerate(sentences):
        ids = numpy.asarray(s)
        if ids.ndim != 1 or (ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= V)):
            raise NNLMError(f"sentence {n}: expected a 1-d array of word ids in 0..{V - 1}")
        if ids.size and ((ids == BOS_ID) | (ids == EOS_ID)).any():
            raise NNLMError(f"sentence {n} holds <s> or </s>; sentence boundaries are added by the model")
        out.append(ids.astype(numpy.int64))
    return out


# -- the model -------------------------------------------------------------------------------------
def parameter_shapes(config: NNLMConfig, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """Every parameter of ``NNLM(config, vocab_size)`` and its shape, without building it."""
    V, m, h, k = vocab_size, config.embedding_dim, config.hidden, (config.order - 1) * config.embedding_dim
    shapes: dict[str, tuple[int, ...]] = {"C.weight": (V, m)}
    if h:
        shapes.update({"H.weight": (h, k), "H.bias": (h,), "U.weight": (V, h), "U.bias": (V,)})
    else:
        shapes["b"] = (V,)
    if config.direct:
        shapes["W.weight"] = (V, k)
    return shapes


def parameter_count(config: NNLMConfig, vocab_size: int) -> int:
    """The number of parameters, by formula: V·m + h·(n−1)m + h + V·h + V, plus V·(n−1)m with ``direct``."""
    return sum(math.prod(s) for s in parameter_shapes(config, vocab_size).values())


def training_bytes(config: NNLMConfig, vocab_size: int) -> int:
    """An estimate of the peak memory of training: parameters with gradients and two Adam moments
    (float32, 4 copies) and a batch's activations (the logits, their softmax and gradient: 3·B·V,
    the hidden layer and the concatenated vectors)."""
    B, k = config.batch_size, (config.order - 1) * config.embedding_dim
    return 4 * (4 * parameter_count(config, vocab_size) + B * (3 * vocab_size + 3 * config.hidden + 2 * k))


class NNLM(nn.Module):
    """Bengio et al. (2003), eq. 1: for a context of n−1 word ids w_{t−n+1} … w_{t−1},

        x = (C[w_{t−n+1}], …, C[w_{t−1}])               the word vectors, concatenated: (n−1)·m
        y = b + W·x + U·tanh(d + H·x)                     the unnormalized log-probabilities: V
        P(w_t = i | context) = exp(y_i) / Σ_j exp(y_j)

    with C (V, m) the shared word vectors (``nn.Embedding``, sparse gradients: a batch touches only
    its rows), H (h, (n−1)m) and d (h) the hidden layer (``nn.Linear`` ``H``), U (V, h) and b (V) the
    output layer (``nn.Linear`` ``U``; without a hidden layer b is a parameter of its own), and W
    (V, (n−1)m) the optional direct connections (``nn.Linear`` ``W`` without bias).

    ``forward(X)`` takes ids of shape (B, n−1) and returns the logits y, shape (B, V); the loss is
    ``dlia.cross_entropy(logits, targets)`` (fused log-softmax), in nats per token.

    Args:
        config: ``order``, ``embedding_dim``, ``hidden`` and ``direct`` are used.
        vocab_size: V.
        generator: the seeded source of the initial weights (default: ``config.seed``).
        dtype: the parameters' dtype (float32; float64 for gradient checks).

    Initial weights: C ~ N(0, 0.1²) (small vectors, so tanh starts near its linear part), the linear
    layers as PyTorch's (uniform in ±1/√fan_in).
    """

    def __init__(self, config: NNLMConfig, vocab_size: int, generator: dlia.Generator | None = None,
                 dtype: Any = numpy.float32) -> None:
        super().__init__()
        if not isinstance(vocab_size, int) or vocab_size < 4:
            raise NNLMError(f"the vocabulary needs <s>, </s>, <unk> and at least one word, got size {vocab_size!r}")
        gen = generator or dlia.Generator(config.seed)
        self.config, self.vocab_size = config, vocab_size
        k = (config.order - 1) * config.embedding_dim
        self.C = nn.Embedding(vocab_size, config.embedding_dim, sparse=True, dtype=dtype, generator=gen)
        self.C.weight.data *= self.C.weight.data.dtype.type(0.1)
        if config.hidden:
            self.H = nn.Linear(k, config.hidden, dtype=dtype, generator=gen)
            self.U = nn.Linear(config.hidden, vocab_size, dtype=dtype, generator=gen)
        else:
            self.b = nn.Parameter(numpy.zeros(vocab_size, dtype=dtype))
        if config.direct:
            self.W = nn.Linear(k, vocab_size, bias=False, dtype=dtype, generator=gen)

    def forward(self, X: Any) -> dlia.Tensor:
        X = X.data if isinstance(X, dlia.Tensor) else numpy.asarray(X)
        B = X.shape[0]
        x = self.C(X).reshape(B, -1)  # (B, n−1, m) → (B, (n−1)·m): the vectors side by side
        y = self.U(self.H(x).tanh()) if self.config.hidden else self.b
        if self.config.direct:
            y = self.W(x) + y
        return y

    def loss(self, X: Any, y: Any) -> dlia.Tensor:
        """Mean cross-entropy of targets ``y`` (B,) given contexts ``X`` (B, n−1), in nats per token."""
        return dlia.cross_entropy(self(X), numpy.asarray(y))


def _nll(model: NNLM, X: numpy.ndarray, y: numpy.ndarray, batch: int = 1024) -> numpy.ndarray:
    """−ln P(y_i | X_i) of every example (float64), in batches, without recording gradients."""
    out = numpy.empty(len(y))
    was = model.training
    model.eval()
    with dlia.no_grad():
        for i in range(0, len(y), batch):
            logits = model(X[i:i + batch])
            out[i:i + batch] = dlia.cross_entropy(logits, y[i:i + batch], reduction="none").numpy()
    model.train(was)
    return out


def token_logprobs(model: NNLM, sentences: Sequence[Any]) -> numpy.ndarray:
    """ln P (natural log) of every predicted token of ``sentences`` (word ids), in order: each
    sentence's words then its ``</s>``, the tokens ``NGramLM.token_logprobs`` scores (which gives log10).

    Raises:
        NNLMError: no sentences, or ids outside the vocabulary.
    """
    sentences = _check_ids(sentences, model.vocab_size)
    if not sentences:
        raise NNLMError("cannot score an empty test set (no sentences)")
    X, y = contexts(sentences, model.config.order)
    return -_nll(model, X, y)


def perplexity(model: NNLM, sentences: Sequence[Any]) -> float:
    """exp(−(1/N) Σ ln P(token | context)) over the N predicted tokens (words and each ``</s>``). A test
    set of only unknown words is scored as ``<unk>`` tokens and ``</s>``, as ``NGramLM`` scores it."""
    return float(math.exp(-token_logprobs(model, sentences).mean()))


def prob_distribution(model: NNLM, context: Sequence[int]) -> numpy.ndarray:
    """P(w | context) for every word id w: float64, shape (V,), summing to 1. ``context`` is the ids
    before the word (the last n−1 are used; a shorter one is padded with ``<s>`` as a sentence start)."""
    n = model.config.order
    ctx = [int(c) for c in context][-(n - 1):]
    if any(not 0 <= c < model.vocab_size for c in ctx):
        raise NNLMError(f"context ids must be in 0..{model.vocab_size - 1}, got {ctx}")
    ctx = [BOS_ID] * (n - 1 - len(ctx)) + ctx
    was = model.training
    model.eval()
    with dlia.no_grad():
        logits = model(numpy.array([ctx], dtype=numpy.int64)).numpy()[0].astype(numpy.float64)
    model.train(was)
    p = numpy.exp(logits - logits.max())
    return p / p.sum()


def generate(model: NNLM, num: int = 1, max_len: int = 50, seed: int | None = None,
             prefix: Sequence[int] = ()) -> list[list[int]]:
    """``num`` sentences of word ids drawn word by word from P(w | context), each ending when ``</s>``
    is drawn or after ``max_len`` words (``prefix`` included, kept). ``<s>`` is never drawn (its
    probability is set to 0 and the rest renormalized); the same ``seed`` gives the same sentences."""
    return list(generate_iter(model, num, max_len, seed, prefix))


def generate_iter(model: NNLM, num: int = 1, max_len: int = 50, seed: int | None = None,
                  prefix: Sequence[int] = ()) -> Iterator[list[int]]:
    """``generate``, one sentence at a time (for printing them as they come)."""
    if not isinstance(max_len, int) or max_len < 1:
        raise NNLMError(f"max_len must be a positive integer, got {max_len!r}")
    rng = numpy.random.default_rng(seed)
    for _ in range(num):
        words = [int(w) for w in prefix]
        while len(words) < max_len:
            p = prob_distribution(model, words)
            p[BOS_ID] = 0.0
            cdf = numpy.cumsum(p)
            w = min(int(numpy.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(p) - 1)
            if w == EOS_ID:
                break
            words.append(w)
        yield words


# -- mixture with an n-gram model ------------------------------------------------------------------
def _probs(a: Any, name: str) -> numpy.ndarray:
    p = numpy.asarray(a, dtype=numpy.float64).reshape(-1)
    if p.size == 0:
        raise NNLMError(f"{name}: no tokens")
    if not (numpy.isfinite(p).all() and (p >= 0).all() and (p <= 1 + 1e-9).all()):
        raise NNLMError(f"{name}: per-token probabilities must be in [0, 1]")
    return p


def mixture(nnlm_token_probs: Any, ngram_token_probs: Any, tol: float = 1e-10, max_iter: int = 10_000) -> float:
    """The weight λ ∈ [0, 1] of the NNLM in p = λ·p_nnlm + (1 − λ)·p_ngram that maximizes the likelihood
    of the tokens (validation data), by EM (the paper tunes the mixture weight on validation data).

    The two models are the mixture's components; each token's posterior responsibility of the NNLM
    is r_t = λ·p1_t / (λ·p1_t + (1 − λ)·p2_t), and the M step sets λ = mean_t r_t. The log-likelihood
    Σ_t ln(λ·p1_t + (1 − λ)·p2_t) is concave in λ, and EM never decreases it, so this converges to the
    global maximum (λ = 0 or 1 when one model is better on every token). Tokens both models give
    probability 0 have no say (the mixture is 0 there for every λ).

    Args:
        nnlm_token_probs, ngram_token_probs: P of the same tokens under each model, shape (N,).

    Returns:
        λ, to at most ``tol`` change between iterations.
    """
    p1, p2 = _probs(nnlm_token_probs, "nnlm_token_probs"), _probs(ngram_token_probs, "ngram_token_probs")
    if p1.shape != p2.shape:
        raise NNLMError(f"the two models scored different tokens: {p1.size} and {p2.size}")
    used = (p1 > 0) | (p2 > 0)
    p1, p2 = p1[used], p2[used]
    if p1.size == 0:
        return 0.5
    lam = 0.5
    for _ in range(max_iter):
        a = lam * p1
        new = float(numpy.mean(a / (a + (1.0 - lam) * p2)))
        if abs(new - lam) <= tol:
            return new
        lam = new
    return lam


def mixed_perplexity(nnlm_token_probs: Any, ngram_token_probs: Any, lam: float) -> float:
    """exp(−mean_t ln(λ·p1_t + (1 − λ)·p2_t)): the perplexity of the mixture (``inf`` if some token gets 0)."""
    p1, p2 = _probs(nnlm_token_probs, "nnlm_token_probs"), _probs(ngram_token_probs, "ngram_token_probs")
    if p1.shape != p2.shape:
        raise NNLMError(f"the two models scored different tokens: {p1.size} and {p2.size}")
    if not 0.0 <= lam <= 1.0:
        raise NNLMError(f"the mixture weight must be in [0, 1], got {lam!r}")
    with numpy.errstate(divide="ignore"):
        return float(math.exp(-numpy.mean(numpy.log(lam * p1 + (1.0 - lam) * p2))))


# -- training --------------------------------------------------------------------------------------
#: progress callback: (tokens done this epoch, tokens per epoch, the batch's loss, tokens/s of this session)
ProgressFn = Callable[[int, int, float, float], None]


class NNLMTrainer:
    """Training of an ``NNLM``: mini-batches of examples in a shuffled order, validation perplexity
    after each epoch, early stopping that keeps the best weights, checkpoints and exact resume.

    The order of epoch e is a permutation drawn from ``numpy.random.default_rng([seed, e])``, so it
    depends on nothing but the seed and the epoch; the model's initial weights come from
    ``dlia.Generator(seed)``. Nothing else is random, so the state of a run is the weights, the
    optimizer's moments, the epoch and the batch reached, the best weights and perplexity, and the
    history: ``save`` writes all of it (the best weights as the checkpoint of the best epoch, named in
    the others), and ``resume`` from any checkpoint ends with the weights of an uninterrupted run,
    bit for bit.

    Args:
        config: hyper-parameters.
        vocab: the words (``<s>``, ``</s>``, ``<unk>`` first), V = len(vocab).
        train, val: sentences of word ids (``ngram.encode_sentences``).
    """

    def __init__(self, config: NNLMConfig, vocab: Sequence[str], train: Sequence[Any], val: Sequence[Any]) -> None:
        self.config, self.vocab = config, list(vocab)
        V = len(self.vocab)
        if self.vocab[:3] != ["<s>", "</s>", "<unk>"]:
            raise NNLMError(f"a vocabulary must start with <s>, </s>, <unk> (ids 0, 1, 2), got {self.vocab[:3]}")
        self.X, self.y = contexts(_check_ids(train, V), config.order)
        self.Xv, self.yv = contexts(_check_ids(val, V), config.order)
        if len(self.y) == 0:
            raise NNLMError("no training sentences")
        if len(self.yv) == 0:
            raise NNLMError("no validation sentences (early stopping needs them)")
        self.generator = dlia.Generator(config.seed)
        self.model = NNLM(config, V, self.generator)
        params = self.model.parameters()
        if config.optimizer == "adam":
            self.optimizer: optim.Optimizer = optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        else:
            self.optimizer = optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay)
        self.epoch = 0  # epochs finished
        self.batch = 0  # batches of the current epoch done
        self.history: dict[str, list[float]] = {"train_loss": [], "val_ppl": []}  # per epoch
        self._epoch_loss = 0.0  # sum of the batch losses · batch sizes of the current epoch
        self.best_ppl = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, numpy.ndarray] | None = None
        self.best_checkpoint: str | None = None  # the file holding the best weights, in the checkpoint folder
        self.bad_epochs = 0  # epochs since the best one
        self.elapsed = 0.0  # seconds spent training, over every session of the run

    @property
    def batches_per_epoch(self) -> int:
        return -(-len(self.y) // self.config.batch_size)

    @property
    def done(self) -> bool:
        """Whether the run is over: every epoch done, or early-stopped."""
        c = self.config
        return self.epoch >= c.epochs or (c.patience > 0 and self.bad_epochs >= c.patience)

    def order(self, epoch: int) -> numpy.ndarray:
        """The permutation of the training examples in epoch ``epoch``."""
        return numpy.random.default_rng([self.config.seed, epoch]).permutation(len(self.y))

    def train_step(self, idx: numpy.ndarray) -> float:
        """One optimizer step on the examples ``idx``; returns their mean loss (nats per token)."""
        self.optimizer.zero_grad()
        loss = self.model.loss(self.X[idx], self.y[idx])
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def validation_perplexity(self) -> float:
        """exp(mean NLL) of the validation tokens.

        Raises:
            FloatingPointError: the model diverged (a perplexity too large for a float, or NaN).
        """
        nll = float(_nll(self.model, self.Xv, self.yv).mean())
        if not nll < 700:  # exp(700) ≈ 1e304: beyond, or NaN, the weights are useless
            raise FloatingPointError(f"training diverged in epoch {self.epoch + 1} (validation loss {nll:.4g} nats); "
                                     f"lower the learning rate")
        return math.exp(nll)

    def run_epoch(self, on_batch: ProgressFn | None = None, stop: Callable[[], bool] | None = None) -> bool:
        """Train the rest of the current epoch (from ``self.batch``), then validate and update the best
        weights. ``stop`` is asked after each batch; returns False when it stopped the epoch early."""
        B, N = self.config.batch_size, len(self.y)
        perm = self.order(self.epoch)
        started, done_here = time.perf_counter(), 0
        while self.batch < self.batches_per_epoch:
            idx = perm[self.batch * B:(self.batch + 1) * B]
            t0 = time.perf_counter()
            loss = self.train_step(idx)
            self.elapsed += time.perf_counter() - t0
            if not math.isfinite(loss):
                raise FloatingPointError(f"training diverged in epoch {self.epoch + 1} (loss {loss}); lower the learning rate")
            self._epoch_loss += loss * len(idx)
            self.batch += 1
            done_here += len(idx)
            if on_batch is not None:
                on_batch(min(self.batch * B, N), N, loss, done_here / max(time.perf_counter() - started, 1e-9))
            if stop is not None and self.batch < self.batches_per_epoch and stop():
                return False
        ppl = self.validation_perplexity()
        self.history["train_loss"].append(self._epoch_loss / N)
        self.history["val_ppl"].append(ppl)
        self.epoch, self.batch, self._epoch_loss = self.epoch + 1, 0, 0.0
        if ppl < self.best_ppl:
            self.best_ppl, self.best_epoch, self.bad_epochs = ppl, self.epoch, 0
            self.best_state = {k: v.numpy().copy() for k, v in self.model.state_dict().items()}
            self.best_checkpoint = None  # set when saved
        else:
            self.bad_epochs += 1
        return True

    def restore_best(self) -> None:
        """Put the best epoch's weights into the model (after early stopping or the last epoch)."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    def fit(self, folder: str | os.PathLike[str] | None = None, max_time: float | None = None,
            on_batch: ProgressFn | None = None, on_epoch: Callable[[NNLMTrainer, Path | None], None] | None = None) -> bool:
        """Train until done (all epochs or early stopping) or ``max_time`` seconds, writing a
        checkpoint into ``folder`` (when given) after every epoch and when stopped by the time.

        Returns:
            True when the run is over (the model then holds the best weights), False when ``max_time``
            stopped it first.
        """
        deadline = None if max_time is None else time.perf_counter() + max_time
        stop = None if deadline is None else (lambda: time.perf_counter() >= deadline)
        while not self.done:
            finished = self.run_epoch(on_batch, stop)
            path = self.save(folder) if folder is not None else None
            if on_epoch is not None and finished:
                on_epoch(self, path)
            if not finished or (stop is not None and stop() and not self.done):
                return False
        self.restore_best()
        return True

    # -- checkpoints -------------------------------------------------------------------------------
    def checkpoint_file(self) -> str:
        ppl = self.history["val_ppl"][-1] if self.history["val_ppl"] and self.batch == 0 else None
        return checkpoint_name(PREFIX, self.epoch + self.batch / self.batches_per_epoch, ppl,
                               decimals=0 if self.batch == 0 else len(str(self.batches_per_epoch)))

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the run's state into ``folder`` atomically; returns the path. The checkpoint of the
        best epoch holds the best weights; the others name it. So save after every epoch (as ``fit``
        does): a best epoch that was never saved leaves a resumed run without its best weights."""
        name = self.checkpoint_file()
        is_best = self.batch == 0 and self.best_epoch == self.epoch and self.best_checkpoint is None and self.epoch > 0
        best_name = name if is_best else self.best_checkpoint
        extra = {"epoch": self.epoch, "batch": self.batch, "epoch_loss": self._epoch_loss, "best_ppl": self.best_ppl,
                 "best_epoch": self.best_epoch, "best_checkpoint": best_name, "bad_epochs": self.bad_epochs,
                 "elapsed_s": self.elapsed, "examples": [len(self.y), len(self.yv)]}
        path = save_checkpoint(Path(folder) / name, self.model, self.optimizer, step=self.epoch,
                               config=self.config.to_dict(), vocab=self.vocab, history=self.history, extra=extra)
        self.best_checkpoint = best_name
        return path

    @classmethod
    def resume(cls, path: str | os.PathLike[str], train: Sequence[Any], val: Sequence[Any],
               epochs: int | None = None) -> NNLMTrainer:
        """The trainer of the checkpoint at ``path``, ready to continue on ``train``/``val`` (the same
        sentences, encoded with its vocabulary). ``epochs`` may lengthen the run.

        Raises:
            CheckpointError: not a usable NNLM checkpoint, other data, or the best epoch's file is gone.
        """
        p = Path(path)
        config, vocab, ckpt = read_checkpoint(p)
        if epochs is not None:
            config = NNLMConfig.from_dict({**config.to_dict(), "epochs": epochs})
        trainer = cls(config, vocab, train, val)
        e = ckpt.extra
        try:
            if e.get("examples") != [len(trainer.y), len(trainer.yv)]:
                raise CheckpointError(f"{p} was trained on other data ({e.get('examples')} training and validation "
                                      f"tokens, these are {[len(trainer.y), len(trainer.yv)]}); resume with its corpus")
            epoch, batch, bad = e["epoch"], e["batch"], e["bad_epochs"]
            if not all(isinstance(v, int) and v >= 0 for v in (epoch, batch, bad)) or batch >= trainer.batches_per_epoch:
                raise ValueError("the epoch or batch reached is damaged")
            history = {k: [float(v) for v in ckpt.history[k]] for k in trainer.history}
            best_ppl, best_epoch, best_name = float(e["best_ppl"]), int(e["best_epoch"]), e["best_checkpoint"]
            if best_name is not None and (not isinstance(best_name, str) or Path(best_name).name != best_name):
                raise ValueError(f"the best checkpoint's name is damaged ({best_name!r})")
            epoch_loss, elapsed = float(e["epoch_loss"]), float(e.get("elapsed_s", 0.0))
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{p} has a corrupt training state: {err}") from None
        load_checkpoint(p, trainer.model, trainer.optimizer)
        if best_name is not None:
            best_path = p.parent / best_name
            if best_path.resolve() == p.resolve():
                trainer.best_state = {k: v.numpy().copy() for k, v in trainer.model.state_dict().items()}
            else:
                if not best_path.exists():
                    raise CheckpointError(f"{p}: the checkpoint of its best epoch, {best_path}, is missing")
                best_ckpt = load_checkpoint(best_path)
                expect_model_class(best_ckpt, "NNLM", "nnlm", "dlia nnlm train")
                expect_shapes(best_ckpt, parameter_shapes(config, len(vocab)), f"{p}'s config asks")
                trainer.best_state = {k: numpy.array(v) for k, v in best_ckpt.model_state.items()}
        trainer.epoch, trainer.batch, trainer.bad_epochs, trainer.history = epoch, batch, bad, history
        trainer.best_ppl, trainer.best_epoch, trainer.best_checkpoint = best_ppl, best_epoch, best_name
        trainer._epoch_loss, trainer.elapsed = epoch_loss, elapsed
        return trainer


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[NNLMConfig, list[str], Any]:
    """The config and vocabulary of the NNLM checkpoint at ``path``, and the checkpoint, all checked
    before a model is built: an ``NNLM`` checkpoint, a valid config and vocabulary, and weights of
    exactly the shapes they imply.

    Raises:
        CheckpointError: naming the file and what is wrong.
    """
    ckpt = load_checkpoint(path)
    expect_model_class(ckpt, "NNLM", "nnlm", "dlia nnlm train")
    try:
        config = NNLMConfig.from_dict(ckpt.config)
        vocab = ckpt.vocab
        if not (isinstance(vocab, list) and all(isinstance(w, str) for w in vocab) and vocab[:3] == ["<s>", "</s>", "<unk>"]
                and len(set(vocab)) == len(vocab) and len(vocab) >= 4):
            raise ValueError("its vocabulary is damaged")
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: {e}") from None
    expected = parameter_shapes(config, len(vocab))
    expect_shapes(ckpt, expected, "its config and vocabulary ask")
    extra = sorted(set(ckpt.model_state) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: unexpected weights {', '.join(extra)}")
    return config, vocab, ckpt


def load_model(path: str | os.PathLike[str]) -> tuple[NNLM, list[str], NNLMConfig]:
    """The trained model, vocabulary and config of a checkpoint (its weights as saved).

    Raises:
        CheckpointError: see ``read_checkpoint``.
    """
    config, vocab, _ = read_checkpoint(path)
    model = NNLM(config, len(vocab))
    load_checkpoint(path, model)
    model.eval()
    return model, vocab, config


__all__ = ["NNLM", "NNLMConfig", "NNLMError", "NNLMTrainer", "PREFIX", "UNK_ID", "contexts", "generate", "load_model",
           "mixed_perplexity", "mixture", "parameter_count", "parameter_shapes", "perplexity", "prob_distribution",
           "read_checkpoint", "token_logprobs", "training_bytes"]
