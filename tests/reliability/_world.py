"""Shared helpers for the reliability suites: seeding a CRM, reading the end state, checking it.

"Exact end state" is checked from the outside, through the sandboxes' own views (the admin
key's lead list, the Salesforce records, the sheet's cells), never from what a flow reports:

- sync: every valid, unsuppressed source email is in the campaign exactly once; nothing else
  is; leads already there keep their lead id and status (no replace, no re-send).
- write-back: every record a campaign lead came from holds ``advance(before, campaign status)``
  and no record's status ever moved backwards.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.coldsend import ColdSendClient
from connectors.leads import LeadStatus, advance, normalize_email, parse_status, status_rank
from flows.sync import SOURCE_ID_COLUMN
from tests._stack import Stack

SF_STATUS_FIELD = "ColdSend_Status__c"
SHEET_STATUS_COLUMN = "ColdSend Status"
SHEET_HEADER = [
    "Email",
    "First Name",
    "Last Name",
    "Company",
    SHEET_STATUS_COLUMN,
    "ColdSend Opened",
    "ColdSend Replied",
    "ColdSend Unsubscribed",
    "ColdSend Bounced",
]
# Statuses a campaign lead may be given before a write-back (PENDING is where uploads start).
CAMPAIGN_STATUSES = [
    LeadStatus.QUEUED,
    LeadStatus.SENT,
    LeadStatus.OPENED,
    LeadStatus.REPLIED,
    LeadStatus.BOUNCED,
    LeadStatus.UNSUBSCRIBED,
]

FIGURES: list[dict[str, Any]] = []
"""Rows for the end-of-session summary (see conftest.py): one per matrix cell or crash loop."""


def env_int(name: str, default: int) -> int:
    """An integer knob from the environment."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@dataclass(frozen=True, slots=True)
class CampaignLeadView:
    """One campaign lead as the admin key sees it."""

    lead_id: str
    email: str
    status: LeadStatus
    source_id: str | None


@dataclass
class World:
    """A CRM (Salesforce or a sheet) with leads, a campaign, and the blocks naming them."""

    stack: Stack
    crm: str
    campaign_id: str
    store: str
    spreadsheet_id: str = ""
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    # -- ColdSend, seen with the admin key (its own rate-limit pool) -------------------------

    def admin(self) -> ColdSendClient:
        return ColdSendClient(
            self.stack.coldsend.admin_key, base_url=self.stack.coldsend.base_url, max_retries=8
        )

    def campaign_leads(self) -> list[CampaignLeadView]:
        with self.admin() as client:
            return [
                CampaignLeadView(
                    lead_id=lead.lead_id,
                    email=lead.email.strip().lower(),
                    status=lead.status,
                    source_id=str(lead.custom_fields.get(SOURCE_ID_COLUMN) or "") or None,
                )
                for lead in client.iter_leads(self.campaign_id)
            ]

    def set_campaign_statuses(self, statuses: dict[str, LeadStatus]) -> None:
        for email, status in statuses.items():
            self.stack.coldsend.set_lead_status(self.campaign_id, email, str(status))

    def random_statuses(self, share: float = 0.8) -> dict[str, LeadStatus]:
        """A random non-PENDING status for `share` of the campaign's leads."""
        return {
            lead.email: self.rng.choice(CAMPAIGN_STATUSES)
            for lead in self.campaign_leads()
            if self.rng.random() < share
        }

    # -- the CRM -------------------------------------------------------------------------------

    def source_emails(self) -> set[str]:
        """Every valid email the CRM holds, normalized: what a complete sync must upload."""
        out: set[str] = set()
        for raw in self._raw_emails():
            email, _ = normalize_email(raw)
            if email:
                out.add(email)
        return out

    def _raw_emails(self) -> Iterator[object]:
        if self.crm == "salesforce":
            for record in self.stack.salesforce.records():
                yield record.get("Email")
        else:
            rows = self.stack.sheets.values(self.spreadsheet_id)
            for row in rows[1:]:
                yield row[0] if row else None

    def crm_statuses(self) -> dict[str, LeadStatus | None]:
        """Status held per record: Salesforce Id, or ``row <n>`` of the sheet."""
        if self.crm == "salesforce":
            return {
                rid: parse_status(rec.get(SF_STATUS_FIELD))
                for rid, rec in self.stack.salesforce.by_id().items()
            }
        rows = self.stack.sheets.values(self.spreadsheet_id)
        col = rows[0].index(SHEET_STATUS_COLUMN)
        return {
            f"row {n}": parse_status(row[col] if col < len(row) else None)
            for n, row in enumerate(rows[1:], 2)
        }

    def crm_keys(self, leads: list[CampaignLeadView]) -> dict[str, LeadStatus]:
        """The records each campaign lead writes to, with the lead's campaign status."""
        if self.crm == "salesforce":
            return {lead.source_id: lead.status for lead in leads if lead.source_id}
        status = {lead.email: lead.status for lead in leads}
        out: dict[str, LeadStatus] = {}
        for n, row in enumerate(self.stack.sheets.values(self.spreadsheet_id)[1:], 2):
            email, _ = normalize_email(row[0] if row else None)
            if email in status:
                out[f"row {n}"] = status[email]
        return out


def seed_salesforce(stack: Stack, count: int, *, seed: int, bad_every: int = 9) -> None:
    stack.salesforce.seed(count, seed=seed, bad_every=bad_every)


def seed_sheet(stack: Stack, count: int, *, seed: int, bad_every: int = 9) -> str:
    """A sheet of `count` rows, every `bad_every`-th one broken (bad, blank or repeated email)."""
    rows: list[list[Any]] = [list(SHEET_HEADER)]
    for i in range(count):
        email = f"sheet.{seed}.{i}@example.org"
        if i % bad_every == bad_every - 1:
            email = ["not-an-email", "", f"  SHEET.{seed}.{i - 1}@Example.org "][(i // 9) % 3]
        rows.append([email, f"First{i}", f"Last{i}", f"Co {i % 7}", "", "", "", "", ""])
    return stack.sheets.create_spreadsheet("Reliability leads", {"Sheet1": rows})


def make_world(stack: Stack, crm: str, count: int, *, seed: int) -> World:
    campaign_id = stack.new_campaign(f"Reliability {crm} {seed}")
    if crm == "salesforce":
        seed_salesforce(stack, count, seed=seed)
        store = stack.salesforce_store()
        return World(stack, crm, campaign_id, store, rng=random.Random(seed))
    sheet = seed_sheet(stack, count, seed=seed)
    store = stack.sheet_store(sheet)
    return World(stack, crm, campaign_id, store, spreadsheet_id=sheet, rng=random.Random(seed))


# -- checks ----------------------------------------------------------------------------------


@dataclass
class SyncSnapshot:
    """Campaign leads by email before a run: ids and statuses that must survive it."""

    leads: dict[str, CampaignLeadView]

    @classmethod
    def take(cls, world: World) -> SyncSnapshot:
        return cls({lead.email: lead for lead in world.campaign_leads()})


def check_sync_safe(
    world: World, before: SyncSnapshot, expected: set[str]
) -> list[CampaignLeadView]:
    """Invariants that hold after any run, even a failed or killed one.

    Nothing outside `expected` was uploaded, no email is in the campaign twice, and every lead
    that was there before keeps its lead id and status (nothing replaced or reset).
    """
    leads = world.campaign_leads()
    emails = [lead.email for lead in leads]
    dupes = sorted({e for e in emails if emails.count(e) > 1})
    assert not dupes, f"emails in the campaign more than once: {dupes[:5]}"
    extra = set(emails) - expected
    assert not extra, f"uploaded emails that should not be: {sorted(extra)[:5]}"
    now = {lead.email: lead for lead in leads}
    for email, old in before.leads.items():
        new = now.get(email)
        assert new is not None, f"{email} disappeared from the campaign"
        assert new.lead_id == old.lead_id, f"{email} was re-created (lead id changed)"
        assert new.status == old.status, f"{email} went from {old.status} to {new.status}"
    return leads


def check_sync_exact(world: World, before: SyncSnapshot, expected: set[str]) -> int:
    """After a completed run: exactly the expected emails, each once. Returns the lead count."""
    leads = check_sync_safe(world, before, expected)
    missing = expected - {lead.email for lead in leads}
    assert not missing, (
        f"{len(missing)} valid leads missing from the campaign: {sorted(missing)[:5]}"
    )
    return len(leads)


def expected_statuses(
    world: World, before: dict[str, LeadStatus | None]
) -> dict[str, LeadStatus | None]:
    """What each CRM record must hold after a complete write-back from `before`."""
    want = dict(before)
    for key, status in world.crm_keys(world.campaign_leads()).items():
        if key in want:
            want[key] = advance(before[key], status)
    return want


def check_never_backwards(
    before: dict[str, LeadStatus | None], after: dict[str, LeadStatus | None]
) -> int:
    """No record's status moved backwards (or left a final status). Returns how many moved."""
    moved = 0
    for key, old in before.items():
        new = after.get(key)
        if old is None:
            moved += new is not None
            continue
        assert new is not None, f"record {key}: status {old} was cleared"
        assert advance(old, new) == new or new == old, (
            f"record {key}: status moved backwards from {old} to {new}"
        )
        assert status_rank(new) >= status_rank(old), f"record {key}: {old} -> {new}"
        moved += new != old
    return moved


def check_write_back_exact(
    world: World, before: dict[str, LeadStatus | None], want: dict[str, LeadStatus | None]
) -> int:
    """After a completed write-back: every record exactly as expected. Returns records changed."""
    after = world.crm_statuses()
    moved = check_never_backwards(before, after)
    wrong = {k: (after.get(k), v) for k, v in want.items() if after.get(k) != v}
    assert not wrong, (
        f"{len(wrong)} records hold the wrong status (have, want): {list(wrong.items())[:5]}"
    )
    return moved


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
