"""Start a whole deployment on this machine: a CA, one or more hubs and party daemons as real
processes.

Used by ``smc demo`` and by the end-to-end tests. Every process listens on a port the operating
system chooses (port 0) and reports it through a ready file. Nothing here is needed in
production, where each organisation runs its own daemon from its own ``party.toml``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smc.hub import pki
from smc.party.client import Client

READY_TIMEOUT_S = 60.0


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(tables: dict[str, dict[str, Any]]) -> str:
    """A small TOML writer for our configuration files (tables of scalars, lists, inline tables)."""
    out = []
    for name, table in tables.items():
        out.append(f"[{name}]")
        out.extend(f"{k} = {toml_value(v)}" for k, v in table.items())
        out.append("")
    return "\n".join(out)


@dataclass
class Proc:
    name: str
    args: list[str]
    log: Path
    ready: Path
    popen: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)


class LocalDeployment:
    """Keys, configuration files and processes under ``root``.

    ``parties`` maps a party name to its ``[datasets.*]`` tables (as dicts); ``dealer`` adds a
    dealer daemon; ``relay_only`` parties open no data-plane port; ``party_extra`` adds keys to a
    party's ``[party]`` table; ``hub_extra`` adds keys to every hub's ``[hub]`` table.

    ``hubs`` starts that many hubs, named ``hub``, ``hub2``, ``hub3``, ... (each with its own
    certificate, ``<name>.toml``, ``<name>.db``, ready file and log, all from the same CA); every
    party connects to all of them (``hubs = ["hub@host:port", "hub2@host:port", ...]``)."""

    def __init__(
        self,
        root: str | Path,
        parties: dict[str, dict[str, dict[str, Any]]],
        *,
        dealer: str | None = None,
        clients: tuple[str, ...] = ("analyst",),
        authorised: tuple[str, ...] | None = None,
        relay_only: tuple[str, ...] = (),
        party_extra: dict[str, dict[str, Any]] | None = None,
        hub_extra: dict[str, Any] | None = None,
        hubs: int = 1,
    ) -> None:
        if hubs < 1:
            raise ValueError(f"a deployment needs at least one hub, got hubs={hubs}")
        if hubs > 1 and hub_extra and "listen" in hub_extra:
            raise ValueError("hub_extra['listen'] would give every hub the same address")
        self.root = Path(root)
        self.keys = self.root / "keys"
        self.parties = parties
        self.dealer = dealer
        self.clients = clients
        self.authorised = authorised if authorised is not None else clients
        self.relay_only = relay_only
        self.party_extra = party_extra or {}
        self.hub_extra = hub_extra or {}
        self.procs: dict[str, Proc] = {}
        self.hub_names = ["hub", *(f"hub{k}" for k in range(2, hubs + 1))]
        taken = set(self.hub_names) & {*parties, *clients, *([dealer] if dealer else [])}
        if taken:
            raise ValueError(f"{sorted(taken)} would share files with a hub of the same name")
        self.hub_addresses = [""] * hubs
        # a hub restarted on the addresses it had: gRPC and relay (the relay's default, the
        # gRPC port + 1, may be taken by then: only the port the system chose is known free)
        self._hub_listen: dict[str, tuple[str, str]] = {}

    @property
    def hub_address(self) -> str:
        """The first hub's address ("" until it started)."""
        return self.hub_addresses[0]

    @hub_address.setter
    def hub_address(self, address: str) -> None:
        self.hub_addresses[0] = address

    # ------------------------------------------------------------------------------ files
    def write(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        if not (self.keys / "ca.key").exists():
            pki.create_ca(self.keys, "smc local deployment")
            for name in self.parties:
                pki.issue(self.keys, "party", name)
            if self.dealer:
                pki.issue(self.keys, "dealer", self.dealer)
            for name in self.clients:
                pki.issue(self.keys, "client", name)
        for hub_name in self.hub_names:
            if not (self.keys / f"{hub_name}.crt").exists():
                pki.issue(self.keys, "hub", hub_name)
            hub = {
                "name": hub_name,
                "listen": "127.0.0.1:0",
                "cert": f"keys/{hub_name}.crt",
                "key": f"keys/{hub_name}.key",
                "ca": "keys/ca.crt",
                "database": f"{hub_name}.db",
                "clients": list(self.authorised),
                "heartbeat_interval_s": 1.0,
                **self.hub_extra,
            }
            if hub_name in self._hub_listen:
                hub["listen"], hub["relay_listen"] = self._hub_listen[hub_name]
            (self.root / f"{hub_name}.toml").write_text(to_toml({"hub": hub}))
        for name in [*self.parties, *([self.dealer] if self.dealer else [])]:
            self._write_party(name)

    def _write_party(self, name: str) -> None:
        party = {
            "name": name,
            "cert": f"keys/{name}.crt",
            "key": f"keys/{name}.key",
            "ca": "keys/ca.crt",
            "hubs": self._party_hubs(),
            "hub_name": "hub",
            "listen": "" if name in self.relay_only else "127.0.0.1:0",
            "audit_log": f"audit/{name}.log",
            "health_listen": "127.0.0.1:0",
            **self.party_extra.get(name, {}),
        }
        tables: dict[str, dict[str, Any]] = {"party": party}
        for ds, spec in self.parties.get(name, {}).items():
            table = dict(spec)
            pol = table.pop("policy", None)
            tables[f"datasets.{ds}"] = table
            if pol is not None:
                tables[f"datasets.{ds}.policy"] = pol
        (self.root / f"{name}.toml").write_text(to_toml(tables))

    def _party_hubs(self) -> list[str]:
        """A party's ``hubs`` list: one hub keeps the plain form (its certificate name comes from
        ``hub_name``); several are named in their entries, since each has its own certificate."""
        addresses = [a or "127.0.0.1:0" for a in self.hub_addresses]
        if len(addresses) == 1:
            return addresses
        return [f"{n}@{a}" for n, a in zip(self.hub_names, addresses, strict=True)]

    # ------------------------------------------------------------------------------ processes
    def _spawn(self, name: str, args: list[str]) -> Proc:
        ready = self.root / f"{name}.ready"
        ready.unlink(missing_ok=True)
        log = self.root / "logs" / f"{name}.log"
        proc = Proc(name, args, log, ready)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with log.open("ab") as fh:
            proc.popen = subprocess.Popen(
                [sys.executable, "-m", "smc.party.cli", *args, "--ready-file", str(ready)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=env,
            )
        self.procs[name] = proc
        return proc

    def _wait_ready(self, proc: Proc, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc.ready.exists():
                proc.info = json.loads(proc.ready.read_text())
                return proc.info
            if proc.popen is not None and proc.popen.poll() is not None:
                raise RuntimeError(
                    f"{proc.name} exited with {proc.popen.returncode}:\n{self.log_tail(proc.name)}"
                )
            time.sleep(0.02)
        raise TimeoutError(f"{proc.name} not ready after {timeout} s:\n{self.log_tail(proc.name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.root / "logs" / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def start_hubs(self, hubs: list[int] | None = None) -> list[str]:
        """Start the hubs numbered ``hubs`` (default: all; 0 is the first, ``hub``) side by side;
        their addresses."""
        numbers = hubs if hubs is not None else list(range(len(self.hub_names)))
        procs = [
            self._spawn(n, ["hub", "serve", "--config", str(self.root / f"{n}.toml")])
            for n in (self.hub_names[k] for k in numbers)
        ]
        for k, proc in zip(numbers, procs, strict=True):
            self.hub_addresses[k] = self._wait_ready(proc)["address"]
        return [self.hub_addresses[k] for k in numbers]

    def start_hub(self, hub: int = 0) -> str:
        """Start hub number ``hub`` (0 is the first, ``hub``); its address."""
        return self.start_hubs([hub])[0]

    def restart_hub(self, hub: int = 0) -> str:
        """Start a hub again on the same address and database (after it stopped or died)."""
        name = self.hub_names[hub]
        self._hub_listen[name] = (self.hub_addresses[hub], self.procs[name].info["relay"])
        self.write()
        return self.start_hub(hub)

    def start_parties(self, names: list[str] | None = None) -> None:
        names = (
            names if names is not None else [*self.parties, *([self.dealer] if self.dealer else [])]
        )
        for name in names:
            self._write_party(name)
        procs = [
            self._spawn(n, ["party", "serve", "--config", str(self.root / f"{n}.toml")])
            for n in names
        ]
        for proc in procs:
            self._wait_ready(proc)

    def start(self) -> LocalDeployment:
        """Write the files and start the hubs, then the daemons; if any fails to start, stop
        the ones already running before raising (``__exit__`` does not run when ``__enter__``
        raises, so they would outlive the deployment)."""
        self.write()
        try:
            self.start_hubs()
            self.start_parties()
        except BaseException:
            self.stop()
            raise
        return self

    def client(self, name: str | None = None, hub: int = 0) -> Client:
        """A client of hub number ``hub`` (0 is the first) with ``name``'s certificate."""
        name = name or self.clients[0]
        return Client(
            self.hub_addresses[hub],
            pki.Credentials.from_dir(self.keys, name),
            server_name=self.hub_names[hub],
        )

    def signal(self, name: str, sig: int) -> None:
        proc = self.procs[name]
        if proc.popen is not None and proc.popen.poll() is None:
            proc.popen.send_signal(sig)

    def stop_process(self, name: str, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful drain), then SIGKILL if it does not exit in time."""
        proc = self.procs.get(name)
        if proc is None or proc.popen is None:
            return None
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        return proc.popen.returncode

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.popen is not None and proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait()

    def stop(self) -> None:
        names = [n for n in self.procs if n not in self.hub_names]
        for n in names:
            self.signal(n, signal.SIGTERM)
        for n in names:
            self.stop_process(n)
        hubs = [n for n in self.hub_names if n in self.procs]  # a test may run its own hub
        for n in hubs:
            self.signal(n, signal.SIGTERM)
        for n in hubs:
            self.stop_process(n)

    def __enter__(self) -> LocalDeployment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
