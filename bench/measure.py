"""Measuring smc: one :class:`Point` (workload, suite, parties, size, emulated network) at a time.

Three modes, one record format:

* ``inproc``: :func:`smc.simulate`, every endpoint a thread of this process over the in-memory
  transport (which emulates latency and bandwidth);
* ``procs``: one process per endpoint over local pipes (:mod:`smc.bench.procs`);
* ``deployed``: a hub and party daemons (:mod:`smc.bench.deployed`).

For an operation, the wall time is the measured node's, from the first endpoint starting it to
the last finishing it (``smc.bench.engine.op_time``; input sharing and output opening excluded),
and rounds and bytes are that node's; for a circuit they are the whole program's. ``run_s`` is
always the whole program as timed by the caller (the parent process in ``procs``, the analyst in
``deployed``). Peak memory is measured in one extra, untimed run with :mod:`tracemalloc` on
(numpy buffers included): in ``inproc`` over all endpoints together, in ``procs`` per endpoint
process (the record gives the largest and the sum), plus ``ru_maxrss``.
"""

from __future__ import annotations

import resource
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from smc.bench.workload import BenchError, Built, Workload

from smc.transport import NetemConfig

SCHEMA = "smc.bench/1"
MODES = ("inproc", "procs", "deployed")


@dataclass(frozen=True)
class Point:
    workload: Workload
    suite: str
    parties: int
    size: int
    latency_ms: float = 0.0
    bandwidth_mbit: float | None = None

    @property
    def netem(self) -> NetemConfig | None:
        if not self.latency_ms and self.bandwidth_mbit is None:
            return None
        bw = None if self.bandwidth_mbit is None else self.bandwidth_mbit * 1e6
        return NetemConfig(self.latency_ms / 1000, bw)

    @property
    def names(self) -> list[str]:
        return [f"p{i}" for i in range(self.parties)]

    def label(self) -> str:
        net = ""
        if self.latency_ms:
            net += f" {self.latency_ms:g}ms"
        if self.bandwidth_mbit is not None:
            net += f" {self.bandwidth_mbit:g}Mbit"
        return f"{self.workload.name} {self.suite}/{self.parties} size={self.size:,}{net}"


@dataclass
class Sample:
    wall_s: float
    run_s: float
    rounds: int
    bytes_per_endpoint: list[int]
    outputs: Mapping[str, np.ndarray] | None = None


@dataclass
class Memory:
    peak_bytes: int | None
    per_endpoint: list[int] | None
    maxrss_bytes: int | None
    method: str


def _sample_from_stats(stats: list[Any], node: int | None, run_s: float, outputs: Any) -> Sample:
    from smc.bench.engine import op_time

    from smc.executor import NodeStats
    from smc.runtime import SimulationResult

    if node is None:  # payload bytes, comparable with declared costs (no round headers)
        return Sample(
            max(s.seconds for s in stats),
            run_s,
            max(s.rounds for s in stats),
            [sum(ns.bytes_sent for ns in s.per_node.values()) for s in stats],
            outputs,
        )
    wall, rounds, _ = op_time(SimulationResult({}, stats, None), node)  # type: ignore[arg-type]
    per = [s.per_node.get(node, NodeStats()).bytes_sent for s in stats]
    return Sample(wall, run_s, rounds, per, outputs)


class Engine:
    """Runs smc for points in one mode; owns the process pools or deployments it starts."""

    def __init__(self, mode: str, timeout: float = 600.0) -> None:
        if mode not in MODES:
            raise BenchError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
        self.mode = mode
        self.timeout = timeout
        self._pools: dict[tuple[str, int], Any] = {}
        self._deployments: dict[tuple[str, int, float], Any] = {}

    # deployed mode needs every point's inputs before the daemons start
    def prepare(self, points: list[tuple[Point, Built]]) -> None:
        if self.mode != "deployed":
            return
        from smc.bench.deployed import Deployment

        groups: dict[tuple[str, int, float], list[Built]] = {}
        for p, b in points:
            groups.setdefault((p.suite, p.parties, p.latency_ms), []).append(b)
        for key, builds in groups.items():
            self._deployments[key] = Deployment(key[0], builds, key[2] / 1000)

    def sample(self, p: Point, b: Built) -> Sample:
        if self.mode == "inproc":
            import smc

            start = time.perf_counter()
            res = smc.simulate(
                b.program, b.inputs, suite=p.suite, netem=p.netem, timeout=self.timeout
            )
            run_s = time.perf_counter() - start
            return _sample_from_stats(res.stats, b.node, run_s, res[p.names[0]])
        if self.mode == "procs":
            replies, run_s = self._pool(p).run(
                b.program, p.suite, b.inputs, p.netem, timeout=self.timeout
            )
            return _sample_from_stats(
                [r["stats"] for r in replies], b.node, run_s, replies[0]["outputs"]
            )
        out = self._deployments[(p.suite, p.parties, p.latency_ms)].run(b, self.timeout)
        return Sample(out.seconds, out.seconds, out.rounds, out.bytes_per_endpoint, out.outputs)

    def memory(self, p: Point, b: Built) -> Memory:
        if self.mode == "inproc":
            import smc

            tracemalloc.start()
            try:
                smc.simulate(
                    b.program, b.inputs, suite=p.suite, netem=p.netem, timeout=self.timeout
                )
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            return Memory(peak, None, rss, "tracemalloc peak, all endpoints in one process")
        if self.mode == "procs":
            replies, _ = self._pool(p).run(
                b.program, p.suite, b.inputs, p.netem, trace_memory=True, timeout=self.timeout
            )
            peaks = [int(r["peak"]) for r in replies]
            return Memory(
                sum(peaks),
                peaks,
                max(int(r["maxrss"]) for r in replies),
                "tracemalloc peak per endpoint process (sum; per_endpoint lists each)",
            )
        return Memory(None, None, None, "not measured in deployed mode (daemon processes)")

    def _pool(self, p: Point) -> Any:
        key = (p.suite, p.parties)
        if key not in self._pools or self._pools[key].closed:  # a failed run closes its pool
            from smc.bench.procs import PartyPool

            self._pools[key] = PartyPool(p.parties + (1 if p.suite == "additive" else 0))
        return self._pools[key]

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        for dep in self._deployments.values():
            dep.close()
        self._pools.clear()
        self._deployments.clear()


# ------------------------------------------------------------------------------------ records


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def base_record(
    library: str, p: Point, mode: str, env: dict[str, Any], run_id: str, suite: str | None = None
) -> dict[str, Any]:
    w = p.workload
    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "library": library,
        "workload": w.name,
        "kind": w.kind,
        "suite": suite or p.suite,
        "parties": p.parties,
        "size": p.size,
        "size_meaning": w.size_meaning,
        "ops": w.ops(p.size),
        "unit": w.unit,
        "mode": mode,
        "latency_ms": p.latency_ms,
        "bandwidth_mbit": p.bandwidth_mbit,
        "status": "ok",
        "note": "",
        "env": env,
    }


def timing_fields(times: list[float], ops: int) -> dict[str, Any]:
    if not times:
        return {
            "reps": 0,
            "wall_p50_s": None,
            "wall_p95_s": None,
            "wall_min_s": None,
            "ops_per_s": None,
            "samples_s": [],
        }
    p50 = statistics.median(times)
    return {
        "reps": len(times),
        "wall_p50_s": p50,
        "wall_p95_s": percentile(times, 95),
        "wall_min_s": min(times),
        "ops_per_s": ops / p50 if p50 > 0 else None,
        "samples_s": [round(t, 9) for t in times],
    }


@dataclass
class PointRun:
    """The measurements of smc at one point; reps may be added in several chunks."""

    engine: Engine
    point: Point
    built: Built
    warmup: int = 1
    samples: list[Sample] = field(default_factory=list)
    memory: Memory | None = None
    warmed: bool = False
    error: str | None = None
    check: str | None = None

    def warm(self) -> None:
        """Untimed runs first (Numba compiles on first use, caches fill)."""
        if not self.warmed:
            for _ in range(self.warmup):
                if self.error is None:
                    self._guard(lambda: self.engine.sample(self.point, self.built))
            self.warmed = True

    def add(self, reps: int, tick: Callable[[str], None] | None = None) -> None:
        """``reps`` more timed runs; ``tick`` is told what is about to run."""
        if tick is not None and not self.warmed and self.warmup:
            tick("warm-up")
        self.warm()
        for _ in range(reps):
            if self.error is not None:
                return
            if tick is not None:
                tick(f"rep {len(self.samples) + 1}")
            s = self._guard(lambda: self.engine.sample(self.point, self.built))
            if s is not None:
                self.samples.append(s)
                if self.check is None and self.built.check is not None and s.outputs is not None:
                    self.check = self.built.check(s.outputs) or "ok"

    def measure_memory(self) -> None:
        if self.error is None:
            self.memory = self._guard(lambda: self.engine.memory(self.point, self.built))

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except BenchError:
            raise
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}"
            return None

    def record(self, env: dict[str, Any], run_id: str) -> dict[str, Any]:
        p, w = self.point, self.point.workload
        rec = base_record("smc", p, self.engine.mode, env, run_id)
        ops = w.ops(p.size)
        rec.update(timing_fields([s.wall_s for s in self.samples], ops))
        rec["scope"] = (
            "task"
            if self.engine.mode == "deployed"
            else ("program" if self.built.node is None else "op")
        )
        rec["run_p50_s"] = (
            statistics.median(s.run_s for s in self.samples) if self.samples else None
        )
        last = self.samples[-1] if self.samples else None
        n = p.parties
        rec["rounds"] = last.rounds if last else None
        rec["bytes_per_party"] = last.bytes_per_endpoint[:n] if last else None
        rec["dealer_bytes"] = (
            last.bytes_per_endpoint[n]
            if last and p.suite == "additive" and len(last.bytes_per_endpoint) > n
            else None
        )
        rec["bytes_per_op"] = (max(last.bytes_per_endpoint[:n]) / ops) if last and ops else None
        declare = w.cost if w.kind == "op" else self.built.cost
        cost = declare(p.suite, p.parties, p.size) if declare is not None else None
        rec["declared_rounds"] = cost.rounds if cost else None
        rec["declared_bytes_per_party"] = list(cost.bytes_per_endpoint[:n]) if cost else None
        rec["cost_matches"] = (
            None
            if cost is None or last is None or rec["scope"] == "task"
            else (last.rounds, tuple(last.bytes_per_endpoint))
            == (cost.rounds, tuple(cost.bytes_per_endpoint))
        )
        mem = self.memory
        rec["peak_mem_bytes"] = mem.peak_bytes if mem else None
        rec["peak_mem_per_endpoint"] = mem.per_endpoint if mem else None
        rec["maxrss_bytes"] = mem.maxrss_bytes if mem else None
        rec["peak_mem_method"] = mem.method if mem else "not measured"
        rec["check"] = self.check
        if self.error is not None:
            rec["status"], rec["note"] = "failed", self.error
        elif self.check not in (None, "ok"):
            rec["status"], rec["note"] = "wrong_result", self.check
        return rec
