"""seq2seq with attention on the dates task: dlia's ``Seq2Seq`` against a torch twin, same weights, same batches.

Model (``Seq2SeqConfig(cell="gru", bidirectional=True, attention="bahdanau")``): character
embeddings → a bidirectional GRU encoder over the padded batch → its two final states bridged by
tanh(Linear) into the decoder's initial state → a GRU cell decoder stepped one target character at
a time, with Bahdanau attention (score_j = v·tanh(W_q s + W_k h_j + b), padding masked, the context
concatenated to the input embedding), → Linear to the target vocabulary; teacher forcing, the mean
cross-entropy over the real target tokens (EOS included), Adam (lr 1e-3), the global gradient norm
clipped to 5. Sizes: E 32, H 64 (the CLI's defaults) and E 64, H 256.

The twin, written here in torch: ``nn.Embedding``, ``nn.GRU(bidirectional=True)`` over a packed
sequence (each row runs over its own length, as dlia's encoder, which runs groups of one length),
the same bridge, ``nn.GRUCell`` stepped in Python, the same attention with ``masked_fill``, and
``nn.Linear``; its modules carry dlia's names, so dlia's initial weights load into it by name.

Data: ``dlia.data.dates_dataset`` (the training styles), character ids shifted by
``SPECIALS``, bucketed as a trainer does: the pairs sorted by source length, cut into batches of
64, the batches' order shuffled (seeded). Timed: whole training steps (forward, loss, backward,
clipping, Adam) after one warm-up step; metric: target tokens per second (EOS included, padding
not). The two losses after the timed steps are rows of their own: they must agree to float32
rounding, a check that both ran the same computation.

Decoding: greedy, batched, until every row has emitted EOS (11 steps on this task) — dlia's
``Seq2Seq.greedy_decode`` (which also collects the attention rows) against the twin's loop under
``torch.no_grad()``; sentences per second.
"""

from __future__ import annotations

import time
from typing import Any

import numpy

from benchmarks.harness import Config, Metric, Target, interleave, metrics_from

NAME = "seq2seq"
BATCH, LR, CLIP = 64, 1e-3, 5.0
#: (label, embedding size, hidden size, timed steps, timed steps with --quick, target ratio dlia/torch)
TRAINING = [
    ("E32 H64", 32, 64, 20, 4, 0.5),
    ("E64 H256", 64, 256, 8, 2, 0.5),
]
DECODE_SENTENCES, DECODE_SENTENCES_QUICK, DECODE_TARGET = 512, 128, 0.5


def batches(n: int, seed: int) -> list[tuple[numpy.ndarray, ...]]:
    """``n`` bucketed batches (src, src_len, tgt_in, tgt_out, tgt_len) of ``BATCH`` dates pairs."""
    from dlia.data import dates_dataset
    from dlia.data.dates import source_vocab, target_vocab
    from dlia.models.seq2seq import BOS, EOS, SPECIALS, pad_batch

    sv, tv = source_vocab(), target_vocab()
    pairs = dates_dataset(n * BATCH, seed=seed)
    pairs.sort(key=lambda p: len(p[0]))  # stable: bucketing by source length
    order = numpy.random.default_rng(seed).permutation(n)
    out = []
    for k in order:
        chunk = pairs[k * BATCH:(k + 1) * BATCH]
        src, src_len = pad_batch([(sv.encode(s) + SPECIALS).tolist() for s, _ in chunk])
        tgt = [(tv.encode(t) + SPECIALS).tolist() for _, t in chunk]
        tgt_in, tgt_len = pad_batch([[BOS] + t for t in tgt])
        tgt_out, _ = pad_batch([t + [EOS] for t in tgt])
        out.append((src, src_len, tgt_in, tgt_out, tgt_len))
    return out


def vocab_sizes() -> tuple[int, int]:
    from dlia.data.dates import source_vocab, target_vocab
    from dlia.models.seq2seq import SPECIALS

    return len(source_vocab()) + SPECIALS, len(target_vocab()) + SPECIALS


def dlia_model(E: int, H: int, seed: int) -> Any:
    from dlia.models.seq2seq import Seq2Seq, Seq2SeqConfig

    cfg = Seq2SeqConfig(cell="gru", embedding_size=E, hidden_size=H, bidirectional=True, attention="bahdanau", seed=seed)
    return Seq2Seq(cfg, *vocab_sizes())


def torch_twin(ours: Any) -> Any:
    """The torch twin of a ``Seq2Seq`` (GRU, bidirectional, Bahdanau, one layer), holding its weights."""
    import torch
    from torch import nn

    c = ours.config
    E, H = c.embedding_size, c.hidden_size

    class Twin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.src_embedding = nn.Embedding(ours.src_vocab_size, E, padding_idx=0)
            self.encoder = nn.GRU(E, H, batch_first=True, bidirectional=True)
            self.bridge = nn.Linear(2 * H, H)
            self.tgt_embedding = nn.Embedding(ours.tgt_vocab_size, E, padding_idx=0)
            self.decoder = nn.ModuleList([nn.GRUCell(E + 2 * H, H)])
            self.att_query = nn.Linear(H, H, bias=False)
            self.att_key = nn.Linear(2 * H, H)
            self.att_v = nn.Linear(H, 1, bias=False)
            self.out = nn.Linear(H, ours.tgt_vocab_size)

        def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, ...]:
            """(outputs (B, S, 2H), zero at padding; keys (B, S, H); mask (B, S); initial state (B, H))."""
            packed = nn.utils.rnn.pack_padded_sequence(self.src_embedding(src), src_len, batch_first=True,
                                                       enforce_sorted=False)
            out, h_n = self.encoder(packed)
            outputs, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
            mask = torch.arange(src.shape[1])[None, :] < src_len[:, None]
            state = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=1)))
            return outputs, self.att_key(outputs), mask, state

        def step(self, prev: torch.Tensor, h: torch.Tensor, outputs: torch.Tensor, keys: torch.Tensor,
                 mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            scores = self.att_v(torch.tanh(keys + self.att_query(h)[:, None, :]))[:, :, 0]
            weights = torch.softmax(scores.masked_fill(~mask, -1e30), dim=1)
            context = torch.bmm(weights[:, None, :], outputs)[:, 0]
            h = self.decoder[0](torch.cat([self.tgt_embedding(prev), context], dim=1), h)
            return self.out(h), h

        def loss(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor,
                 tgt_len: torch.Tensor) -> torch.Tensor:
            outputs, keys, mask, h = self.encode(src, src_len)
            logits = []
            for t in range(tgt_in.shape[1]):
                lg, h = self.step(tgt_in[:, t], h, outputs, keys, mask)
                logits.append(lg)
            B, T = tgt_out.shape
            target = tgt_out.masked_fill(torch.arange(T)[None, :] >= tgt_len[:, None], -100)
            return nn.functional.cross_entropy(torch.stack(logits, dim=1).reshape(B * T, -1), target.reshape(-1),
                                               ignore_index=-100)

    twin = Twin()
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})  # strict
    return twin


def _timed(step: Any, data: list[Any]) -> dict[str, float]:
    """``step`` on the first batch (warm-up), then timed on the others: target tokens/s and the last loss."""
    step(*data[0])
    t0 = time.perf_counter()
    for b in data[1:]:
        loss = step(*b)
    dt = time.perf_counter() - t0
    return {"train tokens/s": sum(int(b[4].sum()) for b in data[1:]) / dt, "loss": loss}


def train_dlia(model: Any, data: list[tuple[numpy.ndarray, ...]]) -> dict[str, float]:
    from dlia import optim

    opt = optim.Adam(model.parameters(), lr=LR)
    params = list(model.parameters())

    def step(*batch: numpy.ndarray) -> float:
        opt.zero_grad()
        loss = model.loss(*batch)
        loss.backward()
        optim.clip_grad_norm_(params, CLIP)
        opt.step()
        return loss.item()

    return _timed(step, data)


def train_torch(model: Any, data: list[tuple[numpy.ndarray, ...]]) -> dict[str, float]:
    """``train_dlia`` in torch, step for step."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=LR)
    params = list(model.parameters())

    def step(*batch: torch.Tensor) -> float:
        opt.zero_grad()
        loss = model.loss(*batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        return loss.item()

    return _timed(step, [tuple(torch.from_numpy(a) for a in b) for b in data])


def decode_dlia(model: Any, data: list[tuple[numpy.ndarray, ...]]) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = [s for src, src_len, *_ in data for s in model.greedy_decode(src, src_len, max_len=20).sequences]
    return {"greedy sentences/s": len(out) / (time.perf_counter() - t0), "sequences": out}


def decode_torch(model: Any, data: list[tuple[numpy.ndarray, ...]]) -> dict[str, Any]:
    """Batched greedy decoding in torch, as ``Seq2Seq.greedy_decode`` (PAD and BOS never emitted)."""
    import torch

    from dlia.models.seq2seq import BOS, EOS, PAD

    t0 = time.perf_counter()
    out = []
    with torch.no_grad():
        for src, src_len, *_ in data:
            outputs, keys, mask, h = model.encode(torch.from_numpy(src), torch.from_numpy(src_len))
            prev = torch.full((len(src),), BOS, dtype=torch.int64)
            done = numpy.zeros(len(src), dtype=bool)
            seqs: list[list[int]] = [[] for _ in range(len(src))]
            for _ in range(20):
                logits, h = model.step(prev, h, outputs, keys, mask)
                logits[:, [PAD, BOS]] = -torch.inf
                prev = logits.argmax(dim=1)
                best = prev.numpy()  # the bookkeeping in NumPy, as dlia's: indexing a torch tensor per row is slow
                for b in numpy.flatnonzero(~done):
                    if best[b] == EOS:
                        done[b] = True
                    else:
                        seqs[b].append(int(best[b]))
                if done.all():
                    break
            out += seqs
    return {"greedy sentences/s": len(out) / (time.perf_counter() - t0), "sequences": out}


def run(cfg: Config) -> list[Metric]:
    rows: list[Metric] = []
    for label, E, H, steps, quick_steps, target in TRAINING:
        n = (quick_steps if cfg.quick else steps) + 1  # + the warm-up step
        data = batches(n, 0)

        def ours(r: int, E: int = E, H: int = H, data: list = data) -> dict[str, float]:
            return train_dlia(dlia_model(E, H, r), data)

        def theirs(r: int, E: int = E, H: int = H, data: list = data) -> dict[str, float]:
            return train_torch(torch_twin(dlia_model(E, H, r)), data)

        ours(0, data=data[:2]), theirs(0, data=data[:2])  # warm-up: first calls, allocators, oneDNN's choices
        a, b = interleave(ours, theirs, cfg.repeats, cfg.settle)
        gap = max(abs(o["loss"] - t["loss"]) for o, t in zip(a, b))
        for m in metrics_from(NAME, a, b, [("train tokens/s", "tokens/s", True, Target("ratio", ">=", target)),
                                           ("loss", "nats/token", False, None)]):
            m.name = f"{label} {m.name}" if m.name != "loss" else f"{label} loss after {n} steps"
            m.notes = {"cell": "gru", "bidirectional": True, "attention": "bahdanau", "embedding": E, "hidden": H,
                       "batch": BATCH, "timed_steps": n - 1, "optimizer": f"Adam lr {LR:g}", "clip_grad_norm": CLIP,
                       "max_loss_difference": gap}
            rows.append(m)

    # decoding: the small model, trained a few steps so that its outputs are not all one token
    count = DECODE_SENTENCES_QUICK if cfg.quick else DECODE_SENTENCES
    data = batches(count // BATCH, 1)
    label, E, H = TRAINING[0][:3]
    model = dlia_model(E, H, 0)
    train_dlia(model, batches(11, 2))
    twin = torch_twin(model)
    a, b = interleave(lambda r: decode_dlia(model, data), lambda r: decode_torch(twin, data), cfg.repeats, cfg.settle)
    same = all(x["sequences"] == y["sequences"] for x, y in zip(a, b))
    for m in metrics_from(NAME, a, b, [("greedy sentences/s", "sentences/s", True, Target("ratio", ">=", DECODE_TARGET))]):
        m.name = f"{label} {m.name}"
        m.notes = {"sentences": count, "batch": BATCH, "max_len": 20, "same_outputs": same}
        rows.append(m)
    return rows
