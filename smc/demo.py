"""``smc demo``: three hospitals compute joint statistics without pooling their records.

Each hospital holds patient ages and treatment costs. Together they learn the number of
patients, the mean and variance of ages, the mean cost and the age-cost covariance across all
three hospitals; no hospital sees another's rows. The sample data is generated locally.

``smc demo`` starts a real deployment on this machine (a hub and one daemon per hospital, each
holding its CSV and its policy) and runs the computation as an analyst; ``smc demo --local`` runs
the same program in the in-process simulation.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import smc
from smc import ProgramBuilder

HOSPITALS = ("st_mary", "city_general", "riverside")


def sample_data(rows: int, seed: int = 7) -> dict[str, dict[str, np.ndarray]]:
    """Synthetic, non-sensitive sample records (numpy's PRNG is fine for fake data)."""
    rng = np.random.default_rng(seed)
    data = {}
    for k, name in enumerate(HOSPITALS):
        ages = rng.integers(18, 95, size=rows).astype(np.float64)
        costs = np.round(200 + 40 * ages + rng.normal(0, 300 + 100 * k, size=rows), 2)
        data[name] = {"ages": ages, "costs_k": costs / 1000}
    return data


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


def run_demo(suite: str = "rss3", rows: int = 1000) -> int:
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
    return 0


# ------------------------------------------------------------------------------------ deployed


def write_datasets(root: Path, data: dict[str, dict[str, np.ndarray]]) -> None:
    """One CSV per hospital (age, cost_k), as a data owner would have it."""
    for name, cols in data.items():
        lines = ["age,cost_k"] + [
            f"{a:.0f},{c:.5f}" for a, c in zip(cols["ages"], cols["costs_k"], strict=True)
        ]
        (root / f"{name}_patients.csv").write_text("\n".join(lines) + "\n")


def _datasets(name: str, rows: int) -> dict[str, dict[str, object]]:
    return {
        "patients": {
            "path": f"{name}_patients.csv",
            "format": "csv",
            "rows": rows,
            "columns": {"age": "fixed", "cost_k": "fixed"},
            "policy": {
                "circuits": ["hospital_stats"],
                "recipients": [HOSPITALS[0], "analyst"],
                "min_parties": 3,
            },
        }
    }


def run_deployed_demo(suite: str = "rss3", rows: int = 1000, keep: str | None = None) -> int:
    """Start a hub and three hospital daemons (plus a dealer for 'additive') as real processes
    on this machine, and run computations through them as an analyst would."""
    import tempfile

    from smc.party import TaskFailed
    from smc.party.audit import verify
    from smc.party.launch import LocalDeployment

    tmp = None if keep else tempfile.TemporaryDirectory(prefix="smc-demo-")
    root = Path(keep) if keep else Path(tmp.name)  # type: ignore[union-attr]
    root.mkdir(parents=True, exist_ok=True)
    data = sample_data(rows)
    write_datasets(root, data)
    dealer = "dealer" if suite == "additive" else None
    dep = LocalDeployment(root, {h: _datasets(h, rows) for h in HOSPITALS}, dealer=dealer)
    t0 = time.perf_counter()
    print(
        f"smc demo: hub + {len(HOSPITALS)} hospital daemons{' + dealer' if dealer else ''} "
        f"on this machine (mTLS, OS-chosen ports), {rows} patients each, suite {suite}"
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
        with dep.client("analyst") as client:
            for p in client.parties():
                print(
                    f"  registered: {p.name:<13} {p.role:<6} {p.endpoint or 'relay only':<16} "
                    f"{', '.join(p.datasets)}"
                )
            print(f"  1) joint statistics, {program.summary()[:60]}…")
            res = client.run(
                program,
                suite=suite,
                dealer=dealer or "",
                bindings=bindings,
                circuit=("hospital_stats", {"rows": rows}),
                deadline_s=60,
            )
            _print_stats(data, res[HOSPITALS[0]], res.seconds, len(res.events))
            print(
                "  2) the same through the hub relay (end-to-end encrypted: the hub sees "
                "ciphertext)"
            )
            res = client.run(
                program,
                suite=suite,
                dealer=dealer or "",
                bindings=bindings,
                circuit=("hospital_stats", {"rows": rows}),
                deadline_s=60,
                data_plane="relay",
            )
            print(
                f"     mean_age {float(res[HOSPITALS[0]]['mean_age']):.4f} "
                f"in {res.seconds * 1000:.0f} ms"
            )
            print("  3) a program the owners' policies do not allow (one hospital's mean age):")
            p = ProgramBuilder(HOSPITALS)
            p.output("snoop", p.input(HOSPITALS[2], "ages", shape=(rows,)).mean(), to=HOSPITALS[0])
            try:
                client.run(
                    p.build(),
                    suite=suite,
                    dealer=dealer or "",
                    bindings={HOSPITALS[2]: {"ages": ("patients", ("age",))}},
                    deadline_s=30,
                )
                print("     unexpectedly succeeded")
                return 1
            except TaskFailed as exc:
                print(f"     refused: {exc.reason}")
        for h in HOSPITALS:
            count, head = verify(root / "audit" / f"{h}.log")
            print(f"  audit log of {h:<13} {count} entries, hash chain intact (head {head[:12]}…)")
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
