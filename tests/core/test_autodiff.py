"""The backprop engine: deep graphs, reuse, accumulation, retain_graph, grad mode, detach,
broadcast reduction, and the errors PyTorch users expect."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import dlia
from dlia.core.function import Function
from helpers import check_vjp, compare_torch

RNG = np.random.default_rng(5)


def test_ten_thousand_step_chain_backward_is_iterative_and_correct():
    x = dlia.tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.0001**10_000, rtol=1e-9)
    np.testing.assert_allclose(y.numpy(), x.numpy() * 1.0001**10_000, rtol=1e-9)


def test_deep_chain_of_mixed_ops_matches_torch():
    def chain(t, tanh):
        for i in range(3_000):
            t = tanh(t) * 1.5 if i % 2 else t + 0.1 * t * t
        return t

    compare_torch(lambda a: chain(a, dlia.tanh), lambda a: chain(a, torch.tanh), RNG.standard_normal(4), rtol=1e-6)


def test_reused_node_accumulates_its_gradients():
    x = dlia.tensor(np.array([1.0, 2.0, -3.0]), requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * x.numpy() + 1)


def test_diamond_graph_matches_torch():
    def f(x, exp):
        a = x * 2.0
        b = a * a + exp(a)
        return (b * a - a / (1.0 + b)).sum()

    compare_torch(lambda x: f(x, dlia.exp), lambda x: f(x, torch.exp), RNG.standard_normal((3, 2)))
    check_vjp(lambda x: f(x, dlia.exp), RNG.standard_normal((3, 2)))


def test_gradients_accumulate_across_backward_calls_like_torch():
    a = RNG.standard_normal(3)
    x = dlia.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    for _ in range(2):
        (x * x).sum().backward()
        (t * t).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())
    np.testing.assert_allclose(x.grad.numpy(), 4 * a)


def test_second_backward_needs_retain_graph():
    x = dlia.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()  # allowed: the graph was retained
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_second_backward_without_retain_graph_raises():
    x = dlia.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_no_grad_disables_recording():
    x = dlia.tensor(np.ones(3), requires_grad=True)
    with dlia.no_grad():
        y = x * 2 + 1
        assert not dlia.is_grad_enabled()
        with dlia.enable_grad():
            z = x * 3
    assert dlia.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()

    @dlia.no_grad()
    def frozen(t):
        return t * t

    assert not frozen(x).requires_grad
    dlia.set_grad_enabled(False)
    try:
        assert not (x * x).requires_grad
    finally:
        dlia.set_grad_enabled(True)


def test_no_grad_restores_the_mode_after_an_error():
    with pytest.raises(ZeroDivisionError), dlia.no_grad():
        raise ZeroDivisionError
    assert dlia.is_grad_enabled()


def test_recursive_no_grad_function_restores_grad_mode():
    # one decorator instance serves every call: each call saves and restores the mode itself
    @dlia.no_grad()
    def depth(n):
        assert not dlia.is_grad_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    @torch.no_grad()
    def depth_torch(n):
        return 0 if n == 0 else 1 + depth_torch(n - 1)

    assert depth(3) == 3 and depth_torch(3) == 3
    assert dlia.is_grad_enabled() and torch.is_grad_enabled()


def test_recursive_enable_grad_function_inside_no_grad():
    @dlia.enable_grad()
    def depth(n):
        assert dlia.is_grad_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    with dlia.no_grad():
        depth(2)
        assert not dlia.is_grad_enabled()
    assert dlia.is_grad_enabled()


@pytest.mark.parametrize("lib", [dlia, torch], ids=["dlia", "torch"])
def test_set_grad_enabled_is_a_function_a_context_manager_and_a_decorator(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    with lib.set_grad_enabled(False):
        assert not lib.is_grad_enabled()
        assert not (x * 2).requires_grad
        with lib.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not lib.is_grad_enabled()
    assert lib.is_grad_enabled()

    @lib.set_grad_enabled(False)
    def frozen(t, n):
        assert not lib.is_grad_enabled()
        return t * 2 if n == 0 else frozen(t, n - 1)

    assert lib.is_grad_enabled()  # decorating switches nothing
    assert not frozen(x, 2).requires_grad
    assert lib.is_grad_enabled()

    lib.set_grad_enabled(False)  # called as a function: switches until switched back
    try:
        assert not lib.is_grad_enabled()
        with lib.enable_grad():
            assert lib.is_grad_enabled()
        assert not lib.is_grad_enabled()
    finally:
        lib.set_grad_enabled(True)
    assert lib.is_grad_enabled()


def test_grad_mode_is_restored_when_a_decorated_function_raises():
    @dlia.no_grad()
    def fails():
        raise KeyError("x")

    with pytest.raises(KeyError):
        fails()
    assert dlia.is_grad_enabled()
    with pytest.raises(KeyError), dlia.set_grad_enabled(False):
        raise KeyError("y")
    assert dlia.is_grad_enabled()


def test_grad_mode_belongs_to_the_thread():
    seen = {}

    def worker():
        seen["start"] = dlia.is_grad_enabled()  # a new thread starts with gradients on, as in torch
        dlia.set_grad_enabled(False)
        seen["recorded"] = (dlia.tensor([1.0], requires_grad=True) * 2).requires_grad

    with dlia.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert not dlia.is_grad_enabled()
    assert seen == {"start": True, "recorded": False}
    assert dlia.is_grad_enabled()  # the thread's set_grad_enabled(False) stayed in the thread


def test_detach_shares_data_but_cuts_the_graph():
    x = dlia.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 3
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.numpy(), y.numpy())
    (y * d).sum().backward()  # d is a constant: d/dx (3x · 3x_const) = 3·d
    np.testing.assert_allclose(x.grad.numpy(), 3 * d.numpy())


# -- in-place writes between forward and backward (version stamps) --------------------------------
@pytest.mark.parametrize("lib", [dlia, torch], ids=["dlia", "torch"])
def test_writing_a_saved_input_in_place_before_backward_raises(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    x = lib.tensor([3.0, 4.0])
    loss = (w * x).sum()  # mul saves x for w's gradient
    x.zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation") as err:
        loss.backward()
    if lib is dlia:
        assert "Mul" in str(err.value) and "input 1" in str(err.value)


@pytest.mark.parametrize("lib", [dlia, torch], ids=["dlia", "torch"])
def test_writing_a_saved_output_in_place_before_backward_raises(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    y = w.exp()  # exp saves its output
    loss = y.sum()
    y.zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation") as err:
        loss.backward()
    if lib is dlia:
        assert "Exp" in str(err.value) and "output" in str(err.value)


@pytest.mark.parametrize("lib", [dlia, torch], ids=["dlia", "torch"])
def test_in_place_writes_the_gradient_does_not_depend_on_are_allowed(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    x = lib.tensor([3.0, 4.0])
    x.zero_()  # before the forward: the forward sees the new values
    loss = (w * x).sum() + (w + x).sum()  # add saves neither input
    b = lib.tensor([5.0, 6.0])
    loss2 = (w + b).sum()
    b.zero_()
    loss.backward()
    loss2.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])
    x.zero_()  # after backward: nothing left to protect
    (w * x).sum().backward()


def test_writing_an_array_that_an_op_saved_a_view_of_raises():
    w = dlia.tensor([1.0, 2.0], requires_grad=True)
    x = dlia.tensor([[3.0, 4.0]])
    loss = (w * x.reshape(2)).sum()  # mul saved a view of x's array
    x.zero_()
    with pytest.raises(RuntimeError, match="Mul"):
        loss.backward()
    loss = (w * x.reshape(2)).sum()
    x.detach().zero_()  # another tensor on the same memory
    with pytest.raises(RuntimeError, match="Mul"):
        loss.backward()
    m = dlia.tensor(np.ones((2, 2)), requires_grad=True)
    opt = dlia.optim.SGD([m], lr=0.1)
    (m.T @ w).sum().backward()
    loss = (m.T @ w).sum()  # matmul saved the transposed view of m
    opt.step()
    with pytest.raises(RuntimeError, match="MatMul"):
        loss.backward()


@pytest.mark.parametrize("a_shape, b_shape", [((3, 1), (1, 4)), ((4,), (2, 3, 4)), ((2, 1, 4), (3, 1)), ((), (2, 2))])
def test_broadcast_gradient_is_reduced_to_each_input_shape(a_shape, b_shape):
    a, b = RNG.standard_normal(a_shape), RNG.standard_normal(b_shape)
    _, (x, y) = compare_torch(lambda p, q: p * q + p, lambda p, q: p * q + p, a, b)
    assert x.grad.shape == a_shape and y.grad.shape == b_shape


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = dlia.tensor(np.ones((2, 2)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    with pytest.raises(RuntimeError, match="shape"):
        y.backward(np.ones(3))
    y.backward(np.full((2, 2), 0.5))
    np.testing.assert_array_equal(x.grad.numpy(), 1.0)


def test_backward_takes_a_tensor_gradient_too():
    x = dlia.tensor(np.ones(3), requires_grad=True)
    (x * 2).backward(dlia.tensor(np.array([1.0, 2.0, 3.0])))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0, 6.0])


@pytest.mark.parametrize("data", [[1, 2], np.array([True, False]), np.arange(3, dtype=np.int32)])
def test_non_float_tensors_cannot_require_grad(data):
    with pytest.raises(TypeError, match="floating"):
        dlia.tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        dlia.tensor(data).requires_grad_()


def test_int_inputs_never_get_gradients():
    x = dlia.tensor(np.array([1.0, 2.0]), requires_grad=True)
    k = dlia.tensor(np.array([3, 4]))
    (x * k).sum().backward()
    assert k.grad is None
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


def test_an_op_with_a_non_float_result_records_no_graph():
    """As in torch, an integer or boolean result never requires grad, whatever its inputs."""

    class RoundToIntForTest(Function):
        def forward(self, a):
            return a.round().astype(np.int64)

        def vjp(self, g):
            return (g,)

    x = dlia.tensor(np.array([1.4, 2.6]), requires_grad=True)
    y = RoundToIntForTest.apply(x)
    assert y.dtype == np.int64 and not y.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_backward_on_a_leaf_and_on_a_tensor_without_grad():
    x = dlia.tensor(np.array([1.0, 2.0]), requires_grad=True)
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        dlia.tensor(np.ones(1)).backward()


def test_leaves_without_requires_grad_get_nothing():
    x = dlia.tensor(np.ones(2), requires_grad=True)
    c = dlia.tensor(np.ones(2))
    (x * c + c).sum().backward()
    assert c.grad is None


def test_retain_grad_keeps_a_non_leaf_gradient():
    x = dlia.tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.numpy())
    assert (x * 2).grad is None


def test_leaf_gradients_are_fresh_arrays_never_shared():
    x = dlia.tensor(np.ones(3), requires_grad=True)
    y = dlia.tensor(np.ones(3), requires_grad=True)
    (x + y).sum().backward()
    x.grad.zero_()
    np.testing.assert_array_equal(y.grad.numpy(), 1.0)


def test_gradient_of_a_0d_leaf_is_an_array_that_can_be_zeroed():
    """Like torch, ``x.grad`` of a scalar parameter supports in-place ops (optimizers zero it)."""
    x = dlia.tensor(np.array(2.0), requires_grad=True)
    (x * x).backward()
    assert isinstance(x.grad.data, np.ndarray)
    x.grad.zero_()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    s = dlia.tensor(np.array(1.5), requires_grad=True)
    (s * dlia.tensor(np.ones((2, 3)))).sum().backward()  # summed over every broadcast axis
    (s * dlia.tensor(np.ones((2, 3)))).sum().backward()  # and accumulated
    assert isinstance(s.grad.data, np.ndarray) and s.grad.shape == ()
    np.testing.assert_array_equal(s.grad.numpy(), 12.0)


@pytest.mark.parametrize("other", [np.float64, np.float32])
def test_gradient_has_its_inputs_dtype_in_mixed_precision(other):
    """float32 + float64 promotes to float64 (as torch); each gradient keeps its input's dtype."""
    a = RNG.standard_normal((2, 3)).astype(np.float32)
    b = RNG.standard_normal(3).astype(other)
    _, (x, y) = compare_torch(lambda p, q: (p * q).exp(), lambda p, q: (p * q).exp(), a, b, atol=1e-6, rtol=1e-6)
    assert x.grad.dtype == np.float32 and y.grad.dtype == other


def test_float32_graph_keeps_float32_gradients():
    x = dlia.tensor(RNG.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    w = dlia.tensor(RNG.standard_normal((4, 2)).astype(np.float32), requires_grad=True)
    loss = dlia.cross_entropy(dlia.tanh(x @ w) * 2.0 + 1, [0, 1, 1]) + (x * x).mean()
    assert loss.dtype == np.float32
    loss.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_a_missing_gradient_rule_names_the_op():
    class GradlessOpForTest(Function):
        def forward(self, a):
            return a * 2

    x = dlia.tensor(np.ones(2), requires_grad=True)
    y = GradlessOpForTest.apply(x)
    with pytest.raises(NotImplementedError, match="GradlessOpForTest"):
        y.sum().backward()


def test_wide_graph_many_uses_of_one_leaf():
    x = dlia.tensor(np.array([0.5, -1.0]), requires_grad=True)
    total = x * 0.0
    for k in range(1, 501):
        total = total + x * float(k)
    total.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), sum(range(1, 501)))


def test_one_no_grad_instance_shared_by_threads():  # review of issue 10: tokens were kept on the instance
    import threading
    import time

    shared, errors = dlia.no_grad(), []

    def worker(delay):
        try:
            with shared:
                time.sleep(delay)
                assert not dlia.is_grad_enabled()
            assert dlia.is_grad_enabled()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(d,)) for d in (0.1, 0.02)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("lib", ["dlia", "torch"])
def test_grad_switches_on_generators_without_parentheses_and_reused_like_torch(lib):
    m = dlia if lib == "dlia" else torch

    @m.no_grad()
    def gen():
        yield m.is_grad_enabled()
        yield m.is_grad_enabled()

    assert list(gen()) == [False, False] and m.is_grad_enabled()

    @m.no_grad
    def plain():
        return m.is_grad_enabled()

    assert plain() is False and m.is_grad_enabled()
    switch = m.set_grad_enabled(False)
    for _ in range(2):  # an instance may be entered again
        with switch:
            pass
    assert m.is_grad_enabled()
