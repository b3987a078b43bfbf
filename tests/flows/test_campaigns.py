"""Ensure and launch flows against the ColdSend sandbox."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from connectors.coldsend import ColdSendClient
from flows.campaigns import (
    CampaignSpec,
    FollowUpSpec,
    VariantSpec,
    ensure_campaign,
    launch_campaign_when_ready,
)
from flows.events import CAMPAIGN_LAUNCHED
from flows.naming import artifact_key
from tests._stack import Stack
from tests.flows._helpers import admin_client, artifacts, campaign_events, new_inbox, run_flow

VARIANT = VariantSpec(
    subject_template="Hi {{first_name}}", email_content="A short hello, {{first_name}}."
)


def spec_for(stack: Stack, **changes: Any) -> CampaignSpec:
    inbox = f"sales-{stack.tag}@acme.example"
    base = CampaignSpec(
        name=f"Ensure test {stack.tag}",
        inbox_emails=[inbox],
        variants=[VARIANT],
        sequences=[FollowUpSpec(step_number=2, wait_days=3, variants=[VARIANT])],
    )
    return base.model_copy(update=changes)


def test_ensure_is_idempotent_and_updates_only_differences(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox_id = new_inbox(stack, f"sales-{stack.tag}@acme.example")
    spec = spec_for(stack)

    first = ensure_campaign(spec, coldsend=stack.coldsend_block)

    with stack.client() as client:
        campaign = client.get_campaign(first)
    assert campaign.name == spec.name and campaign.inbox_ids == [inbox_id]
    assert [v["subject_template"] for v in campaign.variants] == [VARIANT.subject_template]
    assert [s["step_number"] for s in campaign.sequences] == [2]

    stack.coldsend.reset_stats()
    assert ensure_campaign(spec, coldsend=stack.coldsend_block) == first
    routes = stack.coldsend.stats()["requests"]
    assert not [r for r in routes if r.startswith(("POST", "PUT"))], routes

    sent: list[dict[str, Any]] = []
    real_update = ColdSendClient.update_campaign

    def spy(self: ColdSendClient, campaign_id: str, **fields: Any) -> Any:
        sent.append(fields)
        return real_update(self, campaign_id, **fields)

    monkeypatch.setattr(ColdSendClient, "update_campaign", spy)
    changed = spec_for(stack, sending_window_end=18)
    assert ensure_campaign(changed, coldsend=stack.coldsend_block) == first
    assert sent == [{"sending_window_end": 18}]
    with stack.client() as client:
        assert client.get_campaign(first).sending_window_end == 18
        assert len([c for c in client.iter_campaigns() if c.name == spec.name]) == 1


def test_ensure_fails_on_an_unknown_inbox(stack: Stack) -> None:
    run = run_flow(ensure_campaign, spec=spec_for(stack), coldsend=stack.coldsend_block)
    assert run.state.is_failed()
    assert f"sales-{stack.tag}@acme.example" in str(run.state.message)
    with stack.client() as client:
        assert not [c for c in client.iter_campaigns() if c.name == spec_for(stack).name]


def test_launch_with_missing_requirements_names_them(stack: Stack) -> None:
    campaign_id = stack.new_campaign()

    run = run_flow(
        launch_campaign_when_ready, campaign_id=campaign_id, coldsend=stack.coldsend_block
    )

    assert run.state.is_failed()
    message = str(run.state.message)
    assert "cannot launch: missing leads" in message
    assert "inboxes (" in message and "variants (" in message
    with stack.client() as client:
        assert client.get_campaign(campaign_id).status == "DRAFT"


def ready_but_leads(stack: Stack) -> str:
    new_inbox(stack, f"sales-{stack.tag}@acme.example")
    return ensure_campaign(spec_for(stack), coldsend=stack.coldsend_block)


def test_launch_then_launch_again_is_a_no_op(stack: Stack) -> None:
    campaign_id = ready_but_leads(stack)
    with admin_client(stack) as client:
        client.add_lead(campaign_id, email="first@example.com")

    run = run_flow(
        launch_campaign_when_ready, campaign_id=campaign_id, coldsend=stack.coldsend_block
    )

    assert run.result.launched and run.result.status == "ACTIVE"
    name = run.result.campaign_name
    (summary,) = artifacts(run.flow_run_id, key=artifact_key("launch", name, "summary"))
    assert f"**Launched {name}: it is ACTIVE and sending.**" in str(summary.data)
    assert "| ACTIVE | launched by this run |" in str(summary.data)
    (event,) = campaign_events(CAMPAIGN_LAUNCHED, campaign_id)
    assert event.payload["status"] == "ACTIVE"

    stack.coldsend.reset_stats()
    again = launch_campaign_when_ready(campaign_id=campaign_id, coldsend=stack.coldsend_block)
    assert not again.launched and again.status == "ACTIVE"
    # One read and nothing else: no launch request, no second event.
    assert stack.coldsend.stats()["requests"] == {"GET /api/public/v1/campaigns/{campaign_id}": 1}
    assert len(campaign_events(CAMPAIGN_LAUNCHED, campaign_id, expect=2, timeout=2)) == 1


def test_launch_keeps_checking_until_the_deadline(stack: Stack) -> None:
    campaign_id = ready_but_leads(stack)

    started = time.monotonic()
    run = run_flow(
        launch_campaign_when_ready,
        campaign_id=campaign_id,
        coldsend=stack.coldsend_block,
        wait_for_requirements_seconds=1.0,
        check_interval_seconds=0.3,
    )
    assert time.monotonic() - started >= 1.0
    assert run.state.is_failed()
    message = str(run.state.message)
    assert "missing leads" in message and "inboxes" not in message

    # A lead arriving while it waits lets the launch go through before the deadline. The lead
    # is added once the emulator has refused a first launch request (an event, not a timer:
    # on a busy machine the flow may take seconds to start).
    launch_route = "PUT /api/public/v1/campaigns/{campaign_id}"
    stack.coldsend.reset_stats()
    added = threading.Event()

    def add_lead_after_the_first_check() -> None:
        give_up = time.monotonic() + 300
        while time.monotonic() < give_up:
            if stack.coldsend.stats()["requests"].get(launch_route, 0) >= 1:
                with admin_client(stack) as client:
                    client.add_lead(campaign_id, email="late@example.com")
                added.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=add_lead_after_the_first_check, daemon=True)
    watcher.start()
    try:
        report = launch_campaign_when_ready(
            campaign_id=campaign_id,
            coldsend=stack.coldsend_block,
            wait_for_requirements_seconds=300.0,
            check_interval_seconds=0.3,
        )
    finally:
        watcher.join(timeout=310)
    assert added.is_set()
    assert report.launched and report.status == "ACTIVE" and report.checks >= 2
