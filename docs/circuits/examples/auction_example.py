"""A Vickrey auction with 60 bidders who submit their bids as additive shares, so none of the
three auction houses ever sees a bid. Run: python docs/circuits/examples/auction_example.py
"""

from __future__ import annotations

import numpy as np
from smc.circuits import AuctionSpec, build_auction, client_shares, reference_auction, run_local

HOUSES = ("house_a", "house_b", "house_c")
spec = AuctionSpec(kind="second", max_bid=10**7, reserve=50_000)  # bids in cents
built = build_auction(60, spec, parties=HOUSES, to=None)
print("each house binds:", built.input_names("house_a"))

rng = np.random.default_rng(11)
bids = rng.integers(10_000, 2_000_000, 60)
bids[[7, 31]] = bids.max() + 1  # a tie at the top: bidder 7 (the lower index) wins
bids[40] = -1  # an invalid bid: never wins, never sets the price, never revealed

# each bidder splits its bid into three shares on its own machine
data = client_shares(bids, "bids", HOUSES)
result = run_local(built, data)
want = reference_auction(bids, spec)
print("winner", int(result["winner"]), "pays", int(result["price"]), "| numpy:", want)
assert int(result["winner"]) == want["winner"] == 7
assert int(result["price"]) == want["price"] == bids[31]  # the tied second bid
for kind, reverse in (("first", False), ("first", True), ("second", True)):
    other = AuctionSpec(kind=kind, reverse=reverse, max_bid=10**7)
    got = run_local(build_auction(60, other, parties=HOUSES), data)
    assert {k: int(v) for k, v in got.outputs.items()} == reference_auction(bids, other)
print("all auction outcomes match the plaintext auction")
