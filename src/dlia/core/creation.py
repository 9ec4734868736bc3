"""Tensor creation: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``eye``, ``randn``, ``rand``."""

from __future__ import annotations

from typing import Any

import numpy

from dlia.backend.device import Device, get_array_module, get_device
from dlia.core.random import Generator, default_generator
from dlia.core.tensor import Tensor


def _shape(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _make(arr: Any, requires_grad: bool, device: str | Device | None) -> Tensor:
    dev = get_device(device)
    if dev.kind != "cpu":
        arr = dev.xp.asarray(arr)
    return Tensor(arr, requires_grad=requires_grad)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, device: str | Device | None = None) -> Tensor:
    """A tensor from Python data or an array (Python floats → float32, ints → int64).

    Example: ``tensor([[1., 2.], [3., 4.]], requires_grad=True)``.
    """
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, device=device)


def zeros(*shape: Any, dtype: Any = numpy.float32, requires_grad: bool = False, device: Any = None) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _make(numpy.zeros(_shape(shape), dtype=dtype), requires_grad, device)


def ones(*shape: Any, dtype: Any = numpy.float32, requires_grad: bool = False, device: Any = None) -> Tensor:
    """A tensor of ones."""
    return _make(numpy.ones(_shape(shape), dtype=dtype), requires_grad, device)


def full(shape: Any, value: float, dtype: Any = numpy.float32, requires_grad: bool = False, device: Any = None) -> Tensor:
    """A tensor filled with ``value``."""
    return _make(numpy.full(_shape((shape,)), value, dtype=dtype), requires_grad, device)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    """Zeros with ``t``'s shape, dtype and device (filled, so an inf or NaN in ``t`` leaves no trace)."""
    return Tensor(get_array_module(t.data).zeros_like(t.data), requires_grad=requires_grad)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    """Ones with ``t``'s shape, dtype and device."""
    return Tensor(get_array_module(t.data).ones_like(t.data), requires_grad=requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None, device: Any = None) -> Tensor:
    """Evenly spaced values in [start, stop), like ``numpy.arange`` (ints → int64, floats → float32)."""
    arr = numpy.arange(start, stop, step) if stop is not None else numpy.arange(start)
    if dtype is not None:
        arr = arr.astype(dtype)
    elif arr.dtype == numpy.float64:
        arr = arr.astype(numpy.float32)
    return _make(arr, False, device)


def eye(n: int, m: int | None = None, dtype: Any = numpy.float32, device: Any = None) -> Tensor:
    """Identity matrix (n × m)."""
    return _make(numpy.eye(n, m, dtype=dtype), False, device)


def randn(
    *shape: Any,
    generator: Generator | None = None,
    dtype: Any = numpy.float32,
    requires_grad: bool = False,
    device: Any = None,
) -> Tensor:
    """Standard-normal samples from ``generator`` (the seeded default one if None)."""
    gen = generator or default_generator
    return _make(gen.normal(_shape(shape), dtype), requires_grad, device)


def rand(
    *shape: Any,
    generator: Generator | None = None,
    dtype: Any = numpy.float32,
    requires_grad: bool = False,
    device: Any = None,
) -> Tensor:
    """Uniform samples on [0, 1) from ``generator`` (the seeded default one if None)."""
    gen = generator or default_generator
    return _make(gen.random(_shape(shape), dtype), requires_grad, device)
