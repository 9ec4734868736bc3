"""``dlia conv2`` and ``dlia filter``: Octave-style printing, GIMP-style filtering, one-line errors."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dlia.signal import KERNELS, convolution_matrix


def dlia(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dlia.cli.main", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def answer(stdout):
    """The rows printed after the last ``ans =``."""
    block = stdout.split("ans =\n\n")[-1]
    return [line for line in block.splitlines() if line.strip()]


def test_conv2_lecture_example_as_octave_prints_it():
    r = dlia("conv2", "--a", "1,2,3;4,5,6;7,8,9", "--b", "1,0;0,0")
    assert r.returncode == 0, r.stderr
    assert ">> conv2 (A, B, 'full')" in r.stdout
    assert answer(r.stdout) == ["   1   2   3   0", "   4   5   6   0", "   7   8   9   0", "   0   0   0   0"]
    r = dlia("conv2", "--a", "1,2,3;4,5,6;7,8,9", "--b", "1,0;0,0", "--shape", "same")
    assert answer(r.stdout) == ["   5   6   0", "   8   9   0", "   0   0   0"]
    r = dlia("conv2", "--shape", "valid")  # the lecture's A and B are the defaults
    assert answer(r.stdout) == ["   5   6", "   8   9"]


def test_conv2_xcorr_scales_and_empty_valid():
    r = dlia("conv2", "--xcorr", "--a", "1 2 3; 4 5 6; 7 8 9", "--b", "[1 0; 0 0]")
    assert r.returncode == 0, r.stderr
    assert answer(r.stdout) == ["   0   0   0   0", "   0   1   2   3", "   0   4   5   6", "   0   7   8   9"]
    r = dlia("conv2", "--xcorr", "--scale", "biased", "--a", "1,2;3,4")  # autocorrelation / 4
    assert answer(r.stdout) == ["   1.0000   2.7500   1.5000", "   3.5000   7.5000   3.5000",
                                "   1.5000   2.7500   1.0000"]
    r = dlia("conv2", "--a", "1,2;3,4", "--b", "1,1,1;1,1,1;1,1,1", "--shape", "valid")
    assert r.stdout.rstrip().endswith("ans = [](0x0)")
    r = dlia("conv2", "--a=-1,2;3,4", "--b", "-2")
    assert answer(r.stdout) == ["   2  -4", "  -6  -8"]


def test_conv2_takes_a_and_b_in_order_as_octave_does():
    r = dlia("conv2", "1 2 3;4 5 6;7 8 9", "1 0;0 0", "--shape", "same")
    assert r.returncode == 0, r.stderr
    assert answer(r.stdout) == ["   5   6   0", "   8   9   0", "   0   0   0"]
    r = dlia("conv2", "--", "-1,2;3,4", "-2")  # after --, a leading minus sign is a matrix, not an option
    assert answer(r.stdout) == ["   2  -4", "  -6  -8"]
    r = dlia("conv2", "--xcorr", "1,2;3,4")  # A alone: the autocorrelation
    assert answer(r.stdout) == ["    4   11    6", "   14   30   14", "    6   11    4"]


def test_output_into_a_closed_pipe_stops_quietly():
    """`dlia conv2 | head -1`: no BrokenPipeError traceback, exit status 141 as for SIGPIPE."""
    p = subprocess.Popen([sys.executable, "-m", "dlia.cli.main", "conv2", "--a", ";".join(["1 2 3"] * 3000)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("args, message", [
    (["conv2", "1 2", "--a", "3"], "A is given twice (as an argument and as --a); keep one"),
    (["conv2", "1 2", "1,x"], "B: matrix: 'x' is not a number"),
    (["conv2", "--a", "1,2;3"], "--a: matrix: rows have different lengths"),
    (["conv2", "--b", "1,x"], "--b: matrix: 'x' is not a number"),
    (["conv2", "--xcorr", "--shape", "same"], "--shape is conv2's"),
    (["conv2", "--scale", "coeff"], "--scale applies to --xcorr only"),
    (["conv2", "--shape", "middle"], "invalid choice: 'middle'"),
])
def test_conv2_errors_one_line_exit_2(args, message):
    r = dlia(*args)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("dlia conv2: error:")


@pytest.fixture
def png(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 17, 4), dtype=np.uint8)
    path = tmp_path / "in.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_filter_sharpen_rgba_keeps_alpha(png, tmp_path):
    path, pixels = png
    out = tmp_path / "out.png"
    r = dlia("filter", str(path), "--kernel", "sharpen", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "17×12 RGBA" in r.stdout and "divisor 1, offset 0, border extend" in r.stdout
    with Image.open(out) as im:
        got = np.asarray(im)
    np.testing.assert_array_equal(got, convolution_matrix(pixels, KERNELS["sharpen"]))
    np.testing.assert_array_equal(got[..., 3], pixels[..., 3])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left behind


def test_filter_blur_is_normalised_and_side_by_side(png, tmp_path):
    path, pixels = png
    out = tmp_path / "pair.png"
    r = dlia("filter", str(path), "--kernel", "Blur", "--border", "wrap", "--side-by-side", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "divisor 9, offset 0, border wrap" in r.stdout
    with Image.open(out) as im:
        assert im.size == (34, 12)
        got = np.asarray(im)
    np.testing.assert_array_equal(got[:, :17], pixels)
    np.testing.assert_array_equal(got[:, 17:], convolution_matrix(pixels, KERNELS["blur"], divisor=9, border="wrap"))


def test_filter_matrix_text_file_and_options(png, tmp_path):
    path, pixels = png
    grey = tmp_path / "grey.png"
    Image.fromarray(pixels[..., 0]).save(grey)
    kfile = tmp_path / "k.txt"
    kfile.write_text("# edge detect\n0 1 0\n1 -4 1\n0 1 0\n", encoding="utf-8")
    out1, out2 = tmp_path / "a.png", tmp_path / "b.png"
    r1 = dlia("filter", str(grey), "--kernel", f"@{kfile}", "--normalise", "-o", str(out1))
    r2 = dlia("filter", str(grey), "--kernel", "0,1,0;1,-4,1;0,1,0", "--divisor", "1", "--offset", "128", "-o", str(out2))
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    with Image.open(out1) as a, Image.open(out2) as b:
        assert a.mode == "L"
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(a), convolution_matrix(pixels[..., 0], KERNELS["edge_detect"],
                                                                        offset=128))


def test_filter_alpha_options(png, tmp_path):
    path, pixels = png
    out = tmp_path / "o.png"
    r = dlia("filter", str(path), "--kernel", "blur", "--border", "crop", "--filter-alpha", "--alpha-weighting",
             "-o", str(out))
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        np.testing.assert_array_equal(np.asarray(im), convolution_matrix(
            pixels, KERNELS["blur"], normalise_kernel=True, border="crop", filter_alpha=True, alpha_weighting=True))


@pytest.mark.parametrize("args, message", [
    (["missing.png", "--kernel", "blur"], "no such file: missing.png"),
    (["notimage.png", "--kernel", "blur"], "notimage.png is not an image Pillow can read"),
    (["in.png", "--kernel", "1,2;3,x"], "kernel: 'x' is not a number"),
    (["in.png", "--kernel", "1,2;3"], "kernel: rows have different lengths"),
    (["in.png", "--kernel", "1,0;0,0"], "odd numbers of rows and columns"),
    (["in.png", "--kernel", "@nokernel.txt"], "no such kernel file: nokernel.txt"),
    (["in.png", "--kernel", "sharpn"], "no kernel named 'sharpn'; the names are edge_enhance, edge_detect, blur, sharpen"),
    (["in.png", "--kernel", "blur", "--divisor", "0"], "--divisor must not be 0"),
    (["in.png", "--kernel", "blur", "--normalise", "--divisor", "3"], "--normalise sets the divisor"),
    (["in.png", "--kernel", "blur", "--border", "mirror"], "invalid choice: 'mirror'"),
    (["in.png", "--kernel", "blur", "--divisor", "nan"], "must be a finite number"),
])
def test_filter_errors_one_line_exit_2(png, tmp_path, args, message):
    (tmp_path / "notimage.png").write_text("not a PNG", encoding="utf-8")
    r = dlia("filter", *args, "-o", "out.png", cwd=tmp_path)
    assert r.returncode == 2, r.stdout
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("dlia filter: error:")
    assert not (tmp_path / "out.png").exists()


def test_filter_bad_output_extension(png, tmp_path):
    path, _ = png
    r = dlia("filter", str(path), "--kernel", "blur", "-o", str(tmp_path / "out.xyz"))
    assert r.returncode == 2 and "cannot tell the image format" in r.stderr


def test_filter_converts_palette_images(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (9, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    r = dlia("filter", "p.png", "--kernel", "edge_enhance", "-o", "out.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "converted P → RGB" in r.stdout
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "RGB" and im.size == (10, 9)


def test_conv2_prints_huge_integers_and_zeros_as_octave_does():  # issue #10 B8: 1e20 was a 21-digit integer
    from dlia.cli.conv2 import format_octave

    assert format_octave("A", np.array([[1e20, 0.0], [0.0, 2.0]])).splitlines()[2:4] == [
        "   1.0000e+20            0", "            0   2.0000e+00"]
    assert format_octave("A", np.array([[123456789.0, 1.0]])).splitlines()[2] == "   123456789           1"
    assert format_octave("A", np.array([[0.5, 0.0]])).splitlines()[2] == "   0.5000        0"


def test_filter_write_error_names_the_file_once(tmp_path, monkeypatch, capsys):  # issue #10 B8: "cannot write X: cannot write X"
    from dlia.cli import filter as filter_cli
    from dlia.cli.main import main

    Image.new("L", (5, 5), 128).save(tmp_path / "in.png")
    (tmp_path / "f").write_text("x")
    monkeypatch.setattr(filter_cli, "check_output", lambda *a, **k: None)  # as if the path broke during the work
    assert main(["filter", str(tmp_path / "in.png"), "--kernel", "blur", "-o", str(tmp_path / "f" / "out.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("cannot write") == 1 and err.count("\n") == 1, err
