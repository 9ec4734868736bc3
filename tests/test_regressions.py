"""Regression tests for bugs found in review (one test each)."""

import numpy as np
import pytest

import dlia
from dlia import graph as G
from dlia import nn, optim
from dlia.io import CheckpointError, load_checkpoint, save_checkpoint


def test_fed_nodes_are_never_merged_with_their_twins():
    g = G.Graph()
    x = G.placeholder((2,), graph=g)
    h1, h2 = dlia.exp(x), dlia.exp(x)
    out = h1 + h2
    with G.Session(g) as s:
        assert s.run(out, {x: [0.0, 0.0], h2: [100.0, 100.0]}).tolist() == [101.0, 101.0]
        assert s.run(out, {x: [0.0, 0.0], h1: [100.0, 100.0]}).tolist() == [101.0, 101.0]


def test_a_later_gradients_call_does_not_break_an_earlier_one():
    g = G.Graph()
    w = G.Variable(np.ones((2, 2), np.float32), graph=g)
    x1, x2 = G.placeholder((3, 2), graph=g), G.placeholder((3, 2), graph=g)
    m1, m2 = x1 @ w, x2 @ w
    ga = G.gradients(m1.sum(), w)
    gb = G.gradients((m1 * m2).sum(), w)  # w shared by two matmuls: stacked gradient
    feed = {x1: np.ones((3, 2)), x2: np.full((3, 2), 2.0)}
    with G.Session(g) as s:
        a, b = s.run([ga, gb], feed)
    np.testing.assert_allclose(a, np.full((2, 2), 3.0))
    wt = dlia.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    ((dlia.tensor(feed[x1]) @ wt) * (dlia.tensor(feed[x2]) @ wt)).sum().backward()
    np.testing.assert_allclose(b, wt.grad.numpy())


def test_compiled_backward_twice_is_a_clear_error():
    w = dlia.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    f = dlia.compile(lambda x: dlia.tanh(x @ w).sum())
    loss = f(dlia.ones(4, 3))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match=r"retain_graph=True\) is not supported"):
        loss.backward()


def test_compile_traces_int_and_float_constants_separately():
    f = dlia.compile(lambda x, k: x * k)
    a = dlia.tensor(np.array([3, 4]))
    assert f(a, 2).dtype == np.int64
    assert f(a, 2.0).numpy().dtype == (a * 2.0).numpy().dtype


def test_adam_on_a_zero_dimensional_parameter():
    p = dlia.tensor(np.array(1.0, np.float32), requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    (p * p).backward()
    opt.step()
    assert p.item() == pytest.approx(0.9)


def test_zero_dimensional_optimizer_state_survives_a_checkpoint(tmp_path):
    def run(round_trip):
        q = dlia.tensor(np.array(1.0, np.float32), requires_grad=True)
        opt = optim.SGD([q], lr=0.1, momentum=0.9)
        for k in range(4):
            if k == 1 and round_trip:
                model = nn.Module()
                model.q = nn.Parameter(q)
                save_checkpoint(tmp_path / "c.npz", model, opt)
                q2 = nn.Parameter(np.array(0.0, np.float32))
                m2 = nn.Module()
                m2.q = q2
                opt = optim.SGD([q2], lr=0.1, momentum=0.9)
                load_checkpoint(tmp_path / "c.npz", m2, opt)
                q = q2
            opt.zero_grad()
            (q * q).backward()
            opt.step()
        return q.item()

    assert run(True) == pytest.approx(run(False), rel=1e-6)


def test_failed_checkpoint_load_leaves_the_optimizer_alone(tmp_path):
    m = nn.Linear(3, 2)
    opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(dlia.randn(2, 3)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "c.npz", m, opt)  # no RNG state
    m2 = nn.Linear(3, 2)
    opt2 = optim.SGD(m2.parameters(), lr=0.5, momentum=0.9)
    with pytest.raises(CheckpointError, match="no RNG state"):
        load_checkpoint(path, m2, opt2, generator=dlia.Generator(0))
    assert opt2.param_groups[0]["lr"] == 0.5 and len(opt2.state) == 0


def test_retained_gradients_accumulate():
    x = dlia.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    z = (y * y).sum()
    z.backward(retain_graph=True)
    z.backward()
    assert y.grad.tolist() == [8.0, 16.0]


def test_variance_with_too_few_elements_is_nan_not_an_exception():
    with np.errstate(all="ignore"):
        v = dlia.var(dlia.tensor([1.0], requires_grad=True), ddof=1)
    assert np.isnan(v.item())


def test_zero_dimensional_squeeze_and_concatenate():
    assert dlia.squeeze(dlia.tensor(1.0), 0).shape == ()
    with pytest.raises(dlia.ShapeError, match="concatenate.*zero-dimensional"):
        dlia.concatenate([dlia.tensor(1.0), dlia.tensor(2.0)])


def test_session_results_do_not_alias_each_other_or_the_feed():
    g = G.Graph()
    x = G.placeholder((2,), graph=g)
    y = x * 2
    a = np.array([1.0, 2.0], np.float32)
    with G.Session(g) as s:
        r1, r2, r3 = s.run([y, y, x], {x: a})
    assert r1 is not r2 and r3 is not a
    r1[:] = 0
    assert r2.tolist() == [2.0, 4.0] and a.tolist() == [1.0, 2.0]


# -- review of 2026-11-26 (multi-tensor Adam, devices, graph feeds) ------------------------------
def _adam_run(flat: bool, pattern, dtype_switch_at=None):
    rng = np.random.default_rng(0)
    ps = [dlia.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True) for _ in range(3)]
    opt = optim.Adam(ps, lr=0.1)
    if not flat:
        opt.update_group = None
    for step, which in enumerate(pattern):
        if step == dtype_switch_at:
            for p in ps:
                p.data = p.data.astype(np.float64)
        opt.zero_grad()
        for i in which:
            ps[i].grad = dlia.tensor(rng.standard_normal(4).astype(ps[i].data.dtype))
        opt.step()
    return [p.numpy().copy() for p in ps]


def test_flat_adam_state_is_not_reused_after_a_per_parameter_step():
    """A step where one parameter alone had a gradient advanced only its step count; the next full
    step must not reuse the flat layout built when all counts were equal."""
    pattern = [[0, 1, 2], [0], [0, 1, 2], [0, 1, 2]]
    for a, b in zip(_adam_run(True, pattern), _adam_run(False, pattern)):
        np.testing.assert_array_equal(a, b)


def test_flat_adam_follows_a_change_of_parameter_dtype():
    pattern = [[0, 1, 2]] * 4
    a, b = _adam_run(True, pattern, dtype_switch_at=2), _adam_run(False, pattern, dtype_switch_at=2)
    for x, y in zip(a, b):
        assert x.dtype == np.float64
        np.testing.assert_array_equal(x, y)


def test_a_subclass_overriding_update_is_not_bypassed_by_the_group_path():
    calls = []

    class Logged(optim.Adam):
        def update(self, p, grad, group, state):
            calls.append(p)
            super().update(p, grad, group, state)

    w, b = dlia.tensor(np.ones(3), requires_grad=True), dlia.tensor(np.ones(1), requires_grad=True)
    opt = Logged([w, b], lr=0.1)
    (w.sum() + b.sum()).backward()
    opt.step()
    assert len(calls) == 2


def test_a_parameter_listed_twice_in_one_group_is_refused():
    w = dlia.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="listed twice"):
        optim.Adam([w, dlia.tensor(np.ones(2), requires_grad=True), w])


def test_python_ints_feed_unsigned_and_bool_placeholders_and_complex_is_refused():
    g = G.Graph()
    u, flag, f = G.placeholder((2,), np.uint8, graph=g), G.placeholder((2,), bool, graph=g), G.placeholder((2,), graph=g)
    with G.Session(g) as s:
        assert s.run(u * 2, {u: [1, 2]}).tolist() == [2, 4]
        assert s.run(flag, {flag: [0, 1]}).tolist() == [False, True]
        with pytest.raises(G.GraphError, match="complex128 values"):
            s.run(f, {f: np.array([1 + 2j, 0j])})


gpu = pytest.mark.skipif(not dlia.gpu_available, reason="needs CuPy and a CUDA GPU")


@pytest.mark.gpu
@gpu
def test_embedding_takes_numpy_indices_on_the_gpu():
    w = dlia.tensor(np.arange(12.0).reshape(6, 2), requires_grad=True, device="gpu")
    out = dlia.embedding(w, np.array([5, 0, 5]))
    out.sum().backward()
    assert out.device.kind == "gpu" and out.numpy().tolist() == [[10, 11], [0, 1], [10, 11]]
    assert w.grad.numpy()[5].tolist() == [2, 2]


@pytest.mark.gpu
@gpu
def test_compiled_function_on_the_gpu_takes_numpy_arguments_with_gradients():
    w = dlia.tensor(np.ones((3, 2)), requires_grad=True, device="gpu")
    f = dlia.compile(lambda x: (x @ w).sum())
    f(np.ones((4, 3))).backward()
    assert w.grad.numpy().tolist() == [[4.0, 4.0]] * 3


@pytest.mark.gpu
@gpu
def test_cnn_helpers_send_batches_to_the_models_device():
    from dlia.models.cnn import CNNConfig, DigitsCNN, evaluate

    model = DigitsCNN(CNNConfig(channels=(4, 8)), dlia.Generator(0)).to("gpu")
    x = np.random.default_rng(0).standard_normal((10, 1, 8, 8)).astype(np.float32)
    loss, acc = evaluate(model, x, np.zeros(10, np.int64))  # no device argument
    assert np.isfinite(loss) and 0.0 <= acc <= 1.0
