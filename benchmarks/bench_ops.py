"""Per-op overhead: ``relu(x @ w + b).sum()`` then backward on 4×4 tensors.

The arrays are tiny, so the time is almost all framework overhead: building the graph (one
Python object per op), the backward walk and gradient bookkeeping. Gradients are reset to None
each iteration in both frameworks, as ``zero_grad(set_to_none=True)`` would.
"""

from __future__ import annotations

import numpy

from benchmarks.harness import Config, Metric, calibrate, interleave, metrics_from, seconds_per_call

NAME = "ops"


def run(cfg: Config) -> list[Metric]:
    import torch

    import dlia

    rng = numpy.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(numpy.float32) for s in ((4, 4), (4, 4), (4,))]
    x, w, b = (dlia.tensor(a, requires_grad=True) for a in arrays)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in arrays)

    def ours_step() -> None:
        x.grad = w.grad = b.grad = None
        (x @ w + b).relu().sum().backward()

    def torch_step() -> None:
        tx.grad = tw.grad = tb.grad = None
        (tx @ tw + tb).relu().sum().backward()

    n_ours, n_torch = calibrate(ours_step, cfg.min_time), calibrate(torch_step, cfg.min_time)

    def measure(step, n):
        def one(_r: int) -> dict[str, float]:
            s = seconds_per_call(step, n)
            return {"µs/iter": s * 1e6, "iter/s": 1.0 / s}
        return one

    ours, theirs = interleave(measure(ours_step, n_ours), measure(torch_step, n_torch), cfg.repeats, cfg.settle)
    rows = metrics_from(NAME, ours, theirs, [("iter/s", "", True, None), ("µs/iter", "µs", False, None)])
    for m in rows:
        m.notes = {"iterations_per_repeat": {"dlia": n_ours, "torch": n_torch}}
    return rows
