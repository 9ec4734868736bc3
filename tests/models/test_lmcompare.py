"""The comparison table of ``dlia lm compare``: the splits, every row, the tuned add-k, the mixture."""

from __future__ import annotations

import math

import numpy
import pytest

from dlia.models import nnlm
from dlia.models.lmcompare import CompareError, compare, read_lines, split, words_of
from dlia.models.ngram import NGramLM, build_vocab, encode_sentences


def corpus(lines: int = 200, seed: int = 0) -> list[list[str]]:
    """Sentences from a small grammar: predictable enough for the models to differ."""
    rng = numpy.random.default_rng(seed)
    subjects, verbs, objects = ["the cat", "a dog", "the old man", "my sister"], ["sees", "likes", "eats"], \
        ["the fish", "a bone", "the red apple", "bread"]
    return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}".split() for _ in range(lines)]


def test_words_split_and_lines() -> None:
    assert words_of("KING RICHARD: O'er the hills, my lord!") == ["king", "richard", "o'er", "the", "hills", "my", "lord"]
    assert read_lines("a b\n\n  \nC d\n", lowercase=True) == [["a", "b"], ["c", "d"]]
    lines = [[str(i)] for i in range(20)]
    train, valid, test = split(lines)
    assert (len(train), len(valid), len(test)) == (16, 2, 2) and train[0] == ["0"] and test[-1] == ["19"]
    with pytest.raises(CompareError, match="at least 10 lines"):
        split(lines[:5])


def test_the_n_gram_rows() -> None:
    train, valid, test = split(corpus())
    table = compare(train, valid, test, corpus="grammar", min_count=1)
    names = [r.model for r in table.rows]
    assert names[0].startswith("MLE") and names[1] == "add-k 3-gram" and any(n.startswith("Kneser-Ney 5") for n in names)
    vocab = build_vocab(train, min_count=1)
    tr, va, te = (encode_sentences(x, vocab) for x in (train, valid, test))
    kn3 = NGramLM(3, "kn").fit(tr, vocab=vocab)
    assert table.row("Kneser-Ney 3").test == pytest.approx(kn3.perplexity(te))
    k = float(table.row("add-k").note.split()[2].rstrip(","))
    best = min((1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001),
               key=lambda k: NGramLM(3, "add-k", k=k).fit(tr, vocab=vocab).perplexity(va))
    assert k == best
    text = table.markdown()
    assert "| Katz 3-gram |" in text and "80/10/10" in text and "Bengio et al. 2003" in text


def test_mle_is_infinite_on_an_unseen_bigram() -> None:
    lines = [["a", "b"]] * 16 + [["a", "b"]] * 2 + [["b", "a"]] * 2
    table = compare(*split(lines), min_count=1)
    assert math.isinf(table.row("MLE").test) and math.isfinite(table.row("Kneser-Ney 5").test)


def test_the_nnlm_and_the_mixture_rows() -> None:
    train, valid, test = split(corpus(300, seed=1))
    cfg = nnlm.NNLMConfig(order=5, embedding_dim=8, hidden=16, direct=False, batch_size=64, epochs=3, lr=1e-2, seed=0)
    table = compare(train, valid, test, min_count=1, nnlm_config=cfg)
    mixed, alone, kn5 = table.row("NNLM + Kneser"), table.row("NNLM"), table.row("Kneser-Ney 5")
    lam = table.info["lambda"]
    assert 0 <= lam <= 1
    # EM's λ is the best mixture on the validation tokens: no worse than either model alone there
    assert mixed.valid <= min(alone.valid, kn5.valid) + 1e-6
    assert table.info["gain"] == pytest.approx(1 - mixed.test / kn5.test)
    assert "λ = " in mixed.note and "parameters" in alone.note
