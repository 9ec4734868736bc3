"""``TensorDataset``, ``DataLoader`` (batch sizes, drop_last, seeded shuffling, every example once
per epoch) and ``train_test_split`` (disjoint, complete, reproducible)."""

from __future__ import annotations

import numpy as np
import pytest

import dlia
from dlia.data import DataLoader, Dataset, TensorDataset, train_test_split

N = 103  # not a multiple of the batch size


def _dataset(n: int = N) -> TensorDataset:
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)  # row i starts with 3i
    y = np.arange(n, dtype=np.int64)
    return TensorDataset(x, y)


def _ids(loader: DataLoader) -> list[np.ndarray]:
    """The example ids of each batch (recovered from y), checking x travels with its y."""
    out = []
    for xb, yb in loader:
        assert isinstance(xb, dlia.Tensor) and isinstance(yb, dlia.Tensor)
        np.testing.assert_array_equal(xb.numpy()[:, 0], 3 * yb.numpy())
        out.append(yb.numpy())
    return out


def test_tensor_dataset() -> None:
    ds = _dataset()
    assert len(ds) == N
    x, y = ds[5]
    np.testing.assert_array_equal(x, [15, 16, 17])
    assert y == 5
    tds = TensorDataset(dlia.tensor(np.ones((4, 2), np.float32)), np.zeros(4))
    assert len(tds) == 4 and tds[1][0].shape == (2,)
    with pytest.raises(ValueError, match=r"different lengths \[3, 4\]"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()


@pytest.mark.parametrize(("batch_size", "drop_last", "sizes"), [
    (10, False, [10] * 10 + [3]),
    (10, True, [10] * 10),
    (103, False, [103]),
    (200, False, [103]),
    (200, True, []),
    (1, True, [1] * N),
])
def test_batch_sizes_and_drop_last(batch_size: int, drop_last: bool, sizes: list[int]) -> None:
    loader = DataLoader(_dataset(), batch_size=batch_size, drop_last=drop_last)
    batches = _ids(loader)
    assert [len(b) for b in batches] == sizes
    assert len(loader) == len(sizes)
    if not drop_last:  # unshuffled: in order
        np.testing.assert_array_equal(np.concatenate(batches), np.arange(N))


def test_batch_dtypes_and_shapes() -> None:
    xb, yb = next(iter(DataLoader(_dataset(), batch_size=8)))
    assert xb.shape == (8, 3) and xb.dtype == np.float32
    assert yb.shape == (8,) and yb.dtype == np.int64
    assert not xb.requires_grad


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffle_visits_every_example_once_per_epoch(drop_last: bool) -> None:
    loader = DataLoader(_dataset(), batch_size=16, shuffle=True, drop_last=drop_last, generator=dlia.Generator(0))
    epochs = []
    for _ in range(3):
        ids = np.concatenate(_ids(loader))
        if drop_last:
            assert len(ids) == 96 and len(set(ids.tolist())) == 96  # distinct, 7 dropped
        else:
            assert sorted(ids.tolist()) == list(range(N))
        epochs.append(ids)
    assert not np.array_equal(epochs[0], np.arange(len(epochs[0])))  # really shuffled
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch


def test_shuffle_reproducible_with_seeded_generator() -> None:
    def run(seed: int) -> list[np.ndarray]:
        loader = DataLoader(_dataset(), batch_size=16, shuffle=True, generator=dlia.Generator(seed))
        return [np.concatenate(_ids(loader)) for _ in range(2)]

    a, b, c = run(7), run(7), run(8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_shuffle_with_default_generator_follows_manual_seed() -> None:
    loader = DataLoader(_dataset(), batch_size=32, shuffle=True)
    dlia.manual_seed(5)
    a = np.concatenate(_ids(loader))
    dlia.manual_seed(5)
    b = np.concatenate(_ids(loader))
    np.testing.assert_array_equal(a, b)


class Squares(Dataset):
    """A map-style dataset that is not a TensorDataset: (i, i²) with a vector feature."""

    def __len__(self) -> int:
        return 11

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return np.array([i, i * i], np.float32), i


def test_generic_dataset_is_collated() -> None:
    loader = DataLoader(Squares(), batch_size=4, shuffle=True, generator=dlia.Generator(1))
    seen = []
    for xb, yb in loader:
        assert xb.shape == (len(yb), 2)
        np.testing.assert_array_equal(xb.numpy()[:, 1], yb.numpy() ** 2)
        seen += yb.numpy().tolist()
    assert sorted(seen) == list(range(11))
    assert len(loader) == 3


def test_dataloader_rejects_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(), batch_size=0)


# -- train_test_split ------------------------------------------------------------------------------------
def test_split_disjoint_complete_and_aligned() -> None:
    x = np.arange(N * 2).reshape(N, 2)
    y = np.arange(N)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_fraction=0.2, seed=0)
    assert len(y_te) == round(0.2 * N) and len(y_tr) + len(y_te) == N
    assert set(y_tr.tolist()).isdisjoint(y_te.tolist())
    assert sorted(np.concatenate([y_tr, y_te]).tolist()) == list(range(N))
    np.testing.assert_array_equal(x_tr[:, 0], 2 * y_tr)  # rows stay paired across arrays
    np.testing.assert_array_equal(x_te[:, 0], 2 * y_te)
    assert not np.array_equal(y_te, np.sort(y_te))  # shuffled, not a slice


def test_split_reproducible_by_seed() -> None:
    y = np.arange(N)
    a = train_test_split(y, seed=3)
    b = train_test_split(y, seed=3)
    c = train_test_split(y, seed=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])
    # independent of the global random state
    dlia.manual_seed(99)
    np.random.seed(99)
    np.testing.assert_array_equal(train_test_split(y, seed=3)[1], a[1])


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.33])
def test_split_sizes(fraction: float) -> None:
    tr, te = train_test_split(list(range(50)), test_fraction=fraction)
    assert len(te) == round(50 * fraction) and len(tr) == 50 - len(te)


def test_split_errors() -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(np.arange(10), test_fraction=1.0)
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(np.arange(10), test_fraction=0.0)
    with pytest.raises(ValueError, match=r"10.*12|lengths"):
        train_test_split(np.arange(10), np.arange(12))
    with pytest.raises(ValueError, match="at least one"):
        train_test_split()
