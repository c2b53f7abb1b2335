"""Suite-independent binary circuits on XOR-shared 64-bit words (hazmat).

The adder is a Kogge-Stone parallel-prefix carry network (Kogge & Stone, IEEE Trans. Computers,
1973) on bit-sliced words: every 64-bit value is one word, so each prefix level costs the same
two word-ANDs whatever the bit width, and carries for all 64 bit positions come out of
log2(64) = 6 rounds. Bit decomposition (A2B) and the sign test (LTZ) are built on it; see
:meth:`Suite.a2b` for each suite's first step.
"""

from __future__ import annotations

import numpy as np

from smc.protocols.base import Proto, lockstep
from smc.protocols.suite import Share, Suite

LEVELS = (1, 2, 4, 8, 16, 32)
ONE = np.uint64(1)


def prefix_carries(
    s: Suite, label: str, g: Share, p: Share, shape: tuple[int, ...]
) -> Proto[Share]:
    """Given generate g = a & b and propagate p = a ^ b, return c with c_i = carry out of bit i.

    Six rounds (one per level); the last level skips the propagate update."""
    for k, d in enumerate(LEVELS):
        g_shift = s.b_shift(g, d)
        if k == len(LEVELS) - 1:
            (pg,) = yield from lockstep([s.b_and(f"{label}/ks{k}g", p, g_shift, shape)])
            g = s.b_xor(g, pg)
            break
        pg, pp = yield from lockstep(
            [
                s.b_and(f"{label}/ks{k}g", p, g_shift, shape),
                s.b_and(f"{label}/ks{k}p", p, s.b_shift(p, d), shape),
            ]
        )
        g = s.b_xor(g, pg)
        p = pp
    return g


def add_binary(s: Suite, label: str, a: Share, b: Share, shape: tuple[int, ...]) -> Proto[Share]:
    """a + b mod 2^64 on binary shares: one AND round for the generate bits, then the prefix."""
    p = s.b_xor(a, b)
    (g,) = yield from lockstep([s.b_and(f"{label}/g", a, b, shape)])
    carries = yield from prefix_carries(s, label, g, p, shape)
    return s.b_xor(p, s.b_shift(carries, 1))


def ltz(s: Suite, label: str, a: Share, shape: tuple[int, ...]) -> Proto[Share]:
    """Arithmetic sharing of [a < 0] (the sign bit of a read as a signed 64-bit integer)."""
    bits = yield from s.a2b(f"{label}/a2b", a, shape)
    msb = s.b_shift(bits, -63)
    return (yield from s.b2a_bit(f"{label}/b2a", msb, shape))


def b2a_word(s: Suite, label: str, a: Share, shape: tuple[int, ...]) -> Proto[Share]:
    """Binary sharing of full 64-bit words to arithmetic: all 64 bits converted in parallel and
    recombined with their weights (2 rounds in rss3, 1 in additive)."""
    expanded = tuple((x.reshape(*shape, 1) >> np.arange(64, dtype=np.uint64)) & ONE for x in a)
    bits = yield from s.b2a_bit(label, expanded, (*shape, 64))
    weights = (ONE << np.arange(64, dtype=np.uint64)).astype(np.uint64)
    return tuple(np.sum(x * weights, axis=-1, dtype=np.uint64) for x in bits)
