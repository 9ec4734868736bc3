"""Export feed-forward and convolutional models to ONNX, for onnxruntime and other inference engines.

``export`` walks the model's modules rather than tracing ops: each supported module class has a
converter that emits its ONNX nodes. Containers (``Sequential``, nested or not) convert their
children in order; a custom ``Module`` with its own ``forward`` (like ``DigitsCNN``) gets a
converter that mirrors that forward, registered with ``register_converter`` beside the model's
class (``dlia.models.cnn`` does so for its models: io never imports models).

The example input flows through the converters alongside the nodes, so every step knows its
input's rank, and the finished graph is checked against ``model(example_input)``: a converter that
does not reproduce its module's forward is caught at export, not at inference.

The ``onnx`` package (the ``onnx`` extra) is imported by ``export`` only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy

import dlia
from dlia import nn
from dlia.core.ops.conv import _padding, _pair
from dlia.core.tensor import Tensor
from dlia.io.atomic import atomic_write

__all__ = ["GraphBuilder", "Value", "export", "register_converter"]

MIN_OPSET = 13  # Softmax/LogSoftmax take a single axis from opset 13 on, as dlia's do


@dataclass
class Value:
    """A tensor of the ONNX graph: its name, and the example input's value at that point."""

    name: str
    example: Tensor


Converter = Callable[["GraphBuilder", nn.Module, Value], Value]
_CONVERTERS: dict[type, Converter] = {}


def register_converter(cls: type) -> Callable[[Converter], Converter]:
    """Register ``fn(builder, module, x) -> Value`` as the ONNX converter of exactly ``cls``.

    A converter emits the module's nodes with ``builder.node`` (or ``builder.module`` for a
    child module) and returns the output. Subclasses are not covered: their ``forward`` may differ.

    Example:
        >>> @register_converter(MyBlock)  # doctest: +SKIP
        ... def _my_block(b, m, x):
        ...     return b.relu(b.module(m.linear, x))
    """

    def decorate(fn: Converter) -> Converter:
        _CONVERTERS[cls] = fn
        return fn

    return decorate


class GraphBuilder:
    """Collects the nodes and initializers of one export; converters call its methods."""

    def __init__(self, onnx: Any, model: nn.Module) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._constants: dict[Any, str] = {}  # one initializer per shared parameter
        self._used: set[str] = set()
        self._paths = {id(m): name for name, m in model.named_modules()}
        self._scope = [""]

    def fresh(self, base: str) -> str:
        """A tensor/node name not used yet, from ``base``."""
        name, k = base, 1
        while name in self._used:
            name, k = f"{base}_{k}", k + 1
        self._used.add(name)
        return name

    def node(self, op_type: str, inputs: list[str], example: Tensor, **attrs: Any) -> Value:
        """Emit one node of the current module's scope; ``example`` is its output for the example input."""
        scope = self._scope[-1]
        out = self.fresh(f"{scope}.{op_type}" if scope else op_type)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return Value(out, example)

    def constant(self, array: Any, name: str, key: Any = None) -> str:
        """An initializer holding ``array`` (emitted once per ``key``); returns its name."""
        key = name if key is None else key
        if key not in self._constants:
            arr = numpy.ascontiguousarray(array.numpy() if isinstance(array, Tensor) else numpy.asarray(array))
            self._constants[key] = self.fresh(name)
            self.initializers.append(self.onnx.numpy_helper.from_array(arr, self._constants[key]))
        return self._constants[key]

    def param(self, module: nn.Module, attr: str) -> str:
        """The initializer of ``module.<attr>`` (a parameter or buffer), named by its state-dict key."""
        t = getattr(module, attr)
        path = self._paths.get(id(module), "")
        return self.constant(t, f"{path}.{attr}" if path else attr, key=id(t))

    def module(self, m: nn.Module, x: Value) -> Value:
        """Convert the (sub)module ``m`` applied to ``x`` with its registered converter."""
        fn = _CONVERTERS.get(type(m))
        path = self._paths.get(id(m), "")
        if fn is None:
            supported = ", ".join(sorted(c.__name__ for c in _CONVERTERS))
            raise ValueError(
                f"ONNX export: unsupported module {type(m).__module__}.{type(m).__qualname__}"
                f"{f' at {path!r}' if path else ''}; supported: {supported} (add one with register_converter)"
            )
        self._scope.append(path)
        try:
            return fn(self, m, x)
        finally:
            self._scope.pop()

    # -- steps of custom forwards -------------------------------------------------------------
    def relu(self, x: Value) -> Value:
        return self.node("Relu", [x.name], x.example.relu())

    def flatten(self, x: Value, start: int = 1) -> Value:
        """dlia's ``flatten(start)``: ONNX Flatten when the result is 2-D, else a Reshape."""
        y = x.example.flatten(start)
        start %= x.example.ndim if x.example.ndim else 1
        if start == 1:
            return self.node("Flatten", [x.name], y, axis=1)
        shape = self.constant(numpy.array([0] * start + [-1], dtype=numpy.int64), f"flatten{start}_shape")
        return self.node("Reshape", [x.name, shape], y)


# -- converters of dlia.nn --------------------------------------------------------------------
@register_converter(nn.Sequential)
def _sequential(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    for child in m:
        x = b.module(child, x)
    return x


@register_converter(nn.Identity)
@register_converter(nn.Dropout)  # exported in eval mode, where dropout is the identity
def _identity(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    return x


@register_converter(nn.Linear)
def _linear(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    y = m(x.example)
    if x.example.ndim == 2:
        inputs = [x.name, b.param(m, "weight")] + ([b.param(m, "bias")] if m.bias is not None else [])
        return b.node("Gemm", inputs, y, transB=1)
    path = b._paths.get(id(m), "")
    w_t = b.constant(m.weight.numpy().T, f"{path}.weight_t" if path else "weight_t", key=(id(m.weight), "T"))
    h = b.node("MatMul", [x.name, w_t], x.example @ m.weight.T)  # Gemm is 2-D only
    return h if m.bias is None else b.node("Add", [h.name, b.param(m, "bias")], y)


def _unary(op_type: str) -> Converter:
    def convert(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
        return b.node(op_type, [x.name], m(x.example))

    return convert


register_converter(nn.ReLU)(_unary("Relu"))
register_converter(nn.Sigmoid)(_unary("Sigmoid"))
register_converter(nn.Tanh)(_unary("Tanh"))


@register_converter(nn.LeakyReLU)
def _leaky_relu(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    return b.node("LeakyRelu", [x.name], m(x.example), alpha=float(m.negative_slope))


@register_converter(nn.Softmax)
@register_converter(nn.LogSoftmax)
def _softmax(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    op = "Softmax" if type(m) is nn.Softmax else "LogSoftmax"
    return b.node(op, [x.name], m(x.example), axis=int(m.axis))


@register_converter(nn.Flatten)
def _flatten(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    return b.flatten(x, m.start)


@register_converter(nn.Conv2d)
def _conv2d(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    stride, dilation = _pair(m.stride, "stride"), _pair(m.dilation, "dilation")
    top, bottom, left, right = _padding(m.padding, m.kernel_size, dilation, stride)  # 'same' made explicit
    inputs = [x.name, b.param(m, "weight")] + ([b.param(m, "bias")] if m.bias is not None else [])
    return b.node("Conv", inputs, m(x.example), kernel_shape=list(m.kernel_size), strides=list(stride),
                  pads=[top, left, bottom, right], dilations=list(dilation), group=int(m.groups))


def _pool_attrs(m: nn.Module) -> dict[str, Any]:
    kernel = _pair(m.kernel_size, "kernel_size")
    stride = kernel if m.stride is None else _pair(m.stride, "stride")
    ph, pw = _pair(m.padding, "padding")
    return dict(kernel_shape=list(kernel), strides=list(stride), pads=[ph, pw, ph, pw])


@register_converter(nn.MaxPool2d)
def _max_pool2d(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    return b.node("MaxPool", [x.name], m(x.example), **_pool_attrs(m))


@register_converter(nn.AvgPool2d)
def _avg_pool2d(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    return b.node("AveragePool", [x.name], m(x.example), count_include_pad=1, **_pool_attrs(m))


@register_converter(nn.GlobalAvgPool2d)
def _global_avg_pool2d(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    y = m(x.example)
    pooled = b.node("GlobalAveragePool", [x.name], y.reshape(y.shape + (1, 1)))
    return b.node("Flatten", [pooled.name], y, axis=1)


@register_converter(nn.GlobalMaxPool2d)
def _global_max_pool2d(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    y = m(x.example)
    pooled = b.node("GlobalMaxPool", [x.name], y.reshape(y.shape + (1, 1)))
    return b.node("Flatten", [pooled.name], y, axis=1)


@register_converter(nn.BatchNorm2d)
def _batch_norm2d(b: GraphBuilder, m: nn.Module, x: Value) -> Value:
    if m.weight is None:  # affine=False: ONNX still wants a scale and a shift, here 1 and 0
        n = m.num_features
        path = b._paths.get(id(m), "")
        affine = [b.constant(numpy.ones(n, m.running_mean.dtype), f"{path}.ones" if path else "ones"),
                  b.constant(numpy.zeros(n, m.running_mean.dtype), f"{path}.zeros" if path else "zeros")]
    else:
        affine = [b.param(m, "weight"), b.param(m, "bias")]
    inputs = [x.name] + affine + [b.param(m, a) for a in ("running_mean", "running_var")]
    return b.node("BatchNormalization", inputs, m(x.example), epsilon=float(m.eps))


# -- export -------------------------------------------------------------------------------------
def export(model: nn.Module, example_input: Tensor | Any, path: str | os.PathLike[str], opset: int = 17,
           input_name: str = "input", output_name: str = "output", dynamic_batch: bool = True,
           dynamic_axes: Mapping[int, str] | None = None) -> Any:
    """Write ``model`` as an ONNX file that computes ``model(x)`` in eval mode, and return the ModelProto.

    Supported: ``Sequential`` (nested too), ``Linear`` (Gemm; MatMul + Add beyond 2-D), ``ReLU``,
    ``Sigmoid``, ``Tanh``, ``LeakyReLU``, ``Softmax``, ``LogSoftmax``, ``Flatten``, ``Dropout`` and
    ``Identity`` (no node), ``Conv2d`` (any stride, padding incl. 'same', dilation, groups, bias),
    ``MaxPool2d``, ``AvgPool2d`` (padding counted, as PyTorch's default), ``GlobalAvgPool2d``,
    ``GlobalMaxPool2d``, ``BatchNorm2d`` (running statistics), and whatever ``register_converter``
    adds (``DigitsCNN`` and ``DigitsFCN`` register theirs in ``dlia.models.cnn``). The model is put
    in eval mode for the export and its modes are restored afterwards; the file is written
    atomically and passes ``onnx.checker``.

    Args:
        model: the model to export.
        example_input: one input batch (Tensor or array); fixes the input's dtype and shape.
        path: where to write the ``.onnx`` file.
        opset: ONNX operator set version (13 or newer).
        input_name, output_name: the graph's input and output names.
        dynamic_batch: make axis 0 of the input and output a symbolic ``"batch"`` dimension.
        dynamic_axes: further input axes to make symbolic, e.g. ``{2: "height", 3: "width"}`` for a
            fully convolutional net; the output's other axes are then left unspecified.

    Raises:
        ValueError: an unsupported module (named with its type and path), or a bad argument.
        ImportError: the ``onnx`` package is missing (install the ``onnx`` extra).

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))  # doctest: +SKIP
        >>> export(model, dlia.randn(2, 4), "mlp.onnx")  # doctest: +SKIP
    """
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("ONNX export needs the 'onnx' package: pip install 'dlia[onnx]'") from e

    if not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"ONNX export: opset must be in [{MIN_OPSET}, {onnx.defs.onnx_opset_version()}], got {opset}")
    if input_name == output_name:
        raise ValueError(f"ONNX export: input and output names must differ, both are {input_name!r}")
    x = example_input if isinstance(example_input, Tensor) else Tensor(example_input)
    dynamic_axes = dict(dynamic_axes or {})
    bad = [a for a in dynamic_axes if not 0 < a < x.ndim]
    if bad:
        raise ValueError(f"ONNX export: dynamic_axes {bad} out of range for input shape {x.shape} "
                         "(axis 0 is set by dynamic_batch)")

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with dlia.no_grad():
            expected = model(x)
            b = GraphBuilder(onnx, model)
            b._used.update((input_name, output_name))
            out = b.module(model, Value(input_name, x))
    finally:
        for m, training in modes:
            m.training = training
    _check_reproduces(model, out.example, expected)

    if out.name == input_name:  # nothing but identities: still one node, so the output has a producer
        b.nodes.append(onnx.helper.make_node("Identity", [input_name], [output_name], name=output_name))
    else:
        for node in b.nodes:  # give the last value the requested output name
            node.input[:] = [output_name if n == out.name else n for n in node.input]
            node.output[:] = [output_name if n == out.name else n for n in node.output]

    in_shape: list[Any] = list(x.shape)
    out_shape: list[Any] = list(expected.shape) if not dynamic_axes else [None] * expected.ndim
    for axis, name in dynamic_axes.items():
        in_shape[axis] = name
    if dynamic_batch and x.ndim:
        in_shape[0] = "batch"
        if expected.ndim:
            out_shape[0] = "batch"
    elem = onnx.helper.np_dtype_to_tensor_dtype
    graph = onnx.helper.make_graph(
        b.nodes, type(model).__name__,
        [onnx.helper.make_tensor_value_info(input_name, elem(numpy.dtype(x.dtype)), in_shape)],
        [onnx.helper.make_tensor_value_info(output_name, elem(numpy.dtype(expected.dtype)), out_shape)],
        initializer=b.initializers,
    )
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="dlia", producer_version=dlia.__version__)
    proto.ir_version = onnx.helper.find_min_ir_version_for(opsets)  # the oldest IR that runtimes accept
    onnx.checker.check_model(proto, full_check=True)
    with atomic_write(path, "wb") as f:
        f.write(proto.SerializeToString())
    return proto


def _check_reproduces(model: nn.Module, got: Tensor, expected: Tensor) -> None:
    """Raise if the converters' example output differs from the model's own forward."""
    a, e = got.numpy(), expected.numpy()
    if a.shape != e.shape or a.dtype != e.dtype or not numpy.allclose(a, e, rtol=1e-4, atol=1e-5):
        raise ValueError(
            f"ONNX export: the converters of {type(model).__name__} do not reproduce its forward "
            f"(expected {e.dtype}{e.shape}, got {a.dtype}{a.shape}); update its register_converter function"
        )
