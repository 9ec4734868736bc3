"""What every benchmark shares: interleaved repeats, per-repeat ratios, targets, machine info.

A benchmark gives two callables, one running dlia and one running torch, each measuring one
repeat and returning a dict of values (seconds per step, accuracy, ...). ``interleave`` alternates
which goes first on each repeat, so a slow patch of the shared machine hits both; a ratio is
formed per repeat, from the two runs that sat next to each other in time, and summarised by its
min and median.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

Measure = Callable[[int], dict[str, float]]


@dataclass
class Config:
    """Knobs shared by every benchmark; ``--quick`` shrinks them.

    Attributes:
        repeats: interleaved repeats per benchmark (ratios are summarised over these).
        min_time: seconds one timed loop of a micro-benchmark should last (sets its iteration count).
        xor_steps: training steps timed per repeat in the XOR benchmark.
        mlp_epochs: epochs trained per repeat in the digits MLP benchmark.
        data: path of ``digits.npz``.
        settle: seconds to pause before each measurement, so the worker threads the other framework
            left spinning (OpenBLAS after NumPy's matmuls, OpenMP after torch's) go idle first; on a
            2-core machine they otherwise steal a core from whoever runs next.
        quick: whether this is a ``--quick`` run (recorded in the JSON).
    """

    repeats: int = 7
    min_time: float = 0.2
    xor_steps: int = 2000
    mlp_epochs: int = 30
    data: Path = REPO_ROOT.parent / "shared" / "data" / "digits.npz"
    settle: float = 0.3
    quick: bool = False


@dataclass
class Target:
    """A goal for one metric, checked on the median (informative only: nothing fails).

    ``on="ratio"`` compares the dlia-is-better ratio, ``on="dlia"`` dlia's own value,
    ``on="difference"`` the mean of dlia's values minus the mean of the peer's (for scores where
    "no worse than the peer minus a point" is the goal).
    """

    on: str
    op: str
    value: float

    def met(self, metric: Metric) -> bool:
        if self.on == "difference":
            x = statistics.mean(metric.dlia) - statistics.mean(metric.torch)
        else:
            x = metric.ratio_median if self.on == "ratio" else metric.dlia_median
        return x >= self.value if self.op == ">=" else x <= self.value

    def __str__(self) -> str:
        unit = "x" if self.on == "ratio" else ""
        if self.on == "difference":
            return f"mean - peer's {self.op} {self.value:g}"
        return f"{self.on} {self.op} {self.value:g}{unit}"


@dataclass
class Metric:
    """One row of the table: per-repeat values of both frameworks and their ratios.

    The ratio is oriented so that > 1 means dlia is better: torch/dlia for times (lower is
    better), dlia/torch for rates and accuracies (higher is better).
    """

    benchmark: str
    name: str
    unit: str
    higher_is_better: bool
    dlia: list[float]
    torch: list[float]  # the peer's values: torch's, or those of ``peer`` where another library is compared
    target: Target | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    peer: str = "torch"

    @property
    def ratios(self) -> list[float]:
        pairs = zip(self.dlia, self.torch)
        if self.higher_is_better:
            return [d / t if t else float("nan") for d, t in pairs]
        return [t / d if d else float("nan") for d, t in pairs]

    @property
    def ratio_min(self) -> float:
        return min(self.ratios)

    @property
    def ratio_median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def dlia_median(self) -> float:
        return statistics.median(self.dlia)

    @property
    def torch_median(self) -> float:
        return statistics.median(self.torch)

    def record(self) -> dict[str, Any]:
        """The JSON form: raw per-repeat values plus the summaries."""
        best = max if self.higher_is_better else min
        out = {k: v for k, v in asdict(self).items() if k != "target"}
        out.update(
            ratios=self.ratios, ratio_min=self.ratio_min, ratio_median=self.ratio_median,
            dlia_median=self.dlia_median, torch_median=self.torch_median,
            dlia_best=best(self.dlia), torch_best=best(self.torch),
            target=None if self.target is None else str(self.target),
            target_met=None if self.target is None else self.target.met(self),
        )
        return out


def copy_weights(ours: Any, theirs: Any) -> None:
    """Give the torch twin ``theirs`` the dlia model's initial weights (parameters in the same order)."""
    import torch

    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.from_numpy(p.data))


def interleave(ours: Measure, theirs: Measure, repeats: int,
               settle: float = 0.0) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Run ``repeats`` rounds of both measurements, alternating which runs first.

    Each callable gets the repeat index (a seed where the workload needs one); ``settle`` seconds
    of sleep precede every measurement (see ``Config.settle``).
    """
    a: list[dict[str, float]] = []
    b: list[dict[str, float]] = []
    runs = ((ours, a), (theirs, b))
    for r in range(repeats):
        for fn, out in runs if r % 2 == 0 else runs[::-1]:
            time.sleep(settle)
            out.append(fn(r))
    return a, b


def metrics_from(benchmark: str, ours: list[dict[str, float]], theirs: list[dict[str, float]],
                 spec: list[tuple[str, str, bool, Target | None]], peer: str = "torch") -> list[Metric]:
    """Turn per-repeat dicts into ``Metric`` rows; ``spec`` lists (key, unit, higher_is_better, target)."""
    return [
        Metric(benchmark, key, unit, hib, [o[key] for o in ours], [t[key] for t in theirs], target, peer=peer)
        for key, unit, hib, target in spec
    ]


def seconds_per_call(fn: Callable[[], Any], n: int) -> float:
    """Mean wall time of ``n`` back-to-back calls of ``fn``."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def calibrate(fn: Callable[[], Any], min_time: float) -> int:
    """An iteration count for which a loop of ``fn`` lasts about ``min_time`` seconds (warms up too)."""
    n = 1
    while True:
        t = seconds_per_call(fn, n) * n
        if t >= min_time / 4 or n >= 1 << 24:
            return max(1, int(n * min_time / max(t, 1e-9)))
        n *= 4


def _blas_info() -> dict[str, Any]:
    """NumPy's BLAS from its build config, plus live thread pools if threadpoolctl is installed."""
    import numpy

    info: dict[str, Any] = {}
    try:
        deps = numpy.show_config(mode="dicts")["Build Dependencies"]
        blas = deps.get("blas", {})
        info["numpy_blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration") if blas.get(k)}
    except Exception as e:  # noqa: BLE001 - show_config's layout varies between NumPy versions
        info["numpy_blas"] = f"unavailable: {e}"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    else:
        info["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "num_threads", "version", "filepath")}
            for p in threadpool_info()
        ]
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine_info() -> dict[str, Any]:
    """Versions, CPUs, thread counts and BLAS: what a reader needs to compare two runs."""
    import numpy
    import torch

    import dlia

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    dirty = _git("status", "--porcelain", "--", "src")
    return {
        "python": sys.version.split()[0],
        "python_dont_write_bytecode": bool(sys.flags.dont_write_bytecode),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "dlia": dlia.__version__,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "src_modified": None if dirty is None else bool(dirty),
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                       if k in os.environ},
        **_blas_info(),
    }


def _fmt(x: float) -> str:
    if x != x:  # nan
        return "nan"
    if abs(x) >= 1e4:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def table(metrics: list[Metric]) -> str:
    """A plain-text table: medians of both frameworks, min and median ratio, target status."""
    head = ["benchmark", "metric", "dlia", "peer (torch unless named)", "ratio min", "ratio median", "target"]
    rows = [head]
    for m in metrics:
        unit = f" {m.unit}" if m.unit else ""
        target = "" if m.target is None else f"{m.target} ({'met' if m.target.met(m) else 'MISSED'})"
        peer = "" if m.peer == "torch" else f" [{m.peer}]"
        rows.append([m.benchmark, m.name, _fmt(m.dlia_median) + unit, _fmt(m.torch_median) + unit + peer,
                     f"{m.ratio_min:.2f}x", f"{m.ratio_median:.2f}x", target])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i < 2 or i == 6 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
