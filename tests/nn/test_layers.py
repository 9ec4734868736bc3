"""Layers against their ``torch.nn`` twins with copied weights: outputs and every gradient (inputs
and parameters) to 1e-5 in float32."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import dlia
from dlia import nn

RTOL = ATOL = 1e-5


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _copy_params(ours: nn.Module, theirs: torch.nn.Module) -> None:
    """Copy our parameters into the torch twin (names and shapes must agree)."""
    tparams = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(tparams)
    with torch.no_grad():
        for name, p in ours.named_parameters():
            assert p.shape == tuple(tparams[name].shape), name
            tparams[name].copy_(torch.from_numpy(p.numpy().copy()))


def _close(a: Any, b: torch.Tensor, what: str) -> None:
    a = a.numpy() if hasattr(a, "numpy") else np.asarray(a)
    b = b.detach().numpy()
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} vs torch {b.dtype}"
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=what)


def _compare(ours: nn.Module, theirs: torch.nn.Module, inputs: list[np.ndarray],
             run: Callable[[Any, list[Any]], Any] | None = None, seed: int = 0) -> None:
    """Forward both on the same inputs, backprop one random cotangent, compare everything."""
    run = run or (lambda m, xs: m(*xs))
    xs = [dlia.tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in inputs]
    txs = [torch.tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in inputs]
    out, tout = run(ours, xs), run(theirs, txs)
    _close(out, tout, "output")
    u = _rng(seed + 100).standard_normal(tout.shape).astype(np.float32)
    (out * dlia.tensor(u)).sum().backward()
    (tout * torch.from_numpy(u)).sum().backward()
    for i, (x, tx) in enumerate(zip(xs, txs)):
        if tx.requires_grad:
            _close(x.grad, tx.grad, f"gradient of input {i}")
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, tparams[name].grad, f"gradient of {name}")


# -- Linear -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 5), (5,)], ids=["2d", "3d", "1d"])
def test_linear_matches_torch(shape: tuple[int, ...], bias: bool) -> None:
    ours = nn.Linear(5, 3, bias=bias, generator=dlia.Generator(1))
    theirs = torch.nn.Linear(5, 3, bias=bias)
    _copy_params(ours, theirs)
    _compare(ours, theirs, [_rng(2).standard_normal(shape).astype(np.float32)])
    if not bias:
        assert ours.bias is None and [n for n, _ in ours.named_parameters()] == ["weight"]


def test_linear_default_init_bounds_like_torch() -> None:
    """Weights and bias in U(-1/√in, 1/√in): PyTorch's kaiming_uniform_(a=√5) default."""
    lin = nn.Linear(400, 300, generator=dlia.Generator(0))
    bound = 1 / np.sqrt(400)
    for p in (lin.weight.numpy(), lin.bias.numpy()):
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.98 * bound
    assert abs(lin.weight.numpy().std() - bound / np.sqrt(3)) < 0.01 * bound


def test_linear_errors_name_the_shapes() -> None:
    lin = nn.Linear(5, 3)
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(3, 5\)"):
        lin(dlia.ones((2, 4)))
    with pytest.raises(ValueError, match="positive"):
        nn.Linear(0, 3)
    assert "in_features=5, out_features=3, bias=True" in repr(lin)


def test_linear_seeded_generator_reproducible() -> None:
    a = nn.Linear(4, 3, generator=dlia.Generator(7))
    b = nn.Linear(4, 3, generator=dlia.Generator(7))
    c = nn.Linear(4, 3, generator=dlia.Generator(8))
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    np.testing.assert_array_equal(a.bias.numpy(), b.bias.numpy())
    assert not np.array_equal(a.weight.numpy(), c.weight.numpy())


def test_mlp_matches_torch() -> None:
    ours = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 8), nn.LeakyReLU(0.1),
                         nn.Linear(8, 3), nn.Identity())
    theirs = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8),
                                 torch.nn.LeakyReLU(0.1), torch.nn.Linear(8, 3), torch.nn.Identity())
    _copy_params(ours, theirs)
    _compare(ours, theirs, [_rng(3).standard_normal((6, 3, 4)).astype(np.float32)])


# -- Embedding ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding_idx", [None, 2], ids=["plain", "padding_idx"])
def test_embedding_matches_torch(padding_idx: int | None) -> None:
    ours = nn.Embedding(9, 4, padding_idx=padding_idx, generator=dlia.Generator(4))
    theirs = torch.nn.Embedding(9, 4, padding_idx=padding_idx)
    if padding_idx is not None:
        np.testing.assert_array_equal(ours.weight.numpy()[padding_idx], 0.0)  # initialised to zero, as torch
    _copy_params(ours, theirs)
    idx = np.array([[1, 2, 2, 8], [0, 1, 2, 5]])
    _compare(ours, theirs, [idx])


# -- activations --------------------------------------------------------------------------------------
ACTIVATIONS = [
    ("relu", nn.ReLU(), torch.nn.ReLU()),
    ("sigmoid", nn.Sigmoid(), torch.nn.Sigmoid()),
    ("tanh", nn.Tanh(), torch.nn.Tanh()),
    ("leaky_relu", nn.LeakyReLU(), torch.nn.LeakyReLU()),
    ("leaky_relu_0.2", nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    ("softmax_last", nn.Softmax(), torch.nn.Softmax(dim=-1)),
    ("softmax_axis1", nn.Softmax(axis=1), torch.nn.Softmax(dim=1)),
    ("log_softmax_last", nn.LogSoftmax(), torch.nn.LogSoftmax(dim=-1)),
    ("log_softmax_axis0", nn.LogSoftmax(axis=0), torch.nn.LogSoftmax(dim=0)),
    ("identity", nn.Identity(), torch.nn.Identity()),
    ("flatten", nn.Flatten(), torch.nn.Flatten()),
]


@pytest.mark.parametrize(("name", "ours", "theirs"), ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_matches_torch(name: str, ours: nn.Module, theirs: torch.nn.Module) -> None:
    x = (3 * _rng(5).standard_normal((4, 5, 3))).astype(np.float32)
    _compare(ours, theirs, [x])


def test_softmax_is_stable_for_huge_logits() -> None:
    x = np.array([[1000.0, 0.0, -1000.0], [-5e4, -5e4, -5e4]], np.float32)
    _compare(nn.LogSoftmax(), torch.nn.LogSoftmax(dim=-1), [x])
    _compare(nn.Softmax(), torch.nn.Softmax(dim=-1), [x])


# -- loss modules ----------------------------------------------------------------------------------------
def _loss_case(ours: nn.Module, theirs: torch.nn.Module, inputs: list[np.ndarray]) -> None:
    _compare(ours, theirs, inputs, run=lambda m, xs: m(*xs))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction: str) -> None:
    r = _rng(6)
    _loss_case(nn.MSELoss(reduction), torch.nn.MSELoss(reduction=reduction),
               [r.standard_normal((5, 3)).astype(np.float32), r.standard_normal((5, 3)).astype(np.float32)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 1], ids=["no_ignore", "ignore_1"])
def test_cross_entropy_loss_matches_torch(reduction: str, ignore_index: int) -> None:
    r = _rng(7)
    logits = (2 * r.standard_normal((8, 4))).astype(np.float32)
    target = np.array([0, 1, 2, 3, 1, 1, 0, 2])
    _loss_case(nn.CrossEntropyLoss(ignore_index=ignore_index, reduction=reduction),
               torch.nn.CrossEntropyLoss(ignore_index=ignore_index, reduction=reduction), [logits, target])


def test_cross_entropy_loss_ignore_index_in_spatial_targets_and_smoothing() -> None:
    r = _rng(8)
    logits = r.standard_normal((2, 3, 4, 5)).astype(np.float32)  # (N, C, H, W)
    target = r.integers(0, 3, (2, 4, 5))
    target[0, 0, :3] = -100
    _loss_case(nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), [logits, target])
    _loss_case(nn.CrossEntropyLoss(label_smoothing=0.1), torch.nn.CrossEntropyLoss(label_smoothing=0.1),
               [logits[:, :, 0, 0], target[:, 0, 3]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_torch(reduction: str) -> None:
    r = _rng(9)
    logp = np.log(r.dirichlet(np.ones(5), size=6)).astype(np.float32)
    target = np.array([4, 0, 2, 2, 3, 1])
    _loss_case(nn.NLLLoss(reduction=reduction), torch.nn.NLLLoss(reduction=reduction), [logp, target])
    _loss_case(nn.NLLLoss(ignore_index=2, reduction=reduction),
               torch.nn.NLLLoss(ignore_index=2, reduction=reduction), [logp, target])


def test_log_softmax_then_nll_equals_cross_entropy() -> None:
    x = _rng(10).standard_normal((5, 4)).astype(np.float32)
    t = np.array([3, 0, 1, 1, 2])
    a = nn.NLLLoss()(nn.LogSoftmax()(dlia.tensor(x)), t).item()
    b = nn.CrossEntropyLoss()(dlia.tensor(x), t).item()
    assert a == pytest.approx(b, rel=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("pos_weight", [None, "vector"], ids=["no_pos_weight", "pos_weight"])
def test_bce_with_logits_loss_matches_torch(reduction: str, pos_weight: str | None) -> None:
    r = _rng(11)
    logits = (3 * r.standard_normal((6, 4))).astype(np.float32)
    target = r.uniform(0, 1, (6, 4)).astype(np.float32)
    target[:3] = np.round(target[:3])  # hard and soft labels
    pw = None if pos_weight is None else np.array([0.5, 1.0, 2.0, 4.0], np.float32)
    ours = nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=None if pw is None else dlia.tensor(pw))
    theirs = torch.nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=None if pw is None else torch.from_numpy(pw))
    _loss_case(ours, theirs, [logits, target])  # gradients w.r.t. logits and targets


def test_bce_with_logits_is_stable_for_huge_logits() -> None:
    logits = np.array([1e4, -1e4, 80.0, -80.0], np.float32)
    target = np.array([0.0, 1.0, 1.0, 0.0], np.float32)
    _loss_case(nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), [logits, target])


def test_loss_modules_reject_bad_inputs_with_shapes() -> None:
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss("avg")(dlia.ones(2), dlia.ones(2))
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        nn.CrossEntropyLoss()(dlia.ones((3, 4)), np.array([0, 1]))
    with pytest.raises(IndexError, match="out of range"):
        nn.CrossEntropyLoss()(dlia.ones((2, 4)), np.array([0, 4]))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        nn.MSELoss()(dlia.ones((2, 3)), dlia.ones((3, 2)))
