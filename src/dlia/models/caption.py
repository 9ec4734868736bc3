"""Captioning of shape scenes: a CNN encodes the picture, an RNN writes the sentence (Show and Tell).

The pieces:

- ``VOCAB``: the scene words (``dlia.data.shapes.WORDS``) after PAD, BOS, EOS, with the ids of
  ``dlia.models.seq2seq`` (PAD 0, BOS 1, EOS 2, words from 3); ``encode``/``decode``.
- ``prepare_images``: pictures (any size, RGB, RGBA or greyscale) → the network's input, resized.
- ``SceneCNN``: conv 3×3 → BatchNorm → ReLU → max-pool 2, once per entry of ``channels``, giving a
  feature map; ``embed`` flattens it through a Linear into one image vector (the map is flattened
  rather than pooled: a sentence names each shape's cell, so where a feature is matters).
- ``Captioner``: ``SceneCNN`` → image embedding, **fed as the decoder's first input** (Vinyals et al.
  2015), then the embedded BOS and words; a GRU/LSTM; a Linear to word logits. ``loss`` is the
  teacher-forced cross-entropy over the real tokens (padding masked); ``greedy`` and ``beam`` caption.
- ``evaluate``: loss, exact match and corpus BLEU-4 on scenes.
- ``CaptionTrainer``: Adam over shuffled mini-batches, evaluation and checkpoints that hold
  everything a resumed run needs to end with bit-identical weights.
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
from dlia.data.shapes import WORDS, Scene, scenes_dataset
from dlia.io import CheckpointError, checkpoint_name, load_checkpoint, save_checkpoint
from dlia.io.checkpoint import expect_model_class, expect_shapes
from dlia.models.decoding import beam_search
from dlia.models.seq2seq import BOS, EOS, PAD, SPECIALS, pad_batch

#: the prefix of checkpoint file names: ``caption_epoch003.50_0.1234.npz``
PREFIX = "caption"
CELLS = ("gru", "lstm")
#: id → token: the three specials, then the scene words in sorted order
VOCAB: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", *WORDS)
_IDS = {w: i for i, w in enumerate(VOCAB)}
#: scenes are drawn at this size and resized to ``image_size``, as a user's picture is
SCENE_SIZE = 64
#: the longest sentence of the grammar (3 mentions of 8 words and 2 "and") plus EOS: a caption's default limit
MAX_TOKENS = 27

assert SPECIALS == 3 and (PAD, BOS, EOS) == (0, 1, 2)


def encode(sentence: str) -> list[int]:
    """Word ids of a sentence (no BOS/EOS). Raises ``ValueError`` on a word outside ``WORDS``."""
    try:
        return [_IDS[w] for w in sentence.split()]
    except KeyError as e:
        raise ValueError(f"caption: {e.args[0]!r} is not a scene word") from None


def decode(ids: Sequence[int]) -> str:
    """The sentence of word ids (specials left out)."""
    return " ".join(VOCAB[i] for i in ids if i >= SPECIALS)


@dataclass
class CaptionConfig:
    """Hyper-parameters of ``Captioner`` and its training (the defaults reach ≥ 90 % exact match on
    held-out scenes; docs/captioning.md). A bad value raises ``ValueError`` naming the field."""

    cell: str = "gru"  # gru | lstm: the decoder
    embedding_size: int = 64  # word embeddings and the image embedding (the decoder's input)
    hidden_size: int = 256  # the decoder's state (a small state forgets the picture within a few words)
    channels: tuple[int, ...] = (16, 32, 64)  # filters of the conv blocks; each halves the picture
    image_size: int = 32  # pictures are resized to image_size²; a multiple of 2^len(channels)
    train_size: int = 6000  # training scenes (seed 3·seed)
    val_size: int = 500  # validation scenes (seed 3·seed + 1); the test scenes use 3·seed + 2
    batch_size: int = 32
    learning_rate: float = 3e-3  # Adam
    max_epochs: int = 10
    eval_every: int = 500  # iterations between evaluations (each writes a checkpoint)
    grad_clip: float = 5.0  # global gradient-norm clipping (0: off)
    seed: int = 0  # weights, batch order and the scenes

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"caption config: cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if isinstance(self.channels, list):
            self.channels = tuple(self.channels)
        if not (isinstance(self.channels, tuple) and 1 <= len(self.channels) <= 5
                and all(_int(c) and 1 <= c <= 4096 for c in self.channels)):
            raise ValueError(f"caption config: channels must be 1 to 5 integers in [1, 4096], got {self.channels!r}")
        limits = {"embedding_size": 1 << 16, "hidden_size": 1 << 16, "image_size": 1024, "train_size": 10**8,
                  "val_size": 10**8, "batch_size": 10**7, "max_epochs": 10**6, "eval_every": 10**12}
        for name, top in limits.items():
            value = getattr(self, name)
            if not _int(value) or not 1 <= value <= top:
                raise ValueError(f"caption config: {name} must be an integer in [1, {top}], got {value!r}")
        step = 2 ** len(self.channels)
        if self.image_size % step or self.image_size < step:
            raise ValueError(f"caption config: image_size must be a multiple of {step} (2^{len(self.channels)} "
                             f"for {len(self.channels)} pooling stages), got {self.image_size}")
        for name in ("learning_rate", "grad_clip"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                    and (value > 0 if name == "learning_rate" else value >= 0)):
                raise ValueError(f"caption config: {name} must be a finite number "
                                 f"{'> 0' if name == 'learning_rate' else '≥ 0'}, got {value!r}")
        if not _int(self.seed) or self.seed < 0 or self.seed > 2**62:
            raise ValueError(f"caption config: seed must be an integer in [0, 2^62], got {self.seed!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CaptionConfig:
        """Build from a dict (e.g. a checkpoint's config); unknown keys are rejected."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown caption config keys: {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    def scene_seeds(self) -> tuple[int, int, int]:
        """The seeds of the training, validation and test scenes: never equal, for any two seeds."""
        return 3 * self.seed, 3 * self.seed + 1, 3 * self.seed + 2


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# -- pictures --------------------------------------------------------------------------------------
def picture_to_rgb(im: Any) -> numpy.ndarray:
    """A Pillow image of any mode → uint8 (H, W, 3) RGB. Transparency is composited over black, the
    scenes' background; greyscale and palette images are expanded to RGB."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        back = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im = Image.alpha_composite(back, rgba)
    return numpy.asarray(im.convert("RGB"), dtype=numpy.uint8)


def prepare_images(images: Sequence[numpy.ndarray] | numpy.ndarray, size: int) -> numpy.ndarray:
    """uint8 (H, W, 3) pictures of any size → float32 (N, 3, size, size) in [0, 1].

    A picture of another size is resized with Pillow's box filter (each output pixel the mean of
    the input pixels it covers), the same for generated scenes and a user's files, so a scene
    saved as PNG and described gets exactly the input the model trained on.
    """
    from PIL import Image

    out = numpy.empty((len(images), size, size, 3), dtype=numpy.uint8)
    for i, a in enumerate(images):
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != numpy.uint8:
            raise ValueError(f"caption: picture {i} must be uint8 (H, W, 3), got {a.dtype} {a.shape}")
        out[i] = a if a.shape[:2] == (size, size) else numpy.asarray(Image.fromarray(a).resize((size, size), Image.BOX))
    return numpy.ascontiguousarray(out.transpose(0, 3, 1, 2), dtype=numpy.float32) / 255


# -- the model -------------------------------------------------------------------------------------
class SceneCNN(nn.Module):
    """The picture encoder: ``len(channels)`` blocks of conv 3×3 ('same') → BatchNorm → ReLU →
    max-pool 2, then the feature map flattened through a Linear into one embedding.

    Shapes: ``features`` (N, 3, S, S) → (N, C_last, S/2^k, S/2^k), one cell per image region (the
    alignment model can embed cells as regions); ``forward`` → (N, embedding_size).
    """

    def __init__(self, channels: Sequence[int], image_size: int, embedding_size: int,
                 generator: dlia.Generator | None = None) -> None:
        super().__init__()
        gen = generator or dlia.Generator(0)
        blocks: list[nn.Module] = []
        previous = 3
        for c in channels:
            blocks += [nn.Conv2d(previous, c, 3, padding=1, generator=gen), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            previous = c
        self.blocks = nn.Sequential(*blocks)
        self.grid = image_size // 2 ** len(channels)  # the feature map's side
        self.head = nn.Linear(previous * self.grid * self.grid, embedding_size, generator=gen)

    def features(self, x: Any) -> dlia.Tensor:
        """The feature map (N, C_last, grid, grid) of pictures (N, 3, S, S)."""
        return self.blocks(x if isinstance(x, dlia.Tensor) else dlia.tensor(x))

    def forward(self, x: Any) -> dlia.Tensor:
        return self.head(self.features(x).flatten(1))


class Captioner(nn.Module):
    """CNN encoder + RNN decoder with the image embedding as the first input.

    For a picture I and words w_1..w_n the decoder reads x_0 = CNN(I), x_1 = E[BOS], x_t = E[w_{t−1}]
    (t = 2..n+1) from a zero state; the output h_t at t ≥ 1 gives p(w_t | I, w_<t) = softmax(W h_t + b),
    with w_{n+1} = EOS. The output at t = 0 predicts nothing: it only carries the picture into the state.

    Args:
        config: the hyper-parameters (only the model's are used here).
        generator: the seeded source of the initial weights (default ``config.seed``).
    """

    def __init__(self, config: CaptionConfig, generator: dlia.Generator | None = None) -> None:
        super().__init__()
        gen = generator or dlia.Generator(config.seed)
        self.config = config
        E, H, V = config.embedding_size, config.hidden_size, len(VOCAB)
        self.encoder = SceneCNN(config.channels, config.image_size, E, generator=gen)
        self.embedding = nn.Embedding(V, E, padding_idx=PAD, generator=gen)
        layer = {"gru": nn.GRU, "lstm": nn.LSTM}[config.cell]
        self.rnn = layer(E, H, batch_first=True, generator=gen)
        self.out = nn.Linear(H, V, generator=gen)

    def _images(self, images: Any) -> dlia.Tensor:
        x = numpy.asarray(images.numpy() if isinstance(images, dlia.Tensor) else images)
        S = self.config.image_size
        if x.ndim != 4 or x.shape[1:] != (3, S, S):
            raise ValueError(f"caption: images must be (N, 3, {S}, {S}) (prepare_images), got shape {x.shape}")
        return images if isinstance(images, dlia.Tensor) else dlia.tensor(x)

    def forward(self, images: Any, tokens_in: Any) -> dlia.Tensor:
        """Teacher-forced logits (N, T, V): ``tokens_in`` (N, T) is BOS then the words (padded with
        anything after a row's end: the RNN is causal, so padding never changes earlier logits)."""
        img = self.encoder(self._images(images))
        tokens_in = numpy.asarray(tokens_in, dtype=numpy.int64)
        N, T = tokens_in.shape
        words = self.embedding(tokens_in)
        x = dlia.concatenate([img.reshape(N, 1, img.shape[1]), words], axis=1)
        out, _ = self.rnn(x)
        H = self.config.hidden_size
        return self.out(out[:, 1:].reshape(N * T, H)).reshape(N, T, len(VOCAB))

    def loss(self, images: Any, captions: Sequence[Sequence[int]]) -> dlia.Tensor:
        """Mean cross-entropy (nats per token) of the words and EOS of ``captions`` (lists of word
        ids, without BOS/EOS) given the pictures, teacher-forced; padding is left out."""
        tokens_in, tokens_out, lengths = caption_batch(captions)
        logits = self(images, tokens_in)
        N, T, V = logits.shape
        real = numpy.arange(T)[None, :] < lengths[:, None]
        return dlia.cross_entropy(logits.reshape(N * T, V), numpy.where(real, tokens_out, -100).reshape(-1))

    # -- decoding ----------------------------------------------------------------------------------
    def start(self, images: Any) -> Any:
        """The decoder's state after reading the image embedding: h (1, N, H), or (h, c) for an LSTM."""
        img = self.encoder(self._images(images))
        _, state = self.rnn(img.reshape(img.shape[0], 1, img.shape[1]))
        return state

    def step(self, prev: numpy.ndarray, state: Any) -> tuple[numpy.ndarray, Any]:
        """One decoding step: previous tokens (n,) and state → (log-probabilities (n, V) as float64,
        with PAD and BOS never emitted (−inf), and the new state)."""
        x = self.embedding(numpy.asarray(prev, dtype=numpy.int64))
        out, state = self.rnn(x.reshape(x.shape[0], 1, x.shape[1]), state)
        logits = self.out(out.reshape(out.shape[0], out.shape[2]))
        logp = logits.log_softmax(axis=1).numpy().astype(numpy.float64)
        logp[:, [PAD, BOS]] = -numpy.inf
        return logp, state

    def greedy(self, images: Any, max_len: int = MAX_TOKENS) -> list[list[int]]:
        """The argmax word at every step until EOS or ``max_len`` tokens; word ids without EOS."""
        if not _int(max_len) or max_len < 1:
            raise ValueError(f"caption: max_len must be an integer ≥ 1, got {max_len!r}")
        with dlia.no_grad():
            state = self.start(images)
            n = (state[0] if isinstance(state, tuple) else state).shape[1]
            prev = numpy.full(n, BOS, dtype=numpy.int64)
            done = numpy.zeros(n, dtype=bool)
            seqs: list[list[int]] = [[] for _ in range(n)]
            for _ in range(max_len):
                logp, state = self.step(prev, state)
                prev = logp.argmax(axis=1)
                for b in numpy.flatnonzero(~done):
                    if prev[b] == EOS:
                        done[b] = True
                    else:
                        seqs[b].append(int(prev[b]))
                if done.all():
                    break
        return seqs

    def beam(self, images: Any, beam: int = 3, max_len: int = MAX_TOKENS, alpha: float = 0.7) -> list[list[int]]:
        """Beam-search captions (``dlia.models.decoding.beam_search``, GNMT length normalisation
        ``alpha``), one picture at a time; word ids without EOS. ``beam = 1`` gives ``greedy``'s."""
        x = self._images(images)
        out = []

        def step(prev: numpy.ndarray, state: Any) -> tuple[numpy.ndarray, Any, None]:
            logp, state = self.step(prev, state)
            return logp, state, None

        def select(state: Any, rows: numpy.ndarray) -> Any:
            return tuple(s[:, rows] for s in state) if isinstance(state, tuple) else state[:, rows]

        with dlia.no_grad():
            for i in range(x.shape[0]):
                best = beam_search(step, select, self.start(x[i:i + 1]), BOS, EOS, beam, max_len, alpha)
                out.append([t for t in best.tokens if t != EOS])
        return out

    def caption(self, images: Any, beam: int = 1, max_len: int = MAX_TOKENS) -> list[str]:
        """Sentences for prepared pictures: greedy (``beam = 1``) or beam search."""
        ids = self.greedy(images, max_len) if beam == 1 else self.beam(images, beam, max_len)
        return [decode(s) for s in ids]


def caption_batch(captions: Sequence[Sequence[int]]) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """(decoder inputs (N, T): BOS + words, targets (N, T): words + EOS, real steps (N,) = words + 1),
    padded with PAD; T = the longest caption + 1."""
    for i, c in enumerate(captions):
        if any(not SPECIALS <= int(t) < len(VOCAB) for t in c):
            raise ValueError(f"caption: caption {i} holds ids outside the words [{SPECIALS}, {len(VOCAB)})")
    tokens_in, lengths = pad_batch([[BOS, *c] for c in captions])
    tokens_out, _ = pad_batch([[*c, EOS] for c in captions])
    return tokens_in, tokens_out, lengths


def parameter_shapes(config: CaptionConfig) -> dict[str, tuple[int, ...]]:
    """Name → shape of every entry of a ``Captioner``'s state dict (weights and BatchNorm buffers)."""
    model = _shape_model(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _shape_model(config: CaptionConfig) -> Captioner:
    """A model of ``config``'s shapes with its weights left unfilled when they are big (only shapes are read)."""
    return Captioner(config)


def parameter_count(config: CaptionConfig) -> int:
    """Trainable parameters, computed from the config alone (no model is built)."""
    E, H, V, S = config.embedding_size, config.hidden_size, len(VOCAB), config.image_size
    conv, previous = 0, 3
    for c in config.channels:
        conv += 9 * previous * c + c + 2 * c
        previous = c
    grid = S // 2 ** len(config.channels)
    gates = 3 if config.cell == "gru" else 4
    return conv + previous * grid * grid * E + E + V * E + gates * H * (E + H + 2) + H * V + V


def training_bytes(config: CaptionConfig) -> int:
    """An estimate of the peak memory of training: parameters with gradients and Adam's two moments
    (4 float32 copies), the activations of a batch (each conv block keeps ~4 maps of its output
    size), the decoder's gates and states, and the scenes (uint8 and float32 inputs)."""
    B, S = config.batch_size, config.image_size
    conv, side, previous = 0, S, 3
    for c in config.channels:
        conv += 4 * c * side * side + previous * 9 * side * side  # maps and the im2col buffer
        side //= 2
        previous = c
    gates = 3 if config.cell == "gru" else 4
    rnn = (MAX_TOKENS + 1) * ((gates + 4) * config.hidden_size + 3 * len(VOCAB) + config.embedding_size)
    scenes = (config.train_size + config.val_size) * (SCENE_SIZE * SCENE_SIZE * 3 + 4 * 3 * S * S)
    return 4 * (4 * parameter_count(config) + B * (conv + rnn)) + scenes


# -- evaluation ------------------------------------------------------------------------------------
@dataclass
class Evaluation:
    """Figures on a set of scenes: ``loss`` (nats per token, teacher-forced), ``exact`` (the fraction
    of captions equal to the true sentence), ``bleu`` (corpus BLEU-4 in [0, 1]) and the captions."""

    loss: float
    exact: float
    bleu: float
    captions: list[str]


def evaluate(model: Captioner, images: numpy.ndarray, sentences: Sequence[str], beam: int = 1,
             batch_size: int = 256) -> Evaluation:
    """Loss, exact match and BLEU-4 of ``model`` (in eval mode) on prepared pictures and their sentences."""
    from dlia.text import corpus_bleu

    was_training = model.training
    model.eval()
    total, tokens, captions = 0.0, 0, []
    try:
        with dlia.no_grad():
            for i in range(0, len(sentences), batch_size):
                ids = [encode(s) for s in sentences[i:i + batch_size]]
                n = sum(len(c) + 1 for c in ids)
                total += model.loss(images[i:i + batch_size], ids).item() * n
                tokens += n
                captions += model.caption(images[i:i + batch_size], beam)
    finally:
        model.train(was_training)
    exact = sum(c == s for c, s in zip(captions, sentences, strict=True)) / len(sentences)
    # an empty caption is a hypothesis of no tokens: BLEU counts it as all brevity penalty
    bleu = corpus_bleu([c.split() for c in captions], [s.split() for s in sentences]).score
    return Evaluation(total / tokens, exact, bleu, captions)


# -- data ------------------------------------------------------------------------------------------
class SceneData:
    """Training, validation (and, on demand, test) scenes of a config, prepared once.

    Attributes:
        images: float32 (train_size, 3, S, S); ``captions``: their word ids.
        val_images, val_sentences: the validation scenes.
    """

    def __init__(self, config: CaptionConfig) -> None:
        self.config = config
        train_seed, val_seed, _ = config.scene_seeds()
        train = scenes_dataset(config.train_size, train_seed, SCENE_SIZE)
        val = scenes_dataset(config.val_size, val_seed, SCENE_SIZE)
        self.images = prepare_images([s.image for s in train], config.image_size)
        self.captions = [encode(s.sentence) for s in train]
        self.val_images = prepare_images([s.image for s in val], config.image_size)
        self.val_sentences = [s.sentence for s in val]

    def test_scenes(self, n: int) -> tuple[list[Scene], numpy.ndarray]:
        """``n`` scenes of the test seed (never seen in training or validation), and their inputs."""
        scenes = scenes_dataset(n, self.config.scene_seeds()[2], SCENE_SIZE)
        return scenes, prepare_images([s.image for s in scenes], self.config.image_size)


# -- training --------------------------------------------------------------------------------------
class CaptionTrainer:
    """Training of a ``Captioner``: Adam over mini-batches in a shuffled order, evaluation and
    checkpoints, exact resume.

    The order of epoch e is ``numpy.random.default_rng([seed, e]).permutation(train_size)``, so it
    depends on nothing but the seed and the epoch; the weights come from ``dlia.Generator(seed)``
    and nothing else is random (no dropout). A run's state is thus the weights and BatchNorm
    statistics, Adam's moments, the iteration (which gives the epoch and the position in it), the
    history and the best validation loss: ``save`` writes all of it and ``resume`` restores it, so
    a run killed at any moment and resumed from its last checkpoint ends with the weights of an
    uninterrupted run, bit for bit.
    """

    def __init__(self, config: CaptionConfig, data: SceneData | None = None) -> None:
        self.config = config
        self.data = data or SceneData(config)
        self.generator = dlia.Generator(config.seed)
        self.model = Captioner(config, self.generator)
        self.optimizer = optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.iteration = 0
        self.history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_exact": [], "val_bleu": [],
                                                "val_iteration": []}
        self.best_val_loss = math.inf
        self.best_checkpoint: str | None = None  # its file name, in the checkpoint folder
        self.elapsed = 0.0  # seconds spent training, over every session of the run

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.config.train_size // self.config.batch_size)

    @property
    def total_iterations(self) -> int:
        return self.config.max_epochs * self.batches_per_epoch

    @property
    def epoch(self) -> float:
        """Epochs done, fractional."""
        return self.iteration / self.batches_per_epoch

    def batch_indices(self, iteration: int) -> numpy.ndarray:
        """The training scenes of ``iteration``: a slice of its epoch's permutation."""
        epoch, k = divmod(iteration, self.batches_per_epoch)
        perm = numpy.random.default_rng([self.config.seed, epoch]).permutation(self.config.train_size)
        B = self.config.batch_size
        return perm[k * B:(k + 1) * B]

    def train_step(self) -> float:
        """Train on the next batch; returns its loss (nats per token)."""
        idx = self.batch_indices(self.iteration)
        started = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad()
        loss = self.model.loss(self.data.images[idx], [self.data.captions[i] for i in idx])
        loss.backward()
        if self.config.grad_clip > 0:
            optim.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.iteration += 1
        value = loss.item()
        self.history["train_loss"].append(value)
        self.elapsed += time.perf_counter() - started
        return value

    def evaluate(self, beam: int = 1) -> Evaluation:
        """Figures on the validation scenes (greedy captions unless ``beam`` > 1)."""
        return evaluate(self.model, self.data.val_images, self.data.val_sentences, beam)

    def record_evaluation(self, ev: Evaluation) -> None:
        self.history["val_loss"].append(ev.loss)
        self.history["val_exact"].append(ev.exact)
        self.history["val_bleu"].append(ev.bleu)
        self.history["val_iteration"].append(self.iteration)

    def checkpoint_file(self, val_loss: float) -> str:
        """``caption_epoch{epoch}_{val_loss}.npz``, with enough decimals that two evaluations of a run never share a name."""
        return checkpoint_name(PREFIX, self.epoch, val_loss, decimals=len(str(self.batches_per_epoch)))

    def save(self, folder: str | os.PathLike[str], val_loss: float) -> Path:
        """Write a checkpoint of everything into ``folder`` (atomically); returns its path. When
        ``val_loss`` is the best so far the checkpoint becomes the run's best."""
        name = self.checkpoint_file(val_loss)
        best = (val_loss, name) if val_loss < self.best_val_loss else (self.best_val_loss, self.best_checkpoint)
        extra = {"iteration": self.iteration, "best_val_loss": best[0], "best_checkpoint": best[1],
                 "elapsed_s": self.elapsed}
        path = save_checkpoint(Path(folder) / name, self.model, self.optimizer, step=self.iteration,
                               generator=self.generator, config=self.config.to_dict(), vocab=list(VOCAB),
                               history=self.history, extra=extra)
        self.best_val_loss, self.best_checkpoint = best  # only once the file is there
        return path

    @classmethod
    def resume(cls, path: str | os.PathLike[str], max_epochs: int | None = None,
               data: SceneData | None = None) -> CaptionTrainer:
        """The trainer of the checkpoint at ``path``, ready to continue; ``max_epochs`` may change
        the run's length. The scenes are generated again from the config's seed.

        Raises:
            CheckpointError: not a usable captioning checkpoint.
        """
        config, ckpt = read_checkpoint(path)
        if max_epochs is not None:
            config = CaptionConfig.from_dict({**config.to_dict(), "max_epochs": max_epochs})
        trainer = cls(config, data)
        extra = ckpt.extra
        try:
            iteration = extra["iteration"]
            if not (_int(iteration) and iteration == ckpt.step and iteration >= 0):
                raise ValueError(f"iteration {iteration!r} does not match step {ckpt.step}")
            if not isinstance(ckpt.history, dict):
                raise ValueError("the history is damaged")
            history = {k: list(ckpt.history.get(k, [])) for k in trainer.history}
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for vs in history.values() for v in vs):
                raise ValueError("the history holds something other than numbers")
            best, best_name = extra["best_val_loss"], extra["best_checkpoint"]
            if not (isinstance(best, (int, float)) and not math.isnan(best) and best >= 0
                    and (best_name is None or (isinstance(best_name, str) and Path(best_name).name == best_name))):
                raise ValueError("the best validation loss or its checkpoint's name is damaged")
            elapsed = float(extra.get("elapsed_s", 0.0))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path} has a corrupt training state: {e}") from None
        load_checkpoint(path, trainer.model, trainer.optimizer, trainer.generator)
        trainer.iteration, trainer.history, trainer.elapsed = iteration, history, elapsed
        trainer.best_val_loss, trainer.best_checkpoint = float(best), best_name
        return trainer

    def fit(self, folder: str | os.PathLike[str], max_time: float | None = None, max_steps: int | None = None,
            on_step: Callable[[float], None] | None = None,
            on_eval: Callable[[Evaluation, Path], None] | None = None) -> bool:
        """Train until ``max_epochs`` (or ``max_time`` seconds or ``max_steps`` iterations of this
        session), evaluating and writing a checkpoint into ``folder`` every ``eval_every``
        iterations, at the end and when stopped.

        Returns:
            True when the run is complete, False when ``max_time`` or ``max_steps`` stopped it first.

        Raises:
            FloatingPointError: the loss became NaN or infinite (no checkpoint of it is written).
        """
        started, steps = time.perf_counter(), 0
        while self.iteration < self.total_iterations:
            loss = self.train_step()
            steps += 1
            if not math.isfinite(loss):
                raise FloatingPointError(f"training diverged at iteration {self.iteration} (loss {loss})")
            if on_step is not None:
                on_step(loss)
            stop = ((max_time is not None and time.perf_counter() - started >= max_time)
                    or (max_steps is not None and steps >= max_steps))
            if self.iteration % self.config.eval_every == 0 or self.iteration == self.total_iterations or stop:
                ev = self.evaluate()
                self.record_evaluation(ev)
                path = self.save(folder, ev.loss)
                if on_eval is not None:
                    on_eval(ev, path)
            if stop:
                return self.iteration >= self.total_iterations
        return True


# -- checkpoints -----------------------------------------------------------------------------------
def read_checkpoint(path: str | os.PathLike[str]) -> tuple[CaptionConfig, Any]:
    """The config of the captioning checkpoint at ``path`` and the checkpoint, checked before a model
    is built: a ``Captioner`` checkpoint, a valid config, the scene vocabulary, and weights of
    exactly the shapes the config implies (so a damaged config cannot make a model of any size).

    Raises:
        CheckpointError: naming the file and what is wrong.
    """
    ckpt = load_checkpoint(path)
    expect_model_class(ckpt, "Captioner", "caption", "dlia caption train")
    try:
        config = CaptionConfig.from_dict(ckpt.config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: {e}") from None
    if ckpt.vocab != list(VOCAB):
        raise CheckpointError(f"{path}: its vocabulary is not the scene words of this dlia ({len(VOCAB)} tokens)")
    if parameter_count(config) > 2 * sum(v.size for v in ckpt.model_state.values()) + 1000:
        raise CheckpointError(f"{path}: its config asks for {parameter_count(config):,} parameters, "
                              f"but it holds {sum(v.size for v in ckpt.model_state.values()):,} values")
    expected = parameter_shapes(config)
    expect_shapes(ckpt, expected, "its config asks")
    extra = sorted(set(ckpt.model_state) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: unexpected weights {', '.join(extra)}")
    return config, ckpt


def load_model(path: str | os.PathLike[str]) -> tuple[Captioner, CaptionConfig]:
    """The trained model (in eval mode) and config of a checkpoint.

    Raises:
        CheckpointError: see ``read_checkpoint``.
    """
    config, ckpt = read_checkpoint(path)
    model = Captioner(config)
    model.load_state_dict(ckpt.model_state)
    model.eval()
    return model, config


__all__ = ["CELLS", "MAX_TOKENS", "PREFIX", "SCENE_SIZE", "VOCAB", "CaptionConfig", "CaptionTrainer", "Captioner",
           "Evaluation", "SceneCNN", "SceneData", "caption_batch", "decode", "encode", "evaluate", "load_model",
           "parameter_count", "parameter_shapes", "picture_to_rgb", "prepare_images", "read_checkpoint",
           "training_bytes"]
