"""The composition API: numpy-like secure arrays that trace into a :class:`~smc.ir.Program`.

Example::

    import numpy as np
    import smc

    p = smc.ProgramBuilder(["alice", "bob", "carol"])
    a = p.input("alice", "salaries", shape=(4,))
    b = p.input("bob", "salaries", shape=(4,))
    p.output("mean", smc.concatenate([a, b]).mean(), to="carol")
    program = p.build()
    result = smc.simulate(program, {"alice": {"salaries": np.ones(4)},
                                    "bob": {"salaries": np.zeros(4)}})
    result["carol"]["mean"]     # 0.5, known to carol only

Nothing is computed while tracing: every operator appends a node to the builder's DAG, after
checking shapes and dtypes. Public operands (Python numbers, numpy arrays) become constants of
the program; floats are encoded in fixed point, integers stay integers (multiplying by an
integer constant needs no truncation and no communication).

Who learns what: only the recipients of an output learn it, and only that output.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from smc.config import FixedPointConfig
from smc.encoding import encode_fixed, encode_int, extra_bits
from smc.errors import ProgramError
from smc.ir import Node, Output, Program, encode_const, infer, parse_index

Operand = "SecureArray | int | float | np.ndarray | Sequence[Any]"


_budget = threading.local()


@contextmanager
def build_budget(nodes: int, const_elements: int) -> Iterator[None]:
    """Let the builders on this thread create at most ``nodes`` nodes and constants of at most
    ``const_elements`` elements in all, else :class:`ProgramError`. A party rebuilding a claimed
    library circuit uses the received program's own counts: the rebuild must equal that program,
    so it never needs more, and parameters that would make it build far more are cut short."""
    saved = getattr(_budget, "left", None)
    _budget.left = [nodes, const_elements]
    try:
        yield
    finally:
        _budget.left = saved


def _spend(nodes: int, elements: int) -> None:
    left: list[int] | None = getattr(_budget, "left", None)
    if left is None:
        return
    if nodes > left[0]:
        raise ProgramError("the program being built exceeds its node budget")
    if elements > left[1]:
        raise ProgramError("the program being built exceeds its budget of constant elements")
    left[0] -= nodes
    left[1] -= elements


class ProgramBuilder:
    """Collects the nodes of one program. ``parties`` are the names of the data owners and
    computing parties; ``frac_bits`` fixes the fixed-point precision of every value."""

    def __init__(self, parties: Sequence[str], frac_bits: int = 16) -> None:
        if not parties:
            raise ProgramError("a program needs at least one party")
        if len(set(parties)) != len(parties) or not all(isinstance(x, str) and x for x in parties):
            raise ProgramError(
                f"party names must be distinct non-empty strings, got {list(parties)}"
            )
        self.parties = tuple(parties)
        self.fixed = FixedPointConfig(frac_bits)
        self._nodes: list[Node] = []
        self._outputs: list[Output] = []
        self._input_names: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------------------- building
    def _add(
        self, op: str, args: Sequence[SecureArray], attrs: dict[str, Any] | None = None
    ) -> SecureArray:
        for a in args:
            if a.builder is not self:
                raise ProgramError("cannot mix arrays from two different programs")
        attrs = attrs or {}
        _spend(1, 0)
        nodes = [self._nodes[a.id] for a in args]
        typed = infer(op, nodes, attrs, self.parties, f"node {len(self._nodes)} ({op})")
        node = Node(
            len(self._nodes),
            op,
            tuple(a.id for a in args),
            typed.shape,
            typed.dtype,
            typed.secret,
            attrs,
        )
        self._nodes.append(node)
        return SecureArray(self, node.id)

    def input(
        self, party: str, name: str, shape: Sequence[int] | int = (), dtype: str = "fixed"
    ) -> SecureArray:
        """A secret input owned by ``party`` and bound to its dataset ``name``."""
        if party not in self.parties:
            raise ProgramError(
                f"input owner {party!r} is not one of the parties {list(self.parties)}"
            )
        if (party, name) in self._input_names:
            raise ProgramError(f"party {party!r} already has an input named {name!r}")
        self._input_names.add((party, name))
        shp = [shape] if isinstance(shape, int) else list(shape)
        return self._add("input", [], {"party": party, "name": name, "shape": shp, "dtype": dtype})

    def const(self, value: Any, dtype: str | None = None, precise: bool = False) -> SecureArray:
        """A public constant. Floats (or dtype='fixed') are encoded in fixed point.

        ``precise=True`` (used for public multipliers) encodes a small constant with up to
        :func:`extra_bits` more fractional bits, so that its relative precision stays about
        2^-frac_bits instead of degrading as |c| shrinks (1/3000 would otherwise carry a 0.8%
        error at 16 bits)."""
        arr = np.asarray(value)
        _spend(0, arr.size)  # before encoding it (a budgeted build stops here)
        if dtype is None:
            dtype = "int" if arr.dtype.kind in "iub" else "fixed"
        if arr.dtype.kind not in "iubf":
            raise ProgramError(f"constants must be numeric, got dtype {arr.dtype}")
        attrs: dict[str, Any] = {"shape": list(arr.shape), "dtype": dtype}
        if dtype == "fixed":
            fb = self.fixed.frac_bits + (extra_bits(arr, self.fixed.frac_bits) if precise else 0)
            ring = encode_fixed(arr, FixedPointConfig(fb) if fb <= 30 else self.fixed)
            if fb != self.fixed.frac_bits:
                attrs["frac_bits"] = fb
        else:
            ring = encode_int(arr)
        attrs["data"] = encode_const(ring)
        return self._add("const", [], attrs)

    def lift(self, value: Any, precise: bool = False) -> SecureArray:
        if isinstance(value, SecureArray):
            return value
        arr = np.asarray(value)
        if (
            arr.dtype.kind == "f"
            and arr.size
            and np.all(arr == np.rint(arr))
            and np.all(np.abs(arr) < 2**52)
        ):
            return self.const(arr.astype(np.int64), "int")  # exact integers: no truncation needed
        return self.const(arr, precise=precise)

    def output(self, name: str, value: SecureArray, to: str | Sequence[str] | None = None) -> None:
        """Reveal ``value`` as output ``name`` to ``to`` (one party, several, or None = all)."""
        if not isinstance(value, SecureArray) or value.builder is not self:
            raise ProgramError(f"output {name!r} must be an array of this program")
        recipients = (to,) if isinstance(to, str) else tuple(dict.fromkeys(to or ()))
        for r in recipients:
            if r not in self.parties:
                raise ProgramError(
                    f"recipient {r!r} of output {name!r} is not a party {list(self.parties)}"
                )
        if any(o.name == name for o in self._outputs):
            raise ProgramError(f"an output named {name!r} already exists")
        self._outputs.append(Output(name, value.id, recipients))

    def build(self) -> Program:
        """Freeze the traced DAG into an immutable, hashable :class:`Program`."""
        if not self._outputs:
            raise ProgramError("the program has no outputs; declare at least one with output()")
        return Program(self.parties, self.fixed.frac_bits, tuple(self._nodes), tuple(self._outputs))


def _cast_pair(a: SecureArray, b: SecureArray) -> tuple[SecureArray, SecureArray]:
    if a.dtype == b.dtype:
        return a, b
    return (a.to_fixed(), b) if a.dtype == "int" else (a, b.to_fixed())


class SecureArray:
    """A traced array: secret when it depends on any input, public otherwise."""

    __array_priority__ = 1000  # numpy defers to our reflected operators

    def __init__(self, builder: ProgramBuilder, node_id: int) -> None:
        self.builder = builder
        self.id = node_id

    @property
    def node(self) -> Node:
        return self.builder._nodes[self.id]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.node.shape

    @property
    def dtype(self) -> str:
        return self.node.dtype

    @property
    def secret(self) -> bool:
        return self.node.secret

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return self.node.size

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d secure array")
        return self.shape[0]

    def __iter__(self) -> Iterator[SecureArray]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        kind = "secret" if self.secret else "public"
        return f"SecureArray(node={self.id}, {kind} {self.dtype}{list(self.shape)})"

    def __bool__(self) -> bool:
        raise TypeError(
            "a secure array has no truth value while tracing; use smc.where(cond, a, b)"
        )

    # ------------------------------------------------------------------------------ comparisons
    __hash__ = None  # type: ignore[assignment]  # == builds a comparison, as in numpy

    def _cmp(self, rel: str, other: Any) -> SecureArray:
        x, y = _cast_pair(self, self.builder.lift(other))
        return self.builder._add("cmp", [x, y], {"rel": rel})

    def __lt__(self, other: Any) -> SecureArray:
        return self._cmp("lt", other)

    def __le__(self, other: Any) -> SecureArray:
        return self._cmp("le", other)

    def __gt__(self, other: Any) -> SecureArray:
        return self._cmp("gt", other)

    def __ge__(self, other: Any) -> SecureArray:
        return self._cmp("ge", other)

    def __eq__(self, other: Any) -> SecureArray:  # type: ignore[override]
        return self._cmp("eq", other)

    def __ne__(self, other: Any) -> SecureArray:  # type: ignore[override]
        return self._cmp("ne", other)

    def __abs__(self) -> SecureArray:
        return self.builder._add("abs", [self])

    def relu(self) -> SecureArray:
        return self.builder._add("relu", [self])

    def _reduce(self, fn: str, axis: int | None, keepdims: bool) -> SecureArray:
        attrs: dict[str, Any] = {"fn": fn, "axis": axis}
        if keepdims:
            attrs["keepdims"] = True
        return self.builder._add("reduce", [self], attrs)

    def max(self, axis: int | None = None, keepdims: bool = False) -> SecureArray:
        """Maximum by a tournament of comparisons (ceil(log2 n) levels)."""
        return self._reduce("max", axis, keepdims)

    def min(self, axis: int | None = None, keepdims: bool = False) -> SecureArray:
        return self._reduce("min", axis, keepdims)

    def argmax(self, axis: int | None = None) -> SecureArray:
        """Index of the first maximum (a secret int), as numpy.argmax."""
        return self._reduce("argmax", axis, False)

    def argmin(self, axis: int | None = None) -> SecureArray:
        return self._reduce("argmin", axis, False)

    def sort(self, descending: bool = False) -> SecureArray:
        """Oblivious sort of a 1-D array (bitonic network; nothing about the order leaks)."""
        return self.builder._add("sort", [self], {"descending": bool(descending)})

    # ------------------------------------------------------------------------------ bits
    def bits(self) -> SecureArray:
        """Bit decomposition of secret integers: shape + (64,), least significant bit first,
        two's complement."""
        return self.builder._add("bits", [self])

    def _bitwise(self, fn: str, other: Any) -> SecureArray:
        return self.builder._add("bitwise", [self, self.builder.lift(other)], {"fn": fn})

    def __and__(self, other: Any) -> SecureArray:
        return self._bitwise("and", other)

    def __or__(self, other: Any) -> SecureArray:
        return self._bitwise("or", other)

    def __xor__(self, other: Any) -> SecureArray:
        return self._bitwise("xor", other)

    # ------------------------------------------------------------------------------ functions
    def _func(self, fn: str) -> SecureArray:
        return self.builder._add("func", [self.to_fixed()], {"fn": fn})

    def reciprocal(self) -> SecureArray:
        """1/x (0 maps to 0). Method and measured error: docs/numerics.md."""
        return self._func("reciprocal")

    def sqrt(self) -> SecureArray:
        return self._func("sqrt")

    def rsqrt(self) -> SecureArray:
        return self._func("rsqrt")

    def exp(self) -> SecureArray:
        return self._func("exp")

    def log(self) -> SecureArray:
        return self._func("log")

    def sigmoid(self) -> SecureArray:
        return self._func("sigmoid")

    def tanh(self) -> SecureArray:
        return self._func("tanh")

    # ------------------------------------------------------------------------------ arithmetic
    def _bin(self, op: str, other: Any, reflected: bool = False) -> SecureArray:
        b = self.builder.lift(other, precise=op == "mul")
        x, y = (b, self) if reflected else (self, b)
        if op in ("add", "sub"):
            x, y = _cast_pair(x, y)
        return self.builder._add(op, [x, y])

    def __add__(self, other: Any) -> SecureArray:
        return self._bin("add", other)

    def __radd__(self, other: Any) -> SecureArray:
        return self._bin("add", other, True)

    def __sub__(self, other: Any) -> SecureArray:
        return self._bin("sub", other)

    def __rsub__(self, other: Any) -> SecureArray:
        return self._bin("sub", other, True)

    def __mul__(self, other: Any) -> SecureArray:
        return self._bin("mul", other)

    def __rmul__(self, other: Any) -> SecureArray:
        return self._bin("mul", other, True)

    def __matmul__(self, other: Any) -> SecureArray:
        return self._bin("matmul", other)

    def __rmatmul__(self, other: Any) -> SecureArray:
        return self._bin("matmul", other, True)

    def __neg__(self) -> SecureArray:
        return self.builder._add("neg", [self])

    def __pos__(self) -> SecureArray:
        return self

    def __truediv__(self, other: Any) -> SecureArray:
        """Division: by a public number, multiplication by its fixed-point reciprocal; by a secret,
        multiplication by the secret reciprocal (docs/numerics.md)."""
        if isinstance(other, SecureArray):
            if not other.secret:
                raise ProgramError("divide by a public constant directly, not a traced constant")
            return self.to_fixed() * other.reciprocal()
        den = np.asarray(other, dtype=np.float64)
        if np.any(den == 0):
            raise ProgramError("division by a public zero")
        x = self if self.dtype == "fixed" else self.to_fixed()
        return x * self.builder.const(1.0 / den, "fixed", precise=True)

    # ------------------------------------------------------------------------------ reductions
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> SecureArray:
        ax = None if axis is None else ([axis] if isinstance(axis, int) else list(axis))
        return self.builder._add("sum", [self], {"axis": ax, "keepdims": keepdims})

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> SecureArray:
        total = self.sum(axis, keepdims)
        count = self.size // max(total.size, 1) if self.size else 0
        if count == 0:
            raise ProgramError("mean of an empty array")
        return total / count

    # ------------------------------------------------------------------------------ structure
    def reshape(self, *shape: int | Sequence[int]) -> SecureArray:
        dims: list[int] = (
            [int(d) for d in shape[0]]
            if len(shape) == 1 and not isinstance(shape[0], int)
            else [int(d) for d in shape]  # type: ignore[arg-type]
        )
        if dims.count(-1) > 1:
            raise ProgramError("reshape: at most one dimension may be -1")
        if -1 in dims:
            known = int(np.prod([d for d in dims if d != -1], dtype=np.int64))
            if known == 0 or self.size % known:
                raise ProgramError(f"cannot reshape {self.shape} into {tuple(dims)}")
            dims[dims.index(-1)] = self.size // known
        return self.builder._add("reshape", [self], {"shape": [int(d) for d in dims]})

    def ravel(self) -> SecureArray:
        return self.reshape(-1)

    flatten = ravel

    def transpose(self, *axes: int) -> SecureArray:
        order = list(axes[0]) if len(axes) == 1 and not isinstance(axes[0], int) else list(axes)
        if not order:
            order = list(range(self.ndim))[::-1]
        return self.builder._add(
            "transpose", [self], {"axes": [int(a) % max(self.ndim, 1) for a in order]}
        )

    @property
    def T(self) -> SecureArray:
        return self.transpose()

    def __getitem__(self, index: Any) -> SecureArray:
        items = index if isinstance(index, tuple) else (index,)
        spec: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                spec.append({"i": int(item)})
            elif isinstance(item, slice):
                bounds = [
                    None if v is None else _index_int(v) for v in (item.start, item.stop, item.step)
                ]
                spec.append({"s": bounds})
            elif item is None:
                spec.append({"n": 0})
            elif item is Ellipsis:
                spec.append({"e": 0})
            else:
                raise ProgramError(
                    f"index {item!r}: only integers, slices, None and ... index a secure array "
                    "(secret or array indices would reveal access patterns)"
                )
        parse_index(spec, "index")
        return self.builder._add("getitem", [self], {"index": spec})

    # ------------------------------------------------------------------------------ casts
    def to_fixed(self) -> SecureArray:
        if self.dtype == "fixed":
            return self
        return self.builder._add("to_fixed", [self])

    def to_int(self) -> SecureArray:
        """Fixed point to integer: floor(x) or floor(x)+1 (stochastic rounding, see docs)."""
        if self.dtype == "int":
            return self
        return self.builder._add(
            "trunc", [self], {"bits": self.builder.fixed.frac_bits, "dtype": "int"}
        )


def _index_int(value: Any) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise ProgramError(f"slice bounds must be integers, got {value!r}")


def _builder_of(arrays: Sequence[Any]) -> ProgramBuilder:
    for a in arrays:
        if isinstance(a, SecureArray):
            return a.builder
    raise ProgramError("at least one operand must be a secure array of a program")


def where(cond: Any, a: Any, b: Any) -> SecureArray:
    """Elementwise cond ? a : b with cond a 0/1 int array (for example a comparison)."""
    builder = _builder_of([cond, a, b])
    x, y = _cast_pair(builder.lift(a), builder.lift(b))
    return builder._add("where", [builder.lift(cond), x, y])


def maximum(a: Any, b: Any) -> SecureArray:
    builder = _builder_of([a, b])
    x, y = builder.lift(a), builder.lift(b)
    return where(x < y, y, x)


def minimum(a: Any, b: Any) -> SecureArray:
    builder = _builder_of([a, b])
    x, y = builder.lift(a), builder.lift(b)
    return where(y < x, y, x)


def relu(x: SecureArray) -> SecureArray:
    return x.relu()


def sort(x: SecureArray, descending: bool = False) -> SecureArray:
    return x.sort(descending)


def sort_by_key(
    keys: SecureArray, payload: SecureArray, descending: bool = False
) -> tuple[SecureArray, SecureArray]:
    """Sort rows of ``payload`` (n, m) by ``keys`` (n,), carrying the payload obliviously.
    Returns (sorted keys, sorted payload). Rows with equal keys come out in network order."""
    b = _builder_of([keys, payload])
    k, p = b.lift(keys), b.lift(payload)
    if k.ndim != 1 or p.ndim not in (1, 2) or p.shape[0] != k.shape[0]:
        raise ProgramError(
            f"sort_by_key: keys must be (n,) and payload (n,) or (n, m); got {k.shape}, {p.shape}"
        )
    p2 = p.reshape(-1, 1) if p.ndim == 1 else p
    table = concatenate([k.reshape(-1, 1), p2], axis=1)
    out = b._add("sort_rows", [table], {"key": 0, "descending": bool(descending)})
    sorted_payload = out[:, 1:]
    if k.dtype != table.dtype:
        raise ProgramError("sort_by_key: keys and payload must share a dtype (cast with to_fixed)")
    return out[:, 0], (sorted_payload.reshape(-1) if p.ndim == 1 else sorted_payload)


def median(x: SecureArray) -> SecureArray:
    """Median of a 1-D array (mean of the two middle elements for even length), via sort."""
    return quantile(x, 0.5)


def quantile(x: SecureArray, q: float) -> SecureArray:
    """q-quantile of a 1-D array (numpy's default linear interpolation), via an oblivious sort."""
    if not 0.0 <= q <= 1.0:
        raise ProgramError(f"quantile q={q} is outside [0, 1]")
    if x.ndim != 1 or x.size == 0:
        raise ProgramError("quantile takes a non-empty 1-D array")
    s = x.to_fixed().sort()
    pos = q * (x.size - 1)
    lo = int(np.floor(pos))
    frac = pos - lo
    if frac == 0.0:
        return s[lo]
    return s[lo] + (s[lo + 1] - s[lo]) * frac


def top_k(x: SecureArray, k: int) -> SecureArray:
    """The k largest values of a 1-D array, largest first."""
    if not 0 < k <= x.size:
        raise ProgramError(f"top_k: k={k} must be in 1..{x.size}")
    return x.sort(descending=True)[:k]


def softmax(x: SecureArray, axis: int = -1) -> SecureArray:
    """exp(x - max) / sum(exp(x - max)) along ``axis``."""
    shifted = x.to_fixed() - x.to_fixed().max(axis=axis, keepdims=True)
    e = shifted.exp()
    return e * e.sum(axis=axis, keepdims=True).reciprocal()


def concatenate(arrays: Sequence[Any], axis: int = 0) -> SecureArray:
    b = _builder_of(arrays)
    lifted = [b.lift(a) for a in arrays]
    if any(a.dtype == "fixed" for a in lifted):
        lifted = [a.to_fixed() for a in lifted]
    return b._add("concat", lifted, {"axis": axis})


def stack(arrays: Sequence[Any], axis: int = 0) -> SecureArray:
    b = _builder_of(arrays)
    lifted = [b.lift(a) for a in arrays]
    if any(a.dtype == "fixed" for a in lifted):
        lifted = [a.to_fixed() for a in lifted]
    return b._add("stack", lifted, {"axis": axis})


def matmul(a: Any, b: Any) -> SecureArray:
    builder = _builder_of([a, b])
    return builder._add("matmul", [builder.lift(a), builder.lift(b)])


def dot(a: Any, b: Any) -> SecureArray:
    """numpy.dot for 1-D and 2-D operands (matmul semantics)."""
    return matmul(a, b)
