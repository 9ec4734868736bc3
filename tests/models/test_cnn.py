"""The digits CNN: config, augmentation, accuracy, exact resume, prediction on a user's image, and
the fully convolutional net on canvases of any size."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dlia
from dlia.models.cnn import CNNConfig, DigitsCNN, DigitsFCN, paste, random_shift

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "digits.npz").is_file(), reason="shared digits data not present")


def dlia_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dlia.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900)


def test_config_rejects_unknown_keys_and_round_trips():
    c = CNNConfig(epochs=3, channels=(8, 16))
    assert CNNConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown CNN config keys: colour"):
        CNNConfig.from_dict({"colour": 1})


def test_shapes():
    assert DigitsCNN()(dlia.zeros(5, 1, 8, 8)).shape == (5, 10)
    fcn = DigitsFCN()
    for size in (8, 11, 24):
        assert fcn(dlia.zeros(2, 1, size, size)).shape == (2, 10)


def test_random_shift_moves_without_changing_mass():
    rng = np.random.default_rng(0)
    x = np.zeros((50, 1, 8, 8), np.float32)
    x[:, 0, 3:5, 3:5] = 1
    y = random_shift(x, 1, rng)
    assert y.shape == x.shape
    assert np.allclose(y.sum(axis=(1, 2, 3)), 4)  # a centred blob never leaves the frame
    assert not np.array_equal(x, y)
    assert random_shift(x, 0, rng) is x


def test_paste_places_each_digit_once():
    rng = np.random.default_rng(1)
    digits = np.random.default_rng(2).random((6, 8, 8)).astype(np.float32)
    canvas = paste(digits, 20, rng)
    assert canvas.shape == (6, 1, 20, 20)
    assert np.allclose(canvas.sum(axis=(1, 2, 3)), digits.sum(axis=(1, 2)))
    with pytest.raises(ValueError, match="smaller than"):
        paste(digits, 6, rng)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`dlia cnn train` with its defaults (30 epochs), the acceptance run."""
    work = tmp_path_factory.mktemp("cnn")
    r = dlia_cli("cnn", "train", "--data", str(DATA), "--pictures", "filters.png", cwd=work)
    assert r.returncode == 0, r.stderr
    return work, r.stdout


@needs_data
def test_cnn_reaches_98_5_percent(trained):
    work, out = trained
    acc = float(out.split("test accuracy: ")[1].split("%")[0])
    assert acc >= 98.5
    assert len(list((work / "runs" / "cnn").glob("cnn_epoch*_*.npz"))) == 30
    with Image.open(work / "filters.png") as im:
        assert im.format == "PNG"


@needs_data
def test_predict_reads_a_users_image(trained, tmp_path):
    work, _ = trained
    z = np.load(DATA / "digits.npz")
    hits = 0
    for i in range(1700, 1720):  # rendered large, dark ink on white paper, like a photo of a digit
        big = np.kron(z["images"][i] / 16.0, np.ones((9, 9)))
        Image.fromarray((255 - 255 * big).astype(np.uint8)).convert("RGB").save(tmp_path / f"{i}.png")
        r = dlia_cli("cnn", "predict", str(tmp_path / f"{i}.png"), cwd=work)
        assert r.returncode == 0, r.stderr
        hits += int(r.stdout.split(": ")[1].split()[0]) == int(z["target"][i])
    assert hits >= 17


@needs_data
def test_predict_checkpoint_may_name_the_run_folder(trained, tmp_path):
    work, _ = trained
    z = np.load(DATA / "digits.npz")
    Image.fromarray((255 - 255 * np.kron(z["images"][1700] / 16.0, np.ones((9, 9)))).astype(np.uint8)).save(
        tmp_path / "d.png")
    by_default = dlia_cli("cnn", "predict", str(tmp_path / "d.png"), cwd=work)
    by_folder = dlia_cli("cnn", "predict", str(tmp_path / "d.png"), "--checkpoint", str(work / "runs" / "cnn"),
                         cwd=tmp_path)
    assert by_folder.returncode == 0, by_folder.stderr
    assert by_folder.stdout == by_default.stdout  # the latest checkpoint of the folder, as --out does
    empty = dlia_cli("cnn", "predict", str(tmp_path / "d.png"), "--checkpoint", str(tmp_path), cwd=tmp_path)
    assert empty.returncode == 2 and f"no checkpoint found in {tmp_path}" in empty.stderr


@needs_data
def test_predict_reads_ink_on_a_transparent_background(trained, tmp_path):
    work, _ = trained
    z = np.load(DATA / "digits.npz")
    hits = 0
    for i in range(1720, 1730):  # black ink whose opacity is the stroke, on a fully transparent canvas
        big = np.kron(z["images"][i] / 16.0, np.ones((9, 9)))
        rgba = np.zeros(big.shape + (4,), np.uint8)
        rgba[..., 3] = (255 * big).astype(np.uint8)
        Image.fromarray(rgba, "RGBA").save(tmp_path / f"{i}.png")
        r = dlia_cli("cnn", "predict", str(tmp_path / f"{i}.png"), cwd=work)
        assert r.returncode == 0, r.stderr
        hits += int(r.stdout.split(": ")[1].split()[0]) == int(z["target"][i])
    assert hits >= 8


@needs_data
def test_resume_continues_exactly(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    args = ("cnn", "train", "--epochs", "3", "--data", str(DATA))
    assert dlia_cli(*args, cwd=a).returncode == 0
    assert dlia_cli(*args, cwd=b).returncode == 0
    for f in (b / "runs" / "cnn").glob("cnn_epoch003_*"):
        f.unlink()  # as if the run had been killed during epoch 3
    r = dlia_cli(*args, "--resume", cwd=b)
    assert r.returncode == 0 and "resuming from" in r.stdout and "epoch002" in r.stdout
    (fa,) = (a / "runs" / "cnn").glob("cnn_epoch003_*")
    (fb,) = (b / "runs" / "cnn").glob("cnn_epoch003_*")
    assert fa.name == fb.name
    with np.load(fa) as za, np.load(fb) as zb:
        for k in za.files:
            if k != "__meta__":
                assert np.array_equal(za[k], zb[k]), k


@needs_data
def test_fully_convolutional_net_reads_any_canvas_size(tmp_path):
    r = dlia_cli("cnn", "fcn", "--data", str(DATA), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    accs = [float(line.split("test accuracy ")[1].split("%")[0]) for line in r.stdout.splitlines() if "canvas" in line]
    assert len(accs) == 6 and min(accs) >= 95.0
    assert "cannot even run on 12×12" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["cnn", "predict", "nope.png", "--checkpoint", "x.npz"], "no such file: nope.png"),
    (["cnn", "train", "--epochs", "0"], "must be a positive integer"),
    (["cnn", "fcn", "--sizes", "4,8"], "at least 8"),
    (["cnn", "fcn", "--sizes", "a,b"], "comma-separated integers"),
])
def test_cnn_user_errors(tmp_path, args, message):
    r = dlia_cli(*args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_predict_errors(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image")
    r = dlia_cli("cnn", "predict", "junk.png", cwd=tmp_path)
    assert r.returncode == 2 and "no checkpoint found" in r.stderr
    (tmp_path / "fake.npz").write_bytes(b"PK\x03\x04 broken")
    Image.new("L", (10, 10), 255).save(tmp_path / "blank.png")
    r = dlia_cli("cnn", "predict", "blank.png", "--checkpoint", "fake.npz", cwd=tmp_path)
    assert r.returncode == 2 and "blank" in r.stderr
    r = dlia_cli("cnn", "predict", "junk.png", "--checkpoint", "fake.npz", cwd=tmp_path)
    assert r.returncode == 2 and "junk.png is not an image Pillow can read" in r.stderr  # the loader dlia filter uses


def test_gpu_without_a_gpu_is_a_user_error(tmp_path):
    if dlia.gpu_available:
        pytest.skip("a GPU is present")
    r = dlia_cli("cnn", "train", "--device", "gpu", "--epochs", "1", cwd=tmp_path)
    assert r.returncode == 2 and "no GPU is available" in r.stderr and "Traceback" not in r.stderr


needs_gpu = pytest.mark.skipif(not dlia.gpu_available, reason="needs CuPy and a CUDA GPU")


@pytest.mark.gpu
@needs_gpu
def test_cnn_steps_on_gpu_equal_cpu_steps():
    """Five Adam steps of the digits CNN in float64: the GPU's parameters equal the CPU's."""
    from dlia import optim

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 8, 8))
    y = rng.integers(0, 10, 16)
    params = []
    for device in ("cpu", "gpu"):
        model = DigitsCNN(CNNConfig(dropout=0.0), dlia.Generator(0)).to(device, dtype=np.float64)
        opt = optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(5):
            opt.zero_grad()
            dlia.cross_entropy(model(dlia.tensor(x, device=device)), y).backward()
            opt.step()
        assert all(p.device.kind == device for p in model.parameters())
        params.append([p.numpy() for p in model.parameters()])
    for a, b in zip(*params):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


@pytest.mark.gpu
@needs_gpu
@needs_data
def test_cnn_trains_on_gpu_and_its_checkpoint_predicts_on_cpu(tmp_path):
    """Two epochs on the GPU reach the CPU's accuracy (same seed), and `predict` reads the checkpoint."""
    accs = []
    for device in ("cpu", "gpu"):
        r = dlia_cli("cnn", "train", "--device", device, "--epochs", "2", "--data", str(DATA), "--out", device, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        accs.append(float(r.stdout.split("test accuracy: ")[1].split("%")[0]))
    assert accs[1] > 50.0 and abs(accs[1] - accs[0]) <= 1.0, accs
    digit = (np.load(DATA / "digits.npz")["images"][0] * 255 / 16).astype(np.uint8)
    Image.fromarray(digit).resize((32, 32)).save(tmp_path / "d.png")
    r = dlia_cli("cnn", "predict", "d.png", "--out", "gpu", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("d.png: "), r.stderr


@pytest.mark.gpu
@needs_gpu
def test_mixing_devices_in_one_op_is_a_clear_error():
    a = dlia.tensor(np.ones(3, np.float32))
    b = dlia.tensor(np.ones(3, np.float32), device="gpu")
    with pytest.raises(dlia.DeviceError, match=r"add: inputs are on different devices \(cpu \(3,\), gpu \(3,\)\)"):
        a + b


@needs_data
def test_divergence_is_one_line_and_writes_no_checkpoint(tmp_path):
    r = dlia_cli("cnn", "train", "--lr", "1e9", "--epochs", "1", "--data", str(DATA), cwd=tmp_path)
    assert r.returncode == 2 and "training diverged in epoch 1" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not list(tmp_path.rglob("*.npz"))


@needs_data
def test_a_new_run_does_not_mix_with_an_earlier_runs_checkpoints(tmp_path):
    assert dlia_cli("cnn", "train", "--epochs", "1", "--data", str(DATA), cwd=tmp_path).returncode == 0
    r = dlia_cli("cnn", "train", "--epochs", "1", "--seed", "7", "--data", str(DATA), cwd=tmp_path)
    assert r.returncode == 2 and "already holds checkpoints of an earlier run" in r.stderr
    r = dlia_cli("cnn", "train", "--epochs", "2", "--resume", "--lr", "0.1", "--data", str(DATA), cwd=tmp_path)
    assert r.returncode == 0 and "ignoring --lr 0.1" in r.stdout
