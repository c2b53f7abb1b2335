"""The hub's domain logic: task intake, routing to parties, state, deadlines, liveness.

Task life cycle (every transition is an event the client can watch)::

    queued -> offered -> running -> succeeded
       \\          \\          \\--> failed     (a party failed or went offline, deadline passed)
        \\          \\--> failed                (a party refused, with its reason)
         \\--> failed / cancelled

The hub checks what it can without trusting itself with data: the caller's certificate and
authorisation, the manifest's signature, the program hash (SHA-256 of opaque bytes; the hub never
parses a program), that every named party is registered and online. Parties re-check everything.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from smc.hub.manifest import Manifest, ManifestError
from smc.hub.pki import CertificateError, Identity, verify_cert, verify_signature
from smc.hub.registry import Registry
from smc.hub.relay import RelaySwitch, Tap
from smc.hub.store import TERMINAL, Event, TaskRecord, TaskStore, now_ms
from smc.proto.v1 import hub_pb2, task_pb2

log = logging.getLogger("smc.hub")

MAX_PROGRAM_BYTES = 64 << 20
OFFLINE_AFTER_BEATS = 5  # missed heartbeat intervals before a party counts as offline
SETTLE_KINDS = ("result", "delivered")  # how a party settles a result reported by nonce only
DELIVERED = "the client took the result from the party directly; the hub keeps no copy"
UPLOAD_GRACE_S = 300.0  # how long a succeeded task waits for results reported by nonce only


class HubError(Exception):
    """A refused request; ``code`` maps to a gRPC status (invalid, denied, not_found, exists,
    unavailable, too_large, precondition)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Active:
    task_id: str
    client: str
    endpoints: list[str]
    deadline_ms: int
    state: str
    offer: hub_pb2.TaskOffer
    accepted: dict[str, task_pb2.Announcement] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    last_progress: dict[str, float] = field(default_factory=dict)
    # parties done whose sealed result is still to be uploaded: "done" named its nonce only
    # (the client may take the ciphertext from the party directly; smc.party.pickup)
    pending: dict[str, bytes] = field(default_factory=dict)


class HubCore:
    def __init__(
        self,
        store: TaskStore,
        ca_pem: bytes,
        *,
        name: str = "hub",
        clients: frozenset[str] = frozenset({"*"}),
        max_running: int = 16,
        max_deadline_s: float = 3600.0,
        heartbeat_s: float = 2.0,
        tap: Tap | None = None,
    ) -> None:
        self.store = store
        self.ca_pem = ca_pem
        self.name = name
        self.clients = clients
        self.max_running = max_running
        self.max_deadline_ms = int(max_deadline_s * 1000)
        self.heartbeat_s = heartbeat_s
        self.registry = Registry()
        self.relay = RelaySwitch(self._authorise_relay, tap)
        self._active: dict[str, Active] = {}
        # succeeded tasks whose sealed results are still to be uploaded: task -> (party -> nonce,
        # monotonic time after which the hub stops waiting)
        self._uploads: dict[str, tuple[dict[str, bytes], float]] = {}
        self._queue: deque[str] = deque()
        self._cond = threading.Condition(threading.RLock())
        failed = store.interrupt_unfinished("hub restarted while the task was unfinished")
        if failed:
            log.warning(
                "tasks interrupted by a hub restart marked failed", extra={"tasks": len(failed)}
            )

    # ================================================================================ clients
    def submit(self, client: Identity, req: hub_pb2.SubmitRequest) -> str:
        if client.role != "client":
            raise HubError("denied", f"{client} may not submit tasks: only client certificates can")
        if "*" not in self.clients and client.name not in self.clients:
            raise HubError(
                "denied", f"client {client.name!r} is not authorised to submit tasks to this hub"
            )
        signed = req.manifest
        try:
            man = Manifest.from_bytes(signed.manifest)
        except ManifestError as exc:
            raise HubError("invalid", str(exc)) from None
        if man.client != client.name:
            raise HubError(
                "denied", f"the manifest names client {man.client!r}, the caller is {client.name!r}"
            )
        try:
            verify_cert(signed.client_cert, self.ca_pem, "client", client.name)
            verify_signature(signed.client_cert, signed.manifest, signed.signature, "manifest")
        except CertificateError as exc:
            raise HubError("invalid", str(exc)) from None
        blob = req.program.canonical
        if len(blob) > MAX_PROGRAM_BYTES:
            raise HubError("too_large", f"program is {len(blob)} bytes, above {MAX_PROGRAM_BYTES}")
        digest = hashlib.sha256(blob).hexdigest()
        if not (digest == man.program_sha256 == req.program.sha256):
            raise HubError(
                "invalid",
                f"program hash mismatch: the manifest names {man.program_sha256[:12]}…, "
                f"the program sent hashes to {digest[:12]}…",
            )
        now = now_ms()
        if man.deadline_ms <= now:
            raise HubError("invalid", "the task deadline has already passed")
        if man.deadline_ms - now > self.max_deadline_ms:
            raise HubError(
                "invalid", f"deadline is more than {self.max_deadline_ms // 1000} s away"
            )
        self._check_endpoints(man)
        rec = TaskRecord(
            task_id=man.task_id,
            client=client.name,
            state="queued",
            manifest=signed.manifest,
            signature=signed.signature,
            client_cert=signed.client_cert,
            program=blob,
            program_sha256=digest,
            endpoints=list(man.members),
            created_ms=now,
            deadline_ms=man.deadline_ms,
        )
        try:
            self.store.create(rec)
        except KeyError:
            raise HubError(
                "exists", f"task {man.task_id} was already submitted (replayed request?)"
            ) from None
        offer = hub_pb2.TaskOffer(task_id=man.task_id, manifest=signed, program=req.program)
        with self._cond:
            self._active[man.task_id] = Active(
                man.task_id, client.name, list(man.members), man.deadline_ms, "queued", offer
            )
            self._event(
                man.task_id, "submitted", "", f"by {client.name}, program {digest[:12]}…", "queued"
            )
            self._queue.append(man.task_id)
            self._dispatch()
        log.info(
            "task submitted",
            extra={
                "task_id": man.task_id,
                "client": client.name,
                "program": digest[:16],
                "endpoints": ",".join(man.members),
            },
        )
        return str(man.task_id)

    def _check_endpoints(self, man: Manifest) -> None:
        for name in man.members:
            entry = self.registry.get(name)
            role = "dealer" if name == man.dealer else "party"
            if entry is None:
                raise HubError("precondition", f"party {name!r} is not registered with this hub")
            if entry.role != role:
                raise HubError(
                    "precondition",
                    f"{name!r} is registered as a {entry.role}, the task needs a {role}",
                )
            if not entry.online:
                raise HubError("unavailable", f"party {name!r} is offline")
            if name in man.endpoints and man.suite not in entry.suites:
                raise HubError("precondition", f"party {name!r} does not run suite {man.suite!r}")

    def _own(self, client: Identity, task_id: str) -> TaskRecord:
        rec = self.store.get(task_id)
        if rec is None:
            raise HubError("not_found", f"no task {task_id!r}")
        if rec.client != client.name:
            raise HubError("denied", f"task {task_id} belongs to another client")
        return rec

    def status(self, client: Identity, task_id: str) -> hub_pb2.TaskStatus:
        rec = self._own(client, task_id)
        return hub_pb2.TaskStatus(
            task_id=rec.task_id,
            state=rec.state,
            reason=rec.reason,
            participants=[
                task_pb2.Participant(
                    name=p["name"],
                    role=p["role"],
                    endpoint=p["endpoint"],
                    cert=p["cert"].encode("ascii"),
                )
                for p in rec.participants
            ],
            announcements=[
                task_pb2.Announcement(body=b, signature=s)
                for _, (b, s) in sorted(rec.announcements.items())
            ],
            results=[
                task_pb2.EncryptedResult(party=p, nonce=n, ciphertext=c)
                for p, n, c in self.store.results(task_id)
            ],
            created_ms=rec.created_ms,
            finished_ms=rec.finished_ms,
        )

    def cancel(self, client: Identity, task_id: str, reason: str) -> None:
        self._own(client, task_id)
        with self._cond:
            if task_id in self._active:
                self._finish(
                    task_id,
                    "cancelled",
                    f"cancelled by {client.name}: {reason or 'no reason given'}",
                )

    def watch(
        self, client: Identity, task_id: str, after_seq: int, alive: Callable[[], bool]
    ) -> Iterator[Event]:
        self._own(client, task_id)
        seq = after_seq
        first = True
        while alive():
            events = self.store.events(task_id, seq)
            for ev in events:
                seq = ev.seq
                yield ev
            if any(ev.state in TERMINAL for ev in events):
                return  # with what followed the final event so far (result_delivered, ...)
            if first and not events and (rec := self.store.get(task_id)) and rec.state in TERMINAL:
                return  # watched from after its final event: nothing more to wait for
            first = False
            with self._cond:
                if not self.store.events(task_id, seq):
                    self._cond.wait(timeout=1.0)

    def parties(self) -> hub_pb2.ListPartiesReply:
        return hub_pb2.ListPartiesReply(
            parties=[
                hub_pb2.PartyInfo(
                    name=e.name,
                    role=e.role,
                    endpoint=e.endpoint,
                    online=e.online,
                    datasets=list(e.datasets),
                    last_seen_ms=e.last_seen_ms,
                )
                for e in self.registry.all()
            ]
        )

    # ================================================================================ parties
    def register(
        self, party: Identity, cert_pem: bytes, req: hub_pb2.RegisterRequest
    ) -> hub_pb2.RegisterReply:
        if party.role not in ("party", "dealer"):
            raise HubError("denied", f"{party} cannot register as a party daemon")
        self.registry.register(party.name, party.role, cert_pem, req)
        log.info(
            "party registered",
            extra={
                "party": party.name,
                "role": party.role,
                "endpoint": req.endpoint or "(relay only)",
            },
        )
        return hub_pb2.RegisterReply(heartbeat_interval_s=self.heartbeat_s, hub_name=self.name)

    def heartbeat(self, party: Identity, req: hub_pb2.HeartbeatRequest) -> hub_pb2.HeartbeatReply:
        return hub_pb2.HeartbeatReply(
            registered=self.registry.heartbeat(party.name, req.audit_head)
        )

    def detached(self, name: str, generation: int, reason: str) -> None:
        if self.registry.detach(name, generation):
            log.warning("party offline", extra={"party": name, "reason": reason})
            self.party_offline(name, reason)

    def party_offline(self, name: str, reason: str) -> None:
        with self._cond:
            for task_id, act in list(self._active.items()):
                if name in act.endpoints and name not in act.done and act.state != "queued":
                    self._finish(task_id, "failed", f"party {name!r} went offline ({reason})")

    def answer(self, party: Identity, ans: hub_pb2.OfferAnswer) -> None:
        with self._cond:
            act = self._active.get(ans.task_id)
            if act is None or party.name not in act.endpoints or act.state != "offered":
                return
            if not ans.accept:
                self._finish(
                    act.task_id,
                    "failed",
                    f"party {party.name!r} refused: {ans.reason}",
                    kind="refused",
                    party=party.name,
                )
                return
            if not ans.announcement.body:
                self._finish(
                    act.task_id,
                    "failed",
                    f"party {party.name!r} accepted without a key announcement",
                )
                return
            act.accepted[party.name] = ans.announcement
            self.store.add_announcement(
                act.task_id, party.name, ans.announcement.body, ans.announcement.signature
            )
            self._event(act.task_id, "accepted", party.name, "", "offered")
            if len(act.accepted) == len(act.endpoints):
                act.state = "running"
                self.store.set_state(act.task_id, "running")
                self._event(act.task_id, "started", "", "all parties accepted", "running")
                start = hub_pb2.TaskStart(
                    task_id=act.task_id, announcements=[act.accepted[n] for n in act.endpoints]
                )
                for n in act.endpoints:
                    if not self.registry.send(n, hub_pb2.PartyCommand(start=start)):
                        self._finish(
                            act.task_id, "failed", f"party {n!r} went offline before the start"
                        )
                        return

    def report(self, party: Identity, rep: hub_pb2.TaskReport) -> None:
        if rep.audit_head:
            self.registry.heartbeat(party.name, rep.audit_head)
        with self._cond:
            act = self._active.get(rep.task_id)
            if rep.kind in SETTLE_KINDS and act is None:
                self._late_upload(party, rep)
                return
            if act is None or party.name not in act.endpoints:
                return
            if rep.kind == "progress":
                last = act.last_progress.get(party.name, 0.0)
                if time.monotonic() - last >= 0.5:
                    act.last_progress[party.name] = time.monotonic()
                    # the party's own line (bounded, one printable line), else frames and bytes
                    text = "".join(c if c.isprintable() else " " for c in rep.message[:200])
                    self._event(
                        act.task_id,
                        "progress",
                        party.name,
                        text.strip()
                        or f"{rep.rounds} frames received, {rep.bytes_sent} bytes sent",
                        act.state,
                    )
            elif rep.kind == "done" and act.state == "running":
                for r in rep.results:
                    if r.party != party.name:
                        self._finish(
                            act.task_id,
                            "failed",
                            f"party {party.name!r} sent a result for {r.party!r}",
                        )
                        return
                    self.store.add_result(act.task_id, r.party, r.nonce, r.ciphertext)
                    if not r.ciphertext:  # sealed results are never empty (16-byte tag)
                        act.pending[party.name] = bytes(r.nonce)
                act.done.add(party.name)
                self._event(act.task_id, "party_done", party.name, rep.message, act.state)
                self._succeed_when_complete(act)
            elif rep.kind in SETTLE_KINDS and act.state == "running" and party.name in act.pending:
                refusal = self._store_upload(act.task_id, party.name, act.pending, rep, act.state)
                if refusal:
                    self._finish(act.task_id, "failed", refusal)
            elif rep.kind == "failed":
                self._finish(
                    act.task_id,
                    "failed",
                    f"party {party.name!r} failed: {rep.message}",
                    kind="party_failed",
                    party=party.name,
                )

    # ================================================================================ internals
    def _authorise_relay(self, task_id: str, sender: str, receiver: str) -> str | None:
        with self._cond:
            act = self._active.get(task_id)
            if act is None or act.state != "running":
                return f"task {task_id} is not running"
            if sender not in act.endpoints or receiver not in act.endpoints or sender == receiver:
                return f"{sender!r} -> {receiver!r} is not a link of task {task_id}"
        return None

    def _event(self, task_id: str, kind: str, party: str, message: str, state: str) -> None:
        self.store.add_event(task_id, kind, party, message, state)
        self._cond.notify_all()

    def _dispatch(self) -> None:
        running = sum(1 for a in self._active.values() if a.state != "queued")
        while self._queue and running < self.max_running:
            task_id = self._queue.popleft()
            act = self._active.get(task_id)
            if act is None:
                continue
            participants = []
            for n in act.endpoints:
                entry = self.registry.get(n)
                if entry is None or not entry.online:
                    self._finish(task_id, "failed", f"party {n!r} is offline")
                    break
                participants.append(
                    task_pb2.Participant(
                        name=n, role=entry.role, endpoint=entry.endpoint, cert=entry.cert_pem
                    )
                )
            else:
                self.store.set_participants(
                    task_id,
                    [
                        {
                            "name": p.name,
                            "role": p.role,
                            "endpoint": p.endpoint,
                            "cert": p.cert.decode("ascii"),
                        }
                        for p in participants
                    ],
                )
                act.offer.participants.extend(participants)
                act.state = "offered"
                self.store.set_state(task_id, "offered")
                self._event(task_id, "offered", "", f"to {', '.join(act.endpoints)}", "offered")
                running += 1
                for n in act.endpoints:
                    if not self.registry.send(n, hub_pb2.PartyCommand(offer=act.offer)):
                        self._finish(
                            task_id, "failed", f"party {n!r} went offline before the offer"
                        )
                        running -= 1
                        break

    def _succeed_when_complete(self, act: Active) -> None:
        """Every endpoint is done: the task succeeded. Sealed results reported by nonce only
        (the client takes them from the party directly) may still be uploading; the hub keeps
        accepting them for UPLOAD_GRACE_S, and until then its copy shows them empty."""
        if act.done == set(act.endpoints):
            if act.pending:
                self._uploads[act.task_id] = (dict(act.pending), time.monotonic() + UPLOAD_GRACE_S)
            self._finish(act.task_id, "succeeded", "")

    def _store_upload(
        self,
        task_id: str,
        name: str,
        pending: dict[str, bytes],
        rep: hub_pb2.TaskReport,
        state: str,
    ) -> str:
        """Settle ``name``'s result reported by nonce: store the uploaded ciphertext, or record
        that the client took it from the party directly ("delivered": the hub keeps no copy).
        Returns the refusal when it is not the result the party reported."""
        r = rep.results[0] if len(rep.results) == 1 else None
        if r is None or r.party != name or bytes(r.nonce) != pending[name]:
            return f"party {name!r} settled a result that does not match the one it reported"
        if rep.kind == "delivered":
            del pending[name]
            self._event(task_id, "result_delivered", name, DELIVERED, state)
            return ""
        if not r.ciphertext:
            return f"party {name!r} uploaded an empty result"
        self.store.add_result(task_id, r.party, r.nonce, r.ciphertext)
        del pending[name]
        return ""

    def _late_upload(self, party: Identity, rep: hub_pb2.TaskReport) -> None:
        """A result reported by nonce settled after its task succeeded: its upload, or that
        the client took it directly (caller holds the lock)."""
        waiting = self._uploads.get(rep.task_id)
        if waiting is None or party.name not in waiting[0]:
            return
        refusal = self._store_upload(rep.task_id, party.name, waiting[0], rep, "succeeded")
        if refusal:
            del waiting[0][party.name]  # the hub will not hold this result
            self._event(rep.task_id, "upload_refused", party.name, refusal, "succeeded")
            log.warning("result upload refused", extra={"task_id": rep.task_id, "error": refusal})
        if not waiting[0]:
            del self._uploads[rep.task_id]
        self._cond.notify_all()

    def _finish(
        self, task_id: str, state: str, reason: str, kind: str = "", party: str = ""
    ) -> None:
        """Record the final state first, then the event (a watcher that sees the terminal event
        and then asks for the task must find the final state)."""
        act = self._active.pop(task_id, None)
        if act is None:
            return
        self.store.set_state(task_id, state, reason)
        self._event(task_id, kind or state, party, reason, state)
        if state != "succeeded":
            cancel = hub_pb2.PartyCommand(cancel=hub_pb2.TaskCancel(task_id=task_id, reason=reason))
            for n in act.endpoints:
                if n not in act.done:
                    self.registry.send(n, cancel)
        log.info("task finished", extra={"task_id": task_id, "state": state, "reason": reason})
        self._dispatch()

    def tick(self) -> None:
        """Deadlines and heartbeat timeouts; called periodically by the daemon."""
        now = now_ms()
        with self._cond:
            late = time.monotonic()
            for task_id in [t for t, (_, until) in self._uploads.items() if until <= late]:
                missing = sorted(self._uploads.pop(task_id)[0])
                log.warning(
                    "result uploads never arrived",
                    extra={"task_id": task_id, "parties": ",".join(missing)},
                )
            for task_id, act in list(self._active.items()):
                if act.deadline_ms <= now:
                    waiting = [
                        n
                        for n in act.endpoints
                        if n not in (act.accepted if act.state == "offered" else act.done)
                    ]
                    self._finish(
                        task_id,
                        "failed",
                        f"deadline passed while the task was {act.state} (waiting for {waiting})",
                    )
        limit = OFFLINE_AFTER_BEATS * self.heartbeat_s
        for name, gen in self.registry.stale(limit):
            self.detached(name, gen, f"no heartbeat for {limit:.0f} s")
