"""Every linear and multiplicative operation against a numpy reference, in every suite.

Fixed-point results are compared with the product of the *encoded* inputs: encoding rounds to the
nearest ulp (2^-16), and each truncation adds at most one ulp (stochastic rounding, see
docs/numerics.md). Integer results are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SUITES
from helpers import ULP, fixed, run
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import smc
from smc.encoding import extra_bits

MUL_BOUND = 2.0**15 - 1  # |x|, |y| below this keeps |x*y| < 2^30, the truncation precondition
EDGE = [0.0, -0.0, ULP, -ULP, 1.0, -1.0, MUL_BOUND, -MUL_BOUND, 0.5, -0.5]


def floats(bound: float) -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from([e for e in EDGE if abs(e) <= bound]),
        st.floats(-bound, bound, allow_nan=False, allow_infinity=False),
    )


def arrays(shape: tuple[int, ...], bound: float = MUL_BOUND) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=floats(bound))


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
suites = st.sampled_from(SUITES)


@given(suites, shapes.flatmap(lambda s: st.tuples(arrays(s), arrays(s))))
def test_add_sub_neg_exact(suite: tuple[str, int], xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    out, _ = run(*suite, lambda p, h: (h[0] + h[1]) - (-h[1]) * 3 - h[0], [x, y])
    np.testing.assert_array_equal(out, fixed(y) - 3 * -fixed(y))


@given(suites, shapes.flatmap(lambda s: st.tuples(arrays(s), arrays(s))))
def test_mul_fixed_within_one_ulp(
    suite: tuple[str, int], xy: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = xy
    out, _ = run(*suite, lambda p, h: h[0] * h[1], [x, y])
    assert out.shape == x.shape
    np.testing.assert_array_less(np.abs(out - fixed(x) * fixed(y)), ULP * 1.0000001)


@given(suites, shapes, st.data())
def test_mul_broadcasts_like_numpy(
    suite: tuple[str, int], shape: tuple[int, ...], data: st.DataObject
) -> None:
    x = data.draw(arrays(shape))
    y = data.draw(arrays(shape[-1:] if shape else ()))
    out, _ = run(*suite, lambda p, h: h[0] * h[1], [x, y])
    ref = fixed(x) * fixed(y)
    assert out.shape == ref.shape
    np.testing.assert_array_less(np.abs(out - ref), ULP * 1.0000001)


@given(
    suites,
    shapes.flatmap(
        lambda s: st.tuples(
            hnp.arrays(np.int64, s, elements=st.integers(-(2**31), 2**31)),
            hnp.arrays(np.int64, s, elements=st.integers(-(2**30), 2**30)),
        )
    ),
)
def test_mul_int_exact(suite: tuple[str, int], xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    out, _ = run(*suite, lambda p, h: h[0] * h[1] + h[0], [x, y], ["int", "int"])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, x * y + x)


@given(suites, st.integers(1, 5), st.integers(0, 5), st.integers(1, 5), st.data())
def test_matmul_fixed(suite: tuple[str, int], m: int, k: int, n: int, data: st.DataObject) -> None:
    a = data.draw(arrays((m, k), 100.0))
    b = data.draw(arrays((k, n), 100.0))
    out, _ = run(*suite, lambda p, h: h[0] @ h[1], [a, b])
    np.testing.assert_allclose(out, fixed(a) @ fixed(b), atol=ULP * 1.0000001, rtol=0)


@given(suites, st.integers(0, 6), st.data())
def test_dot_and_vector_matmul(suite: tuple[str, int], k: int, data: st.DataObject) -> None:
    v = data.draw(arrays((k,), 100.0))
    w = data.draw(arrays((k,), 100.0))
    m = data.draw(arrays((k, 2), 100.0))
    out, _ = run(*suite, lambda p, h: smc.stack([smc.dot(h[0], h[1]), *(h[0] @ h[2])]), [v, w, m])
    ref = np.array([fixed(v) @ fixed(w), *(fixed(v) @ fixed(m))])
    np.testing.assert_allclose(out, ref, atol=ULP * 1.0000001, rtol=0)


@given(suites, st.data())
def test_public_operands(suite: tuple[str, int], data: st.DataObject) -> None:
    x = data.draw(arrays((3,), 1000.0))
    c = data.draw(arrays((3,), 1000.0))
    out, _ = run(*suite, lambda p, h: (h[0] * c + 2.5) * 2 - c / 4 + np.array([1, 2, 3]), [x])
    # a public multiplier below 1/2 is encoded with extra fractional bits (encoding.extra_bits)
    c_mul = fixed(c, 16 + extra_bits(c, 16))
    ref = (fixed(x) * c_mul + 2.5) * 2 - fixed(c) * 0.25 + np.array([1, 2, 3])
    np.testing.assert_allclose(out, ref, atol=4 * ULP, rtol=0)


@given(suites, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), st.data())
def test_sum_mean_over_axes(
    suite: tuple[str, int], shape: tuple[int, ...], data: st.DataObject
) -> None:
    x = data.draw(arrays(shape, 1000.0))
    axis = data.draw(st.integers(0, len(shape) - 1))
    out, _ = run(
        *suite, lambda p, h: smc.concatenate([h[0].sum(axis).ravel(), h[0].mean().reshape(1)]), [x]
    )
    sums = fixed(x).sum(axis).ravel()
    np.testing.assert_array_equal(out[:-1], sums)
    # mean = sum * round(1/n): one truncation plus the reciprocal's rounding
    assert abs(out[-1] - fixed(x).mean()) <= ULP + abs(fixed(x).sum()) * ULP


@given(suites, hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4), st.data())
def test_structural_ops(
    suite: tuple[str, int], shape: tuple[int, ...], data: st.DataObject
) -> None:
    x = data.draw(arrays(shape, 1000.0))
    y = data.draw(arrays(shape, 1000.0))

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> smc.SecureArray:
        parts = [
            h[0].T.ravel(),
            h[0][..., ::-1].ravel(),
            h[1][0].ravel(),
            h[0][:, None].ravel(),
            smc.concatenate([h[0], h[1]], axis=-1).ravel(),
            smc.stack([h[0], h[1]], axis=1).ravel(),
            h[0].reshape(-1, shape[-1]).transpose(1, 0).ravel(),
        ]
        return smc.concatenate(parts)

    out, _ = run(*suite, build, [x, y])
    fx, fy = fixed(x), fixed(y)
    ref = np.concatenate(
        [
            fx.T.ravel(),
            fx[..., ::-1].ravel(),
            fy[0].ravel(),
            fx[:, None].ravel(),
            np.concatenate([fx, fy], axis=-1).ravel(),
            np.stack([fx, fy], axis=1).ravel(),
            fx.reshape(-1, shape[-1]).T.ravel(),
        ]
    )
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize(("suite", "n"), SUITES)
def test_range_edges_add_and_mul(suite: str, n: int) -> None:
    fp = smc.FixedPointConfig()
    top = fp.max_value - 1
    x = np.array([top, -top, top / 2, 0.0])
    y = np.array([-1.0, 1.0, -1.0, 5.0])
    out, _ = run(suite, n, lambda p, h: h[0] + h[1], [x, y])
    np.testing.assert_array_equal(out, x + y)
    # largest products the precondition allows: |x*y| just below 2^30
    a = np.array([2.0**15 - ULP, -(2.0**15 - ULP), 2.0**29, -(2.0**29), 1e-5])
    b = np.array([2.0**15 - ULP, 2.0**15 - ULP, 1.999, 1.999, -1e-5])
    out, _ = run(suite, n, lambda p, h: h[0] * h[1], [a, b])
    np.testing.assert_array_less(np.abs(out - fixed(a) * fixed(b)), ULP * 1.0000001)


@pytest.mark.parametrize(("suite", "n"), SUITES)
def test_large_array(suite: str, n: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-3e4, 3e4, 100_000)
    y = rng.uniform(-3e4, 3e4, 100_000)
    out, _ = run(suite, n, lambda p, h: h[0] * h[1], [x, y])
    assert np.max(np.abs(out - fixed(x) * fixed(y))) <= ULP


@pytest.mark.parametrize(("suite", "n"), SUITES)
def test_outputs_reach_only_their_recipients(suite: str, n: int) -> None:
    names = [f"p{i}" for i in range(n)]
    p = smc.ProgramBuilder(names)
    x = p.input(names[1], "x", shape=(2,))
    p.output("to_last", x * 2, to=names[-1])
    p.output("to_all", x.sum())
    p.output("to_two", x + 1, to=[names[0], names[1]])
    res = smc.simulate(p.build(), {names[1]: {"x": np.array([1.5, -2.0])}}, suite=suite)
    for i, name in enumerate(names):
        expected = (
            {"to_all"} | ({"to_last"} if i == n - 1 else set()) | ({"to_two"} if i < 2 else set())
        )
        assert set(res[name]) == expected
    np.testing.assert_array_equal(res[names[-1]]["to_last"], [3.0, -4.0])
    assert res[names[0]]["to_all"] == -0.5
    np.testing.assert_array_equal(res[names[1]]["to_two"], [2.5, -1.0])


@pytest.mark.parametrize("frac_bits", [0, 8, 16, 24])
def test_frac_bits_configurable(frac_bits: int) -> None:
    ulp = 2.0**-frac_bits
    bound = 2.0 ** ((62 - 2 * frac_bits) / 2) / 2
    x = np.array([bound * 0.9, -bound * 0.7, 1.25])
    y = np.array([-bound * 0.9, bound * 0.3, -3.5])
    out, _ = run("rss3", 3, lambda p, h: h[0] * h[1], [x, y], frac_bits=frac_bits)
    fx, fy = fixed(x, frac_bits), fixed(y, frac_bits)
    np.testing.assert_array_less(
        np.abs(out - fx * fy), ulp * 1.0000001 + np.abs(fx * fy) * 2.0**-52
    )


def test_integer_and_fixed_mix() -> None:
    out, _ = run(
        "rss3",
        3,
        lambda p, h: h[0] * h[1] + h[0],
        [np.array([3, -4]), np.array([0.5, 1.25])],
        ["int", "fixed"],
    )
    np.testing.assert_array_equal(out, [4.5, -9.0])
    out, _ = run("additive", 2, lambda p, h: (h[0] * 0.5).to_int(), [np.array([3.0, -4.0])])
    assert out.dtype == np.int64
    assert set(out) <= {1, 2, -2, -1} and out[1] == -2


@pytest.mark.parametrize(("suite", "n"), SUITES)
def test_mixed_public_secret_structure_and_scalar_products(suite: str, n: int) -> None:
    """concatenate/stack of secret and public parts, 0-d products feeding comparisons, and slices
    with numpy-integer bounds."""

    def build(p: smc.ProgramBuilder, h: list[smc.SecureArray]) -> smc.SecureArray:
        d = smc.dot(h[0], h[0])  # 0-d secret
        return smc.concatenate(
            [
                smc.concatenate([h[0], np.array([1.5, 2.5])]),
                smc.stack([h[0], np.ones(3)]).ravel(),
                smc.where(d < 20.0, d, 0.0).reshape(1),
                h[0][np.int64(0) : np.int64(2)],
            ]
        )

    out, _ = run(suite, n, build, [np.array([1.0, 2.0, 3.0])])
    expected = [1, 2, 3, 1.5, 2.5, 1, 2, 3, 1, 1, 1, 14, 1, 2]
    np.testing.assert_allclose(out, expected, atol=ULP)


@given(
    st.integers(0, 2),
    st.booleans(),
    shapes.flatmap(lambda s: st.tuples(arrays(s), arrays(s))),
)
def test_product_revealed_to_any_one_party(
    recipient: int, square: bool, xy: tuple[np.ndarray, np.ndarray]
) -> None:
    """rss3 truncates and opens a product revealed to one party in one protocol, with roles
    that depend on the recipient (Program.product_outputs): every recipient, products and
    matmuls, empty and 0-d arrays, edge values; and the recipient alone gets it."""
    x, y = xy
    names = ["p0", "p1", "p2"]
    p = smc.ProgramBuilder(names)
    if square:  # a 3x3 matmul built from the drawn values (scaled to keep |sum| in range)
        x, y = (
            np.resize(x, (3, 3)) / 3 if x.size else np.zeros((3, 3)),
            (np.resize(y, (3, 3)) / 3 if y.size else np.zeros((3, 3))),
        )
        a, b = p.input("p1", "x", shape=(3, 3)), p.input("p2", "y", shape=(3, 3))
        p.output("z", a @ b, to=names[recipient])
        ref = fixed(x) @ fixed(y)
    else:
        a, b = p.input("p1", "x", shape=x.shape), p.input("p2", "y", shape=y.shape)
        p.output("z", a * b, to=names[recipient])
        ref = fixed(x) * fixed(y)
    prog = p.build()
    assert prog.product_outputs()
    res = smc.simulate(prog, {"p1": {"x": x}, "p2": {"y": y}})
    out = res[names[recipient]]["z"]
    assert out.shape == np.shape(ref)
    np.testing.assert_array_less(np.abs(out - ref), ULP * 1.0000001)
    assert all(res[n] == {} for k, n in enumerate(names) if k != recipient)
