"""The sync flow against the sandboxes, through the real client libraries."""

from __future__ import annotations

import pytest

from flows.sync import SyncIncomplete, sync_leads_to_campaign
from tests._stack import Stack


def test_sync_from_salesforce_accounts_for_every_row(stack: Stack) -> None:
    ids = stack.salesforce.seed(60, seed=3, bad_every=10)
    campaign_id = stack.new_campaign()
    store = stack.salesforce_store()

    report = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )

    assert report.read == len(ids)
    assert report.balanced and report.unaccounted == 0
    assert report.rejected > 0
    in_campaign = stack.campaign_emails(campaign_id)
    assert len(in_campaign) == len(set(in_campaign)) == report.uploaded
    valid = {
        r["Email"].strip().lower()
        for r in stack.salesforce.records()
        if r.get("Email") and "@" in r["Email"] and "." in r["Email"].split("@")[-1]
    }
    assert set(in_campaign) <= valid
    assert report.uploaded + report.rejected == report.read

    again = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert again.uploaded == 0
    full = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block, incremental=False
    )
    assert full.uploaded == 0 and full.already_in_campaign == report.uploaded
    assert sorted(stack.campaign_emails(campaign_id)) == sorted(in_campaign)


def test_dry_run_uploads_nothing(stack: Stack) -> None:
    stack.salesforce.seed(25, seed=4)
    campaign_id = stack.new_campaign()
    report = sync_leads_to_campaign(
        campaign_id=campaign_id,
        lead_store=stack.salesforce_store(),
        coldsend=stack.coldsend_block,
        dry_run=True,
    )
    assert report.dry_run and report.to_upload == 25 and report.parts == 1
    assert stack.campaign_emails(campaign_id) == []


def test_unknown_lead_store_is_a_clear_error(stack: Stack) -> None:
    with pytest.raises(Exception, match="salesforce-leads/nope"):
        sync_leads_to_campaign(
            campaign_id="00000000-0000-0000-0000-000000000000",
            lead_store="salesforce-leads/nope",
            coldsend=stack.coldsend_block,
        )
    assert SyncIncomplete
