"""Stateless functions behind the layers (``torch.nn.functional``'s names)."""

from dlia.core.ops import (  # noqa: F401
    avg_pool2d,
    batch_norm,
    conv2d,
    global_avg_pool2d,
    max_pool2d,
    binary_cross_entropy_with_logits,
    cross_entropy,
    dropout,
    embedding,
    leaky_relu,
    linear,
    log_softmax,
    logsumexp,
    mse_loss,
    nll_loss,
    one_hot,
    relu,
    sigmoid,
    softmax,
    tanh,
)
