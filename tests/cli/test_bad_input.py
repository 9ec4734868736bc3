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

import functools
import hashlib
import io
import json
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


def _digits_npz(labels: list, dtype: str = "int64") -> bytes:
    """A digits file (random 0..16 pixels) with these labels, as bytes."""
    buf = io.BytesIO()
    images = np.random.default_rng(0).integers(0, 17, (len(labels), 8, 8)).astype(np.uint8)
    np.savez(buf, images=images, target=np.array(labels, dtype=dtype))
    return buf.getvalue()


_GOOD_LABELS = [d % 10 for d in range(20)]


def _digits_case(labels: list, *argv: str, dtype: str = "int64") -> Callable[[Path], list[str]]:
    """A command run on a digits file ``d.npz`` with these labels; ``{f}`` in argv is its path."""
    return _write("d.npz", _digits_npz(labels, dtype), *argv)


@functools.cache
def _cnn_checkpoint_entries() -> dict[str, bytes]:
    """The zip entries of a checkpoint as ``dlia cnn train`` writes it (an untrained DigitsCNN after one
    AdamW step, so the optimizer has state), made once per session."""
    import dlia
    from dlia import optim
    from dlia.io import save_checkpoint
    from dlia.models.cnn import CNNConfig, DigitsCNN

    config = CNNConfig(epochs=1)
    gen = dlia.Generator(0)
    model = DigitsCNN(config, gen)
    opt = optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    dlia.cross_entropy(model(dlia.tensor(gen.normal((2, 1, 8, 8)))), np.array([1, 2])).backward()
    opt.step()
    with tempfile.TemporaryDirectory() as d:
        path = save_checkpoint(Path(d) / "c.npz", model, opt, step=1, generator=gen, config=config.to_dict(),
                               history={"train_loss": [2.3]}, extra={"scheduler": sched.state_dict()})
        with zipfile.ZipFile(path) as z:
            return {i.filename: z.read(i) for i in z.infolist()}


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _nan_weights(entries: dict[str, bytes]) -> None:
    w = np.load(io.BytesIO(entries["model/conv1.weight.npy"]))
    w[0, 0, 0, 0] = np.nan
    entries["model/conv1.weight.npy"] = _npy(w)


def _huge_array(entries: dict[str, bytes]) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**11,)})
    entries["model/conv1.weight.npy"] = header.getvalue() + bytes(64)


def _edit_meta(edit: Callable[[dict], None]) -> Callable[[dict[str, bytes]], None]:
    def change(entries: dict[str, bytes]) -> None:
        meta = json.loads(np.load(io.BytesIO(entries["__meta__.npy"])).tobytes())
        edit(meta)
        entries["__meta__.npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))

    return change


def _rename_optim_entry(entries: dict[str, bytes]) -> None:
    name = next(k for k in entries if k.startswith("optim/0/"))
    entries[name.replace("optim/0/", "optim/x/")] = entries.pop(name)


def _mlp_checkpoint(entries: dict[str, bytes]) -> None:
    from dlia import nn
    from dlia.io import save_checkpoint

    with tempfile.TemporaryDirectory() as d:
        path = save_checkpoint(Path(d) / "m.npz", nn.Sequential(nn.Linear(64, 10)), config={"layers": [64, 10]})
        with zipfile.ZipFile(path) as z:
            entries.clear()
            entries.update({i.filename: z.read(i) for i in z.infolist()})


def _cnn_case(change: Callable[[dict[str, bytes]], None], action: str) -> Callable[[Path], list[str]]:
    """``cnn predict`` (or ``cnn train --resume``) on a run folder whose checkpoint ``change`` damaged."""

    def setup(folder: Path) -> list[str]:
        entries = dict(_cnn_checkpoint_entries())
        change(entries)
        (folder / "run").mkdir()
        with zipfile.ZipFile(folder / "run" / "cnn_epoch001_2.3000.npz", "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
        if action == "predict":
            digit = np.zeros((8, 8), np.uint8)
            digit[1:7, 3:5] = 255
            Image.fromarray(digit).save(folder / "digit.png")
            return ["cnn", "predict", "digit.png", "--out", "run"]
        (folder / "d.npz").write_bytes(_digits_npz(_GOOD_LABELS))
        return ["cnn", "train", "--resume", "--data", "d.npz", "--out", "run"]

    return setup


def _png_bomb(width: int = 20_000, height: int = 10_000) -> bytes:
    """A PNG whose header declares width×height 8-bit grey pixels (200 million: more than twice Pillow's
    decompression-bomb limit), with almost no data: Pillow refuses it on opening."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


CASES: list[Case] = [
    Case("demo-epochs-zero", _args("demo", "--epochs", "0"), "--epochs"),
    Case("demo-missing-data", _args("demo", "--data", "/no/such/digits.npz"), "not found"),
    # --- sizes, images, data files, checkpoints (issue #10 B1-B4, B7) ---
    Case("cnn-fcn-sizes-too-large", _args("cnn", "fcn", "--sizes", "8,100000"), "--sizes 100000 would need"),
    Case("cnn-fcn-sizes-huge-number", _args("cnn", "fcn", "--sizes", "99999999999999999999"), "of memory"),
    Case("lstsq-rows-cols-too-large", _args("lstsq", "--rows", "10000000000", "--cols", "100"),
         "--rows 10000000000 --cols 100 would need"),
    Case("graph-show-batch-too-large", _args("graph", "show", "cnn", "--batch", "100000000000"), "--batch 100000000000"),
    Case("cnn-predict-png-bomb", _write("bomb.png", _png_bomb(), "cnn", "predict", "{f}", "--checkpoint", "c.npz"),
         "too large to read safely"),
    Case("filter-png-bomb", _write("bomb.png", _png_bomb(), "filter", "{f}", "--kernel", "blur", "-o", "out.png"),
         "too large to read safely"),
    Case("cnn-predict-checkpoint-declares-huge-array", _cnn_case(_huge_array, "predict"), "declares 400000000000 bytes"),
    Case("cnn-resume-checkpoint-declares-huge-array", _cnn_case(_huge_array, "train"), "declares 400000000000 bytes"),
    Case("cnn-train-label-10", _digits_case([*_GOOD_LABELS[:-1], 10], "cnn", "train", "--data", "{f}", "--out", "run"),
         "has label 10"),
    Case("cnn-train-negative-label", _digits_case([-1, *_GOOD_LABELS[1:]], "cnn", "train", "--data", "{f}", "--out", "r"),
         "has label -1"),
    Case("cnn-train-float-label", _digits_case([2.5, *_GOOD_LABELS[1:]], "cnn", "train", "--data", "{f}", "--out", "r",
                                                dtype="float64"), "has label 2.5"),
    Case("cnn-train-one-sample", _digits_case([3], "cnn", "train", "--data", "{f}", "--out", "run"), "holds 1 sample"),
    Case("cnn-fcn-label-10", _digits_case([*_GOOD_LABELS[:-1], 10], "cnn", "fcn", "--data", "{f}"), "has label 10"),
    Case("demo-label-10", _digits_case([*_GOOD_LABELS[:-1], 10], "demo", "--data", "{f}"), "has label 10"),
    Case("demo-negative-label", _digits_case([-1, *_GOOD_LABELS[1:]], "demo", "--data", "{f}"), "has label -1"),
    Case("demo-float-label", _digits_case([2.5, *_GOOD_LABELS[1:]], "demo", "--data", "{f}", dtype="float64"),
         "has label 2.5"),
    Case("demo-one-sample", _digits_case([3], "demo", "--data", "{f}"), "holds 1 sample"),
    Case("cnn-predict-checkpoint-without-scalars", _cnn_case(_edit_meta(lambda m: m["optimizer"].pop("scalars")),
                                                             "predict"), "'scalars' is missing"),
    Case("cnn-resume-checkpoint-without-scalars", _cnn_case(_edit_meta(lambda m: m["optimizer"].pop("scalars")),
                                                            "train"), "'scalars' is missing"),
    Case("cnn-resume-bad-optimizer-index", _cnn_case(_rename_optim_entry, "train"), "unexpected array 'optim/x/"),
    Case("cnn-predict-nan-weights", _cnn_case(_nan_weights, "predict"), "NaN or infinite values in 'model/conv1.weight'"),
    Case("cnn-resume-nan-weights", _cnn_case(_nan_weights, "train"), "NaN or infinite values in 'model/conv1.weight'"),
    Case("cnn-predict-mlp-checkpoint", _cnn_case(_mlp_checkpoint, "predict"), "not a CNN checkpoint"),
    Case("cnn-resume-mlp-checkpoint", _cnn_case(_mlp_checkpoint, "train"), "not a CNN checkpoint"),
    Case("cnn-predict-config-not-matching-weights",
         _cnn_case(_edit_meta(lambda m: m["config"].update(channels=[100000, 100000])), "predict"),
         "its config asks for conv1.weight of shape (100000, 1, 3, 3)"),
    Case("cnn-resume-corrupt-scheduler", _cnn_case(_edit_meta(lambda m: m["extra"].update(scheduler=[1])), "train"),
         "corrupt scheduler state"),

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
