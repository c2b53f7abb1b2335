"""A party daemon's connection to one hub: registration, commands, heartbeats, relay, reports.

The daemon dials the hub (parties may sit behind NAT; the hub never dials them). A loop keeps the
connection up: register, open the relay stream, attach to the command stream, and on any break
retry with backoff, so a restarted hub sees the party again within about a second.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable

import grpc
from smc.hub.pki import CertificateError, Credentials
from smc.hub.relay import DEFAULT_CHANNEL, RelayWireError
from smc.hub.tls import channel, peer_identity, ssl_context
from smc.party.config import split_hub
from smc.party.relay import RelayStream
from smc.proto.v1 import hub_pb2, hub_pb2_grpc

log = logging.getLogger("smc.party.hub")

CALL_TIMEOUT_S = 10.0
RELAY_RETRY_S = 1.0  # pause before reopening relay connections that dropped


def check_hub_certificate(address: str, creds: Credentials, name: str | None) -> str:
    """Handshake with ``address`` and check that it presents a *hub* certificate of this CA
    (named ``name`` when given); returns the hub's name. gRPC checks the CA and the expected
    server name but not the role, and every certificate also names localhost, so without this
    any party's certificate on a loopback address would pass for the hub."""
    host, _, port = address.rpartition(":")
    ctx = ssl_context(creds, server=False)
    ctx.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host.strip("[]"), int(port)), timeout=CALL_TIMEOUT_S) as raw,
        ctx.wrap_socket(raw) as sock,
    ):
        return str(peer_identity(sock, creds.ca_pem, ("hub",), name).name)


class HubConnection:
    def __init__(
        self,
        address: str,
        creds: Credentials,
        server_name: str | None,
        *,
        register: Callable[[], hub_pb2.RegisterRequest],
        on_command: Callable[[HubConnection, hub_pb2.PartyCommand], None],
        on_relay: Callable[[HubConnection, hub_pb2.RelayFrame, bytes | bytearray], None],
        heartbeat: Callable[[HubConnection], hub_pb2.HeartbeatRequest],
        on_lost: Callable[[HubConnection], None] = lambda _hub: None,
        relay_channel: str = DEFAULT_CHANNEL,
    ) -> None:
        # ``address`` is a ``hubs`` entry: "host:port", or "name@host:port" naming the hub's
        # certificate (several hubs, each with its own identity); the entry's name wins
        name, self.address = split_hub(address)
        self.server_name = name or server_name
        self._creds = creds
        self._channel = channel(self.address, creds, self.server_name)
        self.stub = hub_pb2_grpc.HubStub(self._channel)
        self._register = register
        self._on_command = on_command
        self._on_relay = on_relay
        self._heartbeat = heartbeat
        self._on_lost = on_lost
        self._relay_channel = relay_channel
        self._stop = threading.Event()
        self.attached = threading.Event()
        self.relay: RelayStream | None = None
        self._relay_port = 0
        self._relay_lock = threading.Lock()
        self.interval = 2.0
        self._attach_call: grpc.Future | None = None
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"hub-{self.address}")
        self._beat = threading.Thread(
            target=self._beats, daemon=True, name=f"heartbeat-{self.address}"
        )

    def start(self) -> None:
        self._thread.start()
        self._beat.start()

    def stop(self) -> None:
        self._stop.set()
        if self._attach_call is not None:
            self._attach_call.cancel()
        if self.relay is not None:
            self.relay.stop()
        self._channel.close()

    def _loop(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                check_hub_certificate(self.address, self._creds, self.server_name)
            except (OSError, ssl.SSLError, CertificateError, ValueError) as exc:
                if not self._stop.is_set():
                    log.warning("refusing the hub", extra={"hub": self.address, "error": str(exc)})
                self._stop.wait(backoff)
                backoff = min(2.0, backoff * 2)
                continue
            try:
                reply = self.stub.Register(self._register(), timeout=CALL_TIMEOUT_S)
                self.interval = max(0.2, reply.heartbeat_interval_s)
                self._relay_port = reply.relay_port
                with self._relay_lock:
                    self.relay = self._open_relay(reply.relay_port)
                call = self.stub.Attach(hub_pb2.AttachRequest())
                self._attach_call = call
                log.info("attached to hub", extra={"hub": self.address})
                self.attached.set()
                backoff = 0.1
                for cmd in call:
                    self._on_command(self, cmd)
            except grpc.RpcError as exc:
                if not self._stop.is_set():
                    log.warning(
                        "hub connection lost",
                        extra={"hub": self.address, "error": f"{exc.code().name}: {exc.details()}"},
                    )
            finally:
                if self.attached.is_set():
                    self._on_lost(self)
                self.attached.clear()
                if self.relay is not None:
                    self.relay.stop()
            self._stop.wait(backoff)
            backoff = min(2.0, backoff * 2)

    def _open_relay(self, port: int) -> RelayStream | None:
        """The relay connections to this hub's relay port (on the host dialled for gRPC). A
        party whose peers it can all dial works without them, so a failure is logged and the
        next reconnection tries again."""
        if not port:
            log.warning("the hub announced no relay port", extra={"hub": self.address})
            return None
        host = self.address.rpartition(":")[0]
        relay = RelayStream(
            f"{host}:{port}",
            self._creds,
            self.server_name,
            lambda f, p: self._on_relay(self, f, p),
            on_broken=self._relay_broken,
            channel=self._relay_channel,
        )
        try:
            relay.start()
        except (OSError, ssl.SSLError, CertificateError, RelayWireError) as exc:
            log.warning(
                "cannot open the relay connections",
                extra={"hub": self.address, "port": port, "error": str(exc)},
            )
            return None
        return relay

    def _relay_broken(self) -> None:
        """The relay connections dropped while the hub connection is up (the hub's relay port
        restarted, a middlebox cut them): open new ones after a pause, so later tasks can relay
        (a task whose chunks were in flight has failed with the reason)."""
        if not self._stop.is_set():
            timer = threading.Timer(RELAY_RETRY_S, self._reopen_relay)
            timer.daemon = True
            timer.start()

    def _reopen_relay(self) -> None:
        with self._relay_lock:
            if self._stop.is_set() or not self.attached.is_set() or not self._relay_port:
                return  # the next reconnection opens them
            if self.relay is not None and not self.relay.broken.is_set():
                return
            log.info("reopening the relay connections", extra={"hub": self.address})
            self.relay = self._open_relay(self._relay_port)
            if self.relay is None:
                self._relay_broken()  # try again later

    def _beats(self) -> None:
        last = 0.0
        while not self._stop.wait(0.1):
            if not self.attached.is_set() or time.monotonic() - last < self.interval:
                continue
            last = time.monotonic()
            try:
                self.stub.Heartbeat(self._heartbeat(self), timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as exc:
                log.debug("heartbeat failed", extra={"hub": self.address, "error": str(exc.code())})

    def answer(self, msg: hub_pb2.OfferAnswer) -> None:
        try:
            self.stub.Answer(msg, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            log.warning(
                "could not answer an offer",
                extra={"task_id": msg.task_id, "error": str(exc.details())},
            )

    def report(self, msg: hub_pb2.TaskReport) -> None:
        try:
            self.stub.Report(msg, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            log.warning(
                "could not report",
                extra={"task_id": msg.task_id, "kind": msg.kind, "error": str(exc.details())},
            )
