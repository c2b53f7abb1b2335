"""Library circuits by name, rebuilt from JSON parameters.

A deployment lets a data owner allow computations *by circuit name* (``circuits =
["auction.vickrey"]`` in a dataset policy) instead of by program hash. The analyst submits the
program together with a claim ``(name, params)``; every party rebuilds the program locally with
:func:`build` and accepts the claim only if the rebuilt program's hash equals the hash of the
program it received. Parameters are plain JSON values (objects, lists, strings, numbers,
booleans, null), so a claim selects code the party already has and never carries code.

``CIRCUITS[name](params)`` returns the :class:`~smc.circuits.base.BuiltProgram` of that circuit,
with ``circuit`` set to ``name`` and ``params`` to the canonical parameters (what goes into the
manifest: ``client.run(built.program, circuit=(built.circuit, built.params), ...)``).

Rules every circuit follows, so that the client and every party build the same program:

* ``parties`` (required) lists the computing parties in program order; per-party counts such as
  ``rows`` are taken in that order (JSON objects have no order of their own);
* an unknown or mistyped parameter is refused (:class:`CircuitParamsError`), never ignored;
* ``to`` names the recipient party (a string, a list, or null for every party).

Input-only parties (``input_only`` in auctions and elections) contribute one value each as
additive shares (:func:`~smc.circuits.blocks.client_input`): bidder ``x`` contributes ``bid_x``,
voter ``x`` contributes ``ballot_x``. Bids and ballots are numbered in this order: those of the
computing parties' datasets (in ``parties`` order), then client-shared ones (``bids``/``ballots``
given as a number), then the input-only parties in ``input_only`` order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import smc
from smc.errors import ProgramError

from .auction import AuctionSpec, _auction, build_auction
from .base import BuiltProgram
from .blocks import client_input
from .federated import FedAvgSpec, build_federated_average
from .inference import MLPSpec, ScoringSpec, build_mlp, build_scoring
from .join import JoinSpec, build_join
from .ml import (
    LinearRegressionSpec,
    LogisticRegressionSpec,
    build_linear_regression,
    build_logistic_regression,
)
from .stats import Predicate, StatsSpec, build_stats
from .voting import ElectionSpec, _validity, build_election

Params = dict[str, Any]
Builder = Callable[[Mapping[str, Any]], BuiltProgram]
_REQUIRED = object()
T = TypeVar("T")


class CircuitParamsError(ProgramError):
    """Parameters a circuit cannot be built from (unknown, missing or of the wrong type)."""


def canonical(params: Mapping[str, Any]) -> Params:
    """``params`` as every party will see them after the manifest's canonical JSON: objects
    with sorted string keys, lists for tuples, plain ints, floats, strings, booleans and null.
    Refuses anything JSON cannot carry exactly (numpy integers, NaN, sets, ...)."""
    if not isinstance(params, Mapping):
        raise CircuitParamsError(f"circuit parameters must be an object, got {type(params)}")
    out: Params = _plain(params, "params")
    return out


def _plain(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CircuitParamsError(f"{where}: {value} is not a JSON number")
        return float(value)
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise CircuitParamsError(f"{where}: object keys must be strings")
        return {k: _plain(value[k], f"{where}.{k}") for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise CircuitParamsError(
        f"{where}: circuit parameters must be plain JSON values, got {type(value).__name__}"
    )


class _Reader:
    """Takes typed parameters out of a params object; :meth:`done` refuses leftovers."""

    def __init__(self, circuit: str, params: Mapping[str, Any]) -> None:
        self.circuit = circuit
        self.left = dict(params)
        self.known: list[str] = []

    def _fail(self, key: str, what: str) -> CircuitParamsError:
        return CircuitParamsError(f"circuit {self.circuit!r}: parameter {key!r} {what}")

    def raw(self, key: str, default: Any) -> Any:
        self.known.append(key)
        if key not in self.left:
            if default is _REQUIRED:
                raise self._fail(key, "is required")
            return default
        return self.left.pop(key)

    def integer(self, key: str, default: Any = _REQUIRED) -> Any:
        v = self.raw(key, default)
        if v is not default and (not isinstance(v, int) or isinstance(v, bool)):
            raise self._fail(key, f"must be an integer, got {v!r}")
        return v

    def number(self, key: str, default: Any = _REQUIRED) -> Any:
        v = self.raw(key, default)
        if v is not default and (not isinstance(v, (int, float)) or isinstance(v, bool)):
            raise self._fail(key, f"must be a number, got {v!r}")
        return float(v) if isinstance(v, int) and v is not default else v

    def text(self, key: str, default: Any = _REQUIRED) -> Any:
        v = self.raw(key, default)
        if v is not default and not isinstance(v, str):
            raise self._fail(key, f"must be a string, got {v!r}")
        return v

    def flag(self, key: str, default: Any = _REQUIRED) -> Any:
        v = self.raw(key, default)
        if v is not default and not isinstance(v, bool):
            raise self._fail(key, f"must be true or false, got {v!r}")
        return v

    def names(self, key: str, default: Any = _REQUIRED) -> Any:
        v = self.raw(key, default)
        if v is default:
            return v
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise self._fail(key, f"must be a list of names, got {v!r}")
        if len(set(v)) != len(v):
            raise self._fail(key, f"names a party twice: {v!r}")
        return list(v)

    def input_only(self, parties: list[str]) -> list[str]:
        """``input_only``: contributors who are not computing parties (may be empty)."""
        names: list[str] = self.names("input_only", [])
        clash = sorted(set(names) & set(parties))
        if clash:
            raise self._fail("input_only", f"names computing parties {clash}")
        return names

    def nums(self, key: str, default: Any = ()) -> tuple[float, ...]:
        v = self.raw(key, default)
        if v is default:
            return tuple(default)
        if not isinstance(v, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v
        ):
            raise self._fail(key, f"must be a list of numbers, got {v!r}")
        return tuple(float(x) for x in v)

    def parties(self) -> list[str]:
        parties: list[str] = self.names("parties")
        if not parties:
            raise self._fail("parties", "must name at least one computing party")
        return parties

    def party(self, key: str, parties: list[str]) -> str:
        v: str = self.text(key)
        if v not in parties:
            raise self._fail(key, f"must be one of the parties {parties}, got {v!r}")
        return v

    def to(self, parties: list[str]) -> str | list[str] | None:
        v = self.raw("to", None)
        if v is None:
            return None
        who = [v] if isinstance(v, str) else v
        if not isinstance(who, list) or not all(isinstance(x, str) for x in who):
            raise self._fail("to", f"must be a party, a list of parties or null, got {v!r}")
        unknown = [x for x in who if x not in parties]
        if unknown:
            raise self._fail("to", f"names {unknown}, who are not parties {parties}")
        return v if isinstance(v, str) else list(v)

    def counts(self, key: str, parties: list[str], default: Any = _REQUIRED) -> Any:
        """A ``party -> count`` object, re-ordered as ``parties``."""
        v = self.raw(key, default)
        if v is default:
            return v
        return self._counts(key, v, parties)

    def _counts(self, key: str, v: Any, parties: list[str]) -> dict[str, int]:
        if not isinstance(v, dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in v.values()
        ):
            raise self._fail(key, f"must map parties to counts >= 0, got {v!r}")
        unknown = sorted(set(v) - set(parties))
        if unknown:
            raise self._fail(key, f"names {unknown}, who are not parties {parties}")
        return {p: v[p] for p in parties if p in v}

    def counts_or_total(self, key: str, parties: list[str]) -> dict[str, int] | int | None:
        """A ``party -> count`` object (data of computing parties) or a number (values shared by
        clients), or None when absent."""
        v = self.raw(key, None)
        if v is None:
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            if v < 1:
                raise self._fail(key, f"must be at least 1, got {v}")
            return v
        return self._counts(key, v, parties)

    def frac_bits(self) -> int:
        f: int = self.integer("frac_bits", 16)
        return f

    def done(self) -> None:
        if self.left:
            raise CircuitParamsError(
                f"circuit {self.circuit!r}: unknown parameters {sorted(self.left)}; it takes "
                f"{sorted(self.known)}"
            )


def _guard(circuit: str, make: Callable[[], T]) -> T:
    """Run a spec constructor, naming the circuit in its error."""
    try:
        return make()
    except CircuitParamsError:
        raise
    except (ProgramError, TypeError, ValueError) as exc:
        raise CircuitParamsError(f"circuit {circuit!r}: {exc}") from None


CIRCUITS: dict[str, Builder] = {}


def _register(name: str) -> Callable[[Callable[[_Reader], BuiltProgram]], Builder]:
    def wrap(fn: Callable[[_Reader], BuiltProgram]) -> Builder:
        def build_circuit(params: Mapping[str, Any]) -> BuiltProgram:
            clean = canonical(params)
            reader = _Reader(name, clean)
            built = fn(reader)
            return dataclasses.replace(built, circuit=name, params=clean)

        build_circuit.__name__ = build_circuit.__qualname__ = f"build_{name.replace('.', '_')}"
        build_circuit.__doc__ = fn.__doc__
        CIRCUITS[name] = build_circuit
        return build_circuit

    return wrap


def build(name: str, params: Mapping[str, Any]) -> BuiltProgram:
    """The program of library circuit ``name`` with ``params`` (see the module docstring)."""
    try:
        fn = CIRCUITS[name]
    except KeyError:
        raise CircuitParamsError(
            f"unknown circuit {name!r}; the library has {sorted(CIRCUITS)}"
        ) from None
    return fn(params)


def names() -> list[str]:
    return sorted(CIRCUITS)


# ------------------------------------------------------------------------------ statistics


@_register("stats")
def _stats(r: _Reader) -> BuiltProgram:
    """Statistics over rows (:func:`~smc.circuits.stats.build_stats`). ``rows``: party -> rows
    it holds; ``where``: a list of ``{"column", "op", "value"}``; every other parameter is the
    :class:`~smc.circuits.stats.StatsSpec` field of the same name."""
    parties = r.parties()
    rows = r.counts("rows", parties)
    raw_where = r.raw("where", [])
    if not isinstance(raw_where, list) or not all(
        isinstance(w, dict) and set(w) == {"column", "op", "value"} for w in raw_where
    ):
        raise r._fail("where", "must be a list of {'column', 'op', 'value'} objects")
    default = StatsSpec()
    stats = r.names("stats", list(default.stats))
    kw = {
        "column": r.text("column", default.column),
        "stats": tuple(stats),
        "bins": r.nums("bins"),
        "quantiles": r.nums("quantiles"),
        "k": r.integer("k", default.k),
        "ddof": r.integer("ddof", default.ddof),
        "min_contributors": r.integer("min_contributors", default.min_contributors),
        "min_count": r.integer("min_count", default.min_count),
        "value_bound": r.number("value_bound", default.value_bound),
    }
    to, frac_bits = r.to(parties), r.frac_bits()
    r.done()
    spec = _guard(
        r.circuit,
        lambda: StatsSpec(
            where=tuple(Predicate(w["column"], w["op"], float(w["value"])) for w in raw_where),
            **kw,
        ),
    )
    return _guard(r.circuit, lambda: build_stats(rows, spec, parties, to, frac_bits))


# -------------------------------------------------------------------------------- auctions


def _auction_circuit(kind: str | None, reverse: bool) -> Callable[[_Reader], BuiltProgram]:
    def make(r: _Reader) -> BuiltProgram:
        parties = r.parties()
        bidders = r.counts_or_total("bidders", parties)
        input_only = r.input_only(parties)
        spec = _guard(
            r.circuit,
            lambda: AuctionSpec(
                kind=kind or r.text("kind", "first"),
                reverse=reverse,
                max_bid=r.integer("max_bid", 2**30),
                reserve=r.integer("reserve", None),
            ),
        )
        to = r.to(parties)
        r.done()
        if not input_only:
            if bidders is None:
                raise r._fail("bidders", "or 'input_only' must give at least one bid")
            return _guard(r.circuit, lambda: build_auction(bidders, spec, parties, to))
        b = smc.ProgramBuilder(parties)
        parts: list[smc.SecureArray] = []
        if isinstance(bidders, int):
            parts.append(client_input(b, "bids", (bidders,)))
        elif bidders:
            parts += [b.input(p, "bids", (n,), "int") for p, n in bidders.items() if n > 0]
        parts += [client_input(b, f"bid_{who}", (1,)) for who in input_only]
        bids = parts[0] if len(parts) == 1 else smc.concatenate(parts)
        winner, price = _guard(r.circuit, lambda: _auction(b, spec, bids))
        b.output("winner", winner, to=to)
        b.output("price", price, to=to)
        return BuiltProgram.of(b.build(), r.circuit)

    make.__doc__ = (
        "Sealed-bid auction (:func:`~smc.circuits.auction.build_auction`). ``bidders``: "
        "party -> number of bids from its dataset (input ``bids``), or a number of client-shared "
        "bids; ``input_only``: parties contributing one bid each (``bid_<name>``); ``max_bid``, "
        "``reserve``" + ("" if kind else ", ``kind`` ('first' or 'second')") + "."
    )
    return make


_register("auction.first_price")(_auction_circuit("first", False))
_register("auction.vickrey")(_auction_circuit("second", False))
_register("auction.reverse")(_auction_circuit(None, True))


# ---------------------------------------------------------------------------------- voting


def _election_circuit(kind: str) -> Callable[[_Reader], BuiltProgram]:
    def make(r: _Reader) -> BuiltProgram:
        parties = r.parties()
        ballots = r.counts_or_total("ballots", parties)
        input_only = r.input_only(parties)
        spec = _guard(
            r.circuit,
            lambda: ElectionSpec(
                candidates=r.integer("candidates"),
                kind=kind,
                max_approvals=r.integer("max_approvals", None) if kind == "approval" else None,
                reveal=r.text("reveal", "tally"),
            ),
        )
        to = r.to(parties)
        r.done()
        if not input_only:
            if ballots is None:
                raise r._fail("ballots", "or 'input_only' must give at least one ballot")
            return _guard(r.circuit, lambda: build_election(ballots, spec, parties, to))
        c = spec.candidates
        b = smc.ProgramBuilder(parties)
        parts: list[smc.SecureArray] = []
        if isinstance(ballots, int):
            parts.append(client_input(b, "ballots", (ballots, c)))
        elif ballots:
            parts += [b.input(p, "ballots", (n, c), "int") for p, n in ballots.items() if n > 0]
        parts += [client_input(b, f"ballot_{who}", (1, c)) for who in input_only]
        rows = parts[0] if len(parts) == 1 else smc.concatenate(parts)
        valid = _validity(spec, rows)
        tally = valid @ rows
        if spec.reveal in ("tally", "both"):
            b.output("tally", tally, to=to)
        if spec.reveal in ("winner", "both"):
            b.output("winner", tally.argmax(), to=to)
        b.output("invalid", rows.shape[0] - valid.sum(), to=to)
        return BuiltProgram.of(b.build(), r.circuit)

    make.__doc__ = (
        f"{kind.capitalize()} election (:func:`~smc.circuits.voting.build_election`). "
        "``candidates``; ``ballots``: party -> number of ballot rows from its dataset (input "
        "``ballots``), or a number of client-shared ballots; ``input_only``: parties casting one "
        "ballot each (``ballot_<name>``); ``reveal``"
        + (", ``max_approvals``." if kind == "approval" else ".")
    )
    return make


_register("voting.plurality")(_election_circuit("plurality"))
_register("voting.approval")(_election_circuit("approval"))


# ------------------------------------------------------------------------------------ joins


def _join_circuit(stats: tuple[str, ...] | None) -> Callable[[_Reader], BuiltProgram]:
    def make(r: _Reader) -> BuiltProgram:
        parties = r.parties()
        left, right = r.party("left", parties), r.party("right", parties)
        n_left, n_right = r.integer("n_left"), r.integer("n_right")
        chosen = stats or tuple(r.names("stats"))
        default = JoinSpec()
        side, bound = default.value_side, default.value_bound
        if {"sum", "mean"} & set(chosen):  # only then is there a value column
            side, bound = r.text("value_side", side), r.number("value_bound", bound)
        method, min_size = r.text("method", default.method), r.integer("min_size", 0)
        spec = _guard(r.circuit, lambda: JoinSpec(chosen, side, method, min_size, bound))
        to, frac_bits = r.to(parties), r.frac_bits()
        r.done()
        return _guard(
            r.circuit,
            lambda: build_join(left, right, n_left, n_right, spec, parties, to, frac_bits),
        )

    make.__doc__ = (
        "Join on identifiers (:func:`~smc.circuits.join.build_join`): ``left``/``right`` bind "
        "``ids`` (``n_left``/``n_right``); ``method``, ``min_size``"
        + ("" if stats == ("size",) else ", ``value_side`` (binds ``values``), ``value_bound``")
        + ("" if stats else ", ``stats``")
        + "."
    )
    return make


_register("join.intersection_size")(_join_circuit(("size",)))
_register("join.sum")(_join_circuit(("sum",)))
_register("join.aggregate")(_join_circuit(None))


# ------------------------------------------------------------------------ machine learning


@_register("ml.linear_regression")
def _linear(r: _Reader) -> BuiltProgram:
    """Linear regression (:func:`~smc.circuits.ml.build_linear_regression`): ``rows``: party ->
    rows (it binds ``X`` and ``y``); ``features``, ``fit_intercept``, ``ridge``."""
    parties = r.parties()
    rows = r.counts("rows", parties)
    spec = _guard(
        r.circuit,
        lambda: LinearRegressionSpec(
            features=r.integer("features"),
            fit_intercept=r.flag("fit_intercept", True),
            ridge=r.number("ridge", 0.0),
        ),
    )
    to, frac_bits = r.to(parties), r.frac_bits()
    r.done()
    return _guard(r.circuit, lambda: build_linear_regression(rows, spec, parties, to, frac_bits))


@_register("ml.logistic_regression")
def _logistic(r: _Reader) -> BuiltProgram:
    """Logistic regression training (:func:`~smc.circuits.ml.build_logistic_regression`):
    ``rows``; ``features``, ``epochs``, ``batch_size``, ``learning_rate``, ``l2``,
    ``fit_intercept``."""
    parties = r.parties()
    rows = r.counts("rows", parties)
    default = LogisticRegressionSpec(features=1)
    spec = _guard(
        r.circuit,
        lambda: LogisticRegressionSpec(
            features=r.integer("features"),
            epochs=r.integer("epochs", default.epochs),
            batch_size=r.integer("batch_size", default.batch_size),
            learning_rate=r.number("learning_rate", default.learning_rate),
            l2=r.number("l2", default.l2),
            fit_intercept=r.flag("fit_intercept", default.fit_intercept),
        ),
    )
    to, frac_bits = r.to(parties), r.frac_bits()
    r.done()
    return _guard(r.circuit, lambda: build_logistic_regression(rows, spec, parties, to, frac_bits))


@_register("ml.scoring")
def _scoring(r: _Reader) -> BuiltProgram:
    """Linear or logistic-regression inference (:func:`~smc.circuits.inference.build_scoring`):
    ``model_owner`` binds ``coef`` and ``intercept``, ``data_owner`` binds ``X`` (``rows`` x
    ``features``); ``link``, ``output``, ``threshold``."""
    parties = r.parties()
    model, data = r.party("model_owner", parties), r.party("data_owner", parties)
    rows = r.integer("rows")
    default = ScoringSpec(features=1)
    spec = _guard(
        r.circuit,
        lambda: ScoringSpec(
            features=r.integer("features"),
            link=r.text("link", default.link),
            output=r.text("output", default.output),
            threshold=r.number("threshold", default.threshold),
        ),
    )
    to, frac_bits = r.to(parties), r.frac_bits()
    r.done()
    return _guard(r.circuit, lambda: build_scoring(model, data, rows, spec, parties, to, frac_bits))


@_register("ml.mlp_inference")
def _mlp(r: _Reader) -> BuiltProgram:
    """MLP inference (:func:`~smc.circuits.inference.build_mlp`): ``model_owner`` binds
    ``W{i}``/``b{i}``, ``data_owner`` binds ``X`` (``rows`` x ``sizes[0]``); ``sizes``,
    ``output`` ('logits' or 'class')."""
    parties = r.parties()
    model, data = r.party("model_owner", parties), r.party("data_owner", parties)
    rows = r.integer("rows")
    sizes = r.raw("sizes", _REQUIRED)
    if not isinstance(sizes, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in sizes
    ):
        raise r._fail("sizes", f"must be a list of layer sizes, got {sizes!r}")
    spec = _guard(r.circuit, lambda: MLPSpec(tuple(sizes), r.text("output", "logits")))
    to, frac_bits = r.to(parties), r.frac_bits()
    r.done()
    return _guard(r.circuit, lambda: build_mlp(model, data, rows, spec, parties, to, frac_bits))


@_register("ml.federated_average")
def _fedavg(r: _Reader) -> BuiltProgram:
    """Federated averaging (:func:`~smc.circuits.federated.build_federated_average`):
    ``contributors`` (default: every party) bind ``update`` (``size``,) and, without public
    ``weights`` (party -> weight), ``weight``; ``clip``, ``value_bound``,
    ``max_total_weight``."""
    parties = r.parties()
    contributors = r.names("contributors", parties)
    unknown = [c for c in contributors if c not in parties]
    if unknown:
        raise r._fail("contributors", f"names {unknown}, who are not parties {parties}")
    weights = r.raw("weights", None)
    if weights is not None and (
        not isinstance(weights, dict)
        or set(weights) != set(contributors)
        or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights.values()
        )
    ):
        raise r._fail("weights", "must map every contributor to a number, or be null")
    default = FedAvgSpec(size=1)
    spec = _guard(
        r.circuit,
        lambda: FedAvgSpec(
            size=r.integer("size"),
            weights=None if weights is None else {p: float(weights[p]) for p in contributors},
            clip=r.number("clip", None),
            value_bound=r.number("value_bound", default.value_bound),
            max_total_weight=r.integer("max_total_weight", default.max_total_weight),
        ),
    )
    to, frac_bits = r.to(parties), r.frac_bits()
    r.done()
    return _guard(
        r.circuit,
        lambda: build_federated_average(contributors, spec, parties, to, frac_bits),
    )
