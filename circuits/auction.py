"""Sealed-bid auctions: first-price, second-price (Vickrey) and reverse (procurement).

Bids are secret integers (for instance cents). Only the winner (its bidder index) and the
clearing price are opened; losing bids never are, nor is the winning bid in a second-price
auction (only the price it pays, the second bid).

Tie rule: the lowest bidder index wins among equal best bids (bidders are numbered in the order
of ``bidders``: the first party's bids first). Bid validity is checked inside: a bid outside
[0, max_bid] never wins and never sets the price (nobody learns it was invalid). A public
``reserve`` (a minimum price, or for a reverse auction a maximum acceptable price) may leave the
item unsold: then ``winner`` is -1 and ``price`` is 0.

Method (docs/circuits/auction.md): every bid becomes the unique key s * 2^k + (2^k - 1 - i)
with s the bid (minus the bid in a reverse auction, a value below every valid s for an invalid
bid) and i the bidder index (k index bits), so one max tournament finds the best bid and breaks
ties by index. A second-price auction takes a second max over the keys below the best one.
The winning keys are decomposed into bits once, which yields the index and the bid exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import smc
from smc.errors import ProgramError

from .base import BuiltProgram
from .blocks import client_input, positions, settle
from .cost import program_cost

KINDS = ("first", "second")


@dataclass(frozen=True)
class AuctionSpec:
    """``kind``: "first" (pay your bid) or "second" (Vickrey: pay the second-best bid);
    ``reverse``: the lowest bid wins (procurement); ``max_bid``: bids are valid in
    [0, max_bid]; ``reserve``: minimum price (forward) or maximum price (reverse), or None."""

    kind: str = "first"
    reverse: bool = False
    max_bid: int = 2**30
    reserve: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ProgramError(f"auction kind must be one of {KINDS}")
        if not 0 < self.max_bid < 2**40:
            raise ProgramError("max_bid must be in (0, 2^40)")
        if self.reserve is not None and not 0 <= self.reserve <= self.max_bid:
            raise ProgramError("reserve must lie in [0, max_bid]")


def index_bits(n: int) -> int:
    return max(2, (n - 1).bit_length())


def build_auction(
    bidders: Mapping[str, int] | int,
    spec: AuctionSpec,
    parties: Sequence[str] | None = None,
    to: str | Sequence[str] | None = None,
) -> BuiltProgram:
    """Program running a sealed-bid auction.

    ``bidders``: either party -> number of bids it submits (each binds ``bids``, an int array),
    or a total number of bids submitted by clients as additive shares (every party binds
    ``bids_hi`` and ``bids_lo``: see :func:`~smc.circuits.blocks.client_shares`; then no party
    sees any bid). Outputs: ``winner`` (global bidder index or -1) and ``price``."""
    if isinstance(bidders, int):
        if parties is None:
            raise ProgramError("client-submitted bids need the list of computing parties")
        b = smc.ProgramBuilder(list(parties))
        bids = client_input(b, "bids", (bidders,))
    else:
        owners = [p for p, c in bidders.items() if c > 0]
        if not owners:
            raise ProgramError("an auction needs at least one bid")
        b = smc.ProgramBuilder(list(parties or bidders))
        bids = smc.concatenate([b.input(p, "bids", (bidders[p],), "int") for p in owners])
    winner, price = _auction(b, spec, bids)
    b.output("winner", winner, to=to)
    b.output("price", price, to=to)
    return BuiltProgram.of(b.build(), "auction", bidders=bidders, spec=spec)


def _auction(
    b: smc.ProgramBuilder, spec: AuctionSpec, bids: smc.SecureArray
) -> tuple[smc.SecureArray, smc.SecureArray]:
    n = bids.size
    k = index_bits(n)
    top = 1 << k
    if (spec.max_bid + 2) * top >= 2**60:
        raise ProgramError(f"max_bid * 2^{k} must stay below 2^60 for {n} bids")
    ok = (bids >= 0) * (bids <= spec.max_bid)
    score = -bids if spec.reverse else bids
    invalid = -(spec.max_bid + 1)
    keys = smc.where(ok, score, invalid) * top + (positions(b, n) * -1 + (top - 1))
    best = keys.max()
    found = [best]
    if spec.kind == "second":
        floor = (invalid - 1) * top
        found.append(smc.where(keys < best, keys, floor).max())
    bits = smc.stack(found).bits()  # (1 or 2, 64), two's complement, lsb first
    low = bits[:, :k] @ (1 << np.arange(k, dtype=np.int64))
    weights = np.r_[1 << np.arange(63 - k, dtype=np.int64), -(1 << (63 - k))]
    high = bits[:, k:] @ weights  # arithmetic shift right by k: the score
    index = (top - 1) - low[0]
    s1 = high[0]
    if spec.reverse:
        limit = spec.max_bid if spec.reserve is None else spec.reserve
        sold = s1 >= -limit  # valid and within the maximum price
        price = -s1 if spec.kind == "first" else settle(smc.minimum(-high[1], limit))
    else:
        limit = 0 if spec.reserve is None else spec.reserve
        sold = s1 >= limit
        price = s1 if spec.kind == "first" else settle(smc.maximum(high[1], limit))
    return smc.where(sold, index, -1), smc.where(sold, price, 0)


# ------------------------------------------------------------------------------ reference


def reference_auction(bids: Any, spec: AuctionSpec) -> dict[str, int]:
    """Plaintext auction with the same validity, tie and reserve rules."""
    arr = np.asarray(bids, dtype=np.int64).ravel()
    ok = (arr >= 0) & (arr <= spec.max_bid)
    idx = np.flatnonzero(ok)
    if not idx.size:
        return {"winner": -1, "price": 0}
    vals = arr[idx]
    best = vals.min() if spec.reverse else vals.max()
    winner = int(idx[np.flatnonzero(vals == best)[0]])
    if spec.reverse:
        limit = spec.max_bid if spec.reserve is None else spec.reserve
        if best > limit:
            return {"winner": -1, "price": 0}
        rest = np.delete(arr, winner)[np.delete(ok, winner)]
        second = int(rest.min()) if rest.size else limit
        price = int(best) if spec.kind == "first" else min(second, limit)
    else:
        limit = 0 if spec.reserve is None else spec.reserve
        if best < limit:
            return {"winner": -1, "price": 0}
        rest = np.delete(arr, winner)[np.delete(ok, winner)]
        second = int(rest.max()) if rest.size else limit
        price = int(best) if spec.kind == "first" else max(second, limit)
    return {"winner": winner, "price": price}


def cost_auction(
    n_bids: int,
    spec: AuctionSpec,
    parties: Sequence[str] = ("p0", "p1", "p2"),
    suite: str | None = None,
    to: str | Sequence[str] | None = None,
    client_bids: bool = False,
) -> dict[str, Any]:
    """Declared rounds and bytes per party for ``n_bids`` bids spread over ``parties`` (or
    submitted by clients as shares, with ``client_bids``)."""
    k = len(parties)
    share = {p: n_bids // k + (i < n_bids % k) for i, p in enumerate(parties)}
    bidders: Mapping[str, int] | int = n_bids if client_bids else share
    return program_cost(build_auction(bidders, spec, parties, to).program, suite)
