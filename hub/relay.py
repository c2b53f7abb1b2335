"""Relaying opaque, end-to-end encrypted chunks between party daemons, over the hub's relay port.

Each daemon holds two raw mTLS connections to the relay port: "up" carries its chunks to the hub,
"down" the hub's chunks to it (one direction per connection: an ``ssl`` socket must not be read
and written by two threads at once). A chunk from sender S for task T addressed to R is forwarded
only when T is running and both S and R are endpoints of T; the hub stamps the sender from S's
certificate, so a party cannot pose as another. The payload is ciphertext under a key only S and
R hold (see ``smc.party.keyex``): the hub learns sizes and timing, nothing more.

Why not a gRPC stream: relaying through Python gRPC cost the hub about 2.6 CPU-seconds per GB
here (every chunk crosses two HTTP/2 streams and several copies); raw TLS costs about 2, a
sealed hop about 1, and the payload is never parsed: it follows a small header on the wire (see
``RelayHello`` in ``hub.proto``).

Two kinds of channel (the party chooses, per connection, in its hello; ``"sealed"`` is the
default, :data:`DEFAULT_CHANNEL`):

- **sealed**: the connection opens with the mTLS handshake (identities from the certificates),
  the hub sends a fresh 32-byte key under TLS, and both ends close the TLS layer. The connection
  then carries AES-256-GCM records under that key (:class:`SealedWire`): every byte of every
  header and payload is encrypted and authenticated, the nonce is the record's counter, so a
  record that was altered, replayed, reordered, dropped or injected is refused, and the key
  moves on every 65,536 records. These are TLS 1.3's record-layer guarantees, with keys from the
  mTLS session; the records are a megabyte instead of TLS's 16 KiB, so the hub spends one
  AES-GCM call and one write per chunk instead of 64 records, each with its own system calls.
  A relayed multiplication runs as fast as a direct one on two cores (docs/deployment.md).
- **tls**: the connection stays under TLS (OpenSSL's records) for every byte; the hub decrypts
  every byte it receives and encrypts every byte it sends, in 16 KiB records. About twice the
  hub's CPU per relayed byte: for deployments that require TLS records on the wire.

Back-pressure: each receiver has a bounded queue; a sender blocks (and so does its connection)
while the receiver's queue is full, and gets an error frame if the receiver is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
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
_U32 = struct.Struct("<I")
# each channel's RelayHello.version (2 was an earlier sealed hop, with payloads as they were)
_VERSIONS = {"tls": 1, "sealed": 3}
CHANNELS = tuple(_VERSIONS)
DEFAULT_CHANNEL = "sealed"
CHANNEL_KEY_BYTES = 32
_TAG = 16
REKEY_RECORDS = 1 << 16  # a sealed connection's records under one key (at most 64 GiB)
_NEXT_KEY_INFO = b"smc relay hop v2 next key"
MAX_SEALED_HEADER = _U32.size + MAX_HEADER + _TAG

Authorise = Callable[[str, str, str], str | None]  # (task, sender, receiver) -> refusal or None
Tap = Callable[[str, str, str, bytes], None]  # observer of relayed payloads (tests, metrics)
Chunk = tuple[hub_pb2.RelayFrame, bytes | bytearray]  # header (payload empty), payload
_M = TypeVar("_M", hub_pb2.RelayHello, hub_pb2.RelayAccept)


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
    return _parse_header(bytes(_recv_whole(sock, hlen))), _recv_whole(sock, plen)


def _parse_header(head: bytes) -> hub_pb2.RelayFrame:
    try:
        header = hub_pb2.RelayFrame.FromString(head)
    except Exception as exc:  # protobuf's DecodeError; anything else is as malformed
        raise RelayWireError(f"malformed relay header: {exc}") from None
    if header.payload:
        raise RelayWireError("a relay header carries a payload of its own")
    return header


def _recv_whole(sock: ssl.SSLSocket, size: int) -> bytearray:
    """``size`` bytes inside a chunk, where the connection must not end."""
    data = _recv_exact(sock, size) if size else bytearray()
    if data is None:
        raise RelayWireError("the connection closed in the middle of a chunk")
    return data


def _write_message(sock: ssl.SSLSocket, body: bytes) -> None:
    sock.sendall(_U32.pack(len(body)) + body)


def _read_message(sock: ssl.SSLSocket, kind: type[_M], what: str) -> _M:
    """One length-prefixed ``kind`` message (a hello or an accept)."""
    raw = _recv_exact(sock, _U32.size)
    if raw is None:
        raise RelayWireError(f"the connection closed before its {what}")
    (size,) = _U32.unpack(raw)
    if size > MAX_HELLO:
        raise RelayWireError(f"{what} of {size} bytes")
    body = _recv_exact(sock, size) if size else bytearray()
    if body is None:
        raise RelayWireError(f"the connection closed in the middle of its {what}")
    try:
        return kind.FromString(bytes(body))
    except Exception as exc:  # protobuf's DecodeError; anything else is as malformed
        raise RelayWireError(f"malformed {what}: {exc}") from None


def write_hello(sock: ssl.SSLSocket, direction: str, channel: str = "tls") -> None:
    hello = hub_pb2.RelayHello(version=_VERSIONS[channel], direction=direction, channel=channel)
    _write_message(sock, hello.SerializeToString())


def read_hello(sock: ssl.SSLSocket) -> tuple[str, str]:
    """The (direction, channel) a connection asks for."""
    hello = _read_message(sock, hub_pb2.RelayHello, "relay hello")
    channel = hello.channel or "tls"
    if _VERSIONS.get(channel) != hello.version or hello.direction not in ("up", "down"):
        raise RelayWireError(
            f"unsupported relay hello {hello.version}/{hello.direction!r}/{hello.channel!r}"
        )
    return str(hello.direction), channel


def write_accept(sock: ssl.SSLSocket, key: bytes) -> None:
    _write_message(sock, hub_pb2.RelayAccept(channel_key=key).SerializeToString())


def read_accept(sock: ssl.SSLSocket) -> bytes:
    accept = _read_message(sock, hub_pb2.RelayAccept, "relay accept")
    if len(accept.channel_key) != CHANNEL_KEY_BYTES:
        raise RelayWireError(f"a relay channel key of {len(accept.channel_key)} bytes")
    return bytes(accept.channel_key)


# ---------------------------------------------------------------------------------- channels


def _next_key(key: bytes) -> bytes:
    return HKDF(SHA256(), CHANNEL_KEY_BYTES, salt=None, info=_NEXT_KEY_INFO).derive(key)


class TlsWire:
    """Chunks on a connection that stays under TLS."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock

    def read(self) -> Chunk | None:
        return read_chunk(self.sock)

    def write(self, header: hub_pb2.RelayFrame, payload: bytes | bytearray) -> None:
        write_chunk(self.sock, header, payload)


class SealedWire:
    """Chunks on a connection whose TLS layer was closed after the handshake (see the module's
    docstring): a record layer of our own, with TLS 1.3's guarantees and larger records.

    Each chunk is two AES-256-GCM records under the connection's key: the header record (its
    length in clear, then the sealed payload size and header) and, when the chunk has a payload,
    the payload record (its length is in the header). The nonce is a record counter, so a
    record that was altered, replayed, reordered, dropped or injected fails authentication; the
    AAD names the direction and the record's kind. Every :data:`REKEY_RECORDS` records both ends
    move to the next key (HKDF-SHA256 of the current one), as TLS 1.3's KeyUpdate does, which
    keeps the data under one key far below AES-GCM's limits. One direction per connection, so
    one counter."""

    def __init__(
        self, sock: ssl.SSLSocket, key: bytes, direction: str, rekey_records: int = REKEY_RECORDS
    ) -> None:
        if len(key) != CHANNEL_KEY_BYTES:
            raise ValueError(f"a relay channel key has {CHANNEL_KEY_BYTES} bytes, not {len(key)}")
        self.sock = sock
        self._key = key
        self._aead = AESGCM(key)
        label = b"smc relay hop v2 " + direction.encode("ascii")
        self._aad_header = label + b" header"
        self._aad_payload = label + b" payload"
        self._count = 0
        self._rekey = rekey_records
        self._out = bytearray()  # the write buffer, reused: writes are sequential

    def _next_record(self) -> tuple[AESGCM, bytes]:
        """The next record's key and nonce, together: a record's key depends on its counter."""
        if self._count and self._count % self._rekey == 0:
            self._key = _next_key(self._key)
            self._aead = AESGCM(self._key)
        nonce = self._count.to_bytes(12, "big")
        self._count += 1
        return self._aead, nonce

    def write(self, header: hub_pb2.RelayFrame, payload: bytes | bytearray) -> None:
        plain = _U32.pack(len(payload)) + header.SerializeToString()
        aead, nonce = self._next_record()
        sealed = aead.encrypt(nonce, plain, self._aad_header)
        head = _U32.pack(len(sealed)) + sealed
        if not payload:
            self.sock.sendall(head)
            return
        total = len(head) + len(payload) + _TAG
        if len(self._out) < total:
            self._out = bytearray(total)
        out = memoryview(self._out)
        out[: len(head)] = head
        aead, nonce = self._next_record()
        aead.encrypt_into(nonce, payload, self._aad_payload, out[len(head) : total])
        self.sock.sendall(out[:total])

    def read(self) -> Chunk | None:
        raw = _recv_exact(self.sock, _U32.size)
        if raw is None:
            return None
        (size,) = _U32.unpack(raw)
        if not _U32.size + _TAG <= size <= MAX_SEALED_HEADER:
            raise RelayWireError(f"sealed relay header of {size} bytes")
        plain = self._open(_recv_whole(self.sock, size), self._aad_header, "header")
        (plen,) = _U32.unpack_from(plain)
        if plen > MAX_PAYLOAD:
            raise RelayWireError(f"relayed chunk of {plen} bytes is above the limit {MAX_PAYLOAD}")
        header = _parse_header(bytes(plain[_U32.size :]))
        if not plen:
            return header, bytearray()
        return header, self._open(_recv_whole(self.sock, plen + _TAG), self._aad_payload, "payload")

    def _open(self, sealed: bytearray, aad: bytes, what: str) -> bytearray:
        plain = bytearray(len(sealed) - _TAG)
        try:
            aead, nonce = self._next_record()
            aead.decrypt_into(nonce, sealed, aad, plain)
        except InvalidTag:
            raise RelayWireError(
                f"a relay {what} record failed authentication (altered, replayed, reordered, "
                "dropped or injected on the way)"
            ) from None
        return plain


Wire = TlsWire | SealedWire


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
        # (party, direction) -> the channel of its latest connection (logs, tests)
        self.channels: dict[tuple[str, str], str] = {}
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
            direction, channel = read_hello(tls)
            wire: Wire = TlsWire(tls)
            if channel == "sealed":
                key = os.urandom(CHANNEL_KEY_BYTES)
                write_accept(tls, key)
                tls.unwrap()  # close_notify both ways; the same socket now carries raw bytes
                wire = SealedWire(tls, key, direction)
            tls.settimeout(None)
            self.channels[name, direction] = channel
            log.info(
                "relay connection",
                extra={"party": name, "direction": direction, "channel": channel},
            )
            if direction == "up":
                self._up(wire, name)
            else:
                self._down(wire, name)
        except (OSError, ssl.SSLError, CertificateError, RelayWireError) as exc:
            if not self._stopped.is_set():
                log.warning("relay connection dropped", extra={"error": str(exc)})
        finally:
            with self._lock:
                self._conns.discard(raw)
                self._conns.discard(sock)
            hard_close(sock)

    def _up(self, wire: Wire, name: str) -> None:
        """Chunks from ``name``: route each, or tell ``name`` why it could not be."""
        while (chunk := wire.read()) is not None:
            header, payload = chunk
            refusal = self.switch.forward(name, header, payload)
            if refusal is not None:
                self.switch.error_to(name, header.task_id, header.peer, refusal)

    def _down(self, wire: Wire, name: str) -> None:
        """Chunks for ``name``, until it reconnects (a newer "down" replaces this one)."""
        gen, outbox = self.switch.open(name)
        try:
            while (item := outbox.get()) is not None:
                wire.write(*item)
        finally:
            self.switch.close(name, gen)
