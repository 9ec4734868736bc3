"""Shared oracles for the op tests: finite differences, PyTorch, and a table-driven base test case.

Three layers, as in STYLE.md:

* ``check_vjp`` — float64 central differences along random directions (autograd's ``check_vjp``):
  for a random input direction ``v`` and output cotangent ``u`` the backward pass must satisfy
  ``Σᵢ <vjpᵢ(u), vᵢ> ≈ (<u, f(x + εv)> - <u, f(x - εv)>) / 2ε``.
* ``compare_torch`` — the same inputs through dlia and torch (tinygrad's ``helper_test_op``):
  output shape, dtype and values, then every input gradient under one shared random cotangent;
  ``assert_both_raise`` checks that bad inputs fail in both.
* ``OpCase`` + ``OpTestCase`` — one table entry per op and shape set (chainer's
  ``FunctionTestCase``): a test class lists its cases and inherits the three checks.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

import dlia

Arrays = Sequence[np.ndarray]


# -- inputs ------------------------------------------------------------------------------------
def seed_of(text: str) -> int:
    """A stable seed from a test id (``hash`` is salted per process; crc32 is not)."""
    return zlib.crc32(text.encode())


def make_array(rng: np.random.Generator, shape: tuple[int, ...], domain: str = "real", dtype: Any = np.float64) -> np.ndarray:
    """A random input of ``shape`` drawn from a named domain.

    Domains:
        real: standard normal.
        positive: uniform on [0.5, 2] (log, sqrt, a tensor exponent's base, a divisor).
        distinct: all values different, at least 0.08 apart and at least 0.04 away from every
            multiple of 0.1 (so away from the kinks of abs/relu/clip at 0 or ±0.3, and free of
            ties for max/min); the finite-difference step never crosses a kink.
        grid: like ``distinct`` but near multiples of 0.1, so a ``grid`` and a ``distinct``
            input are at least 0.03 apart (maximum/minimum never tie).
        int:K: integers in [0, K) (indices, class targets).
        bool: a random boolean mask.
        probability: uniform on [0.05, 0.95] (BCE targets).
    """
    if domain.startswith("int:"):
        return rng.integers(0, int(domain[4:]), size=shape).astype(np.int64)
    if domain == "bool":
        return rng.random(shape) < 0.5
    if domain == "real":
        out = rng.standard_normal(shape)
    elif domain == "positive":
        out = rng.uniform(0.5, 2.0, shape)
    elif domain == "probability":
        out = rng.uniform(0.05, 0.95, shape)
    elif domain in ("distinct", "grid"):
        n = int(np.prod(shape, dtype=np.int64))
        offset = 0.05 if domain == "distinct" else 0.0
        steps = rng.permutation(n) - n // 2
        out = (steps * 0.1 + offset + rng.uniform(-0.01, 0.01, n)).reshape(shape)
    else:
        raise ValueError(f"unknown input domain {domain!r}")
    return np.asarray(out, dtype=dtype)


def is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


# -- small conversions -------------------------------------------------------------------------
def dense(grad: Any) -> np.ndarray | None:
    """A dlia ``.grad`` (Tensor or SparseGrad) or a torch ``.grad`` (dense or sparse) as NumPy."""
    if grad is None:
        return None
    if isinstance(grad, torch.Tensor):
        return (grad.to_dense() if grad.is_sparse else grad).detach().numpy()
    if isinstance(grad, dlia.SparseGrad):
        d = grad.to_dense()
        return d.get() if hasattr(d, "get") else np.asarray(d)
    return grad.numpy()


def numpy_dtype(t: torch.Tensor) -> np.dtype:
    return torch.empty(0, dtype=t.dtype).numpy().dtype


def as_list(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _backward_dlia(outs: list[dlia.Tensor], us: list[np.ndarray]) -> None:
    """Backprop cotangents ``us`` into ``outs`` (several outputs: through Σ <u, out>)."""
    if len(outs) == 1:
        outs[0].backward(us[0])
        return
    total = None
    for o, u in zip(outs, us):
        term = (o * dlia.tensor(u)).sum()
        total = term if total is None else total + term
    total.backward()


def _backward_torch(outs: list[torch.Tensor], us: list[np.ndarray]) -> None:
    if len(outs) == 1:
        outs[0].backward(torch.from_numpy(us[0]))
        return
    sum((o * torch.from_numpy(u)).sum() for o, u in zip(outs, us)).backward()


# -- oracle 1: finite differences --------------------------------------------------------------
def _project(fn: Callable[..., Any], arrays: Arrays, vs: list[Any], us: list[np.ndarray], step: float) -> float:
    """<u, f(x + step·v)>, summed over outputs, without recording a graph."""
    shifted = [a + step * v if v is not None else a for a, v in zip(arrays, vs)]
    with dlia.no_grad():
        ys = as_list(fn(*[dlia.tensor(s) for s in shifted]))
    return sum(float(np.vdot(y.numpy(), u)) for y, u in zip(ys, us))


def check_vjp(
    fn: Callable[..., Any],
    *arrays: np.ndarray,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    directions: int = 2,
    seed: int = 0,
) -> None:
    """Check ``fn``'s backward pass against central finite differences, in float64.

    Every floating input is differentiated and perturbed; integer and boolean inputs (indices,
    masks) are passed through unchanged. ``fn`` takes dlia tensors and returns a tensor or a list
    of tensors. The directional derivative must agree to ``rtol`` relative to
    ``max(|analytic|, |numeric|, Σ|gradᵢ·vᵢ|)`` (the last term guards against cancellation).
    Also checks that each gradient has its input's shape and dtype.
    """
    if not any(is_float(a) for a in arrays):
        raise ValueError("check_vjp: no floating-point input to differentiate")
    for a in arrays:
        if is_float(a) and a.dtype != np.float64:
            raise ValueError(f"check_vjp needs float64 inputs, got {a.dtype}")
    rng = np.random.default_rng(seed)
    for _ in range(directions):
        xs = [dlia.tensor(a.copy(), requires_grad=is_float(a)) for a in arrays]
        outs = as_list(fn(*xs))
        us = [rng.standard_normal(o.shape) for o in outs]
        vs = [rng.standard_normal(a.shape) if is_float(a) else None for a in arrays]
        _backward_dlia(outs, us)

        analytic, magnitude = 0.0, 0.0
        for x, a, v in zip(xs, arrays, vs):
            if v is None:
                continue
            g = dense(x.grad)
            if g is None:
                continue
            assert g.shape == a.shape, f"gradient shape {g.shape} != input shape {a.shape}"
            assert g.dtype == a.dtype, f"gradient dtype {g.dtype} != input dtype {a.dtype}"
            analytic += float(np.vdot(g, v))
            magnitude += float(np.abs(g * v).sum())

        numeric = (_project(fn, arrays, vs, us, eps) - _project(fn, arrays, vs, us, -eps)) / (2 * eps)
        scale = max(abs(analytic), abs(numeric), magnitude, 1e-3)
        assert abs(analytic - numeric) <= rtol * scale, (
            f"vjp disagrees with finite differences: analytic {analytic!r}, numeric {numeric!r}, "
            f"relative error {abs(analytic - numeric) / scale:.3g}"
        )


# -- oracle 2: PyTorch -------------------------------------------------------------------------
def _assert_close(name: str, ours: np.ndarray, theirs: np.ndarray, atol: float, rtol: float) -> None:
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} != torch's {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{name}: dtype {ours.dtype} != torch's {theirs.dtype}"
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=rtol, err_msg=f"{name} differs from torch")


def compare_torch(
    dlia_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    *arrays: np.ndarray,
    atol: float = 1e-10,
    rtol: float = 1e-7,
    grad: bool = True,
    seed: int = 0,
) -> tuple[list[dlia.Tensor], list[dlia.Tensor]]:
    """Run the same inputs through dlia and torch and compare outputs and input gradients.

    Floating inputs require gradients on both sides; integer/boolean inputs do not. Compares the
    shape, dtype and values of every output; then (if ``grad``) backpropagates one random
    cotangent per output through both and compares every floating input's gradient (sparse ones
    densified; a missing gradient counts as zeros). Returns dlia's outputs and input tensors.
    """
    xs = [dlia.tensor(a.copy(), requires_grad=is_float(a)) for a in arrays]
    ts = [torch.tensor(a.copy(), requires_grad=is_float(a)) for a in arrays]
    outs = as_list(dlia_fn(*xs))
    touts = as_list(torch_fn(*ts))
    assert len(outs) == len(touts), f"{len(outs)} outputs, torch gives {len(touts)}"
    for i, (o, t) in enumerate(zip(outs, touts)):
        _assert_close(f"output {i}", o.numpy(), t.detach().numpy(), atol, rtol)
    if not grad:
        return outs, xs
    rng = np.random.default_rng(seed)
    us = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs]
    _backward_dlia(outs, us)
    _backward_torch(touts, us)
    for i, (x, t, a) in enumerate(zip(xs, ts, arrays)):
        if not is_float(a):
            continue
        ours, theirs = dense(x.grad), dense(t.grad)
        ours = np.zeros_like(a) if ours is None else ours
        theirs = np.zeros_like(a) if theirs is None else theirs
        _assert_close(f"gradient of input {i}", ours, theirs, atol, rtol)
    return outs, xs


def assert_both_raise(
    dlia_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    *arrays: np.ndarray,
    error: type[BaseException] | tuple[type[BaseException], ...] = Exception,
) -> BaseException:
    """Both libraries must reject these inputs; dlia with ``error``. Returns dlia's exception."""
    torch_error = None
    try:
        with warnings.catch_warnings():  # torch warns before some of its errors; only the error matters
            warnings.simplefilter("ignore")
            torch_fn(*[torch.tensor(a) for a in arrays])
    except Exception as e:  # noqa: BLE001 - any torch error counts as a rejection
        torch_error = e
    assert torch_error is not None, "torch accepted inputs that dlia is expected to reject"
    try:
        dlia_fn(*[dlia.tensor(a) for a in arrays])
    except error as e:
        return e
    raise AssertionError(f"dlia did not raise {error} (torch raised {type(torch_error).__name__}: {torch_error})")


# -- oracle 3: the table -----------------------------------------------------------------------
def _shape_text(shapes: Sequence[tuple[int, ...]]) -> str:
    return "x".join("(" + ",".join(map(str, s)) + ")" for s in shapes)


@dataclass(frozen=True)
class OpCase:
    """One op on one set of input shapes.

    Attributes:
        name: short op name; with the shapes it makes the test id.
        dlia_fn: takes dlia tensors (one per shape), returns a tensor or a list of tensors.
        torch_fn: the same computation on torch tensors; None when torch has no twin.
        shapes: one shape per input, e.g. ``((3, 1, 4), (2, 4))`` for broadcasting.
        domains: one ``make_array`` domain per input (or one for all).
        fd: run the finite-difference check (off for ops that are not smooth in float64).
        graph: compare graph mode (Session) with eager (off for random ops).
        atol32, rtol32: tolerances of the float32 comparison with torch.
    """

    name: str
    dlia_fn: Callable[..., Any]
    torch_fn: Callable[..., Any] | None
    shapes: tuple[tuple[int, ...], ...]
    domains: tuple[str, ...] | str = "real"
    fd: bool = True
    atol32: float = 1e-5
    rtol32: float = 1e-5
    tag: str = field(default="")
    graph: bool = True

    @property
    def id(self) -> str:
        extra = f"[{self.tag}]" if self.tag else ""
        return f"{self.name}{extra}-{_shape_text(self.shapes)}"

    def inputs(self, dtype: Any = np.float64) -> list[np.ndarray]:
        """Seeded inputs; floating ones in ``dtype`` (the same values in both precisions)."""
        rng = np.random.default_rng(seed_of(self.id))
        domains = (self.domains,) * len(self.shapes) if isinstance(self.domains, str) else self.domains
        assert len(domains) == len(self.shapes), f"{self.id}: {len(domains)} domains for {len(self.shapes)} inputs"
        out = []
        for shape, domain in zip(self.shapes, domains):
            a = make_array(rng, shape, domain)
            out.append(a.astype(dtype) if is_float(a) else a)
        return out


def cases(
    name: str,
    dlia_fn: Callable[..., Any],
    torch_fn: Callable[..., Any] | None,
    shape_sets: Sequence[Sequence[tuple[int, ...]]],
    domains: tuple[str, ...] | str = "real",
    **options: Any,
) -> list[OpCase]:
    """One ``OpCase`` per shape set, sharing everything else."""
    return [OpCase(name, dlia_fn, torch_fn, tuple(map(tuple, s)), domains, **options) for s in shape_sets]


class OpTestCase:
    """Base class of table-driven op tests: subclasses set ``cases`` and inherit every check.

    ``tests/conftest.py`` parametrizes the ``case`` argument over ``cases`` (ids from the op name
    and the shapes).
    """

    cases: ClassVar[list[OpCase]] = []

    def test_gradient_matches_finite_differences(self, case: OpCase) -> None:
        if not case.fd:
            pytest.skip("not smooth enough for finite differences in float64")
        check_vjp(case.dlia_fn, *case.inputs(np.float64), seed=seed_of(case.id))

    def test_float64_matches_torch(self, case: OpCase) -> None:
        if case.torch_fn is None:
            pytest.skip("no torch twin")
        compare_torch(case.dlia_fn, case.torch_fn, *case.inputs(np.float64), seed=seed_of(case.id))

    @pytest.mark.gpu
    def test_gpu_matches_cpu(self, case: OpCase) -> None:
        """The same op on Device("gpu") (CuPy) gives the CPU's outputs and gradients."""
        if not dlia.gpu_available:
            pytest.skip("no GPU: needs CuPy and a CUDA device")
        compare_devices(case.dlia_fn, *case.inputs(np.float64), seed=seed_of(case.id))

    def test_graph_mode_matches_eager(self, case: OpCase) -> None:
        if not case.graph:
            pytest.skip("not comparable in graph mode (random)")
        compare_graph_mode(case.dlia_fn, *case.inputs(np.float64), seed=seed_of(case.id))

    def test_float32_matches_torch(self, case: OpCase) -> None:
        if case.torch_fn is None:
            pytest.skip("no torch twin")
        compare_torch(
            case.dlia_fn, case.torch_fn, *case.inputs(np.float32),
            atol=case.atol32, rtol=case.rtol32, seed=seed_of(case.id),
        )


# -- oracle 4: graph mode ----------------------------------------------------------------------
def compare_graph_mode(dlia_fn: Callable[..., Any], *arrays: np.ndarray, seed: int = 0) -> None:
    """The same op through eager autodiff and through a graph run by a Session (placeholders,
    ``gradients``): outputs must be equal and gradients equal to rounding."""
    from dlia import graph as G

    xs = [dlia.tensor(a.copy(), requires_grad=is_float(a)) for a in arrays]
    outs = as_list(dlia_fn(*xs))
    rng = np.random.default_rng(seed)
    us = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs]
    _backward_dlia(outs, us)

    g = G.Graph()
    phs = [G.placeholder(a.shape, a.dtype, graph=g) for a in arrays]
    gouts = as_list(dlia_fn(*phs))
    assert all(isinstance(o, G.Node) for o in gouts), "graph mode returned a non-node"
    assert [o.shape for o in gouts] == [o.shape for o in outs], "inferred shapes differ from eager shapes"
    loss = None
    for o, u in zip(gouts, us):
        term = (o * G.constant(u, graph=g)).sum()
        loss = term if loss is None else loss + term
    float_phs = [p for p, a in zip(phs, arrays) if is_float(a)]
    grads = G.gradients(loss, float_phs) if float_phs else []
    with G.Session(g) as sess:
        got_outs, got_grads = sess.run([gouts, grads], dict(zip(phs, arrays)))
    for i, (o, v) in enumerate(zip(outs, got_outs)):
        assert v.dtype == o.numpy().dtype, f"output {i}: graph dtype {v.dtype} != eager {o.numpy().dtype}"
        np.testing.assert_array_equal(v, o.numpy(), err_msg=f"output {i}: graph mode differs from eager")
    floats = [x for x, a in zip(xs, arrays) if is_float(a)]
    for i, (x, v) in enumerate(zip(floats, got_grads)):
        ours = dense(x.grad)
        if ours is None:
            assert v is None or not np.any(dense_value(v)), f"gradient {i}: graph has one, eager none"
            continue
        assert v is not None, f"gradient {i}: eager has one, graph none"
        np.testing.assert_allclose(dense_value(v), ours, rtol=1e-12, atol=1e-12,
                                   err_msg=f"gradient {i}: graph mode differs from eager")


def dense_value(v: Any) -> np.ndarray:
    return v.to_dense() if hasattr(v, "to_dense") else np.asarray(v)


def compare_devices(dlia_fn: Callable[..., Any], *arrays: np.ndarray, seed: int = 0, device: str = "gpu") -> None:
    """Outputs and input gradients on ``device`` equal the CPU's (to float64 rounding)."""
    results = []
    for dev in ("cpu", device):
        xs = [dlia.tensor(a.copy(), requires_grad=is_float(a), device=dev) for a in arrays]
        outs = as_list(dlia_fn(*xs))
        rng = np.random.default_rng(seed)
        us = [dlia.tensor(rng.standard_normal(o.shape).astype(o.dtype), device=dev) for o in outs]
        total = None
        for o, u in zip(outs, us):
            term = (o * u).sum()
            total = term if total is None else total + term
        total.backward()
        results.append(([o.numpy() for o in outs], [None if x.grad is None else dense(x.grad) for x in xs]))
    (cpu_outs, cpu_grads), (dev_outs, dev_grads) = results
    for a, b in zip(cpu_outs, dev_outs):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
    for a, b in zip(cpu_grads, dev_grads):
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
