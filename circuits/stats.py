"""Statistics over rows held by several parties (horizontal partition).

Every party holds some rows of the same columns. Together they learn count, sum, mean,
variance, standard deviation, a histogram over public bin edges, min, max, median, quantiles
and the top k values of one column, optionally over the rows that pass a filter on other
columns, and only if a minimum-contributors rule holds. Nothing else is revealed: not the rows,
not which rows passed the filter, not how many rows each party contributed to it.

The rule is evaluated inside the computation: ``valid`` = (at least ``min_contributors`` parties
have at least one row passing the filter) and (at least ``min_count`` rows pass in total). Every
statistic is multiplied by ``valid`` before it is opened, so when the rule fails the recipients
learn only ``valid = 0`` and zeros.

Methods (docs/circuits/stats.md): sums are exact (integer 0/1 masks times fixed point need no
truncation); the mean divides by the secret count with a scaled reciprocal
(:func:`~smc.circuits.blocks.divide_by_count`); the variance is two-pass (sum of squared
deviations from the secure mean); the histogram is one comparison per row and edge and one
integer matrix product; min and max are one tournament; quantiles and top-k sort the column once
(masked rows moved to the front) and pick quantile positions with public comparisons against the
secret count.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import smc
from smc.errors import ProgramError

from .base import BuiltProgram, Data
from .blocks import all_of, divide_by_count, divide_public, gate, positions, secret_const
from .cost import program_cost

STATISTICS = (
    "count",
    "sum",
    "mean",
    "var",
    "std",
    "min",
    "max",
    "median",
    "quantiles",
    "histogram",
    "top_k",
)
OPS: dict[str, Any] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
SENTINEL = 2.0**40  # masked rows: beyond every admissible value (|x| <= value_bound < 2^14)
POSITION_BITS = 30  # quantile positions are compared as integers scaled by 2^30


@dataclass(frozen=True)
class Predicate:
    """A filter ``column op value`` with op one of < <= > >= == != (exact comparisons on the
    fixed-point encoding of the column)."""

    column: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ProgramError(f"filter op {self.op!r} must be one of {list(OPS)}")


@dataclass(frozen=True)
class StatsSpec:
    """What to compute. ``bins`` are the public histogram edges (numpy.histogram semantics: the
    last bin includes its right edge); ``quantiles`` use numpy's linear interpolation; ``k`` is
    the size of top-k; ``value_bound`` bounds |x| (it sizes the fixed-point scaling of the
    divisions: keep it tight, at most 2^13)."""

    column: str = "value"
    stats: tuple[str, ...] = ("count", "sum", "mean", "var", "std")
    where: tuple[Predicate, ...] = ()
    bins: tuple[float, ...] = ()
    quantiles: tuple[float, ...] = ()
    k: int = 0
    ddof: int = 0
    min_contributors: int = 1
    min_count: int = 1
    value_bound: float = 1000.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.stats) - set(STATISTICS))
        if unknown:
            raise ProgramError(f"unknown statistics {unknown}; choose from {list(STATISTICS)}")
        if "histogram" in self.stats and (len(self.bins) < 2 or np.any(np.diff(self.bins) <= 0)):
            raise ProgramError("a histogram needs at least two strictly increasing bin edges")
        if "quantiles" in self.stats and (
            not self.quantiles or not all(0.0 <= q <= 1.0 for q in self.quantiles)
        ):
            raise ProgramError("quantiles must be a non-empty list of values in [0, 1]")
        if "top_k" in self.stats and self.k < 1:
            raise ProgramError("top_k needs k >= 1")
        if self.ddof not in (0, 1):
            raise ProgramError("ddof must be 0 or 1")
        if not 0 < self.value_bound <= 2**13:
            raise ProgramError("value_bound must be in (0, 2^13]: scale the column first")

    @property
    def filter_columns(self) -> list[str]:
        return list(dict.fromkeys(p.column for p in self.where if p.column != self.column))

    @property
    def columns(self) -> list[str]:
        return [self.column, *self.filter_columns]

    @property
    def needed_count(self) -> int:
        need = max(1, self.min_count)
        if {"var", "std"} & set(self.stats):
            need = max(need, 1 + self.ddof)
        return need

    @property
    def levels(self) -> tuple[float, ...]:
        """Quantile levels computed: the median first (if asked), then ``quantiles``."""
        return (0.5,) * ("median" in self.stats) + tuple(self.quantiles) * (
            "quantiles" in self.stats
        )


def build_stats(
    rows: Mapping[str, int],
    spec: StatsSpec,
    parties: Sequence[str] | None = None,
    to: str | Sequence[str] | None = None,
    frac_bits: int = 16,
) -> BuiltProgram:
    """Program computing ``spec`` over the rows of every party in ``rows`` (party -> number of
    rows it holds). ``parties`` are all computing parties (default: the keys of ``rows``; rss3
    needs exactly three); ``to`` receives the results (default: every party).

    Each data holder binds one ``(rows,)`` fixed-point array per column of ``spec.columns``.
    Outputs: every statistic asked for, ``valid``, and ``top_k_valid`` with top-k."""
    holders = [p for p, r in rows.items() if r > 0]
    if not holders:
        raise ProgramError("build_stats needs at least one party with rows")
    b = smc.ProgramBuilder(list(parties or rows), frac_bits)
    cols = {c: smc.concatenate([b.input(p, c, (rows[p],)) for p in holders]) for c in spec.columns}
    n = sum(rows[p] for p in holders)
    x = cols[spec.column]
    mask = _mask(spec, cols)
    if mask is None:  # every row counts: the rule depends on public sizes only
        count: smc.SecureArray = b.const(n)
        holds = len(holders) >= max(1, spec.min_contributors) and n >= spec.needed_count
        valid = b.const(int(holds))
    else:
        count = mask.sum()
        bounds = [int(v) for v in np.cumsum([0] + [rows[p] for p in holders])]
        per_party = [mask[lo:hi].sum() >= 1 for lo, hi in itertools.pairwise(bounds)]
        contributors = smc.stack(per_party).sum()
        valid = all_of([contributors >= max(1, spec.min_contributors), count >= spec.needed_count])
        holds = False  # unknown until run: gate every result
    out = _compute(b, spec, x, mask, count, n)
    for name, value in out.items():
        rule = valid
        if name == "top_k":
            rule = all_of([valid, count >= spec.k]) if mask is not None else valid
            b.output("top_k_valid", rule, to=to)
        b.output(name, value if holds else gate(rule, value), to=to)
    b.output("valid", valid, to=to)
    return BuiltProgram.of(b.build(), "stats", rows=dict(rows), spec=spec)


def _mask(spec: StatsSpec, cols: dict[str, smc.SecureArray]) -> smc.SecureArray | None:
    if not spec.where:
        return None
    tests = [OPS[p.op](cols[p.column], float(p.value)) for p in spec.where]
    return all_of(tests)


def _compute(
    b: smc.ProgramBuilder,
    spec: StatsSpec,
    x: smc.SecureArray,
    mask: smc.SecureArray | None,
    count: smc.SecureArray,
    n: int,
) -> dict[str, smc.SecureArray]:
    want = set(spec.stats)
    out: dict[str, smc.SecureArray] = {}
    bound = spec.value_bound
    xm = x * mask if mask is not None else x
    total = xm.sum()

    def per_row(v: smc.SecureArray, vbound: float, ddof: int = 0) -> smc.SecureArray:
        if mask is None:
            return divide_public(v, n - ddof)
        return divide_by_count(v, count - ddof, n, vbound)

    if "count" in want:
        out["count"] = count
    if "sum" in want:
        out["sum"] = total
    mean = per_row(total, bound) if want & {"mean", "var", "std"} else None
    if "mean" in want and mean is not None:
        out["mean"] = mean
    if want & {"var", "std"} and mean is not None:
        dev = x - mean
        if mask is not None:
            dev = dev * mask
        var = per_row((dev * dev).sum(), bound * bound, spec.ddof)
        if "var" in want:
            out["var"] = var
        if "std" in want:
            out["std"] = var.sqrt()
    if want & {"min", "max"}:
        both = smc.stack([x, -x])
        if mask is not None:
            both = smc.where(mask, both, SENTINEL)
        lo_hi = both.min(axis=1)
        if "min" in want:
            out["min"] = lo_hi[0]
        if "max" in want:
            out["max"] = -lo_hi[1]
    if "histogram" in want:
        out["histogram"] = _histogram(spec, x, mask)
    if spec.levels or "top_k" in want:
        out.update(_order_stats(b, spec, x, mask, count, n))
    return out


def _histogram(
    spec: StatsSpec, x: smc.SecureArray, mask: smc.SecureArray | None
) -> smc.SecureArray:
    """S_j = #(x >= e_j) for the inner edges and #(x > e_last); counts = S_j - S_(j+1)."""
    edges = np.asarray(spec.bins, dtype=np.float64)
    col = x.reshape(-1, 1)
    above = smc.concatenate([col >= edges[:-1].reshape(1, -1), col > float(edges[-1])], axis=1)
    s = mask @ above if mask is not None else above.sum(axis=0)
    return s[:-1] - s[1:]


def _order_stats(
    b: smc.ProgramBuilder,
    spec: StatsSpec,
    x: smc.SecureArray,
    mask: smc.SecureArray | None,
    count: smc.SecureArray,
    n: int,
) -> dict[str, smc.SecureArray]:
    """One ascending sort; rows failing the filter become -SENTINEL and sort to the front, so
    the passing rows occupy positions n - count .. n - 1."""
    key = x if mask is None else smc.where(mask, x, -SENTINEL)
    s = key.sort()
    out: dict[str, smc.SecureArray] = {}
    levels = spec.levels
    if levels:
        values = (
            _public_quantiles(s, levels, n)
            if mask is None
            else _secret_quantiles(b, s, levels, count, n)
        )
        k = 0
        if "median" in spec.stats:
            out["median"] = values[0]
            k = 1
        if "quantiles" in spec.stats:
            out["quantiles"] = values[k:]
    if "top_k" in spec.stats:
        if spec.k > n:
            raise ProgramError(f"top_k: k={spec.k} exceeds the {n} rows")
        out["top_k"] = s[n - spec.k :][::-1]
    return out


def _public_quantiles(s: smc.SecureArray, levels: Sequence[float], n: int) -> smc.SecureArray:
    picks = []
    for q in levels:
        pos = q * (n - 1)
        lo = math.floor(pos)
        frac = pos - lo
        picks.append(s[lo] if frac == 0.0 else s[lo] + (s[lo + 1] - s[lo]) * frac)
    return smc.stack(picks)


def _secret_quantiles(
    b: smc.ProgramBuilder,
    s: smc.SecureArray,
    levels: Sequence[float],
    count: smc.SecureArray,
    n: int,
) -> smc.SecureArray:
    """Position P = (n - count) + q (count - 1), scaled by 2^30 and compared, as integers, with
    every public position: lo = floor(P) and the interpolation weight come out exactly."""
    scale = 1 << POSITION_BITS
    qs = np.array([round(q * scale) for q in levels], dtype=np.int64)
    pos = (n - count) * scale + (count - 1) * qs  # (Q,) secret integers
    below = positions(b, n, scale).reshape(1, -1) <= pos.reshape(-1, 1)  # (Q, n)
    zeros = secret_const(below, np.zeros((len(levels), 1), dtype=np.int64))
    onehot = below - smc.concatenate([below[:, 1:], zeros], axis=1)
    lo = below.sum(axis=1) - 1
    pair = onehot @ smc.stack([s, smc.concatenate([s[1:], s[-1:]])], axis=1)  # (Q, 2)
    frac = (pos - lo * scale).to_fixed() * 2.0**-POSITION_BITS
    return pair[:, 0] + (pair[:, 1] - pair[:, 0]) * frac


# ------------------------------------------------------------------------------ reference


def reference_stats(data: Data, spec: StatsSpec) -> dict[str, Any]:
    """The same statistics in plaintext float64 numpy (with the same validity rule)."""
    holders = [p for p in data if np.size(data[p][spec.column])]
    x = np.concatenate([np.asarray(data[p][spec.column], dtype=np.float64) for p in holders])
    passing = []
    for p in holders:
        m = np.ones(np.size(data[p][spec.column]), dtype=bool)
        for pred in spec.where:
            col = np.asarray(data[p][pred.column], dtype=np.float64)
            m &= _np_cmp(col, pred.op, pred.value)
        passing.append(m)
    mask = np.concatenate(passing)
    xs = x[mask]
    count = int(mask.sum())
    contributors = sum(int(m.any()) for m in passing)
    valid = int(contributors >= max(1, spec.min_contributors) and count >= spec.needed_count)
    want = set(spec.stats)
    out: dict[str, Any] = {}
    if "count" in want:
        out["count"] = count
    if "sum" in want:
        out["sum"] = float(xs.sum())
    if valid:
        if "mean" in want:
            out["mean"] = float(xs.mean())
        if "var" in want:
            out["var"] = float(xs.var(ddof=spec.ddof))
        if "std" in want:
            out["std"] = float(xs.std(ddof=spec.ddof))
        if "min" in want:
            out["min"] = float(xs.min())
        if "max" in want:
            out["max"] = float(xs.max())
        if "median" in want:
            out["median"] = float(np.median(xs))
        if "quantiles" in want:
            out["quantiles"] = np.quantile(xs, spec.quantiles)
    if "histogram" in want:
        out["histogram"] = np.histogram(xs, bins=np.asarray(spec.bins))[0]
    if "top_k" in want:
        ok = valid and count >= spec.k
        out["top_k_valid"] = int(ok)
        out["top_k"] = np.sort(xs)[::-1][: spec.k] if ok else np.zeros(spec.k)
    for name in STATISTICS:
        if name in want and name not in out:
            out[name] = np.zeros(len(spec.quantiles)) if name == "quantiles" else 0.0
    if not valid:
        for name in ("count", "sum", "histogram"):
            if name in out:
                out[name] = np.zeros_like(out[name]) if name == "histogram" else 0
    out["valid"] = valid
    return out


def _np_cmp(col: np.ndarray, op: str, value: float) -> np.ndarray:
    return np.asarray(OPS[op](col, value), dtype=bool)


def cost_stats(
    rows: Mapping[str, int],
    spec: StatsSpec,
    parties: Sequence[str] | None = None,
    suite: str | None = None,
    to: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Declared rounds and bytes per party of :func:`build_stats` for these sizes."""
    return program_cost(build_stats(rows, spec, parties, to).program, suite)
