"""Axis arguments, checked in one place for every op that takes one.

An axis counts from the front (``0 … ndim-1``) or, when negative, from the back (``-ndim … -1``), as
in NumPy and torch. Anything else raises ``AxisError`` instead of wrapping around. A 0-d tensor takes
axis ``0`` or ``-1`` (torch's rule), meaning its one value.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy

from dlia.core.function import ShapeError, shape_error


class AxisError(ShapeError, IndexError):
    """An axis outside a tensor's dimensions: an ``IndexError`` as in torch, and a ``ShapeError``
    (so a ``ValueError``) as NumPy's ``AxisError``, which is both."""


def normalize_axis(axis: Any, ndim: int, op: str, *shapes: tuple[Any, ...]) -> int:
    """``axis`` as a position in ``0 … ndim-1`` (0 for a 0-d tensor).

    Args:
        axis: an integer; negative counts from the end.
        ndim: how many places the axis can name (``ndim + 1`` for ops that insert an axis).
        op: the op's name, for the error message.
        shapes: the input shapes, for the error message.

    Raises:
        AxisError: ``axis`` is outside ``-ndim … ndim-1``.
        TypeError: ``axis`` is not an integer.

    Example: ``normalize_axis(-1, 3, "sum")`` → ``2``; ``normalize_axis(3, 3, "sum")`` raises.
    """
    if type(axis) is not int:
        try:
            if isinstance(axis, (bool, numpy.bool_)):  # True is an int to Python, not an axis to torch
                raise TypeError
            axis = operator.index(axis)  # NumPy integers pass, floats do not
        except TypeError:
            raise TypeError(f"{op}: axis must be an integer, got {type(axis).__name__}") from None
    n = ndim if ndim else 1
    if not -n <= axis < n:
        detail = f"axis {axis} is out of range (expected {-n}..{n - 1})"
        raise AxisError(*shape_error(op, detail, *shapes).args)
    return axis + n if axis < 0 else axis


def normalize_axes(axis: Any, ndim: int, op: str, *shapes: tuple[Any, ...]) -> tuple[int, ...]:
    """The axes a reduction runs over, each in ``0 … ndim-1``: all for ``None``, else an int or a
    sequence of ints, none named twice. A 0-d tensor has no axis to reduce: ``()``.

    Example: ``normalize_axes((-1, 0), 3, "sum")`` → ``(2, 0)``.
    """
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(normalize_axis(a, ndim, op, *shapes) for a in axis)
        if len(set(axes)) != len(axes):
            raise shape_error(op, f"axis {tuple(axis)} names an axis more than once", *shapes)
    else:
        axes = (normalize_axis(axis, ndim, op, *shapes),)
    return axes if ndim else ()
