"""The ``smc`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from smc.errors import SmcError


def _demo(args: argparse.Namespace) -> int:
    from smc.demo import run_demo

    return run_demo(suite=args.suite, rows=args.rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smc", description="Secure multi-party computation engine")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a joint computation between three parties locally")
    demo.add_argument("--suite", choices=["rss3", "additive"], default="rss3")
    demo.add_argument("--rows", type=int, default=1000, help="rows per party (default 1000)")
    demo.set_defaults(func=_demo)
    version = sub.add_parser("version", help="print the engine version")
    version.set_defaults(func=lambda _a: print(__import__("smc").__version__) or 0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SmcError as exc:
        print(f"smc: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
