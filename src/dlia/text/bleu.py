"""Corpus-level BLEU (Papineni, Roukos, Ward & Zhu 2002), on tokens the caller has already split.

For a corpus of hypotheses ``h_1 .. h_S``, each with one or more references, and ``n = 1 .. N``
(``N = max_n``, 4 by default):

- the **clipped n-gram counts** ``m_n = Σ_s Σ_g min(count_{h_s}(g), max_r count_{r}(g))`` over the
  n-grams ``g`` of ``h_s`` and the references ``r`` of sentence ``s`` (an n-gram earns at most as
  many matches as the reference that holds it most often), and the **totals**
  ``t_n = Σ_s max(0, |h_s| − n + 1)``: both summed over the whole corpus before any division;
- the **precisions** ``p_n = m_n / t_n``;
- the **brevity penalty** ``BP = 1`` if ``c > r``, else ``exp(1 − r / c)`` (0 when ``c = 0``), with
  ``c = Σ_s |h_s|`` and ``r = Σ_s r_s``, ``r_s`` the length of the reference of sentence ``s``
  closest to ``|h_s|`` (on a tie the shorter, as Moses' ``multi-bleu`` and sacrebleu do);
- **BLEU** ``= BP · exp((1/N) Σ_n log p_n)``, the geometric mean of the precisions, in ``[0, 1]``;
  it is 0 as soon as one ``p_n`` is 0 (unless smoothed).

sacrebleu reports the same number times 100 (``BLEU = 34.5`` there is ``score = 0.345`` here) and its
precisions in percent; ``corpus_bleu(h, r)`` here equals
``sacrebleu.corpus_bleu([" ".join(x) for x in h], ..., tokenize="none", force=True).score / 100``
(tests/text/test_bleu.py checks it to 1e-9). Smoothing follows sacrebleu's names (Chen & Cherry 2014):

- ``None`` / ``"none"``: none;
- ``"floor"`` (method 1): a zero ``m_n`` is replaced by ``smooth_value`` (default 0.1);
- ``"add-k"`` (method 2): ``k = smooth_value`` (default 1) is added to ``m_n`` and ``t_n`` for ``n ≥ 2``;
- ``"exp"`` (method 3, NIST's ``mteval``): the ``i``-th order with ``m_n = 0`` gets ``p_n = 1 / (2^i t_n)``.

If no n-gram matches at all the score is 0 whatever the smoothing. With ``effective_order`` the mean
runs only over the orders the hypotheses are long enough to have (sacrebleu's sentence-level default).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

#: smoothing methods and their default ``smooth_value`` (sacrebleu's)
SMOOTH_DEFAULTS: dict[str, float | None] = {"none": None, "floor": 0.1, "add-k": 1.0, "exp": None}


@dataclass(frozen=True)
class BleuScore:
    """A BLEU score and the statistics it came from.

    Attributes:
        score: BLEU in ``[0, 1]`` (sacrebleu's number / 100).
        precisions: ``p_1 .. p_N`` in ``[0, 1]``, after smoothing.
        bp: the brevity penalty.
        sys_len: ``c``, the number of hypothesis tokens.
        ref_len: ``r``, the summed closest-reference lengths.
        counts: the clipped matches ``m_1 .. m_N`` (before smoothing).
        totals: the hypothesis n-gram totals ``t_1 .. t_N`` (before smoothing).
    """

    score: float
    precisions: tuple[float, ...]
    bp: float
    sys_len: int
    ref_len: int
    counts: tuple[int, ...]
    totals: tuple[int, ...]

    def __str__(self) -> str:
        p = "/".join(f"{100 * x:.1f}" for x in self.precisions)
        return (f"BLEU = {100 * self.score:.2f} {p} (BP = {self.bp:.3f} ratio = "
                f"{self.sys_len / self.ref_len if self.ref_len else 0:.3f} hyp_len = {self.sys_len} ref_len = {self.ref_len})")


def _ngrams(tokens: Sequence[str], max_n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i:i + n]) for n in range(1, max_n + 1) for i in range(len(tokens) - n + 1))


def _closest_length(hyp_len: int, ref_lens: list[int]) -> int:
    """The reference length closest to ``hyp_len``; on a tie the shorter."""
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), r))


def _check_tokens(what: str, tokens: object) -> list[str]:
    if isinstance(tokens, str) or not isinstance(tokens, Sequence) or not all(isinstance(t, str) for t in tokens):
        raise ValueError(f"BLEU: {what} must be a list of tokens (strings), got {tokens!r:.60}")
    return list(tokens)


def _normalise_references(references: Sequence, n_sentences: int) -> list[list[list[str]]]:
    """``references`` as ``[sentence][reference][token]``; one reference per sentence is accepted as
    ``[sentence][token]`` (decided for the whole corpus: multi-reference as soon as one entry holds lists)."""
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise ValueError(f"BLEU: references must be a list (one entry per hypothesis), got {type(references).__name__}")
    if len(references) != n_sentences:
        raise ValueError(f"BLEU: {n_sentences} hypotheses but {len(references)} reference entries; "
                         f"give one entry (a reference or a list of references) per hypothesis")
    multi = any(isinstance(e, Sequence) and not isinstance(e, str) and any(not isinstance(x, str) for x in e)
                for e in references)
    if not multi:
        return [[_check_tokens(f"reference {i}", e)] for i, e in enumerate(references)]
    out = []
    for i, entry in enumerate(references):
        if isinstance(entry, str) or not isinstance(entry, Sequence) or not entry:
            raise ValueError(f"BLEU: hypothesis {i} has no reference (expected a non-empty list of token lists)")
        out.append([_check_tokens(f"reference {j} of hypothesis {i}", r) for j, r in enumerate(entry)])
    return out


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence, max_n: int = 4,
                smooth: str | None = None, smooth_value: float | None = None,
                effective_order: bool = False) -> BleuScore:
    """Corpus-level BLEU of tokenised hypotheses against one or more tokenised references each.

    Args:
        hypotheses: ``[sentence][token]``.
        references: ``[sentence][reference][token]``, or ``[sentence][token]`` for one reference each.
        max_n: the largest n-gram order ``N``.
        smooth: ``None``/``"none"``, ``"floor"``, ``"add-k"`` or ``"exp"`` (see the module docstring).
        smooth_value: the constant of ``"floor"`` (0.1) or ``"add-k"`` (1).
        effective_order: average only over the orders that have n-grams (for single sentences).

    Returns:
        A ``BleuScore``.

    Raises:
        ValueError: no sentences, lengths that do not match, a hypothesis without a reference,
            tokens that are not strings, an unknown smoothing or ``max_n < 1``.

    Example:
        >>> s = corpus_bleu([["the", "cat", "sat", "on", "the", "mat"]], [[["the", "cat", "sat", "on", "the", "mat"]]])
        >>> s.score, s.bp
        (1.0, 1.0)
    """
    method = "none" if smooth is None else smooth
    if method not in SMOOTH_DEFAULTS:
        raise ValueError(f"BLEU: unknown smoothing {smooth!r}; use one of None, {', '.join(map(repr, SMOOTH_DEFAULTS))}")
    if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
        raise ValueError(f"BLEU: max_n must be a positive integer, got {max_n!r}")
    if isinstance(hypotheses, str) or not isinstance(hypotheses, Sequence):
        raise ValueError(f"BLEU: hypotheses must be a list of token lists, got {type(hypotheses).__name__}")
    if not hypotheses:
        raise ValueError("BLEU: no sentences (the hypothesis list is empty)")
    hyps = [_check_tokens(f"hypothesis {i}", h) for i, h in enumerate(hypotheses)]
    refs = _normalise_references(references, len(hyps))
    k = SMOOTH_DEFAULTS[method] if smooth_value is None else float(smooth_value)

    counts, totals = [0] * max_n, [0] * max_n
    sys_len = ref_len = 0
    for hyp, sentence_refs in zip(hyps, refs):
        sys_len += len(hyp)
        ref_len += _closest_length(len(hyp), [len(r) for r in sentence_refs])
        best: Counter[tuple[str, ...]] = Counter()
        for r in sentence_refs:
            best |= _ngrams(r, max_n)  # | keeps each n-gram's largest count: the clip
        for gram, c in _ngrams(hyp, max_n).items():
            totals[len(gram) - 1] += c
            counts[len(gram) - 1] += min(c, best[gram])

    bp = 1.0 if sys_len >= ref_len else (math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0)
    precisions = [0.0] * max_n
    score = 0.0
    if any(counts):  # no match at all: 0 whatever the smoothing (sacrebleu's early stop)
        m, t = [float(x) for x in counts], [float(x) for x in totals]
        order, halvings = max_n, 1.0
        for n in range(max_n):
            if method == "add-k" and n > 0:
                m[n] += k
                t[n] += k
            if t[n] == 0:
                break  # hypotheses too short for this order: p_n stays 0 (score 0 unless effective_order)
            if effective_order:
                order = n + 1
            if m[n] > 0:
                precisions[n] = m[n] / t[n]
            elif method == "exp":
                halvings *= 2
                precisions[n] = 1 / (halvings * t[n])
            elif method == "floor":
                precisions[n] = k / t[n]
        if all(p > 0 for p in precisions[:order]):
            score = bp * math.exp(sum(math.log(p) for p in precisions[:order]) / order)
    return BleuScore(score, tuple(precisions), bp, sys_len, ref_len, tuple(counts), tuple(totals))


def sentence_bleu(hypothesis: Sequence[str], references: Sequence, max_n: int = 4, smooth: str | None = "exp",
                  smooth_value: float | None = None, effective_order: bool = True) -> BleuScore:
    """BLEU of one tokenised hypothesis against one reference (``[token]``) or several (``[[token]]``).

    The defaults are sacrebleu's ``sentence_bleu``: ``"exp"`` smoothing and ``effective_order``,
    since a single short sentence often has no matching 4-gram. The corpus score is not the mean of
    sentence scores: use ``corpus_bleu`` to report a test set.

    Example:
        >>> round(sentence_bleu(["a", "red", "circle"], ["a", "red", "circle"]).score, 6)
        1.0
    """
    if isinstance(references, Sequence) and not isinstance(references, str) and not references:
        raise ValueError("BLEU: the hypothesis has no reference (give a token list or a list of token lists)")
    refs = references
    if isinstance(references, Sequence) and not isinstance(references, str) and references \
            and all(isinstance(t, str) for t in references):
        refs = [references]
    return corpus_bleu([hypothesis], [refs], max_n=max_n, smooth=smooth, smooth_value=smooth_value,
                       effective_order=effective_order)
