"""The `prefect-coldsend` command line: demo, sandbox, sync, launch, write-back, ensure, serve.

Prefect is imported lazily, after the environment is prepared (no telemetry on closed
networks; the demo keeps its Prefect data beside its sandbox state).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

DEFAULT_STATE_DIR = ".prefect-coldsend"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prefect-coldsend",
        description="Sync CRM leads into ColdSend campaigns, launch them, write results back.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    sync = sub.add_parser("sync", help="sync a lead store into a campaign once")
    sync.add_argument("--campaign-id", required=True)
    sync.add_argument(
        "--lead-store", required=True, help="saved lead store, e.g. salesforce-leads/acme"
    )
    credentials(sync)
    sync.add_argument("--dry-run", action="store_true", help="do everything except uploading")
    sync.add_argument(
        "--full", action="store_true", help="read every record, not only changed ones"
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

    write_back = sub.add_parser("write-back", help="write campaign statuses back to a lead store")
    write_back.add_argument("--campaign-id", required=True)
    write_back.add_argument("--lead-store", required=True)
    credentials(write_back)

    ensure = sub.add_parser("ensure", help="create a campaign from a JSON spec, or find it by name")
    ensure.add_argument("--spec", type=Path, required=True, help="JSON file with a CampaignSpec")
    credentials(ensure)

    serve = sub.add_parser("serve", help="serve every flow on this machine (no worker needed)")
    serve.add_argument("--campaign-id", required=True)
    serve.add_argument("--lead-store", required=True)
    credentials(serve)
    serve.add_argument("--sync-interval", type=float, default=900.0)
    serve.add_argument("--write-back-interval", type=float, default=3600.0)

    sub.add_parser("scopes", help="list the ColdSend API scopes each flow needs")
    return parser


def _without_traceback(record: logging.LogRecord) -> logging.LogRecord:
    if not (record.exc_info or record.exc_text):
        return record
    quiet = logging.makeLogRecord(record.__dict__)
    quiet.exc_info = None
    quiet.exc_text = None
    return quiet


def _quiet_console_tracebacks() -> None:
    """Prefect's console handler prints tracebacks of failed runs; the CLI prints one clear
    line instead (the API log handler still records the traceback for the UI).

    Patched on the handler class because Prefect may re-run its logging setup and replace
    handler instances during a run.
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    original = PrefectConsoleHandler.format
    if getattr(original, "_coldsend_quiet", False):
        return

    def format_quietly(self: PrefectConsoleHandler, record: logging.LogRecord) -> str:
        return original(self, _without_traceback(record))

    format_quietly._coldsend_quiet = True  # type: ignore[attr-defined]
    PrefectConsoleHandler.format = format_quietly  # type: ignore[method-assign, assignment]


def _prepare_environment(args: argparse.Namespace) -> str | None:
    """Settings that must be in place before Prefect is imported. Returns the demo's home."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if args.command == "demo" and not os.environ.get("PREFECT_API_URL"):
        home = os.environ.get("PREFECT_HOME") or str((args.state_dir / "prefect").resolve())
        Path(home).mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = home
        return home
    return os.environ.get("PREFECT_HOME")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


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


def _run_sandbox(args: argparse.Namespace) -> int:
    from sandbox.stack import start_stack

    stack = start_stack(state_dir=args.state_dir, host=args.host, port=args.port)
    print("Sandboxes running (Ctrl-C to stop):")
    print(f"  ColdSend API base URL    {stack.coldsend_base_url}")
    print(f"  ColdSend admin API key   {stack.coldsend_admin_key}")
    print(f"  Salesforce instance URL  {stack.salesforce_url}")
    print(f"  Salesforce client id     {stack.salesforce_client_id}")
    print(f"  Salesforce client secret {stack.salesforce_client_secret}")
    print(f"  Google Sheets base URL   {stack.sheets_url}")
    print(f"  HubSpot base URL         {stack.hubspot_url}")
    print(f"  HubSpot access token     {stack.hubspot_token}")
    print("  Control surfaces: <each URL>/_sandbox/ (keys, seed, advance, faults, stats)")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def _dispatch(args: argparse.Namespace, prefect_home: str | None) -> int:
    if args.command == "scopes":
        from flows.scopes import FLOW_SCOPES

        for flow, scopes in FLOW_SCOPES.items():
            print(f"{flow:<11} {', '.join(sorted(scopes))}")
        return 0
    if args.command == "sandbox":
        return _run_sandbox(args)
    if args.command == "demo":
        return _run_demo(args, prefect_home)
    commands: dict[str, Callable[[], Any]] = {}
    if args.command == "sync":
        from flows.sync import sync_leads_to_campaign

        commands["sync"] = lambda: sync_leads_to_campaign(
            campaign_id=args.campaign_id,
            lead_store=args.lead_store,
            coldsend=args.coldsend,
            incremental=not args.full,
            suppression_list=args.suppress,
            dry_run=args.dry_run,
            parallel_uploads=args.parallel_uploads,
        )
    elif args.command == "launch":
        from flows.campaigns import launch_campaign_when_ready

        commands["launch"] = lambda: launch_campaign_when_ready(
            campaign_id=args.campaign_id,
            coldsend=args.coldsend,
            job_ids=args.job_id,
            wait_for_requirements_seconds=args.wait,
        )
    elif args.command == "write-back":
        from flows.write_back import write_back_statuses

        commands["write-back"] = lambda: write_back_statuses(
            campaign_id=args.campaign_id, lead_store=args.lead_store, coldsend=args.coldsend
        )
    elif args.command == "ensure":
        from flows.campaigns import CampaignSpec, ensure_campaign

        try:
            spec = CampaignSpec.model_validate_json(args.spec.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SystemExit(f"error: cannot read {args.spec}: {exc.strerror}") from None
        commands["ensure"] = lambda: {"campaign_id": ensure_campaign(spec, coldsend=args.coldsend)}
    elif args.command == "serve":
        from app.serve import serve_all

        serve_all(
            campaign_id=args.campaign_id,
            lead_store=args.lead_store,
            coldsend=args.coldsend,
            sync_interval=args.sync_interval,
            write_back_interval=args.write_back_interval,
        )
        return 0
    result = commands[args.command]()
    _print_json(result.model_dump() if hasattr(result, "model_dump") else result)
    return 0


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if type(exc).__name__ in ("ValidationError", "ParameterTypeError"):
        return f"invalid parameters: {text}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `prefect-coldsend` console script."""
    args = _parser().parse_args(argv)
    prefect_home = _prepare_environment(args)
    if not args.debug:
        _quiet_console_tracebacks()
    try:
        return _dispatch(args, prefect_home)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"error: {_describe(exc)}", file=sys.stderr)
        print("(run with --debug for the full traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
