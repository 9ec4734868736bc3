"""XOR with a 2-2-1 sigmoid network: one SGD training step (lr 0.5) on the four points.

Step = ``zero_grad`` → forward → MSE → ``backward`` → ``step``. Both networks start from the
same weights (dlia's, copied into torch), so the final losses should agree closely — a sanity
check that both ran the same computation.
"""

from __future__ import annotations

import numpy

from benchmarks.harness import Config, Metric, Target, copy_weights, interleave, metrics_from

NAME = "xor"

X = numpy.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=numpy.float32)
Y = numpy.array([[0], [1], [1], [0]], dtype=numpy.float32)


def _models(seed: int):
    import torch

    import dlia
    from dlia import nn

    ours = nn.Sequential(nn.Linear(2, 2, generator=dlia.Generator(seed)), nn.Sigmoid(),
                         nn.Linear(2, 1, generator=dlia.Generator(seed + 1)), nn.Sigmoid())
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sigmoid(), torch.nn.Linear(2, 1), torch.nn.Sigmoid())
    copy_weights(ours, theirs)
    return ours, theirs


def run(cfg: Config) -> list[Metric]:
    import time

    import torch

    import dlia
    from dlia import nn, optim

    x, y = dlia.tensor(X), dlia.tensor(Y)
    tx, ty = torch.from_numpy(X), torch.from_numpy(Y)
    steps = cfg.xor_steps

    def ours(r: int) -> dict[str, float]:
        model, _ = _models(r)
        opt, loss_fn = optim.SGD(model.parameters(), lr=0.5), nn.MSELoss()
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        return {"µs/step": dt / steps * 1e6, "final loss": loss.item()}

    def theirs(r: int) -> dict[str, float]:
        _, model = _models(r)
        opt, loss_fn = torch.optim.SGD(model.parameters(), lr=0.5), torch.nn.MSELoss()
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            loss = loss_fn(model(tx), ty)
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        return {"µs/step": dt / steps * 1e6, "final loss": loss.item()}

    ours(0), theirs(0)  # warm-up: first-call costs (imports, allocator, lazy init) stay out of the numbers
    a, b = interleave(ours, theirs, cfg.repeats, cfg.settle)
    rows = metrics_from(NAME, a, b, [("µs/step", "µs", False, Target("ratio", ">=", 3.0)),
                                     ("final loss", "", False, None)])
    for m in rows:
        m.notes = {"steps_per_repeat": steps, "seeds": list(range(cfg.repeats))}
    return rows
