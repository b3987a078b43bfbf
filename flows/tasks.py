"""Prefect tasks shared by the flows: each is a batch or a remote job, never a single lead."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State

from blocks.coldsend import ColdSendCredentials
from blocks.leads import LeadStore
from connectors.coldsend import (
    APIConnectionError,
    APIStatusError,
    CampaignSummary,
    CsvPart,
    RateLimitError,
    UploadIncomplete,
    UploadJobFailed,
    UploadJobTimedOut,
    UploadResult,
    result_for_job,
    upload_part,
    wait_for_upload_job,
)
from connectors.leads import LeadStatus, StatusUpdate, WriteResult
from connectors.salesforce import SalesforceBudgetExceeded
from flows._common import scopes_checked, verify_scopes

__all__ = [
    "CampaignState",
    "FinalError",
    "check_scopes",
    "read_campaign_state",
    "retry_unless_client_error",
    "start_upload_job",
    "wait_for_upload",
    "write_statuses_to_store",
]

SUPPRESSING = (LeadStatus.UNSUBSCRIBED, LeadStatus.BOUNCED)


class FinalError(RuntimeError):
    """A failure that a task retry would only repeat (e.g. a campaign named twice)."""


def retry_unless_client_error(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Task retry condition: retry coarse failures, never a 4xx the client already judged final.

    A plain module-level function on purpose: Prefect 3.8 ignores partials and callable objects.
    """
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, RateLimitError) and (exc.retry_after or 0) > 120:
        return False  # the hourly budget is spent: a retry within seconds meets the same 429
    if isinstance(exc, APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    if isinstance(exc, APIConnectionError):
        return True
    # The CRM connectors' errors carry `status`: a 4xx other than 429 is final there too (e.g.
    # Salesforce 403 REQUEST_LIMIT_EXCEEDED: the daily allocation does not return in 30 s).
    status = getattr(exc, "status", None)
    if isinstance(status, int) and 400 <= status < 500 and status != 429:
        return False
    if isinstance(exc, SalesforceBudgetExceeded):  # refused locally: same answer in 30 s
        return False
    # A job that ended FAILED, or outlived its deadline, stays that way: polling it again only
    # repeats the wait (the sync's re-run re-uploads its rows instead). Our own validation and
    # accounting errors are deterministic too.
    final = (FinalError, UploadJobFailed, UploadJobTimedOut, UploadIncomplete, ValueError)
    return not isinstance(exc, (*final, LookupError, TypeError))


@dataclass(frozen=True, slots=True)
class CampaignState:
    """What the account holds now for one campaign: its emails and the emails to never send to."""

    campaign_id: str
    name: str
    status: str
    existing: frozenset[str]
    suppressed: frozenset[str]


@task(
    name="Read campaign and suppression state",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_client_error,
)
def read_campaign_state(
    credentials: ColdSendCredentials,
    campaign_id: str,
    extra_suppressed: Iterable[str] = (),
) -> CampaignState:
    """The campaign's name and status, its emails (reconcile) and the emails never to send to.

    On a quiet account this is two requests, which also check the read scopes before anything
    is read from the lead store: one list of campaigns (campaigns:read; it gives the
    campaign's name and status and every other campaign's unsubscribe and bounce counters) and
    one export of the campaign (leads:read). Other campaigns are only exported when their
    counters say they hold unsubscribed or bounced leads. leads:create is checked by the first
    upload itself, whose 403 comes before anything is imported.

    Raises:
        MissingScopes: The key lacks a scope the sync needs (all of them are named).
        NotFoundError: No such campaign.
    """
    suppressed: set[str] = {e.strip().lower() for e in extra_suppressed if e and e.strip()}
    existing: set[str] = set()
    with scopes_checked("sync"), credentials.get_client() as client:
        ours: CampaignSummary | None = None
        others: list[str] = []
        for summary in client.iter_campaigns():
            if summary.campaign_id == campaign_id:
                ours = summary
            elif summary.unsubscribe_count or summary.bounce_count:
                others.append(summary.campaign_id)
        if ours is None:
            # Not listed: let the API say why (404 names the missing campaign).
            found = client.get_campaign(campaign_id)
            name, status = found.name, str(found.status)
        else:
            name, status = ours.name, str(ours.status)
        with client.export_leads(campaign_id) as rows:
            for row in rows:
                email = row.email.strip().lower()
                existing.add(email)
                if row.status in SUPPRESSING:
                    suppressed.add(email)
        for other in others:
            # One export per campaign whatever its size: paging by status costs one request
            # per 100 leads (70 requests for a 50,000-lead campaign with 5% bounces).
            with client.export_leads(other) as other_rows:
                for row in other_rows:
                    if row.status in SUPPRESSING:
                        suppressed.add(row.email.strip().lower())
    return CampaignState(
        campaign_id=campaign_id,
        name=name,
        status=status,
        existing=frozenset(existing),
        suppressed=frozenset(suppressed),
    )


@task(name="Check ColdSend scopes", tags=["coldsend-api"], cache_policy=NONE)
def check_scopes(credentials: ColdSendCredentials, flow: str, scopes: list[str]) -> None:
    """One request per scope that needs it and cannot change anything; raises `MissingScopes`."""
    with credentials.get_client() as client:
        verify_scopes(client, flow, scopes)


@task(
    name="Upload leads CSV part",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_unless_client_error,
)
def start_upload_job(credentials: ColdSendCredentials, campaign_id: str, part: CsvPart) -> str:
    """Start one asynchronous upload job; returns its job id.

    Re-running this task is safe only because uploads use duplicate_action=skip: rows already
    imported by a lost earlier attempt are counted as duplicates, never imported twice.
    """
    # A key without leads:create gets a 403 here, before anything is imported: the upload
    # itself is the scope check, so no probe request is spent on it.
    with scopes_checked("sync"), credentials.get_client() as client:
        return upload_part(client, campaign_id, part, duplicate_action="skip")


@task(
    name="Wait for upload job",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_client_error,
)
def wait_for_upload(
    credentials: ColdSendCredentials,
    campaign_id: str,
    job_id: str,
    part: CsvPart,
    timeout_seconds: float,
) -> UploadResult:
    """Poll one upload job to a terminal state and map its row errors back to source rows."""
    with credentials.get_client() as client:
        job = wait_for_upload_job(
            client,
            campaign_id,
            job_id,
            timeout=timeout_seconds,
            first_poll_delay=expected_job_seconds(part.row_count),
        )
    return result_for_job(campaign_id, job, part)


def expected_job_seconds(rows: int) -> float:
    """How long to let a just-started job run before the first poll (never done at once)."""
    return min(5.0, 0.5 + rows / 20_000)


@task(
    name="Write statuses to the lead store",
    tags=["crm-api"],
    cache_policy=NONE,
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_unless_client_error,
)
def write_statuses_to_store(store: LeadStore, updates: list[StatusUpdate]) -> WriteResult:
    """Apply statuses through the store's sink: it reads current values and writes only changes."""
    return store.status_sink().write_statuses(updates)
