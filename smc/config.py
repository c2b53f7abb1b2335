"""The one frozen configuration every party of a session must agree on.

Everything that changes the meaning of a share (suite, ring, fractional bits, the party list, the
program hash, the engine version) lives here and is hashed into :attr:`SessionConfig.digest`.
Every frame the executor sends carries 32 bits of the digest, so a peer whose configuration
differs is refused on its first frame.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from smc.errors import ConfigError

ENGINE_VERSION = "0.1"
SUITES = ("rss3", "additive")
DEALER = "dealer"


@dataclass(frozen=True)
class FixedPointConfig:
    """Signed fixed point in Z_2^64: a real x is stored as round(x * 2^frac_bits).

    The trade-off between precision and range is set here and only here:

    * resolution (one ulp) is 2^-frac_bits;
    * a single encoded value must satisfy |x| < 2^(62 - frac_bits)   (:attr:`max_value`);
    * the product of two fixed-point values is truncated exactly (up to one ulp of stochastic
      rounding, failure probability 0) when |x*y| < 2^(62 - 2*frac_bits)  (:attr:`max_product`).
      Outside that range a secret product wraps and the result is garbage; the engine cannot see
      secret values, so keeping products in range is the program author's contract.
    """

    frac_bits: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.frac_bits <= 30:
            raise ConfigError(
                f"frac_bits={self.frac_bits} is outside [0, 30]: with a 64-bit ring, products of "
                "two fixed-point values need 2*frac_bits bits plus integer headroom below 2^62"
            )

    @property
    def scale(self) -> int:
        return 1 << self.frac_bits

    @property
    def ulp(self) -> float:
        return 2.0**-self.frac_bits

    @property
    def max_value(self) -> float:
        """Exclusive bound on |x| for any encoded value (inputs and public constants)."""
        return float(2 ** (62 - self.frac_bits))

    @property
    def max_product(self) -> float:
        """Exclusive bound on |x*y| for a fixed-point product to be truncated correctly."""
        return float(2 ** (62 - 2 * self.frac_bits))


@dataclass(frozen=True)
class SessionConfig:
    """What all parties of one session agree on. Immutable; compare with :attr:`digest`."""

    suite: str
    parties: tuple[str, ...]
    fixed: FixedPointConfig = field(default_factory=FixedPointConfig)
    program_hash: str = ""
    session_id: str = ""
    version: str = ENGINE_VERSION

    def __post_init__(self) -> None:
        if self.suite not in SUITES:
            raise ConfigError(f"unknown suite {self.suite!r}: choose one of {list(SUITES)}")
        if len(set(self.parties)) != len(self.parties):
            raise ConfigError(f"party names must be unique, got {list(self.parties)}")
        if DEALER in self.parties:
            raise ConfigError(f"{DEALER!r} is reserved for the additive suite's dealer role")
        if self.suite == "rss3" and len(self.parties) != 3:
            raise ConfigError(f"suite 'rss3' needs exactly 3 parties, got {len(self.parties)}")
        if self.suite == "additive" and len(self.parties) < 2:
            raise ConfigError(f"suite 'additive' needs at least 2 parties, got {len(self.parties)}")

    @property
    def n(self) -> int:
        return len(self.parties)

    @property
    def has_dealer(self) -> bool:
        return self.suite == "additive"

    @property
    def digest(self) -> str:
        """Canonical SHA-256 over every field (sorted-key JSON, no whitespace)."""
        blob = json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def index(self, party: str) -> int:
        try:
            return self.parties.index(party)
        except ValueError:
            raise ConfigError(
                f"party {party!r} is not in this session: {list(self.parties)}"
            ) from None


def default_suite(n_parties: int) -> str:
    """rss3 for three parties (no dealer, honest majority); additive otherwise."""
    return "rss3" if n_parties == 3 else "additive"
