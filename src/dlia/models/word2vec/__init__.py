"""word2vec (Mikolov et al. 2013): word vectors, their similarity queries and analogies, the two
standard benchmarks, and the C tool's file formats (``KeyedVectors``, as in gensim)."""

from dlia.models.word2vec.evaluate import AnalogyReport, AnalogySection, EvaluationError, PairsReport
from dlia.models.word2vec.formats import FormatError
from dlia.models.word2vec.vectors import KeyedVectors, WordNotInVocabulary

__all__ = [
    "AnalogyReport",
    "AnalogySection",
    "EvaluationError",
    "FormatError",
    "KeyedVectors",
    "PairsReport",
    "WordNotInVocabulary",
]
