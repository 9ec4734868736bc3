"""Image–sentence ranking in small: Karpathy & Fei-Fei (2015), "Deep Visual-Semantic Alignments",
on the generated shape scenes (``dlia.data.shapes``).

Image regions and sentence words are embedded in one h-dimensional space; an image and a sentence
score high when every word finds a region it matches. Trained with the paper's max-margin ranking
objective, it retrieves sentences for an image and images for a sentence, and says which region each
word matched (the alignment).

The pieces:

- ``AlignConfig``: every hyper-parameter, checked on construction.
- ``RegionCNN``: a small CNN whose 3 × 3 feature map lines up with the scene grid: one region per cell.
- ``Aligner``: regions ``v_i`` and words ``s_t`` in one space; ``scores`` gives S_kl for every pair.
- ``ranking_loss``: the max-margin objective, with pairs of one sentence left out of the negatives.
- ``retrieval_metrics``: Recall@1/5/10 and median rank, both ways, counting same-sentence items as hits.
- ``AlignTrainer``: shuffled epochs over generated scenes, evaluation, checkpoints, exact resume.
- ``align``: for one image and one sentence, each word's best region and its score.

Word ids: 0 is padding (``PAD``), then the words of the vocabulary (``make_vocab``: the scene
grammar's 18 words, ``dlia.data.shapes.WORDS``, for ``dlia caption align``). This module knows
nothing of how scenes are made: the caller gives images and sentences (``Pairs``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy

import dlia
from dlia import nn, optim
from dlia.io import CheckpointError, checkpoint_name, load_checkpoint, save_checkpoint
from dlia.io.checkpoint import expect_model_class, expect_shapes

#: the prefix of checkpoint file names: ``align_epoch002.50_0.8123.npz`` (epoch, mean R@1 of both ways)
PREFIX = "align"
CELLS = ("gru", "lstm", "rnn")
SCORES = ("words", "both")
PAD = 0
PAD_WORD = "<pad>"
#: a score masked out of a maximum (padding words)
_MASKED = -1e30


class AlignError(ValueError):
    """Input the ranking model cannot use (a bad setting, an unknown word); one line."""


@dataclass
class AlignConfig:
    """Hyper-parameters of the ranking model and its training (``dlia caption align``'s flags).

    The defaults reach R@1 ≥ 80 % both ways on 1,000 held-out pairs (docs/captioning.md).
    A bad value raises ``AlignError`` naming the field.
    """

    cell: str = "gru"  # gru | lstm | rnn: the bidirectional sentence RNN
    embedding_size: int = 32  # word vectors fed to the RNN
    hidden_size: int = 64  # h: the RNN's state per direction and the shared image–sentence space
    channels: int = 16  # filters of the CNN's first convolution (the second has twice as many)
    image_size: int = 36  # the scenes' side in pixels; a multiple of 6, at least 24
    score: str = "both"  # words: S = Σ_t max_i v_i·s_t (the paper); both: + Σ_i max_t v_i·s_t (see ``scores``)
    margin: float = 1.0  # Δ of the ranking objective
    train_size: int = 8000  # generated training scenes
    test_size: int = 1000  # held-out scenes (evaluation)
    batch_size: int = 50
    learning_rate: float = 2e-3  # Adam
    grad_clip: float = 5.0  # the global gradient norm is clipped to this (0: off)
    max_epochs: int = 4
    eval_every: int = 160  # iterations between evaluations (each writes a checkpoint)
    seed: int = 0  # the initial weights, the training scenes and the order of the batches

    def __post_init__(self) -> None:
        for name, choices in (("cell", CELLS), ("score", SCORES)):
            if getattr(self, name) not in choices:
                raise AlignError(f"align config: {name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        for f in fields(self):
            if f.name in ("cell", "score"):
                continue
            value = getattr(self, f.name)
            kind, low, high = _RANGES[f.name]
            ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and low <= value <= high):
                what = "an integer" if kind is int else "a number"
                raise AlignError(f"align config: {f.name} must be {what} in [{low:g}, {high:g}], got {value!r}")
        if self.image_size % 6:
            raise AlignError(f"align config: image_size must be a multiple of 6 (the CNN halves it, then pools it "
                             f"to the 3 × 3 grid), got {self.image_size}")
        if self.learning_rate <= 0 or self.margin <= 0:
            raise AlignError("align config: learning_rate and margin must be above 0")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AlignConfig:
        """Build from a dict (e.g. a checkpoint's config); unknown keys are rejected."""
        if not isinstance(values, dict):
            raise AlignError(f"align config: expected a dict, got {type(values).__name__}")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise AlignError(f"unknown align config keys: {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: (type, lowest, highest) of each numeric field
_RANGES: dict[str, tuple[type, float, float]] = {
    "embedding_size": (int, 1, 2**31 - 1), "hidden_size": (int, 1, 2**31 - 1), "channels": (int, 1, 2**31 - 1),
    "image_size": (int, 24, 65536), "margin": (float, 0, 1e6), "train_size": (int, 1, 2**40),
    "test_size": (int, 1, 2**40), "batch_size": (int, 2, 2**31 - 1), "learning_rate": (float, 0, 1e6),
    "grad_clip": (float, 0, 1e30), "max_epochs": (int, 1, 2**31 - 1), "eval_every": (int, 1, 2**62),
    "seed": (int, 0, 2**63 - 1),
}


# -- data ------------------------------------------------------------------------------------------
def make_vocab(words: Sequence[str]) -> list[str]:
    """The vocabulary of a model: ``PAD_WORD`` (id 0), then ``words`` (sorted, distinct)."""
    return [PAD_WORD, *sorted(set(words) - {PAD_WORD})]


def encode(sentence: str, vocab: Sequence[str]) -> numpy.ndarray:
    """The word ids of ``sentence`` (split on white space) in ``vocab``.

    Raises:
        AlignError: an empty sentence, or one with words not in ``vocab`` (named).
    """
    words = sentence.split()
    if not words:
        raise AlignError("an empty sentence has nothing to align")
    index = {w: i for i, w in enumerate(vocab) if i != PAD}
    unknown = sorted({w for w in words if w not in index})
    if unknown:
        raise AlignError(f"{', '.join(repr(w) for w in unknown)} {'is' if len(unknown) == 1 else 'are'} not in the "
                         f"model's vocabulary ({', '.join(vocab[1:])})")
    return numpy.array([index[w] for w in words], dtype=numpy.int64)


def pad_ids(seqs: Sequence[numpy.ndarray]) -> tuple[numpy.ndarray, numpy.ndarray]:
    """(ids (B, T) padded with ``PAD`` at the end, mask (B, T), True on real words)."""
    lengths = numpy.array([len(s) for s in seqs], dtype=numpy.int64)
    ids = numpy.full((len(seqs), int(lengths.max(initial=1))), PAD, dtype=numpy.int64)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
    return ids, numpy.arange(ids.shape[1])[None, :] < lengths[:, None]


def images_to_input(images: numpy.ndarray) -> numpy.ndarray:
    """uint8 (N, H, W, 3) RGB → float32 (N, 3, H, W) in [0, 1], the CNN's input."""
    return numpy.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=numpy.float32) / 255.0


@dataclass
class Pairs:
    """Scenes as arrays: ``images`` uint8 (N, S, S, 3), ``sentences`` (N strings), ``ids`` (one id
    array per sentence) and ``group`` (N,): the index of each sentence among the distinct ones, so
    ``group[a] == group[b]`` exactly when scenes a and b have one sentence."""

    images: numpy.ndarray
    sentences: list[str]
    ids: list[numpy.ndarray]
    group: numpy.ndarray

    @classmethod
    def make(cls, images: numpy.ndarray, sentences: Sequence[str], vocab: Sequence[str]) -> Pairs:
        """Pairs of ``images`` (N, S, S, 3) and ``sentences`` (N), encoded with ``vocab``."""
        sentences = list(sentences)
        first: dict[str, int] = {}
        group = numpy.array([first.setdefault(s, len(first)) for s in sentences], dtype=numpy.int64)
        return cls(numpy.asarray(images), sentences, [encode(s, vocab) for s in sentences], group)

    def __len__(self) -> int:
        return len(self.sentences)


# -- the model -------------------------------------------------------------------------------------
class RegionCNN(nn.Module):
    """Image → one feature vector per cell of the scene's 3 × 3 grid.

    conv3×3(3 → c) → ReLU → maxpool 2 → conv3×3(c → 2c) → ReLU → maxpool (S/6) → (N, 2c, 3, 3):
    the last pooling window is exactly one grid cell, so feature-map cell (r, c) sees the shape drawn
    in grid cell (r, c) (and, through the 3×3 kernels, a few pixels of its neighbours). Each feature
    of the second layer sees 8 × 8 pixels, enough for a shape's corners and edges; the max over the
    cell says whether they occur anywhere in it. Input (N, 3, S, S) in [0, 1], S a multiple of 6;
    output (N, 9, 2c), the cells in reading order (row by row).
    """

    def __init__(self, channels: int, image_size: int, generator: dlia.Generator | None = None) -> None:
        super().__init__()
        c = channels
        self.image_size = image_size
        self.conv1 = nn.Conv2d(3, c, 3, padding=1, generator=generator)
        self.conv2 = nn.Conv2d(c, 2 * c, 3, padding=1, generator=generator)
        self.out_features = 2 * c

    def forward(self, x: Any) -> dlia.Tensor:
        h = dlia.max_pool2d(self.conv1(x).relu(), 2)
        h = dlia.max_pool2d(self.conv2(h).relu(), self.image_size // 6)  # (N, 2c, 3, 3)
        n, c = h.shape[0], h.shape[1]
        return h.reshape(n, c, 9).transpose(0, 2, 1)


def parameter_shapes(config: AlignConfig, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """Every parameter of ``Aligner(config, vocab_size)`` and its shape, without building it."""
    c, E, H, V = config.channels, config.embedding_size, config.hidden_size, vocab_size
    G = {"lstm": 4, "gru": 3, "rnn": 1}[config.cell] * H
    shapes: dict[str, tuple[int, ...]] = {
        "cnn.conv1.weight": (c, 3, 3, 3), "cnn.conv1.bias": (c,), "cnn.conv2.weight": (2 * c, c, 3, 3),
        "cnn.conv2.bias": (2 * c,),
        "region.weight": (H, 2 * c), "region.bias": (H,), "where": (9, H), "embedding.weight": (V, E),
    }
    for d in ("forward", "backward"):
        shapes.update({f"rnn_{d}.weight_ih_l0": (G, E), f"rnn_{d}.weight_hh_l0": (G, H),
                       f"rnn_{d}.bias_ih_l0": (G,), f"rnn_{d}.bias_hh_l0": (G,)})
    shapes.update({"word.weight": (H, H), "word.bias": (H,)})
    return shapes


def parameter_count(config: AlignConfig, vocab_size: int) -> int:
    return sum(math.prod(s) for s in parameter_shapes(config, vocab_size).values())


def training_bytes(config: AlignConfig, vocab_size: int) -> int:
    """An estimate of the peak memory of training: the scenes (uint8), the parameters with gradients
    and Adam's moments, and one batch's activations (the CNN's maps, kept for backward, dominate)."""
    S, c, B, H = config.image_size, config.channels, config.batch_size, config.hidden_size
    scenes = (config.train_size + config.test_size) * (3 * S * S + 200)
    per_image = 4 * (3 * S * S + 3 * c * S * S + 6 * c * (S // 2) ** 2)
    per_sentence = 4 * 26 * (config.embedding_size + 10 * H)
    scores = 4 * 3 * B * B * 9 * 26
    return scenes + 16 * parameter_count(config, vocab_size) + 2 * B * (per_image + per_sentence) + scores


class Aligner(nn.Module):
    """Regions and words in one space (Karpathy & Fei-Fei 2015, section 3.1, in small).

    - Regions: the CNN's 9 cell vectors ``cnn_i`` → ``v_i = W_m·cnn_i + b_m + p_i``. The paper's
      regions are detected boxes whose CNN features see the crop; our cells are pooled, which forgets
      where in the picture they are, so each cell adds a learned vector ``p_i`` ("where"): without it
      no region could match the words "top left".
    - Words: embeddings ``x_t`` → a bidirectional RNN → ``s_t = ReLU(W_d(h_t^fwd + h_t^bwd) + b_d)``
      (the paper's equation 2 with our RNN cells). The two directions are two one-directional
      layers, ``rnn_forward`` over the words and ``rnn_backward`` over them reversed (each sentence
      reversed within its own length), so a padded batch runs in one call per direction and the
      backward RNN never reads padding; they compute what ``nn.GRU(bidirectional=True)`` computes
      on each sentence alone (tested).

    Args:
        config: the hyper-parameters (``cell``, ``embedding_size``, ``hidden_size``, ``channels``,
            ``image_size``, ``score``).
        vocab_size: word ids are ``0 .. vocab_size − 1`` (0 = padding).
        generator: the seeded source of the initial weights.
        dtype: the parameters' dtype (float64 for gradient checks).
    """

    def __init__(self, config: AlignConfig, vocab_size: int, generator: dlia.Generator | None = None,
                 dtype: Any = numpy.float32) -> None:
        super().__init__()
        gen = generator or dlia.Generator(config.seed)
        self.config, self.vocab_size = config, vocab_size
        E, H = config.embedding_size, config.hidden_size
        self.cnn = RegionCNN(config.channels, config.image_size, gen)
        self.region = nn.Linear(self.cnn.out_features, H, generator=gen)
        self.where = nn.Parameter(numpy.zeros((9, H), dtype=numpy.float32))
        self.embedding = nn.Embedding(vocab_size, E, generator=gen)
        layer = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[config.cell]
        self.rnn_forward = layer(E, H, batch_first=True, generator=gen)
        self.rnn_backward = layer(E, H, batch_first=True, generator=gen)
        self.word = nn.Linear(H, H, generator=gen)
        if dtype != numpy.float32:
            self.to(dtype=dtype)

    def regions(self, images: Any) -> dlia.Tensor:
        """``v``: (N, 9, h) for images (N, 3, S, S) in [0, 1]."""
        x = images if isinstance(images, dlia.Tensor) else dlia.tensor(images, dtype=self.where.dtype)
        return self.region(self.cnn(x)) + self.where

    def words(self, ids: numpy.ndarray, mask: numpy.ndarray) -> dlia.Tensor:
        """``s``: (B, T, h) for padded ids (B, T) and their mask (B, T); rows at padding are garbage
        (every use masks them)."""
        ids = numpy.asarray(ids, dtype=numpy.int64)
        lengths = mask.sum(axis=1)
        T = ids.shape[1]
        # reversed within each sentence: position t of row b reads word lengths[b] − 1 − t
        rev = numpy.where(mask, lengths[:, None] - 1 - numpy.arange(T)[None, :], numpy.arange(T)[None, :])
        rows = numpy.arange(len(ids))[:, None]
        fwd, _ = self.rnn_forward(self.embedding(ids))
        bwd, _ = self.rnn_backward(self.embedding(ids[rows, rev]))
        bwd = bwd[rows, rev]  # back in the sentence's order (the same permutation undoes itself)
        return self.word(fwd + bwd).relu()

    def forward(self, images: Any, ids: numpy.ndarray, mask: numpy.ndarray) -> dlia.Tensor:
        """S (N images, B sentences), see ``scores``."""
        return scores(self.regions(images), self.words(ids, mask), mask, self.config.score)


def dots(v: dlia.Tensor, s: dlia.Tensor) -> dlia.Tensor:
    """Every region–word dot product: v (N, R, h), s (B, T, h) → (N, R, B, T)."""
    N, R, h = v.shape
    B, T, _ = s.shape
    return (v.reshape(N * R, h) @ s.reshape(B * T, h).T).reshape(N, R, B, T)


def scores(v: dlia.Tensor, s: dlia.Tensor, mask: numpy.ndarray, score: str = "both") -> dlia.Tensor:
    """Image–sentence scores S (N, B) from regions v (N, R, h) and words s (B, T, h), mask (B, T).

    ``words`` (the paper's simplified score, section 3.1.3):  S_kl = Σ_t max_i v_i·s_t — every word
    of sentence l is aligned to its best region of image k.

    ``both`` adds the converse sum, every region aligned to its best word:
    S_kl = Σ_t max_i v_i·s_t + Σ_i max_t v_i·s_t. With the words term alone an image holding the
    sentence's shapes *and more* scores at least as high as the sentence's own image (an extra region
    can only raise a max), so sentence → image retrieval cannot prefer the exact scene; the region
    term makes shapes that no word mentions cost. (The paper's thresholded variant, Σ_t Σ_i
    max(0, v_i·s_t), has the same blind spot.)
    """
    d = dots(v, s)
    m = numpy.asarray(mask)
    word_term = (d.max(axis=1) * m.astype(d.dtype)).sum(axis=2)  # (N, B, T) → (N, B)
    if score == "words":
        return word_term
    region_term = dlia.where(m[None, None, :, :], d, _MASKED).max(axis=3).sum(axis=1)  # (N, R, B) → (N, B)
    return word_term + region_term


def negatives(group: numpy.ndarray) -> numpy.ndarray:
    """(B, B) bool: True where pair (k, l) is a negative, i.e. sentences k and l differ."""
    g = numpy.asarray(group)
    return g[:, None] != g[None, :]


def ranking_loss(S: dlia.Tensor, group: numpy.ndarray, margin: float = 1.0) -> dlia.Tensor:
    """The max-margin ranking objective of a batch, per image (the paper's equation 8 / B):

        C = (1/B) Σ_k [ Σ_l max(0, S_kl − S_kk + Δ) + Σ_l max(0, S_lk − S_kk + Δ) ]

    where S_kl scores image k against sentence l (B, B) and the sums run over the negatives l only:
    scenes whose sentence differs from scene k's (``group[l] != group[k]``). Two scenes of one batch
    with one sentence are both right answers, so neither is pushed below the other.
    """
    neg = negatives(group)
    diag = dlia.tensor(numpy.eye(S.shape[0], dtype=bool))
    d = (S * diag.astype(S.dtype)).sum(axis=1)  # S_kk
    B = S.shape[0]
    rank_sentences = (S - d.reshape(B, 1) + margin).relu()  # image k against sentence l: row k
    rank_images = (S - d.reshape(1, B) + margin).relu()  # sentence k against image l: column k
    w = neg.astype(S.dtype)
    return ((rank_sentences + rank_images) * w).sum() / B


# -- evaluation ------------------------------------------------------------------------------------
@dataclass
class Retrieval:
    """Recall@K (fractions) and median rank (1 = first) of both directions."""

    i2t: dict[str, float]
    t2i: dict[str, float]

    @property
    def mean_r1(self) -> float:
        """The mean of both R@1: the validation metric of checkpoints."""
        return (self.i2t["R@1"] + self.t2i["R@1"]) / 2

    def line(self) -> str:
        def one(d: dict[str, float]) -> str:
            return (f"R@1 {100 * d['R@1']:.1f}% R@5 {100 * d['R@5']:.1f}% R@10 {100 * d['R@10']:.1f}% "
                    f"median rank {d['median']:g}")
        return f"image→sentence {one(self.i2t)}; sentence→image {one(self.t2i)}"

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {"i2t": self.i2t, "t2i": self.t2i}


def first_hit_ranks(S: numpy.ndarray, group: numpy.ndarray) -> numpy.ndarray:
    """For each query row k of S (queries × items): the rank (1-based) of the best-scoring item whose
    sentence equals the query's (``group``), ties broken against the query (an item tied with the
    first hit counts as ranked before it)."""
    S = numpy.asarray(S, dtype=numpy.float64)
    g = numpy.asarray(group)
    hit = g[:, None] == g[None, :]
    best_hit = numpy.where(hit, S, -numpy.inf).max(axis=1)
    return 1 + (numpy.where(hit, -numpy.inf, S) >= best_hit[:, None]).sum(axis=1)


def recalls(ranks: numpy.ndarray) -> dict[str, float]:
    """R@1, R@5, R@10 (fractions of queries with rank ≤ K) and the median rank."""
    r = numpy.asarray(ranks)
    return {"R@1": float((r <= 1).mean()), "R@5": float((r <= 5).mean()), "R@10": float((r <= 10).mean()),
            "median": float(numpy.median(r))}


def retrieval_metrics(S: numpy.ndarray, group: numpy.ndarray) -> Retrieval:
    """Image→sentence and sentence→image retrieval among N held-out pairs, from their (N, N) scores
    (image k against sentence l). Query image k is answered correctly at rank r when the first
    sentence with k's own sentence comes r-th; many scenes share a sentence (216 one-shape
    sentences), and any of them is the right answer. Likewise for a query sentence and images."""
    S = numpy.asarray(S)
    return Retrieval(recalls(first_hit_ranks(S, group)), recalls(first_hit_ranks(S.T, group)))


def embed(model: Aligner, images: numpy.ndarray, ids: Sequence[numpy.ndarray], batch: int = 200
          ) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """(regions (N, 9, h), words (M, T, h), mask (M, T)) as NumPy arrays, without gradients."""
    model.eval()
    with dlia.no_grad():
        v = numpy.concatenate([model.regions(images_to_input(images[i:i + batch])).numpy()
                               for i in range(0, len(images), batch)]) if len(images) else numpy.zeros((0, 9, 1))
        ids_p, mask = pad_ids(ids)
        s = numpy.concatenate([model.words(ids_p[i:i + batch], mask[i:i + batch]).numpy()
                               for i in range(0, len(ids_p), batch)])
    model.train()
    return v, s, mask


def score_matrix(v: numpy.ndarray, s: numpy.ndarray, mask: numpy.ndarray, score: str = "both", chunk: int = 50
                 ) -> numpy.ndarray:
    """``scores`` in NumPy, without the engine (evaluation): (N, B) from regions (N, R, h), words
    (B, T, h) and mask (B, T), ``chunk`` images at a time (the (N, R, B, T) dots of 1,000 pairs would
    take ~1 GB)."""
    N, R, h = v.shape
    B, T, _ = s.shape
    words = s.reshape(B * T, h).T
    m = numpy.asarray(mask)
    out = numpy.empty((N, B), dtype=numpy.float64)
    for i in range(0, N, chunk):
        n = min(chunk, N - i)
        d = (v[i:i + n].reshape(n * R, h) @ words).reshape(n, R, B, T)
        out[i:i + n] = (d.max(axis=1) * m).sum(axis=2)
        if score == "both":
            out[i:i + n] += numpy.where(m, d, -numpy.inf).max(axis=3).sum(axis=1)
    return out


def evaluate(model: Aligner, pairs: Pairs) -> Retrieval:
    """Retrieval metrics of ``model`` on ``pairs``."""
    v, s, mask = embed(model, pairs.images, pairs.ids)
    return retrieval_metrics(score_matrix(v, s, mask, model.config.score), pairs.group)


# -- alignment -------------------------------------------------------------------------------------
@dataclass
class Alignment:
    """Which region each word of a sentence matched: ``words``; ``regions`` (T,) the best cell of
    each (0..8, reading order: cell r·3 + c); ``scores`` (T,) its dot product v_i·s_t; ``all`` (T, 9)
    every word–region dot product; ``total`` the image–sentence score S."""

    words: list[str]
    regions: numpy.ndarray
    scores: numpy.ndarray
    all: numpy.ndarray
    total: float


def align(model: Aligner, vocab: Sequence[str], image: numpy.ndarray, sentence: str) -> Alignment:
    """For each word of ``sentence`` the region of ``image`` (uint8 (S, S, 3)) it matches best."""
    ids = encode(sentence, vocab)
    v, s, mask = embed(model, image[None], [ids])
    d = v[0] @ s[0].T  # (9, T)
    total = float(score_matrix(v, s, mask, model.config.score)[0, 0])
    return Alignment(sentence.split(), d.argmax(axis=0), d.max(axis=0), d.T.copy(), total)


def rank_sentences(model: Aligner, vocab: Sequence[str], image: numpy.ndarray, sentences: Sequence[str]
                   ) -> list[tuple[str, float]]:
    """``sentences`` sorted by their score against ``image`` (best first), with the scores."""
    ids = [encode(s, vocab) for s in sentences]
    v, s, mask = embed(model, image[None], ids)
    S = score_matrix(v, s, mask, model.config.score)[0]
    order = numpy.argsort(-S, kind="stable")
    return [(sentences[i], float(S[i])) for i in order]


# -- training --------------------------------------------------------------------------------------
class AlignTrainer:
    """Training of an ``Aligner``: shuffled epochs over the training scenes, evaluation on held-out
    ones, checkpoints and exact resume.

    The batch order of epoch e is a
    permutation drawn from ``numpy.random.default_rng([seed, e])`` and the initial weights from
    ``dlia.Generator(seed)``. Nothing else is random, so the state of a run is the weights, Adam's
    moments, the iteration (which gives the epoch and the batch), the history and the best result:
    ``save`` writes all of it and ``resume`` continues to the weights of an uninterrupted run, bit
    for bit. A last partial batch of an epoch is dropped (a batch of one has no negatives).

    Args:
        config: hyper-parameters.
        vocab: the words (``make_vocab``), encoded in ``train`` and ``test``.
        train, test: training and held-out pairs (``dlia caption align`` generates them from the config).
    """

    def __init__(self, config: AlignConfig, vocab: Sequence[str], train: Pairs, test: Pairs) -> None:
        self.config, self.vocab = config, list(vocab)
        self.train, self.test = train, test
        if len(self.train) < config.batch_size:
            raise AlignError(f"{len(self.train)} training scenes are fewer than one batch of {config.batch_size}")
        self.generator = dlia.Generator(config.seed)
        self.model = Aligner(config, len(self.vocab), self.generator)
        self.optimizer = optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.iteration = 0
        self.history: dict[str, list[Any]] = {"train_loss": [], "val_iteration": [], "val": []}
        self.best_r1 = -1.0
        self.best_checkpoint: str | None = None
        self.elapsed = 0.0
        self.last: Retrieval | None = None

    @property
    def batches_per_epoch(self) -> int:
        return len(self.train) // self.config.batch_size

    @property
    def total_iterations(self) -> int:
        return self.config.max_epochs * self.batches_per_epoch

    @property
    def epoch(self) -> float:
        return self.iteration / self.batches_per_epoch

    def batch_indices(self, iteration: int) -> numpy.ndarray:
        """The training scenes of ``iteration``."""
        e, k = divmod(iteration, self.batches_per_epoch)
        B = self.config.batch_size
        return numpy.random.default_rng([self.config.seed, e]).permutation(len(self.train))[k * B:(k + 1) * B]

    def train_step(self) -> float:
        """One optimizer step on the next batch; returns its loss."""
        idx = self.batch_indices(self.iteration)
        started = time.perf_counter()
        ids, mask = pad_ids([self.train.ids[i] for i in idx])
        self.optimizer.zero_grad()
        S = self.model(images_to_input(self.train.images[idx]), ids, mask)
        loss = ranking_loss(S, self.train.group[idx], self.config.margin)
        loss.backward()
        if self.config.grad_clip > 0:
            optim.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.iteration += 1
        value = loss.item()
        self.history["train_loss"].append(value)
        self.elapsed += time.perf_counter() - started
        return value

    def evaluate(self, record: bool = True) -> Retrieval:
        """Retrieval on the held-out pairs, recorded in the history (``record``; a run stopped between
        two evaluations by ``max_time``/``max_steps`` evaluates only to name its checkpoint, so that
        the resumed run's history is the uninterrupted run's)."""
        result = evaluate(self.model, self.test)
        if record:
            self.history["val_iteration"].append(self.iteration)
            self.history["val"].append(result.to_dict())
        self.last = result
        return result

    def checkpoint_file(self, r1: float) -> str:
        return checkpoint_name(PREFIX, self.epoch, r1, decimals=len(str(self.batches_per_epoch)))

    def save(self, folder: str | os.PathLike[str], candidate: bool = True) -> Path:
        """Write a checkpoint into ``folder`` atomically (after ``evaluate``); returns its path. Only a
        ``candidate`` (a recorded evaluation, not a stop between two) may become the best checkpoint."""
        if self.last is None:
            raise RuntimeError("evaluate before saving: the file name holds the validation R@1")
        r1 = self.last.mean_r1
        name = self.checkpoint_file(r1)
        best = (r1, name) if candidate and r1 > self.best_r1 else (self.best_r1, self.best_checkpoint)
        extra = {"iteration": self.iteration, "best_r1": best[0], "best_checkpoint": best[1], "elapsed_s": self.elapsed,
                 "scenes": [len(self.train), len(self.test)]}
        path = save_checkpoint(Path(folder) / name, self.model, self.optimizer, step=self.iteration,
                               generator=self.generator, config=self.config.to_dict(), vocab=self.vocab,
                               history=self.history, extra=extra)
        self.best_r1, self.best_checkpoint = best
        return path

    @classmethod
    def resume(cls, path: str | os.PathLike[str], train: Pairs, test: Pairs, max_epochs: int | None = None
               ) -> AlignTrainer:
        """The trainer of the checkpoint at ``path``, ready to continue on ``train`` and ``test`` (the
        pairs it was trained on, encoded with its vocabulary); ``max_epochs`` may lengthen the run.

        Raises:
            CheckpointError: not a usable ranking checkpoint, or other pairs.
        """
        config, vocab, ckpt = read_checkpoint(path)
        if max_epochs is not None:
            config = AlignConfig.from_dict({**config.to_dict(), "max_epochs": max_epochs})
        e = ckpt.extra
        if e.get("scenes") != [len(train), len(test)]:
            raise CheckpointError(f"{path} was trained on other scenes ({e.get('scenes')} training and held-out ones, "
                                  f"not {[len(train), len(test)]})")
        trainer = cls(config, vocab, train, test)
        try:
            iteration = e["iteration"]
            if not (isinstance(iteration, int) and not isinstance(iteration, bool) and iteration == ckpt.step >= 0):
                raise ValueError(f"iteration {iteration!r} does not match step {ckpt.step}")
            h = ckpt.history
            history = {k: list(h[k]) for k in trainer.history}
            if not all(isinstance(x, (int, float)) for x in history["train_loss"] + history["val_iteration"]):
                raise ValueError("the history holds something other than numbers")
            if len(history["val"]) != len(history["val_iteration"]):
                raise ValueError("the history is damaged")
            last = Retrieval(**history["val"][-1]) if history["val"] else None
            best, best_name = float(e["best_r1"]), e["best_checkpoint"]
            if best_name is not None and (not isinstance(best_name, str) or Path(best_name).name != best_name):
                raise ValueError(f"the best checkpoint's name is damaged ({best_name!r})")
            elapsed = float(e.get("elapsed_s", 0.0))
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{path} has a corrupt training state: {err}") from None
        load_checkpoint(path, trainer.model, trainer.optimizer, trainer.generator)
        trainer.iteration, trainer.history, trainer.last = iteration, history, last
        trainer.best_r1, trainer.best_checkpoint, trainer.elapsed = best, best_name, elapsed
        return trainer


def fit(trainer: AlignTrainer, folder: str | os.PathLike[str], max_time: float | None = None,
        max_steps: int | None = None, on_step: Callable[[float], None] | None = None,
        on_eval: Callable[[Retrieval, Path], None] | None = None) -> bool:
    """Train until ``max_epochs`` (or ``max_steps`` iterations in all, or ``max_time`` seconds of
    this session), evaluating and writing a checkpoint every ``eval_every`` iterations and at the end.

    Returns:
        True when the run is complete, False when ``max_time`` stopped it first.
    """
    started = time.perf_counter()
    total = trainer.total_iterations if max_steps is None else min(max_steps, trainer.total_iterations)
    while trainer.iteration < total:
        loss = trainer.train_step()
        if not math.isfinite(loss):
            raise FloatingPointError(f"training diverged at iteration {trainer.iteration} (loss {loss})")
        if on_step is not None:
            on_step(loss)
        out_of_time = max_time is not None and time.perf_counter() - started >= max_time
        scheduled = trainer.iteration % trainer.config.eval_every == 0 or trainer.iteration == trainer.total_iterations
        if scheduled or trainer.iteration == total or out_of_time:
            # a stop between two scheduled evaluations writes a checkpoint to resume from, but records
            # nothing: the resumed run's history and best checkpoint are the uninterrupted run's
            result = trainer.evaluate(record=scheduled)
            path = trainer.save(folder, candidate=scheduled)
            if on_eval is not None:
                on_eval(result, path)
        if out_of_time:
            return trainer.iteration >= total
    return True


# -- checkpoints -----------------------------------------------------------------------------------
def read_checkpoint(path: str | os.PathLike[str]) -> tuple[AlignConfig, list[str], Any]:
    """The config and vocabulary of the ranking checkpoint at ``path``, and the checkpoint, checked
    before a model is built: an ``Aligner`` checkpoint, a valid config, a vocabulary of distinct
    words after ``PAD_WORD``, weights of exactly the shapes they imply.

    Raises:
        CheckpointError: naming the file and what is wrong.
    """
    ckpt = load_checkpoint(path)
    expect_model_class(ckpt, "Aligner", "caption-align", "dlia caption align")
    try:
        config = AlignConfig.from_dict(ckpt.config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: {e}") from None
    vocab = ckpt.vocab
    if not (isinstance(vocab, list) and len(vocab) >= 2 and vocab[0] == PAD_WORD
            and all(isinstance(w, str) and w and not any(c.isspace() for c in w) for w in vocab)
            and len(set(vocab)) == len(vocab)):
        raise CheckpointError(f"{path}: its vocabulary is damaged (expected {PAD_WORD!r} and distinct words)")
    expected = parameter_shapes(config, len(vocab))
    expect_shapes(ckpt, expected, "its config asks")
    extra = sorted(set(ckpt.model_state) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: unexpected weights {', '.join(extra)}")
    return config, vocab, ckpt


def load_model(path: str | os.PathLike[str]) -> tuple[Aligner, list[str], Any]:
    """(the trained model in eval mode, its vocabulary, the checkpoint) of the file at ``path``."""
    config, vocab, ckpt = read_checkpoint(path)
    model = Aligner(config, len(vocab))
    model.load_state_dict(ckpt.model_state)
    model.eval()
    return model, vocab, ckpt
