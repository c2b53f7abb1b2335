"""``--mode deployed``: a real hub and party daemons on this machine, driven as an analyst.

Every benchmark input becomes an ``.npy`` dataset of the party that owns it, with a policy that
allows any program and reveals results only to the parties and the analyst. The deployment
(mTLS, ports chosen by the operating system, a dealer daemon for ``additive``) is started once
for all the points of one (suite, party count, latency), and each run is one task submitted
through the hub. The time is the analyst's submit-to-result time; rounds and bytes are what each
daemon reports when it finishes (the whole program, frame headers included).

Latency is emulated by the daemons' ``slow_rounds_s`` (a sleep before every frame sent), which
delays every round by about that much; a bandwidth cap is not available in this mode.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from smc.bench.workload import BenchError, Built

_DONE = re.compile(r"(\d+) rounds, (\d+) bytes sent")
ANALYST = "analyst"
DEALER = "dealer"


def unavailable() -> str | None:
    """Why deployed mode cannot run in this build, or None."""
    try:
        import smc.party.client
        import smc.party.launch  # noqa: F401
    except ImportError as exc:
        return (
            f"--mode deployed is not available in this build: the hub and party daemons "
            f"(smc.hub, smc.party) cannot be imported ({exc})"
        )
    return None


@dataclass
class TaskOutcome:
    outputs: dict[str, np.ndarray]
    seconds: float
    rounds: int
    bytes_per_endpoint: list[int]


class Deployment:
    """A hub, one daemon per party (and a dealer for additive), holding every point's inputs."""

    def __init__(self, suite: str, builds: list[Built], latency_s: float = 0.0) -> None:
        reason = unavailable()
        if reason:
            raise BenchError(reason)
        from smc.party.launch import LocalDeployment

        self.suite = suite
        self.names = list(builds[0].program.parties)
        self._tmp = tempfile.TemporaryDirectory(prefix="smc-bench-deploy-")
        self.root = Path(self._tmp.name)
        self._bindings: dict[int, dict[str, dict[str, str]]] = {}
        datasets: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in self.names}
        for k, built in enumerate(builds):
            self._bindings[id(built)] = self._write(k, built, datasets)
        self.dealer = DEALER if suite == "additive" else None
        extra = {n: {"slow_rounds_s": latency_s} for n in self.names} if latency_s else {}
        if extra and self.dealer:
            extra[self.dealer] = {"slow_rounds_s": latency_s}
        self.dep = LocalDeployment(self.root, datasets, dealer=self.dealer, party_extra=extra)
        try:
            self.dep.start()
            self.client = self.dep.client(ANALYST)
        except BaseException:
            self.dep.stop()
            self._tmp.cleanup()
            raise

    def _write(
        self, k: int, built: Built, datasets: dict[str, dict[str, dict[str, Any]]]
    ) -> dict[str, dict[str, str]]:
        if list(built.program.parties) != self.names:
            raise BenchError("all deployed points must use the same parties")
        policy = {"any_program": True, "recipients": [*self.names, ANALYST], "min_parties": 1}
        dtypes = {
            (n.attrs["party"], n.attrs["name"]): n.attrs.get("dtype", "fixed")
            for n in built.program.inputs
        }
        bindings: dict[str, dict[str, str]] = {}
        for party, arrays in built.inputs.items():
            for name, value in arrays.items():
                ds = f"b{k}_{name}"
                arr = np.asarray(value)
                path = self.root / f"{party}-{ds}.npy"
                np.save(path, arr.astype(np.int64 if arr.dtype.kind in "iub" else np.float64))
                datasets[party][ds] = {
                    "path": path.name,
                    "format": "npy",
                    "shape": list(arr.shape),
                    "dtype": dtypes.get((party, name), "fixed"),
                    "policy": policy,
                }
                bindings.setdefault(party, {})[name] = ds
        return bindings

    def run(self, built: Built, deadline_s: float = 600.0) -> TaskOutcome:
        res = self.client.run(
            built.program,
            suite=self.suite,
            dealer=self.dealer or "",
            bindings=self._bindings[id(built)],
            deadline_s=deadline_s,
        )
        per: dict[str, tuple[int, int]] = {}
        for ev in res.events:
            m = _DONE.search(ev.message) if ev.kind == "party_done" else None
            if m:
                per[ev.party] = (int(m.group(1)), int(m.group(2)))
        order = [*self.names, *([self.dealer] if self.dealer else [])]
        return TaskOutcome(
            outputs=res[self.names[0]],
            seconds=res.seconds,
            rounds=max((r for r, _ in per.values()), default=0),
            bytes_per_endpoint=[per.get(n, (0, 0))[1] for n in order],
        )

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            self.dep.stop()
            self._tmp.cleanup()
