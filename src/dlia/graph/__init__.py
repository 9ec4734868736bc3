"""Graph mode: build a dataflow graph, then run it in a ``Session`` on a ``Device``.

The lecture's "What is TensorFlow?": computations are graphs whose nodes are operations and whose
edges are tensors; nothing runs until a Session executes the graph. Every engine op works on graph
nodes (it is the same op class), ``gradients`` builds gradient nodes from the ops' own vjps,
``optimizer.minimize(loss)`` makes a train op, and ``dlia.compile`` traces eager code into a graph.
"""

from dlia.graph.compile import CompiledFunction, compile
from dlia.graph.core import (
    Graph,
    GraphError,
    Node,
    Variable,
    constant,
    get_default_graph,
    placeholder,
    reset_default_graph,
)
from dlia.graph.gradients import gradients
from dlia.graph.session import Session
from dlia.graph.train import AdamOptimizer, GradientDescentOptimizer, MomentumOptimizer, minimize

__all__ = [
    "AdamOptimizer", "CompiledFunction", "GradientDescentOptimizer", "Graph", "GraphError", "MomentumOptimizer",
    "Node", "Session", "Variable", "compile", "constant", "get_default_graph", "gradients", "minimize", "placeholder",
    "reset_default_graph",
]
