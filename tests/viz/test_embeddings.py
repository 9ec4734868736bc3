"""Pictures of word vectors (dlia.viz.embeddings): the pair lists and their file format, the PCA
projection (against numpy.linalg.eigh of the covariance and a planted 2-D structure), and the two
pictures: arrows per usable pair, skipped pairs reported, planted relations drawn as parallel arrows,
the similarity bars, formats and bad input."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy
import pytest

from dlia.text.chars import TextError
from dlia.viz import embeddings
from dlia.viz.embeddings import (
    BUILTIN_PAIRS,
    PairsError,
    lookup_vectors,
    neighbours_plot,
    pairs,
    pairs_plot,
    parse_pairs,
    pca_2d,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def planted_pair_vectors(word_pairs: Sequence[tuple[str, str]], dim: int = 50, offset_scale: float = 3.0,
                         noise: float = 0.0, seed: int = 0) -> tuple[list[str], numpy.ndarray]:
    """Vectors where every relation is one offset: v(second) = v(first) + o (+ noise), the first words
    drawn from N(0, I). Returns (words, (V, dim) float32 matrix) as a KeyedVectors' index_to_key and
    vectors. The picture in docs/word2vec.md was made from these (see the "Pictures" section)."""
    rng = numpy.random.default_rng(seed)
    o = rng.normal(size=dim)
    o *= offset_scale / numpy.linalg.norm(o) * numpy.sqrt(dim) / 2
    vec: dict[str, numpy.ndarray] = {}
    for a, b in word_pairs:
        vec.setdefault(a, rng.normal(size=dim))
        vec.setdefault(b, vec[a] + o + noise * rng.normal(size=dim))
    words = list(vec)
    return words, numpy.stack([vec[w] for w in words]).astype(numpy.float32)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[list[dict]]:
    """What each picture drew, read from its figure as it is handed to ``save`` (still open): per axis
    its patches, bar containers, y tick labels and free texts."""
    figs: list[list[dict]] = []
    real = embeddings.save

    def spy(fig, path):
        figs.append([{"patches": list(ax.patches), "bars": list(ax.containers),
                      "yticks": [t.get_text() for t in ax.get_yticklabels()], "texts": [t.get_text() for t in ax.texts]}
                     for ax in fig.axes])
        return real(fig, path)

    monkeypatch.setattr(embeddings, "save", spy)
    return figs


# ---------------------------------------------------------------------------------------------------
# pair lists


def test_parse_pairs_spaces_tabs_comments_and_blank_lines():
    text = "# family\n\nking queen\r\nman\twoman   # the classic\n  uncle    aunt  \n\t\n#brother sister\n"
    assert parse_pairs(text) == [("king", "queen"), ("man", "woman"), ("uncle", "aunt")]


@pytest.mark.parametrize("text, line, what", [
    ("king queen\nman\n", 2, "found one word: 'man'"),
    ("king queen woman\n", 1, "found 3 words"),
    ("# c\n\nking king\n", 3, "same word twice ('king')"),
    ("king queen\nman woman\nking queen\n", 3, "already on line 1"),
])
def test_parse_pairs_names_the_bad_line(text, line, what):
    with pytest.raises(PairsError) as e:
        parse_pairs(text, source="my.pairs")
    assert str(e.value).startswith(f"my.pairs, line {line}: ")
    assert what in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n   # another\n"])
def test_parse_pairs_refuses_a_list_without_pairs(text):
    with pytest.raises(PairsError, match=r"^my\.pairs holds no word pairs"):
        parse_pairs(text, source="my.pairs")


def test_reversed_pair_is_a_different_pair():
    assert parse_pairs("king queen\nqueen king\n") == [("king", "queen"), ("queen", "king")]


@pytest.mark.parametrize("name", sorted(BUILTIN_PAIRS))
def test_builtin_lists(name, tmp_path):
    got = pairs(name)
    assert len(got) >= 10
    assert len(set(got)) == len(got)
    assert all(a != b and a == a.lower() and b == b.lower() and a.isalpha() and b.isalpha() for a, b in got)
    assert len({w for p in got for w in p}) == 2 * len(got)  # each word in one pair: one point per word
    # written out as a pairs file, each list reads back the same
    f = tmp_path / f"{name}.txt"
    f.write_text("".join(f"{a}\t{b}\n" for a, b in got), encoding="utf-8")
    assert pairs(f) == got


def test_builtin_lists_are_mostly_words_of_the_analogy_sections():
    """Most pairs come from the analogy test set's matching section (a pair, or its two words in two
    questions' same roles), so a model evaluated on it knows them."""
    path = DATA / "questions-words.txt"
    if not path.exists():
        pytest.skip("../shared/data/questions-words.txt is not here")
    section, firsts, seconds = None, {}, {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        a, b, c, d = line.lower().split()
        firsts.setdefault(section, set()).update((a, c))
        seconds.setdefault(section, set()).update((b, d))
    for name, section, swap in [("male-female", "family", False), ("verb-tense", "gram7-past-tense", False),
                                ("country-capital", "capital-common-countries", True)]:
        f, s = (seconds[section], firsts[section]) if swap else (firsts[section], seconds[section])
        known = [(a, b) for a, b in pairs(name) if a in f and b in s]
        assert len(known) >= 0.6 * len(pairs(name)), (name, known)


def test_pairs_reads_a_file_and_lowercases(tmp_path):
    f = tmp_path / "mine.pairs"
    f.write_bytes("\ufeffKing Queen\nParis France\nÉcole Schule\n".encode())
    assert pairs(f) == [("King", "Queen"), ("Paris", "France"), ("École", "Schule")]
    assert pairs(str(f), lowercase=True) == [("king", "queen"), ("paris", "france"), ("école", "schule")]


def test_pairs_malformed_file_names_file_and_line(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_text("king queen\nman woman child\n", encoding="utf-8")
    with pytest.raises(PairsError, match=rf"^{f}, line 2: expected two words"):
        pairs(f)


def test_pairs_unknown_name_lists_the_builtin_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PairsError, match=r"^no pair list or file named 'male-femal'; use one of male-female, verb-tense, "
                                         r"country-capital or a file of pairs$"):
        pairs("male-femal")


def test_builtin_name_wins_over_a_file_of_that_name_unless_written_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "verb-tense").write_text("a b\nc d\n", encoding="utf-8")
    assert pairs("verb-tense") == list(BUILTIN_PAIRS["verb-tense"])
    assert pairs("./verb-tense") == [("a", "b"), ("c", "d")]


@pytest.mark.parametrize("make, match", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(b""), "is empty"),
    (lambda p: p.write_bytes(b"king queen\nfran\xe7ais paris\n"), "is not UTF-8 text .byte 0xE7 at offset 15"),
])
def test_pairs_file_that_cannot_be_read(tmp_path, make, match):
    p = tmp_path / "pairs.txt"
    make(p)
    with pytest.raises(TextError, match=match):
        pairs(p)
    assert issubclass(TextError, ValueError)


# ---------------------------------------------------------------------------------------------------
# the vectors, in their three shapes


class FakeKeyedVectors:
    def __init__(self, words, matrix):
        self.index_to_key = list(words)
        self.key_to_index = {w: i for i, w in enumerate(words)}
        self.vectors = matrix


def test_three_vector_sources_agree_and_unknown_words_are_absent():
    words, m = planted_pair_vectors([("a", "b"), ("c", "d")], dim=4)
    row = dict(zip(words, m))

    def lookup(ws):
        found = [w for w in reversed(ws) if w in row]
        return found, numpy.stack([row[w] for w in found])

    for source in [(words, m), FakeKeyedVectors(words, m), lookup]:
        got = lookup_vectors(source, ["d", "zz", "a", "d"])
        assert list(got) == ["d", "a"]
        assert got["d"].dtype == numpy.float64
        numpy.testing.assert_array_equal(got["a"], m[0])
        numpy.testing.assert_array_equal(got["d"], m[3])


def test_gensim_keyed_vectors_work_as_they_are():
    gensim_models = pytest.importorskip("gensim.models")
    words, m = planted_pair_vectors(BUILTIN_PAIRS["male-female"], dim=8)
    kv = gensim_models.KeyedVectors(8)
    kv.add_vectors(words, m)
    got = lookup_vectors(kv, ["queen", "nosuchword", "king"])
    assert list(got) == ["queen", "king"]
    numpy.testing.assert_array_equal(got["king"], m[words.index("king")])


@pytest.mark.parametrize("source, match", [
    ((["a", "b"], numpy.zeros((3, 2))), r"2 words but a vector matrix of shape \(3, 2\)"),
    ((["a", "a"], numpy.zeros((2, 2))), "1 repeated words"),
    ((["a", "b"], numpy.array([[0.0, 1.0], [numpy.nan, 0.0]])), "the vector of 'b' holds NaN"),
    (lambda ws: (["a"], numpy.zeros((2, 3))), r"lookup returned 1 words but a matrix of shape \(2, 3\)"),
    ({"a": [1.0]}, "cannot read vectors from a dict"),
])
def test_bad_vector_sources(source, match):
    with pytest.raises(ValueError, match=match):
        lookup_vectors(source, ["a", "b"])


# ---------------------------------------------------------------------------------------------------
# PCA


def test_pca_matches_the_eigenvectors_of_the_covariance():
    rng = numpy.random.default_rng(1)
    x = rng.normal(size=(30, 6)) @ rng.normal(size=(6, 6)) + 5.0
    coords, components, explained = pca_2d(x)
    c = x - x.mean(axis=0)
    values, vectors = numpy.linalg.eigh(c.T @ c / len(x))  # ascending
    for i in range(2):
        e = vectors[:, -1 - i]
        assert abs(abs(components[i] @ e) - 1) < 1e-10  # the same axis, up to sign
        numpy.testing.assert_allclose(numpy.abs(coords[:, i]), numpy.abs(c @ e), atol=1e-10)
    numpy.testing.assert_allclose(explained, values[::-1][:2] / values.sum(), rtol=1e-10)
    numpy.testing.assert_allclose(components @ components.T, numpy.eye(2), atol=1e-12)


def test_pca_signs_are_deterministic():
    rng = numpy.random.default_rng(2)
    x = rng.normal(size=(12, 5)) * [5, 3, 1, 0.5, 0.1]
    coords, components, _ = pca_2d(x)
    for c in components:  # the largest-magnitude loading of each axis is positive
        assert c[numpy.argmax(numpy.abs(c))] > 0
    # the same points in another order, or mirrored through the origin, give the same axes
    perm = rng.permutation(len(x))
    coords_p, components_p, _ = pca_2d(x[perm])
    numpy.testing.assert_allclose(components_p, components, atol=1e-12)
    numpy.testing.assert_allclose(coords_p, coords[perm], atol=1e-12)
    coords_m, components_m, _ = pca_2d(-x)
    numpy.testing.assert_allclose(components_m, components, atol=1e-12)
    numpy.testing.assert_allclose(coords_m, -coords, atol=1e-12)


def test_pca_recovers_a_planted_plane():
    """Points of a plane rotated into 20-D come back with all their distances (the picture is the
    plane itself, up to rotation and reflection) and 100% of the variance."""
    rng = numpy.random.default_rng(3)
    y = rng.normal(size=(25, 2)) * [4.0, 1.0]
    q, _ = numpy.linalg.qr(rng.normal(size=(20, 2)))
    x = y @ q.T + rng.normal(size=20)
    coords, _, explained = pca_2d(x)
    dist = lambda p: numpy.linalg.norm(p[:, None] - p[None], axis=-1)  # noqa: E731
    numpy.testing.assert_allclose(dist(coords), dist(y), atol=1e-9)
    numpy.testing.assert_allclose(explained.sum(), 1.0, atol=1e-12)


@pytest.mark.parametrize("x", [numpy.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]), numpy.array([[1.0], [3.0], [2.0]]),
                               numpy.array([[0.1, 0.2, 0.3, 0.4]]) * numpy.arange(7.0)[:, None] + 1.0])
def test_pca_of_points_on_a_line_has_a_zero_second_axis(x):
    coords, components, explained = pca_2d(x)
    assert coords.shape == (len(x), 2)
    numpy.testing.assert_array_equal(coords[:, 1], 0.0)
    numpy.testing.assert_array_equal(components[1], 0.0)
    numpy.testing.assert_allclose(explained, [1.0, 0.0])


# ---------------------------------------------------------------------------------------------------
# the pairs picture


def _cosines_to_mean(offsets: numpy.ndarray) -> numpy.ndarray:
    mean = offsets.mean(axis=0)
    return offsets @ mean / (numpy.linalg.norm(offsets, axis=1) * numpy.linalg.norm(mean))


def test_a_planted_relation_gives_parallel_arrows(tmp_path):
    """When every pair differs by one offset (plus a little noise), the projected offsets are nearly
    parallel and of nearly equal length; unrelated pairs (the control) are not."""
    word_pairs = BUILTIN_PAIRS["country-capital"]
    words, m = planted_pair_vectors(word_pairs, dim=100, noise=0.1, seed=4)
    r = pairs_plot(word_pairs, (words, m), tmp_path / "planted.png")
    offsets = numpy.array([numpy.subtract(r.coords[b], r.coords[a]) for a, b in word_pairs])
    assert _cosines_to_mean(offsets).min() > 0.98
    lengths = numpy.linalg.norm(offsets, axis=1)
    assert lengths.std() / lengths.mean() < 0.05
    # control: the same words with the pairs shuffled carry no common offset
    rng = numpy.random.default_rng(0)
    control = list(zip([a for a, _ in word_pairs], rng.permutation([b for _, b in word_pairs])))
    unrelated = planted_pair_vectors(word_pairs, dim=100, offset_scale=0.0, seed=4)
    r = pairs_plot(control, unrelated, tmp_path / "control.png")
    offsets = numpy.array([numpy.subtract(r.coords[b], r.coords[a]) for a, b in control])
    assert _cosines_to_mean(offsets).min() < 0.5


def test_coords_are_the_pca_of_the_used_words(tmp_path):
    word_pairs = [("a", "b"), ("c", "d"), ("e", "f")]
    words, m = planted_pair_vectors(word_pairs, dim=7, seed=5)
    r = pairs_plot(word_pairs, (words, m), tmp_path / "p.png")
    coords, _, _ = pca_2d(m.astype(numpy.float64))
    for i, w in enumerate(words):
        numpy.testing.assert_allclose(r.coords[w], coords[i], atol=1e-9)
    # normalize=True projects the unit vectors instead
    r = pairs_plot(word_pairs, (words, m), tmp_path / "n.png", normalize=True)
    unit = m / numpy.linalg.norm(m, axis=1, keepdims=True)
    coords, _, _ = pca_2d(unit.astype(numpy.float64))
    for i, w in enumerate(words):
        numpy.testing.assert_allclose(r.coords[w], coords[i], atol=1e-6)


def test_one_arrow_per_usable_pair_and_skipped_pairs_reported(tmp_path, captured):
    word_pairs = list(BUILTIN_PAIRS["male-female"])
    words, m = planted_pair_vectors(word_pairs, dim=10)
    keep = [i for i, w in enumerate(words) if w not in ("aunt", "lord", "lady")]
    r = pairs_plot(word_pairs + [("king", "zebra")], ([words[i] for i in keep], m[keep]), tmp_path / "mf.svg")
    assert r.skipped == [("uncle", "aunt"), ("lord", "lady"), ("king", "zebra")]
    assert r.missing == ["aunt", "lord", "lady", "zebra"]
    assert r.used == [p for p in word_pairs if p not in r.skipped]
    assert set(r.coords) == {w for p in r.used for w in p}
    (ax,) = captured[-1]
    assert sum(type(p).__name__ == "FancyArrowPatch" for p in ax["patches"]) == len(r.used) == 13
    assert "skipped (no vector): aunt, lord, lady, zebra" in ax["texts"]
    assert r.path.read_bytes().startswith(b"<?xml")


def test_a_word_in_two_pairs_is_one_point(tmp_path, captured):
    word_pairs = [("king", "queen"), ("king", "man"), ("man", "woman")]
    words, m = planted_pair_vectors([("king", "queen"), ("man", "woman")], dim=5)
    r = pairs_plot(word_pairs, (words, m), tmp_path / "p.png")
    assert sorted(r.coords) == ["king", "man", "queen", "woman"]
    (ax,) = captured[-1]
    assert sum(type(p).__name__ == "FancyArrowPatch" for p in ax["patches"]) == 3
    assert not any(t.startswith("skipped") for t in ax["texts"])


def test_fewer_than_two_usable_pairs_is_refused(tmp_path):
    words, m = planted_pair_vectors([("king", "queen")], dim=5)
    with pytest.raises(PairsError, match=r"^need at least 2 pairs whose words both have vectors, found 1 of 3; "
                                         r"unknown words: uncle, aunt, niece$"):
        pairs_plot([("king", "queen"), ("uncle", "aunt"), ("king", "niece")], (words, m), tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".svg", b"<?xml")])
def test_pictures_are_written_as_their_suffix_asks(tmp_path, suffix, magic):
    words, m = planted_pair_vectors(BUILTIN_PAIRS["verb-tense"], dim=6)
    r = pairs_plot(BUILTIN_PAIRS["verb-tense"], (words, m), tmp_path / f"p{suffix}", title="tense")
    assert r.path == tmp_path / f"p{suffix}"
    assert r.path.read_bytes().startswith(magic)
    n = neighbours_plot("walking", [("walked", 0.9), ("running", 0.5)], (words, m), tmp_path / f"n{suffix}")
    assert n.path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


def test_unknown_suffix_is_refused_before_anything_is_drawn(tmp_path):
    def lookup(ws):
        raise AssertionError("looked up words for a picture that cannot be written")

    with pytest.raises(ValueError, match=r"cannot write a \.bmp picture; use one of \.png, \.svg"):
        pairs_plot(BUILTIN_PAIRS["verb-tense"], lookup, tmp_path / "p.bmp")
    with pytest.raises(ValueError, match=r"cannot write a \.txt picture"):
        neighbours_plot("a", [("b", 0.5)], lookup, tmp_path / "n.txt")
    assert list(tmp_path.iterdir()) == []


def test_two_dimensional_vectors_are_drawn_as_they_are(tmp_path):
    words = ["a", "b", "c", "d"]
    m = numpy.array([[0.0, 0.0], [1.0, 2.0], [5.0, 0.0], [6.0, 2.0]])
    r = pairs_plot([("a", "b"), ("c", "d")], (words, m), tmp_path / "p.png")
    assert r.coords == {"a": (0.0, 0.0), "b": (1.0, 2.0), "c": (5.0, 0.0), "d": (6.0, 2.0)}


# ---------------------------------------------------------------------------------------------------
# the neighbours picture


def test_neighbours_picture(tmp_path, captured):
    rng = numpy.random.default_rng(6)
    words = ["king", "queen", "prince", "man", "throne"]
    m = rng.normal(size=(5, 8)) * rng.uniform(0.5, 3, size=(5, 1))
    neighbours = [("man", 0.41), ("king", 1.0), ("queen", 0.83), ("ghost", 0.2), ("prince", 0.77), ("throne", -0.05)]
    r = neighbours_plot("king", neighbours, (words, m), tmp_path / "n.png")
    # sorted, the query word itself dropped, the unknown neighbour kept in the bars and reported
    assert r.neighbours == [("queen", 0.83), ("prince", 0.77), ("man", 0.41), ("ghost", 0.2), ("throne", -0.05)]
    assert r.missing == ["ghost"]
    # the projection is the PCA of the unit vectors of the word and its known neighbours
    order = ["king", "queen", "prince", "man", "throne"]
    unit = numpy.stack([m[words.index(w)] for w in order])
    unit /= numpy.linalg.norm(unit, axis=1, keepdims=True)
    coords, _, _ = pca_2d(unit)
    assert list(r.coords) == order
    for i, w in enumerate(order):
        numpy.testing.assert_allclose(r.coords[w], coords[i], atol=1e-9)
    # the bar chart draws the given similarities, most similar on top, the unknown word starred
    projection, bars = captured[-1]
    assert [p.get_width() for p in bars["bars"][0].patches] == [0.83, 0.77, 0.41, 0.2, -0.05]
    assert bars["yticks"] == ["queen", "prince", "man", "ghost *", "throne"]
    assert {"king", "queen 0.83", "prince 0.77", "man 0.41", "throne -0.05"} <= set(projection["texts"])


def test_neighbours_without_vectors_is_a_bar_chart(tmp_path, captured):
    r = neighbours_plot("king", [("queen", 0.8), ("prince", 0.7)], None, tmp_path / "n.png")
    assert r.coords == {} and r.missing == []
    assert len(captured[-1]) == 1  # one axis: the bars
    assert r.path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("word, neighbours, match", [
    ("king", [], r"^no neighbours of 'king' to draw$"),
    ("king", [("king", 1.0)], r"^no neighbours of 'king' to draw$"),
    ("king", [("queen", float("nan"))], r"^the similarity of neighbour 'queen' is nan, not a finite number$"),
    ("king", [("queen", "high")], r"^the similarity of neighbour 'queen' is not a number: 'high'$"),
    ("kingg", [("queen", 0.5)], r"^'kingg' has no vector, so its neighbours cannot be placed around it$"),
])
def test_neighbours_bad_input(tmp_path, word, neighbours, match):
    words, m = planted_pair_vectors([("king", "queen")], dim=4)
    with pytest.raises(PairsError, match=match):
        neighbours_plot(word, neighbours, (words, m), tmp_path / "n.png")
    assert not (tmp_path / "n.png").exists()
