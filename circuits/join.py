"""Joins across parties (vertical partition): two owners hold different facts about the same
people, keyed by identifiers.

The left and right parties each hold a list of distinct integer identifiers (0 <= id < 2^40);
one of them also holds a value column. Together they learn the size of the intersection of the
two identifier sets and the count, sum and mean of the value column over the rows whose
identifier the other party also holds. Only these aggregates are opened: not the intersection,
not which rows matched.

What the sizes leak: the program's shapes are public, so every party (and the hub) learns how
many identifiers each side submitted; the recipients learn the opened aggregates, and so, for
instance, that the intersection is empty when ``size`` is 0.

Two methods (docs/circuits/join.md):

* ``"sort"`` (default, for large inputs): concatenate both lists with a payload (the value, or 0
  for the rows of the party without values, and a 0/1 side tag), sort obliviously by identifier
  (bitonic network), then test adjacent rows for equality: n + m - 1 equality tests after
  O((n+m) log^2(n+m)) comparisons. Adjacent equal identifiers from the same side reveal a
  duplicate: their number is computed inside and folded into ``valid``.
* ``"pairs"``: the n x m matrix of equality tests. Fewer rounds, n*m comparisons: fine to about
  10^3 x 10^3. Trusts the distinctness precondition (no duplicate check).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import smc
from smc.errors import ProgramError

from .base import BuiltProgram
from .blocks import all_of, divide_by_count, gate, secret_const, settle
from .cost import program_cost

JOIN_STATS = ("size", "count", "sum", "mean")
ID_LIMIT = 2**40


@dataclass(frozen=True)
class JoinSpec:
    """``stats``: any of size, count (the number of matched rows with a value: equal to size),
    sum, mean. ``value_side``: "left" or "right", the party whose column is aggregated.
    ``min_size``: release only if the intersection has at least this many identifiers.
    ``value_bound`` bounds |value| (sizes the division's fixed-point scaling, at most 2^13)."""

    stats: tuple[str, ...] = ("size",)
    value_side: str = "right"
    method: str = "sort"
    min_size: int = 0
    value_bound: float = 1000.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.stats) - set(JOIN_STATS))
        if unknown or not self.stats:
            raise ProgramError(f"join statistics must be among {list(JOIN_STATS)}: {unknown}")
        if self.value_side not in ("left", "right"):
            raise ProgramError("value_side must be 'left' or 'right'")
        if self.method not in ("sort", "pairs"):
            raise ProgramError("method must be 'sort' or 'pairs'")
        if not 0 < self.value_bound <= 2**13:
            raise ProgramError("value_bound must be in (0, 2^13]")

    @property
    def needs_values(self) -> bool:
        return bool({"sum", "mean"} & set(self.stats))


def build_join(
    left: str,
    right: str,
    n_left: int,
    n_right: int,
    spec: JoinSpec,
    parties: Sequence[str] | None = None,
    to: str | Sequence[str] | None = None,
    frac_bits: int = 16,
) -> BuiltProgram:
    """Program joining ``left``'s ``ids`` (n_left,) with ``right``'s ``ids`` (n_right,); the
    ``value_side`` party also binds ``values`` (fixed point). ``parties``: every computing party
    (default: left and right; rss3 needs a third). Outputs: the statistics and ``valid``."""
    if n_left < 1 or n_right < 1 or left == right:
        raise ProgramError("a join needs two different parties with at least one id each")
    b = smc.ProgramBuilder(list(parties or (left, right)), frac_bits)
    ids_l = b.input(left, "ids", n_left, "int")
    ids_r = b.input(right, "ids", n_right, "int")
    values = None
    if spec.needs_values:
        owner, rows = (left, n_left) if spec.value_side == "left" else (right, n_right)
        values = b.input(owner, "values", rows)
    if spec.method == "pairs":
        size, total, rules = _pairs(spec, ids_l, ids_r, values)
    else:
        size, total, rules = _sorted(spec, ids_l, ids_r, values)
    if "mean" in spec.stats or spec.min_size > 0:
        rules.append(size >= max(1 if "mean" in spec.stats else 0, spec.min_size))
    valid = all_of(rules) if rules else b.const(1)
    results: dict[str, smc.SecureArray] = {}
    for name in spec.stats:
        if name in ("size", "count"):
            results[name] = size
        elif name == "sum" and total is not None:
            results[name] = total
        elif name == "mean" and total is not None:
            results[name] = divide_by_count(total, size, min(n_left, n_right), spec.value_bound)
    for name, value in results.items():
        b.output(name, gate(valid, value) if valid.secret else value, to=to)
    b.output("valid", valid, to=to)
    return BuiltProgram.of(b.build(), "join", n_left=n_left, n_right=n_right, spec=spec)


def _pairs(
    spec: JoinSpec, ids_l: smc.SecureArray, ids_r: smc.SecureArray, values: smc.SecureArray | None
) -> tuple[smc.SecureArray, smc.SecureArray | None, list[smc.SecureArray]]:
    equal = ids_l.reshape(-1, 1) == ids_r.reshape(1, -1)  # (n, m) 0/1
    size = equal.sum()
    total = None
    if values is not None:
        matched = equal.sum(axis=1) if spec.value_side == "left" else equal.sum(axis=0)
        total = settle(matched @ values)
    return size, total, []


def _sorted(
    spec: JoinSpec, ids_l: smc.SecureArray, ids_r: smc.SecureArray, values: smc.SecureArray | None
) -> tuple[smc.SecureArray, smc.SecureArray | None, list[smc.SecureArray]]:
    n, m = ids_l.size, ids_r.size
    tags = secret_const(ids_l, np.r_[np.zeros(n, np.int64), np.ones(m, np.int64)])
    keys = smc.concatenate([ids_l, ids_r])
    columns = [tags]
    if values is not None:
        pad = secret_const(values, np.zeros(m if spec.value_side == "left" else n))
        side = [values, pad] if spec.value_side == "left" else [pad, values]
        columns = [tags.to_fixed(), smc.concatenate(side)]
        keys = keys.to_fixed()
    sorted_keys, rows = smc.sort_by_key(keys, smc.stack(columns, axis=1))
    equal = sorted_keys[:-1] == sorted_keys[1:]  # (n + m - 1,) 0/1
    size = equal.sum()
    t = rows[:, 0]
    # side tags differ (t XOR t') for a true match, agree for a duplicate within one list
    differ = t[:-1] + t[1:] - t[:-1] * t[1:] * 2
    matches = settle(equal @ differ)
    rules = [matches == size]
    total = None
    if values is not None:
        v = rows[:, 1]
        total = settle(equal @ (v[:-1] + v[1:]))  # exactly one of a matched pair carries the value
    return size, total, rules


# ------------------------------------------------------------------------------ reference


def reference_join(
    left_ids: Any,
    right_ids: Any,
    spec: JoinSpec,
    values: Any = None,
) -> dict[str, Any]:
    """Plaintext join; ``values`` belongs to the ``spec.value_side`` party."""
    left = np.asarray(left_ids, dtype=np.int64)
    right = np.asarray(right_ids, dtype=np.int64)
    if np.any(left < 0) or np.any(right < 0) or max(left.max(), right.max()) >= ID_LIMIT:
        raise ValueError("identifiers must lie in [0, 2^40)")
    distinct = len(np.unique(left)) == left.size and len(np.unique(right)) == right.size
    common = np.intersect1d(left, right)
    size = int(common.size)
    total = 0.0
    if spec.needs_values:
        own = left if spec.value_side == "left" else right
        other = right if spec.value_side == "left" else left
        v = np.asarray(values, dtype=np.float64)
        total = float(v[np.isin(own, other)].sum())
    valid = (distinct or spec.method == "pairs") and size >= max(
        1 if "mean" in spec.stats else 0, spec.min_size
    )
    out: dict[str, Any] = {"valid": int(valid)}
    for name in spec.stats:
        value = {"size": size, "count": size, "sum": total}.get(name)
        if name == "mean":
            value = total / size if size else 0.0
        out[name] = value if valid else 0
    return out


def cost_join(
    n_left: int,
    n_right: int,
    spec: JoinSpec,
    parties: Sequence[str] = ("left", "right", "helper"),
    suite: str | None = None,
    to: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Declared rounds and bytes per party of :func:`build_join` for these sizes (the first
    two ``parties`` hold the identifiers)."""
    built = build_join(parties[0], parties[1], n_left, n_right, spec, parties, to)
    return program_cost(built.program, suite)
