"""Measured error of the secure numeric functions over their working domains.

Run: ``python docs/examples/function_accuracy.py [--n 20000]``. The figures of docs/numerics.md.

For every function, n points spread over its domain (log-uniform for positive-only functions,
uniform otherwise, both signs where the function takes them) are evaluated securely in both
suites with f = 16 fractional bits and compared with numpy's float64 result on the *encoded*
input. The script prints the largest absolute error in ulps (2^-16) where |f(x)| <= 1 and the
largest relative error where |f(x)| > 1, and asserts the bounds stated in docs/numerics.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

import smc

FRAC_BITS = 16
ULP = 2.0**-FRAC_BITS
Method = Callable[[smc.SecureArray], smc.SecureArray]


def log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int, signed: bool) -> np.ndarray:
    x = np.exp2(rng.uniform(np.log2(lo), np.log2(hi), n))
    return x * rng.choice([-1.0, 1.0], n) if signed else x


# name: (secure method, float64 reference, sampler, bound in ulps where |f| <= 1, relative bound
# where |f| > 1). Domains: each function's documented working range at f = 16 (docs/numerics.md).
Case = tuple[Method, Callable[[np.ndarray], np.ndarray], Callable[..., np.ndarray], float, float]
CASES: dict[str, Case] = {
    "reciprocal": (
        lambda x: x.reciprocal(),
        lambda x: 1 / x,
        lambda rng, n: log_uniform(rng, 2.0**-16, 2.0**45, n, True),
        4.0,
        1e-4,
    ),
    "sqrt": (
        lambda x: x.sqrt(),
        np.sqrt,
        lambda rng, n: log_uniform(rng, 2.0**-16, 2.0**45, n, False),
        4.0,
        1e-4,
    ),
    "rsqrt": (
        lambda x: x.rsqrt(),
        lambda x: 1 / np.sqrt(x),
        lambda rng, n: log_uniform(rng, 2.0**-16, 2.0**45, n, False),
        4.0,
        1e-4,
    ),
    "log": (
        lambda x: x.log(),
        np.log,
        lambda rng, n: log_uniform(rng, 2.0**-16, 2.0**45, n, False),
        4.0,
        1e-4,
    ),
    "exp": (lambda x: x.exp(), np.exp, lambda rng, n: rng.uniform(-22, 11, n), 4.0, 2e-4),
    "sigmoid": (
        lambda x: x.sigmoid(),
        lambda x: 1 / (1 + np.exp(-x)),
        lambda rng, n: rng.uniform(-50, 50, n),
        4.0,
        1e-4,
    ),
    "tanh": (lambda x: x.tanh(), np.tanh, lambda rng, n: rng.uniform(-25, 25, n), 6.0, 1e-4),
}


def run(suite: str, method: Method, x: np.ndarray) -> np.ndarray:
    p = smc.ProgramBuilder(["a", "b", "c"], frac_bits=FRAC_BITS)
    p.output("y", method(p.input("a", "x", shape=x.shape)), to="a")
    out: np.ndarray = smc.simulate(p.build(), {"a": {"x": x}}, suite=suite)["a"]["y"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="points per function (default 20000)")
    args = ap.parse_args()
    rng = np.random.default_rng(11)  # test points, not secret
    print(
        f"{args.n} points per function, frac_bits={FRAC_BITS}, against float64 on the encoded input"
    )
    head = ("function", "domain", "suite", "|f| <= 1: max err (ulp)", "|f| > 1: max rel err")
    print(f"{head[0]:<11} {head[1]:<22} {head[2]:<9} {head[3]:>24} {head[4]:>21}")
    for name, (method, ref_fn, sampler, abs_bound, rel_bound) in CASES.items():
        x = sampler(rng, args.n)
        ref = ref_fn(np.rint(x * 2**FRAC_BITS) / 2**FRAC_BITS)
        domain = f"[{x.min():.3g}, {x.max():.3g}]"
        small = np.abs(ref) <= 1
        for suite in ("rss3", "additive"):
            err = np.abs(run(suite, method, x) - ref)
            worst = float(np.max(err[small], initial=0.0)) / ULP
            rel = float(np.max(err[~small] / np.abs(ref[~small]), initial=0.0))
            shown = f"{rel:.2e}" if (~small).any() else "-"
            print(f"{name:<11} {domain:<22} {suite:<9} {worst:>24.2f} {shown:>21}")
            assert worst <= abs_bound, f"{name} ({suite}): {worst} ulp > {abs_bound}"
            assert rel <= rel_bound, f"{name} ({suite}): relative error {rel} > {rel_bound}"
    print("all results match their plaintext references within the stated bounds")


if __name__ == "__main__":
    main()
