"""``python -m smc.bench``: the same commands as ``smc bench`` (see :mod:`smc.bench.cli`)."""

from __future__ import annotations

from smc.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m smc.bench"))
