"""``smc bench``: the benchmark command line.

    smc bench list                                   what can be measured, and its sizes
    smc bench run mul lt --suite rss3 --size 1e4 1e5 --reps 5 [--mode inproc|procs|deployed]
                  [--latency 0 1 10] [--bandwidth 100] [--format table|jsonl|csv] [-o out.jsonl]
                  [--against mpyc,crypten]
    smc bench report results.jsonl [--plot out.png] [--markdown out.md]
    smc bench suite [--docs] [-o suite.jsonl]        the standard run (under 5 minutes)

Mounted in ``smc`` by :func:`register`; ``python -m smc.bench`` runs :func:`main`. Importing this
module is cheap (argparse only): the engine, numpy and the baselines load when a command runs.
Bad input (an unknown workload, an impossible party count, sizes that would not fit in memory, a
baseline that is not installed) is refused with a message and exit status 2 before any work.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

PROG = "smc bench"
_SUFFIX = {"k": 10**3, "m": 10**6, "g": 10**9}


def parse_size(text: str) -> int:
    """A positive element count: 1000, 10_000, 1e6, 100k, 2M."""
    raw = text.strip().lower().replace("_", "").replace(",", "")
    mult = 1
    if raw and raw[-1] in _SUFFIX:
        mult, raw = _SUFFIX[raw[-1]], raw[:-1]
    try:
        value = float(raw) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 1000, 1e6, 100k)") from None
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a size is a positive whole number")
    return int(value)


def parse_libs(text: str) -> list[str]:
    return [x.strip().lower() for x in re.split(r"[,\s]+", text) if x.strip()]


def _nonneg(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return v


def _positive(text: str) -> float:
    v = _nonneg(text)
    if v == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return v


# ------------------------------------------------------------------------------------ commands


def _fail(exc: Exception) -> int:
    print(f"{PROG}: error: {exc}", file=sys.stderr)
    return 2


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from smc.bench.workload import BenchError

        from smc.errors import SmcError

        try:
            return fn(args)
        except (BenchError, SmcError) as exc:
            return _fail(exc)
        except KeyboardInterrupt:
            print(f"\n{PROG}: interrupted", file=sys.stderr)
            return 130

    return run


def cmd_list(args: argparse.Namespace) -> int:
    from smc.bench import baselines, registry

    rows = []
    for w in registry.workloads():
        support = []
        for lib in baselines.LIBRARIES:
            why = baselines.unsupported(lib, w.name, w.kind, 3, 0, None)
            support.append(lib if why is None else f"-{lib}")
        rows.append({
            "name": w.name, "kind": w.kind, "summary": w.summary, "size": w.size_meaning,
            "default_sizes": list(w.default_sizes), "unit": w.unit,
            "declared_cost": w.cost is not None, "baselines": [s for s in support
                                                               if not s.startswith("-")],
            "unavailable": w.reason_unavailable(),
        })  # fmt: skip
    if args.format == "json":
        for r in rows:
            print(json.dumps(r))
        return 0
    print(
        f"{'name':<11} {'kind':<8} {'size parameter':<22} {'default sizes':<24} "
        f"{'cost':<5} {'baselines':<14} summary"
    )
    for r in rows:
        sizes = ", ".join(f"{s:,}" for s in r["default_sizes"])
        cost = "yes" if r["declared_cost"] else "-"
        libs = ",".join(r["baselines"]) or "-"
        line = (
            f"{r['name']:<11} {r['kind']:<8} {r['size']:<22} {sizes:<24} {cost:<5} "
            f"{libs:<14} {r['summary']}"
        )
        print(line)
        if r["unavailable"]:
            print(f"{'':<11} unavailable: {r['unavailable']}")
    print("\nsuites: rss3 (exactly 3 parties), additive (2 or more parties, plus a dealer)")
    print("cost: rounds and bytes declared by the engine (records say whether they match)")
    return 0


def _plan(args: argparse.Namespace) -> Any:
    from smc.bench.runner import Plan

    return Plan(
        workloads=args.workload,
        suites=args.suite,
        parties=args.parties,
        sizes=args.size,
        latencies_ms=args.latency or [0.0],
        bandwidths_mbit=args.bandwidth or [None],
        mode=args.mode,
        reps=args.reps,
        warmup=args.warmup,
        against=[lib for text in args.against or [] for lib in parse_libs(text)],
        cycles=args.cycles,
        baseline_budget_s=args.baseline_budget,
        memory=not args.no_memory,
        timeout_s=args.timeout,
    )


def run_plan(
    plan: Any,
    fmt: str = "table",
    output: str | None = None,
    append: bool = False,
    quiet: bool = False,
    header: bool = True,
) -> list[dict[str, Any]]:
    """Validate, measure, print (``fmt``: a table at the end, or records on stdout as they come,
    or ``none``), and write every record to ``output``. ``header``: CSV header on stdout."""
    from smc.bench import report, runner
    from smc.bench.env import environment

    groups = runner.validate(plan)  # every refusal happens here, before any work
    env = environment()
    out = open(output, "a" if append else "w") if output else None  # noqa: SIM115
    first = {"stdout": header, "file": not append or out is None or out.tell() == 0}

    def sink(recs: list[dict[str, Any]]) -> None:
        if fmt in ("jsonl", "csv"):
            report.write_records(recs, sys.stdout, fmt, first["stdout"])
            first["stdout"] = False
        if out is not None and output is not None:
            report.write_records(recs, out, report.file_format(output), first["file"])
            first["file"] = False

    progress = report.Progress(sum(len(g.points) for g in groups), quiet=quiet)
    records: list[dict[str, Any]]
    try:
        records = runner.execute(plan, groups, env, sink, progress)
    finally:
        if out is not None:
            out.close()
    if fmt == "table":
        print_table(records, bool(plan.against))
    return records


def print_table(records: list[dict[str, Any]], ratios: bool) -> None:
    from smc.bench import report
    from smc.bench.baselines import attach_ratios

    print(report.table(records))
    rows = attach_ratios([dict(r) for r in records]) if ratios else []
    if rows:
        print()
        print(report.ratio_table(rows))


def _exit_status(records: list[dict[str, Any]]) -> int:
    bad = [r for r in records if r["library"] == "smc" and r["status"] != "ok"]
    return 1 if bad else 0


def cmd_run(args: argparse.Namespace) -> int:
    records = run_plan(_plan(args), args.format, args.output, args.append, args.quiet)
    if args.output and not args.quiet:
        print(f"records written to {args.output}", file=sys.stderr)
    return _exit_status(records)


def cmd_report(args: argparse.Namespace) -> int:
    from smc.bench import report

    records = report.read_records(args.results)
    if not records:
        print(f"{PROG} report: no records in {', '.join(args.results)}", file=sys.stderr)
        return 1
    text = report.table(records) + "\n" if args.format == "table" else report.markdown(records)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)
        print(f"markdown written to {args.markdown}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.plot:
        path = report.plot(records, args.plot)
        print(f"plot written to {path}", file=sys.stderr)
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    from smc.bench import suite

    status: int = suite.run(args)
    return status


# ------------------------------------------------------------------------------------ parsers


def _output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=["table", "jsonl", "csv"],
        default="table",
        help="stdout: a table (default), or one JSON line / CSV row per measurement",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="also write every record to FILE (CSV if it ends in .csv, else JSON lines)",
    )
    p.add_argument("--append", action="store_true", help="append to --output instead of replacing")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")


def _measure_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mode",
        choices=["inproc", "procs", "deployed"],
        default="inproc",
        help="inproc: one process, a thread per party (default); procs: one process "
        "per party; deployed: a hub and party daemons on this machine",
    )
    p.add_argument("--reps", type=int, default=5, help="timed repetitions per point (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument(
        "--against",
        action="append",
        metavar="LIBS",
        help="also run MPyC and/or CrypTen, e.g. --against mpyc,crypten",
    )
    p.add_argument(
        "--cycles",
        type=int,
        default=2,
        help="with --against: alternate the libraries this many times (default 2)",
    )
    p.add_argument(
        "--baseline-budget",
        type=_positive,
        default=60.0,
        metavar="S",
        help="seconds per baseline workload; larger sizes predicted to exceed it are "
        "marked skipped (default 60)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory run")
    p.add_argument(
        "--timeout",
        type=_positive,
        default=600.0,
        metavar="S",
        help="give up on a run after S seconds (default 600)",
    )


def _commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_command", required=True, metavar="COMMAND")

    ls = sub.add_parser("list", help="operations and circuits that can be benchmarked")
    ls.add_argument("--format", choices=["table", "json"], default="table")
    ls.set_defaults(func=_guarded(cmd_list))

    run = sub.add_parser(
        "run",
        help="measure operations or circuits",
        description="Measure one or more operations or circuits (see 'smc bench list').",
    )
    run.add_argument("workload", nargs="+", help="operation or circuit name")
    run.add_argument("--suite", nargs="+", choices=["rss3", "additive"], default=["rss3"])
    run.add_argument(
        "--parties",
        nargs="+",
        type=int,
        metavar="N",
        help="party counts (default 3; rss3 needs exactly 3, additive 2 or more)",
    )
    run.add_argument(
        "--size",
        nargs="+",
        type=parse_size,
        metavar="N",
        help="sizes (default: the workload's, see 'smc bench list')",
    )
    run.add_argument(
        "--latency",
        nargs="+",
        type=_nonneg,
        metavar="MS",
        help="emulated one-way latency in milliseconds (several: a sweep)",
    )
    run.add_argument(
        "--bandwidth",
        nargs="+",
        type=_positive,
        metavar="MBIT",
        help="emulated per-link bandwidth in Mbit/s",
    )
    _measure_args(run)
    _output_args(run)
    run.set_defaults(func=_guarded(cmd_run))

    rep = sub.add_parser("report", help="Markdown table and plots from saved records")
    rep.add_argument("results", nargs="+", help="JSON-lines or CSV files written by run/suite")
    rep.add_argument("--plot", metavar="PNG", help="throughput and latency plots (matplotlib)")
    rep.add_argument("--markdown", metavar="FILE", help="write the table here, not to stdout")
    rep.add_argument("--format", choices=["markdown", "table"], default="markdown")
    rep.set_defaults(func=_guarded(cmd_report))

    st = sub.add_parser("suite", help="the standard benchmark run (under 5 minutes)")
    st.add_argument(
        "--docs",
        nargs="?",
        const="docs",
        metavar="DIR",
        help="regenerate DIR/benchmarks.md, .png and .jsonl (default DIR: docs)",
    )
    st.add_argument(
        "--against",
        metavar="LIBS",
        default=None,
        help="baselines to compare with (default: those installed; 'none' for none)",
    )
    st.add_argument("--mode", choices=["inproc", "procs"], default="inproc")
    st.add_argument("--reps", type=int, default=3, help="timed repetitions per point (default 3)")
    st.add_argument("--quick", action="store_true", help="the smallest sizes only (a smoke test)")
    _output_args(st)
    st.set_defaults(func=_guarded(cmd_suite))


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` command (list, run, report, suite) to an argparse subparsers object.

    Each subcommand sets ``func``: ``args.func(args)`` returns the exit status."""
    bench = subparsers.add_parser(
        "bench",
        help="benchmarks: ops/s, rounds, bytes, latency, against MPyC and CrypTen",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _commands(bench)
    return bench  # type: ignore[no-any-return]


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _commands(parser)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    return int(args.func(args))
