"""The op base class, grad mode and the error type every op raises for bad shapes.

An op is one small class: ``forward(self, *arrays, **attrs)`` computes on raw arrays of the
device's array module (``self.xp``) and saves what the gradient needs on ``self`` (the context);
``vjp(self, grad)`` returns one gradient per input (``None`` where an input needs none). The same
class serves eager tensors (``Op.apply``) and, later, nodes of a static graph.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import ModuleType
from typing import Any, ClassVar

import numpy

from dlia.backend.device import get_array_module
from dlia.core.tensor import Tensor, write_clock

_ndarray = numpy.ndarray


class _Symbolic:
    """The ``data`` of a graph node: it has no value until a Session runs the graph."""

    shape = dtype = None

    def __repr__(self) -> str:
        return "<symbolic>"


SYMBOLIC = _Symbolic()

#: builds a graph node for an op applied to symbolic inputs; ``dlia.graph`` registers it on import
_graph_builder: Callable[[type[Function], tuple[Tensor, ...], dict[str, Any]], Tensor] | None = None


def register_graph_builder(builder: Callable[[type[Function], tuple[Tensor, ...], dict[str, Any]], Tensor]) -> None:
    """Let ``Function.apply`` hand ops on symbolic inputs (and, while tracing, on any tensor) to
    ``builder(op_class, inputs, attrs)``. Called once by ``dlia.graph``, which core never imports."""
    global _graph_builder
    _graph_builder = builder


class ShapeError(ValueError):
    """Inputs whose shapes an op cannot combine; the message names the op and every shape."""


def shape_error(op: str, detail: str, *shapes: tuple[int, ...]) -> ShapeError:
    """Build the one error every op raises for bad shapes: ``op: detail (shapes: ...)``."""
    listed = ", ".join(str(tuple(s)) for s in shapes)
    return ShapeError(f"{op}: {detail} (input shapes: {listed})")


class DeviceError(RuntimeError):
    """Inputs of one op that live on different devices (a NumPy array beside a CuPy one)."""


def _where(a: Any) -> str:
    return "cpu" if isinstance(a, (numpy.ndarray, numpy.generic)) else "gpu"


def _check_one_device(cls: type, args: tuple[Any, ...]) -> None:
    if len({_where(a) for a in args if hasattr(a, "ndim")}) > 1:
        where = ", ".join(f"{_where(a)} {tuple(a.shape)}" for a in args if hasattr(a, "ndim"))
        raise DeviceError(f"{cls.__name__.lower()}: inputs are on different devices ({where}); "
                          "move them to one with .to('gpu') or .to('cpu')")


# -- modes ---------------------------------------------------------------------------------------
class Mode:
    """What ops do right now: record the graph for backprop (``grad``) and whether ``dlia.compile``
    is tracing (``trace``: the tracer's own state, opaque to core; ``None`` when not tracing).

    The current mode lives in a ``ContextVar``, so each thread (and asyncio task) has its own, as
    torch's grad mode is thread-local; a new thread starts in the default mode. It is changed only
    through the functions and context managers below, each of which restores what it found.
    """

    __slots__ = ("grad", "trace")

    def __init__(self, grad: bool = True, trace: Any = None) -> None:
        self.grad = grad
        self.trace = trace

    def __repr__(self) -> str:
        return f"Mode(grad={self.grad}, trace={self.trace!r})"


_GRAD_ON, _GRAD_OFF = Mode(True), Mode(False)
_MODE: ContextVar[Mode] = ContextVar("dlia_mode", default=_GRAD_ON)
#: the current ``Mode`` of this thread or task (``ContextVar.get`` itself: ``Function.apply`` calls it per op)
current_mode: Callable[[], Mode] = _MODE.get


def set_grad_mode(enabled: bool) -> Token[Mode]:
    """Switch graph recording on or off in this context; ``restore_mode(token)`` switches back.
    (The cheap form of ``no_grad()``, for loops that pay per call, like ``Optimizer.step``.)"""
    mode = _MODE.get()
    if mode.trace is None:
        return _MODE.set(_GRAD_ON if enabled else _GRAD_OFF)
    return _MODE.set(Mode(bool(enabled), mode.trace))


#: ``restore_mode(token)`` puts back the mode that the call which returned ``token`` found
#: (``ContextVar.reset`` itself: no Python frame in ``Optimizer.step``)
restore_mode: Callable[[Token[Mode]], None] = _MODE.reset


@contextmanager
def tracing(trace: Any) -> Iterator[None]:
    """Inside: ops on eager tensors become graph nodes too, with ``trace`` (the tracer's state) in
    ``current_mode().trace`` for the graph builder; used by ``dlia.compile``."""
    token = _MODE.set(Mode(_MODE.get().grad, trace))
    try:
        yield
    finally:
        _MODE.reset(token)


class _GradSwitch:
    """A context manager and decorator that sets grad mode and restores it, per entry: each
    ``with`` and each call of a decorated function saves what it found, so nesting, recursive
    calls and threads each get their own mode back (the saved modes of ``with`` blocks are kept per
    thread, and a decorated function keeps its per-call state on the stack). A decorated generator
    function runs each step of its body in the mode, as torch does."""

    enabled = True

    def __init__(self) -> None:
        self._local = threading.local()

    def _stack(self) -> list[Token[Mode]]:
        stack = getattr(self._local, "tokens", None)
        if stack is None:
            stack = self._local.tokens = []
        return stack

    def __enter__(self) -> None:
        self._stack().append(set_grad_mode(self.enabled))

    def __exit__(self, *exc: object) -> None:
        restore_mode(self._stack().pop())

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        enabled = self.enabled
        if inspect.isgeneratorfunction(fn):
            return functools.wraps(fn)(lambda *args, **kwargs: _switched_generator(fn(*args, **kwargs), enabled))

        @functools.wraps(fn)
        def switched(*args: Any, **kwargs: Any) -> Any:
            token = set_grad_mode(enabled)
            try:
                return fn(*args, **kwargs)
            finally:
                restore_mode(token)

        return switched


def _switched_generator(gen: Generator[Any, Any, Any], enabled: bool) -> Generator[Any, Any, Any]:
    """Drive ``gen`` with grad mode ``enabled`` during each of its steps, the caller's mode between."""
    send: Any = None
    throw: BaseException | None = None
    while True:
        token = set_grad_mode(enabled)
        try:
            value = gen.send(send) if throw is None else gen.throw(throw)
        except StopIteration as e:
            return e.value
        finally:
            restore_mode(token)
        try:
            send, throw = (yield value), None
        except GeneratorExit:
            gen.close()
            raise
        except BaseException as e:  # thrown in by the caller: passed on into ``gen``
            send, throw = None, e


class _NoArgSwitch(_GradSwitch):
    """``no_grad``/``enable_grad``: also usable as a decorator without parentheses, as in torch."""

    def __new__(cls, fn: Callable[..., Any] | None = None) -> Any:
        self = super().__new__(cls)
        if fn is None:
            return self
        self.__init__()
        return self(fn)

    def __init__(self, fn: Callable[..., Any] | None = None) -> None:
        super().__init__()


class no_grad(_NoArgSwitch):  # noqa: N801 - torch's name
    """Context manager and decorator: ops inside record no graph (like ``torch.no_grad``)."""

    enabled = False


class enable_grad(_NoArgSwitch):  # noqa: N801 - torch's name
    """Context manager and decorator that turns graph recording back on."""

    enabled = True


class set_grad_enabled(_GradSwitch):  # noqa: N801 - torch's name
    """Turn graph recording on or off, like ``torch.set_grad_enabled``: called alone it switches
    until switched back; ``with set_grad_enabled(flag):`` restores the previous mode on exit; as a
    decorator it switches only during each call."""

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self.enabled = bool(mode)
        self.prev = is_grad_enabled()
        self._stack().append(set_grad_mode(self.enabled))  # switch now: a plain call must take effect

    def __enter__(self) -> None:
        pass  # already switched by __init__

    def __exit__(self, *exc: object) -> None:
        stack = self._stack()
        if stack:
            restore_mode(stack.pop())
        else:  # the instance used again (torch allows it): back to the mode found when it was made
            set_grad_mode(self.prev)

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        stack = self._stack()
        if stack:
            restore_mode(stack.pop())  # decorating switches nothing
        return super().__call__(fn)


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph for backprop (in this thread)."""
    return _MODE.get().grad


class Function:
    """Base class of every differentiable op.

    Subclasses define ``forward(self, *arrays, **attrs)`` and ``vjp(self, grad)``. ``apply`` runs
    the forward on the inputs' arrays and, when any input requires a gradient, keeps the instance
    as the output's context so backprop can call ``vjp`` later.
    """

    #: inputs of the recorded call; ``None`` once backward freed the graph
    parents: Any = None
    #: per input: whether it requires a gradient (a vjp may skip the others)
    needs: tuple[bool, ...] = ()
    #: the array module of the inputs (numpy or cupy)
    xp: ModuleType = numpy
    #: the in-place write clock when the call was recorded (``backward`` checks later writes)
    clock: int = 0
    #: number of leading inputs that are differentiable; the rest (indices, masks) never are
    differentiable: ClassVar[int | None] = None
    #: True when every array ``vjp`` returns is newly made and given to one input only, so backprop
    #: may store it as a leaf's ``.grad`` without a defensive copy (views of ``grad`` are not fresh)
    fresh_grads: ClassVar[bool] = False

    def forward(self, *arrays: Any, **attrs: Any) -> Any:
        raise NotImplementedError(f"op {type(self).__name__} has no forward")

    def vjp(self, grad: Any) -> tuple[Any, ...]:
        raise NotImplementedError(f"op {type(self).__name__} has no gradient rule (vjp)")

    @classmethod
    def apply(cls, *inputs: Tensor, **attrs: Any) -> Tensor:
        """Run the op eagerly on tensors and record it for backprop when needed.

        Given a symbolic graph node among the inputs, it builds a graph node instead (the same op
        class serves both modes; see ``dlia.graph``).
        """
        ctx = object.__new__(cls)
        n = len(inputs)
        # the arrays, and whether any is not a NumPy array (graph node, CuPy) or we are tracing
        if n == 1:
            args = (inputs[0].data,)
            foreign = type(args[0]) is not _ndarray
        elif n == 2:
            args = (inputs[0].data, inputs[1].data)
            foreign = type(args[0]) is not _ndarray or type(args[1]) is not _ndarray
        elif n == 3:
            args = (inputs[0].data, inputs[1].data, inputs[2].data)
            foreign = type(args[0]) is not _ndarray or type(args[1]) is not _ndarray or type(args[2]) is not _ndarray
        else:
            args = tuple([t.data for t in inputs])
            foreign = any(type(a) is not _ndarray for a in args)
        mode = current_mode()
        if foreign or mode.trace is not None:  # symbolic graph nodes, tracing, or CuPy arrays
            for t in inputs:
                if not isinstance(t, Tensor):  # a raw array's .data is a memoryview, not an array
                    raise TypeError(f"{cls.__name__.lower()}: expected dlia tensors, got a {type(t).__module__}."
                                    f"{type(t).__name__}; wrap it with dlia.tensor(...)")
            if _graph_builder is not None and any(a is SYMBOLIC for a in args):
                return _graph_builder(cls, inputs, attrs)
            if mode.trace is not None:  # eager tensors the traced code reads (even 0-d: a scalar parameter)
                return _graph_builder(cls, inputs, attrs)
            if type(args[0]) is not _ndarray:
                ctx.xp = get_array_module(args[0])
            if n > 1 and mode.trace is None:
                _check_one_device(cls, args)
        try:
            out = ctx.forward(*args, **attrs) if attrs else ctx.forward(*args)
        except ShapeError:
            raise
        except ValueError as e:  # from NumPy: a shape error only when the inputs do not broadcast
            name, shapes = cls.__name__.lower(), [a.shape for a in args]
            try:
                numpy.broadcast_shapes(*shapes)
            except ValueError:
                raise shape_error(name, str(e), *shapes) from e
            raise ValueError(f"{name}: {e}") from e
        if type(out) is not _ndarray:
            out = ctx.xp.asarray(out)
        t = object.__new__(Tensor)
        t.data = out
        t.grad = None
        t._retain = False
        if mode.grad:
            if n == 1:
                needs = (inputs[0].requires_grad,)
            elif n == 2:
                needs = (inputs[0].requires_grad, inputs[1].requires_grad)
            elif n == 3:
                needs = (inputs[0].requires_grad, inputs[1].requires_grad, inputs[2].requires_grad)
            else:
                needs = tuple([x.requires_grad for x in inputs])
            d = cls.differentiable
            if d is not None:
                needs = needs[:d] + (False,) * (n - d)
            if True in needs and out.dtype.kind == "f":  # an integer or bool result is never differentiable
                ctx.parents = inputs
                ctx.needs = needs
                ctx.clock = write_clock[0]
                t.requires_grad = True
                t._ctx = ctx
                return t
        t.requires_grad = False
        t._ctx = None
        return t
