"""Sealed-bid auctions reveal only the winner and the price, and both are right.

Every kind (first price, Vickrey, reverse, with and without a reserve) agrees with a plaintext
auction on random bids, including ties (lowest bidder index wins), invalid bids (outside
[0, max_bid], never winning, never setting the price) and bids submitted as client shares.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smc.circuits import AuctionSpec, build_auction, client_shares, reference_auction, run_local
from smc.circuits.auction import cost_auction
from smc.circuits.cost import measured_cost, program_cost

from smc.errors import ProgramError

SELLERS = ("house_a", "house_b", "house_c")
COUNTS = {"house_a": 4, "house_b": 3, "house_c": 5}


def split(bids: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    out, start = {}, 0
    for p, c in COUNTS.items():
        out[p] = {"bids": bids[start : start + c]}
        start += c
    return out


KINDS = list(itertools.product(["first", "second"], [False, True], [None, 40]))


@pytest.mark.parametrize(("kind", "reverse", "reserve"), KINDS)
def test_every_kind_with_ties_and_invalid_bids(
    kind: str, reverse: bool, reserve: int | None
) -> None:
    spec = AuctionSpec(kind=kind, reverse=reverse, max_bid=100, reserve=reserve)
    built = build_auction(COUNTS, spec)
    bids = np.array([55, 70, -3, 70, 101, 12, 55, 12, 99, 400, 30, 12])
    res = run_local(built, split(bids))
    assert {k: int(v) for k, v in res.outputs.items()} == reference_auction(bids, spec)
    assert program_cost(built.program) == measured_cost(res.result)


def test_all_equal_bids_go_to_the_first_bidder() -> None:
    for spec in (AuctionSpec(kind="second"), AuctionSpec(kind="first", reverse=True)):
        res = run_local(build_auction(COUNTS, spec), split(np.full(12, 7)))
        assert (int(res["winner"]), int(res["price"])) == (0, 7)


def test_nothing_valid_or_nothing_above_the_reserve_leaves_the_item_unsold() -> None:
    spec = AuctionSpec(kind="second", max_bid=50, reserve=20)
    built = build_auction(COUNTS, spec)
    for bids in (np.full(12, 60), np.arange(12)):
        res = run_local(built, split(bids))
        assert (int(res["winner"]), int(res["price"])) == (-1, 0)


def test_client_submitted_bids_are_never_seen_by_a_party() -> None:
    spec = AuctionSpec(kind="second", max_bid=10**6)
    built = build_auction(9, spec, parties=SELLERS)
    assert built.input_names("house_b") == ["bids_hi", "bids_lo"]
    bids = np.array([500, 120_000, 3, 999_999, 120_000, 7, 2**40, -5, 64])
    res = run_local(built, client_shares(bids, "bids", SELLERS))
    assert {k: int(v) for k, v in res.outputs.items()} == reference_auction(bids, spec)


@settings(max_examples=8, deadline=None)
@given(
    bids=st.lists(st.integers(-5, 60), min_size=12, max_size=12),
    kind=st.sampled_from(["first", "second"]),
    reverse=st.booleans(),
)
def test_random_auctions(bids: list[int], kind: str, reverse: bool) -> None:
    spec = AuctionSpec(kind=kind, reverse=reverse, max_bid=50)
    res = run_local(build_auction(COUNTS, spec), split(np.array(bids)))
    assert {k: int(v) for k, v in res.outputs.items()} == reference_auction(bids, spec)


def test_declared_cost_and_refusals() -> None:
    small, big = cost_auction(10, AuctionSpec()), cost_auction(1000, AuctionSpec())
    assert big["rounds"] > small["rounds"]
    assert cost_auction(1000, AuctionSpec(kind="second"))["rounds"] > big["rounds"]
    with pytest.raises(ProgramError):
        AuctionSpec(kind="dutch")
    with pytest.raises(ProgramError):
        AuctionSpec(max_bid=10, reserve=11)
