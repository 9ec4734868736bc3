"""XOR: the lecture's numbers, training success, and backprop by hand vs the engine."""

import numpy as np
import pytest

from dlia.models import xor


def test_linear_model_by_mse_predicts_one_half_everywhere():
    w, b = xor.linear_fit()
    assert np.allclose(w, 0, atol=1e-12) and b == pytest.approx(0.5)


def test_lecture_network_matrices():
    net = xor.lecture_network()
    assert net["XW"].tolist() == [[0, 0], [1, 1], [1, 1], [2, 2]]
    assert net["XW+c"].tolist() == [[0, -1], [1, 0], [1, 0], [2, 1]]
    assert net["relu"].tolist() == [[0, 0], [1, 0], [1, 0], [2, 1]]
    assert net["output"].tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize("x, t", [((1.0, 0.0), 1.0), ((1.0, 1.0), 0.0), ((0.3, -0.7), 1.0)])
def test_backprop_by_the_lecture_formulas_equals_the_engine(x, t):
    steps = xor.explain(x, t, seed=4)
    assert len(steps) == 8
    for s in steps:
        assert s.by_hand.shape == s.engine.shape or s.by_hand.size == s.engine.size, s.name
        assert np.allclose(s.by_hand.reshape(s.engine.shape), s.engine, rtol=1e-12, atol=1e-15), s.name


@pytest.mark.parametrize("activation, loss", [("sigmoid", "ce"), ("relu", "mse"), ("tanh", "ce")])
def test_trained_network_reaches_100_percent(activation, loss):
    model, history = xor.train_one(hidden=4, activation=activation, loss=loss, seed=0, steps=1500)
    import dlia

    with dlia.no_grad():
        pred = (model(dlia.tensor(xor.X)).numpy().ravel() > 0).astype(float)
    assert pred.tolist() == xor.Y.tolist()
    assert history[-1] < history[0] / 5


def test_batched_seeds_equal_separate_training():
    many = xor.train_many(hidden=2, activation="tanh", loss="ce", seeds=[3, 8], steps=50)
    one = xor.train_many(hidden=2, activation="tanh", loss="ce", seeds=[8], steps=50)
    assert np.allclose(many.curves[:, 1], one.curves[:, 0], rtol=1e-10)


def test_a_range_of_seeds_is_not_materialised():
    """``dlia xor --compare --seeds N`` passes a range: a list of N ints would be the first thing to fill memory."""
    r = xor.train_many(hidden=2, seeds=range(5, 8), steps=2)
    assert r.seeds == range(5, 8) and isinstance(r.seeds, range)
    assert r.curves.shape == (2, 3)


def test_success_rates_are_measured_and_wider_is_easier():
    narrow = xor.train_many(hidden=2, activation="sigmoid", loss="ce", seeds=range(40), steps=1500)
    wide = xor.train_many(hidden=4, activation="sigmoid", loss="ce", seeds=range(40), steps=1500)
    assert 0.0 < narrow.success_rate < 1.0
    assert wide.success_rate > narrow.success_rate
    assert narrow.curves.shape == (1500, 40)


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        xor.train_many(activation="swish")
    with pytest.raises(ValueError, match="loss"):
        xor.train_many(loss="hinge")
    with pytest.raises(ValueError, match="hidden"):
        xor.train_many(hidden=0)
