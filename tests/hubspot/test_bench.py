"""The HubSpot benchmark at a small size: it runs, and its targets hold (0 429s, the minimum)."""

from __future__ import annotations

import pytest

from bench import bench_hubspot


@pytest.mark.timeout(600)
def test_hubspot_bench_small() -> None:
    out = bench_hubspot.main(
        [
            "--contacts",
            "1200",
            "--identical",
            "500",
            "--writes",
            "600",
            "--latency-ms",
            "5",
            "--settle-seconds",
            "0",
        ]
    )
    phases = out["phases"]
    for row in phases.values():
        assert row["http_429"] == 0, row
    full = phases["full read (objects API)"]
    assert full["items"] == 1200 and full["requests"] == full["minimum_requests"] == 12
    incremental = phases["incremental read (search)"]
    assert incremental["items"] == 1200 and incremental["requests"] <= 8
    assert phases["write-back"]["requests"] == phases["write-back"]["minimum_requests"] == 12


def test_imposed_time_of_a_rolling_window() -> None:
    assert bench_hubspot.imposed_seconds(190, 190, 10.0) == 0.0
    assert bench_hubspot.imposed_seconds(2000, 190, 10.0) == 100.0
    assert bench_hubspot.imposed_seconds(1000, 5, 1.0) == 199.0
