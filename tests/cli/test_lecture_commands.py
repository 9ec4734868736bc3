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


# -- review of 2026-11-26: a new user's mistakes --------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["demo", "--seed", "-1"], "--seed: must be a non-negative integer, got -1"),
    (["cnn", "train", "--seed", "-3"], "--seed: must be a non-negative integer"),
    (["perceptron", "--lr", "inf"], "--lr: must be a finite number"),
    (["xor", "--plot", "x.foo"], "cannot write a .foo picture"),
    (["xor", "--curves", "c.png"], "--curves belongs to --compare"),
    (["xor", "--seeds", "5"], "--seeds belongs to --compare"),
    (["lstsq", "--rows", "5", "--data", "a.csv"], "--rows and --cols size a random problem"),
])
def test_argument_mistakes_are_one_line(tmp_path, args, message):
    (tmp_path / "a.csv").write_text("1,2,3\n4,5,6\n7,8,10\n", encoding="utf-8")
    r = dlia(*args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    ["perceptron", "--plot", "{file}/x.png"],
    ["perceptron", "--plot", "."],
    ["lstsq", "--plot", "{file}/x.png"],
])
def test_outputs_that_cannot_be_written_are_one_line(tmp_path, args):
    (tmp_path / "afile").write_text("x")
    args = [a.format(file="afile") for a in args]
    r = dlia(*args, cwd=tmp_path)
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("name, magic", [("p.svg", b"<?xml"), ("p.pdf", b"%PDF"), ("p.png", b"\x89PNG")])
def test_plots_are_written_in_the_format_their_name_asks_for(tmp_path, name, magic):
    r = dlia("perceptron", "--plot", name, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / name).read_bytes().startswith(magic)
    assert (tmp_path / name).stat().st_mode & 0o044  # readable by others (umask permitting), not mkstemp's 0600


def test_lstsq_csv_messages_name_the_line(tmp_path):
    for text, message in [("a,b,c\n1,2,3\n", "line 1: 'a,b,c' is not comma-separated numbers"),
                          ("\ufeff1,2,3\n4,5,7\n5,7,1\n", None),
                          ("1,2,nan\n3,4,5\n", "holds NaN or infinite values")]:
        (tmp_path / "d.csv").write_text(text, encoding="utf-8")
        r = dlia("lstsq", "--data", "d.csv", cwd=tmp_path)
        if message is None:
            assert r.returncode == 0, r.stderr  # a byte-order mark is no problem
        else:
            assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_xor_compare_seeds_start_at_seed(tmp_path):
    a = dlia("xor", "--compare", "--seeds", "3", "--steps", "50", cwd=tmp_path)
    b = dlia("xor", "--compare", "--seeds", "3", "--steps", "50", "--seed", "0", cwd=tmp_path)
    c = dlia("xor", "--compare", "--seeds", "3", "--steps", "50", "--seed", "11", cwd=tmp_path)
    assert a.returncode == b.returncode == c.returncode == 0
    table = [line for line in a.stdout.splitlines() if "%" in line]
    assert table == [line for line in b.stdout.splitlines() if "%" in line]
    assert "success rate over 3 seeds (0..2;" in a.stdout and "success rate over 3 seeds (11..13;" in c.stdout
