"""The hub's task logic without the network: intake checks, routing, state, deadlines, restarts."""

from __future__ import annotations

import hashlib
import os
import queue
import secrets
from pathlib import Path
from typing import Any

import pytest
from smc.hub import pki
from smc.hub.core import HubCore, HubError
from smc.hub.manifest import Manifest
from smc.hub.store import SqliteTaskStore, now_ms
from smc.proto.v1 import hub_pb2, task_pb2

PARTIES = ("alice", "bob", "carol")
PROGRAM = b'{"a program":"opaque to the hub"}'


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ca")
    pki.create_ca(d)
    for n in PARTIES:
        pki.issue(d, "party", n)
    pki.issue(d, "client", "analyst")
    pki.issue(d, "client", "eve")
    return d


def ident(ca: Path, name: str) -> pki.Identity:
    return pki.Credentials.from_dir(ca, name).identity


def hub(ca: Path, db: Path, **kw: Any) -> HubCore:
    return HubCore(
        SqliteTaskStore(db), (ca / "ca.crt").read_bytes(), clients=frozenset({"analyst"}), **kw
    )


def online(core: HubCore, ca: Path) -> dict[str, queue.Queue[hub_pb2.PartyCommand | None]]:
    inboxes = {}
    for n in PARTIES:
        creds = pki.Credentials.from_dir(ca, n)
        core.register(
            creds.identity,
            creds.cert_pem,
            hub_pb2.RegisterRequest(
                endpoint=f"127.0.0.1:{1000 + len(n)}", suites=["rss3", "additive"]
            ),
        )
        got = core.registry.attach(n)
        assert got is not None
        inboxes[n] = got[0]
    return inboxes


def request(
    ca: Path, client: str = "analyst", program: bytes = PROGRAM, deadline_s: float = 30, **kw: Any
) -> hub_pb2.SubmitRequest:
    creds = pki.Credentials.from_dir(ca, client)
    digest = hashlib.sha256(program).hexdigest()
    fields: dict[str, Any] = dict(
        task_id=secrets.token_hex(16),
        client=client,
        program_sha256=digest,
        parties=PARTIES,
        suite="rss3",
        created_ms=now_ms(),
        deadline_ms=now_ms() + int(deadline_s * 1000),
    )
    fields.update(kw)
    blob = Manifest(**fields).to_bytes()
    return hub_pb2.SubmitRequest(
        manifest=task_pb2.SignedManifest(
            manifest=blob, signature=creds.sign(blob), client_cert=creds.cert_pem
        ),
        program=task_pb2.Program(canonical=program, sha256=digest),
    )


def accept(core: HubCore, ca: Path, task_id: str, names: tuple[str, ...] = PARTIES) -> None:
    for n in names:
        core.answer(
            ident(ca, n),
            hub_pb2.OfferAnswer(
                task_id=task_id,
                accept=True,
                announcement=task_pb2.Announcement(body=b"k-" + n.encode(), signature=b"s"),
            ),
        )


def drain(q: queue.Queue[hub_pb2.PartyCommand | None]) -> list[str]:
    kinds = []
    while not q.empty():
        cmd = q.get_nowait()
        kinds.append(cmd.WhichOneof("command") if cmd else "end")
    return kinds


def test_a_task_goes_from_offer_to_success(ca: Path, tmp_path: Path) -> None:
    core = hub(ca, tmp_path / "hub.db")
    inboxes = online(core, ca)
    task_id = core.submit(ident(ca, "analyst"), request(ca))
    assert all(drain(q) == ["offer"] for q in inboxes.values())
    accept(core, ca, task_id)
    assert all(drain(q) == ["start"] for q in inboxes.values())
    assert core._authorise_relay(task_id, "alice", "bob") is None
    assert "not a link" in str(core._authorise_relay(task_id, "alice", "mallory"))
    for n in PARTIES:
        res = (
            [task_pb2.EncryptedResult(party=n, nonce=b"n", ciphertext=b"c")] if n == "carol" else []
        )
        core.report(ident(ca, n), hub_pb2.TaskReport(task_id=task_id, kind="done", results=res))
    st = core.status(ident(ca, "analyst"), task_id)
    assert st.state == "succeeded" and [r.party for r in st.results] == ["carol"]
    assert [p.name for p in st.participants] == list(PARTIES)
    kinds = [e.kind for e in core.store.events(task_id)]
    assert kinds[:2] == ["submitted", "offered"] and kinds[-1] == "succeeded"
    assert "task" in str(core._authorise_relay(task_id, "alice", "bob"))  # no relay once finished
    with pytest.raises(HubError, match="belongs to another client"):
        core.status(ident(ca, "eve"), task_id)


@pytest.mark.parametrize(
    "who, change, code, message",
    [
        ("alice", {}, "denied", "only client certificates"),
        ("eve", {}, "denied", "not authorised to submit"),
        ("analyst", {"client": "eve"}, "denied", "names client 'eve'"),
        ("analyst", {"program": b"other"}, "invalid", "program hash mismatch"),
        (
            "analyst",
            {"parties": ("alice", "bob", "dave")},
            "precondition",
            "'dave' is not registered",
        ),
        ("analyst", {"deadline_s": 10**6}, "invalid", "deadline is more than"),
    ],
)
def test_intake_refusals(
    ca: Path, tmp_path: Path, who: str, change: dict[str, Any], code: str, message: str
) -> None:
    core = hub(ca, tmp_path / "hub.db")
    online(core, ca)
    kw = dict(change)
    program = kw.pop("program", None)
    req = request(ca, client=kw.pop("client", who if who != "alice" else "analyst"), **kw)
    if program is not None:
        req.program.canonical = program
    caller = ident(ca, who)
    with pytest.raises(HubError, match=message) as err:
        core.submit(caller, req)
    assert err.value.code == code


def test_forged_signature_and_replayed_submission(ca: Path, tmp_path: Path) -> None:
    core = hub(ca, tmp_path / "hub.db")
    online(core, ca)
    req = request(ca)
    forged = hub_pb2.SubmitRequest()
    forged.CopyFrom(req)
    forged.manifest.signature = pki.Credentials.from_dir(ca, "eve").sign(req.manifest.manifest)
    with pytest.raises(HubError, match="signature does not verify"):
        core.submit(ident(ca, "analyst"), forged)
    core.submit(ident(ca, "analyst"), req)
    with pytest.raises(HubError, match="already submitted") as err:
        core.submit(ident(ca, "analyst"), req)
    assert err.value.code == "exists"


def test_offline_party_is_refused_at_intake(ca: Path, tmp_path: Path) -> None:
    core = hub(ca, tmp_path / "hub.db")
    online(core, ca)
    core.detached("bob", core.registry.get("bob").generation, "test")  # type: ignore[union-attr]
    with pytest.raises(HubError, match="'bob' is offline"):
        core.submit(ident(ca, "analyst"), request(ca))


def test_refusal_fails_the_task_with_the_reason_and_cancels_the_others(
    ca: Path, tmp_path: Path
) -> None:
    core = hub(ca, tmp_path / "hub.db")
    inboxes = online(core, ca)
    task_id = core.submit(ident(ca, "analyst"), request(ca))
    accept(core, ca, task_id, ("alice",))
    core.answer(
        ident(ca, "bob"),
        hub_pb2.OfferAnswer(
            task_id=task_id, accept=False, reason="dataset 'x' may not be revealed to ['eve']"
        ),
    )
    st = core.status(ident(ca, "analyst"), task_id)
    assert st.state == "failed"
    assert st.reason == "party 'bob' refused: dataset 'x' may not be revealed to ['eve']"
    assert drain(inboxes["carol"]) == ["offer", "cancel"]


def test_party_going_offline_fails_its_running_tasks(ca: Path, tmp_path: Path) -> None:
    core = hub(ca, tmp_path / "hub.db")
    online(core, ca)
    task_id = core.submit(ident(ca, "analyst"), request(ca))
    accept(core, ca, task_id)
    core.detached("carol", core.registry.get("carol").generation, "its connection closed")  # type: ignore[union-attr]
    st = core.status(ident(ca, "analyst"), task_id)
    assert (
        st.state == "failed" and "party 'carol' went offline (its connection closed)" in st.reason
    )


def test_deadline_and_queue(ca: Path, tmp_path: Path) -> None:
    core = hub(ca, tmp_path / "hub.db", max_running=1)
    online(core, ca)
    first = core.submit(ident(ca, "analyst"), request(ca, deadline_s=0.05))
    second = core.submit(ident(ca, "analyst"), request(ca))
    assert core.store.get(second).state == "queued"  # type: ignore[union-attr]
    import time

    time.sleep(0.1)
    core.tick()
    st = core.status(ident(ca, "analyst"), first)
    assert st.state == "failed" and "deadline passed while the task was offered" in st.reason
    assert core.store.get(second).state == "offered"  # type: ignore[union-attr]


def test_restart_keeps_finished_tasks_and_fails_unfinished_ones(ca: Path, tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    core = hub(ca, db)
    online(core, ca)
    done = core.submit(ident(ca, "analyst"), request(ca))
    accept(core, ca, done)
    for n in PARTIES:
        core.report(
            ident(ca, n),
            hub_pb2.TaskReport(
                task_id=done,
                kind="done",
                results=[task_pb2.EncryptedResult(party=n, nonce=b"n", ciphertext=b"sealed")],
            ),
        )
    running = core.submit(ident(ca, "analyst"), request(ca))
    accept(core, ca, running)
    core.store.close()
    again = hub(ca, db)
    st = again.status(ident(ca, "analyst"), done)
    assert st.state == "succeeded" and len(st.results) == 3
    st = again.status(ident(ca, "analyst"), running)
    assert st.state == "failed"
    assert st.reason == "hub restarted while the task was unfinished (the task was running)"


def _done_with_pending(core: HubCore, ca: Path) -> str:
    """A task whose parties are done, carol having reported her result by nonce only."""
    online(core, ca)
    task_id = core.submit(ident(ca, "analyst"), request(ca))
    accept(core, ca, task_id)
    pending = task_pb2.EncryptedResult(party="carol", nonce=b"n" * 12, ciphertext=b"")
    for n in PARTIES:
        res = [pending] if n == "carol" else []
        core.report(ident(ca, n), hub_pb2.TaskReport(task_id=task_id, kind="done", results=res))
    return task_id


def _upload(
    core: HubCore, ca: Path, task_id: str, who: str, nonce: bytes, ct: bytes, kind: str = "result"
) -> None:
    sealed = task_pb2.EncryptedResult(party=who, nonce=nonce, ciphertext=ct)
    core.report(ident(ca, who), hub_pb2.TaskReport(task_id=task_id, kind=kind, results=[sealed]))


def test_a_result_reported_by_nonce_is_stored_when_uploaded(ca: Path, tmp_path: Path) -> None:
    """A party may report done with its result's nonce only (the client can take the sealed
    result from the party directly): the task succeeds when every party is done, and the hub
    stores the upload that follows."""
    core = hub(ca, tmp_path / "hub.db")
    task_id = _done_with_pending(core, ca)
    st = core.status(ident(ca, "analyst"), task_id)
    assert st.state == "succeeded" and [(r.party, r.ciphertext) for r in st.results] == [
        ("carol", b"")
    ]
    _upload(core, ca, task_id, "bob", b"n" * 12, b"c" * 40)  # bob owes nothing: ignored
    _upload(core, ca, task_id, "carol", b"n" * 12, b"c" * 40)
    st = core.status(ident(ca, "analyst"), task_id)
    assert [(r.party, r.ciphertext) for r in st.results] == [("carol", b"c" * 40)]
    assert not core._uploads  # nothing more awaited


def test_an_upload_that_differs_from_the_report_is_refused(ca: Path, tmp_path: Path) -> None:
    core = hub(ca, tmp_path / "hub.db")
    task_id = _done_with_pending(core, ca)
    _upload(core, ca, task_id, "carol", b"m" * 12, b"c" * 40)  # another nonce
    st = core.status(ident(ca, "analyst"), task_id)
    assert st.state == "succeeded" and st.results[0].ciphertext == b""  # not stored
    kinds = [(e.kind, e.party) for e in core.store.events(task_id)]
    assert ("upload_refused", "carol") in kinds
    _upload(core, ca, task_id, "carol", b"n" * 12, b"c" * 40)  # no second chance
    assert core.status(ident(ca, "analyst"), task_id).results[0].ciphertext == b""


def test_a_result_the_client_took_directly_is_recorded_and_never_stored(
    ca: Path, tmp_path: Path
) -> None:
    core = hub(ca, tmp_path / "hub.db")
    task_id = _done_with_pending(core, ca)
    _upload(core, ca, task_id, "carol", b"m" * 12, b"", kind="delivered")  # not her nonce
    assert ("upload_refused", "carol") in [(e.kind, e.party) for e in core.store.events(task_id)]
    task_id = _done_with_pending(core, ca)
    _upload(core, ca, task_id, "carol", b"n" * 12, b"", kind="delivered")
    assert not core._uploads  # nothing more awaited
    events = core.store.events(task_id)
    assert (events[-1].kind, events[-1].party, events[-1].state) == (
        "result_delivered",
        "carol",
        "succeeded",
    )
    _upload(core, ca, task_id, "carol", b"n" * 12, b"c" * 40)  # settled already: not stored
    assert core.status(ident(ca, "analyst"), task_id).results[0].ciphertext == b""
    # a watcher sees what followed the final event (this is how a client learns of it)
    seen = list(core.watch(ident(ca, "analyst"), task_id, 0, lambda: True))
    assert [e.kind for e in seen[-2:]] == ["succeeded", "result_delivered"]


def test_uploads_are_awaited_for_a_bounded_time(
    ca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smc.hub import core as core_module

    monkeypatch.setattr(core_module, "UPLOAD_GRACE_S", 0.0)
    core = hub(ca, tmp_path / "hub.db")
    task_id = _done_with_pending(core, ca)
    core.tick()
    assert not core._uploads
    _upload(core, ca, task_id, "carol", b"n" * 12, b"c" * 40)  # too late
    assert core.status(ident(ca, "analyst"), task_id).results[0].ciphertext == b""


def test_large_results_are_files_that_survive_a_restart(tmp_path: Path) -> None:
    from smc.hub.store import INLINE_RESULT_MAX

    db = tmp_path / "hub.db"
    store = SqliteTaskStore(db)
    big = os.urandom(INLINE_RESULT_MAX + 1)
    small = os.urandom(INLINE_RESULT_MAX)
    task_id = "ab" * 16
    store.add_result(task_id, "bob", b"n2", big)
    store.add_result(task_id, "alice", b"n1", small)
    files = list((tmp_path / "hub.db.results").rglob("*"))
    assert [f.name for f in files if f.is_file()] == ["bob.bin"]  # the small one stays inline
    assert big not in db.read_bytes()
    store.close()
    again = SqliteTaskStore(db)
    assert again.results(task_id) == [("alice", b"n1", small), ("bob", b"n2", big)]
    (tmp_path / "hub.db.results" / task_id / "bob.bin").write_bytes(big[:-1])
    with pytest.raises(OSError, match="bytes on disk"):
        again.results(task_id)
    with pytest.raises(ValueError, match="refusing result file name"):
        again.add_result("../" + task_id, "bob", b"n", big)
    again.close()


def test_relay_refuses_oversized_chunks_and_foreign_links(ca: Path, tmp_path: Path) -> None:
    from smc.hub.relay import MAX_PAYLOAD

    core = hub(ca, tmp_path / "hub.db")
    online(core, ca)
    task_id = core.submit(ident(ca, "analyst"), request(ca))
    header = hub_pb2.RelayFrame(task_id=task_id, peer="bob", seq=0)
    # offered, not started yet
    assert "is not running" in str(core.relay.forward("alice", header, b"x" * 64))
    accept(core, ca, task_id)
    _, outbox = core.relay.open("bob")
    assert core.relay.forward("alice", header, b"x" * 64) is None
    delivered = outbox.get_nowait()
    assert delivered is not None
    assert delivered[0].peer == "alice" and delivered[1] == b"x" * 64  # the hub stamps the sender
    assert core.relay.forward("alice", header, b"x" * MAX_PAYLOAD) is None  # a chunk and its tag
    assert "above the" in str(core.relay.forward("alice", header, b"x" * (MAX_PAYLOAD + 1)))
    mallory = hub_pb2.RelayFrame(task_id=task_id, peer="mallory", seq=0)
    assert "not a link" in str(core.relay.forward("alice", mallory, b"x"))
