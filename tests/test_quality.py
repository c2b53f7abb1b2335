"""Static quality gates, run with the tools installed next to this interpreter.

* ``ruff check .`` and ``ruff format --check`` (rules in pyproject.toml);
* ``mypy smc`` (strict on the engine ``smc.*``) and ``mypy hub party circuits`` (default rules);
* ``lint-imports``: the layering contracts in pyproject.toml.

import-linter builds its graph from the directory of the root package, while ``smc.hub``,
``smc.party``, ``smc.proto``, ``smc.circuits`` and ``smc.bench`` are installed from their own
top-level folders. The contract check therefore runs on a copy of the sources laid out as they
are installed (``smc/hub/...``), which is exactly the import graph users get.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MAPPED = {name: name for name in ("hub", "party", "proto", "circuits", "bench")}


def tool(
    name: str, *args: str, module: bool = False, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", name, *args] if module else [str(BIN / name), *args]
    if not module and not (BIN / name).exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}; install the dev extras")
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=full_env, check=False
    )


def assert_clean(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"$ {' '.join(proc.args)}\n{proc.stdout}\n{proc.stderr}"


def test_ruff_check() -> None:
    assert_clean(tool("ruff", "check", "."))


def test_ruff_format() -> None:
    assert_clean(tool("ruff", "format", "--check", "."))


def test_mypy_strict_on_engine() -> None:
    assert_clean(tool("mypy", "smc", module=True))


def test_mypy_on_daemons_and_circuits() -> None:
    assert_clean(tool("mypy", "hub", "party", "circuits", module=True))


def test_import_contracts(tmp_path: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "smc", tmp_path / "smc", ignore=ignore)
    for sub, folder in MAPPED.items():
        shutil.copytree(ROOT / folder, tmp_path / "smc" / sub, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    proc = tool("lint-imports", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert_clean(proc)
    assert "broken" not in proc.stdout.lower() or "0 broken" in proc.stdout.lower()


def test_engine_does_not_import_network_code_at_runtime() -> None:
    """The layering contract, checked at run time: importing the engine pulls in no gRPC."""
    code = (
        "import sys, smc, numpy as np\n"
        "p = smc.ProgramBuilder(['a', 'b', 'c']); x = p.input('a', 'x', shape=(2,))\n"
        "p.output('y', x * x); smc.simulate(p.build(), {'a': {'x': np.ones(2)}})\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('grpc', 'google')"
        " or m.split('.')[:2] in (['smc', 'hub'], ['smc', 'party'], ['smc', 'proto'])]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert_clean(proc)


def test_hub_runs_without_numpy() -> None:
    """The hub never touches share arithmetic: importing its server loads no numpy at all."""
    code = "import sys, smc.hub.server\nassert 'numpy' not in sys.modules, 'hub imported numpy'\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert_clean(proc)
