"""`smc run` from the command line against a real hub and party daemons (processes, mTLS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from smc.party.launch import LocalDeployment

import smc

PARTIES = ("alice", "bob", "carol")
ROWS = 12
VALUES = {
    p: np.round(np.random.default_rng(k).uniform(1, 9, ROWS), 3) for k, p in enumerate(PARTIES)
}


def _datasets(root: Path, party: str) -> dict[str, dict[str, Any]]:
    (root / f"{party}.csv").write_text("v\n" + "\n".join(f"{v:.3f}" for v in VALUES[party]) + "\n")
    policy = {"any_program": True, "recipients": ["alice", "analyst"], "min_parties": 2}
    return {"m": {"path": f"{party}.csv", "columns": {"v": "fixed"}, "policy": policy}}


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("cli-run")
    d = LocalDeployment(
        root,
        {p: _datasets(root, p) for p in PARTIES},
        clients=("analyst",),
        authorised=("analyst",),
    )
    d.start()
    yield d
    d.stop()


def smc_run(dep: LocalDeployment, program: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``smc run`` as the analyst client of ``dep`` on a saved program."""
    args = ["run", "--hub", dep.hub_address, "--keys", str(dep.keys), "--name", "analyst"]
    return subprocess.run(
        [sys.executable, "-m", "smc.party.cli", *args, "--program", str(program), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_smc_run_submits_a_saved_program_and_prints_results(
    dep: LocalDeployment, tmp_path: Path
) -> None:
    p = smc.ProgramBuilder(PARTIES)
    total = sum((p.input(x, "m.v", shape=(ROWS,)).sum() for x in PARTIES), p.const(0.0))
    p.output("total", total, to="alice")
    path = tmp_path / "total.smc"
    path.write_bytes(p.build().to_bytes())
    proc = smc_run(dep, path)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("alice.total = "))
    expected = sum(float(np.sum(np.rint(v * 2**16) / 2**16)) for v in VALUES.values())
    assert float(line.split("= ")[1]) == pytest.approx(expected, abs=1e-3)
    assert "[started]" in proc.stderr  # progress was streamed


def test_smc_run_reports_a_refusal_clearly(dep: LocalDeployment, tmp_path: Path) -> None:
    p = smc.ProgramBuilder(PARTIES)
    p.output("x", p.input("alice", "m.v", shape=(ROWS,)).sum(), to="bob")  # bob may not receive
    path = tmp_path / "leak.smc"
    path.write_bytes(p.build().to_bytes())
    proc = smc_run(dep, path, "--quiet")
    assert proc.returncode == 2
    assert "refused" in proc.stderr and "Traceback" not in proc.stderr


def test_smc_run_refuses_a_malformed_program_file(dep: LocalDeployment, tmp_path: Path) -> None:
    path = tmp_path / "junk.smc"
    path.write_bytes(b'{"version": 1, "nodes": [')
    proc = smc_run(dep, path)
    assert proc.returncode == 2
    assert "not canonical JSON" in proc.stderr and "Traceback" not in proc.stderr
