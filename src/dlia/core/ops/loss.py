"""Losses, fused for speed and stability: mse, cross_entropy (logits + class indices),
nll (log-probabilities), binary_cross_entropy_with_logits.

``reduction`` is ``"mean"``, ``"sum"`` or ``"none"``, as in PyTorch. A target given as a list takes
the input's dtype; a target tensor of another dtype is promoted as the binary ops do
(``dlia.core.dtypes``): an integer target never turns a float32 loss into float64.
"""

from __future__ import annotations

from typing import Any

import numpy

from dlia.backend.device import get_array_module
from dlia.core.dtypes import promote
from dlia.core.function import Function, shape_error
from dlia.core.ops.arith import lift
from dlia.core.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


class MSELoss(Function):
    fresh_grads = True

    def forward(self, a, b, reduction="mean"):
        if a.shape != b.shape:
            raise shape_error("mse_loss", "input and target shapes differ", a.shape, b.shape)
        if a.dtype is not b.dtype:
            a, b = promote(a, b)
        diff = self.diff = a - b
        self.reduction = reduction
        if reduction == "none":
            return diff * diff
        flat = diff.reshape(-1)
        total = self.xp.dot(flat, flat)  # one BLAS call for Σ diff²
        if reduction == "sum":
            return total
        return total / total.dtype.type(diff.size) if diff.size else total * numpy.nan  # empty: nan, as torch

    def vjp(self, g):
        # empty inputs have an empty gradient: any scale will do
        scale = 2.0 / (self.diff.size or 1) if self.reduction == "mean" else 2.0
        ga = g * self.diff * self.diff.dtype.type(scale)
        return ga, (-ga if self.needs[1] else None)


def _flatten_classes(x: Any, t: Any, op: str) -> tuple[Any, Any]:
    """(N, C, d1, ...) logits and (N, d1, ...) targets → (M, C) and (M,)."""
    expect = () if x.ndim == 1 else (x.shape[0],) + x.shape[2:]
    if t.shape != expect:  # checked before any reshape, so the message is ours, not NumPy's
        raise shape_error(op, f"target shape must be {expect} for input shape {x.shape}", x.shape, t.shape)
    if t.dtype.kind not in "iu":
        raise shape_error(op, f"target must hold integer class indices, got {t.dtype}", x.shape, t.shape)
    if x.ndim == 1:
        return x[None, :], t.reshape(1)
    x2 = x if x.ndim == 2 else x.transpose((0, *range(2, x.ndim), 1)).reshape(-1, x.shape[1])
    return x2, t.reshape(-1)


def _unflatten_classes(g2: Any, shape: tuple[int, ...], xp: Any) -> Any:
    if len(shape) == 1:
        return g2.reshape(shape)
    if len(shape) == 2:
        return g2
    moved = g2.reshape((shape[0],) + shape[2:] + (shape[1],))
    return xp.moveaxis(moved, -1, 1)


class _ClassLoss(Function):
    """Shared bookkeeping of cross_entropy and nll_loss: targets, ignore_index, reduction."""

    fresh_grads = True

    differentiable = 1

    def _targets(self, x2, t2, ignore_index, reduction):
        xp = self.xp
        valid = t2 != ignore_index
        self.count = int(valid.sum())
        # every target counted (the usual case): no mask to apply, here or in the gradient
        self.valid = None if self.count == valid.size else valid
        tt = t2 if self.valid is None else xp.where(valid, t2, 0)
        c = x2.shape[1]
        if tt.size:
            lo, hi = int(tt.min()), int(tt.max())
            if hi >= c or lo < 0:
                raise IndexError(f"{self.name}: target class out of range [0, {c}): saw {lo}..{hi}")
        self.rows, self.tt = xp.arange(x2.shape[0]), tt
        self.reduction = reduction

    def _reduce(self, per_item, shape_out):
        if self.reduction == "none":
            return per_item.reshape(shape_out)
        total = per_item.sum()
        if self.reduction == "sum":
            return total
        return total / per_item.dtype.type(self.count) if self.count else total * numpy.nan

    def _masked(self, per_item):
        """Per-item losses with those of ignored targets zeroed (the same array when none is ignored)."""
        return per_item if self.valid is None else per_item * self.valid

    def _scale(self, g):
        """The upstream gradient per item, as a column: divided by the count for 'mean', zero for
        ignored targets."""
        if self.reduction == "none":
            g = g.reshape(-1, 1)
        elif self.reduction == "mean":
            g = g / g.dtype.type(max(self.count, 1))
        return g if self.valid is None else g * self.valid[:, None]


class CrossEntropy(_ClassLoss):
    name = "cross_entropy"

    def forward(self, x, t, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        xp = self.xp
        self.shape = x.shape
        x2, t2 = _flatten_classes(x, t, self.name)
        self._targets(x2, t2, ignore_index, reduction)
        shifted = x2 - x2.max(axis=1, keepdims=True)
        lse = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        shifted -= lse
        self.logp = shifted  # log-softmax
        self.smooth = label_smoothing
        per = -self.logp[self.rows, self.tt]
        if label_smoothing:
            per = (1 - label_smoothing) * per - label_smoothing * self.logp.mean(axis=1)
        return self._reduce(self._masked(per), t.shape)

    def vjp(self, g):
        xp = self.xp
        grad = xp.exp(self.logp)
        c = grad.shape[1]
        if self.smooth:
            grad -= self.smooth / c
            grad[self.rows, self.tt] -= 1 - self.smooth
        else:
            grad[self.rows, self.tt] -= 1
        grad *= self._scale(g)
        return _unflatten_classes(grad, self.shape, xp), None


class NLLLoss(_ClassLoss):
    name = "nll_loss"

    def forward(self, x, t, ignore_index=-100, reduction="mean"):
        self.shape = x.shape
        x2, t2 = _flatten_classes(x, t, self.name)
        self._targets(x2, t2, ignore_index, reduction)
        self.c, self.dtype = x2.shape, x2.dtype
        per = -x2[self.rows, self.tt]
        return self._reduce(self._masked(per), t.shape)

    def vjp(self, g):
        xp = self.xp
        grad = xp.zeros(self.c, dtype=self.dtype)
        grad[self.rows, self.tt] = -1
        grad *= self._scale(g)
        return _unflatten_classes(grad, self.shape, xp), None


class BCEWithLogits(Function):
    fresh_grads = True

    def forward(self, x, y, reduction="mean", pos_weight=None):
        if x.shape != y.shape:
            raise shape_error("binary_cross_entropy_with_logits", "input and target shapes differ", x.shape, y.shape)
        if x.dtype is not y.dtype:
            x, y = promote(x, y)
        xp = self.xp
        softplus_neg = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)  # log(1 + e^-x), stable
        self.x, self.y, self.sp, self.reduction = x, y, softplus_neg, reduction
        self.pw = None if pos_weight is None else xp.asarray(pos_weight, dtype=x.dtype)
        weight = 1 if self.pw is None else 1 + (self.pw - 1) * y
        per = (1 - y) * x + weight * softplus_neg
        if reduction == "none":
            return per
        total = per.sum()
        return total / total.dtype.type(per.size) if reduction == "mean" else total

    def vjp(self, g):
        xp = self.xp
        x, y = self.x, self.y
        if self.reduction == "mean":
            g = g / x.dtype.type(x.size)
        sig_neg = xp.exp(-self.sp)  # sigmoid(x) = exp(-softplus(-x)); so 1 - sigmoid(x) below
        one_minus = 1 - sig_neg
        weight = 1 if self.pw is None else 1 + (self.pw - 1) * y
        gx = g * ((1 - y) - weight * one_minus)
        gy = None
        if self.needs[1]:
            gy = g * (-x + (0 if self.pw is None else (self.pw - 1) * self.sp))
        return gx, gy


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error (1/n)·Σ(input - target)² (or its sum, or per element).

    Example: ``mse_loss(tensor([1., 2.]), tensor([1., 4.]))`` → ``tensor(2.)``.
    """
    _check_reduction(reduction)
    return MSELoss.apply(input, lift(target, input), reduction=reduction)


def cross_entropy(
    logits: Tensor,
    target: Any,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy from raw logits and integer class indices: -log softmax(x)[target].

    Shapes: logits (N, C) or (N, C, d1, ...); target (N,) or (N, d1, ...). Targets equal to
    ``ignore_index`` add nothing and are left out of the mean. Computed with log-sum-exp, so huge
    logits do not overflow. d/dlogits = softmax(x) - one_hot(target).

    Example: ``cross_entropy(tensor([[0., 0.]]), tensor([1]))`` → ``log 2 ≈ 0.6931``.
    """
    _check_reduction(reduction)
    if not isinstance(target, Tensor):
        target = Tensor(get_array_module(logits.data).asarray(target))  # on the logits' device
    return CrossEntropy.apply(logits, target, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)


def nll_loss(log_probs: Tensor, target: Any, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer targets given log-probabilities (e.g. log_softmax output)."""
    _check_reduction(reduction)
    if not isinstance(target, Tensor):
        target = Tensor(get_array_module(log_probs.data).asarray(target))
    return NLLLoss.apply(log_probs, target, ignore_index=ignore_index, reduction=reduction)


def binary_cross_entropy_with_logits(
    logits: Tensor, target: Tensor, reduction: str = "mean", pos_weight: Any = None
) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable step:
    (1-y)·x + w·log(1 + e^-x), with w = 1 + (pos_weight - 1)·y. d/dx = (1-y) - w·(1 - sigmoid(x)).
    """
    _check_reduction(reduction)
    if isinstance(pos_weight, Tensor):
        pos_weight = pos_weight.data
    return BCEWithLogits.apply(logits, lift(target, logits), reduction=reduction, pos_weight=pos_weight)
