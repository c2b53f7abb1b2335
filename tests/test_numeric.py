"""Accuracy of the secure numeric functions over their documented domains, in every suite.

Each function runs on a few hundred points spread over the domain of bench/numerics.py (DOMAINS;
log-uniform magnitudes where the domain spans decades, plus its edges) and every result must
satisfy |got - ref| <= A + R * |ref|, with ref computed in float64 on the *encoded* inputs.

Where A and R come from (frac_bits 16, 20000 points per domain, the same points as the bench)::

    .venv/bin/python bench/numerics.py --points 20000                          # rss3
    .venv/bin/python bench/numerics.py --points 20000 --suite additive --parties 3

    function      max abs err (rss3 / additive)   rel err |y|>=1 (rss3 / additive)
    reciprocal    5.010e-03 / 4.691e-03           3.136e-05 / 3.660e-05
    sqrt          3.648e-02 / 4.211e-02           3.653e-05 / 4.148e-05
    sqrt (small)  1.320e-04 / 1.347e-04           4.531e-05 / 4.055e-05
    rsqrt         7.014e-04 / 7.045e-04           3.575e-05 / 3.027e-05
    log           3.881e-05 / 3.545e-05           1.944e-05 / 2.332e-05
    exp           3.642e+00 / 3.829e+00           6.964e-05 / 7.098e-05
    sigmoid       3.052e-05 / 3.041e-05           0 / 0
    tanh          6.022e-05 / 6.096e-05           0 / 0

The bench's absolute maxima sit at large |y| (e.g. exp near 2^16), so the same points were split
into A = max |err| where |ref| < 1 and R = max |err|/|ref| where |ref| >= 1 (rss3 3 parties /
additive 3 parties / additive 2 parties; same seed and points as the bench):

    reciprocal    A 2.05e-05 / 1.97e-05 / 1.92e-05   R 4.12e-05 / 3.65e-05 / 3.34e-05
    sqrt (both)   A 4.52e-05 / 3.98e-05 / 3.78e-05   R 4.29e-05 / 4.11e-05 / 4.43e-05
    rsqrt         A 2.78e-05 / 2.80e-05 / 2.84e-05   R 3.85e-05 / 3.18e-05 / 3.12e-05
    log           A 3.94e-05 / 3.91e-05 / 4.01e-05   R 3.79e-05 / 3.29e-05 / 3.79e-05
    exp           A 3.05e-05 / 3.05e-05 / 3.03e-05   R 7.18e-05 / 6.84e-05 / 6.90e-05
    sigmoid       A 3.04e-05 / 3.04e-05 / 3.02e-05   (|ref| < 1 throughout)
    tanh          A 6.09e-05 / 6.09e-05 / 6.07e-05   (|ref| < 1 throughout)
    softmax       max |err| 6.73e-05 (axis -1), 5.10e-05 (axis 0), rows of 8 in [-30, 30]
    x / y         |err| <= 2^-16 + 2.1e-05 |x| + 4.2e-05 |x/y| holds with ratio <= 1.007
                  (x: +-[2^-4, 2^10], y: the reciprocal domain; the |x| term is the absolute
                  error of 1/y, about one ulp, multiplied by x)

Every asserted bound is about 3x the measured maximum.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import SUITES
from helpers import ULP, fixed, parties

import smc

POINTS = 300
EXP_SAT = 16 * math.log(2)  # exp saturates at 2^16 from here on
EXP_ZERO = -32 * math.log(2)  # and is 0 below this


@dataclass(frozen=True)
class Case:
    name: str
    lo: float
    hi: float
    log: bool  # log-uniform magnitudes
    signed: bool  # random sign (log domains)
    secure: Callable[[smc.SecureArray], smc.SecureArray]
    plain: Callable[[np.ndarray], np.ndarray]
    a: float  # asserted |err| <= a + r * |ref|
    r: float


def np_sigmoid(v: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-v)))


LOG, LIN = True, False
CASES = [  # the domains of bench/numerics.py DOMAINS, and the asserted a, r
    Case("reciprocal", 2.0**-8, 2.0**14, LOG, True, lambda x: x.reciprocal(), lambda v: 1 / v,
         a=6e-5, r=1.2e-4),
    Case("sqrt", 0.0, 2.0**20, LIN, False, lambda x: x.sqrt(), np.sqrt, a=1.5e-4, r=1.3e-4),
    Case("sqrt (small)", 2.0**-10, 2.0**4, LOG, False, lambda x: x.sqrt(), np.sqrt,
         a=1.5e-4, r=1.3e-4),
    Case("rsqrt", 2.0**-10, 2.0**20, LOG, False, lambda x: x.rsqrt(), lambda v: 1 / np.sqrt(v),
         a=9e-5, r=1.2e-4),
    Case("log", 2.0**-10, 2.0**20, LOG, False, lambda x: x.log(), np.log, a=1.2e-4, r=1.2e-4),
    Case("exp", -20.0, 11.0, LIN, False, lambda x: x.exp(), np.exp, a=1e-4, r=2.2e-4),
    Case("sigmoid", -60.0, 60.0, LIN, False, lambda x: x.sigmoid(), np_sigmoid, a=1e-4, r=0.0),
    Case("tanh", -30.0, 30.0, LIN, False, lambda x: x.tanh(), np.tanh, a=2e-4, r=0.0),
]  # fmt: skip
SOFTMAX_A = 2e-4
DIV_A, DIV_X, DIV_R = 3 * ULP, 6e-5, 1.2e-4  # |err| <= DIV_A + DIV_X |x| + DIV_R |x/y|


def domain_points(c: Case, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points over the domain plus its edges, rounded to the fixed-point grid."""
    if c.log:
        vals = np.exp(rng.uniform(np.log(c.lo), np.log(c.hi), n))
        if c.signed:
            vals *= rng.choice([-1.0, 1.0], n)
        edges = [c.lo, c.hi * 0.999, 1.0] + ([-c.lo, -c.hi * 0.999, -1.0] if c.signed else [])
    else:
        vals = rng.uniform(c.lo, c.hi, n)
        edges = [c.lo, c.hi * 0.999] + ([0.0] if c.lo <= 0 <= c.hi else [])
    return fixed(np.concatenate([vals, edges]))


def secure(
    suite: str, n: int, fn: Callable[..., smc.SecureArray], *arrays: np.ndarray
) -> np.ndarray:
    names = parties(n)
    p = smc.ProgramBuilder(names)
    handles = [p.input(names[k % n], f"x{k}", shape=a.shape) for k, a in enumerate(arrays)]
    p.output("y", fn(*handles), to=names[0])
    inputs: dict[str, dict[str, np.ndarray]] = {}
    for k, a in enumerate(arrays):
        inputs.setdefault(names[k % n], {})[f"x{k}"] = a
    return smc.simulate(p.build(), inputs, suite=suite)[names[0]]["y"]


def assert_within(got: np.ndarray, ref: np.ndarray, bound: np.ndarray, what: str) -> None:
    err = np.abs(got - ref)
    bad = err > bound
    assert not bad.any(), (
        f"{what}: {int(bad.sum())} of {err.size} points out of bounds, worst err "
        f"{float(err.max()):.3e} (bound there {float(bound.flat[int(np.argmax(err / bound))]):.3e})"
    )


@pytest.mark.parametrize(("suite", "n"), SUITES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_error_within_bound_over_domain(suite: str, n: int, case: Case) -> None:
    x = domain_points(case, POINTS, np.random.default_rng(zlib.crc32(case.name.encode()) + n))
    got = secure(suite, n, case.secure, x)
    ref = case.plain(x)
    assert got.shape == x.shape
    assert_within(got, ref, case.a + case.r * np.abs(ref), case.name)


@pytest.mark.parametrize(("suite", "n"), SUITES)
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax(suite: str, n: int, axis: int) -> None:
    rng = np.random.default_rng(7 + n)
    rows = rng.uniform(-30, 30, (40, 7))
    rows[0] = 2.5  # all tied: uniform
    rows[1] = [-30, -30, 30, -30, -30, -30, -30]  # one dominant entry
    rows[2] = np.linspace(-1, 1, 7)
    x = fixed(rows if axis == -1 else rows.T.copy())
    got = secure(suite, n, lambda a: smc.softmax(a, axis=axis), x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    ref = e / e.sum(axis=axis, keepdims=True)
    assert got.shape == x.shape
    assert_within(got, ref, np.full(ref.shape, SOFTMAX_A), f"softmax axis {axis}")
    np.testing.assert_allclose(got.sum(axis=axis), 1.0, atol=7 * SOFTMAX_A)


@pytest.mark.parametrize(("suite", "n"), SUITES)
def test_division_by_a_secret(suite: str, n: int) -> None:
    rng = np.random.default_rng(11 + n)
    num = np.exp(rng.uniform(np.log(2.0**-4), np.log(2.0**10), POINTS))
    den = np.exp(rng.uniform(np.log(2.0**-8), np.log(2.0**14), POINTS))
    num = fixed(np.append(num * rng.choice([-1.0, 1.0], POINTS), [1.0, -1.0, 2.0**10, 3.0]))
    den = fixed(np.append(den * rng.choice([-1.0, 1.0], POINTS), [3.0, 2.0**-8, -(2.0**14), 3.0]))
    got = secure(suite, n, lambda a, b: a / b, num, den)
    ref = num / den
    assert_within(got, ref, DIV_A + DIV_X * np.abs(num) + DIV_R * np.abs(ref), "x / y")


# ----------------------------------------------------------------------- outside the domain


@pytest.mark.parametrize(("suite", "n"), SUITES)
def test_documented_behaviour_outside_the_domains(suite: str, n: int) -> None:
    sat = fixed([EXP_SAT + 1e-3, 12.0, 20.0, 100.0, 1e4, 2.0**20, 2.0**29 - 1])
    zero = fixed([EXP_ZERO - 1e-3, -23.0, -30.0, -100.0, -1e4, -(2.0**20), -(2.0**29 - 1)])
    tail = fixed([-22.1, -21.0, -20.5])  # below the bench domain, above EXP_ZERO: tiny
    edge = fixed([EXP_SAT])
    big = fixed([60.0, -60.0, 100.0, -100.0, 1000.0, -1000.0])
    zeros = np.array([0.0, -0.0, 0.0])

    def build(*h: smc.SecureArray) -> smc.SecureArray:
        x = h[0]
        parts = [
            x[0:7].exp(),
            x[7:14].exp(),
            x[14:17].exp(),
            x[17:18].exp(),
            x[18:24].sigmoid(),
            x[18:24].tanh(),
            x[24:27].reciprocal(),
            x[24:27].sqrt(),
        ]
        return smc.concatenate(parts)

    x = np.concatenate([sat, zero, tail, edge, big, zeros])
    got = secure(suite, n, build, x)
    np.testing.assert_array_equal(got[0:7], 2.0**16)  # saturated
    np.testing.assert_array_equal(got[7:14], 0.0)  # underflow is exactly 0
    assert np.all(np.abs(got[14:17]) <= 1e-4)
    assert abs(got[17] - 2.0**16) <= 1e-4 + 2.2e-4 * 2.0**16  # exp(16 ln 2) itself
    np.testing.assert_allclose(got[18:24], big > 0, atol=1e-4, rtol=0)  # 1 or 0
    np.testing.assert_allclose(got[24:30], np.sign(big), atol=2e-4, rtol=0)
    np.testing.assert_array_equal(got[30:33], 0.0)  # reciprocal(0) = 0
    np.testing.assert_array_equal(got[33:36], 0.0)  # sqrt(0) = 0


# ------------------------------------------------------------------------- public operands

PUBLIC: dict[str, tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]] = {
    "reciprocal": (np.array([3.0, -0.25, 1e-3, 1e4]), lambda v: 1 / v),
    "sqrt": (np.array([0.0, 2.0, 1e-3, 1e6]), np.sqrt),
    "rsqrt": (np.array([2.0, 1e-3, 1e6, 1.0]), lambda v: 1 / np.sqrt(v)),
    "log": (np.array([2.0, 1e-3, 1e6, 1.0]), np.log),
    "exp": (np.array([0.0, -3.0, 10.0, -30.0]), np.exp),
    "sigmoid": (np.array([0.0, -3.0, 60.0, -60.0]), np_sigmoid),
    "tanh": (np.array([0.0, -0.5, 30.0, 3.0]), np.tanh),
}


def run_public(build: Callable[[smc.ProgramBuilder], smc.SecureArray]) -> np.ndarray:
    p = smc.ProgramBuilder(parties(3))
    y = build(p)
    assert not y.secret
    p.output("y", y)
    return smc.simulate(p.build(), {})["p1"]["y"]


@pytest.mark.parametrize("fn", list(PUBLIC))
def test_public_operands_compute_in_plaintext(fn: str) -> None:
    """Constants never touch a protocol: the float64 function of the encoded value, encoded."""
    x, plain = PUBLIC[fn]
    got = run_public(lambda p: getattr(p.const(x), fn)())
    np.testing.assert_array_equal(got, fixed(plain(fixed(x))))


def test_public_softmax() -> None:
    x = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    got = run_public(lambda p: smc.softmax(p.const(x)))
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(axis=-1, keepdims=True), atol=4 * ULP, rtol=0)


def test_public_reciprocal_of_zero_is_zero_like_the_secret_one() -> None:
    got = run_public(lambda p: p.const(np.array([0.0, 2.0])).reciprocal())
    np.testing.assert_array_equal(got, [0.0, 0.5])


def test_public_exp_saturates_like_the_secret_one() -> None:
    got = run_public(lambda p: p.const(np.array([12.0, 1.0])).exp())
    np.testing.assert_allclose(got, [2.0**16, math.e], atol=ULP)
    got = run_public(lambda p: p.const(np.array([100.0])).exp())
    np.testing.assert_array_equal(got, [2.0**16])
