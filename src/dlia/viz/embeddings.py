"""Pictures of word vectors: related pairs projected to 2-D with arrows between their members (the
"word2vec visualizations" of Mikolov et al. 2013: male–female, verb tense, country–capital), and a
word with its nearest neighbours.

Viz sits beside ``dlia.models``, not above it, so nothing here imports the word2vec model. Every
function takes the vectors as plain data, in any of three shapes (``VectorSource``):

- ``(words, matrix)``: a sequence of V words and a (V, D) float array whose row i is ``words[i]``
  (a KeyedVectors' ``index_to_key`` and ``vectors``);
- an object with ``vectors`` and ``key_to_index`` or ``index_to_key`` (a dlia or gensim
  KeyedVectors itself);
- a callable ``lookup(words) -> (found, matrix)`` returning the words it knows, in any order, and
  their rows.

The projection is PCA: the vectors of the drawn words are centred and their two leading right
singular vectors become the axes, so distances and directions in the picture are the largest-variance
view of those words only (not of the whole vocabulary). Vectors that already have 2 dimensions
are drawn as they are.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy

from dlia.text.chars import read_text
from dlia.viz.plots import _pyplot, plot_format, save

Pair = tuple[str, str]
#: the vectors to draw: (words, (V, D) matrix), an object with ``vectors`` and ``key_to_index`` /
#: ``index_to_key`` (a KeyedVectors), or ``lookup(words) -> (found words, (len(found), D) matrix)``
VectorSource = tuple[Sequence[str], numpy.ndarray] | Callable[[list[str]], tuple[Sequence[str], numpy.ndarray]] | Any


class PairsError(ValueError):
    """A list of word pairs that cannot be used (unknown name, malformed line, nothing to draw); the
    message names the file or list, the line and what is wrong."""


# The lecture's three relations, as in the figures of Mikolov et al. (2013). Mostly words of the
# analogy test set's "family", "gram7-past-tense" and "capital-common-countries" sections, picked for
# being frequent in English text so that a model trained on a small corpus still knows most of them.
# The first word of a pair is where its arrow starts.
BUILTIN_PAIRS: dict[str, tuple[Pair, ...]] = {
    "male-female": (
        ("king", "queen"), ("man", "woman"), ("uncle", "aunt"), ("brother", "sister"), ("father", "mother"),
        ("son", "daughter"), ("boy", "girl"), ("husband", "wife"), ("prince", "princess"), ("he", "she"),
        ("his", "her"), ("men", "women"), ("boys", "girls"), ("actor", "actress"), ("lord", "lady"),
    ),
    "verb-tense": (
        ("walking", "walked"), ("swimming", "swam"), ("going", "went"), ("running", "ran"), ("seeing", "saw"),
        ("taking", "took"), ("writing", "wrote"), ("playing", "played"), ("flying", "flew"), ("thinking", "thought"),
        ("moving", "moved"), ("saying", "said"), ("making", "made"), ("giving", "gave"), ("coming", "came"),
    ),
    "country-capital": (
        ("france", "paris"), ("germany", "berlin"), ("italy", "rome"), ("spain", "madrid"), ("russia", "moscow"),
        ("japan", "tokyo"), ("china", "beijing"), ("greece", "athens"), ("england", "london"), ("egypt", "cairo"),
        ("portugal", "lisbon"), ("austria", "vienna"), ("afghanistan", "kabul"), ("australia", "canberra"),
        ("canada", "ottawa"),
    ),
}


def parse_pairs(text: str, source: str = "<pairs>") -> list[Pair]:
    """The word pairs of a pairs file's text: one pair ``a b`` per line (words separated by spaces
    or a tab), blank lines and ``#`` comments (a whole line, or from a field starting with ``#`` to
    the end of the line) ignored.

    Args:
        text: the file's contents.
        source: what to call it in error messages (the file name).

    Returns:
        The pairs in file order.

    Raises:
        PairsError: a line without exactly two words, a pair of one word twice, a pair repeated
            (naming both line numbers), or no pair at all.

    Example:
        >>> parse_pairs("# family\\nking queen\\nman\\twoman  # the classic\\n")
        [('king', 'queen'), ('man', 'woman')]
    """
    out: list[Pair] = []
    seen: dict[Pair, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        for i, field in enumerate(fields):
            if field.startswith("#"):
                fields = fields[:i]
                break
        if not fields:
            continue
        if len(fields) != 2:
            what = "one word" if len(fields) == 1 else f"{len(fields)} words"
            raise PairsError(f"{source}, line {number}: expected two words 'a b', found {what}: {line.strip()!r}")
        a, b = fields
        if a == b:
            raise PairsError(f"{source}, line {number}: a pair of the same word twice ({a!r}) draws no arrow")
        if (a, b) in seen:
            raise PairsError(f"{source}, line {number}: the pair {a} {b} is already on line {seen[(a, b)]}")
        seen[(a, b)] = number
        out.append((a, b))
    if not out:
        raise PairsError(f"{source} holds no word pairs (only blank lines and comments); write one pair 'a b' a line")
    return out


def pairs(name_or_path: str | os.PathLike[str], lowercase: bool = False) -> list[Pair]:
    """A built-in list of word pairs (``male-female``, ``verb-tense``, ``country-capital``) or the
    pairs of a UTF-8 file (see ``parse_pairs`` for its lines).

    A built-in name wins over a file of the same name in the working folder; write ``./male-female``
    to read the file.

    Args:
        name_or_path: a key of ``BUILTIN_PAIRS`` or the path of a pairs file.
        lowercase: lowercase every word (for vectors trained on lowercased text; the built-in lists
            are lowercase already).

    Raises:
        PairsError: an unknown name that is no file either, or a malformed file (see ``parse_pairs``).
        dlia.text.chars.TextError: a file that is missing, empty, binary or not UTF-8.
    """
    key = os.fspath(name_or_path)
    if key in BUILTIN_PAIRS:
        out = list(BUILTIN_PAIRS[key])
    else:
        path = Path(key)
        if not path.exists() and os.sep not in key and not path.suffix:
            raise PairsError(f"no pair list or file named {key!r}; use one of {', '.join(BUILTIN_PAIRS)} or a file of pairs")
        out = parse_pairs(read_text(path), source=str(path))
    if lowercase:
        out = [(a.lower(), b.lower()) for a, b in out]
    return out


def lookup_vectors(source: VectorSource, words: Iterable[str]) -> dict[str, numpy.ndarray]:
    """The vectors of those ``words`` that ``source`` knows (float64, one (D,) row each); unknown
    words are simply absent from the result.

    Raises:
        ValueError: a source of none of the three shapes, a matrix whose rows do not match its
            words, or a non-finite vector (naming the word).
    """
    wanted = list(dict.fromkeys(words))
    if hasattr(source, "vectors") and (hasattr(source, "key_to_index") or hasattr(source, "index_to_key")):
        matrix = source.vectors
        index = getattr(source, "key_to_index", None)
        if index is None:
            index = {w: i for i, w in enumerate(source.index_to_key)}
    elif isinstance(source, tuple) and len(source) == 2:
        vocab, matrix = source
        index = {w: i for i, w in enumerate(vocab)}  # one pass; fine even for millions of words
        if len(index) != len(vocab):
            raise ValueError(f"the word list holds {len(vocab) - len(index)} repeated words; each row needs its own word")
    elif callable(source):
        found, matrix = source(wanted)
        found = list(found)
        matrix = numpy.asarray(matrix, dtype=numpy.float64)
        if matrix.ndim != 2 or matrix.shape[0] != len(found):
            raise ValueError(f"lookup returned {len(found)} words but a matrix of shape {matrix.shape}")
        index = {w: i for i, w in enumerate(found)}
    else:
        raise ValueError(f"cannot read vectors from a {type(source).__name__}: give (words, matrix), "
                         f"a KeyedVectors or a lookup function")
    matrix = numpy.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != len(index):
        raise ValueError(f"{len(index)} words but a vector matrix of shape {matrix.shape}; expected ({len(index)}, D)")
    rows = {w: numpy.asarray(matrix[index[w]], dtype=numpy.float64) for w in wanted if w in index}
    out = {w: rows[w] for w in wanted if w in rows}
    for w, v in out.items():
        if not numpy.all(numpy.isfinite(v)):
            raise ValueError(f"the vector of {w!r} holds NaN or infinite values")
    return out


def pca_2d(x: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Principal component analysis of N points to 2-D, with deterministic signs.

    With X̄ the rows of ``x`` less their mean and X̄ = U S Vᵀ its thin SVD, the components are the first
    two rows of Vᵀ (the leading eigenvectors of the covariance X̄ᵀX̄ / N) and the coordinates are
    X̄ V[:, :2] = U[:, :2] S[:2]. A component's sign is arbitrary, so each is flipped to make its
    largest-magnitude loading positive (the first one on a tie): the same vectors always give the
    same picture, whichever LAPACK computed it.

    Args:
        x: (N, D) points, N ≥ 1.

    Returns:
        ``coords`` (N, 2), ``components`` (2, D) with orthonormal rows, and ``explained`` (2,): the
        fraction of the total variance along each axis. When the points span fewer than two
        dimensions (N ≤ 2, D = 1, or all on one line) the missing axes are zero.
    """
    x = numpy.asarray(x, dtype=numpy.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"pca_2d needs an (N, D) array with N ≥ 1, got shape {x.shape}")
    centred = x - x.mean(axis=0)
    _, s, vt = numpy.linalg.svd(centred, full_matrices=False)
    # an axis along which the points do not spread (numerically: matrix_rank's cutoff) has no
    # direction worth a sign; it is left at zero rather than drawn from rounding noise
    tol = s[0] * max(x.shape) * numpy.finfo(numpy.float64).eps if len(s) else 0.0
    k = int(min(2, numpy.sum(s > tol)))
    components = numpy.zeros((2, x.shape[1]))
    components[:k] = vt[:k]
    for c in components[:k]:
        if c[numpy.argmax(numpy.abs(c))] < 0:
            c *= -1
    coords = centred @ components.T
    total = float(numpy.sum(s ** 2))
    explained = numpy.zeros(2)
    if total > 0:
        explained[:k] = s[:k] ** 2 / total
    return coords, components, explained


def _project(vectors: numpy.ndarray) -> tuple[numpy.ndarray, tuple[str, str]]:
    """2-D coordinates of (N, D) vectors and the axis labels: PCA, or the vectors themselves when D = 2."""
    if vectors.shape[1] == 2:
        return vectors.copy(), ("x₁", "x₂")
    coords, _, explained = pca_2d(vectors)
    return coords, (f"PC1 ({100 * explained[0]:.0f}% of variance)", f"PC2 ({100 * explained[1]:.0f}% of variance)")


@dataclass(frozen=True)
class PairsPicture:
    """What ``pairs_plot`` drew.

    Attributes:
        path: the picture written.
        used: the pairs drawn (both words known), in the order given.
        skipped: the pairs left out because a word is unknown.
        missing: the unknown words, in the order met.
        coords: each drawn word's 2-D position in the picture.
    """

    path: Path
    used: list[Pair]
    skipped: list[Pair]
    missing: list[str]
    coords: dict[str, tuple[float, float]]


def _label(ax: Any, word: str, xy: numpy.ndarray, color: str, weight: str = "normal") -> None:
    ax.annotate(word, (xy[0], xy[1]), textcoords="offset points", xytext=(5, 4), fontsize=8, color=color, fontweight=weight)


def pairs_plot(word_pairs: Sequence[Pair], vectors: VectorSource, path: str | os.PathLike[str], title: str | None = None,
               normalize: bool = False) -> PairsPicture:
    """Related word pairs projected to 2-D with an arrow from each pair's first word to its second,
    as Mikolov et al.'s figures: when a relation is one direction in the vector space (queen − king
    ≈ woman − man), the arrows come out nearly parallel and of similar length.

    The PCA is fitted on the vectors of the drawn words only (each word once, even when it is in
    several pairs). The axes keep one scale (a unit is as long across as up), so parallel offsets look
    parallel.

    Args:
        word_pairs: (first, second) word pairs, e.g. from ``pairs("male-female")``.
        vectors: the word vectors (see ``VectorSource``).
        path: the picture to write; its suffix picks PNG, SVG, PDF or JPEG.
        title: the picture's title (default: the number of pairs drawn).
        normalize: scale each vector to unit length first, so the picture shows the directions
            cosine similarity compares rather than the vectors' lengths (which grow with frequency).

    Returns:
        A ``PairsPicture``: the path, the pairs used and skipped, the unknown words and each drawn
        word's coordinates.

    Raises:
        PairsError: fewer than two pairs with both words known (naming the unknown words).
        ValueError: an unknown picture suffix (before any work), or vectors that cannot be read.
    """
    plot_format(path)  # refuse a bad file name before looking up anything
    word_pairs = [tuple(p) for p in word_pairs]
    found = lookup_vectors(vectors, (w for p in word_pairs for w in p))
    used = [p for p in word_pairs if p[0] in found and p[1] in found]
    skipped = [p for p in word_pairs if p not in used]
    missing = list(dict.fromkeys(w for p in word_pairs for w in p if w not in found))
    if len(used) < 2:
        unknown = f"; unknown words: {', '.join(missing)}" if missing else ""
        raise PairsError(f"need at least 2 pairs whose words both have vectors, found {len(used)} of {len(word_pairs)}{unknown}")
    words = list(dict.fromkeys(w for p in used for w in p))
    x = numpy.stack([found[w] for w in words])
    if normalize:
        norms = numpy.linalg.norm(x, axis=1, keepdims=True)
        x = x / numpy.where(norms > 0, norms, 1.0)
    coords, (xlabel, ylabel) = _project(x)
    at = {w: coords[i] for i, w in enumerate(words)}
    role = {}
    for a, b in used:
        role.setdefault(a, 0)
        role.setdefault(b, 1)

    plt = _pyplot()
    from matplotlib.patches import FancyArrowPatch

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    colors = ("tab:blue", "tab:red")
    for r, name in enumerate(("first word of a pair", "second word of a pair")):
        pts = numpy.array([at[w] for w in words if role[w] == r])
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=22, c=colors[r], zorder=3, label=name)
    for a, b in used:
        ax.add_patch(FancyArrowPatch(tuple(at[a]), tuple(at[b]), arrowstyle="-|>", mutation_scale=10, shrinkA=4, shrinkB=4,
                                     color="0.45", linewidth=0.9, zorder=2))
    for w in words:
        _label(ax, w, at[w], colors[role[w]])
    ax.set_aspect("equal", adjustable="datalim")
    ax.margins(0.12)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{len(used)} word pairs, PCA to 2-D", fontsize=10)
    if skipped:
        ax.text(0.01, 0.01, f"skipped (no vector): {', '.join(missing)}", transform=ax.transAxes, fontsize=7,
                color="0.4", va="bottom", wrap=True)
    ax.legend(loc="best", fontsize=7)
    ax.grid(alpha=0.25)
    written = save(fig, path)
    return PairsPicture(written, used, skipped, missing, {w: (float(c[0]), float(c[1])) for w, c in at.items()})


@dataclass(frozen=True)
class NeighboursPicture:
    """What ``neighbours_plot`` drew.

    Attributes:
        path: the picture written.
        neighbours: the (word, similarity) pairs drawn, most similar first.
        coords: each projected word's 2-D position (empty when no vectors were given).
        missing: neighbours the vectors did not know (drawn in the bar chart only).
    """

    path: Path
    neighbours: list[tuple[str, float]]
    coords: dict[str, tuple[float, float]]
    missing: list[str]


def neighbours_plot(word: str, neighbours: Sequence[tuple[str, float]], vectors: VectorSource | None,
                    path: str | os.PathLike[str], title: str | None = None) -> NeighboursPicture:
    """A word and its nearest neighbours: on the left, the word and its neighbours scaled to unit
    length and projected to 2-D with PCA (fitted on those k + 1 vectors), a line from the word to each neighbour shaded by their
    cosine similarity; on the right, the similarities as horizontal bars, most similar on top.

    The similarities are drawn as given (from ``most_similar``), not recomputed. Without vectors
    (``None``) only the bar chart is drawn.

    Args:
        word: the query word.
        neighbours: (word, cosine similarity) pairs, e.g. ``kv.most_similar(word, topn=10)``; they are
            sorted by similarity and any entry equal to ``word`` itself is dropped.
        vectors: the word vectors (see ``VectorSource``), or None.
        path: the picture to write; its suffix picks PNG, SVG, PDF or JPEG.
        title: the picture's title (default: "nearest neighbours of WORD").

    Returns:
        A ``NeighboursPicture``: the path, the neighbours drawn, the 2-D positions and the neighbours
        the vectors lack.

    Raises:
        PairsError: no neighbours, a similarity that is not a finite number, or a query word the
            vectors do not know.
        ValueError: an unknown picture suffix (before any work), or vectors that cannot be read.
    """
    plot_format(path)
    cleaned: list[tuple[str, float]] = []
    for w, s in neighbours:
        if w == word:
            continue
        try:
            s = float(s)
        except (TypeError, ValueError):
            raise PairsError(f"the similarity of neighbour {w!r} is not a number: {s!r}") from None
        if not numpy.isfinite(s):
            raise PairsError(f"the similarity of neighbour {w!r} is {s}, not a finite number")
        cleaned.append((w, s))
    if not cleaned:
        raise PairsError(f"no neighbours of {word!r} to draw")
    cleaned.sort(key=lambda ws: -ws[1])
    coords: dict[str, numpy.ndarray] = {}
    missing: list[str] = []
    if vectors is not None:
        found = lookup_vectors(vectors, [word, *(w for w, _ in cleaned)])
        if word not in found:
            raise PairsError(f"{word!r} has no vector, so its neighbours cannot be placed around it")
        missing = [w for w, _ in cleaned if w not in found]
        words = [word, *(w for w, _ in cleaned if w in found)]
        x = numpy.stack([found[w] for w in words])
        norms = numpy.linalg.norm(x, axis=1, keepdims=True)
        # unit length first: cosine similarity ignores length, so the picture should too
        xy, axis_labels = _project(x / numpy.where(norms > 0, norms, 1.0))
        coords = {w: xy[i] for i, w in enumerate(words)}

    plt = _pyplot()
    cmap = plt.get_cmap("viridis")
    sims = numpy.array([s for _, s in cleaned])
    lo, hi = min(0.0, float(sims.min())), max(1.0, float(sims.max()))

    def shade(s: float) -> Any:
        return cmap((s - lo) / (hi - lo))

    if coords:
        fig, (ax, bars) = plt.subplots(1, 2, figsize=(11, 4.8), gridspec_kw={"width_ratios": [1.35, 1]})
        centre = coords[word]
        for w, s in cleaned:
            if w in coords:
                ax.plot([centre[0], coords[w][0]], [centre[1], coords[w][1]], color=shade(s), linewidth=1.2, zorder=1)
                ax.scatter([coords[w][0]], [coords[w][1]], s=22, color=shade(s), edgecolors="k", linewidths=0.4, zorder=3)
                _label(ax, f"{w} {s:.2f}", coords[w], "0.15")
        ax.scatter([centre[0]], [centre[1]], marker="*", s=160, c="tab:red", edgecolors="k", linewidths=0.5, zorder=4)
        _label(ax, word, centre, "tab:red", weight="bold")
        ax.set_aspect("equal", adjustable="datalim")
        ax.margins(0.15)
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        ax.grid(alpha=0.25)
        ax.set_title("PCA of the word and its neighbours", fontsize=9)
    else:
        fig, bars = plt.subplots(figsize=(5.5, 0.3 * len(cleaned) + 1.4))
    y = numpy.arange(len(cleaned))
    bars.barh(y, sims, color=[shade(s) for s in sims], edgecolor="k", linewidth=0.4)
    bars.set_yticks(y, [w + (" *" if w in missing else "") for w, _ in cleaned], fontsize=8)
    bars.invert_yaxis()
    for i, s in enumerate(sims):  # right of the bar's end, or of zero for a negative one (clear of the labels)
        bars.annotate(f"{s:.3f}", (max(s, 0.0), i), textcoords="offset points", xytext=(3, 0), va="center", fontsize=7)
    bars.set_xlim(min(0.0, float(sims.min()) - 0.1), max(1.0, float(sims.max()) + 0.1))
    bars.axvline(0, color="k", linewidth=0.6)
    bars.set_xlabel("cosine similarity")
    bars.set_title("similarity" + (" (* no vector)" if missing else ""), fontsize=9)
    bars.grid(axis="x", alpha=0.25)
    fig.suptitle(title or f"nearest neighbours of {word!r}", fontsize=10)
    written = save(fig, path)
    return NeighboursPicture(written, cleaned, {w: (float(c[0]), float(c[1])) for w, c in coords.items()}, missing)
