"""n-gram language models against NLTK's ``nltk.lm``: counting and scoring speed, and perplexity
agreement where the two define the same model.

Corpus: ``../shared/data/enwiki-sample.txt`` (469k tokens, one article a line; a line is a
sentence, words split on white space, as ``dlia ngram train`` reads it). NLTK counts and scores in
Python (~15k tokens/s fitting, ~40k/s scoring MLE; its Kneser-Ney scores ~30 tokens/s, since every
lower-order probability sums continuation counts over the higher order), so both sides run on the
same *slices*: the first ``FIT_TOKENS`` tokens to fit, the next ``SCORE_TOKENS`` to score
(``KN_SCORE_TOKENS`` for Kneser-Ney). dlia's rates on the whole corpus are recorded in the notes.

Speed (order ``ORDER`` = 3, every order 1..3 counted on both sides): training tokens per second of
fitting, from tokenized sentences to a model that can score (NLTK: ``padded_everygram_pipeline`` and
``fit``; dlia: ``NGramLM.fit``, which also estimates every probability), and predicted tokens per
second of perplexity (NLTK: ``perplexity`` over the test n-grams; dlia: ``NGramLM.perplexity``).
Each side pads as it does: NLTK with n−1 ``<s>`` and ``</s>``, dlia with one ``<s>`` and ``</s>``
(SRILM's and KenLM's way), so the two predict slightly different token counts; rates are each side's
own tokens.

Agreement (order 2): with one ``<s>`` on both sides and NLTK's vocabulary given without ``<s>`` (so
its ``<UNK>`` plays ``<s>``'s part and its vocabulary size equals dlia's predictable words), MLE and
Laplace define the same model (tests/models/test_ngram.py). MLE is scored on its training slice (on
held-out text both are infinite), Laplace on the held-out slice with the words outside the training
vocabulary removed (an unknown word would be NLTK's ``<UNK>``, i.e. ``<s>``). For order > 2 NLTK's
n−1 ``<s>`` pads make another model, so no agreement is measured there.
"""

from __future__ import annotations

import math
import time
from typing import Any

from benchmarks.harness import REPO_ROOT, Config, Metric, Target, interleave, metrics_from

NAME = "lm"
ENWIKI = REPO_ROOT.parent / "shared" / "data" / "enwiki-sample.txt"
ORDER = 3
#: slice sizes (tokens): (full run, --quick)
FIT_TOKENS = (50_000, 10_000)
SCORE_TOKENS = (20_000, 5_000)
KN_SCORE_TOKENS = (300, 40)
#: repeats of the Kneser-Ney comparison at most (NLTK takes ~10 s a repeat at the full size)
KN_REPEATS = 3
METHODS = {"mle": "MLE", "add-k": "Laplace", "kn": "KneserNeyInterpolated"}


def read_lines() -> list[list[str]]:
    """The corpus as sentences (lines) of words, empty lines dropped."""
    return [s for s in (line.split() for line in ENWIKI.read_text(encoding="utf-8").splitlines()) if s]


def take(lines: list[list[str]], start: int, tokens: int) -> list[list[str]]:
    """The sentences holding tokens ``start .. start + tokens`` of the corpus (lines cut at both ends)."""
    out, at = [], 0
    for s in lines:
        lo, hi = max(start - at, 0), min(start + tokens - at, len(s))
        if lo < hi:
            out.append(s[lo:hi])
        at += len(s)
        if at >= start + tokens:
            break
    return out


def _count(sentences: list[list[str]]) -> int:
    return sum(map(len, sentences))


def ours(method: str, train: list[list[str]], test: list[list[str]], order: int = ORDER) -> dict[str, float]:
    """dlia: fit (timed), perplexity (timed)."""
    from dlia.models.ngram import NGramLM

    t0 = time.perf_counter()
    lm = NGramLM(order, method).fit(train)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = lm.evaluate(test)
    score = time.perf_counter() - t0
    return {"fit tokens/s": (_count(train) + len(train)) / fit, "score tokens/s": r.tokens / score,
            "fit s": fit, "score s": score, "perplexity": r.perplexity}


def theirs(method: str, train: list[list[str]], test: list[list[str]], order: int = ORDER) -> dict[str, float]:
    """NLTK: ``padded_everygram_pipeline`` + ``fit`` (timed), ``perplexity`` of the test n-grams (timed)."""
    import nltk.lm
    from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
    from nltk.util import ngrams

    t0 = time.perf_counter()
    grams, vocab = padded_everygram_pipeline(order, train)
    lm = getattr(nltk.lm, METHODS[method])(order)
    lm.fit(grams, vocab)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_grams = [g for s in test for g in ngrams(pad_both_ends(s, order), order)]
    ppl = lm.perplexity(test_grams)
    score = time.perf_counter() - t0
    return {"fit tokens/s": (_count(train) + len(train)) / fit, "score tokens/s": len(test_grams) / score,
            "fit s": fit, "score s": score, "perplexity": ppl}


def agreement(train: list[list[str]], test: list[list[str]]) -> dict[str, dict[str, float]]:
    """Bigram perplexities of dlia and NLTK where both define the same model: MLE on ``train``,
    Laplace on ``test`` without its words outside ``train``'s vocabulary (see the module's doc)."""
    import nltk.lm
    from nltk.util import ngrams

    from dlia.models.ngram import NGramLM

    known = {w for s in train for w in s}
    held = [t for t in ([w for w in s if w in known] for s in test) if t]

    def grams(sentences: list[list[str]]) -> list[list[tuple[str, ...]]]:
        return [list(ngrams(["<s>", *s, "</s>"], 2)) for s in sentences]

    text = [w for s in train for w in [*s, "</s>"]]
    out = {}
    for method, on in (("mle", train), ("add-k", held)):
        peer = getattr(nltk.lm, METHODS[method])(2)
        peer.fit(grams(train), vocabulary_text=text)
        lm = NGramLM(2, method).fit(train)
        out[method] = {"dlia": lm.perplexity(on), "nltk": peer.perplexity([g for s in grams(on) for g in s]),
                       "tokens": _count(on) + len(on)}
    return out


def run(cfg: Config) -> list[Metric]:
    if not ENWIKI.is_file():
        return []
    size = 1 if cfg.quick else 0
    lines = read_lines()
    fit_tokens, score_tokens, kn_tokens = FIT_TOKENS[size], SCORE_TOKENS[size], KN_SCORE_TOKENS[size]
    train, test = take(lines, 0, fit_tokens), take(lines, fit_tokens, score_tokens)
    rows: list[Metric] = []
    full = {}  # dlia alone on the whole corpus: 80 % of the lines to fit, the next 10 % to score
    cut, end = len(lines) * 8 // 10, len(lines) * 9 // 10
    for method in METHODS:
        r = ours(method, lines[:cut], lines[cut:end])
        full[method] = {"fit tokens/s": r["fit tokens/s"], "score tokens/s": r["score tokens/s"], "perplexity": r["perplexity"]}
    for method in METHODS:
        kn = method == "kn"
        held = take(lines, fit_tokens, kn_tokens) if kn else test

        def a(r: int, method: str = method, held: list[list[str]] = held) -> dict[str, Any]:
            return ours(method, train, held)

        def b(r: int, method: str = method, held: list[list[str]] = held) -> dict[str, Any]:
            return theirs(method, train, held)

        mine, peer = interleave(a, b, min(cfg.repeats, KN_REPEATS) if kn else cfg.repeats, cfg.settle)
        spec = [("fit tokens/s", "tokens/s", True, Target("ratio", ">=", 1.0)),
                ("score tokens/s", "tokens/s", True, Target("ratio", ">=", 1.0))]
        for m in metrics_from(NAME, mine, peer, spec, peer="nltk"):
            step = m.name.split()[0]  # fit or score
            m.name = f"{ORDER}-gram {method} {m.name}"
            m.notes = {"corpus": ENWIKI.name, "order": ORDER, "smoothing": method, "nltk_class": METHODS[method],
                       "slice": f"NLTK is too slow for the whole corpus: both sides fit its first {fit_tokens:,} tokens "
                                f"and score the next {_count(held):,}",
                       "padding": "dlia: one <s> and </s> per sentence; NLTK: n-1 <s> and </s>",
                       "perplexity_dlia": [x["perplexity"] for x in mine], "perplexity_nltk": [x["perplexity"] for x in peer],
                       "seconds_dlia": [x[f"{step} s"] for x in mine], "seconds_nltk": [x[f"{step} s"] for x in peer],
                       "dlia_whole_corpus": {**full[method], "fit_lines": cut, "score_lines": end - cut}}
            rows.append(m)
    # agreement: once per repeat would give the same numbers (no randomness); measured once, shown as a metric
    agree = agreement(train, test)
    for method, values in agree.items():
        m = Metric(NAME, f"2-gram {method} perplexity agreement", "ppl", False, [values["dlia"]], [values["nltk"]],
                   Target("ratio", ">=", 1 - 1e-9), peer="nltk")
        m.notes = {"relative_difference": abs(values["dlia"] - values["nltk"]) / values["nltk"]
                   if math.isfinite(values["nltk"]) else None,
                   "scored_on": "the fit slice itself" if method == "mle" else
                                "the held-out slice without words outside the training vocabulary",
                   "tokens": values["tokens"], "padding": "one <s> on both sides; NLTK's vocabulary without <s>"}
        rows.append(m)
    return rows
