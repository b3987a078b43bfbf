"""The benchmark suite: our Prefect pipeline against a naive integration, side by side.

    python -m bench                      # sizes 1,000 / 10,000 / 100,000; naive at 1,000 / 10,000
    python -m bench --quick              # drop 100,000 (and the parallel demo)
    python -m bench --sizes 1000 --naive-sizes 1000 --latency-ms 20 --no-parallel
    python -m bench --sizes 100000 --naive-sizes '' --no-parallel --profile /tmp/prof
    python -m bench --scale              # 50 campaigns x 2,000 leads on 3 workers (bench/scale.py)

``--profile`` writes a cProfile file per phase, timed in CPU time (``time.process_time``), of the
worker's main thread, where the flows read, build, reconcile and write. For every thread (task
runner, Prefect's API and event threads), sample the worker with py-spy while it runs:
``py-spy record --pid <worker pid> -r 50 -f raw --threads -o spy.txt``. Each phase also records
the time Python's garbage collector took (``gc_s`` in the JSON).

The three sandboxes (ColdSend, Salesforce, Google Sheets) and a Prefect server each run in their
own subprocess with the rate limits lifted and `--latency-ms` injected on every API request.
Each side at each size runs in a fresh worker process, so its CPU time (all threads) and peak
RSS are the client's alone. Requests are counted by the sandboxes themselves, task runs through
the Prefect client. Results: a table on the terminal, JSON under bench/results/, and the latest
table as markdown in bench/RESULTS.md. See bench/report.py for the minimums and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, scale
from bench.prefect_server import prefect_env, running_prefect_server
from bench.sandboxes import ROOT, Sandboxes, SandboxInfo, running_sandboxes

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MARKDOWN = Path(__file__).resolve().parent / "RESULTS.md"
README = Path(__file__).resolve().parent.parent / "README.md"
WORKSHEET = "Leads"


def _sizes(text: str) -> list[int]:
    """ "1000,10_000,100000" -> [1000, 10000, 100000]."""
    return [int(x.strip().replace("_", "")) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=None,
        help="comma-separated lead counts (default 1000,10000,100000)",
    )
    parser.add_argument(
        "--naive-sizes",
        type=_sizes,
        default=None,
        help="sizes for the naive baseline (default 1000,10000)",
    )
    parser.add_argument("--quick", action="store_true", help="skip 100,000 and the parallel demo")
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="injected latency per request"
    )
    parser.add_argument("--advance-steps", type=int, default=3, help="send simulation steps")
    parser.add_argument(
        "--parallel", type=_sizes, default=[1, 4], help="parallel_uploads settings for the demo"
    )
    parser.add_argument("--parallel-size", type=int, default=100_000, help="leads in the demo sync")
    parser.add_argument("--no-parallel", action="store_true", help="skip the parallel-upload demo")
    parser.add_argument(
        "--naive-rerun-max",
        type=int,
        default=1_000,
        help="re-run the naive baseline only at sizes up to this (it repeats every request)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--markdown", default=str(MARKDOWN), help="markdown copy ('' to skip)")
    parser.add_argument(
        "--readme",
        default=str(README),
        help="README whose bench section a full run (all default sizes) rewrites ('' to skip)",
    )
    parser.add_argument("--no-rerun", action="store_true", help="skip the re-runs")
    parser.add_argument(
        "--prefect-api-url", default=None, help="use this Prefect server instead of starting one"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write a cProfile file per phase (CPU time, main thread) here; figures are then inflated",
    )
    parser.add_argument(
        "--render", type=Path, default=None, help="re-render a saved results JSON and exit"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    scale.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    if args.naive_sizes is None:
        args.naive_sizes = [n for n in (1_000, 10_000) if n <= max(args.sizes)]
    if args.quick:
        args.no_parallel = True
    return args


def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gb = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    import prefect

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "prefect": prefect.__version__,
        "load_avg_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


class Orchestrator:
    """Prepares data and blocks for each run, starts the worker, collects task-run counts."""

    def __init__(self, args: argparse.Namespace, info: SandboxInfo, home: Path, api_url: str):
        self.args = args
        self.info = info
        self.home = home
        self.api_url = api_url
        self.sandboxes = Sandboxes(info)
        self.results: list[dict[str, Any]] = []

    def _save_blocks(self, tag: str, spreadsheet_id: str) -> dict[str, str]:
        from blocks import (
            ColdSendCredentials,
            GoogleSheetLeads,
            GoogleSheetsCredentials,
            SalesforceCredentials,
            SalesforceLeads,
        )

        info = self.info
        ColdSendCredentials(api_key=info.coldsend_key, base_url=info.coldsend_base_url).save(
            f"cs-{tag}", overwrite=True
        )
        SalesforceLeads(
            credentials=SalesforceCredentials(
                consumer_key=info.salesforce_client_id,
                consumer_secret=info.salesforce_client_secret,
                login_url=info.salesforce_url,
            )
        ).save(f"sf-{tag}", overwrite=True)
        GoogleSheetLeads(
            credentials=GoogleSheetsCredentials(api_base_url=info.sheets_url),
            spreadsheet_id=spreadsheet_id,
            worksheet=WORKSHEET,
        ).save(f"sheet-{tag}", overwrite=True)
        return {
            "coldsend_block": f"cs-{tag}",
            "salesforce_store": f"salesforce-leads/sf-{tag}",
            "sheet_store": f"google-sheet-leads/sheet-{tag}",
        }

    def _inbox(self) -> str:
        from connectors.coldsend import ColdSendClient

        with ColdSendClient(self.info.coldsend_key, base_url=self.info.coldsend_base_url) as c:
            return c.create_smtp_inbox(
                email_address="sales@bench.example",
                display_name="Bench Sales",
                smtp_host="smtp.bench.example",
                smtp_port=587,
                smtp_username="sales@bench.example",
                smtp_password="sandbox-accepts-anything",  # noqa: S106 (a sandbox inbox)
            ).inbox_id

    def run(self, side: str, size: int, **extra: Any) -> dict[str, Any]:
        """Prepare fresh sandboxes for one side at one size, run its worker, return its figures."""
        tag = f"{side}-{size}-{uuid.uuid4().hex[:6]}"
        sf_leads = extra.pop("salesforce_leads", size - size // 2)
        sheet_leads = extra.pop("sheet_leads", size // 2)
        print(f"[bench] {side} at {size:,} leads ...", flush=True)
        started = time.perf_counter()
        self.sandboxes.prepare(self.args.latency_ms)
        if sf_leads:
            self.sandboxes.seed_salesforce(sf_leads, seed=size)
        rows = [["Email", "First Name", "Last Name", "Company"]] + [
            [f"sheet.lead{i}@events{i % 89}.example.org", f"First{i}", f"Last{i}", "Acme Events"]
            for i in range(sheet_leads)
        ]
        spreadsheet_id = self.sandboxes.create_sheet(f"Bench {tag}", WORKSHEET, rows)
        del rows
        plan = {
            "side": side,
            "size": size,
            "run_tag": tag,
            "sandboxes": json.loads(self.info.to_json()),
            "inbox_id": self._inbox(),
            "spreadsheet_id": spreadsheet_id,
            "salesforce_leads": sf_leads,
            "sheet_leads": sheet_leads,
            "advance_steps": self.args.advance_steps,
            "out": str(self.home / f"result-{tag}.json"),
            "profile": str(self.args.profile.resolve()) if self.args.profile else None,
            **self._save_blocks(tag, spreadsheet_id),
            **extra,
        }
        self.sandboxes.reset_stats()
        result = self._spawn(plan)
        result["task_runs"] = self.task_runs(tag, [p["name"] for p in result["phases"]])
        for phase in result["phases"]:
            phase["task_runs"] = result["task_runs"].get(phase["name"])
        if side in ("ours", "naive"):
            result["end_state"] = self.end_state(spreadsheet_id, sf_leads, sheet_leads)
        result["wall_total_s"] = time.perf_counter() - started
        self.results.append(result)
        print(
            f"[bench] {side} at {size:,} leads done in {result['wall_total_s']:.0f} s", flush=True
        )
        return result

    def _spawn(self, plan: dict[str, Any]) -> dict[str, Any]:
        plan_path = self.home / f"plan-{plan['run_tag']}.json"
        plan_path.touch(mode=0o600)
        plan_path.write_text(json.dumps(plan))
        log_path = self.home / f"worker-{plan['run_tag']}.log"
        env = {**os.environ, **prefect_env(self.home, self.api_url)}
        with log_path.open("w") as log:
            proc = subprocess.run(
                [sys.executable, "-m", "bench", "--worker", str(plan_path)],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        plan_path.unlink()
        if proc.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
            raise SystemExit(f"benchmark worker {plan['run_tag']} failed:\n{tail}")
        result: dict[str, Any] = json.loads(Path(plan["out"]).read_text())
        return result

    def task_runs(self, tag: str, phases: list[str]) -> dict[str, int]:
        """Task runs of the flow runs tagged for each phase (waits for the server to record them)."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterId,
            FlowRunFilterTags,
        )

        def count() -> dict[str, int]:
            out: dict[str, int] = {}
            with get_client(sync_client=True) as client:
                for phase in phases:
                    runs = client.read_flow_runs(
                        flow_run_filter=FlowRunFilter(
                            tags=FlowRunFilterTags(all_=[f"{tag}-{phase}"])
                        )
                    )
                    if not runs:
                        continue
                    tasks = client.read_task_runs(
                        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in runs]))
                    )
                    out[phase] = len(tasks)
            return out

        last = count()
        for _ in range(20):
            time.sleep(1.0)
            now = count()
            if now == last:
                return now
            last = now
        return last

    def end_state(self, spreadsheet_id: str, sf_leads: int, sheet_leads: int) -> dict[str, Any]:
        """Statuses that ended up in the CRM (both sides must write one for every lead)."""
        sf = [r.get("ColdSend_Status__c") for r in self.sandboxes.salesforce_records()]
        values = self.sandboxes.sheet_values(spreadsheet_id, WORKSHEET)
        header = values[0] if values else []
        col = header.index("ColdSend Status") if "ColdSend Status" in header else None
        sheet = [r[col] if col is not None and col < len(r) else "" for r in values[1:]]
        return {
            "salesforce_with_status": sum(1 for s in sf if s),
            "salesforce_records": len(sf),
            "sheet_rows_with_status": sum(1 for s in sheet if s),
            "sheet_rows": len(sheet),
            "complete": sum(1 for s in sf if s) == sf_leads
            and sum(1 for s in sheet if s) == sheet_leads,
        }


def worker(plan_path: Path) -> None:
    plan = json.loads(plan_path.read_text())
    if plan["side"] == "ours":
        from bench.ours import run

        run(plan)
    elif plan["side"] == "naive":
        from bench.naive import run as run_naive

        run_naive(plan)
    elif plan["side"] == "parallel":
        from bench.ours import run_parallel_demo

        run_parallel_demo(plan)
    else:
        raise SystemExit(f"unknown side {plan['side']!r}")


def _update_readme(path: str, summary: dict[str, Any]) -> None:
    """Rewrite the README's bench section, only from a run of every default size and the demo."""
    if path and report.is_full_run(summary):
        readme = Path(path)
        readme.write_text(report.update_readme(readme.read_text(), summary))
        print(f"README: {readme}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.scale:
        return scale.main(args)
    if args.worker:
        worker(args.worker)
        return 0
    if args.render:
        saved = json.loads(args.render.read_text())
        summary = report.summarize(report.results_from_summary(saved), saved["meta"])
        print(report.render(summary))
        if args.markdown:
            Path(args.markdown).write_text(report.markdown(summary))
        _update_readme(args.readme, summary)
        return 0
    started = time.perf_counter()
    home = Path(tempfile.mkdtemp(prefix="coldsend-bench-"))
    try:
        server = (
            nullcontext(args.prefect_api_url)
            if args.prefect_api_url
            else running_prefect_server(home)
        )
        with server as api_url, running_sandboxes() as info:
            os.environ.update(prefect_env(home, api_url))
            orch = Orchestrator(args, info, home, api_url)
            for size in args.sizes:
                orch.run("ours", size, rerun=not args.no_rerun)
                if size in args.naive_sizes:
                    rerun = size <= args.naive_rerun_max and not args.no_rerun
                    orch.run("naive", size, rerun=rerun)
            if not args.no_parallel:
                orch.run(
                    "parallel",
                    args.parallel_size,
                    salesforce_leads=args.parallel_size,
                    sheet_leads=0,
                    parallel=args.parallel,
                )
            meta = {
                "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                "latency_ms": args.latency_ms,
                "sizes": args.sizes,
                "naive_sizes": args.naive_sizes,
                "bench_wall_s": time.perf_counter() - started,
            }
            summary = report.summarize(orch.results, meta)
            orch.sandboxes.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    text = report.render(summary)
    print(text)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / f"bench-{stamp}.json"
    out.write_text(json.dumps(summary, indent=1))
    print(f"\nJSON: {out}")
    if args.markdown:
        Path(args.markdown).write_text(report.markdown(summary))
        print(f"Markdown: {args.markdown}")
    _update_readme(args.readme, summary)
    failed = [t for t in summary["targets"] if t["pass"] is False]
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
