"""Relaying opaque, end-to-end encrypted chunks between party daemons, over the hub's relay port.

Each daemon holds two raw mTLS connections to the relay port: "up" carries its chunks to the hub,
"down" the hub's chunks to it (one direction per connection: an ``ssl`` socket must not be read
and written by two threads at once). A chunk from sender S for task T addressed to R is forwarded
only when T is running and both S and R are endpoints of T; the hub stamps the sender from S's
certificate, so a party cannot pose as another. The payload is ciphertext under a key only S and
R hold (see ``smc.party.keyex``): the hub learns sizes and timing, nothing more.

Why not a gRPC stream: relaying through Python gRPC cost the hub about 2.6 CPU-seconds per GB
here (every chunk crosses two HTTP/2 streams and several copies); raw TLS costs about 2, and the
payload is never parsed: it follows a small header on the wire (see ``RelayHello`` in
``hub.proto``) and is written out as it came.

Back-pressure: each receiver has a bounded queue; a sender blocks (and so does its connection)
while the receiver's queue is full, and gets an error frame if the receiver is gone.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import ssl
import struct
import threading
from collections.abc import Callable

from smc.hub.pki import CertificateError, Credentials
from smc.hub.tls import hard_close, keep_alive, peer_identity, recv_exact, ssl_context, wake
from smc.proto.v1 import hub_pb2

log = logging.getLogger("smc.hub.relay")

MAX_PAYLOAD = (1 << 20) + 64  # one chunk plus the AEAD tag
MAX_HEADER = 1024  # task id, peer name, sequence number, error text
MAX_HELLO = 256
QUEUE_CHUNKS = 64
PUT_TIMEOUT_S = 30.0
ATTACH_WAIT_S = 5.0
HANDSHAKE_TIMEOUT_S = 10.0
_LENGTHS = struct.Struct("<II")

Authorise = Callable[[str, str, str], str | None]  # (task, sender, receiver) -> refusal or None
Tap = Callable[[str, str, str, bytes], None]  # observer of relayed payloads (tests, metrics)
Chunk = tuple[hub_pb2.RelayFrame, bytes | bytearray]  # header (payload empty), payload


class RelayWireError(Exception):
    """A relay connection broke the wire format (the connection is dropped)."""


# ----------------------------------------------------------------------------------- the wire


def _recv_exact(sock: ssl.SSLSocket, n: int) -> bytearray | None:
    """``n`` bytes (not copied again: payloads are a megabyte), or None when the peer closed
    the connection before the first of them."""
    buf = bytearray(n)
    got = recv_exact(sock, memoryview(buf))
    if got == 0 and n:
        return None
    if got < n:
        raise RelayWireError("the connection closed in the middle of a chunk")
    return buf


def write_chunk(
    sock: ssl.SSLSocket, header: hub_pb2.RelayFrame, payload: bytes | bytearray
) -> None:
    head = header.SerializeToString()
    sock.sendall(_LENGTHS.pack(len(head), len(payload)) + head)
    if payload:
        sock.sendall(payload)


def read_chunk(sock: ssl.SSLSocket) -> Chunk | None:
    """The next chunk, or None at a clean end of the connection."""
    lengths = _recv_exact(sock, _LENGTHS.size)
    if lengths is None:
        return None
    hlen, plen = _LENGTHS.unpack(lengths)
    if hlen > MAX_HEADER or plen > MAX_PAYLOAD:
        raise RelayWireError(
            f"relayed chunk of {plen} bytes (header {hlen}) is above the limit "
            f"{MAX_PAYLOAD} ({MAX_HEADER})"
        )
    head = _recv_exact(sock, hlen) if hlen else bytearray()
    payload = _recv_exact(sock, plen) if plen else bytearray()
    if head is None or payload is None:
        raise RelayWireError("the connection closed in the middle of a chunk")
    try:
        header = hub_pb2.RelayFrame.FromString(bytes(head))
    except Exception as exc:  # protobuf's DecodeError; anything else is as malformed
        raise RelayWireError(f"malformed relay header: {exc}") from None
    if header.payload:
        raise RelayWireError("a relay header carries a payload of its own")
    return header, payload


def write_hello(sock: ssl.SSLSocket, direction: str) -> None:
    body = hub_pb2.RelayHello(version=1, direction=direction).SerializeToString()
    sock.sendall(struct.pack("<I", len(body)) + body)


def read_hello(sock: ssl.SSLSocket) -> str:
    raw = _recv_exact(sock, 4)
    if raw is None:
        raise RelayWireError("the connection closed before its hello")
    (size,) = struct.unpack("<I", raw)
    if size > MAX_HELLO:
        raise RelayWireError(f"relay hello of {size} bytes")
    body = _recv_exact(sock, size) if size else bytearray()
    try:
        hello = hub_pb2.RelayHello.FromString(bytes(body or b""))
    except Exception as exc:
        raise RelayWireError(f"malformed relay hello: {exc}") from None
    if hello.version != 1 or hello.direction not in ("up", "down"):
        raise RelayWireError(f"unsupported relay hello {hello.version}/{hello.direction!r}")
    return str(hello.direction)


# --------------------------------------------------------------------------------- the switch


class RelaySwitch:
    """Routes chunks between the parties' "down" queues; knows nothing of sockets."""

    def __init__(self, authorise: Authorise, tap: Tap | None = None) -> None:
        self._authorise = authorise
        self._tap = tap
        self._out: dict[str, tuple[int, queue.Queue[Chunk | None]]] = {}
        self._gen = 0
        self._cond = threading.Condition()
        self.bytes_relayed = 0

    def open(self, name: str) -> tuple[int, queue.Queue[Chunk | None]]:
        with self._cond:
            old = self._out.get(name)
            if old is not None:
                with contextlib.suppress(queue.Full):
                    old[1].put_nowait(None)
            self._gen += 1
            entry: tuple[int, queue.Queue[Chunk | None]] = (self._gen, queue.Queue(QUEUE_CHUNKS))
            self._out[name] = entry
            self._cond.notify_all()
            return entry

    def close(self, name: str, gen: int) -> None:
        with self._cond:
            cur = self._out.get(name)
            if cur is not None and cur[0] == gen:
                del self._out[name]

    def close_all(self) -> None:
        with self._cond:
            for _, q in self._out.values():
                with contextlib.suppress(queue.Full):
                    q.put_nowait(None)
            self._out.clear()

    def _target(self, name: str) -> queue.Queue[Chunk | None] | None:
        with self._cond:
            self._cond.wait_for(lambda: name in self._out, timeout=ATTACH_WAIT_S)
            entry = self._out.get(name)
            return entry[1] if entry else None

    def forward(
        self, sender: str, header: hub_pb2.RelayFrame, payload: bytes | bytearray
    ) -> str | None:
        """Route one chunk; returns a reason when it cannot be delivered."""
        if len(payload) > MAX_PAYLOAD:
            return f"relayed chunk of {len(payload)} bytes is above the {MAX_PAYLOAD} limit"
        refusal = self._authorise(header.task_id, sender, header.peer)
        if refusal is not None:
            return refusal
        target = self._target(header.peer)
        if target is None:
            return f"{header.peer!r} has no relay connection open"
        if self._tap is not None:
            self._tap(header.task_id, sender, header.peer, bytes(payload))
        out = hub_pb2.RelayFrame(
            task_id=header.task_id,
            peer=sender,
            seq=header.seq,
            last=header.last,
            frame_bytes=header.frame_bytes,
        )
        try:
            target.put((out, payload), timeout=PUT_TIMEOUT_S)
        except queue.Full:
            return f"{header.peer!r} is not reading its relay connection"
        self.bytes_relayed += len(payload)
        return None

    def error_to(self, name: str, task_id: str, peer: str, reason: str) -> None:
        with self._cond:
            entry = self._out.get(name)
        if entry is not None:
            with contextlib.suppress(queue.Full):
                entry[1].put(
                    (hub_pb2.RelayFrame(task_id=task_id, peer=peer, error=reason[:512]), b""),
                    timeout=1.0,
                )


# --------------------------------------------------------------------------------- the server


class RelayServer:
    """The hub's relay port: accepts the parties' mTLS connections and serves each in a thread."""

    def __init__(self, switch: RelaySwitch, creds: Credentials, listen: str) -> None:
        self.switch = switch
        self._ca = creds.ca_pem
        self._ctx = ssl_context(creds, server=True)
        host, _, port = listen.rpartition(":")
        self._listener = socket.create_server((host.strip("[]"), int(port)))
        self.port: int = self._listener.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="relay-accept")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        wake(self._listener)
        with contextlib.suppress(OSError):
            self._listener.close()
        self.switch.close_all()
        with self._lock:
            for conn in self._conns:
                wake(conn)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                raw, _ = self._listener.accept()
            except OSError:
                if self._stopped.is_set():
                    return
                continue
            with self._lock:
                self._conns.add(raw)
            threading.Thread(target=self._serve, args=(raw,), daemon=True, name="relay").start()

    def _serve(self, raw: socket.socket) -> None:
        sock: socket.socket = raw
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            keep_alive(raw)
            raw.settimeout(HANDSHAKE_TIMEOUT_S)
            tls = self._ctx.wrap_socket(raw, server_side=True)  # detaches ``raw``
            sock = tls
            with self._lock:  # stop() must reach the TLS socket, which now owns the descriptor
                self._conns.discard(raw)
                self._conns.add(tls)
            if self._stopped.is_set():
                return
            name = peer_identity(tls, self._ca).name
            direction = read_hello(tls)
            tls.settimeout(None)
            if direction == "up":
                self._up(tls, name)
            else:
                self._down(tls, name)
        except (OSError, ssl.SSLError, CertificateError, RelayWireError) as exc:
            if not self._stopped.is_set():
                log.warning("relay connection dropped", extra={"error": str(exc)})
        finally:
            with self._lock:
                self._conns.discard(raw)
                self._conns.discard(sock)
            hard_close(sock)

    def _up(self, sock: ssl.SSLSocket, name: str) -> None:
        """Chunks from ``name``: route each, or tell ``name`` why it could not be."""
        while (chunk := read_chunk(sock)) is not None:
            header, payload = chunk
            refusal = self.switch.forward(name, header, payload)
            if refusal is not None:
                self.switch.error_to(name, header.task_id, header.peer, refusal)

    def _down(self, sock: ssl.SSLSocket, name: str) -> None:
        """Chunks for ``name``, until it reconnects (a newer "down" replaces this one)."""
        gen, outbox = self.switch.open(name)
        try:
            while (item := outbox.get()) is not None:
                write_chunk(sock, *item)
        finally:
            self.switch.close(name, gen)
