"""Graph mode: building, shape inference, Session.run, gradients, minimize, passes."""

import numpy as np
import pytest

import dlia
from dlia import graph as G
from dlia import nn, optim
from dlia.graph.plan import Plan, StepKind


@pytest.fixture
def g():
    return G.Graph("test")


def test_placeholders_with_unknown_dims_infer_shapes(g):
    x = G.placeholder((None, 3), name="x", graph=g)
    w = G.Variable(np.ones((3, 4), np.float32), name="w", graph=g)
    y = dlia.relu(x @ w + 1.0)
    assert y.shape == (None, 4) and y.dtype == np.float32
    assert y.sum(axis=1).shape == (None,)
    assert dlia.concatenate([y, y], axis=0).shape == (None, 4)
    assert y.reshape(-1).shape == (None,)
    assert y.T.shape == (4, None)


def test_shape_errors_name_the_node_and_inputs(g):
    x = G.placeholder((None, 3), name="x", graph=g)
    w = G.Variable(np.ones((4, 2), np.float32), name="w", graph=g)
    with pytest.raises(G.GraphError, match=r"node 'matmul' \(MatMul\): .*inner dimensions differ.*x: \(\?, 3\), w: \(4, 2\)"):
        x @ w
    with pytest.raises(G.GraphError, match="node 'add'"):
        x + G.placeholder((5,), graph=g)


def test_building_draws_no_random_numbers(g):
    state = dlia.default_generator.get_state()
    dlia.dropout(G.placeholder((4, 4), graph=g), 0.5)
    assert dlia.default_generator.get_state() == state


def test_run_returns_the_structure_of_fetches(g):
    x = G.placeholder((None,), name="x", graph=g)
    a, b = x * 2, x + 1
    with G.Session(g) as s:
        out = s.run({"a": a, "pair": (a, [b])}, {x: [1.0, 2.0]})
        assert out["a"].tolist() == [2.0, 4.0]
        assert out["pair"][0].tolist() == [2.0, 4.0] and out["pair"][1][0].tolist() == [2.0, 3.0]
        assert isinstance(out["pair"], tuple) and isinstance(out["pair"][1], list)
        assert s.run(b, {"x": np.array([5.0])}).tolist() == [6.0]  # feed by name


def test_only_what_fetches_need_is_run(g):
    x = G.placeholder((2,), name="x", graph=g)
    unfed = G.placeholder((2,), name="never_fed", graph=g)
    wanted, other = x * 3, unfed * 3
    with G.Session(g) as s:
        assert s.run(wanted, {x: [1, 2]}).tolist() == [3, 6]
        with pytest.raises(G.GraphError, match="placeholder 'never_fed' .* must be fed"):
            s.run(other)


def test_bad_feeds(g):
    x = G.placeholder((None, 2), name="x", graph=g)
    with G.Session(g) as s:
        with pytest.raises(G.GraphError, match=r"feed for 'x': expected shape \(\?, 2\), got \(3,\)"):
            s.run(x * 1, {x: np.ones(3)})
        with pytest.raises(G.GraphError, match="not a node"):
            s.run(x * 1, {G.placeholder((1,)): [1.0]})
    with pytest.raises(G.GraphError, match="closed"):
        s.run(x * 1, {x: np.ones((1, 2))})


def test_variables_persist_and_reset(g):
    v = G.Variable(np.zeros(2, np.float32), name="v", graph=g)
    train = optim.SGD([v], lr=1.0).minimize((v - 3.0).sum() * 1.0)
    with G.Session(g) as s:
        s.run(train)
        s.run(train)
        assert s.value(v).tolist() == [-2.0, -2.0]  # d/dv sum(v - 3) = 1, two steps of lr 1
        s.assign(v, [7.0, 7.0])
        assert s.run(v * 1.0).tolist() == [7.0, 7.0]
        s.initialize()
        assert s.value(v).tolist() == [0.0, 0.0]
        with pytest.raises(G.GraphError, match="shape"):
            s.assign(v, [1.0])


def _mlp_graph(g, rng):
    x = G.placeholder((None, 4), name="x", graph=g)
    y = G.placeholder((None,), dtype=np.int64, name="y", graph=g)
    w1 = G.Variable(rng.standard_normal((4, 8)).astype(np.float32), name="w1", graph=g)
    b1 = G.Variable(np.zeros(8, np.float32), name="b1", graph=g)
    w2 = G.Variable(rng.standard_normal((8, 3)).astype(np.float32), name="w2", graph=g)
    loss = dlia.cross_entropy(dlia.tanh(x @ w1 + b1) @ w2, y)
    return x, y, [w1, b1, w2], loss


def test_gradients_equal_eager_gradients(g):
    rng = np.random.default_rng(0)
    x, y, variables, loss = _mlp_graph(g, rng)
    xv, yv = rng.standard_normal((5, 4)).astype(np.float32), np.array([0, 2, 1, 1, 0])
    grads = G.gradients(loss, variables)
    with G.Session(g) as s:
        got = s.run(grads, {x: xv, y: yv})
    ts = [dlia.tensor(v.value.copy(), requires_grad=True) for v in variables]
    eager = dlia.cross_entropy(dlia.tanh(dlia.tensor(xv) @ ts[0] + ts[1]) @ ts[2], yv)
    eager.backward()
    for t, v in zip(ts, got):
        np.testing.assert_allclose(v, t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_gradients_of_unrelated_nodes_are_none_and_grad_ys_seed(g):
    a = G.Variable(np.ones(3, np.float32), graph=g)
    b = G.Variable(np.ones(3, np.float32), graph=g)
    y = a * 2.0
    assert G.gradients(y.sum(), [a, b])[1] is None
    seed = G.constant(np.array([1.0, 10.0, 100.0], np.float32), graph=g)
    ga = G.gradients(y, a, grad_ys=[seed])
    with G.Session(g) as s:
        assert s.run(ga).tolist() == [2.0, 20.0, 200.0]


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.01),
    lambda ps: optim.RMSprop(ps, lr=0.01),
])
def test_minimize_follows_the_eager_trajectory(g, make):
    rng = np.random.default_rng(1)
    x, y, variables, loss = _mlp_graph(g, rng)
    train = make(variables).minimize(loss)
    batches = [(rng.standard_normal((6, 4)).astype(np.float32), rng.integers(0, 3, 6)) for _ in range(10)]
    ts = [dlia.tensor(v.value.copy(), requires_grad=True) for v in variables]
    eager_opt = make(ts)
    with G.Session(g) as s:
        for xv, yv in batches:
            s.run(train, {x: xv, y: yv})
            eager_opt.zero_grad()
            dlia.cross_entropy(dlia.tanh(dlia.tensor(xv) @ ts[0] + ts[1]) @ ts[2], yv).backward()
            eager_opt.step()
        for v, t in zip(variables, ts):
            np.testing.assert_allclose(s.value(v), t.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda ps: optim.Adam(ps, lr=0.01),
    lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1, amsgrad=True),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
], ids=["adam", "adamw", "adam-l2-amsgrad", "sgd-momentum"])
def test_train_op_runs_the_optimizers_own_multi_tensor_path(g, make):
    """One multi-tensor mechanism: a train op's optimizer keeps per-variable state exactly as the
    eager optimizer does (Adam's moments as views of its flat state), and the variables of a group
    are consecutive views of one array, which the optimizer updates in one operation."""
    rng = np.random.default_rng(2)
    x, y, variables, loss = _mlp_graph(g, rng)
    train = make(variables).minimize(loss)
    ts = [dlia.tensor(v.value.copy(), requires_grad=True) for v in variables]
    eager_opt = make(ts)
    with G.Session(g) as s:
        for _ in range(4):
            xv, yv = rng.standard_normal((6, 4)).astype(np.float32), rng.integers(0, 3, 6)
            s.run(train, {x: xv, y: yv})
            eager_opt.zero_grad()
            dlia.cross_entropy(dlia.tanh(dlia.tensor(xv) @ ts[0] + ts[1]) @ ts[2], yv).backward()
            eager_opt.step()
        opt = s._trainers[train].opt
        ours, eager = opt.state_dict(), eager_opt.state_dict()
        assert sorted(ours["state"]) == sorted(eager["state"]) == [0, 1, 2]
        for k, st in eager["state"].items():
            assert sorted(ours["state"][k]) == sorted(st)
            for name, value in st.items():
                np.testing.assert_allclose(np.asarray(ours["state"][k][name]), np.asarray(value), rtol=1e-5, atol=1e-6)
        if opt.update_group is not None:
            (flat,) = opt._flat.values()
            assert flat.param is not None and all(s.vars[v].base is flat.param for v in variables)
            assert flat.arrays and all(opt.state[flat.params[0]][k].base is a for k, a in flat.arrays.items())


def test_tf1_style_optimizers_train_xor(g):
    x = G.placeholder((4, 2), graph=g)
    y = G.placeholder((4, 1), graph=g)
    rng = np.random.default_rng(3)
    w1 = G.Variable(rng.standard_normal((2, 8)).astype(np.float32), graph=g)
    w2 = G.Variable(rng.standard_normal((8, 1)).astype(np.float32), graph=g)
    b1 = G.Variable(np.zeros(8, np.float32), graph=g)
    logits = dlia.tanh(x @ w1 + b1) @ w2
    loss = dlia.binary_cross_entropy_with_logits(logits, y)
    train = G.AdamOptimizer(0.05).minimize(loss)
    xs = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    ys = np.array([[0], [1], [1], [0]], np.float32)
    with G.Session(g) as s:
        for _ in range(300):
            s.run(train, {x: xs, y: ys})
        assert (s.run(logits, {x: xs}) > 0).astype(int).ravel().tolist() == [0, 1, 1, 0]


def test_minimize_needs_variables_that_matter(g):
    a = G.Variable(np.ones(2, np.float32), graph=g)
    b = G.Variable(np.ones(2, np.float32), graph=g)
    with pytest.raises(G.GraphError, match="none of the variables"):
        optim.SGD([b], lr=0.1).minimize((a * 2).sum())
    with pytest.raises(G.GraphError, match="not a variable"):
        G.minimize(lambda p: optim.SGD(p, lr=1), (a * 2).sum(), [a * 2])


def test_constant_folding_and_cse(g):
    x = G.placeholder((3,), graph=g)
    c = G.constant(np.arange(3, dtype=np.float32), graph=g)
    folded = dlia.exp(c) * 2.0 + 1.0  # no input depends on x: computed once, at planning time
    y = x * folded + x * folded  # the same product twice: computed once
    plan = Plan([y], [x])
    ops = [st for st in plan.steps if st.kind in (StepKind.OP, StepKind.FUSED)]
    assert len(ops) == 2  # one mul (the duplicate merged) and the add
    with G.Session(g) as s:
        np.testing.assert_allclose(s.run(y, {x: [1.0, 2.0, 3.0]}), 2 * np.array([1, 2, 3]) * (np.exp(np.arange(3)) * 2 + 1),
                                   rtol=1e-6)


def test_elementwise_chains_are_fused_in_inference(g):
    x = G.placeholder((None, 4), graph=g)
    w = G.Variable(np.ones((4, 4), np.float32), graph=g)
    y = dlia.sigmoid(dlia.tanh(dlia.relu(x @ w)))
    plan = Plan([y], [x])
    assert [st.kind for st in plan.steps].count(StepKind.FUSED) == 1
    fused = next(st for st in plan.steps if st.kind is StepKind.FUSED)
    assert [n.op.__name__ for n in fused.nodes] == ["MatMul", "ReLU", "Tanh", "Sigmoid"]
    with G.Session(g) as s:
        xv = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
        np.testing.assert_allclose(s.run(y, {x: xv}), 1 / (1 + np.exp(-np.tanh(np.maximum(xv @ np.ones((4, 4)), 0)))),
                                   rtol=1e-6)


def test_memory_plan_keeps_few_values_alive(g):
    x = G.placeholder((8,), graph=g)
    h = x
    for _ in range(50):
        h = dlia.tanh(h * 1.01)
    plan = Plan([h], [x], fuse=False)
    alive, peak = {s for _, s in plan.feeds}, 0
    for st in plan.steps:
        alive.add(st.out)
        peak = max(peak, len(alive))
        alive -= set(st.free)
    assert peak <= 3  # a 100-op chain never holds more than a couple of values
    loss = h.sum()
    (gx,) = G.gradients(loss, [x])
    with G.Session(g) as s:
        xv = np.linspace(-1, 1, 8).astype(np.float32)
        t = dlia.tensor(xv, requires_grad=True)
        e = t
        for _ in range(50):
            e = dlia.tanh(e * 1.01)
        e.sum().backward()
        np.testing.assert_allclose(s.run(gx, {x: xv}), t.grad.numpy(), rtol=1e-5)


def test_eager_modules_work_on_graph_nodes(g):
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    x = G.placeholder((None, 4), graph=g)
    out = model(x)
    assert out.shape == (None, 2)
    xv = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with G.Session(g) as s:
        np.testing.assert_allclose(s.run(out, {x: xv}), model(dlia.tensor(xv)).numpy(), rtol=1e-6)


def test_symbolic_nodes_have_no_value(g):
    x = G.placeholder((2,), name="x", graph=g)
    with pytest.raises(G.GraphError, match="symbolic"):
        x.numpy()
    with pytest.raises(G.GraphError, match="gradients"):
        x.sum().backward()
    other = G.Graph("other")
    with pytest.raises(G.GraphError, match="belongs to graph"):
        x + G.placeholder((2,), graph=other)


def test_gpu_session_without_gpu_is_a_clear_error(g):
    if dlia.gpu_available:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no GPU is available"):
        G.Session(g, device="gpu")


@pytest.mark.gpu
@pytest.mark.skipif(not dlia.gpu_available, reason="needs a CUDA GPU with CuPy")
def test_gpu_session_matches_cpu(g):
    rng = np.random.default_rng(0)
    x, y, variables, loss = _mlp_graph(g, rng)
    grads = G.gradients(loss, variables)
    feed = {x: rng.standard_normal((5, 4)).astype(np.float32), y: np.array([0, 2, 1, 1, 0])}
    with G.Session(g) as cpu, G.Session(g, device="gpu") as gpu:
        for a, b in zip(cpu.run([loss] + grads, feed), gpu.run([loss] + grads, feed)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_two_train_ops_sharing_variables_both_update_them(g):
    v = G.Variable(np.zeros(3, np.float32), graph=g)
    w = G.Variable(np.zeros(3, np.float32), graph=g)
    up = optim.SGD([v, w], lr=1.0).minimize(-(v + w).sum())
    down = optim.SGD([v, w], lr=0.5).minimize((v + w).sum())
    with G.Session(g) as s:
        s.run(up)
        s.run(down)
        s.run(up)
        assert s.value(v).tolist() == [1.5, 1.5, 1.5] and s.value(w).tolist() == [1.5, 1.5, 1.5]


def test_placeholder_as_an_index_gathers_rows_and_columns_with_gradients(g):
    x = G.placeholder((5, 3), np.float32, graph=g)
    rows = G.placeholder((None,), np.int64, graph=g)
    picked = x[rows]
    cols = x[1:, rows]
    assert picked.shape == (None, 3) and cols.shape == (4, None)
    (gx,) = G.gradients((picked * picked).sum() + cols.sum(), [x])
    xv = np.arange(15, dtype=np.float32).reshape(5, 3)
    with G.Session(g) as sess:
        a, b, grad = sess.run([picked, cols, gx], {x: xv, rows: [0, 0, 2]})
    np.testing.assert_array_equal(a, xv[[0, 0, 2]])
    np.testing.assert_array_equal(b, xv[1:, [0, 0, 2]])
    t = dlia.tensor(xv, requires_grad=True)
    ((t[[0, 0, 2]] ** 2).sum() + t[1:, [0, 0, 2]].sum()).backward()
    np.testing.assert_array_equal(grad, t.grad.numpy())


def test_boolean_mask_node_as_an_index_is_a_clear_error(g):
    x = G.placeholder((5, 3), np.float32, graph=g)
    with pytest.raises(ValueError, match="data-dependent result shape"):
        x[G.placeholder((5,), bool, graph=g)]


def test_float_values_fed_to_an_int_placeholder_are_refused(g):
    i = G.placeholder((2,), np.int64, graph=g)
    y = i * 2
    with G.Session(g) as sess:
        np.testing.assert_array_equal(sess.run(y, {i: [1, 2]}), [2, 4])
        with pytest.raises(G.GraphError, match="int64 placeholder given float64 values"):
            sess.run(y, {i: np.array([1.5, 2.0])})


def test_compiled_function_takes_an_index_argument():
    w = dlia.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    f = dlia.compile(lambda w, idx: (w[idx] ** 2).sum())
    for idx in ([1, 1, 3], [0, 2, 2]):
        w.grad = None
        f(w, dlia.tensor(np.array(idx))).backward()
        expected = np.zeros((4, 3))
        np.add.at(expected, idx, 2 * w.numpy()[idx])
        np.testing.assert_array_equal(w.grad.numpy(), expected)


def test_repeated_runs_reuse_the_plan_but_see_changed_fetch_lists_and_feeds(g):
    x = G.placeholder((2,), graph=g)
    y = G.placeholder((2,), graph=g)
    a, b = x * 2, x + y
    with G.Session(g) as sess:
        assert sess.run(a, {x: [1.0, 2.0]}).tolist() == [2.0, 4.0]
        plan = sess._last_run[4]
        assert sess.run(a, {x: [3.0, 4.0]}).tolist() == [6.0, 8.0] and sess._last_run[4] is plan
        fetches = [a]
        assert [v.tolist() for v in sess.run(fetches, {x: [1.0, 1.0]})] == [[2.0, 2.0]]
        fetches.append(b)  # the same list object, changed in place
        out = sess.run(fetches, {x: [1.0, 1.0], y: [5.0, 5.0]})
        assert [v.tolist() for v in out] == [[2.0, 2.0], [6.0, 6.0]]
        assert sess.run(b, {x: [1.0, 1.0], y: [0.0, 1.0]}).tolist() == [1.0, 2.0]
        assert sess.run(b, {y: [0.0, 1.0], x: [2.0, 2.0]}).tolist() == [2.0, 3.0]  # keys in another order


def test_batchnorm_in_eval_mode_builds_on_the_graph_device(g):
    """Issue 10, A9: a node's device is the graph's (CPU unless given), never guessed from its
    symbolic data (it was "gpu", so BatchNorm2d in eval mode raised "no GPU is available")."""
    x = G.placeholder((None, 3, 4, 4), name="x", graph=g)
    assert x.device == dlia.Device("cpu") and g.device == dlia.Device("cpu")
    bn = nn.BatchNorm2d(3)
    rng = np.random.default_rng(0)
    bn.running_mean.data = rng.standard_normal(3).astype(np.float32)
    bn.running_var.data = rng.uniform(0.5, 2, 3).astype(np.float32)
    bn.eval()
    y = bn(x)
    xv = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    with G.Session(g) as s:
        np.testing.assert_allclose(s.run(y, {x: xv}), bn(dlia.tensor(xv)).numpy(), rtol=1e-6)


def test_plan_steps_and_kinds_are_named_and_modules_import_one_way(g):
    """Issue 10, C4: a plan is a list of ``Step`` dataclasses, node kinds are a closed set, and
    codegen/plan do not import the session (which imports them)."""
    import ast
    import pathlib

    from dlia.graph import codegen, plan
    from dlia.graph.core import NodeKind
    from dlia.graph.plan import Step

    x = G.placeholder((3,), graph=g)
    (gx,) = G.gradients(dlia.tanh(x * 2.0).sum(), [x])
    steps = Plan([gx], [x]).steps
    assert all(isinstance(st, Step) for st in steps)
    vjps = [st for st in steps if st.kind is StepKind.VJP]
    assert vjps and all(st.ctx is not None and len(st.ins) == 1 for st in vjps)
    assert all(st.shape_of is not None for st in steps if st.kind is StepKind.GRAD)
    assert "accumulate" not in {k.value for k in NodeKind}
    with pytest.raises(ValueError):
        G.Node(g, "accumulate", "a", (), np.float32)
    for mod in (codegen, plan):
        tree = ast.parse(pathlib.Path(mod.__file__).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "dlia.graph.session" not in imported, mod.__name__
