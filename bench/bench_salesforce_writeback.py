"""Benchmark: Salesforce write-back requests (our sink vs one PATCH per record) and read CPU per lead.

Runs the loopback emulator in this process and the real simple-salesforce against it.
The client's CPU is measured with `time.thread_time` on the calling thread, so the emulator's
own work (another thread) is not counted.

    .venv/bin/python bench/bench_salesforce_writeback.py [--n 10000] [--naive-n 10000] [--read-n 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.leads import LeadStatus, StatusUpdate
from connectors.salesforce import (
    ApiBudget,
    SalesforceConnection,
    SalesforceLeadSource,
    SalesforceStatusSink,
)
from sandbox._server import serving
from sandbox.salesforce import create_app
from sandbox.salesforce.fixtures import SalesforceSandbox

STATUSES = [LeadStatus.SENT, LeadStatus.OPENED, LeadStatus.REPLIED, LeadStatus.BOUNCED]


def measure(
    sandbox: SalesforceSandbox, fn: Callable[[], Any]
) -> tuple[Any, dict[str, Any], float, float]:
    """(result, stats, wall seconds, client CPU seconds) of running fn once."""
    sandbox.reset_stats()
    wall, cpu = time.perf_counter(), time.thread_time()
    result = fn()
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return result, sandbox.stats(), wall, cpu


def writes(stats: dict[str, Any]) -> int:
    """Requests that write records: Bulk ingest job calls, composite and sObject PATCHes."""
    return sum(
        n
        for route, n in stats["requests"].items()
        if "/jobs/ingest" in route
        or route.startswith("PATCH /services/data/v{version}/composite")
        or route == "PATCH /services/data/v{version}/sobjects/{object}/{id}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="changed statuses to write back")
    parser.add_argument(
        "--naive-n", type=int, default=10_000, help="records for the naive PATCH loop"
    )
    parser.add_argument(
        "--read-n", type=int, default=100_000, help="records for the read benchmark"
    )
    args = parser.parse_args()

    app = create_app(daily_limit=10_000_000)
    with serving(app) as server:
        state = app.state
        sandbox = SalesforceSandbox(
            url=server.url,
            client_id=state.client_id,
            client_secret=state.client_secret,
            username=state.username,
            password=state.password,
            security_token=state.security_token,
        )
        budget = ApiBudget(share=1.0)

        def connect() -> SalesforceConnection:
            conn = SalesforceConnection(**sandbox.connection_kwargs())
            conn.describe("Lead")  # login + describe outside the measured parts
            return conn

        rows: list[tuple[str, int, int, float, float]] = []
        for label, threshold in (
            ("sink, Bulk 2.0 (default)", 2_000),
            ("sink, composite only", 10**9),
        ):
            sandbox.reset()
            ids = sandbox.seed(args.n, seed=1)
            updates = [StatusUpdate("", STATUSES[i % 4], rid) for i, rid in enumerate(ids)]
            sink = SalesforceStatusSink(
                connect(), bulk_threshold=threshold, budget=budget, bulk_poll_seconds=0
            )
            result, stats, wall, cpu = measure(
                sandbox, lambda s=sink, u=updates: s.write_statuses(u)
            )
            assert result.written == args.n, result
            rows.append((label, stats["total"], writes(stats), wall, cpu))
            result, stats, wall, cpu = measure(
                sandbox, lambda s=sink, u=updates: s.write_statuses(u)
            )
            assert result.unchanged == args.n and writes(stats) == 0, (result, stats)
            rows.append((f"{label}, 2nd run", stats["total"], 0, wall, cpu))

        sandbox.reset()
        ids = sandbox.seed(args.naive_n, seed=1)
        conn = connect()
        sf = conn.client

        def naive() -> None:
            for i, rid in enumerate(ids):
                status = STATUSES[i % 4]
                sf.Lead.update(
                    rid,
                    {
                        "ColdSend_Status__c": status.value,
                        "ColdSend_Opened__c": status in (LeadStatus.OPENED, LeadStatus.REPLIED),
                        "ColdSend_Replied__c": status == LeadStatus.REPLIED,
                        "ColdSend_Bounced__c": status == LeadStatus.BOUNCED,
                    },
                )

        _, stats, wall, cpu = measure(sandbox, naive)
        rows.append(
            (
                f"naive PATCH per record (n={args.naive_n})",
                stats["total"],
                stats["total"],
                wall,
                cpu,
            )
        )

        print(f"\nWrite-back of {args.n:,} changed statuses (naive on {args.naive_n:,})")
        print(f"{'variant':48} {'requests':>9} {'writes':>7} {'wall s':>8} {'client CPU s':>13}")
        for label, total, write_count, wall, cpu in rows:
            print(f"{label:48} {total:>9,} {write_count:>7,} {wall:>8.2f} {cpu:>13.2f}")
        naive_total = rows[-1][1] * args.n / args.naive_n
        print(
            f"requests, naive / sink: bulk {naive_total / rows[0][1]:.0f}x, "
            f"composite {naive_total / rows[2][1]:.0f}x"
        )

        sandbox.reset()
        sandbox.seed(args.read_n, seed=2)
        print(
            f"\nRead of {args.read_n:,} leads (client CPU per lead: parse + Lead/Reject building)"
        )
        for label, threshold in (("REST pages of 2,000", 10**9), ("Bulk 2.0 query", 0)):
            source = SalesforceLeadSource(
                connect(), bulk_threshold=threshold, budget=budget, bulk_poll_seconds=0
            )
            items, stats, wall, cpu = measure(sandbox, lambda s=source: sum(1 for _ in s.read()))
            assert items == args.read_n
            print(
                f"{label:24} requests {stats['total']:>4}  wall {wall:6.2f}s  "
                f"client CPU {cpu / args.read_n * 1e6:5.1f} us/lead"
            )


if __name__ == "__main__":
    main()
