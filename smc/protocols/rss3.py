"""rss3: three-party replicated secret sharing over Z_2^64, semi-honest, honest majority.

Hazmat: protocol internals. Use :mod:`smc.api`.

Sharing: x = x_0 + x_1 + x_2; party i holds (x_i, x_(i+1)) (indices mod 3). Any single party's
components are uniformly random; any two parties can reconstruct.

* Multiplication (Araki et al., CCS 2016, "High-throughput semi-honest secure three-party
  computation with an honest majority"): z_i = x_i*y_i + x_i*y_(i+1) + x_(i+1)*y_i is a 3-out-of-3
  additive sharing of x*y; adding a zero-sharing from pairwise PRF keys and sending z_i to party
  i-1 re-establishes replication. One round, one ring element (8 bytes) per party per product.
* Truncation by 2^m (exact probabilistic truncation of Escudero, Ghosh, Keller, Rachuri, Scholl,
  CRYPTO 2020, Sec. 5.1, with the mask dealt by a third party): for each third of the vector one
  party D acts as dealer for the other two, P and Q. D knows the mask r (built from PRF keys it
  shares with P and Q plus a private part) and deals shares of r' = (r mod 2^63) >> m and of the
  top bit of r, so no wrap-around error can occur: the result is floor(x/2^m) or floor(x/2^m)+1
  whenever |x| < 2^62, with failure probability 0. P and Q open c = x + 2^62 + r to each other
  (D never sees c), compute an additive sharing of the result, and turn it back into a
  replicated sharing with one more exchange. Two rounds; per element D sends 32 bytes, P and Q
  16 bytes each; the dealer role rotates over the three thirds so every party sends ~21.3 bytes.

Who learns what: every message a party receives is a value masked by a PRF output it does not
hold (or by D's private randomness), so each party's view is uniform and independent of the
inputs; only opened outputs reveal anything.
"""

from __future__ import annotations

import numpy as np

from smc import kernels
from smc.kernels import trunc as fused
from smc.protocols import binary
from smc.protocols.base import Exchange, Proto, Received, expect, lockstep
from smc.protocols.keys import KeyRing
from smc.protocols.suite import Bilinear, Cost, Share, Suite, local_product
from smc.ring import U64, Public

HALF = np.uint64(1 << 62)
MASK63 = np.uint64((1 << 63) - 1)
ONE = np.uint64(1)


def share(value: U64, rand: U64, rand2: U64) -> tuple[Share, Share, Share]:
    """Split ``value`` into the three parties' replicated shares (reference dealer, for tests)."""
    x0, x1 = rand, rand2
    x2 = value - x0 - x1
    comps = (x0, x1, x2)
    return tuple((comps[i], comps[(i + 1) % 3]) for i in range(3))  # type: ignore[return-value]


def reconstruct(shares: list[Share]) -> U64:
    """Sum of the three distinct components (needs the shares of at least two parties)."""
    return shares[0][0] + shares[1][0] + shares[2][0]


class Rss3(Suite):
    name = "rss3"
    components = 2

    fuses_product_open = True

    def __init__(self, me: int, n: int, keys: KeyRing) -> None:
        super().__init__(me, n, keys)
        self.next = (me + 1) % 3
        self.prev = (me + 2) % 3

    def add_public(self, a: Share, c: Public) -> Share:
        x0, x1 = a
        if self.me == 0:  # holds (x_0, x_1)
            return (x0 + c, x1 + np.zeros_like(c))
        if self.me == 2:  # holds (x_2, x_0)
            return (x0 + np.zeros_like(c), x1 + c)
        return (x0 + np.zeros_like(c), x1 + np.zeros_like(c))

    def input(
        self, label: str, owner: int, value: U64 | None, shape: tuple[int, ...]
    ) -> Proto[Share]:
        """One round, one message: ``x_(owner+1) = r`` drawn from the key the owner shares with
        the next party, ``x_(owner+2) = 0``, and ``x_owner = v - r`` sent to the previous party.
        Each other party's view is one pseudorandom vector (``r``, or ``v - r`` under a key it
        does not hold); 8 bytes per element from the owner, nothing from anyone else."""
        size = int(np.prod(shape, dtype=np.int64))
        nxt, prv = (owner + 1) % 3, (owner + 2) % 3
        if self.me == owner:
            assert value is not None
            flat = np.ascontiguousarray(value, dtype=np.uint64).reshape(-1)
            r = self.keys.pair(nxt).draw(label + "/in", size)  # x_(owner+1), also at nxt
            x_own = flat - r  # x_owner, sent to prv
            yield Exchange(send={prv: [x_own]})
            return (x_own.reshape(shape), r.reshape(shape))
        if self.me == nxt:  # holds (x_(owner+1), x_(owner+2)) = (r, 0)
            yield Exchange()
            r = self.keys.pair(owner).draw(label + "/in", size)
            return (r.reshape(shape), np.zeros(shape, dtype=np.uint64))
        received = yield Exchange(recv={owner: [size]})  # prv holds (x_(owner+2), x_owner)
        x_own = expect(received, owner)
        return (np.zeros(shape, dtype=np.uint64), x_own.reshape(shape))

    def _zero_share(self, label: str, size: int) -> U64:
        return self.keys.pair(self.next).draw(label, size) - self.keys.pair(self.prev).draw(
            label, size
        )

    def _local_product(self, kind: Bilinear, a: Share, b: Share) -> U64:
        x0, x1 = a
        y0, y1 = b
        if kind == "mul":
            return kernels.rss3_mul_local(x0, x1, y0, y1)
        if x0.ndim == 1 and y0.ndim == 1:
            return kernels.rss3_dot_local(x0, x1, y0, y1)
        return local_product(kind, x0, y0 + y1) + local_product(kind, x1, y0)

    def reshare(self, label: str, z: U64) -> Proto[Share]:
        """3-out-of-3 additive z_i -> replicated sharing. One round, 8 bytes/element/party."""
        shape = z.shape
        zi = z.reshape(-1) + self._zero_share(label + "/zero", z.size)
        received = yield Exchange(send={self.prev: [zi]}, recv={self.next: [z.size]})
        return (zi.reshape(shape), expect(received, self.next).reshape(shape))

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
        z = self._local_product(kind, a, b).reshape(out_shape)
        if trunc_bits == 0:
            return (yield from self.reshare(label, z))
        return (yield from self.trunc_additive(label, z, trunc_bits))

    def trunc(self, label: str, a: Share, shape: tuple[int, ...], bits: int) -> Proto[Share]:
        return (yield from self.trunc_additive(label, a[0], bits))

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
        """A truncated product revealed to party ``to`` only, in the truncation's two rounds
        (no resharing and no separate opening round): 16 bytes per element per party in the
        first round, then 1 word per element from one party (2 when ``to`` is the chunk's
        dealer) instead of the 2-word resharing plus the 1-word opening."""
        z = self._local_product(kind, a, b).reshape(out_shape)
        flat = np.ascontiguousarray(z).reshape(-1)
        bounds = [flat.size * k // 3 for k in range(4)]
        chunks = [(d, bounds[d], bounds[d + 1]) for d in range(3) if bounds[d + 1] > bounds[d]]
        if not chunks:
            yield Exchange()
            yield Exchange()
            return np.zeros(out_shape, dtype=np.uint64) if self.me == to else None
        parts = yield from lockstep(
            [
                self._trunc_open_chunk(f"{label}/t{d}", flat[lo:hi], d, trunc_bits, to)
                for d, lo, hi in chunks
            ]
        )
        if self.me != to:
            return None
        return np.concatenate(parts).reshape(out_shape)

    def trunc_additive(self, label: str, z: U64, bits: int) -> Proto[Share]:
        """Truncate a 3-out-of-3 additive sharing z (this party's z_i) into replicated shares."""
        shape = z.shape
        flat = np.ascontiguousarray(z).reshape(-1)
        bounds = [flat.size * k // 3 for k in range(4)]
        chunks = [(d, bounds[d], bounds[d + 1]) for d in range(3) if bounds[d + 1] > bounds[d]]
        parts = yield from lockstep(
            [self._trunc_chunk(f"{label}/t{d}", flat[lo:hi], d, bits) for d, lo, hi in chunks]
        )
        if not chunks:
            yield Exchange()
            yield Exchange()
            empty = np.zeros(shape, dtype=np.uint64)
            return (empty, empty.copy())
        c0 = np.concatenate([p[0] for p in parts]).reshape(shape)
        c1 = np.concatenate([p[1] for p in parts]).reshape(shape)
        return (c0, c1)

    def _trunc_round(
        self, label: str, z: U64, dealer: int, m: int
    ) -> Proto[tuple[U64, U64, U64 | None]]:
        """The truncation's first round (openings of z + r, the dealer's corrections) and the
        local finish: (this party's two PRF output components, and for p and q its half of the
        third, t_Q = half_q + half_p; None at the dealer). The output is t_D + t_P + t_Q."""
        n = z.size
        p, q = (dealer + 1) % 3, (dealer + 2) % 3
        if self.me == dealer:
            kp, kq = self.keys.pair(p), self.keys.pair(q)
            from_p = kp.draw(label + "/P", 4 * n)  # r_P | u0_P | u1_P | t_P, also drawn by P
            from_q = kq.draw(label + "/Q", 2 * n)  # r_Q | t_D, also drawn by Q
            r_d = self.keys.private.draw(label + "/rD", n)
            u0_q, u1_q = fused.dealer_corrections(
                from_p[:n], from_q[:n], r_d, from_p[n : 2 * n], from_p[2 * n : 3 * n], m
            )
            m_d = z + r_d
            yield Exchange(send={p: [m_d], q: [m_d, u0_q, u1_q]})
            return (from_q[n:], from_p[3 * n :], None)  # (t_D, t_P)
        if self.me == p:
            mine = self.keys.pair(dealer).draw(label + "/P", 4 * n)
            r_p, u0, u1, t_p = mine[:n], mine[n : 2 * n], mine[2 * n : 3 * n], mine[3 * n :]
            m_p = z + r_p
            got: Received = yield Exchange(send={q: [m_p]}, recv={q: [n], dealer: [n]})
            half_q = fused.open_finish(
                m_p, expect(got, q), expect(got, dealer), u0, u1, t_p, m, True
            )
            return (t_p, t_p, half_q)  # t_P (twice: p holds (t_P, t_Q))
        mine = self.keys.pair(dealer).draw(label + "/Q", 2 * n)  # self.me == q
        r_q, t_d = mine[:n], mine[n:]
        m_q = z + r_q
        got = yield Exchange(send={p: [m_q]}, recv={p: [n], dealer: [n, n, n]})
        half_p = fused.open_finish(
            m_q,
            expect(got, p),
            expect(got, dealer, 0),
            expect(got, dealer, 1),
            expect(got, dealer, 2),
            t_d,
            m,
            False,
        )
        return (t_d, t_d, half_p)  # t_D (q holds (t_Q, t_D))

    def _trunc_chunk(self, label: str, z: U64, dealer: int, m: int) -> Proto[tuple[U64, U64]]:
        n = z.size
        p, q = (dealer + 1) % 3, (dealer + 2) % 3
        first, second, half = yield from self._trunc_round(label, z, dealer, m)
        if half is None:  # the dealer: (t_D, t_P), both from PRF keys
            yield Exchange()
            return (first, second)
        other = q if self.me == p else p
        got = yield Exchange(send={other: [half]}, recv={other: [n]})
        t_q = half + expect(got, other)
        return (first, t_q) if self.me == p else (t_q, first)  # (t_P, t_Q) or (t_Q, t_D)

    def _trunc_open_chunk(
        self, label: str, z: U64, dealer: int, m: int, to: int
    ) -> Proto[U64 | None]:
        """Truncate and reveal to ``to`` only, without building the replicated sharing: the
        output is t_D + t_P + half_q + half_p. If ``to`` is p (or q) the other sends its part
        (t_D + half_p, or t_P + half_q): one word. If ``to`` is the dealer, which knows t_D and
        t_P, p and q send their halves masked by a PRF value m_pq they share (half_q + m_pq and
        half_p - m_pq), since a half alone would show the dealer the opened z + r: two words.
        Every message is the output minus values the recipient holds, or uniformly masked."""
        n = z.size
        p, q = (dealer + 1) % 3, (dealer + 2) % 3
        first, second, half = yield from self._trunc_round(label, z, dealer, m)
        if to == dealer:
            if half is None:
                got: Received = yield Exchange(recv={p: [n], q: [n]})
                return first + second + expect(got, p) + expect(got, q)
            mask = self.keys.pair(q if self.me == p else p).draw(label + "/mask", n)
            yield Exchange(send={dealer: [half + mask if self.me == p else half - mask]})
            return None
        if half is None:  # the dealer, not the recipient
            yield Exchange()
            return None
        if self.me == to:
            got = yield Exchange(recv={q if to == p else p: [n]})
            return first + half + expect(got, q if to == p else p)
        yield Exchange(send={to: [first + half]})  # t_D + half_p from q, t_P + half_q from p
        return None

    # ------------------------------------------------------------------ binary sharing
    def b_xor_public(self, a: Share, c: Public) -> Share:
        x0, x1 = a
        zero = np.zeros_like(c)
        if self.me == 0:
            return (x0 ^ c, x1 ^ zero)
        if self.me == 2:
            return (x0 ^ zero, x1 ^ c)
        return (x0 ^ zero, x1 ^ zero)

    def b_and(self, label: str, a: Share, b: Share, shape: tuple[int, ...]) -> Proto[Share]:
        """Replicated AND: local cross terms, an XOR zero-sharing, one resharing message."""
        x0, x1 = a
        y0, y1 = b
        size = int(np.prod(shape, dtype=np.int64))
        z = np.broadcast_to((x0 & (y0 ^ y1)) ^ (x1 & y0), shape).reshape(-1)
        zi = (
            z
            ^ self.keys.pair(self.next).draw(label, size)
            ^ self.keys.pair(self.prev).draw(label, size)
        )
        got = yield Exchange(send={self.prev: [zi]}, recv={self.next: [size]})
        return (zi.reshape(shape), expect(got, self.next).reshape(shape))

    def a2b(self, label: str, a: Share, shape: tuple[int, ...]) -> Proto[Share]:
        """x = (x_0 + x_1) + x_2: party 0 binary-shares v = x_0 + x_1 (one round, one message,
        as :meth:`input`: v_1 drawn with party 1, v_2 = 0, v_0 = v ^ v_1 sent to party 2); x_2 is
        already held in the clear by parties 1 and 2, a trivial binary sharing; then a binary
        adder (one AND round for the generate bits and six prefix rounds). Eight rounds."""
        size = int(np.prod(shape, dtype=np.int64))
        x0, x1 = a
        zero = np.zeros(shape, dtype=np.uint64)
        if self.me == 0:
            v1 = self.keys.pair(1).draw(label + "/v", size)
            v0 = np.ascontiguousarray(x0 + x1).reshape(-1) ^ v1
            yield Exchange(send={2: [v0]})
            vs: Share = (v0.reshape(shape), v1.reshape(shape))
            ws: Share = (zero, zero)
        elif self.me == 1:
            yield Exchange()
            mine = self.keys.pair(0).draw(label + "/v", size).reshape(shape)
            vs, ws = (mine, zero), (zero, x1)
        else:
            got = yield Exchange(recv={0: [size]})
            vs, ws = (zero, expect(got, 0).reshape(shape)), (x0, zero)
        return (yield from binary.add_binary(self, label, vs, ws, shape))

    def b2a_bit(self, label: str, a: Share, shape: tuple[int, ...]) -> Proto[Share]:
        """b = b_0 ^ b_1 ^ b_2 = e ^ b_2 with e = b_0 ^ b_1 known to party 0, which shares it
        (one round); then b = e + b_2 - 2*e*b_2 with one integer product (one round)."""
        e = (a[0] ^ a[1]) & ONE if self.me == 0 else None
        e_share = yield from self.input(label + "/e", 0, e, shape)
        zero = np.zeros(shape, dtype=np.uint64)
        if self.me == 0:
            b2: Share = (zero, zero)
        elif self.me == 1:
            b2 = (zero, np.broadcast_to(a[1] & ONE, shape))
        else:
            b2 = (np.broadcast_to(a[0] & ONE, shape), zero)
        prod = yield from self.bilinear(label + "/m", "mul", e_share, b2, shape, shape, shape, 0)
        return self.sub(self.add(e_share, b2), self.mul_public(prod, np.uint64(2)))

    def open(
        self, label: str, a: Share, shape: tuple[int, ...], to: int | None
    ) -> Proto[U64 | None]:
        size = int(np.prod(shape, dtype=np.int64))
        x0, x1 = a
        # party i lacks x_(i+2), which party i+1 holds as its second component
        if to is None:
            got = yield Exchange(send={self.prev: [x1.reshape(-1)]}, recv={self.next: [size]})
            return x0 + x1 + expect(got, self.next).reshape(shape)
        if self.me == to:
            got = yield Exchange(recv={self.next: [size]})
            return x0 + x1 + expect(got, self.next).reshape(shape)
        if self.me == (to + 1) % 3:
            yield Exchange(send={to: [x1.reshape(-1)]})
            return None
        yield Exchange()
        return None


def rss3_costs(op: str, size: int) -> Cost:
    """Declared cost per endpoint for ``size`` output elements (bytes per party, rounds)."""
    if op == "input":
        return Cost(1, (8 * size, 0, 0))  # owner = party 0
    if op == "mul_int":
        return Cost(1, (8 * size,) * 3)
    if op in ("mul_fixed", "trunc"):
        thirds = [size * k // 3 for k in range(4)]
        sizes = [thirds[d + 1] - thirds[d] for d in range(3)]
        per = [0, 0, 0]
        for d, s in enumerate(sizes):
            per[d] += 32 * s
            per[(d + 1) % 3] += 16 * s
            per[(d + 2) % 3] += 16 * s
        return Cost(2, tuple(per))
    if op == "mul_open":  # a truncated product revealed to party 0 (Rss3.bilinear_open)
        return mul_open_cost(size, 0)
    if op == "open_all":
        return Cost(1, (8 * size,) * 3)
    if op == "open_one":
        return Cost(1, (0, 8 * size, 0))  # to party 0: party 1 sends
    raise KeyError(op)


def mul_open_cost(size: int, to: int) -> Cost:
    """Declared cost of :meth:`Rss3.bilinear_open` revealing ``size`` elements to party ``to``:
    the truncation's first round (the chunk's dealer sends 4 words, p and q one each), then one
    word per element from p or q, or from both (masked halves) when ``to`` is the dealer."""
    thirds = [size * k // 3 for k in range(4)]
    per = [0, 0, 0]
    for d in range(3):
        s = thirds[d + 1] - thirds[d]
        p, q = (d + 1) % 3, (d + 2) % 3
        per[d] += 32 * s
        per[p] += 8 * s
        per[q] += 8 * s
        if to == d:
            per[p] += 8 * s
            per[q] += 8 * s
        else:
            per[q if to == p else p] += 8 * s
    return Cost(2, tuple(per))
