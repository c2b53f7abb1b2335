"""A party daemon re-checks every offer on its own: a malicious or buggy hub cannot change the
program, the manifest, the client or a peer's identity, nor replay an old offer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from smc.hub import pki
from smc.hub.manifest import Manifest
from smc.hub.store import now_ms
from smc.party import config as party_config
from smc.party import keyex
from smc.party.audit import verify
from smc.party.daemon import PartyDaemon
from smc.party.launch import to_toml
from smc.party.wire import program_pb
from smc.proto.v1 import hub_pb2, task_pb2

import smc

PARTIES = ("alice", "bob", "carol")


class FakeHub:
    address = "fake"
    relay = None

    def __init__(self) -> None:
        self.answers: list[hub_pb2.OfferAnswer] = []

    def answer(self, msg: hub_pb2.OfferAnswer) -> None:
        self.answers.append(msg)

    def report(self, msg: hub_pb2.TaskReport) -> None:
        pass


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    pki.create_ca(d)
    for n in PARTIES:
        pki.issue(d, "party", n)
    pki.issue(d, "client", "analyst")
    pki.create_ca(d / "other", "another deployment")
    pki.issue(d / "other", "party", "bob")
    pki.issue(d / "other", "client", "analyst")
    return d


@pytest.fixture
def daemon(keys: Path, tmp_path: Path) -> PartyDaemon:
    np.save(tmp_path / "v.npy", np.arange(4.0))
    text = to_toml(
        {
            "party": {
                "name": "alice",
                "cert": str(keys / "alice.crt"),
                "key": str(keys / "alice.key"),
                "ca": str(keys / "ca.crt"),
                "hubs": ["127.0.0.1:1"],
                "audit_log": "audit.log",
            },
            "datasets.v": {"path": "v.npy", "shape": [4]},
            "datasets.v.policy": {"any_program": True, "recipients": ["alice", "analyst"]},
        }
    )
    (tmp_path / "alice.toml").write_text(text)
    d = PartyDaemon(party_config.load(tmp_path / "alice.toml"))
    yield d
    d.dataplane.stop()  # type: ignore[union-attr]


def _program() -> smc.Program:
    p = smc.ProgramBuilder(PARTIES)
    p.output(
        "s", (p.input("alice", "v", shape=(4,)) + p.input("bob", "v", shape=(4,))).sum(), to="alice"
    )
    return p.build()


def offer(
    keys: Path, program: smc.Program | None = None, client_dir: Path | None = None, **changes: Any
) -> hub_pb2.TaskOffer:
    program = program or _program()
    creds = pki.Credentials.from_dir(client_dir or keys, "analyst")
    man = Manifest(
        task_id=changes.pop("task_id", "d" * 32),
        client="analyst",
        program_sha256=program.hash,
        parties=PARTIES,
        suite="rss3",
        created_ms=now_ms() - 10,
        deadline_ms=changes.pop("deadline_ms", now_ms() + 60_000),
        result_key="ee" * 32,
    )
    blob = man.to_bytes()
    participants = [
        task_pb2.Participant(
            name=n, role="party", endpoint="", cert=(keys / f"{n}.crt").read_bytes()
        )
        for n in PARTIES
    ]
    return hub_pb2.TaskOffer(
        task_id=man.task_id,
        program=program_pb(program),
        participants=participants,
        manifest=task_pb2.SignedManifest(
            manifest=blob, signature=creds.sign(blob), client_cert=creds.cert_pem
        ),
    )


def answer(daemon: PartyDaemon, msg: hub_pb2.TaskOffer) -> hub_pb2.OfferAnswer:
    hub = FakeHub()
    daemon._offer(hub, msg)  # type: ignore[arg-type]
    (ans,) = hub.answers
    return ans


def test_a_valid_offer_is_accepted_with_a_signed_key(daemon: PartyDaemon, keys: Path) -> None:
    msg = offer(keys)
    ans = answer(daemon, msg)
    assert ans.accept, ans.reason
    body = json.loads(ans.announcement.body)
    key = keyex.verify_announcement(
        ans.announcement.body,
        ans.announcement.signature,
        (keys / "alice.crt").read_bytes(),
        task_id="d" * 32,
        party="alice",
        manifest_sha256=hashlib.sha256(msg.manifest.manifest).hexdigest(),
    )
    assert key == body["x25519"]


def test_a_replayed_offer_is_refused(daemon: PartyDaemon, keys: Path) -> None:
    assert answer(daemon, offer(keys)).accept
    again = answer(daemon, offer(keys))
    assert not again.accept and "already used (replayed offer)" in again.reason


def _tamper(keys: Path, how: str) -> hub_pb2.TaskOffer:
    msg = offer(keys)
    if how == "program":
        other = smc.ProgramBuilder(PARTIES)
        other.output("s", other.input("alice", "v", shape=(4,)).sum(), to="bob")
        msg.program.CopyFrom(program_pb(other.build()))
    elif how == "manifest":
        man = json.loads(msg.manifest.manifest)
        man["result_key"] = "ff" * 32  # a hub swapping in its own key to read the results
        msg.manifest.manifest = json.dumps(man, sort_keys=True, separators=(",", ":")).encode()
    elif how == "peer":
        msg.participants[1].cert = (keys / "other" / "bob.crt").read_bytes()
    elif how == "peer-name":
        msg.participants[1].cert = (keys / "carol.crt").read_bytes()
    elif how == "malformed":
        msg.program.canonical = b"\x00not a program"
    return msg


@pytest.mark.parametrize(
    "how, reason",
    [
        ("program", "program hash mismatch"),
        ("manifest", "client authentication failed: manifest: signature does not verify"),
        ("peer", "participant 'bob': certificate was not issued by this deployment's CA"),
        ("peer-name", "participant 'bob': certificate names 'carol'"),
        ("malformed", "malformed program"),
    ],
)
def test_tampered_offers_are_refused_and_audited(
    daemon: PartyDaemon, keys: Path, how: str, reason: str
) -> None:
    ans = answer(daemon, _tamper(keys, how))
    assert not ans.accept and reason in ans.reason
    count, _ = verify(daemon.config.audit_log)
    assert count == 1 and "refused" in daemon.config.audit_log.read_text()


def test_foreign_client_and_late_offers_are_refused(daemon: PartyDaemon, keys: Path) -> None:
    ans = answer(daemon, offer(keys, client_dir=keys / "other", task_id="e" * 32))
    assert not ans.accept and "client authentication failed" in ans.reason
    late = offer(keys, task_id="f" * 32, deadline_ms=now_ms() - 1)
    ans = answer(daemon, late)
    assert not ans.accept and "deadline has passed" in ans.reason


class _Run:
    """Stands for a TaskRun: its state, the hub that routed it, the relay frames it got."""

    def __init__(self, state: str, origin: object) -> None:
        self.state = state
        self.origin = origin
        self.frames: list[hub_pb2.RelayFrame] = []

    def on_relay(self, frame: hub_pb2.RelayFrame, payload: bytes) -> None:
        self.frames.append(frame)


def test_each_hub_hears_only_of_its_own_tasks(daemon: PartyDaemon) -> None:
    hub_a, hub_b = object(), object()
    mine, theirs = _Run("running", hub_a), _Run("running", hub_b)
    daemon.tasks.update({"a" * 32: mine, "b" * 32: theirs})  # type: ignore[dict-item]
    assert list(daemon._heartbeat_request(hub_a).running) == ["a" * 32]  # type: ignore[arg-type]
    assert list(daemon._heartbeat_request(hub_b).running) == ["b" * 32]  # type: ignore[arg-type]
    # a relay frame (even an error frame, which fails the link) counts only from the task's hub
    bogus = hub_pb2.RelayFrame(task_id="a" * 32, peer="bob", error="injected")
    daemon._on_relay(hub_b, bogus, b"")  # type: ignore[arg-type]
    assert mine.frames == []
    daemon._on_relay(hub_a, bogus, b"")  # type: ignore[arg-type]
    assert mine.frames == [bogus]
    daemon.tasks.clear()
