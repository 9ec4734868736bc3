"""Checkpoints: round trip, exact resume, atomic writes, and one clear error for bad files."""

import io
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


def test_fractional_epoch_names_and_latest(tmp_path):
    assert checkpoint_name("lm", 2.35, 1.2, decimals=2) == "lm_epoch002.35_1.2000.npz"
    assert checkpoint_name("lm", 12.3456, decimals=3) == "lm_epoch012.346.npz"
    model, _ = make()
    for epoch in (0.9, 1.05, 1.1, 10.0, 9.95):
        save_checkpoint(tmp_path / checkpoint_name("lm", epoch, 0.5, decimals=2), model)
    save_checkpoint(tmp_path / checkpoint_name("lm", 3, 0.5), model)  # whole epochs mix with fractional ones
    assert latest_checkpoint(tmp_path, "lm").name == "lm_epoch010.00_0.5000.npz"


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
# -- damaged or hostile files (issue #10 B1, B4) ------------------------------------------------
def _entries(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _write_entries(path, entries):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)


def _edit_meta(path, edit):
    entries = _entries(path)
    meta = json.loads(np.lib.format.read_array(io.BytesIO(entries["__meta__.npy"])).tobytes())
    edit(meta)
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), np.uint8))
    entries["__meta__.npy"] = buf.getvalue()
    _write_entries(path, entries)


def _trained_checkpoint(tmp_path, name="m.npz"):
    model, opt = make()
    gen = dlia.Generator(0)
    train(model, opt, gen, 2)
    return save_checkpoint(tmp_path / name, model, opt, step=2, generator=gen, history={"loss": [1.0]})


def _load_all(path):
    """Load into a fresh model, optimizer and generator; on failure check nothing changed."""
    model, opt = make(seed=4)
    before = [p.numpy().copy() for p in model.parameters()]
    try:
        return load_checkpoint(path, model, opt, dlia.Generator(1))
    except CheckpointError:
        assert all(np.array_equal(a, p.numpy()) for a, p in zip(before, model.parameters()))
        raise


def test_declared_array_larger_than_the_file_is_refused_before_allocating(tmp_path):
    path = _trained_checkpoint(tmp_path)
    entries = _entries(path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**11,)})
    entries["model/0.weight.npy"] = header.getvalue() + b"\0" * 64
    _write_entries(path, entries)
    with pytest.raises(CheckpointError, match=r"m\.npz.*0\.weight.*declares 400000000000 bytes"):
        _load_all(path)


@pytest.mark.parametrize("edit, words", [
    (lambda m: m["optimizer"].pop("scalars"), "'scalars' is missing"),
    (lambda m: m["optimizer"]["scalars"].update({"x": {"step": 1}}), "'scalars'"),
    (lambda m: m["optimizer"]["scalars"]["0"].update({"step": "two"}), "'scalars'"),
    (lambda m: m["optimizer"].pop("class"), "no optimizer class"),
    (lambda m: m["optimizer"]["param_groups"][0].update({"lr": "fast"}), "'lr' of group 0"),
    (lambda m: m["optimizer"].update({"param_groups": {"params": 1}}), "param_groups"),
    (lambda m: m.update({"step": "3"}), "'step' is str"),
    (lambda m: m.pop("step"), "'step' is missing"),
    (lambda m: m.update({"history": [1, 2]}), "'history' is list"),
    (lambda m: m.update({"version": "1"}), "format version"),
    (lambda m: m["rng"]["state"].update({"state": "x"}), "unreadable RNG state"),
    (lambda m: m["rng"].pop("state"), "unreadable RNG state"),
])
def test_corrupt_metadata_is_a_checkpoint_error(tmp_path, edit, words):
    path = _trained_checkpoint(tmp_path)
    _edit_meta(path, edit)
    with pytest.raises(CheckpointError, match="m.npz") as info:
        _load_all(path)
    assert words in str(info.value)


def test_bad_optimizer_array_names_are_a_checkpoint_error(tmp_path):
    path = _trained_checkpoint(tmp_path)
    entries = _entries(path)
    entries["optim/x/exp_avg.npy"] = entries.pop("optim/0/exp_avg.npy")
    _write_entries(path, entries)
    with pytest.raises(CheckpointError, match="unexpected array 'optim/x/exp_avg'"):
        _load_all(path)
    entries = _entries(_trained_checkpoint(tmp_path, "n.npz"))
    del entries["optim/1/exp_avg.npy"]
    _write_entries(tmp_path / "n.npz", entries)
    with pytest.raises(CheckpointError, match="parameter 1 has"):
        _load_all(tmp_path / "n.npz")


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("name", ["model/0.weight", "optim/0/exp_avg"])
def test_non_finite_values_are_refused(tmp_path, name, value):
    path = _trained_checkpoint(tmp_path)
    entries = _entries(path)
    a = np.lib.format.read_array(io.BytesIO(entries[name + ".npy"]))
    a.flat[3] = value
    buf = io.BytesIO()
    np.save(buf, a)
    entries[name + ".npy"] = buf.getvalue()
    _write_entries(path, entries)
    with pytest.raises(CheckpointError, match=f"NaN or infinite values in '{name}'"):
        _load_all(path)


def test_fuzzed_checkpoints_give_only_checkpoint_errors(tmp_path):
    """Truncated, byte-flipped, entry-deleted and metadata-mangled copies of a valid checkpoint:
    each loads or raises CheckpointError, and a failed load changes nothing."""
    good = _trained_checkpoint(tmp_path, "good.npz")
    data, entries = good.read_bytes(), _entries(good)
    rng = np.random.default_rng(0)
    junk = [None, -1, 1.5, "x", [], {}, [1], {"a": 1}, True, 10**30]
    path = tmp_path / "m.npz"
    for trial in range(300):
        kind = trial % 4
        if kind == 0:
            path.write_bytes(data[: rng.integers(0, len(data))])
        elif kind == 1:
            flipped = bytearray(data)
            for i in rng.integers(0, len(data), rng.integers(1, 4)):
                flipped[i] ^= int(rng.integers(1, 256))
            path.write_bytes(bytes(flipped))
        elif kind == 2:
            kept = dict(entries)
            del kept[list(kept)[rng.integers(0, len(kept))]]
            _write_entries(path, kept)
        else:
            path.write_bytes(data)

            def mangle(meta):
                node, keys = meta, []
                while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
                    key = list(node)[rng.integers(0, len(node))] if isinstance(node, dict) else rng.integers(0, len(node))
                    parent, node, keys = node, node[key], keys + [key]
                if not keys:
                    return
                if isinstance(parent, dict) and rng.random() < 0.5:
                    del parent[keys[-1]]
                else:
                    parent[keys[-1]] = junk[rng.integers(0, len(junk))]

            _edit_meta(path, mangle)
        try:
            _load_all(path)
        except CheckpointError as e:
            assert "m.npz" in str(e) and "\n" not in str(e)


def test_model_class_is_reported(tmp_path):
    path = _trained_checkpoint(tmp_path)
    assert load_checkpoint(path).model_class == "Sequential"


# -- temporary files left by a killed write (issue #10 B7) ---------------------------------------
DEAD = "99999999"  # above any Linux pid_max: no process has this number


def test_the_next_save_removes_temp_files_a_killed_write_left(tmp_path):
    import os

    model, opt = make()
    stale = [f".m.npz.{DEAD}.ab12cd_3.tmp", ".m.npz.ab12cd_3.tmp"]  # a dead writer's; one from before PIDs
    kept = [f".m.npz.{os.getpid()}.zz99yy88.tmp",  # a running writer's (this process)
            f".other.npz.{DEAD}.ab12cd_3.tmp", f".m.npz.{DEAD}.ab12cd_3.tmp.bak", "m.npz.ab12cd_3.tmp", "notes.txt"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"half a checkpoint")
    save_checkpoint(tmp_path / "m.npz", model, opt)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["m.npz"])
    assert (tmp_path / "notes.txt").read_bytes() == b"half a checkpoint"


def test_resuming_removes_temp_files_of_the_runs_checkpoints(tmp_path):
    from dlia.io.checkpoint import remove_stale_checkpoint_temps

    stale = [f".cnn_epoch003_0.1234.npz.{DEAD}.abcdefgh.tmp", f".cnn_epoch012.npz.{DEAD}.abcdefgh.tmp"]
    kept = [f".lm_epoch003_0.1234.npz.{DEAD}.abcdefgh.tmp", "cnn_epoch003_0.1234.npz", f".cnn_notes.txt.{DEAD}.abcdefgh.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    assert sorted(p.name for p in remove_stale_checkpoint_temps(tmp_path, "cnn")) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
    assert remove_stale_checkpoint_temps(tmp_path / "no-such-folder", "cnn") == []


def test_groups_with_different_state_entries_round_trip(tmp_path):
    """RMSprop keeps a momentum buffer only in the group with momentum: that is not corruption."""
    model, _ = make()
    params = list(model.parameters())
    opt = optim.RMSprop([{"params": params[:2], "momentum": 0.9}, {"params": params[2:]}], lr=0.01)
    train(model, opt, dlia.Generator(0), 2)
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    model2, _ = make(seed=1)
    p2 = list(model2.parameters())
    opt2 = optim.RMSprop([{"params": p2[:2], "momentum": 0.9}, {"params": p2[2:]}], lr=0.01)
    load_checkpoint(path, model2, opt2)
    assert "momentum_buffer" in opt2.state[p2[0]] and "momentum_buffer" not in opt2.state[p2[2]]
