"""The write-back flow to Salesforce, a Google Sheet and a CSV file, against the sandboxes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from flows.events import STATUSES_WRITTEN
from flows.naming import artifact_key
from flows.sync import sync_leads_to_campaign
from flows.write_back import write_back_statuses
from tests._stack import Stack
from tests.flows._helpers import artifacts, campaign_events, run_flow

# What the campaign says per lead (index in the store), and what the CRM must hold afterwards.
CAMPAIGN_SAYS = {0: "SENT", 1: "OPENED", 2: "REPLIED", 3: "BOUNCED", 4: "UNSUBSCRIBED"}
HEADER = ["Email", "First Name", "Last Name", "Company", "ColdSend Status"]


def emails(count: int) -> list[str]:
    return [f"wb{i}@example.com" for i in range(count)]


def set_statuses(stack: Stack, campaign_id: str) -> None:
    for index, status in CAMPAIGN_SAYS.items():
        stack.coldsend.set_lead_status(campaign_id, emails(10)[index], status)


def expected_crm(held: str) -> dict[str, str]:
    """Status per email after write-back: lead 0 held REPLIED in the CRM, so it keeps it."""
    out = dict.fromkeys(emails(10), "PENDING")
    out.update({emails(10)[i]: s for i, s in CAMPAIGN_SAYS.items()})
    out[emails(10)[0]] = held
    return out


def sync(stack: Stack, store: str) -> str:
    campaign_id = stack.new_campaign()
    report = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert report.uploaded == 10
    set_statuses(stack, campaign_id)
    return campaign_id


def test_write_back_to_salesforce_is_idempotent_and_never_moves_backwards(stack: Stack) -> None:
    records = [
        {"Email": e, "FirstName": "F", "LastName": f"L{i}", "Company": "Acme"}
        for i, e in enumerate(emails(10))
    ]
    # Already further along than the campaign says (a reply logged in the CRM).
    records[0].update(
        ColdSend_Status__c="REPLIED", ColdSend_Opened__c=True, ColdSend_Replied__c=True
    )
    stack.salesforce.insert(records)
    store = stack.salesforce_store()
    campaign_id = sync(stack, store)
    stack.salesforce.reset_stats()

    run = run_flow(
        write_back_statuses,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
    )

    report = run.result
    assert report.exported == 10 and report.held_back == 1 and report.failed == 0
    assert report.written == 9
    by_email = {r["Email"]: r for r in stack.salesforce.records()}
    assert {e: by_email[e]["ColdSend_Status__c"] for e in emails(10)} == expected_crm("REPLIED")
    assert by_email[emails(10)[1]]["ColdSend_Opened__c"] is True
    assert by_email[emails(10)[2]]["ColdSend_Replied__c"] is True
    assert by_email[emails(10)[3]]["ColdSend_Bounced__c"] is True
    assert by_email[emails(10)[4]]["HasOptedOutOfEmail"] is True
    campaign_name = f"Flow test campaign {stack.tag}"  # read by the sync, remembered
    (summary,) = artifacts(run.flow_run_id)
    assert summary.key == artifact_key("write-back", campaign_name, store, "summary")
    assert f"# Write-back: {campaign_name} -> {store}" in str(summary.data)
    text = str(summary.data)
    assert "| REPLIED | 1 |" in text and "| PENDING | 5 |" in text
    assert "| written (changed) | 9 |" in text
    (event,) = campaign_events(STATUSES_WRITTEN, campaign_id)
    assert event.payload["written"] == 9 and event.payload["by_status"]["PENDING"] == 5
    # The event feed names the campaign and the store, not only ids.
    assert event.resource.get("prefect.resource.name") == campaign_name
    assert event.payload["lead_store"] == store and event.payload["campaign_name"] == campaign_name
    stores = [r for r in event.related if r.get("prefect.resource.role") == "lead-store"]
    assert [r.get("prefect.resource.name") for r in stores] == [store]

    stack.salesforce.reset_stats()
    again = write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert again.written == 0 and again.unchanged + again.held_back == 10
    writes = [r for r in stack.salesforce.stats()["requests"] if not r.startswith("GET")]
    assert all("token" in r for r in writes), writes  # a login at most, never a write


@pytest.mark.parametrize("kind", ["sheet", "csv"])
def test_write_back_to_sheet_and_csv(stack: Stack, tmp_path: Path, kind: str) -> None:
    rows = [HEADER] + [[e, "F", f"L{i}", "Acme", ""] for i, e in enumerate(emails(10))]
    rows[1][4] = "REPLIED"
    path = tmp_path / "leads.csv"
    spreadsheet = ""
    if kind == "sheet":
        spreadsheet = stack.sheets.create_spreadsheet(sheets={"Sheet1": rows})
        store = stack.sheet_store(spreadsheet)
    else:
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
        store = stack.csv_store(path)
    campaign_id = sync(stack, store)

    def crm() -> list[list[str]]:
        if kind == "sheet":
            return [[str(c) for c in row] for row in stack.sheets.values(spreadsheet)]
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.reader(handle))

    report = write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )

    assert report.written == 9 and report.held_back == 1 and report.failed == 0
    table = crm()
    status_at = table[0].index("ColdSend Status")
    assert {row[0]: row[status_at] for row in table[1:]} == expected_crm("REPLIED")
    unsub_at = table[0].index("ColdSend Unsubscribed")
    assert table[1 + 4][unsub_at].upper() == "TRUE"

    before = crm()
    writes_before = len(stack.sheets.writes())
    mtime = path.stat().st_mtime_ns if kind == "csv" else 0
    again = write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert again.written == 0 and again.unchanged + again.held_back == 10
    assert crm() == before
    assert len(stack.sheets.writes()) == writes_before
    if kind == "csv":
        assert path.stat().st_mtime_ns == mtime
