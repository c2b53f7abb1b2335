"""One task at one party daemon: decide on the offer, then run the program with the peers.

Offer (:meth:`TaskRun.prepare`): verify the offer (:mod:`smc.party.wire`), refuse replays and late
tasks, check the submitting client, bind this party's inputs to its datasets and check the
owner's policy for every dataset used; only then draw the task's ephemeral key and announce it.

Start (:meth:`TaskRun.run`): verify every peer's signed announcement, derive the pairwise keys,
open links (direct TLS, falling back to the hub relay per link), run the engine's executor, and
send this party's outputs — encrypted to the client's key from the signed manifest — in the final
report. An input-only contributor instead sends each computing party its share of its data and is
done; computing parties read those shares before they start the executor. Every outcome is
written to the audit log. A deadline watchdog aborts the transport, so a dead or stalled peer
fails the task by its deadline with the reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from smc.hub.pki import Credentials
from smc.hub.store import now_ms
from smc.party import circuits, contrib, datasets, keyex, pickup, policy, results
from smc.party.dataplane import DataPlaneServer, DirectLink, Inbox, PeerGone
from smc.party.links import LinkPool
from smc.party.offer import Prepared, Refusal, check_offer
from smc.party.pickup import PickupStore
from smc.party.relay import RelayLink, RelayReceiver, RelayStream
from smc.party.transport import Link, PeerTransport
from smc.party.wire import OfferError, TaskSpec, announcement_pb, result_pb
from smc.proto.v1 import hub_pb2

from smc.config import FixedPointConfig, SessionConfig
from smc.errors import SmcError, TransportError
from smc.executor import Executor

if TYPE_CHECKING:
    from smc.party.config import PartyConfig

log = logging.getLogger("smc.party.task")

DIAL_TIMEOUT_S = 3.0
PROGRESS_EVERY_S = 1.0


EXPECTED = (SmcError, keyex.KeyExchangeError, OfferError, OSError, ValueError)


def _human_bytes(n: int) -> str:
    """``532 B``, ``3.2 kB``, ``3.2 MB``, ``1.1 GB`` (decimal units)."""
    if n < 1000:
        return f"{n} B"
    size, unit = float(n), "B"
    for unit in ("kB", "MB", "GB", "TB"):  # noqa: B007 - the last unit is used below
        size /= 1000.0
        if size < 1000.0:
            break
    return f"{size:.1f} {unit}"


def describe(exc: BaseException) -> str:
    """The reason shown to the submitter: the message of an expected error, else its type too."""
    if isinstance(exc, EXPECTED):
        return str(exc)
    return f"internal error ({type(exc).__name__}: {exc}); see the party's log"


@dataclass
class TaskRun:
    spec: TaskSpec
    me: str
    config: PartyConfig
    creds: Credentials
    dataplane: DataPlaneServer | None
    relay: Callable[[], RelayStream | None]
    report: Callable[[hub_pb2.TaskReport], None]
    audit: Callable[..., str]
    origin: object = None  # the hub connection the task came from
    prep: Prepared = field(default_factory=Prepared)
    inbox: Inbox | None = None
    transport: PeerTransport | None = None
    receivers: dict[str, RelayReceiver] = field(default_factory=dict)
    pending_relay: list[tuple[hub_pb2.RelayFrame, bytes | bytearray]] = field(default_factory=list)
    state: str = "new"
    _eph: Any = None
    _keyring: Any = None
    _links: dict[str, Link] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancelled: str | None = None
    _executor: Executor | None = None  # set while computing; read by the progress reporter
    pickups: PickupStore | None = None  # sealed results the client may take directly
    links: LinkPool | None = None  # the daemon's links to its peers, reused across tasks
    _upload: hub_pb2.TaskReport | None = None  # the sealed result, sent after "done"

    @property
    def task_id(self) -> str:
        return str(self.spec.task_id)

    @property
    def contributor(self) -> bool:
        return self.me in self.spec.manifest.contributions

    @property
    def index(self) -> int:
        return int(self.spec.endpoints.index(self.me))

    def _deadline_left(self) -> float:
        return float(self.spec.manifest.deadline_ms - now_ms()) / 1000.0

    def _audit_fields(self) -> dict[str, Any]:
        m = self.spec.manifest
        return {
            "task_id": self.task_id,
            "program_sha256": self.spec.program.hash,
            "client": m.client,
            "datasets": sorted(set(self.prep.used.values())),
            "peers": [n for n in self.spec.members if n != self.me],
            "recipients": sorted(policy.recipients(self.spec.program, m)),
        }

    # ================================================================================ offer
    def prepare(self, seen: Callable[[str], bool]) -> hub_pb2.OfferAnswer:
        """Accept (with this task's signed key announcement) or refuse with a reason."""
        reason: str | None = None
        try:
            self.prep = check_offer(
                self.spec,
                self.me,
                self.config,
                self.creds.identity.role,
                seen,
                self._deadline_left(),
            )
        except (
            Refusal,
            policy.PolicyError,
            datasets.DatasetError,
            circuits.CircuitError,
            SmcError,
        ) as exc:
            reason = str(exc) or type(exc).__name__
        except Exception as exc:  # a bug must not leave the hub waiting until the deadline
            log.exception("unexpected error checking an offer", extra={"task_id": self.task_id})
            reason = describe(exc)
        if reason is not None:
            self.state = "refused"
            self.audit("refused", **self._audit_fields(), outcome="refused", reason=reason)
            log.info("task refused", extra={"task_id": self.task_id, "reason": reason})
            return hub_pb2.OfferAnswer(task_id=self.task_id, accept=False, reason=reason)
        self._eph = keyex.new_ephemeral()
        self.inbox = Inbox(
            self.task_id, self.me, tuple(n for n in self.spec.members if n != self.me)
        )
        if self.dataplane is not None:
            self.dataplane.open(self.inbox)
        body = keyex.announcement_body(
            self.task_id, self.me, keyex.public_hex(self._eph), self.spec.manifest_sha256
        )
        self.state = "accepted"
        log.info(
            "task accepted",
            extra={
                "task_id": self.task_id,
                "datasets": ",".join(sorted(set(self.prep.used.values()))),
            },
        )
        return hub_pb2.OfferAnswer(
            task_id=self.task_id,
            accept=True,
            announcement=announcement_pb(body, self.creds.sign(body)),
        )

    # ================================================================================ relay in
    def on_relay(self, frame: hub_pb2.RelayFrame, payload: bytes | bytearray) -> None:
        with self._lock:
            receiver = self.receivers.get(frame.peer)
            if receiver is None:
                if len(self.pending_relay) < 4096:
                    self.pending_relay.append((frame, payload))
                return
        receiver.feed(frame, payload)

    # ================================================================================ run
    def run(self, announcements: dict[str, tuple[bytes, bytes]]) -> None:
        start = time.monotonic()
        watchdog = threading.Timer(
            max(0.0, self._deadline_left()), self.cancel, args=("the task deadline passed",)
        )
        watchdog.daemon = True
        watchdog.start()
        stop_progress = threading.Event()
        try:
            self._connect(announcements)
            connected = time.monotonic()
            if self.contributor:
                report = self._contribute()
            else:
                threading.Thread(target=self._progress, args=(stop_progress,), daemon=True).start()
                report = self._compute()
            log.info(
                "task done",
                extra={
                    "task_id": self.task_id,
                    "summary": report.message,
                    "seconds": round(time.monotonic() - start, 3),
                    "connect_s": round(connected - start, 3),
                },
            )
            self.state = "done"
        except Exception as exc:
            if not isinstance(exc, EXPECTED):
                log.exception("unexpected error in a task", extra={"task_id": self.task_id})
            reason = self._cancelled or describe(exc)
            if self._cancelled and isinstance(exc, TransportError) and str(exc) != self._cancelled:
                reason = f"{self._cancelled} ({exc})"
            elif self._cancelled is None and self._deadline_left() <= 0:
                # a peer whose own deadline watchdog fired first closed its link: the deadline
                # is the cause, whichever party noticed first
                reason = f"the task deadline passed ({reason})"
            self.state = "failed"
            head = self.audit("failed", **self._audit_fields(), outcome="failed", reason=reason)
            log.warning("task failed", extra={"task_id": self.task_id, "reason": reason})
            report = hub_pb2.TaskReport(
                task_id=self.task_id, kind="failed", message=reason, audit_head=head
            )
        finally:
            stop_progress.set()
            watchdog.cancel()
            if self.dataplane is not None:
                self.dataplane.close(self.task_id)
            for link in self._links.values():
                link.close()
        self.report(report)
        if self._upload is not None and self.pickups is not None:
            # held for the client's direct pickup; the hub gets a copy only if it is not taken
            self.pickups.hold(self.task_id, self._settle_result(self._upload))
            self._upload = None

    def _settle_result(self, upload: hub_pb2.TaskReport) -> Callable[[bool], None]:
        """What to tell the hub once a held result is settled (smc.party.pickup): that the
        client took it, or the sealed result itself (the hub's copy, the client's fallback)."""

        def settle(delivered: bool) -> None:
            if delivered:
                nonce = upload.results[0].nonce
                log.info("result delivered to the client", extra={"task_id": self.task_id})
                self.report(
                    hub_pb2.TaskReport(
                        task_id=self.task_id,
                        kind="delivered",
                        results=[result_pb(self.me, nonce, b"")],
                    )
                )
            else:
                self.report(upload)

        return settle

    def _compute(self) -> hub_pb2.TaskReport:
        transport = self.transport
        assert transport is not None
        inputs = dict(self.prep.inputs)
        inputs.update(self._receive_contributions(transport))
        man = self.spec.manifest
        config = SessionConfig(
            suite=man.suite,
            parties=man.parties,
            fixed=FixedPointConfig(self.spec.program.frac_bits),
            program_hash=self.spec.program.hash,
            session_id=self.task_id,
        )
        self._executor = Executor(
            self.spec.program, config, self.index, transport, self._keyring, recv_timeout=None
        )
        outcome = self._executor.run(inputs)
        return self._finish(outcome.outputs, outcome.stats.rounds, outcome.stats.bytes_sent)

    def _receive_contributions(self, transport: PeerTransport) -> dict[str, np.ndarray]:
        """The shares input-only contributors sent this party (one frame each), checked."""
        out: dict[str, np.ndarray] = {}
        assert self.inbox is not None
        for who, expected in self.prep.expect.items():
            item = self.inbox.get(who, transport.remaining())
            if isinstance(item, PeerGone):
                raise TransportError(item.reason)
            try:
                got = results.decode(bytes(memoryview(item)))
            except results.ResultFormatError as exc:
                raise contrib.ContributionError(
                    f"shares from {who!r} do not decode: {exc}"
                ) from None
            if set(got) != set(expected):
                raise contrib.ContributionError(
                    f"{who!r} sent shares {sorted(got)}, expected {sorted(expected)}"
                )
            for name in {n[: -len("_hi")] for n in expected if n.endswith("_hi")}:
                contrib.check_share(
                    name, got[f"{name}_hi"], got[f"{name}_lo"], expected[f"{name}_hi"]
                )
            out.update(got)
        return out

    def _contribute(self) -> hub_pb2.TaskReport:
        sent = 0
        for party in self.spec.manifest.parties:
            frame = results.encode(self.prep.outgoing[party])
            self._links[party].send(memoryview(frame))
            sent += len(frame)
        names = sorted(self.spec.manifest.contributions[self.me])
        head = self.audit("contributed", **self._audit_fields(), outcome="ok", contributions=names)
        return hub_pb2.TaskReport(
            task_id=self.task_id,
            kind="done",
            bytes_sent=sent,
            message=f"shares of {names} sent to {len(self.spec.manifest.parties)} "
            f"parties, {sent} bytes",
            audit_head=head,
        )

    def _connect(self, announcements: dict[str, tuple[bytes, bytes]]) -> None:
        """Verify the peers' announcements, derive the pair keys, open this member's links."""
        spec, man = self.spec, self.spec.manifest
        peers = [n for n in spec.members if n != self.me]
        secrets: dict[str, keyex.PairSecrets] = {}
        for name in peers:
            body, sig = announcements[name]
            pub = keyex.verify_announcement(
                body,
                sig,
                spec.participants[name].cert_pem,
                task_id=self.task_id,
                party=name,
                manifest_sha256=spec.manifest_sha256,
            )
            secrets[name] = keyex.derive_pair(self._eph, self.me, name, pub, spec.manifest_sha256)
        assert self.inbox is not None
        with self._lock:
            for name in peers:
                opener = keyex.ChunkOpener(secrets[name].recv_key, self.task_id, name, self.me)
                self.receivers[name] = RelayReceiver(
                    opener, self.inbox, name, self.config.max_frame_bytes
                )
            pending, self.pending_relay = self.pending_relay, []
        for frame, payload in pending:
            if frame.peer in self.receivers:
                self.receivers[frame.peer].feed(frame, payload)
        if self.contributor:
            targets = list(man.parties)  # a contributor only sends, to the computing parties
        else:
            targets = [n for n in spec.endpoints if n != self.me]
        with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
            self._links = dict(
                zip(targets, pool.map(lambda n: self._link(n, secrets[n]), targets), strict=True)
            )
        if not self.contributor:
            self._keyring = keyex.keyring(
                self.index, {spec.endpoints.index(n): secrets[n] for n in targets}, self.task_id
            )
            transport = PeerTransport(
                self.index,
                spec.endpoints,
                {spec.endpoints.index(n): lk for n, lk in self._links.items()},
                self.inbox,
                deadline=time.monotonic() + max(0.0, self._deadline_left()),
                slow_rounds_s=self.config.slow_rounds_s,
            )
            with self._lock:
                self.transport = transport
        with self._lock:
            cancelled, transport_now = self._cancelled, self.transport
        if cancelled:
            if transport_now is not None:
                transport_now.abort(cancelled)
            raise TransportError(cancelled)

    def _link(self, peer: str, s: keyex.PairSecrets) -> Link:
        endpoint = self.spec.participants[peer].endpoint
        if self.spec.manifest.data_plane == "direct" and endpoint:
            try:
                if self.links is not None:
                    return self.links.link(
                        peer,
                        endpoint,
                        self.task_id,
                        timeout=min(DIAL_TIMEOUT_S, max(0.1, self._deadline_left())),
                    )
                return DirectLink.dial(
                    self.creds,
                    endpoint,
                    task_id=self.task_id,
                    me=self.me,
                    peer=peer,
                    timeout=min(DIAL_TIMEOUT_S, max(0.1, self._deadline_left())),
                )
            except TransportError as exc:
                log.warning(
                    "direct link failed, using the relay",
                    extra={"task_id": self.task_id, "peer": peer, "error": str(exc)},
                )
        stream = self.relay()
        if stream is None:
            raise TransportError(f"no direct link to {peer!r} and no relay stream to the hub")
        return RelayLink(
            stream,
            keyex.ChunkSealer(s.send_key, self.task_id, self.me, peer),
            self.task_id,
            peer,
            lambda: max(0.1, self._deadline_left()),
        )

    def _finish(self, outputs: dict[str, np.ndarray], rounds: int, sent: int) -> hub_pb2.TaskReport:
        man = self.spec.manifest
        sealed = []
        where = "none"
        if outputs and man.result_key:
            nonce, ct = keyex.seal_result(
                self._eph,
                man.result_key,
                manifest_sha256=self.spec.manifest_sha256,
                task_id=self.task_id,
                party=self.me,
                plaintext=results.encode(outputs),
            )
            where = f"encrypted to client {man.client!r}"
            elements = sum(int(np.size(v)) for v in outputs.values())
            if (
                self.pickups is not None
                and pickup.worth_picking_up(elements)
                and self.pickups.put(self.task_id, man.client, nonce, ct)
            ):
                # "done" carries the nonce only; the client takes the ciphertext from this
                # party, or from the hub's copy if it is not taken in time (smc.party.pickup)
                sealed.append(result_pb(self.me, nonce, b""))
                self._upload = hub_pb2.TaskReport(
                    task_id=self.task_id, kind="result", results=[result_pb(self.me, nonce, ct)]
                )
            else:
                sealed.append(result_pb(self.me, nonce, ct))
        elif outputs:
            where = str(self._store_locally(outputs))
        head = self.audit(
            "completed",
            **self._audit_fields(),
            outcome="ok",
            outputs=sorted(outputs),
            delivered=where,
        )
        return hub_pb2.TaskReport(
            task_id=self.task_id,
            kind="done",
            rounds=rounds,
            bytes_sent=sent,
            results=sealed,
            message=f"{rounds} rounds, {sent} bytes sent",
            audit_head=head,
        )

    def _store_locally(self, outputs: dict[str, np.ndarray]) -> Path:
        out_dir = self.config.audit_log.parent / "results"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.task_id}.npz"
        np.savez(path, **outputs)  # type: ignore[arg-type]
        return Path(path)

    def _progress(self, stop: threading.Event) -> None:
        """Every PROGRESS_EVERY_S while computing: frames, bytes and the executor's position."""
        while not stop.wait(PROGRESS_EVERY_S):
            t = self.transport
            if t is None:
                continue
            sent = t.stats.total_bytes
            ex = self._executor
            message = ""
            if ex is not None:  # still None while waiting for contributors' shares
                message = f"{ex.progress.describe()}, {_human_bytes(sent)} sent"
            self.report(
                hub_pb2.TaskReport(
                    task_id=self.task_id,
                    kind="progress",
                    rounds=t.frames_received,
                    bytes_sent=sent,
                    message=message,
                )
            )

    def cancel(self, reason: str) -> None:
        """Abort (hub cancel, deadline, daemon stopping): a blocked receive raises ``reason``."""
        with self._lock:
            if self._cancelled is None:
                self._cancelled = reason
            transport = self.transport
            links = list(self._links.values())
        if transport is not None:
            transport.abort(reason)
        elif self.inbox is not None:
            self.inbox.abort(reason)
        for link in links:  # also unblocks a send stuck on a dead peer
            link.close()

    def discard(self, reason: str) -> None:
        """Drop an accepted task that never started."""
        if self.state == "accepted":
            self.state = "cancelled"
            if self.dataplane is not None:
                self.dataplane.close(self.task_id)
            self.audit("cancelled", **self._audit_fields(), outcome="cancelled", reason=reason)
