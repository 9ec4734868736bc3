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
