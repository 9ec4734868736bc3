"""dlia.compile: traced graphs equal eager results and gradients, retrace per signature, read
parameters at every call, and refuse what a tracer cannot see."""

import threading

import numpy as np
import pytest

import dlia
from dlia import graph as G
from dlia import nn, optim


def _model():
    return nn.Sequential(nn.Linear(6, 16, generator=dlia.Generator(0)), nn.Tanh(),
                         nn.Linear(16, 3, generator=dlia.Generator(1)))


def test_compiled_loss_equals_eager_values_and_gradients():
    model = _model()
    loss_fn = dlia.compile(lambda x, y: dlia.cross_entropy(model(x), y))
    rng = np.random.default_rng(0)
    x, y = dlia.tensor(rng.standard_normal((8, 6)).astype(np.float32)), rng.integers(0, 3, 8)
    compiled = loss_fn(x, y)
    compiled.backward()
    got = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    eager = dlia.cross_entropy(model(x), y)
    eager.backward()
    assert compiled.item() == eager.item()
    for a, p in zip(got, model.parameters()):
        np.testing.assert_array_equal(a, p.grad.numpy())


def test_training_with_a_compiled_step_follows_eager_training():
    rng = np.random.default_rng(1)
    batches = [(dlia.tensor(rng.standard_normal((8, 6)).astype(np.float32)), rng.integers(0, 3, 8)) for _ in range(15)]
    results = []
    for compiled in (False, True):
        model = _model()
        opt = optim.Adam(model.parameters(), lr=0.01)
        def loss(x, y, m=model):
            return dlia.cross_entropy(m(x), y)

        fn = dlia.compile(loss) if compiled else loss
        losses = []
        for x, y in batches:
            opt.zero_grad()
            loss = fn(x, y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        results.append((losses, [p.numpy().copy() for p in model.parameters()]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_one_trace_per_signature():
    calls = []

    @dlia.compile
    def f(x, scale):
        calls.append(1)
        return (x * scale).sum()

    a, b = dlia.ones(3), dlia.ones(4)
    assert f(a, 2.0).item() == 6.0 and f(a, 2.0).item() == 6.0
    assert len(calls) == 1
    assert f(b, 2.0).item() == 8.0 and f(a, 3.0).item() == 9.0  # new shape, new constant: retraced
    assert len(calls) == 3 and len(f.cache) == 3


def test_parameters_are_read_at_every_call():
    w = dlia.tensor([1.0, 2.0], requires_grad=True)
    f = dlia.compile(lambda x: (x * w).sum())
    x = dlia.ones(2)
    assert f(x).item() == 3.0
    with dlia.no_grad():
        w.data[:] = [10.0, 20.0]
    assert f(x).item() == 30.0


def test_no_grad_calls_and_several_outputs():
    f = dlia.compile(lambda x: (x * 2, x.sum()))
    a, s = f(dlia.tensor([1.0, 2.0]))
    assert a.tolist() == [2.0, 4.0] and s.item() == 3.0
    with pytest.raises(G.GraphError, match="several outputs"):
        f(dlia.tensor([1.0, 2.0], requires_grad=True))


def test_dropout_draws_fresh_masks_each_call():
    f = dlia.compile(lambda x: dlia.dropout(x, 0.5))
    x = dlia.ones(1000)
    assert not np.array_equal(f(x).numpy(), f(x).numpy())


def test_untraceable_code_is_reported():
    def needs_value(x):
        return x * float(x.sum().item())

    with pytest.raises(G.GraphError, match="could not trace 'needs_value'.*symbolic"):
        dlia.compile(needs_value)(dlia.ones(2))
    with pytest.raises(G.GraphError, match="must return a tensor"):
        dlia.compile(lambda x: 3)(dlia.ones(2))


def test_generated_code_is_readable_and_frees_values():
    model = _model()
    f = dlia.compile(lambda x, y: dlia.cross_entropy(model(x), y))
    x, y = dlia.randn(4, 6), np.array([0, 1, 2, 0])
    f(x, y).backward()
    traced = f.trace(x, y)
    assert "def phase1" in traced.train_source and "def phase2" in traced.train_source
    assert "del v" in traced.train_source and ".vjp(" in traced.train_source


def test_shared_weight_gradient_is_one_stacked_matmul_and_equals_eager():
    from dlia.graph.gradients import StackedMatmulGrad

    rng = np.random.default_rng(4)
    w = dlia.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    u = dlia.tensor(rng.standard_normal((4, 5)), requires_grad=True)

    def rnn(xs):
        h = dlia.zeros(3, 4, dtype=np.float64)
        for t in range(6):  # w is used by six matmuls, once per step
            h = dlia.tanh(xs[t] @ w + h @ u[:, :4])
        return (h * h).sum()

    xs = dlia.tensor(rng.standard_normal((6, 3, 5)))
    f = dlia.compile(rnn)
    f(xs).backward()
    got = w.grad.numpy().copy(), u.grad.numpy().copy()
    w.grad = u.grad = None
    rnn(xs).backward()
    np.testing.assert_allclose(got[0], w.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(got[1], u.grad.numpy(), rtol=1e-12)
    ops = {n.op for n in f.trace(xs).graph.nodes if n.kind == "op"}
    assert StackedMatmulGrad in ops


def test_compiled_lstm_equals_eager():
    from benchmarks.bench_compile import lstm_loss

    rng = np.random.default_rng(5)
    b_, h_, i_, t_ = 3, 128, 6, 4
    params = [(dlia.tensor(rng.uniform(-0.1, 0.1, ((i_ if k == 0 else h_) + h_, 4 * h_)), requires_grad=True),
               dlia.tensor(np.zeros(4 * h_), requires_grad=True)) for k in range(2)]
    x, y, z = dlia.tensor(rng.standard_normal((t_, b_, i_))), dlia.tensor(rng.standard_normal((b_, h_))), \
        dlia.zeros(b_, h_, dtype=np.float64)
    f = dlia.compile(lambda xx, yy: lstm_loss(dlia, xx, params, yy, z))
    loss = f(x, y)
    loss.backward()
    got = [t.grad.numpy().copy() for p in params for t in p]
    for p in params:
        for t in p:
            t.grad = None
    eager = lstm_loss(dlia, x, params, y, z)
    eager.backward()
    assert loss.item() == pytest.approx(eager.item(), rel=1e-12)
    for a, t in zip(got, [t for pair in params for t in pair]):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not dlia.gpu_available, reason="needs CuPy and a CUDA GPU")
def test_compiled_function_runs_on_the_device_of_its_gpu_tensors():
    """No device argument: a function of GPU tensors (and GPU parameters it reads) is traced for the
    GPU; values and gradients equal the eager GPU run."""
    rng = np.random.default_rng(0)
    w = dlia.tensor(rng.standard_normal((6, 4)), requires_grad=True, device="gpu")
    zero = dlia.zeros(5, 4).to("gpu")

    def loss(x):
        h = dlia.tanh(x @ w) + zero  # reads a parameter and a constant tensor from outside
        return (h * h).mean()

    x = dlia.tensor(rng.standard_normal((5, 6)), device="gpu")
    expected = loss(x)
    expected.backward()
    g_eager = w.grad.numpy().copy()
    w.grad = None
    f = dlia.compile(loss)
    got = f(x)
    got.backward()
    assert got.device.kind == "gpu"
    np.testing.assert_allclose(got.item(), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), g_eager, rtol=1e-12, atol=1e-15)


# -- guards: a trace is reused only while what it read is unchanged (issue 10, A8) -----------------
def _eager_and_compiled(model, fn, *args):
    """Loss value and parameter gradients, eager then compiled (fresh gradients each time)."""
    out = []
    for f in (fn, dlia.compile(fn) if not isinstance(fn, G.CompiledFunction) else fn):
        model.zero_grad()
        loss = f(*args)
        loss.backward()
        out.append((loss.item(), {n: None if p.grad is None else p.grad.numpy().copy() for n, p in model.named_parameters()}))
    return out


def _assert_same(eager, compiled):
    assert compiled[0] == pytest.approx(eager[0], rel=1e-6)
    assert eager[1].keys() == compiled[1].keys()
    for name, g in eager[1].items():
        if g is None:
            assert compiled[1][name] is None, name
        else:
            assert compiled[1][name] is not None, f"{name}: compiled gradient is None"
            np.testing.assert_allclose(compiled[1][name], g, rtol=1e-5, atol=1e-7, err_msg=name)


def test_eval_after_tracing_in_train_mode_stops_dropout():
    model = nn.Sequential(nn.Linear(6, 16, generator=dlia.Generator(0)), nn.Dropout(0.5), nn.Linear(16, 3))
    x = dlia.tensor(np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32))
    f = dlia.compile(lambda x: model(x))
    f(x)  # traced in train mode: dropout in the graph
    model.eval()
    np.testing.assert_array_equal(f(x).numpy(), model(x).numpy())
    with dlia.no_grad():
        np.testing.assert_array_equal(f(x).numpy(), model(x).numpy())
    model.train()
    assert not np.array_equal(f(x).numpy(), model.eval()(x).numpy())  # training again: dropout again
    assert len(f.cache) == 1 and len(f.cache[next(iter(f.cache))]) == 2  # both modes kept, no retrace per switch


def test_layer_unfrozen_after_tracing_gets_its_gradient():
    model = _model()
    model[0].requires_grad_(False)
    rng = np.random.default_rng(2)
    x, y = dlia.tensor(rng.standard_normal((8, 6)).astype(np.float32)), rng.integers(0, 3, 8)
    loss = dlia.compile(lambda x, y: dlia.cross_entropy(model(x), y))
    _assert_same(*_eager_and_compiled(model, lambda x, y: dlia.cross_entropy(model(x), y), x, y))
    loss(x, y)  # traced frozen
    model[0].requires_grad_(True)
    eager, compiled = _eager_and_compiled(model, lambda x, y: dlia.cross_entropy(model(x), y), x, y)
    model.zero_grad()
    loss(x, y).backward()
    compiled = (compiled[0], {n: p.grad.numpy().copy() for n, p in model.named_parameters()})
    _assert_same(eager, compiled)
    model[0].requires_grad_(False)  # and frozen again: no gradient (as eager)
    model.zero_grad()
    loss(x, y).backward()
    assert model[0].weight.grad is None and model[2].weight.grad is not None


def test_replaced_parameter_is_read_after_tracing():
    model = _model()
    rng = np.random.default_rng(3)
    x, y = dlia.tensor(rng.standard_normal((8, 6)).astype(np.float32)), rng.integers(0, 3, 8)
    loss = dlia.compile(lambda x, y: dlia.cross_entropy(model(x), y))
    loss(x, y).backward()
    model.zero_grad()
    old = model[2].weight
    model[2].weight = nn.Parameter(rng.standard_normal((3, 16)).astype(np.float32))
    got = loss(x, y)
    got.backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    model.zero_grad()
    eager = dlia.cross_entropy(model(x), y)
    eager.backward()
    assert got.item() == pytest.approx(eager.item(), rel=1e-6)
    for n, p in model.named_parameters():
        np.testing.assert_allclose(grads[n], p.grad.numpy(), rtol=1e-5, atol=1e-7, err_msg=n)
    assert old.grad is None


class _Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2, generator=dlia.Generator(0))
        self.scale = nn.Parameter(np.array(2.0, dtype=np.float32))  # 0-d

    def forward(self, x):
        return self.lin(x) * self.scale


def test_zero_dim_parameter_is_an_input_not_a_constant():
    model = _Scaled()
    x = dlia.tensor(np.random.default_rng(4).standard_normal((5, 4)).astype(np.float32))

    def fn(x):
        return (model(x) ** 2).sum()

    eager, compiled = _eager_and_compiled(model, fn, x)
    _assert_same(eager, compiled)  # scale's gradient included
    f = dlia.compile(fn)
    f(x)
    state = model.state_dict()
    state["scale"] = np.array(-3.0, dtype=np.float32)
    model.load_state_dict(state)
    with dlia.no_grad():
        assert f(x).item() == pytest.approx(fn(x).item(), rel=1e-6)
    model.scale.requires_grad = False  # frozen after tracing: no gradient, as eager
    model.zero_grad()
    f(x).backward()
    assert model.scale.grad is None and model.lin.weight.grad is not None


def test_parameter_dtype_or_shape_changed_after_tracing_retraces():
    model = _model()
    x = dlia.tensor(np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32))
    f = dlia.compile(lambda x: model(x).sum())
    f(x)

    def check():
        model.zero_grad()
        got = f(x)
        got.backward()
        grads = [p.grad.numpy().copy() for p in model.parameters()]
        model.zero_grad()
        eager = model(x).sum()
        eager.backward()
        assert got.dtype == eager.dtype and got.item() == pytest.approx(eager.item(), rel=1e-12)
        for g, p in zip(grads, model.parameters()):
            assert g.dtype == p.grad.dtype and g.shape == p.grad.shape
            np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-6)

    model.double()
    check()
    model[2].weight.data = np.ones((5, 16))  # another shape
    model[2].bias.data = np.zeros(5)
    check()


def test_unchanged_state_reuses_the_trace():
    calls = []
    model = _model()

    def fn(x):
        calls.append(1)
        return model(x).sum()

    f = dlia.compile(fn)
    x = dlia.ones(2, 6)
    for _ in range(3):
        f(x).backward()
    model.eval()
    f(x)
    model.train()
    f(x)
    assert len(calls) == 2  # train mode, then eval mode; switching back finds the first trace


def _bn_eval():
    bn = nn.BatchNorm2d(3)
    rng = np.random.default_rng(6)
    bn.load_state_dict({"weight": rng.uniform(0.5, 2, 3).astype(np.float32), "bias": rng.standard_normal(3).astype(np.float32),
                        "running_mean": rng.standard_normal(3).astype(np.float32),
                        "running_var": rng.uniform(0.5, 2, 3).astype(np.float32),
                        "num_batches_tracked": np.array(5)})
    return bn.eval(), dlia.tensor(rng.standard_normal((2, 3, 4, 4)).astype(np.float32))


def test_batchnorm_in_eval_mode_compiles_and_follows_its_statistics():
    """Issue 10, A9: a traced node has no device of its own (it once reported "gpu"); and the
    running statistics are read at every call, like the parameters."""
    bn, x = _bn_eval()
    f = dlia.compile(lambda x: bn(x))
    np.testing.assert_allclose(f(x).numpy(), bn(x).numpy(), rtol=1e-6)
    state = bn.state_dict()
    state["running_var"] = state["running_var"].numpy() * 4
    bn.load_state_dict(state)
    np.testing.assert_allclose(f(x).numpy(), bn(x).numpy(), rtol=1e-6)
    f = dlia.compile(lambda x: (bn(x) ** 2).sum())
    _assert_same(*_eager_and_compiled(bn, lambda x: (bn(x) ** 2).sum(), x))


def test_tensor_rebound_in_the_functions_closure_is_seen():
    w = dlia.tensor([1.0, 2.0], requires_grad=True)
    s = dlia.tensor(1.0)  # 0-d and read from the closure: an input, not a constant
    f = dlia.compile(lambda x: (x * w).sum() * s)
    x = dlia.ones(2)
    assert f(x).item() == 3.0
    w = dlia.tensor([3.0, 4.0], requires_grad=True)  # noqa: F841 - read by the lambda
    s.data = np.array(2.0)
    out = f(x)
    out.backward()
    assert out.item() == 14.0 and w.grad.tolist() == [2.0, 2.0]


@pytest.mark.gpu
@pytest.mark.skipif(not dlia.gpu_available, reason="needs CuPy and a CUDA GPU")
def test_batchnorm_in_eval_mode_compiles_on_the_gpu():
    bn, x = _bn_eval()
    bn.to("gpu")
    x = x.to("gpu")
    f = dlia.compile(lambda x: bn(x))
    got = f(x)
    assert got.device.kind == "gpu" and f.trace(x).graph.device.kind == "gpu"
    np.testing.assert_allclose(got.numpy(), bn(x).numpy(), rtol=1e-6)


def test_tracing_in_one_thread_leaves_other_threads_eager():
    a = dlia.tensor([1.0, 2.0])
    seen = []

    def other():
        seen.append(a * 2)

    @dlia.compile
    def f(x):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        return x * 3

    np.testing.assert_array_equal(f(dlia.tensor([1.0, 1.0])).numpy(), [3.0, 3.0])
    assert type(seen[0]) is dlia.Tensor
    np.testing.assert_array_equal(seen[0].numpy(), [2.0, 4.0])


def test_optimizer_step_between_a_compiled_forward_and_its_backward_is_detected():
    lin = nn.Linear(3, 2, generator=dlia.Generator(0))
    opt = optim.SGD(lin.parameters(), lr=0.1)
    loss_fn = dlia.compile(lambda x: lin(x).tanh().sum())
    x = dlia.tensor(np.ones((4, 3), dtype=np.float32), requires_grad=True)
    loss_fn(x).backward()
    loss = loss_fn(x)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*CompiledCall"):
        loss.backward()


def test_no_grad_inside_a_compiled_function_cuts_the_gradient_as_in_eager_mode():  # review of issue 10
    w = nn.Parameter(dlia.tensor(np.array([2.0, 3.0])))
    x = dlia.ones((2,), dtype=np.float64)

    def fn(x):
        with dlia.no_grad():
            y = x * w
        return (y * w).sum()

    fn(x).backward()
    eager, w.grad = w.grad.numpy().copy(), None
    compiled = dlia.compile(fn)
    with dlia.no_grad():  # first traced under no_grad: the trace must still carry the gradient
        assert compiled(x).item() == pytest.approx(13.0)
    compiled(x).backward()
    np.testing.assert_array_equal(w.grad.numpy(), eager)  # [2, 3], not [4, 6]


def test_a_replaced_child_module_retraces():  # review of issue 10
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 1, generator=dlia.Generator(0))

        def forward(self, x):
            return self.fc(x)

    m = M()
    f = dlia.compile(m.forward)
    x = dlia.ones((2, 3))
    f(x)
    m.fc = nn.Linear(3, 1, generator=dlia.Generator(1))
    np.testing.assert_array_equal(f(x).numpy(), m(x).numpy())
    f(x).sum().backward()
    assert m.fc.weight.grad is not None


@pytest.mark.parametrize("body", ["batchnorm-train", "detach"])
def test_code_that_reads_values_is_reported_as_untraceable(body):  # review of issue 10: raw AttributeError/TypeError
    bn = nn.BatchNorm2d(3)
    fn = (lambda x: bn(x).sum()) if body == "batchnorm-train" else (lambda x: (x.detach() * 2).sum())
    with pytest.raises(G.GraphError, match="could not trace .* values in Python"):
        dlia.compile(fn)(dlia.ones((2, 3, 4, 4)))
