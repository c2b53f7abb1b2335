"""SQLite-query and Parquet datasets: the values a party reads, and every input it refuses.

The files are real (a SQLite database and a Parquet file written in ``tmp_path``) and every value
is compared with a plaintext numpy reference; the last tests run real daemons on them.
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from smc.hub.manifest import Binding
from smc.party import TaskFailed, config, datasets
from smc.party.launch import LocalDeployment, to_toml

import smc
from smc.ir import Node

PARTIES = ("alice", "bob", "carol")
N = 23  # patients in the clinic database; not a multiple of the fetch size used below
HEAD = {"name": "alice", "cert": "c", "key": "k", "ca": "ca", "hubs": ["h:1"]}
CONSENT_QUERY = "SELECT age, bmi FROM patients WHERE consent = 1 ORDER BY id"


def _patients(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "id": np.arange(N),
        "age": rng.integers(18, 90, N),
        "bmi": np.round(rng.uniform(16, 40, N), 2),
        "consent": (rng.random(N) < 0.7).astype(np.int64),
    }


def _write_clinic(path: Path, data: dict[str, np.ndarray]) -> Path:
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "CREATE TABLE patients (id INTEGER PRIMARY KEY, age INTEGER, bmi REAL, "
            "consent INTEGER, name TEXT)"
        )
        con.executemany(
            "INSERT INTO patients VALUES (?, ?, ?, ?, ?)",
            [
                (int(i), int(a), float(b), int(c), f"patient {i}")
                for i, a, b, c in zip(
                    data["id"], data["age"], data["bmi"], data["consent"], strict=True
                )
            ],
        )
        # one bad value per kind, each in the second row of its group
        con.execute("CREATE TABLE messy (kind TEXT, age, bmi)")
        con.executemany(
            "INSERT INTO messy VALUES (?, ?, ?)",
            [
                ("null", 30, 21.5),
                ("null", 31, None),
                ("text", 30, 21.5),
                ("text", 31, "n/a"),
                ("blob", 30, 21.5),
                ("blob", 31, b"\x00"),
                ("frac", 30, 21.5),
                ("frac", 31.5, 22.0),
                ("inf", 30, 21.5),
                ("inf", 31, float("inf")),
            ],
        )
    con.close()
    return path


def _count(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT count(*) FROM patients").fetchone()[0])
    finally:
        con.close()


def _write_claims(path: Path, seed: int = 1, rows: int = 17) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = {
        "amount": np.round(rng.uniform(10, 500, rows), 3),
        "visits": rng.integers(0, 12, rows).astype(np.int32),
        "urgent": rng.random(rows) < 0.5,
    }
    table = pa.table(
        {**data, "insurer": [f"ins-{i % 3}" for i in range(rows)]}  # a text column, not declared
    )
    pq.write_table(table, path, row_group_size=5)  # several row groups, read back as one
    return data


def _load(tmp_path: Path, tables: dict[str, dict[str, Any]]) -> config.PartyConfig:
    text = to_toml({"party": HEAD, **{f"datasets.{k}": v for k, v in tables.items()}})
    (tmp_path / "party.toml").write_text(text)
    return config.load(tmp_path / "party.toml")


def _node(name: str, shape: tuple[int, ...], dtype: str = "fixed") -> Node:
    return Node(-1, "input", (), shape, dtype, True, {"name": name})


@pytest.fixture
def clinic(tmp_path: Path) -> tuple[config.DatasetConfig, dict[str, np.ndarray]]:
    data = _patients()
    _write_clinic(tmp_path / "clinic.sqlite", data)
    cfg = _load(
        tmp_path,
        {
            "clinic": {
                "path": "clinic.sqlite",
                "query": CONSENT_QUERY,
                "columns": {"age": "int", "bmi": "fixed"},
            }
        },
    )
    return cfg.datasets["clinic"], data


@pytest.fixture
def claims(tmp_path: Path) -> tuple[config.DatasetConfig, dict[str, np.ndarray]]:
    data = _write_claims(tmp_path / "claims.parquet")
    cfg = _load(
        tmp_path,
        {
            "claims": {
                "path": "claims.parquet",
                "columns": {"amount": "fixed", "visits": "int", "urgent": "int"},
            }
        },
    )
    return cfg.datasets["claims"], data


# ------------------------------------------------------------------------------ configuration
def test_config_infers_the_new_formats(tmp_path: Path) -> None:
    cols = {"x": "fixed"}
    cfg = _load(
        tmp_path,
        {
            "a": {"path": "a.sqlite", "query": "SELECT x FROM t", "columns": cols},
            "b": {
                "path": "b.db",
                "query": "WITH q AS (SELECT 1 AS x) SELECT x FROM q",
                "columns": cols,
            },
            "c": {"path": "c.data", "query": "select x from t;", "columns": cols},
            "d": {"path": "d.parquet", "columns": cols, "rows": 4},
            "e": {"path": "e.pq", "columns": cols},
            "f": {"path": "f.bin", "format": "parquet", "columns": cols},
        },
    )
    assert {n: d.format for n, d in cfg.datasets.items()} == {
        "a": "sqlite",
        "b": "sqlite",
        "c": "sqlite",
        "d": "parquet",
        "e": "parquet",
        "f": "parquet",
    }
    assert cfg.datasets["a"].query == "SELECT x FROM t"
    assert cfg.datasets["d"].query == "" and cfg.datasets["d"].rows == 4


@pytest.mark.parametrize(
    "table, message",
    [
        ({"path": "a.sqlite", "columns": {"x": "fixed"}}, "needs its 'query'"),
        ({"path": "a.sqlite", "query": "SELECT x FROM t"}, "SQLite dataset needs its schema"),
        ({"path": "a.parquet"}, "Parquet dataset needs its schema"),
        (
            {"path": "a.csv", "format": "csv", "query": "SELECT 1", "columns": {"x": "fixed"}},
            "'query' is only for SQLite datasets",
        ),
        ({"path": "a.xlsx", "columns": {"x": "fixed"}}, "got the suffix '.xlsx'"),
        ({"path": "a.db", "query": "DELETE FROM t", "columns": {"x": "fixed"}}, "single SELECT"),
        (
            {"path": "a.db", "query": "INSERT INTO t VALUES (1)", "columns": {"x": "fixed"}},
            "single SELECT",
        ),
        (
            {"path": "a.db", "query": "SELECT x FROM t; DROP TABLE t", "columns": {"x": "fixed"}},
            "more than one statement",
        ),
        ({"path": "a.db", "query": 3, "columns": {"x": "fixed"}}, "'query' has the wrong type"),
    ],
)
def test_config_refuses_bad_sql_and_parquet_tables(
    tmp_path: Path, table: dict[str, Any], message: str
) -> None:
    with pytest.raises(config.ConfigFileError, match=message):
        _load(tmp_path, {"d": table})


@pytest.mark.parametrize(
    "query",
    [
        "SELECT x FROM t",
        "  -- the consenting ones\n  select x from t where c = 1 ;  ",
        "/* a; b */ WITH q AS (SELECT 1 AS x) SELECT x FROM q; -- done",
        "SELECT x FROM t WHERE s = 'a;b'",
    ],
)
def test_single_select_statements_pass_the_static_check(query: str) -> None:
    assert config.sql_problem(query) is None


# ------------------------------------------------------------------------------ SQLite: values
def test_sqlite_query_values_match_numpy(
    clinic: tuple[config.DatasetConfig, dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "FETCH_ROWS", 4)  # several fetches, the last one partial
    ds, data = clinic
    keep = data["consent"] == 1
    n = int(keep.sum())
    both = datasets.bind(_node("clinic", (n, 2)), None, {"clinic": ds})
    assert both.binding == Binding("clinic")
    assert both.value.dtype == np.float64
    np.testing.assert_array_equal(both.value, np.column_stack([data["age"], data["bmi"]])[keep])
    age = datasets.bind(_node("clinic.age", (n,), "int"), None, {"clinic": ds})
    np.testing.assert_array_equal(age.value, data["age"][keep])
    bmi = datasets.bind(_node("x", (n,)), Binding("clinic", ("bmi",)), {"clinic": ds})
    np.testing.assert_array_equal(bmi.value, data["bmi"][keep])
    assert _count(ds.path) == N  # reading changed nothing


def test_sqlite_aggregating_and_recursive_queries(
    clinic: tuple[config.DatasetConfig, dict[str, np.ndarray]],
) -> None:
    ds, data = clinic
    grouped = replace(
        ds,
        query="SELECT consent AS age, avg(bmi) AS bmi FROM patients GROUP BY consent "
        "ORDER BY consent",
    )
    got = datasets.load_table(grouped, ("age", "bmi"))
    ref = [[c, data["bmi"][data["consent"] == c].mean()] for c in (0, 1)]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    counting = replace(
        ds,
        query="WITH RECURSIVE r(age, bmi) AS (SELECT 1, 0.5 UNION ALL "
        "SELECT age + 1, bmi * 2 FROM r WHERE age < 5) SELECT age, bmi FROM r",
    )
    np.testing.assert_array_equal(
        datasets.load_table(counting, ("age", "bmi")),
        np.column_stack([np.arange(1, 6), 0.5 * 2.0 ** np.arange(5)]),
    )
    empty = replace(ds, query="SELECT age, bmi FROM patients WHERE age > 1000")
    assert datasets.load_table(empty, ("age", "bmi")).shape == (0, 2)


# ------------------------------------------------------------------------------ SQLite: refusals
@pytest.mark.parametrize(
    "query, message",
    [
        # writes, caught by the static check, the authorizer or the read-only connection
        ("DELETE FROM patients", "must be a single SELECT"),
        ("INSERT INTO patients (age, bmi) VALUES (1, 2)", "must be a single SELECT"),
        ("UPDATE patients SET age = 0", "must be a single SELECT"),
        ("DROP TABLE patients", "must be a single SELECT"),
        ("ATTACH DATABASE 'other.db' AS o", "must be a single SELECT"),
        ("PRAGMA journal_mode = WAL", "must be a single SELECT"),
        ("WITH x AS (SELECT 1) DELETE FROM patients", "may only read .*DELETE 'patients'"),
        (
            "WITH x AS (SELECT 1) INSERT INTO patients (age) SELECT 5 FROM x",
            "may only read .*INSERT 'patients'",
        ),
        ("SELECT load_extension('evil') AS age, 1 AS bmi", "may only read .*load_extension"),
        # several statements
        ("SELECT age, bmi FROM patients; DELETE FROM patients", "more than one statement"),
        ("SELECT age, bmi FROM patients WHERE name = ';'; SELECT 1", "more than one statement"),
        # schema and SQL errors
        ("SELECT age, bmi FROM nowhere", "SQL error in clinic.sqlite: no such table: nowhere"),
        ("SELECT age, weight FROM patients", "SQL error .*no such column: weight"),
        ("SELECT age, bmi FROM patients WHERE", "SQL error .*incomplete input"),
        ("SELECT age, bmi FROM patients ORDER age", "SQL error .*syntax error"),
        ("SELECT age FROM patients", "returns columns \\['age'\\].*missing \\['bmi'\\]"),
        ("SELECT age, bmi, id FROM patients", "not declared \\['id'\\]"),
        ("SELECT age, bmi, age FROM patients", "repeated \\['age'\\]"),
        # values
        ("SELECT age, bmi FROM messy WHERE kind = 'null'", "row 2 column 'bmi' is NULL"),
        ("SELECT age, bmi FROM messy WHERE kind = 'text'", "row 2 column 'bmi' holds text"),
        ("SELECT age, bmi FROM messy WHERE kind = 'blob'", "row 2 column 'bmi' holds a blob"),
        ("SELECT age, bmi FROM messy WHERE kind = 'inf'", "row 2 column 'bmi' is not finite"),
        (
            "SELECT age, bmi FROM messy WHERE kind = 'frac'",
            "row 2 column 'age' is not an integer \\(column declared int\\)",
        ),
        ("SELECT name AS age, bmi FROM patients", "row 1 column 'age' holds text"),
    ],
)
def test_sqlite_refusals(
    clinic: tuple[config.DatasetConfig, dict[str, np.ndarray]], query: str, message: str
) -> None:
    ds, _ = clinic
    bad = replace(ds, query=query)  # past the config's own check: the loader checks again
    with pytest.raises(datasets.DatasetError, match=f"dataset 'clinic'.*{message}"):
        datasets.bind(_node("clinic", (2, 2)), None, {"clinic": bad})
    assert _count(ds.path) == N


def test_sqlite_read_only_connection_is_the_real_guard(
    clinic: tuple[config.DatasetConfig, dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ds, _ = clinic

    class Everything:
        def __contains__(self, _: object) -> bool:
            return True

    # without the static check and with an authorizer that allows anything, a write still fails
    monkeypatch.setattr(datasets, "sql_problem", lambda _: None)
    monkeypatch.setattr(datasets, "_SQL_ALLOWED", Everything())
    for query in ("DELETE FROM patients", "INSERT INTO patients (age) VALUES (1)"):
        with pytest.raises(datasets.DatasetError, match="opened read-only and the query tried"):
            datasets.load_table(replace(ds, query=query), ("age", "bmi"))
    # and below PRAGMA query_only, the connection itself is read-only (mode=ro)
    con = datasets._connect(ds, [])
    try:
        con.execute("PRAGMA query_only = OFF")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            con.execute("DELETE FROM patients")
    finally:
        con.close()
    assert _count(ds.path) == N


def test_sqlite_files_that_cannot_be_read(
    clinic: tuple[config.DatasetConfig, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    ds, _ = clinic
    with pytest.raises(datasets.DatasetError, match=r"cannot read .*No such file"):
        datasets.load_table(replace(ds, path=tmp_path / "gone.sqlite"), ("age",))
    assert not (tmp_path / "gone.sqlite").exists()  # read-only: nothing was created
    (tmp_path / "notes.sqlite").write_text("not a database, just text\n" * 100)
    with pytest.raises(datasets.DatasetError, match="file is not a database"):
        datasets.load_table(replace(ds, path=tmp_path / "notes.sqlite"), ("age",))


def test_sqlite_row_cap_and_declared_rows(
    clinic: tuple[config.DatasetConfig, dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ds, data = clinic
    n = int((data["consent"] == 1).sum())
    with pytest.raises(
        datasets.DatasetError, match=f"declares {n + 1} rows, the query returns {n}"
    ):
        datasets.load_table(replace(ds, rows=n + 1), ("age",))
    assert datasets.load_table(replace(ds, rows=n), ("age",)).shape == (n, 1)
    monkeypatch.setattr(datasets, "FETCH_ROWS", 3)
    monkeypatch.setattr(datasets, "MAX_ROWS", n)
    assert datasets.load_table(ds, ("age",)).shape == (n, 1)  # exactly at the cap
    monkeypatch.setattr(datasets, "MAX_ROWS", n - 1)
    with pytest.raises(datasets.DatasetError, match=f"returns more than {n - 1} rows"):
        datasets.load_table(ds, ("age",))


def test_sqlite_int_input_needs_an_int_column(
    clinic: tuple[config.DatasetConfig, dict[str, np.ndarray]],
) -> None:
    ds, _ = clinic
    with pytest.raises(datasets.DatasetError, match="read as int but dataset 'clinic' declares"):
        datasets.bind(_node("clinic.bmi", (3,), "int"), None, {"clinic": ds})


# ------------------------------------------------------------------------------ Parquet
def test_parquet_values_match_numpy(
    claims: tuple[config.DatasetConfig, dict[str, np.ndarray]],
) -> None:
    ds, data = claims
    rows = len(data["amount"])
    whole = datasets.bind(_node("claims", (rows, 3)), None, {"claims": ds})
    ref = np.column_stack([data["amount"], data["visits"], data["urgent"]]).astype(np.float64)
    np.testing.assert_array_equal(whole.value, ref)
    assert whole.value.dtype == np.float64
    visits = datasets.bind(_node("claims.visits", (rows,), "int"), None, {"claims": ds})
    np.testing.assert_array_equal(visits.value, data["visits"])
    pair = datasets.bind(
        _node("x", (rows, 2)), Binding("claims", ("visits", "amount")), {"claims": ds}
    )
    np.testing.assert_array_equal(pair.value, ref[:, [1, 0]])


def test_parquet_decimal_and_integral_float_columns(tmp_path: Path) -> None:
    import decimal

    prices = [decimal.Decimal("1.25"), decimal.Decimal("-3.50"), decimal.Decimal("100.01")]
    pq.write_table(
        pa.table({"price": pa.array(prices, pa.decimal128(6, 2)), "n": [1.0, 2.0, 7.0]}),
        tmp_path / "p.parquet",
    )
    ds = config.DatasetConfig(
        "p", tmp_path / "p.parquet", "parquet", (("price", "fixed"), ("n", "int"))
    )
    np.testing.assert_array_equal(
        datasets.load_table(ds, ("price", "n")), [[1.25, 1.0], [-3.5, 2.0], [100.01, 7.0]]
    )


@pytest.mark.parametrize(
    "column, values, dtype, message",
    [
        ("amount", pa.array([1.5, None, 2.0]), "fixed", "row 2 column 'amount' is null"),
        ("amount", pa.array([1.5, 2.0, float("nan")]), "fixed", "row 3 column 'amount' is not"),
        ("amount", pa.array([1.0, 2.5, 3.0]), "int", "row 2 column 'amount' is not an integer"),
        ("amount", pa.array([1, None, 3], pa.int64()), "int", "row 2 column 'amount' is null"),
        ("amount", pa.array(["1", "2", "3"]), "fixed", "has Parquet type string, not a number"),
        ("amount", pa.array([[1], [2], [3]]), "fixed", "has Parquet type list<"),
    ],
)
def test_parquet_value_refusals(
    tmp_path: Path, column: str, values: pa.Array, dtype: str, message: str
) -> None:
    pq.write_table(pa.table({column: values, "ok": [1, 2, 3]}), tmp_path / "v.parquet")
    ds = config.DatasetConfig("v", tmp_path / "v.parquet", "parquet", ((column, dtype),))
    with pytest.raises(datasets.DatasetError, match=f"dataset 'v' .*{message}"):
        datasets.load_table(ds, (column,))


def test_parquet_file_refusals(
    claims: tuple[config.DatasetConfig, dict[str, np.ndarray]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds, data = claims
    rows = len(data["amount"])
    schema = (*ds.columns, ("weight", "fixed"))
    with pytest.raises(datasets.DatasetError, match="lacks declared columns \\['weight'\\]"):
        datasets.load_table(replace(ds, columns=schema), ("amount",))
    with pytest.raises(datasets.DatasetError, match=r"cannot read .*No such file"):
        datasets.load_table(replace(ds, path=tmp_path / "gone.parquet"), ("amount",))
    (tmp_path / "fake.parquet").write_text("amount\n1\n2\n")
    with pytest.raises(datasets.DatasetError, match="not a readable Parquet file"):
        datasets.load_table(replace(ds, path=tmp_path / "fake.parquet"), ("amount",))
    with pytest.raises(datasets.DatasetError, match=f"declares 3 rows, claims.parquet has {rows}"):
        datasets.load_table(replace(ds, rows=3), ("amount",))
    monkeypatch.setattr(datasets, "MAX_ROWS", rows - 1)
    with pytest.raises(datasets.DatasetError, match=f"has more than {rows - 1} rows"):
        datasets.load_table(ds, ("amount",))


def test_parquet_without_pyarrow_names_the_extra(
    claims: tuple[config.DatasetConfig, dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ds, _ = claims
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(datasets.DatasetError, match="pip install 'smc\\[parquet\\]'"):
        datasets.bind(_node("claims.amount", (17,)), None, {"claims": ds})


# ------------------------------------------------------------------------------ registration
def test_describe_gives_the_schema_only(
    clinic: tuple[config.DatasetConfig, dict[str, np.ndarray]],
    claims: tuple[config.DatasetConfig, dict[str, np.ndarray]],
) -> None:
    described = datasets.describe({"clinic": clinic[0], "claims": claims[0]})
    assert described == ["clinic(age:int,bmi:fixed)", "claims(amount:fixed,visits:int,urgent:int)"]
    text = " ".join(described)
    assert "SELECT" not in text and "consent" not in text and "sqlite" not in text


# ------------------------------------------------------------------------------ end to end
def test_daemons_compute_on_sqlite_and_parquet_inputs(tmp_path: Path) -> None:
    clinic = _patients(seed=5)
    root = tmp_path / "dep"  # dataset paths are relative to the party.toml files in it
    root.mkdir()
    _write_clinic(root / "alice-clinic.sqlite", clinic)
    claims = _write_claims(root / "bob-claims.parquet", seed=6, rows=11)
    visits = np.round(np.random.default_rng(7).uniform(0, 9, 8), 2)
    (root / "carol-visits.csv").write_text("cost\n" + "\n".join(f"{v:.2f}" for v in visits) + "\n")
    policy = {"any_program": True, "recipients": ["alice", "analyst"], "min_parties": 2}
    parties = {
        "alice": {
            "clinic": {
                "path": "alice-clinic.sqlite",
                "query": CONSENT_QUERY,
                "columns": {"age": "int", "bmi": "fixed"},
                "policy": policy,
            },
            "broken": {
                "path": "alice-clinic.sqlite",
                "query": "SELECT age FROM admissions",
                "columns": {"age": "int"},
                "policy": policy,
            },
        },
        "bob": {
            "claims": {
                "path": "bob-claims.parquet",
                "columns": {"amount": "fixed", "visits": "int"},
                "policy": policy,
            }
        },
        "carol": {
            "visits": {"path": "carol-visits.csv", "columns": {"cost": "fixed"}, "policy": policy}
        },
    }
    keep = clinic["consent"] == 1
    n = int(keep.sum())
    p = smc.ProgramBuilder(PARTIES)
    ages = p.input("alice", "clinic.age", shape=(n,))
    bmi = p.input("alice", "clinic.bmi", shape=(n,))
    amounts = p.input("bob", "claims.amount", shape=(11,))
    costs = p.input("carol", "visits.cost", shape=(8,))
    both = smc.concatenate([amounts, costs])
    p.output("total", both.sum(), to="alice")
    p.output("mean", both.mean(), to="alice")
    p.output("age_bmi", smc.dot(ages, bmi) / n, to="alice")
    with LocalDeployment(root, parties) as dep, dep.client() as client:
        res = client.run(p.build(), deadline_s=60)
        ref = np.concatenate([claims["amount"], visits])
        assert float(res["alice"]["total"]) == pytest.approx(ref.sum(), abs=1e-3)
        assert float(res["alice"]["mean"]) == pytest.approx(ref.mean(), abs=1e-3)
        assert float(res["alice"]["age_bmi"]) == pytest.approx(
            np.dot(clinic["age"][keep], clinic["bmi"][keep]) / n, abs=1e-2
        )
        # a query that fails is a refusal with its reason, and the daemon keeps serving
        q = smc.ProgramBuilder(PARTIES)
        bad = q.input("alice", "broken.age", shape=(3,))
        q.output("s", (bad + q.input("bob", "claims.amount", shape=(11,))[:3]).sum(), to="alice")
        with pytest.raises(TaskFailed) as err:
            client.run(q.build(), deadline_s=60)
        assert "party 'alice' refused" in err.value.reason
        assert "no such table: admissions" in err.value.reason
        again = client.run(p.build(), deadline_s=60)
        assert float(again["alice"]["total"]) == pytest.approx(ref.sum(), abs=1e-3)
    assert _count(root / "alice-clinic.sqlite") == N
