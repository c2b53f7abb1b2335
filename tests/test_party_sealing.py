"""End-to-end sealing between parties and to the client: relayed chunks (sequence, AAD, frame
size), the relay receiver's reassembly, and the results a party seals to the client key."""

from __future__ import annotations

import numpy as np
import pytest
from smc.party import keyex, results
from smc.party.dataplane import Inbox, PeerGone
from smc.party.relay import RelayReceiver
from smc.proto.v1 import hub_pb2

from smc.errors import TransportError

TASK = "7" * 32
MANIFEST = "ab" * 32


def _open(opener: keyex.ChunkOpener, seq: int, last: bool, size: int, ct: bytes) -> bytes:
    buf = bytearray(len(ct) - keyex.TAG_BYTES)
    opener.open_into(seq, last, size, ct, memoryview(buf))
    return bytes(buf)


def test_relayed_chunks_refuse_replay_reorder_and_tampering() -> None:
    key = bytes(range(32))
    sealer = keyex.ChunkSealer(key, TASK, "alice", "bob")
    chunks = [sealer.seal(b"part %d" % k, k == 2, 18) for k in range(3)]
    opener = keyex.ChunkOpener(key, TASK, "alice", "bob")
    assert _open(opener, chunks[0][0], False, 18, chunks[0][1]) == b"part 0"
    with pytest.raises(keyex.KeyExchangeError, match="replayed"):
        _open(opener, chunks[0][0], False, 18, chunks[0][1])
    with pytest.raises(keyex.KeyExchangeError, match=r"chunk 2 .* where chunk 1 was due"):
        _open(opener, chunks[2][0], True, 18, chunks[2][1])
    with pytest.raises(keyex.KeyExchangeError, match="failed authentication"):
        _open(opener, chunks[1][0], True, 18, chunks[1][1])  # end-of-frame flag changed
    with pytest.raises(keyex.KeyExchangeError, match="failed authentication"):
        _open(opener, chunks[1][0], False, 6, chunks[1][1])  # frame size changed by the relay
    with pytest.raises(keyex.KeyExchangeError, match="failed authentication"):
        _open(keyex.ChunkOpener(key, TASK, "carol", "bob"), 0, False, 18, chunks[0][1])
    with pytest.raises(keyex.KeyExchangeError, match="22 bytes where 21 were due"):
        opener.open_into(1, False, 18, chunks[1][1], memoryview(bytearray(5)))
    assert _open(opener, chunks[1][0], False, 18, chunks[1][1]) == b"part 1"  # still in step


def _relayed(
    sealer: keyex.ChunkSealer, parts: list[bytes], size: int | None = None
) -> list[tuple[hub_pb2.RelayFrame, bytes]]:
    """The chunks of one frame made of ``parts``, as the hub delivers them (``size``: the frame
    size the sender claims, by default the true one)."""
    size = sum(map(len, parts)) if size is None else size
    out = []
    for k, part in enumerate(parts):
        last = k == len(parts) - 1
        seq, ct = sealer.seal(part, last, size)
        head = hub_pb2.RelayFrame(task_id=TASK, peer="alice", seq=seq, last=last, frame_bytes=size)
        out.append((head, ct))
    return out


def _receiver(max_frame: int = 1 << 20) -> tuple[RelayReceiver, keyex.ChunkSealer, Inbox]:
    key = bytes(32)
    inbox = Inbox(TASK, "bob", ("alice",))
    opener = keyex.ChunkOpener(key, TASK, "alice", "bob")
    recv = RelayReceiver(opener, inbox, "alice", max_frame)
    return recv, keyex.ChunkSealer(key, TASK, "alice", "bob"), inbox


def test_relay_receiver_reassembles_frames_and_fails_on_replay() -> None:
    recv, sealer, inbox = _receiver()
    frames = _relayed(sealer, [b"ab", b"cd"])
    for f, payload in frames + _relayed(sealer, [b""]) + _relayed(sealer, [b"x" * 1000]):
        recv.feed(f, payload)
    assert inbox.get("alice", 1.0) == b"abcd"
    assert inbox.get("alice", 1.0) == b""  # an empty frame is one chunk of only a tag
    got = inbox.get("alice", 1.0)
    assert got == b"x" * 1000 and isinstance(got, bytearray)  # writable, assembled in place
    recv.feed(*frames[1])  # the relay replays a chunk
    gone = inbox.get("alice", 1.0)
    assert isinstance(gone, PeerGone) and "replayed" in gone.reason


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("oversized", "is above the limit 1000"),
        ("resized", "changes its frame's size"),
        ("overrun", "does not fit its frame"),
        ("short", "ended 3 bytes short"),
        ("claimed size", "failed authentication"),
    ],
)
def test_relay_receiver_refuses_frames_that_do_not_add_up(case: str, reason: str) -> None:
    """A peer (or the hub, in the headers) that lies about a frame's size fails the link with
    the reason; a frame above the daemon's limit is refused before anything is allocated."""
    recv, sealer, inbox = _receiver(max_frame=1000)
    if case == "oversized":
        chunks = _relayed(sealer, [b"y" * 600, b"y" * 600])
    elif case == "resized":  # the hub rewrites the size on the second chunk
        chunks = _relayed(sealer, [b"ab", b"cd"])
        chunks[1][0].frame_bytes = 6
    elif case == "overrun":  # the sender claims 3 bytes and sends 4
        chunks = _relayed(sealer, [b"ab", b"cd"], size=3)
    elif case == "short":  # the sender claims 7 bytes and ends after 4
        chunks = _relayed(sealer, [b"ab", b"cd"], size=7)
    else:  # the hub rewrites the size in every header: the AAD no longer matches
        chunks = _relayed(sealer, [b"ab", b"cd"])
        for head, _ in chunks:
            head.frame_bytes = 5
    for head, payload in chunks:
        recv.feed(head, payload)
    gone = inbox.get("alice", 1.0)
    assert isinstance(gone, PeerGone) and reason in gone.reason, gone
    recv.feed(*_relayed(sealer, [b"later"])[0])  # a failed link stays failed
    with pytest.raises(TransportError, match="no frame"):
        inbox.get("alice", 0.05)


def test_results_are_sealed_to_the_client_and_checked() -> None:
    outputs = {"mean": np.float64(3.5), "hist": np.arange(6, dtype=np.int64).reshape(2, 3)}
    plain = results.encode(outputs)
    back = results.decode(plain)
    assert back["mean"] == 3.5 and back["hist"].tolist() == [[0, 1, 2], [3, 4, 5]]
    party, client = keyex.new_ephemeral(), keyex.new_ephemeral()
    kw = {"manifest_sha256": MANIFEST, "task_id": TASK, "party": "alice"}
    nonce, ct = keyex.seal_result(party, keyex.public_hex(client), plaintext=plain, **kw)
    assert (
        keyex.open_result(client, keyex.public_hex(party), nonce=nonce, ciphertext=ct, **kw)
        == plain
    )
    with pytest.raises(keyex.KeyExchangeError, match="failed authentication"):
        keyex.open_result(
            client, keyex.public_hex(keyex.new_ephemeral()), nonce=nonce, ciphertext=ct, **kw
        )
    with pytest.raises(keyex.KeyExchangeError, match="shorter than its authentication tag"):
        keyex.open_result(client, keyex.public_hex(party), nonce=nonce, ciphertext=ct[:15], **kw)
    with pytest.raises(results.ResultFormatError):
        results.decode(plain[:-3])
    with pytest.raises(results.ResultFormatError):
        results.decode(b"\xff\xff\xff\x7f" + plain[4:])


def test_decoded_results_are_writable_views_of_the_decrypted_buffer() -> None:
    outputs = {"a": np.arange(5, dtype=np.float64), "b": np.array([[-1, 7]], dtype=np.int64)}
    party, client = keyex.new_ephemeral(), keyex.new_ephemeral()
    kw = {"manifest_sha256": MANIFEST, "task_id": TASK, "party": "alice"}
    nonce, ct = keyex.seal_result(
        party, keyex.public_hex(client), plaintext=results.encode(outputs), **kw
    )
    plain = keyex.open_result(client, keyex.public_hex(party), nonce=nonce, ciphertext=ct, **kw)
    assert isinstance(plain, bytearray)
    back = results.decode(plain)
    for name, want in outputs.items():
        np.testing.assert_array_equal(back[name], want)
        assert back[name].flags.writeable and np.shares_memory(
            back[name], np.frombuffer(plain, "u1")
        )
    from_bytes = results.decode(bytes(plain))  # immutable input: copies, still writable
    assert all(arr.flags.writeable for arr in from_bytes.values())
    from_bytes["a"][0] = 42.0
    assert back["a"][0] == 0.0
