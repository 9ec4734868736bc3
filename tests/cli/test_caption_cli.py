"""``dlia caption``: train → scenes → describe → eval end to end, --max-steps and resume, the same
seed giving the same run, and a run killed with SIGKILL resuming to the weights of an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest
from killrun import assert_same_checkpoint, kill_and_resume
from PIL import Image

from dlia.cli.main import main

TINY = ["--embedding-size", "8", "--hidden-size", "12", "--image-size", "16", "--train-size", "40", "--val-size", "8",
        "--batch-size", "8", "--test-size", "6"]


def _arrays(path: Path) -> dict[str, numpy.ndarray]:
    with numpy.load(path) as z:
        return {k: z[k] for k in z.files if k != "__meta__"}


def test_train_scenes_describe_eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["caption", "train", *TINY, "--max-epochs", "2", "--eval-every", "4", "--checkpoint-dir", "run"]) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in Path("run").iterdir())
    # 5 batches per epoch, 10 iterations: evaluations at 4, 8 and the end
    assert [n[:18] for n in names] == ["caption_epoch000.8", "caption_epoch001.6", "caption_epoch002.0"]
    assert "scenes: 40 training, 8 validation (16×16)" in out and "validation: loss" in out
    assert "test (6 held-out scenes, greedy, best checkpoint): exact match" in out

    assert main(["caption", "scenes", "pics", "-n", "3", "--seed", "5"]) == 0
    capsys.readouterr()
    pics = sorted(Path("pics").glob("*.png"))
    assert [p.name for p in pics] == ["scene_000.png", "scene_001.png", "scene_002.png"]
    lines = Path("pics/sentences.tsv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("scene_000.png\ta ")
    # RGBA, greyscale and another size are read too
    Image.open(pics[0]).convert("RGBA").save("rgba.png")
    Image.open(pics[1]).convert("L").save("grey.png")
    Image.open(pics[2]).resize((100, 80)).save("big.jpg")
    assert main(["caption", "describe", "run", *map(str, pics), "rgba.png", "grey.png", "big.jpg"]) == 0
    described = capsys.readouterr().out.splitlines()
    assert [d.split(": ")[0] for d in described] == [*map(str, pics), "rgba.png", "grey.png", "big.jpg"]
    assert described[3].split(": ")[1] == described[0].split(": ")[1]  # RGBA over black = the RGB scene
    assert main(["caption", "describe", "run", str(pics[0]), "--beam", "3", "--show", "shown.png"]) == 0
    assert Path("shown.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["caption", "describe", "run", str(pics[0]), "--show-attention", "att.png"]) == 0
    assert Path("att.png").read_bytes()[:4] == b"\x89PNG" and "att.png" in capsys.readouterr().out

    assert main(["caption", "eval", "run", "--scenes", "6", "--beam", "2", "--show", "eval.png"]) == 0
    out = capsys.readouterr().out
    assert "on 6 scenes of seed 2 (beam 2): exact match" in out and Path("eval.png").is_file()

    # a model without attention captions as well, and says it has no attention to draw
    assert main(["caption", "train", *TINY, "--attention", "none", "--max-steps", "2", "--checkpoint-dir", "plain"]) == 0
    assert main(["caption", "describe", "plain", str(pics[0])]) == 0
    capsys.readouterr()
    assert main(["caption", "describe", "plain", str(pics[0]), "--show-attention", "none.png"]) == 2
    assert "has no attention" in capsys.readouterr().err and not Path("none.png").exists()


def test_max_steps_stops_with_a_checkpoint_and_resume_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["caption", "train", *TINY, "--max-epochs", "1", "--max-steps", "2", "--checkpoint-dir", "run"]) == 0
    out = capsys.readouterr().out
    assert "stopped at epoch 0.40 of 1; continue with --resume run" in out
    assert main(["caption", "train", "--resume", "run", "--hidden-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "ignoring --hidden-size 32" in out and "resuming from run/caption_epoch000.4" in out
    assert sorted(p.name[:18] for p in Path("run").iterdir())[-1] == "caption_epoch001.0"
    assert main(["caption", "train", "--resume", "run"]) == 0
    assert "already trained for 1 epochs" in capsys.readouterr().out


def test_same_seed_same_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    for run in ("a", "b"):
        assert main(["caption", "train", *TINY, "--max-epochs", "1", "--seed", "3", "--checkpoint-dir", run]) == 0
    (a,), (b,) = Path("a").iterdir(), Path("b").iterdir()
    assert a.name == b.name
    x, y = _arrays(a), _arrays(b)
    assert all(numpy.array_equal(x[k], y[k]) for k in x)


def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(tmp_path: Path) -> None:
    args = ["caption", "train", *TINY, "--max-epochs", "12", "--eval-every", "3", "--seed", "7", "--cell", "lstm"]
    kill_and_resume(tmp_path, args, "caption", timeout=300, wait=120)
    final = sorted((tmp_path / "whole").glob("caption_epoch012.0_*.npz"))
    assert len(final) == 1
    assert_same_checkpoint(final[0], tmp_path / "killed")
