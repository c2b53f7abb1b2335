"""Committed protobuf code matches the .proto files (regenerate: python -m smc.proto.generate)."""

from __future__ import annotations

from pathlib import Path

import pytest
from smc.proto import generate


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (dev extra) regenerates the code")
    fresh = {p.name: p.read_bytes() for p in generate.generate(tmp_path)}
    committed = {
        p.name: p.read_bytes()
        for p in generate.VERSION_DIR.iterdir()
        if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"))
    }
    assert sorted(fresh) == sorted(committed), "generated files differ from the committed set"
    stale = [name for name, data in fresh.items() if committed[name] != data]
    assert not stale, f"stale generated code {stale}: run `python -m smc.proto.generate`"


def test_generated_modules_import_under_the_installed_package() -> None:
    from smc.proto.v1 import hub_pb2, hub_pb2_grpc, peer_pb2, task_pb2

    assert hub_pb2.DESCRIPTOR.package == "smc.v1"
    assert hasattr(hub_pb2_grpc, "HubServicer")
    assert peer_pb2.PeerHello(task_id="t").task_id == "t"
    assert task_pb2.Program(sha256="x").sha256 == "x"
