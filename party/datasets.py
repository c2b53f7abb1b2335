"""Local datasets and the binding of a program's inputs to them.

A program input is named by the analyst; the manifest may bind it explicitly to a dataset and
columns of the owning party, otherwise the name decides:

* ``"patients"`` reads the dataset ``patients`` (all its columns; one column gives a vector);
* ``"patients.age"`` reads column ``age`` of dataset ``patients``.

Files are read when a task is accepted (so an owner can update them between tasks) and checked
against the declared schema: column names, dtypes (an ``int`` column must hold integers), the
declared row count, and the exact shape the program declares. Raw values never leave this module
except as the executor's inputs.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from typing import cast

import numpy as np
from smc.hub.manifest import Binding
from smc.party.config import DatasetConfig

from smc.ir import Node

MAX_CSV_BYTES = 2 << 30


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
    if ds.rows is not None and arr.shape[0] != ds.rows:
        raise DatasetError(
            f"dataset {ds.name!r} declares {ds.rows} rows, {ds.path.name} has {arr.shape[0]}"
        )
    return arr


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
    if ds.format == "csv":
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
        mat = load_csv(ds, columns)
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
    """What a party tells the hub about its datasets: names and schema, never values."""
    out = []
    for ds in datasets.values():
        schema = (
            ",".join(f"{c}:{k}" for c, k in ds.columns)
            if ds.columns
            else f"{ds.dtype}{list(ds.shape)}"
        )
        out.append(f"{ds.name}({schema})")
    return out
