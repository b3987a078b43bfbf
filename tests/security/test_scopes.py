"""Least privilege, every cell: a key missing any one scope a flow needs fails that flow early,
naming the scope, with nothing changed in ColdSend or in the lead store.

tests/flows/test_scopes.py checks one scope per flow in detail; this is the whole matrix
(flows.scopes.FLOW_SCOPES x each scope), against a world where each flow has real work to do,
so a missing check would show as a change.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from blocks import ColdSendCredentials
from connectors.coldsend import ColdSendClient
from flows.campaigns import CampaignSpec, VariantSpec, ensure_campaign, launch_campaign_when_ready
from flows.pipeline import crm_to_campaign_pipeline
from flows.scopes import FLOW_SCOPES
from flows.sync import sync_leads_to_campaign
from flows.write_back import write_back_statuses
from tests._stack import Stack

FLOWS = {
    "sync": sync_leads_to_campaign,
    "ensure": ensure_campaign,
    "launch": launch_campaign_when_ready,
    "write-back": write_back_statuses,
    "pipeline": crm_to_campaign_pipeline,
}
NO_SUCH_JOB = "00000000-0000-0000-0000-00000000abcd"
CELLS = [(flow, scope) for flow in FLOWS for scope in sorted(FLOW_SCOPES[flow])]


def _snapshot(stack: Stack, campaign_id: str, path: Path) -> Any:
    with stack.client() as client:
        campaigns = sorted((c.name, str(c.status), c.total_leads) for c in client.iter_campaigns())
    return campaigns, sorted(stack.campaign_emails(campaign_id)), path.read_bytes()


@pytest.mark.parametrize(("flow", "scope"), CELLS, ids=[f"{f}-without-{s}" for f, s in CELLS])
def test_a_key_missing_one_scope_fails_early_naming_it(
    flow: str, scope: str, stack: Stack, tmp_path: Path
) -> None:
    # A launch-ready campaign holding leads with results, and a store with new leads: every
    # flow has something to change if it ran past a missing scope.
    with ColdSendClient(stack.coldsend.admin_key, base_url=stack.coldsend.base_url) as admin:
        inbox = admin.create_smtp_inbox(
            email_address=f"sender-{stack.tag}@acme.example",
            display_name="Sender",
            smtp_host="smtp.acme.example",
            smtp_port=587,
            smtp_username="sender",
            smtp_password="not-under-test",
        ).inbox_id
        campaign_id = admin.create_campaign(name=f"Scopes target {stack.tag}").campaign_id
        variant = {
            "variant_name": "A",
            "subject_template": "Hi",
            "email_content": "Hello, friend.",
            "distribution_percent": 100,
        }
        admin.update_campaign(campaign_id, inbox_ids=[inbox], variants=[variant])
        admin.add_lead(campaign_id, email="old0@x.com")
    stack.coldsend.set_lead_status(campaign_id, "old0@x.com", "REPLIED")
    path = tmp_path / "leads.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(
            [["Email"], ["old0@x.com"], *([f"new{i}@x.com"] for i in range(3))]
        )
    store = stack.csv_store(path)
    key = stack.coldsend.new_key(sorted(FLOW_SCOPES[flow] - {scope}))
    block = f"less-{stack.tag}"
    ColdSendCredentials(api_key=key, base_url=stack.coldsend.base_url).save(block, overwrite=True)
    spec = CampaignSpec(
        name=f"Scopes new campaign {stack.tag}",
        variants=[VariantSpec(subject_template="Hi", email_content="Hello, friend.")],
        inbox_emails=[
            f"sender-{stack.tag}@acme.example"
        ],  # resolving it needs sender_accounts:read
    )
    params: dict[str, Any] = {
        "sync": {"campaign_id": campaign_id, "lead_store": store},
        "ensure": {"spec": spec},
        # A job to wait for first (waiting needs leads:read).
        "launch": {"campaign_id": campaign_id, "job_ids": [NO_SUCH_JOB]},
        "write-back": {"campaign_id": campaign_id, "lead_store": store},
        "pipeline": {"campaign": spec, "lead_store": store},
    }[flow]
    before = _snapshot(stack, campaign_id, path)

    state = FLOWS[flow](**params, coldsend=block, return_state=True)

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert type(error).__name__ == "MissingScopes", repr(error)
    # The pipeline's errors may name the sub-flow that checked (ensure, sync, launch).
    assert f"lacks the scope(s) {scope} needed by the" in str(error)
    assert _snapshot(stack, campaign_id, path) == before, "the flow changed something first"
