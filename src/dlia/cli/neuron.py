"""``dlia neuron``: truth tables of McCulloch-Pitts gates."""

from __future__ import annotations

import argparse

from dlia.models.neurons import GATES, MCPNetwork, truth_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neuron", help="McCulloch-Pitts neurons: truth tables of logic gates",
                       description="Print the truth table of a gate built from McCulloch-Pitts units: binary "
                                   "inputs, excitatory and inhibitory, and a threshold; any active inhibitory "
                                   "input vetoes firing. XOR needs two layers of them.")
    p.add_argument("--gate", required=True, choices=[*GATES, "xor"], help="which gate")
    p.set_defaults(run=run)


def describe(gate: str) -> str:
    if gate == "xor":
        net = MCPNetwork()
        h = ", ".join(f"h{i + 1}: excitatory {u.excitatory}, inhibitory {u.inhibitory}, threshold {u.threshold}"
                      for i, u in enumerate(net.hidden))
        return f"two layers: {h}; output: OR(h1, h2)"
    u = GATES[gate]
    return f"one unit: excitatory inputs {list(u.excitatory)}, inhibitory {list(u.inhibitory)}, threshold {u.threshold}"


def run(args: argparse.Namespace) -> int:
    rows = truth_table(args.gate)
    n = len(rows[0][0])
    print(f"{args.gate.upper()} — {describe(args.gate)}")
    print(" ".join(f"x{i + 1}" for i in range(n)) + " | y")
    for inputs, out in rows:
        print(" ".join(f"{v:>2}" for v in inputs) + f" | {out}")
    return 0
