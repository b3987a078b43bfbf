"""Two-way sync through the real flow, clients and sandboxes: opt-outs, edits, departures, scopes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, cast

from connectors.coldsend import ExportRow
from connectors.leads import FieldMapping
from connectors.salesforce import SalesforceConnection
from flows.events import LEADS_SYNCED
from flows.naming import artifact_key
from flows.scopes import FLOW_SCOPES
from flows.sync import sync_leads_to_campaign
from tests._stack import Stack
from tests.flows._helpers import admin_client, artifacts, campaign_events, key_block, run_flow

HEADER = ["Email", "First Name", "Last Name", "Company", "Tier"]
MAPPING = FieldMapping(
    email="Email",
    first_name="First Name",
    last_name="Last Name",
    company="Company",
    custom_fields={"tier": "Tier"},
)
API = "/api/public/v1/campaigns"


def rows(count: int) -> list[list[str]]:
    return [[f"p{i}@example.com", f"First{i}", f"Last{i}", f"Co {i}", "gold"] for i in range(count)]


def write_csv(path: Path, data: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(data)
    return path


def full_key(stack: Stack) -> str:
    scopes = sorted(FLOW_SCOPES["sync"] | {"leads:update", "leads:delete"})
    return key_block(stack, scopes, "two-way")


def export(stack: Stack, campaign_id: str) -> dict[str, ExportRow]:
    with stack.client() as client, client.export_leads(campaign_id) as found:
        return {row.email: row for row in found}


def csv_store(stack: Stack, path: Path) -> str:
    return stack.csv_store(path, MAPPING)


def sf_update(stack: Stack, record_id: str, values: dict[str, Any]) -> None:
    """Edit a record as a Salesforce user would (a PATCH through the real simple-salesforce)."""
    kwargs: dict[str, Any] = stack.salesforce.connection_kwargs()
    conn = SalesforceConnection(**kwargs)
    conn.call(lambda client: cast(Any, client).Lead.update(record_id, values))


def test_salesforce_opt_outs_never_uploaded_pending_deleted_contacted_reported(
    stack: Stack,
) -> None:
    ids = stack.salesforce.insert(
        [
            {"Email": f"sf{i}@example.com", "LastName": f"L{i}", "Company": "Acme"}
            | ({"HasOptedOutOfEmail": True} if i < 2 else {})
            for i in range(8)
        ]
    )
    store = stack.salesforce_store()
    campaign_id = stack.new_campaign()
    key = full_key(stack)

    first = sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=key)

    assert first.uploaded == 6 and first.suppressed == 2 and first.opted_out == 2
    assert set(export(stack, campaign_id)) == {f"sf{i}@example.com" for i in range(2, 8)}

    # In Salesforce: sf2 (PENDING) and sf3 (SENT) opt out; sf4 unsubscribed in ColdSend and
    # our write-back set its flag; sf5's company is edited.
    stack.coldsend.set_lead_status(campaign_id, "sf3@example.com", "SENT")
    stack.coldsend.set_lead_status(campaign_id, "sf4@example.com", "UNSUBSCRIBED")
    for record_id in ids[2:5]:
        sf_update(stack, record_id, {"HasOptedOutOfEmail": True})
    sf_update(stack, ids[5], {"Company": "Acme Europe"})

    run = run_flow(sync_leads_to_campaign, campaign_id=campaign_id, lead_store=store, coldsend=key)
    second = run.result

    assert second.deleted == 1 and second.updated == 1 and second.opted_out == 5
    assert [(c.email, c.reason) for c in second.could_not_remove] == [
        ("sf3@example.com", "opted out after contact")
    ]
    now = export(stack, campaign_id)
    assert "sf2@example.com" not in now and {"sf3@example.com", "sf4@example.com"} <= set(now)
    assert now["sf5@example.com"].company == "Acme Europe"
    assert second.balanced
    # Named in the event and the summary artifact, never silently.
    events = campaign_events(LEADS_SYNCED, campaign_id, expect=2, timeout=60)
    (event,) = [e for e in events if e.payload["deleted"]]
    assert event.payload["could_not_remove"] == [
        {"email": "sf3@example.com", "reason": "opted out after contact"}
    ]
    assert event.payload["deleted"] == 1 and event.payload["opted_out"] == 5
    (summary,) = artifacts(
        run.flow_run_id, key=artifact_key("sync", store, second.campaign_name, "summary")
    )
    assert "| sf3@example.com | opted out after contact |" in str(summary.data)

    third = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=key, incremental=False
    )
    assert (third.uploaded, third.updated, third.deleted) == (0, 0, 0)
    assert export(stack, campaign_id).keys() == now.keys()


def test_edits_update_changed_fields_only_and_a_third_run_changes_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "leads.csv", [HEADER, *rows(30)])
    store = csv_store(stack, path)
    campaign_id = stack.new_campaign()
    key = full_key(stack)
    sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=key)
    with admin_client(stack) as client:  # a custom field set in ColdSend only: never touched
        lead = next(client.iter_leads(campaign_id, search="p0@example.com"))
        client.update_lead(campaign_id, lead.lead_id, custom_fields={"note": "kept"})

    data = rows(30)
    for i in (0, 1, 2):
        data[i][3] = f"Edited {i}"  # three company edits: one update upload carries them
    data[3][4] = ""  # a custom field emptied: only a PUT (null) removes it
    write_csv(path, [HEADER, *data])
    stack.coldsend.reset_stats()

    report = sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=key)

    assert report.updated == 4 and report.to_update == 4 and report.uploaded == 0
    assert report.update_path == "upload"
    now = export(stack, campaign_id)
    assert [now[f"p{i}@example.com"].company for i in range(4)] == [
        "Edited 0",
        "Edited 1",
        "Edited 2",
        "Co 3",
    ]
    assert "tier" not in now["p3@example.com"].custom_fields
    assert now["p0@example.com"].custom_fields["note"] == "kept"
    assert now["p0@example.com"].custom_fields["tier"] == "gold"
    requests = stack.coldsend.stats()["requests"]
    assert requests[f"POST {API}/{{campaign_id}}/leads"] == 1  # the three by one upload
    # The removal, and the leads:update scope check (a PUT against a campaign that never
    # exists), made because an update was due.
    assert requests[f"PUT {API}/{{campaign_id}}/leads/{{lead_id}}"] == 2

    again = sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=key)
    assert (again.updated, again.to_update, again.uploaded) == (0, 0, 0)


def test_a_key_without_leads_update_fails_before_anything_changes(
    stack: Stack, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "leads.csv", [HEADER, *rows(10)])
    store = csv_store(stack, path)
    campaign_id = stack.new_campaign()
    no_update = key_block(stack, sorted(FLOW_SCOPES["sync"] | {"leads:delete"}), "no-update")
    # With nothing to update the key is enough: leads:update is needed only when due.
    first = sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=no_update)
    assert first.uploaded == 10
    before = export(stack, campaign_id)

    data = rows(12)  # two new leads, and one edit
    data[0][3] = "Edited"
    write_csv(path, [HEADER, *data])
    run = run_flow(
        sync_leads_to_campaign, campaign_id=campaign_id, lead_store=store, coldsend=no_update
    )

    assert run.state.is_failed()
    message = str(run.state.message)
    assert "lacks the scope(s) leads:update needed by the sync flow" in message
    assert "1 lead(s) changed in the store, and nothing was changed" in message
    after = export(stack, campaign_id)
    assert after.keys() == before.keys()  # the two new leads were not uploaded either
    assert after["p0@example.com"].company == "Co 0"


def test_a_capped_run_leaves_the_rest_to_the_next(stack: Stack, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "leads.csv", [HEADER, *rows(10)])
    store = csv_store(stack, path)
    campaign_id = stack.new_campaign()
    key = full_key(stack)
    sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=key)
    data = rows(10)
    for i in range(5):
        data[i][1] = f"Renamed{i}"
    write_csv(path, [HEADER, *data])

    first = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=key, max_updates_per_run=2
    )
    second = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=key, max_updates_per_run=2
    )
    third = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=key, max_updates_per_run=2
    )

    assert (first.updated, first.updates_deferred) == (2, 3)
    assert (second.updated, second.updates_deferred) == (2, 1)
    assert (third.updated, third.updates_deferred) == (1, 0)
    now = export(stack, campaign_id)
    assert [now[f"p{i}@example.com"].first_name for i in range(5)] == [
        f"Renamed{i}" for i in range(5)
    ]


def test_dry_run_shows_the_plan_and_changes_nothing(stack: Stack, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "leads.csv", [HEADER, *rows(6)])
    store = csv_store(stack, path)
    campaign_id = stack.new_campaign()
    key = full_key(stack)
    sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=key)
    stack.coldsend.set_lead_status(campaign_id, "p5@example.com", "OPENED")
    data = rows(8)  # two new leads
    data[0][3] = "Planned Co"
    opted = ("p1@example.com", "p5@example.com")  # opt-outs: p1 PENDING, p5 contacted
    write_csv(
        path, [[*HEADER, "Unsubscribed"], *[[*r, "yes" if r[0] in opted else ""] for r in data]]
    )
    before = export(stack, campaign_id)

    run = run_flow(
        sync_leads_to_campaign,
        campaign_id=campaign_id,
        lead_store=store,
        coldsend=key,
        dry_run=True,
    )
    plan = run.result

    assert plan.dry_run and plan.uploaded == 0 and plan.updated == 0 and plan.deleted == 0
    assert (plan.to_upload, plan.to_update, plan.to_delete) == (2, 1, 1)
    assert [(c.email, c.reason) for c in plan.could_not_remove] == [
        ("p5@example.com", "opted out after contact")
    ]
    assert [(c.email, c.field, c.old, c.new) for c in plan.changes_sample] == [
        ("p0@example.com", "company", "Co 0", "Planned Co")
    ]
    assert plan.balanced
    assert export(stack, campaign_id) == before
    (summary,) = artifacts(
        run.flow_run_id, key=artifact_key("sync", store, plan.campaign_name, "summary")
    )
    text = str(summary.data)
    assert "| to upload (would be) | 2 |" in text and "| to delete (PENDING) | 1 |" in text
    assert "| p0@example.com | company | Co 0 | Planned Co |" in text


def test_departures_from_a_csv_file_and_a_sheet(stack: Stack, tmp_path: Path) -> None:
    key = full_key(stack)
    for kind in ("csv", "sheet"):
        campaign_id = stack.new_campaign(f"Departures {kind}")
        data = [HEADER, *rows(6)]
        if kind == "csv":
            path = write_csv(tmp_path / "leads.csv", data)
            store = csv_store(stack, path)
        else:
            sid = stack.sheets.create_spreadsheet(sheets={"Sheet1": data})
            store = stack.sheet_store(sid, mapping=MAPPING)
        # A lead another store put there: never judged by this store.
        with stack.client() as client:
            client.add_lead(campaign_id, email="elsewhere@example.com")
        sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=key)
        stack.coldsend.set_lead_status(campaign_id, "p5@example.com", "SENT")
        kept = [HEADER, *rows(6)[:4]]  # p4 (PENDING) and p5 (SENT) leave the store
        if kind == "csv":
            write_csv(path, kept)
        else:
            # A person deletes the two rows in the sheet (real gspread, sandbox API).
            worksheet = stack.sheets.client().open_by_key(sid).sheet1
            worksheet.batch_clear(["A6:E7"])

        keep = sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=key)
        assert keep.departed == 0 and keep.deleted == 0 and not keep.departures_checked

        report = sync_leads_to_campaign(
            campaign_id=campaign_id, lead_store=store, coldsend=key, on_removed="delete_pending"
        )

        assert report.departures_checked and report.departed == 2 and report.deleted == 1, kind
        assert [(c.email, c.reason) for c in report.could_not_remove] == [
            ("p5@example.com", "left the store after contact")
        ]
        now = export(stack, campaign_id)
        assert "p4@example.com" not in now
        assert {"p5@example.com", "elsewhere@example.com"} <= set(now)


def test_a_salesforce_lead_edited_out_of_the_filters_departs(stack: Stack) -> None:
    ids = stack.salesforce.insert(
        [
            {"Email": f"w{i}@example.com", "LastName": "W", "Company": "A", "LeadSource": "Web"}
            for i in range(4)
        ]
    )
    store = stack.salesforce_store(filters=[("LeadSource", "=", "Web")])
    campaign_id = stack.new_campaign()
    key = full_key(stack)
    sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=key)
    sf_update(stack, ids[0], {"LeadSource": "Phone"})

    report = sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=store, coldsend=key, on_removed="delete_pending"
    )

    assert report.departed == 1 and report.deleted == 1 and report.cursor is not None
    assert "w0@example.com" not in export(stack, campaign_id)


def test_a_rejected_row_comes_back_once_fixed_even_incrementally(stack: Stack) -> None:
    ids = stack.salesforce.insert(
        [
            {"Email": "good@example.com", "LastName": "G", "Company": "A"},
            {"Email": "broken.example.com", "LastName": "B", "Company": "A"},
        ]
    )
    store = stack.salesforce_store()
    campaign_id = stack.new_campaign()
    key = full_key(stack)
    first = sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=key)
    assert first.rejected == 1 and first.uploaded == 1 and first.cursor is not None

    sf_update(stack, ids[1], {"Email": "fixed@example.com"})
    second = sync_leads_to_campaign(campaign_id=campaign_id, lead_store=store, coldsend=key)

    assert second.uploaded == 1 and second.rejected == 0
    assert set(export(stack, campaign_id)) == {"good@example.com", "fixed@example.com"}
