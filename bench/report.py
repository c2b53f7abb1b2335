"""Presenting benchmark records: terminal table, JSON lines, CSV, Markdown, plots, progress.

A record is a flat dict (see :func:`smc.bench.measure.base_record`) with a nested ``env``. JSON
lines keep it as is; CSV flattens ``env`` into ``env_*`` columns and writes lists and dicts as
JSON. :func:`read_records` reads either back.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from smc.bench.workload import BenchError

FORMATS = ("table", "jsonl", "csv")
PLOT_INSTALL = "pip install matplotlib  (the 'plot' extra: pip install 'smc[plot]')"

FIELDS = (
    "schema", "run_id", "time", "library", "workload", "kind", "suite", "parties", "size",
    "size_meaning", "ops", "unit", "mode", "latency_ms", "bandwidth_mbit", "status", "note",
    "reps", "wall_p50_s", "wall_p95_s", "wall_min_s", "run_p50_s", "ops_per_s", "scope",
    "rounds", "bytes_per_party", "dealer_bytes", "bytes_per_op", "declared_rounds",
    "declared_bytes_per_party", "cost_matches", "peak_mem_bytes", "peak_mem_per_endpoint",
    "maxrss_bytes", "peak_mem_method", "check", "smc_speedup", "samples_s",
)  # fmt: skip
ENV_FIELDS = (
    "cpu", "cores", "cores_usable", "memory_bytes", "os", "python", "python_impl", "smc",
    "git_commit", "numba_jit", "numpy", "numba", "cryptography", "mpyc", "torch", "crypten",
)  # fmt: skip


# ------------------------------------------------------------------------------------ units


def fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} us"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:.1f} {unit}"
    if float(b).is_integer():
        return f"{b:.0f} B"
    return f"{b:.1f} B" if b >= 1 else f"{b:.2g} B"


def fmt_rate(r: float | None) -> str:
    return "-" if r is None else f"{r:.3g}"


def _net(r: dict[str, Any]) -> str:
    parts = []
    if r.get("latency_ms"):
        parts.append(f"{r['latency_ms']:g}ms")
    if r.get("bandwidth_mbit") is not None:
        parts.append(f"{r['bandwidth_mbit']:g}Mb")
    return "+".join(parts) or "-"


# ------------------------------------------------------------------------------------ table


def _row(r: dict[str, Any]) -> list[str]:
    per = r.get("bytes_per_party")
    status = (
        r["status"]
        if r["status"] != "ok"
        else ("ok" if r.get("cost_matches") is not False else "ok (cost differs)")
    )
    return [
        r["library"], r["workload"], str(r["suite"]), str(r["parties"]), f"{r['size']:,}",
        r["mode"], _net(r), fmt_time(r.get("wall_p50_s")), fmt_time(r.get("wall_p95_s")),
        fmt_rate(r.get("ops_per_s")), "-" if r.get("rounds") is None else str(r["rounds"]),
        fmt_bytes(max(per) if per else None), fmt_bytes(r.get("bytes_per_op")),
        fmt_bytes(r.get("peak_mem_bytes")), status,
    ]  # fmt: skip


HEADER = ["library", "workload", "suite", "n", "size", "mode", "net", "p50", "p95", "ops/s",
          "rounds", "B/party", "B/op", "peak mem", "status"]  # fmt: skip


def table(records: Sequence[dict[str, Any]]) -> str:
    """A fixed-width table; notes of non-ok records follow it, numbered."""
    rows = [_row(r) for r in records]
    notes: list[str] = []
    for r, row in zip(records, rows, strict=True):
        if r.get("note"):
            if r["note"] not in notes:
                notes.append(r["note"])
            row[-1] += f" [{notes.index(r['note']) + 1}]"
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(HEADER)]
    right = {3, 4, 7, 8, 9, 10, 11, 12, 13}

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(HEADER), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    out += [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
    return "\n".join(out)


def ratio_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    out = ["smc vs baselines (p50 time of the baseline / p50 time of smc; > 1: smc is faster)"]
    for r in rows:
        what = f"{r['workload']} n={r['parties']} size={r['size']:,} smc/{r['suite']}"
        if r["speedup"] is not None:
            out.append(
                f"  {what:<46} {r['library']:<8} {fmt_time(r['smc_p50_s']):>10} vs "
                f"{fmt_time(r['library_p50_s']):>10}  x{r['speedup']:.3g}"
            )
        else:
            out.append(f"  {what:<46} {r['library']:<8} {r['status']}: {r['note']}")
    return "\n".join(out)


# ------------------------------------------------------------------------------------ files


def flatten(r: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k in FIELDS:
        v = r.get(k)
        flat[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
    env = r.get("env") or {}
    for k in ENV_FIELDS:
        flat[f"env_{k}"] = env.get(k)
    return flat


def csv_header() -> list[str]:
    return [*FIELDS, *(f"env_{k}" for k in ENV_FIELDS)]


def write_records(
    records: Iterable[dict[str, Any]], stream: TextIO, fmt: str, header: bool = True
) -> None:
    if fmt == "jsonl":
        for r in records:
            stream.write(json.dumps(r, sort_keys=False) + "\n")
    elif fmt == "csv":
        w = csv.DictWriter(stream, fieldnames=csv_header(), lineterminator="\n")
        if header:
            w.writeheader()
        for r in records:
            w.writerow(flatten(r))
    else:
        raise BenchError(f"unknown record format {fmt!r}: choose jsonl or csv")
    stream.flush()


def file_format(path: str | Path) -> str:
    return "csv" if str(path).lower().endswith(".csv") else "jsonl"


def _unflatten(row: dict[str, str]) -> dict[str, Any]:
    rec: dict[str, Any] = {"env": {}}
    for k, v in row.items():
        val: Any = v
        if v == "":
            val = None
        else:
            try:
                val = json.loads(v)
            except (TypeError, ValueError):
                val = v
        if k.startswith("env_"):
            rec["env"][k[4:]] = val
        else:
            rec[k] = val
    for k in ("run_id", "workload", "suite", "library", "mode", "note", "status", "unit"):
        if rec.get(k) is not None:
            rec[k] = str(rec[k])
    rec["note"] = rec.get("note") or ""
    return rec


def read_records(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Records from JSON-lines or CSV files; a clear error for anything else."""
    out: list[dict[str, Any]] = []
    for path in paths:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise BenchError(f"cannot read {p}: {exc.strerror or exc}") from None
        if file_format(p) == "csv":
            out += [_unflatten(row) for row in csv.DictReader(io.StringIO(text))]
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise BenchError(f"{p}:{i}: not a JSON record ({exc})") from None
            if not isinstance(rec, dict) or "workload" not in rec or "library" not in rec:
                raise BenchError(f"{p}:{i}: not a benchmark record (no workload/library)")
            out.append(rec)
    return out


# ------------------------------------------------------------------------------------ progress


class Progress:
    """One updating line on a terminal; one line per point otherwise; nothing when quiet."""

    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = max(total, 1)
        self.done = 0
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._last = ""

    def show(self, what: str, detail: str = "", index: int | None = None) -> None:
        """Show ``what`` (the ``index``-th of ``total``, default: the next) and ``detail``."""
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        text = (
            f"[{min(self.total, (self.done if index is None else index) + 1)}/{self.total}] {what}"
        )
        if self.tty:
            self.stream.write(f"\r\x1b[K{text} {detail} ({elapsed:.0f} s)")
        elif text != self._last:
            self.stream.write(f"{text} {detail}".rstrip() + "\n")
        self._last = text
        self.stream.flush()

    def step(self) -> None:
        self.done += 1

    def close(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# ------------------------------------------------------------------------------------ markdown


def _env_line(records: Sequence[dict[str, Any]]) -> str:
    env = next((r.get("env") for r in records if r.get("env")), None) or {}
    commit = (env.get("git_commit") or "unknown")[:12]
    libs = ", ".join(
        f"{k} {env[k]}" for k in ("numpy", "numba", "mpyc", "torch", "crypten") if env.get(k)
    )
    return (
        f"Environment: {env.get('cpu', '?')}, {env.get('cores', '?')} cores, "
        f"Python {env.get('python', '?')}, smc {env.get('smc', '?')} (commit {commit}), "
        f"Numba JIT {'on' if env.get('numba_jit') else 'off'}; {libs}."
    )


def markdown(records: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of the records (latency sweep and ratios in their own tables)."""
    cols = [
        "workload",
        "library",
        "suite",
        "parties",
        "size",
        "net",
        "p50",
        "p95",
        "ops/s",
        "rounds",
        "bytes/party",
        "bytes/op",
        "status",
    ]
    lines = [
        _env_line(records),
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "|".join("---" for _ in cols) + "|",
    ]
    for r in records:
        per = r.get("bytes_per_party")
        status = r["status"] + (f": {r['note']}" if r.get("note") else "")
        cells = [
            r["workload"],
            r["library"],
            str(r["suite"]),
            str(r["parties"]),
            f"{r['size']:,}",
            _net(r),
            fmt_time(r.get("wall_p50_s")),
            fmt_time(r.get("wall_p95_s")),
            fmt_rate(r.get("ops_per_s")),
            "-" if r.get("rounds") is None else str(r["rounds"]),
            fmt_bytes(max(per) if per else None),
            fmt_bytes(r.get("bytes_per_op")),
            status.replace("|", "/"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    speed = [r for r in records if r.get("smc_speedup")]
    if speed:
        lines += [
            "",
            "| workload | parties | size | baseline | baseline p50 | smc suite | "
            "smc p50 | smc faster by |",
            "|---|---|---|---|---|---|---|---|",
        ]
        smc = {
            (r["workload"], r["parties"], r["size"], r["suite"]): r
            for r in records
            if r["library"] == "smc" and r["status"] == "ok" and not r.get("latency_ms")
        }
        for r in speed:
            for suite, ratio in sorted(r["smc_speedup"].items()):
                s = smc.get((r["workload"], r["parties"], r["size"], suite))
                lines.append(
                    f"| {r['workload']} | {r['parties']} | {r['size']:,} | {r['library']} | "
                    f"{fmt_time(r['wall_p50_s'])} | {suite} | "
                    f"{fmt_time(s['wall_p50_s'] if s else None)} | x{ratio:.3g} |"
                )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ plots


def _label(r: dict[str, Any]) -> str:
    return f"{r['library']}/{r['suite']} n={r['parties']} {r['mode']}"


def plot(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Throughput against size per workload (one line per library, suite, parties and mode), and
    time against emulated latency; one PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullLocator
    except ImportError:
        raise BenchError(
            f"report --plot needs matplotlib, which is not installed: {PLOT_INSTALL}"
        ) from None
    ok = [r for r in records if r["status"] == "ok" and r.get("ops_per_s")]
    flat = [r for r in ok if not r.get("latency_ms") and r.get("bandwidth_mbit") is None]
    workloads = sorted({r["workload"] for r in flat})
    sweeps: dict[str, list[dict[str, Any]]] = {}
    for r in ok:
        if r["library"] == "smc" and r.get("bandwidth_mbit") is None:
            key = f"{r['workload']} size={r['size']:,} {r['suite']}/{r['parties']} {r['mode']}"
            sweeps.setdefault(key, []).append(r)
    sweeps = {k: v for k, v in sweeps.items() if len({r.get("latency_ms") or 0 for r in v}) > 1}
    panels = len(workloads) + (1 if sweeps else 0)
    if panels == 0:
        raise BenchError("nothing to plot: no successful measurements in these records")
    ncols = min(4, panels)
    nrows = math.ceil(panels / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    flat_axes = [ax for row in axes for ax in row]
    labels = sorted({_label(r) for r in flat})
    colours = {lab: f"C{i % 10}" for i, lab in enumerate(labels)}
    for ax, wl in zip(flat_axes, workloads, strict=False):
        lines: dict[str, list[tuple[int, float]]] = {}
        unit = "ops"
        for r in flat:
            if r["workload"] == wl:
                lines.setdefault(_label(r), []).append((r["size"], r["ops_per_s"]))
                unit = r.get("unit") or unit
        for label, pts in sorted(lines.items()):
            pts.sort()
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker="o",
                label=label,
                color=colours[label],
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = sorted({r["size"] for r in flat if r["workload"] == wl})
        ax.set_xticks(sizes, [f"{x:,}" for x in sizes], fontsize=7)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_title(wl)
        ax.set_xlabel(next(r["size_meaning"] for r in flat if r["workload"] == wl))
        ax.set_ylabel(f"{unit}/s")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    if sweeps:
        ax = flat_axes[len(workloads)]
        for key, rs in sorted(sweeps.items()):
            sweep = sorted((float(r.get("latency_ms") or 0.0), float(r["wall_p50_s"])) for r in rs)
            ax.plot([p[0] for p in sweep], [p[1] for p in sweep], marker="o", label=key)
        ax.set_title("time against emulated latency")
        ax.set_xlabel("one-way latency (ms)")
        ax.set_ylabel("p50 wall time (s)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    for ax in flat_axes[panels:]:
        ax.set_visible(False)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
