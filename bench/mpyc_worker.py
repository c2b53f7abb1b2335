"""One MPyC party running a benchmark job (started by :mod:`smc.bench.baselines`).

Run as ``python -m smc.bench.mpyc_worker -P host:port ... -I i --no-log`` with the job (JSON) in
the ``SMC_BENCH_JOB`` environment variable: MPyC reads its own options from ``sys.argv`` when it
is imported, so nothing else may be passed on the command line.

The workload is MPyC's numpy-style secure arrays over ``SecFxp(64, 16)`` (the same 64 bits and 16
fractional bits as smc's fixed point; ``SecInt(64)`` for integer products), with the very same
input values as smc's run (party 0 holds x, party 1 holds y). Every placeholder carries
``integral=False`` explicitly: MPyC infers the flag from the value otherwise, and a party whose
placeholder differs runs a different protocol and hangs. Each repetition starts after an
all-to-all transfer (a barrier) and ends when this party holds its shares of the result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from smc.bench.baselines import Job, emit, job_from_env, keep_going, workload_arrays
from smc.bench.baselines import later_note as _later

OPS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "mul": lambda mpc, x, y: x * y,
    "mul_int": lambda mpc, x, y: x * y,
    "dot": lambda mpc, x, y: x @ y,
    "lt": lambda mpc, x, y: x < y,
    "eq": lambda mpc, x, y: x == y,
    "matmul": lambda mpc, x, y: x @ y,
    "sort": lambda mpc, x, y: mpc.np_sort(x),
    "max": lambda mpc, x, y: mpc.np_amax(x),
    "relu": lambda mpc, x, y: mpc.np_maximum(x, x * 0),
    "reciprocal": lambda mpc, x, y: 1 / x,
}


def _sent(mpc: Any) -> int:
    return sum(p.protocol.nbytes_sent for p in mpc.parties if p.pid != mpc.pid)


def _placeholder(mpc: Any, secure: Any, job: Job, value: Any, owner: int) -> Any:
    """The owner's values; the same shape and flags (zeros) at every other party."""
    a = value if mpc.pid == owner else np.zeros_like(value)
    if job.workload == "mul_int":
        return secure.array(a.astype(np.int64))
    return secure.array(a.astype(np.float64), integral=False)


async def _run(mpc: Any, job: Job) -> None:
    await mpc.start()
    secure = mpc.SecInt(64) if job.workload == "mul_int" else mpc.SecFxp(64, 16)
    op = OPS[job.workload]
    names = [f"p{i}" for i in range(len(mpc.parties))]
    sizes = list(job.sizes)
    history: list[tuple[int, float]] = []
    while sizes:
        size = sizes.pop(0)
        t_setup = time.perf_counter()
        arrays = workload_arrays(job.workload, names, size)

        x = mpc.input(_placeholder(mpc, secure, job, arrays["x"], 0), senders=0)
        y = None
        if "y" in arrays:
            y = mpc.input(_placeholder(mpc, secure, job, arrays["y"], 1), senders=1)
        await mpc.gather(x)
        times: list[float] = []
        sent = 0
        for rep in range(job.warmup + job.reps):
            await mpc.transfer(0)  # barrier: every party starts together
            b0 = _sent(mpc)
            t0 = time.perf_counter()
            z = op(mpc, x, y)
            await mpc.gather(z)
            dt = time.perf_counter() - t0
            if rep >= job.warmup:
                times.append(dt)
                sent = _sent(mpc) - b0
        emit(mpc.pid, size, "ok", times=times, bytes_sent=sent)
        history.append((size, time.perf_counter() - t_setup))  # the whole batch
        go = keep_going(job, history, sizes) if mpc.pid == 0 else None
        verdict = await mpc.transfer(go, senders=0)
        if verdict is not True:
            for s in sizes:
                emit(mpc.pid, s, "skipped", note=_later(verdict, s, sizes))
            break
    await mpc.shutdown()


def main() -> None:
    job = job_from_env()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from mpyc.runtime import mpc

    mpc.run(_run(mpc, job))


if __name__ == "__main__":
    main()
