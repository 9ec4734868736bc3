"""The compiled convolution kernels (dlia/backend/_native.c) against torch, float64 and the NumPy path."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import sysconfig
import threading
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import dlia
from dlia.backend import loader, native

needs_native = pytest.mark.skipif(not native.available, reason="the C kernels were not built (no C compiler)")


def test_the_kernels_are_built_where_a_c_compiler_exists():
    """An install on a machine with a C compiler must have built them; without one, conv2d falls
    back to NumPy, which the other tests cover."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc}) on this machine")
    assert native.available, "a C compiler exists but dlia/backend/_native.c was not built (pip install -e . shows why)"


def arrays(shape, out_ch, kernel, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    w = (0.2 * rng.standard_normal((out_ch, shape[1], *kernel))).astype(np.float32)
    b = rng.standard_normal(out_ch).astype(np.float32)
    return x, w, b


def run_dlia(x, w, b, g, padding, compiled=True):
    xt, wt, bt = (dlia.tensor(a, requires_grad=True) for a in (x, w, b))
    with native.use(compiled):
        y = dlia.conv2d(xt, wt, bt, padding=padding)
        y.backward(g)
    return y.numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def run_exact(x, w, b, g, padding):
    """The same convolution in float64 (torch): the reference for float32 rounding."""
    xt, wt, bt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, padding=padding)
    y.backward(torch.tensor(g, dtype=torch.float64))
    return [t.detach().numpy() for t in (y, xt.grad, wt.grad, bt.grad)]


def close(name, ours, exact, scale):
    """float32 results within 1e-5 of the float64 ones, relative to the size of the values summed."""
    err = np.abs(ours - exact).max() / scale
    assert ours.dtype == np.float32 and err < 1e-5, f"{name}: error {err:.2e} of the scale"


CASES = [  # input, output channels, kernel, padding
    ((32, 16, 32, 32), 32, (3, 3), 1),           # the benchmark shape
    ((3, 5, 17, 19), 10, (3, 3), 1),             # channels not multiples of 3, 8 or 16, odd widths
    ((2, 4, 16, 33), 7, (3, 3), 0),              # no padding: 31 output columns, a part-filled last vector
    ((2, 3, 20, 40), 24, (5, 5), 2),             # 5×5: the general weight-gradient loop
    ((2, 6, 18, 21), 17, (1, 1), 0),             # 1×1
    ((1, 2, 16, 24), 5, (2, 4), "same"),         # even kernel, asymmetric 'same' padding
    ((2, 1, 24, 24), 16, (3, 3), 1),             # one input channel (a first layer)
    ((5, 8, 16, 48), 48, (3, 2), (1, 0)),        # non-square kernel and padding, three 16-lane groups
]


@needs_native
@pytest.mark.parametrize("shape, out_ch, kernel, padding", CASES)
def test_compiled_conv_and_gradients_match_float64(shape, out_ch, kernel, padding):
    x, w, b = arrays(shape, out_ch, kernel)
    xt = dlia.tensor(x)
    with native.use(True):
        out = dlia.conv2d(xt, dlia.tensor(w), dlia.tensor(b), padding=padding)
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    ours = run_dlia(x, w, b, g, padding)
    exact = run_exact(x, w, b, g, padding)
    scale_y = np.abs(x).max() * np.abs(w).sum(axis=0).max() + 1
    close("output", ours[0], exact[0], scale_y)
    close("input gradient", ours[1], exact[1], np.abs(g).max() * np.abs(w).sum(axis=(0,)).max() + 1)
    close("weight gradient", ours[2], exact[2], np.abs(g).max() * np.abs(x).max() * g[:, 0].size)
    close("bias gradient", ours[3], exact[3], np.abs(g).max() * g[:, 0].size)


@needs_native
def test_the_cases_run_on_the_compiled_kernels():
    """Guards the tests above: every case takes the compiled path."""
    for shape, out_ch, kernel, padding in CASES:
        x, w, _ = arrays(shape, out_ch, kernel)
        with mock.patch.object(native, "forward", wraps=native.forward) as spy:
            dlia.conv2d(dlia.tensor(x), dlia.tensor(w), padding=padding)
        assert spy.called, (shape, padding)


@needs_native
@settings(max_examples=40, deadline=None)
@given(st.data())
def test_compiled_and_numpy_paths_agree_on_random_shapes(data):
    n, c, k = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 7)), data.draw(st.integers(1, 35))
    kh, kw = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    ph, pw = data.draw(st.integers(0, kh - 1)), data.draw(st.integers(0, kw - 1))
    h = data.draw(st.integers(max(1, kh - 2 * ph), 20))
    w = data.draw(st.integers(max(16, 16 + kw - 1 - 2 * pw), 52))  # input and output 16+ wide: compiled
    x, wt, b = arrays((n, c, h, w), k, (kh, kw), seed=n * 1000 + c * 100 + k)
    g = np.ones((n, k, h + 2 * ph - kh + 1, w + 2 * pw - kw + 1), np.float32)
    with mock.patch.object(native, "forward", wraps=native.forward) as spy:
        compiled = run_dlia(x, wt, b, g, (ph, pw), True)
    assert spy.called
    numpy_path = run_dlia(x, wt, b, g, (ph, pw), False)
    for name, a, ref in zip(("output", "input gradient", "weight gradient", "bias gradient"), compiled, numpy_path):
        scale = np.abs(ref).max() + 1e-30
        assert np.abs(a - ref).max() <= 3e-5 * scale * np.sqrt(c * kh * kw), name


@needs_native
def test_compiled_and_numpy_paths_agree():
    x, w, b = arrays((4, 6, 20, 20), 12, (3, 3))
    g = np.random.default_rng(2).standard_normal((4, 12, 20, 20)).astype(np.float32)
    for a, c in zip(run_dlia(x, w, b, g, 1, compiled=True), run_dlia(x, w, b, g, 1, compiled=False)):
        np.testing.assert_allclose(a, c, rtol=2e-5, atol=2e-5 * np.abs(c).max())


@needs_native
def test_strided_inputs_and_a_broadcast_gradient():
    """Views are read through their strides: a transposed input, and the stride-0 gradient that
    .sum() hands back."""
    x, w, b = arrays((3, 20, 18, 4), 8, (3, 3))
    xv = x.transpose(3, 0, 1, 2)  # (4, 3, 20, 18)-shaped view, not contiguous
    xt, wt, bt = (dlia.tensor(a, requires_grad=True) for a in (xv, w[:, :3], b))
    dlia.conv2d(xt, wt, bt, padding=1).sum().backward()
    tx, tw, tb = (torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=True) for a in (xv, w[:, :3], b))
    F.conv2d(tx, tw, tb, padding=1).sum().backward()
    for ours, theirs in ((xt, tx), (wt, tw), (bt, tb)):
        ref = theirs.grad.numpy()
        np.testing.assert_allclose(ours.grad.numpy(), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@needs_native
def test_views_with_negative_strides():
    x, w, _ = arrays((3, 4, 20, 24), 5, (3, 3))
    xv = x[::-1, :, ::-1, ::-1]  # every stride but the channels' negative
    xt, wt = dlia.tensor(xv, requires_grad=True), dlia.tensor(w, requires_grad=True)
    assert min(xt.data.strides) < 0  # the tensor keeps the view: the kernels read it through its strides
    dlia.conv2d(xt, wt, padding=1).sum().backward()
    tx, tw = (torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=True) for a in (xv, w))
    ty = F.conv2d(tx, tw, padding=1)
    ty.sum().backward()
    np.testing.assert_allclose(dlia.conv2d(xt, wt, padding=1).numpy(), ty.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(wt.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-5 * np.abs(tw.grad.numpy()).max())


@needs_native
@pytest.mark.parametrize("cores", [1, 3, 8])
def test_results_do_not_depend_on_the_thread_count(cores, monkeypatch):
    monkeypatch.setattr(native, "_SERIAL_BELOW", 0)  # small as they are, run these on every thread
    x, w, b = arrays((21, 4, 16, 16), 6, (3, 3))
    g = np.random.default_rng(3).standard_normal((21, 6, 16, 16)).astype(np.float32)
    base = run_dlia(x, w, b, g, 1)
    with mock.patch.object(loader, "cores", lambda: cores):
        other = run_dlia(x, w, b, g, 1)
    for a, c in zip(other, base):
        np.testing.assert_array_equal(a, c)


@needs_native
def test_same_inputs_same_results(monkeypatch):
    """The threads take work in whatever order they get to it; the sums over the batch must not care."""
    monkeypatch.setattr(native, "_SERIAL_BELOW", 0)
    x, w, b = arrays((32, 5, 16, 20), 9, (3, 3))
    g = np.random.default_rng(4).standard_normal((32, 9, 16, 20)).astype(np.float32)
    first = run_dlia(x, w, b, g, 1)
    for _ in range(20):
        for a, c in zip(run_dlia(x, w, b, g, 1), first):
            np.testing.assert_array_equal(a, c)


@needs_native
def test_calls_from_several_threads_at_once(monkeypatch):
    monkeypatch.setattr(native, "_SERIAL_BELOW", 0)
    x, w, b = arrays((8, 4, 16, 16), 8, (3, 3))
    want = run_dlia(x, w, b, np.ones((8, 8, 16, 16), np.float32), 1)[0]
    got, errors = [], []

    def work():
        try:
            got.append(run_dlia(x, w, b, np.ones((8, 8, 16, 16), np.float32), 1)[0])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(got) == 4
    for a in got:
        np.testing.assert_array_equal(a, want)


@pytest.mark.parametrize("change", [
    dict(dtype=np.float64), dict(stride=2), dict(dilation=2), dict(groups=2), dict(width=8), dict(padding=3),
])
def test_other_convolutions_take_the_numpy_path(change):
    dtype = change.get("dtype", np.float32)
    x = np.zeros((2, 4, 16, change.get("width", 20)), dtype)
    w = np.zeros((4, 4 // change.get("groups", 1), 3, 3), dtype)
    with mock.patch.object(native, "forward", wraps=native.forward) as spy:
        dlia.conv2d(dlia.tensor(x), dlia.tensor(w), stride=change.get("stride", 1), padding=change.get("padding", 1),
                    dilation=change.get("dilation", 1), groups=change.get("groups", 1))
    assert not spy.called


def test_inputs_the_kernels_cannot_stride_through_take_the_numpy_path():
    """A field of a structured array has strides that are no whole number of floats."""
    rec = np.zeros((2, 3, 16, 20), dtype=[("a", np.float32), ("pad", np.uint8)])
    rec["a"] = np.random.default_rng(0).standard_normal((2, 3, 16, 20))
    x = rec["a"]
    assert x.strides[-1] == 5
    w = np.ones((4, 3, 3, 3), np.float32)
    with mock.patch.object(native, "forward", wraps=native.forward) as spy:
        got = dlia.conv2d(dlia.tensor(x), dlia.tensor(w), padding=1).numpy()
    assert not spy.called
    want = F.conv2d(torch.tensor(np.ascontiguousarray(x)), torch.tensor(w), padding=1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_an_empty_batch_gives_empty_outputs_and_zero_gradients():
    x = dlia.tensor(np.zeros((0, 3, 20, 20), np.float32), requires_grad=True)
    w = dlia.tensor(np.ones((4, 3, 3, 3), np.float32), requires_grad=True)
    b = dlia.tensor(np.ones(4, np.float32), requires_grad=True)
    y = dlia.conv2d(x, w, b, padding=1)
    assert y.shape == (0, 4, 20, 20)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 20, 20) and not w.grad.numpy().any() and not b.grad.numpy().any()


def test_use_false_turns_them_off():
    x, w, _ = arrays((2, 3, 16, 16), 4, (3, 3))
    with native.use(False), mock.patch.object(native, "forward", wraps=native.forward) as spy:
        dlia.conv2d(dlia.tensor(x), dlia.tensor(w), padding=1)
    assert not spy.called


def test_a_library_from_another_source_version_is_not_used():
    k = native._KERNELS
    other = loader.KernelLibrary(k.module, k.prefix, k.version + 1, k.structs, k.functions)
    assert other.lib is None and not other.available
    if native.available:
        assert "version" in other.reason


@needs_native
def test_a_struct_that_differs_from_its_ctypes_mirror_is_refused():
    """_native.c exports sizeof(conv_geom): a field added on one side only must not be read at the wrong offsets."""
    class Longer(native._Geometry):
        _fields_ = [("extra", ctypes.c_long)]

    k = native._KERNELS
    other = loader.KernelLibrary(k.module, k.prefix, k.version, {"conv_geom": Longer}, k.functions)
    assert other.lib is None and "conv_geom" in other.reason and "Longer" in other.reason
    assert native.reason() is None  # the real mirror matches


def test_an_extension_that_was_not_built_says_so():
    other = loader.KernelLibrary("dlia.backend._no_such_kernels", "dlia_none", 1, {}, {})
    assert not other.available and "was not built" in other.reason


@needs_native
def test_a_forked_child_gets_its_own_threads():
    """GNU OpenMP's threads do not survive fork(): a child that convolves must not wait for them forever."""
    code = (
        "import os, numpy as np, dlia\n"
        "from dlia.backend import native\n"
        "native._SERIAL_BELOW = 0\n"  # the parent's small convolution uses both threads before the fork

        "x = dlia.tensor(np.ones((4, 2, 16, 16), np.float32)); w = dlia.tensor(np.ones((3, 2, 3, 3), np.float32))\n"
        "dlia.conv2d(x, w, padding=1)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    y = dlia.conv2d(x, w, padding=1).numpy()\n"
        "    os._exit(0 if y[0, 0, 5, 5] == 18 else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("env, want", [("1", 1), ("64", None), ("0", None), ("x", None), ("2,1", 2)])
def test_omp_num_threads_caps_the_threads(monkeypatch, env, want):
    monkeypatch.setenv("OMP_NUM_THREADS", env)
    monkeypatch.setattr(loader.os, "sched_getaffinity", lambda _: set(range(4)))
    assert loader.cores() == (4 if want is None else want)


def test_small_convolutions_run_on_one_thread(monkeypatch):
    """Waking a second core costs more than it saves below ~10 million multiply-adds."""
    monkeypatch.setattr(loader, "cores", lambda: 4)
    native._KERNELS.lib  # noqa: B018 - loaded in this process (a forked child that did not load it runs one thread)
    assert native._threads(8, 1_000_000) == 1
    assert native._threads(8, 50_000_000) == 4
    assert native._threads(3, 50_000_000) == 3  # no more threads than parts


def test_loading_leaves_the_environment_as_it_was():
    """The short OpenMP spin is set only while GNU OpenMP loads; children and torch do not inherit it."""
    code = "import os, dlia.backend.native as n; print(n.available, os.environ.get('GOMP_SPINCOUNT'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.split()[1] == "None", r.stdout + r.stderr
