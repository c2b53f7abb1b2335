"""The hub's configuration file (``hub.toml``).

Example::

    [hub]
    name = "hub"                    # the name in the hub's certificate
    listen = "0.0.0.0:7443"
    relay_listen = "0.0.0.0:7444"   # the relay port (raw mTLS); default: listen's port + 1
    cert = "keys/hub.crt"           # relative paths are relative to this file
    key = "keys/hub.key"
    ca = "keys/ca.crt"
    database = "hub.db"             # SQLite task store
    clients = ["analyst"]           # who may submit tasks ("*" = any client certificate of the CA)
    heartbeat_interval_s = 2.0
    max_running = 16                # tasks offered or running at once; the rest wait in a queue
    max_deadline_s = 3600
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class HubConfigError(ValueError):
    """A hub configuration file that cannot be used."""


@dataclass(frozen=True)
class HubConfig:
    cert: Path
    key: Path
    ca: Path
    database: Path
    name: str = "hub"
    listen: str = "127.0.0.1:7443"
    relay_listen: str = ""
    clients: frozenset[str] = frozenset({"*"})
    heartbeat_interval_s: float = 2.0
    max_running: int = 16
    max_deadline_s: float = 3600.0
    log_level: str = "info"

    @property
    def relay_address(self) -> str:
        """Where the relay port listens: ``relay_listen``, else the gRPC port + 1 on the same
        host (port 0, chosen by the system, when the gRPC port is 0)."""
        if self.relay_listen:
            return self.relay_listen
        host, _, port = self.listen.rpartition(":")
        return f"{host}:{int(port) + 1 if int(port) else 0}"


KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "listen": str,
    "relay_listen": str,
    "cert": str,
    "key": str,
    "ca": str,
    "database": str,
    "clients": list,
    "heartbeat_interval_s": (int, float),
    "max_running": int,
    "max_deadline_s": (int, float),
    "log_level": str,
}


def parse(raw: dict[str, Any], base: Path) -> HubConfig:
    if set(raw) != {"hub"} or not isinstance(raw["hub"], dict):
        raise HubConfigError("hub.toml must hold exactly one [hub] table")
    h = raw["hub"]
    for key, val in h.items():
        if key not in KEYS:
            raise HubConfigError(f"[hub]: unknown key {key!r}")
        if not isinstance(val, KEYS[key]) or isinstance(val, bool):
            raise HubConfigError(f"[hub]: {key!r} has the wrong type {type(val).__name__}")
    for req in ("cert", "key", "ca"):
        if req not in h:
            raise HubConfigError(f"[hub]: missing key {req!r}")
    clients = h.get("clients", ["*"])
    if not all(isinstance(c, str) for c in clients):
        raise HubConfigError("[hub]: clients must be a list of names")
    cfg = HubConfig(
        cert=base / h["cert"],
        key=base / h["key"],
        ca=base / h["ca"],
        database=base / h.get("database", "hub.db"),
        name=h.get("name", "hub"),
        listen=h.get("listen", "127.0.0.1:7443"),
        relay_listen=h.get("relay_listen", ""),
        clients=frozenset(clients),
        heartbeat_interval_s=float(h.get("heartbeat_interval_s", 2.0)),
        max_running=int(h.get("max_running", 16)),
        max_deadline_s=float(h.get("max_deadline_s", 3600.0)),
        log_level=h.get("log_level", "info"),
    )
    for key, address in (("listen", cfg.listen), ("relay_listen", cfg.relay_listen)):
        _, sep, port = address.rpartition(":")
        if address and not (sep and port.isdigit() and int(port) < 65536):
            raise HubConfigError(f"[hub]: {key} must be host:port, not {address!r}")
    return cfg


def load(path: str | Path) -> HubConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HubConfigError(f"{path}: {exc}") from None
    try:
        return parse(raw, path.resolve().parent)
    except HubConfigError as exc:
        raise HubConfigError(f"{path}: {exc}") from None
