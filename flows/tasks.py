"""Prefect tasks shared by the flows: each is a batch or a remote job, never a single lead."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State
from pydantic import BaseModel, Field

from blocks.coldsend import ColdSendCredentials
from blocks.leads import LeadStore
from connectors.coldsend import (
    APIConnectionError,
    APIStatusError,
    CampaignSummary,
    CsvPart,
    UploadIncomplete,
    UploadJobFailed,
    UploadJobTimedOut,
    UploadResult,
    result_for_job,
    upload_part,
    wait_for_upload_job,
)
from connectors.leads import LeadStatus, StatusUpdate, WriteResult
from connectors.retry import client_retried
from connectors.salesforce import SalesforceBudgetExceeded
from flows._common import scopes_checked, verify_scopes
from flows.budgets import ApiSpend, budgeted_client

__all__ = [
    "AccountView",
    "CampaignState",
    "FinalError",
    "check_scopes",
    "read_campaign_state",
    "read_suppressed_emails",
    "retry_unless_client_error",
    "start_upload_job",
    "wait_for_upload",
    "write_statuses_to_store",
]

SUPPRESSING = (LeadStatus.UNSUBSCRIBED, LeadStatus.BOUNCED)


class FinalError(RuntimeError):
    """A failure that a task retry would only repeat (e.g. a campaign named twice)."""


def retry_unless_client_error(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Task retry condition: retry coarse failures only, never what a client already retried.

    One retry layer per request (design principle 7): a 429, 5xx or connection failure the
    connector's client judged transient was already retried there (`client_retried`), so a
    task retry would only multiply its attempts (a whole CSV part re-sent six more times).
    A 4xx is final. What is left for a task retry is what no client could retry: e.g. a 5xx
    on a request unsafe to repeat, which the task may redo after reconciling.

    A plain module-level function on purpose: Prefect 3.8 ignores partials and callable objects.
    """
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, BaseException) and client_retried(exc):
        return False
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


class AccountView(BaseModel):
    """One campaign as a listing of the account shows it, plus the campaigns to suppress from.

    Taken from one ``GET /campaigns`` (all pages). The pipeline's ensure step lists the account
    anyway (to find its campaign by name) and hands this to the sync, which then needs no
    listing of its own.

    Attributes:
        campaign_id / name / status / total_leads: The campaign, as listed.
        suppressing: Every other campaign whose counters show unsubscribed or bounced leads.
    """

    campaign_id: str
    name: str = ""
    status: str
    total_leads: int = 0
    suppressing: list[str] = Field(default_factory=list)

    @classmethod
    def from_listing(
        cls, summaries: Iterable[CampaignSummary], campaign_id: str
    ) -> AccountView | None:
        """The view of `campaign_id` from a listing; None when the listing lacks it."""
        ours: CampaignSummary | None = None
        suppressing: list[str] = []
        for summary in summaries:
            if summary.campaign_id == campaign_id:
                ours = summary
            elif summary.unsubscribe_count or summary.bounce_count:
                suppressing.append(summary.campaign_id)
        if ours is None:
            return None
        return cls(
            campaign_id=campaign_id,
            name=ours.name,
            status=str(ours.status),
            total_leads=ours.total_leads,
            suppressing=suppressing,
        )


@dataclass(frozen=True, slots=True)
class CampaignState:
    """What the account holds now for one campaign: its emails and the emails never to send to.

    Attributes:
        existing: Emails already in the campaign (normalised).
        suppressed: Emails unsubscribed or bounced in this campaign, plus the caller's list.
        suppressing: Other campaigns holding unsubscribed or bounced leads; their emails are
            read by `read_suppressed_emails` once a lead is about to be uploaded.
    """

    campaign_id: str
    name: str
    status: str
    existing: frozenset[str]
    suppressed: frozenset[str]
    suppressing: tuple[str, ...] = ()


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
    view: AccountView | None = None,
) -> CampaignState:
    """The campaign's name and status, its emails (reconcile) and the emails never to send to.

    Requests, which also check the read scopes before anything is read from the lead store:
    one listing of the account's campaigns (campaigns:read; skipped when `view` is given) and
    one export of the campaign (leads:read). A campaign the listing shows empty is not
    exported: leads:read is then checked by a probe, remembered per key for ten minutes. Other
    campaigns' suppressed emails are not read here (see `CampaignState.suppressing`).
    leads:create is checked by the first upload itself, whose 403 comes before anything is
    imported.

    Args:
        view: What the caller listed moments ago (the pipeline's ensure step).

    Raises:
        MissingScopes: The key lacks a scope the sync needs (all of them are named).
        NotFoundError: No such campaign.
    """
    suppressed: set[str] = {e.strip().lower() for e in extra_suppressed if e and e.strip()}
    existing: set[str] = set()
    # The listing (unless given) and the export or probe; further pages are settled after.
    expect = 2 if view is None else 1
    with scopes_checked("sync"), budgeted_client(credentials, expect) as client:
        if view is None:
            view = AccountView.from_listing(client.iter_campaigns(), campaign_id)
        if view is None:
            # Not listed: let the API say why (404 names the missing campaign).
            found = client.get_campaign(campaign_id)
            view = AccountView(
                campaign_id=campaign_id,
                name=found.name,
                status=str(found.status),
                total_leads=found.total_leads,
            )
        if view.total_leads:
            with client.export_leads(campaign_id) as rows:
                for row in rows:
                    email = row.email.strip().lower()
                    existing.add(email)
                    if row.status in SUPPRESSING:
                        suppressed.add(email)
        else:
            # Nothing to export, but the uploads' jobs must be readable: check before reading.
            verify_scopes(client, "sync", ["leads:read"])
    return CampaignState(
        campaign_id=campaign_id,
        name=view.name,
        status=view.status,
        existing=frozenset(existing),
        suppressed=frozenset(suppressed),
        suppressing=tuple(view.suppressing),
    )


@task(
    name="Read emails suppressed in other campaigns",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_client_error,
)
def read_suppressed_emails(
    credentials: ColdSendCredentials, campaign_ids: Iterable[str]
) -> frozenset[str]:
    """Every email unsubscribed or bounced in the given campaigns (account-wide suppression).

    One export per campaign whatever its size: paging by status would cost one request per
    100 leads (70 requests for a 50,000-lead campaign with 5% bounces).
    """
    suppressed: set[str] = set()
    campaign_ids = list(campaign_ids)
    with scopes_checked("sync"), budgeted_client(credentials, len(campaign_ids)) as client:
        for campaign_id in campaign_ids:
            with client.export_leads(campaign_id) as rows:
                for row in rows:
                    if row.status in SUPPRESSING:
                        suppressed.add(row.email.strip().lower())
    return frozenset(suppressed)


@task(name="Check ColdSend scopes", tags=["coldsend-api"], cache_policy=NONE)
def check_scopes(credentials: ColdSendCredentials, flow: str, scopes: list[str]) -> None:
    """One request per scope that needs it and cannot change anything; raises `MissingScopes`."""
    with budgeted_client(credentials, len(scopes)) as client:
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
    with scopes_checked("sync"), budgeted_client(credentials, 1) as client:
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
    # Each poll follows a sleep (the first waits for the job to get going): that sleep takes
    # the poll's slot of the shared budget.
    spend = ApiSpend(credentials.api_budgets())
    with credentials.get_client() as client:
        try:
            job = wait_for_upload_job(
                client,
                campaign_id,
                job_id,
                timeout=timeout_seconds,
                first_poll_delay=expected_job_seconds(part.row_count),
                sleep=spend.sleep_then_spend,
            )
        finally:
            spend.settle(client.request_count)
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
