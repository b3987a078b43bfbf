"""The write-back flow: one export, statuses only forward, write only what changed in the CRM."""

from __future__ import annotations

from collections import Counter
from typing import cast

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field

from blocks.coldsend import ColdSendCredentials
from connectors.leads import StatusUpdate, WriteResult
from flows._common import load_coldsend, load_lead_store, scopes_checked
from flows.events import STATUSES_WRITTEN, emit_campaign_event
from flows.reports import markdown_table, publish_rejects, publish_summary
from flows.sync import SOURCE_ID_COLUMN
from flows.tasks import retry_unless_client_error, write_statuses_to_store

__all__ = [
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


@task(
    name="Export campaign statuses",
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_client_error,
)
def export_campaign_statuses(
    credentials: ColdSendCredentials, campaign_id: str
) -> list[StatusUpdate]:
    """One export call: the status of every lead, with the CRM record id the sync stored."""
    with (
        scopes_checked("write-back"),
        credentials.get_client() as client,
        client.export_leads(campaign_id) as rows,
    ):
        return [
            StatusUpdate(
                email=row.email.strip().lower(),
                status=row.status,
                source_id=str(row.custom_fields.get(SOURCE_ID_COLUMN) or "") or None,
            )
            for row in rows
        ]


@flow(name="write-back-campaign-statuses")
def write_back_statuses(
    campaign_id: str, lead_store: str, coldsend: str | None = None
) -> WriteBackReport:
    """Write each lead's campaign status back onto the record it came from.

    One export call reads every status; the lead store's sink reads the values the CRM holds
    now, never moves a status backwards (a late SENT never overwrites REPLIED) and writes only
    the records that change, in batches.

    The export (scope leads:read, the only one this flow needs) comes before the lead store
    is read, so a key without it fails before anything is read or written.

    Args:
        campaign_id: The campaign whose results to write back.
        lead_store: The saved lead store the leads came from (``"<block-type>/<name>"``).
        coldsend: A ColdSend Credentials block name.

    Returns:
        A `WriteBackReport`: counts by status, records written, unchanged, held back.

    Raises:
        WriteBackIncomplete: Some records could not be written (named in the artifacts).
        MissingScopes: The key lacks leads:read.

    Example:
        ```python
        from flows.write_back import write_back_statuses

        report = write_back_statuses(campaign_id="...", lead_store="salesforce-leads/acme")
        print(report.written, "records updated")
        ```
    """
    logger = get_run_logger()
    credentials = load_coldsend(coldsend)
    store = load_lead_store(lead_store)
    updates = export_campaign_statuses(credentials, campaign_id)
    counts = Counter(str(u.status) for u in updates)
    # quote(): Prefect need not walk every update looking for futures (~40 us per lead).
    result: WriteResult = write_statuses_to_store(store, cast(list[StatusUpdate], quote(updates)))
    report = WriteBackReport(
        campaign_id=campaign_id,
        lead_store=lead_store,
        exported=len(updates),
        by_status=dict(sorted(counts.items())),
        written=result.written,
        unchanged=result.unchanged,
        held_back=result.held_back,
        not_found=len(result.not_found),
        failed=len(result.failures),
        store_requests=result.requests,
    )
    rows = [(status, n) for status, n in report.by_status.items()]
    body = f"Lead store: {store.describe()}\n\n" + markdown_table(("status", "leads"), rows)
    body += "\n\n" + markdown_table(
        ("records", "count"),
        [
            ("written (changed)", report.written),
            ("already up to date", report.unchanged),
            ("kept a later status already in the CRM", report.held_back),
            ("not found in the lead store", report.not_found),
            ("failed", report.failed),
        ],
    )
    publish_summary(key=f"write-back-{campaign_id}", title="Status write-back", body=body)
    if result.failures:
        publish_rejects(
            [{"record": f.key, "reason": f.reason} for f in result.failures],
            key_prefix=f"write-back-{campaign_id}",
            title="Status write-back failures",
        )
    emit_campaign_event(
        STATUSES_WRITTEN,
        campaign_id,
        payload={
            "lead_store": lead_store,
            "written": report.written,
            "unchanged": report.unchanged,
            "failed": report.failed,
            "by_status": report.by_status,
        },
    )
    if result.failures:
        first = "; ".join(f"{f.key}: {f.reason}" for f in result.failures[:5])
        raise WriteBackIncomplete(
            f"{len(result.failures)} of {report.exported} records could not be written "
            f"(first: {first}). Run the write-back again once the cause is fixed; records "
            "already written are left alone."
        )
    logger.info(
        "Wrote %d changed records (%d up to date, %d held a later status, %d not found)",
        report.written,
        report.unchanged,
        report.held_back,
        report.not_found,
    )
    return report
