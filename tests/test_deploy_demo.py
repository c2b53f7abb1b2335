"""``smc demo`` runs a real deployment (hub + three daemons) and ``smc demo --local`` simulates."""

from __future__ import annotations

from pathlib import Path

import pytest
from smc.party.cli import main


def test_demo_runs_the_deployment_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--rows", "30", "--keep", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "hub + 3 hospital daemons + 1 input-only bidder" in out
    assert "refused: party" in out and "not allowed in program" in out
    assert "(circuit auction.vickrey)" in out and "(circuit voting.plurality" in out
    assert out.count("hash chain intact") == 4
    compared = [line.split()[0] for line in out.splitlines() if "plaintext reference" in line]
    assert {"mean_age", "winner", "price", "votes:helix", "invalid"} <= set(compared)
    for line in out.splitlines():
        if "plaintext reference" in line:
            got, ref = float(line.split()[1]), float(line.split()[-1])
            assert got == pytest.approx(ref, rel=1e-3, abs=1e-2), line
    assert (tmp_path / "hub.db").exists() and (tmp_path / "audit" / "st_mary.log").exists()


def test_demo_local_simulation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--local", "--rows", "30"]) == 0
    out = capsys.readouterr().out
    assert "results revealed to st_mary only" in out
    assert "sealed-bid auction" in out and "staff election" in out
    for line in out.splitlines():
        if "plaintext reference" in line:
            got, ref = float(line.split()[1]), float(line.split()[-1])
            assert got == pytest.approx(ref, rel=1e-3, abs=1e-2), line
