"""What ``smc bench`` can measure, and the checks made before any measurement starts.

Operations live in :mod:`smc.bench.ops`. Circuits come from :mod:`smc.circuits` (the library's
``build_*``, ``reference_*`` and declared costs), imported only when asked for: a circuit that
this build cannot provide is listed as unavailable, with the reason, and refused by ``run``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from smc.bench.ops import OPS
from smc.bench.workload import BenchError, Built, Check, Cost, Inputs, Workload

__all__ = ["BenchError", "Built", "Workload", "get", "workloads"]

# --------------------------------------------------------------------------- circuits
# Each adapter turns (party names, size per party) into a BuiltProgram of smc.circuits, sample
# data for it (every party holds ``size`` rows / bids / ballots) and the circuit's plaintext
# reference. Imports happen only when a circuit is used.


def _stats_case(names: list[str], size: int) -> tuple[Any, Inputs, Any]:
    from smc.circuits import Predicate, StatsSpec, build_stats, reference_stats

    spec = StatsSpec(
        stats=("count", "sum", "mean", "var", "std", "min", "max"),
        where=(Predicate("age", ">=", 40.0),),
    )
    built = build_stats(dict.fromkeys(names, size), spec)
    data: Inputs = {}
    for k, p in enumerate(names):
        rng = np.random.default_rng(1000 + k)
        data[p] = {
            "value": np.round(rng.uniform(-100, 100, size), 3),
            "age": np.round(rng.uniform(18, 90, size)),
        }
    return built, data, lambda: reference_stats(data, spec)


def _auction_case(names: list[str], size: int) -> tuple[Any, Inputs, Any]:
    from smc.circuits import AuctionSpec, build_auction, reference_auction

    spec = AuctionSpec(kind="second", max_bid=2**20)
    built = build_auction(dict.fromkeys(names, size), spec)
    data: Inputs = {
        p: {"bids": np.random.default_rng(2000 + k).integers(0, 2**20, size)}
        for k, p in enumerate(names)
    }
    return (
        built,
        data,
        lambda: reference_auction(np.concatenate([data[p]["bids"] for p in names]), spec),
    )


def _voting_case(names: list[str], size: int) -> tuple[Any, Inputs, Any]:
    from smc.circuits import ElectionSpec, build_election, reference_election

    spec = ElectionSpec(candidates=5, kind="plurality", reveal="both")
    built = build_election(dict.fromkeys(names, size), spec)
    data: Inputs = {}
    for k, p in enumerate(names):
        rng = np.random.default_rng(3000 + k)
        rows = np.eye(5, dtype=np.int64)[rng.integers(0, 5, size)]
        rows[rng.random(size) < 0.01] = 0  # about 1% blank (invalid) ballots
        data[p] = {"ballots": rows}
    return (
        built,
        data,
        lambda: reference_election(np.concatenate([data[p]["ballots"] for p in names]), spec),
    )


CIRCUITS: dict[str, tuple[str, str, tuple[int, ...], Callable[..., Any]]] = {
    "stats": ("count, sum, mean, variance, std, min, max of one column over the rows passing a "
              "filter, all parties' rows (smc.circuits.stats)", "rows per party",
              (100, 1_000, 10_000), _stats_case),
    "auction": ("second-price sealed-bid auction: winner and price (smc.circuits.auction)",
                "bids per party", (10, 100, 1_000), _auction_case),
    "voting": ("plurality election, 5 candidates, ballots checked inside: tally, winner, "
               "invalid count (smc.circuits.voting)", "ballots per party",
               (100, 1_000, 10_000), _voting_case),
}  # fmt: skip


@functools.cache
def circuit_unavailable(name: str) -> str | None:
    """Why circuit ``name`` cannot be benchmarked in this build, or None."""
    try:
        importlib.import_module("smc.circuits")
    except ImportError as exc:
        return (
            f"smc.circuits is not importable in this build ({exc}); the circuit "
            "library (circuits/) provides it"
        )
    try:
        CIRCUITS[name][3](["p0", "p1", "p2"], 2)
    except Exception as exc:  # an API this harness does not know (yet)
        return f"smc.circuits.{name} cannot be built by the harness: {type(exc).__name__}: {exc}"
    return None


def _compare(ref: dict[str, Any]) -> Check:
    def check(out: Mapping[str, np.ndarray]) -> str | None:
        for key, want in ref.items():
            if key not in out:
                return f"output {key!r} missing"
            got = np.asarray(out[key], dtype=np.float64)
            exp = np.asarray(want, dtype=np.float64)
            if got.shape != exp.shape or not np.allclose(got, exp, rtol=1e-3, atol=1e-2):
                return f"output {key!r} is {got.tolist()}, the plaintext reference {exp.tolist()}"
        return None

    return check


def _circuit_builder(name: str) -> Callable[[list[str], int], Built]:
    def build(names: list[str], size: int) -> Built:
        reason = circuit_unavailable(name)
        if reason:
            raise BenchError(reason)
        built, data, reference = CIRCUITS[name][3](names, size)
        return Built(built.program, data, None, _compare(reference()), cost=_declared(built))

    return build


def _declared(built: Any) -> Callable[[str, int, int], Cost | None]:
    def cost(suite: str, n: int, size: int) -> Cost | None:
        c = built.declared_cost(suite)
        return Cost(int(c["rounds"]), tuple(int(b) for b in c["bytes_per_endpoint"]))

    return cost


def _circuit(name: str) -> Workload:
    summary, meaning, sizes, _ = CIRCUITS[name]
    return Workload(name, "circuit", summary, meaning, sizes, "run", lambda _size: 1,
                    lambda size: size, 300, _circuit_builder(name),
                    unavailable=lambda: circuit_unavailable(name))  # fmt: skip


# --------------------------------------------------------------------------- lookup


def workloads() -> list[Workload]:
    return [*OPS, *(_circuit(c) for c in CIRCUITS)]


def get(name: str) -> Workload:
    """The workload called ``name``; a :class:`BenchError` naming close matches otherwise."""
    table = {w.name: w for w in workloads()}
    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, table, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise BenchError(
        f"unknown operation or circuit {name!r}{hint}; known: {', '.join(table)} "
        "(see 'smc bench list')"
    )


def check_parties(suite: str, parties: int) -> None:
    """rss3 runs with exactly 3 parties, additive with 2 or more."""
    if suite == "rss3" and parties != 3:
        raise BenchError(
            f"suite 'rss3' needs exactly 3 parties, not {parties} "
            "(use --suite additive for other party counts)"
        )
    if suite == "additive" and parties < 2:
        raise BenchError(f"suite 'additive' needs at least 2 parties, not {parties}")
    if suite not in ("rss3", "additive"):
        raise BenchError(f"unknown suite {suite!r}: choose rss3 or additive")


def estimate_bytes(w: Workload, suite: str, parties: int, size: int) -> int:
    """Peak memory estimate of one in-process run: every endpoint's working set (the declared
    ``mem_words`` per element) plus the plaintext inputs and the largest declared traffic."""
    endpoints = parties + (1 if suite == "additive" else 0)
    elements = w.elements(size)
    working = endpoints * elements * w.mem_words * 8
    inputs = 4 * elements * 8
    traffic = 0
    if w.cost is not None:
        cost = w.cost(suite, parties, size)
        if cost is not None and cost.rounds:
            traffic = sum(cost.bytes_per_endpoint) // cost.rounds
    total: int = working + inputs + traffic
    return total


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(
    w: Workload,
    suite: str,
    parties: int,
    size: int,
    available: int | None = None,
    share: float = 0.8,
) -> None:
    avail = available_memory() if available is None else available
    if avail is None:
        return
    need = estimate_bytes(w, suite, parties, size)
    if need > share * avail:
        raise BenchError(
            f"{w.name} with size {size:,} ({suite}, {parties} parties) needs an estimated "
            f"{_gib(need)} ({w.mem_words} words per element per endpoint x "
            f"{w.elements(size):,} elements), but only {_gib(avail)} is available "
            f"(MemAvailable in /proc/meminfo; at most {share:.0%} is used): choose a smaller --size"
        )


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_size(w: Workload, size: int) -> None:
    if size < w.min_size:
        raise BenchError(f"{w.name}: size must be at least {w.min_size}, got {size}")
