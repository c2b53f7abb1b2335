"""Declared cost of a program: rounds on its critical path and bytes each endpoint sends.

The cost of every circuit is derived, without running anything, from the program it builds and
the engine's declared per-operation costs:

* products, truncation, inputs and openings: :func:`smc.protocols.rss3.rss3_costs` and
  :func:`smc.protocols.additive.additive_costs` (with the additive suite's Beaver openings sized
  by the operand shapes, as :meth:`Additive.bilinear` sends them);
* the sign test behind every comparison: :func:`smc.protocols.nonlinear.ltz_cost`; it splits
  into bit decomposition (A2B) and bit-to-arithmetic conversion (B2A) as documented there;
* max/min/argmax/argmin and sorting: :func:`~smc.protocols.nonlinear.tournament_levels` and
  :func:`~smc.protocols.nonlinear.bitonic_depth` levels of one sign test and one selection;
* numeric functions (reciprocal, sqrt, exp, log, sigmoid, ...): the engine declares no cost for
  them yet, so :data:`FUNCTION_COSTS` lists each one's rounds and its traffic as a count of
  per-element bytes plus a number of full-width truncations, measured on the engine;
  ``tests/test_circuits_cost.py`` re-measures them and fails if the engine changes.

Rounds: the executor starts an interactive operation in the round after its last argument is
ready, and independent operations share rounds, so the program takes as many rounds as the
longest chain of interactive operations (:func:`estimate`). Bytes are payload bytes; every frame
also carries an 8-byte round header, at most 8 * rounds * (endpoints - 1) more per endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smc.config import default_suite
from smc.ir import Node, Program
from smc.protocols.additive import additive_costs
from smc.protocols.nonlinear import bitonic_depth, ltz_cost
from smc.protocols.rss3 import mul_open_cost, rss3_costs

# Numeric functions (per element): rss3 rounds, per-element bytes of party 0 and of parties 1
# and 2, and the number of full-width truncations (each costs rss3_costs("trunc", size) on top);
# additive rounds, per-element bytes per party divided by (n - 1), and per-element dealer bytes.
FUNCTION_COSTS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "reciprocal": (49, 584, 456, 9, 44, 984, 664),
    "sqrt": (42, 1144, 640, 13, 39, 1072, 944),
    "rsqrt": (40, 1144, 640, 12, 37, 1048, 920),
    "exp": (29, 360, 288, 10, 25, 696, 504),
    "log": (29, 544, 384, 9, 26, 808, 592),
    "sigmoid": (50, 400, 320, 17, 42, 904, 696),
    "tanh": (50, 400, 320, 17, 42, 904, 696),
}


@dataclass(frozen=True)
class Cost:
    """Rounds and payload bytes sent by each endpoint (parties in program order, then the
    dealer in the additive suite)."""

    rounds: int
    bytes: tuple[int, ...]

    def then(self, other: Cost) -> Cost:
        """Run ``other`` after this one: rounds add up."""
        return Cost(self.rounds + other.rounds, _add(self.bytes, other.bytes))

    def beside(self, other: Cost) -> Cost:
        """Run side by side in lockstep: the longer one sets the rounds."""
        return Cost(max(self.rounds, other.rounds), _add(self.bytes, other.bytes))

    def times(self, k: int) -> Cost:
        """``k`` copies one after another."""
        return Cost(self.rounds * k, tuple(b * k for b in self.bytes))


def _add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


class CostModel:
    """Per-operation costs of one suite with ``n`` parties."""

    def __init__(self, suite: str, n: int) -> None:
        if suite not in ("rss3", "additive"):
            raise ValueError(f"unknown suite {suite!r}")
        if suite == "rss3" and n != 3:
            raise ValueError("rss3 has exactly three parties")
        self.suite = suite
        self.n = n
        self.endpoints = n + (1 if suite == "additive" else 0)

    @property
    def zero(self) -> Cost:
        return Cost(0, (0,) * self.endpoints)

    def _vec(self, parties: int, dealer: int = 0) -> tuple[int, ...]:
        return (parties,) * self.n + ((dealer,) if self.suite == "additive" else ())

    # ---------------------------------------------------------------- arithmetic (declared)
    def input(self, owner: int, size: int) -> Cost:
        if self.suite == "additive":
            return Cost(0, self.zero.bytes)
        c = rss3_costs("input", size)  # declared for owner = party 0
        out = [0, 0, 0]
        out[owner] = c.bytes_per_endpoint[0]
        return Cost(c.rounds, tuple(out))

    def mul_int(self, size_a: int, size_b: int, size_out: int) -> Cost:
        """Secret-by-secret product without truncation (elementwise or matmul)."""
        if self.suite == "rss3":
            c = rss3_costs("mul_int", size_out)
            return Cost(c.rounds, c.bytes_per_endpoint)
        k = self.n - 1
        return Cost(1, self._vec(8 * k * (size_a + size_b), 8 * size_out))

    def mul_fixed(self, size_a: int, size_b: int, size_out: int) -> Cost:
        """Secret-by-secret fixed-point product, truncated."""
        if self.suite == "rss3":
            c = rss3_costs("mul_fixed", size_out)
            return Cost(c.rounds, c.bytes_per_endpoint)
        k = self.n - 1
        return Cost(2, self._vec(8 * k * (size_a + size_b + size_out), 24 * size_out))

    def trunc(self, size: int) -> Cost:
        c = (
            rss3_costs("trunc", size)
            if self.suite == "rss3"
            else additive_costs("trunc", size, self.n)
        )
        return Cost(c.rounds, c.bytes_per_endpoint)

    def open(self, size: int, recipients: tuple[int, ...]) -> Cost:
        """Open to every party (``recipients`` empty) or to each listed party, side by side."""
        if not recipients:
            if self.suite == "rss3":
                c = rss3_costs("open_all", size)
                return Cost(c.rounds, c.bytes_per_endpoint)
            return Cost(1, self._vec(8 * (self.n - 1) * size))
        total = self.zero
        for r in recipients:
            out = [0] * self.endpoints
            if self.suite == "rss3":
                out[(r + 1) % 3] = 8 * size
            else:
                for j in range(self.n):
                    if j != r:
                        out[j] = 8 * size
            total = total.beside(Cost(1, tuple(out)))
        return total

    # ---------------------------------------------------------------- binary (declared)
    def ltz(self, size: int) -> Cost:
        c = ltz_cost(self.suite, self.n, size)
        return Cost(c.rounds, c.bytes_per_endpoint)

    def b2a(self, size: int) -> Cost:
        """One shared bit to arithmetic: the last step of the sign test (ltz_cost's docs)."""
        if self.suite == "rss3":
            return Cost(2, (16 * size, 8 * size, 8 * size))
        return Cost(1, self._vec(8 * (self.n - 1) * size, 8 * size))

    def a2b(self, size: int) -> Cost:
        """Bit decomposition: the sign test without its final B2A."""
        full, last = self.ltz(size), self.b2a(size)
        return Cost(
            full.rounds - last.rounds,
            tuple(a - b for a, b in zip(full.bytes, last.bytes, strict=True)),
        )

    def b_and(self, size: int) -> Cost:
        if self.suite == "rss3":
            return Cost(1, (8 * size,) * 3)
        return Cost(1, self._vec(16 * (self.n - 1) * size, 8 * size))

    # ---------------------------------------------------------------- composites
    def select(self, size: int) -> Cost:
        return self.mul_int(size, size, size)

    def tournament(self, lead: int, length: int, with_index: bool) -> Cost:
        total = self.zero
        while length > 1:
            half = length // 2
            pairs = lead * half
            sel = self.select(pairs)
            if with_index:
                sel = sel.beside(self.select(pairs))
            total = total.then(self.ltz(pairs)).then(sel)
            length = half + length % 2
        return total

    def sort_rows(self, rows: int, cols: int) -> Cost:
        size = 1 << max(0, (rows - 1).bit_length())
        layer = self.ltz(size // 2).then(self.select(cols * (size // 2)))
        return layer.times(bitonic_depth(rows))

    def function(self, fn: str, size: int) -> Cost:
        r_rounds, l0, l1, trunc_count, a_rounds, per_peer, dealer = FUNCTION_COSTS[fn]
        if self.suite == "rss3":
            t = rss3_costs("trunc", size).bytes_per_endpoint
            return Cost(
                r_rounds,
                tuple((l0 if e == 0 else l1) * size + trunc_count * t[e] for e in range(3)),
            )
        return Cost(a_rounds, self._vec(per_peer * (self.n - 1) * size, dealer * size))


# ------------------------------------------------------------------------------ programs


def node_cost(model: CostModel, program: Program, node: Node) -> Cost:
    """Declared cost of one node of ``program`` (zero for local and public operations)."""
    op = node.op
    if op == "input":
        return model.input(program.parties.index(node.attrs["party"]), node.size)
    if not node.secret:
        return model.zero
    args = [program.nodes[a] for a in node.args]
    if op in ("mul", "matmul"):
        fixed = all(a.dtype == "fixed" for a in args)
        if args[0].secret and args[1].secret:
            sizes = (args[0].size, args[1].size, node.size)
            return model.mul_fixed(*sizes) if fixed else model.mul_int(*sizes)
        return model.trunc(node.size) if fixed else model.zero
    if op == "trunc":
        return model.trunc(node.size)
    if op == "cmp":
        one = model.ltz(node.size)
        return one.beside(one) if node.attrs["rel"] in ("eq", "ne") else one
    if op == "where":
        return model.select(node.size)
    if op in ("abs", "relu"):
        return model.ltz(node.size).then(model.select(node.size))
    if op == "reduce":
        shape = args[0].shape
        axis = node.attrs.get("axis")
        length = args[0].size if axis is None else shape[axis]
        lead = 1 if axis is None else args[0].size // max(length, 1)
        return model.tournament(lead, length, node.attrs["fn"].startswith("arg"))
    if op == "sort":
        return model.sort_rows(node.shape[0], 1)
    if op == "sort_rows":
        return model.sort_rows(node.shape[0], node.shape[1])
    if op == "bits":
        return model.a2b(args[0].size).then(model.b2a(64 * args[0].size))
    if op == "bitwise":
        both = model.a2b(node.size).beside(model.a2b(node.size))
        if node.attrs["fn"] != "xor":
            both = both.then(model.b_and(node.size))
        return both.then(model.b2a(64 * node.size))
    if op == "func":
        return model.function(node.attrs["fn"], node.size)
    return model.zero  # add, sub, neg, sum, reshape, transpose, getitem, concat, stack, ...


def estimate(program: Program, suite: str | None = None) -> Cost:
    """Declared rounds (critical path) and bytes per endpoint of a whole program."""
    suite = suite or default_suite(len(program.parties))
    model = CostModel(suite, len(program.parties))
    # rss3 truncates and opens a product that is only revealed in one protocol (Rss3.bilinear_open)
    fused = program.product_outputs() if suite == "rss3" else {}
    finish: dict[int, int] = {}
    total = model.zero.bytes
    for node in program.nodes:
        c = model.zero if node.id in fused else node_cost(model, program, node)
        start = max((finish[a] for a in node.args), default=0)
        finish[node.id] = start + c.rounds
        total = _add(total, c.bytes)
    rounds = 0
    for out in program.outputs:
        node = program.nodes[out.node]
        end = finish[node.id]
        if node.secret:
            recipients = tuple(program.parties.index(r) for r in out.recipients)
            if node.id in fused:
                m = mul_open_cost(node.size, recipients[0])
                c = Cost(m.rounds, m.bytes_per_endpoint)
            else:
                c = model.open(node.size, recipients)
            end += c.rounds
            total = _add(total, c.bytes)
        rounds = max(rounds, end)
    return Cost(rounds, total)


def summary(cost: Cost, n_parties: int) -> dict[str, Any]:
    """The declared-cost dictionary every ``cost_*`` function returns."""
    return {
        "rounds": cost.rounds,
        "bytes_per_party": max(cost.bytes[:n_parties]),
        "bytes_per_endpoint": cost.bytes,
    }


def program_cost(program: Program, suite: str | None = None) -> dict[str, Any]:
    """``{"rounds", "bytes_per_party" (the largest party's), "bytes_per_endpoint"}``."""
    return summary(estimate(program, suite), len(program.parties))


def measured_cost(result: Any) -> dict[str, Any]:
    """The same dictionary measured on a :class:`smc.SimulationResult`: rounds, and payload
    bytes per endpoint (the executor's per-operation counts, without frame headers)."""
    payload = tuple(sum(ns.bytes_sent for ns in st.per_node.values()) for st in result.stats)
    n = len(result.config.parties)
    return {
        "rounds": result.rounds,
        "bytes_per_party": max(payload[:n]),
        "bytes_per_endpoint": payload,
    }
