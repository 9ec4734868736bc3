"""The op base class, grad mode and the error type every op raises for bad shapes.

An op is one small class: ``forward(self, *arrays, **attrs)`` computes on raw arrays of the
device's array module (``self.xp``) and saves what the gradient needs on ``self`` (the context);
``vjp(self, grad)`` returns one gradient per input (``None`` where an input needs none). The same
class serves eager tensors (``Op.apply``) and, later, nodes of a static graph.
"""

from __future__ import annotations

from contextlib import ContextDecorator
from types import ModuleType
from typing import Any, ClassVar

import numpy

from dlia.backend.device import get_array_module
from dlia.core.tensor import Tensor

_ndarray = numpy.ndarray

#: every op class by name, for graph mode and error messages
REGISTRY: dict[str, type[Function]] = {}


class _Symbolic:
    """The ``data`` of a graph node: it has no value until a Session runs the graph."""

    shape = dtype = None

    def __repr__(self) -> str:
        return "<symbolic>"


SYMBOLIC = _Symbolic()

#: set by ``dlia.graph`` on import: builds a graph node for an op applied to symbolic inputs
GRAPH_BUILDER: Any = None
#: True while ``dlia.compile`` traces a function: ops on eager tensors become graph nodes too
TRACING = False


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


class _GradMode:
    enabled = True


class no_grad(ContextDecorator):
    """Context manager and decorator: ops inside record no graph (like ``torch.no_grad``)."""

    def __enter__(self) -> None:
        self.prev = _GradMode.enabled
        _GradMode.enabled = False

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self.prev


class enable_grad(ContextDecorator):
    """Context manager and decorator that turns graph recording back on."""

    def __enter__(self) -> None:
        self.prev = _GradMode.enabled
        _GradMode.enabled = True

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self.prev


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph for backprop."""
    return _GradMode.enabled


def set_grad_enabled(mode: bool) -> None:
    """Turn graph recording on or off globally."""
    _GradMode.enabled = bool(mode)


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
    #: number of leading inputs that are differentiable; the rest (indices, masks) never are
    differentiable: ClassVar[int | None] = None
    #: True when every array ``vjp`` returns is newly made and given to one input only, so backprop
    #: may store it as a leaf's ``.grad`` without a defensive copy (views of ``grad`` are not fresh)
    fresh_grads: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        REGISTRY[cls.__name__] = cls

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
        if foreign or TRACING:  # symbolic graph nodes, tracing, or CuPy arrays
            if GRAPH_BUILDER is not None and any(a is SYMBOLIC for a in args):
                return GRAPH_BUILDER(cls, inputs, attrs)
            if TRACING:  # eager tensors the traced code reads (even 0-d: a scalar parameter)
                return GRAPH_BUILDER(cls, inputs, attrs)
            if type(args[0]) is not _ndarray:
                ctx.xp = get_array_module(args[0])
            if n > 1 and not TRACING:
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
        if _GradMode.enabled:
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
                t.requires_grad = True
                t._ctx = ctx
                return t
        t.requires_grad = False
        t._ctx = None
        return t
