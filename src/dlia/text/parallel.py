"""Parallel corpora as TSV: one "source<TAB>target" pair per line, UTF-8, for seq2seq tasks.

The file is read with ``read_text`` (so a missing, empty, binary or non-UTF-8 file is refused the
same way as a corpus), split into lines (``\\n``, ``\\r\\n``), and each non-blank line must hold
exactly one tab with text on both sides. Sides are kept as they are apart from the line ending:
spaces inside a side are part of the text (the model may be character-level).
"""

from __future__ import annotations

import os

from dlia.text.chars import TextError, read_text


class ParallelFormatError(TextError):
    """A line of a parallel TSV file that is not "source<TAB>target"; the message names the file and line."""


def read_parallel_tsv(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """The (source, target) pairs of a UTF-8 "source<TAB>target" file, in file order.

    Blank lines (empty or only whitespace) are skipped. A trailing ``\\r`` is dropped.

    Raises:
        TextError: the file is missing, a folder, empty, binary or not UTF-8 (see ``read_text``).
        ParallelFormatError: a line without a tab, with more than one tab, or with an empty side,
            naming its 1-based line number; or a file with no pair at all (only blank lines).

    Example:
        >>> read_parallel_tsv("dates.tsv")[:1]  # doctest: +SKIP
        [('25th of November 2026', '2026-11-25')]
    """
    text = read_text(path)
    pairs = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        tabs = line.count("\t")
        if tabs != 1:
            what = "no tab" if tabs == 0 else f"{tabs} tabs"
            raise ParallelFormatError(f"{path}, line {number}: expected source<TAB>target, found {what}: {line[:60]!r}")
        source, target = line.split("\t")
        for side, value in (("source", source), ("target", target)):
            if not value.strip():
                raise ParallelFormatError(f"{path}, line {number}: the {side} side is empty: {line[:60]!r}")
        pairs.append((source, target))
    if not pairs:
        raise ParallelFormatError(f"{path} has no source<TAB>target line (only blank lines)")
    return pairs
