"""Benchmark of the circuits library: secure (simulated, 3 parties, rss3) against plaintext numpy.

Run: ``python bench/circuits.py [--quick] [--only SUBSTRING] [--suite rss3|additive]``.

For each workload it builds the circuit, binds generated data, runs the simulation (every party
in this process over in-memory links, so no network latency: the seconds are computation and
message handling) and the plaintext reference on the same data, and prints one table row:
secure seconds, plaintext seconds, rounds (measured, and declared by ``cost_*``), and the bytes
sent by the busiest party (measured with frame headers, and the declared payload). It also
checks every secure result against the reference, so a fast wrong answer cannot pass unnoticed.
``--quick`` shrinks every size (a smoke test; the issue's sizes are the default).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from smc.circuits import (
    AuctionSpec,
    BuiltProgram,
    ElectionSpec,
    FedAvgSpec,
    JoinSpec,
    LinearRegressionSpec,
    LogisticRegressionSpec,
    MLPSpec,
    Predicate,
    StatsSpec,
    build_auction,
    build_election,
    build_federated_average,
    build_join,
    build_linear_regression,
    build_logistic_regression,
    build_mlp,
    build_stats,
    reference_auction,
    reference_election,
    reference_federated_average,
    reference_join,
    reference_linear_regression,
    reference_logistic_regression,
    reference_mlp,
    reference_stats,
    run_local,
)

PARTIES = ("p0", "p1", "p2")


@dataclass
class Workload:
    name: str
    build: Callable[[], BuiltProgram]
    data: Callable[[], dict[str, dict[str, Any]]]
    plain: Callable[[dict[str, dict[str, Any]]], dict[str, Any]]
    check: Callable[[dict[str, np.ndarray], dict[str, Any]], None]


def spread(total: int) -> dict[str, int]:
    return {p: total // 3 + (i < total % 3) for i, p in enumerate(PARTIES)}


def split_rows(arrays: dict[str, np.ndarray], rows: dict[str, int]) -> dict[str, dict[str, Any]]:
    out, start = {}, 0
    for p, r in rows.items():
        out[p] = {k: v[start : start + r] for k, v in arrays.items()}
        start += r
    return out


def close(rel: float, atol: float = 0.0) -> Callable[[dict[str, np.ndarray], dict[str, Any]], None]:
    def check(got: dict[str, np.ndarray], want: dict[str, Any]) -> None:
        for name, value in want.items():
            g, w = np.asarray(got[name], dtype=np.float64), np.asarray(value, dtype=np.float64)
            if not np.all(np.abs(g - w) <= rel * np.abs(w) + atol):
                raise AssertionError(f"{name}: secure {g} differs from plaintext {w}")

    return check


# ------------------------------------------------------------------------------- workloads


def stats_workloads(rows_total: int, order_rows: int) -> list[Workload]:
    rng = np.random.default_rng(1)
    rows = spread(rows_total)
    value = np.round(rng.normal(50, 15, rows_total) * 64) / 64
    age = rng.integers(18, 95, rows_total).astype(np.float64)
    data = split_rows({"value": value, "age": age}, rows)
    moments = StatsSpec(
        stats=("count", "sum", "mean", "var", "std"),
        where=(Predicate("age", ">=", 40),),
        min_contributors=3,
    )
    hist = StatsSpec(stats=("histogram",), bins=(0, 20, 30, 40, 50, 60, 70, 80, 100))
    extremes = StatsSpec(stats=("min", "max"))
    small = spread(order_rows)
    order_data = split_rows({"value": value[:order_rows], "age": age[:order_rows]}, small)
    order = StatsSpec(stats=("median", "top_k"), k=10)
    order_f = StatsSpec(
        stats=("median", "quantiles", "top_k"),
        where=(Predicate("age", ">=", 40),),
        quantiles=(0.25, 0.75),
        k=10,
    )
    n, m = f"{rows_total:,}", f"{order_rows:,}"

    def wl(name: str, spec: StatsSpec, r: dict[str, int], d: Any, tol: float) -> Workload:
        return Workload(
            name,
            lambda: build_stats(r, spec, PARTIES),
            lambda: {p: {k: v for k, v in d[p].items() if k in spec.columns} for p in d},
            lambda dd: reference_stats(dd, spec),
            close(tol, 2.0**-10),
        )

    return [
        wl(
            f"stats: count/sum/mean/var/std, filter, 3 contributors, {n} rows",
            moments,
            rows,
            data,
            1e-3,
        ),
        wl(f"stats: histogram, 8 public bins, {n} rows", hist, rows, data, 0.0),
        wl(f"stats: min and max, {n} rows", extremes, rows, data, 0.0),
        wl(f"stats: median and top-10, {m} rows", order, small, order_data, 1e-4),
        wl(f"stats: median, quartiles, top-10, filter, {m} rows", order_f, small, order_data, 1e-4),
    ]


def join_workload(n: int) -> Workload:
    rng = np.random.default_rng(2)
    pool = rng.choice(2**40, 2 * n - n // 2, replace=False)
    left, right = rng.permutation(pool[:n]), rng.permutation(pool[n - n // 2 :])
    values = np.round(rng.uniform(0, 500, n) * 64) / 64
    spec = JoinSpec(stats=("size", "sum", "mean"))
    return Workload(
        f"join (sort): size, sum, mean over {n:,} x {n:,} ids",
        lambda: build_join("p0", "p1", n, n, spec, PARTIES),
        lambda: {"p0": {"ids": left}, "p1": {"ids": right, "values": values}},
        lambda d: reference_join(d["p0"]["ids"], d["p1"]["ids"], spec, d["p1"]["values"]),
        close(2e-4),
    )


def auction_workloads(n: int) -> list[Workload]:
    rng = np.random.default_rng(3)
    bids = rng.integers(0, 10**6, n)
    counts = spread(n)
    data = split_rows({"bids": bids}, counts)

    def one(kind: str) -> Workload:
        spec = AuctionSpec(kind=kind, max_bid=10**6)
        return Workload(
            f"auction ({'Vickrey' if kind == 'second' else 'first price'}), {n:,} bidders",
            lambda: build_auction(counts, spec, PARTIES),
            lambda: data,
            lambda d: reference_auction(np.concatenate([d[p]["bids"] for p in PARTIES]), spec),
            close(0.0),
        )

    return [one("first"), one("second")]


def election_workload(n: int, candidates: int = 5) -> Workload:
    rng = np.random.default_rng(4)
    ballots = np.eye(candidates, dtype=np.int64)[rng.integers(0, candidates, n)]
    ballots[rng.choice(n, n // 100, replace=False)] = 0  # 1% blank, hence invalid
    counts = spread(n)
    spec = ElectionSpec(candidates=candidates, reveal="both")
    return Workload(
        f"election (plurality, {candidates} candidates), {n:,} ballots",
        lambda: build_election(counts, spec, PARTIES),
        lambda: split_rows({"ballots": ballots}, counts),
        lambda d: reference_election(np.concatenate([d[p]["ballots"] for p in PARTIES]), spec),
        close(0.0),
    )


def ml_workloads(n: int, d: int, epochs: int) -> list[Workload]:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (n, d))
    coef = rng.uniform(0.5, 2.0, d) * rng.choice([-1, 1], d)
    y_lin = x @ coef + 0.7 + rng.normal(0, 0.5, n)
    y_log = (rng.random(n) < 1 / (1 + np.exp(-(x @ coef - 0.3)))).astype(np.float64)
    rows = spread(n)
    logistic = LogisticRegressionSpec(d, epochs=epochs, batch_size=min(1000, n), learning_rate=0.5)
    linear = LinearRegressionSpec(d)

    def stacked(dd: dict[str, dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.concatenate([dd[p]["X"] for p in PARTIES]),
            np.concatenate([dd[p]["y"] for p in PARTIES]),
        )

    updates = {p: rng.normal(0, 0.1, 100_000 if n >= 10_000 else 1000) for p in PARTIES}
    weights = {p: int(w) for p, w in zip(PARTIES, rng.integers(100, 5000, 3), strict=True)}
    fed = FedAvgSpec(len(updates["p0"]), clip=1.0)
    mlp = MLPSpec((d, 32, 4), "logits")
    layers = [(rng.normal(0, 0.3, (32, d)), rng.normal(0, 0.1, 32))]
    layers.append((rng.normal(0, 0.3, (4, 32)), rng.normal(0, 0.1, 4)))
    model = {"W0": layers[0][0], "b0": layers[0][1], "W1": layers[1][0], "b1": layers[1][1]}
    m_rows = min(n, 1000)
    return [
        Workload(
            f"logistic regression training, {n:,} x {d}, {epochs} epochs, batch 1,000",
            lambda: build_logistic_regression(rows, logistic, PARTIES),
            lambda: split_rows({"X": x, "y": y_log}, rows),
            lambda dd: reference_logistic_regression(*stacked(dd), logistic),
            close(0.0, 5e-3),
        ),
        Workload(
            f"linear regression (normal equations), {n:,} x {d}",
            lambda: build_linear_regression(rows, linear, PARTIES),
            lambda: split_rows({"X": x, "y": y_lin}, rows),
            lambda dd: reference_linear_regression(*stacked(dd), linear),
            close(1e-2),
        ),
        Workload(
            f"federated average, 3 x {len(updates['p0']):,} parameters, secret weights, clip",
            lambda: build_federated_average(list(PARTIES), fed),
            lambda: {p: {"update": updates[p], "weight": weights[p]} for p in PARTIES},
            lambda dd: reference_federated_average(
                {p: dd[p]["update"] for p in PARTIES}, fed, weights
            ),
            close(0.0, 1e-4),
        ),
        Workload(
            f"MLP inference {d}-32-4, ReLU, {m_rows:,} rows",
            lambda: build_mlp("p0", "p1", m_rows, mlp, PARTIES),
            lambda: {"p0": model, "p1": {"X": x[:m_rows]}},
            lambda dd: reference_mlp(layers, dd["p1"]["X"]),
            close(0.0, 1e-3),
        ),
    ]


def workloads(quick: bool) -> list[Workload]:
    if quick:
        return [
            *stats_workloads(3000, 300),
            join_workload(100),
            *auction_workloads(50),
            election_workload(300),
            *ml_workloads(600, 10, 2),
        ]
    return [
        *stats_workloads(10**6, 10**5),
        join_workload(10**4),
        *auction_workloads(1000),
        election_workload(10**4),
        *ml_workloads(10**4, 10, 10),
    ]


# ------------------------------------------------------------------------------------ main


def run(w: Workload, suite: str) -> dict[str, Any]:
    built = w.build()
    data = w.data()
    t0 = time.perf_counter()
    res = run_local(built, data, suite=suite)
    secure = time.perf_counter() - t0
    plain_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        want = w.plain(data)
        plain_times.append(time.perf_counter() - t0)
    w.check(res.outputs, want)
    declared = built.declared_cost(suite)
    return {
        "workload": w.name,
        "secure_s": secure,
        "plain_s": min(plain_times),
        "rounds": res.rounds,
        "declared_rounds": declared["rounds"],
        "max_bytes": res.max_bytes_per_party,
        "declared_bytes": declared["bytes_per_party"],
    }


def human(b: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if b < 1000 or unit == "GB":
            return f"{b:,.0f} {unit}" if unit == "B" else f"{b:,.1f} {unit}"
        b /= 1000
    return f"{b:.1f} GB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--only", default="", help="run the workloads whose name contains this")
    ap.add_argument("--suite", default="rss3", choices=["rss3", "additive"])
    args = ap.parse_args()
    print(f"circuits benchmark: 3 parties, {args.suite}, simulated in one process")
    warm = stats_workloads(300, 30)[0]  # compile the engine's Numba kernels before timing
    run_local(warm.build(), warm.data(), suite=args.suite)
    print(
        "| workload | secure s | plaintext s | rounds (declared) | max bytes/party "
        "(declared payload) |"
    )
    print("|---|---|---|---|---|")
    for w in workloads(args.quick):
        if args.only and args.only not in w.name:
            continue
        r = run(w, args.suite)
        print(
            f"| {r['workload']} | {r['secure_s']:.2f} | {r['plain_s']:.4f} | "
            f"{r['rounds']} ({r['declared_rounds']}) | {human(r['max_bytes'])} "
            f"({human(r['declared_bytes'])}) |",
            flush=True,
        )
    print("all secure results match their plaintext references")


if __name__ == "__main__":
    main()
