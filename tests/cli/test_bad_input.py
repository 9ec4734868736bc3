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
import os
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


_BINARY = b"\x00\xff\xfe\x89garbage\x00\x01"
_LATIN1 = "café,1\n2,3\n".encode("latin-1")  # non-UTF-8 text
_CSV = "1,2\n2,3.9\n3,6.1\n"  # lstsq: A's column, then b
_SCRIPT = "from dlia import graph as G\nx = G.placeholder((2,), name='x')\ny = x * 2\n"


def _png_bytes() -> bytes:
    """A small black digit on white, as a PNG."""
    import io

    from PIL import Image

    im = Image.new("L", (12, 12), 255)
    for k in range(3, 9):
        im.putpixel((6, k), 0)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _digits_bytes(n: int = 30) -> bytes:
    """A small valid digits.npz (``n`` random 8×8 images, labels 0..9), so a command would start
    training on it: checks that must come first are seen to."""
    import io

    import numpy

    rng = numpy.random.default_rng(0)
    buf = io.BytesIO()
    images = rng.integers(0, 17, (n, 8, 8), dtype=numpy.uint8)
    numpy.savez(buf, images=images, target=numpy.arange(n, dtype=numpy.uint8) % 10)
    return buf.getvalue()


def _files(files: dict[str, bytes | str | None], *argv: str) -> Callable[[Path], list[str]]:
    """A case whose inputs are ``files`` (name → bytes, text, or None for a folder) in the working
    folder; the arguments name them relative to it."""

    def setup(folder: Path) -> list[str]:
        for name, data in files.items():
            p = folder / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if data is None:
                p.mkdir()
            else:
                p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return list(argv)

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


def _linked(files: dict[str, bytes | str], link: str, target: str, *argv: str, hard: bool = True) -> Callable[[Path], list[str]]:
    """Like ``_files``, plus ``link``: a hard (or symbolic) link to ``target``."""

    def setup(folder: Path) -> list[str]:
        args = _files(files, *argv)(folder)
        (folder / link).hardlink_to(folder / target) if hard else (folder / link).symlink_to(target)
        return args

    return setup


def _fifo(*argv: str) -> Callable[[Path], list[str]]:
    """A named pipe next to the working folder (a pipe inside it could not be hashed); ``{fifo}``
    in argv is its path."""

    def setup(folder: Path) -> list[str]:
        fifo = folder.parent / "fifo"
        os.mkfifo(fifo)
        return [a.replace("{fifo}", str(fifo)) for a in argv]

    return setup


def _digits_7x9_bytes(n: int = 30) -> bytes:
    """A digits.npz whose images are 7×9, not 8×8 (otherwise valid): the digits models cannot take them."""
    buf = io.BytesIO()
    images = np.random.default_rng(0).integers(0, 17, (n, 7, 9), dtype=np.uint8)
    np.savez(buf, images=images, target=np.arange(n, dtype=np.uint8) % 10)
    return buf.getvalue()


def _digits(files: dict[str, bytes | str | None], *argv: str) -> Callable[[Path], list[str]]:
    """Like ``_files``, with a valid ``d.npz`` besides: without the checks, training would start."""
    return _files({"d.npz": _digits_bytes(), **files}, *argv)


_TRAIN = ("cnn", "train", "--epochs", "1", "--data", "d.npz")
_DEMO = ("demo", "--epochs", "1", "--data", "d.npz")


def _png(name: str, *argv: str, more: dict[str, bytes | str | None] | None = None) -> Callable[[Path], list[str]]:
    def setup(folder: Path) -> list[str]:
        return _files({name: _png_bytes(), **(more or {})}, *argv)(folder)

    return setup


def _png_bomb(width: int = 20_000, height: int = 10_000) -> bytes:
    """A PNG whose header declares width×height 8-bit grey pixels (200 million: more than twice Pillow's
    decompression-bomb limit), with almost no data: Pillow refuses it on opening."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


_CR_TEXT = "the cat sat on the mat. " * 20  # 480 characters, 11 distinct
_CR = ("char-rnn", "train", "t.txt", "--rnn-size", "8", "--batch-size", "2", "--seq-length", "4", "--max-epochs", "1")


@functools.cache
def _charrnn_checkpoint_entries() -> dict[str, bytes]:
    """The zip entries of a checkpoint as ``dlia char-rnn train`` writes it (a tiny LSTM on ``_CR_TEXT``
    after one step, mid-epoch, so it carries a hidden state), made once per session."""
    from dlia.models.charrnn import CharData, CharRNNConfig, CharRNNTrainer
    from dlia.text import CharVocab

    config = CharRNNConfig(rnn_size=8, batch_size=2, seq_length=4, max_epochs=1)
    vocab = CharVocab.from_text(_CR_TEXT)
    trainer = CharRNNTrainer(config, vocab, CharData(vocab.encode(_CR_TEXT), 2, 4))
    trainer.train_step()
    with tempfile.TemporaryDirectory() as d:
        path = trainer.save(d, 2.5)
        with zipfile.ZipFile(path) as z:
            return {i.filename: z.read(i) for i in z.infolist()}


def _charrnn_case(change: Callable[[dict[str, bytes]], None] | None, *argv: str, cnn: bool = False,
                  other: str | None = None, extra_run: str | None = None) -> Callable[[Path], list[str]]:
    """``argv`` in a folder holding ``t.txt`` (``_CR_TEXT``) and ``run/``, a run folder with one char-rnn
    checkpoint that ``change`` damaged (``cnn``: a CNN checkpoint instead); ``other`` is written to ``u.txt``."""

    def setup(folder: Path) -> list[str]:
        entries = dict(_cnn_checkpoint_entries() if cnn else _charrnn_checkpoint_entries())
        if change is not None:
            change(entries)
        (folder / "run").mkdir()
        with zipfile.ZipFile(folder / "run" / "charrnn_epoch000.01_2.5000.npz", "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
        (folder / "t.txt").write_text(_CR_TEXT)
        if extra_run is not None:  # a second run's folder, with a copy of the checkpoint
            (folder / extra_run).mkdir()
            (folder / extra_run / "charrnn_epoch000.02_2.4000.npz").write_bytes(
                (folder / "run" / "charrnn_epoch000.01_2.5000.npz").read_bytes())
        if other is not None:
            (folder / "u.txt").write_text(other)
        return list(argv)

    return setup


def _nan_embedding(entries: dict[str, bytes]) -> None:
    w = np.load(io.BytesIO(entries["model/embedding.weight.npy"]))
    w[0, 0] = np.nan
    entries["model/embedding.weight.npy"] = _npy(w)


def _hidden_as_float64(meta: dict) -> None:
    meta["extra"]["hidden"][0]["dtype"] = "<f8"


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
    # B5: every output path is checked before the work starts
    Case("cnn-train-pictures-is-folder", _digits({"pics": None}, *_TRAIN, "--pictures", "pics"),
         "cannot write --pictures pics: it is a folder"),
    Case("cnn-train-out-is-file", _digits({"run": "x"}, *_TRAIN, "--out", "run"), "--out run: it is a file, not a folder"),
    Case("cnn-train-out-under-file", _digits({"f": "x"}, *_TRAIN, "--out", "f/run"), "f is a file"),
    Case("cnn-train-pictures-under-file", _digits({"f": "x"}, *_TRAIN, "--pictures", "f/p.png"), "f is a file"),
    Case("cnn-train-pictures-unwritable", _digits({}, *_TRAIN, "--pictures", "/proc/dlia/p.png"), "cannot create files in /proc"),
    Case("demo-out-under-file", _digits({"f": "x"}, *_DEMO, "--out", "f/sub"), "f is a file"),
    Case("demo-out-is-file", _digits({"f": "x"}, *_DEMO, "--out", "f"), "cannot write --out f: it is a file"),
    Case("demo-out-unwritable", _digits({}, *_DEMO, "--out", "/proc/dlia-demo"), "cannot create files in /proc"),
    Case("data-get-dir-is-file", _files({"f": "x"}, "data", "get", "digits", "--dir", "f"), "--dir f: it is a file, not a"),
    Case("data-get-dir-under-file", _files({"f": "x"}, "data", "get", "digits", "--dir", "f/sub"), "f is a file"),
    Case("data-get-dir-unwritable", _args("data", "get", "digits", "--dir", "/proc/dlia-data"), "cannot create files in /proc"),
    Case("perceptron-plot-is-folder", _files({"p.png": None}, "perceptron", "--plot", "p.png"), "is a folder"),
    Case("perceptron-plot-is-pipe", _fifo("perceptron", "--plot", "{fifo}"), "not a regular file"),
    Case("xor-plot-under-file", _files({"f": "x"}, "xor", "--steps", "1", "--plot", "f/x.png"), "f is a file"),
    Case("xor-curves-is-folder", _files({"c.png": None}, "xor", "--steps", "1", "--compare", "--seeds", "1", "--curves", "c.png"),
         "cannot write --curves c.png: it is a folder"),
    Case("xor-plot-and-curves-same", _args("xor", "--steps", "1", "--compare", "--seeds", "1", "--plot", "a.png",
                                           "--curves", "./a.png"), "both name"),
    Case("lstsq-plot-is-folder", _files({"p.svg": None}, "lstsq", "--plot", "p.svg"), "is a folder"),
    Case("filter-out-is-folder", _png("in.png", "filter", "in.png", "--kernel", "sharpen", "-o", "out.png",
                                      more={"out.png": None}), "cannot write -o out.png: it is a folder"),
    Case("filter-out-under-file", _png("in.png", "filter", "in.png", "--kernel", "sharpen", "-o", "f/out.png",
                                       more={"f": "x"}), "f is a file"),
    Case("graph-show-out-is-folder", _files({"g.svg": None}, "graph", "show", "xor", "-o", "g.svg"), "is a folder"),
    Case("graph-show-out-under-file", _files({"f": "x"}, "graph", "show", "xor", "-o", "f/g.dot"), "f is a file"),
    Case("perceptron-plot-name-too-long", _args("perceptron", "--plot", "p" * 300 + ".png"), "name too long"),
    Case("filter-out-name-too-long", _png("in.png", "filter", "in.png", "--kernel", "blur", "-o", "o" * 250 + ".png"),
         "the file name is too long"),
    Case("graph-show-out-name-too-long", _args("graph", "show", "xor", "-o", "g" * 250 + ".dot"), "the file name is too long"),
    Case("perceptron-plot-empty-name", _args("perceptron", "--plot", ""), "empty"),
    # B6: an output never overwrites an input
    Case("lstsq-plot-is-data", _files({"in.png": _CSV}, "lstsq", "--data", "in.png", "--plot", "in.png"), "would destroy"),
    Case("lstsq-plot-is-data-hard-link", _linked({"in.png": _CSV}, "plot.png", "in.png", "lstsq", "--data", "in.png",
                                                 "--plot", "plot.png"), "same file as the input --data"),
    Case("lstsq-plot-is-data-symlink", _linked({"in.png": _CSV}, "plot.png", "in.png", "lstsq", "--data", "in.png",
                                               "--plot", "plot.png", hard=False), "same file as the input --data"),
    Case("filter-out-is-input", _png("in.png", "filter", "in.png", "--kernel", "sharpen", "-o", "in.png"), "would destroy"),
    Case("filter-out-is-input-other-spelling", _png("in.png", "filter", "in.png", "--kernel", "sharpen", "-o", "./in.png"),
         "input IN"),
    Case("filter-out-is-kernel-file", _png("in.png", "filter", "in.png", "--kernel", "@k.png", "-o", "k.png",
                                           more={"k.png": "0 0 0\n0 1 0\n0 0 0\n"}), "input --kernel"),
    Case("graph-show-out-is-script", _files({"model.dot": _SCRIPT}, "graph", "show", "model.dot", "-o", "model.dot"),
         "writing would destroy"),
    Case("cnn-train-pictures-is-data", _files({"digits.png": _digits_bytes()}, "cnn", "train", "--epochs", "1",
                                              "--data", "digits.png", "--pictures", "digits.png"), "writing would destroy"),
    # B8: messages
    Case("conv2-empty-entry", _args("conv2", "1,,2"), "empty entry"),
    Case("conv2-trailing-comma", _args("conv2", "1,2;3,4,"), "empty entry"),
    Case("conv2-unknown-option", _args("conv2", "--bogus"), "unrecognized arguments: --bogus"),
    Case("cnn-train-unknown-option", _args("cnn", "train", "--bogus"), "unrecognized arguments"),
    Case("data-list-extra-argument", _args("data", "list", "digits"), "unrecognized arguments: digits"),
    Case("graph-script-exits-with-message", _files({"s.py": "import sys\nsys.exit('custom message')\n"}, "graph", "show",
                                                   "s.py"), "exited with status 1: custom message"),
    Case("cnn-predict-checkpoint-dev-null", _png("d.png", "cnn", "predict", "d.png", "--checkpoint", "/dev/null"),
         "not a regular file"),
    Case("perceptron-lr-overflows", _args("perceptron", "--lr", "1e308"), "diverged: the weights overflowed"),
    Case("xor-lr-diverges", _args("xor", "--steps", "3", "--lr", "1e308"), "training diverged"),
    Case("perceptron-lr-overflows-blobs", _args("perceptron", "--data", "blobs", "--lr", "1e308"), "overflowed"),

    # every command: missing, empty, binary and non-UTF-8 files, bad numbers, outputs
    Case("demo-data-empty", _files({"d.npz": ""}, "demo", "--data", "d.npz"), "empty file"),
    Case("demo-data-binary", _files({"d.npz": _BINARY}, "demo", "--data", "d.npz"), "not a valid digits"),
    Case("demo-data-text", _files({"d.npz": _LATIN1}, "demo", "--data", "d.npz"), "not a valid digits"),
    Case("demo-data-folder-without-digits", _files({"d": None}, "demo", "--data", "d"), "not found"),
    Case("demo-epochs-negative", _args("demo", "--epochs", "-3"), "--epochs"),
    Case("demo-epochs-float", _args("demo", "--epochs", "1.5"), "--epochs"),
    Case("demo-seed-negative", _args("demo", "--seed", "-1"), "--seed"),
    Case("neuron-unknown-gate", _args("neuron", "--gate", "xnor"), "invalid choice"),
    Case("neuron-no-gate", _args("neuron"), "--gate"),
    Case("neuron-seed-text", _args("neuron", "--gate", "and", "--seed", "x"), "--seed"),
    Case("perceptron-lr-zero", _args("perceptron", "--lr", "0"), "--lr"),
    Case("perceptron-lr-nan", _args("perceptron", "--lr", "nan"), "--lr"),
    Case("perceptron-lr-inf", _args("perceptron", "--lr", "inf"), "--lr"),
    Case("perceptron-max-epochs-zero", _args("perceptron", "--max-epochs", "0"), "--max-epochs"),
    Case("perceptron-max-epochs-float", _args("perceptron", "--max-epochs", "1e3"), "--max-epochs"),
    Case("perceptron-unknown-data", _args("perceptron", "--data", "iris"), "invalid choice"),
    Case("perceptron-plot-suffix", _args("perceptron", "--plot", "p.txt"), "cannot write a .txt picture"),
    Case("lstsq-data-empty", _files({"a.csv": ""}, "lstsq", "--data", "a.csv"), "is empty"),
    Case("lstsq-data-binary", _files({"a.csv": _BINARY}, "lstsq", "--data", "a.csv"), "not UTF-8"),
    Case("lstsq-data-latin1", _files({"a.csv": _LATIN1}, "lstsq", "--data", "a.csv"), "not UTF-8"),
    Case("lstsq-data-folder", _files({"a.csv": None}, "lstsq", "--data", "a.csv"), "a.csv"),
    Case("lstsq-data-empty-entry", _files({"a.csv": "1,,2\n3,4,5\n"}, "lstsq", "--data", "a.csv"), "line 1"),
    Case("lstsq-data-one-column", _files({"a.csv": "1\n2\n"}, "lstsq", "--data", "a.csv"), "two columns"),
    Case("lstsq-data-nan", _files({"a.csv": "1,nan\n2,3\n"}, "lstsq", "--data", "a.csv"), "NaN"),
    Case("lstsq-data-huge", _files({"a.csv": "1e200,1\n-1e200,2\n3e200,3\n"}, "lstsq", "--data", "a.csv"), "overflows"),
    Case("lstsq-data-tiny", _files({"a.csv": "1e-300,1\n-1e-300,2\n3e-300,3\n"}, "lstsq", "--data", "a.csv"), "underflows"),
    Case("lstsq-rows-zero", _args("lstsq", "--rows", "0"), "--rows"),
    Case("lstsq-cols-text", _args("lstsq", "--cols", "three"), "--cols"),
    Case("lstsq-eps-negative", _args("lstsq", "--eps", "-1"), "--eps"),
    Case("lstsq-eps-inf", _args("lstsq", "--eps", "inf"), "--eps"),
    Case("lstsq-delta-nan", _args("lstsq", "--delta", "nan"), "--delta"),
    Case("lstsq-max-iter-zero", _args("lstsq", "--max-iter", "0"), "--max-iter"),
    Case("lstsq-more-cols-than-rows", _args("lstsq", "--rows", "2", "--cols", "5"), "dependent columns"),
    Case("xor-hidden-zero", _args("xor", "--hidden", "0"), "--hidden"),
    Case("xor-steps-negative", _args("xor", "--steps", "-5"), "--steps"),
    Case("xor-lr-nan", _args("xor", "--lr", "nan"), "--lr"),
    Case("xor-seeds-zero", _args("xor", "--compare", "--seeds", "0"), "--seeds"),
    Case("xor-unknown-activation", _args("xor", "--activation", "gelu"), "invalid choice"),
    Case("conv2-digit-separator", _args("conv2", "1_000 2"), "'1_000' is not a number"),
    Case("conv2-unbalanced-bracket", _args("conv2", "[1 2"), "unbalanced"),
    Case("lstsq-data-empty-name", _args("lstsq", "--data", ""), "empty"),
    Case("conv2-not-a-number", _args("conv2", "1,x;3,4"), "'x' is not a number"),
    Case("conv2-ragged", _args("conv2", "1 2;3"), "different lengths"),
    Case("conv2-empty", _args("conv2", ""), "no numbers"),
    Case("conv2-a-twice", _args("conv2", "1 2", "--a", "3 4", "--b", "1"), "given twice"),
    Case("conv2-bad-shape", _args("conv2", "--shape", "round"), "invalid choice"),
    Case("conv2-scale-without-xcorr", _args("conv2", "--scale", "biased"), "--scale"),
    Case("filter-input-missing", _args("filter", "no.png", "--kernel", "blur", "-o", "out.png"), "no such file"),
    Case("filter-input-empty", _files({"in.png": ""}, "filter", "in.png", "--kernel", "blur", "-o", "out.png"), "in.png"),
    Case("filter-input-binary", _files({"in.png": _BINARY}, "filter", "in.png", "--kernel", "blur", "-o", "out.png"), "in.png"),
    Case("filter-input-text", _files({"in.png": _LATIN1}, "filter", "in.png", "--kernel", "blur", "-o", "out.png"), "in.png"),
    Case("filter-input-folder", _files({"in.png": None}, "filter", "in.png", "--kernel", "blur", "-o", "out.png"), "in.png"),
    Case("filter-kernel-file-missing", _png("in.png", "filter", "in.png", "--kernel", "@k.txt", "-o", "out.png"), "k.txt"),
    Case("filter-kernel-file-empty", _png("in.png", "filter", "in.png", "--kernel", "@k.txt", "-o", "out.png",
                                          more={"k.txt": ""}), "kernel"),
    Case("filter-kernel-file-binary", _png("in.png", "filter", "in.png", "--kernel", "@k.txt", "-o", "out.png",
                                           more={"k.txt": _BINARY}), "k.txt is not UTF-8"),
    Case("filter-kernel-file-latin1", _png("in.png", "filter", "in.png", "--kernel", "@k.txt", "-o", "out.png",
                                           more={"k.txt": _LATIN1}), "k.txt is not UTF-8"),
    Case("filter-kernel-empty-entry", _png("in.png", "filter", "in.png", "--kernel", "0,,1;0,1,0;0,0,0", "-o", "o.png"),
         "empty entry"),
    Case("filter-kernel-even", _png("in.png", "filter", "in.png", "--kernel", "1,1;1,1", "-o", "out.png"), "odd"),
    Case("filter-divisor-zero", _png("in.png", "filter", "in.png", "--kernel", "blur", "--divisor", "0", "-o", "o.png"),
         "--divisor"),
    Case("filter-offset-nan", _png("in.png", "filter", "in.png", "--kernel", "blur", "--offset", "nan", "-o", "o.png"),
         "--offset"),
    Case("filter-out-unknown-format", _png("in.png", "filter", "in.png", "--kernel", "blur", "-o", "out.xyz"), "out.xyz"),
    Case("cnn-train-data-missing", _args("cnn", "train", "--epochs", "1", "--data", "no.npz"), "not found"),
    Case("cnn-train-data-empty", _files({"d.npz": ""}, "cnn", "train", "--epochs", "1", "--data", "d.npz"), "not a valid digits"),
    Case("cnn-train-data-binary", _files({"d.npz": _BINARY}, "cnn", "train", "--epochs", "1", "--data", "d.npz"),
         "not a valid digits"),
    Case("cnn-train-data-text", _files({"d.npz": _LATIN1}, "cnn", "train", "--epochs", "1", "--data", "d.npz"),
         "not a valid digits"),
    Case("cnn-train-epochs-zero", _args("cnn", "train", "--epochs", "0"), "--epochs"),
    Case("cnn-train-lr-inf", _args("cnn", "train", "--lr", "inf"), "--lr"),
    Case("cnn-train-batch-size-zero", _args("cnn", "train", "--batch-size", "0"), "--batch-size"),
    Case("cnn-train-seed-negative", _args("cnn", "train", "--seed", "-2"), "--seed"),
    Case("cnn-train-pictures-suffix", _args("cnn", "train", "--pictures", "p.gif"), ".gif"),
    Case("cnn-train-device", _args("cnn", "train", "--device", "tpu"), "invalid choice"),
    Case("cnn-predict-image-missing", _args("cnn", "predict", "no.png", "--checkpoint", "c.npz"), "no.png"),
    Case("cnn-predict-image-empty", _files({"i.png": "", "c.npz": _BINARY}, "cnn", "predict", "i.png", "--checkpoint", "c.npz"),
         "i.png"),
    Case("cnn-predict-image-binary", _files({"i.png": _BINARY, "c.npz": _BINARY}, "cnn", "predict", "i.png", "--checkpoint",
                                            "c.npz"), "i.png"),
    Case("cnn-predict-image-text", _files({"i.png": _LATIN1, "c.npz": _BINARY}, "cnn", "predict", "i.png", "--checkpoint",
                                          "c.npz"), "i.png"),
    Case("cnn-predict-image-folder", _files({"i.png": None, "c.npz": _BINARY}, "cnn", "predict", "i.png", "--checkpoint",
                                            "c.npz"), "i.png"),
    Case("cnn-predict-checkpoint-missing", _png("d.png", "cnn", "predict", "d.png", "--checkpoint", "no.npz"), "not found"),
    Case("cnn-predict-checkpoint-empty", _png("d.png", "cnn", "predict", "d.png", "--checkpoint", "c.npz", more={"c.npz": ""}),
         "c.npz is not a readable dlia checkpoint (empty file)"),
    Case("cnn-predict-checkpoint-binary", _png("d.png", "cnn", "predict", "d.png", "--checkpoint", "c.npz",
                                               more={"c.npz": _BINARY}), "c.npz"),
    Case("cnn-predict-checkpoint-text", _png("d.png", "cnn", "predict", "d.png", "--checkpoint", "c.npz",
                                             more={"c.npz": _LATIN1}), "c.npz"),
    Case("cnn-predict-no-checkpoint-in-folder", _png("d.png", "cnn", "predict", "d.png", "--out", "run", more={"run": None}),
         "no checkpoint found in run"),
    Case("cnn-predict-out-is-file", _png("d.png", "cnn", "predict", "d.png", "--out", "d.png"), "--out d.png is a file"),
    Case("cnn-fcn-sizes-empty-entry", _args("cnn", "fcn", "--sizes", "8,,12"), "--sizes"),
    Case("cnn-fcn-sizes-text", _args("cnn", "fcn", "--sizes", "big"), "--sizes"),
    Case("cnn-fcn-sizes-too-small", _args("cnn", "fcn", "--sizes", "4"), "at least 8"),
    Case("cnn-fcn-sizes-empty", _args("cnn", "fcn", "--sizes", ""), "--sizes"),
    Case("cnn-fcn-epochs-zero", _args("cnn", "fcn", "--epochs", "0"), "--epochs"),
    Case("cnn-fcn-data-missing", _args("cnn", "fcn", "--epochs", "1", "--data", "no.npz"), "not found"),
    Case("cnn-fcn-data-empty", _files({"d.npz": ""}, "cnn", "fcn", "--epochs", "1", "--data", "d.npz"), "not a valid digits"),
    Case("cnn-fcn-data-binary", _files({"d.npz": _BINARY}, "cnn", "fcn", "--epochs", "1", "--data", "d.npz"),
         "not a valid digits"),
    Case("cnn-fcn-data-text", _files({"d.npz": _LATIN1}, "cnn", "fcn", "--epochs", "1", "--data", "d.npz"), "not a valid digits"),
    Case("graph-show-script-missing", _args("graph", "show", "no/such.py"), "no such file"),
    Case("graph-show-script-empty", _files({"s.py": ""}, "graph", "show", "s.py"), "built no graph nodes"),
    Case("graph-show-script-binary", _files({"s.py": _BINARY}, "graph", "show", "s.py"), "s.py"),
    Case("graph-show-script-latin1", _files({"s.py": _LATIN1}, "graph", "show", "s.py"), "s.py"),
    Case("graph-show-out-suffix", _args("graph", "show", "xor", "-o", "g.jpg"), "must end in"),
    Case("graph-show-batch-zero", _args("graph", "show", "xor", "--batch", "0"), "--batch"),
    Case("graph-show-batch-text", _args("graph", "show", "xor", "--batch", "many"), "--batch"),
    Case("data-get-unknown", _args("data", "get", "mnist"), "unknown data set"),
    Case("data-get-no-name", _args("data", "get"), "required"),
    Case("data-get-offline", _args("data", "get", "simlex999"), "downloads are off"),
    Case("data-path-unknown", _args("data", "path", "mnist"), "unknown data set"),
    Case("data-path-not-downloaded", _args("data", "path", "simlex999"), "not downloaded"),
    Case("data-no-action", _args("data"), "required"),
    Case("xor-hidden-too-large", _args("xor", "--hidden", "100000000000", "--steps", "1"), "--hidden 100000000000"),
    Case("xor-compare-seeds-too-large", _args("xor", "--compare", "--seeds", "100000000000", "--steps", "1"),
         "--seeds 100000000000"),
    Case("cnn-train-digits-not-8x8", _files({"d.npz": _digits_7x9_bytes()}, *_TRAIN, "--out", "run"),
         "holds 7×9 images (images of shape (30, 7, 9))"),
    Case("cnn-fcn-digits-not-8x8", _files({"d.npz": _digits_7x9_bytes()}, "cnn", "fcn", "--epochs", "1", "--data", "d.npz"),
         "holds 7×9 images"),
    Case("demo-digits-not-8x8", _files({"d.npz": _digits_7x9_bytes()}, *_DEMO), "holds 7×9 images"),
    Case("demo-data-missing", _args("demo", "--data", "no.npz"), "no.npz"),
    # an empty name is refused like --plot '': not the current folder, the standard output or the default
    Case("cnn-train-out-empty-name", _digits({}, *_TRAIN, "--out", ""), "empty"),
    Case("cnn-train-data-empty-name", _args("cnn", "train", "--epochs", "1", "--data", ""), "empty"),
    Case("graph-show-output-empty-name", _args("graph", "show", "xor", "-o", ""), "empty"),
    Case("cnn-predict-checkpoint-empty-name", _png("in.png", "cnn", "predict", "in.png", "--checkpoint", ""), "empty"),
    Case("cnn-predict-out-empty-name", _png("in.png", "cnn", "predict", "in.png", "--out", ""), "empty"),
    Case("cnn-predict-image-empty-name", _args("cnn", "predict", "", "--checkpoint", "c.npz"), "empty"),
    Case("cnn-fcn-data-empty-name", _args("cnn", "fcn", "--data", ""), "empty"),
    Case("demo-out-empty-name", _digits({}, *_DEMO, "--out", ""), "empty"),
    Case("demo-data-empty-name", _args("demo", "--data", ""), "empty"),
    Case("data-get-dir-empty-name", _args("data", "get", "digits", "--dir", ""), "empty"),
    Case("filter-output-empty-name", _png("in.png", "filter", "in.png", "--kernel", "blur", "-o", ""), "empty"),
    Case("filter-input-empty-name", _args("filter", "", "--kernel", "blur", "-o", "out.png"), "empty"),
    Case("graph-show-source-empty-name", _args("graph", "show", ""), "empty"),
    # --- end of output paths, overwritten inputs, messages ---
    Case("lstsq-missing-data", _args("lstsq", "--data", "/no/such/file.csv"), "no such file"),
    # --- char-rnn (issue #11): text files, sizes, outputs, checkpoints, sampling ---
    Case("char-rnn-train-empty-file", _files({"t.txt": ""}, *_CR), "t.txt is empty"),
    Case("char-rnn-train-binary-file", _files({"t.txt": _BINARY}, *_CR), "binary file, not text (a NUL byte at offset 0)"),
    Case("char-rnn-train-not-utf8", _files({"t.txt": _LATIN1}, *_CR), "not UTF-8 text (byte 0xE9 at offset 3)"),
    Case("char-rnn-train-missing-file", _args(*_CR), "no such file: t.txt"),
    Case("char-rnn-train-file-is-folder", _files({"t.txt": None}, *_CR), "t.txt is a folder"),
    Case("char-rnn-train-file-is-pipe", _fifo("char-rnn", "train", "{fifo}", "--checkpoint-dir", "run"),
         "not a regular file"),  # reading it would block forever
    Case("char-rnn-train-file-is-device", _args("char-rnn", "train", "/dev/zero", "--checkpoint-dir", "run"),
         "/dev/zero is not a regular file"),  # reading it would never end
    Case("char-rnn-train-no-training-batch", _files({"t.txt": _CR_TEXT}, *_CR, "--train-frac", "0.01"),
         "less than one batch"),
    Case("char-rnn-train-file-empty-name", _args("char-rnn", "train", ""), "empty"),
    Case("char-rnn-train-shorter-than-a-batch", _files({"t.txt": "to be or not"}, "char-rnn", "train", "t.txt"),
         "t.txt: the text has 12 characters; batch size 50 × sequence length 50 needs at least 5001"),
    Case("char-rnn-train-rnn-size-absurd", _files({"t.txt": _CR_TEXT}, *_CR, "--rnn-size", "100000000"),
         "--rnn-size 100000000 --num-layers 2 --batch-size 2 --seq-length 4 would need"),
    Case("char-rnn-train-num-layers-absurd", _files({"t.txt": _CR_TEXT}, *_CR, "--num-layers", "1000000000"), "would need"),
    Case("char-rnn-train-rnn-size-zero", _files({"t.txt": _CR_TEXT}, *_CR, "--rnn-size", "0"), "--rnn-size"),
    Case("char-rnn-train-batch-size-negative", _files({"t.txt": _CR_TEXT}, *_CR, "--batch-size", "-2"), "--batch-size"),
    Case("char-rnn-train-seq-length-zero", _files({"t.txt": _CR_TEXT}, *_CR, "--seq-length", "0"), "--seq-length"),
    Case("char-rnn-train-max-epochs-zero", _files({"t.txt": _CR_TEXT}, *_CR, "--max-epochs", "0"), "--max-epochs"),
    Case("char-rnn-train-eval-every-zero", _files({"t.txt": _CR_TEXT}, *_CR, "--eval-every", "0"), "--eval-every"),
    Case("char-rnn-train-learning-rate-zero", _files({"t.txt": _CR_TEXT}, *_CR, "--learning-rate", "0"), "--learning-rate"),
    Case("char-rnn-train-lr-decay-above-one", _files({"t.txt": _CR_TEXT}, *_CR, "--lr-decay", "1.5"), "--lr-decay"),
    Case("char-rnn-train-train-frac-above-one", _files({"t.txt": _CR_TEXT}, *_CR, "--train-frac", "1.5"), "--train-frac"),
    Case("char-rnn-train-val-frac-zero", _files({"t.txt": _CR_TEXT}, *_CR, "--val-frac", "0"), "--val-frac"),
    Case("char-rnn-train-fractions-above-one", _files({"t.txt": _CR_TEXT}, *_CR, "--train-frac", "0.9", "--val-frac", "0.2"),
         "--train-frac 0.9 and --val-frac 0.2 add up to more than 1"),
    Case("char-rnn-train-dropout-one", _files({"t.txt": _CR_TEXT}, *_CR, "--dropout", "1"), "--dropout"),
    Case("char-rnn-train-grad-clip-negative", _files({"t.txt": _CR_TEXT}, *_CR, "--grad-clip", "-1"), "--grad-clip"),
    Case("char-rnn-train-max-time-zero", _files({"t.txt": _CR_TEXT}, *_CR, "--max-time", "0"), "--max-time"),
    Case("char-rnn-train-unknown-model", _files({"t.txt": _CR_TEXT}, *_CR, "--model", "transformer"), "invalid choice"),
    Case("char-rnn-train-checkpoint-dir-is-file", _files({"t.txt": _CR_TEXT, "cv": "x"}, *_CR, "--checkpoint-dir", "cv"),
         "cannot write --checkpoint-dir cv: it is a file, not a folder"),
    Case("char-rnn-train-checkpoint-dir-unwritable", _files({"t.txt": _CR_TEXT}, *_CR, "--checkpoint-dir", "/proc/dlia-cv"),
         "cannot create files in /proc"),
    Case("char-rnn-train-checkpoint-dir-empty-name", _files({"t.txt": _CR_TEXT}, *_CR, "--checkpoint-dir", ""), "empty"),
    Case("char-rnn-train-checkpoint-dir-holds-a-run", _charrnn_case(None, *_CR, "--checkpoint-dir", "run"),
         "run already holds checkpoints of an earlier run"),
    Case("char-rnn-resume-into-another-runs-folder",
         _charrnn_case(lambda e: None, *_CR, "--resume", "run/charrnn_epoch000.01_2.5000.npz", "--checkpoint-dir", "other",
                       extra_run="other"),
         "--checkpoint-dir other already holds checkpoints of another run"),
    Case("char-rnn-resume-missing", _files({"t.txt": _CR_TEXT}, *_CR, "--resume", "nope.npz"), "no such checkpoint"),
    Case("char-rnn-resume-empty-folder", _files({"t.txt": _CR_TEXT, "cv": None}, *_CR, "--resume", "cv"),
         "no char-rnn checkpoint in cv"),
    Case("char-rnn-resume-corrupt", _files({"t.txt": _CR_TEXT, "c.npz": _BINARY}, *_CR, "--resume", "c.npz"),
         "not a readable dlia checkpoint"),
    Case("char-rnn-resume-cnn-checkpoint", _charrnn_case(None, *_CR, "--resume", "run", cnn=True),
         "not a char-rnn checkpoint (it holds a DigitsCNN model"),
    Case("char-rnn-resume-other-text", _charrnn_case(None, "char-rnn", "train", "u.txt", "--resume", "run"), "no such file"),
    Case("char-rnn-resume-text-with-new-characters",
         _charrnn_case(None, "char-rnn", "train", "u.txt", "--resume", "run", other=_CR_TEXT + "!"),
         "u.txt is not the text run/charrnn_epoch000.01_2.5000.npz was trained on (character '!'"),
    Case("char-rnn-resume-same-characters-other-text",
         _charrnn_case(None, "char-rnn", "train", "u.txt", "--resume", "run", other=_CR_TEXT[::-1]),
         "was trained on another text"),
    Case("char-rnn-resume-damaged-hidden-state", _charrnn_case(_edit_meta(_hidden_as_float64), *_CR, "--resume", "run"),
         "corrupt training state: expected a float32 array of shape (2, 2, 8)"),
    Case("char-rnn-resume-nan-best-loss",
         _charrnn_case(_edit_meta(lambda m: m["extra"].update(best_val_loss=float("nan"))), *_CR, "--resume", "run"),
         "the best validation loss is damaged"),
    Case("char-rnn-resume-history-not-numbers",
         _charrnn_case(_edit_meta(lambda m: m.update(history={"train_loss": ["x"]})), *_CR, "--resume", "run"),
         "the loss history holds something other than numbers"),
    Case("char-rnn-resume-nan-weights", _charrnn_case(_nan_embedding, *_CR, "--resume", "run"),
         "NaN or infinite values in 'model/embedding.weight'"),
    Case("char-rnn-plot-missing", _args("char-rnn", "plot", "nope.npz", "-o", "l.png"), "no such checkpoint or folder: nope.npz"),
    Case("char-rnn-plot-corrupt", _files({"c.npz": _BINARY}, "char-rnn", "plot", "c.npz", "-o", "l.png"),
         "not a readable dlia checkpoint"),
    Case("char-rnn-plot-cnn-checkpoint", _charrnn_case(None, "char-rnn", "plot", "run", "-o", "l.png", cnn=True),
         "not a char-rnn checkpoint"),
    Case("char-rnn-plot-over-its-checkpoint",
         _charrnn_case(None, "char-rnn", "plot", "run/charrnn_epoch000.01_2.5000.npz",
                       "-o", "run/charrnn_epoch000.01_2.5000.npz"),
         "cannot write"),
    Case("char-rnn-plot-output-in-missing-root", _charrnn_case(None, "char-rnn", "plot", "run", "-o", "/proc/x/l.png"),
         "cannot"),
    Case("char-rnn-plot-no-output", _charrnn_case(None, "char-rnn", "plot", "run"), "-o/--output"),
    Case("char-rnn-sample-missing", _args("char-rnn", "sample", "nope.npz"), "no such checkpoint or folder: nope.npz"),
    Case("char-rnn-sample-empty-folder", _files({"cv": None}, "char-rnn", "sample", "cv"), "no char-rnn checkpoint in cv"),
    Case("char-rnn-sample-corrupt", _files({"c.npz": _BINARY}, "char-rnn", "sample", "c.npz"), "not a readable dlia checkpoint"),
    Case("char-rnn-sample-weight-missing", _charrnn_case(lambda e: e.pop("model/decoder.bias.npy"), "char-rnn", "sample", "run"),
         "its config asks for a 2-layer lstm (11 weights), but it holds 10 weights"),
    Case("char-rnn-sample-cnn-checkpoint", _charrnn_case(None, "char-rnn", "sample", "run", cnn=True),
         "not a char-rnn checkpoint"),
    Case("char-rnn-sample-mismatched-checkpoint",
         _charrnn_case(_edit_meta(lambda m: m["config"].update(rnn_size=100000000)), "char-rnn", "sample", "run"),
         "its config and vocabulary ask for embedding.weight of shape (11, 100000000), but the weights are (11, 8)"),
    Case("char-rnn-sample-vocabulary-not-matching", _charrnn_case(_edit_meta(lambda m: m["vocab"].append("~")),
                                                                  "char-rnn", "sample", "run"), "ask for embedding.weight"),
    Case("char-rnn-sample-unsorted-vocabulary", _charrnn_case(_edit_meta(lambda m: m["vocab"].reverse()),
                                                              "char-rnn", "sample", "run"), "not sorted"),
    Case("char-rnn-sample-unknown-config-key", _charrnn_case(_edit_meta(lambda m: m["config"].update(layers=3)),
                                                             "char-rnn", "sample", "run"),
         "unknown char-rnn config keys: layers"),
    Case("char-rnn-sample-nan-weights", _charrnn_case(_nan_embedding, "char-rnn", "sample", "run"), "NaN or infinite"),
    Case("char-rnn-sample-unknown-prime-character", _charrnn_case(None, "char-rnn", "sample", "run", "--prime", "the Zoo"),
         "the prime character 'Z' (U+005A) is not in the vocabulary"),
    Case("char-rnn-sample-temperature-zero", _charrnn_case(None, "char-rnn", "sample", "run", "--temperature", "0"),
         "--temperature"),
    Case("char-rnn-sample-temperature-nan", _charrnn_case(None, "char-rnn", "sample", "run", "--temperature", "nan"),
         "--temperature"),
    Case("char-rnn-sample-length-zero", _charrnn_case(None, "char-rnn", "sample", "run", "--length", "0"), "--length"),
    Case("char-rnn-sample-top-k-zero", _charrnn_case(None, "char-rnn", "sample", "run", "--top-k", "0"), "--top-k"),
    Case("char-rnn-sample-unknown-mode", _charrnn_case(None, "char-rnn", "sample", "run", "--sample", "beam"), "invalid choice"),
    Case("char-rnn-sample-seed-negative", _charrnn_case(None, "char-rnn", "sample", "run", "--seed", "-1"), "--seed"),
    Case("char-rnn-sample-checkpoint-dev-null", _args("char-rnn", "sample", "/dev/null"), "not a regular file"),
]


# -- word2vec -------------------------------------------------------------------------------------------

_W2V_TEXT = "".join(f"the cat sat on the mat number {i % 7}\n" for i in range(60))  # every word at least 5 times
_W2V_WORDS = ["the", "cat", "sat", "on", "mat"]


@functools.lru_cache
def _w2v_vectors(binary: bool = True) -> bytes:
    from dlia.models.word2vec import KeyedVectors

    kv = KeyedVectors(_W2V_WORDS, np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "v"
        kv.save_word2vec_format(path, binary=binary)
        return path.read_bytes()


@functools.lru_cache
def _w2v_checkpoint_entries() -> dict[str, bytes]:
    """The entries of a real word2vec checkpoint of a run on ``_W2V_TEXT`` (the CLI's own writer)."""
    from dlia.cli.word2vec import _fingerprint, _save_checkpoint
    from dlia.models.word2vec import Word2Vec, Word2VecConfig
    from dlia.text import WordVocab, count_words, encode_corpus

    with tempfile.TemporaryDirectory() as d:
        text = Path(d) / "c.txt"
        text.write_text(_W2V_TEXT)
        vocab = WordVocab.build(count_words(text).counts, min_count=5)
        corpus = encode_corpus(text, vocab)
        model = Word2Vec(vocab.words, vocab.counts, Word2VecConfig(vector_size=4, epochs=2))
        model.train(corpus, until_epoch=1)
        _save_checkpoint(Path(d) / "w.npz", model, vocab, _fingerprint(corpus), "c.txt")
        with zipfile.ZipFile(Path(d) / "w.npz") as z:
            return {name: z.read(name) for name in z.namelist()}


def _w2v_case(change: Callable[[dict[str, bytes]], None] | None, *argv: str,
              other: str | None = None) -> Callable[[Path], list[str]]:
    """``argv`` in a folder holding ``c.txt`` (``_W2V_TEXT``), ``w.ckpt.npz`` (a checkpoint of a run on it,
    which ``change`` damaged) and ``v.bin`` (vectors); ``other`` is written to ``u.txt``."""

    def setup(folder: Path) -> list[str]:
        entries = dict(_w2v_checkpoint_entries())
        if change is not None:
            change(entries)
        with zipfile.ZipFile(folder / "w.ckpt.npz", "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
        (folder / "c.txt").write_text(_W2V_TEXT)
        (folder / "v.bin").write_bytes(_w2v_vectors())
        if other is not None:
            (folder / "u.txt").write_text(other)
        return list(argv)

    return setup


def _nan_syn0(entries: dict[str, bytes]) -> None:
    w = np.load(io.BytesIO(entries["model/syn0.npy"]))
    w[0, 0] = np.nan
    entries["model/syn0.npy"] = _npy(w)


def _broken_utf8_vectors() -> bytes:
    return _w2v_vectors().replace(b"cat ", b"c\xffat ", 1)


_W2T = ("word2vec", "train", "c.txt")
_WV = {"v.bin": _w2v_vectors()}
_W2V_CASES = [
    Case("word2vec-train-missing-corpus", _args("word2vec", "train", "nope.txt"), "no such file"),
    Case("word2vec-train-empty-corpus", _write("c.txt", "", "word2vec", "train", "{f}"), "empty"),
    Case("word2vec-train-blank-corpus", _write("c.txt", " \n\n\t\n", "word2vec", "train", "{f}"), "no words"),
    Case("word2vec-train-binary-corpus", _write("c.bin", _BINARY, "word2vec", "train", "{f}"), "binary"),
    Case("word2vec-train-latin1-corpus", _write("c.txt", _LATIN1, "word2vec", "train", "{f}"), "not UTF-8"),
    Case("word2vec-train-corpus-fifo", _fifo("word2vec", "train", "{fifo}"), "not a regular file"),
    Case("word2vec-train-corpus-folder", _files({"d": None}, "word2vec", "train", "d"), "folder"),
    Case("word2vec-train-every-word-below-min-count", _write("c.txt", "a b c\n", "word2vec", "train", "{f}"),
         "try a lower --min-count"),
    Case("word2vec-train-output-is-corpus", _files({"c.txt": _W2V_TEXT}, *_W2T, "-o", "c.txt"), "the input CORPUS"),
    Case("word2vec-train-output-is-folder", _files({"c.txt": _W2V_TEXT, "out": None}, *_W2T, "-o", "out"), "it is a folder"),
    Case("word2vec-train-output-unwritable", _files({"c.txt": _W2V_TEXT}, *_W2T, "-o", "/proc/x/v.bin"),
         "cannot write --output"),
    Case("word2vec-train-save-vocab-is-corpus", _files({"c.txt": _W2V_TEXT}, *_W2T, "--save-vocab", "c.txt"),
         "the input CORPUS"),
    Case("word2vec-train-checkpoint-is-output", _files({"c.txt": _W2V_TEXT}, *_W2T, "--checkpoint", "vectors.bin"),
         "--output and --checkpoint name the same file"),
    Case("word2vec-train-negative-zero-without-hs", _files({"c.txt": _W2V_TEXT}, *_W2T, "--negative", "0"), "--hs"),
    Case("word2vec-train-size-absurd", _files({"c.txt": _W2V_TEXT}, *_W2T, "--size", "10000000000000"),
         "--size must be within 1..1,000,000"),
    Case("word2vec-train-size-exceeds-memory",  # 30,000 words × 1,000,000 floats × 2 matrices: 240 GB
         _files({"c.txt": "".join(f"w{i} " * 5 + "\n" for i in range(30000))}, *_W2T, "--size", "1000000"), "would need"),
    Case("word2vec-train-alpha-diverges", _files({"c.txt": _W2V_TEXT}, *_W2T, "--alpha", "1e30", "--threads", "1"),
         "training diverged"),
    Case("word2vec-train-window-wraps", _files({"c.txt": _W2V_TEXT}, *_W2T, "--window", "4294967297"), "--window must be"),
    Case("word2vec-train-resume-missing-corpus", _w2v_case(None, "word2vec", "train", "nosuch.txt", "--resume", "w.ckpt.npz"),
         "no such file"),
    Case("word2vec-train-resume-negative-position",
         _w2v_case(_edit_meta(lambda m: m["extra"].update(chunks_done=-5)), *_W2T, "--resume", "w.ckpt.npz"), "damaged"),
    Case("word2vec-train-resume-zero-counts",
         _w2v_case(_edit_meta(lambda m: m["extra"].update(counts=[0] * len(m["extra"]["counts"]))), *_W2T,
                   "--resume", "w.ckpt.npz"), "w.ckpt.npz"),
    Case("word2vec-train-resume-float-window",
         _w2v_case(_edit_meta(lambda m: m["config"].update(window=2.5)), *_W2T, "--resume", "w.ckpt.npz"), "damaged"),
    Case("word2vec-train-size-zero", _files({"c.txt": _W2V_TEXT}, *_W2T, "--size", "0"), "--size"),
    Case("word2vec-train-window-zero", _files({"c.txt": _W2V_TEXT}, *_W2T, "--window", "0"), "--window"),
    Case("word2vec-train-sample-nan", _files({"c.txt": _W2V_TEXT}, *_W2T, "--sample", "nan"), "--sample"),
    Case("word2vec-train-alpha-negative", _files({"c.txt": _W2V_TEXT}, *_W2T, "--alpha", "-1"), "--alpha"),
    Case("word2vec-train-unknown-model", _files({"c.txt": _W2V_TEXT}, *_W2T, "--model", "glove"), "invalid choice"),
    Case("word2vec-train-seed-negative", _files({"c.txt": _W2V_TEXT}, *_W2T, "--seed", "-1"), "--seed"),
    Case("word2vec-train-interrupted-run-there", _files({"c.txt": _W2V_TEXT, "vectors.bin.ckpt.npz": b"x"}, *_W2T),
         "holds an interrupted run"),
    Case("word2vec-train-resume-missing", _files({"c.txt": _W2V_TEXT}, *_W2T, "--resume", "no.npz"), "no such checkpoint"),
    Case("word2vec-train-resume-corrupt", _files({"c.txt": _W2V_TEXT, "r.npz": _BINARY}, *_W2T, "--resume", "r.npz"), "r.npz"),
    Case("word2vec-train-resume-charrnn-checkpoint",
         _charrnn_case(None, "word2vec", "train", "t.txt", "--resume", "run/charrnn_epoch000.01_2.5000.npz"),
         "not a word2vec checkpoint"),
    Case("word2vec-train-resume-other-corpus", _w2v_case(None, "word2vec", "train", "u.txt", "--resume", "w.ckpt.npz",
                                                         other=_W2V_TEXT.replace("cat", "dog")),
         "not the corpus w.ckpt.npz was trained on"),
    Case("word2vec-train-resume-damaged-config",
         _w2v_case(_edit_meta(lambda m: m["config"].update(window=0)), *_W2T, "--resume", "w.ckpt.npz"), "damaged"),
    Case("word2vec-train-resume-unknown-setting",
         _w2v_case(_edit_meta(lambda m: m["config"].update(layers=3)), *_W2T, "--resume", "w.ckpt.npz"), "layers"),
    Case("word2vec-train-resume-vocabulary-not-matching",
         _w2v_case(_edit_meta(lambda m: (m["vocab"].append("dog"), m["extra"]["counts"].append(5))), *_W2T,
                   "--resume", "w.ckpt.npz"), "ask for syn0"),
    Case("word2vec-train-resume-no-position",
         _w2v_case(_edit_meta(lambda m: m["extra"].update(chunks_done="x")), *_W2T, "--resume", "w.ckpt.npz"),
         "where the run stopped"),
    Case("word2vec-train-resume-nan-weights", _w2v_case(_nan_syn0, *_W2T, "--resume", "w.ckpt.npz"), "NaN or infinite"),
    Case("word2vec-similar-missing-vectors", _args("word2vec", "similar", "cat"), "no such vectors file"),
    Case("word2vec-similar-vectors-folder", _files({"d": None}, "word2vec", "similar", "cat", "-v", "d"), "folder"),
    Case("word2vec-similar-truncated-vectors", _files({"v.bin": _w2v_vectors()[:40]}, "word2vec", "similar", "cat", "-v",
                                                      "v.bin"), "truncated"),
    Case("word2vec-similar-non-numeric-vectors", _files({"v.txt": "2 3\na 1 2 x\nb 1 2 3\n"}, "word2vec", "similar", "a",
                                                        "-v", "v.txt"), "not a number"),
    Case("word2vec-similar-absurd-header", _files({"v.txt": "99999999999 100\n"}, "word2vec", "similar", "a", "-v", "v.txt"),
         "header"),
    Case("word2vec-similar-binary-garbage", _files({"v.bin": _BINARY}, "word2vec", "similar", "a", "-v", "v.bin"), "v.bin"),
    Case("word2vec-similar-broken-utf8-word", _files({"v.bin": _broken_utf8_vectors()}, "word2vec", "similar", "the",
                                                     "-v", "v.bin"), "UTF-8"),
    Case("word2vec-similar-unknown-word", _files(_WV, "word2vec", "similar", "dog", "-v", "v.bin"),
         "word 'dog' is not in the vocabulary"),
    Case("word2vec-similar-output-bad-suffix", _files(_WV, "word2vec", "similar", "cat", "-v", "v.bin", "-o", "n.bmp"),
         "cannot write a .bmp picture"),
    Case("word2vec-similar-topn-zero", _files(_WV, "word2vec", "similar", "cat", "-v", "v.bin", "--topn", "0"), "--topn"),
    Case("word2vec-analogy-unknown-word", _files(_WV, "word2vec", "analogy", "cat", "dog", "mat", "-v", "v.bin"),
         "word 'dog' is not in the vocabulary"),
    Case("word2vec-analogy-unknown-method", _files(_WV, "word2vec", "analogy", "cat", "on", "mat", "-v", "v.bin",
                                                   "--method", "sub"), "invalid choice"),
    Case("word2vec-eval-missing-questions", _files(_WV, "word2vec", "eval", "-v", "v.bin", "--questions", "q.txt"),
         "no such file"),
    Case("word2vec-eval-malformed-question", _files({**_WV, "q.txt": ": s\nthe cat sat\n"}, "word2vec", "eval", "-v", "v.bin",
                                                    "--questions", "q.txt"), "line 2"),
    Case("word2vec-eval-pairs-nan-score", _files({**_WV, "p.txt": "the cat 1\nsat on nan\n"}, "word2vec", "eval", "-v",
                                                 "v.bin", "--pairs", "p.txt"), "line 2"),
    Case("word2vec-eval-questions-folder", _files({**_WV, "q": None}, "word2vec", "eval", "-v", "v.bin", "--questions", "q"),
         "q is a folder"),
    Case("word2vec-eval-malformed-pairs", _files({**_WV, "p.txt": "the cat x\n"}, "word2vec", "eval", "-v", "v.bin",
                                                 "--pairs", "p.txt"), "p.txt"),
    Case("word2vec-plot-unknown-list", _files(_WV, "word2vec", "plot", "--pairs", "colours", "-o", "p.png", "-v", "v.bin"),
         "no pair list or file named 'colours'"),
    Case("word2vec-plot-malformed-pairs-file", _files({**_WV, "p.txt": "the\n"}, "word2vec", "plot", "--pairs", "p.txt",
                                                      "-o", "p.png", "-v", "v.bin"), "line 1"),
    Case("word2vec-plot-too-few-pairs", _files({**_WV, "p.txt": "the cat\ndog fox\n"}, "word2vec", "plot", "--pairs",
                                               "p.txt", "-o", "p.png", "-v", "v.bin"), "at least 2 pairs"),
    Case("word2vec-plot-output-is-vectors", _files({"v.png": _w2v_vectors()}, "word2vec", "plot", "--pairs", "male-female",
                                                   "-o", "v.png", "-v", "v.png"), "the input --vectors"),
    Case("word2vec-plot-no-output", _files(_WV, "word2vec", "plot", "--pairs", "male-female", "-v", "v.bin"), "-o/--output"),
    Case("word2vec-plot-neighbours-unknown-word", _files(_WV, "word2vec", "plot", "--neighbours", "dog", "-o", "n.png",
                                                         "-v", "v.bin"), "word 'dog' is not in the vocabulary"),
]
CASES += _W2V_CASES


# -- dlia ngram ----------------------------------------------------------------------------------------

_NG_TEXT = "the cat sat on the mat\nthe dog sat on the log\n"
#: a valid bigram ARPA file over the words "the" and "cat"
_NG_ARPA = """\\data\\
ngram 1=5
ngram 2=3

\\1-grams:
-99\t<s>\t-0.3
-0.6\t</s>
-0.9\t<unk>
-0.4\tthe\t-0.2
-0.5\tcat\t-0.1

\\2-grams:
-0.1\t<s> the
-0.2\tthe cat
-0.1\tcat </s>

\\end\\
"""
_NGT = ("ngram", "train", "c.txt")
_NGM = {"m.arpa": _NG_ARPA, "t.txt": "the cat\n"}


def _ng_npz(change: Callable[[dict[str, np.ndarray], dict], None]) -> bytes:
    """A bigram n-gram checkpoint of ``_NG_TEXT`` with ``change(arrays, meta)`` applied (arrays named ``keys_2``...)."""
    from dlia.models.ngram import NGramLM

    with tempfile.TemporaryDirectory() as d:
        path = NGramLM(2, "kn").fit([line.split() for line in _NG_TEXT.splitlines()]).save(Path(d) / "m.npz")
        with np.load(path) as z:
            arrays = {name.removeprefix("model/"): z[name] for name in z.files}
    meta = json.loads(arrays.pop("__meta__").tobytes())
    change(arrays, meta)
    arrays = {f"model/{n}": a for n, a in arrays.items()}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _ng_reverse_keys(arrays: dict[str, np.ndarray], meta: dict) -> None:
    arrays["keys_2"] = arrays["keys_2"][::-1].copy()


def _ng_prob_above_one(arrays: dict[str, np.ndarray], meta: dict) -> None:
    arrays["probs_2"] = arrays["probs_2"] + 1.0

_NG_CASES = [
    Case("ngram-train-missing-corpus", _args(*_NGT), "no such file: c.txt"),
    Case("ngram-train-empty-corpus", _files({"c.txt": ""}, *_NGT), "is empty"),
    Case("ngram-train-whitespace-corpus", _files({"c.txt": " \n\t\n"}, *_NGT), "holds no words"),
    Case("ngram-train-binary-corpus", _files({"c.txt": _BINARY}, *_NGT), "binary file"),
    Case("ngram-train-latin1-corpus", _files({"c.txt": _LATIN1}, *_NGT), "not UTF-8"),
    Case("ngram-train-corpus-folder", _files({"c.txt": None}, *_NGT), "folder"),
    Case("ngram-train-corpus-holds-bos", _files({"c.txt": "<s> the cat\n"}, *_NGT), "holds the token <s>"),
    Case("ngram-train-order-zero", _files({"c.txt": _NG_TEXT}, *_NGT, "--order", "0"), "--order"),
    Case("ngram-train-order-negative", _files({"c.txt": _NG_TEXT}, *_NGT, "--order", "-3"), "--order"),
    Case("ngram-train-order-not-a-number", _files({"c.txt": _NG_TEXT}, *_NGT, "--order", "three"), "--order"),
    Case("ngram-train-order-absurd", _files({"c.txt": _NG_TEXT}, *_NGT, "--order", str(10**6)), "--order 1000000"),
    Case("ngram-train-order-beyond-memory", _files({"c.txt": _NG_TEXT}, *_NGT, "--order", str(10**15)), "memory"),
    Case("ngram-train-k-zero", _files({"c.txt": _NG_TEXT}, *_NGT, "--smoothing", "add-k", "--k", "0"), "--k"),
    Case("ngram-train-k-negative", _files({"c.txt": _NG_TEXT}, *_NGT, "--smoothing", "add-k", "--k", "-1"), "--k"),
    Case("ngram-train-k-nan", _files({"c.txt": _NG_TEXT}, *_NGT, "--smoothing", "add-k", "--k", "nan"), "--k"),
    Case("ngram-train-unknown-smoothing", _files({"c.txt": _NG_TEXT}, *_NGT, "--smoothing", "witten-bell"), "--smoothing"),
    Case("ngram-train-min-count-zero", _files({"c.txt": _NG_TEXT}, *_NGT, "--min-count", "0"), "--min-count"),
    Case("ngram-train-min-count-above-every-word", _files({"c.txt": _NG_TEXT}, *_NGT, "--min-count", "99"), "--min-count"),
    Case("ngram-train-output-is-corpus", _files({"c.arpa": _NG_TEXT}, "ngram", "train", "c.arpa", "-o", "c.arpa"), "destroy"),
    Case("ngram-train-output-folder", _files({"c.txt": _NG_TEXT, "m.arpa": None}, *_NGT, "-o", "m.arpa"), "folder"),
    Case("ngram-train-output-bad-suffix", _files({"c.txt": _NG_TEXT}, *_NGT, "-o", "m.txt"), ".arpa"),
    Case("ngram-train-output-unwritable", _files({"c.txt": _NG_TEXT}, *_NGT, "-o", "/proc/x/m.arpa"),
         "cannot create files in /proc"),
    Case("ngram-train-output-under-a-file", _files({"c.txt": _NG_TEXT}, *_NGT, "-o", "c.txt/m.arpa"), "not a folder"),
    Case("ngram-train-output-empty-name", _files({"c.txt": _NG_TEXT}, *_NGT, "-o", ""), "empty"),
    Case("ngram-eval-missing-model", _files({"t.txt": "the cat\n"}, "ngram", "eval", "m.arpa", "t.txt"), "no such model file"),
    Case("ngram-eval-model-folder", _files({"m.arpa": None, "t.txt": "the\n"}, "ngram", "eval", "m.arpa", "t.txt"), "folder"),
    Case("ngram-eval-model-not-arpa", _files({"m.arpa": "hello\n", "t.txt": "the\n"}, "ngram", "eval", "m.arpa", "t.txt"),
         "no \\data\\ header"),
    Case("ngram-eval-model-binary", _files({"m.arpa": _BINARY, "t.txt": "the\n"}, "ngram", "eval", "m.arpa", "t.txt"),
         "not UTF-8"),
    Case("ngram-eval-model-truncated", _files({"m.arpa": _NG_ARPA[:150], "t.txt": "the\n"}, "ngram", "eval", "m.arpa",
                                              "t.txt"), "m.arpa, line"),
    Case("ngram-eval-model-no-end", _files({"m.arpa": _NG_ARPA.replace("\\end\\", ""), "t.txt": "the\n"}, "ngram", "eval",
                                           "m.arpa", "t.txt"), "truncated"),
    Case("ngram-eval-model-count-mismatch", _files({"m.arpa": _NG_ARPA.replace("ngram 2=3", "ngram 2=4"), "t.txt": "the\n"},
                                                   "ngram", "eval", "m.arpa", "t.txt"), "declares 4 2-grams"),
    Case("ngram-eval-model-non-numeric", _files({"m.arpa": _NG_ARPA.replace("-0.2\tthe cat", "x\tthe cat"),
                                                 "t.txt": "the\n"}, "ngram", "eval", "m.arpa", "t.txt"), "not a number"),
    Case("ngram-eval-model-truncated-npz", _files({"m.npz": b"PK\x03\x04" + b"\x00" * 40, "t.txt": "the\n"}, "ngram", "eval",
                                                  "m.npz", "t.txt"), "m.npz"),
    Case("ngram-eval-model-word2vec-checkpoint", _w2v_case(None, "ngram", "eval", "w.ckpt.npz", "c.txt"),
         "not an n-gram model"),
    Case("ngram-eval-missing-text", _files({"m.arpa": _NG_ARPA}, "ngram", "eval", "m.arpa", "t.txt"), "no such file: t.txt"),
    Case("ngram-eval-empty-text", _files({"m.arpa": _NG_ARPA, "t.txt": ""}, "ngram", "eval", "m.arpa", "t.txt"), "empty"),
    Case("ngram-eval-whitespace-text", _files({"m.arpa": _NG_ARPA, "t.txt": "\n \n"}, "ngram", "eval", "m.arpa", "t.txt"),
         "no words"),
    Case("ngram-eval-binary-text", _files({"m.arpa": _NG_ARPA, "t.txt": _BINARY}, "ngram", "eval", "m.arpa", "t.txt"),
         "binary"),
    Case("ngram-eval-only-unknown-words", _files({"m.arpa": _NG_ARPA, "t.txt": "zebra yak\ngnu\n"}, "ngram", "eval",
                                                 "m.arpa", "t.txt"), "none of its 3 words"),
    Case("ngram-sample-n-zero", _files(_NGM, "ngram", "sample", "m.arpa", "--n", "0"), "--n"),
    Case("ngram-sample-max-len-zero", _files(_NGM, "ngram", "sample", "m.arpa", "--max-len", "0"), "--max-len"),
    Case("ngram-sample-negative-seed", _files(_NGM, "ngram", "sample", "m.arpa", "--seed", "-1"), "--seed"),
    Case("ngram-sample-missing-model", _args("ngram", "sample", "m.arpa"), "no such model file"),
    Case("ngram-prob-no-words", _files(_NGM, "ngram", "prob", "m.arpa", " "), "at least one word"),
    Case("ngram-prob-predicts-bos", _files(_NGM, "ngram", "prob", "m.arpa", "the <s>"), "<s> is never predicted"),
    Case("ngram-prob-model-folder", _files({"m.arpa": None}, "ngram", "prob", "m.arpa", "the cat"), "folder"),
    Case("ngram-prob-model-word-not-a-unigram", _files({"m.arpa": _NG_ARPA.replace("-0.2\tthe cat", "-0.2\tcat cat")
                                                        .replace("-0.1\tcat </s>", "-0.1\tdog </s>")},
                                                       "ngram", "prob", "m.arpa", "the cat"), "not among the unigrams"),
    Case("ngram-no-action", _args("ngram"), "required"),
    # issue #13
    Case("ngram-eval-text-holds-bos", _files({"m.arpa": _NG_ARPA, "t.txt": "the cat\nthe <s> cat\n"}, "ngram", "eval",
                                             "m.arpa", "t.txt"), "t.txt: sentence 1 holds <s> or </s>"),
    Case("ngram-eval-text-holds-eos", _files({"m.arpa": _NG_ARPA, "t.txt": "the </s>\n"}, "ngram", "eval", "m.arpa",
                                             "t.txt"), "holds <s> or </s>"),
    Case("ngram-eval-model-fifo", _fifo("ngram", "eval", "{fifo}", "t.txt"), "not a regular file"),
    Case("ngram-sample-model-fifo", _fifo("ngram", "sample", "{fifo}"), "not a regular file"),
    Case("ngram-prob-model-fifo", _fifo("ngram", "prob", "{fifo}", "the cat"), "not a regular file"),
    Case("ngram-train-k-huge", _files({"c.txt": _NG_TEXT}, *_NGT, "--smoothing", "add-k", "--k", "1e308"),
         "--k: must be at most 1e+06"),
    Case("ngram-sample-n-huge", _files(_NGM, "ngram", "sample", "m.arpa", "--n", str(10**12)), "--n: must be at most"),
    Case("ngram-sample-prefix-bos", _files(_NGM, "ngram", "sample", "m.arpa", "--prefix", "<s> the"), "--prefix holds <s>"),
    Case("ngram-sample-prefix-eos", _files(_NGM, "ngram", "sample", "m.arpa", "--prefix", "the </s>"), "--prefix holds </s>"),
    Case("ngram-eval-model-npz-unsorted-keys", _files({"m.npz": _ng_npz(_ng_reverse_keys), "t.txt": "the\n"}, "ngram",
                                                      "eval", "m.npz", "t.txt"), "m.npz is not a usable n-gram model"),
    Case("ngram-prob-model-npz-prob-above-one", _files({"m.npz": _ng_npz(_ng_prob_above_one)}, "ngram", "prob", "m.npz",
                                                       "the cat"), "probs_2 hold a value outside [0, 1]"),
    Case("ngram-eval-model-arpa-underscore-number", _files({"m.arpa": _NG_ARPA.replace("-0.2\tthe cat", "-0_2\tthe cat"),
                                                            "t.txt": "the\n"}, "ngram", "eval", "m.arpa", "t.txt"),
         "not a number"),
]
CASES += _NG_CASES
# -- nnlm --------------------------------------------------------------------------------------------
_NN_TEXT = "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\n" * 4
_NNT = ("nnlm", "train", "c.txt")
_NN_CKPT = "run/nnlm_epoch001_9.0000.npz"


@functools.lru_cache
def _nnlm_checkpoint_entries() -> dict[str, bytes]:
    """The entries of a real nnlm checkpoint (one epoch on ``_NN_TEXT`` with the CLI's split), as the trainer writes it."""
    from dlia.models.ngram import build_vocab, encode_sentences
    from dlia.models.nnlm import NNLMConfig, NNLMTrainer

    lines = [line.split() for line in _NN_TEXT.splitlines()]
    config = NNLMConfig(order=3, embedding_dim=4, hidden=5, epochs=2, batch_size=8)
    vocab = build_vocab(lines[:-1], config.min_count)
    ids = encode_sentences(lines, vocab)
    trainer = NNLMTrainer(config, vocab, ids[:-1], ids[-1:])
    trainer.run_epoch()
    with tempfile.TemporaryDirectory() as d:
        path = trainer.save(d)
        with zipfile.ZipFile(path) as z:
            return {name: z.read(name) for name in z.namelist()}


def _nnlm_case(change: Callable[[dict[str, bytes]], None] | None, *argv: str, files: dict[str, str | bytes] | None = None,
               truncated: str | None = None) -> Callable[[Path], list[str]]:
    """``argv`` in a folder holding ``c.txt`` (``_NN_TEXT``) and ``run/`` with one nnlm checkpoint
    (``_NN_CKPT``, the best epoch's) that ``change`` damaged; ``files`` are written besides, and
    ``truncated`` is a copy of the checkpoint's first 300 bytes."""

    def setup(folder: Path) -> list[str]:
        entries = dict(_nnlm_checkpoint_entries())
        if change is not None:
            change(entries)
        (folder / "run").mkdir()
        with zipfile.ZipFile(folder / _NN_CKPT, "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
        (folder / "c.txt").write_text(_NN_TEXT)
        for name, data in (files or {}).items():
            (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())
        if truncated is not None:
            (folder / truncated).write_bytes((folder / _NN_CKPT).read_bytes()[:300])
        return list(argv)

    return setup


def _nnlm_best_elsewhere(entries: dict[str, bytes]) -> None:
    _edit_meta(lambda m: m["extra"].update(best_checkpoint="nnlm_epoch000_1.0000.npz"))(entries)


_NN_FILES = {"c.txt": _NN_TEXT}
_NNLM_CASES = [
    Case("nnlm-train-missing-corpus", _args("nnlm", "train", "nope.txt"), "no such file"),
    Case("nnlm-train-empty-corpus", _write("c.txt", "", "nnlm", "train", "{f}"), "empty"),
    Case("nnlm-train-blank-corpus", _write("c.txt", " \n\n\t\n", "nnlm", "train", "{f}"), "no words"),
    Case("nnlm-train-one-line", _write("c.txt", "the cat sat\n", "nnlm", "train", "{f}"), "at least 2"),
    Case("nnlm-train-binary-corpus", _write("c.bin", _BINARY, "nnlm", "train", "{f}"), "binary"),
    Case("nnlm-train-latin1-corpus", _write("c.txt", _LATIN1, "nnlm", "train", "{f}"), "not UTF-8"),
    Case("nnlm-train-corpus-folder", _files({"d": None}, "nnlm", "train", "d"), "folder"),
    Case("nnlm-train-corpus-fifo", _fifo("nnlm", "train", "{fifo}"), "not a regular file"),
    Case("nnlm-train-sentence-markers", _write("c.txt", "a <s> b\nc d\n", "nnlm", "train", "{f}"), "<s>"),
    Case("nnlm-train-every-word-below-min-count", _write("c.txt", "a b c\nd e\n", "nnlm", "train", "{f}"),
         "lower --min-count"),
    Case("nnlm-train-order-one", _files(_NN_FILES, *_NNT, "--order", "1"), "--order"),
    Case("nnlm-train-order-absurd", _files(_NN_FILES, *_NNT, "--order", "1000000"), "--order"),
    Case("nnlm-train-order-not-a-number", _files(_NN_FILES, *_NNT, "--order", "three"), "--order"),
    Case("nnlm-train-hidden-absurd", _files(_NN_FILES, *_NNT, "--hidden", "2000000000"), "would need"),
    Case("nnlm-train-embedding-absurd", _files(_NN_FILES, *_NNT, "--embedding-dim", "2000000000"), "would need"),
    Case("nnlm-train-batch-absurd", _files(_NN_FILES, *_NNT, "--batch-size", "2000000000"), "would need"),
    Case("nnlm-train-hidden-too-large", _files(_NN_FILES, *_NNT, "--hidden", "100000000000"), "--hidden must be"),
    Case("nnlm-train-embedding-zero", _files(_NN_FILES, *_NNT, "--embedding-dim", "0"), "--embedding-dim"),
    Case("nnlm-train-no-hidden-no-direct", _files(_NN_FILES, *_NNT, "--hidden", "0", "--no-direct"), "--no-direct"),
    Case("nnlm-train-lr-negative", _files(_NN_FILES, *_NNT, "--lr", "-1"), "--lr"),
    Case("nnlm-train-lr-nan", _files(_NN_FILES, *_NNT, "--lr", "nan"), "--lr"),
    Case("nnlm-train-weight-decay-inf", _files(_NN_FILES, *_NNT, "--weight-decay", "inf"), "--weight-decay"),
    Case("nnlm-train-val-frac-one", _files(_NN_FILES, *_NNT, "--val-frac", "1"), "--val-frac"),
    Case("nnlm-train-unknown-optimizer", _files(_NN_FILES, *_NNT, "--optimizer", "rmsprop"), "invalid choice"),
    Case("nnlm-train-seed-negative", _files(_NN_FILES, *_NNT, "--seed", "-1"), "--seed"),
    Case("nnlm-train-checkpoint-dir-is-file", _files(_NN_FILES, *_NNT, "--checkpoint-dir", "c.txt"), "not a folder"),
    Case("nnlm-train-checkpoint-dir-unwritable", _files(_NN_FILES, *_NNT, "--checkpoint-dir", "/proc/x/run"),
         "cannot write --checkpoint-dir"),
    Case("nnlm-train-earlier-run-there", _nnlm_case(None, *_NNT, "--checkpoint-dir", "run"), "earlier run"),
    Case("nnlm-train-resume-missing", _files(_NN_FILES, *_NNT, "--resume", "no.npz"), "no such checkpoint"),
    Case("nnlm-train-resume-empty-folder", _files({**_NN_FILES, "d": None}, *_NNT, "--resume", "d"), "no nnlm checkpoint"),
    Case("nnlm-train-resume-corrupt", _files({**_NN_FILES, "r.npz": _BINARY}, *_NNT, "--resume", "r.npz"), "r.npz"),
    Case("nnlm-train-resume-charrnn-checkpoint",
         _charrnn_case(None, "nnlm", "train", "t.txt", "--resume", "run/charrnn_epoch000.01_2.5000.npz"),
         "not a nnlm checkpoint"),
    Case("nnlm-train-resume-other-corpus", _nnlm_case(None, "nnlm", "train", "u.txt", "--resume", _NN_CKPT,
                                                      files={"u.txt": _NN_TEXT + "one more line\n"}), "other data"),
    Case("nnlm-train-resume-damaged-config",
         _nnlm_case(_edit_meta(lambda m: m["config"].update(order=0)), *_NNT, "--resume", _NN_CKPT), "order"),
    Case("nnlm-train-resume-unknown-setting",
         _nnlm_case(_edit_meta(lambda m: m["config"].update(layers=3)), *_NNT, "--resume", _NN_CKPT), "layers"),
    Case("nnlm-train-resume-vocabulary-not-matching",
         _nnlm_case(_edit_meta(lambda m: m["vocab"].append("zebra")), *_NNT, "--resume", _NN_CKPT), "C.weight"),
    Case("nnlm-train-resume-damaged-position",
         _nnlm_case(_edit_meta(lambda m: m["extra"].update(batch="x")), *_NNT, "--resume", _NN_CKPT), "corrupt training state"),
    Case("nnlm-train-resume-best-epoch-gone", _nnlm_case(_nnlm_best_elsewhere, *_NNT, "--resume", _NN_CKPT), "missing"),
    Case("nnlm-train-resume-other-folder", _nnlm_case(None, *_NNT, "--resume", _NN_CKPT, "--checkpoint-dir", "new"),
         "its own folder"),
    Case("nnlm-eval-missing-checkpoint", _files(_NN_FILES, "nnlm", "eval", "no.npz", "c.txt"), "no such checkpoint"),
    Case("nnlm-eval-checkpoint-folder", _nnlm_case(None, "nnlm", "eval", "run", "c.txt"), "folder"),
    Case("nnlm-eval-corrupt-checkpoint", _files({**_NN_FILES, "r.npz": _BINARY}, "nnlm", "eval", "r.npz", "c.txt"), "r.npz"),
    Case("nnlm-eval-truncated-checkpoint", _nnlm_case(None, "nnlm", "eval", "t.npz", "c.txt", truncated="t.npz"), "t.npz"),
    Case("nnlm-eval-charrnn-checkpoint", _charrnn_case(None, "nnlm", "eval", "run/charrnn_epoch000.01_2.5000.npz", "t.txt"),
         "not a nnlm checkpoint"),
    Case("nnlm-eval-nan-weights", _nnlm_case(lambda e: e.update({"model/U.bias.npy": _npy(np.full(
        np.load(io.BytesIO(e["model/U.bias.npy"])).shape, np.nan, np.float32))}), "nnlm", "eval", _NN_CKPT, "c.txt"),
         "NaN or infinite"),
    Case("nnlm-eval-missing-text", _nnlm_case(None, "nnlm", "eval", _NN_CKPT, "no.txt"), "no such file"),
    Case("nnlm-eval-empty-text", _nnlm_case(None, "nnlm", "eval", _NN_CKPT, "e.txt", files={"e.txt": ""}), "empty"),
    Case("nnlm-eval-only-unknown-words", _nnlm_case(None, "nnlm", "eval", _NN_CKPT, "u.txt", files={"u.txt": "zebra yak\n"}),
         "outside the model's vocabulary"),
    Case("nnlm-eval-binary-text", _nnlm_case(None, "nnlm", "eval", _NN_CKPT, "b.txt", files={"b.txt": _BINARY}), "binary"),
    Case("nnlm-sample-missing-checkpoint", _args("nnlm", "sample", "no.npz"), "no such checkpoint"),
    Case("nnlm-sample-n-zero", _nnlm_case(None, "nnlm", "sample", _NN_CKPT, "--n", "0"), "--n"),
    Case("nnlm-sample-max-len-zero", _nnlm_case(None, "nnlm", "sample", _NN_CKPT, "--max-len", "0"), "--max-len"),
    Case("nnlm-sample-seed-negative", _nnlm_case(None, "nnlm", "sample", _NN_CKPT, "--seed", "-1"), "--seed"),
    Case("nnlm-sample-n-absurd", _nnlm_case(None, "nnlm", "sample", _NN_CKPT, "--n", "1000000000000"), "--n"),
    Case("nnlm-sample-max-len-absurd", _nnlm_case(None, "nnlm", "sample", _NN_CKPT, "--max-len", "1000000000000"),
         "--max-len"),
    Case("nnlm-train-resume-best-checkpoint-not-a-name",
         _nnlm_case(_edit_meta(lambda m: m["extra"].update(best_checkpoint=5)), "nnlm", "train", "c.txt", "--resume", _NN_CKPT),
         "damaged"),
    Case("nnlm-eval-deeply-nested-metadata",
         _nnlm_case(lambda e: e.update({"__meta__.npy": _npy(np.frombuffer(b"[" * 100000 + b"]" * 100000, np.uint8))}),
                    "nnlm", "eval", _NN_CKPT, "c.txt"), "nested too deeply"),
]
CASES += _NNLM_CASES


# -- lm compare -----------------------------------------------------------------------------------------

_LM_TEXT = "".join(f"the cat sat on mat {i % 5}\n" for i in range(40))
_LM_CASES = [
    Case("lm-compare-missing-corpus", _args("lm", "compare", "--corpus", "nope.txt", "--no-nnlm"), "no such file"),
    Case("lm-compare-empty-corpus", _write("c.txt", "", "lm", "compare", "--corpus", "{f}", "--no-nnlm"), "empty"),
    Case("lm-compare-binary-corpus", _write("c.bin", _BINARY, "lm", "compare", "--corpus", "{f}", "--no-nnlm"), "binary"),
    Case("lm-compare-latin1-corpus", _write("c.txt", _LATIN1, "lm", "compare", "--corpus", "{f}", "--no-nnlm"), "not UTF-8"),
    Case("lm-compare-corpus-folder", _files({"d": None}, "lm", "compare", "--corpus", "d", "--no-nnlm"), "folder"),
    Case("lm-compare-too-few-lines", _write("c.txt", "a b\nc d\n", "lm", "compare", "--corpus", "{f}", "--no-nnlm"),
         "at least 10 lines"),
    Case("lm-compare-output-is-corpus", _files({"c.txt": _LM_TEXT}, "lm", "compare", "--corpus", "c.txt", "-o", "c.txt"),
         "the input --corpus"),
    Case("lm-compare-output-unwritable", _files({"c.txt": _LM_TEXT}, "lm", "compare", "--corpus", "c.txt", "-o",
                                                "/proc/x/t.md"), "cannot write --output"),
    Case("lm-compare-epochs-zero", _files({"c.txt": _LM_TEXT}, "lm", "compare", "--corpus", "c.txt", "--epochs", "0"),
         "--epochs"),
    Case("lm-compare-lr-nan", _files({"c.txt": _LM_TEXT}, "lm", "compare", "--corpus", "c.txt", "--lr", "nan"), "--lr"),
    Case("lm-compare-hidden-absurd", _files({"c.txt": _LM_TEXT}, "lm", "compare", "--corpus", "c.txt", "--hidden",
                                            "1000000000000"), "hidden"),
    Case("lm-compare-batch-absurd", _files({"c.txt": _LM_TEXT}, "lm", "compare", "--corpus", "c.txt", "--batch-size",
                                           "1000000000"), "would need"),
    Case("lm-compare-no-word-reaches-min-count", _write("c.txt", "".join(f"w{i}\n" for i in range(12)), "lm", "compare",
                                                        "--corpus", "{f}", "--no-nnlm"), "min-count"),
    Case("lm-compare-lr-diverges", _files({"c.txt": _LM_TEXT * 5}, "lm", "compare", "--corpus", "c.txt", "--lr", "100000",
                                          "--epochs", "2", "--hidden", "8", "--embedding-dim", "4"), "diverged"),
    Case("lm-compare-batch-size-field-named-as-flag", _files({"c.txt": _LM_TEXT}, "lm", "compare", "--corpus", "c.txt",
                                                             "--batch-size", "3000000000"), "--batch-size must"),
    Case("lm-compare-no-action", _args("lm"), "required"),
]
CASES += _LM_CASES


# -- caption align / caption rank (image–sentence ranking) ----------------------------------------------

_AL_CKPT = "run/align_epoch001.0_0.2000.npz"
_AL = ["caption", "align", "--image-size", "24", "--channels", "2", "--hidden-size", "4", "--embedding-size", "3",
       "--train-size", "20", "--test-size", "10", "--batch-size", "10"]


@functools.lru_cache
def _align_checkpoint_entries() -> dict[str, bytes]:
    """The entries of a real caption-align checkpoint (one step of a tiny model on 20 scenes, the CLI's
    data), as the trainer writes it."""
    from dlia.cli.caption import HELD_OUT_SEED, scene_pairs, scene_vocab
    from dlia.models.alignment import AlignConfig, AlignTrainer

    config = AlignConfig(image_size=24, channels=2, hidden_size=4, embedding_size=3, train_size=20, test_size=10,
                         batch_size=10)
    vocab = scene_vocab()
    trainer = AlignTrainer(config, vocab, scene_pairs(20, 0, 24, vocab), scene_pairs(10, HELD_OUT_SEED, 24, vocab))
    trainer.train_step()
    trainer.evaluate()
    with tempfile.TemporaryDirectory() as d:
        path = trainer.save(d)
        with zipfile.ZipFile(path) as z:
            return {name: z.read(name) for name in z.namelist()}


def _scene_png(size: int = 24) -> bytes:
    from dlia.data import scenes_dataset

    buf = io.BytesIO()
    Image.fromarray(scenes_dataset(1, seed=0, size=size)[0].image).save(buf, format="PNG")
    return buf.getvalue()


def _align_case(change: Callable[[dict[str, bytes]], None] | None, *argv: str,
                files: dict[str, str | bytes | None] | None = None, truncated: str | None = None) -> Callable[[Path], list[str]]:
    """``argv`` in a folder holding ``s.png`` (a 24×24 scene) and ``run/`` with one caption-align
    checkpoint (``_AL_CKPT``) that ``change`` damaged; ``files`` are written besides (None: a folder),
    and ``truncated`` is a copy of the checkpoint's first 300 bytes."""

    def setup(folder: Path) -> list[str]:
        entries = dict(_align_checkpoint_entries())
        if change is not None:
            change(entries)
        (folder / "run").mkdir()
        with zipfile.ZipFile(folder / _AL_CKPT, "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
        (folder / "s.png").write_bytes(_scene_png())
        for name, data in (files or {}).items():
            if data is None:
                (folder / name).mkdir()
            else:
                (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())
        if truncated is not None:
            (folder / truncated).write_bytes((folder / _AL_CKPT).read_bytes()[:300])
        return list(argv)

    return setup


def _rank(*more: str, change: Callable[[dict[str, bytes]], None] | None = None,
          files: dict[str, str | bytes | None] | None = None, truncated: str | None = None) -> Callable[[Path], list[str]]:
    return _align_case(change, "caption", "rank", *more, files=files, truncated=truncated)


_CAPTION_RANK_CASES = [
    Case("caption-rank-missing-image", _rank("run", "no.png"), "no such file"),
    Case("caption-rank-empty-image", _rank("run", "e.png", files={"e.png": b""}), "e.png"),
    Case("caption-rank-truncated-image", lambda f: _rank("run", "t.png", files={"t.png": _scene_png(48)[:80]})(f),
         "t.png"),
    Case("caption-rank-text-as-image", _rank("run", "x.png", files={"x.png": "not a picture\n"}), "not an image"),
    Case("caption-rank-image-folder", _rank("run", "d", files={"d": None}), "directory"),
    Case("caption-rank-missing-checkpoint", _files({"s.png": b""}, "caption", "rank", "no.npz", "s.png"),
         "no such checkpoint"),
    Case("caption-rank-empty-run-folder", _files({"d": None}, "caption", "rank", "d", "s.png"),
         "no caption-align checkpoint"),
    Case("caption-rank-corrupt-checkpoint", _rank("r.npz", "s.png", files={"r.npz": _BINARY}), "r.npz"),
    Case("caption-rank-truncated-checkpoint", _rank("t.npz", "s.png", truncated="t.npz"), "t.npz"),
    Case("caption-rank-charrnn-checkpoint",
         _charrnn_case(None, "caption", "rank", "run/charrnn_epoch000.01_2.5000.npz", "t.txt"),
         "not a caption-align checkpoint"),
    Case("caption-rank-cnn-checkpoint",
         _charrnn_case(None, "caption", "rank", "run/charrnn_epoch000.01_2.5000.npz", "t.txt", cnn=True),
         "not a caption-align checkpoint"),
    Case("caption-rank-damaged-config", _rank(_AL_CKPT, "s.png", change=_edit_meta(lambda m: m["config"].update(
        hidden_size=0))), "hidden_size"),
    Case("caption-rank-damaged-vocabulary", _rank(_AL_CKPT, "s.png", change=_edit_meta(lambda m: m["vocab"].append(
        "zebra"))), "embedding.weight"),
    Case("caption-rank-absurd-held-out-set", _rank(_AL_CKPT, "s.png", change=_edit_meta(lambda m: m["config"].update(
        test_size=10**12))), "would need"),
    Case("caption-rank-nan-weights", _rank(_AL_CKPT, "s.png", change=lambda e: e.update({"model/word.bias.npy": _npy(
        np.full(np.load(io.BytesIO(e["model/word.bias.npy"])).shape, np.nan, np.float32))})), "NaN or infinite"),
    Case("caption-rank-sentences-missing", _rank("run", "s.png", "--sentences", "no.txt"), "no such file"),
    Case("caption-rank-sentences-empty", _rank("run", "s.png", "--sentences", "c.txt", files={"c.txt": ""}), "empty"),
    Case("caption-rank-sentences-blank", _rank("run", "s.png", "--sentences", "c.txt", files={"c.txt": "\n  \n"}),
         "no sentences"),
    Case("caption-rank-sentences-binary", _rank("run", "s.png", "--sentences", "c.txt", files={"c.txt": _BINARY}),
         "binary"),
    Case("caption-rank-sentences-latin1", _rank("run", "s.png", "--sentences", "c.txt", files={"c.txt": _LATIN1}),
         "not UTF-8"),
    Case("caption-rank-sentences-unknown-words",
         _rank("run", "s.png", "--sentences", "c.txt", files={"c.txt": "a red circle at the top\na purple rhombus\n"}),
         "line 2: 'purple', 'rhombus' are not in the model's vocabulary"),
    Case("caption-rank-top-zero", _rank("run", "s.png", "--top", "0"), "--top"),
    Case("caption-rank-alignment-unwritable", _rank("run", "s.png", "--show-alignment", "/proc/x/a.png"),
         "cannot write --show-alignment"),
    Case("caption-rank-alignment-is-the-image", _rank("run", "s.png", "--show-alignment", "s.png"), "the input IMAGE"),
    Case("caption-rank-alignment-folder", _rank("run", "s.png", "--show-alignment", "d", files={"d": None}), "folder"),
    Case("caption-rank-alignment-bad-suffix", _rank("run", "s.png", "--show-alignment", "a.txt"), "picture"),
    Case("caption-align-image-size-not-multiple-of-6", _args(*_AL, "--image-size", "40"), "multiple of 6"),
    Case("caption-align-image-size-too-small", _args(*_AL, "--image-size", "12"), "--image-size must"),
    Case("caption-align-image-size-absurd", _args(*_AL, "--image-size", "60000"), "would need"),
    Case("caption-align-train-size-absurd", _args(*_AL, "--train-size", "1000000000000"), "would need"),
    Case("caption-align-hidden-size-absurd", _args(*_AL, "--hidden-size", "2000000000"), "would need"),
    Case("caption-align-batch-size-one", _args(*_AL, "--batch-size", "1"), "--batch-size must"),
    Case("caption-align-fewer-scenes-than-a-batch", _args(*_AL, "--train-size", "5"), "smaller than one batch"),
    Case("caption-align-learning-rate-nan", _args(*_AL, "--learning-rate", "nan"), "--learning-rate"),
    Case("caption-align-margin-negative", _args(*_AL, "--margin", "-1"), "--margin"),
    Case("caption-align-unknown-cell", _args(*_AL, "--cell", "transformer"), "invalid choice"),
    Case("caption-align-seed-negative", _args(*_AL, "--seed", "-1"), "--seed"),
    Case("caption-align-max-time-zero", _args(*_AL, "--max-time", "0"), "--max-time"),
    Case("caption-align-max-steps-zero", _args(*_AL, "--max-steps", "0"), "--max-steps"),
    Case("caption-align-checkpoint-dir-is-file", _files({"f": "x"}, *_AL, "--checkpoint-dir", "f"), "not a folder"),
    Case("caption-align-checkpoint-dir-unwritable", _args(*_AL, "--checkpoint-dir", "/proc/x/run"),
         "cannot write --checkpoint-dir"),
    Case("caption-align-earlier-run-there", _align_case(None, *_AL, "--checkpoint-dir", "run"), "earlier run"),
    Case("caption-align-resume-missing", _args(*_AL, "--resume", "no.npz"), "no such checkpoint"),
    Case("caption-align-resume-empty-folder", _files({"d": None}, *_AL, "--resume", "d"), "no caption-align checkpoint"),
    Case("caption-align-resume-corrupt", _files({"r.npz": _BINARY}, *_AL, "--resume", "r.npz"), "r.npz"),
    Case("caption-align-resume-charrnn-checkpoint",
         _charrnn_case(None, *_AL, "--resume", "run/charrnn_epoch000.01_2.5000.npz"), "not a caption-align checkpoint"),
    Case("caption-align-resume-damaged-position",
         _align_case(_edit_meta(lambda m: m["extra"].update(iteration="x")), *_AL, "--resume", "run"),
         "corrupt training state"),
    Case("caption-align-resume-other-scenes",
         _align_case(_edit_meta(lambda m: m["extra"].update(scenes=[30, 10])), *_AL, "--resume", "run"), "other scenes"),
    Case("caption-align-resume-into-another-run",
         _align_case(None, *_AL, "--resume", _AL_CKPT, "--checkpoint-dir", "other",
                     files={"other": None, "other/align_epoch000.5_0.1000.npz": "x"}), "another run"),
    Case("caption-no-action", _args("caption"), "required"),
]
CASES += _CAPTION_RANK_CASES
# -- seq2seq --------------------------------------------------------------------------------------------

_S2S_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_S2S_TSV = "".join(f"{_S2S_WORDS[i // 10]} {_S2S_WORDS[i % 10]}\t{i // 10}{i % 10}\n" for i in range(30))
_S2S_CKPT = "run/seq2seq_epoch000.50_2.5000.npz"
_S2T = ("seq2seq", "train", "--task", "n.tsv")
_S2S_FILES = {"n.tsv": _S2S_TSV}


@functools.lru_cache
def _s2s_checkpoint_entries() -> dict[str, bytes]:
    """The entries of a real seq2seq checkpoint (a tiny model on ``_S2S_TSV``, characters, one step)."""
    from dlia.data.tasks import tsv_task
    from dlia.models.seq2seq import Seq2SeqConfig
    from dlia.models.translation import Seq2SeqTrainer, TrainConfig

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "n.tsv").write_text(_S2S_TSV)
        task = tsv_task(Path(d) / "n.tsv", "char")
        trainer = Seq2SeqTrainer(Seq2SeqConfig(embedding_size=4, hidden_size=5), TrainConfig(batch_size=8), task)
        trainer.train_step()
        path = trainer.save(d, 2.5)
        with zipfile.ZipFile(path) as z:
            return {name: z.read(name) for name in z.namelist()}


def _s2s_case(change: Callable[[dict[str, bytes]], None] | None, *argv: str,
              files: dict[str, str | bytes] | None = None, copy: str | None = None) -> Callable[[Path], list[str]]:
    """``argv`` in a folder holding ``n.tsv`` and ``run/`` with one seq2seq checkpoint (``_S2S_CKPT``)
    that ``change`` damaged; ``files`` are written besides, and ``copy`` is a copy of the checkpoint."""

    def setup(folder: Path) -> list[str]:
        entries = dict(_s2s_checkpoint_entries())
        if change is not None:
            change(entries)
        (folder / "run").mkdir()
        with zipfile.ZipFile(folder / _S2S_CKPT, "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
        (folder / "n.tsv").write_text(_S2S_TSV)
        for name, data in (files or {}).items():
            (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())
        if copy is not None:
            (folder / copy).write_bytes((folder / _S2S_CKPT).read_bytes())
        return list(argv)

    return setup


_S2TR = ("seq2seq", "translate", _S2S_CKPT)
_SEQ2SEQ_CASES = [
    Case("seq2seq-train-tsv-missing", _args(*_S2T), "no such file"),
    Case("seq2seq-train-tsv-empty", _write("n.tsv", "", *_S2T), "empty"),
    Case("seq2seq-train-tsv-binary", _write("n.tsv", _BINARY, *_S2T), "binary"),
    Case("seq2seq-train-tsv-latin1", _write("n.tsv", _LATIN1, *_S2T), "not UTF-8"),
    Case("seq2seq-train-tsv-malformed-line", _write("n.tsv", "one\t1\ntwo 2\nthree\t3\n", *_S2T), "line 2"),
    Case("seq2seq-train-tsv-two-tabs", _write("n.tsv", "one\t1\n" * 5 + "two\t2\t2\n", *_S2T), "line 6"),
    Case("seq2seq-train-tsv-too-few-lines", _write("n.tsv", "one\t1\ntwo\t2\n", *_S2T), "has 2 pairs"),
    Case("seq2seq-train-tsv-folder", _files({"d": None}, "seq2seq", "train", "--task", "d"), "folder"),
    Case("seq2seq-train-hidden-absurd", _args("seq2seq", "train", "--hidden-size", "1000000000"), "would need"),
    Case("seq2seq-train-embedding-absurd", _args("seq2seq", "train", "--embedding-size", "1000000000"), "would need"),
    Case("seq2seq-train-layers-absurd", _args("seq2seq", "train", "--layers", "100000000"), "would need"),
    Case("seq2seq-train-batch-absurd", _args("seq2seq", "train", "--batch-size", "2000000000"), "would need"),
    Case("seq2seq-train-train-size-absurd", _args("seq2seq", "train", "--train-size", "1000000000000"), "--train-size"),
    Case("seq2seq-train-hidden-zero", _args("seq2seq", "train", "--hidden-size", "0"), "--hidden-size"),
    Case("seq2seq-train-lr-nan", _args("seq2seq", "train", "--learning-rate", "nan"), "--learning-rate"),
    Case("seq2seq-train-lr-too-large", _args("seq2seq", "train", "--learning-rate", "1e300"), "--learning-rate must"),
    Case("seq2seq-train-sampling-above-one", _args("seq2seq", "train", "--sampling", "1.5"), "--sampling"),
    Case("seq2seq-train-dropout-one", _args("seq2seq", "train", "--dropout", "1"), "--dropout"),
    Case("seq2seq-train-unknown-cell", _args("seq2seq", "train", "--cell", "transformer"), "invalid choice"),
    Case("seq2seq-train-unknown-attention", _args("seq2seq", "train", "--attention", "dot"), "invalid choice"),
    Case("seq2seq-train-seed-negative", _args("seq2seq", "train", "--seed", "-1"), "--seed"),
    Case("seq2seq-train-beam-absurd", _args("seq2seq", "train", "--beam", "1000000000"), "--beam"),
    Case("seq2seq-train-word-tokens-for-dates", _args("seq2seq", "train", "--tokens", "word"), "character-level"),
    Case("seq2seq-train-train-size-with-tsv", _files(_S2S_FILES, *_S2T, "--train-size", "10"), "--train-size"),
    Case("seq2seq-train-checkpoint-dir-is-file", _files(_S2S_FILES, *_S2T, "--checkpoint-dir", "n.tsv"), "not a folder"),
    Case("seq2seq-train-checkpoint-dir-unwritable", _files(_S2S_FILES, *_S2T, "--checkpoint-dir", "/proc/x/run"),
         "cannot write --checkpoint-dir"),
    Case("seq2seq-train-earlier-run-there", _s2s_case(None, *_S2T, "--checkpoint-dir", "run"), "earlier run"),
    Case("seq2seq-train-resume-missing", _files(_S2S_FILES, *_S2T, "--resume", "no.npz"), "no such checkpoint"),
    Case("seq2seq-train-resume-empty-folder", _files({**_S2S_FILES, "d": None}, *_S2T, "--resume", "d"),
         "no seq2seq checkpoint"),
    Case("seq2seq-train-resume-corrupt", _files({**_S2S_FILES, "r.npz": _BINARY}, *_S2T, "--resume", "r.npz"), "r.npz"),
    Case("seq2seq-train-resume-charrnn-checkpoint",
         _charrnn_case(None, "seq2seq", "train", "--resume", "run/charrnn_epoch000.01_2.5000.npz"), "not a seq2seq checkpoint"),
    Case("seq2seq-train-resume-other-corpus",
         _s2s_case(None, *_S2T[:3], "u.tsv", "--resume", _S2S_CKPT, files={"u.tsv": _S2S_TSV + "ten\t10\n"}),
         "not the corpus"),
    Case("seq2seq-train-resume-dates-for-tsv", _s2s_case(None, "seq2seq", "train", "--task", "dates", "--resume", _S2S_CKPT),
         "not --task dates"),
    Case("seq2seq-train-resume-damaged-config",
         _s2s_case(_edit_meta(lambda m: m["config"].update(hidden_size=0)), *_S2T, "--resume", _S2S_CKPT), "hidden_size"),
    Case("seq2seq-train-resume-huge-layers",
         _s2s_case(_edit_meta(lambda m: m["config"].update(layers=10**9)), *_S2T, "--resume", _S2S_CKPT), "layers"),
    Case("seq2seq-train-resume-vocabulary-not-matching",
         _s2s_case(_edit_meta(lambda m: m["extra"]["vocabs"]["target"]["tokens"].append("x")), *_S2T, "--resume", _S2S_CKPT),
         "tgt_embedding.weight"),
    Case("seq2seq-train-resume-damaged-position",
         _s2s_case(_edit_meta(lambda m: m["extra"].update(iteration="x")), *_S2T, "--resume", _S2S_CKPT),
         "corrupt training state"),
    Case("seq2seq-train-resume-damaged-task",
         _s2s_case(_edit_meta(lambda m: m["extra"].update(task={"task": "chess"})), *_S2T, "--resume", _S2S_CKPT),
         "task description"),
    Case("seq2seq-translate-missing-checkpoint", _args("seq2seq", "translate", "no.npz", "x"), "no such checkpoint"),
    Case("seq2seq-translate-empty-folder", _files({"d": None}, "seq2seq", "translate", "d", "x"), "no seq2seq checkpoint"),
    Case("seq2seq-translate-corrupt-checkpoint", _files({"r.npz": _BINARY}, "seq2seq", "translate", "r.npz", "x"), "r.npz"),
    Case("seq2seq-translate-charrnn-checkpoint",
         _charrnn_case(None, "seq2seq", "translate", "run/charrnn_epoch000.01_2.5000.npz", "x"), "not a seq2seq checkpoint"),
    Case("seq2seq-translate-nan-weights", _s2s_case(lambda e: e.update({"model/out.bias.npy": _npy(np.full(
        np.load(io.BytesIO(e["model/out.bias.npy"])).shape, np.nan, np.float32))}), *_S2TR, "one"), "NaN or infinite"),
    Case("seq2seq-translate-unknown-characters", _s2s_case(None, *_S2TR, "one two", "twenty €"), "unknown characters 'y', '€'"),
    Case("seq2seq-translate-empty-text", _s2s_case(None, *_S2TR, ""), "empty text"),
    Case("seq2seq-translate-beam-zero", _s2s_case(None, *_S2TR, "one", "--beam", "0"), "--beam"),
    Case("seq2seq-translate-beam-absurd", _s2s_case(None, *_S2TR, "one", "--beam", "100000000"), "--beam"),
    Case("seq2seq-translate-max-len-absurd", _s2s_case(None, *_S2TR, "one", "--max-len", "10000000000"), "--max-len"),
    Case("seq2seq-translate-length-norm-negative", _s2s_case(None, *_S2TR, "one", "--length-norm", "-1"), "--length-norm"),
    Case("seq2seq-translate-attention-unwritable", _s2s_case(None, *_S2TR, "one", "--show-attention", "/proc/x/a.png"),
         "cannot write --show-attention"),
    Case("seq2seq-translate-attention-is-checkpoint",
         _s2s_case(None, "seq2seq", "translate", "m.png", "one", "--show-attention", "m.png", copy="m.png"), "the input"),
    Case("seq2seq-translate-attention-bad-suffix", _s2s_case(None, *_S2TR, "one", "--show-attention", "a.txt"), ".txt"),
    Case("seq2seq-eval-missing-checkpoint", _args("seq2seq", "eval", "no.npz"), "no such checkpoint"),
    Case("seq2seq-eval-binary-tsv", _s2s_case(None, "seq2seq", "eval", _S2S_CKPT, "--task", "b.tsv", files={"b.tsv": _BINARY}),
         "binary"),
    Case("seq2seq-eval-malformed-tsv", _s2s_case(None, "seq2seq", "eval", _S2S_CKPT, "--task", "b.tsv",
                                                 files={"b.tsv": "one\t1\n\ntwo\n"}), "line 3"),
    Case("seq2seq-eval-run-corpus-gone", _s2s_case(None, "seq2seq", "eval", _S2S_CKPT), "no such file"),
    Case("seq2seq-no-action", _args("seq2seq"), "required"),
]
CASES += _SEQ2SEQ_CASES


def _then_fifo(setup: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
    """``setup``, then a named pipe next to the working folder; ``{fifo}`` in its argv is the pipe's path."""

    def then(folder: Path) -> list[str]:
        argv = setup(folder)
        fifo = folder.parent / "fifo"
        os.mkfifo(fifo)
        return [a.replace("{fifo}", str(fifo)) for a in argv]

    return then


# -- caption --------------------------------------------------------------------------------------------

_CAP_CKPT = "cap/caption_epoch001.0_2.5000.npz"


@functools.cache
def _caption_checkpoint_entries() -> dict[str, bytes]:
    """The zip entries of a checkpoint as ``dlia caption train`` writes it (a tiny captioner after
    one step), made once per session."""
    from dlia.cli.caption import SceneData
    from dlia.models.caption import CaptionConfig, CaptionTrainer

    config = CaptionConfig(embedding_size=4, hidden_size=5, channels=(2,), image_size=8, train_size=4, val_size=2,
                           batch_size=4)
    trainer = CaptionTrainer(config, SceneData(config))
    trainer.train_step()
    with tempfile.TemporaryDirectory() as d:
        path = trainer.save(d, 2.5)
        with zipfile.ZipFile(path) as z:
            return {i.filename: z.read(i) for i in z.infolist()}


def _scene_png(size: int = 64) -> bytes:
    from dlia.data.shapes import scenes_dataset

    buf = io.BytesIO()
    Image.fromarray(scenes_dataset(1, 0, size)[0].image).save(buf, format="PNG")
    return buf.getvalue()


def _caption_case(change: Callable[[dict[str, bytes]], None] | None, *argv: str,
                  files: dict[str, bytes | str | None] | None = None, truncated: str | None = None
                  ) -> Callable[[Path], list[str]]:
    """``argv`` in a folder holding ``cap/`` with one caption checkpoint that ``change`` damaged, a
    scene ``s.png``, and ``files`` besides; ``truncated`` is a copy of the checkpoint's first 300 bytes."""

    def setup(folder: Path) -> list[str]:
        entries = dict(_caption_checkpoint_entries())
        if change is not None:
            change(entries)
        (folder / "cap").mkdir()
        with zipfile.ZipFile(folder / _CAP_CKPT, "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
        (folder / "s.png").write_bytes(_scene_png())
        if truncated is not None:
            (folder / truncated).write_bytes((folder / _CAP_CKPT).read_bytes()[:300])
        return _files(files or {}, *argv)(folder)

    return setup


_CAPD = ("caption", "describe", _CAP_CKPT)
_CAPT = ("caption", "train", "--train-size", "8", "--val-size", "2", "--max-epochs", "1")
_CAPTION_CASES = [
    Case("caption-describe-missing-image", _caption_case(None, *_CAPD, "no.png"), "no such file"),
    Case("caption-describe-empty-image", _caption_case(None, *_CAPD, "e.png", files={"e.png": b""}), "empty"),
    Case("caption-describe-text-named-png", _caption_case(None, *_CAPD, "t.png", files={"t.png": "not a picture\n"}),
         "not an image"),
    Case("caption-describe-truncated-png", _caption_case(None, *_CAPD, "t.png", files={"t.png": _scene_png()[:300]}),
         "cannot read t.png"),
    Case("caption-describe-image-is-folder", _caption_case(None, *_CAPD, "d", files={"d": None}), "directory"),
    Case("caption-describe-png-bomb", _caption_case(None, *_CAPD, "b.png", files={"b.png": _png_bomb()}), "too large"),
    Case("caption-describe-bad-image-after-good-one", _caption_case(None, *_CAPD, "s.png", "t.png",
                                                                    files={"t.png": _BINARY}), "t.png"),
    Case("caption-describe-missing-checkpoint", _caption_case(None, "caption", "describe", "no.npz", "s.png"),
         "no such checkpoint"),
    Case("caption-describe-folder-without-checkpoints", _caption_case(None, "caption", "describe", "d", "s.png",
                                                                      files={"d": None}), "no caption checkpoint"),
    Case("caption-describe-corrupt-checkpoint", _caption_case(None, "caption", "describe", "r.npz", "s.png",
                                                              files={"r.npz": _BINARY}), "r.npz"),
    Case("caption-describe-truncated-checkpoint",
         _caption_case(None, "caption", "describe", "t.npz", "s.png", truncated="t.npz"), "t.npz"),
    Case("caption-describe-charrnn-checkpoint",
         _charrnn_case(None, "caption", "describe", "run/charrnn_epoch000.01_2.5000.npz", "t.txt"),
         "not a caption checkpoint"),
    Case("caption-describe-damaged-config",
         _caption_case(_edit_meta(lambda m: m["config"].update(hidden_size=9)), *_CAPD, "s.png"), "rnn.weight_ih_l0"),
    Case("caption-describe-absurd-config",
         _caption_case(_edit_meta(lambda m: m["config"].update(hidden_size=60000, embedding_size=60000)), *_CAPD, "s.png"),
         "parameters"),
    Case("caption-describe-unknown-setting",
         _caption_case(_edit_meta(lambda m: m["config"].update(layers=2)), *_CAPD, "s.png"), "layers"),
    Case("caption-describe-other-vocabulary",
         _caption_case(_edit_meta(lambda m: m["vocab"].append("zebra")), *_CAPD, "s.png"), "vocabulary"),
    Case("caption-describe-nan-weights", _caption_case(lambda e: e.update({"model/out.bias.npy": _npy(np.full(
        np.load(io.BytesIO(e["model/out.bias.npy"])).shape, np.nan, np.float32))}), *_CAPD, "s.png"), "NaN or infinite"),
    Case("caption-describe-beam-zero", _caption_case(None, *_CAPD, "s.png", "--beam", "0"), "--beam"),
    Case("caption-describe-beam-absurd", _caption_case(None, *_CAPD, "s.png", "--beam", "1000000"), "--beam"),
    Case("caption-describe-show-is-the-image", _caption_case(None, *_CAPD, "s.png", "--show", "s.png"), "the input IMAGE"),
    Case("caption-describe-show-bad-format", _caption_case(None, *_CAPD, "s.png", "--show", "x.gif"), "--show"),
    Case("caption-describe-show-attention-is-the-image",
         _caption_case(None, *_CAPD, "s.png", "--show-attention", "s.png"), "the input IMAGE"),
    Case("caption-describe-show-attention-is-show",
         _caption_case(None, *_CAPD, "s.png", "--show", "a.png", "--show-attention", "a.png"), "--show"),
    Case("caption-describe-unknown-attention",
         _caption_case(_edit_meta(lambda m: m["config"].update(attention="luong")), *_CAPD, "s.png"),
         "attention must be one of none, bahdanau"),
    Case("caption-train-attention-unknown", _args(*_CAPT, "--attention", "luong"), "invalid choice"),
    Case("caption-train-cell-unknown", _args(*_CAPT, "--cell", "rnn"), "invalid choice"),
    Case("caption-train-image-size-not-multiple", _args(*_CAPT, "--image-size", "20"), "--image-size must be a multiple"),
    Case("caption-train-hidden-absurd", _args(*_CAPT, "--hidden-size", "100000000"), "--hidden-size must be"),
    Case("caption-train-train-size-absurd", _args(*_CAPT, "--train-size", "90000000"), "would need"),
    Case("caption-train-image-size-absurd", _args(*_CAPT, "--image-size", "1008", "--batch-size", "5000000"),
         "would need"),
    Case("caption-train-batch-zero", _args(*_CAPT, "--batch-size", "0"), "--batch-size"),
    Case("caption-train-lr-nan", _args(*_CAPT, "--learning-rate", "nan"), "--learning-rate"),
    Case("caption-train-lr-text", _args(*_CAPT, "--learning-rate", "fast"), "--learning-rate"),
    Case("caption-train-seed-negative", _args(*_CAPT, "--seed", "-1"), "--seed"),
    Case("caption-train-max-steps-zero", _args(*_CAPT, "--max-steps", "0"), "--max-steps"),
    Case("caption-train-checkpoint-dir-is-file", _files({"f": "x"}, *_CAPT, "--checkpoint-dir", "f"), "not a folder"),
    Case("caption-train-checkpoint-dir-unwritable", _args(*_CAPT, "--checkpoint-dir", "/proc/x/run"),
         "cannot write --checkpoint-dir"),
    Case("caption-train-earlier-run-there", _caption_case(None, *_CAPT, "--checkpoint-dir", "cap"), "earlier run"),
    Case("caption-train-resume-missing", _args(*_CAPT, "--resume", "no.npz"), "no such checkpoint"),
    Case("caption-train-resume-corrupt", _files({"r.npz": _BINARY}, *_CAPT, "--resume", "r.npz"), "r.npz"),
    Case("caption-train-resume-charrnn-checkpoint",
         _charrnn_case(None, *_CAPT, "--resume", "run/charrnn_epoch000.01_2.5000.npz"), "not a caption checkpoint"),
    Case("caption-train-resume-damaged-position",
         _caption_case(_edit_meta(lambda m: m["extra"].update(iteration="x")), *_CAPT, "--resume", "cap"),
         "corrupt training state"),
    Case("caption-train-resume-best-name-not-a-name",
         _caption_case(_edit_meta(lambda m: m["extra"].update(best_checkpoint="../x.npz")), *_CAPT, "--resume", "cap"),
         "damaged"),
    Case("caption-train-resume-into-another-run",
         _caption_case(None, *_CAPT, "--resume", _CAP_CKPT, "--checkpoint-dir", "other",
                       files={"other/caption_epoch001.0_2.0000.npz": b"x"}), "another run"),
    Case("caption-eval-missing-checkpoint", _args("caption", "eval", "no.npz"), "no such checkpoint"),
    Case("caption-eval-scenes-zero", _caption_case(None, "caption", "eval", _CAP_CKPT, "--scenes", "0"), "--scenes"),
    Case("caption-eval-scenes-absurd", _caption_case(None, "caption", "eval", _CAP_CKPT, "--scenes", "10000000"),
         "--scenes"),
    Case("caption-eval-scene-seed-negative", _caption_case(None, "caption", "eval", _CAP_CKPT, "--scene-seed", "-2"),
         "--scene-seed"),
    Case("caption-eval-show-unwritable", _caption_case(None, "caption", "eval", _CAP_CKPT, "--show", "/proc/x/s.png"),
         "cannot write --show"),
    Case("caption-scenes-folder-is-file", _files({"f": "x"}, "caption", "scenes", "f"), "not a folder"),
    Case("caption-scenes-size-too-small", _args("caption", "scenes", "out", "--size", "10"), "--size"),
    Case("caption-scenes-count-zero", _args("caption", "scenes", "out", "-n", "0"), "--count"),
    Case("caption-scenes-would-overwrite", _files({"out/scene_000.png": b"mine"}, "caption", "scenes", "out"),
         "already holds scene_000.png"),
]
CASES += _CAPTION_CASES


# an image that is a pipe would block Pillow's read forever
_IMAGE_PIPE_CASES = [
    Case("caption-describe-image-is-pipe", _then_fifo(_caption_case(None, "caption", "describe", "cap", "{fifo}")),
         "not a regular file"),
    Case("caption-rank-image-is-pipe", _then_fifo(_rank("run", "{fifo}")), "not a regular file"),
]
CASES += _IMAGE_PIPE_CASES


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

