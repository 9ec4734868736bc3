"""McCulloch-Pitts units and the perceptron, with the lecture's claims as expected values."""

import numpy as np
import pytest

from dlia.models.neurons import GATES, MCPNetwork, MCPNeuron, Perceptron, perceptron_data, truth_table


@pytest.mark.parametrize(
    "gate, table",
    [
        ("and", [0, 0, 0, 1]),
        ("or", [0, 1, 1, 1]),
        ("nor", [1, 0, 0, 0]),
        ("xor", [0, 1, 1, 0]),
        ("not", [1, 0]),
    ],
)
def test_truth_tables(gate, table):
    assert [out for _, out in truth_table(gate)] == table


def test_one_active_inhibitory_input_vetoes_firing():
    unit = MCPNeuron(excitatory=(0, 1, 2), inhibitory=(3,), threshold=1)
    assert unit((1, 1, 1, 0)) == 1
    assert unit((1, 1, 1, 1)) == 0


def test_threshold_counts_active_excitatory_inputs():
    unit = MCPNeuron(excitatory=(0, 1, 2), threshold=2)
    assert [unit(x) for x in [(0, 0, 1), (0, 1, 1), (1, 1, 1)]] == [0, 1, 1]


def test_mcp_inputs_must_be_binary():
    with pytest.raises(ValueError, match="binary"):
        GATES["and"]((2, 1))


def test_xor_needs_two_layers_of_units():
    net = MCPNetwork()
    assert len(net.hidden) == 2
    assert [net(x) for x in [(0, 0), (0, 1), (1, 0), (1, 1)]] == [0, 1, 1, 0]


def test_unknown_gate():
    with pytest.raises(ValueError, match="unknown gate 'xnor'"):
        truth_table("xnor")


@pytest.mark.parametrize("name", ["and", "or", "blobs"])
def test_perceptron_converges_on_separable_data(name):
    x, y = perceptron_data(name, seed=0)
    p = Perceptron(2)
    result = p.fit(x, y, max_epochs=100)
    assert result.converged and result.mistakes[-1] == 0
    assert (p.predict(x) == y).all()
    assert result.epochs == len(result.mistakes)


def test_perceptron_never_converges_on_xor():
    x, y = perceptron_data("xor")
    result = Perceptron(2).fit(x, y, max_epochs=500)
    assert not result.converged
    assert all(m > 0 for m in result.mistakes)
    assert result.epochs == 500


def test_perceptron_rule_updates_by_hand():
    p = Perceptron(2, lr=0.5)
    p.fit(np.array([[1.0, 2.0]]), np.array([1]), max_epochs=1)
    assert p.w.tolist() == [0.5, 1.0] and p.b == 0.5  # w ← w + η·y·x, b ← b + η·y


def test_perceptron_bad_arguments():
    with pytest.raises(ValueError, match="learning rate"):
        Perceptron(2, lr=0)
    with pytest.raises(ValueError, match="max_epochs"):
        Perceptron(2).fit(*perceptron_data("and"), max_epochs=0)
    with pytest.raises(ValueError, match="-1 or \\+1"):
        Perceptron(2).fit(np.zeros((2, 2)), np.array([0, 1]))


def test_perceptron_overflow_is_an_error_not_convergence():  # issue #10 B8: lr 1e308 "converged" with inf weights
    x, y = perceptron_data("and")
    with pytest.raises(OverflowError, match="overflowed"):
        Perceptron(2, lr=1e308).fit(x, y)
