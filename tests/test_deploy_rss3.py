"""End to end with real processes on loopback: a hub and three party daemons on rss3.

Every process binds a port chosen by the operating system; everything goes over mTLS. The module
shares one deployment; tests that kill or restart a process leave it running again.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
from pathlib import Path
from typing import Any

import grpc
import helpers
import numpy as np
import pytest
from helpers import hub_state_bytes
from smc.hub import pki
from smc.hub.manifest import Manifest
from smc.hub.store import now_ms
from smc.party import HubRequestError, TaskFailed
from smc.party.audit import verify
from smc.party.client import Client
from smc.party.launch import LocalDeployment
from smc.party.wire import program_pb
from smc.proto.v1 import hub_pb2, hub_pb2_grpc, task_pb2

import smc

PARTIES = ("alice", "bob", "carol")
ROWS = 40
RECIPIENTS = ["alice", "carol", "analyst"]


def _data(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "age": rng.integers(18, 90, ROWS).astype(np.float64),
        "cost": np.round(rng.uniform(0.5, 5.0, ROWS), 4),
        "salary": np.round(rng.uniform(20, 90, ROWS), 2),
        "amount": np.round(rng.uniform(1e9, 2e9, ROWS), 3),  # distinctive bytes for the leak check
    }


DATA = {p: _data(k) for k, p in enumerate(PARTIES)}
WAGES = np.round(np.random.default_rng(9).uniform(10, 60, ROWS), 3)  # held by dora, input-only


def _contributor(root: Path) -> dict[str, dict[str, Any]]:
    (root / "dora-wages.csv").write_text("wage\n" + "\n".join(f"{w:.3f}" for w in WAGES) + "\n")
    policy = {"any_program": True, "recipients": RECIPIENTS, "min_parties": 2}
    return {"wages": {"path": "dora-wages.csv", "columns": {"wage": "fixed"}, "policy": policy}}


def _datasets(root: Path, party: str) -> dict[str, dict[str, Any]]:
    d = DATA[party]
    rows = [f"{a:.0f},{c:.4f}" for a, c in zip(d["age"], d["cost"], strict=True)]
    (root / f"{party}-visits.csv").write_text("age,cost\n" + "\n".join(rows) + "\n")
    (root / f"{party}-payroll.csv").write_text(
        "salary\n" + "\n".join(f"{s:.2f}" for s in d["salary"]) + "\n"
    )
    np.save(root / f"{party}-amounts.npy", d["amount"])
    open_policy = {"any_program": True, "recipients": RECIPIENTS, "min_parties": 2}
    return {
        "visits": {
            "path": f"{party}-visits.csv",
            "columns": {"age": "fixed", "cost": "fixed"},
            "rows": ROWS,
            "policy": open_policy,
        },
        "payroll": {
            "path": f"{party}-payroll.csv",
            "columns": {"salary": "fixed"},
            "policy": {"programs": [], "recipients": RECIPIENTS},
        },
        "amounts": {
            "path": f"{party}-amounts.npy",
            "format": "npy",
            "shape": [ROWS],
            "policy": {**open_policy, "min_parties": 1},
        },
    }


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("rss3")
    parties = {p: _datasets(root, p) for p in PARTIES}
    parties["dora"] = _contributor(root)
    slow = {p: {"slow_rounds_s": 0.003} for p in PARTIES}
    d = LocalDeployment(
        root, parties, clients=("analyst", "eve"), authorised=("analyst",), party_extra=slow
    )
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def client(dep: LocalDeployment):  # type: ignore[no-untyped-def]
    with dep.client("analyst") as c:
        yield c


def stats_program() -> smc.Program:
    p = smc.ProgramBuilder(PARTIES)
    ages = smc.concatenate([p.input(x, "visits.age", shape=(ROWS,)) for x in PARTIES])
    costs = smc.concatenate([p.input(x, "visits.cost", shape=(ROWS,)) for x in PARTIES])
    p.output("mean_age", ages.mean(), to="alice")
    p.output("age_cost", smc.dot(ages, costs) / (3 * ROWS), to="alice")
    return p.build()


def chain_program(steps: int) -> smc.Program:
    return helpers.chain_program(PARTIES, ROWS, steps)


def _started(task: Any) -> None:
    for ev in task.events():
        if ev.kind == "started":
            return
    raise AssertionError("the task never started")


def test_rss3_program_runs_end_to_end(client: Client) -> None:
    res = client.run(stats_program(), deadline_s=60)
    ages = np.concatenate([DATA[p]["age"] for p in PARTIES])
    costs = np.concatenate([DATA[p]["cost"] for p in PARTIES])
    assert float(res["alice"]["mean_age"]) == pytest.approx(ages.mean(), abs=1e-3)
    assert float(res["alice"]["age_cost"]) == pytest.approx(
        np.dot(ages, costs) / ages.size, abs=1e-2
    )
    assert set(res.outputs) == {"alice"}  # bob and carol received nothing
    kinds = [e.kind for e in res.events]
    assert kinds[:2] == ["submitted", "offered"] and kinds[-1] == "succeeded"
    assert kinds.count("accepted") == 3 and kinds.count("party_done") == 3
    assert res.picked_up == ()  # small results come with the hub's status


def test_concurrent_tasks(client: Client) -> None:
    programs = [stats_program(), chain_program(3), stats_program()]
    tasks = [client.submit(p, deadline_s=60) for p in programs]
    results = [t.wait() for t in tasks]
    ages = np.concatenate([DATA[p]["age"] for p in PARTIES])
    assert float(results[0]["alice"]["mean_age"]) == pytest.approx(ages.mean(), abs=1e-3)
    assert float(results[2]["alice"]["mean_age"]) == pytest.approx(ages.mean(), abs=1e-3)
    ref = float(np.sum(DATA["alice"]["cost"] * DATA["bob"]["cost"]) * 0.99**3)
    assert float(results[1]["alice"]["x"]) == pytest.approx(ref, rel=1e-3)


def _refusal(client: Client, program: smc.Program, **kw: Any) -> str:
    with pytest.raises(TaskFailed) as err:
        client.run(program, deadline_s=30, **kw)
    return err.value.reason


def test_policy_violations_are_refused_with_a_reason(client: Client) -> None:
    p = smc.ProgramBuilder(PARTIES)
    p.output(
        "total",
        smc.concatenate([p.input(x, "payroll", shape=(ROWS,)) for x in PARTIES]).sum(),
        to="alice",
    )
    reason = _refusal(client, p.build())
    assert "refused: dataset 'payroll' is not allowed in program" in reason
    p = smc.ProgramBuilder(PARTIES)
    p.output(
        "m",
        (
            p.input("alice", "visits.age", shape=(ROWS,))
            + p.input("bob", "visits.age", shape=(ROWS,))
        ).sum(),
        to="bob",
    )
    assert "may not be revealed to ['bob']" in _refusal(client, p.build())
    p = smc.ProgramBuilder(PARTIES)
    p.output("m", p.input("carol", "visits.age", shape=(ROWS,)).sum(), to="alice")
    assert "needs at least 2 contributing parties" in _refusal(client, p.build())


def test_unknown_dataset_and_shape_mismatch(client: Client) -> None:
    p = smc.ProgramBuilder(PARTIES)
    p.output(
        "s",
        p.input("bob", "genomes", shape=(ROWS,)).sum()
        + p.input("alice", "visits.age", shape=(ROWS,)).sum(),
        to="alice",
    )
    assert "party 'bob' refused: input 'genomes': unknown dataset 'genomes'" in _refusal(
        client, p.build()
    )
    p = smc.ProgramBuilder(PARTIES)
    p.output(
        "s",
        (
            p.input("alice", "visits.age", shape=(ROWS + 1,))
            * p.input("bob", "visits.age", shape=(ROWS + 1,))
        ).sum(),
        to="alice",
    )
    assert "declares shape (41,), dataset 'visits' gives (40,)" in _refusal(client, p.build())


def test_explicit_bindings(client: Client) -> None:
    p = smc.ProgramBuilder(PARTIES)
    total = sum(p.input(x, "amount", shape=(ROWS,)).sum() for x in PARTIES)
    p.output("total", total, to="alice")
    res = client.run(p.build(), bindings={x: {"amount": "amounts"} for x in PARTIES}, deadline_s=60)
    ref = sum(DATA[x]["amount"].sum() for x in PARTIES)
    assert float(res["alice"]["total"]) == pytest.approx(ref, rel=1e-9)


def test_input_only_party_contributes_shares(dep: LocalDeployment, client: Client) -> None:
    from smc.circuits.blocks import client_input

    p = smc.ProgramBuilder(PARTIES)  # dora is not a computing party: her data arrives as shares
    wages = client_input(p, "wages", (ROWS,), dtype="fixed")
    ages = p.input("alice", "visits.age", shape=(ROWS,))
    p.output("total", wages.sum(), to="alice")
    p.output("weighted", smc.dot(wages, ages) / ROWS, to="alice")
    contributions = {"dora": {"wages": ("wages", ("wage",), "fixed")}}
    res = client.run(p.build(), contributions=contributions, deadline_s=60)
    assert float(res["alice"]["total"]) == pytest.approx(WAGES.sum(), abs=1e-2)
    ref = float(WAGES @ DATA["alice"]["age"]) / ROWS
    assert float(res["alice"]["weighted"]) == pytest.approx(ref, rel=1e-4)
    assert any(e.kind == "party_done" and e.party == "dora" for e in res.events)
    assert '"event":"contributed"' in (dep.root / "audit" / "dora.log").read_text()
    q = smc.ProgramBuilder(PARTIES)  # the same data towards a recipient dora does not allow
    q.output("total", client_input(q, "wages", (ROWS,), dtype="fixed").sum(), to="bob")
    with pytest.raises(
        TaskFailed, match="party 'dora' refused: dataset 'wages' may not be revealed"
    ):
        client.run(q.build(), contributions=contributions, deadline_s=30)


def test_input_only_party_may_go_offline_after_contributing(dep: LocalDeployment) -> None:
    """Delegation: once the computing parties acknowledged dora's shares she may disconnect; the
    task (a long chain of products on her data) still completes."""
    from smc.circuits.blocks import client_input

    p = smc.ProgramBuilder(PARTIES)
    x = client_input(p, "wages", (ROWS,), dtype="fixed") * 0.001
    for _ in range(300):
        x = x * 1.0
    p.output("total", x.sum(), to="alice")
    p.output("ages", p.input("alice", "visits.age", shape=(ROWS,)).sum(), to="alice")
    contributions = {"dora": {"wages": ("wages", ("wage",), "fixed")}}
    client = dep.client("analyst")  # a fresh connection: earlier tests restart the hub
    task = client.submit(p.build(), contributions=contributions, deadline_s=90)
    for ev in task.events():
        assert ev.state not in ("failed", "succeeded", "cancelled"), (ev.kind, ev.message)
        if ev.kind == "party_done" and ev.party == "dora":
            break
    dep.kill("dora")
    try:
        res = task.wait()
        assert float(res["alice"]["total"]) == pytest.approx(WAGES.sum() * 0.001, abs=1e-2)
    finally:
        client.close()
        dep.start_parties(["dora"])


def _raw_submit(dep: LocalDeployment, program_bytes: bytes, manifest_hash: str) -> grpc.RpcError:
    creds = pki.Credentials.from_dir(dep.keys, "analyst")
    man = Manifest(
        task_id=hashlib.sha256(program_bytes).hexdigest()[:32],
        client="analyst",
        program_sha256=manifest_hash,
        parties=PARTIES,
        suite="rss3",
        created_ms=now_ms(),
        deadline_ms=now_ms() + 30_000,
    ).to_bytes()
    req = hub_pb2.SubmitRequest(
        manifest=task_pb2.SignedManifest(
            manifest=man, signature=creds.sign(man), client_cert=creds.cert_pem
        ),
        program=task_pb2.Program(
            canonical=program_bytes, sha256=hashlib.sha256(program_bytes).hexdigest()
        ),
    )
    with dep.client("analyst") as c:
        try:
            c.stub.Submit(req, timeout=60)
        except grpc.RpcError as exc:
            return exc
    raise AssertionError("the hub accepted the request")


def test_program_hash_mismatch_and_oversized_program(dep: LocalDeployment) -> None:
    blob = stats_program().to_bytes()
    err = _raw_submit(dep, blob, "0" * 64)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "program hash mismatch" in str(
        err.details()
    )
    big = b" " * (65 << 20)
    err = _raw_submit(dep, big, hashlib.sha256(big).hexdigest())
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_undecodable_messages_do_not_hurt_the_hub(dep: LocalDeployment, client: Client) -> None:
    for method in ("Submit", "Answer", "Report"):
        raw = client._channel.unary_unary(f"/smc.v1.Hub/{method}")  # bytes in, bytes out
        with pytest.raises(grpc.RpcError) as err:
            raw(b"\xff\xfe\x00garbage\x12", timeout=10)
        assert err.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    assert len(client.parties()) >= 3  # still serving


def test_malformed_program_is_refused_by_the_parties(dep: LocalDeployment, client: Client) -> None:
    blob = b'{"version":1,"parties":["alice","bob","carol"],"nodes":"oops"}'
    creds = pki.Credentials.from_dir(dep.keys, "analyst")
    man = Manifest(
        task_id="c" * 32,
        client="analyst",
        program_sha256=hashlib.sha256(blob).hexdigest(),
        parties=PARTIES,
        suite="rss3",
        created_ms=now_ms(),
        deadline_ms=now_ms() + 30_000,
    )
    mb = man.to_bytes()
    client.stub.Submit(
        hub_pb2.SubmitRequest(
            manifest=task_pb2.SignedManifest(
                manifest=mb, signature=creds.sign(mb), client_cert=creds.cert_pem
            ),
            program=task_pb2.Program(canonical=blob, sha256=man.program_sha256),
        ),
        timeout=30,
    )
    from smc.party.client import Task

    with pytest.raises(TaskFailed, match="malformed program"):
        Task(client, man, None, time.perf_counter()).wait()


def test_unauthenticated_and_foreign_clients_are_refused(
    dep: LocalDeployment, tmp_path: Path
) -> None:
    ca = (dep.keys / "ca.crt").read_bytes()
    opts = [("grpc.ssl_target_name_override", "hub")]
    for channel in (
        grpc.secure_channel(dep.hub_address, grpc.ssl_channel_credentials(ca), opts),
        grpc.insecure_channel(dep.hub_address),
    ):
        with pytest.raises(grpc.RpcError) as err:
            hub_pb2_grpc.HubStub(channel).ListParties(hub_pb2.ListPartiesRequest(), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        channel.close()
    pki.create_ca(tmp_path, "another deployment")
    pki.issue(tmp_path, "client", "analyst")
    with Client(dep.hub_address, pki.Credentials.from_dir(tmp_path, "analyst"), "hub") as foreign:
        with pytest.raises(HubRequestError) as herr:
            foreign.parties()
        assert herr.value.code == "UNAVAILABLE"


def test_unauthorised_client_and_party_certificates_cannot_submit(dep: LocalDeployment) -> None:
    with (
        dep.client("eve") as eve,
        pytest.raises(HubRequestError, match="'eve' is not authorised") as err,
    ):
        eve.run(stats_program(), deadline_s=30)
    assert err.value.code == "PERMISSION_DENIED"
    alice = Client(dep.hub_address, pki.Credentials.from_dir(dep.keys, "alice"), "hub")
    with pytest.raises(HubRequestError, match="only client certificates"):
        alice.submit(stats_program())
    alice.close()


def test_unregistered_party(dep: LocalDeployment, client: Client) -> None:
    p = smc.ProgramBuilder(("alice", "bob", "dave"))
    p.output("s", p.input("dave", "visits.age", shape=(ROWS,)).sum(), to="alice")
    with pytest.raises(HubRequestError, match="party 'dave' is not registered") as err:
        client.run(p.build())
    assert err.value.code == "FAILED_PRECONDITION"
    pki.issue(dep.keys, "party", "dave")
    dave = Client(dep.hub_address, pki.Credentials.from_dir(dep.keys, "dave"), "hub")
    with pytest.raises(grpc.RpcError) as rpc:
        next(iter(dave.stub.Attach(hub_pb2.AttachRequest(), timeout=10)))
    assert rpc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as rpc:
        dave.stub.Report(hub_pb2.TaskReport(task_id="a" * 32, kind="done"), timeout=10)
    assert "not registered" in str(rpc.value.details())
    dave.close()


def test_health_service(dep: LocalDeployment) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    creds = pki.Credentials.from_dir(dep.keys, "analyst")
    ch = grpc.secure_channel(
        dep.hub_address,
        grpc.ssl_channel_credentials(creds.ca_pem, creds.key_pem, creds.cert_pem),
        [("grpc.ssl_target_name_override", "hub")],
    )
    reply = health_pb2_grpc.HealthStub(ch).Check(
        health_pb2.HealthCheckRequest(service="smc.v1.Hub"), timeout=10
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    ch.close()
    address = dep.procs["alice"].info["health"]  # each party daemon serves grpc.health.v1 too
    ch = grpc.secure_channel(
        address,
        grpc.ssl_channel_credentials(creds.ca_pem, creds.key_pem, creds.cert_pem),
        [("grpc.ssl_target_name_override", "alice")],
    )
    reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    ch.close()


def test_deadline_fails_a_slow_task(client: Client) -> None:
    start = time.monotonic()
    with pytest.raises(TaskFailed, match="deadline"):
        client.run(chain_program(400), deadline_s=1.5)
    assert time.monotonic() - start < 15


def test_client_can_cancel_a_running_task(dep: LocalDeployment, client: Client) -> None:
    task = client.submit(chain_program(400), deadline_s=60)
    _started(task)
    task.cancel("changed my mind")
    with pytest.raises(TaskFailed) as err:
        task.wait()
    assert (
        err.value.state == "cancelled"
        and "cancelled by analyst: changed my mind" in err.value.reason
    )
    deadline = time.monotonic() + 10  # the parties abort their sessions and audit it
    while "cancelled by the hub" not in (dep.root / "audit" / "bob.log").read_text():
        assert time.monotonic() < deadline, "bob did not abort the cancelled task"
        time.sleep(0.1)


def test_party_dying_mid_task_fails_the_task_then_it_rejoins(
    dep: LocalDeployment, client: Client
) -> None:
    task = client.submit(chain_program(400), deadline_s=60)
    _started(task)
    time.sleep(0.3)
    killed = time.monotonic()
    dep.kill("carol")
    with pytest.raises(TaskFailed) as err:
        task.wait()
    assert "carol" in err.value.reason  # "went offline" at the hub, or "closed its link" at a peer
    assert time.monotonic() - killed < 15
    dep.start_parties(["carol"])  # restart: re-registers with a new data-plane port
    assert float(client.run(stats_program(), deadline_s=60)["alice"]["mean_age"]) > 0


def test_hub_restart_keeps_finished_tasks_and_fails_running_ones(
    dep: LocalDeployment, client: Client
) -> None:
    finished = client.submit(stats_program(), deadline_s=60)
    first = finished.wait()
    running = client.submit(chain_program(400), deadline_s=60)
    _started(running)
    dep.kill("hub")
    # the relay comes back on the port it had, not the default gRPC port + 1, which another
    # process may hold by now (as here, where the relay's port was chosen by the system)
    with contextlib.ExitStack() as stack:
        host, _, port = dep.hub_address.rpartition(":")
        with contextlib.suppress(OSError):  # unless + 1 was the relay's own port
            stack.enter_context(socket.create_server((host, int(port) + 1)))
        dep.restart_hub()
    st = finished.status()
    assert st.state == "succeeded"
    assert (
        finished._open(st)["alice"]["mean_age"] == first["alice"]["mean_age"]
    )  # still decryptable
    st = running.status()
    assert st.state == "failed" and "hub restarted while the task was unfinished" in st.reason
    deadline = time.monotonic() + 20  # the daemons reconnect by themselves
    while sum(p.online for p in client.parties()) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert float(client.run(stats_program(), deadline_s=60)["alice"]["mean_age"]) > 0
    # the daemons learnt the relay's address again when they re-registered
    relayed = client.run(stats_program(), deadline_s=60, data_plane="relay")
    assert float(relayed["alice"]["mean_age"]) == pytest.approx(
        float(first["alice"]["mean_age"]), abs=1e-3
    )  # truncation rounds either way: equal up to a few ulps


def test_hub_database_holds_no_plaintext(dep: LocalDeployment) -> None:
    blobs = hub_state_bytes(dep.root)
    assert len(blobs) > 10_000
    seen = {blobs[i : i + 8] for i in range(len(blobs) - 7)}
    scale = 2.0**16
    for x in PARTIES:
        for value in DATA[x]["amount"]:
            assert np.float64(value).tobytes() not in seen
            assert np.int64(round(value * scale)).tobytes() not in seen
            assert f"{value:.3f}".encode() not in blobs
    total = sum(DATA[x]["amount"].sum() for x in PARTIES)
    assert np.float64(total).tobytes() not in seen


def test_audit_logs_verify_and_name_programs_not_values(dep: LocalDeployment) -> None:
    program_hash = stats_program().hash
    for x in PARTIES:
        path = dep.root / "audit" / f"{x}.log"
        count, _ = verify(path)
        text = path.read_text()
        assert count >= 3 and program_hash in text and "refused" in text
        assert f"{DATA[x]['amount'][0]:.3f}" not in text


def test_sigterm_drains_gracefully(dep: LocalDeployment) -> None:
    assert dep.stop_process("bob") == 0
    assert "party daemon stopped" in dep.log_tail("bob", 5)
    dep.start_parties(["bob"])


def test_program_bytes_are_canonical(client: Client) -> None:
    pb = program_pb(stats_program())
    assert smc.Program.from_bytes(pb.canonical).hash == pb.sha256


def test_hub_drains_on_sigterm(dep: LocalDeployment) -> None:
    """Last in this module: the hub stops cleanly (the daemons then retry until torn down)."""
    assert dep.stop_process("hub") == 0
    assert "hub stopped" in dep.log_tail("hub", 3)
