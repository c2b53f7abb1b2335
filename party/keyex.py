"""Per-task key agreement between the endpoints of a task, and the encryption built on it (hazmat).

For every task each endpoint draws a fresh X25519 key and announces its public half in a
statement signed with its certificate key (:func:`announce`). The hub forwards announcements but
cannot forge or alter them. From the verified announcements each pair of endpoints derives, with
HKDF-SHA256 salted with the manifest hash:

* the 16-byte PRF key the engine's zero-sharings and input masks use (``KeyRing.pair_keys``);
* two 32-byte AES-256-GCM keys, one per direction, for frames relayed through the hub
  (AES-GCM rather than ChaCha20-Poly1305: about 3x faster here with AES-NI, 8 against 3 GB/s).

Outputs forwarded to the client are encrypted to the client's per-task X25519 key named in the
signed manifest (:func:`seal_result`). The hub therefore never holds a key to any share, frame or
result. Ephemeral keys give forward secrecy: they are never written to disk.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from smc.hub.manifest import canonical_json
from smc.hub.pki import CertificateError, verify_signature

from smc.prg import LocalRandom
from smc.protocols.keys import KeyRing

TAG_BYTES = 16  # AES-GCM's authentication tag


class KeyExchangeError(Exception):
    """An announcement that does not verify, or a key that cannot be used."""


def new_ephemeral() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def public_hex(key: X25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _public(hex_key: str) -> X25519PublicKey:
    try:
        raw = bytes.fromhex(hex_key)
        return X25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise KeyExchangeError("not an X25519 public key") from None


def _exchange(mine: X25519PrivateKey, theirs_hex: str) -> bytes:
    try:
        return mine.exchange(_public(theirs_hex))
    except ValueError:
        raise KeyExchangeError("X25519 exchange failed (low-order public key?)") from None


# ------------------------------------------------------------------------------ announcements


def announcement_body(task_id: str, party: str, eph_pub_hex: str, manifest_sha256: str) -> bytes:
    return bytes(
        canonical_json(
            {
                "v": 1,
                "task_id": task_id,
                "party": party,
                "x25519": eph_pub_hex,
                "manifest_sha256": manifest_sha256,
            }
        )
    )


def verify_announcement(
    body: bytes,
    signature: bytes,
    cert_pem: bytes,
    *,
    task_id: str,
    party: str,
    manifest_sha256: str,
) -> str:
    """The announced X25519 public key (hex), after checking the statement is ``party``'s, for
    this task and this manifest. ``cert_pem`` must already be verified against the CA."""
    try:
        verify_signature(cert_pem, body, signature, f"announcement of {party!r}")
    except CertificateError as exc:
        raise KeyExchangeError(str(exc)) from None
    try:
        obj = json.loads(body.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyExchangeError(f"announcement of {party!r} is not JSON") from None
    expected = {"v": 1, "task_id": task_id, "party": party, "manifest_sha256": manifest_sha256}
    if not isinstance(obj, dict) or any(obj.get(k) != v for k, v in expected.items()):
        raise KeyExchangeError(f"announcement of {party!r} is for another task, party or manifest")
    key = obj.get("x25519")
    if not isinstance(key, str):
        raise KeyExchangeError(f"announcement of {party!r} carries no key")
    _public(key)
    return key


# ------------------------------------------------------------------------------ pairwise keys


@dataclass(frozen=True)
class PairSecrets:
    prf_key: bytes  # 16 bytes, shared by exactly the two endpoints
    send_key: bytes  # 32 bytes, relay frames from me to the peer
    recv_key: bytes  # 32 bytes, relay frames from the peer to me


def derive_pair(
    mine: X25519PrivateKey, me: str, peer: str, peer_pub_hex: str, manifest_sha256: str
) -> PairSecrets:
    lo, hi = sorted((me, peer))
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=16 + 32 + 32,
        salt=bytes.fromhex(manifest_sha256),
        info=b"smc/v1 pair keys|" + canonical_json([lo, hi]),
    ).derive(_exchange(mine, peer_pub_hex))
    lo_to_hi, hi_to_lo = okm[16:48], okm[48:80]
    if me == lo:
        return PairSecrets(okm[:16], lo_to_hi, hi_to_lo)
    return PairSecrets(okm[:16], hi_to_lo, lo_to_hi)


def keyring(me: int, pairs: dict[int, PairSecrets], session_id: str) -> KeyRing:
    """The engine's key ring (same salt rule as :func:`smc.protocols.keys.deal_keys`)."""
    salt = hashlib.sha256(session_id.encode()).digest()[:16]
    return KeyRing(me, {peer: s.prf_key for peer, s in pairs.items()}, LocalRandom(), salt)


# ------------------------------------------------------------------------------ relayed frames


def _chunk_nonce(seq: int) -> bytes:
    return seq.to_bytes(12, "little")


def _chunk_aad(task_id: str, sender: str, receiver: str, last: bool, frame_bytes: int) -> bytes:
    return bytes(
        canonical_json(["smc/v1 relay", task_id, sender, receiver, int(last), frame_bytes])
    )


class ChunkSealer:
    """Encrypts one direction's relayed chunks: the nonce is the chunk counter, the AAD binds
    task, sender, receiver, the end-of-frame flag and the frame's size (so the hub cannot
    splice, cut or resize frames)."""

    def __init__(self, key: bytes, task_id: str, sender: str, receiver: str) -> None:
        self._aead = AESGCM(key)
        self._task, self._from, self._to = task_id, sender, receiver
        self.seq = 0

    def seal(self, chunk: bytes | memoryview, last: bool, frame_bytes: int) -> tuple[int, bytes]:
        """(sequence number, ciphertext) of one chunk of a frame of ``frame_bytes`` bytes; the
        chunk is read in place (a memoryview of the frame is not copied first)."""
        seq = self.seq
        self.seq += 1
        aad = _chunk_aad(self._task, self._from, self._to, last, frame_bytes)
        return seq, self._aead.encrypt(_chunk_nonce(seq), chunk, aad)


class ChunkOpener:
    """Decrypts one direction's chunks and refuses any chunk out of sequence: a duplicated,
    replayed, dropped or reordered chunk raises :class:`KeyExchangeError`."""

    def __init__(self, key: bytes, task_id: str, sender: str, receiver: str) -> None:
        self._aead = AESGCM(key)
        self._task, self._from, self._to = task_id, sender, receiver
        self.seq = 0

    def open_into(
        self, seq: int, last: bool, frame_bytes: int, payload: bytes | bytearray, into: memoryview
    ) -> None:
        """Decrypt one chunk into ``into``, which must be exactly the plaintext's size
        (``len(payload) - TAG_BYTES``): the frame is assembled where it will be read."""
        if seq != self.seq:
            raise KeyExchangeError(
                f"relayed chunk {seq} from {self._from!r} where chunk {self.seq} was due "
                "(duplicated, replayed, dropped or reordered by the relay)"
            )
        if len(payload) != len(into) + TAG_BYTES:
            raise KeyExchangeError(
                f"relayed chunk {seq} from {self._from!r} has {len(payload)} bytes where "
                f"{len(into) + TAG_BYTES} were due"
            )
        aad = _chunk_aad(self._task, self._from, self._to, last, frame_bytes)
        try:
            self._aead.decrypt_into(_chunk_nonce(seq), payload, aad, into)
        except Exception:
            raise KeyExchangeError(
                f"relayed chunk {seq} from {self._from!r} failed authentication"
            ) from None
        self.seq += 1


# ------------------------------------------------------------------------------ results


def _result_key(shared: bytes, manifest_sha256: str, party: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=bytes.fromhex(manifest_sha256),
        info=b"smc/v1 result|" + party.encode("ascii"),
    ).derive(shared)


def seal_result(
    mine: X25519PrivateKey,
    client_pub_hex: str,
    *,
    manifest_sha256: str,
    task_id: str,
    party: str,
    plaintext: bytes,
) -> tuple[bytes, bytes]:
    """Encrypt ``party``'s outputs to the client key of the manifest: (nonce, ciphertext)."""
    key = _result_key(_exchange(mine, client_pub_hex), manifest_sha256, party)
    nonce = os.urandom(12)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, canonical_json([task_id, party]))


def open_result(
    client: X25519PrivateKey,
    party_pub_hex: str,
    *,
    manifest_sha256: str,
    task_id: str,
    party: str,
    nonce: bytes,
    ciphertext: bytes | bytearray,
) -> bytearray:
    """Decrypt outputs sealed by ``party`` (whose announced key is ``party_pub_hex``), into a
    fresh writable buffer that the decoded arrays can share instead of copying (a result may
    be hundreds of megabytes)."""
    key = _result_key(_exchange(client, party_pub_hex), manifest_sha256, party)
    if len(ciphertext) < TAG_BYTES:
        raise KeyExchangeError(f"result of {party!r} is shorter than its authentication tag")
    plain = bytearray(len(ciphertext) - TAG_BYTES)
    try:
        AESGCM(key).decrypt_into(nonce, ciphertext, canonical_json([task_id, party]), plain)
    except Exception:
        raise KeyExchangeError(f"result of {party!r} failed authentication") from None
    return plain
