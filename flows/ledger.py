"""The sync's books: each source row classified against the campaign, the plan, and the report.

Plain Python (no Prefect, no HTTP) so every accounting rule is testable on its own. The sync
flow feeds the source through `SyncLedger.filter`, which yields the leads to upload and plans
everything else; the flow then carries out the plan and records each outcome here; `report`
is the one place the `SyncReport` is made.

Counts (each row read lands in exactly one):

    read = uploaded + already_in_campaign + duplicate_in_source + rejected + suppressed

Actions on leads already counted: ``updated`` (changed fields sent to ColdSend), ``deleted``
(removed from the campaign), ``opted_out`` (suppressed because the store says so),
``departed`` (in the campaign, no longer in the store), ``could_not_remove`` (an opted-out or
departed lead ColdSend will not delete, named by email with the reason).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field

from connectors.coldsend import UploadResult, lookup_plan
from connectors.leads import FINAL_STATUSES, Lead, LeadStatus, Reject

__all__ = [
    "COULD_NOT_REMOVE_SHOWN",
    "LEFT_AFTER_CONTACT",
    "LEFT_THE_STORE",
    "OPTED_OUT_AFTER_CONTACT",
    "SOURCE_TAG_FIELD",
    "UPLOAD_REQUESTS_PER_PART",
    "CampaignLead",
    "FieldChange",
    "NamedLead",
    "PlannedRemoval",
    "PlannedUpdate",
    "SyncLedger",
    "SyncReport",
    "choose_update_path",
]

# The custom field naming the lead store a lead was uploaded from ("salesforce-leads/acme"):
# departures are judged only for leads this store uploaded, so a campaign fed by several
# stores never loses one store's leads because another store lacks them.
SOURCE_TAG_FIELD = "crm_source"
OPTED_OUT_AFTER_CONTACT = "opted out after contact"
LEFT_AFTER_CONTACT = "left the store after contact"
LEFT_THE_STORE = "left the store"
# An upload with duplicate_action=update costs the upload and, measured on the sandbox and
# by the bench, about two job reads: one part updates up to 10,000 leads for ~3 requests.
UPLOAD_REQUESTS_PER_PART = 3
CHANGES_SAMPLE = 20
COULD_NOT_REMOVE_SHOWN = 1_000
_EMPTY: Mapping[str, str] = MappingProxyType({})
_STANDARD = ("first_name", "last_name", "company")


class CampaignLead(NamedTuple):
    """A lead as the campaign's export shows it, reduced to what the sync compares.

    Attributes:
        status: Its ColdSend status.
        first_name / last_name / company: As stored ("" when empty).
        custom_fields: Only the keys the sync compares (the store's mapped custom fields and
            `SOURCE_TAG_FIELD`), values as text.
    """

    status: LeadStatus
    first_name: str
    last_name: str
    company: str
    custom_fields: Mapping[str, str] = _EMPTY


class FieldChange(BaseModel):
    """One field of one lead, as the campaign holds it and as the store says it should be."""

    email: str
    field: str
    old: str
    new: str


class NamedLead(BaseModel):
    """A lead named in the report, with why (e.g. "opted out after contact")."""

    email: str
    reason: str


@dataclass(slots=True)
class PlannedUpdate:
    """A lead already in the campaign whose mapped fields differ from the store.

    Attributes:
        lead: The lead as the store has it now.
        changes: Only the changed fields: standard ones to their new text, and
            ``custom_fields`` as a merge patch (None removes a key).
    """

    lead: Lead
    changes: dict[str, Any]

    @property
    def by_upload(self) -> bool:
        """Whether an upload with duplicate_action=update reaches the same end state: only
        when every change sets a non-empty value (an empty CSV cell changes nothing)."""
        for name, value in self.changes.items():
            if name == "custom_fields":
                if any(v is None or v == "" for v in value.values()):
                    return False
            elif value == "":
                return False
        return True


@dataclass(frozen=True, slots=True)
class PlannedRemoval:
    """A PENDING lead to delete from the campaign, and why (opted out, left the store)."""

    email: str
    reason: str


def choose_update_path(by_upload: int, campaign_leads: int) -> Literal["put", "upload"]:
    """The cheaper way, in ColdSend requests, to apply `by_upload` updates an upload can carry.

    PUT costs one request per lead plus finding the lead ids (the export has none): the
    cheaper of one search per lead and listing the campaign 100 leads a page. An upload with
    duplicate_action=update costs `UPLOAD_REQUESTS_PER_PART` per 10,000 leads and needs no
    ids. So PUT wins only for one lead or two.
    """
    if by_upload <= 0:
        return "put"
    put = by_upload + lookup_plan(by_upload, campaign_leads).requests
    upload = math.ceil(by_upload / 10_000) * UPLOAD_REQUESTS_PER_PART
    return "upload" if upload < put else "put"


class SyncReport(BaseModel):
    """What a sync did; ``read == uploaded + already_in_campaign + duplicate_in_source +
    rejected + suppressed`` when complete (a dry run counts ``to_upload`` for ``uploaded``).

    A dry run changes nothing: ``uploaded``, ``updated`` and ``deleted`` are 0 and the plan
    is in ``to_upload``, ``to_update``, ``to_delete``, ``could_not_remove`` and
    ``changes_sample``.
    """

    campaign_id: str
    campaign_name: str = ""
    campaign_status: str = ""
    lead_store: str
    dry_run: bool = False
    read: int = 0
    uploaded: int = 0
    already_in_campaign: int = 0
    duplicate_in_source: int = 0
    rejected: int = 0
    suppressed: int = 0
    unaccounted: int = 0
    updated: int = 0
    deleted: int = 0
    opted_out: int = 0
    departed: int = 0
    could_not_remove: list[NamedLead] = Field(default_factory=list)
    to_upload: int = 0
    to_update: int = 0
    to_delete: int = 0
    updates_deferred: int = 0
    update_path: Literal["", "put", "upload"] = ""
    changes_sample: list[FieldChange] = Field(default_factory=list)
    departures_checked: bool = False
    parts: int = 0
    job_ids: list[str] = Field(default_factory=list)
    failed_parts: list[str] = Field(default_factory=list)
    failed_actions: list[str] = Field(default_factory=list)
    cursor: str | None = None
    rejects_csv: str | None = None
    columns: dict[str, str] = Field(
        default_factory=dict, description="Lead field -> the source column that fed it."
    )
    unused_columns: list[str] = Field(
        default_factory=list, description="Source columns that fed no lead field."
    )

    @property
    def balanced(self) -> bool:
        return self.unaccounted == 0

    def counts(self) -> dict[str, int]:
        """The counts and actions by name, as the CLI, artifacts and events show them."""
        return {
            "read": self.read,
            "uploaded": self.uploaded,
            "already_in_campaign": self.already_in_campaign,
            "duplicate_in_source": self.duplicate_in_source,
            "rejected": self.rejected,
            "suppressed": self.suppressed,
            "unaccounted": self.unaccounted,
            "updated": self.updated,
            "deleted": self.deleted,
            "opted_out": self.opted_out,
            "departed": self.departed,
            "could_not_remove": len(self.could_not_remove),
        }


class SyncLedger:
    """Classifies the lead stream against the campaign, plans the actions and keeps the books.

    Args:
        campaign: The campaign's leads by normalised email (from its one export).
        suppressed: Emails never to upload (unsubscribed or bounced in the campaign, the
            caller's list).
        suppressed_elsewhere: Called once, when the first lead not already in the campaign
            comes up, for the emails unsubscribed or bounced in other campaigns; a run with
            nothing new to upload never calls it (it costs requests).
        store_label: The store as people know it ("Salesforce Lead"), for reasons.
        compared_fields: The lead fields the store maps (``first_name``, ``company``,
            ``custom:<name>``...), asked once the first lead arrives (the source resolves its
            mapping when the read starts); None compares none (no updates planned).
        source_tag: This store's `SOURCE_TAG_FIELD` value. A lead another store uploaded (its
            tag names that store) is never updated from this one, so two stores holding the
            same person do not undo each other's values run after run; a lead without a tag
            gets this one with its first update.
        adopt_tags: Tag every untagged lead this store holds, changed or not (departures are
            judged only for tagged leads).
        dry_run: Plan only.
    """

    def __init__(
        self,
        *,
        campaign: Mapping[str, CampaignLead],
        suppressed: frozenset[str],
        suppressed_elsewhere: Callable[[], frozenset[str]] | None = None,
        store_label: str = "the lead store",
        compared_fields: Callable[[], Collection[str]] | None = None,
        source_tag: str | None = None,
        adopt_tags: bool = False,
        dry_run: bool = False,
    ) -> None:
        self.campaign = campaign
        self.suppressed_emails = suppressed
        self._elsewhere = suppressed_elsewhere
        self._opted_out_reason = f"opted out in {store_label}"
        self._compared = compared_fields
        self.source_tag = source_tag
        self._adopt_tags = adopt_tags
        self.dry_run = dry_run
        self.read = 0
        self.suppressed = 0
        self.already_in_campaign = 0
        self.duplicate_in_source = 0
        self.opted_out = 0
        self.departed = 0
        self.to_upload = 0
        self.uploaded = 0
        self.updated = 0
        self.deleted = 0
        self.parts = 0
        self.job_ids: list[str] = []
        self.failed_parts: list[str] = []
        self.failed_actions: list[str] = []
        self.rejects: list[dict[str, Any]] = []
        self.duplicates: list[dict[str, Any]] = []
        self.updates: list[PlannedUpdate] = []
        self.removals: list[PlannedRemoval] = []
        self.could_not_remove: list[NamedLead] = []
        self.updates_deferred = 0
        self.update_path: Literal["", "put", "upload"] = ""
        self.departures_checked = False
        self.high_water: datetime | None = None
        # Leads whose change this run did not apply (capped or failed): the cursor must not
        # pass them, or an incremental read would never bring them back.
        self._held_back: datetime | None = None
        self._seen: set[str] = set()
        self._opted_out_repeats: set[str] = set()
        self._uploaded_emails: set[str] = set()

    # -- the stream ------------------------------------------------------------------------------

    def reject_row(
        self, *, row: int | None, record: str | None, email: str, reason: str, stage: str
    ) -> None:
        self.rejects.append(
            {"row": row, "record_id": record, "email": email, "reason": reason, "stage": stage}
        )

    def filter(self, items: Iterator[Lead | Reject]) -> Iterator[Lead]:
        """Yield only leads to upload; count, and plan the actions for, everything else.

        Order of the rules: a row that is not a valid lead is rejected (a repeat of an email
        already read is a duplicate in the source); a lead opted out in the store is
        suppressed, and removed from the campaign when there (PENDING) or named (contacted);
        one unsubscribed or bounced in the campaign, or on the caller's list, is suppressed;
        one already in the campaign is compared and updated when its mapped fields changed;
        one unsubscribed or bounced in another campaign is suppressed; the rest are uploaded.
        """
        # Locals instead of attribute reads in the per-lead loop: part of what holds up the
        # bench figure "client CPU <= 15 us/lead (marginal) for sync" (python -m bench).
        campaign = self.campaign
        suppressed = self.suppressed_emails
        seen = self._seen
        elsewhere: frozenset[str] | None = None if self._elsewhere else frozenset()
        compare: _Comparer | None = None
        for item in items:
            self.read += 1
            if isinstance(item, Reject):
                self._reject(item)
                continue
            modified = item.modified_at
            if modified is not None and (self.high_water is None or modified > self.high_water):
                self.high_water = modified
            email = item.email
            current = campaign.get(email)
            if current is not None:
                seen.add(email)
            if item.opted_out:
                self.suppressed += 1
                self.opted_out += 1
                if current is not None:
                    self._remove(email, current.status, self._opted_out_reason)
                continue
            if email in suppressed:
                self.suppressed += 1
                continue
            if current is not None:
                self.already_in_campaign += 1
                if compare is None:
                    compare = _Comparer(
                        self._compared() if self._compared else (),
                        self.source_tag,
                        adopt=self._adopt_tags,
                    )
                changes = compare.changes(item, current)
                if changes:
                    self.updates.append(PlannedUpdate(item, changes))
                continue
            if elsewhere is None:
                assert self._elsewhere is not None
                elsewhere = self._elsewhere()
            if email in elsewhere:
                self.suppressed += 1
            else:
                self.to_upload += 1
                self._uploaded_emails.add(email)
                yield item

    def _reject(self, item: Reject) -> None:
        row = {
            "row": item.row_number,
            "record_id": item.source_id,
            "email": item.email,
            "reason": item.reason,
            "stage": "source",
        }
        if item.duplicate:
            self.duplicate_in_source += 1
            row["stage"] = "duplicate in source"
            self.duplicates.append(row)
            if item.opted_out and item.email:
                # The first row of this email said nothing, a repeat says "opted out": the
                # person asked not to be emailed, whichever row came first.
                self._opted_out_repeats.add(item.email)
        else:
            self.rejects.append(row)

    def _remove(self, email: str, status: LeadStatus, reason: str) -> None:
        if status == LeadStatus.PENDING:
            self.removals.append(PlannedRemoval(email, reason))
        elif status not in FINAL_STATUSES:
            after = OPTED_OUT_AFTER_CONTACT if reason != LEFT_THE_STORE else LEFT_AFTER_CONTACT
            self.could_not_remove.append(NamedLead(email=email, reason=after))
        # A final status (UNSUBSCRIBED, BOUNCED, FAILED) is never emailed again: nothing to do,
        # and nothing to report. Our own write-back sets the store's opt-out flag for leads
        # that unsubscribed in ColdSend; reading it back lands here.

    def finish(self, *, departures: bool) -> None:
        """After the stream: opted-out repeats, then departures when the read was full.

        Args:
            departures: Judge leads of the campaign this store uploaded (tagged with its
                `SOURCE_TAG_FIELD`) and the read no longer returned. Needs a full read.
        """
        for email in sorted(self._opted_out_repeats):
            current = self.campaign.get(email)
            if email in self._uploaded_emails:
                self.opted_out += 1
                self.removals.append(PlannedRemoval(email, self._opted_out_reason))
            elif current is not None and not any(r.email == email for r in self.removals):
                self.opted_out += 1
                self.updates = [u for u in self.updates if u.lead.email != email]
                self._remove(email, current.status, self._opted_out_reason)
        self.departures_checked = departures and self.source_tag is not None
        if not self.departures_checked:
            return
        tag, seen = self.source_tag, self._seen
        for email, current in self.campaign.items():
            if email in seen or current.custom_fields.get(SOURCE_TAG_FIELD) != tag:
                continue
            self.departed += 1
            self._remove(email, current.status, LEFT_THE_STORE)

    # -- the plan --------------------------------------------------------------------------------

    def updates_due(self, cap: int) -> list[PlannedUpdate]:
        """The updates to apply this run, at most `cap`; the rest are left for the next run."""
        due, rest = self.updates[:cap], self.updates[cap:]
        self.updates_deferred = len(rest)
        for update in rest:
            if update.lead.modified_at is not None:
                self.hold_back(update.lead.modified_at)
        return due

    def hold_back(self, modified_at: datetime) -> None:
        """Keep the cursor before `modified_at`: that lead's change is not applied yet."""
        if self._held_back is None or modified_at < self._held_back:
            self._held_back = modified_at

    def cursor(self) -> datetime | None:
        """Where the next incremental read may start: the newest record read, unless a change
        read this run is still to apply (capped updates, deletions): then just before it."""
        if self._held_back is not None:
            before = self._held_back - timedelta(microseconds=1)
            return before if self.high_water is None else min(self.high_water, before)
        return self.high_water

    # -- outcomes --------------------------------------------------------------------------------

    def record_part(self, job_id: str) -> None:
        self.parts += 1
        self.job_ids.append(job_id)

    def record_failed_part(self, text: str) -> None:
        self.failed_parts.append(text)

    def record_upload(self, result: UploadResult) -> None:
        """One finished upload job: imported rows, rows it found already there, rejected rows."""
        self.uploaded += result.success
        self.already_in_campaign += result.duplicate
        for err in result.row_errors:
            self.reject_row(
                row=err.row_number,
                record=err.source_id,
                email=err.email,
                reason=err.error,
                stage="upload",
            )
        for _ in range(result.error - len(result.row_errors)):
            self.reject_row(
                row=None,
                record=None,
                email="",
                reason=f"rejected by ColdSend job {result.job_id} without row details",
                stage="upload",
            )

    def record_updated(self, count: int) -> None:
        self.updated += count

    def record_failed_update(self, update: PlannedUpdate, why: str) -> None:
        self.failed_actions.append(f"update of {update.lead.email}: {why}")
        if update.lead.modified_at is not None:
            self.hold_back(update.lead.modified_at)

    def record_deleted(self, count: int) -> None:
        self.deleted += count

    def record_not_deleted(self, removal: PlannedRemoval, why: str) -> None:
        """A PENDING lead ColdSend did not delete: contacted meanwhile, or gone already."""
        if why.lower().startswith("lead not found"):
            return  # already gone: the end state wanted
        after = LEFT_AFTER_CONTACT if removal.reason == LEFT_THE_STORE else OPTED_OUT_AFTER_CONTACT
        self.could_not_remove.append(NamedLead(email=removal.email, reason=f"{after} ({why})"))

    def record_failed_action(self, text: str) -> None:
        self.failed_actions.append(text)

    # -- the report ------------------------------------------------------------------------------

    def report(
        self, *, campaign_id: str, campaign_name: str, campaign_status: str, lead_store: str
    ) -> SyncReport:
        """The one `SyncReport` of this run, from the books alone."""
        uploaded = self.uploaded
        counted = self.to_upload if self.dry_run else uploaded
        rejected = len(self.rejects)
        return SyncReport(
            campaign_id=campaign_id,
            campaign_name=campaign_name,
            campaign_status=campaign_status,
            lead_store=lead_store,
            dry_run=self.dry_run,
            read=self.read,
            uploaded=uploaded,
            already_in_campaign=self.already_in_campaign,
            duplicate_in_source=self.duplicate_in_source,
            rejected=rejected,
            suppressed=self.suppressed,
            unaccounted=self.read
            - (
                counted
                + self.already_in_campaign
                + self.duplicate_in_source
                + rejected
                + self.suppressed
            ),
            updated=self.updated,
            deleted=self.deleted,
            opted_out=self.opted_out,
            departed=self.departed,
            could_not_remove=list(self.could_not_remove),
            to_upload=self.to_upload,
            to_update=len(self.updates),
            to_delete=len(self.removals),
            updates_deferred=self.updates_deferred,
            update_path=self.update_path,
            changes_sample=self.changes_sample(),
            departures_checked=self.departures_checked,
            parts=self.parts,
            job_ids=list(self.job_ids),
            failed_parts=list(self.failed_parts),
            failed_actions=list(self.failed_actions),
        )

    def changes_sample(self, limit: int = CHANGES_SAMPLE) -> list[FieldChange]:
        """The first field changes planned, with the values before and after."""
        out: list[FieldChange] = []
        for update in self.updates:
            current = self.campaign[update.lead.email]
            for name, value in update.changes.items():
                if name == "custom_fields":
                    for key, new in value.items():
                        old = current.custom_fields.get(key, "")
                        out.append(
                            FieldChange(email=update.lead.email, field=key, old=old, new=new or "")
                        )
                else:
                    out.append(
                        FieldChange(
                            email=update.lead.email,
                            field=name,
                            old=getattr(current, name),
                            new=value,
                        )
                    )
                if len(out) >= limit:
                    return out
        return out

    def rejected_rows(self) -> Sequence[dict[str, Any]]:
        """Rows not used, for the rejects table and CSV: rejected ones, then source repeats."""
        return [*self.rejects, *self.duplicates]


class _Comparer:
    """The fields of a lead that differ from the campaign's copy, as a PUT body would carry."""

    __slots__ = ("_adopt", "_custom", "_standard", "_tag")

    def __init__(self, compared: Collection[str], tag: str | None, *, adopt: bool) -> None:
        self._standard = tuple(name for name in _STANDARD if name in compared)
        self._custom = tuple(
            name.removeprefix("custom:") for name in compared if name.startswith("custom:")
        )
        self._tag = tag
        self._adopt = adopt

    def changes(self, lead: Lead, current: CampaignLead) -> dict[str, Any] | None:
        tag = self._tag
        owner = current.custom_fields.get(SOURCE_TAG_FIELD) if current.custom_fields else None
        if tag is not None and owner is not None and owner != tag:
            return None  # another store's lead: that store keeps it up to date
        changes: dict[str, Any] | None = None
        for name in self._standard:
            new = getattr(lead, name)
            if new != getattr(current, name):
                if changes is None:
                    changes = {}
                changes[name] = new
        patch: dict[str, str | None] | None = None
        if self._custom:
            have, values = current.custom_fields, lead.custom_fields
            for name in self._custom:
                new = values.get(name, "")
                if new != have.get(name, ""):
                    if patch is None:
                        patch = {}
                    patch[name] = new or None
        if tag is not None and owner is None and (changes or patch or self._adopt):
            if patch is None:
                patch = {}
            patch[SOURCE_TAG_FIELD] = tag
        if patch:
            if changes is None:
                changes = {}
            changes["custom_fields"] = patch
        return changes
