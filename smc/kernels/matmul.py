"""Matrix products and dot products over Z_2^64.

Hazmat: these are low-level kernels on raw ring elements with no notion of secrecy, parties or
communication. Users should use :mod:`smc.api`.

:func:`ring_matmul` computes exact ``uint64`` matrix products modulo 2^64 with float64 BLAS.
Each operand is split into three limbs of 22, 21 and 21 bits (at bit offsets 0, 22 and 43)::

    a = A0 + A1 * 2^22 + A2 * 2^43

so that, modulo 2^64 (every limb product with offset >= 64 vanishes)::

    a*b = A0 B0  +  (A0 B1 + A1 B0) * 2^22  +  (A0 B2 + 2 A1 B1 + A2 B0) * 2^43

Every limb product is below 2^44, so a float64 matmul of limb matrices is exact as long as each
output entry stays <= 2^53. Each of the three groups is one BLAS call on limb matrices
concatenated along the inner dimension (inner sizes k, 2k, 3k); the inner dimension is cut into
blocks of at most :data:`_MAX_BLOCK` = 341 (3 * 341 * (2^22-1) * (2^21-1) <= 2^53), the blocks
run as one batched float64 matmul, and the block results are converted to ``uint64`` and summed
with wrap-around. That is 6 limb products instead of the 10 of a 16-bit split. The numpy twin
:func:`ring_matmul_reference` is numpy's own (slow, non-BLAS) ``uint64`` matmul.

:func:`ring_dot` and :func:`rss3_dot_local` are fused Numba loops (compiled lazily on first use,
explicit signatures, ``nogil``) with numpy twins; like the elementwise kernels they fall back to
the twins when ``numba.config.DISABLE_JIT`` is true.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from numba import types

from smc.kernels.elementwise import _jit_disabled, _ro_vec, _same_shape_flat
from smc.ring import U64, as_ring

__all__ = [
    "ring_dot",
    "ring_dot_reference",
    "ring_matmul",
    "ring_matmul_reference",
    "rss3_dot_local",
    "rss3_dot_local_reference",
]

F64 = npt.NDArray[np.float64]

#: Largest inner block for which the widest limb group (3 products <= (2^22-1)(2^21-1) each)
#: sums exactly in float64: 3 * 341 * (2^22 - 1) * (2^21 - 1) <= 2^53 < 3 * 342 * ...
_MAX_BLOCK = 341
#: Soft cap on the float64 elements of one batched block product (bounds temporary memory).
_CHUNK_ELEMS = 1 << 22


def _fill_limbs(av: U64, bv: U64, la: F64, lb: F64, scratch: U64) -> None:
    """Write the float64 limbs of the blocked operands into ``la`` and ``lb``.

    ``av`` is (..., nb, m, kb) and ``bv`` (..., nb, kb, n); ``la`` (..., nb, m, 4, kb) receives
    per inner block ``[2*A1, A2, A0, A1]`` and ``lb`` (..., nb, 3, kb, n) receives
    ``[B1; B0; B2]``. With this layout every limb group is a contiguous slice:
    ``A0 B0`` = la[.., 2, :] @ lb[.., 1, :, :], ``A0 B1 + A1 B0`` = la[.., 2:4, :] @
    lb[.., 0:2, :, :] and ``2 A1 B1 + A2 B0 + A0 B2`` = la[.., 0:3, :] @ lb[.., 0:3, :, :].
    ``scratch`` holds at least ``max(av.size, bv.size)`` elements.
    """
    m21 = np.uint64((1 << 21) - 1)
    m22 = np.uint64((1 << 22) - 1)
    tmp = scratch[: av.size].reshape(av.shape)
    np.right_shift(av, np.uint64(22), out=tmp)
    np.bitwise_and(tmp, m21, out=la[..., 3, :], casting="unsafe")  # A1
    np.multiply(la[..., 3, :], 2.0, out=la[..., 0, :])  # 2 * A1
    np.right_shift(av, np.uint64(43), out=la[..., 1, :], casting="unsafe")  # A2
    np.bitwise_and(av, m22, out=la[..., 2, :], casting="unsafe")  # A0
    tmp = scratch[: bv.size].reshape(bv.shape)
    np.right_shift(bv, np.uint64(22), out=tmp)
    np.bitwise_and(tmp, m21, out=lb[..., 0, :, :], casting="unsafe")  # B1
    np.bitwise_and(bv, m22, out=lb[..., 1, :, :], casting="unsafe")  # B0
    np.right_shift(bv, np.uint64(43), out=lb[..., 2, :, :], casting="unsafe")  # B2


def _matmul_2d(a: U64, b: U64, block: int = _MAX_BLOCK, chunk_elems: int = _CHUNK_ELEMS) -> U64:
    """Exact (..., m, k) @ (..., k, n) modulo 2^64 via 22/21/21-bit limbs and float64 BLAS.

    ``block`` (<= :data:`_MAX_BLOCK`) is the inner block size; ``chunk_elems`` caps the size of
    the batched float64 products. Both only matter for speed and memory, never the result.
    """
    if not 1 <= block <= _MAX_BLOCK:
        raise ValueError(f"block must be in [1, {_MAX_BLOCK}], got {block}")
    m, k = a.shape[-2:]
    n = b.shape[-1]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    out = np.zeros((*batch, m, n), dtype=np.uint64)
    if out.size == 0 or k == 0:
        return out
    nb = -(-k // block)  # number of inner blocks
    kb = -(-k // nb)  # balanced block size <= block
    if nb * kb != k:  # zero-pad the inner dimension to nb * kb
        a_pad = np.zeros((*a.shape[:-1], nb * kb), dtype=np.uint64)
        a_pad[..., :k] = a
        b_pad = np.zeros((*b.shape[:-2], nb * kb, n), dtype=np.uint64)
        b_pad[..., :k, :] = b
        a, b = a_pad, b_pad
    av = np.swapaxes(a.reshape(*a.shape[:-1], nb, kb), -3, -2)  # (..., nb, m, kb)
    bv = b.reshape(*b.shape[:-2], nb, kb, n)  # (..., nb, kb, n)
    step = max(1, min(nb, chunk_elems // out.size))  # inner blocks per batched BLAS call

    # One workspace for all temporaries: limb matrices, scratch, block products (float64 and
    # uint64) and their sum over blocks. Few large allocations matter: page faults on many
    # fresh temporaries otherwise cost as much as the BLAS calls for mid-sized matrices.
    shapes = [
        (*av.shape[:-1], 4, kb),  # la (float64)
        (*bv.shape[:-2], 3, kb, n),  # lb (float64)
        (max(av.size, bv.size),),  # scratch
        (*batch, step, m, n),  # fbuf (float64)
        (*batch, step, m, n),  # ubuf
        (*batch, m, n) if step > 1 else (0,),  # acc
    ]
    sizes = [int(np.prod(shape, dtype=np.int64)) for shape in shapes]
    work = np.empty(sum(sizes), dtype=np.uint64)
    parts = [
        p.reshape(shape)
        for p, shape in zip(np.split(work, np.cumsum(sizes)[:-1]), shapes, strict=True)
    ]
    la, lb, fbuf = (parts[i].view(np.float64) for i in (0, 1, 3))
    scratch, ubuf, acc = parts[2], parts[4], parts[5]
    _fill_limbs(av, bv, la, lb, scratch)

    for start in range(0, nb, step):
        xa = la[..., start : start + step, :, :, :]
        yb = lb[..., start : start + step, :, :, :]
        c = xa.shape[-4]
        lead_a, lead_b = xa.shape[:-3], yb.shape[:-3]
        groups = [
            (xa[..., 2, :], yb[..., 1, :, :], 0),  # A0 B0
            (  # A0 B1 + A1 B0
                xa[..., 2:4, :].reshape(*lead_a, m, 2 * kb),
                yb[..., 0:2, :, :].reshape(*lead_b, 2 * kb, n),
                22,
            ),
            (  # 2 A1 B1 + A2 B0 + A0 B2
                xa[..., 0:3, :].reshape(*lead_a, m, 3 * kb),
                yb[..., 0:3, :, :].reshape(*lead_b, 3 * kb, n),
                43,
            ),
        ]
        for x, y, shift in groups:
            fb = fbuf[..., :c, :, :]
            ub = ubuf[..., :c, :, :]
            np.matmul(x, y, out=fb)
            np.copyto(ub, fb, casting="unsafe")  # exact: integers in [0, 2^53]
            if c == 1:
                total = ub[..., 0, :, :]
            else:
                total = np.add.reduce(ub, axis=-3, dtype=np.uint64, out=acc)
            if shift:
                np.left_shift(total, np.uint64(shift), out=total)
            np.add(out, total, out=out)
    return out


def _promote(a: Any, b: Any) -> tuple[U64, U64, bool, bool]:
    """Ring-convert matmul operands and lift 1-D ones to 2-D as numpy's matmul does."""
    x = as_ring(a)
    y = as_ring(b)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("ring_matmul: operands must have at least one dimension (not 0-d)")
    vec_a = x.ndim == 1
    vec_b = y.ndim == 1
    x2 = x[np.newaxis, :] if vec_a else x
    y2 = y[:, np.newaxis] if vec_b else y
    if x2.shape[-1] != y2.shape[-2]:
        raise ValueError(
            f"ring_matmul: inner dimensions differ: {x.shape} @ {y.shape} "
            f"({x2.shape[-1]} != {y2.shape[-2]})"
        )
    return x2, y2, vec_a, vec_b


def _ring_matmul_blocked(
    a: U64, b: U64, block: int = _MAX_BLOCK, chunk_elems: int = _CHUNK_ELEMS
) -> U64:
    """:func:`ring_matmul` with explicit block/chunk sizes (for tests of the block splitting)."""
    x2, y2, vec_a, vec_b = _promote(a, b)
    out = _matmul_2d(x2, y2, block, chunk_elems)
    if vec_a:
        out = out[..., 0, :]
    if vec_b:
        out = out[..., 0]
    # np.ascontiguousarray would turn the 0-d result of vector @ vector into shape (1,).
    return out if out.flags.c_contiguous else out.copy()


def ring_matmul(a: U64, b: U64) -> U64:
    """Exact matrix product ``a @ b`` modulo 2^64 of ``uint64`` arrays.

    Follows ``numpy.matmul`` shape rules: 2-D @ 2-D, 1-D @ 2-D, 2-D @ 1-D, 1-D @ 1-D (returns a
    0-d array) and stacks of matrices (> 2-D) with broadcasting of the leading dimensions.
    Raises ``ValueError`` on 0-d operands or mismatched inner dimensions. Uses float64 BLAS on
    22/21/21-bit limbs, exact for every inner dimension (see the module docstring).
    """
    return _ring_matmul_blocked(a, b)


def ring_matmul_reference(a: U64, b: U64) -> U64:
    """Numpy twin of :func:`ring_matmul`: ``np.matmul`` on ``uint64`` (wraps modulo 2^64)."""
    x, y = as_ring(a), as_ring(b)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("ring_matmul: operands must have at least one dimension (not 0-d)")
    return np.asarray(np.matmul(x, y), dtype=np.uint64)


# --------------------------------------------------------------------------------------------
# Dot products (Numba loops)
# --------------------------------------------------------------------------------------------


def _ring_dot_py(a: U64, b: U64) -> np.uint64:
    """Kernel body: sum_i a[i]*b[i] mod 2^64 over two 1-D arrays of equal length."""
    n = a.shape[0]
    if b.shape[0] != n:
        raise ValueError("ring_dot: operands must have the same length")
    acc = np.uint64(0)
    for i in range(n):
        acc += a[i] * b[i]
    return acc


@functools.cache
def _ring_dot_kernel() -> Any:
    """The Numba-compiled :func:`_ring_dot_py`, compiled on first use."""
    vec = _ro_vec()
    return numba.njit(types.uint64(vec, vec), nogil=True, cache=False)(_ring_dot_py)


def ring_dot_reference(a: U64, b: U64) -> U64:
    """Numpy twin of :func:`ring_dot`: ``np.dot`` of the flattened ``uint64`` arrays."""
    x, y = _same_shape_flat(a, b)
    return np.asarray(np.dot(x, y), dtype=np.uint64)


def ring_dot(a: U64, b: U64) -> U64:
    """Dot product ``sum_i a[i] * b[i]`` modulo 2^64, returned as a 0-d ``uint64`` array.

    Meant for 1-D vectors; arrays of any other shape are accepted if both have the same shape,
    and then the sum runs over all elements (Frobenius inner product). Empty inputs give 0.
    """
    if _jit_disabled():
        return ring_dot_reference(a, b)
    x, y = _same_shape_flat(a, b)
    return np.asarray(_ring_dot_kernel()(x, y), dtype=np.uint64)


def _rss3_dot_py(x0: U64, x1: U64, y0: U64, y1: U64) -> np.uint64:
    """Kernel body: sum_i x0[i]*y0[i] + x0[i]*y1[i] + x1[i]*y0[i] mod 2^64 (1-D, same size)."""
    n = x0.shape[0]
    if x1.shape[0] != n or y0.shape[0] != n or y1.shape[0] != n:
        raise ValueError("rss3_dot_local: operands must have the same length")
    acc = np.uint64(0)
    for i in range(n):
        a = x0[i]
        b = y0[i]
        acc += a * (b + y1[i]) + x1[i] * b
    return acc


@functools.cache
def _rss3_dot_kernel() -> Any:
    """The Numba-compiled :func:`_rss3_dot_py`, compiled on first use."""
    vec = _ro_vec()
    return numba.njit(types.uint64(vec, vec, vec, vec), nogil=True, cache=False)(_rss3_dot_py)


def rss3_dot_local_reference(x0: U64, x1: U64, y0: U64, y1: U64) -> U64:
    """Numpy twin of :func:`rss3_dot_local`: sum of ``x0*y0 + x0*y1 + x1*y0`` modulo 2^64."""
    a0, a1, b0, b1 = _same_shape_flat(x0, x1, y0, y1)
    return np.asarray(np.sum(a0 * b0 + a0 * b1 + a1 * b0, dtype=np.uint64), dtype=np.uint64)


def rss3_dot_local(x0: U64, x1: U64, y0: U64, y1: U64) -> U64:
    """Local step of a replicated-secret-sharing inner product, as a 0-d ``uint64`` array.

    ``sum_k x0[k]*y0[k] + x0[k]*y1[k] + x1[k]*y0[k]`` modulo 2^64, where a party holds the
    components ``(x_i, x_{i+1})`` and ``(y_i, y_{i+1})`` of the two shared vectors. One fused
    pass, no temporaries. All four operands must have the same shape (summed over all elements).
    """
    if _jit_disabled():
        return rss3_dot_local_reference(x0, x1, y0, y1)
    a0, a1, b0, b1 = _same_shape_flat(x0, x1, y0, y1)
    return np.asarray(_rss3_dot_kernel()(a0, a1, b0, b1), dtype=np.uint64)
