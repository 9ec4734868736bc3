"""The optimizers, each the PyTorch update rule written on arrays with in-place NumPy/CuPy math:
SGD (momentum, Nesterov, weight decay), Adam, AdamW, RMSprop, Adagrad."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from dlia.backend import native
from dlia.backend.device import get_array_module
from dlia.core.sparse import SparseGrad
from dlia.optim.optimizer import Optimizer


def _check(name: str, value: float, low: float = 0.0) -> None:
    if not value >= low:
        raise ValueError(f"invalid {name}: {value} (must be >= {low})")


class SGD(Optimizer):
    """Stochastic gradient descent: p ← p - lr·d, with momentum buffer b ← μ·b + (1-dampening)·g,
    d = b (or g + μ·b with Nesterov), and L2 weight decay g ← g + λ·p.

    Plain SGD (no momentum or weight decay) applies a ``SparseGrad`` to its rows only.
    """

    handles_sparse = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        _check("lr", lr)
        _check("momentum", momentum)
        _check("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def update(self, p, grad, group, state):
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        d = p.data
        if type(grad) is SparseGrad:
            if mu == 0 and wd == 0:
                xp = get_array_module(grad.values)
                xp.subtract.at(d, grad.indices, grad.values * d.dtype.type(lr))
                return
            grad = grad.to_dense()
        if not (mu or wd):  # plain SGD, the common case: one fused update
            d -= grad * d.dtype.type(lr)
            return
        if wd:
            grad = grad + wd * d
        if mu:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= mu
                buf += (1 - group["dampening"]) * grad
            grad = grad + mu * buf if group["nesterov"] else buf
        d -= d.dtype.type(lr) * grad

    flat_state = ("momentum_buffer",)

    def multi_tensor(self, group):
        # plain SGD is one fused operation per parameter already: gathering the gradients only pays
        # when the parameters themselves are flat (graph mode), which ``_step_group`` cannot know
        # before building the layout; so it runs parameter by parameter
        return bool(group["momentum"] or group["weight_decay"])

    def _init_state(self, p, group):
        return {}  # the momentum buffer starts as the first gradient: ``update_group`` makes it

    def update_group(self, flat, grads, group):
        """All parameters of the group at once (``Optimizer._step_group``): the same arithmetic as
        ``update``, element for element, on flat arrays."""
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        grad = flat.gather(grads)
        f = grad.dtype.type
        if wd:
            grad = grad + wd * flat.flat_params()
        if mu:
            buf = flat.arrays.get("momentum_buffer")
            if buf is None:
                buf = flat.add("momentum_buffer", grad.copy())
            else:
                buf *= mu
                buf += (1 - group["dampening"]) * grad
            grad = grad + mu * buf if group["nesterov"] else buf
        flat.subtract(f(lr) * grad)


class Adam(Optimizer):
    """Kingma & Ba (2015): m ← β₁m + (1-β₁)g, v ← β₂v + (1-β₂)g², p ← p - lr·m̂/(√v̂ + ε), with
    bias corrections; ``weight_decay`` adds λ·p to the gradient (L2), ``amsgrad`` keeps max v."""

    decoupled = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        _check("lr", lr)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"invalid betas {betas}: each must be in [0, 1)")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    flat_state = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def _init_state(self, p, group):
        xp = get_array_module(p.data)
        st = {"step": 0, "exp_avg": xp.zeros_like(p.data), "exp_avg_sq": xp.zeros_like(p.data)}
        if group["amsgrad"]:
            st["max_exp_avg_sq"] = xp.zeros_like(p.data)
        return st

    def update(self, p, grad, group, state):
        d = p.data
        xp = get_array_module(d)
        if "step" not in state:
            state.update(self._init_state(p, group))
        elif state["exp_avg"].dtype != d.dtype:  # the parameter changed dtype (module.to(dtype=...))
            for k in self.flat_state:
                if k in state:
                    state[k] = state[k].astype(d.dtype)
        state["step"] += 1
        lr, wd = group["lr"], group["weight_decay"]
        if wd:
            if self.decoupled:
                d *= d.dtype.type(1 - lr * wd)
            else:
                grad = grad + d.dtype.type(wd) * d
        tmp = self.scratch(p)  # one work buffer per parameter: the update allocates nothing
        _adam_step(xp, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"), tmp, group,
                   state["step"])
        d -= tmp

    def update_group(self, flat, grads, group):
        """All parameters of the group at once (``Optimizer._step_group``): the same arithmetic as
        ``update``, element for element, on flat arrays."""
        for st in flat.states:
            st["step"] += 1
        if "max_exp_avg_sq" not in flat.arrays and group["amsgrad"]:
            raise RuntimeError("amsgrad was switched on after the first step")
        xp = get_array_module(flat.grad)
        grad = flat.gather(grads)
        lr, wd = group["lr"], group["weight_decay"]
        if wd:
            f = grad.dtype.type
            if self.decoupled:
                flat.scale(f(1 - lr * wd))
            else:
                grad += flat.flat_params() * f(wd)
        a = flat.arrays
        _adam_step(xp, grad, a["exp_avg"], a["exp_avg_sq"], a.get("max_exp_avg_sq"), flat.tmp, group,
                   flat.states[0]["step"])
        flat.subtract(flat.tmp)


def _adam_step(xp, grad, m, v, vmax, tmp, group, t):
    """Update Adam's moments in place and leave the step lr·m̂/(√v̂ + ε) in ``tmp``."""
    (b1, b2), eps, lr = group["betas"], group["eps"], group["lr"]
    f = grad.dtype.type
    if group["amsgrad"] and vmax is None:
        raise RuntimeError("amsgrad was switched on after the first step")
    # in one pass where the compiled loop applies (float32 NumPy): the same operations, bit for bit
    if native.adam(grad, m, v, vmax if group["amsgrad"] else None, tmp, f(1 - b1), f(b2), f(1 - b2),
                   f(math.sqrt(1 - b2**t)), f(eps), f(lr / (1 - b1**t))):
        return
    xp.subtract(grad, m, out=tmp)  # m ← m + (1-β₁)(g - m), PyTorch's lerp
    tmp *= f(1 - b1)
    m += tmp
    v *= f(b2)  # v ← β₂v + (1-β₂)g²
    xp.multiply(grad, grad, out=tmp)
    tmp *= f(1 - b2)
    v += tmp
    if group["amsgrad"]:
        xp.maximum(vmax, v, out=vmax)
        v = vmax
    xp.sqrt(v, out=tmp)  # denominator √v̂ + ε
    tmp /= f(math.sqrt(1 - b2**t))
    tmp += f(eps)
    xp.divide(m, tmp, out=tmp)  # p ← p - lr/(1-β₁ᵗ) · m / denominator
    tmp *= f(lr / (1 - b1**t))


class AdamW(Adam):
    """Loshchilov & Hutter (2019): Adam with decoupled weight decay p ← p·(1 - lr·λ) (default λ=0.01)."""

    decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """Hinton's RMSprop as in PyTorch: s ← αs + (1-α)g², p ← p - lr·g/(√s + ε); optional centring
    (subtract the squared running mean of g) and momentum."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        _check("lr", lr)
        _check("alpha", alpha)
        _check("eps", eps)
        _check("momentum", momentum)
        _check("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def update(self, p, grad, group, state):
        d = p.data
        xp = get_array_module(d)
        f = d.dtype.type
        alpha, eps, wd, mu = group["alpha"], group["eps"], group["weight_decay"], group["momentum"]
        if "step" not in state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(d)
            if mu > 0:
                state["momentum_buffer"] = xp.zeros_like(d)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(d)
        state["step"] += 1
        if wd:
            grad = grad + f(wd) * d
        sq = state["square_avg"]
        sq *= f(alpha)
        sq += f(1 - alpha) * grad * grad
        if group["centered"]:
            ga = state["grad_avg"]
            ga += (grad - ga) * f(1 - alpha)
            avg = xp.sqrt(sq - ga * ga)
        else:
            avg = xp.sqrt(sq)
        avg += f(eps)
        if mu > 0:
            buf = state["momentum_buffer"]
            buf *= f(mu)
            buf += grad / avg
            d -= f(group["lr"]) * buf
        else:
            d -= f(group["lr"]) * grad / avg


class Adagrad(Optimizer):
    """Duchi et al. (2011): s ← s + g², p ← p - lr_t·g/(√s + ε), lr_t = lr / (1 + (t-1)·lr_decay).

    A ``SparseGrad`` (weight decay 0) updates only the rows it holds, as in PyTorch."""

    handles_sparse = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        _check("lr", lr)
        _check("lr_decay", lr_decay)
        _check("weight_decay", weight_decay)
        _check("eps", eps)
        _check("initial_accumulator_value", initial_accumulator_value)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def update(self, p, grad, group, state):
        d = p.data
        xp = get_array_module(d)
        f = d.dtype.type
        if "step" not in state:
            state["step"] = 0
            state["sum"] = xp.full_like(d, group["initial_accumulator_value"])
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        acc = state["sum"]
        if type(grad) is SparseGrad:
            if group["weight_decay"]:
                grad = grad.to_dense()
            else:
                g = grad.coalesce()
                rows = g.indices
                acc[rows] += g.values * g.values
                d[rows] -= f(clr) * g.values / (xp.sqrt(acc[rows]) + f(group["eps"]))
                return
        if group["weight_decay"]:
            grad = grad + f(group["weight_decay"]) * d
        acc += grad * grad
        d -= f(clr) * grad / (xp.sqrt(acc) + f(group["eps"]))
