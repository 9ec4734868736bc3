"""Conv2d forward + backward (3×3, padding 1, bias) on the issue's three shapes, ours vs torch.

Each step computes the convolution, sums it and backpropagates to the input, the weight and the
bias — the work of one training step of one conv layer. Gradients are reset to None each time.
"""

from __future__ import annotations

from typing import Any

import numpy

from benchmarks.harness import Config, Metric, Target, calibrate, interleave, metrics_from, seconds_per_call

NAME = "conv"
SHAPES = [((64, 1, 8, 8), 16), ((32, 16, 32, 32), 32), ((8, 64, 56, 56), 64)]


def conv_arrays(shape: tuple[int, ...], out_ch: int) -> list[numpy.ndarray]:
    """Input, 3×3 weight and bias of one benchmark shape (float32, seed 0)."""
    rng = numpy.random.default_rng(0)
    return [rng.standard_normal(shape).astype(numpy.float32),
            (0.1 * rng.standard_normal((out_ch, shape[1], 3, 3))).astype(numpy.float32),
            rng.standard_normal(out_ch).astype(numpy.float32)]


def conv_steps(shape: tuple[int, ...], out_ch: int, device: str = "cpu", torch_device: str = "cpu") -> tuple[Any, Any]:
    """One forward+backward step of the conv on ``shape`` for dlia and for torch, on the given devices."""
    import torch

    import dlia

    arrays = conv_arrays(shape, out_ch)
    x, w, b = (dlia.tensor(a, requires_grad=True, device=device) for a in arrays)
    tx, tw, tb = (torch.tensor(a, requires_grad=True, device=torch_device) for a in arrays)

    def ours_step() -> None:
        x.grad = w.grad = b.grad = None
        dlia.conv2d(x, w, b, padding=1).sum().backward()

    def torch_step() -> None:
        tx.grad = tw.grad = tb.grad = None
        torch.nn.functional.conv2d(tx, tw, tb, padding=1).sum().backward()

    return ours_step, torch_step


def run(cfg: Config) -> list[Metric]:


    rows: list[Metric] = []
    for (shape, out_ch), target in zip(SHAPES, (Target("ratio", ">=", 1.0), Target("ratio", ">=", 1.0), None)):
        ours_step, torch_step = conv_steps(shape, out_ch)
        n_ours, n_torch = calibrate(ours_step, cfg.min_time), calibrate(torch_step, cfg.min_time)

        def measure(step, n):
            return lambda _r: {"ms/step": seconds_per_call(step, n) * 1e3}

        a, t = interleave(measure(ours_step, n_ours), measure(torch_step, n_torch), cfg.repeats, cfg.settle)
        label = f"{shape}->{out_ch}ch"
        for m in metrics_from(NAME, a, t, [("ms/step", "ms", False, target)]):
            m.name = f"{label} ms/step"
            m.notes = {"shape": list(shape), "out_channels": out_ch, "kernel": 3, "padding": 1}
            rows.append(m)
    return rows
