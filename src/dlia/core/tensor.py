"""``Tensor``: an array plus what reverse-mode autodiff needs (``requires_grad``, ``grad``, and
the op that made it).

Operators and methods are thin wrappers over the ops in ``dlia.core.ops``; the ops are bound at the
bottom of this module to keep imports acyclic.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy

from dlia.backend.device import Device, get_array_module, get_device

float32 = numpy.float32
float64 = numpy.float64
float16 = numpy.float16
int32 = numpy.int32
int64 = numpy.int64
bool_ = numpy.bool_

_FLOAT_KINDS = ("f",)
_NUMBER_KINDS = "biufc"  # bool, int, unsigned, float, complex
_NOT_NUMBERS = {"O": "Python objects (None, a dict, a ragged list...)", "U": "strings", "S": "bytes"}


def _to_array(data: Any, dtype: Any, device: Device | None) -> Any:
    """Array from Python data or an array: Python floats become float32, ints int64.

    Raises:
        TypeError: the data are not numbers (``None``, strings, objects), as torch refuses them.
    """
    if isinstance(data, Tensor):
        data = data.data
    xp = device.xp if device is not None else get_array_module(data)
    if not (isinstance(data, (numpy.ndarray, numpy.generic)) or hasattr(data, "__cuda_array_interface__")):
        data = numpy.asarray(data)  # Python data: see what it holds before any conversion
        if dtype is None and data.dtype == numpy.float64:
            data = data.astype(numpy.float32)
    if data.dtype.kind not in _NUMBER_KINDS:
        kind = _NOT_NUMBERS.get(data.dtype.kind, f"values of dtype {data.dtype}")
        raise TypeError(f"tensor: data must be numbers (bool, int, float or complex), got {kind}")
    return xp.asarray(data) if dtype is None else xp.asarray(data, dtype=dtype)


def _array_axis(t: Tensor, axis: int | None, op: str) -> int | None:
    """``axis`` of ``t`` checked, as its array's axis (a 0-d tensor's axis 0 or -1 means the whole array)."""
    if axis is None:
        return None
    axis = _axes.normalize_axis(axis, t.ndim, op, t.shape)
    return axis if t.ndim else None


# -- in-place writes (see docs/engine.md, "In-place writes") ---------------------------------------
#: the in-place write clock, one count for the process (a one-item list, so importers share it): each
#: write through dlia advances it; an op recorded for backward notes its value, so backward can tell
#: the writes that came after the op ran
write_clock = [0]
#: arrays written by ``mark_written``: id of the array that owns the memory -> (clock, weak reference)
_written_arrays: dict[int, tuple[int, Any]] = {}
#: tensors whose writer stamps ``_version`` itself (an optimizer's parameters): id -> weak reference
_tracked: dict[int, Any] = {}


def memory_owner(a: Any) -> Any:
    """The array that owns ``a``'s memory (``a`` itself unless it is a view)."""
    while isinstance(a.base, type(a)):
        a = a.base
    return a


def mark_written(*tensors: Tensor) -> None:
    """Record that the data of ``tensors`` is about to be written in place (not replaced); the
    record belongs to the memory, so views and other tensors on the same array share it."""
    n = next_write()
    for t in tensors:
        owner = memory_owner(t.data)
        key = id(owner)
        try:
            _written_arrays[key] = (n, weakref.ref(owner, functools.partial(_forget, _written_arrays, key)))
        except TypeError:  # an array type without weak references: its writes go unchecked
            pass


def next_write() -> int:
    """Advance the write clock; whoever then writes tensors registered with ``track_writes`` stamps
    them with the result (``t._version = n``): ``mark_written`` for a loop that pays per call."""
    n = write_clock[0] + 1
    write_clock[0] = n
    return n


def track_writes(tensors: Iterable[Tensor]) -> None:
    """Register tensors that their writer will stamp (``next_write``), while they live."""
    for t in tensors:
        key = id(t)
        if key not in _tracked:
            _tracked[key] = weakref.ref(t, functools.partial(_forget, _tracked, key))


def _forget(registry: dict[int, Any], key: int, _ref: Any) -> None:
    registry.pop(key, None)


def written_since(clock: int) -> list[Any]:
    """The arrays owning memory written in place after the write clock read ``clock``."""
    owners = [a for n, r in list(_written_arrays.values()) if n > clock and (a := r()) is not None]
    owners += [memory_owner(t.data) for r in list(_tracked.values())
               if (t := r()) is not None and getattr(t, "_version", 0) > clock]
    return owners


def wrap(array: Any, requires_grad: bool = False) -> Tensor:
    """A leaf tensor around an existing array, with no conversion or copy (internal fast path)."""
    t = object.__new__(Tensor)
    t.data = array
    t.requires_grad = requires_grad
    t.grad = None
    t._ctx = None
    t._retain = False
    return t


class Tensor:
    """An n-dimensional array that records the ops applied to it for backprop.

    Args:
        data: nested lists, a scalar or an array. Python floats become float32, ints int64;
            NumPy/CuPy arrays keep their dtype.
        dtype: optional dtype to convert to.
        requires_grad: whether gradients should flow to (and accumulate in) this tensor.
        device: ``"cpu"``, ``"gpu"`` or a ``Device``; default: where ``data`` lives.

    Example:
        >>> x = Tensor([1.0, 2.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad.numpy()
        array([2., 4.], dtype=float32)
    """

    #: ``_version``: the write clock at its writer's last stamp (``track_writes``; unset until then)
    __slots__ = ("data", "requires_grad", "grad", "_ctx", "_retain", "_version", "__weakref__")
    __array_ufunc__ = None  # make NumPy defer to our reflected operators

    def __init__(
        self,
        data: Any,
        dtype: Any = None,
        requires_grad: bool = False,
        device: str | Device | None = None,
    ) -> None:
        self.data = _to_array(data, dtype, None if device is None else get_device(device))
        if requires_grad and self.data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(f"only floating-point tensors can require gradients, got {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad: Tensor | None = None
        self._ctx = None
        self._retain = False

    # -- properties ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def device(self) -> Device:
        return get_device("cpu" if type(self.data) is numpy.ndarray else "gpu")

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy/PyTorch name
        return _shape.transpose(self)

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        """The sub-tensors along the first axis (each a differentiable ``self[i]``), as in torch."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self) -> str:
        body = numpy.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype != numpy.float32:
            extra += f", dtype={self.data.dtype}"
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    __hash__ = object.__hash__

    # -- conversion ------------------------------------------------------------------------
    def numpy(self) -> numpy.ndarray:
        """The data as a NumPy array (copied from the GPU if needed; shares memory on CPU)."""
        d = self.data
        return d if type(d) is numpy.ndarray else numpy.asarray(d.get() if hasattr(d, "get") else d)

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise ValueError(f"item(): tensor has {self.data.size} elements, expected 1")
        return self.numpy().reshape(()).item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.item())

    def __array__(self, dtype: Any = None, copy: Any = None) -> numpy.ndarray:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def __dlpack__(self, **kwargs: Any) -> Any:
        """DLPack export of the data, no copy (``torch.from_dlpack(t)``, ``cupy.from_dlpack(t)``); see ``dlia.interop``."""
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        """The data's DLPack ``(device_type, device_id)``: ``(1, 0)`` on CPU, ``(2, id)`` on a CUDA GPU."""
        return self.data.__dlpack_device__()

    def to(self, device: str | Device | None = None, dtype: Any = None) -> Tensor:
        """Copy to another device and/or dtype (differentiable for dtype changes on one device)."""
        out = self
        if dtype is not None and numpy.dtype(dtype) != self.data.dtype:
            out = _elementwise.cast(out, dtype)
        if device is not None:
            dev = get_device(device)
            if dev != out.device:
                arr = out.numpy() if dev.kind == "cpu" else dev.xp.asarray(out.data)
                moved = Tensor(arr, requires_grad=out.requires_grad)
                out = moved
        return out

    def float(self) -> Tensor:
        return self.to(dtype=numpy.float32)

    def double(self) -> Tensor:
        return self.to(dtype=numpy.float64)

    def astype(self, dtype: Any) -> Tensor:
        return self.to(dtype=dtype)

    # -- autodiff --------------------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor, accumulating ``.grad`` on leaves that require it.

        Args:
            grad: gradient of some scalar w.r.t. this tensor; defaults to 1 for a scalar.
            retain_graph: keep the graph so ``backward`` can run through it again.
        """
        _autodiff.backward(self, grad, retain_graph)

    def detach(self) -> Tensor:
        """A tensor sharing the data, cut from the graph."""
        return Tensor(self.data)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(f"only floating-point tensors can require gradients, got {self.data.dtype}")
        self.requires_grad = flag
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        self._retain = True

    def zero_(self) -> Tensor:
        mark_written(self)
        self.data[...] = 0
        return self

    # -- reductions and shape methods (bound below) -----------------------------------------
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _reduce.sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _reduce.mean(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _reduce.max(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _reduce.min(self, axis, keepdims)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        return _reduce.var(self, axis, keepdims, ddof)

    def argmax(self, axis: int | None = None) -> Tensor:
        return Tensor(self.data.argmax(axis=_array_axis(self, axis, "argmax")))

    def argmin(self, axis: int | None = None) -> Tensor:
        return Tensor(self.data.argmin(axis=_array_axis(self, axis, "argmin")))

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _shape.reshape(self, shape)

    view = reshape

    def flatten(self, start: int = 0) -> Tensor:
        return _shape.flatten(self, start)

    def transpose(self, *axes: int) -> Tensor:
        """Two axes are swapped (PyTorch's ``transpose(d0, d1)``); none reverse all; more permute."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if len(axes) == 2:
            i, j = (_axes.normalize_axis(d, self.ndim, "transpose", self.shape) for d in axes)
            order = list(range(self.ndim or 1))  # a 0-d tensor has the one axis 0, as in torch
            order[i], order[j] = order[j], order[i]
            axes = tuple(order)
        return _shape.transpose(self, axes or None)

    def permute(self, *axes: int) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _shape.transpose(self, axes)

    def expand(self, *shape: int) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _shape.broadcast_to(self, shape)

    def squeeze(self, axis: int | None = None) -> Tensor:
        return _shape.squeeze(self, axis)

    def unsqueeze(self, axis: int) -> Tensor:
        return _shape.unsqueeze(self, axis)

    def split(self, sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
        return _shape.split(self, sections, axis)

    def clip(self, lo: float | None = None, hi: float | None = None) -> Tensor:
        return _elementwise.clip(self, lo, hi)

    clamp = clip

    def exp(self) -> Tensor:
        return _elementwise.exp(self)

    def log(self) -> Tensor:
        return _elementwise.log(self)

    def sqrt(self) -> Tensor:
        return _elementwise.sqrt(self)

    def abs(self) -> Tensor:
        return _elementwise.abs(self)

    def tanh(self) -> Tensor:
        return _elementwise.tanh(self)

    def sigmoid(self) -> Tensor:
        return _elementwise.sigmoid(self)

    def relu(self) -> Tensor:
        return _elementwise.relu(self)

    def softmax(self, axis: int = -1) -> Tensor:
        return _reduce.softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return _reduce.log_softmax(self, axis)

    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _reduce.logsumexp(self, axis, keepdims)

    def matmul(self, other: Tensor) -> Tensor:
        return _arith.matmul(self, other)

    # -- comparisons: no gradient, boolean results -------------------------------------------
    def _cmp(self, other: Any, fn: Any) -> Tensor:
        """Compare in the promoted dtype, as torch does (float32 vs int64 compares in float32)."""
        a = self.data
        if type(other) is int and a.dtype.kind in "iu" and not _dtypes.fits(other, a.dtype):
            return Tensor(fn(a, other))  # NumPy compares an integer outside the dtype's range exactly
        o = _arith.lift(other, self).data if isinstance(other, (Tensor, int, float, list, tuple)) else other
        if getattr(o, "dtype", a.dtype) != a.dtype:
            a, o = _dtypes.promote(a, o)
        return Tensor(fn(a, o))

    def __lt__(self, other: Any) -> Tensor:
        return self._cmp(other, lambda a, b: a < b)

    def __le__(self, other: Any) -> Tensor:
        return self._cmp(other, lambda a, b: a <= b)

    def __gt__(self, other: Any) -> Tensor:
        return self._cmp(other, lambda a, b: a > b)

    def __ge__(self, other: Any) -> Tensor:
        return self._cmp(other, lambda a, b: a >= b)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._cmp(other, lambda a, b: a == b)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._cmp(other, lambda a, b: a != b)


from dlia.core import autodiff as _autodiff  # noqa: E402
from dlia.core import axes as _axes  # noqa: E402
from dlia.core import dtypes as _dtypes  # noqa: E402
from dlia.core.ops import arith as _arith  # noqa: E402
from dlia.core.ops import elementwise as _elementwise  # noqa: E402
from dlia.core.ops import reduce as _reduce  # noqa: E402
from dlia.core.ops import shape as _shape  # noqa: E402

Tensor.__add__ = _arith.add  # type: ignore[method-assign]
Tensor.__radd__ = _arith.add  # type: ignore[method-assign]
Tensor.__sub__ = _arith.sub  # type: ignore[method-assign]
Tensor.__rsub__ = _arith.rsub  # type: ignore[method-assign]
Tensor.__mul__ = _arith.mul  # type: ignore[method-assign]
Tensor.__rmul__ = _arith.mul  # type: ignore[method-assign]
Tensor.__truediv__ = _arith.div  # type: ignore[method-assign]
Tensor.__rtruediv__ = _arith.rdiv  # type: ignore[method-assign]
Tensor.__neg__ = _arith.neg  # type: ignore[method-assign]
Tensor.__pow__ = _arith.pow  # type: ignore[method-assign]
Tensor.__rpow__ = _arith.rpow  # type: ignore[method-assign]
Tensor.__matmul__ = _arith.matmul  # type: ignore[method-assign]
Tensor.__rmatmul__ = _arith.rmatmul  # type: ignore[method-assign]
Tensor.__getitem__ = _shape.getitem  # type: ignore[method-assign]
Tensor.__abs__ = _elementwise.abs  # type: ignore[method-assign]
