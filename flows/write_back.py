"""The write-back flow: one export, statuses only forward, write only what changed in the CRM."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import cast

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field

from blocks.coldsend import ColdSendCredentials
from blocks.leads import LeadStore
from connectors.leads import LeadStatus, StatusUpdate, WriteResult
from flows._common import lead_store_label, load_coldsend, load_lead_store, scopes_checked
from flows.budgets import budgeted_client
from flows.events import STATUSES_WRITTEN, emit_campaign_event
from flows.naming import (
    artifact_key,
    campaign_label,
    known_campaign_name,
    known_lead_stores,
    label_run,
    run_tags,
    write_back_run_name,
)
from flows.replies import ReplyLogReport, log_campaign_replies, replies_section
from flows.reports import markdown_table, publish_rejects, publish_summary
from flows.sync import SOURCE_ID_COLUMN
from flows.tasks import retry_unless_client_error, write_statuses_to_store

__all__ = [
    "ExportedStatuses",
    "WriteBackIncomplete",
    "WriteBackReport",
    "export_campaign_statuses",
    "write_back_statuses",
]


class WriteBackIncomplete(RuntimeError):
    """Some records could not be written; the message and the rejects artifact name them."""


class WriteBackReport(BaseModel):
    """What a write-back did."""

    campaign_id: str
    lead_store: str
    exported: int = 0
    by_status: dict[str, int] = Field(default_factory=dict)
    written: int = 0
    unchanged: int = 0
    held_back: int = 0
    not_found: int = 0
    failed: int = 0
    store_requests: int = 0
    replies: ReplyLogReport | None = None


class ExportedStatuses:
    """The statuses of one export, as the export task returns them; iterate it for the
    `StatusUpdate` values (made as they are iterated).

    A plain container, not a list, on purpose: Prefect links a task's result to its state by
    walking a list element by element (about 8 us per lead at 50,000 leads), but does not look
    inside an object it does not know. The fields are kept as three parallel lists rather
    than one object per lead: no per-lead object lives through the write, which saves memory
    and the garbage collector's passes over 50,000 long-lived objects.
    """

    __slots__ = ("counts", "emails", "source_ids", "statuses")

    def __init__(self) -> None:
        self.emails: list[str] = []
        self.statuses: list[LeadStatus] = []
        self.source_ids: list[str | None] = []
        self.counts: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.emails)

    def __iter__(self) -> Iterator[StatusUpdate]:
        return map(StatusUpdate, self.emails, self.statuses, self.source_ids)

    def __repr__(self) -> str:
        return f"ExportedStatuses({len(self.emails)} updates)"


@task(
    name="Export campaign statuses",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_client_error,
)
def export_campaign_statuses(
    credentials: ColdSendCredentials, campaign_id: str
) -> ExportedStatuses:
    """One export call: the status of every lead, with the CRM record id the sync stored."""
    out = ExportedStatuses()
    add_email, add_status, add_id = out.emails.append, out.statuses.append, out.source_ids.append
    counts = out.counts
    column = SOURCE_ID_COLUMN
    with (
        scopes_checked("write-back"),
        budgeted_client(credentials, 1) as client,
        client.export_leads(campaign_id) as rows,
    ):
        for row in rows:
            custom = row.custom_fields
            source_id = custom.get(column) if custom else None
            add_email(row.email.strip().lower())
            add_status(row.status)
            add_id((source_id if type(source_id) is str else str(source_id or "")) or None)
            counts[row.status] += 1
    return out


@flow(name="write-back-campaign-statuses", flow_run_name=write_back_run_name)
def write_back_statuses(
    campaign_id: str,
    lead_store: str | LeadStore,
    coldsend: str | None = None,
    log_replies: bool = True,
    log_sends: bool = False,
    max_reply_requests: int = 200,
) -> WriteBackReport:
    """Write each lead's campaign status back onto the record it came from.

    One export call reads every status; the lead store's sink reads the values the CRM holds
    now, never moves a status backwards (a late SENT never overwrites REPLIED) and writes only
    the records that change, in batches.

    The export (scope leads:read, the only one this flow needs) comes before the lead store
    is read, so a key without it fails before anything is read or written.

    Args:
        campaign_id: The campaign whose results to write back.
        lead_store: The saved lead store the leads came from (``"<block-type>/<name>"``), or
            the lead store block itself (unsaved: the CLI's ``--csv``, a sync definition).
        coldsend: A ColdSend Credentials block name.
        log_replies: Log each new reply on the lead's record, exactly once (a Salesforce
            Task; a sheet's or CSV file's "Last reply" columns), see `flows.replies`. Skipped
            at no cost when the export shows no REPLIED lead.
        log_sends: Also log each email sent to a replied lead (costs CRM API calls).
        max_reply_requests: ColdSend requests the reply reading may use per run (one per
            100 replied leads listed, one per lead read); the rest waits for the next runs.

    Returns:
        A `WriteBackReport`: counts by status, records written, unchanged, held back, and
        what the reply logging did.

    Raises:
        WriteBackIncomplete: Some records or replies could not be written (named in the
            artifacts).
        MissingScopes: The key lacks leads:read.

    Example:
        ```python
        from flows.write_back import write_back_statuses

        report = write_back_statuses(campaign_id="...", lead_store="salesforce-leads/acme")
        print(report.written, "records updated")
        ```
    """
    logger = get_run_logger()
    # The campaign's name as the last sync read it: the export does not carry it, and asking
    # ColdSend for it would cost a request.
    campaign = campaign_label(campaign_id, known_campaign_name(campaign_id))
    credentials = load_coldsend(coldsend)
    store = load_lead_store(lead_store)
    lead_store = lead_store_label(lead_store)
    label_run(None, run_tags(lead_store=lead_store, campaign=campaign))
    exported = export_campaign_statuses(credentials, campaign_id)
    counts = Counter({str(status): n for status, n in exported.counts.items()})
    # quote(): Prefect need not walk every update looking for futures (~40 us per lead; bench
    # figure it holds up: "client CPU <= 15 us/lead (marginal) for write-back"). The
    # sink only iterates its argument, so the export's container is passed as is.
    updates = cast(list[StatusUpdate], exported)
    result: WriteResult = write_statuses_to_store(store, cast(list[StatusUpdate], quote(updates)))
    del exported, updates  # the sink is done with them: free them before the report
    report = WriteBackReport(
        campaign_id=campaign_id,
        lead_store=lead_store,
        exported=sum(counts.values()),
        by_status=dict(sorted(counts.items())),
        written=result.written,
        unchanged=result.unchanged,
        held_back=result.held_back,
        not_found=len(result.not_found),
        failed=len(result.failures),
        store_requests=result.requests,
    )
    reply_error: Exception | None = None
    if log_replies and counts.get(str(LeadStatus.REPLIED), 0):
        try:
            report.replies = log_campaign_replies(
                credentials,
                store,
                lead_store,
                campaign_id,
                include_sends=log_sends,
                max_requests=max_reply_requests,
                campaign=campaign,
            )
        except Exception as exc:  # the statuses are written: report them, then fail
            reply_error = exc
    _publish_write_back_summary(report, store.describe(), campaign)
    if result.failures:
        publish_rejects(
            [{"record": f.key, "reason": f.reason} for f in result.failures],
            key_prefix=artifact_key("write-back", campaign, lead_store),
            title=f"Write-back {campaign} -> {lead_store}: records not written",
        )
    replies = report.replies
    emit_campaign_event(
        STATUSES_WRITTEN,
        campaign_id,
        name=campaign,
        lead_store=lead_store,
        payload={
            "not_in_store": report.not_found,
            "written": report.written,
            "unchanged": report.unchanged,
            "failed": report.failed,
            "by_status": report.by_status,
            "replies_logged": replies.logged if replies else 0,
            "replies_without_record": replies.no_record if replies else 0,
            "replies_deferred": replies.deferred if replies else 0,
        },
    )
    if reply_error is not None:
        raise reply_error
    if replies is not None and replies.failed and not result.failures:
        first = "; ".join(replies.failures[:5])
        raise WriteBackIncomplete(
            f"{replies.failed} replies could not be logged (first: {first}). Run the "
            "write-back again once the cause is fixed; replies already logged are left alone."
        )
    if result.failures:
        first = "; ".join(f"{f.key}: {f.reason}" for f in result.failures[:5])
        raise WriteBackIncomplete(
            f"{len(result.failures)} of {report.exported} records could not be written "
            f"(first: {first}). Run the write-back again once the cause is fixed; records "
            "already written are left alone."
        )
    logger.info(
        "Wrote %d changed records (%d up to date, %d held a later status; %d leads of the "
        "campaign are not in this store: other stores' leads)",
        report.written,
        report.unchanged,
        report.held_back,
        report.not_found,
    )
    return report


def _publish_write_back_summary(report: WriteBackReport, source: str, campaign: str) -> None:
    """The write-back's summary: the outcome in one sentence, then two headed tables."""
    others = [s for s in known_lead_stores(report.campaign_id) if s != report.lead_store]
    if report.not_found:
        elsewhere = (
            f"they belong to the campaign's other lead store(s), {', '.join(others)}, or left "
            "this one"
            if others
            else "they came from another lead store syncing into this campaign, or left this one"
        )
        not_found = (
            f"{report.not_found:,} lead(s) of the campaign are not in {report.lead_store}: "
            f"{elsewhere}; nothing was written for them."
        )
    else:
        not_found = ""
    if report.failed:
        outcome = (
            f"Incomplete: {report.failed:,} record(s) of {report.lead_store} could not be "
            f"written ({report.written:,} written); see the records not written below."
        )
    elif report.written:
        outcome = (
            f"Wrote {report.written:,} changed status(es) from {campaign} to "
            f"{report.lead_store}; {report.unchanged:,} already up to date."
        )
    else:
        outcome = (
            f"Nothing to write: {report.lead_store} already holds the statuses of {campaign} "
            f"({report.unchanged:,} record(s) up to date)."
        )
    statuses = [(status, n) for status, n in report.by_status.items()]
    body = f"Lead store: {source}\n\n"
    body += f"## Campaign leads by status ({report.exported:,} exported)\n\n"
    body += markdown_table(("status", "leads"), statuses or [("(none)", 0)])
    body += f"\n\n## Records in {report.lead_store}\n\n"
    body += markdown_table(
        ("records", "count"),
        [
            ("written (changed)", report.written),
            ("already up to date", report.unchanged),
            ("kept a later status already in the CRM", report.held_back),
            ("not in this lead store (other stores' leads)", report.not_found),
            ("failed", report.failed),
        ],
    )
    if not_found:
        body += f"\n\n{not_found}\n"
    if report.replies is not None:
        body += "\n\n" + replies_section(report.replies)
    publish_summary(
        key=artifact_key("write-back", campaign, report.lead_store, "summary"),
        title=f"Write-back: {campaign} -> {report.lead_store}",
        body=body,
        outcome=outcome,
    )
