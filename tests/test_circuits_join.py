"""Joins across parties: only the aggregate over the intersection is revealed, and it is right.

Both methods (oblivious sort, all-pairs equality) agree with numpy's intersect1d on random
identifier sets, for either party's value column, in rss3 and in the two-party additive suite;
duplicates in one list are caught inside (sort method) and only flagged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from smc.circuits import JoinSpec, build_join, reference_join, run_local
from smc.circuits.cost import measured_cost, program_cost
from smc.circuits.join import cost_join

from smc.errors import ProgramError

PARTIES = ("bank", "insurer", "helper")


def id_sets(n: int, m: int, common: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pool = rng.choice(2**40, n + m - common, replace=False)
    return rng.permutation(pool[:n]), rng.permutation(pool[n - common :])


def check(got: dict[str, np.ndarray], want: dict[str, Any]) -> None:
    assert set(got) == set(want)
    for name, value in want.items():
        if name == "mean":
            assert abs(float(got[name]) - float(value)) <= 1e-4 * abs(float(value)) + 2.0**-14
        else:
            assert float(got[name]) == float(value), name  # sums of grid values are exact


@pytest.mark.parametrize("method", ["sort", "pairs"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_join_aggregates_match_numpy(method: str, side: str) -> None:
    n, m = 24, 17
    left, right = id_sets(n, m, common=9, seed=n * m)
    rng = np.random.default_rng(3)
    values = np.round(rng.normal(100, 30, n if side == "left" else m) * 64) / 64
    spec = JoinSpec(stats=("size", "count", "sum", "mean"), value_side=side, method=method)
    built = build_join("bank", "insurer", n, m, spec, PARTIES)
    owner = "bank" if side == "left" else "insurer"
    data = {"bank": {"ids": left}, "insurer": {"ids": right}}
    data[owner]["values"] = values
    res = run_local(built, data)
    check(res.outputs, reference_join(left, right, spec, values))
    assert program_cost(built.program) == measured_cost(res.result)


@pytest.mark.parametrize("common", [0, 12])
def test_empty_and_full_intersections_with_a_minimum_size(common: int) -> None:
    left, right = id_sets(12, 12, common, seed=common)
    spec = JoinSpec(stats=("size", "mean"), min_size=3)
    built = build_join("bank", "insurer", 12, 12, spec, PARTIES)
    values = np.arange(12.0)
    res = run_local(built, {"bank": {"ids": left}, "insurer": {"ids": right, "values": values}})
    check(res.outputs, reference_join(left, right, spec, values))
    assert int(res["valid"]) == (common >= 3)


def test_duplicates_are_flagged_not_counted() -> None:
    left, right = id_sets(10, 8, 4, seed=1)
    left[3] = left[2]
    spec = JoinSpec(stats=("size", "sum"))
    built = build_join("bank", "insurer", 10, 8, spec, PARTIES)
    res = run_local(built, {"bank": {"ids": left}, "insurer": {"ids": right, "values": np.ones(8)}})
    assert (int(res["valid"]), int(res["size"]), float(res["sum"])) == (0, 0, 0.0)


def test_two_parties_in_the_additive_suite() -> None:
    left, right = id_sets(15, 11, 6, seed=7)
    spec = JoinSpec(stats=("size", "sum"), value_side="left")
    built = build_join("bank", "insurer", 15, 11, spec)
    assert built.parties == ("bank", "insurer")
    values = np.arange(15.0) / 4
    res = run_local(built, {"bank": {"ids": left, "values": values}, "insurer": {"ids": right}})
    check(res.outputs, reference_join(left, right, spec, values))
    assert program_cost(built.program, "additive") == measured_cost(res.result)


def test_declared_cost_grows_as_documented() -> None:
    spec = JoinSpec(stats=("size",))
    sort_small = cost_join(100, 100, spec)
    pairs_small = cost_join(100, 100, JoinSpec(stats=("size",), method="pairs"))
    assert pairs_small["rounds"] < sort_small["rounds"]
    assert pairs_small["bytes_per_party"] > sort_small["bytes_per_party"]
    with pytest.raises(ProgramError):
        JoinSpec(method="hash")
    with pytest.raises(ValueError, match="2\\^40"):
        reference_join([2**40], [1], spec)
