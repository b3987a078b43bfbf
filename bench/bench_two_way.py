"""Benchmark: the two-way sync's steady state (100,000 leads, 1% edited, 0.5% opted out).

    .venv/bin/python -m bench.bench_two_way                    # real limits: 100/min, 1,000/hour
    .venv/bin/python -m bench.bench_two_way --leads 10000 --lifted-limits

A CSV lead store of N leads is synced into a DRAFT campaign (every lead PENDING: the worst
case for finding lead ids, since every PENDING lead is a candidate). Then 1% of the rows get
a new company and 0.5% are marked opted out, and the sync runs again: that run is measured.
A third run with nothing changed shows the cost of a quiet run. The ColdSend emulator runs in
its own process at the contract's rate limits (unless --lifted-limits), the Prefect server in
another (Prefect's test harness), so the CPU time measured here is the client's: the flow,
Prefect's client threads and the HTTP client.

Printed: ColdSend requests by route against the contract's minimum for the same end state,
wall time, and client CPU per lead read. The minimum: the export (1), the update upload and
one read of its job per 10,000 edited leads, the lead ids of the opted-out PENDING leads (the
export has none: the cheaper of one search per lead and listing PENDING leads 100 a page),
and one DELETE per 10,000 ids. The campaign listing (1) is counted in the minimum too.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
HEADER = ["Email", "First Name", "Last Name", "Company", "Unsubscribed"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([HEADER, *rows])


def minimum_requests(edited: int, opted_out: int, pending: int) -> int:
    """The fewest ColdSend requests the contract allows for the steady-state run's end state."""
    updates = math.ceil(edited / 10_000) * 2  # upload + one job read
    lookups = min(opted_out, math.ceil(pending / 100)) if opted_out else 0
    deletes = math.ceil(opted_out / 10_000)
    return 1 + 1 + updates + lookups + deletes  # listing + export + ...


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_two_way")
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--edited", type=float, default=0.01, help="share of leads edited")
    parser.add_argument("--opted-out", type=float, default=0.005, help="share opted out")
    parser.add_argument(
        "--lifted-limits", action="store_true", help="no rate limits (CPU and request counts only)"
    )
    args = parser.parse_args(argv)
    per_minute, per_hour = (10**6, 10**7) if args.lifted_limits else (100, 1000)

    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.coldsend",
            "--port",
            str(port),
            "--per-minute",
            str(per_minute),
            "--per-hour",
            str(per_hour),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        control = httpx.Client(base_url=f"{root}/_sandbox", timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                control.get("/stats").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        control.put("/jobs", json={"rows_per_second": 1_000_000}).raise_for_status()
        return _run(args, control, root)
    finally:
        server.terminate()
        server.wait(30)


def _run(args: argparse.Namespace, control: httpx.Client, root: str) -> dict[str, Any]:
    from prefect.testing.utilities import prefect_test_harness

    from blocks import ColdSendCredentials, CsvFileLeads
    from connectors.coldsend import ColdSendClient
    from connectors.leads import FieldMapping

    scopes = ["campaigns:read", "leads:read", "leads:create", "leads:update", "leads:delete"]
    key = control.post("/keys", json={"scopes": ["campaigns:create", *scopes]}).json()["api_key"]
    base = f"{root}/api/public/v1"
    with ColdSendClient(key, base_url=base) as client:
        campaign_id = client.create_campaign(name="Two-way steady state bench").campaign_id
    n = args.leads
    rng = random.Random(7)
    rows = [
        [f"lead{i}@bench.example", f"First{i}", f"Last{i}", f"Company {i}", ""] for i in range(n)
    ]
    tmp = Path(tempfile.mkdtemp(prefix="two-way-bench-"))
    path = tmp / "leads.csv"
    _write(path, rows)
    edited = rng.sample(range(n), int(n * args.edited))
    opted = rng.sample(sorted(set(range(n)) - set(edited)), int(n * args.opted_out))

    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    with prefect_test_harness(server_startup_timeout=120):
        from flows.sync import sync_leads_to_campaign

        ColdSendCredentials(api_key=key, base_url=base).save("bench-two-way", overwrite=True)
        CsvFileLeads(
            path=str(path),
            mapping=FieldMapping(
                email="Email", first_name="First Name", last_name="Last Name", company="Company"
            ),
        ).save("bench-two-way", overwrite=True)

        def sync() -> tuple[Any, dict[str, int], float, float]:
            control.post("/stats/reset").raise_for_status()
            wall, cpu = time.perf_counter(), time.process_time()
            report = sync_leads_to_campaign(
                campaign_id=campaign_id,
                lead_store="csv-file-leads/bench-two-way",
                coldsend="bench-two-way",
                max_updates_per_run=max(1, len(edited)),
            )
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            requests = dict(control.get("/stats").json()["requests"])
            return report, requests, wall, cpu

        first, first_requests, first_wall, first_cpu = sync()
        for i in edited:
            rows[i][3] = f"Company {i} (renamed)"
        for i in opted:
            rows[i][4] = "yes"
        _write(path, rows)
        steady, requests, wall, cpu = sync()
        quiet, quiet_requests, quiet_wall, quiet_cpu = sync()

    total = sum(requests.values())
    minimum = minimum_requests(len(edited), len(opted), pending=n)
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "leads": n,
        "edited": len(edited),
        "opted_out": len(opted),
        "rate_limits": "lifted" if args.lifted_limits else "100/min, 1000/hour",
        "first_sync": {
            "uploaded": first.uploaded,
            "requests": sum(first_requests.values()),
            "wall_s": round(first_wall, 1),
            "cpu_us_per_lead": round(first_cpu / n * 1e6, 1),
        },
        "steady_state": {
            "updated": steady.updated,
            "update_path": steady.update_path,
            "deleted": steady.deleted,
            "opted_out": steady.opted_out,
            "could_not_remove": len(steady.could_not_remove),
            "requests": total,
            "minimum_requests": minimum,
            "ratio": round(total / minimum, 3),
            "by_route": requests,
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 2),
            "cpu_us_per_lead": round(cpu / n * 1e6, 1),
        },
        "quiet_rerun": {
            "requests": sum(quiet_requests.values()),
            "changes": quiet.updated + quiet.deleted + quiet.uploaded,
            "wall_s": round(quiet_wall, 1),
            "cpu_us_per_lead": round(quiet_cpu / n * 1e6, 1),
        },
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench_two_way-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    assert steady.updated == len(edited) and steady.deleted == len(opted), "wrong end state"
    assert quiet.updated + quiet.deleted + quiet.uploaded == 0, "a quiet run changed something"
    return result


if __name__ == "__main__":
    main()
