"""Voting: plurality and approval ballots, each checked inside the computation.

A ballot is a row of integers, one per candidate. A plurality ballot is valid when it is one-hot
(every entry 0 or 1, exactly one 1); an approval ballot when every entry is 0 or 1 and at most
``max_approvals`` are 1. Invalid ballots are excluded from the tally and counted, without anyone
learning which ballots they were: only the number of invalid ballots is opened, with either the
tally, or only the winner (the first candidate with the highest tally: ties go to the lowest
candidate index), or both.

Checks are exact for any 64-bit entry, including values a malicious voter could submit as
client shares: [e >= 0] and [e <= 1] are sign tests on the ring value, so a ballot cannot pass by
wrapping around 2^64 (entry checks first, then the mark count, combined by a product: a check
that folded them into one comparison could be fooled by a wrapped sum). Cost per ballot of c
candidates: 2c + 3 sign tests (plurality) or 2c + 2 (approval), then one integer product for the
whole tally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import smc
from smc.errors import ProgramError

from .base import BuiltProgram
from .blocks import client_input
from .cost import program_cost

REVEALS = ("tally", "winner", "both")


@dataclass(frozen=True)
class ElectionSpec:
    """``kind``: "plurality" or "approval"; ``candidates``: number of candidates;
    ``max_approvals``: approval limit per ballot (default: every candidate);
    ``reveal``: "tally", "winner" or "both" (the invalid-ballot count is always opened)."""

    candidates: int
    kind: str = "plurality"
    max_approvals: int | None = None
    reveal: str = "tally"

    def __post_init__(self) -> None:
        if self.kind not in ("plurality", "approval"):
            raise ProgramError("election kind must be 'plurality' or 'approval'")
        if self.candidates < 1:
            raise ProgramError("an election needs at least one candidate")
        if self.reveal not in REVEALS:
            raise ProgramError(f"reveal must be one of {REVEALS}")
        if self.max_approvals is not None and not 1 <= self.max_approvals <= self.candidates:
            raise ProgramError("max_approvals must be in 1..candidates")


def build_election(
    ballots: Mapping[str, int] | int,
    spec: ElectionSpec,
    parties: Sequence[str] | None = None,
    to: str | Sequence[str] | None = None,
) -> BuiltProgram:
    """Program tallying ballots.

    ``ballots``: party -> number of ballots it submits (it binds ``ballots``, an int array of
    shape (count, candidates)), or a total number of ballots cast by voters as additive shares
    (every party binds ``ballots_hi`` and ``ballots_lo``; see
    :func:`~smc.circuits.blocks.client_shares`). Outputs: ``tally`` and/or ``winner``, and
    ``invalid``."""
    c = spec.candidates
    if isinstance(ballots, int):
        if parties is None:
            raise ProgramError("client-cast ballots need the list of computing parties")
        b = smc.ProgramBuilder(list(parties))
        rows = client_input(b, "ballots", (ballots, c))
    else:
        owners = [p for p, k in ballots.items() if k > 0]
        if not owners:
            raise ProgramError("an election needs at least one ballot")
        b = smc.ProgramBuilder(list(parties or ballots))
        rows = smc.concatenate([b.input(p, "ballots", (ballots[p], c), "int") for p in owners])
    valid = _validity(spec, rows)
    tally = valid @ rows  # (c,) integer counts of the valid ballots
    if spec.reveal in ("tally", "both"):
        b.output("tally", tally, to=to)
    if spec.reveal in ("winner", "both"):
        b.output("winner", tally.argmax(), to=to)
    b.output("invalid", rows.shape[0] - valid.sum(), to=to)
    return BuiltProgram.of(b.build(), "election", ballots=ballots, spec=spec)


def _validity(spec: ElectionSpec, rows: smc.SecureArray) -> smc.SecureArray:
    """1 for a valid ballot, 0 otherwise (per row)."""
    c = spec.candidates
    in_range = (rows >= 0).sum(axis=1) + (rows <= 1).sum(axis=1)  # 2c when every entry is 0/1
    marks = rows.sum(axis=1)
    entries_ok = in_range >= 2 * c
    limit = spec.max_approvals or c
    count_ok = marks == 1 if spec.kind == "plurality" else marks <= limit
    return entries_ok * count_ok


# ------------------------------------------------------------------------------ reference


def valid_ballots(spec: ElectionSpec, rows: np.ndarray) -> np.ndarray:
    """Per ballot: every entry 0 or 1, and one mark (plurality) or at most the limit."""
    entries = np.all((rows == 0) | (rows == 1), axis=1)
    marks = rows.sum(axis=1)
    if spec.kind == "plurality":
        return np.asarray(entries & (marks == 1))
    return np.asarray(entries & (marks <= (spec.max_approvals or spec.candidates)))


def reference_election(ballots: Any, spec: ElectionSpec) -> dict[str, Any]:
    """Plaintext tally with the same validity and tie rules."""
    rows = np.asarray(ballots, dtype=np.int64).reshape(-1, spec.candidates)
    ok = valid_ballots(spec, rows)
    tally = rows[ok].sum(axis=0) if ok.any() else np.zeros(spec.candidates, dtype=np.int64)
    out: dict[str, Any] = {"invalid": int((~ok).sum())}
    if spec.reveal in ("tally", "both"):
        out["tally"] = tally
    if spec.reveal in ("winner", "both"):
        out["winner"] = int(np.argmax(tally))
    return out


def cost_election(
    n_ballots: int,
    spec: ElectionSpec,
    parties: Sequence[str] = ("p0", "p1", "p2"),
    suite: str | None = None,
    to: str | Sequence[str] | None = None,
    client_ballots: bool = False,
) -> dict[str, Any]:
    """Declared rounds and bytes per party for ``n_ballots`` ballots spread over ``parties``
    (or cast by voters as shares, with ``client_ballots``)."""
    k = len(parties)
    share = {p: n_ballots // k + (i < n_ballots % k) for i, p in enumerate(parties)}
    ballots: Mapping[str, int] | int = n_ballots if client_ballots else share
    return program_cost(build_election(ballots, spec, parties, to).program, suite)
