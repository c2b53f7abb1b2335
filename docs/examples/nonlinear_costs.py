"""Rounds and bytes of the nonlinear operations, measured. The figures of docs/protocols.md.

Run: ``python docs/examples/nonlinear_costs.py``.

Each operation runs on SIZE elements (the reductions on rows of 8, sort on 8 values) in both
suites; the executor's per-node statistics give its rounds and the bytes each endpoint sent, per
output element (per row for max and argmax; for ``where`` the comparison producing c is not
counted). The program is run twice on different random data and the script asserts that rounds and
bytes are identical: traffic depends only on the program, never on the values; and that the
sign test (``x < y``; ``x == y`` is two of them) costs what ``ltz_cost`` declares.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import smc
from smc.protocols.nonlinear import ltz_cost

SIZE = 1200
ROW = 8

OPS: dict[str, Callable[[smc.SecureArray, smc.SecureArray], smc.SecureArray]] = {
    "x < y": lambda x, y: x < y,
    "x == y": lambda x, y: x == y,
    "where, given c": lambda x, y: smc.where(x < 0, x, y),
    "abs(x)": lambda x, y: abs(x),
    "relu(x)": lambda x, y: x.relu(),
    "max, row of 8": lambda x, y: x.reshape(-1, ROW).max(axis=1),
    "argmax, row of 8": lambda x, y: x.reshape(-1, ROW).argmax(axis=1),
    "sort 8 values": lambda x, y: x[:ROW].sort(),
    "reciprocal": lambda x, y: y.reciprocal(),
    "sqrt": lambda x, y: y.sqrt(),
    "rsqrt": lambda x, y: y.rsqrt(),
    "log": lambda x, y: y.log(),
    "exp": lambda x, y: x.exp(),
    "sigmoid": lambda x, y: x.sigmoid(),
    "tanh": lambda x, y: x.tanh(),
}


def measure(suite: str, seed: int) -> dict[str, tuple[int, list[float]]]:
    p = smc.ProgramBuilder(["p0", "p1", "p2"])
    x = p.input("p0", "x", shape=(SIZE,))
    y = p.input("p1", "y", shape=(SIZE,))
    nodes = {}
    for name, op in OPS.items():
        out = op(x, y)
        p.output(name, out, to="p0")
        nodes[name] = (out.id, out.size)  # per output element (per row for max and argmax)
    rng = np.random.default_rng(seed)  # test data, not secret
    data = {"p0": {"x": rng.uniform(-5, 5, SIZE)}, "p1": {"y": rng.uniform(0.1, 100, SIZE)}}
    res = smc.simulate(p.build(), data, suite=suite)
    table = {}
    for name, (node, elements) in nodes.items():
        stats = [s.per_node.get(node) for s in res.stats]
        rounds = max(st.rounds for st in stats if st is not None)
        per = [(st.bytes_sent if st else 0) / elements for st in stats]
        table[name] = (rounds, per)
    return table


def main() -> None:
    print(f"rounds, and bytes sent per output element by each endpoint ({SIZE} elements)")
    for suite in ("rss3", "additive"):
        first, second = measure(suite, 1), measure(suite, 2)
        ends = ["p0", "p1", "p2"] + (["dealer"] if suite == "additive" else [])
        print(f"\n{suite}, 3 parties{' + dealer' if suite == 'additive' else ''}")
        print(f"  {'operation':<17} {'rounds':>6}  " + " ".join(f"{e:>8}" for e in ends))
        declared = ltz_cost(suite, 3, SIZE)
        lt_bytes = [b / SIZE for b in declared.bytes_per_endpoint]
        assert first["x < y"] == (declared.rounds, lt_bytes), "x < y differs from ltz_cost"
        assert first["x == y"] == (declared.rounds, [2 * b for b in lt_bytes])
        for name, (rounds, per) in first.items():
            assert second[name] == (rounds, per), f"{suite} {name}: traffic depends on the data"
            print(f"  {name:<17} {rounds:>6}  " + " ".join(f"{b:>8.1f}" for b in per))
    print(
        "\nall measured costs match: between runs on different data (traffic is data-independent)"
        " and, for the sign test, ltz_cost"
    )


if __name__ == "__main__":
    main()
