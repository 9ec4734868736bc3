"""Shared CLI helpers: the memory check for sizes, the one image loader and 16-bit images."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlia.cli import common
from dlia.cli.cnn import fcn_memory, load_image
from dlia.cli.common import check_memory, eight_bit, read_image
from dlia.cli.errors import UserError
from dlia.cli.main import main


def _gradient16(path: Path) -> np.ndarray:
    """A 16-bit greyscale PNG (mode I;16): a horizontal ramp over the whole 0..65535 range."""
    values = np.tile(np.linspace(0, 65535, 64).round().astype(np.uint16), (16, 1))
    Image.fromarray(values).save(path)
    with Image.open(path) as im:
        assert im.mode == "I;16"
    return values


def test_check_memory_names_the_option_and_the_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "memory_limit", lambda: 8 * 10**9)
    check_memory("--sizes 24", 10**8)
    with pytest.raises(UserError, match=r"^--sizes 3000 would need ~1\.2 TB of memory; this machine has 8 GB; "
                                        r"use smaller canvases$"):
        check_memory("--sizes 3000", fcn_memory(3000), "use smaller canvases")


def test_memory_limit_is_the_machine_or_the_address_space_limit() -> None:
    limit = common.memory_limit()
    assert limit is None or 2**26 < limit < 2**60


@pytest.mark.parametrize("argv, words", [
    (["cnn", "fcn", "--sizes", "8,3000"], "--sizes 3000 would need"),
    (["cnn", "fcn", "--sizes", "99999999999999999999"], "--sizes 99999999999999999999 would need"),
    (["lstsq", "--rows", "100000000", "--cols", "100"], "--rows 100000000 --cols 100 would need ~320 GB"),
    (["graph", "show", "cnn", "--batch", "100000000000"], "--batch 100000000000 would need"),
])
def test_sizes_are_checked_before_anything_is_allocated(argv: list[str], words: str, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(common, "memory_limit", lambda: 16 * 10**9)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "16 GB" in err and err.count("\n") == 1


def test_sizes_that_fit_still_run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(common, "memory_limit", lambda: 16 * 10**9)
    assert main(["lstsq", "--rows", "50", "--cols", "2"]) == 0


def test_a_decompression_bomb_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("L", (300, 200)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 60 000 pixels: more than twice the limit
    with pytest.raises(UserError, match=r"bomb\.png is too large to read safely: Image size \(60000 pixels\)"):
        read_image(str(tmp_path / "bomb.png"))


def test_the_decompression_bomb_warning_is_one_note_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    Image.new("L", (150, 100)).save(tmp_path / "large.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 15 000 pixels: Pillow only warns
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        im = read_image(str(tmp_path / "large.png"))
    assert not caught, [str(w.message) for w in caught]
    assert im.size == (150, 100)
    err = capsys.readouterr().err
    assert err.startswith("note: ") and err.count("\n") == 1 and "150×100" in err


def test_an_image_too_large_for_memory_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("L", (100, 100)).save(tmp_path / "a.png")
    monkeypatch.setattr(common, "memory_limit", lambda: 10**5)
    with pytest.raises(UserError, match=r"a\.png \(100×100 pixels\) would need ~640 kB"):
        read_image(str(tmp_path / "a.png"), 64)


def test_16_bit_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    values = _gradient16(tmp_path / "g16.png")
    with read_image(str(tmp_path / "g16.png")) as im:
        eight = np.asarray(eight_bit(im))
    assert eight.dtype == np.uint8
    assert np.array_equal(eight, np.round(values / 257).astype(np.uint8))
    assert eight.min() == 0 and eight.max() == 255 and len(np.unique(eight)) == 64


def test_32_bit_images_of_16_bit_values_and_of_wider_values() -> None:
    assert np.asarray(eight_bit(Image.fromarray(np.array([[0, 257, 65535]], np.int32), mode="I"))).tolist() == [[0, 1, 255]]
    wide = eight_bit(Image.fromarray(np.array([[-5, 2**30, 2**31 - 1]], np.int32), mode="I"))
    assert np.asarray(wide).tolist() == [[0, 128, 255]]
    rgb = Image.new("RGB", (2, 2))
    assert eight_bit(rgb) is rgb


def test_filter_keeps_the_shades_of_a_16_bit_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    values = _gradient16(tmp_path / "g16.png")
    monkeypatch.chdir(tmp_path)
    assert main(["filter", "g16.png", "--kernel", "0,0,0;0,1,0;0,0,0", "-o", "out.png"]) == 0
    assert "I;16 → L, scaled to 8 bits" in capsys.readouterr().out
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "L"
        assert np.array_equal(np.asarray(out), np.round(values / 257).astype(np.uint8))


def test_cnn_predict_reads_a_16_bit_digit(tmp_path: Path) -> None:
    scan = np.full((40, 40), 65535, np.uint16)
    scan[8:32, 18:22] = 20000  # a "1" in grey ink on white paper: all above 255, so clipping made it blank
    Image.fromarray(scan).save(tmp_path / "one.png")
    x = load_image(str(tmp_path / "one.png"))
    assert x.shape == (8, 8) and x.max() == 1.0 and x[:, 3:5].sum() > x[:, :2].sum() + x[:, 6:].sum()


def test_path_name_refuses_an_empty_name() -> None:
    import argparse

    assert common.path_name("run") == "run"
    for text in ("", "  "):
        with pytest.raises(argparse.ArgumentTypeError, match="empty"):
            common.path_name(text)


def test_every_path_option_refuses_an_empty_name() -> None:
    """Every option or argument naming a file or folder has ``path_name`` (or ``picture``, which uses it) as its type."""
    import argparse

    from dlia.cli.main import build_parser

    path_options = {"--out", "--data", "--dir", "--output", "--checkpoint", "--plot", "--curves", "--pictures"}
    path_arguments = {"image", "input", "source"}
    found = []

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in set(action.choices.values()):
                    walk(child)
            elif path_options & set(action.option_strings) or (not action.option_strings and action.dest in path_arguments):
                if parser.prog == "dlia perceptron" and action.dest == "data":  # a choice of data sets, not a file
                    continue
                found.append(f"{parser.prog} {action.dest}")
                assert action.type in (common.path_name, common.picture), f"{parser.prog} {action.dest}: type {action.type}"

    walk(build_parser())
    assert len(found) >= 15, found
