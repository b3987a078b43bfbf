"""Scale bench: many campaigns at once on a Prefect server on PostgreSQL with several workers.

    python -m bench --scale                                  # 50 campaigns x 2,000 leads, 3 workers
    python -m bench --scale --campaigns 10 --leads 500       # a quicker look

Everything runs as users run it: the three sandboxes in subprocesses (20 ms latency on every
API request; ColdSend at its real limits, 100 requests a minute and 1,000 an hour per key,
from the moment the syncs start), a throwaway PostgreSQL cluster (tests/e2e/_postgres.py:
Debian's postgresql, installed when missing and running as root), `prefect server start` on
it, `prefect deploy` of one sync deployment per campaign (generated from
deployments/prefect.yaml, whose build step creates the key's shared API budget) and
`prefect worker start` processes. One flow run per deployment is created at once; the clock
runs until the last one completes.

Figures:

* wall time against the budget-limited minimum: the time the key's budget needs for the
  requests the runs made, at its sustained rate (100 a minute, 1,000 an hour); and against
  the theoretical minimum of requests (one upload and one job read per campaign).
* answers of 429 (ColdSend and Sheets), ColdSend requests against the minimum.
* Prefect per flow run: created -> running (worker poll, process start, Prefect import, pull
  step), running -> completed, and the same for an empty flow; the flow-run heartbeat join
  (Prefect 3.8.8 joins each run's heartbeat thread at its end), measured in-process with
  heartbeats at Prefect's default and off.

The machine may be busy: the report prints its load average; rerun on an idle machine for
figures to compare.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.sandboxes import ROOT, UNLIMITED, Sandboxes, running_sandboxes

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCALE_MD = Path(__file__).resolve().parent / "SCALE.md"
COLDSEND_PER_MINUTE = 100
COLDSEND_PER_HOUR = 1_000
POOL = "coldsend-scale"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scale mode (--scale)")
    group.add_argument("--scale", action="store_true", help="run the scale bench instead")
    group.add_argument("--campaigns", type=int, default=50, help="campaigns (one sync each)")
    group.add_argument("--leads", type=int, default=2_000, help="leads per campaign")
    group.add_argument("--workers", type=int, default=3, help="process workers")
    group.add_argument(
        "--worker-limit",
        type=int,
        default=6,
        help="flow runs each worker runs at once (each is a Python process of ~200 MB)",
    )
    group.add_argument(
        "--heartbeat-runs", type=int, default=8, help="flow runs per heartbeat measurement"
    )


def _generated_yaml(path: Path, syncs: list[tuple[str, str, str]]) -> Path:
    config = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    template = next(d for d in config["deployments"] if d["name"] == "sync-every-15-minutes")
    deployments = []
    for name, campaign_id, store in syncs:
        sync = {**template, "name": name}
        sync["parameters"] = {
            "campaign_id": campaign_id,
            "lead_store": store,
            "coldsend": "{{ $COLDSEND_BLOCK }}",
        }
        sync["work_pool"] = {**template["work_pool"], "name": POOL}
        deployments.append(sync)
    config["deployments"] = deployments
    config.pop("definitions", None)
    # Each generated deployment names its own campaign and store: of the build steps keep the
    # one creating the key's shared budget (not the check of COLDSEND_CAMPAIGN_ID & co.).
    config["build"] = [s for s in config["build"] if "flows.budgets.create_api_budgets" in s]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def budget_limited_seconds(requests: int) -> float:
    """The least time one key's budget allows `requests` in: 100 a minute sustained, and a
    further hour for every full 1,000 beyond the first (the hourly window)."""
    per_minute = requests / COLDSEND_PER_MINUTE * 60
    per_hour = (math.ceil(requests / COLDSEND_PER_HOUR) - 1) * 3600
    return max(per_minute, per_hour)


def _iso(text: str | None) -> float:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def heartbeat_join_cost(runs: int) -> dict[str, float]:
    """Median wall time of an empty flow with one sub-flow, heartbeats on (default) and off.

    Runs in a child process with its own temporary Prefect server, so the setting and the
    server's start stay out of this process.
    """
    code = f"""
import json, statistics, time
import prefect.settings as ps
from prefect import flow
from prefect.settings import temporary_settings
from prefect.testing.utilities import prefect_test_harness

@flow
def child() -> int:
    return 1

@flow
def parent() -> int:
    return child()

def timed() -> float:
    out = []
    for _ in range({runs}):
        t = time.perf_counter(); parent(); out.append(time.perf_counter() - t)
    return statistics.median(out)

with prefect_test_harness(server_startup_timeout=120):
    parent()
    on = timed()
    with temporary_settings(updates={{ps.PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}}):
        off = timed()
print(json.dumps({{"on": on, "off": off}}))
"""
    env = {
        **os.environ,
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    with tempfile.TemporaryDirectory(prefix="coldsend-hb-") as home:
        env["PREFECT_HOME"] = home
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
            cwd=ROOT,
        )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    # Two flow runs (parent and child) per measured call.
    return {
        "parent_and_child_on_s": figures["on"],
        "parent_and_child_off_s": figures["off"],
        "per_flow_run_s": (figures["on"] - figures["off"]) / 2,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from blocks import ColdSendCredentials, CsvFileLeads
    from blocks.budgets import coldsend_budgets
    from connectors.coldsend import ColdSendClient
    from tests.e2e._postgres import ThrowawayPostgres, ensure_postgres_bin
    from tests.e2e._prefect import TERMINAL, PrefectProcesses

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="coldsend-scale-"))
    postgres = ThrowawayPostgres(ensure_postgres_bin())
    figures: dict[str, Any] = {
        "campaigns": args.campaigns,
        "leads_per_campaign": args.leads,
        "workers": args.workers,
        "worker_limit": args.worker_limit,
        "latency_ms": args.latency_ms,
        "load_average_at_start": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    try:
        postgres.start()
        with (
            running_sandboxes() as info,
            PrefectProcesses(
                work, extra_env={"PREFECT_LOGGING_TO_API_ENABLED": "false"}
            ) as prefect,
        ):
            sandboxes = Sandboxes(info)
            sandboxes.prepare(args.latency_ms)
            http = httpx.Client(base_url=info.coldsend_url, timeout=60)
            key = http.post(
                "/_sandbox/keys",
                json={"scopes": ["campaigns:read", "leads:read", "leads:create"], "name": "scale"},
            ).json()["api_key"]

            # -- setup, not measured: campaigns and CSV stores (the admin key, limits lifted)
            campaigns: list[str] = []
            with ColdSendClient(info.coldsend_key, base_url=info.coldsend_base_url) as admin:
                for i in range(args.campaigns):
                    campaigns.append(admin.create_campaign(name=f"Scale bench #{i}").campaign_id)
            stores: list[str] = []
            for i in range(args.campaigns):
                path = work / f"leads{i}.csv"
                with path.open("w", newline="") as fh:
                    writer = csv.writer(fh)
                    writer.writerow(["Email", "First Name", "Company"])
                    writer.writerows(
                        [f"c{i}.lead{n}@example.com", f"F{n}", "Acme"] for n in range(args.leads)
                    )
                stores.append(str(path))

            t = time.monotonic()
            prefect.start_server(
                timeout=240, env={"PREFECT_API_DATABASE_CONNECTION_URL": postgres.url}
            )
            figures["server_start_s"] = time.monotonic() - t
            prefect.cli("block", "register", "-m", "blocks")
            with prefect.client_settings():
                ColdSendCredentials(api_key=key, base_url=info.coldsend_base_url).save("scale")
                for i, path_text in enumerate(stores):
                    CsvFileLeads(path=path_text).save(f"scale-{i}")
            prefect.cli("work-pool", "create", POOL, "--type", "process")
            syncs = [
                (f"scale-sync-{i}", cid, f"csv-file-leads/scale-{i}")
                for i, cid in enumerate(campaigns)
            ]
            spec = _generated_yaml(work / "prefect.yaml", syncs)
            t = time.monotonic()
            prefect.cli(
                "deploy",
                "--all",
                "--prefect-file",
                str(spec),
                "--no-prompt",
                env={"COLDSEND_BLOCK": "scale"},
                timeout=1800,
            )
            figures["deploy_s"] = time.monotonic() - t
            budgets = [b.name for b in coldsend_budgets(key)]
            for name in budgets:
                prefect.get(f"/v2/concurrency_limits/{name}")  # the build step made them
            deployments = [prefect.deployment("sync-leads-to-campaign", n) for n, _, _ in syncs]
            workers = [
                prefect.start_worker(
                    POOL, name=f"worker-{n}", extra_args=["--limit", str(args.worker_limit)]
                )
                for n in range(args.workers)
            ]
            # Measure runs, not worker start-up: wait until every worker polls the pool.
            prefect.wait_for(
                "the workers to start",
                lambda: all("started!" in w.log.read_text(errors="replace") for w in workers),
                timeout=600,
            )

            # -- measured: ColdSend at its real limits from here on
            http.put(
                "/_sandbox/limits",
                json={"per_minute": COLDSEND_PER_MINUTE, "per_hour": COLDSEND_PER_HOUR},
            )
            sandboxes.reset_stats()
            t0 = time.monotonic()
            run_ids = [
                prefect.post(f"/deployments/{d['id']}/create_flow_run", {})["id"]
                for d in deployments
            ]

            def finished() -> list[dict[str, Any]] | None:
                runs = [prefect.flow_run(r) for r in run_ids]
                return runs if all(r["state_type"] in TERMINAL for r in runs) else None

            runs = prefect.wait_for(
                "every sync to finish", finished, timeout=3 * 3600, interval=2.0
            )
            wall = time.monotonic() - t0
            http.put("/_sandbox/limits", json={"per_minute": UNLIMITED, "per_hour": UNLIMITED})
            states = [r["state_type"] for r in runs]
            coldsend_stats = http.get("/_sandbox/stats").json()
            sheets_stats = sandboxes._call("sheets", "GET", "stats")
            requests = int(coldsend_stats["total"])
            minimum = 2 * math.ceil(args.leads / 10_000) * args.campaigns
            budget_s = budget_limited_seconds(requests)
            budget_min_s = budget_limited_seconds(minimum)
            with ColdSendClient(info.coldsend_key, base_url=info.coldsend_base_url) as admin:
                held = [admin.get_campaign(cid).total_leads for cid in campaigns]
            starts = [_iso(r["start_time"]) - _iso(r["created"]) for r in runs if r["start_time"]]
            durations = [r["total_run_time"] for r in runs]
            figures.update(
                {
                    "wall_s": wall,
                    "states": {s: states.count(s) for s in sorted(set(states))},
                    "every_campaign_complete": all(h == args.leads for h in held),
                    "coldsend_requests": requests,
                    "coldsend_requests_by_route": coldsend_stats["requests"],
                    "coldsend_requests_minimum": minimum,
                    "coldsend_429": coldsend_stats.get("rate_limited", 0),
                    "sheets_429": sheets_stats.get("rate_limited", 0),
                    "budget_limited_s": budget_s,
                    "wall_over_budget_limited": wall / budget_s,
                    "budget_limited_minimum_s": budget_min_s,
                    "wall_over_budget_limited_minimum": wall / budget_min_s,
                    "run_created_to_running_median_s": _median(starts),
                    "run_created_to_running_max_s": max(starts, default=float("nan")),
                    "run_running_median_s": _median(durations),
                    "database_is_locked": sum(
                        "database is locked" in c.log.read_text(errors="replace")
                        for c in prefect.children.values()
                    ),
                    "load_average_at_end": os.getloadavg(),
                }
            )
            http.close()
            sandboxes.close()
    finally:
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    figures["heartbeat"] = heartbeat_join_cost(args.heartbeat_runs)
    figures["bench_wall_s"] = time.monotonic() - started
    figures["taken_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return figures


def render(f: dict[str, Any]) -> str:
    hb = f["heartbeat"]
    lines = [
        f"Scale bench: {f['campaigns']} campaigns x {f['leads_per_campaign']:,} leads, "
        f"{f['workers']} process workers (at most {f['worker_limit']} runs each), Prefect "
        f"server on PostgreSQL, {f['latency_ms']:.0f} ms latency, ColdSend at 100/min and "
        f"1,000/h. {f['cpus']} CPUs; load average {f['load_average_at_start'][0]:.1f} at "
        f"start, {f['load_average_at_end'][0]:.1f} at end.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| flow runs | {f['states']} |",
        f"| every campaign holds its leads | {f['every_campaign_complete']} |",
        f"| wall time, all syncs | {f['wall_s']:.0f} s |",
        f"| budget-limited time for the requests made (100/min sustained) | "
        f"{f['budget_limited_s']:.0f} s -> wall {f['wall_over_budget_limited']:.2f}x (target 1.3x) |",
        f"| budget-limited time for the minimum requests | {f['budget_limited_minimum_s']:.0f} s "
        f"-> wall {f['wall_over_budget_limited_minimum']:.2f}x |",
        f"| ColdSend requests | {f['coldsend_requests']} vs minimum "
        f"{f['coldsend_requests_minimum']} = "
        f"{f['coldsend_requests'] / f['coldsend_requests_minimum']:.2f}x |",
        f"| answers of 429 (ColdSend, Sheets) | {f['coldsend_429']}, {f['sheets_429']} |",
        f"| 'database is locked' in server/worker logs | {f['database_is_locked']} |",
        f"| Prefect server start on PostgreSQL | {f['server_start_s']:.0f} s |",
        f"| prefect deploy of {f['campaigns']} deployments | {f['deploy_s']:.0f} s |",
        f"| per flow run: created -> running (median, max) | "
        f"{f['run_created_to_running_median_s']:.1f} s, {f['run_created_to_running_max_s']:.1f} s |",
        f"| per flow run: running -> completed (median) | {f['run_running_median_s']:.1f} s |",
        f"| heartbeat join: flow + sub-flow, heartbeats on / off | "
        f"{hb['parent_and_child_on_s']:.2f} s / {hb['parent_and_child_off_s']:.2f} s "
        f"({hb['per_flow_run_s']:.2f} s per flow run) |",
        "",
        "ColdSend requests by route: "
        + ", ".join(f"{k} {v}" for k, v in f["coldsend_requests_by_route"].items()),
        f"Whole bench: {f['bench_wall_s'] / 60:.1f} min. Idle rerun: python -m bench --scale",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    figures = run(args)
    text = render(figures)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"scale-{stamp}.json"
    out.write_text(json.dumps(figures, indent=1, default=str))
    print(f"JSON: {out}")
    if args.markdown:
        SCALE_MD.write_text(
            "# Scale bench\n\nLatest `python -m bench --scale` (bench/scale.py), taken "
            f"{figures['taken_at']}.\n\n{text}\n\n## Method\n\n{__doc__}"
        )
        print(f"Markdown: {SCALE_MD}")
    return 0
