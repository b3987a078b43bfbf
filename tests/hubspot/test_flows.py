"""The sync and write-back flows with a HubSpot Contacts store, on a Prefect test server."""

from __future__ import annotations

from pydantic import SecretStr

from blocks import HubSpotContacts, HubSpotCredentials
from connectors.leads import FieldMapping
from flows.sync import sync_leads_to_campaign
from flows.write_back import write_back_statuses
from sandbox.hubspot.fixtures import HubSpotSandbox
from tests._stack import Stack


def _store(stack: Stack, hubspot: HubSpotSandbox) -> str:
    name = f"hs-{stack.tag}"
    HubSpotContacts(
        credentials=HubSpotCredentials(access_token=SecretStr(hubspot.token), base_url=hubspot.url),
        mapping=FieldMapping(
            email="email",
            first_name="firstname",
            last_name="lastname",
            company="company",
            custom_fields={"industry": "industry"},
        ),
    ).save(name, overwrite=True)
    return f"hubspot-contacts/{name}"


def test_sync_and_write_back_with_a_hubspot_store(
    stack: Stack, hubspot_sandbox: HubSpotSandbox
) -> None:
    hubspot_sandbox.add_contacts(
        [{"email": f"hs{i}@example.com", "firstname": "F", "industry": "SaaS"} for i in range(8)]
        + [
            {"firstname": "No email"},
            {"email": "optout@example.com", "hs_email_optout": "true"},
            {"email": "=cmd|' /C calc'!A0@example.com", "firstname": "=1+1"},
        ]
    )
    store = _store(stack, hubspot_sandbox)
    campaign_id = stack.new_campaign()
    report = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert report.read == 11 and report.rejected == 2  # no email; an invalid one
    # The contact opted out in HubSpot (hs_email_optout) is never uploaded: suppressed, and
    # counted as an opt-out of the store.
    assert (report.uploaded, report.suppressed, report.opted_out) == (8, 1, 1)
    uploaded = set(stack.campaign_emails(campaign_id))
    assert uploaded == {f"hs{i}@example.com" for i in range(8)}

    # A re-run reads incrementally (cursor minus the overlap) and uploads nothing new.
    again = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert again.uploaded == 0 and again.balanced
    assert again.read == (
        again.already_in_campaign + again.duplicate_in_source + again.rejected + again.suppressed
    )
    searches = hubspot_sandbox.stats()["requests"].get("POST /crm/v3/objects/contacts/search", 0)
    assert searches >= 1

    stack.coldsend.set_lead_status(campaign_id, "hs0@example.com", "REPLIED")
    stack.coldsend.set_lead_status(campaign_id, "hs1@example.com", "BOUNCED")
    written = write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert written.written == len(uploaded) and written.failed == 0
    by_email = {c.get("email"): c for c in hubspot_sandbox.contacts().values()}
    assert by_email["hs0@example.com"]["coldsend_status"] == "REPLIED"
    assert by_email["hs0@example.com"]["coldsend_replied"] == "true"
    assert by_email["hs1@example.com"]["coldsend_bounced"] == "true"
    assert by_email["hs2@example.com"]["coldsend_status"] == "PENDING"
    assert hubspot_sandbox.app.state.store.groups["coldsend"] == "ColdSend"

    hubspot_sandbox.reset_stats()
    unchanged = write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert unchanged.written == 0
    assert "POST /crm/v3/objects/contacts/batch/update" not in hubspot_sandbox.stats()["requests"]
