"""Measure the fixed-point product error of both suites on 10^6 random products.

Run: ``python docs/examples/fixed_point_error.py [--n 1000000]``.

Every product x*y of two secret fixed-point inputs (16 fractional bits) is compared with the exact
product of the *encoded* inputs, X*Y / 2^32, computed with integers. The secure result R (in ulps
of 2^-16) must be floor(X*Y / 2^16) or that plus one: the truncation is a stochastic rounding with
|error| < 1 ulp and no failures while |x*y| < 2^30. Inputs span magnitudes from 2^-16 to 2^15 and
signs, with every product below the precondition bound, plus the range edges.

The script asserts the bound on every element and prints, per suite: the maximum absolute error
in ulps, the fraction of products rounded up, the fraction a perfect stochastic rounding would
round up (the mean fractional part), the mean signed error (bias) in ulps, and the fraction
rounded up per quarter of the fractional part (stochastic rounding: about 1/8, 3/8, 5/8, 7/8).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

import smc

FRAC_BITS = 16
ULP = 2.0**-FRAC_BITS


def sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Test data (numpy's PRNG is fine here: these values are not secret)."""
    rng = np.random.default_rng(seed)
    half = n // 2
    # log-uniform magnitudes: |x| in [2^-16, 2^15), |y| chosen so that |x*y| < 2^29.9
    ex = rng.uniform(-16, 15, half)
    ey = rng.uniform(-16, 1, half) + np.minimum(28.9 - ex, 14)
    x1 = np.exp2(ex) * rng.choice([-1.0, 1.0], half)
    y1 = np.exp2(ey) * rng.choice([-1.0, 1.0], half)
    # uniform over the largest square the precondition allows
    rest = n - half
    bound = 2.0**15 - 1
    x2, y2 = rng.uniform(-bound, bound, rest), rng.uniform(-bound, bound, rest)
    x, y = np.concatenate([x1, x2]), np.concatenate([y1, y2])
    edges_x = [0.0, ULP, -ULP, 1.0, -1.0, bound, -bound, 2.0**29, -(2.0**29), 0.5]
    edges_y = [5.0, ULP, ULP, -1.0, -1.0, bound, bound, 1.999, 1.999, -0.5]
    x[: len(edges_x)], y[: len(edges_y)] = edges_x, edges_y
    return x, y


def measure(suite: str, parties: int, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    names = [f"p{i}" for i in range(parties)]
    p = smc.ProgramBuilder(names, frac_bits=FRAC_BITS)
    a = p.input(names[0], "x", shape=x.shape)
    b = p.input(names[1], "y", shape=y.shape)
    p.output("xy", a * b, to=names[0])
    out = smc.simulate(p.build(), {names[0]: {"x": x}, names[1]: {"y": y}}, suite=suite)
    got = np.rint(out[names[0]]["xy"] * 2.0**FRAC_BITS).astype(np.int64)  # result in ulps

    enc_x = np.rint(x * 2.0**FRAC_BITS).astype(np.int64)
    enc_y = np.rint(y * 2.0**FRAC_BITS).astype(np.int64)
    exact = enc_x * enc_y  # |X*Y| < 2^62: exact in int64
    assert np.all(np.abs(exact) < 2**62), "test data violates the product precondition"
    floor = exact >> FRAC_BITS
    frac = (exact & (2**FRAC_BITS - 1)).astype(np.float64) / 2**FRAC_BITS
    up = got - floor
    assert np.all((up == 0) | (up == 1)), f"{suite}: a result is not floor or floor+1"
    assert np.all(up[frac == 0] == 0), f"{suite}: an exact product was rounded"
    err = up - frac  # signed error in ulps, exact
    assert np.max(np.abs(err)) < 1.0
    quarters = np.minimum((frac * 4).astype(np.int64), 3)
    by_quarter = [float(np.mean(up[quarters == q])) for q in range(4)]
    return {
        "up_by_quarter": by_quarter,
        "max_abs_err_ulps": float(np.max(np.abs(err))),
        "rounded_up": float(np.mean(up)),
        "expected_up": float(np.mean(frac)),
        "bias_ulps": float(np.mean(err)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10**6, help="products per suite (default 10^6)")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    x, y = sample(args.n, args.seed)
    print(f"{args.n:,} fixed-point products per suite, frac_bits={FRAC_BITS}, |x*y| < 2^30")
    header = ("suite", "max |err| (ulp)", "rounded up", "ideal", "bias (ulp)")
    print(f"{header[0]:<14} {header[1]:>16} {header[2]:>11} {header[3]:>8} {header[4]:>11}")
    for suite, parties in [("rss3", 3), ("additive", 3), ("additive", 2)]:
        m = measure(suite, parties, x, y)
        print(
            f"{suite + ' n=' + str(parties):<14} {m['max_abs_err_ulps']:>16.6f} "
            f"{m['rounded_up']:>11.4%} {m['expected_up']:>8.4%} {m['bias_ulps']:>+11.2e}"
        )
        quarters = ", ".join(f"{u:.1%}" for u in m["up_by_quarter"])
        print(f"{'':<14} rounded up by quarter of the fractional part: {quarters}")
        # stochastic rounding: P(round up) equals the fractional part, so no bias on average
        assert abs(m["rounded_up"] - m["expected_up"]) < 5 / np.sqrt(args.n) + 1e-9
    print("all results match their plaintext references (floor or floor+1, |error| < 1 ulp)")


if __name__ == "__main__":
    main()
