"""``dlia seq2seq train``, ``translate`` and ``eval``: runs end to end on the dates task and on TSV
files, the same seed giving the same run, and a run killed with SIGKILL and resumed ending with the
weights of an uninterrupted one."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy
import pytest
from killrun import assert_same_checkpoint, kill_and_resume

from dlia.cli.main import main

TINY = ["--embedding-size", "8", "--hidden-size", "12"]
#: a TSV task: numbers written out → digits, at the character level
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TSV = "".join(f"{WORDS[i // 10]} {WORDS[i % 10]}\t{i // 10}{i % 10}\n" for i in range(100))


def _arrays(path: Path) -> dict[str, numpy.ndarray]:
    with numpy.load(path) as z:
        return {k: z[k] for k in z.files if k != "__meta__"}


def test_train_dates_then_translate_and_eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["seq2seq", "train", *TINY, "--train-size", "200", "--max-steps", "6", "--eval-every", "3",
                 "--batch-size", "32", "--checkpoint-dir", "run"]) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in Path("run").iterdir())
    assert [n[:19] for n in names] == ["seq2seq_epoch000.30", "seq2seq_epoch000.60"]  # 10 batches per epoch
    assert "dates: 200 training, 1,000 validation pairs" in out and out.count("validation: loss") == 2
    for name in ("seen styles", "held-out styles", "all  "):
        assert f"  {name}" in out
    assert "exact match" in out and "BLEU" in out
    capsys.readouterr()
    assert main(["seq2seq", "translate", "run", "25th of November 2026", "25-Nov-2026", "--show-attention", "a.png"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2 and all(set(line) <= set("0123456789-") for line in lines)
    assert Path("a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "attention of 2 translations" in captured.err
    monkeypatch.setattr(sys, "stdin", io.StringIO("25th of November 2026\n\n25-Nov-2026\n"))
    assert main(["seq2seq", "translate", "run", "--beam", "3"]) == 0
    streamed = capsys.readouterr().out.splitlines()
    assert len(streamed) == 3 and streamed[1] == ""  # a blank line gives a blank line
    assert main(["seq2seq", "eval", f"run/{names[-1]}", "--task", "dates"]) == 0
    assert "held-out styles" in capsys.readouterr().out


def test_a_tsv_task_with_words_reports_bleu_and_the_same_seed_gives_the_same_run(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                                 capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    Path("n.tsv").write_text(TSV.replace("\t", "\tsays ").replace("says 0", "says zero "), encoding="utf-8")
    args = ["seq2seq", "train", "--task", "n.tsv", *TINY, "--max-steps", "4", "--batch-size", "16", "--seed", "3",
            "--dropout", "0.1", "--sampling", "0.5"]
    assert main([*args, "--checkpoint-dir", "a"]) == 0
    out = capsys.readouterr().out
    assert "n.tsv: 80 training, 10 validation pairs, 10 test (test); word tokens" in out
    assert "BLEU" in out and "  test " in out
    assert main([*args, "--checkpoint-dir", "b"]) == 0
    (a,), (b,) = Path("a").iterdir(), Path("b").iterdir()
    assert a.name == b.name
    x, y = _arrays(a), _arrays(b)
    assert all(numpy.array_equal(x[k], y[k]) for k in x)
    capsys.readouterr()
    assert main(["seq2seq", "eval", "a"]) == 0
    assert "on the run's test sets" in capsys.readouterr().out


def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(tmp_path: Path) -> None:
    (tmp_path / "n.tsv").write_text(TSV, encoding="utf-8")
    args = ["seq2seq", "train", "--task", "n.tsv", "--tokens", "char", *TINY, "--batch-size", "8", "--max-steps", "60",
            "--eval-every", "4", "--dropout", "0.2", "--sampling", "0.3", "--seed", "7", "--cell", "lstm"]
    result = kill_and_resume(tmp_path, args, "seq2seq", timeout=300, wait=120)
    assert "resuming from killed/seq2seq_epoch" in result.stdout
    final = sorted((tmp_path / "whole").glob("seq2seq_epoch005.45_*.npz"))  # 11 batches per epoch, 60 steps
    assert len(final) == 1
    assert sorted(p.name for p in (tmp_path / "killed").iterdir())[-1] == final[0].name
    assert_same_checkpoint(final[0], tmp_path / "killed")


def test_unk_words_in_a_corpus_stdin_that_is_not_utf8_and_a_run_scored_from_another_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    # a corpus that marks rare words with <unk> (Penn Treebank style) trains: <unk> is the unknown id
    (tmp_path / "in").mkdir()
    monkeypatch.chdir(tmp_path)
    rows = [f"{WORDS[i % 10]} <unk>\t{i % 10} <unk>" for i in range(30)]
    Path("in/u.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["seq2seq", "train", "--task", "in/u.tsv", *TINY, "--max-steps", "2", "--batch-size", "8",
                 "--checkpoint-dir", "run"]) == 0
    (ckpt,) = Path("run").iterdir()
    capsys.readouterr()
    assert main(["seq2seq", "translate", str(ckpt), "three <unk>"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    # stdin is decoded line by line: a line that is not UTF-8 is one error naming it
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"one <unk>\n\xff\xfe\n")))
    assert main(["seq2seq", "translate", str(ckpt)]) == 2
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and err.strip() == "dlia seq2seq: error: line 2 of stdin is not UTF-8 text"
    # the TSV's path is kept absolute, so the run's own test split is found from another folder
    monkeypatch.chdir(tmp_path / "in")
    assert main(["seq2seq", "eval", "../run"]) == 0
    assert "on the run's test sets" in capsys.readouterr().out
