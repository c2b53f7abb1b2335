"""Elections: invalid ballots are excluded and only counted; tallies and winners are right.

Plurality and approval ballots agree with a plaintext count, ballots that are not one-hot (or
exceed the approval limit, or hold entries other than 0/1) are excluded, and ballots crafted to
wrap around 2^64 (possible for voters submitting shares) are caught as invalid too.
"""

from __future__ import annotations

import numpy as np
import pytest
from smc.circuits import ElectionSpec, build_election, client_shares, reference_election, run_local
from smc.circuits.cost import measured_cost, program_cost

from smc.errors import ProgramError

TALLIERS = ("city", "county", "observer")
COUNTS = {"city": 9, "county": 6, "observer": 5}


def ballots(kind: str, c: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = sum(COUNTS.values())
    b = (
        np.eye(c, dtype=np.int64)[rng.integers(0, c, n)]
        if kind == "plurality"
        else (rng.integers(0, 2, (n, c)))
    )
    b[0] = [1, 1] + [0] * (c - 2)  # two marks
    b[1] = 0  # blank
    b[2] = [2, -1] + [0] * (c - 2)  # sums to 1, not 0/1
    b[3, -1] = 7
    return b


def split(b: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    out, start = {}, 0
    for p, k in COUNTS.items():
        out[p] = {"ballots": b[start : start + k]}
        start += k
    return out


@pytest.mark.parametrize("kind", ["plurality", "approval"])
@pytest.mark.parametrize("reveal", ["tally", "winner", "both"])
def test_tally_winner_and_invalid_count(kind: str, reveal: str) -> None:
    spec = ElectionSpec(candidates=4, kind=kind, reveal=reveal, max_approvals=3)
    b = ballots(kind, 4, seed=len(kind) + len(reveal))
    built = build_election(COUNTS, spec)
    res = run_local(built, split(b))
    want = reference_election(b, spec)
    assert set(res.outputs) == set(want)
    for name, value in want.items():
        np.testing.assert_array_equal(res[name], value)
    assert want["invalid"] >= 3
    assert program_cost(built.program) == measured_cost(res.result)


def test_ties_go_to_the_lowest_candidate() -> None:
    spec = ElectionSpec(candidates=3, reveal="winner")
    b = np.eye(3, dtype=np.int64)[[2, 1, 2, 1, 0] * 4]
    assert int(run_local(build_election(COUNTS, spec), split(b))["winner"]) == 1


def test_wrapped_ballots_from_clients_are_invalid() -> None:
    spec = ElectionSpec(candidates=4, reveal="both")
    big = 2**62
    crafted = np.array(
        [
            [big, big, big, big + 1],  # sums to 1 modulo 2^64
            [-(2**63), 2**63 - 1, 1, 1],  # sums to 1 modulo 2^64
            [1, 0, 0, 0],
            [0, 0, 1, 0],
        ],
        dtype=np.int64,
    )
    built = build_election(4, spec, parties=TALLIERS)
    res = run_local(built, client_shares(crafted, "ballots", TALLIERS))
    assert int(res["invalid"]) == 2
    np.testing.assert_array_equal(res["tally"], [1, 0, 1, 0])


def test_spec_refusals() -> None:
    with pytest.raises(ProgramError):
        ElectionSpec(candidates=0)
    with pytest.raises(ProgramError):
        ElectionSpec(candidates=3, kind="ranked")
    with pytest.raises(ProgramError):
        ElectionSpec(candidates=3, kind="approval", max_approvals=4)
