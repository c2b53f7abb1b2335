"""Statistics over rows held by several parties agree with numpy within the stated tolerance.

Stated tolerance (docs/circuits/stats.md), on inputs exactly representable in fixed point
(multiples of 2^-16), |x| <= value_bound: count, sum, histogram, min, max, top-k, median and
quantiles that fall on a row are exact; interpolated quantiles within 2^-15 + 2^-16 |gap|;
mean within 1e-4 relative + 2^-14 absolute; var and std within 2e-4 relative + 2^-10 absolute
(while at most 2^16 rows pass the filter).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smc.circuits import Predicate, StatsSpec, build_stats, reference_stats, run_local
from smc.circuits.cost import measured_cost, program_cost
from smc.circuits.stats import STATISTICS

from smc.errors import ProgramError

PARTIES = ("north", "south", "east")


def make_data(rows: dict[str, int], seed: int) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    data = {}
    for p, r in rows.items():
        value = np.round(rng.normal(40, 25, r) * 64) / 64  # on the fixed-point grid
        age = rng.integers(18, 90, r).astype(np.float64)
        data[p] = {"value": value, "age": age, "ward": rng.integers(0, 4, r).astype(np.float64)}
    return data


def assert_close(name: str, got: object, want: object, count: int) -> None:
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    tol = {
        "mean": 1e-4 * np.abs(w) + 2.0**-14,
        "var": 2e-4 * np.abs(w) + 2.0**-10,
        "std": 2e-4 * np.abs(w) + 2.0**-10,
        "quantiles": 2.0**-15 + 2.0**-16 * 100,
        "median": 2.0**-15 + 2.0**-16 * 100,
    }.get(name, 0.0)
    assert np.all(np.abs(g - w) <= tol), f"{name}: {g} vs {w} (count {count})"


ALL = StatsSpec(
    stats=STATISTICS, bins=(-20.0, 0.0, 30.0, 45.5, 60.0, 200.0), quantiles=(0.1, 0.5, 0.75), k=4
)
CASES = {
    "no filter": ALL,
    "filter": StatsSpec(
        stats=STATISTICS,
        where=(Predicate("age", ">=", 40), Predicate("value", "<", 70.0)),
        bins=ALL.bins,
        quantiles=(0.0, 0.3, 1.0),
        k=3,
        ddof=1,
        min_contributors=3,
    ),
    "equality filter": StatsSpec(
        stats=("count", "mean", "median", "min"), where=(Predicate("ward", "==", 2),)
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_stats_match_numpy_and_declared_cost(case: str) -> None:
    rows = {"north": 23, "south": 17, "east": 30}
    spec = CASES[case]
    built = build_stats(rows, spec)
    data = make_data(rows, seed=len(case))
    res = run_local(built, built.pick(data))
    ref = reference_stats(data, spec)
    assert set(res.outputs) == set(ref)
    assert ref["valid"] == 1
    for name, want in ref.items():
        assert_close(name, res[name], want, ref.get("count", -1))
    assert program_cost(built.program) == measured_cost(res.result)


def test_minimum_contributors_rule_zeroes_everything_but_the_flag() -> None:
    rows = {"north": 10, "south": 12, "east": 9}
    data = make_data(rows, seed=3)
    data["east"]["age"][:] = 20.0  # east has no row passing the filter
    spec = StatsSpec(
        stats=("count", "sum", "mean", "max", "histogram"),
        where=(Predicate("age", ">=", 40),),
        bins=(0.0, 50.0, 100.0),
        min_contributors=3,
    )
    built = build_stats(rows, spec)
    res = run_local(built, built.pick(data))
    assert int(res["valid"]) == 0
    for name in ("count", "sum", "mean", "max"):
        assert float(res[name]) == 0.0
    assert not np.any(res["histogram"])
    relaxed = build_stats(rows, StatsSpec(**{**spec.__dict__, "min_contributors": 2}))
    res2 = run_local(relaxed, relaxed.pick(data))
    assert int(res2["valid"]) == 1
    assert int(res2["count"]) == reference_stats(data, relaxed.params["spec"])["count"] > 0


def test_top_k_needs_k_passing_rows_and_min_count_applies() -> None:
    rows = {"north": 6, "south": 5, "east": 4}
    data = make_data(rows, seed=4)
    spec = StatsSpec(stats=("count", "top_k"), where=(Predicate("age", ">", 200),), k=2)
    built = build_stats(rows, spec)
    res = run_local(built, built.pick(data))
    assert (int(res["valid"]), int(res["top_k_valid"])) == (0, 0)
    spec = StatsSpec(stats=("count", "top_k"), k=20, min_count=100)
    with pytest.raises(ProgramError, match="exceeds"):
        build_stats(rows, spec)
    spec = StatsSpec(stats=("count", "top_k"), k=3, min_count=100)
    built = build_stats(rows, spec)
    res = run_local(built, built.pick(data))
    assert int(res["valid"]) == 0 and int(res["count"]) == 0


def test_additive_suite_with_a_party_without_rows() -> None:
    rows = {"a": 9, "b": 0, "c": 11, "d": 5}
    spec = StatsSpec(stats=("count", "mean", "std", "max"), where=(Predicate("age", "<", 60),))
    built = build_stats(rows, spec)
    data = make_data({p: r for p, r in rows.items() if r}, seed=9)
    res = run_local(built, built.pick(data), suite="additive")
    ref = reference_stats(data, spec)
    for name in spec.stats:
        assert_close(name, res[name], ref[name], ref["count"])
    assert program_cost(built.program, "additive") == measured_cost(res.result)


@settings(max_examples=6, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 12), min_size=3, max_size=3),
    threshold=st.integers(20, 80),
    q=st.floats(0.0, 1.0),
)
def test_random_sizes_and_filters(sizes: list[int], threshold: int, q: float) -> None:
    rows = dict(zip(PARTIES, sizes, strict=True))
    spec = StatsSpec(
        stats=("count", "sum", "mean", "quantiles"),
        where=(Predicate("age", "<=", threshold),),
        quantiles=(q,),
    )
    data = make_data(rows, seed=sum(sizes) + threshold)
    built = build_stats(rows, spec)
    res = run_local(built, built.pick(data))
    ref = reference_stats(data, spec)
    for name, want in ref.items():
        assert_close(name, res[name], want, ref["count"])


def test_spec_refuses_what_it_cannot_compute() -> None:
    with pytest.raises(ProgramError, match="unknown statistics"):
        StatsSpec(stats=("mode",))
    with pytest.raises(ProgramError, match="bin edges"):
        StatsSpec(stats=("histogram",), bins=(1.0, 1.0))
    with pytest.raises(ProgramError, match="quantiles"):
        StatsSpec(stats=("quantiles",), quantiles=(1.5,))
    with pytest.raises(ProgramError, match="filter op"):
        Predicate("age", "=~", 3)
    with pytest.raises(ProgramError, match="value_bound"):
        StatsSpec(value_bound=1e6)
