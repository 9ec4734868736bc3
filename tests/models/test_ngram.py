"""n-gram language models: probabilities computed by hand on a tiny corpus, normalization on random
contexts, perplexity, NLTK agreement, ARPA and checkpoint round trips, bad inputs."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import numpy
import pytest

from dlia.io import CheckpointError
from dlia.models.ngram import (
    KN_FALLBACK,
    ArpaError,
    NGramError,
    NGramLM,
    build_vocab,
    encode_sentences,
    good_turing_discounts,
    kn_discounts,
)

# <s> the cat sat </s> / <s> the dog sat </s> / <s> the cat ran </s>
TINY = [s.split() for s in ("the cat sat", "the dog sat", "the cat ran")]
# counts (predicted tokens): the 3, cat 2, sat 2, dog 1, ran 1, </s> 3; N = 12
# bigrams: <s> the 3, the cat 2, the dog 1, cat sat 1, cat ran 1, dog sat 1, sat </s> 2, ran </s> 1
# contexts: c(<s>) = 3, c(the) = 3, c(cat) = 2, c(dog) = 1, c(sat) = 2, c(ran) = 1
METHODS = ("mle", "add-k", "katz", "kn")


def random_corpus(seed: int = 0, sentences: int = 150, words: int = 12) -> list[list[str]]:
    """Sentences over a small Zipf-like vocabulary, so n-grams repeat and counts vary."""
    rng = numpy.random.default_rng(seed)
    p = 1.0 / numpy.arange(1, words + 1)
    p /= p.sum()
    return [[f"w{i}" for i in rng.choice(words, size=rng.integers(0, 9), p=p)] for _ in range(sentences)]


def per_token_log10(lm: NGramLM, sentences: list[list[str]]) -> float:
    """Σ log10 P token by token through ``prob`` (the oracle for the vectorized scoring)."""
    total = 0.0
    for s in sentences:
        history = ["<s>"]
        for w in [*s, "</s>"]:
            total += lm.logprob(w, history[-(lm.order - 1):] if lm.order > 1 else [])
            history.append(w)
    return total


# --- vocabulary ----------------------------------------------------------------------------------


def test_vocab_specials_first_then_by_count():
    assert build_vocab(TINY) == ["<s>", "</s>", "<unk>", "the", "cat", "sat", "dog", "ran"]
    assert build_vocab(TINY, min_count=2) == ["<s>", "</s>", "<unk>", "the", "cat", "sat"]
    ids = encode_sentences([["the", "bird"]], build_vocab(TINY))
    assert ids[0].tolist() == [3, 2]  # an unseen word is <unk>


def test_vocab_refuses_boundary_tokens():
    with pytest.raises(NGramError, match="<s>"):
        build_vocab([["a", "<s>"]])
    with pytest.raises(NGramError, match="sentence 1"):
        NGramLM(2).fit([["a"], ["b", "</s>"]], vocab=["<s>", "</s>", "<unk>", "a", "b"])


# --- counting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_counts_match_a_python_counter(order):
    corpus = random_corpus(1)
    lm = NGramLM(order, "mle").fit(corpus)
    expected: Counter[tuple[str, ...]] = Counter()
    for s in corpus:
        padded = ["<s>", *s, "</s>"]
        for i in range(1, len(padded)):  # every m-gram ending at a predicted token, starting at or after <s>
            if i - order + 1 >= 0:
                expected[tuple(padded[i - order + 1:i + 1])] += 1
    got = {}
    words = lm.keys[1][:, None]
    for m in range(2, order + 1):  # decode the packed keys: rank(prefix) * V + word
        words = numpy.hstack([words[lm.keys[m] // lm.V], (lm.keys[m] % lm.V)[:, None]])
    for row, c in zip(words.tolist(), lm.counts[order].tolist()):
        if c:
            got[tuple(lm.vocab[w] for w in row)] = c
    assert got == dict(expected)


def test_keys_fit_where_direct_packing_would_overflow():
    # V^5 > 2^63 (V ≈ 12,600): id_1·V^4 + … would overflow; rank(prefix)·V + w does not
    rng = numpy.random.default_rng(2)
    words = [f"v{i}" for i in range(8000)]
    corpus = [list(rng.choice(words, size=20)) for _ in range(1000)]
    lm = NGramLM(5, "kn").fit(corpus)
    assert lm.V ** 5 > 2 ** 63
    assert int(lm.counts[5].sum()) == sum(len(s) + 1 - 3 for s in corpus)  # 5-grams: from <s> w1 w2 w3 w4 on
    assert lm.perplexity(corpus[:50]) == pytest.approx(10 ** (-per_token_log10(lm, corpus[:50]) / (21 * 50)))


# --- exact probabilities, by hand ----------------------------------------------------------------


def test_mle_bigram_is_the_lecture_formula():
    lm = NGramLM(2, "mle").fit(TINY)
    assert lm.prob("cat", ["the"]) == pytest.approx(2 / 3)  # c(the cat) / c(the) = 2/3
    assert lm.prob("dog", ["the"]) == pytest.approx(1 / 3)
    assert lm.prob("sat", ["cat"]) == pytest.approx(1 / 2)
    assert lm.prob("</s>", ["sat"]) == 1.0
    assert lm.prob("the", ["<s>"]) == 1.0
    assert lm.prob("sat", ["the"]) == 0.0  # seen context, unseen word: 0
    assert lm.prob("sat", ["bird"]) == pytest.approx(2 / 12)  # <unk> never a context: unigram c(sat)/N
    assert lm.prob("sat", []) == pytest.approx(2 / 12)
    # each sentence has probability 1/3 (1 · 2/3 · 1/2 · 1, 1 · 1/3 · 1 · 1, 1 · 2/3 · 1/2 · 1); 12 tokens
    assert lm.perplexity(TINY) == pytest.approx(27 ** (1 / 12))
    assert lm.perplexity([["the", "sat"]]) == math.inf  # P(sat | the) = 0
    assert lm.evaluate([["the", "sat"]]).zero_prob == 1


def test_mle_trigram_backs_off_to_the_longest_seen_context():
    lm = NGramLM(3, "mle").fit(TINY)
    assert lm.prob("sat", ["the", "cat"]) == pytest.approx(1 / 2)
    assert lm.prob("cat", ["<s>", "the"]) == pytest.approx(2 / 3)
    assert lm.prob("sat", ["dog", "dog"]) == pytest.approx(1.0)  # "dog dog" unseen → c(dog sat) / c(dog)
    assert lm.prob("the", ["ran", "bird"]) == pytest.approx(3 / 12)  # nothing seen → unigram


def test_add_k():
    lm = NGramLM(2, "add-k", k=1.0).fit(TINY)  # Laplace; V = 7 predictable words (all but <s>)
    assert lm.prob("cat", ["the"]) == pytest.approx((2 + 1) / (3 + 7))
    assert lm.prob("sat", ["the"]) == pytest.approx((0 + 1) / (3 + 7))
    assert lm.prob("the", ["<s>"]) == pytest.approx((3 + 1) / (3 + 7))
    assert lm.prob("sat", ["bird"]) == pytest.approx((2 + 1) / (12 + 7))  # unseen context → add-1 unigram
    assert lm.prob("<s>", ["the"]) == 0.0
    half = NGramLM(2, "add-k", k=0.5).fit(TINY)
    assert half.prob("cat", ["the"]) == pytest.approx(2.5 / (3 + 3.5))
    assert half.prob("<unk>", ["the"]) == pytest.approx(0.5 / 6.5)


def test_kn_discounts_from_count_of_counts():
    # n1..n4 = 10, 4, 2, 1: Y = 10/(10 + 8) = 5/9
    counts = numpy.array([1] * 10 + [2] * 4 + [3] * 2 + [4] + [7, 9])
    (d1, d2, d3), fell_back = kn_discounts(counts)
    assert not fell_back
    assert d1 == pytest.approx(1 - 2 * 5 / 9 * 4 / 10)  # 5/9
    assert d2 == pytest.approx(2 - 3 * 5 / 9 * 2 / 4)  # 7/6
    assert d3 == pytest.approx(3 - 4 * 5 / 9 * 1 / 2)  # 17/9
    assert kn_discounts(numpy.array([1, 1, 2, 3])) == (KN_FALLBACK, True)  # n4 = 0


def test_kn_unigram_with_its_own_discounts():
    # one sentence "a b b c c c d d d d": counts a 1, b 2, c 3, d 4, </s> 1; N = 11; n1..n4 = 2, 1, 1, 1
    lm = NGramLM(1, "kn").fit([["a", "b", "b", "c", "c", "c", "d", "d", "d", "d"]])
    # Y = 2/4; D1 = 1 - 2·½·1/2 = ½, D2 = 2 - 3·½·1/1 = ½, D3+ = 3 - 4·½·1/1 = 1
    assert lm.discounts[1] == pytest.approx((0.5, 0.5, 1.0)) and not lm.fallback[1]
    gamma = (0.5 * 2 + 0.5 * 1 + 1.0 * 2) / 11  # (D1·n1 + D2·n2 + D3+·n3+) / N = 3.5/11
    V = 6  # </s> <unk> a b c d
    assert lm.prob("d") == pytest.approx((4 - 1.0) / 11 + gamma / V)  # 21.5/66
    assert lm.prob("b") == pytest.approx((2 - 0.5) / 11 + gamma / V)
    assert lm.prob("a") == pytest.approx((1 - 0.5) / 11 + gamma / V)  # 6.5/66
    assert lm.prob("<unk>") == pytest.approx(gamma / V)  # 3.5/66: only the uniform share
    assert lm.prob("zebra") == lm.prob("<unk>")


def test_kn_bigram_by_hand():
    lm = NGramLM(2, "kn").fit(TINY)
    # bigram counts 3, 2, 1, 1, 1, 1, 2, 1: n1..n4 = 5, 2, 1, 0 → fallback (0.5, 1, 1.5)
    assert lm.discounts[2] == KN_FALLBACK and lm.fallback[2]
    # unigram continuation counts (distinct left words): the 1 (<s>), cat 1, dog 1, ran 1, sat 2 (cat, dog),
    # </s> 2 (sat, ran), <unk> 0: A = 8, n1..n4 = 4, 2, 0, 0 → fallback too
    assert lm.discounts[1] == KN_FALLBACK
    gamma1 = (0.5 * 4 + 1.0 * 2) / 8  # = 1/2
    p_the, p_cat, p_sat = 0.5 / 8 + gamma1 / 7, 0.5 / 8 + gamma1 / 7, (2 - 1.0) / 8 + gamma1 / 7
    assert p_the == pytest.approx(15 / 112) and p_sat == pytest.approx(11 / 56)
    assert lm.prob("the", []) == pytest.approx(p_the)
    assert lm.prob("<unk>", []) == pytest.approx(gamma1 / 7)
    # context "the": cat 2 (D2 = 1), dog 1 (D1 = ½); γ(the) = (½·1 + 1·1) / 3 = ½
    assert lm.prob("cat", ["the"]) == pytest.approx((2 - 1.0) / 3 + 0.5 * p_cat)
    assert lm.prob("sat", ["the"]) == pytest.approx(0.5 * p_sat)  # unseen after "the": γ(the)·P(sat)
    # context <s>: the 3 (D3+ = 1.5); γ(<s>) = 1.5/3
    assert lm.prob("the", ["<s>"]) == pytest.approx((3 - 1.5) / 3 + 0.5 * p_the)
    assert lm.bows[1][lm.vocab.index("the")] == pytest.approx(0.5)  # backoff form: bow = γ


def test_good_turing_discounts_by_hand():
    # n1..n6 = 5, 2, 1, 0, 0, 0 (the tiny corpus's bigrams); k = 2: T = 3·n3/n1 = 3/5
    counts = numpy.array([3, 2, 1, 1, 1, 1, 2, 1])
    d = good_turing_discounts(counts, k=2)
    assert d[1] == pytest.approx((2 * 2 / 5 - 3 / 5) / (1 - 3 / 5))  # r* = 2·n2/n1 = 4/5 → ½
    assert d[2] == pytest.approx((3 * 1 / 2 / 2 - 3 / 5) / (1 - 3 / 5))  # r* = 3·n3/n2 = 3/2 → 3/8
    d5 = good_turing_discounts(counts)  # k = 5, n6 = 0: T = 0, d_r = r*/r; n4 = 0 makes d_3 = 0 → 1
    assert d5[1:].tolist() == pytest.approx([4 / 5, 3 / 4, 1.0, 1.0, 1.0])


def test_katz_by_hand():
    lm = NGramLM(2, "katz", katz_k=2).fit(TINY)
    # unigram counts 3, 2, 2, 1, 1, 3: T = 3·n3/n1 = 3 ≥ 1, nothing discounted, but <unk> unseen:
    # one more token in the denominator, P(w) = c(w)/13 and P(<unk>) = 1/13
    assert lm.prob("the", []) == pytest.approx(3 / 13)
    assert lm.prob("<unk>", []) == pytest.approx(1 / 13)
    # context "the": cat 2 → d2 = 3/8, dog 1 → d1 = ½
    assert lm.prob("cat", ["the"]) == pytest.approx(3 / 8 * 2 / 3)
    assert lm.prob("dog", ["the"]) == pytest.approx(1 / 2 * 1 / 3)
    alpha = (1 - 1 / 4 - 1 / 6) / (1 - 2 / 13 - 1 / 13)  # left-over / (1 - P(cat) - P(dog)) = 91/120
    assert lm.prob("sat", ["the"]) == pytest.approx(alpha * 2 / 13)  # 7/60
    # context <s>: "the" seen 3 > k times, undiscounted, leaving nothing: denominator 3 + 1
    assert lm.prob("the", ["<s>"]) == pytest.approx(3 / 4)
    assert lm.prob("cat", ["<s>"]) == pytest.approx((1 / 4) / (1 - 3 / 13) * 2 / 13)  # 1/20


# --- normalization and consistency ---------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_every_distribution_sums_to_one(method):
    corpus = random_corpus(3)
    rng = numpy.random.default_rng(4)
    for order in range(1, 6):
        lm = NGramLM(order, method).fit(corpus)
        contexts = [rng.integers(0, lm.V, size=rng.integers(0, order + 1)).tolist() for _ in range(25)]
        contexts += [["<s>", *rng.choice(corpus[0] + ["w0"], size=order - 1).tolist()] for _ in range(25)]
        for ctx in contexts:
            p = lm.prob_distribution(ctx)
            assert p.shape == (lm.V,) and p[0] == 0.0 and (p >= 0).all()
            assert p.sum() == pytest.approx(1.0, abs=1e-12), (method, order, ctx)


@pytest.mark.parametrize("method", METHODS)
def test_vectorized_scoring_matches_prob(method):
    corpus, test = random_corpus(5), random_corpus(6, sentences=30, words=14)  # w12, w13 unknown
    for order in (1, 2, 3, 4):
        lm = NGramLM(order, method).fit(corpus)
        ev = lm.evaluate(test)
        assert ev.tokens == sum(len(s) + 1 for s in test)
        assert ev.oov == sum(w in ("w12", "w13") for s in test for w in s)
        expected = per_token_log10(lm, test)
        if method == "mle":
            assert ev.log10_prob == expected  # both -inf, or equal
        else:
            assert ev.log10_prob == pytest.approx(expected, rel=1e-12)


def test_uniform_model_perplexity_is_the_vocabulary_size():
    # every predictable token (a, b, <unk>, </s>) is seen equally often: the MLE unigram is uniform
    lm = NGramLM(1, "mle").fit([["a", "b", "<unk>"], ["b", "<unk>", "a"]])
    assert lm.V - 1 == 4
    assert lm.perplexity([["a", "x", "y", "b", "b"], []]) == pytest.approx(4.0)


def test_uniform_arpa_model_perplexity_is_the_vocabulary_size(tmp_path):
    words = ["</s>", "<unk>", "a", "b", "c"]
    lines = ["\\data\\", "ngram 1=6", "", "\\1-grams:", "-99\t<s>"]
    lines += [f"{math.log10(1 / 5)}\t{w}" for w in words] + ["", "\\end\\"]
    (tmp_path / "u.arpa").write_text("\n".join(lines) + "\n")
    lm = NGramLM.load_arpa(tmp_path / "u.arpa")
    assert lm.perplexity([["a", "c", "zz"], ["b"]]) == pytest.approx(5.0)


def test_a_test_set_of_only_unknown_words():
    test = [["zebra", "yak"], ["gnu"]]
    kn = NGramLM(2, "kn").fit(TINY)
    ev = kn.evaluate(test)
    assert (ev.oov, ev.tokens, ev.sentences) == (3, 5, 2)  # scored as <unk> <unk> </s>, <unk> </s>
    assert 1 < ev.perplexity < math.inf
    assert ev.log10_prob == pytest.approx(kn.logprob("<unk>", ["<s>"]) * 2 + kn.logprob("<unk>", ["<unk>"])
                                          + kn.logprob("</s>", ["<unk>"]) * 2)
    assert NGramLM(2, "mle").fit(TINY).perplexity(test) == math.inf  # <unk> never seen in training


# --- NLTK agreement ------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [1, 2])
def test_agrees_with_nltk_mle_and_laplace(order):
    nltk_lm = pytest.importorskip("nltk.lm", reason="nltk is not installed (pip install nltk)")
    from nltk.util import ngrams

    corpus = random_corpus(7, sentences=60)
    rng = numpy.random.default_rng(8)
    shuffled = [list(rng.permutation(s)) for s in corpus[:20] if s]  # unseen bigrams, seen contexts

    def grams(sentences):
        # padded as we pad: one <s>; NLTK's vocabulary is given without <s>, so <s> maps to its <UNK>,
        # which then plays <s>'s part, and |V| (words, </s>, <UNK>) equals our predictable vocabulary
        return [list(ngrams(["<s>", *s, "</s>"] if order == 2 else [*s, "</s>"], order)) for s in sentences]

    text = [w for s in corpus for w in [*s, "</s>"]]
    for ours, theirs, test in (("mle", nltk_lm.MLE, corpus), ("add-k", nltk_lm.Laplace, shuffled)):
        peer = theirs(order)
        peer.fit(grams(corpus), vocabulary_text=text)
        lm = NGramLM(order, ours).fit(corpus)
        assert len(peer.vocab) == lm.V - 1
        expected = peer.perplexity([g for s in grams(test) for g in s])
        assert lm.perplexity(test) == pytest.approx(expected, rel=1e-9)


# --- sampling ------------------------------------------------------------------------------------


def test_sampling_follows_the_model_and_the_seed():
    lm = NGramLM(2, "mle").fit(TINY)
    sentences = lm.generate(40, seed=1)
    assert set(sentences) == {"the cat sat", "the cat ran", "the dog sat"}  # every path the bigrams allow
    assert lm.generate(5, seed=3) == lm.generate(5, seed=3)
    short = lm.sample(numpy.random.default_rng(0), max_len=2)
    assert short == lm.sample(numpy.random.default_rng(0))[:2] and len(short) == 2
    assert lm.generate(1, seed=0, prefix=["the", "dog"])[0] == "the dog sat"


# --- ARPA ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_arpa_round_trip_gives_the_same_probabilities(method, tmp_path):
    corpus = random_corpus(9, sentences=60, words=8)
    rng = numpy.random.default_rng(10)
    for order in (1, 2, 3, 4):
        lm = NGramLM(order, method).fit(corpus)
        back = NGramLM.load_arpa(lm.save_arpa(tmp_path / f"{method}{order}.arpa"))
        assert back.vocab == lm.vocab and back.order == order
        for _ in range(50):
            ctx = rng.integers(0, lm.V, size=rng.integers(0, order + 1)).tolist()
            numpy.testing.assert_allclose(back.prob_distribution(ctx), lm.prob_distribution(ctx), rtol=1e-8, atol=0)
        assert back.perplexity(corpus[:20]) == pytest.approx(lm.perplexity(corpus[:20]), rel=1e-8)


def test_arpa_file_layout(tmp_path):
    lm = NGramLM(2, "kn").fit(TINY)
    text = lm.save_arpa(tmp_path / "m.arpa").read_text()
    lines = text.splitlines()
    assert lines[:3] == ["\\data\\", "ngram 1=8", "ngram 2=8"]
    assert "\\1-grams:" in lines and "\\2-grams:" in lines and lines[-1] == "\\end\\"
    unigrams = lines[lines.index("\\1-grams:") + 1:lines.index("\\2-grams:") - 1]
    assert unigrams[0].split("\t")[:2] == ["-99", "<s>"]  # never predicted: log10 0
    assert all(len(line.split("\t")) == 3 for line in unigrams)  # prob, word, backoff weight
    p, words, bow = next(line for line in unigrams if line.split("\t")[1] == "the").split("\t")
    assert float(p) == pytest.approx(math.log10(15 / 112)) and float(bow) == pytest.approx(math.log10(0.5))
    bigrams = lines[lines.index("\\2-grams:") + 1:-2]
    assert all(len(line.split("\t")) == 2 for line in bigrams)  # the highest order has no backoff weight


KENLM_STYLE = """\
\\data\\
ngram 1=5
ngram 2=4

\\1-grams:
-1.0\t<unk>\t0
{bos}\t<s>\t-0.30103
-0.5\t</s>\t0
-0.6\ta\t-0.2
-0.7\tb\t-0.25

\\2-grams:
-0.3\t<s> a
-0.4\ta b
-0.2\tb </s>
-0.5\ta </s>

\\end\\
"""


@pytest.mark.parametrize("bos", ["-99", "0"])
def test_reads_kenlm_and_srilm_files(tmp_path, bos):
    path = tmp_path / "k.arpa"
    path.write_text("written by a tool\n" + KENLM_STYLE.format(bos=bos))
    lm = NGramLM.load_arpa(path)
    assert lm.order == 2 and lm.vocab[:3] == ["<s>", "</s>", "<unk>"] and set(lm.vocab) == {"<s>", "</s>", "<unk>", "a", "b"}
    assert lm.prob("b", ["a"]) == pytest.approx(10 ** -0.4)
    assert lm.prob("b", ["<s>"]) == pytest.approx(10 ** (-0.30103 - 0.7))  # backed off: bow(<s>) · P(b)
    assert lm.prob("zzz", ["b"]) == pytest.approx(10 ** (-0.25 - 1.0))  # unknown word → <unk>
    assert lm.prob("<s>", ["a"]) == 0.0
    expected = -0.3 - 0.4 - 0.2  # <s> a b </s>
    assert lm.evaluate([["a", "b"]]).log10_prob == pytest.approx(expected)


def test_reads_a_closed_vocabulary_file_without_unk(tmp_path):
    path = tmp_path / "c.arpa"
    text = KENLM_STYLE.format(bos="-99").replace("ngram 1=5", "ngram 1=4").replace("-1.0\t<unk>\t0\n", "")
    path.write_text(text)
    lm = NGramLM.load_arpa(path)
    assert lm.prob("<unk>", ["a"]) == 0.0 and lm.perplexity([["q"]]) == math.inf
    assert lm.perplexity([["a"]]) == pytest.approx(10 ** ((0.3 + 0.5) / 2))


@pytest.mark.parametrize("edit, line, what", [
    (lambda t: t.replace("\\data\\", "\\dta\\"), 1, "no \\\\data\\\\ header"),
    (lambda t: t.replace("ngram 2=4", "ngram 2=5"), 12, "declares 5 2-grams, the section holds 4"),
    (lambda t: t.replace("ngram 2=4", "ngram two=4"), 3, "ngram N=COUNT"),
    (lambda t: t.replace("-0.4\ta b", "-O.4\ta b"), 14, "not a number"),
    (lambda t: t.replace("-0.4\ta b", "-0.4\ta"), 14, "fields"),
    (lambda t: t.replace("-0.4\ta b", "0.4\ta b"), 14, "above 0"),
    (lambda t: t.replace("-0.4\ta b", "-0.4\ta c"), 14, "'c' is not among the unigrams"),
    (lambda t: t.replace("-0.4\ta b", "-0.3\t<s> a"), 14, "listed twice"),
    (lambda t: t.split("\\2-grams:")[0], 11, "truncated"),
    (lambda t: t.replace("\\end\\", ""), 18, "truncated"),
    (lambda t: t.replace("\\2-grams:", "\\3-grams:"), 12, "expected \\\\2-grams:"),
])
def test_corrupt_arpa_files_name_the_line(tmp_path, edit, line, what):
    path = tmp_path / "bad.arpa"
    path.write_text(edit(KENLM_STYLE.format(bos="-99")))
    with pytest.raises(ArpaError, match=f"bad.arpa, line {line}: .*{what}"):
        NGramLM.load_arpa(path)


def test_arpa_trigram_whose_context_is_missing(tmp_path):
    text = KENLM_STYLE.format(bos="-99").replace("ngram 2=4", "ngram 2=4\nngram 3=1").replace(
        "\\end\\", "\\3-grams:\n-0.1\tb a b\n\n\\end\\")
    (tmp_path / "t.arpa").write_text(text)
    with pytest.raises(ArpaError, match="line 20: the context of this 3-gram is not listed"):
        NGramLM.load_arpa(tmp_path / "t.arpa")


def test_arpa_missing_or_binary_file(tmp_path):
    with pytest.raises(ArpaError, match="no such file"):
        NGramLM.load_arpa(tmp_path / "none.arpa")
    (tmp_path / "b.arpa").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ArpaError, match="not UTF-8"):
        NGramLM.load_arpa(tmp_path / "b.arpa")
    assert issubclass(ArpaError, ValueError)


# --- checkpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_round_trip_is_exact(method, tmp_path):
    corpus = random_corpus(11)
    lm = NGramLM(3, method).fit(corpus)
    back = NGramLM.load(lm.save(tmp_path / "m.npz"))
    assert (back.order, back.smoothing, back.vocab) == (3, method, lm.vocab)
    assert back.perplexity(corpus) == lm.perplexity(corpus)
    assert back.discounts[1:] == [tuple(d) for d in lm.discounts[1:]]


def test_checkpoint_of_something_else_is_refused(tmp_path):
    from dlia.io import save_checkpoint

    save_checkpoint(tmp_path / "other.npz", config={"model": "charrnn"})
    with pytest.raises(CheckpointError, match="not an n-gram"):
        NGramLM.load(tmp_path / "other.npz")


# --- bad inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make, what", [
    (lambda: NGramLM(0), "order must be an integer >= 1"),
    (lambda: NGramLM(2.0), "order must be an integer >= 1"),  # type: ignore[arg-type]
    (lambda: NGramLM(2, "witten-bell"), "unknown smoothing"),
    (lambda: NGramLM(2, "add-k", k=0), "k > 0"),
    (lambda: NGramLM(2).fit([]), "empty corpus"),
    (lambda: NGramLM(2).fit([[], []]), "empty corpus"),
    (lambda: NGramLM(2).fit(["the cat"]), "sentence 0 is a string"),
    (lambda: NGramLM(2).fit(TINY).perplexity([]), "empty test set"),
    (lambda: NGramLM(2).prob("a"), "not trained"),
    (lambda: NGramLM(2).fit(TINY).prob(99), "outside the vocabulary"),
    (lambda: NGramLM(2).fit([numpy.array([3, 4])], vocab=["<s>", "</s>", "<unk>", "a"]), "ids must be integers in 0..3"),
    (lambda: NGramLM(2).fit(TINY, vocab=["a", "b"]), "must start with <s>"),
])
def test_bad_inputs_raise_one_clear_error(make, what):
    with pytest.raises(NGramError, match=what):
        make()


def test_fits_token_ids_with_a_given_vocabulary():
    vocab = build_vocab(TINY)
    by_ids = NGramLM(3, "kn").fit(encode_sentences(TINY, vocab), vocab=vocab)
    by_words = NGramLM(3, "kn").fit(TINY)
    assert by_ids.perplexity(TINY) == by_words.perplexity(encode_sentences(TINY, vocab))


def test_add_k_arpa_is_refused_when_too_large(monkeypatch, tmp_path):
    import dlia.models.ngram as ngram

    monkeypatch.setattr(ngram, "ADD_K_ARPA_LIMIT", 10)
    with pytest.raises(NGramError, match="lists every word after every context"):
        NGramLM(2, "add-k").fit(TINY).save_arpa(tmp_path / "a.arpa")
    assert not Path(tmp_path / "a.arpa").exists()


def test_orders_of_the_readme_example():
    # the class docstring's example, and every method on a corpus where orders beyond the data repeat
    assert NGramLM(2, "mle").fit([["the", "cat"], ["the", "dog"]]).prob("cat", ["the"]) == 0.5
    for method, order in itertools.product(METHODS, (5, 6)):
        lm = NGramLM(order, method).fit(TINY)
        assert math.isfinite(lm.perplexity(TINY))


# --- review fixes (issue #13) --------------------------------------------------------------------

#: a bigram model whose context "a" keeps a backoff weight although no bigram extends it (pruned)
PRUNED_ARPA = ("\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-99\t<s>\t0\n-0.5\t</s>\n-0.5\ta\t-0.5\n-99\t<unk>\n\n"
               "\\2-grams:\n-0.3\t<s> a\n\n\\end\\\n")


def test_bow_of_a_listed_ngram_applies_even_if_nothing_extends_it(tmp_path):
    (tmp_path / "min.arpa").write_text(PRUNED_ARPA)
    lm = NGramLM.load_arpa(tmp_path / "min.arpa")
    want = 10 ** -0.5 * 10 ** -0.5  # bow(a) · P(</s>), as KenLM
    assert lm.prob("</s>", ["a"]) == pytest.approx(want)
    assert lm.prob_distribution(["a"])[1] == pytest.approx(want)
    assert 10 ** lm.token_logprobs([["a"]])[1] == pytest.approx(want)


def _pruned_arpa(tmp_path: Path) -> Path:
    """A KN trigram model with every trigram whose context starts with w0 or w2 cut, their bigrams'
    bows kept (what SRILM's -prune and KenLM's --prune leave)."""
    lm = NGramLM(3, "kn").fit(random_corpus(5))
    lines = lm.save_arpa(tmp_path / "full.arpa").read_text().splitlines()
    start = lines.index("\\3-grams:")
    end = lines.index("", start)
    kept = [x for x in lines[start + 1:end] if x.split("\t")[1].split()[0] not in ("w0", "w2")]
    assert 0 < len(kept) < end - start - 1
    head = [f"ngram 3={len(kept)}" if x.startswith("ngram 3=") else x for x in lines[:start + 1]]
    p = tmp_path / "pruned.arpa"
    p.write_text("\n".join([*head, *kept, *lines[end:]]) + "\n")
    return p


def test_pruned_model_every_way_of_scoring_agrees(tmp_path):
    from dlia.cli.ngram import backoff_path

    lm = NGramLM.load_arpa(_pruned_arpa(tmp_path))
    test = random_corpus(6, sentences=40)
    by_tokens = lm.token_logprobs(test)
    assert per_token_log10(lm, test) == pytest.approx(by_tokens.sum(), abs=1e-9)
    assert lm.evaluate(test).log10_prob == pytest.approx(by_tokens.sum(), abs=1e-9)
    rng = numpy.random.default_rng(0)
    words, checked = lm.vocab[1:], 0
    for _ in range(200):
        context = list(rng.choice(lm.vocab, size=2))
        w = str(rng.choice(words))
        p = lm.prob(w, context)
        assert lm.prob_distribution(context)[lm.vocab.index(w)] == p
        assert backoff_path(lm, w, context)[0] == pytest.approx(p, rel=1e-12)
        tail = context[1:] if context[0] == "<s>" else context
        if not {"<s>", "</s>"} & set(tail):  # a history a sentence can have: score it inside one
            sentence = [*tail, *([] if w == "</s>" else [w])]
            assert 10 ** lm.token_logprobs([sentence])[len(tail)] == pytest.approx(p, rel=1e-9)
            checked += 1
    assert checked > 50


def test_add_k_bounds_k():
    from dlia.models.ngram import MAX_K

    with pytest.raises(NGramError, match="k <= 1e"):
        NGramLM(2, "add-k", k=1e308)
    lm = NGramLM(2, "add-k", k=MAX_K).fit(TINY)
    assert numpy.isfinite(lm.prob_distribution(["the"])).all()


@pytest.mark.parametrize("bad", ["-0_1", "-0.3_0", "-\u0661"])
def test_arpa_numbers_are_plain_decimals(tmp_path, bad):
    (tmp_path / "u.arpa").write_text(PRUNED_ARPA.replace("-0.3\t<s> a", f"{bad}\t<s> a"))
    with pytest.raises(ArpaError, match="line 12: not a number"):
        NGramLM.load_arpa(tmp_path / "u.arpa")


def _damage(tmp_path: Path, change) -> Path:
    """A saved KN trigram checkpoint with ``change(arrays, meta)`` applied to its tables (``arrays``,
    named ``keys_2``, ...) and metadata."""
    import json

    path = NGramLM(3, "kn").fit(random_corpus(3)).save(tmp_path / "m.npz")
    with numpy.load(path) as z:
        arrays = {name.removeprefix("model/"): z[name] for name in z.files}
    meta = json.loads(arrays.pop("__meta__").tobytes())
    change(arrays, meta)
    arrays["__meta__"] = numpy.frombuffer(json.dumps(meta).encode(), dtype=numpy.uint8)
    out = tmp_path / "bad.npz"
    numpy.savez(out, **{(n if n == "__meta__" else f"model/{n}"): a for n, a in arrays.items()})
    return out


def _set(name, value):
    def change(arrays, meta):
        arrays[name] = value(arrays[name]) if callable(value) else value
    return change


def _meta(edit):
    def change(arrays, meta):
        edit(meta)
    return change


@pytest.mark.parametrize("change, what", [
    (_set("keys_2", lambda a: a[::-1].copy()), "keys_2 are not sorted"),
    (_set("keys_3", lambda a: numpy.concatenate(([-5], a[1:]))), "keys_3 hold a key outside"),
    (_set("keys_2", lambda a: numpy.concatenate((a[:-1], [10**12]))), "keys_2 hold a key outside"),
    (_set("probs_2", lambda a: numpy.where(numpy.arange(len(a)) == 3, 1.5, a)), "probs_2 hold a value outside"),
    (_set("probs_1", lambda a: numpy.where(numpy.arange(len(a)) == 3, -0.1, a)), "probs_1 hold a value outside"),
    (_set("probs_3", lambda a: numpy.where(numpy.arange(len(a)) == 0, 1.0 + 1e-9, a)), "probs_3 hold a value outside"),
    (_set("bows_1", lambda a: numpy.where(numpy.arange(len(a)) == 4, -1.0, a)), "bows_1 hold a negative"),
    (_set("bows_2", lambda a: numpy.where(numpy.arange(len(a)) == 0, -0.5, a)), "bows_2 hold a negative"),  # NaN, inf: dlia.io
    (_set("keys_2", lambda a: a.astype(numpy.float64)), "keys_2 must be a 1-d integer array"),
    (_meta(lambda m: m.__setitem__("vocab", [*m["vocab"][:-1], 7])), "vocabulary holds words"),
    (_meta(lambda m: m.__setitem__("vocab", [*m["vocab"][:-1], m["vocab"][3]])), "repeats words"),
    (_meta(lambda m: m.__setitem__("vocab", [m["vocab"][1], m["vocab"][0], *m["vocab"][2:]])), "must start with <s>"),
    (_meta(lambda m: m["config"].__setitem__("order", 2)), "config says order 2, its tables hold 3"),
    (_meta(lambda m: m["config"].__setitem__("order", 4)), "config says order 4, its tables hold 3"),
])
def test_damaged_checkpoint_tables_are_refused(tmp_path, change, what):
    path = _damage(tmp_path, change)
    with pytest.raises(NGramError, match=f"bad.npz is not a usable n-gram model checkpoint: .*{what}"):
        NGramLM.load(path)


def test_undamaged_checkpoint_still_loads(tmp_path):
    lm = NGramLM.load(_damage(tmp_path, lambda arrays, meta: None))
    assert lm.order == 3
