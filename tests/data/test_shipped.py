"""The data shipped inside the package (``dlia/data/shipped/``): found first, with no data folder at
all, equal to the published files, and listed in the package data of wheels and sdists."""

from __future__ import annotations

import gzip
import tomllib
from pathlib import Path

import numpy as np
import pytest

from dlia.data import (
    DataError,
    DataNotFoundError,
    find_data_file,
    find_tinyshakespeare,
    load_digits,
    paths,
    shipped_file,
    tinyshakespeare,
)
from dlia.data import download as D

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "digits.npz").is_file() or not (SHARED / "tinyshakespeare.txt").is_file(),
                                  reason="shared data files absent")


@pytest.fixture
def no_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no ./data, no ../shared/data, and the folder search switched off:
    only what ships inside the package can be found."""
    work = tmp_path / "empty"
    work.mkdir()
    monkeypatch.chdir(work)

    def no_search() -> list[Path]:
        raise AssertionError("the data folders were searched")

    monkeypatch.setattr(paths, "search_dirs", no_search)
    return work


def test_every_shipped_file_is_in_the_package_and_in_its_package_data():
    for name in paths.SHIPPED:
        p = shipped_file(name)
        assert p is not None and p.is_file() and p.parent.name == "shipped" and p.parent.parent.name == "data"
    with open(REPO / "pyproject.toml", "rb") as f:
        package_data = tomllib.load(f)["tool"]["setuptools"]["package-data"]["dlia.data"]
    assert sorted(package_data) == sorted(f"shipped/{name}" for name in paths.SHIPPED)
    assert {ds.shipped for ds in D.DATASETS.values() if ds.shipped} == set(paths.SHIPPED)


def test_shipped_files_stay_small():
    sizes = {name: shipped_file(name).stat().st_size for name in paths.SHIPPED}
    assert sizes["digits.npz"] < 50_000 and sizes["tinyshakespeare.txt.gz"] < 440_000, sizes  # gzip -9: 433,627 bytes
    assert sizes["questions-words.txt.gz"] < 70_000 and sizes["wordsim353.tsv.gz"] < 4_000, sizes


def test_shipped_files_are_the_published_data_sets():
    assert D.verify("digits", shipped_file("digits.npz"))
    assert D.verify("tinyshakespeare", shipped_file("tinyshakespeare.txt.gz"))  # checksum of the decompressed text
    assert D.verify("questions-words", shipped_file("questions-words.txt.gz"))
    assert D.verify("wordsim353", shipped_file("wordsim353.tsv.gz"))


@needs_shared
def test_shipped_digits_equal_the_shared_file():
    with np.load(shipped_file("digits.npz"), allow_pickle=False) as ours, np.load(SHARED / "digits.npz") as theirs:
        assert sorted(ours.files) == sorted(theirs.files) == ["images", "target"]
        for key in ours.files:
            assert ours[key].dtype == theirs[key].dtype and ours[key].shape == theirs[key].shape
            np.testing.assert_array_equal(ours[key], theirs[key])


@needs_shared
def test_shipped_text_equals_the_shared_file(no_data_folder):
    text = tinyshakespeare()
    assert text == (SHARED / "tinyshakespeare.txt").read_text(encoding="utf-8")
    assert len(text) == 1_115_394 and len(set(text)) == 65 and text.startswith("First Citizen:\n")


def test_found_with_no_data_folder_at_all(no_data_folder):
    assert find_data_file("digits.npz") == shipped_file("digits.npz")
    assert find_tinyshakespeare() == shipped_file("tinyshakespeare.txt.gz")
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,) and labels[:10].tolist() == list(range(10))


def test_the_shipped_copy_comes_before_the_folders_and_an_explicit_path_before_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "digits.npz").write_bytes(b"junk")
    (tmp_path / "data" / "tinyshakespeare.txt").write_text("To be.\n")
    assert len(load_digits()[1]) == 1797 and len(tinyshakespeare()) == 1_115_394  # ./data is not consulted
    with pytest.raises(DataError, match="not a valid digits archive"):
        load_digits("data")
    assert tinyshakespeare("data") == "To be.\n" and tinyshakespeare("data/tinyshakespeare.txt") == "To be.\n"


def test_without_the_shipped_files_the_folders_are_searched(tmp_path, monkeypatch, no_shipped_data):
    monkeypatch.chdir(tmp_path)
    assert shipped_file("digits.npz") is None and shipped_file("tinyshakespeare.txt.gz") is None
    with pytest.raises(DataNotFoundError, match=r"tinyshakespeare\.txt not found .*'dlia data get tinyshakespeare'"):
        tinyshakespeare()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tinyshakespeare.txt").write_text("Ay, ay — ça va.\n", encoding="utf-8")
    assert find_tinyshakespeare() == Path("data") / "tinyshakespeare.txt"
    assert tinyshakespeare() == "Ay, ay — ça va.\n"


def test_shipped_file_knows_only_the_shipped_names():
    assert shipped_file("questions-words.txt") is None and shipped_file("tinyshakespeare.txt") is None
    assert shipped_file("../shipped/digits.npz") is None


def test_a_gzipped_copy_is_read_and_bad_copies_are_refused(tmp_path):
    good = tmp_path / "t.txt.gz"
    good.write_bytes(gzip.compress("Ωmega\n".encode()))
    assert tinyshakespeare(good) == "Ωmega\n"
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(gzip.compress(b"x" * 1000)[:20])
    with pytest.raises(DataError, match=r"cut\.txt\.gz: damaged gzip data"):
        tinyshakespeare(cut)
    plain = tmp_path / "plain.gz"
    plain.write_text("not gzip")
    with pytest.raises(DataError, match=r"plain\.gz: not gzip data"):
        tinyshakespeare(plain)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("abc é".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt is not UTF-8 text: byte 4 is 0xe9"):
        tinyshakespeare(latin)
    with pytest.raises(DataNotFoundError, match="no-such"):
        tinyshakespeare(tmp_path / "no-such.txt")
