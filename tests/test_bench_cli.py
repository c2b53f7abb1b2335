"""``smc bench``: parsing, output formats, record contents, and refusals before any work.

Tiny sizes and one repetition throughout; no assertion depends on timing. The rounds and bytes a
record reports are checked against the engine's declared costs (``rss3_costs``,
``additive_costs``, ``ltz_cost``) computed here directly, not through the harness.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from smc.bench import baselines, cli, registry, report, runner, suite
from smc.bench.measure import Engine

from smc.protocols.additive import additive_costs
from smc.protocols.nonlinear import ltz_cost
from smc.protocols.rss3 import rss3_costs

REQUIRED = {
    "schema", "run_id", "time", "library", "workload", "kind", "suite", "parties", "size",
    "ops", "unit", "mode", "latency_ms", "bandwidth_mbit", "status", "note", "reps",
    "wall_p50_s", "wall_p95_s", "ops_per_s", "rounds", "bytes_per_party", "bytes_per_op",
    "peak_mem_bytes", "peak_mem_method", "env",
}  # fmt: skip
ENV = {"cpu", "cores", "python", "numpy", "numba", "smc", "git_commit", "numba_jit"}
TINY = ["--reps", "1", "--warmup", "0", "-q"]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def jsonl(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    code, out, err = run([*argv, "--format", "jsonl", *TINY], capsys)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


# ------------------------------------------------------------------------------------ parsing


def test_register_mounts_bench_under_a_parent_parser() -> None:
    parser = argparse.ArgumentParser(prog="smc")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    args = parser.parse_args(
        ["bench", "run", "mul", "lt", "--size", "1e3", "10k", "--suite", "additive",
         "--parties", "2", "4", "--latency", "0", "5", "--against", "mpyc,crypten"]
    )  # fmt: skip
    assert args.bench_command == "run" and callable(args.func)
    assert args.workload == ["mul", "lt"]
    assert args.size == [1000, 10_000] and args.parties == [2, 4]
    assert args.latency == [0.0, 5.0] and args.mode == "inproc"
    plan = cli._plan(args)
    assert plan.against == ["mpyc", "crypten"] and plan.latencies_ms == [0.0, 5.0]
    for command in ("list", "report x.jsonl", "suite --docs"):
        assert callable(parser.parse_args(["bench", *command.split()]).func)


@pytest.mark.parametrize(
    ("text", "value"), [("1000", 1000), ("1e6", 10**6), ("10_000", 10_000), ("2M", 2 * 10**6),
                        ("100k", 100_000)],
)  # fmt: skip
def test_sizes_parse(text: str, value: int) -> None:
    assert cli.parse_size(text) == value


@pytest.mark.parametrize("bad", ["0", "-5", "1.5", "abc", "1e-3"])
def test_bad_sizes_are_refused_by_the_parser(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "mul", "--size", bad])
    assert exc.value.code == 2
    assert "--size" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ refusals


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any measurement starts."""

    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("work started before the input was refused")

    monkeypatch.setattr(Engine, "sample", forbidden)
    monkeypatch.setattr(runner, "execute", forbidden)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "mull"], "unknown operation or circuit 'mull' (did you mean mul"),
        (["run", "mul", "--parties", "2"], "suite 'rss3' needs exactly 3 parties, not 2"),
        (["run", "mul", "--suite", "rss3", "--parties", "4"], "needs exactly 3 parties"),
        (["run", "mul", "--suite", "additive", "--parties", "1"], "at least 2 parties, not 1"),
        (["run", "mul", "--size", "1e12"], "choose a smaller --size"),
        (["run", "sort", "lt", "--suite", "additive", "--parties", "9", "--size", "3e9"],
         "MemAvailable"),
        (["run", "mul", "--mode", "deployed", "--bandwidth", "10"], "--bandwidth is not"),
        (["run", "mul", "--reps", "0"], "--reps must be at least 1"),
        (["run", "mul", "--against", "sharemind"], "--against 'sharemind'"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error_before_any_work(
    argv: list[str], message: str, no_work: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert message in err and err.startswith("smc bench: error:")
    assert out == ""


def test_memory_estimate_uses_declared_costs_and_available_memory() -> None:
    w = registry.get("mul")
    small = registry.estimate_bytes(w, "rss3", 3, 1000)
    assert registry.estimate_bytes(w, "rss3", 3, 10**6) > 500 * small
    registry.check_memory(w, "rss3", 3, 1000, available=1 << 30)
    with pytest.raises(registry.BenchError, match=r"only 1\.0 MiB is available"):
        registry.check_memory(w, "rss3", 3, 10**5, available=1 << 20)


def test_missing_baselines_name_the_install_command(
    monkeypatch: pytest.MonkeyPatch, no_work: None, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name in ("mpyc", "crypten", "torch") else real(name, *a),
    )  # fmt: skip
    code, _, err = run(["run", "mul", "--against", "mpyc,crypten"], capsys)
    assert code == 2
    assert "pip install 'smc[baselines]'" in err
    assert baselines.missing("crypten") is not None
    assert "crypten==0.4.1" in str(baselines.missing("crypten"))
    assert "torch==2.13.0" in str(baselines.missing("crypten"))


def test_baseline_budget_prediction() -> None:
    # one point: proportional to the work; two points: fixed cost plus a per-element rate
    assert baselines.predict("mul", [(1000, 2.0)], 10_000) == pytest.approx(20.0)
    assert baselines.predict("mul", [(100, 1.0), (1000, 1.5)], 100_000) == pytest.approx(56.5)
    assert baselines.predict("sort", [(16, 1.0)], 64) > 4.0  # n log^2 n
    job = baselines.Job("mul", [1000, 10_000], reps=1, budget_s=5.0)
    verdict = baselines.keep_going(job, [(1000, 2.0)], [10_000])
    assert isinstance(verdict, str) and "predicted 20 s for size 10,000" in verdict
    assert baselines.keep_going(job, [(1000, 0.1)], [10_000]) is True


def test_unsupported_baseline_workloads_are_marked_with_a_reason() -> None:
    assert "no privacy" in str(baselines.unsupported("mpyc", "mul", "op", 2, 0, None))
    assert "sigmoid" in str(baselines.unsupported("mpyc", "sigmoid", "op", 3, 0, None))
    assert "sort" in str(baselines.unsupported("crypten", "sort", "op", 2, 0, None))
    assert "loopback" in str(baselines.unsupported("crypten", "mul", "op", 2, 5.0, None))
    assert "not ported" in str(baselines.unsupported("crypten", "stats", "circuit", 3, 0, None))
    assert baselines.unsupported("mpyc", "lt", "op", 3, 0, None) is None
    assert baselines.unsupported("crypten", "mul", "op", 2, 0, None) is None


# ------------------------------------------------------------------------------------ records


def test_list_shows_every_workload_with_its_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["list"], capsys)
    assert code == 0
    for name in ("mul", "dot", "lt", "eq", "matmul", "sort", "sigmoid", "stats", "auction"):
        assert f"\n{name} " in out
    assert "n (n x n matrices)" in out and "10,000, 100,000, 1,000,000" in out
    code, out, _ = run(["list", "--format", "json"], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["name"] for r in rows} >= {"mul", "voting"}
    assert all(r["default_sizes"] for r in rows)


def test_tiny_run_produces_well_formed_records(capsys: pytest.CaptureFixture[str]) -> None:
    recs = jsonl(["run", "mul", "lt", "--size", "5", "7"], capsys)
    assert [(r["workload"], r["size"]) for r in recs] == [("mul", 5), ("mul", 7), ("lt", 5),
                                                          ("lt", 7)]  # fmt: skip
    for r in recs:
        assert set(r) >= REQUIRED, REQUIRED - set(r)
        assert set(r["env"]) >= ENV
        assert r["status"] == "ok" and r["check"] == "ok" and r["cost_matches"] is True
        assert r["library"] == "smc" and r["mode"] == "inproc" and r["scope"] == "op"
        assert r["reps"] == 1 and len(r["samples_s"]) == 1
        assert r["wall_p50_s"] > 0 and r["wall_p95_s"] >= r["wall_p50_s"] - 1e-12
        assert r["ops_per_s"] == pytest.approx(r["ops"] / r["wall_p50_s"])
        assert r["bytes_per_op"] == pytest.approx(max(r["bytes_per_party"]) / r["ops"])
        assert r["peak_mem_bytes"] > 0 and isinstance(r["env"]["numba_jit"], bool)
    assert len({r["run_id"] for r in recs}) == 1


@pytest.mark.parametrize(("suite_name", "n"), [("rss3", 3), ("additive", 2), ("additive", 3)])
def test_rounds_and_bytes_equal_the_engine_declared_costs(
    suite_name: str, n: int, capsys: pytest.CaptureFixture[str]
) -> None:
    size = 10
    recs = jsonl(["run", "mul", "mul_int", "lt", "eq", "--size", str(size), "--suite",
                  suite_name, "--parties", str(n), "--no-memory"], capsys)  # fmt: skip
    got = {r["workload"]: r for r in recs}

    def declared(op: str) -> tuple[int, tuple[int, ...]]:
        c = rss3_costs(op, size) if suite_name == "rss3" else additive_costs(op, size, n)
        return c.rounds, c.bytes_per_endpoint

    ltz = ltz_cost(suite_name, n, size)
    expect = {
        "mul": declared("mul_fixed"),
        "mul_int": declared("mul_int"),
        "lt": (ltz.rounds, ltz.bytes_per_endpoint),
        "eq": (ltz.rounds, tuple(2 * b for b in ltz.bytes_per_endpoint)),
    }
    for name, (rounds, per_endpoint) in expect.items():
        r = got[name]
        assert r["rounds"] == rounds, name
        assert tuple(r["bytes_per_party"]) == per_endpoint[:n], name
        if suite_name == "additive":
            assert r["dealer_bytes"] == per_endpoint[n], name
        assert r["cost_matches"] is True


def test_every_declared_op_cost_matches_measurement() -> None:
    import smc

    for w in registry.workloads():
        if w.kind != "op" or w.cost is None:
            continue
        for suite_name, n in (("rss3", 3), ("additive", 2)):
            names = [f"p{i}" for i in range(n)]
            b = w.build(names, 5)
            res = smc.simulate(b.program, b.inputs, suite=suite_name)
            cost = w.cost(suite_name, n, 5)
            assert cost is not None
            per = tuple(s.per_node[b.node].bytes_sent for s in res.stats)
            assert (max(s.per_node[b.node].rounds for s in res.stats), per) == (
                cost.rounds, cost.bytes_per_endpoint), (w.name, suite_name)  # fmt: skip
            assert b.check is not None and b.check(res[names[0]]) is None, w.name


def test_table_and_csv_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_csv = tmp_path / "r.csv"
    code, out, err = run(["run", "mul", "--size", "4", *TINY, "-o", str(out_csv)], capsys)
    assert code == 0, err
    head, rule, row = out.splitlines()[:3]
    assert head.split()[:5] == ["library", "workload", "suite", "n", "size"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert row.split()[:5] == ["smc", "mul", "rss3", "3", "4"] and row.endswith("ok")
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert len(rows) == 1 and rows[0]["workload"] == "mul" and rows[0]["env_python"]
    code, out, _ = run(["run", "mul", "--size", "4", "--format", "csv", *TINY], capsys)
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(parsed) == 1
    declared = list(rss3_costs("mul_fixed", 4).bytes_per_endpoint)
    assert json.loads(parsed[0]["bytes_per_party"]) == declared
    back = report.read_records([out_csv])[0]
    assert back["bytes_per_party"] == declared
    assert back["env"]["python"] and back["size"] == 4


def test_latency_and_bandwidth_are_emulated_and_recorded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recs = jsonl(["run", "lt", "--size", "3", "--latency", "0", "2", "--bandwidth", "50",
                  "--no-memory"], capsys)  # fmt: skip
    assert [(r["latency_ms"], r["bandwidth_mbit"]) for r in recs] == [(0.0, 50.0), (2.0, 50.0)]
    slow = recs[1]
    assert slow["wall_p50_s"] >= slow["rounds"] * 0.002  # every round waits the latency


def test_procs_mode_runs_one_process_per_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    recs = jsonl(["run", "mul", "--size", "6", "--mode", "procs", "--suite", "additive",
                  "--parties", "2"], capsys)  # fmt: skip
    (r,) = recs
    assert r["mode"] == "procs" and r["status"] == "ok" and r["check"] == "ok"
    assert r["cost_matches"] is True and r["run_p50_s"] >= r["wall_p50_s"]
    assert len(r["peak_mem_per_endpoint"]) == 3  # two parties and the dealer


@pytest.mark.skipif(
    importlib.util.find_spec("grpc") is None, reason="deployed mode needs the daemons"
)
def test_deployed_mode_runs_through_the_hub_and_daemons(capsys: pytest.CaptureFixture[str]) -> None:
    (r,) = jsonl(["run", "mul", "--size", "4", "--mode", "deployed"], capsys)
    assert r["mode"] == "deployed" and r["scope"] == "task"
    assert r["status"] == "ok" and r["check"] == "ok"
    assert r["rounds"] >= rss3_costs("mul_fixed", 4).rounds and min(r["bytes_per_party"]) > 0


@pytest.mark.parametrize(("lib", "n"), [("mpyc", 3), ("crypten", 2)])
def test_baselines_run_alternating_and_ratios_are_attached(
    lib: str, n: int, capsys: pytest.CaptureFixture[str]
) -> None:
    if baselines.missing(lib):
        pytest.skip(f"{lib} is not installed")
    recs = jsonl(["run", "mul", "sigmoid", "--size", "8", "--suite", "additive", "--parties",
                  str(n), "--against", lib, "--cycles", "1", "--no-memory"], capsys)  # fmt: skip
    by = {(r["library"], r["workload"]): r for r in recs}
    base = by[(lib, "mul")]
    assert base["status"] == "ok" and base["reps"] == 1 and base["bytes_per_party"]
    assert base["smc_speedup"]["additive"] > 0
    other = by[(lib, "sigmoid")]
    assert other["status"] == ("unsupported" if lib == "mpyc" else "ok")


# ------------------------------------------------------------------------------------ report


def test_report_writes_markdown_and_reads_both_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.jsonl"
    code, _, err = run(["run", "mul", "--size", "3", "8", *TINY, "-o", str(path)], capsys)
    assert code == 0, err
    code, out, _ = run(["report", str(path)], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Environment:") and "Numba JIT" in lines[0]
    assert lines[2].startswith("| workload | library | suite |") and len(lines) == 6
    md = tmp_path / "t.md"
    code, _, _ = run(["report", str(path), "--markdown", str(md), "--format", "table"], capsys)
    assert code == 0 and md.read_text().startswith("library")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hello": 1}\n')
    code, _, err = run(["report", str(bad)], capsys)
    assert code == 2 and "not a benchmark record" in err


def test_plot_without_matplotlib_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.jsonl"
    assert run(["run", "mul", "--size", "3", *TINY, "-o", str(path)], capsys)[0] == 0
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run(["report", str(path), "--plot", str(tmp_path / "p.png")], capsys)
    assert code == 2 and "pip install matplotlib" in err


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")
def test_plot_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.jsonl"
    argv = ["run", "mul", "--size", "3", "9", "--latency", "0", "1", *TINY, "-o", str(path)]
    assert run(argv, capsys)[0] == 0
    png = tmp_path / "p.png"
    assert run(["report", str(path), "--plot", str(png)], capsys)[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------ suite


def test_the_suite_covers_the_standard_workloads() -> None:
    plans = suite.plans(3, "inproc", [], quick=False)
    names = {w for p in plans for w in p.workloads}
    assert {"mul", "dot", "lt", "eq", "matmul", "sort", "sigmoid"} <= names
    available = [c for c in suite.CIRCUITS if registry.circuit_unavailable(c) is None]
    assert set(available) <= names
    assert any(p.latencies_ms != [0.0] for p in plans)
    for p in plans:
        runner.validate(p)  # every plan is valid on this machine


def test_suite_marks_circuits_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "circuit_unavailable", lambda name: f"{name} is missing")
    recs = suite.unavailable_records({"python": "3"})
    assert [r["workload"] for r in recs] == list(suite.CIRCUITS)
    assert all(r["status"] == "unavailable" and "missing" in r["note"] for r in recs)


def test_docs_section_is_regenerated_between_markers(tmp_path: Path) -> None:
    (tmp_path / "benchmarks.md").write_text(
        f"# Benchmarks\n\nhand-written\n\n{suite.BEGIN}\nold\n{suite.END}\n\ntail\n"
    )
    rec = {
        "library": "smc",
        "workload": "mul",
        "suite": "rss3",
        "parties": 3,
        "size": 10,
        "status": "ok",
        "note": "",
        "wall_p50_s": 0.001,
        "ops_per_s": 1e4,
        "mode": "inproc",
        "size_meaning": "n elements",
        "latency_ms": 0.0,
        "bandwidth_mbit": None,
        "env": {},
    }
    suite.write_docs(tmp_path, [rec], 12.0, [])
    text = (tmp_path / "benchmarks.md").read_text()
    assert "hand-written" in text and text.rstrip().endswith("tail") and "old" not in text
    assert "| mul | smc | rss3 | 3 | 10 |" in text
    assert json.loads((tmp_path / "benchmarks.jsonl").read_text())["workload"] == "mul"


# ------------------------------------------------------------------------------------ circuits


@pytest.mark.skipif(registry.circuit_unavailable("voting") is not None, reason="no circuits")
def test_a_circuit_runs_and_is_checked_against_its_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (r,) = jsonl(["run", "voting", "--size", "4", "--no-memory"], capsys)
    assert r["kind"] == "circuit" and r["scope"] == "program" and r["check"] == "ok"
    assert r["rounds"] == r["declared_rounds"]


def test_unavailable_circuit_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, no_work: None, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(registry, "circuit_unavailable", lambda name: "not in this build")
    code, _, err = run(["run", "stats"], capsys)
    assert code == 2 and "stats cannot be benchmarked: not in this build" in err


@pytest.mark.parametrize(("suite", "n"), [("rss3", 3), ("additive", 2)])
def test_engine_benchmark_measures_every_operation(suite: str, n: int) -> None:
    """bench/engine.py at toy sizes: every operation has its own timing, rounds and bytes."""
    from smc.bench.engine import run_all

    rows = run_all(suite, n, 1, n=50, sides=(4, 6))
    assert [r.rounds for r in rows] == [2, 1, 2, 2, 2]
    assert all(r.seconds > 0 for r in rows)
