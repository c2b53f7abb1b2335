"""The ring Z_2^64 on numpy ``uint64``: wrap-around is the arithmetic.

Hazmat: these are raw ring helpers with no notion of secrecy. Use :mod:`smc.api` for secure
computation.

numpy's ``uint64`` array arithmetic already reduces modulo 2^64 (``+``, ``-``, ``*`` wrap
without warnings on arrays), so ring elements are plain ``uint64`` arrays and this module only
adds what numpy lacks: signed views, a signed arithmetic shift, and conversions that refuse
anything that is not already an integer array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

RING_BITS = 64
DTYPE = np.uint64
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Public = U64 | np.uint64  # a public ring operand: an array or one ring element


def as_ring(values: Any) -> U64:
    """Embed signed or unsigned integers into Z_2^64 (two's complement); refuses floats."""
    arr = np.asarray(values)
    if arr.dtype == np.uint64:
        return arr
    if arr.dtype.kind not in "iub":
        raise TypeError(f"ring elements must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64).view(np.uint64) if arr.dtype.kind == "i" else arr.astype(np.uint64)


def to_signed(values: U64) -> I64:
    """Interpret ring elements as two's-complement signed integers in [-2^63, 2^63)."""
    return np.asarray(values, dtype=np.uint64).view(np.int64)


def from_signed(values: I64) -> U64:
    """Inverse of :func:`to_signed`."""
    return np.asarray(values, dtype=np.int64).view(np.uint64)


def arshift(values: U64, bits: int) -> U64:
    """Arithmetic (sign-preserving) right shift of ring elements read as signed integers."""
    return (to_signed(values) >> np.int64(bits)).view(np.uint64)


def neg(values: U64) -> U64:
    """Additive inverse modulo 2^64."""
    return np.zeros_like(values) - values
