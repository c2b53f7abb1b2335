"""Local datasets and the binding of a program's inputs to them.

A program input is named by the analyst; the manifest may bind it explicitly to a dataset and
columns of the owning party, otherwise the name decides:

* ``"patients"`` reads the dataset ``patients`` (all its columns; one column gives a vector);
* ``"patients.age"`` reads column ``age`` of dataset ``patients``.

A dataset is a table with named columns (CSV, a SQLite query, Parquet) or an ``.npy`` array:

* CSV: a header row names the columns;
* SQLite: the result of one read-only query (``path`` and ``query``). The database is opened
  read-only (``mode=ro``, ``PRAGMA query_only``) and an authorizer lets the statement only read
  tables and call functions, so a query that tries to write, attach or set a pragma fails with a
  :class:`DatasetError`, as do several statements in one. Its result columns must be exactly the
  declared ones (by name); each value must be an integer or a real, never NULL, text or a blob;
* Parquet: the declared columns are read with pyarrow (optional: ``pip install 'smc[parquet]'``);
  they must be integer, floating, boolean or decimal columns without nulls.

Files are read when a task is accepted (so an owner can update them between tasks) and checked
against the declared schema: column names, dtypes (an ``int`` column must hold integers), finite
values, the declared row count, and the exact shape the program declares. A SQLite result or a
Parquet file has at most :data:`MAX_ROWS` rows, a CSV file at most :data:`MAX_CSV_BYTES` bytes.
Raw values never leave this module except as the executor's inputs; the SQLite and Parquet
readers name the row and column of a bad value, never the value itself.
"""

from __future__ import annotations

import csv
import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from smc.hub.manifest import Binding
from smc.party.config import TABLE_FORMATS, DatasetConfig, sql_problem

from smc.ir import Node

MAX_CSV_BYTES = 2 << 30
MAX_ROWS = 50_000_000  # rows of a SQLite result or a Parquet file
MAX_QUERY_S = 600.0  # a SQLite query running longer is interrupted
FETCH_ROWS = 10_000

# What a SQLite query may do: read tables, call (built-in) functions, recurse in a WITH.
_SQL_ALLOWED = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_SQL_ACTIONS = {
    getattr(sqlite3, f"SQLITE_{a}"): a
    for a in ("INSERT", "UPDATE", "DELETE", "PRAGMA", "ATTACH", "CREATE_TABLE", "DROP_TABLE")
}
_SQL_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile"})


class DatasetError(ValueError):
    """A dataset that is unknown, unreadable or does not match what the program declares."""


@dataclass(frozen=True)
class BoundInput:
    input: str
    binding: Binding
    value: np.ndarray


def _parse(text: str, dtype: str, where: str) -> float:
    try:
        val = float(text)
    except ValueError:
        raise DatasetError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(val):
        raise DatasetError(f"{where}: non-finite value {text!r}")
    if dtype == "int" and val != int(val):
        raise DatasetError(f"{where}: {text!r} is not an integer (column declared int)")
    return val


def _check_rows(ds: DatasetConfig, arr: np.ndarray, source: str) -> np.ndarray:
    if ds.rows is not None and arr.shape[0] != ds.rows:
        raise DatasetError(f"dataset {ds.name!r} declares {ds.rows} rows, {source} {arr.shape[0]}")
    return arr


def load_csv(ds: DatasetConfig, columns: tuple[str, ...]) -> np.ndarray:
    """The chosen columns as a float64 matrix (rows x columns)."""
    dtypes = dict(ds.columns)
    try:
        if ds.path.stat().st_size > MAX_CSV_BYTES:
            raise DatasetError(
                f"dataset {ds.name!r}: {ds.path.name} is larger than {MAX_CSV_BYTES} bytes"
            )
        with ds.path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in ds.column_names if c not in header]
            if missing:
                raise DatasetError(
                    f"dataset {ds.name!r}: {ds.path.name} lacks declared columns {missing}"
                )
            idx = [header.index(c) for c in columns]
            rows = []
            for line_no, row in enumerate(reader, start=2):
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise DatasetError(
                        f"dataset {ds.name!r}: line {line_no} has {len(row)} fields, "
                        f"the header {len(header)}"
                    )
                rows.append(
                    [
                        _parse(
                            row[i].strip(),
                            dtypes[c],
                            f"dataset {ds.name!r} line {line_no} column {c!r}",
                        )
                        for i, c in zip(idx, columns, strict=True)
                    ]
                )
    except OSError as exc:
        raise DatasetError(f"dataset {ds.name!r}: cannot read {ds.path}: {exc.strerror}") from None
    arr = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(columns))
    return _check_rows(ds, arr, f"{ds.path.name} has")


def _sql_value(val: object, dtype: str, where: str) -> float:
    if val is None:
        raise DatasetError(f"{where} is NULL")
    if isinstance(val, str):
        raise DatasetError(f"{where} holds text, not a number (CAST it in the query)")
    if isinstance(val, bytes):
        raise DatasetError(f"{where} holds a blob, not a number")
    if not isinstance(val, (int, float)):
        raise DatasetError(f"{where} holds a {type(val).__name__}, not a number")
    num = float(val)
    if not math.isfinite(num):
        raise DatasetError(f"{where} is not finite")
    if dtype == "int" and num != int(num):
        raise DatasetError(f"{where} is not an integer (column declared int)")
    return num


def _exists(ds: DatasetConfig) -> None:
    try:
        ds.path.stat()
    except OSError as exc:
        raise DatasetError(f"dataset {ds.name!r}: cannot read {ds.path}: {exc.strerror}") from None


def _connect(ds: DatasetConfig, denied: list[str]) -> sqlite3.Connection:
    """A read-only connection whose statements may only read: ``denied`` collects the rest."""
    _exists(ds)
    try:
        con = sqlite3.connect(
            f"{ds.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
        )
    except sqlite3.Error as exc:
        raise DatasetError(f"dataset {ds.name!r}: cannot open {ds.path}: {exc}") from None
    try:
        con.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        con.close()
        raise DatasetError(f"dataset {ds.name!r}: cannot open {ds.path}: {exc}") from None

    def authorize(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _SQL_DENIED_FUNCTIONS:
            denied.append(f"the function {arg2}()")
            return sqlite3.SQLITE_DENY
        if action in _SQL_ALLOWED:
            return sqlite3.SQLITE_OK
        what = _SQL_ACTIONS.get(action, f"SQLite authorizer action {action}")
        denied.append(f"{what} {arg1!r}" if arg1 else what)
        return sqlite3.SQLITE_DENY

    con.set_authorizer(authorize)
    deadline = time.monotonic() + MAX_QUERY_S
    con.set_progress_handler(lambda: int(time.monotonic() > deadline), 100_000)
    return con


def load_sqlite(ds: DatasetConfig, columns: tuple[str, ...]) -> np.ndarray:
    """The chosen columns of the dataset's query result as a float64 matrix (rows x columns)."""
    problem = sql_problem(ds.query)
    if problem:
        raise DatasetError(f"dataset {ds.name!r}: the query {problem}")
    dtypes = dict(ds.columns)
    denied: list[str] = []
    con = _connect(ds, denied)
    chunks: list[np.ndarray] = []
    n = 0
    try:
        cur = con.execute(ds.query)
        if cur.description is None:
            raise DatasetError(f"dataset {ds.name!r}: the query returns no result table")
        names = [str(d[0]) for d in cur.description]
        dupes = sorted({c for c in names if names.count(c) > 1})
        missing = [c for c in ds.column_names if c not in names]
        extra = [c for c in names if c not in dtypes]
        if dupes or missing or extra:
            raise DatasetError(
                f"dataset {ds.name!r}: the query returns columns {names}, the schema declares "
                f"{list(ds.column_names)}"
                + (f"; missing {missing}" if missing else "")
                + (f"; not declared {extra}" if extra else "")
                + (f"; repeated {dupes}" if dupes else "")
                + " (name the result columns with AS)"
            )
        idx = [names.index(c) for c in columns]
        while rows := cur.fetchmany(FETCH_ROWS):
            if n + len(rows) > MAX_ROWS:
                raise DatasetError(
                    f"dataset {ds.name!r}: the query returns more than {MAX_ROWS} rows"
                )
            chunks.append(
                np.array(
                    [
                        [
                            _sql_value(
                                row[i],
                                dtypes[c],
                                f"dataset {ds.name!r} row {n + r} column {c!r}",
                            )
                            for i, c in zip(idx, columns, strict=True)
                        ]
                        for r, row in enumerate(rows, start=1)
                    ],
                    dtype=np.float64,
                ).reshape(len(rows), len(columns))
            )
            n += len(rows)
    except (sqlite3.Error, sqlite3.Warning) as exc:
        raise DatasetError(_sql_error(ds, exc, denied)) from None
    finally:
        con.close()
    arr = np.concatenate(chunks) if chunks else np.zeros((0, len(columns)))
    return _check_rows(ds, arr, "the query returns")


def _sql_error(ds: DatasetConfig, exc: Exception, denied: list[str]) -> str:
    where = f"dataset {ds.name!r}"
    msg = str(exc)
    if denied:
        return (
            f"{where}: the query may only read (a single SELECT); it tries "
            f"{', '.join(dict.fromkeys(denied))}"
        )
    if "readonly" in msg or "read-only" in msg:
        return f"{where}: the database is opened read-only and the query tried to write ({msg})"
    if "one statement at a time" in msg:
        return f"{where}: the query holds more than one statement; give a single SELECT"
    if msg == "interrupted":
        return f"{where}: the query ran longer than {MAX_QUERY_S:g} s and was stopped"
    return f"{where}: SQL error in {ds.path.name}: {msg}"


def _pyarrow(ds: DatasetConfig) -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(
            f"dataset {ds.name!r} is Parquet, which needs pyarrow: pip install 'smc[parquet]'"
        ) from None
    return pa, pq


def _first(mask: np.ndarray) -> int:
    """The 1-based row of the first True in ``mask``."""
    return int(np.flatnonzero(mask)[0]) + 1


def load_parquet(ds: DatasetConfig, columns: tuple[str, ...]) -> np.ndarray:
    """The chosen columns of a Parquet file as a float64 matrix (rows x columns)."""
    pa, pq = _pyarrow(ds)
    _exists(ds)
    dtypes = dict(ds.columns)
    try:
        with pq.ParquetFile(ds.path) as pf:
            names = list(pf.schema_arrow.names)
            missing = [c for c in ds.column_names if c not in names]
            if missing:
                raise DatasetError(
                    f"dataset {ds.name!r}: {ds.path.name} lacks declared columns {missing}"
                )
            if pf.metadata.num_rows > MAX_ROWS:
                raise DatasetError(
                    f"dataset {ds.name!r}: {ds.path.name} has more than {MAX_ROWS} rows"
                )
            table = pf.read(columns=list(columns))
    except DatasetError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DatasetError(f"dataset {ds.name!r}: cannot read {ds.path}: {reason}") from None
    except (pa.ArrowException, ValueError) as exc:
        raise DatasetError(
            f"dataset {ds.name!r}: {ds.path.name} is not a readable Parquet file: {exc}"
        ) from None
    out = np.empty((table.num_rows, len(columns)), dtype=np.float64)
    for j, c in enumerate(columns):
        col = table.column(c)
        where = f"dataset {ds.name!r} column {c!r}"
        row = f"dataset {ds.name!r} row {{}} column {c!r}"
        typ = col.type
        if pa.types.is_decimal(typ):
            col = col.cast(pa.float64())
        elif not (
            pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)
        ):
            raise DatasetError(f"{where} has Parquet type {typ}, not a number")
        if col.null_count:
            nulls = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            raise DatasetError(f"{row.format(_first(nulls))} is null")
        vals = np.asarray(col.to_numpy(), dtype=np.float64)
        finite = np.isfinite(vals)
        if not finite.all():
            raise DatasetError(f"{row.format(_first(~finite))} is not finite")
        if dtypes[c] == "int":
            frac = vals != np.rint(vals)
            if frac.any():
                raise DatasetError(
                    f"{row.format(_first(frac))} is not an integer (column declared int)"
                )
        out[:, j] = vals
    return _check_rows(ds, out, f"{ds.path.name} has")


def load_table(ds: DatasetConfig, columns: Sequence[str]) -> np.ndarray:
    """The chosen columns of a CSV, SQLite or Parquet dataset as a float64 matrix."""
    loader = {"csv": load_csv, "sqlite": load_sqlite, "parquet": load_parquet}[ds.format]
    return loader(ds, tuple(columns))


def load_npy(ds: DatasetConfig) -> np.ndarray:
    try:
        arr = cast(np.ndarray, np.load(ds.path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"dataset {ds.name!r}: cannot read {ds.path}: {exc}") from None
    if arr.dtype.kind not in "iuf" and arr.dtype != np.bool_:
        raise DatasetError(f"dataset {ds.name!r}: .npy dtype {arr.dtype} is not numeric")
    if arr.shape != ds.shape:
        raise DatasetError(f"dataset {ds.name!r}: declared shape {ds.shape}, file has {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DatasetError(f"dataset {ds.name!r}: contains NaN or infinite values")
    if ds.dtype == "int" and arr.dtype.kind == "f" and not np.all(arr == np.rint(arr)):
        raise DatasetError(f"dataset {ds.name!r} is declared int but holds non-integers")
    return arr


def resolve(node: Node, explicit: Binding | None, datasets: dict[str, DatasetConfig]) -> Binding:
    name = node.attrs["name"]
    if explicit is not None:
        binding = explicit
    elif name in datasets:
        binding = Binding(name)
    elif "." in name:
        ds, col = name.split(".", 1)
        binding = Binding(ds, (col,))
    else:
        binding = Binding(name)
    if binding.dataset not in datasets:
        raise DatasetError(
            f"input {name!r}: unknown dataset {binding.dataset!r}; this party offers "
            f"{sorted(datasets) or 'no datasets'}"
        )
    return binding


def bind(node: Node, explicit: Binding | None, datasets: dict[str, DatasetConfig]) -> BoundInput:
    """Read the data for one of this party's input nodes; refuses any mismatch with a reason."""
    name = node.attrs["name"]
    binding = resolve(node, explicit, datasets)
    ds = datasets[binding.dataset]
    if ds.format in TABLE_FORMATS:
        columns = binding.columns or ds.column_names
        unknown = [c for c in columns if c not in ds.column_names]
        if unknown:
            raise DatasetError(
                f"input {name!r}: dataset {ds.name!r} has no columns {unknown}; "
                f"its schema is {list(ds.column_names)}"
            )
        kinds = {c: k for c, k in ds.columns}
        if node.dtype == "int" and any(kinds[c] != "int" for c in columns):
            raise DatasetError(
                f"input {name!r} is read as int but dataset {ds.name!r} declares "
                f"{[kinds[c] for c in columns]}"
            )
        mat = load_table(ds, columns)
        value = mat[:, 0] if len(columns) == 1 else mat
    else:
        if binding.columns:
            raise DatasetError(
                f"input {name!r}: dataset {ds.name!r} is an array, it has no columns"
            )
        if node.dtype == "int" and ds.dtype != "int":
            raise DatasetError(
                f"input {name!r} is read as int but dataset {ds.name!r} is {ds.dtype}"
            )
        value = load_npy(ds)
    if value.shape != node.shape:
        raise DatasetError(
            f"input {name!r}: the program declares shape {node.shape}, dataset "
            f"{ds.name!r} gives {value.shape}"
        )
    return BoundInput(name, binding, value)


def describe(datasets: dict[str, DatasetConfig]) -> list[str]:
    """What a party tells the hub about its datasets: names and schema, never values, paths or
    queries. A table (CSV, SQLite, Parquet) gives ``name(col:dtype,...)``, an array
    ``name(dtype[shape])``."""
    out = []
    for ds in datasets.values():
        schema = (
            ",".join(f"{c}:{k}" for c, k in ds.columns)
            if ds.format in TABLE_FORMATS
            else f"{ds.dtype}{list(ds.shape)}"
        )
        out.append(f"{ds.name}({schema})")
    return out
