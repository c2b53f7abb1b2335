"""smc: secure multi-party computation over secret-shared Z_2^64 arithmetic.

Safe API: build a program with :class:`ProgramBuilder` and numpy-like :class:`SecureArray`
operators, run it locally with :func:`simulate`, or through a hub and party daemons with
:class:`Client`. Everything under ``smc.protocols``, ``smc.kernels``, ``smc.prg`` and
``smc.ring`` is hazmat.

Names are imported lazily (PEP 562), so that ``import smc.hub`` loads neither numpy nor the
share arithmetic: the hub only routes opaque bytes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smc.alloc import tune_allocator
    from smc.api import (
        ProgramBuilder,
        SecureArray,
        concatenate,
        dot,
        matmul,
        maximum,
        median,
        minimum,
        quantile,
        relu,
        softmax,
        sort,
        sort_by_key,
        stack,
        top_k,
        where,
    )
    from smc.config import FixedPointConfig, SessionConfig
    from smc.errors import (
        ConfigError,
        EncodingError,
        InputError,
        ProgramError,
        ProtocolError,
        SmcError,
        TransportError,
    )
    from smc.ir import Program
    from smc.runtime import SimulationResult, simulate
    from smc.transport import NetemConfig

_WHERE = {
    **dict.fromkeys(
        [
            "ProgramBuilder",
            "SecureArray",
            "concatenate",
            "dot",
            "matmul",
            "maximum",
            "median",
            "minimum",
            "quantile",
            "relu",
            "softmax",
            "sort",
            "sort_by_key",
            "stack",
            "top_k",
            "where",
        ],
        "smc.api",
    ),
    "FixedPointConfig": "smc.config",
    "SessionConfig": "smc.config",
    **dict.fromkeys(
        [
            "ConfigError",
            "EncodingError",
            "InputError",
            "ProgramError",
            "ProtocolError",
            "SmcError",
            "TransportError",
        ],
        "smc.errors",
    ),
    "Program": "smc.ir",
    "Client": "smc.party.client",
    "SimulationResult": "smc.runtime",
    "simulate": "smc.runtime",
    "NetemConfig": "smc.transport",
    "tune_allocator": "smc.alloc",
}

__all__ = [
    "Client",
    "ConfigError",
    "EncodingError",
    "FixedPointConfig",
    "InputError",
    "NetemConfig",
    "Program",
    "ProgramBuilder",
    "ProgramError",
    "ProtocolError",
    "SecureArray",
    "SessionConfig",
    "SimulationResult",
    "SmcError",
    "TransportError",
    "concatenate",
    "dot",
    "matmul",
    "maximum",
    "median",
    "minimum",
    "quantile",
    "relu",
    "simulate",
    "softmax",
    "sort",
    "sort_by_key",
    "stack",
    "top_k",
    "tune_allocator",
    "where",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'smc' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
