"""Deciding on an offer: everything a party checks before it lets a task touch its data.

:func:`check_offer` refuses (raising with a reason the submitter sees) replays, late tasks,
clients the party does not serve, circuit claims that do not rebuild to the program, inputs that
do not bind to a dataset exactly (name, columns, dtype, shape), and anything a dataset's policy
forbids. It runs after :func:`smc.party.wire.task_from_offer` has authenticated the offer, and it
reads the datasets once, so the task runs on exactly the data that was checked.

Three kinds of members: computing parties (bind their own inputs; receive the shares of
input-only contributors), the dealer (no data), and contributors (share their data, compute
nothing; see :mod:`smc.party.contrib`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from smc.hub.manifest import Binding
from smc.party import circuits, contrib, datasets, policy
from smc.party.config import PartyConfig
from smc.party.wire import TaskSpec

from smc.ir import Node


class Refusal(Exception):
    """This party will not run the task; the message goes to the submitter and the audit log."""


@dataclass
class Prepared:
    inputs: dict[str, np.ndarray] = field(default_factory=dict)  # engine inputs from own data
    used: dict[str, str] = field(default_factory=dict)  # input or contribution -> dataset
    expect: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)  # from contributors
    outgoing: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # to computing parties


def check_offer(
    spec: TaskSpec,
    me: str,
    config: PartyConfig,
    role: str,
    seen: Callable[[str], bool],
    deadline_left: float,
) -> Prepared:
    man = spec.manifest
    if seen(spec.task_id):
        raise Refusal(f"task id {spec.task_id} was already used (replayed offer)")
    if deadline_left <= 0:
        raise Refusal("the task's deadline has passed")
    policy.check_client(man.client, config.clients)
    verified = None
    if man.circuit:
        verified = circuits.verify(man.circuit["name"], man.circuit["params"], spec.program)
    prep = Prepared()
    if me == man.dealer:
        if role != "dealer":
            raise Refusal(f"{me!r} is not a dealer")
        return prep
    if me in man.contributions:
        _prepare_contribution(spec, me, config, prep)
    else:
        _bind_inputs(spec, me, config, prep)
    policy.check(
        spec.program, man, [config.datasets[d] for d in sorted(set(prep.used.values()))], verified
    )
    return prep


def _bind_inputs(spec: TaskSpec, me: str, config: PartyConfig, prep: Prepared) -> None:
    man = spec.manifest
    explicit = man.bindings.get(me, {})
    mine = spec.program.inputs_of(me)
    unknown = sorted(set(explicit) - {n.attrs["name"] for n in mine})
    if unknown:
        raise Refusal(f"bindings name inputs {unknown} that the program does not give {me!r}")
    contributed = man.contributed()
    for node in mine:
        name = node.attrs["name"]
        who = contributed.get(name)
        if who is not None:
            if node.dtype != "int":
                raise Refusal(
                    f"input {name!r} carries a share from {who!r} and must be an int input"
                )
            prep.expect.setdefault(who, {})[name] = node.shape
            continue
        bound = datasets.bind(node, explicit.get(name), config.datasets)
        prep.inputs[bound.input] = bound.value
        prep.used[bound.input] = bound.binding.dataset
    for who, items in man.contributions.items():
        for name in items:
            for part in (f"{name}_hi", f"{name}_lo"):
                if part not in prep.expect.get(who, {}):
                    raise Refusal(
                        f"the program gives {me!r} no input {part!r} for the share "
                        f"contributed by {who!r}"
                    )


def _prepare_contribution(spec: TaskSpec, me: str, config: PartyConfig, prep: Prepared) -> None:
    man, program = spec.manifest, spec.program
    if program.inputs_of(me):
        raise Refusal(f"{me!r} contributes shares; the program cannot also read inputs of it")
    for name, c in man.contributions[me].items():
        shapes: set[tuple[int, ...]] = set()
        for party in man.parties:
            nodes = [
                n
                for n in program.inputs_of(party)
                if n.attrs["name"] in (f"{name}_hi", f"{name}_lo")
            ]
            if len(nodes) != 2:
                raise Refusal(
                    f"the program gives {party!r} no inputs {name}_hi/{name}_lo for the "
                    f"contribution {name!r}"
                )
            shapes.update(n.shape for n in nodes)
        if len(shapes) != 1:
            raise Refusal(f"the program's inputs for contribution {name!r} disagree on the shape")
        (shape,) = shapes
        probe = Node(-1, "input", (), shape, c.dtype, True, {"name": name})
        bound = datasets.bind(probe, Binding(c.dataset, c.columns), config.datasets)
        prep.used[name] = c.dataset
        for party, (hi, lo) in contrib.split(
            bound.value, c.dtype, program.frac_bits, man.parties
        ).items():
            prep.outgoing.setdefault(party, {})[f"{name}_hi"] = hi
            prep.outgoing[party][f"{name}_lo"] = lo
