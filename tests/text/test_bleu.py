"""``dlia.text`` BLEU: equal to sacrebleu (the test extra) on sample corpora with every smoothing,
hand-computed cases, and the refusals of bad input."""

from __future__ import annotations

import math
import random

import pytest

from dlia.text import BleuScore, corpus_bleu, sentence_bleu


def _t(s: str) -> list[str]:
    return s.split()


#: (name, hypotheses, references [sentence][reference]) — references may differ in number per sentence
CORPORA = {
    "single": (
        ["the cat sat on the mat", "there is a dog in the garden", "a small red circle left of a blue square"],
        [["the cat is on the mat"], ["a dog is in the garden"], ["a small red circle left of a blue square"]],
    ),
    "multi": (
        ["the cat the cat on the mat",
         "it is a guide to action which ensures that the military always obeys the commands of the party",
         "he read the book because he was interested in world history"],
        [["the cat is on the mat", "there is a cat on the mat"],
         ["it is a guide to action that ensures that the military will forever heed party commands",
          "it is the guiding principle which guarantees the military forces always being under the command of the party",
          "it is the practical guide for the army always to heed the directions of the party"],
         ["he was interested in world history because he read the book", "he read the book because he was interested"]],
    ),
    "empty hypothesis": (
        ["", "the quick brown fox jumps over the lazy dog", "hello world"],
        [["something was said here"], ["the quick brown fox jumped over the lazy dog"], ["hello there world", "hello world"]],
    ),
    "short hypotheses": (  # shorter than the references: brevity penalty < 1
        ["the cat", "a dog in", "on the mat today"],
        [["the cat sat on the mat"], ["there is a dog in the garden"], ["the cat sat on the mat today"]],
    ),
    "under four words": (  # no 4-gram (and no 3-gram) at all
        ["a cat", "red", "a b"],
        [["a cat", "the cat"], ["red"], ["a b c"]],
    ),
    "no match": (["x y z w", "v"], [["a b c d"], ["e f"]]),
    "long hypotheses": (  # longer than every reference: BP = 1
        ["the the the cat cat sat sat on on the mat mat and more", "a a a a a a a"],
        [["the cat sat on the mat", "the cat"], ["a a b", "a"]],
    ),
    "tie in closest length": (  # |hyp| = 4, references of 3 and 5: the shorter (3) is r
        ["a b c d", "e f g h"],
        [["a b c", "a b c d e"], ["e f g h i", "x e f"]],
    ),
}


def _random_corpus(seed: int) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    words = "a b c d e f the of".split()
    hyps, refs = [], []
    for _ in range(rng.randint(1, 30)):
        hyps.append(" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))))
        refs.append([" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(rng.randint(1, 3))])
    return hyps, refs


def _sacrebleu(hyps: list[str], refs: list[list[str]], smooth: str, value: float | None, effective_order: bool = False):
    sacrebleu = pytest.importorskip("sacrebleu")
    n_streams = max(len(r) for r in refs)
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(n_streams)]  # None: fewer references
    metric = sacrebleu.metrics.BLEU(tokenize="none", force=True, smooth_method=smooth, smooth_value=value,
                                    effective_order=effective_order)
    return metric.corpus_score(hyps, streams)


CASES = [(name, *c) for name, c in CORPORA.items()] + [(f"random {s}", *_random_corpus(s)) for s in range(12)]


@pytest.mark.parametrize("smooth,value", [("none", None), ("exp", None), ("floor", None), ("floor", 0.3),
                                          ("add-k", None), ("add-k", 0.5)])
@pytest.mark.parametrize("name,hyps,refs", CASES, ids=[c[0] for c in CASES])
def test_equals_sacrebleu(name: str, hyps: list[str], refs: list[list[str]], smooth: str, value: float | None) -> None:
    for effective in (False, True):
        expected = _sacrebleu(hyps, refs, smooth, value, effective)
        got = corpus_bleu([_t(h) for h in hyps], [[_t(r) for r in rs] for rs in refs],
                          smooth=None if smooth == "none" else smooth, smooth_value=value, effective_order=effective)
        assert got.score == pytest.approx(expected.score / 100, abs=1e-9, rel=1e-9)
        assert got.bp == pytest.approx(expected.bp, abs=1e-9, rel=1e-9)
        assert (got.sys_len, got.ref_len) == (expected.sys_len, expected.ref_len)
        assert got.precisions == pytest.approx([p / 100 for p in expected.precisions], abs=1e-9, rel=1e-9)
        if smooth != "add-k":  # sacrebleu's add-k returns its smoothed counts
            assert list(got.counts) == list(expected.counts) and list(got.totals) == list(expected.totals)


def test_sentence_bleu_equals_sacrebleu() -> None:
    sacrebleu = pytest.importorskip("sacrebleu")
    for hyps, refs in CORPORA.values():
        for h, rs in zip(hyps, refs):
            expected = sacrebleu.sentence_bleu(h, rs, tokenize="none")
            assert sentence_bleu(_t(h), [_t(r) for r in rs]).score == pytest.approx(expected.score / 100, abs=1e-9)


def test_single_reference_form_equals_nested() -> None:
    hyps, refs = CORPORA["single"]
    a = corpus_bleu([_t(h) for h in hyps], [_t(r[0]) for r in refs])
    b = corpus_bleu([_t(h) for h in hyps], [[_t(r[0])] for r in refs])
    assert a == b
    assert sentence_bleu(_t(hyps[0]), _t(refs[0][0])) == sentence_bleu(_t(hyps[0]), [_t(refs[0][0])])


def test_hand_computed() -> None:
    # hyp "the the the the", ref "the cat the": unigram clip: "the" 4 times in hyp, 2 in the reference → 2/4
    s = corpus_bleu([_t("the the the the")], [_t("the cat the")], max_n=1)
    assert s.counts == (2,) and s.totals == (4,) and s.precisions == (0.5,)
    assert s.bp == 1.0 and s.score == 0.5  # c = 4 > r = 3

    # bigrams: hyp "a b c d" vs ref "a b x d e": 1-grams 3/4 (a b d), 2-grams 1/3 (a b); c = 4 < r = 5
    s = corpus_bleu([_t("a b c d")], [_t("a b x d e")], max_n=2)
    assert s.counts == (3, 1) and s.totals == (4, 3)
    assert s.bp == pytest.approx(math.exp(1 - 5 / 4))
    assert s.score == pytest.approx(math.exp(1 - 5 / 4) * math.sqrt(3 / 4 * 1 / 3))

    # counts are summed over the corpus before dividing: sentence 1 matches 2/2, sentence 2 0/2 → p1 = 2/4
    s = corpus_bleu([_t("a b"), _t("c d")], [_t("a b"), _t("x y")], max_n=1)
    assert s.precisions == (0.5,) and s.score == 0.5

    # closest reference: |hyp| = 4, refs of 2 and 6 (both 2 away) → the shorter, so BP = 1
    s = corpus_bleu([_t("a b c d")], [[_t("a b"), _t("a b c d e f")]], max_n=1)
    assert s.ref_len == 2 and s.bp == 1.0 and s.score == 1.0

    # multi-reference clip: "the" twice in hyp, at most once in each reference → 1 of 2 counts
    s = corpus_bleu([_t("the the")], [[_t("the cat"), _t("a the")]], max_n=1)
    assert s.counts == (1,)

    # identical sentences score 1, a missing 4-gram order scores 0 unsmoothed
    same = _t("a small red circle left of a blue square")
    assert corpus_bleu([same], [same]).score == 1.0
    assert corpus_bleu([_t("a b c")], [_t("a b c")]).score == 0.0
    assert corpus_bleu([_t("a b c")], [_t("a b c")], effective_order=True).score == 1.0

    # exp smoothing: 4-grams 0/1 matched, the first zero order gets 1 / (2 · 1)
    s = corpus_bleu([_t("a b c d")], [_t("a b c x")], smooth="exp")
    assert s.precisions == pytest.approx((3 / 4, 2 / 3, 1 / 2, 1 / 2))


def test_empty_hypotheses() -> None:
    s = corpus_bleu([[], []], [_t("a b"), _t("c")])
    assert s.score == 0.0 and s.bp == 0.0 and s.sys_len == 0 and s.ref_len == 3
    assert isinstance(s, BleuScore) and "BLEU = 0.00" in str(s)


@pytest.mark.parametrize("hyps,refs,kwargs,message", [
    ([], [], {}, "no sentences"),
    ([["a"], ["b"]], [["a"]], {}, "2 hypotheses but 1 reference entries"),
    ([["a"]], [[["a"]], [["b"]]], {}, "1 hypotheses but 2"),
    ([["a"], ["b"]], [[["a"]], []], {}, "hypothesis 1 has no reference"),
    (["a b"], [["a", "b"]], {}, "hypothesis 0 must be a list of tokens"),
    ("a b", [["a", "b"]], {}, "hypotheses must be a list"),
    ([["a"]], [["a", 3]], {}, "reference 0 of hypothesis 0 must be a list of tokens"),
    ([["a"]], [[3]], {}, "reference 0 of hypothesis 0 must be a list of tokens"),
    ([["a"]], ["a"], {}, "reference 0 must be a list of tokens"),
    ([["a"]], [["a"]], {"smooth": "laplace"}, "unknown smoothing 'laplace'"),
    ([["a"]], [["a"]], {"max_n": 0}, "max_n must be a positive integer"),
])
def test_bad_input(hyps, refs, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message) as e:
        corpus_bleu(hyps, refs, **kwargs)
    assert "\n" not in str(e.value)


def test_sentence_bleu_without_reference() -> None:
    with pytest.raises(ValueError, match="the hypothesis has no reference"):
        sentence_bleu(["a"], [])
