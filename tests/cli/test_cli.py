"""The ``dlia`` command: version, help, the demo, and one-line errors with exit status 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import dlia
from dlia.cli.main import main

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dlia.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    from dlia.backend import blas, native, rnn, w2v

    conv = "compiled conv kernels" if native.available else f"conv on NumPy: {native.reason()}"
    cells = "compiled LSTM/GRU kernels" if rnn.available else f"LSTM/GRU on NumPy: {rnn.reason()}"
    words = "compiled word2vec kernels" if w2v.available else f"word2vec on NumPy: {w2v.reason()}"
    products = "compiled matmul kernels" if blas.available else f"matmul on NumPy: {blas.reason()}"
    assert capsys.readouterr().out.strip() == f"dlia {dlia.__version__} ({conv}; {cells}; {words}; {products})"


def test_version_says_which_kernels_are_missing_and_why(capsys, monkeypatch):
    from dlia.backend import loader, rnn

    monkeypatch.setattr(rnn, "_KERNELS", loader.KernelLibrary("dlia.backend._no_such_rnn", "dlia_rnn", 1, {}, {}))
    with pytest.raises(SystemExit):
        main(["--version"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the line at the terminal's width
    assert "LSTM/GRU on NumPy: dlia.backend._no_such_rnn was not built" in out and "conv" in out


def test_help_lists_demo(capsys):
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out


@pytest.mark.skipif(not (DATA / "digits.npz").is_file(), reason="shared digits data not present")
def test_demo_runs_end_to_end(tmp_path):
    r = run_cli("demo", "--epochs", "15", "--data", str(DATA), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "∂E/∂w" in r.stdout
    assert "output [0.0, 1.0, 1.0, 0.0]" in r.stdout
    acc = float(r.stdout.split("test accuracy on 359 held-out digits: ")[1].split("%")[0])
    assert acc >= 96.0
    assert "predictions identical = True" in r.stdout
    assert (tmp_path / "digits_mlp.npz").is_file()
    assert "conv2(A, B, 'same') = [[5, 6, 0], [8, 9, 0], [0, 0, 0]]" in r.stdout
    cnn = float(r.stdout.split("test accuracy after 6 epochs: ")[1].split("%")[0])
    assert cnn >= 95.0
    assert "W = 3.000, b = 0.500" in r.stdout
    compiled, eager = r.stdout.split("compiled ")[1].split(" = eager ")
    assert compiled == eager.split()[0]
    before, after = r.stdout.split("characters: validation loss ")[1].split(" nats/char")[0].split(" → ")
    assert float(after) < float(before) - 1.5  # char-rnn: from uniform guessing (4.06) to ~2.1 in 120 steps
    assert "  | ROMEO:" in r.stdout
    assert "over 188,963 words (3,322 distinct)" in r.stdout  # word2vec on Shakespeare's words
    from dlia.backend import w2v

    if w2v.available:  # skip-gram, one thread, seed 1: the analogy the section shows
        assert "his − he + she = her" in r.stdout and "nearest to father:" in r.stdout
    # n-grams: the lecture's bigram formula on the toy corpus, by hand and by the library
    assert "P(am | I) = count(I am) / count(I) = 2 / 3 = 0.667   (dlia.models.ngram: 0.667)" in r.stdout
    assert "P(Sam | am) = count(am Sam) / count(am) = 1 / 2 = 0.500   (dlia.models.ngram: 0.500)" in r.stdout
    assert "MLE bigrams: perplexity inf — " in r.stdout  # an unseen held-out bigram
    kn = [float(r.stdout.split(f"Kneser-Ney {n}-grams: perplexity ")[1].split()[0]) for n in (2, 3)]
    assert all(100 < p < 200 for p in kn), kn  # 144.4 and 144.8 on tiny-shakespeare's last 10 % of lines
    assert r.stdout.split("sampled from the Kneser-Ney 3-gram model:\n")[1].count("  | ") >= 3
    # seq2seq: a few seconds of dates training, translations of held-out styles, an attention picture
    assert "on styles never seen in training" in r.stdout and r.stdout.count("(a held-out style)") == 2
    assert (tmp_path / "seq2seq_attention.png").is_file()


def test_demo_is_reproducible(tmp_path):
    a = run_cli("demo", "--epochs", "2", "--seed", "3", "--data", str(DATA), "--out", str(tmp_path / "a"))
    b = run_cli("demo", "--epochs", "2", "--seed", "3", "--data", str(DATA), "--out", str(tmp_path / "b"))
    strip = [line for line in a.stdout.splitlines() if "checkpoint written" not in line]
    assert strip == [line for line in b.stdout.splitlines() if "checkpoint written" not in line]


def test_demo_and_cnn_use_the_shipped_digits_from_an_empty_folder(tmp_path):
    """No ./data, no ../shared/data, no cache, no network: the digits shipped inside the package."""
    r = run_cli("demo", "--epochs", "1", cwd=tmp_path)  # the suite runs with DLIA_OFFLINE=1 and an empty cache
    assert r.returncode == 0, r.stderr
    assert "skipped" not in r.stdout and "downloading" not in r.stdout
    assert "test accuracy on 359 held-out digits" in r.stdout and "CNN (conv16" in r.stdout
    r = run_cli("cnn", "train", "--epochs", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "test accuracy: " in r.stdout and "on 359 held-out digits" in r.stdout


def test_char_rnn_trains_on_the_shipped_text_from_an_empty_folder(tmp_path):
    r = run_cli("char-rnn", "train", "--rnn-size", "8", "--num-layers", "1", "--batch-size", "10", "--seq-length", "10",
                "--train-frac", "0.001", "--val-frac", "0.001", "--max-epochs", "1", "--checkpoint-dir", "ck", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("tiny-shakespeare: 1,115,394 characters, 65 distinct;"), r.stdout
    assert len(list((tmp_path / "ck").glob("charrnn_*.npz"))) == 1


def test_demo_skips_digits_when_absent(tmp_path, monkeypatch, capsys, no_shipped_data):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--epochs", "1", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "skipped: digits.npz not found" in out
    assert "CNN skipped: digits.npz not found" in out


def test_demo_checks_its_data_before_the_first_section(tmp_path, capsys, monkeypatch):
    """A missing or unusable --data file is refused before the autodiff and XOR sections print anything."""
    import numpy as np

    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "d79.npz", images=np.zeros((30, 7, 9), np.uint8), target=np.arange(30) % 10)
    for data, words in (("no.npz", "no.npz"), ("d79.npz", "7×9")):
        assert main(["demo", "--data", data]) == 2
        out, err = capsys.readouterr()
        assert out == "", out
        assert err.startswith("dlia demo: error: ") and words in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    "args, message",
    [
        (["demo", "--epochs", "0"], "--epochs must be at least 1"),
        (["demo", "--data", "/no/such/digits.npz"], "data file not found"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, message):
    r = run_cli(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_corrupt_digits_file_is_a_user_error(tmp_path):
    bad = tmp_path / "digits.npz"
    bad.write_bytes(b"\x00\xffgarbage")
    r = run_cli("demo", "--epochs", "1", "--data", str(bad))
    assert r.returncode == 2
    assert "not a valid digits archive" in r.stderr and "Traceback" not in r.stderr


def test_every_command_takes_a_seed():
    import argparse

    from dlia.cli.main import build_parser

    def leaves(parser, path):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path, parser
        for action in subs:
            for name, child in action.choices.items():
                yield from leaves(child, path + [name])

    found = list(leaves(build_parser(), []))
    assert len(found) >= 10
    for path, parser in found:
        assert "--seed" in parser._option_string_actions, " ".join(path)


@pytest.mark.skipif(not (DATA / "digits.npz").is_file(), reason="shared digits data not present")
def test_demo_without_out_leaves_no_folder_behind(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "dlia.cli.main", "demo", "--epochs", "1", "--data", str(DATA)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "a temporary folder, removed now" in r.stdout
    assert not list(tmp_path.iterdir())


def test_a_warning_is_one_line_named_by_the_command(monkeypatch, capsys):  # issue #10 B8
    import warnings

    from dlia.cli import neuron

    def warn_then_answer(gate):
        warnings.warn("DecompressionBombWarning: Image size exceeds limit\n  second line", UserWarning, stacklevel=1)
        return real(gate)

    real, before = neuron.truth_table, warnings.showwarning
    monkeypatch.setattr(neuron, "truth_table", warn_then_answer)
    assert main(["neuron", "--gate", "and"]) == 0
    assert capsys.readouterr().err == "dlia neuron: warning: DecompressionBombWarning: Image size exceeds limit\n"
    assert warnings.showwarning is before  # restored: only the command's own run is affected


def test_unknown_arguments_are_reported_by_the_subcommand(capsys):  # issue #10 B8: was "dlia: error:"
    for argv, prog in ((["conv2", "--bogus"], "dlia conv2"), (["cnn", "fcn", "--sizes", "8", "x"], "dlia cnn fcn")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(f"{prog}: error: unrecognized arguments: ") and err.count("\n") == 1, err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("args", [["neuron", "--gate", "and"], ["graph", "show", "xor"]])
def test_a_full_standard_output_is_one_line(args):  # `dlia ... > file` on a full disk gave a traceback
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "dlia.cli.main", *args], stdout=full, stderr=subprocess.PIPE, text=True,
                           timeout=300)
    assert r.returncode == 2
    assert r.stderr == f"dlia {args[0]}: error: cannot write the output: No space left on device\n"


def _tiny_digits(path):
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(path, images=rng.integers(0, 17, (20, 8, 8)).astype(np.uint8), target=np.arange(20) % 10)
    return str(path)


def test_cnn_resume_removes_temp_files_a_killed_save_left(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = _tiny_digits(tmp_path / "tiny.npz")
    assert main(["cnn", "train", "--epochs", "1", "--batch-size", "10", "--data", data, "--out", "run"]) == 0
    (saved,) = (tmp_path / "run").iterdir()
    stale = tmp_path / "run" / ".cnn_epoch002_2.3026.npz.99999999.k1ll3d_x.tmp"  # SIGKILLed while saving epoch 2
    other = tmp_path / "run" / "notes.txt"
    stale.write_bytes(b"half")
    other.write_bytes(b"mine")
    assert main(["cnn", "train", "--resume", "--epochs", "1", "--data", data, "--out", "run"]) == 0
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted([saved.name, "notes.txt"])


def test_cnn_refuses_checkpoints_of_other_models(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from dlia import nn
    from dlia.io import save_checkpoint

    monkeypatch.chdir(tmp_path)
    mlp = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    save_checkpoint(tmp_path / "run" / "cnn_epoch001_0.5000.npz", mlp, config={"layers": [64, 128, 10]})
    Image.new("L", (8, 8), 255).save(tmp_path / "digit.png")
    Image.new("L", (2, 6), 0).save(tmp_path / "ink.png")
    with Image.open(tmp_path / "digit.png") as im:
        im.paste(Image.open(tmp_path / "ink.png"), (3, 1))
        im.save(tmp_path / "digit.png")
    assert main(["cnn", "predict", "digit.png", "--out", "run"]) == 2
    assert "cnn_epoch001_0.5000.npz is not a CNN checkpoint (it holds a Sequential model" in capsys.readouterr().err
    assert main(["cnn", "train", "--resume", "--data", _tiny_digits(tmp_path / "tiny.npz"), "--out", "run"]) == 2
    assert "is not a CNN checkpoint" in capsys.readouterr().err
