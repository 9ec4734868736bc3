"""Convolution and pooling on (N, C, H, W) arrays: conv2d (stride, padding incl. 'same', dilation,
groups, bias), max_pool2d, avg_pool2d, batch_norm.

conv2d is a cross-correlation, as in every DL library: im2col through a strided view of the padded
input and one matrix product per group; its vjp scatters back with kh·kw strided adds (col2im).
"""

from __future__ import annotations

from typing import Any

import numpy

from dlia.backend import allocator, blas, native
from dlia.core.function import Function, shape_error
from dlia.core.tensor import Tensor


def _pair(v: Any, name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(x) for x in v)
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v!r}")
    return t  # type: ignore[return-value]


def _padding(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int], stride: tuple[int, int]) -> tuple[int, ...]:
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same' (stride 1, extra on the bottom/right)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError("padding='same' needs stride 1 (as in PyTorch)")
        out = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            out += [total // 2, total - total // 2]
        return tuple(out)
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return (ph, ph, pw, pw)


_READ_ONLY = {True: {"writeable": False}, False: {}}  # CuPy's as_strided has no such flag


def _windows(xp: Any, xpad: Any, kh: int, kw: int, oh: int, ow: int, stride: tuple[int, int],
             dilation: tuple[int, int]) -> Any:
    """A (N, C, OH, OW, kh, kw) strided view of the padded input: no copy."""
    n, c = xpad.shape[:2]
    sn, sc, sh, sw = xpad.strides
    return xp.lib.stride_tricks.as_strided(
        xpad, shape=(n, c, oh, ow, kh, kw),
        strides=(sn, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1]),
        **_READ_ONLY[xp is numpy],
    )


def _out_size(size: int, pad: int, k: int, stride: int, dil: int) -> int:
    return (size + pad - dil * (k - 1) - 1) // stride + 1


def _overrun(kh: int, kw: int, dilation: tuple[int, int], wp: int) -> int:
    """How far past the last image the last kernel tap reads in the tall flat layout."""
    return dilation[0] * (kh - 1) * wp + dilation[1] * (kw - 1)


def _flat_images(xp: Any, x_cnhw: Any, hp: int, wp: int, top: int, left: int, spare: int) -> Any:
    """(C, N, H, W) → (C, N·hp·wp + spare): each image zero-padded to hp×wp, all stacked and flattened."""
    c, n, h, w = x_cnhw.shape
    out = xp.zeros((c, n * hp * wp + spare), dtype=x_cnhw.dtype)
    out[:, :n * hp * wp].reshape(c, n, hp, wp)[:, :, top:top + h, left:left + w] = x_cnhw
    return out


def _conv(xp: Any, x: Any, w: Any, stride: tuple[int, int], padding: tuple[int, ...], dilation: tuple[int, int],
          groups: int, oh: int, ow: int) -> tuple[Any, Any, int]:
    """Forward convolution by im2col + one matrix product per group.

    Returns the output (N, O, OH, OW), the im2col matrix (groups, Cg·kh·kw, N·rows·width) and its
    (rows, width) per image — (hp, wp) for stride 1, else (OH, OW) — which the gradients reuse.
    """
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    pt, pb, pl, pr = padding
    if stride == (1, 1):
        # "tall flat" im2col: the padded images are stacked into one tall image and flattened, so
        # every kernel tap reads ONE contiguous run for the whole batch. Outputs that straddle two
        # images or fall in the padding columns are junk and dropped afterwards. When the bottom
        # and right padding are no wider than the top and left, neighbours share them: a row's
        # right padding is the next row's left padding, an image's bottom rows the next one's top.
        reach_h, reach_w = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
        if pb <= pt and pr <= pl and pb <= reach_h and pr <= reach_w:
            hp, wp = h + pt, wd + pl
        else:
            hp, wp = h + pt + pb, wd + pl + pr
        rows, run = hp, n * hp * wp
        xf = _flat_images(xp, x.transpose(1, 0, 2, 3), hp, wp, pt, pl, _overrun(kh, kw, dilation, wp))
        cols = xp.empty((c, kh, kw, run), dtype=x.dtype)
        for a in range(kh):
            for b in range(kw):
                off = a * dilation[0] * wp + b * dilation[1]
                cols[:, a, b] = xf[:, off:off + run]
        width = wp
    else:
        rows, width = oh, ow
        xpad = _pad2d(xp, x, pt, pb, pl, pr) if any(padding) else x
        win = _windows(xp, xpad, kh, kw, oh, ow, stride, dilation)  # (N, C, OH, OW, kh, kw), a view
        cols = xp.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3))
    cols = cols.reshape(groups, cg * kh * kw, -1)
    wmat = w.reshape(groups, o // groups, cg * kh * kw)
    out = _grouped_matmul(wmat, cols).reshape(o, n, rows, width)[:, :, :oh, :ow].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(out), cols, (rows, width)


def _grouped_matmul(a: Any, b: Any) -> Any:
    """``a @ b`` for (groups, ·, ·) stacks; one group (the common case) as one 2-D product, which
    ``dlia.backend.blas`` runs on dlia's threads when it is large."""
    if a.shape[0] == 1:
        return blas.matmul(a[0], b[0])[None]
    return a @ b


class Conv2d(Function):
    fresh_grads = True

    def forward(self, x, w, b=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
        xp = self.xp
        if x.ndim != 4 or w.ndim != 4:
            raise shape_error("conv2d", "input must be (N, C, H, W) and weight (O, C/groups, kh, kw)", x.shape, w.shape)
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        if c == 0 or o == 0:
            raise shape_error("conv2d", "input and weight need at least one channel", x.shape, w.shape)
        if c % groups or o % groups or cg != c // groups:
            raise shape_error(
                "conv2d", f"input has {c} channels, weight expects {cg}×{groups} groups (out {o})", x.shape, w.shape
            )
        if b is not None and b.shape != (o,):
            raise shape_error("conv2d", f"bias must have shape ({o},)", w.shape, b.shape)
        pt, pb, pl, pr = padding
        oh = _out_size(h, pt + pb, kh, stride[0], dilation[0])
        ow = _out_size(wd, pl + pr, kw, stride[1], dilation[1])
        if oh <= 0 or ow <= 0:
            raise shape_error("conv2d", f"kernel {kh}×{kw} (dilation {dilation}) is larger than the padded input",
                              x.shape, w.shape)
        self.w = w
        self.geom = (x.shape, stride, padding, dilation, groups, oh, ow)
        allocator.ensure_tuned()  # a CNN's big arrays start here (backend/allocator.py); once per process
        if native.applies(x, w, stride, padding, dilation, groups, ow):  # compiled direct convolution
            self.x, self.cols = x, None
            return native.forward(x, w, b, padding, oh, ow)
        out, self.cols, self.layout = _conv(xp, x, w, stride, padding, dilation, groups, oh, ow)
        if b is not None:
            out += b.reshape(1, o, 1, 1)
        return out

    def _g_layout(self, g: Any, n: int, oh: int, ow: int) -> Any:
        """g as (O, N, rows, width), like the im2col columns; junk positions are zero, adding nothing."""
        xp, o = self.xp, g.shape[1]
        rows, width = self.layout
        if (rows, width) == (oh, ow):
            return xp.ascontiguousarray(g.transpose(1, 0, 2, 3))
        gl = xp.zeros((o, n, rows, width), dtype=g.dtype)
        gl[:, :, :oh, :ow] = g.transpose(1, 0, 2, 3)
        return gl

    def vjp(self, g):
        xp = self.xp
        xshape, stride, padding, dilation, groups, oh, ow = self.geom
        n, c, h, wd = xshape
        w = self.w
        o, cg, kh, kw = w.shape
        gx = gw = gb = None
        needs = self.needs
        if self.cols is None:  # the forward ran on the compiled kernels
            return native.backward(g.astype(numpy.float32, copy=False), self.x, w, padding,
                                   (needs[0], needs[1], len(needs) > 2 and needs[2]))
        gl = self._g_layout(g, n, oh, ow)
        if needs[1]:  # ∂L/∂W = g · im2col(x)ᵀ, computed as (im2col(x) · gᵀ)ᵀ: OpenBLAS is faster that way
            gwt = _grouped_matmul(self.cols, gl.reshape(groups, o // groups, -1).transpose(0, 2, 1))
            gw = gwt.transpose(0, 2, 1).reshape(w.shape)
        if len(needs) > 2 and needs[2]:  # row sums of g's column layout (junk positions are 0), as a GEMV
            gb = blas.matmul(gl.reshape(o, -1), xp.ones((gl[0].size, 1), dtype=g.dtype))[:, 0]
        if needs[0]:  # col2im: the column gradients Wᵀ·g scattered back with kh·kw adds
            pt, pb, pl, pr = padding
            hp, wp = self.layout if stride == (1, 1) else (h + pt + pb, wd + pl + pr)
            dcols = _grouped_matmul(w.reshape(groups, o // groups, -1).transpose(0, 2, 1),
                                    gl.reshape(groups, o // groups, -1))
            if stride == (1, 1):  # on the tall flat image each tap is one contiguous run
                run = n * hp * wp
                dcols = dcols.reshape(c, kh, kw, run)
                gxf = xp.zeros((c, run + _overrun(kh, kw, dilation, wp)), dtype=g.dtype)
                for a in range(kh):
                    for b in range(kw):
                        off = a * dilation[0] * wp + b * dilation[1]
                        gxf[:, off:off + run] += dcols[:, a, b]
                gx = gxf[:, :run].reshape(c, n, hp, wp)[:, :, pt:pt + h, pl:pl + wd].transpose(1, 0, 2, 3)
            else:
                dcols = dcols.reshape(c, kh, kw, n, oh, ow)
                gpad = xp.zeros((n, c, hp, wp), dtype=g.dtype)
                for a in range(kh):
                    for b in range(kw):
                        gpad[_tap(a * dilation[0], b * dilation[1], stride, oh, ow)] += dcols[:, a, b].transpose(1, 0, 2, 3)
                gx = gpad[:, :, pt:pt + h, pl:pl + wd]
        return gx, gw, gb


def _pad2d(xp: Any, x: Any, top: int, bottom: int, left: int, right: int, value: Any = 0) -> Any:
    """Pad the last two axes (cheaper than ``xp.pad`` for the small arrays of a conv net)."""
    n, c, h, w = x.shape
    out = xp.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def _fill_border(x: Any, ph: int, pw: int, value: Any) -> None:
    """Overwrite the padding (``ph`` rows, ``pw`` columns on each side) of a padded (N, C, H, W) array."""
    h, w = x.shape[2:]
    x[:, :, :ph] = value
    x[:, :, h - ph:] = value
    x[:, :, :, :pw] = value
    x[:, :, :, w - pw:] = value


def _tap(a: int, b: int, stride: tuple[int, int], oh: int, ow: int) -> tuple[slice, ...]:
    """The strided slice of a padded input that kernel position (a, b) sees for every output."""
    return (slice(None), slice(None), slice(a, a + stride[0] * (oh - 1) + 1, stride[0]),
            slice(b, b + stride[1] * (ow - 1) + 1, stride[1]))


def _pool_geometry(op: str, x: Any, kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int]) -> tuple[int, int, int, int]:
    """(H, W, OH, OW) of a pooling window sliding over an (N, C, H, W) input; checks the shapes."""
    if x.ndim != 4:
        raise shape_error(op, "input must be (N, C, H, W)", x.shape)
    h, w = x.shape[2:]
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel {kernel}")
    oh = _out_size(h, 2 * padding[0], kernel[0], stride[0], 1)
    ow = _out_size(w, 2 * padding[1], kernel[1], stride[1], 1)
    if oh <= 0 or ow <= 0:
        raise shape_error(op, f"kernel {kernel} is larger than the input", x.shape)
    return h, w, oh, ow


class MaxPool2d(Function):
    fresh_grads = True

    def forward(self, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
        xp = self.xp
        h, w, oh, ow = _pool_geometry("max_pool2d", x, kernel, stride, padding)
        kh, kw = kernel
        ph, pw = padding
        floating = x.dtype.kind == "f"
        if ph or pw:  # pad with -inf: a window of -inf values gives -inf, as in torch
            x = _pad2d(xp, x, ph, ph, pw, pw, -xp.inf if floating else xp.iinfo(x.dtype).min)
        best = x[_tap(0, 0, stride, oh, ow)].copy()
        for k in range(1, kh * kw):
            xp.maximum(best, x[_tap(k // kw, k % kw, stride, oh, ow)], out=best)
        if (ph or pw) and floating:
            # NaN equals nothing, so the gradient never goes to the padding, even where a window's
            # maximum is -inf: it goes to the window's first real element, as in torch
            _fill_border(x, ph, pw, xp.nan)
        self.x, self.out = x, best
        self.geom = (x.shape, h, w, kh, kw, stride, padding, oh, ow)
        return best

    def vjp(self, g):
        xp = self.xp
        pshape, h, w, kh, kw, stride, (ph, pw), oh, ow = self.geom
        # windows that tile the input without overlap write each input element once: no zeroing,
        # no read-modify-write
        tiled = stride == (kh, kw) and pshape[2:] == (oh * kh, ow * kw)
        gpad = (xp.empty if tiled else xp.zeros)(pshape, dtype=g.dtype)
        taken = None
        last = kh * kw - 1
        for k in range(kh * kw):  # the first window position holding the maximum gets the gradient
            tap = _tap(k // kw, k % kw, stride, oh, ow)
            hit = self.x[tap] == self.out
            if taken is None:
                taken = hit.copy() if k < last else None
            else:
                hit &= ~taken
                if k < last:
                    taken |= hit
            if tiled:
                xp.multiply(g, hit, out=gpad[tap])
            else:
                gpad[tap] += g * hit
        return (gpad[:, :, ph:ph + h, pw:pw + w],)


class AvgPool2d(Function):
    fresh_grads = True

    def forward(self, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
        xp = self.xp
        h, w, oh, ow = _pool_geometry("avg_pool2d", x, kernel, stride, padding)
        kh, kw = kernel
        ph, pw = padding
        if ph or pw:
            x = _pad2d(xp, x, ph, ph, pw, pw)
        self.geom = (x.shape, h, w, kh, kw, stride, padding, oh, ow)
        out = None
        for a in range(kh):  # sum of kh·kw strided slices: no window copy
            for b in range(kw):
                part = x[:, :, a:a + stride[0] * (oh - 1) + 1:stride[0], b:b + stride[1] * (ow - 1) + 1:stride[1]]
                out = part.copy() if out is None else out + part
        return out / x.dtype.type(kh * kw) if x.dtype.kind == "f" else out / (kh * kw)

    def vjp(self, g):
        xp = self.xp
        pshape, h, w, kh, kw, stride, (ph, pw), oh, ow = self.geom
        share = g / g.dtype.type(kh * kw)
        gpad = xp.zeros(pshape, dtype=g.dtype)
        for a in range(kh):
            for b in range(kw):
                gpad[:, :, a:a + stride[0] * (oh - 1) + 1:stride[0], b:b + stride[1] * (ow - 1) + 1:stride[1]] += share
        return (gpad[:, :, ph:ph + h, pw:pw + w],)


class BatchNorm(Function):
    """Normalise over every axis but 1 with batch statistics, then scale and shift (training mode)."""

    fresh_grads = True

    def forward(self, x, gamma, beta, eps=1e-5):
        xp = self.xp
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axis=axes, keepdims=True)
        invstd = 1 / xp.sqrt(var + x.dtype.type(eps))
        self.xhat = centered * invstd
        self.invstd, self.gamma, self.axes, self.shape = invstd, gamma.reshape(shape), axes, shape
        self.batch_mean, self.batch_var = mean.reshape(-1), var.reshape(-1)
        return self.xhat * self.gamma + beta.reshape(shape)

    def vjp(self, g):
        axes, xhat = self.axes, self.xhat
        m = g.size // g.shape[1]
        gbeta = g.sum(axis=axes)
        ggamma = (g * xhat).sum(axis=axes)
        gx = None
        if self.needs[0]:
            gxhat = g * self.gamma
            gx = (self.invstd / g.dtype.type(m)) * (
                m * gxhat - gxhat.sum(axis=axes, keepdims=True) - xhat * (gxhat * xhat).sum(axis=axes, keepdims=True)
            )
        return gx, ggamma, gbeta


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation as ``torch.nn.functional.conv2d``.

    Shapes: x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,) → (N, O, OH, OW) with
    OH = ⌊(H + pads − dilation·(kh−1) − 1) / stride⌋ + 1. ``padding`` is an int, a pair, 'valid' or
    'same' (stride 1). Example: a (1, 1, 5, 5) input and a (2, 1, 3, 3) kernel give (1, 2, 3, 3).
    """
    kernel = tuple(weight.shape[2:])
    st, dil = _pair(stride, "stride"), _pair(dilation, "dilation")
    if min(st) < 1 or min(dil) < 1 or groups < 1:
        raise ValueError(f"conv2d: stride, dilation and groups must be positive, got {stride}, {dilation}, {groups}")
    pad = _padding(padding, kernel, dil, st)
    attrs = dict(stride=st, padding=pad, dilation=dil, groups=groups)
    if bias is None:
        return Conv2d.apply(x, weight, **attrs)
    return Conv2d.apply(x, weight, bias, **attrs)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Maximum over kh×kw windows (stride defaults to the kernel size). The gradient goes to the
    (first) maximal element of each window."""
    k = _pair(kernel_size, "kernel_size")
    return MaxPool2d.apply(x, kernel=k, stride=k if stride is None else _pair(stride, "stride"),
                           padding=_pair(padding, "padding"))


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Mean over kh×kw windows (zero padding counted, as PyTorch's default count_include_pad)."""
    k = _pair(kernel_size, "kernel_size")
    return AvgPool2d.apply(x, kernel=k, stride=k if stride is None else _pair(stride, "stride"),
                           padding=_pair(padding, "padding"))


def global_avg_pool2d(x: Tensor) -> Tensor:
    """(N, C, H, W) → (N, C): the mean of each feature map, whatever H and W are."""
    from dlia.core.ops.reduce import mean

    return mean(x, axis=(2, 3))


def global_max_pool2d(x: Tensor) -> Tensor:
    """(N, C, H, W) → (N, C): the largest activation of each feature map, wherever it is. Unlike
    the average, it does not shrink as the canvas around an object grows."""
    from dlia.core.ops.reduce import max as reduce_max

    return reduce_max(x, axis=(2, 3))


def batch_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> Tensor:
    """(x − mean) / √(var + eps) · γ + β with the batch's mean and (biased) variance over every axis
    except 1 (channels). For inference with running statistics, use plain arithmetic instead."""
    return BatchNorm.apply(x, gamma, beta, eps=eps)
