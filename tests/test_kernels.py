"""Tests of the share kernels: dispatcher, Numba kernel, ``py_func`` and numpy twin must agree,
and the twins must agree with exact Python-integer arithmetic modulo 2^64."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smc.kernels import (
    elementwise,
    matmul,
    ring_dot,
    ring_dot_reference,
    ring_matmul,
    ring_matmul_reference,
    rss3_dot_local,
    rss3_dot_local_reference,
    rss3_mul_local,
    rss3_mul_local_reference,
    trunc_finish,
    trunc_finish_reference,
)
from smc.ring import U64, arshift, to_signed

MOD = 2**64
EDGE = [0, 1, 2, 2**32 - 1, 2**32, 2**32 + 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]
LAYOUTS = ["c", "strided", "fortran", "readonly", "unaligned"]

elements = st.one_of(st.sampled_from(EDGE), st.integers(0, MOD - 1))
small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
SETTINGS = settings(max_examples=50, deadline=None)


def u64(shape: tuple[int, ...]) -> st.SearchStrategy[U64]:
    return hnp.arrays(np.uint64, shape, elements=elements)


def layout(arr: U64, kind: str) -> U64:
    """The same values as ``arr`` in another memory layout (all but "c" are non-trivial)."""
    if kind == "strided":
        buf = np.zeros((*arr.shape, 2), dtype=np.uint64)
        buf[..., 0] = arr
        out = buf[..., 0]
    elif kind == "fortran":
        out = arr.copy(order="F")  # (np.asfortranarray would turn 0-d into 1-d)
    elif kind == "readonly":
        out = arr.copy()
        out.flags.writeable = False
    elif kind == "unaligned":
        raw = np.zeros(arr.nbytes + 1, dtype=np.uint8)
        out = raw[1:].view(np.uint64).reshape(arr.shape)
        out[...] = arr
    else:
        out = arr
    np.testing.assert_array_equal(out, arr)
    return out


def ints(arr: Any) -> list[int]:
    return [int(v) for v in np.asarray(arr).ravel()]


def kernel_variants(factory: Callable[[], Any]) -> list[Callable[..., Any]]:
    """The compiled kernel and its pure-Python body (the same object under NUMBA_DISABLE_JIT)."""
    kernel = factory()
    return [kernel, getattr(kernel, "py_func", kernel)]


@contextmanager
def quiet_overflow() -> Iterator[None]:
    """``py_func`` runs on numpy scalars, whose wrap-around warns; wrap-around is intended."""
    with np.errstate(over="ignore"):
        yield


def assert_u64(actual: Any, expected: Any) -> None:
    assert isinstance(actual, np.ndarray), type(actual)
    assert actual.dtype == np.uint64
    expected = np.asarray(expected, dtype=np.uint64)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


# ----------------------------------------------------------------------------------------------
# rss3_mul_local
# ----------------------------------------------------------------------------------------------


def exact_rss3_mul(x0: U64, x1: U64, y0: U64, y1: U64) -> U64:
    arrays = np.broadcast_arrays(x0, x1, y0, y1)
    vals = [(a * c + a * d + b * c) % MOD for a, b, c, d in zip(*map(ints, arrays), strict=True)]
    return np.array(vals, dtype=np.uint64).reshape(arrays[0].shape)


@SETTINGS
@given(
    data=st.data(),
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=4, max_dims=3, max_side=4),
    kinds=st.lists(st.sampled_from(LAYOUTS), min_size=4, max_size=4),
)
def test_rss3_mul_local(data: st.DataObject, shapes: Any, kinds: list[str]) -> None:
    raw = [data.draw(u64(shape)) for shape in shapes.input_shapes]
    x0, x1, y0, y1 = (layout(a, k) for a, k in zip(raw, kinds, strict=True))
    expected = exact_rss3_mul(*raw)
    assert_u64(rss3_mul_local_reference(x0, x1, y0, y1), expected)
    assert_u64(rss3_mul_local(x0, x1, y0, y1), expected)
    flat = [np.ascontiguousarray(np.broadcast_to(a, expected.shape)).ravel() for a in raw]
    with quiet_overflow():
        for kernel in kernel_variants(elementwise._rss3_mul_kernel):
            assert_u64(kernel(*flat), expected.ravel())


def test_rss3_mul_local_scalars_and_empty() -> None:
    out = rss3_mul_local(np.uint64(3), np.uint64(4), np.uint64(5), np.uint64(6))
    assert_u64(out, np.array(3 * 5 + 3 * 6 + 4 * 5, dtype=np.uint64))
    empty = np.zeros((0, 3), dtype=np.uint64)
    assert_u64(rss3_mul_local(empty, empty, empty, empty), empty)
    assert_u64(rss3_mul_local_reference(empty, empty, empty, empty), empty)
    with pytest.raises(ValueError):
        rss3_mul_local(np.zeros(2, np.uint64), np.zeros(3, np.uint64), empty, empty)
    with pytest.raises(TypeError):
        rss3_mul_local(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2))


def test_kernel_rejects_length_mismatch() -> None:
    a, b = np.zeros(3, np.uint64), np.zeros(2, np.uint64)
    with pytest.raises(ValueError):
        elementwise._rss3_mul_kernel()(a, a, a, b)
    with pytest.raises(ValueError):
        elementwise._trunc_finish_kernel()(a, a, b, np.uint64(1), True)
    with pytest.raises(ValueError):
        matmul._ring_dot_kernel()(a, b)
    with pytest.raises(ValueError):
        matmul._rss3_dot_kernel()(a, a, b, a)


# ----------------------------------------------------------------------------------------------
# trunc_finish
# ----------------------------------------------------------------------------------------------


def exact_trunc_finish(c: U64, u0: U64, u1: U64, m: int, public_part: bool) -> U64:
    arrays = np.broadcast_arrays(c, u0, u1)
    vals = []
    for ci, a, b in zip(*map(ints, arrays), strict=True):
        msb = ci >> 63
        pub = ((ci & (2**63 - 1)) >> m) + msb * 2 ** (63 - m) - 2 ** (62 - m)
        vals.append(((pub if public_part else 0) - (b if msb else a)) % MOD)
    return np.array(vals, dtype=np.uint64).reshape(arrays[0].shape)


@SETTINGS
@given(
    data=st.data(),
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4),
    kinds=st.lists(st.sampled_from(LAYOUTS), min_size=3, max_size=3),
    m=st.one_of(st.sampled_from([0, 1, 16, 32, 61, 62]), st.integers(0, 62)),
    public_part=st.booleans(),
)
def test_trunc_finish(
    data: st.DataObject, shapes: Any, kinds: list[str], m: int, public_part: bool
) -> None:
    raw = [data.draw(u64(shape)) for shape in shapes.input_shapes]
    c, u0, u1 = (layout(a, k) for a, k in zip(raw, kinds, strict=True))
    expected = exact_trunc_finish(*raw, m, public_part)
    assert_u64(trunc_finish_reference(c, u0, u1, m, public_part), expected)
    assert_u64(trunc_finish(c, u0, u1, m, public_part), expected)
    flat = [np.ascontiguousarray(np.broadcast_to(a, expected.shape)).ravel() for a in raw]
    with quiet_overflow():
        for kernel in kernel_variants(elementwise._trunc_finish_kernel):
            assert_u64(kernel(*flat, np.uint64(m), public_part), expected.ravel())


@SETTINGS
@given(
    m=st.integers(0, 62),
    x=st.lists(st.integers(-(2**62), 2**62 - 1), min_size=1, max_size=20),
    seed=st.integers(0, 2**32 - 1),
)
def test_trunc_finish_reconstructs_truncation(m: int, x: list[int], seed: int) -> None:
    """End to end with two additive parties: opened c = x + 2^62 + r, r = r_top 2^63 + r_low,
    u0 = (r_low >> m) - r_top 2^(63-m), u1 = (r_low >> m) + r_top 2^(63-m); the parties'
    outputs must sum to (x >> m) + e with e in {0, 1} (probabilistic rounding)."""
    rng = np.random.default_rng(seed)
    xs = np.array(x, dtype=np.int64).view(np.uint64)
    r = rng.integers(0, MOD, size=xs.shape, dtype=np.uint64, endpoint=False)
    r_top = r >> np.uint64(63)
    r_low = r & np.uint64(2**63 - 1)
    scale = np.uint64(2 ** (63 - m))
    u0 = (r_low >> np.uint64(m)) - r_top * scale
    u1 = (r_low >> np.uint64(m)) + r_top * scale
    c = xs + np.uint64(2**62) + r
    mask0 = rng.integers(0, MOD, size=xs.shape, dtype=np.uint64, endpoint=False)
    mask1 = rng.integers(0, MOD, size=xs.shape, dtype=np.uint64, endpoint=False)
    p0 = trunc_finish(c, mask0, mask1, m, True)
    p1 = trunc_finish(c, u0 - mask0, u1 - mask1, m, False)
    err = to_signed(p0 + p1 - arshift(xs, m))
    assert set(err.tolist()) <= {0, 1}


def test_trunc_finish_validates_frac_bits() -> None:
    z = np.zeros(2, dtype=np.uint64)
    for bad in (-1, 63, 64):
        with pytest.raises(ValueError):
            trunc_finish(z, z, z, bad, True)
        with pytest.raises(ValueError):
            trunc_finish_reference(z, z, z, bad, True)
    assert_u64(trunc_finish(np.uint64(2**63), np.uint64(5), np.uint64(7), 0, False), MOD - 7)
    empty = np.zeros((2, 0), dtype=np.uint64)
    assert_u64(trunc_finish(empty, empty, empty, 16, True), empty)


# ----------------------------------------------------------------------------------------------
# ring_dot and rss3_dot_local
# ----------------------------------------------------------------------------------------------


@SETTINGS
@given(
    data=st.data(),
    shape=small_shapes,
    kinds=st.lists(st.sampled_from(LAYOUTS), min_size=4, max_size=4),
)
def test_dots(data: st.DataObject, shape: tuple[int, ...], kinds: list[str]) -> None:
    raw = [data.draw(u64(shape)) for _ in range(4)]
    x0, x1, y0, y1 = (layout(a, k) for a, k in zip(raw, kinds, strict=True))
    a0, a1, b0, b1 = map(ints, raw)
    dot = sum(p * q for p, q in zip(a0, b0, strict=True)) % MOD
    rss = sum(p * r + p * s + q * r for p, q, r, s in zip(a0, a1, b0, b1, strict=True)) % MOD
    assert_u64(ring_dot_reference(x0, y0), dot)
    assert_u64(ring_dot(x0, y0), dot)
    assert_u64(rss3_dot_local_reference(x0, x1, y0, y1), rss)
    assert_u64(rss3_dot_local(x0, x1, y0, y1), rss)
    flat = [np.ascontiguousarray(a).ravel() for a in raw]
    with quiet_overflow():
        for kernel in kernel_variants(matmul._ring_dot_kernel):
            assert int(kernel(flat[0], flat[2])) == dot
        for kernel in kernel_variants(matmul._rss3_dot_kernel):
            assert int(kernel(*flat)) == rss


def test_dots_shapes() -> None:
    empty = np.zeros(0, dtype=np.uint64)
    assert_u64(ring_dot(empty, empty), 0)
    assert_u64(rss3_dot_local(empty, empty, empty, empty), 0)
    with pytest.raises(ValueError):
        ring_dot(np.zeros(3, np.uint64), np.zeros(4, np.uint64))
    with pytest.raises(ValueError):
        rss3_dot_local_reference(empty, empty, empty, np.zeros(1, np.uint64))
    big = np.full(1000, 2**64 - 1, dtype=np.uint64)
    assert_u64(ring_dot(big, big), 1000)  # (-1)^2 summed 1000 times


# ----------------------------------------------------------------------------------------------
# ring_matmul
# ----------------------------------------------------------------------------------------------


def exact_matmul_2d(a: U64, b: U64) -> U64:
    m, k = a.shape
    n = b.shape[1]
    ai = [[int(v) for v in row] for row in a]
    bi = [[int(v) for v in row] for row in b]
    out = [[sum(ai[i][t] * bi[t][j] for t in range(k)) % MOD for j in range(n)] for i in range(m)]
    return np.array(out, dtype=np.uint64).reshape(m, n)


def test_block_size_is_the_exactness_bound() -> None:
    w22, w21 = 2**22 - 1, 2**21 - 1
    block = matmul._MAX_BLOCK
    assert block * w22 * w22 <= 2**53  # A0 B0
    assert 2 * block * w22 * w21 <= 2**53  # A0 B1 + A1 B0
    assert 3 * block * w22 * w21 <= 2**53 < 3 * (block + 1) * w22 * w21  # widest group
    with pytest.raises(ValueError):
        matmul._ring_matmul_blocked(np.zeros((1, 1), np.uint64), np.zeros((1, 1), np.uint64), 342)


@SETTINGS
@given(
    data=st.data(),
    mkn=st.tuples(st.integers(0, 5), st.integers(0, 7), st.integers(0, 5)),
    transpose=st.tuples(st.booleans(), st.booleans()),
    block=st.integers(1, 4),
    chunk=st.integers(1, 40),
)
def test_ring_matmul_2d(
    data: st.DataObject,
    mkn: tuple[int, int, int],
    transpose: tuple[bool, bool],
    block: int,
    chunk: int,
) -> None:
    m, k, n = mkn
    a = data.draw(u64((k, m))).T if transpose[0] else data.draw(u64((m, k)))
    b = data.draw(u64((n, k))).T if transpose[1] else data.draw(u64((k, n)))
    b = layout(b, data.draw(st.sampled_from(LAYOUTS)))
    expected = exact_matmul_2d(a, b)
    assert_u64(ring_matmul_reference(a, b), expected)
    assert_u64(ring_matmul(a, b), expected)
    assert_u64(matmul._ring_matmul_blocked(a, b, block, chunk), expected)


@SETTINGS
@given(data=st.data(), k=st.integers(0, 6), n=st.integers(0, 4), block=st.integers(1, 3))
def test_ring_matmul_vectors(data: st.DataObject, k: int, n: int, block: int) -> None:
    v = data.draw(u64((k,)))
    w = data.draw(u64((k,)))
    mat = data.draw(u64((k, n)))
    mat_t = np.ascontiguousarray(mat.T)
    dot = sum(p * q for p, q in zip(ints(v), ints(w), strict=True)) % MOD
    cases = [
        (v, w, np.array(dot, dtype=np.uint64)),  # 1-D @ 1-D -> 0-d
        (v, mat, exact_matmul_2d(v[None, :], mat)[0]),  # 1-D @ 2-D
        (mat_t, v, exact_matmul_2d(mat_t, v[:, None])[:, 0]),  # 2-D @ 1-D
    ]
    for x, y, expected in cases:
        assert_u64(ring_matmul_reference(x, y), expected)
        assert_u64(ring_matmul(x, y), expected)
        assert_u64(matmul._ring_matmul_blocked(x, y, block, 3), expected)


def test_ring_matmul_shapes_and_errors() -> None:
    rng = np.random.default_rng(7)
    for sa, sb in [((0, 3), (3, 4)), ((3, 0), (0, 4)), ((3, 4), (4, 0)), ((1, 1), (1, 1))]:
        a = rng.integers(0, MOD, sa, dtype=np.uint64, endpoint=False)
        b = rng.integers(0, MOD, sb, dtype=np.uint64, endpoint=False)
        assert_u64(ring_matmul(a, b), ring_matmul_reference(a, b))
    # batched, with broadcasting of the leading dimensions, and a 1-D operand against a stack
    a = rng.integers(0, MOD, (2, 1, 3, 400), dtype=np.uint64, endpoint=False)
    b = rng.integers(0, MOD, (4, 400, 5), dtype=np.uint64, endpoint=False)
    assert_u64(ring_matmul(a, b), np.matmul(a, b))
    v = rng.integers(0, MOD, 400, dtype=np.uint64, endpoint=False)
    assert_u64(ring_matmul(v, b), np.matmul(v, b))
    assert_u64(ring_matmul(a, v), np.matmul(a, v))
    # signed integers embed in two's complement
    assert_u64(ring_matmul(np.array([[-1, 2]]), np.array([[3], [-4]])), [[MOD - 11]])
    for x, y in [(np.uint64(2), np.ones(2, np.uint64)), (np.ones((2, 3), np.uint64),) * 2]:
        with pytest.raises(ValueError):
            ring_matmul(x, y)
        with pytest.raises(ValueError):
            ring_matmul_reference(x, y)
    with pytest.raises(TypeError):
        ring_matmul(np.ones((2, 2)), np.ones((2, 2)))


def test_ring_matmul_tall_skinny_and_blocking() -> None:
    rng = np.random.default_rng(11)
    a = rng.integers(0, MOD, (3000, 6), dtype=np.uint64, endpoint=False)
    b = rng.integers(0, MOD, (6, 3), dtype=np.uint64, endpoint=False)
    assert_u64(ring_matmul(a, b), np.matmul(a, b))
    # inner dimension >> block size: 1500 = 5 blocks of 300, and uneven 683 = 3 blocks (padding)
    for k in (1500, 683):
        a = rng.integers(0, MOD, (7, k), dtype=np.uint64, endpoint=False)
        b = rng.integers(0, MOD, (k, 5), dtype=np.uint64, endpoint=False)
        assert_u64(ring_matmul(a, b), np.matmul(a, b))
        assert_u64(matmul._ring_matmul_blocked(a, b, 100, 1), np.matmul(a, b))


def test_ring_matmul_worst_case_exactness() -> None:
    """All limbs at their maximum (every entry 2^64 - 1 = -1): each float64 partial sum reaches
    the bound; (-1)(-1) summed k times must give exactly k."""
    for k in (matmul._MAX_BLOCK, matmul._MAX_BLOCK + 1, 2 * matmul._MAX_BLOCK + 5):
        a = np.full((3, k), 2**64 - 1, dtype=np.uint64)
        b = np.full((k, 2), 2**64 - 1, dtype=np.uint64)
        assert_u64(ring_matmul(a, b), np.full((3, 2), k, dtype=np.uint64))
    k = 2**19 + 3  # beyond the naive 16-bit-limb limit
    v = np.full(k, 2**64 - 1, dtype=np.uint64)
    assert_u64(ring_matmul(v, v), k)
    rng = np.random.default_rng(3)
    a = rng.integers(0, MOD, (1, k), dtype=np.uint64, endpoint=False)
    b = rng.integers(0, MOD, (k, 1), dtype=np.uint64, endpoint=False)
    assert_u64(ring_matmul(a, b), np.matmul(a, b))


# ----------------------------------------------------------------------------------------------
# NUMBA_DISABLE_JIT: dispatchers must use the numpy twins
# ----------------------------------------------------------------------------------------------


def test_disable_jit_uses_numpy_twins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
    calls: list[str] = []

    def forbid() -> Any:
        raise AssertionError("the Numba kernel must not be used when DISABLE_JIT is set")

    def spy(module: Any, name: str) -> None:
        twin = getattr(module, name)

        def wrapped(*args: Any) -> Any:
            calls.append(name)
            return twin(*args)

        monkeypatch.setattr(module, name, wrapped)

    for module, factory in [
        (elementwise, "_rss3_mul_kernel"),
        (elementwise, "_trunc_finish_kernel"),
        (matmul, "_ring_dot_kernel"),
        (matmul, "_rss3_dot_kernel"),
    ]:
        monkeypatch.setattr(module, factory, forbid)
    spy(elementwise, "rss3_mul_local_reference")
    spy(elementwise, "trunc_finish_reference")
    spy(matmul, "ring_dot_reference")
    spy(matmul, "rss3_dot_local_reference")

    rng = np.random.default_rng(5)
    n = 200_000  # large enough that an un-jitted Python loop would be noticeably slow
    x0, x1, y0, y1 = (rng.integers(0, MOD, n, dtype=np.uint64, endpoint=False) for _ in range(4))
    assert_u64(rss3_mul_local(x0, x1, y0, y1), x0 * y0 + x0 * y1 + x1 * y0)
    msb = (x0 >> np.uint64(63)).astype(bool)
    pub = (
        ((x0 & np.uint64(2**63 - 1)) >> np.uint64(12))
        + (x0 >> np.uint64(63)) * np.uint64(2**51)
        - np.uint64(2**50)
    )
    assert_u64(trunc_finish(x0, y0, y1, 12, True), pub - np.where(msb, y1, y0))
    assert_u64(ring_dot(x0, y0), np.sum(x0 * y0, dtype=np.uint64))
    assert_u64(rss3_dot_local(x0, x1, y0, y1), np.sum(x0 * y0 + x0 * y1 + x1 * y0))
    a, b = x0[:64].reshape(8, 8), y0[:64].reshape(8, 8)
    assert_u64(ring_matmul(a, b), np.matmul(a, b))  # pure numpy + BLAS, no Numba either way
    assert calls == [
        "rss3_mul_local_reference",
        "trunc_finish_reference",
        "ring_dot_reference",
        "rss3_dot_local_reference",
    ]
