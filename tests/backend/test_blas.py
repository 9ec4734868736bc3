"""Products on dlia's threads (dlia/backend/_blas.c, dlia/backend/blas.py) against NumPy in float64,
and the LSTM op and char-rnn step inside ``own_threads()`` against the same outside it."""

from __future__ import annotations

import ctypes
import shutil
import sysconfig

import numpy as np
import pytest

from dlia.backend import blas, loader

needs_path = pytest.mark.skipif(not blas.available, reason=f"products on dlia's threads unavailable: {blas.reason()}")

# (M, K, N, a transposed, b transposed): row and column splits, tall and wide, matrix-vector, odd sizes
SHAPES = [(300, 70, 40, False, False), (300, 70, 40, True, False), (40, 70, 300, False, True),
          (40, 70, 300, True, True), (2500, 64, 65, False, True), (65, 2500, 64, True, False),
          (1, 20000, 3, False, False), (9000, 3, 1, False, False), (17, 33, 1031, True, True)]


def operands(m, k, n, ta, tb, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    return (a.T if ta else a), (b.T if tb else b)


@pytest.fixture
def openblas_allows_3():
    """OpenBLAS's own thread count at 3 for the test (the tests run with OPENBLAS_NUM_THREADS=1,
    which caps dlia's split at one thread), then back."""
    get = ctypes.CFUNCTYPE(ctypes.c_int)(blas._openblas.get_threads)
    set_ = ctypes.CFUNCTYPE(None, ctypes.c_int)(blas._openblas.set_threads)
    before = get()
    set_(3)
    yield
    set_(before)


def test_the_path_is_there_where_numpy_ships_openblas():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc}) on this machine")
    config = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
    name = str(config.get("Build Dependencies", {}).get("blas", {}).get("name", ""))
    if "openblas" not in name:
        pytest.skip(f"NumPy is built on {name or 'an unknown BLAS'}, not its own OpenBLAS")
    assert blas.available, blas.reason()


@needs_path
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_products_match_numpy_in_float64(shape, threads, monkeypatch, openblas_allows_3):
    monkeypatch.setattr(blas, "SPLIT_FROM", 1)
    monkeypatch.setattr(blas, "VECTOR_FROM", 1)
    monkeypatch.setattr(blas, "THREADS_FROM", 1)
    monkeypatch.setattr(blas._KERNELS, "threads", lambda parts: threads)
    monkeypatch.setattr(blas, "_call", spy := Spy(blas._call))
    a, b = operands(*shape)
    with blas.own_threads():
        got = blas.matmul(a, b)
    assert spy.calls == 1, "the product did not take dlia's path"
    assert got.shape == (shape[0], shape[2]) and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


class Spy:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)


@needs_path
@pytest.mark.parametrize("shape", SHAPES[:6], ids=str)
def test_results_are_repeatable_and_agree_across_thread_counts(shape, openblas_allows_3):
    """The same call gives the same bits every time; other splits agree to float32 rounding (OpenBLAS
    picks its kernel by the size of each part, as it does for NumPy's own calls on 1 or 2 threads)."""
    a, b = operands(*shape)
    outs = {}
    for threads in (1, 2, 3, 2):
        out = np.empty((shape[0], shape[2]), np.float32)
        blas._call(a, b, out, threads)
        if threads in outs:
            np.testing.assert_array_equal(out, outs[threads])
        outs[threads] = out
    np.testing.assert_allclose(outs[2], outs[1], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(outs[3], outs[1], rtol=1e-5, atol=1e-4)


@needs_path
def test_strided_operands_and_out(monkeypatch):
    rng = np.random.default_rng(1)
    big = rng.standard_normal((400, 300), dtype=np.float32)
    a, b = big[::2, ::3], big[:100, 1::3].T[:, :90]  # neither C- nor F-ordered: copied first
    out = np.full((200, 90), np.nan, np.float32)
    with blas.own_threads():
        r = blas.matmul(a, b, out=out)
    assert r is out
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


@needs_path
def test_openblas_thread_count_is_restored(openblas_allows_3):
    get = ctypes.CFUNCTYPE(ctypes.c_int)(blas._openblas.get_threads)
    before = get()
    a, b = operands(600, 300, 500, False, False)
    with blas.own_threads():
        blas.matmul(a, b)
    assert get() == before


def test_outside_the_block_and_for_other_arrays_it_is_numpy(monkeypatch):
    monkeypatch.setattr(blas, "_call", lambda *a: pytest.fail("took dlia's path"))
    a, b = operands(600, 300, 500, False, False)
    np.testing.assert_array_equal(blas.matmul(a, b), a @ b)  # outside own_threads()
    with blas.own_threads():
        for x, y in [(a.astype(np.float64), b.astype(np.float64)), (a[:2, :3], b[:3, :4]),  # float64; small
                     (a[None], b[None])]:  # not 2-D
            np.testing.assert_array_equal(blas.matmul(x, y), x @ y)
        with blas.use(False):
            np.testing.assert_array_equal(blas.matmul(a, b), a @ b)
        out = np.empty((2, 4), np.float64)
        blas.matmul(a[:2, :3].astype(np.float64), b[:3, :4].astype(np.float64), out=out)
        np.testing.assert_array_equal(out, a[:2, :3].astype(np.float64) @ b[:3, :4])
    with pytest.raises(ValueError):
        blas.matmul(a, a)  # mismatched inner dimensions: NumPy's error


def test_blocks_nest():
    assert not blas.in_use()
    with blas.own_threads():
        with blas.own_threads():
            pass
        assert blas.in_use() == blas.available
    assert not blas.in_use() and blas._owned == 0


def test_missing_library_is_reported(monkeypatch):
    monkeypatch.setattr(blas, "_KERNELS", loader.KernelLibrary("dlia.backend._no_such_blas", "dlia_blas", 1, {}, {}))
    monkeypatch.setattr(blas, "_searched", False)
    monkeypatch.setattr(blas, "_openblas", None)
    assert not blas.available and "was not built" in blas.reason()
    a, b = operands(600, 300, 500, False, False)
    with blas.own_threads():
        np.testing.assert_array_equal(blas.matmul(a, b), a @ b)


@needs_path
def test_lstm_inside_the_block_matches_outside(openblas_allows_3):
    """The LSTM op (sequence kernels on several threads, products on dlia's threads) computes the
    same loss and gradients inside own_threads() as outside, to float32 rounding."""
    import dlia

    def run():
        gen = dlia.Generator(3)
        lstm = dlia.nn.LSTM(40, 64, num_layers=2, batch_first=True, generator=gen)
        head = dlia.nn.Linear(64, 30, generator=gen)
        x = dlia.tensor(np.random.default_rng(4).standard_normal((32, 50, 40), dtype=np.float32))
        out, _ = lstm(x)
        loss = (head(out) ** 2).mean()
        loss.backward()
        return [loss.item()] + [p.grad.numpy().copy() for p in [*lstm.parameters(), *head.parameters()]]

    outside = run()
    with blas.own_threads():
        inside = run()
    for o, i in zip(outside, inside, strict=True):
        np.testing.assert_allclose(i, o, rtol=2e-4, atol=1e-6)


@needs_path
def test_the_split_really_runs_on_several_threads(monkeypatch, openblas_allows_3):
    """With OpenBLAS allowing 3 threads and dlia asked for 3, the C code gets 3 (a spy on the entry point)."""
    seen = []
    real = blas._KERNELS.lib.dlia_blas_sgemm

    def spy(*args):
        seen.append(args[-1])
        return real(*args)

    monkeypatch.setattr(blas._KERNELS, "threads", lambda parts: 3)
    monkeypatch.setattr(blas._KERNELS, "_lib", type("L", (), {"dlia_blas_sgemm": staticmethod(spy)})())
    a, b = operands(600, 300, 500, False, False)
    with blas.own_threads():
        np.testing.assert_allclose(blas.matmul(a, b), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)
    assert seen == [3]


@needs_path
def test_views_with_a_stride_zero_axis_of_length_one(monkeypatch):
    """``v[:, None]`` and ``v[None]`` have stride 0 on their axis of length 1 (review: a crash)."""
    import dlia

    v = np.arange(300, dtype=np.float32)
    m = np.random.default_rng(0).standard_normal((300, 400), dtype=np.float32)
    cases = [(m.T, v[:, None]), (v[None], m), (np.broadcast_to(v, (1, 300)), m)]
    with blas.own_threads():
        for a, b in cases:
            np.testing.assert_allclose(blas.matmul(a, b), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-2)
        lin = dlia.nn.Linear(300, 200)
        x = dlia.tensor(v)
        np.testing.assert_allclose(lin(x[None]).numpy(), v[None] @ lin.weight.numpy().T + lin.bias.numpy(),
                                   rtol=1e-4, atol=1e-2)


@needs_path
def test_misaligned_operands_are_copied_first(monkeypatch):
    raw = np.zeros(2 * 600 * 300 + 1, np.float32).view(np.uint8)[2:2 + 4 * 600 * 300]
    a = raw.view(np.float32).reshape(600, 300)  # 2 bytes off a float boundary
    assert not a.flags.aligned
    a[...] = np.random.default_rng(0).standard_normal((600, 300))
    b = np.ones((300, 200), np.float32)
    seen = []
    real = blas._call
    monkeypatch.setattr(blas, "_call", lambda x, y, out, t: seen.append(x.flags.aligned) or real(x, y, out, t))
    with blas.own_threads():
        np.testing.assert_allclose(blas.matmul(a, b), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-2)
    assert seen == [True]


@needs_path
def test_out_that_numpy_must_handle(monkeypatch):
    """An out that overlaps an operand, is read-only or misaligned goes to NumPy: its result, its errors."""
    rng = np.random.default_rng(0)
    a, b = rng.random((512, 512), dtype=np.float32), rng.random((512, 512), dtype=np.float32)
    ref = a @ b
    with blas.own_threads():
        a2 = a.copy()
        blas.matmul(a2, b, out=a2)
        np.testing.assert_array_equal(a2, ref)
        b2 = b.copy()
        blas.matmul(a, b2, out=b2)
        np.testing.assert_array_equal(b2, ref)
        frozen = np.zeros((512, 512), np.float32)
        frozen.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            blas.matmul(a, b, out=frozen)
        assert not frozen.any()


@needs_path
def test_openblas_one_thread_keeps_the_lstm_kernels_on_one_thread(monkeypatch):
    from dlia.backend import rnn

    monkeypatch.setattr(loader, "cores", lambda: 4)
    monkeypatch.setattr(rnn._KERNELS, "threads", lambda rows: 4)
    with blas.own_threads():
        monkeypatch.setattr(blas, "openblas_threads", lambda: 1)
        assert rnn.seq_threads(50, 50, 128) == 1
        monkeypatch.setattr(blas, "openblas_threads", lambda: 8)
        assert rnn.seq_threads(50, 50, 128) == 4
    assert rnn.seq_threads(50, 50, 128) == 1  # outside the block
