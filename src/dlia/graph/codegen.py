"""Straight-line Python for a plan: what ``dlia.compile`` runs.

The interpreter in ``Session`` pays, per step, for a loop iteration, list indexing and a dispatch on
the step kind. For a traced function the plan is fixed, so it is turned into Python source once —
one line per op (``v7 = c7.forward(v3, v5, **a7)``), one per gradient, ``del`` where a value dies
(the memory plan) — and compiled with the built-in ``compile``. Two functions come out: ``phase1``
(the forward part) returns the outputs and the state the gradients need; ``phase2`` takes that state
and the output gradient.
"""

from __future__ import annotations

from typing import Any

import numpy

from dlia.core.autodiff import unbroadcast
from dlia.graph.session import _CAPTURE, _FUSED, _GRAD, _OP, _TRAIN, _VAR, _VJP, Plan


def _fit(g: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    if g.shape != shape:
        g = unbroadcast(g, shape)
    return g if g.dtype == dtype else g.astype(dtype)


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
    for slot, value in plan.constants:
        env[f"k{slot}"] = xp.asarray(value)
    lines1 = [f"def phase1({', '.join(f'v{s}' for s in arg_slots)}):"]
    lines1 += [f"    v{slot} = k{slot}" for slot, _ in plan.constants]
    shape_slots = plan.shape_slots  # inputs whose runtime shape a gradient needs
    lines1 += [f"    s{s} = v{s}.shape" for s in arg_slots + [c for c, _ in plan.constants] if s in shape_slots]
    lines2: list[str] = []
    for k, (kind, node, ins, out, free, free_ctx) in enumerate(plan.steps):
        body: list[str] = []
        if kind == _OP:
            env[f"O{out}"], env[f"a{out}"] = node.op, node.attrs
            body.append(f"c{out} = _new(O{out})")
            if xp is not numpy:
                body.append(f"c{out}.xp = _xp")
            needs = plan.needs.get(id(node))
            if needs is not None:
                env[f"n{out}"] = needs
                body.append(f"c{out}.needs = n{out}")
            args = ", ".join(f"v{i}" for i in ins)
            call = f"c{out}.forward({args}, **a{out})" if node.attrs else f"c{out}.forward({args})"
            body.append(f"v{out} = {call}")
            if node.static_shape == () or node.static_shape is None:
                body.append(f"if type(v{out}) is not _ndarray: v{out} = _asarray(v{out})")
        elif kind == _FUSED:
            args = ", ".join(f"v{i}" for i in ins)
            for j, n in enumerate(node):
                env[f"O{out}_{j}"], env[f"a{out}_{j}"] = n.op, n.attrs
                body.append(f"c = _new(O{out}_{j})")
                if xp is not numpy:
                    body.append("c.xp = _xp")
                body.append(f"v{out} = c.forward({args}, **a{out}_{j})")
                args = f"v{out}"
        elif kind == _VJP:
            body.append(f"v{out} = c{ins[0]}.vjp(v{ins[1]})")
        elif kind == _GRAD:
            env[f"d{out}"] = node.extra.static_dtype
            body.append(f"v{out} = _fit(v{ins[0]}[{node.index}], s{ins[1]}, d{out})")
        elif kind == _VAR:
            env[f"V{out}"] = node
            body.append(f"v{out} = _vars[V{out}] if V{out} in _vars else _session.value_array(V{out})")
        elif kind == _CAPTURE:
            env[f"N{out}"] = node
            body.append(f"v{out} = _asarray(N{out}.capture.data)")
        elif kind == _TRAIN:
            env[f"T{out}"] = node
            body.append(f"_train(T{out}, [{', '.join(f'v{i}' for i in ins)}])")
            body.append(f"v{out} = None")
        if kind != _TRAIN and out in shape_slots:
            body.append(f"s{out} = v{out}.shape")
        body += [f"del v{s}" for s in free]
        body += [f"del c{s}" for s in free_ctx]
        (lines1 if k < plan.split else lines2).extend("    " + b for b in body)
    fetched = plan.fetch_slots
    phase1_fetch = [s for s in fetched if s not in _late_slots(plan)]
    # state carried into phase 2: every value or context defined in phase 1 and used in phase 2
    defined1 = _defined(lines1)
    used2 = _used(lines2)
    state = sorted(defined1 & used2)
    lines1.append(f"    return ({', '.join(f'v{s}' for s in phase1_fetch)},), [{', '.join(state)}]")
    source = "\n".join(lines1) + "\n"
    if late_slot is not None:
        # unpack, then empty the list: each context dies at its own ``del`` (the memory plan)
        lines2 = [f"def phase2(state, v{late_slot}):", f"    [{', '.join(state)}] = state", "    state.clear()"] + lines2
        lines2.append(f"    return [{', '.join(f'v{s}' for s in fetched if s not in phase1_fetch)}]")
        source += "\n" + "\n".join(lines2) + "\n"
    code = compile(source, "<dlia.compile plan>", "exec")
    exec(code, env)  # noqa: S102 - our own generated source
    return env["phase1"], env.get("phase2"), source


def _late_slots(plan: Plan) -> set[int]:
    return {st[3] for st in plan.steps[plan.split:]}


def _names(lines: list[str]) -> list[str]:
    import re

    return [m for line in lines for m in re.findall(r"\b[vcs]\d+\b", line)]


def _defined(lines: list[str]) -> set[str]:
    out: set[str] = set()
    for line in lines:
        s = line.strip()
        if "=" in s and not s.startswith(("if ", "del ", "return", "def ")):
            target = s.split("=", 1)[0].strip()
            if target.split(".")[0] == target:
                out.add(target)
        if s.startswith("def "):
            inside = s[s.index("(") + 1:s.rindex(")")]
            out.update(a.strip() for a in inside.split(",") if a.strip())
    deleted = {line.strip()[4:] for line in lines if line.strip().startswith("del ")}
    return out - deleted


def _used(lines: list[str]) -> set[str]:
    return set(_names(lines))
