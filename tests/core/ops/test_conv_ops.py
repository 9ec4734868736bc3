"""conv2d, max/avg pooling, global pooling and batch norm against finite differences and torch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F

import dlia
from helpers import OpTestCase, cases, compare_torch


def conv(**kw):
    return (lambda x, w, b: dlia.conv2d(x, w, b, **kw)), (lambda x, w, b: F.conv2d(x, w, b, **kw))


def conv_cases(tag, shapes, **kw):
    ours, theirs = conv(**kw)
    return cases("conv2d", ours, theirs, [shapes], tag=tag, atol32=1e-4, rtol32=1e-4)


class TestConv2d(OpTestCase):
    cases = [
        *conv_cases("plain", ((2, 3, 7, 6), (4, 3, 3, 2), (4,))),
        *conv_cases("stride2-pad1", ((2, 3, 9, 8), (5, 3, 3, 3), (5,)), stride=2, padding=1),
        *conv_cases("same-even", ((1, 2, 6, 7), (3, 2, 4, 2), (3,)), padding="same"),
        *conv_cases("dilation2", ((2, 2, 9, 9), (3, 2, 3, 3), (3,)), dilation=2, padding=2),
        *conv_cases("groups2", ((2, 4, 6, 6), (6, 2, 3, 3), (6,)), groups=2, padding=1),
        *conv_cases("depthwise", ((1, 3, 5, 5), (3, 1, 3, 3), (3,)), groups=3),
        *conv_cases("rect-stride", ((2, 2, 7, 9), (2, 2, 2, 3), (2,)), stride=(2, 1), padding=(1, 0)),
        *conv_cases("1x1", ((3, 5, 4, 4), (2, 5, 1, 1), (2,))),
    ]


def pool(fn, tfn, **kw):
    return (lambda x: fn(x, **kw)), (lambda x: tfn(x, **kw))


class TestPooling(OpTestCase):
    cases = [
        *cases("max_pool2d", *pool(dlia.max_pool2d, F.max_pool2d, kernel_size=2), [[(2, 3, 8, 6)]], "distinct"),
        *cases("max_pool2d", *pool(dlia.max_pool2d, F.max_pool2d, kernel_size=3, stride=2, padding=1),
               [[(2, 2, 9, 7)]], "distinct", tag="overlap-pad"),
        *cases("max_pool2d", *pool(dlia.max_pool2d, F.max_pool2d, kernel_size=(2, 3), stride=1),
               [[(1, 2, 5, 6)]], "distinct", tag="rect"),
        *cases("avg_pool2d", *pool(dlia.avg_pool2d, F.avg_pool2d, kernel_size=2), [[(2, 3, 8, 6)]]),
        *cases("avg_pool2d", *pool(dlia.avg_pool2d, F.avg_pool2d, kernel_size=3, stride=2, padding=1),
               [[(2, 2, 9, 7)]], tag="overlap-pad"),
        *cases("global_avg_pool2d", dlia.global_avg_pool2d, lambda x: x.mean(dim=(2, 3)), [[(2, 3, 5, 4)]]),
        *cases("global_max_pool2d", dlia.global_max_pool2d, lambda x: x.amax(dim=(2, 3)), [[(2, 3, 5, 4)]], "distinct"),
    ]


def bn(x, g, b):
    return dlia.batch_norm(x, g, b)


def tbn(x, g, b):
    return F.batch_norm(x, None, None, g, b, training=True)


class TestBatchNorm(OpTestCase):
    cases = cases("batch_norm", bn, tbn, [[(4, 3, 5, 5), (3,), (3,)], [(8, 2, 3, 1), (2,), (2,)], [(6, 4), (4,), (4,)]],
                  atol32=1e-4, rtol32=1e-4)


@pytest.mark.parametrize("shape, kernel", [((6, 5), (3, 3)), ((7, 9), (2, 4)), ((4, 4), (4, 4))])
def test_single_channel_conv2d_is_scipy_cross_correlation(shape, kernel):
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal(shape), rng.standard_normal(kernel)
    ours = dlia.conv2d(dlia.tensor(x[None, None]), dlia.tensor(k[None, None])).numpy()[0, 0]
    np.testing.assert_allclose(ours, scipy.signal.correlate2d(x, k, mode="valid"), atol=1e-12)


@pytest.mark.parametrize("shape, out", [((64, 1, 8, 8), 16), ((4, 16, 12, 12), 32)])
def test_float32_conv_matches_torch_on_benchmark_like_shapes(shape, out):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    w = (0.1 * rng.standard_normal((out, shape[1], 3, 3))).astype(np.float32)
    b = rng.standard_normal(out).astype(np.float32)
    compare_torch(lambda *a: dlia.conv2d(*a, padding=1), lambda *a: F.conv2d(*a, padding=1), x, w, b, atol=1e-4, rtol=1e-4)


def test_conv_shape_errors_name_the_op_and_shapes():
    x, w = dlia.zeros(1, 3, 5, 5), dlia.zeros(2, 4, 3, 3)
    with pytest.raises(dlia.ShapeError, match=r"conv2d.*\(1, 3, 5, 5\).*\(2, 4, 3, 3\)"):
        dlia.conv2d(x, w)
    with pytest.raises(dlia.ShapeError, match="conv2d.*larger than the padded input"):
        dlia.conv2d(dlia.zeros(1, 1, 2, 2), dlia.zeros(1, 1, 3, 3))
    with pytest.raises(dlia.ShapeError, match="max_pool2d"):
        dlia.max_pool2d(dlia.zeros(2, 2), 2)
    with pytest.raises(ValueError, match="'same' needs stride 1"):
        dlia.conv2d(dlia.zeros(1, 1, 5, 5), dlia.zeros(1, 1, 3, 3), stride=2, padding="same")
    for xs, ws in (((2, 0, 20, 20), (4, 0, 3, 3)), ((2, 3, 20, 20), (0, 3, 3, 3))):  # both paths, same error
        with pytest.raises(dlia.ShapeError, match=r"conv2d: input and weight need at least one channel"):
            dlia.conv2d(dlia.zeros(*xs), dlia.zeros(*ws))


def test_max_pool_gradient_goes_to_the_maximum():
    x = dlia.tensor(np.array([[[[1.0, 5.0], [3.0, 2.0]]]]), requires_grad=True)
    dlia.max_pool2d(x, 2).sum().backward()
    assert x.grad.numpy().tolist() == [[[[0.0, 1.0], [0.0, 0.0]]]]


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 3, 0), (3, 2, 1), ((2, 3), 1, 0)])
def test_max_pool_ties_give_the_gradient_to_the_first_maximum_like_torch(kernel, stride, padding):
    """After ReLU whole windows are 0: exactly one element per window (the first) gets its gradient."""
    rng = np.random.default_rng(1)
    a = np.maximum(rng.standard_normal((2, 3, 9, 12)), 0).round(0)  # many zeros and many equal ones
    g = rng.standard_normal(dlia.max_pool2d(dlia.tensor(a), kernel, stride, padding).shape)
    x = dlia.tensor(a, requires_grad=True)
    dlia.max_pool2d(x, kernel, stride, padding).backward(dlia.tensor(g))
    tx = torch.tensor(a, requires_grad=True)
    torch.nn.functional.max_pool2d(tx, kernel, stride, padding).backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)  # overlaps: sum order


def test_conv_runs_through_torch_twin_layer():
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(3, 4, 3, padding=1)
    ours = dlia.nn.Conv2d(3, 4, 3, padding=1)
    ours.load_state_dict({k: v.detach().numpy() for k, v in layer.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(dlia.tensor(x)).numpy(), layer(torch.tensor(x)).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_padding_is_minus_infinity_like_torch(dtype):
    """Padding was finfo.min: a window of -inf values returned -3.4e38 and its gradient went to the padding."""
    a = np.full((1, 2, 4, 4), -np.inf, dtype)
    a[0, 1, 1:3, 1:3] = [[1.0, -np.inf], [-np.inf, 2.0]]
    rng = np.random.default_rng(3)
    g = rng.standard_normal((1, 2, 3, 3)).astype(dtype)
    x = dlia.tensor(a, requires_grad=True)
    out = dlia.max_pool2d(x, 2, 2, 1)
    out.backward(dlia.tensor(g))
    tx = torch.tensor(a, requires_grad=True)
    tout = F.max_pool2d(tx, 2, 2, 1)
    tout.backward(torch.tensor(g))
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
