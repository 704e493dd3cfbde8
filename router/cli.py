"""The `runbook-router` command: `serve`, and the tools that explain and check routing."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from router import __version__
from router.errors import ConfigError, StoreError
from router.logs import configure
from router.settings import load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runbook-router",
        description="Route alerts to the right people with the right runbook section attached.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the daemon")
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="listen on a non-loopback address without ROUTER_WEBHOOK_TOKEN",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    raise AssertionError(f"unhandled command {args.command}")  # pragma: no cover


def _serve(args: argparse.Namespace) -> int:
    from router.app import serve

    try:
        settings = load_settings()
    except ConfigError as exc:
        return _report(exc)
    configure(settings.log_format, settings.log_level)
    try:
        asyncio.run(serve(settings, insecure=args.insecure))
    except ConfigError as exc:
        return _report(exc)
    except StoreError as exc:
        print(f"runbook-router: {exc}", file=sys.stderr)
        return 1
    return 0


def _report(exc: ConfigError) -> int:
    print(f"runbook-router: {exc}", file=sys.stderr)
    for problem in exc.problems:
        if problem != str(exc):
            print(f"  {problem}", file=sys.stderr)
    return 2
