"""Local simulation: every party (and the dealer) as a thread over an in-memory transport.

``simulate`` runs the very same :class:`~smc.ir.Program` and the very same executor that party
daemons run, only with in-process links and keys dealt in-process. Use it to develop and test a
computation on toy data before submitting it to real parties.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from smc.config import FixedPointConfig, SessionConfig, default_suite
from smc.errors import InputError, SmcError
from smc.executor import Executor, PartyResult, RunStats
from smc.ir import Program
from smc.protocols.keys import deal_keys
from smc.transport import InMemoryNetwork, NetemConfig


@dataclass
class SimulationResult:
    """Outputs per party (each party sees only the outputs addressed to it) and traffic stats.

    ``stats`` is indexed by endpoint: parties in program order, then the dealer if any.
    """

    outputs: dict[str, dict[str, np.ndarray]]
    stats: list[RunStats]
    config: SessionConfig

    def __getitem__(self, party: str) -> dict[str, np.ndarray]:
        return self.outputs[party]

    @property
    def rounds(self) -> int:
        return max(s.rounds for s in self.stats)

    @property
    def bytes_per_party(self) -> list[int]:
        return [s.bytes_sent for s in self.stats]

    @property
    def seconds(self) -> float:
        return max(s.seconds for s in self.stats)


def simulate(
    program: Program,
    inputs: Mapping[str, Mapping[str, Any]],
    suite: str | None = None,
    netem: NetemConfig | None = None,
    timeout: float = 300.0,
    record_view: bool = False,
) -> SimulationResult:
    """Run ``program`` with every party in this process; ``inputs[party][name]`` are plaintexts.

    Refuses inputs for unknown parties (:class:`~smc.errors.InputError`); any error in one party
    aborts the others and is re-raised here.
    """
    unknown = sorted(set(inputs) - set(program.parties))
    if unknown:
        raise InputError(f"inputs given for {unknown}, which are not parties of the program")
    config = SessionConfig(
        suite=suite or default_suite(len(program.parties)),
        parties=program.parties,
        fixed=FixedPointConfig(program.frac_bits),
        program_hash=program.hash,
        session_id=uuid.uuid4().hex,
    )
    endpoints = config.n + (1 if config.has_dealer else 0)
    net = InMemoryNetwork(endpoints, netem)
    keys = deal_keys(endpoints, config.session_id)
    results: list[PartyResult | None] = [None] * endpoints
    errors: list[BaseException | None] = [None] * endpoints

    def work(me: int) -> None:
        try:
            party_inputs = inputs.get(program.parties[me], {}) if me < config.n else {}
            ex = Executor(program, config, me, net.endpoint(me), keys[me], timeout, record_view)
            results[me] = ex.run(party_inputs)
        except BaseException as exc:
            errors[me] = exc
            net.close()

    threads = [
        threading.Thread(target=work, args=(me,), name=f"smc-endpoint-{me}")
        for me in range(endpoints)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = _root_cause(errors)
    if first is not None:
        raise first
    done = [r for r in results if r is not None]
    outputs = {program.parties[i]: done[i].outputs for i in range(config.n)}
    return SimulationResult(outputs, [r.stats for r in done], config)


def _root_cause(errors: list[BaseException | None]) -> BaseException | None:
    """The error that caused the abort, not the 'network closed' errors it triggered elsewhere."""
    real = [e for e in errors if e is not None]
    for e in real:
        if not (isinstance(e, SmcError) and "network closed" in str(e)):
            return e
    return real[0] if real else None
