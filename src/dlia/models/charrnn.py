"""char-rnn: a character-level language model (Karpathy's char-rnn, rebuilt on dlia) that trains on
any UTF-8 text, resumes exactly where it stopped, and samples text one character at a time.

The pieces, each usable on its own:

- ``CharRNNConfig``: every hyper-parameter, with char-rnn's defaults.
- ``CharData``: char-rnn's batching of an encoded corpus (``batch_size`` parallel streams cut in
  ``seq_length`` chunks; the first ``train_frac`` of the chunks train, the next ``val_frac`` validate).
- ``CharRNN``: embedding → LSTM/GRU/RNN → dropout → linear, giving next-character logits.
- ``CharRNNTrainer``: truncated backpropagation through time, learning-rate decay, evaluation and
  checkpoints that hold everything a resumed run needs to end with bit-identical weights.
- ``sample``: a generator of characters, run by a NumPy step function of the trained weights.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy

import dlia
from dlia import nn, optim
from dlia.backend import blas
from dlia.io import CheckpointError, checkpoint_name, load_checkpoint, save_checkpoint
from dlia.io.checkpoint import expect_model_class, expect_shapes
from dlia.text import CharVocab

#: the prefix of checkpoint file names: ``charrnn_epoch001.25_1.6543.npz``
PREFIX = "charrnn"
MODELS = ("lstm", "gru", "rnn")
OPTIMIZERS = ("adam", "rmsprop")
#: gate blocks per layer in the weight matrices (torch's layout: i,f,g,o / r,z,n / one)
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


@dataclass
class CharRNNConfig:
    """Hyper-parameters of ``dlia char-rnn train``; the defaults are char-rnn's flags.

    Checked on construction: a bad value raises ``ValueError`` naming the field.
    """

    model: str = "lstm"  # lstm | gru | rnn (tanh)
    rnn_size: int = 128  # hidden units per layer; also the embedding size
    num_layers: int = 2
    seq_length: int = 50  # time steps of truncated backpropagation through time
    batch_size: int = 50  # parallel streams of text
    learning_rate: float = 2e-3
    lr_decay: float = 0.97  # the learning rate is multiplied by this after each epoch ...
    lr_decay_after: int = 10  # ... once this many epochs are done
    optimizer: str = "adam"  # adam | rmsprop (char-rnn's: alpha 0.95)
    dropout: float = 0.0  # between the recurrent layers and before the output layer
    grad_clip: float = 5.0  # the global gradient norm is clipped to this (0: no clipping)
    max_epochs: int = 50
    train_frac: float = 0.95  # fraction of the batches that train
    val_frac: float = 0.05  # fraction that validate (the next ones)
    eval_every: int = 1000  # iterations between evaluations (each writes a checkpoint)
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind, low, high = _RANGES[f.name]
            if kind is str:
                choices = MODELS if f.name == "model" else OPTIMIZERS
                if value not in choices:
                    raise ValueError(f"char-rnn config: {f.name} must be one of {', '.join(choices)}, got {value!r}")
                continue
            ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and low <= value <= high):
                what = "an integer" if kind is int else "a number"
                raise ValueError(f"char-rnn config: {f.name} must be {what} in [{low:g}, {high:g}], got {value!r}")
        if self.train_frac <= 0 or self.val_frac <= 0:
            raise ValueError(f"char-rnn config: train_frac and val_frac must be above 0, got {self.train_frac:g} "
                             f"and {self.val_frac:g}")
        if self.train_frac + self.val_frac > 1 + 1e-9:
            raise ValueError(f"char-rnn config: train_frac + val_frac must be at most 1, got "
                             f"{self.train_frac:g} + {self.val_frac:g}")
        if self.learning_rate <= 0 or self.lr_decay <= 0:
            raise ValueError("char-rnn config: learning_rate and lr_decay must be above 0")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CharRNNConfig:
        """Build from a dict (e.g. a checkpoint's config); unknown keys are rejected."""
        if not isinstance(values, dict):
            raise ValueError(f"char-rnn config: expected a dict, got {type(values).__name__}")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown char-rnn config keys: {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: (type, lowest, highest) of each field; strings are checked against their choices
_RANGES: dict[str, tuple[type, float, float]] = {
    "model": (str, 0, 0), "optimizer": (str, 0, 0), "rnn_size": (int, 1, 2**31 - 1), "num_layers": (int, 1, 2**31 - 1),
    "seq_length": (int, 1, 2**31 - 1), "batch_size": (int, 1, 2**31 - 1), "learning_rate": (float, 0, 1e6),
    "lr_decay": (float, 0, 1), "lr_decay_after": (int, 0, 2**31 - 1), "dropout": (float, 0, 0.999),
    "grad_clip": (float, 0, 1e30), "max_epochs": (int, 1, 2**31 - 1), "train_frac": (float, 0, 1),
    "val_frac": (float, 0, 1), "eval_every": (int, 1, 2**62), "seed": (int, 0, 2**63 - 1),
}


# -- data ------------------------------------------------------------------------------------------
def split_sizes(batches: int, train_frac: float, val_frac: float) -> tuple[int, int]:
    """(training batches, validation batches) of ``batches``: at least one of each, the validation
    ones ``val_frac·batches`` rounded half up (Python's ``round`` takes halves to even: 5 batches at
    0.5/0.5 left one unused), the training ones ``⌊train_frac·batches⌋`` of what is left."""
    n_val = max(1, math.floor(batches * val_frac + 0.5))
    n_train = min(math.floor(batches * train_frac + 1e-9), batches - n_val)
    return n_train, n_val


def min_chars(config: CharRNNConfig) -> int:
    """Characters a corpus needs for ``config``: two batches (one to train, one to validate) and the
    one character that the last target needs."""
    return 2 * config.batch_size * config.seq_length + 1


class CharData:
    """char-rnn's batching of encoded text, with a contiguous validation part at the end.

    The ids hold ``n = ⌊(len − 1)/(B·T)⌋`` batches of ``B·T`` characters; the first ``n_train`` batches'
    worth of text trains, the next ``n_val`` batches' worth validates (with the default fractions,
    0.95 and 0.05, the last 5 % of the text). Each part is laid out as char-rnn lays out its text:
    ``x`` = the part, ``y`` = the part shifted by one character, each viewed as ``B`` contiguous
    streams cut in chunks of ``T``: batch ``k`` is ``x[b, k·T:(k+1)·T]`` for every stream ``b``, so row
    ``b`` of batch ``k+1`` continues row ``b`` of batch ``k`` and a hidden state can be carried from
    one to the next. (karpathy/char-rnn lays out the whole text first and gives validation the last
    chunks of every stream, 50 pieces scattered through the text; here validation text is held out
    in one block.) Views: nothing is copied.

    Args:
        ids: the encoded corpus (1-d integer array).
        batch_size, seq_length: ``B`` and ``T``.
        train_frac, val_frac: fractions of the batches for training and validation.

    Raises:
        ValueError: the corpus is shorter than two batches (``min_chars``).
    """

    def __init__(self, ids: numpy.ndarray, batch_size: int, seq_length: int, train_frac: float = 0.95,
                 val_frac: float = 0.05) -> None:
        B, T = batch_size, seq_length
        batches = (len(ids) - 1) // (B * T)
        if batches < 2:
            raise ValueError(f"the text has {len(ids)} characters; batch size {B} × sequence length {T} needs at "
                             f"least {2 * B * T + 1} (one batch to train, one to validate, one more character)")
        self.n_train, self.n_val = split_sizes(batches, train_frac, val_frac)
        if self.n_train < 1:
            raise ValueError(f"the text has {batches} batches of {B}×{T} characters; a training fraction of "
                             f"{train_frac:g} of them is less than one batch")
        self.train_x, self.train_y = self._streams(ids, 0, self.n_train, B, T)
        self.val_x, self.val_y = self._streams(ids, self.n_train * B * T, self.n_val, B, T)
        self.batch_size, self.seq_length, self.ids = B, T, ids

    @staticmethod
    def _streams(ids: numpy.ndarray, start: int, batches: int, B: int, T: int) -> tuple[numpy.ndarray, numpy.ndarray]:
        """(x, y) of ``batches`` batches of text from ``start``: (batches, B, T) strided views of ids."""
        n = batches * B * T
        x = ids[start:start + n].reshape(B, batches, T).transpose(1, 0, 2)
        y = ids[start + 1:start + n + 1].reshape(B, batches, T).transpose(1, 0, 2)
        return x, y

    def train_batch(self, k: int) -> tuple[numpy.ndarray, numpy.ndarray]:
        """(inputs, targets) of training batch ``k``, each (B, T)."""
        if not 0 <= k < self.n_train:
            raise IndexError(f"training batch {k} of {self.n_train}")
        return self.train_x[k], self.train_y[k]

    def val_batch(self, k: int) -> tuple[numpy.ndarray, numpy.ndarray]:
        """(inputs, targets) of validation batch ``k``, each (B, T)."""
        if not 0 <= k < self.n_val:
            raise IndexError(f"validation batch {k} of {self.n_val}")
        return self.val_x[k], self.val_y[k]


# -- the model -------------------------------------------------------------------------------------
def parameter_shapes(config: CharRNNConfig, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """Every parameter of ``CharRNN(config, vocab_size)`` and its shape, without building it (to
    check a checkpoint, or the memory a size implies, before allocating anything)."""
    H, V, G = config.rnn_size, vocab_size, GATES[config.model] * config.rnn_size
    shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (V, H)}
    for k in range(config.num_layers):
        shapes.update({f"rnn.weight_ih_l{k}": (G, H), f"rnn.weight_hh_l{k}": (G, H),
                       f"rnn.bias_ih_l{k}": (G,), f"rnn.bias_hh_l{k}": (G,)})
    shapes.update({"decoder.weight": (V, H), "decoder.bias": (V,)})
    return shapes


def parameter_count(config: CharRNNConfig, vocab_size: int) -> int:
    """The number of parameters of ``CharRNN(config, vocab_size)``, by formula (instant for any size)."""
    H, G, V = config.rnn_size, GATES[config.model], vocab_size
    return 2 * V * H + V + config.num_layers * (2 * G * H * H + 2 * G * H)


def training_bytes(config: CharRNNConfig, vocab_size: int) -> int:
    """An estimate of the peak memory of training ``config``: parameters with their gradients and
    two optimizer moments (float32, 4 copies), and the activations one batch keeps for the backward
    pass (per character: the gates and states of every layer, the logits and their softmax)."""
    params = parameter_count(config, vocab_size)
    H, G = config.rnn_size, GATES[config.model]
    per_char = config.num_layers * (G + 4) * H + 4 * vocab_size + 2 * H
    return 4 * (4 * params + 2 * config.batch_size * config.seq_length * per_char)


class CharRNN(nn.Module):
    """``Embedding(V, H)`` → ``LSTM``/``GRU``/``RNN`` (``num_layers`` × ``H``, dropout between
    layers) → dropout → ``Linear(H, V)``.

    ``forward(x, state)`` takes ids ``x`` of shape (B, T) and the recurrent state (``None``: zeros;
    an LSTM's is ``(h, c)``, the others' ``h``, each (num_layers, B, H)), and returns the logits
    (B, T, V) of the next character at every position and the final state.

    Args:
        config: the hyper-parameters (``model``, ``rnn_size``, ``num_layers``, ``dropout``).
        vocab_size: V, the number of distinct characters.
        generator: the seeded source of the initial weights and of every dropout mask.
    """

    def __init__(self, config: CharRNNConfig, vocab_size: int, generator: dlia.Generator | None = None) -> None:
        super().__init__()
        gen = generator or dlia.Generator(config.seed)
        self.config, self.vocab_size = config, vocab_size
        H = config.rnn_size
        self.embedding = nn.Embedding(vocab_size, H, generator=gen)
        layer = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[config.model]
        self.rnn = layer(H, H, num_layers=config.num_layers, batch_first=True, dropout=config.dropout, generator=gen)
        self.drop = nn.Dropout(config.dropout, generator=gen)
        self.decoder = nn.Linear(H, vocab_size, generator=gen)

    def forward(self, x: Any, state: Any = None) -> tuple[dlia.Tensor, Any]:
        # = self.rnn(self.embedding(x), state), without projecting every embedded character (see
        # nn.LSTM.forward_embedded): training 1.09× faster at 2×128, 1.19× at 2×512
        out, state = self.rnn.forward_embedded(self.embedding.weight, x, state)
        return self.decoder(self.drop(out)), state


def step_threads(model: str) -> contextlib.AbstractContextManager[None]:
    """The threading a training or evaluation step of a ``model`` ("lstm", "gru", "rnn") runs under.

    An LSTM step runs inside ``dlia.backend.blas.own_threads()``: its whole-sequence kernels split the
    batch rows between the cores and the products run on the same threads, which only pays together
    (2×128: 88k chars/s against 64k with the kernel on one thread and the products on OpenBLAS's
    threads; 2×512: 7.3k against 5.7k; torch 82k and 7.0k in the same run). A GRU or RNN has per-step
    products, which are faster on OpenBLAS's polling threads (GRU 2×128: 69k against 55k chars/s),
    so its steps keep them there.
    """
    return blas.own_threads() if model == "lstm" else contextlib.nullcontext()


def detach_state(state: Any) -> Any:
    """The state with its history cut (truncated BPTT): the next batch starts from these values,
    and its backward pass stops here."""
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def _state_arrays(state: Any) -> list[numpy.ndarray]:
    return [s.numpy() for s in (state if isinstance(state, tuple) else (state,))]


def _pack(a: numpy.ndarray) -> dict[str, Any]:
    """An array as JSON: exact bytes in base64 (a checkpoint's JSON part holds the carried state)."""
    a = numpy.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _unpack(d: Any, shape: tuple[int, ...]) -> numpy.ndarray:
    """The array ``_pack`` wrote, checked to be float32 of ``shape`` with finite values."""
    if not isinstance(d, dict) or d.get("dtype") != "<f4" or d.get("shape") != list(shape):
        raise ValueError(f"expected a float32 array of shape {shape}")
    try:
        raw = base64.b64decode(d["data"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise ValueError("its data is not base64") from None
    if len(raw) != 4 * math.prod(shape):
        raise ValueError(f"its data holds {len(raw)} bytes, not {4 * math.prod(shape)}")
    a = numpy.frombuffer(raw, dtype="<f4").reshape(shape).astype(numpy.float32)
    if not numpy.isfinite(a).all():
        raise ValueError("it holds NaN or infinite values")
    return a


# -- checkpoints -----------------------------------------------------------------------------------
def read_checkpoint(path: str | os.PathLike[str]) -> tuple[CharRNNConfig, CharVocab, Any]:
    """The config and vocabulary of the char-rnn checkpoint at ``path``, and the checkpoint, all
    checked before any model is built: a ``CharRNN`` checkpoint (not a CNN's), a valid config and
    vocabulary, and weights of exactly the shapes they imply (so a damaged config cannot make a
    model of any size).

    Raises:
        CheckpointError: naming the file and what is wrong.
    """
    ckpt = load_checkpoint(path)
    expect_model_class(ckpt, "CharRNN", "char-rnn", "dlia char-rnn train")
    try:
        config = CharRNNConfig.from_dict(ckpt.config)
        vocab = CharVocab.from_list(ckpt.vocab)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: {e}") from None
    if len(ckpt.model_state) != 4 * config.num_layers + 3:  # before listing the shapes of a huge num_layers
        raise CheckpointError(f"{path}: its config asks for a {config.num_layers}-layer {config.model} "
                              f"({4 * config.num_layers + 3} weights), but it holds {len(ckpt.model_state)} weights")
    expected = parameter_shapes(config, len(vocab))
    expect_shapes(ckpt, expected, "its config and vocabulary ask")
    extra = sorted(set(ckpt.model_state) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: unexpected weights {', '.join(extra)} for a {config.num_layers}-layer {config.model}")
    return config, vocab, ckpt


def corpus_fingerprint(ids: numpy.ndarray) -> str:
    """SHA-256 of the encoded corpus: a resumed run checks it trains on the same text."""
    return hashlib.sha256(numpy.ascontiguousarray(ids, dtype=numpy.int32).tobytes()).hexdigest()


class CharRNNTrainer:
    """Training of a ``CharRNN``: truncated BPTT over ``CharData``, evaluation, checkpoints, resume.

    One iteration trains on one batch: forward from the carried state, cross-entropy of every
    next character (nats/char), backward, global-norm clipping, an optimizer step, and the final
    state detached and kept for the next batch. The state is reset to zeros at each epoch start.
    The learning rate of epoch ``e`` (0-based) is ``learning_rate · lr_decay^max(0, e − lr_decay_after + 1)``:
    as char-rnn, it decays after each epoch once ``lr_decay_after`` epochs are done.

    Everything that decides the next weights lives here and goes into the checkpoint: the model,
    the optimizer's moments and step count, the iteration (which gives the epoch and the data
    position), the carried state, and the generator behind the initial weights and every dropout
    mask. ``CharRNNTrainer.resume`` restores all of it, so a run killed at any moment and resumed
    from its last checkpoint ends with the weights of an uninterrupted run, bit for bit.

    Args:
        config: hyper-parameters.
        vocab: the corpus's characters.
        data: the batched corpus (built with ``config``'s batch size, sequence length, fractions).
        device: where the model trains (``"cpu"`` or ``"gpu"``).
    """

    def __init__(self, config: CharRNNConfig, vocab: CharVocab, data: CharData, device: str | dlia.Device = "cpu") -> None:
        self.config, self.vocab, self.data = config, vocab, data
        self.device = dlia.Device(device) if isinstance(device, str) else device
        self.generator = dlia.Generator(config.seed)
        self.model = CharRNN(config, len(vocab), self.generator).to(self.device)
        if config.optimizer == "adam":
            self.optimizer: optim.Optimizer = optim.Adam(self.model.parameters(), lr=config.learning_rate)
        else:  # char-rnn's RMSprop: decay 0.95
            self.optimizer = optim.RMSprop(self.model.parameters(), lr=config.learning_rate, alpha=0.95)
        self.iteration = 0
        self.state: Any = None
        self.history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_iteration": []}
        self.best_val_loss = math.inf
        self.best_checkpoint: str | None = None  # its file name, in the checkpoint folder
        self.elapsed = 0.0  # seconds spent training, over every session of the run
        self.corpus = corpus_fingerprint(data.ids)

    # the run's length, in iterations and epochs
    @property
    def total_iterations(self) -> int:
        return self.config.max_epochs * self.data.n_train

    @property
    def epoch(self) -> float:
        """Epochs done, fractional (char-rnn's ``epoch``)."""
        return self.iteration / self.data.n_train

    def lr_at(self, epoch: int) -> float:
        c = self.config
        return c.learning_rate * c.lr_decay ** max(0, epoch - c.lr_decay_after + 1)

    def train_step(self) -> float:
        """Train on the next batch; returns its loss in nats per character."""
        k = self.iteration % self.data.n_train
        if k == 0:  # a new epoch: the streams start over, and so does the state
            self.state = None
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr_at(self.iteration // self.data.n_train)
        xb, yb = self.data.train_batch(k)
        started = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad()
        with step_threads(self.config.model):
            logits, state = self.model(dlia.tensor(xb, device=self.device), self.state)
            loss = dlia.cross_entropy(logits.reshape(-1, len(self.vocab)), yb.reshape(-1))
            loss.backward()
        if self.config.grad_clip > 0:
            optim.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.state = detach_state(state)
        self.iteration += 1
        value = loss.item()
        self.history["train_loss"].append(value)
        self.elapsed += time.perf_counter() - started
        return value

    def evaluate(self) -> float:
        """Mean loss (nats per character) over the validation batches, from a zero state, in eval
        mode (no dropout) and without recording gradients."""
        self.model.eval()
        total, state = 0.0, None
        with dlia.no_grad(), step_threads(self.config.model):
            for k in range(self.data.n_val):
                xb, yb = self.data.val_batch(k)
                logits, state = self.model(dlia.tensor(xb, device=self.device), state)
                total += dlia.cross_entropy(logits.reshape(-1, len(self.vocab)), yb.reshape(-1)).item()
        self.model.train()
        return total / self.data.n_val

    def record_evaluation(self, val_loss: float) -> None:
        self.history["val_loss"].append(val_loss)
        self.history["val_iteration"].append(self.iteration)

    def checkpoint_file(self, val_loss: float) -> str:
        """``charrnn_epoch{epoch}_{val_loss}.npz``, the epoch with enough decimals that two
        evaluations of one run never share a name."""
        return checkpoint_name(PREFIX, self.epoch, val_loss, decimals=len(str(self.data.n_train)))

    def save(self, folder: str | os.PathLike[str], val_loss: float) -> Path:
        """Write a checkpoint of everything into ``folder`` (atomically); returns its path. When
        ``val_loss`` is the best so far the checkpoint becomes the run's best."""
        name = self.checkpoint_file(val_loss)
        best = (val_loss, name) if val_loss < self.best_val_loss else (self.best_val_loss, self.best_checkpoint)
        hidden = None if self.state is None else [_pack(a) for a in _state_arrays(self.state)]
        extra = {"iteration": self.iteration, "hidden": hidden, "best_val_loss": best[0], "best_checkpoint": best[1],
                 "elapsed_s": self.elapsed, "corpus_sha256": self.corpus}
        path = save_checkpoint(Path(folder) / name, self.model, self.optimizer, step=self.iteration,
                               generator=self.generator, config=self.config.to_dict(), vocab=self.vocab.to_list(),
                               history=self.history, extra=extra)
        self.best_val_loss, self.best_checkpoint = best  # only once the file is there
        return path

    @classmethod
    def resume(cls, path: str | os.PathLike[str], data_ids: numpy.ndarray, device: str | dlia.Device = "cpu",
               max_epochs: int | None = None) -> CharRNNTrainer:
        """The trainer of the checkpoint at ``path``, ready to continue on ``data_ids`` (the encoded
        corpus it was trained on: checked by its fingerprint). ``max_epochs`` may lengthen the run.

        Raises:
            CheckpointError: the checkpoint is not a usable char-rnn checkpoint, or ``data_ids`` is
                not its corpus.
        """
        config, vocab, ckpt = read_checkpoint(path)
        extra = ckpt.extra
        if corpus_fingerprint(data_ids) != extra.get("corpus_sha256"):
            raise CheckpointError(f"{path} was trained on another text; resume it with the file it was trained on")
        if max_epochs is not None:
            config = CharRNNConfig.from_dict({**config.to_dict(), "max_epochs": max_epochs})
        data = CharData(data_ids, config.batch_size, config.seq_length, config.train_frac, config.val_frac)
        trainer = cls(config, vocab, data, device)
        try:
            iteration = extra["iteration"]
            if not (isinstance(iteration, int) and iteration == ckpt.step and 0 <= iteration):
                raise ValueError(f"iteration {iteration!r} does not match step {ckpt.step}")
            shape = (config.num_layers, config.batch_size, config.rnn_size)
            hidden = extra["hidden"]
            if hidden is not None:
                parts = 2 if config.model == "lstm" else 1
                if not (isinstance(hidden, list) and len(hidden) == parts):
                    raise ValueError(f"the carried state must be {parts} arrays")
                arrays = [dlia.tensor(_unpack(h, shape), device=trainer.device) for h in hidden]
                state = tuple(arrays) if parts == 2 else arrays[0]
            else:
                state = None
            if not isinstance(ckpt.history, dict):
                raise ValueError("the loss history is damaged")
            history = {k: list(ckpt.history.get(k, [])) for k in trainer.history}
            if not all(isinstance(v, (int, float)) for values in history.values() for v in values):
                raise ValueError("the loss history holds something other than numbers")
            best, best_name = extra["best_val_loss"], extra["best_checkpoint"]
            elapsed = float(extra.get("elapsed_s", 0.0))
            if not (isinstance(best, (int, float)) and not math.isnan(best) and best >= 0
                    and (best_name is None or isinstance(best_name, str))):
                raise ValueError("the best validation loss is damaged")
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path} has a corrupt training state: {e}") from None
        load_checkpoint(path, trainer.model, trainer.optimizer, trainer.generator)
        trainer.iteration, trainer.state, trainer.history = iteration, state, history
        trainer.best_val_loss, trainer.best_checkpoint, trainer.elapsed = float(best), best_name, elapsed
        return trainer


def fit(trainer: CharRNNTrainer, folder: str | os.PathLike[str], max_time: float | None = None,
        on_step: Callable[[float], None] | None = None,
        on_eval: Callable[[float, Path], None] | None = None) -> bool:
    """Train until ``config.max_epochs`` (or ``max_time`` seconds of this session), evaluating and
    writing a checkpoint into ``folder`` every ``eval_every`` iterations and at the end.

    Args:
        on_step: called with each iteration's training loss.
        on_eval: called with each validation loss and the checkpoint written.

    Returns:
        True when the run is complete, False when ``max_time`` stopped it first.
    """
    started = time.perf_counter()
    while trainer.iteration < trainer.total_iterations:
        loss = trainer.train_step()
        if not math.isfinite(loss):
            raise FloatingPointError(f"training diverged at iteration {trainer.iteration} (loss {loss})")
        if on_step is not None:
            on_step(loss)
        out_of_time = max_time is not None and time.perf_counter() - started >= max_time
        if trainer.iteration % trainer.config.eval_every == 0 or trainer.iteration == trainer.total_iterations or out_of_time:
            val = trainer.evaluate()
            trainer.record_evaluation(val)
            path = trainer.save(folder, val)
            if on_eval is not None:
                on_eval(val, path)
        if out_of_time:
            return trainer.iteration >= trainer.total_iterations
    return True


# -- sampling --------------------------------------------------------------------------------------
class StepModel:
    """The trained ``CharRNN`` as NumPy arrays and one function that advances it by one character.

    The same math as the layers (torch's equations and gate order), rearranged for T = 1:
    layer 0's input projection of every character is precomputed (``E·W_ih0ᵀ + b``, a (V, G·H)
    table), so a step reads one row instead of an embedding lookup and a matmul, and the engine's
    per-op bookkeeping is skipped entirely. For a 2×128 LSTM one character costs ~20 NumPy calls.

    Args:
        model: a trained ``CharRNN`` (its weights are copied to the CPU).
    """

    def __init__(self, model: CharRNN) -> None:
        c = model.config
        w = {k: numpy.asarray(v.numpy(), dtype=numpy.float32) for k, v in model.state_dict().items()}
        self.kind, self.L, self.H = c.model, c.num_layers, c.rnn_size
        gru = self.kind == "gru"
        b0 = w["rnn.bias_ih_l0"] + (0 if gru else w["rnn.bias_hh_l0"])  # a GRU's b_hn sits inside r∘(...)
        self.table = w["embedding.weight"] @ w["rnn.weight_ih_l0"].T + b0
        self.w_ih = [None] + [numpy.ascontiguousarray(w[f"rnn.weight_ih_l{k}"].T) for k in range(1, self.L)]
        self.b = [None] + [w[f"rnn.bias_ih_l{k}"] + (0 if gru else w[f"rnn.bias_hh_l{k}"]) for k in range(1, self.L)]
        self.w_hh = [numpy.ascontiguousarray(w[f"rnn.weight_hh_l{k}"].T) for k in range(self.L)]
        self.b_hh = [w[f"rnn.bias_hh_l{k}"] for k in range(self.L)]
        self.w_out, self.b_out = numpy.ascontiguousarray(w["decoder.weight"].T), w["decoder.bias"]
        self.nonlinearity = getattr(model.rnn, "nonlinearity", "tanh")

    def zero_state(self) -> list[numpy.ndarray]:
        """h of each layer, then c of each layer (an LSTM's), all zeros."""
        n = 2 * self.L if self.kind == "lstm" else self.L
        return [numpy.zeros(self.H, dtype=numpy.float32) for _ in range(n)]

    def step(self, char: int, state: list[numpy.ndarray]) -> numpy.ndarray:
        """Feed character id ``char``; updates ``state`` in place and returns the next character's logits (V,)."""
        H, L = self.H, self.L
        x = None
        for k in range(L):
            h = state[k]
            pre = self.table[char] if k == 0 else x @ self.w_ih[k] + self.b[k]
            if self.kind == "lstm":
                g = pre + h @ self.w_hh[k]
                s = 1.0 / (1.0 + numpy.exp(-g))  # σ of all four blocks; block g needs tanh instead
                c = s[H:2 * H] * state[L + k] + s[:H] * numpy.tanh(g[2 * H:3 * H])
                h = s[3 * H:] * numpy.tanh(c)
                state[L + k] = c
            elif self.kind == "gru":
                gh = h @ self.w_hh[k] + self.b_hh[k]
                rz = 1.0 / (1.0 + numpy.exp(-(pre[:2 * H] + gh[:2 * H])))
                n = numpy.tanh(pre[2 * H:] + rz[:H] * gh[2 * H:])
                h = n + rz[H:] * (h - n)  # (1 − z)∘n + z∘h
            else:
                a = pre + h @ self.w_hh[k]
                h = numpy.tanh(a) if self.nonlinearity == "tanh" else numpy.maximum(a, 0)
            state[k] = h
            x = h
        return x @ self.w_out + self.b_out


SAMPLE_MODES = ("sample", "argmax", "spaces")


def choose(logits: numpy.ndarray, temperature: float, top_k: int | None, rng: numpy.random.Generator) -> int:
    """Draw a character id from ``softmax(logits / temperature)``, restricted to the ``top_k`` most
    likely when given: one uniform number and a search in the cumulative probabilities."""
    z = logits.astype(numpy.float64)
    with numpy.errstate(over="ignore"):  # the max first: a tiny temperature gives 0 and -inf, never inf - inf
        z = (z - z.max()) / temperature
    if top_k is not None and top_k < len(z):
        cut = numpy.partition(z, len(z) - top_k)[len(z) - top_k]
        z = numpy.where(z >= cut, z, -numpy.inf)
    p = numpy.exp(z)
    cdf = numpy.cumsum(p)
    return min(int(numpy.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(z) - 1)


def sample(model: CharRNN, vocab: CharVocab, prime: str = "", length: int = 1000, temperature: float = 1.0,
           top_k: int | None = None, mode: str = "sample", seed: int = 0) -> Iterator[str]:
    """Generate ``length`` characters after ``prime``, one at a time (a generator, so they can be
    printed as they come).

    Args:
        model: a trained ``CharRNN``.
        vocab: its vocabulary.
        prime: text fed first, to set the state (every character must be in ``vocab``); when empty
            the first character is drawn uniformly from the vocabulary, as char-rnn does.
        length: characters to generate.
        temperature: divides the logits: below 1 more conservative, above 1 more varied.
        top_k: sample only among the ``top_k`` most likely characters (None: all).
        mode: ``sample`` draws every character; ``argmax`` always takes the most likely (the
            same text for every seed); ``spaces`` draws only at the start of a word (after a
            space or a newline) and takes the most likely elsewhere.
        seed: the same seed gives the same text.

    Raises:
        ValueError: an unknown mode, a non-positive temperature or top-k, or a prime character that
            is not in the vocabulary (named).
    """
    if mode not in SAMPLE_MODES:
        raise ValueError(f"sample mode must be one of {', '.join(SAMPLE_MODES)}, got {mode!r}")
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    ids = vocab.encode(prime)  # names an unknown character
    rng = numpy.random.default_rng(seed)
    step = StepModel(model)
    state = step.zero_state()
    for i in ids:
        logits = step.step(int(i), state)
    prev = prime[-1] if prime else " "
    for n in range(length):
        if not prime and n == 0:  # nothing to condition on: uniform over the vocabulary
            nxt = int(rng.integers(len(vocab)))
        elif mode == "sample" or mode == "spaces" and prev in (" ", "\n"):
            nxt = choose(logits, temperature, top_k, rng)
        else:
            nxt = int(numpy.argmax(logits))
        prev = vocab.chars[nxt]
        yield prev
        if n + 1 < length:
            logits = step.step(nxt, state)
