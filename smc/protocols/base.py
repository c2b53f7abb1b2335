"""The sans-IO protocol core: protocols are generators that yield communication steps.

Hazmat: protocol internals. Use :mod:`smc.api` to build programs.

A protocol never touches a socket. It yields an :class:`Exchange` (arrays to send per peer, and
the element counts it expects back per peer), and is resumed with the arrays received. The
executor merges the exchanges of every protocol active in the same round into one frame per peer,
which is how independent operations share communication rounds.

Invariant that keeps all endpoints in lockstep: a protocol yields the *same number* of exchanges
on every endpoint (an endpoint with nothing to do in a round yields an empty exchange).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from smc.errors import ProtocolError
from smc.ring import U64

Received = dict[int, list[U64]]
T = TypeVar("T")


@dataclass
class Exchange:
    """One communication round of one protocol, seen from one endpoint."""

    send: dict[int, list[U64]] = field(default_factory=dict)
    recv: dict[int, list[int]] = field(default_factory=dict)

    def sent_bytes(self) -> int:
        return sum(a.nbytes for arrays in self.send.values() for a in arrays)


Proto = Generator[Exchange, Received, T]


def idle(rounds: int) -> Generator[Exchange, Received, None]:
    """Take part in ``rounds`` rounds without sending or receiving (keeps endpoints in step)."""
    for _ in range(rounds):
        yield Exchange()


def merge(exchanges: Sequence[Exchange]) -> Exchange:
    """Concatenate the per-peer lists of several exchanges, in order."""
    out = Exchange()
    for ex in exchanges:
        for peer, arrays in ex.send.items():
            out.send.setdefault(peer, []).extend(arrays)
        for peer, counts in ex.recv.items():
            out.recv.setdefault(peer, []).extend(counts)
    return out


def split(exchanges: Sequence[Exchange], received: Received) -> list[Received]:
    """Hand each exchange back the arrays it asked for, in the order :func:`merge` used."""
    cursors = {peer: 0 for peer in received}
    parts: list[Received] = []
    for ex in exchanges:
        part: Received = {}
        for peer, counts in ex.recv.items():
            start = cursors[peer]
            part[peer] = received[peer][start : start + len(counts)]
            cursors[peer] = start + len(counts)
        parts.append(part)
    return parts


def lockstep(gens: Sequence[Proto[Any]]) -> Proto[list[Any]]:
    """Run several protocols side by side, merging their rounds; returns their results in order."""
    results: list[Any] = [None] * len(gens)
    pending: dict[int, Exchange] = {}
    for i, gen in enumerate(gens):
        try:
            pending[i] = next(gen)
        except StopIteration as stop:
            results[i] = stop.value
    while pending:
        order = sorted(pending)
        received = yield merge([pending[i] for i in order])
        parts = split([pending[i] for i in order], received)
        nxt: dict[int, Exchange] = {}
        for i, part in zip(order, parts, strict=True):
            try:
                nxt[i] = gens[i].send(part)
            except StopIteration as stop:
                results[i] = stop.value
        pending = nxt
    return results


def expect(received: Received, peer: int, index: int = 0) -> U64:
    try:
        return received[peer][index]
    except (KeyError, IndexError):
        raise ProtocolError(f"expected array {index} from endpoint {peer}, got none") from None


def split_flat(frame: U64, counts: Sequence[int], peer: int) -> list[U64]:
    """Cut one received frame into the arrays a round expects; refuse a wrong size."""
    total = int(sum(counts))
    if frame.size != total:
        raise ProtocolError(
            f"frame from endpoint {peer} carries {frame.size} ring elements, expected {total}"
        )
    bounds = np.cumsum([0, *counts])
    return [frame[bounds[i] : bounds[i + 1]] for i in range(len(counts))]
