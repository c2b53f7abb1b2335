"""The party's audit log is append-only and hash-chained: every tampering is detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from smc.party.audit import GENESIS, AuditError, AuditLog, entry_hash, verify
from smc.party.cli import main


def _log(path: Path, n: int = 4) -> AuditLog:
    log = AuditLog(path)
    for k in range(n):
        log.append(
            "completed",
            task_id=f"{k:032x}",
            program_sha256="ab" * 32,
            datasets=["visits"],
            peers=["bob", "carol"],
            recipients=["alice"],
            outcome="ok",
        )
    return log


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, entries: list[dict[str, object]]) -> None:
    path.write_text(
        "".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n" for e in entries)
    )


def test_chain_verifies_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = _log(path)
    assert verify(path) == (4, log.head)
    again = AuditLog(path)
    assert again.count == 4 and again.head == log.head
    assert f"{2:032x}" in again.task_ids
    again.append("refused", task_id="f" * 32, outcome="refused", reason="policy")
    assert verify(path)[0] == 5
    assert _lines(path)[0]["prev"] == GENESIS


@pytest.mark.parametrize("attack", ["edit", "delete", "swap", "insert", "garbage"])
def test_tampering_is_detected(tmp_path: Path, attack: str) -> None:
    path = tmp_path / "audit.log"
    _log(path)
    entries = _lines(path)
    if attack == "edit":
        entries[1]["recipients"] = ["mallory"]
    elif attack == "delete":
        del entries[1]
    elif attack == "swap":
        entries[1], entries[2] = entries[2], entries[1]
    elif attack == "insert":
        forged = dict(entries[1], task_id="e" * 32)
        forged["hash"] = entry_hash(forged)
        entries.insert(2, forged)
    _write(path, entries)
    if attack == "garbage":
        path.write_text(path.read_text() + "not json\n")
    with pytest.raises(AuditError, match=r"line [235]"):
        verify(path)
    with pytest.raises(AuditError):
        AuditLog(path)  # a daemon refuses to start on a tampered log


def test_rewriting_the_whole_chain_is_caught_by_the_witnessed_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    head = _log(path).head
    entries = _lines(path)
    entries[2]["reason"] = "nothing to see"  # recompute every hash after the edit
    prev = entries[1]["hash"]
    for e in entries[2:]:
        e["prev"] = prev
        e["hash"] = entry_hash(e)
        prev = e["hash"]
    _write(path, entries)
    verify(path)  # internally consistent again ...
    with pytest.raises(AuditError, match="witnessed head"):
        verify(path, expected_head=head)  # ... but not the head the hub saw


def test_truncation_is_caught_by_the_witnessed_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    head = _log(path).head
    _write(path, _lines(path)[:-1])
    with pytest.raises(AuditError, match="cut off"):
        verify(path, expected_head=head)


def test_verify_audit_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.log"
    _log(path)
    assert main(["party", "verify-audit", str(path)]) == 0
    assert "4 entries, chain intact" in capsys.readouterr().out
    entries = _lines(path)
    entries[0]["outcome"] = "refused"
    _write(path, entries)
    assert main(["party", "verify-audit", str(path)]) == 2
    assert "line 1: entry was modified" in capsys.readouterr().err


def test_a_torn_last_line_from_a_crash_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    head = _log(path).head
    with path.open("ab") as fh:
        fh.write(b'{"seq":4,"event":"compl')  # killed in the middle of an append
    log = AuditLog(path)
    assert log.count == 4 and log.head == head
    assert log.recovered is not None and log.recovered.read_bytes().startswith(b'{"seq":4')
    log.append("completed", task_id="0" * 32)
    assert verify(path)[0] == 5


def test_stray_bytes_in_the_log_are_an_audit_error(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.log")
    log.append("completed", task_id="t1")
    with (tmp_path / "a.log").open("ab") as fh:  # e.g. a TLS record written to a reused fd
        fh.write(b"\x17\x03\x03\x00\x13\xba&C")
    log.append("completed", task_id="t2")
    with pytest.raises(AuditError, match="line 2: not a JSON entry"):
        verify(tmp_path / "a.log")
    with pytest.raises(AuditError):
        AuditLog(tmp_path / "a.log")


def test_a_daemon_with_a_damaged_log_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    import subprocess
    import sys

    from smc.party.launch import LocalDeployment

    dep = LocalDeployment(tmp_path, {"alice": {}})
    dep.write()
    log = tmp_path / "audit" / "alice.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    AuditLog(log).append("completed", task_id="t1")
    log.write_bytes(log.read_bytes().replace(b'"t1"', b'"t2"'))  # an edited entry
    run = subprocess.run(
        [sys.executable, "-m", "smc.party.cli", "party", "serve", "--config", "alice.toml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert "the audit log does not verify, so the daemon will not start" in run.stderr
    assert "entry was modified" in run.stderr and "Traceback" not in run.stderr
