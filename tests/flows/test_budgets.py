"""Shared API budgets: their figures, their creation on the server, and tasks paying for requests."""

from __future__ import annotations

import csv
import logging
import uuid
from pathlib import Path

import pytest
from prefect import get_client

from blocks.budgets import (
    SLOTS_PER_REQUEST,
    ApiBudget,
    budget_digest,
    coldsend_budgets,
    ensure_api_budgets,
)
from flows import budgets as flow_budgets
from flows.sync import sync_leads_to_campaign
from tests._stack import Stack
from tests.flows._helpers import run_flow


def test_coldsend_budgets_never_allow_more_than_the_key_does_in_any_window() -> None:
    minute, hour = coldsend_budgets("cs_live_secret-token")
    assert minute.most_in(60) <= 100 and hour.most_in(3600) <= 1_000
    # ... while leaving as much as that allows: 90 a minute sustained, 500 an hour.
    assert minute.per_second * 60 == pytest.approx(90)
    assert hour.per_second * 3600 == pytest.approx(500)
    assert hour.capacity == 500
    wider = coldsend_budgets("cs_live_secret-token", hourly_burst=800)[1]
    assert wider.capacity == 800 and wider.most_in(3600) == pytest.approx(1_000)


def test_budget_names_carry_a_digest_of_the_key_never_the_key() -> None:
    key = "cs_live_" + uuid.uuid4().hex
    names = [b.name for b in coldsend_budgets(key)]
    digest = budget_digest(key)
    assert names == [f"coldsend-key-{digest}-minute", f"coldsend-key-{digest}-hour"]
    assert all(key not in n and key[8:20] not in n for n in names)
    other = [b.name for b in coldsend_budgets("cs_live_" + uuid.uuid4().hex)]
    assert not set(names) & set(other)


@pytest.mark.parametrize("burst", [0, 1_000, -5])
def test_an_hourly_burst_outside_the_budget_is_refused(burst: int) -> None:
    with pytest.raises(ValueError, match="hourly_burst must be between 1 and 999"):
        coldsend_budgets("cs_live_x", hourly_burst=burst)


def test_a_budget_without_capacity_or_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity >= 1 and per_second > 0"):
        ApiBudget(name="x", capacity=0, per_second=1.0, description="")


def _limit(name: str) -> tuple[float, float, float]:
    """The limit's size, decay a second and slots taken now, in requests."""
    with get_client(sync_client=True) as client:
        found = client.read_global_concurrency_limit_by_name(name)
    return (
        found.limit / SLOTS_PER_REQUEST,
        found.slot_decay_per_second / SLOTS_PER_REQUEST,
        found.active_slots / SLOTS_PER_REQUEST,
    )


def test_ensure_creates_the_limits_and_updates_them_in_place(prefect_server: None) -> None:
    key = "cs_live_" + uuid.uuid4().hex
    minute, hour = coldsend_budgets(key)
    assert ensure_api_budgets([minute, hour]) == [minute.name, hour.name]
    assert _limit(minute.name)[:2] == (10, pytest.approx(1.5))
    assert _limit(hour.name)[:2] == (500, pytest.approx(500 / 3600))
    # Deploying again changes nothing; a new burst setting updates the same limit.
    ensure_api_budgets([minute, hour])
    ensure_api_budgets(coldsend_budgets(key, hourly_burst=700))
    assert _limit(hour.name)[:2] == (700, pytest.approx(300 / 3600))
    with get_client(sync_client=True) as client:
        names = [limit.name for limit in client.read_global_concurrency_limits(limit=200)]
    assert names.count(hour.name) == 1


def _signups(path: Path, count: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "First Name"])
        writer.writerows([f"budget{i}@example.com", f"B{i}"] for i in range(count))
    return path


def test_every_request_of_a_sync_is_paid_for_from_the_shared_budget(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A budget that barely decays, so the slots left occupied count the requests made.
    tally = ApiBudget(
        name=f"test-tally-{stack.tag}", capacity=10_000, per_second=1e-6, description="tally"
    )
    monkeypatch.setattr("blocks.coldsend.coldsend_budgets", lambda key: (tally,))
    ensure_api_budgets([tally])
    campaign_id = stack.new_campaign()
    store = stack.csv_store(_signups(tmp_path / "leads.csv", 30))
    stack.coldsend.reset_stats()

    report = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
    ).result

    made = stack.coldsend.stats()["total"]
    assert report.uploaded == 30 and made >= 3  # listing or export, upload, job poll
    occupied = _limit(tally.name)[2]
    assert made - 1 <= occupied <= made, (made, occupied)


def test_without_the_limits_tasks_run_paced_by_the_client_and_say_so_once(
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    missing = ApiBudget(
        name=f"test-missing-{stack.tag}", capacity=5, per_second=1.0, description="missing"
    )
    monkeypatch.setattr("blocks.coldsend.coldsend_budgets", lambda key: (missing,))
    campaign_id = stack.new_campaign()
    store = stack.csv_store(_signups(tmp_path / "leads.csv", 5))
    with caplog.at_level(logging.WARNING, logger=flow_budgets.logger.name):
        report = run_flow(
            sync_leads_to_campaign,
            campaign_id=campaign_id,
            lead_store=store,
            coldsend=stack.coldsend_block,
        ).result
    assert report.uploaded == 5
    warnings = [r.getMessage() for r in caplog.records if missing.name in r.getMessage()]
    assert len(warnings) == 1 and "prefect deploy" in warnings[0]


def test_a_limit_left_in_an_older_versions_units_is_put_in_this_ones_before_use(
    prefect_server: None,
) -> None:
    # Before SLOTS_PER_REQUEST, a budget of 10 requests was a limit of 10 slots: a take of
    # one request (1,000 slots) would be refused as larger than the limit.
    budget = ApiBudget(
        name=f"test-older-{uuid.uuid4().hex[:8]}", capacity=10, per_second=1.5, description="x"
    )
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(
            budget.name, budget.capacity, slot_decay_per_second=budget.per_second
        )
    spend = flow_budgets.ApiSpend([budget])
    spend.spend(3)
    limit, decay, taken = _limit(budget.name)
    assert (limit, decay) == (10, pytest.approx(1.5)) and 0 < taken <= 3
