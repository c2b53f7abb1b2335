"""The party daemon (``smc party serve --config party.toml``).

Wires the pieces: certificate identity, the direct data-plane listener, one connection per hub,
the audit log, and the tasks. Offers are decided on worker threads (reading datasets may take a
while), each started task runs on its own thread, so tasks run concurrently. SIGTERM drains: no
new offers are accepted, running tasks get a grace period, then are aborted (their peers see the
failure and the hub reports it), and the audit log stays consistent.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from smc.hub import logs
from smc.hub.pki import Credentials, verify_cert
from smc.hub.server import write_ready
from smc.hub.tls import server_credentials, server_options
from smc.party import datasets
from smc.party.audit import AuditLog
from smc.party.config import PartyConfig
from smc.party.dataplane import DataPlaneServer
from smc.party.hubconn import HubConnection
from smc.party.links import LinkPool
from smc.party.pickup import PickupStore
from smc.party.task import TaskRun
from smc.party.wire import OfferError, announcements_by_name, task_from_offer
from smc.proto.v1 import hub_pb2

from smc.alloc import tune_allocator
from smc.config import ENGINE_VERSION

log = logging.getLogger("smc.party")


class PartyDaemon:
    def __init__(self, config: PartyConfig) -> None:
        self.config = config
        self.creds = Credentials.from_files(config.cert, config.key, config.ca)
        ident = verify_cert(
            self.creds.cert_pem, self.creds.ca_pem, ("party", "dealer"), config.name
        )
        self.role = ident.role
        self.audit = AuditLog(config.audit_log)
        if self.audit.recovered is not None:
            log.warning(
                "audit log ended in a torn entry (crash during a write); set aside",
                extra={"path": str(self.audit.recovered)},
            )
        self.dataplane: DataPlaneServer | None = None
        self.endpoint = ""
        self.links = LinkPool(self.creds, config.link_idle_s)  # direct links, kept across tasks
        self.pickups: PickupStore | None = None
        if config.listen:
            host, _, port = config.listen.rpartition(":")
            self.pickups = PickupStore()
            self.dataplane = DataPlaneServer(
                self.creds, host.strip("[]"), int(port), config.max_frame_bytes, self.pickups
            )
            self.endpoint = f"{config.advertise or host}:{self.dataplane.port}"
        self.tasks: dict[str, TaskRun] = {}
        self.health: health.HealthServicer | None = None
        self.health_address = ""
        self._health_server: grpc.Server | None = None
        if config.health_listen:
            self._start_health(config.health_listen)
        self._lock = threading.Lock()
        self._draining = threading.Event()
        self.hubs = [
            HubConnection(
                addr,
                self.creds,
                config.hub_name,
                register=self._register_request,
                on_command=self._on_command,
                on_relay=self._on_relay,
                heartbeat=self._heartbeat_request_and_health,
                on_lost=self._hub_lost,
                relay_channel=config.relay_channel,
            )
            for addr in config.hubs
        ]

    # ------------------------------------------------------------------------------ lifecycle
    def _start_health(self, listen: str) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=server_options())
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        port = server.add_secure_port(listen, server_credentials(self.creds))
        self.health_address = f"{listen.rpartition(':')[0]}:{port}"
        self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        server.start()
        self._health_server = server

    def _set_health(self) -> None:
        if self.health is not None:
            # serving while attached to at least one hub: one hub down stops only its tasks
            up = any(h.attached.is_set() for h in self.hubs) and not self._draining.is_set()
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if up
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            self.health.set("", status)

    def start(self) -> None:
        if self.dataplane is not None:
            self.dataplane.start()
        for hub in self.hubs:
            hub.start()
        log.info(
            "party daemon started",
            extra={
                "party": self.config.name,
                "role": self.role,
                "endpoint": self.endpoint or "(relay only)",
                "datasets": ",".join(self.config.datasets),
            },
        )

    def wait_attached(self, timeout: float) -> bool:
        ok = all(h.attached.wait(timeout) for h in self.hubs)
        self._set_health()
        return ok

    def stop(self, grace: float = 5.0) -> None:
        self._draining.set()
        self._set_health()
        with self._lock:
            running = [t for t in self.tasks.values() if t.state in ("running", "accepted")]
        threads = [t for t in threading.enumerate() if t.name.startswith("task-")]
        for th in threads:
            th.join(timeout=grace / max(1, len(threads)))
        for t in running:
            if t.state == "running":
                t.cancel(f"party {self.config.name!r} is shutting down")
            else:
                self._drop(t, "party shutting down")
        for th in threads:
            th.join(timeout=2.0)
        self.links.close()  # each peer hears the goodbye: no task of theirs lost a frame
        if self.pickups is not None:
            self.pickups.flush()  # results the client has not taken: upload the hub's copies
        for hub in self.hubs:
            hub.stop()
        if self.dataplane is not None:
            self.dataplane.stop()
        if self._health_server is not None:
            self._health_server.stop(1.0)
        log.info("party daemon stopped", extra={"party": self.config.name})

    # ------------------------------------------------------------------------------ hub callbacks
    def _register_request(self) -> hub_pb2.RegisterRequest:
        return hub_pb2.RegisterRequest(
            endpoint=self.endpoint,
            datasets=datasets.describe(self.config.datasets),
            suites=["rss3", "additive"],
            version=ENGINE_VERSION,
        )

    def _heartbeat_request(self, hub: HubConnection) -> hub_pb2.HeartbeatRequest:
        """Only the tasks ``hub`` routed: one hub never learns another hub's task ids."""
        with self._lock:
            running = [
                tid for tid, t in self.tasks.items() if t.state == "running" and t.origin is hub
            ]
        return hub_pb2.HeartbeatRequest(running=running, audit_head=self.audit.head)

    def _on_command(self, hub: HubConnection, cmd: hub_pb2.PartyCommand) -> None:
        kind = cmd.WhichOneof("command")
        if kind == "offer":
            threading.Thread(
                target=self._offer,
                args=(hub, cmd.offer),
                daemon=True,
                name=f"offer-{cmd.offer.task_id[:8]}",
            ).start()
        elif kind == "start":
            self._start(hub, cmd.start)
        elif kind == "cancel":
            with self._lock:
                run = self.tasks.get(cmd.cancel.task_id)
            if run is not None:
                if run.state == "running":
                    run.cancel(f"cancelled by the hub: {cmd.cancel.reason}")
                else:
                    self._drop(run, cmd.cancel.reason)

    def _heartbeat_request_and_health(self, hub: HubConnection) -> hub_pb2.HeartbeatRequest:
        self._set_health()
        return self._heartbeat_request(hub)

    def _hub_lost(self, hub: HubConnection) -> None:
        """The hub that routed these tasks is gone: it has failed them (or lost them on restart),
        so their results could not be delivered; stop them rather than compute for nothing."""
        with self._lock:
            runs = [t for t in self.tasks.values() if t.origin is hub]
        for run in runs:
            reason = f"lost the connection to the hub at {hub.address}"
            if run.state == "running":
                run.cancel(reason)
            else:
                self._drop(run, reason)

    def _drop(self, run: TaskRun, reason: str) -> None:
        run.discard(reason)
        task_id = run.task_id
        with self._lock:
            if self.tasks.get(task_id) is run:
                del self.tasks[task_id]

    def _on_relay(
        self, hub: HubConnection, frame: hub_pb2.RelayFrame, payload: bytes | bytearray
    ) -> None:
        with self._lock:
            run = self.tasks.get(frame.task_id)
        if run is not None and run.origin is hub:  # another hub cannot inject or fail frames
            run.on_relay(frame, payload)

    def _seen(self, task_id: str) -> bool:
        return task_id in self.audit.task_ids or task_id in self.tasks

    def _offer(self, hub: HubConnection, offer: hub_pb2.TaskOffer) -> None:
        if self._draining.is_set():
            hub.answer(
                hub_pb2.OfferAnswer(
                    task_id=offer.task_id,
                    accept=False,
                    reason=f"party {self.config.name!r} is shutting down",
                )
            )
            return
        try:
            spec = task_from_offer(offer, self.creds.ca_pem, self.config.name)
        except Exception as exc:
            if not isinstance(exc, OfferError):
                log.exception("unexpected error reading an offer", extra={"task_id": offer.task_id})
            self.audit.append("refused", task_id=offer.task_id, outcome="refused", reason=str(exc))
            log.info("offer refused", extra={"task_id": offer.task_id, "reason": str(exc)})
            hub.answer(hub_pb2.OfferAnswer(task_id=offer.task_id, accept=False, reason=str(exc)))
            return
        run = TaskRun(
            spec=spec,
            me=self.config.name,
            config=self.config,
            creds=self.creds,
            dataplane=self.dataplane,
            relay=lambda: hub.relay,
            report=hub.report,
            audit=self.audit.append,
            origin=hub,
            pickups=self.pickups,
            links=self.links,
        )
        with self._lock:
            seen = self._seen(spec.task_id)
            if not seen:
                self.tasks[spec.task_id] = run
        answer = run.prepare(lambda _tid: seen)
        if not answer.accept:
            with self._lock:
                if self.tasks.get(spec.task_id) is run:
                    del self.tasks[spec.task_id]
        hub.answer(answer)

    def _start(self, hub: HubConnection, start: hub_pb2.TaskStart) -> None:
        with self._lock:
            run = self.tasks.get(start.task_id)
        if run is None or run.state != "accepted":
            return
        try:
            anns = announcements_by_name(run.spec, start)
        except OfferError as exc:
            hub.report(hub_pb2.TaskReport(task_id=run.task_id, kind="failed", message=str(exc)))
            return
        run.state = "running"
        threading.Thread(
            target=self._run, args=(run, anns), daemon=True, name=f"task-{run.task_id[:8]}"
        ).start()

    def _run(self, run: TaskRun, anns: dict[str, tuple[bytes, bytes]]) -> None:
        try:
            run.run(anns)
        finally:
            with self._lock:
                self.tasks.pop(run.task_id, None)


def serve(config: PartyConfig, ready_file: str | None = None) -> int:
    logs.configure(f"party:{config.name}", config.log_level)
    tuned = tune_allocator()  # arrays of megabytes every round: reuse them (smc.alloc)
    log.info("allocator settings", extra={"tuned": tuned})
    daemon = PartyDaemon(config)
    daemon.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if ready_file:
        threading.Thread(
            target=_ready_when_attached, args=(daemon, Path(ready_file)), daemon=True
        ).start()
    stop.wait()
    daemon.stop()
    return 0


def _ready_when_attached(daemon: PartyDaemon, path: Path) -> None:
    if daemon.wait_attached(60.0):
        info = {
            "party": daemon.config.name,
            "endpoint": daemon.endpoint,
            "pid": os.getpid(),
            "health": daemon.health_address,
        }
        write_ready(path, info)
