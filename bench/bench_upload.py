"""Benchmark: build and upload 100,000 leads to a ColdSend emulator; client CPU, memory, requests.

Run with ``python -m bench.bench_upload`` (``--leads N`` to change the size). The emulator runs
in its own subprocess with the rate limits lifted, so this process's CPU time is the client's
alone. Each measured run is a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own.

Reported per run: client CPU per lead for the whole pipeline (lead generation included) and
for the client alone (the generation measured separately and subtracted), peak RSS, HTTP
requests (uploads and polls) and wall time. Targets: <= 15 us client CPU per lead, RSS at
100,000 leads within 50 MB of RSS at 1,000, and at most 40 requests for 100,000 leads.
Results are printed as a table and written as JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
KEY_ENV = "COLDSEND_BENCH_KEY"  # the key goes through the environment, never argv


def _leads(n: int) -> Iterator[Any]:
    from connectors.leads import Lead

    for i in range(1, n + 1):
        yield Lead(
            email=f"prospect{i}@example{i % 97}.com",
            first_name="Alexandra",
            last_name=f"Lastname{i}",
            company="Example Industries GmbH",
            custom_fields={"industry": "Manufacturing", "title": "Head of Operations"},
            source_id=f"00Q5e00000{i:08d}",
            row_number=i,
        )


def serve() -> None:
    """Run the emulator until stdin closes; print its address and admin key as one JSON line."""
    from sandbox._server import start_server
    from sandbox.coldsend.app import create_app

    app = create_app(per_minute=10_000_000, per_hour=100_000_000)
    server = start_server(app)
    print(
        json.dumps({"base_url": f"{server.url}/api/public/v1", "admin_key": app.sandbox.admin_key}),
        flush=True,
    )
    sys.stdin.read()
    server.stop()


def worker(n: int, base_url: str) -> dict[str, Any]:
    """One measured run in this (fresh) process."""
    from connectors.coldsend import ColdSendClient, upload_leads

    # What producing the leads costs, to separate the client's share.
    started = time.process_time()
    for _ in _leads(n):
        pass
    generation_cpu = time.process_time() - started

    with ColdSendClient(os.environ[KEY_ENV], base_url=base_url, timeout=120) as client:
        campaign_id = client.create_campaign(name=f"Benchmark {n} leads").campaign_id
        setup_requests = client.request_count
        wall = time.perf_counter()
        cpu = time.process_time()
        results = list(
            upload_leads(client, campaign_id, _leads(n), custom_fields=["industry", "title"])
        )
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        requests = client.request_count - setup_requests
        retries = client.stats.retries
    imported = sum(r.success for r in results)
    if imported != n or not all(r.balanced for r in results):
        raise SystemExit(f"benchmark upload incomplete: {imported} of {n} imported")
    return {
        "leads": n,
        "parts": len(results),
        "requests": requests,
        "uploads": len(results),
        "polls": requests - len(results),
        "retries": retries,
        "cpu_s": cpu,
        "cpu_us_per_lead": cpu / n * 1e6,
        "client_cpu_us_per_lead": (cpu - generation_cpu) / n * 1e6,
        "generation_us_per_lead": generation_cpu / n * 1e6,
        "wall_s": wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _run_worker(n: int, server: dict[str, str]) -> dict[str, Any]:
    env = {**os.environ, KEY_ENV: server["admin_key"]}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bench_upload",
            "--worker",
            str(n),
            "--base-url",
            server["base_url"],
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.worker:
        print(json.dumps(worker(args.worker, args.base_url)))
        return 0

    root = Path(__file__).resolve().parent.parent
    with subprocess.Popen(
        [sys.executable, "-m", "bench.bench_upload", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    ) as emulator:
        assert emulator.stdout is not None and emulator.stdin is not None
        server = json.loads(emulator.stdout.readline())
        try:
            runs = [_run_worker(n, server) for n in (args.small, args.leads)]
        finally:
            emulator.stdin.close()
            emulator.wait(timeout=30)

    small, big = runs
    rss_growth = big["peak_rss_mb"] - small["peak_rss_mb"]
    checks = {
        "client CPU <= 15 us/lead (whole pipeline)": big["cpu_us_per_lead"] <= 15,
        "RSS growth 1k -> big <= 50 MB": rss_growth <= 50,
        "requests <= 40 for 100,000 leads": big["requests"] <= 40 * max(1, big["leads"] // 100_000),
    }
    print(f"\nColdSend upload benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    header = f"{'leads':>8} {'parts':>5} {'uploads':>7} {'polls':>5} {'retries':>7} {'CPU us/lead':>11} {'client-only':>11} {'gen':>6} {'wall s':>7} {'peak RSS MB':>11}"
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r['leads']:>8,} {r['parts']:>5} {r['uploads']:>7} {r['polls']:>5} {r['retries']:>7} "
            f"{r['cpu_us_per_lead']:>11.2f} {r['client_cpu_us_per_lead']:>11.2f} "
            f"{r['generation_us_per_lead']:>6.2f} {r['wall_s']:>7.2f} {r['peak_rss_mb']:>11.1f}"
        )
    naive = big["leads"]  # one POST /leads/manual per lead
    print(f"\nRSS growth {small['leads']:,} -> {big['leads']:,} leads: {rss_growth:.1f} MB")
    print(
        f"requests vs one manual add per lead: {big['requests']} vs {naive:,} ({naive / big['requests']:,.0f}x fewer)"
    )
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench_upload-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(
        json.dumps({"runs": runs, "rss_growth_mb": rss_growth, "checks": checks}, indent=2) + "\n",
        encoding="utf-8",
    )
    print(f"\nwrote {path.relative_to(root)}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
