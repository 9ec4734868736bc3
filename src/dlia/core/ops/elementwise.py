"""Elementwise math and activations: exp, log, sqrt, abs, tanh, sigmoid, relu, leaky_relu, clip,
where, maximum, minimum, cast."""

from __future__ import annotations

from typing import Any

from dlia.core.dtypes import promote
from dlia.core.function import Function
from dlia.core.ops.arith import lift
from dlia.core.tensor import Tensor


class Exp(Function):
    fresh_grads = True

    def forward(self, a):
        self.out = self.xp.exp(a)
        return self.out

    def vjp(self, g):
        return (g * self.out,)


class Log(Function):
    fresh_grads = True

    def forward(self, a):
        self.a = a
        return self.xp.log(a)

    def vjp(self, g):
        return (g / self.a,)


class Sqrt(Function):
    fresh_grads = True

    def forward(self, a):
        self.out = self.xp.sqrt(a)
        return self.out

    def vjp(self, g):
        return (g / (2 * self.out),)


class Abs(Function):
    fresh_grads = True

    def forward(self, a):
        self.a = a
        return self.xp.abs(a)

    def vjp(self, g):
        return (g * self.xp.sign(self.a),)


class Tanh(Function):
    fresh_grads = True

    def forward(self, a):
        self.out = self.xp.tanh(a)
        return self.out

    def vjp(self, g):
        return (g * (1 - self.out * self.out),)


class Sigmoid(Function):
    fresh_grads = True

    def forward(self, a):
        # exact in both tails (σ(-40) is 4e-18, not 0) and never overflows
        xp = self.xp
        if a.dtype.kind != "f":
            a = a.astype(xp.float32)
        if a.size <= 128:  # σ(a) = exp(-softplus(-a)): fewest calls for tiny arrays
            t = xp.exp(-xp.logaddexp(0, -a))
        else:  # σ(a) = exp(min(a, 0)) / (1 + exp(-|a|)): vectorised exps, no branchy where()
            t = xp.abs(a, out=xp.empty_like(a))
            xp.negative(t, out=t)
            xp.exp(t, out=t)
            t += 1
            xp.reciprocal(t, out=t)
            t *= xp.exp(xp.minimum(a, 0))
        self.out = t
        return t

    def vjp(self, g):
        return (g * self.out * (1 - self.out),)


class ReLU(Function):
    fresh_grads = True

    def forward(self, a):
        self.out = self.xp.maximum(a, 0)
        return self.out

    def vjp(self, g):
        return (g * (self.out > 0),)


class LeakyReLU(Function):
    fresh_grads = True

    def forward(self, a, slope=0.01):
        self.pos = a > 0
        self.slope = slope
        return self.xp.where(self.pos, a, a * slope)

    def vjp(self, g):
        return (self.xp.where(self.pos, g, g * self.slope),)


class Clip(Function):
    def forward(self, a, lo=None, hi=None):
        xp = self.xp
        if a.dtype.kind in "iu":  # an integer bound beyond the dtype's range (-1 for uint8) is its edge
            info = xp.iinfo(a.dtype)
            lo, hi = (None if b is None else min(max(b, info.min), info.max) for b in (lo, hi))
        out = a
        inside = None
        if lo is not None:
            inside = a >= lo
            out = xp.maximum(out, a.dtype.type(lo))
        if hi is not None:
            below = a <= hi
            inside = below if inside is None else inside & below
            out = xp.minimum(out, a.dtype.type(hi))
        self.inside = inside
        return out if out is not a else a.copy()

    def vjp(self, g):
        return (g if self.inside is None else g * self.inside,)


class Where(Function):
    fresh_grads = True

    differentiable = 2

    def forward(self, a, b, cond):
        if a.dtype is not b.dtype:
            a, b = promote(a, b)
        self.cond = cond.astype(bool)
        return self.xp.where(self.cond, a, b)

    def vjp(self, g):
        zero = g.dtype.type(0)
        return (
            self.xp.where(self.cond, g, zero) if self.needs[0] else None,
            self.xp.where(self.cond, zero, g) if self.needs[1] else None,
            None,
        )


class _Extremum(Function):
    """Shared gradient of maximum/minimum: to the winner, split evenly on ties (as PyTorch)."""

    fresh_grads = True

    def vjp(self, g):
        xp = self.xp
        half = g * g.dtype.type(0.5)
        zero = g.dtype.type(0)
        ga = xp.where(self.tie, half, xp.where(self.a_wins, g, zero))
        gb = xp.where(self.tie, half, xp.where(self.a_wins, zero, g))
        return ga, gb


class Maximum(_Extremum):
    def forward(self, a, b):
        if a.dtype is not b.dtype:
            a, b = promote(a, b)
        self.a_wins = a > b
        self.tie = a == b
        return self.xp.maximum(a, b)


class Minimum(_Extremum):
    def forward(self, a, b):
        if a.dtype is not b.dtype:
            a, b = promote(a, b)
        self.a_wins = a < b
        self.tie = a == b
        return self.xp.minimum(a, b)


class Cast(Function):
    fresh_grads = True

    def forward(self, a, dtype=None):
        self.src = a.dtype
        return a.astype(dtype)

    def vjp(self, g):
        return (g.astype(self.src),)


def exp(a: Tensor) -> Tensor:
    """``e**a`` elementwise. d/da = exp(a). Example: ``exp(tensor([0.]))`` → ``tensor([1.])``."""
    return Exp.apply(_floating(a))


def log(a: Tensor) -> Tensor:
    """Natural logarithm. d/da = 1/a. Example: ``log(tensor([1.]))`` → ``tensor([0.])``."""
    return Log.apply(_floating(a))


def sqrt(a: Tensor) -> Tensor:
    """Square root. d/da = 1/(2·sqrt(a)). Example: ``sqrt(tensor([4.]))`` → ``tensor([2.])``."""
    return Sqrt.apply(_floating(a))


def abs(a: Tensor) -> Tensor:  # noqa: A001 - mirrors torch.abs
    """|a|. d/da = sign(a) (0 at 0, as in PyTorch)."""
    return Abs.apply(a)


def tanh(a: Tensor) -> Tensor:
    """Hyperbolic tangent. d/da = 1 - tanh(a)²."""
    return Tanh.apply(_floating(a))


def sigmoid(a: Tensor) -> Tensor:
    """Logistic function 1/(1+e^-a), computed without overflow. d/da = y(1-y)."""
    return Sigmoid.apply(a)


def relu(a: Tensor) -> Tensor:
    """max(0, a). d/da = 1 where a > 0, else 0. Example: ``relu(tensor([-1., 2.]))`` → ``[0., 2.]``."""
    return ReLU.apply(a)


def leaky_relu(a: Tensor, negative_slope: float = 0.01) -> Tensor:
    """a where a > 0, else ``negative_slope``·a."""
    return LeakyReLU.apply(a, slope=negative_slope)


def clip(a: Tensor, lo: float | None = None, hi: float | None = None) -> Tensor:
    """Clamp into [lo, hi] (either may be None). The gradient passes where lo ≤ a ≤ hi."""
    if any(isinstance(b, float) for b in (lo, hi)):  # float bounds on integers give floats, as in torch
        a = _floating(a)
    return Clip.apply(a, lo=lo, hi=hi)


def where(cond: Any, a: Tensor | float, b: Tensor | float) -> Tensor:
    """``a`` where ``cond`` is true, else ``b`` (broadcasting). ``cond`` gets no gradient."""
    like = a if isinstance(a, Tensor) else b
    if not isinstance(like, Tensor):
        raise TypeError("where(): a or b must be a Tensor")
    return Where.apply(lift(a, like), lift(b, like), lift(cond, like))


def maximum(a: Tensor | float, b: Tensor | float) -> Tensor:
    """Elementwise maximum; on ties the gradient is split evenly between ``a`` and ``b``."""
    return Maximum.apply(*_lift_pair(a, b))


def minimum(a: Tensor | float, b: Tensor | float) -> Tensor:
    """Elementwise minimum; on ties the gradient is split evenly between ``a`` and ``b``."""
    return Minimum.apply(*_lift_pair(a, b))


def _lift_pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Both operands as tensors; a Python number or list is lifted beside the other operand."""
    if type(b) is not Tensor:
        b = lift(b, a)
    if type(a) is not Tensor:
        a = lift(a, b)
    return a, b


def _floating(a: Tensor) -> Tensor:
    """``a`` itself when floating, else in float32, torch's default dtype: a function that is only
    defined on the reals (exp, log, ...) of an integer or bool tensor is float32 there too."""
    dtype = getattr(a.data, "dtype", None)
    return a if dtype is None or dtype.kind in "fc" else Cast.apply(a, dtype="float32")


def cast(a: Tensor, dtype: Any) -> Tensor:
    """Convert to ``dtype``; the gradient is cast back to the input's dtype."""
    return Cast.apply(a, dtype=dtype)
