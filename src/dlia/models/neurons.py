"""The first wave: the McCulloch-Pitts neuron (1943) and Rosenblatt's perceptron (1958).

An MCP unit has binary inputs, some excitatory and some inhibitory, and a threshold: it fires (1)
when no inhibitory input is active and the number of active excitatory inputs reaches the
threshold; any active inhibitory input vetoes firing. There is no learning.

The perceptron computes a weighted sum plus bias and outputs +1 if it is positive, else -1; the
perceptron rule moves the weights towards each misclassified example. It converges on linearly
separable data and never on XOR (Minsky & Papert, 1969).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy


@dataclass(frozen=True)
class MCPNeuron:
    """A McCulloch-Pitts unit.

    Args:
        excitatory: indices of the inputs that add to the sum.
        inhibitory: indices of the inputs that veto firing when active.
        threshold: the number of active excitatory inputs needed to fire.

    Example:
        >>> MCPNeuron(excitatory=(0, 1), threshold=2)((1, 1))  # AND
        1
    """

    excitatory: tuple[int, ...] = ()
    inhibitory: tuple[int, ...] = ()
    threshold: int = 1

    def __call__(self, inputs: tuple[int, ...] | list[int]) -> int:
        for x in inputs:
            if x not in (0, 1):
                raise ValueError(f"MCP inputs must be binary (0 or 1), got {x!r}")
        if any(inputs[i] for i in self.inhibitory):
            return 0
        return int(sum(inputs[i] for i in self.excitatory) >= self.threshold)


#: the gates of the lecture built from single MCP units (two inputs, except NOT)
GATES: dict[str, MCPNeuron] = {
    "and": MCPNeuron(excitatory=(0, 1), threshold=2),
    "or": MCPNeuron(excitatory=(0, 1), threshold=1),
    "not": MCPNeuron(inhibitory=(0,), threshold=0),
    "nor": MCPNeuron(inhibitory=(0, 1), threshold=0),
}


class MCPNetwork:
    """XOR from MCP units in two layers: h1 = x1 ∧ ¬x2, h2 = x2 ∧ ¬x1, y = h1 ∨ h2."""

    def __init__(self) -> None:
        self.hidden = [MCPNeuron(excitatory=(0,), inhibitory=(1,), threshold=1),
                       MCPNeuron(excitatory=(1,), inhibitory=(0,), threshold=1)]
        self.output = GATES["or"]

    def __call__(self, inputs: tuple[int, int]) -> int:
        h = tuple(unit(inputs) for unit in self.hidden)
        return self.output(h)


def arity(gate: str) -> int:
    return 1 if gate == "not" else 2


def truth_table(gate: str) -> list[tuple[tuple[int, ...], int]]:
    """Rows ``(inputs, output)`` of a gate ('and', 'or', 'not', 'nor', 'xor')."""
    if gate == "xor":
        unit = MCPNetwork()
    elif gate in GATES:
        unit = GATES[gate]
    else:
        raise ValueError(f"unknown gate {gate!r}; choose from {', '.join([*GATES, 'xor'])}")
    return [(x, unit(x)) for x in itertools.product((0, 1), repeat=arity(gate))]


@dataclass
class PerceptronResult:
    """What training reported: whether it converged, after how many epochs, mistakes per epoch."""

    weights: numpy.ndarray
    bias: float
    converged: bool
    epochs: int
    mistakes: list[int] = field(default_factory=list)


class Perceptron:
    """Rosenblatt's perceptron: ŷ = sign(w·x + b) ∈ {-1, +1}, trained with the perceptron rule
    w ← w + η·y·x, b ← b + η·y on every misclassified example (y·(w·x + b) ≤ 0).

    Args:
        n_inputs: number of features.
        lr: learning rate η.
    """

    def __init__(self, n_inputs: int, lr: float = 1.0) -> None:
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.w = numpy.zeros(n_inputs)
        self.b = 0.0
        self.lr = lr

    def predict(self, x: numpy.ndarray) -> numpy.ndarray:
        return numpy.where(numpy.asarray(x, dtype=float) @ self.w + self.b > 0, 1, -1)

    def fit(self, x: numpy.ndarray, y: numpy.ndarray, max_epochs: int = 100, seed: int = 0) -> PerceptronResult:
        """Train until an epoch without mistakes or ``max_epochs``; labels must be ±1.

        Raises:
            OverflowError: the weights overflowed (a huge ``lr``): NaN or infinite weights would
                classify nothing, so the run cannot have converged.
        """
        x = numpy.asarray(x, dtype=float)
        y = numpy.asarray(y)
        if max_epochs < 1:
            raise ValueError(f"max_epochs must be at least 1, got {max_epochs}")
        if not set(numpy.unique(y)) <= {-1, 1}:
            raise ValueError("perceptron labels must be -1 or +1")
        rng = numpy.random.Generator(numpy.random.PCG64(seed))
        mistakes = []
        with numpy.errstate(over="ignore", invalid="ignore"):  # an overflow is raised below, in words
            for epoch in range(1, max_epochs + 1):
                errors = 0
                for i in rng.permutation(len(x)):
                    if y[i] * (x[i] @ self.w + self.b) <= 0:
                        self.w += self.lr * y[i] * x[i]
                        self.b += self.lr * y[i]
                        errors += 1
                mistakes.append(errors)
                if not (numpy.isfinite(self.w).all() and numpy.isfinite(self.b)):
                    w = ", ".join(f"{v:.3g}" for v in self.w)
                    raise OverflowError(f"the weights overflowed in epoch {epoch} (w = [{w}], b = {self.b:.3g}) with "
                                        f"learning rate {self.lr:g}; from zero weights η only scales them, so a smaller "
                                        f"one draws the same line")
                if errors == 0:
                    return PerceptronResult(self.w.copy(), self.b, True, epoch, mistakes)
        return PerceptronResult(self.w.copy(), self.b, False, max_epochs, mistakes)


def perceptron_data(name: str, seed: int = 0, n: int = 100) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Toy data with ±1 labels: the gates 'and', 'or', 'xor' on {0,1}², or two Gaussian 'blobs'."""
    if name in ("and", "or", "xor"):
        x = numpy.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
        out = {"and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "xor": [0, 1, 1, 0]}[name]
        return x, numpy.where(numpy.array(out) == 1, 1, -1)
    if name == "blobs":
        rng = numpy.random.Generator(numpy.random.PCG64(seed))
        half = n // 2
        a = rng.normal((-2.0, -1.0), 0.6, size=(half, 2))
        b = rng.normal((2.0, 1.5), 0.6, size=(n - half, 2))
        return numpy.vstack([a, b]), numpy.array([-1] * half + [1] * (n - half))
    raise ValueError(f"unknown data set {name!r}; choose from and, or, xor, blobs")
