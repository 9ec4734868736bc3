"""Training in graph mode: ``optimizer.minimize(loss)`` returns a train op; running it in a Session
updates the variables with the optimizers' own update code (``dlia.optim``).

Graph-mode training lives here, above ``dlia.optim``, which never imports ``dlia.graph``: this
module gives every optimizer its ``minimize`` method, and ``Trainer`` runs a train op in a Session by
calling the optimizer's ``step`` on tensors that share the variables' arrays. Eager and graph mode
thus share one update mechanism, the optimizers' multi-tensor ("foreach") path included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dlia.core.sparse import SparseGrad
from dlia.core.tensor import wrap
from dlia.graph.core import GraphError, Node
from dlia.graph.gradients import gradients
from dlia.optim import SGD, Adam
from dlia.optim.optimizer import Optimizer


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
                attrs={"variables": [v for v, _ in pairs], "factory": optimizer_factory})
    node.is_gradient = True
    return node


def _optimizer_minimize(self: Optimizer, loss: Node, var_list: Sequence[Node] | None = None) -> Node:
    """Graph mode: a train op that applies this optimizer's rule (and hyper-parameters) to the
    graph variables it was built with (or ``var_list``) using gradients of ``loss``."""
    groups = [{k: v for k, v in g.items() if k not in ("params", "initial_lr")} for g in self.param_groups]
    params = [p for g in self.param_groups for p in g["params"]]
    cls = type(self)

    def factory(proxies: list[Any]) -> Optimizer:
        it = iter(proxies)
        return cls([dict(g, params=[next(it) for _ in og["params"]]) for g, og in zip(groups, self.param_groups)])

    if var_list is not None:
        return minimize(lambda proxies: cls(proxies, **groups[0]), loss, var_list)
    return minimize(factory, loss, params)


# registered from this, the higher layer: every optimizer gets ``minimize`` once graph mode is loaded
# (which it is wherever a graph node exists)
Optimizer.minimize = _optimizer_minimize  # type: ignore[attr-defined]


class Trainer:
    """A train op's optimizer in one Session. Its parameters are proxies: tensors sharing the
    Session's variable arrays. Each run gives them the gradients and calls the optimizer's ``step``,
    the same code as in eager mode; the optimizers' multi-tensor path (PyTorch's "foreach": one array
    operation per group instead of one per parameter) applies as it does there."""

    def __init__(self, session: Any, node: Node) -> None:
        xp, self.values = session.xp, session.vars
        self.variables = node.attrs["variables"]
        self.proxies = [wrap(self.values.setdefault(v, xp.array(v.value)), True) for v in self.variables]
        self.opt = node.attrs["factory"](self.proxies)
        # the variables of a group (one dtype) move into one buffer, their values becoming consecutive
        # views of it: the optimizer's multi-tensor path then updates the whole group in one operation
        owner = {id(p): v for p, v in zip(self.proxies, self.variables)}
        for group in self.opt.param_groups:
            ps = group["params"]
            if len(ps) > 1 and len({p.data.dtype for p in ps}) == 1:
                flat, off = xp.concatenate([p.data.ravel() for p in ps]), 0
                for p in ps:
                    p.data = self.values[owner[id(p)]] = flat[off:off + p.data.size].reshape(p.data.shape)
                    off += p.data.size

    def step(self, grads: list[Any]) -> None:
        values = self.values
        for v, proxy, g in zip(self.variables, self.proxies, grads):
            proxy.data = values[v]  # another train op or ``Session.assign`` may have replaced the array
            proxy.grad = g if type(g) is SparseGrad else wrap(g)
        self.opt.step()
        for v, proxy in zip(self.variables, self.proxies):
            values[v] = proxy.data  # the rules update in place; one that rebinds ``data`` is kept too


class _GraphOptimizer:
    """TF1-style optimizer objects: ``GradientDescentOptimizer(0.5).minimize(loss)``."""

    def __init__(self, cls: Any, **hyper: Any) -> None:
        self.cls, self.hyper = cls, hyper

    def minimize(self, loss: Node, var_list: Sequence[Node] | None = None) -> Node:
        return minimize(lambda params: self.cls(params, **self.hyper), loss, var_list)


def GradientDescentOptimizer(learning_rate: float) -> _GraphOptimizer:  # noqa: N802 - TF1's name
    """Plain gradient descent (``dlia.optim.SGD``) for graph mode."""
    return _GraphOptimizer(SGD, lr=learning_rate)


def MomentumOptimizer(learning_rate: float, momentum: float, use_nesterov: bool = False) -> _GraphOptimizer:  # noqa: N802
    return _GraphOptimizer(SGD, lr=learning_rate, momentum=momentum, nesterov=use_nesterov)


def AdamOptimizer(learning_rate: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,  # noqa: N802
                  epsilon: float = 1e-8) -> _GraphOptimizer:
    return _GraphOptimizer(Adam, lr=learning_rate, betas=(beta1, beta2), eps=epsilon)
