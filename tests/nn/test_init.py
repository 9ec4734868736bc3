"""``nn.init``: each initializer's bound or standard deviation checked on a 500x500 tensor against
its formula, orthogonality, constants, seeding, and ``calculate_gain`` against torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dlia
from dlia import nn
from dlia.nn import init

ROWS, COLS = 500, 400  # fan_out = 500, fan_in = 400: distinct fans, so a mode mix-up shows


def _weight(shape: tuple[int, ...] = (ROWS, COLS), dtype=np.float32) -> nn.Parameter:
    return nn.Parameter(np.full(shape, np.nan, dtype))


def _check_uniform(w: np.ndarray, bound: float) -> None:
    assert np.isfinite(w).all()
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert np.abs(w).max() > 0.999 * bound  # 200k draws reach the edges
    assert abs(w.mean()) < 0.01 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def _check_normal(w: np.ndarray, std: float) -> None:
    assert np.isfinite(w).all()
    assert abs(w.mean()) < 0.01 * std
    assert w.std() == pytest.approx(std, rel=0.01)  # the sample std is within ~0.2% here
    assert np.mean(np.abs(w) > 2 * std) == pytest.approx(0.0455, abs=0.003)  # Gaussian tails, not uniform


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_xavier_uniform(gain: float) -> None:
    w = init.xavier_uniform_(_weight(), gain=gain, generator=dlia.Generator(0))
    _check_uniform(w.numpy(), gain * math.sqrt(6 / (ROWS + COLS)))


@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_xavier_normal(gain: float) -> None:
    w = init.xavier_normal_(_weight(), gain=gain, generator=dlia.Generator(1))
    _check_normal(w.numpy(), gain * math.sqrt(2 / (ROWS + COLS)))


KAIMING = [
    # mode, nonlinearity, a, gain
    ("fan_in", "relu", 0.0, math.sqrt(2)),
    ("fan_out", "relu", 0.0, math.sqrt(2)),
    ("fan_in", "leaky_relu", 0.0, math.sqrt(2)),
    ("fan_in", "leaky_relu", 0.2, math.sqrt(2 / 1.04)),
    ("fan_out", "leaky_relu", math.sqrt(5), math.sqrt(2 / 6)),
]


@pytest.mark.parametrize(("mode", "nonlinearity", "a", "gain"), KAIMING, ids=[f"{k[0]}-{k[1]}-{k[2]:.2f}" for k in KAIMING])
def test_kaiming_uniform(mode: str, nonlinearity: str, a: float, gain: float) -> None:
    fan = COLS if mode == "fan_in" else ROWS
    w = init.kaiming_uniform_(_weight(), a=a, mode=mode, nonlinearity=nonlinearity, generator=dlia.Generator(2))
    _check_uniform(w.numpy(), gain * math.sqrt(3 / fan))


@pytest.mark.parametrize(("mode", "nonlinearity", "a", "gain"), KAIMING, ids=[f"{k[0]}-{k[1]}-{k[2]:.2f}" for k in KAIMING])
def test_kaiming_normal(mode: str, nonlinearity: str, a: float, gain: float) -> None:
    fan = COLS if mode == "fan_in" else ROWS
    w = init.kaiming_normal_(_weight(), a=a, mode=mode, nonlinearity=nonlinearity, generator=dlia.Generator(3))
    _check_normal(w.numpy(), gain / math.sqrt(fan))


def test_kaiming_defaults_match_torch_formula() -> None:
    """Defaults: a=0, fan_in, leaky_relu, as torch (so the bound is √2·√(3/fan_in))."""
    w = init.kaiming_uniform_(_weight(), generator=dlia.Generator(4))
    _check_uniform(w.numpy(), math.sqrt(2) * math.sqrt(3 / COLS))


def test_fans_of_conv_shaped_weights_match_torch() -> None:
    shape = (16, 8, 3, 3)
    ours = init.fan_in_and_fan_out(_weight(shape))
    theirs = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert ours == theirs == (72, 144)
    w = init.kaiming_normal_(_weight((64, 32, 5, 5)), mode="fan_out", nonlinearity="relu", generator=dlia.Generator(5))
    _check_normal(w.numpy(), math.sqrt(2) / math.sqrt(64 * 25))


def test_fan_and_mode_errors() -> None:
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.xavier_uniform_(_weight((5,)))
    with pytest.raises(ValueError, match="fan_in"):
        init.kaiming_uniform_(_weight((3, 3)), mode="fan_avg")
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.orthogonal_(_weight((5,)))


@pytest.mark.parametrize("shape", [(500, 200), (200, 500), (300, 300), (40, 5, 2, 2)], ids=["tall", "wide", "square", "4d"])
@pytest.mark.parametrize("gain", [1.0, 1.7])
def test_orthogonal(shape: tuple[int, ...], gain: float) -> None:
    w = init.orthogonal_(_weight(shape, np.float64), gain=gain, generator=dlia.Generator(6)).numpy()
    assert w.shape == shape
    q = w.reshape(shape[0], -1)
    rows, cols = q.shape
    small = q.T @ q if rows >= cols else q @ q.T  # QᵀQ = g²I for tall, QQᵀ = g²I for wide
    np.testing.assert_allclose(small, gain**2 * np.eye(min(rows, cols)), atol=1e-10)
    # and a full-rank matrix of random signs, not a permutation of the identity
    assert np.count_nonzero(np.abs(q) > 1e-3) > 0.9 * q.size


def test_orthogonal_float32() -> None:
    w = init.orthogonal_(_weight((300, 100)), generator=dlia.Generator(7)).numpy()
    assert w.dtype == np.float32
    np.testing.assert_allclose(w.T @ w, np.eye(100), atol=1e-5)


@pytest.mark.parametrize(("fn", "args", "value"), [
    (init.zeros_, (), 0.0), (init.ones_, (), 1.0), (init.constant_, (0.25,), 0.25), (init.constant_, (-3.0,), -3.0),
], ids=["zeros", "ones", "constant", "constant_negative"])
def test_constant_initializers(fn, args, value) -> None:
    for dtype in (np.float32, np.float64):
        w = _weight((7, 3), dtype)
        assert fn(w, *args) is w
        assert w.dtype == dtype and w.shape == (7, 3)
        np.testing.assert_array_equal(w.numpy(), value)


def test_uniform_and_normal() -> None:
    w = init.uniform_(_weight(), -0.5, 2.0, generator=dlia.Generator(8)).numpy()
    assert w.min() >= -0.5 and w.max() < 2.0
    assert w.mean() == pytest.approx(0.75, abs=0.01)
    w = init.normal_(_weight(), 3.0, 0.1, generator=dlia.Generator(9)).numpy()
    assert w.mean() == pytest.approx(3.0, abs=1e-3) and w.std() == pytest.approx(0.1, rel=0.01)


INITIALIZERS = [
    ("uniform", lambda w, g: init.uniform_(w, generator=g)),
    ("normal", lambda w, g: init.normal_(w, generator=g)),
    ("xavier_uniform", lambda w, g: init.xavier_uniform_(w, generator=g)),
    ("xavier_normal", lambda w, g: init.xavier_normal_(w, generator=g)),
    ("kaiming_uniform", lambda w, g: init.kaiming_uniform_(w, generator=g)),
    ("kaiming_normal", lambda w, g: init.kaiming_normal_(w, generator=g)),
    ("orthogonal", lambda w, g: init.orthogonal_(w, generator=g)),
]


@pytest.mark.parametrize(("name", "fn"), INITIALIZERS, ids=[i[0] for i in INITIALIZERS])
def test_same_seed_same_weights(name, fn) -> None:
    a = fn(_weight((30, 20)), dlia.Generator(42)).numpy()
    b = fn(_weight((30, 20)), dlia.Generator(42)).numpy()
    c = fn(_weight((30, 20)), dlia.Generator(43)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32


def test_default_generator_follows_manual_seed() -> None:
    dlia.manual_seed(123)
    a = init.xavier_uniform_(_weight((10, 10))).numpy()
    dlia.manual_seed(123)
    b = init.xavier_uniform_(_weight((10, 10))).numpy()
    np.testing.assert_array_equal(a, b)


GAINS = [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None), ("conv_transpose1d", None),
    ("conv_transpose2d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", math.sqrt(5)), ("selu", None),
]


@pytest.mark.parametrize(("nonlinearity", "param"), GAINS, ids=[f"{g[0]}-{g[1]}" for g in GAINS])
def test_calculate_gain_equals_torch(nonlinearity: str, param: float | None) -> None:
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


def test_calculate_gain_unknown_raises() -> None:
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain("swish")
    with pytest.raises(ValueError, match="swish"):
        init.calculate_gain("swish")
