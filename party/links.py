"""The sending side of the multiplexed data-plane links (``PeerHello.version = 2``).

A daemon keeps one link per peer (:class:`LinkPool`), shared by every task with that peer: each
frame carries its task id (``MUX_HEAD``), and the receiving side is
:class:`smc.party.dataplane.DataPlaneServer`. A link that no open task holds for ``idle_s``
seconds is closed with its goodbye header and dialled again by the next task.
"""

from __future__ import annotations

import contextlib
import logging
import select
import ssl
import threading
import time
from collections.abc import Callable

from smc.hub.pki import Credentials
from smc.hub.tls import hard_close as _hard_close
from smc.hub.tls import wake as _wake
from smc.party.dataplane import GOODBYE, MUX_HEAD, dial_peer
from smc.proto.v1 import peer_pb2

from smc.errors import TransportError

log = logging.getLogger("smc.party.links")

LINK_IDLE_S = 300.0  # a pooled link that no open task used for this long is closed (LinkPool)


class SharedLink:
    """One multiplexed link to a peer (hello version 2), shared by every task with it."""

    def __init__(self, sock: ssl.SSLSocket, peer: str) -> None:
        self._sock = sock
        self.peer = peer
        self._lock = threading.Lock()
        self.broken = False
        self.users = 0  # open tasks holding a TaskLink on it (counted under the pool's lock)
        self.idle_since = time.monotonic()

    def send(self, tid: bytes, frame: memoryview) -> None:
        with self._lock:
            if self.broken:
                raise TransportError(f"link to {self.peer!r} broke")
            try:
                self._sock.sendall(MUX_HEAD.pack(frame.nbytes, tid))
                self._sock.sendall(frame)
            except (OSError, ssl.SSLError) as exc:
                self.broken = True
                raise TransportError(f"link to {self.peer!r} broke: {exc}") from None

    def alive(self) -> bool:
        """Still usable: the peer never writes on this link, so anything readable means it
        closed or reset it (a restarted daemon, an idle timeout somewhere on the path)."""
        if self.broken:
            return False
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def abort(self) -> None:
        """Unblock a send stuck on a dead peer (from any thread); the link is dropped."""
        self.broken = True
        _wake(self._sock)

    def close(self) -> None:
        """End the link on purpose: the goodbye header tells the peer no task lost a frame."""
        with self._lock:
            if not self.broken:
                with contextlib.suppress(OSError, ssl.SSLError):
                    self._sock.settimeout(1.0)
                    self._sock.sendall(MUX_HEAD.pack(GOODBYE, bytes(16)))
            self.broken = True
            _hard_close(self._sock)


class TaskLink:
    """One task's sending half towards one peer, over that peer's :class:`SharedLink`."""

    def __init__(
        self, shared: SharedLink, task_id: str, release: Callable[[SharedLink], None]
    ) -> None:
        self._shared = shared
        self._tid = bytes.fromhex(task_id)
        self.peer = shared.peer
        self._sending = False
        self._release: Callable[[SharedLink], None] | None = release

    def send(self, frame: memoryview) -> None:
        self._sending = True
        try:
            self._shared.send(self._tid, frame)
        finally:
            self._sending = False

    def close(self) -> None:
        """The task is done with the link; if one of its sends is still blocked (a cancel or the
        deadline, on a stalled peer), the shared link is aborted to unblock it."""
        if self._sending:
            self._shared.abort()
        release, self._release = self._release, None
        if release is not None:
            release(self._shared)


class LinkPool:
    """A daemon's multiplexed links, one per peer and endpoint, dialled on first use.

    A link that no open task has held for ``idle_s`` seconds is closed (with its goodbye, so
    the peer's open tasks lose nothing); the next task with that peer dials it again. A
    deployment has few peers, so this only bounds what a peer met once keeps open."""

    def __init__(self, creds: Credentials, idle_s: float = LINK_IDLE_S) -> None:
        if idle_s <= 0:
            raise ValueError(f"idle_s must be positive, got {idle_s}")
        self._creds = creds
        self.idle_s = idle_s
        self._links: dict[tuple[str, str], SharedLink] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def link(self, peer: str, endpoint: str, task_id: str, timeout: float) -> TaskLink:
        """``task_id``'s link to ``peer``; raises TransportError when it cannot be reached.
        The task closes the returned :class:`TaskLink` when it is done with it."""
        key = (peer, endpoint)
        with self._lock:
            shared = self._links.get(key)
            if shared is not None and not shared.alive():
                del self._links[key]
                stale, shared = shared, None
                threading.Thread(target=stale.close, daemon=True).start()
            if shared is not None:
                shared.users += 1  # in the same critical section: prune() cannot take it now
        if shared is None:
            hello = peer_pb2.PeerHello(
                version=2, task_id="", sender=self._creds.identity.name, receiver=peer
            )
            fresh = SharedLink(dial_peer(self._creds, endpoint, hello, timeout), peer)
            with self._lock:
                closed = self._closed
                shared = self._links.get(key)
                if shared is None and not closed:
                    self._links[key] = shared = fresh
                    self._start_reaper()
                if shared is not None:
                    shared.users += 1
            if shared is not fresh:  # another task dialled the same peer meanwhile, or stopping
                fresh.close()
            if shared is None:
                raise TransportError("the daemon is stopping")
        return TaskLink(shared, task_id, self._release)

    def _release(self, shared: SharedLink) -> None:
        with self._lock:
            shared.users -= 1
            if shared.users == 0:
                shared.idle_since = time.monotonic()

    def prune(self, now: float | None = None) -> int:
        """Close the links idle for ``idle_s`` seconds or more; returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [
                key
                for key, shared in self._links.items()
                if shared.users == 0 and now - shared.idle_since >= self.idle_s
            ]
            gone = [self._links.pop(key) for key in idle]
        for shared in gone:
            log.info("closed an idle link", extra={"peer": shared.peer})
            shared.close()
        return len(gone)

    def _start_reaper(self) -> None:  # under self._lock
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, daemon=True, name="link-reaper")
            self._reaper.start()

    def _reap(self) -> None:
        while not self._stop.wait(min(self.idle_s / 2, 30.0)):
            self.prune()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._closed = True
            links, self._links = list(self._links.values()), {}
        for shared in links:
            shared.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._links)
