"""Allocator settings for processes that move arrays of megabytes, glibc only.

The hub and party daemons apply them at start, and so do ``smc bench --mode procs`` workers. A
script that simulates large programs in-process can opt in with ``smc.tune_allocator()``, once,
before it starts threads: the 10^6 fixed-point multiply then ran in 31-35 ms instead of 59-77 ms
here (``smc bench run mul --size 1000000``, two runs each way). It is not applied on import:
it changes the whole process (see the costs below), which is the caller's to decide.

A party daemon allocates and frees arrays of megabytes for every round of every task (shares,
masks, frames), and the hub a megabyte per relayed chunk. glibc serves allocations above its
mmap threshold (dynamic, from 128 KiB) with fresh ``mmap`` regions and returns them to the
system on ``free``, so every such array is page-faulted in again, 4 KiB at a time. Measured
here on the n = 10^6 fixed-point multiply, in-process: 26,700 page faults and 117 ms of system
time per run, against 470 faults and 2 ms with the settings below (56 ms instead of 131 ms of
wall time); end to end through the daemons, 0.31-0.34 CPU-seconds per run instead of 0.43-0.47.

The settings keep allocations up to 32 MiB (glibc's largest mmap threshold) on the heap, and
let up to :data:`TRIM_THRESHOLD` of freed memory stay with the process for the next task
instead of going back to the system: the daemon's resident memory stays near its high-water
mark, up to that much.

They also keep every thread on the one main heap (:data:`ARENAS`). A daemon runs each task,
and each data-plane link's reader, on a thread of its own; glibc gives such threads heaps of
their own (up to 8 per core), of at most 64 MiB each, and unmaps a secondary one as soon as
everything in it is freed, which the end of a task usually does. The next task then faults
all of its arrays in again (as 2 MiB huge pages, which numpy asks for: each is zeroed first).
Measured end to end on the 10^6 multiply (bench/bench_deploy.py): the party that drew such
heaps faulted 4,300 times per run and spent 0.19 CPU-s, against 260 faults and 0.13 CPU-s
with one heap. The cost of one heap is one lock for every large ``malloc`` and ``free``:
they are short (nothing is zeroed under it), the arithmetic runs outside it, and Python's
small objects do not go through it. Elsewhere (musl, macOS) nothing is changed.

Call it first thing in a process: threads that already have their own heap keep it.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 32 << 20  # the largest value glibc accepts on 64-bit systems
TRIM_THRESHOLD = 512 << 20
TOP_PAD = 64 << 20
ARENAS = 1


def tune_allocator() -> bool:
    """Apply the settings to this process (see the module's text); True when applied, False
    where the C library has no ``mallopt`` (nothing is changed then)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD),
        (M_ARENA_MAX, ARENAS),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)
