"""The allocator settings (smc.alloc) that the daemons apply and scripts may opt into: arrays of
megabytes allocated and freed round after round are reused instead of being page-faulted in
again each time."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import numpy as np
from smc.alloc import tune_allocator
tuned = tune_allocator() if sys.argv[1] == "tuned" else None
for _ in range(3):  # warm up: the first rounds fault the memory in either way
    arrays = [np.ones(1 << 20) for _ in range(4)]
    del arrays
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):  # a round: four fresh 8 MB arrays, written, then freed
    arrays = [np.ones(1 << 20) for _ in range(4)]
    del arrays
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuned_daemons_reuse_large_arrays_instead_of_faulting_them_in() -> None:
    tuned, few = _faults("tuned")
    _, many = _faults("default")
    assert tuned == "True"
    # 80 arrays of 8 MB are 160,000 pages of 4 KiB; glibc's dynamic mmap threshold keeps some
    # of them on the heap, and the rest (~40,000 faults here) come from fresh mappings
    assert many > 10_000, many
    assert few < many // 20, (few, many)


HEAPS = """
import ctypes, sys, threading
import numpy as np
from smc.alloc import tune_allocator
tuned = tune_allocator() if sys.argv[1] == "tuned" else None
ready = threading.Barrier(5)
def task():  # a task or a link reader: a thread that allocates arrays of megabytes
    array = np.ones(1 << 20)
    ready.wait()  # all four hold their arrays at once
    ready.wait()
    del array
threads = [threading.Thread(target=task) for _ in range(4)]
for t in threads:
    t.start()
ready.wait()
ctypes.CDLL(None).malloc_stats()  # to stderr: a block of lines per heap ("Arena N:")
ready.wait()
for t in threads:
    t.join()
"""


def _heaps(mode: str) -> int:
    run = subprocess.run(
        [sys.executable, "-c", HEAPS, mode], capture_output=True, text=True, check=True
    )
    return sum(line.startswith("Arena ") for line in run.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuned_daemons_keep_every_thread_on_one_heap() -> None:
    # a secondary heap is unmapped once everything in it is freed (the end of a task), and the
    # next task faults its arrays in again: with the settings, every thread shares the main one
    assert _heaps("default") == 5
    assert _heaps("tuned") == 1


SIMULATE = """
import numpy as np
import smc
assert smc.tune_allocator()
rng = np.random.default_rng(3)
x, y = rng.uniform(-50, 50, 300_000), rng.uniform(-50, 50, 300_000)
b = smc.ProgramBuilder(["alice", "bob", "carol"])
b.output("p", b.input("alice", "x", shape=x.shape) * b.input("bob", "y", shape=y.shape), to="carol")
for _ in range(3):  # rounds that reuse the freed arrays
    out = smc.simulate(b.build(), {"alice": {"x": x}, "bob": {"y": y}}).outputs["carol"]["p"]
    exact = np.round(x * 2**16) * np.round(y * 2**16) / 2**32  # the encoded inputs' product
    print(float(np.max(np.abs(out - exact))))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_script_can_opt_in_and_simulates_the_same() -> None:
    run = subprocess.run(
        [sys.executable, "-c", SIMULATE], capture_output=True, text=True, check=True
    )
    errors = [float(v) for v in run.stdout.split()]
    assert len(errors) == 3 and max(errors) <= 2.0**-16, errors  # truncation: at most one ulp
