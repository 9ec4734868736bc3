"""``dlia.text.read_parallel_tsv``: pairs in order, blank lines skipped, each malformed line and each
unreadable file refused in one line naming the file (and the line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlia.text import ParallelFormatError, TextError, read_parallel_tsv


def _write(tmp_path: Path, data: str | bytes) -> Path:
    p = tmp_path / "pairs.tsv"
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def test_reads_pairs_in_order(tmp_path: Path) -> None:
    p = _write(tmp_path, "\ufeff25th of November 2026\t2026-11-25\n\n   \nnaïve café\tcafé naïf\r\nNov 25, '26\t2026-11-25")
    assert read_parallel_tsv(p) == [("25th of November 2026", "2026-11-25"), ("naïve café", "café naïf"),
                                    ("Nov 25, '26", "2026-11-25")]


@pytest.mark.parametrize("body,line,what", [
    ("a\tb\nno tab here\nc\td\n", 2, "found no tab"),
    ("a\tb\n\n\nx\ty\tz\n", 4, "found 2 tabs"),
    ("a\tb\n\tonly target\n", 2, "the source side is empty"),
    ("a\tb\nonly source\t  \n", 2, "the target side is empty"),
])
def test_malformed_line_names_its_number(tmp_path: Path, body: str, line: int, what: str) -> None:
    p = _write(tmp_path, body)
    with pytest.raises(ParallelFormatError) as e:
        read_parallel_tsv(p)
    message = str(e.value)
    assert f"line {line}:" in message and what in message and str(p) in message and "\n" not in message
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("data,what", [
    (b"", "is empty"),
    (b"a\tb\x00\n", "binary file"),
    (b"caf\xe9\tcafe\n", "not UTF-8"),
])
def test_unreadable_files(tmp_path: Path, data: bytes, what: str) -> None:
    with pytest.raises(TextError, match=what):
        read_parallel_tsv(_write(tmp_path, data))


def test_missing_folder_and_blank_only(tmp_path: Path) -> None:
    with pytest.raises(TextError, match="no such file"):
        read_parallel_tsv(tmp_path / "nothing.tsv")
    with pytest.raises(TextError, match="is a folder"):
        read_parallel_tsv(tmp_path)
    with pytest.raises(ParallelFormatError, match="no source<TAB>target line"):
        read_parallel_tsv(_write(tmp_path, "\n  \n\n"))
