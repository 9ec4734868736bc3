"""``load_digits`` on the shared ``digits.npz``, and the errors for missing or corrupt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlia.data import DataError, DataNotFoundError, find_data_file, load_digits

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / ".." / "shared" / "data" / "digits.npz"

needs_digits = pytest.mark.skipif(not DIGITS.is_file(), reason=f"shared data file {DIGITS} is absent")


@needs_digits
def test_load_digits_shapes_dtypes_ranges() -> None:
    images, labels = load_digits(DIGITS)
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(np.unique(images * 16), np.arange(17))  # the raw 0..16 levels, scaled
    assert sorted(set(labels.tolist())) == list(range(10))
    assert np.bincount(labels).min() > 170  # every class well represented


@needs_digits
def test_load_digits_from_a_folder() -> None:
    images, labels = load_digits(DIGITS.parent)
    assert images.shape == (1797, 8, 8) and len(labels) == 1797


@needs_digits
def test_default_search_finds_shared_data_from_the_repo_root(monkeypatch: pytest.MonkeyPatch, no_shipped_data: None) -> None:
    monkeypatch.chdir(REPO)
    assert find_data_file("digits.npz").resolve() == DIGITS.resolve()


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "digits.npz"
    with pytest.raises(DataNotFoundError, match="nowhere") as info:
        load_digits(missing)
    assert str(missing) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DataNotFoundError, match="digits.npz"):
        load_digits(tmp_path)  # a folder without the file


def test_default_search_lists_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=r"no-such-file\.npz not found \(looked in: .*shared"):
        find_data_file("no-such-file.npz")


def test_corrupt_file_raises_value_error(tmp_path: Path) -> None:
    bad = tmp_path / "digits.npz"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip archive \x00\xff" * 20)
    with pytest.raises(ValueError, match="not a valid digits archive") as info:
        load_digits(bad)
    assert str(bad) in str(info.value)
    bad.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ValueError, match="not a valid digits archive"):
        load_digits(bad)


def test_archive_without_the_arrays_raises_value_error(tmp_path: Path) -> None:
    wrong = tmp_path / "digits.npz"
    np.savez(wrong, pixels=np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="images"):
        load_digits(wrong)
    np.savez(wrong, images=np.zeros((3, 64), np.uint8), target=np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"\(3, 64\)"):
        load_digits(wrong)
    np.savez(wrong, images=np.zeros((3, 8, 8), np.uint8), target=np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="N targets"):
        load_digits(wrong)


def _digits_file(path: Path, labels: list, n: int | None = None) -> Path:
    n = len(labels) if n is None else n
    np.savez(path, images=np.zeros((n, 8, 8), np.uint8), target=np.array(labels))
    return path


@pytest.mark.parametrize("labels, words", [
    ([0, 1, 2, 10, 4, 5], "sample 3 has label 10"),
    ([0, 1, -1, 3, 4, -2], "sample 2 has label -1 (and 1 more)"),
    ([0.0, 1.0, 2.5, 3.0, 4.0], "sample 2 has label 2.5"),
    ([0, 1, 2, np.nan, 4], "sample 3 has label nan"),
    ([3], "holds 1 sample; training and testing need at least 5"),
])
def test_unusable_labels_or_too_few_samples_raise_data_error(tmp_path: Path, labels: list, words: str) -> None:
    path = _digits_file(tmp_path / "digits.npz", labels)
    with pytest.raises(DataError, match="digits.npz") as info:
        load_digits(path)
    assert words in str(info.value)


def test_integer_valued_float_labels_are_accepted(tmp_path: Path) -> None:
    _, labels = load_digits(_digits_file(tmp_path / "digits.npz", [0.0, 9.0, 1.0, 2.0, 3.0]))
    assert labels.tolist() == [0, 9, 1, 2, 3] and labels.dtype == np.int64


def test_pixels_outside_0_to_16_raise_data_error(tmp_path: Path) -> None:
    path = tmp_path / "digits.npz"
    np.savez(path, images=np.full((5, 8, 8), 255, np.uint8), target=np.arange(5))
    with pytest.raises(DataError, match="0..16"):
        load_digits(path)


def test_declared_size_larger_than_the_file_is_refused(tmp_path: Path) -> None:
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**11, 8, 8)})
    path = tmp_path / "digits.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("images.npy", header.getvalue() + b"\0" * 64)
        z.writestr("target.npy", header.getvalue())
    with pytest.raises(DataError, match="declares 6400000000000 bytes"):
        load_digits(path)
