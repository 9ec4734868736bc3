"""n-gram language models of any order: maximum likelihood, add-k, Katz backoff and interpolated
modified Kneser-Ney, with perplexity, sampling and ARPA files (the format KenLM and SRILM read and write).

Sentences are padded as SRILM and KenLM pad them: ``<s> w1 ... wk </s>``, one ``<s>``, whatever the
order. The first word is predicted from the history ``<s>`` alone, ``</s>`` is predicted like a word,
``<s>`` never is (its probability is 0 in every distribution). Words below ``min_count`` in the
training data, and words never seen there, become ``<unk>``, which is then scored like any word.

Every smoothing method is stored in the *backoff form* of an ARPA file: for each order m, the
m-grams seen in training with their probability P(w | h), and for each context h a backoff weight
bow(h), so that for an m-gram not listed

    P(w | h) = bow(h) · P(w | h[1:])          (bow = 1 for a context not listed)

(add-k is the one exception: for an unseen word after a seen context it falls back to the uniform
distribution, bow(h)/V, not to the shorter context; see ``NGramLM``). Counting and scoring never loop
over tokens in Python: an m-gram is one int64 key,

    key = rank(h) · V + w

where rank(h) is the row of its (m−1)-gram prefix h in the sorted table of order m−1 (for a bigram,
the prefix's word id). The tables are built with ``numpy.unique`` and searched with
``numpy.searchsorted``; the key needs (number of distinct (m−1)-grams) · V < 2^63, i.e. about 10^14
tokens for a 10^5-word vocabulary, checked at every order, so no fallback is needed (packing the
word ids directly, id_1·V^(m−1) + … + id_m, would overflow for a 5-gram with V > 6,000).
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy

from dlia.io.atomic import atomic_write
from dlia.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
#: ids of the three special tokens in every vocabulary of this module
BOS_ID, EOS_ID, UNK_ID = 0, 1, 2
SMOOTHINGS = ("mle", "add-k", "katz", "kn")
#: modified Kneser-Ney discounts (D1, D2, D3+) used when the count-of-counts cannot give valid ones
#: (KenLM's ``--discount_fallback`` defaults)
KN_FALLBACK = (0.5, 1.0, 1.5)
#: log10 probabilities at or below this are read as probability 0 (ARPA writers put -99 for log 0)
ARPA_LOG_ZERO = -99.0
#: the largest add-k pseudo-count: with k = 10^6 every context seen fewer than ~10^4 times is already
#: within 1 % of the uniform distribution, so larger k says nothing more, while k·V (V up to ~10^8
#: words) must stay far from float64's overflow (k = 1e308 made k·V inf, so NaN probabilities)
MAX_K = 1e6
#: the most m-grams ``save_arpa`` writes for an add-k model (which must list every word after every context)
ADD_K_ARPA_LIMIT = 20_000_000


class NGramError(ValueError):
    """Input an n-gram model cannot use (empty corpus, bad order, unknown smoothing, a word outside
    the vocabulary); the message says what is wrong."""


class ArpaError(NGramError):
    """An ARPA file that cannot be read; the message names the file, the line number and what is wrong."""


# ---------------------------------------------------------------------------------------------------
# vocabulary: a thin helper (words → ids); dlia.text's word vocabulary will take its place


def build_vocab(sentences: Iterable[Sequence[str]], min_count: int = 1) -> list[str]:
    """The vocabulary of tokenized training sentences: ``<s>``, ``</s>``, ``<unk>`` (ids 0, 1, 2),
    then every word seen at least ``min_count`` times, most frequent first (ties alphabetical).

    Example:
        >>> build_vocab([["a", "b", "a"], ["c"]], min_count=2)
        ['<s>', '</s>', '<unk>', 'a']
    """
    if not isinstance(min_count, int) or min_count < 1:
        raise NGramError(f"min_count must be an integer >= 1, got {min_count!r}")
    counts: Counter[str] = Counter()
    for s in sentences:
        counts.update(s)
    for special in (BOS, EOS):
        if special in counts:
            raise NGramError(f"the sentences hold the token {special!r}; sentence boundaries are added by the model")
    counts.pop(UNK, None)  # a literal <unk> in the text is the unknown word, already in the vocabulary
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return [BOS, EOS, UNK, *words]


def encode_sentences(sentences: Iterable[Sequence[str]], vocab: Sequence[str]) -> list[numpy.ndarray]:
    """Sentences of words → int64 id arrays, words outside ``vocab`` → the id of ``<unk>``.

    Raises:
        NGramError: a sentence holds ``<s>`` or ``</s>`` (the model adds them), naming the sentence.
    """
    index = {w: i for i, w in enumerate(vocab)}
    out = []
    for n, s in enumerate(sentences):
        if isinstance(s, str):
            raise NGramError(f"sentence {n} is a string; give a list of tokens (e.g. text.split())")
        ids = numpy.fromiter((index.get(w, UNK_ID) for w in s), dtype=numpy.int64, count=len(s))
        if ids.size and ((ids == BOS_ID) | (ids == EOS_ID)).any():
            raise NGramError(f"sentence {n} holds <s> or </s>; sentence boundaries are added by the model")
        out.append(ids)
    return out


def _check_vocab(vocab: Sequence[str]) -> list[str]:
    vocab = list(vocab)
    odd = next((w for w in vocab if not isinstance(w, str)), None)
    if odd is not None:
        raise NGramError(f"a vocabulary holds words (str), got {odd!r} ({type(odd).__name__})")
    if vocab[:3] != [BOS, EOS, UNK]:
        raise NGramError(f"a vocabulary must start with {BOS}, {EOS}, {UNK} (ids 0, 1, 2), got {vocab[:3]}")
    if len(set(vocab)) != len(vocab):
        raise NGramError("the vocabulary repeats words")
    return vocab


def _pad(sentences: Sequence[numpy.ndarray]) -> tuple[numpy.ndarray, numpy.ndarray]:
    """The sentences as one id stream ``<s> w.. </s> <s> w.. </s>`` and each token's position in its
    sentence (0 for ``<s>``)."""
    lengths = numpy.array([len(s) + 2 for s in sentences], dtype=numpy.int64)
    seq = numpy.concatenate([numpy.concatenate(([BOS_ID], s, [EOS_ID])) for s in sentences]).astype(numpy.int64)
    starts = numpy.repeat(numpy.cumsum(lengths) - lengths, lengths)
    return seq, numpy.arange(len(seq), dtype=numpy.int64) - starts


def _find(keys: numpy.ndarray, queries: numpy.ndarray) -> numpy.ndarray:
    """The row of each query in the sorted ``keys`` (−1 where absent; negative queries are absent)."""
    if len(keys) == 0:
        return numpy.full(queries.shape, -1, dtype=numpy.int64)
    at = numpy.minimum(numpy.searchsorted(keys, queries), len(keys) - 1)
    return numpy.where((keys[at] == queries) & (queries >= 0), at, -1)


def _log10(p: numpy.ndarray) -> numpy.ndarray:
    with numpy.errstate(divide="ignore"):
        return numpy.log10(p)


# ---------------------------------------------------------------------------------------------------
# discounts


def kn_discounts(counts: numpy.ndarray) -> tuple[tuple[float, float, float], bool]:
    """Modified Kneser-Ney discounts (Chen & Goodman 1998) from the counts of one order.

    With n_r the number of n-grams seen exactly r times and Y = n1 / (n1 + 2·n2):

        D1 = 1 − 2Y·n2/n1,   D2 = 2 − 3Y·n3/n2,   D3+ = 3 − 4Y·n4/n3

    When some n_r (r ≤ 4) is 0, or a discount falls outside (0, r) (tiny or unusual corpora), the
    three discounts are ``KN_FALLBACK`` = (0.5, 1.0, 1.5), as KenLM's ``--discount_fallback``.

    Returns:
        ((D1, D2, D3+), whether the fallback was used).

    Example:
        >>> d, fell_back = kn_discounts(numpy.array([1] * 10 + [2] * 4 + [3] * 2 + [4]))  # n1..n4 = 10, 4, 2, 1
        >>> [round(x, 4) for x in d], fell_back  # 5/9, 7/6, 17/9
        ([0.5556, 1.1667, 1.8889], False)
    """
    n = numpy.bincount(numpy.asarray(counts, dtype=numpy.int64), minlength=5)[1:5].astype(float)
    if (n == 0).any():
        return KN_FALLBACK, True
    y = n[0] / (n[0] + 2 * n[1])
    d = tuple(float(r - (r + 1) * y * n[r] / n[r - 1]) for r in (1, 2, 3))
    if not all(0 < d[r - 1] < r for r in (1, 2, 3)):
        return KN_FALLBACK, True
    return d, False  # type: ignore[return-value]


def good_turing_discounts(counts: numpy.ndarray, k: int = 5) -> numpy.ndarray:
    """Katz's Good-Turing discount ratios d_r = c*/c for counts r = 1..k (Katz 1987).

    With n_r the number of n-grams seen r times, r* = (r+1)·n_{r+1}/n_r and T = (k+1)·n_{k+1}/n_1:

        d_r = (r*/r − T) / (1 − T)          for 1 ≤ r ≤ k;   d_r = 1 for r > k

    A ratio that cannot be computed (n_r = 0, T ≥ 1) or falls outside (0, 1] is set to 1 (that count
    is not discounted), so degenerate count-of-counts never give negative or infinite probabilities.

    Returns:
        An array ``d`` of length k+1 with ``d[r]`` for r = 1..k (``d[0]`` unused, 1).
    """
    n = numpy.bincount(numpy.asarray(counts, dtype=numpy.int64), minlength=k + 2).astype(float)
    d = numpy.ones(k + 1)
    if n[1] == 0:
        return d
    t = (k + 1) * n[k + 1] / n[1]
    for r in range(1, k + 1):
        if n[r] == 0 or t >= 1:
            continue
        ratio = ((r + 1) * n[r + 1] / n[r] / r - t) / (1 - t)
        if 0 < ratio <= 1:
            d[r] = ratio
    return d


# ---------------------------------------------------------------------------------------------------
# the model


@dataclass
class Evaluation:
    """What ``NGramLM.evaluate`` measured on a test set."""

    log10_prob: float  # the sum of log10 P over every predicted token
    tokens: int  # predicted tokens: words (unknown ones as <unk>) and one </s> per sentence
    sentences: int
    oov: int  # words outside the vocabulary (scored as <unk>)
    zero_prob: int  # tokens the model gives probability 0 (then the perplexity is inf)

    @property
    def perplexity(self) -> float:
        """10^(−log10_prob / tokens) = exp(−mean ln P)."""
        return 10.0 ** (-self.log10_prob / self.tokens) if math.isfinite(self.log10_prob) else math.inf


class NGramLM:
    """An n-gram language model of any order.

    The four ways of estimating P(w | h), h = the n−1 words before w, from counts c(·) of the training
    data (c(h) = Σ_w c(h w), how often h is followed by a word):

    - ``"mle"``: maximum likelihood, the lecture's P(w_t | w_{t−1}) = c(w_{t−1} w_t) / c(w_{t−1}) and
      the same for longer contexts. A context never seen in training backs off to the longest seen
      suffix of it (unigram at worst); a word never seen after a *seen* context has probability 0, so
      a test set with such an n-gram has infinite perplexity.
    - ``"add-k"``: P(w | h) = (c(h w) + k) / (c(h) + k·V) (Laplace for k = 1), V the predictable
      vocabulary (every word but ``<s>``); a context never seen backs off to its longest seen suffix.
    - ``"katz"``: Katz backoff. Counts r ≤ ``katz_k`` are discounted by Good-Turing
      (``good_turing_discounts``), P(w | h) = d_r · c(h w)/c(h) for seen n-grams and
      α(h) · P(w | h[1:]) for the others, with α(h) = (1 − Σ_seen P(w | h)) / (1 − Σ_seen P(w | h[1:]))
      so every distribution sums to 1. Unigrams are discounted the same way and the freed mass is
      shared equally by the words never seen (``<unk>`` mostly); if every word was seen they are the MLE.
      A distribution that would leave no mass for unseen words (nothing discounted: all counts above
      ``katz_k``, or degenerate count-of-counts) is estimated with one more token in its denominator,
      c(h) + 1, so no word gets probability 0; if the shorter context leaves no mass for the unseen
      words (α's denominator 0), the seen probabilities are rescaled to sum to 1 and α = 0.
    - ``"kn"``: interpolated modified Kneser-Ney (Chen & Goodman 1998). With a(·) the *adjusted*
      counts (the raw count at the highest order and for n-grams starting with ``<s>``, else the number
      of distinct words seen before the n-gram), A(h) = Σ_w a(h w) and discounts D(a) ∈ {D1, D2, D3+}
      of each order (``kn_discounts``):

          P(w | h) = max(a(h w) − D(a(h w)), 0) / A(h) + γ(h) · P(w | h[1:])
          γ(h) = (D1·N1(h•) + D2·N2(h•) + D3+·N3+(h•)) / A(h)

      N_r(h•) being the number of words seen after h with adjusted count r (3 or more for N3+). The
      unigram level is interpolated with the uniform distribution 1/V the same way. Stored in backoff
      form: the interpolated probability for seen n-grams, bow(h) = γ(h).

    Args:
        order: n, the length of the n-grams (1: unigram).
        smoothing: one of ``"mle"``, ``"add-k"``, ``"katz"``, ``"kn"``.
        k: the pseudo-count of add-k, 0 < k ≤ ``MAX_K`` (10^6).
        katz_k: Katz discounts the counts 1..katz_k (Katz's 5).

    Example:
        >>> lm = NGramLM(2, "mle").fit([["the", "cat"], ["the", "dog"]])
        >>> lm.prob("cat", ["the"])
        0.5
    """

    def __init__(self, order: int, smoothing: str = "mle", k: float = 1.0, katz_k: int = 5) -> None:
        if not isinstance(order, int) or isinstance(order, bool) or order < 1:
            raise NGramError(f"the order must be an integer >= 1, got {order!r}")
        if smoothing not in SMOOTHINGS and smoothing != "arpa":
            raise NGramError(f"unknown smoothing {smoothing!r}; choose one of {', '.join(SMOOTHINGS)}")
        if not (isinstance(k, (int, float)) and not isinstance(k, bool) and math.isfinite(k) and 0 < k <= MAX_K):
            raise NGramError(f"add-k needs k > 0 (k = 0 is the MLE) and k <= {MAX_K:g} (a larger k is the uniform "
                             f"distribution), got {k!r}")
        if not isinstance(katz_k, int) or katz_k < 1:
            raise NGramError(f"katz_k must be an integer >= 1, got {katz_k!r}")
        self.order, self.smoothing, self.k, self.katz_k = order, smoothing, float(k), katz_k
        self.vocab: list[str] = []
        self._index: dict[str, int] = {}
        # per order m = 1..n (index m; index 0 unused): sorted keys, P of the listed m-grams, bow of
        # the m-gram as a context (orders < n), whether it was seen as a context
        self.keys: list[numpy.ndarray] = []
        self.probs: list[numpy.ndarray] = []
        self.bows: list[numpy.ndarray] = []
        self.counts: list[numpy.ndarray] = []  # raw training counts of the listed m-grams (empty for a read model)
        self.discounts: list[tuple[float, ...]] = []  # per order: KN (D1, D2, D3+) or Katz d_1..d_k
        self.fallback: list[bool] = []  # per order: whether the KN discounts fell back to KN_FALLBACK

    # --- vocabulary --------------------------------------------------------------------------------

    @property
    def V(self) -> int:
        """The vocabulary size, ``<s>`` included (the length of ``prob_distribution``)."""
        return len(self.vocab)

    def _set_vocab(self, vocab: Sequence[str]) -> None:
        self.vocab = _check_vocab(vocab)
        self._index = {w: i for i, w in enumerate(self.vocab)}

    def _id(self, word: str | int) -> int:
        if isinstance(word, (int, numpy.integer)) and not isinstance(word, bool):
            if not 0 <= word < self.V:
                raise NGramError(f"word id {word} is outside the vocabulary (0..{self.V - 1})")
            return int(word)
        if not isinstance(word, str):
            raise NGramError(f"a word is a str or an int id, got {type(word).__name__}")
        return self._index.get(word, UNK_ID)

    def _ids(self, sentences: Sequence[Any]) -> list[numpy.ndarray]:
        """Sentences of words or of ids → id arrays (unknown words → ``<unk>``)."""
        out = []
        for n, s in enumerate(sentences):
            if isinstance(s, str):
                raise NGramError(f"sentence {n} is a string; give a list of tokens (e.g. text.split())")
            if isinstance(s, numpy.ndarray) or (len(s) and not isinstance(s[0], str)):
                ids = numpy.asarray(s).reshape(-1)
                if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= self.V):
                    raise NGramError(f"sentence {n}: ids must be integers in 0..{self.V - 1}")
                ids = ids.astype(numpy.int64)
            else:
                ids = numpy.fromiter((self._index.get(w, UNK_ID) for w in s), dtype=numpy.int64, count=len(s))
            if ids.size and ((ids == BOS_ID) | (ids == EOS_ID)).any():
                raise NGramError(f"sentence {n} holds <s> or </s>; sentence boundaries are added by the model")
            out.append(ids)
        return out

    # --- training ----------------------------------------------------------------------------------

    def fit(self, sentences: Sequence[Any], vocab: Sequence[str] | None = None, min_count: int = 1) -> NGramLM:
        """Count the n-grams of ``sentences`` and estimate the model.

        Args:
            sentences: tokenized sentences, each a list of words, or id arrays when ``vocab`` is given.
            vocab: the vocabulary (``<s>``, ``</s>``, ``<unk>`` first); built from ``sentences`` with
                ``build_vocab(sentences, min_count)`` when None.
            min_count: words seen fewer times become ``<unk>`` (only when ``vocab`` is None).

        Returns:
            self.

        Raises:
            NGramError: no sentences, no words, or sentences holding ``<s>``/``</s>``.
        """
        if self.smoothing == "arpa":
            raise NGramError("a model read from an ARPA file cannot be trained; make a new NGramLM")
        sentences = list(sentences)
        if not sentences:
            raise NGramError("cannot fit an n-gram model on an empty corpus (no sentences)")
        if vocab is None:
            vocab = build_vocab(sentences, min_count)
        self._set_vocab(vocab)
        ids = self._ids(sentences)
        if sum(len(s) for s in ids) == 0:
            raise NGramError("cannot fit an n-gram model on an empty corpus (every sentence is empty)")
        self._count(*_pad(ids))
        self._estimate()
        return self

    def _count(self, seq: numpy.ndarray, pos: numpy.ndarray) -> None:
        """Tables of every order from one padded id stream: sorted keys, raw counts, and for each
        m-gram the row of its prefix (key // V) and of its suffix in the table of order m−1."""
        V, n = self.V, self.order
        unigram = numpy.bincount(seq[pos >= 1], minlength=V)  # <s> is never predicted: count 0
        self.keys, self.counts, self._suffix = [numpy.empty(0, numpy.int64)], [numpy.empty(0, numpy.int64)], [None, None]
        self.keys.append(numpy.arange(V, dtype=numpy.int64))  # every word is listed as a unigram
        self.counts.append(unigram)
        rows = seq.copy()  # rows[i]: the row of the m-gram ending at token i in the table of order m (−1: none)
        for m in range(2, n + 1):
            if len(self.keys[m - 1]) >= numpy.iinfo(numpy.int64).max // V:
                raise NGramError(f"too many distinct {m - 1}-grams to pack {m}-grams in 64 bits")
            valid = pos >= m - 1  # the m-gram ending here starts at or after its sentence's <s>
            at = numpy.flatnonzero(valid)
            keys, inverse, counts = numpy.unique(rows[at - 1] * V + seq[at], return_inverse=True, return_counts=True)
            rows = numpy.full(len(seq), -1, dtype=numpy.int64)
            rows[at] = inverse
            self.keys.append(keys)
            self.counts.append(counts)
            self._suffix.append(self._suffix_rows(m, keys))

    def _suffix_rows(self, m: int, keys: numpy.ndarray) -> numpy.ndarray:
        """For each m-gram h·w (m ≥ 2) the row of h[1:]·w in the table of order m−1 (−1: not listed)."""
        V = self.V
        words = keys % V
        if m == 2:
            return words
        prefix_suffix = self._suffix[m - 1][keys // V]  # the row of h[1:] in the table of order m−2
        return _find(self.keys[m - 1], numpy.where(prefix_suffix >= 0, prefix_suffix * V + words, -1))

    def _estimate(self) -> None:
        """Probabilities and backoff weights of every order from the counts (backoff form)."""
        V, n, Vp = self.V, self.order, self.V - 1  # Vp: the predictable words (all but <s>)
        self.probs, self.bows = [numpy.empty(0)] * (n + 1), [numpy.empty(0)] * (n + 1)
        self.discounts, self.fallback = [()] * (n + 1), [False] * (n + 1)
        for m in range(1, n):
            self.bows[m] = numpy.ones(len(self.keys[m]))
        adjusted = self._adjusted_counts() if self.smoothing == "kn" else self.counts
        for m in range(1, n + 1):
            c = adjusted[m].astype(numpy.float64)
            if m == 1:
                self.probs[1] = self._unigram(c, Vp)
                continue
            prefix = self.keys[m] // V
            total = numpy.bincount(prefix, weights=c, minlength=len(self.keys[m - 1]))  # c(h) = Σ_w c(h w)
            lower = self.probs[m - 1][self._suffix[m]]  # P(w | h[1:]): listed, since every suffix was seen
            seen = total > 0
            if self.smoothing == "mle":
                p, bow = c / total[prefix], numpy.zeros(len(total))
            elif self.smoothing == "add-k":
                p, bow = (c + self.k) / (total[prefix] + self.k * Vp), self.k * Vp / (total + self.k * Vp)
            elif self.smoothing == "katz":
                d = good_turing_discounts(self.counts[m], self.katz_k)
                self.discounts[m] = tuple(d[1:])
                p = numpy.where(c <= self.katz_k, d[numpy.minimum(c, self.katz_k).astype(int)], 1.0) * c / total[prefix]
                p, bow = self._katz_weights(p, lower, prefix, total)
            else:  # kn
                p, bow = self._kn_order(m, c, total, prefix, lower)
            self.probs[m] = p
            self.bows[m - 1] = numpy.where(seen, bow, 1.0)
        self._finish()

    def _unigram(self, c: numpy.ndarray, Vp: int) -> numpy.ndarray:
        """P(w) for every word id (0 for ``<s>``); c holds the (adjusted) counts."""
        N = c.sum()
        if self.smoothing == "mle":
            p = c / N
        elif self.smoothing == "add-k":
            p = (c + self.k) / (N + self.k * Vp)
        elif self.smoothing == "katz":
            d = good_turing_discounts(self.counts[1], self.katz_k)
            self.discounts[1] = tuple(d[1:])
            p = numpy.where(c <= self.katz_k, d[numpy.minimum(c, self.katz_k).astype(int)], 1.0) * c / N
            unseen = c == 0
            unseen[BOS_ID] = False
            if unseen.any():
                if p.sum() >= 1.0 - 1e-12:  # nothing discounted: as if one more, unseen, token was seen
                    p *= N / (N + 1.0)
                p[unseen] = (1.0 - p.sum()) / unseen.sum()
            else:  # nobody to give the freed mass to: the MLE
                p = c / N
        else:  # kn: interpolated with the uniform distribution over the predictable words
            D, self.fallback[1] = kn_discounts(c[c > 0].astype(numpy.int64))
            self.discounts[1] = D
            gamma = sum(D[r] * ((c == r + 1) if r < 2 else (c >= 3)).sum() for r in range(3)) / N
            p = numpy.maximum(c - self._kn_d(c, D), 0.0) / N + gamma / Vp
        p[BOS_ID] = 0.0
        return p

    @staticmethod
    def _kn_d(c: numpy.ndarray, D: Sequence[float]) -> numpy.ndarray:
        """The discount of each count: 0 for 0, D1 for 1, D2 for 2, D3+ for 3 and more."""
        return numpy.asarray((0.0, *D))[numpy.minimum(c, 3).astype(int)]

    def _adjusted_counts(self) -> list[numpy.ndarray]:
        """Kneser-Ney's counts: raw at the highest order and for n-grams starting with ``<s>``, else
        the number of distinct words seen before the n-gram (its continuation count)."""
        out = list(self.counts)
        for m in range(1, self.order):
            continuation = numpy.bincount(self._suffix[m + 1], minlength=len(self.keys[m]))
            out[m] = numpy.where(self._first_words(m) == BOS_ID, self.counts[m], continuation)
        return out

    def _first_words(self, m: int) -> numpy.ndarray:
        """The first word id of every m-gram of the table of order m."""
        rows = numpy.arange(len(self.keys[m]))
        for j in range(m, 1, -1):
            rows = self.keys[j][rows] // self.V  # the row of the prefix in the table of order j−1
        return self.keys[1][rows]

    def _katz_weights(self, p: numpy.ndarray, lower: numpy.ndarray, prefix: numpy.ndarray,
                      total: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray]:
        """α(h) = (1 − Σ_seen P(w|h)) / (1 − Σ_seen P(w|h[1:])).

        Two repairs keep every probability finite and every distribution summing to 1: a context that
        leaves no mass (all its words seen more than katz_k times, so none is discounted) is estimated
        with c(h) + 1 in the denominator, as if one more, unseen, word had followed it; where the
        shorter context leaves no mass for the unseen words (α's denominator 0) the seen probabilities
        are rescaled to sum to 1 and α = 0.
        """
        contexts = len(total)
        room = 1.0 - numpy.bincount(prefix, weights=lower, minlength=contexts)
        stuck = room <= 1e-12
        left = 1.0 - numpy.bincount(prefix, weights=p, minlength=contexts)
        full = (left <= 1e-12) & ~stuck & (total > 0)
        shrink = numpy.where(full, total / (total + 1.0), 1.0)
        p = p * shrink[prefix]
        left = numpy.where(full, 1.0 - (1.0 - left) * shrink, numpy.maximum(left, 0.0))
        alpha = numpy.where(stuck, 0.0, left / numpy.where(stuck, 1.0, room))
        scale = 1.0 / numpy.where(stuck, 1.0 - left, 1.0)  # 1 − left = Σ_seen P(w|h) > 0
        return p * scale[prefix], alpha

    def _kn_order(self, m: int, a: numpy.ndarray, total: numpy.ndarray, prefix: numpy.ndarray,
                  lower: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray]:
        D, self.fallback[m] = kn_discounts(a[a > 0].astype(numpy.int64))
        self.discounts[m] = D
        freed = numpy.bincount(prefix, weights=self._kn_d(a, D), minlength=len(total))  # Σ_w D(a(h w))
        gamma = freed / numpy.where(total > 0, total, 1.0)
        p = numpy.maximum(a - self._kn_d(a, D), 0.0) / total[prefix] + gamma[prefix] * lower
        return p, gamma

    def _finish(self) -> None:
        """Log tables and the context flags used when scoring."""
        n, V = self.order, self.V
        self._logp = [numpy.empty(0)] + [_log10(self.probs[m]) for m in range(1, n + 1)]
        self._logbow = [numpy.empty(0)] + [_log10(self.bows[m]) for m in range(1, n)]
        self._is_context = [numpy.empty(0, bool)]
        for m in range(1, n):
            flag = numpy.zeros(len(self.keys[m]), dtype=bool)
            flag[self.keys[m + 1] // V] = True
            self._is_context.append(flag)

    # --- lookups -----------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not self.vocab:
            raise NGramError("the model is not trained yet: call fit() or load_arpa() first")

    def _row(self, ngram: Sequence[int]) -> int:
        """The row of an m-gram (ids) in the table of order m, −1 if not listed."""
        row = ngram[0]
        for j, w in enumerate(ngram[1:], start=2):
            if row < 0:
                return -1
            row = int(_find(self.keys[j], numpy.array([row * self.V + w]))[0])
        return row

    def prob_distribution(self, context: Sequence[str | int] = ()) -> numpy.ndarray:
        """P(w | context) for every word id w: a (V,) float64 array summing to 1 over every word but
        ``<s>``, whose entry is 0 (``</s>`` and ``<unk>`` included).

        Only the last n−1 words of ``context`` matter; the history of the first word of a sentence is
        ``["<s>"]``; an empty context gives the unigram distribution.
        """
        self._check_fitted()
        V, n = self.V, self.order
        ids = [self._id(w) for w in context][max(len(context) - (n - 1), 0):] if n > 1 else []
        p = self.probs[1].copy()
        for j in range(1, len(ids) + 1):  # the suffix of length j, then the next longer one
            row = self._row(ids[-j:])
            if row < 0:
                continue  # not listed: this order adds nothing (bow 1, no listed words)
            if self.smoothing != "add-k":
                # the ARPA rule (as KenLM): a listed context's bow applies whether or not some longer
                # n-gram extends it (a pruned model keeps bows of n-grams whose extensions were cut)
                p *= self.bows[j][row]
            if not self._is_context[j][row]:
                continue
            lo, hi = numpy.searchsorted(self.keys[j + 1], [row * V, row * V + V])
            if self.smoothing == "add-k":
                p = numpy.full(V, self.bows[j][row] / (V - 1))
                p[BOS_ID] = 0.0
            p[self.keys[j + 1][lo:hi] % V] = self.probs[j + 1][lo:hi]
        return p

    def prob(self, word: str | int, context: Sequence[str | int] = ()) -> float:
        """P(word | context); see ``prob_distribution`` for what the context means."""
        return float(self.prob_distribution(context)[self._id(word)])

    def logprob(self, word: str | int, context: Sequence[str | int] = ()) -> float:
        """log10 P(word | context), as ARPA files and KenLM write probabilities (−inf for 0)."""
        p = self.prob(word, context)
        return math.log10(p) if p > 0 else -math.inf

    def _token_logprobs(self, seq: numpy.ndarray, pos: numpy.ndarray) -> numpy.ndarray:
        """log10 P of every token of a padded stream (entries at ``<s>`` positions are 0 and unused).

        For each token and each order m, rows[m] is the row of the m-gram ending at it (−1 if not
        listed); the answer is the longest listed m-gram's log P plus the log bow of every longer
        context that had to be backed off from.
        """
        V, n = self.V, self.order
        rows = [numpy.empty(0, numpy.int64), seq]
        for m in range(2, n + 1):
            prev = numpy.concatenate(([-1], rows[m - 1][:-1]))  # the context: the (m−1)-gram ending one before
            r = _find(self.keys[m], numpy.where(prev >= 0, prev * V + seq, -1))
            rows.append(numpy.where(pos >= m - 1, r, -1))
        ctx = [numpy.concatenate(([-1], rows[j][:-1])) for j in range(n)]  # ctx[j]: the row of the j-word context
        for j in range(1, n):
            ctx[j] = numpy.where(pos >= j, ctx[j], -1)
        if self.smoothing == "add-k":
            return self._add_k_logprobs(seq, rows, ctx)
        out = numpy.zeros(len(seq))
        done = numpy.zeros(len(seq), dtype=bool)
        for m in range(n, 0, -1):
            hit = ~done & (rows[m] >= 0)
            out[hit] += self._logp[m][rows[m][hit]]
            done |= hit
            if m > 1:  # backing off from the (m−1)-word context: its bow (1 if not listed)
                back = ~done & (ctx[m - 1] >= 0)
                out[back] += self._logbow[m - 1][ctx[m - 1][back]]
        return out

    def _add_k_logprobs(self, seq: numpy.ndarray, rows: list[numpy.ndarray], ctx: list[numpy.ndarray]) -> numpy.ndarray:
        """add-k: the longest context seen in training decides; a word not seen after it gets bow(h)/V."""
        out = numpy.zeros(len(seq))
        done = numpy.zeros(len(seq), dtype=bool)
        for m in range(self.order, 1, -1):
            c = ctx[m - 1]
            seen = ~done & (c >= 0)
            seen[seen] = self._is_context[m - 1][c[seen]]
            listed = seen & (rows[m] >= 0)
            out[listed] = self._logp[m][rows[m][listed]]
            other = seen & ~listed
            out[other] = self._logbow[m - 1][c[other]] - math.log10(self.V - 1)
            done |= seen
        out[~done] = self._logp[1][seq[~done]]
        return out

    # --- evaluation and sampling -------------------------------------------------------------------

    def evaluate(self, sentences: Sequence[Any]) -> Evaluation:
        """Score a test set: every word (unknown ones as ``<unk>``) and one ``</s>`` per sentence are
        predicted, ``<s>`` is not, as SRILM's ``-ppl`` and KenLM's ``query`` count them.

        Raises:
            NGramError: no sentences.
        """
        self._check_fitted()
        sentences = list(sentences)
        if not sentences:
            raise NGramError("cannot compute perplexity on an empty test set (no sentences)")
        oov = sum(sum(1 for w in s if isinstance(w, str) and w not in self._index) for s in sentences)
        seq, pos = _pad(self._ids(sentences))
        lp = self._token_logprobs(seq, pos)[pos >= 1]
        return Evaluation(float(lp.sum()), int(lp.size), len(sentences), oov, int(numpy.isneginf(lp).sum()))

    def token_logprobs(self, sentences: Sequence[Any]) -> numpy.ndarray:
        """log10 P of every predicted token of ``sentences``, in order: each sentence's words (unknown
        ones as ``<unk>``) then its ``</s>``, the tokens ``perplexity`` averages over, so
        ``10 ** -token_logprobs(s).mean() == perplexity(s)``. ``-inf`` for a token of probability 0.
        For mixing with another model's probabilities of the same tokens (``dlia.models.nnlm.mixture``).

        Raises:
            NGramError: no sentences.
        """
        self._check_fitted()
        sentences = list(sentences)
        if not sentences:
            raise NGramError("cannot score an empty test set (no sentences)")
        seq, pos = _pad(self._ids(sentences))
        return self._token_logprobs(seq, pos)[pos >= 1]

    def perplexity(self, sentences: Sequence[Any]) -> float:
        """10^(−(1/N) Σ log10 P(token | history)) over the N predicted tokens of ``sentences`` (every
        word and each sentence's ``</s>``; see ``evaluate``). ``inf`` when some token has probability 0
        (MLE on an unseen n-gram). A test set of only unknown words is scored as ``<unk>`` tokens and
        ``</s>``, like any other: its perplexity says how well the model predicts "some rare word"."""
        return self.evaluate(sentences).perplexity

    def sample(self, rng: numpy.random.Generator, max_len: int = 100, prefix: Sequence[str] = ()) -> list[str]:
        """One sentence drawn word by word from P(w | history), without ``<s>``/``</s>``: it ends when
        ``</s>`` is drawn or after ``max_len`` words (``prefix`` included, which is kept)."""
        self._check_fitted()
        words = list(prefix)
        history = [BOS_ID, *(self._id(w) for w in words)]
        while len(words) < max_len:
            p = self.prob_distribution(history[-(self.order - 1):] if self.order > 1 else [])
            cdf = numpy.cumsum(p)
            w = min(int(numpy.searchsorted(cdf, rng.random() * cdf[-1], side="right")), self.V - 1)
            if w == EOS_ID:
                break
            words.append(self.vocab[w])
            history.append(w)
        return words

    def generate(self, num: int = 1, max_len: int = 100, seed: int | None = None, prefix: Sequence[str] = ()) -> list[str]:
        """``num`` sampled sentences as strings (words joined by spaces), reproducible with ``seed``."""
        rng = numpy.random.default_rng(seed)
        return [" ".join(self.sample(rng, max_len, prefix)) for _ in range(num)]

    # --- checkpoints -------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model's tables as a dlia checkpoint (``.npz``, atomically): arrays ``keys_m``,
        ``probs_m``, ``bows_m``, ``counts_m`` per order, the vocabulary and the settings as metadata.
        Exact (no decimal rounding, unlike ARPA) and faster to read back."""
        self._check_fitted()
        arrays: dict[str, numpy.ndarray] = {}
        for m in range(1, self.order + 1):
            arrays[f"keys_{m}"], arrays[f"probs_{m}"] = self.keys[m], self.probs[m]
            if m < self.order:
                arrays[f"bows_{m}"] = self.bows[m]
            if len(self.counts) > m:
                arrays[f"counts_{m}"] = self.counts[m]
        config = {"model": "ngram", "order": self.order, "smoothing": self.smoothing, "k": self.k, "katz_k": self.katz_k,
                  "discounts": [list(map(float, d)) for d in self.discounts], "fallback": list(self.fallback)}
        return save_checkpoint(path, model=_Tables(arrays), config=config, vocab=self.vocab)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NGramLM:
        """Read a model written by ``save``.

        Raises:
            dlia.io.CheckpointError: a missing, corrupt or foreign file (not an n-gram checkpoint).
            NGramError: an n-gram checkpoint whose tables cannot be a model (a vocabulary that is not
                distinct words starting ``<s> </s> <unk>``, keys unsorted or out of range, probabilities
                outside [0, 1], backoff weights negative or not finite, an order that does not match
                the tables), naming the file and what is wrong.
        """
        ck = load_checkpoint(path)
        c, state = ck.config, ck.model_state
        if c.get("model") != "ngram" or ck.model_class != "_Tables":
            raise CheckpointError(f"{path} is not an n-gram model checkpoint")
        try:
            lm = cls(c["order"], c["smoothing"], c["k"], c["katz_k"])
            lm._set_vocab(ck.vocab or [])
            n = lm.order
            if f"keys_{n + 1}" in state or any(f"{t}_{n}" not in state for t in ("keys", "probs")):
                raise NGramError(f"its config says order {n}, its tables hold "
                                 f"{sum(1 for name in state if name.startswith('keys_'))} orders")
            lm.keys = [numpy.empty(0, numpy.int64)] + [_ints(state[f"keys_{m}"], f"keys_{m}") for m in range(1, n + 1)]
            lm.probs = [numpy.empty(0)] + [_floats(state[f"probs_{m}"], f"probs_{m}") for m in range(1, n + 1)]
            lm.bows = [numpy.empty(0)] + [_floats(state[f"bows_{m}"], f"bows_{m}") for m in range(1, n)] + [numpy.empty(0)]
            if f"counts_{n}" in state:
                lm.counts = [numpy.empty(0, numpy.int64)] + [_ints(state[f"counts_{m}"], f"counts_{m}")
                                                             for m in range(1, n + 1)]
            lm.discounts = [tuple(d) for d in c.get("discounts", [])]
            lm.fallback = list(c.get("fallback", []))
            lm._check_tables()
            lm._finish()
        except NGramError as e:
            raise NGramError(f"{path} is not a usable n-gram model checkpoint: {e}") from None
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise CheckpointError(f"{path} is not a usable n-gram model checkpoint ({e})") from None
        return lm

    def _check_tables(self) -> None:
        """Refuse tables no model could have (``NGramError`` saying which table and what is wrong):
        every word a unigram (keys 0..V−1), each order's keys strictly increasing and packing a listed
        (m−1)-gram row with a word id, probabilities in [0, 1], backoff weights finite and ≥ 0 (MLE's
        are 0), raw counts ≥ 0, every table of an order the same length."""
        V, n = self.V, self.order
        if not numpy.array_equal(self.keys[1], numpy.arange(V)):
            raise NGramError(f"keys_1 must list every word of the {V}-word vocabulary once, in order (0..{V - 1})")
        for m in range(1, n + 1):
            keys, probs = self.keys[m], self.probs[m]
            if len(probs) != len(keys) or (m < n and len(self.bows[m]) != len(keys)) or \
                    (len(self.counts) > m and len(self.counts[m]) != len(keys)):
                raise NGramError(f"the tables of order {m} differ in length ({len(keys)} keys, {len(probs)} probabilities)")
            if m > 1 and len(keys):
                if (keys[1:] <= keys[:-1]).any():
                    raise NGramError(f"keys_{m} are not sorted strictly increasing")
                if keys[0] < 0 or keys[-1] >= len(self.keys[m - 1]) * V:
                    raise NGramError(f"keys_{m} hold a key outside 0..{len(self.keys[m - 1]) * V - 1} "
                                     f"(({m - 1}-gram row) × {V} + word id)")
            if not ((probs >= 0) & (probs <= 1)).all():  # NaN fails both
                raise NGramError(f"probs_{m} hold a value outside [0, 1] (or NaN)")
            if m < n and not (numpy.isfinite(self.bows[m]) & (self.bows[m] >= 0)).all():
                raise NGramError(f"bows_{m} hold a negative or non-finite backoff weight")
            if len(self.counts) > m and (self.counts[m] < 0).any():
                raise NGramError(f"counts_{m} hold a negative count")

    # --- ARPA --------------------------------------------------------------------------------------

    def _arpa_tables(self) -> list[tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]]:
        """Per order m: (word ids, (E, m) int array; log10 P; log10 bow) of the entries to write.

        add-k is not a backoff model (an unseen word after a seen context gets k/(c(h)+kV), not a
        multiple of a shorter context's probability), so every word is listed after every seen context.
        """
        V, n = self.V, self.order
        words = [numpy.empty((0, 0), numpy.int64), self.keys[1][:, None]]
        tables = [(words[1], self._logp[1], self._logbow[1] if n > 1 else numpy.zeros(V))]
        for m in range(2, n + 1):
            prefix, last = self.keys[m] // V, self.keys[m] % V
            words.append(numpy.hstack([words[m - 1][prefix], last[:, None]]))
            if self.smoothing != "add-k":
                tables.append((words[m], self._logp[m], self._logbow[m] if m < n else numpy.zeros(len(prefix))))
                continue
            ctx = numpy.flatnonzero(self._is_context[m - 1])
            size = len(ctx) * (V - 1)
            if size > ADD_K_ARPA_LIMIT:
                raise NGramError(f"an add-k model lists every word after every context in ARPA: {size:,} "
                                 f"{m}-grams is more than {ADD_K_ARPA_LIMIT:,}; use katz or kn for large vocabularies")
            grid_ctx, grid_w = numpy.repeat(ctx, V - 1), numpy.tile(numpy.arange(1, V), len(ctx))
            lp = self._logbow[m - 1][grid_ctx] - math.log10(V - 1)
            row = _find(self.keys[m], grid_ctx * V + grid_w)
            lp[row >= 0] = self._logp[m][row[row >= 0]]
            ids = numpy.hstack([words[m - 1][grid_ctx], grid_w[:, None]])
            tables.append((ids, lp, numpy.zeros(len(lp))))
        if self.smoothing == "add-k":  # no context needs a bow: its every word is listed
            tables = [(ids, lp, numpy.zeros(len(lp))) for ids, lp, _ in tables]
        return tables

    def save_arpa(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as an ARPA file (atomically): ``\\data\\`` with ``ngram m=count`` lines, then
        per order ``\\m-grams:`` with ``log10 P<TAB>w1 .. wm[<TAB>log10 bow]``, then ``\\end\\``.
        Probability 0 (``<s>``, MLE's backoff weights) is written −99, as SRILM and KenLM do.

        Returns:
            The path written.
        """
        self._check_fitted()
        tables = self._arpa_tables()
        n = self.order

        def num(x: float) -> str:
            return "-99" if x <= ARPA_LOG_ZERO else f"{x:.10g}"

        target = Path(path)
        with atomic_write(target, "w") as f:
            f.write("\\data\\\n")
            for m, (ids, _, _) in enumerate(tables, start=1):
                f.write(f"ngram {m}={len(ids)}\n")
            vocab = self.vocab
            for m, (ids, lp, lb) in enumerate(tables, start=1):
                f.write(f"\n\\{m}-grams:\n")
                text = [" ".join(vocab[w] for w in row) for row in ids.tolist()]
                if m < n:
                    f.writelines(f"{num(p)}\t{t}\t{num(b)}\n" for p, t, b in zip(lp.tolist(), text, lb.tolist()))
                else:
                    f.writelines(f"{num(p)}\t{t}\n" for p, t in zip(lp.tolist(), text))
            f.write("\n\\end\\\n")
        return target

    @classmethod
    def load_arpa(cls, path: str | os.PathLike[str]) -> NGramLM:
        """Read an ARPA file (ours, KenLM's, SRILM's) into a model scored by the backoff rule.

        log10 values ≤ −99 are probability 0. ``<s>`` and ``</s>`` must be listed; a file without
        ``<unk>`` (a closed vocabulary) gets it with probability 0.

        Raises:
            ArpaError: a missing or unreadable file, a bad header, a count that does not match its
                section, a non-numeric value, a repeated n-gram, an n-gram whose context is not listed,
                a truncated file; naming the line number.
        """
        return _read_arpa(Path(path))


def _ints(a: Any, name: str) -> numpy.ndarray:
    a = numpy.asarray(a)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise NGramError(f"{name} must be a 1-d integer array, got {a.dtype} of shape {a.shape}")
    return a.astype(numpy.int64)


def _floats(a: Any, name: str) -> numpy.ndarray:
    a = numpy.asarray(a)
    if a.ndim != 1 or a.dtype.kind not in "iuf":
        raise NGramError(f"{name} must be a 1-d array of numbers, got {a.dtype} of shape {a.shape}")
    return a.astype(numpy.float64)


class _Tables:
    """The arrays of a model in the shape ``save_checkpoint`` takes a module in (``state_dict`` of
    objects with ``.data``)."""

    def __init__(self, arrays: dict[str, numpy.ndarray]) -> None:
        self.arrays = arrays

    def state_dict(self) -> dict[str, Any]:
        return {name: _Data(a) for name, a in self.arrays.items()}


@dataclass
class _Data:
    data: numpy.ndarray


# ---------------------------------------------------------------------------------------------------
# reading ARPA files

_NGRAM_LINE = re.compile(r"ngram\s+(\d+)\s*=\s*(\d+)")
_SECTION = re.compile(r"\\(\d+)-grams:")


def _read_arpa(p: Path) -> NGramLM:
    def fail(line: int, what: str) -> ArpaError:
        return ArpaError(f"{p}, line {line}: {what}")

    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ArpaError(f"no such file: {p}") from None
    except IsADirectoryError:
        raise ArpaError(f"{p} is a folder, not an ARPA file") from None
    except UnicodeDecodeError as e:
        raise ArpaError(f"{p} is not UTF-8 text (byte offset {e.start}), so not an ARPA file") from None
    except OSError as e:
        raise ArpaError(f"cannot read {p}: {e.strerror or e}") from None
    i = 0
    while i < len(lines) and lines[i].strip() != "\\data\\":  # text before \data\ is a comment
        i += 1
    if i == len(lines):
        raise ArpaError(f"{p}, line 1: not an ARPA file (no \\data\\ header)")
    i += 1
    declared: dict[int, int] = {}
    while i < len(lines) and not lines[i].strip().startswith("\\"):
        text = lines[i].strip()
        if text:
            m = _NGRAM_LINE.fullmatch(text)
            if not m:
                raise fail(i + 1, f"expected 'ngram N=COUNT' in the \\data\\ header, got {text[:60]!r}")
            order = int(m.group(1))
            if order != len(declared) + 1:
                raise fail(i + 1, f"the header declares order {order} after {len(declared)} orders")
            declared[order] = int(m.group(2))
        i += 1
    if not declared:
        raise fail(i + 1, "the \\data\\ header declares no n-gram counts")
    n = len(declared)
    sections: list[_Section] = []
    for order in range(1, n + 1):
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i == len(lines):
            raise fail(i, f"the file ends before the \\{order}-grams: section (truncated)")
        m = _SECTION.fullmatch(lines[i].strip())
        if not m or int(m.group(1)) != order:
            raise fail(i + 1, f"expected \\{order}-grams:, got {lines[i].strip()[:60]!r}")
        start = i + 1  # the section's header line, named when its count is wrong
        i += 1
        end = i
        while end < len(lines) and lines[end].strip() and not lines[end].lstrip().startswith("\\"):
            end += 1
        sections.append(_parse_section(lines, i, end, order, fail))
        if end - i != declared[order]:
            raise fail(start, f"the header declares {declared[order]} {order}-grams, the section holds {end - i}")
        i = end
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i == len(lines) or lines[i].strip() != "\\end\\":
        found = repr(lines[i].strip()[:60]) if i < len(lines) else "the end of the file (truncated)"
        raise fail(min(i + 1, len(lines)), f"expected \\end\\, found {found}")
    return _model_from_arpa(p, n, sections)


@dataclass
class _Section:
    """The entries of one ``\\m-grams:`` section: their first line number, words, log10 P and log10 bow."""

    first_line: int
    words: list[list[str]]
    logp: numpy.ndarray
    logbow: numpy.ndarray


def _parse_section(lines: list[str], start: int, end: int, order: int, fail: Any) -> _Section:
    """Lines ``start:end`` as entries of order ``order``, checked in bulk (a Python loop per line runs
    only to find the line of an error): ~1 µs per line rather than ~10."""
    rows = [line.split() for line in lines[start:end]]
    sizes = numpy.fromiter(map(len, rows), dtype=numpy.int64, count=len(rows))
    bad = numpy.flatnonzero((sizes != order + 1) & (sizes != order + 2))
    if bad.size:
        raise fail(start + int(bad[0]) + 1, f"a {order}-gram line needs a log10 probability, {order} words and an "
                                            f"optional backoff weight, got {sizes[bad[0]]} fields")
    numbers = [[r[0], r[order + 1] if len(r) == order + 2 else "0"] for r in rows]
    flat = "".join(x for pair in numbers for x in pair)
    if "_" in flat or not flat.isascii():  # float() also takes 1_000 and non-ASCII digits; ARPA numbers are plain
        for k, pair in enumerate(numbers):
            if any("_" in x or not x.isascii() for x in pair):
                raise fail(start + k + 1, f"not a number: {lines[start + k].strip()[:60]!r}")
    try:
        values = numpy.array(numbers, dtype=numpy.float64).reshape(len(rows), 2)
    except ValueError:
        for k, pair in enumerate(numbers):
            try:
                float(pair[0]), float(pair[1])
            except ValueError:
                raise fail(start + k + 1, f"not a number: {lines[start + k].strip()[:60]!r}") from None
        raise
    bad = numpy.flatnonzero(~numpy.isfinite(values).all(axis=1))
    if bad.size:
        raise fail(start + int(bad[0]) + 1, "a probability or backoff weight is not finite")
    bad = numpy.flatnonzero(values[:, 0] > 1e-6)
    if bad.size:
        raise fail(start + int(bad[0]) + 1, f"log10 probability {numbers[bad[0]][0]} is above 0")
    return _Section(start + 1, [r[1:order + 1] for r in rows], values[:, 0], values[:, 1])


def _model_from_arpa(p: Path, n: int, sections: list[_Section]) -> NGramLM:
    unigrams = [w[0] for w in sections[0].words]
    for special in (BOS, EOS):
        if special not in unigrams:
            raise ArpaError(f"{p}: the unigrams do not list {special}, so sentences cannot be scored")
    vocab = [BOS, EOS, UNK] + [w for w in dict.fromkeys(unigrams) if w not in (BOS, EOS, UNK)]
    lm = NGramLM(n, "arpa")
    lm._set_vocab(vocab)
    V, get = lm.V, lm._index.get
    lm.keys, lm.probs, lm.bows, lm.counts = [numpy.empty(0, numpy.int64)], [numpy.empty(0)], [numpy.empty(0)], []
    for m, section in enumerate(sections, start=1):
        ids = numpy.fromiter((get(w, -1) for words in section.words for w in words), dtype=numpy.int64,
                             count=m * len(section.words)).reshape(-1, m)
        bad = numpy.flatnonzero((ids < 0).any(axis=1))
        if bad.size:
            row = int(bad[0])
            word = next(w for w in section.words[row] if get(w) is None)
            raise ArpaError(f"{p}, line {section.first_line + row}: the word {word!r} is not among the unigrams")
        prefix = ids[:, 0]
        for j in range(2, m):  # the row of the (m−1)-word context, through the tables already read
            prefix = _find(lm.keys[j], numpy.where(prefix >= 0, prefix * V + ids[:, j - 1], -1))
        if (prefix < 0).any():
            line = section.first_line + int(numpy.flatnonzero(prefix < 0)[0])
            raise ArpaError(f"{p}, line {line}: the context of this {m}-gram is not listed among the {m - 1}-grams")
        keys = prefix * V + ids[:, m - 1] if m > 1 else prefix
        order = numpy.argsort(keys, kind="stable")
        keys = keys[order]
        repeated = numpy.flatnonzero(keys[1:] == keys[:-1])
        if repeated.size:
            raise ArpaError(f"{p}, line {section.first_line + int(order[repeated[0] + 1])}: this {m}-gram is listed twice")
        lp, lb = section.logp[order], section.logbow[order]
        prob = numpy.where(lp <= ARPA_LOG_ZERO, 0.0, 10.0 ** lp)
        bow = numpy.where(lb <= ARPA_LOG_ZERO, 0.0, 10.0 ** lb)
        if m == 1:  # every vocabulary word gets a row: a missing <unk> has probability 0
            full_p, full_b = numpy.zeros(V), numpy.ones(V)
            full_p[keys], full_b[keys] = prob, bow
            keys, prob, bow = numpy.arange(V, dtype=numpy.int64), full_p, full_b
            prob[BOS_ID] = 0.0
        lm.keys.append(keys)
        lm.probs.append(prob)
        lm.bows.append(bow)
    lm.bows[n] = numpy.empty(0)
    lm._finish()
    return lm
