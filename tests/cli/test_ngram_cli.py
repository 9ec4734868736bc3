"""``dlia ngram``: train → eval → sample → prob round trips on a small corpus; the numbers printed are
the library's (``dlia.models.ngram``) and the lecture's bigram formula by hand; an ARPA file written
by the command reads back as the same model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy
import pytest

from dlia.cli.main import main
from dlia.cli.ngram import backoff_path
from dlia.models.ngram import NGramLM

#: the lecture's kind of example: short sentences sharing words, so bigrams repeat and some back off
CORPUS = """the cat sat on the mat
the dog sat on the log
the cat ate the fish
a dog ate a bone
The cat saw the dog
"""
HELD_OUT = "the cat sat on the log\nthe dog ate the zebra\n"


def run(capsys: pytest.CaptureFixture, *argv: str) -> str:
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def sentences(text: str, lowercase: bool = False) -> list[list[str]]:
    return [s for s in ((line.lower() if lowercase else line).split() for line in text.splitlines()) if s]


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    (tmp_path / "c.txt").write_text(CORPUS)
    (tmp_path / "t.txt").write_text(HELD_OUT)
    return tmp_path


def _perplexity(out: str) -> float:
    return float(re.search(r"perplexity (\S+)", out).group(1))


@pytest.mark.parametrize("smoothing", ["kn", "katz", "add-k", "mle"])
def test_eval_prints_the_library_perplexity(files: Path, capsys: pytest.CaptureFixture, smoothing: str) -> None:
    out = run(capsys, "ngram", "train", str(files / "c.txt"), "--order", "3", "--smoothing", smoothing, "--k", "0.5",
              "-o", str(files / "m.npz"))
    assert "27 words in 5 sentences" in out and "3-gram model" in out and "tokens/s" in out
    out = run(capsys, "ngram", "eval", str(files / "m.npz"), str(files / "t.txt"))
    lm = NGramLM(3, smoothing, k=0.5).fit(sentences(CORPUS))
    expected = lm.perplexity(sentences(HELD_OUT))
    assert "2 sentences, 11 words, 1 out of the vocabulary" in out and "13 tokens predicted" in out
    if smoothing == "mle":  # "the zebra": <unk> never follows "the" in training
        assert expected == numpy.inf and "perplexity inf" in out and "probability 0" in out
    else:
        assert _perplexity(out) == pytest.approx(expected, rel=1e-6)
        assert "zero-probability tokens: 0" in out


def test_arpa_written_by_the_command_reads_back_as_the_same_model(files: Path, capsys: pytest.CaptureFixture) -> None:
    for name in ("m.arpa", "m.npz"):
        run(capsys, "ngram", "train", str(files / "c.txt"), "--order", "3", "-o", str(files / name))
    text = (files / "m.arpa").read_text()
    assert text.startswith("\\data\\\nngram 1=") and text.rstrip().endswith("\\end\\")
    arpa, exact = NGramLM.load_arpa(files / "m.arpa"), NGramLM.load(files / "m.npz")
    assert arpa.vocab == exact.vocab
    for context in ([], ["the"], ["the", "cat"], ["a", "zebra"]):
        numpy.testing.assert_allclose(arpa.prob_distribution(context), exact.prob_distribution(context), rtol=1e-8)
    ppl = [_perplexity(run(capsys, "ngram", "eval", str(files / name), str(files / "t.txt"))) for name in ("m.arpa", "m.npz")]
    assert ppl[0] == pytest.approx(ppl[1], rel=1e-8)
    # the same seed draws the same sentences from either file
    a = run(capsys, "ngram", "sample", str(files / "m.arpa"), "--n", "6", "--seed", "4")
    assert a == run(capsys, "ngram", "sample", str(files / "m.npz"), "--n", "6", "--seed", "4")


def test_sample_is_seeded_and_stays_in_the_vocabulary(files: Path, capsys: pytest.CaptureFixture) -> None:
    run(capsys, "ngram", "train", str(files / "c.txt"), "--order", "2", "-o", str(files / "m.arpa"))
    m = str(files / "m.arpa")
    a = run(capsys, "ngram", "sample", m, "--n", "8", "--seed", "1").splitlines()
    assert a == run(capsys, "ngram", "sample", m, "--n", "8", "--seed", "1").splitlines()
    assert a != run(capsys, "ngram", "sample", m, "--n", "8", "--seed", "2").splitlines()
    assert len(a) == 8
    known = set(CORPUS.split()) | {"<unk>"}
    assert all(set(line.split()) <= known for line in a if not line.startswith("(empty"))
    short = run(capsys, "ngram", "sample", m, "--n", "20", "--max-len", "3", "--seed", "0").splitlines()
    assert all(len(line.split()) <= 3 for line in short if not line.startswith("(empty"))
    prefixed = run(capsys, "ngram", "sample", m, "--n", "4", "--prefix", "a dog", "--seed", "0").splitlines()
    assert all(line.startswith("a dog") for line in prefixed)


def test_prob_is_the_lectures_bigram_formula(files: Path, capsys: pytest.CaptureFixture) -> None:
    """P(w_t | w_{t-1}) = count(w_{t-1} w_t) / count(w_{t-1}), by hand: "the" occurs 7 times (the
    capital "The" is another word), "the cat" twice, so P(cat | the) = 2/7."""
    run(capsys, "ngram", "train", str(files / "c.txt"), "--order", "2", "--smoothing", "mle", "-o", str(files / "m.npz"))
    out = run(capsys, "ngram", "prob", str(files / "m.npz"), "the cat")
    assert f"P(cat | the) = {2 / 7:.6g}" in out and "answered by the 2-gram" in out
    # lower-cased, "the" occurs 8 times and "the cat" 3 times
    run(capsys, "ngram", "train", str(files / "c.txt"), "--order", "2", "--smoothing", "mle", "--lowercase",
        "-o", str(files / "low.npz"))
    out = run(capsys, "ngram", "prob", str(files / "low.npz"), "THE", "Cat", "--lowercase")
    assert f"P(cat | the) = {3 / 8:.6g}" in out
    # a sentence start: <s> then "a" in 1 of 5 sentences
    assert f"P(a | <s>) = {1 / 5:.6g}" in run(capsys, "ngram", "prob", str(files / "m.npz"), "<s> a")


@pytest.mark.parametrize("smoothing", ["kn", "katz", "add-k", "mle"])
def test_backoff_path_gives_the_models_probability(smoothing: str) -> None:
    lm = NGramLM(3, smoothing, k=0.5).fit(sentences(CORPUS))
    rng = numpy.random.default_rng(0)
    words = lm.vocab[1:] + ["zebra"]
    for _ in range(60):
        context = [str(w) for w in rng.choice(["<s>", *words], int(rng.integers(0, 4)))]
        word = str(rng.choice(words))
        p, lines = backoff_path(lm, word, context)
        assert p == pytest.approx(lm.prob(word, context), rel=1e-12, abs=1e-15), (context, word, lines)
        assert "answered by" in lines[-1] or lines[-1].startswith("P = ")


def test_prob_shows_the_backoff_path(files: Path, capsys: pytest.CaptureFixture) -> None:
    run(capsys, "ngram", "train", str(files / "c.txt"), "--order", "3", "--smoothing", "katz", "-o", str(files / "m.arpa"))
    out = run(capsys, "ngram", "prob", str(files / "m.arpa"), "the dog ate")  # "the dog ate" unseen, "dog ate" seen
    assert "3-gram 'the dog ate': not listed; backoff weight of 'the dog'" in out
    assert "2-gram 'dog ate': listed" in out and "answered by the 2-gram" in out
    lm = NGramLM.load_arpa(files / "m.arpa")
    assert f"= {lm.prob('ate', ['the', 'dog']):.6g} (log10" in out
    out = run(capsys, "ngram", "prob", str(files / "m.arpa"), "a big zebra sat")
    assert "read as <unk>: big, zebra" in out and "last 2 words only: big zebra" in out


def test_min_count_and_lowercase_shape_the_vocabulary(files: Path, capsys: pytest.CaptureFixture) -> None:
    out = run(capsys, "ngram", "train", str(files / "c.txt"), "--min-count", "2", "--lowercase", "-o", str(files / "m.npz"))
    lm = NGramLM.load(files / "m.npz")
    assert set(lm.vocab[3:]) == {"the", "cat", "sat", "on", "dog", "ate", "a"}
    assert "7 kept (--min-count 2)" in out and "5 words → <unk>" in out  # mat log fish bone saw: once each


def test_corpus_tokens_unk_and_long_lines(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A literal <unk> is the unknown word; a line longer than word2vec's sentence cut stays one sentence."""
    line = " ".join(f"w{i % 7}" for i in range(12_000))
    (tmp_path / "c.txt").write_text(f"{line}\nx <unk> y\n\n\n")
    out = run(capsys, "ngram", "train", str(tmp_path / "c.txt"), "--order", "2", "--smoothing", "mle",
              "-o", str(tmp_path / "m.npz"))
    assert "12,003 words in 2 sentences" in out and "1 words → <unk>" in out
    lm = NGramLM.load(tmp_path / "m.npz")
    assert "<unk>" not in lm.vocab[3:] and lm.prob("<unk>", ["x"]) == pytest.approx(1.0)


def test_prob_of_a_unigram_model_is_the_word_frequency(files: Path, capsys: pytest.CaptureFixture) -> None:
    """By hand: "cat" is 3 of the 32 predicted tokens (27 words and 5 </s>); the context is ignored."""
    run(capsys, "ngram", "train", str(files / "c.txt"), "--order", "1", "--smoothing", "mle", "-o", str(files / "m.npz"))
    out = run(capsys, "ngram", "prob", str(files / "m.npz"), "the cat")
    assert "ignores the words before" in out and f"P(cat | (no context)) = {3 / 32:.6g}" in out


# --- review fixes (issue #13) --------------------------------------------------------------------


def test_lines_are_cut_as_dlia_nnlm_cuts_them(files, capsys):
    """A lone \\r (old Mac line ends) and the Unicode line breaks end a sentence for dlia ngram as for
    dlia nnlm's reader (str.splitlines), not only \\n."""
    from dlia.cli.ngram import _sentences as ngram_sentences
    from dlia.cli.nnlm import _sentences as nnlm_sentences

    text = "the cat sat\rthe dog sat\r\nthe cat\x0bate\u2028a dog\x85ran\n"
    (files / "r.txt").write_text(text, newline="")
    assert ngram_sentences(str(files / "r.txt"), False) == nnlm_sentences(str(files / "r.txt"), False, "TEXT")
    assert len(ngram_sentences(str(files / "r.txt"), False)) == 6
    run(capsys, "ngram", "train", str(files / "c.txt"), "--order", "2", "-o", str(files / "m.arpa"))
    out = run(capsys, "ngram", "eval", str(files / "m.arpa"), str(files / "r.txt"))
    assert "6 sentences, 12 words" in out
    (files / "rc.txt").write_text(text, newline="")
    out = run(capsys, "ngram", "train", str(files / "rc.txt"), "--order", "2", "-o", str(files / "r.arpa"))
    assert "12 words in 6 sentences" in out


def test_sample_prints_each_sentence_as_it_is_drawn(files, capsys, monkeypatch):
    from dlia.models.ngram import NGramLM

    run(capsys, "ngram", "train", str(files / "c.txt"), "--order", "2", "-o", str(files / "m.arpa"))
    drawn = []
    real = NGramLM.sample

    def sample(self, rng, max_len=100, prefix=()):
        if len(drawn) == 3:
            raise KeyboardInterrupt  # a user stopping a long run: what was drawn is already out
        drawn.append(1)
        return real(self, rng, max_len, prefix)

    monkeypatch.setattr(NGramLM, "sample", sample)
    code = main(["ngram", "sample", str(files / "m.arpa"), "--n", "1000000"])
    out = capsys.readouterr()
    assert code != 0 and "interrupted" in out.err
    assert len(out.out.splitlines()) == 3


def test_prob_of_a_pruned_model_is_the_arpa_rule(tmp_path, capsys):
    """A context listed with a bow but extended by no n-gram (pruned) still applies its bow, in
    ``dlia ngram prob`` as in the library's every scoring path."""
    (tmp_path / "min.arpa").write_text("\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-99\t<s>\t0\n-0.5\t</s>\n"
                                       "-0.5\ta\t-0.5\n-99\t<unk>\n\n\\2-grams:\n-0.3\t<s> a\n\n\\end\\\n")
    out = run(capsys, "ngram", "prob", str(tmp_path / "min.arpa"), "a </s>")
    assert "P(</s> | a) = 0.1 " in out
    lm = NGramLM.load_arpa(tmp_path / "min.arpa")
    assert lm.prob("</s>", ["a"]) == pytest.approx(0.1)
