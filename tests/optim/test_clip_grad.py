"""Gradient clipping against ``torch.nn.utils``: the clipped gradients and the returned total norm."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dlia
from dlia import nn, optim

SHAPES = [(5, 4), (4,), (3, 2, 2)]


def _grads(scale: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(scale * rng.standard_normal(s)).astype(np.float32) for s in SHAPES]


def _pairs(grads: list[np.ndarray]) -> tuple[list[nn.Parameter], list[torch.nn.Parameter]]:
    ours, theirs = [], []
    for g in grads:
        p = nn.Parameter(np.zeros(g.shape, np.float32))
        p.grad = dlia.tensor(g.copy())
        q = torch.nn.Parameter(torch.zeros(g.shape))
        q.grad = torch.from_numpy(g.copy())
        ours.append(p)
        theirs.append(q)
    return ours, theirs


def _assert_same_grads(ours: list[nn.Parameter], theirs: list[torch.nn.Parameter]) -> None:
    for p, q in zip(ours, theirs):
        assert p.grad.shape == tuple(q.grad.shape)
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.0, 3.0], ids=["l2", "inf", "l1", "l3"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3], ids=["clips", "no_clip"])
def test_clip_grad_norm_matches_torch(norm_type: float, max_norm: float) -> None:
    grads = _grads(scale=2.0)
    ours, theirs = _pairs(grads)
    total = optim.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert float(total) == pytest.approx(ttotal.item(), rel=1e-5)
    _assert_same_grads(ours, theirs)
    joint = np.concatenate([p.grad.numpy().ravel() for p in ours])
    after = np.abs(joint).max() if norm_type == math.inf else (np.abs(joint) ** norm_type).sum() ** (1 / norm_type)
    if max_norm < float(total):
        assert after == pytest.approx(max_norm, rel=1e-4)
    else:
        np.testing.assert_array_equal(joint, np.concatenate([g.ravel() for g in grads]))


def test_clip_grad_norm_returns_norm_before_clipping() -> None:
    p = nn.Parameter(np.zeros(2, np.float32))
    p.grad = dlia.tensor(np.array([3.0, 4.0], np.float32))
    assert optim.clip_grad_norm_(p, 1.0) == pytest.approx(5.0)  # a single tensor works too
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    assert optim.clip_grad_norm_(p, 1.0, norm_type=math.inf) == pytest.approx(0.8, rel=1e-5)


def test_clip_grad_norm_skips_parameters_without_grad() -> None:
    grads = _grads(scale=1.0, seed=1)
    ours, theirs = _pairs(grads)
    extra, textra = nn.Parameter(np.ones(3, np.float32)), torch.nn.Parameter(torch.ones(3))
    total = optim.clip_grad_norm_([*ours, extra], 0.1)
    ttotal = torch.nn.utils.clip_grad_norm_([*theirs, textra], 0.1)
    assert float(total) == pytest.approx(ttotal.item(), rel=1e-5)
    assert extra.grad is None
    _assert_same_grads(ours, theirs)
    assert optim.clip_grad_norm_([extra], 1.0) == 0.0


def test_clip_grad_norm_on_a_model() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((10, 4)).astype(np.float32)
    y = np.arange(10) % 3
    nn.functional.cross_entropy(model(dlia.tensor(x)), y).backward()
    torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    total = optim.clip_grad_norm_(model.parameters(), 0.05)
    ttotal = torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.05)
    assert float(total) == pytest.approx(ttotal.item(), rel=1e-5)
    _assert_same_grads(list(model.parameters()), list(twin.parameters()))


@pytest.mark.parametrize("clip_value", [0.3, 10.0])
def test_clip_grad_value_matches_torch(clip_value: float) -> None:
    grads = _grads(scale=1.0, seed=3)
    ours, theirs = _pairs(grads)
    assert optim.clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    _assert_same_grads(ours, theirs)
    assert max(np.abs(p.grad.numpy()).max() for p in ours) <= clip_value


def test_clipping_sparse_gradients_matches_torch() -> None:
    """Repeated rows are summed before the norm is taken. (torch cannot clip sparse gradients,
    so its dense embedding gradient is the oracle.)"""
    weights = np.random.default_rng(4).standard_normal((10, 3)).astype(np.float32)
    idx = np.array([[1, 4, 4], [7, 1, 0]])
    emb = nn.Embedding(10, 3, sparse=True)
    emb.weight.data[...] = weights
    temb = torch.nn.Embedding(10, 3)
    with torch.no_grad():
        temb.weight.copy_(torch.from_numpy(weights))
    (emb(idx) ** 2).sum().backward()
    (temb(torch.from_numpy(idx)) ** 2).sum().backward()
    total = optim.clip_grad_norm_(emb.parameters(), 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(temb.parameters(), 1.0)
    assert float(total) == pytest.approx(ttotal.item(), rel=1e-5)
    assert isinstance(emb.weight.grad, dlia.SparseGrad)  # clipping keeps it sparse
    np.testing.assert_allclose(emb.weight.grad.to_dense(), temb.weight.grad.numpy(), rtol=1e-5, atol=1e-7)
