"""``Dataset``, ``TensorDataset``, ``DataLoader`` (seeded shuffling) and ``train_test_split``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy

from dlia.core.random import Generator, default_generator
from dlia.core.tensor import Tensor


class Dataset:
    """Anything with ``__len__`` and ``__getitem__(i)`` returning one example (a tuple of arrays)."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, i: int) -> Any:
        raise NotImplementedError


class TensorDataset(Dataset):
    """Examples are rows of equally long arrays: ``TensorDataset(images, labels)``."""

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = [a.data if isinstance(a, Tensor) else numpy.asarray(a) for a in arrays]
        n = len(self.arrays[0])
        if any(len(a) != n for a in self.arrays):
            raise ValueError(f"TensorDataset: arrays have different lengths {[len(a) for a in self.arrays]}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, i: Any) -> tuple[Any, ...]:
        return tuple(a[i] for a in self.arrays)


class DataLoader:
    """Mini-batches of a dataset as tensors, reshuffled each epoch from a seeded generator.

    Args:
        dataset: a ``TensorDataset`` (sliced in one go) or any ``Dataset``.
        batch_size: examples per batch.
        shuffle: reshuffle at every epoch.
        drop_last: drop a last, smaller batch.
        generator: source of the shuffling order (the default generator if None).
    """

    def __init__(self, dataset: Dataset, batch_size: int = 32, shuffle: bool = False, drop_last: bool = False,
                 generator: Generator | None = None) -> None:
        if batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be positive, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n = len(self.dataset)
        order = (self.generator or default_generator).permutation(n) if self.shuffle else numpy.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            idx = order[start : start + self.batch_size]
            if isinstance(self.dataset, TensorDataset):
                yield tuple(Tensor(a[idx]) for a in self.dataset.arrays)
            else:
                items = [self.dataset[int(i)] for i in idx]
                yield tuple(Tensor(numpy.stack([numpy.asarray(it[k]) for it in items])) for k in range(len(items[0])))


def train_test_split(*arrays: Sequence[Any], test_fraction: float = 0.2, seed: int = 0) -> list[Any]:
    """Shuffle with ``seed`` and split every array the same way: returns train1, test1, train2, test2, ...

    Example: ``x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_fraction=0.2, seed=0)``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not arrays:
        raise ValueError("train_test_split needs at least one array")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"train_test_split: arrays have different lengths {[len(a) for a in arrays]}")
    order = numpy.random.Generator(numpy.random.PCG64(seed)).permutation(n)
    n_test = int(round(n * test_fraction))
    test, train = order[:n_test], order[n_test:]
    out = []
    for a in arrays:
        a = numpy.asarray(a)
        out += [a[train], a[test]]
    return out
