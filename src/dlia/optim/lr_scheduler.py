"""Learning-rate schedules: step, exponential, linear, cosine, lambda (PyTorch's names and forms).

Call ``scheduler.step()`` once per epoch (or per step) after ``optimizer.step()``. As in PyTorch,
each step computes a group's new lr from its *current* ``group["lr"]`` (the "chainable" form), so
schedulers compose: two schedulers on one optimizer multiply their factors, and a scheduler made
after the lr was changed by hand starts from that lr. ``LambdaLR`` is the exception, as in PyTorch:
it sets ``initial_lr · lr_lambda(epoch)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dlia.optim.optimizer import Optimizer


class LRScheduler:
    """Base class: holds ``last_epoch`` and updates every parameter group's ``lr`` on ``step()``.

    The first scheduler of an optimizer records each group's lr as ``group["initial_lr"]`` (once:
    later schedulers keep it) and ``base_lrs`` are those values. Subclasses implement ``get_lr``,
    the new lrs from the groups' current lrs at epoch ``last_epoch``; during the step made by the
    constructor ``_is_initial`` is true.

    Args:
        optimizer: the optimizer whose groups' ``lr`` is scheduled.
        last_epoch: the index of the last epoch when resuming (then every group must already hold
            ``initial_lr``, e.g. from the optimizer's loaded state); -1 starts a new schedule.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        for i, g in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                g.setdefault("initial_lr", g["lr"])
            elif "initial_lr" not in g:
                raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming a scheduler "
                               f"with last_epoch={last_epoch}: load the optimizer's state first")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The groups' lrs for epoch ``last_epoch``, from their current ``group["lr"]``."""
        raise NotImplementedError

    def _lrs(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The lrs this scheduler set last (one per parameter group)."""
        return list(self._last_lr)

    def step(self) -> None:
        self._step_count += 1
        self.last_epoch += 1
        for g, lr in zip(self.optimizer.param_groups, self.get_lr()):
            g["lr"] = lr
        self._last_lr = self._lrs()

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (``last_epoch``, ``base_lrs``, the schedule's settings,
        ``_last_lr``...), as in PyTorch. The lrs themselves live in the optimizer's state."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``; load the optimizer's state too, which holds the current lrs."""
        self.__dict__.update(state)


class StepLR(LRScheduler):
    """lr ← lr · γ every ``step_size`` epochs (alone: lr = initial_lr · γ^⌊epoch / step_size⌋)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        if step_size <= 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]


class ExponentialLR(LRScheduler):
    """lr ← lr · γ every epoch (alone: lr = initial_lr · γ^epoch)."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]


class LinearLR(LRScheduler):
    """The factor goes linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps,
    then stays: f(e) = start + (end - start)·min(e, total_iters)/total_iters. Each step multiplies
    the lr by f(e)/f(e-1) (the first by ``start_factor``)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        if total_iters <= 0:
            raise ValueError(f"LinearLR: total_iters must be positive, got {total_iters}")
        if not (0 < start_factor <= 1 and 0 <= end_factor <= 1):  # torch's bounds: start 0 would divide by 0
            raise ValueError(f"LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], "
                             f"got {start_factor} and {end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e = self.last_epoch
        if e == 0:
            return [lr * self.start_factor for lr in self._lrs()]
        if self._is_initial or e > self.total_iters:
            return self._lrs()
        slope = self.end_factor - self.start_factor  # f(e)/f(e-1) = 1 + slope / (T·start + (e-1)·slope)
        ratio = 1.0 + slope / (self.total_iters * self.start_factor + (e - 1) * slope)
        return [lr * ratio for lr in self._lrs()]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing (Loshchilov & Hutter, SGDR); alone:
    lr = η_min + (initial_lr - η_min)·(1 + cos(π·epoch / T_max)) / 2, coming back up after T_max.
    Each step scales the lr's distance to η_min by the ratio of consecutive cosine factors."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:  # noqa: N803
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, t, low = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._lrs()
        if (e - 1 - t) % (2 * t) == 0:  # leaving the bottom, where the ratio below would be 0/0
            return [lr + (base - low) * (1 - math.cos(math.pi / t)) / 2 for lr, base in zip(self._lrs(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * e / t)) / (1 + math.cos(math.pi * (e - 1) / t))
        return [ratio * (lr - low) + low for lr in self._lrs()]


class LambdaLR(LRScheduler):
    """lr = initial_lr · lr_lambda(epoch) (not chained: it overrides other schedulers, as in PyTorch)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float], last_epoch: int = -1) -> None:
        self.lr_lambda = lr_lambda
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * self.lr_lambda(self.last_epoch) for base in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        """As the base class, without the function (restore it by building the scheduler again)."""
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambda"}
