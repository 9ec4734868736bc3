"""The compiled LSTM/GRU step kernels (dlia/backend/_rnn.c) against the NumPy reference cells of
dlia/core/ops/rnn.py, float64, and each other."""

from __future__ import annotations

import shutil
import sysconfig
from unittest import mock

import numpy as np
import pytest
from numpy.lib.array_utils import byte_bounds

from dlia.backend import loader
from dlia.backend import rnn as kernels
from dlia.core.ops import rnn as ops

needs_kernels = pytest.mark.skipif(not kernels.available, reason="the RNN kernels were not built (no C compiler)")


def test_the_kernels_are_built_where_a_c_compiler_exists():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc}) on this machine")
    assert kernels.available, f"a C compiler exists but _rnn.c was not built: {kernels.reason()}"


def randn(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


# -- σ, tanh and exp of the C code -------------------------------------------------------------
def _wide_range():
    """Every scale from 1e-30 to 1e4, both signs, plus a dense grid where the branches meet."""
    x = np.concatenate([np.geomspace(1e-30, 1e4, 400_000), np.linspace(0, 20, 400_001)]).astype(np.float32)
    return np.concatenate([x, -x])


@needs_kernels
@pytest.mark.parametrize("which", ["exp", "sigmoid", "tanh"])
def test_elementary_functions_are_within_2e_7_relative_error(which):
    x = _wide_range()
    if which == "exp":
        x = x[(x > -87.3) & (x < 88)]  # the range the kernels use it on (beyond, it saturates: below)
    with np.errstate(over="ignore"):  # 1 / (1 + e^800) is 0, as it should be
        exact = {"exp": np.exp, "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh}[which](x.astype(np.float64))
    ours = kernels.elementary(which, x)
    assert np.isfinite(ours).all()
    normal = np.abs(exact) >= np.finfo(np.float32).tiny  # below, float32 itself has no relative precision
    rel = np.abs(ours[normal] - exact[normal]) / np.abs(exact[normal])
    assert rel.max() <= 2e-7, (which, rel.max(), x[normal][rel.argmax()])
    # the saturated ends: no overflow, the limits exactly
    big = np.array([1e4, 1e30, np.inf, 100.0], np.float32)
    if which == "sigmoid":
        np.testing.assert_array_equal(kernels.elementary(which, big), 1.0)
        assert (kernels.elementary(which, -big) < 2e-38).all() and (kernels.elementary(which, -big) >= 0).all()
    elif which == "tanh":
        np.testing.assert_array_equal(kernels.elementary(which, big), 1.0)
        np.testing.assert_array_equal(kernels.elementary(which, -big), -1.0)
        np.testing.assert_array_equal(kernels.elementary(which, np.float32([0.0, -0.0])), [0.0, -0.0])
    assert np.isnan(kernels.elementary(which, np.float32([np.nan]))).all()  # a diverged run stays visible


# -- one step: kernel vs the NumPy reference ----------------------------------------------------
SHAPES = [(b, h) for b in (1, 3, 50) for h in (1, 7, 128, 513)]


def close(ours, ref, what):
    """float32 rounding: within a few ulp of each value and of the array's scale. (The reference's
    σ = ½(1 + tanh(z/2)) is off by up to ~6e-8 absolute where σ is near 0; the kernel's is not.)"""
    assert ours.dtype == np.float32 and np.isfinite(ours).all(), what
    np.testing.assert_allclose(ours, ref, rtol=2e-6, atol=1e-6 * max(1.0, np.abs(ref).max()), err_msg=what)


def lstm_inputs(rng, b, h, scale=2.0):
    return dict(gx=randn(rng, b, 4 * h, scale=scale), gh=randn(rng, b, 4 * h, scale=scale), c_prev=randn(rng, b, h))


def run_lstm(compiled, gx, gh, c_prev, dy, dh, dc):
    b, h = c_prev.shape
    acts, dpre = np.empty((b, 4 * h), np.float32), np.empty((b, 4 * h), np.float32)
    c, hh, tc, dc = np.empty((b, h), np.float32), np.empty((b, h), np.float32), np.empty((b, h), np.float32), dc.copy()
    if compiled:
        kernels.lstm_fwd(gx, gh, c_prev, acts, c, hh, tc)
        kernels.lstm_bwd(acts, c_prev, tc, dy, dh, dc, dpre)
    else:
        ops.lstm_cell_forward(np, gx, gh, c_prev, acts, c, hh, tc)
        ops.lstm_cell_backward(np, acts, c_prev, tc, dy, dh, dc, dpre)
    return dict(acts=acts, c=c, h=hh, tc=tc, dc=dc, dpre=dpre)


def run_gru(compiled, gx, gh, b_hh, h_prev, dy, dh, dh_dir):
    b, h = h_prev.shape
    acts, hh = np.empty((b, 4 * h), np.float32), np.empty((b, h), np.float32)
    dgx, dgh, dh_dir = np.empty((b, 3 * h), np.float32), np.empty((b, 3 * h), np.float32), dh_dir.copy()
    if compiled:
        kernels.gru_fwd(gx, gh, b_hh, h_prev, acts, hh)
        kernels.gru_bwd(acts, h_prev, dy, dh, dh_dir, dgx, dgh)
    else:
        ops.gru_cell_forward(np, gx, gh, b_hh, h_prev, acts, hh)
        ops.gru_cell_backward(np, acts, h_prev, dy, dh, dh_dir, dgx, dgh)
    return dict(acts=acts, h=hh, dh_dir=dh_dir, dgx=dgx, dgh=dgh)


@needs_kernels
@pytest.mark.parametrize("b, h", SHAPES)
def test_lstm_step_matches_the_numpy_reference(b, h):
    rng = np.random.default_rng(b * 1000 + h)
    grads = dict(dy=randn(rng, b, h), dh=randn(rng, b, h), dc=randn(rng, b, h))
    args = {**lstm_inputs(rng, b, h), **grads}
    ours, ref = run_lstm(True, **args), run_lstm(False, **args)
    for name in ref:
        close(ours[name], ref[name], name)


@needs_kernels
@pytest.mark.parametrize("b, h", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_gru_step_matches_the_numpy_reference(b, h, bias):
    rng = np.random.default_rng(b * 1000 + h)
    args = dict(gx=randn(rng, b, 3 * h, scale=2), gh=randn(rng, b, 3 * h, scale=2),
                b_hh=randn(rng, 3 * h) if bias else None, h_prev=randn(rng, b, h),
                dy=randn(rng, b, h), dh=randn(rng, b, h), dh_dir=randn(rng, b, h))
    ours, ref = run_gru(True, **args), run_gru(False, **args)
    for name in ref:
        close(ours[name], ref[name], name)


@needs_kernels
def test_the_step_matches_float64():
    """Both float32 paths near the exact values (the reference is itself float32)."""
    rng = np.random.default_rng(5)
    args = {**lstm_inputs(rng, 4, 33), "dy": randn(rng, 4, 33), "dh": randn(rng, 4, 33), "dc": randn(rng, 4, 33)}
    ours = run_lstm(True, **args)
    exact = {k: v.astype(np.float64) for k, v in args.items()}
    acts64, dpre64 = np.empty((4, 132)), np.empty((4, 132))
    c64, h64, tc64 = np.empty((4, 33)), np.empty((4, 33)), np.empty((4, 33))
    ops.lstm_cell_forward(np, exact["gx"], exact["gh"], exact["c_prev"], acts64, c64, h64, tc64)
    ops.lstm_cell_backward(np, acts64, exact["c_prev"], tc64, exact["dy"], exact["dh"], exact["dc"], dpre64)
    for name, ref in dict(acts=acts64, c=c64, h=h64, tc=tc64, dc=exact["dc"], dpre=dpre64).items():
        assert np.abs(ours[name] - ref).max() / (np.abs(ref).max() + 1e-30) < 1e-6, name


@needs_kernels
@pytest.mark.parametrize("scale", [30.0, 1e4])
def test_large_pre_activations_saturate_without_nan(scale):
    rng = np.random.default_rng(7)
    b, h = 3, 40
    lstm = {**lstm_inputs(rng, b, h, scale=scale), "dy": randn(rng, b, h), "dh": randn(rng, b, h), "dc": randn(rng, b, h)}
    ours, ref = run_lstm(True, **lstm), run_lstm(False, **lstm)
    for name in ref:
        assert np.isfinite(ref[name]).all()
        np.testing.assert_allclose(ours[name], ref[name], rtol=2e-6, atol=1e-6, err_msg=name)
    gru = dict(gx=randn(rng, b, 3 * h, scale=scale), gh=randn(rng, b, 3 * h, scale=scale), b_hh=randn(rng, 3 * h),
               h_prev=randn(rng, b, h), dy=randn(rng, b, h), dh=randn(rng, b, h), dh_dir=randn(rng, b, h))
    ours, ref = run_gru(True, **gru), run_gru(False, **gru)
    for name in ref:
        assert np.isfinite(ref[name]).all()
        np.testing.assert_allclose(ours[name], ref[name], rtol=2e-6, atol=1e-6 * max(1.0, np.abs(ref[name]).max()),
                                   err_msg=name)


@needs_kernels
def test_in_place_arguments_the_layer_loop_uses():
    """acts written over gx (the LSTM op does this), h over h_prev, dy and dh the same array."""
    rng = np.random.default_rng(3)
    b, h = 5, 19
    a = lstm_inputs(rng, b, h)
    dh = randn(rng, b, h)
    ref = run_lstm(False, **a, dy=dh, dh=dh, dc=randn(rng, b, h))
    rng = np.random.default_rng(3)
    a = lstm_inputs(rng, b, h)
    dh, dc = randn(rng, b, h), randn(rng, b, h)
    gx = a["gx"].copy()
    c, hh, tc = (np.empty((b, h), np.float32) for _ in range(3))
    dpre = np.empty((b, 4 * h), np.float32)
    kernels.lstm_fwd(gx, a["gh"], a["c_prev"], gx, c, hh, tc)
    kernels.lstm_bwd(gx, a["c_prev"], tc, dh, dh, dc, dpre)
    for name, ours in dict(acts=gx, c=c, h=hh, tc=tc, dc=dc, dpre=dpre).items():
        close(ours, ref[name], name)

    g = dict(gx=randn(rng, b, 3 * h), gh=randn(rng, b, 3 * h), b_hh=randn(rng, 3 * h), h_prev=randn(rng, b, h))
    ref = run_gru(False, **g, dy=randn(rng, b, h), dh=np.zeros((b, h), np.float32), dh_dir=randn(rng, b, h))
    hp, acts = g["h_prev"].copy(), np.empty((b, 4 * h), np.float32)
    kernels.gru_fwd(g["gx"], g["gh"], g["b_hh"], hp, acts, hp)  # h over h_prev
    close(hp, ref["h"], "h in place")


@needs_kernels
def test_the_array_form_refuses_what_the_c_code_would_misread():
    rng = np.random.default_rng(0)
    a = lstm_inputs(rng, 2, 3)
    out = [np.empty((2, 12), np.float32)] + [np.empty((2, 3), np.float32) for _ in range(3)]
    with pytest.raises(ValueError, match="gh must have shape"):
        kernels.lstm_fwd(a["gx"], a["gh"][:, :8].copy(), a["c_prev"], *out)
    with pytest.raises(TypeError, match="float32"):
        kernels.lstm_fwd(a["gx"].astype(np.float64), a["gh"], a["c_prev"], *out)
    with pytest.raises(TypeError, match="C-contiguous"):
        kernels.lstm_fwd(np.asfortranarray(a["gx"]), a["gh"], a["c_prev"], *out)


# -- the steppers: a layer's time loop, compiled vs NumPy ---------------------------------------
def lstm_sequence(t, b, h, seed=0, dy_view=None):
    """Runs the LSTM op's loop shape through the steppers: forward over t steps, then backward."""
    rng = np.random.default_rng(seed)
    w = randn(rng, h, 4 * h, scale=0.3)
    acts = randn(rng, t, b, 4 * h)  # the input projection, overwritten with the gates
    cseq, hseq, tc = np.empty((t + 1, b, h), np.float32), np.empty((t + 1, b, h), np.float32), np.empty((t, b, h), np.float32)
    cseq[0], hseq[0] = randn(rng, b, h), randn(rng, b, h)
    gh = np.empty((b, 4 * h), np.float32)
    step = ops.lstm_forward_stepper(np, acts, gh, cseq, acts, hseq, tc)
    for s in range(t):
        np.matmul(hseq[s], w, out=gh)
        step(s)
    g = randn(rng, t, b, h)
    dy = g if dy_view is None else dy_view(g)
    dpre, dh, dc = np.empty((t, b, 4 * h), np.float32), np.zeros((b, h), np.float32), randn(rng, b, h)
    back = ops.lstm_backward_stepper(np, acts, cseq, tc, dy, dh, dc, dpre)
    for s in range(t - 1, -1, -1):
        back(s)
        np.matmul(dpre[s], w.T, out=dh)
    return [acts, cseq, hseq, tc, dpre, dh, dc]


def gru_sequence(t, b, h, seed=0, bias=True, dy_view=None):
    rng = np.random.default_rng(seed)
    w = randn(rng, h, 3 * h, scale=0.3)
    gx = randn(rng, t, b, 3 * h)
    b_hh = randn(rng, 3 * h) if bias else None
    acts, hseq = np.empty((t, b, 4 * h), np.float32), np.empty((t + 1, b, h), np.float32)
    hseq[0] = randn(rng, b, h)
    gh = np.empty((b, 3 * h), np.float32)
    step = ops.gru_forward_stepper(np, gx, gh, b_hh, hseq, acts)
    for s in range(t):
        np.matmul(hseq[s], w, out=gh)
        step(s)
    g = randn(rng, t, b, h)
    dy = g if dy_view is None else dy_view(g)
    dgx, dgh = np.empty((t, b, 3 * h), np.float32), np.empty((t, b, 3 * h), np.float32)
    dh, dh_dir = np.zeros((b, h), np.float32), np.zeros((b, h), np.float32)
    back = ops.gru_backward_stepper(np, acts, hseq, dy, dh, dh_dir, dgx, dgh)
    for s in range(t - 1, -1, -1):
        back(s)
        np.matmul(dgh[s], w.T, out=dh)
    return [acts, hseq, dgx, dgh, dh, dh_dir]


VIEWS = {"contiguous": None, "reversed": lambda g: g[::-1], "broadcast": lambda g: np.broadcast_to(g[:1], g.shape)}


@needs_kernels
@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("cell", ["lstm", "gru", "gru-no-bias"])
def test_steppers_compiled_and_numpy_agree_over_a_sequence(cell, view):
    run = {"lstm": lstm_sequence, "gru": gru_sequence, "gru-no-bias": lambda *a, **k: gru_sequence(*a, bias=False, **k)}[cell]
    cells = ["lstm_cell_forward", "lstm_cell_backward", "gru_cell_forward", "gru_cell_backward"]
    with mock.patch.multiple(ops, **{name: mock.DEFAULT for name in cells}) as numpy_cells:
        compiled = run(12, 6, 37, dy_view=VIEWS[view])
    assert not any(m.called for m in numpy_cells.values())  # every step ran compiled
    with kernels.use(False):
        reference = run(12, 6, 37, dy_view=VIEWS[view])
    for ours, ref in zip(compiled, reference):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@needs_kernels
@pytest.mark.parametrize("view", VIEWS)
def test_every_address_a_step_passes_lies_in_an_array_it_keeps_alive(view, monkeypatch):
    """The C code trusts its pointers: each must point into a live array (including the copy the
    backward stepper makes of a broadcast dy), with the whole block inside it."""
    real = kernels.entry_points()
    calls = []

    def recorder(fn, sizes):
        def call(rows, hidden, *args):  # a size is k (k·rows·hidden floats) or a function of (rows, hidden)
            floats = [k(rows, hidden) if callable(k) else k * rows * hidden for k in sizes]
            calls.append((fn, [(a, n * 4) for a, n in zip(args[:-1], floats)]))
            return fn(rows, hidden, *args)
        return call

    def packed(rows, hidden):
        return (hidden + 15) // 16 * hidden * 64

    monkeypatch.setattr(kernels, "entry_points", lambda: kernels.EntryPoints(
        recorder(real.lstm_fwd, (4, 4, 1, 4, 1, 1, 1)), recorder(real.lstm_bwd, (4, 1, 1, 1, 1, 1, 4)),
        recorder(real.gru_fwd, (3, 3, 1, 1, 4, 1)), recorder(real.gru_bwd, (4, 1, 1, 1, 1, 3, 3)),  # b_hh: 3H = 1·rows·H
        recorder(real.lstm_fwd_fused, (4, 1, packed, 1, 4, 1, 1, 1)), real.lstm_fwd_seq, real.lstm_bwd_seq))
    steppers = []
    real_bind = ops._bind
    monkeypatch.setattr(ops, "_bind", lambda *a: steppers.append(real_bind(*a)) or steppers[-1])
    lstm_sequence(5, 3, 8, dy_view=VIEWS[view])
    gru_sequence(5, 3, 8, dy_view=VIEWS[view])  # 3 rows: b_hh's 3H floats are 1·rows·H
    fused_sequence(5, 3, 8)
    assert len(calls) == 5 * 5 and len(steppers) == 5
    kept = [byte_bounds(a) for step in steppers for a in step.arrays]
    for _, args in calls:
        for address, size in args:
            if address is not None:
                assert any(lo <= address and address + size <= hi for lo, hi in kept), "outside every kept array"


@needs_kernels
def test_a_compiled_step_takes_the_kernel_and_checks_its_index():
    b, h, t = 2, 3, 4
    acts, gh = np.zeros((t, b, 4 * h), np.float32), np.zeros((b, 4 * h), np.float32)
    cseq, hseq, tc = np.ones((t + 1, b, h), np.float32), np.zeros((t + 1, b, h), np.float32), np.zeros((t, b, h), np.float32)
    cseq[t - 1] = np.random.default_rng(0).standard_normal((b, h))
    with mock.patch.object(ops, "lstm_cell_forward") as numpy_cell:
        step = ops.lstm_forward_stepper(np, acts, gh, cseq, acts, hseq, tc)
        step(t - 1)
    assert not numpy_cell.called
    # zero pre-activations: every gate σ(0) = ½, g = tanh(0) = 0, so c = ½·c_prev and h = ½·tanh(c)
    np.testing.assert_allclose(cseq[t], 0.5 * cseq[t - 1], rtol=1e-6)
    np.testing.assert_allclose(hseq[t], 0.5 * np.tanh(0.5 * cseq[t - 1]), rtol=1e-6)
    assert (hseq[:t] == 0).all() and (cseq[:t - 1] == 1).all()  # only step t - 1's blocks were written
    for s in (t, -1):  # the C code must never be handed addresses outside the arrays
        with pytest.raises(IndexError):
            step(s)


@pytest.mark.parametrize("why", ["use(False)", "float64", "a non-contiguous block", "not built"])
def test_the_numpy_reference_runs_where_the_kernels_cannot(why, monkeypatch):
    b, h, t = 3, 5, 2
    dtype = np.float64 if why == "float64" else np.float32
    acts = np.random.default_rng(0).standard_normal((t, b, 4 * h)).astype(dtype)
    if why == "a non-contiguous block":
        acts = np.asfortranarray(acts)
    gh, tc = np.zeros((b, 4 * h), dtype), np.zeros((t, b, h), dtype)
    cseq, hseq = np.zeros((t + 1, b, h), dtype), np.zeros((t + 1, b, h), dtype)
    if why == "not built":
        monkeypatch.setattr(kernels, "_KERNELS", loader.KernelLibrary("dlia.backend._no_such_rnn", "dlia_rnn", 1, {}, {}))
        assert not kernels.available and "was not built" in kernels.reason()
        assert kernels.entry_points() is None
    with kernels.use(why != "use(False)"), mock.patch.object(ops, "lstm_cell_forward",
                                                             wraps=ops.lstm_cell_forward) as numpy_cell:
        step = ops.lstm_forward_stepper(np, acts, gh, cseq, acts, hseq, tc)
        step(0)
    assert numpy_cell.called
    assert hseq[1].dtype == dtype and np.isfinite(hseq[1]).all()


def test_use_restores_the_previous_setting():
    with kernels.use(False):
        assert kernels.entry_points() is None and not kernels.applies(np.zeros(1, np.float32))
        with kernels.use(True):
            assert kernels.applies(np.zeros(1, np.float32)) == kernels.available
        assert kernels.entry_points() is None
    assert (kernels.entry_points() is not None) == kernels.available


def test_a_library_from_another_source_version_is_not_used():
    k = kernels._KERNELS
    other = loader.KernelLibrary(k.module, k.prefix, k.version + 1, k.structs, k.functions)
    assert other.lib is None and not other.available
    if kernels.available:
        assert "version" in other.reason and "rebuild" in other.reason


@needs_kernels
@pytest.mark.parametrize("cores", [1, 2, 3])
def test_results_do_not_depend_on_the_thread_count(cores, monkeypatch):
    base = lstm_sequence(3, 7, 300) + gru_sequence(3, 7, 300)
    monkeypatch.setattr(kernels, "_SERIAL_BELOW", 0)
    with mock.patch.object(loader, "cores", lambda: cores):
        assert kernels.threads(7, 10) == min(cores, 7)
        other = lstm_sequence(3, 7, 300) + gru_sequence(3, 7, 300)
    for a, c in zip(other, base):
        np.testing.assert_array_equal(a, c)


# -- the fused LSTM forward step: its own product with the packed W_hh, then the gate math --------
def fused_sequence(t, b, h, seed=0, fused=True):
    """t LSTM forward steps from a random W_hh (4H, H), with the fused kernel or with the BLAS
    product + lstm_forward_stepper (the reference path, compiled or NumPy as kernels.use says)."""
    rng = np.random.default_rng(seed)
    w_hh = randn(rng, 4 * h, h, scale=0.3)
    acts = randn(rng, t, b, 4 * h)  # the projection, overwritten with the gates
    hseq, cseq, tc = (np.empty((t + 1, b, h), np.float32) for _ in range(3))
    hseq[0], cseq[0] = randn(rng, b, h), randn(rng, b, h)
    step = ops.lstm_fused_forward_stepper(np, w_hh, acts, cseq, acts, hseq, tc) if fused else None
    if fused:
        assert step is not None
        for s in range(t):
            step(s)
    else:
        gh = np.empty((b, 4 * h), np.float32)
        plain = ops.lstm_forward_stepper(np, acts, gh, cseq, acts, hseq, tc)
        for s in range(t):
            np.matmul(hseq[s], w_hh.T, out=gh)
            plain(s)
    return [acts, hseq, cseq, tc[:t]]


@needs_kernels
@pytest.mark.parametrize(("b", "h"), [(1, 1), (5, 7), (6, 16), (7, 17), (13, 40), (50, 33)])
def test_fused_lstm_step_matches_the_product_and_the_numpy_cell(b, h):
    """Batch sizes around the 6-row blocks, hidden sizes around the 16-unit panels."""
    ours = fused_sequence(6, b, h)
    with kernels.use(False):
        reference = fused_sequence(6, b, h, fused=False)
    for a, r in zip(ours, reference):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=2e-6 * max(1.0, np.abs(r).max()))


@needs_kernels
def test_fused_lstm_step_is_not_used_where_the_kernels_are_off():
    w, acts = np.zeros((8, 2), np.float32), np.zeros((1, 1, 8), np.float32)
    seqs = [np.zeros((2, 1, 2), np.float32) for _ in range(3)]
    with kernels.use(False):
        assert ops.lstm_fused_forward_stepper(np, w, acts, seqs[0], acts, seqs[1], seqs[2]) is None
    assert ops.lstm_fused_forward_stepper(np, w.astype(np.float64), acts, seqs[0], acts, seqs[1], seqs[2]) is None


@needs_kernels
@pytest.mark.parametrize("h", [1, 16, 21])
def test_lstm_pack_puts_the_four_gates_of_16_units_in_each_row_of_a_panel(h):
    w = np.random.default_rng(0).standard_normal((4 * h, h)).astype(np.float32)
    packed = kernels.lstm_pack(w)
    assert packed.shape == ((h + 15) // 16, h, 64)
    for p in range(packed.shape[0]):
        for q in range(4):
            for lane in range(16):
                u = 16 * p + lane
                expected = w[q * h + u] if u < h else np.zeros(h, np.float32)
                np.testing.assert_array_equal(packed[p, :, q * 16 + lane], expected)
    with pytest.raises(ValueError, match="shape"):
        kernels.lstm_pack(w[:-1])


@needs_kernels
@pytest.mark.parametrize("cores", [2, 3])
def test_fused_results_do_not_depend_on_the_thread_count(cores, monkeypatch):
    base = fused_sequence(3, 7, 70)
    monkeypatch.setattr(kernels, "_FUSED_SERIAL_BELOW", 0)
    with mock.patch.object(loader, "cores", lambda: cores):
        assert kernels.fused_threads(7, 70) == cores
        other = fused_sequence(3, 7, 70)
    for a, c in zip(other, base):
        np.testing.assert_array_equal(a, c)


# -- whole sequences in one call: the LSTM forward and backward with their products, rows split ----
def whole_sequence(t, b, h, seed=0, sequence=True, dy_view=None):
    """t LSTM steps forward, then back, from a random W_hh (4H, H), projection, initial state, output
    gradients and final-state gradients: with the sequence kernels (both must apply), or step by
    step on the NumPy reference cells and NumPy products (``sequence=False``)."""
    rng = np.random.default_rng(seed)
    w_hh = randn(rng, 4 * h, h, scale=0.3)
    acts = randn(rng, t, b, 4 * h)  # the projection, overwritten with the gates
    hseq, cseq = (np.empty((t + 1, b, h), np.float32) for _ in range(2))
    tc = np.empty((t, b, h), np.float32)
    hseq[0], cseq[0] = randn(rng, b, h), randn(rng, b, h)
    g, dh, dc = randn(rng, t, b, h), randn(rng, b, h), randn(rng, b, h)
    dy = g if dy_view is None else dy_view(g)
    dpre = np.empty((t, b, 4 * h), np.float32)
    if sequence:
        assert ops.lstm_forward_sequence(w_hh, acts, hseq, cseq, acts, tc)
        assert ops.lstm_backward_sequence(w_hh, acts, cseq, tc, dy, dh, dc, dpre)
    else:
        for s in range(t):
            ops.lstm_cell_forward(np, acts[s], hseq[s] @ w_hh.T, cseq[s], acts[s], cseq[s + 1], hseq[s + 1], tc[s])
        for s in range(t - 1, -1, -1):
            ops.lstm_cell_backward(np, acts[s], cseq[s], tc[s], dy[s], dh, dc, dpre[s])
            dh[...] = dpre[s] @ w_hh
    return [acts, hseq, cseq, tc, dpre, dh, dc]


@needs_kernels
@pytest.mark.parametrize(("b", "h"), [(0, 3), (1, 1), (2, 5), (7, 16), (13, 17), (25, 64), (50, 65), (31, 130)])
def test_sequence_kernels_match_the_numpy_cells_and_products(b, h):
    """Batch sizes around the row blocks (≤ 6 rows) and the thread split, hidden sizes around the
    forward's 16-unit panels, the backward's 64-column panels and the 128-row chunks of a sum."""
    ours = whole_sequence(5, b, h)
    reference = whole_sequence(5, b, h, sequence=False)
    for a, r in zip(ours, reference):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(r).max(initial=0.0)))


@needs_kernels
@pytest.mark.parametrize("view", ["reversed", "broadcast"])
def test_the_sequence_backward_reads_any_output_gradient_layout(view):
    ours = whole_sequence(4, 3, 9, dy_view=VIEWS[view])
    reference = whole_sequence(4, 3, 9, dy_view=lambda g: np.ascontiguousarray(VIEWS[view](g)))
    for a, r in zip(ours, reference):
        np.testing.assert_array_equal(a, r)


@needs_kernels
@pytest.mark.parametrize("cores", [2, 3])
def test_sequence_results_do_not_depend_on_the_thread_count(cores, monkeypatch):
    """Each thread runs whole rows, in the same order of sums: bit-identical results."""
    base = whole_sequence(3, 13, 70)
    monkeypatch.setattr(kernels, "_SEQ_SERIAL_BELOW", 0)
    monkeypatch.setattr(kernels.blas, "in_use", lambda: True)  # as inside blas.own_threads()
    monkeypatch.setattr(kernels.blas, "openblas_threads", lambda: 64)  # the tests run with OPENBLAS_NUM_THREADS=1
    with mock.patch.object(loader, "cores", lambda: cores):
        assert kernels.seq_threads(3, 13, 70) == cores
        other = whole_sequence(3, 13, 70)
        monkeypatch.setattr(loader, "cores", lambda: 5)  # more threads than rows: some have none
        monkeypatch.setattr(kernels._KERNELS, "threads", lambda rows: 5)
        fewer_rows = whole_sequence(3, 2, 9)
    for a, c in zip(other, base):
        np.testing.assert_array_equal(a, c)
    for a, c in zip(fewer_rows, whole_sequence(3, 2, 9)):
        np.testing.assert_array_equal(a, c)


@needs_kernels
@pytest.mark.parametrize("why", ["use(False)", "float64", "a non-contiguous array", "switched off"])
def test_the_sequence_kernels_decline_without_touching_anything(why, monkeypatch):
    t, b, h = 2, 3, 4
    w = np.ones((4 * h, h), np.float64 if why == "float64" else np.float32)
    acts, dpre = np.ones((t, b, 4 * h), np.float32), np.ones((t, b, 4 * h), np.float32)
    hseq, cseq, tc = np.ones((t + 1, b, h), np.float32), np.ones((t + 1, b, h), np.float32), np.ones((t, b, h), np.float32)
    dy, dh, dc = np.ones((t, b, h), np.float32), np.ones((b, h), np.float32), np.ones((b, h), np.float32)
    if why == "a non-contiguous array":
        hseq = np.ones((t + 1, b, 2 * h), np.float32)[:, :, :h]
        dpre = np.ones((t, b, 8 * h), np.float32)[:, :, ::2]
    if why == "switched off":
        monkeypatch.setattr(ops, "SEQUENCE_KERNELS", False)
    arrays = [acts, hseq, cseq, tc, dy, dh, dc, dpre]
    before = [a.copy() for a in arrays]
    with kernels.use(why != "use(False)"):
        assert not ops.lstm_forward_sequence(w, acts, hseq, cseq, acts, tc)
        assert not ops.lstm_backward_sequence(w, acts, cseq, tc, dy, dh, dc, dpre)
    for a, c in zip(arrays, before):
        np.testing.assert_array_equal(a, c)


@needs_kernels
@pytest.mark.parametrize("h", [1, 64, 70])
def test_lstm_pack_bwd_puts_64_columns_of_w_hh_in_each_row_of_a_panel(h):
    w = np.random.default_rng(0).standard_normal((4 * h, h)).astype(np.float32)
    packed = kernels.lstm_pack_bwd(w)
    assert packed.shape == ((h + 63) // 64, 4 * h, 64)
    padded = np.zeros((4 * h, packed.shape[0] * 64), np.float32)
    padded[:, :h] = w
    for p in range(packed.shape[0]):
        np.testing.assert_array_equal(packed[p], padded[:, 64 * p:64 * p + 64])
    with pytest.raises(ValueError, match="shape"):
        kernels.lstm_pack_bwd(w[:-1])


@needs_kernels
@pytest.mark.parametrize("reverse", [False, True])
def test_the_lstm_op_gives_the_same_values_and_gradients_with_and_without_the_sequence_kernels(reverse, monkeypatch):
    import dlia

    rng = np.random.default_rng(1)
    t, b, i, h = 6, 7, 5, 20
    inputs = [randn(rng, t, b, i), randn(rng, b, h), randn(rng, b, h), randn(rng, 4 * h, i, scale=0.3),
              randn(rng, 4 * h, h, scale=0.3), randn(rng, 4 * h), randn(rng, 4 * h)]
    g = randn(rng, t + 1, b, h)
    results = []
    for flag in (True, False):
        monkeypatch.setattr(ops, "SEQUENCE_KERNELS", flag)
        calls = mock.patch.object(ops, "lstm_backward_stepper", wraps=ops.lstm_backward_stepper)
        tensors = [dlia.Tensor(a, requires_grad=True) for a in inputs]
        with calls as stepper:
            out = ops.LSTM.apply(*tensors, reverse=reverse)
            (out * dlia.Tensor(g)).sum().backward()
        assert stepper.called != flag  # the sequence kernels ran where they were on
        results.append([out.numpy()] + [x.grad.numpy() for x in tensors])
    for a, r in zip(*results):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(r).max()))
