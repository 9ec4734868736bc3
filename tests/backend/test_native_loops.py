"""The two memory-bound loops of _native.c (an embedding's gradient, Adam's update) against their
NumPy paths, bit for bit: a run gives the same numbers with or without the compiled kernels."""

from __future__ import annotations

import numpy as np
import pytest

import dlia
from dlia import optim
from dlia.backend import native
from dlia.core import ops

needs_native = pytest.mark.skipif(not native.available, reason="the C kernels were not built (no C compiler)")


def embedding_grads(compiled, vocab, idx_shape, dim, padding_idx=None, dtype=np.float32):
    rng = np.random.default_rng(vocab)
    table = dlia.tensor(rng.standard_normal((vocab, dim)).astype(dtype), requires_grad=True)
    ids = rng.integers(0, vocab, idx_shape)
    g = rng.standard_normal(idx_shape + (dim,)).astype(dtype)
    with native.use(compiled):
        out = ops.embedding(table, ids, padding_idx=padding_idx)
        (out * dlia.tensor(g)).sum().backward()
    return table.grad.numpy()


@needs_native
@pytest.mark.parametrize("vocab, idx_shape, dim", [(65, (50, 50), 512), (7, (3,), 5), (1000, (40, 30), 16),
                                                   (3, (1,), 8), (5, (4, 0), 3)])
def test_embedding_gradient_is_the_numpy_one_bit_for_bit(vocab, idx_shape, dim, monkeypatch):
    calls = []
    real = native.embedding_backward
    monkeypatch.setattr(native, "embedding_backward", lambda *a: calls.append(1) or real(*a))
    ours = embedding_grads(True, vocab, idx_shape, dim)
    assert calls, "the compiled loop was not asked"
    reference = embedding_grads(False, vocab, idx_shape, dim)
    if vocab <= 512:  # the NumPy path's per-index sums: the same additions in the same order
        np.testing.assert_array_equal(ours, reference)
    else:  # beyond 512 distinct indices it uses numpy.add.reduceat, which groups them its own way
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)


@needs_native
def test_embedding_gradient_with_padding_and_float64():
    np.testing.assert_array_equal(embedding_grads(True, 9, (6, 7), 4, padding_idx=2),
                                  embedding_grads(False, 9, (6, 7), 4, padding_idx=2))
    np.testing.assert_array_equal(embedding_grads(True, 9, (6, 7), 4, dtype=np.float64),  # NumPy path: same code
                                  embedding_grads(False, 9, (6, 7), 4, dtype=np.float64))


def adam_run(compiled, amsgrad, steps=5, nan=False):
    rng = np.random.default_rng(0)
    params = [dlia.nn.Parameter(rng.standard_normal(s).astype(np.float32)) for s in [(7, 5), (5,), (300, 11), (1,)]]
    opt = optim.Adam(params, lr=3e-3, betas=(0.8, 0.95), eps=1e-6, amsgrad=amsgrad)
    with native.use(compiled):
        for k in range(steps):
            for p in params:
                g = rng.standard_normal(p.shape).astype(np.float32) * (10.0 ** (k - 2))
                if nan and k == 3:
                    g.flat[0] = np.nan
                p.grad = dlia.tensor(g)
            opt.step()
    return [p.numpy().copy() for p in params] + [np.asarray(st[n]).copy() for st in opt.state.values()
                                                 for n in sorted(st) if n != "step"]


@needs_native
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("nan", [False, True])
def test_adam_is_the_numpy_update_bit_for_bit(amsgrad, nan, monkeypatch):
    calls = []
    real = native.adam
    monkeypatch.setattr(native, "adam", lambda *a: calls.append(1) or real(*a))
    ours = adam_run(True, amsgrad, nan=nan)
    assert calls, "the compiled loop was not asked"
    reference = adam_run(False, amsgrad, nan=nan)
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_loops_refuse_what_they_cannot_take():
    f32 = np.zeros((4, 3), np.float32)
    assert not native.embedding_backward(np.array([0, 1]), f32[:2].astype(np.float64), f32)  # float64
    assert not native.embedding_backward(np.array([0, 1, 2]), f32[:2], f32)  # wrong index count
    assert not native.embedding_backward(np.array([0.0, 1.0]), f32[:2], f32)  # float indices
    assert not native.embedding_backward(np.array([0, 1]), f32[:2, :2], f32)  # widths differ
    v = np.zeros(5, np.float32)
    assert not native.adam(v, v, v, None, np.zeros(4, np.float32), 0.1, 0.9, 0.1, 1.0, 1e-8, 1e-3)  # sizes differ
    assert not native.adam(v.astype(np.float64), v, v, None, v, 0.1, 0.9, 0.1, 1.0, 1e-8, 1e-3)
    assert not native.adam(np.zeros(10, np.float32)[::2], v, v, None, v, 0.1, 0.9, 0.1, 1.0, 1e-8, 1e-3)


@needs_native
def test_embedding_rows_of_width_one_stay_on_numpy():
    """NumPy sums a contiguous column pairwise, not in order: width-1 rows keep its path (review)."""
    rng = np.random.default_rng(5)
    table = dlia.tensor(np.zeros((3, 1), np.float32), requires_grad=True)
    ids = rng.integers(0, 3, 1000)
    g = (rng.standard_normal((1000, 1)) * 10.0 ** rng.integers(-4, 8, (1000, 1))).astype(np.float32)
    grads = []
    for compiled in (True, False):
        table.grad = None
        with native.use(compiled):
            (ops.embedding(table, ids) * dlia.tensor(g)).sum().backward()
        grads.append(table.grad.numpy().copy())
    np.testing.assert_array_equal(*grads)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("n_params", [1, 2])
def test_amsgrad_switched_on_after_the_first_step_is_refused(compiled, n_params):
    params = [dlia.nn.Parameter(np.ones(3, np.float32)) for _ in range(n_params)]
    opt = optim.Adam(params, lr=0.1)
    with native.use(compiled):
        for p in params:
            p.grad = dlia.tensor(np.ones(3, np.float32))
        opt.step()
        opt.param_groups[0]["amsgrad"] = True
        for p in params:
            p.grad = dlia.tensor(np.full(3, 0.5, np.float32))
        with pytest.raises(RuntimeError, match="amsgrad was switched on after the first step"):
            opt.step()
