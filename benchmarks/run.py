"""Run the benchmarks: dlia against PyTorch eager on the CPU, interleaved, ratios in a table.

Usage::

    python benchmarks/run.py [--only NAME ...] [--repeats N] [--json PATH] [--quick]

Every ratio is oriented so that > 1 means dlia is better (faster, or more accurate); the table
shows its min and median over the repeats. Nothing here fails on a slow result: targets are
reported as met or MISSED. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import (  # noqa: E402
    bench_caption,
    bench_cnn,
    bench_compile,
    bench_conv,
    bench_gpu,
    bench_import,
    bench_lm,
    bench_mlp,
    bench_nnlm,
    bench_ops,
    bench_rnn,
    bench_seq2seq,
    bench_w2v,
    bench_xor,
)
from benchmarks.harness import REPO_ROOT, Config, Metric, machine_info, table  # noqa: E402

BENCHMARKS = {m.NAME: m for m in (bench_ops, bench_xor, bench_mlp, bench_import, bench_conv, bench_cnn,
                                             bench_compile, bench_rnn, bench_w2v, bench_lm, bench_nnlm, bench_seq2seq,
                                             bench_caption, bench_gpu)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", action="extend", choices=sorted(BENCHMARKS), metavar="NAME",
                   help=f"run only these benchmarks ({', '.join(BENCHMARKS)}); default: all")
    p.add_argument("--repeats", type=int, help="interleaved repeats per benchmark (default 7, 3 with --quick)")
    p.add_argument("--json", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "latest.json",
                   help="where to write the JSON record (default: benchmarks/results/latest.json)")
    p.add_argument("--quick", action="store_true", help="fewer repeats, shorter loops: a smoke run in ~30 s")
    p.add_argument("--epochs", type=int, help="epochs per repeat in the mlp benchmark (default 30, 5 with --quick)")
    p.add_argument("--torch-threads", type=int, metavar="N",
                   help="call torch.set_num_threads(N) first (default: leave torch at its own default)")
    p.add_argument("--data", type=Path, help="digits.npz (default: ../shared/data/digits.npz from the repo root)")
    args = p.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.torch_threads is not None and args.torch_threads < 1:
        p.error("--torch-threads must be at least 1")
    return args


def config_from(args: argparse.Namespace) -> Config:
    cfg = Config(repeats=3, min_time=0.05, xor_steps=300, mlp_epochs=5, settle=0.1, quick=True) if args.quick else Config()
    if args.repeats is not None:
        cfg.repeats = args.repeats
    if args.epochs is not None:
        cfg.mlp_epochs = args.epochs
    if args.data is not None:
        cfg.data = args.data
    return cfg


def _loadavg() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = config_from(args)
    names = [n for n in BENCHMARKS if not args.only or n in args.only]
    if args.torch_threads is not None:
        import torch

        torch.set_num_threads(args.torch_threads)
    machine = machine_info()
    threads = machine["torch_num_threads"]
    print(f"dlia {machine['dlia']} vs torch {machine['torch']} (eager, CPU, {threads} thread{'s' * (threads != 1)}); "
          f"numpy {machine['numpy']}, python {machine['python']}, {machine['cpus_usable']} usable CPUs; "
          f"{cfg.repeats} repeats", flush=True)

    metrics: list[Metric] = []
    runs: dict[str, dict[str, object]] = {}
    for name in names:
        print(f"  running {name} ...", end="", flush=True)
        t0, load0 = time.perf_counter(), _loadavg()
        try:
            rows = BENCHMARKS[name].run(cfg)
        except Exception as e:  # noqa: BLE001 - one broken benchmark should not hide the others
            runs[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            print(f" failed: {type(e).__name__}: {e}", flush=True)
            continue
        # the load average shows whether other processes competed for the CPUs meanwhile
        runs[name] = {"seconds": round(time.perf_counter() - t0, 2), "loadavg_1min": [load0, _loadavg()]}
        metrics += rows
        print(f" {runs[name]['seconds']} s", flush=True)

    print()
    if metrics:
        print(table(metrics))
        print("\nratio > 1: dlia is better (peer/dlia for times, dlia/peer for rates and accuracy); "
              "dlia and peer columns are medians over the repeats.")
    record = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "torch_threads_set": args.torch_threads,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items()},
        "machine": machine,
        "benchmarks": runs,
        "results": [m.record() for m in metrics],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"JSON record: {args.json}")
    return 1 if any("error" in r for r in runs.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
