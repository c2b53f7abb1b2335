"""Relaying opaque, end-to-end encrypted chunks between party daemons.

Each daemon holds one ``Relay`` stream. A chunk from sender S for task T addressed to R is
forwarded only when T is running and both S and R are endpoints of T; the hub stamps the sender
from S's certificate, so a party cannot pose as another. The payload is ciphertext under a key
only S and R hold (see ``smc.party.keyex``): the hub learns sizes and timing, nothing more.

Back-pressure: each receiver has a bounded queue; a sender blocks (and so does its gRPC stream)
while the receiver's queue is full, and gets an error frame if the receiver is gone.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable

from smc.proto.v1 import hub_pb2

MAX_PAYLOAD = (1 << 20) + 64  # one chunk plus the AEAD tag
QUEUE_CHUNKS = 64
PUT_TIMEOUT_S = 30.0
ATTACH_WAIT_S = 5.0

Authorise = Callable[[str, str, str], str | None]  # (task, sender, receiver) -> refusal or None
Tap = Callable[[str, str, str, bytes], None]  # observer of relayed payloads (tests, metrics)


class RelaySwitch:
    def __init__(self, authorise: Authorise, tap: Tap | None = None) -> None:
        self._authorise = authorise
        self._tap = tap
        self._out: dict[str, tuple[int, queue.Queue[hub_pb2.RelayFrame | None]]] = {}
        self._gen = 0
        self._cond = threading.Condition()
        self.bytes_relayed = 0

    def open(self, name: str) -> tuple[int, queue.Queue[hub_pb2.RelayFrame | None]]:
        with self._cond:
            old = self._out.get(name)
            if old is not None:
                old[1].put(None)
            self._gen += 1
            entry: tuple[int, queue.Queue[hub_pb2.RelayFrame | None]] = (
                self._gen,
                queue.Queue(QUEUE_CHUNKS),
            )
            self._out[name] = entry
            self._cond.notify_all()
            return entry

    def close(self, name: str, gen: int) -> None:
        with self._cond:
            cur = self._out.get(name)
            if cur is not None and cur[0] == gen:
                del self._out[name]

    def _target(self, name: str) -> queue.Queue[hub_pb2.RelayFrame | None] | None:
        with self._cond:
            self._cond.wait_for(lambda: name in self._out, timeout=ATTACH_WAIT_S)
            entry = self._out.get(name)
            return entry[1] if entry else None

    def forward(self, sender: str, frame: hub_pb2.RelayFrame) -> str | None:
        """Route one chunk; returns a reason when it cannot be delivered."""
        if not frame.task_id and not frame.payload:
            return None  # stream-opening keepalive
        if len(frame.payload) > MAX_PAYLOAD:
            return f"relayed chunk of {len(frame.payload)} bytes is above the {MAX_PAYLOAD} limit"
        refusal = self._authorise(frame.task_id, sender, frame.peer)
        if refusal is not None:
            return refusal
        target = self._target(frame.peer)
        if target is None:
            return f"{frame.peer!r} has no relay stream open"
        if self._tap is not None:
            self._tap(frame.task_id, sender, frame.peer, frame.payload)
        out = hub_pb2.RelayFrame(
            task_id=frame.task_id,
            peer=sender,
            seq=frame.seq,
            last=frame.last,
            payload=frame.payload,
        )
        try:
            target.put(out, timeout=PUT_TIMEOUT_S)
        except queue.Full:
            return f"{frame.peer!r} is not reading its relay stream"
        self.bytes_relayed += len(frame.payload)
        return None

    def error_to(self, name: str, task_id: str, peer: str, reason: str) -> None:
        with self._cond:
            entry = self._out.get(name)
        if entry is not None:
            with contextlib.suppress(queue.Full):
                entry[1].put(
                    hub_pb2.RelayFrame(task_id=task_id, peer=peer, error=reason), timeout=1.0
                )
