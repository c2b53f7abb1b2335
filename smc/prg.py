"""Cryptographic pseudo-randomness: AES-128-CTR keystreams from `cryptography`.

Hazmat: low-level randomness for protocols. Never use numpy's PRNG for anything secret; this
module is the only source of share masks, zero-sharings and dealer material.

Every draw is *named*: ``PRF(key).draw(label, n)`` returns n ring elements derived from the key
and a label (node id, purpose). Two parties holding the same key and asking for the same label get
the same values regardless of the order of their other draws, which keeps protocols free of
fragile stream-position bookkeeping. Labels must never repeat within a session; protocols build
them from the program node id and a purpose string.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from smc.ring import U64

KEY_BYTES = 16
_ZERO_CHUNK = bytes(1 << 20)


def random_key() -> bytes:
    """A fresh key from the operating system's CSPRNG."""
    return os.urandom(KEY_BYTES)


def _keystream_into(key: bytes, nonce: bytes, raw: np.ndarray, nbytes: int) -> None:
    """Write ``nbytes`` of the AES-CTR keystream for (key, nonce) into the byte array ``raw``,
    which must have at least 15 spare bytes after ``nbytes`` (``update_into``'s requirement)."""
    enc = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    pos = 0
    chunk = len(_ZERO_CHUNK)
    while pos < nbytes:
        step = min(chunk, nbytes - pos)
        enc.update_into(_ZERO_CHUNK[:step], raw[pos : pos + step + 15].data)
        pos += step


class PRF:
    """A keyed pseudo-random function from labels to uniform Z_2^64 vectors."""

    __slots__ = ("_key", "_salt")

    def __init__(self, key: bytes, salt: bytes = b"") -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"PRF key must be {KEY_BYTES} bytes, got {len(key)}")
        if len(salt) > 64:
            raise ValueError("PRF salt must be at most 64 bytes (it keys blake2b)")
        self._key = key
        self._salt = salt

    def draw(self, label: str, n: int) -> U64:
        """n uniform ring elements for ``label`` (deterministic in key, salt and label). The CTR
        nonce is blake2b-128 of the label keyed with the salt, so (salt, label) pairs never
        collide by concatenation."""
        nonce = hashlib.blake2b(label.encode(), digest_size=16, key=self._salt).digest()
        buf = np.empty(n + 2, dtype=np.uint64)  # two spare words for update_into's slack
        if n:
            _keystream_into(self._key, nonce, buf.view(np.uint8), 8 * n)
        return buf[:n]


class LocalRandom:
    """A party's private randomness: a PRF keyed from the OS CSPRNG, or a given key for tests."""

    def __init__(self, key: bytes | None = None) -> None:
        self._prf = PRF(key if key is not None else random_key())

    def draw(self, label: str, n: int) -> U64:
        return self._prf.draw(label, n)
