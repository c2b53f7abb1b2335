"""The ``smc`` command line.

    smc demo [--local]                     three hospitals: hub + party daemons (or in-process)
    smc keys init --dir keys               create a deployment CA
    smc keys issue --dir keys --role party --name st_mary [--san host]
    smc hub serve --config hub.toml        run the hub
    smc party serve --config party.toml    run a party daemon (or the dealer)
    smc party verify-audit audit.log       check an audit log's hash chain
    smc parties --hub host:port --keys keys --name analyst   list registered parties
    smc run --hub host:port --keys keys --name analyst (--program FILE | --circuit NAME --params J)
                                           submit a program through the hub, show progress,
                                           print the results forwarded to this client
    smc bench list|run|report|suite        benchmarks (see docs/benchmarks.md)

Deployment commands import the hub and party packages only when used, so the engine stays free
of gRPC.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from smc.errors import SmcError


def _demo(args: argparse.Namespace) -> int:
    if args.local:
        from smc.party.demo import run_demo

        return int(run_demo(suite=args.suite, rows=args.rows))
    from smc.party.demo import run_deployed_demo

    return int(run_deployed_demo(suite=args.suite, rows=args.rows, keep=args.keep))


def _keys(args: argparse.Namespace) -> int:
    from smc.hub import pki

    if args.keys_command == "init":
        path = pki.create_ca(args.dir, args.deployment)
        print(
            f"created CA {path} (keep {path.with_suffix('.key')} offline once certificates "
            "are issued)"
        )
    else:
        cert, key = pki.issue(args.dir, args.role, args.name, tuple(args.san or ()), args.days)
        print(f"issued {args.role} {args.name!r}: {cert} {key}")
    return 0


def _hub(args: argparse.Namespace) -> int:
    from smc.hub import config, server

    return int(server.serve(config.load(args.config), args.ready_file))


def _party(args: argparse.Namespace) -> int:
    if args.party_command == "verify-audit":
        from smc.party.audit import verify

        count, head = verify(args.log, args.head)
        print(f"{args.log}: {count} entries, chain intact, head {head}")
        return 0
    from smc.party import config, daemon
    from smc.party.audit import AuditError

    try:
        return int(daemon.serve(config.load(args.config), args.ready_file))
    except AuditError as exc:
        print(
            f"smc party serve: the audit log does not verify, so the daemon will not start: {exc} "
            "(inspect it with 'smc party verify-audit'; keep the damaged log as evidence and "
            "move it aside to start a new chain)",
            file=sys.stderr,
        )
        return 2


def _parties(args: argparse.Namespace) -> int:
    from smc.hub.pki import Credentials
    from smc.party.client import Client

    with Client(args.hub, Credentials.from_dir(args.keys, args.name), args.hub_name) as client:
        for p in client.parties():
            state = "online" if p.online else "offline"
            print(
                f"{p.name:<16} {p.role:<7} {state:<8} {p.endpoint or '(relay only)':<22} "
                f"{', '.join(p.datasets)}"
            )
    return 0


def _parse_binding(text: str) -> tuple[str, str, str | tuple[str, tuple[str, ...]]]:
    """PARTY:INPUT=DATASET or PARTY:INPUT=DATASET.COL[,COL...]"""
    try:
        who, rest = text.split(":", 1)
        name, target = rest.split("=", 1)
    except ValueError:
        raise SmcError(f"--bind {text!r}: expected PARTY:INPUT=DATASET[.COLUMN,...]") from None
    if "." in target:
        dataset, cols = target.split(".", 1)
        return who, name, (dataset, tuple(c for c in cols.split(",") if c))
    return who, name, target


def _run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from smc.hub.pki import Credentials
    from smc.party.client import Client

    from smc.ir import Program

    circuit: tuple[str, dict[str, object]] | None = None
    if args.program:
        program = Program.from_bytes(Path(args.program).read_bytes())
    else:
        from smc.circuits.registry import build

        text = args.params or "{}"
        params = json.loads(Path(text).read_text() if Path(text).is_file() else text)
        built = build(args.circuit, params)
        program, circuit = built.program, (built.circuit, dict(built.params))
    bindings: dict[str, dict[str, str | tuple[str, tuple[str, ...]]]] = {}
    for spec in args.bind:
        who, name, target = _parse_binding(spec)
        bindings.setdefault(who, {})[name] = target

    def progress(event: object) -> None:
        kind, party, message = (getattr(event, k, "") for k in ("kind", "party", "message"))
        if not args.quiet:
            who = f"{party}: " if party and message else party
            print(f"  [{kind}] {who}{message}".rstrip(), file=sys.stderr)

    print(f"submitting {program.summary()}", file=sys.stderr)
    with Client(args.hub, Credentials.from_dir(args.keys, args.name), args.hub_name) as client:
        result = client.run(
            program,
            progress,
            suite=args.suite,
            dealer=args.dealer,
            bindings=bindings,
            deadline_s=args.deadline,
            data_plane="relay" if args.relay else "direct",
            circuit=circuit,
        )
    for party, outputs in sorted(result.outputs.items()):
        for name, value in sorted(outputs.items()):
            print(f"{party}.{name} = {value.tolist()}")
    print(f"task {result.task_id} done in {result.seconds:.3f} s", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smc", description="Secure multi-party computation engine"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="hub + party daemons: joint statistics, a sealed-bid auction and an election",
    )
    demo.add_argument(
        "--local", action="store_true", help="in-process simulation instead of daemons"
    )
    demo.add_argument("--suite", choices=["rss3", "additive"], default="rss3")
    demo.add_argument("--rows", type=int, default=1000, help="rows per party (default 1000)")
    demo.add_argument("--keep", metavar="DIR", help="write the deployment into DIR and keep it")
    demo.set_defaults(func=_demo)

    keys = sub.add_parser("keys", help="deployment CA and certificates")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kinit = ksub.add_parser("init", help="create the deployment CA (ca.crt, ca.key)")
    kinit.add_argument("--dir", required=True)
    kinit.add_argument("--deployment", default="smc deployment", help="organisation name in the CA")
    kissue = ksub.add_parser("issue", help="issue a certificate for a hub, party, dealer or client")
    kissue.add_argument(
        "--dir", required=True, help="the CA directory; the files are written there"
    )
    kissue.add_argument("--role", required=True, choices=["hub", "party", "dealer", "client"])
    kissue.add_argument("--name", required=True)
    kissue.add_argument("--san", action="append", help="extra DNS name or IP (repeatable)")
    kissue.add_argument("--days", type=int, default=825)
    keys.set_defaults(func=_keys)

    hub = sub.add_parser("hub", help="run the hub")
    hsub = hub.add_subparsers(dest="hub_command", required=True)
    hserve = hsub.add_parser("serve")
    hserve.add_argument("--config", required=True)
    hserve.add_argument("--ready-file", help="write the bound address here once serving")
    hub.set_defaults(func=_hub)

    party = sub.add_parser("party", help="run a party daemon, or check its audit log")
    psub = party.add_subparsers(dest="party_command", required=True)
    pserve = psub.add_parser("serve")
    pserve.add_argument("--config", required=True)
    pserve.add_argument("--ready-file", help="write the data-plane endpoint here once attached")
    paudit = psub.add_parser("verify-audit")
    paudit.add_argument("log")
    paudit.add_argument("--head", help="the head hash witnessed earlier (detects truncation)")
    party.set_defaults(func=_party)

    parties = sub.add_parser("parties", help="list the parties registered at a hub")
    parties.add_argument("--hub", required=True)
    parties.add_argument("--keys", required=True, help="directory with <name>.crt/.key and ca.crt")
    parties.add_argument("--name", required=True, help="client identity")
    parties.add_argument("--hub-name", default="hub", help="name in the hub's certificate")
    parties.set_defaults(func=_parties)

    run = sub.add_parser("run", help="submit a program through a hub and print its results")
    run.add_argument("--hub", required=True, help="host:port of the hub")
    run.add_argument("--keys", required=True, help="directory with <name>.crt/.key and ca.crt")
    run.add_argument("--name", required=True, help="client identity (certificate name)")
    run.add_argument("--hub-name", default="hub", help="name in the hub's certificate")
    what = run.add_mutually_exclusive_group(required=True)
    what.add_argument("--program", help="a program saved with Path(f).write_bytes(p.to_bytes())")
    what.add_argument("--circuit", help="a library circuit name (smc.circuits.registry)")
    run.add_argument("--params", help="the circuit's parameters: JSON text or a JSON file")
    run.add_argument("--suite", choices=["rss3", "additive"], default=None)
    run.add_argument("--dealer", default="", help="the dealer daemon's name (suite additive)")
    run.add_argument("--deadline", type=float, default=60.0, help="seconds (default 60)")
    run.add_argument("--relay", action="store_true", help="exchange shares through the hub relay")
    run.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="PARTY:INPUT=DATASET[.COL,...]",
        help="bind a program input to a dataset (default: by input name); repeatable",
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(func=_run)

    from smc.bench.cli import register as register_bench

    register_bench(sub)

    version = sub.add_parser("version", help="print the engine version")
    version.set_defaults(func=lambda _a: print(__import__("smc").__version__) or 0)
    return parser


def _deployment_errors() -> tuple[type[BaseException], ...]:
    """Error types of the deployment packages, when they are already imported."""
    found: list[type[BaseException]] = []
    for module, names in (
        ("smc.hub.pki", ("CertificateError",)),
        ("smc.hub.config", ("HubConfigError",)),
        ("smc.party.config", ("ConfigFileError",)),
        ("smc.party.audit", ("AuditError",)),
    ):
        mod = sys.modules.get(module)
        for n in names:
            if mod is not None and hasattr(mod, n):
                found.append(getattr(mod, n))
    return tuple(found)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SmcError as exc:
        print(f"smc: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if isinstance(exc, (*_deployment_errors(), OSError)):
            print(f"smc: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
