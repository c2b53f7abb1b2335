"""The one place where protobuf messages become engine objects (and back).

:func:`task_from_offer` turns a hub's offer into a :class:`TaskSpec` only after checking, on its
own, everything the hub might have got wrong or forged: the client's certificate (deployment CA,
role client, the manifest's client name) and its signature over the manifest, the program (it is
re-validated by :meth:`Program.from_bytes` and its hash recomputed — a program is data, never
code), that the program's parties are the manifest's, and every participant's certificate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from smc.hub.manifest import Manifest, ManifestError
from smc.hub.pki import CertificateError, verify_cert, verify_signature
from smc.proto.v1 import hub_pb2, task_pb2

from smc.errors import ProgramError
from smc.ir import Program


class OfferError(ValueError):
    """An offer that must be refused; the message is shown to the submitter."""


@dataclass(frozen=True)
class Participant:
    name: str
    role: str
    endpoint: str
    cert_pem: bytes


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    manifest: Manifest
    manifest_sha256: str
    program: Program
    participants: dict[str, Participant]
    client_cert: bytes

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The engine's endpoints (parties in program order, then the dealer)."""
        return tuple(self.manifest.endpoints)

    @property
    def members(self) -> tuple[str, ...]:
        """Every daemon of the task: the engine's endpoints, then input-only contributors."""
        return tuple(self.manifest.members)


def program_pb(program: Program) -> task_pb2.Program:
    blob = program.to_bytes()
    return task_pb2.Program(canonical=blob, sha256=hashlib.sha256(blob).hexdigest())


def task_from_offer(offer: hub_pb2.TaskOffer, ca_pem: bytes, me: str) -> TaskSpec:
    signed = offer.manifest
    try:
        man = Manifest.from_bytes(signed.manifest)
    except ManifestError as exc:
        raise OfferError(str(exc)) from None
    if man.task_id != offer.task_id:
        raise OfferError("the offer's task id differs from the signed manifest's")
    try:
        verify_cert(signed.client_cert, ca_pem, "client", man.client)
        verify_signature(signed.client_cert, signed.manifest, signed.signature, "manifest")
    except CertificateError as exc:
        raise OfferError(f"client authentication failed: {exc}") from None
    try:
        program = Program.from_bytes(offer.program.canonical)
    except ProgramError as exc:
        raise OfferError(f"malformed program: {exc}") from None
    if program.hash != man.program_sha256:
        raise OfferError(
            f"program hash mismatch: the signed manifest names {man.program_sha256[:12]}…, "
            f"the program received hashes to {program.hash[:12]}…"
        )
    if program.parties != man.parties:
        raise OfferError(
            f"the program's parties {list(program.parties)} differ from the manifest's "
            f"{list(man.parties)}"
        )
    if me not in man.members:
        raise OfferError(f"{me!r} is not an endpoint of this task")
    participants: dict[str, Participant] = {}
    for p in offer.participants:
        if p.name not in man.members or p.name in participants:
            raise OfferError(f"unexpected or duplicate participant {p.name!r}")
        role = "dealer" if p.name == man.dealer else "party"
        try:
            verify_cert(p.cert, ca_pem, role, p.name)
        except CertificateError as exc:
            raise OfferError(f"participant {p.name!r}: {exc}") from None
        participants[p.name] = Participant(p.name, p.role, p.endpoint, p.cert)
    missing = [n for n in man.members if n not in participants]
    if missing:
        raise OfferError(f"the offer lacks participants {missing}")
    return TaskSpec(man.task_id, man, man.sha256, program, participants, signed.client_cert)


def announcement_pb(body: bytes, signature: bytes) -> task_pb2.Announcement:
    return task_pb2.Announcement(body=body, signature=signature)


def announcements_by_name(
    spec: TaskSpec, start: hub_pb2.TaskStart
) -> dict[str, tuple[bytes, bytes]]:
    """The start message's announcements in member order (checked later by signature)."""
    anns = list(start.announcements)
    if len(anns) != len(spec.members):
        raise OfferError(f"start carries {len(anns)} announcements for {len(spec.members)} members")
    return {name: (a.body, a.signature) for name, a in zip(spec.members, anns, strict=True)}


def result_pb(party: str, nonce: bytes, ciphertext: bytes) -> task_pb2.EncryptedResult:
    return task_pb2.EncryptedResult(party=party, nonce=nonce, ciphertext=ciphertext)
