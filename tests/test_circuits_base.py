"""The circuits' common interface: built programs, input checks, client shares, the layering.

Every builder returns a plain smc.Program with the inputs each party binds; data is bound
separately and checked against the program before anything runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from smc.circuits import (
    BuiltProgram,
    InputSpec,
    StatsSpec,
    build_stats,
    client_shares,
    merge_data,
    run_local,
)
from smc.circuits.blocks import client_input, divide_by_count, divide_public, secret_const

import smc
from smc.errors import InputError

CIRCUITS = Path(__file__).resolve().parent.parent / "circuits"


def test_circuits_import_only_the_engine_numpy_and_the_standard_library() -> None:
    allowed = {"smc", "numpy", "__future__", "collections", "dataclasses", "typing"}
    allowed |= {"math", "operator", "os", "itertools"}
    for path in CIRCUITS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in allowed, f"{path.name} imports {name}"
                for banned in ("smc.hub", "smc.party", "smc.proto", "smc.bench"):
                    assert name != banned and not name.startswith(banned + "."), name


def test_built_program_lists_inputs_and_outputs() -> None:
    built = build_stats({"a": 3, "b": 0, "c": 2}, StatsSpec(stats=("count", "mean")), to="c")
    assert isinstance(built, BuiltProgram)
    assert isinstance(built.program, smc.Program)
    assert built.parties == ("a", "b", "c")
    assert built.inputs["a"] == (InputSpec("value", (3,), "fixed"),)
    assert built.inputs["b"] == ()  # no rows: computes only
    assert built.input_names("c") == ["value"]
    assert built.outputs == {"count": ("c",), "mean": ("c",), "valid": ("c",)}
    # the program survives its canonical encoding, as it would travel through a hub
    again = smc.Program.from_bytes(built.program.to_bytes())
    assert again.hash == built.program.hash


def test_bindings_are_checked_before_running() -> None:
    built = build_stats({"a": 3, "b": 2, "c": 2}, StatsSpec(stats=("sum",)))
    good = {p: {"value": np.ones(n)} for p, n in (("a", 3), ("b", 2), ("c", 2))}
    built.check(good)
    with pytest.raises(InputError, match="missing \\['value'\\]"):
        built.check({"a": {"value": np.ones(3)}, "b": {}, "c": {"value": np.ones(2)}})
    with pytest.raises(InputError, match="unexpected \\['age'\\]"):
        built.check({**good, "a": {"value": np.ones(3), "age": np.ones(3)}})
    with pytest.raises(InputError, match="shape \\(4,\\)"):
        built.check({**good, "a": {"value": np.ones(4)}})
    with pytest.raises(InputError, match="not parties"):
        built.check({**good, "mallory": {}})
    wide = {p: {**d, "age": np.zeros(2)} for p, d in good.items()}
    assert built.pick(wide) == good
    assert float(run_local(built, good)["sum"]) == 7.0


def test_merge_data_refuses_a_name_bound_twice() -> None:
    merged = merge_data({"a": {"x": 1}}, {"a": {"y": 2}, "b": {"x": 3}})
    assert merged == {"a": {"x": 1, "y": 2}, "b": {"x": 3}}
    with pytest.raises(InputError):
        merge_data({"a": {"x": 1}}, {"a": {"x": 2}})


@pytest.mark.parametrize("dtype", ["int", "fixed"])
def test_client_shares_hide_values_and_add_up(dtype: str) -> None:
    rng = np.random.default_rng(5)
    values = (
        rng.integers(-(2**61), 2**61, 6)
        if dtype == "int"
        else np.round(rng.uniform(-1e4, 1e4, 6) * 64) / 64
    )
    parties = ["a", "b", "c"]
    shares = client_shares(values, "v", parties, dtype)
    for p in parties:
        for half in ("v_hi", "v_lo"):
            assert shares[p][half].min() >= 0 and shares[p][half].max() < 2**32
    b = smc.ProgramBuilder(parties)
    b.output("v", client_input(b, "v", (6,), dtype), to="a")
    got = smc.simulate(b.build(), shares)["a"]["v"]
    np.testing.assert_array_equal(got, values)


def test_division_blocks() -> None:
    p = smc.ProgramBuilder(["a", "b", "c"])
    x = p.input("a", "x", 4)
    c = p.input("b", "c", 4, "int")
    p.output("q", divide_by_count(x, c, 2**20, 1000.0), to="a")
    p.output("big", divide_public(x.sum() * 1000, 10**6), to="a")
    p.output("k", secret_const(x, np.arange(3.0)) + 1, to="a")
    xs = np.array([100.0, -3.5, 7.25, 0.0])
    cs = np.array([1, 3, 70_000, 5])
    res = smc.simulate(p.build(), {"a": {"x": xs}, "b": {"c": cs}})["a"]
    np.testing.assert_allclose(res["q"], xs / cs, rtol=1e-3, atol=2e-4)
    assert abs(res["big"] - xs.sum() / 1000) <= 2.0**-15  # two truncations
    np.testing.assert_array_equal(res["k"], [1.0, 2.0, 3.0])
