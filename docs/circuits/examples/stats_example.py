"""Three hospitals compute statistics of treatment costs over their patients aged 65 or more,
released only if all three hospitals have such patients.

Run: python docs/circuits/examples/stats_example.py
"""

from __future__ import annotations

import numpy as np
from smc.circuits import Predicate, StatsSpec, build_stats, cost_stats, reference_stats, run_local
from smc.circuits.cost import measured_cost

HOSPITALS = ("st_mary", "city_general", "riverside")
ROWS = {"st_mary": 120, "city_general": 80, "riverside": 100}

# 1. Build: the same program goes to every hospital (or through a hub to their daemons).
spec = StatsSpec(
    column="cost_k",  # treatment cost in thousands
    stats=("count", "mean", "std", "median", "histogram", "top_k"),
    where=(Predicate("age", ">=", 65),),
    bins=(0.0, 5.0, 10.0, 20.0, 50.0),
    k=3,
    min_contributors=3,
)
built = build_stats(ROWS, spec, to="st_mary")
print("each hospital binds:", {p: built.input_names(p) for p in HOSPITALS})

# 2. Bind: every hospital supplies its own columns (synthetic, non-sensitive sample data).
rng = np.random.default_rng(7)
data = {
    p: {
        "cost_k": np.round(rng.gamma(2.0, 4.0, r) * 64) / 64,
        "age": rng.integers(18, 95, r).astype(np.float64),
    }
    for p, r in ROWS.items()
}

# 3. Run in simulation and compare with plaintext numpy.
result = run_local(built, data)
want = reference_stats(data, spec)
for name in ("valid", "count", "mean", "std", "median", "histogram", "top_k"):
    print(f"{name:>9}: secure {result[name]}  numpy {want[name]}")
assert int(result["valid"]) == want["valid"] == 1
assert int(result["count"]) == want["count"]
assert abs(result["mean"] - want["mean"]) <= 1e-4 * want["mean"] + 2.0**-14
assert abs(result["std"] - want["std"]) <= 2e-4 * want["std"] + 2.0**-10
assert float(result["median"]) == want["median"]
np.testing.assert_array_equal(result["histogram"], want["histogram"])
np.testing.assert_array_equal(result["top_k"], want["top_k"])

# 4. Cost: declared (from the engine's per-operation costs) equals measured.
declared = cost_stats(ROWS, spec, to="st_mary")
print("declared", declared["rounds"], "rounds,", declared["bytes_per_party"], "bytes/party")
assert declared == measured_cost(result.result)
print("all statistics match numpy and the declared cost matches the measured one")
