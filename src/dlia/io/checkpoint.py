"""Checkpoints: model parameters, optimizer state, step, RNG state, config, vocabulary and loss
history in one ``.npz`` file, written atomically and read with ``allow_pickle=False``.

Layout inside the archive: ``model/<name>`` arrays, ``optim/<param index>/<state name>`` arrays,
and ``__meta__``, a UTF-8 JSON document (as uint8) with everything else.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy

from dlia.core.random import Generator
from dlia.core.tensor import Tensor
from dlia.io.atomic import atomic_write

FORMAT = "dlia-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, corrupt, or not matching the model."""


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` read, besides what it loaded into the model and optimizer."""

    path: Path
    step: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    vocab: list[Any] | None = None
    history: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    model_state: dict[str, numpy.ndarray] = field(default_factory=dict)


def _to_numpy(a: Any) -> numpy.ndarray:
    return Tensor(a).numpy() if not isinstance(a, numpy.ndarray) else a


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Any = None,
    optimizer: Any = None,
    step: int = 0,
    generator: Generator | None = None,
    config: dict[str, Any] | None = None,
    vocab: list[Any] | None = None,
    history: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temp file + rename).

    Args:
        path: target file (``.npz``).
        model: a ``dlia.nn.Module`` (its ``state_dict``).
        optimizer: a ``dlia.optim.Optimizer`` (its ``state_dict``).
        step: training step or epoch reached.
        generator: a ``dlia.Generator`` whose state is saved so a resumed run draws the same numbers.
        config: the model/training configuration (JSON-serialisable).
        vocab: vocabulary (list of tokens), for language models.
        history: loss curves etc. (JSON-serialisable).
        extra: anything else JSON-serialisable.

    Returns:
        The path written.
    """
    arrays: dict[str, numpy.ndarray] = {}
    meta: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "step": int(step), "config": config or {}, "vocab": vocab,
        "history": history or {}, "extra": extra or {},
    }
    if model is not None:
        for name, t in model.state_dict().items():
            arrays[f"model/{name}"] = _to_numpy(t.data)
        meta["model_class"] = type(model).__name__
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, state in sd["state"].items():
            for k, v in state.items():
                if hasattr(v, "shape") and not isinstance(v, numpy.generic):
                    arrays[f"optim/{idx}/{k}"] = _to_numpy(v)  # arrays, 0-d ones included
                else:
                    scalars.setdefault(str(idx), {})[k] = v.item() if hasattr(v, "item") else v
        meta["optimizer"] = {"class": type(optimizer).__name__, "param_groups": sd["param_groups"], "scalars": scalars}
    if generator is not None:
        meta["rng"] = generator.get_state()
    try:
        blob = json.dumps(meta).encode("utf-8")
    except TypeError as e:
        raise CheckpointError(f"checkpoint metadata is not JSON-serialisable: {e}") from None
    arrays["__meta__"] = numpy.frombuffer(blob, dtype=numpy.uint8)
    target = Path(path)
    with atomic_write(target, "wb") as f:
        numpy.savez(f, **arrays)
    return target


def npz_problem(e: BaseException) -> str:
    """Why ``numpy.load(..., allow_pickle=False)`` could not read a file, in the user's terms: NumPy
    says a file that is not an .npz archive "contains pickled data" and suggests unpickling it,
    which dlia never does."""
    text = str(e)
    if "pickle" in text:
        return "not an .npz archive"
    if isinstance(e, EOFError):  # NumPy's "No data left in file": nothing at all to read
        return "empty file"
    return text or "empty file"


def _read(path: Path) -> tuple[dict[str, Any], dict[str, numpy.ndarray]]:
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():  # /dev/null, a pipe: there, but no checkpoint can be in it
        raise CheckpointError(f"{path} is not a regular file, so not a checkpoint")
    try:
        with numpy.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise CheckpointError(f"{path} is not a readable dlia checkpoint (truncated or corrupt: {npz_problem(e)})") from None
    raw = arrays.pop("__meta__", None)
    if raw is None:
        raise CheckpointError(f"{path} is not a dlia checkpoint (no __meta__ record)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} has corrupt metadata: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path} is not a dlia checkpoint (format {found!r})")
    if meta.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer dlia (format version {meta['version']} > {VERSION})")
    return meta, arrays


def load_checkpoint(
    path: str | os.PathLike[str],
    model: Any = None,
    optimizer: Any = None,
    generator: Generator | None = None,
    strict: bool = True,
) -> Checkpoint:
    """Read a checkpoint and load it into ``model``, ``optimizer`` and ``generator`` when given.

    Nothing is modified unless the whole checkpoint fits: a truncated, corrupt or mismatched file
    raises ``CheckpointError`` with one clear message.
    """
    p = Path(path)
    meta, arrays = _read(p)
    model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    if optimizer is not None:
        info = meta.get("optimizer")
        if info is None:
            raise CheckpointError(f"{p} holds no optimizer state")
        if info["class"] != type(optimizer).__name__:
            raise CheckpointError(f"{p} holds {info['class']} state, but the optimizer is {type(optimizer).__name__}")
        state: dict[int, dict[str, Any]] = {}
        for k, v in arrays.items():
            if k.startswith("optim/"):
                _, idx, name = k.split("/", 2)
                state.setdefault(int(idx), {})[name] = v
        for idx, scal in info["scalars"].items():
            state.setdefault(int(idx), {}).update(scal)
        opt_sd = {"state": state, "param_groups": info["param_groups"]}
    from dlia.nn.module import StateDictError

    if generator is not None:  # checked before anything is loaded, so a failure changes nothing
        rng = meta.get("rng")
        if rng is None:
            raise CheckpointError(f"{p} holds no RNG state")
        if not isinstance(rng, dict) or rng.get("bit_generator") != "PCG64":
            raise CheckpointError(f"{p} has an unreadable RNG state")
    # load_state_dict swaps in new arrays, so this snapshot keeps the old values for a rollback
    snapshot = model.state_dict() if model is not None else None
    try:
        if model is not None:
            model.load_state_dict(model_state, strict=strict)
        if optimizer is not None:
            optimizer.load_state_dict(opt_sd)
        if generator is not None:
            generator.set_state(meta["rng"])
    except (CheckpointError, StateDictError, ValueError, KeyError) as e:
        if snapshot is not None:
            model.load_state_dict(snapshot, strict=False)
        if isinstance(e, CheckpointError):
            raise
        what = "the model" if isinstance(e, StateDictError) else "the optimizer or RNG"
        raise CheckpointError(f"{p} does not match {what}: {e}") from None
    return Checkpoint(
        path=p, step=int(meta.get("step", 0)), config=meta.get("config") or {}, vocab=meta.get("vocab"),
        history=meta.get("history") or {}, extra=meta.get("extra") or {}, model_state=model_state,
    )


def checkpoint_name(prefix: str, epoch: int, val_loss: float | None = None) -> str:
    """File name that says epoch and validation loss, as char-rnn does: ``lm_epoch003_1.2345.npz``."""
    loss = "" if val_loss is None else f"_{val_loss:.4f}"
    return f"{prefix}_epoch{epoch:03d}{loss}.npz"


def latest_checkpoint(folder: str | os.PathLike[str], prefix: str) -> Path | None:
    """The checkpoint with the highest epoch in ``folder`` named by ``checkpoint_name``, if any."""
    pat = re.compile(rf"^{re.escape(prefix)}_epoch(\d+)(?:_[-0-9.naif]+)?\.npz$")
    best: tuple[int, Path] | None = None
    d = Path(folder)
    if not d.is_dir():
        return None
    for f in d.iterdir():
        m = pat.match(f.name)
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), f)
    return None if best is None else best[1]
