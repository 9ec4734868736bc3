"""Characters as tokens: a sorted vocabulary of Unicode code points and a safe UTF-8 reader.

Encoding never loops over characters in Python: the text is viewed as UTF-32 (one 4-byte code
point per character) and every code point is looked up at once in a table indexed by code point.
On tiny-shakespeare (1,115,394 characters) ``encode`` takes ~10 ms and its peak memory is about
8 bytes per character: the UTF-32 copy and the int32 ids (measured with ``tracemalloc``; see
docs/rnn.md).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy

#: what ids are stored as: every code point (< 0x110000) and every vocabulary index fits
ID_DTYPE = numpy.int32


class TextError(ValueError):
    """A text file or string that cannot be used (missing, empty, binary, not UTF-8); the message
    names the file and what is wrong."""


def read_text(path: str | os.PathLike[str]) -> str:
    """The contents of a UTF-8 text file, refused with a ``TextError`` naming the file when it is
    missing, a folder, empty, binary (a NUL byte) or not UTF-8 (naming the byte offset).

    A leading byte-order mark (``EF BB BF``, written by some Windows editors) is dropped, since it
    is no character of the text. Line endings are kept as they are.

    Example:
        >>> read_text("input.txt")[:12]  # doctest: +SKIP
        'First Citize'
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):  # a FIFO would block, a device never end
            raise TextError(f"{p} is not a regular file (a pipe, socket or device), so not a text file")
        data = p.read_bytes()
    except FileNotFoundError:
        raise TextError(f"no such file: {p}") from None
    except IsADirectoryError:
        raise TextError(f"{p} is a folder, not a text file") from None
    except OSError as e:
        raise TextError(f"cannot read {p}: {e.strerror or e}") from None
    if not data:
        raise TextError(f"{p} is empty")
    nul = data.find(b"\x00")
    if nul >= 0:  # UTF-8 text never holds NUL; binary files (images, archives, UTF-16) almost always do
        raise TextError(f"{p} is a binary file, not text (a NUL byte at offset {nul})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = data[e.start:e.start + 1].hex().upper()
        raise TextError(f"{p} is not UTF-8 text (byte 0x{bad} at offset {e.start}); convert it first, "
                        f"e.g. iconv -f latin1 -t utf-8") from None
    text = text.removeprefix("\ufeff")
    if not text:
        raise TextError(f"{p} is empty (only a byte-order mark)")
    return text


def _code_points(text: str) -> numpy.ndarray:
    """The code points of ``text`` as a uint32 array (a view of its UTF-32 encoding, no Python loop)."""
    # surrogatepass: a lone surrogate (from undecodable bytes in argv, say) becomes its code point,
    # which no vocabulary holds, so it is reported as an unknown character rather than crashing
    return numpy.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=numpy.uint32)


class CharVocab:
    """The characters of a text, sorted by code point (as char-rnn sorts its bytes), and the
    mapping between them and the ids ``0 .. len(vocab) - 1``.

    Characters are Unicode code points, not bytes: "é" is one token, not two.

    Args:
        chars: distinct one-character strings; they are sorted.

    Example:
        >>> v = CharVocab.from_text("hello")
        >>> v.chars
        ['e', 'h', 'l', 'o']
        >>> v.encode("hole").tolist()
        [1, 3, 2, 0]
        >>> v.decode([1, 0, 2, 2, 3])
        'hello'
    """

    def __init__(self, chars: Iterable[str]) -> None:
        chars = list(chars)
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"CharVocab: every entry must be one character, got {c!r}")
            if 0xD800 <= ord(c) <= 0xDFFF:  # lone surrogates cannot be written as UTF-8 (or JSON)
                raise ValueError(f"CharVocab: U+{ord(c):04X} is a surrogate, not a character")
        if len(set(chars)) != len(chars):
            raise ValueError("CharVocab: characters repeat")
        if not chars:
            raise ValueError("CharVocab: no characters")
        self.chars = sorted(chars)
        self._codes = numpy.array([ord(c) for c in self.chars], dtype=numpy.uint32)
        # code point → id (-1: not in the vocabulary); at most 0x110000 entries (4.4 MB), usually ~100
        self._table = numpy.full(int(self._codes[-1]) + 1, -1, dtype=ID_DTYPE)
        self._table[self._codes] = numpy.arange(len(self.chars), dtype=ID_DTYPE)

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """The vocabulary of every distinct character of ``text`` (``set`` runs in C: ~10 ms per MB)."""
        if not text:
            raise ValueError("CharVocab.from_text: the text is empty")
        return cls(set(text))

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: object) -> bool:
        return isinstance(char, str) and len(char) == 1 and ord(char) < len(self._table) and self._table[ord(char)] >= 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocab) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters)"

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that are not in the vocabulary, in order of appearance."""
        return [c for c in dict.fromkeys(text) if c not in self]

    def encode(self, text: str) -> numpy.ndarray:
        """``text`` → an int32 array of ids, one per character.

        Raises:
            ValueError: naming the first character (and its code point) that is not in the vocabulary.
        """
        codes = _code_points(text)
        if codes.size == 0:
            return numpy.empty(0, dtype=ID_DTYPE)
        if int(codes.max()) >= len(self._table):  # beyond the table: surely unknown
            ids = numpy.full(codes.shape, -1, dtype=ID_DTYPE)
            inside = codes < len(self._table)
            ids[inside] = self._table[codes[inside]]
        else:
            ids = self._table[codes]
        if ids.min() < 0:
            c = text[int(numpy.argmax(ids < 0))]
            raise ValueError(f"character {c!r} (U+{ord(c):04X}) is not in the vocabulary")
        return ids

    def decode(self, ids: Any) -> str:
        """Ids (any integer array-like) → the text they stand for.

        Raises:
            IndexError: an id outside ``0 .. len(vocab) - 1``.
        """
        ids = checked_ids(ids, len(self), "characters")
        return self._codes[ids.astype(numpy.intp, copy=False)].tobytes().decode("utf-32-le")

    def to_list(self) -> list[str]:
        """The characters in id order: JSON-safe, for a checkpoint's ``vocab``."""
        return list(self.chars)

    @classmethod
    def from_list(cls, chars: Any) -> CharVocab:
        """The vocabulary ``to_list`` gave, checked: a list of distinct, sorted characters.

        Raises:
            ValueError: anything else (a damaged checkpoint).
        """
        if not isinstance(chars, list):
            raise ValueError(f"a character vocabulary is a list of characters, got {type(chars).__name__}")
        vocab = cls(chars)
        if vocab.chars != chars:
            raise ValueError("the character vocabulary is not sorted by code point")
        return vocab


def checked_ids(ids: Any, size: int, unit: str) -> numpy.ndarray:
    """``ids`` as an integer array, every one within ``0 .. size - 1`` (a vocabulary of ``size``
    ``unit``, "characters" or "words", for the message).

    Raises:
        TypeError: ids that are not integers.
        IndexError: an id outside the vocabulary.
    """
    ids = numpy.asarray(ids)
    if ids.size and ids.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers, got {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= size):
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise IndexError(f"id {int(bad)} is outside the vocabulary of {size} {unit}")
    return ids

