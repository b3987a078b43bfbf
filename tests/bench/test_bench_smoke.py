"""Smoke test of the benchmark suite (``python -m bench``) at a tiny size, so the bench cannot rot.

Runs the real suite in a subprocess (sandboxes in their own processes, a worker per side) on
the session's Prefect test server, with no injected latency, and checks that both sides did
the whole job and that the figures the table is built from are there and add up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from bench import report

ROOT = Path(__file__).resolve().parents[2]
LEADS = 12  # 6 Salesforce Leads into one campaign, 6 sheet rows into another


@pytest.fixture(scope="module")
def summary(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("bench")
    markdown = out / "RESULTS.md"
    readme = out / "README.md"
    readme.write_text("<!-- bench:start -->\nkept\n<!-- bench:end -->\n")
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            f"--sizes={LEADS}",
            f"--naive-sizes={LEADS}",
            "--no-parallel",
            "--no-rerun",
            "--latency-ms=0",
            f"--prefect-api-url={PREFECT_API_URL.value()}",
            f"--results-dir={out}",
            f"--markdown={markdown}",
            f"--readme={readme}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ours / minimum" in proc.stdout and "Targets (issue 5)" in proc.stdout
    assert markdown.read_text().startswith("# Benchmark results")
    # A partial run (one tiny size, no demo) leaves the README's figures alone.
    assert "kept" in readme.read_text()
    (result,) = out.glob("bench-*.json")
    data: dict[str, object] = json.loads(result.read_text())
    return data


def _run(summary: dict[str, object], side: str) -> dict[str, object]:
    runs = summary["runs"]
    assert isinstance(runs, list)
    return next(r for r in runs if r["side"] == side)


def test_both_sides_do_the_whole_job(summary: dict[str, object]) -> None:
    for side in ("ours", "naive"):
        run = _run(summary, side)
        assert run["end_state"]["complete"], run["end_state"]
        assert run["end_state"]["salesforce_with_status"] == LEADS - LEADS // 2
        assert run["end_state"]["sheet_rows_with_status"] == LEADS // 2
        assert [p["name"] for p in run["phases"]] == [
            "sync-salesforce",
            "sync-sheets",
            "write-back-salesforce",
            "write-back-sheets",
        ]


def test_requests_are_counted_per_service(summary: dict[str, object]) -> None:
    ours, naive = _run(summary, "ours"), _run(summary, "naive")
    # The baseline adds each lead with its own request and writes each status with its own.
    assert naive["groups"]["sync"]["uploads"] == LEADS
    assert naive["groups"]["write-back"]["requests"]["salesforce"] >= LEADS - LEADS // 2
    assert naive["groups"]["write-back"]["crm_writes"] >= LEADS
    # Ours: one CSV part per campaign; one batched write per store.
    assert ours["groups"]["sync"]["uploads"] == 2
    assert ours["groups"]["write-back"]["crm_writes"] == 2
    for side in (ours, naive):
        total = side["total"]
        assert total["requests_total"] == sum(total["requests"].values())
        assert all(total["requests"][s] > 0 for s in report.SERVICES)
        assert total["cpu_s"] > 0 and side["peak_rss_mb"] > 0


def test_prefect_task_runs_are_counted(summary: dict[str, object]) -> None:
    ours = _run(summary, "ours")
    # Per campaign: ensure, scope checks, campaign state, one upload + one wait, launch...
    assert ours["groups"]["sync"]["task_runs"] >= 2 * 3
    assert ours["groups"]["write-back"]["task_runs"] == 2 * 2


def test_minimums_and_limits() -> None:
    assert report.minimum_requests(50_000, 50_000) == {
        "coldsend": 26,
        "salesforce": 10,
        "sheets": 3,
    }
    assert report.minimum_requests(500, 0) == {"coldsend": 5, "salesforce": 5, "sheets": 0}
    # 250 ColdSend requests need three 100-a-minute windows: at least two minutes.
    assert report.limited_seconds({"coldsend": 250}, 1.0) == 120.0
    # 2,500 need three hours of 1,000; 61 Sheets requests two minutes of 60.
    assert report.limited_seconds({"coldsend": 2_500}, 1.0) == 7_200.0
    assert report.limited_seconds({"sheets": 61}, 1.0) == 60.0
    assert report.limited_seconds({"coldsend": 5}, 3.5) == 3.5


def _fake_run(size: int, sync_cpu: float, write_back_cpu: float, rss: float) -> dict[str, object]:
    def phase(name: str, group: str, cpu: float) -> dict[str, object]:
        return {
            "name": name,
            "group": group,
            "wall_s": 1.0,
            "cpu_s": cpu,
            "requests": {"coldsend": 1, "salesforce": 1, "sheets": 1},
            "routes": {},
        }

    return {
        "side": "ours",
        "size": size,
        "peak_rss_mb": rss,
        "phases": [phase("sync", "sync", sync_cpu), phase("wb", "write-back", write_back_cpu)],
    }


def test_cpu_target_is_judged_on_the_marginal_figure() -> None:
    meta = {"machine": {}, "latency_ms": 0}
    # 1.0 s of fixed cost per phase; sync adds 10 us per lead, write-back 20 us per lead.
    results = [
        _fake_run(1_000, 1.0 + 0.010, 1.0 + 0.020, 150.0),
        _fake_run(100_000, 1.0 + 1.0, 1.0 + 2.0, 200.0),
    ]
    summary = report.summarize(results, meta)
    big = next(r for r in summary["runs"] if r["size"] == 100_000)
    assert big["groups"]["sync"]["cpu_us_marginal"] == pytest.approx(10.0)
    assert big["groups"]["write-back"]["cpu_us_marginal"] == pytest.approx(20.0)
    # Overall figures: 20 and 30 us/lead, both above 15: only the marginal one is judged.
    assert big["groups"]["sync"]["cpu_us_per_lead"] == pytest.approx(20.0)
    verdicts = {t["target"]: t["pass"] for t in summary["targets"]}
    assert verdicts["client CPU <= 15 us/lead (marginal) for sync at 100,000"] is True
    assert verdicts["client CPU <= 15 us/lead (marginal) for write-back at 100,000"] is False
    assert verdicts["peak RSS at 100,000 within 80 MB of 1,000"] is True
    # Without a 1,000-lead run there is no marginal figure: the overall one is judged.
    alone = report.summarize(results[1:], meta)
    verdicts = {t["target"]: t["pass"] for t in alone["targets"]}
    assert verdicts["client CPU <= 15 us/lead (overall) for sync at 100,000"] is False


def test_the_readme_section_is_rewritten_between_its_markers_only() -> None:
    meta = {
        "machine": {
            "cpu": "CPU",
            "cores": 2,
            "memory_gb": 8,
            "os": "Linux",
            "python": "3.11",
            "prefect": "3",
        },
        "latency_ms": 20,
        "taken_at": "2026-01-01T00:00:00+00:00",
        "bench_wall_s": 61.0,
    }
    summary = report.summarize(
        [_fake_run(1_000, 1.01, 1.02, 150.0), _fake_run(100_000, 2.0, 3.0, 200.0)], meta
    )
    text = "# Project\n\n<!-- bench:start -->\nold figures\n<!-- bench:end -->\n\nAfter.\n"

    updated = report.update_readme(text, summary)

    assert updated.startswith("# Project\n\n<!-- bench:start -->\nLatest `make bench`")
    assert updated.endswith("<!-- bench:end -->\n\nAfter.\n")
    assert "old figures" not in updated and "| target | result | figure |" in updated
    assert "whole run 1 min 01 s" in updated
    with pytest.raises(ValueError, match="bench:start"):
        report.update_readme("# No section\n", summary)
    # Only a run of every default size, the naive baseline and the demo may rewrite it.
    assert not report.is_full_run(summary)
