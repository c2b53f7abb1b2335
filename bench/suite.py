"""``smc bench suite``: the standard run, and the generated part of docs/benchmarks.md.

The suite measures multiply, dot, comparison, equality, matmul, sort and sigmoid in rss3 and
additive with 3 parties (and multiply, comparison and matmul in additive with 2 parties, the
setting CrypTen's numbers are usually quoted in), the library circuits (stats, auction, voting)
that this build has, and a latency sweep of multiply and comparison. With the baselines
installed it runs MPyC and CrypTen on the same workloads, alternating with smc. Sizes start small
so that the baselines' budget prediction can stop them before sizes they would need minutes for.
It is sized to finish in under 5 minutes on a 2-core machine.

``--docs DIR`` writes DIR/benchmarks.jsonl (the records), DIR/benchmarks.png (the plots) and
rewrites the part of DIR/benchmarks.md between the ``bench:begin``/``bench:end`` markers.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smc.bench import baselines, registry
from smc.bench.runner import Plan

COMBOS = [("rss3", 3), ("additive", 3)]
OPS: list[tuple[str, tuple[int, ...], list[tuple[str, int]]]] = [
    ("mul", (1_000, 10_000, 100_000, 1_000_000), [*COMBOS, ("additive", 2)]),
    ("dot", (1_000, 10_000, 100_000, 1_000_000), COMBOS),
    ("lt", (100, 1_000, 10_000, 100_000), [*COMBOS, ("additive", 2)]),
    ("eq", (100, 1_000, 10_000, 100_000), COMBOS),
    ("matmul", (16, 64, 256), [*COMBOS, ("additive", 2)]),
    ("sort", (16, 64, 256, 1_024), COMBOS),
    ("sigmoid", (100, 1_000, 10_000, 100_000), COMBOS),
]
CIRCUITS = ("stats", "auction", "voting")
LATENCY_SWEEP = (("mul", 10_000), ("lt", 10_000))
LATENCIES_MS = (1.0, 5.0, 20.0)
BASELINE_BUDGET_S = 15.0
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def plans(reps: int, mode: str, against: list[str], quick: bool) -> list[Plan]:
    """The suite as a list of plans (each a set of workloads for one suite and party count)."""
    cycles = 1 if quick else 2
    out: list[Plan] = []
    by_parties: dict[int, list[str]] = {}
    for suite, n in [c for _, _, cs in OPS for c in cs]:
        if suite not in by_parties.setdefault(n, []):
            by_parties[n].append(suite)
    for n in sorted(by_parties, reverse=True):  # one plan per party count: baselines run once
        suites = by_parties[n]
        names = [name for name, _, cs in OPS if any((s, n) in cs for s in suites)]
        sizes = {(name, s, n): list(sz[:1] if quick else sz) for name, sz, _ in OPS for s in suites}
        out.append(
            Plan(
                names,
                suites,
                [n],
                mode=mode,
                reps=reps,
                against=against,
                cycles=cycles,
                baseline_budget_s=BASELINE_BUDGET_S,
                size_overrides=sizes,
            )
        )
    circuits = [c for c in CIRCUITS if registry.circuit_unavailable(c) is None]
    if circuits:
        suites = [s for s, _ in COMBOS]
        sizes = {(c, s, 3): list(registry.get(c).default_sizes[: 1 if quick else 2])
                 for c in circuits for s in suites}  # fmt: skip
        out.append(Plan(circuits, suites, [3], mode=mode, reps=reps, size_overrides=sizes))
    lats = list(LATENCIES_MS[:1] if quick else LATENCIES_MS)
    for name, size in LATENCY_SWEEP:
        out.append(Plan([name], ["rss3"], [3], [size], lats, mode=mode, reps=max(1, reps - 1)))
    return out


def unavailable_records(env: dict[str, Any]) -> list[dict[str, Any]]:
    """Circuits this build lacks, marked as such (not dropped silently)."""
    from smc.bench.measure import Point, base_record, new_run_id, timing_fields

    recs = []
    for c in CIRCUITS:
        reason = registry.circuit_unavailable(c)
        if reason:
            w = registry.get(c)
            rec = base_record(
                "smc", Point(w, "rss3", 3, w.default_sizes[0]), "inproc", env, new_run_id()
            )
            rec.update(timing_fields([], 1))
            rec.update(status="unavailable", note=reason, scope="program")
            recs.append(rec)
    return recs


def _against(arg: str | None) -> list[str]:
    if arg is not None:
        from smc.bench.cli import parse_libs

        libs = [x for x in parse_libs(arg) if x != "none"]
        return libs
    present = [lib for lib in baselines.LIBRARIES if baselines.missing(lib) is None]
    absent = [lib for lib in baselines.LIBRARIES if lib not in present]
    if absent:
        print(
            f"smc bench suite: not comparing with {', '.join(absent)}: "
            f"{baselines.missing(absent[0])}",
            file=sys.stderr,
        )
    return present


def run(args: argparse.Namespace) -> int:
    from smc.bench import report
    from smc.bench.cli import _exit_status, print_table, run_plan
    from smc.bench.env import environment

    against = _against(args.against)
    for lib in against:  # refuse before any work, as run does
        msg = baselines.missing(lib)
        if msg:
            raise registry.BenchError(msg)
    started = time.monotonic()
    records = unavailable_records(environment())
    stream = args.format if args.format != "table" else "none"
    if stream != "none" and records:
        report.write_records(records, sys.stdout, stream)
    if args.output and records:
        with open(args.output, "a" if args.append else "w") as fh:
            report.write_records(records, fh, report.file_format(args.output))
    for k, plan in enumerate(plans(args.reps, args.mode, against, args.quick)):
        later = k > 0 or bool(records)
        records += run_plan(
            plan, stream, args.output, args.append or later, args.quiet, header=not later
        )
    elapsed = time.monotonic() - started
    if args.format == "table":
        print_table(records, bool(against))
    if not args.quiet:
        print(f"suite finished in {elapsed:.0f} s", file=sys.stderr)
    if args.docs:
        write_docs(Path(args.docs), records, elapsed, against)
    status: int = _exit_status(records)
    return status


def write_docs(
    root: Path, records: list[dict[str, Any]], elapsed: float, against: list[str]
) -> None:
    from smc.bench import report

    root.mkdir(parents=True, exist_ok=True)
    with (root / "benchmarks.jsonl").open("w") as fh:
        report.write_records(records, fh, "jsonl")
    try:
        plot = report.plot(records, root / "benchmarks.png")
        picture = f"![throughput and latency]({plot.name})"
    except registry.BenchError as exc:
        picture = f"(no plot: {exc})"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join([
        BEGIN,
        f"Generated {when} by `python -m smc.bench suite --docs` in {elapsed:.0f} s "
        f"(baselines: {', '.join(against) or 'none installed'}); raw records in "
        "[benchmarks.jsonl](benchmarks.jsonl).",
        "",
        picture,
        "",
        report.markdown(records).rstrip(),
        END,
    ])  # fmt: skip
    md = root / "benchmarks.md"
    text = md.read_text() if md.exists() else "# Benchmarks\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + body + tail
    else:
        text = text.rstrip() + "\n\n## Results\n\n" + body + "\n"
    md.write_text(text)
    print(f"wrote {md}, {root / 'benchmarks.jsonl'} and the plot", file=sys.stderr)
