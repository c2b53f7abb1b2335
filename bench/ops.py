"""The operations ``smc bench`` measures: builders with sample inputs, and declared costs.

Costs are derived from the engine's own declarations (``rss3_costs``, ``additive_costs``,
``ltz_cost``, ``tournament_levels``, ``bitonic_depth``) by composing them the way the protocols
do; tests/test_bench_cli.py checks every derived cost against measured traffic. Sample values
are quantised to the fixed-point grid so the plaintext reference sees exactly what the parties
hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from smc.bench.workload import Built, Check, Cost, Workload

# --------------------------------------------------------------------------- declared costs


def _suite_cost(suite: str, op: str, size: int, n: int) -> Cost:
    from smc.protocols.additive import additive_costs
    from smc.protocols.rss3 import rss3_costs

    c = rss3_costs(op, size) if suite == "rss3" else additive_costs(op, size, n)
    return Cost(c.rounds, c.bytes_per_endpoint)


def _ltz(suite: str, n: int, size: int) -> Cost:
    from smc.protocols.nonlinear import ltz_cost

    c = ltz_cost(suite, n, size)
    return Cost(c.rounds, c.bytes_per_endpoint)


def _seq(*costs: Cost) -> Cost:
    """Operations one after the other: rounds and bytes add up."""
    rounds = sum(c.rounds for c in costs)
    per = [sum(b) for b in zip(*(c.bytes_per_endpoint for c in costs), strict=True)]
    return Cost(rounds, tuple(per))


def _scale(c: Cost, k: int) -> Cost:
    return Cost(c.rounds, tuple(k * b for b in c.bytes_per_endpoint))


def bilinear_cost(suite: str, n: int, size_a: int, size_b: int, size_out: int) -> Cost:
    """A fixed-point product of any shape (dot, matmul) with truncation.

    rss3: local products, then one truncation of the output (declared as ``mul_fixed`` on the
    output size). additive: Beaver opening of both masked operands (``open_all`` on
    size_a + size_b), then the truncation of the output; the dealer sends party 0 the triple's
    product part (``mul_int``'s dealer bytes) and the truncation pair."""
    if suite == "rss3":
        return _suite_cost(suite, "mul_fixed", size_out, n)
    opening = _suite_cost(suite, "open_all", size_a + size_b, n)
    trunc = _suite_cost(suite, "trunc", size_out, n)
    dealer = (
        _suite_cost(suite, "mul_int", size_out, n).bytes_per_endpoint[n]
        + trunc.bytes_per_endpoint[n]
    )
    parties = [
        a + b for a, b in zip(opening.bytes_per_endpoint, trunc.bytes_per_endpoint, strict=True)
    ][:n]
    return Cost(opening.rounds + trunc.rounds, (*parties, dealer))


def _cost_mul(suite: str, n: int, size: int) -> Cost:
    return _suite_cost(suite, "mul_fixed", size, n)


def _cost_mul_int(suite: str, n: int, size: int) -> Cost:
    return _suite_cost(suite, "mul_int", size, n)


def _cost_dot(suite: str, n: int, size: int) -> Cost:
    return bilinear_cost(suite, n, size, size, 1)


def _cost_matmul(suite: str, n: int, size: int) -> Cost:
    return bilinear_cost(suite, n, size * size, size * size, size * size)


def _cost_lt(suite: str, n: int, size: int) -> Cost:
    return _ltz(suite, n, size)


def _cost_eq(suite: str, n: int, size: int) -> Cost:
    return _scale(_ltz(suite, n, size), 2)  # two sign tests side by side


def _cost_relu(suite: str, n: int, size: int) -> Cost:
    return _seq(_ltz(suite, n, size), _suite_cost(suite, "mul_int", size, n))


def _cost_max(suite: str, n: int, size: int) -> Cost:
    """Tournament: per level one sign test and one selection on the pairs."""
    from smc.protocols.nonlinear import tournament_levels

    levels, width, parts = tournament_levels(size), size, []
    for _ in range(levels):
        half = width // 2
        parts += [_ltz(suite, n, half), _suite_cost(suite, "mul_int", half, n)]
        width = half + width % 2
    return _seq(*parts) if parts else Cost(0, (0,) * (n + (suite == "additive")))


def _cost_sort(suite: str, n: int, size: int) -> Cost:
    """Bitonic network on the padded power of two: per layer a sign test and a swap product."""
    from smc.protocols.nonlinear import bitonic_depth

    half = (1 << max(0, (size - 1).bit_length())) // 2
    layer = _seq(_ltz(suite, n, half), _suite_cost(suite, "mul_int", half, n))
    depth = bitonic_depth(size)
    return Cost(depth * layer.rounds, tuple(depth * b for b in layer.bytes_per_endpoint))


# --------------------------------------------------------------------------- builders


def _rng(size: int, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng(size * 7919 + salt)


def _quant(v: np.ndarray, frac_bits: int = 16) -> np.ndarray:
    return np.rint(v * 2.0**frac_bits) / 2.0**frac_bits


def _close(atol: float, rtol: float, ref: np.ndarray) -> Check:
    def check(out: Mapping[str, np.ndarray]) -> str | None:
        got = np.asarray(out.get("out"))
        if got.shape != np.shape(ref):
            return f"output shape {got.shape}, expected {np.shape(ref)}"
        err = np.abs(got - ref) - rtol * np.abs(ref)
        worst = float(np.max(err, initial=0.0))
        return None if worst <= atol else f"max error {worst + atol:.3g} > {atol:g}"

    return check


def _binary(
    op: Callable[[Any, Any], Any],
    ref: Callable[[np.ndarray, np.ndarray], np.ndarray],
    lo: float,
    hi: float,
    atol: float,
    rtol: float = 0.0,
    dtype: str = "fixed",
    square: bool = False,
    equal_half: bool = False,
) -> Callable[[list[str], int], Built]:
    def build(names: list[str], size: int) -> Built:
        import smc

        shape = (size, size) if square else (size,)
        rng = _rng(size)
        if dtype == "int":
            x = rng.integers(int(lo), int(hi), shape)
            y = rng.integers(int(lo), int(hi), shape)
        else:
            x, y = _quant(rng.uniform(lo, hi, shape)), _quant(rng.uniform(lo, hi, shape))
        if equal_half:
            y = np.where(rng.random(shape) < 0.5, x, y)
        p = smc.ProgramBuilder(names)
        a = p.input(names[0], "x", shape=shape, dtype=dtype)
        b = p.input(names[1], "y", shape=shape, dtype=dtype)
        out = op(a, b)
        # opened to every party: a product revealed to one party only would be truncated and
        # opened in one protocol (Program.product_outputs), and the bench measures the product
        p.output("out", out)
        check = _close(atol, rtol, ref(x, y))
        return Built(
            p.build(), {names[0]: {"x": x}, names[1]: {"y": y}}, out.id, check, {"x": x, "y": y}
        )

    return build


def _unary(
    op: Callable[[Any], Any],
    ref: Callable[[np.ndarray], np.ndarray],
    lo: float,
    hi: float,
    atol: float,
    rtol: float = 0.0,
    signed_log: bool = False,
) -> Callable[[list[str], int], Built]:
    def build(names: list[str], size: int) -> Built:
        import smc

        rng = _rng(size, 1)
        if signed_log:
            mags = np.exp(rng.uniform(np.log(lo), np.log(hi), size))
            x = _quant(mags * rng.choice([-1.0, 1.0], size))
        else:
            x = _quant(rng.uniform(lo, hi, size))
        p = smc.ProgramBuilder(names)
        a = p.input(names[0], "x", shape=(size,))
        out = op(a)
        p.output("out", out, to=names[0])
        return Built(p.build(), {names[0]: {"x": x}}, out.id, _close(atol, rtol, ref(x)), {"x": x})

    return build


def _dot(a: Any, b: Any) -> Any:
    import smc

    return smc.dot(a, b)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-v)))


def _one(_size: int) -> int:
    return 1


def _n(size: int) -> int:
    return size


def _sq(size: int) -> int:
    return size * size


def _op(
    name: str,
    summary: str,
    sizes: tuple[int, ...],
    unit: str,
    mem_words: int,
    build: Callable[[list[str], int], Built],
    cost: Callable[[str, int, int], Cost | None] | None = None,
    meaning: str = "n elements",
    ops: Callable[[int], int] = _n,
    elements: Callable[[int], int] = _n,
) -> Workload:
    return Workload(
        name, "op", summary, meaning, sizes, unit, ops, elements, mem_words, build, cost
    )


# fmt: off
SMALL = (1_000, 10_000, 100_000)
LARGE = (10_000, 100_000, 1_000_000)

OPS: tuple[Workload, ...] = (
    _op("mul", "elementwise fixed-point product x*y (with truncation)", LARGE, "mul", 24,
        _binary(lambda a, b: a * b, lambda x, y: x * y, -100, 100, 2.0**-15), _cost_mul),
    _op("mul_int", "elementwise integer product x*y (no truncation)", LARGE, "mul", 16,
        _binary(lambda a, b: a * b, lambda x, y: x * y, -1000, 1000, 0.0, dtype="int"),
        _cost_mul_int),
    _op("dot", "inner product of two fixed-point vectors", LARGE, "mac", 16,
        _binary(_dot, np.dot, -1, 1, 2.0**-12), _cost_dot, meaning="n elements per vector"),
    _op("lt", "comparison x < y (0/1 result)", SMALL, "comparison", 56,
        _binary(lambda a, b: a < b, lambda x, y: (x < y).astype(np.int64), -100, 100, 0.0),
        _cost_lt),
    _op("eq", "equality x == y (0/1 result; half the pairs are equal)", SMALL, "comparison",
        106,
        _binary(lambda a, b: a == b, lambda x, y: (x == y).astype(np.int64), -100, 100, 0.0,
                equal_half=True),
        _cost_eq),
    _op("matmul", "product of two n x n fixed-point matrices", (64, 128, 256), "matmul", 30,
        _binary(lambda a, b: a @ b, lambda x, y: x @ y, -4, 4, 2.0**-8, square=True),
        _cost_matmul, meaning="n (n x n matrices)", ops=_one, elements=_sq),
    _op("sort", "oblivious sort of n fixed-point values (bitonic network)", (64, 256, 1_024),
        "element", 192, _unary(lambda a: a.sort(), np.sort, -100, 100, 0.0), _cost_sort),
    _op("max", "maximum of n values (tournament)", SMALL, "element", 28,
        _unary(lambda a: a.max(), np.max, -100, 100, 0.0), _cost_max),
    _op("relu", "max(x, 0) elementwise", SMALL, "relu", 54,
        _unary(lambda a: a.relu(), lambda v: np.maximum(v, 0), -100, 100, 0.0), _cost_relu),
    _op("sigmoid", "logistic function 1/(1+exp(-x))", SMALL, "sigmoid", 150,
        _unary(lambda a: a.sigmoid(), _sigmoid, -10, 10, 1e-2)),
    _op("exp", "exp(x) on [-8, 8]", SMALL, "exp", 172,
        _unary(lambda a: a.exp(), np.exp, -8, 8, 1e-3, 1e-2)),
    _op("reciprocal", "1/x for |x| in [0.5, 100]", SMALL, "reciprocal", 288,
        _unary(lambda a: a.reciprocal(), lambda v: 1 / v, 0.5, 100, 1e-3, 1e-2, signed_log=True)),
)
# fmt: on
