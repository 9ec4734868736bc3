"""Least squares: normal equations, Algorithm 4.1 and the engine agree with numpy.linalg.lstsq."""

import numpy as np
import pytest

from dlia.models import least_squares as ls


@pytest.mark.parametrize("seed, shape", [(0, (100, 3)), (1, (50, 5)), (2, (30, 1))])
def test_three_ways_agree_with_lstsq(seed, shape):
    a, b = ls.make_problem(*shape, seed=seed)
    ref = np.linalg.lstsq(a, b, rcond=None)[0]
    assert np.allclose(ls.normal_equations(a, b), ref, atol=1e-6, rtol=0)
    gd = ls.gradient_descent(a, b, eps=ls.max_stable_step(a) / 2, delta=1e-9)
    assert gd.converged and gd.iterations > 0
    assert np.allclose(gd.x, ref, atol=1e-6, rtol=0)
    assert gd.grad_norm[-1] <= 1e-9 < gd.grad_norm[0]
    x_ad, hist = ls.autodiff_fit(a, b, lr=ls.max_stable_step(a) / 2, steps=gd.iterations + 5)
    assert np.allclose(x_ad, ref, atol=1e-6, rtol=0)
    assert hist[-1] <= hist[0]


def test_autodiff_sgd_follows_algorithm_4_1_step_by_step():
    a, b = ls.make_problem(20, 2, seed=3)
    eps = 0.01
    gd = ls.gradient_descent(a, b, eps=eps, delta=1e-300, max_iter=30)
    _, hist = ls.autodiff_fit(a, b, lr=eps, steps=30)
    assert np.allclose(hist, gd.objective[:30], rtol=1e-12)


def test_smaller_step_needs_more_iterations():
    a, b = ls.make_problem(seed=0)
    s = ls.max_stable_step(a)
    fast = ls.gradient_descent(a, b, eps=s / 2, delta=1e-8).iterations
    slow = ls.gradient_descent(a, b, eps=s / 20, delta=1e-8).iterations
    assert slow > fast


def test_too_large_step_is_detected_with_a_suggestion():
    a, b = ls.make_problem(seed=0)
    s = ls.max_stable_step(a)
    with pytest.raises(ls.DivergenceError, match=r"ε < 2/λmax = ") as e:
        ls.gradient_descent(a, b, eps=1.5 * s, delta=1e-8)
    assert f"{s:.4g}" in str(e.value)


def test_max_stable_step_is_two_over_lambda_max():
    a = np.diag([1.0, 2.0, 4.0])
    assert ls.max_stable_step(a) == pytest.approx(2 / 16)


def test_bad_arguments():
    a, b = ls.make_problem(seed=0)
    with pytest.raises(ValueError, match="ε must be positive"):
        ls.gradient_descent(a, b, eps=0)
    with pytest.raises(ValueError, match="δ must be positive"):
        ls.gradient_descent(a, b, eps=1e-3, delta=-1)
    with pytest.raises(ValueError, match=r"\(3, 2\) and \(4,\)"):
        ls.normal_equations(np.ones((3, 2)), np.ones(4))


def test_iteration_limit_reports_not_converged():
    a, b = ls.make_problem(seed=0)
    r = ls.gradient_descent(a, b, eps=1e-5, delta=1e-12, max_iter=10)
    assert not r.converged and r.iterations == 10 and len(r.objective) == 11


@pytest.mark.parametrize("scale, word", [(1e200, "overflows"), (1e-300, "underflows")])
def test_max_stable_step_refuses_what_float64_cannot_square(scale, word):
    a = np.array([[1.0], [-2.0], [3.0]]) * scale
    with pytest.raises(ValueError, match=word):
        ls.max_stable_step(a)
