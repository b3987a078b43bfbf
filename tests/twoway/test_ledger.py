"""The sync's books without Prefect or HTTP: classification, plan, cursor and report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.coldsend import UploadResult
from connectors.leads import Lead, LeadStatus, Reject
from flows.ledger import (
    OPTED_OUT_AFTER_CONTACT,
    SOURCE_TAG_FIELD,
    CampaignLead,
    PlannedUpdate,
    SyncLedger,
    choose_update_path,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def lead(email: str, **kw: object) -> Lead:
    return Lead(email, **kw)  # type: ignore[arg-type]


def in_campaign(status: str = "PENDING", company: str = "", **custom: str) -> CampaignLead:
    return CampaignLead(LeadStatus(status), "", "", company, custom)


def run(ledger: SyncLedger, items: list[Lead | Reject]) -> list[str]:
    stream: Iterator[Lead | Reject] = iter(items)
    return [x.email for x in ledger.filter(stream)]


def test_every_row_lands_in_one_count_and_actions_are_on_counted_leads() -> None:
    ledger = SyncLedger(
        campaign={
            "same@x.com": in_campaign(company="A"),
            "edited@x.com": in_campaign(company="Old"),
            "gone@x.com": in_campaign("PENDING"),
            "out@x.com": in_campaign("PENDING"),
            "sent-out@x.com": in_campaign("SENT"),
            "unsub@x.com": in_campaign("UNSUBSCRIBED"),
        },
        suppressed=frozenset({"unsub@x.com", "listed@x.com"}),
        store_label="Salesforce Lead",
        compared_fields=lambda: {"email", "company"},
    )
    items: list[Lead | Reject] = [
        lead("new@x.com", company="N"),
        lead("same@x.com", company="A"),
        lead("edited@x.com", company="New"),
        lead("out@x.com", opted_out=True),
        lead("sent-out@x.com", opted_out=True),
        lead("unsub@x.com", opted_out=True),  # our write-back's flag, read back
        lead("listed@x.com"),
        Reject("invalid email", row_number=9, email="bad"),
        Reject("duplicate email", row_number=10, email="new@x.com", duplicate=True),
        lead("never@x.com", opted_out=True),
    ]
    assert run(ledger, items) == ["new@x.com"]
    ledger.finish(departures=False)
    ledger.record_upload(UploadResult("job", "c", 0, 1, 1, 0, 0))
    report = ledger.report(
        campaign_id="c", campaign_name="n", campaign_status="DRAFT", lead_store="s"
    )
    assert report.counts() == {
        "read": 10,
        "uploaded": 1,
        "already_in_campaign": 2,
        "duplicate_in_source": 1,
        "rejected": 1,
        "suppressed": 5,
        "unaccounted": 0,
        "updated": 0,
        "deleted": 0,
        "opted_out": 4,
        "departed": 0,
        "could_not_remove": 1,
    }
    assert [r.email for r in ledger.removals] == ["out@x.com"]
    assert ledger.removals[0].reason == "opted out in Salesforce Lead"
    (kept,) = report.could_not_remove
    assert (kept.email, kept.reason) == ("sent-out@x.com", OPTED_OUT_AFTER_CONTACT)
    (update,) = ledger.updates
    assert update.changes == {"company": "New"}
    assert [(c.field, c.old, c.new) for c in report.changes_sample] == [("company", "Old", "New")]
    assert report.to_delete == 1 and report.to_update == 1 and report.balanced


def test_a_dry_run_uploads_nothing_and_still_balances() -> None:
    ledger = SyncLedger(campaign={}, suppressed=frozenset(), dry_run=True)
    assert run(ledger, [lead("a@x.com"), lead("b@x.com")]) == ["a@x.com", "b@x.com"]
    ledger.finish(departures=False)
    report = ledger.report(campaign_id="c", campaign_name="", campaign_status="", lead_store="s")
    assert report.uploaded == 0 and report.to_upload == 2 and report.balanced
    ledger.dry_run = False
    report = ledger.report(campaign_id="c", campaign_name="", campaign_status="", lead_store="s")
    assert report.unaccounted == 2 and not report.balanced  # nothing uploaded: not complete


def test_custom_fields_are_a_merge_patch_and_only_mapped_fields_compare() -> None:
    ledger = SyncLedger(
        campaign={"a@x.com": in_campaign(company="Kept", tier="gold", region="EU")},
        suppressed=frozenset(),
        compared_fields=lambda: {"email", "first_name", "custom:tier", "custom:region"},
    )
    item = lead("a@x.com", custom_fields={"tier": "", "region": "US"})
    run(ledger, [item])
    (update,) = ledger.updates
    # company is not mapped: the campaign's value stays whatever the store says.
    assert update.changes == {"custom_fields": {"tier": None, "region": "US"}}
    assert not update.by_upload  # a removal: only a PUT can say it
    assert PlannedUpdate(item, {"company": "X", "custom_fields": {"r": "US"}}).by_upload


def test_departures_only_for_leads_this_store_uploaded_and_only_when_asked() -> None:
    campaign = {
        "stays@x.com": in_campaign(**{SOURCE_TAG_FIELD: "csv-file-leads/a"}),
        "left@x.com": in_campaign(**{SOURCE_TAG_FIELD: "csv-file-leads/a"}),
        "left-sent@x.com": in_campaign("SENT", **{SOURCE_TAG_FIELD: "csv-file-leads/a"}),
        "left-bounced@x.com": in_campaign("BOUNCED", **{SOURCE_TAG_FIELD: "csv-file-leads/a"}),
        "other-store@x.com": in_campaign(**{SOURCE_TAG_FIELD: "google-sheet-leads/b"}),
        "untagged@x.com": in_campaign(),
    }
    ledger = SyncLedger(
        campaign=campaign,
        suppressed=frozenset({"left-bounced@x.com"}),
        source_tag="csv-file-leads/a",
        compared_fields=lambda: {"email"},
    )
    run(ledger, [lead("stays@x.com")])
    ledger.finish(departures=True)
    assert ledger.departed == 3
    assert [r.email for r in ledger.removals] == ["left@x.com"]
    assert [(c.email, c.reason) for c in ledger.could_not_remove] == [
        ("left-sent@x.com", "left the store after contact")
    ]
    assert ledger.updates == []  # tagged already
    # Without a full read nothing is judged.
    ledger = SyncLedger(campaign=campaign, suppressed=frozenset(), source_tag="csv-file-leads/a")
    run(ledger, [lead("stays@x.com")])
    ledger.finish(departures=False)
    assert ledger.departed == 0 and not ledger.removals


def test_an_opted_out_repeat_removes_the_lead_its_first_row_uploaded() -> None:
    ledger = SyncLedger(campaign={}, suppressed=frozenset())
    items: list[Lead | Reject] = [
        lead("a@x.com"),
        Reject("duplicate", email="a@x.com", duplicate=True, opted_out=True),
    ]
    assert run(ledger, items) == ["a@x.com"]
    ledger.finish(departures=False)
    assert [r.email for r in ledger.removals] == ["a@x.com"] and ledger.opted_out == 1


def test_capped_and_failed_updates_hold_the_cursor_back() -> None:
    campaign = {f"l{i}@x.com": in_campaign(company="old") for i in range(5)}
    ledger = SyncLedger(
        campaign=campaign, suppressed=frozenset(), compared_fields=lambda: {"company"}
    )
    items: list[Lead | Reject] = [
        lead(f"l{i}@x.com", company="new", modified_at=T0 + timedelta(minutes=i)) for i in range(5)
    ]
    run(ledger, items)
    assert ledger.cursor() == T0 + timedelta(minutes=4)
    due = ledger.updates_due(2)
    assert [u.lead.email for u in due] == ["l0@x.com", "l1@x.com"] and ledger.updates_deferred == 3
    assert ledger.cursor() == T0 + timedelta(minutes=2) - timedelta(microseconds=1)
    ledger.record_failed_update(due[0], "boom")
    assert ledger.cursor() == T0 - timedelta(microseconds=1)
    assert ledger.report(
        campaign_id="c", campaign_name="", campaign_status="", lead_store="s"
    ).failed_actions == ["update of l0@x.com: boom"]


@pytest.mark.parametrize(
    ("updates", "campaign", "path"),
    [
        (0, 100, "put"),
        (1, 100, "put"),  # PUT + one search = 2 requests, an upload ~3
        (2, 100, "put"),  # 2 PUTs + 1 listing page = 3, as many as an upload: PUT, no job wait
        (3, 100, "upload"),
        (3, 100_000, "upload"),  # 3 PUTs + 3 searches
        (1_000, 100_000, "upload"),
        (10_001, 100_000, "upload"),
    ],
)
def test_update_path_is_the_cheaper_in_requests(updates: int, campaign: int, path: str) -> None:
    assert choose_update_path(updates, campaign) == path


def test_a_lead_another_store_uploaded_is_never_updated_from_this_one() -> None:
    campaign = {
        "theirs@x.com": in_campaign(company="Theirs", **{SOURCE_TAG_FIELD: "google-sheet-leads/b"}),
        "ours@x.com": in_campaign(company="Old", **{SOURCE_TAG_FIELD: "salesforce-leads/a"}),
        "legacy@x.com": in_campaign(company="Old"),
        "legacy-same@x.com": in_campaign(company="Same"),
    }
    ledger = SyncLedger(
        campaign=campaign,
        suppressed=frozenset(),
        compared_fields=lambda: {"company"},
        source_tag="salesforce-leads/a",
    )
    run(
        ledger,
        [
            lead("theirs@x.com", company="Mine"),
            lead("ours@x.com", company="New"),
            lead("legacy@x.com", company="New"),
            lead("legacy-same@x.com", company="Same"),
        ],
    )
    # Two stores holding one person would otherwise overwrite each other on every run; an
    # untagged lead is claimed by the first store that changes it.
    assert {u.lead.email: u.changes for u in ledger.updates} == {
        "ours@x.com": {"company": "New"},
        "legacy@x.com": {
            "company": "New",
            "custom_fields": {SOURCE_TAG_FIELD: "salesforce-leads/a"},
        },
    }
