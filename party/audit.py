"""An append-only, hash-chained audit log of every use of this party's data.

One JSON object per line. Each entry carries ``prev`` (the previous entry's hash, 64 zeros for
the first) and ``hash`` = SHA-256 of the entry's canonical encoding without ``hash``. Editing,
deleting, inserting or reordering any entry breaks the chain; :func:`verify` names the first bad
line. Cutting entries off the end is detected against a remembered head: the daemon reports its
head hash to the hub with every heartbeat and report, so the hub holds a witness.

Entries name programs by hash, datasets by name, peers, recipients and the outcome: never values.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from smc.hub.manifest import canonical_json

GENESIS = "0" * 64


class AuditError(Exception):
    """The audit log does not verify: it was edited, truncated or reordered."""


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def verify(path: str | Path, expected_head: str | None = None) -> tuple[int, str]:
    """Check the whole chain; returns (number of entries, head hash). Raises :class:`AuditError`
    naming the first line that does not verify, or when the head differs from ``expected_head``."""
    prev = GENESIS
    count = 0
    p = Path(path)
    if not p.exists():
        lines: list[bytes] = []
    else:
        lines = p.read_bytes().splitlines()
    for line_no, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line.decode("ascii"))  # canonical entries are ASCII
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise AuditError(f"{p.name} line {line_no}: not a JSON entry") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
            raise AuditError(f"{p.name} line {line_no}: not an audit entry")
        if entry.get("seq") != count:
            raise AuditError(
                f"{p.name} line {line_no}: sequence {entry.get('seq')} where {count} "
                "was due (entry deleted, inserted or reordered)"
            )
        if entry.get("prev") != prev:
            raise AuditError(
                f"{p.name} line {line_no}: chain broken (previous entry changed, "
                "deleted or reordered)"
            )
        if entry_hash(entry) != entry["hash"]:
            raise AuditError(f"{p.name} line {line_no}: entry was modified (hash mismatch)")
        prev = entry["hash"]
        count += 1
    if expected_head is not None and prev != expected_head:
        raise AuditError(
            f"{p.name}: head {prev[:16]}… differs from the witnessed head "
            f"{expected_head[:16]}… (entries cut off the end?)"
        )
    return count, prev


def _set_aside_torn_tail(path: Path) -> Path | None:
    """A daemon killed in the middle of an append leaves a last line without its newline. Move
    that fragment to ``<log>.torn-<time>`` (nothing is deleted) so the chain verifies again; any
    other damage still makes :func:`verify` fail."""
    if not path.exists():
        return None
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return None
    cut = data.rfind(b"\n") + 1
    aside = path.with_name(f"{path.name}.torn-{int(time.time() * 1000)}")
    aside.write_bytes(data[cut:])
    with path.open("r+b") as fh:
        fh.truncate(cut)
        os.fsync(fh.fileno())
    return aside


class AuditLog:
    """Appends entries (thread-safe, fsynced). Opening verifies the existing chain."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recovered = _set_aside_torn_tail(self.path)
        self.count, self.head = verify(self.path)
        self.task_ids: set[str] = set()
        if self.count:
            for line in self.path.read_bytes().splitlines():
                self.task_ids.add(json.loads(line).get("task_id", ""))
        self._lock = threading.Lock()

    def append(self, event: str, **fields: Any) -> str:
        """Write one entry; returns the new head hash."""
        with self._lock:
            entry: dict[str, Any] = {
                "seq": self.count,
                "time_ms": int(time.time() * 1000),
                "event": event,
                **fields,
                "prev": self.head,
            }
            entry["hash"] = entry_hash(entry)
            line = canonical_json(entry) + b"\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            self.count += 1
            self.head = entry["hash"]
            if "task_id" in fields:
                self.task_ids.add(str(fields["task_id"]))
            return self.head
