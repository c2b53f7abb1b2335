"""Numeric functions on secret fixed-point values (hazmat): reciprocal, rsqrt/sqrt, log, exp,
sigmoid, tanh. Suite-independent, built on products, truncation and the binary circuits.

Methods (docs/numerics.md has the measured error over each domain):

* normalisation: the position p of the leading one of a positive value is found from its bit
  decomposition (A2B, a prefix-OR in 6 AND rounds, then x ^ (x >> 1)) and turned into arithmetic
  0/1 indicators a_j = [p == j]; any public function of p is then a local sum of a_j * w(j).
* reciprocal: x_norm = x * 2^-p in [1, 2); y0 = 24/17 - 8/17 x_norm (error < 1/17), three
  Newton-Raphson steps y <- y (2 - x y); rescale by 2^(f-p). Sign handled by |x|.
* rsqrt: same normalisation, linear start and three Newton steps y <- y (3 - x y^2) / 2, rescale
  by 2^((f-p)/2) (public weights with 36 extra fractional bits). sqrt(x) = x * rsqrt(x).
* log: ln(x) = ln(x_norm) + (p - f) ln 2, with ln on [1, 2) a degree-8 polynomial fitted at
  Chebyshev nodes.
* exp: 2^(x log2 e); the integer part k and the fraction r of y = x log2 e come exactly from the
  bits of y (A2B), 2^r from a degree-7 polynomial on [0, 1), 2^k from a product of six factors
  1 + (2^(2^i) - 1) b_i. Below y = -32 the result is 0, at and above y = 16 it saturates.
* sigmoid: 1 / (1 + exp(-|x|)) by three Newton steps on (1, 2], mirrored for x < 0.
* tanh(x) = 2 sigmoid(2x) - 1.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from smc.encoding import extra_bits
from smc.protocols.base import Proto, lockstep
from smc.protocols.binary import ltz
from smc.protocols.nonlinear import abs_relu, select
from smc.protocols.suite import Share, Suite

Shape = tuple[int, ...]
ONE = np.uint64(1)
EXP_LOW, EXP_HIGH = -32, 16  # exp works on y = x*log2(e) in [EXP_LOW, EXP_HIGH)
NORM_BITS = 62  # leading-one positions 0..61: every encodable magnitude (raw |X| < 2^62)


def ring(values: float | np.ndarray | int) -> np.ndarray:
    """Signed integers (Python or numpy) to ring elements, elementwise."""
    arr = np.asarray(values)
    return np.asarray(np.vectorize(lambda v: int(v) % (1 << 64), otypes=[object])(arr)).astype(
        np.uint64
    )


def fmul(s: Suite, label: str, a: Share, b: Share, shape: Shape, bits: int) -> Proto[Share]:
    """Fixed-point product of two secrets, truncated by ``bits``."""
    return (yield from s.bilinear(label, "mul", a, b, shape, shape, shape, bits))


def cmul(
    s: Suite, label: str, a: Share, c: float | np.ndarray, shape: Shape, f: int
) -> Proto[Share]:
    """Secret times public real constant(s), with extra precision for small constants."""
    e = extra_bits(c, f)
    coef = (
        np.rint(np.asarray(c, dtype=np.float64) * 2.0 ** (f + e)).astype(np.int64).view(np.uint64)
    )
    return (yield from s.trunc(label, s.mul_public(a, coef), shape, f + e))


def cadd(s: Suite, a: Share, c: float, f: int) -> Share:
    return s.add_public(a, ring(round(c * 2**f)))


def poly(s: Suite, label: str, x: Share, coeffs: list[float], shape: Shape, f: int) -> Proto[Share]:
    """sum_k coeffs[k] x^k for |x| <= 1: powers in ceil(log2 d) product levels, then one
    truncation for the whole public linear combination."""
    powers: dict[int, Share] = {1: x}
    have = 1
    level = 0
    while have < len(coeffs) - 1:
        todo = [k for k in range(have + 1, min(2 * have, len(coeffs) - 1) + 1)]
        made = yield from lockstep(
            [
                fmul(s, f"{label}/p{level}/{k}", powers[have], powers[k - have], shape, f)
                for k in todo
            ]
        )
        powers.update(zip(todo, made, strict=True))
        have = todo[-1]
        level += 1
    top = max(1.0, max(abs(c) for c in coeffs) * len(coeffs))
    g = max(0, min(f, 46 - 2 * f - math.ceil(math.log2(top))))
    acc: Share | None = None
    for k, c in enumerate(coeffs[1:], start=1):
        term = s.mul_public(powers[k], ring(round(c * 2 ** (f + g))))
        acc = term if acc is None else s.add(acc, term)
    assert acc is not None
    out = yield from s.trunc(f"{label}/sum", acc, shape, f + g)
    return s.add_public(out, ring(round(coeffs[0] * 2**f)))


@functools.cache
def fitted(name: str, degree: int) -> tuple[float, ...]:
    """Monomial coefficients of a Chebyshev-node least-squares fit (lazily computed)."""
    lo, hi, fn = {
        "ln1p": (0.0, 1.0, np.log1p),
        "exp2": (0.0, 1.0, np.exp2),
    }[name]
    nodes = (np.cos(np.pi * (np.arange(4 * degree) + 0.5) / (4 * degree)) + 1) / 2 * (hi - lo) + lo
    fit = np.polynomial.Polynomial.fit(nodes, fn(nodes), degree).convert()
    return tuple(float(c) for c in fit.coef)


def smear_down(s: Suite, label: str, word: Share, shape: Shape) -> Proto[Share]:
    """y | y >> 1 | y >> 2 | ... on a binary-shared word: every bit below the leading one is set,
    and bit 0 is the OR of all bits. Six AND rounds (a | b = a ^ b ^ (a & b))."""
    y = word
    for k, d in enumerate((1, 2, 4, 8, 16, 32)):
        shifted = s.b_shift(y, -d)
        (both,) = yield from lockstep([s.b_and(f"{label}/or{k}", y, shifted, shape)])
        y = s.b_xor(s.b_xor(y, shifted), both)
    return y


def leading_one(s: Suite, label: str, x: Share, shape: Shape) -> Proto[Share]:
    """Arithmetic indicators a_j = [floor(log2 X) == j], j < NORM_BITS, for raw X > 0
    (shape + (NORM_BITS,)); all zero when X == 0."""
    onehot = yield from leading_one_word(s, label, x, shape)
    j = np.arange(NORM_BITS, dtype=np.uint64)
    expanded = tuple((c.reshape(*shape, 1) >> j) & ONE for c in onehot)
    return (yield from s.b2a_bit(f"{label}/b2a", expanded, (*shape, NORM_BITS)))


def leading_one_word(s: Suite, label: str, x: Share, shape: Shape) -> Proto[Share]:
    """Binary-shared word with exactly bit floor(log2 X) set, for raw X > 0 (0 when X == 0):
    A2B, then a prefix-OR towards bit 0 in six AND rounds, then y ^ (y >> 1)."""
    bits = yield from s.a2b(f"{label}/a2b", x, shape)
    y = yield from smear_down(s, label, bits, shape)
    return s.b_xor(y, s.b_shift(y, -1))


def fold(onehot: Share, table: list[int], nbits: int) -> Share:
    """Bits of g(p) from the one-hot word of p, locally: bit k of g(p) is the XOR of the one-hot
    bits j with bit k of g(j) set (exactly one bit is set, so XOR is OR). ``table[j] = g(j)``.
    Returns components of shape (..., nbits) with each bit in bit 0."""
    masks = np.array(
        [sum(1 << j for j, v in enumerate(table) if (v >> k) & 1) for k in range(nbits)],
        dtype=np.uint64,
    )
    return tuple((np.bitwise_count(c[..., None] & masks) & 1).astype(np.uint64) for c in onehot)


def _pow2_tree(
    s: Suite, label: str, bits: list[Share], extra: list[Share], shape: Shape
) -> Proto[Share]:
    """2^q as an exact ring integer from the arithmetic bits of q, times the 0/1 ``extra`` factors:
    the product of 1 + (2^(2^k) - 1) q_k, in ceil(log2(#factors)) integer-product rounds."""
    factors = [
        s.add_public(s.mul_public(b, ring((1 << (1 << k)) - 1)), ONE) for k, b in enumerate(bits)
    ]
    return (yield from _product_tree(s, label, factors + extra, shape))


def normalise(
    s: Suite, label: str, x: Share, shape: Shape, f: int, want: tuple[str, ...]
) -> Proto[dict[str, Share]]:
    """For raw X > 0 with p = floor(log2 X) <= 61: x_norm = x * 2^-p in [1, 2) (fixed point), and
    on request 'p' (the arithmetic integer p) and 'down' = 2^(45 - p) (0 when p > 45). Only
    13 bits are converted to arithmetic; the powers of two come from product trees."""
    h = yield from leading_one_word(s, label, x, shape)
    j = list(range(64))
    tables = [[max(0, 61 - v) for v in j], [max(0, 45 - v) for v in j], [int(v <= 45) for v in j]]
    widths = [6, 6, 1]
    if "p" in want:
        tables.append(j)
        widths.append(6)
    folded = [fold(h, t, w) for t, w in zip(tables, widths, strict=True)]
    stacked = tuple(np.concatenate([fb[k] for fb in folded], axis=-1) for k in range(len(h)))
    total = sum(widths)
    arith = yield from s.b2a_bit(f"{label}/b2a", stacked, (*shape, total))
    cols = [tuple(c[..., i] for c in arith) for i in range(total)]
    up_bits, down_bits, ok = cols[0:6], cols[6:12], cols[12]
    up, down = yield from lockstep(
        [
            _pow2_tree(s, f"{label}/up", up_bits, [], shape),
            _pow2_tree(s, f"{label}/dn", down_bits, [ok], shape),
        ]
    )
    x_norm = yield from s.bilinear(f"{label}/n", "mul", x, up, shape, shape, shape, 61 - f)
    out = {"x_norm": x_norm, "down": down}
    if "p" in want:
        p_bits = cols[13:19]
        out["p"] = weigh(
            s,
            tuple(np.stack([b[k] for b in p_bits], axis=-1) for k in range(len(h))),
            ring(1 << np.arange(6)),
        )
    return out


def weigh(s: Suite, ind: Share, weights: np.ndarray) -> Share:
    """sum_j ind_j * weights[j] over the last axis (local: weights are public ring integers)."""
    return tuple(np.sum(c * weights, axis=-1, dtype=np.uint64) for c in ind)


def _normalised(s: Suite, label: str, x: Share, shape: Shape, f: int) -> Proto[tuple[Share, Share]]:
    """(indicators, x_norm) with x_norm = x * 2^-p in [1, 2) as fixed point."""
    ind = yield from leading_one(s, label, x, shape)
    j = np.arange(NORM_BITS)
    up = weigh(s, ind, ring(2 ** (61 - j)))
    x_norm = yield from s.bilinear(f"{label}/n", "mul", x, up, shape, shape, shape, 61 - f)
    return ind, x_norm


def _newton_recip(
    s: Suite, label: str, d: Share, y: Share, shape: Shape, f: int, steps: int
) -> Proto[Share]:
    for k in range(steps):
        dy = yield from fmul(s, f"{label}/a{k}", d, y, shape, f)
        y = yield from fmul(s, f"{label}/b{k}", y, cadd(s, s.neg(dy), 2.0, f), shape, f)
    return y


def reciprocal(s: Suite, label: str, x: Share, shape: Shape, f: int) -> Proto[Share]:
    neg = yield from ltz(s, f"{label}/sgn", x, shape)
    sign = s.add_public(s.mul_public(neg, np.uint64(2**64 - 2)), ONE)
    ax = yield from s.bilinear(f"{label}/abs", "mul", x, sign, shape, shape, shape, 0)
    norm = yield from normalise(s, label, ax, shape, f, ())
    y0 = yield from cmul(s, f"{label}/y0", norm["x_norm"], -16 / 34, shape, f)
    y0 = cadd(
        s, y0, 48 / 34, f
    )  # 1/x on [1, 2) to within 1/17 (the classic 48/17 - 32/17 d on [1/2, 1))
    y = yield from _newton_recip(s, f"{label}/nr", norm["x_norm"], y0, shape, f, 3)
    mag = yield from s.bilinear(f"{label}/d", "mul", y, norm["down"], shape, shape, shape, 45 - f)
    return (yield from s.bilinear(f"{label}/sg", "mul", mag, sign, shape, shape, shape, 0))


def _rsqrt_norm(
    s: Suite, label: str, x: Share, shape: Shape, f: int
) -> Proto[tuple[Share, Share, Share]]:
    """(indicators, x_norm, 1/sqrt(x_norm)) for x > 0."""
    ind, x_norm = yield from _normalised(s, label, x, shape, f)
    y = yield from cmul(s, f"{label}/y0", x_norm, -0.2929, shape, f)
    y = cadd(s, y, 1.2929, f)  # the chord of 1/sqrt on [1, 2]
    for k in range(3):
        y2 = yield from fmul(s, f"{label}/a{k}", y, y, shape, f)
        xy2 = yield from fmul(s, f"{label}/b{k}", x_norm, y2, shape, f)
        y = yield from fmul(s, f"{label}/c{k}", y, cadd(s, s.neg(xy2), 3.0, f), shape, f + 1)
    return ind, x_norm, y


def _half_power(s: Suite, ind: Share, f: int, sign: int, g: int) -> Share:
    """sum_j a_j * 2^(sign*(j - f)/2 + g): the scale 2^(+-(p - f)/2) with g fractional bits."""
    j = np.arange(NORM_BITS, dtype=np.float64)
    w = np.rint(2.0 ** (sign * (j - f) / 2 + g)).astype(np.int64)
    return weigh(s, ind, w.view(np.uint64))


def rsqrt(s: Suite, label: str, x: Share, shape: Shape, f: int) -> Proto[Share]:
    ind, _, y = yield from _rsqrt_norm(s, label, x, shape, f)
    g = min(36, 59 - (3 * f) // 2)  # y (< 2^(f+1)) * 2^((f - p)/2 + g) stays below 2^62
    return (
        yield from s.bilinear(
            f"{label}/d", "mul", y, _half_power(s, ind, f, -1, g), shape, shape, shape, g
        )
    )


def sqrt(s: Suite, label: str, x: Share, shape: Shape, f: int) -> Proto[Share]:
    """sqrt(x) = x_norm * rsqrt(x_norm) * 2^((p - f)/2): the relative error stays ~2^-f
    instead of growing with x as x * rsqrt(x) would."""
    ind, x_norm, y = yield from _rsqrt_norm(s, label, x, shape, f)
    root = yield from fmul(s, f"{label}/r", x_norm, y, shape, f)
    g = min(22, 29 - f // 2)  # root (< 2^(f+1)) * 2^((p - f)/2 + g), p <= 61, below 2^62
    return (
        yield from s.bilinear(
            f"{label}/u", "mul", root, _half_power(s, ind, f, 1, g), shape, shape, shape, g
        )
    )


def log(s: Suite, label: str, x: Share, shape: Shape, f: int) -> Proto[Share]:
    norm = yield from normalise(s, label, x, shape, f, ("p",))
    t = cadd(s, norm["x_norm"], -1.0, f)
    ln_m = yield from poly(s, f"{label}/p", t, list(fitted("ln1p", 8)), shape, f)
    ln2 = ring(round(math.log(2) * 2**f))
    return cadd(s, s.add(ln_m, s.mul_public(norm["p"], ln2)), -f * math.log(2), f)


def _or_reduce(s: Suite, label: str, word: Share, shape: Shape) -> Proto[Share]:
    """Binary-shared word -> a bit (in bit 0) that is the OR of all its bits. Six AND rounds."""
    smeared = yield from smear_down(s, label, word, shape)
    return s.b_and_public(smeared, ONE)


def exp(
    s: Suite, label: str, x: Share, shape: Shape, f: int, nonpositive: bool = False
) -> Proto[Share]:
    """e^x. With ``nonpositive`` (the caller guarantees x <= 0, as sigmoid and softmax do) the
    saturation logic for large x is skipped."""
    y = yield from cmul(s, f"{label}/l2e", x, math.log2(math.e), shape, f)
    y = cadd(s, y, float(-EXP_LOW), f)  # y' = y + 32: k' = floor(y') in [0, 48) inside the domain
    bits = yield from s.a2b(f"{label}/a2b", y, shape)
    flags = tuple(
        np.stack(
            [(bw >> np.uint64(f + i)) & ONE for i in range(6)] + [bw >> np.uint64(63)], axis=-1
        )
        for bw in bits
    )
    low_job = s.b2a_bit(f"{label}/b2a", flags, (*shape, 7))
    if nonpositive:
        (arith,) = yield from lockstep([low_job])
    else:
        high_mask = np.uint64(((1 << 63) - 1) ^ ((1 << (f + 6)) - 1))  # y' >= 64
        high_job = _or_reduce(s, f"{label}/hi", s.b_and_public(bits, high_mask), shape)
        high_bit, arith = yield from lockstep([high_job, low_job])
    k_bits = [tuple(c[..., i] for c in arith) for i in range(6)]
    under = tuple(c[..., 6] for c in arith)
    r = y  # fraction: y' - k' * 2^f (raw)
    for i, kb in enumerate(k_bits):
        r = s.sub(r, s.mul_public(kb, np.uint64(1 << (f + i))))
    jobs = [
        poly(s, f"{label}/p", r, list(fitted("exp2", 7)), shape, f),
        _pow2_tree(s, f"{label}/t", k_bits, [one_minus_bit(s, under)], shape),
    ]
    if not nonpositive:
        jobs += [
            s.b2a_bit(f"{label}/hb", high_bit, shape),
            s.bilinear(f"{label}/b45", "mul", k_bits[4], k_bits[5], shape, shape, shape, 0),
        ]
    done = yield from lockstep(jobs)
    two_r, two_k = done[0], done[1]
    # 2^(k' - 32) in fixed point is 2^k' >> (32 - f)
    if nonpositive:
        two_k = yield from s.trunc(f"{label}/k", two_k, shape, -EXP_LOW - f)
        return (yield from fmul(s, f"{label}/v", two_k, two_r, shape, f))
    high, b45 = done[2], done[3]
    two_k, both = yield from lockstep(
        [
            s.trunc(f"{label}/k", two_k, shape, -EXP_LOW - f),
            s.bilinear(f"{label}/hs", "mul", high, b45, shape, shape, shape, 0),
        ]
    )
    saturated = s.sub(s.add(high, b45), both)  # y' >= 64 or k' >= 48 (or y' < 0: masked below)
    val, saturated = yield from lockstep(
        [
            fmul(s, f"{label}/v", two_k, two_r, shape, f),
            s.bilinear(
                f"{label}/u", "mul", saturated, one_minus_bit(s, under), shape, shape, shape, 0
            ),
        ]
    )
    top = s.add_public(s.mul_public(val, np.uint64(0)), ring(round(2.0**EXP_HIGH * 2**f)))
    return (yield from select(s, f"{label}/sat", saturated, top, val, shape))


def one_minus_bit(s: Suite, b: Share) -> Share:
    return s.add_public(s.neg(b), ONE)


def _product_tree(s: Suite, label: str, factors: list[Share], shape: Shape) -> Proto[Share]:
    level = 0
    while len(factors) > 1:
        pairs = [(factors[i], factors[i + 1]) for i in range(0, len(factors) - 1, 2)]
        made = yield from lockstep(
            [
                s.bilinear(f"{label}/{level}/{i}", "mul", a, b, shape, shape, shape, 0)
                for i, (a, b) in enumerate(pairs)
            ]
        )
        factors = list(made) + ([factors[-1]] if len(factors) % 2 else [])
        level += 1
    return factors[0]


def sigmoid(s: Suite, label: str, x: Share, shape: Shape, f: int) -> Proto[Share]:
    neg = yield from ltz(s, f"{label}/sgn", x, shape)
    sign = s.add_public(s.mul_public(neg, np.uint64(2**64 - 2)), ONE)
    ax = yield from s.bilinear(f"{label}/abs", "mul", x, sign, shape, shape, shape, 0)
    e = yield from exp(s, f"{label}/e", s.neg(ax), shape, f, nonpositive=True)
    d = cadd(s, e, 1.0, f)  # in (1, 2]
    y0 = yield from cmul(s, f"{label}/h", d, -0.5, shape, f)
    y0 = cadd(s, y0, 1.5, f)  # the chord of 1/d on [1, 2]
    g = yield from _newton_recip(s, f"{label}/nr", d, y0, shape, f, 3)
    return (yield from select(s, f"{label}/m", neg, cadd(s, s.neg(g), 1.0, f), g, shape))


def tanh(s: Suite, label: str, x: Share, shape: Shape, f: int) -> Proto[Share]:
    sig = yield from sigmoid(s, label, s.mul_public(x, np.uint64(2)), shape, f)
    return cadd(s, s.mul_public(sig, np.uint64(2)), -1.0, f)


FUNCTIONS = {
    "reciprocal": reciprocal,
    "rsqrt": rsqrt,
    "sqrt": sqrt,
    "log": log,
    "exp": exp,
    "sigmoid": sigmoid,
    "tanh": tanh,
}

__all__ = ["FUNCTIONS", "abs_relu"]
