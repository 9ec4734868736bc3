"""The bad-input catalogue: every command, every kind of bad input, one clear line and exit 2.

Each case builds its inputs in a fresh folder (which is also the working directory), runs
``dlia ARGS`` in-process, and checks what the README promises for bad input:

- exit status 2;
- stderr is exactly one line, ``dlia <cmd>: error: ...``, containing the expected words;
- no traceback;
- nothing is lost or left behind: the folder holds exactly the files the case made, unchanged.

A new command adds its cases to ``CASES`` (see "Bad input" in docs/cli.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlia.cli.main import main


@dataclass(frozen=True)
class Case:
    """``setup(folder)`` makes the inputs and returns the arguments after ``dlia``."""

    name: str
    setup: Callable[[Path], list[str]]
    expect: str  # words the one error line must contain (case-insensitive)


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder below ``folder`` with a hash of its bytes ("dir" for folders)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _args(*argv: str) -> Callable[[Path], list[str]]:
    return lambda folder: list(argv)


def _write(name: str, data: bytes | str, *argv: str) -> Callable[[Path], list[str]]:
    """A case whose input is one file ``name`` with ``data``; ``{f}`` in argv is its path."""

    def setup(folder: Path) -> list[str]:
        p = folder / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return [a.replace("{f}", str(p)) for a in argv]

    return setup


CASES: list[Case] = [
    Case("demo-epochs-zero", _args("demo", "--epochs", "0"), "--epochs"),
    Case("demo-missing-data", _args("demo", "--data", "/no/such/digits.npz"), "not found"),
    # --- sizes, images, data files, checkpoints (issue #10 B1-B4, B7) ---

    # --- end of sizes, images, data files, checkpoints ---
    Case("demo-corrupt-data", _write("digits.npz", b"\x00\xffgarbage", "demo", "--data", "{f}"), "not a valid digits"),
    # --- output paths, overwritten inputs, messages (issue #10 B5, B6, B8) ---

    # --- end of output paths, overwritten inputs, messages ---
    Case("lstsq-missing-data", _args("lstsq", "--data", "/no/such/file.csv"), "no such file"),
]


def run_case(case: Case, folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> str:
    """Run one case and check the promises; returns the error line."""
    monkeypatch.chdir(folder)
    monkeypatch.setenv("DLIA_OFFLINE", "1")
    monkeypatch.setenv("DLIA_CACHE_DIR", str(folder / ".cache-not-made"))
    argv = case.setup(folder)
    before = _snapshot(folder)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, f"{case.name}: exit {code}, stderr {err!r}"
    assert len(lines) == 1, f"{case.name}: expected one line, got {err!r}"
    assert "Traceback" not in err
    assert lines[0].startswith(f"dlia {argv[0]}"), lines[0]
    assert ": error: " in lines[0], lines[0]
    assert case.expect.lower() in lines[0].lower(), f"{case.name}: {case.expect!r} not in {lines[0]!r}"
    assert _snapshot(folder) == before, f"{case.name}: files changed or left behind"
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    run_case(case, folder, monkeypatch, capsys)


def test_case_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
