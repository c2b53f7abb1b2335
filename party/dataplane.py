"""The direct data plane: one-directional mutually authenticated TLS links between party daemons.

Each endpoint dials every peer it sends to and sends a :class:`PeerHello` naming the task, then
frames (8-byte little-endian length, then the bytes). The listener (:class:`DataPlaneServer`)
checks the peer certificate against the CA, that its name is the hello's sender, and that the
sender is an endpoint of that task; then a reader thread moves each frame with one copy into a
fresh buffer and onto the task's :class:`Inbox`. Frames relayed by the hub arrive on the same
inbox (see :mod:`smc.party.relay`), so the executor never knows which path a frame took.

A party daemon keeps its links: :class:`smc.party.links.LinkPool` holds one multiplexed link per
peer (hello version 2, no task), reused by every task with that peer, whose frames carry the task
id (8-byte length, 16-byte task id, then the bytes). That saves each task its TLS handshakes (about
15 ms per task on two shared cores). Version 1 links (one per task and peer, the task named in the
hello) remain for tools and tests. A multiplexed link that ends without its goodbye header fails
every open task that has the sender as a peer; frames for a task that is not (or no longer) open
here, or whose peers do not include the sender, are discarded.

Why raw TLS rather than gRPC streams: measured on loopback here, a gRPC bidi round trip costs
about 310 us against 35 us for a TLS socket, at equal or better throughput for 16 MiB frames
(docs/deployment.md, bench/bench_deploy.py). MPC protocols are round-bound, so latency wins.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from google.protobuf.message import DecodeError
from smc.hub.pki import CertificateError, Credentials
from smc.hub.tls import hard_close as _hard_close
from smc.hub.tls import keep_alive, peer_identity, recv_exact, ssl_context
from smc.hub.tls import wake as _wake
from smc.party.pickup import ACK, PickupStore
from smc.proto.v1 import peer_pb2

from smc.errors import TransportError

log = logging.getLogger("smc.party.dataplane")

HELLO_MAX = 4096
HANDSHAKE_TIMEOUT_S = 10.0
DEFAULT_MAX_FRAME = 256 << 20
MUX_HEAD = struct.Struct("<Q16s")  # frame length, task id (16 bytes: 32 hex characters)
GOODBYE = (1 << 64) - 1  # a length that ends a multiplexed link cleanly


@dataclass
class PeerGone:
    """Queued after the last frame of a link that ended, or to abort a waiting receiver."""

    reason: str


@dataclass
class Inbox:
    """The frames one task receives, one FIFO per peer name."""

    task_id: str
    me: str
    peers: tuple[str, ...]
    queues: dict[str, queue.SimpleQueue[object]] = field(default_factory=dict)
    connected: set[str] = field(default_factory=set)
    closed: threading.Event = field(default_factory=threading.Event)
    frames_in: int = 0
    bytes_in: int = 0

    def __post_init__(self) -> None:
        self.queues = {p: queue.SimpleQueue() for p in self.peers}

    def put(self, peer: str, item: object) -> None:
        if isinstance(item, PeerGone) and self.closed.is_set():
            return
        if not isinstance(item, PeerGone):
            self.frames_in += 1
            self.bytes_in += memoryview(item).nbytes  # type: ignore[arg-type]
        self.queues[peer].put(item)

    def get(self, peer: str, timeout: float | None) -> object:
        try:
            q = self.queues[peer]
        except KeyError:
            raise TransportError(f"{peer!r} is not an endpoint of task {self.task_id}") from None
        try:
            return q.get(timeout=timeout)
        except queue.Empty:
            raise TransportError(
                f"no frame from {peer!r} within {timeout:.1f} s (peer stalled or task deadline)"
            ) from None

    def abort(self, reason: str) -> None:
        """Wake every waiting receiver with ``reason``."""
        for q in self.queues.values():
            q.put(PeerGone(reason))


def _recv_exact(sock: ssl.SSLSocket, view: memoryview) -> bool:
    return bool(recv_exact(sock, view) == len(view))


class DataPlaneServer:
    """Accepts peers' links for the tasks registered with :meth:`open`."""

    def __init__(
        self,
        creds: Credentials,
        host: str,
        port: int = 0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME,
        pickups: PickupStore | None = None,
    ) -> None:
        self.creds = creds
        self.pickups = pickups  # sealed results the task's client may take (smc.party.pickup)
        self.max_frame_bytes = max_frame_bytes
        self._ctx = ssl_context(creds, server=True)
        self._sock = socket.create_server((host, port), reuse_port=False)
        self._sock.settimeout(0.5)
        self._inboxes: dict[str, Inbox] = {}
        self._conns: dict[str, list[socket.socket]] = {}
        self._mux: set[socket.socket] = set()  # multiplexed links (no task of their own)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._accept_loop, name="dataplane-accept", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            _wake(self._sock)  # the accept loop closes the listener itself (see _wake)
        else:
            self._sock.close()
        with self._lock:
            conns = [c for cs in self._conns.values() for c in cs] + list(self._mux)
        for c in conns:
            _wake(c)  # each reader thread closes its own socket when it returns

    def open(self, inbox: Inbox) -> None:
        with self._lock:
            self._inboxes[inbox.task_id] = inbox
            self._conns.setdefault(inbox.task_id, [])

    def close(self, task_id: str) -> None:
        with self._lock:
            inbox = self._inboxes.pop(task_id, None)
            conns = self._conns.pop(task_id, [])
        if inbox is not None:
            inbox.closed.set()
        for c in conns:
            _wake(c)  # each reader thread closes its own socket when it returns

    # ------------------------------------------------------------------------------ internals
    def _accept_loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    raw, addr = self._sock.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                if self._stop.is_set():
                    _hard_close(raw)
                    return
                threading.Thread(
                    target=self._serve, args=(raw, addr), daemon=True, name=f"dataplane-{addr[1]}"
                ).start()
        finally:
            with contextlib.suppress(OSError):
                self._sock.close()

    def _serve(self, raw: socket.socket, addr: tuple[str, int]) -> None:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        keep_alive(raw)  # links outlive tasks (LinkPool): keep NAT mappings, notice dead peers
        raw.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            sock = self._ctx.wrap_socket(raw, server_side=True)
            ident = peer_identity(sock, self.creds.ca_pem, ("party", "dealer", "client"))
            head = bytearray(4)
            if not _recv_exact(sock, memoryview(head)):
                raise ConnectionError("closed before its hello")
            (size,) = struct.unpack("<I", head)
            if size > HELLO_MAX:
                raise ConnectionError(f"hello of {size} bytes")
            body = bytearray(size)
            if not _recv_exact(sock, memoryview(body)):
                raise ConnectionError("closed inside its hello")
            hello = peer_pb2.PeerHello.FromString(bytes(body))
        except (
            OSError,
            ssl.SSLError,
            CertificateError,
            ConnectionError,
            ValueError,
            DecodeError,
        ) as exc:
            log.warning(
                "refused a data-plane link",
                extra={"peer_addr": f"{addr[0]}:{addr[1]}", "error": str(exc)},
            )
            _hard_close(raw)
            return
        if ident.role == "client":
            self._serve_pickup(sock, ident.name, hello)
            return
        if hello.version == 2:
            self._serve_mux(sock, ident.name, hello)
            return
        sender = hello.sender
        with self._lock:
            inbox = self._inboxes.get(hello.task_id)
            reason = None
            if hello.version != 1:
                reason = f"unsupported data-plane version {hello.version}"
            elif ident.name != sender:
                reason = f"certificate of {ident.name!r} claims to be {sender!r}"
            elif inbox is None:
                reason = f"unknown or finished task {hello.task_id!r}"
            elif hello.receiver != inbox.me or sender not in inbox.peers:
                reason = f"{sender!r} -> {hello.receiver!r} is not a link of task {hello.task_id}"
            elif sender in inbox.connected:
                reason = f"a second link from {sender!r} for task {hello.task_id} (replayed?)"
            else:
                inbox.connected.add(sender)
                self._conns[hello.task_id].append(sock)
        if reason is not None or inbox is None:
            log.warning("refused a data-plane link", extra={"peer": ident.name, "error": reason})
            _hard_close(sock)
            return
        sock.settimeout(None)
        self._read_frames(sock, inbox, sender)

    def _serve_mux(self, sock: ssl.SSLSocket, name: str, hello: peer_pb2.PeerHello) -> None:
        """A peer's multiplexed link: frames of any task it shares with this party."""
        reason = None
        if name != hello.sender:
            reason = f"certificate of {name!r} claims to be {hello.sender!r}"
        elif hello.receiver != self.creds.identity.name:
            reason = f"a link for {hello.receiver!r}, not {self.creds.identity.name!r}"
        elif hello.task_id:
            reason = "a multiplexed link names no task"
        if reason is not None:
            log.warning("refused a data-plane link", extra={"peer": name, "error": reason})
            _hard_close(sock)
            return
        with self._lock:
            if self._stop.is_set():
                _hard_close(sock)
                return
            self._mux.add(sock)
        sock.settimeout(None)
        try:
            self._read_mux(sock, name)
        finally:
            with self._lock:
                self._mux.discard(sock)
            _hard_close(sock)

    def _read_mux(self, sock: ssl.SSLSocket, sender: str) -> None:
        head = bytearray(MUX_HEAD.size)
        hv = memoryview(head)
        try:
            while True:
                if not _recv_exact(sock, hv):
                    self._sender_gone(
                        sender, f"peer {sender!r} closed its link (it stopped or failed)"
                    )
                    return
                size, tid = MUX_HEAD.unpack(head)
                if size == GOODBYE:
                    return  # closed on purpose, between tasks
                if size > self.max_frame_bytes:
                    self._sender_gone(
                        sender,
                        f"peer {sender!r} sent a frame of {size} bytes, above the limit "
                        f"{self.max_frame_bytes}",
                    )
                    return
                frame = np.empty(size, dtype=np.uint8)
                if size and not _recv_exact(sock, frame.data):
                    self._sender_gone(
                        sender, f"peer {sender!r} disconnected in the middle of a frame"
                    )
                    return
                with self._lock:
                    inbox = self._inboxes.get(tid.hex())
                if inbox is None or sender not in inbox.peers:
                    log.warning(
                        "discarded a frame",
                        extra={"peer": sender, "task_id": tid.hex(), "bytes": size},
                    )
                    continue
                inbox.put(sender, frame)
        except (OSError, ssl.SSLError) as exc:
            self._sender_gone(sender, f"link from peer {sender!r} broke: {exc}")

    def _sender_gone(self, sender: str, reason: str) -> None:
        """A multiplexed link ended abnormally: every open task with that peer may have lost a
        frame, so each is told (its receive raises ``reason``)."""
        if self._stop.is_set():
            return
        with self._lock:
            inboxes = [i for i in self._inboxes.values() if sender in i.peers]
        for inbox in inboxes:
            inbox.put(sender, PeerGone(reason))

    def _serve_pickup(self, sock: ssl.SSLSocket, client: str, hello: peer_pb2.PeerHello) -> None:
        """A client taking its sealed result (smc.party.pickup): one frame, its acknowledgement,
        then close; the result is settled as delivered only when the acknowledgement came."""
        found = None
        delivered = False
        if (
            self.pickups is not None
            and hello.version == 1
            and hello.sender == client
            and hello.receiver == self.creds.identity.name
        ):
            found = self.pickups.take(hello.task_id, client)
        try:
            if found is None:
                log.warning(
                    "refused a result pickup",
                    extra={"peer": client, "task_id": hello.task_id[:64]},
                )
                return
            sock.settimeout(HANDSHAKE_TIMEOUT_S * 3)
            size = len(found.nonce) + len(found.ciphertext)
            sock.sendall(struct.pack("<Q", size) + found.nonce)
            sock.sendall(found.ciphertext)
            delivered = sock.recv(1) == ACK  # the client has all of it
        except (OSError, ssl.SSLError) as exc:
            log.warning("result pickup broke", extra={"peer": client, "error": str(exc)})
        finally:
            _hard_close(sock)
            if found is not None:
                found.delivered(delivered)

    def _read_frames(self, sock: ssl.SSLSocket, inbox: Inbox, sender: str) -> None:
        head = bytearray(8)
        hv = memoryview(head)
        try:
            while True:
                if not _recv_exact(sock, hv):
                    inbox.put(
                        sender, PeerGone(f"peer {sender!r} closed its link (it stopped or failed)")
                    )
                    return
                (size,) = struct.unpack("<Q", head)
                if size > self.max_frame_bytes:
                    inbox.put(
                        sender,
                        PeerGone(
                            f"peer {sender!r} sent a frame of {size} bytes, above the limit "
                            f"{self.max_frame_bytes}"
                        ),
                    )
                    return
                frame = np.empty(size, dtype=np.uint8)
                if size and not _recv_exact(sock, frame.data):
                    inbox.put(
                        sender, PeerGone(f"peer {sender!r} disconnected in the middle of a frame")
                    )
                    return
                inbox.put(sender, frame)
        except (OSError, ssl.SSLError) as exc:
            inbox.put(sender, PeerGone(f"link from peer {sender!r} broke: {exc}"))
        finally:
            _hard_close(sock)


@functools.lru_cache(maxsize=8)
def client_context(creds: Credentials) -> ssl.SSLContext:
    """One client context per identity (building one costs ~2 ms; it is not changed after)."""
    ctx: ssl.SSLContext = ssl_context(creds, server=False)
    return ctx


class DirectLink:
    """The sending half of one link: dials the peer, sends the hello, then frames."""

    def __init__(self, sock: ssl.SSLSocket, peer: str) -> None:
        self._sock = sock
        self.peer = peer
        self._lock = threading.Lock()

    @classmethod
    def dial(
        cls,
        creds: Credentials,
        endpoint: str,
        *,
        task_id: str,
        me: str,
        peer: str,
        timeout: float = 5.0,
    ) -> DirectLink:
        """Connect to ``peer`` at ``endpoint``; raises TransportError (the caller may fall back to
        the relay) when it is unreachable or its certificate is not ``peer``'s."""
        hello = peer_pb2.PeerHello(version=1, task_id=task_id, sender=me, receiver=peer)
        return cls(dial_peer(creds, endpoint, hello, timeout), peer)

    def send(self, frame: memoryview) -> None:
        try:
            with self._lock:
                self._sock.sendall(struct.pack("<Q", frame.nbytes))
                self._sock.sendall(frame)
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"link to {self.peer!r} broke: {exc}") from None

    def close(self) -> None:
        """Callable from any thread: the shutdown first unblocks a send stuck on a dead peer,
        which releases the lock, and the descriptor is closed only once no send is in flight."""
        _wake(self._sock)
        with self._lock, contextlib.suppress(OSError):
            self._sock.close()


def dial_peer(
    creds: Credentials, endpoint: str, hello: peer_pb2.PeerHello, timeout: float
) -> ssl.SSLSocket:
    """A TLS connection to ``hello.receiver`` at ``endpoint``, checked and greeted; raises
    TransportError (the caller may fall back to the relay) when it is unreachable or its
    certificate is not the receiver's."""
    host, _, port = endpoint.rpartition(":")
    peer = hello.receiver
    try:
        raw = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        keep_alive(raw)  # links outlive tasks (LinkPool): keep NAT mappings, notice dead peers
        sock = client_context(creds).wrap_socket(raw)
        ident = peer_identity(sock, creds.ca_pem)
        if ident.name != peer:
            _hard_close(sock)
            raise TransportError(
                f"{endpoint} presented the certificate of {ident.name!r}, not {peer!r}"
            )
        body = hello.SerializeToString()
        sock.sendall(struct.pack("<I", len(body)) + body)
        sock.settimeout(None)
    except (OSError, ssl.SSLError, CertificateError, ValueError) as exc:
        raise TransportError(f"cannot reach {peer!r} at {endpoint}: {exc}") from None
    return sock


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
