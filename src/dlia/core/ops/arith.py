"""Arithmetic: add, sub, mul, div, neg, pow, matmul.

Each op returns gradients of the broadcast shape; the engine sums them back to each input's
shape (``dlia.core.autodiff.unbroadcast``). Operands of different dtypes are promoted as torch
does (``dlia.core.dtypes``), and the engine casts each gradient back to its input's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy

from dlia.backend import blas
from dlia.backend.device import errstate, get_array_module
from dlia.core.dtypes import promote, weak_dtype
from dlia.core.function import Function, shape_error
from dlia.core.tensor import Tensor


def lift(x: Any, like: Tensor) -> Tensor:
    """A constant (no gradient) tensor from a Python number, list or array given beside ``like``.

    Python numbers and lists are weak, as torch's Python scalars: they take ``like``'s dtype when
    their kind fits in it (a float beside a float16 tensor, an int beside an int32 one), else their
    kind's default dtype (float32, int64). Arrays keep their dtype.
    """
    if isinstance(x, Tensor):
        return x
    xp = numpy if type(like.data) is numpy.ndarray else get_array_module(like.data)
    dt = like.dtype  # a graph node knows its dtype without data
    if isinstance(x, (int, float)) and dt is not None and dt.kind == "f":  # the usual case: x * 2.0
        arr = xp.asarray(x, dtype=dt)
    else:
        arr = xp.asarray(x, dtype=weak_dtype(x, dt))
    t = Tensor.__new__(Tensor)
    t.data = arr
    t.requires_grad = False
    t.grad = None
    t._ctx = None
    t._retain = False
    return t


class Add(Function):
    def forward(self, a, b):
        if a.dtype is not b.dtype:
            a, b = promote(a, b)
        return a + b

    def vjp(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        if a.dtype is not b.dtype:
            if a.dtype.kind == "b" or b.dtype.kind == "b":
                raise _bool_sub()
            a, b = promote(a, b)
        return a - b

    def vjp(self, g):
        return g, -g if self.needs[1] else None


class Mul(Function):
    fresh_grads = True

    def forward(self, a, b):
        if a.dtype is not b.dtype:
            a, b = promote(a, b)
        self.a, self.b = a, b
        return a * b

    def vjp(self, g):
        return (g * self.b if self.needs[0] else None, g * self.a if self.needs[1] else None)


class Div(Function):
    fresh_grads = True

    def forward(self, a, b):
        if a.dtype is not b.dtype or a.dtype.kind != "f":
            a, b = promote(a, b, floating=True)  # true division: integers give float32, as in torch
        self.a, self.b = a, b
        return a / b

    def vjp(self, g):
        gb = g / self.b
        return gb, (-gb * self.a / self.b if self.needs[1] else None)


class Neg(Function):
    fresh_grads = True

    def forward(self, a):
        return -a

    def vjp(self, g):
        return (-g,)


class Pow(Function):
    fresh_grads = True

    def forward(self, a, b):
        if a.dtype is not b.dtype:
            a, b = promote(a, b)
        self.a, self.b = a, b
        out = a**b
        if out.dtype != a.dtype:  # bool ** bool: NumPy computes in int8, torch keeps bool
            out = out.astype(a.dtype)
        self.out = out
        return out

    def vjp(self, g):
        xp, a, b = self.xp, self.a, self.b
        ga = gb = None
        if self.needs[0]:
            if b.ndim == 0 and b != 0:  # the usual constant exponent (x ** 2)
                ga = g * b * a ** (b - 1)
            else:  # 0 where b = 0, as torch: a**0 is constant, even at a = 0 where a**(b-1) is inf
                with errstate(xp, divide="ignore", invalid="ignore"):
                    ga = xp.where(b == 0, a.dtype.type(0), g * b * a ** (b - 1))
        if self.needs[1]:  # a**b·log(a), as torch: 0 at a = 0 when b ≥ 0, -inf when b < 0, NaN for a < 0
            with errstate(xp, divide="ignore", invalid="ignore"):
                gb = g * xp.where((a == 0) & (b >= 0), a.dtype.type(0), self.out * xp.log(a))
        return ga, gb


class MatMul(Function):
    fresh_grads = True

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise shape_error("matmul", "both arguments need at least 1 dimension", a.shape, b.shape)
        if a.dtype is not b.dtype:
            a, b = promote(a, b)
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise shape_error(
                "matmul",
                f"inner dimensions differ ({a.shape[-1]} vs {b.shape[-2 if b.ndim > 1 else 0]})",
                a.shape,
                b.shape,
            )
        self.a, self.b = a, b
        return blas.matmul(a, b)  # a @ b; large float32 products on dlia's threads (dlia.backend.blas)

    def vjp(self, g):
        a, b = self.a, self.b
        if a.ndim == 2 and b.ndim == 2:  # the common case, without swapaxes calls
            return (blas.matmul(g, b.T) if self.needs[0] else None, blas.matmul(a.T, g) if self.needs[1] else None)
        if a.ndim == 1 and b.ndim == 1:  # a dot product: g is a scalar
            return (g * b if self.needs[0] else None, g * a if self.needs[1] else None)
        xp = self.xp
        if a.ndim == 1:
            a = a[None, :]
            g = xp.expand_dims(g, -2)
        if b.ndim == 1:
            b = b[:, None]
            g = xp.expand_dims(g, -1)
        ga = g @ xp.swapaxes(b, -1, -2) if self.needs[0] else None
        gb = xp.swapaxes(a, -1, -2) @ g if self.needs[1] else None
        if ga is not None and self.a.ndim == 1:
            ga = ga.reshape(ga.shape[:-2] + (ga.shape[-1],))
        if gb is not None and self.b.ndim == 1:
            gb = gb.reshape(gb.shape[:-2] + (gb.shape[-2],))
        return ga, gb


def add(a: Tensor, b: Tensor | float) -> Tensor:
    """Elementwise ``a + b`` with NumPy broadcasting. d/da = 1, d/db = 1.

    Example: ``add(tensor([1., 2.]), 1.0)`` → ``tensor([2., 3.])``.
    """
    if type(b) is not Tensor:
        b = lift(b, a)
    if type(a) is not Tensor:
        a = lift(a, b)
    return Add.apply(a, b)


def _bool_sub() -> TypeError:
    return TypeError("sub: subtracting bool values is not supported (as in torch); convert the mask first, e.g. 1 - mask.float()")


def sub(a: Tensor, b: Tensor | float) -> Tensor:
    """Elementwise ``a - b``. d/da = 1, d/db = -1. A bool operand is refused, as in torch."""
    if type(b) is not Tensor:
        if type(b) is bool:
            raise _bool_sub()
        b = lift(b, a)
    if type(a) is not Tensor:
        if type(a) is bool:
            raise _bool_sub()
        a = lift(a, b)
    return Sub.apply(a, b)


def rsub(a: Tensor, b: float) -> Tensor:
    """``b - a`` (the reflected operator)."""
    if type(b) is bool:
        raise _bool_sub()
    return Sub.apply(lift(b, a), a)


def mul(a: Tensor, b: Tensor | float) -> Tensor:
    """Elementwise ``a * b``. d/da = b, d/db = a."""
    if type(b) is not Tensor:
        b = lift(b, a)
    if type(a) is not Tensor:
        a = lift(a, b)
    return Mul.apply(a, b)


def div(a: Tensor, b: Tensor | float) -> Tensor:
    """Elementwise ``a / b``. d/da = 1/b, d/db = -a/b²."""
    if type(b) is not Tensor:
        b = lift(b, a)
    if type(a) is not Tensor:
        a = lift(a, b)
    return Div.apply(a, b)


def rdiv(a: Tensor, b: float) -> Tensor:
    """``b / a`` (the reflected operator)."""
    return Div.apply(lift(b, a), a)


def neg(a: Tensor) -> Tensor:
    """``-a``."""
    return Neg.apply(a)


def pow(a: Tensor, b: Tensor | float) -> Tensor:  # noqa: A001 - mirrors torch.pow
    """Elementwise ``a ** b``. d/da = b·a^(b-1) (0 where b = 0, even at a = 0), d/db = a^b·log(a)
    (0 at a = 0 when b ≥ 0; NaN for a < 0), as in torch.

    Example: ``pow(tensor([2., 3.]), 2)`` → ``tensor([4., 9.])``.
    """
    if type(b) is not Tensor:
        b = lift(b, a)
    if type(a) is not Tensor:
        a = lift(a, b)
    return Pow.apply(a, b)


def rpow(a: Tensor, b: float) -> Tensor:
    """``b ** a`` (the reflected operator)."""
    return Pow.apply(lift(b, a), a)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's ``@`` rules: batched, broadcasting, 1-D promoted.

    Shapes: (..., n, k) @ (..., k, m) → (..., n, m). d/da = g·bᵀ, d/db = aᵀ·g.
    Example: ``matmul(ones((2, 3)), ones((3, 4))).shape`` → ``(2, 4)``.
    """
    if type(b) is not Tensor:
        b = lift(b, a)
    if type(a) is not Tensor:
        a = lift(a, b)
    return MatMul.apply(a, b)


def rmatmul(a: Tensor, b: Any) -> Tensor:
    """``b @ a`` (the reflected operator)."""
    return MatMul.apply(lift(b, a), a)
