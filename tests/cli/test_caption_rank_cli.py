"""``dlia caption align`` and ``rank``: a run end to end, ranking an image's sentences and drawing the
alignment, the same seed giving the same run, and a run killed with SIGKILL and resumed ending with
the weights of an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest
from killrun import assert_same_checkpoint, kill_and_resume
from PIL import Image

from dlia.cli.main import main
from dlia.data import scenes_dataset

TINY = ["--image-size", "24", "--channels", "4", "--embedding-size", "6", "--hidden-size", "8", "--train-size", "60",
        "--test-size", "20", "--batch-size", "10"]


def _arrays(path: Path) -> dict[str, numpy.ndarray]:
    with numpy.load(path) as z:
        return {k: z[k] for k in z.files if k != "__meta__"}


def test_align_then_rank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["caption", "align", *TINY, "--max-epochs", "2", "--eval-every", "4", "--checkpoint-dir", "run"]) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in Path("run").iterdir())
    # 6 batches per epoch, 12 iterations: evaluations at 4, 8, 12
    assert [n[:17] for n in names] == ["align_epoch000.7_", "align_epoch001.3_", "align_epoch002.0_"]
    assert "60 training and 20 held-out scenes of 24×24" in out
    assert out.count("held-out (20 pairs): image→sentence R@1") == 3
    best = max(names, key=lambda n: float(n[17:-4]))
    assert f"best mean R@1 {100 * float(best[17:-4]):.1f}%: {Path('run') / best}" in out

    scene = scenes_dataset(1, seed=4, size=48)[0]
    Image.fromarray(scene.image).save("s.png")  # another size: resized to the model's 24×24
    Path("cands.txt").write_text(f"{scene.sentence}\n\na small red circle at the top\n", encoding="utf-8")
    assert main(["caption", "rank", "run", "s.png", "--sentences", "cands.txt", "--show-alignment", "a.png"]) == 0
    out = capsys.readouterr().out
    assert "s.png is 48×48; the model reads 24×24 scenes, so it is resized" in out
    assert "the best of 2 sentences (cands.txt) for s.png, by score S:" in out
    assert out.count("  1. ") == 1 and out.count("  2. ") == 1 and "  3. " not in out
    assert "alignment of the best sentence → a.png" in out
    assert Path("a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert main(["caption", "rank", str(Path("run") / names[0]), "s.png", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "(the distinct sentences of the run's 20 held-out scenes)" in out and "  3. " in out and "  4. " not in out


def test_the_same_seed_gives_the_same_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    for folder, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert main(["caption", "align", *TINY, "--max-steps", "3", "--seed", seed, "--checkpoint-dir", folder]) == 0
    assert "stopped by --max-steps at iteration 3; continue with --resume c" in capsys.readouterr().out
    (a,), (b,), (c,) = (list(Path(f).iterdir()) for f in "abc")
    assert a.name == b.name
    wa, wb, wc = _arrays(a), _arrays(b), _arrays(c)
    assert all(numpy.array_equal(wa[k], wb[k]) for k in wa)
    assert not all(numpy.array_equal(wa[k], wc[k]) for k in wa)


def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(tmp_path: Path) -> None:
    args = ["caption", "align", *TINY, "--max-epochs", "8", "--eval-every", "5", "--seed", "2"]
    out = kill_and_resume(tmp_path, args, "align", timeout=120, wait=60).stdout
    assert "resuming from killed/align_epoch" in out
    final = sorted((tmp_path / "whole").glob("align_epoch008.0_*.npz"))
    assert len(final) == 1
    assert_same_checkpoint(final[0], tmp_path / "killed")
