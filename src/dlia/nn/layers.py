"""Basic layers: Linear, Embedding, Dropout, activations, Flatten, Identity, containers, losses."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy

from dlia.core import ops
from dlia.core.ops.elementwise import ReLU as _ReLUOp
from dlia.core.ops.elementwise import Sigmoid as _SigmoidOp
from dlia.core.ops.elementwise import Tanh as _TanhOp
from dlia.core.ops.loss import MSELoss as _MSEOp
from dlia.core.ops.loss import _check_reduction
from dlia.core.ops.nn import Linear as _LinearOp
from dlia.core.random import Generator
from dlia.core.tensor import Tensor
from dlia.nn import init
from dlia.nn.module import Module
from dlia.nn.parameter import Parameter


class Linear(Module):
    """``y = x Wᵀ + b`` with W of shape (out_features, in_features), initialised as PyTorch's.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: whether to learn an additive bias.
        dtype: parameter dtype (float32 by default).
        generator: seeded source for the initial weights.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = numpy.float32,
                 generator: Generator | None = None) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: features must be positive, got {in_features}, {out_features}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(numpy.empty((out_features, in_features), dtype=dtype))
        bound = 1.0 / math.sqrt(in_features)
        init.uniform_(self.weight, -bound, bound, generator)  # = kaiming_uniform_(a=√5), PyTorch's default
        if bias:
            self.bias = Parameter(numpy.empty(out_features, dtype=dtype))
            init.uniform_(self.bias, -bound, bound, generator)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        if self.bias is None:
            return _LinearOp.apply(x, self.weight)
        return _LinearOp.apply(x, self.weight, self.bias)  # the op itself: no wrapper call per step

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``, initialised N(0, 1).

    With ``sparse=True`` the weight's gradient is a ``SparseGrad`` holding only the rows used.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 sparse: bool = False, dtype: Any = numpy.float32, generator: Generator | None = None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None and padding_idx < 0:
            padding_idx += num_embeddings
        self.padding_idx, self.sparse = padding_idx, sparse
        self.weight = Parameter(numpy.empty((num_embeddings, embedding_dim), dtype=dtype))
        init.normal_(self.weight, 0.0, 1.0, generator)
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, indices: Any) -> Tensor:
        return ops.embedding(self.weight, indices, sparse=self.sparse, padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}" + (", sparse=True" if self.sparse else "")


class Dropout(Module):
    """Inverted dropout with probability ``p`` while training; identity in eval mode."""

    def __init__(self, p: float = 0.5, generator: Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p, self.generator = p, generator

    def forward(self, x: Tensor) -> Tensor:
        return ops.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return _ReLUOp.apply(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return _SigmoidOp.apply(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return _TanhOp.apply(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return ops.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return ops.softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    def forward(self, x: Tensor) -> Tensor:
        return ops.log_softmax(x, self.axis)


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """(N, d1, d2, ...) → (N, d1·d2·...)."""

    def __init__(self, start: int = 1) -> None:
        super().__init__()
        self.start = start

    def forward(self, x: Tensor) -> Tensor:
        return ops.flatten(x, self.start)


class Sequential(Module):
    """Modules applied in order: ``Sequential(Linear(2, 4), ReLU(), Linear(4, 1))``."""

    def __init__(self, *modules: Module | OrderedDict[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of submodules, registered so their parameters are found."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class MSELoss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        if type(target) is not Tensor:
            return ops.mse_loss(input, target, self.reduction)
        return _MSEOp.apply(input, target, reduction=self.reduction)  # checked once, in __init__


class CrossEntropyLoss(Module):
    def __init__(self, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.ignore_index, self.reduction, self.label_smoothing = ignore_index, reduction, label_smoothing

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return ops.cross_entropy(logits, target, self.ignore_index, self.reduction, self.label_smoothing)


class NLLLoss(Module):
    def __init__(self, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__()
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, log_probs: Tensor, target: Any) -> Tensor:
        return ops.nll_loss(log_probs, target, self.ignore_index, self.reduction)


class BCEWithLogitsLoss(Module):
    def __init__(self, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__()
        self.reduction, self.pos_weight = reduction, pos_weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return ops.binary_cross_entropy_with_logits(logits, target, self.reduction, self.pos_weight)
