"""``dlia.text``: the character vocabulary (Unicode code points, exact ids) and the corpus reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy
import pytest

from dlia.text import CharVocab, TextError, read_text


def test_vocab_is_sorted_by_code_point_and_ids_are_exact() -> None:
    v = CharVocab.from_text("hello, world\n")
    assert v.chars == ["\n", " ", ",", "d", "e", "h", "l", "o", "r", "w"]
    ids = v.encode("hello")
    assert ids.dtype == numpy.int32
    assert ids.tolist() == [5, 4, 6, 6, 7]
    assert v.decode(ids) == "hello"


def test_unicode_characters_are_one_token_each() -> None:
    text = "naïve café — 日本語 🙂\n"  # 2-, 3- and 4-byte UTF-8 characters
    v = CharVocab.from_text(text)
    assert len(v) == len(set(text))
    assert v.chars == sorted(set(text))
    ids = v.encode(text)
    assert len(ids) == len(text)  # characters, not the 31 bytes
    assert ids.tolist() == [v.chars.index(c) for c in text]
    assert v.decode(ids) == text
    assert v.decode(numpy.array([], dtype=numpy.int64)) == ""
    assert v.encode("").tolist() == []


def test_encode_refuses_unknown_characters_by_name() -> None:
    v = CharVocab.from_text("abc")
    with pytest.raises(ValueError, match=r"'é' \(U\+00E9\) is not in the vocabulary"):
        v.encode("abé")
    with pytest.raises(ValueError, match=r"U\+1F642"):  # beyond the lookup table
        v.encode("a🙂")
    assert v.unknown("xabyx") == ["x", "y"]
    assert "a" in v and "é" not in v and "ab" not in v and 3 not in v
    with pytest.raises(IndexError, match="id 3 is outside"):
        v.decode([0, 3])
    with pytest.raises(IndexError, match="id -1"):
        v.decode([-1])


def test_vocab_round_trips_through_json() -> None:
    v = CharVocab.from_text("zé\n🙂a")
    back = CharVocab.from_list(json.loads(json.dumps(v.to_list())))
    assert back == v and back.chars == ["\n", "a", "z", "é", "🙂"]
    for bad, why in ((["b", "a"], "not sorted"), (["a", "a"], "repeat"), (["ab"], "one character"), ([], "no characters"),
                     ("ab", "list"), (["\ud800"], "surrogate"), ([1], "one character")):
        with pytest.raises(ValueError, match=why):
            CharVocab.from_list(bad)


def test_encode_matches_a_python_loop_on_a_large_text() -> None:
    rng = numpy.random.default_rng(0)
    alphabet = list("abc xyz\nÄÖ€😀")
    text = "".join(rng.choice(alphabet, 20_000))
    v = CharVocab.from_text(text)
    lookup = {c: i for i, c in enumerate(v.chars)}
    assert numpy.array_equal(v.encode(text), [lookup[c] for c in text])


def test_read_text(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_bytes("\ufeffhé\r\nllo".encode())
    assert read_text(p) == "hé\r\nllo"  # the byte-order mark dropped, line endings kept


@pytest.mark.parametrize("data, message", [
    (b"", "t.txt is empty"),
    (b"\xef\xbb\xbf", "only a byte-order mark"),
    (b"PK\x03\x04\x00\x00abc", r"binary file, not text \(a NUL byte at offset 4\)"),
    ("abc café".encode("latin-1"), r"not UTF-8 text \(byte 0xE9 at offset 7\)"),
    ("h".encode("utf-16"), "a NUL byte at offset 3"),
])
def test_read_text_refuses_unusable_files(tmp_path: Path, data: bytes, message: str) -> None:
    p = tmp_path / "t.txt"
    p.write_bytes(data)
    with pytest.raises(TextError, match=message):
        read_text(p)


def test_read_text_missing_and_folder(tmp_path: Path) -> None:
    with pytest.raises(TextError, match="no such file"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(TextError, match="is a folder"):
        read_text(tmp_path)


def test_pipes_and_devices_are_refused_before_reading(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(TextError, match="not a regular file"):
        read_text(fifo)  # reading would block until a writer came
    with pytest.raises(TextError, match="not a regular file"):
        read_text("/dev/zero")  # reading would never end


def test_a_lone_surrogate_is_an_unknown_character_and_ids_must_be_integers() -> None:
    v = CharVocab.from_text("abc")
    assert v.unknown("a\udcff") == ["\udcff"]
    with pytest.raises(ValueError, match="U\\+DCFF"):
        v.encode("a\udcff")
    with pytest.raises(TypeError, match="integers"):
        v.decode([1.7])
