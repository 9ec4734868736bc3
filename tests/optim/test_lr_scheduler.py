"""Learning-rate schedules against ``torch.optim.lr_scheduler``: the lr of every parameter group
over 30 steps, to 1e-9 relative, and a ``state_dict`` round trip that resumes the sequence."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import dlia
from dlia import nn, optim
from dlia.optim import lr_scheduler

STEPS = 30
BASE_LRS = (0.1, 0.03)  # two parameter groups with their own lr


def _lambda(epoch: int) -> float:
    return 0.95**epoch / (1 + 0.1 * epoch)


# name, dlia scheduler, torch scheduler, arguments (same names in both)
SCHEDULES = [
    ("step", lr_scheduler.StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=7, gamma=0.5)),
    ("step_default_gamma", lr_scheduler.StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=4)),
    ("exponential", lr_scheduler.ExponentialLR, torch.optim.lr_scheduler.ExponentialLR, dict(gamma=0.9)),
    ("linear_warmup", lr_scheduler.LinearLR, torch.optim.lr_scheduler.LinearLR,
     dict(start_factor=0.1, end_factor=1.0, total_iters=10)),
    ("linear_decay", lr_scheduler.LinearLR, torch.optim.lr_scheduler.LinearLR,
     dict(start_factor=1.0, end_factor=0.25, total_iters=12)),
    ("linear_default", lr_scheduler.LinearLR, torch.optim.lr_scheduler.LinearLR, dict()),
    ("cosine", lr_scheduler.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, dict(T_max=30)),
    # past T_max the cosine comes back up, in torch and here
    ("cosine_eta_min_restart", lr_scheduler.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR,
     dict(T_max=8, eta_min=1e-3)),
    ("lambda", lr_scheduler.LambdaLR, torch.optim.lr_scheduler.LambdaLR, dict(lr_lambda=_lambda)),
]
IDS = [s[0] for s in SCHEDULES]


def _optimizers() -> tuple[optim.SGD, torch.optim.SGD]:
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    ours = optim.SGD([{"params": a.parameters(), "lr": BASE_LRS[0]}, {"params": b.parameters(), "lr": BASE_LRS[1]}],
                     lr=BASE_LRS[0], momentum=0.9)
    p, q = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    theirs = torch.optim.SGD([{"params": p.parameters(), "lr": BASE_LRS[0]},
                              {"params": q.parameters(), "lr": BASE_LRS[1]}], lr=BASE_LRS[0], momentum=0.9)
    return ours, theirs


def _torch_step(opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler) -> None:
    opt.step()  # no grads: a no-op, but keeps torch from warning about the call order
    sched.step()


def _lr_sequences(ours_cls, torch_cls, kwargs) -> tuple[np.ndarray, np.ndarray]:
    opt, topt = _optimizers()
    sched, tsched = ours_cls(opt, **kwargs), torch_cls(topt, **kwargs)
    ours, theirs = [sched.get_last_lr()], [tsched.get_last_lr()]
    for _ in range(STEPS):
        opt.step()
        sched.step()
        _torch_step(topt, tsched)
        ours.append(sched.get_last_lr())
        theirs.append(tsched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == ours[-1]
        assert [g["lr"] for g in topt.param_groups] == theirs[-1]
    return np.array(ours), np.array(theirs)


@pytest.mark.parametrize(("name", "ours_cls", "torch_cls", "kwargs"), SCHEDULES, ids=IDS)
def test_lr_sequence_matches_torch(name, ours_cls, torch_cls, kwargs) -> None:
    ours, theirs = _lr_sequences(ours_cls, torch_cls, kwargs)
    assert ours.shape == (STEPS + 1, 2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-15)
    assert len(np.unique(ours[:, 0])) > 1, "the schedule never changed the lr"


@pytest.mark.parametrize(("name", "ours_cls", "torch_cls", "kwargs"), SCHEDULES, ids=IDS)
def test_state_dict_round_trip_resumes(name, ours_cls, torch_cls, kwargs) -> None:
    opt, _ = _optimizers()
    sched = ours_cls(opt, **kwargs)
    for _ in range(11):
        opt.step()
        sched.step()
    saved = sched.state_dict()
    assert saved["last_epoch"] == 11

    opt2, _ = _optimizers()
    sched2 = ours_cls(opt2, **kwargs)  # torch's resume order: build both, then load both
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(saved)
    assert sched2.last_epoch == 11
    assert sched2.get_last_lr() == sched.get_last_lr()
    for _ in range(STEPS - 11):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()

    # and the resumed schedule still follows torch's uninterrupted one
    _, theirs = _lr_sequences(ours_cls, torch_cls, kwargs)
    np.testing.assert_allclose(sched2.get_last_lr(), theirs[-1], rtol=1e-9, atol=1e-15)


def test_state_dict_holds_the_schedule_and_the_optimizer_holds_the_lrs_like_torch() -> None:
    """The scheduler's state is every attribute but the optimizer (the current lrs are the
    optimizer's state): loading it alone leaves the lrs alone, as in torch."""
    opt, topt = _optimizers()
    sched, tsched = lr_scheduler.StepLR(opt, step_size=3, gamma=0.5), torch.optim.lr_scheduler.StepLR(topt, 3, 0.5)
    for _ in range(7):
        opt.step()
        sched.step()
        _torch_step(topt, tsched)
    saved, tsaved = sched.state_dict(), tsched.state_dict()
    assert saved == {k: v for k, v in tsaved.items() if k != "_get_lr_called_within_step"}
    opt2, _ = _optimizers()
    sched2 = lr_scheduler.StepLR(opt2, step_size=3, gamma=0.5)
    sched2.load_state_dict(saved)
    assert sched2.last_epoch == 7 and [g["lr"] for g in opt2.param_groups] == list(BASE_LRS)
    opt2.load_state_dict(opt.state_dict())
    assert [g["lr"] for g in opt2.param_groups] == pytest.approx([0.1 * 0.25, 0.03 * 0.25], rel=1e-12)
    sched2.step()
    sched.step()
    assert sched2.get_last_lr() == sched.get_last_lr()


# -- the chainable form: schedulers compose, and start from the lr they find ---------------------
PAIRS = [
    ("exponential+step", (lr_scheduler.ExponentialLR, torch.optim.lr_scheduler.ExponentialLR, dict(gamma=0.5)),
     (lr_scheduler.StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=1, gamma=0.1))),
    ("warmup+cosine", SCHEDULES[3][1:], SCHEDULES[6][1:]),
    ("step+cosine_restart", SCHEDULES[0][1:], SCHEDULES[7][1:]),
    ("exponential+linear_decay", SCHEDULES[2][1:], SCHEDULES[4][1:]),
    ("cosine+lambda", SCHEDULES[6][1:], SCHEDULES[8][1:]),
    ("lambda+step", SCHEDULES[8][1:], SCHEDULES[1][1:]),
]


def test_exponential_chained_with_step_multiplies_like_torch() -> None:
    """The issue's example: after two steps the lr is 0.1 · 0.5² · 0.1² (not 0.1 · 0.1², the last
    scheduler's closed form alone)."""
    opt, _ = _optimizers()
    a, b = lr_scheduler.ExponentialLR(opt, gamma=0.5), lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    for _ in range(2):
        opt.step()
        a.step()
        b.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.0025, rel=1e-12)
    assert b.get_last_lr()[0] == pytest.approx(0.1 * 0.0025, rel=1e-12)


@pytest.mark.parametrize(("name", "first", "second"), PAIRS, ids=[p[0] for p in PAIRS])
def test_chained_pairs_match_torch_over_20_steps(name, first, second) -> None:
    opt, topt = _optimizers()
    scheds = [first[0](opt, **first[2]), second[0](opt, **second[2])]
    tscheds = [first[1](topt, **first[2]), second[1](topt, **second[2])]
    for _ in range(20):
        opt.step()
        topt.step()
        for s, t in zip(scheds, tscheds):
            s.step()
            t.step()
            np.testing.assert_allclose(s.get_last_lr(), t.get_last_lr(), rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [g["lr"] for g in topt.param_groups],
                                   rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(("name", "ours_cls", "torch_cls", "kwargs"), SCHEDULES, ids=IDS)
def test_scheduler_made_after_the_lr_changed_starts_from_it_like_torch(name, ours_cls, torch_cls, kwargs) -> None:
    opt, topt = _optimizers()
    for o in (opt, topt):
        for g in o.param_groups:
            g["lr"] *= 0.5  # changed by hand before any scheduler: that is the initial lr
    first, tfirst = ours_cls(opt, **kwargs), torch_cls(topt, **kwargs)
    assert [g["initial_lr"] for g in opt.param_groups] == [g["initial_lr"] for g in topt.param_groups]
    for _ in range(5):
        opt.step()
        topt.step()
        first.step()
        tfirst.step()
    for o in (opt, topt):
        o.param_groups[0]["lr"] = 0.07  # changed again: a new scheduler keeps it, initial_lr stays
    sched, tsched = ours_cls(opt, **kwargs), torch_cls(topt, **kwargs)
    np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-9, atol=1e-15)
    assert sched.base_lrs == tsched.base_lrs == [g["initial_lr"] for g in opt.param_groups]
    for _ in range(20):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-9, atol=1e-15)


def test_resuming_with_last_epoch_needs_initial_lr_like_torch() -> None:
    opt, topt = _optimizers()
    with pytest.raises(KeyError, match="initial_lr"):
        torch.optim.lr_scheduler.StepLR(topt, step_size=2, last_epoch=3)
    with pytest.raises(KeyError, match=r"initial_lr' is not specified in param_groups\[0\]"):
        lr_scheduler.StepLR(opt, step_size=2, last_epoch=3)
    for o in (opt, topt):
        for g in o.param_groups:
            g["initial_lr"] = 1.0
    sched, tsched = lr_scheduler.StepLR(opt, step_size=2, last_epoch=3), torch.optim.lr_scheduler.StepLR(topt, 2, last_epoch=3)
    for _ in range(6):
        sched.step()
        _torch_step(topt, tsched)
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)


def test_schedule_on_adam_changes_its_steps() -> None:
    """The optimizer reads ``group['lr']`` each step, so the schedule really acts on training."""
    ours = nn.Linear(3, 1)
    theirs = torch.nn.Linear(3, 1)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.numpy().copy()))
        theirs.bias.copy_(torch.from_numpy(ours.bias.numpy().copy()))
    opt, topt = optim.Adam(ours.parameters(), lr=0.05), torch.optim.Adam(theirs.parameters(), lr=0.05)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=10)
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    for _ in range(10):
        opt.zero_grad()
        (ours(dlia.tensor(x)) ** 2).mean().backward()
        opt.step()
        sched.step()
        topt.zero_grad()
        (theirs(torch.from_numpy(x)) ** 2).mean().backward()
        topt.step()
        tsched.step()
    np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_invalid_arguments_raise() -> None:
    opt, _ = _optimizers()
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="total_iters"):
        lr_scheduler.LinearLR(opt, total_iters=0)
    with pytest.raises(ValueError, match="T_max"):
        lr_scheduler.CosineAnnealingLR(opt, T_max=0)


def test_torch_emits_no_order_warning() -> None:
    """Guard for the comparison itself: torch's schedule was stepped as torch expects."""
    _, topt = _optimizers()
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _torch_step(topt, tsched)
