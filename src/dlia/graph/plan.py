"""``Plan``: the executable form of (fetches, fed nodes) that ``Session.run`` and ``dlia.compile``
run, after the graph passes (``passes``).

A plan numbers the values it handles (slots) and lists ``Step``s over them in topological order:
pruned to what the fetches need, constants folded, common subexpressions merged, elementwise chains
fused, and each step told which values and op contexts die after it (the memory plan). ``codegen``
turns a plan into straight-line Python, one line (or a few) per step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from dlia.graph import passes
from dlia.graph.core import GraphError, Node, NodeKind, _fmt, topological


class StepKind(Enum):
    """What a step does to produce its value."""

    VAR = "variable"  #: read a variable's value from the Session
    CAPTURE = "capture"  #: read an eager tensor's current array (``dlia.compile``)
    OP = "op"  #: run an op's forward, keeping its context (``c<out>``) for a later vjp
    FUSED = "fused"  #: run a chain of elementwise ops, each on the previous one's result
    VJP = "vjp"  #: call ``vjp`` on the context of an earlier OP step
    GRAD = "grad"  #: pick one input gradient out of a VJP step's result, fitted to its input's shape
    TRAIN = "train"  #: apply an optimizer update to the Session's variables


_STEP_OF = {NodeKind.VARIABLE: StepKind.VAR, NodeKind.CAPTURE: StepKind.CAPTURE, NodeKind.OP: StepKind.OP,
            NodeKind.VJP: StepKind.VJP, NodeKind.GRAD: StepKind.GRAD, NodeKind.TRAIN: StepKind.TRAIN}


@dataclass(eq=False)
class Step:
    """One step of a plan: compute ``nodes`` from the values in slots ``ins`` into slot ``out``."""

    kind: StepKind
    #: the node computed; a FUSED step's chain of elementwise op nodes, in order
    nodes: tuple[Node, ...]
    #: value slots read (a VJP: the output gradient; a GRAD: the VJP's result)
    ins: list[int]
    #: the slot the result goes to
    out: int
    #: VJP only: the slot of the OP step whose saved context computes the gradients
    ctx: int | None = None
    #: GRAD only: the slot whose runtime shape (and the dtype of its node) the gradient takes
    shape_of: int | None = None
    #: values (slots) nobody reads after this step: dropped right after it
    free: list[int] = field(default_factory=list)
    #: op contexts (slots of OP steps) whose gradient ran in this step: dropped right after it
    free_ctx: list[int] = field(default_factory=list)

    @property
    def node(self) -> Node:
        """The node whose value lands in ``out``."""
        return self.nodes[-1]

    def reads(self) -> list[int]:
        """Every slot the step depends on: its values, and the context or shape it needs."""
        extra = [s for s in (self.ctx, self.shape_of) if s is not None]
        return self.ins + extra if extra else self.ins


class Plan:
    """The executable form of (fetches, fed nodes): steps over numbered value slots.

    Attributes:
        steps: the ``Step``s in run order; ``steps[:split]`` need only the fed nodes, the rest also
            need the ``later`` feeds (for ``dlia.compile``: the output gradient).
        feeds: ``(node, slot)`` of every fed node.
        constants: ``(slot, array)`` of every folded constant.
        fetch_slots: the slot of each fetch.
        needs: per differentiated op node id, which of its input gradients this plan uses.
        shape_slots: slots whose runtime shape a GRAD step needs after the value may be dropped.
    """

    def __init__(self, fetches: list[Node], fed: Iterable[Node], fuse: bool = True, later: Iterable[Node] = ()) -> None:
        later_ids = {id(n) for n in later}
        fed = list(fed) + list(later)
        fed_ids = {id(n) for n in fed}
        order = topological(fetches, fed_ids)
        folded = passes.fold_constants([n for n in order if id(n) not in fed_ids])
        alias = passes.eliminate_common(order, {}, fed_ids)

        def canon(n: Node) -> Node:
            return alias.get(id(n), n)

        slots: dict[int, int] = {}
        steps: list[Step] = []
        self.feeds: list[tuple[Node, int]] = []
        self.constants: list[tuple[int, Any]] = []
        for node in order:
            if id(node) in alias:
                continue
            slot = slots[id(node)] = len(slots)
            if id(node) in fed_ids:
                self.feeds.append((node, slot))
                continue
            ins = [slots[id(canon(i))] for i in node.inputs]
            kind = _STEP_OF.get(node.kind)
            if id(node) in folded and node.kind in (NodeKind.CONSTANT, NodeKind.OP):
                self.constants.append((slot, folded[id(node)]))
            elif node.kind is NodeKind.PLACEHOLDER:
                raise GraphError(f"placeholder {node.name!r} (shape {_fmt(node.static_shape)}) must be fed: "
                                 f"pass it in feed_dict")
            elif kind is StepKind.VJP:
                steps.append(Step(kind, (node,), ins[1:], slot, ctx=ins[0]))
            elif kind is StepKind.GRAD:
                steps.append(Step(kind, (node,), ins, slot, shape_of=slots[id(canon(node.extra))]))
            elif kind is not None:
                steps.append(Step(kind, (node,), ins, slot))
            else:
                raise GraphError(f"node {node.name!r} of kind {node.kind!r} cannot be run")
        self.fetch_slots = [slots[id(canon(f))] for f in fetches]
        # which input gradients each differentiated op must produce *in this plan*: those that a
        # grad node of the plan reads (merged twins get the union)
        wanted: dict[int, set[int]] = {}
        for node in order:
            if node.kind is NodeKind.GRAD and id(node) not in fed_ids:
                wanted.setdefault(id(node.inputs[0]), set()).add(node.index)
        self.needs: dict[int, tuple[bool, ...]] = {}
        for node in order:
            if node.kind is NodeKind.VJP and id(node) not in fed_ids:
                fwd = canon(node.inputs[0])
                got = wanted.get(id(node), set())
                new = tuple(i in got for i in range(len(fwd.inputs)))
                old = self.needs.get(id(fwd))
                self.needs[id(fwd)] = new if old is None else tuple(a or b for a, b in zip(old, new))
        self.nslots = len(slots)
        # two phases (for compiled functions): steps that need a `later` feed run only in phase 2
        late = {slots[i] for i in later_ids if i in slots}
        phase2 = []
        for st in steps:
            if any(s in late for s in st.reads()):
                late.add(st.out)
                phase2.append(st)
        steps = [st for st in steps if st.out not in late] + phase2
        if fuse:
            steps = self._fuse(steps)
        self.split = sum(1 for st in steps if st.out not in late)
        self.steps = steps
        self._plan_memory()

    @property
    def late_slots(self) -> set[int]:
        """The values computed in phase 2 (after the ``later`` feeds arrive)."""
        return {st.out for st in self.steps[self.split:]}

    def _fuse(self, steps: list[Step]) -> list[Step]:
        """Merge an elementwise op into the step before it when it is that step's only consumer and
        neither op's context is needed for a gradient: one step, no intermediate slot."""
        uses: dict[int, int] = {s: 1 for s in self.fetch_slots}
        ctx_needed = {st.ctx for st in steps if st.kind is StepKind.VJP}
        for st in steps:
            for s in st.reads():
                uses[s] = uses.get(s, 0) + 1
        out: list[Step] = []
        for st in steps:
            prev = out[-1] if out else None
            if (prev is not None and st.kind is StepKind.OP and st.node.op in passes.ELEMENTWISE
                    and prev.kind in (StepKind.OP, StepKind.FUSED) and st.ins == [prev.out] and uses.get(prev.out) == 1
                    and prev.out not in ctx_needed and st.out not in ctx_needed):
                out[-1] = Step(StepKind.FUSED, prev.nodes + st.nodes, prev.ins, st.out)
            else:
                out.append(st)
        return out

    def _plan_memory(self) -> None:
        """Tell each step which values and contexts are dead after it."""
        last_value: dict[int, int] = {}
        last_ctx: dict[int, int] = {}
        self.shape_slots: set[int] = set()
        for k, st in enumerate(self.steps):
            for s in st.ins:
                last_value[s] = k
            if st.ctx is not None:
                last_ctx[st.ctx] = k
            if st.shape_of is not None:
                self.shape_slots.add(st.shape_of)  # only its shape is read: remembered when it is made
        keep = set(self.fetch_slots)
        for s, k in last_value.items():
            if s not in keep:
                self.steps[k].free.append(s)
        for s, k in last_ctx.items():
            self.steps[k].free_ctx.append(s)
