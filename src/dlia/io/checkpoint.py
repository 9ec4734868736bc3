"""Checkpoints: model parameters, optimizer state, step, RNG state, config, vocabulary and loss
history in one ``.npz`` file, written atomically and read with ``allow_pickle=False``.

Layout inside the archive: ``model/<name>`` arrays, ``optim/<param index>/<state name>`` arrays,
and ``__meta__``, a UTF-8 JSON document (as uint8) with everything else.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy

from dlia.core.random import Generator
from dlia.core.tensor import Tensor
from dlia.io.atomic import atomic_write, remove_stale_temp_files
from dlia.io.npz import NpzError, read_npz

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
    model_class: str | None = None  # the class name of the model that was saved


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


def _read(path: Path) -> tuple[dict[str, Any], dict[str, numpy.ndarray]]:
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():  # /dev/null, a pipe: there, but no checkpoint can be in it
        raise CheckpointError(f"{path} is not a regular file, so not a checkpoint")
    try:
        arrays = read_npz(path)
    except NpzError as e:
        raise CheckpointError(f"{path} is not a readable dlia checkpoint ({e})") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    raw = arrays.pop("__meta__", None)
    if raw is None:
        raise CheckpointError(f"{path} is not a dlia checkpoint (no __meta__ record)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} has corrupt metadata: {e}") from None
    except RecursionError:  # JSON nested deeper than Python's parser goes: no checkpoint writes that
        raise CheckpointError(f"{path} has corrupt metadata: nested too deeply") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path} is not a dlia checkpoint (format {found!r})")
    version = meta.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path} has corrupt metadata: format version {version!r} is not an integer")
    if version > VERSION:
        raise CheckpointError(f"{path} was written by a newer dlia (format version {version} > {VERSION})")
    _check_meta(path, meta, arrays)
    return meta, arrays


#: the metadata entries and the JSON types they must have (None: may be absent or null)
_META_TYPES: dict[str, tuple[type, ...]] = {
    "step": (int,), "config": (dict, type(None)), "vocab": (list, type(None)), "history": (dict, type(None)),
    "extra": (dict, type(None)), "model_class": (str, type(None)), "optimizer": (dict, type(None)),
    "rng": (dict, type(None)),
}


def _check_meta(path: Path, meta: dict[str, Any], arrays: dict[str, numpy.ndarray]) -> None:
    """Every entry has the type ``save_checkpoint`` writes and every array name has its form, so
    loading cannot stumble later (a KeyError, ``int('x')``) on a file that was edited or damaged."""
    for key, types in _META_TYPES.items():
        value = meta.get(key)
        if not isinstance(value, types) or isinstance(value, bool):
            what = "missing" if key not in meta else f"{type(value).__name__} {str(value)[:20]!r}"
            raise CheckpointError(f"{path} has corrupt metadata: {key!r} is {what}")
    for name in arrays:
        parts = name.split("/")
        if not (len(parts) == 2 and parts[0] == "model" or len(parts) == 3 and parts[0] == "optim" and _index(parts[1])):
            raise CheckpointError(f"{path} holds an unexpected array {name!r}")
    info = meta.get("optimizer")
    if info is not None:
        groups, scalars = info.get("param_groups"), info.get("scalars")
        if not isinstance(info.get("class"), str):
            raise CheckpointError(f"{path} has corrupt optimizer state: no optimizer class")
        if not isinstance(groups, list) or not all(isinstance(g, dict) and isinstance(g.get("params"), list)
                                                    and all(_count(i) for i in g["params"]) for g in groups):
            raise CheckpointError(f"{path} has corrupt optimizer state: 'param_groups' is not a list of groups")
        if not isinstance(scalars, dict) or not all(_index(k) and isinstance(v, dict) and all(_number(x) for x in v.values())
                                                     for k, v in scalars.items()):
            raise CheckpointError(f"{path} has corrupt optimizer state: 'scalars' is missing or not "
                                  "{parameter index: {name: value}}")
    for name, a in arrays.items():  # NaN or infinite weights would only show up as NaN predictions or losses
        if a.dtype.kind in "fc" and not numpy.isfinite(a).all():
            raise CheckpointError(f"{path} holds NaN or infinite values in {name!r}")


def _index(text: str) -> bool:
    return text.isdecimal() and text.isascii()


def _count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _hyperparameters_fit(saved: list[dict[str, Any]], own: list[dict[str, Any]]) -> str | None:
    """Why the saved parameter groups cannot replace the optimizer's own (None if they can): every
    hyper-parameter the optimizer has must keep its kind (a number stays a number, betas a pair)."""
    for g, (s, o) in enumerate(zip(saved, own)):
        for k, v in s.items():
            if k == "params" or k not in o:
                continue
            mine = o[k]
            if _number(mine):
                ok = _number(v)
            elif isinstance(mine, (tuple, list)):
                ok = isinstance(v, (tuple, list)) and len(v) == len(mine)
            else:
                ok = type(v) is type(mine)
            if not ok:
                return f"hyper-parameter {k!r} of group {g} is {v!r}"
    return None


def load_checkpoint(
    path: str | os.PathLike[str],
    model: Any = None,
    optimizer: Any = None,
    generator: Generator | None = None,
    strict: bool = True,
) -> Checkpoint:
    """Read a checkpoint and load it into ``model``, ``optimizer`` and ``generator`` when given.

    Nothing is modified unless the whole checkpoint fits: a missing, truncated, corrupt or
    mismatched file, one with NaN or infinite values, or one whose arrays declare more bytes than
    the file holds raises ``CheckpointError`` naming the file and what is wrong.
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
        for group in info["param_groups"]:  # the stepped parameters of a group keep the same entries
            stepped = [i for i in group["params"] if i in state]
            for i in stepped[1:]:
                if sorted(state[i]) != sorted(state[stepped[0]]):
                    raise CheckpointError(f"{p} has corrupt optimizer state: parameter {i} has {sorted(state[i])}, "
                                          f"parameter {stepped[0]} has {sorted(state[stepped[0]])}")
        opt_sd = {"state": state, "param_groups": info["param_groups"]}
        why = _hyperparameters_fit(info["param_groups"], optimizer.param_groups)
        if why is not None:
            raise CheckpointError(f"{p} has corrupt optimizer state: {why}")
    from dlia.nn.module import StateDictError

    if generator is not None:  # checked before anything is loaded, so a failure changes nothing
        rng = meta.get("rng")
        if rng is None:
            raise CheckpointError(f"{p} holds no RNG state")
        try:
            if rng.get("bit_generator") != "PCG64":
                raise ValueError("not a PCG64 state")
            numpy.random.PCG64().state = rng  # on a scratch generator: NumPy checks every field
        except (ValueError, TypeError, KeyError, OverflowError):
            raise CheckpointError(f"{p} has an unreadable RNG state") from None
    # load_state_dict swaps in new arrays, so this snapshot keeps the old values for a rollback
    snapshot = model.state_dict() if model is not None else None
    try:
        if model is not None:
            model.load_state_dict(model_state, strict=strict)
        if optimizer is not None:
            optimizer.load_state_dict(opt_sd)
        if generator is not None:
            generator.set_state(meta["rng"])
    except (CheckpointError, StateDictError, ValueError, KeyError, TypeError, IndexError) as e:
        if snapshot is not None:
            model.load_state_dict(snapshot, strict=False)
        if isinstance(e, CheckpointError):
            raise
        what = "the model" if isinstance(e, StateDictError) else "the optimizer or RNG"
        raise CheckpointError(f"{p} does not match {what}: {e}") from None
    return Checkpoint(
        path=p, step=meta.get("step", 0), config=meta.get("config") or {}, vocab=meta.get("vocab"),
        history=meta.get("history") or {}, extra=meta.get("extra") or {}, model_state=model_state,
        model_class=meta.get("model_class"),
    )


def expect_model_class(ckpt: Checkpoint, model_class: str, kind: str, command: str) -> None:
    """Refuse a checkpoint of another model before anything is built from it.

    Raises:
        CheckpointError: ``<path> is not a <kind> checkpoint (it holds a <class> model; '<command>' writes them)``.
    """
    if ckpt.model_class != model_class:
        held = f"a {ckpt.model_class} model" if ckpt.model_class else "no model"
        raise CheckpointError(f"{ckpt.path} is not a {kind} checkpoint (it holds {held}; '{command}' writes them)")


def expect_shapes(ckpt: Checkpoint, expected: dict[str, tuple[int, ...]], basis: str = "its config asks") -> None:
    """Refuse weights whose shapes are not those the checkpoint's own config implies, so that a
    damaged config cannot make a model of any size.

    Raises:
        CheckpointError: ``<path>: <basis> for <name> of shape <shape>, but the weights are <found>``.
    """
    for name, shape in expected.items():
        found = ckpt.model_state.get(name)
        if found is None or found.shape != shape:
            got = "missing" if found is None else f"{found.shape}"
            raise CheckpointError(f"{ckpt.path}: {basis} for {name} of shape {shape}, but the weights are {got}")


def checkpoint_name(prefix: str, epoch: float, val_loss: float | None = None, decimals: int = 0) -> str:
    """File name that says epoch and validation loss, as char-rnn does: ``lm_epoch003_1.2345.npz``.

    With ``decimals`` the epoch is fractional, for runs that save within an epoch (char-rnn's
    ``epoch2.35``): ``checkpoint_name("lm", 2.35, 1.2, decimals=2)`` → ``lm_epoch002.35_1.2000.npz``.
    A run that saves ``n`` times per epoch at most keeps names distinct with ``len(str(n))`` decimals.
    """
    # four decimals, or four significant digits beyond a million (a diverging run's perplexity could
    # otherwise give a name hundreds of digits long)
    loss = "" if val_loss is None else f"_{val_loss:.4f}" if abs(val_loss) < 1e6 else f"_{val_loss:.3e}"
    when = f"{epoch:0{4 + decimals}.{decimals}f}" if decimals > 0 else f"{int(epoch):03d}"
    return f"{prefix}_epoch{when}{loss}.npz"


def _names(prefix: str) -> str:
    """A regular expression for the file names ``checkpoint_name(prefix, ...)`` gives."""
    return rf"{re.escape(prefix)}_epoch(\d+(?:\.\d+)?)(?:_[-+0-9.naife]+)?\.npz"


def remove_stale_checkpoint_temps(folder: str | os.PathLike[str], prefix: str) -> list[Path]:
    """Remove temporary files that a killed ``save_checkpoint`` left in ``folder`` for checkpoints
    named ``checkpoint_name(prefix, ...)`` (call it when resuming); nothing else is touched."""
    return remove_stale_temp_files(folder, _names(prefix))


def latest_checkpoint(folder: str | os.PathLike[str], prefix: str) -> Path | None:
    """The checkpoint with the highest epoch in ``folder`` named by ``checkpoint_name``, if any."""
    pat = re.compile(rf"^{_names(prefix)}$")
    best: tuple[float, Path] | None = None
    d = Path(folder)
    if not d.is_dir():
        return None
    for f in d.iterdir():
        m = pat.match(f.name)
        if m and (best is None or float(m.group(1)) > best[0]):
            best = (float(m.group(1)), f)
    return None if best is None else best[1]
