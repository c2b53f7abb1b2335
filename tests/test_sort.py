"""Oblivious sorting and what is built on it (sort_by_key, median, quantile, top_k).

Every sort result is checked twice: it is a permutation of the *encoded* input multiset, and it is
ordered. Sorting is exact (compare-exchange by the sign of a difference), so there is no
tolerance; only median/quantile interpolate, with one fixed-point product.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from conftest import SUITES
from helpers import ULP, fixed, parties
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import smc

TOP = smc.FixedPointConfig().max_value - 1  # 2^46 - 1
INT_TOP = 2**62 - 1
SIZES = [1, 2, 3, 5, 8, 13, 64]
QS = [0.0, 0.1, 0.25, 0.5, 0.9, 1.0]
suites = st.sampled_from(SUITES)


def run_outputs(
    suite: str,
    n: int,
    build: Any,
    arrays: list[np.ndarray],
    dtypes: list[str],
) -> dict[str, np.ndarray]:
    """Input k belongs to party k % n; every output is opened to party 0."""
    names = parties(n)
    p = smc.ProgramBuilder(names)
    handles = [
        p.input(names[k % n], f"x{k}", shape=np.shape(a), dtype=dtypes[k])
        for k, a in enumerate(arrays)
    ]
    for name, value in build(p, handles).items():
        p.output(name, value, to=names[0])
    inputs: dict[str, dict[str, Any]] = {}
    for k, a in enumerate(arrays):
        inputs.setdefault(names[k % n], {})[f"x{k}"] = a
    return smc.simulate(p.build(), inputs, suite=suite)[names[0]]


def sample(rng: np.random.Generator, size: int, dtype: str) -> np.ndarray:
    """Duplicates, negatives, zero and the range edges."""
    if dtype == "fixed":
        pool = np.array(
            [0.0, ULP, -ULP, 1.0, 1.0 + ULP, -1.0, -2.5, 2.5, 1e6, -1e6, TOP, -TOP, TOP - 1]
        )
        wide = fixed(rng.uniform(-TOP, TOP, size))
    else:
        pool = np.array([0, 1, -1, 2, -7, 7, 10**12, -(10**12), INT_TOP, -INT_TOP, INT_TOP - 1])
        wide = rng.integers(-INT_TOP, INT_TOP, size, endpoint=True)
    pick = rng.choice(pool, size)
    return np.where(rng.random(size) < 0.6, pick, wide).astype(pool.dtype)


def assert_sorted_permutation(got: np.ndarray, x: np.ndarray, descending: bool) -> None:
    ref = fixed(x) if x.dtype == np.float64 else x
    assert got.shape == ref.shape
    assert got.dtype == ref.dtype
    assert Counter(got.tolist()) == Counter(ref.tolist()), "not a permutation of the input"
    steps = np.diff(got)
    assert np.all(steps <= 0) if descending else np.all(steps >= 0), "not ordered"


# ------------------------------------------------------------------------------------ sort


@pytest.mark.parametrize(("suite", "n"), SUITES)
@pytest.mark.parametrize("size", SIZES)
def test_sort_both_directions_both_dtypes(suite: str, n: int, size: int) -> None:
    rng = np.random.default_rng(size * 7 + n)
    xf, xi = sample(rng, size, "fixed"), sample(rng, size, "int")

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> dict[str, smc.SecureArray]:
        return {
            "fa": h[0].sort(),
            "fd": smc.sort(h[0], descending=True),
            "ia": smc.sort(h[1]),
            "id": h[1].sort(descending=True),
        }

    out = run_outputs(suite, n, build, [xf, xi], ["fixed", "int"])
    assert_sorted_permutation(out["fa"], xf, False)
    assert_sorted_permutation(out["fd"], xf, True)
    assert_sorted_permutation(out["ia"], xi, False)
    assert_sorted_permutation(out["id"], xi, True)


@settings(max_examples=15)
@given(
    suites,
    st.sampled_from(["fixed", "int"]),
    st.booleans(),
    st.integers(1, 13),
    st.integers(0, 2**32),
)
def test_sort_random_small(
    suite: tuple[str, int], dtype: str, descending: bool, size: int, seed: int
) -> None:
    x = sample(np.random.default_rng(seed), size, dtype)
    out = run_outputs(*suite, lambda p, h: {"s": h[0].sort(descending)}, [x], [dtype])
    assert_sorted_permutation(out["s"], x, descending)


def test_public_sort_computes_in_plaintext() -> None:
    p = smc.ProgramBuilder(parties(3))
    c = p.const(np.array([3.0, -1.0, 2.0, -1.0]))
    s = c.sort(descending=True)
    assert not s.secret
    p.output("s", s)
    np.testing.assert_array_equal(smc.simulate(p.build(), {})["p0"]["s"], [3.0, 2.0, -1.0, -1.0])


# ----------------------------------------------------------------------------- sort_by_key


def rows_multiset(keys: np.ndarray, payload: np.ndarray) -> Counter[tuple[Any, ...]]:
    pay2 = payload.reshape(len(keys), -1)
    return Counter((k, *row) for k, row in zip(keys.tolist(), pay2.tolist(), strict=True))


@pytest.mark.parametrize(("suite", "n"), SUITES)
@pytest.mark.parametrize("size", [1, 3, 5, 8, 13])
@pytest.mark.parametrize("key_dtype", ["fixed", "int"])
def test_sort_by_key_carries_rows(suite: str, n: int, size: int, key_dtype: str) -> None:
    rng = np.random.default_rng(size * 31 + n)
    keys: np.ndarray = rng.integers(-3, 4, size)  # many equal keys
    if key_dtype == "fixed":
        keys = keys * 0.5 + np.where(rng.random(size) < 0.3, ULP, 0.0)
    else:
        keys[: size // 3] = rng.choice([-INT_TOP, INT_TOP - 1], size // 3)  # far edges
    payload1 = np.arange(size, dtype=np.int64) * 10 - 17  # distinct: rows are identifiable
    payload2 = np.stack([rng.uniform(-100, 100, size), np.arange(size) - 0.5], axis=1)
    pay_dtype = "int" if key_dtype == "int" else "fixed"
    p1 = payload1 if pay_dtype == "int" else payload1 * 0.25

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> dict[str, smc.SecureArray]:
        k1, v1 = smc.sort_by_key(h[0], h[1])
        out = {"k1": k1, "v1": v1}
        if key_dtype == "fixed":
            k2, v2 = smc.sort_by_key(h[0], h[2], descending=True)
            out |= {"k2": k2, "v2": v2}
        return out

    out = run_outputs(suite, n, build, [keys, p1, payload2], [key_dtype, pay_dtype, "fixed"])
    ekeys = fixed(keys) if key_dtype == "fixed" else keys
    ep1 = fixed(p1) if pay_dtype == "fixed" else p1
    assert out["v1"].shape == (size,)
    assert_sorted_permutation(out["k1"], keys, False)
    assert rows_multiset(out["k1"], out["v1"]) == rows_multiset(ekeys, ep1)
    if key_dtype == "fixed":
        assert out["v2"].shape == (size, 2)
        assert_sorted_permutation(out["k2"], keys, True)
        assert rows_multiset(out["k2"], out["v2"]) == rows_multiset(ekeys, fixed(payload2))


@pytest.mark.parametrize("descending", [False, True])
def test_sort_by_key_with_the_largest_int_key_keeps_every_row(descending: bool) -> None:
    keys = np.array([INT_TOP, -3, INT_TOP, 1, INT_TOP, INT_TOP, 1, 1, INT_TOP, INT_TOP, 5, 1, -3])
    payload = np.arange(1, 14, dtype=np.int64) * 10
    out = run_outputs(
        "additive",
        2,
        lambda p, h: dict(zip(("k", "v"), smc.sort_by_key(h[0], h[1], descending), strict=True)),
        [keys, payload],
        ["int", "int"],
    )
    assert rows_multiset(out["k"], out["v"]) == rows_multiset(keys, payload)


# ------------------------------------------------------------------- median, quantile, top_k


def quantile_bound(s: np.ndarray, q: float) -> float:
    """One truncation (< 1 ulp), plus the fixed-point encoding of the public weight frac
    (relative 2^-17, at least) times the gap it multiplies."""
    pos = q * (len(s) - 1)
    lo = int(np.floor(pos))
    gap = abs(s[min(lo + 1, len(s) - 1)] - s[lo])
    return float(1.0001 * ULP + gap * 2.0**-16)


@pytest.mark.parametrize(("suite", "n"), SUITES)
@pytest.mark.parametrize("size", [1, 2, 5, 6, 13])
def test_median_and_quantiles(suite: str, n: int, size: int) -> None:
    rng = np.random.default_rng(size + 100 * n)
    x = fixed(np.where(rng.random(size) < 0.3, 1.5, rng.uniform(-1e4, 1e4, size)))
    xi = rng.integers(-1000, 1000, size)

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> dict[str, smc.SecureArray]:
        out = {"median": smc.median(h[0]), "median_int": smc.median(h[1])}
        out |= {f"q{q}": smc.quantile(h[0], q) for q in QS}
        return out

    out = run_outputs(suite, n, build, [x, xi], ["fixed", "int"])
    s = np.sort(x)
    assert out["median"].shape == ()
    assert abs(out["median"] - np.median(x)) <= quantile_bound(s, 0.5)
    assert abs(out["median_int"] - np.median(xi)) <= quantile_bound(np.sort(xi), 0.5)
    for q in QS:
        got = out[f"q{q}"]
        assert abs(got - np.quantile(x, q)) <= quantile_bound(s, q), (q, got, np.quantile(x, q))
    # the ends are exact: no interpolation
    assert out["q0.0"] == s[0]
    assert out["q1.0"] == s[-1]


@given(suites, st.data())
@settings(max_examples=15)
def test_top_k_matches_numpy(suite: tuple[str, int], data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 9))
    k = data.draw(st.integers(1, size))
    dtype = data.draw(st.sampled_from(["fixed", "int"]))
    elems = (
        st.sampled_from([0.0, 1.0, -1.0, ULP, TOP, -TOP, 2.5])
        if dtype == "fixed"
        else st.sampled_from([0, 1, -1, 3, INT_TOP, -INT_TOP])
    )
    x = data.draw(hnp.arrays(np.float64 if dtype == "fixed" else np.int64, size, elements=elems))
    out = run_outputs(*suite, lambda p, h: {"t": smc.top_k(h[0], k)}, [x], [dtype])["t"]
    ref = np.sort(fixed(x) if dtype == "fixed" else x)[::-1][:k]
    np.testing.assert_array_equal(out, ref)


# ----------------------------------------------------------------------------------- errors


def test_errors_are_program_errors() -> None:
    p = smc.ProgramBuilder(parties(3))
    x = p.input("p0", "x", shape=5)
    m = p.input("p1", "m", shape=(2, 3))
    s0 = p.input("p2", "s", shape=())
    xi = p.input("p0", "xi", shape=5, dtype="int")
    for q in (-0.1, 1.0001, 2.0, -1e-9):
        with pytest.raises(smc.ProgramError, match="quantile"):
            smc.quantile(x, q)
    with pytest.raises(smc.ProgramError):
        smc.quantile(m, 0.5)
    with pytest.raises(smc.ProgramError):
        smc.median(m)
    for k in (6, 0, -1):
        with pytest.raises(smc.ProgramError, match="top_k"):
            smc.top_k(x, k)
    with pytest.raises(smc.ProgramError, match="1-D"):
        m.sort()
    with pytest.raises(smc.ProgramError):
        smc.sort(s0)
    with pytest.raises(smc.ProgramError, match="sort_by_key"):
        smc.sort_by_key(x, m)  # 5 keys, 2 payload rows
    with pytest.raises(smc.ProgramError, match="sort_by_key"):
        smc.sort_by_key(m, x)  # 2-D keys
    with pytest.raises(smc.ProgramError, match="dtype"):
        smc.sort_by_key(xi, x)  # int keys would be cast by a fixed payload
