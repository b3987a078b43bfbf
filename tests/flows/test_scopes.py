"""Least privilege: every flow names the ColdSend scopes its key lacks before changing anything."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from flows._common import scope_granted
from flows.campaigns import CampaignSpec, VariantSpec, ensure_campaign, launch_campaign_when_ready
from flows.pipeline import crm_to_campaign_pipeline
from flows.scopes import FLOW_SCOPES
from flows.sync import sync_leads_to_campaign
from flows.write_back import write_back_statuses
from tests._stack import Stack
from tests.flows._helpers import key_block, run_flow

HEADER = ["Email", "First Name", "Last Name", "Company"]


@pytest.mark.parametrize(
    ("granted", "required", "expected"),
    [
        (["leads:create"], "leads:create", True),
        (["leads:read"], "leads:create", False),
        (["*"], "sender_accounts:read", True),
        (["leads:all"], "leads:create", True),
        (["leads:all"], "campaigns:read", False),
        (["campaigns:write"], "campaigns:update", True),
        (["campaigns:write"], "campaigns:read", False),
        (["sender_accounts:write"], "sender_accounts:create", True),
        ([], "campaigns:read", False),
    ],
)
def test_scope_granted(granted: list[str], required: str, expected: bool) -> None:
    assert scope_granted(granted, required) is expected


def csv_store(stack: Stack, tmp_path: Path, count: int = 5) -> tuple[str, Path]:
    path = tmp_path / "leads.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(
            [HEADER, *([f"p{i}@example.com", "A", "B", "C"] for i in range(count))]
        )
    return stack.csv_store(path), path


def all_but(flow: str, *missing: str) -> list[str]:
    return sorted(FLOW_SCOPES[flow] - set(missing))


def test_sync_without_leads_create_fails_at_the_first_upload_changing_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    campaign_id = stack.new_campaign()
    block = key_block(stack, all_but("sync", "leads:create"), "no-create")
    # The first upload is the scope check (its 403 imports nothing), so no probe request is
    # spent on leads:create and a re-run with nothing new stays at two requests.
    store, _ = csv_store(stack, tmp_path, count=25)
    stack.coldsend.reset_stats()

    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=block,
        rows_per_upload=10,
    )

    assert run.state.is_failed()
    message = str(run.state.message)
    assert "lacks the scope(s) leads:create needed by the sync flow" in message
    requests = stack.coldsend.stats()["requests"]
    # One refused upload, then nothing more: no later part is attempted.
    assert requests.get("POST /api/public/v1/campaigns/{campaign_id}/leads") == 1
    assert stack.campaign_emails(campaign_id) == []
    # A dry run uploads nothing, so it does not need leads:create.
    dry = sync_leads_to_campaign(
        campaign_id=campaign_id,
        lead_store=csv_store(stack, tmp_path)[0],
        coldsend=block,
        dry_run=True,
    )
    assert dry.to_upload == 5


def test_sync_names_every_missing_scope(stack: Stack, tmp_path: Path) -> None:
    campaign_id = stack.new_campaign()
    block = key_block(stack, ["campaigns:read"], "read-only")

    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=csv_store(stack, tmp_path)[0],
        coldsend=block,
    )

    assert run.state.is_failed()
    assert "lacks the scope(s) leads:create, leads:read needed by the sync" in str(
        run.state.message
    )
    assert stack.campaign_emails(campaign_id) == []


def test_sync_rerun_with_nothing_new_costs_two_requests(stack: Stack, tmp_path: Path) -> None:
    campaign_id = stack.new_campaign()
    block = key_block(stack, sorted(FLOW_SCOPES["sync"]), "sync-only")
    store, _ = csv_store(stack, tmp_path, count=30)
    first = sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=block)
    assert first.uploaded == 30
    stack.coldsend.reset_stats()

    again = sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=block)

    assert again.uploaded == 0 and again.already_in_campaign == 30
    stats = stack.coldsend.stats()
    assert stats["requests"] == {
        "GET /api/public/v1/campaigns": 1,
        "GET /api/public/v1/campaigns/{campaign_id}/leads/export": 1,
    }


def test_write_back_without_leads_read_fails_before_touching_the_store(
    stack: Stack, tmp_path: Path
) -> None:
    campaign_id = stack.new_campaign()
    store, path = csv_store(stack, tmp_path)
    before = path.read_bytes()
    block = key_block(stack, ["campaigns:read", "campaigns:update"], "no-leads")

    run = run_flow(write_back_statuses, campaign_id=campaign_id, lead_store=store, coldsend=block)

    assert run.state.is_failed()
    assert "lacks the scope(s) leads:read needed by the write-back flow" in str(run.state.message)
    assert path.read_bytes() == before


def test_launch_without_campaigns_update_fails_before_waiting(stack: Stack) -> None:
    campaign_id = stack.new_campaign()
    block = key_block(stack, all_but("launch", "campaigns:update"), "no-update")

    run = run_flow(
        launch_campaign_when_ready,
        campaign_id=campaign_id,
        coldsend=block,
        job_ids=["00000000-0000-0000-0000-00000000abcd"],
    )

    assert run.state.is_failed()
    assert "lacks the scope(s) campaigns:update needed by the launch flow" in str(run.state.message)
    requests = stack.coldsend.stats()["requests"]
    assert "GET /api/public/v1/campaigns/{campaign_id}/leads/upload/{job_id}" not in requests


SPEC = CampaignSpec(
    name="Least privilege campaign",
    variants=[
        VariantSpec(subject_template="Hi {{first_name}}", email_content="Hello there, friend.")
    ],
)


def test_ensure_without_update_creates_nothing(stack: Stack) -> None:
    block = key_block(stack, all_but("ensure", "campaigns:update"), "no-update")
    spec = SPEC.model_copy(update={"name": f"{SPEC.name} {stack.tag}"})

    run = run_flow(ensure_campaign, spec=spec, coldsend=block)

    assert run.state.is_failed()
    assert "campaigns:update needed by the ensure flow" in str(run.state.message)
    with stack.client() as client:
        assert [c for c in client.iter_campaigns() if c.name == spec.name] == []


def test_pipeline_without_leads_create_creates_nothing(stack: Stack, tmp_path: Path) -> None:
    block = key_block(stack, all_but("pipeline", "leads:create"), "no-create")
    spec = SPEC.model_copy(update={"name": f"{SPEC.name} {stack.tag}"})

    run = run_flow(
        crm_to_campaign_pipeline,
        campaign=spec,
        lead_store=csv_store(stack, tmp_path)[0],
        coldsend=block,
    )

    assert run.state.is_failed()
    assert "leads:create needed by the pipeline flow" in str(run.state.message)
    with stack.client() as client:
        assert [c for c in client.iter_campaigns() if c.name == spec.name] == []
