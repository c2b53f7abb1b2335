"""Engine micro-benchmarks for the core operations (issue: engine core speed targets).

Run: ``python bench/engine.py`` (or ``python -m smc.bench.engine``). Setting: every party as a
thread of this process over the in-memory transport, fixed point with 16 fractional bits.

An operation's time is measured from the moment the first endpoint starts it to the moment the
last endpoint finishes it (input sharing and output opening are excluded), best of ``--reps``.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

import smc
from smc.runtime import SimulationResult


@dataclass
class Measurement:
    workload: str
    suite: str
    parties: int
    size: int
    seconds: float
    ops_per_s: float
    rounds: int
    bytes_per_party: list[int]
    bytes_per_op: float


def op_time(res: SimulationResult, node: int) -> tuple[float, int, list[int]]:
    stats = [s.per_node[node] for s in res.stats if node in s.per_node]
    wall = max(s.finished for s in stats) - min(s.started for s in stats)
    return wall, max(s.rounds for s in stats), [s.bytes_sent for s in stats]


def measure(
    workload: str,
    suite: str,
    n_parties: int,
    size: int,
    ops: int,
    reps: int,
    build: Callable[
        [smc.ProgramBuilder, list[str]], tuple[smc.SecureArray, dict[str, dict[str, np.ndarray]]]
    ],
) -> Measurement:
    names = [f"p{i}" for i in range(n_parties)]
    p = smc.ProgramBuilder(names)
    out, inputs = build(p, names)
    # opened to every party: an operation revealed to one party only may be truncated and opened
    # in one protocol (Program.product_outputs), and this measures the operation itself
    p.output("out", out.sum() if out.size > 1 else out)
    program = p.build()
    node = out.id
    best: tuple[float, int, list[int]] | None = None
    for _ in range(reps + 1):  # first run warms up the JIT
        res = smc.simulate(program, inputs, suite=suite)
        t = op_time(res, node)
        if best is None or t[0] < best[0]:
            best = t
    assert best is not None
    wall, rounds, per_party = best
    return Measurement(
        workload,
        suite,
        n_parties,
        size,
        wall,
        ops / wall,
        rounds,
        per_party,
        max(per_party[:n_parties]) / max(ops, 1),
    )


def _vectors(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-100, 100, n), rng.uniform(-100, 100, n)


def mul_fixed(n: int) -> Callable[..., tuple[smc.SecureArray, dict[str, dict[str, np.ndarray]]]]:
    def build(
        p: smc.ProgramBuilder, names: list[str]
    ) -> tuple[smc.SecureArray, dict[str, dict[str, np.ndarray]]]:
        x, y = _vectors(n)
        a, b = p.input(names[0], "x", shape=(n,)), p.input(names[1], "y", shape=(n,))
        return a * b, {names[0]: {"x": x}, names[1]: {"y": y}}

    return build


def mul_int(n: int) -> Callable[..., tuple[smc.SecureArray, dict[str, dict[str, np.ndarray]]]]:
    def build(
        p: smc.ProgramBuilder, names: list[str]
    ) -> tuple[smc.SecureArray, dict[str, dict[str, np.ndarray]]]:
        rng = np.random.default_rng(1)
        x, y = rng.integers(-1000, 1000, n), rng.integers(-1000, 1000, n)
        a = p.input(names[0], "x", shape=(n,), dtype="int")
        b = p.input(names[1], "y", shape=(n,), dtype="int")
        return a * b, {names[0]: {"x": x}, names[1]: {"y": y}}

    return build


def dot(n: int) -> Callable[..., tuple[smc.SecureArray, dict[str, dict[str, np.ndarray]]]]:
    def build(
        p: smc.ProgramBuilder, names: list[str]
    ) -> tuple[smc.SecureArray, dict[str, dict[str, np.ndarray]]]:
        x, y = _vectors(n)
        a, b = p.input(names[0], "x", shape=(n,)), p.input(names[1], "y", shape=(n,))
        return smc.dot(a, b), {names[0]: {"x": x}, names[1]: {"y": y}}

    return build


def matmul(n: int) -> Callable[..., tuple[smc.SecureArray, dict[str, dict[str, np.ndarray]]]]:
    def build(
        p: smc.ProgramBuilder, names: list[str]
    ) -> tuple[smc.SecureArray, dict[str, dict[str, np.ndarray]]]:
        rng = np.random.default_rng(2)
        x, y = rng.uniform(-4, 4, (n, n)), rng.uniform(-4, 4, (n, n))
        a, b = p.input(names[0], "x", shape=(n, n)), p.input(names[1], "y", shape=(n, n))
        return a @ b, {names[0]: {"x": x}, names[1]: {"y": y}}

    return build


def run_all(
    suite: str, n_parties: int, reps: int, n: int = 10**6, sides: tuple[int, int] = (256, 1024)
) -> list[Measurement]:
    small, large = sides
    return [
        measure("mul_fixed (with truncation)", suite, n_parties, n, n, reps, mul_fixed(n)),
        measure("mul_int", suite, n_parties, n, n, reps, mul_int(n)),
        measure("dot", suite, n_parties, n, n, reps, dot(n)),
        measure(f"matmul {small}x{small}", suite, n_parties, small, 1, reps, matmul(small)),
        measure(
            f"matmul {large}x{large}", suite, n_parties, large, 1, max(1, reps // 2), matmul(large)
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--suite", default="rss3", choices=["rss3", "additive"])
    ap.add_argument("--parties", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    args = ap.parse_args()
    results = run_all(args.suite, args.parties, args.reps)
    if args.json:
        for m in results:
            print(json.dumps({**asdict(m), "python": platform.python_version()}))
        return
    print(
        f"{'workload':<30} {'suite':<9} {'n':>3} {'seconds':>9} {'ops/s':>12} {'rounds':>6}"
        "  bytes/party/op"
    )
    for m in results:
        print(
            f"{m.workload:<30} {m.suite:<9} {m.parties:>3} {m.seconds:>9.4f} {m.ops_per_s:>12.3e} "
            f"{m.rounds:>6}  {m.bytes_per_op:,.1f}"
        )


if __name__ == "__main__":
    main()
