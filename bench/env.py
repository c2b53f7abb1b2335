"""The environment a measurement was taken in, carried by every benchmark record.

CPU model, core counts, memory, Python and library versions, the git commit of the source tree
(read from ``.git`` directly, without running git) and whether Numba's JIT is on. Library
versions come from package metadata, so nothing heavy (torch, crypten) is imported here.
"""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("numpy", "numba", "cryptography", "mpyc", "torch", "crypten")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit(start: Path | None = None) -> str | None:
    """The commit checked out in the repository holding the smc sources (None outside one).

    Reads ``.git/HEAD`` and the ref it names (loose or packed); the tree may be dirty."""
    here = start or Path(__file__).resolve().parent
    for d in (here, *here.parents):
        git = d / ".git"
        if git.is_file():  # a worktree: "gitdir: <path>"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (d / text.split(":", 1)[1].strip()).resolve()
        if not git.is_dir():
            continue
        try:
            head = (git / "HEAD").read_text().strip()
        except OSError:
            return None
        if not head.startswith("ref:"):
            return head or None
        ref = head.split(":", 1)[1].strip()
        for base in (git, _common_dir(git)):
            loose = base / ref
            if loose.is_file():
                return loose.read_text().strip() or None
            packed = base / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[1] == ref:
                        return parts[0]
        return None
    return None


def _common_dir(git: Path) -> Path:
    common = git / "commondir"
    if common.is_file():
        return (git / common.read_text().strip()).resolve()
    return git


def numba_jit_on() -> bool:
    """False when NUMBA_DISABLE_JIT is set (the engine then runs the numpy twins)."""
    try:
        import numba

        return not bool(numba.config.DISABLE_JIT)  # type: ignore[attr-defined]
    except ImportError:
        return False


def environment() -> dict[str, Any]:
    import smc

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 1
    mem = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    env: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "memory_bytes": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "smc": smc.__version__,
        "git_commit": git_commit(),
        "numba_jit": numba_jit_on(),
    }
    for lib in LIBRARIES:
        env[lib] = _version(lib)
    return env
