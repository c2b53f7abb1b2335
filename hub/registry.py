"""The hub's registry of party daemons: identity, data-plane endpoint, datasets, liveness.

A daemon is *online* while its ``Attach`` stream is open and its heartbeats arrive; it goes
offline when the stream ends or no heartbeat arrives within five intervals, and every unfinished
task it takes part in then fails with that reason (see :mod:`smc.hub.core`).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from smc.proto.v1 import hub_pb2


@dataclass
class PartyEntry:
    name: str
    role: str
    cert_pem: bytes
    endpoint: str = ""
    datasets: tuple[str, ...] = ()
    suites: tuple[str, ...] = ()
    last_seen: float = field(default_factory=time.monotonic)
    last_seen_ms: int = 0
    audit_head: str = ""
    inbox: queue.Queue[hub_pb2.PartyCommand | None] | None = None
    generation: int = 0

    @property
    def online(self) -> bool:
        return self.inbox is not None


class Registry:
    def __init__(self) -> None:
        self._parties: dict[str, PartyEntry] = {}
        self._lock = threading.Lock()

    def register(
        self, name: str, role: str, cert_pem: bytes, req: hub_pb2.RegisterRequest
    ) -> PartyEntry:
        with self._lock:
            entry = self._parties.get(name)
            if entry is None:
                entry = PartyEntry(name, role, cert_pem)
                self._parties[name] = entry
            entry.role, entry.cert_pem = role, cert_pem
            entry.endpoint = req.endpoint
            entry.datasets = tuple(req.datasets)
            entry.suites = tuple(req.suites)
            entry.last_seen = time.monotonic()
            entry.last_seen_ms = int(time.time() * 1000)
            return entry

    def attach(self, name: str) -> tuple[queue.Queue[hub_pb2.PartyCommand | None], int] | None:
        """A fresh command queue for ``name`` (replacing any older stream); None if unregistered."""
        with self._lock:
            entry = self._parties.get(name)
            if entry is None:
                return None
            if entry.inbox is not None:
                entry.inbox.put(None)  # ends the superseded stream
            entry.inbox = queue.Queue()
            entry.generation += 1
            entry.last_seen = time.monotonic()
            return entry.inbox, entry.generation

    def detach(self, name: str, generation: int) -> bool:
        """Mark offline if ``generation`` is still the current stream; True when it was."""
        with self._lock:
            entry = self._parties.get(name)
            if entry is None or entry.generation != generation or entry.inbox is None:
                return False
            entry.inbox = None
            return True

    def heartbeat(self, name: str, audit_head: str) -> bool:
        with self._lock:
            entry = self._parties.get(name)
            if entry is None:
                return False
            entry.last_seen = time.monotonic()
            entry.last_seen_ms = int(time.time() * 1000)
            if audit_head:
                entry.audit_head = audit_head
            return entry.online

    def send(self, name: str, command: hub_pb2.PartyCommand) -> bool:
        with self._lock:
            entry = self._parties.get(name)
            if entry is None or entry.inbox is None:
                return False
            entry.inbox.put(command)
            return True

    def get(self, name: str) -> PartyEntry | None:
        with self._lock:
            return self._parties.get(name)

    def all(self) -> list[PartyEntry]:
        with self._lock:
            return sorted(self._parties.values(), key=lambda e: e.name)

    def stale(self, timeout_s: float) -> list[tuple[str, int]]:
        """Online parties whose last heartbeat is older than ``timeout_s``."""
        now = time.monotonic()
        with self._lock:
            return [
                (e.name, e.generation)
                for e in self._parties.values()
                if e.inbox is not None and now - e.last_seen > timeout_s
            ]
