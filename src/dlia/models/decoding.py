"""Beam search over any step function: the decoding loop shared by models that emit token sequences.

A model gives a ``step(prev, state) → (log-probabilities (n, V), new state, per-row extra or None)``
for ``n`` hypotheses at once and a ``select(state, rows)`` that keeps some rows of a state; this
module keeps the ``beam`` most probable prefixes, retires those that emit EOS, and ranks the finished
ones with GNMT's length normalisation. ``dlia.models.caption`` and ``Seq2Seq.beam_search`` decode with
it (seq2seq with each step's attention row as the per-row extra).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy

#: a step: (previous token of each live hypothesis (n,), state) → (log-probs (n, V), new state, extra (n, ...) or None)
StepFn = Callable[[numpy.ndarray, Any], tuple[numpy.ndarray, Any, Any]]
#: keep rows ``rows`` (int array) of a state, in that order
SelectFn = Callable[[Any, numpy.ndarray], Any]


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's length penalty ``((5 + length)/6)^alpha`` (Wu et al. 2016); 1 at ``alpha = 0``."""
    return ((5.0 + length) / 6.0) ** alpha


@dataclass
class Hypothesis:
    """A finished beam-search result: ``tokens`` without BOS (EOS last when it was emitted), ``score``
    the sum of their log-probabilities, ``normalized`` = score / length_penalty(len(tokens), alpha),
    ``extras`` the step function's extra row for each token (e.g. attention weights)."""

    tokens: list[int]
    score: float
    normalized: float
    extras: list[Any]


def beam_search(step: StepFn, select: SelectFn, state: Any, bos: int, eos: int, beam: int, max_len: int,
                alpha: float = 0.0) -> Hypothesis:
    """The best sequence of one input by beam search.

    At each step every live prefix is extended by every token; the ``beam`` best candidates by the
    sum of log-probabilities are kept (ties: the lower flat index (prefix, token) first, so the
    search is deterministic). A candidate ending in EOS is finished and leaves the beam, which
    shrinks. The search stops when no prefix is live or after ``max_len`` tokens (live prefixes then
    count as finished). The finished hypothesis with the best ``score / ((5 + len)/6)^alpha`` wins
    (len counts EOS; the first found among equals). ``beam = 1`` is greedy decoding.

    Args:
        step: see ``StepFn``; tokens that must never be emitted should get −inf.
        select: see ``SelectFn``.
        state: the state of the single starting hypothesis (a batch of one).
        bos: the token fed before the first step.
        eos: the token that ends a hypothesis.
        beam: hypotheses kept per step, ≥ 1.
        max_len: the most tokens a hypothesis may have (EOS included), ≥ 1.
        alpha: the length-normalisation exponent (0: rank by the raw sum).
    """
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise ValueError(f"beam search: beam must be an integer ≥ 1, got {beam!r}")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"beam search: max_len must be an integer ≥ 1, got {max_len!r}")
    live: list[tuple[list[int], float, list[Any]]] = [([], 0.0, [])]  # (tokens, log-prob sum, extras)
    finished: list[tuple[list[int], float, list[Any]]] = []
    for _ in range(max_len):
        prev = numpy.array([h[0][-1] if h[0] else bos for h in live], dtype=numpy.int64)
        logp, new_state, extra = step(prev, state)
        V = logp.shape[1]
        total = numpy.array([h[1] for h in live])[:, None] + logp
        flat = numpy.argsort(-total.reshape(-1), kind="stable")[:beam]
        keep, nxt = [], []
        for f in flat:
            i, tok = divmod(int(f), V)
            if not numpy.isfinite(total[i, tok]):
                continue  # fewer than `beam` emittable candidates
            hyp = (live[i][0] + [tok], float(total[i, tok]), live[i][2] + ([extra[i]] if extra is not None else []))
            if tok == eos:
                finished.append(hyp)
            else:
                keep.append(i)
                nxt.append(hyp)
        if not nxt:
            break
        state = select(new_state, numpy.array(keep, dtype=numpy.int64))
        live = nxt
    else:
        finished.extend(live)

    def normalized(h: tuple[list[int], float, list[Any]]) -> float:
        return h[1] / length_penalty(len(h[0]), alpha)

    best = max(finished, key=normalized)  # max keeps the first of equals: the earliest found
    return Hypothesis(best[0], best[1], normalized(best), best[2])
