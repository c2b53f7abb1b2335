"""The hub's relay port in one process: real mTLS connections, the wire, what it refuses.

The switch's routing rules (running task, both ends endpoints of it) are tested with the hub core
in test_hub_core.py; here the authorisation is a plain allow-list of (sender, receiver) pairs.
"""

from __future__ import annotations

import queue
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from smc.hub import pki
from smc.hub.pki import CertificateError
from smc.hub.relay import (
    MAX_PAYLOAD,
    RelayServer,
    RelaySwitch,
    read_chunk,
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


def _stream(keys: Path, name: str, server: RelayServer) -> tuple[RelayStream, queue.Queue]:  # type: ignore[type-arg]
    got: queue.Queue[hub_pb2.RelayFrame] = queue.Queue()

    def arrived(header: hub_pb2.RelayFrame, payload: bytes | bytearray) -> None:
        header.payload = bytes(payload)  # one object to compare in the tests
        got.put(header)

    stream = RelayStream(
        f"127.0.0.1:{server.port}", pki.Credentials.from_dir(keys, name), "hub", arrived
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
    keys: Path, relay: tuple[RelayServer, list[tuple[str, str, str, bytes]]]
) -> None:
    server, seen = relay
    alice, _ = _stream(keys, "alice", server)
    bob, got = _stream(keys, "bob", server)
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
    keys: Path, relay: tuple[RelayServer, list[tuple[str, str, str, bytes]]]
) -> None:
    server, seen = relay
    alice, got = _stream(keys, "alice", server)
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
    keys: Path, relay: tuple[RelayServer, list[tuple[str, str, str, bytes]]]
) -> None:
    server, _ = relay
    alice, _ = _stream(keys, "alice", server)
    old, _ = _stream(keys, "bob", server)
    new, got = _stream(keys, "bob", server)
    assert old.broken.wait(5)  # the hub closed the replaced connection
    alice.send(hub_pb2.RelayFrame(task_id=TASK, peer="bob", seq=0, last=True), b"new", 5.0)
    assert got.get(timeout=5).payload == b"new"
    for s in (alice, old, new):
        s.stop()


def test_stopping_the_server_ends_every_connection(keys: Path) -> None:
    server = RelayServer(
        RelaySwitch(lambda *_: None), pki.Credentials.from_dir(keys, "hub"), "127.0.0.1:0"
    )
    server.start()
    stream, _ = _stream(keys, "alice", server)
    up = stream._up
    assert up is not None
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
