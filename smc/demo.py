"""``smc demo``: three hospitals compute joint statistics without pooling their records.

Each hospital holds patient ages and treatment costs. Together they learn the number of
patients, the mean and variance of ages, the mean cost and the age-cost covariance across all
three hospitals; no hospital sees another's rows. The sample data is generated locally.
"""

from __future__ import annotations

import time

import numpy as np

import smc

HOSPITALS = ("st_mary", "city_general", "riverside")


def sample_data(rows: int, seed: int = 7) -> dict[str, dict[str, np.ndarray]]:
    """Synthetic, non-sensitive sample records (numpy's PRNG is fine for fake data)."""
    rng = np.random.default_rng(seed)
    data = {}
    for k, name in enumerate(HOSPITALS):
        ages = rng.integers(18, 95, size=rows).astype(np.float64)
        costs = np.round(200 + 40 * ages + rng.normal(0, 300 + 100 * k, size=rows), 2)
        data[name] = {"ages": ages, "costs_k": costs / 1000}
    return data


def build_program(rows: int) -> smc.Program:
    p = smc.ProgramBuilder(HOSPITALS)
    ages = smc.concatenate([p.input(h, "ages", shape=(rows,)) for h in HOSPITALS])
    costs = smc.concatenate([p.input(h, "costs_k", shape=(rows,)) for h in HOSPITALS])
    n = 3 * rows
    mean_age = ages.mean()
    centred = ages - mean_age
    p.output("patients", p.const(n), to=HOSPITALS[0])
    p.output("mean_age", mean_age, to=HOSPITALS[0])
    p.output("var_age", smc.dot(centred, centred) / n, to=HOSPITALS[0])
    p.output("mean_cost_k", costs.mean(), to=HOSPITALS[0])
    p.output("cov_age_cost", smc.dot(centred, costs - costs.mean()) / n, to=HOSPITALS[0])
    return p.build()


def run_demo(suite: str = "rss3", rows: int = 1000) -> int:
    data = sample_data(rows)
    program = build_program(rows)
    print(f"smc demo: {len(HOSPITALS)} hospitals x {rows} patients, suite {suite}")
    print(f"  {program.summary()}")
    t0 = time.perf_counter()
    result = smc.simulate(program, data, suite=suite)
    elapsed = time.perf_counter() - t0
    ages = np.concatenate([data[h]["ages"] for h in HOSPITALS])
    costs = np.concatenate([data[h]["costs_k"] for h in HOSPITALS])
    reference = {
        "patients": float(ages.size),
        "mean_age": ages.mean(),
        "var_age": ages.var(),
        "mean_cost_k": costs.mean(),
        "cov_age_cost": float(np.mean((ages - ages.mean()) * (costs - costs.mean()))),
    }
    print(f"  results revealed to {HOSPITALS[0]} only (others received nothing):")
    for name, ref in reference.items():
        got = float(result[HOSPITALS[0]][name])
        print(f"    {name:<14} {got:14.4f}   plaintext reference {ref:14.4f}")
    for other in HOSPITALS[1:]:
        assert not result[other], f"{other} must not receive outputs"
    print(
        f"  {elapsed * 1000:.1f} ms, {result.rounds} rounds, bytes sent per endpoint "
        f"{result.bytes_per_party}"
    )
    return 0
