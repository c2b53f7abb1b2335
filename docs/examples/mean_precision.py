"""How precise is a secure mean? Division by a public count, for several counts.

Run: ``python docs/examples/mean_precision.py``.

``x.mean()`` is ``x.sum() * c`` with the public constant c = 1/n. A small constant would lose
relative precision in fixed point (1/3000 at 16 fractional bits is 22 ulps instead of 21.8, a
0.7% error), so smc encodes public multipliers below 1/2 with extra fractional bits
(``smc.encoding.extra_bits``) and truncates the product by frac_bits + extra. The script
prints, per count n: the extra bits, the relative error of the encoded reciprocal, and the
measured error of the secure mean against the plaintext mean of the encoded inputs; it asserts
the bound |S| * |C - 1/n| + 1 ulp, where S is the encoded sum and C the encoded reciprocal.
"""

from __future__ import annotations

import numpy as np

import smc
from smc.encoding import extra_bits

FRAC_BITS = 16
ULP = 2.0**-FRAC_BITS


def secure_mean(values: np.ndarray, suite: str, two_steps: bool = False) -> float:
    p = smc.ProgramBuilder(["a", "b", "c"], frac_bits=FRAC_BITS)
    x = p.input("a", "x", shape=values.shape)
    p.output("mean", x.sum() / 1000 / (values.size // 1000) if two_steps else x.mean(), to="a")
    result = smc.simulate(p.build(), {"a": {"x": values}}, suite=suite)
    return float(result["a"]["mean"])


def main() -> None:
    rng = np.random.default_rng(7)  # test data, not secret
    print(f"mean of n values in [0, 100), frac_bits={FRAC_BITS} (1 ulp = {ULP:.3g})")
    print(
        f"{'n':>9} {'extra':>5} {'rel. err of 1/n':>16} {'rss3 err (ulp)':>15} "
        f"{'additive err (ulp)':>19} {'bound (ulp)':>12}"
    )
    for n in (10, 1000, 3000, 100_000, 1_000_000):
        values = rng.uniform(0, 100, n)
        encoded = np.rint(values * 2**FRAC_BITS) / 2**FRAC_BITS
        exact = float(np.sum(encoded)) / n  # sum of encoded values is exact in float64 here
        e = extra_bits(np.array(1.0 / n), FRAC_BITS)
        recip = np.rint(2.0 ** (FRAC_BITS + e) / n) / 2.0 ** (FRAC_BITS + e)
        bound = float(np.sum(encoded)) * abs(recip - 1.0 / n) / ULP + 1.0
        errs = []
        for suite in ("rss3", "additive"):
            err = abs(secure_mean(values, suite) - exact) / ULP
            assert err <= bound * (1 + 1e-9), f"{suite}: mean of {n} off by {err} ulp > {bound}"
            errs.append(err)
        print(
            f"{n:>9} {e:>5} {abs(recip * n - 1):>16.2e} {errs[0]:>15.2f} {errs[1]:>19.2f} "
            f"{bound:>12.2f}"
        )
    # Past the cap, divide in two steps that each stay within it: 1/1000 then 1/1000.
    values = rng.uniform(0, 100, 1_000_000)
    exact = float(np.sum(np.rint(values * 2**FRAC_BITS) / 2**FRAC_BITS)) / values.size
    for suite in ("rss3", "additive"):
        rel = abs(secure_mean(values, suite, two_steps=True) - exact) / exact
        print(f"n = 1,000,000 as x.sum() / 1000 / 1000 ({suite}): relative error {rel:.1e}")
        assert rel < 2e-5
    print("all results match their plaintext references within the stated bound")


if __name__ == "__main__":
    main()
