"""Polling tolerates transient errors: failed status polls do not fail a healthy upload job."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.sync import sync_leads_to_campaign
from tests._stack import Stack
from tests.reliability._world import FIGURES, SyncSnapshot, check_sync_exact, make_world

POLL_ROUTE = "GET /api/public/v1/campaigns/{campaign_id}/leads/upload/{job_id}"


def test_failed_polls_do_not_fail_a_healthy_upload_job(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world(stack, "salesforce", 24, seed=31)
    expected = world.source_emails()
    before = SyncSnapshot.take(world)
    # One part; the job takes ~2 s, so it is still running while its polls fail.
    stack.coldsend.set_jobs(rows_per_second=10)
    # Every poll answers 503 (uploads and everything else are untouched) until one whole poll,
    # the client's own retries included, has failed and the next poll has begun.
    stack.coldsend.set_faults(
        error_rate=1.0,
        error_statuses=[503],
        path_prefix=f"/api/public/v1/campaigns/{world.campaign_id}/leads/upload/",
    )
    polls_per_failed_poll = 1 + 5  # ColdSendClient's default max_retries
    disarmed = threading.Event()
    seen: list[int] = []

    def disarm_after_a_failed_poll() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            polls = stack.coldsend.stats()["requests"].get(POLL_ROUTE, 0)
            if polls > polls_per_failed_poll:
                stack.coldsend.set_faults()
                seen.append(polls)
                disarmed.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=disarm_after_a_failed_poll, daemon=True)
    watcher.start()
    caplog.set_level(logging.WARNING, logger="connectors.coldsend")
    started = time.monotonic()
    state = sync_leads_to_campaign(
        campaign_id=world.campaign_id,
        lead_store=world.store,
        coldsend=stack.coldsend_block,
        return_state=True,
    )
    elapsed = time.monotonic() - started
    watcher.join(5)
    stack.coldsend.set_faults()

    assert disarmed.is_set(), "the polls never failed"
    assert state.is_completed(), state.message
    warnings = [r.getMessage() for r in caplog.records if "will poll again" in r.getMessage()]
    assert warnings, "no poll failed for good (the client's retries absorbed every error)"
    assert check_sync_exact(world, before, expected) == len(expected)
    # The wait survived inside one task run: no task retry, no failed part to re-upload.
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    waits = [t for t in task_runs if t.name.startswith("Wait for upload job")]
    assert waits
    assert all(t.run_count == 1 and t.state is not None and t.state.is_completed() for t in waits)
    FIGURES.append(
        {
            "suite": "polling",
            "failed_polls": len(warnings),
            "poll_requests_answered_503": seen[0],
            "run_s": round(elapsed, 1),
        }
    )
