"""Convolutional networks on the 8×8 digits: a small CNN, and a fully convolutional net that
classifies digits pasted anywhere on canvases of any size (the lecture's reason for conv nets).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy

import dlia
from dlia import nn, optim
from dlia.io.onnx import GraphBuilder, Value, register_converter


@dataclass
class CNNConfig:
    """Hyper-parameters of ``dlia cnn train`` (defaults reach ≥ 98.5 % on the 80/20 split)."""

    channels: tuple[int, int] = (16, 32)  # filters in the two conv layers (3×3, 'same' padding)
    hidden: int = 64  # units of the fully connected layer after 2×2 max pooling
    dropout: float = 0.25  # before the last layer
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3  # Adam, cosine-annealed to 0 over the epochs
    weight_decay: float = 1e-4  # AdamW's decoupled decay
    shift: int = 1  # random translation by up to this many pixels (augmentation)
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CNNConfig:
        """Build from a dict (e.g. a checkpoint's config); unknown keys are rejected."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown CNN config keys: {', '.join(unknown)}")
        v = dict(values)
        if "channels" in v:
            c = v["channels"]
            if not (isinstance(c, (list, tuple)) and len(c) == 2 and all(_positive_int(n) for n in c)):
                raise ValueError(f"CNN config: channels must be two positive integers, got {c!r}")
            v["channels"] = tuple(c)
        for name, (kind, low, high) in _CONFIG_RANGES.items():
            x = v.get(name, getattr(cls, name))
            ok = (isinstance(x, int) if kind is int else _finite(x)) and not isinstance(x, bool) and low <= x < high
            if not ok:
                raise ValueError(f"CNN config: {name} must be {'an integer' if kind is int else 'a number'} "
                                 f"in [{low}, {high}), got {x!r}")
        return cls(**v)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


#: what a config read from a file may hold besides channels: (type, lowest, above the highest)
_CONFIG_RANGES: dict[str, tuple[type, float, float]] = {
    "hidden": (int, 1, math.inf), "dropout": (float, 0, 1), "epochs": (int, 1, math.inf),
    "batch_size": (int, 1, math.inf), "lr": (float, 1e-300, math.inf), "weight_decay": (float, 0, math.inf),
    "shift": (int, 0, math.inf), "seed": (int, 0, math.inf),
}


def _positive_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and bool(numpy.isfinite(x))


class DigitsCNN(nn.Module):
    """conv3×3(c1) → ReLU → conv3×3(c2) → ReLU → maxpool 2 → dense(hidden) → ReLU → dropout → dense(10).

    Input (N, 1, 8, 8) with values in [0, 1]; output logits (N, 10).
    """

    def __init__(self, config: CNNConfig | None = None, generator: dlia.Generator | None = None) -> None:
        super().__init__()
        c = config or CNNConfig()
        gen = generator or dlia.Generator(c.seed)
        c1, c2 = c.channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1, generator=gen)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, generator=gen)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(c2 * 16, c.hidden, generator=gen)
        self.drop = nn.Dropout(c.dropout, generator=gen)
        self.fc2 = nn.Linear(c.hidden, 10, generator=gen)

    def features(self, x: dlia.Tensor) -> list[dlia.Tensor]:
        """Feature maps after each conv layer (for pictures)."""
        a = self.conv1(x).relu()
        b = self.conv2(a).relu()
        return [a, b]

    def forward(self, x: dlia.Tensor) -> dlia.Tensor:
        h = self.pool(self.conv2(self.conv1(x).relu()).relu())
        h = self.fc1(h.flatten(1)).relu()
        return self.fc2(self.drop(h))


class DigitsFCN(nn.Module):
    """Fully convolutional: conv → conv → pool → conv → global max pool → linear classifier (a 1×1
    convolution on the pooled map). No layer depends on the image size, so it takes canvases of any
    size ≥ 8×8. Max rather than average pooling: an average would shrink as the empty canvas grows."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), generator: dlia.Generator | None = None) -> None:
        super().__init__()
        gen = generator or dlia.Generator(0)
        c1, c2, c3 = channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1, generator=gen)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, generator=gen)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1, generator=gen)
        self.pool_all = nn.GlobalMaxPool2d()
        self.classify = nn.Linear(c3, 10, generator=gen)

    def forward(self, x: dlia.Tensor) -> dlia.Tensor:
        h = self.pool(self.conv2(self.conv1(x).relu()).relu())
        h = self.conv3(h).relu()
        return self.classify(self.pool_all(h))


# -- ONNX export (dlia.io.onnx): converters that mirror the two forwards ----------------------------
@register_converter(DigitsCNN)
def _digits_cnn_to_onnx(b: GraphBuilder, m: DigitsCNN, x: Value) -> Value:
    h = b.relu(b.module(m.conv2, b.relu(b.module(m.conv1, x))))
    h = b.flatten(b.module(m.pool, h), 1)
    h = b.relu(b.module(m.fc1, h))
    return b.module(m.fc2, b.module(m.drop, h))


@register_converter(DigitsFCN)
def _digits_fcn_to_onnx(b: GraphBuilder, m: DigitsFCN, x: Value) -> Value:
    h = b.module(m.pool, b.relu(b.module(m.conv2, b.relu(b.module(m.conv1, x)))))
    h = b.relu(b.module(m.conv3, h))
    return b.module(m.classify, b.module(m.pool_all, h))


def random_shift(images: numpy.ndarray, max_shift: int, rng: numpy.random.Generator) -> numpy.ndarray:
    """Translate each (N, 1, H, W) image by up to ``max_shift`` pixels (zero fill)."""
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    pad = numpy.pad(images, ((0, 0), (0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    dy = rng.integers(0, 2 * max_shift + 1, n)
    dx = rng.integers(0, 2 * max_shift + 1, n)
    rows = dy[:, None] + numpy.arange(h)[None, :]
    cols = dx[:, None] + numpy.arange(w)[None, :]
    return pad[numpy.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]][:, None]


def paste(images: numpy.ndarray, size: int, rng: numpy.random.Generator) -> numpy.ndarray:
    """Paste each (N, 8, 8) digit at a random position of a blank size×size canvas → (N, 1, size, size)."""
    n, h, w = images.shape
    if size < max(h, w):
        raise ValueError(f"canvas {size}×{size} is smaller than the {h}×{w} digits")
    out = numpy.zeros((n, 1, size, size), dtype=images.dtype)
    ys = rng.integers(0, size - h + 1, n)
    xs = rng.integers(0, size - w + 1, n)
    for i in range(n):
        out[i, 0, ys[i]:ys[i] + h, xs[i]:xs[i] + w] = images[i]
    return out


def _device_of(model: nn.Module) -> dlia.Device:
    return next((p.device for p in model.parameters()), dlia.Device("cpu"))


def evaluate(model: nn.Module, x: numpy.ndarray, y: numpy.ndarray, batch_size: int = 512,
             device: str | dlia.Device | None = None) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in eval mode, without recording a graph; batches are sent to
    ``device`` (default: that of the model's parameters)."""
    device = _device_of(model) if device is None else device
    model.eval()
    total, correct = 0.0, 0
    with dlia.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(dlia.tensor(x[i:i + batch_size], device=device))
            total += dlia.cross_entropy(logits, y[i:i + batch_size], reduction="sum").item()
            correct += int((logits.numpy().argmax(1) == y[i:i + batch_size]).sum())
    model.train()
    return total / len(x), correct / len(x)


def train_epoch(model: nn.Module, opt: optim.Optimizer, x: numpy.ndarray, y: numpy.ndarray, batch_size: int,
                rng: numpy.random.Generator, transform: Callable[[numpy.ndarray], numpy.ndarray] | None = None,
                on_batch: Callable[[int, float], None] | None = None, device: str | dlia.Device | None = None) -> float:
    """One pass over (x, y) in a shuffled order; returns the mean training loss. Batches are sent to
    ``device`` (default: that of the model's parameters); the data stays on the CPU."""
    device = _device_of(model) if device is None else device
    model.train()
    order = rng.permutation(len(x))
    total = 0.0
    for k, i in enumerate(range(0, len(x), batch_size)):
        idx = order[i:i + batch_size]
        xb = x[idx] if transform is None else transform(x[idx])
        opt.zero_grad()
        loss = dlia.cross_entropy(model(dlia.tensor(xb, device=device)), y[idx])
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        if on_batch is not None:
            on_batch(k, loss.item())
    return total / len(x)
