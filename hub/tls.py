"""TLS plumbing shared by the hub, the party daemons and the client (no numpy here).

* gRPC credentials for mTLS (the hub requires and verifies a client certificate);
* the caller's verified identity inside a gRPC handler, read from the TLS auth context;
* ``ssl`` contexts for the direct party-to-party data plane (TLS 1.3, mutual authentication, the
  peer's name checked by the caller against the certificate instead of by host name);
* socket helpers for the raw TLS connections (data plane, relay port, result pickup).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
from pathlib import Path
from typing import Any

import grpc
from smc.hub.pki import CertificateError, Credentials, Identity, verify_cert

MAX_MESSAGE_BYTES = 96 << 20  # programs may be up to 64 MiB; a relay chunk is at most 1 MiB


def grpc_options(target_name: str | None = None) -> list[tuple[str, Any]]:
    opts: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    if target_name:
        opts.append(("grpc.ssl_target_name_override", target_name))
    return opts


def server_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_ping_strikes", 0),
    ]


def server_credentials(creds: Credentials) -> grpc.ServerCredentials:
    """mTLS: the server presents its certificate and requires one issued by the CA."""
    return grpc.ssl_server_credentials(
        [(creds.key_pem, creds.cert_pem)],
        root_certificates=creds.ca_pem,
        require_client_auth=True,
    )


def channel(address: str, creds: Credentials, server_name: str | None = None) -> grpc.Channel:
    """A secure channel to ``address``; ``server_name`` is the name the server's certificate must
    carry (defaults to the host part of the address)."""
    cc = grpc.ssl_channel_credentials(creds.ca_pem, creds.key_pem, creds.cert_pem)
    return grpc.secure_channel(address, cc, options=grpc_options(server_name))


def caller(context: grpc.ServicerContext, ca_pem: bytes) -> tuple[Identity, bytes]:
    """The caller's identity and certificate (PEM), re-verified against the CA.

    gRPC has already verified the chain during the handshake; re-verifying here also checks the
    smc role fields. Aborts the call with UNAUTHENTICATED when anything is missing."""
    auth = context.auth_context()
    pems = auth.get("x509_pem_cert") or []
    if not pems:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "a client certificate is required")
    pem = bytes(pems[0])
    try:
        return verify_cert(pem, ca_pem), pem
    except CertificateError as exc:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, f"certificate refused: {exc}")
        raise  # unreachable: abort raises


def _load_chain(ctx: ssl.SSLContext, creds: Credentials) -> None:
    # ssl wants files; write them to a private temporary directory for the duration of loading
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
        cert.write_bytes(creds.cert_pem)
        key.touch(0o600)
        key.write_bytes(creds.key_pem)
        ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cadata=creds.ca_pem.decode("ascii"))


def ssl_context(creds: Credentials, server: bool) -> ssl.SSLContext:
    """TLS 1.3 with mutual authentication against the deployment CA.

    Host names are not checked: callers compare the peer certificate's smc identity with the
    party they meant to reach (:func:`peer_identity`). Servers send no session tickets, so a
    sender that never reads leaves nothing unread behind (which would turn its close into a
    connection reset that can discard the receiver's last frame)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if server:
        ctx.num_tickets = 0
    _load_chain(ctx, creds)
    return ctx


def peer_identity(
    sock: ssl.SSLSocket,
    ca_pem: bytes,
    roles: tuple[str, ...] = ("party", "dealer"),
    name: str | None = None,
) -> Identity:
    """The verified identity of the peer of ``sock`` (one of ``roles``, named ``name`` when
    given); raises :class:`CertificateError` otherwise."""
    der = sock.getpeercert(binary_form=True)
    if not der:
        raise CertificateError("peer presented no certificate")
    return verify_cert(ssl.DER_cert_to_PEM_cert(der).encode("ascii"), ca_pem, roles, name)


# ------------------------------------------------------------------------------ raw sockets


def keep_alive(sock: socket.socket, idle_s: int = 10, interval_s: int = 5, probes: int = 3) -> None:
    """TCP keepalive on a long-lived raw connection (relay port, pooled links), as gRPC's own
    keepalive does for the control channel: a NAT or firewall on the path keeps its mapping, and
    a peer that vanished without closing is noticed within ``idle_s + probes * interval_s``."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for opt, val in (
            ("TCP_KEEPIDLE", idle_s),
            ("TCP_KEEPINTVL", interval_s),
            ("TCP_KEEPCNT", probes),
        ):
            if hasattr(socket, opt):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), val)


def recv_exact(sock: socket.socket, view: memoryview) -> int:
    """Fill ``view`` from ``sock``; returns how many bytes came, fewer than ``len(view)`` only
    when the peer closed the connection first (0: before the first byte)."""
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            break
        got += n
    return got


def wake(sock: socket.socket) -> None:
    """Shut a socket down from another thread: a thread blocked in send or receive on it returns
    with an error, and the socket stays open until its owner closes it. Never close a socket
    another thread may be using: the descriptor number is reused at once (by the next file
    opened), and a write still in flight in that thread (OpenSSL sends an alert on errors) would
    land in that file. That once put a TLS alert record into an audit log."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def hard_close(sock: socket.socket) -> None:
    """Shut down and close: only for the thread that owns ``sock`` (see :func:`wake`)."""
    wake(sock)
    with contextlib.suppress(OSError):
        sock.close()
