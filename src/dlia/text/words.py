"""Words as tokens: a frequency-sorted vocabulary and two streaming passes over a corpus file.

A token is what ``str.split()`` gives: a maximal run of non-whitespace characters (Unicode
whitespace, so a no-break space separates words too); a sentence is a line (text up to ``"\\n"``).
Both are the rules of gensim's ``LineSentence``, so gensim sees the same tokens and sentences.

A corpus of any size is read twice, a block of ``chunk_bytes`` at a time, never whole:

1. ``count_words``: the count of every distinct word (``collections.Counter.update`` runs in C),
   from which ``WordVocab.build`` keeps the frequent words.
2. ``encode_corpus``: the token ids (int32) and the sentence boundaries, without keeping the text
   as Python strings (``dict.get`` mapped over each block's tokens in C, then NumPy).

Blocks are cut after the last newline they hold (after the last whitespace byte when a line is
longer than a block), so no word, no multi-byte character and no line rule is broken at a block
boundary: any ``chunk_bytes`` gives the same result. On enwiki-sample (2.9 MB, 469k tokens) each
pass runs at about 3M tokens/s, both together at about 1.5M (docs/word2vec.md).
"""

from __future__ import annotations

import collections
import itertools
import numbers
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy

from dlia.text.chars import ID_DTYPE, TextError, checked_ids

#: progress callback: (bytes read so far, size of the file in bytes)
Progress = Callable[[int, int], None]

#: how much of a corpus file is read at a time: 1 MiB blocks were faster than 16 MiB ones (1.9M vs
#: 1.3M tokens/s for both passes on 4 × enwiki-sample) and the peak memory ~8× smaller (30 vs 250 MB)
CHUNK_BYTES = 1 << 20

#: gensim's default cap on a sentence's length (its ``MAX_WORDS_IN_BATCH``; the C word2vec's is 1000)
MAX_SENTENCE_LENGTH = 10000

_NEWLINE = b"\n"
#: the ASCII bytes ``str.split()`` treats as whitespace; in UTF-8 they never occur inside a
#: multi-byte character, so cutting after one never splits a character or a word
_SPACE_BYTES = (b" ", b"\t", b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f")


class VocabError(ValueError):
    """A word vocabulary that cannot be built or used (nothing left after ``min_count``, an unknown
    word, a malformed vocabulary file); the message names the word or the file and line."""


def tokenize(line: str, lowercase: bool = False) -> list[str]:
    """The tokens of ``line``: ``str.split()`` (runs of non-whitespace), lowercased with
    ``str.lower()`` when asked.

    Example:
        >>> tokenize("The cat  sat.\\n", lowercase=True)
        ['the', 'cat', 'sat.']
    """
    return (line.lower() if lowercase else line).split()


class WordVocab:
    """Words and their counts; the id of a word is its position in ``words``.

    ``build`` sorts words by count, descending, ties in order of first appearance in the corpus
    (never hash order, so ids are the same in every process); the constructor keeps the order it
    is given (a vocabulary file's, a checkpoint's).

    Attributes:
        words: id → word, ``V`` distinct non-empty strings without whitespace.
        counts: int64 array, shape ``(V,)``: ``counts[i]`` is how often ``words[i]`` occurs.

    Example:
        >>> v = WordVocab.build({"b": 1, "a": 3, "c": 3, "d": 1}, min_count=1, max_vocab=3)
        >>> v.words, v.counts.tolist()
        (['a', 'c', 'b'], [3, 3, 1])
        >>> v.encode(["c", "zebra", "a"]).tolist()
        [1, -1, 0]
    """

    def __init__(self, words: Iterable[str], counts: Iterable[int]) -> None:
        words = list(words)
        counts = numpy.asarray(counts if isinstance(counts, numpy.ndarray) else list(counts))
        if not words:
            raise VocabError("a word vocabulary needs at least one word")
        for w in words:
            if not isinstance(w, str):
                raise VocabError(f"every word must be a string, got {w!r}")
        # one pass in C for the common case: joined with spaces and split again, words come back
        # unchanged exactly when none is empty or holds whitespace
        if " ".join(words).split() != words:
            bad = next(w for w in words if w.split() != [w])
            raise VocabError(f"a word must be non-empty and hold no whitespace, got {bad!r}")
        try:
            "".join(words).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (from bytes decoded with surrogateescape)
            bad = next(w for w in words if not _is_utf8(w))
            raise VocabError(f"the word {bad!r} holds a lone surrogate, which UTF-8 cannot store") from None
        self._index: dict[str, int] = dict(zip(words, range(len(words)), strict=True))
        if len(self._index) != len(words):
            dup = next(w for i, w in enumerate(words) if self._index[w] != i)  # the dict kept the last one
            raise VocabError(f"the word {dup!r} occurs twice in the vocabulary")
        if counts.shape != (len(words),):
            raise VocabError(f"{len(words)} words but counts of shape {counts.shape}")
        if counts.dtype.kind not in "iu":
            raise VocabError(f"counts must be integers, got {counts.dtype}")
        if counts.min() < 0:
            i = int(numpy.argmin(counts))
            raise VocabError(f"the count of {words[i]!r} is negative ({int(counts[i])})")
        self.words: list[str] = words
        self.counts: numpy.ndarray = counts.astype(numpy.int64)

    @classmethod
    def build(cls, counts: Mapping[str, int], min_count: int = 1, max_vocab: int | None = None) -> WordVocab:
        """The words of ``counts`` that occur at least ``min_count`` times, most frequent first,
        at most ``max_vocab`` of them.

        Ties keep the order of ``counts`` (``count_words`` gives first appearance in the corpus):
        the sort is stable. ``max_vocab`` keeps the first ``max_vocab`` words of that order, so a
        tie at the cut is decided by first appearance too.

        Args:
            counts: word → count, e.g. ``count_words(path).counts``.
            min_count: the least count a word needs (the C tool's and gensim's ``min_count``).
            max_vocab: the most words to keep, None for no limit.

        Raises:
            VocabError: no word is left, naming how many distinct words there were and the largest
                count; or bad arguments.
        """
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 0:
            raise VocabError(f"min_count must be a non-negative integer, got {min_count!r}")
        if max_vocab is not None and (isinstance(max_vocab, bool) or not isinstance(max_vocab, int) or max_vocab < 1):
            raise VocabError(f"max_vocab must be a positive integer or None, got {max_vocab!r}")
        words = list(counts.keys())
        if not words:
            raise VocabError("no words were counted: the corpus is empty")
        n = numpy.array(list(counts.values()))
        if n.dtype.kind not in "iu":
            raise VocabError(f"counts must be integers, got {n.dtype}")
        keep = n >= min_count
        if not keep.any():
            top = int(numpy.argmax(n))
            raise VocabError(f"no word occurs at least {min_count} times: of the {len(words)} distinct words, "
                             f"the most frequent ({words[top]!r}) occurs {int(n[top])} time{'s' * (int(n[top]) != 1)}; "
                             f"try a lower --min-count")
        words = list(itertools.compress(words, keep))
        n = n[keep]
        order = numpy.argsort(-n, kind="stable")[:max_vocab]
        return cls([words[i] for i in order.tolist()], n[order])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordVocab) and self.words == other.words and numpy.array_equal(self.counts, other.counts)

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside: like a list, not hashable

    def __repr__(self) -> str:
        return f"WordVocab({len(self)} words, {self.total} tokens)"

    @property
    def total(self) -> int:
        """The sum of the counts: how many tokens of the corpus are in the vocabulary."""
        return int(self.counts.sum())

    def index(self, word: str) -> int:
        """The id of ``word``.

        Raises:
            VocabError: ``word`` is not in the vocabulary (naming it).
        """
        i = self._index.get(word) if isinstance(word, str) else None
        if i is None:
            raise VocabError(f"the word {word!r} is not in the vocabulary ({len(self)} words)")
        return i

    def get(self, word: str, default: int = -1) -> int:
        """The id of ``word``, ``default`` when it is not in the vocabulary."""
        return self._index.get(word, default)

    def encode(self, tokens: Sequence[str], unknown: int = -1) -> numpy.ndarray:
        """Tokens → an int32 array of their ids, ``unknown`` for tokens not in the vocabulary.

        The lookup is ``dict.get`` mapped over the tokens (a loop in C, ~30 ns per token).
        """
        return numpy.fromiter(map(self._index.get, tokens, itertools.repeat(unknown)), dtype=ID_DTYPE, count=len(tokens))

    def decode(self, ids: Any) -> list[str]:
        """Ids (any integer array-like) → their words.

        Raises:
            IndexError: an id outside ``0 .. len(vocab) - 1``.
        """
        ids = checked_ids(ids, len(self), "words")
        return [self.words[i] for i in ids.ravel().tolist()]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as the C word2vec's ``-save-vocab`` does (and gensim's ``fvocab``):
        one ``word count`` line per word, in id order, UTF-8. The write is atomic: a crash leaves
        the old file or the new one, never half of one."""
        lines = [f"{w} {c}\n" for w, c in zip(self.words, self.counts.tolist(), strict=True)]
        _write_atomically(Path(path), "".join(lines).encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike[str], errors: str = "strict") -> WordVocab:
        """Read a vocabulary file in the format ``save`` writes (the C tool's ``-save-vocab``, gensim's
        ``fvocab``); ids follow the order of the lines. Blank lines are skipped.

        Args:
            path: the file.
            errors: how undecodable bytes are handled (``"strict"``: refused; ``"replace"``,
                ``"ignore"`` as in ``bytes.decode``), for files whose words hold broken UTF-8.

        Raises:
            TextError: the file is missing, a folder or not a regular file.
            VocabError: a line that is not ``word count``, a repeated word, bytes that are not
                UTF-8, or no words at all, naming the file and line.
        """
        p = Path(path)
        regular_file_size(p)
        words: list[str] = []
        counts: list[int] = []
        seen: dict[str, int] = {}  # word -> its line, to name both lines of a repeated word
        try:
            with open(p, "rb") as f:
                for number, raw in enumerate(f, 1):
                    try:
                        line = raw.decode("utf-8", errors)
                    except UnicodeDecodeError as e:
                        raise VocabError(f"{p}, line {number}: not UTF-8 (byte 0x{raw[e.start]:02X}); "
                                         f"load it with errors='replace' to keep such words") from None
                    if number == 1:
                        line = line.removeprefix("\ufeff")
                    parts = line.split()
                    if not parts:
                        continue
                    if len(parts) != 2 or not (parts[1].isascii() and parts[1].isdigit()):
                        raise VocabError(f"{p}, line {number}: expected 'word count', got {line.strip()[:60]!r}")
                    if parts[0] in seen:
                        raise VocabError(f"{p}, line {number}: the word {parts[0]!r} repeats line {seen[parts[0]]}")
                    seen[parts[0]] = number
                    words.append(parts[0])
                    counts.append(int(parts[1]))
        except OSError as e:
            raise TextError(f"cannot read {p}: {e.strerror or e}") from None
        if not words:
            raise VocabError(f"{p} holds no words (a vocabulary file has one 'word count' line per word)")
        try:
            return cls(words, counts)
        except VocabError as e:  # a word UTF-8 cannot store (errors="surrogateescape")
            raise VocabError(f"{p}: {e}") from None

    def to_state(self) -> dict[str, list]:
        """The vocabulary as JSON-able lists, for a checkpoint's metadata."""
        return {"words": list(self.words), "counts": self.counts.tolist()}

    @classmethod
    def from_state(cls, state: Any) -> WordVocab:
        """The vocabulary ``to_state`` gave, checked.

        Raises:
            VocabError: anything else (a damaged checkpoint).
        """
        if not isinstance(state, dict) or set(state) != {"words", "counts"}:
            raise VocabError(f"a word vocabulary's state is a dict with 'words' and 'counts', got {_describe(state)}")
        words, counts = state["words"], state["counts"]
        if not isinstance(words, list) or not isinstance(counts, list):
            raise VocabError("a word vocabulary's 'words' and 'counts' must be lists")
        if any(isinstance(c, bool) or not isinstance(c, int) for c in counts):
            raise VocabError("a word vocabulary's counts must be integers")
        return cls(words, numpy.array(counts, dtype=numpy.int64))


@dataclass(frozen=True)
class CorpusCounts:
    """What ``count_words`` found in a corpus file.

    Attributes:
        counts: word → count, in order of first appearance in the file.
        tokens: how many tokens the file holds (the sum of ``counts``).
        lines: how many lines (newlines, plus one for a last line without a newline).
        bytes: the size of the file read.
    """

    counts: dict[str, int]
    tokens: int
    lines: int
    bytes: int


def count_words(path: str | os.PathLike[str], lowercase: bool = False, chunk_bytes: int = CHUNK_BYTES,
                progress: Progress | None = None) -> CorpusCounts:
    """Count the words of a UTF-8 corpus file of any size in one streaming pass.

    Memory: the counts, plus one block of ``chunk_bytes`` with its text and tokens as Python
    strings: about 30 × ``chunk_bytes`` (a short word costs ~55 bytes as a str in a list), 30 MB
    at the default 1 MiB.

    Args:
        path: the corpus, words separated by whitespace, one sentence per line.
        lowercase: count ``str.lower()`` of every token.
        chunk_bytes: how much is read at a time (results do not depend on it).
        progress: called as ``progress(bytes_done, bytes_total)`` after each block.

    Raises:
        TextError: the file is missing, a folder, a pipe or device, empty, holds no words, is binary
            (a NUL byte; its offset) or not UTF-8 (the byte offset in the file and the line).

    Example:
        >>> c = count_words("../shared/data/enwiki-sample.txt")  # doctest: +SKIP
        >>> c.tokens, c.lines, len(c.counts)  # doctest: +SKIP
        (469147, 106, 34317)
        >>> WordVocab.build(c.counts, min_count=5)  # doctest: +SKIP
        WordVocab(9035 words, 428631 tokens)
    """
    counter: collections.Counter[str] = collections.Counter()  # a dict: keeps insertion order
    tokens = lines = size = 0
    last = ""
    for text, done in _text_blocks(path, chunk_bytes, progress):
        size = done
        words = tokenize(text, lowercase)
        counter.update(words)
        tokens += len(words)
        lines += text.count("\n")
        last = text[-1:] or last
    if tokens == 0:
        raise TextError(f"{Path(path)} holds no words (only whitespace)")
    lines += last != "\n"
    return CorpusCounts(dict(counter), tokens, lines, size)


@dataclass(frozen=True, eq=False)
class EncodedCorpus:
    """A corpus as token ids, sentence after sentence, in two flat arrays.

    Attributes:
        ids: int32, shape ``(N,)``: the ids of the kept tokens, in corpus order.
        starts: int64, shape ``(S + 1,)``: sentence ``s`` is ``ids[starts[s]:starts[s + 1]]``;
            ``starts[0] == 0``, ``starts[-1] == N``, and no sentence is empty.
        raw_tokens: every token read, in the vocabulary or not (what word2vec's progress and
            learning-rate schedule count).

    Example:
        >>> v = WordVocab(["a", "b"], [2, 1])
        >>> c = EncodedCorpus.from_sentences([["a", "x", "b"], ["x"], ["a"]], v)
        >>> c.ids.tolist(), c.starts.tolist(), c.raw_tokens
        ([0, 1, 0], [0, 2, 3], 5)
    """

    ids: numpy.ndarray
    starts: numpy.ndarray
    raw_tokens: int

    def __post_init__(self) -> None:
        ids = numpy.asarray(self.ids)
        starts = numpy.asarray(self.starts)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"ids must be a 1-D integer array, got shape {ids.shape} of {ids.dtype}")
        if starts.ndim != 1 or starts.size == 0 or (starts.size and starts.dtype.kind not in "iu"):
            raise ValueError(f"starts must be a non-empty 1-D integer array, got shape {starts.shape}")
        if starts[0] != 0 or starts[-1] != ids.size or (numpy.diff(starts) <= 0).any():
            raise ValueError(f"starts must rise strictly from 0 to len(ids) = {ids.size}")
        if ids.size and (ids.min() < 0 or ids.max() > numpy.iinfo(ID_DTYPE).max):
            raise ValueError(f"ids must lie in 0 .. {numpy.iinfo(ID_DTYPE).max}, got {ids.min()} .. {ids.max()}")
        if self.raw_tokens < ids.size:
            raise ValueError(f"raw_tokens ({self.raw_tokens}) is less than the {ids.size} ids kept")
        object.__setattr__(self, "ids", ids.astype(ID_DTYPE, copy=False))
        object.__setattr__(self, "starts", starts.astype(numpy.int64, copy=False))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, EncodedCorpus) and self.raw_tokens == other.raw_tokens
                and numpy.array_equal(self.ids, other.ids) and numpy.array_equal(self.starts, other.starts))

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        """The number of sentences."""
        return len(self.starts) - 1

    def __iter__(self) -> Iterator[numpy.ndarray]:
        """The sentences, as views of ``ids``."""
        return (self.ids[a:b] for a, b in itertools.pairwise(self.starts.tolist()))

    def sentence(self, s: int) -> numpy.ndarray:
        """The ids of sentence ``s`` (a view)."""
        return self.ids[self.starts[s]:self.starts[s + 1]]

    @classmethod
    def from_sentences(cls, sentences: Iterable[Sequence[str]], vocab: WordVocab,
                       max_sentence_length: int = MAX_SENTENCE_LENGTH, unknown: int | None = None) -> EncodedCorpus:
        """Encode tokenized sentences held in memory, with ``encode_corpus``'s rules (each sentence
        plays the part of a line)."""
        cutter = _SentenceCutter(vocab, max_sentence_length, unknown)
        cutter.feed([list(s) for s in sentences])
        return cutter.finish()

    @classmethod
    def from_ids(cls, sentences: Iterable[Any], raw_tokens: int | None = None) -> EncodedCorpus:
        """A corpus from sentences already given as ids (generated corpora, tests); empty sentences
        are skipped. ``raw_tokens`` defaults to the number of ids."""
        parts = [p for p in (numpy.asarray(s).ravel() for s in sentences) if p.size]
        lengths = numpy.fromiter(map(len, parts), dtype=numpy.int64, count=len(parts))
        ids = numpy.concatenate(parts) if parts else numpy.empty(0, dtype=ID_DTYPE)  # checked in __post_init__
        starts = numpy.concatenate([[0], numpy.cumsum(lengths)]).astype(numpy.int64)
        return cls(ids, starts, int(ids.size if raw_tokens is None else raw_tokens))


def encode_corpus(path: str | os.PathLike[str], vocab: WordVocab, lowercase: bool = False,
                  max_sentence_length: int = MAX_SENTENCE_LENGTH, unknown: int | None = None,
                  chunk_bytes: int = CHUNK_BYTES, progress: Progress | None = None) -> EncodedCorpus:
    """The token ids and sentences of a corpus file, in one streaming pass.

    The sentence rule is gensim's ``LineSentence`` (4.x, both its iterable and ``corpus_file``
    paths): every line is cut into pieces of ``max_sentence_length`` tokens counted *before*
    out-of-vocabulary tokens are dropped; then the dropped tokens leave their piece, and a piece
    left empty is no sentence. Each sentence thus holds at most ``max_sentence_length`` ids, and a
    line of ``max_sentence_length`` tokens or fewer is one sentence (or none). (The C word2vec
    counts its limit, 1000, after dropping and subsampling; gensim's rule keeps our sentences the
    same as gensim's on the same file.)

    Memory: 4 bytes per kept token and 8 per sentence, held in one array per block, plus one
    block's text and tokens as Python strings (about 30 × ``chunk_bytes``, 30 MB at the default
    1 MiB); the final concatenate briefly holds the ids twice, so the peak is about 8 bytes per
    kept token plus one block.

    Args:
        path: the corpus.
        vocab: the words to keep (their ids).
        lowercase: lowercase tokens first (as when the vocabulary was counted).
        max_sentence_length: the most tokens of a line in one sentence.
        unknown: None: drop tokens not in ``vocab`` (word2vec, gensim); an id: map them to it
            (an ``<unk>`` token of a language model), so no token is dropped.
        chunk_bytes: how much is read at a time (results do not depend on it).
        progress: called as ``progress(bytes_done, bytes_total)`` after each block.

    Raises:
        TextError: as ``count_words`` does.
        VocabError: no token of the file is in ``vocab``, or ``unknown`` is no id of it.
    """
    cutter = _SentenceCutter(vocab, max_sentence_length, unknown)
    for text, _ in _text_blocks(path, chunk_bytes, progress):
        cutter.feed([tokenize(line, lowercase) for line in text.split("\n")])
    if cutter.raw == 0:
        raise TextError(f"{Path(path)} holds no words (only whitespace)")
    if cutter.kept == 0:
        raise VocabError(f"none of the {cutter.raw} tokens of {Path(path)} is in the vocabulary ({len(vocab)} words)")
    return cutter.finish()


class _SentenceCutter:
    """Turns lines of tokens, block after block, into kept ids and sentence starts (the rule of
    ``encode_corpus``), carrying the line that a block boundary cuts into the next block.

    Each token of a block gets a key (line number, piece = position in its line // max length);
    a sentence starts at every kept token whose key differs from the previous kept token's. So a
    piece that straddles a block boundary stays one sentence, and the work is NumPy per block.
    """

    def __init__(self, vocab: WordVocab, max_sentence_length: int, unknown: int | None) -> None:
        if isinstance(max_sentence_length, bool) or not isinstance(max_sentence_length, int) or max_sentence_length < 1:
            raise ValueError(f"max_sentence_length must be a positive integer, got {max_sentence_length!r}")
        if unknown is not None and not (isinstance(unknown, numbers.Integral) and 0 <= unknown < len(vocab)):
            raise VocabError(f"unknown must be None or an id of the vocabulary (0 .. {len(vocab) - 1}), got {unknown!r}")
        self.lookup = vocab._index.get
        self.missing = -1 if unknown is None else int(unknown)
        self.max_len = max_sentence_length
        self.ids: list[numpy.ndarray] = []
        self.starts: list[numpy.ndarray] = []
        self.kept = 0  # ids kept so far
        self.raw = 0  # tokens read so far
        self.line = 0  # number of the open line (the one the next block's first segment continues)
        self.pos = 0  # tokens of the open line already read
        self.last_key: tuple[int, int] | None = None  # (line, piece) of the last kept token

    def feed(self, lines: list[list[str]]) -> None:
        """``lines[0]`` continues the open line, each further entry is a new line, the last one stays open."""
        if not lines:
            return
        lengths = numpy.fromiter(map(len, lines), dtype=numpy.int64, count=len(lines))
        n = int(lengths.sum())
        if n:
            ids = numpy.fromiter(map(self.lookup, itertools.chain.from_iterable(lines), itertools.repeat(self.missing)),
                                 dtype=ID_DTYPE, count=n)
            line_of = numpy.repeat(numpy.arange(self.line, self.line + len(lines)), lengths)
            first = numpy.cumsum(lengths) - lengths  # index of each line's first token in the block
            pos = numpy.arange(n) - numpy.repeat(first, lengths)
            pos[:lengths[0]] += self.pos
            keep = ids >= 0
            ids, line_of, piece = ids[keep], line_of[keep], pos[keep] // self.max_len
            if ids.size:
                new = numpy.empty(ids.size, dtype=bool)
                new[1:] = (line_of[1:] != line_of[:-1]) | (piece[1:] != piece[:-1])
                new[0] = self.last_key != (int(line_of[0]), int(piece[0]))
                self.ids.append(ids)
                self.starts.append(self.kept + numpy.flatnonzero(new))
                self.last_key = (int(line_of[-1]), int(piece[-1]))
                self.kept += ids.size
            self.raw += n
        self.pos = int(lengths[-1]) + (self.pos if len(lines) == 1 else 0)
        self.line += len(lines) - 1

    def finish(self) -> EncodedCorpus:
        ids = numpy.concatenate(self.ids) if self.ids else numpy.empty(0, dtype=ID_DTYPE)
        starts = numpy.concatenate([*self.starts, [self.kept]]).astype(numpy.int64)
        self.ids, self.starts = [], []
        return EncodedCorpus(ids, starts, self.raw)


def regular_file_size(p: Path, what: str = "a text file", error: type[ValueError] = TextError) -> int:
    """The size of ``p``; ``error`` (TextError by default) when it is missing, a folder, or not a
    regular file (a FIFO would block, a device never end); ``what`` names what it should be."""
    try:
        st = p.stat()
    except FileNotFoundError:
        raise error(f"no such file: {p}") from None
    except OSError as e:
        raise error(f"cannot read {p}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{p} is a folder, not {what}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p} is not a regular file (a pipe, socket or device), so not {what}")
    return st.st_size


def _cut(data: bytes) -> int:
    """Where to end a block: after its last newline, else after its last whitespace byte (a line
    longer than a block), else 0 (one word longer than a block: read on)."""
    cut = data.rfind(b"\n")
    if cut < 0:
        cut = max(data.rfind(b) for b in _SPACE_BYTES)
    return cut + 1


def _text_blocks(path: str | os.PathLike[str], chunk_bytes: int, progress: Progress | None) -> Iterator[tuple[str, int]]:
    """The text of a UTF-8 file, checked and decoded a block at a time: yields (text, bytes read
    so far). Each text ends after a whitespace character (or at the end of the file), so no word or
    character is split; the byte-order mark at the start is dropped.

    Raises:
        TextError: see ``count_words``.
    """
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be a positive integer, got {chunk_bytes!r}")
    p = Path(path)
    total = regular_file_size(p)
    done = 0
    offset = 0  # offset in the file of the first byte not yet yielded
    line = 1  # its line number
    carry = b""  # bytes read but not yet yielded (after the last cut)
    try:
        with open(p, "rb") as f:
            while True:
                block = f.read(chunk_bytes)
                done += len(block)
                data = carry + block if carry else block
                cut = _cut(data) if block else len(data)
                piece, carry = data[:cut], data[cut:]
                if piece:
                    nul = piece.find(b"\x00")
                    if nul >= 0:  # UTF-8 text never holds NUL; binary files (archives, UTF-16) almost always do
                        raise TextError(f"{p} is a binary file, not text (a NUL byte at offset {offset + nul})")
                    try:
                        text = piece.decode("utf-8")
                    except UnicodeDecodeError as e:
                        where = f"offset {offset + e.start}, line {line + piece.count(_NEWLINE, 0, e.start)}"
                        raise TextError(f"{p} is not UTF-8 text (byte 0x{piece[e.start]:02X} at {where}); "
                                        f"convert it first, e.g. iconv -f latin1 -t utf-8") from None
                    if offset == 0:
                        text = text.removeprefix("\ufeff")
                    offset += len(piece)
                    line += piece.count(_NEWLINE)
                    yield text, done
                if progress is not None and block:
                    progress(done, total)
                if not block:
                    break
    except OSError as e:
        raise TextError(f"cannot read {p}: {e.strerror or e}") from None
    if done == 0:
        raise TextError(f"{p} is empty")


def _is_utf8(word: str) -> bool:
    try:
        word.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _describe(value: Any) -> str:
    return f"a dict with keys {sorted(map(str, value))}" if isinstance(value, dict) else type(value).__name__


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync it, then rename it over ``path``.

    ``dlia.io.atomic`` (a higher layer) does this for models; ``dlia.text`` may not import it. The
    temporary name follows its pattern (``.NAME.PID.RANDOM.tmp``) so its clean-up recognises ours.

    Raises:
        OSError: naming ``path`` (no such folder, no permission, a folder in the way, disk full).
    """
    folder = path.parent
    tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never follow or reuse a file of that name; mode 0o666 less the umask, as open() gives
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise OSError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OSError(f"cannot write {path}: {e.strerror or e}") from None
        raise
