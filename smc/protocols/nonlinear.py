"""Comparisons, selection, reductions and sorting, for any suite (hazmat).

Everything here is built from the suite's primitives (products, truncation, the sign test of
:mod:`smc.protocols.binary`), so it runs unchanged in rss3 and additive, and on the dealer (whose
shares are empty tuples: local share arithmetic on ``()`` is a no-op, and the dealer only answers
the interactive steps).

Comparison results are secret integers 0/1. ``a < b`` is the sign of ``a - b``, exact for every
pair of encodable values (|a - b| < 2^63), including values one ulp apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smc.protocols.base import Proto, lockstep
from smc.protocols.binary import ltz
from smc.protocols.suite import Cost, Share, Suite

Shape = tuple[int, ...]
ONE = np.uint64(1)


def one_minus(s: Suite, a: Share) -> Share:
    return s.add_public(s.neg(a), ONE)


def mul_int(
    s: Suite, label: str, a: Share, b: Share, shape_a: Shape, shape_b: Shape
) -> Proto[Share]:
    """Product without truncation (one operand is an integer, e.g. a 0/1 selection bit)."""
    out = tuple(np.broadcast_shapes(shape_a, shape_b))
    return (yield from s.bilinear(label, "mul", a, b, out, shape_a, shape_b, 0))


def compare(s: Suite, label: str, rel: str, diff: Share, shape: Shape) -> Proto[Share]:
    """[a rel b] from the sharing of diff = a - b. One or two sign tests side by side."""
    if rel in ("lt", "ge"):
        t = yield from ltz(s, label, diff, shape)
        return t if rel == "lt" else one_minus(s, t)
    if rel in ("gt", "le"):
        t = yield from ltz(s, label, s.neg(diff), shape)
        return t if rel == "gt" else one_minus(s, t)
    lt, gt = yield from lockstep(
        [ltz(s, label + "/l", diff, shape), ltz(s, label + "/g", s.neg(diff), shape)]
    )
    either = s.add(lt, gt)
    if rel == "ne":
        return either
    if rel == "eq":
        return one_minus(s, either)
    raise ValueError(f"unknown comparison {rel!r}")


def select(s: Suite, label: str, cond: Share, a: Share, b: Share, shape: Shape) -> Proto[Share]:
    """cond ? a : b  =  b + cond * (a - b); cond is a secret 0/1. One product round."""
    delta = yield from mul_int(s, label, cond, s.sub(a, b), shape, shape)
    return s.add(b, delta)


def abs_relu(s: Suite, label: str, fn: str, x: Share, shape: Shape) -> Proto[Share]:
    """|x| = x * (1 - 2[x<0]);  relu(x) = x - x*[x<0]."""
    neg = yield from ltz(s, label + "/s", x, shape)
    if fn == "abs":
        factor = s.add_public(s.mul_public(neg, np.uint64(2**64 - 2)), ONE)  # 1 - 2*neg
        return (yield from mul_int(s, label + "/m", x, factor, shape, shape))
    prod = yield from mul_int(s, label + "/m", x, neg, shape, shape)
    return s.sub(x, prod)


def _take(s: Suite, a: Share, index: slice | np.ndarray) -> Share:
    return tuple(np.ascontiguousarray(c[..., index]) for c in a)


def _cat(s: Suite, parts: Sequence[Share]) -> Share:
    if not parts[0]:
        return ()
    return tuple(np.concatenate([p[k] for p in parts], axis=-1) for k in range(len(parts[0])))


def reduce_last(
    s: Suite, label: str, fn: str, x: Share, shape: Shape
) -> Proto[tuple[Share, Share | None]]:
    """max/min/argmax/argmin over the last axis by a tournament: ceil(log2 n) levels of one sign
    test and one selection round each. Ties keep the earlier element (numpy's first index)."""
    n = shape[-1]
    if n == 0:
        raise ValueError("reduction over an empty axis")
    want_index = fn.startswith("arg")
    bigger = fn.endswith("max")
    idx: Share | None = None
    if want_index:
        idx = s.add_public(s.mul_public(x, np.uint64(0)), np.arange(n, dtype=np.uint64))
    level = 0
    while n > 1:
        half = n // 2
        lead = shape[:-1]
        a, b = _take(s, x, slice(0, 2 * half, 2)), _take(s, x, slice(1, 2 * half, 2))
        pair_shape = (*lead, half)
        # take b when it is strictly better: max -> a < b, min -> b < a
        diff = s.sub(a, b) if bigger else s.sub(b, a)
        take_b = yield from ltz(s, f"{label}/r{level}", diff, pair_shape)
        jobs = [select(s, f"{label}/v{level}", take_b, b, a, pair_shape)]
        if idx is not None:
            ia, ib = _take(s, idx, slice(0, 2 * half, 2)), _take(s, idx, slice(1, 2 * half, 2))
            jobs.append(select(s, f"{label}/i{level}", take_b, ib, ia, pair_shape))
        results = yield from lockstep(jobs)
        rest = [] if n % 2 == 0 else [_take(s, x, slice(n - 1, n))]
        x = _cat(s, [results[0], *rest])
        if idx is not None:
            idx_rest = [] if n % 2 == 0 else [_take(s, idx, slice(n - 1, n))]
            idx = _cat(s, [results[1], *idx_rest])
        n = half + n % 2
        shape = (*lead, n)
        level += 1
    squeeze = tuple(c[..., 0] for c in x)
    return squeeze, (tuple(c[..., 0] for c in idx) if idx is not None else None)


def bitonic_layers(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The compare-exchange layers of Batcher's bitonic sorting network on n = 2^k wires, as
    (low, high) index arrays: after each layer wire low[i] holds the smaller of the pair."""
    layers = []
    size = 2
    while size <= n:
        stride = size // 2
        while stride >= 1:
            i = np.arange(n)
            partner = i ^ stride
            first = i < partner
            ascending = (i & size) == 0
            lo = np.where(ascending, i, partner)[first]
            hi = np.where(ascending, partner, i)[first]
            layers.append((lo, hi))
            stride //= 2
        size *= 2
    return layers


def sort_rows(
    s: Suite, label: str, table: Share, shape: Shape, key: int, descending: bool, sentinel: int
) -> Proto[Share]:
    """Oblivious sort of the rows of an (n, m) table by column ``key`` with a bitonic network
    (Batcher, AFIPS 1968): log2(n)(log2(n)+1)/2 layers, each one sign test and one selection of
    whole rows. Rows are padded to a power of two with public sentinel rows that sort last.
    Not stable: rows with equal keys come out in an order fixed by the network."""
    n, m = shape
    size = 1 << max(0, (n - 1).bit_length())
    cols = tuple(np.ascontiguousarray(c.T) for c in table)  # (m, n): wires along the last axis
    if size > n:
        pad = np.zeros((m, size - n), dtype=np.uint64)
        pad[key] = np.uint64(sentinel % 2**64)
        padded = s.add_public(tuple(np.zeros((m, size - n), dtype=np.uint64) for _ in cols), pad)
        cols = _cat(s, [cols, padded])
    for k, (lo, hi) in enumerate(bitonic_layers(size)):
        a, b = _take(s, cols, lo), _take(s, cols, hi)
        ka, kb = tuple(c[key] for c in a), tuple(c[key] for c in b)
        swap = yield from ltz(s, f"{label}/c{k}", s.sub(kb, ka), (lo.size,))  # b < a
        swap_rows = tuple(np.broadcast_to(c, (m, lo.size)) for c in swap)
        delta = yield from mul_int(
            s, f"{label}/x{k}", swap_rows, s.sub(b, a), (m, lo.size), (m, lo.size)
        )
        new_lo, new_hi = s.add(a, delta), s.sub(b, delta)
        cols = _scatter(cols, lo, hi, new_lo, new_hi)
    cols = _take(s, cols, slice(0, n))
    if descending:
        cols = _take(s, cols, slice(None, None, -1))
    return tuple(np.ascontiguousarray(c.T) for c in cols)


def _scatter(cols: Share, lo: np.ndarray, hi: np.ndarray, new_lo: Share, new_hi: Share) -> Share:
    out = []
    for col, cl, ch in zip(cols, new_lo, new_hi, strict=True):
        new = col.copy()
        new[..., lo] = cl
        new[..., hi] = ch
        out.append(new)
    return tuple(out)


def ltz_cost(suite: str, n: int, size: int) -> Cost:
    """Declared cost of one sign test (and so of <, <=, >, >=) on ``size`` elements.

    rss3: 1 round for party 0 to binary-share x_0 + x_1 (8 B), 1 AND round for the generate bits,
    6 Kogge-Stone rounds (two ANDs per level, one on the last: 11 ANDs of 8 B), 2 rounds to turn
    the sign bit arithmetic (party 0 shares it: 8 B; one product: 8 B). Ten rounds; 120 B for
    party 0 and 104 B for the others.
    additive: 1 opening round (8 B to each other party), 6 prefix rounds (11 binary Beaver ANDs,
    16 B to each other party), 1 round for the dealt random bit (8 B): 8 rounds and
    192 (n - 1) B per party; the dealer sends party 0 104 B (corrections).
    Equality and inequality run two sign tests side by side: same rounds, twice the bytes."""
    if suite == "rss3":
        return Cost(10, (120 * size, 104 * size, 104 * size))
    return Cost(8, (192 * (n - 1) * size,) * n + (104 * size,))


def tournament_levels(length: int) -> int:
    """Levels of the min/max tournament over ``length`` elements: ceil(log2 length)."""
    return max(0, (length - 1).bit_length())


def bitonic_depth(length: int) -> int:
    """Compare-exchange layers of the bitonic network after padding to a power of two."""
    k = max(0, (length - 1).bit_length())
    return k * (k + 1) // 2
