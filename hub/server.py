"""The hub's gRPC surface: servicer methods only decode, call :class:`HubCore`, and encode.

``serve()`` runs the daemon: mTLS server, ``grpc.health.v1``, a ticker for deadlines and
heartbeats, JSON logs, and a graceful drain on SIGTERM/SIGINT (health turns NOT_SERVING, new calls
are refused, running calls get a grace period, the task store is closed).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from smc.hub import logs
from smc.hub.config import HubConfig
from smc.hub.core import HubCore, HubError
from smc.hub.pki import Credentials, Identity, verify_cert
from smc.hub.relay import RelayServer, Tap
from smc.hub.store import SqliteTaskStore
from smc.hub.tls import caller, server_credentials, server_options
from smc.proto.v1 import hub_pb2, hub_pb2_grpc

from smc.alloc import tune_allocator

log = logging.getLogger("smc.hub.server")

CODES = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "denied": grpc.StatusCode.PERMISSION_DENIED,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "exists": grpc.StatusCode.ALREADY_EXISTS,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "precondition": grpc.StatusCode.FAILED_PRECONDITION,
}


def _abort(context: grpc.ServicerContext, exc: HubError) -> NoReturn:
    context.abort(CODES.get(exc.code, grpc.StatusCode.UNKNOWN), str(exc))
    raise AssertionError("unreachable")


class HubServicer(hub_pb2_grpc.HubServicer):  # type: ignore[misc]
    def __init__(self, core: HubCore, relay_port: int = 0) -> None:
        self.core = core
        self.relay_port = relay_port  # announced to parties when they register

    def _who(self, context: grpc.ServicerContext) -> tuple[Identity, bytes]:
        ident, pem = caller(context, self.core.ca_pem)
        return ident, bytes(pem)

    def _party(self, context: grpc.ServicerContext) -> Identity:
        ident, _ = self._who(context)
        if ident.role not in ("party", "dealer"):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{ident} is not a party daemon")
        entry = self.core.registry.get(ident.name)
        if entry is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{ident} is not registered")
        return ident

    # -- clients
    def Submit(
        self, request: hub_pb2.SubmitRequest, context: grpc.ServicerContext
    ) -> hub_pb2.SubmitReply:
        ident, _ = self._who(context)
        try:
            return hub_pb2.SubmitReply(task_id=self.core.submit(ident, request))
        except HubError as exc:
            _abort(context, exc)

    def Watch(
        self, request: hub_pb2.WatchRequest, context: grpc.ServicerContext
    ) -> Iterator[hub_pb2.TaskEvent]:
        ident, _ = self._who(context)
        try:
            for ev in self.core.watch(ident, request.task_id, request.after_seq, context.is_active):
                yield hub_pb2.TaskEvent(
                    task_id=ev.task_id,
                    seq=ev.seq,
                    time_ms=ev.time_ms,
                    kind=ev.kind,
                    party=ev.party,
                    message=ev.message,
                    state=ev.state,
                )
        except HubError as exc:
            _abort(context, exc)

    def GetTask(
        self, request: hub_pb2.GetTaskRequest, context: grpc.ServicerContext
    ) -> hub_pb2.TaskStatus:
        ident, _ = self._who(context)
        try:
            return self.core.status(ident, request.task_id)
        except HubError as exc:
            _abort(context, exc)

    def Cancel(self, request: hub_pb2.CancelRequest, context: grpc.ServicerContext) -> hub_pb2.Ack:
        ident, _ = self._who(context)
        try:
            self.core.cancel(ident, request.task_id, request.reason)
        except HubError as exc:
            _abort(context, exc)
        return hub_pb2.Ack()

    def ListParties(
        self, request: hub_pb2.ListPartiesRequest, context: grpc.ServicerContext
    ) -> hub_pb2.ListPartiesReply:
        self._who(context)
        return self.core.parties()

    # -- party daemons
    def Register(
        self, request: hub_pb2.RegisterRequest, context: grpc.ServicerContext
    ) -> hub_pb2.RegisterReply:
        ident, pem = self._who(context)
        try:
            reply = self.core.register(ident, pem, request)
        except HubError as exc:
            _abort(context, exc)
        reply.relay_port = self.relay_port
        return reply

    def Attach(
        self, request: hub_pb2.AttachRequest, context: grpc.ServicerContext
    ) -> Iterator[hub_pb2.PartyCommand]:
        ident = self._party(context)
        got = self.core.registry.attach(ident.name)
        if got is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "register before attaching")
            return
        inbox, gen = got
        context.add_callback(lambda: inbox.put(None))
        reason = "its connection to the hub closed"
        try:
            while True:
                cmd = inbox.get()
                if cmd is None:
                    return
                yield cmd
        finally:
            self.core.detached(ident.name, gen, reason)

    def Heartbeat(
        self, request: hub_pb2.HeartbeatRequest, context: grpc.ServicerContext
    ) -> hub_pb2.HeartbeatReply:
        ident, _ = self._who(context)
        return self.core.heartbeat(ident, request)

    def Answer(self, request: hub_pb2.OfferAnswer, context: grpc.ServicerContext) -> hub_pb2.Ack:
        self.core.answer(self._party(context), request)
        return hub_pb2.Ack()

    def Report(self, request: hub_pb2.TaskReport, context: grpc.ServicerContext) -> hub_pb2.Ack:
        self.core.report(self._party(context), request)
        return hub_pb2.Ack()


class HubServer:
    """A running hub: build, ``start()``, then ``stop()`` (also used in-process by tests)."""

    def __init__(
        self,
        config: HubConfig,
        tap: Tap | None = None,
        interceptors: Sequence[grpc.ServerInterceptor] = (),
    ) -> None:
        self.config = config
        self.creds = Credentials.from_files(config.cert, config.key, config.ca)
        ident = verify_cert(self.creds.cert_pem, self.creds.ca_pem, "hub")
        self.store = SqliteTaskStore(config.database)
        self.core = HubCore(
            self.store,
            self.creds.ca_pem,
            name=ident.name,
            clients=config.clients,
            max_running=config.max_running,
            max_deadline_s=config.max_deadline_s,
            heartbeat_s=config.heartbeat_interval_s,
            tap=tap,
        )
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="hub"),
            options=server_options(),
            interceptors=list(interceptors),
        )
        self.relay = RelayServer(self.core.relay, self.creds, config.relay_address)
        hub_pb2_grpc.add_HubServicer_to_server(HubServicer(self.core, self.relay.port), self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_secure_port(config.listen, server_credentials(self.creds))
        if self.port == 0:
            raise OSError(f"cannot listen on {config.listen}")
        host = config.listen.rpartition(":")[0]
        self.address = f"{host}:{self.port}"
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="hub-ticker")

    def _tick(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.core.tick()
            except Exception:
                log.exception("ticker failed")

    def start(self) -> None:
        self.server.start()
        self.relay.start()
        self._ticker.start()
        for service in ("", "smc.v1.Hub"):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "hub listening",
            extra={"address": self.address, "hub": self.core.name, "relay_port": self.relay.port},
        )

    def stop(self, grace: float = 5.0) -> None:
        log.info("hub draining", extra={"grace_s": grace})
        self.health.enter_graceful_shutdown()
        self._stop.set()
        self.server.stop(grace).wait()
        self.relay.stop()
        self.store.close()
        log.info("hub stopped")


def write_ready(path: str | Path, info: dict[str, Any]) -> None:
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def serve(config: HubConfig, ready_file: str | None = None) -> int:
    logs.configure("hub", config.log_level)
    tuned = tune_allocator()  # a megabyte per relayed chunk: reuse it (smc.alloc)
    hub = HubServer(config)
    hub.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("allocator settings", extra={"tuned": tuned})
    if ready_file:
        relay = f"{config.relay_address.rpartition(':')[0]}:{hub.relay.port}"
        write_ready(ready_file, {"address": hub.address, "relay": relay, "pid": os.getpid()})
    stop.wait()
    hub.stop()
    return 0
