"""Bad input, vanished peers and tampered frames get a specific error quickly, never a hang."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from typing_extensions import Buffer

import smc
from smc import runtime
from smc.config import FixedPointConfig, SessionConfig
from smc.errors import EncodingError, InputError, ProtocolError, TransportError
from smc.executor import Executor, PartyResult
from smc.protocols.keys import deal_keys
from smc.transport import InMemoryNetwork, NetemConfig, Transport

NAMES = ["p0", "p1", "p2"]


def small_program(names: list[str] = NAMES) -> smc.Program:
    p = smc.ProgramBuilder(names)
    x = p.input(names[0], "x", shape=(4,))
    y = p.input(names[1], "y", shape=(4,))
    k = p.input(names[-1], "k", shape=(4,), dtype="int")
    p.output("out", (x * y + x) * 0.5 + k)  # several rounds: input, product, truncation, open
    return p.build()


GOOD = {
    "p0": {"x": np.array([1.0, -2.0, 3.5, 0.0])},
    "p1": {"y": np.array([2.0, 0.25, -1.0, 7.0])},
    "p2": {"k": np.array([1, 2, 3, -4])},
}
EXPECTED = (
    np.array([1.0, -2.0, 3.5, 0.0]) * np.array([2.0, 0.25, -1.0, 7.0]) + [1.0, -2.0, 3.5, 0.0]
) * 0.5 + [1, 2, 3, -4]


def test_good_run_for_reference() -> None:
    res = smc.simulate(small_program(), GOOD, suite="rss3")
    np.testing.assert_allclose(res["p1"]["out"], EXPECTED, atol=3 * 2.0**-16)


# ------------------------------------------------------------------------------ bad inputs


def _fails_fast(
    expected: type[BaseException], match: str, inputs: Any, suite: str = "rss3"
) -> None:
    before = threading.active_count()
    start = time.perf_counter()
    with pytest.raises(expected, match=match):
        smc.simulate(small_program(), inputs, suite=suite, timeout=30.0)
    assert time.perf_counter() - start < 5.0
    assert threading.active_count() <= before  # every endpoint thread was joined


@pytest.mark.parametrize("suite", ["rss3", "additive"])
def test_missing_input(suite: str) -> None:
    inputs = {**GOOD, "p1": {}}
    _fails_fast(InputError, r"party 'p1' is missing input 'y' \(shape \(4,\)\)", inputs, suite)
    _fails_fast(
        InputError,
        r"party 'p0' is missing input 'x'",
        {k: v for k, v in GOOD.items() if k != "p0"},
        suite,
    )


@pytest.mark.parametrize("suite", ["rss3", "additive"])
def test_extra_input(suite: str) -> None:
    inputs = {**GOOD, "p1": {"y": GOOD["p1"]["y"], "z": np.ones(4)}}
    _fails_fast(
        InputError,
        r"party 'p1' gave inputs \['z'\] that the program does not declare",
        inputs,
        suite,
    )
    inputs = {**GOOD, "p2": {"k": GOOD["p2"]["k"], "x": np.ones(4)}}  # another party's input name
    _fails_fast(InputError, r"party 'p2' gave inputs \['x'\]", inputs, suite)


@pytest.mark.parametrize("bad", [np.ones(3), np.ones((4, 1)), np.ones((2, 2)), 1.0, np.ones(5)])
def test_wrong_shape(bad: Any) -> None:
    inputs = {**GOOD, "p0": {"x": bad}}
    _fails_fast(
        InputError, r"input 'x' of party 'p0' has shape .* the program declares \(4,\)", inputs
    )


def test_inputs_for_unknown_party() -> None:
    _fails_fast(
        InputError, r"\['mallory'\], which are not parties", {**GOOD, "mallory": {"x": np.ones(4)}}
    )
    _fails_fast(InputError, r"not parties", {**GOOD, "dealer": {}}, "additive")


@pytest.mark.parametrize("suite", ["rss3", "additive"])
def test_values_out_of_range(suite: str) -> None:
    fp = FixedPointConfig()
    _fails_fast(
        EncodingError,
        "outside the fixed-point range",
        {**GOOD, "p1": {"y": np.array([0, 0, fp.max_value, 0])}},
        suite,
    )
    _fails_fast(
        EncodingError, "non-finite", {**GOOD, "p0": {"x": np.array([0, np.nan, 0, 0])}}, suite
    )
    _fails_fast(
        EncodingError, "fractional part", {**GOOD, "p2": {"k": np.array([0.5, 0, 0, 0])}}, suite
    )
    _fails_fast(
        EncodingError, "outside the range", {**GOOD, "p2": {"k": np.array([2**62, 0, 0, 0])}}, suite
    )


# ------------------------------------------------------------------------------ transport wrappers


class Wrapped(Transport):
    """Delegates to an inner transport; subclasses override ``send``/``recv`` to misbehave."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner.me, inner.endpoints)
        self.inner = inner
        self.stats = inner.stats
        self.sends = 0

    def send(self, peer: int, frame: Buffer) -> None:
        self.sends += 1
        self.inner.send(peer, frame)

    def recv(self, peer: int, timeout: float | None = None) -> Buffer:
        return self.inner.recv(peer, timeout)


class Crashes(Wrapped):
    """The endpoint's link dies after its first round."""

    def recv(self, peer: int, timeout: float | None = None) -> Buffer:
        if self.sends >= 1:
            raise ConnectionResetError(f"endpoint {self.me}: connection reset by peer {peer}")
        return self.inner.recv(peer, timeout)


class BlackHole(Wrapped):
    """After its first send, everything this endpoint sends is silently lost."""

    def send(self, peer: int, frame: Buffer) -> None:
        self.sends += 1
        if self.sends <= 1:
            self.inner.send(peer, frame)


def _patch_network(monkeypatch: pytest.MonkeyPatch, victim: int, wrapper: type[Wrapped]) -> None:
    class Net(InMemoryNetwork):
        def endpoint(self, me: int) -> Any:
            inner = super().endpoint(me)
            return wrapper(inner) if me == victim else inner

    monkeypatch.setattr(runtime, "InMemoryNetwork", Net)


@pytest.mark.parametrize("suite", ["rss3", "additive"])
def test_endpoint_crash_mid_computation_surfaces_root_cause(
    monkeypatch: pytest.MonkeyPatch, suite: str
) -> None:
    _patch_network(monkeypatch, 2, Crashes)
    start = time.perf_counter()
    with pytest.raises(ConnectionResetError, match="endpoint 2: connection reset"):
        smc.simulate(small_program(), GOOD, suite=suite, timeout=60.0)
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("suite", ["rss3", "additive"])
def test_silent_peer_times_out_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch, suite: str
) -> None:
    _patch_network(monkeypatch, 1, BlackHole)
    start = time.perf_counter()
    with pytest.raises(TransportError, match=r"no frame from endpoint \d within 1.0 s"):
        smc.simulate(small_program(), GOOD, suite=suite, timeout=1.0)
    assert time.perf_counter() - start < 8.0


def test_external_abort_stops_every_endpoint() -> None:
    prog = small_program()
    results, errors, _, elapsed = run_endpoints(
        prog, "rss3", GOOD, netem=NetemConfig(latency_s=0.3), abort_after=0.2
    )
    assert elapsed < 3.0
    assert all(isinstance(e, TransportError) and "network closed" in str(e) for e in errors)
    assert all(r is None for r in results)


# ------------------------------------------------------------------------------ executor-level runs


def run_endpoints(
    program: smc.Program,
    suite: str,
    inputs: dict[str, dict[str, Any]],
    wrap: dict[int, Callable[[Transport], Transport]] | None = None,
    *,
    timeout: float = 10.0,
    netem: NetemConfig | None = None,
    abort_after: float | None = None,
) -> tuple[list[PartyResult | None], list[BaseException | None], InMemoryNetwork, float]:
    """Wire endpoints exactly like smc.simulate, with optional transport wrappers per endpoint."""
    config = SessionConfig(
        suite, program.parties, FixedPointConfig(program.frac_bits), program.hash, "test"
    )
    endpoints = config.n + (1 if config.has_dealer else 0)
    net = InMemoryNetwork(endpoints, netem)
    keys = deal_keys(endpoints, config.session_id)
    results: list[PartyResult | None] = [None] * endpoints
    errors: list[BaseException | None] = [None] * endpoints
    wrap = wrap or {}

    def work(me: int) -> None:
        try:
            transport: Transport = net.endpoint(me)
            if me in wrap:
                transport = wrap[me](transport)
            mine = inputs.get(program.parties[me], {}) if me < config.n else {}
            results[me] = Executor(program, config, me, transport, keys[me], timeout).run(mine)
        except BaseException as exc:
            errors[me] = exc
            net.close()

    threads = [threading.Thread(target=work, args=(me,)) for me in range(endpoints)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    if abort_after is not None:
        time.sleep(abort_after)
        net.close()
    for t in threads:
        t.join(30.0)
        assert not t.is_alive(), "an endpoint hung"
    return results, errors, net, time.perf_counter() - start


class Tamper(Wrapped):
    """Replaces the k-th frame sent to ``peer`` by the frames ``fn(k, frame)`` returns."""

    def __init__(
        self, inner: Transport, peer: int, fn: Callable[[int, bytes], list[bytes]]
    ) -> None:
        super().__init__(inner)
        self.peer = peer
        self.fn = fn
        self.count = 0
        self.history: list[bytes] = []

    def send(self, peer: int, frame: Buffer) -> None:
        if peer != self.peer:
            self.inner.send(peer, frame)
            return
        raw = bytes(memoryview(frame))
        self.history.append(raw)
        for out in self.fn(self.count, raw):
            self.inner.send(peer, out)
        self.count += 1


def two_party_program() -> smc.Program:
    """additive, 2 parties: party 0 sends to party 1 in each of three rounds."""
    p = smc.ProgramBuilder(["p0", "p1"])
    x = p.input("p0", "x", shape=(5,))
    y = p.input("p1", "y", shape=(5,))
    p.output("out", x * y)  # Beaver round, truncation round, open round
    return p.build()


TWO_INPUTS = {"p0": {"x": np.arange(5.0)}, "p1": {"y": np.full(5, -1.5)}}


def _tampered(fn: Callable[[int, bytes], list[bytes]]) -> tuple[list[BaseException | None], float]:
    holder: dict[str, Tamper] = {}

    def wrap(t: Transport) -> Transport:
        holder["t"] = Tamper(t, 1, fn)
        return holder["t"]

    _, errors, _, elapsed = run_endpoints(two_party_program(), "additive", TWO_INPUTS, {0: wrap})
    assert elapsed < 5.0
    assert any(e is not None for e in errors), "tampering went unnoticed"
    return errors, elapsed


def test_untampered_executor_run_matches_simulate() -> None:
    results, errors, _, _ = run_endpoints(
        two_party_program(), "additive", TWO_INPUTS, {0: lambda t: Tamper(t, 1, lambda k, f: [f])}
    )
    assert errors == [None, None, None]
    for r in results[:2]:
        assert r is not None
        np.testing.assert_allclose(r.outputs["out"], np.arange(5.0) * -1.5, atol=2.0**-16, rtol=0)


def _duplicate_first() -> Callable[[int, bytes], list[bytes]]:
    return lambda k, f: [f, f] if k == 0 else [f]


def _replay_first_in_round_two() -> Callable[[int, bytes], list[bytes]]:
    first: list[bytes] = []

    def fn(k: int, f: bytes) -> list[bytes]:
        if k == 0:
            first.append(f)
        return [first[0]] if k == 1 else [f]

    return fn


def _swap_first_two() -> Callable[[int, bytes], list[bytes]]:
    held: list[bytes] = []

    def fn(k: int, f: bytes) -> list[bytes]:
        if k == 0:
            held.append(f)
            return []
        return [f, *held] if k == 1 else [f]

    return fn


def _at(
    index: int, change: Callable[[bytes], bytes]
) -> Callable[[], Callable[[int, bytes], list[bytes]]]:
    return lambda: lambda k, f: [change(f)] if k == index else [f]


TAMPERING: dict[str, tuple[Callable[[], Callable[[int, bytes], list[bytes]]], str]] = {
    "duplicate": (_duplicate_first, r"for round 1, expected round 2"),
    "replay": (_replay_first_in_round_two, r"for round 1, expected round 2"),
    "reorder": (_swap_first_two, r"for round 2, expected round 1"),
    "truncate": (_at(1, lambda f: f[:-3]), r"is 45 bytes, not a whole frame"),
    "empty": (_at(0, lambda f: b""), r"is 0 bytes, not a whole frame"),
    "header_only": (_at(0, lambda f: f[:4]), r"is 4 bytes, not a whole frame"),
    "shorter": (_at(1, lambda f: f[:-8]), r"carries 4 ring elements, expected 5"),
    "longer": (_at(2, lambda f: f + bytes(8)), r"carries 6 ring elements, expected 5"),
    "future": (
        _at(0, lambda f: (7).to_bytes(8, "little") + f[8:]),
        r"for round 7, expected round 1",
    ),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_tampered_frame_is_refused(name: str) -> None:
    factory, match = TAMPERING[name]
    errors, _ = _tampered(factory())
    err = errors[1]
    assert isinstance(err, ProtocolError), repr(errors)
    assert "from endpoint 0" in str(err)
    assert re.search(match, str(err)), str(err)
    # the other endpoints were woken by the abort, not left waiting
    assert all(e is None or isinstance(e, TransportError) for k, e in enumerate(errors) if k != 1)


def test_frames_delivered_as_read_only_bytes_work() -> None:
    """A network transport hands the executor immutable ``bytes``; nothing may write into them."""

    class AsBytes(Wrapped):
        def recv(self, peer: int, timeout: float | None = None) -> Buffer:
            return bytes(memoryview(self.inner.recv(peer, timeout)))

    for suite, names in (("rss3", NAMES), ("additive", NAMES), ("additive", ["p0", "p1"])):
        prog = small_program(names)
        inputs = {
            "p0": GOOD["p0"],
            "p1": GOOD["p1"],
            names[-1]: {**GOOD.get(names[-1], {}), "k": GOOD["p2"]["k"]},
        }
        endpoints = len(names) + (1 if suite == "additive" else 0)
        results, errors, _, _ = run_endpoints(
            prog, suite, inputs, {me: AsBytes for me in range(endpoints)}
        )
        assert errors == [None] * endpoints, repr(errors)
        for r in results[: len(names)]:
            assert r is not None
            np.testing.assert_allclose(r.outputs["out"], EXPECTED, atol=3 * 2.0**-16)


def test_peer_with_another_session_configuration_is_refused() -> None:
    """Every frame carries 32 bits of the session digest: a peer configured differently (here:
    another session id) is refused on its first frame instead of producing garbage."""
    import threading

    from smc.config import SessionConfig
    from smc.executor import Executor
    from smc.protocols.keys import deal_keys
    from smc.transport import InMemoryNetwork

    p = smc.ProgramBuilder(["a", "b", "c"])
    x = p.input("a", "x", shape=(2,))
    p.output("y", x * x)
    prog = p.build()
    configs = [
        SessionConfig("rss3", prog.parties, program_hash=prog.hash, session_id=sid)
        for sid in ("s1", "s1", "s2")
    ]
    net = InMemoryNetwork(3)
    keys = deal_keys(3, "s1")
    errors: list[BaseException] = []

    def work(me: int) -> None:
        try:
            inputs = {"x": np.ones(2)} if me == 0 else {}
            Executor(prog, configs[me], me, net.endpoint(me), keys[me], 5.0).run(inputs)
        except BaseException as exc:
            errors.append(exc)
            net.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert any(
        isinstance(e, smc.ProtocolError) and "another session configuration" in str(e)
        for e in errors
    ), errors
