"""The vocabulary of ``smc bench``: a workload, a built program, a declared cost, the error.

A :class:`Workload` builds one program for a party list and a size, with sample inputs (party 0
holds ``x``, party 1 holds ``y``); it names the node whose time, rounds and bytes are measured (an
operation) or ``None`` (a circuit: the whole program is measured), and declares its cost (rounds
and bytes per endpoint) and its working set (``mem_words`` per element per endpoint) so that
sizes that would not fit in memory are refused before any work starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Inputs = dict[str, dict[str, np.ndarray]]
Check = Callable[[Mapping[str, np.ndarray]], str | None]  # None = ok, else what was wrong


class BenchError(Exception):
    """Bad benchmark input (unknown workload, impossible party count, size too large, ...).

    Raised before any measurement starts; the message says what to change."""


@dataclass
class Built:
    """One program ready to run: its inputs, the measured node (None = whole program), and a
    check of the outputs party 0 receives against a plaintext reference."""

    program: Any  # smc.Program (kept Any so importing the registry stays light)
    inputs: Inputs
    node: int | None
    check: Check | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # for baselines: x, y
    cost: Callable[[str, int, int], Cost | None] | None = None  # a circuit's declared cost


@dataclass(frozen=True)
class Cost:
    rounds: int
    bytes_per_endpoint: tuple[int, ...]


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str  # "op" or "circuit"
    summary: str
    size_meaning: str
    default_sizes: tuple[int, ...]
    unit: str  # what ops/s counts
    ops: Callable[[int], int]
    elements: Callable[[int], int]
    mem_words: int
    build: Callable[[list[str], int], Built]
    cost: Callable[[str, int, int], Cost | None] | None = None
    min_size: int = 1
    unavailable: Callable[[], str | None] | None = None

    def reason_unavailable(self) -> str | None:
        return self.unavailable() if self.unavailable is not None else None
