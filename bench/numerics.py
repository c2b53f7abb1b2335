"""Measured accuracy of the secure numeric functions over their documented domains.

Run: ``python bench/numerics.py [--points N] [--suite rss3|additive]``. For each function it draws
N points (log-uniform magnitudes where the domain spans decades, plus the domain's edges), runs
the secure function in simulation and prints the maximum absolute and relative error against
numpy in float64, computed on the fixed-point-encoded inputs. docs/numerics.md quotes these
numbers; tests/test_numeric.py asserts bounds derived from them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import smc

F = 16


@dataclass(frozen=True)
class Domain:
    name: str
    lo: float
    hi: float
    log: bool
    secure: Callable[[smc.SecureArray], smc.SecureArray]
    plain: Callable[[np.ndarray], np.ndarray]
    signed: bool = False  # log-uniform magnitude with random sign


DOMAINS = [
    Domain("reciprocal", 2.0**-8, 2.0**14, True, lambda x: x.reciprocal(), lambda v: 1 / v, True),
    Domain("sqrt", 0.0, 2.0**20, False, lambda x: x.sqrt(), np.sqrt),
    Domain("sqrt (small)", 2.0**-10, 2.0**4, True, lambda x: x.sqrt(), np.sqrt),
    Domain("rsqrt", 2.0**-10, 2.0**20, True, lambda x: x.rsqrt(), lambda v: 1 / np.sqrt(v)),
    Domain("log", 2.0**-10, 2.0**20, True, lambda x: x.log(), np.log),
    Domain("exp", -20.0, 11.0, False, lambda x: x.exp(), np.exp),
    Domain("sigmoid", -60.0, 60.0, False, lambda x: x.sigmoid(), lambda v: 1 / (1 + np.exp(-v))),
    Domain("tanh", -30.0, 30.0, False, lambda x: x.tanh(), np.tanh),
]


def points(d: Domain, n: int, rng: np.random.Generator) -> np.ndarray:
    if d.log:
        mags = np.exp(rng.uniform(np.log(d.lo), np.log(d.hi), n))
        vals = mags * (rng.choice([-1.0, 1.0], n) if d.signed else 1.0)
        edges = [d.lo, d.hi * 0.999] + ([-d.lo, -d.hi * 0.999] if d.signed else [])
    else:
        vals = rng.uniform(d.lo, d.hi, n)
        edges = [d.lo, d.hi * 0.999 if d.hi > 0 else d.hi, 0.0 if d.lo <= 0 <= d.hi else d.lo]
    encoded = np.rint(np.concatenate([vals, edges]) * 2**F) / 2**F
    return encoded


def measure(
    d: Domain, n: int, suite: str, parties: int, seed: int = 0
) -> tuple[float, float, float]:
    """(max abs error, max rel error where |ref| >= 1, seconds). Below 1 the fixed-point
    resolution (2^-16) and not the method bounds the relative error."""
    x = points(d, n, np.random.default_rng(seed))
    names = [f"p{i}" for i in range(parties)]
    p = smc.ProgramBuilder(names, frac_bits=F)
    a = p.input(names[0], "x", shape=x.shape)
    p.output("y", d.secure(a), to=names[0])
    res = smc.simulate(p.build(), {names[0]: {"x": x}}, suite=suite)
    got = res[names[0]]["y"]
    ref = d.plain(x)
    err = np.abs(got - ref)
    big = np.abs(ref) >= 1.0
    rel = float(np.max(err[big] / np.abs(ref[big]))) if big.any() else 0.0
    return float(err.max()), rel, res.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=20000)
    ap.add_argument("--suite", default="rss3", choices=["rss3", "additive"])
    ap.add_argument("--parties", type=int, default=3)
    args = ap.parse_args()
    print(
        f"suite {args.suite}, {args.parties} parties, frac_bits {F},"
        f" {args.points} points per domain"
    )
    print(
        f"{'function':<14} {'domain':<24} {'max abs err':>12} {'rel err |y|>=1':>14} {'seconds':>8}"
    )
    for d in DOMAINS:
        abs_err, rel_err, secs = measure(d, args.points, args.suite, args.parties)
        dom = f"{'+-' if d.signed else ''}[{d.lo:g}, {d.hi:g}]"
        print(f"{d.name:<14} {dom:<24} {abs_err:>12.3e} {rel_err:>14.3e} {secs:>8.2f}")


if __name__ == "__main__":
    main()
