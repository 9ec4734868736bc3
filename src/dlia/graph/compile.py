"""``dlia.compile``: trace an eager Python function into a graph once per input signature, then
run it through the Session machinery (constant folding, CSE, fusion, memory planning).

The compiled function is itself one differentiable op for eager autodiff: its forward runs the
forward part of the plan, and when ``backward()`` reaches it, the gradient part — built from the ops'
own vjps by ``gradients`` — runs on the contexts the forward part kept. Eager tensors the function
reads (parameters, buffers) are read at every call, so optimizer updates are seen; Python numbers
are constants. Like any tracer it sees one path through Python control flow: code that branches on
tensor values, calls ``.item()``/``.numpy()`` or mutates module state cannot be compiled.

A trace is only valid while what it read is unchanged, so each one keeps guards, checked at every
call: the ``training`` flag of every module the code called; the type, shape, dtype and
``requires_grad`` of every tensor it read; and the identity of what sits where each tensor (or
module) was found — a module's attribute, the function's globals and closure. When a guard fails
the function is traced again; a few traces per signature are kept (train and eval mode).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import numpy

from dlia.backend.device import Device, get_device
from dlia.core.function import Function, enable_grad, is_grad_enabled, tracing
from dlia.core.tensor import Tensor, wrap
from dlia.graph.codegen import generate
from dlia.graph.core import Graph, GraphError, Node, Trace, placeholder
from dlia.graph.gradients import gradients
from dlia.graph.plan import Plan
from dlia.nn.module import Module, observe_calls

#: traces kept per input signature (most recently used first)
_MAX_TRACES = 8


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


class _Reads:
    """Where the traced code found the tensors and modules it read, collected while tracing: the
    modules it called, and for each tensor or module the namespace (a module's attributes, the
    function's globals or closure) that held it."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.modules: dict[int, Module] = {}
        self.walked: set[int] = set()
        self.slots: dict[int, tuple[dict[str, Any], str]] = {}  # id(tensor) -> (module's attributes, name)
        self.child_slots: list[tuple[dict[str, Any], str, Module]] = []  # (module's attributes, name, child)
        self.fn_slots: list[tuple[Any, str | None, Any]] = []  # (globals, name, value) or (closure cell, None, value)
        code = getattr(fn, "__code__", None)
        if code is not None:
            names = fn.__globals__
            found = [(names, name, names.get(name)) for name in code.co_names]
            for cell in fn.__closure__ or ():
                with contextlib.suppress(ValueError):  # an empty cell
                    found.append((cell, None, cell.cell_contents))
            self.fn_slots = [(where, name, v) for where, name, v in found if isinstance(v, (Tensor, Module))]
        self.fn_tensors = {id(v) for _, _, v in self.fn_slots if isinstance(v, Tensor)}
        owner = getattr(fn, "__self__", None)  # a module's bound method: its module is read
        if isinstance(owner, Module):
            self.called(owner)

    def called(self, module: Module) -> None:
        """A module is about to run: its flag and every tensor in its subtree become known sources."""
        if id(module) in self.modules:
            return
        self.modules[id(module)] = module
        for sub in module.modules():  # a forward may read a submodule's tensor without calling it
            if id(sub) not in self.walked:
                self.walked.add(id(sub))
                names = vars(sub)
                for name, v in names.items():
                    if isinstance(v, Tensor):
                        self.slots.setdefault(id(v), (names, name))
                    elif isinstance(v, Module):  # a child replaced later (``m.fc = nn.Linear(...)``) retraces
                        self.child_slots.append((names, name, v))

    def __contains__(self, tensor_id: int) -> bool:
        """Whether a tensor was found in a module or in the function's namespace (so it is
        captured, and guarded, even when 0-d)."""
        return tensor_id in self.slots or tensor_id in self.fn_tensors


def _reads_values(e: BaseException) -> bool:
    """Whether an error raised while tracing came from code that handled a graph node's symbolic
    data as an array."""
    return "_Symbolic" in str(e) or "symbolic" in str(e) or "Python objects" in str(e)


class _Traced:
    """One traced signature: the graph, its inputs (placeholders then captures), its plans, and
    the guards under which it stays valid."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], device: Device | None = None) -> None:
        self.graph = graph = Graph(f"compiled:{getattr(fn, '__name__', 'fn')}", device)
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
        reads = _Reads(fn)
        try:
            # traced with gradients on whatever the caller's grad mode: the trace serves calls in both
            # modes, and only the function's own ``no_grad`` blocks cut the gradient
            with graph.as_default(), tracing(Trace(captures, reads)), enable_grad(), observe_calls(reads.called):
                out = fn(*call_args)
        except GraphError as e:
            raise GraphError(f"dlia.compile could not trace {getattr(fn, '__name__', fn)!r}: {e}") from None
        except (AttributeError, TypeError) as e:
            if not _reads_values(e):
                raise
            raise GraphError(f"dlia.compile could not trace {getattr(fn, '__name__', fn)!r}: it computes on a tensor's "
                             f"values in Python (.data, .numpy(), .item(), detach(), or BatchNorm in train mode), which "
                             f"a trace does not have ({type(e).__name__}: {e}); run it eagerly") from None
        self.captures = list(captures.values())
        self._guard(reads)
        if device is None:  # no device given and no tensor argument: run where the tensors it reads live
            device = next((c.capture.device for c in self.captures), graph.device)
        xp = device.xp
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

    def _guard(self, reads: _Reads) -> None:
        """Record what this trace assumed: checked by ``valid`` before every reuse."""
        tensors = [c.capture for c in self.captures]
        self.tensor_guards = tuple((t, type(t.data), t.data.shape, t.data.dtype, t.requires_grad) for t in tensors)
        self.slot_guards = tuple((*reads.slots[id(t)], t) for t in tensors if id(t) in reads.slots) + tuple(reads.child_slots)
        self.fn_guards = tuple(reads.fn_slots)
        self.module_guards = tuple((m, m.training) for m in reads.modules.values())

    def valid(self) -> bool:
        """Whether everything the trace read is as it was: a few attribute reads per tensor and module."""
        for t, kind, shape, dtype, requires_grad in self.tensor_guards:
            d = t.data
            if (type(d) is not kind or d.shape != shape or (d.dtype is not dtype and d.dtype != dtype)
                    or t.requires_grad != requires_grad):
                return False
        for names, name, t in self.slot_guards:
            if names.get(name) is not t:
                return False
        try:
            for where, name, v in self.fn_guards:
                if (where.get(name) if name is not None else where.cell_contents) is not v:
                    return False
        except ValueError:  # a closure variable deleted since
            return False
        for m, training in self.module_guards:
            if m.training != training:
                return False
        return True

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
        #: input signature -> its traces, the most recently used first
        self.cache: dict[Any, list[_Traced]] = {}
        #: where the compiled code runs; None: on the device of the tensor arguments
        self.device = None if device is None else get_device(device)

    def _device(self, args: tuple[Any, ...]) -> Device | None:
        """The device to trace for: the given one, else the tensor arguments', else None (decided
        after tracing, from the tensors the function reads)."""
        if self.device is not None:
            return self.device
        for a in args:
            if isinstance(a, Tensor):
                return a.device
        return None

    def trace(self, *args: Any) -> _Traced:
        """The traced graph for these arguments, traced now if this signature is new or no trace of
        it is valid any more (a module switched to eval mode, a parameter replaced or unfrozen)."""
        key = tuple(_signature(a) for a in args)
        traces = self.cache.get(key)
        if traces is None:
            traces = self.cache[key] = []
        elif traces[0].valid():
            return traces[0]
        else:
            for k in range(1, len(traces)):
                if traces[k].valid():
                    traces.insert(0, traces.pop(k))
                    return traces[0]
        traced = _Traced(self.fn, args, self._device(args))
        traces.insert(0, traced)
        del traces[_MAX_TRACES:]
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
