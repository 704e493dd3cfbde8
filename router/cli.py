"""The `runbook-router` command: `serve`, and the tools that explain and check routing.

`runbooks [DIR]` lists the runbook library (files, sections, anchors, line ranges);
`templates export DIR` copies the shipped page templates out, to start an override.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from router import __version__
from router.errors import ConfigError, PayloadError, StoreError
from router.incidents.escalation import STATE_FILTERS
from router.logs import configure
from router.settings import Settings, environment, load_settings

if TYPE_CHECKING:
    from router.history import History
    from router.replay import ReplayReport
    from router.routing import Routing


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
        help="listen on a non-loopback address without ROUTER_WEBHOOK_TOKEN and ROUTER_API_TOKEN",
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

    check = commands.add_parser(
        "check",
        help="validate the rules; print every problem as file:line: message",
        description="Validate rules, tiers, policies and runbook references. Exit 0 when valid, "
        "1 when not. Unset ${NAME} variables are warnings here (errors in serve).",
    )
    check.add_argument(
        "rules_dir",
        nargs="?",
        type=Path,
        metavar="RULES_DIR",
        help="rules directory or file (default: ROUTER_RULES_DIR, else rules)",
    )
    check.add_argument(
        "--coverage",
        action="store_true",
        help="also list the rules, and the alerts stored in the period (ROUTER_DATABASE_URL, "
        "read-only), that would page without a runbook section",
    )
    check.add_argument(
        "--since",
        type=_duration,
        metavar="DURATION",
        help="with --coverage: the period of alerts, ending now (default: 30d)",
    )
    check.add_argument(
        "--fail-under",
        metavar="SEVERITY",
        help="with --coverage: exit 1 when a rule or alert of this severity or a more severe one "
        "would page without a runbook section (e.g. P1: P0 and P1)",
    )

    route = commands.add_parser(
        "route",
        help="dry run: explain how the alerts of a payload would be routed",
        description="Classify each alert of an Alertmanager or Grafana webhook payload and show "
        "the matched rules, severity and reason, incident key, policy and escalation timeline. "
        "Sends nothing, stores nothing.",
    )
    route.add_argument("payload", type=Path, metavar="PAYLOAD.json", help="webhook body to route")
    route.add_argument(
        "--rules",
        type=Path,
        metavar="DIR",
        help="rules directory (default: ROUTER_RULES_DIR, else rules)",
    )
    route.add_argument(
        "--at",
        type=_iso_time,
        metavar="ISO-TIME",
        help="when the incident opens, e.g. 2024-05-06T10:00:00Z (default: now; no offset: UTC)",
    )
    route.add_argument("--json", action="store_true", help="print one JSON object")

    replay = commands.add_parser(
        "replay",
        help="replay the stored alert history through new rules and show what would change",
        description="Read the alerts the router received (ROUTER_DATABASE_URL, opened read-only) "
        "and replay them on a simulated clock through the rules in force (ROUTER_RULES_DIR) and "
        "through --rules: incidents whose severity, policy, grouping or runbook section change, "
        "pages added or removed per tier with the minute, escalations that reach a higher tier, "
        "and pages per tier per day. Sends nothing, writes nothing. Exit 0 when nothing "
        "changes, 3 when something does, 1 or 2 on an error.",
    )
    replay.add_argument("--rules", type=Path, required=True, metavar="NEW_DIR", help="new rules")
    _period_arguments(replay, default_since="7d")
    replay.add_argument("--json", action="store_true", help="print one JSON object")

    test_page = commands.add_parser(
        "test-page",
        help="send a test page through every channel of a tier and say what each did",
        description="Send a page marked TEST PAGE through every channel of TIER now, one channel "
        "after another, and print each channel's outcome. Opens no incident and stores nothing. "
        "Exit 0 when every channel delivered, 1 when one failed, 2 for bad settings, rules, "
        "tier or severity.",
    )
    test_page.add_argument("tier", metavar="TIER", help="a tier of the rules")
    test_page.add_argument(
        "--severity", metavar="SEVERITY", help="severity of the page (default: default_severity)"
    )

    templates = commands.add_parser(
        "templates",
        help="work with the page templates",
        description="Work with the page templates.",
    )
    template_commands = templates.add_subparsers(dest="templates_command", required=True)
    export = template_commands.add_parser(
        "export",
        help="copy the shipped page templates into DIR, to start overriding them",
        description="Copy the shipped page templates into DIR (for example rules/templates). "
        "Keep only the files you change: the others then follow the shipped ones.",
    )
    export.add_argument("directory", type=Path, metavar="DIR", help="where to write them")
    export.add_argument("--force", action="store_true", help="overwrite templates already there")

    # The terminal's view of a running daemon, through its API (router/client.py).
    incidents = commands.add_parser(
        "incidents",
        help="list a running daemon's incidents (ROUTER_URL, ROUTER_API_TOKEN)",
        description="List the incidents of the daemon at ROUTER_URL (default "
        "http://127.0.0.1:9099) through its API, newest first, as a table.",
    )
    incidents.add_argument(
        "--state",
        choices=tuple(STATE_FILTERS),
        default="open",
        help="which incidents (default: open)",
    )
    incidents.add_argument(
        "--limit", type=int, default=100, metavar="N", help="at most N, 1 to 500 (default 100)"
    )
    incidents.add_argument("--json", action="store_true", help="print the API's JSON")
    for name, doing in (("ack", "acknowledge"), ("resolve", "resolve")):
        action = commands.add_parser(
            name,
            help=f"{doing} an incident of a running daemon (ROUTER_URL, ROUTER_API_TOKEN)",
            description=f"{doing.capitalize()} incident ID on the daemon at ROUTER_URL.",
        )
        action.add_argument("id", type=int, metavar="ID", help="the incident's number")
        action.add_argument("--by", metavar="NAME", help="who (default: your user name)")
    _maintenance_commands(commands)
    return parser


def _maintenance_commands(commands: Any) -> None:
    maintenance = commands.add_parser(
        "maintenance",
        help="list, add and end a running daemon's maintenance windows (ROUTER_URL, "
        "ROUTER_API_TOKEN)",
        description="Maintenance windows of the daemon at ROUTER_URL: alerts they match open "
        "suppressed incidents that page nobody until the window ends.",
    )
    actions = maintenance.add_subparsers(dest="maintenance_action", required=True)
    listing = actions.add_parser("list", help="the windows of the rules and those made here")
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    add = actions.add_parser("add", help="make a window now, for a while")
    add.add_argument(
        "--match",
        action="append",
        required=True,
        metavar="MATCHER",
        help="""an Alertmanager matcher such as 'service="ledger"' (repeat: all must hold)""",
    )
    add.add_argument("--for", dest="duration", required=True, metavar="DURATION", help="e.g. 2h")
    add.add_argument("--reason", default="", metavar="TEXT", help="shown on the timeline")
    add.add_argument("--name", metavar="NAME", help="default: window-DATE-TIME")
    add.add_argument(
        "--include-p0",
        action="store_true",
        help="hide alerts of the most severe severity too (never done without this)",
    )
    add.add_argument("--by", metavar="NAME", help="who (default: your user name)")
    end = actions.add_parser("end", help="end a window made at run time, now")
    end.add_argument("name", metavar="NAME")


def _period_arguments(parser: argparse.ArgumentParser, *, default_since: str) -> None:
    parser.add_argument(
        "--since",
        type=_duration,
        metavar="DURATION",
        help=f"the period that ends now, e.g. 7d, 12h (default: {default_since})",
    )
    parser.add_argument(
        "--from",
        dest="start",
        type=_iso_time,
        metavar="ISO-TIME",
        help="start of the period instead, e.g. 2024-05-06T00:00:00Z (with --to; no offset: UTC)",
    )
    parser.add_argument(
        "--to", dest="end", type=_iso_time, metavar="ISO-TIME", help="end of the period (excluded)"
    )
    parser.set_defaults(default_since=default_since)


def _duration(text: str) -> timedelta:
    from router.incidents.schedule import parse_duration

    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError(f"the period must be longer than 0: {text!r}")
    return value


def _period(args: argparse.Namespace, now: datetime) -> tuple[datetime, datetime] | str:
    """[since, until) from --since or --from/--to; a message naming the option when bad."""
    if args.since is not None and (args.start is not None or args.end is not None):
        return "give either --since or --from and --to, not both"
    if args.start is None and args.end is None:
        since: timedelta = args.since or _duration(args.default_since)
        return now - since, now
    if args.start is None or args.end is None:
        return "--from and --to go together"
    if args.start >= args.end:
        return f"--from ({args.start.isoformat()}) must be before --to ({args.end.isoformat()})"
    return args.start, args.end


def _iso_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text!r} (e.g. 2024-05-06T10:00:00Z)"
        ) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _command(build_parser().parse_args(argv))
    except BrokenPipeError:
        # The reader went away (`runbook-router check | head`): stop quietly, as `cat` does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _command(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    if args.command == "runbooks":
        return _runbooks(args.directory)
    if args.command == "check":
        return _check(args)
    if args.command == "route":
        return _route(args)
    if args.command == "replay":
        return _replay(args)
    if args.command == "test-page":
        return _test_page(args.tier, args.severity)
    if args.command == "templates":
        return _export_templates(args.directory, force=args.force)
    if args.command in ("incidents", "ack", "resolve"):
        return _remote(args)
    if args.command == "maintenance":
        return _maintenance(args)
    raise AssertionError(f"unhandled command {args.command}")  # pragma: no cover


def _serve(args: argparse.Namespace) -> int:
    from router.app import ListenError, serve

    try:
        settings = load_settings()
    except ConfigError as exc:
        return _report(exc)
    configure(settings.log_format, settings.log_level)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(serve(settings, insecure=args.insecure))
    except ConfigError as exc:
        return _report(exc)
    except (StoreError, ListenError) as exc:
        print(f"runbook-router: {exc}", file=sys.stderr)
        return 1
    return 0


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (it is a dependency on Linux and macOS): it
    parses HTTP and moves bytes several times faster than asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


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
            # Only incidents are attached to pages; every other role is named.
            kind = "" if section.attachable else f"  ({section.role})"
            anchor = f"#{section.anchor}" if section.anchor else "(the whole page)"
            print(f"  {lines:<10} {anchor:<41} {' › '.join(section.path)}{parts}{kind}")
    print(f"{len(library.files)} files, {len(library.sections)} sections")
    for note in library.notes:
        print(f"note: {note}", file=sys.stderr)
    for problem in library.problems:
        print(problem, file=sys.stderr)
    return 1 if library.problems else 0


def _export_templates(directory: Path, *, force: bool) -> int:
    from router.outbox.template_checks import export_templates

    try:
        written = export_templates(directory, force=force)
    except ConfigError as exc:
        return _report(exc)
    except OSError as exc:
        print(f"runbook-router: cannot write templates to {directory}: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    print(
        f"{len(written)} templates written; keep only the ones you change, the others then "
        "follow the shipped ones"
    )
    return 0


def _rules_dir(given: Path | None, env: Mapping[str, str]) -> Path:
    if given is not None:
        return given
    # Only the rules directory is needed here: a bad unrelated setting must not stop a check.
    return Path(env.get("ROUTER_RULES_DIR") or "rules")


def _check(args: argparse.Namespace) -> int:
    from router.outbox.channels import channel_problems
    from router.outbox.template_checks import check_templates
    from router.routing import reference_problems
    from router.rules import check_rules
    from router.runbooks import RunbookLibrary

    if not args.coverage and (args.since is not None or args.fail_under is not None):
        print("runbook-router: --since and --fail-under go with --coverage", file=sys.stderr)
        return 2
    env = environment()
    rules_dir = _rules_dir(args.rules_dir, env)
    report = check_rules(rules_dir, env)
    for line in report.lines:
        print(line)
    runbooks_dir = (rules_dir if rules_dir.is_dir() else rules_dir.parent) / "runbooks"
    library = RunbookLibrary.load(runbooks_dir)
    problems = list(library.problems)
    problems += check_templates(
        (rules_dir if rules_dir.is_dir() else rules_dir.parent) / "templates"
    )
    checked = report.ruleset or report.partial
    if checked is not None:
        problems += reference_problems(checked, library)
        problems += channel_problems(checked)
    for problem in problems:
        print(problem)
    if report.ruleset is None or problems:
        count = len(report.errors) + len(problems)
        print(f"rules invalid: {count} error{'s' if count != 1 else ''}")
        return 1
    ruleset = report.ruleset
    print(
        f"rules OK: {len(ruleset.rules)} rules, {len(ruleset.tiers)} tiers, "
        f"{len(ruleset.policies)} policies, {len(ruleset.severities)} severities, "
        f"{len(library.files)} runbooks ({len(library.sections)} sections)"
    )
    if args.coverage:
        return _coverage(args, rules_dir, env)
    return 0


def _coverage(args: argparse.Namespace, rules_dir: Path, env: Mapping[str, str]) -> int:
    """The `check --coverage` report; 1 when --fail-under finds a gap, 2 for a bad option."""
    from router.coverage import coverage

    routing = _load_routing(rules_dir, env, "RULES_DIR")
    if routing is None:
        return 1
    severities = [level.name for level in routing.rules.severities]
    if args.fail_under is not None and args.fail_under not in severities:
        print(
            f"runbook-router: --fail-under {args.fail_under}: no such severity; the severities "
            f"are: {', '.join(severities)}",
            file=sys.stderr,
        )
        return 2
    now = datetime.now(UTC)
    since: timedelta = args.since or _duration("30d")
    history: History | None = None
    default_url = str(Settings.model_fields["database_url"].default)
    if env.get("ROUTER_DATABASE_URL") or Path(default_url.removeprefix("sqlite:///")).is_file():
        found = _history((now - since, now), env)
        if isinstance(found, int):
            return found
        history = found
    report = coverage(routing, history)
    print()
    print("runbook coverage: rules that name no runbook section and found none in the period")
    for gap in report.rules:
        print(f"  {gap.severity:<4} {gap.rule:<32} {gap.source}  fired {gap.fired}x")
    if not report.rules:
        print("  none")
    if history is None:
        print(
            "no alert history: ROUTER_DATABASE_URL is unset and there is no database at "
            f"{default_url.removeprefix('sqlite:///')}; the rules alone were checked"
        )
    else:
        print(
            f"alerts that would page without a runbook section, of {report.alerts} received "
            f"since {_when(now - since)}"
        )
        for alert in report.alert_gaps:
            rule = f"rule {alert.rule}" if alert.rule else "no rule"
            print(
                f"  {alert.severity:<4} {alert.alertname or '(no alertname)':<32} {rule:<24} "
                f"fired {alert.fired}x"
            )
        if not report.alert_gaps:
            print("  none")
        print("runbook sections changed since incidents of the period carried them")
        for section in report.changed:
            what = "gone" if section.gone else "changed"
            print(f"  {section.reference:<48} {what}; carried by {section.incidents} incident(s)")
        if not report.changed:
            print("  none")
    if args.fail_under is None:
        return 0
    failing = report.failing(routing, args.fail_under)
    if failing:
        print(
            f"coverage FAILED: {len(failing)} at {args.fail_under} or above would page without a "
            f"runbook section: {'; '.join(failing)}"
        )
        return 1
    print(f"coverage OK: nothing at {args.fail_under} or above pages without a runbook section")
    return 0


def _route(args: argparse.Namespace) -> int:
    from router.dryrun import format_routes, parse_payload, route_notification, routes_to_json
    from router.outbox.render import Renderer
    from router.routing import load_routing

    env = environment()
    rules_dir = _rules_dir(args.rules, env)
    try:
        routing = load_routing(rules_dir, env, strict_secrets=False)
    except ConfigError as exc:
        print(f"runbook-router: {exc}; run: runbook-router check {rules_dir}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    try:
        body = args.payload.read_bytes()
    except OSError as exc:
        print(f"runbook-router: {args.payload}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        notification = parse_payload(body)
    except PayloadError as exc:
        print(f"runbook-router: {args.payload}: {exc}", file=sys.stderr)
        return 1
    at = args.at or datetime.now(UTC)
    renderer = Renderer(rules_dir / "templates" if rules_dir.is_dir() else None)
    routes = route_notification(routing, notification, at, renderer)
    if args.json:
        print(json.dumps(routes_to_json(routes, routing.rules, at), indent=2, ensure_ascii=False))
    else:
        print(format_routes(routes, routing.rules, at), end="")
    return 0


def _load_routing(rules_dir: Path, env: Mapping[str, str], option: str) -> Routing | None:
    """The rules of `rules_dir`, or None after printing every problem and the option named."""
    from router.routing import load_routing

    try:
        return load_routing(rules_dir, env, strict_secrets=False)
    except ConfigError as exc:
        print(f"runbook-router: {option} {rules_dir}: {exc}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _history(period: tuple[datetime, datetime], env: Mapping[str, str]) -> History | int:
    """The stored history of the period, or the exit status of an error."""
    from router.store.history import read_history

    # Only the database is needed here: a bad unrelated setting must not stop a replay.
    database_url = env.get("ROUTER_DATABASE_URL") or str(
        Settings.model_fields["database_url"].default
    )
    try:
        return read_history(database_url, *period)
    except StoreError as exc:
        print(f"runbook-router: ROUTER_DATABASE_URL: {exc}", file=sys.stderr)
        return 1


def _replay(args: argparse.Namespace) -> int:
    from router.replay import replay, report_json

    period = _period(args, datetime.now(UTC))
    if isinstance(period, str):
        print(f"runbook-router: {period}", file=sys.stderr)
        return 2
    env = environment()
    in_force = _rules_dir(None, env)
    before = _load_routing(in_force, env, "ROUTER_RULES_DIR")
    after = _load_routing(args.rules, env, "--rules")
    if before is None or after is None:
        return 1
    history = _history(period, env)
    if isinstance(history, int):
        return history
    report = replay(history, before, after)
    if args.json:
        print(json.dumps(report_json(report), indent=2, ensure_ascii=False))
    else:
        print(format_replay(report, in_force, args.rules), end="")
    return 3 if report.diffs else 0


def format_replay(report: ReplayReport, in_force: Path, new: Path) -> str:
    """The human-readable `replay` output: the differences, then pages per tier per day."""
    from router.replay import minute

    lines = [
        f"replayed {report.alerts} alerts received {_when(report.since)} to {_when(report.until)}",
        f"  rules in force {in_force}: {report.incidents_before} incidents, "
        f"{report.pages_before} pages",
        f"  new rules {new}: {report.incidents_after} incidents, {report.pages_after} pages",
    ]
    if report.unchanged:
        lines.append("no difference")
    for diff in report.diffs:
        incident = diff.before or diff.after
        key = incident.key if incident else ""
        lines.append("")
        lines.append(
            f"incident opened {_when(diff.opened_at)} by {diff.alertname or '(no alertname)'} "
            f"(alert {diff.opener}): {key}"
        )
        for change in diff.changes:
            lines.append(
                f"  {change.what:<13} {change.before or 'none'} -> {change.after or 'none'}"
            )
        for sign, pages in (("+", diff.pages_added), ("-", diff.pages_removed)):
            for page in pages:
                again = f" repeat {page.round}" if page.round else ""
                lines.append(
                    f"  {sign} page  {page.tier:<14} step {page.step}{again} at "
                    f"+{minute(page.at, diff.opened_at)}m ({page.event}, {_when(page.at)})"
                )
        higher = diff.higher_tier
        if higher is not None:
            acked = (
                f"acknowledged at +{minute(higher.acknowledged_at, diff.opened_at)}m"
                if higher.acknowledged_at
                else "never acknowledged"
            )
            reached = minute(higher.reached_at, diff.opened_at)
            lines.append(
                f"  escalates further: step {higher.step_after} "
                f"({', '.join(higher.tiers_after)}) at +{reached}m "
                f"instead of step {higher.step_before} ({', '.join(higher.tiers_before)}); {acked}"
            )
    if report.per_day:
        lines += ["", "pages per tier per day (UTC)", f"  {'day':<11} {'tier':<16} before  after"]
        for row in report.per_day:
            moved = row.after - row.before
            delta = f"  {moved:+d}" if moved else ""
            lines.append(f"  {row.day:<11} {row.tier:<16} {row.before:>6} {row.after:>6}{delta}")
    return "\n".join(lines) + "\n"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _remote(args: argparse.Namespace) -> int:
    """`incidents`, `ack` and `resolve` against the daemon at ROUTER_URL; 1 when it refuses or
    cannot be reached."""
    import getpass

    from router.client import Api, ClientError, incident_table

    try:
        api = Api.from_environment(environment())
        if args.command == "incidents":
            answer = api.call("GET", f"/api/v1/incidents?state={args.state}&limit={args.limit}")
            if args.json:
                print(json.dumps(answer, indent=2, ensure_ascii=False))
            else:
                print(incident_table(answer["incidents"], datetime.now(UTC)), end="")
            return 0
        path = "ack" if args.command == "ack" else "resolve"
        who = args.by or getpass.getuser()
        answer = api.call("POST", f"/api/v1/incidents/{args.id}/{path}", {"by": who})
    except ClientError as exc:
        print(f"runbook-router: {exc}", file=sys.stderr)
        return 1
    print(f"incident {args.id}: {answer['message']}")
    return 0


def _maintenance(args: argparse.Namespace) -> int:
    """`maintenance list|add|end` against the daemon at ROUTER_URL; 1 when it refuses or cannot
    be reached."""
    import getpass

    from router.client import Api, ClientError, window_table

    try:
        api = Api.from_environment(environment())
        if args.maintenance_action == "list":
            answer = api.call("GET", "/api/v1/maintenance")
            if args.json:
                print(json.dumps(answer, indent=2, ensure_ascii=False))
            else:
                print(window_table(answer["windows"]), end="")
            return 0
        if args.maintenance_action == "add":
            body: dict[str, Any] = {
                "matchers": args.match,
                "duration": args.duration,
                "by": args.by or getpass.getuser(),
                "include_p0": args.include_p0,
            }
            if args.reason:
                body["reason"] = args.reason
            if args.name:
                body["name"] = args.name
            window = api.call("POST", "/api/v1/maintenance", body)["window"]
            ends = datetime.fromisoformat(window["ends_at"])
            print(f"maintenance window {window['name']} until {_when(ends)}")
            return 0
        answer = api.call("DELETE", f"/api/v1/maintenance/{quote(args.name, safe='')}")
    except ClientError as exc:
        print(f"runbook-router: {exc}", file=sys.stderr)
        return 1
    print(f"maintenance window {args.name}: {answer['message']}")
    return 0


def _test_page(tier: str, severity: str | None) -> int:
    from router.outbox.channels import build_channels
    from router.outbox.testpage import ChannelOutcome, send_test_page
    from router.rules import load_rules

    env = environment()
    try:
        settings = load_settings(env)
        # The rules as `serve` reads them: an unset secret is an error, not a page to the log.
        ruleset = load_rules(settings.rules_dir, env, strict_secrets=True)
    except ConfigError as exc:
        return _report(exc)
    if tier not in ruleset.tiers:
        print(
            f"runbook-router: no tier {tier!r} in {settings.rules_dir}; "
            f"the tiers are: {', '.join(ruleset.tiers)}",
            file=sys.stderr,
        )
        return 2
    severities = [level.name for level in ruleset.severities]
    severity = severity or ruleset.default_severity
    if severity not in severities:
        print(
            f"runbook-router: no severity {severity!r}; the severities are: "
            f"{', '.join(severities)}",
            file=sys.stderr,
        )
        return 2
    configure(settings.log_format, settings.log_level)  # the log channel writes its page there
    channels = build_channels(
        settings, settings.rules_dir / "templates", severity_rank=ruleset.rank
    )

    async def send() -> list[ChannelOutcome]:
        try:
            return await send_test_page(ruleset, channels, tier, severity, datetime.now(UTC))
        finally:
            await channels.close()

    outcomes = asyncio.run(send())
    print(f"test page to tier {tier} ({severity}), {len(outcomes)} channel(s):")
    for outcome in outcomes:
        said = f"delivered: {outcome.title}" if outcome.delivered else f"FAILED: {outcome.error}"
        print(f"  {outcome.channel}: {said}")
    failed = sum(not outcome.delivered for outcome in outcomes)
    if failed:
        print(f"{failed} of {len(outcomes)} channel(s) failed")
        return 1
    return 0
