"""``smc demo``: three hospitals compute together without pooling their records.

Each hospital holds patient ages and treatment costs, one sealed bid and its staff's ballots.
Together they learn

1. joint statistics: the number of patients, the mean and variance of ages, the mean cost and
   the age-cost covariance across all three hospitals (no hospital sees another's rows);
2. a sealed-bid second-price (Vickrey) auction for a shared resource, in which a private clinic
   bids too as an *input-only* party (it sends its bid as additive shares and computes
   nothing): only the winner and the price are revealed, never a losing bid;
3. a plurality election among the staff of all three hospitals: ballots are checked inside the
   computation, invalid ones are excluded (only their number is revealed), and only the tally
   is opened.

The auction and the election are library circuits (:mod:`smc.circuits.registry`), allowed in
the owners' policies *by name*: each daemon rebuilds the program from the circuit's name and
parameters and compares hashes. The sample data is generated locally.

``smc demo`` starts a real deployment on this machine (a hub and one daemon per hospital and for
the clinic, each holding its files and its policy) and runs the computations as an analyst;
``smc demo --local`` runs the same programs in the in-process simulation.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

import smc
from smc import ProgramBuilder

HOSPITALS = ("st_mary", "city_general", "riverside")
CLINIC = "lakeside_clinic"  # an input-only bidder in the auction
CANDIDATES = ("aurora", "meridian", "helix", "kestrel")  # the staff elect a shared EHR vendor
STAFF = 40  # ballots per hospital
MAX_BID = 100_000


def sample_data(rows: int, seed: int = 7) -> dict[str, dict[str, np.ndarray]]:
    """Synthetic, non-sensitive sample records (numpy's PRNG is fine for fake data)."""
    rng = np.random.default_rng(seed)
    data = {}
    for k, name in enumerate(HOSPITALS):
        ages = rng.integers(18, 95, size=rows).astype(np.float64)
        costs = np.round(200 + 40 * ages + rng.normal(0, 300 + 100 * k, size=rows), 2)
        data[name] = {"ages": ages, "costs_k": costs / 1000}
    return data


def sample_bids(seed: int = 7) -> dict[str, int]:
    """One sealed bid (in euros) per hospital and one from the clinic, in auction order."""
    rng = np.random.default_rng(seed + 1)
    return {name: int(rng.integers(40, 80)) * 100 for name in (*HOSPITALS, CLINIC)}


def sample_ballots(seed: int = 7) -> dict[str, np.ndarray]:
    """STAFF one-hot ballots per hospital, a few of them invalid (blank or two marks)."""
    rng = np.random.default_rng(seed + 2)
    out = {}
    for name in HOSPITALS:
        choice = rng.choice(len(CANDIDATES), size=STAFF, p=[0.2, 0.35, 0.3, 0.15])
        ballots = np.eye(len(CANDIDATES), dtype=np.int64)[choice]
        ballots[rng.integers(0, STAFF)] = 0  # a blank ballot
        ballots[rng.integers(0, STAFF), :2] = 1  # two marks
        out[name] = ballots
    return out


def build_program(rows: int) -> smc.Program:
    p = smc.ProgramBuilder(HOSPITALS)
    ages = smc.concatenate([p.input(h, "ages", shape=(rows,)) for h in HOSPITALS])
    costs = smc.concatenate([p.input(h, "costs_k", shape=(rows,)) for h in HOSPITALS])
    n = 3 * rows
    mean_age = ages.mean()
    centred = ages - mean_age
    p.output("patients", p.const(n), to=HOSPITALS[0])
    p.output("mean_age", mean_age, to=HOSPITALS[0])
    p.output("var_age", smc.dot(centred, centred) / n, to=HOSPITALS[0])
    p.output("mean_cost_k", costs.mean(), to=HOSPITALS[0])
    p.output("cov_age_cost", smc.dot(centred, costs - costs.mean()) / n, to=HOSPITALS[0])
    return p.build()


AUCTION = "auction.vickrey"
AUCTION_PARAMS: dict[str, Any] = {
    "parties": list(HOSPITALS),
    "bidders": {h: 1 for h in HOSPITALS},  # each hospital's bid comes from its own dataset
    "input_only": [CLINIC],  # the clinic's bid arrives as shares (input bid_<clinic>)
    "max_bid": MAX_BID,
    "to": HOSPITALS[0],
}
ELECTION = "voting.plurality"
ELECTION_PARAMS: dict[str, Any] = {
    "parties": list(HOSPITALS),
    "ballots": {h: STAFF for h in HOSPITALS},
    "candidates": len(CANDIDATES),
    "reveal": "tally",
    "to": HOSPITALS[0],
}


def _references() -> tuple[dict[str, Any], dict[str, Any]]:
    from smc.circuits import AuctionSpec, ElectionSpec, reference_auction, reference_election

    bids, ballots = sample_bids(), sample_ballots()
    auction = reference_auction(list(bids.values()), AuctionSpec("second", max_bid=MAX_BID))
    rows = np.concatenate([ballots[h] for h in HOSPITALS])
    election = reference_election(rows, ElectionSpec(len(CANDIDATES)))
    return auction, election


def _row(name: str, got: Any, ref: Any) -> None:
    g, r = np.asarray(got).item(), np.asarray(ref).item()
    if float(g).is_integer() and float(r).is_integer():
        print(f"       {name:<14} {int(g):14d}   plaintext reference {int(r):14d}")
    else:
        print(f"       {name:<14} {float(g):14.4f}   plaintext reference {float(r):14.4f}")


def _print_auction(got: dict[str, np.ndarray], ref: dict[str, Any]) -> None:
    for name in ("winner", "price"):
        _row(name, got[name], ref[name])
    bidders = [*HOSPITALS, CLINIC]
    winner = int(got["winner"])
    who = bidders[winner] if 0 <= winner < len(bidders) else "nobody"
    print(
        f"     {who} wins and pays {int(got['price'])} (the second-highest bid); "
        "no losing bid was revealed"
    )


def _print_election(got: dict[str, np.ndarray], ref: dict[str, Any]) -> None:
    for k, name in enumerate(CANDIDATES):
        _row(f"votes:{name}", got["tally"][k], ref["tally"][k])
    _row("invalid", got["invalid"], ref["invalid"])
    print(
        f"     the staff chose {CANDIDATES[int(np.argmax(got['tally']))]}; invalid ballots were "
        "excluded without revealing whose"
    )


def run_demo(suite: str = "rss3", rows: int = 1000) -> int:
    from smc.circuits import client_shares, registry, run_local

    data = sample_data(rows)
    program = build_program(rows)
    print(f"smc demo: {len(HOSPITALS)} hospitals x {rows} patients, suite {suite}")
    print(f"  {program.summary()}")
    t0 = time.perf_counter()
    result = smc.simulate(program, data, suite=suite)
    elapsed = time.perf_counter() - t0
    ages = np.concatenate([data[h]["ages"] for h in HOSPITALS])
    costs = np.concatenate([data[h]["costs_k"] for h in HOSPITALS])
    reference = {
        "patients": float(ages.size),
        "mean_age": ages.mean(),
        "var_age": ages.var(),
        "mean_cost_k": costs.mean(),
        "cov_age_cost": float(np.mean((ages - ages.mean()) * (costs - costs.mean()))),
    }
    print(f"  results revealed to {HOSPITALS[0]} only (others received nothing):")
    for name, ref in reference.items():
        got = float(result[HOSPITALS[0]][name])
        print(f"    {name:<14} {got:14.4f}   plaintext reference {ref:14.4f}")
    for other in HOSPITALS[1:]:
        assert not result[other], f"{other} must not receive outputs"
    print(
        f"  {elapsed * 1000:.1f} ms, {result.rounds} rounds, bytes sent per endpoint "
        f"{result.bytes_per_party}"
    )
    auction_ref, election_ref = _references()
    bids = sample_bids()
    auction = registry.build(AUCTION, AUCTION_PARAMS)
    binding: dict[str, dict[str, Any]] = {h: {"bids": np.array([bids[h]])} for h in HOSPITALS}
    shares = client_shares(np.array([bids[CLINIC]]), f"bid_{CLINIC}", HOSPITALS)
    for h in HOSPITALS:
        binding[h].update(shares[h])
    res = run_local(auction, binding, suite)
    print(f"  sealed-bid auction ({AUCTION}, {CLINIC} bidding as shares), {res.rounds} rounds:")
    _print_auction(res.outputs, auction_ref)
    ballots = sample_ballots()
    election = registry.build(ELECTION, ELECTION_PARAMS)
    res = run_local(election, {h: {"ballots": ballots[h]} for h in HOSPITALS}, suite)
    print(f"  staff election ({ELECTION}), {res.rounds} rounds:")
    _print_election(res.outputs, election_ref)
    return 0


# ------------------------------------------------------------------------------------ deployed


def write_datasets(root: Path, data: dict[str, dict[str, np.ndarray]]) -> None:
    """Per hospital: patients (age, cost_k), its sealed bid and its staff's ballots; the
    clinic's bid. CSV files, as a data owner would have them."""
    for name, cols in data.items():
        lines = ["age,cost_k"] + [
            f"{a:.0f},{c:.5f}" for a, c in zip(cols["ages"], cols["costs_k"], strict=True)
        ]
        (root / f"{name}_patients.csv").write_text("\n".join(lines) + "\n")
    for name, bid in sample_bids().items():
        (root / f"{name}_bid.csv").write_text(f"amount\n{bid}\n")
    for name, ballots in sample_ballots().items():
        lines = [",".join(CANDIDATES)] + [",".join(map(str, row)) for row in ballots]
        (root / f"{name}_ballots.csv").write_text("\n".join(lines) + "\n")


def _policy(circuit: str) -> dict[str, object]:
    return {"circuits": [circuit], "recipients": [HOSPITALS[0], "analyst"], "min_parties": 3}


def _datasets(name: str, rows: int) -> dict[str, dict[str, object]]:
    bid: dict[str, object] = {
        "path": f"{name}_bid.csv",
        "columns": {"amount": "int"},
        "policy": _policy(AUCTION),
    }
    if name == CLINIC:
        return {"bid": bid}
    return {
        "patients": {
            "path": f"{name}_patients.csv",
            "format": "csv",
            "rows": rows,
            "columns": {"age": "fixed", "cost_k": "fixed"},
            "policy": _policy("hospital_stats"),
        },
        "bid": bid,
        "ballots": {
            "path": f"{name}_ballots.csv",
            "rows": STAFF,
            "columns": {c: "int" for c in CANDIDATES},
            "policy": _policy(ELECTION),
        },
    }


def run_deployed_demo(suite: str = "rss3", rows: int = 1000, keep: str | None = None) -> int:
    """Start a hub, three hospital daemons and the clinic's daemon (plus a dealer for
    'additive') as real processes on this machine, and run computations through them as an
    analyst would."""
    import tempfile

    from smc.circuits import registry
    from smc.party import TaskFailed
    from smc.party.audit import verify
    from smc.party.launch import LocalDeployment

    tmp = None if keep else tempfile.TemporaryDirectory(prefix="smc-demo-")
    root = Path(keep) if keep else Path(tmp.name)  # type: ignore[union-attr]
    root.mkdir(parents=True, exist_ok=True)
    data = sample_data(rows)
    write_datasets(root, data)
    dealer = "dealer" if suite == "additive" else None
    owners = (*HOSPITALS, CLINIC)
    dep = LocalDeployment(root, {h: _datasets(h, rows) for h in owners}, dealer=dealer)
    t0 = time.perf_counter()
    print(
        f"smc demo: hub + {len(HOSPITALS)} hospital daemons + 1 input-only bidder"
        f"{' + dealer' if dealer else ''} on this machine (mTLS, OS-chosen ports), "
        f"{rows} patients each, suite {suite}"
    )
    try:
        dep.start()
        print(
            f"  deployment up in {time.perf_counter() - t0:.1f} s: hub at {dep.hub_address}, "
            f"keys and configs in {root}"
        )
        bindings = {
            h: {"ages": ("patients", ("age",)), "costs_k": ("patients", ("cost_k",))}
            for h in HOSPITALS
        }
        program = build_program(rows)
        common: dict[str, Any] = {"suite": suite, "dealer": dealer or "", "deadline_s": 60}
        with dep.client("analyst") as client:
            for p in client.parties():
                print(
                    f"  registered: {p.name:<15} {p.role:<6} {p.endpoint or 'relay only':<16} "
                    f"{', '.join(p.datasets)}"
                )
            print(f"  1) joint statistics, {program.summary()[:60]}…")
            res = client.run(
                program,
                bindings=bindings,
                circuit=("hospital_stats", {"rows": rows}),
                **common,
            )
            _print_stats(data, res[HOSPITALS[0]], res.seconds, len(res.events))
            print(
                "  2) the same through the hub relay (end-to-end encrypted: the hub sees "
                "ciphertext)"
            )
            res = client.run(
                program,
                bindings=bindings,
                circuit=("hospital_stats", {"rows": rows}),
                data_plane="relay",
                **common,
            )
            print(
                f"     mean_age {float(res[HOSPITALS[0]]['mean_age']):.4f} "
                f"in {res.seconds * 1000:.0f} ms"
            )
            auction_ref, election_ref = _references()
            auction = registry.build(AUCTION, AUCTION_PARAMS)
            print(
                f"  3) sealed-bid second-price auction (circuit {AUCTION}): the three hospitals "
                f"bid from their datasets, {CLINIC} as an input-only party (shares only)"
            )
            res = client.run(
                auction.program,
                circuit=(auction.circuit, dict(auction.params)),
                bindings={h: {"bids": ("bid", ("amount",))} for h in HOSPITALS},
                contributions={CLINIC: {f"bid_{CLINIC}": ("bid", ("amount",), "int")}},
                **common,
            )
            print(f"     {res.seconds * 1000:.0f} ms submit-to-result:")
            _print_auction(res[HOSPITALS[0]], auction_ref)
            election = registry.build(ELECTION, ELECTION_PARAMS)
            print(
                f"  4) staff election (circuit {ELECTION}, {3 * STAFF} ballots, "
                f"{len(CANDIDATES)} candidates): only the tally is opened"
            )
            res = client.run(
                election.program,
                circuit=(election.circuit, dict(election.params)),
                bindings={h: {"ballots": ("ballots", CANDIDATES)} for h in HOSPITALS},
                **common,
            )
            print(f"     {res.seconds * 1000:.0f} ms submit-to-result:")
            _print_election(res[HOSPITALS[0]], election_ref)
            print("  5) a program the owners' policies do not allow (one hospital's mean age):")
            p = ProgramBuilder(HOSPITALS)
            p.output("snoop", p.input(HOSPITALS[2], "ages", shape=(rows,)).mean(), to=HOSPITALS[0])
            try:
                client.run(
                    p.build(),
                    bindings={HOSPITALS[2]: {"ages": ("patients", ("age",))}},
                    **{**common, "deadline_s": 30},
                )
                print("     unexpectedly succeeded")
                return 1
            except TaskFailed as exc:
                print(f"     refused: {exc.reason}")
        for h in owners:
            count, head = verify(root / "audit" / f"{h}.log")
            entries = f"{count} {'entry' if count == 1 else 'entries'}"
            print(f"  audit log of {h:<15} {entries:<10} hash chain intact (head {head[:12]}…)")
    finally:
        dep.stop()
        if tmp is not None:
            tmp.cleanup()
    print(
        f"  done in {time.perf_counter() - t0:.1f} s "
        "(run with --local for the in-process simulation)"
    )
    return 0


def _print_stats(
    data: dict[str, dict[str, np.ndarray]], got: dict[str, np.ndarray], seconds: float, events: int
) -> None:
    ages = np.concatenate([data[h]["ages"] for h in HOSPITALS])
    costs = np.concatenate([data[h]["costs_k"] for h in HOSPITALS])
    reference = {
        "patients": float(ages.size),
        "mean_age": ages.mean(),
        "var_age": ages.var(),
        "mean_cost_k": costs.mean(),
        "cov_age_cost": float(np.mean((ages - ages.mean()) * (costs - costs.mean()))),
    }
    print(
        f"     results for {HOSPITALS[0]}, forwarded encrypted to the analyst "
        f"({seconds * 1000:.0f} ms submit-to-result, {events} events):"
    )
    for name, ref in reference.items():
        print(f"       {name:<14} {float(got[name]):14.4f}   plaintext reference {ref:14.4f}")
