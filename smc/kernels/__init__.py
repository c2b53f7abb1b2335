"""Numba share kernels of the engine, each with a pure-numpy twin.

Hazmat: low-level kernels on raw ring elements (``uint64``, arithmetic modulo 2^64) with no
notion of secrecy. Users should use :mod:`smc.api`.

The functions exported here are dispatchers: they accept arrays of any shape, run the compiled
kernel (compiled lazily on first use) and fall back to the numpy twin (``*_reference``) when
``numba.config.DISABLE_JIT`` is set.
"""

from __future__ import annotations

from smc.kernels.elementwise import (
    rss3_mul_local,
    rss3_mul_local_reference,
    trunc_finish,
    trunc_finish_reference,
)
from smc.kernels.matmul import (
    ring_dot,
    ring_dot_reference,
    ring_matmul,
    ring_matmul_reference,
    rss3_dot_local,
    rss3_dot_local_reference,
)

__all__ = [
    "ring_dot",
    "ring_dot_reference",
    "ring_matmul",
    "ring_matmul_reference",
    "rss3_dot_local",
    "rss3_dot_local_reference",
    "rss3_mul_local",
    "rss3_mul_local_reference",
    "trunc_finish",
    "trunc_finish_reference",
]
