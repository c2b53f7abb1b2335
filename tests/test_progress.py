"""Per-operation progress: the executor's snapshot, and its way to the client through the hub."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from smc.party.launch import LocalDeployment
from smc.proto.v1 import hub_pb2
from test_hub_core import accept, ca, hub, ident, online, request

import smc
from smc.config import FixedPointConfig, SessionConfig
from smc.executor import Executor, PartyResult, Progress
from smc.protocols.keys import deal_keys
from smc.transport import InMemoryNetwork, NetemConfig

__all__ = ["ca"]  # the hub tests' CA fixture, used here
NAMES = ["p0", "p1", "p2"]


def chain(names: list[str], steps: int, rows: int = 8) -> smc.Program:
    """Dependent products: a few rounds per step (products, truncations)."""
    p = smc.ProgramBuilder(names)
    x = p.input(names[0], "x", shape=(rows,)) * p.input(names[1], "y", shape=(rows,))
    for _ in range(steps):
        x = x * x * 0.5
    p.output("out", x.sum(), to=names[0])
    return p.build()


def executors(
    program: smc.Program, netem: NetemConfig | None = None
) -> tuple[list[Executor], list[dict[str, Any]]]:
    """One executor per party over the in-memory network, set up as ``smc.simulate`` does."""
    config = SessionConfig(
        suite="rss3",
        parties=program.parties,
        fixed=FixedPointConfig(program.frac_bits),
        program_hash=program.hash,
        session_id=uuid.uuid4().hex,
    )
    net = InMemoryNetwork(config.n, netem)
    keys = deal_keys(config.n, config.session_id)
    rows = program.inputs_of(program.parties[0])[0].shape
    inputs: list[dict[str, Any]] = [{"x": np.full(rows, 0.5)}, {"y": np.full(rows, 0.5)}, {}]
    exs = [Executor(program, config, me, net.endpoint(me), keys[me], 30.0) for me in range(3)]
    return exs, inputs


def run_all(exs: list[Executor], inputs: list[dict[str, Any]]) -> list[PartyResult]:
    results: list[PartyResult | None] = [None] * len(exs)

    def work(me: int) -> None:
        results[me] = exs[me].run(inputs[me])

    threads = [threading.Thread(target=work, args=(me,)) for me in range(len(exs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results), "an endpoint failed"
    return [r for r in results if r is not None]


def test_snapshot_is_complete_after_a_run() -> None:
    program = chain(NAMES, 3)
    exs, inputs = executors(program)
    total = len(program.nodes) + len(program.outputs)
    assert exs[0].progress == Progress(0, total, 0, ())
    for ex, res in zip(exs, run_all(exs, inputs), strict=True):
        snap = ex.progress
        assert snap.done == snap.total == total
        assert snap.rounds == res.stats.rounds > 0
        assert snap.active == ()
        assert snap.describe() == f"op {total}/{total}, round {res.stats.rounds}"


def test_snapshot_moves_during_a_run() -> None:
    program = chain(NAMES, 12)
    exs, inputs = executors(program, NetemConfig(latency_s=0.01))
    seen: list[Progress] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            seen.append(exs[1].progress)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        res = run_all(exs, inputs)
    finally:
        stop.set()
        sampler.join()
    total = seen[0].total
    middle = [s for s in seen if 0 < s.done < total]
    assert middle, seen
    assert any(s.active and 0 < s.rounds < res[1].stats.rounds for s in middle)
    assert {op for s in middle for op in s.active} <= {"input", "mul", "trunc", "open"}
    assert "mul" in {op for s in middle for op in s.active}
    for a, b in itertools.pairwise(seen):  # never goes backwards
        assert a.done <= b.done and a.rounds <= b.rounds
    line = next(s for s in middle if s.active).describe()
    assert line.startswith("op ") and "/" in line and "round " in line


def test_describe_bounds_the_op_list() -> None:
    snap = Progress(3, 9, 4, ("cmp", "mul", "open", "sort", "trunc"))
    assert snap.describe() == "op 3/9 (cmp, mul, open +2), round 4"
    assert Progress(0, 5).describe() == "op 0/5, round 0"


# ------------------------------------------------------------------------------ hub


def test_hub_passes_the_party_line_through_bounded(ca: Path, tmp_path: Path) -> None:
    core = hub(ca, tmp_path / "hub.db")
    online(core, ca)
    task_id = core.submit(ident(ca, "analyst"), request(ca))
    accept(core, ca, task_id)
    line = "op 12/40 (sort), round 57, 3.2 MB sent"
    reports = {
        "alice": hub_pb2.TaskReport(message=line, rounds=9, bytes_sent=99),
        "bob": hub_pb2.TaskReport(message="op 1/2\x1b[2J\n" + "x" * 500),
        "carol": hub_pb2.TaskReport(rounds=7, bytes_sent=1234),  # an older party: no message
    }
    for name, rep in reports.items():
        rep.task_id, rep.kind = task_id, "progress"
        core.report(ident(ca, name), rep)
    got = {e.party: e.message for e in core.store.events(task_id) if e.kind == "progress"}
    assert got["alice"] == line
    assert got["bob"].startswith("op 1/2") and len(got["bob"]) <= 200
    assert got["bob"].isprintable()
    assert got["carol"] == "7 frames received, 1234 bytes sent"


# ------------------------------------------------------------------------------ end to end

PARTIES = ("alice", "bob", "carol")
ROWS = 16


def _datasets(root: Path, party: str, seed: int) -> dict[str, dict[str, Any]]:
    values = np.random.default_rng(seed).uniform(1, 2, ROWS)
    (root / f"{party}.csv").write_text("v\n" + "\n".join(f"{v:.3f}" for v in values) + "\n")
    policy = {"any_program": True, "recipients": ["alice", "analyst"], "min_parties": 2}
    return {"m": {"path": f"{party}.csv", "columns": {"v": "fixed"}, "policy": policy}}


@pytest.mark.timeout(60)
def test_progress_events_carry_the_operation(tmp_path: Path) -> None:
    slow = {p: {"slow_rounds_s": 0.01} for p in PARTIES}  # every frame sent waits 10 ms
    dep = LocalDeployment(
        tmp_path,
        {p: _datasets(tmp_path, p, k) for k, p in enumerate(PARTIES)},
        clients=("analyst",),
        authorised=("analyst",),
        party_extra=slow,
    )
    dep.start()
    try:
        p = smc.ProgramBuilder(PARTIES)
        x = p.input("alice", "m.v", shape=(ROWS,)) * p.input("bob", "m.v", shape=(ROWS,))
        for _ in range(80):  # about 160 rounds, 3-5 s
            x = x * 0.999 + 0.001
        p.output("x", x.sum(), to="alice")
        events: list[Any] = []
        start = time.monotonic()
        with dep.client("analyst") as client:
            client.run(p.build(), events.append, deadline_s=60)
        took = time.monotonic() - start
    finally:
        dep.stop()
    progress = [e for e in events if e.kind == "progress"]
    assert took > 2.5, f"the task took {took:.1f} s, too short to see progress"
    lines = [e.message for e in progress if e.message.startswith("op ") and "/" in e.message]
    assert lines, [e.message for e in events]
    assert all(" sent" in m and "round " in m for m in lines)
    assert {e.party for e in progress} <= set(PARTIES)
