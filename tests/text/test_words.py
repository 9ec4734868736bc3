"""``dlia.text`` words: the frequency-sorted vocabulary, the two streaming passes over a corpus file
(counting, encoding), their refusals, the vocabulary file format, and agreement with gensim."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy
import pytest

from dlia.text import (
    MAX_SENTENCE_LENGTH,
    EncodedCorpus,
    TextError,
    VocabError,
    WordVocab,
    count_words,
    encode_corpus,
    tokenize,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ENWIKI = DATA / "enwiki-sample.txt"

#: a corpus whose blocks, at small chunk sizes, end inside multi-byte characters, long lines and blank lines
MIXED = ("The cat sat on the mat .\n"
         "\n"
         "naïve café — 日本語 🙂 the cat\r\n"
         "   \t  \n"
         "a b c d e f g h i j k l m n o p q r s t u v w x y z the cat a b c\n"
         "Über über ÜBER straße 🙂🙂🙂 longwordlongwordlongwordlongwordlongword\u00a0nbsp\n"
         "last line without newline the")


def _write(tmp_path: Path, text: str | bytes, name: str = "corpus.txt") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def _reference_sentences(text: str, vocab: WordVocab, max_len: int, unknown: int | None = None,
                         lowercase: bool = False) -> list[list[int]]:
    """gensim's LineSentence rule written out plainly: lines at "\\n", pieces of max_len tokens,
    then out-of-vocabulary tokens dropped (or mapped to ``unknown``) and empty pieces skipped."""
    out = []
    for line in text.split("\n"):
        tokens = tokenize(line, lowercase)
        for i in range(0, len(tokens), max_len):
            piece = [vocab.get(t, -1 if unknown is None else unknown) for t in tokens[i:i + max_len]]
            piece = [t for t in piece if t >= 0]
            if piece:
                out.append(piece)
    return out


def _sentences(corpus: EncodedCorpus) -> list[list[int]]:
    return [s.tolist() for s in corpus]


# ---------------------------------------------------------------------------------------- tokens


def test_tokenize_splits_at_any_whitespace_and_lowercases_on_request() -> None:
    assert tokenize("  The cat\tsat.\r\n") == ["The", "cat", "sat."]
    assert tokenize("a\u00a0b\u3000c\x1cd") == ["a", "b", "c", "d"]  # no-break and ideographic spaces too
    assert tokenize("Über ÉCOLE", lowercase=True) == ["über", "école"]
    assert tokenize(" \n\t ") == []


# ------------------------------------------------------------------------------------ vocabulary


def test_build_sorts_by_count_with_ties_in_first_appearance_order(tmp_path: Path) -> None:
    p = _write(tmp_path, "d c b a\nb a c\na c\ne")
    counts = count_words(p).counts
    assert list(counts.items()) == [("d", 1), ("c", 3), ("b", 2), ("a", 3), ("e", 1)]  # first appearance
    v = WordVocab.build(counts)
    assert v.words == ["c", "a", "b", "d", "e"]  # c and a tie: c came first; so do d and e
    assert v.counts.dtype == numpy.int64 and v.counts.tolist() == [3, 3, 2, 1, 1]
    assert v.total == 10 and len(v) == 5
    assert WordVocab.build(counts, min_count=2).words == ["c", "a", "b"]
    assert WordVocab.build(counts, min_count=3).words == ["c", "a"]
    assert WordVocab.build(counts, max_vocab=3).words == ["c", "a", "b"]
    assert WordVocab.build(counts, max_vocab=4).words == ["c", "a", "b", "d"]  # a tie at the cut: first appearance
    assert WordVocab.build(counts, min_count=2, max_vocab=1).words == ["c"]
    assert WordVocab.build(counts, min_count=0).words == v.words
    # the mapping's order decides ties, not the words themselves (never hash order)
    assert WordVocab.build({"z": 2, "y": 2, "x": 2}).words == ["z", "y", "x"]


def test_build_is_a_stable_sort_on_many_ties() -> None:
    rng = numpy.random.default_rng(1)
    counts = {f"w{i}": int(c) for i, c in enumerate(rng.integers(1, 4, size=500))}
    expected = sorted(counts, key=lambda w: -counts[w])  # Python's sort is stable
    assert WordVocab.build(counts).words == expected
    assert WordVocab.build(counts, min_count=2, max_vocab=100).words == [w for w in expected if counts[w] >= 2][:100]


def test_build_refuses_when_nothing_is_left_and_says_why() -> None:
    with pytest.raises(VocabError, match=r"no word occurs at least 5 times: of the 3 distinct words, the most frequent "
                                         r"\('b'\) occurs 4 times; try a lower --min-count"):
        WordVocab.build({"a": 1, "b": 4, "c": 4}, min_count=5)
    with pytest.raises(VocabError, match="the corpus is empty"):
        WordVocab.build({})
    with pytest.raises(VocabError, match="counts must be integers, got float64"):
        WordVocab.build({"a": 1.5, "b": 2})
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(VocabError, match="min_count must be"):
            WordVocab.build({"a": 1}, min_count=bad)  # type: ignore[arg-type]
    for bad in (0, -3, 2.0):
        with pytest.raises(VocabError, match="max_vocab must be"):
            WordVocab.build({"a": 1}, max_vocab=bad)  # type: ignore[arg-type]


def test_lookups_encode_and_decode() -> None:
    v = WordVocab(["the", "cat", "sat"], [5, 2, 1])
    assert v.words == ["the", "cat", "sat"]  # the constructor keeps the order it is given
    assert v.index("cat") == 1 and v.get("cat") == 1 and v.get("dog") == -1 and v.get("dog", 7) == 7
    assert "sat" in v and "dog" not in v and 1 not in v
    with pytest.raises(VocabError, match=r"the word 'dog' is not in the vocabulary \(3 words\)"):
        v.index("dog")
    ids = v.encode(["sat", "dog", "the", "the"])
    assert ids.dtype == numpy.int32 and ids.tolist() == [2, -1, 0, 0]
    assert v.encode(["dog", "cat"], unknown=0).tolist() == [0, 1]
    assert v.encode([]).tolist() == []
    assert v.decode(numpy.array([2, 0, 1], dtype=numpy.int64)) == ["sat", "the", "cat"]
    assert v.decode([]) == []
    with pytest.raises(IndexError, match="id 3 is outside the vocabulary of 3 words"):
        v.decode([0, 3])
    with pytest.raises(IndexError, match="id -1"):
        v.decode([-1])
    with pytest.raises(TypeError, match="integers"):
        v.decode([0.5])
    assert repr(v) == "WordVocab(3 words, 8 tokens)"
    assert v == WordVocab(["the", "cat", "sat"], numpy.array([5, 2, 1], dtype=numpy.int32))
    assert v != WordVocab(["the", "cat", "sat"], [5, 2, 2]) and v != WordVocab(["cat", "the", "sat"], [5, 2, 1])


@pytest.mark.parametrize("words, counts, message", [
    ([], [], "at least one word"),
    (["a", "b", "a"], [1, 1, 1], "the word 'a' occurs twice"),
    (["a", ""], [1, 1], "non-empty and hold no whitespace, got ''"),
    (["a", "b c"], [1, 1], "got 'b c'"),
    (["a\u00a0b"], [1], "no whitespace"),
    (["a\n"], [1], "no whitespace"),
    ([3], [1], "must be a string"),
    (["a\udcff"], [1], "lone surrogate"),
    (["a", "b"], [1], r"2 words but counts of shape \(1,\)"),
    (["a", "b"], [1.0, 2.0], "counts must be integers"),
    (["a", "b"], [1, -2], r"the count of 'b' is negative \(-2\)"),
])
def test_the_constructor_refuses_bad_vocabularies(words: list, counts: list, message: str) -> None:
    with pytest.raises(VocabError, match=message):
        WordVocab(words, counts)


def test_state_round_trips_through_json() -> None:
    v = WordVocab(["日本", "🙂", "a"], [9, 3, 3])
    state = json.loads(json.dumps(v.to_state()))
    assert state == {"words": ["日本", "🙂", "a"], "counts": [9, 3, 3]}
    assert WordVocab.from_state(state) == v
    for bad, why in (([], "a dict with 'words' and 'counts', got list"), ({"words": []}, r"got a dict with keys \['words'\]"),
                     ({"words": "ab", "counts": [1]}, "must be lists"), ({"words": ["a"], "counts": [1.5]}, "integers"),
                     ({"words": ["a"], "counts": [True]}, "integers"), ({"words": ["a", "a"], "counts": [1, 1]}, "twice")):
        with pytest.raises(VocabError, match=why):
            WordVocab.from_state(bad)


# ------------------------------------------------------------------------------ vocabulary files


def test_save_writes_the_c_tools_vocab_format_and_load_reads_it_back(tmp_path: Path) -> None:
    v = WordVocab(["</s>", "the", "café", "🙂"], [4, 3, 2, 2])
    p = tmp_path / "sub" / "vocab.txt"
    v.save(p)
    assert p.read_bytes() == "</s> 4\nthe 3\ncafé 2\n🙂 2\n".encode()
    assert os.listdir(p.parent) == ["vocab.txt"]  # no temporary file left behind
    assert WordVocab.load(p) == v
    v2 = WordVocab(["x"], [1])
    v2.save(p)  # replaces the file
    assert WordVocab.load(p) == v2
    # a gensim fvocab file, with a byte-order mark, Windows line ends and a blank last line
    _write(tmp_path, "\ufeffb 7\r\na 7\r\n\r\n", "fvocab.txt")
    assert WordVocab.load(tmp_path / "fvocab.txt") == WordVocab(["b", "a"], [7, 7])


def test_save_says_which_file_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(OSError, match="cannot write .*folder"):
        WordVocab(["a"], [1]).save(tmp_path / "folder")
    assert os.listdir(tmp_path) == ["folder"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="cannot write .*file/v.txt"):
        WordVocab(["a"], [1]).save(tmp_path / "file" / "v.txt")


@pytest.mark.parametrize("data, message", [
    (b"the 3\nof\n", r"vocab.txt, line 2: expected 'word count', got 'of'"),
    (b"the 3\nof 2 1\n", r"line 2: expected 'word count', got 'of 2 1'"),
    (b"the x3\n", r"line 1: expected 'word count', got 'the x3'"),
    (b"the -3\n", "line 1: expected 'word count'"),
    (b"the 3.0\n", "line 1: expected 'word count'"),
    (b"the 3\nof 2\nthe 1\n", r"line 3: the word 'the' repeats line 1"),
    (b"the 3\ncaf\xe9 2\n", r"line 2: not UTF-8 \(byte 0xE9\); load it with errors='replace'"),
    (b"", "holds no words"),
    (b"\n \n", "holds no words"),
])
def test_load_refuses_malformed_vocabulary_files_naming_the_line(tmp_path: Path, data: bytes, message: str) -> None:
    p = _write(tmp_path, data, "vocab.txt")
    with pytest.raises(VocabError, match=message):
        WordVocab.load(p)


def test_load_can_replace_broken_utf8_and_refuses_missing_files(tmp_path: Path) -> None:
    p = _write(tmp_path, b"the 3\ncaf\xe9 2\n", "vocab.txt")
    assert WordVocab.load(p, errors="replace").words == ["the", "caf\ufffd"]
    with pytest.raises(TextError, match="no such file"):
        WordVocab.load(tmp_path / "nope.txt")
    with pytest.raises(TextError, match="is a folder"):
        WordVocab.load(tmp_path)


# ----------------------------------------------------------------------------------- counting


def test_count_words_counts_tokens_lines_and_bytes(tmp_path: Path) -> None:
    p = _write(tmp_path, "The cat\n\nthe  CAT sat\r\n")
    c = count_words(p)
    assert c.counts == {"The": 1, "cat": 1, "the": 1, "CAT": 1, "sat": 1} and type(c.counts) is dict
    assert (c.tokens, c.lines, c.bytes) == (5, 3, 23)
    low = count_words(p, lowercase=True)
    assert list(low.counts.items()) == [("the", 2), ("cat", 2), ("sat", 1)]
    assert count_words(_write(tmp_path, "a b\nc", "t2.txt")).lines == 2  # the last line has no newline
    assert count_words(_write(tmp_path, "\ufeffa", "bom.txt")).counts == {"a": 1}  # the byte-order mark dropped
    # ... only at the start of the file: elsewhere U+FEFF is a character of a word (a zero-width no-break space)
    for chunk in (2, 1 << 24):
        assert count_words(_write(tmp_path, "\ufeffa\n\ufeffa", "bom2.txt"), chunk_bytes=chunk).counts == {"a": 1, "\ufeffa": 1}


def test_results_do_not_depend_on_the_block_size(tmp_path: Path) -> None:
    """Blocks of 1, 2, 3, 7 and 64 bytes end inside multi-byte characters, words and lines (the long
    word is longer than a block; the long line holds no newline for many blocks)."""
    text = "\ufeff" + MIXED
    p = _write(tmp_path, text)
    whole = count_words(p)
    assert whole.counts == dict(zip(*numpy.unique(text[1:].split(), return_counts=True), strict=True))
    assert list(whole.counts) == list(dict.fromkeys(text[1:].split()))  # first appearance
    assert whole.bytes == len(text.encode()) and whole.lines == 7
    vocab = WordVocab.build(whole.counts)
    expected = _reference_sentences(text[1:], vocab, 4)
    for chunk in (1, 2, 3, 7, 64, 1 << 24):
        c = count_words(p, chunk_bytes=chunk)
        assert c == whole and list(c.counts) == list(whole.counts), chunk
        assert count_words(p, lowercase=True, chunk_bytes=chunk) == count_words(p, lowercase=True)
        e = encode_corpus(p, vocab, max_sentence_length=4, chunk_bytes=chunk)
        assert _sentences(e) == expected, chunk
        assert e.raw_tokens == whole.tokens


def test_progress_reports_every_block(tmp_path: Path) -> None:
    p = _write(tmp_path, "one two three\nfour five\n")
    calls: list[tuple[int, int]] = []
    count_words(p, chunk_bytes=10, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(10, 24), (20, 24), (24, 24)]
    calls.clear()
    encode_corpus(p, WordVocab(["two"], [1]), chunk_bytes=100, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(24, 24)]


@pytest.mark.parametrize("data, chunk, message", [
    (b"", 7, "corpus.txt is empty"),
    (b" \n\t\r\n  ", 7, r"corpus.txt holds no words \(only whitespace\)"),
    (b"\xef\xbb\xbf\n", 7, "holds no words"),
    (b"PK\x03\x04\x00\x00abc", 7, r"binary file, not text \(a NUL byte at offset 4\)"),
    (b"some words\nmore words\nthen\x00", 4, r"a NUL byte at offset 26\)"),  # in a later block: the offset in the file
    ("h".encode("utf-16"), 7, "a NUL byte at offset 3"),
    ("abc café".encode("latin-1"), 7, r"not UTF-8 text \(byte 0xE9 at offset 7, line 1\)"),
    ("one\ntwo\nthree café\n".encode("latin-1"), 4, r"\(byte 0xE9 at offset 17, line 3\); convert it first"),
    ("one\ntwo\nthree café\n".encode("latin-1"), 1 << 24, r"\(byte 0xE9 at offset 17, line 3\)"),
    (b"ok \xf0\x9f\x99", 2, r"\(byte 0xF0 at offset 3, line 1\)"),  # a character cut by the end of the file
])
def test_unusable_files_are_refused_with_one_clear_line(tmp_path: Path, data: bytes, chunk: int, message: str) -> None:
    p = _write(tmp_path, data)
    with pytest.raises(TextError, match=message):
        count_words(p, chunk_bytes=chunk)
    with pytest.raises(TextError, match=message):
        encode_corpus(p, WordVocab(["some"], [1]), chunk_bytes=chunk)


def test_missing_files_folders_pipes_and_devices_are_refused(tmp_path: Path) -> None:
    for read in (count_words, lambda p: encode_corpus(p, WordVocab(["a"], [1]))):
        with pytest.raises(TextError, match="no such file"):
            read(tmp_path / "nope.txt")
        with pytest.raises(TextError, match="is a folder"):
            read(tmp_path)
        with pytest.raises(TextError, match="not a regular file"):
            read("/dev/zero")  # reading would never end
        fifo = tmp_path / "fifo"
        if not fifo.exists():
            os.mkfifo(fifo)
        with pytest.raises(TextError, match="not a regular file"):
            read(fifo)  # reading would block until a writer came
    with pytest.raises(ValueError, match="chunk_bytes must be a positive integer"):
        count_words(_write(tmp_path, "a"), chunk_bytes=0)


# ----------------------------------------------------------------------------------- encoding


def test_encode_corpus_drops_unknown_words_and_cuts_lines_into_sentences(tmp_path: Path) -> None:
    p = _write(tmp_path, "a b x c a\n\nx x\nb\nc a b c a x b\n")
    v = WordVocab(["a", "b", "c"], [4, 3, 3])
    e = encode_corpus(p, v)
    assert e.ids.dtype == numpy.int32 and e.starts.dtype == numpy.int64
    assert e.ids.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]
    assert e.starts.tolist() == [0, 4, 5, 11]  # the blank line and the line of unknown words are no sentences
    assert e.raw_tokens == 15 and len(e) == 3
    assert e.sentence(1).tolist() == [1]
    # pieces of 3 tokens counted before unknown words are dropped (gensim's LineSentence):
    # "a b x | c a" / "x x" / "b" / "c a b | c a x | b"
    e3 = encode_corpus(p, v, max_sentence_length=3)
    assert _sentences(e3) == [[0, 1], [2, 0], [1], [2, 0, 1], [2, 0], [1]]
    assert _sentences(encode_corpus(p, v, max_sentence_length=1)) == [[t] for t in e.ids.tolist()]
    # unknown=<id>: no token dropped, so a line of unknown words is a sentence
    eu = encode_corpus(p, v, unknown=2, max_sentence_length=3)
    assert _sentences(eu) == [[0, 1, 2], [2, 0], [2, 2], [1], [2, 0, 1], [2, 0, 2], [1]]
    assert eu.raw_tokens == eu.ids.size == 15
    assert MAX_SENTENCE_LENGTH == 10000


def test_encode_corpus_lowercases_and_refuses_bad_arguments(tmp_path: Path) -> None:
    p = _write(tmp_path, "The CAT\nZebra\n")
    v = WordVocab(["the", "cat"], [1, 1])
    assert _sentences(encode_corpus(p, v, lowercase=True)) == [[0, 1]]
    with pytest.raises(VocabError, match=r"none of the 3 tokens of .*corpus.txt is in the vocabulary \(2 words\)"):
        encode_corpus(p, v)
    for bad in (2, -1, 1.0):
        with pytest.raises(VocabError, match=r"unknown must be None or an id of the vocabulary \(0 .. 1\)"):
            encode_corpus(p, v, unknown=bad)  # type: ignore[arg-type]
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="max_sentence_length must be a positive integer"):
            encode_corpus(p, v, max_sentence_length=bad)  # type: ignore[arg-type]


def test_encode_corpus_matches_the_plain_rule_on_random_corpora(tmp_path: Path) -> None:
    rng = numpy.random.default_rng(0)
    words = [f"w{i}" for i in range(30)] + ["ä", "日本", "🙂x"]
    for trial in range(6):
        n = int(rng.integers(50, 400))
        seps = rng.choice([" ", " ", " ", "\t", "\n", "\n\n", " \n "], size=n)
        text = "".join(f"{w}{s}" for w, s in zip(rng.choice(words, size=n), seps, strict=True))
        p = _write(tmp_path, text, f"r{trial}.txt")
        counts = count_words(p).counts
        vocab = WordVocab.build(counts, min_count=int(rng.integers(1, 12)))
        unknown = None if trial % 2 else 0
        max_len = int(rng.integers(1, 9))
        chunk = int(rng.integers(1, 40))
        e = encode_corpus(p, vocab, max_sentence_length=max_len, unknown=unknown, chunk_bytes=chunk)
        assert _sentences(e) == _reference_sentences(text, vocab, max_len, unknown)
        assert e.raw_tokens == sum(counts.values())
        sentences = [line.split() for line in text.split("\n")]
        assert EncodedCorpus.from_sentences(sentences, vocab, max_len, unknown) == e


def test_encoded_corpus_from_sentences_and_from_ids() -> None:
    v = WordVocab(["a", "b"], [2, 1])
    c = EncodedCorpus.from_sentences([["a", "x", "b"], [], ["x"], ["a", "a", "b"]], v, max_sentence_length=2)
    assert _sentences(c) == [[0], [1], [0, 0], [1]] and c.raw_tokens == 7
    assert _sentences(EncodedCorpus.from_sentences([], v)) == [] and len(EncodedCorpus.from_sentences([], v)) == 0
    d = EncodedCorpus.from_ids([[3, 1], [], numpy.array([2], dtype=numpy.int64)])
    assert d.ids.dtype == numpy.int32 and d.ids.tolist() == [3, 1, 2] and d.starts.tolist() == [0, 2, 3]
    assert d.raw_tokens == 3 and EncodedCorpus.from_ids([[1]], raw_tokens=5).raw_tokens == 5
    assert len(EncodedCorpus.from_ids([])) == 0
    with pytest.raises(ValueError, match="integer"):
        EncodedCorpus.from_ids([[0.5, 1]])
    for ids, starts, raw, why in (([0, 1], [0, 1], 2, "from 0 to len"), ([0, 1], [0, 0, 2], 2, "rise strictly"),
                                  ([0, 1], [1, 2], 2, "from 0"), ([0.5], [0, 1], 1, "integer"), ([0], [], 1, "non-empty"),
                                  ([0, 1], [0, 2], 1, "raw_tokens"), ([0, -1], [0, 2], 2, r"lie in 0 \.\. 2147483647"),
                                  ([2**31], [0, 1], 1, "lie in")):
        with pytest.raises(ValueError, match=why):
            EncodedCorpus(numpy.array(ids), numpy.array(starts, dtype=numpy.int64), raw)


# ------------------------------------------------------------------------------ gensim, oracle

needs_enwiki = pytest.mark.skipif(not ENWIKI.is_file(), reason="shared enwiki-sample.txt not present")


@needs_enwiki
def test_vocabulary_and_sentences_agree_with_gensim_on_enwiki_sample() -> None:
    gensim_word2vec = pytest.importorskip("gensim.models.word2vec")
    model = gensim_word2vec.Word2Vec(min_count=5)
    model.build_vocab(corpus_file=str(ENWIKI))  # counts only, no training
    theirs = {w: model.wv.get_vecattr(w, "count") for w in model.wv.index_to_key}

    counted = count_words(ENWIKI)
    vocab = WordVocab.build(counted.counts, min_count=5)
    assert dict(zip(vocab.words, vocab.counts.tolist(), strict=True)) == theirs
    assert len(vocab) == 9035 and counted.tokens == model.corpus_total_words == 469147
    assert (numpy.diff(vocab.counts) <= 0).all()

    # gensim's sentences, as its trainer sees them: LineSentence's pieces less the words outside the vocabulary
    # (enwiki-sample has lines of up to 15,663 tokens, so the 10,000-token cut matters)
    ours = encode_corpus(ENWIKI, vocab)
    expected = [[vocab.get(w) for w in s if w in vocab] for s in gensim_word2vec.LineSentence(str(ENWIKI))]
    assert _sentences(ours) == [s for s in expected if s]
    assert ours.raw_tokens == 469147 and ours.ids.size == vocab.total
