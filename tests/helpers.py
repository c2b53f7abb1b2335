"""Shared helpers for the tests: party names and a one-call simulation wrapper."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import smc

ULP = 2.0**-16


def parties(n: int) -> list[str]:
    return [f"p{i}" for i in range(n)]


def run(
    suite: str,
    n: int,
    build: Callable[[smc.ProgramBuilder, list[smc.SecureArray]], smc.SecureArray],
    arrays: list[np.ndarray],
    dtypes: list[str] | None = None,
    frac_bits: int = 16,
) -> tuple[np.ndarray, smc.SimulationResult]:
    """Give input k to party k % n, build the program, open the result to party 0."""
    names = parties(n)
    p = smc.ProgramBuilder(names, frac_bits=frac_bits)
    dtypes = dtypes or ["fixed"] * len(arrays)
    handles = [
        p.input(names[k % n], f"x{k}", shape=np.shape(a), dtype=dtypes[k])
        for k, a in enumerate(arrays)
    ]
    p.output("out", build(p, handles), to=names[0])
    inputs: dict[str, dict[str, Any]] = {}
    for k, a in enumerate(arrays):
        inputs.setdefault(names[k % n], {})[f"x{k}"] = a
    res = smc.simulate(p.build(), inputs, suite=suite)
    return res[names[0]]["out"], res


def fixed(values: Any, frac_bits: int = 16) -> np.ndarray:
    """What a value becomes after fixed-point encoding (round to nearest ulp)."""
    return np.rint(np.asarray(values, dtype=np.float64) * 2.0**frac_bits) / 2.0**frac_bits


def normal_upper_quantile(p: float) -> float:
    """z with P(N(0,1) > z) = p (bisection on erfc; no scipy needed)."""
    lo, hi = 0.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(mid / math.sqrt(2)) > p:
            lo = mid
        else:
            hi = mid
    return hi


def chi2_critical(dof: int, p: float) -> float:
    """Upper-tail critical value of chi-square (Wilson-Hilferty; accurate to <1% for dof >= 30)."""
    z = normal_upper_quantile(p)
    c = 2.0 / (9.0 * dof)
    return dof * (1.0 - c + z * math.sqrt(c)) ** 3


def hub_state_bytes(root: Path) -> bytes:
    """Everything the hub keeps on disk under ``root``: the database files and result files."""
    files = [p for p in sorted(root.glob("hub.db*")) if p.is_file()]
    files += sorted(p for p in (root / "hub.db.results").rglob("*") if p.is_file())
    return b"".join(p.read_bytes() for p in files)


def chain_program(parties: tuple[str, ...], rows: int, steps: int) -> smc.Program:
    """Many dependent rounds (a product, then ``steps`` scalings): long enough to interrupt.
    Reads column ``visits.cost`` of the first two parties."""
    p = smc.ProgramBuilder(parties)
    x = p.input(parties[0], "visits.cost", shape=(rows,)) * p.input(
        parties[1], "visits.cost", shape=(rows,)
    )
    for _ in range(steps):
        x = x * 0.99
    p.output("x", x.sum(), to=parties[0])
    return p.build()
