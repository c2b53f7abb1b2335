"""What a party (or a tolerated coalition) receives is uniform and independent of the inputs.

``simulate(..., record_view=True)`` records, per endpoint, every payload it receives as
``(round, peer, uint64 array)``. The same program (input sharing, fixed and integer
multiplications, a truncation) runs on two very different input sets; its result is opened only
to a party outside the observed set, so no opened value is part of the view. For every received
payload we check

* bit balance: each of the 64 bit positions is 1 within 6 sigma of half the time;
* a byte-level chi-square test does not reject uniformity at p < 1e-6;
* two-sample tests (per-bit frequencies, Kolmogorov-Smirnov on the top 32 bits) find no
  difference between the two input sets (alpha = 1e-6).

Observed sets: each single party in rss3 (honest majority); in additive, the n-1 parties
1..n-1, and the n-1 parties 0..n-2 (every coalition that excludes one party and the dealer),
looking only at the messages they receive from outside the coalition.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from helpers import chi2_critical

import smc
from smc import executor
from smc.prg import PRF
from smc.ring import U64

N = 20_000
ALPHA = 1e-6


# ------------------------------------------------------------------------------ statistics


CHI2_255 = chi2_critical(255, ALPHA)
KS_C = math.sqrt(-math.log(ALPHA / 2) / 2)


def bit_counts(words: U64) -> np.ndarray:
    shifts = np.arange(64, dtype=np.uint64)
    return np.array([int(np.count_nonzero((words >> s) & np.uint64(1))) for s in shifts])


def uniformity_problems(words: U64) -> list[str]:
    n = words.size
    problems = []
    ones = bit_counts(words)
    worst = int(np.argmax(np.abs(ones - n / 2)))
    if abs(ones[worst] - n / 2) >= 6 * math.sqrt(n) / 2:
        problems.append(f"bit {worst} is 1 in {ones[worst]} of {n} words")
    raw = np.ascontiguousarray(words).view(np.uint8)
    counts = np.bincount(raw, minlength=256).astype(np.float64)
    expected = raw.size / 256
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    if chi2 >= CHI2_255:
        problems.append(f"byte chi-square {chi2:.1f} >= {CHI2_255:.1f}")
    return problems


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def two_sample_problems(u: U64, v: U64) -> list[str]:
    n, m = u.size, v.size
    problems = []
    diff = np.abs(bit_counts(u) / n - bit_counts(v) / m)
    bound = 6 * math.sqrt(0.25 / n + 0.25 / m)
    if np.any(diff >= bound):
        problems.append(f"bit frequencies differ by {diff.max():.4f} >= {bound:.4f}")
    top_u = (u >> np.uint64(32)).astype(np.float64)
    top_v = (v >> np.uint64(32)).astype(np.float64)
    d = ks_statistic(top_u, top_v)
    crit = KS_C * math.sqrt((n + m) / (n * m))
    if d >= crit:
        problems.append(f"KS distance {d:.4f} >= {crit:.4f}")
    return problems


def test_statistics_detect_structure() -> None:
    rng_words = PRF(bytes(16)).draw("control", N)
    assert uniformity_problems(rng_words) == []
    plain = np.full(N, np.uint64(500 << 16))
    assert uniformity_problems(plain)
    small = np.arange(N, dtype=np.uint64)  # small values: the top bits are all zero
    assert uniformity_problems(small)
    skew = rng_words & ~np.uint64(1 << 40)  # one stuck bit
    assert any("bit 40" in p for p in uniformity_problems(skew))
    other = PRF(bytes(15) + b"\x01").draw("control", N)
    assert two_sample_problems(rng_words, other) == []
    assert two_sample_problems(rng_words, rng_words >> np.uint64(1))
    assert two_sample_problems(rng_words, skew)


# ------------------------------------------------------------------------------ the program


def program(n: int, recipient: int) -> smc.Program:
    names = [f"p{i}" for i in range(n)]
    p = smc.ProgramBuilder(names)
    x = p.input(names[0], "x", shape=N)
    y = p.input(names[1 % n], "y", shape=N)
    i1 = p.input(names[2 % n], "i1", shape=N, dtype="int")
    i2 = p.input(names[0], "i2", shape=N, dtype="int")
    a = x * y  # fixed product: multiply + truncate
    b = a * x  # dependent fixed product
    e = x * 0.3  # local product then truncation
    c = i1 * i2  # integer products: no truncation
    d = c * i1
    to = names[recipient]
    p.output("fixed", a + b + e, to=to)
    p.output("int", d, to=to)
    p.output("prod", y * x, to=to)  # only revealed: rss3 truncates and opens it in one step
    return p.build()


INPUT_SETS = {
    "zeros": lambda n: {
        "x": np.zeros(N),
        "y": np.zeros(N),
        "i1": np.zeros(N, dtype=np.int64),
        "i2": np.zeros(N, dtype=np.int64),
    },
    "large": lambda n: {
        "x": np.full(N, 500.0),
        "y": np.full(N, -499.75),
        "i1": np.full(N, 12345, dtype=np.int64),
        "i2": np.full(N, -(2**20), dtype=np.int64),
    },
}


def run(suite: str, n: int, recipient: int, which: str) -> smc.SimulationResult:
    vals = INPUT_SETS[which](n)
    names = [f"p{i}" for i in range(n)]
    inputs: dict[str, dict[str, Any]] = {}
    for name, owner in (("x", 0), ("y", 1 % n), ("i1", 2 % n), ("i2", 0)):
        inputs.setdefault(names[owner], {})[name] = vals[name]
    res = smc.simulate(program(n, recipient), inputs, suite=suite, record_view=True)
    # the recipient got the right answer; nobody else got anything
    x, y = vals["x"], vals["y"]
    ref = x * y + x * y * x + x * 0.3
    assert np.max(np.abs(res[names[recipient]]["fixed"] - ref)) <= 1e-2
    np.testing.assert_array_equal(
        res[names[recipient]]["int"], vals["i1"] * vals["i2"] * vals["i1"]
    )
    assert np.max(np.abs(res[names[recipient]]["prod"] - x * y)) <= 1e-2
    for i, name in enumerate(names):
        if i != recipient:
            assert res[name] == {}
    return res


def coalition_view(res: smc.SimulationResult, members: set[int]) -> list[tuple[int, int, int, U64]]:
    """(receiver, round, sender, payload) for every message a member receives from outside."""
    out = []
    for me in sorted(members):
        for rnd, peer, payload in res.stats[me].view:
            if peer not in members:
                out.append((me, rnd, peer, payload))
    return out


CASES = [
    ("rss3", 3, 0, {1}),
    ("rss3", 3, 0, {2}),
    ("rss3", 3, 1, {0}),
    ("additive", 2, 0, {1}),
    ("additive", 2, 1, {0}),
    ("additive", 3, 0, {1, 2}),
    ("additive", 3, 2, {0, 1}),
]


def grouped() -> Iterator[tuple[str, int, int, list[set[int]]]]:
    keys: dict[tuple[str, int, int], list[set[int]]] = {}
    for suite, n, rec, obs in CASES:
        keys.setdefault((suite, n, rec), []).append(obs)
    for (suite, n, rec), obs_list in keys.items():
        yield suite, n, rec, obs_list


@pytest.mark.parametrize(("suite", "n", "recipient", "observed"), list(grouped()))
def test_views_are_uniform_and_input_independent(
    suite: str, n: int, recipient: int, observed: list[set[int]]
) -> None:
    runs = {which: run(suite, n, recipient, which) for which in INPUT_SETS}
    for members in observed:
        assert recipient not in members
        views = {which: coalition_view(res, members) for which, res in runs.items()}
        va, vb = views["zeros"], views["large"]
        assert va, f"coalition {members} received nothing: the test would be vacuous"
        # the communication pattern (who receives what size in which round) is input-independent
        assert [(r, k, p, a.size) for r, k, p, a in va] == [(r, k, p, a.size) for r, k, p, a in vb]
        problems = []
        for (me, rnd, peer, a), (_, _, _, b) in zip(va, vb, strict=True):
            where = f"{suite} n={n}: party {me} round {rnd} from {peer} ({a.size} words)"
            problems += [f"{where}, zeros: {p}" for p in uniformity_problems(a)]
            problems += [f"{where}, large: {p}" for p in uniformity_problems(b)]
            problems += [f"{where}, zeros vs large: {p}" for p in two_sample_problems(a, b)]
        assert not problems, "\n".join(problems)
        total = sum(a.size for *_, a in va)
        assert total >= N  # at least the input sharing and the products were observed


# ------------------------------------------------------------------------------ outputs


def _record_opened_shares(monkeypatch: pytest.MonkeyPatch) -> dict[int, list[tuple[Any, ...]]]:
    """Record, per endpoint, the share each party feeds into every open protocol."""
    shares: dict[int, list[tuple[Any, ...]]] = {}
    make = executor.make_suite

    def patched(config: Any, me: int, keys: Any) -> Any:
        suite = make(config, me, keys)
        original = suite.open

        def open_recorded(label: str, a: Any, shape: Any, to: Any) -> Any:
            if a:  # the dealer holds no share (None or ())
                shares.setdefault(me, []).append(
                    tuple(np.array(c, dtype=np.uint64).reshape(-1) for c in a)
                )
            return original(label, a, shape, to)

        suite.open = open_recorded  # type: ignore[method-assign]
        return suite

    monkeypatch.setattr(executor, "make_suite", patched)
    return shares


def _contains_window(payload: U64, target: U64) -> bool:
    m = target.size
    for o in np.flatnonzero(payload[: payload.size - m + 1] == target[0]):
        if np.array_equal(payload[o : o + m], target):
            return True
    return False


@pytest.mark.parametrize(("suite", "n"), [("rss3", 3), ("additive", 2), ("additive", 3)])
@pytest.mark.parametrize("recipient", [0, 2])
def test_only_the_recipient_can_complete_the_output(
    monkeypatch: pytest.MonkeyPatch, suite: str, n: int, recipient: int
) -> None:
    recipient %= n
    shares = _record_opened_shares(monkeypatch)
    names = [f"p{i}" for i in range(n)]
    rng = np.random.default_rng(5)
    xv, yv = rng.uniform(-1000, 1000, 64), rng.uniform(-30, 30, 64)
    p = smc.ProgramBuilder(names)
    x = p.input(names[0], "x", shape=64)
    y = p.input(names[1], "y", shape=64)
    p.output("out", x * y + x, to=names[recipient])
    res = smc.simulate(
        p.build(), {names[0]: {"x": xv}, names[1]: {"y": yv}}, suite=suite, record_view=True
    )
    got = res[names[recipient]]["out"]
    fx, fy = np.rint(xv * 65536) / 65536, np.rint(yv * 65536) / 65536
    assert np.max(np.abs(got - (fx * fy + fx))) <= 2.0**-16
    plain = np.rint(got * 65536).astype(np.int64).view(np.uint64)
    # the parties' shares of the output reconstruct the plaintext the recipient decoded
    firsts = [shares[i][0][0] for i in range(n)]
    np.testing.assert_array_equal(sum(firsts[1:], firsts[0].copy()), plain)
    for i in range(n):
        own = shares[i][0][0] + (shares[i][0][1] if suite == "rss3" else np.uint64(0))
        missing = plain - own  # what party i would need to receive to learn the output
        found = any(_contains_window(payload, missing) for _, _, payload in res.stats[i].view)
        if i == recipient:
            assert found == (suite == "rss3" or n == 2)  # positive control: the check can see it
        else:
            assert not found, f"{suite}: non-recipient party {i} received the missing share"
            assert res[names[i]] == {}


def test_a_product_revealed_to_the_dealer_of_its_chunk_arrives_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """rss3 truncates and opens a product revealed to one party in one protocol. Where the
    recipient is the dealer of a chunk it knows p's and q's PRF material, so either half of the
    third output component on its own would show it the opened z + r and so z: p and q add and
    subtract a mask only they share. Checked white-box: what the dealer receives from p is not
    p's half, yet the two messages still add up to the two halves."""
    from smc.kernels import trunc as fused_kernels
    from smc.protocols import rss3

    halves: dict[bool, list[U64]] = {True: [], False: []}  # at p (True) and at q (False)
    original = fused_kernels.open_finish

    def recording(*args: Any) -> U64:
        out = original(*args)
        halves[bool(args[-1])].append(np.array(out, dtype=np.uint64))
        return out

    monkeypatch.setattr(rss3.fused, "open_finish", recording)
    names = ["p0", "p1", "p2"]
    p = smc.ProgramBuilder(names)
    x, y = p.input("p1", "x", shape=30), p.input("p2", "y", shape=30)
    p.output("z", x * y, to="p0")
    prog = p.build()
    assert prog.product_outputs()
    xv, yv = np.linspace(-50, 50, 30), np.linspace(3, -7, 30)
    res = smc.simulate(prog, {"p1": {"x": xv}, "p2": {"y": yv}}, record_view=True)
    assert np.max(np.abs(res["p0"]["z"] - xv * yv)) <= 1e-3
    last = max(r for r, _, _ in res.stats[0].view)
    got = {peer: payload for r, peer, payload in res.stats[0].view if r == last}
    # chunk 0 (elements 0..9) has party 0 as its dealer, party 1 as p and party 2 as q; each
    # round-2 frame to party 0 starts with chunk 0's part
    from_p, from_q = got[1][:10], got[2][:10]
    pairs = [
        (hq, hp)
        for hq in halves[True]
        for hp in halves[False]
        if np.array_equal(from_p + from_q, hq + hp)
    ]
    assert len(pairs) == 1  # the two messages add up to chunk 0's two halves...
    half_q, half_p = pairs[0]
    assert not np.array_equal(from_p, half_q)  # ...but neither is a half in the clear
    assert not np.array_equal(from_q, half_p)
