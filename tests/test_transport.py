"""The in-memory transport: per-link ordering, exact accounting, aborts, timeouts, WAN emulation."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import smc
from smc.errors import TransportError
from smc.transport import InMemoryNetwork, NetemConfig


def test_frames_arrive_in_order_per_link() -> None:
    net = InMemoryNetwork(3)
    ends = [net.endpoint(i) for i in range(3)]
    for k in range(200):  # interleave three links
        ends[0].send(1, k.to_bytes(4, "little"))
        ends[0].send(2, (1000 + k).to_bytes(4, "little"))
        ends[2].send(1, (2000 + k).to_bytes(4, "little"))
    got_01 = [int.from_bytes(ends[1].recv(0, 1.0), "little") for _ in range(200)]
    got_21 = [int.from_bytes(ends[1].recv(2, 1.0), "little") for _ in range(200)]
    got_02 = [int.from_bytes(ends[2].recv(0, 1.0), "little") for _ in range(200)]
    assert got_01 == list(range(200))
    assert got_21 == [2000 + k for k in range(200)]
    assert got_02 == [1000 + k for k in range(200)]


def test_frames_are_not_copied_or_altered() -> None:
    net = InMemoryNetwork(2)
    a, b = net.endpoint(0), net.endpoint(1)
    frame = np.arange(10, dtype=np.uint64)
    a.send(1, frame)
    got = b.recv(0, 1.0)
    np.testing.assert_array_equal(np.frombuffer(got, dtype=np.uint64), frame)


def test_concurrent_senders_keep_link_order() -> None:
    net = InMemoryNetwork(4)
    ends = [net.endpoint(i) for i in range(4)]

    def blast(src: int) -> None:
        for k in range(500):
            ends[src].send(3, bytes([src]) + k.to_bytes(2, "little"))

    threads = [threading.Thread(target=blast, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for src in range(3):
        seq = [ends[3].recv(src, 1.0) for _ in range(500)]
        assert all(bytes(f)[0] == src for f in seq)
        assert [int.from_bytes(bytes(f)[1:], "little") for f in seq] == list(range(500))


def test_stats_count_bytes_and_frames_per_destination() -> None:
    net = InMemoryNetwork(3)
    a = net.endpoint(0)
    a.send(1, b"x" * 10)
    a.send(1, bytearray(5))
    a.send(2, memoryview(b"y" * 7))
    a.send(2, np.zeros(3, dtype=np.uint64))
    assert a.stats.bytes_sent == {1: 15, 2: 31}
    assert a.stats.frames_sent == {1: 2, 2: 2}
    assert a.stats.total_bytes == 46
    assert net.endpoint(1).stats.total_bytes == 0


def test_close_wakes_a_blocked_receiver() -> None:
    net = InMemoryNetwork(2)
    b = net.endpoint(1)
    caught: list[BaseException] = []

    def wait() -> None:
        try:
            b.recv(0, timeout=30.0)
        except BaseException as exc:
            caught.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.1)
    assert t.is_alive()
    start = time.perf_counter()
    net.close()
    t.join(5.0)
    assert not t.is_alive()
    assert time.perf_counter() - start < 2.0
    assert len(caught) == 1
    assert isinstance(caught[0], TransportError)
    assert "network closed" in str(caught[0])
    with pytest.raises(TransportError, match="network closed"):
        net.endpoint(0).send(1, b"late")


def test_recv_timeout_raises_transport_error() -> None:
    net = InMemoryNetwork(2)
    start = time.perf_counter()
    with pytest.raises(TransportError, match=r"no frame from endpoint 0 within 0.2 s"):
        net.endpoint(1).recv(0, timeout=0.2)
    elapsed = time.perf_counter() - start
    assert 0.15 <= elapsed < 2.0


def test_no_link_to_self_or_unknown_endpoint() -> None:
    net = InMemoryNetwork(2)
    a = net.endpoint(0)
    with pytest.raises(TransportError, match="no link"):
        a.send(0, b"self")
    with pytest.raises(TransportError, match="no link"):
        a.send(5, b"nobody")
    with pytest.raises(TransportError, match="no link"):
        a.recv(7, 0.1)


# ------------------------------------------------------------------------------ emulated WAN


def _chain_program(k: int) -> smc.Program:
    """k chained secret integer multiplications: one rss3 round each."""
    p = smc.ProgramBuilder(["p0", "p1", "p2"])
    x = p.input("p0", "x", shape=4, dtype="int")
    y = p.input("p1", "y", shape=4, dtype="int")
    acc = x
    for _ in range(k):
        acc = acc * y
    p.output("out", acc)  # open to all: every party receives in every round
    return p.build()


def test_latency_adds_one_delay_per_round() -> None:
    k, latency = 6, 0.02
    prog = _chain_program(k)
    inputs = {"p0": {"x": np.array([1, 2, -3, 0])}, "p1": {"y": np.array([1, -1, 2, 5])}}
    base = smc.simulate(prog, inputs, suite="rss3")
    start = time.perf_counter()
    res = smc.simulate(prog, inputs, suite="rss3", netem=NetemConfig(latency_s=latency))
    wall = time.perf_counter() - start
    np.testing.assert_array_equal(res["p2"]["out"], [1, 2, -3 * 64, 0])
    rounds = res.rounds
    assert rounds == base.rounds == k + 2  # input, k products, open
    assert res.seconds >= rounds * latency
    assert wall >= rounds * latency
    # one latency per round, not per frame or per array (loose: scheduler noise on 2 cores)
    assert res.seconds < base.seconds + rounds * latency * 2 + 0.5


def test_latency_is_per_frame_not_cumulative_on_a_link() -> None:
    net = InMemoryNetwork(2, NetemConfig(latency_s=0.05))
    a, b = net.endpoint(0), net.endpoint(1)
    start = time.perf_counter()
    for _ in range(5):
        a.send(1, b"x")
    for _ in range(5):
        b.recv(0, 5.0)
    elapsed = time.perf_counter() - start
    assert 0.05 <= elapsed < 0.05 * 5  # pipelined frames share one latency


def test_bandwidth_cap_slows_a_large_transfer() -> None:
    bw = 40e6  # bits/s
    frame = np.zeros(250_000, dtype=np.uint64)  # 2 MB -> 0.4 s ideal
    ideal = frame.nbytes * 8 / bw
    net = InMemoryNetwork(3, NetemConfig(bandwidth_bps=bw))
    a, b = net.endpoint(0), net.endpoint(1)
    start = time.perf_counter()
    a.send(1, frame)
    b.recv(0, 10.0)
    one = time.perf_counter() - start
    assert 0.7 * ideal <= one < 3 * ideal + 0.5
    # two frames queue behind each other on one link
    start = time.perf_counter()
    a.send(1, frame)
    a.send(1, frame)
    b.recv(0, 10.0)
    b.recv(0, 10.0)
    two = time.perf_counter() - start
    assert 0.7 * 2 * ideal <= two < 3 * 2 * ideal + 0.5
    # links are capped independently: 0->1 and 0->2 in parallel take about one frame time
    c = net.endpoint(2)
    start = time.perf_counter()
    a.send(1, frame)
    a.send(2, frame)
    b.recv(0, 10.0)
    c.recv(0, 10.0)
    par = time.perf_counter() - start
    assert 0.7 * ideal <= par < 1.6 * ideal + 0.2


def test_bandwidth_cap_in_a_simulated_session() -> None:
    n = 125_000  # rss3 input: the owner sends 8n bytes to each of two peers (separate links)
    bw = 50e6
    p = smc.ProgramBuilder(["p0", "p1", "p2"])
    x = p.input("p0", "x", shape=n, dtype="int")
    p.output("s", x.sum(), to="p1")
    prog = p.build()
    start = time.perf_counter()
    res = smc.simulate(
        prog,
        {"p0": {"x": np.ones(n, dtype=np.int64)}},
        suite="rss3",
        netem=NetemConfig(bandwidth_bps=bw),
    )
    wall = time.perf_counter() - start
    assert res["p1"]["s"] == n
    ideal = 8 * n * 8 / bw  # 0.16 s
    assert wall >= 0.7 * ideal
    assert res.seconds >= 0.7 * ideal
    assert res.seconds < 5 * ideal + 1.0
