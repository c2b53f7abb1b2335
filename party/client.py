"""The analyst's client: run a program built with :class:`smc.ProgramBuilder` on real parties.

Example::

    from smc.party import Client
    from smc.hub.pki import Credentials

    client = Client("hub.example.org:7443", Credentials.from_dir("keys", "analyst"))
    result = client.run(program, deadline_s=120)     # the same Program as for smc.simulate
    result["st_mary"]["mean_age"]

Who learns what: the client signs a manifest naming the program hash, the input bindings and a
fresh X25519 key for this task. Each recipient party encrypts the outputs it received to that key;
the hub stores and forwards only ciphertext. The client checks each result against the party's
signed key announcement, so a result cannot come from anyone but that party. Outputs stay with
their recipient parties only when ``forward_results=False``.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
from smc.hub.manifest import Binding, Contribution, Manifest
from smc.hub.pki import CertificateError, Credentials, verify_cert
from smc.hub.store import TERMINAL, now_ms
from smc.hub.tls import channel
from smc.party import keyex, pickup, results
from smc.party.dataplane import client_context
from smc.party.wire import program_pb
from smc.proto.v1 import hub_pb2, hub_pb2_grpc, task_pb2

from smc.config import default_suite
from smc.errors import SmcError
from smc.ir import Program

log = logging.getLogger("smc.party.client")
UPLOAD_WAIT_S = 30.0  # how long to wait for the hub's copy of a result offered for pickup
Sealed = tuple[bytes, bytes | bytearray]  # a result's nonce and ciphertext


class HubRequestError(SmcError):
    """The hub refused a request or could not be reached; ``code`` is the gRPC status name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TaskFailed(SmcError):
    """The task did not succeed; ``reason`` says why (a party's refusal, a peer failure, ...)."""

    def __init__(self, task_id: str, state: str, reason: str) -> None:
        super().__init__(f"task {task_id} {state}: {reason}")
        self.task_id = task_id
        self.state = state
        self.reason = reason


def _rpc(what: str, address: str, exc: grpc.RpcError) -> HubRequestError:
    code = exc.code()
    details = exc.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return HubRequestError(
            code.name,
            f"{what}: cannot reach the hub at {address} (is it running, "
            f"and does it trust this certificate's CA?): {details}",
        )
    return HubRequestError(code.name, f"{what}: {details}")


@dataclass
class DeployResult:
    """Outputs per recipient party (only the outputs forwarded to this client), and the history."""

    task_id: str
    outputs: dict[str, dict[str, np.ndarray]]
    events: list[hub_pb2.TaskEvent] = field(default_factory=list)
    seconds: float = 0.0
    picked_up: tuple[str, ...] = ()  # parties whose result came directly (smc.party.pickup)

    def __getitem__(self, party: str) -> dict[str, np.ndarray]:
        return self.outputs.get(party, {})


class Task:
    """A submitted task: watch its events, wait for its result, or cancel it."""

    def __init__(
        self,
        client: Client,
        manifest: Manifest,
        key: Any,
        submitted: float,
        program: Program | None = None,
    ) -> None:
        self.client = client
        self.manifest = manifest
        self.program = program
        self.id = manifest.task_id
        self.direct_results = True  # take results from the parties directly when possible
        self._key = key
        self._submitted = submitted
        self.history: list[hub_pb2.TaskEvent] = []

    def events(self) -> Iterator[hub_pb2.TaskEvent]:
        """Progress events until the task ends (resumes after a dropped stream)."""
        after = self.history[-1].seq if self.history else 0
        while True:
            left = (self.manifest.deadline_ms - now_ms()) / 1000 + 30
            try:
                for ev in self.client.stub.Watch(
                    hub_pb2.WatchRequest(task_id=self.id, after_seq=after), timeout=max(1.0, left)
                ):
                    after = ev.seq
                    self.history.append(ev)
                    yield ev
                    if ev.state in TERMINAL:
                        return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or left < 0:
                    raise _rpc(f"watching task {self.id}", self.client.address, exc) from None
            if left < 0:  # the stream ended early (hub restarting?) and never came back
                raise HubRequestError(
                    "DEADLINE_EXCEEDED", f"task {self.id}: no final state from the hub"
                )
            time.sleep(0.2)

    def _delivered(self) -> set[str]:
        """Parties whose result the hub records as taken directly by the client (these events
        follow the task's final one, so :meth:`events` does not show them)."""
        req = hub_pb2.WatchRequest(task_id=self.id, after_seq=0)
        try:
            return {
                ev.party
                for ev in self.client.stub.Watch(req, timeout=10)
                if ev.kind == "result_delivered"
            }
        except grpc.RpcError as exc:
            raise _rpc(f"watching task {self.id}", self.client.address, exc) from None

    def status(self) -> hub_pb2.TaskStatus:
        try:
            return self.client.stub.GetTask(hub_pb2.GetTaskRequest(task_id=self.id), timeout=30)
        except grpc.RpcError as exc:
            raise _rpc(f"reading task {self.id}", self.client.address, exc) from None

    def cancel(self, reason: str = "") -> None:
        try:
            self.client.stub.Cancel(
                hub_pb2.CancelRequest(task_id=self.id, reason=reason), timeout=30
            )
        except grpc.RpcError as exc:
            raise _rpc(f"cancelling task {self.id}", self.client.address, exc) from None

    def _result_sizes(self) -> dict[str, int]:
        """Values each party forwards to this client (empty when the program is unknown)."""
        if self.program is None or not self.manifest.result_key:
            return {}
        sizes: dict[str, int] = {}
        for o in self.program.outputs:
            for r in o.recipients or self.program.parties:
                sizes[r] = sizes.get(r, 0) + self.program.nodes[o.node].size
        return sizes

    def _pick_up(self, info: hub_pb2.TaskStatus, party: str) -> Sealed | None:
        endpoint = next((p.endpoint for p in info.participants if p.name == party), "")
        if not endpoint:
            return None  # a relay-only party: the hub's copy it is
        try:
            nonce, ct = pickup.fetch(
                self.client.creds,
                client_context(self.client.creds),
                endpoint,
                task_id=self.id,
                party=party,
            )
        except pickup.PickupError as exc:
            log.info("direct pickup failed, using the hub's copy", extra={"error": str(exc)})
            return None
        return nonce, ct

    def wait(self, on_event: Callable[[hub_pb2.TaskEvent], None] | None = None) -> DeployResult:
        """Block until the task ends; the decrypted outputs, or :class:`TaskFailed`.

        Large results are taken directly from the parties that hold them as soon as they report
        done (smc.party.pickup); otherwise from the hub, whose copy of such a result follows
        within seconds when the client has not taken it (the party uploads it then)."""
        sizes = self._result_sizes()
        expected = {r for r, n in sizes.items() if pickup.worth_picking_up(n)}
        if not self.direct_results:
            expected = set()
        info: hub_pb2.TaskStatus | None = None
        picked: dict[str, Sealed] = {}
        for ev in self.events():
            if on_event is not None:
                on_event(ev)
            if ev.kind == "started" and expected:
                info = self.status()  # participants and announcements, before any result
            elif ev.kind == "party_done" and info is not None and ev.party in expected:
                got = self._pick_up(info, ev.party)
                if got is not None:
                    picked[ev.party] = got
        last = self.history[-1].state if self.history else ""
        if info is not None and picked and set(picked) == set(sizes) and last == "succeeded":
            st = hub_pb2.TaskStatus(  # every result came from its party: no hub copy needed
                state="succeeded", participants=info.participants, announcements=info.announcements
            )
        else:
            st = self.status()
        if st.state != "succeeded":
            raise TaskFailed(self.id, st.state, st.reason)
        until = time.monotonic() + UPLOAD_WAIT_S
        while missing := sorted(
            r.party for r in st.results if not r.ciphertext and r.party not in picked
        ):
            # reported by nonce (offered for direct pickup): the party uploads it when the
            # client has not taken it in time (smc.party.pickup), unless a client took it
            if taken := sorted(set(missing) & self._delivered()):
                raise TaskFailed(
                    self.id,
                    "unavailable",
                    f"the results of {taken} were already delivered to this task's client "
                    "directly by their parties; the hub keeps no copy of such results",
                )
            if time.monotonic() > until:
                raise TaskFailed(
                    self.id,
                    "unavailable",
                    f"the hub has no copy of the results of {missing} (they were offered for "
                    "direct pickup and never uploaded)",
                )
            time.sleep(0.05)
            st = self.status()
        outputs = self._open(st, picked)
        return DeployResult(
            self.id,
            outputs,
            list(self.history),
            time.perf_counter() - self._submitted,
            tuple(sorted(picked)),
        )

    def _open(
        self, st: hub_pb2.TaskStatus, picked: Mapping[str, Sealed] | None = None
    ) -> dict[str, dict[str, np.ndarray]]:
        """Verify the announcements and decrypt every result: those in ``st`` (the hub's
        copies), and those ``picked`` up from their parties (kept as received: a result of
        megabytes is not copied into a protobuf message on the way)."""
        sealed: dict[str, Sealed] = {r.party: (r.nonce, r.ciphertext) for r in st.results}
        sealed.update(picked or {})
        certs = {p.name: p.cert for p in st.participants}
        keys: dict[str, str] = {}
        for ann in st.announcements:
            try:
                name = json.loads(ann.body)["party"]
                verify_cert(certs[name], self.client.creds.ca_pem, ("party", "dealer"), name)
                keys[name] = keyex.verify_announcement(
                    ann.body,
                    ann.signature,
                    certs[name],
                    task_id=self.id,
                    party=name,
                    manifest_sha256=self.manifest.sha256,
                )
            except (
                KeyError,
                ValueError,
                TypeError,
                CertificateError,
                keyex.KeyExchangeError,
            ) as exc:
                raise TaskFailed(
                    self.id, "unverifiable", f"a key announcement does not verify: {exc}"
                ) from None
        out: dict[str, dict[str, np.ndarray]] = {}
        for party, (nonce, ciphertext) in sorted(sealed.items()):
            if party not in keys:
                raise TaskFailed(
                    self.id, "unverifiable", f"result from {party!r}, who announced no key"
                )
            try:
                plain = keyex.open_result(
                    self._key,
                    keys[party],
                    manifest_sha256=self.manifest.sha256,
                    task_id=self.id,
                    party=party,
                    nonce=nonce,
                    ciphertext=ciphertext,
                )
                out[party] = results.decode(plain)
            except (keyex.KeyExchangeError, results.ResultFormatError) as exc:
                raise TaskFailed(self.id, "unverifiable", str(exc)) from None
        if self.program is not None and self.manifest.result_key:
            self._check_complete(self.program, out)
        return out

    def _check_complete(self, program: Program, out: dict[str, dict[str, np.ndarray]]) -> None:
        """Every recipient delivered exactly its outputs, with the program's shapes (a party
        cannot add outputs it was not given; the hub cannot drop a party's result unnoticed)."""
        for party in program.parties:
            mine = {
                o.name: o.node for o in program.outputs if not o.recipients or party in o.recipients
            }
            got = out.get(party, {})
            if set(got) != set(mine) and (got or mine):
                raise TaskFailed(
                    self.id,
                    "unverifiable",
                    f"party {party!r} delivered outputs "
                    f"{sorted(got)}, the program gives it {sorted(mine)}",
                )
            for name, node in mine.items():
                if got[name].shape != program.nodes[node].shape:
                    raise TaskFailed(
                        self.id,
                        "unverifiable",
                        f"output {name!r} from {party!r} has "
                        f"shape {got[name].shape}, not {program.nodes[node].shape}",
                    )


class Client:
    """A connection to a hub with this client's certificate (``credentials``)."""

    def __init__(self, hub: str, credentials: Credentials, server_name: str | None = None) -> None:
        self.address = hub
        self.creds = credentials
        self.identity = credentials.identity
        self._channel = channel(hub, credentials, server_name)
        self.stub = hub_pb2_grpc.HubStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def parties(self) -> list[hub_pb2.PartyInfo]:
        try:
            return list(self.stub.ListParties(hub_pb2.ListPartiesRequest(), timeout=30).parties)
        except grpc.RpcError as exc:
            raise _rpc("listing parties", self.address, exc) from None

    def submit(
        self,
        program: Program,
        *,
        suite: str | None = None,
        dealer: str = "",
        bindings: Mapping[str, Mapping[str, str | tuple[str, tuple[str, ...]]]] | None = None,
        deadline_s: float = 60.0,
        data_plane: str = "direct",
        circuit: tuple[str, dict[str, Any]] | None = None,
        forward_results: bool = True,
        contributions: Mapping[str, Mapping[str, tuple[str, tuple[str, ...], str]]] | None = None,
    ) -> Task:
        """Sign and submit ``program``; returns at once with a :class:`Task`.

        ``bindings[party][input] = "dataset"`` or ``("dataset", ("col", ...))`` overrides the
        default binding by input name; ``dealer`` names the dealer daemon (suite 'additive');
        ``circuit`` = (name, params) claims the program is a library circuit (parties verify it);
        ``contributions[owner][name] = (dataset, columns, dtype)`` makes ``owner`` an input-only
        party whose data reaches the computing parties as shares, read by the program's inputs
        ``<name>_hi``/``<name>_lo`` (build them with ``smc.circuits.blocks.client_input``)."""
        suite = suite or default_suite(len(program.parties))
        key = keyex.new_ephemeral()
        created = now_ms()
        man = Manifest(
            task_id=secrets.token_hex(16),
            client=self.identity.name,
            program_sha256=program.hash,
            parties=program.parties,
            suite=suite,
            created_ms=created,
            deadline_ms=created + int(deadline_s * 1000),
            dealer=dealer if suite == "additive" else "",
            bindings=_bindings(bindings or {}),
            result_key=keyex.public_hex(key) if forward_results else "",
            data_plane=data_plane,
            circuit={"name": circuit[0], "params": circuit[1]} if circuit else {},
            contributions={
                who: {n: Contribution(c[0], tuple(c[1]), c[2]) for n, c in items.items()}
                for who, items in (contributions or {}).items()
            },
        )
        blob = man.to_bytes()
        signed = task_pb2.SignedManifest(
            manifest=blob, signature=self.creds.sign(blob), client_cert=self.creds.cert_pem
        )
        started = time.perf_counter()
        try:
            self.stub.Submit(
                hub_pb2.SubmitRequest(manifest=signed, program=program_pb(program)), timeout=60
            )
        except grpc.RpcError as exc:
            raise _rpc("submitting the task", self.address, exc) from None
        return Task(self, man, key, started, program)

    def run(
        self,
        program: Program,
        on_event: Callable[[hub_pb2.TaskEvent], None] | None = None,
        **kw: Any,
    ) -> DeployResult:
        """Submit and wait; see :meth:`submit` for the options."""
        return self.submit(program, **kw).wait(on_event)


def _bindings(
    raw: Mapping[str, Mapping[str, str | tuple[str, tuple[str, ...]]]],
) -> dict[str, dict[str, Binding]]:
    out: dict[str, dict[str, Binding]] = {}
    for party, inputs in raw.items():
        out[party] = {}
        for name, b in inputs.items():
            out[party][name] = Binding(b) if isinstance(b, str) else Binding(b[0], tuple(b[1]))
    return out
