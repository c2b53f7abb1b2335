"""``--against mpyc,crypten``: the same workloads in MPyC and CrypTen, on the same machine.

Each library runs as one process per party (MPyC over loopback TCP, CrypTen over gloo), started
by :func:`run_batch` for one workload and party count with all its sizes, smallest first. The
workers (:mod:`smc.bench.mpyc_worker`, :mod:`smc.bench.crypten_worker`) rebuild the very same
input values as smc's run from the registry, time each repetition after a barrier, and print one
``SMCBENCH {json}`` line per size. The time of a repetition is the slowest party's. After each
size, party 0 predicts the next size's time from this one; when it would exceed the batch budget
the remaining sizes are reported as skipped, with the prediction (never dropped silently).

What a library cannot run is marked with the reason by :func:`unsupported`: MPyC with 2 parties
(threshold t = 0: no privacy), functions a library does not have, and emulated networks (only
smc's transport emulates latency and bandwidth; the baselines run over plain loopback).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LIBRARIES = ("mpyc", "crypten")
JOB_ENV = "SMC_BENCH_JOB"
TAG = "SMCBENCH "
CRYPTEN_STEPS = (
    "pip install --no-deps crypten==0.4.1 && pip install torchvision==0.28.0 onnx omegaconf "
    "pandas pyyaml tensorboard future scipy scikit-learn -c <(echo torch==2.13.0)"
)
INSTALL = {
    "mpyc": "pip install 'smc[baselines]'",
    "crypten": f"pip install 'smc[baselines]' && {CRYPTEN_STEPS}",
}
SUITE_NAME = {"mpyc": "shamir", "crypten": "additive-tfp"}

MPYC_OPS = ("mul", "mul_int", "dot", "lt", "eq", "matmul", "sort", "max", "relu", "reciprocal")
CRYPTEN_OPS = ("mul", "dot", "lt", "eq", "matmul", "max", "relu", "sigmoid", "exp", "reciprocal")
MISSING = {
    ("mpyc", "sigmoid"): "MPyC 0.11 has no secure exp or sigmoid",
    ("mpyc", "exp"): "MPyC 0.11 has no secure exp or sigmoid",
    ("crypten", "mul_int"): "CrypTen has no integer type (everything is fixed point)",
    ("crypten", "sort"): "CrypTen 0.4.1 has no oblivious sort",
}


def missing(library: str) -> str | None:
    """A message naming the install command when ``library`` is not installed, else None."""
    mods = {"mpyc": ("mpyc",), "crypten": ("torch", "crypten")}[library]
    absent = [m for m in mods if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return (
        f"--against {library}: {', '.join(absent)} not installed. Install the baselines extra: "
        f"{INSTALL[library]}"
    )


def unsupported(
    library: str,
    workload: str,
    kind: str,
    parties: int,
    latency_ms: float,
    bandwidth_mbit: float | None,
) -> str | None:
    """Why ``library`` cannot run this workload as smc does, or None when it can."""
    if kind != "op":
        return f"circuit {workload!r} is not ported to {library}"
    ops = MPYC_OPS if library == "mpyc" else CRYPTEN_OPS
    if workload not in ops:
        return MISSING.get((library, workload), f"{library} has no {workload!r} in this harness")
    if library == "mpyc" and parties < 3:
        return f"MPyC with {parties} parties has threshold t=0: no privacy"
    if latency_ms or bandwidth_mbit is not None:
        return "network emulation exists only in smc's transport; baselines run over loopback"
    return None


# ------------------------------------------------------------------------------------ workers


@dataclass
class Job:
    workload: str
    sizes: list[int]
    reps: int
    warmup: int = 1
    budget_s: float = 60.0
    started: float = field(default_factory=time.monotonic)


def job_from_env() -> Job:
    raw = json.loads(os.environ[JOB_ENV])
    raw.pop("started", None)
    return Job(**raw)


def emit(rank: int, size: int, status: str, **fields: Any) -> None:
    """One result line for the parent (with this process's peak resident memory)."""
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    msg = {"rank": rank, "size": size, "status": status, "maxrss": rss, **fields}
    print(TAG + json.dumps(msg), flush=True)


def workload_arrays(workload: str, names: list[str], size: int) -> dict[str, Any]:
    """The plaintext inputs smc's run of this workload uses (x of party 0, y of party 1)."""
    from smc.bench.registry import get

    arrays: dict[str, Any] = get(workload).build(names, size).arrays
    return arrays


def _work(workload: str, size: int) -> float:
    """How the work of a workload grows with its size (elements; n log^2 n for sorting)."""
    from smc.bench.registry import get

    e = float(get(workload).elements(size))
    return e * max(1, size.bit_length()) ** 2 if workload == "sort" else e


def predict(workload: str, history: list[tuple[int, float]], size: int) -> float:
    """Seconds a batch at ``size`` will take, from (size, seconds) measured at smaller sizes:
    the line through the last two points (fixed costs and a per-element rate), or proportional
    to the work from a single point (an overestimate where fixed costs dominate)."""
    x = [(_work(workload, s), t) for s, t in history[-2:]]
    w = _work(workload, size)
    if len(x) == 2 and x[1][0] > x[0][0]:
        rate = max(0.0, (x[1][1] - x[0][1]) / (x[1][0] - x[0][0]))
        return max(x[1][1], x[1][1] + rate * (w - x[1][0]))
    return x[-1][1] * w / max(1.0, x[-1][0])


def keep_going(job: Job, history: list[tuple[int, float]], remaining: list[int]) -> bool | str:
    """True, or why the remaining sizes are skipped: the next size's predicted time (input
    sharing, warm-up and reps; ``history`` holds what each size took so far) exceeds what is left
    of the budget."""
    if not remaining or not history:
        return True
    nxt = remaining[0]
    predicted = predict(job.workload, history, nxt)
    left = job.budget_s - (time.monotonic() - job.started)
    if predicted > left:
        return (
            f"predicted {predicted:.0f} s for size {nxt:,} ({job.warmup} warm-up + "
            f"{job.reps} reps) exceeds the {left:.0f} s left of the {job.budget_s:.0f} s "
            "budget (--baseline-budget)"
        )
    return True


def later_note(verdict: object, size: int, remaining: list[int]) -> str:
    """The note of a skipped size: the prediction for the first, a pointer to it for the rest."""
    if remaining and size != remaining[0]:
        return f"not run: the smaller size {remaining[0]:,} was already over budget"
    return str(verdict)


# ------------------------------------------------------------------------------------ parent


@dataclass
class SizeResult:
    size: int
    status: str  # ok, skipped, timeout, failed
    times: list[float] = field(default_factory=list)
    bytes_per_party: list[int] | None = None
    rounds: int | None = None
    note: str = ""
    maxrss: int | None = None


def _free_ports(k: int) -> list[int]:
    socks, ports = [], []
    for _ in range(k):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _commands(library: str, parties: int, tmp: Path) -> list[tuple[list[str], dict[str, str]]]:
    base = [sys.executable, "-m", f"smc.bench.{library}_worker"]
    if library == "mpyc":
        peers = [a for p in _free_ports(parties) for a in ("-P", f"127.0.0.1:{p}")]
        return [([*base, *peers, "-I", str(i), "--no-log"], {}) for i in range(parties)]
    rdv = {
        "RENDEZVOUS": f"file://{tmp / 'rendezvous'}",
        "WORLD_SIZE": str(parties),
        "DISTRIBUTED_BACKEND": "gloo",
    }
    return [(base, {**rdv, "RANK": str(i)}) for i in range(parties)]


def run_batch(
    library: str,
    workload: str,
    parties: int,
    sizes: list[int],
    reps: int,
    warmup: int = 1,
    budget_s: float = 60.0,
    timeout_s: float | None = None,
) -> list[SizeResult]:
    """Run ``workload`` at every size (ascending) in ``library`` with ``parties`` processes."""
    sizes = sorted(sizes)
    job = Job(workload, sizes, reps, warmup, budget_s)
    timeout_s = timeout_s if timeout_s is not None else budget_s * 1.5 + 60
    blob = json.dumps({k: v for k, v in asdict(job).items() if k != "started"})
    with tempfile.TemporaryDirectory(prefix=f"smc-bench-{library}-") as d, ExitStack() as stack:
        tmp = Path(d)
        procs = []
        for i, (cmd, extra) in enumerate(_commands(library, parties, tmp)):
            env = {
                **os.environ,
                **extra,
                JOB_ENV: blob,
                "OMP_NUM_THREADS": "1",
                "PYTHONUNBUFFERED": "1",
            }
            out = stack.enter_context((tmp / f"out{i}.txt").open("w+"))
            err = stack.enter_context((tmp / f"err{i}.txt").open("w+"))
            procs.append((subprocess.Popen(cmd, stdout=out, stderr=err, env=env), out, err))
        deadline = time.monotonic() + timeout_s
        timed_out = False
        for p, _, _ in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                break
        if timed_out:
            for p, _, _ in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        lines: dict[int, dict[int, dict[str, Any]]] = {}
        errors = []
        for i, (p, out, err) in enumerate(procs):
            out.seek(0)
            for line in out:
                if line.startswith(TAG):
                    msg = json.loads(line[len(TAG) :])
                    lines.setdefault(msg["size"], {})[i] = msg
            if p.returncode not in (0, None) and not timed_out:
                err.seek(0)
                tail = [ln for ln in err.read().splitlines() if ln.strip()][-3:]
                errors.append(f"party {i} exited with {p.returncode}: {' | '.join(tail)}")
    return [_merge(s, lines.get(s, {}), parties, timed_out, timeout_s, errors) for s in sizes]


def _merge(
    size: int,
    by_rank: dict[int, dict[str, Any]],
    parties: int,
    timed_out: bool,
    timeout_s: float,
    errors: list[str],
) -> SizeResult:
    if len(by_rank) < parties:
        if timed_out:
            return SizeResult(size, "timeout", note=f"did not finish within {timeout_s:.0f} s")
        return SizeResult(size, "failed", note="; ".join(errors) or "no result reported")
    first = by_rank[min(by_rank)]
    if first["status"] != "ok":
        return SizeResult(size, first["status"], note=first.get("note", ""))
    reps = min(len(m["times"]) for m in by_rank.values())
    times = [max(m["times"][r] for m in by_rank.values()) for r in range(reps)]
    sent = [int(by_rank[r].get("bytes_sent", 0)) for r in sorted(by_rank)]
    rounds = first.get("rounds")
    rss = max(int(m.get("maxrss") or 0) for m in by_rank.values()) or None
    return SizeResult(size, "ok", times, sent, rounds, maxrss=rss)


def records(
    library: str,
    point: Any,
    results: list[SizeResult],
    env: dict[str, Any],
    run_id: str,
) -> list[dict[str, Any]]:
    """Benchmark records (the same fields as smc's) for a batch's sizes."""
    from dataclasses import replace

    from smc.bench.measure import base_record, timing_fields

    out = []
    for r in results:
        p = replace(point, size=r.size)
        rec = base_record(library, p, "procs", env, run_id, suite=SUITE_NAME[library])
        ops = p.workload.ops(r.size)
        rec.update(timing_fields(r.times, ops))
        rec.update(
            scope="op",
            status=r.status,
            note=r.note,
            rounds=r.rounds,
            bytes_per_party=r.bytes_per_party,
            bytes_per_op=(max(r.bytes_per_party) / ops if r.bytes_per_party and ops else None),
            maxrss_bytes=r.maxrss,
            peak_mem_method="ru_maxrss of the largest party process (no traced peak)",
        )
        out.append(rec)
    return out


def unsupported_record(
    library: str, point: Any, reason: str, env: dict[str, Any], run_id: str, status: str
) -> dict[str, Any]:
    from smc.bench.measure import base_record, timing_fields

    rec = base_record(library, point, "procs", env, run_id, suite=SUITE_NAME[library])
    rec.update(timing_fields([], 0))
    rec.update(status=status, note=reason, scope="op")
    out: dict[str, Any] = rec
    return out


def attach_ratios(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``smc_speedup`` = baseline p50 / smc p50 (per smc suite) to baseline records; return
    the rows of the comparison table."""
    smc = {}
    for r in recs:
        plain = not r.get("latency_ms") and r.get("bandwidth_mbit") is None
        comparable = plain and r.get("scope") == "op"  # not whole deployed tasks
        if r["library"] == "smc" and r["status"] == "ok" and r["wall_p50_s"] and comparable:
            smc[(r["workload"], r["parties"], r["size"], r["suite"])] = r["wall_p50_s"]
    rows = []
    for r in recs:
        if r["library"] == "smc":
            continue
        speed = {}
        for (wl, n, size, suite), t in smc.items():
            if (wl, n, size) == (r["workload"], r["parties"], r["size"]):
                if r["status"] == "ok" and r["wall_p50_s"]:
                    speed[suite] = r["wall_p50_s"] / t
                rows.append(
                    {
                        "workload": wl,
                        "parties": n,
                        "size": size,
                        "suite": suite,
                        "smc_p50_s": t,
                        "library": r["library"],
                        "library_p50_s": r["wall_p50_s"],
                        "status": r["status"],
                        "note": r["note"],
                        "speedup": speed.get(suite),
                    }
                )
        r["smc_speedup"] = speed or None
    return rows
