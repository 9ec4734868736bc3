"""Text for language models: reading a corpus safely and turning it into integer ids.

Two token levels, shared by every text model:

- characters (``CharVocab``, ``read_text``; char-rnn): Unicode code points, the whole text in memory;
- words (``WordVocab``, ``count_words``, ``encode_corpus``; word2vec, and the word-level language
  models and seq2seq to come): whitespace-separated tokens, frequency-sorted vocabularies, and a
  corpus file of any size read in blocks, never whole.

And for sequence-to-sequence tasks: corpus-level BLEU (``corpus_bleu``, ``sentence_bleu``) and a
reader of parallel "source<TAB>target" files (``read_parallel_tsv``).
"""

from dlia.text.bleu import BleuScore, corpus_bleu, sentence_bleu
from dlia.text.chars import CharVocab, TextError, read_text
from dlia.text.parallel import ParallelFormatError, read_parallel_tsv
from dlia.text.words import (
    MAX_SENTENCE_LENGTH,
    CorpusCounts,
    EncodedCorpus,
    VocabError,
    WordVocab,
    count_words,
    encode_corpus,
    tokenize,
)

__all__ = [
    "MAX_SENTENCE_LENGTH", "BleuScore", "CharVocab", "CorpusCounts", "EncodedCorpus", "ParallelFormatError", "TextError",
    "VocabError", "WordVocab",
    "corpus_bleu", "count_words", "encode_corpus", "read_parallel_tsv", "read_text", "sentence_bleu", "tokenize",
]
