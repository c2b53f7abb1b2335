"""Frames relayed through the hub, end-to-end encrypted between the two parties.

A party daemon keeps two raw mTLS connections to each hub's relay port (see ``smc.hub.relay``):
"up" for its chunks, "down" for the chunks relayed to it. Sending a transport frame to a peer
that cannot be dialled directly splits it into chunks of at most :data:`CHUNK` bytes, each sealed
with the pair's direction key (:class:`~smc.party.keyex.ChunkSealer`); the hub forwards the
ciphertext to the peer's "down" connection, naming the sender from the sender's certificate. The
receiver opens the chunks strictly in sequence and reassembles the frame onto the task's inbox.

What the hub sees: task id, sender, receiver, sequence numbers and sizes. Not the content.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable

from smc.hub.pki import Credentials
from smc.hub.relay import (
    CHANNELS,
    DEFAULT_CHANNEL,
    RelayWireError,
    SealedWire,
    TlsWire,
    Wire,
    read_accept,
    write_hello,
)
from smc.hub.tls import hard_close, keep_alive, peer_identity, wake
from smc.party.dataplane import DEFAULT_MAX_FRAME, Inbox, PeerGone, client_context
from smc.party.keyex import TAG_BYTES, ChunkOpener, ChunkSealer, KeyExchangeError
from smc.proto.v1 import hub_pb2

from smc.errors import TransportError

log = logging.getLogger("smc.party.relay")

CHUNK = 1 << 20
CONNECT_TIMEOUT_S = 10.0


def _dial(
    address: str, creds: Credentials, hub_name: str | None, direction: str, channel: str
) -> Wire:
    """One relay connection to the hub at ``address`` (its relay port), checked to present a
    *hub* certificate of this CA (named ``hub_name`` when given), on a ``channel`` of
    :data:`~smc.hub.relay.CHANNELS` (see :mod:`smc.hub.relay`)."""
    host, _, port = address.rpartition(":")
    raw = socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S)
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        keep_alive(raw)
        sock: ssl.SSLSocket = client_context(creds).wrap_socket(raw)
    except (OSError, ssl.SSLError):
        hard_close(raw)
        raise
    try:
        peer_identity(sock, creds.ca_pem, ("hub",), hub_name)
        write_hello(sock, direction, channel)
        wire: Wire = TlsWire(sock)
        if channel == "sealed":
            key = read_accept(sock)
            sock.unwrap()  # close_notify both ways; the same socket now carries raw bytes
            wire = SealedWire(sock, key, direction)
        sock.settimeout(None)
    except BaseException:
        hard_close(sock)
        raise
    return wire


class RelayStream:
    """One party's relay connections to one hub: ``send`` on "up", ``on_frame`` from "down"."""

    def __init__(
        self,
        address: str,
        creds: Credentials,
        hub_name: str | None,
        on_frame: Callable[[hub_pb2.RelayFrame, bytes | bytearray], None],
        on_broken: Callable[[], None] = lambda: None,
        channel: str = DEFAULT_CHANNEL,
    ) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"relay channel must be one of {CHANNELS}, got {channel!r}")
        self.channel = channel
        self._on_broken = on_broken  # called once when "down" ends (not after stop())
        self._stopped = False
        self._address = address
        self._creds = creds
        self._hub_name = hub_name
        self._on_frame = on_frame
        self._up: Wire | None = None
        self._down: Wire | None = None
        self._lock = threading.Lock()  # one sender at a time on "up"
        self._thread: threading.Thread | None = None
        self.broken = threading.Event()

    def start(self) -> None:
        """Open both connections; raises OSError, ssl.SSLError, CertificateError or
        RelayWireError."""
        self._down = _dial(self._address, self._creds, self._hub_name, "down", self.channel)
        try:
            self._up = _dial(self._address, self._creds, self._hub_name, "up", self.channel)
        except BaseException:
            hard_close(self._down.sock)
            raise
        self._thread = threading.Thread(
            target=self._read, args=(self._down,), daemon=True, name="relay-in"
        )
        self._thread.start()

    def _read(self, wire: Wire) -> None:
        try:
            while (chunk := wire.read()) is not None:
                self._on_frame(*chunk)  # header, payload (kept apart: no protobuf copy)
        except (OSError, ssl.SSLError, RelayWireError) as exc:
            if not self.broken.is_set():
                log.warning("relay connection ended", extra={"error": str(exc)})
        finally:
            self.broken.set()
            hard_close(wire.sock)
            if not self._stopped:
                self._on_broken()

    def send(self, header: hub_pb2.RelayFrame, payload: bytes, timeout: float | None) -> None:
        if self.broken.is_set() or self._up is None:
            raise TransportError("the relay connection to the hub is down")
        with self._lock:
            try:
                self._up.sock.settimeout(timeout)
                self._up.write(header, payload)
            except (OSError, ssl.SSLError) as exc:
                self.broken.set()
                raise TransportError(f"the hub relay did not take the chunk: {exc}") from None

    def stop(self) -> None:
        self._stopped = True
        self.broken.set()
        if self._down is not None:
            wake(self._down.sock)  # the reader closes it
        if self._up is not None:
            wake(self._up.sock)
            with self._lock:
                hard_close(self._up.sock)


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
                seq, ct = self._sealer.seal(frame[pos:end], last, total)
                header = hub_pb2.RelayFrame(
                    task_id=self._task_id, peer=self.peer, seq=seq, last=last, frame_bytes=total
                )
                self._stream.send(header, ct, self._timeout())
                pos = end
                if last:
                    return

    def close(self) -> None:
        pass


class RelayReceiver:
    """Opens one peer's relayed chunks for one task and puts whole frames on the inbox.

    Each chunk names its frame's size (authenticated: it is in the chunk's AAD), so the frame's
    buffer is allocated once, at its first chunk, and every chunk is decrypted straight into
    its place. A frame above ``max_frame_bytes`` is refused before anything is allocated, as on
    the direct data plane."""

    def __init__(
        self, opener: ChunkOpener, inbox: Inbox, peer: str, max_frame_bytes: int = DEFAULT_MAX_FRAME
    ) -> None:
        self._opener = opener
        self._inbox = inbox
        self._peer = peer
        self._max = max_frame_bytes
        self._frame: bytearray | None = None
        self._pos = 0
        self._failed = False

    def feed(self, frame: hub_pb2.RelayFrame, payload: bytes | bytearray) -> None:
        if self._failed:
            return
        if frame.error:
            self._fail(f"the hub could not relay frames to or from {self._peer!r}: {frame.error}")
            return
        size = frame.frame_bytes
        if self._frame is None:
            if size > self._max:
                self._fail(
                    f"relayed frame of {size} bytes from {self._peer!r} is above the limit "
                    f"{self._max}"
                )
                return
            self._frame, self._pos = bytearray(size), 0
        elif size != len(self._frame):
            self._fail(f"relayed chunk {frame.seq} from {self._peer!r} changes its frame's size")
            return
        end = self._pos + len(payload) - TAG_BYTES
        if not self._pos <= end <= size:
            self._fail(f"relayed chunk {frame.seq} from {self._peer!r} does not fit its frame")
            return
        try:
            self._opener.open_into(
                frame.seq, frame.last, size, payload, memoryview(self._frame)[self._pos : end]
            )
        except KeyExchangeError as exc:
            self._fail(str(exc))
            return
        self._pos = end
        if frame.last:
            data, self._frame = self._frame, None
            if end != size:
                self._fail(f"relayed frame from {self._peer!r} ended {size - end} bytes short")
                return
            self._inbox.put(self._peer, data)

    def _fail(self, reason: str) -> None:
        self._failed = True
        self._frame = None
        self._inbox.put(self._peer, PeerGone(reason))
