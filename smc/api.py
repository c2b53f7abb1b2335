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

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from smc.config import FixedPointConfig
from smc.encoding import encode_fixed, encode_int
from smc.errors import ProgramError
from smc.ir import Node, Output, Program, encode_const, infer, parse_index

Operand = "SecureArray | int | float | np.ndarray | Sequence[Any]"


class ProgramBuilder:
    """Collects the nodes of one program. ``parties`` are the names of the data owners and
    computing parties; ``frac_bits`` fixes the fixed-point precision of every value."""

    def __init__(self, parties: Sequence[str], frac_bits: int = 16) -> None:
        if not parties:
            raise ProgramError("a program needs at least one party")
        self.parties = tuple(parties)
        self.fixed = FixedPointConfig(frac_bits)
        self._nodes: list[Node] = []
        self._outputs: list[Output] = []
        self._input_names: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------------------- building
    def _add(self, op: str, args: Sequence[SecureArray], attrs: dict[str, Any] | None = None) -> SecureArray:
        for a in args:
            if a.builder is not self:
                raise ProgramError("cannot mix arrays from two different programs")
        attrs = attrs or {}
        nodes = [self._nodes[a.id] for a in args]
        typed = infer(op, nodes, attrs, self.parties, f"node {len(self._nodes)} ({op})")
        node = Node(len(self._nodes), op, tuple(a.id for a in args), typed.shape, typed.dtype,
                    typed.secret, attrs)
        self._nodes.append(node)
        return SecureArray(self, node.id)

    def input(self, party: str, name: str, shape: Sequence[int] | int = (), dtype: str = "fixed") -> SecureArray:
        """A secret input owned by ``party`` and bound to its dataset ``name``."""
        if party not in self.parties:
            raise ProgramError(f"input owner {party!r} is not one of the parties {list(self.parties)}")
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
        if arr.dtype.kind == "f" and arr.size and np.all(arr == np.rint(arr)) and np.all(np.abs(arr) < 2**52):
            return self.const(arr.astype(np.int64), "int")  # exact integers: no truncation needed
        return self.const(arr, precise=precise)

    def output(self, name: str, value: SecureArray, to: str | Sequence[str] | None = None) -> None:
        """Reveal ``value`` as output ``name`` to ``to`` (one party, several, or None = all)."""
        if not isinstance(value, SecureArray) or value.builder is not self:
            raise ProgramError(f"output {name!r} must be an array of this program")
        recipients = (to,) if isinstance(to, str) else tuple(to or ())
        for r in recipients:
            if r not in self.parties:
                raise ProgramError(f"recipient {r!r} of output {name!r} is not a party {list(self.parties)}")
        if any(o.name == name for o in self._outputs):
            raise ProgramError(f"an output named {name!r} already exists")
        self._outputs.append(Output(name, value.id, recipients))

    def build(self) -> Program:
        """Freeze the traced DAG into an immutable, hashable :class:`Program`."""
        if not self._outputs:
            raise ProgramError("the program has no outputs; declare at least one with output()")
        return Program(self.parties, self.fixed.frac_bits, tuple(self._nodes), tuple(self._outputs))


def extra_bits(values: np.ndarray, frac_bits: int) -> int:
    """Extra fractional bits for a public multiplier: -floor(log2 max|c|) for |c| < 1, capped at
    min(frac_bits, 46 - 2*frac_bits) so that the truncation headroom rule still leaves room."""
    top = float(np.max(np.abs(values))) if values.size else 0.0
    if top == 0.0 or top >= 0.5:
        return 0
    want = int(-np.floor(np.log2(top)))
    return max(0, min(want, frac_bits, 46 - 2 * frac_bits, 30 - frac_bits))


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
        raise TypeError("a secure array has no truth value while tracing; use smc.where (next release)")

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
        """Division by a public number (multiplication by its fixed-point reciprocal)."""
        if isinstance(other, SecureArray):
            raise ProgramError("division by a secret value arrives with the nonlinear operations")
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
        dims = list(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else list(shape)
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
        return self.builder._add("transpose", [self], {"axes": [int(a) % max(self.ndim, 1) for a in order]})

    @property
    def T(self) -> SecureArray:  # noqa: N802 - numpy's name
        return self.transpose()

    def __getitem__(self, index: Any) -> SecureArray:
        items = index if isinstance(index, tuple) else (index,)
        spec: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                spec.append({"i": int(item)})
            elif isinstance(item, slice):
                spec.append({"s": [item.start, item.stop, item.step]})
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
        return self.builder._add("trunc", [self], {"bits": self.builder.fixed.frac_bits, "dtype": "int"})


def _builder_of(arrays: Sequence[Any]) -> ProgramBuilder:
    for a in arrays:
        if isinstance(a, SecureArray):
            return a.builder
    raise ProgramError("at least one operand must be a secure array of a program")


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
