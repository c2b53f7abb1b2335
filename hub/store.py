"""Task state that survives a hub restart, behind a small interface (SQLite by default).

What is stored: the signed manifest, the program (public), participants and their public key
announcements, the event history, and results *encrypted to the client*. Never a share, an input
or a plaintext result: the hub never holds any. A PostgreSQL store for several hubs implements the
same :class:`TaskStore` methods.

Large results (above :data:`INLINE_RESULT_MAX` bytes) are kept as files beside the database
(``<database>.results/``), written whole then renamed into place, with their size in the database:
an 8 MB blob written into SQLite cost ~70 ms of WAL checkpointing on the result path, a file write
a few ms. Results are authenticated ciphertext, so a damaged file fails the client's decryption;
the hub only checks the size it recorded.

Restart semantics (:meth:`TaskStore.interrupt_unfinished`): finished tasks keep their state and
results; tasks that were queued, offered or running are marked failed with a reason, since their
parties' sessions died with the hub's routing state.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

INLINE_RESULT_MAX = 64 << 10
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STATES = ("queued", "offered", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class TaskRecord:
    task_id: str
    client: str
    state: str
    manifest: bytes
    signature: bytes
    client_cert: bytes
    program: bytes
    program_sha256: str
    endpoints: list[str]
    created_ms: int
    deadline_ms: int
    reason: str = ""
    finished_ms: int = 0
    participants: list[dict[str, str]] = field(default_factory=list)  # name, role, endpoint, cert
    announcements: dict[str, tuple[bytes, bytes]] = field(
        default_factory=dict
    )  # name -> (body, sig)


@dataclass(frozen=True)
class Event:
    task_id: str
    seq: int
    time_ms: int
    kind: str
    party: str
    message: str
    state: str


class TaskStore(ABC):
    @abstractmethod
    def create(self, rec: TaskRecord) -> None:
        """Insert a new task; raises KeyError if the id exists."""

    @abstractmethod
    def get(self, task_id: str) -> TaskRecord | None:
        """The task without its results (which may be large); see :meth:`results`."""

    @abstractmethod
    def results(self, task_id: str) -> list[tuple[str, bytes, bytes]]:
        """The encrypted results delivered so far, ``(party, nonce, ciphertext)`` by party."""

    @abstractmethod
    def set_state(self, task_id: str, state: str, reason: str = "") -> None: ...

    @abstractmethod
    def set_participants(self, task_id: str, participants: list[dict[str, str]]) -> None: ...

    @abstractmethod
    def add_announcement(self, task_id: str, party: str, body: bytes, signature: bytes) -> None: ...

    @abstractmethod
    def add_result(self, task_id: str, party: str, nonce: bytes, ciphertext: bytes) -> None: ...

    @abstractmethod
    def add_event(self, task_id: str, kind: str, party: str, message: str, state: str) -> Event: ...

    @abstractmethod
    def events(self, task_id: str, after_seq: int = 0) -> list[Event]: ...

    @abstractmethod
    def unfinished(self) -> list[str]: ...

    @abstractmethod
    def close(self) -> None: ...

    def interrupt_unfinished(self, reason: str) -> list[str]:
        """Mark every unfinished task failed (called when a hub starts); returns their ids."""
        ids = self.unfinished()
        for task_id in ids:
            rec = self.get(task_id)
            was = rec.state if rec else "?"
            self.set_state(task_id, "failed", f"{reason} (the task was {was})")
            self.add_event(task_id, "failed", "", f"{reason} (the task was {was})", "failed")
        return ids


SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, client TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
    manifest BLOB NOT NULL, signature BLOB NOT NULL, client_cert BLOB NOT NULL,
    program BLOB NOT NULL,
    program_sha256 TEXT NOT NULL, endpoints TEXT NOT NULL, created_ms INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL, participants TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS announcements (
    task_id TEXT NOT NULL, party TEXT NOT NULL, body BLOB NOT NULL, signature BLOB NOT NULL,
    PRIMARY KEY (task_id, party)
);
CREATE TABLE IF NOT EXISTS results (
    task_id TEXT NOT NULL, party TEXT NOT NULL, nonce BLOB NOT NULL,
    ciphertext BLOB, size INTEGER NOT NULL, PRIMARY KEY (task_id, party)
);
CREATE TABLE IF NOT EXISTS events (
    task_id TEXT NOT NULL, seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, kind TEXT NOT NULL,
    party TEXT NOT NULL, message TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (task_id, seq)
);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state);
"""


class SqliteTaskStore(TaskStore):
    """SQLite in WAL mode; one connection guarded by a lock (the hub's write rate is low).
    Results above :data:`INLINE_RESULT_MAX` bytes live in files under ``<path>.results/``."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.blobs = Path(f"{self.path}.results")
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def create(self, rec: TaskRecord) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        rec.task_id,
                        rec.client,
                        rec.state,
                        rec.reason,
                        rec.manifest,
                        rec.signature,
                        rec.client_cert,
                        rec.program,
                        rec.program_sha256,
                        json.dumps(rec.endpoints),
                        rec.created_ms,
                        rec.deadline_ms,
                        rec.finished_ms,
                        json.dumps(rec.participants),
                    ),
                )
            except sqlite3.IntegrityError:
                raise KeyError(rec.task_id) from None

    def get(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT task_id, client, state, manifest, signature, client_cert, program, "
                "program_sha256, endpoints, created_ms, deadline_ms, reason, finished_ms, "
                "participants "
                "FROM tasks WHERE task_id = ?",
                (task_id,),
            ).fetchone()
            if row is None:
                return None
            anns = self._db.execute(
                "SELECT party, body, signature FROM announcements WHERE task_id = ?", (task_id,)
            ).fetchall()
        return TaskRecord(
            task_id=row[0],
            client=row[1],
            state=row[2],
            manifest=row[3],
            signature=row[4],
            client_cert=row[5],
            program=row[6],
            program_sha256=row[7],
            endpoints=json.loads(row[8]),
            created_ms=row[9],
            deadline_ms=row[10],
            reason=row[11],
            finished_ms=row[12],
            participants=json.loads(row[13]),
            announcements={p: (bytes(b), bytes(s)) for p, b, s in anns},
        )

    def results(self, task_id: str) -> list[tuple[str, bytes, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT party, nonce, ciphertext, size FROM results WHERE task_id = ? "
                "ORDER BY party",
                (task_id,),
            ).fetchall()
        out = []
        for party, nonce, inline, size in rows:
            blob = bytes(inline) if inline is not None else self._read_blob(task_id, party)
            if len(blob) != size:
                raise OSError(
                    f"result of {party!r} for task {task_id} is {len(blob)} bytes on disk, "
                    f"{size} recorded"
                )
            out.append((party, bytes(nonce), blob))
        return out

    def _blob_path(self, task_id: str, party: str) -> Path:
        # the hub has validated both (hex task ids, certificate names); checked again here since
        # they become a path
        if not (SAFE_NAME.match(task_id) and SAFE_NAME.match(party)):
            raise ValueError(f"refusing result file name {task_id!r}/{party!r}")
        return self.blobs / task_id / f"{party}.bin"

    def _read_blob(self, task_id: str, party: str) -> bytes:
        try:
            return self._blob_path(task_id, party).read_bytes()
        except FileNotFoundError:
            return b""  # reported as a size mismatch

    def set_state(self, task_id: str, state: str, reason: str = "") -> None:
        if state not in STATES:
            raise ValueError(f"unknown task state {state!r}")
        finished = now_ms() if state in TERMINAL else 0
        with self._lock:
            self._db.execute(
                "UPDATE tasks SET state = ?, reason = ?, finished_ms = ? WHERE task_id = ?",
                (state, reason, finished, task_id),
            )

    def set_participants(self, task_id: str, participants: list[dict[str, str]]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE tasks SET participants = ? WHERE task_id = ?",
                (json.dumps(participants), task_id),
            )

    def add_announcement(self, task_id: str, party: str, body: bytes, signature: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO announcements VALUES (?,?,?,?)",
                (task_id, party, body, signature),
            )

    def add_result(self, task_id: str, party: str, nonce: bytes, ciphertext: bytes) -> None:
        inline: bytes | None = ciphertext
        if len(ciphertext) > INLINE_RESULT_MAX:
            path = self._blob_path(task_id, party)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            with open(tmp, "wb") as f:
                f.write(ciphertext)
            os.replace(tmp, path)
            inline = None
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?)",
                (task_id, party, nonce, inline, len(ciphertext)),
            )

    def add_event(self, task_id: str, kind: str, party: str, message: str, state: str) -> Event:
        with self._lock:
            (last,) = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE task_id = ?", (task_id,)
            ).fetchone()
            ev = Event(task_id, int(last) + 1, now_ms(), kind, party, message, state)
            self._db.execute(
                "INSERT INTO events VALUES (?,?,?,?,?,?,?)",
                (ev.task_id, ev.seq, ev.time_ms, ev.kind, ev.party, ev.message, ev.state),
            )
        return ev

    def events(self, task_id: str, after_seq: int = 0) -> list[Event]:
        with self._lock:
            rows = self._db.execute(
                "SELECT task_id, seq, time_ms, kind, party, message, state FROM events "
                "WHERE task_id = ? AND seq > ? ORDER BY seq",
                (task_id, after_seq),
            ).fetchall()
        return [Event(*r) for r in rows]

    def unfinished(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT task_id FROM tasks WHERE state NOT IN ('succeeded','failed','cancelled') "
                "ORDER BY created_ms"
            ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
