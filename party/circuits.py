"""Library circuits a policy may allow by name.

A manifest may say that its program is the library circuit ``name`` built with ``params``. The
party rebuilds that program locally, from code it already has, and accepts the name only if the
rebuilt program's hash equals the hash of the program it received. Nothing received is executed:
the name selects one of the builders of :mod:`smc.circuits.registry` (``"stats"``,
``"auction.vickrey"``, ``"voting.plurality"``, ``"join.intersection_size"``,
``"ml.linear_regression"``, ...) or the demo's ``hospital_stats``; the parameters are plain
JSON values, checked by the builder (an unknown or mistyped parameter is refused).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from smc.circuits import registry

from smc.api import build_budget
from smc.errors import SmcError
from smc.ir import Program

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}(\.[a-z][a-z0-9_]{0,63}){0,3}$")


def _hospital_stats(rows: int) -> Program:
    from smc.party.demo import build_program

    program: Program = build_program(int(rows))
    return program


BUILTIN: dict[str, Callable[..., Program]] = {"hospital_stats": _hospital_stats}


class CircuitError(ValueError):
    """A circuit name that is unknown or whose rebuild does not match the program."""


def _short(params: dict[str, Any], limit: int = 200) -> str:
    text = repr(params)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def known() -> list[str]:
    """Every circuit name this party can verify."""
    return sorted([*BUILTIN, *registry.CIRCUITS])


def rebuild(name: str, params: dict[str, Any]) -> Program:
    """The program of circuit ``name`` with ``params``, built here."""
    if not isinstance(name, str) or not NAME.match(name):
        raise CircuitError(f"{name!r} is not a circuit name")
    if name not in BUILTIN and name not in registry.CIRCUITS:
        raise CircuitError(
            f"unknown circuit {name!r}: not a circuit name this party knows ({', '.join(known())})"
        )
    try:
        if name in BUILTIN:
            return BUILTIN[name](**params)
        built: Program = registry.build(name, params).program
        return built
    except (TypeError, ValueError, KeyError, SmcError) as exc:
        raise CircuitError(
            f"circuit {name!r} cannot be built with {_short(params)}: {exc}"
        ) from None


def verify(name: str, params: dict[str, Any], program: Program) -> str:
    """``name`` when building it with ``params`` gives exactly ``program``; raises otherwise.

    The rebuild may create no more nodes and constant elements than ``program`` has (it must
    equal it): parameters claimed only to make this party build a huge program are refused
    as soon as the rebuild passes those counts."""
    consts = sum(math.prod(n.shape) for n in program.nodes if n.op == "const")
    with build_budget(len(program.nodes), consts):
        rebuilt = rebuild(name, params)
    if rebuilt.hash != program.hash:
        raise CircuitError(
            f"program {program.hash[:12]}… is not circuit {name!r} with {_short(params)} "
            f"(which hashes to {rebuilt.hash[:12]}…)"
        )
    return name
