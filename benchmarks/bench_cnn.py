"""The digits CNN (conv16 → conv32 → maxpool → dense64 → dense10, no dropout), Adam lr 1e-3,
batch 32: seconds per epoch and test accuracy, ours vs torch, same initial weights, same batches.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.bench_mlp import BATCH, load, train_torch
from benchmarks.harness import Config, Metric, Target, copy_weights, interleave, metrics_from

NAME = "cnn"


def _models(seed: int) -> tuple[Any, Any]:
    import torch

    import dlia
    from dlia.models.cnn import CNNConfig, DigitsCNN

    ours = DigitsCNN(CNNConfig(dropout=0.0), dlia.Generator(seed))
    tn = torch.nn
    theirs = tn.Sequential(tn.Conv2d(1, 16, 3, padding=1), tn.ReLU(), tn.Conv2d(16, 32, 3, padding=1), tn.ReLU(),
                           tn.MaxPool2d(2), tn.Flatten(), tn.Linear(512, 64), tn.ReLU(), tn.Linear(64, 10))
    copy_weights(ours, theirs)
    return ours, theirs


def run(cfg: Config) -> list[Metric]:
    import dlia
    from dlia import optim

    x_tr, x_te, y_tr, y_te = load(cfg)
    x_tr, x_te = x_tr.reshape(-1, 1, 8, 8), x_te.reshape(-1, 1, 8, 8)
    n = len(x_tr)
    epochs = max(1, cfg.mlp_epochs // 3)

    def ours(r: int, epochs: int = epochs) -> dict[str, float]:
        model, _ = _models(r)
        opt = optim.Adam(model.parameters(), lr=1e-3)
        order_gen = dlia.Generator(1000 + r)
        t0 = time.perf_counter()
        for _ in range(epochs):
            order = order_gen.permutation(n)
            for start in range(0, n, BATCH):
                idx = order[start:start + BATCH]
                opt.zero_grad()
                loss = dlia.cross_entropy(model(dlia.tensor(x_tr[idx])), y_tr[idx])
                loss.backward()
                opt.step()
        dt = time.perf_counter() - t0
        model.eval()
        with dlia.no_grad():
            pred = model(dlia.tensor(x_te)).numpy().argmax(axis=1)
        return {"s/epoch": dt / epochs, "test accuracy": float((pred == y_te).mean())}

    def theirs(r: int, epochs: int = epochs) -> dict[str, float]:
        return train_torch(_models(r)[1], (x_tr, x_te, y_tr, y_te), epochs, 1000 + r)

    ours(0, 1), theirs(0, 1)  # warm-up
    a, b = interleave(ours, theirs, cfg.repeats, cfg.settle)
    rows = metrics_from(NAME, a, b, [("s/epoch", "s", False, Target("ratio", ">=", 1.0)),
                                     ("test accuracy", "", True, None)])
    for m in rows:
        m.notes = {"epochs": epochs, "batch": BATCH, "architecture": "conv16-conv32-maxpool-dense64-dense10"}
    return rows
