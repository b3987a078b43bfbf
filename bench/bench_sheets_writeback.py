"""Benchmark: Sheets status write-back by SheetsStatusSink vs a naive one-update-per-row loop.

Runs against the loopback Sheets emulator with quotas lifted, so both approaches finish and
the request counts can be compared (at Google's 60 writes a minute the naive loop would take
about 2 h 47 min for 10,000 rows; the sink needs one write).

    .venv/bin/python bench/bench_sheets_writeback.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import time

from connectors.leads import LeadStatus, StatusUpdate
from connectors.sheets import RequestPacer, SheetsConnection, SheetsLeadSource, SheetsStatusSink
from sandbox._server import serving
from sandbox.sheets import create_app
from sandbox.sheets.fixtures import SheetsSandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    n = args.rows
    rows = [["Email", "First Name", "Company"]] + [
        [f"user{i}@example.com", f"U{i}", "Acme"] for i in range(n)
    ]
    statuses = [LeadStatus.SENT, LeadStatus.OPENED, LeadStatus.REPLIED, LeadStatus.BOUNCED]
    updates = [StatusUpdate(f"user{i}@example.com", statuses[i % 4]) for i in range(n)]

    with serving(create_app(reads_per_minute=None, writes_per_minute=None)) as server:
        box = SheetsSandbox(server.url)
        conn = SheetsConnection(api_base_url=server.url)
        # Pacing lifted too: this measures request counts and client cost, not Google's quota.
        pacer = RequestPacer(1_000_000, 60.0)

        sid = box.create_spreadsheet("Bench", {"Leads": rows})
        source = SheetsLeadSource(conn.client(), spreadsheet_id=sid, worksheet="Leads", pacer=pacer)
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        count = sum(1 for _ in source.read())
        src_cpu, src_wall = time.thread_time() - cpu0, time.perf_counter() - wall0
        print(
            f"read {count} leads: {source.requests} requests, {src_wall:.2f} s wall, "
            f"{src_cpu / count * 1e6:.1f} us client CPU per lead"
        )

        sink = SheetsStatusSink(conn.client(), spreadsheet_id=sid, worksheet="Leads", pacer=pacer)
        box.reset_stats()
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        result = sink.write_statuses(updates)
        ours_cpu, ours_wall = time.thread_time() - cpu0, time.perf_counter() - wall0
        stats = box.stats()
        print(
            f"sink write-back of {n} changed statuses: {result.requests} requests "
            f"({stats.get('GET /v4/spreadsheets/{id}/values/{range}', 0)} read + "
            f"{stats.get('POST /v4/spreadsheets/{id}/values:batchUpdate', 0)} batchUpdate), "
            f"written={result.written}, {ours_wall:.2f} s wall, "
            f"{ours_cpu / n * 1e6:.1f} us client CPU per status"
        )
        again = sink.write_statuses(updates)
        print(
            f"second write-back: {again.requests} request(s), written={again.written}, "
            f"unchanged={again.unchanged}"
        )

        sid2 = box.create_spreadsheet("Naive", {"Leads": rows})
        ws = conn.client().open_by_key(sid2).worksheet("Leads")
        box.reset_stats()
        wall0 = time.perf_counter()
        for i, update in enumerate(updates):
            ws.update([[update.status.value]], f"D{i + 2}", raw=True)
        naive_wall = time.perf_counter() - wall0
        naive = box.stats()["total"]
        print(
            f"naive one-update-per-row: {naive} requests, {naive_wall:.2f} s wall "
            f"(about {naive / 60:.0f} min at 60 writes/min)"
        )
        print(f"ratio: naive/sink requests = {naive / result.requests:.0f}x")
        assert box.values(sid, "Leads")[n][3] == box.values(sid2, "Leads")[n][3]


if __name__ == "__main__":
    main()
