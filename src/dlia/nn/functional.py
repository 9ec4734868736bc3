"""Stateless functions behind the layers (``torch.nn.functional``'s names)."""

from dlia.core.ops import (  # noqa: F401
    avg_pool2d,
    batch_norm,
    binary_cross_entropy_with_logits,
    conv2d,
    cross_entropy,
    dropout,
    embedding,
    global_avg_pool2d,
    leaky_relu,
    linear,
    log_softmax,
    logsumexp,
    max_pool2d,
    mse_loss,
    nll_loss,
    one_hot,
    relu,
    sigmoid,
    softmax,
    tanh,
)
