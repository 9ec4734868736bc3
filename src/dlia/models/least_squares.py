"""Least squares three ways: the normal equations, gradient descent (Goodfellow et al.,
Algorithm 4.1), and the autodiff engine with an optimizer.

Minimise f(x) = ½‖Ax - b‖². Its gradient is ∇f(x) = AᵀAx - Aᵀb; Algorithm 4.1 steps
x ← x - ε(AᵀAx - Aᵀb) until ‖AᵀAx - Aᵀb‖ ≤ δ. The step is stable only for ε < 2/λmax, where
λmax is the largest eigenvalue of AᵀA.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy


class DivergenceError(ArithmeticError):
    """Gradient descent blew up; the message suggests a stable step size."""


@dataclass
class GDResult:
    """Outcome of Algorithm 4.1."""

    x: numpy.ndarray
    iterations: int
    converged: bool
    objective: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)


def objective(a: numpy.ndarray, b: numpy.ndarray, x: numpy.ndarray) -> float:
    """f(x) = ½‖Ax - b‖²."""
    r = a @ x - b
    return 0.5 * float(r @ r)


def normal_equations(a: numpy.ndarray, b: numpy.ndarray) -> numpy.ndarray:
    """Closed form: solve (AᵀA) x = Aᵀb."""
    a, b = numpy.asarray(a, dtype=float), numpy.asarray(b, dtype=float)
    if a.ndim != 2 or b.shape != (a.shape[0],):
        raise ValueError(f"least squares needs A (m, n) and b (m,), got {a.shape} and {b.shape}")
    return numpy.linalg.solve(a.T @ a, a.T @ b)


def max_stable_step(a: numpy.ndarray) -> float:
    """2/λmax(AᵀA): gradient descent with a constant step ε converges iff ε < this.

    Raises:
        ValueError: AᵀA overflows or underflows in float64 (entries beyond about 1e154, or all
            below about 1e-154, in magnitude), so no step size can be computed.
    """
    with numpy.errstate(over="ignore", under="ignore"):  # reported below, in words
        lam = float(numpy.linalg.eigvalsh(a.T @ a)[-1])
    if not 0 < lam < numpy.inf:
        raise ValueError(f"AᵀA {'overflows' if lam else 'underflows'} in float64 (largest |entry| of A "
                         f"{float(numpy.abs(a).max()):g}); rescale the columns of A")
    return 2.0 / lam


def gradient_descent(
    a: numpy.ndarray, b: numpy.ndarray, eps: float = 1e-3, delta: float = 1e-6, max_iter: int = 100_000,
    x0: numpy.ndarray | None = None,
) -> GDResult:
    """Algorithm 4.1: x ← x - ε(AᵀAx - Aᵀb) while ‖AᵀAx - Aᵀb‖₂ > δ.

    Raises:
        ValueError: ε or δ not positive.
        DivergenceError: the objective grew beyond any bound (ε too large); the message gives the
            largest stable step 2/λmax.
    """
    if not eps > 0:
        raise ValueError(f"step size ε must be positive, got {eps}")
    if not delta > 0:
        raise ValueError(f"tolerance δ must be positive, got {delta}")
    a, b = numpy.asarray(a, dtype=float), numpy.asarray(b, dtype=float)
    ata, atb = a.T @ a, a.T @ b
    x = numpy.zeros(a.shape[1]) if x0 is None else numpy.array(x0, dtype=float)
    f0 = objective(a, b, x)
    result = GDResult(x, 0, False)
    for it in range(max_iter + 1):
        g = ata @ x - atb
        gn = float(numpy.linalg.norm(g))
        f = objective(a, b, x)
        result.objective.append(f)
        result.grad_norm.append(gn)
        if not numpy.isfinite(f) or f > 1e6 * (f0 + 1.0):
            stable = max_stable_step(a)
            raise DivergenceError(
                f"gradient descent diverged after {it} iterations with step size ε={eps:g}: "
                f"a stable step needs ε < 2/λmax = {stable:.4g}; try ε = {0.9 * stable:.3g} or smaller"
            )
        if gn <= delta:
            result.x, result.iterations, result.converged = x, it, True
            return result
        if it < max_iter:
            x = x - eps * g
    result.x, result.iterations = x, max_iter
    return result


def autodiff_fit(a: numpy.ndarray, b: numpy.ndarray, lr: float = 1e-3, steps: int = 5000,
                 optimizer: str = "sgd") -> tuple[numpy.ndarray, list[float]]:
    """The same problem with the engine: x is a parameter, f is built from ops, backward gives ∇f.

    Returns:
        (x, objective per step).
    """
    import dlia
    from dlia import optim

    at = dlia.tensor(numpy.asarray(a, dtype=numpy.float64))
    bt = dlia.tensor(numpy.asarray(b, dtype=numpy.float64))
    x = dlia.zeros(at.shape[1], dtype=numpy.float64, requires_grad=True)
    opt = {"sgd": lambda: optim.SGD([x], lr=lr), "adam": lambda: optim.Adam([x], lr=lr)}[optimizer]()
    history = []
    for _ in range(steps):
        opt.zero_grad()
        r = at @ x - bt
        f = 0.5 * (r * r).sum()
        f.backward()
        opt.step()
        history.append(f.item())
    return x.numpy().copy(), history


def make_problem(m: int = 100, n: int = 3, noise: float = 0.1, seed: int = 0) -> tuple[numpy.ndarray, numpy.ndarray]:
    """A well-conditioned random problem: A (m, n) standard normal, b = A·x* + noise."""
    rng = numpy.random.Generator(numpy.random.PCG64(seed))
    a = rng.standard_normal((m, n))
    x_true = rng.uniform(-2, 2, n)
    return a, a @ x_true + noise * rng.standard_normal(m)
