"""XOR: why hidden layers are needed (Goodfellow et al., ch. 6.1) and backprop made visible.

- ``linear_fit``: the best linear model under MSE maps every point to 0.5 (w = 0, b = 0.5).
- ``lecture_network``: the hand-set weights W, c, w, b of the lecture and every intermediate matrix.
- ``train_many``: 2-H-1 networks from many random seeds trained at once (batched over seeds with
  the engine's batched matmul), to measure how often training succeeds.
- ``explain``: one example through a 2-2-1 sigmoid net; every node's value and gradient by the
  chain rule of the lecture's logistic-neuron slide, beside the engine's gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy

import dlia
from dlia import nn, optim

X = numpy.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = numpy.array([0.0, 1.0, 1.0, 0.0])

ACTIVATIONS = ("sigmoid", "relu", "tanh")
LOSSES = ("mse", "ce")


def linear_fit() -> tuple[numpy.ndarray, float]:
    """Least-squares fit of f(x) = xᵀw + b to XOR, solved from the normal equations."""
    design = numpy.hstack([X, numpy.ones((4, 1))])
    coef = numpy.linalg.solve(design.T @ design, design.T @ Y)
    return coef[:2], float(coef[2])


def lecture_network() -> dict[str, numpy.ndarray]:
    """The lecture's solution f(x) = wᵀ max(0, Wᵀx + c) + b, computed with the engine."""
    x = dlia.tensor(X)
    w_hidden = dlia.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=numpy.float64)
    c = dlia.tensor([0.0, -1.0], dtype=numpy.float64)
    w_out = dlia.tensor([[1.0], [-2.0]], dtype=numpy.float64)
    xw = x @ w_hidden
    pre = xw + c
    hidden = dlia.relu(pre)
    out = hidden @ w_out + 0.0
    return {"X": X, "XW": xw.numpy(), "XW+c": pre.numpy(), "relu": hidden.numpy(), "output": out.numpy().ravel()}


def _act(name: str, z: dlia.Tensor) -> dlia.Tensor:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return getattr(dlia, name)(z)


@dataclass
class ManyResult:
    """Training of one configuration over many seeds."""

    hidden: int
    activation: str
    loss: str
    seeds: list[int] | range
    success: numpy.ndarray  # per seed: all four points classified correctly
    curves: numpy.ndarray  # (steps, seeds) training loss
    predictions: numpy.ndarray = field(default_factory=lambda: numpy.zeros(0))

    @property
    def success_rate(self) -> float:
        return float(self.success.mean())


def train_many(hidden: int = 2, activation: str = "sigmoid", loss: str = "ce", seeds: list[int] | range = range(100),
               steps: int = 2000, lr: float = 0.05) -> ManyResult:
    """Train one 2-H-1 network per seed, all at once, with Adam on the four XOR points.

    Each seed's weights are drawn from its own ``dlia.Generator(seed)`` as ``nn.Linear`` would
    (uniform ±1/√fan_in); the loss is the sum of the per-network losses, so every network gets
    exactly its own gradient. The output unit is a sigmoid: ``mse`` compares its probability with the
    target, ``ce`` is binary cross-entropy on its logit.
    """
    if hidden < 1:
        raise ValueError(f"hidden units must be at least 1, got {hidden}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    seeds = seeds if isinstance(seeds, range) else list(seeds)  # a range stays lazy: its length is known
    s = len(seeds)
    w1, b1, w2, b2 = (numpy.empty((s,) + shape) for shape in ((2, hidden), (1, hidden), (hidden, 1), (1, 1)))
    for i, seed in enumerate(seeds):
        g = dlia.Generator(seed)
        w1[i] = g.uniform(-1 / 2**0.5, 1 / 2**0.5, (2, hidden), numpy.float64)
        b1[i] = g.uniform(-1 / 2**0.5, 1 / 2**0.5, (1, hidden), numpy.float64)
        w2[i] = g.uniform(-1 / hidden**0.5, 1 / hidden**0.5, (hidden, 1), numpy.float64)
        b2[i] = g.uniform(-1 / hidden**0.5, 1 / hidden**0.5, (1, 1), numpy.float64)
    params = [dlia.tensor(a, requires_grad=True) for a in (w1, b1, w2, b2)]
    opt = optim.Adam(params, lr=lr)
    x = dlia.tensor(X)
    y = dlia.tensor(numpy.broadcast_to(Y.reshape(1, 4, 1), (s, 4, 1)).copy())
    curves = numpy.empty((steps, s))
    for step in range(steps):
        opt.zero_grad()
        logit = _act(activation, x @ params[0] + params[1]) @ params[2] + params[3]
        if loss == "ce":
            per = dlia.binary_cross_entropy_with_logits(logit, y, reduction="none")
        else:
            diff = dlia.sigmoid(logit) - y
            per = diff * diff
        per_net = per.mean(axis=(1, 2))
        per_net.sum().backward()
        opt.step()
        curves[step] = per_net.numpy()
    with dlia.no_grad():
        logit = _act(activation, x @ params[0] + params[1]) @ params[2] + params[3]
    pred = (logit.numpy()[..., 0] > 0).astype(float)
    success = (pred == Y).all(axis=1)
    return ManyResult(hidden, activation, loss, seeds, success, curves, pred)


def train_one(hidden: int = 2, activation: str = "sigmoid", loss: str = "ce", seed: int = 0, steps: int = 2000,
              lr: float = 0.05) -> tuple[nn.Module, list[float]]:
    """One 2-H-1 ``nn`` model trained on XOR (for plots and inspection)."""
    gen = dlia.Generator(seed)
    act = {"sigmoid": nn.Sigmoid(), "relu": nn.ReLU(), "tanh": nn.Tanh()}
    if activation not in act:
        raise ValueError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
    model = nn.Sequential(nn.Linear(2, hidden, dtype=numpy.float64, generator=gen), act[activation],
                          nn.Linear(hidden, 1, dtype=numpy.float64, generator=gen))
    opt = optim.Adam(model.parameters(), lr=lr)
    x, y = dlia.tensor(X), dlia.tensor(Y.reshape(4, 1))
    history = []
    for _ in range(steps):
        opt.zero_grad()
        out = model(x)
        value = (dlia.binary_cross_entropy_with_logits(out, y) if loss == "ce"
                 else dlia.mse_loss(dlia.sigmoid(out), y))
        value.backward()
        opt.step()
        history.append(value.item())
    return model, history


@dataclass
class Step:
    """One line of the backprop trace: a node, its value, its gradient by hand and by the engine."""

    name: str
    value: numpy.ndarray
    formula: str
    by_hand: numpy.ndarray
    engine: numpy.ndarray


def explain(x: tuple[float, float] = (1.0, 0.0), target: float = 1.0, seed: int = 0) -> list[Step]:
    """Backprop through a 2-2-1 logistic net for one example, by the lecture's formulas.

    E = ½(t - y)². Output: ∂E/∂y = y - t. Each logistic unit: ∂E/∂z_j = y_j(1 - y_j)·∂E/∂y_j.
    Into the layer below: ∂E/∂y_i = Σ_j w_ij·∂E/∂z_j. Weights: ∂E/∂w_ij = y_i·∂E/∂z_j.
    The engine's gradients (``retain_grad`` on the intermediate nodes) are listed beside them.
    """
    gen = dlia.Generator(seed)
    w1 = dlia.tensor(gen.uniform(-1, 1, (2, 2), numpy.float64), requires_grad=True)
    b1 = dlia.tensor(gen.uniform(-1, 1, (2,), numpy.float64), requires_grad=True)
    w2 = dlia.tensor(gen.uniform(-1, 1, (2, 1), numpy.float64), requires_grad=True)
    b2 = dlia.tensor(gen.uniform(-1, 1, (1,), numpy.float64), requires_grad=True)
    xi = dlia.tensor(numpy.array(x, dtype=numpy.float64))
    z1 = xi @ w1 + b1
    y1 = dlia.sigmoid(z1)
    z2 = y1 @ w2 + b2
    y2 = dlia.sigmoid(z2)
    err = 0.5 * ((y2 - target) ** 2).sum()
    for t in (z1, y1, z2, y2):
        t.retain_grad()
    err.backward()

    yv, y1v, xv = y2.numpy(), y1.numpy(), xi.numpy()
    de_dy2 = yv - target
    de_dz2 = yv * (1 - yv) * de_dy2
    de_dw2 = numpy.outer(y1v, de_dz2)
    de_dy1 = w2.numpy() @ de_dz2
    de_dz1 = y1v * (1 - y1v) * de_dy1
    de_dw1 = numpy.outer(xv, de_dz1)
    return [
        Step("y (output)", yv, "∂E/∂y = y - t", de_dy2, y2.grad.numpy()),
        Step("z (output)", z2.numpy(), "∂E/∂z = y(1-y)·∂E/∂y", de_dz2, z2.grad.numpy()),
        Step("w (hidden→output)", w2.numpy(), "∂E/∂w_ij = y_i·∂E/∂z_j", de_dw2, w2.grad.numpy()),
        Step("b (output)", b2.numpy(), "∂E/∂b = ∂E/∂z", de_dz2, b2.grad.numpy()),
        Step("y_i (hidden)", y1v, "∂E/∂y_i = Σ_j w_ij·∂E/∂z_j", de_dy1, y1.grad.numpy()),
        Step("z_i (hidden)", z1.numpy(), "∂E/∂z_i = y_i(1-y_i)·∂E/∂y_i", de_dz1, z1.grad.numpy()),
        Step("W (input→hidden)", w1.numpy(), "∂E/∂w_ki = x_k·∂E/∂z_i", de_dw1, w1.grad.numpy()),
        Step("c (hidden bias)", b1.numpy(), "∂E/∂c_i = ∂E/∂z_i", de_dz1, b1.grad.numpy()),
    ]
