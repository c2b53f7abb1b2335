"""Shared helpers for the tests: party names and a one-call simulation wrapper."""

from __future__ import annotations

from collections.abc import Callable
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
