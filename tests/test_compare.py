"""Comparisons, selection, abs/relu, reductions and bit operations against numpy, in every suite.

Comparisons are exact (the sign of a - b, failure probability 0), so every result is compared
for equality with numpy on the *encoded* inputs: fixed-point values are rounded to the nearest
ulp (2^-16) first, integers are taken as they are. Edge values: zero, negatives, ties, values
exactly one ulp apart, the edges of the fixed-point range (+-(max_value - 1)) and integers near
+-2^62. Comparison results are secret ints 0/1.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import SUITES
from helpers import ULP, fixed, parties
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import smc

TOP = smc.FixedPointConfig().max_value - 1  # 2^46 - 1: the largest round value in range
INT_TOP = 2**62 - 1  # largest |x| of a secret integer
EXACT = 2.0**36  # below this every multiple of one ulp is a float64 (36 + 16 bits)

RELS: dict[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}

FIXED_EDGES = [
    0.0,
    -0.0,
    ULP,
    -ULP,
    2 * ULP,
    1.0,
    -1.0,
    1.0 + ULP,
    -1.0 - ULP,
    0.5,
    -0.5,
    TOP,
    -TOP,
    TOP - 1,
    -(TOP - 1),
    2.0**45,
    -(2.0**45),
    EXACT - ULP,
    -(EXACT - ULP),
]
INT_EDGES = [0, 1, -1, 2, -2, INT_TOP, -INT_TOP, INT_TOP - 1, -INT_TOP + 1, 2**61, -(2**61)]

fixed_elems = st.one_of(
    st.sampled_from(FIXED_EDGES),
    st.integers(-(2**20), 2**20).map(lambda r: r * ULP),  # |x| <= 16, on the ulp grid
    st.integers(-(2**52) + 1, 2**52 - 1).map(lambda r: r * ULP),  # |x| < 2^36, exact
    st.floats(-TOP, TOP, allow_nan=False, allow_infinity=False),
)
int_elems = st.one_of(
    st.sampled_from(INT_EDGES),
    st.integers(-5, 5),
    st.integers(-INT_TOP, INT_TOP),
)
# 0-d operands are tested on their own below (rss3 fails on them, see test_zero_d_operands)
small_shapes = hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4)
suites = st.sampled_from(SUITES)


@st.composite
def close_pairs(
    draw: st.DrawFn, dtype: str, shape: tuple[int, ...] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one shape where each y element equals x, is one step (ulp or 1) above or below,
    or is independent: ties and neighbours are frequent."""
    if shape is None:
        shape = draw(small_shapes)
    npt: type[np.generic]
    if dtype == "fixed":
        npt, elems, step, hi = np.float64, fixed_elems, ULP, TOP
    else:
        npt, elems, step, hi = np.int64, int_elems, 1, INT_TOP
    x = draw(hnp.arrays(npt, shape, elements=elems))
    other = draw(hnp.arrays(npt, shape, elements=elems))
    mode = draw(hnp.arrays(np.int8, shape, elements=st.integers(0, 3)))
    near = np.where(mode == 1, x + step, x - step)
    y = np.where(mode == 0, x, np.where(mode == 3, other, np.clip(near, -hi, hi)))
    return x, np.asarray(y, dtype=npt)


def run_many(
    suite: str,
    n: int,
    build: Callable[[smc.ProgramBuilder, list[smc.SecureArray]], dict[str, smc.SecureArray]],
    arrays: list[np.ndarray],
    dtypes: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Input k belongs to party k % n; every output is opened to party 0."""
    names = parties(n)
    p = smc.ProgramBuilder(names)
    dtypes = dtypes or ["fixed"] * len(arrays)
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


def enc(values: Any, dtype: str) -> np.ndarray:
    """The value the engine holds for a plaintext input."""
    return fixed(values) if dtype == "fixed" else np.asarray(values, dtype=np.int64)


def assert_bits(got: np.ndarray, ref: np.ndarray) -> None:
    """A comparison result: int 0/1, equal to numpy's boolean result."""
    assert got.dtype == np.int64
    assert got.shape == np.shape(ref)
    assert set(np.unique(got).tolist()) <= {0, 1}
    np.testing.assert_array_equal(got, np.asarray(ref).astype(np.int64))


def all_rels(a: Any, b: Any) -> dict[str, Any]:
    return {rel: fn(a, b) for rel, fn in RELS.items()}


# ------------------------------------------------------------------------------ comparisons


@given(suites, st.sampled_from(["fixed", "int"]), st.data())
def test_all_comparisons_secret_secret(
    suite: tuple[str, int], dtype: str, data: st.DataObject
) -> None:
    x, y = data.draw(close_pairs(dtype))
    out = run_many(*suite, lambda p, h: all_rels(h[0], h[1]), [x, y], [dtype, dtype])
    ex, ey = enc(x, dtype), enc(y, dtype)
    for rel, fn in RELS.items():
        assert_bits(out[rel], fn(ex, ey))


@pytest.mark.parametrize(("suite", "n"), SUITES)
@pytest.mark.parametrize("dtype", ["fixed", "int"])
def test_comparisons_at_the_edges(suite: str, n: int, dtype: str) -> None:
    """Every pair of edge values (ties, one step apart, range edges), both ways round."""
    edges = FIXED_EDGES if dtype == "fixed" else INT_EDGES
    vals = np.array(edges, dtype=np.float64 if dtype == "fixed" else np.int64)
    x = np.repeat(vals, len(vals))
    y = np.tile(vals, len(vals))
    out = run_many(suite, n, lambda p, h: all_rels(h[0], h[1]), [x, y], [dtype, dtype])
    ex, ey = enc(x, dtype), enc(y, dtype)
    for rel, fn in RELS.items():
        assert_bits(out[rel], fn(ex, ey))
    diagonal = np.arange(len(vals)) * (len(vals) + 1)  # x == x for every edge value
    assert out["eq"][diagonal].all() and not out["lt"][diagonal].any()


@given(suites, st.sampled_from(["fixed", "int"]), st.data())
def test_comparisons_broadcast(suite: tuple[str, int], dtype: str, data: st.DataObject) -> None:
    x, _ = data.draw(close_pairs(dtype, (2, 1, 3)))
    y, _ = data.draw(close_pairs(dtype, (4, 1)))
    out = run_many(*suite, lambda p, h: all_rels(h[0], h[1]), [x, y], [dtype, dtype])
    ex, ey = enc(x, dtype), enc(y, dtype)
    for rel, fn in RELS.items():
        assert_bits(out[rel], fn(ex, ey))
        assert out[rel].shape == (2, 4, 3)


@pytest.mark.parametrize(
    ("suite", "n"),
    [(s, n) for s, n in SUITES],
)
@pytest.mark.parametrize("op", ["cmp", "cmp_public", "where", "abs", "relu", "maximum", "bitwise"])
def test_zero_d_operands(suite: str, n: int, op: str) -> None:
    """Scalars (shape ()) are arrays like any other: x < y on two secret scalars."""
    dtype = "int" if op == "bitwise" else "fixed"
    x, y = (np.array(-2), np.array(3)) if dtype == "int" else (np.array(-2.0), np.array(3.0))
    builds: dict[str, Callable[[list[smc.SecureArray]], smc.SecureArray]] = {
        "cmp": lambda h: h[0] < h[1],
        "cmp_public": lambda h: h[0] >= 1.5,
        "where": lambda h: smc.where(h[1] < h[0], h[0], h[1]),
        "abs": lambda h: abs(h[0]),
        "relu": lambda h: h[0].relu(),
        "maximum": lambda h: smc.maximum(h[0], h[1]),
        "bitwise": lambda h: h[0] & h[1],
    }
    ref = {
        "cmp": 1,
        "cmp_public": 0,
        "where": 3.0,
        "abs": 2.0,
        "relu": 0.0,
        "maximum": 3.0,
        "bitwise": -2 & 3,
    }[op]
    out = run_many(suite, n, lambda p, h: {"o": builds[op](h)}, [x, y], [dtype, dtype])["o"]
    assert out.shape == ()
    assert out == ref


def public_operand(kind: str, value: np.ndarray) -> Any:
    if kind == "scalar":
        return value.reshape(-1)[0].item()  # a Python float or int
    if kind == "np_scalar":
        return value.reshape(-1)[0]
    if kind == "row":
        return value[0]  # broadcast along the first axis
    return value


@given(
    suites,
    st.sampled_from(["fixed", "int"]),
    st.sampled_from(["scalar", "np_scalar", "row", "array"]),
    st.data(),
)
def test_comparisons_secret_public_both_orders(
    suite: tuple[str, int], dtype: str, kind: str, data: st.DataObject
) -> None:
    x, c = data.draw(close_pairs(dtype, (3, 4)))
    pub = public_operand(kind, c)

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> dict[str, smc.SecureArray]:
        out = {f"s_{rel}": fn(h[0], pub) for rel, fn in RELS.items()}
        out.update({f"p_{rel}": fn(pub, h[0]) for rel, fn in RELS.items()})
        return out

    out = run_many(*suite, build, [x], [dtype])
    ex, ep = enc(x, dtype), enc(pub, dtype)
    for rel, fn in RELS.items():
        assert_bits(out[f"s_{rel}"], fn(ex, ep))
        assert_bits(out[f"p_{rel}"], fn(ep, ex))


@given(suites, st.data())
def test_int_secret_against_fraction_and_fixed(suite: tuple[str, int], data: st.DataObject) -> None:
    """Mixed dtypes are compared in fixed point: int 2 < 2.5, and int against a fixed secret."""
    small = st.integers(-(2**30), 2**30)
    xi = data.draw(hnp.arrays(np.int64, 5, elements=st.one_of(st.integers(-3, 3), small)))
    yf = data.draw(
        hnp.arrays(
            np.float64,
            5,
            elements=st.one_of(
                st.sampled_from([0.0, 0.5, -0.5, 2.5, -2.5, 1.0, 1.0 - ULP, -1.0 + ULP]),
                st.integers(-(2**40), 2**40).map(lambda r: r * ULP),
            ),
        )
    )
    c = data.draw(st.sampled_from([2.5, -0.5, 0.0, 3.0, 1.0 - ULP]))

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> dict[str, smc.SecureArray]:
        return {"ss": h[0] < h[1], "sp": h[0] <= c, "ps": c < h[0], "eq": h[0] == h[1]}

    out = run_many(*suite, build, [xi, yf], ["int", "fixed"])
    fy = fixed(yf)
    assert_bits(out["ss"], xi < fy)
    assert_bits(out["sp"], xi <= c)
    assert_bits(out["ps"], c < xi)
    assert_bits(out["eq"], xi == fy)


def test_public_only_comparisons_compute_in_plaintext() -> None:
    p = smc.ProgramBuilder(parties(3))
    a = p.const(np.array([1.0, 2.0, -3.0, ULP]))
    b = p.const(np.array([1.0, 1.0 + ULP, -3.0 - ULP, 0.0]))
    for rel, fn in RELS.items():
        r = fn(a, b)
        assert not r.secret
        p.output(rel, r)
    res = smc.simulate(p.build(), {})
    ref_a, ref_b = fixed([1.0, 2.0, -3.0, ULP]), fixed([1.0, 1.0 + ULP, -3.0 - ULP, 0.0])
    for rel, fn in RELS.items():
        assert_bits(res["p0"][rel], fn(ref_a, ref_b))


# ------------------------------------------------------------------------ where, max, min


@given(suites, st.sampled_from(["fixed", "int"]), st.data())
def test_where_with_comparison_and_int_conditions(
    suite: tuple[str, int], dtype: str, data: st.DataObject
) -> None:
    x, y = data.draw(close_pairs(dtype, (2, 3)))
    bits = data.draw(hnp.arrays(np.int64, (2, 3), elements=st.integers(0, 1)))
    pub = enc(data.draw(close_pairs(dtype, (3,)))[0], dtype)

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> dict[str, smc.SecureArray]:
        a, b, c = h
        return {
            "cmp": smc.where(a < b, a, b),
            "bit": smc.where(c, a, b),
            "pub_a": smc.where(c, pub, b),  # a public branch, broadcast
            "pub_cond": smc.where(bits.astype(bool), a, b),  # a public condition
            "le": smc.where(a <= b, b, pub[0].item()),  # a Python scalar branch
        }

    out = run_many(*suite, build, [x, y, bits], [dtype, dtype, "int"])
    ex, ey = enc(x, dtype), enc(y, dtype)
    np.testing.assert_array_equal(out["cmp"], np.where(ex < ey, ex, ey))
    np.testing.assert_array_equal(out["bit"], np.where(bits == 1, ex, ey))
    np.testing.assert_array_equal(out["pub_a"], np.where(bits == 1, pub, ey))
    np.testing.assert_array_equal(out["pub_cond"], np.where(bits == 1, ex, ey))
    np.testing.assert_array_equal(out["le"], np.where(ex <= ey, ey, pub[0]))
    assert out["bit"].dtype == (np.float64 if dtype == "fixed" else np.int64)


@given(suites, st.sampled_from(["fixed", "int"]), st.data())
def test_maximum_minimum(suite: tuple[str, int], dtype: str, data: st.DataObject) -> None:
    x, y = data.draw(close_pairs(dtype))
    c = data.draw(close_pairs(dtype, (1,)))[1][0].item()

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> dict[str, smc.SecureArray]:
        return {
            "max": smc.maximum(h[0], h[1]),
            "min": smc.minimum(h[0], h[1]),
            "max_pub": smc.maximum(c, h[0]),
            "min_pub": smc.minimum(h[1], c),
        }

    out = run_many(*suite, build, [x, y], [dtype, dtype])
    ex, ey, ec = enc(x, dtype), enc(y, dtype), enc(c, dtype)
    np.testing.assert_array_equal(out["max"], np.maximum(ex, ey))
    np.testing.assert_array_equal(out["min"], np.minimum(ex, ey))
    np.testing.assert_array_equal(out["max_pub"], np.maximum(ec, ex))
    np.testing.assert_array_equal(out["min_pub"], np.minimum(ey, ec))


@given(suites, st.sampled_from(["fixed", "int"]), st.data())
def test_abs_and_relu(suite: tuple[str, int], dtype: str, data: st.DataObject) -> None:
    x, _ = data.draw(close_pairs(dtype))
    out = run_many(*suite, lambda p, h: {"abs": abs(h[0]), "relu": smc.relu(h[0])}, [x], [dtype])
    ex = enc(x, dtype)
    np.testing.assert_array_equal(out["abs"], np.abs(ex))
    np.testing.assert_array_equal(out["relu"], np.maximum(ex, 0))
    assert out["abs"].dtype == ex.dtype


# ------------------------------------------------------------------------------ reductions

reduce_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)


def tie_heavy(dtype: str) -> st.SearchStrategy[Any]:
    """Few distinct values, so ties (and their first-index rule) are common."""
    if dtype == "fixed":
        return st.sampled_from([0.0, ULP, -ULP, 1.0, -1.0, 3.5, TOP, -TOP])
    return st.sampled_from([0, 1, -1, 7, INT_TOP, -INT_TOP])


@given(suites, st.sampled_from(["fixed", "int"]), reduce_shapes, st.data())
def test_reductions_over_every_axis(
    suite: tuple[str, int], dtype: str, shape: tuple[int, ...], data: st.DataObject
) -> None:
    npt = np.float64 if dtype == "fixed" else np.int64
    if data.draw(st.booleans()):
        x = data.draw(hnp.arrays(npt, shape, elements=tie_heavy(dtype)))
    else:  # neighbours and independent values
        x = data.draw(close_pairs(dtype, shape))[1]
    axes: list[int | None] = [None, *range(len(shape)), -1]

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> dict[str, smc.SecureArray]:
        out = {}
        for ax in axes:
            out[f"max{ax}"] = h[0].max(axis=ax)
            out[f"min{ax}"] = h[0].min(axis=ax, keepdims=True)
            out[f"maxk{ax}"] = h[0].max(axis=ax, keepdims=True)
            out[f"argmax{ax}"] = h[0].argmax(axis=ax)
            out[f"argmin{ax}"] = h[0].argmin(axis=ax)
        return out

    out = run_many(*suite, build, [x], [dtype])
    ex = enc(x, dtype)
    for ax in axes:
        np.testing.assert_array_equal(out[f"max{ax}"], np.max(ex, axis=ax))
        np.testing.assert_array_equal(out[f"min{ax}"], np.min(ex, axis=ax, keepdims=True))
        np.testing.assert_array_equal(out[f"maxk{ax}"], np.max(ex, axis=ax, keepdims=True))
        assert out[f"maxk{ax}"].shape == np.max(ex, axis=ax, keepdims=True).shape
        for fn in ("argmax", "argmin"):
            got = out[f"{fn}{ax}"]
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, getattr(np, fn)(ex, axis=ax))


@pytest.mark.parametrize(("suite", "n"), SUITES)
def test_arg_reductions_return_the_first_of_tied_extremes(suite: str, n: int) -> None:
    rows = np.array(
        [
            [1.0, 3.0, 3.0, 2.0, 3.0],  # max at 1, 2, 4
            [-1.0, 0.0, -1.0, -1.0, 0.0],  # min at 0, 2, 3
            [5.0, 5.0, 5.0, 5.0, 5.0],  # all tied
            [0.0, 1.0, 2.0, 3.0, 4.0],
            [TOP, -TOP, TOP, -TOP, 0.0],
            [2.0, 1.0, 0.0, -1.0, 2.0],  # max at both ends: the first
            [-ULP, 0.0, ULP, ULP, 0.0],
        ]
    )

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> dict[str, smc.SecureArray]:
        return {
            "amax1": h[0].argmax(axis=1),
            "amin1": h[0].argmin(axis=1),
            "amax0": h[0].argmax(axis=0),
            "amin0": h[0].argmin(axis=0),
            "amax": h[0].argmax(),
            "amin": h[0].argmin(),
            "len1": h[1].argmax(axis=1),  # a length-1 axis: index 0
            "len1max": h[1].max(axis=1, keepdims=True),
        }

    col = np.array([[4.0], [-2.0], [0.0]])
    out = run_many(suite, n, build, [rows, col])
    for ax, key in ((1, "1"), (0, "0"), (None, "")):
        np.testing.assert_array_equal(out[f"amax{key}"], np.argmax(rows, axis=ax))
        np.testing.assert_array_equal(out[f"amin{key}"], np.argmin(rows, axis=ax))
    np.testing.assert_array_equal(out["len1"], [0, 0, 0])
    np.testing.assert_array_equal(out["len1max"], col)


# -------------------------------------------------------------------------------- bits

bit_ints = st.one_of(
    st.sampled_from([0, 1, -1, 2, -2, INT_TOP, -INT_TOP, 2**61, -(2**61), 255, -256]),
    st.integers(-INT_TOP, INT_TOP),
    st.integers(-300, 300),
)


def np_bits(x: np.ndarray) -> np.ndarray:
    """Two's complement bits of int64 values, least significant first."""
    words = np.asarray(x, dtype=np.int64).view(np.uint64)
    return ((words[..., None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.int64)


@given(suites, small_shapes, st.data())
def test_bits_match_twos_complement(
    suite: tuple[str, int], shape: tuple[int, ...], data: st.DataObject
) -> None:
    x = data.draw(hnp.arrays(np.int64, shape, elements=bit_ints))
    out = run_many(*suite, lambda p, h: {"bits": h[0].bits()}, [x], ["int"])["bits"]
    assert out.shape == (*shape, 64)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, np_bits(x))
    # the bits recombine to the value
    weights = [1 << k for k in range(64)]
    flat = out.reshape(-1, 64)
    back = [sum(w for w, b in zip(weights, row, strict=True) if b) for row in flat.tolist()]
    assert [v - (1 << 64) if v >= 1 << 63 else v for v in back] == x.reshape(-1).tolist()


@given(suites, small_shapes, st.data())
def test_bitwise_and_or_xor(
    suite: tuple[str, int], shape: tuple[int, ...], data: st.DataObject
) -> None:
    x = data.draw(hnp.arrays(np.int64, shape, elements=bit_ints))
    y = data.draw(hnp.arrays(np.int64, shape, elements=bit_ints))
    c = data.draw(bit_ints)
    row = data.draw(hnp.arrays(np.int64, shape[-1:], elements=bit_ints))

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> dict[str, smc.SecureArray]:
        a, b = h
        return {
            "and": a & b,
            "or": a | b,
            "xor": a ^ b,
            "and_c": a & c,
            "or_row": a | row,
            "xor_c": b ^ c,
        }

    out = run_many(*suite, build, [x, y], ["int", "int"])
    np.testing.assert_array_equal(out["and"], x & y)
    np.testing.assert_array_equal(out["or"], x | y)
    np.testing.assert_array_equal(out["xor"], x ^ y)
    np.testing.assert_array_equal(out["and_c"], x & np.int64(c))
    np.testing.assert_array_equal(out["or_row"], x | row)
    np.testing.assert_array_equal(out["xor_c"], y ^ np.int64(c))
    assert all(v.dtype == np.int64 for v in out.values())


def test_bit_ops_refuse_fixed_point() -> None:
    p = smc.ProgramBuilder(parties(3))
    x = p.input("p0", "x", shape=3)
    with pytest.raises(smc.ProgramError):
        x.bits()
    with pytest.raises(smc.ProgramError):
        _ = x & 1
