"""Exception types. Every error the engine raises on purpose is one of these."""

from __future__ import annotations


class SmcError(Exception):
    """Base class of every error smc raises on purpose."""


class ConfigError(SmcError, ValueError):
    """A session or fixed-point configuration that cannot work."""


class EncodingError(SmcError, ValueError):
    """A value that cannot be represented (out of the fixed-point range, NaN, wrong type)."""


class ProgramError(SmcError, ValueError):
    """A malformed program: shape or dtype mismatch, unknown party, bad output binding."""


class InputError(SmcError, ValueError):
    """Party inputs that do not match the program (missing, extra, wrong shape)."""


class ProtocolError(SmcError):
    """A peer sent something the protocol did not expect (wrong size, wrong round, bad frame)."""


class TransportError(SmcError):
    """A peer is unreachable, vanished mid-computation, or a receive timed out."""
