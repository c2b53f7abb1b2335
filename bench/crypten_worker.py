"""One CrypTen party running a benchmark job (started by :mod:`smc.bench.baselines`).

Run as ``python -m smc.bench.crypten_worker`` with the job (JSON) in ``SMC_BENCH_JOB`` and
CrypTen's rendezvous in ``RENDEZVOUS``, ``WORLD_SIZE``, ``RANK`` and ``DISTRIBUTED_BACKEND``
(gloo). One torch thread per party (``torch.set_num_threads(1)``), CrypTen's default trusted
first party providing the Beaver triples, its default 16 fractional bits, and the very same
input values as smc's run (party 0 holds x, party 1 holds y). Each repetition starts after a
barrier; CrypTen computes eagerly, so the time is that of the call.

CrypTen 0.4.1 imports ``torch.onnx._internal.registration``, which torch 2.13 moved to
``torch.onnx._internal.torchscript_exporter.registration``; :func:`import_crypten` aliases the
module in ``sys.modules`` before importing crypten.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from typing import Any

from smc.bench.baselines import Job, emit, job_from_env, keep_going, workload_arrays
from smc.bench.baselines import later_note as _later

OLD_ONNX = "torch.onnx._internal.registration"
NEW_ONNX = "torch.onnx._internal.torchscript_exporter.registration"

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "mul": lambda x, y: x * y,
    "dot": lambda x, y: x.dot(y),
    "lt": lambda x, y: x < y,
    "eq": lambda x, y: x == y,
    "matmul": lambda x, y: x.matmul(y),
    "max": lambda x, y: x.max(),
    "relu": lambda x, y: x.relu(),
    "sigmoid": lambda x, y: x.sigmoid(),
    "exp": lambda x, y: x.exp(),
    "reciprocal": lambda x, y: x.reciprocal(),
}


def import_crypten() -> Any:
    """Import crypten under torch 2.13 (see the module docstring)."""
    import torch  # noqa: F401

    if OLD_ONNX not in sys.modules:
        try:
            importlib.import_module(OLD_ONNX)
        except ImportError:
            sys.modules[OLD_ONNX] = importlib.import_module(NEW_ONNX)
    return importlib.import_module("crypten")


def _run(job: Job) -> None:
    import torch

    torch.set_num_threads(1)
    crypten = import_crypten()
    crypten.cfg.communicator.verbose = True  # count rounds and bytes
    crypten.init()
    comm = crypten.communicator.get()
    rank, world = comm.get_rank(), comm.get_world_size()
    names = [f"p{i}" for i in range(world)]
    op = OPS[job.workload]
    sizes = list(job.sizes)
    history: list[tuple[int, float]] = []
    while sizes:
        size = sizes.pop(0)
        t_setup = time.perf_counter()
        arrays = workload_arrays(job.workload, names, size)
        x = crypten.cryptensor(torch.from_numpy(arrays["x"]).double(), src=0)
        y = (
            crypten.cryptensor(torch.from_numpy(arrays["y"]).double(), src=1)
            if "y" in arrays
            else None
        )
        times: list[float] = []
        stats: dict[str, Any] = {}
        for rep in range(job.warmup + job.reps):
            comm.barrier()
            comm.reset_communication_stats()
            t0 = time.perf_counter()
            op(x, y)
            dt = time.perf_counter() - t0
            if rep >= job.warmup:
                times.append(dt)
                stats = comm.get_communication_stats()
        emit(
            rank,
            size,
            "ok",
            times=times,
            bytes_sent=int(stats.get("bytes", 0)),
            rounds=int(stats.get("rounds", 0)),
        )
        history.append((size, time.perf_counter() - t_setup))  # the whole batch
        go = keep_going(job, history, sizes) if rank == 0 else None
        verdict = comm.broadcast_obj(go, 0)
        if verdict is not True:
            for s in sizes:
                emit(rank, s, "skipped", note=_later(verdict, s, sizes))
            break
    crypten.uninit()


def main() -> None:
    _run(job_from_env())


if __name__ == "__main__":
    main()
