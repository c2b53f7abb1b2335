"""Runs a :class:`~smc.ir.Program` as one endpoint of a session.

Every endpoint (each party, and the dealer when the suite has one) runs the same executor over the
same program. The executor walks the DAG in layers: local operations run as soon as their
arguments exist; every interactive operation that is ready is started at once and all of them
advance together, one communication round at a time, with their messages to each peer merged into
one frame. Independent operations therefore share rounds (round merging), and all endpoints stay
in lockstep because every protocol yields the same number of rounds everywhere.

Frames carry an 8-byte header: the round number and 32 bits of the session digest. A frame from
the wrong round (duplicated, replayed or reordered), from a peer with another session
configuration, or of the wrong size is refused with :class:`~smc.errors.ProtocolError`.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from smc import kernels
from smc.config import SessionConfig
from smc.dispatch import lift, public_nonlinear, start_nonlinear
from smc.encoding import decode_fixed, decode_int, encode_fixed, encode_int
from smc.errors import InputError, ProtocolError
from smc.ir import NONLINEAR_OPS, Node, Program, decode_const, parse_index
from smc.protocols.additive import Additive, Dealer
from smc.protocols.base import Exchange, Proto, Received, lockstep, merge, split, split_flat
from smc.protocols.keys import KeyRing
from smc.protocols.rss3 import Rss3
from smc.protocols.suite import Share, Suite, map_share
from smc.ring import U64, arshift
from smc.transport import Transport

ROUND_MASK = (1 << 32) - 1
# a node's value: a Share (tuple of ring arrays) when secret, U64 when public, None on the dealer
Value = Any


@dataclass
class NodeStats:
    """Per operation: rounds it took, bytes this endpoint sent for it, and when it started and
    finished (``time.perf_counter`` clock; comparable across endpoints of one process)."""

    rounds: int = 0
    bytes_sent: int = 0
    started: float = 0.0
    finished: float = 0.0

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass
class RunStats:
    """What one endpoint did: communication rounds it took part in and bytes it sent."""

    rounds: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    per_node: dict[int, NodeStats] = field(default_factory=dict)
    view: list[tuple[int, int, U64]] = field(default_factory=list)  # (round, peer, payload)


class Progress(NamedTuple):
    """How far one endpoint is through its program: a snapshot another thread may read.

    ``done`` of ``total`` operations (program nodes plus outputs) have finished, ``rounds``
    communication rounds are complete, and ``active`` names the interactive operations in flight
    (distinct op names, sorted; ``"open"`` for an output being revealed).
    """

    done: int = 0
    total: int = 0
    rounds: int = 0
    active: tuple[str, ...] = ()

    def describe(self, max_ops: int = 3) -> str:
        """A short line such as ``op 12/40 (sort), round 57``."""
        ops = ", ".join(self.active[:max_ops])
        if len(self.active) > max_ops:
            ops += f" +{len(self.active) - max_ops}"
        return f"op {self.done}/{self.total}{f' ({ops})' if ops else ''}, round {self.rounds}"


@dataclass
class PartyResult:
    outputs: dict[str, np.ndarray]
    stats: RunStats


def make_suite(config: SessionConfig, me: int, keys: KeyRing) -> Suite:
    if config.suite == "rss3":
        return Rss3(me, 3, keys)
    if me == config.n:
        return Dealer(me, config.n, keys)
    return Additive(me, config.n, keys)


class Executor:
    """One endpoint's run of a program; ``me`` is the party index, or ``config.n`` (dealer)."""

    def __init__(
        self,
        program: Program,
        config: SessionConfig,
        me: int,
        transport: Transport,
        keys: KeyRing,
        recv_timeout: float | None = 120.0,
        record_view: bool = False,
    ) -> None:
        if program.parties != config.parties:
            raise ProtocolError(
                f"program parties {list(program.parties)} differ from the session's "
                f"{list(config.parties)}"
            )
        if program.frac_bits != config.fixed.frac_bits:
            raise ProtocolError(
                f"program uses frac_bits={program.frac_bits}, session {config.fixed.frac_bits}"
            )
        self.program = program
        self.config = config
        self.me = me
        self.is_dealer = config.has_dealer and me == config.n
        self.transport = transport
        self.suite = make_suite(config, me, keys)
        # truncated products that are only revealed: truncated and opened in one protocol,
        # started by their output (the product node itself finishes locally, holding nothing)
        self._fused = program.product_outputs() if self.suite.fuses_product_open else {}
        self.recv_timeout = recv_timeout
        self.record_view = record_view
        self.stats = RunStats()
        # replaced (never mutated) once per round, so any thread may read it without a lock
        self.progress = Progress(total=len(program.nodes) + len(program.outputs))
        self._round = 0
        # frame header: the top 32 bits carry the session digest, so a peer running another
        # configuration is refused on its first frame; the low 32 bits carry the round number
        self._tag = int(config.digest[:8], 16) << 32

    # ------------------------------------------------------------------------------ inputs
    def _encode_inputs(self, inputs: Mapping[str, Any]) -> dict[int, U64]:
        if self.is_dealer:
            if inputs:
                raise InputError("the dealer holds no data; it takes no inputs")
            return {}
        party = self.config.parties[self.me]
        mine = self.program.inputs_of(party)
        declared = {n.attrs["name"]: n for n in mine}
        extra = sorted(set(inputs) - set(declared))
        if extra:
            raise InputError(
                f"party {party!r} gave inputs {extra} that the program does not declare"
            )
        encoded: dict[int, U64] = {}
        for name, node in declared.items():
            if name not in inputs:
                raise InputError(f"party {party!r} is missing input {name!r} (shape {node.shape})")
            arr = np.asarray(inputs[name])
            if arr.shape != node.shape:
                raise InputError(
                    f"input {name!r} of party {party!r} has shape {arr.shape}, "
                    f"the program declares {node.shape}"
                )
            fp = self.config.fixed
            encoded[node.id] = encode_fixed(arr, fp) if node.dtype == "fixed" else encode_int(arr)
        return encoded

    # ------------------------------------------------------------------------------ running
    def run(self, inputs: Mapping[str, Any] | None = None) -> PartyResult:
        """Run the program to completion; returns the outputs addressed to this endpoint."""
        with np.errstate(over="ignore"):  # 0-d uint64 arithmetic wraps, as ring arithmetic should
            return self._run(inputs)

    def _run(self, inputs: Mapping[str, Any] | None) -> PartyResult:
        start = time.perf_counter()
        encoded = self._encode_inputs(inputs or {})
        nodes = self.program.nodes
        outputs = self.program.outputs
        total = len(nodes) + len(outputs)
        values: dict[int, Value] = {}
        waiting = {n.id: len(set(n.args)) for n in nodes}
        users: dict[int, list[int]] = {}
        for n in nodes:
            for a in set(n.args):
                users.setdefault(a, []).append(n.id)
        for k, o in enumerate(outputs):
            waiting[len(nodes) + k] = 1
            users.setdefault(o.node, []).append(len(nodes) + k)
        ready = [i for i, w in waiting.items() if w == 0]
        heapq.heapify(ready)
        active: dict[int, tuple[Proto[Any], Exchange, float]] = {}
        results: dict[str, np.ndarray] = {}
        done = 0

        def finish(i: int, value: Value) -> None:
            nonlocal done
            done += 1
            if i >= len(nodes):
                if value is not None:
                    results[outputs[i - len(nodes)].name] = self._decode(
                        outputs[i - len(nodes)].node, value
                    )
                return
            values[i] = value
            for u in users.get(i, ()):
                waiting[u] -= 1
                if waiting[u] == 0:
                    heapq.heappush(ready, u)

        while done < total:
            while ready:
                i = heapq.heappop(ready)
                t0 = time.perf_counter()
                gen = self._start(i, values, encoded)
                if gen is None:
                    if i in self._fused:
                        finish(i, None)  # its output runs the product (see _start)
                        continue
                    finish(
                        i,
                        self._public_output(i, values)
                        if i >= len(nodes)
                        else self._local(nodes[i], values),
                    )
                    continue
                try:
                    active[i] = (gen, next(gen), t0)
                except StopIteration as stop:
                    finish(i, stop.value)
            if not active:
                if done < total:
                    raise ProtocolError(
                        "executor stalled: no runnable operation (malformed program?)"
                    )
                break
            order = sorted(active)
            self.progress = Progress(
                done,
                total,
                self.stats.rounds,
                tuple(sorted({nodes[i].op if i < len(nodes) else "open" for i in order})),
            )
            exchanges = [active[i][1] for i in order]
            received = self._communicate(merge(exchanges), order, exchanges)
            for i, part in zip(order, split(exchanges, received), strict=True):
                gen, _, t0 = active.pop(i)
                try:
                    active[i] = (gen, gen.send(part), t0)
                except StopIteration as stop:
                    st = self.stats.per_node.setdefault(i, NodeStats())
                    st.started, st.finished = t0, time.perf_counter()
                    finish(i, stop.value)
        self.stats.seconds = time.perf_counter() - start
        self.stats.bytes_sent = self.transport.stats.total_bytes
        self.progress = Progress(done, total, self.stats.rounds)
        return PartyResult(results, self.stats)

    def _communicate(self, ex: Exchange, order: list[int], parts: list[Exchange]) -> Received:
        self._round += 1
        rnd = self._round
        for i, part in zip(order, parts, strict=True):
            st = self.stats.per_node.setdefault(i, NodeStats())
            st.rounds += 1
            st.bytes_sent += part.sent_bytes()
        if ex.send or ex.recv:
            self.stats.rounds += 1
        for peer, arrays in ex.send.items():
            total = sum(a.size for a in arrays)
            frame = np.empty(total + 1, dtype=np.uint64)
            frame[0] = self._tag | rnd
            if arrays:
                np.concatenate([a.reshape(-1) for a in arrays], out=frame[1:])
            self.transport.send(peer, frame.data)
        received: Received = {}
        for peer, counts in ex.recv.items():
            buf = self.transport.recv(peer, self.recv_timeout)
            nbytes = memoryview(buf).nbytes
            if nbytes % 8 or nbytes < 8:
                raise ProtocolError(
                    f"frame from endpoint {peer} is {nbytes} bytes, not a whole frame"
                )
            arr = np.frombuffer(memoryview(buf), dtype=np.uint64)
            header = int(arr[0])
            got_round = header & ROUND_MASK
            if got_round != rnd:
                raise ProtocolError(
                    f"frame from endpoint {peer} is for round {got_round}, expected round {rnd} "
                    "(duplicated, replayed or out-of-order frame)"
                )
            if header & ~ROUND_MASK != self._tag:
                raise ProtocolError(
                    f"frame from endpoint {peer} belongs to another session configuration "
                    f"(digest {header >> 32:08x}, ours {self._tag >> 32:08x}): all parties must "
                    "agree on suite, parties, fixed point, program hash and engine version"
                )
            received[peer] = split_flat(arr[1:], counts, peer)
            if self.record_view:
                self.stats.view.append((rnd, peer, arr[1:].copy()))
        return received

    # ------------------------------------------------------------------------------ dispatch
    def _label(self, i: int) -> str:
        return f"n{i}"

    def _start(
        self, i: int, values: dict[int, Value], encoded: dict[int, U64]
    ) -> Proto[Any] | None:
        """A protocol for interactive node/output ``i``, or None when it is local."""
        nodes = self.program.nodes
        suite = self.suite
        if i >= len(nodes):
            out = self.program.outputs[i - len(nodes)]
            node = nodes[out.node]
            recipients: list[int | None] = [self.config.index(r) for r in out.recipients] or [None]
            if not node.secret:
                return None
            if node.id in self._fused:
                a, b = (nodes[x] for x in node.args)
                return suite.bilinear_open(
                    f"o{i}",
                    node.op,
                    values[a.id],
                    values[b.id],
                    node.shape,
                    a.shape,
                    b.shape,
                    self.config.fixed.frac_bits,
                    self.config.index(out.recipients[0]),
                )
            if len(recipients) == 1:
                return suite.open(f"o{i}", values[node.id], node.shape, recipients[0])
            return self._open_many(i, values[node.id], node, recipients)
        node = nodes[i]
        label = self._label(i)
        if i in self._fused:
            return None  # computed, truncated and revealed by its output's protocol
        if node.op == "input":
            owner = self.config.index(node.attrs["party"])
            return suite.input(label, owner, encoded.get(i), node.shape)
        if not node.secret:
            return None
        args = [nodes[a] for a in node.args]
        fb = self.config.fixed.frac_bits
        if node.op in ("mul", "matmul"):
            trunc = fb if all(a.dtype == "fixed" for a in args) else 0
            kind = node.op
            if args[0].secret and args[1].secret:
                return suite.bilinear(
                    label,
                    kind,
                    values[args[0].id],
                    values[args[1].id],
                    node.shape,
                    args[0].shape,
                    args[1].shape,
                    trunc,
                )
            if trunc:
                pub = args[1] if args[0].secret else args[0]
                local = self._local(node, values, rescale=False)
                return suite.trunc(label, local, node.shape, self._scale(pub))
            return None
        if node.op == "trunc":
            return self._trunc_op(label, node, values[args[0].id])
        if node.op in NONLINEAR_OPS:
            vals = [self._at_scale(a, values) for a in args]
            return start_nonlinear(suite, label, node, args, vals, fb)
        return None

    def _at_scale(self, node: Node, values: dict[int, Value]) -> Value:
        """A value at the program's scale (constants may be stored with extra fractional bits)."""
        extra = self._scale(node) - self.config.fixed.frac_bits if node.op == "const" else 0
        if self.is_dealer:
            return ()
        return arshift(values[node.id], extra) if extra else values[node.id]

    def _public_output(self, i: int, values: dict[int, Value]) -> Value:
        out = self.program.outputs[i - len(self.program.nodes)]
        if self.is_dealer or (
            out.recipients and self.config.parties[self.me] not in out.recipients
        ):
            return None
        node = self.program.nodes[out.node]
        extra = self._scale(node) - self.config.fixed.frac_bits if node.op == "const" else 0
        return arshift(values[out.node], extra) if extra else values[out.node]

    def _trunc_op(self, label: str, node: Node, share: Share) -> Proto[Share]:
        return self.suite.trunc(label, share, node.shape, node.attrs["bits"])

    def _open_many(
        self, i: int, share: Share, node: Node, recipients: list[int | None]
    ) -> Proto[Any]:
        results = yield from lockstep(
            [self.suite.open(f"o{i}/{r}", share, node.shape, r) for r in recipients]
        )
        mine = [r for r in results if r is not None]
        return mine[0] if mine else None

    def _scale(self, node: Node) -> int:
        """Fractional bits a public fixed value is stored with (constants may carry extra)."""
        return int(node.attrs.get("frac_bits", self.config.fixed.frac_bits))

    def _local(self, node: Node, values: dict[int, Value], rescale: bool = True) -> Value:
        """Evaluate a local op: secret (share arithmetic) or public (plaintext ring arithmetic).

        Constants stored with extra fractional bits are brought to the program's scale first,
        except (``rescale=False``) for a secret-by-public product, which truncates them away."""
        if self.is_dealer:
            return None
        nodes = self.program.nodes
        arg_nodes = [nodes[a] for a in node.args]
        fb0 = self.config.fixed.frac_bits
        args: list[Any] = [
            arshift(values[a.id], self._scale(a) - fb0)
            if rescale and a.op == "const" and self._scale(a) != fb0
            else values[a.id]
            for a in arg_nodes
        ]
        op = node.op
        fb = self.config.fixed.frac_bits
        if op == "const":
            return decode_const(node.attrs["data"], node.shape)
        if not node.secret:
            return _public_op(node, arg_nodes, args, fb)
        s = self.suite
        if op in ("add", "sub"):
            a, b = args
            sa, sb = arg_nodes[0].secret, arg_nodes[1].secret
            if sa and sb:
                return s.add(a, b) if op == "add" else s.sub(a, b)
            if sa:
                return s.add_public(a, b if op == "add" else np.zeros_like(b) - b)
            return s.add_public(s.neg(b) if op == "sub" else b, a)
        if op == "neg":
            return s.neg(args[0])
        if op == "mul":
            a, b = args
            share, pub = (a, b) if arg_nodes[0].secret else (b, a)
            return s.mul_public(share, pub)
        if op == "matmul":
            a, b = args
            if arg_nodes[0].secret:
                return map_share(a, lambda c: kernels.ring_matmul(c, b))
            return map_share(b, lambda c: kernels.ring_matmul(a, c))
        if op == "to_fixed":
            return s.mul_public(args[0], np.uint64(1 << fb))
        if op in ("concat", "stack"):  # public parts become trivial sharings first
            args = [
                v if n.secret else lift(s, v, False, n.shape)
                for v, n in zip(args, arg_nodes, strict=True)
            ]
        return _structural(node, arg_nodes, args)

    def _decode(self, node_id: int, value: Value) -> np.ndarray:
        node = self.program.nodes[node_id]
        ring = np.asarray(value, dtype=np.uint64)
        return decode_fixed(ring, self.config.fixed) if node.dtype == "fixed" else decode_int(ring)


def _structural(node: Node, arg_nodes: list[Node], args: list[Share]) -> Share:
    op, attrs = node.op, node.attrs
    if op == "sum":
        axis = attrs["axis"]
        ax = None if axis is None else tuple(axis)
        return map_share(
            args[0], lambda c: np.sum(c, axis=ax, keepdims=attrs["keepdims"], dtype=np.uint64)
        )
    if op == "reshape":
        return map_share(args[0], lambda c: c.reshape(node.shape))
    if op == "transpose":
        return map_share(args[0], lambda c: np.transpose(c, attrs["axes"]))
    if op == "getitem":
        index = parse_index(attrs["index"], "index")
        return map_share(args[0], lambda c: np.asarray(c[index]))
    if op in ("concat", "stack"):
        fn = np.concatenate if op == "concat" else np.stack
        comps = len(args[0])
        return tuple(fn([a[k] for a in args], axis=attrs["axis"]) for k in range(comps))
    raise ProtocolError(f"node {node.id}: op {op!r} has no local evaluation")


def _public_op(node: Node, arg_nodes: list[Node], args: list[U64], fb: int) -> U64:
    """Plaintext ring arithmetic for nodes that depend on no secret."""
    op = node.op
    if op == "add":
        return np.asarray(args[0] + args[1], dtype=np.uint64)
    if op == "sub":
        return np.asarray(args[0] - args[1], dtype=np.uint64)
    if op == "neg":
        return np.zeros_like(args[0]) - args[0]
    if op in ("mul", "matmul"):
        prod = args[0] * args[1] if op == "mul" else kernels.ring_matmul(args[0], args[1])
        if all(a.dtype == "fixed" for a in arg_nodes):
            return arshift(np.asarray(prod, dtype=np.uint64), fb)
        return np.asarray(prod, dtype=np.uint64)
    if op == "to_fixed":
        return args[0] * np.uint64(1 << fb)
    if op == "trunc":
        return arshift(args[0], node.attrs["bits"])
    if op in NONLINEAR_OPS:
        return public_nonlinear(node, arg_nodes, args, fb)
    (out,) = _structural(node, arg_nodes, [(a,) for a in args])
    return np.asarray(out, dtype=np.uint64)
