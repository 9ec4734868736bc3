"""Bengio et al. 2003's comparison on our data: test perplexity of n-gram models and of the neural
language model, alone and mixed (``dlia lm compare``).

The corpus's lines are cut in order into 80 % training, 10 % validation and 10 % test lines
(``split``); the vocabulary is the training words seen at least ``min_count`` times, the others
become ``<unk>`` (``dlia.models.ngram.build_vocab``). Every model predicts the same tokens (each
word and one ``</s>`` per line), so the perplexities compare and the probabilities can be mixed.
Whatever needs tuning is tuned on the validation lines only: add-k's k, the NNLM's early stopping,
the mixture weight λ (EM).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy

from dlia.models import nnlm as N
from dlia.models.ngram import NGramLM, build_vocab, encode_sentences

#: add-k's pseudo-counts tried on the validation lines
ADD_K = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
#: the paper's figures (Bengio et al. 2003, tables 1 and 2), printed beside ours
PAPER = ("Bengio et al. 2003 report, on the Brown corpus (800k training words, |V| = 16,383), test perplexity "
         "252 for the best mixture of a neural model with a trigram against 312 for the best class-based n-gram "
         "and 321 for Kneser-Ney 5-gram; on AP News 109 against 117 for Kneser-Ney 5-gram (7 % better).")


class CompareError(ValueError):
    """A corpus the comparison cannot use (too few lines to split, say)."""


def words_of(line: str) -> list[str]:
    """Lower-cased words without punctuation ("King," → "king"; "o'er" stays one word): how
    tiny-shakespeare is cut into words here (enwiki-sample is already tokenized and lower-cased)."""
    return re.findall(r"[a-z]+(?:'[a-z]+)?", line.lower())


def read_lines(text: str, shakespeare_words: bool = False, lowercase: bool = False) -> list[list[str]]:
    """The non-empty lines of ``text`` as lists of words (white-space tokens, or ``words_of``)."""
    lines = [words_of(line) if shakespeare_words else (line.lower() if lowercase else line).split()
             for line in text.splitlines()]
    return [line for line in lines if line]


def split(lines: Sequence[list[str]], fractions: tuple[float, float] = (0.8, 0.9)) -> tuple[list, list, list]:
    """Lines [0, 80 %), [80 %, 90 %), [90 %, 100 %) in order: training, validation, test."""
    n = len(lines)
    a, b = int(fractions[0] * n), int(fractions[1] * n)
    if a < 1 or b <= a or b >= n:
        raise CompareError(f"{n} non-empty lines cannot be cut 80/10/10 into three non-empty parts; "
                           f"the comparison needs at least 10 lines")
    return list(lines[:a]), list(lines[a:b]), list(lines[b:])


@dataclass
class Row:
    """One model of the table: its perplexity on the validation and the test lines."""

    model: str
    valid: float
    test: float
    note: str = ""


@dataclass
class Comparison:
    """The table and what it was computed on."""

    corpus: str
    rows: list[Row] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def row(self, prefix: str) -> Row:
        return next(r for r in self.rows if r.model.startswith(prefix))

    def markdown(self) -> str:
        """The table as Markdown, with the corpus, the splits and the mixture's gain over KN 5-gram."""
        i = self.info
        head = [f"Test perplexity on {self.corpus}: {i['train_tokens']:,} / {i['valid_tokens']:,} / {i['test_tokens']:,} "
                f"predicted tokens (words and one </s> a line) in the training / validation / test lines "
                f"({i['lines'][0]:,} / {i['lines'][1]:,} / {i['lines'][2]:,} lines, cut 80/10/10 in order); vocabulary: "
                f"the {i['vocab'] - 3:,} training words seen at least {i['min_count']} times, plus <s>, </s>, <unk> "
                f"({100 * i['test_oov']:.1f} % of the test words are <unk>).", "",
                "| model | validation | test | |", "|---|---:|---:|---|"]
        for r in self.rows:
            head.append(f"| {r.model} | {_fmt(r.valid)} | {_fmt(r.test)} | {r.note} |")
        if "gain" in i:
            head += ["", f"The mixture's test perplexity is {100 * i['gain']:.1f} % below Kneser-Ney 5-gram's "
                         f"(the paper's AP News margin: 7 %)."]
        return "\n".join(head + ["", PAPER]) + "\n"


def _fmt(x: float) -> str:
    return "inf" if not math.isfinite(x) else f"{x:,.1f}"


def compare(train: Sequence[list[str]], valid: Sequence[list[str]], test: Sequence[list[str]], corpus: str = "the corpus",
            min_count: int = 2, nnlm_config: N.NNLMConfig | None = None,
            on_batch: Callable[..., None] | None = None, on_epoch: Callable[..., None] | None = None,
            checkpoint_dir: str | os.PathLike[str] | None = None) -> Comparison:
    """Every row of the table: MLE 3-gram (backing off to shorter contexts), add-k 3-gram (k tuned on
    validation), Katz 3-gram, Kneser-Ney 3- and 5-gram, the NNLM (``nnlm_config``; None leaves it and
    the mixture out) and its mixture with Kneser-Ney 5-gram, λ fitted by EM on the validation tokens.

    ``on_batch``/``on_epoch``/``checkpoint_dir`` are passed to the NNLM's ``NNLMTrainer.fit``.
    """
    vocab = build_vocab(train, min_count=min_count)
    if len(vocab) <= 3:  # only <s>, </s>, <unk>: every model would predict <unk> and </s> perfectly
        raise CompareError(f"no training word occurs at least {min_count} times (min-count); nothing to compare")
    tr, va, te = (encode_sentences(x, vocab) for x in (train, valid, test))
    out = Comparison(corpus)
    out.info = {"lines": (len(train), len(valid), len(test)), "min_count": min_count, "vocab": len(vocab),
                "train_tokens": sum(len(s) + 1 for s in tr), "valid_tokens": sum(len(s) + 1 for s in va),
                "test_tokens": sum(len(s) + 1 for s in te),
                "test_oov": float(numpy.mean(numpy.concatenate(te) == 2)) if sum(map(len, te)) else 0.0}
    for name, order, smoothing in (("MLE 3-gram, backing off to shorter contexts", 3, "mle"),
                                   ("Katz 3-gram", 3, "katz"), ("Kneser-Ney 3-gram (interpolated, modified)", 3, "kn"),
                                   ("Kneser-Ney 5-gram (interpolated, modified)", 5, "kn")):
        lm = NGramLM(order, smoothing).fit(tr, vocab=vocab)
        note = "an unseen n-gram after a seen context has probability 0" if smoothing == "mle" else ""
        out.rows.append(Row(name, lm.perplexity(va), lm.perplexity(te), note))
        if order == 5:
            kn5 = lm
    tuned = min(((NGramLM(3, "add-k", k=k).fit(tr, vocab=vocab), k) for k in ADD_K), key=lambda m: m[0].perplexity(va))
    out.rows.insert(1, Row("add-k 3-gram", tuned[0].perplexity(va), tuned[0].perplexity(te),
                           f"k = {tuned[1]:g}, the best of {', '.join(f'{k:g}' for k in ADD_K)} on validation"))
    if nnlm_config is None:
        return out
    trainer = N.NNLMTrainer(nnlm_config, vocab, tr, va)
    trainer.fit(checkpoint_dir, on_batch=on_batch, on_epoch=on_epoch)
    model = trainer.model
    c = nnlm_config
    shape = (f"n = {c.order}, m = {c.embedding_dim}, h = {c.hidden}, {'with' if c.direct else 'no'} direct connections, "
             f"{N.parameter_count(c, len(vocab)):,} parameters, {c.optimizer} {c.lr:g}, batch {c.batch_size}")
    out.rows.append(Row("NNLM", N.perplexity(model, va), N.perplexity(model, te), shape))
    p_va, p_te = numpy.exp(N.token_logprobs(model, va)), numpy.exp(N.token_logprobs(model, te))
    k_va, k_te = 10.0 ** kn5.token_logprobs(va), 10.0 ** kn5.token_logprobs(te)
    lam = N.mixture(p_va, k_va)
    out.rows.append(Row("NNLM + Kneser-Ney 5-gram mixture", N.mixed_perplexity(p_va, k_va, lam),
                        N.mixed_perplexity(p_te, k_te, lam), f"λ = {lam:.2f} (EM on validation)"))
    out.info["gain"] = 1 - out.rows[-1].test / out.row("Kneser-Ney 5-gram").test
    out.info["lambda"] = lam
    return out
