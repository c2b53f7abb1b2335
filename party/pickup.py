"""Direct result pickup: the client fetches a sealed result from the recipient party itself.

A party that finishes a task with large outputs for the client (see :func:`worth_picking_up`)
seals them to the client's key (as always), keeps the ciphertext here, and reports ``done`` to
the hub with the result's nonce but without the ciphertext. The client, on seeing that party's
``party_done`` event, dials the party's data-plane port with its own certificate, takes the
ciphertext in one raw TLS transfer and acknowledges it with one byte. Then the party tells the
hub the result was delivered, and the hub never holds a copy of it: an 8 MB result costs one
transfer instead of three (party -> hub, hub -> disk, hub -> client).

The hub's copy is the fallback: a party uploads the ciphertext when the client has not taken it
within :data:`PICKUP_HOLD_S` of ``done`` (a client that submitted and went away, a firewall
between the client and the party), when a pickup broke before the acknowledgement, and when the
daemon shuts down with results still held. Whatever goes wrong on the client's side (a
relay-only party, a refused connection, an evicted entry), it falls back to that copy.

Only the task's client (its certificate name, checked against the signed manifest) can take a
result, each at most once; it is authenticated ciphertext sealed to that client's per-task key,
so the pickup path adds no trust: the client verifies it exactly as it verifies the hub's copy.

Wire: the client sends a :class:`~smc.proto.v1.peer_pb2.PeerHello` (4-byte length first) naming
the task, itself as sender and the party as receiver; the party answers with one frame (8-byte
length, then the 12-byte nonce and the ciphertext); the client answers :data:`ACK` once it has
the whole frame, and both close.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from smc.hub.pki import CertificateError, Credentials
from smc.hub.tls import peer_identity, recv_exact
from smc.proto.v1 import peer_pb2

PICKUP_MIN_ELEMENTS = 8192  # 64 KiB of values: below that a pickup (a TLS handshake) costs more
PICKUP_TTL_S = 300.0
PICKUP_HOLD_S = 2.0  # after "done": not taken by then, the party uploads the hub's copy
PICKUP_MAX_BYTES = 1 << 30  # results kept at once; beyond that the client uses the hub's copy
MAX_RESULT_BYTES = 1 << 30
NONCE_BYTES = 12
ACK = b"\x06"  # the client has the whole result

Settle = Callable[[bool], None]  # called once: True = delivered to the client, False = upload


def worth_picking_up(elements: int) -> bool:
    """Whether a party's outputs (``elements`` values in all) go by direct pickup; party and
    client both apply this, to the outputs and to the program's output shapes respectively."""
    return elements >= PICKUP_MIN_ELEMENTS


class PickupError(Exception):
    """The result could not be picked up directly (the caller falls back to the hub)."""


@dataclass
class _Entry:
    client: str
    nonce: bytes
    ciphertext: bytes
    expires: float
    settle: Settle | None = None  # set by hold()
    outcome: bool | None = None  # decided before hold() was called
    settled: bool = False
    timer: threading.Timer | None = field(default=None, repr=False)


class Pickup:
    """A result handed to a pickup connection: the sender reports how the transfer ended."""

    def __init__(self, store: PickupStore, task_id: str, entry: _Entry) -> None:
        self._store = store
        self._task_id = task_id
        self._entry = entry
        self.nonce = entry.nonce
        self.ciphertext = entry.ciphertext

    def delivered(self, ok: bool) -> None:
        """The client acknowledged the whole result (True), or the transfer broke (False: the
        party uploads the hub's copy, which the client then falls back to)."""
        self._store._decide(self._task_id, self._entry, ok)


class PickupStore:
    """Sealed results waiting for their client, bounded in bytes and time.

    Each result is settled exactly once: delivered to its client, or handed back for upload to
    the hub (not taken within ``hold_s`` of :meth:`hold`, a broken transfer, :meth:`flush`)."""

    def __init__(
        self,
        max_bytes: int = PICKUP_MAX_BYTES,
        ttl_s: float = PICKUP_TTL_S,
        hold_s: float = PICKUP_HOLD_S,
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.hold_s = hold_s
        self._items: dict[str, _Entry] = {}  # waiting for their client
        self._unsettled: dict[str, _Entry] = {}  # waiting, or taken but not yet settled
        self._bytes = 0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        for task_id in [t for t, e in self._items.items() if e.expires <= now]:
            self._bytes -= len(self._items.pop(task_id).ciphertext)
        for task_id in [t for t, e in self._unsettled.items() if e.expires <= now]:
            del self._unsettled[task_id]  # never held (its "done" was not sent)

    def put(self, task_id: str, client: str, nonce: bytes, ciphertext: bytes) -> bool:
        """Keep a result for ``client``; False (nothing kept) when it does not fit."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            if self._bytes + len(ciphertext) > self.max_bytes:
                return False
            entry = _Entry(client, nonce, ciphertext, now + self.ttl_s)
            self._items[task_id] = entry
            self._unsettled[task_id] = entry
            self._bytes += len(ciphertext)
            return True

    def hold(self, task_id: str, settle: Settle) -> None:
        """Start the hold of ``task_id``'s result (call after reporting ``done``): ``settle``
        is called once, with True when the client acknowledged it, or False (upload it) when
        it was not taken within ``hold_s``, a transfer broke, or the store is flushed."""
        with self._lock:
            entry = self._unsettled.get(task_id)
            if entry is None or entry.settle is not None:
                return
            entry.settle = settle
            outcome = entry.outcome
            if outcome is None:
                entry.timer = threading.Timer(self.hold_s, self._decide, (task_id, entry, False))
                entry.timer.daemon = True
                entry.timer.start()
        if outcome is not None:
            self._decide(task_id, entry, outcome)

    def _decide(self, task_id: str, entry: _Entry, delivered: bool) -> None:
        with self._lock:
            if entry.settled:
                return
            if entry.settle is None:  # not held yet: hold() settles with the first outcome
                if entry.outcome is None:
                    entry.outcome = delivered
                return
            entry.settled = True
            if self._unsettled.get(task_id) is entry:
                del self._unsettled[task_id]
            settle = entry.settle
            if entry.timer is not None:
                entry.timer.cancel()
        settle(delivered)

    def take(self, task_id: str, client: str) -> Pickup | None:
        """``task_id``'s result if ``client`` is its client; removed once taken."""
        with self._lock:
            self._expire(time.monotonic())
            entry = self._items.get(task_id)
            if entry is None or entry.client != client:
                return None
            del self._items[task_id]
            self._bytes -= len(entry.ciphertext)
            if entry.timer is not None:  # the transfer settles it now
                entry.timer.cancel()
        return Pickup(self, task_id, entry)

    def flush(self) -> None:
        """Settle every held result as undelivered (the daemon is stopping: upload them)."""
        with self._lock:
            held = [(t, e) for t, e in self._unsettled.items() if e.settle is not None]
        for task_id, entry in held:
            self._decide(task_id, entry, False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def _recv_exact(sock: ssl.SSLSocket, n: int) -> bytearray:
    buf = bytearray(n)
    if recv_exact(sock, memoryview(buf)) < n:
        raise PickupError("the party closed the connection (no result to pick up?)")
    return buf


def fetch(
    creds: Credentials,
    ctx: ssl.SSLContext,
    endpoint: str,
    *,
    task_id: str,
    party: str,
    timeout: float = 30.0,
) -> tuple[bytes, bytearray]:
    """Take ``party``'s sealed result of ``task_id`` from its data-plane ``endpoint``:
    (nonce, ciphertext), the ciphertext read straight into its buffer. Raises
    :class:`PickupError` on any failure."""
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=3.0) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with ctx.wrap_socket(raw) as sock:
                sock.settimeout(timeout)
                ident = peer_identity(sock, creds.ca_pem)
                if ident.name != party:
                    raise PickupError(f"{endpoint} presented {ident.name!r}, not {party!r}")
                hello = peer_pb2.PeerHello(
                    version=1, task_id=task_id, sender=creds.identity.name, receiver=party
                ).SerializeToString()
                sock.sendall(struct.pack("<I", len(hello)) + hello)
                (size,) = struct.unpack("<Q", bytes(_recv_exact(sock, 8)))
                if not NONCE_BYTES < size <= MAX_RESULT_BYTES + NONCE_BYTES:
                    raise PickupError(f"{party!r} announced a result of {size} bytes")
                nonce = bytes(_recv_exact(sock, NONCE_BYTES))
                ciphertext = _recv_exact(sock, size - NONCE_BYTES)
                sock.sendall(ACK)
    except (OSError, ssl.SSLError, CertificateError, ValueError) as exc:
        raise PickupError(f"cannot pick up the result of {party!r} at {endpoint}: {exc}") from None
    return nonce, ciphertext
