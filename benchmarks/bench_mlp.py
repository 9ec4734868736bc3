"""MLP 64-128-10 (ReLU) on the 8×8 digits, Adam lr 1e-3, batch 32, reshuffled every epoch.

Both frameworks see the same batches: dlia goes through its ``DataLoader`` (a seeded
``dlia.Generator``), torch slices tensors with the permutations drawn from an identically seeded
generator — torch's own ``DataLoader`` collates example by example and would only slow torch
down. Both start from the same weights (dlia's, copied). Timed: the training epochs only;
the test accuracy is measured afterwards, under no_grad.
"""

from __future__ import annotations

import time
from typing import Any

import numpy

from benchmarks.harness import Config, Metric, Target, copy_weights, interleave, metrics_from

NAME = "mlp"
BATCH = 32


def load(cfg: Config) -> tuple[numpy.ndarray, ...]:
    """Digits flattened to 64 features, split 80/20 with ``train_test_split(seed=0)``."""
    from dlia.data import load_digits, train_test_split

    images, labels = load_digits(cfg.data if cfg.data.exists() else None)
    x = images.reshape(len(images), -1)
    return tuple(train_test_split(x, labels, test_fraction=0.2, seed=0))


def train_torch(model: Any, data: tuple[Any, ...], epochs: int, seed: int) -> dict[str, float]:
    """Adam 1e-3, batch 32 on ``data`` = (x_tr, x_te, y_tr, y_te) NumPy arrays, with the batches
    dlia sees: the permutations of ``dlia.Generator(seed)``. Times the epochs only."""
    import torch

    import dlia

    x_tr, x_te, y_tr, y_te = data
    tx_tr, ty_tr, tx_te = torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(x_te)
    n = len(x_tr)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order_gen = dlia.Generator(seed)  # the same permutations as dlia's DataLoader draws
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.from_numpy(order_gen.permutation(n))
        for start in range(0, n, BATCH):
            idx = order[start : start + BATCH]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(tx_tr[idx]), ty_tr[idx])
            loss.backward()
            opt.step()
    dt = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        pred = model(tx_te).argmax(dim=1).numpy()
    return {"s/epoch": dt / epochs, "test accuracy": float((pred == y_te).mean()), "final loss": loss.item()}


def _models(seed: int) -> tuple[Any, Any]:
    import torch

    import dlia
    from dlia import nn

    g = dlia.Generator(seed)
    ours = nn.Sequential(nn.Linear(64, 128, generator=g), nn.ReLU(), nn.Linear(128, 10, generator=g))
    theirs = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    copy_weights(ours, theirs)
    return ours, theirs


def run(cfg: Config) -> list[Metric]:
    import dlia
    from dlia import nn, optim
    from dlia.data import DataLoader, TensorDataset

    x_tr, x_te, y_tr, y_te = load(cfg)
    n = len(x_tr)

    def ours(r: int, epochs: int = cfg.mlp_epochs) -> dict[str, float]:
        model, _ = _models(r)
        opt, loss_fn = optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss()
        loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=BATCH, shuffle=True,
                            generator=dlia.Generator(1000 + r))
        model.train()
        t0 = time.perf_counter()
        for _ in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
        dt = time.perf_counter() - t0
        model.eval()
        with dlia.no_grad():
            pred = model(dlia.tensor(x_te)).numpy().argmax(axis=1)
        return {"s/epoch": dt / epochs, "test accuracy": float((pred == y_te).mean()), "final loss": loss.item()}

    def theirs(r: int, epochs: int = cfg.mlp_epochs) -> dict[str, float]:
        return train_torch(_models(r)[1], (x_tr, x_te, y_tr, y_te), epochs, 1000 + r)

    ours(0, 1), theirs(0, 1)  # warm-up epoch each
    a, b = interleave(ours, theirs, cfg.repeats, cfg.settle)
    rows = metrics_from(NAME, a, b, [("s/epoch", "s", False, Target("ratio", ">=", 1.0)),
                                     ("test accuracy", "", True, None)])
    for m in rows:
        m.notes = {"epochs": cfg.mlp_epochs, "batch": BATCH, "train": n, "test": len(x_te),
                   "init_seeds": list(range(cfg.repeats)),
                   "final_train_loss": {"dlia": [o["final loss"] for o in a], "torch": [t["final loss"] for t in b]}}
    return rows
