"""The kill -9 test every training command runs: a run killed with SIGKILL after its first
checkpoint, with what a kill in the middle of a save leaves beside it, and resumed with ``--resume``,
must end with the checkpoint of an uninterrupted run of the same flags, bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy

import dlia


def dlia_argv(*args: str) -> list[str]:
    """The command line running ``dlia *args`` with this interpreter."""
    return [sys.executable, "-c", "import sys; from dlia.cli.main import main; sys.exit(main(sys.argv[1:]))", *args]


def kill_and_resume(tmp_path: Path, args: list[str], prefix: str, timeout: float,
                    wait: float) -> subprocess.CompletedProcess[str]:
    """Run ``dlia *args`` to the end into ``tmp_path/whole``; run it again into ``tmp_path/killed`` and
    SIGKILL it as soon as its first ``<prefix>_*.npz`` is there (``wait`` seconds at most); leave a
    half-written temporary file beside it (what a kill in the middle of a save leaves, whenever this
    one fell), then ``--resume killed`` to the end. Returns the resumed run (its output captured)."""
    env = {**os.environ, "PYTHONPATH": str(Path(dlia.__file__).parents[1])}

    def run(*more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(dlia_argv(*args, *more), cwd=tmp_path, env=env, capture_output=True, text=True,
                              check=True, timeout=timeout)

    run("--checkpoint-dir", "whole")
    killed = subprocess.Popen(dlia_argv(*args, "--checkpoint-dir", "killed"), cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + wait
        while not any((tmp_path / "killed").glob(f"{prefix}_*.npz")) and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run ended before it was killed: make it longer"
    first = next((tmp_path / "killed").glob(f"{prefix}_*.npz"))
    (tmp_path / "killed" / f".{first.name}.999999999.k1lled0x.tmp").write_bytes(first.read_bytes()[:100])
    return run("--resume", "killed")


def _arrays(path: Path) -> dict[str, numpy.ndarray]:
    with numpy.load(path) as z:
        return {k: z[k] for k in z.files if k != "__meta__"}


def assert_same_checkpoint(whole: Path, killed_folder: Path) -> None:
    """The killed-and-resumed run's checkpoint of ``whole``'s name holds the same arrays, optimizer
    state included, bit for bit, and the resume removed the half-written temporary file."""
    a, b = _arrays(whole), _arrays(killed_folder / whole.name)
    assert sorted(a) == sorted(b) and any(k.startswith("optim/") for k in a)
    for k in a:
        assert numpy.array_equal(a[k], b[k]), k
    assert not list(killed_folder.glob(".*.tmp"))  # a save killed midway left nothing behind
