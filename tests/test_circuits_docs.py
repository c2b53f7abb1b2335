"""The circuits' documentation runs: one page per family, each with an example script that
asserts its results against the plaintext reference, every python block of the pages, and the
benchmark script at small sizes (no timing is asserted anywhere)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "circuits"
FAMILIES = ["stats", "join", "auction", "voting", "ml"]
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, *args]
    return subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_a_page_and_an_example(family: str) -> None:
    page = (DOCS / f"{family}.md").read_text()
    assert f"docs/circuits/examples/{family}_example.py" in page
    assert (DOCS / "examples" / f"{family}_example.py").exists()
    assert f"{family}.md" in (DOCS / "index.md").read_text()


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_and_matches(script: Path) -> None:
    proc = run([str(script)])
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("all ") and "match" in last, last


@pytest.mark.parametrize("page", ["index", *FAMILIES])
def test_page_snippets_run(page: str) -> None:
    blocks = PYTHON_BLOCK.findall((DOCS / f"{page}.md").read_text())
    for k, block in enumerate(blocks):
        exec(compile(block, f"docs/circuits/{page}.md[python block {k}]", "exec"), {})


def test_benchmark_script_runs_quick() -> None:
    proc = run(["bench/circuits.py", "--quick", "--only", "auction"])
    assert proc.returncode == 0, proc.stderr
    assert "| auction (Vickrey), 50 bidders |" in proc.stdout
    assert proc.stdout.strip().endswith("all secure results match their plaintext references")
