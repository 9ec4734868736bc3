"""``nn.Embedding`` gradients: dense ones equal torch's; sparse ones are a ``dlia.SparseGrad`` that
holds only the rows used, sums repeated indices and leaves ``padding_idx`` at zero."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlia
from dlia import nn

V, D = 10, 3
IDX = np.array([[4, 1, 4], [7, 4, 1]])  # row 4 three times, row 1 twice, row 7 once


def _twins(sparse: bool, padding_idx: int | None = None) -> tuple[nn.Embedding, torch.nn.Embedding]:
    ours = nn.Embedding(V, D, padding_idx=padding_idx, sparse=sparse, generator=dlia.Generator(0))
    theirs = torch.nn.Embedding(V, D, padding_idx=padding_idx, sparse=sparse)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.numpy().copy()))
    return ours, theirs


def _backward(ours: nn.Embedding, theirs: torch.nn.Embedding, idx: np.ndarray, seed: int = 0) -> None:
    u = np.random.default_rng(seed).standard_normal(idx.shape + (D,)).astype(np.float32)
    out, tout = ours(idx), theirs(torch.from_numpy(idx))
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    (out * dlia.tensor(u)).sum().backward()
    (tout * torch.from_numpy(u)).sum().backward()


@pytest.mark.parametrize("padding_idx", [None, 4, -3], ids=["plain", "padding_4", "padding_neg"])
def test_dense_gradient_equals_torch(padding_idx: int | None) -> None:
    ours, theirs = _twins(sparse=False, padding_idx=padding_idx)
    _backward(ours, theirs, np.array([[4, 1, 4], [7, 4, 1]]) if padding_idx != -3 else np.array([[7, 1, 7]]))
    assert not isinstance(ours.weight.grad, dlia.SparseGrad)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_sparse_gradient_holds_only_used_rows() -> None:
    ours, theirs = _twins(sparse=True)
    _backward(ours, theirs, IDX)
    g = ours.weight.grad
    assert isinstance(g, dlia.SparseGrad)
    assert g.shape == (V, D)
    assert g.values.shape == (len(g.indices), D)
    assert set(g.indices.tolist()) == {1, 4, 7}
    tg = theirs.weight.grad.coalesce()
    np.testing.assert_allclose(g.to_dense(), tg.to_dense().numpy(), rtol=1e-6, atol=1e-6)
    c = g.coalesce()  # sorted, unique rows with the repeated ones summed
    assert c.indices.tolist() == tg.indices()[0].tolist() == [1, 4, 7]
    np.testing.assert_allclose(c.values, tg.values().numpy(), rtol=1e-6, atol=1e-6)


def test_repeated_indices_accumulate() -> None:
    emb = nn.Embedding(V, D, sparse=True)
    emb(np.array([5, 5, 5, 2])).sum().backward()
    dense = emb.weight.grad.to_dense()
    np.testing.assert_array_equal(dense[5], 3.0)
    np.testing.assert_array_equal(dense[2], 1.0)
    assert dense.sum() == 4 * D


def test_sparse_gradients_accumulate_over_backward_calls() -> None:
    ours, theirs = _twins(sparse=True)
    _backward(ours, theirs, IDX, seed=1)
    _backward(ours, theirs, np.array([[0, 4]]), seed=2)
    g = ours.weight.grad
    assert isinstance(g, dlia.SparseGrad) and set(g.indices.tolist()) == {0, 1, 4, 7}
    np.testing.assert_allclose(g.to_dense(), theirs.weight.grad.to_dense().numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_padding_idx_rows_get_no_gradient(sparse: bool) -> None:
    ours, theirs = _twins(sparse=sparse, padding_idx=4)
    _backward(ours, theirs, IDX)
    dense = ours.weight.grad.to_dense() if sparse else ours.weight.grad.numpy()
    np.testing.assert_array_equal(dense[4], 0.0)
    assert np.all(dense[[1, 7]] != 0)
    tdense = theirs.weight.grad.to_dense() if sparse else theirs.weight.grad
    np.testing.assert_allclose(dense, tdense.numpy(), rtol=1e-6, atol=1e-6)


def test_sparse_and_dense_gradients_agree_inside_a_model() -> None:
    """The sparse gradient flows back through later layers like the dense one."""
    grads = []
    for sparse in (True, False):
        emb = nn.Embedding(V, D, sparse=sparse, generator=dlia.Generator(3))
        head = nn.Linear(D, 2, generator=dlia.Generator(4))
        loss = nn.functional.cross_entropy(head(emb(IDX).mean(axis=1)), np.array([0, 1]))
        loss.backward()
        g = emb.weight.grad
        grads.append(g.to_dense() if isinstance(g, dlia.SparseGrad) else g.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6, atol=1e-7)


def test_embedding_errors() -> None:
    emb = nn.Embedding(V, D)
    with pytest.raises(IndexError, match="out of range"):
        emb(np.array([0, V]))
    with pytest.raises(ValueError, match="integers"):
        emb(np.array([0.0, 1.0]))
