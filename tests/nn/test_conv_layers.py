"""Conv2d, pooling and BatchNorm2d layers against their torch.nn twins with copied weights."""

import numpy as np
import pytest
import torch

import dlia
from dlia import nn


def copy_into(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2),
                                dict(groups=2, padding=1, bias=False)])
def test_conv2d_layer_forward_and_gradients(kw):
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(4, 6, 3, **kw)
    ours = nn.Conv2d(4, 6, 3, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_into(ours, theirs)
    x = np.random.default_rng(0).standard_normal((2, 4, 9, 8)).astype(np.float32)
    out = ours(dlia.tensor(x))
    tout = theirs(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), atol=1e-5)
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    tout.backward(torch.tensor(g))
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), dict(theirs.named_parameters())[name].grad.numpy(), atol=1e-4)


def test_conv2d_default_init_bound_matches_torch():
    ours = nn.Conv2d(8, 16, 3)
    bound = 1 / np.sqrt(8 * 9)
    w = ours.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound


def test_batchnorm2d_train_and_eval_match_torch():
    theirs = torch.nn.BatchNorm2d(3)
    ours = nn.BatchNorm2d(3)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-0.5, 0.5)
    copy_into(ours, theirs)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = (rng.standard_normal((5, 3, 4, 4)) * 2 + 1).astype(np.float32)
        np.testing.assert_allclose(ours(dlia.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)
    for key in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(ours, key).numpy(), getattr(theirs, key).numpy(), atol=1e-6)
    assert int(ours.num_batches_tracked.item()) == 3
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    xt = dlia.tensor(x, requires_grad=True)
    out = ours(xt)
    tx = torch.tensor(x, requires_grad=True)
    tout = theirs(tx)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), atol=1e-5)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), atol=1e-5)


def test_batchnorm2d_without_affine_has_no_weight_or_bias_like_torch():
    theirs = torch.nn.BatchNorm2d(3, affine=False)
    ours = nn.BatchNorm2d(3, affine=False)
    assert ours.weight is None and ours.bias is None and not ours.affine
    assert list(ours.state_dict()) == list(theirs.state_dict())  # running statistics only
    assert list(ours.parameters()) == []
    assert "affine=False" in repr(ours)
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = (rng.standard_normal((4, 3, 3, 3)) * 2 + 1).astype(np.float32)
        xt, tx = dlia.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, tout = ours(xt), theirs(tx)
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), atol=1e-5)
        (out * out).sum().backward()
        (tout * tout).sum().backward()
        np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), atol=1e-6)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(dlia.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)
    dlia.optim.SGD(nn.Sequential(nn.Conv2d(3, 3, 1), ours).parameters(), lr=0.1)  # optimizers take such models


def test_batchnorm2d_updates_running_stats_under_no_grad_in_train_mode():
    bn = nn.BatchNorm2d(2)
    with dlia.no_grad():
        bn(dlia.tensor(np.full((2, 2, 3, 3), 4.0, np.float32)))
    np.testing.assert_allclose(bn.running_mean.numpy(), [0.4, 0.4], atol=1e-6)


def test_batchnorm2d_rejects_wrong_channels():
    with pytest.raises(dlia.ShapeError, match="batch_norm2d"):
        nn.BatchNorm2d(3)(dlia.zeros(2, 4, 3, 3))


@pytest.mark.parametrize("ours, theirs", [
    (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
    (nn.MaxPool2d(3, stride=2, padding=1), torch.nn.MaxPool2d(3, stride=2, padding=1)),
    (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
    (nn.GlobalAvgPool2d(), torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())),
    (nn.GlobalMaxPool2d(), torch.nn.Sequential(torch.nn.AdaptiveMaxPool2d(1), torch.nn.Flatten())),
])
def test_pool_layers(ours, theirs):
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(dlia.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(), atol=1e-6)


def test_global_pooling_accepts_any_size():
    layer = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.GlobalMaxPool2d(), nn.Linear(4, 2))
    for size in (8, 13, 24):
        assert layer(dlia.zeros(3, 1, size, size)).shape == (3, 2)
