"""The engine's :class:`~smc.transport.Transport` over the deployment's links.

Endpoint ``k`` of a task is ``manifest.endpoints[k]`` (parties in program order, then the dealer).
Sending uses one link per peer (direct TLS, or the relay); receiving reads the task's inbox, where
frames from both paths land. Every wait is bounded by the task deadline, and :meth:`abort` (task
cancelled, peer failed, daemon stopping) wakes a blocked receiver at once with the reason.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, cast

from smc.party.dataplane import Inbox, PeerGone
from typing_extensions import Buffer

from smc.errors import TransportError
from smc.transport import Transport


class Link(Protocol):
    peer: str

    def send(self, frame: memoryview) -> None: ...

    def close(self) -> None: ...


class PeerTransport(Transport):
    def __init__(
        self,
        me: int,
        names: tuple[str, ...],
        links: dict[int, Link],
        inbox: Inbox,
        *,
        deadline: float,
        slow_rounds_s: float = 0.0,
    ) -> None:
        super().__init__(me, len(names))
        self.names = names
        self._links = links
        self._inbox = inbox
        self._deadline = deadline  # time.monotonic() value
        self._aborted: str | None = None
        self._slow = slow_rounds_s
        self.frames_received = 0
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def send(self, peer: int, frame: Buffer) -> None:
        if self._aborted is not None:
            raise TransportError(self._aborted)
        link = self._links.get(peer)
        if link is None:
            raise TransportError(f"endpoint {self.me} has no link to endpoint {peer}")
        view = memoryview(frame).cast("B")
        if self._slow:
            time.sleep(self._slow)
        link.send(view)
        self.stats.record(peer, view.nbytes)

    def recv(self, peer: int, timeout: float | None = None) -> Buffer:
        if self._aborted is not None:
            raise TransportError(self._aborted)
        if not 0 <= peer < len(self.names) or peer == self.me:
            raise TransportError(f"endpoint {self.me} has no link from endpoint {peer}")
        wait = self.remaining() if timeout is None else min(timeout, self.remaining())
        item = self._inbox.get(self.names[peer], wait)
        if self._aborted is not None:
            raise TransportError(self._aborted)
        if isinstance(item, PeerGone):
            raise TransportError(item.reason)
        self.frames_received += 1
        return cast(Buffer, item)

    def abort(self, reason: str) -> None:
        with self._lock:
            if self._aborted is None:
                self._aborted = reason
        self._inbox.abort(reason)

    def close(self) -> None:
        for link in self._links.values():
            link.close()
