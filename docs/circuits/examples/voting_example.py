"""An approval vote over 5 candidates: ballots are checked inside MPC, invalid ones are excluded
and only counted. Run: python docs/circuits/examples/voting_example.py
"""

from __future__ import annotations

import numpy as np
from smc.circuits import ElectionSpec, build_election, reference_election, run_local

PRECINCTS = {"north": 40, "south": 35, "east": 25}
spec = ElectionSpec(candidates=5, kind="approval", max_approvals=2, reveal="both")
built = build_election(PRECINCTS, spec)

rng = np.random.default_rng(2)
ballots = {}
for p, n in PRECINCTS.items():
    b = np.zeros((n, 5), dtype=np.int64)
    for row in b:
        row[rng.choice(5, rng.integers(0, 3), replace=False)] = 1
    ballots[p] = b
ballots["north"][0] = [1, 1, 1, 0, 0]  # three approvals: over the limit
ballots["south"][3] = [0, 2, 0, 0, 0]  # not 0/1
data = {p: {"ballots": b} for p, b in ballots.items()}

result = run_local(built, data)
want = reference_election(np.concatenate(list(ballots.values())), spec)
print("tally", result["tally"], "winner", int(result["winner"]), "invalid", int(result["invalid"]))
np.testing.assert_array_equal(result["tally"], want["tally"])
assert int(result["winner"]) == want["winner"]
assert int(result["invalid"]) == want["invalid"] == 2

winner_only = build_election(
    PRECINCTS, ElectionSpec(candidates=5, kind="approval", max_approvals=2, reveal="winner")
)
assert set(winner_only.outputs) == {"winner", "invalid"}  # the tally is never opened
assert int(run_local(winner_only, data)["winner"]) == want["winner"]
print("all election results match the plaintext count")
