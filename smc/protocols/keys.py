"""Pairwise PRF keys and private randomness held by one endpoint (hazmat).

Key agreement itself is outside the engine: the local runtime deals keys in-process, the party
daemon derives them from an authenticated key exchange. The engine only needs, for each peer, a
key that exactly that peer also holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from smc.prg import PRF, LocalRandom, random_key


@dataclass
class KeyRing:
    me: int
    pair_keys: dict[int, bytes]
    private: LocalRandom
    salt: bytes = b""

    def pair(self, peer: int) -> PRF:
        """The PRF this endpoint shares with ``peer`` (and nobody else)."""
        try:
            return PRF(self.pair_keys[peer], self.salt)
        except KeyError:
            raise KeyError(f"endpoint {self.me} holds no key shared with endpoint {peer}") from None


def deal_keys(endpoints: int, session_id: str = "") -> list[KeyRing]:
    """Fresh pairwise keys for ``endpoints`` endpoints, for in-process simulation only."""
    salt = hashlib.sha256(session_id.encode()).digest()[:16]
    shared = {(i, j): random_key() for i in range(endpoints) for j in range(i + 1, endpoints)}
    rings = []
    for me in range(endpoints):
        keys = {
            peer: shared[(min(me, peer), max(me, peer))] for peer in range(endpoints) if peer != me
        }
        rings.append(KeyRing(me, keys, LocalRandom(), salt))
    return rings
