"""The two standard benchmarks of word vectors: analogy questions and human similarity scores.

**Analogies** (Mikolov et al. 2013, ``questions-words.txt``): 19,544 questions ``a b c d`` in 14
sections, 5 semantic (capitals, currencies, family...) then 9 syntactic (plurals, tenses...); the
model answers ``d`` with the word nearest to ``b - a + c`` ("Athens Greece Baghdad" -> Iraq). The
rules are the C tool's ``compute-accuracy`` (and gensim's ``evaluate_word_analogies``):

- only the first ``restrict_vocab`` words (the most frequent) are used, as question words and as
  answers;
- case-insensitive by default: both sides are upper-cased, and where several vocabulary words fold
  to the same one ("Paris", "paris") the earlier, more frequent one stands for them;
- a question with a word outside that vocabulary is skipped and counted, not answered;
- the answer is the top-1 word excluding the three question words (and their case variants).

**Similarity pairs** (WordSim-353, SimLex-999): word pairs with a human score; the model's score is
the cosine, and the result is Spearman's rank correlation ρ between the two (Pearson's r too).
Pairs with a word outside the vocabulary are skipped and counted.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy

from dlia.models.word2vec.formats import FormatError
from dlia.text.chars import read_text

if TYPE_CHECKING:
    from dlia.models.word2vec.vectors import KeyedVectors

#: the first 5 sections of questions-words.txt are semantic, the other 9 syntactic
SEMANTIC_SECTIONS = 5
#: scores computed per matrix product (questions x searched words): 8M float32 are 32 MB, 266
#: questions at a time with 30,000 words
CHUNK_VALUES = 8_000_000


class EvaluationError(ValueError):
    """An evaluation that cannot give a number (no pair in the vocabulary); the message says why."""


@dataclass(frozen=True)
class AnalogySection:
    """One section of an analogy file: ``correct`` of the ``seen`` questions (all four words in the
    vocabulary) answered right, of ``total`` in the file."""

    name: str
    correct: int
    seen: int
    total: int

    @property
    def accuracy(self) -> float:
        """``correct / seen``; 0.0 when no question was seen (as gensim)."""
        return self.correct / self.seen if self.seen else 0.0

    @property
    def skipped(self) -> int:
        """Questions with a word outside the vocabulary."""
        return self.total - self.seen


def _merge(name: str, sections: list[AnalogySection]) -> AnalogySection:
    return AnalogySection(name, sum(s.correct for s in sections), sum(s.seen for s in sections),
                          sum(s.total for s in sections))


@dataclass(frozen=True)
class AnalogyReport:
    """The result of ``evaluate_analogies``: each section, and semantic (the first 5 sections),
    syntactic (the rest) and total accuracy over the questions seen."""

    path: str
    sections: list[AnalogySection]
    restrict_vocab: int
    case_insensitive: bool
    method: str

    @property
    def semantic(self) -> AnalogySection:
        return _merge("semantic", self.sections[:SEMANTIC_SECTIONS])

    @property
    def syntactic(self) -> AnalogySection:
        return _merge("syntactic", self.sections[SEMANTIC_SECTIONS:])

    @property
    def total_section(self) -> AnalogySection:
        return _merge("total", self.sections)

    @property
    def semantic_accuracy(self) -> float:
        return self.semantic.accuracy

    @property
    def syntactic_accuracy(self) -> float:
        return self.syntactic.accuracy

    @property
    def accuracy(self) -> float:
        """Total accuracy: correct answers over questions seen, all sections together."""
        return self.total_section.accuracy

    @property
    def correct(self) -> int:
        return self.total_section.correct

    @property
    def seen(self) -> int:
        return self.total_section.seen

    @property
    def total(self) -> int:
        return self.total_section.total

    @property
    def skipped(self) -> int:
        """Questions skipped because a word is outside the (restricted) vocabulary."""
        return self.total - self.seen

    @property
    def coverage(self) -> float:
        """The share of questions seen, ``seen / total``."""
        return self.seen / self.total if self.total else 0.0

    def format(self) -> str:
        """A Markdown table (the lecture's): each section, then semantic, syntactic and total, with
        accuracy, correct/seen and seen/total, and a line saying what was skipped."""
        rows = ["| section | accuracy | correct / seen | seen / total |", "|---|---:|---:|---:|"]
        for s in [*self.sections, self.semantic, self.syntactic, self.total_section]:
            name = s.name if s in self.sections else f"**{s.name}**"
            acc = f"{100 * s.accuracy:.1f}%" if s.seen else "–"
            rows.append(f"| {name} | {acc} | {s.correct:,} / {s.seen:,} | {s.seen:,} / {s.total:,} |")
        method = {"add": "3CosAdd", "mul": "3CosMul"}.get(self.method, self.method)
        rows.append("")
        rows.append(f"{self.seen:,} of {self.total:,} questions seen ({100 * self.coverage:.1f}%), {self.skipped:,} "
                    f"skipped (a word outside the first {self.restrict_vocab:,} words); {method}, "
                    f"{'case-insensitive' if self.case_insensitive else 'case-sensitive'}")
        return "\n".join(rows)


@dataclass(frozen=True)
class PairsReport:
    """The result of ``evaluate_pairs``: rank (Spearman) and linear (Pearson) correlation between
    the model's cosines and the human scores, over the ``used`` pairs in the vocabulary."""

    path: str
    spearman: float
    pearson: float
    used: int
    skipped: int

    @property
    def total(self) -> int:
        return self.used + self.skipped

    @property
    def oov_ratio(self) -> float:
        """The share of pairs skipped for a word outside the vocabulary."""
        return self.skipped / self.total if self.total else 0.0

    def format(self) -> str:
        """One line: ``wordsim353.tsv: Spearman ρ 0.6612, Pearson r 0.6520 (300 of 353 pairs, 53 skipped)``."""
        return (f"{Path(self.path).name}: Spearman ρ {self.spearman:.4f}, Pearson r {self.pearson:.4f} "
                f"({self.used:,} of {self.total:,} pairs, {self.skipped:,} skipped: a word outside the vocabulary)")


def _folded_vocabulary(kv: KeyedVectors, restrict_vocab: int, case_insensitive: bool) -> tuple[dict[str, int], numpy.ndarray]:
    """The searched vocabulary: ``key -> row`` over the first ``restrict_vocab`` words, keys
    upper-cased when case-insensitive with the earliest (most frequent) row winning, and
    ``fold[j]``, the row that stands for row ``j`` (``j`` itself unless an earlier word folds alike)."""
    words = kv.index_to_key[:restrict_vocab]
    ok: dict[str, int] = {}
    fold = numpy.empty(len(words), dtype=numpy.int64)
    for j, w in enumerate(words):
        fold[j] = ok.setdefault(w.upper() if case_insensitive else w, j)
    return ok, fold


def _check_restrict(restrict_vocab: int) -> None:
    if not isinstance(restrict_vocab, (int, numpy.integer)) or restrict_vocab < 1:
        raise ValueError(f"restrict_vocab must be a positive number of words, got {restrict_vocab!r}")


def read_analogies(path: str | os.PathLike[str]) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """The sections of an analogy file: ``[(name, [(a, b, c, d), ...]), ...]``.

    The format: a line ``: name`` starts a section, each other non-blank line is one question of
    four words separated by whitespace.

    Raises:
        TextError: the file is missing, empty, binary or not UTF-8.
        FormatError: a question before the first section line, or a line that is not four words.
    """
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = []
    for line_no, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith(":"):
            sections.append((line[1:].strip(), []))
            continue
        words = line.split()
        if len(words) != 4:
            raise FormatError(f"{path}: line {line_no} should be four words 'a b c d' or ': section', got {line.strip()!r}")
        if not sections:
            raise FormatError(f"{path}: line {line_no} is a question before the first ': section' line")
        sections[-1][1].append((words[0], words[1], words[2], words[3]))
    if not sections:
        raise FormatError(f"{path} holds no analogy questions (expected ': section' lines, then 'a b c d' lines)")
    return sections


def _scores(normed: numpy.ndarray, ia: numpy.ndarray, ib: numpy.ndarray, ic: numpy.ndarray, method: str) -> numpy.ndarray:
    """``(B, N)`` scores of every searched word as the answer ``d`` of questions ``a b c`` (rows)."""
    ua, ub, uc = normed[ia], normed[ib], normed[ic]
    if method == "add":  # cos(w, b - a + c), as most_similar(positive=[b, c], negative=[a])
        q = (ub + uc - ua) / numpy.float32(3)
        q /= numpy.maximum(numpy.linalg.norm(q, axis=1, keepdims=True), numpy.float32(1e-30))
        return q @ normed.T
    # 3CosMul, as most_similar_cosmul(positive=[b, c], negative=[a])
    sa, sb, sc = ((1 + u @ normed.T) / 2 for u in (ua, ub, uc))
    return sb * sc / (sa + numpy.float32(1e-6))


def evaluate_analogies(kv: KeyedVectors, path: str | os.PathLike[str], restrict_vocab: int = 30000,
                       case_insensitive: bool = True, method: str = "add") -> AnalogyReport:
    """Accuracy on analogy questions ``a b c d`` (``d ≈ b - a + c``) by the C tool's rules.

    Each question whose four words are among the first ``restrict_vocab`` words is answered with
    the best-scoring word of those, leaving out ``a``, ``b``, ``c`` and their case variants; it is
    right when that word is ``d`` (up to case, when case-insensitive). For ``method="add"`` the
    results equal gensim's ``evaluate_word_analogies(path, restrict_vocab, case_insensitive=True)``
    section by section (tested). (gensim looks for its answer among the top 5 results of
    ``most_similar`` only, after dropping case variants of the question words; it would count a
    question wrong, where we find the answer, if more than 5 such variants all ranked first.)

    Args:
        kv: the vectors; their first words should be the most frequent.
        path: the questions, ``questions-words.txt`` format.
        restrict_vocab: how many of the first words are searched (30,000 as the C tool's default
            threshold in the lecture; gensim's default is 300,000).
        case_insensitive: compare upper-cased words.
        method: "add" (3CosAdd, the C tool's) or "mul" (3CosMul).

    Returns:
        An ``AnalogyReport``; ``report.format()`` is the table the CLI prints.

    Raises:
        TextError, FormatError: the file cannot be read as analogy questions.
    """
    _check_restrict(restrict_vocab)
    if method not in ("add", "mul"):
        raise ValueError(f"unknown analogy method {method!r} (expected 'add' or 'mul')")
    parsed = read_analogies(path)
    ok, fold = _folded_vocabulary(kv, restrict_vocab, case_insensitive)
    normed = kv.get_normed_vectors()[:restrict_vocab]
    sections = []
    for name, questions in parsed:
        known = []
        for q in questions:
            keys = [w.upper() for w in q] if case_insensitive else list(q)
            if all(k in ok for k in keys):
                known.append([ok[k] for k in keys])
        rows = numpy.array(known, dtype=numpy.int64).reshape(-1, 4)
        correct = 0
        chunk = max(1, CHUNK_VALUES // len(normed))
        for start in range(0, len(rows), chunk):
            ia, ib, ic, id_ = rows[start:start + chunk].T
            scores = _scores(normed, ia, ib, ic, method)
            # leave out the question words, and every word that folds to one of them
            excluded = (fold == ia[:, None]) | (fold == ib[:, None]) | (fold == ic[:, None])
            scores[excluded] = -numpy.inf
            predicted = scores.argmax(axis=1)
            correct += int((fold[predicted] == id_).sum())
        sections.append(AnalogySection(name, correct, len(rows), len(questions)))
    return AnalogyReport(str(path), sections, int(restrict_vocab), case_insensitive, method)


def rankdata(x: numpy.ndarray) -> numpy.ndarray:
    """Ranks ``1..n`` of ``x``, tied values sharing the mean of their ranks (scipy's
    ``rankdata(method="average")``): ``rankdata([10, 20, 20, 5]) = [2, 3.5, 3.5, 1]``."""
    x = numpy.asarray(x)
    order = numpy.argsort(x, kind="stable")
    sorted_x = x[order]
    # a tie group is a run of equal sorted values; its members get the mean of positions first..last
    starts = numpy.flatnonzero(numpy.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = numpy.r_[starts[1:], len(x)]  # one past each group's last position
    mean_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = numpy.empty(len(x), dtype=numpy.float64)
    ranks[order] = numpy.repeat(mean_rank, ends - starts)
    return ranks


def pearson(x: numpy.ndarray, y: numpy.ndarray) -> float:
    """Pearson's r, ``Σ (x - x̄)(y - ȳ) / sqrt(Σ (x - x̄)² Σ (y - ȳ)²)``; NaN when either is constant."""
    x = numpy.asarray(x, dtype=numpy.float64) - numpy.mean(x, dtype=numpy.float64)
    y = numpy.asarray(y, dtype=numpy.float64) - numpy.mean(y, dtype=numpy.float64)
    denominator = numpy.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator > 0 else float("nan")


def spearman(x: numpy.ndarray, y: numpy.ndarray) -> float:
    """Spearman's ρ: Pearson's r between the average ranks of ``x`` and ``y`` (scipy's ``spearmanr``)."""
    return pearson(rankdata(x), rankdata(y))


def read_pairs(path: str | os.PathLike[str]) -> list[tuple[str, str, float]]:
    """The ``(word1, word2, human score)`` lines of a similarity file. Lines starting with ``#``
    and blank lines are skipped; fields are separated by tabs (or, in a line without tabs, by
    whitespace), as in gensim's ``wordsim353.tsv`` and ``simlex999.txt``.

    Raises:
        TextError: the file is missing, empty, binary or not UTF-8.
        FormatError: a line that is not two words and a number, or no pair at all.
    """
    pairs = []
    for line_no, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
        try:
            if len(fields) != 3:
                raise ValueError
            score = float(fields[2])
            if not math.isfinite(score):  # a NaN would silently take a rank
                raise ValueError
            pairs.append((fields[0], fields[1], score))
        except ValueError:
            raise FormatError(f"{path}: line {line_no} should be 'word1<TAB>word2<TAB>score' (a finite number), "
                              f"got {line.strip()!r}") from None
    if not pairs:
        raise FormatError(f"{path} holds no word pairs (expected 'word1<TAB>word2<TAB>score' lines)")
    return pairs


def evaluate_pairs(kv: KeyedVectors, path: str | os.PathLike[str], restrict_vocab: int = 300000,
                   case_insensitive: bool = True) -> PairsReport:
    """Spearman's ρ (and Pearson's r) between the cosines of word pairs and human scores.

    Pairs with a word outside the first ``restrict_vocab`` words are skipped and counted. The
    result equals gensim's ``evaluate_word_pairs`` and scipy's ``spearmanr`` (tested).

    Raises:
        TextError, FormatError: the file cannot be read as scored pairs.
        EvaluationError: fewer than two pairs in the vocabulary (no correlation to compute).
    """
    _check_restrict(restrict_vocab)
    pairs = read_pairs(path)
    ok, _ = _folded_vocabulary(kv, restrict_vocab, case_insensitive)
    normed = kv.get_normed_vectors()
    human, rows = [], []
    for w1, w2, score in pairs:
        k1, k2 = (w1.upper(), w2.upper()) if case_insensitive else (w1, w2)
        if k1 in ok and k2 in ok:
            human.append(score)
            rows.append((ok[k1], ok[k2]))
    if len(rows) < 2:
        raise EvaluationError(f"{path}: only {len(rows)} of its {len(pairs)} pairs have both words among the first "
                              f"{restrict_vocab:,} words of the vocabulary; a correlation needs at least 2")
    if len(set(human)) < 2:
        raise EvaluationError(f"{path}: the human scores of its {len(rows)} pairs in the vocabulary are all equal; "
                              f"they cannot be correlated")
    i, j = numpy.array(rows).T
    model = numpy.einsum("nd,nd->n", normed[i], normed[j])
    return PairsReport(str(path), spearman(human, model), pearson(human, model), len(rows), len(pairs) - len(rows))
