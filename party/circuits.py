"""Library circuits a policy may allow by name.

A manifest may say that its program is the library circuit ``name`` built with ``params``. The
party rebuilds that program locally, from code it already has, and accepts the name only if the
rebuilt program's hash equals the hash of the program it received. Nothing received is executed:
the name selects one of the builders below, the parameters are plain JSON values.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from smc.errors import SmcError
from smc.ir import Program

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _hospital_stats(rows: int) -> Program:
    from smc.demo import build_program

    return build_program(int(rows))


BUILTIN: dict[str, Callable[..., Program]] = {"hospital_stats": _hospital_stats}


class CircuitError(ValueError):
    """A circuit name that is unknown or whose rebuild does not match the program."""


def builder(name: str) -> Callable[..., Program]:
    if not NAME.match(name):
        raise CircuitError(f"{name!r} is not a circuit name")
    if name in BUILTIN:
        return BUILTIN[name]
    try:
        module = importlib.import_module(f"smc.circuits.{name}")
    except ImportError:
        raise CircuitError(f"unknown circuit {name!r}") from None
    build = getattr(module, "build", None)
    if not callable(build):
        raise CircuitError(f"circuit module {name!r} has no build() function")
    return build  # type: ignore[no-any-return]


def verify(name: str, params: dict[str, Any], program: Program) -> str:
    """``name`` when building it with ``params`` gives exactly ``program``; raises otherwise."""
    try:
        rebuilt = builder(name)(**params)
    except (TypeError, ValueError, SmcError) as exc:
        raise CircuitError(f"circuit {name!r} cannot be built with {params}: {exc}") from None
    if rebuilt.hash != program.hash:
        raise CircuitError(
            f"program {program.hash[:12]}… is not circuit {name!r} with {params} "
            f"(which hashes to {rebuilt.hash[:12]}…)"
        )
    return name
