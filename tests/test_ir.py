"""The program IR: canonical encoding, hashing, and refusal of malformed programs.

A party daemon receives programs as bytes from the network; :meth:`Program.from_bytes` is its only
door. Every malformed program must be refused there with a ProgramError naming what is wrong,
never accepted and never crashed on with some other exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import smc
from smc.errors import ProgramError
from smc.ir import MAX_ELEMENTS, Program, canonical_json

PARTIES = ["a", "b", "c"]


def traced(
    const: float = 0.3, shape: tuple[int, int] = (2, 3), to: str = "c", frac_bits: int = 16
) -> Program:
    """A program touching most ops: inputs, matmul, public fraction, int constant, sum, getitem."""
    p = smc.ProgramBuilder(PARTIES, frac_bits=frac_bits)
    x = p.input("a", "x", shape=shape)
    y = p.input("b", "y", shape=(shape[1], 4))
    z = (x @ y) * const + 1
    w = smc.concatenate([z.sum(0), x[0, ::-1].T, smc.stack([x[1, 0], x[0, 0]])])
    p.output("o", w, to=to)
    p.output("o2", (x * x).mean(), to=["a", "b"])
    p.output("o3", -(p.input("c", "k", shape=3, dtype="int") * 3))
    return p.build()


def mutate(program: Program, fn: Callable[[dict[str, Any]], Any]) -> bytes:
    obj = json.loads(program.to_bytes())
    fn(obj)
    return canonical_json(obj)


def refused(blob: bytes, match: str | None, **kw: Any) -> ProgramError:
    with pytest.raises(ProgramError, match=match) as info:
        Program.from_bytes(blob, **kw)
    return info.value


def node(obj: dict[str, Any], op: str, k: int = 0) -> dict[str, Any]:
    found = [n for n in obj["nodes"] if n["op"] == op]
    return found[k]  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------ canonical form


def test_tracing_twice_gives_identical_bytes_and_hash() -> None:
    a, b = traced(), traced()
    assert a.to_bytes() == b.to_bytes()
    assert a.hash == b.hash
    assert a == b
    assert len(a.hash) == 64
    blob = a.to_bytes()
    blob.decode("ascii")
    assert b" " not in blob and b"\n" not in blob


def test_round_trip_through_bytes() -> None:
    p = traced()
    q = Program.from_bytes(p.to_bytes())
    assert q == p
    assert q.hash == p.hash
    assert q.to_bytes() == p.to_bytes()


@pytest.mark.parametrize(
    "variant",
    [
        {"const": 0.31},
        {"shape": (2, 2)},
        {"shape": (3, 3)},
        {"to": "b"},
        {"frac_bits": 12},
    ],
    ids=["constant", "shape", "shape2", "recipient", "frac_bits"],
)
def test_hash_changes_with_program_content(variant: dict[str, Any]) -> None:
    assert traced(**variant).hash != traced().hash
    assert traced(**variant).to_bytes() != traced().to_bytes()


def test_hash_changes_with_party_and_output_order() -> None:
    base = traced()
    other_parties = Program(("a", "c", "b"), base.frac_bits, base.nodes, base.outputs)
    swapped = Program(base.parties, base.frac_bits, base.nodes, base.outputs[::-1])
    assert len({base.hash, other_parties.hash, swapped.hash}) == 3


unary = st.sampled_from(["neg", "sum0", "T", "scale", "half", "slice"])
binary = st.sampled_from(["add", "sub", "mul", "matmul"])


@given(
    st.lists(st.tuples(unary, binary, st.integers(0, 10)), min_size=1, max_size=6),
    st.integers(1, 4),
    st.integers(4, 20),
)
def test_random_programs_round_trip(steps: list[tuple[str, str, int]], side: int, fb: int) -> None:
    p = smc.ProgramBuilder(PARTIES, frac_bits=fb)
    pool = [p.input(PARTIES[k], f"in{k}", shape=(side, side)) for k in range(3)]
    for un, bi, pick in steps:
        a = pool[pick % len(pool)]
        u = {
            "neg": lambda v: -v,
            "sum0": lambda v: v.sum(0, keepdims=True) + v,
            "T": lambda v: v.T,
            "scale": lambda v: v * 3,
            "half": lambda v: v / 2,
            "slice": lambda v: v[::-1],
        }[un](a)
        b = pool[(pick + 1) % len(pool)]
        v = {"add": u + b, "sub": u - b, "mul": u * b, "matmul": u @ b}[bi]
        pool.append(v)
    p.output("out", pool[-1], to="a")
    prog = p.build()
    again = Program.from_bytes(prog.to_bytes())
    assert again == prog
    assert again.hash == prog.hash


# ------------------------------------------------------------------------------ malformed programs


def test_refuses_argument_referencing_later_node() -> None:
    p = traced()
    blob = mutate(p, lambda o: node(o, "matmul")["args"].__setitem__(1, len(o["nodes"]) - 1))
    refused(blob, r"node 2( \(\w+\))?: arguments must reference earlier nodes")
    refused(
        mutate(p, lambda o: node(o, "matmul")["args"].__setitem__(0, 2)),
        r"node 2( \(\w+\))?: arguments",
    )
    refused(
        mutate(p, lambda o: node(o, "matmul")["args"].__setitem__(0, -1)),
        r"node 2( \(\w+\))?: arguments",
    )


def test_refuses_wrong_arity() -> None:
    refused(
        mutate(traced(), lambda o: node(o, "matmul")["args"].pop()),
        r"node 2 \(matmul\): matmul takes 2 arguments, got 1",
    )
    refused(
        mutate(traced(), lambda o: node(o, "neg")["args"].append(0)),
        r"node \d+( \(\w+\))?: neg takes 1 arguments, got 2",
    )


def test_refuses_declared_shape_inconsistent_with_inference() -> None:
    refused(
        mutate(traced(), lambda o: node(o, "matmul").__setitem__("shape", [2, 5])),
        r"node 2 \(matmul\): declared \(2, 5\).*give \(2, 4\)",
    )
    refused(
        mutate(traced(), lambda o: node(o, "matmul").__setitem__("dtype", "int")),
        r"node 2 \(matmul\): declared",
    )
    refused(
        mutate(traced(), lambda o: node(o, "matmul").__setitem__("secret", False)),
        r"node 2 \(matmul\): declared",
    )


def test_refuses_matmul_inner_dimension_mismatch() -> None:
    def fn(o: dict[str, Any]) -> None:
        y = o["nodes"][1]
        y["attrs"]["shape"] = [5, 4]
        y["shape"] = [5, 4]

    refused(
        mutate(traced(), fn),
        r"node 2 \(matmul\): matmul inner dimensions differ: \(2, 3\) @ \(5, 4\)",
    )


def test_refuses_unknown_op_and_bad_dtypes() -> None:
    refused(
        mutate(traced(), lambda o: node(o, "neg").__setitem__("op", "exp")),
        r"node \d+( \(\w+\))?: unknown op 'exp'",
    )
    refused(
        mutate(traced(), lambda o: o["nodes"][0]["attrs"].__setitem__("dtype", "float")),
        r"node 0( \(\w+\))?: input dtype must be one of",
    )
    refused(
        mutate(traced(), lambda o: node(o, "const")["attrs"].__setitem__("dtype", "f64")),
        r"node \d+( \(\w+\))?: const needs dtype",
    )
    refused(
        mutate(traced(), lambda o: o["nodes"][0].__setitem__("dtype", "float")),
        r"node 0 \(input\): declared",
    )


def test_refuses_unknown_input_owner_and_recipient() -> None:
    refused(
        mutate(traced(), lambda o: o["nodes"][1]["attrs"].__setitem__("party", "mallory")),
        r"node 1( \(\w+\))?: input owner 'mallory' is not a party",
    )
    refused(
        mutate(traced(), lambda o: o["outputs"][0]["recipients"].append("mallory")),
        r"output 0: recipient 'mallory' is not a party",
    )
    refused(
        mutate(traced(), lambda o: o["outputs"][0].__setitem__("node", 999)),
        r"output 0: node 999 does not exist",
    )


def test_refuses_duplicate_output_names() -> None:
    refused(
        mutate(traced(), lambda o: o["outputs"][1].__setitem__("name", "o")),
        r"output 1: duplicate output name 'o'",
    )


def test_refuses_oversized_blob() -> None:
    blob = traced().to_bytes()
    assert Program.from_bytes(blob, max_bytes=len(blob)) == traced()
    refused(blob, rf"{len(blob)} bytes, above the {len(blob) - 1} limit", max_bytes=len(blob) - 1)


@pytest.mark.parametrize(
    "blob",
    [b"not json", b"", b"{", '{"parties":["\u00e9"]}'.encode(), b"\xff\xfe{}", b"\x00"],
)
def test_refuses_non_json_and_non_ascii(blob: bytes) -> None:
    refused(blob, "not canonical JSON")


def test_refuses_non_canonical_json() -> None:
    obj = json.loads(traced().to_bytes())
    refused(json.dumps(obj, sort_keys=True, indent=1).encode(), "not canonical")
    refused(json.dumps(obj, sort_keys=True).encode(), "not canonical")  # ", " and ": "
    spaced = canonical_json(obj).replace(b'{"frac', b'{ "frac', 1)
    refused(spaced, "not canonical")
    unsorted = json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":")).encode()
    refused(unsorted, "not canonical")
    refused(traced().to_bytes() + b"\n", "not canonical")


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ([-1, 3], "non-negative integers"),
        ([2, "3"], "non-negative integers"),
        ([2, True], "non-negative"),
        ([2.0, 3], "non-negative integers"),
        ([1 << 20, 1 << 20], f"exceeds {MAX_ELEMENTS} elements"),
        ("23", "non-negative integers"),
    ],
)
def test_refuses_bad_input_shapes(shape: Any, match: str) -> None:
    def fn(o: dict[str, Any]) -> None:
        o["nodes"][0]["attrs"]["shape"] = shape

    refused(mutate(traced(), fn), rf"node 0( \(\w+\))?: .*{match}")


def test_refuses_bad_structure() -> None:
    refused(b"[]", "must be a JSON object")
    refused(mutate(traced(), lambda o: o.__setitem__("version", 2)), "unsupported IR version 2")
    refused(mutate(traced(), lambda o: o.pop("outputs")), "missing field 'outputs'")
    refused(mutate(traced(), lambda o: o.__setitem__("parties", [])), "parties must be non-empty")
    refused(
        mutate(traced(), lambda o: o["nodes"][1].__setitem__("id", 7)),
        r"node 1( \(\w+\))?: ids must be 0..N-1",
    )
    refused(
        mutate(traced(), lambda o: o["nodes"][1].__setitem__("secret", 1)),
        r"node 1( \(\w+\))?: field 'secret' has the wrong type",
    )


def test_refuses_const_data_of_wrong_length() -> None:
    def short(o: dict[str, Any]) -> None:
        node(o, "const")["attrs"]["data"] = "00" * 8 * 2  # two values, shape () needs one

    with pytest.raises(ProgramError, match="constant holds 2 values"):
        Program.from_bytes(mutate(traced(), short))
    refused(
        mutate(traced(), lambda o: node(o, "const")["attrs"].__setitem__("data", "zz")),
        r"node \d+ \(const\)",
    )
    refused(
        mutate(traced(), lambda o: node(o, "const")["attrs"].__setitem__("data", "0011")),
        r"node \d+ \(const\)",
    )


def test_const_data_length_error_names_the_node() -> None:
    def short(o: dict[str, Any]) -> None:
        node(o, "const")["attrs"]["data"] = "00" * 8 * 2

    refused(mutate(traced(), short), r"node \d+")


@pytest.mark.parametrize("where", ["args", "shape"])
def test_refuses_bools_and_floats_where_ints_belong(where: str) -> None:
    p = smc.ProgramBuilder(PARTIES)
    x = p.input("a", "x", shape=(2,))
    y = p.input("b", "y", shape=(2,))
    p.output("o", x * y)
    prog = p.build()
    if where == "args":
        blob = mutate(prog, lambda o: o["nodes"][2].__setitem__("args", [0, True]))
    else:
        blob = mutate(prog, lambda o: o["nodes"][2].__setitem__("shape", [2.0]))
    refused(blob, "node 2")


@pytest.mark.parametrize("kind", ["nan", "deep"])
def test_refuses_nan_and_deep_nesting_with_program_error(kind: str) -> None:
    if kind == "nan":
        obj = json.loads(traced().to_bytes())
        obj["nodes"][2]["attrs"]["note"] = float("nan")
        blob = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    else:
        blob = b"[" * 100_000 + b"]" * 100_000
    refused(blob, None)


@pytest.mark.parametrize("kind", ["attr", "frac_bits"])
def test_refuses_unknown_attributes_and_bad_frac_bits(kind: str) -> None:
    if kind == "attr":
        blob = mutate(traced(), lambda o: node(o, "matmul")["attrs"].__setitem__("comment", 1))
    else:
        blob = mutate(traced(), lambda o: o.__setitem__("frac_bits", 99))
    refused(blob, None)


# ------------------------------------------------------------------------------ API-level errors


def test_api_refuses_mixing_programs() -> None:
    p, q = smc.ProgramBuilder(PARTIES), smc.ProgramBuilder(PARTIES)
    x, y = p.input("a", "x", shape=2), q.input("a", "x", shape=2)
    with pytest.raises(ProgramError, match="two different programs"):
        _ = x + y
    with pytest.raises(ProgramError, match="two different programs"):
        _ = smc.matmul(x, y)
    with pytest.raises(ProgramError, match="must be an array of this program"):
        p.output("o", y)


def test_api_refuses_unknown_parties_and_duplicates() -> None:
    p = smc.ProgramBuilder(PARTIES)
    x = p.input("a", "x", shape=2)
    with pytest.raises(ProgramError, match="recipient 'zed'"):
        p.output("o", x, to="zed")
    with pytest.raises(ProgramError, match="recipient 'zed'"):
        p.output("o", x, to=["a", "zed"])
    with pytest.raises(ProgramError, match="input owner 'zed'"):
        p.input("zed", "y")
    with pytest.raises(ProgramError, match="already has an input named 'x'"):
        p.input("a", "x")
    p.input("b", "x")  # the same name for another party is fine
    p.output("o", x)
    with pytest.raises(ProgramError, match="already exists"):
        p.output("o", x + 1)


def test_api_refuses_program_without_outputs() -> None:
    p = smc.ProgramBuilder(PARTIES)
    p.input("a", "x", shape=2)
    with pytest.raises(ProgramError, match="no outputs"):
        p.build()
    with pytest.raises(ProgramError, match="at least one party"):
        smc.ProgramBuilder([])


def test_api_refuses_division_by_public_zero() -> None:
    p = smc.ProgramBuilder(PARTIES)
    x = p.input("a", "x", shape=3)
    with pytest.raises(ProgramError, match="public zero"):
        _ = x / 0
    with pytest.raises(ProgramError, match="public zero"):
        _ = x / 0.0
    with pytest.raises(ProgramError, match="public zero"):
        _ = x / np.array([1.0, 0.0, 2.0])
    n_nodes = len(p._nodes)
    _ = x / np.array([1.0, -3.0, 2.0])  # non-zero divisors are fine
    assert len(p._nodes) > n_nodes


def test_api_refuses_secret_and_array_indices() -> None:
    p = smc.ProgramBuilder(PARTIES)
    x = p.input("a", "x", shape=4)
    i = p.input("b", "i", shape=(), dtype="int")
    for index in (i, (i,), np.array([0, 1]), [0, 1], True, 1.5):
        with pytest.raises(ProgramError, match="index"):
            _ = x[index]


def test_api_shape_errors_are_program_errors() -> None:
    p = smc.ProgramBuilder(PARTIES)
    x = p.input("a", "x", shape=(2, 3))
    with pytest.raises(ProgramError, match="inner dimensions"):
        _ = x @ x
    with pytest.raises(ProgramError):
        _ = x + p.input("b", "y", shape=(4,))
    with pytest.raises(ProgramError, match="reshape"):
        x.reshape(4, 2)
    with pytest.raises(ProgramError):
        _ = x[5]
    with pytest.raises(ProgramError, match="dtype"):
        p.input("c", "f", shape=2, dtype="float64")
