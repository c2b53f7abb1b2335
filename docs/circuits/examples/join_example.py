"""A bank and an insurer learn how many customers they share and the insurer's mean claim over
those shared customers, and nothing else. Run: python docs/circuits/examples/join_example.py
"""

from __future__ import annotations

import numpy as np
from smc.circuits import JoinSpec, build_join, cost_join, reference_join, run_local
from smc.circuits.cost import measured_cost

PARTIES = ("bank", "insurer", "auditor")  # rss3: the auditor computes, holds no data
N_BANK, N_INSURER = 300, 200

spec = JoinSpec(stats=("size", "sum", "mean"), value_side="right", method="sort", min_size=10)
built = build_join("bank", "insurer", N_BANK, N_INSURER, spec, PARTIES)
print("binds:", {p: built.input_names(p) for p in PARTIES})

rng = np.random.default_rng(3)
customers = rng.choice(2**40, 420, replace=False)  # identifiers below 2^40, distinct per list
bank_ids = rng.permutation(customers[:N_BANK])
insurer_ids = rng.permutation(customers[-N_INSURER:])  # 80 in common
claims = np.round(rng.uniform(100, 900, N_INSURER) * 64) / 64
data = {"bank": {"ids": bank_ids}, "insurer": {"ids": insurer_ids, "values": claims}}

result = run_local(built, data)
want = reference_join(bank_ids, insurer_ids, spec, claims)
print("secure:", {k: float(v) for k, v in result.outputs.items()})
print("numpy: ", want)
assert int(result["size"]) == want["size"] == 80
assert float(result["sum"]) == want["sum"]
assert abs(result["mean"] - want["mean"]) <= 1e-4 * want["mean"]
assert cost_join(N_BANK, N_INSURER, spec, PARTIES) == measured_cost(result.result)
pairs = cost_join(N_BANK, N_INSURER, JoinSpec(stats=spec.stats, method="pairs"), PARTIES)
print(f"sort method: {measured_cost(result.result)['rounds']} rounds; pairs: {pairs['rounds']}")
print("all join aggregates match numpy and the declared cost matches the measured one")
