"""Rounds and bytes of each secure operation, measured, against the costs the suites declare.

Run: ``python docs/examples/protocol_costs.py``. These are the figures of docs/protocols.md.

One program holds one of each interactive operation on vectors of SIZE elements; the executor's
per-operation statistics give the rounds each took and the bytes every endpoint sent for it.
The script asserts that they equal ``rss3_costs`` / ``additive_costs`` (smc.protocols, hazmat)
and prints bytes per element for each endpoint (parties, then the dealer).
"""

from __future__ import annotations

import numpy as np

import smc
from smc.protocols.additive import additive_costs
from smc.protocols.rss3 import rss3_costs
from smc.protocols.suite import Cost

SIZE = 3000


def declared(suite: str, op: str, n: int) -> Cost:
    return rss3_costs(op, SIZE) if suite == "rss3" else additive_costs(op, SIZE, n)


def measure(suite: str, n: int) -> dict[str, tuple[int, list[int]]]:
    names = [f"p{i}" for i in range(n)]
    p = smc.ProgramBuilder(names)
    xf = p.input("p0", "xf", shape=(SIZE,))
    yf = p.input("p1", "yf", shape=(SIZE,))
    xi = p.input("p0", "xi", shape=(SIZE,), dtype="int")
    yi = p.input("p1", "yi", shape=(SIZE,), dtype="int")
    ops = {"input": xf, "mul_fixed": xf * yf, "mul_int": xi * yi, "trunc": xf * 0.37}
    p.output("all", ops["mul_fixed"])  # open_all
    p.output("one", ops["mul_int"], to="p0")  # open_one
    program = p.build()
    rng = np.random.default_rng(0)  # test data, not secret
    data = {
        "p0": {"xf": rng.uniform(-9, 9, SIZE), "xi": rng.integers(-99, 99, SIZE)},
        "p1": {"yf": rng.uniform(-9, 9, SIZE), "yi": rng.integers(-99, 99, SIZE)},
    }
    res = smc.simulate(program, data, suite=suite)
    ids = {op: arr.id for op, arr in ops.items()}
    ids["open_all"], ids["open_one"] = len(program.nodes), len(program.nodes) + 1
    out = {}
    for op, node in ids.items():
        rounds = max(s.per_node[node].rounds if node in s.per_node else 0 for s in res.stats)
        sent = [s.per_node[node].bytes_sent if node in s.per_node else 0 for s in res.stats]
        out[op] = (rounds, sent)
    return out


def main() -> None:
    print(f"per operation on {SIZE} elements: rounds, and bytes sent per element by each endpoint")
    for suite, n in [("rss3", 3), ("additive", 2), ("additive", 3)]:
        endpoints = [f"p{i}" for i in range(n)] + (["dealer"] if suite == "additive" else [])
        print(f"\n{suite}, {n} parties{' + dealer' if suite == 'additive' else ''}")
        print(f"  {'operation':<10} {'rounds':>6}  " + " ".join(f"{e:>7}" for e in endpoints))
        for op, (rounds, sent) in measure(suite, n).items():
            cost = declared(suite, op, n)
            assert rounds == cost.rounds, f"{suite} {op}: {rounds} rounds, declared {cost.rounds}"
            assert tuple(sent) == cost.bytes_per_endpoint, f"{suite} {op}: {sent} vs {cost}"
            per_elem = " ".join(f"{b / SIZE:>7.2f}" for b in sent)
            print(f"  {op:<10} {rounds:>6}  {per_elem}")
    print("\nall measured costs match the declared costs (rss3_costs, additive_costs)")


if __name__ == "__main__":
    main()
