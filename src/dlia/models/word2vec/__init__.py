"""word2vec (Mikolov et al. 2013): training CBOW and skip-gram, and word vectors to query."""

from dlia.models.word2vec.train import Word2Vec, Word2VecConfig, Word2VecError

__all__ = ["Word2Vec", "Word2VecConfig", "Word2VecError"]
