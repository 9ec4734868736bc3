"""``dlia nnlm``: train → eval → sample on a small corpus, the printed perplexity equal to the
library's, and a run stopped by --max-time that resumes to the weights of an uninterrupted one."""

from __future__ import annotations

import re
from pathlib import Path

import numpy
import pytest

from dlia.cli.main import main
from dlia.io import load_checkpoint
from dlia.models.ngram import encode_sentences
from dlia.models.nnlm import load_model, perplexity

LINES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog met", "the cat saw the dog"]
TEXT = "\n".join(LINES[i % 4] for i in range(40)) + "\n"
SMALL = ["--order", "3", "--embedding-dim", "5", "--hidden", "6", "--batch-size", "16", "--lr", "0.01"]


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "c.txt"
    p.write_text(TEXT)
    return p


def test_train_eval_sample(corpus: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["nnlm", "train", str(corpus), *SMALL, "--epochs", "3", "--patience", "0"]) == 0
    out = capsys.readouterr().out
    assert "36 training lines" in out and "4 validation lines" in out
    assert out.count("validation perplexity") == 4  # three epochs and the summary
    best = Path(re.search(r"at epoch \d+: (\S+)", out).group(1))
    assert best.parent == Path("runs/nnlm") and best.is_file()
    assert sorted(p.name[:14] for p in best.parent.iterdir()) == ["nnlm_epoch001_", "nnlm_epoch002_", "nnlm_epoch003_"]

    (corpus.parent / "t.txt").write_text("the cat sat on the log\nthe zebra sat\n")
    assert main(["nnlm", "eval", str(best), "t.txt"]) == 0
    line = capsys.readouterr().out
    model, vocab, _ = load_model(best)
    expected = perplexity(model, encode_sentences([s.split() for s in ("the cat sat on the log", "the zebra sat")], vocab))
    assert f"perplexity {expected:.2f} over 11 predicted tokens" in line and "1 unknown words" in line

    assert main(["nnlm", "sample", str(best), "--n", "3", "--seed", "4", "--max-len", "8"]) == 0
    first = capsys.readouterr().out
    assert main(["nnlm", "sample", str(best), "--n", "3", "--seed", "4", "--max-len", "8"]) == 0
    assert capsys.readouterr().out == first
    sentences = first.splitlines()
    assert len(sentences) == 3 and all(len(s.split()) <= 8 and "<s>" not in s for s in sentences)


def test_max_time_stops_with_a_checkpoint_and_resume_finishes_identically(corpus: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["nnlm", "train", str(corpus), *SMALL, "--epochs", "2", "--patience", "0", "--batch-size", "8"]
    assert main([*args, "--checkpoint-dir", "whole"]) == 0
    capsys.readouterr()
    assert main([*args, "--checkpoint-dir", "part", "--max-time", "1e-12"]) == 0  # stops after the first batch
    out = capsys.readouterr().out
    assert "stopped by --max-time in epoch 1 of 2; continue with --resume part" in out
    saved = [p.name for p in Path("part").iterdir()]
    assert len(saved) == 1 and re.fullmatch(r"nnlm_epoch000\.0\d\.npz", saved[0])  # 1 of ~32 batches: epoch 0.03
    assert main(["nnlm", "train", str(corpus), "--resume", "part", "--hidden", "9"]) == 0
    out = capsys.readouterr().out
    assert "ignoring --hidden 9" in out and f"resuming from part/{saved[0]} (epoch 0, batch 1)" in out
    last = lambda d: sorted(Path(d).glob("nnlm_epoch002_*.npz"))[0]  # noqa: E731
    a, b = load_checkpoint(last("whole")).model_state, load_checkpoint(last("part")).model_state
    for k in a:
        numpy.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert main(["nnlm", "train", str(corpus), "--resume", "part"]) == 0
    assert "nothing to do" in capsys.readouterr().out
