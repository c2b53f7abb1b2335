"""Layering, checked from the source (every import statement, including function-local ones).

import-linter's graph only covers the directory of the ``smc`` package, while the hub, party and
proto packages are installed from their own directories (``smc.hub`` -> ``hub/``), so these
contracts are also checked here directly.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = [
    "smc/ring.py",
    "smc/encoding.py",
    "smc/prg.py",
    "smc/config.py",
    "smc/transport.py",
    "smc/ir.py",
    "smc/api.py",
    "smc/executor.py",
    "smc/runtime.py",
    "smc/protocols",
    "smc/kernels",
]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def files(*paths: str) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = ROOT / p
        out.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else [])
    return out


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for f in paths:
        for mod in imports(f):
            if any(mod == x or mod.startswith(x + ".") for x in forbidden):
                bad.append(f"{f.relative_to(ROOT)} imports {mod}")
    return bad


def test_hub_imports_no_numpy_and_no_share_arithmetic() -> None:
    hub = files("hub")
    assert hub
    assert not offending(
        hub,
        (
            "numpy",
            "numba",
            "smc.protocols",
            "smc.kernels",
            "smc.executor",
            "smc.api",
            "smc.ir",
            "smc.party",
        ),
    )


def test_engine_imports_no_network_or_deployment_code() -> None:
    engine = files(*ENGINE)
    assert engine
    assert not offending(engine, ("grpc", "google.protobuf", "smc.hub", "smc.party", "smc.proto"))


@pytest.mark.parametrize(
    "module", ["smc.hub.core", "smc.hub.server", "smc.hub.relay", "smc.hub.store"]
)
def test_hub_modules_import_without_engine_arithmetic(module: str) -> None:
    import importlib

    importlib.import_module(module)
