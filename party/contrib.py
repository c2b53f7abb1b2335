"""Input-only parties: owners who contribute data to a computation they do not run (hazmat).

A contributor encodes its values in the ring (fixed point or integer, exactly as the engine
would), splits each into additive shares over Z_2^64 — all but one uniform from the engine's
CSPRNG, the last making the sum right — and sends computing party ``P`` its share as two int
arrays ``<name>_hi`` and ``<name>_lo`` (the two 32-bit halves, so they stay inside the engine's
integer input range). The program rebuilds ``sum_P (hi_P * 2^32 + lo_P) = value (mod 2^64)``;
``smc.circuits.blocks.client_input`` builds exactly that.

Who learns what: any set of computing parties short of all of them sees independent uniform
shares, so nothing about the values; the shares travel over the task's mutually authenticated
links (TLS, or the end-to-end encrypted relay), so the hub learns nothing either.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smc.config import FixedPointConfig
from smc.encoding import encode_fixed, encode_int
from smc.prg import LocalRandom

SHARE_BITS = 32
LOW = np.uint64((1 << SHARE_BITS) - 1)


class ContributionError(ValueError):
    """Shares that do not match what the program expects."""


def split(
    values: np.ndarray,
    dtype: str,
    frac_bits: int,
    parties: Sequence[str],
    rng: LocalRandom | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per computing party: (hi, lo) int64 arrays of its share of ``values``.

    Refuses values the engine cannot encode (:class:`~smc.errors.EncodingError`)."""
    ring = (
        encode_fixed(values, FixedPointConfig(frac_bits))
        if dtype == "fixed"
        else encode_int(values)
    )
    ring = np.asarray(ring, dtype=np.uint64)
    rng = rng or LocalRandom()
    rest = ring.copy()
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for k, party in enumerate(parties):
        if k < len(parties) - 1:
            share = rng.draw(f"contribution/{k}", ring.size).reshape(ring.shape)
            rest = rest - share
        else:
            share = rest
        hi = (share >> np.uint64(SHARE_BITS)).astype(np.int64)
        lo = (share & LOW).astype(np.int64)
        out[party] = (hi, lo)
    return out


def join(shares: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The ring values back from every party's (hi, lo) (for tests)."""
    total = np.zeros(np.shape(shares[0][0]), dtype=np.uint64)
    for hi, lo in shares:
        total = total + (hi.astype(np.uint64) << np.uint64(SHARE_BITS)) + lo.astype(np.uint64)
    return total


def check_share(name: str, hi: np.ndarray, lo: np.ndarray, shape: tuple[int, ...]) -> None:
    """A received share must have the program's shape and 32-bit halves."""
    for part, arr in ((f"{name}_hi", hi), (f"{name}_lo", lo)):
        if arr.shape != shape:
            raise ContributionError(
                f"contributed input {part!r} has shape {arr.shape}, the program declares {shape}"
            )
        if arr.dtype.kind != "i" or (arr.size and (arr.min() < 0 or arr.max() > int(LOW))):
            raise ContributionError(f"contributed input {part!r} is not a 32-bit share half")
