"""Exchange tensors with other array libraries through DLPack, without copying.

``dlia.Tensor`` speaks the DLPack protocol itself (``__dlpack__`` and ``__dlpack_device__``), so
any consumer takes it directly: ``torch.from_dlpack(t)``, ``numpy.from_dlpack(t)`` (CPU),
``cupy.from_dlpack(t)`` (GPU). The other way, ``from_dlpack`` wraps any producer's array — a torch
tensor, a NumPy or CuPy array, a JAX array — as a ``dlia.Tensor`` on the same device.

Only the data crosses: gradients, ``requires_grad`` and the autodiff graph stay behind. The result
shares memory with its source, so writing into one is seen by the other. torch is imported inside
``from_torch``/``to_torch`` only; ``import dlia`` never imports it.
"""

from __future__ import annotations

from typing import Any

import numpy

from dlia.backend import device as _device
from dlia.core.tensor import Tensor

__all__ = ["from_dlpack", "from_torch", "to_dlpack", "to_torch"]

# DLPack's DLDeviceType codes for memory that only a GPU array library can hold.
_GPU_DEVICE_TYPES = {2: "CUDA", 10: "ROCm", 13: "CUDA managed"}


def from_dlpack(obj: Any, requires_grad: bool = False) -> Tensor:
    """A ``dlia.Tensor`` sharing memory with ``obj``, any object with ``__dlpack__``/``__dlpack_device__``.

    CPU data comes through ``numpy.from_dlpack``, GPU data through ``cupy.from_dlpack``; strides
    are kept, so a non-contiguous view stays a view.

    Args:
        obj: the producer's array (a torch tensor without ``requires_grad``, a NumPy/CuPy array, ...).
        requires_grad: whether the new tensor should record gradients (a new leaf).

    Raises:
        TypeError: ``obj`` does not speak DLPack (a bare capsule: pass the array itself).
        RuntimeError: the data lives on a GPU and CuPy or a GPU is missing.

    Example:
        >>> import numpy as np
        >>> a = np.arange(3.0, dtype=np.float32)
        >>> t = from_dlpack(a)
        >>> a[0] = 7.0
        >>> t.tolist()
        [7.0, 1.0, 2.0]
    """
    if not (hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__")):
        raise TypeError(
            f"from_dlpack: expected an array with __dlpack__ and __dlpack_device__, got {type(obj).__name__} "
            "(a bare DLPack capsule is not accepted: pass the producer's array itself)"
        )
    device_type = int(obj.__dlpack_device__()[0])
    if device_type in _GPU_DEVICE_TYPES:
        if not _device.gpu_available:
            raise RuntimeError(
                f"from_dlpack: the data lives on a {_GPU_DEVICE_TYPES[device_type]} device, but CuPy with a GPU "
                "is not available (install the 'gpu' extra)"
            )
        array = _device._cupy.from_dlpack(obj)
    else:
        array = numpy.from_dlpack(obj)
    return Tensor(array, requires_grad=requires_grad)


def to_dlpack(tensor: Tensor) -> Any:
    """A legacy DLPack capsule of ``tensor``'s data (for ``torch.utils.dlpack.from_dlpack``-style APIs).

    Modern consumers take the tensor itself: ``torch.from_dlpack(tensor)``. A capsule can be
    consumed once only.
    """
    return tensor.__dlpack__()


def from_torch(t: Any, requires_grad: bool = False) -> Tensor:
    """A ``dlia.Tensor`` sharing memory with the torch tensor ``t`` (CPU or, with CuPy, CUDA).

    ``t`` is detached first, so a tensor that requires grad gives its data; its autograd history
    does not cross. dtypes NumPy/CuPy lack (``bfloat16``) raise the consumer's error.

    Example:
        >>> import torch  # doctest: +SKIP
        >>> from_torch(torch.ones(2, 3)).shape  # doctest: +SKIP
        (2, 3)
    """
    import torch  # lazily: torch is an optional peer, never imported by ``import dlia``

    if not isinstance(t, torch.Tensor):
        raise TypeError(f"from_torch: expected a torch.Tensor, got {type(t).__name__}")
    return from_dlpack(t.detach().resolve_conj().resolve_neg(), requires_grad=requires_grad)


def to_torch(x: Tensor | Any) -> Any:
    """A torch tensor sharing memory with ``x`` (a ``dlia.Tensor`` or any DLPack array), on its device.

    Only the data goes across: the torch tensor does not require grad, whatever ``x`` does. Data
    with a negative stride (``a[::-1]``) goes across as a contiguous copy: torch has no negative
    strides, and its ``from_dlpack`` aborts the whole process on them (pytorch/pytorch#188023).

    Example:
        >>> import dlia  # doctest: +SKIP
        >>> to_torch(dlia.ones(2, requires_grad=True))  # doctest: +SKIP
        tensor([1., 1.])
    """
    import torch  # lazily, as in from_torch

    data = x.data if isinstance(x, Tensor) else x
    if any(s < 0 for s in getattr(data, "strides", ())):
        data = data.copy()
    return torch.from_dlpack(data)
