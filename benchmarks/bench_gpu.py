"""On a CUDA GPU: dlia on CuPy against torch on CUDA, in the same process.

Three workloads: Conv2d forward + backward on the conv benchmark's three shapes, one training step
of the digits CNN (conv16 → conv32 → maxpool → dense64 → dense10, Adam, batch 32) with the same
initial weights, and one step of the compile benchmark's 2-layer LSTM (eager and ``dlia.compile``).
Both frameworks synchronize the device before a timer is read. Without CuPy and a
GPU, or without torch CUDA, it records nothing and says why.
"""

from __future__ import annotations

import numpy

from benchmarks.bench_conv import SHAPES, conv_steps
from benchmarks.harness import Config, Metric, calibrate, interleave, metrics_from, seconds_per_call

NAME = "gpu"


def run(cfg: Config) -> list[Metric]:
    import torch

    import dlia

    if not dlia.gpu_available:
        print(" (skipped: no CuPy/CUDA GPU)", end="")
        return []
    if not torch.cuda.is_available():
        print(" (skipped: torch has no CUDA)", end="")
        return []
    import cupy

    def sync_ours() -> None:
        cupy.cuda.Device().synchronize()

    rows: list[Metric] = []

    def timed(label: str, ours_step, torch_step, notes: dict) -> None:
        def ours() -> None:
            ours_step()
            sync_ours()

        def theirs() -> None:
            torch_step()
            torch.cuda.synchronize()

        n_ours, n_torch = calibrate(ours, cfg.min_time), calibrate(theirs, cfg.min_time)
        a, t = interleave(lambda _r: {"ms/step": seconds_per_call(ours, n_ours) * 1e3},
                          lambda _r: {"ms/step": seconds_per_call(theirs, n_torch) * 1e3}, cfg.repeats)
        for m in metrics_from(NAME, a, t, [("ms/step", "ms", False, None)]):
            m.name = f"{label} ms/step"
            m.notes = {**notes, "gpu": torch.cuda.get_device_name()}
            rows.append(m)

    for shape, out_ch in SHAPES:
        ours_conv, torch_conv = conv_steps(shape, out_ch, "gpu", "cuda")
        timed(f"conv {shape}->{out_ch}ch", ours_conv, torch_conv, {"shape": list(shape), "out_channels": out_ch})

    from benchmarks.bench_cnn import _models
    from dlia import optim

    model, tmodel = _models(0)
    model.to("gpu")
    tmodel.to("cuda")
    opt = optim.Adam(model.parameters(), lr=1e-3)
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    rng = numpy.random.default_rng(0)
    xb = rng.standard_normal((32, 1, 8, 8)).astype(numpy.float32)
    yb = rng.integers(0, 10, 32)
    gx, gy = dlia.tensor(xb, device="gpu"), dlia.tensor(yb, device="gpu")
    tx, ty = torch.from_numpy(xb).cuda(), torch.from_numpy(yb).cuda()

    def ours_step() -> None:
        opt.zero_grad()
        dlia.cross_entropy(model(gx), gy).backward()
        opt.step()

    def torch_step() -> None:
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
        topt.step()

    timed("digits CNN train step", ours_step, torch_step, {"batch": 32, "optimizer": "Adam"})

    # the compile benchmark's 2-layer LSTM step (batch 50, 50 steps, hidden 128, SGD), eager and compiled
    from benchmarks.bench_compile import B, H, _lstm_setup, lstm_loss

    x, y, params = _lstm_setup(0)
    dp = [(dlia.tensor(w, requires_grad=True, device="gpu"), dlia.tensor(b, requires_grad=True, device="gpu"))
          for w, b in params]
    dx, dy, dz = dlia.tensor(x, device="gpu"), dlia.tensor(y, device="gpu"), dlia.zeros(B, H).to("gpu")
    lstm_opt = optim.SGD([t for p in dp for t in p], lr=0.1)
    tp = [(torch.tensor(w, requires_grad=True, device="cuda"), torch.tensor(b, requires_grad=True, device="cuda"))
          for w, b in params]
    tx, ty, tz = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda(), torch.zeros(B, H, device="cuda")
    torch_opt = torch.optim.SGD([t for p in tp for t in p], lr=0.1)

    def loss_fn(xx, yy):
        return lstm_loss(dlia, xx, dp, yy, dz)

    compiled = dlia.compile(loss_fn)

    def lstm_step(fn) -> None:
        lstm_opt.zero_grad()
        fn(dx, dy).backward()
        lstm_opt.step()

    def torch_lstm() -> None:
        torch_opt.zero_grad()
        lstm_loss(torch, tx, tp, ty, tz).backward()
        torch_opt.step()

    notes = {"batch": B, "steps": 50, "hidden": H, "layers": 2}
    timed("LSTM train step (eager)", lambda: lstm_step(loss_fn), torch_lstm, notes)
    timed("LSTM train step (dlia.compile)", lambda: lstm_step(compiled), torch_lstm, notes)
    return rows
