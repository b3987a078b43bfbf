"""The `prefect-coldsend` command line: sync definitions, one-off flows, sandbox, demo, serve.

Prefect is imported lazily, after the environment is prepared (no telemetry on closed
networks; the demo keeps its Prefect data beside its sandbox state; failures print one line).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blocks.leads import LeadStore

__all__ = ["main"]

DEFAULT_STATE_DIR = ".prefect-coldsend"
DEFAULT_DEFINITIONS = "coldsend.yaml"
SANDBOX_INBOX = "sender@sandbox.example.com"

# Commands that run flows once and report the outcome themselves, in one line: Prefect's
# console echoes of a failure are filtered for them (never for serve, whose terminal is the
# only place its runs' failures show).
ONE_SHOT_COMMANDS = frozenset({"sync", "launch", "write-back", "ensure", "plan", "run", "demo"})

# Options accepted before or after the command (argparse alone takes them only before).
GLOBAL_FLAGS = {"--debug": "debug", "--version": "version", "-V": "version"}


def package_version() -> str:
    try:
        return version("prefect-coldsend")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prefect-coldsend",
        description="Sync CRM leads into ColdSend campaigns, launch them, write results back.",
        epilog="Global options (--debug, --version) are accepted anywhere on the line.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    parser.add_argument("-V", "--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def definitions_file(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "file",
            nargs="?",
            type=Path,
            default=Path(DEFAULT_DEFINITIONS),
            help=f"sync definitions (default: {DEFAULT_DEFINITIONS})",
        )

    validate = sub.add_parser("validate", help="check a sync definitions file, change nothing")
    definitions_file(validate)
    plan = sub.add_parser(
        "plan", help="dry-run every sync of a definitions file: what would change, nothing changed"
    )
    definitions_file(plan)
    plan.add_argument("--sync", action="append", default=[], metavar="NAME", help="only NAME")
    run = sub.add_parser("run", help="run the syncs of a definitions file once")
    definitions_file(run)
    run.add_argument("--sync", action="append", default=[], metavar="NAME", help="only NAME")
    run.add_argument(
        "--write-back", action="store_true", help="write statuses back after each sync"
    )
    deploy = sub.add_parser(
        "deploy", help="create or update a Prefect deployment set per sync on a work pool"
    )
    definitions_file(deploy)
    deploy.add_argument("--sync", action="append", default=[], metavar="NAME", help="only NAME")
    deploy.add_argument(
        "--pool", default=None, help="work pool (default: the file's work_pool, coldsend-process)"
    )
    deploy.add_argument(
        "--heartbeat-seconds",
        default=None,
        metavar="N",
        help="the workers' PREFECT_FLOWS_HEARTBEAT_FREQUENCY, for crash detection (default: "
        "this shell's, Prefect's 180 when unset)",
    )

    demo = sub.add_parser(
        "demo", help="run the whole pipeline against local sandboxes (no account needed)"
    )
    demo.add_argument("--state-dir", type=Path, default=Path(DEFAULT_STATE_DIR))
    demo.add_argument("--leads", type=int, default=1000, help="Salesforce leads to seed")
    demo.add_argument("--sheet-rows", type=int, default=300, help="Google Sheet rows to seed")
    demo.add_argument(
        "--fresh", action="store_true", help="forget the sandboxes' state from earlier runs"
    )

    sandbox = sub.add_parser(
        "sandbox", help="serve the ColdSend, Salesforce, Sheets and HubSpot sandboxes"
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument(
        "--port", type=int, default=8765, help="ColdSend port; Salesforce +1, Sheets +2, HubSpot +3"
    )
    sandbox.add_argument(
        "--db",
        "--state-dir",
        dest="state_dir",
        type=Path,
        default=None,
        help="directory for the sandboxes' SQLite files (default: in memory)",
    )

    def credentials(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--coldsend",
            default=None,
            help="ColdSend Credentials block name (default: COLDSEND_API_KEY, then 'default')",
        )

    def lead_store(p: argparse.ArgumentParser) -> None:
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--lead-store", help="saved lead store, e.g. salesforce-leads/acme")
        where.add_argument(
            "--csv", type=Path, metavar="PATH", help="a CSV file (no saved block needed)"
        )
        p.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help=(
                "with --csv: the column feeding a lead field (email, first_name, last_name, "
                "company, or any other name for a custom field); repeatable. Fields not "
                "given are recognised from common headers."
            ),
        )

    sync = sub.add_parser("sync", help="sync a lead store or a CSV file into a campaign once")
    sync.add_argument("--campaign-id", required=True)
    lead_store(sync)
    credentials(sync)
    sync.add_argument(
        "--dry-run",
        action="store_true",
        help="change nothing; show what would be uploaded, updated, deleted and reported",
    )
    sync.add_argument(
        "--full", action="store_true", help="read every record, not only changed ones"
    )
    sync.add_argument(
        "--on-removed",
        choices=["keep", "delete_pending"],
        default="keep",
        help="leads that left the store: keep them (default), or delete them while PENDING "
        "(reads the whole store)",
    )
    sync.add_argument(
        "--max-updates-per-run",
        type=int,
        default=None,
        metavar="N",
        help="update at most N changed leads; the rest on the next run (default 500)",
    )
    sync.add_argument(
        "--suppress", action="append", default=[], metavar="EMAIL", help="never upload EMAIL"
    )
    sync.add_argument("--parallel-uploads", type=int, default=2)

    launch = sub.add_parser("launch", help="launch a campaign when it is ready")
    launch.add_argument("--campaign-id", required=True)
    credentials(launch)
    launch.add_argument("--job-id", action="append", default=[], help="upload job to wait for")
    launch.add_argument(
        "--wait", type=float, default=0.0, help="keep checking readiness this many seconds"
    )

    write_back = sub.add_parser(
        "write-back", help="write campaign statuses back to a lead store or a CSV file"
    )
    write_back.add_argument("--campaign-id", required=True)
    write_back.add_argument(
        "--no-replies", action="store_true", help="write statuses only, do not log replies"
    )
    write_back.add_argument(
        "--log-sends", action="store_true", help="also log each email sent to a replied lead"
    )
    write_back.add_argument(
        "--max-reply-requests",
        type=int,
        default=200,
        help="ColdSend requests the reply reading may use in this run (default 200)",
    )
    lead_store(write_back)
    credentials(write_back)

    ensure = sub.add_parser(
        "ensure", help="create a campaign from a spec file (JSON or YAML), or find it by name"
    )
    ensure.add_argument("--spec", type=Path, required=True, help="file with a campaign spec")
    credentials(ensure)

    serve = sub.add_parser(
        "serve", help="serve the syncs of a definitions file on this machine (no worker needed)"
    )
    serve.add_argument(
        "file",
        nargs="?",
        type=Path,
        default=None,
        help=f"sync definitions (default: {DEFAULT_DEFINITIONS} when no --campaign-id)",
    )
    serve.add_argument("--campaign-id", help="serve deployments/prefect.yaml for this campaign")
    serve.add_argument("--lead-store", help="with --campaign-id: the saved lead store")
    credentials(serve)

    sub.add_parser("scopes", help="list the ColdSend API scopes each flow needs")
    sub.add_parser(
        "schema", help="print the JSON Schema of sync definitions (for editors and CI checks)"
    )
    return parser


def _split_global_options(argv: Sequence[str]) -> tuple[dict[str, bool], list[str]]:
    """Take the global flags out of `argv` wherever they are (up to a ``--``)."""
    found = dict.fromkeys(GLOBAL_FLAGS.values(), False)
    rest: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            rest.extend(argv[index:])
            break
        if arg in GLOBAL_FLAGS:
            found[GLOBAL_FLAGS[arg]] = True
        else:
            rest.append(arg)
    return found, rest


def _prepare_environment(args: argparse.Namespace) -> str | None:
    """Settings that must be in place before Prefect is imported. Returns the demo's home."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's temporary server gives up after 20 s, which a busy laptop can exceed.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    if (
        args.command in ONE_SHOT_COMMANDS
        and not args.debug
        and not os.environ.get("PREFECT_LOGGING_SETTINGS_PATH")
    ):
        from app.console import quiet_failures_logging_config

        os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(quiet_failures_logging_config())
    if args.command == "demo" and not os.environ.get("PREFECT_API_URL"):
        home = os.environ.get("PREFECT_HOME") or str((args.state_dir / "prefect").resolve())
        Path(home).mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = home
        return home
    return os.environ.get("PREFECT_HOME")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


class UsageError(ValueError):
    """A command line that cannot work; the message says how to fix it."""


def parse_map(items: Sequence[str]) -> dict[str, str]:
    """``FIELD=COLUMN`` pairs from --map, in order; a repeated field is an error."""
    out: dict[str, str] = {}
    for item in items:
        field, sep, column = item.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise UsageError(
                f"--map {item!r}: write FIELD=COLUMN, e.g. --map email='Work Email' or "
                "--map company='Company Name'"
            )
        if field in out:
            raise UsageError(f"--map names {field!r} twice ({out[field]!r} and {column!r})")
        out[field] = column
    return out


def csv_store(path: Path, mapping: dict[str, str]) -> LeadStore:
    """An unsaved CSV lead store for --csv PATH [--map FIELD=COLUMN ...]."""
    from blocks import CsvFileLeads
    from connectors.leads import STANDARD_FIELDS, FieldMapping

    if not path.is_file():
        raise UsageError(f"--csv {path}: no such file")
    standard = {k: v for k, v in mapping.items() if k in STANDARD_FIELDS}
    custom = {k: v for k, v in mapping.items() if k not in STANDARD_FIELDS}
    field_mapping = FieldMapping(**standard, custom_fields=custom) if mapping else None
    return CsvFileLeads(path=str(path.resolve()), mapping=field_mapping)


def _lead_store(args: argparse.Namespace) -> str | LeadStore:
    if args.csv is not None:
        return csv_store(args.csv, parse_map(args.map))
    if args.map:
        raise UsageError("--map goes with --csv; a saved lead store keeps its mapping in its block")
    return str(args.lead_store)


def _run_demo(args: argparse.Namespace, prefect_home: str | None) -> int:
    from app.demo import format_summary, run_demo

    if args.fresh:
        import shutil

        shutil.rmtree(args.state_dir / "sandbox", ignore_errors=True)
    started = time.monotonic()
    result = run_demo(
        state_dir=args.state_dir,
        leads=args.leads,
        sheet_rows=args.sheet_rows,
        echo=lambda line: print(line, flush=True),
    )
    print(format_summary(result, prefect_home=prefect_home))
    print(f"Demo finished in {time.monotonic() - started:.0f} s.")
    return 0


def _busy_ports(host: str, ports: dict[str, int]) -> list[str]:
    """Which of `ports` something else is listening on (named after the sandbox wanting it)."""
    busy: list[str] = []
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                busy.append(f"{port} ({name})")
    return busy


def _ensure_sandbox_inbox(base_url: str, api_key: str) -> str:
    """The sandbox's sender inbox, created on first start: a campaign needs one to launch."""
    from connectors.coldsend import ColdSendClient

    with ColdSendClient(api_key, base_url=base_url) as client:
        if any(i.email_address == SANDBOX_INBOX for i in client.iter_inboxes()):
            return SANDBOX_INBOX
        client.create_smtp_inbox(
            email_address=SANDBOX_INBOX,
            display_name="Sandbox Sender",
            smtp_host="smtp.sandbox.example.com",
            smtp_port=587,
            smtp_username=SANDBOX_INBOX,
            smtp_password="sandbox-only-password",  # noqa: S106 - the sandbox's fake inbox
            daily_limit=100,
        )
    return SANDBOX_INBOX


def _run_sandbox(args: argparse.Namespace) -> int:
    from sandbox.stack import start_stack

    try:
        stack = start_stack(state_dir=args.state_dir, host=args.host, port=args.port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        wanted = {
            "ColdSend": args.port,
            "Salesforce": args.port + 1,
            "Sheets": args.port + 2,
            "HubSpot": args.port + 3,
        }
        busy = ", ".join(_busy_ports(args.host, wanted)) or f"{args.port} to {args.port + 3}"
        raise UsageError(
            f"port {busy} on {args.host} is already in use (another sandbox running?). Stop "
            f"it, or pick other ports: prefect-coldsend sandbox --port {args.port + 10}"
        ) from None
    try:
        inbox = _ensure_sandbox_inbox(stack.coldsend_base_url, stack.coldsend_admin_key)
        roots = {
            "ColdSend": stack.coldsend.url,
            "Salesforce": stack.salesforce.url,
            "Sheets": stack.sheets.url,
            "HubSpot": stack.hubspot_url,
        }
        print("Sandboxes running (Ctrl-C to stop). In another shell, paste:")
        print()
        print(
            f"  export COLDSEND_API_KEY={stack.coldsend_admin_key} "
            f"COLDSEND_BASE_URL={stack.coldsend_base_url}"
        )
        print()
        print(f"  ColdSend API base URL    {stack.coldsend_base_url}")
        print(f"  ColdSend sender inbox    {inbox} (put it in your campaign's inbox_emails)")
        print(f"  Salesforce instance URL  {stack.salesforce_url}")
        print(f"  Salesforce client id     {stack.salesforce_client_id}")
        print(f"  Salesforce client secret {stack.salesforce_client_secret}")
        print(f"  Salesforce username      {stack.salesforce_username}")
        print(f"  Salesforce password      {stack.salesforce_password}")
        print(f"  Salesforce security token {stack.salesforce_security_token}")
        print(f"  Google Sheets base URL   {stack.sheets_url}")
        print(f"  HubSpot base URL         {stack.hubspot_url}")
        print(f"  HubSpot access token     {stack.hubspot_token}")
        print("  Control surfaces (no key needed; e.g. GET .../_sandbox/stats):")
        for name, root in roots.items():
            print(f"    {name:<11} {root}/_sandbox/")
        print("  Your own code, with the real simple-salesforce, gspread and HubSpot clients:")
        for line in stack.client_snippet().splitlines():
            print(f"    {line}")
        if args.state_dir is None:
            print("  State is in memory: pass --db DIR to keep it across restarts.")
        sys.stdout.flush()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def _load_spec(path: Path) -> Any:
    from flows.campaigns import CampaignSpec

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        return CampaignSpec.model_validate(yaml.safe_load(text))
    return CampaignSpec.model_validate_json(text)


def _dispatch(args: argparse.Namespace, prefect_home: str | None) -> int:
    if args.command == "scopes":
        from flows.scopes import FLOW_SCOPES

        for flow, scopes in FLOW_SCOPES.items():
            print(f"{flow:<11} {', '.join(sorted(scopes))}")
        return 0
    if args.command == "schema":
        from app.definitions import schema_text

        sys.stdout.write(schema_text())
        return 0
    if args.command == "sandbox":
        return _run_sandbox(args)
    if args.command == "demo":
        return _run_demo(args, prefect_home)
    if args.command in ("validate", "plan", "run", "deploy"):
        from app import commands

        handler: Callable[[argparse.Namespace], int] = getattr(commands, args.command)
        return handler(args)
    commands_: dict[str, Callable[[], Any]] = {}
    if args.command == "sync":
        from flows.sync import sync_leads_to_campaign

        store = _lead_store(args)
        commands_["sync"] = lambda: sync_leads_to_campaign(
            campaign_id=args.campaign_id,
            lead_store=store,
            coldsend=args.coldsend,
            incremental=not args.full,
            suppression_list=args.suppress,
            dry_run=args.dry_run,
            on_removed=args.on_removed,
            parallel_uploads=args.parallel_uploads,
            **(
                {"max_updates_per_run": args.max_updates_per_run}
                if args.max_updates_per_run is not None
                else {}
            ),
        )
    elif args.command == "launch":
        from flows.campaigns import launch_campaign_when_ready

        commands_["launch"] = lambda: launch_campaign_when_ready(
            campaign_id=args.campaign_id,
            coldsend=args.coldsend,
            job_ids=args.job_id,
            wait_for_requirements_seconds=args.wait,
        )
    elif args.command == "write-back":
        from flows.write_back import write_back_statuses

        store = _lead_store(args)
        commands_["write-back"] = lambda: write_back_statuses(
            campaign_id=args.campaign_id,
            lead_store=store,
            coldsend=args.coldsend,
            log_replies=not args.no_replies,
            log_sends=args.log_sends,
            max_reply_requests=args.max_reply_requests,
        )
    elif args.command == "ensure":
        from flows.campaigns import ensure_campaign

        spec = _load_spec(args.spec)
        commands_["ensure"] = lambda: {"campaign_id": ensure_campaign(spec, coldsend=args.coldsend)}
    elif args.command == "serve":
        from app.serve import serve_definitions, serve_prefect_yaml

        if args.campaign_id or args.lead_store:
            if not (args.campaign_id and args.lead_store):
                raise UsageError("serve --campaign-id needs --lead-store too (and vice versa)")
            serve_prefect_yaml(
                campaign_id=args.campaign_id, lead_store=args.lead_store, coldsend=args.coldsend
            )
        else:
            serve_definitions(args.file or Path(DEFAULT_DEFINITIONS))
        return 0
    result = commands_[args.command]()
    _print_json(result.model_dump() if hasattr(result, "model_dump") else result)
    return 0


@contextmanager
def _heartbeats_only_where_watched(command: str) -> Iterator[None]:
    """Runs made here on Prefect's embedded server go without flow-run heartbeats.

    Heartbeats only serve crash detection on a server that outlives the process (the deploy's
    automations, flows/crash_detection.py); the embedded server ends with this process, so
    nothing watches them. And Prefect 3.8 joins each run's heartbeat thread, which sleeps in
    1-second steps, when the run ends: up to 1 s per flow run and sub-flow (bench/SCALE.md).
    Runs against a real server (PREFECT_API_URL) keep Prefect's setting.
    """
    if command not in ONE_SHOT_COMMANDS:
        yield
        return
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        get_current_settings,
        temporary_settings,
    )

    if get_current_settings().api.url:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def describe_error(exc: BaseException) -> str:
    """The one line printed for `exc`: its message, on one line, with the fix when known."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if type(exc).__name__ in ("ValidationError", "ParameterTypeError"):
        return f"invalid parameters: {text}"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file: {exc.filename}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `prefect-coldsend` console script."""
    flags, rest = _split_global_options(sys.argv[1:] if argv is None else argv)
    if flags["version"]:
        print(f"prefect-coldsend {package_version()}")
        return 0
    parser = _parser()
    args = parser.parse_args(rest)
    args.debug = args.debug or flags["debug"]
    if args.command is None:
        parser.print_help()
        return 2
    prefect_home = _prepare_environment(args)
    try:
        with _heartbeats_only_where_watched(args.command):
            return _dispatch(args, prefect_home)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        problems = getattr(exc, "problems", None)
        file = getattr(exc, "file", None)
        if isinstance(problems, list) and len(problems) > 1:
            # One line per problem (a definitions file with several mistakes).
            for problem in problems:
                print(f"error: {f'{file}: ' if file else ''}{problem}", file=sys.stderr)
            return 1
        print(f"error: {describe_error(exc)} (--debug shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
