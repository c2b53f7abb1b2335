"""What every protocol suite offers the executor (hazmat).

A *share* is a tuple of ring arrays of the value's shape: two components for rss3 (party i holds
x_i and x_(i+1)), one for additive, none for the dealer (which holds no shares). Local operations
are pure functions of shares; interactive operations are protocols (generators, see
:mod:`smc.protocols.base`) that yield the same number of rounds on every endpoint.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from smc import kernels
from smc.protocols.base import Proto
from smc.protocols.keys import KeyRing
from smc.ring import U64, Public

Share = tuple[U64, ...]
Bilinear = str  # "mul" (elementwise, broadcasting) or "matmul" (numpy matmul semantics)


@dataclass(frozen=True)
class Cost:
    """Declared cost of one operation on ``size`` output elements: rounds, and bytes sent by each
    endpoint (index = endpoint; the dealer, when present, is last)."""

    rounds: int
    bytes_per_endpoint: tuple[int, ...]


def map_share(share: Share, fn: Callable[[U64], U64]) -> Share:
    """Apply a local linear (or structural) map to every component."""
    return tuple(fn(c) for c in share)


class Suite(ABC):
    """One endpoint's implementation of a protocol suite."""

    name: str
    components: int

    def __init__(self, me: int, n: int, keys: KeyRing) -> None:
        self.me = me
        self.n = n
        self.keys = keys

    # local ----------------------------------------------------------------------------------
    def add(self, a: Share, b: Share) -> Share:
        return tuple(x + y for x, y in zip(a, b, strict=True))

    def sub(self, a: Share, b: Share) -> Share:
        return tuple(x - y for x, y in zip(a, b, strict=True))

    def neg(self, a: Share) -> Share:
        return tuple(np.zeros_like(x) - x for x in a)

    def mul_public(self, a: Share, c: Public) -> Share:
        return tuple(x * c for x in a)

    @abstractmethod
    def add_public(self, a: Share, c: Public) -> Share:
        """Add a public ring array (broadcasting)."""

    # binary (XOR) sharing: the same component layout, with XOR in place of + -----------------
    def b_xor(self, a: Share, b: Share) -> Share:
        return tuple(x ^ y for x, y in zip(a, b, strict=True))

    def b_and_public(self, a: Share, c: Public) -> Share:
        return tuple(x & c for x in a)

    def b_shift(self, a: Share, bits: int) -> Share:
        """Shift every component left (bits > 0) or right (bits < 0); linear over XOR."""
        if bits >= 0:
            return tuple(x << np.uint64(bits) for x in a)
        return tuple(x >> np.uint64(-bits) for x in a)

    @abstractmethod
    def b_xor_public(self, a: Share, c: Public) -> Share:
        """XOR a public word into a binary sharing."""

    @abstractmethod
    def b_and(self, label: str, a: Share, b: Share, shape: tuple[int, ...]) -> Proto[Share]:
        """Bitwise AND of two binary-shared 64-bit words (one round)."""

    @abstractmethod
    def a2b(self, label: str, a: Share, shape: tuple[int, ...]) -> Proto[Share]:
        """Arithmetic to binary sharing of the same 64-bit value (bit decomposition)."""

    @abstractmethod
    def b2a_bit(self, label: str, a: Share, shape: tuple[int, ...]) -> Proto[Share]:
        """A binary-shared bit (in bit 0 of every component) to an arithmetic sharing of 0/1."""

    # interactive --------------------------------------------------------------------------------
    @abstractmethod
    def input(
        self, label: str, owner: int, value: U64 | None, shape: tuple[int, ...]
    ) -> Proto[Share]:
        """Secret-share ``value`` (given only on the owner) among the computing parties."""

    @abstractmethod
    def bilinear(
        self,
        label: str,
        kind: Bilinear,
        a: Share,
        b: Share,
        out_shape: tuple[int, ...],
        a_shape: tuple[int, ...],
        b_shape: tuple[int, ...],
        trunc_bits: int,
    ) -> Proto[Share]:
        """Secret-by-secret product (elementwise or matmul), truncated by ``trunc_bits``."""

    @abstractmethod
    def trunc(self, label: str, a: Share, shape: tuple[int, ...], bits: int) -> Proto[Share]:
        """Divide by 2^bits with stochastic rounding (exact to one unit, see docs/numerics.md)."""

    @abstractmethod
    def open(
        self, label: str, a: Share, shape: tuple[int, ...], to: int | None
    ) -> Proto[U64 | None]:
        """Reveal to one party (``to``) or to all (``None``); non-recipients get ``None``."""

    #: whether :meth:`bilinear_open` saves anything over a product followed by an opening
    fuses_product_open = False

    def bilinear_open(
        self,
        label: str,
        kind: Bilinear,
        a: Share,
        b: Share,
        out_shape: tuple[int, ...],
        a_shape: tuple[int, ...],
        b_shape: tuple[int, ...],
        trunc_bits: int,
        to: int,
    ) -> Proto[U64 | None]:
        """A truncated product revealed to party ``to`` only (see ``Program.product_outputs``).
        This default is the product then the opening; suites that can do better override it
        and set :attr:`fuses_product_open`."""
        prod = yield from self.bilinear(label, kind, a, b, out_shape, a_shape, b_shape, trunc_bits)
        return (yield from self.open(label + "/open", prod, out_shape, to))


def local_product(kind: Bilinear, x: U64, y: U64) -> U64:
    """The plaintext ring version of a bilinear map: elementwise product or matmul."""
    if kind == "mul":
        return x * y
    if x.ndim == 1 and y.ndim == 1:
        return kernels.ring_dot(x, y)
    return kernels.ring_matmul(x, y)
