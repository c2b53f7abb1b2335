"""The task manifest: what a client asks the parties to do, in a canonical, signed encoding.

The client signs the manifest with its certificate key; the hub routes it unchanged and every
party verifies the signature itself, so a malicious hub can neither change the program, the
bindings of inputs to datasets, nor the key the results are encrypted to.

Canonical encoding (as for programs): JSON, sorted keys, no whitespace, ASCII, integers and
strings only. Fields (``v`` = 1)::

    task_id        32 lowercase hex characters, chosen by the client, never reused
    client         the submitting client's identity (its certificate's name)
    program_sha256 SHA-256 of the program's canonical encoding
    parties        the program's parties, in program order
    dealer         the dealer endpoint's name (suite 'additive'), or "" for none
    suite          "rss3" or "additive"
    bindings       {party: {input name: {"dataset": str, "columns": [str, ...]}}} (may be partial)
    result_key     hex X25519 public key the outputs are encrypted to, or "" (results stay at
                   their recipient parties)
    created_ms     client clock at creation (ms since the epoch)
    deadline_ms    the task fails if it has not finished by then
    data_plane     "direct" (mTLS between parties, relay as fallback) or "relay" (via the hub)
    circuit        {"name": str, "params": {..}} naming a library circuit, or {} for none
    contributions  {contributor: {name: {"dataset", "columns", "dtype"}}}: input-only parties.
                   A contributor computes nothing: it splits its data into additive shares and
                   sends each computing party its share, which the program reads as the int
                   inputs ``<name>_hi`` / ``<name>_lo`` (see smc.circuits.blocks.client_input)

Parsing refuses anything else with :class:`ManifestError`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from smc.hub.pki import NAME_RE

MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 1 << 20
SUITES = ("rss3", "additive")
DATA_PLANES = ("direct", "relay")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
INPUT_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class ManifestError(ValueError):
    """A malformed or inconsistent task manifest."""


def canonical_json(obj: Any) -> bytes:
    """The canonical encoding shared with :func:`smc.ir.canonical_json` (no floats allowed)."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


@dataclass(frozen=True)
class Binding:
    dataset: str
    columns: tuple[str, ...] = ()

    def to_obj(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "columns": list(self.columns)}


@dataclass(frozen=True)
class Contribution:
    """Data an input-only party shares into the computation (``dtype``: fixed or int)."""

    dataset: str
    columns: tuple[str, ...] = ()
    dtype: str = "fixed"

    def to_obj(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "columns": list(self.columns), "dtype": self.dtype}


@dataclass(frozen=True)
class Manifest:
    task_id: str
    client: str
    program_sha256: str
    parties: tuple[str, ...]
    suite: str
    created_ms: int
    deadline_ms: int
    dealer: str = ""
    bindings: dict[str, dict[str, Binding]] = field(default_factory=dict, hash=False)
    result_key: str = ""
    data_plane: str = "direct"
    circuit: dict[str, Any] = field(default_factory=dict, hash=False)
    contributions: dict[str, dict[str, Contribution]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Parties in program order, then the dealer when there is one (the engine's numbering)."""
        return (*self.parties, self.dealer) if self.dealer else self.parties

    @property
    def contributors(self) -> tuple[str, ...]:
        return tuple(sorted(self.contributions))

    @property
    def members(self) -> tuple[str, ...]:
        """Every daemon of the task: the engine's endpoints, then the input-only contributors."""
        return (*self.endpoints, *self.contributors)

    def contributed(self) -> dict[str, str]:
        """Program input name (``<name>_hi``/``<name>_lo``) -> the contributor that supplies it."""
        out = {}
        for who, items in self.contributions.items():
            for name in items:
                out[f"{name}_hi"] = who
                out[f"{name}_lo"] = who
        return out

    def to_obj(self) -> dict[str, Any]:
        return {
            "v": MANIFEST_VERSION,
            "task_id": self.task_id,
            "client": self.client,
            "program_sha256": self.program_sha256,
            "parties": list(self.parties),
            "dealer": self.dealer,
            "suite": self.suite,
            "bindings": {
                p: {k: b.to_obj() for k, b in m.items()} for p, m in self.bindings.items()
            },
            "result_key": self.result_key,
            "created_ms": self.created_ms,
            "deadline_ms": self.deadline_ms,
            "data_plane": self.data_plane,
            "circuit": self.circuit,
            "contributions": {
                c: {k: v.to_obj() for k, v in m.items()} for c, m in self.contributions.items()
            },
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_obj())

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @classmethod
    def from_bytes(cls, blob: bytes) -> Manifest:
        if len(blob) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"manifest is {len(blob)} bytes, above {MAX_MANIFEST_BYTES}")
        try:
            obj = json.loads(blob.decode("ascii"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"manifest is not canonical JSON: {exc}") from None
        man = from_obj(obj)
        if man.to_bytes() != blob:
            raise ManifestError("manifest encoding is not canonical (re-encoding differs)")
        return man


def _get(obj: dict[str, Any], key: str, typ: type) -> Any:
    if key not in obj:
        raise ManifestError(f"manifest: missing field {key!r}")
    val = obj[key]
    if not isinstance(val, typ) or (typ is int and isinstance(val, bool)):
        raise ManifestError(f"manifest: field {key!r} has the wrong type {type(val).__name__}")
    return val


def from_obj(obj: Any) -> Manifest:
    if not isinstance(obj, dict):
        raise ManifestError("manifest must be a JSON object")
    if _get(obj, "v", int) != MANIFEST_VERSION:
        raise ManifestError(f"unsupported manifest version {obj['v']}")
    known = {
        "v",
        "task_id",
        "client",
        "program_sha256",
        "parties",
        "dealer",
        "suite",
        "bindings",
        "result_key",
        "created_ms",
        "deadline_ms",
        "data_plane",
        "circuit",
        "contributions",
    }
    extra = sorted(set(obj) - known)
    if extra:
        raise ManifestError(f"manifest: unknown fields {extra}")
    raw_bindings = _get(obj, "bindings", dict)
    bindings: dict[str, dict[str, Binding]] = {}
    for party, inputs in raw_bindings.items():
        if not isinstance(inputs, dict):
            raise ManifestError(f"manifest: bindings of {party!r} must be an object")
        bindings[party] = {}
        for name, b in inputs.items():
            if not isinstance(b, dict) or set(b) != {"dataset", "columns"}:
                raise ManifestError(f"manifest: binding {party}/{name} needs dataset and columns")
            cols = b["columns"]
            if (
                not isinstance(b["dataset"], str)
                or not isinstance(cols, list)
                or not all(isinstance(c, str) for c in cols)
            ):
                raise ManifestError(f"manifest: binding {party}/{name} has the wrong types")
            bindings[party][name] = Binding(b["dataset"], tuple(cols))
    parties = _get(obj, "parties", list)
    return Manifest(
        task_id=_get(obj, "task_id", str),
        client=_get(obj, "client", str),
        program_sha256=_get(obj, "program_sha256", str),
        parties=tuple(parties),
        dealer=_get(obj, "dealer", str),
        suite=_get(obj, "suite", str),
        bindings=bindings,
        result_key=_get(obj, "result_key", str),
        created_ms=_get(obj, "created_ms", int),
        deadline_ms=_get(obj, "deadline_ms", int),
        data_plane=_get(obj, "data_plane", str),
        circuit=_get(obj, "circuit", dict),
        contributions=_contributions(_get(obj, "contributions", dict)),
    )


def _contributions(raw: dict[str, Any]) -> dict[str, dict[str, Contribution]]:
    out: dict[str, dict[str, Contribution]] = {}
    for who, items in raw.items():
        if not isinstance(items, dict):
            raise ManifestError(f"manifest: contributions of {who!r} must be an object")
        out[who] = {}
        for name, c in items.items():
            if not isinstance(c, dict) or set(c) != {"dataset", "columns", "dtype"}:
                raise ManifestError(
                    f"manifest: contribution {who}/{name} needs dataset, columns, dtype"
                )
            cols = c["columns"]
            if not (
                isinstance(c["dataset"], str)
                and isinstance(c["dtype"], str)
                and isinstance(cols, list)
                and all(isinstance(x, str) for x in cols)
            ):
                raise ManifestError(f"manifest: contribution {who}/{name} has the wrong types")
            out[who][name] = Contribution(c["dataset"], tuple(cols), c["dtype"])
    return out


def validate(m: Manifest) -> None:
    """Structural checks every holder of a manifest can do (no program, no policy)."""
    if not HEX32.match(m.task_id):
        raise ManifestError("manifest: task_id must be 32 lowercase hex characters")
    if not HEX64.match(m.program_sha256):
        raise ManifestError("manifest: program_sha256 must be 64 lowercase hex characters")
    names = [*m.parties, *([m.dealer] if m.dealer else [])]
    for name in [m.client, *names]:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ManifestError(f"manifest: {name!r} is not a valid identity name")
    if len(set(names)) != len(names) or not m.parties:
        raise ManifestError(f"manifest: endpoint names must be distinct and non-empty, got {names}")
    if m.suite not in SUITES:
        raise ManifestError(f"manifest: unknown suite {m.suite!r}; choose one of {list(SUITES)}")
    if m.suite == "rss3" and (len(m.parties) != 3 or m.dealer):
        raise ManifestError("manifest: suite 'rss3' runs on exactly 3 parties and no dealer")
    if m.suite == "additive" and (len(m.parties) < 2 or not m.dealer):
        raise ManifestError("manifest: suite 'additive' needs at least 2 parties and a dealer")
    if m.data_plane not in DATA_PLANES:
        raise ManifestError(f"manifest: data_plane must be one of {list(DATA_PLANES)}")
    if m.result_key and not HEX64.match(m.result_key):
        raise ManifestError("manifest: result_key must be a hex X25519 public key or empty")
    if m.deadline_ms <= m.created_ms:
        raise ManifestError("manifest: the deadline must lie after the creation time")
    for party, inputs in m.bindings.items():
        if party not in m.parties:
            raise ManifestError(f"manifest: bindings name {party!r}, which is not a party")
        for name, b in inputs.items():
            if (
                not INPUT_NAME.match(name)
                or not INPUT_NAME.match(b.dataset)
                or not all(INPUT_NAME.match(c) for c in b.columns)
            ):
                raise ManifestError(f"manifest: binding {party}/{name} has an invalid name")
    seen: set[str] = set()
    for who, items in m.contributions.items():
        if not isinstance(who, str) or not NAME_RE.match(who) or who in m.endpoints:
            raise ManifestError(
                f"manifest: contributor {who!r} must be a valid name and not "
                "also a computing party or the dealer"
            )
        if not items:
            raise ManifestError(f"manifest: contributor {who!r} contributes nothing")
        for name, c in items.items():
            if not INPUT_NAME.match(name) or name in seen:
                raise ManifestError(f"manifest: contribution name {name!r} is invalid or repeated")
            seen.add(name)
            if not INPUT_NAME.match(c.dataset) or not all(INPUT_NAME.match(x) for x in c.columns):
                raise ManifestError(f"manifest: contribution {who}/{name} has an invalid name")
            if c.dtype not in ("fixed", "int"):
                raise ManifestError(
                    f"manifest: contribution {who}/{name}: dtype must be fixed or int"
                )
    if m.circuit and (
        set(m.circuit) != {"name", "params"}
        or not isinstance(m.circuit["name"], str)
        or not isinstance(m.circuit["params"], dict)
    ):
        raise ManifestError("manifest: circuit must be {} or {'name': str, 'params': {...}}")
