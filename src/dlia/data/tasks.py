"""Translation tasks for ``dlia.models.translation``: the dates task and parallel TSV corpora, split
into training, validation and test pairs, each with a description that rebuilds it exactly (a
checkpoint keeps it, so a resumed run trains on the same pairs).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy

from dlia.data.dates import HELD_OUT_STYLES, SOURCE_CHARS, TARGET_CHARS, TRAIN_STYLES, dates_dataset
from dlia.text import read_parallel_tsv

TOKEN_KINDS = ("char", "word")

Pairs = list[tuple[str, str]]


@dataclass
class Task:
    """The examples of a translation task.

    Attributes:
        name: ``"dates"`` or the TSV file's path.
        tokens: ``"char"`` or ``"word"``.
        train, val: (source, target) pairs.
        tests: named test sets (dates: ``"seen styles"`` and ``"held-out styles"``; TSV: ``"test"``).
        description: JSON that ``task_from_description`` turns back into this task.
        fixed_tokens: (source, target) characters of a task whose vocabularies are fixed (the dates
            task: every character any style writes), or None: built from the training pairs.
    """

    name: str
    tokens: str
    train: Pairs
    val: Pairs
    tests: dict[str, Pairs]
    description: dict[str, Any] = field(default_factory=dict)
    fixed_tokens: tuple[str, str] | None = None


def _unseen(pairs: Pairs, seen: set[str], n: int) -> Pairs:
    return [p for p in pairs if p[0] not in seen][:n]


def dates_task(train_size: int = 20_000, seed: int = 0, val_size: int = 1000, test_size: int = 1000) -> Task:
    """The dates task (``dlia.data.dates``), character level, with fixed vocabularies.

    Training pairs: ``dates_dataset(train_size, TRAIN_STYLES, 4·seed)``. Validation and the ``"seen
    styles"`` test: other draws of the training styles (seeds ``4·seed + 1``, ``+ 2``); the
    ``"held-out styles"`` test: ``HELD_OUT_STYLES`` (``+ 3``). Sources that occur in the training
    pairs are left out of validation and tests, so every evaluated date string is new.
    """
    for name, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"dates task: {name} must be a positive integer, got {value!r}")
    train = dates_dataset(train_size, TRAIN_STYLES, seed=4 * seed)
    seen = {s for s, _ in train}
    val = _unseen(dates_dataset(2 * val_size, TRAIN_STYLES, seed=4 * seed + 1), seen, val_size)
    tests = {"seen styles": _unseen(dates_dataset(2 * test_size, TRAIN_STYLES, seed=4 * seed + 2), seen, test_size),
             "held-out styles": _unseen(dates_dataset(2 * test_size, HELD_OUT_STYLES, seed=4 * seed + 3), seen, test_size)}
    description = {"task": "dates", "train_size": train_size, "seed": seed, "val_size": val_size, "test_size": test_size}
    return Task("dates", "char", train, val, tests, description, (SOURCE_CHARS, TARGET_CHARS))


def pairs_fingerprint(pairs: Pairs) -> str:
    """SHA-256 of the pairs: a resumed run checks it trains on the same corpus."""
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode("utf-8")).hexdigest()


def tsv_task(path: str | os.PathLike[str], tokens: str = "word", seed: int = 0, val_frac: float = 0.1,
             test_frac: float = 0.1) -> Task:
    """A parallel corpus read with ``read_parallel_tsv``, split by a seeded shuffle.

    The pairs are permuted by ``numpy.random.default_rng(seed)``; the first ``max(1, round(val_frac·n))``
    validate, the next ``max(1, round(test_frac·n))`` test, the rest (at least one) train.

    Raises:
        TextError: the file cannot be read or a line is malformed (naming its line number).
        ValueError: fewer than 3 pairs, or bad fractions.
    """
    if tokens not in TOKEN_KINDS:
        raise ValueError(f"tokens must be one of {', '.join(TOKEN_KINDS)}, got {tokens!r}")
    if not (0 < val_frac < 1 and 0 < test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError(f"validation and test fractions must be in (0, 1) with a sum below 1, got {val_frac} and {test_frac}")
    pairs = read_parallel_tsv(path)
    n = len(pairs)
    n_val, n_test = max(1, round(val_frac * n)), max(1, round(test_frac * n))
    if n - n_val - n_test < 1:
        raise ValueError(f"{path} has {n} pair{'s' * (n != 1)}; training, validation and test need at least "
                         f"{n_val + n_test + 1}")
    order = numpy.random.default_rng(seed).permutation(n)
    shuffled = [pairs[i] for i in order]
    val, test, train = shuffled[:n_val], shuffled[n_val:n_val + n_test], shuffled[n_val + n_test:]
    description = {"task": "tsv", "path": os.path.abspath(path), "tokens": tokens, "seed": seed, "val_frac": val_frac,
                   "test_frac": test_frac, "sha256": pairs_fingerprint(pairs)}
    return Task(str(path), tokens, train, val, {"test": test}, description)


def task_from_description(d: Any, path: str | os.PathLike[str] | None = None) -> Task:
    """The task a checkpoint's description names, rebuilt; a TSV task reads ``path`` (default: the
    recorded one) and checks it holds the same pairs.

    Raises:
        ValueError: a damaged description, or a file that is not the corpus the run was trained on.
    """
    if not isinstance(d, dict) or d.get("task") not in ("dates", "tsv"):
        raise ValueError("the task description is damaged")
    try:
        if d["task"] == "dates":
            return dates_task(d["train_size"], d["seed"], d["val_size"], d["test_size"])
        source = path if path is not None else d["path"]
        task = tsv_task(source, d["tokens"], d["seed"], d["val_frac"], d["test_frac"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"the task description is damaged ({e})") from None
    if task.description["sha256"] != d.get("sha256"):
        raise ValueError(f"{source} is not the corpus the run was trained on (its pairs differ)")
    return task


