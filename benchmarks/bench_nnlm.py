"""Bengio's NNLM: training tokens/s of dlia's ``NNLM`` against a torch twin, same sizes, same batches.

Data: ``../shared/data/enwiki-sample.txt``, the first 80 % of its lines (one article a line), the
vocabulary of those lines with min-count 2 (``dlia.models.ngram.build_vocab``: ~15.5k words), the
contexts of order 5 (``dlia.models.nnlm.contexts``). Model: the paper's, with ``NNLMConfig``'s
defaults: m = 60, h = 100, direct connections, batches of 256, Adam (lr 3e-3).

Each repeat trains both models from the same initial weights (dlia's, copied into the twin) on the
same ``STEPS`` batches of a seeded permutation, after ``WARMUP`` untimed steps: a slice of an epoch,
enough for a steady rate (the softmax over V, ~15.5k, dominates every step). Timed: the whole
step (forward, cross-entropy, backward, Adam). The twin's embedding is dense (torch's Adam refuses
sparse gradients; ``SparseAdam`` is another algorithm), as dlia's Adam densifies the sparse
gradient of C. Both losses after the timed steps are recorded in the notes (they should agree to
float32 rounding).

Speed only: the perplexities are in docs/language-models.md.
"""

from __future__ import annotations

import time
from typing import Any

import numpy

from benchmarks.harness import REPO_ROOT, Config, Metric, Target, interleave, metrics_from

NAME = "nnlm"
CORPUS = REPO_ROOT.parent / "shared" / "data" / "enwiki-sample.txt"
#: timed and untimed steps per repeat (``--quick``: fewer); tests shrink them to smoke-test the code
STEPS, WARMUP, QUICK_STEPS = 40, 3, 8
#: None: every training line; a number keeps only that many (to smoke-test the benchmark quickly)
MAX_LINES: int | None = None
MIN_COUNT, TRAIN_FRAC = 2, 0.8


def data() -> tuple[list[str], numpy.ndarray, numpy.ndarray]:
    """(vocabulary, contexts X (N, 4), targets y (N,)) of the training lines."""
    from dlia.models.ngram import build_vocab, encode_sentences
    from dlia.models.nnlm import NNLMConfig, contexts

    lines = [line.split() for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    lines = [s for s in lines if s]
    train = lines[:int(TRAIN_FRAC * len(lines))][:MAX_LINES]
    vocab = build_vocab(train, MIN_COUNT)
    X, y = contexts(encode_sentences(train, vocab), NNLMConfig().order)
    return vocab, X, y


def _twin(model: Any) -> Any:
    """The same equation in torch, parameters registered in dlia's order (``copy_weights``)."""
    import torch

    c, V = model.config, model.vocab_size
    k = (c.order - 1) * c.embedding_dim

    class Twin(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.C = torch.nn.Embedding(V, c.embedding_dim)
            self.H = torch.nn.Linear(k, c.hidden)
            self.U = torch.nn.Linear(c.hidden, V)
            self.W = torch.nn.Linear(k, V, bias=False)

        def forward(self, X: torch.Tensor) -> torch.Tensor:
            x = self.C(X).reshape(len(X), -1)
            return self.U(torch.tanh(self.H(x))) + self.W(x)

    return Twin()


def _batches(n: int, steps: int, seed: int, batch: int) -> list[numpy.ndarray]:
    perm = numpy.random.default_rng(seed).permutation(n)
    return [perm[i * batch:(i + 1) * batch] for i in range(steps)]


def ours(X: numpy.ndarray, y: numpy.ndarray, V: int, seed: int, steps: int) -> dict[str, float]:
    import dlia
    from dlia import optim
    from dlia.models.nnlm import NNLM, NNLMConfig

    c = NNLMConfig(seed=seed)
    model = NNLM(c, V, dlia.Generator(seed))
    opt = optim.Adam(model.parameters(), lr=c.lr)
    batches = _batches(len(y), WARMUP + steps, seed, c.batch_size)
    loss = None
    for i, idx in enumerate(batches):
        if i == WARMUP:
            t0 = time.perf_counter()
        opt.zero_grad()
        loss = model.loss(X[idx], y[idx])
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    return {"train tokens/s": steps * c.batch_size / seconds, "loss": loss.item()}


def theirs(X: numpy.ndarray, y: numpy.ndarray, V: int, seed: int, steps: int) -> dict[str, float]:
    import torch

    import dlia
    from benchmarks.harness import copy_weights
    from dlia.models.nnlm import NNLM, NNLMConfig

    c = NNLMConfig(seed=seed)
    source = NNLM(c, V, dlia.Generator(seed))  # dlia's initial weights, copied
    twin = _twin(source)
    copy_weights(source, twin)
    opt = torch.optim.Adam(twin.parameters(), lr=c.lr)
    batches = _batches(len(y), WARMUP + steps, seed, c.batch_size)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    loss = None
    for i, idx in enumerate(batches):
        if i == WARMUP:
            t0 = time.perf_counter()
        ti = torch.from_numpy(idx)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(twin(Xt[ti]), yt[ti])
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    return {"train tokens/s": steps * c.batch_size / seconds, "loss": loss.item()}


def run(cfg: Config) -> list[Metric]:
    from dlia.models.nnlm import NNLMConfig

    if not CORPUS.is_file():
        return []
    vocab, X, y = data()
    steps = QUICK_STEPS if cfg.quick else STEPS
    mine, peer = interleave(lambda r: ours(X, y, len(vocab), r, steps), lambda r: theirs(X, y, len(vocab), r, steps),
                            cfg.repeats, cfg.settle)
    rows = metrics_from(NAME, mine, peer, [("train tokens/s", "tokens/s", True, Target("ratio", ">=", 0.5))])
    for m in rows:
        m.name = f"enwiki order-5 {m.name}"
        m.notes = {"vocabulary": len(vocab), "training tokens": int(len(y)), "min_count": MIN_COUNT, "steps": steps,
                   "warmup": WARMUP, "batch_size": 256, "embedding_dim": 60, "hidden": 100, "direct": True,
                   "optimizer": f"Adam lr {NNLMConfig().lr:g}", "loss_dlia": [x["loss"] for x in mine],
                   "loss_torch": [x["loss"] for x in peer]}
    return rows
