"""What ``smc bench`` can measure, and the checks made before any measurement starts.

Operations live in :mod:`smc.bench.ops`. Circuits come from :mod:`smc.circuits`, imported only
when asked for; a circuit whose module is missing is listed as unavailable, with the reason.
A circuit module is benchmarked through ``bench_case(parties, size) -> (program, inputs)`` when
it has one, otherwise through ``build(...)`` and ``sample_inputs(...)``, whose party-list and
size parameters are matched by name.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from smc.bench.ops import OPS
from smc.bench.workload import BenchError, Built, Workload

__all__ = ["BenchError", "Built", "Workload", "get", "workloads"]

# --------------------------------------------------------------------------- circuits

CIRCUITS: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "stats": (
        "joint statistics over every party's rows (smc.circuits.stats)",
        "rows per party",
        (100, 1_000, 10_000),
    ),
    "auction": (
        "sealed-bid auction: highest bid and winner (smc.circuits.auction)",
        "bids per party",
        (10, 100, 1_000),
    ),
    "voting": (
        "vote tally over every party's ballots (smc.circuits.voting)",
        "ballots per party",
        (100, 1_000, 10_000),
    ),
}
_SIZE_PARAMS = (
    "rows",
    "size",
    "n",
    "length",
    "per_party",
    "bidders",
    "bids",
    "voters",
    "ballots",
    "count",
    "n_rows",
)
_PARTY_PARAMS = ("parties", "party_names", "names")


def circuit_unavailable(name: str) -> str | None:
    """Why circuit ``name`` cannot be benchmarked in this build, or None."""
    try:
        mod = importlib.import_module(f"smc.circuits.{name}")
    except ImportError as exc:
        return (
            f"smc.circuits.{name} is not importable in this build ({exc}); the circuit "
            "library (circuits/) provides it"
        )
    if not (callable(getattr(mod, "bench_case", None)) or callable(getattr(mod, "build", None))):
        return f"smc.circuits.{name} has neither bench_case() nor build()"
    return None


def _call(fn: Callable[..., Any], names: list[str], size: int) -> Any:
    """Call a circuit function, passing the party list and the size by parameter name."""
    kwargs: dict[str, Any] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if pname in _PARTY_PARAMS:
            kwargs[pname] = list(names)
        elif pname == "n_parties":
            kwargs[pname] = len(names)
        elif pname in _SIZE_PARAMS:
            kwargs[pname] = size
        elif pname == "seed":
            kwargs[pname] = 0
        elif param.default is inspect.Parameter.empty and param.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        ):
            raise BenchError(
                f"cannot call {fn.__module__}.{fn.__name__}: unknown parameter {pname!r}"
            )
    return fn(**kwargs)


def _circuit_builder(name: str) -> Callable[[list[str], int], Built]:
    def build(names: list[str], size: int) -> Built:
        reason = circuit_unavailable(name)
        if reason:
            raise BenchError(reason)
        mod = importlib.import_module(f"smc.circuits.{name}")
        case = getattr(mod, "bench_case", None)
        if callable(case):
            program, inputs = _call(case, names, size)
        else:
            program = _call(mod.build, names, size)
            sample = next(
                (
                    getattr(mod, f)
                    for f in ("sample_inputs", "sample_data", "example_inputs")
                    if callable(getattr(mod, f, None))
                ),
                None,
            )
            if sample is None:
                raise BenchError(f"smc.circuits.{name} offers no sample inputs to benchmark with")
            inputs = _call(sample, names, size)
        return Built(program, inputs, None)

    return build


def _circuit(name: str) -> Workload:
    summary, meaning, sizes = CIRCUITS[name]
    return Workload(
        name,
        "circuit",
        summary,
        meaning,
        sizes,
        "run",
        lambda _size: 1,
        lambda size: size,
        300,
        _circuit_builder(name),
        unavailable=lambda: circuit_unavailable(name),
    )


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
    return working + inputs + traffic


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
