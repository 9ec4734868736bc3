"""Reductions and normalisations: sum, mean, max, min, var, logsumexp, softmax, log_softmax.

``axis`` is None (all axes), an int or a tuple, as in NumPy; ``keepdims`` keeps reduced axes as 1.
"""

from __future__ import annotations

from typing import Any

import numpy

from dlia.backend.device import errstate
from dlia.core.axes import normalize_axes
from dlia.core.function import Function, shape_error
from dlia.core.tensor import Tensor

_HALF = numpy.dtype(numpy.float16)


def _kept(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` reduced over ``axes`` with ``keepdims``: size 1 on each reduced axis."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _expand(g: Any, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> Any:
    """Reinsert reduced axes (size 1) so ``g`` broadcasts against the input ``shape``."""
    if not keepdims:
        g = g.reshape(_kept(shape, axes))
    return g


# Above this many elements the gradient of a sum or mean is handed on as a read-only broadcast view
# instead of a filled array: filling costs ~0.2 ns per element and a pass over memory, the view a
# fixed ~3 µs. Small arrays (most of a small model's steps) keep the cheaper fresh fill.
_VIEW_ABOVE = 1 << 16


def _spread(xp: Any, g: Any, shape: tuple[int, ...], fresh: bool) -> Any:
    """``g`` broadcast to ``shape``: a fresh filled array, or (``fresh`` False) a read-only view."""
    if not fresh:
        return xp.broadcast_to(g, shape)
    out = xp.empty(shape, dtype=g.dtype)
    out[...] = g
    return out


class Sum(Function):
    fresh_grads = True

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.keepdims = a.shape, keepdims
        self.fresh_grads = a.size <= _VIEW_ABOVE  # see _spread
        if axis is None and not keepdims:
            self.axes = None
            return a.sum()
        self.axes = normalize_axes(axis, a.ndim, "sum", a.shape)
        return a.sum(axis=self.axes, keepdims=keepdims)

    def vjp(self, g):
        if self.axes is not None:
            g = _expand(g, self.shape, self.axes, self.keepdims)
        return (_spread(self.xp, g, self.shape, self.fresh_grads),)


class Mean(Function):
    fresh_grads = True

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.keepdims = a.shape, keepdims
        self.fresh_grads = a.size <= _VIEW_ABOVE  # see _spread
        self.axes = normalize_axes(axis, a.ndim, "mean", a.shape)
        n = 1
        for i in self.axes:
            n *= a.shape[i]
        self.n = n
        half = a.dtype == _HALF  # summed in float32, as torch and NumPy do: 1000 values of 100 overflow float16
        total = a.sum(axis=self.axes, keepdims=keepdims, dtype=numpy.float32 if half else None)
        if not n:
            mean = total * numpy.nan  # the mean of nothing, as torch (NumPy would also warn)
        else:
            mean = total / total.dtype.type(n) if a.dtype.kind == "f" else total / n
        return mean.astype(a.dtype) if half else mean

    def vjp(self, g):
        # over an empty axis the gradient is empty too: any divisor will do
        g = _expand(g, self.shape, self.axes, self.keepdims) / g.dtype.type(self.n or 1)
        return (_spread(self.xp, g, self.shape, self.fresh_grads),)


class Var(Function):
    fresh_grads = True

    def forward(self, a, axis=None, keepdims=False, ddof=0):
        self.shape, self.keepdims = a.shape, keepdims
        self.axes = normalize_axes(axis, a.ndim, "var", a.shape)
        n = 1
        for i in self.axes:
            n *= a.shape[i]
        dof = self.xp.asarray(n - ddof, dtype=a.dtype if a.dtype.kind == "f" else self.xp.float64)
        with errstate(self.xp, divide="ignore", invalid="ignore"):  # n <= ddof: inf/nan, as NumPy and torch
            self.scale = 2 / dof
            self.centered = a - a.mean(axis=self.axes, keepdims=True)
            return (self.centered * self.centered).sum(axis=self.axes, keepdims=keepdims) / dof

    def vjp(self, g):
        g = _expand(g, self.shape, self.axes, self.keepdims)
        return (g * self.centered * self.centered.dtype.type(self.scale),)


class _Extreme(Function):
    """max/min: the gradient is split evenly among tied extreme elements (as torch.amax)."""

    fresh_grads = True

    pick = "max"

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.keepdims = a.shape, keepdims
        self.axes = normalize_axes(axis, a.ndim, self.pick, a.shape)
        if a.size == 0 and any(a.shape[i] == 0 for i in self.axes):  # an empty result along other axes is fine
            raise shape_error(self.pick, f"cannot take the {self.pick} over an empty axis", a.shape)
        out = getattr(a, self.pick)(axis=self.axes, keepdims=True)
        self.mask = a == out
        return out if keepdims else out.reshape(tuple(n for i, n in enumerate(a.shape) if i not in self.axes))

    def vjp(self, g):
        g = _expand(g, self.shape, self.axes, self.keepdims)
        count = self.mask.sum(axis=self.axes, keepdims=True)
        return (self.mask * (g / count).astype(g.dtype),)


class Max(_Extreme):
    pick = "max"


class Min(_Extreme):
    pick = "min"


class LogSumExp(Function):
    fresh_grads = True

    def forward(self, a, axis=None, keepdims=False):
        xp = self.xp
        self.shape, self.keepdims = a.shape, keepdims
        self.axes = normalize_axes(axis, a.ndim, "logsumexp", a.shape)
        if a.size == 0:  # the log of an empty sum is -inf (as torch); or the result is empty anyway
            out = xp.full(_kept(a.shape, self.axes), -xp.inf, dtype=a.dtype)
        else:
            m = a.max(axis=self.axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0)
            out = xp.log(xp.exp(a - m).sum(axis=self.axes, keepdims=True)) + m
        self.a, self.out = a, out
        return out if keepdims else out.reshape(tuple(n for i, n in enumerate(a.shape) if i not in self.axes))

    def vjp(self, g):
        g = _expand(g, self.shape, self.axes, self.keepdims)
        return (g * self.xp.exp(self.a - self.out),)


class Softmax(Function):
    fresh_grads = True

    def forward(self, a, axis=-1):
        xp = self.xp
        self.axis = axis = normalize_axes(axis, a.ndim, "softmax", a.shape)
        if a.size == 0:  # nothing to normalise (and no maximum over an empty axis)
            self.out = xp.empty_like(a)
            return self.out
        e = xp.exp(a - a.max(axis=axis, keepdims=True))
        self.out = e / e.sum(axis=axis, keepdims=True)
        return self.out

    def vjp(self, g):
        y = self.out
        return (y * (g - (g * y).sum(axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    fresh_grads = True

    def forward(self, a, axis=-1):
        xp = self.xp
        self.axis = axis = normalize_axes(axis, a.ndim, "log_softmax", a.shape)
        if a.size == 0:  # nothing to normalise (and no maximum over an empty axis)
            self.out = xp.empty_like(a)
            return self.out
        shifted = a - a.max(axis=axis, keepdims=True)
        self.out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        return self.out

    def vjp(self, g):
        return (g - self.xp.exp(self.out) * g.sum(axis=self.axis, keepdims=True),)


def sum(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (all by default). The gradient broadcasts back to the input shape.

    Example: ``sum(ones((2, 3)), axis=1)`` → ``tensor([3., 3.])``.
    """
    return Sum.apply(a, axis=axis, keepdims=keepdims)


def mean(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis``; d/da = 1/n."""
    return Mean.apply(a, axis=axis, keepdims=keepdims)


def var(a: Tensor, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance over ``axis`` with ``ddof`` (0: population, 1: sample). d/da = 2(a-mean)/(n-ddof)."""
    return Var.apply(a, axis=axis, keepdims=keepdims, ddof=ddof)


def max(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Largest value over ``axis``; ties share the gradient evenly.

    Example: ``max(tensor([[1., 5.], [7., 2.]]), axis=0)`` → ``tensor([7., 5.])``.
    """
    return Max.apply(a, axis=axis, keepdims=keepdims)


def min(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Smallest value over ``axis``; ties share the gradient evenly."""
    return Min.apply(a, axis=axis, keepdims=keepdims)


def logsumexp(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """log(Σ exp(a)) computed stably as m + log Σ exp(a - m). d/da = softmax(a)."""
    return LogSumExp.apply(a, axis=axis, keepdims=keepdims)


def softmax(a: Tensor, axis: int = -1) -> Tensor:
    """exp(a) / Σ exp(a) along ``axis`` (max-shifted, so no overflow).

    Example: ``softmax(tensor([0., 0.]))`` → ``tensor([0.5, 0.5])``.
    """
    return Softmax.apply(a, axis=axis)


def log_softmax(a: Tensor, axis: int = -1) -> Tensor:
    """a - logsumexp(a) along ``axis``: log-probabilities, stable for large logits."""
    return LogSoftmax.apply(a, axis=axis)
