"""Data: datasets, a batching ``DataLoader``, splits and loaders for the lecture's data sets."""

from dlia.data.corpora import find_tinyshakespeare, tinyshakespeare
from dlia.data.datasets import DataLoader, Dataset, TensorDataset, train_test_split
from dlia.data.dates import dates_dataset
from dlia.data.digits import load_digits
from dlia.data.paths import DataError, DataNotFoundError, find_data_file, shipped_file
from dlia.data.shapes import scenes_dataset

__all__ = [
    "DataError", "DataLoader", "DataNotFoundError", "Dataset", "TensorDataset", "dates_dataset", "find_data_file",
    "find_tinyshakespeare",
    "load_digits", "scenes_dataset", "shipped_file", "tinyshakespeare", "train_test_split",
]
