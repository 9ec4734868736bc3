"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_``."""

from __future__ import annotations

import math
from collections.abc import Iterable

from dlia.core.sparse import SparseGrad
from dlia.core.tensor import Tensor


def _params_with_grad(params: Iterable[Tensor] | Tensor) -> list[Tensor]:
    if isinstance(params, Tensor):
        params = [params]
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(params: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale all gradients together so their joint norm is at most ``max_norm``.

    Returns:
        The total norm before clipping (``inf`` norm for ``norm_type=float('inf')``).
    """
    ps = _params_with_grad(params)
    if not ps:
        return 0.0
    norms = []
    for p in ps:
        g = p.grad.coalesce().values if isinstance(p.grad, SparseGrad) else p.grad.data
        a = abs(g)
        norms.append(float(a.max()) if norm_type == math.inf else float((a**norm_type).sum()))
    total = max(norms) if norm_type == math.inf else sum(norms) ** (1.0 / norm_type)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in ps:
            if isinstance(p.grad, SparseGrad):
                p.grad = p.grad * coef
            else:
                p.grad = Tensor(p.grad.data * p.grad.data.dtype.type(coef))
    return total


def clip_grad_value_(params: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value]."""
    for p in _params_with_grad(params):
        g = p.grad.to_dense() if isinstance(p.grad, SparseGrad) else p.grad.data
        p.grad = Tensor(g.clip(-clip_value, clip_value))
