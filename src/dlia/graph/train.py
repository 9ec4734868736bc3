"""Training in graph mode: ``optimizer.minimize(loss)`` returns a train op; running it in a Session
updates the variables with the same update rules eager mode uses (``dlia.optim``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dlia.graph.core import GraphError, Node
from dlia.graph.gradients import gradients


def minimize(optimizer_factory: Any, loss: Node, var_list: Sequence[Node] | None = None, name: str = "train") -> Node:
    """A train op: gradients of ``loss`` for ``var_list`` (default: every trainable variable of the
    graph that affects the loss), then one optimizer step on the Session's variable values.

    Args:
        optimizer_factory: ``params -> dlia.optim.Optimizer``; called once per Session with proxy
            tensors that share the Session's variable arrays.
        loss: the node to minimise (summed if not scalar).
        var_list: variables to train.
    """
    graph = loss.graph
    variables = list(var_list) if var_list is not None else graph.variables(trainable_only=True)
    for v in variables:
        if not isinstance(v, Node) or v.kind != "variable":
            raise GraphError(f"minimize: {getattr(v, 'name', v)!r} is not a variable")
    grads = gradients(loss, variables)
    pairs = [(v, g) for v, g in zip(variables, grads) if g is not None]
    if not pairs:
        raise GraphError(f"minimize: none of the variables affects {loss.name!r}")
    node = Node(graph, "train", name, None, None, inputs=tuple(g for _, g in pairs),
                attrs={"variables": [v for v, _ in pairs], "factory": _with_proxies(optimizer_factory)})
    node.is_gradient = True
    return node


def _with_proxies(factory: Any) -> Any:
    def make(proxies: list[Any]) -> Any:
        opt = factory(proxies)
        opt.proxies = proxies
        return opt

    return make


class _GraphOptimizer:
    """TF1-style optimizer objects: ``GradientDescentOptimizer(0.5).minimize(loss)``."""

    def __init__(self, cls: Any, **hyper: Any) -> None:
        self.cls, self.hyper = cls, hyper

    def minimize(self, loss: Node, var_list: Sequence[Node] | None = None) -> Node:
        return minimize(lambda params: self.cls(params, **self.hyper), loss, var_list)


def GradientDescentOptimizer(learning_rate: float) -> _GraphOptimizer:  # noqa: N802 - TF1's name
    """Plain gradient descent (``dlia.optim.SGD``) for graph mode."""
    from dlia.optim import SGD

    return _GraphOptimizer(SGD, lr=learning_rate)


def MomentumOptimizer(learning_rate: float, momentum: float, use_nesterov: bool = False) -> _GraphOptimizer:  # noqa: N802
    from dlia.optim import SGD

    return _GraphOptimizer(SGD, lr=learning_rate, momentum=momentum, nesterov=use_nesterov)


def AdamOptimizer(learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,  # noqa: N802
                  epsilon: float = 1e-8) -> _GraphOptimizer:
    from dlia.optim import Adam

    return _GraphOptimizer(Adam, lr=learning_rate, betas=(beta1, beta2), eps=epsilon)
