"""Compiled (``dlia.compile``) vs eager vs torch eager: two training steps written with engine ops.

(a) MLP 64-128-10 on the digits, Adam lr 1e-3, batch 32 (one epoch per repeat);
(b) a 2-layer LSTM written with matmul/slicing/sigmoid/tanh (batch 50, 50 time steps, input 64,
    hidden 128), SGD lr 0.1, loss = MSE of the last hidden state (a few steps per repeat).

Variants: ``eager``; ``compiled`` (``dlia.compile`` on the loss function: forward + gradients; the
optimizer step stays eager); ``graph`` (the whole step as a graph: placeholders, variables,
``optimizer.minimize`` run by a Session, whose train op updates each parameter group through one
flat buffer); and torch eager. Peak memory is NumPy's peak allocation during one step
(tracemalloc), dlia only.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import numpy

from benchmarks.bench_mlp import BATCH, load
from benchmarks.harness import Config, Metric, Target, copy_weights, interleave, metrics_from

NAME = "compile"
T, B, I, H = 50, 50, 64, 128


def lstm_loss(lib: Any, x: Any, params: list[tuple[Any, Any]], target: Any, zeros: Any) -> Any:
    """A 2-layer LSTM unrolled over x (T, B, I) with plain ops; works on dlia and torch tensors."""
    cat = lib.concatenate if hasattr(lib, "concatenate") else (lambda ts, axis: lib.cat(ts, dim=axis))
    seq = [x[t] for t in range(x.shape[0])]
    for w, b in params:
        h, c, outs = zeros, None, []
        for xt in seq:
            z = cat([xt, h], axis=1) @ w + b
            i, f, g, o = lib.sigmoid(z[:, :H]), lib.sigmoid(z[:, H:2 * H]), lib.tanh(z[:, 2 * H:3 * H]), lib.sigmoid(z[:, 3 * H:])
            c = i * g if c is None else f * c + i * g
            h = o * lib.tanh(c)
            outs.append(h)
        seq = outs
    d = seq[-1] - target
    return (d * d).mean()


def _lstm_setup(seed: int) -> tuple[Any, ...]:
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((T, B, I)).astype(numpy.float32)
    y = rng.standard_normal((B, H)).astype(numpy.float32)
    params = [(rng.uniform(-0.1, 0.1, ((I if layer == 0 else H) + H, 4 * H)).astype(numpy.float32),
               numpy.zeros(4 * H, numpy.float32)) for layer in range(2)]
    return x, y, params


def run(cfg: Config) -> list[Metric]:
    import torch

    import dlia
    from dlia import nn, optim

    x_tr, _, y_tr, _ = load(cfg)
    n = len(x_tr)
    lstm_steps = 2 if cfg.quick else 4

    def mlp(mode: str, r: int) -> dict[str, float]:
        g = dlia.Generator(r)
        model = nn.Sequential(nn.Linear(64, 128, generator=g), nn.ReLU(), nn.Linear(128, 10, generator=g))
        if mode == "graph":
            from dlia import graph as G

            gr = G.Graph()
            gx = G.placeholder((None, 64), graph=gr)
            gy = G.placeholder((None,), numpy.int64, graph=gr)
            w1, b1, w2, b2 = (G.Variable(p.data, graph=gr) for p in model.parameters())
            loss = dlia.cross_entropy(dlia.linear(dlia.relu(dlia.linear(gx, w1, b1)), w2, b2), gy)
            train = optim.Adam([w1, b1, w2, b2], lr=1e-3).minimize(loss)
            sess = G.Session(gr)

            def step(idx: Any) -> None:
                sess.run(train, {gx: x_tr[idx], gy: y_tr[idx]})
        elif mode == "torch":
            tm = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
            copy_weights(model, tm)
            opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
            tx, ty = torch.from_numpy(x_tr), torch.from_numpy(y_tr)

            def step(idx: Any) -> None:
                ti = torch.from_numpy(idx)
                opt.zero_grad()
                torch.nn.functional.cross_entropy(tm(tx[ti]), ty[ti]).backward()
                opt.step()
        else:
            opt = optim.Adam(model.parameters(), lr=1e-3)

            def loss_fn(xb: Any, yb: Any) -> Any:
                return dlia.cross_entropy(model(xb), yb)

            fn = dlia.compile(loss_fn) if mode == "compiled" else loss_fn

            def step(idx: Any) -> None:
                opt.zero_grad()
                fn(dlia.tensor(x_tr[idx]), y_tr[idx]).backward()
                opt.step()
        order = dlia.Generator(1000 + r).permutation(n)
        batches = [order[s:s + BATCH] for s in range(0, n, BATCH)]
        step(batches[0])
        step(batches[-1])  # warm-up: traces both batch shapes
        t0 = time.perf_counter()
        for idx in batches:
            step(idx)
        return {"s/epoch": time.perf_counter() - t0}

    def lstm(mode: str, r: int) -> dict[str, float]:
        x, y, params = _lstm_setup(r)
        if mode == "graph":
            from dlia import graph as G

            gr = G.Graph()
            gx, gy = G.placeholder(x.shape, graph=gr), G.placeholder(y.shape, graph=gr)
            gp = [(G.Variable(w, graph=gr), G.Variable(b, graph=gr)) for w, b in params]
            loss_node = lstm_loss(dlia, gx, gp, gy, G.constant(numpy.zeros((B, H), numpy.float32), graph=gr))
            train = optim.SGD([t for p in gp for t in p], lr=0.1).minimize(loss_node)
            sess = G.Session(gr)

            def step() -> float:
                return float(sess.run([train, loss_node], {gx: x, gy: y})[1])
        elif mode == "torch":
            tp = [(torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)) for w, b in params]
            opt = torch.optim.SGD([t for p in tp for t in p], lr=0.1)
            tx, ty, tz = torch.from_numpy(x), torch.from_numpy(y), torch.zeros(B, H)

            def step() -> float:
                opt.zero_grad()
                loss = lstm_loss(torch, tx, tp, ty, tz)
                loss.backward()
                opt.step()
                return loss.item()
        else:
            dp = [(dlia.tensor(w, requires_grad=True), dlia.tensor(b, requires_grad=True)) for w, b in params]
            opt = optim.SGD([t for p in dp for t in p], lr=0.1)
            dx, dy, dz = dlia.tensor(x), dlia.tensor(y), dlia.zeros(B, H)

            def loss_fn(xx: Any, yy: Any) -> Any:
                return lstm_loss(dlia, xx, dp, yy, dz)

            fn = dlia.compile(loss_fn) if mode == "compiled" else loss_fn

            def step() -> float:
                opt.zero_grad()
                loss = fn(dx, dy)
                loss.backward()
                opt.step()
                return loss.item()
        step()  # warm-up (and trace)
        peak = 0.0
        if mode in ("eager", "compiled", "graph"):
            tracemalloc.start()
            step()
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        t0 = time.perf_counter()
        for _ in range(lstm_steps):
            loss = step()
        return {"s/step": (time.perf_counter() - t0) / lstm_steps, "peak MiB": peak, "loss": loss}

    rows: list[Metric] = []
    for label, bench, unit in (("mlp", mlp, "s/epoch"), ("lstm", lstm, "s/step")):
        comp, eager = interleave(lambda r, b=bench: b("compiled", r), lambda r, b=bench: b("eager", r), cfg.repeats,
                                 cfg.settle)
        for m in metrics_from(NAME, comp, eager, [(unit, "s", False, Target("ratio", ">=", 1.3))]):
            m.name = f"{label} {unit} (compiled vs eager)"
            rows.append(m)
        graph_rows, eager2 = interleave(lambda r, b=bench: b("graph", r), lambda r, b=bench: b("eager", r),
                                        cfg.repeats, cfg.settle)
        for m in metrics_from(NAME, graph_rows, eager2, [(unit, "s", False, Target("ratio", ">=", 1.3))]):
            m.name = f"{label} {unit} (graph Session vs eager)"
            rows.append(m)
        comp2, torch_rows = interleave(lambda r, b=bench: b("compiled", r), lambda r, b=bench: b("torch", r),
                                       cfg.repeats, cfg.settle)
        for m in metrics_from(NAME, comp2, torch_rows, [(unit, "s", False, None)]):
            m.name = f"{label} {unit} (compiled vs torch)"
            rows.append(m)
        if label == "lstm":
            for m in metrics_from(NAME, comp, eager, [("peak MiB", "MiB", False, Target("ratio", ">=", 1.0))]):
                m.name = "lstm peak MiB (compiled vs eager)"
                rows.append(m)
            for m in metrics_from(NAME, graph_rows, eager2, [("peak MiB", "MiB", False, Target("ratio", ">=", 1.0))]):
                m.name = "lstm peak MiB (graph Session vs eager)"
                rows.append(m)
    return rows
