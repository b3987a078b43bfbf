"""Replies logged on HubSpot contacts as incoming email engagements, once each."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr

from blocks import HubSpotContacts, HubSpotCredentials
from connectors.activities import Activity, activity_key
from connectors.hubspot.activities import HubSpotActivitySink
from connectors.hubspot.connection import HubSpotConnection
from connectors.leads import FieldMapping
from flows.sync import sync_leads_to_campaign
from flows.write_back import write_back_statuses
from sandbox.hubspot.fixtures import HubSpotSandbox
from tests._stack import Stack

FORMULA = '=HYPERLINK("http://evil.example","x")'


def _store(stack: Stack, hubspot: HubSpotSandbox) -> str:
    name = f"hs-replies-{stack.tag}"
    HubSpotContacts(
        credentials=HubSpotCredentials(access_token=SecretStr(hubspot.token), base_url=hubspot.url),
        mapping=FieldMapping(email="email", first_name="firstname"),
    ).save(name, overwrite=True)
    return f"hubspot-contacts/{name}"


def test_replies_become_incoming_emails_on_the_contact_once(
    stack: Stack, hubspot_sandbox: HubSpotSandbox
) -> None:
    emails = [f"hsr{i}-{stack.tag}@example.com" for i in range(4)]
    ids = hubspot_sandbox.add_contacts(
        [{"email": e, "firstname": "F", "hubspot_owner_id": "77"} for e in emails]
    )
    store = _store(stack, hubspot_sandbox)
    campaign_id = stack.new_campaign()
    assert (
        sync_leads_to_campaign(
            campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
        ).uploaded
        == 4
    )
    add = stack.coldsend.add_reply
    add(campaign_id, emails[0], "Yes please", subject="Re: hi", received_at="2026-03-01T09:00:00Z")
    add(campaign_id, emails[1], FORMULA, received_at="2026-03-01T10:00:00Z")
    add(campaign_id, emails[2], "Gone before logging", received_at="2026-03-01T11:00:00Z")
    hubspot_sandbox.app.state.store.archive(int(ids[2]))  # deleted from the CRM

    report = write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    ).replies
    assert report is not None
    assert (report.logged, report.no_record, report.failed) == (2, 1, 0)
    mine = {
        e["properties"]["coldsend_reply_id"]: e
        for e in hubspot_sandbox.emails()
        if e["contact_ids"] and e["contact_ids"][0] in ids
    }
    assert len(mine) == 2
    by_contact = {e["contact_ids"][0]: e["properties"] for e in mine.values()}
    first = by_contact[ids[0]]
    assert first["hs_email_direction"] == "INCOMING_EMAIL"
    assert first["hs_email_subject"] == "Re: hi" and first["hs_email_text"] == "Yes please"
    assert first["hs_timestamp"].startswith("2026-03-01T09:00:00")
    assert first["hubspot_owner_id"] == "77"
    assert by_contact[ids[1]]["hs_email_text"] == FORMULA

    again = write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    ).replies
    assert again is not None and (again.read, again.logged) == (0, 0)
    add(campaign_id, emails[0], "One more thing", received_at="2026-03-02T09:00:00Z")
    later = write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    ).replies
    assert later is not None and (later.logged, later.already_logged) == (1, 1)
    assert sum(1 for e in hubspot_sandbox.emails() if ids[0] in e["contact_ids"]) == 2


def test_a_lost_create_answer_fails_the_run_and_the_next_run_logs_nothing_twice(
    hubspot_sandbox: HubSpotSandbox,
) -> None:
    (cid,) = hubspot_sandbox.add_contacts([{"email": "lost-answer@example.com"}])
    conn = HubSpotConnection(access_token=hubspot_sandbox.token, base_url=hubspot_sandbox.url)
    sink = HubSpotActivitySink(conn)
    activity = Activity(
        key=activity_key("reply", f"lost-{cid}"),
        kind="reply",
        campaign_id="c",
        lead_id="l",
        email="lost-answer@example.com",
        source_id=cid,
        subject="Re: x",
        text="hello",
        at=datetime(2026, 5, 1, tzinfo=UTC),
    )
    hubspot_sandbox.control(
        "PUT",
        "faults",
        json={
            "drop_rate": 1.0,
            "drop_after_processing_share": 1.0,
            "methods": ["POST"],
            "path_prefix": "/crm/v3/objects/emails/batch",
        },
    )
    try:
        first = sink.write_activities([activity])
    finally:
        hubspot_sandbox.control("PUT", "faults", json={})
    assert len(first.failures) == 1 and "next run reconciles" in first.failures[0].reason
    second = sink.write_activities([activity])
    assert len(second.already_logged) == 1 and not second.created
    assert sum(1 for e in hubspot_sandbox.emails() if cid in e["contact_ids"]) == 1
