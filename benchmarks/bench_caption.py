"""Captioning: a training step of dlia's ``Captioner`` against an equivalent torch model.

The model is that of ``dlia caption train`` with its default sizes (``CaptionConfig()``): pictures
of 48×48 through four blocks of conv 3×3 → BatchNorm → ReLU → max-pool 2 (16, 32, 32, 64 filters),
the 3×3×64 map flattened through a Linear into a 64-wide image embedding that is the GRU's first
input, then the embedded BOS and words, a GRU of 256 that attends (Bahdanau) over the 9 cells of the
map at every step, a Linear to the 21 words; cross-entropy over the real tokens (padding masked),
Adam 3e-3, the global gradient norm clipped to 5. The torch twin has the
same layers under the same names and starts from dlia's weights (copied by name); both see the same
batches of 32 generated scenes (1-3 shapes, sentences of 8-26 words), so their losses after the
same steps must agree to float32 rounding: the "loss after N steps" row prints both.

Metric: milliseconds per training step (forward, backward, clipping, Adam).
"""

from __future__ import annotations

import time
from typing import Any

import numpy

from benchmarks.harness import Config, Metric, Target, interleave, metrics_from

NAME = "caption"
#: timed steps per repeat (and with --quick); the first step of each repeat is a warm-up
STEPS, QUICK_STEPS = 20, 3
TARGET = 0.8  # dlia step time within 1.25× of torch's


def data(n: int) -> tuple[Any, numpy.ndarray, list[list[int]]]:
    """(config, prepared pictures, captions) of ``n`` batches of the default config's scenes."""
    from dlia.data.shapes import scenes_dataset
    from dlia.models.caption import SCENE_SIZE, CaptionConfig, encode, prepare_images

    config = CaptionConfig()
    scenes = scenes_dataset(n * config.batch_size, seed=0, size=SCENE_SIZE)
    return config, prepare_images([s.image for s in scenes], config.image_size), [encode(s.sentence) for s in scenes]


def models(config: Any, seed: int) -> tuple[Any, Any]:
    """(dlia ``Captioner``, torch twin) holding the same weights (dlia's initialisation of ``seed``)."""
    from dlia.models.caption import Captioner

    ours = Captioner(type(config).from_dict({**config.to_dict(), "seed": seed}))
    return ours, torch_twin(ours)


def torch_twin(ours: Any) -> Any:
    """A torch module with the layers of the ``Captioner`` ``ours`` under the same names and dtype,
    holding a copy of its weights (``torch_logits`` runs it); the tests check gradients with it too."""
    import torch

    from dlia.models.caption import VOCAB

    config = ours.config
    layers, previous = [], 3
    for c in config.channels:
        layers += [torch.nn.Conv2d(previous, c, 3, padding=1), torch.nn.BatchNorm2d(c), torch.nn.ReLU(),
                   torch.nn.MaxPool2d(2)]
        previous = c
    E, H, C = config.embedding_size, config.hidden_size, previous
    grid = config.image_size // 2 ** len(config.channels)
    theirs = torch.nn.Module()
    theirs.encoder = torch.nn.Module()
    theirs.encoder.blocks = torch.nn.Sequential(*layers)
    theirs.encoder.head = torch.nn.Linear(C * grid * grid, E)
    theirs.embedding = torch.nn.Embedding(len(VOCAB), E, padding_idx=0)
    attends = config.attention == "bahdanau"
    theirs.rnn = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[config.cell](E + C if attends else E, H, batch_first=True)
    theirs.out = torch.nn.Linear(H, len(VOCAB))
    if attends:
        theirs.position = torch.nn.Parameter(torch.zeros(grid * grid, C))
        theirs.att_key = torch.nn.Linear(C, H)
        theirs.att_query = torch.nn.Linear(H, H, bias=False)
        theirs.att_v = torch.nn.Linear(H, 1, bias=False)
    weights = {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    theirs.to(next(iter(weights.values())).dtype)
    theirs.load_state_dict(weights)  # strict: the same names and shapes
    return theirs


def torch_logits(model: Any, config: Any, x: Any, tin: Any) -> Any:
    """The twin's teacher-forced logits (N, T, V) for pictures ``x`` and decoder inputs ``tin`` (torch
    tensors): the image embedding first, then the words; with attention, every step's cell reads
    [input; context] where the context attends over the map's cells (plus their position vectors)
    with the previous state."""
    import torch

    maps = model.encoder.blocks(x)
    img = model.encoder.head(maps.flatten(1))
    words = model.embedding(tin)
    if config.attention == "none":
        out, _ = model.rnn(torch.cat([img[:, None], words], dim=1))
        return model.out(out[:, 1:])
    N, C = maps.shape[:2]
    regions = maps.reshape(N, C, -1).transpose(1, 2) + model.position
    keys = model.att_key(regions)
    h = torch.zeros(1, N, config.hidden_size, dtype=x.dtype)
    state = (h, torch.zeros_like(h)) if config.cell == "lstm" else h
    outs = []
    for t in range(tin.shape[1] + 1):
        top = state[0] if config.cell == "lstm" else state
        e = model.att_v(torch.tanh(keys + model.att_query(top[0])[:, None])).squeeze(2)
        context = (torch.softmax(e, dim=1)[:, :, None] * regions).sum(1)
        step_in = img if t == 0 else words[:, t - 1]
        out, state = model.rnn(torch.cat([step_in, context], dim=1)[:, None], state)
        if t > 0:
            outs.append(out[:, 0])
    return model.out(torch.stack(outs, dim=1))


def _timed(step: Any, n: int) -> dict[str, float]:
    step(0)  # warm-up
    t0 = time.perf_counter()
    for k in range(1, n):
        loss = step(k)
    return {"step ms": 1000 * (time.perf_counter() - t0) / (n - 1), "loss": loss}


def train_dlia(model: Any, config: Any, images: numpy.ndarray, captions: list[list[int]], n: int) -> dict[str, float]:
    from dlia import optim

    opt = optim.Adam(model.parameters(), lr=config.learning_rate)
    params = list(model.parameters())
    B = config.batch_size

    def step(k: int) -> float:
        opt.zero_grad()
        loss = model.loss(images[k * B:(k + 1) * B], captions[k * B:(k + 1) * B])
        loss.backward()
        optim.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        return loss.item()

    return _timed(step, n)


def train_torch(model: Any, config: Any, images: numpy.ndarray, captions: list[list[int]], n: int) -> dict[str, float]:
    """``train_dlia`` in torch, step for step (the same teacher-forced, masked loss)."""
    import torch

    from dlia.models.caption import VOCAB, caption_batch

    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    params = list(model.parameters())
    B = config.batch_size
    batches = []
    for k in range(n):
        tin, tout, lengths = caption_batch(captions[k * B:(k + 1) * B])
        target = numpy.where(numpy.arange(tin.shape[1])[None, :] < lengths[:, None], tout, -100)
        batches.append((torch.from_numpy(images[k * B:(k + 1) * B]), torch.from_numpy(tin), torch.from_numpy(target)))

    def step(k: int) -> float:
        x, tin, target = batches[k]
        opt.zero_grad()
        logits = torch_logits(model, config, x, tin)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(VOCAB)), target.reshape(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        return loss.item()

    return _timed(step, n)


def run(cfg: Config) -> list[Metric]:
    n = (QUICK_STEPS if cfg.quick else STEPS) + 1
    config, images, captions = data(n)

    def ours(r: int) -> dict[str, float]:
        return train_dlia(models(config, r)[0], config, images, captions, n)

    def theirs(r: int) -> dict[str, float]:
        return train_torch(models(config, r)[1], config, images, captions, n)

    ours(0), theirs(0)  # warm-up: first calls, allocator, oneDNN's kernel choice
    a, b = interleave(ours, theirs, cfg.repeats, cfg.settle)
    gap = max(abs(o["loss"] - t["loss"]) for o, t in zip(a, b, strict=True))
    rows = metrics_from(NAME, a, b, [("step ms", "ms", False, Target("ratio", ">=", TARGET)),
                                     ("loss", "nats/word", False, None)])
    for m in rows:
        m.name = "train step" if m.name == "step ms" else f"loss after {n} steps"
        m.notes = {"config": config.to_dict(), "timed_steps": n - 1, "max_loss_difference": gap}
    return rows
