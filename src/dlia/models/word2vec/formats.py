"""The C word2vec tool's two vector file formats, read and written as the tool and gensim do.

Both start with a header line ``"V D\\n"`` (V words, D values each), then one record per word:

- binary: ``word`` as UTF-8 bytes, one space, ``D`` little-endian float32 (``4 D`` bytes), and a
  newline (the C tool writes it; gensim does not, and readers skip newlines before a word);
- text: ``word v1 v2 ... vD\\n``, the values as decimal numbers separated by single spaces.

Reading never unpickles anything and checks everything before trusting it: the header must be two
positive integers whose implied size fits in the file (so a corrupt header cannot make us allocate
terabytes), each record must be complete and numeric, no word may appear twice, and a word's bytes
must be UTF-8 unless ``unicode_errors`` says what to do with broken ones (the GoogleNews vectors
hold words cut in the middle of a character: ``"replace"`` or ``"ignore"``, as gensim's option).
Every problem raises a ``FormatError`` naming the file and what is wrong, in one line.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence
from pathlib import Path

import numpy

from dlia.io.atomic import atomic_write
from dlia.text.words import regular_file_size

#: the on-disk value type of the binary format: little-endian float32
DISK = numpy.dtype("<f4")
UNICODE_ERRORS = ("strict", "replace", "ignore")


class FormatError(ValueError):
    """A word vectors file that cannot be read (missing, truncated, wrong counts, not numbers,
    repeated or undecodable words); the message names the file and what is wrong."""


def _check_words(words: Sequence[str]) -> None:
    """Refuse words the formats cannot hold: a record ends its word at the first space (and the
    text format splits on any whitespace), so such a word would shift every value after it."""
    for i, w in enumerate(words):
        if not w or any(ch.isspace() for ch in w):
            raise ValueError(f"word {i} ({w!r}) cannot be saved in the word2vec formats: it is empty or holds whitespace")


def save_word2vec_format(path: str | os.PathLike[str], words: Sequence[str], vectors: numpy.ndarray, binary: bool = True,
                         total_vec: int | None = None) -> None:
    """Write ``words`` and their ``(V, D)`` ``vectors`` in the C tool's binary or text format.

    The file is written atomically (a temporary file renamed over ``path``), so an interrupted save
    leaves the previous file. Text values are the shortest decimals that read back to the same
    float32, so text files round-trip exactly too.

    Args:
        path: the file to write.
        words: V words, none empty or holding whitespace.
        vectors: ``(V, D)`` values, stored as float32.
        binary: the binary format (default, 4 bytes a value) rather than text.
        total_vec: the word count written in the header, at least V: for a caller that appends more
            records afterwards (gensim's option); None writes V.

    Raises:
        ValueError: a word the formats cannot hold, or ``total_vec < V``.
        OutputError: ``path`` cannot be written.
    """
    vectors = numpy.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"{len(words)} words need a ({len(words)}, D) matrix, got shape {vectors.shape}")
    _check_words(words)
    count = len(words) if total_vec is None else int(total_vec)
    if count < len(words):
        raise ValueError(f"total_vec={total_vec} is less than the {len(words)} words written")
    values = vectors.astype(DISK)
    with atomic_write(path, "wb") as f:
        f.write(f"{count} {values.shape[1]}\n".encode())
        if binary:
            for w, row in zip(words, values):
                f.write(w.encode("utf-8") + b" " + row.tobytes() + b"\n")
        else:
            # numpy's str of a float32 is the shortest decimal that reads back to the same float32;
            # converting a block of rows at once avoids a Python call per value
            for start in range(0, len(words), 4096):
                block = values[start:start + 4096].astype(str)
                lines = (w + " " + " ".join(row) + "\n" for w, row in zip(words[start:start + 4096], block.tolist()))
                f.write("".join(lines).encode("utf-8"))


def _open_regular(p: Path) -> int:
    """The size of ``p``, refused unless it is an existing, non-empty regular file."""
    size = regular_file_size(p, "a word vectors file", FormatError)
    if size == 0:
        raise FormatError(f"{p} is empty, not a word vectors file")
    return size


def _header(p: Path, data: mmap.mmap | bytes) -> tuple[int, int, int]:
    """``(V, D, offset of the first record)`` from the header line ``"V D\\n"``."""
    end = data.find(b"\n", 0, 200)
    line = data[:end if end >= 0 else 200]
    parts = line.split()
    if end < 0 or len(parts) != 2 or not all(x.isdigit() for x in parts) or int(parts[0]) < 1 or int(parts[1]) < 1:
        shown = ascii(line[:60].decode("latin-1"))  # every byte printable: control and non-ASCII bytes as escapes
        raise FormatError(f"{p} is not a word2vec file: its first line should be two positive integers "
                          f"'WORDS DIMENSIONS', got {shown}")
    return int(parts[0]), int(parts[1]), end + 1


def _looks_binary(data: mmap.mmap | bytes, start: int, dim: int) -> bool:
    """Whether the records are binary, from the first one. In the text format its line is a word and
    numbers separated by white space (``dim`` of them, else the text reader says what is wrong): all
    fields after the first read as numbers, or the line is printable UTF-8 text. The 4·D raw bytes of
    a binary record essentially never do either."""
    end = data.find(b"\n", start, start + 1_000_000)
    line = data[start:end] if end >= 0 else data[start:start + 1_000_000]
    fields = line.split()
    if len(fields) < 2:
        return True
    if all(_is_float(x) for x in fields[1:]):
        return False
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return not all(c.isprintable() or c in "\t\r" for c in text)


def _decode(p: Path, raw: bytes, index: int, offset: int, unicode_errors: str) -> tuple[str, bool]:
    """The word of record ``index`` (at byte ``offset``) and whether decoding it lost bytes."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError as e:
        if unicode_errors == "strict":
            raise FormatError(f"{p}: word {index} (at byte {offset + e.start}) is not valid UTF-8 "
                              f"({raw!r}); pass unicode_errors='replace' or 'ignore' to load it anyway") from None
        return raw.decode("utf-8", unicode_errors), True


class _Words:
    """Collects decoded words and refuses repeats. A repeat that only decoding made (two words cut
    differently in the middle of a character, equal once the broken bytes are replaced or dropped)
    keeps the first, as gensim does; a word repeated in the file itself is an error."""

    def __init__(self, p: Path) -> None:
        self.p = p
        self.words: list[str] = []
        self.seen: dict[str, int] = {}  # word -> its record number
        self.lossy: set[int] = set()  # record numbers whose word lost bytes in decoding

    def add(self, word: str, lossy: bool, index: int) -> bool:
        """Whether ``word`` (record ``index``) is kept, a new word."""
        first = self.seen.get(word)
        if first is not None:
            if not lossy and first not in self.lossy:
                raise FormatError(f"{self.p}: word {word!r} appears twice (words {first} and {index})")
            return False
        self.seen[word] = index
        if lossy:
            self.lossy.add(index)
        self.words.append(word)
        return True


def load_word2vec_format(path: str | os.PathLike[str], binary: bool | None = None, unicode_errors: str = "strict",
                         limit: int | None = None) -> tuple[list[str], numpy.ndarray]:
    """Read a file in the C tool's binary or text format: ``(words, (V, D) float32 vectors)``.

    Args:
        path: the file.
        binary: the format; None tells it from the file's first record (whatever the file's name):
            text when its line is a word and D numbers, else binary.
        unicode_errors: what to do with a word that is not valid UTF-8: "strict" (an error naming
            the word number and byte offset), "replace" (U+FFFD for the broken bytes) or "ignore"
            (drop them).
        limit: read only the first ``limit`` words (the file's most frequent, for trained vectors).

    Raises:
        FormatError: naming the file and what is wrong: missing or empty, a header that is not two
            positive integers or that promises more than the file can hold, a truncated or short
            record, a value that is not a number or not finite, a repeated word, broken UTF-8.
    """
    p = Path(path)
    if unicode_errors not in UNICODE_ERRORS:
        raise ValueError(f"unicode_errors must be one of {', '.join(UNICODE_ERRORS)}, got {unicode_errors!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of words, got {limit}")
    size = _open_regular(p)
    with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        count, dim, start = _header(p, data)
        if binary is None:
            binary = _looks_binary(data, start, dim)
        n = count if limit is None else min(count, limit)
        # the least each record can take: a 1-byte word, a space, the values (4 bytes each in binary;
        # a digit and a space each in text); a header claiming more than the file holds is refused
        # here, before allocating n x D floats
        least = n * (2 + 4 * dim) if binary else n * (2 + 2 * dim) - 1  # the last newline may be missing
        if start + least > size:
            raise FormatError(f"{p} is truncated or its header is wrong: {count:,} words of {dim:,} values need at "
                              f"least {start + least:,} bytes in the {'binary' if binary else 'text'} format, "
                              f"the file has {size:,}")
        read = _read_binary if binary else _read_text
        words, vectors, end = read(p, data, start, n, dim, unicode_errors)
        if n == count and data[end:].strip():
            raise FormatError(f"{p} holds more data after the {count:,} words its header announces "
                              f"(at byte {end:,}): the header's word count is wrong")
    if not numpy.isfinite(vectors).all():
        row = int(numpy.flatnonzero(~numpy.isfinite(vectors).all(axis=1))[0])
        raise FormatError(f"{p}: the vector of word {words[row]!r} holds NaN or infinite values")
    return words, vectors


def _read_binary(p: Path, data: mmap.mmap, pos: int, n: int, dim: int, unicode_errors: str,
                 ) -> tuple[list[str], numpy.ndarray, int]:
    """The first ``n`` binary records from byte ``pos``: (words, vectors, the byte after the last)."""
    vectors = numpy.empty((n, dim), dtype=numpy.float32)
    nbytes = 4 * dim
    seen = _Words(p)
    for i in range(n):
        while data[pos:pos + 1] == b"\n":  # the C tool ends each record with a newline, gensim does not
            pos += 1
        space = data.find(b" ", pos, pos + 100_000)
        if space < 0 or space + 1 + nbytes > len(data):
            raise FormatError(f"{p} is truncated: word {i} of {n:,} (at byte {pos:,}) is incomplete; "
                              f"the header's word count or dimension may be wrong")
        raw = data[pos:space]
        # no word is empty or holds a NUL or a newline (tokens are split at white space, and text
        # holds no NUL); when one seems to, the reading is misaligned: the records hold more or
        # fewer values than the header's dimension. Other control bytes are legal in words (gensim
        # reads them too).
        if not raw or b"\x00" in raw or b"\n" in raw:
            raise FormatError(f"{p}: word {i} (at byte {pos:,}) is empty or holds a NUL or newline byte ({raw[:40]!r}): "
                              f"the records do not hold the {dim:,} values the header says")
        word, lossy = _decode(p, raw, i, pos, unicode_errors)
        if seen.add(word, lossy, i):
            vectors[len(seen.words) - 1] = numpy.frombuffer(data, DISK, dim, space + 1)
        pos = space + 1 + nbytes
    return seen.words, vectors[:len(seen.words)], pos


def _read_text(p: Path, data: mmap.mmap, pos: int, n: int, dim: int, unicode_errors: str,
               ) -> tuple[list[str], numpy.ndarray, int]:
    """The first ``n`` text lines from byte ``pos``: (words, vectors, the byte after the last)."""
    vectors = numpy.empty((n, dim), dtype=numpy.float32)
    seen = _Words(p)
    line_no = 1
    for i in range(n):
        end = data.find(b"\n", pos)
        line = data[pos:] if end < 0 else data[pos:end]
        line_no += 1
        parts = line.split()
        if not parts:
            raise FormatError(f"{p} is truncated or its header is wrong: line {line_no} should hold word {i + 1} "
                              f"of {n:,}, it is empty")
        if len(parts) != dim + 1:
            raise FormatError(f"{p}: line {line_no} holds {len(parts) - 1} values after its word, the header says {dim}")
        word, lossy = _decode(p, parts[0], i, pos, unicode_errors)
        try:
            values = [float(x) for x in parts[1:]]
        except ValueError:
            bad = next(x for x in parts[1:] if not _is_float(x))
            raise FormatError(f"{p}: line {line_no} ({word!r}) holds {bad.decode('utf-8', 'replace')!r}, "
                              f"which is not a number") from None
        if seen.add(word, lossy, i):
            vectors[len(seen.words) - 1] = values
        pos = len(data) if end < 0 else end + 1
    return seen.words, vectors[:len(seen.words)], pos


def _is_float(x: bytes) -> bool:
    try:
        float(x)
    except ValueError:
        return False
    return True
