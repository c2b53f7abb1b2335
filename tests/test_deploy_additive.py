"""End to end: four party daemons and a dealer on the additive suite, one party reachable only
through the hub relay, and what the hub sees of it all.

The hub runs in this process (with an observer on the relay) so that every relayed byte can be
inspected; the party daemons and the dealer are real processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from helpers import hub_state_bytes
from smc.hub.config import load as load_hub_config
from smc.hub.server import HubServer
from smc.party.dataplane import wait_for
from smc.party.launch import LocalDeployment

import smc

PARTIES = ("p0", "p1", "p2", "p3")
N = 1000


def _data(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100 + seed)
    return {
        "amounts": np.round(rng.uniform(1e9, 2e9, N), 3),
        "small": np.round(rng.uniform(-5, 5, N), 4),
    }


DATA = {p: _data(k) for k, p in enumerate(PARTIES)}


def _datasets(root: Path, party: str) -> dict[str, dict[str, Any]]:
    policy = {"any_program": True, "recipients": ["p0", "analyst"], "min_parties": 2}
    out = {}
    for name, values in DATA[party].items():
        np.save(root / f"{party}-{name}.npy", values)
        out[name] = {"path": f"{party}-{name}.npy", "shape": [N], "policy": policy}
    return out


class Tap:
    def __init__(self) -> None:
        self.chunks: list[tuple[str, str, str, bytes]] = []

    def __call__(self, task_id: str, sender: str, receiver: str, payload: bytes) -> None:
        self.chunks.append((task_id, sender, receiver, bytes(payload)))

    def links(self, task_id: str) -> set[frozenset[str]]:
        return {frozenset((s, r)) for t, s, r, _ in self.chunks if t == task_id}


class Recorder(grpc.ServerInterceptor):  # type: ignore[misc]
    """Records every message the hub receives or sends, on every RPC, serialized."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.methods: set[str] = set()

    def _keep(self, msg: Any) -> Any:
        self.messages.append(msg.SerializeToString())
        return msg

    def _stream(self, it: Any) -> Any:
        for msg in it:
            yield self._keep(msg)

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        self.methods.add(details.method)
        kind = ("stream" if handler.request_streaming else "unary") + (
            "_stream" if handler.response_streaming else "_unary"
        )
        fn = getattr(handler, kind)
        wrap_in = self._stream if handler.request_streaming else self._keep
        wrap_out = self._stream if handler.response_streaming else self._keep
        return getattr(grpc, f"{kind}_rpc_method_handler")(
            lambda req, ctx: wrap_out(fn(wrap_in(req), ctx)),
            handler.request_deserializer,
            handler.response_serializer,
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("additive")
    dep = LocalDeployment(
        root,
        {p: _datasets(root, p) for p in PARTIES},
        dealer="dealer",
        relay_only=("p3",),
        # p2 advertises an address nobody can dial: its peers fall back to the relay; p0 and
        # p2 keep OpenSSL's TLS records on their relay hop ("tls"), the others use the default
        # sealed records
        party_extra={
            "p0": {"relay_channel": "tls"},
            "p2": {"advertise": "127.0.0.2", "relay_channel": "tls"},
        },
    )
    dep.write()
    tap = Tap()
    recorder = Recorder()
    hub = HubServer(load_hub_config(root / "hub.toml"), tap=tap, interceptors=[recorder])
    hub.start()
    dep.hub_address = hub.address
    try:
        dep.start_parties()
        hub.recorder = recorder  # type: ignore[attr-defined]
        yield dep, hub, tap
    finally:
        dep.stop()
        hub.stop()


def program() -> smc.Program:
    p = smc.ProgramBuilder(PARTIES)
    total = sum(p.input(x, "amounts", shape=(N,)).sum() for x in PARTIES)
    p.output("total", total, to="p0")
    p.output(
        "dot",
        smc.dot(p.input("p1", "small", shape=(N,)), p.input("p3", "small", shape=(N,))),
        to="p0",
    )
    return p.build()


def _check(outputs: dict[str, dict[str, np.ndarray]]) -> None:
    assert set(outputs) == {"p0"}
    total = sum(DATA[x]["amounts"].sum() for x in PARTIES)
    assert float(outputs["p0"]["total"]) == pytest.approx(total, rel=1e-9)
    assert float(outputs["p0"]["dot"]) == pytest.approx(
        np.dot(DATA["p1"]["small"], DATA["p3"]["small"]), abs=0.05
    )


def test_additive_with_dealer_and_a_relay_only_party(deployment) -> None:  # type: ignore[no-untyped-def]
    dep, _, tap = deployment
    with dep.client() as client:
        res = client.run(program(), dealer="dealer", deadline_s=60)
    _check(res.outputs)
    links = tap.links(res.task_id)
    assert any("p3" in link for link in links), "p3 has no data-plane port: it needs the relay"
    assert any("p2" in link and "p3" not in link for link in links), "no fallback to the relay"
    assert all("p3" in link or "p2" in link for link in links), f"unexpected relayed links {links}"


def test_everything_through_the_relay(deployment) -> None:  # type: ignore[no-untyped-def]
    dep, hub, tap = deployment
    before = hub.core.relay.bytes_relayed
    with dep.client() as client:
        res = client.run(program(), dealer="dealer", deadline_s=60, data_plane="relay")
    _check(res.outputs)
    assert frozenset(("p0", "p1")) in tap.links(res.task_id)
    assert any("dealer" in link for link in tap.links(res.task_id))
    assert hub.core.relay.bytes_relayed > before
    # p0 -> p1 went from a "tls" hop to a "sealed" one; each party kept the channel it chose
    sealed = {"p1", "p3", "dealer"}
    for name in (*PARTIES, "dealer"):
        for direction in ("up", "down"):
            want = "sealed" if name in sealed else "tls"
            assert hub.relay.channels[name, direction] == want, (name, direction)


def test_relay_connections_that_drop_are_reopened(deployment) -> None:  # type: ignore[no-untyped-def]
    """The hub drops every party's relay connection while staying up (as a middlebox cutting
    idle connections would): the daemons notice, open new ones, and relayed tasks work again."""
    dep, hub, _ = deployment
    switch = hub.core.relay
    attached = set(switch._out)
    assert attached >= {*PARTIES, "dealer"}
    old = {name: gen for name, (gen, _) in switch._out.items()}
    switch.close_all()  # each "down" connection ends; its party sees the relay break
    assert wait_for(lambda: all(switch._out.get(n, (0,))[0] > old[n] for n in attached), 15), (
        "the parties did not reopen their relay connections"
    )
    with dep.client() as client:
        res = client.run(program(), dealer="dealer", deadline_s=60, data_plane="relay")
    _check(res.outputs)


def test_the_hub_sees_only_ciphertext(deployment) -> None:  # type: ignore[no-untyped-def]
    dep, hub, tap = deployment
    assert tap.chunks
    relayed = b"".join(c for *_, c in tap.chunks)
    # Every plaintext transport frame starts with its round number (a small integer); relayed
    # chunks are AEAD ciphertext (random-looking, 16-byte tag), so none may look like that.
    for *_, chunk in tap.chunks:
        assert len(chunk) >= 16
        assert int.from_bytes(chunk[:8], "little") >= 1 << 20
    stored = hub_state_bytes(dep.root)
    # every control message too: submissions, offers, answers, reports (with the sealed
    # results), progress and watch events, status replies (relayed chunks travel on the relay
    # port, raw mTLS, and the tap above sees every one of their payloads)
    recorder = hub.recorder
    for method in ("Submit", "Attach", "Answer", "Report", "Watch", "GetTask"):
        assert f"/smc.v1.Hub/{method}" in recorder.methods
    control = b"".join(recorder.messages)
    assert program().to_bytes() in control  # the recorder sees real content: the public program
    seen = windows(relayed) | windows(stored) | windows(control)
    scale = 2.0**16
    values = [v for x in PARTIES for v in DATA[x]["amounts"]]
    values.append(sum(DATA[x]["amounts"].sum() for x in PARTIES))  # the result
    for value in values:
        assert np.float64(value).tobytes() not in seen
        assert np.int64(round(value * scale)).tobytes() not in seen


def windows(data: bytes) -> set[bytes]:
    """Every 8-byte substring (a plaintext value may sit at any offset)."""
    return {data[i : i + 8] for i in range(len(data) - 7)}
