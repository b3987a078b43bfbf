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
    CsvPart,
    UploadResult,
    result_for_job,
    upload_part,
    wait_for_upload_job,
)
from connectors.leads import LeadStatus, StatusUpdate, WriteResult

__all__ = [
    "CampaignState",
    "read_campaign_state",
    "retry_unless_client_error",
    "start_upload_job",
    "wait_for_upload",
    "write_statuses_to_store",
]

SUPPRESSING = (LeadStatus.UNSUBSCRIBED, LeadStatus.BOUNCED)


def retry_unless_client_error(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Task retry condition: retry coarse failures, never a 4xx the client already judged final.

    A plain module-level function on purpose: Prefect 3.8 ignores partials and callable objects.
    """
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    if isinstance(exc, APIConnectionError):
        return True
    # Our own validation and accounting errors are deterministic: retrying repeats them.
    return not isinstance(exc, ValueError | LookupError | TypeError)


@dataclass(frozen=True, slots=True)
class CampaignState:
    """What the account holds now for one campaign: its emails and the emails to never send to."""

    campaign_id: str
    name: str
    status: str
    existing: frozenset[str]
    suppressed: frozenset[str]
    requests: int


@task(
    name="Read campaign and suppression state",
    cache_policy=NONE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_client_error,
)
def read_campaign_state(
    credentials: ColdSendCredentials, campaign_id: str, extra_suppressed: Iterable[str] = ()
) -> CampaignState:
    """One export of the target campaign (reconcile) plus the account's unsubscribes and bounces.

    Other campaigns are only queried when their counters say they hold unsubscribed or bounced
    leads, and then only for those statuses, so a quiet account costs one list call.
    """
    suppressed: set[str] = {e.strip().lower() for e in extra_suppressed if e and e.strip()}
    existing: set[str] = set()
    with credentials.get_client() as client:
        campaign = client.get_campaign(campaign_id)
        with client.export_leads(campaign_id) as rows:
            for row in rows:
                email = row.email.strip().lower()
                existing.add(email)
                if row.status in SUPPRESSING:
                    suppressed.add(email)
        for other in client.iter_campaigns():
            if other.campaign_id == campaign_id:
                continue
            if not (other.unsubscribe_count or other.bounce_count):
                continue
            for status in SUPPRESSING:
                for lead in client.iter_leads(other.campaign_id, status=status):
                    suppressed.add(lead.email.strip().lower())
        requests = client.request_count
    return CampaignState(
        campaign_id=campaign_id,
        name=campaign.name,
        status=str(campaign.status),
        existing=frozenset(existing),
        suppressed=frozenset(suppressed),
        requests=requests,
    )


@task(
    name="Upload leads CSV part",
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
    with credentials.get_client() as client:
        return upload_part(client, campaign_id, part, duplicate_action="skip")


@task(
    name="Wait for upload job",
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
        job = wait_for_upload_job(client, campaign_id, job_id, timeout=timeout_seconds)
    return result_for_job(campaign_id, job, part)


@task(
    name="Write statuses to the lead store",
    cache_policy=NONE,
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_unless_client_error,
)
def write_statuses_to_store(store: LeadStore, updates: list[StatusUpdate]) -> WriteResult:
    """Apply statuses through the store's sink: it reads current values and writes only changes."""
    return store.status_sink().write_statuses(updates)
