"""Benchmark: HubSpot sync reads and status write-back at HubSpot's real rate limits.

The HubSpot sandbox runs in its own subprocess with the account's real limits (a rolling
10-second bucket of 100 or 190 requests, 5 searches a second) and `--latency-ms` injected on
every request; this process runs the connector on the real hubspot-api-client, so its CPU time
and peak RSS are the client's alone. Three phases:

* full read: every contact through the objects API (100 a page), as a first sync reads;
* incremental read: every contact through CRM search (200 a page) with the
  (lastmodifieddate, hs_object_id) cursor, `--identical` of them sharing one timestamp;
* write-back: `--writes` changed statuses (batch read + batch update, 100 a call).

For each: HubSpot requests against the minimum, 429 answers (target 0), wall time against the
time the rate limits alone impose (target within 1.2x), client CPU per contact, peak RSS.

    .venv/bin/python -m bench.bench_hubspot                      # 200,000 contacts, 100,000 writes
    .venv/bin/python -m bench.bench_hubspot --contacts 20000 --writes 10000 --per-ten-seconds 100
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.sandboxes import ROOT
from connectors.hubspot import (
    HubSpotConnection,
    HubSpotContactSource,
    HubSpotLimits,
    HubSpotStatusSink,
)
from connectors.leads import Lead, LeadStatus, StatusUpdate

STATUSES = [LeadStatus.SENT, LeadStatus.OPENED, LeadStatus.REPLIED, LeadStatus.BOUNCED]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def imposed_seconds(requests: int, limit: int, window: float) -> float:
    """The least time `requests` take under a rolling window of `limit` per `window` seconds:
    the first `limit` go at once, each later one waits for a slot to free."""
    if requests <= limit:
        return 0.0
    return math.ceil((requests - limit) / limit) * window


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_hubspot")
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--identical", type=int, default=20_000, help="sharing one timestamp")
    parser.add_argument("--writes", type=int, default=100_000)
    parser.add_argument("--per-ten-seconds", type=int, default=190, choices=[100, 190])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--phases", default="full,incremental,writeback", help="comma-separated subset"
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=11.0,
        help="pause before each phase, so it starts with an empty rate-limit window",
    )
    args = parser.parse_args(argv)
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}

    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.sandboxes", "hubspot"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        return _run(args, phases, info)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def _run(args: argparse.Namespace, phases: set[str], info: dict[str, str]) -> dict[str, Any]:
    http = httpx.Client(timeout=600.0, trust_env=False)

    def control(method: str, path: str, body: Any = None) -> Any:
        response = http.request(method, f"{info['url']}/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json()

    base_ms = int(time.time() * 1000) - 86_400_000
    control(
        "POST",
        "seed",
        {"count": args.identical, "same_modified": args.identical, "modified_ms": base_ms},
    )
    rest = args.contacts - args.identical
    control("POST", "seed", {"count": rest, "modified_ms": base_ms, "spacing_ms": 50})
    limits = HubSpotLimits(per_ten_seconds=args.per_ten_seconds, searches_per_second=5)
    control(
        "PUT",
        "limits",
        {"ten_second_limit": args.per_ten_seconds, "search_per_second": 5, "daily_limit": 10**9},
    )
    control("PUT", "faults", {"latency_ms": args.latency_ms})

    def connect() -> HubSpotConnection:
        conn = HubSpotConnection(access_token=info["token"], base_url=info["url"], limits=limits)
        conn.properties()
        return conn

    results: dict[str, Any] = {
        "contacts": args.contacts,
        "identical_timestamps": args.identical,
        "writes": args.writes,
        "per_ten_seconds": args.per_ten_seconds,
        "latency_ms": args.latency_ms,
        "rss_start_mb": round(_rss_mb(), 1),
        "phases": {},
    }

    def measure(
        name: str,
        run: Callable[[HubSpotConnection], int],
        conn: HubSpotConnection,
        minimum: int,
        imposed: float,
        per: int,
    ) -> None:
        # Pacing starts fresh: the earlier phase's window is over.
        time.sleep(args.settle_seconds)
        control("POST", "stats/reset")
        before = conn.request_count
        wall, cpu = time.perf_counter(), time.process_time()
        count = run(conn)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stats = control("GET", "stats")
        made = conn.request_count - before
        row = {
            "items": count,
            "requests": made,
            "minimum_requests": minimum,
            "requests_vs_minimum": round(made / minimum, 3) if minimum else None,
            "http_429": sum(stats.get("rate_limited", {}).values()),
            "wall_s": round(wall, 1),
            "rate_limit_imposed_s": round(imposed, 1),
            "wall_vs_imposed": round(wall / imposed, 3) if imposed else None,
            "mean_s_per_request": round(wall / made, 3) if made else None,
            "client_cpu_us_per_contact": round(cpu / per * 1e6, 1),
            "peak_rss_mb": round(_rss_mb(), 1),
            "routes": stats["requests"],
        }
        results["phases"][name] = row
        print(f"{name}: {json.dumps({k: v for k, v in row.items() if k != 'routes'})}", flush=True)

    window = 10.0
    if "full" in phases:

        def full(conn: HubSpotConnection) -> int:
            return sum(1 for _ in HubSpotContactSource(conn).read())

        minimum = math.ceil(args.contacts / 100)
        measure(
            "full read (objects API)",
            full,
            connect(),
            minimum,
            imposed_seconds(minimum, args.per_ten_seconds, window),
            args.contacts,
        )
    if "incremental" in phases:
        from datetime import UTC, datetime

        since = datetime.fromtimestamp((base_ms - 1000) / 1000, UTC)

        def incremental(conn: HubSpotConnection) -> int:
            n = 0
            for item in HubSpotContactSource(conn).read(since=since):
                assert isinstance(item, Lead)
                n += 1
            assert n == args.contacts, n
            return n

        minimum = math.ceil(args.contacts / 200)
        measure(
            "incremental read (search)",
            incremental,
            connect(),
            minimum,
            imposed_seconds(minimum, 5, 1.0),
            args.contacts,
        )
    if "writeback" in phases:
        first = 1001
        updates = [StatusUpdate("", STATUSES[i % 4], str(first + i)) for i in range(args.writes)]
        conn = connect()
        sink = HubSpotStatusSink(conn)
        sink.ensure_properties()

        def write(conn: HubSpotConnection) -> int:
            result = sink.write_statuses(updates)
            assert result.written == args.writes and result.balanced, result
            return result.written

        minimum = 2 * math.ceil(args.writes / 100)
        measure(
            "write-back",
            write,
            conn,
            minimum,
            imposed_seconds(minimum, args.per_ten_seconds, window),
            args.writes,
        )
    http.close()
    return results


if __name__ == "__main__":
    out = main()
    print(json.dumps(out, indent=2))
