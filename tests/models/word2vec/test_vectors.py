"""``KeyedVectors``: similarity queries against gensim's ``KeyedVectors`` on the same vectors, the
analogy reading on planted vectors, and the messages for unknown words and bad inputs."""

from __future__ import annotations

import numpy
import pytest

from dlia.models.word2vec import KeyedVectors, WordNotInVocabulary

gensim_models = pytest.importorskip("gensim.models")

# gensim's most_similar_cosmul calls its own deprecated init_sims
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated:DeprecationWarning")

V, D = 400, 16


@pytest.fixture(scope="module")
def pair() -> tuple[KeyedVectors, object]:
    """Our vectors and gensim's twin holding the same words and float32 rows."""
    rng = numpy.random.default_rng(12)
    words = [f"w{i}" for i in range(V)]
    vectors = rng.standard_normal((V, D)).astype(numpy.float32) * rng.uniform(0.2, 3, (V, 1)).astype(numpy.float32)
    theirs = gensim_models.KeyedVectors(D)
    theirs.add_vectors(words, vectors)
    return KeyedVectors(words, vectors), theirs


def same(ours: list[tuple[str, float]], theirs: list[tuple[str, float]]) -> None:
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    numpy.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5, atol=1e-6)


QUERIES = [
    dict(positive=["w1"]),
    dict(positive=["w1", "w2"], negative=["w3"]),
    dict(positive="w7", negative="w8"),  # a single word, not a list
    dict(negative=["w5"]),
    dict(positive=["w10", "w11", "w12"], negative=["w13", "w14"], topn=25),
    dict(positive=["w1", "w2"], negative=["w3"], restrict_vocab=150),
    dict(positive=["w300", "w2"], negative=["w3"], restrict_vocab=100),  # an input word beyond the searched words
]


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_most_similar_equals_gensim(pair, query) -> None:
    ours, theirs = pair
    same(ours.most_similar(**query), theirs.most_similar(**query))


def test_most_similar_takes_vectors_as_gensim(pair) -> None:
    ours, theirs = pair
    v = numpy.random.default_rng(1).standard_normal(D).astype(numpy.float32) * 4  # not unit: used as given
    for query in (dict(positive=[v]), dict(positive=[v, "w4"], negative=["w9"]), dict(positive=["w4"], negative=[v])):
        same(ours.most_similar(**query), theirs.most_similar(**query))
    same(ours.similar_by_vector(v, topn=5), theirs.similar_by_vector(v, topn=5))
    same(ours.similar_by_word("w3", topn=5), theirs.similar_by_word("w3", topn=5))


def test_most_similar_topn_none_gives_every_cosine(pair) -> None:
    ours, theirs = pair
    numpy.testing.assert_allclose(ours.most_similar(["w1"], ["w2"], topn=None), theirs.most_similar(["w1"], ["w2"], topn=None),
                                  rtol=1e-5, atol=1e-6)
    assert ours.most_similar(["w1"], topn=None, restrict_vocab=50).shape == (50,)
    assert ours.most_similar(["w1"], topn=0) == []


@pytest.mark.parametrize("query", [dict(positive=["w1", "w2"], negative=["w3"]), dict(positive=["w6"]),
                                   dict(positive=["w1", "w20"], negative=["w3", "w30"], topn=20)])
def test_most_similar_cosmul_equals_gensim(pair, query) -> None:
    ours, theirs = pair
    same(ours.most_similar_cosmul(**query), theirs.most_similar_cosmul(**query))


def test_most_similar_cosmul_restrict_vocab_searches_the_first_words(pair) -> None:
    # gensim 4.4 ignores restrict_vocab here; its answer on the first 120 words alone is the oracle
    ours, _ = pair
    first = gensim_models.KeyedVectors(D)
    first.add_vectors(ours.index_to_key[:120], ours.vectors[:120])
    query = dict(positive=["w1", "w2"], negative=["w3"], topn=10)
    same(ours.most_similar_cosmul(**query, restrict_vocab=120), first.most_similar_cosmul(**query))
    same(ours.most_similar(**query, restrict_vocab=120), first.most_similar(**query))


def test_similarity_distance_and_doesnt_match_equal_gensim(pair) -> None:
    ours, theirs = pair
    for a, b in [("w1", "w2"), ("w5", "w5"), ("w399", "w0")]:
        assert ours.similarity(a, b) == pytest.approx(float(theirs.similarity(a, b)), abs=1e-6)
        assert ours.distance(a, b) == pytest.approx(float(theirs.distance(a, b)), abs=1e-6)
    assert ours.n_similarity(["w1", "w2"], ["w3"]) == pytest.approx(float(theirs.n_similarity(["w1", "w2"], ["w3"])), abs=1e-6)
    rng = numpy.random.default_rng(3)
    for _ in range(30):
        words = [f"w{i}" for i in rng.choice(V, size=rng.integers(3, 8), replace=False)]
        assert ours.doesnt_match(words) == theirs.doesnt_match(words)


def planted() -> KeyedVectors:
    """man, woman, king, queen on a parallelogram (gender G, royalty R) among random words."""
    rng = numpy.random.default_rng(5)
    base, g, r = (rng.standard_normal(32) for _ in range(3))
    words = ["man", "woman", "king", "queen", "boy", "girl"]
    rows = [base, base + g, base + r, base + g + r, base - r, base - r + g]
    words += [f"noise{i}" for i in range(200)]
    rows += list(rng.standard_normal((200, 32)) * 2)
    return KeyedVectors(words, numpy.array(rows))


def test_analogy_reads_a_is_to_b_as_what_is_to_c() -> None:
    kv = planted()
    assert kv.analogy("king", "man", "woman")[0][0] == "queen"  # king - man + woman
    assert kv.analogy("king", "man", "woman", method="mul")[0][0] == "queen"
    assert kv.analogy("man", "king", "queen")[0][0] == "woman"  # man - king + queen
    assert kv.analogy("boy", "man", "woman")[0][0] == "girl"  # (base - R) - base + (base + G)
    assert [w for w, _ in kv.analogy("king", "man", "woman", topn=3)] == \
        [w for w, _ in kv.most_similar(positive=["king", "woman"], negative=["man"], topn=3)]
    assert kv.analogy("king", "man", "woman", restrict_vocab=3) == []  # the first 3 words are the question's
    assert kv.analogy("king", "man", "woman", restrict_vocab=4)[0][0] == "queen"
    with pytest.raises(ValueError, match="unknown analogy method 'sub'"):
        kv.analogy("king", "man", "woman", method="sub")


def test_input_words_are_never_answers_and_ties_keep_vocabulary_order() -> None:
    rows = numpy.array([[1, 0], [1, 0], [1, 0], [0, 1], [1, 0.001]], dtype=numpy.float32)
    kv = KeyedVectors(["a", "b", "c", "d", "e"], rows)
    assert [w for w, _ in kv.most_similar("b", topn=4)] == ["a", "c", "e", "d"]  # a and c tie: row order
    assert kv.most_similar("a", topn=10)[-1][0] == "d"
    assert len(kv.most_similar("a", topn=10)) == 4


def test_zero_vectors_give_zero_similarity_not_nan() -> None:
    kv = KeyedVectors(["a", "b", "zero"], numpy.array([[1, 0], [0.6, 0.8], [0, 0]]))
    normed = kv.get_normed_vectors()
    assert numpy.isfinite(normed).all() and (normed[2] == 0).all()
    numpy.testing.assert_allclose(numpy.linalg.norm(normed[:2], axis=1), 1, rtol=1e-6)
    assert kv.similarity("a", "zero") == 0.0
    assert kv.most_similar("zero") == [("a", 0.0), ("b", 0.0)]
    assert kv.most_similar("a")[0] == ("b", pytest.approx(0.6))


def test_vocabulary_access() -> None:
    kv = KeyedVectors(["a", "b", "c"], numpy.arange(6).reshape(3, 2), counts=numpy.array([5, 3, 1]))
    assert len(kv) == 3 and "b" in kv and "z" not in kv and kv.vector_size == 2
    assert kv.vectors.dtype == numpy.float32 and kv.counts.dtype == numpy.int64
    assert kv.index_to_key == ["a", "b", "c"] and kv.key_to_index == {"a": 0, "b": 1, "c": 2}
    assert kv.get_index("c") == 2
    assert kv["b"].tolist() == [2, 3]
    assert kv[["c", "a"]].tolist() == [[4, 5], [0, 1]]
    numpy.testing.assert_allclose(kv.get_vector("b", norm=True), numpy.array([2, 3]) / numpy.sqrt(13), rtol=1e-6)
    assert repr(kv) == "KeyedVectors(3 words, 2 dimensions)"


def test_unknown_words_are_named_in_one_line() -> None:
    kv = KeyedVectors([f"w{i}" for i in range(12345)], numpy.ones((12345, 2)))
    with pytest.raises(WordNotInVocabulary) as e:
        kv["foo"]
    assert str(e.value) == "word 'foo' is not in the vocabulary (12,345 words)"
    assert not isinstance(e.value, KeyError) and isinstance(e.value, ValueError)
    assert e.value.words == ["foo"]
    with pytest.raises(WordNotInVocabulary, match=r"^words 'foo', 'bar' are not in the vocabulary \(12,345 words\)$"):
        kv.most_similar(positive=["foo", "w1"], negative=["bar"])
    for call in (lambda: kv.similarity("w1", "nope"), lambda: kv.analogy("w1", "nope", "w2"), lambda: kv.get_vector("nope"),
                 lambda: kv.doesnt_match(["w1", "nope"]), lambda: kv[["w1", "nope"]], lambda: kv.most_similar_cosmul("nope"),
                 lambda: kv.get_index("nope")):
        with pytest.raises(WordNotInVocabulary, match="'nope'"):
            call()


def test_bad_construction_and_queries_are_refused() -> None:
    with pytest.raises(ValueError, match=r"3 words but 2 vectors"):
        KeyedVectors(["a", "b", "c"], numpy.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"word 'a' appears twice \(rows 0 and 2\)"):
        KeyedVectors(["a", "b", "a"], numpy.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        KeyedVectors(["a", "b", "c"], numpy.zeros(3))
    with pytest.raises(ValueError, match="at least one word"):
        KeyedVectors([], numpy.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"vector of 'b' \(row 1\) holds NaN"):
        KeyedVectors(["a", "b"], numpy.array([[0.0, 1.0], [numpy.nan, 0.0]]))
    with pytest.raises(ValueError, match="words must be strings"):
        KeyedVectors(["a", 2], numpy.zeros((2, 4)))
    with pytest.raises(ValueError, match="counts must be 2 non-negative integers"):
        KeyedVectors(["a", "b"], numpy.zeros((2, 4)), counts=numpy.array([1, -1]))
    kv = KeyedVectors(["a", "b"], numpy.eye(2))
    with pytest.raises(ValueError, match="at least one positive or negative"):
        kv.most_similar()
    with pytest.raises(ValueError, match="at least one positive"):
        kv.most_similar_cosmul(negative=["a"])
    with pytest.raises(ValueError, match="a word or a vector of 2 finite values"):
        kv.most_similar(positive=[numpy.zeros(3)])
    with pytest.raises(ValueError, match="a word or a vector of 2 finite values"):
        kv.most_similar(positive=["a", numpy.array([numpy.nan, 1.0])])


def test_restrict_vocab_zero_means_every_word_as_in_gensim() -> None:


    rng = numpy.random.default_rng(0)
    kv = KeyedVectors([f"w{i}" for i in range(20)], rng.normal(size=(20, 5)).astype(numpy.float32))
    assert kv.most_similar("w3", restrict_vocab=0) == kv.most_similar("w3")
    assert kv.most_similar_cosmul("w3", restrict_vocab=0) == kv.most_similar_cosmul("w3")
