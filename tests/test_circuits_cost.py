"""The declared costs the circuits derive agree with what the engine measures.

``smc.circuits.cost`` predicts, without running anything, the rounds (the critical path) and the
payload bytes of every endpoint from the engine's declared per-operation costs. Here it is
checked, exactly, against the executor's own counts on programs that use every kind of
operation, and the table of numeric-function costs (which the engine does not declare yet) is
re-measured so that a change in the engine shows up as a failure here.
"""

from __future__ import annotations

import numpy as np
import pytest
from smc.circuits import BuiltProgram
from smc.circuits.cost import (
    FUNCTION_COSTS,
    Cost,
    CostModel,
    estimate,
    measured_cost,
    program_cost,
)

import smc
from smc.protocols.nonlinear import ltz_cost

CONFIGS = [("rss3", 3), ("additive", 2), ("additive", 3)]


@pytest.mark.parametrize(("suite", "n"), CONFIGS)
@pytest.mark.parametrize("size", [1, 7])
def test_function_costs_match_the_engine(suite: str, n: int, size: int) -> None:
    names = [f"p{i}" for i in range(n)]
    p = smc.ProgramBuilder(names)
    x = p.input("p0", "x", size)
    ids = {}
    for fn in FUNCTION_COSTS:
        out = getattr(x, fn)()
        ids[fn] = out.id
        p.output(fn, out, to="p0")
    res = smc.simulate(p.build(), {"p0": {"x": np.linspace(0.5, 3.0, size)}}, suite=suite)
    model = CostModel(suite, n)
    for fn, node in ids.items():
        stats = [s.per_node.get(node) for s in res.stats]
        got = Cost(
            max(s.rounds for s in stats if s is not None),
            tuple(s.bytes_sent if s else 0 for s in stats),
        )
        assert got == model.function(fn, size), fn


@pytest.mark.parametrize(("suite", "n"), [*CONFIGS, ("additive", 4)])
def test_sign_test_splits_into_a2b_and_b2a(suite: str, n: int) -> None:
    model = CostModel(suite, n)
    whole = model.a2b(5).then(model.b2a(5))
    declared = ltz_cost(suite, n, 5)
    assert (whole.rounds, whole.bytes) == (declared.rounds, declared.bytes_per_endpoint)


def mixed_program(names: list[str]) -> smc.Program:
    p = smc.ProgramBuilder(names)
    x = p.input(names[0], "x", shape=(7,))
    y = p.input(names[1], "y", shape=(7,))
    xi = p.input(names[1], "xi", shape=(7, 3), dtype="int")
    c = x < y
    z = smc.where(c, x, y) * x
    outer = x.reshape(7, 1) * y.reshape(1, 7)
    rows = smc.sort_by_key(x, smc.stack([x, y], axis=1))[1]
    funcs = abs(x).reciprocal() + x.sigmoid() + (x == y)
    ints = xi.argmax(axis=1) + xi.max(axis=0).sum() + xi.bits().sum() + (xi & xi).sum()
    p.output("a", z, to=names[0])
    p.output("b", outer.sum())
    p.output("c", rows, to=[names[0], names[1]])
    p.output("d", funcs + c, to=names[-1])
    p.output("e", ints)
    p.output("f", x.max() + smc.quantile(x, 0.3) + (x @ y) + x.relu().sum() / 3)
    p.output("g", x.to_int())
    # products only revealed, to each party in turn (rss3 fuses truncation and opening)
    p.output("h", x * y, to=names[1])
    p.output("i", x.reshape(7, 1) @ y.reshape(1, 7), to=names[-1])
    p.output("j", y * y, to=names[0])
    return p.build()


@pytest.mark.parametrize(("suite", "n"), [*CONFIGS, ("additive", 4)])
def test_estimate_is_exact_on_a_program_using_every_operation(suite: str, n: int) -> None:
    names = [f"p{i}" for i in range(n)]
    program = mixed_program(names)
    rng = np.random.default_rng(1)
    data: dict[str, dict[str, np.ndarray]] = {
        names[0]: {"x": rng.uniform(1, 5, 7)},
        names[1]: {"y": rng.uniform(1, 5, 7), "xi": rng.integers(-9, 9, (7, 3))},
    }
    res = smc.simulate(program, data, suite=suite)
    assert program_cost(program, suite) == measured_cost(res)
    frames = estimate(program, suite)
    for st, payload in zip(res.stats, frames.bytes, strict=True):
        assert 0 <= st.bytes_sent - payload <= 8 * st.rounds * (len(res.stats) - 1)


def test_cost_algebra() -> None:
    a, b = Cost(3, (10, 20)), Cost(5, (1, 2))
    assert a.then(b) == Cost(8, (11, 22))
    assert a.beside(b) == Cost(5, (11, 22))
    assert a.times(2) == Cost(6, (20, 40))
    with pytest.raises(ValueError):
        CostModel("rss3", 4)


def every_circuit() -> list[tuple[str, BuiltProgram]]:
    from smc.circuits import (
        AuctionSpec,
        ElectionSpec,
        FedAvgSpec,
        JoinSpec,
        LinearRegressionSpec,
        LogisticRegressionSpec,
        MLPSpec,
        Predicate,
        ScoringSpec,
        StatsSpec,
        build_auction,
        build_election,
        build_federated_average,
        build_join,
        build_linear_regression,
        build_logistic_regression,
        build_mlp,
        build_scoring,
        build_stats,
    )

    p = ("p0", "p1", "p2")
    rows = {"p0": 5, "p1": 4, "p2": 6}
    stats = StatsSpec(
        stats=("count", "mean", "std", "max", "median", "top_k"),
        where=(Predicate("value", ">", 0.0),),
        k=2,
    )
    return [
        ("stats", build_stats(rows, stats, p)),
        ("join", build_join("p0", "p1", 6, 5, JoinSpec(stats=("size", "mean")), p)),
        ("auction", build_auction(rows, AuctionSpec(kind="second"), p)),
        ("election", build_election(rows, ElectionSpec(3, reveal="both"), p)),
        ("linear", build_linear_regression(rows, LinearRegressionSpec(2), p)),
        ("logistic", build_logistic_regression(rows, LogisticRegressionSpec(2, 2, 4), p)),
        ("scoring", build_scoring("p0", "p1", 4, ScoringSpec(2), p)),
        ("mlp", build_mlp("p0", "p1", 4, MLPSpec((2, 3, 2), "class"), p)),
        ("fedavg", build_federated_average(list(p), FedAvgSpec(3, clip=1.0), p)),
    ]


def fill(built: BuiltProgram, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Random data of the right shapes (ids distinct, ints small)."""
    data: dict[str, dict[str, np.ndarray]] = {}
    for party, specs in built.inputs.items():
        for s in specs:
            if s.name == "ids":
                value = rng.choice(40, s.shape, replace=False)
            elif s.dtype == "int":
                value = rng.integers(0, 2, s.shape)
            else:
                value = rng.uniform(-2, 2, s.shape)
            data.setdefault(party, {})[s.name] = value
    return data


@pytest.mark.parametrize("suite", ["rss3", "additive"])
def test_declared_cost_of_every_circuit_equals_measured(suite: str) -> None:
    from smc.circuits import run_local

    rng = np.random.default_rng(0)
    for name, built in every_circuit():
        res = run_local(built, fill(built, rng), suite=suite)
        declared = built.declared_cost(suite)
        assert declared == measured_cost(res.result), name
