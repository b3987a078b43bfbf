"""The sync flow against the sandboxes, through the real client libraries and a Prefect server."""

from __future__ import annotations

import csv
import gc
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from connectors.coldsend import ColdSendClient, forget_upload_job_timings, upload_job_timing
from connectors.coldsend import scopes as coldsend_scopes
from connectors.coldsend.scopes import DEFAULT_MEMORY
from flows.events import LEADS_SYNCED
from flows.naming import artifact_key, slugify
from flows.scope_memory import SCOPE_MEMORY
from flows.sync import _older_objects_set_aside, sync_leads_to_campaign
from flows.tasks import AccountView
from tests._stack import Stack
from tests.flows._helpers import (
    admin_client,
    artifacts,
    campaign_events,
    new_inbox,
    run_flow,
    task_runs,
)

# Leads in the chunking test; raise it (e.g. 100000) to watch task runs stay flat.
CHUNK_TEST_LEADS = int(os.environ.get("COLDSEND_FLOW_TEST_LEADS", "25000"))


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def lead_rows(count: int, start: int = 0, domain: str = "example.com") -> list[list[str]]:
    return [
        [f"lead{i}@{domain}", f"First{i}", f"Last{i}", f"Company {i % 7}"]
        for i in range(start, start + count)
    ]


HEADER = ["Email", "First Name", "Last Name", "Company"]


def uploads(stack: Stack) -> int:
    requests: dict[str, int] = stack.coldsend.stats()["requests"]
    return requests.get("POST /api/public/v1/campaigns/{campaign_id}/leads", 0)


def test_sync_from_salesforce_accounts_for_every_row_and_reports(stack: Stack) -> None:
    ids = stack.salesforce.seed(60, seed=3, bad_every=10)
    campaign_id = stack.new_campaign()
    store = stack.salesforce_store()

    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
    )
    report = run.result

    assert report.read == len(ids)
    assert report.balanced and report.unaccounted == 0
    assert report.rejected > 0 and report.uploaded > 0
    in_campaign = stack.campaign_emails(campaign_id)
    assert len(in_campaign) == len(set(in_campaign)) == report.uploaded
    ids_by_email: dict[str, set[str]] = {}
    for record in stack.salesforce.records():
        if record.get("Email"):
            ids_by_email.setdefault(record["Email"].strip().lower(), set()).add(record["Id"])
    assert set(in_campaign) <= set(ids_by_email)
    # The CRM record id travels with each lead, for the write-back.
    with stack.client() as client, client.export_leads(campaign_id) as rows:
        assert all(row.custom_fields["crm_record_id"] in ids_by_email[row.email] for row in rows)

    # Rejected rows: a table artifact, a link artifact and a CSV file with every row and reason.
    found = artifacts(run.flow_run_id)
    table = next(a for a in found if a.type == "table")
    shown = json.loads(str(table.data))
    # Rejected rows, then repeats of an email already read (counted apart, listed alike).
    assert report.duplicate_in_source > 0
    assert len(shown) == report.rejected + report.duplicate_in_source
    assert sum(r["stage"] == "duplicate in source" for r in shown) == report.duplicate_in_source
    assert {r["record_id"] for r in shown} <= set(ids) and all(r["reason"] for r in shown)
    assert report.rejects_csv is not None
    with open(report.rejects_csv, encoding="utf-8", newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert len(rejects) == report.rejected + report.duplicate_in_source
    assert all(r["reason"] and r["record_id"] in ids for r in rejects)
    # Keys and titles name the store and the campaign; without a report storage block the
    # full file is named (on this machine), never linked as a file:// address.
    by_key = {a.key: a for a in found if a.key}
    name = report.campaign_name
    prefix = artifact_key("sync", store, name)
    assert prefix == slugify(f"sync {store} {name}")
    assert table.key == f"{prefix}-rejects"
    not_used = report.rejected + report.duplicate_in_source
    assert f"{store} -> {name}: all {not_used} rejected or duplicate row(s)" in str(
        table.description
    )
    assert report.rejects_csv in str(table.description)
    assert not [a for a in found if a.type == "link"]
    assert not any("file://" in str(a.data) + str(a.description) for a in found)
    progress = [a for a in found if a.type == "progress"]
    assert progress and progress[-1].data == 100.0
    assert store in str(progress[-1].description) and name in str(progress[-1].description)
    summary = by_key[artifact_key("sync", store, name, "summary")]
    text = str(summary.data)
    assert text.startswith(f"# Sync: {store} -> {name}\n\n**Uploaded {report.uploaded} new lead(s)")
    assert summary.description and summary.description.startswith("Uploaded ")
    assert f"| read from source | {report.read} |" in text
    assert f"| uploaded | {report.uploaded} |" in text
    # The run says what runs, and is tagged for the runs list's filters.
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(run.flow_run_id)
    assert flow_run.name == f"sync {store} -> {name}"
    assert {"store:salesforce-leads", f"lead-store:{store}", f"campaign:{name}"} <= set(
        flow_run.tags
    )

    # The event carries the counts and the upload jobs (the launch trigger waits for them).
    (event,) = campaign_events(LEADS_SYNCED, campaign_id)
    assert event.payload["uploaded"] == report.uploaded
    assert event.payload["rejected"] == report.rejected
    assert event.payload["job_ids"] == report.job_ids and report.job_ids

    # Reconcile: nothing is sent twice, incrementally or on a full re-read.
    again = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    # Incremental: records stamped from ten minutes before the stored cursor on (the overlap
    # that catches late commits; here all of them, seeded a moment ago), all reconciled away.
    assert again.uploaded == 0 and again.read == len(ids)
    assert again.cursor == report.cursor
    full = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block, incremental=False
    )
    assert full.uploaded == 0 and full.already_in_campaign == report.uploaded
    assert full.job_ids == []
    assert sorted(stack.campaign_emails(campaign_id)) == sorted(in_campaign)


@pytest.mark.parametrize("kind", ["sheet", "csv"])
def test_sync_from_sheet_and_csv(stack: Stack, tmp_path: Path, kind: str) -> None:
    rows = [HEADER, *lead_rows(30), ["not-an-email", "Bad", "Row", "X"], ["", "No", "Email", ""]]
    rows.append(["LEAD3@EXAMPLE.COM ", "Dup", "Case", "Y"])  # same person as lead3
    if kind == "sheet":
        store = stack.sheet_store(stack.sheets.create_spreadsheet(sheets={"Sheet1": rows}))
    else:
        store = stack.csv_store(write_csv(tmp_path / "leads.csv", rows))
    campaign_id = stack.new_campaign()

    report = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )

    assert report.read == 33 and report.uploaded == 30 and report.unaccounted == 0
    assert report.rejected == 2 and report.duplicate_in_source == 1
    assert sorted(stack.campaign_emails(campaign_id)) == sorted(r[0] for r in lead_rows(30))
    again = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert again.uploaded == 0 and again.already_in_campaign == 30 and again.job_ids == []


def test_dry_run_uploads_nothing_and_shows_what_would_be_sent(stack: Stack, tmp_path: Path) -> None:
    store = stack.csv_store(write_csv(tmp_path / "leads.csv", [HEADER, *lead_rows(25)]))
    campaign_id = stack.new_campaign()
    stack.coldsend.reset_stats()

    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
        dry_run=True,
    )

    report = run.result
    assert report.dry_run and report.to_upload == 25 and report.parts == 1
    assert stack.campaign_emails(campaign_id) == []
    assert uploads(stack) == 0
    (summary,) = artifacts(
        run.flow_run_id, key=artifact_key("sync", store, report.campaign_name, "summary")
    )
    text = str(summary.data)
    assert report.uploaded == 0 and report.balanced  # a dry run uploads nothing, says so
    assert (
        "Sync dry run" in text
        and "**Dry run: 25 new lead(s)" in text
        and "| to upload (would be) | 25 |" in text
    )
    assert all(f"| {row[0]} |" in text for row in lead_rows(25))
    assert campaign_events(LEADS_SYNCED, campaign_id, timeout=2) == []


def test_suppressed_emails_are_never_uploaded(stack: Stack, tmp_path: Path) -> None:
    other = stack.new_campaign("Earlier campaign")
    with stack.client() as client:
        for email in ("lead1@example.com", "lead2@example.com", "lead3@example.com"):
            client.add_lead(other, email=email)
    stack.coldsend.set_lead_status(other, "lead1@example.com", "UNSUBSCRIBED")
    stack.coldsend.set_lead_status(other, "lead2@example.com", "BOUNCED")
    # lead3 is only SENT elsewhere: contacting it again from another campaign is allowed.
    stack.coldsend.set_lead_status(other, "lead3@example.com", "SENT")
    store = stack.csv_store(write_csv(tmp_path / "leads.csv", [HEADER, *lead_rows(10)]))
    campaign_id = stack.new_campaign()

    report = sync_leads_to_campaign(
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
        suppression_list=[" Lead4@Example.com"],
    )

    assert report.suppressed == 3 and report.uploaded == 7 and report.balanced
    emails = set(stack.campaign_emails(campaign_id))
    assert emails == {f"lead{i}@example.com" for i in (0, 3, 5, 6, 7, 8, 9)}


def test_other_campaigns_are_exported_only_when_a_lead_is_about_to_be_uploaded(
    stack: Stack, tmp_path: Path
) -> None:
    api = "/api/public/v1/campaigns"
    other = stack.new_campaign("Campaign with a bounce")
    with stack.client() as client:
        client.add_lead(other, email="lead1@example.com")
        client.add_lead(other, email="lead12@example.com")
    stack.coldsend.set_lead_status(other, "lead1@example.com", "BOUNCED")
    stack.coldsend.set_lead_status(other, "lead12@example.com", "UNSUBSCRIBED")
    campaign_id = stack.new_campaign()
    with stack.client() as client:
        for email, first, last, company in lead_rows(10):
            client.add_lead(
                campaign_id, email=email, first_name=first, last_name=last, company=company
            )
    path = write_csv(tmp_path / "leads.csv", [HEADER, *lead_rows(10)])
    store = stack.csv_store(path)
    stack.coldsend.reset_stats()

    # Everything is in the campaign already: the bounce elsewhere is not even looked at.
    quiet = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )

    # lead1 bounced elsewhere but is in this campaign already: counted as such.
    assert quiet.already_in_campaign == 10 and quiet.suppressed == 0 and quiet.balanced
    # No scope check either: leads:update and leads:delete are needed only when a change is
    # due, and none is.
    assert stack.coldsend.stats()["requests"] == {
        f"GET {api}": 1,
        f"GET {api}/{{campaign_id}}/leads/export": 1,
    }

    # Two new rows: one unsubscribed elsewhere, one new. The other campaigns are read once.
    write_csv(path, [HEADER, *lead_rows(13)])
    stack.coldsend.reset_stats()
    busy = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )

    assert busy.uploaded == 2 and busy.suppressed == 1 and busy.already_in_campaign == 10
    requests = stack.coldsend.stats()["requests"]
    assert "lead12@example.com" not in stack.campaign_emails(campaign_id)
    # The campaign's own export, then one for each other campaign holding suppressed leads
    # (the shared sandbox may hold more than ours), each exactly once.
    exports = requests[f"GET {api}/{{campaign_id}}/leads/export"]
    with stack.client() as client:
        suppressing = sum(
            1
            for c in client.iter_campaigns()
            if c.campaign_id != campaign_id and (c.bounce_count or c.unsubscribe_count)
        )
    assert suppressing >= 1 and exports == 1 + suppressing


def as_a_new_process() -> None:
    """Forget what this process remembers of keys and servers, as a new flow-run process."""
    SCOPE_MEMORY.clear()
    DEFAULT_MEMORY.clear()
    forget_upload_job_timings()


def test_first_syncs_and_unchanged_resyncs_make_the_fewest_coldsend_requests(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ColdSend requests per sync, pinned by route: the scale bench's "requests vs minimum".

    A first sync lists the account once (name, state, emptiness and the campaigns whose
    unsubscribes and bounces must be suppressed account-wide), uploads once and reads the job
    until it is done; the leads:read check of an empty campaign is probed once per key for
    every flow run of the server, not once per run. An unchanged re-sync lists and exports,
    nothing else. The probe is a job read too (of a campaign that never exists), so probes
    are counted where they are made; how many reads a job needs depends on how fast the
    sandbox's import thread gets the CPU, so job reads are pinned as probes + at least one
    (the first-read estimate itself is pinned with an injected clock in tests/client).
    """
    api = "GET /api/public/v1/campaigns"
    upload = "POST /api/public/v1/campaigns/{campaign_id}/leads"
    job_read = "GET /api/public/v1/campaigns/{campaign_id}/leads/upload/{job_id}"
    export = "GET /api/public/v1/campaigns/{campaign_id}/leads/export"
    probes: list[str] = []
    probe = coldsend_scopes.probe_scope

    def counted_probe(client: ColdSendClient, scope: str) -> bool:
        probes.append(scope)
        return probe(client, scope)

    monkeypatch.setattr(coldsend_scopes, "probe_scope", counted_probe)
    stack.coldsend.set_jobs(rows_per_second=1_000_000)
    path = write_csv(tmp_path / "leads.csv", [HEADER, *lead_rows(40)])
    store = stack.csv_store(path)
    first_campaign, second_campaign = stack.new_campaign(), stack.new_campaign()

    def requests_besides_job_reads(expected_probes: list[str]) -> dict[str, int]:
        requests = dict(stack.coldsend.stats()["requests"])
        assert probes == expected_probes
        assert requests.pop(job_read) >= len(probes) + 1
        return requests

    # A key never used before: the empty campaign's leads:read is probed (one job read of a
    # campaign that never exists, answered 404), then the one upload and its job's reads.
    stack.coldsend.reset_stats()
    first = sync_leads_to_campaign(
        campaign_id=first_campaign, lead_store=store, coldsend=stack.coldsend_block
    )
    assert first.uploaded == 40
    assert requests_besides_job_reads(["leads:read"]) == {api: 1, upload: 1}

    # The next flow run, as a process worker starts it (nothing remembered in the process):
    # what the first run saw of the key is shared through the Prefect server: no probe.
    as_a_new_process()
    probes.clear()
    stack.coldsend.reset_stats()
    second = sync_leads_to_campaign(
        campaign_id=second_campaign, lead_store=store, coldsend=stack.coldsend_block
    )
    assert second.uploaded == 40
    assert requests_besides_job_reads([]) == {api: 1, upload: 1}

    # Unchanged: the listing and the campaign's export, nothing else (no scope checks).
    as_a_new_process()
    stack.coldsend.reset_stats()
    again = sync_leads_to_campaign(
        campaign_id=first_campaign, lead_store=store, coldsend=stack.coldsend_block
    )
    assert again.uploaded == 0 and again.already_in_campaign == 40
    assert probes == []
    assert stack.coldsend.stats()["requests"] == {api: 1, export: 1}


def test_a_failed_upload_job_fails_the_run_and_the_rerun_completes(
    stack: Stack, tmp_path: Path
) -> None:
    store = stack.csv_store(write_csv(tmp_path / "leads.csv", [HEADER, *lead_rows(40)]))
    campaign_id = stack.new_campaign()
    stack.coldsend.set_jobs(fail_rate=1.0)

    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
        rows_per_upload=20,
    )

    assert run.state.is_failed()
    message = str(run.state.message)
    assert "40 of 40 rows were not accounted for" in message and "Run the sync again" in message
    assert campaign_events(LEADS_SYNCED, campaign_id, timeout=2) == []
    stack.coldsend.set_jobs(fail_rate=0.0)
    report = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert report.balanced and report.uploaded + report.already_in_campaign == 40
    assert sorted(stack.campaign_emails(campaign_id)) == sorted(r[0] for r in lead_rows(40))


def test_a_part_the_server_keeps_refusing_is_sent_by_one_retry_layer_only(
    stack: Stack, tmp_path: Path
) -> None:
    # Principle 7: the client retries the 500s (the upload is safe to repeat with
    # duplicate_action=skip); the task must not retry the whole budget again on top.
    store = stack.csv_store(write_csv(tmp_path / "leads.csv", [HEADER, *lead_rows(30)]))
    campaign_id = stack.new_campaign()
    stack.coldsend.set_faults(
        error_rate=1.0,
        error_statuses=[500],
        path_prefix=f"/api/public/v1/campaigns/{campaign_id}/leads",
        methods=["POST"],
    )
    stack.coldsend.reset_stats()

    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
    )

    stack.coldsend.set_faults()
    assert run.state.is_failed()
    assert "500" in str(run.state.message) and "after 6 attempts" in str(run.state.message)
    assert uploads(stack) == 6  # 1 + the client's 5 retries; before: 12 (6 per task attempt)
    [upload_task] = [t for t in task_runs(run.flow_run_id) if t.name.startswith("Upload leads")]
    assert upload_task.run_count == 1


def test_a_campaign_that_cannot_take_leads_fails_before_reading(
    stack: Stack, tmp_path: Path
) -> None:
    campaign_id = stack.new_campaign()
    admin = ColdSendClient(stack.coldsend.admin_key, base_url=stack.coldsend.base_url)
    with admin:
        admin.delete_campaign(campaign_id)
    missing = tmp_path / "never-read.csv"

    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=stack.csv_store(missing),
        coldsend=stack.coldsend_block,
    )

    assert run.state.is_failed() and "Campaign not found" in str(run.state.message)


def test_task_runs_grow_with_chunks_not_leads(stack: Stack, tmp_path: Path) -> None:
    count = CHUNK_TEST_LEADS
    stack.coldsend.set_jobs(rows_per_second=1_000_000)
    store = stack.csv_store(write_csv(tmp_path / "leads.csv", [HEADER, *lead_rows(count)]))
    campaign_id = stack.new_campaign()

    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
        rows_per_upload=10_000,
    )

    report = run.result
    parts = -(-count // 10_000)
    assert report.uploaded == count and report.parts == parts
    names = sorted(t.name.rsplit("-", 1)[0] for t in task_runs(run.flow_run_id))
    # One state read, then one upload and one wait per part: nothing per lead.
    assert len(names) == 1 + 2 * parts, names
    assert len(stack.campaign_emails(campaign_id)) == count
    # The waits learned the server's import speed, for the first reads of later jobs.
    assert upload_job_timing(stack.coldsend.base_url.rstrip("/")).rows_per_second


def test_a_finished_campaign_syncs_to_nothing_to_do_but_refuses_new_leads(
    stack: Stack, tmp_path: Path
) -> None:
    campaign_id = stack.new_campaign()
    path = write_csv(tmp_path / "leads.csv", [HEADER, *lead_rows(5)])
    store = stack.csv_store(path)
    first = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert first.uploaded == 5
    inbox = new_inbox(stack, "finished@sender.example.com")
    with admin_client(stack) as client:
        client.update_campaign(
            campaign_id,
            inbox_ids=[inbox],
            variants=[
                {
                    "variant_name": "A",
                    "subject_template": "Hello",
                    "email_content": "A first email, long enough.",
                    "distribution_percent": 100,
                }
            ],
        )
        assert client.launch_campaign(campaign_id).status == "ACTIVE"
    stack.coldsend.advance(steps=6)
    with admin_client(stack) as client:
        assert client.get_campaign(campaign_id).status == "COMPLETED"

    # Nothing new: a reconciled run of a finished campaign is a success with nothing to do.
    again = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert again.uploaded == 0 and again.balanced

    # Something new: fail loudly, naming how many leads could not go anywhere.
    write_csv(path, [HEADER, *lead_rows(7)])
    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
    )
    assert run.state.is_failed()
    assert "2 new lead(s) cannot be uploaded" in str(run.state.message)
    assert "COMPLETED" in str(run.state.message)
    assert uploads(stack) == 1


def test_incremental_sync_rereads_a_late_commit_stamped_before_the_cursor(stack: Stack) -> None:
    stack.salesforce.seed(10, seed=21)
    campaign_id = stack.new_campaign()
    store = stack.salesforce_store()
    first = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert first.uploaded == 10 and first.cursor is not None
    # A transaction that committed after the first read but carries an earlier stamp.
    late = datetime.fromisoformat(first.cursor) - timedelta(minutes=2)
    stack.salesforce.insert(
        [
            {
                "Email": "late.commit@example.com",
                "LastName": "Late",
                "Company": "Slow Tx Inc",
                "SystemModstamp": late.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            }
        ]
    )

    again = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )

    assert again.uploaded == 1
    assert "late.commit@example.com" in stack.campaign_emails(campaign_id)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"rows_per_upload": 10_001}, "rows_per_upload must be between 1 and 10,000"),
        ({"parallel_uploads": 0}, "parallel_uploads must be at least 1"),
        (
            {
                "campaign_view": AccountView(
                    campaign_id="00000000-0000-0000-0000-000000000001", status="DRAFT"
                )
            },
            "campaign_view describes campaign 00000000-0000-0000-0000-000000000001",
        ),
    ],
)
def test_bad_parameters_fail_before_any_request(
    stack: Stack, tmp_path: Path, parameters: dict[str, object], message: str
) -> None:
    campaign_id = stack.new_campaign()
    store = stack.csv_store(write_csv(tmp_path / "leads.csv", [HEADER, *lead_rows(3)]))
    stack.coldsend.reset_stats()

    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
        **parameters,
    )

    assert run.state.is_failed() and message in str(run.state.message)
    assert stack.coldsend.stats()["requests"] == {}


def test_objects_set_aside_for_the_loop_are_handed_back_even_on_failure() -> None:
    before = gc.get_freeze_count()
    with pytest.raises(RuntimeError), _older_objects_set_aside():
        assert gc.get_freeze_count() > before
        raise RuntimeError("the loop failed")
    assert gc.get_freeze_count() == 0


def test_an_unsaved_store_syncs_and_the_report_names_each_column(
    stack: Stack, tmp_path: Path
) -> None:
    from blocks import CsvFileLeads
    from connectors.leads import FieldMapping
    from flows.write_back import write_back_statuses

    # A HubSpot-style export, and a mapping that only names the email column.
    header = ["Record ID", "First Name", "Last Name", "Personal Email", "Company Name", "Phone"]
    rows = [header] + [
        [str(i), f"First{i}", f"Last{i}", f"p{i}@example.com", f"Co {i}", "555"] for i in range(5)
    ]
    store = CsvFileLeads(
        path=str(write_csv(tmp_path / "export.csv", rows)),
        mapping=FieldMapping(email="Personal Email"),
    )
    campaign_id = stack.new_campaign()

    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=stack.coldsend_block,
    )

    report = run.result
    assert report.uploaded == 5 and report.lead_store.startswith("csv-file-leads:CSV file ")
    assert report.columns == {
        "email": "Personal Email",
        "first_name": "First Name",
        "last_name": "Last Name",
        "company": "Company Name",
    }
    assert report.unused_columns == ["Record ID", "Phone"]
    (summary,) = artifacts(
        run.flow_run_id,
        key=artifact_key("sync", report.lead_store, report.campaign_name, "summary"),
    )
    assert "| company | Company Name |" in str(summary.data)
    assert "`Record ID`, `Phone`" in str(summary.data)
    with stack.client() as client, client.export_leads(campaign_id) as exported:
        assert {(r.email, r.company) for r in exported} == {
            (f"p{i}@example.com", f"Co {i}") for i in range(5)
        }
    # The write-back matches rows on the column the sync read emails from.
    back = write_back_statuses(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert back.written == 5
    with (tmp_path / "export.csv").open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert {r["ColdSend Status"] for r in written} == {"PENDING"}
    # The status columns the write-back added are not reported as unused on the next sync.
    again = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=stack.coldsend_block
    )
    assert again.unused_columns == ["Record ID", "Phone"] and again.uploaded == 0
