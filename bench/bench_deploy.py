"""Benchmarks of the deployment (not tests): ``python bench/bench_deploy.py [--quick] [--json]``.

1. Data plane: moving frames between two processes over mutually authenticated TLS, the way
   the engine does it (one frame per peer per round, both directions at once), with the party
   daemon's raw TLS links against a gRPC bidirectional stream; and the round-trip latency of a
   small frame over each. This is the measurement behind the choice of raw TLS (see
   docs/deployment.md).
2. End to end on loopback, with a hub and three party daemons as real processes:
   submit-to-result latency of a tiny program, a fixed-point elementwise multiply of n = 10^6
   (datasets of 10^6 values at each of two parties, all 10^6 products opened and forwarded
   encrypted to the client), and the same through the hub relay (end-to-end encrypted),
   direct and relayed runs alternating (the relay's overhead is the median of the pairs' ratios).
   The multiply runs on two deployments: one whose parties use the default relay hop,
   ``relay_channel = "sealed"`` (the mTLS handshake, then 1 MiB AES-256-GCM records; see
   smc.hub.relay), and one whose parties keep OpenSSL's TLS records on it (``"tls"``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import numpy as np

KEYS_ROUND = 2


# ------------------------------------------------------------------------------ data plane


def _keys(root: Path) -> Path:
    from smc.hub import pki

    pki.create_ca(root)
    pki.issue(root, "party", "a")
    pki.issue(root, "party", "b")
    return root


def _tls_side(
    keys: str, me: str, peer: str, port_q: Any, peer_q: Any, size: int, rounds: int, out_q: Any
) -> None:
    from smc.hub.pki import Credentials
    from smc.party.dataplane import DataPlaneServer, DirectLink, Inbox

    creds = Credentials.from_dir(keys, me)
    server = DataPlaneServer(creds, "127.0.0.1", 0, max_frame_bytes=size + 64)
    inbox = Inbox("b" * 32, me, (peer,))
    server.open(inbox)
    server.start()
    port_q.put(server.port)
    link = DirectLink.dial(creds, f"127.0.0.1:{peer_q.get()}", task_id="b" * 32, me=me, peer=peer)
    frame = memoryview(os.urandom(size))
    small = memoryview(b"x" * 64)
    start = time.perf_counter()
    for _ in range(rounds):  # one MPC round: send to the peer, then receive from it
        link.send(frame)
        inbox.get(peer, 60)
    bulk = time.perf_counter() - start
    pings = 1000
    start = time.perf_counter()
    for _ in range(pings):
        link.send(small)
        inbox.get(peer, 60)
    rtt = (time.perf_counter() - start) / pings
    out_q.put((bulk, rtt))
    time.sleep(0.5)
    link.close()
    server.stop()


def bench_tls(keys: Path, size: int, rounds: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    qa, qb, out = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(target=_tls_side, args=(str(keys), "a", "b", qa, qb, size, rounds, out)),
        ctx.Process(target=_tls_side, args=(str(keys), "b", "a", qb, qa, size, rounds, out)),
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(30)
    bulk = max(r[0] for r in results)
    return {
        "gbytes_per_s": 2 * size * rounds / bulk / 1e9,
        "round_trip_us": max(r[1] for r in results) * 1e6,
    }


def _grpc_server(keys: str, port_q: Any, size: int, rounds: int, chunk: int) -> None:
    import grpc
    from smc.hub.pki import Credentials
    from smc.hub.tls import server_credentials, server_options

    creds = Credentials.from_dir(keys, "a")
    data = os.urandom(size)

    def exchange(requests: Any, context: Any) -> Any:
        received = 0
        for msg in requests:  # echo the MPC pattern: after a whole frame arrives, send one back
            received += len(msg)
            if len(msg) <= 64:
                yield msg
                continue
            if received >= size:
                received -= size
                for off in range(0, size, chunk):
                    yield data[off : off + chunk]

    handler = grpc.method_handlers_generic_handler(
        "bench.Bench", {"Exchange": grpc.stream_stream_rpc_method_handler(exchange)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(4), options=server_options())
    server.add_generic_rpc_handlers((handler,))
    port_q.put(server.add_secure_port("127.0.0.1:0", server_credentials(creds)))
    server.start()
    server.wait_for_termination(600)


def bench_grpc(keys: Path, size: int, rounds: int, chunk: int) -> dict[str, float]:
    import queue

    from smc.hub.pki import Credentials
    from smc.hub.tls import channel

    ctx = mp.get_context("spawn")
    port_q = ctx.Queue()
    proc = ctx.Process(
        target=_grpc_server, args=(str(keys), port_q, size, rounds, chunk), daemon=True
    )
    proc.start()
    ch = channel(f"127.0.0.1:{port_q.get(timeout=60)}", Credentials.from_dir(keys, "b"), "a")
    outbox: queue.Queue[bytes | None] = queue.Queue()

    def requests() -> Any:
        while (item := outbox.get()) is not None:
            yield item

    replies = ch.stream_stream("/bench.Bench/Exchange")(requests())
    data = os.urandom(size)
    start = time.perf_counter()
    for _ in range(rounds):
        for off in range(0, size, chunk):
            outbox.put(data[off : off + chunk])
        got = 0
        while got < size:
            got += len(next(replies))
    bulk = time.perf_counter() - start
    pings = 1000
    start = time.perf_counter()
    for _ in range(pings):
        outbox.put(b"x" * 64)
        next(replies)
    rtt = (time.perf_counter() - start) / pings
    outbox.put(None)
    ch.close()
    proc.kill()
    return {"gbytes_per_s": 2 * size * rounds / bulk / 1e9, "round_trip_us": rtt * 1e6}


# ------------------------------------------------------------------------------ end to end


def bench_end_to_end(
    n: int, repeats: int, relay_channel: str = "sealed", tiny_latency: bool = True
) -> dict[str, Any]:
    from smc.party.launch import LocalDeployment

    import smc

    parties = ("alice", "bob", "carol")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="smc-bench-") as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(5)
        policy = {"any_program": True, "recipients": ["alice", "analyst"], "min_parties": 1}
        datasets: dict[str, dict[str, Any]] = {}
        for p in parties:
            np.save(root / f"{p}-x.npy", rng.uniform(-100, 100, n))
            np.save(root / f"{p}-s.npy", rng.uniform(-100, 100, 1))
            datasets[p] = {
                "x": {"path": f"{p}-x.npy", "shape": [n], "policy": policy},
                "s": {"path": f"{p}-s.npy", "shape": [1], "policy": policy},
            }
        t0 = time.perf_counter()
        extra = {p: {"relay_channel": relay_channel} for p in parties}
        out["relay_channel"] = relay_channel
        with LocalDeployment(root, datasets, party_extra=extra) as dep, dep.client() as client:
            out["deployment_start_s"] = time.perf_counter() - t0
            tiny = smc.ProgramBuilder(parties)
            tiny.output("sum", sum(tiny.input(p, "s", shape=(1,)) for p in parties), to="alice")
            tiny_program = tiny.build()
            client.run(tiny_program)  # warm-up: compiles the kernels in every daemon
            lat = []
            for _ in range(repeats * 5 if tiny_latency else 0):
                t = time.perf_counter()
                client.run(tiny_program)
                lat.append(time.perf_counter() - t)
            if lat:
                out["tiny_submit_to_result_ms"] = {
                    "median": 1000 * statistics.median(lat),
                    "min": 1000 * min(lat),
                }
            mul = smc.ProgramBuilder(parties)
            mul.output(
                "prod",
                mul.input("alice", "x", shape=(n,)) * mul.input("bob", "x", shape=(n,)),
                to="alice",
            )
            mul_program = mul.build()
            warm = smc.ProgramBuilder(parties)
            warm.output(
                "p",
                warm.input("alice", "s", shape=(1,)) * warm.input("bob", "s", shape=(1,)),
                to="alice",
            )
            client.run(warm.build())  # compiles the multiplication kernels outside the timing
            for plane in ("direct", "relay"):  # steady state: the daemons' heaps have grown
                client.run(mul_program, data_plane=plane, deadline_s=600)
            # direct and relayed runs alternate, so that both see the same state of a shared
            # machine; the overhead is the median of the pairs' ratios
            times: dict[str, list[float]] = {"direct": [], "relay": []}
            reports: dict[str, dict[str, str]] = {}
            for _ in range(repeats):
                for plane in ("direct", "relay"):
                    t = time.perf_counter()
                    res = client.run(mul_program, data_plane=plane, deadline_s=600)
                    times[plane].append(time.perf_counter() - t)
                    assert res["alice"]["prod"].shape == (n,)
                    reports[plane] = {
                        e.party: e.message for e in res.events if e.kind == "party_done"
                    }
            for plane, ts in times.items():
                out[f"mul_{plane}"] = {
                    "n": n,
                    "best_s": min(ts),
                    "median_s": statistics.median(ts),
                    "mults_per_s": n / min(ts),
                    "party_reports": reports[plane],
                }
        ratios = [r / d for d, r in zip(times["direct"], times["relay"], strict=True)]
        out["relay_overhead"] = statistics.median(ratios)
        out["relay_overhead_pairs"] = ratios
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--skip-dataplane", action="store_true")
    args = parser.parse_args()
    size, rounds = (4 << 20, 5) if args.quick else (16 << 20, 20)
    n, repeats = (10**5, 1) if args.quick else (10**6, 5)
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    if not args.skip_dataplane:
        with tempfile.TemporaryDirectory() as tmp:
            keys = _keys(Path(tmp))
            results["dataplane_frame_mib"] = size >> 20
            results["raw_tls"] = bench_tls(keys, size, rounds)
            results["grpc_bidi_1mib"] = bench_grpc(keys, size, rounds, 1 << 20)
            results["grpc_bidi_4mib"] = bench_grpc(keys, size, rounds, 4 << 20)
    results["end_to_end"] = bench_end_to_end(n, repeats)
    results["end_to_end_tls"] = bench_end_to_end(n, repeats, "tls", tiny_latency=False)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if "raw_tls" in results:
        print(f"data plane, {size >> 20} MiB frames both ways per round, {rounds} rounds:")
        for key in ("raw_tls", "grpc_bidi_1mib", "grpc_bidi_4mib"):
            r = results[key]
            rtt = r["round_trip_us"]
            print(
                f"  {key:<16} {r['gbytes_per_s']:6.2f} GB/s   small-frame round trip {rtt:7.0f} us"
            )
    for key in ("end_to_end", "end_to_end_tls"):
        e = results[key]
        print(
            f"end to end (hub + 3 daemons on loopback, relay hop {e['relay_channel']!r}, "
            f"started in {e['deployment_start_s']:.1f} s):"
        )
        if "tiny_submit_to_result_ms" in e:
            tiny = e["tiny_submit_to_result_ms"]
            print(
                f"  tiny program, submit to result: median {tiny['median']:.1f} ms "
                f"(min {tiny['min']:.1f} ms)"
            )
        for plane in ("direct", "relay"):
            m = e[f"mul_{plane}"]
            reports = "; ".join(f"{k}: {v}" for k, v in sorted(m["party_reports"].items()))
            print(
                f"  fixed-point multiply n={m['n']:,} ({plane}): {m['best_s']:.2f} s submit to "
                f"result = {m['mults_per_s'] / 1e6:.2f} M mult/s"
            )
            print(f"    per party: {reports}")
        pairs = ", ".join(f"x{r:.2f}" for r in e["relay_overhead_pairs"])
        print(
            f"  relay overhead ({e['relay_channel']} hop): x{e['relay_overhead']:.2f} "
            f"(median of alternating pairs: {pairs})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
