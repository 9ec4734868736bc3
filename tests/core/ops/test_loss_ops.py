"""mse_loss, cross_entropy, nll_loss, binary_cross_entropy_with_logits: every reduction,
ignore_index, label smoothing, pos_weight, target gradients, and huge logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dlia
from helpers import OpCase, OpTestCase, compare_torch

REDUCTIONS = ("mean", "sum", "none")
IGNORE = -100


def _ignoring(t, value=IGNORE):
    """Targets with every third entry replaced by ``value`` (works on dlia and torch tensors)."""
    mask = (np.arange(t.numel() if isinstance(t, torch.Tensor) else t.size) % 3 == 0).reshape(tuple(t.shape))
    if isinstance(t, torch.Tensor):
        return torch.where(torch.from_numpy(mask), value, t)
    return dlia.where(mask, value, t)  # an op, so it works on graph nodes too


def loss_cases(name, ours, theirs, shape_sets, domains, reductions=REDUCTIONS, tag="", **kwargs):
    """One case per shape set and reduction; ``kwargs`` go to both losses."""
    return [
        OpCase(
            name,
            lambda *a, r=r: ours(*a, reduction=r, **kwargs),
            lambda *t, r=r: theirs(*t, reduction=r, **kwargs),
            tuple(shapes), domains, tag=f"{r}{tag}",
        )
        for shapes in shape_sets for r in reductions
    ]


CLASS_SHAPES = [[(4, 5), (4,)], [(2, 3, 4), (2, 4)], [(2, 3, 2, 2), (2, 2, 2)], [(5,), ()]]


class TestMSE(OpTestCase):
    cases = loss_cases("mse_loss", dlia.mse_loss, F.mse_loss, [[(4, 3), (4, 3)], [(5,), (5,)], [(), ()]], "real")


class TestCrossEntropy(OpTestCase):
    cases = [
        *loss_cases("cross_entropy", dlia.cross_entropy, F.cross_entropy, CLASS_SHAPES, ("real", "int:3")),
        *loss_cases("cross_entropy", dlia.cross_entropy, F.cross_entropy, CLASS_SHAPES[:3], ("real", "int:3"),
                    tag=",smooth", label_smoothing=0.2),
        *loss_cases("cross_entropy",
                    lambda x, t, **k: dlia.cross_entropy(x, _ignoring(t), **k),
                    lambda x, t, **k: F.cross_entropy(x, _ignoring(t), **k),
                    CLASS_SHAPES[:3], ("real", "int:3"), tag=",ignore"),
        *loss_cases("cross_entropy",
                    lambda x, t, **k: dlia.cross_entropy(x, _ignoring(t, 1), ignore_index=1, **k),
                    lambda x, t, **k: F.cross_entropy(x, _ignoring(t, 1), ignore_index=1, **k),
                    CLASS_SHAPES[:2], ("real", "int:3"), tag=",ignore=1,smooth", label_smoothing=0.1),
    ]


class TestNLL(OpTestCase):
    cases = [
        *loss_cases("nll_loss", dlia.nll_loss, F.nll_loss, CLASS_SHAPES, ("real", "int:3")),
        *loss_cases("nll_loss",
                    lambda x, t, **k: dlia.nll_loss(x, _ignoring(t), **k),
                    lambda x, t, **k: F.nll_loss(x, _ignoring(t), **k),
                    CLASS_SHAPES[:3], ("real", "int:3"), tag=",ignore"),
        *loss_cases("nll_of_log_softmax",
                    lambda x, t, **k: dlia.nll_loss(dlia.log_softmax(x, 1), t, **k),
                    lambda x, t, **k: F.nll_loss(F.log_softmax(x, 1), t, **k),
                    CLASS_SHAPES[:2], ("real", "int:3")),
    ]


POS_WEIGHT = np.array([0.5, 2.0, 3.0])


class TestBCEWithLogits(OpTestCase):
    """The target is a float input too, so its gradient is checked as well."""

    cases = [
        *loss_cases("bce_with_logits", dlia.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits,
                    [[(4, 3), (4, 3)], [(6,), (6,)], [(), ()]], ("real", "probability")),
        *loss_cases("bce_with_logits",
                    lambda x, y, **k: dlia.binary_cross_entropy_with_logits(
                        x, y, pos_weight=dlia.tensor(POS_WEIGHT.astype(x.dtype)), **k),
                    lambda x, y, **k: F.binary_cross_entropy_with_logits(
                        x, y, pos_weight=torch.tensor(POS_WEIGHT, dtype=x.dtype), **k),
                    [[(4, 3), (4, 3)], [(2, 2, 3), (2, 2, 3)]], ("real", "probability"), tag=",pos_weight"),
    ]


HUGE = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [5e3, 1e4, -1e4], [1e4, 1e4, 1e4]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_is_stable_for_huge_logits(dtype, reduction, label_smoothing):
    target = np.array([1, 0, 2, 1])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        outs, xs = compare_torch(
            lambda x, t: dlia.cross_entropy(x, t, reduction=reduction, label_smoothing=label_smoothing),
            lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=label_smoothing),
            HUGE.astype(dtype), target, atol=1e-6, rtol=1e-6,
        )
    assert np.isfinite(outs[0].numpy()).all() and np.isfinite(xs[0].grad.numpy()).all()
    assert outs[0].numpy().max() > 1e3  # the wrong-class rows really cost ~1e4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pos_weight", [None, 3.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_is_stable_for_huge_logits(dtype, pos_weight, reduction):
    x = np.array([1e4, -1e4, 1e4, -1e4, 0.0, 30.0, -30.0], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.3, 0.7], dtype=dtype)
    pw = None if pos_weight is None else np.full(7, pos_weight, dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        outs, xs = compare_torch(
            lambda a, b: dlia.binary_cross_entropy_with_logits(a, b, reduction, pw),
            lambda a, b: F.binary_cross_entropy_with_logits(
                a, b, reduction=reduction, pos_weight=None if pw is None else torch.from_numpy(pw)),
            x, y, atol=1e-5, rtol=1e-6,
        )
    assert all(np.isfinite(t.grad.numpy()).all() for t in xs)


def test_nll_of_log_softmax_is_stable_for_huge_logits():
    compare_torch(lambda x, t: dlia.nll_loss(dlia.log_softmax(x, -1), t),
                  lambda x, t: F.nll_loss(F.log_softmax(x, -1), t), HUGE, np.array([1, 0, 2, 1]), atol=1e-6)


def test_cross_entropy_with_every_target_ignored_is_nan_like_torch():
    x = np.random.default_rng(0).standard_normal((3, 4))
    t = np.full(3, IGNORE)
    ours = dlia.cross_entropy(dlia.tensor(x), t)
    assert np.isnan(ours.item()) and np.isnan(F.cross_entropy(torch.tensor(x), torch.tensor(t)).item())
    for r in ("sum", "none"):
        compare_torch(lambda a, r=r: dlia.cross_entropy(a, t, reduction=r),
                      lambda a, r=r: F.cross_entropy(a, torch.tensor(t), reduction=r), x)


def test_losses_accept_plain_targets_and_keep_float32():
    x = dlia.tensor(np.zeros((2, 3), dtype=np.float32), requires_grad=True)
    loss = dlia.cross_entropy(x, [0, 2])
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.item(), np.log(3), rtol=1e-6)
    assert dlia.nll_loss(x, [1, 1]).dtype == np.float32
    assert dlia.mse_loss(x, np.ones((2, 3), dtype=np.float32)).dtype == np.float32
    assert dlia.binary_cross_entropy_with_logits(x, np.ones((2, 3), dtype=np.float32)).dtype == np.float32


LOSS_TARGETS = [  # (id, dlia target, torch target given the input's torch dtype)
    ("float list", [[1.0, 0.0], [0.5, 1.0]], lambda dt: torch.tensor([[1.0, 0.0], [0.5, 1.0]], dtype=dt)),
    ("int list", [[1, 0], [0, 1]], lambda dt: torch.tensor([[1, 0], [0, 1]], dtype=dt)),
    ("int64 tensor", dlia.tensor([[1, 0], [0, 1]]), lambda dt: torch.tensor([[1, 0], [0, 1]])),
    ("float32 tensor", dlia.tensor([[1.0, 0.0], [0.5, 1.0]]), lambda dt: torch.tensor([[1.0, 0.0], [0.5, 1.0]])),
    ("float64 tensor", dlia.tensor(np.array([[1.0, 0.0], [0.5, 1.0]])),
     lambda dt: torch.tensor([[1.0, 0.0], [0.5, 1.0]], dtype=torch.float64)),
]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name, target, twin", LOSS_TARGETS, ids=[c[0] for c in LOSS_TARGETS])
@pytest.mark.parametrize("loss, torch_loss", [(dlia.mse_loss, F.mse_loss),
                                              (dlia.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits)])
def test_losses_promote_plain_and_integer_targets_like_torch(loss, torch_loss, name, target, twin, dtype):
    """A list target takes the input's dtype (mse_loss(x_f32, [1., 1.]) stays float32); a tensor
    target promotes as torch's binary ops do (an int64 target never makes float32 float64)."""
    a = np.array([[0.5, -1.0], [2.0, 0.25]], dtype)
    x, t = dlia.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    if torch_loss is F.binary_cross_entropy_with_logits and isinstance(target, dlia.Tensor):
        if target.dtype.kind == "f" and target.dtype != dtype:
            pytest.skip("torch's BCE takes the target's float dtype, not the promoted one; dlia promotes")
        if target.dtype.kind == "i":  # torch refuses an integer target here; dlia promotes it as mse_loss does
            twin = lambda dt: torch.tensor([[1, 0], [0, 1]], dtype=dt)  # noqa: E731
    ours, theirs = loss(x, target), torch_loss(t, twin(t.dtype))
    assert ours.dtype == theirs.detach().numpy().dtype
    ours.backward()
    theirs.backward()
    assert x.grad.dtype == dtype
    tol = 2e-3 if dtype == np.float16 else 1e-6
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=tol)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("loss", [dlia.cross_entropy, dlia.nll_loss])
def test_class_losses_reject_bad_targets(loss):
    x = dlia.tensor(np.zeros((4, 3)))
    with pytest.raises(IndexError, match="out of range"):
        loss(x, np.array([0, 1, 2, 3]))
    with pytest.raises(IndexError, match="out of range"):
        loss(x, np.array([0, 1, -2, 1]))
    with pytest.raises(dlia.ShapeError, match="integer"):
        loss(x, np.array([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="reduction"):
        loss(x, np.array([0, 1, 2, 1]), reduction="avg")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_of_empty_inputs_is_nan_with_an_empty_gradient_like_torch(reduction):
    """The backward of mse_loss on empty inputs raised ZeroDivisionError."""
    with np.errstate(all="raise"):  # quietly, as torch
        compare_torch(lambda a, b: dlia.mse_loss(a, b, reduction=reduction),
                      lambda a, b: F.mse_loss(a, b, reduction=reduction), np.zeros((0, 3)), np.zeros((0, 3)))
