"""Word vectors and the questions people ask of them, with gensim's ``KeyedVectors`` names.

``KeyedVectors`` holds a vocabulary (``index_to_key``, most frequent word first when it comes from
training) and one row of ``vectors`` per word. Similarity is the cosine: rows are scaled to unit
length once (``get_normed_vectors``) and every query is a matrix-vector product over them.

The analogy reading: ``analogy(a, b, c)`` answers "``a`` is to ``b`` as ? is to ``c``" with the
word nearest to ``a - b + c``, so ``analogy("king", "man", "woman")`` gives ``queen``. The file
formats live in ``formats.py``, the benchmarks (analogy questions, similarity pairs) in
``evaluate.py``; the methods here call them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy

from dlia.models.word2vec import evaluate as _evaluate
from dlia.models.word2vec import formats as _formats

#: a query term: a word of the vocabulary, or a vector of ``vector_size`` values
Term = str | numpy.ndarray

#: float32 as gensim and the C tool: a 3M x 300 model (GoogleNews) takes 3.6 GB, not 7.2
DTYPE = numpy.float32


class WordNotInVocabulary(ValueError):
    """Words asked for that the vocabulary does not hold; ``words`` lists them, the message names
    them all and the vocabulary size. A ``ValueError`` (not a ``KeyError``, whose message Python
    prints quoted) so the CLI reports it as one line."""

    def __init__(self, words: Sequence[str], vocabulary_size: int) -> None:
        self.words = list(words)
        names = ", ".join(repr(w) for w in self.words)
        what = "word" if len(self.words) == 1 else "words"
        verb = "is" if len(self.words) == 1 else "are"
        super().__init__(f"{what} {names} {verb} not in the vocabulary ({vocabulary_size:,} words)")


def _unit(v: numpy.ndarray) -> numpy.ndarray:
    """``v / |v|``; a zero vector stays zero (it is similar to nothing rather than NaN)."""
    n = numpy.linalg.norm(v)
    return v / n if n > 0 else v


class KeyedVectors:
    """A vocabulary and one vector per word: similarity queries, analogies, evaluation, files.

    Args:
        words: the vocabulary, distinct strings; row ``i`` of ``vectors`` belongs to ``words[i]``.
            Queries with ``restrict_vocab=N`` look at the first N words, so put the most frequent
            first (training does).
        vectors: ``(V, D)`` values, converted to float32.
        counts: optional ``(V,)`` corpus frequencies (int64), kept with the vectors.

    Attributes:
        index_to_key: the words, in row order.
        key_to_index: word -> row.
        vectors: ``(V, D)`` float32.
        vector_size: ``D``.
        counts: ``(V,)`` int64, or None (files in the word2vec formats hold no counts).

    Raises:
        ValueError: shapes that do not match, repeated words, a word that is not a string,
            values that are NaN or infinite.

    Example:
        >>> kv = KeyedVectors(["a", "b"], numpy.eye(2))
        >>> kv.similarity("a", "b")
        0.0
    """

    def __init__(self, words: Sequence[str], vectors: numpy.ndarray, counts: numpy.ndarray | None = None) -> None:
        vectors = numpy.ascontiguousarray(vectors, dtype=DTYPE)
        words = list(words)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be a (words, dimensions) matrix, got shape {vectors.shape}")
        if len(words) != vectors.shape[0]:
            raise ValueError(f"{len(words)} words but {vectors.shape[0]} vectors (shape {vectors.shape})")
        if not words or vectors.shape[1] == 0:
            raise ValueError(f"word vectors need at least one word and one dimension, got shape {vectors.shape}")
        for w in words:
            if not isinstance(w, str):
                raise ValueError(f"words must be strings, got {w!r} ({type(w).__name__})")
        key_to_index: dict[str, int] = {}
        for i, w in enumerate(words):
            if key_to_index.setdefault(w, i) != i:
                raise ValueError(f"word {w!r} appears twice (rows {key_to_index[w]} and {i})")
        if not numpy.isfinite(vectors).all():
            row = int(numpy.flatnonzero(~numpy.isfinite(vectors).all(axis=1))[0])
            raise ValueError(f"the vector of {words[row]!r} (row {row}) holds NaN or infinite values")
        if counts is not None:
            counts = numpy.asarray(counts)
            if counts.shape != (len(words),) or not numpy.issubdtype(counts.dtype, numpy.integer) or (counts < 0).any():
                raise ValueError(f"counts must be {len(words)} non-negative integers, got shape {counts.shape} "
                                 f"of {counts.dtype}")
            counts = counts.astype(numpy.int64)
        self.index_to_key: list[str] = words
        self.key_to_index: dict[str, int] = key_to_index
        self.vectors: numpy.ndarray = vectors
        self.counts: numpy.ndarray | None = counts
        self._normed: numpy.ndarray | None = None

    # -- the vocabulary ------------------------------------------------------------------------

    @property
    def vector_size(self) -> int:
        """``D``, the number of values per word."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def __repr__(self) -> str:
        return f"KeyedVectors({len(self):,} words, {self.vector_size} dimensions)"

    def get_index(self, word: str) -> int:
        """The row of ``word``. Raises ``WordNotInVocabulary`` naming it when absent."""
        try:
            return self.key_to_index[word]
        except (KeyError, TypeError):  # TypeError: an unhashable argument (a list) is no word either
            raise WordNotInVocabulary([word], len(self)) from None

    def _indices(self, words: Iterable[str]) -> list[int]:
        """Rows of ``words``; one ``WordNotInVocabulary`` naming every missing word."""
        words = list(words)
        missing = [w for w in words if w not in self.key_to_index]
        if missing:
            raise WordNotInVocabulary(list(dict.fromkeys(missing)), len(self))
        return [self.key_to_index[w] for w in words]

    def get_vector(self, word: str, norm: bool = False) -> numpy.ndarray:
        """The ``(D,)`` vector of ``word`` (a view of ``vectors``), or its unit-length copy with ``norm=True``."""
        i = self.get_index(word)
        return self.get_normed_vectors()[i] if norm else self.vectors[i]

    def __getitem__(self, words: str | Sequence[str]) -> numpy.ndarray:
        """``kv["king"]`` is a ``(D,)`` vector, ``kv[["king", "queen"]]`` a ``(2, D)`` matrix."""
        if isinstance(words, str):
            return self.vectors[self.get_index(words)]
        return self.vectors[self._indices(words)]

    def get_normed_vectors(self) -> numpy.ndarray:
        """``(V, D)`` float32 rows ``v / |v|``, computed once and cached (so change ``vectors`` only
        through a new ``KeyedVectors``). A zero row stays zero: similar to nothing, never NaN."""
        if self._normed is None:
            norms = numpy.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._normed = self.vectors / numpy.where(norms > 0, norms, 1).astype(DTYPE)
        return self._normed

    # -- similarity ----------------------------------------------------------------------------

    def similarity(self, w1: str, w2: str) -> float:
        """The cosine ``u·v / (|u| |v|)`` of two words' vectors, in [-1, 1] (0 for a zero vector)."""
        i, j = self._indices([w1, w2])
        normed = self.get_normed_vectors()
        return float(normed[i] @ normed[j])

    def distance(self, w1: str, w2: str) -> float:
        """The cosine distance ``1 - similarity(w1, w2)``, in [0, 2]."""
        return 1.0 - self.similarity(w1, w2)

    def n_similarity(self, ws1: Sequence[str], ws2: Sequence[str]) -> float:
        """The cosine between the means of two non-empty word lists' (raw) vectors, as gensim."""
        if not ws1 or not ws2:
            raise ValueError("n_similarity needs two non-empty word lists")
        m1 = self.vectors[self._indices(ws1)].mean(axis=0)
        m2 = self.vectors[self._indices(ws2)].mean(axis=0)
        return float(_unit(m1) @ _unit(m2))

    def _terms(self, positive: Term | Sequence[Term] | None, negative: Term | Sequence[Term] | None,
               ) -> tuple[list[numpy.ndarray], list[numpy.ndarray], set[int]]:
        """Vectors of the positive and negative terms (words: unit vectors; vectors: as given) and
        the rows of the words among them, which results leave out."""
        def as_list(x: Any) -> list:
            if x is None:
                return []
            if isinstance(x, (str, numpy.ndarray)):
                return [x]
            return list(x)

        pos, neg = as_list(positive), as_list(negative)
        words = [t for t in pos + neg if isinstance(t, str)]
        for t in pos + neg:
            if not isinstance(t, str) and (numpy.shape(t) != (self.vector_size,) or not numpy.isfinite(t).all()):
                raise ValueError(f"a query term must be a word or a vector of {self.vector_size} finite values, got {t!r}")
        rows = self._indices(words)  # names every unknown word at once
        normed = self.get_normed_vectors()

        def vec(t: Term) -> numpy.ndarray:
            return normed[self.key_to_index[t]] if isinstance(t, str) else numpy.asarray(t, dtype=DTYPE)

        return [vec(t) for t in pos], [vec(t) for t in neg], set(rows)

    def _top(self, scores: numpy.ndarray, exclude: set[int], topn: int) -> list[tuple[str, float]]:
        """The ``topn`` highest ``scores`` (one per row of the searched vocabulary) as (word, score),
        rows in ``exclude`` left out; equal scores in row order (the more frequent word first)."""
        scores = scores.copy()
        scores[[i for i in exclude if i < len(scores)]] = -numpy.inf
        k = min(topn, len(scores) - sum(1 for i in exclude if i < len(scores)))
        if k <= 0:
            return []
        # argpartition finds the k-th best in O(V); every row scoring at least that is a candidate,
        # and sorting those by (-score, row) fixes the order of ties
        kth = numpy.partition(scores, len(scores) - k)[len(scores) - k]
        candidates = numpy.flatnonzero(scores >= kth)
        order = candidates[numpy.lexsort((candidates, -scores[candidates]))][:k]
        return [(self.index_to_key[i], float(scores[i])) for i in order]

    def most_similar(self, positive: Term | Sequence[Term] | None = (), negative: Term | Sequence[Term] | None = (),
                     topn: int | None = 10, restrict_vocab: int | None = None) -> list[tuple[str, float]] | numpy.ndarray:
        """The words nearest (by cosine) to the mean of the positive terms minus the negative ones
        (3CosAdd), as gensim's ``most_similar`` and the C tool's ``distance``/``word-analogy``.

        With ``u_w = v_w / |v_w|`` for words (a vector term is used as given), the query is
        ``q = (Σ_pos u - Σ_neg u) / (n_pos + n_neg)``, scaled to unit length, and word ``w`` scores
        ``cos(v_w, q) = u_w · q / |q|``. The words of the query are never returned.

        Args:
            positive: a word, a ``(D,)`` vector, or a list of them.
            negative: the same, subtracted.
            topn: how many (word, cosine) pairs to return, best first; None returns the ``(N,)``
                cosines of every searched word instead.
            restrict_vocab: search only the first N words (the most frequent, for trained vectors).

        Raises:
            WordNotInVocabulary: naming every unknown word of the query.
            ValueError: no terms at all.

        Example:
            >>> kv.most_similar(positive=["king", "woman"], negative=["man"], topn=1)  # doctest: +SKIP
            [('queen', 0.71)]
        """
        pos, neg, exclude = self._terms(positive, negative)
        if not pos and not neg:
            raise ValueError("most_similar needs at least one positive or negative word or vector")
        if topn is not None and topn < 1:
            return []
        query = (numpy.sum(pos, axis=0, dtype=DTYPE) if pos else 0) - (numpy.sum(neg, axis=0, dtype=DTYPE) if neg else 0)
        query = _unit(numpy.asarray(query, dtype=DTYPE) / DTYPE(len(pos) + len(neg)))
        scores = self.get_normed_vectors()[:restrict_vocab or None] @ query  # 0 or None: every word, as gensim
        return scores if topn is None else self._top(scores, exclude, topn)

    def most_similar_cosmul(self, positive: Term | Sequence[Term] | None = (), negative: Term | Sequence[Term] | None = (),
                            topn: int | None = 10, restrict_vocab: int | None = None,
                            ) -> list[tuple[str, float]] | numpy.ndarray:
        """The words ranked by Levy & Goldberg's (2014) 3CosMul, as gensim's ``most_similar_cosmul``.

        Cosines are shifted to [0, 1], ``s(w, t) = (1 + cos(v_w, t)) / 2``, and word ``w`` scores
        ``Π_pos s(w, p) / (Π_neg s(w, n) + 1e-6)``: for ``king - man + woman``,
        ``s(w, king) s(w, woman) / (s(w, man) + 1e-6)``. A product rewards a word close to every
        positive term, where 3CosAdd lets one large similarity dominate. Words stand for their unit
        vectors, vector terms are used as given (as gensim). Unlike gensim (4.4, which ignores it),
        ``restrict_vocab`` limits the search to the first N words.

        Args:
            positive: a word, a vector, or a list of them (at least one).
            negative: the same, in the denominator.
            topn: how many (word, score) pairs to return; None returns every searched word's score.
            restrict_vocab: search only the first N words.

        Raises:
            WordNotInVocabulary: naming every unknown word of the query.
            ValueError: no positive term.
        """
        pos, neg, exclude = self._terms(positive, negative)
        if not pos:
            raise ValueError("most_similar_cosmul needs at least one positive word or vector")
        if topn is not None and topn < 1:
            return []
        normed = self.get_normed_vectors()[:restrict_vocab or None]  # 0 or None: every word, as gensim
        shifted = [(1 + normed @ t) / 2 for t in pos + neg]
        scores = numpy.prod(shifted[:len(pos)], axis=0) / (numpy.prod(shifted[len(pos):], axis=0) + DTYPE(1e-6))
        return scores if topn is None else self._top(scores, exclude, topn)

    def similar_by_word(self, word: str, topn: int = 10, restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """``most_similar(positive=[word], ...)``: the nearest neighbours of one word."""
        return self.most_similar(positive=[word], topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_vector(self, vector: numpy.ndarray, topn: int = 10,
                          restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """``most_similar(positive=[vector], ...)``: the words nearest to a vector."""
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word of ``words`` least like the others: the one whose unit vector has the lowest
        cosine with the mean of all their unit vectors (as gensim's ``doesnt_match``; ties: the
        word that sorts first). Unknown words are an error here, where gensim drops them."""
        if not words:
            raise ValueError("doesnt_match needs at least one word")
        unit = self.get_normed_vectors()[self._indices(words)]
        scores = unit @ _unit(unit.mean(axis=0))
        return min(zip(scores.tolist(), words))[1]

    def analogy(self, a: str, b: str, c: str, method: str = "add", topn: int = 1,
                restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """Answer "``a`` is to ``b`` as ? is to ``c``": the words nearest to ``a - b + c``.

        ``analogy("king", "man", "woman")`` gives ``[("queen", ...)]`` (king - man + woman), and
        ``analogy("Paris", "France", "Italy")`` gives ``Rome``. The three words are never answers.

        Args:
            a, b, c: the question's words.
            method: "add" (3CosAdd, ``most_similar``) or "mul" (3CosMul, ``most_similar_cosmul``).
            topn: how many answers, best first.
            restrict_vocab: search only the first N words.

        Raises:
            WordNotInVocabulary: naming every unknown word of the three.
            ValueError: an unknown method.
        """
        if method == "add":
            return self.most_similar(positive=[a, c], negative=[b], topn=topn, restrict_vocab=restrict_vocab)
        if method == "mul":
            return self.most_similar_cosmul(positive=[a, c], negative=[b], topn=topn, restrict_vocab=restrict_vocab)
        raise ValueError(f"unknown analogy method {method!r} (expected 'add' or 'mul')")

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate_analogies(self, path: str | os.PathLike[str], restrict_vocab: int = 30000, case_insensitive: bool = True,
                           method: str = "add") -> _evaluate.AnalogyReport:
        """Accuracy on analogy questions (``questions-words.txt``) by the C tool's compute-accuracy
        rules; see ``dlia.models.word2vec.evaluate.evaluate_analogies``."""
        return _evaluate.evaluate_analogies(self, path, restrict_vocab, case_insensitive, method)

    def evaluate_pairs(self, path: str | os.PathLike[str], restrict_vocab: int = 300000,
                       case_insensitive: bool = True) -> _evaluate.PairsReport:
        """Spearman's ρ between the model's cosines and human similarity scores (WordSim-353,
        SimLex-999); see ``dlia.models.word2vec.evaluate.evaluate_pairs``."""
        return _evaluate.evaluate_pairs(self, path, restrict_vocab, case_insensitive)

    # -- files ---------------------------------------------------------------------------------

    def save_word2vec_format(self, path: str | os.PathLike[str], binary: bool = True, total_vec: int | None = None) -> None:
        """Write the C word2vec tool's binary (default) or text format, atomically; see
        ``dlia.models.word2vec.formats.save_word2vec_format``."""
        _formats.save_word2vec_format(path, self.index_to_key, self.vectors, binary=binary, total_vec=total_vec)

    @classmethod
    def load_word2vec_format(cls, path: str | os.PathLike[str], binary: bool | None = None, unicode_errors: str = "strict",
                             limit: int | None = None, dtype: Any = numpy.float32) -> KeyedVectors:
        """Read a file in the C word2vec tool's binary or text format (gensim's and ours); see
        ``dlia.models.word2vec.formats.load_word2vec_format``. Counts are None (the formats hold none)."""
        words, vectors = _formats.load_word2vec_format(path, binary=binary, unicode_errors=unicode_errors, limit=limit)
        kv = cls(words, vectors)
        if numpy.dtype(dtype) != DTYPE:  # float16 to save memory, float64 for exact arithmetic
            kv.vectors = kv.vectors.astype(dtype)
        return kv
