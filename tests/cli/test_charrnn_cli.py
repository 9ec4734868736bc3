"""``dlia char-rnn train`` and ``sample``: a run end to end, --max-time, and a run killed with SIGKILL
and resumed ending with the weights of an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest
from killrun import assert_same_checkpoint, kill_and_resume

from dlia.cli.main import main

TEXT = "the cat sat on the mat; the dog ate the hat. café 🙂\n" * 12
TINY = ["--rnn-size", "16", "--batch-size", "4", "--seq-length", "8"]


def _arrays(path: Path) -> dict[str, numpy.ndarray]:
    with numpy.load(path) as z:
        return {k: z[k] for k in z.files if k != "__meta__"}


def test_train_then_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    Path("t.txt").write_text(TEXT, encoding="utf-8")
    assert main(["char-rnn", "train", "t.txt", *TINY, "--max-epochs", "2", "--eval-every", "10",
                 "--learning-rate", "1e-2", "--checkpoint-dir", "run"]) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in Path("run").iterdir())
    # 18 training batches per epoch, 36 iterations: evaluations at 10, 20, 30 and the end
    assert [n[:19] for n in names] == ["charrnn_epoch000.56", "charrnn_epoch001.11", "charrnn_epoch001.67",
                                       "charrnn_epoch002.00"]
    assert "t.txt: 624 characters, 18 distinct; 18 training and 1 validation batches of 4×8" in out
    best = min(names, key=lambda n: float(n[20:-4]))
    assert f"best validation loss {float(best[20:-4]):.4f} nats/char: {Path('run') / best}" in out

    assert main(["char-rnn", "sample", "run", "--prime", "the ", "--length", "50", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("the ") and len(text) == 4 + 50 + (text[-2] != "\n")
    assert main(["char-rnn", "sample", str(Path("run") / best), "--prime", "the ", "--length", "50", "--seed", "3"]) == 0
    assert capsys.readouterr().out == text  # the folder means its best checkpoint; the same seed, the same text
    assert main(["char-rnn", "sample", "run", "--prime", "the ", "--length", "50", "--seed", "4"]) == 0
    assert capsys.readouterr().out != text


def test_plot_draws_the_loss_curve_of_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    Path("t.txt").write_text(TEXT, encoding="utf-8")
    assert main(["char-rnn", "train", "t.txt", *TINY, "--max-epochs", "1", "--eval-every", "6",
                 "--checkpoint-dir", "run"]) == 0
    capsys.readouterr()
    assert main(["char-rnn", "plot", "run", "-o", "loss.png"]) == 0
    assert "loss curve of 18 iterations → loss.png" in capsys.readouterr().out
    assert Path("loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_max_time_stops_with_a_checkpoint_and_resume_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    Path("t.txt").write_text(TEXT, encoding="utf-8")
    assert main(["char-rnn", "train", "t.txt", *TINY, "--max-epochs", "1", "--max-time", "1e-9",
                 "--checkpoint-dir", "run"]) == 0
    out = capsys.readouterr().out
    assert "stopped by --max-time at epoch 0.06 of 1; continue with --resume run" in out
    assert [p.name[:19] for p in Path("run").iterdir()] == ["charrnn_epoch000.06"]
    assert main(["char-rnn", "train", "t.txt", "--resume", "run", "--rnn-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "ignoring --rnn-size 32" in out and "resuming from run/charrnn_epoch000.06" in out
    assert sorted(p.name[:19] for p in Path("run").iterdir())[-1] == "charrnn_epoch001.00"
    assert main(["char-rnn", "train", "t.txt", "--resume", "run"]) == 0
    assert "already trained for 1 epochs" in capsys.readouterr().out


def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    args = ["char-rnn", "train", "t.txt", *TINY, "--max-epochs", "25", "--eval-every", "9", "--dropout", "0.2",
            "--seed", "7"]
    kill_and_resume(tmp_path, args, "charrnn", timeout=120, wait=60)
    final = sorted((tmp_path / "whole").glob("charrnn_epoch025.00_*.npz"))
    assert len(final) == 1
    assert_same_checkpoint(final[0], tmp_path / "killed")
