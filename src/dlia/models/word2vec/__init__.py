"""word2vec (Mikolov et al. 2013): training CBOW and skip-gram (``Word2Vec``), word vectors with
their similarity queries and analogies (``KeyedVectors``, as in gensim), the two standard
benchmarks, and the C tool's file formats."""

from dlia.models.word2vec.evaluate import AnalogyReport, AnalogySection, EvaluationError, PairsReport
from dlia.models.word2vec.formats import FormatError
from dlia.models.word2vec.train import Word2Vec, Word2VecConfig, Word2VecError
from dlia.models.word2vec.vectors import KeyedVectors, WordNotInVocabulary

__all__ = [
    "AnalogyReport",
    "AnalogySection",
    "EvaluationError",
    "FormatError",
    "KeyedVectors",
    "PairsReport",
    "Word2Vec",
    "Word2VecConfig",
    "Word2VecError",
    "WordNotInVocabulary",
]
