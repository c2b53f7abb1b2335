"""Maps the IR's nonlinear ops onto the suite-independent protocols (hazmat).

The executor hands over shares for secret arguments and public ring values for public ones;
public arguments are lifted to trivial sharings here. Ops whose arguments are all public are
evaluated in plaintext by :func:`public_nonlinear`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smc.config import FixedPointConfig
from smc.encoding import decode_fixed, encode_fixed, encode_int
from smc.ir import Node
from smc.protocols import binary, nonlinear, numeric
from smc.protocols.base import Proto, lockstep
from smc.protocols.suite import Share, Suite, map_share
from smc.ring import U64, to_signed

SENTINEL = 1 << 62  # above every encodable value (|x| < 2^62), still an exact sign test away


def lift(s: Suite, value: Any, secret: bool, shape: tuple[int, ...]) -> Share:
    """A share of ``shape``: secret shares are broadcast, public values become trivial shares."""
    if s.components == 0:
        return ()  # the dealer holds no shares
    if secret:
        return map_share(value, lambda c: np.array(np.broadcast_to(c, shape)))  # keeps 0-d
    zeros = tuple(np.zeros(shape, dtype=np.uint64) for _ in range(s.components))
    return s.add_public(zeros, np.asarray(value, dtype=np.uint64))


def start_nonlinear(
    s: Suite, label: str, node: Node, args: list[Node], values: list[Any], f: int
) -> Proto[Any]:
    op, attrs, shape = node.op, node.attrs, node.shape
    if op == "cmp":
        a = lift(s, values[0], args[0].secret, shape)
        b = lift(s, values[1], args[1].secret, shape)
        return nonlinear.compare(s, label, attrs["rel"], s.sub(a, b), shape)
    if op == "where":
        c, a, b = (lift(s, v, n.secret, shape) for v, n in zip(values, args, strict=True))
        return nonlinear.select(s, label, c, a, b, shape)
    if op in ("abs", "relu"):
        return nonlinear.abs_relu(s, label, op, lift(s, values[0], True, shape), shape)
    if op == "reduce":
        return _reduce(s, label, node, args[0], values[0])
    if op == "sort":
        table = map_share(values[0], lambda c: c.reshape(-1, 1))
        return _reshaped(
            nonlinear.sort_rows(
                s, label, table, (shape[0], 1), 0, bool(attrs.get("descending")), SENTINEL
            ),
            shape,
        )
    if op == "sort_rows":
        return nonlinear.sort_rows(
            s, label, values[0], shape, attrs["key"], bool(attrs.get("descending")), SENTINEL
        )
    if op == "bits":
        return _bits(s, label, values[0], args[0].shape)
    if op == "bitwise":
        a = lift(s, values[0], args[0].secret, shape)
        b = lift(s, values[1], args[1].secret, shape)
        return _bitwise(s, label, attrs["fn"], a, b, shape)
    return numeric.FUNCTIONS[attrs["fn"]](s, label, values[0], shape, f)


def _reshaped(gen: Proto[Share], shape: tuple[int, ...]) -> Proto[Share]:
    out = yield from gen
    return map_share(out, lambda c: c.reshape(shape))


def _reduce(s: Suite, label: str, node: Node, arg: Node, value: Share) -> Proto[Share]:
    axis = node.attrs.get("axis")
    if axis is None:
        moved = map_share(value, lambda c: c.reshape(-1))
        work = (arg.size,)
    else:
        moved = map_share(value, lambda c: np.ascontiguousarray(np.moveaxis(c, axis, -1)))
        ax = axis % len(arg.shape)
        work = (*arg.shape[:ax], *arg.shape[ax + 1 :], arg.shape[ax])
    best, index = yield from nonlinear.reduce_last(s, label, node.attrs["fn"], moved, work)
    out = index if node.attrs["fn"].startswith("arg") else best
    assert out is not None
    return map_share(out, lambda c: np.ascontiguousarray(c).reshape(node.shape))


def _bits(s: Suite, label: str, value: Share, shape: tuple[int, ...]) -> Proto[Share]:
    words = yield from s.a2b(f"{label}/a2b", value, shape)
    j = np.arange(64, dtype=np.uint64)
    expanded = tuple((c.reshape(*shape, 1) >> j) & np.uint64(1) for c in words)
    return (yield from s.b2a_bit(f"{label}/b2a", expanded, (*shape, 64)))


def _bitwise(
    s: Suite, label: str, fn: str, a: Share, b: Share, shape: tuple[int, ...]
) -> Proto[Share]:
    wa, wb = yield from lockstep([s.a2b(f"{label}/a", a, shape), s.a2b(f"{label}/b", b, shape)])
    if fn == "xor":
        out = s.b_xor(wa, wb)
    else:
        (both,) = yield from lockstep([s.b_and(f"{label}/and", wa, wb, shape)])
        out = both if fn == "and" else s.b_xor(s.b_xor(wa, wb), both)
    return (yield from binary.b2a_word(s, f"{label}/b2a", out, shape))


# ----------------------------------------------------------------------------------- plaintext


def _public_exp(v: np.ndarray) -> np.ndarray:
    """exp with the secret version's out-of-domain behaviour: 0 below -32 ln 2, 2^16 from
    16 ln 2 on (see smc.protocols.numeric.exp)."""
    y = v * np.log2(np.e)
    out = np.exp(np.clip(v, -50.0, 50.0))
    return np.where(
        y >= numeric.EXP_HIGH, 2.0**numeric.EXP_HIGH, np.where(y < numeric.EXP_LOW, 0.0, out)
    )


def public_nonlinear(node: Node, args: list[Node], values: list[U64], f: int) -> U64:
    """The same ops on public values, computed in the clear (used when no argument is secret)."""
    fp = FixedPointConfig(f)

    def real(v: U64, n: Node) -> np.ndarray:
        return decode_fixed(v, fp) if n.dtype == "fixed" else to_signed(v).astype(np.float64)

    def back(x: np.ndarray, dtype: str) -> U64:
        return (
            encode_fixed(x, fp) if dtype == "fixed" else encode_int(np.asarray(x).astype(np.int64))
        )

    op, attrs = node.op, node.attrs
    signed = [to_signed(v) for v in values]
    if op == "cmp":
        rel: Any = {
            "lt": np.less,
            "le": np.less_equal,
            "gt": np.greater,
            "ge": np.greater_equal,
            "eq": np.equal,
            "ne": np.not_equal,
        }[attrs["rel"]]
        return back(rel(signed[0], signed[1]).astype(np.int64), "int")
    if op == "where":
        return np.where(signed[0] != 0, values[1], values[2]).astype(np.uint64)
    if op == "abs":
        return np.abs(signed[0]).view(np.uint64)
    if op == "relu":
        return np.maximum(signed[0], 0).view(np.uint64)
    if op == "reduce":
        fn: Any = {"max": np.max, "min": np.min, "argmax": np.argmax, "argmin": np.argmin}[
            attrs["fn"]
        ]
        kw: dict[str, Any] = {"axis": attrs.get("axis")}
        if attrs.get("keepdims"):
            kw["keepdims"] = True
        return np.asarray(fn(signed[0], **kw)).astype(np.int64).view(np.uint64).reshape(node.shape)
    if op in ("sort", "sort_rows"):
        key = signed[0] if op == "sort" else signed[0][:, attrs["key"]]
        order = np.argsort(key, kind="stable")
        if attrs.get("descending"):
            order = order[::-1]
        return values[0][order]
    if op == "bits":
        return ((values[0][..., None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(
            np.uint64
        )
    if op == "bitwise":
        fn2 = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[attrs["fn"]]
        return np.asarray(fn2(values[0], values[1]), dtype=np.uint64)
    x = real(values[0], args[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        funcs: dict[str, Any] = {
            "reciprocal": lambda v: np.divide(1.0, v, out=np.zeros_like(v), where=v != 0),
            "sqrt": np.sqrt,
            "rsqrt": lambda v: 1 / np.sqrt(v),
            "exp": _public_exp,
            "log": np.log,
            "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
            "tanh": np.tanh,
        }
        out = funcs[attrs["fn"]](x)
    return back(out, "fixed")
