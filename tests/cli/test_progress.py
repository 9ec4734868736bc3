"""cli.progress.EvaluationBars: the bars of the training commands that evaluate every N iterations."""

from __future__ import annotations

import pytest

from dlia.cli.errors import UserError
from dlia.cli.progress import EvaluationBars


class Trainer:
    def __init__(self, iteration=0, per_epoch=4):
        self.iteration, self.per_epoch = iteration, per_epoch

    @property
    def epoch(self):
        return self.iteration / self.per_epoch


def run(capsys, start, total, eval_every):
    """Step a fake trainer from ``start`` to ``total``, evaluating every ``eval_every`` iterations."""
    trainer = Trainer(start)
    bars = EvaluationBars(trainer, total, eval_every, 3, "things/s")
    with bars.running("lower it"):
        while trainer.iteration < total:
            trainer.iteration += 1
            bars.step(0.5, 10)
            if trainer.iteration % eval_every == 0 or trainer.iteration == total:
                bars.evaluated(f"  evaluated at {trainer.iteration}")
    return capsys.readouterr()


def test_one_bar_per_stretch_between_evaluations(capsys):
    out = run(capsys, 0, 10, 4)
    assert out.out.splitlines() == ["  evaluated at 4", "  evaluated at 8", "  evaluated at 10"]
    bars = out.err.splitlines()  # not a terminal: each bar's final line, once
    assert [b.split()[0:2] + [b.split()[3]] for b in bars] == [["epoch", "0.00/3", "4/4"], ["epoch", "1.00/3", "4/4"],
                                                                  ["epoch", "2.00/3", "2/2"]]
    assert all("loss=0.5" in b and "things/s=" in b and "ETA=" in b for b in bars)


def test_a_resumed_run_starts_with_the_rest_of_its_stretch(capsys):
    out = run(capsys, 5, 10, 4)
    assert out.out.splitlines() == ["  evaluated at 8", "  evaluated at 10"]
    assert [b.split()[3] for b in out.err.splitlines()] == ["3/3", "2/2"]


def test_divergence_becomes_one_line_with_the_remedy():
    bars = EvaluationBars(Trainer(), 10, 4, 3, "things/s")
    with pytest.raises(UserError, match=r"^loss is nan at iteration 3; lower --learning-rate$"):
        with bars.running("lower --learning-rate"):
            raise FloatingPointError("loss is nan at iteration 3")
    with pytest.raises(KeyboardInterrupt):
        with bars.running("lower --learning-rate"):
            raise KeyboardInterrupt
