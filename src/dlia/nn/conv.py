"""Convolutional layers: Conv2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d, BatchNorm2d."""

from __future__ import annotations

import math
from typing import Any

import numpy

from dlia.core import ops
from dlia.core.function import ShapeError
from dlia.core.ops.conv import _pair
from dlia.core.random import Generator
from dlia.core.tensor import Tensor
from dlia.nn import init
from dlia.nn.module import Module
from dlia.nn.parameter import Parameter


class Conv2d(Module):
    """2-D convolution (cross-correlation) over (N, C, H, W) inputs, initialised as PyTorch's.

    Args:
        in_channels, out_channels: channel counts (both divisible by ``groups``).
        kernel_size: int or (kh, kw).
        stride, padding, dilation, groups, bias: as ``torch.nn.Conv2d``; padding may be 'same'.
        generator: seeded source of the initial weights.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, dtype: Any = numpy.float32,
                 generator: Generator | None = None) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: channels {in_channels}→{out_channels} must be divisible by groups={groups}")
        kh, kw = _pair(kernel_size, "kernel_size")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (kh, kw)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.weight = Parameter(numpy.empty((out_channels, in_channels // groups, kh, kw), dtype=dtype))
        fan_in = in_channels // groups * kh * kw
        bound = 1.0 / math.sqrt(fan_in)
        init.uniform_(self.weight, -bound, bound, generator)  # = kaiming_uniform_(a=√5), PyTorch's default
        if bias:
            self.bias = Parameter(numpy.empty(out_channels, dtype=dtype))
            init.uniform_(self.bias, -bound, bound, generator)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return ops.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != 0:
            s += f", padding={self.padding!r}"
        if self.dilation != 1:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class MaxPool2d(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return ops.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    def forward(self, x: Tensor) -> Tensor:
        return ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class GlobalAvgPool2d(Module):
    """(N, C, H, W) → (N, C) for any H, W: what lets a fully convolutional net take any image size."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.global_avg_pool2d(x)


class GlobalMaxPool2d(Module):
    """(N, C, H, W) → (N, C): each feature map's maximum, for any H, W."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.global_max_pool2d(x)


class BatchNorm2d(Module):
    """Batch normalisation over (N, H, W) per channel (Ioffe & Szegedy, 2015), as torch.nn.BatchNorm2d.

    Training uses the batch's statistics and updates running estimates
    (r ← (1 − momentum)·r + momentum·batch, the variance unbiased); eval uses the running estimates.
    With ``affine=False`` there is no scale and shift: ``weight`` and ``bias`` are ``None``, as in torch.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 dtype: Any = numpy.float32) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        if affine:
            self.weight = Parameter(numpy.ones(num_features, dtype=dtype))
            self.bias = Parameter(numpy.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", Tensor(numpy.zeros(num_features, dtype=dtype)))
        self.register_buffer("running_var", Tensor(numpy.ones(num_features, dtype=dtype)))
        self.register_buffer("num_batches_tracked", Tensor(numpy.zeros((), dtype=numpy.int64)))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ShapeError(f"batch_norm2d: expected input (N, {self.num_features}, H, W) (input shapes: {x.shape})")
        shape = (1, -1, 1, 1)
        if self.training:
            weight, bias = self.weight, self.bias
            if weight is None:  # affine=False: the op's scale and shift are the constants 1 and 0
                xp = x.device.xp
                weight, bias = Tensor(xp.ones(x.shape[1], x.dtype)), Tensor(xp.zeros(x.shape[1], x.dtype))
            out = ops.batch_norm(x, weight, bias, self.eps)
            fn = out._ctx  # the op saved the batch statistics (None under no_grad)
            if fn is not None:
                mean, var = fn.batch_mean, fn.batch_var
            else:
                mean, var = x.data.mean(axis=(0, 2, 3)), x.data.var(axis=(0, 2, 3))
            m = x.size // x.shape[1]
            mom = self.momentum
            self.running_mean.data = (1 - mom) * self.running_mean.data + mom * mean.astype(x.dtype)
            self.running_var.data = (1 - mom) * self.running_var.data + mom * (var * (m / max(m - 1, 1))).astype(x.dtype)
            self.num_batches_tracked.data = self.num_batches_tracked.data + 1
            return out
        # engine ops, not array arithmetic: traced by ``dlia.compile``, the running statistics are
        # then inputs read at every call instead of a scale computed once at tracing time
        invstd = 1 / (self.running_var + self.eps).sqrt()
        if self.weight is None:
            return (x - self.running_mean.reshape(shape)) * invstd.reshape(shape)
        scale = (self.weight * invstd).reshape(shape)
        return (x - self.running_mean.reshape(shape)) * scale + self.bias.reshape(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}" + ("" if self.affine else ", affine=False")

