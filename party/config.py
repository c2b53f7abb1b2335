"""The party daemon's configuration file (``party.toml``), parsed and checked at start-up.

Example::

    [party]
    name = "st_mary"                 # must equal the certificate's name
    cert = "keys/st_mary.crt"        # relative paths are relative to this file
    key = "keys/st_mary.key"
    ca = "keys/ca.crt"
    hubs = ["hub.example.org:7443"]
    hub_name = "hub"                 # name in the hub's certificate (default: the host)
    listen = "0.0.0.0:7600"          # direct data plane; "" = reachable only through the relay
    advertise = "st-mary.example.org"  # host peers dial (default: the listen host)
    audit_log = "audit.log"
    clients = ["analyst"]            # who may submit tasks touching this party ("*" = any)
    health_listen = "127.0.0.1:7601" # optional grpc.health.v1 endpoint (mTLS)

    [datasets.patients]
    path = "patients.csv"            # CSV with a header row, or .npy
    format = "csv"
    columns = { age = "fixed", cost_k = "fixed" }   # the schema: column -> fixed | int
    rows = 1000                      # optional: refuse a file with another row count

    [datasets.patients.policy]
    programs = ["3f2a..."]           # program hashes allowed to read this dataset
    circuits = ["hospital_stats"]    # library circuits allowed (rebuilt locally, hash compared)
    recipients = ["st_mary", "analyst"]   # who may receive any output of such a program
    min_parties = 3                  # contributing parties required (no 1-party "aggregates")

Unknown keys are refused, so a typo cannot silently weaken a policy.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smc.hub.pki import NAME_RE

DTYPES = ("fixed", "int")
FORMATS = ("csv", "npy")


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


def _dataset(name: str, raw: dict[str, Any], base: Path) -> DatasetConfig:
    where = f"datasets.{name}"
    if not NAME_RE.match(name):
        raise ConfigFileError(f"{where}: invalid dataset name")
    _no_extra(raw, {"path", "format", "columns", "shape", "dtype", "rows", "policy"}, where)
    path = base / _take(raw, "path", str, where)
    fmt = _take(raw, "format", str, where, path.suffix.lstrip(".").lower())
    if fmt not in FORMATS:
        raise ConfigFileError(f"{where}: format must be one of {list(FORMATS)}, got {fmt!r}")
    columns: list[tuple[str, str]] = []
    raw_cols = _take(raw, "columns", dict, where, {})
    for col, dtype in raw_cols.items():
        if dtype not in DTYPES:
            raise ConfigFileError(f"{where}.columns.{col}: dtype must be one of {list(DTYPES)}")
        columns.append((col, dtype))
    if fmt == "csv" and not columns:
        raise ConfigFileError(f"{where}: a CSV dataset needs its schema in 'columns'")
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
        },
        where,
    )
    name = _take(p, "name", str, where)
    if not NAME_RE.match(name):
        raise ConfigFileError(f"{where}: invalid party name {name!r}")
    hubs = _take(p, "hubs", list, where)
    if not hubs or not all(isinstance(h, str) and ":" in h for h in hubs):
        raise ConfigFileError(f"{where}: 'hubs' must list host:port addresses")
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
