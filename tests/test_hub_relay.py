"""The hub's relay port in one process: real mTLS connections, the wire, what it refuses.

The switch's routing rules (running task, both ends endpoints of it) are tested with the hub core
in test_hub_core.py; here the authorisation is a plain allow-list of (sender, receiver) pairs.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from smc.hub import pki
from smc.hub.pki import CertificateError
from smc.hub.relay import (
    CHANNELS,
    MAX_PAYLOAD,
    RelayServer,
    RelaySwitch,
    RelayWireError,
    SealedWire,
    read_accept,
    read_chunk,
    write_accept,
    write_chunk,
    write_hello,
)
from smc.party.dataplane import client_context
from smc.party.relay import RelayStream
from smc.proto.v1 import hub_pb2

TASK = "5" * 32


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    pki.create_ca(d)
    pki.issue(d, "hub", "hub")
    for n in ("alice", "bob"):
        pki.issue(d, "party", n)
    pki.issue(d, "client", "analyst")
    other = d / "other"
    pki.create_ca(other, "another deployment")
    pki.issue(other, "party", "alice")
    return d


@pytest.fixture
def relay(keys: Path) -> Iterator[tuple[RelayServer, list[tuple[str, str, str, bytes]]]]:
    seen: list[tuple[str, str, str, bytes]] = []
    allowed = {("alice", "bob"), ("bob", "alice")}

    def authorise(task: str, sender: str, receiver: str) -> str | None:
        return None if task == TASK and (sender, receiver) in allowed else "not a link"

    switch = RelaySwitch(authorise, lambda *a: seen.append(a))
    server = RelayServer(switch, pki.Credentials.from_dir(keys, "hub"), "127.0.0.1:0")
    server.start()
    yield server, seen
    server.stop()


@pytest.fixture(params=CHANNELS)
def channel(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _stream(
    keys: Path, name: str, server: RelayServer, channel: str = "tls"
) -> tuple[RelayStream, queue.Queue]:  # type: ignore[type-arg]
    got: queue.Queue[hub_pb2.RelayFrame] = queue.Queue()

    def arrived(header: hub_pb2.RelayFrame, payload: bytes | bytearray) -> None:
        header.payload = bytes(payload)  # one object to compare in the tests
        got.put(header)

    stream = RelayStream(
        f"127.0.0.1:{server.port}",
        pki.Credentials.from_dir(keys, name),
        "hub",
        arrived,
        channel=channel,
    )
    stream.start()
    return stream, got


def _raw(keys: Path, name: str, server: RelayServer, ca: Path | None = None) -> ssl.SSLSocket:
    creds = pki.Credentials.from_dir(ca or keys, name)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return client_context(creds).wrap_socket(raw)


def _closed(sock: ssl.SSLSocket) -> bool:
    """The hub dropped the connection (reads end, or the handshake's alert arrives)."""
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False  # still open: the hub did not drop it
    except (OSError, ssl.SSLError):
        return True


def test_chunks_go_from_one_party_to_another_stamped_with_the_sender(
    keys: Path, relay: tuple[RelayServer, list[tuple[str, str, str, bytes]]], channel: str
) -> None:
    server, seen = relay
    alice, _ = _stream(keys, "alice", server, channel)
    bob, got = _stream(keys, "bob", server, channel)
    payload = bytes(range(256)) * 4096  # a whole 1 MiB chunk
    head = hub_pb2.RelayFrame(task_id=TASK, peer="bob", seq=3, last=True, frame_bytes=7 << 20)
    alice.send(head, payload, 5.0)
    frame = got.get(timeout=5)
    assert (frame.task_id, frame.peer, frame.seq, frame.last) == (TASK, "alice", 3, True)
    assert frame.frame_bytes == 7 << 20  # the frame's size travels with every chunk
    assert frame.payload == payload and not frame.error
    assert seen == [(TASK, "alice", "bob", payload)]
    alice.stop()
    bob.stop()


def test_a_refused_chunk_comes_back_as_an_error_frame(
    keys: Path, relay: tuple[RelayServer, list[tuple[str, str, str, bytes]]], channel: str
) -> None:
    server, seen = relay
    alice, got = _stream(keys, "alice", server, channel)
    alice.send(hub_pb2.RelayFrame(task_id=TASK, peer="mallory", seq=0), b"x" * 32, 5.0)
    frame = got.get(timeout=5)
    assert frame.peer == "mallory" and frame.error == "not a link" and not seen
    alice.stop()


def test_the_relay_port_refuses_clients_and_other_cas(
    keys: Path, relay: tuple[RelayServer, list[tuple[str, str, str, bytes]]]
) -> None:
    server, _ = relay
    client = _raw(keys, "analyst", server)  # a client certificate of this CA: not a party
    write_hello(client, "down")
    assert _closed(client)
    with pytest.raises((ssl.SSLError, OSError)):  # a party of another deployment's CA
        foreign = _raw(keys, "alice", server, ca=keys / "other")
        write_hello(foreign, "up")
        foreign.recv(1)


def test_malformed_hellos_and_oversized_chunks_drop_only_that_connection(
    keys: Path, relay: tuple[RelayServer, list[tuple[str, str, str, bytes]]]
) -> None:
    server, seen = relay
    bad = _raw(keys, "alice", server)
    bad.sendall(struct.pack("<I", 5) + b"\xff\xff\xff\xff\xff")  # not a RelayHello
    assert _closed(bad)
    bad = _raw(keys, "alice", server)
    bad.sendall(struct.pack("<I", 1 << 20))  # a hello of a megabyte
    assert _closed(bad)
    bad = _raw(keys, "alice", server)
    write_hello(bad, "sideways")
    assert _closed(bad)
    big = _raw(keys, "alice", server)
    write_hello(big, "up")
    big.sendall(struct.pack("<II", 10, MAX_PAYLOAD + 1))  # announces a chunk above the limit
    assert _closed(big)
    header = _raw(keys, "alice", server)
    write_hello(header, "up")
    head = hub_pb2.RelayFrame(task_id=TASK, peer="bob", payload=b"inline").SerializeToString()
    header.sendall(struct.pack("<II", len(head), 0) + head)  # a payload inside the header
    assert _closed(header)
    # the port still serves well-formed connections
    alice, _ = _stream(keys, "alice", server)
    bob, got = _stream(keys, "bob", server)
    alice.send(hub_pb2.RelayFrame(task_id=TASK, peer="bob", seq=0, last=True), b"ok", 5.0)
    assert got.get(timeout=5).payload == b"ok" and len(seen) == 1
    alice.stop()
    bob.stop()


def test_a_party_refuses_a_relay_port_that_is_not_the_hub(keys: Path) -> None:
    """bob's certificate on the relay port (every certificate names localhost) is refused."""
    impostor = RelayServer(
        RelaySwitch(lambda *_: None), pki.Credentials.from_dir(keys, "bob"), "127.0.0.1:0"
    )
    impostor.start()
    try:
        stream = RelayStream(
            f"127.0.0.1:{impostor.port}",
            pki.Credentials.from_dir(keys, "alice"),
            "hub",
            lambda _f, _p: None,
        )
        with pytest.raises(CertificateError):
            stream.start()
    finally:
        impostor.stop()


def test_a_reconnecting_party_replaces_its_old_down_connection(
    keys: Path, relay: tuple[RelayServer, list[tuple[str, str, str, bytes]]], channel: str
) -> None:
    server, _ = relay
    alice, _ = _stream(keys, "alice", server, channel)
    old, _ = _stream(keys, "bob", server, channel)
    new, got = _stream(keys, "bob", server, channel)
    assert old.broken.wait(5)  # the hub closed the replaced connection
    alice.send(hub_pb2.RelayFrame(task_id=TASK, peer="bob", seq=0, last=True), b"new", 5.0)
    assert got.get(timeout=5).payload == b"new"
    for s in (alice, old, new):
        s.stop()


def test_stopping_the_server_ends_every_connection(keys: Path, channel: str) -> None:
    server = RelayServer(
        RelaySwitch(lambda *_: None), pki.Credentials.from_dir(keys, "hub"), "127.0.0.1:0"
    )
    server.start()
    stream, _ = _stream(keys, "alice", server, channel)
    assert stream._up is not None
    up = stream._up.sock
    time.sleep(0.1)
    server.stop()
    assert stream.broken.wait(5)  # "down" ended
    assert _closed(up)  # and "up" too: the hub does not keep reading after it stopped
    stream.stop()


def test_a_well_formed_connection_stays_open(
    keys: Path, relay: tuple[RelayServer, list[tuple[str, str, str, bytes]]]
) -> None:
    """The check the refusals above rely on does tell an open connection from a dropped one."""
    server, _ = relay
    sock = _raw(keys, "alice", server)
    write_hello(sock, "up")
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(1)
    sock.close()


def test_the_wire_round_trips(keys: Path) -> None:
    a, b = socket.socketpair()
    header = hub_pb2.RelayFrame(task_id=TASK, peer="bob", seq=9, last=True)
    write_chunk(a, header, b"payload")  # type: ignore[arg-type]
    assert read_chunk(b) == (header, b"payload")  # type: ignore[arg-type]
    a.close()
    assert read_chunk(b) is None  # type: ignore[arg-type]
    b.close()


def test_the_relay_port_defaults_to_the_next_port_and_is_checked(tmp_path: Path) -> None:
    from smc.hub.config import HubConfigError, parse

    base = {"cert": "h.crt", "key": "h.key", "ca": "ca.crt"}
    assert parse({"hub": {**base, "listen": "0.0.0.0:7443"}}, tmp_path).relay_address == (
        "0.0.0.0:7444"
    )
    assert parse({"hub": {**base, "listen": "127.0.0.1:0"}}, tmp_path).relay_address == (
        "127.0.0.1:0"
    )
    cfg = parse({"hub": {**base, "relay_listen": "10.0.0.1:9000"}}, tmp_path)
    assert cfg.relay_address == "10.0.0.1:9000"
    for bad in ("7444", "host:port", "h:70000"):
        with pytest.raises(HubConfigError, match="relay_listen must be host:port"):
            parse({"hub": {**base, "relay_listen": bad}}, tmp_path)


# ------------------------------------------------------------------------- the sealed channel

KEY = bytes(range(32))


def _sealed_bytes(
    *chunks: tuple[hub_pb2.RelayFrame, bytes], key: bytes = KEY, rekey_records: int = 1 << 16
) -> bytes:
    """What a "sealed" writer puts on the wire for ``chunks`` (read back from a socket pair)."""
    a, b = socket.socketpair()
    out = bytearray()

    def drain() -> None:
        while block := b.recv(1 << 20):
            out.extend(block)

    reader = threading.Thread(target=drain)
    reader.start()
    writer = SealedWire(a, key, "up", rekey_records)  # type: ignore[arg-type]
    for header, payload in chunks:
        writer.write(header, payload)
    a.close()
    reader.join()
    b.close()
    return bytes(out)


def _read_all(
    data: bytes, key: bytes = KEY, direction: str = "up", rekey_records: int = 1 << 16
) -> list[tuple[object, bytes]]:
    a, b = socket.socketpair()

    def send() -> None:
        with contextlib.suppress(OSError):  # the reader may refuse before the end
            a.sendall(data)
        a.close()

    sender = threading.Thread(target=send)
    sender.start()
    reader = SealedWire(b, key, direction, rekey_records)  # type: ignore[arg-type]
    try:
        out = []
        while (chunk := reader.read()) is not None:
            out.append((chunk[0], bytes(chunk[1])))
        return out
    finally:
        b.close()
        sender.join()


def test_a_sealed_channel_hides_headers_and_payloads_and_reads_them_back() -> None:
    one = hub_pb2.RelayFrame(task_id=TASK, peer="bob", seq=0, frame_bytes=5)
    two = hub_pb2.RelayFrame(task_id=TASK, peer="bob", seq=1, last=True, frame_bytes=5)
    error = hub_pb2.RelayFrame(task_id=TASK, peer="bob", error="no route")  # no payload
    wire = _sealed_bytes((one, b"e2e-ciphertext-1"), (two, b"e2e-ciphertext-2"), (error, b""))
    assert TASK.encode() not in wire and b"bob" not in wire  # headers are sealed
    assert b"ciphertext" not in wire and b"no route" not in wire  # and so are payloads
    assert _read_all(wire) == [
        (one, b"e2e-ciphertext-1"),
        (two, b"e2e-ciphertext-2"),
        (error, b""),
    ]
    assert [len(c) for c in _chunks(wire)] == [
        4
        + hub_pb2.RelayFrame(task_id=TASK, peer="bob", seq=0, frame_bytes=5).ByteSize()
        + 4
        + 16
        + len(b"e2e-ciphertext-1")
        + 16,  # length, sealed (size, header), payload
        4 + two.ByteSize() + 4 + 16 + len(b"e2e-ciphertext-2") + 16,
        4 + error.ByteSize() + 4 + 16,  # no payload record
    ]
    assert _read_all(b"") == []  # a clean end of the connection


def _chunks(wire: bytes, key: bytes = KEY) -> list[bytes]:
    """Split a sealed stream back into its chunks (each a header record, then a payload record
    when the header names a payload)."""
    out, pos, records = [], 0, 0
    while pos < len(wire):
        (size,) = struct.unpack_from("<I", wire, pos)
        plain = _open(wire[pos + 4 : pos + 4 + size], records, key, b"header")
        (plen,) = struct.unpack_from("<I", plain)
        records += 2 if plen else 1
        end = pos + 4 + size + (plen + 16 if plen else 0)
        out.append(wire[pos:end])
        pos = end
    return out


def _open(sealed: bytes, n: int, key: bytes, kind: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).decrypt(n.to_bytes(12, "big"), sealed, b"smc relay hop v2 up " + kind)


ATTACKS = ["altered", "payload altered", "replayed", "reordered", "payloads swapped", "dropped"]


@pytest.mark.parametrize("attack", [*ATTACKS, "injected"])
def test_a_sealed_channel_refuses_records_altered_or_moved_on_the_way(attack: str) -> None:
    heads = [hub_pb2.RelayFrame(task_id=TASK, peer="bob", seq=i) for i in range(3)]
    good = _chunks(_sealed_bytes(*((h, b"payload%d" % i) for i, h in enumerate(heads))))
    what = "header"
    if attack == "altered":
        first = bytearray(good[0])
        first[10] ^= 1  # a bit of the sealed header (the task, the peer, a size)
        bad = [bytes(first), *good[1:]]
    elif attack == "payload altered":
        first = bytearray(good[0])
        first[-20] ^= 1  # a bit of the sealed payload
        bad, what = [bytes(first), *good[1:]], "payload"
    elif attack == "replayed":
        bad = [good[0], good[0], *good[1:]]
    elif attack == "reordered":
        bad = [good[1], good[0], good[2]]
    elif attack == "payloads swapped":  # same sizes: each header followed by the other's payload
        cut = len(good[0]) - len(b"payload0") - 16
        bad = [good[0][:cut] + good[1][cut:], good[1][:cut] + good[0][cut:], good[2]]
        what = "payload"
    elif attack == "dropped":
        bad = [good[0], good[2]]
    else:  # a chunk sealed under another key (an on-path writer without the connection's key)
        forged = _sealed_bytes((heads[1], b"forged"), key=b"\x07" * 32)
        bad = [good[0], forged]
    with pytest.raises(RelayWireError, match=f"relay {what} record failed authentication"):
        _read_all(b"".join(bad))


def test_a_sealed_channel_moves_to_the_next_key_every_so_many_records() -> None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    chunks = [
        (hub_pb2.RelayFrame(task_id=TASK, peer="bob", seq=i + 1), b"p%d" % i) for i in range(5)
    ]
    wire = _sealed_bytes(*chunks, rekey_records=3)  # 10 records: keys change at 3, 6 and 9
    assert _read_all(wire, rekey_records=3) == chunks
    step = len(wire) // 5  # equal chunks, each a header record and a payload record
    (size,) = struct.unpack_from("<I", wire)
    record_4 = wire[2 * step + 4 : 2 * step + 4 + size]  # chunk 2's header
    second = HKDF(SHA256(), 32, salt=None, info=b"smc relay hop v2 next key").derive(KEY)
    assert struct.unpack_from("<I", _open(record_4, 4, second, b"header")) == (2,)
    with pytest.raises(InvalidTag):
        _open(record_4, 4, KEY, b"header")  # no longer under the first key
    with pytest.raises(RelayWireError, match="payload record failed authentication"):
        _read_all(wire)  # a reader that does not move on with the writer fails at record 3


def test_a_sealed_channel_refuses_bad_sizes_the_other_direction_and_truncation() -> None:
    head = hub_pb2.RelayFrame(task_id=TASK, peer="bob", seq=0)
    with pytest.raises(RelayWireError, match="sealed relay header of"):
        _read_all(struct.pack("<I", 1 << 20) + b"x" * 64)  # a megabyte of header
    with pytest.raises(RelayWireError, match="sealed relay header of"):
        _read_all(struct.pack("<I", 3) + b"abc")  # shorter than its tag
    with pytest.raises(RelayWireError, match="above the limit"):
        _read_all(_sealed_bytes((head, b"x" * (MAX_PAYLOAD + 1))))  # the size is checked first
    with pytest.raises(RelayWireError, match="header record failed authentication"):
        _read_all(_sealed_bytes((head, b"x")), direction="down")  # sealed for "up"
    with pytest.raises(RelayWireError, match="in the middle of a chunk"):
        _read_all(_sealed_bytes((head, b"payload"))[:-3])
    inline = hub_pb2.RelayFrame(task_id=TASK, peer="bob", payload=b"inline")
    with pytest.raises(RelayWireError, match="payload of its own"):
        _read_all(_sealed_bytes((inline, b"")))
    with pytest.raises(ValueError, match="32 bytes, not 5"):
        SealedWire(socket.socket(), b"short", "up")  # type: ignore[arg-type]


def test_sealed_hellos_and_accepts_are_checked(
    keys: Path, relay: tuple[RelayServer, list[tuple[str, str, str, bytes]]]
) -> None:
    server, seen = relay
    # version 2 was an earlier sealed hop whose payloads crossed as they were: refused too
    for version, channel in ((1, "sealed"), (2, "sealed"), (3, "tls"), (2, "plain"), (4, "sealed")):
        bad = _raw(keys, "alice", server)
        body = hub_pb2.RelayHello(version=version, direction="up", channel=channel)
        bad.sendall(struct.pack("<I", body.ByteSize()) + body.SerializeToString())
        assert _closed(bad), (version, channel)
    # a well-formed sealed "up" connection, then a header sealed under the wrong key
    forger = _raw(keys, "alice", server)
    write_hello(forger, "up", "sealed")
    assert len(read_accept(forger)) == 32
    forger.unwrap()
    forger.sendall(
        _sealed_bytes((hub_pb2.RelayFrame(task_id=TASK, peer="bob"), b"x"), key=b"\x01" * 32)
    )
    assert _closed(forger) and not seen  # dropped, nothing forwarded
    # a hub's accept must carry a whole key
    a, b = socket.socketpair()
    write_accept(a, b"short")  # type: ignore[arg-type]
    with pytest.raises(RelayWireError, match="channel key of 5 bytes"):
        read_accept(b)  # type: ignore[arg-type]
    a.close()
    b.close()
