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


def _keystream_into(key: bytes, nonce: bytes, out: np.ndarray) -> None:
    """Fill the byte view of ``out`` with the AES-CTR keystream for (key, nonce)."""
    enc = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    raw = out.view(np.uint8).reshape(-1)
    total = raw.size
    pos = 0
    chunk = len(_ZERO_CHUNK) - 16
    while pos < total:
        step = min(chunk, total - pos)
        # update_into needs len(buf) >= len(data) + 15; write through a bytearray of that size
        # when the tail of `out` is too short, otherwise straight into the output buffer.
        if total - pos >= step + 15:
            enc.update_into(_ZERO_CHUNK[:step], raw[pos : pos + step + 15])
        else:
            tmp = bytearray(step + 15)
            enc.update_into(_ZERO_CHUNK[:step], tmp)
            raw[pos : pos + step] = np.frombuffer(tmp, dtype=np.uint8, count=step)
        pos += step


class PRF:
    """A keyed pseudo-random function from labels to uniform Z_2^64 vectors."""

    __slots__ = ("_key", "_salt")

    def __init__(self, key: bytes, salt: bytes = b"") -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"PRF key must be {KEY_BYTES} bytes, got {len(key)}")
        self._key = key
        self._salt = salt

    def draw(self, label: str, n: int) -> U64:
        """n uniform ring elements for ``label`` (deterministic in key, salt and label)."""
        nonce = hashlib.blake2b(self._salt + label.encode(), digest_size=16).digest()
        out = np.empty(n, dtype=np.uint64)
        if n:
            _keystream_into(self._key, nonce, out)
        return out


class LocalRandom:
    """A party's private randomness: a PRF keyed from the OS CSPRNG, or a given key for tests."""

    def __init__(self, key: bytes | None = None) -> None:
        self._prf = PRF(key if key is not None else random_key())

    def draw(self, label: str, n: int) -> U64:
        return self._prf.draw(label, n)
