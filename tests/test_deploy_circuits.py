"""Library circuits end to end: real hub and party daemons, programs allowed by circuit name.

Every dataset's policy allows exactly one library circuit (``circuits = [...]``); every task
claims its circuit with parameters, each party rebuilds the program from
:mod:`smc.circuits.registry` and compares hashes, and every result is compared with the
circuit's plaintext reference. One rss3 deployment (hub, three computing parties, three
input-only parties) and one additive deployment with a dealer, each started once per module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from smc.circuits import (
    AuctionSpec,
    ElectionSpec,
    JoinSpec,
    LinearRegressionSpec,
    LogisticRegressionSpec,
    Predicate,
    StatsSpec,
    reference_auction,
    reference_election,
    reference_join,
    reference_linear_regression,
    reference_logistic_regression,
    reference_stats,
    registry,
)
from smc.circuits.federated import FedAvgSpec, reference_federated_average
from smc.circuits.inference import ScoringSpec, reference_mlp, reference_scoring
from smc.party import TaskFailed
from smc.party.client import Client, DeployResult
from smc.party.launch import LocalDeployment

PARTIES = ["alice", "bob", "carol"]
RECIPIENTS = ["alice", "analyst"]
ROWS = 12
TRAIN = 10
rng = np.random.default_rng(2024)

# statistics: bob's and carol's costs stay below 5, some of alice's lie above
VISITS = {
    p: {
        "age": rng.integers(18, 90, ROWS).astype(np.float64),
        "cost": np.round(rng.uniform(1.0, 9.0 if p == "alice" else 4.5, ROWS), 3),
    }
    for p in PARTIES
}
# a sealed-bid auction: two bids from alice's dataset, one from each input-only bidder
BIDS = {"alice": np.array([420, 515])}
INPUT_BIDS = {"dora": 610, "erin": 575}
# a plurality election: four ballots per computing party (some invalid), one from frank
BALLOTS = {
    "alice": np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 1, 0]]),
    "bob": np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0], [0, 1, 0]]),
    "carol": np.array([[0, 0, 1], [2, 0, 0], [0, 1, 0], [1, 0, 0]]),
}
FRANK = np.array([[0, 0, 1]])
# a join on customer ids: alice and bob share five
IDS = {"alice": np.arange(100, 110), "bob": np.array([95, 97, 99, 101, 103, 105, 107, 109])}
# linear regression over rows held by all three
X = {p: np.round(rng.normal(0, 1, (TRAIN, 2)), 4) for p in PARTIES}
Y = {p: np.round(X[p] @ [1.5, -2.0] + 0.5 + rng.normal(0, 0.1, TRAIN), 4) for p in PARTIES}
LABEL = {p: (Y[p] + rng.normal(0, 1.0, TRAIN) > 0).astype(np.int64) for p in PARTIES}


def test_the_registry_rebuilds_the_same_program_from_json() -> None:
    """What a party rebuilds from the manifest's JSON is what the client built, whatever the
    order of the keys; without input-only parties a name gives the library builder's program."""
    from smc.circuits import build_auction

    params = {"to": "alice", "bidders": {"carol": 1, "alice": 2}, "parties": PARTIES}
    built = registry.build("auction.vickrey", params)
    again = registry.build("auction.vickrey", json.loads(json.dumps(built.params)))
    assert built.program.hash == again.program.hash
    assert built.circuit == "auction.vickrey" and built.params["bidders"] == {
        "carol": 1,
        "alice": 2,
    }
    direct = build_auction({"alice": 2, "carol": 1}, AuctionSpec("second"), PARTIES, "alice")
    assert direct.program.hash == built.program.hash
    with pytest.raises(registry.CircuitParamsError, match=r"unknown parameters \['bid'\]"):
        registry.build("auction.vickrey", {**params, "bid": 3})
    with pytest.raises(registry.CircuitParamsError, match="'max_bid' must be an integer"):
        registry.build("auction.vickrey", {**params, "max_bid": "lots"})
    with pytest.raises(registry.CircuitParamsError, match="plain JSON"):
        registry.build("auction.vickrey", {**params, "max_bid": np.int64(5)})


def _csv(path: Path, header: list[str], columns: list[np.ndarray]) -> str:
    rows = zip(*[np.asarray(c).reshape(len(c), -1) for c in columns], strict=True)
    lines = [",".join(header)] + [
        ",".join(f"{v:g}" for part in row for v in part.ravel()) for row in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path.name


def _policy(circuit: str, min_parties: int = 1) -> dict[str, Any]:
    return {"circuits": [circuit], "recipients": RECIPIENTS, "min_parties": min_parties}


def _computing(root: Path, p: str) -> dict[str, dict[str, Any]]:
    fixed, integer = "fixed", "int"
    out: dict[str, dict[str, Any]] = {
        "visits": {
            "path": _csv(
                root / f"{p}-visits.csv", ["age", "cost"], [VISITS[p]["age"], VISITS[p]["cost"]]
            ),
            "columns": {"age": fixed, "cost": fixed},
            "policy": _policy("stats", 3),
        },
        "ballots": {
            "path": _csv(root / f"{p}-ballots.csv", ["c0", "c1", "c2"], [BALLOTS[p]]),
            "columns": {"c0": integer, "c1": integer, "c2": integer},
            "policy": _policy("voting.plurality", 3),
        },
        "train": {
            "path": _csv(
                root / f"{p}-train.csv", ["x1", "x2", "y", "label"], [X[p], Y[p], LABEL[p]]
            ),
            "columns": {"x1": fixed, "x2": fixed, "y": fixed, "label": fixed},
            "policy": {
                **_policy("ml.linear_regression", 3),
                "circuits": ["ml.linear_regression", "ml.logistic_regression"],
            },
        },
    }
    if p == "bob":  # a model owner: weights and a scalar intercept as .npy files
        np.save(root / "bob-coef.npy", COEF)
        np.save(root / "bob-intercept.npy", np.float64(INTERCEPT))
        for name, shape in (("coef", [2]), ("intercept", [])):
            out[name] = {
                "path": f"bob-{name}.npy",
                "format": "npy",
                "shape": shape,
                "policy": _policy("ml.scoring", 2),
            }
    if p == "bob":  # an MLP 2-4-2 as .npy weights (state-dict names W0/b0/W1/b1)
        for name, value in MLP_STATE.items():
            np.save(root / f"bob-mlp-{name}.npy", value)
            out[f"mlp_{name}"] = {
                "path": f"bob-mlp-{name}.npy",
                "format": "npy",
                "shape": list(value.shape),
                "policy": _policy("ml.mlp_inference", 2),
            }
    # a model update and a secret integer weight per party, for federated averaging
    np.save(root / f"{p}-update.npy", UPDATES[p])
    np.save(root / f"{p}-weight.npy", np.int64(WEIGHTS[p]))
    for name, shape, dtype in (("update", [3], "fixed"), ("weight", [], "int")):
        out[name] = {
            "path": f"{p}-{name}.npy",
            "format": "npy",
            "shape": shape,
            "dtype": dtype,
            "policy": _policy("ml.federated_average", 3),
        }
    if p == "alice":  # the rows to score (two contributors: alice's rows, bob's model)
        out["features"] = {
            "path": _csv(root / "alice-features.csv", ["x1", "x2"], [X[p]]),
            "columns": {"x1": fixed, "x2": fixed},
            "policy": {**_policy("ml.scoring", 2), "circuits": ["ml.scoring", "ml.mlp_inference"]},
        }
    if p in BIDS:
        out["bids"] = {
            "path": _csv(root / f"{p}-bids.csv", ["amount"], [BIDS[p]]),
            "columns": {"amount": integer},
            "policy": _policy("auction.vickrey", 3),
        }
    if p in IDS:
        out["customers"] = {
            "path": _csv(root / f"{p}-customers.csv", ["id"], [IDS[p]]),
            "columns": {"id": integer},
            "policy": _policy("join.intersection_size", 2),
        }
    return out


def _bidder(root: Path, who: str) -> dict[str, dict[str, Any]]:
    """An input-only bidder: one row (lot, amount); its policy allows only the Vickrey auction."""
    path = _csv(
        root / f"{who}-bid.csv", ["lot", "amount"], [np.array([7]), np.array([INPUT_BIDS[who]])]
    )
    return {
        "bid": {
            "path": path,
            "columns": {"lot": "int", "amount": "int"},
            "policy": _policy("auction.vickrey", 3),
        }
    }


@pytest.fixture(scope="module")
def rss3(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("circuits-rss3")
    parties = {p: _computing(root, p) for p in PARTIES}
    parties.update({who: _bidder(root, who) for who in INPUT_BIDS})
    frank = _csv(root / "frank-ballot.csv", ["c0", "c1", "c2"], [FRANK])
    parties["frank"] = {
        "ballot": {
            "path": frank,
            "columns": {"c0": "int", "c1": "int", "c2": "int"},
            "policy": _policy("voting.plurality", 3),
        }
    }
    dep = LocalDeployment(root, parties)
    dep.start()
    try:
        with dep.client("analyst") as client:
            yield client
    finally:
        dep.stop()


def run(client: Client, name: str, params: dict[str, Any], **kw: Any) -> DeployResult:
    """Build the named circuit and run it, claiming the circuit so that policies apply."""
    built = registry.build(name, params)
    return client.run(
        built.program, circuit=(built.circuit, dict(built.params)), deadline_s=60, **kw
    )


def _bind(columns: dict[str, tuple[str, tuple[str, ...]]], who: list[str]) -> dict[str, Any]:
    return {p: columns for p in who}


def _stats(client: Client, where: Predicate) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    params = {
        "parties": PARTIES,
        "rows": {p: ROWS for p in PARTIES},
        "column": "cost",
        "stats": ["count", "sum", "mean", "std"],
        "where": [{"column": where.column, "op": where.op, "value": where.value}],
        "min_contributors": 2,
        "value_bound": 100,
        "to": "alice",
    }
    columns = {c: ("visits", (c,)) for c in {"cost", where.column}}
    res = run(client, "stats", params, bindings=_bind(columns, PARTIES))
    spec = StatsSpec(
        column="cost",
        stats=("count", "sum", "mean", "std"),
        where=(where,),
        min_contributors=2,
        value_bound=100,
    )
    assert set(res.outputs) == {"alice"}
    return res["alice"], reference_stats(VISITS, spec)


def test_statistics_with_the_minimum_contributors_rule(rss3: Client) -> None:
    got, ref = _stats(rss3, Predicate("age", ">=", 30.0))
    assert int(got["valid"]) == ref["valid"] == 1
    assert int(got["count"]) == ref["count"] > 0
    assert float(got["sum"]) == pytest.approx(ref["sum"], abs=1e-2)
    assert float(got["mean"]) == pytest.approx(ref["mean"], rel=1e-3)
    assert float(got["std"]) == pytest.approx(ref["std"], rel=1e-2, abs=1e-2)
    # only alice has costs above 5: one contributor, below the rule's two -> nothing released
    got, ref = _stats(rss3, Predicate("cost", ">", 5.0))
    assert ref["valid"] == 0 and int(got["valid"]) == 0
    assert all(float(got[k]) == 0.0 for k in ("count", "sum", "mean", "std"))


def test_vickrey_auction_with_input_only_bidders(rss3: Client) -> None:
    bidders = list(INPUT_BIDS)
    params = {
        "parties": PARTIES,
        "bidders": {"alice": len(BIDS["alice"])},
        "input_only": bidders,
        "max_bid": 10_000,
        "to": "alice",
    }
    res = run(
        rss3,
        "auction.vickrey",
        params,
        bindings={"alice": {"bids": ("bids", ("amount",))}},
        contributions={w: {f"bid_{w}": ("bid", ("amount",), "int")} for w in bidders},
    )
    all_bids = np.r_[BIDS["alice"], [INPUT_BIDS[w] for w in bidders]]
    ref = reference_auction(all_bids, AuctionSpec("second", max_bid=10_000))
    assert ref == {"winner": 2, "price": 575}  # dora wins and pays erin's bid
    assert int(res["alice"]["winner"]) == ref["winner"]
    assert int(res["alice"]["price"]) == ref["price"]
    done = {e.party for e in res.events if e.kind == "party_done"}
    assert set(bidders) <= done


def test_plurality_election(rss3: Client) -> None:
    params = {
        "parties": PARTIES,
        "ballots": {p: len(BALLOTS[p]) for p in PARTIES},
        "input_only": ["frank"],
        "candidates": 3,
        "reveal": "both",
        "to": "alice",
    }
    res = run(
        rss3,
        "voting.plurality",
        params,
        bindings=_bind({"ballots": ("ballots", ("c0", "c1", "c2"))}, PARTIES),
        contributions={"frank": {"ballot_frank": ("ballot", ("c0", "c1", "c2"), "int")}},
    )
    rows = np.concatenate([*(BALLOTS[p] for p in PARTIES), FRANK])
    ref = reference_election(rows, ElectionSpec(3, reveal="both"))
    assert ref["invalid"] == 3
    assert res["alice"]["tally"].tolist() == ref["tally"].tolist()
    assert int(res["alice"]["winner"]) == ref["winner"]
    assert int(res["alice"]["invalid"]) == ref["invalid"]


def test_join_intersection_size(rss3: Client) -> None:
    params = {
        "parties": PARTIES,
        "left": "alice",
        "right": "bob",
        "n_left": len(IDS["alice"]),
        "n_right": len(IDS["bob"]),
        "to": "alice",
    }
    res = run(
        rss3,
        "join.intersection_size",
        params,
        bindings=_bind({"ids": ("customers", ("id",))}, ["alice", "bob"]),
    )
    ref = reference_join(IDS["alice"], IDS["bob"], JoinSpec())
    assert ref["size"] == 5
    assert int(res["alice"]["size"]) == ref["size"] and int(res["alice"]["valid"]) == 1


def test_linear_regression(rss3: Client) -> None:
    params = {
        "parties": PARTIES,
        "rows": {p: TRAIN for p in PARTIES},
        "features": 2,
        "to": "alice",
    }
    res = run(
        rss3,
        "ml.linear_regression",
        params,
        bindings=_bind({"X": ("train", ("x1", "x2")), "y": ("train", ("y",))}, PARTIES),
    )
    x = np.concatenate([X[p] for p in PARTIES])
    y = np.concatenate([Y[p] for p in PARTIES])
    ref = reference_linear_regression(x, y, LinearRegressionSpec(2))
    np.testing.assert_allclose(res["alice"]["coef"], ref["coef"], atol=2e-2)
    assert float(res["alice"]["intercept"]) == pytest.approx(ref["intercept"], abs=2e-2)


COEF = np.array([0.75, -1.25])
INTERCEPT = 0.5
MLP_STATE = {
    "W0": np.round(np.random.default_rng(5).normal(0, 1, (4, 2)), 3),
    "b0": np.array([0.1, -0.2, 0.0, 0.3]),
    "W1": np.round(np.random.default_rng(6).normal(0, 1, (2, 4)), 3),
    "b1": np.array([0.05, -0.05]),
}
UPDATES = {
    p: np.round(np.random.default_rng(7 + k).normal(0, 1, 3), 3) for k, p in enumerate(PARTIES)
}
WEIGHTS = {"alice": 30, "bob": 10, "carol": 60}


def test_mlp_inference_from_a_model_owner(rss3: Client) -> None:
    params = {
        "parties": PARTIES,
        "model_owner": "bob",
        "data_owner": "alice",
        "rows": TRAIN,
        "sizes": [2, 4, 2],
        "to": "alice",
    }
    res = run(
        rss3,
        "ml.mlp_inference",
        params,
        bindings={
            "alice": {"X": ("features", ("x1", "x2"))},
            "bob": {name: f"mlp_{name}" for name in MLP_STATE},
        },
    )
    torch_style = {
        "0.weight": MLP_STATE["W0"],
        "0.bias": MLP_STATE["b0"],
        "2.weight": MLP_STATE["W1"],
        "2.bias": MLP_STATE["b1"],
    }
    ref = reference_mlp(torch_style, X["alice"])
    (name,) = ref  # logits
    np.testing.assert_allclose(res["alice"][name], ref[name], atol=2e-3)


def test_federated_average_with_secret_weights(rss3: Client) -> None:
    params = {"parties": PARTIES, "size": 3, "to": "alice"}
    res = run(
        rss3,
        "ml.federated_average",
        params,
        bindings={p: {"update": "update", "weight": "weight"} for p in PARTIES},
    )
    spec = FedAvgSpec(size=3)
    ref = reference_federated_average(UPDATES, spec, WEIGHTS)
    assert int(res["alice"]["valid"]) == 1
    np.testing.assert_allclose(res["alice"]["average"], ref["average"], atol=1e-3)


def test_scoring_with_the_model_at_one_party_and_the_rows_at_another(rss3: Client) -> None:
    """bob owns the model (including a scalar intercept), alice the feature rows; only the
    scores reach alice."""
    params = {
        "parties": PARTIES,
        "model_owner": "bob",
        "data_owner": "alice",
        "rows": TRAIN,
        "features": 2,
        "to": "alice",
    }
    res = run(
        rss3,
        "ml.scoring",
        params,
        bindings={
            "alice": {"X": ("features", ("x1", "x2"))},
            "bob": {"coef": "coef", "intercept": "intercept"},
        },
    )
    ref = reference_scoring(COEF, INTERCEPT, X["alice"], ScoringSpec(features=2))
    np.testing.assert_allclose(res["alice"]["scores"], ref["scores"], atol=1e-3)


def test_logistic_regression(rss3: Client) -> None:
    params = {
        "parties": PARTIES,
        "rows": {p: TRAIN for p in PARTIES},
        "features": 2,
        "epochs": 2,
        "batch_size": 15,
        "to": "alice",
    }
    res = run(
        rss3,
        "ml.logistic_regression",
        params,
        bindings=_bind({"X": ("train", ("x1", "x2")), "y": ("train", ("label",))}, PARTIES),
    )
    x = np.concatenate([X[p] for p in PARTIES])
    y = np.concatenate([LABEL[p] for p in PARTIES])
    spec = LogisticRegressionSpec(2, epochs=2, batch_size=15)
    ref = reference_logistic_regression(x, y, spec)
    np.testing.assert_allclose(res["alice"]["coef"], ref["coef"], atol=1e-2)
    assert float(res["alice"]["intercept"]) == pytest.approx(ref["intercept"], abs=1e-2)


def test_policy_allowing_only_vickrey_refuses_an_election(rss3: Client) -> None:
    # erin's only dataset is her bid, allowed in "auction.vickrey" alone: a plurality election
    # that would read it (two columns, as a two-candidate ballot) is refused by erin
    params = {"parties": PARTIES, "input_only": ["erin"], "candidates": 2, "to": "alice"}
    with pytest.raises(TaskFailed) as err:
        run(
            rss3,
            "voting.plurality",
            params,
            contributions={"erin": {"ballot_erin": ("bid", ("lot", "amount"), "int")}},
        )
    reason = err.value.reason
    assert "party 'erin' refused: dataset 'bid' is not allowed in program" in reason
    assert "(the task runs circuit 'voting.plurality')" in reason
    assert "policy allows only ['circuit:auction.vickrey']" in reason


def test_false_or_missing_circuit_claims_are_refused(rss3: Client) -> None:
    built = registry.build(
        "join.intersection_size",
        {"parties": PARTIES, "left": "alice", "right": "bob", "n_left": 10, "n_right": 8},
    )
    binds = _bind({"ids": ("customers", ("id",))}, ["alice", "bob"])
    wrong = {**built.params, "n_right": 7}  # the parameters do not rebuild this program
    with pytest.raises(TaskFailed, match=r"is not circuit 'join.intersection_size' with"):
        rss3.run(built.program, bindings=binds, circuit=(built.circuit, wrong), deadline_s=30)
    # parameters that would have each party build a far larger program stop at the size of
    # the program received (the rebuild must equal it)
    huge = {**built.params, "n_right": 10**7}
    with pytest.raises(TaskFailed, match=r"exceeds its budget of constant elements"):
        rss3.run(built.program, bindings=binds, circuit=(built.circuit, huge), deadline_s=30)
    with pytest.raises(TaskFailed, match=r"unknown circuit 'join.everything'"):
        rss3.run(built.program, bindings=binds, circuit=("join.everything", {}), deadline_s=30)
    with pytest.raises(TaskFailed, match=r"the task claims no library circuit"):
        rss3.run(built.program, bindings=binds, deadline_s=30)


# ----------------------------------------------------------------------- additive + dealer

ADDITIVE = ["p0", "p1"]
ADDITIVE_BIDS = {"p0": np.array([300, 910, 455]), "p1": np.array([905, 120])}


@pytest.fixture(scope="module")
def additive(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("circuits-additive")
    policy = {"circuits": ["auction.vickrey"], "recipients": ["p0", "analyst"], "min_parties": 2}
    parties = {
        p: {
            "bids": {
                "path": _csv(root / f"{p}-bids.csv", ["amount"], [ADDITIVE_BIDS[p]]),
                "columns": {"amount": "int"},
                "policy": policy,
            }
        }
        for p in ADDITIVE
    }
    dep = LocalDeployment(root, parties, dealer="dealer")
    dep.start()
    try:
        with dep.client("analyst") as client:
            yield client
    finally:
        dep.stop()


def test_vickrey_auction_on_additive_with_a_dealer(additive: Client) -> None:
    params = {
        "parties": ADDITIVE,
        "bidders": {p: len(b) for p, b in ADDITIVE_BIDS.items()},
        "max_bid": 1000,
        "to": "p0",
    }
    res = run(additive, "auction.vickrey", params, suite="additive", dealer="dealer")
    ref = reference_auction(
        np.r_[ADDITIVE_BIDS["p0"], ADDITIVE_BIDS["p1"]], AuctionSpec("second", max_bid=1000)
    )
    assert ref == {"winner": 1, "price": 905}
    assert int(res["p0"]["winner"]) == ref["winner"] and int(res["p0"]["price"]) == ref["price"]
    assert any(e.party == "dealer" and e.kind == "accepted" for e in res.events)
