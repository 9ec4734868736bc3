"""Every op of the engine, one file per family: forward and vjp side by side."""

from dlia.core.ops.arith import add, div, matmul, mul, neg, pow, sub
from dlia.core.ops.conv import avg_pool2d, batch_norm, conv2d, global_avg_pool2d, global_max_pool2d, max_pool2d
from dlia.core.ops.elementwise import (
    abs,
    cast,
    clip,
    exp,
    leaky_relu,
    log,
    maximum,
    minimum,
    relu,
    sigmoid,
    sqrt,
    tanh,
    where,
)
from dlia.core.ops.loss import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)
from dlia.core.ops.nn import dropout, embedding, linear, one_hot
from dlia.core.ops.reduce import log_softmax, logsumexp, max, mean, min, softmax, sum, var
from dlia.core.ops.shape import (
    broadcast_to,
    concatenate,
    expand,
    flatten,
    getitem,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)

__all__ = [
    "abs", "add", "avg_pool2d", "batch_norm", "conv2d", "global_avg_pool2d", "global_max_pool2d", "max_pool2d",
    "binary_cross_entropy_with_logits", "broadcast_to", "cast", "clip",
    "concatenate", "cross_entropy", "div", "dropout", "embedding", "exp", "expand", "flatten",
    "getitem", "leaky_relu", "linear", "log", "log_softmax", "logsumexp", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mse_loss", "mul", "neg", "nll_loss", "one_hot", "permute", "pow",
    "relu", "reshape", "sigmoid", "softmax", "split", "sqrt", "squeeze", "stack", "sub", "sum",
    "tanh", "transpose", "unsqueeze", "var", "where",
]
