"""Benchmark: what a lead store's shared API budget costs one process (HubSpot full read).

One HubSpot full read (objects API, 100 contacts a page) at the real 100 requests per rolling
10 s with `--latency-ms` on every request, twice: paced by the client alone, then also paying
the app's shared budget (`hubspot-app-<digest>-ten-seconds`, blocks/budgets.py) on a Prefect
test server, one take per request. Prints wall time, requests, answers of 429 (target 0) and
the time each pacing allows at best. The sandbox runs in this process (both runs share that).

    .venv/bin/python -m bench.bench_budgets                 # 40,000 contacts, 401 requests
    .venv/bin/python -m bench.bench_budgets --contacts 100000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

import httpx

BUCKET = 100  # requests per rolling 10 s (HubSpot Free / Starter)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=40_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-budgets-"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

    from prefect.testing.utilities import prefect_test_harness

    from blocks import HubSpotContacts, HubSpotCredentials
    from blocks.budgets import ensure_api_budgets
    from connectors.leads import Lead
    from flows.budgets import ApiSpend
    from sandbox._server import start_server
    from sandbox.hubspot.app import create_app

    app = create_app()
    server = start_server(app)

    def control(method: str, path: str, body: Any = None) -> Any:
        url = f"{server.url}/_sandbox/{path}"
        return httpx.request(method, url, json=body, timeout=600).json()

    try:
        control("POST", "seed", {"count": args.contacts})
        control("PUT", "faults", {"latency_ms": args.latency_ms})
        credentials = HubSpotCredentials(
            access_token=app.state.default_token,
            base_url=server.url,
            requests_per_ten_seconds=BUCKET,
        )
        store = HubSpotContacts(credentials=credentials)
        (ten, _search) = store.api_budgets()
        with prefect_test_harness(server_startup_timeout=90):
            ensure_api_budgets(store.api_budgets())
            runs = [("client pacing alone", None), ("shared budget", ApiSpend(store.api_budgets()))]
            for label, budget in runs:
                control("PUT", "limits", {"ten_second_limit": BUCKET, "interval_ms": 10_000})
                control("POST", "stats/reset")
                time.sleep(10.5)  # the sandbox's window and the budget both start empty
                started = time.perf_counter()
                read = sum(isinstance(x, Lead) for x in store.lead_source(budget).read())
                wall = time.perf_counter() - started
                stats = control("GET", "stats")
                made = int(stats["total"])
                if budget is None:
                    best = max(0, made - BUCKET) / (BUCKET / 10)
                else:
                    best = max(0, made - ten.capacity) / ten.per_second
                print(
                    f"{label}: {read:,} contacts, {made} requests, 429s "
                    f"{sum(stats['rate_limited'].values())}, {wall:.1f} s "
                    f"(this pacing allows {best:.1f} s at best: {wall / best:.2f}x)"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
