"""Checkpoints: round trip, exact resume, atomic writes, and one clear error for bad files."""

import json
import os
import zipfile

import numpy as np
import pytest

import dlia
from dlia import nn, optim
from dlia.io import (
    CheckpointError,
    atomic_write,
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from dlia.io.atomic import OutputError


def make(seed=0):
    gen = dlia.Generator(seed)
    model = nn.Sequential(nn.Linear(4, 8, generator=gen), nn.Tanh(), nn.Linear(8, 3, generator=gen))
    return model, optim.Adam(model.parameters(), lr=0.01)


def train(model, opt, gen, steps):
    losses = []
    for _ in range(steps):
        x = dlia.tensor(gen.normal((16, 4)))
        y = gen.integers(0, 3, 16)
        opt.zero_grad()
        loss = dlia.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_round_trip_restores_everything(tmp_path):
    model, opt = make()
    gen = dlia.Generator(3)
    train(model, opt, gen, 3)
    path = save_checkpoint(tmp_path / "m.npz", model, opt, step=3, generator=gen, config={"hidden": 8},
                           vocab=["a", "b"], history={"loss": [1.0, 0.5]}, extra={"note": "x"})
    model2, opt2 = make(seed=1)
    gen2 = dlia.Generator(99)
    ck = load_checkpoint(path, model2, opt2, gen2)
    assert (ck.step, ck.config, ck.vocab, ck.history, ck.extra) == (3, {"hidden": 8}, ["a", "b"], {"loss": [1.0, 0.5]},
                                                                     {"note": "x"})
    for (k, a), (k2, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert k == k2 and np.array_equal(a.numpy(), b.numpy())
    assert np.array_equal(gen.normal((5,)), gen2.normal((5,)))
    assert opt2.state[model2[0].weight]["step"] == 3


def test_resume_equals_uninterrupted_run(tmp_path):
    model, opt = make()
    gen = dlia.Generator(7)
    straight = train(model, opt, gen, 10)

    model_a, opt_a = make()
    gen_a = dlia.Generator(7)
    first = train(model_a, opt_a, gen_a, 5)
    save_checkpoint(tmp_path / "half.npz", model_a, opt_a, step=5, generator=gen_a)
    model_b, opt_b = make(seed=123)
    gen_b = dlia.Generator(0)
    ck = load_checkpoint(tmp_path / "half.npz", model_b, opt_b, gen_b)
    rest = train(model_b, opt_b, gen_b, 10 - ck.step)
    assert np.allclose(first + rest, straight, rtol=0, atol=0)
    for a, b in zip(model.parameters(), model_b.parameters()):
        assert np.array_equal(a.numpy(), b.numpy())


def test_file_is_plain_npz_without_pickles(tmp_path):
    model, opt = make()
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    with np.load(path, allow_pickle=False) as z:
        assert "model/0.weight" in z.files
        meta = json.loads(z["__meta__"].tobytes())
    assert meta["format"] == "dlia-checkpoint" and meta["optimizer"]["class"] == "Adam"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip"])
def test_corrupt_files_give_one_clear_error(tmp_path, damage):
    model, opt = make()
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # flip bytes inside the first stored array: the zip CRC catches it
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("model/0.weight.npy")
        start = info.header_offset + 30 + len(info.filename) + 200
        path.write_bytes(data[:start] + bytes(b ^ 0xFF for b in data[start:start + 16]) + data[start + 16:])
    model2, _ = make(seed=5)
    before = [p.numpy().copy() for p in model2.parameters()]
    with pytest.raises(CheckpointError, match="m.npz"):
        load_checkpoint(path, model2)
    assert all(np.array_equal(a, p.numpy()) for a, p in zip(before, model2.parameters()))


def test_other_npz_is_not_a_checkpoint(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.ones(3))
    with pytest.raises(CheckpointError, match="not a dlia checkpoint"):
        load_checkpoint(tmp_path / "x.npz")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.npz")


def test_mismatched_model_is_rejected_and_left_unchanged(tmp_path):
    model, opt = make()
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    other = nn.Sequential(nn.Linear(4, 9), nn.Tanh(), nn.Linear(9, 3))
    before = [p.numpy().copy() for p in other.parameters()]
    with pytest.raises(CheckpointError, match=r"0\.weight.*\(8, 4\).*\(9, 4\)"):
        load_checkpoint(path, other)
    assert all(np.array_equal(a, p.numpy()) for a, p in zip(before, other.parameters()))


def test_mismatched_optimizer_rolls_back_model(tmp_path):
    model, opt = make()
    train(model, opt, dlia.Generator(0), 1)
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    model2, _ = make(seed=9)
    before = [p.numpy().copy() for p in model2.parameters()]
    with pytest.raises(CheckpointError, match="Adam.*SGD"):
        load_checkpoint(path, model2, optim.SGD(model2.parameters(), lr=0.1))
    assert all(np.array_equal(a, p.numpy()) for a, p in zip(before, model2.parameters()))


def test_missing_rng_state(tmp_path):
    model, _ = make()
    path = save_checkpoint(tmp_path / "m.npz", model)
    with pytest.raises(CheckpointError, match="no RNG state"):
        load_checkpoint(path, generator=dlia.Generator(0))


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_names_and_latest(tmp_path):
    assert checkpoint_name("lm", 3, 1.23456) == "lm_epoch003_1.2346.npz"
    assert latest_checkpoint(tmp_path, "lm") is None
    model, _ = make()
    for epoch in (1, 12, 3):
        save_checkpoint(tmp_path / checkpoint_name("lm", epoch, 0.5), model)
    (tmp_path / "other_epoch099.npz").write_bytes(b"")
    assert latest_checkpoint(tmp_path, "lm").name == "lm_epoch012_0.5000.npz"


def test_atomic_write_never_replaces_a_device_or_pipe(tmp_path):  # issue #10 B5: the rename would replace /dev/null
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        with atomic_write(fifo, "w") as f:
            f.write("x")
    assert fifo.is_fifo() and os.listdir(tmp_path) == ["pipe"]


def test_a_device_is_not_a_checkpoint():  # issue #10 B8: /dev/null was "checkpoint not found"
    with pytest.raises(CheckpointError, match="/dev/null is not a regular file"):
        load_checkpoint("/dev/null", None)


def test_atomic_write_on_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match=f"cannot write {tmp_path}/a.txt: No space left on device"):
        with atomic_write(tmp_path / "a.txt", "w") as f:
            f.write("x")
    assert os.listdir(tmp_path) == []
