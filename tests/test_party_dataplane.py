"""The party data plane in one process: mTLS links, key agreement, and the engine's executor
running over the very transport the daemons use (the end-to-end sealing of relayed frames and
results: ``test_party_sealing.py``)."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from smc.hub import pki
from smc.hub.tls import ssl_context
from smc.party import keyex
from smc.party.dataplane import (
    MUX_HEAD,
    DataPlaneServer,
    DirectLink,
    Inbox,
    PeerGone,
    wait_for,
)
from smc.party.links import LinkPool
from smc.party.transport import PeerTransport
from smc.proto.v1 import peer_pb2

import smc
from smc.config import FixedPointConfig, SessionConfig
from smc.errors import ProtocolError, TransportError
from smc.executor import Executor

NAMES = ("alice", "bob", "carol")
TASK = "7" * 32
MANIFEST = "ab" * 32


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pki.Credentials]:
    d = tmp_path_factory.mktemp("pki")
    pki.create_ca(d)
    for n in NAMES:
        pki.issue(d, "party", n)
    other = d / "other"
    pki.create_ca(other, "another deployment")
    pki.issue(other, "party", "alice")
    creds = {n: pki.Credentials.from_dir(d, n) for n in NAMES}
    creds["foreign"] = pki.Credentials.from_dir(other, "alice")
    return creds


@pytest.fixture
def bob(keys: dict[str, pki.Credentials]):  # type: ignore[no-untyped-def]
    server = DataPlaneServer(keys["bob"], "127.0.0.1", 0, max_frame_bytes=4 << 20)
    server.start()
    inbox = Inbox(TASK, "bob", ("alice", "carol"))
    server.open(inbox)
    yield server, inbox
    server.stop()


def _endpoint(server: DataPlaneServer) -> str:
    return f"127.0.0.1:{server.port}"


def test_frames_arrive_in_order_and_intact(keys: dict[str, pki.Credentials], bob) -> None:  # type: ignore[no-untyped-def]
    server, inbox = bob
    link = DirectLink.dial(keys["alice"], _endpoint(server), task_id=TASK, me="alice", peer="bob")
    frames = [b"", b"12345678", np.arange(400_000, dtype=np.uint64).tobytes()]
    for f in frames:
        link.send(memoryview(f))
    for f in frames:
        got = inbox.get("alice", 10.0)
        assert bytes(memoryview(got)) == f  # type: ignore[arg-type]
    link.close()
    gone = inbox.get("alice", 10.0)
    assert isinstance(gone, PeerGone) and "closed its link" in gone.reason


def test_closing_a_link_under_a_blocked_send_waits_for_it(
    keys: dict[str, pki.Credentials], tmp_path: Path
) -> None:
    """close() from another thread (a cancel, a deadline) unblocks a send stuck on a peer that
    does not read, which fails with TransportError, and nothing reaches a file opened afterwards
    (close() frees the descriptor only once no send is in flight: a freed number is reused at
    once, and OpenSSL writes an alert on errors; that once put a TLS record into an audit log)."""
    listener = socket.create_server(("127.0.0.1", 0))
    ctx = ssl_context(keys["bob"], server=True)
    accepted: list[ssl.SSLSocket] = []

    def accept() -> None:  # a peer that completes the handshake and hello, then never reads
        raw, _ = listener.accept()
        accepted.append(ctx.wrap_socket(raw, server_side=True))

    t = threading.Thread(target=accept)
    t.start()
    link = DirectLink.dial(
        keys["alice"],
        f"127.0.0.1:{listener.getsockname()[1]}",
        task_id=TASK,
        me="alice",
        peer="bob",
    )
    t.join(10)
    errors: list[BaseException] = []

    def send() -> None:
        try:
            link.send(memoryview(bytes(64 << 20)))  # far more than the socket buffers hold
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.3)
    assert sender.is_alive()  # blocked: the peer does not read
    link.close()
    # the send has returned before close() released the descriptor
    sender.join(0.5)
    assert not sender.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], TransportError)
    with (tmp_path / "after.log").open("wb") as fh:  # likely to get the freed number
        fh.write(b"mine\n")
    time.sleep(0.1)
    assert (tmp_path / "after.log").read_bytes() == b"mine\n"
    for sock in accepted:
        sock.close()
    listener.close()


def test_oversized_frame_is_refused(keys: dict[str, pki.Credentials], bob) -> None:  # type: ignore[no-untyped-def]
    server, inbox = bob
    link = DirectLink.dial(keys["alice"], _endpoint(server), task_id=TASK, me="alice", peer="bob")
    with pytest.raises(TransportError):
        for _ in range(50):  # the receiver drops the link; a later send fails
            link.send(memoryview(bytes(5 << 20)))
            time.sleep(0.01)
    gone = inbox.get("alice", 10.0)
    assert isinstance(gone, PeerGone) and "above the limit" in gone.reason


def test_certificate_of_another_ca_is_refused(keys: dict[str, pki.Credentials], bob) -> None:  # type: ignore[no-untyped-def]
    server, inbox = bob
    with pytest.raises(TransportError, match="cannot reach 'bob'"):
        DirectLink.dial(keys["foreign"], _endpoint(server), task_id=TASK, me="alice", peer="bob")
    assert not inbox.connected


def test_a_party_cannot_pose_as_another(keys: dict[str, pki.Credentials], bob) -> None:  # type: ignore[no-untyped-def]
    server, inbox = bob
    link = DirectLink.dial(keys["carol"], _endpoint(server), task_id=TASK, me="alice", peer="bob")
    time.sleep(0.3)
    assert "alice" not in inbox.connected and "carol" not in inbox.connected
    link.close()


def test_dialling_the_wrong_party_is_detected(keys: dict[str, pki.Credentials], bob) -> None:  # type: ignore[no-untyped-def]
    server, _ = bob
    with pytest.raises(TransportError, match="certificate of 'bob', not 'carol'"):
        DirectLink.dial(keys["alice"], _endpoint(server), task_id=TASK, me="alice", peer="carol")


def test_links_for_unknown_tasks_and_second_links_are_refused(
    keys: dict[str, pki.Credentials], bob
) -> None:  # type: ignore[no-untyped-def]
    server, inbox = bob
    DirectLink.dial(keys["alice"], _endpoint(server), task_id="0" * 32, me="alice", peer="bob")
    first = DirectLink.dial(keys["alice"], _endpoint(server), task_id=TASK, me="alice", peer="bob")
    time.sleep(0.2)
    second = DirectLink.dial(keys["alice"], _endpoint(server), task_id=TASK, me="alice", peer="bob")
    first.send(memoryview(b"a" * 8))
    assert bytes(memoryview(inbox.get("alice", 10.0))) == b"a" * 8  # type: ignore[arg-type]
    with pytest.raises(TransportError):
        for _ in range(50):
            second.send(memoryview(b"b" * 8))
            time.sleep(0.01)


def _raw_tls(creds: pki.Credentials, server: DataPlaneServer) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", server.port))
    return ssl_context(creds, server=False).wrap_socket(raw)


def test_malformed_hello_and_truncated_frame(keys: dict[str, pki.Credentials], bob) -> None:  # type: ignore[no-untyped-def]
    server, inbox = bob
    s = _raw_tls(keys["alice"], server)
    s.sendall(struct.pack("<I", 1 << 30))  # absurd hello length
    s.settimeout(5)
    assert s.recv(1) == b""  # the listener hung up
    link = DirectLink.dial(keys["alice"], _endpoint(server), task_id=TASK, me="alice", peer="bob")
    link._sock.sendall(struct.pack("<Q", 1000) + b"x" * 10)  # a frame cut short by a dying peer
    link.close()
    gone = inbox.get("alice", 10.0)
    assert isinstance(gone, PeerGone) and "in the middle of a frame" in gone.reason


# ----------------------------------------------------------------- multiplexed links (LinkPool)

OTHER = "8" * 32


def test_a_pooled_link_serves_every_task_with_that_peer(
    keys: dict[str, pki.Credentials], bob
) -> None:  # type: ignore[no-untyped-def]
    server, inbox = bob
    other = Inbox(OTHER, "bob", ("alice",))
    server.open(other)
    pool = LinkPool(keys["alice"])
    one = pool.link("bob", _endpoint(server), TASK, timeout=5)
    two = pool.link("bob", _endpoint(server), OTHER, timeout=5)
    assert len(pool) == 1 and wait_for(lambda: len(server._mux) == 1, 5)  # one TLS link for both
    time.sleep(0.1)
    assert len(server._mux) == 1
    big = np.arange(300_000, dtype=np.uint64).tobytes()
    one.send(memoryview(b"first"))
    two.send(memoryview(big))
    one.send(memoryview(b""))
    assert bytes(memoryview(inbox.get("alice", 10.0))) == b"first"  # type: ignore[arg-type]
    assert bytes(memoryview(inbox.get("alice", 10.0))) == b""  # type: ignore[arg-type]
    assert bytes(memoryview(other.get("alice", 10.0))) == big  # type: ignore[arg-type]
    one.close()  # the task is done: the shared link stays
    two.send(memoryview(b"still"))
    assert bytes(memoryview(other.get("alice", 10.0))) == b"still"  # type: ignore[arg-type]
    pool.close()  # with its goodbye: no open task hears of it
    assert wait_for(lambda: not server._mux, 5)
    with pytest.raises(TransportError):
        inbox.get("alice", 0.3)
    server.close(OTHER)


def test_pooled_frames_for_other_tasks_are_discarded(keys: dict[str, pki.Credentials], bob) -> None:  # type: ignore[no-untyped-def]
    """Frames for a task that is not open here, or that the sender is not a peer of, never reach
    an inbox; the link goes on carrying the others."""
    server, inbox = bob
    theirs = Inbox(OTHER, "bob", ("carol",))  # alice is not a peer of this task
    server.open(theirs)
    pool = LinkPool(keys["alice"])
    pool.link("bob", _endpoint(server), "0" * 32, timeout=5).send(memoryview(b"unknown task"))
    pool.link("bob", _endpoint(server), OTHER, timeout=5).send(memoryview(b"not my task"))
    pool.link("bob", _endpoint(server), TASK, timeout=5).send(memoryview(b"mine"))
    assert bytes(memoryview(inbox.get("alice", 10.0))) == b"mine"  # type: ignore[arg-type]
    with pytest.raises(TransportError):
        theirs.get("carol", 0.3)
    assert theirs.frames_in == 0
    pool.close()
    server.close(OTHER)


def test_a_pooled_link_that_breaks_fails_the_open_tasks_with_that_peer(
    keys: dict[str, pki.Credentials], bob
) -> None:  # type: ignore[no-untyped-def]
    server, inbox = bob
    unrelated = Inbox(OTHER, "bob", ("carol",))
    server.open(unrelated)
    pool = LinkPool(keys["alice"])
    link = pool.link("bob", _endpoint(server), TASK, timeout=5)
    shared = link._shared
    shared._sock.sendall(MUX_HEAD.pack(1000, bytes.fromhex(TASK)) + b"x" * 10)  # then dies
    shared.abort()
    gone = inbox.get("alice", 10.0)
    assert isinstance(gone, PeerGone) and "in the middle of a frame" in gone.reason
    with pytest.raises(TransportError):  # a task without alice hears nothing
        unrelated.get("carol", 0.3)
    with pytest.raises(TransportError, match="broke"):
        link.send(memoryview(b"late"))
    fresh = pool.link("bob", _endpoint(server), TASK, timeout=5)  # a dead link is replaced
    assert fresh._shared is not shared
    pool.close()
    server.close(OTHER)


def test_a_pooled_oversized_frame_fails_the_tasks_with_that_peer(
    keys: dict[str, pki.Credentials], bob
) -> None:  # type: ignore[no-untyped-def]
    server, inbox = bob
    pool = LinkPool(keys["alice"])
    link = pool.link("bob", _endpoint(server), TASK, timeout=5)
    link._shared._sock.sendall(MUX_HEAD.pack(5 << 20, bytes.fromhex(TASK)))  # limit: 4 MiB
    gone = inbox.get("alice", 10.0)
    assert isinstance(gone, PeerGone) and "above the limit" in gone.reason
    pool.close()


def test_an_idle_pooled_link_is_closed_cleanly_and_dialled_again(
    keys: dict[str, pki.Credentials], bob
) -> None:  # type: ignore[no-untyped-def]
    server, inbox = bob
    pool = LinkPool(keys["alice"], idle_s=0.2)
    link = pool.link("bob", _endpoint(server), TASK, timeout=5)
    link.send(memoryview(b"one"))
    assert bytes(memoryview(inbox.get("alice", 10.0))) == b"one"  # type: ignore[arg-type]
    time.sleep(0.5)  # idle, but a task still holds it: kept
    assert pool.prune() == 0 and len(pool) == 1
    link.close()  # the task is done: the link is idle from now on
    assert len(pool) == 1
    assert wait_for(lambda: len(pool) == 0, 5)  # closed by the pool's own reaper
    assert wait_for(lambda: not server._mux, 5)  # bob's side ended too...
    with pytest.raises(TransportError, match="no frame"):  # ...with the goodbye: nothing lost
        inbox.get("alice", 0.3)
    again = pool.link("bob", _endpoint(server), TASK, timeout=5)  # dialled again on demand
    again.send(memoryview(b"two"))
    assert bytes(memoryview(inbox.get("alice", 10.0))) == b"two"  # type: ignore[arg-type]
    again.close()
    pool.close()


def test_a_pooled_link_is_idle_only_when_no_task_holds_it(
    keys: dict[str, pki.Credentials], bob
) -> None:  # type: ignore[no-untyped-def]
    server, _ = bob
    pool = LinkPool(keys["alice"], idle_s=60)
    one = pool.link("bob", _endpoint(server), TASK, timeout=5)
    two = pool.link("bob", _endpoint(server), OTHER, timeout=5)
    later = time.monotonic() + 3600
    one.close()
    one.close()  # closing twice releases once
    assert pool.prune(later) == 0  # the other task still holds it
    two.close()
    assert pool.prune(time.monotonic()) == 0  # idle for less than idle_s
    assert pool.prune(later) == 1 and len(pool) == 0
    with pytest.raises(ValueError, match="positive"):
        LinkPool(keys["alice"], idle_s=0)
    pool.close()


def test_a_pool_redials_a_peer_that_restarted(keys: dict[str, pki.Credentials]) -> None:
    first = DataPlaneServer(keys["bob"], "127.0.0.1", 0)
    first.start()
    port = first.port
    pool = LinkPool(keys["alice"])
    old = pool.link("bob", f"127.0.0.1:{port}", TASK, timeout=5)
    first.stop()  # bob's daemon goes away: its side of the link closes
    assert wait_for(lambda: not old._shared.alive(), 5)
    again = DataPlaneServer(keys["bob"], "127.0.0.1", port)
    again.start()
    inbox = Inbox(TASK, "bob", ("alice",))
    again.open(inbox)
    new = pool.link("bob", f"127.0.0.1:{port}", TASK, timeout=5)
    assert new._shared is not old._shared
    new.send(memoryview(b"hello again"))
    assert bytes(memoryview(inbox.get("alice", 10.0))) == b"hello again"  # type: ignore[arg-type]
    pool.close()
    again.stop()


def test_multiplexed_hellos_are_checked(keys: dict[str, pki.Credentials], bob) -> None:  # type: ignore[no-untyped-def]
    server, _ = bob
    for hello in (
        peer_pb2.PeerHello(version=2, task_id="", sender="carol", receiver="bob"),  # not alice
        peer_pb2.PeerHello(version=2, task_id="", sender="alice", receiver="carol"),  # not bob
        peer_pb2.PeerHello(version=2, task_id=TASK, sender="alice", receiver="bob"),  # a task
    ):
        s = _raw_tls(keys["alice"], server)
        body = hello.SerializeToString()
        s.sendall(struct.pack("<I", len(body)) + body)
        s.settimeout(5)
        assert s.recv(1) == b""  # refused: the listener hung up
        s.close()
    assert not server._mux


def _session(  # type: ignore[no-untyped-def]
    keys: dict[str, pki.Credentials],
    program: smc.Program,
    duplicate: str | None = None,
    pooled: bool = False,
):
    """Three endpoints over real TLS links, keys from the per-task key agreement."""
    eph = {n: keyex.new_ephemeral() for n in NAMES}
    servers = {n: DataPlaneServer(keys[n], "127.0.0.1", 0) for n in NAMES}
    inboxes = {n: Inbox(TASK, n, tuple(p for p in NAMES if p != n)) for n in NAMES}
    for n in NAMES:
        servers[n].start()
        servers[n].open(inboxes[n])
    transports, rings = {}, {}
    for i, n in enumerate(NAMES):
        secrets = {
            j: keyex.derive_pair(eph[n], n, p, keyex.public_hex(eph[p]), MANIFEST)
            for j, p in enumerate(NAMES)
            if p != n
        }
        rings[n] = keyex.keyring(i, secrets, TASK)
        pool = LinkPool(keys[n])  # a daemon's multiplexed links, or one link per task
        links = {
            j: pool.link(p, _endpoint(servers[p]), TASK, timeout=5)
            if pooled
            else DirectLink.dial(keys[n], _endpoint(servers[p]), task_id=TASK, me=n, peer=p)
            for j, p in enumerate(NAMES)
            if p != n
        }
        if n == duplicate:
            link = links[(i + 1) % 3]
            original = link.send
            link.send = lambda f, _o=original: (_o(f), _o(f))  # type: ignore[method-assign]
        transports[n] = PeerTransport(i, NAMES, links, inboxes[n], deadline=time.monotonic() + 30)
    config = SessionConfig("rss3", NAMES, FixedPointConfig(program.frac_bits), program.hash, TASK)
    return servers, transports, rings, config


def _run_all(
    program: smc.Program,
    inputs: dict[str, dict[str, np.ndarray]],
    servers,
    transports,  # type: ignore[no-untyped-def]
    rings,
    config,
) -> tuple[dict[str, object], dict[str, BaseException]]:
    out: dict[str, object] = {}
    errors: dict[str, BaseException] = {}

    def work(i: int, n: str) -> None:
        try:
            out[n] = Executor(program, config, i, transports[n], rings[n], recv_timeout=10).run(
                inputs.get(n, {})
            )
        except BaseException as exc:
            errors[n] = exc
            for t in transports.values():
                t.abort(f"{n} failed")

    threads = [threading.Thread(target=work, args=(i, n)) for i, n in enumerate(NAMES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for n in NAMES:
        transports[n].close()
        servers[n].stop()
    return out, errors


def _product_program() -> smc.Program:
    p = smc.ProgramBuilder(NAMES)
    a = p.input("alice", "a", shape=(1000,))
    b = p.input("bob", "b", shape=(1000,))
    c = p.input("carol", "c", shape=(1000,))
    p.output("dot", smc.dot(a * b, c), to="carol")
    return p.build()


@pytest.mark.parametrize("pooled", [False, True], ids=["task-links", "pooled-links"])
def test_executor_runs_over_tls_links_with_agreed_keys(
    keys: dict[str, pki.Credentials], pooled: bool
) -> None:
    program = _product_program()
    rng = np.random.default_rng(1)
    inputs = {n: {k: rng.uniform(-4, 4, 1000)} for n, k in zip(NAMES, "abc", strict=True)}
    out, errors = _run_all(program, inputs, *_session(keys, program, pooled=pooled))
    assert not errors, errors
    ref = float(np.dot(inputs["alice"]["a"] * inputs["bob"]["b"], inputs["carol"]["c"]))
    got = float(out["carol"].outputs["dot"])  # type: ignore[attr-defined]
    assert abs(got - ref) < 1e-2
    assert not out["alice"].outputs  # type: ignore[attr-defined]


@pytest.mark.parametrize("pooled", [False, True], ids=["task-links", "pooled-links"])
def test_a_duplicated_frame_is_refused(keys: dict[str, pki.Credentials], pooled: bool) -> None:
    program = _product_program()
    inputs = {n: {k: np.ones(1000)} for n, k in zip(NAMES, "abc", strict=True)}
    session = _session(keys, program, duplicate="alice", pooled=pooled)
    _, errors = _run_all(program, inputs, *session)
    assert any(
        isinstance(e, ProtocolError) and "duplicated, replayed or out-of-order" in str(e)
        for e in errors.values()
    ), errors


# ------------------------------------------------------------------------------ key agreement


def test_pair_keys_agree_and_directions_differ() -> None:
    a, b = keyex.new_ephemeral(), keyex.new_ephemeral()
    sa = keyex.derive_pair(a, "alice", "bob", keyex.public_hex(b), MANIFEST)
    sb = keyex.derive_pair(b, "bob", "alice", keyex.public_hex(a), MANIFEST)
    assert sa.prf_key == sb.prf_key and len(sa.prf_key) == 16
    assert sa.send_key == sb.recv_key and sa.recv_key == sb.send_key and sa.send_key != sa.recv_key
    other = keyex.derive_pair(a, "alice", "bob", keyex.public_hex(b), "cd" * 32)
    assert other.prf_key != sa.prf_key  # bound to the manifest


def test_announcements_are_bound_to_party_task_and_manifest(
    keys: dict[str, pki.Credentials],
) -> None:
    eph = keyex.new_ephemeral()
    body = keyex.announcement_body(TASK, "alice", keyex.public_hex(eph), MANIFEST)
    sig = keys["alice"].sign(body)
    cert = keys["alice"].cert_pem
    kw = {"task_id": TASK, "party": "alice", "manifest_sha256": MANIFEST}
    assert keyex.verify_announcement(body, sig, cert, **kw) == keyex.public_hex(eph)
    with pytest.raises(keyex.KeyExchangeError, match="another task"):
        keyex.verify_announcement(body, sig, cert, **{**kw, "task_id": "8" * 32})
    with pytest.raises(keyex.KeyExchangeError, match="does not verify"):
        keyex.verify_announcement(body, keys["bob"].sign(body), cert, **kw)
    forged = body.replace(
        keyex.public_hex(eph).encode(), keyex.public_hex(keyex.new_ephemeral()).encode()
    )
    with pytest.raises(keyex.KeyExchangeError, match="does not verify"):
        keyex.verify_announcement(forged, sig, cert, **kw)


def test_transport_abort_wakes_a_blocked_receiver() -> None:
    inbox = Inbox(TASK, "bob", ("alice",))
    t = PeerTransport(1, ("alice", "bob"), {}, inbox, deadline=time.monotonic() + 30)
    threading.Timer(0.2, t.abort, args=("task cancelled by the hub",)).start()
    start = time.monotonic()
    with pytest.raises(TransportError, match="cancelled by the hub"):
        t.recv(0)
    assert time.monotonic() - start < 5
    t2 = PeerTransport(
        1, ("alice", "bob"), {}, Inbox(TASK, "bob", ("alice",)), deadline=time.monotonic() + 0.2
    )
    with pytest.raises(TransportError, match="no frame from 'alice'"):
        t2.recv(0)
