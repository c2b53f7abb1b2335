"""What every circuit returns, how its inputs are bound, and a local runner.

A circuit builder returns a :class:`BuiltProgram`: a plain :class:`smc.Program` (the very object a
hub ships to party daemons) plus, for each party, the inputs it must bind (name, shape, dtype)
and, for each output, who receives it. Data is never part of a built program: it is bound
separately, as a mapping ``party -> {input name: array}``, by the party that owns it (in a
deployment, by its daemon from its own datasets; here, by :func:`run_local` for simulation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import smc
from smc.errors import InputError

from .cost import program_cost

Data = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class InputSpec:
    """One input a party binds: its name, shape and dtype (``"fixed"`` or ``"int"``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class BuiltProgram:
    """A circuit's program and its interface.

    ``inputs[party]`` lists what ``party`` binds (empty for parties that only compute);
    ``outputs[name]`` lists the recipients of output ``name`` (empty: every party)."""

    program: smc.Program
    circuit: str
    inputs: Mapping[str, tuple[InputSpec, ...]]
    outputs: Mapping[str, tuple[str, ...]]
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, program: smc.Program, circuit: str, **params: Any) -> BuiltProgram:
        inputs = {
            party: tuple(
                InputSpec(n.attrs["name"], n.shape, n.attrs["dtype"])
                for n in program.inputs_of(party)
            )
            for party in program.parties
        }
        outputs = {o.name: o.recipients for o in program.outputs}
        return cls(program, circuit, inputs, outputs, dict(params))

    @property
    def parties(self) -> tuple[str, ...]:
        return self.program.parties

    def input_names(self, party: str) -> list[str]:
        return [s.name for s in self.inputs[party]]

    def check(self, data: Data) -> None:
        """Refuse a binding that does not match the program, naming what is wrong."""
        unknown = sorted(set(data) - set(self.parties))
        if unknown:
            raise InputError(f"data given for {unknown}, who are not parties {list(self.parties)}")
        for party, specs in self.inputs.items():
            given = dict(data.get(party, {}))
            missing = [s.name for s in specs if s.name not in given]
            extra = sorted(set(given) - {s.name for s in specs})
            if missing or extra:
                raise InputError(
                    f"{self.circuit}: party {party!r} must bind exactly {self.input_names(party)}"
                    f"; missing {missing}, unexpected {extra}"
                )
            for s in specs:
                shape = np.shape(given[s.name])
                if tuple(shape) != s.shape:
                    raise InputError(
                        f"{self.circuit}: input {s.name!r} of party {party!r} has shape "
                        f"{tuple(shape)}, the program needs {s.shape}"
                    )

    def pick(self, tables: Data) -> dict[str, dict[str, Any]]:
        """The binding this program needs out of a party's wider tables (extra columns are
        left out; a missing one is refused by :meth:`check`)."""
        out = {
            party: {s.name: tables[party][s.name] for s in specs if s.name in tables.get(party, {})}
            for party, specs in self.inputs.items()
            if specs
        }
        self.check(out)
        return out

    def declared_cost(self, suite: str | None = None) -> dict[str, Any]:
        """Declared rounds and bytes (see :mod:`smc.circuits.cost`)."""
        return program_cost(self.program, suite)


@dataclass
class LocalResult:
    """Outputs of a simulated run (each output as its recipients see it) and its statistics."""

    outputs: dict[str, np.ndarray]
    result: smc.SimulationResult

    def __getitem__(self, name: str) -> np.ndarray:
        return self.outputs[name]

    @property
    def rounds(self) -> int:
        return self.result.rounds

    @property
    def seconds(self) -> float:
        return self.result.seconds

    @property
    def max_bytes_per_party(self) -> int:
        """Largest number of bytes one computing party sent (payload and frame headers)."""
        n = len(self.result.config.parties)
        return max(self.result.bytes_per_party[:n])


def run_local(
    built: BuiltProgram,
    data: Data,
    suite: str | None = None,
    netem: smc.NetemConfig | None = None,
) -> LocalResult:
    """Check ``data`` against the program's inputs, simulate every party in this process and
    collect the outputs (each from its first recipient; all recipients see the same value)."""
    built.check(data)
    res = smc.simulate(built.program, data, suite=suite, netem=netem)
    outputs: dict[str, np.ndarray] = {}
    for name, recipients in built.outputs.items():
        holder = recipients[0] if recipients else built.parties[0]
        outputs[name] = res[holder][name]
    return LocalResult(outputs, res)


def merge_data(*bindings: Data) -> dict[str, dict[str, Any]]:
    """Merge several ``party -> {name: array}`` bindings; refuses a name bound twice."""
    out: dict[str, dict[str, Any]] = {}
    for b in bindings:
        for party, arrays in b.items():
            mine = out.setdefault(party, {})
            for name, arr in arrays.items():
                if name in mine:
                    raise InputError(f"input {name!r} of party {party!r} is bound twice")
                mine[name] = arr
    return out
