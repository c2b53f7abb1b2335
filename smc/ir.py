"""The program IR: a typed DAG with static shapes, a canonical encoding and a hash.

A computation travels between processes as data, never as code. A :class:`Program` lists its
parties, its fixed-point precision, its nodes in topological order (each with an op, argument
node ids, attributes, a static shape, a dtype and whether it is secret) and its outputs, each
bound to recipients.

Canonical encoding: JSON with sorted keys, no whitespace, ASCII only, integers and strings only
(constants are stored as hexadecimal two's-complement ring elements). The program hash is the
SHA-256 of that encoding. :func:`Program.from_bytes` re-validates everything (argument ids,
dtypes, shapes by re-running shape inference, sizes) and refuses a malformed program with a
:class:`~smc.errors.ProgramError` that names the offending node.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smc.errors import ProgramError

IR_VERSION = 1
DTYPES = ("fixed", "int")
MAX_NODES = 100_000
MAX_ELEMENTS = 1 << 28  # per node: 2 GiB of uint64, far beyond what a session should ship
MAX_CONST_ELEMENTS = 1 << 20
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Node:
    id: int
    op: str
    args: tuple[int, ...]
    shape: Shape
    dtype: str
    secret: bool
    attrs: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def to_obj(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "op": self.op,
            "args": list(self.args),
            "shape": list(self.shape),
            "dtype": self.dtype,
            "secret": self.secret,
            "attrs": self.attrs,
        }


@dataclass(frozen=True)
class Output:
    """A named result, opened only to ``recipients`` (an empty tuple means every party)."""

    name: str
    node: int
    recipients: tuple[str, ...]

    def to_obj(self) -> dict[str, Any]:
        return {"name": self.name, "node": self.node, "recipients": list(self.recipients)}


@dataclass(frozen=True)
class Program:
    parties: tuple[str, ...]
    frac_bits: int
    nodes: tuple[Node, ...]
    outputs: tuple[Output, ...]

    def to_obj(self) -> dict[str, Any]:
        return {
            "version": IR_VERSION,
            "parties": list(self.parties),
            "frac_bits": self.frac_bits,
            "nodes": [n.to_obj() for n in self.nodes],
            "outputs": [o.to_obj() for o in self.outputs],
        }

    def to_bytes(self) -> bytes:
        """The canonical encoding (what is hashed, signed and shipped)."""
        return canonical_json(self.to_obj())

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @property
    def inputs(self) -> list[Node]:
        return [n for n in self.nodes if n.op == "input"]

    def inputs_of(self, party: str) -> list[Node]:
        return [n for n in self.inputs if n.attrs["party"] == party]

    def product_outputs(self) -> dict[int, int]:
        """Truncated products that are only revealed: node id -> index of its one output.

        A secret-by-secret fixed-point ``mul``/``matmul`` whose only use is one output with one
        recipient can be truncated and opened in one step (a suite may fuse the two and save the
        resharing; rss3 does, see ``Rss3.bilinear_open``). The executor and the cost model both
        read this, so they agree on which nodes are fused."""
        used: dict[int, int] = {}
        for n in self.nodes:
            for a in set(n.args):
                used[a] = used.get(a, 0) + 1
        outs: dict[int, list[int]] = {}
        for k, o in enumerate(self.outputs):
            outs.setdefault(o.node, []).append(k)
        fused = {}
        for node_id, ks in outs.items():
            node = self.nodes[node_id]
            if len(ks) != 1 or used.get(node_id, 0) or len(self.outputs[ks[0]].recipients) != 1:
                continue
            if node.op not in ("mul", "matmul") or not node.secret:
                continue
            args = [self.nodes[a] for a in node.args]
            if all(a.secret and a.dtype == "fixed" for a in args):
                fused[node_id] = ks[0]
        return fused

    @classmethod
    def from_bytes(cls, blob: bytes, max_bytes: int = 64 << 20) -> Program:
        if len(blob) > max_bytes:
            raise ProgramError(
                f"program encoding is {len(blob)} bytes, above the {max_bytes} limit"
            )
        try:
            obj = json.loads(blob.decode("ascii"), parse_constant=_refuse_constant)
            prog = program_from_obj(obj)
            again = prog.to_bytes()
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProgramError(f"program is not canonical JSON: {exc}") from None
        except RecursionError:
            raise ProgramError("program nests too deeply to be a program") from None
        except ValueError as exc:
            if isinstance(exc, ProgramError):
                raise
            raise ProgramError(f"program is malformed: {exc}") from None
        if again != blob:
            raise ProgramError("program encoding is not canonical (re-encoding differs)")
        return prog

    def summary(self) -> str:
        ops: dict[str, int] = {}
        for n in self.nodes:
            ops[n.op] = ops.get(n.op, 0) + 1
        return f"program {self.hash[:12]}: {len(self.nodes)} nodes {ops}, outputs " + ", ".join(
            f"{o.name}->{list(o.recipients) or 'all'}" for o in self.outputs
        )


def _refuse_constant(name: str) -> Any:
    raise ProgramError(f"program contains the non-JSON constant {name}")


def canonical_json(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def encode_const(values: np.ndarray) -> str:
    return np.ascontiguousarray(values, dtype="<u8").tobytes().hex()


def decode_const(text: str, shape: Shape, where: str = "constant") -> np.ndarray:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ProgramError(f"{where}: constant data is not hexadecimal") from None
    if len(raw) % 8:
        raise ProgramError(f"{where}: constant data is not a whole number of 64-bit words")
    arr = np.frombuffer(raw, dtype="<u8").astype(np.uint64)
    if arr.size != int(np.prod(shape, dtype=np.int64)):
        raise ProgramError(
            f"{where}: constant holds {arr.size} values, its shape {shape} needs another count"
        )
    return arr.reshape(shape)


# ----------------------------------------------------------------------------------- validation


def _req(obj: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ProgramError(f"{where}: missing field {key!r}")
    val = obj[key]
    if not isinstance(val, typ) or (typ is int and isinstance(val, bool)):
        raise ProgramError(f"{where}: field {key!r} has the wrong type {type(val).__name__}")
    return val


def program_from_obj(obj: Any) -> Program:
    if not isinstance(obj, dict):
        raise ProgramError("program must be a JSON object")
    if _req(obj, "version", int, "program") != IR_VERSION:
        raise ProgramError(
            f"unsupported IR version {obj['version']} (this engine reads {IR_VERSION})"
        )
    parties = tuple(_req(obj, "parties", list, "program"))
    if not parties or not all(isinstance(p, str) and p for p in parties):
        raise ProgramError("program: parties must be non-empty strings")
    if len(set(parties)) != len(parties):
        raise ProgramError(f"program: duplicate party names {list(parties)}")
    frac_bits = _req(obj, "frac_bits", int, "program")
    if not 0 <= frac_bits <= 30:
        raise ProgramError(f"program: frac_bits={frac_bits} is outside 0..30")
    raw_nodes = _req(obj, "nodes", list, "program")
    if len(raw_nodes) > MAX_NODES:
        raise ProgramError(f"program has {len(raw_nodes)} nodes, above the limit {MAX_NODES}")
    nodes: list[Node] = []
    for i, raw in enumerate(raw_nodes):
        where = f"node {i}"
        if _req(raw, "id", int, where) != i:
            raise ProgramError(f"{where}: ids must be 0..N-1 in order")
        args = tuple(_req(raw, "args", list, where))
        if not all(type(a) is int and 0 <= a < i for a in args):
            raise ProgramError(f"{where}: arguments must reference earlier nodes, got {list(args)}")
        shape = _check_shape(_req(raw, "shape", list, where), where)
        node = Node(
            id=i,
            op=_req(raw, "op", str, where),
            args=args,
            shape=shape,
            dtype=_req(raw, "dtype", str, where),
            secret=_req(raw, "secret", bool, where),
            attrs=_req(raw, "attrs", dict, where),
        )
        expected = infer(
            node.op, [nodes[a] for a in args], node.attrs, parties, f"{where} ({node.op})"
        )
        if (expected.shape, expected.dtype, expected.secret) != (
            node.shape,
            node.dtype,
            node.secret,
        ):
            raise ProgramError(
                f"{where} ({node.op}): declared {node.shape}/{node.dtype}/secret={node.secret} "
                f"but its arguments give {expected.shape}/{expected.dtype}/secret={expected.secret}"
            )
        nodes.append(node)
    outputs = []
    names = set()
    for k, raw in enumerate(_req(obj, "outputs", list, "program")):
        where = f"output {k}"
        name = _req(raw, "name", str, where)
        node_id = _req(raw, "node", int, where)
        if not isinstance(name, str) or not name:
            raise ProgramError(f"{where}: output name must be a non-empty string")
        recipients = tuple(_req(raw, "recipients", list, where))
        if not 0 <= node_id < len(nodes):
            raise ProgramError(f"{where}: node {node_id} does not exist")
        if name in names:
            raise ProgramError(f"{where}: duplicate output name {name!r}")
        names.add(name)
        if len(set(recipients)) != len(recipients):
            raise ProgramError(f"{where}: duplicate recipients {list(recipients)}")
        for r in recipients:
            if r not in parties:
                raise ProgramError(f"{where}: recipient {r!r} is not a party of this program")
        outputs.append(Output(name, node_id, recipients))
    return Program(parties, frac_bits, tuple(nodes), tuple(outputs))


ALLOWED_ATTRS: dict[str, set[str]] = {
    "input": {"party", "name", "shape", "dtype"},
    "const": {"shape", "dtype", "data", "frac_bits"},
    "sum": {"axis", "keepdims"},
    "reshape": {"shape"},
    "transpose": {"axes"},
    "getitem": {"index"},
    "concat": {"axis"},
    "stack": {"axis"},
    "trunc": {"bits", "dtype"},
    "cmp": {"rel"},
    "reduce": {"fn", "axis", "keepdims"},
    "sort": {"descending"},
    "sort_rows": {"key", "descending"},
    "bitwise": {"fn"},
    "func": {"fn"},
}


@dataclass(frozen=True)
class Typed:
    shape: Shape
    dtype: str
    secret: bool


def _check_shape(shape: Any, where: str) -> Shape:
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ProgramError(
            f"{where}: a shape must be a list of non-negative integers, got {shape!r}"
        )
    if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
        raise ProgramError(f"{where}: shape {tuple(shape)} exceeds {MAX_ELEMENTS} elements")
    return tuple(shape)


def _dummy(shape: Shape) -> np.ndarray:
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype=np.int8), shape, (0,) * len(shape))


def parse_index(spec: Any, where: str) -> tuple[Any, ...]:
    """Index specs are lists of {"i": int} | {"s": [start, stop, step]} | {"n": 0} | {"e": 0}."""
    if not isinstance(spec, list):
        raise ProgramError(f"{where}: index must be a list")
    out: list[Any] = []
    for item in spec:
        if not isinstance(item, dict) or len(item) != 1:
            raise ProgramError(f"{where}: bad index item {item!r}")
        ((kind, val),) = item.items()
        if kind == "i" and isinstance(val, int):
            out.append(val)
        elif (
            kind == "s"
            and isinstance(val, list)
            and len(val) == 3
            and all(v is None or isinstance(v, int) for v in val)
        ):
            if val[2] == 0:
                raise ProgramError(f"{where}: slice step cannot be zero")
            out.append(slice(*val))
        elif kind == "n":
            out.append(None)
        elif kind == "e":
            out.append(Ellipsis)
        else:
            raise ProgramError(f"{where}: bad index item {item!r}")
    return tuple(out)


def _same_dtype(args: list[Node] | list[Typed], where: str) -> str:
    dtypes = {a.dtype for a in args}
    if len(dtypes) != 1:
        raise ProgramError(f"{where}: operands have mixed dtypes {sorted(dtypes)}; cast explicitly")
    return dtypes.pop()


def infer(
    op: str,
    args: list[Node] | list[Typed],
    attrs: dict[str, Any],
    parties: tuple[str, ...],
    where: str = "node",
) -> Typed:
    """Shape, dtype and secrecy of an op's result; raises ProgramError on any inconsistency."""
    secret = any(a.secret for a in args)
    unknown = set(attrs) - ALLOWED_ATTRS.get(op, set())
    if unknown:
        raise ProgramError(f"{where}: unknown attributes {sorted(unknown)} for op {op!r}")
    if "descending" in attrs and not isinstance(attrs["descending"], bool):
        raise ProgramError(f"{where}: descending must be true or false")
    if "keepdims" in attrs and not isinstance(attrs["keepdims"], bool):
        raise ProgramError(f"{where}: keepdims must be true or false")
    arity = {
        "input": 0,
        "const": 0,
        "neg": 1,
        "sum": 1,
        "reshape": 1,
        "transpose": 1,
        "getitem": 1,
        "to_fixed": 1,
        "trunc": 1,
        "add": 2,
        "sub": 2,
        "mul": 2,
        "matmul": 2,
        "cmp": 2,
        "where": 3,
        "abs": 1,
        "relu": 1,
        "reduce": 1,
        "sort": 1,
        "sort_rows": 1,
        "bits": 1,
        "bitwise": 2,
        "func": 1,
    }
    if op in arity and len(args) != arity[op]:
        raise ProgramError(f"{where}: {op} takes {arity[op]} arguments, got {len(args)}")
    try:
        if op == "input":
            if attrs.get("party") not in parties:
                raise ProgramError(f"{where}: input owner {attrs.get('party')!r} is not a party")
            if not isinstance(attrs.get("name"), str) or not attrs["name"]:
                raise ProgramError(f"{where}: input needs a non-empty name")
            dtype = attrs.get("dtype")
            if dtype not in DTYPES:
                raise ProgramError(f"{where}: input dtype must be one of {DTYPES}")
            return Typed(_check_shape(attrs.get("shape"), where), dtype, True)
        if op == "const":
            shape = _check_shape(attrs.get("shape"), where)
            if int(np.prod(shape, dtype=np.int64)) > MAX_CONST_ELEMENTS:
                raise ProgramError(f"{where}: constant larger than {MAX_CONST_ELEMENTS} elements")
            if attrs.get("dtype") not in DTYPES or not isinstance(attrs.get("data"), str):
                raise ProgramError(f"{where}: const needs dtype and hex data")
            decode_const(attrs["data"], shape, where)
            fb = attrs.get("frac_bits")
            if fb is not None and (
                attrs["dtype"] != "fixed" or not isinstance(fb, int) or not 0 <= fb <= 30
            ):
                raise ProgramError(
                    f"{where}: const frac_bits must be an int in 0..30 on a fixed constant"
                )
            return Typed(shape, attrs["dtype"], False)
        if op in ("add", "sub"):
            return Typed(
                np.broadcast_shapes(args[0].shape, args[1].shape), _same_dtype(args, where), secret
            )
        if op == "mul":
            dtype = "fixed" if "fixed" in (args[0].dtype, args[1].dtype) else "int"
            return Typed(np.broadcast_shapes(args[0].shape, args[1].shape), dtype, secret)
        if op == "matmul":
            a, b = args[0].shape, args[1].shape
            if not a or not b:
                raise ProgramError(f"{where}: matmul needs operands of rank >= 1, got {a} and {b}")
            if a[-1] != (b[0] if len(b) == 1 else b[-2]):
                raise ProgramError(f"{where}: matmul inner dimensions differ: {a} @ {b}")
            dtype = "fixed" if "fixed" in (args[0].dtype, args[1].dtype) else "int"
            return Typed(matmul_shape(a, b), dtype, secret)
        if op == "neg":
            return Typed(args[0].shape, args[0].dtype, secret)
        if op == "sum":
            axis = attrs.get("axis")
            if axis is not None and not (
                isinstance(axis, list) and all(isinstance(x, int) for x in axis)
            ):
                raise ProgramError(f"{where}: sum axis must be null or a list of ints")
            shape = np.sum(
                _dummy(args[0].shape),
                axis=None if axis is None else tuple(axis),
                keepdims=bool(attrs.get("keepdims", False)),
            ).shape
            return Typed(shape, args[0].dtype, secret)
        if op == "reshape":
            shape = _check_shape(attrs.get("shape"), where)
            if int(np.prod(shape, dtype=np.int64)) != int(np.prod(args[0].shape, dtype=np.int64)):
                raise ProgramError(f"{where}: cannot reshape {args[0].shape} into {shape}")
            return Typed(shape, args[0].dtype, secret)
        if op == "transpose":
            axes = attrs.get("axes")
            if not (isinstance(axes, list) and sorted(axes) == list(range(len(args[0].shape)))):
                raise ProgramError(
                    f"{where}: transpose axes must permute 0..{len(args[0].shape) - 1}"
                )
            return Typed(tuple(args[0].shape[a] for a in axes), args[0].dtype, secret)
        if op == "getitem":
            shape = _dummy(args[0].shape)[parse_index(attrs.get("index"), where)].shape
            return Typed(shape, args[0].dtype, secret)
        if op in ("concat", "stack"):
            if not args:
                raise ProgramError(f"{where}: {op} needs at least one array")
            axis = attrs.get("axis")
            if not isinstance(axis, int):
                raise ProgramError(f"{where}: {op} axis must be an int")
            shape = _concat_shape(op, [a.shape for a in args], axis, where)
            return Typed(shape, _same_dtype(args, where), secret)
        if op == "to_fixed":
            if args[0].dtype != "int":
                raise ProgramError(f"{where}: to_fixed takes an int array")
            return Typed(args[0].shape, "fixed", secret)
        if op == "trunc":
            if args[0].dtype != "fixed":
                raise ProgramError(f"{where}: trunc takes a fixed array")
            bits = attrs.get("bits")
            if not isinstance(bits, int) or not 0 < bits < 62:
                raise ProgramError(f"{where}: trunc bits must be in 1..61")
            out_dtype = attrs.get("dtype", "fixed")
            if out_dtype not in DTYPES:
                raise ProgramError(f"{where}: trunc dtype must be one of {DTYPES}")
            return Typed(args[0].shape, out_dtype, secret)
        if op in NONLINEAR_OPS:
            return _infer_nonlinear(op, args, attrs, secret, where)
    except ProgramError:
        raise
    except (ValueError, IndexError, TypeError) as exc:
        raise ProgramError(f"{where}: {exc}") from None
    raise ProgramError(f"{where}: unknown op {op!r}")


def _concat_shape(op: str, shapes: list[Shape], axis: int, where: str) -> Shape:
    first = shapes[0]
    if op == "stack":
        if any(s != first for s in shapes):
            raise ProgramError(f"{where}: stack needs equal shapes, got {shapes}")
        rank = len(first) + 1
        if not -rank <= axis < rank:
            raise ProgramError(f"{where}: axis {axis} out of range for rank {rank}")
        ax = axis % rank
        return (*first[:ax], len(shapes), *first[ax:])
    rank = len(first)
    if rank == 0 or not -rank <= axis < rank:
        raise ProgramError(f"{where}: axis {axis} out of range for rank {rank}")
    ax = axis % rank
    for s in shapes:
        if len(s) != rank or s[:ax] + s[ax + 1 :] != first[:ax] + first[ax + 1 :]:
            raise ProgramError(f"{where}: concatenate shapes differ off axis {axis}: {shapes}")
    return (*first[:ax], sum(s[ax] for s in shapes), *first[ax + 1 :])


def matmul_shape(a: Shape, b: Shape) -> Shape:
    """numpy matmul's result shape (1-D operands are promoted, then the added axis dropped)."""
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    rows = (a2[-2],) if len(a) > 1 else ()
    cols = (b2[-1],) if len(b) > 1 else ()
    return (*np.broadcast_shapes(a2[:-2], b2[:-2]), *rows, *cols)


NONLINEAR_OPS = (
    "cmp",
    "where",
    "abs",
    "relu",
    "reduce",
    "sort",
    "sort_rows",
    "bits",
    "bitwise",
    "func",
)
COMPARISONS = ("lt", "le", "gt", "ge", "eq", "ne")
REDUCTIONS = ("max", "min", "argmax", "argmin")
FUNCTIONS = ("reciprocal", "sqrt", "rsqrt", "exp", "log", "sigmoid", "tanh")
BITWISE = ("and", "or", "xor")


def _infer_nonlinear(
    op: str, args: list[Node] | list[Typed], attrs: dict[str, Any], secret: bool, where: str
) -> Typed:
    if op == "cmp":
        if attrs.get("rel") not in COMPARISONS:
            raise ProgramError(f"{where}: comparison must be one of {COMPARISONS}")
        _same_dtype(args, where)
        return Typed(np.broadcast_shapes(args[0].shape, args[1].shape), "int", secret)
    if op == "where":
        if args[0].dtype != "int":
            raise ProgramError(f"{where}: where() needs an int 0/1 condition (a comparison result)")
        dtype = _same_dtype(args[1:], where)
        return Typed(np.broadcast_shapes(*(a.shape for a in args)), dtype, secret)
    if op in ("abs", "relu"):
        return Typed(args[0].shape, args[0].dtype, secret)
    if op == "reduce":
        fn, axis = attrs.get("fn"), attrs.get("axis")
        if fn not in REDUCTIONS:
            raise ProgramError(f"{where}: reduction must be one of {REDUCTIONS}")
        if axis is not None and not isinstance(axis, int):
            raise ProgramError(f"{where}: reduction axis must be null or an int")
        shape = args[0].shape
        if axis is None:
            if not int(np.prod(shape, dtype=np.int64)):
                raise ProgramError(f"{where}: {fn} of an empty array")
            out: Shape = (1,) * len(shape) if attrs.get("keepdims") else ()
        else:
            if not -len(shape) <= axis < len(shape):
                raise ProgramError(f"{where}: axis {axis} out of range for shape {shape}")
            ax = axis % len(shape)
            if shape[ax] == 0:
                raise ProgramError(f"{where}: {fn} over an empty axis")
            out = shape[:ax] + ((1,) if attrs.get("keepdims") else ()) + shape[ax + 1 :]
        return Typed(out, "int" if fn.startswith("arg") else args[0].dtype, secret)
    if op == "sort":
        if len(args[0].shape) != 1:
            raise ProgramError(f"{where}: sort takes a 1-D array (use sort_rows for tables)")
        return Typed(args[0].shape, args[0].dtype, secret)
    if op == "sort_rows":
        shape = args[0].shape
        key = attrs.get("key")
        if len(shape) != 2 or not isinstance(key, int) or not 0 <= key < shape[1]:
            raise ProgramError(
                f"{where}: sort_rows takes an (n, m) table and a key column in 0..m-1"
            )
        return Typed(shape, args[0].dtype, secret)
    if op == "bits":
        if args[0].dtype != "int":
            raise ProgramError(f"{where}: bit decomposition takes a secret int array")
        return Typed((*args[0].shape, 64), "int", secret)
    if op == "bitwise":
        if attrs.get("fn") not in BITWISE or any(a.dtype != "int" for a in args):
            raise ProgramError(f"{where}: bitwise {BITWISE} take two int arrays")
        return Typed(np.broadcast_shapes(args[0].shape, args[1].shape), "int", secret)
    if attrs.get("fn") not in FUNCTIONS:
        raise ProgramError(f"{where}: function must be one of {FUNCTIONS}")
    if args[0].dtype != "fixed":
        raise ProgramError(f"{where}: {attrs['fn']} takes a fixed-point array")
    return Typed(args[0].shape, "fixed", secret)
