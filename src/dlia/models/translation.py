"""Training and using ``Seq2Seq`` on a translation task: the dates task or a parallel TSV corpus.

The pieces, each usable on its own:

- ``TokenVocab``: one side's tokens (characters or whitespace-separated words) ↔ the model's ids
  (``SPECIALS`` reserved ids first, then ``<unk>``, then the tokens).
- ``vocabularies``: those of a task (``dlia.data.tasks``: ``dates_task``, ``tsv_task``).
- ``Buckets``: batches of examples of similar source length, reshuffled per epoch from (seed, epoch).
- ``Seq2SeqTrainer`` and ``fit``: Adam, gradient clipping, optional scheduled sampling, evaluation
  (loss, exact match, BLEU), checkpoints and a resume that ends bit-identical to an uninterrupted run.
- ``translate``: texts → outputs (greedy or beam search) with their attention matrices.
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
from dlia import optim
from dlia.io import CheckpointError, checkpoint_name, load_checkpoint, save_checkpoint
from dlia.io.checkpoint import expect_model_class, expect_shapes
from dlia.models.seq2seq import BOS, EOS, SPECIALS, Seq2Seq, Seq2SeqConfig, pad_batch
from dlia.text import corpus_bleu

#: the prefix of checkpoint file names: ``seq2seq_epoch003.250_0.0123.npz``
PREFIX = "seq2seq"
TOKEN_KINDS = ("char", "word")
#: the id of the unknown token in every ``TokenVocab`` (the first id after the specials)
UNK = SPECIALS
UNK_TOKEN = "<unk>"
#: the most output tokens a decode may run (the CLI's --max-len cap, and a checkpoint's max_len)
MAX_DECODE_LEN = 10_000
#: gate blocks per recurrent layer (torch's layout)
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


class UnknownTokenError(ValueError):
    """A text holds tokens its vocabulary does not know; the message names them."""


# -- vocabularies ----------------------------------------------------------------------------------
class TokenVocab:
    """The tokens of one side of a task and their ids in ``Seq2Seq``.

    Ids: ``0 .. SPECIALS − 1`` are PAD, BOS, EOS (``dlia.models.seq2seq``); ``UNK`` (= 3) is
    ``<unk>``, what an unknown token of a validation or test text becomes; the tokens follow, in the
    order given. ``size`` = ``SPECIALS + 1 + len(tokens)``.

    Args:
        kind: ``"char"`` (every character is a token) or ``"word"`` (whitespace-separated words).
        tokens: distinct tokens (characters, or words without whitespace).

    Example:
        >>> v = TokenVocab.from_texts("char", ["25.11.2026"])
        >>> v.encode("2026")
        [7, 5, 7, 9]
        >>> v.join(v.decode([7, 5, 7, 9]))
        '2026'
    """

    def __init__(self, kind: str, tokens: Sequence[str]) -> None:
        if kind not in TOKEN_KINDS:
            raise ValueError(f"token kind must be one of {', '.join(TOKEN_KINDS)}, got {kind!r}")
        tokens = list(tokens)
        for t in tokens:
            ok = isinstance(t, str) and (len(t) == 1 if kind == "char" else bool(t) and t.split() == [t])
            if not ok:
                raise ValueError(f"a {kind} vocabulary cannot hold {t!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"the {kind} vocabulary repeats a token")
        if UNK_TOKEN in tokens:
            raise ValueError(f"{UNK_TOKEN} is reserved in a vocabulary")
        self.kind, self.tokens = kind, tokens
        self._ids = {t: i + UNK + 1 for i, t in enumerate(tokens)}

    @classmethod
    def from_texts(cls, kind: str, texts: Sequence[str]) -> TokenVocab:
        """The vocabulary of every token of ``texts``, sorted (by code point), so the same texts give the same ids."""
        found: set[str] = set()
        for text in texts:
            found.update(text if kind == "char" else text.split())
        found.discard(UNK_TOKEN)
        return cls(kind, sorted(found))

    @property
    def size(self) -> int:
        """The number of ids, specials and ``<unk>`` included."""
        return UNK + 1 + len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenVocab) and (self.kind, self.tokens) == (other.kind, other.tokens)

    def split(self, text: str) -> list[str]:
        """``text`` as tokens: its characters, or its whitespace-separated words."""
        return list(text) if self.kind == "char" else text.split()

    def join(self, tokens: Sequence[str]) -> str:
        return ("" if self.kind == "char" else " ").join(tokens)

    def unknown(self, text: str) -> list[str]:
        """The distinct tokens of ``text`` not in the vocabulary, in order of appearance.

        The word ``<unk>`` itself is known: corpora that already mark rare words with it (Penn
        Treebank's style) read it as the ``UNK`` id, in training and at translate time alike."""
        return [t for t in dict.fromkeys(self.split(text)) if t not in self._ids and t != UNK_TOKEN]

    def encode(self, text: str, strict: bool = True) -> list[int]:
        """``text`` → ids. Unknown tokens raise ``UnknownTokenError`` naming them (``strict``), else become ``UNK``."""
        if strict:
            unknown = self.unknown(text)
            if unknown:
                shown = ", ".join(repr(t) for t in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
                what = "character" if self.kind == "char" else "word"
                raise UnknownTokenError(f"unknown {what}{'s' * (len(unknown) > 1)} {shown} in {text[:40]!r} "
                                        f"(the model knows {len(self.tokens)} {what}s)")
        return [self._ids.get(t, UNK) for t in self.split(text)]

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Ids (without specials) → tokens; ``UNK`` is ``<unk>``."""
        return [UNK_TOKEN if i == UNK else self.tokens[i - UNK - 1] for i in ids]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, d: Any) -> TokenVocab:
        if not isinstance(d, dict) or not isinstance(d.get("tokens"), list):
            raise ValueError("a vocabulary must be {kind, tokens}")
        return cls(d.get("kind"), d["tokens"])


def vocabularies(task: Any) -> tuple[TokenVocab, TokenVocab]:
    """(source, target) vocabularies of a ``dlia.data.tasks.Task``: its fixed characters where it has
    them (the dates task: every character any style writes, so held-out styles are never unknown),
    else every token of its training pairs (never of validation or test pairs)."""
    if task.fixed_tokens is not None:
        return TokenVocab(task.tokens, list(task.fixed_tokens[0])), TokenVocab(task.tokens, list(task.fixed_tokens[1]))
    return (TokenVocab.from_texts(task.tokens, [s for s, _ in task.train]),
            TokenVocab.from_texts(task.tokens, [t for _, t in task.train]))


Pairs = list[tuple[str, str]]


# -- sizes -----------------------------------------------------------------------------------------
def parameter_shapes(config: Seq2SeqConfig, src_size: int, tgt_size: int) -> dict[str, tuple[int, ...]]:
    """Every parameter of ``Seq2Seq(config, src_size, tgt_size)`` and its shape, by formula (to check
    a checkpoint, or the memory a size implies, before building anything)."""
    E, H, L, G = config.embedding_size, config.hidden_size, config.layers, GATES[config.cell] * config.hidden_size
    dirs = 2 if config.bidirectional else 1
    enc = dirs * H
    shapes: dict[str, tuple[int, ...]] = {"src_embedding.weight": (src_size, E)}
    for k in range(L):
        for suffix in ("", "_reverse")[:dirs]:
            shapes.update({f"encoder.weight_ih_l{k}{suffix}": (G, E if k == 0 else enc),
                           f"encoder.weight_hh_l{k}{suffix}": (G, H),
                           f"encoder.bias_ih_l{k}{suffix}": (G,), f"encoder.bias_hh_l{k}{suffix}": (G,)})
    if config.bidirectional:
        shapes.update({"bridge.weight": (H, 2 * H), "bridge.bias": (H,)})
        if config.cell == "lstm":
            shapes.update({"bridge_c.weight": (H, 2 * H), "bridge_c.bias": (H,)})
    shapes["tgt_embedding.weight"] = (tgt_size, E)
    first = E + (enc if config.attention == "bahdanau" else 0)
    for k in range(L):
        shapes.update({f"decoder.{k}.weight_ih": (G, first if k == 0 else H), f"decoder.{k}.weight_hh": (G, H),
                       f"decoder.{k}.bias_ih": (G,), f"decoder.{k}.bias_hh": (G,)})
    if config.attention == "bahdanau":
        shapes.update({"att_query.weight": (H, H), "att_key.weight": (H, enc), "att_key.bias": (H,), "att_v.weight": (1, H)})
    elif config.attention == "luong":
        if enc != H:
            shapes["att_key.weight"] = (H, enc)
        shapes.update({"att_combine.weight": (H, H + enc), "att_combine.bias": (H,)})
    shapes.update({"out.weight": (tgt_size, H), "out.bias": (tgt_size,)})
    return shapes


def parameter_count(config: Seq2SeqConfig, src_size: int, tgt_size: int) -> int:
    """The number of parameters (the sum over ``parameter_shapes``), by formula: instant for any size,
    a million layers included."""
    E, H, L, G = config.embedding_size, config.hidden_size, config.layers, GATES[config.cell] * config.hidden_size
    dirs = 2 if config.bidirectional else 1
    enc = dirs * H
    recurrent = G * H + 2 * G  # weight_hh and both biases, per layer and direction
    n = (src_size + tgt_size) * E + dirs * (G * E + recurrent) + (L - 1) * dirs * (G * enc + recurrent)
    if config.bidirectional:
        n += (2 if config.cell == "lstm" else 1) * (2 * H * H + H)
    first = E + (enc if config.attention == "bahdanau" else 0)
    n += G * first + recurrent + (L - 1) * (G * H + recurrent)
    if config.attention == "bahdanau":
        n += H * H + H * enc + H + H
    elif config.attention == "luong":
        n += (H * enc if enc != H else 0) + H * (H + enc) + H
    return n + tgt_size * H + tgt_size


def training_bytes(config: Seq2SeqConfig, src_size: int, tgt_size: int, batch_size: int, src_len: int, tgt_len: int) -> int:
    """An estimate of the peak memory of one training step: parameters with gradients and Adam's two
    moments (4 float32 copies), and what a batch keeps for the backward pass: per source position the
    embeddings, gates and outputs of every encoder layer; per decoder step the gates of every layer,
    the logits and their softmax, and with Bahdanau attention the (S, H) ``tanh(W_k h + W_q s)``."""
    E, H, L, G = config.embedding_size, config.hidden_size, config.layers, GATES[config.cell]
    dirs = 2 if config.bidirectional else 1
    per_src = E + L * dirs * (G + 2) * H
    per_step = E + L * (G + 2) * H + 3 * tgt_size + 2 * dirs * H
    if config.attention == "bahdanau":
        per_step += 2 * src_len * H
    elif config.attention == "luong":
        per_step += 2 * src_len
    acts = batch_size * (src_len * per_src + tgt_len * per_step)
    return 4 * (4 * parameter_count(config, src_size, tgt_size) + 2 * acts)


# -- batches ---------------------------------------------------------------------------------------
class Buckets:
    """Batches of examples of similar source length.

    Examples are sorted by source length and cut into buckets of consecutive lengths, each holding at
    least ``batch_size`` examples (one length per bucket where there are enough of them; the last
    bucket may take the leftovers). Epoch ``e``'s batches come from ``default_rng([seed, e])``: each
    bucket is shuffled and cut into batches of ``batch_size`` (its last one smaller), and the batches
    of all buckets are shuffled together. So the batches of any epoch are recomputed from (seed, e):
    a resumed run finds its data position from the iteration alone. Sorting into buckets matters
    because ``Seq2Seq.encode`` runs each source length of a batch as its own group: batches of one
    length run the encoder once.

    Args:
        lengths: the source length of each example.
        batch_size: examples per batch.
        seed: the shuffling seed.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        lengths = numpy.asarray(lengths, dtype=numpy.int64)
        if len(lengths) == 0:
            raise ValueError("no examples to batch")
        order = numpy.argsort(lengths, kind="stable")
        buckets, current = [], []
        for length in numpy.unique(lengths):
            current.extend(order[lengths[order] == length].tolist())
            if len(current) >= batch_size:
                buckets.append(numpy.array(current, dtype=numpy.int64))
                current = []
        if current:  # too few of the longest lengths for a bucket of their own: they join the last one
            if buckets:
                buckets[-1] = numpy.concatenate([buckets[-1], numpy.array(current, dtype=numpy.int64)])
            else:
                buckets.append(numpy.array(current, dtype=numpy.int64))
        self.buckets, self.batch_size, self.seed = buckets, batch_size, seed
        self.n_batches = sum(-(-len(b) // batch_size) for b in buckets)

    def epoch(self, e: int) -> list[numpy.ndarray]:
        """The batches (arrays of example indices) of epoch ``e``, in the order they train."""
        rng = numpy.random.default_rng([self.seed, e])
        batches = []
        for b in self.buckets:
            b = b[rng.permutation(len(b))]
            batches.extend(b[i:i + self.batch_size] for i in range(0, len(b), self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]


# -- training --------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """How ``Seq2SeqTrainer`` trains. A bad value raises ``ValueError`` naming the field."""

    batch_size: int = 64
    learning_rate: float = 5e-3  # Adam's
    grad_clip: float = 5.0  # the global gradient norm is clipped to this (0: no clipping)
    sampling: float = 0.0  # scheduled sampling: the probability of feeding the model's own previous output
    max_epochs: int = 10
    max_steps: int = 0  # stop after this many iterations (0: no limit)
    eval_every: int = 0  # iterations between evaluations (each writes a checkpoint); 0: once per epoch
    beam: int = 1  # the beam of evaluation's decoding (1: greedy)
    length_norm: float = 0.0  # GNMT's α for beam search
    seed: int = 0  # the batches' shuffling (the model's weights follow Seq2SeqConfig.seed)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind, low, high = _RANGES[f.name]
            ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and low <= value <= high):
                what = "an integer" if kind is int else "a number"
                raise ValueError(f"seq2seq training: {f.name} must be {what} in [{low:g}, {high:g}], got {value!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"seq2seq training: learning_rate must be above 0, got {self.learning_rate!r}")

    @classmethod
    def from_dict(cls, values: Any) -> TrainConfig:
        if not isinstance(values, dict):
            raise ValueError(f"seq2seq training config: expected a dict, got {type(values).__name__}")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown seq2seq training config keys: {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_RANGES: dict[str, tuple[type, float, float]] = {
    "batch_size": (int, 1, 2**31 - 1), "learning_rate": (float, 0, 1e6), "grad_clip": (float, 0, 1e30),
    "sampling": (float, 0, 1), "max_epochs": (int, 1, 2**31 - 1), "max_steps": (int, 0, 2**62),
    "eval_every": (int, 0, 2**62), "beam": (int, 1, 10_000), "length_norm": (float, 0, 100), "seed": (int, 0, 2**63 - 1),
}


@dataclass
class Evaluation:
    """What ``Seq2SeqTrainer.evaluate`` measured on a set of pairs."""

    loss: float  # teacher-forced cross-entropy, nats per target token (EOS included)
    exact: float  # the fraction of outputs equal to their target
    bleu: float  # corpus BLEU-4 (with brevity penalty) on the task's tokens, in [0, 1]
    n: int  # pairs


def evaluate(model: Seq2Seq, vocabs: tuple[TokenVocab, TokenVocab], pairs: Pairs, beam: int = 1,
             length_norm: float = 0.0, max_len: int = 50, batch_size: int = 256) -> Evaluation:
    """Loss, exact match and BLEU of ``model`` on ``pairs``, in eval mode (no dropout), without gradients.

    Unknown tokens of ``pairs`` become ``<unk>``. Outputs are decoded greedily (``beam`` 1) or by
    beam search (``length_norm``, at most ``max_len`` tokens); BLEU is ``corpus_bleu`` (4-grams, brevity
    penalty) of the output tokens against the target tokens (characters for a character task).
    """
    src_vocab, tgt_vocab = vocabs
    if not pairs:
        raise ValueError("no pairs to evaluate")
    was_training = model.training
    model.eval()
    total, tokens, hyps, refs = 0.0, 0, [], []
    with dlia.no_grad():
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            src = [src_vocab.encode(s, strict=False) or [UNK] for s, _ in chunk]
            tgt = [tgt_vocab.encode(t, strict=False) for _, t in chunk]
            s, s_len, t_in, t_out, t_len = _arrays(src, tgt)
            n = int(t_len.sum())
            total += model.loss(s, s_len, t_in, t_out, t_len).item() * n
            tokens += n
            if beam == 1:
                out = model.greedy_decode(s, s_len, max_len=max_len)
            else:
                out = model.beam_search(s, s_len, beam=beam, max_len=max_len, length_norm=length_norm)
            hyps.extend(tgt_vocab.decode(seq) for seq in out.sequences)
            refs.extend(tgt_vocab.split(t) for _, t in chunk)
    model.train(was_training)
    exact = sum(h == r for h, r in zip(hyps, refs)) / len(pairs)
    return Evaluation(total / tokens, exact, corpus_bleu(hyps, refs).score, len(pairs))


def _arrays(src: list[list[int]], tgt: list[list[int]]) -> tuple[numpy.ndarray, ...]:
    """(src, src_len, tgt_in, tgt_out, tgt_len) of id lists (targets without BOS/EOS)."""
    s, s_len = pad_batch(src)
    t_in, t_len = pad_batch([[BOS] + t for t in tgt])
    t_out, _ = pad_batch([t + [EOS] for t in tgt])
    return s, s_len, t_in, t_out, t_len


class Seq2SeqTrainer:
    """Training of a ``Seq2Seq`` on a ``Task``: bucketed batches, Adam, clipping, evaluation, checkpoints, resume.

    One iteration trains on one batch: the teacher-forced loss (``Seq2Seq.loss``, with scheduled
    sampling when ``sampling`` > 0), backward, global-norm clipping, an Adam step. Iteration ``i`` is
    batch ``i mod n`` of epoch ``i div n`` (``n`` batches per epoch, from ``Buckets``).

    Everything that decides the next weights is in the checkpoint: the model, Adam's moments, the
    iteration (which gives the data position), the generator behind the initial weights and dropout
    masks, and the scheduled-sampling generator. ``resume`` restores all of it, so a run killed at any
    moment and resumed from its last checkpoint ends with the weights of an uninterrupted run, bit for bit.

    Args:
        model_config: the model's hyper-parameters.
        config: the training's.
        task: the examples, a ``dlia.data.tasks.Task`` (``dates_task``, ``tsv_task``).
        vocabs: (source, target) vocabularies (default: ``vocabularies(task)``).
    """

    def __init__(self, model_config: Seq2SeqConfig, config: TrainConfig, task: Any,
                 vocabs: tuple[TokenVocab, TokenVocab] | None = None) -> None:
        self.model_config, self.config, self.task = model_config, config, task
        self.src_vocab, self.tgt_vocab = vocabs or vocabularies(task)
        self.generator = dlia.Generator(model_config.seed)
        self.model = Seq2Seq(model_config, self.src_vocab.size, self.tgt_vocab.size, self.generator)
        self.optimizer = optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.train_src = [self.src_vocab.encode(s) for s, _ in task.train]  # training tokens are all known
        self.train_tgt = [self.tgt_vocab.encode(t) for _, t in task.train]
        self.buckets = Buckets([len(s) for s in self.train_src], config.batch_size, config.seed)
        #: the decoders' limit: twice the longest training target, and room for EOS
        self.max_len = min(2 * max(len(t) for t in self.train_tgt) + 1, MAX_DECODE_LEN)
        self.iteration = 0
        self.history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_iteration": [], "val_exact": [],
                                                "val_bleu": []}
        self.best_val_loss = math.inf
        self.best_checkpoint: str | None = None
        self.elapsed = 0.0  # seconds spent training, over every session of the run
        self._epoch_cache: tuple[int, list[numpy.ndarray]] | None = None

    @property
    def n_batches(self) -> int:
        return self.buckets.n_batches

    @property
    def total_iterations(self) -> int:
        total = self.config.max_epochs * self.n_batches
        return min(total, self.config.max_steps) if self.config.max_steps else total

    @property
    def eval_every(self) -> int:
        return self.config.eval_every or self.n_batches

    @property
    def epoch(self) -> float:
        """Epochs done, fractional."""
        return self.iteration / self.n_batches

    def batch(self, iteration: int) -> numpy.ndarray:
        """The example indices of the batch that iteration ``iteration`` trains on."""
        e, k = divmod(iteration, self.n_batches)
        if self._epoch_cache is None or self._epoch_cache[0] != e:
            self._epoch_cache = (e, self.buckets.epoch(e))
        return self._epoch_cache[1][k]

    def train_step(self) -> tuple[float, int]:
        """Train on the next batch; returns (its loss in nats per target token, its target tokens)."""
        idx = self.batch(self.iteration)
        src, src_len, t_in, t_out, t_len = _arrays([self.train_src[i] for i in idx], [self.train_tgt[i] for i in idx])
        started = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad()
        loss = self.model.loss(src, src_len, t_in, t_out, t_len, sampling=self.config.sampling)
        loss.backward()
        if self.config.grad_clip > 0:
            optim.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.iteration += 1
        value = loss.item()
        self.history["train_loss"].append(value)
        self.elapsed += time.perf_counter() - started
        return value, int(t_len.sum())

    def evaluate(self, pairs: Pairs, beam: int | None = None) -> Evaluation:
        """``evaluate`` of the model on ``pairs`` with the run's beam, length normalisation and ``max_len``."""
        return evaluate(self.model, (self.src_vocab, self.tgt_vocab), pairs, self.config.beam if beam is None else beam,
                        self.config.length_norm, self.max_len)

    def record_evaluation(self, ev: Evaluation) -> None:
        self.history["val_loss"].append(ev.loss)
        self.history["val_iteration"].append(self.iteration)
        self.history["val_exact"].append(ev.exact)
        self.history["val_bleu"].append(ev.bleu)

    def checkpoint_file(self, val_loss: float) -> str:
        """``seq2seq_epoch{epoch}_{val_loss}.npz``, with enough decimals that two evaluations never share a name."""
        return checkpoint_name(PREFIX, self.epoch, val_loss, decimals=len(str(self.n_batches)))

    def save(self, folder: str | os.PathLike[str], val_loss: float, candidate: bool = True) -> Path:
        """Write a checkpoint of everything into ``folder`` (atomically); returns its path. Only a
        ``candidate`` (a recorded evaluation, not a stop between two) may become the best checkpoint."""
        name = self.checkpoint_file(val_loss)
        best = ((val_loss, name) if candidate and val_loss < self.best_val_loss
                else (self.best_val_loss, self.best_checkpoint))
        extra = {"iteration": self.iteration, "best_val_loss": best[0], "best_checkpoint": best[1],
                 "elapsed_s": self.elapsed, "train": self.config.to_dict(), "task": self.task.description,
                 "vocabs": {"source": self.src_vocab.to_dict(), "target": self.tgt_vocab.to_dict()},
                 # scheduled sampling draws from the model's own NumPy generator; a resumed run needs its state
                 "sampling_rng": self.model._sampling_rng.bit_generator.state, "max_len": self.max_len}
        path = save_checkpoint(Path(folder) / name, self.model, self.optimizer, step=self.iteration,
                               generator=self.generator, config=self.model_config.to_dict(), history=self.history,
                               extra=extra)
        self.best_val_loss, self.best_checkpoint = best
        return path

    @classmethod
    def resume(cls, path: str | os.PathLike[str], task: Any, max_epochs: int | None = None,
               max_steps: int | None = None) -> Seq2SeqTrainer:
        """The trainer of the checkpoint at ``path``, ready to continue on ``task`` (the run's own,
        rebuilt with ``dlia.data.tasks.task_from_description(read_checkpoint(path).task)``: checked
        against the recorded description). ``max_epochs``/``max_steps`` may lengthen the run.

        Raises:
            CheckpointError: not a usable seq2seq checkpoint, or not the run's task.
        """
        saved = read_checkpoint(path)
        ckpt, extra = saved.checkpoint, saved.checkpoint.extra
        if _without_path(task.description) != _without_path(saved.task):  # a moved corpus file is the same task
            raise CheckpointError(f"{path}: it was trained on another task ({_describe(saved.task)}, "
                                  f"not {_describe(task.description)})")
        changes = {k: v for k, v in (("max_epochs", max_epochs), ("max_steps", max_steps)) if v is not None}
        config = TrainConfig.from_dict({**saved.train.to_dict(), **changes})
        trainer = cls(saved.model_config, config, task, (saved.src_vocab, saved.tgt_vocab))
        try:
            iteration = extra["iteration"]
            if not (isinstance(iteration, int) and iteration == ckpt.step and iteration >= 0):
                raise ValueError(f"iteration {iteration!r} does not match step {ckpt.step}")
            if not isinstance(ckpt.history, dict):
                raise ValueError("the loss history is damaged")
            history = {k: list(ckpt.history.get(k, [])) for k in trainer.history}
            if not all(isinstance(v, (int, float)) for values in history.values() for v in values):
                raise ValueError("the loss history holds something other than numbers")
            best, best_name = extra["best_val_loss"], extra["best_checkpoint"]
            if not (isinstance(best, (int, float)) and not math.isnan(best) and best >= 0
                    and (best_name is None or isinstance(best_name, str))):
                raise ValueError("the best validation loss is damaged")
            elapsed = float(extra.get("elapsed_s", 0.0))
            sampling_state = extra["sampling_rng"]
            scratch = numpy.random.PCG64()
            scratch.state = sampling_state  # NumPy checks every field
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise CheckpointError(f"{path} has a corrupt training state: {e}") from None
        load_checkpoint(path, trainer.model, trainer.optimizer, trainer.generator)
        trainer.model._sampling_rng.bit_generator.state = sampling_state
        trainer.iteration, trainer.history, trainer.elapsed = iteration, history, elapsed
        trainer.best_val_loss, trainer.best_checkpoint = float(best), best_name
        return trainer


def _without_path(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "path"}


def _describe(d: Any) -> str:
    if isinstance(d, dict) and d.get("task") == "dates":
        return f"dates, {d.get('train_size')} pairs, seed {d.get('seed')}"
    if isinstance(d, dict):
        return f"{d.get('path')}, {d.get('tokens')} tokens, seed {d.get('seed')}"
    return "unknown"


def fit(trainer: Seq2SeqTrainer, folder: str | os.PathLike[str], max_time: float | None = None,
        on_step: Callable[[float, int], None] | None = None,
        on_eval: Callable[[Evaluation, Path], None] | None = None) -> bool:
    """Train until ``total_iterations`` (or ``max_time`` seconds of this session), evaluating on the
    validation pairs and writing a checkpoint into ``folder`` every ``eval_every`` iterations and at the end.

    Args:
        on_step: called with each iteration's loss and target tokens.
        on_eval: called with each evaluation and the checkpoint written.

    Returns:
        True when the run is complete, False when ``max_time`` stopped it first.

    Raises:
        FloatingPointError: the loss became NaN or infinite (no checkpoint of it is written).
    """
    started = time.perf_counter()
    while trainer.iteration < trainer.total_iterations:
        loss, tokens = trainer.train_step()
        if not math.isfinite(loss):
            raise FloatingPointError(f"training diverged at iteration {trainer.iteration} (loss {loss})")
        if on_step is not None:
            on_step(loss, tokens)
        out_of_time = max_time is not None and time.perf_counter() - started >= max_time
        scheduled = trainer.iteration % trainer.eval_every == 0 or trainer.iteration == trainer.total_iterations
        if scheduled or out_of_time:
            ev = trainer.evaluate(trainer.task.val)
            # a stop between two scheduled evaluations writes a checkpoint to resume from, but records
            # nothing: the resumed run's history and best checkpoint are the uninterrupted run's
            if scheduled:
                trainer.record_evaluation(ev)
            path = trainer.save(folder, ev.loss, candidate=scheduled)
            if on_eval is not None:
                on_eval(ev, path)
        if out_of_time:
            return trainer.iteration >= trainer.total_iterations
    return True


# -- checkpoints -----------------------------------------------------------------------------------
@dataclass
class SavedRun:
    """What ``read_checkpoint`` read and checked."""

    model_config: Seq2SeqConfig
    train: TrainConfig
    src_vocab: TokenVocab
    tgt_vocab: TokenVocab
    task: dict[str, Any]
    max_len: int
    checkpoint: Any  # dlia.io.Checkpoint

    def model(self) -> Seq2Seq:
        """The trained model, in eval mode, with the checkpoint's weights."""
        model = Seq2Seq(self.model_config, self.src_vocab.size, self.tgt_vocab.size)
        model.load_state_dict(self.checkpoint.model_state)
        model.eval()
        return model


def read_checkpoint(path: str | os.PathLike[str]) -> SavedRun:
    """The configs, vocabularies and task of the seq2seq checkpoint at ``path``, all checked before
    any model is built: a ``Seq2Seq`` checkpoint, valid configs and vocabularies, and weights of
    exactly the shapes they imply (so a damaged config cannot make a model of any size).

    Raises:
        CheckpointError: naming the file and what is wrong.
    """
    ckpt = load_checkpoint(path)
    expect_model_class(ckpt, "Seq2Seq", "seq2seq", "dlia seq2seq train")
    extra = ckpt.extra
    try:
        model_config = Seq2SeqConfig.from_dict(ckpt.config)
        train = TrainConfig.from_dict(extra.get("train"))
        vocabs = extra.get("vocabs")
        if not isinstance(vocabs, dict):
            raise ValueError("the vocabularies are missing")
        src, tgt = TokenVocab.from_dict(vocabs.get("source")), TokenVocab.from_dict(vocabs.get("target"))
        task = extra.get("task")
        if not isinstance(task, dict) or task.get("task") not in ("dates", "tsv"):
            raise ValueError("the task description is damaged")
        max_len = extra.get("max_len")
        if isinstance(max_len, bool) or not isinstance(max_len, int) or not 1 <= max_len <= MAX_DECODE_LEN:
            raise ValueError(f"max_len {max_len!r} is damaged")
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: {e}") from None
    per_layer = (4 * (2 if model_config.bidirectional else 1)) + 4
    if len(ckpt.model_state) < per_layer * model_config.layers:  # before listing the shapes of a huge layers
        raise CheckpointError(f"{path}: its config asks for {model_config.layers} layers, but it holds "
                              f"{len(ckpt.model_state)} weights")
    expected = parameter_shapes(model_config, src.size, tgt.size)
    expect_shapes(ckpt, expected, "its config and vocabularies ask")
    unexpected = sorted(set(ckpt.model_state) - set(expected))
    if unexpected:
        raise CheckpointError(f"{path}: unexpected weights {', '.join(unexpected)}")
    return SavedRun(model_config, train, src, tgt, task, max_len, ckpt)


# -- translating -----------------------------------------------------------------------------------
@dataclass
class Translation:
    """One translated text: its source tokens, the output tokens and text, the output's
    log-probability, and the attention weights (output steps incl. EOS, source tokens) or None."""

    source: list[str]
    tokens: list[str]
    text: str
    score: float
    attention: numpy.ndarray | None


def translate(model: Seq2Seq, vocabs: tuple[TokenVocab, TokenVocab], texts: Sequence[str], beam: int = 1,
              length_norm: float = 0.0, max_len: int | None = None) -> list[Translation]:
    """Translate ``texts`` with a trained model: greedy decoding (``beam`` 1) or beam search.

    Args:
        model: a trained ``Seq2Seq`` (put in eval mode here).
        vocabs: its (source, target) vocabularies.
        texts: the sources.
        beam: the beam width (1: greedy).
        length_norm: GNMT's α for beam search.
        max_len: the most output tokens (EOS included); default twice the longest source, plus 10.

    Raises:
        UnknownTokenError: a text holds tokens outside the source vocabulary (named), or is empty.
    """
    src_vocab, tgt_vocab = vocabs
    ids = []
    for text in texts:
        encoded = src_vocab.encode(text)
        if not encoded:
            raise UnknownTokenError("cannot translate an empty text")
        ids.append(encoded)
    if not ids:
        return []
    if max_len is None:
        max_len = 2 * max(map(len, ids)) + 10
    src, src_len = pad_batch(ids)
    model.eval()
    out = (model.greedy_decode(src, src_len, max_len=max_len) if beam == 1 else
           model.beam_search(src, src_len, beam=beam, max_len=max_len, length_norm=length_norm))
    results = []
    for i, text in enumerate(texts):
        tokens = tgt_vocab.decode(out.sequences[i])
        att = out.attention[i][:, :len(ids[i])] if out.attention is not None else None
        results.append(Translation(src_vocab.split(text), tokens, tgt_vocab.join(tokens), out.scores[i], att))
    return results
