"""The party daemon's configuration file (``party.toml``), parsed and checked at start-up.

Example::

    [party]
    name = "st_mary"                 # must equal the certificate's name
    cert = "keys/st_mary.crt"        # relative paths are relative to this file
    key = "keys/st_mary.key"
    ca = "keys/ca.crt"
    hubs = ["hub.example.org:7443"]  # or "name@host:port": that hub's certificate name
    hub_name = "hub"                 # name in the hub's certificate (default: the host)
    listen = "0.0.0.0:7600"          # direct data plane; "" = reachable only through the relay
    advertise = "st-mary.example.org"  # host peers dial (default: the listen host)
    audit_log = "audit.log"
    clients = ["analyst"]            # who may submit tasks touching this party ("*" = any)
    health_listen = "127.0.0.1:7601" # optional grpc.health.v1 endpoint (mTLS)
    link_idle_s = 300                # close a link to a peer that no task used for this long
    relay_channel = "sealed"         # the hub relay hop: "sealed" (default) or "tls" (see below)

    [datasets.patients]
    path = "patients.csv"            # CSV with a header row, .npy, SQLite or Parquet
    format = "csv"                   # csv | npy | sqlite | parquet (default: from the suffix)
    columns = { age = "fixed", cost_k = "fixed" }   # the schema: column -> fixed | int
    rows = 1000                      # optional: refuse a file with another row count

    [datasets.patients.policy]
    programs = ["3f2a..."]           # program hashes allowed to read this dataset
    circuits = ["hospital_stats"]    # library circuits allowed (rebuilt locally, hash compared)
    recipients = ["st_mary", "analyst"]   # who may receive any output of such a program
    min_parties = 3                  # contributing parties required (no 1-party "aggregates")

    [datasets.clinic]
    path = "clinic.sqlite"           # a SQLite database, opened read-only
    query = "SELECT age, bmi FROM patients WHERE consent = 1"   # one SELECT (or WITH) statement
    columns = { age = "int", bmi = "fixed" }   # must be exactly the query's result columns

    [datasets.claims]
    path = "claims.parquet"          # Parquet; needs pyarrow: pip install 'smc[parquet]'
    columns = { amount = "fixed", visits = "int" }  # a subset of the file's columns

Several hubs, each with its own certificate, are named in their entries; an entry's name takes
precedence over ``hub_name`` (which stays the default for entries without one)::

    hubs = ["hub@hub1.example.org:7443", "hub2@hub2.example.org:7443"]

``relay_channel`` chooses how this party's relay connections to the hub carry frames. Both kinds
open with the mTLS handshake, and relayed payloads are end-to-end AES-256-GCM ciphertext either
way. ``"sealed"`` (the default) closes the TLS layer after the handshake and carries 1 MiB
AES-256-GCM records under a key the hub sent inside TLS: every byte encrypted and authenticated,
counter nonces, key updates. ``"tls"`` keeps OpenSSL's 16 KiB TLS records on the hop, at about
twice the hub's CPU per relayed byte. See :mod:`smc.hub.relay` and docs/deployment.md.

``format`` defaults to the path's suffix (``.sqlite``, ``.sqlite3`` and ``.db`` are SQLite,
``.parquet`` and ``.pq`` Parquet), or to ``sqlite`` when a ``query`` is given. The query is checked
here (one SELECT or WITH statement); :mod:`smc.party.datasets` runs it on a read-only connection
that refuses any write. Every dataset except an ``.npy`` one needs its ``columns``.

Unknown keys are refused, so a typo cannot silently weaken a policy.
"""

from __future__ import annotations

import re
import sqlite3
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smc.hub.pki import NAME_RE
from smc.hub.relay import CHANNELS, DEFAULT_CHANNEL

DTYPES = ("fixed", "int")
FORMATS = ("csv", "npy", "sqlite", "parquet")
TABLE_FORMATS = ("csv", "sqlite", "parquet")  # named columns with a declared schema
SUFFIXES = {
    "csv": "csv",
    "npy": "npy",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "db": "sqlite",
    "parquet": "parquet",
    "pq": "parquet",
}
_SQL_BLANK = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?(?:\*/|\Z))*", re.DOTALL)


class ConfigFileError(ValueError):
    """A configuration file that cannot be used, with the key that is wrong."""


@dataclass(frozen=True)
class Policy:
    programs: frozenset[str] = frozenset()
    circuits: frozenset[str] = frozenset()
    recipients: frozenset[str] = frozenset()
    min_parties: int = 1
    any_program: bool = False


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    path: Path
    format: str
    columns: tuple[tuple[str, str], ...] = ()
    shape: tuple[int, ...] = ()
    dtype: str = "fixed"
    rows: int | None = None
    policy: Policy = field(default_factory=Policy)
    query: str = ""  # sqlite: the SELECT whose result is the table

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


@dataclass(frozen=True)
class PartyConfig:
    name: str
    cert: Path
    key: Path
    ca: Path
    hubs: tuple[str, ...]
    audit_log: Path
    hub_name: str | None = None
    listen: str = "127.0.0.1:0"
    advertise: str | None = None
    clients: frozenset[str] = frozenset({"*"})
    datasets: dict[str, DatasetConfig] = field(default_factory=dict)
    max_frame_bytes: int = 256 << 20
    log_level: str = "info"
    slow_rounds_s: float = 0.0  # testing only: sleep before every frame sent
    health_listen: str = ""  # grpc.health.v1 over mTLS, e.g. "127.0.0.1:7601" ("" = off)
    link_idle_s: float = 300.0  # a direct link no task used for this long is closed
    relay_channel: str = DEFAULT_CHANNEL  # the relay hop, one of smc.hub.relay.CHANNELS


def split_hub(entry: str) -> tuple[str | None, str]:
    """A ``hubs`` entry as (certificate name or None, address): ``"hub2@10.0.0.5:7443"`` gives
    ``("hub2", "10.0.0.5:7443")``, a plain ``"host:port"`` gives ``(None, "host:port")``."""
    name, sep, address = entry.rpartition("@")
    return (name, address) if sep else (None, entry)


def _hub_entry(entry: Any, where: str) -> str:
    if not isinstance(entry, str) or ":" not in entry:
        raise ConfigFileError(
            f"{where}: 'hubs' must list host:port addresses (or name@host:port), got {entry!r}"
        )
    name, address = split_hub(entry)
    if name is None:
        return entry
    host, _, port = address.rpartition(":")
    if not NAME_RE.match(name) or not host or not port.isdigit():
        raise ConfigFileError(
            f"{where}: hub entry {entry!r} is not name@host:port (the name is the one in that "
            "hub's certificate: letters, digits, '_', '.', '-', starting with a letter)"
        )
    return entry


def _take(
    table: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str, default: Any = ...
) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigFileError(f"{where}: missing key {key!r}")
        return default
    val = table[key]
    if not isinstance(val, typ) or (typ is int and isinstance(val, bool)):
        raise ConfigFileError(f"{where}: {key!r} has the wrong type {type(val).__name__}")
    return val


def _no_extra(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigFileError(f"{where}: unknown keys {extra}")


def _strings(val: list[Any], where: str) -> frozenset[str]:
    if not all(isinstance(v, str) for v in val):
        raise ConfigFileError(f"{where}: expected a list of strings")
    return frozenset(val)


def _policy(raw: dict[str, Any], where: str) -> Policy:
    _no_extra(raw, {"programs", "circuits", "recipients", "min_parties", "any_program"}, where)
    programs = _strings(_take(raw, "programs", list, where, []), f"{where}.programs")
    for h in programs:
        if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise ConfigFileError(f"{where}.programs: {h!r} is not a lowercase SHA-256 hex hash")
    min_parties = _take(raw, "min_parties", int, where, 1)
    if min_parties < 1:
        raise ConfigFileError(f"{where}.min_parties must be at least 1")
    return Policy(
        programs=programs,
        circuits=_strings(_take(raw, "circuits", list, where, []), f"{where}.circuits"),
        recipients=_strings(_take(raw, "recipients", list, where, []), f"{where}.recipients"),
        min_parties=min_parties,
        any_program=_take(raw, "any_program", bool, where, False),
    )


def sql_problem(query: str) -> str | None:
    """Why ``query`` is not one SELECT (or WITH ... SELECT) statement, or None if it is.

    A static check that gives a clear message early; the read-only connection and the authorizer
    in :mod:`smc.party.datasets` are what actually stop a write."""
    body = _SQL_BLANK.sub("", query, count=1)
    word = re.match(r"[A-Za-z]+", body)
    if word is None or word.group().upper() not in ("SELECT", "WITH"):
        return "must be a single SELECT (or WITH ... SELECT) statement"
    for i, ch in enumerate(query):
        if ch == ";" and sqlite3.complete_statement(query[: i + 1]):
            if _SQL_BLANK.sub("", query[i + 1 :], count=1):
                return "holds more than one statement; give a single SELECT"
            break
    return None


def _dataset(name: str, raw: dict[str, Any], base: Path) -> DatasetConfig:
    where = f"datasets.{name}"
    if not NAME_RE.match(name):
        raise ConfigFileError(f"{where}: invalid dataset name")
    _no_extra(
        raw, {"path", "format", "columns", "shape", "dtype", "rows", "policy", "query"}, where
    )
    path = base / _take(raw, "path", str, where)
    suffix = path.suffix.lstrip(".").lower()
    fmt = _take(raw, "format", str, where, "sqlite" if "query" in raw else SUFFIXES.get(suffix))
    if fmt not in FORMATS:
        got = repr(fmt) if fmt is not None else f"the suffix {path.suffix!r}"
        raise ConfigFileError(f"{where}: format must be one of {list(FORMATS)}, got {got}")
    query = _take(raw, "query", str, where, "")
    if fmt == "sqlite":
        if not query.strip():
            raise ConfigFileError(f"{where}: a SQLite dataset needs its 'query' (one SELECT)")
        problem = sql_problem(query)
        if problem:
            raise ConfigFileError(f"{where}.query {problem}")
    elif "query" in raw:
        raise ConfigFileError(f"{where}: 'query' is only for SQLite datasets, this one is {fmt}")
    columns: list[tuple[str, str]] = []
    raw_cols = _take(raw, "columns", dict, where, {})
    for col, dtype in raw_cols.items():
        if dtype not in DTYPES:
            raise ConfigFileError(f"{where}.columns.{col}: dtype must be one of {list(DTYPES)}")
        columns.append((col, dtype))
    if fmt in TABLE_FORMATS and not columns:
        kind = {"csv": "CSV", "sqlite": "SQLite", "parquet": "Parquet"}[fmt]
        raise ConfigFileError(f"{where}: a {kind} dataset needs its schema in 'columns'")
    shape = tuple(_take(raw, "shape", list, where, []))
    if fmt == "npy" and (
        "shape" not in raw
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise ConfigFileError(
            f"{where}: an .npy dataset needs its 'shape' (non-negative integers; [] for a scalar)"
        )
    dtype = _take(raw, "dtype", str, where, "fixed")
    if dtype not in DTYPES:
        raise ConfigFileError(f"{where}.dtype must be one of {list(DTYPES)}")
    rows = _take(raw, "rows", int, where, None)
    return DatasetConfig(
        name,
        path,
        fmt,
        tuple(columns),
        shape,
        dtype,
        rows,
        _policy(_take(raw, "policy", dict, where, {}), f"{where}.policy"),
        query,
    )


def parse(raw: dict[str, Any], base: Path) -> PartyConfig:
    _no_extra(raw, {"party", "datasets"}, "party.toml")
    p = _take(raw, "party", dict, "party.toml")
    where = "[party]"
    _no_extra(
        p,
        {
            "name",
            "cert",
            "key",
            "ca",
            "hubs",
            "hub_name",
            "listen",
            "advertise",
            "audit_log",
            "clients",
            "max_frame_mb",
            "log_level",
            "slow_rounds_s",
            "health_listen",
            "link_idle_s",
            "relay_channel",
        },
        where,
    )
    name = _take(p, "name", str, where)
    if not NAME_RE.match(name):
        raise ConfigFileError(f"{where}: invalid party name {name!r}")
    hubs = [_hub_entry(h, where) for h in _take(p, "hubs", list, where)]
    if not hubs:
        raise ConfigFileError(f"{where}: 'hubs' must list host:port addresses")
    if len({split_hub(h)[1] for h in hubs}) != len(hubs):
        raise ConfigFileError(f"{where}: 'hubs' lists the same address twice")
    link_idle_s = float(_take(p, "link_idle_s", (int, float), where, PartyConfig.link_idle_s))
    if not link_idle_s > 0:
        raise ConfigFileError(f"{where}: link_idle_s must be positive, got {link_idle_s}")
    relay_channel = _take(p, "relay_channel", str, where, PartyConfig.relay_channel)
    if relay_channel not in CHANNELS:
        raise ConfigFileError(
            f"{where}: relay_channel must be one of {', '.join(CHANNELS)}, got {relay_channel!r}"
        )
    datasets = {
        n: _dataset(n, d, base) for n, d in _take(raw, "datasets", dict, "party.toml", {}).items()
    }
    return PartyConfig(
        name=name,
        cert=base / _take(p, "cert", str, where),
        key=base / _take(p, "key", str, where),
        ca=base / _take(p, "ca", str, where),
        hubs=tuple(hubs),
        audit_log=base / _take(p, "audit_log", str, where, f"{name}-audit.log"),
        hub_name=_take(p, "hub_name", str, where, None),
        listen=_take(p, "listen", str, where, "127.0.0.1:0"),
        advertise=_take(p, "advertise", str, where, None),
        clients=_strings(_take(p, "clients", list, where, ["*"]), f"{where}.clients"),
        datasets=datasets,
        max_frame_bytes=int(_take(p, "max_frame_mb", int, where, 256)) << 20,
        log_level=_take(p, "log_level", str, where, "info"),
        slow_rounds_s=float(_take(p, "slow_rounds_s", (int, float), where, 0.0)),
        health_listen=_take(p, "health_listen", str, where, ""),
        link_idle_s=link_idle_s,
        relay_channel=relay_channel,
    )


def load(path: str | Path) -> PartyConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigFileError(f"{path}: {exc}") from None
    try:
        return parse(raw, path.resolve().parent)
    except ConfigFileError as exc:
        raise ConfigFileError(f"{path}: {exc}") from None
