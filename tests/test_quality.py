"""Static quality gates, run with the tools installed next to this interpreter.

* ``ruff check .`` (lint rules from pyproject.toml) and ``ruff format --check``;
* ``mypy smc`` (strict on ``smc.*`` per pyproject.toml);
* ``lint-imports``: the layering contracts (the engine imports no gRPC, protobuf, hub or party).

Where a gate fails today because of files outside this test module's ownership it is marked
``xfail(strict=False)`` with the state at the time of writing; it turns into a pass as soon as the
code is clean. The files written alongside this one are held to every gate strictly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OWN = [
    f"tests/{name}.py"
    for name in (
        "test_encoding",
        "test_prg",
        "test_ir",
        "test_transport",
        "test_costs",
        "test_security",
        "test_scale",
        "test_quality",
        "test_runtime_errors",
    )
]


def tool(name: str, *args: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", name, *args] if module else [str(BIN / name), *args]
    if not module and not (BIN / name).exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}; install the dev extras")
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, check=False
    )


def assert_clean(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"$ {' '.join(proc.args)}\n{proc.stdout}\n{proc.stderr}"


def test_own_files_pass_ruff_check_and_format() -> None:
    existing = [f for f in OWN if (ROOT / f).exists()]
    assert len(existing) == len(OWN)
    assert_clean(tool("ruff", "check", *existing))
    assert_clean(tool("ruff", "format", "--check", *existing))


@pytest.mark.xfail(
    strict=False,
    reason="at the time of writing ruff reports E501, PLR0917, I001, SIM105, RUF005 ... in smc/ "
    "and in tests/{conftest,helpers,test_ops}.py, files owned by others",
)
def test_ruff_check() -> None:
    assert_clean(tool("ruff", "check", "."))


@pytest.mark.xfail(
    strict=False,
    reason="at the time of writing several files in smc/ and tests/ (not owned here) are not "
    "ruff-formatted",
)
def test_ruff_format() -> None:
    dirs = [d for d in ("smc", "tests", "bench") if (ROOT / d).is_dir()]
    assert_clean(tool("ruff", "format", "--check", *dirs))


@pytest.mark.xfail(
    strict=False,
    reason="at the time of writing mypy --strict reports errors in smc/prg.py, smc/api.py, "
    "smc/executor.py, smc/kernels/trunc.py and smc/protocols/* (Buffer vs ndarray at the "
    "transport seam, Share vs U64 in Executor._local, np.uint64 scalars where U64 is declared)",
)
def test_mypy_strict_on_engine() -> None:
    assert_clean(tool("mypy", "smc", module=True))


@pytest.mark.xfail(
    strict=False,
    reason="at the time of writing the contracts name smc.hub / smc.party / smc.proto, which are "
    "not importable packages, and import-linter refuses to run ('Module smc.hub does not exist')",
)
def test_import_contracts() -> None:
    assert_clean(tool("lint-imports"))


def test_engine_does_not_import_network_code_at_runtime() -> None:
    """The layering contract, checked directly: importing the engine pulls in no gRPC/protobuf."""
    code = (
        "import sys, smc, smc.executor, smc.runtime, smc.ir, smc.api;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'google') "
        "or m in ('smc.hub', 'smc.party', 'smc.proto') "
        "or m.startswith(('smc.hub.', 'smc.party.', 'smc.proto.')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert_clean(proc)
