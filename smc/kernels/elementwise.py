"""Elementwise share kernels over Z_2^64: replicated-sharing local products and truncation.

Hazmat: these are low-level kernels on raw ring elements with no notion of secrecy, parties or
communication. Users should use :mod:`smc.api`; protocol code calls the public dispatchers
below, never the compiled kernels directly.

Every kernel exists twice:

* a Numba kernel (``_<name>_kernel()``), compiled lazily on first use with an explicit signature
  (1-D C-contiguous ``uint64`` arrays, read-only accepted), ``nogil`` so callers may run it from
  several threads;
* a pure-numpy twin (``<name>_reference``) that defines the semantics and is used for testing.

The public dispatcher (``<name>``) accepts arrays of any shape, broadcasts them, runs the Numba
kernel on the flattened data and restores the shape. When ``numba.config.DISABLE_JIT`` is true
(``NUMBA_DISABLE_JIT=1``) it calls the numpy twin instead, since an un-jitted kernel is a plain
Python loop. Results are always fresh ``uint64`` arrays (0-d for 0-d inputs), never scalars.
All arithmetic is modulo 2^64: ``uint64`` wrap-around is the ring arithmetic.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import types

from smc.ring import RING_BITS, U64, as_ring

__all__ = [
    "rss3_mul_local",
    "rss3_mul_local_reference",
    "trunc_finish",
    "trunc_finish_reference",
]

_Shape = tuple[int, ...]


def _broadcast_flat(*values: Any) -> tuple[_Shape, list[U64]]:
    """Broadcast ring operands together; return the common shape and aligned 1-D C-arrays."""
    arrays = np.broadcast_arrays(*(as_ring(v) for v in values))
    shape: _Shape = arrays[0].shape if arrays else ()
    flat = [np.require(arr.reshape(-1), dtype=np.uint64, requirements=["C", "A"]) for arr in arrays]
    return shape, flat


def _same_shape_flat(*values: Any) -> list[U64]:
    """Flatten ring operands that must all have one shape (no broadcasting) to 1-D C-arrays."""
    arrays = [as_ring(v) for v in values]
    shapes = {arr.shape for arr in arrays}
    if len(shapes) > 1:
        raise ValueError(f"operands must have the same shape, got {sorted(shapes)}")
    return [np.require(arr.reshape(-1), dtype=np.uint64, requirements=["C", "A"]) for arr in arrays]


def _jit_disabled() -> bool:
    """Whether Numba's JIT is off (``NUMBA_DISABLE_JIT=1``); read at call time, so patchable."""
    return bool(numba.config.DISABLE_JIT)  # type: ignore[attr-defined]


def _ro_vec() -> Any:
    """Numba type of a kernel input: 1-D C-contiguous uint64 array (writable ones convert)."""
    return types.Array(types.uint64, 1, "C", readonly=True)


def _out_vec() -> Any:
    """Numba type of a kernel output: a fresh 1-D C-contiguous uint64 array."""
    return types.Array(types.uint64, 1, "C")


# --------------------------------------------------------------------------------------------
# rss3_mul_local: x0*y0 + x0*y1 + x1*y0
# --------------------------------------------------------------------------------------------


def _rss3_mul_py(x0: U64, x1: U64, y0: U64, y1: U64) -> U64:
    """Kernel body: out[i] = x0[i]*y0[i] + x0[i]*y1[i] + x1[i]*y0[i] mod 2^64 (1-D, same size)."""
    n = x0.shape[0]
    if x1.shape[0] != n or y0.shape[0] != n or y1.shape[0] != n:
        raise ValueError("rss3_mul_local: operands must have the same length")
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        a = x0[i]
        b = y0[i]
        out[i] = a * (b + y1[i]) + x1[i] * b
    return out


@functools.cache
def _rss3_mul_kernel() -> Any:
    """The Numba-compiled :func:`_rss3_mul_py`, compiled on first use."""
    vec = _ro_vec()
    sig = _out_vec()(vec, vec, vec, vec)
    return numba.njit(sig, nogil=True, cache=False)(_rss3_mul_py)


def rss3_mul_local_reference(x0: U64, x1: U64, y0: U64, y1: U64) -> U64:
    """Numpy twin of :func:`rss3_mul_local`: ``x0*y0 + x0*y1 + x1*y0`` mod 2^64, broadcast."""
    shape, (a0, a1, b0, b1) = _broadcast_flat(x0, x1, y0, y1)
    res: U64 = a0 * b0 + a0 * b1 + a1 * b0
    return res.reshape(shape)


def rss3_mul_local(x0: U64, x1: U64, y0: U64, y1: U64) -> U64:
    """Local step of 3-party replicated-secret-sharing multiplication.

    A party holding the components ``(x_i, x_{i+1})`` of ``x`` and ``(y_i, y_{i+1})`` of ``y``
    computes its additive share of ``x * y``, elementwise and modulo 2^64::

        z_i = x_i*y_i + x_i*y_{i+1} + x_{i+1}*y_i

    (``x0, x1, y0, y1`` here are ``x_i, x_{i+1}, y_i, y_{i+1}``). Inputs are broadcast together;
    the result has the broadcast shape. Re-randomising ``z_i`` (zero sharing) is the caller's job.
    """
    if _jit_disabled():
        return rss3_mul_local_reference(x0, x1, y0, y1)
    shape, (a0, a1, b0, b1) = _broadcast_flat(x0, x1, y0, y1)
    out: U64 = _rss3_mul_kernel()(a0, a1, b0, b1)
    return out.reshape(shape)


# --------------------------------------------------------------------------------------------
# trunc_finish: local finish of the probabilistic truncation of Escudero et al. (CRYPTO 2020)
# --------------------------------------------------------------------------------------------


def _check_frac_bits(frac_bits: int) -> np.uint64:
    """Validate the truncation amount m (0 <= m <= 62 so that 2^(62-m) is an integer)."""
    m = int(frac_bits)
    if m != frac_bits or not 0 <= m <= RING_BITS - 2:
        raise ValueError(f"frac_bits must be an integer in [0, {RING_BITS - 2}], got {frac_bits}")
    return np.uint64(m)


def _trunc_finish_py(c: U64, u0: U64, u1: U64, m: np.uint64, public_part: bool) -> U64:
    """Kernel body of :func:`trunc_finish` on 1-D same-size arrays; ``m`` is a uint64 shift."""
    n = c.shape[0]
    if u0.shape[0] != n or u1.shape[0] != n:
        raise ValueError("trunc_finish: operands must have the same length")
    out = np.empty(n, dtype=np.uint64)
    one = np.uint64(1)
    top = np.uint64(63)
    low_mask = (one << top) - one  # 2^63 - 1
    hi = one << (top - m)  # 2^(63 - m)
    off = one << (np.uint64(62) - m)  # 2^(62 - m)
    if public_part:
        for i in range(n):
            ci = c[i]
            msb = ci >> top
            a = u0[i]
            b = u1[i]
            sel = b if msb else a
            out[i] = ((ci & low_mask) >> m) + msb * hi - off - sel
    else:
        zero = np.uint64(0)
        for i in range(n):
            msb = c[i] >> top
            a = u0[i]
            b = u1[i]
            sel = b if msb else a
            out[i] = zero - sel
    return out


@functools.cache
def _trunc_finish_kernel() -> Any:
    """The Numba-compiled :func:`_trunc_finish_py`, compiled on first use."""
    vec = _ro_vec()
    sig = _out_vec()(vec, vec, vec, types.uint64, types.boolean)
    return numba.njit(sig, nogil=True, cache=False)(_trunc_finish_py)


def trunc_finish_reference(c: U64, u0: U64, u1: U64, frac_bits: int, public_part: bool) -> U64:
    """Numpy twin of :func:`trunc_finish` (same formula, vectorised with ``np.where``)."""
    m = _check_frac_bits(frac_bits)
    shape, (cc, a, b) = _broadcast_flat(c, u0, u1)
    one = np.uint64(1)
    msb = cc >> np.uint64(63)
    sel = np.where(msb.astype(bool), b, a)
    if public_part:
        low = (cc & np.uint64(2**63 - 1)) >> m
        pub = low + msb * (one << (np.uint64(63) - m)) - (one << (np.uint64(62) - m))
        res = pub - sel
    else:
        res = np.zeros_like(sel) - sel
    return res.reshape(shape)


def trunc_finish(c: U64, u0: U64, u1: U64, frac_bits: int, public_part: bool) -> U64:
    """Local finishing step of the exact probabilistic truncation by ``m = frac_bits`` bits.

    Escudero, Ghosh, Keller, Rachuri, Scholl: "Improved primitives for MPC over mixed
    arithmetic-binary circuits", CRYPTO 2020, Sec. 5.1, with ring size l = 64. Given the opened
    public value ``c`` and this party's shares ``u0``, ``u1`` (of the truncated mask for the two
    cases of the top bit of ``c``), returns elementwise, modulo 2^64::

        msb = c >> 63
        pub = ((c & (2^63 - 1)) >> m) + msb * 2^(63 - m) - 2^(62 - m)
        result = (pub if public_part else 0) - (u1 if msb else u0)

    Exactly one party should pass ``public_part=True``. ``frac_bits`` must be in ``[0, 62]``.
    Inputs are broadcast together; the result has the broadcast shape.
    """
    if _jit_disabled():
        return trunc_finish_reference(c, u0, u1, frac_bits, public_part)
    m = _check_frac_bits(frac_bits)
    shape, (cc, a, b) = _broadcast_flat(c, u0, u1)
    out: U64 = _trunc_finish_kernel()(cc, a, b, m, bool(public_part))
    return out.reshape(shape)
