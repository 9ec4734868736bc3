"""Sparse embedding gradients through the optimizers, against torch.

``nn.Embedding(sparse=True)`` hands the optimizer a ``SparseGrad``: plain SGD and Adagrad apply it
to the used rows only, exactly as ``torch.optim.SGD``/``Adagrad`` do with torch's sparse
embedding; the other optimizers densify it and must match torch's dense embedding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dlia
from dlia import nn, optim

V, D, STEPS = 12, 5, 8

# torch's sparse Adagrad builds COO tensors and warns that it skips their invariant checks
pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")


def _batches(seed: int = 0, padding_idx: int | None = None) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(STEPS):
        idx = rng.integers(0, V // 2, size=(3, 4))  # rows V/2.. are never used
        idx[0, :2] = idx[1, 0]  # a repeated row in every batch
        if padding_idx is not None:
            idx[2, 3] = padding_idx
        out.append(idx)
    return out


def _twins(sparse_torch: bool, padding_idx: int | None = None) -> tuple[nn.Embedding, torch.nn.Embedding]:
    ours = nn.Embedding(V, D, padding_idx=padding_idx, sparse=True, generator=dlia.Generator(0))
    theirs = torch.nn.Embedding(V, D, padding_idx=padding_idx, sparse=sparse_torch)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.numpy().copy()))
    return ours, theirs


def _train(ours, theirs, opt, topt, batches, targets) -> None:
    for step, (idx, tgt) in enumerate(zip(batches, targets), start=1):
        opt.zero_grad()
        ((ours(idx) - dlia.tensor(tgt)) ** 2).sum().backward()
        assert isinstance(ours.weight.grad, dlia.SparseGrad)
        opt.step()
        topt.zero_grad()
        ((theirs(torch.from_numpy(idx)) - torch.from_numpy(tgt)) ** 2).sum().backward()
        topt.step()
        np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=f"weights differ after step {step}")


def _targets(batches: list[np.ndarray], seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(b.shape + (D,)).astype(np.float32) for b in batches]


# name, dlia optimizer, torch optimizer, hyper-parameters, whether torch's embedding is sparse
CASES = [
    ("sgd", optim.SGD, torch.optim.SGD, dict(lr=0.05), True),
    ("adagrad", optim.Adagrad, torch.optim.Adagrad, dict(lr=0.3), True),
    ("adagrad_decay_init", optim.Adagrad, torch.optim.Adagrad,
     dict(lr=0.3, lr_decay=0.1, initial_accumulator_value=0.5), True),
    # densified paths: torch's dense embedding is the oracle
    ("sgd_momentum_wd", optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01), False),
    ("adagrad_wd", optim.Adagrad, torch.optim.Adagrad, dict(lr=0.3, weight_decay=0.01), False),
    ("adam", optim.Adam, torch.optim.Adam, dict(lr=0.05), False),
    ("rmsprop", optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01), False),
]


@pytest.mark.parametrize("padding_idx", [None, 3], ids=["no_padding", "padding_idx"])
@pytest.mark.parametrize(("name", "cls", "tcls", "hp", "sparse_torch"), CASES, ids=[c[0] for c in CASES])
def test_sparse_embedding_training_matches_torch(name, cls, tcls, hp, sparse_torch, padding_idx) -> None:
    ours, theirs = _twins(sparse_torch, padding_idx)
    before = ours.weight.numpy().copy()
    batches = _batches(padding_idx=padding_idx)
    _train(ours, theirs, cls(ours.parameters(), **hp), tcls(theirs.parameters(), **hp), batches, _targets(batches))
    after = ours.weight.numpy()
    used = np.unique(np.concatenate([b.ravel() for b in batches]))
    unused = np.setdiff1d(np.arange(V), used)
    assert np.abs(after[used[used != padding_idx]] - before[used[used != padding_idx]]).min() > 0
    decays = hp.get("weight_decay", 0) > 0
    if not decays:
        np.testing.assert_array_equal(after[unused], before[unused])
    if padding_idx is not None and not decays:
        np.testing.assert_array_equal(after[padding_idx], 0.0)


def test_plain_sgd_touches_only_used_rows_in_place() -> None:
    """The sparse path writes the used rows of the same array; nothing is densified."""
    emb = nn.Embedding(V, D, sparse=True)
    data = emb.weight.data
    before = data.copy()
    opt = optim.SGD(emb.parameters(), lr=0.1)
    emb(np.array([2, 2, 7])).sum().backward()
    grad = emb.weight.grad
    assert sorted(set(grad.indices.tolist())) == [2, 7]
    opt.step()
    assert emb.weight.data is data
    changed = np.flatnonzero(np.any(data != before, axis=1))
    assert changed.tolist() == [2, 7]
    np.testing.assert_allclose(data[2], before[2] - 0.2, rtol=1e-6)  # the repeated row counts twice
    np.testing.assert_allclose(data[7], before[7] - 0.1, rtol=1e-6)
