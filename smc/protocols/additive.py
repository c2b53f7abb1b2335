"""additive: n >= 2 parties, additive sharing over Z_2^64, correlated randomness from a dealer.

Hazmat: protocol internals. Use :mod:`smc.api`.

Sharing: x = x_0 + ... + x_(n-1); any n-1 parties' shares are uniform and independent of x
(dishonest majority among the computing parties, semi-honest).

The dealer is an extra endpoint (index n) that never holds a share. It is trusted for privacy
(it must not collude with any computing party) but it learns nothing about inputs or outputs on
its own: it only generates randomness. Its traffic is compressed with PRG seeds: every party j's
part of a Beaver triple or truncation pair is drawn from the PRF key j shares with the dealer, so
only party 0 receives explicit values (the correction terms).

* Input: the owner derives every other party's share from the PRF key they share; no message.
* Multiplication and matmul: Beaver triples (Beaver, CRYPTO 1991), generalised to any bilinear
  map: open D = X - A, E = Y - B, then Z = C + D*B + A*E + D*E. One round,
  16*(n-1) bytes per element per party (both operands sent to every other party).
* Truncation: exact probabilistic truncation (Escudero et al., CRYPTO 2020, Sec. 5.1): open
  c = x + 2^62 + r with dealer-shared (r' = (r mod 2^63) >> m, msb(r)); result is floor or
  floor + 1 of x / 2^m whenever |x| < 2^62 (failure probability 0). One round, 8*(n-1) bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np

from smc import kernels
from smc.protocols import binary
from smc.protocols.base import Exchange, Proto, Received, expect, idle
from smc.protocols.keys import KeyRing
from smc.protocols.suite import Bilinear, Cost, Share, Suite, local_product
from smc.ring import U64, Public

HALF = np.uint64(1 << 62)
MASK63 = np.uint64((1 << 63) - 1)
ONE = np.uint64(1)
ALL_ONES = np.uint64((1 << 64) - 1)


def share(value: U64, masks: Sequence[U64]) -> list[Share]:
    """Reference sharing for tests: the n-1 masks are the other parties' shares."""
    first = value - sum(masks, np.zeros_like(value))
    return [(first,), *[(m,) for m in masks]]


def reconstruct(shares: Sequence[Share]) -> U64:
    return sum((s[0] for s in shares[1:]), shares[0][0].copy())


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


class Additive(Suite):
    """A computing party of the additive suite."""

    name = "additive"
    components = 1

    def __init__(self, me: int, n: int, keys: KeyRing) -> None:
        super().__init__(me, n, keys)
        self.dealer = n
        self.others = [j for j in range(n) if j != me]

    def add_public(self, a: Share, c: Public) -> Share:
        (x,) = a
        return (x + c,) if self.me == 0 else (x + np.zeros_like(c),)

    def input(
        self, label: str, owner: int, value: U64 | None, shape: tuple[int, ...]
    ) -> Proto[Share]:
        size = _size(shape)
        if self.me != owner:
            return (self.keys.pair(owner).draw(label + "/in", size).reshape(shape),)
        assert value is not None
        mine = np.ascontiguousarray(value, dtype=np.uint64).reshape(-1).copy()
        for j in self.others:
            mine -= self.keys.pair(j).draw(label + "/in", size)
        return (mine.reshape(shape),)
        yield  # pragma: no cover - makes this a zero-round protocol

    def _open_sum(self, mine: U64, got: Received) -> U64:
        total = mine.copy()
        for j in self.others:
            total += expect(got, j)
        return total

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
        kd = self.keys.pair(self.dealer)
        sa, sb, so = _size(a_shape), _size(b_shape), _size(out_shape)
        a_j = kd.draw(label + "/A", sa).reshape(a_shape)
        b_j = kd.draw(label + "/B", sb).reshape(b_shape)
        d_j = (a[0] - a_j).reshape(-1)
        e_j = (b[0] - b_j).reshape(-1)
        recv: dict[int, list[int]] = {j: [sa, sb] for j in self.others}
        if self.me == 0:
            recv[self.dealer] = [so, so, so] if trunc_bits else [so]
        got = yield Exchange(send={j: [d_j, e_j] for j in self.others}, recv=recv)
        d = d_j.copy()
        e = e_j.copy()
        for j in self.others:
            d += expect(got, j, 0)
            e += expect(got, j, 1)
        d, e = d.reshape(a_shape), e.reshape(b_shape)
        if self.me == 0:
            c_j = expect(got, self.dealer, 0).reshape(out_shape)
        else:
            c_j = kd.draw(label + "/C", so).reshape(out_shape)
        z = c_j + local_product(kind, d, b_j) + local_product(kind, a_j, e)
        if self.me == 0:
            z = z + local_product(kind, d, e)
        z = np.broadcast_to(z, out_shape)
        if not trunc_bits:
            return (np.array(z).reshape(out_shape),)  # a copy that keeps 0-d shapes
        if self.me == 0:
            u = (expect(got, self.dealer, 1), expect(got, self.dealer, 2))
        else:
            u = (kd.draw(label + "/u0", so), kd.draw(label + "/u1", so))
        return (yield from self._trunc_open(label, z, trunc_bits, u))

    def _trunc_open(
        self, label: str, z: U64, bits: int, u: tuple[U64, U64], dealer_recv: bool = False
    ) -> Proto[Share]:
        shape = z.shape
        size = z.size
        r_j = self.keys.pair(self.dealer).draw(label + "/r", size)
        c_j = np.ascontiguousarray(z).reshape(-1) + r_j
        if self.me == 0:
            c_j += HALF
        recv: dict[int, list[int]] = {j: [size] for j in self.others}
        if dealer_recv:
            recv[self.dealer] = [size, size]
        got = yield Exchange(send={j: [c_j] for j in self.others}, recv=recv)
        if dealer_recv:
            u = (expect(got, self.dealer, 0), expect(got, self.dealer, 1))
        c = self._open_sum(c_j, got)
        return (kernels.trunc_finish(c, u[0], u[1], bits, self.me == 0).reshape(shape),)

    def trunc(self, label: str, a: Share, shape: tuple[int, ...], bits: int) -> Proto[Share]:
        size = _size(shape)
        if self.me == 0:
            empty = np.empty(0, dtype=np.uint64)
            return (yield from self._trunc_open(label, a[0], bits, (empty, empty), True))
        kd = self.keys.pair(self.dealer)
        u = (kd.draw(label + "/u0", size), kd.draw(label + "/u1", size))
        return (yield from self._trunc_open(label, a[0], bits, u))

    # ------------------------------------------------------------------ binary sharing
    def b_xor_public(self, a: Share, c: Public) -> Share:
        (x,) = a
        return (x ^ c,) if self.me == 0 else (x ^ np.zeros_like(c),)

    def _xor_open(self, mine: U64, got: Received) -> U64:
        total = mine.copy()
        for j in self.others:
            total ^= expect(got, j)
        return total

    def b_and(self, label: str, a: Share, b: Share, shape: tuple[int, ...]) -> Proto[Share]:
        """Binary Beaver triple: open d = x ^ A, e = y ^ B; z = C ^ d&B ^ A&e ^ d&e. One round."""
        kd = self.keys.pair(self.dealer)
        size = _size(shape)
        a_j, b_j = kd.draw(label + "/A", size), kd.draw(label + "/B", size)
        d_j = np.broadcast_to(a[0], shape).reshape(-1) ^ a_j
        e_j = np.broadcast_to(b[0], shape).reshape(-1) ^ b_j
        recv: dict[int, list[int]] = {j: [size, size] for j in self.others}
        if self.me == 0:
            recv[self.dealer] = [size]
        got = yield Exchange(send={j: [d_j, e_j] for j in self.others}, recv=recv)
        d, e = d_j.copy(), e_j.copy()
        for j in self.others:
            d ^= expect(got, j, 0)
            e ^= expect(got, j, 1)
        if self.me == 0:
            z = cast(U64, expect(got, self.dealer) ^ (d & b_j) ^ (a_j & e) ^ (d & e))
        else:
            z = cast(U64, kd.draw(label + "/C", size) ^ (d & b_j) ^ (a_j & e))
        return (z.reshape(shape),)

    def a2b(self, label: str, a: Share, shape: tuple[int, ...]) -> Proto[Share]:
        """Open c = x + r for a dealt r known in both sharings; x = c + ~r + 1 in binary, where the
        generate/propagate bits with the public c are local. Seven rounds."""
        kd = self.keys.pair(self.dealer)
        size = _size(shape)
        c_j = np.ascontiguousarray(a[0]).reshape(-1) + kd.draw(label + "/r", size)
        recv: dict[int, list[int]] = {j: [size] for j in self.others}
        if self.me == 0:
            recv[self.dealer] = [size]
        got = yield Exchange(send={j: [c_j] for j in self.others}, recv=recv)
        c = self._open_sum(c_j, got)
        if self.me == 0:
            not_r = expect(got, self.dealer) ^ ALL_ONES
        else:
            not_r = kd.draw(label + "/rho", size)
        g: Share = ((not_r & c).reshape(shape),)
        p = self.b_xor_public((not_r.reshape(shape),), c.reshape(shape))
        g = self.b_xor(g, self.b_and_public(p, ONE))  # carry-in 1 at bit 0
        carries = yield from binary.prefix_carries(self, label, g, p, shape)
        return self.b_xor_public(self.b_xor(p, self.b_shift(carries, 1)), ONE)

    def b2a_bit(self, label: str, a: Share, shape: tuple[int, ...]) -> Proto[Share]:
        """Dealt random bit s (binary shares from PRF keys, party 0's arithmetic share explicit):
        open t = b ^ s; then b = t + s - 2ts locally. One round."""
        kd = self.keys.pair(self.dealer)
        size = _size(shape)
        mine = np.broadcast_to(a[0] & ONE, shape).reshape(-1) ^ (
            kd.draw(label + "/sig", size) & ONE
        )
        recv: dict[int, list[int]] = {j: [size] for j in self.others}
        if self.me == 0:
            recv[self.dealer] = [size]
        got = yield Exchange(send={j: [mine] for j in self.others}, recv=recv)
        s_j = expect(got, self.dealer) if self.me == 0 else kd.draw(label + "/s", size)
        t = self._xor_open(mine, got) & ONE
        b = s_j - np.uint64(2) * t * s_j
        if self.me == 0:
            b = b + t
        return (b.reshape(shape),)

    def open(
        self, label: str, a: Share, shape: tuple[int, ...], to: int | None
    ) -> Proto[U64 | None]:
        size = _size(shape)
        mine = np.ascontiguousarray(a[0]).reshape(-1)
        if to is None:
            got = yield Exchange(
                send={j: [mine] for j in self.others}, recv={j: [size] for j in self.others}
            )
            return self._open_sum(mine, got).reshape(shape)
        if self.me == to:
            got = yield Exchange(recv={j: [size] for j in self.others})
            return self._open_sum(mine, got).reshape(shape)
        yield Exchange(send={to: [mine]})
        return None


class Dealer(Suite):
    """The additive suite's dealer endpoint: deals Beaver triples and truncation pairs."""

    name = "additive-dealer"
    components = 0

    def add_public(self, a: Share, c: Public) -> Share:
        return ()

    def input(
        self, label: str, owner: int, value: U64 | None, shape: tuple[int, ...]
    ) -> Proto[Share]:
        return ()
        yield  # pragma: no cover - zero rounds

    def _sum_draws(self, label: str, size: int, parties: range) -> U64:
        total = np.zeros(size, dtype=np.uint64)
        for j in parties:
            total += self.keys.pair(j).draw(label, size)
        return total

    def _trunc_corrections(self, label: str, size: int, bits: int) -> list[U64]:
        """Party 0's explicit shares of u0 = r' - msb(r)*2^(63-m) and u1 = r' + msb(r)*2^(63-m)."""
        r = self._sum_draws(label + "/r", size, range(self.n))
        msb_k = (r >> np.uint64(63)) << np.uint64(63 - bits)
        r_low = (r & MASK63) >> np.uint64(bits)
        u0 = r_low - msb_k - self._sum_draws(label + "/u0", size, range(1, self.n))
        u1 = r_low + msb_k - self._sum_draws(label + "/u1", size, range(1, self.n))
        return [u0, u1]

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
        sa, sb, so = _size(a_shape), _size(b_shape), _size(out_shape)
        a_all = self._sum_draws(label + "/A", sa, range(self.n)).reshape(a_shape)
        b_all = self._sum_draws(label + "/B", sb, range(self.n)).reshape(b_shape)
        c_all = np.broadcast_to(local_product(kind, a_all, b_all), out_shape).reshape(-1)
        c_0 = c_all - self._sum_draws(label + "/C", so, range(1, self.n))
        send = [c_0]
        if trunc_bits:
            send += self._trunc_corrections(label, so, trunc_bits)
        yield Exchange(send={0: send})
        if trunc_bits:
            yield Exchange()
        return ()

    def trunc(self, label: str, a: Share, shape: tuple[int, ...], bits: int) -> Proto[Share]:
        yield Exchange(send={0: self._trunc_corrections(label, _size(shape), bits)})
        return ()

    def open(
        self, label: str, a: Share, shape: tuple[int, ...], to: int | None
    ) -> Proto[U64 | None]:
        yield from idle(1)
        return None

    def _xor_draws(self, label: str, size: int, parties: range) -> U64:
        total = np.zeros(size, dtype=np.uint64)
        for j in parties:
            total ^= self.keys.pair(j).draw(label, size)
        return total

    def b_xor_public(self, a: Share, c: Public) -> Share:
        return ()

    def b_and(self, label: str, a: Share, b: Share, shape: tuple[int, ...]) -> Proto[Share]:
        size = _size(shape)
        every = range(self.n)
        c_all = self._xor_draws(label + "/A", size, every) & self._xor_draws(
            label + "/B", size, every
        )
        yield Exchange(send={0: [c_all ^ self._xor_draws(label + "/C", size, range(1, self.n))]})
        return ()

    def a2b(self, label: str, a: Share, shape: tuple[int, ...]) -> Proto[Share]:
        size = _size(shape)
        r = self._sum_draws(label + "/r", size, range(self.n))
        yield Exchange(send={0: [r ^ self._xor_draws(label + "/rho", size, range(1, self.n))]})
        yield from binary.prefix_carries(self, label, (), (), shape)
        return ()

    def b2a_bit(self, label: str, a: Share, shape: tuple[int, ...]) -> Proto[Share]:
        size = _size(shape)
        bit = self._xor_draws(label + "/sig", size, range(self.n)) & ONE
        yield Exchange(send={0: [bit - self._sum_draws(label + "/s", size, range(1, self.n))]})
        return ()


def additive_costs(op: str, size: int, n: int) -> Cost:
    """Declared cost: rounds, and bytes per endpoint (parties 0..n-1, then the dealer)."""
    if op == "input":
        return Cost(0, (0,) * (n + 1))
    if op == "mul_int":
        return Cost(1, (16 * (n - 1) * size,) * n + (8 * size,))
    if op == "mul_fixed":
        return Cost(2, (24 * (n - 1) * size,) * n + (24 * size,))
    if op == "trunc":
        return Cost(1, (8 * (n - 1) * size,) * n + (16 * size,))
    if op == "open_all":
        return Cost(1, (8 * (n - 1) * size,) * n + (0,))
    if op == "open_one":
        return Cost(1, (0,) + (8 * size,) * (n - 1) + (0,))  # to party 0
    raise KeyError(op)
