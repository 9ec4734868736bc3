"""Import time of ``import dlia`` vs ``import torch``, each in a fresh interpreter.

The child process times the import statement alone (``time.perf_counter`` around it), so the
interpreter's own start-up is left out. One unmeasured run of each comes first, so the bytecode
caches and the OS file cache are warm. One extra ``python -X importtime -c "import dlia"`` run
records dlia's slowest modules (self time) and NumPy's share in the JSON.
"""

from __future__ import annotations

import re
import subprocess
import sys

from benchmarks.harness import REPO_ROOT, Config, Metric, Target, interleave, metrics_from

NAME = "import"

_CHILD = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def import_seconds(module: str) -> float:
    out = subprocess.run([sys.executable, "-c", _CHILD.format(mod=module)], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True, timeout=120)
    return float(out.stdout.strip().splitlines()[-1])


def import_profile(module: str, top: int = 10) -> dict[str, object]:
    """From ``python -X importtime -c 'import module'``: the modules with the largest self time,
    and the cumulative time of ``module`` itself and of NumPy inside it."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True, timeout=120)
    rows = []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(.*)$", line)
        if m:
            rows.append({"module": m.group(4).strip(), "depth": len(m.group(3)) // 2,
                         "self_ms": int(m.group(1)) / 1e3, "cumulative_ms": int(m.group(2)) / 1e3})
    cumulative = {r["module"]: r["cumulative_ms"] for r in rows if r["module"] in (module, "numpy")}
    slowest = sorted(rows, key=lambda r: -r["self_ms"])[:top]
    return {"cumulative_ms": cumulative, "slowest_self_ms": [{k: r[k] for k in ("module", "self_ms")} for r in slowest]}


def run(cfg: Config) -> list[Metric]:
    import_seconds("dlia"), import_seconds("torch")  # warm caches
    a, b = interleave(lambda _r: {"import": import_seconds("dlia")},
                      lambda _r: {"import": import_seconds("torch")}, cfg.repeats)
    (row,) = metrics_from(NAME, a, b, [("import", "s", False, Target("dlia", "<=", 0.3))])
    row.notes = {"dlia_importtime": import_profile("dlia")}
    return [row]
