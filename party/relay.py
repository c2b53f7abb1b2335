"""Frames relayed through the hub, end-to-end encrypted between the two parties.

A party daemon keeps one ``Relay`` stream open to each hub. Sending a transport frame to a peer
that cannot be dialled directly splits it into chunks of at most :data:`CHUNK` bytes, each sealed
with the pair's direction key (:class:`~smc.party.keyex.ChunkSealer`); the hub forwards the
ciphertext to the peer's stream, naming the sender from the sender's certificate. The receiver
opens the chunks strictly in sequence and reassembles the frame onto the task's inbox.

What the hub sees: task id, sender, receiver, sequence numbers and sizes. Not the content.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator

import grpc
from smc.party.dataplane import Inbox, PeerGone
from smc.party.keyex import ChunkOpener, ChunkSealer, KeyExchangeError
from smc.proto.v1 import hub_pb2, hub_pb2_grpc

from smc.errors import TransportError

log = logging.getLogger("smc.party.relay")

CHUNK = 1 << 20
OUTBOX_CHUNKS = 64


class RelayStream:
    """One party's long-lived ``Relay`` stream to one hub."""

    def __init__(
        self, stub: hub_pb2_grpc.HubStub, on_frame: Callable[[hub_pb2.RelayFrame], None]
    ) -> None:
        self._stub = stub
        self._on_frame = on_frame
        self._outbox: queue.Queue[hub_pb2.RelayFrame | None] = queue.Queue(OUTBOX_CHUNKS)
        self._call: grpc.Future | None = None
        self._thread: threading.Thread | None = None
        self.broken = threading.Event()

    def start(self) -> None:
        call = self._stub.Relay(self._requests())
        self._call = call
        self._thread = threading.Thread(
            target=self._read, args=(call,), daemon=True, name="relay-in"
        )
        self._thread.start()

    def _requests(self) -> Iterator[hub_pb2.RelayFrame]:
        yield hub_pb2.RelayFrame()  # opens the stream at the hub even before the first frame
        while True:
            item = self._outbox.get()
            if item is None:
                return
            yield item

    def _read(self, call: Iterator[hub_pb2.RelayFrame]) -> None:
        try:
            for frame in call:
                self._on_frame(frame)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                log.warning("relay stream ended", extra={"error": str(exc.details())})
        finally:
            self.broken.set()

    def send(self, frame: hub_pb2.RelayFrame, timeout: float | None) -> None:
        if self.broken.is_set():
            raise TransportError("the relay stream to the hub is down")
        try:
            self._outbox.put(frame, timeout=timeout)
        except queue.Full:
            raise TransportError("the hub relay did not accept frames in time") from None

    def stop(self) -> None:
        with contextlib.suppress(queue.Full):
            self._outbox.put_nowait(None)
        if self._call is not None:
            self._call.cancel()


class RelayLink:
    """The sending half of one relayed link (one task, one peer)."""

    def __init__(
        self,
        stream: RelayStream,
        sealer: ChunkSealer,
        task_id: str,
        peer: str,
        timeout: Callable[[], float | None],
    ) -> None:
        self._stream = stream
        self._sealer = sealer
        self._task_id = task_id
        self.peer = peer
        self._timeout = timeout
        self._lock = threading.Lock()

    def send(self, frame: memoryview) -> None:
        with self._lock:
            total = frame.nbytes
            pos = 0
            while True:
                end = min(pos + CHUNK, total)
                last = end == total
                seq, ct = self._sealer.seal(frame[pos:end], last)
                self._stream.send(
                    hub_pb2.RelayFrame(
                        task_id=self._task_id, peer=self.peer, seq=seq, last=last, payload=ct
                    ),
                    self._timeout(),
                )
                pos = end
                if last:
                    return

    def close(self) -> None:
        pass


class RelayReceiver:
    """Opens one peer's relayed chunks for one task and puts whole frames on the inbox."""

    def __init__(self, opener: ChunkOpener, inbox: Inbox, peer: str) -> None:
        self._opener = opener
        self._inbox = inbox
        self._peer = peer
        self._parts: list[bytes] = []
        self._failed = False

    def feed(self, frame: hub_pb2.RelayFrame) -> None:
        if self._failed:
            return
        if frame.error:
            self._fail(f"the hub could not relay frames to or from {self._peer!r}: {frame.error}")
            return
        try:
            self._parts.append(self._opener.open(frame.seq, frame.last, frame.payload))
        except KeyExchangeError as exc:
            self._fail(str(exc))
            return
        if frame.last:
            data = b"".join(self._parts)
            self._parts = []
            self._inbox.put(self._peer, data)

    def _fail(self, reason: str) -> None:
        self._failed = True
        self._inbox.put(self._peer, PeerGone(reason))
