"""``dlia.compile``: trace an eager Python function into a graph once per input signature, then
run it through the Session machinery (constant folding, CSE, fusion, memory planning).

The compiled function is itself one differentiable op for eager autodiff: its forward runs the
forward part of the plan, and when ``backward()`` reaches it, the gradient part — built from the ops'
own vjps by ``gradients`` — runs on the contexts the forward part kept. Eager tensors the function
reads (parameters, buffers) are read at every call, so optimizer updates are seen; Python numbers
are constants. Like any tracer it sees one path through Python control flow: code that branches on
tensor values, calls ``.item()``/``.numpy()`` or mutates module state cannot be compiled.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy

from dlia.backend.device import get_device
from dlia.core.function import Function, is_grad_enabled, tracing
from dlia.core.tensor import Tensor, wrap
from dlia.graph.codegen import generate
from dlia.graph.core import Graph, GraphError, Node, placeholder
from dlia.graph.gradients import gradients
from dlia.graph.session import Plan


def _signature(a: Any) -> Any:
    if isinstance(a, Tensor):
        return ("T", a.data.shape, a.data.dtype.str, a.requires_grad, type(a.data) is numpy.ndarray)
    if isinstance(a, numpy.ndarray):
        return ("A", a.shape, a.dtype.str)
    try:
        hash(a)
    except TypeError:
        raise TypeError(f"dlia.compile: argument of type {type(a).__name__} is neither a tensor nor hashable") from None
    return ("V", type(a).__name__, a)  # 2 and 2.0 (or True and 1) trace differently


class _Traced:
    """One traced signature: the graph, its inputs (placeholders then captures) and its plans."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], xp: Any = None) -> None:
        self.graph = graph = Graph(f"compiled:{getattr(fn, '__name__', 'fn')}")
        self.arg_nodes: list[Node] = []
        call_args = []
        for a in args:
            if isinstance(a, (Tensor, numpy.ndarray)):
                arr = a.data if isinstance(a, Tensor) else a
                ph = placeholder(arr.shape, arr.dtype, name=f"arg{len(self.arg_nodes)}", graph=graph)
                ph.requires_grad = isinstance(a, Tensor) and a.requires_grad
                self.arg_nodes.append(ph)
                call_args.append(ph)
            else:
                call_args.append(a)
        captures: dict[int, Node] = {}
        try:
            with graph.as_default(), tracing(captures):
                out = fn(*call_args)
        except GraphError as e:
            raise GraphError(f"dlia.compile could not trace {getattr(fn, '__name__', fn)!r}: {e}") from None
        self.captures = list(captures.values())
        if xp is None:  # no device given and no tensor argument: run where the tensors it reads live
            xp = next((c.capture.device.xp for c in self.captures), numpy)
        self.single = isinstance(out, Node)
        outs = [out] if self.single else list(out) if isinstance(out, (list, tuple)) else None
        if outs is None or not all(isinstance(o, Node) for o in outs):
            raise GraphError(f"dlia.compile: {getattr(fn, '__name__', fn)!r} must return a tensor computed from its "
                             f"inputs, or a tuple of them (got {type(out).__name__})")
        self.outputs = outs
        self.inputs = self.arg_nodes + self.captures
        self.forward_plan = Plan(outs, self.inputs)
        self.forward_fn, _, self.forward_source = generate(self.forward_plan, self.inputs, None, xp)
        self._train_plan: Plan | None = None
        self.xp = xp

    def train_plan(self) -> tuple[Plan, list[Node]]:
        """Outputs plus the gradients of every floating input, with the output gradients fed later."""
        if self._train_plan is None:
            if not self.single:
                raise GraphError("dlia.compile: backward through a function with several outputs is not supported; "
                                 "return one tensor (e.g. the loss)")
            out = self.outputs[0]
            self.grad_y = placeholder(out.static_shape, out.static_dtype, name="grad_output", graph=self.graph)
            diff = [n for n in self.inputs if n.static_dtype.kind == "f" and n.requires_grad]
            grads = gradients(out, diff, grad_ys=[self.grad_y]) if diff else []
            by_input = {id(n): g for n, g in zip(diff, grads)}
            self.grad_nodes = [by_input.get(id(n)) for n in self.inputs]
            fetch = [out] + [g for g in self.grad_nodes if g is not None]
            self._train_plan = Plan(fetch, self.inputs, later=[self.grad_y])
            self.phase1, self.phase2, self.train_source = generate(self._train_plan, self.inputs, self.grad_y, self.xp)
        return self._train_plan, self.grad_nodes


class CompiledCall(Function):
    """The eager op a compiled function becomes when gradients are needed: its forward runs the
    generated forward phase, its vjp the gradient phase on the state the forward phase kept."""

    def forward(self, *arrays: Any, traced: _Traced = None) -> Any:
        traced.train_plan()
        outs, self.state = traced.phase1(*arrays)
        self.traced = traced
        return outs[0]

    def vjp(self, g: Any) -> tuple[Any, ...]:
        traced, state, self.state = self.traced, self.state, None
        if state is None:
            raise RuntimeError("backward(): this compiled call's gradient code already ran and freed what it kept; "
                               "backward twice through a dlia.compile function (retain_graph=True) is not supported")
        fetched = iter(traced.phase2(state, g))
        return tuple(None if gn is None else next(fetched) for gn in traced.grad_nodes)


class CompiledFunction:
    """What ``dlia.compile`` returns: call it like the original function."""

    def __init__(self, fn: Callable[..., Any], device: Any = None) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.cache: dict[Any, _Traced] = {}
        #: where the compiled code runs; None: on the device of the tensor arguments
        self.device = None if device is None else get_device(device)

    def _xp(self, args: tuple[Any, ...]) -> Any:
        """The array module to trace for: the given device's, else the tensor arguments', else
        None (decided after tracing, from the tensors the function reads)."""
        if self.device is not None:
            return self.device.xp
        for a in args:
            if isinstance(a, Tensor):
                return a.device.xp
        return None

    def trace(self, *args: Any) -> _Traced:
        """The traced graph for these arguments (traced now if this signature is new)."""
        key = tuple(_signature(a) for a in args)
        traced = self.cache.get(key)
        if traced is None:
            traced = self.cache[key] = _Traced(self.fn, args, self._xp(args))
        return traced

    def __call__(self, *args: Any) -> Any:
        traced = self.trace(*args)
        xp = traced.xp
        tensors = [a if isinstance(a, Tensor) else wrap(xp.asarray(a)) for a in args if isinstance(a, (Tensor, numpy.ndarray))]
        tensors += [c.capture for c in traced.captures]
        if is_grad_enabled() and any(t.requires_grad for t in tensors):
            traced.train_plan()  # built (and checked) here, outside the op
            return CompiledCall.apply(*tensors, traced=traced)
        outs, _ = traced.forward_fn(*[xp.asarray(t.data) for t in tensors])
        res = [wrap(o) for o in outs]
        return res[0] if traced.single else tuple(res)


def compile(fn: Callable[..., Any] | None = None, *, device: Any = None) -> Any:  # noqa: A001 - torch's name
    """Trace ``fn`` into a graph once per input signature (shapes, dtypes, non-tensor values) and
    run the graph on later calls. Use as ``@dlia.compile`` or ``dlia.compile(fn)``.

    Example:
        >>> @dlia.compile
        ... def loss_fn(x, y):
        ...     return dlia.cross_entropy(model(x), y)
        >>> loss = loss_fn(xb, yb); loss.backward(); opt.step()   # doctest: +SKIP
    """
    if fn is None:
        return lambda f: CompiledFunction(f, device)
    return CompiledFunction(fn, device)
