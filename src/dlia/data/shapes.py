"""Shape scenes: pictures of 1–3 coloured shapes and the sentences that describe them, generated.

A scene is a black ``size × size`` RGB picture (64 × 64 by default) cut into a 3 × 3 grid; each
shape sits in its own cell (so no two shapes overlap), centred with a small seeded jitter, drawn
with Pillow without anti-aliasing (every pixel is the background or exactly one of ``COLOURS``).

- shapes ``SHAPES``: circle, square, triangle (pointing up);
- sizes ``SIZES``: small (a box of about 45 % of the cell) and large (about 85 %), so a large
  shape covers about 3.5 times the pixels of a small one;
- colours ``COLOURS``: red, green, blue, yellow;
- positions ``POSITIONS``: the nine cells, named "top left", "top", "top right", "left", "center",
  "right", "bottom left", "bottom", "bottom right".

**The grammar.** ``sentence := mention ("and" mention)*``, ``mention := "a" size colour shape
"at the" position`` — "a small red circle at the top left and a large blue square at the center".
Shapes are mentioned in a canonical order, **left to right, then top to bottom** (by column, then
row), so the sentence is a function of the scene and exact-match accuracy of a caption is meaningful;
conversely the sentence names every shape's attributes and cell, so it determines the scene up to
the jitter. (Grid positions rather than "left of"/"above" relations: a relation does not say how far,
and two scenes with one sentence would make sentence→image retrieval ill-posed.)

``Scene.shapes`` gives the same description as data (``Shape`` records in the canonical order, with
the pixel box each one was drawn in), for tests and for models that align words with regions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: tuple[str, ...] = ("small", "large")
#: colour name → RGB, far apart in every channel sum so no two are confused
COLOURS: dict[str, tuple[int, int, int]] = {"red": (230, 25, 25), "green": (25, 200, 25), "blue": (40, 60, 255),
                                            "yellow": (250, 230, 20)}
#: cell (row, column) of the 3 × 3 grid → its name in sentences
POSITIONS: dict[tuple[int, int], str] = {
    (0, 0): "top left", (0, 1): "top", (0, 2): "top right",
    (1, 0): "left", (1, 1): "center", (1, 2): "right",
    (2, 0): "bottom left", (2, 1): "bottom", (2, 2): "bottom right",
}
#: the side of a shape's box as a fraction of the cell's side
SIZE_FRACTION = {"small": 0.45, "large": 0.85}
BACKGROUND = (0, 0, 0)
#: every word a sentence may use, sorted (a captioning vocabulary)
WORDS: tuple[str, ...] = tuple(sorted({"a", "and", "at", "the", *SHAPES, *SIZES, *COLOURS,
                                       *(w for p in POSITIONS.values() for w in p.split())}))


@dataclass(frozen=True)
class Shape:
    """One shape of a scene.

    Attributes:
        shape: one of ``SHAPES``.
        colour: one of ``COLOURS``.
        size: one of ``SIZES``.
        row, col: its cell of the 3 × 3 grid (0 = top / left).
        box: the pixel box it was drawn in, ``(x0, y0, x1, y1)`` inclusive.
    """

    shape: str
    colour: str
    size: str
    row: int
    col: int
    box: tuple[int, int, int, int]

    @property
    def position(self) -> str:
        """The cell's name in sentences ("top left", "center", ...)."""
        return POSITIONS[self.row, self.col]

    def mention(self) -> str:
        """"a small red circle at the top left"."""
        return f"a {self.size} {self.colour} {self.shape} at the {self.position}"


@dataclass(frozen=True)
class Scene:
    """A generated picture and its description.

    Attributes:
        image: uint8 ``(H, W, 3)`` RGB.
        sentence: the canonical sentence (see the module docstring).
        shapes: the shapes in the sentence's order.
    """

    image: numpy.ndarray
    sentence: str
    shapes: tuple[Shape, ...]


def describe(shapes: list[Shape] | tuple[Shape, ...]) -> str:
    """The canonical sentence of a scene's shapes: mentions in column-then-row order joined by "and"."""
    return " and ".join(s.mention() for s in sorted(shapes, key=lambda s: (s.col, s.row)))


def _cell_bounds(size: int, i: int) -> tuple[int, int]:
    """The first and last pixel (inclusive) of grid row or column ``i``."""
    return i * size // 3, (i + 1) * size // 3 - 1


def _draw(draw: Any, shape: str, box: tuple[int, int, int, int], rgb: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=rgb)
    elif shape == "square":
        draw.rectangle(box, fill=rgb)
    else:  # an upward triangle: apex at the top middle, base along the bottom edge
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=rgb)


def scene(rng: numpy.random.Generator, size: int = 64, n_shapes: int | None = None) -> Scene:
    """One random scene: ``n_shapes`` (drawn from 1..3 when None) shapes in distinct cells, each
    with a shape, colour and size drawn uniformly, its box centred in its cell and jittered by up to
    a quarter of the room left around it.

    Args:
        rng: the generator every draw comes from (``numpy.random.default_rng(seed)``).
        size: the picture's side in pixels (at least 24, so a small shape still has a few pixels).
        n_shapes: 1, 2 or 3; None draws it.

    Example:
        >>> s = scene(numpy.random.default_rng(0))
        >>> s.image.shape, s.image.dtype
        ((64, 64, 3), dtype('uint8'))
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 24:
        raise ValueError(f"scene: size must be an integer of at least 24 pixels, got {size!r}")
    if n_shapes is None:
        n_shapes = int(rng.integers(1, 4))
    if n_shapes not in (1, 2, 3):
        raise ValueError(f"scene: n_shapes must be 1, 2 or 3, got {n_shapes!r}")
    from PIL import Image, ImageDraw  # here, so that importing dlia.data does not load Pillow

    picture = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    cells = rng.choice(9, size=n_shapes, replace=False)
    shapes = []
    for cell in cells:
        row, col = divmod(int(cell), 3)
        kind = SHAPES[int(rng.integers(len(SHAPES)))]
        colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        size_name = SIZES[int(rng.integers(len(SIZES)))]
        (cx0, cx1), (cy0, cy1) = _cell_bounds(size, col), _cell_bounds(size, row)
        cell_side = min(cx1 - cx0, cy1 - cy0) + 1
        side = max(3, round(SIZE_FRACTION[size_name] * cell_side))
        room_x, room_y = (cx1 - cx0 + 1) - side, (cy1 - cy0 + 1) - side
        x0 = cx0 + room_x // 2 + int(rng.integers(-(room_x // 4), room_x // 4 + 1))
        y0 = cy0 + room_y // 2 + int(rng.integers(-(room_y // 4), room_y // 4 + 1))
        box = (x0, y0, x0 + side - 1, y0 + side - 1)
        _draw(draw, kind, box, COLOURS[colour])
        shapes.append(Shape(kind, colour, size_name, row, col, box))
    ordered = tuple(sorted(shapes, key=lambda s: (s.col, s.row)))
    return Scene(numpy.asarray(picture, dtype=numpy.uint8).copy(), describe(ordered), ordered)


def scenes_dataset(n: int, seed: int = 0, size: int = 64) -> list[Scene]:
    """``n`` scenes from one seeded generator: the same ``(n, seed, size)`` gives the same scenes,
    and the first ``k`` scenes do not depend on ``n``.

    Example:
        >>> scenes_dataset(1, seed=0)[0].sentence  # doctest: +SKIP
        'a large blue square at the top right'
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"scenes_dataset: n must be a non-negative integer, got {n!r}")
    rng = numpy.random.Generator(numpy.random.PCG64(seed))
    return [scene(rng, size) for _ in range(n)]
