"""Straight-line Python for a plan: how every plan runs, in a ``Session`` and in ``dlia.compile``.

A plan is fixed once made, so instead of interpreting its steps (a loop, list indexing and a
dispatch on the step kind per op), it is turned into Python source once — one line per op
(``v7 = c7.forward(v3, v5, **a7)``), one per gradient, ``del`` where a value dies (the memory plan)
— and compiled with the built-in ``compile``. Names: ``v<slot>`` a value, ``c<slot>`` an op's
context (kept for its vjp), ``s<slot>`` a value's shape kept for a gradient; ``O``/``a``/``n``/``V``/
``N``/``T``/``k`` followed by a slot are the op class, attributes, needed gradients, variable,
captured node, train node and constant the generated code finds in its namespace.

Two functions come out: ``phase1(*inputs)`` (the steps that need only the fed nodes) returns the
fetched values and the state phase 2 needs; ``phase2(state, late_value)`` runs the steps that need
the ``late`` feed (the output gradient of a compiled function). The state is what the emitter
recorded while writing the lines: every name phase 1 defines and does not delete, that phase 2 uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy

from dlia.core.autodiff import unbroadcast
from dlia.graph.plan import Plan, Step, StepKind


def _fit(g: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    if g.shape != shape:
        g = unbroadcast(g, shape)
    return g if g.dtype == dtype else g.astype(dtype)


class _Function:
    """The lines of one generated function, with the names they define, use and delete, recorded as
    each line is emitted."""

    def __init__(self, header: str, params: Iterable[str]) -> None:
        self.lines = [header]
        self.defined: set[str] = set(params)
        self.used: set[str] = set()

    def emit(self, line: str, defines: Iterable[str] = (), uses: Iterable[str] = ()) -> None:
        self.lines.append("    " + line)
        self.defined.update(defines)
        self.used.update(uses)

    def delete(self, name: str) -> None:
        self.emit(f"del {name}", uses=(name,))
        self.defined.discard(name)


def _emit_step(f: _Function, st: Step, plan: Plan, env: dict[str, Any], xp: Any) -> None:
    """Write the lines of one step into ``f`` (and what they refer to into ``env``)."""
    out, ins, kind = st.out, st.ins, st.kind
    v = f"v{out}"
    args = [f"v{i}" for i in ins]
    if kind is StepKind.OP:
        node = st.node
        env[f"O{out}"], env[f"a{out}"] = node.op, node.attrs
        f.emit(f"c{out} = _new(O{out})", defines=[f"c{out}"])
        if xp is not numpy:
            f.emit(f"c{out}.xp = _xp", uses=[f"c{out}"])
        needs = plan.needs.get(id(node))
        if needs is not None:
            env[f"n{out}"] = needs
            f.emit(f"c{out}.needs = n{out}", uses=[f"c{out}"])
        call = f"c{out}.forward({', '.join(args)}, **a{out})" if node.attrs else f"c{out}.forward({', '.join(args)})"
        f.emit(f"{v} = {call}", defines=[v], uses=[f"c{out}", *args])
        if node.static_shape == () or node.static_shape is None:
            f.emit(f"if type({v}) is not _ndarray: {v} = _asarray({v})", uses=[v])
    elif kind is StepKind.FUSED:
        for j, n in enumerate(st.nodes):
            env[f"O{out}_{j}"], env[f"a{out}_{j}"] = n.op, n.attrs
            f.emit(f"c = _new(O{out}_{j})")
            if xp is not numpy:
                f.emit("c.xp = _xp")
            f.emit(f"{v} = c.forward({', '.join(args)}, **a{out}_{j})", defines=[v], uses=args)
            args = [v]
    elif kind is StepKind.VJP:
        f.emit(f"{v} = c{st.ctx}.vjp({args[0]})", defines=[v], uses=[f"c{st.ctx}", args[0]])
    elif kind is StepKind.GRAD:
        env[f"d{out}"] = st.node.extra.static_dtype
        f.emit(f"{v} = _fit({args[0]}[{st.node.index}], s{st.shape_of}, d{out})", defines=[v],
               uses=[args[0], f"s{st.shape_of}"])
    elif kind is StepKind.VAR:
        env[f"V{out}"] = st.node
        f.emit(f"{v} = _vars[V{out}] if V{out} in _vars else _session.value_array(V{out})", defines=[v])
    elif kind is StepKind.CAPTURE:
        env[f"N{out}"] = st.node
        f.emit(f"{v} = _asarray(N{out}.capture.data)", defines=[v])
    elif kind is StepKind.TRAIN:
        env[f"T{out}"] = st.node
        f.emit(f"_train(T{out}, [{', '.join(args)}])", uses=args)
        f.emit(f"{v} = None", defines=[v])
    if kind is not StepKind.TRAIN and out in plan.shape_slots:
        f.emit(f"s{out} = {v}.shape", defines=[f"s{out}"], uses=[v])
    for s in st.free:
        f.delete(f"v{s}")
    for s in st.free_ctx:
        f.delete(f"c{s}")


def generate(plan: Plan, inputs: list[Any], late: Any, xp: Any, session: Any = None) -> tuple[Any, Any, str]:
    """Compile ``plan`` into ``phase1(*inputs) -> (fetched_phase1, state)`` and
    ``phase2(state, late_value) -> fetched`` functions; also returns the source (for reading).
    ``session`` provides variables and train ops when the plan has them."""
    env: dict[str, Any] = {"_new": object.__new__, "_asarray": xp.asarray, "_fit": _fit, "_xp": xp,
                           "_ndarray": xp.ndarray}
    if session is not None:
        env["_vars"], env["_train"], env["_session"] = session.vars, session._train, session
    feed_slot = {id(node): slot for node, slot in plan.feeds}
    arg_slots = [feed_slot[id(n)] for n in inputs]
    late_slot = feed_slot.get(id(late)) if late is not None else None
    params1 = [f"v{s}" for s in arg_slots]
    phase1 = _Function(f"def phase1({', '.join(params1)}):", params1)
    for slot, value in plan.constants:
        env[f"k{slot}"] = xp.asarray(value)
        phase1.emit(f"v{slot} = k{slot}", defines=[f"v{slot}"])
    for s in arg_slots + [c for c, _ in plan.constants]:
        if s in plan.shape_slots:  # inputs whose runtime shape a gradient needs
            phase1.emit(f"s{s} = v{s}.shape", defines=[f"s{s}"], uses=[f"v{s}"])
    params2 = [] if late_slot is None else [f"v{late_slot}"]
    phase2 = _Function("", params2)
    for k, st in enumerate(plan.steps):
        _emit_step(phase1 if k < plan.split else phase2, st, plan, env, xp)
    late_slots = plan.late_slots
    phase1_fetch = [s for s in plan.fetch_slots if s not in late_slots]
    state = sorted(phase1.defined & phase2.used)  # carried from phase 1 into phase 2
    phase1.emit(f"return ({', '.join(f'v{s}' for s in phase1_fetch)},), [{', '.join(state)}]")
    source = "\n".join(phase1.lines) + "\n"
    if late_slot is not None:
        # unpack, then empty the list: each context dies at its own ``del`` (the memory plan)
        body = phase2.lines[1:]
        phase2.lines = [f"def phase2(state, v{late_slot}):", f"    [{', '.join(state)}] = state", "    state.clear()"]
        phase2.lines += body
        phase2.emit(f"return [{', '.join(f'v{s}' for s in plan.fetch_slots if s not in phase1_fetch)}]")
        source += "\n" + "\n".join(phase2.lines) + "\n"
    code = compile(source, "<dlia.compile plan>", "exec")
    exec(code, env)  # noqa: S102 - our own generated source
    return env["phase1"], env.get("phase2"), source
