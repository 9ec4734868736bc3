"""Data: datasets, a batching ``DataLoader``, splits and loaders for the lecture's data sets."""

from dlia.data.datasets import DataLoader, Dataset, TensorDataset, train_test_split
from dlia.data.digits import load_digits
from dlia.data.paths import DataError, DataNotFoundError, find_data_file

__all__ = [
    "DataError", "DataLoader", "DataNotFoundError", "Dataset", "TensorDataset", "find_data_file", "load_digits",
    "train_test_split",
]
