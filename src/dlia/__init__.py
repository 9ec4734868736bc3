"""dlia — Deep Learning in Action: a NumPy deep-learning engine you can read, run and look inside.

The top level mirrors PyTorch's: ``dlia.tensor``, ``dlia.randn``, ``dlia.no_grad``, ops such as
``dlia.matmul`` and ``dlia.relu``; layers in ``dlia.nn``, optimizers in ``dlia.optim``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from dlia.backend.device import Device, gpu_available
from dlia.core.creation import (
    arange,
    eye,
    full,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from dlia.core.function import DeviceError, ShapeError, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from dlia.core.ops import *  # noqa: F403 - the op functions are the public API
from dlia.core.ops import __all__ as _ops_all
from dlia.core.random import Generator, default_generator, manual_seed
from dlia.core.sparse import SparseGrad
from dlia.core.tensor import Tensor, bool_, float16, float32, float64, int32, int64

__all__ = [
    "Device", "DeviceError", "Generator", "ShapeError", "SparseGrad", "Tensor", "__version__", "arange",
    "bool_", "default_generator", "enable_grad", "eye", "float16", "float32", "float64", "full",
    "gpu_available", "int32", "int64", "is_grad_enabled", "manual_seed", "no_grad", "ones",
    "ones_like", "rand", "randn", "set_grad_enabled", "tensor", "zeros", "zeros_like",
    *_ops_all,
]

_SUBMODULES = ("nn", "optim", "data", "io", "models", "signal", "viz", "graph", "backend", "interop")


def __getattr__(name: str):  # lazy submodules: ``dlia.nn`` works after a bare ``import dlia``
    if name == "compile":
        from dlia.graph.compile import compile

        return compile
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"dlia.{name}")
    raise AttributeError(f"module 'dlia' has no attribute {name!r}")
