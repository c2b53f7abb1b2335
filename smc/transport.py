"""The transport interface and its in-process implementation.

Protocol code never knows which transport it runs over. A transport moves opaque frames between
numbered endpoints (parties 0..n-1, then the dealer when the suite has one) and counts exactly what
it moves. The in-memory network can emulate a WAN: a one-way latency and a per-link bandwidth cap,
so that round-sensitive behaviour can be measured on one machine.
"""

from __future__ import annotations

import queue
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from typing_extensions import Buffer

from smc.errors import TransportError

Frame = bytes | bytearray | memoryview


@dataclass
class TrafficStats:
    """What one endpoint sent: bytes and frames per destination."""

    bytes_sent: dict[int, int] = field(default_factory=dict)
    frames_sent: dict[int, int] = field(default_factory=dict)

    def record(self, peer: int, nbytes: int) -> None:
        self.bytes_sent[peer] = self.bytes_sent.get(peer, 0) + nbytes
        self.frames_sent[peer] = self.frames_sent.get(peer, 0) + 1

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_sent.values())


class Transport(ABC):
    """One endpoint's view of the network: send a frame to a peer, receive the next from a peer.

    Frames from one peer arrive in the order they were sent. ``recv`` raises
    :class:`~smc.errors.TransportError` when the peer is gone or ``timeout`` seconds pass.
    """

    def __init__(self, me: int, endpoints: int) -> None:
        self.me = me
        self.endpoints = endpoints
        self.stats = TrafficStats()

    @abstractmethod
    def send(self, peer: int, frame: Buffer) -> None: ...

    @abstractmethod
    def recv(self, peer: int, timeout: float | None = None) -> Buffer: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; further sends or receives fail."""


_CLOSED = object()


@dataclass(frozen=True)
class NetemConfig:
    """Emulated network: one-way latency in seconds and a per-link bandwidth cap in bits/s."""

    latency_s: float = 0.0
    bandwidth_bps: float | None = None


class InMemoryNetwork:
    """A full mesh of in-process links between ``endpoints`` endpoints (thread-safe).

    Frames are passed by reference (zero copy); the sender must not mutate a buffer after sending
    it, which the executor guarantees by building a fresh frame for every send.
    """

    def __init__(self, endpoints: int, netem: NetemConfig | None = None) -> None:
        self.endpoints = endpoints
        self.netem = netem or NetemConfig()
        self._queues: dict[tuple[int, int], queue.SimpleQueue[object]] = {
            (src, dst): queue.SimpleQueue()
            for src in range(endpoints)
            for dst in range(endpoints)
            if src != dst
        }
        self._link_free_at: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()
        self.closed = threading.Event()

    def endpoint(self, me: int) -> InMemoryTransport:
        return InMemoryTransport(self, me)

    def close(self) -> None:
        """Abort: wake every blocked receiver with a TransportError."""
        self.closed.set()
        for q in self._queues.values():
            q.put(_CLOSED)

    def _deliver_at(self, src: int, dst: int, nbytes: int) -> float:
        now = time.perf_counter()
        bw = self.netem.bandwidth_bps
        if bw is None:
            return now + self.netem.latency_s
        with self._lock:
            start = max(now, self._link_free_at.get((src, dst), 0.0))
            done = start + nbytes * 8 / bw
            self._link_free_at[(src, dst)] = done
        return done + self.netem.latency_s


class InMemoryTransport(Transport):
    def __init__(self, net: InMemoryNetwork, me: int) -> None:
        super().__init__(me, net.endpoints)
        self._net = net

    def _link(self, src: int, dst: int) -> queue.SimpleQueue[object]:
        try:
            return self._net._queues[(src, dst)]
        except KeyError:
            raise TransportError(f"endpoint {self.me}: no link {src} -> {dst}") from None

    def send(self, peer: int, frame: Buffer) -> None:
        if self._net.closed.is_set():
            raise TransportError(f"endpoint {self.me}: network closed, cannot send to {peer}")
        nbytes = memoryview(frame).nbytes
        self.stats.record(peer, nbytes)
        emulated = self._net.netem.latency_s > 0 or self._net.netem.bandwidth_bps is not None
        item: object = (self._net._deliver_at(self.me, peer, nbytes), frame) if emulated else frame
        self._link(self.me, peer).put(item)

    def recv(self, peer: int, timeout: float | None = None) -> Buffer:
        try:
            item = self._link(peer, self.me).get(timeout=timeout)
        except queue.Empty:
            raise TransportError(
                f"endpoint {self.me}: no frame from endpoint {peer} within {timeout} s"
            ) from None
        if item is _CLOSED:
            raise TransportError(f"endpoint {self.me}: network closed while waiting for {peer}")
        if isinstance(item, tuple):
            deliver_at, frame = item
            delay = deliver_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            return frame  # type: ignore[no-any-return]
        return item  # type: ignore[return-value]
