"""The C word2vec tool's binary and text formats: round trips (ours and gensim's, both ways), broken
UTF-8 words, and every malformed file refused with one line naming the file and the problem."""

from __future__ import annotations

import os
from pathlib import Path

import numpy
import pytest

from dlia.models.word2vec import FormatError, KeyedVectors

gensim_models = pytest.importorskip("gensim.models")

WORDS = ["the", "of", "Paris", "café", "日本", "🙂", "x_y-z", "naïve"]


def random_kv(seed: int = 0, words: list[str] = WORDS, dim: int = 7) -> KeyedVectors:
    rng = numpy.random.default_rng(seed)
    # values across many exponents, so the text format's decimals are put to the test
    values = rng.standard_normal((len(words), dim)) * 10.0 ** rng.integers(-8, 8, (len(words), dim))
    return KeyedVectors(words, values)


def record(word: bytes, values: list[float], newline: bool = True) -> bytes:
    return word + b" " + numpy.asarray(values, dtype="<f4").tobytes() + (b"\n" if newline else b"")


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip_is_exact(tmp_path: Path, binary: bool) -> None:
    kv = random_kv()
    path = tmp_path / ("v.bin" if binary else "v.txt")
    kv.save_word2vec_format(path, binary=binary)
    back = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert back.index_to_key == WORDS
    assert back.vectors.dtype == numpy.float32
    assert numpy.array_equal(back.vectors, kv.vectors)  # bit-exact, text included
    assert back.counts is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_binary_layout_is_the_c_tools(tmp_path: Path) -> None:
    kv = KeyedVectors(["a", "bé"], numpy.array([[1.0, -2.0], [0.5, 3.0]]))
    kv.save_word2vec_format(tmp_path / "v.bin")
    assert (tmp_path / "v.bin").read_bytes() == b"2 2\n" + record(b"a", [1, -2]) + record("bé".encode(), [0.5, 3])
    kv.save_word2vec_format(tmp_path / "v.txt", binary=False)
    assert (tmp_path / "v.txt").read_text(encoding="utf-8") == "2 2\na 1.0 -2.0\nbé 0.5 3.0\n"


@pytest.mark.parametrize("binary", [True, False])
def test_gensim_reads_ours(tmp_path: Path, binary: bool) -> None:
    kv = random_kv(1)
    path = tmp_path / "v.vectors"
    kv.save_word2vec_format(path, binary=binary)
    theirs = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert theirs.index_to_key == WORDS
    if binary:
        assert numpy.array_equal(theirs.vectors, kv.vectors)
    else:  # gensim parses text values through float64: equal to float32 rounding
        numpy.testing.assert_allclose(theirs.vectors, kv.vectors, rtol=1e-7)


@pytest.mark.parametrize("binary", [True, False])
def test_we_read_gensims(tmp_path: Path, binary: bool) -> None:
    rng = numpy.random.default_rng(2)
    vectors = rng.standard_normal((len(WORDS), 5)).astype(numpy.float32)
    theirs = gensim_models.KeyedVectors(5)
    theirs.add_vectors(WORDS, vectors)
    path = tmp_path / "g.vectors"  # no telling suffix: the format is sniffed
    theirs.save_word2vec_format(str(path), binary=binary)  # gensim writes no newline after a binary record
    ours = KeyedVectors.load_word2vec_format(path)
    assert ours.index_to_key == WORDS
    assert numpy.array_equal(ours.vectors, vectors) if binary else numpy.allclose(ours.vectors, vectors, rtol=1e-6)


def test_limit_dtype_and_format_guess(tmp_path: Path) -> None:
    kv = random_kv(3)
    kv.save_word2vec_format(tmp_path / "v.bin")
    kv.save_word2vec_format(tmp_path / "v.txt", binary=False)
    first = KeyedVectors.load_word2vec_format(tmp_path / "v.bin", limit=3)
    assert first.index_to_key == WORDS[:3] and numpy.array_equal(first.vectors, kv.vectors[:3])
    assert KeyedVectors.load_word2vec_format(tmp_path / "v.txt", limit=100).index_to_key == WORDS
    assert KeyedVectors.load_word2vec_format(tmp_path / "v.txt", dtype=numpy.float64).vectors.dtype == numpy.float64
    os.rename(tmp_path / "v.bin", tmp_path / "v.data")
    assert numpy.array_equal(KeyedVectors.load_word2vec_format(tmp_path / "v.data").vectors, kv.vectors)


def test_total_vec_and_unsavable_words(tmp_path: Path) -> None:
    kv = random_kv(4)
    kv.save_word2vec_format(tmp_path / "v.bin", total_vec=20)
    assert (tmp_path / "v.bin").read_bytes().startswith(b"20 7\n")
    with pytest.raises(ValueError, match="total_vec=2 is less than the 8 words"):
        kv.save_word2vec_format(tmp_path / "v.bin", total_vec=2)
    spaced = KeyedVectors(["new york", "b"], numpy.eye(2))
    with pytest.raises(ValueError, match="word 0 \\('new york'\\) cannot be saved"):
        spaced.save_word2vec_format(tmp_path / "s.bin")
    assert not (tmp_path / "s.bin").exists()


BROKEN = b"caf\xc3"  # "café" cut in the middle of its 2-byte "é", as the GoogleNews vectors hold


def broken_binary(tmp_path: Path) -> Path:
    path = tmp_path / "broken.bin"
    path.write_bytes(b"3 2\n" + record(b"ok", [1, 2]) + record(BROKEN, [3, 4]) + record(b"fine", [5, 6]))
    return path


def broken_text(tmp_path: Path) -> Path:
    path = tmp_path / "broken.txt"
    path.write_bytes(b"3 2\nok 1 2\n" + BROKEN + b" 3 4\nfine 5 6\n")
    return path


@pytest.mark.parametrize("make", [broken_binary, broken_text], ids=["binary", "text"])
def test_broken_utf8_words(tmp_path: Path, make) -> None:
    path = make(tmp_path)
    binary = path.suffix == ".bin"
    with pytest.raises(FormatError, match=r"word 1 \(at byte 1[0-9]\) is not valid UTF-8 .*unicode_errors='replace'"):
        KeyedVectors.load_word2vec_format(path)
    for mode, expected in (("replace", "caf\ufffd"), ("ignore", "caf")):
        ours = KeyedVectors.load_word2vec_format(path, unicode_errors=mode)
        theirs = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary, unicode_errors=mode)
        assert ours.index_to_key == theirs.index_to_key == ["ok", expected, "fine"]
        assert numpy.array_equal(ours.vectors, theirs.vectors)


def test_words_equal_only_after_lossy_decoding_keep_the_first(tmp_path: Path) -> None:
    path = tmp_path / "v.bin"
    path.write_bytes(b"3 1\n" + record(b"caf\xc3", [1]) + record(b"caf", [2]) + record(b"x", [3]))
    kv = KeyedVectors.load_word2vec_format(path, unicode_errors="ignore")
    assert kv.index_to_key == ["caf", "x"] and kv.vectors[:, 0].tolist() == [1, 3]


def test_absurd_header_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "huge.bin"
    path.write_bytes(b"1000000000000 300\n" + record(b"a", [1.0] * 300))
    with pytest.raises(FormatError, match=r"huge.bin is truncated or its header is wrong: 1,000,000,000,000 words of 300 "
                                          r"values need at least .* bytes in the binary format, the file has 1,221"):
        KeyedVectors.load_word2vec_format(path)


MALFORMED = {
    "header-not-numbers": (b"hello world\na 1\n", "first line should be two positive integers"),
    "header-one-number": (b"10\n", "first line should be two positive integers"),
    "header-negative": (b"-1 2\na 1 2\n", "first line should be two positive integers"),
    "header-zero": (b"0 2\n", "first line should be two positive integers"),
    "header-no-newline": (b"2 3", "first line should be two positive integers"),
    "text-fewer-lines": (b"3 2\na 1 2\nb 3 4\n" + b"\n" * 10, "line 4 should hold word 3 of 3, it is empty"),
    "text-more-lines": (b"1 2\na 1 2\nb 3 4\n", "more data after the 1 words its header announces"),
    "text-short-line": (b"2 2\na 1 2\nb 3\nc 5 6\n", "line 3 holds 1 values after its word, the header says 2"),
    "text-long-line": (b"2 2\na 1 2 3\nb 3 4\n", "line 2 holds 3 values after its word, the header says 2"),
    "text-not-a-number": (b"2 2\na 1 2\nb 3 x4\n", r"line 3 \('b'\) holds 'x4', which is not a number"),
    "text-nan": (b"2 2\na 1 2\nb nan 4\n", "the vector of word 'b' holds NaN or infinite values"),
    "text-duplicate": (b"2 2\na 1 2\na 3 4\n", r"word 'a' appears twice \(words 0 and 1\)"),
    "binary-truncated": (b"2 2\n" + record(b"a", [1, 2]) + record(b"b", [3, 4])[:-3], "truncated"),
    "binary-more-records": (b"1 2\n" + record(b"a", [1, 2]) + record(b"b", [3, 4]), "more data after the 1 words"),
    "binary-duplicate": (b"2 2\n" + record(b"a", [1, 2]) + record(b"a", [3, 4]), "word 'a' appears twice"),
    "binary-inf": (b"2 2\n" + record(b"a", [1, 2]) + record(b"b", [numpy.inf, 4]), "vector of word 'b' holds NaN"),
    "binary-wrong-dimension": (b"2 3\n" + record(b"a", [1, 2]) + record(b"b", [3, 4]), "truncated"),
    "binary-smaller-dimension": (b"3 1\n" + record(b"a", [1, 2]) + record(b"b", [3, 4]) + record(b"c", [5, 6]),
                                 "word 1 .* holds a NUL or newline byte .* do not hold the 1 values the header says"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_files_are_refused_in_one_line(tmp_path: Path, name: str) -> None:
    content, message = MALFORMED[name]
    path = tmp_path / (name + (".bin" if name.startswith("binary") else ".txt"))
    path.write_bytes(content)
    with pytest.raises(FormatError, match=message) as e:
        KeyedVectors.load_word2vec_format(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_empty_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file"):
        KeyedVectors.load_word2vec_format(tmp_path / "nope.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(FormatError, match="empty.bin is empty"):
        KeyedVectors.load_word2vec_format(tmp_path / "empty.bin")
    with pytest.raises(FormatError, match="is a folder"):
        KeyedVectors.load_word2vec_format(tmp_path)
    (tmp_path / "v.bin").write_bytes(b"1 1\n" + record(b"a", [1]))
    with pytest.raises(ValueError, match="unicode_errors must be one of strict, replace, ignore"):
        KeyedVectors.load_word2vec_format(tmp_path / "v.bin", unicode_errors="surrogateescape")
    with pytest.raises(ValueError, match="limit must be a positive number"):
        KeyedVectors.load_word2vec_format(tmp_path / "v.bin", limit=0)


def test_the_format_is_told_from_the_content_not_the_name(tmp_path: Path) -> None:


    kv = KeyedVectors(["cat", "dog", "a\x01b"], numpy.arange(9, dtype=numpy.float32).reshape(3, 3) / 7)
    for name, binary in (("text.bin", False), ("binary.txt", True), ("short.w2v", False), ("b.vec", True)):
        kv.save_word2vec_format(tmp_path / name, binary=binary)
        back = KeyedVectors.load_word2vec_format(tmp_path / name)
        assert back.index_to_key == kv.index_to_key  # a control byte inside a word is a word (gensim reads it too)
        numpy.testing.assert_array_equal(back.vectors, kv.vectors)
    (tmp_path / "tiny.w2v").write_text("2 3\ncat 1 0 0\ndog 0 1 0\n")
    assert KeyedVectors.load_word2vec_format(tmp_path / "tiny.w2v").index_to_key == ["cat", "dog"]
