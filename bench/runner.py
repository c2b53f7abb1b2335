"""Plan and run a benchmark: validate everything first, then measure, alternating libraries.

:func:`validate` turns a :class:`Plan` into points and refuses bad input before any work starts
(unknown workload, unavailable circuit or mode, impossible party count, sizes that would not fit
in memory, a baseline that is not installed). :func:`execute` measures smc at every point and,
with baselines, runs the libraries in turn for each (workload, parties) group, in ``cycles``
rounds whose order rotates, so that a slow phase of the machine hits every library alike; the
repetitions of a point are spread over the cycles and pooled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smc.bench import baselines, registry
from smc.bench.measure import Engine, Point, PointRun, new_run_id
from smc.bench.report import Progress
from smc.bench.workload import BenchError, Workload

Sink = Callable[[list[dict[str, Any]]], None]


@dataclass
class Plan:
    workloads: list[str]
    suites: list[str] = field(default_factory=lambda: ["rss3"])
    parties: list[int] | None = None  # None: 3
    sizes: list[int] | None = None  # None: each workload's defaults
    latencies_ms: list[float] = field(default_factory=lambda: [0.0])
    bandwidths_mbit: list[float | None] = field(default_factory=lambda: [None])
    mode: str = "inproc"
    reps: int = 5
    warmup: int = 1
    against: list[str] = field(default_factory=list)
    cycles: int = 2
    baseline_budget_s: float = 60.0
    memory: bool = True
    timeout_s: float = 600.0
    # (workload, suite, parties) -> sizes, overriding ``sizes`` (used by the standard suite)
    size_overrides: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)


@dataclass
class Group:
    """The points of one (workload, parties): measured together when baselines alternate."""

    workload: Workload
    parties: int
    points: list[Point]


def validate(plan: Plan) -> list[Group]:
    if plan.reps < 1:
        raise BenchError(f"--reps must be at least 1, got {plan.reps}")
    if plan.warmup < 0:
        raise BenchError(f"--warmup must be 0 or more, got {plan.warmup}")
    if plan.mode == "deployed":
        from smc.bench.deployed import unavailable

        reason = unavailable()
        if reason:
            raise BenchError(reason)
        if any(b is not None for b in plan.bandwidths_mbit):
            raise BenchError(
                "--bandwidth is not available with --mode deployed (the daemons "
                "emulate latency only); use --mode inproc or procs"
            )
    elif plan.mode not in ("inproc", "procs"):
        raise BenchError(f"unknown mode {plan.mode!r}: choose inproc, procs or deployed")
    for lat in plan.latencies_ms:
        if lat < 0:
            raise BenchError(f"--latency must be 0 or more milliseconds, got {lat:g}")
    for bw in plan.bandwidths_mbit:
        if bw is not None and bw <= 0:
            raise BenchError(f"--bandwidth must be a positive number of Mbit/s, got {bw:g}")
    for lib in plan.against:
        if lib not in baselines.LIBRARIES:
            raise BenchError(f"--against {lib!r}: choose from {', '.join(baselines.LIBRARIES)}")
        msg = baselines.missing(lib)
        if msg:
            raise BenchError(msg)
    workloads = [registry.get(name) for name in plan.workloads]
    for w in workloads:
        reason = w.reason_unavailable()
        if reason:
            raise BenchError(f"{w.name} cannot be benchmarked: {reason}")
    combos = [(s, n) for s in plan.suites for n in (plan.parties or [3])]
    for s, n in combos:
        registry.check_parties(s, n)
    groups: dict[tuple[str, int], Group] = {}
    for w in workloads:
        for s, n in combos:
            sizes = plan.size_overrides.get((w.name, s, n)) or plan.sizes or list(w.default_sizes)
            for size in sizes:
                registry.check_size(w, size)
                registry.check_memory(w, s, n, size)
                for lat in plan.latencies_ms:
                    for bw in plan.bandwidths_mbit:
                        g = groups.setdefault((w.name, n), Group(w, n, []))
                        g.points.append(Point(w, s, n, size, lat, bw))
    return list(groups.values())


def _cycle(cycle: int, chunks: list[int]) -> str:
    return f"cycle {cycle + 1}/{len(chunks)}" if len(chunks) > 1 else ""


def _chunks(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def execute(
    plan: Plan,
    groups: list[Group],
    env: dict[str, Any],
    sink: Sink,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Measure every point; ``sink`` receives each group's records as soon as they exist."""
    run_id = new_run_id()
    engine = Engine(plan.mode, plan.timeout_s)
    progress = progress or Progress(sum(len(g.points) for g in groups), quiet=True)
    progress.total = sum(len(g.points) for g in groups) + len(groups) * len(plan.against)
    records: list[dict[str, Any]] = []
    built: dict[int, Any] = {}
    try:
        if plan.mode == "deployed":
            builds = [(p, p.workload.build(p.names, p.size)) for g in groups for p in g.points]
            progress.show("starting the hub and party daemons")
            engine.prepare(builds)
            built = {id(p): b for p, b in builds}
        for g in groups:
            runs = []
            for p in g.points:
                b = built[id(p)] if plan.mode == "deployed" else p.workload.build(p.names, p.size)
                runs.append(PointRun(engine, p, b, plan.warmup))
            recs = _measure_group(plan, g, runs, env, run_id, progress)
            records += recs
            sink(recs)
    finally:
        engine.close()
        progress.close()
    return records


@dataclass
class BaselineRuns:
    """One baseline library's results for a group, pooled over the cycles."""

    lib: str
    group: Group
    budget_s: float
    warmup: int
    results: dict[int, baselines.SizeResult] = field(default_factory=dict)

    @property
    def sizes(self) -> list[int]:
        """Sizes measured with a plain network (baselines cannot emulate one)."""
        return sorted({p.size for p in self.group.points
                       if not p.latency_ms and p.bandwidth_mbit is None})  # fmt: skip

    def supported(self) -> bool:
        g = self.group
        return baselines.unsupported(self.lib, g.workload.name, g.workload.kind, g.parties, 0,
                                     None) is None  # fmt: skip

    def run(self, reps: int, cycle: int) -> None:
        """One batch: every size not yet given up on (skipped, timed out or failed)."""
        todo = [s for s in self.sizes if self.results.get(s) is None
                or self.results[s].status == "ok"]  # fmt: skip
        if not todo or not self.supported():
            return
        g = self.group
        got = baselines.run_batch(self.lib, g.workload.name, g.parties, todo, reps, self.warmup,
                                  self.budget_s)  # fmt: skip
        for r in got:
            prev = self.results.get(r.size)
            if prev is None:
                self.results[r.size] = r
            elif r.status == "ok":
                prev.times += r.times
                prev.bytes_per_party = r.bytes_per_party or prev.bytes_per_party
            elif not prev.note:
                prev.note = f"fewer reps: cycle {cycle + 1} did not run it ({r.status}: {r.note})"

    def records(self, env: dict[str, Any], run_id: str) -> list[dict[str, Any]]:
        """One record per distinct (size, network) point: measured, or marked with the reason."""
        g, recs = self.group, []
        seen: set[tuple[int, float, float | None]] = set()
        for p in g.points:
            key = (p.size, p.latency_ms, p.bandwidth_mbit)
            if key in seen:
                continue
            seen.add(key)
            reason = baselines.unsupported(self.lib, g.workload.name, g.workload.kind,
                                           g.parties, p.latency_ms, p.bandwidth_mbit)  # fmt: skip
            if reason:
                recs.append(baselines.unsupported_record(self.lib, p, reason, env, run_id,
                                                         "unsupported"))  # fmt: skip
            elif p.size in self.results:
                recs += baselines.records(self.lib, p, [self.results[p.size]], env, run_id)
        return recs


def _measure_group(
    plan: Plan,
    g: Group,
    runs: list[PointRun],
    env: dict[str, Any],
    run_id: str,
    progress: Progress,
) -> list[dict[str, Any]]:
    chunks = _chunks(plan.reps, plan.cycles if plan.against else 1)
    libs: list[str] = ["smc", *plan.against]
    others = {lib: BaselineRuns(lib, g, plan.baseline_budget_s, min(plan.warmup, 1))
              for lib in plan.against}  # fmt: skip
    for cycle, reps in enumerate(chunks):
        phase = _cycle(cycle, chunks)
        for lib in libs[cycle % len(libs) :] + libs[: cycle % len(libs)]:  # rotating order
            if lib != "smc":
                at = progress.done + len(runs) + plan.against.index(lib)
                progress.show(f"{lib} {g.workload.name} n={g.parties}", phase, at)
                others[lib].run(reps, cycle)
                continue
            for i, run in enumerate(runs):
                label, at = run.point.label(), progress.done + i

                def tick(what: str, label: str = label, at: int = at, ph: str = phase) -> None:
                    of = "" if what == "warm-up" else f"/{plan.reps}"
                    progress.show(label, f"{what}{of} {ph}".rstrip(), at)

                run.add(reps, tick)
    if plan.memory and plan.mode != "deployed":
        for i, run in enumerate(runs):
            progress.show(run.point.label(), "memory", progress.done + i)
            run.measure_memory()
    recs = []
    for run in runs:
        recs.append(run.record(env, run_id))
        progress.step()
    for lib in plan.against:
        recs += others[lib].records(env, run_id)
        progress.step()
    if plan.against:
        baselines.attach_ratios(recs)
    return recs
