"""The first-wave commands: neuron, perceptron, lstsq, xor — output, plots, and one-line errors."""

import subprocess
import sys

import pytest
from PIL import Image


def dlia(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dlia.cli.main", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def assert_png(path):
    assert path.is_file()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


def test_neuron_and_table():
    r = dlia("neuron", "--gate", "and")
    assert r.returncode == 0
    assert r.stdout.splitlines()[-4:] == [" 0  0 | 0", " 0  1 | 0", " 1  0 | 0", " 1  1 | 1"]


def test_perceptron_xor_fails_and_plots(tmp_path):
    r = dlia("perceptron", "--data", "xor", "--max-epochs", "50", "--plot", str(tmp_path / "p.png"))
    assert r.returncode == 0
    assert "did not converge in 50 epochs" in r.stdout and "not linearly separable" in r.stdout
    assert_png(tmp_path / "p.png")


def test_perceptron_blobs_converges():
    r = dlia("perceptron", "--data", "blobs")
    assert r.returncode == 0 and r.stdout.startswith("converged after")


def test_lstsq_plot_and_agreement(tmp_path):
    r = dlia("lstsq", "--plot", str(tmp_path / "l.png"))
    assert r.returncode == 0, r.stderr
    assert "converged in" in r.stdout
    assert_png(tmp_path / "l.png")


def test_lstsq_reads_csv(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("# x1,x2,y\n1,0,1\n0,1,2\n1,1,3.1\n2,1,4\n", encoding="utf-8")
    r = dlia("lstsq", "--data", str(f))
    assert r.returncode == 0, r.stderr
    assert "A is 4×2" in r.stdout


def test_xor_everything(tmp_path):
    r = dlia("xor", "--hidden", "4", "--plot", str(tmp_path / "x.png"), "--explain", "--compare", "--seeds", "5",
             "--steps", "300", "--curves", str(tmp_path / "c.png"))
    assert r.returncode == 0, r.stderr
    assert "w = [0 0], b = 0.5" in r.stdout
    assert "output  = [0 1 1 0]" in r.stdout
    assert "∂E/∂z = y(1-y)·∂E/∂y" in r.stdout
    assert "success" in r.stdout
    assert_png(tmp_path / "x.png")
    assert_png(tmp_path / "c.png")


@pytest.mark.parametrize(
    "args, message",
    [
        (["neuron", "--gate", "xnor"], "invalid choice: 'xnor'"),
        (["perceptron", "--max-epochs", "-3"], "must be a positive integer, got -3"),
        (["perceptron", "--lr", "0"], "must be positive"),
        (["lstsq", "--eps", "0"], "must be positive"),
        (["lstsq", "--eps", "-1"], "must be positive"),
        (["lstsq", "--eps", "5"], "a stable step needs ε < 2/λmax"),
        (["lstsq", "--data", "/no/such.csv"], "no such file"),
        (["xor", "--hidden", "0"], "must be a positive integer"),
        (["xor", "--activation", "swish"], "invalid choice"),
    ],
)
def test_bad_arguments_one_line_exit_2(args, message):
    r = dlia(*args)
    assert r.returncode == 2, r.stdout
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_lstsq_bad_csv_files(tmp_path):
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2\n3\n", encoding="utf-8")
    for path, message in [(binary, "not UTF-8"), (empty, "is empty"), (ragged, "same number")]:
        r = dlia("lstsq", "--data", str(path))
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
