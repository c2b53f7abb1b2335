"""Building blocks shared by the circuits: division, gating, conjunction, client-shared inputs.

Fixed-point rules these blocks respect (docs/numerics.md): f fractional bits (16 by default),
|x| < 2^46 for every value, |x * y| < 2^30 for every fixed-point product.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

import smc
from smc.errors import ProgramError

MAX_STEP = 2**14  # 1/d keeps about 2^-17 relative precision while d <= 2^14 (extra-bits cap)
SHARE_BITS = 32  # client shares travel as two 32-bit halves (inputs must stay below 2^62)


def divide_public(x: smc.SecureArray, d: float) -> smc.SecureArray:
    """x / d for a public d > 0, in as many steps as keep each constant's relative error near
    2^-17 (one truncation each: ``mean`` of 10^6 values is 4e-6 relative instead of 2.4e-4)."""
    if d <= 0:
        raise ProgramError(f"divide_public: divisor {d} must be positive")
    steps = max(1, math.ceil(math.log(d) / math.log(MAX_STEP))) if d > 1 else 1
    factor = d ** (1.0 / steps)
    for _ in range(steps):
        x = x / factor
    return x


def divide_by_count(
    num: smc.SecureArray, count: smc.SecureArray, max_count: int, bound: float
) -> smc.SecureArray:
    """num / count for a secret integer ``count`` in [1, max_count] and |num / count| <= bound.

    Method: R = reciprocal(count * 2^-s) = 2^s / count with s = min(f, bitlen(max_count)), so
    R >= 1 and keeps the reciprocal's relative error (about 4e-5) whenever count <= 2^s; then
    (num * 2^-a) * R * 2^-(s-a), with a chosen so the product stays below 2^30. count = 0 gives
    0 (the reciprocal of 0 is 0): gate the result on a validity flag."""
    b = num.builder
    f = b.fixed.frac_bits
    s = min(f, max(1, int(max_count).bit_length()))
    scaled = count * (2.0**-s) if count.dtype == "int" else count / 2.0**s
    recip = settle(scaled.reciprocal())  # its sign product is 0-d: see settle()
    a = max(0, math.ceil(math.log2(max(bound, 1.0))) + s - 29)
    pre = num.to_fixed() / 2.0**a if a else num.to_fixed()
    prod = settle(pre * recip)
    return prod / 2.0 ** (s - a) if s > a else prod


def settle(x: smc.SecureArray) -> smc.SecureArray:
    """``x`` re-shaped to its own shape: a local no-op that works around an engine bug. In the
    additive suite a secret product, matmul or ``where`` with a 0-d result (no truncation)
    returns shares of shape (1,) (``np.ascontiguousarray`` of a 0-d array), which a later
    ``where`` or comparison then fails to broadcast; the reshape restores shape ()."""
    return x.reshape(()) if x.ndim == 0 and x.secret else x


def all_of(conditions: Sequence[smc.SecureArray]) -> smc.SecureArray:
    """Conjunction of 0/1 integer arrays (a product tree: ceil(log2 k) rounds)."""
    if not conditions:
        raise ProgramError("all_of needs at least one condition")
    level = list(conditions)
    while len(level) > 1:
        nxt = [settle(level[i] * level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def gate(valid: smc.SecureArray, value: smc.SecureArray) -> smc.SecureArray:
    """``value`` where ``valid`` is 1, zeros where it is 0 (nothing else is revealed)."""
    zero = np.zeros((), dtype=np.int64 if value.dtype == "int" else np.float64)
    return settle(smc.where(valid, value, zero))


def secret_const(anchor: smc.SecureArray, value: Any) -> smc.SecureArray:
    """A public ``value`` as a (trivially) secret array, for concatenating with secret arrays.

    Works around the engine: ``smc.concatenate``/``smc.stack`` of secret and public arrays
    traces but fails in the executor (its local concatenation indexes a public value as if it
    were a share tuple). ``anchor`` is any secret array; the result is ``value`` plus a secret
    zero, computed locally."""
    zero = (anchor.reshape(-1)[:1] * 0).reshape(())
    return zero + np.asarray(value)


def positions(builder: smc.ProgramBuilder, n: int, scale: int = 1) -> smc.SecureArray:
    """The public integers 0, scale, 2*scale, ... (n of them)."""
    return builder.const(np.arange(n, dtype=np.int64) * scale, "int")


# ------------------------------------------------------------------------ client inputs


def client_input(
    builder: smc.ProgramBuilder,
    name: str,
    shape: tuple[int, ...],
    dtype: str = "int",
    parties: Sequence[str] | None = None,
) -> smc.SecureArray:
    """Values submitted by clients (bidders, voters) as additive shares, one per party.

    Each party binds ``{name}_hi`` and ``{name}_lo`` (int arrays in [0, 2^32)): the two halves
    of its share, a uniformly random element of Z_2^64, so no party (nor the operator who
    forwards the shares) learns anything about any value. The shares add up, mod 2^64, to the
    value (an integer, or the raw fixed-point encoding for ``dtype="fixed"``). Make the shares
    with :func:`client_shares`."""
    owners = list(parties or builder.parties)
    total: smc.SecureArray | None = None
    for party in owners:
        hi = builder.input(party, f"{name}_hi", shape, "int")
        lo = builder.input(party, f"{name}_lo", shape, "int")
        share = hi * (1 << SHARE_BITS) + lo
        total = share if total is None else total + share
    assert total is not None
    if dtype == "fixed":
        return total * 2.0**-builder.fixed.frac_bits  # reinterpret: local, exact
    return total


def client_shares(
    values: Any,
    name: str,
    parties: Sequence[str],
    dtype: str = "int",
    frac_bits: int = 16,
) -> dict[str, dict[str, np.ndarray]]:
    """Split client values into the per-party inputs :func:`client_input` reads.

    Runs on the client: shares come from the operating system's CSPRNG (``os.urandom``); all but
    one are uniform in Z_2^64 and the last makes the sum right, so any set of all but one party
    sees independent uniform values."""
    arr = np.asarray(values)
    if dtype == "fixed":
        raw = np.rint(arr.astype(np.float64) * 2.0**frac_bits)
        if arr.size and np.max(np.abs(raw)) >= 2.0**62:
            raise ValueError("client value outside the fixed-point range")
        ring = raw.astype(np.int64).view(np.uint64)
    else:
        if arr.dtype.kind not in "iub":
            raise ValueError(f"client values for dtype 'int' must be integers, got {arr.dtype}")
        ring = arr.astype(np.int64).view(np.uint64)
    out: dict[str, dict[str, np.ndarray]] = {}
    rest = ring.copy()
    mask = np.uint64((1 << SHARE_BITS) - 1)
    for k, party in enumerate(parties):
        if k < len(parties) - 1:
            share = np.frombuffer(os.urandom(8 * ring.size), dtype=np.uint64).reshape(ring.shape)
            rest = rest - share
        else:
            share = rest
        out[party] = {
            f"{name}_hi": (share >> np.uint64(SHARE_BITS)).astype(np.int64),
            f"{name}_lo": (share & mask).astype(np.int64),
        }
    return out
