"""Direct result pickup end to end (smc.party.pickup), with real processes on loopback: a
large result travels from its party to the client without a hub copy; the hub's copy is the
fallback; only the task's client can take a result, once.

The deployment and its datasets are those of test_deploy_rss3.py (its own processes)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from smc.hub import pki
from smc.party import TaskFailed, pickup
from smc.party.client import Client
from smc.party.launch import LocalDeployment
from smc.proto.v1 import hub_pb2
from test_deploy_rss3 import DATA, PARTIES, ROWS, _datasets

import smc


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("pickup")
    d = LocalDeployment(root, {p: _datasets(root, p) for p in PARTIES}, clients=("analyst", "eve"))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def client(dep: LocalDeployment):  # type: ignore[no-untyped-def]
    with dep.client("analyst") as c:
        yield c


def outer_program() -> smc.Program:
    """A result of 14,400 values: large enough to be picked up from its party directly."""
    p = smc.ProgramBuilder(PARTIES)
    ages = smc.concatenate([p.input(x, "visits.age", shape=(ROWS,)) for x in PARTIES])
    costs = smc.concatenate([p.input(x, "visits.cost", shape=(ROWS,)) for x in PARTIES])
    p.output("outer", ages.reshape(3 * ROWS, 1) * costs.reshape(1, 3 * ROWS), to="alice")
    return p.build()


def _check_outer(res: Any) -> None:
    ages = np.concatenate([DATA[p]["age"] for p in PARTIES])
    costs = np.concatenate([DATA[p]["cost"] for p in PARTIES])
    np.testing.assert_allclose(res["alice"]["outer"], np.outer(ages, costs), atol=1e-2)


def test_a_large_result_is_picked_up_from_its_party(client: Client) -> None:
    task = client.submit(outer_program(), deadline_s=60)
    res = task.wait()
    _check_outer(res)
    # the client took alice's sealed result from alice directly, and the hub keeps no copy
    assert res.picked_up == ("alice",) and res.events[-1].kind == "succeeded"
    get = hub_pb2.GetTaskRequest(task_id=res.task_id)
    deadline = time.monotonic() + 10
    while "result_delivered" not in [e.kind for e in client.stub.Watch(_watch(res.task_id))]:
        assert time.monotonic() < deadline, "alice never told the hub the result was delivered"
        time.sleep(0.02)
    time.sleep(pickup.PICKUP_HOLD_S + 0.5)  # nor does alice upload it later
    st = client.stub.GetTask(get, timeout=10)
    assert [(r.party, r.ciphertext) for r in st.results] == [("alice", b"")]
    with pytest.raises(TaskFailed, match="already delivered to this task's client"):
        task.wait()  # the result is gone from everywhere but the first wait's answer


def _watch(task_id: str) -> hub_pb2.WatchRequest:
    return hub_pb2.WatchRequest(task_id=task_id, after_seq=0)


def test_large_and_small_results_of_one_task_from_both_paths(client: Client) -> None:
    """carol's large result comes from carol directly, alice's small one with the hub status."""
    p = smc.ProgramBuilder(PARTIES)
    ages = smc.concatenate([p.input(x, "visits.age", shape=(ROWS,)) for x in PARTIES])
    costs = smc.concatenate([p.input(x, "visits.cost", shape=(ROWS,)) for x in PARTIES])
    p.output("outer", ages.reshape(3 * ROWS, 1) * costs.reshape(1, 3 * ROWS), to="carol")
    p.output("mean_age", ages.mean(), to="alice")
    res = client.run(p.build(), deadline_s=60)
    assert res.picked_up == ("carol",) and set(res.outputs) == {"alice", "carol"}
    ages_v = np.concatenate([DATA[x]["age"] for x in PARTIES])
    costs_v = np.concatenate([DATA[x]["cost"] for x in PARTIES])
    np.testing.assert_allclose(res["carol"]["outer"], np.outer(ages_v, costs_v), atol=1e-2)
    assert float(res["alice"]["mean_age"]) == pytest.approx(ages_v.mean(), abs=1e-3)


def test_results_come_through_the_hub_without_direct_pickup(client: Client) -> None:
    task = client.submit(outer_program(), deadline_s=60)
    task.direct_results = False
    res = task.wait()  # alice uploads the hub's copy once her hold runs out
    assert res.picked_up == () and res.events[-1].kind == "succeeded"
    assert res.seconds > pickup.PICKUP_HOLD_S
    _check_outer(res)


def test_only_the_task_client_can_pick_up_a_result(dep: LocalDeployment, client: Client) -> None:
    from smc.party.dataplane import client_context

    task = client.submit(outer_program(), deadline_s=60)
    task.direct_results = False  # leave alice's result waiting at alice
    res = task.wait()
    alice = next(p for p in client.parties() if p.name == "alice")
    for name in ("eve", "bob"):  # another client of this CA; a party
        creds = pki.Credentials.from_dir(dep.keys, name)
        with pytest.raises(pickup.PickupError):
            pickup.fetch(
                creds, client_context(creds), alice.endpoint, task_id=res.task_id, party="alice"
            )
    nonce, ct = pickup.fetch(
        client.creds,
        client_context(client.creds),
        alice.endpoint,
        task_id=res.task_id,
        party="alice",
    )
    st = task.status()
    assert (bytes(st.results[0].nonce), bytes(st.results[0].ciphertext)) == (nonce, ct)
    with pytest.raises(pickup.PickupError):  # taken once
        pickup.fetch(
            client.creds,
            client_context(client.creds),
            alice.endpoint,
            task_id=res.task_id,
            party="alice",
        )
