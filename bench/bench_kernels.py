"""Micro-benchmark of the share kernels against their numpy twins.

Run ``python bench/bench_kernels.py``; prints one table row per kernel and size (best and median
wall time of several runs, after a warm-up call that also triggers the lazy Numba compile).
Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from smc.kernels import (
    ring_dot,
    ring_dot_reference,
    ring_matmul,
    ring_matmul_reference,
    rss3_dot_local,
    rss3_dot_local_reference,
    rss3_mul_local,
    rss3_mul_local_reference,
    trunc_finish,
    trunc_finish_reference,
)

REFERENCE_LIMIT_S = 20.0


def timeit(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Best and median seconds of ``repeats`` calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:10.2f}"


def row(name: str, size: str, kernel: tuple[float, float], twin: float | None) -> None:
    speedup = "-" if twin is None else f"{twin / kernel[0]:7.1f}x"
    print(
        f"{name:<16} {size:>12} {fmt_ms(kernel[0])} {fmt_ms(kernel[1])} {fmt_ms(twin)} {speedup:>8}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per measurement")
    parser.add_argument("--n", type=int, default=10**6, help="elements for elementwise/dot")
    args = parser.parse_args()
    reps: int = args.repeats
    n: int = args.n
    rng = np.random.default_rng(2024)

    def rand(*shape: int) -> Any:
        return rng.integers(0, 2**64, size=shape, dtype=np.uint64, endpoint=False)

    print(
        f"numpy {np.__version__}, numba {numba.__version__}, DISABLE_JIT={numba.config.DISABLE_JIT}"
    )
    head = ("kernel", "size", "best ms", "median ms", "twin ms", "speedup")
    print(f"{head[0]:<16} {head[1]:>12} {head[2]:>10} {head[3]:>10} {head[4]:>10} {head[5]:>8}")

    # Lazy Numba compile cost, paid once per process on first use.
    tiny = rand(4)
    start = time.perf_counter()
    rss3_mul_local(tiny, tiny, tiny, tiny)
    trunc_finish(tiny, tiny, tiny, 16, True)
    ring_dot(tiny, tiny)
    rss3_dot_local(tiny, tiny, tiny, tiny)
    print(f"(first-use compile of the 4 Numba kernels: {time.perf_counter() - start:.2f} s)")

    twin_256 = None
    for size in (256, 1024):
        a, b = rand(size, size), rand(size, size)
        kernel = timeit(
            lambda a=a, b=b: ring_matmul(a, b), reps if size == 256 else max(3, reps // 3)
        )
        twin: float | None
        if size == 256:
            twin = timeit(lambda a=a, b=b: ring_matmul_reference(a, b), 3)[0]
            twin_256 = twin
        elif twin_256 is not None and twin_256 * 64 > REFERENCE_LIMIT_S:
            twin = None  # estimated (k^3 scaling) to take too long
        else:
            start = time.perf_counter()
            expected = ring_matmul_reference(a, b)
            twin = time.perf_counter() - start
            assert np.array_equal(expected, ring_matmul(a, b))
        row("ring_matmul", f"{size}x{size}", kernel, twin)

    x0, x1, y0, y1 = rand(n), rand(n), rand(n), rand(n)
    assert np.array_equal(rss3_mul_local(x0, x1, y0, y1), rss3_mul_local_reference(x0, x1, y0, y1))
    row(
        "rss3_mul_local",
        f"{n:.0e}",
        timeit(lambda: rss3_mul_local(x0, x1, y0, y1), reps),
        timeit(lambda: rss3_mul_local_reference(x0, x1, y0, y1), reps)[0],
    )
    for public_part in (True, False):
        row(
            f"trunc_finish/{'P' if public_part else '-'}",
            f"{n:.0e}",
            timeit(lambda p=public_part: trunc_finish(x0, y0, y1, 16, p), reps),
            timeit(lambda p=public_part: trunc_finish_reference(x0, y0, y1, 16, p), reps)[0],
        )
    row(
        "ring_dot",
        f"{n:.0e}",
        timeit(lambda: ring_dot(x0, y0), reps),
        timeit(lambda: ring_dot_reference(x0, y0), reps)[0],
    )
    row(
        "rss3_dot_local",
        f"{n:.0e}",
        timeit(lambda: rss3_dot_local(x0, x1, y0, y1), reps),
        timeit(lambda: rss3_dot_local_reference(x0, x1, y0, y1), reps)[0],
    )


if __name__ == "__main__":
    main()
