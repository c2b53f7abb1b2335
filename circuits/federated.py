"""Secure aggregation of model updates: the weighted federated average.

Every contributor binds its model update (a flat fixed-point vector) and, with secret weights,
its weight (an integer such as its number of training rows). The recipients learn only the
weighted average sum_p w_p u_p / sum_p w_p, not any single update nor any single weight. With
``clip`` every coordinate of every update is first clipped to [-clip, clip] inside the
computation, which bounds any one contributor's influence.

Public weights (known to all, fixed in the program) cost one truncation per coordinate; secret
weights cost one integer product per coordinate and one division by the secret total
(:func:`~smc.circuits.blocks.divide_by_count`, about 4e-5 relative while the total is at most
2^16). ``valid`` is 0 (and the average zeros) when the total weight is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import smc
from smc.errors import ProgramError

from .base import BuiltProgram
from .blocks import divide_by_count, gate
from .cost import program_cost


@dataclass(frozen=True)
class FedAvgSpec:
    """``size``: length of every update; ``weights``: None for secret integer weights (each
    contributor binds ``weight``), or a mapping contributor -> public weight; ``clip``: bound on
    |u| per coordinate, or None; ``value_bound``: bound on |average| (at most 2^13);
    ``max_total_weight``: bound on the sum of secret weights."""

    size: int
    weights: Mapping[str, float] | None = None
    clip: float | None = None
    value_bound: float = 1000.0
    max_total_weight: int = 2**16

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ProgramError("updates need at least one coordinate")
        if self.weights is not None and (
            not self.weights or min(self.weights.values()) < 0 or sum(self.weights.values()) <= 0
        ):
            raise ProgramError("public weights must be non-negative with a positive sum")
        if self.clip is not None and not 0 < self.clip <= 2**13:
            raise ProgramError("clip must be in (0, 2^13]")


def build_federated_average(
    contributors: Sequence[str],
    spec: FedAvgSpec,
    parties: Sequence[str] | None = None,
    to: str | Sequence[str] | None = None,
    frac_bits: int = 16,
) -> BuiltProgram:
    """Each contributor binds ``update`` (size,) and, for secret weights, ``weight`` () (int).
    Outputs ``average`` (size,) and ``valid``."""
    if not contributors:
        raise ProgramError("federated averaging needs at least one contributor")
    b = smc.ProgramBuilder(list(parties or contributors), frac_bits)
    updates = []
    for p in contributors:
        u = b.input(p, "update", spec.size)
        if spec.clip is not None:
            u = smc.minimum(smc.maximum(u, -spec.clip), spec.clip)
        updates.append(u)
    if spec.weights is not None:
        total = float(sum(spec.weights[p] for p in contributors))
        parts = [u * (spec.weights[p] / total) for u, p in zip(updates, contributors, strict=True)]
        average = smc.stack(parts).sum(axis=0)
        b.output("average", average, to=to)
        b.output("valid", b.const(1), to=to)
    else:
        weights = [b.input(p, "weight", (), "int") for p in contributors]
        w = smc.stack(weights)  # (k,)
        numerator = w @ smc.stack(updates)  # (size,): integer weights times fixed point, exact
        count = w.sum()
        average = divide_by_count(numerator, count, spec.max_total_weight, spec.value_bound)
        valid = count >= 1
        b.output("average", gate(valid, average), to=to)
        b.output("valid", valid, to=to)
    return BuiltProgram.of(b.build(), "federated_average", spec=spec)


def reference_federated_average(
    updates: Mapping[str, Any], spec: FedAvgSpec, weights: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Plaintext weighted average (``weights``: the secret weights, when the spec has none)."""
    names = list(updates)
    u = np.stack([np.asarray(updates[p], dtype=np.float64) for p in names])
    if spec.clip is not None:
        u = np.clip(u, -spec.clip, spec.clip)
    given = spec.weights if spec.weights is not None else weights
    if given is None:
        raise ValueError("secret weights must be given to the reference")
    w = np.array([float(given[p]) for p in names])
    if w.sum() <= 0:
        return {"average": np.zeros(spec.size), "valid": 0}
    return {"average": w @ u / w.sum(), "valid": 1}


def cost_federated_average(
    contributors: Sequence[str],
    spec: FedAvgSpec,
    parties: Sequence[str] | None = None,
    suite: str | None = None,
    to: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Declared rounds and bytes per party of :func:`build_federated_average`."""
    return program_cost(build_federated_average(contributors, spec, parties, to).program, suite)
