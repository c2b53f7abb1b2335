"""Fixed-point and integer encodings between plaintext numpy arrays and Z_2^64.

A real x encodes as round(x * 2^f) in two's complement. Encoding refuses, with a clear
:class:`~smc.errors.EncodingError`, anything it cannot represent: NaN, infinities, and values with
|x| >= :attr:`FixedPointConfig.max_value`. It never wraps silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from smc.config import FixedPointConfig
from smc.errors import EncodingError
from smc.ring import U64, to_signed

F64 = npt.NDArray[np.float64]
INT_LIMIT = 2**62  # secret integers: same headroom rule as fixed point with frac_bits = 0


def encode_fixed(values: Any, fp: FixedPointConfig) -> U64:
    """Encode reals as fixed point; raises EncodingError if any value is not representable."""
    raw = np.asarray(values)
    if raw.dtype.kind not in "iubf":
        raise EncodingError(f"cannot encode dtype {raw.dtype} as fixed point: give real numbers")
    arr = raw.astype(np.float64)
    if arr.size and not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].ravel()[0]
        raise EncodingError(f"cannot encode non-finite value {bad} as fixed point")
    if arr.size:
        worst = float(np.max(np.abs(arr)))
        if worst >= fp.max_value:
            raise EncodingError(
                f"value {worst:.6g} is outside the fixed-point range |x| < {fp.max_value:.6g} "
                f"(frac_bits={fp.frac_bits}); lower frac_bits or rescale the data"
            )
    scaled = np.rint(arr * fp.scale).astype(np.int64)
    return scaled.view(np.uint64)


def decode_fixed(values: U64, fp: FixedPointConfig) -> F64:
    """Decode fixed-point ring elements to float64 (exact for |x| < 2^(53 - f) ulps). Always an
    array, 0-d for a scalar, like :func:`decode_int`."""
    return np.asarray(to_signed(values).astype(np.float64) / fp.scale)


def encode_int(values: Any) -> U64:
    """Encode signed integers; refuses floats with a fractional part and |x| >= 2^62."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        if arr.size and not np.all(np.isfinite(arr)):
            raise EncodingError("cannot encode non-finite values as integers")
        if arr.size and np.any(arr != np.rint(arr)):
            raise EncodingError("integer input has a fractional part; declare it dtype='fixed'")
        if arr.size and float(np.max(np.abs(arr))) >= INT_LIMIT:
            raise EncodingError("integer input is outside the range |x| < 2^62")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind == "O":
        try:
            arr = np.array([int(v) for v in arr.ravel()], dtype=object).reshape(arr.shape)
            if arr.size and max(abs(int(v)) for v in arr.ravel()) >= INT_LIMIT:
                raise EncodingError("integer input is outside the range |x| < 2^62")
            arr = arr.astype(np.int64)
        except (OverflowError, TypeError, ValueError) as exc:
            raise EncodingError(f"cannot encode {values!r} as 64-bit integers: {exc}") from None
    elif arr.dtype.kind not in "iub":
        raise EncodingError(f"cannot encode dtype {arr.dtype} as integers")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) >= INT_LIMIT:
        raise EncodingError(f"integer {int(arr.max())} is outside the range |x| < 2^62")
    signed = arr.astype(np.int64)
    if signed.size and (int(signed.max()) >= INT_LIMIT or int(signed.min()) <= -INT_LIMIT):
        raise EncodingError("integer input is outside the range |x| < 2^62")
    return signed.view(np.uint64)


def decode_int(values: U64) -> npt.NDArray[np.int64]:
    return to_signed(values).copy()


def extra_bits(values: Any, frac_bits: int) -> int:
    """Extra fractional bits for a public multiplier: -floor(log2 max|c|) for |c| < 1/2, capped at
    min(frac_bits, 46 - 2*frac_bits, 30 - frac_bits) so that the truncation headroom rule still
    leaves room. Keeps the relative precision of small constants near 2^-frac_bits down to
    |c| ~ 2^-(cap) (2^-14 at 16 bits); smaller constants lose precision gradually (divide by
    a large count in two steps, e.g. ``x.sum() / 1000 / 1000``)."""
    arr = np.asarray(values, dtype=np.float64)
    top = float(np.max(np.abs(arr))) if arr.size else 0.0
    if top == 0.0 or top >= 0.5:
        return 0
    want = int(-np.floor(np.log2(top)))
    return max(0, min(want, frac_bits, 46 - 2 * frac_bits, 30 - frac_bits))
