"""char-rnn on tiny-shakespeare: dlia's sequence layers against torch's fused ``nn.LSTM``/``nn.GRU``.

Training, karpathy/char-rnn's recipe (that of ``dlia char-rnn train``): ``Embedding(V, H)`` → a
2-layer LSTM (or GRU) of size H → ``Linear(H, V)``, cross-entropy over every position, Adam 2e-3,
the global gradient norm clipped to 5, batches of 50 streams × 50 characters laid out as char-rnn
does (row b of batch k+1 continues row b of batch k), the hidden state carried from batch to batch
and detached (truncated backpropagation through time). Both run batch-first, (B, T, ·), as
``dlia.models.charrnn.CharRNN`` (the model ``dlia char-rnn train`` trains) and char-rnn's batches
are laid out. Metric: training characters per second, at H = 128 and 512 (LSTM) and 128 (GRU).

Both start from the same weights (torch's initialisation, copied into dlia by name, since the
layers use torch's parameter names) and see the same batches, so after the same steps their losses
must agree to float32 rounding: the "loss after N steps" rows print both, a check that the two ran
the same computation.

Sampling: a 2×128 LSTM feeds a short prime, then generates characters one at a time (softmax at
temperature 1, one draw per character): torch's layers under ``torch.no_grad()`` against
``dlia.models.charrnn.sample``, what ``dlia char-rnn sample`` runs, on a ``CharRNN`` holding the
same weights; characters per second.
"""

from __future__ import annotations

import time
from typing import Any

import numpy

from benchmarks.harness import REPO_ROOT, Config, Metric, Target, interleave, metrics_from

NAME = "rnn"
TEXT = REPO_ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
BATCH, SEQ, LAYERS, LR, CLIP = 50, 50, 2, 2e-3, 5.0
PRIME = "ROMEO:\n"

#: (label, cell, hidden size, timed steps, timed steps with --quick, target ratio dlia/torch)
TRAINING = [
    ("lstm 128", "LSTM", 128, 20, 3, 1.0),
    ("lstm 512", "LSTM", 512, 4, 1, 0.85),
    ("gru 128", "GRU", 128, 15, 3, 1.0),
]
SAMPLE_HIDDEN, SAMPLE_CHARS, SAMPLE_CHARS_QUICK, SAMPLE_TARGET = 128, 400, 50, 5.0


def _codes(text: str) -> numpy.ndarray:
    return numpy.frombuffer(text.encode("utf-32-le"), numpy.uint32)


def load_ids() -> tuple[numpy.ndarray, numpy.ndarray]:
    """tiny-shakespeare (``../shared/data``, else the copy shipped with dlia) as int64 character
    ids, and the vocabulary: its distinct code points in sorted order (char-rnn's), id = rank."""
    from dlia.data import tinyshakespeare

    chars, ids = numpy.unique(_codes(tinyshakespeare(TEXT if TEXT.is_file() else None)), return_inverse=True)
    return ids.astype(numpy.int64), chars


def batches(ids: numpy.ndarray, n: int) -> list[tuple[numpy.ndarray, numpy.ndarray]]:
    """The first ``n`` (inputs, targets) batches, each (BATCH, SEQ) int64: the text cut into BATCH
    contiguous streams, batch k holding characters [k·SEQ, (k+1)·SEQ) of every stream, the targets
    one character further on."""
    per_stream = (len(ids) - 1) // BATCH
    x = ids[:BATCH * per_stream].reshape(BATCH, per_stream)
    y = ids[1:BATCH * per_stream + 1].reshape(BATCH, per_stream)
    return [(numpy.ascontiguousarray(x[:, k * SEQ:(k + 1) * SEQ]), numpy.ascontiguousarray(y[:, k * SEQ:(k + 1) * SEQ]))
            for k in range(n)]


def torch_model(cell: str, vocab: int, hidden: int, seed: int) -> Any:
    """A torch module with ``embed``, ``rnn`` (batch-first) and ``head``, initialised under
    ``torch.manual_seed(seed)``."""
    import torch

    torch.manual_seed(seed)
    theirs = torch.nn.Module()
    theirs.embed = torch.nn.Embedding(vocab, hidden)
    theirs.rnn = getattr(torch.nn, cell)(hidden, hidden, LAYERS, batch_first=True)
    theirs.head = torch.nn.Linear(hidden, vocab)
    return theirs


def models(cell: str, vocab: int, hidden: int, seed: int) -> tuple[Any, Any]:
    """(dlia model, torch model), each a module with ``embed``, ``rnn`` and ``head``, holding the
    same weights: torch's initialisation (``torch_model``), copied into dlia's layers by name."""
    import dlia

    theirs = torch_model(cell, vocab, hidden, seed)
    ours = dlia.nn.Module()
    ours.embed = dlia.nn.Embedding(vocab, hidden)
    ours.rnn = getattr(dlia.nn, cell)(hidden, hidden, LAYERS, batch_first=True)
    ours.head = dlia.nn.Linear(hidden, vocab)
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})  # strict: same names
    return ours, theirs


def _detach(state: Any) -> Any:
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def train_dlia(model: Any, data: list[tuple[numpy.ndarray, numpy.ndarray]], vocab: int, cell: str) -> dict[str, float]:
    """One warm-up step on ``data[0]``, then the rest timed; chars/s and the last step's loss. Each
    step runs under the threading ``dlia char-rnn train`` gives a ``cell`` model
    (``dlia.models.charrnn.step_threads``: an LSTM's products on dlia's threads)."""
    import dlia
    from dlia import optim
    from dlia.models.charrnn import step_threads

    opt = optim.Adam(model.parameters(), lr=LR)
    params = list(model.parameters())
    state = None

    def step(x: numpy.ndarray, y: numpy.ndarray) -> float:
        nonlocal state
        opt.zero_grad()
        # = model.rnn(model.embed(x), state), as CharRNN.forward runs it: layer 0 projects the
        # embedding table instead of every embedded character (nn.LSTM.forward_embedded)
        with step_threads(cell.lower()):
            out, state = model.rnn.forward_embedded(model.embed.weight, x, state)
            loss = dlia.cross_entropy(model.head(out).reshape(-1, vocab), y.reshape(-1))
            loss.backward()
        optim.clip_grad_norm_(params, CLIP)
        opt.step()
        state = _detach(state)  # truncated BPTT: the next batch starts from this state, without its history
        return loss.item()

    return _timed(step, data)


def _timed(step: Any, batches: list[Any]) -> dict[str, float]:
    """Run ``step`` on the first batch (warm-up), then time it on the others: chars/s and the last loss."""
    step(*batches[0])
    t0 = time.perf_counter()
    for x, y in batches[1:]:
        loss = step(x, y)
    dt = time.perf_counter() - t0
    return {"train chars/s": (len(batches) - 1) * BATCH * SEQ / dt, "loss": loss}


def train_torch(model: Any, data: list[tuple[numpy.ndarray, numpy.ndarray]], vocab: int) -> dict[str, float]:
    """``train_dlia`` in torch, step for step."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=LR)
    params = list(model.parameters())
    tensors = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]
    state = None

    def step(x: Any, y: Any) -> float:
        nonlocal state
        opt.zero_grad()
        out, state = model.rnn(model.embed(x), state)
        loss = torch.nn.functional.cross_entropy(model.head(out).reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        state = _detach(state)
        return loss.item()

    return _timed(step, tensors)


def sampler_models(chars: numpy.ndarray, seed: int) -> tuple[Any, Any, Any]:
    """(dlia ``CharRNN``, its ``CharVocab``, torch model): a 2×``SAMPLE_HIDDEN`` LSTM with torch's
    initial weights in both (``embed``/``head`` are the CharRNN's ``embedding``/``decoder``)."""
    from dlia.models.charrnn import CharRNN, CharRNNConfig
    from dlia.text import CharVocab

    theirs = torch_model("LSTM", len(chars), SAMPLE_HIDDEN, seed)
    ours = CharRNN(CharRNNConfig(model="lstm", rnn_size=SAMPLE_HIDDEN, num_layers=LAYERS), len(chars))
    rename = {"embed": "embedding", "rnn": "rnn", "head": "decoder"}
    ours.load_state_dict({rename[k.split(".", 1)[0]] + "." + k.split(".", 1)[1]: v.detach().numpy().copy()
                          for k, v in theirs.state_dict().items()})  # strict: every name matched
    return ours, CharVocab(chr(c) for c in chars), theirs


def sample_dlia(model: Any, vocab: Any, length: int, seed: int) -> dict[str, float]:
    """``dlia.models.charrnn.sample``: feed ``PRIME``, then draw ``length`` characters one at a
    time; chars/s (the prime and the sampler's set-up included in the time, as a user waits for
    them too)."""
    from dlia.models.charrnn import sample

    t0 = time.perf_counter()
    n = sum(1 for _ in sample(model, vocab, PRIME, length, temperature=1.0, seed=seed))
    return {"sample chars/s": n / (time.perf_counter() - t0)}


def sample_torch(model: Any, prime: numpy.ndarray, length: int, seed: int) -> dict[str, float]:
    """``sample_dlia`` in torch (``prime`` as ids): ``torch.multinomial`` draws each character."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    with torch.no_grad():
        out, state = model.rnn(model.embed(torch.from_numpy(prime[None])))
        logits = model.head(out[:, -1])
        for _ in range(length):
            idx = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=gen)  # (1, 1): B = 1, T = 1
            out, state = model.rnn(model.embed(idx), state)
            logits = model.head(out[:, 0])
    return {"sample chars/s": length / (time.perf_counter() - t0)}


def run(cfg: Config) -> list[Metric]:
    ids, chars = load_ids()
    vocab = len(chars)
    rows: list[Metric] = []
    for label, cell, hidden, steps, quick_steps, target in TRAINING:
        n = (quick_steps if cfg.quick else steps) + 1  # + the warm-up step
        data = batches(ids, n)

        def ours(r: int, cell: str = cell, hidden: int = hidden, data: list = data) -> dict[str, float]:
            return train_dlia(models(cell, vocab, hidden, r)[0], data, vocab, cell)

        def theirs(r: int, cell: str = cell, hidden: int = hidden, data: list = data) -> dict[str, float]:
            return train_torch(models(cell, vocab, hidden, r)[1], data, vocab)

        ours(0, data=data[:2]), theirs(0, data=data[:2])  # warm-up: first calls, allocator, oneDNN's kernel choice
        a, b = interleave(ours, theirs, cfg.repeats, cfg.settle)
        gap = max(abs(o["loss"] - t["loss"]) for o, t in zip(a, b))
        for m in metrics_from(NAME, a, b, [("train chars/s", "chars/s", True, Target("ratio", ">=", target)),
                                           ("loss", "nats/char", False, None)]):
            m.name = f"{label} {m.name}" if m.name != "loss" else f"{label} loss after {n} steps"
            m.notes = {"cell": cell, "hidden": hidden, "layers": LAYERS, "batch": BATCH, "seq": SEQ, "timed_steps": n - 1,
                       "vocab": vocab, "optimizer": f"Adam lr {LR}", "clip_grad_norm": CLIP, "max_loss_difference": gap}
            rows.append(m)

    length = SAMPLE_CHARS_QUICK if cfg.quick else SAMPLE_CHARS
    prime = numpy.searchsorted(chars, _codes(PRIME)).astype(numpy.int64)
    ours, vocab_, theirs = sampler_models(chars, 0)
    sample_dlia(ours, vocab_, 5, 0), sample_torch(theirs, prime, 5, 0)  # warm-up
    a, b = interleave(lambda r: sample_dlia(*sampler_models(chars, r)[:2], length, r),
                      lambda r: sample_torch(sampler_models(chars, r)[2], prime, length, r),
                      cfg.repeats, cfg.settle)
    for m in metrics_from(NAME, a, b, [("sample chars/s", "chars/s", True, Target("ratio", ">=", SAMPLE_TARGET))]):
        m.name = f"lstm {SAMPLE_HIDDEN} {m.name}"
        m.notes = {"hidden": SAMPLE_HIDDEN, "layers": LAYERS, "chars": length, "prime": PRIME, "temperature": 1.0}
        rows.append(m)
    return rows
