"""The plaintext encoding of one party's outputs before they are encrypted to the client.

Layout: a 4-byte little-endian header length, a canonical JSON header
``{"outputs": [{"name", "dtype": "f8" | "i8", "shape": [..]}, ...]}``, then each output's values
as little-endian float64 or int64, in header order. Decoding checks every size and refuses
anything else (the bytes come from a party, through the hub).
"""

from __future__ import annotations

import json
import struct

import numpy as np
from smc.hub.manifest import canonical_json

DTYPES = {"f8": np.dtype("<f8"), "i8": np.dtype("<i8")}
MAX_HEADER = 1 << 20


class ResultFormatError(ValueError):
    """Result bytes that do not decode."""


def encode(outputs: dict[str, np.ndarray]) -> bytes:
    header = []
    blobs = []
    for name in sorted(outputs):
        arr = np.asarray(outputs[name])
        code = "i8" if arr.dtype.kind in "iub" else "f8"
        data = np.ascontiguousarray(arr, dtype=DTYPES[code])
        header.append({"name": name, "dtype": code, "shape": list(arr.shape)})
        blobs.append(data.tobytes())
    head = canonical_json({"outputs": header})
    return struct.pack("<I", len(head)) + bytes(head) + b"".join(blobs)


def decode(blob: bytes | bytearray) -> dict[str, np.ndarray]:
    """The outputs in ``blob``: views of it when it is writable (a ``bytearray``), else
    copies, so that the arrays are writable either way."""
    if len(blob) < 4:
        raise ResultFormatError("result too short")
    (size,) = struct.unpack_from("<I", blob)
    if size > MAX_HEADER or 4 + size > len(blob):
        raise ResultFormatError("result header size is out of range")
    try:
        header = json.loads(blob[4 : 4 + size].decode("ascii"))
        entries = header["outputs"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise ResultFormatError("result header is not valid") from None
    pos = 4 + size
    out: dict[str, np.ndarray] = {}
    for e in entries:
        try:
            name, dtype, shape = (
                str(e["name"]),
                DTYPES[e["dtype"]],
                tuple(int(d) for d in e["shape"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ResultFormatError("result header entry is not valid") from None
        if any(d < 0 for d in shape):
            raise ResultFormatError("negative dimension in result header")
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * dtype.itemsize
        if pos + nbytes > len(blob):
            raise ResultFormatError(f"output {name!r} is truncated")
        arr = np.frombuffer(blob, dtype=dtype, count=count, offset=pos).reshape(shape)
        out[name] = arr if arr.flags.writeable else arr.copy()  # a view of a bytearray
        pos += nbytes
    if pos != len(blob):
        raise ResultFormatError("trailing bytes after the last output")
    return out
