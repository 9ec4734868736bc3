"""``dlia lm compare``: the table from a corpus file, with and without the NNLM."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest

from dlia.cli.main import main


def grammar_text(lines: int = 200, seed: int = 0) -> str:
    rng = numpy.random.default_rng(seed)
    subjects, verbs, objects = ["the cat", "a dog", "the old man", "my sister"], ["sees", "likes", "eats"], \
        ["the fish", "a bone", "the red apple", "bread"]
    return "".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}\n" for _ in range(lines))


def test_compare_prints_and_writes_the_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corpus = tmp_path / "g.txt"
    corpus.write_text(grammar_text())
    assert main(["lm", "compare", "--corpus", str(corpus), "--no-nnlm", "--min-count", "1", "-o", str(tmp_path / "t.md")]) == 0
    out = capsys.readouterr().out
    assert "| Kneser-Ney 5-gram (interpolated, modified) |" in out and "NNLM" not in out.split("Bengio")[0]
    assert (tmp_path / "t.md").read_text() == out
    assert main(["lm", "compare", "--corpus", str(corpus), "--min-count", "1", "--epochs", "2", "--hidden", "8",
                 "--embedding-dim", "8", "--batch-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "| NNLM |" in out and "| NNLM + Kneser-Ney 5-gram mixture |" in out and "below Kneser-Ney 5-gram" in out


def test_compare_on_the_shipped_shakespeare_words(capsys: pytest.CaptureFixture) -> None:
    assert main(["lm", "compare", "--corpus", "shakespeare", "--no-nnlm"]) == 0
    out = capsys.readouterr().out
    assert "tiny-shakespeare's words" in out and "| Katz 3-gram |" in out
