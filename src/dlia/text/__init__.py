"""Text for language models: reading a corpus safely and turning it into integer ids.

For now the character level (``CharVocab``, used by char-rnn); word vocabularies for word2vec,
language models and seq2seq will live here too.
"""

from dlia.text.chars import CharVocab, TextError, read_text

__all__ = ["CharVocab", "TextError", "read_text"]
