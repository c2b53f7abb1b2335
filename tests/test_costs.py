"""Rounds and bytes each operation uses match the costs its suite declares.

The executor attributes every communication round and every byte it sends to the program node
(or output pseudo-node, id ``len(program.nodes) + k``) whose protocol produced it. Each test
runs single operations and compares those measurements, endpoint by endpoint, with
``rss3_costs`` / ``additive_costs``. Round merging is checked on whole programs.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SUITES

import smc
from smc.executor import NodeStats
from smc.protocols.additive import additive_costs
from smc.protocols.rss3 import rss3_costs
from smc.protocols.suite import Cost

SIZES = [1, 2, 3, 7, 1000]
OPS = ["input", "mul_int", "mul_fixed", "trunc", "open_all", "open_one"]


def declared(suite: str, op: str, size: int, n: int) -> Cost:
    return rss3_costs(op, size) if suite == "rss3" else additive_costs(op, size, n)


def cost_program(n: int, size: int) -> tuple[smc.Program, dict[str, int]]:
    """One program holding every operation once; returns it and the node id of each op."""
    names = [f"p{i}" for i in range(n)]
    p = smc.ProgramBuilder(names)
    xf = p.input("p0", "xf", shape=size)  # the op measured as "input": owner is party 0
    yf = p.input("p1", "yf", shape=size)
    xi = p.input("p0", "xi", shape=size, dtype="int")
    yi = p.input("p1", "yi", shape=size, dtype="int")
    mul_int = xi * yi
    mul_fixed = xf * yf
    trunc = xf * 0.3  # local product with a public fraction, then one truncation
    assert trunc.node.op == "mul" and not p._nodes[trunc.node.args[1]].secret
    p.output("all", mul_int)
    p.output("one", xf + yf, to="p0")
    p.output("t", trunc, to="p1")
    p.output("prod", mul_fixed)  # opened to all: the product is measured on its own
    # a product revealed to one party only: rss3 truncates and opens it in one protocol
    p.output("fused", yf * xf, to="p0")
    prog = p.build()
    ids = {
        "input": xf.id,
        "mul_int": mul_int.id,
        "mul_fixed": mul_fixed.id,
        "trunc": trunc.id,
        "open_all": len(prog.nodes),
        "open_one": len(prog.nodes) + 1,
        "mul_open": len(prog.nodes) + 4,
    }
    assert list(prog.product_outputs().values()) == [4]
    return prog, ids


def run_costs(suite: str, n: int, size: int) -> tuple[smc.SimulationResult, dict[str, int]]:
    prog, ids = cost_program(n, size)
    rng = np.random.default_rng(size * 10 + n)
    xf, yf = rng.uniform(-100, 100, size), rng.uniform(-100, 100, size)
    xi, yi = rng.integers(-1000, 1000, size), rng.integers(-1000, 1000, size)
    res = smc.simulate(prog, {"p0": {"xf": xf, "xi": xi}, "p1": {"yf": yf, "yi": yi}}, suite=suite)
    # the program computed the right thing, so the measured protocols are the real ones
    np.testing.assert_array_equal(res["p0"]["all"], xi * yi)
    fx, fy = np.rint(xf * 65536) / 65536, np.rint(yf * 65536) / 65536
    np.testing.assert_array_equal(res["p0"]["one"], fx + fy)
    assert np.max(np.abs(res["p0"]["prod"] - fx * fy)) <= 2.0**-16
    assert np.max(np.abs(res["p0"]["fused"] - fx * fy)) <= 2.0**-16
    assert "one" not in res["p1"] and "fused" not in res["p1"]
    return res, ids


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("suite", "n"), SUITES)
def test_measured_costs_match_declared(suite: str, n: int, size: int) -> None:
    res, ids = run_costs(suite, n, size)
    endpoints = n + (1 if suite == "additive" else 0)
    assert len(res.stats) == endpoints
    mismatches = []
    for op in [*OPS, "mul_open"] if suite == "rss3" else OPS:
        cost = declared(suite, op, size, n)
        assert len(cost.bytes_per_endpoint) == endpoints
        for e, st in enumerate(res.stats):
            got = st.per_node.get(ids[op], NodeStats())
            if (got.rounds, got.bytes_sent) != (cost.rounds, cost.bytes_per_endpoint[e]):
                mismatches.append(
                    f"{op} endpoint {e}: measured {got.rounds} rounds / {got.bytes_sent} B, "
                    f"declared {cost.rounds} / {cost.bytes_per_endpoint[e]}"
                )
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize(("suite", "n"), SUITES)
def test_per_node_bytes_account_for_all_traffic(suite: str, n: int) -> None:
    res, _ = run_costs(suite, n, 7)
    for st in res.stats:
        payload = sum(ns.bytes_sent for ns in st.per_node.values())
        overhead = st.bytes_sent - payload  # one 8-byte round header per frame sent
        assert overhead % 8 == 0
        assert 0 <= overhead <= 8 * st.rounds * (len(res.stats) - 1)
        if payload:
            assert overhead > 0


def test_declared_rss3_bytes_are_8_per_party_per_product() -> None:
    assert rss3_costs("mul_int", 10**6).bytes_per_endpoint == (8 * 10**6,) * 3
    per = rss3_costs("mul_fixed", 999).bytes_per_endpoint
    assert sum(per) == (32 + 16 + 16) * 999
    assert max(per) - min(per) == 0  # the dealer role rotates evenly over the thirds
    with pytest.raises(KeyError):
        rss3_costs("exp", 1)
    with pytest.raises(KeyError):
        additive_costs("exp", 1, 3)


# ------------------------------------------------------------------------------ round merging


def rounds_of(suite: str, n: int, build: str, k: int) -> tuple[int, smc.SimulationResult]:
    names = [f"p{i}" for i in range(n)]
    p = smc.ProgramBuilder(names)
    xs = [p.input(names[j % n], f"x{j}", shape=8) for j in range(max(k, 1))]
    y = p.input(names[1], "y", shape=8)
    if build == "none":
        out = xs[0] + y
    elif build == "independent":
        prods = [x * y for x in xs[:k]]
        out = prods[0]
        for q in prods[1:]:
            out = out + q
    else:  # chain
        out = xs[0]
        for _ in range(k):
            out = out * y
    p.output("out", out)
    inputs: dict[str, dict[str, np.ndarray]] = {}
    for j in range(max(k, 1)):
        inputs.setdefault(names[j % n], {})[f"x{j}"] = np.full(8, 1.5)
    inputs.setdefault(names[1], {})["y"] = np.linspace(-1, 1, 8)
    res = smc.simulate(p.build(), inputs, suite=suite)
    return res.rounds, res


@pytest.mark.parametrize(("suite", "n"), [("rss3", 3), ("additive", 3), ("additive", 2)])
def test_independent_products_share_rounds_and_chains_do_not(suite: str, n: int) -> None:
    base, _ = rounds_of(suite, n, "none", 1)
    one, _ = rounds_of(suite, n, "independent", 1)
    five, res5 = rounds_of(suite, n, "independent", 5)
    per_product = declared(suite, "mul_fixed", 8, n).rounds
    assert one - base == per_product
    assert five == one
    ys = np.linspace(-1, 1, 8)
    np.testing.assert_allclose(res5["p0"]["out"], 5 * 1.5 * ys, atol=5 * 2.0**-16 + 1e-4)
    for k in (2, 4):
        chained, res = rounds_of(suite, n, "chain", k)
        assert chained - base == k * (one - base)
        np.testing.assert_allclose(res["p0"]["out"], 1.5 * ys**k, atol=k * 2.0**-15 + 1e-4)
