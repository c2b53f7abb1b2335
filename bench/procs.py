"""``--mode procs``: one operating-system process per endpoint (each party, and the dealer).

A :class:`PartyPool` starts the processes once for a (suite, party count) and reuses them for
every run, so Numba compiles once per process (in the warm-up run). Endpoints are linked in a
full mesh of local socket pairs (``multiprocessing.Pipe``); :class:`PipeTransport` implements
:class:`smc.transport.Transport` over them, with the same network emulation as the in-memory
network (a one-way latency and a per-link bandwidth cap, enforced by the receiver sleeping until
the frame's delivery time on the shared monotonic clock). Every process runs
:class:`smc.executor.Executor` with keys dealt by :func:`smc.protocols.keys.deal_keys` in the
parent; the parent measures the wall time of each run.

Benchmarking only: the links are unauthenticated local pipes between processes of one user.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import resource
import struct
import threading
import time
import traceback
import tracemalloc
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from typing_extensions import Buffer

from smc.alloc import tune_allocator
from smc.errors import TransportError
from smc.transport import NetemConfig, Transport

_HEADER = struct.Struct("<dQ")  # delivery time (perf_counter clock, 0 = now), frame bytes
_CLOSED = object()


class Link:
    """One endpoint's end of the pipe to a peer, with a reader thread that drains it.

    Draining in a thread means a sender never blocks on a full socket buffer while its peer is
    itself sending (the executor sends to every peer before receiving)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.free_at = 0.0  # when the emulated link finishes sending what was queued on it
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                deliver_at, nbytes = _HEADER.unpack(self.conn.recv_bytes())
                buf = bytearray(nbytes)
                if nbytes:
                    self.conn.recv_bytes_into(buf)
                else:
                    self.conn.recv_bytes()
                self.inbox.put((deliver_at, buf))
        except (EOFError, OSError):
            self.inbox.put(_CLOSED)


class PipeTransport(Transport):
    """Transport over :class:`Link` objects; ``netem`` as in :class:`smc.transport.NetemConfig`."""

    def __init__(
        self, me: int, endpoints: int, links: dict[int, Link], netem: NetemConfig | None
    ) -> None:
        super().__init__(me, endpoints)
        self._links = links
        self._netem = netem or NetemConfig()

    def _link(self, peer: int) -> Link:
        try:
            return self._links[peer]
        except KeyError:
            raise TransportError(f"endpoint {self.me}: no link to endpoint {peer}") from None

    def send(self, peer: int, frame: Buffer) -> None:
        link = self._link(peer)
        view = memoryview(frame).cast("B")
        nbytes = view.nbytes
        self.stats.record(peer, nbytes)
        deliver_at = 0.0
        if self._netem.latency_s > 0 or self._netem.bandwidth_bps is not None:
            now = time.perf_counter()
            start = now
            if self._netem.bandwidth_bps is not None:
                start = max(now, link.free_at)
                link.free_at = start + nbytes * 8 / self._netem.bandwidth_bps
                start = link.free_at
            deliver_at = start + self._netem.latency_s
        try:
            link.conn.send_bytes(_HEADER.pack(deliver_at, nbytes))
            link.conn.send_bytes(view)
        except OSError as exc:
            raise TransportError(f"endpoint {self.me}: cannot send to {peer}: {exc}") from None

    def recv(self, peer: int, timeout: float | None = None) -> Buffer:
        try:
            item = self._link(peer).inbox.get(timeout=timeout)
        except queue.Empty:
            raise TransportError(
                f"endpoint {self.me}: no frame from endpoint {peer} within {timeout} s"
            ) from None
        if item is _CLOSED:
            raise TransportError(f"endpoint {self.me}: link to {peer} closed")
        deliver_at, frame = cast(tuple[float, bytearray], item)
        delay = deliver_at - time.perf_counter()
        if deliver_at and delay > 0:
            time.sleep(delay)
        return frame


@dataclass
class Job:
    """One run of a program, as sent to every endpoint process."""

    program: bytes  # Program.to_bytes()
    suite: str
    session_id: str
    pair_keys: dict[int, bytes]
    salt: bytes
    inputs: dict[str, Any]
    netem: NetemConfig | None
    trace_memory: bool
    timeout: float


def _serve(me: int, endpoints: int, control: Connection, conns: dict[int, Connection]) -> None:
    """Main loop of one endpoint process: run each job it is sent, reply with its result.

    The process takes the party daemons' allocator settings first (:mod:`smc.alloc`), so
    that this mode measures the engine as the daemons run it."""
    tune_allocator()
    links = {peer: Link(c) for peer, c in conns.items()}
    while True:
        try:
            msg = control.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        try:
            control.send(("ok", _run_job(me, endpoints, links, msg)))
        except BaseException:
            control.send(("error", traceback.format_exc()))


def _run_job(me: int, endpoints: int, links: dict[int, Link], job: Job) -> dict[str, Any]:
    from smc.config import FixedPointConfig, SessionConfig
    from smc.executor import Executor
    from smc.ir import Program
    from smc.prg import LocalRandom
    from smc.protocols.keys import KeyRing

    program = Program.from_bytes(job.program)
    config = SessionConfig(
        suite=job.suite,
        parties=program.parties,
        fixed=FixedPointConfig(program.frac_bits),
        program_hash=program.hash,
        session_id=job.session_id,
    )
    keys = KeyRing(me, job.pair_keys, LocalRandom(), job.salt)
    transport = PipeTransport(me, endpoints, links, job.netem)
    if job.trace_memory:
        tracemalloc.start()
    try:
        result = Executor(program, config, me, transport, keys, job.timeout).run(job.inputs)
        peak = tracemalloc.get_traced_memory()[1] if job.trace_memory else None
    finally:
        if job.trace_memory:
            tracemalloc.stop()
    return {
        "outputs": result.outputs,
        "stats": result.stats,
        "peak": peak,
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


class PoolError(RuntimeError):
    """An endpoint process failed; the message carries its traceback."""


class PartyPool:
    """``endpoints`` long-lived processes joined by a full mesh of pipes."""

    def __init__(self, endpoints: int) -> None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["smc.bench.procs", "smc.executor"])
        self.endpoints = endpoints
        ends: dict[int, dict[int, Connection]] = {i: {} for i in range(endpoints)}
        for i in range(endpoints):
            for j in range(i + 1, endpoints):
                a, b = ctx.Pipe(duplex=True)
                ends[i][j], ends[j][i] = a, b
        self.controls: list[Connection] = []
        self.procs = []
        for me in range(endpoints):
            parent, child = ctx.Pipe(duplex=True)
            p = ctx.Process(
                target=_serve, args=(me, endpoints, child, ends[me]), name=f"smc-bench-{me}"
            )
            p.daemon = True
            p.start()
            child.close()
            self.controls.append(parent)
            self.procs.append(p)
        for conns in ends.values():
            for c in conns.values():
                c.close()

    def run(
        self,
        program: Any,
        suite: str,
        inputs: dict[str, dict[str, Any]],
        netem: NetemConfig | None = None,
        trace_memory: bool = False,
        timeout: float = 600.0,
    ) -> tuple[list[dict[str, Any]], float]:
        """Run ``program`` on every endpoint; per-endpoint results and the parent's wall time."""
        from smc.protocols.keys import deal_keys

        session = uuid.uuid4().hex
        rings = deal_keys(self.endpoints, session)
        blob = program.to_bytes()
        n = len(program.parties)
        start = time.perf_counter()
        for me, ctrl in enumerate(self.controls):
            party_inputs = inputs.get(program.parties[me], {}) if me < n else {}
            job = Job(
                blob,
                suite,
                session,
                rings[me].pair_keys,
                rings[me].salt,
                party_inputs,
                netem,
                trace_memory,
                timeout,
            )
            ctrl.send(job)
        replies: dict[int, dict[str, Any]] = {}
        pending = {ctrl: me for me, ctrl in enumerate(self.controls)}
        deadline = start + timeout + 30
        while pending:
            ready = wait(list(pending), max(0.0, deadline - time.perf_counter()))
            if not ready:
                self.close()
                raise PoolError(f"endpoints {sorted(pending.values())} did not answer in time")
            for conn in ready:
                ctrl = cast(Connection, conn)
                me = pending.pop(ctrl)
                try:
                    status, body = ctrl.recv()
                except (EOFError, OSError):
                    status, body = "error", "the process exited"
                if status != "ok":
                    self.close()  # the others would wait for the failed endpoint's frames
                    raise PoolError(f"endpoint {me} failed:\n{body}")
                replies[me] = body
        wall = time.perf_counter() - start
        return [replies[me] for me in range(self.endpoints)], wall

    @property
    def closed(self) -> bool:
        return not self.controls

    def close(self) -> None:
        for ctrl in self.controls:
            with contextlib.suppress(OSError):
                ctrl.send(None)
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        for ctrl in self.controls:
            ctrl.close()
        self.controls, self.procs = [], []
