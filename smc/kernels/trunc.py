"""Fused kernels for the dealer-assisted exact truncation protocols (hazmat).

Each kernel fuses one role's elementwise arithmetic of :mod:`smc.protocols.rss3` /
:mod:`smc.protocols.additive` truncation into one pass over memory, with a numpy twin that
defines its semantics. Dispatchers use the twin when Numba's JIT is disabled.

Notation (ring l = 64, truncation by m bits): r is the dealer's mask, msb(r) its top bit,
r' = (r mod 2^63) >> m, K = 2^(63 - m); u0 = r' - K*msb(r) and u1 = r' + K*msb(r).
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np
from numba import types

from smc.ring import U64

MASK63 = np.uint64((1 << 63) - 1)


def _jit_disabled() -> bool:
    return bool(numba.config.DISABLE_JIT)  # type: ignore[attr-defined]


def _flat(a: U64) -> U64:
    return np.ascontiguousarray(a, dtype=np.uint64).reshape(-1)


# ------------------------------------------------------------------------- dealer: u0, u1 shares


def _dealer_py(r_a: U64, r_b: U64, r_c: U64, s0: U64, s1: U64, m: np.uint64) -> tuple[U64, U64]:
    n = r_a.shape[0]
    u0 = np.empty(n, dtype=np.uint64)
    u1 = np.empty(n, dtype=np.uint64)
    top = np.uint64(63)
    mask = (np.uint64(1) << top) - np.uint64(1)
    for i in range(n):
        r = r_a[i] + r_b[i] + r_c[i]
        k = (r >> top) << (top - m)
        low = (r & mask) >> m
        u0[i] = low - k - s0[i]
        u1[i] = low + k - s1[i]
    return u0, u1


@functools.cache
def _dealer_kernel() -> Any:
    vec = types.Array(types.uint64, 1, "C", readonly=True)
    out = types.Array(types.uint64, 1, "C")
    sig = types.Tuple((out, out))(vec, vec, vec, vec, vec, types.uint64)  # type: ignore[no-untyped-call]
    return numba.njit(sig, nogil=True, cache=True)(_dealer_py)


def dealer_corrections_reference(
    r_a: U64, r_b: U64, r_c: U64, s0: U64, s1: U64, bits: int
) -> tuple[U64, U64]:
    r = r_a + r_b + r_c
    k = (r >> np.uint64(63)) << np.uint64(63 - bits)
    low = (r & MASK63) >> np.uint64(bits)
    return low - k - s0, low + k - s1


def dealer_corrections(
    r_a: U64, r_b: U64, r_c: U64, s0: U64, s1: U64, bits: int
) -> tuple[U64, U64]:
    """With r = r_a + r_b + r_c: the explicit shares (u0 - s0, u1 - s1) the dealer sends."""
    a, b, c, t0, t1 = (_flat(x) for x in (r_a, r_b, r_c, s0, s1))
    if _jit_disabled():
        return dealer_corrections_reference(a, b, c, t0, t1, bits)
    args = [a, b, c, t0, t1]
    u0, u1 = _dealer_kernel()(*args, np.uint64(bits))
    return u0, u1


# ------------------------------------------------------------------------- opener: finish + mask


def _open_finish_py(
    a: U64, b: U64, c: U64, u0: U64, u1: U64, t: U64, m: np.uint64, public: bool
) -> U64:
    n = a.shape[0]
    out = np.empty(n, dtype=np.uint64)
    top = np.uint64(63)
    one = np.uint64(1)
    mask = (one << top) - one
    hi = one << (top - m)
    off = one << (np.uint64(62) - m)
    half = one << np.uint64(62)
    zero = np.uint64(0)
    for i in range(n):
        cc = a[i] + b[i] + c[i] + half
        msb = cc >> top
        sel = u1[i] if msb else u0[i]
        if public:
            out[i] = ((cc & mask) >> m) + msb * hi - off - sel - t[i]
        else:
            out[i] = zero - sel - t[i]
    return out


@functools.cache
def _open_finish_kernel() -> Any:
    vec = types.Array(types.uint64, 1, "C", readonly=True)
    out = types.Array(types.uint64, 1, "C")
    sig = out(vec, vec, vec, vec, vec, vec, types.uint64, types.boolean)
    return numba.njit(sig, nogil=True, cache=True)(_open_finish_py)


def open_finish_reference(
    a: U64, b: U64, c: U64, u0: U64, u1: U64, t: U64, bits: int, public: bool
) -> U64:
    cc = a + b + c + np.uint64(1 << 62)
    msb = cc >> np.uint64(63)
    sel = np.where(msb.astype(bool), u1, u0)
    if public:
        pub = ((cc & MASK63) >> np.uint64(bits)) + msb * np.uint64(1 << (63 - bits))
        return pub - np.uint64(1 << (62 - bits)) - sel - t
    return np.zeros_like(sel) - sel - t


def open_finish(a: U64, b: U64, c: U64, u0: U64, u1: U64, t: U64, bits: int, public: bool) -> U64:
    """c = a + b + c + 2^62 opened from three masked parts; returns this party's truncated share
    (with the public part when ``public``) minus the re-sharing mask ``t``."""
    fa, fb, fc, f0, f1, ft = (_flat(x) for x in (a, b, c, u0, u1, t))
    if _jit_disabled():
        return open_finish_reference(fa, fb, fc, f0, f1, ft, bits, public)
    args = [fa, fb, fc, f0, f1, ft]
    out: U64 = _open_finish_kernel()(*args, np.uint64(bits), public)
    return out
