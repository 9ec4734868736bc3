"""``dlia word2vec``: train on a corpus with a planted relation, then query, evaluate and draw; the
same seed gives the same file; a run stopped (--max-time) or killed (SIGKILL) resumes bit-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

from dlia.backend import w2v
from dlia.cli.main import main
from dlia.models.word2vec import KeyedVectors

COUNTRIES = ["france", "germany", "italy", "spain", "japan", "china", "egypt", "peru"]
CAPITALS = ["paris", "berlin", "rome", "madrid", "tokyo", "beijing", "cairo", "lima"]


def planted_text(sentences: int = 3000, seed: int = 0) -> str:
    """Lines where each place k has its own topic words, and its country and capital appear among
    them next to "country" or "city" words, so capital − country is one offset for every place."""
    rng = numpy.random.default_rng(seed)
    topics = [[f"t{k}x{j}" for j in range(4)] for k in range(len(COUNTRIES))]
    lines = []
    for _ in range(sentences):
        k = int(rng.integers(len(COUNTRIES)))
        city = rng.random() < 0.5
        word = CAPITALS[k] if city else COUNTRIES[k]
        middle = ["the", "city" if city else "country", "of" if rng.random() < 0.5 else "named", word]
        fillers = [f"f{i}" for i in rng.integers(0, 30, int(rng.integers(0, 3)))]
        lines.append(" ".join([*fillers, *rng.choice(topics[k], 2), *middle, *rng.choice(topics[k], 2)]))
    return "\n".join(lines) + "\n"


def run(capsys: pytest.CaptureFixture, *argv: str) -> str:
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with corpus.txt and vectors.bin trained on it (skip-gram, planted relation)."""
    folder = tmp_path_factory.mktemp("w2v")
    (folder / "corpus.txt").write_text(planted_text())
    code = main(["word2vec", "train", str(folder / "corpus.txt"), "-o", str(folder / "vectors.bin"), "--model", "skipgram",
                 "--size", "24", "--window", "4", "--sample", "0", "--epochs", "10", "--min-count", "1", "--threads", "1",
                 "--save-vocab", str(folder / "vocab.txt")])
    assert code == 0
    return folder


def test_train_writes_vectors_that_hold_the_planted_relation(trained: Path) -> None:
    wv = KeyedVectors.load_word2vec_format(trained / "vectors.bin")
    assert set(COUNTRIES + CAPITALS) <= set(wv.index_to_key)
    right = sum(wv.analogy(b, a, c, topn=1)[0][0] == d  # b − a + c: capital − country + country'
                for a, b in zip(COUNTRIES, CAPITALS) for c, d in zip(COUNTRIES, CAPITALS) if a != c)
    assert right >= 0.8 * 56
    assert not (trained / "vectors.bin.ckpt.npz").exists()  # the checkpoint goes when training ends
    vocab = (trained / "vocab.txt").read_text().splitlines()
    assert vocab[0].split()[0] == "the" and len(vocab) == len(wv)


def test_similar_analogy_eval_and_plot(trained: Path, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    v = str(trained / "vectors.bin")
    out = run(capsys, "word2vec", "similar", "paris", "-v", v, "--topn", "5")
    assert len(out.splitlines()) == 5 and "paris" not in out.split()
    out = run(capsys, "word2vec", "analogy", "paris", "france", "germany", "-v", v, "--topn", "1")
    assert out.splitlines()[-1].split()[0] == "berlin"
    # an analogy file in the planted words; pairs with the country–capital word similarities
    questions = tmp_path / "q.txt"
    questions.write_text(": capitals\n" + "".join(f"{a} {b} {c} {d}\n" for a, b in zip(COUNTRIES, CAPITALS)
                                                   for c, d in zip(COUNTRIES, CAPITALS) if a != c))
    pairs = tmp_path / "p.tsv"
    pairs.write_text("".join(f"{a}\t{b}\t{9 - i}\n" for i, (a, b) in enumerate(zip(COUNTRIES, CAPITALS))))
    out = run(capsys, "word2vec", "eval", "-v", v, "--questions", str(questions), "--pairs", str(pairs))
    assert "| capitals |" in out and "Spearman rho" in out
    total = next(line for line in out.splitlines() if line.startswith("| **total**"))
    correct, seen = (int(x.replace(",", "")) for x in total.split("|")[3].split("/"))
    assert seen == 56 and correct >= 0.8 * 56
    pairs_file = tmp_path / "capitals.txt"
    pairs_file.write_text("".join(f"{a} {b}\n" for a, b in zip(COUNTRIES, CAPITALS)))
    out = run(capsys, "word2vec", "plot", "--pairs", str(pairs_file), "-o", str(tmp_path / "pairs.png"), "-v", v)
    assert "8 pairs" in out and (tmp_path / "pairs.png").read_bytes()[:4] == b"\x89PNG"
    out = run(capsys, "word2vec", "plot", "--pairs", "country-capital", "-o", str(tmp_path / "cc.svg"), "-v", v)
    assert "skipped" in out  # the built-in list names capitals the planted text lacks
    run(capsys, "word2vec", "plot", "--neighbours", "tokyo", "-o", str(tmp_path / "n.png"), "-v", v)
    run(capsys, "word2vec", "similar", "lima", "-v", v, "-o", str(tmp_path / "lima.png"))
    assert (tmp_path / "n.png").stat().st_size > 1000 and (tmp_path / "lima.png").stat().st_size > 1000


def test_text_output_and_the_shipped_benchmarks(trained: Path, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    out = tmp_path / "v.txt"
    run(capsys, "word2vec", "train", str(trained / "corpus.txt"), "-o", str(out), "--size", "8", "--epochs", "1",
        "--min-count", "1")
    first = out.read_text().splitlines()[0].split()
    assert len(first) == 2 and int(first[1]) == 8
    gensim = pytest.importorskip("gensim")
    theirs = gensim.models.KeyedVectors.load_word2vec_format(str(out), binary=False)
    assert len(theirs) == int(first[0])
    text = run(capsys, "word2vec", "eval", "-v", str(out))  # questions-words and WordSim-353, shipped
    assert "| **total** |" in text and "WordSim-353: no correlation: only 0 of its 353 pairs" in text


def test_trains_on_the_shipped_text_from_an_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = run(capsys, "word2vec", "train", "--size", "8", "--epochs", "1", "--lowercase")
    assert out.startswith("tiny-shakespeare: 202,651 words,"), out
    assert KeyedVectors.load_word2vec_format(tmp_path / "vectors.bin").vector_size == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.bin"]


@pytest.mark.skipif(not w2v.available, reason=f"compiled word2vec kernel: {w2v.reason()}")
def test_same_seed_same_file_and_max_time_resume_is_bit_identical(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(planted_text(sentences=20000, seed=1))
    common = ["--size", "100", "--epochs", "8", "--sample", "0", "--min-count", "1", "--threads", "1", "--model", "skipgram",
              "--seed", "7"]
    run(capsys, "word2vec", "train", str(corpus), "-o", str(tmp_path / "a.bin"), *common)
    run(capsys, "word2vec", "train", str(corpus), "-o", str(tmp_path / "b.bin"), *common)
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()
    out = run(capsys, "word2vec", "train", str(corpus), "-o", str(tmp_path / "c.bin"), *common, "--max-time", "0.003")
    assert "stopped by --max-time" in out and (tmp_path / "c.bin.ckpt.npz").is_file()
    assert (tmp_path / "c.bin").read_bytes() != (tmp_path / "a.bin").read_bytes()  # the vectors so far
    out = run(capsys, "word2vec", "train", str(corpus), "-o", str(tmp_path / "c.bin"), "--resume",
              str(tmp_path / "c.bin.ckpt.npz"))
    assert (tmp_path / "c.bin").read_bytes() == (tmp_path / "a.bin").read_bytes()
    assert not (tmp_path / "c.bin.ckpt.npz").exists()


@pytest.mark.skipif(not w2v.available, reason=f"compiled word2vec kernel: {w2v.reason()}")
def test_a_run_killed_with_sigkill_resumes_bit_identical(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(planted_text(sentences=30000, seed=2))
    common = ["--size", "100", "--epochs", "8", "--sample", "0", "--min-count", "1", "--threads", "1", "--model", "skipgram"]
    cli = [sys.executable, "-m", "dlia.cli.main", "word2vec", "train", str(corpus)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    subprocess.run([*cli, "-o", str(tmp_path / "whole.bin"), *common], check=True, env=env, capture_output=True)
    ckpt = tmp_path / "k.bin.ckpt.npz"
    proc = subprocess.Popen([*cli, "-o", str(tmp_path / "k.bin"), *common, "--checkpoint-every", "0.003"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not ckpt.exists():
        pytest.skip("the run ended before its first checkpoint (a very fast machine)")
    assert not (tmp_path / "k.bin").exists()
    subprocess.run([*cli, "-o", str(tmp_path / "k.bin"), "--resume", str(ckpt)], check=True, env=env, capture_output=True)
    assert (tmp_path / "k.bin").read_bytes() == (tmp_path / "whole.bin").read_bytes()


@pytest.mark.skipif(not w2v.available, reason=f"compiled word2vec kernel: {w2v.reason()}")
def test_ctrl_c_saves_a_checkpoint_that_resumes_bit_identical(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(planted_text(sentences=30000, seed=3))
    common = ["--size", "100", "--epochs", "8", "--sample", "0", "--min-count", "1", "--threads", "1", "--model", "skipgram"]
    cli = [sys.executable, "-m", "dlia.cli.main", "word2vec", "train", str(corpus)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "PYTHONUNBUFFERED": "1"}
    subprocess.run([*cli, "-o", str(tmp_path / "whole.bin"), *common], check=True, env=env, capture_output=True)
    proc = subprocess.Popen([*cli, "-o", str(tmp_path / "i.bin"), *common], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # the corpus line, printed just before training starts
    assert "words" in first
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    ckpt = tmp_path / "i.bin.ckpt.npz"
    if proc.returncode == 0:
        pytest.skip("the run ended before Ctrl-C (a very fast machine)")
    assert "continue it with --resume" in out + err or "continue with --resume" in out + err, (out, err)
    assert ckpt.is_file() and "Traceback" not in err
    subprocess.run([*cli, "-o", str(tmp_path / "i.bin"), "--resume", str(ckpt)], check=True, env=env, capture_output=True)
    assert (tmp_path / "i.bin").read_bytes() == (tmp_path / "whole.bin").read_bytes()
    assert not ckpt.exists()


def test_vectors_written_with_a_mismatched_name_read_back_and_multiword_pictures(
        trained: Path, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    out = tmp_path / "text-named.bin"
    run(capsys, "word2vec", "train", str(trained / "corpus.txt"), "-o", str(out), "--format", "text", "--size", "8",
        "--epochs", "1", "--min-count", "1")
    assert out.read_bytes()[:20].decode().split("\n")[1].split()[0] == "the"  # text indeed
    assert len(run(capsys, "word2vec", "similar", "tokyo", "-v", str(out), "--topn", "40").splitlines()) == 40
    run(capsys, "word2vec", "similar", "paris", "germany", "--minus", "france", "-v", str(trained / "vectors.bin"),
        "-o", str(tmp_path / "q.png"))
    assert (tmp_path / "q.png").stat().st_size > 1000
