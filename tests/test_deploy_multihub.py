"""End to end with two hubs: three rss3 party daemons, each connected to both hubs at once.

Each hub has its own certificate (``hub``, ``hub2``) from the deployment CA, its own database and
its own view of the parties; a party accepts tasks from either and keeps the tasks of one hub
apart from the other's. The module shares one deployment; the test that kills a hub comes last.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import helpers
import numpy as np
import pytest
from smc.hub import pki
from smc.party import HubRequestError, TaskFailed, config
from smc.party.client import Client, Task
from smc.party.hubconn import HubConnection, check_hub_certificate
from smc.party.launch import LocalDeployment
from smc.proto.v1 import hub_pb2

import smc

PARTIES = ("alice", "bob", "carol")
ROWS = 12
RECIPIENTS = ["alice", "analyst"]


def _data(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100 + seed)
    return {
        "age": rng.integers(18, 90, ROWS).astype(np.float64),
        "cost": np.round(rng.uniform(0.5, 5.0, ROWS), 4),
        "amount": np.round(rng.uniform(10.0, 100.0, ROWS), 3),
    }


DATA = {p: _data(k) for k, p in enumerate(PARTIES)}
AGES = np.concatenate([DATA[p]["age"] for p in PARTIES])
COSTS = np.concatenate([DATA[p]["cost"] for p in PARTIES])
AMOUNTS = sum(DATA[p]["amount"].sum() for p in PARTIES)


def _datasets(root: Path, party: str) -> dict[str, dict[str, Any]]:
    d = DATA[party]
    rows = [f"{a:.0f},{c:.4f}" for a, c in zip(d["age"], d["cost"], strict=True)]
    (root / f"{party}-visits.csv").write_text("age,cost\n" + "\n".join(rows) + "\n")
    np.save(root / f"{party}-amounts.npy", d["amount"])
    policy = {"any_program": True, "recipients": RECIPIENTS, "min_parties": 2}
    return {
        "visits": {
            "path": f"{party}-visits.csv",
            "columns": {"age": "fixed", "cost": "fixed"},
            "rows": ROWS,
            "policy": policy,
        },
        "amounts": {
            "path": f"{party}-amounts.npy",
            "format": "npy",
            "shape": [ROWS],
            "policy": policy,
        },
    }


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("multihub")
    slow = {p: {"slow_rounds_s": 0.003} for p in PARTIES}  # long chains stay interruptible
    d = LocalDeployment(root, {p: _datasets(root, p) for p in PARTIES}, party_extra=slow, hubs=2)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def clients(dep: LocalDeployment):  # type: ignore[no-untyped-def]
    first, second = dep.client("analyst", hub=0), dep.client("analyst", hub=1)
    yield first, second
    first.close()
    second.close()


def stats_program() -> smc.Program:
    p = smc.ProgramBuilder(PARTIES)
    ages = smc.concatenate([p.input(x, "visits.age", shape=(ROWS,)) for x in PARTIES])
    costs = smc.concatenate([p.input(x, "visits.cost", shape=(ROWS,)) for x in PARTIES])
    p.output("mean_age", ages.mean(), to="alice")
    p.output("age_cost", smc.dot(ages, costs) / (3 * ROWS), to="alice")
    p.output(
        "amounts", sum(p.input(x, "amounts", shape=(ROWS,)).sum() for x in PARTIES), to="alice"
    )
    return p.build()


def chain_program(steps: int) -> smc.Program:
    return helpers.chain_program(PARTIES, ROWS, steps)


def _check_stats(outputs: dict[str, dict[str, np.ndarray]]) -> None:
    assert set(outputs) == {"alice"}
    assert float(outputs["alice"]["mean_age"]) == pytest.approx(AGES.mean(), abs=1e-3)
    assert float(outputs["alice"]["age_cost"]) == pytest.approx(
        np.dot(AGES, COSTS) / AGES.size, abs=1e-2
    )
    assert float(outputs["alice"]["amounts"]) == pytest.approx(AMOUNTS, abs=1e-2)


def _started(task: Task) -> None:
    for ev in task.events():
        assert ev.state not in ("failed", "cancelled", "succeeded"), (ev.kind, ev.message)
        if ev.kind == "started":
            return
    raise AssertionError("the task never started")


def _audit(dep: LocalDeployment, party: str, task_id: str) -> list[dict[str, Any]]:
    lines = (dep.root / "audit" / f"{party}.log").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("task_id") == task_id]


def _hubs_line(hubs: str) -> str:
    return f'[party]\nname = "a"\nhubs = {hubs}\nhub_name = "hub"\ncert="c"\nkey="k"\nca="ca"\n'


def test_hub_entries_may_name_their_hub_certificate(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(_hubs_line('["hub@127.0.0.1:7443", "hub2@[::1]:7444", "h:1"]'))
    cfg = config.load(path)
    assert [config.split_hub(h) for h in cfg.hubs] == [
        ("hub", "127.0.0.1:7443"),
        ("hub2", "[::1]:7444"),
        (None, "h:1"),
    ]
    pki.create_ca(tmp_path / "keys")
    pki.issue(tmp_path / "keys", "party", "a")
    creds = pki.Credentials.from_dir(tmp_path / "keys", "a")
    conns = [  # never started: nothing is dialled
        HubConnection(
            h,
            creds,
            cfg.hub_name,
            register=hub_pb2.RegisterRequest,
            on_command=lambda _hub, _cmd: None,
            on_relay=lambda _hub, _frame, _payload: None,
            heartbeat=hub_pb2.HeartbeatRequest,
        )
        for h in cfg.hubs
    ]
    try:  # the entry's name is the TLS name checked; hub_name stays the default of plain entries
        assert [(c.address, c.server_name) for c in conns] == [
            ("127.0.0.1:7443", "hub"),
            ("[::1]:7444", "hub2"),
            ("h:1", "hub"),
        ]
    finally:
        for c in conns:
            c.stop()


@pytest.mark.parametrize(
    "hubs, message",
    [
        ('["@h:1"]', "not name@host:port"),
        ('["hub 2@h:1"]', "not name@host:port"),
        ('["hub2@h"]', "host:port addresses"),
        ('["hub2@h:port"]', "not name@host:port"),
        ('["hub2@:1"]', "not name@host:port"),
        ('["h:1", 7]', "host:port addresses"),
        ('["hub@h:1", "hub2@h:1"]', "same address twice"),
    ],
)
def test_bad_hub_entries_are_refused(tmp_path: Path, hubs: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(_hubs_line(hubs))
    with pytest.raises(config.ConfigFileError, match=message):
        config.load(path)


def test_every_party_gets_every_hub_by_its_own_name(dep: LocalDeployment) -> None:
    assert dep.hub_names == ["hub", "hub2"] and dep.hub_address == dep.hub_addresses[0]
    assert len(set(dep.hub_addresses)) == 2
    text = (dep.root / "alice.toml").read_text()
    assert f'"hub@{dep.hub_addresses[0]}"' in text and f'"hub2@{dep.hub_addresses[1]}"' in text
    assert (dep.keys / "hub2.crt").exists() and (dep.root / "hub2.db").exists()


def test_both_hubs_list_all_parties_online(clients: tuple[Client, Client]) -> None:
    for client in clients:
        online = {p.name for p in client.parties() if p.online}
        assert online == set(PARTIES)


def test_only_a_hub_certificate_passes_for_the_hub(
    dep: LocalDeployment, clients: tuple[Client, Client]
) -> None:
    creds = pki.Credentials.from_dir(dep.keys, "alice")
    first = clients[0].address
    assert check_hub_certificate(first, creds, "hub") == "hub"
    assert check_hub_certificate(first, creds, None) == "hub"
    with pytest.raises(pki.CertificateError, match="expected 'hub2'"):
        check_hub_certificate(first, creds, "hub2")
    # a party's data-plane port speaks TLS with a certificate of this CA, but not a hub's
    bob = next(p for p in clients[0].parties() if p.name == "bob")
    with pytest.raises(pki.CertificateError, match="role 'party', expected hub"):
        check_hub_certificate(bob.endpoint, creds, None)


def test_a_task_through_each_hub(clients: tuple[Client, Client]) -> None:
    for client in clients:
        res = client.run(stats_program(), deadline_s=60)
        _check_stats(res.outputs)
        kinds = [e.kind for e in res.events]
        assert kinds[-1] == "succeeded" and kinds.count("party_done") == 3


def test_tasks_on_both_hubs_at_the_same_time(clients: tuple[Client, Client]) -> None:
    first, second = clients
    tasks = [
        first.submit(stats_program(), deadline_s=60),
        second.submit(chain_program(5), deadline_s=60),
        second.submit(stats_program(), deadline_s=60),
        first.submit(chain_program(5), deadline_s=60),
    ]
    results = [t.wait() for t in tasks]
    ref = float(np.sum(DATA["alice"]["cost"] * DATA["bob"]["cost"]) * 0.99**5)
    _check_stats(results[0].outputs)
    _check_stats(results[2].outputs)
    assert float(results[1]["alice"]["x"]) == pytest.approx(ref, rel=1e-3)
    assert float(results[3]["alice"]["x"]) == pytest.approx(ref, rel=1e-3)
    with pytest.raises(HubRequestError, match="no task"):  # each hub knows only its own tasks
        Task(first, tasks[1].manifest, None, 0.0).status()


def test_a_task_cannot_be_replayed_through_the_other_hub(
    clients: tuple[Client, Client],
) -> None:
    """The same signed request, run by one hub, then handed to the other: the parties refuse it
    (their audit logs remember every task id, whichever hub brought it)."""
    first, second = clients
    sent: list[hub_pb2.SubmitRequest] = []
    stub = first.stub
    submit = stub.Submit

    def capture(req: hub_pb2.SubmitRequest, **kw: Any) -> Any:
        sent.append(req)
        return submit(req, **kw)

    stub.Submit = capture  # type: ignore[method-assign]
    try:
        task = first.submit(stats_program(), deadline_s=60)
    finally:
        stub.Submit = submit  # type: ignore[method-assign]
    _check_stats(task.wait().outputs)
    second.stub.Submit(sent[0], timeout=30)
    with pytest.raises(TaskFailed, match="already used"):
        Task(second, task.manifest, None, 0.0).wait()


def test_a_killed_hub_stops_its_tasks_and_the_other_hub_carries_on(
    dep: LocalDeployment, clients: tuple[Client, Client]
) -> None:
    first, second = clients
    doomed = second.submit(chain_program(2000), deadline_s=60)
    _started(doomed)
    killed = time.monotonic()
    dep.kill("hub2")
    # the parties drop what the lost hub routed instead of computing for nobody until the deadline:
    # "failed" where it was running, "cancelled" where the start had not arrived yet
    for party in PARTIES:
        while not any(e["event"] in ("failed", "cancelled") for e in _audit(dep, party, doomed.id)):
            assert time.monotonic() - killed < 10, f"{party} still runs the lost hub's task"
            time.sleep(0.05)
    assert any(
        "lost the connection to the hub" in e.get("reason", "")
        for party in PARTIES
        for e in _audit(dep, party, doomed.id)
    )
    online = {p.name for p in first.parties() if p.online}
    assert online == set(PARTIES)
    _check_stats(first.run(stats_program(), deadline_s=60).outputs)
    # the hub comes back on its address and database; the daemons reattach by themselves
    dep.restart_hub(1)
    with dep.client("analyst", hub=1) as again:  # a fresh channel: no reconnection backoff
        deadline = time.monotonic() + 15
        while {p.name for p in again.parties() if p.online} != set(PARTIES):
            assert time.monotonic() < deadline, "the parties did not reattach to the restarted hub"
            time.sleep(0.1)
        st = Task(again, doomed.manifest, None, 0.0).status()
        assert st.state == "failed" and "hub restarted" in st.reason
        _check_stats(again.run(stats_program(), deadline_s=60).outputs)


def test_a_deployment_that_fails_to_start_leaves_no_process(tmp_path: Path) -> None:
    """bob's configuration has a key the daemon refuses: start() raises, and the hubs and the
    daemons already started are stopped (the `with` block's __exit__ never runs then)."""
    dep = LocalDeployment(
        tmp_path,
        {p: _datasets(tmp_path, p) for p in PARTIES},
        hubs=2,
        party_extra={"bob": {"no_such_key": 1}},
    )
    with pytest.raises(RuntimeError, match="bob exited"):
        dep.start()
    assert {"hub", "hub2", "alice", "bob"} <= set(dep.procs)
    for proc in dep.procs.values():
        assert proc.popen is not None and proc.popen.poll() is not None, proc.name
