"""smc: secure multi-party computation over secret-shared Z_2^64 arithmetic.

Safe API: build a program with :class:`ProgramBuilder` and numpy-like :class:`SecureArray`
operators, run it locally with :func:`simulate`. Everything under ``smc.protocols``,
``smc.kernels``, ``smc.prg`` and ``smc.ring`` is hazmat.
"""

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

__all__ = [
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
    "where",
]
__version__ = "0.1.0"
