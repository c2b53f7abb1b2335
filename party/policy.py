"""The data owner's policy: which computations may read which dataset, and who may see results.

Checked for every task before any data is read into the computation; a refusal carries a
reason the submitter sees (through the hub) and is written to the audit log. The check is
conservative: every output of a program counts as derived from every dataset it reads.
"""

from __future__ import annotations

from collections.abc import Iterable

from smc.hub.manifest import Manifest
from smc.party.config import DatasetConfig

from smc.ir import Program


class PolicyError(Exception):
    """A task the owner's policy does not allow; the message names the rule and the dataset."""


def recipients(program: Program, manifest: Manifest) -> set[str]:
    """Who learns an output: recipient parties, and the client when outputs are forwarded."""
    out: set[str] = set()
    for o in program.outputs:
        out.update(o.recipients or program.parties)
    if manifest.result_key:
        out.add(manifest.client)
    return out


def contributors(program: Program, manifest: Manifest) -> set[str]:
    """Parties whose data enters: owners of inputs read from their own datasets, and input-only
    contributors (the computing parties' share inputs are not their data)."""
    shared = manifest.contributed()
    own = {n.attrs["party"] for n in program.inputs if n.attrs["name"] not in shared}
    return own | set(manifest.contributors)


def check_client(client: str, allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    if "*" not in allowed and client not in allowed:
        raise PolicyError(
            f"client {client!r} may not submit tasks to this party (allowed: {sorted(allowed)})"
        )


def check(
    program: Program,
    manifest: Manifest,
    datasets: Iterable[DatasetConfig],
    circuit_verified: str | None,
) -> None:
    """Raise :class:`PolicyError` unless every dataset's policy allows this task.

    ``circuit_verified`` is the library circuit name whose local rebuild produced exactly this
    program (so a policy naming the circuit applies), or None."""
    short = program.hash[:12]
    who = recipients(program, manifest)
    inputs_from = contributors(program, manifest)
    for ds in datasets:
        pol = ds.policy
        by_hash = program.hash in pol.programs
        by_circuit = circuit_verified is not None and circuit_verified in pol.circuits
        if not (pol.any_program or by_hash or by_circuit):
            allowed = sorted(pol.programs)[:4] + [f"circuit:{c}" for c in sorted(pol.circuits)]
            if circuit_verified is not None:
                claim = f" (the task runs circuit {circuit_verified!r})"
            elif pol.circuits:
                claim = " (the task claims no library circuit)"
            else:
                claim = ""
            raise PolicyError(
                f"dataset {ds.name!r} is not allowed in program {short}…{claim}: policy "
                f"allows only {allowed or 'no programs'}"
            )
        denied = sorted(who - pol.recipients)
        if denied:
            raise PolicyError(
                f"dataset {ds.name!r} may not be revealed to {denied} (outputs of "
                f"program {short}… go to {sorted(who)}; policy allows only "
                f"{sorted(pol.recipients)})"
            )
        if len(inputs_from) < pol.min_parties:
            raise PolicyError(
                f"dataset {ds.name!r} needs at least {pol.min_parties} contributing "
                f"parties, program {short}… has {len(inputs_from)} {sorted(inputs_from)}"
            )
