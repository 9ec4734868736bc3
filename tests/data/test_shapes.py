"""``dlia.data.shapes``: the pixels show what the sentence says (each named colour fills its named
cell, with the named shape's fill ratio and size), sentences parse back to the structure through a
parser written here, the canonical order, seeding, no overlap."""

from __future__ import annotations

import re

import numpy
import pytest

from dlia.data.shapes import COLOURS, POSITIONS, SHAPES, SIZES, WORDS, Scene, scene, scenes_dataset

CELL_OF = {name: cell for cell, name in POSITIONS.items()}
MENTION = re.compile(r"a (small|large) (red|green|blue|yellow) (circle|square|triangle) at the "
                     r"(top left|top right|bottom left|bottom right|top|bottom|left|right|center)")


def parse(sentence: str) -> list[tuple[str, str, str, tuple[int, int]]]:
    """(size, colour, shape, (row, col)) of each mention, in order; AssertionError if off-grammar."""
    mentions = sentence.split(" and ")
    out = []
    for m in mentions:
        match = MENTION.fullmatch(m)
        assert match, f"not a mention: {m!r} in {sentence!r}"
        size, colour, shape, where = match.groups()
        out.append((size, colour, shape, CELL_OF[where]))
    return out


def _cell_slice(n: int, i: int) -> slice:
    return slice(i * n // 3, (i + 1) * n // 3)


SCENES = scenes_dataset(400, seed=11)


def test_image_shows_the_named_colours_in_the_named_cells() -> None:
    for s in SCENES:
        h, w, _ = s.image.shape
        assert s.image.dtype == numpy.uint8 and (h, w) == (64, 64)
        occupied = {(x.row, x.col): x for x in s.shapes}
        for row in range(3):
            for col in range(3):
                pixels = s.image[_cell_slice(h, row), _cell_slice(w, col)].reshape(-1, 3)
                colours = {tuple(p) for p in numpy.unique(pixels, axis=0).tolist()} - {(0, 0, 0)}
                if (row, col) in occupied:  # exactly the named colour, nothing else: shapes never overlap
                    assert colours == {COLOURS[occupied[row, col].colour]}, (s.sentence, row, col)
                else:
                    assert not colours, (s.sentence, row, col)
        # every coloured pixel lies inside the box of its shape
        coloured = (s.image != 0).any(axis=2)
        inside = numpy.zeros_like(coloured)
        for x in s.shapes:
            x0, y0, x1, y1 = x.box
            inside[y0:y1 + 1, x0:x1 + 1] = True
        assert not (coloured & ~inside).any()


def _fill(s: Scene, shape_index: int) -> tuple[int, float]:
    x = s.shapes[shape_index]
    x0, y0, x1, y1 = x.box
    patch = (s.image[y0:y1 + 1, x0:x1 + 1] == COLOURS[x.colour]).all(axis=2)
    return int(patch.sum()), float(patch.mean())


def test_shapes_and_sizes_differ_in_pixels() -> None:
    ratios: dict[str, list[float]] = {k: [] for k in SHAPES}
    areas: dict[tuple[str, str], list[int]] = {}
    for s in SCENES:
        for i, x in enumerate(s.shapes):
            area, ratio = _fill(s, i)
            ratios[x.shape].append(ratio)
            areas.setdefault((x.shape, x.size), []).append(area)
    # a square fills its box, a circle about π/4 of it, a triangle about half
    assert min(ratios["square"]) == 1.0
    assert 0.65 < min(ratios["circle"]) and max(ratios["circle"]) < 0.9
    assert 0.4 < min(ratios["triangle"]) and max(ratios["triangle"]) < 0.65
    for shape in SHAPES:
        assert min(areas[shape, "large"]) > 2.5 * max(areas[shape, "small"])


def test_sentences_parse_back_to_the_structure() -> None:
    counts = set()
    for s in SCENES:
        parsed = parse(s.sentence)
        assert parsed == [(x.size, x.colour, x.shape, (x.row, x.col)) for x in s.shapes]
        cells = [cell for *_, cell in parsed]
        assert cells == sorted(cells, key=lambda rc: (rc[1], rc[0]))  # left to right, then top to bottom
        assert len(set(cells)) == len(cells)
        assert set(s.sentence.split()) <= set(WORDS)
        counts.add(len(parsed))
    assert counts == {1, 2, 3}
    seen = {(x.size, x.colour, x.shape) for s in SCENES for x in s.shapes}
    assert {a for a, _, _ in seen} == set(SIZES) and {b for _, b, _ in seen} == set(COLOURS)
    assert {c for _, _, c in seen} == set(SHAPES)
    assert {(x.row, x.col) for s in SCENES for x in s.shapes} == set(POSITIONS)


def test_sentence_determines_the_drawing() -> None:
    # scenes with one sentence differ at most by the jitter: same colours per cell, same pixel counts per shape
    by_sentence: dict[str, list[Scene]] = {}
    for s in scenes_dataset(1500, seed=3):
        by_sentence.setdefault(s.sentence, []).append(s)
    repeated = [group for group in by_sentence.values() if len(group) > 1]
    assert repeated
    for group in repeated:
        for s in group[1:]:
            assert [_fill(s, i)[0] for i in range(len(s.shapes))] == [_fill(group[0], i)[0] for i in range(len(s.shapes))]


def test_seeding() -> None:
    a, b = scenes_dataset(20, seed=5), scenes_dataset(20, seed=5)
    assert [s.sentence for s in a] == [s.sentence for s in b]
    assert all(numpy.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert [s.sentence for s in scenes_dataset(20, seed=6)] != [s.sentence for s in a]
    assert [s.sentence for s in scenes_dataset(7, seed=5)] == [s.sentence for s in a[:7]]
    s = scene(numpy.random.default_rng(1), size=96, n_shapes=3)
    assert s.image.shape == (96, 96, 3) and len(s.shapes) == 3


@pytest.mark.parametrize("kwargs,message", [
    ({"size": 10}, "size must be an integer of at least 24"),
    ({"n_shapes": 4}, "n_shapes must be 1, 2 or 3"),
])
def test_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        scene(numpy.random.default_rng(0), **kwargs)
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        scenes_dataset(-1)
