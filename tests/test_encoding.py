"""Encodings, configuration guardrails and the raw ring helpers.

Specification: a value either encodes exactly to the nearest ulp or is refused with an
:class:`~smc.EncodingError` that says why; nothing ever wraps around the ring silently. The frozen
session configuration refuses combinations that cannot work and hashes every field.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smc import ring
from smc.config import FixedPointConfig, SessionConfig
from smc.encoding import INT_LIMIT, decode_fixed, decode_int, encode_fixed, encode_int
from smc.errors import ConfigError, EncodingError

FRAC_BITS = [0, 8, 16, 24]
MOD = 2**64


def _reals(frac_bits: int) -> st.SearchStrategy[float]:
    bound = FixedPointConfig(frac_bits).max_value
    below = math.nextafter(bound, 0.0)
    return st.one_of(
        st.sampled_from([0.0, -0.0, 2.0**-frac_bits, -(2.0**-frac_bits), 0.5, -0.5, below, -below]),
        st.floats(-below, below, allow_nan=False, allow_infinity=False),
    )


# ------------------------------------------------------------------------------ fixed point


@pytest.mark.parametrize("frac_bits", FRAC_BITS)
@given(data=st.data())
def test_fixed_round_trip_within_half_an_ulp(frac_bits: int, data: st.DataObject) -> None:
    fp = FixedPointConfig(frac_bits)
    x = data.draw(
        hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_side=5), elements=_reals(frac_bits))
    )
    enc = encode_fixed(x, fp)
    assert enc.dtype == np.uint64
    assert enc.shape == x.shape
    back = decode_fixed(enc, fp)
    assert back.shape == x.shape
    assert np.all(np.abs(back - x) <= fp.ulp / 2)
    # the encoding is the two's-complement of round(x * 2^f), computed with Python integers
    for xi, ei in zip(x.ravel(), enc.ravel(), strict=True):
        assert int(ei) == round(float(xi) * 2**frac_bits) % MOD


@pytest.mark.parametrize("frac_bits", FRAC_BITS)
def test_fixed_exact_on_grid_and_sign(frac_bits: int) -> None:
    fp = FixedPointConfig(frac_bits)
    grid = np.array([0, 1, -1, 3, -7, 2**20, -(2**20)], dtype=np.float64) * fp.ulp
    np.testing.assert_array_equal(decode_fixed(encode_fixed(grid, fp), fp), grid)
    # negatives are two's complement: the top bit is set
    assert int(encode_fixed(-fp.ulp, fp)) == MOD - 1


@pytest.mark.parametrize("frac_bits", FRAC_BITS)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_fixed_range_guardrail_never_wraps(frac_bits: int, sign: float) -> None:
    fp = FixedPointConfig(frac_bits)
    top = math.nextafter(fp.max_value, 0.0)
    enc = encode_fixed(np.array([sign * top]), fp)
    assert decode_fixed(enc, fp)[0] == sign * top  # largest representable value survives
    for bad in (fp.max_value, fp.max_value * 2, 1e300):
        with pytest.raises(EncodingError, match="outside the fixed-point range") as info:
            encode_fixed(np.array([0.0, sign * bad, 1.0]), fp)
        assert f"frac_bits={frac_bits}" in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fixed_refuses_non_finite(bad: float) -> None:
    with pytest.raises(EncodingError, match="non-finite"):
        encode_fixed(np.array([1.0, bad]), FixedPointConfig())
    with pytest.raises(EncodingError, match="non-finite"):
        encode_fixed(bad, FixedPointConfig())


def test_fixed_empty_array() -> None:
    enc = encode_fixed(np.zeros((0, 3)), FixedPointConfig())
    assert enc.shape == (0, 3)
    assert enc.dtype == np.uint64


@pytest.mark.parametrize("bad", ["abc", ["1.5"], 1 + 2j, np.array([b"1"])])
def test_fixed_refuses_non_numeric_with_encoding_error(bad: object) -> None:
    with pytest.raises(EncodingError):
        encode_fixed(bad, FixedPointConfig())


# ------------------------------------------------------------------------------ integers


@given(st.lists(st.integers(-(INT_LIMIT - 2**10), INT_LIMIT - 2**10), max_size=8))
def test_int_round_trip(values: list[int]) -> None:
    enc = encode_int(np.array(values, dtype=np.int64))
    assert [int(v) for v in enc] == [v % MOD for v in values]
    assert decode_int(enc).tolist() == values


def test_int_accepts_integral_floats_and_bools() -> None:
    assert decode_int(encode_int(np.array([3.0, -4.0, 0.0]))).tolist() == [3, -4, 0]
    assert decode_int(encode_int(np.array([True, False]))).tolist() == [1, 0]
    assert decode_int(encode_int([1, -2])).tolist() == [1, -2]


@pytest.mark.parametrize("bad", [0.5, [1.0, -2.25], np.array([1e-9])])
def test_int_refuses_fractions(bad: object) -> None:
    with pytest.raises(EncodingError, match="fractional part"):
        encode_int(bad)


# 1e30 overflows numpy's float->int64 cast (a RuntimeWarning) before the range check catches it
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@pytest.mark.parametrize(
    "bad",
    [
        2**62,
        -(2**62),
        2**63 - 1,
        -(2**63),
        2**63,
        2**64,
        2**80,
        -(2**70),
        2.0**62,
        1e30,
        -1e30,
        np.array([2**63], dtype=np.uint64),
        np.array([1, 2**62], dtype=np.int64),
    ],
)
def test_int_refuses_out_of_range(bad: object) -> None:
    with pytest.raises(EncodingError, match=r"outside the range|64-bit integers"):
        encode_int(bad)


@pytest.mark.parametrize("bad", [np.nan, np.inf, [1.0, -np.inf]])
def test_int_refuses_non_finite(bad: object) -> None:
    with pytest.raises(EncodingError, match="non-finite"):
        encode_int(bad)


@pytest.mark.parametrize("bad", ["7", ["1", "2"], None, [1, None], 1 + 1j, object()])
def test_int_refuses_non_numeric(bad: object) -> None:
    with pytest.raises(EncodingError, match="cannot encode"):
        encode_int(bad)


@pytest.mark.parametrize("value", [2**62 - 1, -(2**62 - 1), 2**62 - 200])
def test_int_accepts_largest_values_in_range(value: int) -> None:
    assert int(decode_int(encode_int(np.array([value], dtype=np.int64)))[0]) == value


# ------------------------------------------------------------------------------ configuration


@pytest.mark.parametrize("frac_bits", [0, 1, 16, 30])
def test_fixed_point_config_accepts_range(frac_bits: int) -> None:
    fp = FixedPointConfig(frac_bits)
    assert fp.scale == 2**frac_bits
    assert fp.ulp == 2.0**-frac_bits
    assert fp.max_value == 2.0 ** (62 - frac_bits)
    assert fp.max_product == 2.0 ** (62 - 2 * frac_bits)


@pytest.mark.parametrize("frac_bits", [-1, 31, 64, -100])
def test_fixed_point_config_refuses_out_of_range(frac_bits: int) -> None:
    with pytest.raises(ConfigError, match=r"outside \[0, 30\]"):
        FixedPointConfig(frac_bits)


@pytest.mark.parametrize(
    ("suite", "parties", "match"),
    [
        ("rss3", ("a", "b"), "exactly 3 parties"),
        ("rss3", ("a", "b", "c", "d"), "exactly 3 parties"),
        ("rss3", (), "exactly 3 parties"),
        ("additive", ("a",), "at least 2 parties"),
        ("additive", (), "at least 2 parties"),
        ("additive", ("a", "b", "a"), "unique"),
        ("rss3", ("a", "a", "b"), "unique"),
        ("additive", ("a", "dealer"), "reserved"),
        ("rss3", ("dealer", "b", "c"), "reserved"),
        ("shamir", ("a", "b", "c"), "unknown suite"),
        ("", ("a", "b", "c"), "unknown suite"),
    ],
)
def test_session_config_refuses(suite: str, parties: tuple[str, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SessionConfig(suite, parties)


def test_session_config_accepts_and_indexes() -> None:
    cfg = SessionConfig("additive", ("a", "b", "c", "d", "e"))
    assert cfg.n == 5
    assert cfg.has_dealer
    assert cfg.index("c") == 2
    with pytest.raises(ConfigError, match="not in this session"):
        cfg.index("z")
    assert not SessionConfig("rss3", ("a", "b", "c")).has_dealer


def test_session_config_is_frozen() -> None:
    cfg = SessionConfig("rss3", ("a", "b", "c"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.suite = "additive"  # type: ignore[misc]


def test_session_digest_stable_and_sensitive_to_every_field() -> None:
    base = SessionConfig("additive", ("a", "b", "c"), FixedPointConfig(16), "h" * 64, "s1", "0.1")
    same = SessionConfig("additive", ("a", "b", "c"), FixedPointConfig(16), "h" * 64, "s1", "0.1")
    assert base.digest == same.digest
    assert base.digest == base.digest
    assert len(base.digest) == 64
    int(base.digest, 16)
    variants = [
        dataclasses.replace(base, suite="rss3"),
        dataclasses.replace(base, parties=("a", "c", "b")),  # order matters: it fixes indices
        dataclasses.replace(base, parties=("a", "b", "c", "d")),
        dataclasses.replace(base, fixed=FixedPointConfig(15)),
        dataclasses.replace(base, program_hash="g" * 64),
        dataclasses.replace(base, session_id="s2"),
        dataclasses.replace(base, version="0.2"),
    ]
    digests = {v.digest for v in variants}
    assert len(digests) == len(variants)
    assert base.digest not in digests
    # every dataclass field is covered by one variant above
    assert {f.name for f in dataclasses.fields(SessionConfig)} == {
        "suite",
        "parties",
        "fixed",
        "program_hash",
        "session_id",
        "version",
    }


# ------------------------------------------------------------------------------ ring helpers

signed64 = st.integers(-(2**63), 2**63 - 1)
unsigned64 = st.integers(0, 2**64 - 1)


def _to_signed(u: int) -> int:
    return u - MOD if u >= 2**63 else u


@given(st.lists(signed64, max_size=10))
def test_as_ring_embeds_signed_as_twos_complement(values: list[int]) -> None:
    r = ring.as_ring(np.array(values, dtype=np.int64))
    assert r.dtype == np.uint64
    assert [int(v) for v in r] == [v % MOD for v in values]
    assert [int(v) for v in ring.to_signed(r)] == values
    np.testing.assert_array_equal(ring.from_signed(ring.to_signed(r)), r)


@given(st.lists(unsigned64, max_size=10))
def test_as_ring_passes_unsigned_through(values: list[int]) -> None:
    arr = np.array(values, dtype=np.uint64)
    assert ring.as_ring(arr) is arr or np.array_equal(ring.as_ring(arr), arr)
    assert [int(v) for v in ring.to_signed(arr)] == [_to_signed(v) for v in values]


def test_as_ring_small_types_and_refusals() -> None:
    assert ring.as_ring(np.array([-1], dtype=np.int8)).tolist() == [MOD - 1]
    assert ring.as_ring(np.array([255], dtype=np.uint8)).tolist() == [255]
    assert ring.as_ring(np.array([True, False])).tolist() == [1, 0]
    for bad in (np.array([1.0]), np.array(["1"]), np.array([1j])):
        with pytest.raises(TypeError, match="must be integers"):
            ring.as_ring(bad)


@given(st.lists(st.tuples(unsigned64, unsigned64), min_size=1, max_size=10))
def test_ring_arithmetic_wraps_like_python_mod(pairs: list[tuple[int, int]]) -> None:
    a = np.array([p[0] for p in pairs], dtype=np.uint64)
    b = np.array([p[1] for p in pairs], dtype=np.uint64)
    assert [int(v) for v in a + b] == [(x + y) % MOD for x, y in pairs]
    assert [int(v) for v in a - b] == [(x - y) % MOD for x, y in pairs]
    assert [int(v) for v in a * b] == [(x * y) % MOD for x, y in pairs]
    assert [int(v) for v in ring.neg(a)] == [(-x) % MOD for x, _ in pairs]
    np.testing.assert_array_equal(ring.neg(a) + a, np.zeros_like(a))


@given(st.lists(unsigned64, min_size=1, max_size=10), st.integers(0, 63))
def test_arshift_is_floor_division_of_signed(values: list[int], bits: int) -> None:
    arr = np.array(values, dtype=np.uint64)
    out = ring.arshift(arr, bits)
    assert out.dtype == np.uint64
    assert [int(v) for v in out] == [(_to_signed(v) >> bits) % MOD for v in values]
    assert [int(v) for v in ring.to_signed(out)] == [_to_signed(v) // 2**bits for v in values]
