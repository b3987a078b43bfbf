"""Prefect tasks shared by the flows: each is a batch or a remote job, never a single lead."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State
from pydantic import BaseModel, Field

from blocks.coldsend import ColdSendCredentials
from blocks.leads import LeadStore
from connectors.coldsend import (
    NOT_GIVEN,
    APIConnectionError,
    APIStatusError,
    CampaignSummary,
    CsvPart,
    NotFoundError,
    UploadIncomplete,
    UploadJobFailed,
    UploadJobTimedOut,
    UploadResult,
    find_lead_ids,
    result_for_job,
    upload_job_timing,
    upload_part,
    wait_for_upload_job,
)
from connectors.leads import LeadStatus, StatusUpdate, WriteResult
from connectors.retry import client_retried
from connectors.salesforce import SalesforceBudgetExceeded
from flows._common import MissingScopes, scope_granted, scopes_checked, verify_scopes
from flows.budgets import ApiSpend, budgeted_client, store_budget
from flows.ledger import SOURCE_TAG_FIELD, CampaignLead, PlannedRemoval, PlannedUpdate

__all__ = [
    "CHANGE_SCOPES",
    "AccountView",
    "ActionOutcome",
    "CampaignState",
    "FinalError",
    "check_scopes",
    "delete_pending_leads",
    "missing_change_scopes",
    "put_lead_updates",
    "read_campaign_state",
    "read_suppressed_emails",
    "retry_unless_client_error",
    "start_update_job",
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
    """What the account holds now for one campaign: its leads and the emails never to send to.

    Attributes:
        existing: The campaign's leads by normalised email, reduced to what the sync compares.
        suppressed: Emails unsubscribed or bounced in this campaign, plus the caller's list.
        suppressing: Other campaigns holding unsubscribed or bounced leads; their emails are
            read by `read_suppressed_emails` once a lead is about to be uploaded.
        pending: How many of its leads are PENDING (prices finding their ids for deletes).
    """

    campaign_id: str
    name: str
    status: str
    existing: Mapping[str, CampaignLead]
    suppressed: frozenset[str]
    suppressing: tuple[str, ...] = ()
    pending: int = 0


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
    compared_custom: Collection[str] = (),
) -> CampaignState:
    """The campaign's name and status, its emails (reconcile) and the emails never to send to.

    Requests, which also check the read scopes before anything is read from the lead store:
    one listing of the account's campaigns (campaigns:read; skipped when `view` is given) and
    one export of the campaign (leads:read). A campaign the listing shows empty is not
    exported: leads:read is then checked by a probe, remembered per key for ten minutes by
    every flow run of the server (`flows.scope_memory`). Other campaigns' suppressed emails
    are not read here (see `CampaignState.suppressing`).
    leads:create is checked by the first upload itself, whose 403 comes before anything is
    imported.

    Args:
        view: What the caller listed moments ago (the pipeline's ensure step).
        compared_custom: Custom fields kept for comparison (the store's mapped ones); the
            lead store tag `SOURCE_TAG_FIELD` is always kept.

    Raises:
        MissingScopes: The key lacks a scope the sync needs (all of them are named).
        NotFoundError: No such campaign.
    """
    suppressed: set[str] = {e.strip().lower() for e in extra_suppressed if e and e.strip()}
    existing: dict[str, CampaignLead] = {}
    keep = frozenset([*compared_custom, SOURCE_TAG_FIELD])
    pending = 0
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
                    custom = row.custom_fields
                    kept = (
                        {k: _text(v) for k, v in custom.items() if k in keep}
                        if custom and not keep.isdisjoint(custom)
                        else None
                    )
                    status = row.status
                    existing[email] = (
                        CampaignLead(status, row.first_name, row.last_name, row.company, kept)
                        if kept
                        else CampaignLead(status, row.first_name, row.last_name, row.company)
                    )
                    if status is LeadStatus.PENDING:
                        pending += 1
                    elif status in SUPPRESSING:
                        suppressed.add(email)
        else:
            # Nothing to export, but the uploads' jobs must be readable: check before reading.
            verify_scopes(client, "sync", ["leads:read"])
    return CampaignState(
        campaign_id=campaign_id,
        name=view.name,
        status=view.status,
        existing=existing,
        suppressed=frozenset(suppressed),
        suppressing=tuple(view.suppressing),
        pending=pending,
    )


def _text(value: object) -> str:
    """A custom field value as the store's text would spell it (the API may hold numbers)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


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
    # Each poll follows a sleep: that sleep takes the poll's slot of the shared budget. The
    # first lands when the job is likely done (its rows at the speed earlier jobs of this
    # server showed), so a typical job is read once.
    spend = ApiSpend(credentials.api_budgets())
    with credentials.get_client() as client:
        timing = upload_job_timing(client.base_url)
        try:
            job = wait_for_upload_job(
                client,
                campaign_id,
                job_id,
                timeout=timeout_seconds,
                first_poll_delay=timing.first_poll_delay(part.row_count),
                sleep=spend.sleep_then_spend,
            )
        finally:
            spend.settle(client.request_count)
    timing.observe(job)
    return result_for_job(campaign_id, job, part)


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
    return store.status_sink(store_budget(store)).write_statuses(updates)


# -- changes to leads already in the campaign (two-way sync) -----------------------------------

# Scopes the sync needs only when it has something to change: updating leads whose fields
# changed in the store, deleting PENDING leads that opted out or left the store.
CHANGE_SCOPES = ("leads:delete", "leads:update")
DELETE_BATCH = 10_000  # lead ids per DELETE request (the API's list limit)


@task(name="Check update and delete scopes", tags=["coldsend-api"], cache_policy=NONE)
def missing_change_scopes(credentials: ColdSendCredentials) -> tuple[list[str], list[str]]:
    """Which of `CHANGE_SCOPES` the key lacks, and the scopes it has (empty when it lacks none).

    One request per scope that changes nothing (against a campaign that never exists), each
    remembered per key for ten minutes; the first 403 lists every granted scope, so it
    settles both. Missing scopes are not an error here: the sync needs them only when a
    change is due, and decides that once the store is read, before changing anything.
    """
    with budgeted_client(credentials) as client:
        try:
            verify_scopes(client, "sync", CHANGE_SCOPES)
        except MissingScopes as exc:
            missing = [s for s in CHANGE_SCOPES if not scope_granted(exc.granted, s)]
            return missing, list(exc.granted)
    return [], []


@dataclass(slots=True)
class ActionOutcome:
    """What one batch of changes did.

    Attributes:
        done: Leads changed.
        failed: (email, why) for leads the change did not reach (the run then fails).
        skipped: (email, why) for leads ColdSend declined to change (e.g. no longer PENDING).
    """

    done: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _lead_error(exc: APIStatusError | APIConnectionError) -> str:
    return str(exc).splitlines()[0][:300]


@task(
    name="Update changed leads",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_unless_client_error,
)
def put_lead_updates(
    credentials: ColdSendCredentials,
    campaign_id: str,
    updates: list[PlannedUpdate],
    listed: int,
) -> ActionOutcome:
    """PUT the changed fields of each lead (custom_fields as a merge patch), paced by the client.

    The export carries no lead id: ids are found first by the cheaper of one search per lead
    and listing the campaign (`find_lead_ids`). Re-running is safe: a PUT sets values.

    Args:
        listed: Leads in the campaign (prices the listing).
    """
    outcome = ActionOutcome()
    with scopes_checked("sync"), budgeted_client(credentials, len(updates)) as client:
        found = find_lead_ids(client, campaign_id, [u.lead.email for u in updates], listed=listed)
        for update in updates:
            email = update.lead.email
            lead = found.get(email)
            if lead is None:
                outcome.skipped.append((email, "no longer in the campaign"))
                continue
            changes = update.changes
            try:
                client.update_lead(
                    campaign_id,
                    lead.lead_id,
                    first_name=changes.get("first_name", NOT_GIVEN),
                    last_name=changes.get("last_name", NOT_GIVEN),
                    company=changes.get("company", NOT_GIVEN),
                    custom_fields=changes.get("custom_fields", NOT_GIVEN),
                )
            except NotFoundError:
                outcome.skipped.append((email, "no longer in the campaign"))
            except (APIStatusError, APIConnectionError) as exc:
                if getattr(exc, "status_code", None) == 403:
                    raise
                outcome.failed.append((email, _lead_error(exc)))
            else:
                outcome.done += 1
    return outcome


@task(
    name="Upload lead updates CSV part",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_unless_client_error,
)
def start_update_job(credentials: ColdSendCredentials, campaign_id: str, part: CsvPart) -> str:
    """Start an upload job with duplicate_action=update for leads already in the campaign.

    The rows carry the store's current values, so sending them again sets the same values:
    a task retry cannot leave a different end state. The client itself re-sends it only when
    the connection never opened (see `ColdSendClient.upload_leads_csv`).
    """
    with scopes_checked("sync"), budgeted_client(credentials) as client:
        return upload_part(client, campaign_id, part, duplicate_action="update")


@task(
    name="Delete leads from the campaign",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_unless_client_error,
)
def delete_pending_leads(
    credentials: ColdSendCredentials,
    campaign_id: str,
    removals: list[PlannedRemoval],
    listed: int,
) -> ActionOutcome:
    """Delete PENDING leads by email; ColdSend keeps (and lists) any no longer PENDING.

    Ids come from the PENDING leads only (`find_lead_ids` with status PENDING: the cheaper of
    one search per lead and listing the PENDING leads), then one DELETE per 10,000 ids. A
    re-run deletes what is left: a lead already gone is simply not found.

    Args:
        listed: PENDING leads in the campaign (prices the listing).
    """
    outcome = ActionOutcome()
    with scopes_checked("sync"), budgeted_client(credentials) as client:
        emails = [r.email for r in removals]
        found = find_lead_ids(client, campaign_id, emails, listed=listed, status="PENDING")
        for email in emails:
            if email not in found:
                outcome.skipped.append((email, "no longer PENDING"))
        ids = {lead.lead_id: email for email, lead in found.items()}
        batch = list(ids)
        for start in range(0, len(batch), DELETE_BATCH):
            result = client.delete_leads(campaign_id, lead_ids=batch[start : start + DELETE_BATCH])
            outcome.done += result.deleted_count
            for skipped in result.skipped:
                outcome.skipped.append((ids.get(skipped.lead_id, skipped.lead_id), skipped.reason))
    return outcome
