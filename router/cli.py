"""The `runbook-router` command: `serve`, and the tools that explain and check routing.

`runbooks [DIR]` lists the runbook library (files, sections, anchors, line ranges).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

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
    runbooks = commands.add_parser(
        "runbooks", help="list runbook files, their sections, anchors and line ranges"
    )
    runbooks.add_argument(
        "directory",
        nargs="?",
        type=Path,
        metavar="DIR",
        help="runbooks directory, or a rules directory holding runbooks/ "
        "(default: $ROUTER_RULES_DIR/runbooks)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "runbooks":
        return _runbooks(args.directory)
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


def _runbooks(directory: Path | None) -> int:
    """Print every runbook file and section; exit 1 when a file could not be used."""
    from router.runbooks import RunbookLibrary

    if directory is None:
        try:
            directory = load_settings().rules_dir / "runbooks"
        except ConfigError as exc:
            return _report(exc)
    elif (directory / "runbooks").is_dir() and not any(directory.glob("*.md")):
        directory = directory / "runbooks"
    if not directory.is_dir():
        print(f"runbook-router: no runbooks directory at {directory}", file=sys.stderr)
        return 1
    library = RunbookLibrary.load(directory)
    for file in library.files:
        sections = [s for s in library.sections if s.file == file]
        print(f"{directory / file}: {len(sections)} sections")
        for section in sections:
            lines = f"L{section.line_start}-{section.line_end}"
            parts = f"  [{', '.join(section.parts)}]" if section.parts else ""
            kind = "  (part)" if section.is_part else ""
            path = " › ".join(section.path)
            print(f"  {lines:<10} #{section.anchor:<40} {path}{parts}{kind}")
    print(f"{len(library.files)} files, {len(library.sections)} sections")
    for note in library.notes:
        print(f"note: {note}", file=sys.stderr)
    for problem in library.problems:
        print(problem, file=sys.stderr)
    return 1 if library.problems else 0
