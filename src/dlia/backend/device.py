"""A device is an object with an array module ``xp``.

Op code never imports NumPy for its math: it takes ``xp`` from the device of its inputs, so the
same op runs on NumPy arrays (CPU) and CuPy arrays (GPU).
"""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any

import numpy

try:  # CuPy is optional: the ``gpu`` extra.
    import cupy as _cupy  # type: ignore[import-not-found]

    gpu_available = bool(_cupy.cuda.runtime.getDeviceCount() > 0)
except Exception:  # noqa: BLE001 - any import or driver failure means "no GPU"
    _cupy = None
    gpu_available = False


class Device:
    """Where tensors live and ops run: ``Device("cpu")`` (NumPy) or ``Device("gpu")`` (CuPy).

    Args:
        kind: ``"cpu"`` or ``"gpu"`` (``"cuda"`` is accepted as an alias).

    Raises:
        RuntimeError: a GPU is asked for and CuPy or a GPU is missing.
    """

    __slots__ = ("kind", "xp")

    def __init__(self, kind: str = "cpu") -> None:
        kind = {"cuda": "gpu"}.get(kind, kind)
        if kind == "cpu":
            self.xp: ModuleType = numpy
        elif kind == "gpu":
            if not gpu_available:
                raise RuntimeError(
                    "Device('gpu') was asked for, but no GPU is available "
                    "(install the 'gpu' extra with CuPy on a machine with a CUDA GPU)"
                )
            self.xp = _cupy
        else:
            raise ValueError(f"unknown device {kind!r}; expected 'cpu' or 'gpu'")
        self.kind = kind

    def __repr__(self) -> str:
        return f"Device({self.kind!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.kind == self.kind

    def __hash__(self) -> int:
        return hash(self.kind)


cpu = Device("cpu")


def get_device(spec: str | Device | None) -> Device:
    """Turn ``None``, a name or a Device into a Device (``None`` means CPU)."""
    if spec is None:
        return cpu
    if isinstance(spec, Device):
        return spec
    if spec == "cpu":
        return cpu
    return Device(spec)


def get_array_module(array: Any) -> ModuleType:
    """The array module (``numpy`` or ``cupy``) that owns ``array``."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy
    return numpy


def errstate(xp: ModuleType, **how: str) -> Any:
    """``numpy.errstate(**how)`` for NumPy; a no-op context for CuPy, which never warns on
    division by zero or invalid values."""
    return numpy.errstate(**how) if xp is numpy else contextlib.nullcontext()
