"""The documentation's code runs and its numbers hold.

* Every ``docs/examples/*.py`` script runs to completion with the interpreter running the tests
  (the virtual environment's python under ``.ci/run``). Each script asserts its own results
  against plaintext references and ends by printing a line saying they match.
* The README's quick-start block is the text of ``docs/examples/quickstart.py``.
* Every ```` ```python ```` block of the engine docs runs, each in a fresh namespace.
* Links between these documents point to files and headings that exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))
# Files whose python blocks must run as written (docs written by others may hold fragments).
DOCS_WITH_CODE = [
    "README.md",
    "docs/api.md",
    "docs/numerics.md",
    "docs/architecture.md",
    "docs/security.md",
    "docs/protocols.md",
    "docs/glossary.md",
]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 4, "docs/examples/ lost its scripts"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_script_runs_and_matches(script: Path) -> None:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("all ") and "match" in last, f"{script.name} did not confirm: {last!r}"


def _blocks(name: str) -> list[str]:
    path = ROOT / name
    return PYTHON_BLOCK.findall(path.read_text()) if path.exists() else []


def test_readme_quickstart_is_the_example_script() -> None:
    blocks = _blocks("README.md")
    assert blocks, "README.md has no python block"
    script = (ROOT / "docs" / "examples" / "quickstart.py").read_text()
    assert blocks[0].strip() in script, "README quick start and docs/examples/quickstart.py differ"


@pytest.mark.parametrize("name", DOCS_WITH_CODE)
def test_doc_snippets_run(name: str) -> None:
    for k, block in enumerate(_blocks(name)):
        namespace: dict[str, object] = {"__name__": f"doc_snippet_{k}"}
        try:
            exec(compile(block, f"{name}[python block {k}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - reported with the block
            pytest.fail(f"{name}, python block {k} raised {exc!r}:\n{block}")


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+ (.*)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("name", DOCS_WITH_CODE)
def test_links_between_engine_docs_resolve(name: str) -> None:
    source = ROOT / name
    own = {(ROOT / d).resolve() for d in DOCS_WITH_CODE}
    for target, anchor in LINK.findall(source.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path = (source.parent / target).resolve() if target else source.resolve()
        if path not in own:
            continue  # documents owned by others are checked by their owners
        assert path.exists(), f"{name}: broken link to {target}"
        if anchor:
            assert anchor in _anchors(path.read_text()), f"{name}: no heading #{anchor} in {target}"
