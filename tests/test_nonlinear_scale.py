"""Comparisons at scale: 10^6 random x < y per suite, zero wrong results.

The comparison is exact (the sign bit of x - y from a binary adder, failure probability 0), so a
single wrong bit among millions is a bug, whatever the data: ties, pairs one ulp (or one unit)
apart, the edges of the range, zero, and uniformly spread values alike. Each batch of 2*10^5
holds 10^5 fixed-point pairs and 10^5 integer pairs; the reference is numpy on the encoded
values. Test data comes from numpy's seeded generator (fine for test data, never for shares).
"""

from __future__ import annotations

import numpy as np
import pytest

import smc

pytestmark = pytest.mark.scale

ULP = 2.0**-16
TOP = smc.FixedPointConfig().max_value - 1  # 2^46 - 1
INT_TOP = 2**62 - 1
HALF = 100_000  # per dtype per batch
BATCHES = 5  # 5 * 2 * 10^5 = 10^6 comparisons per suite
SUITES = [("rss3", 3), ("additive", 2)]
KINDS = ("tie", "adjacent", "edge", "uniform", "log", "small")
P_KINDS = [0.15, 0.15, 0.1, 0.25, 0.25, 0.1]


def pairs(
    rng: np.random.Generator, n: int, dtype: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, kind): kind indexes KINDS. Fixed values are exact multiples of one ulp."""
    kind = rng.choice(len(KINDS), n, p=P_KINDS)
    edges: np.ndarray
    uniform: np.ndarray
    log: np.ndarray
    small: np.ndarray
    sign = rng.choice(np.array([-1, 1]), n)
    if dtype == "fixed":
        step, top = ULP, TOP
        edges = np.array([TOP, -TOP, TOP - 2.0**-7, -TOP + 2.0**-7, 0.0, ULP, -ULP])
        uniform = np.rint(rng.uniform(-TOP, TOP, (2, n)) * 2**16) / 2**16
        # |x| < 2^36: every ulp is a float64, so x +- one ulp is exact
        log = sign * np.floor(np.exp2(rng.uniform(0, 52, (2, n)))) * ULP
        small = rng.integers(-3, 4, (2, n)) * ULP
    else:
        step, top = 1, INT_TOP
        edges = np.array([INT_TOP, -INT_TOP, INT_TOP - 1, -INT_TOP + 1, 0, 1, -1])
        uniform = rng.integers(-INT_TOP, INT_TOP, (2, n), endpoint=True)
        log = sign * np.floor(np.exp2(rng.uniform(0, 61.9, (2, n)))).astype(np.int64)
        small = rng.integers(-3, 4, (2, n))
    edge = rng.choice(edges, (2, n))
    base = np.select([kind == 2, kind == 3, kind == 5], [edge[0], uniform[0], small[0]], log[0])
    other = np.select([kind == 2, kind == 3, kind == 5], [edge[1], uniform[1], small[1]], log[1])
    near = np.clip(base + rng.choice(np.array([-1, 1]), n) * step, -top, top)
    partner = np.select([kind == 0, kind == 1], [base, near], other)
    if dtype == "fixed":
        return base.astype(np.float64), partner.astype(np.float64), kind
    return base.astype(np.int64), partner.astype(np.int64), kind


def program(parties: list[str]) -> smc.Program:
    p = smc.ProgramBuilder(parties)
    xf = p.input(parties[0], "xf", shape=HALF)
    yf = p.input(parties[1], "yf", shape=HALF)
    xi = p.input(parties[0], "xi", shape=HALF, dtype="int")
    yi = p.input(parties[1], "yi", shape=HALF, dtype="int")
    p.output("f", xf < yf, to=parties[0])
    p.output("i", xi < yi, to=parties[0])
    return p.build()


@pytest.mark.parametrize(("suite", "n"), SUITES)
def test_a_million_comparisons_without_a_wrong_result(suite: str, n: int) -> None:
    parties = [f"p{i}" for i in range(n)]
    prog = program(parties)
    rng = np.random.default_rng(20240 + n)
    total = wrong = ties = adjacent = edges = 0
    for _ in range(BATCHES):
        xf, yf, kf = pairs(rng, HALF, "fixed")
        xi, yi, ki = pairs(rng, HALF, "int")
        res = smc.simulate(
            prog, {parties[0]: {"xf": xf, "xi": xi}, parties[1]: {"yf": yf, "yi": yi}}, suite=suite
        )
        got_f, got_i = res[parties[0]]["f"], res[parties[0]]["i"]
        assert got_f.dtype == np.int64 and got_i.dtype == np.int64
        wrong += int(np.count_nonzero(got_f != (xf < yf)))
        wrong += int(np.count_nonzero(got_i != (xi < yi)))
        total += 2 * HALF
        ties += int(np.count_nonzero(xf == yf) + np.count_nonzero(xi == yi))
        adjacent += int(
            np.count_nonzero(np.abs(xf - yf) == ULP) + np.count_nonzero(np.abs(xi - yi) == 1)
        )
        edges += int(np.count_nonzero(kf == 2) + np.count_nonzero(ki == 2))
    print(
        f"\n{suite} ({n} parties): {total} comparisons, {ties} ties, {adjacent} one step apart, "
        f"{edges} with range-edge operands, {wrong} wrong"
    )
    assert total == 10**6
    assert ties >= total // 10
    assert adjacent >= total // 10
    assert edges >= total // 20
    assert wrong == 0
