"""Replies in the CRM: read a campaign's new replies within ColdSend's budget, log each once.

`log_campaign_replies` runs inside the write-back flow (two tasks: one read, one write, never
one task per lead); `create_follow_up_task` is a small flow a deployment trigger runs on each
``coldsend.lead.replied`` event (see deployments/prefect.yaml).

Where the memory lives: a Prefect Variable per (lead store, campaign) holds a `ReplyCursor`
(a position in the campaign's replied leads, under 100 characters). It only saves ColdSend
requests. The CRM's idempotency keys are the truth: with the Variable lost, every replied lead
is read again over as many runs as the budget needs, and nothing is logged twice.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE
from prefect.events import emit_event
from prefect.variables import Variable
from pydantic import BaseModel

from blocks.coldsend import ColdSendCredentials
from blocks.leads import LeadStore
from connectors.activities import Activity, ActivityResult, activity_key
from connectors.coldsend.replies import ReplyBatch, ReplyCursor, read_new_replies
from flows._common import load_lead_store
from flows.budgets import ApiSpend, store_budget
from flows.events import campaign_resource
from flows.naming import artifact_key
from flows.reports import markdown_table
from flows.sync import SOURCE_ID_COLUMN
from flows.tasks import retry_unless_client_error

__all__ = [
    "LEAD_REPLIED",
    "REPLY_UNMATCHED",
    "ReplyLogReport",
    "create_follow_up_task",
    "log_campaign_replies",
]

LEAD_REPLIED = "coldsend.lead.replied"
REPLY_UNMATCHED = "coldsend.reply.unmatched"

# Event ids derive from the reply's idempotency key: the Prefect server stores an id once and
# its triggers skip an id they have seen, so an event re-emitted after a crash is not doubled.
_EVENT_NAMESPACE = uuid.UUID("6f1f5d1e-2f4b-4c3a-9a57-0c0d5e1d2a11")
_PREVIEW_CHARS = 500
_TABLE_ROWS = 200


class ReplyLogReport(BaseModel):
    """What a reply-logging pass did (part of `WriteBackReport`).

    ``replied_leads`` leads of the campaign have replied; ``pending`` of them are new since the
    stored cursor (or have a newer reply); ``read`` were read this run and ``deferred`` are
    left for the next runs (``stopped_by`` says why). Of the activities read, ``logged`` were
    written now, ``already_logged`` were in the CRM already, ``skipped`` have no place in the
    store by design, ``no_record`` have no record in the store (reported), ``failed`` could
    not be written (the run fails).
    """

    replied_leads: int = 0
    pending: int = 0
    read: int = 0
    deferred: int = 0
    stopped_by: str | None = None
    coldsend_requests: int = 0
    activities: int = 0
    logged: int = 0
    already_logged: int = 0
    skipped: int = 0
    no_record: int = 0
    failed: int = 0
    store_requests: int = 0
    cursor: str | None = None
    failures: list[str] = []


def reply_cursor_name(lead_store: str, campaign_id: str) -> str:
    """The Prefect Variable holding the reply cursor of one (lead store, campaign)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", f"coldsend-replies-{lead_store}-{campaign_id}".lower())
    return slug[:255]


@task(
    name="Read new campaign replies",
    tags=["coldsend-api"],
    cache_policy=NONE,
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_unless_client_error,
)
def read_new_campaign_replies(
    credentials: ColdSendCredentials,
    campaign_id: str,
    cursor: str | None,
    max_requests: int,
    include_sends: bool,
) -> ReplyBatch:
    """List the campaign's replied leads and read the new ones, within `max_requests`.

    Each read takes its slot of the key's shared API budget as it goes (the listing pages and
    any retries are settled at the end), so other flows sharing the key are not starved.
    """
    spend = ApiSpend(credentials.api_budgets())
    spend.spend(1)
    with credentials.get_client() as client:
        try:
            return read_new_replies(
                client,
                campaign_id,
                after=ReplyCursor.loads(cursor),
                max_requests=max_requests,
                source_id_field=SOURCE_ID_COLUMN,
                include_sends=include_sends,
                before_read=spend.spend,
            )
        finally:
            spend.settle(client.request_count)


@task(
    name="Log activities in the lead store",
    tags=["crm-api"],
    cache_policy=NONE,
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_unless_client_error,
)
def log_activities_in_store(store: LeadStore, activities: list[Activity]) -> ActivityResult:
    """Write the batch through the store's activity sink (it reconciles keys first, so a retry
    writes nothing twice)."""
    return store.activity_sink(store_budget(store)).write_activities(activities)


def _event_id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(_EVENT_NAMESPACE, f"{kind}\n{key}")


def _reply_payload(activity: Activity, lead_store: str) -> dict[str, Any]:
    return {
        "campaign_id": activity.campaign_id,
        "lead_id": activity.lead_id,
        "email": activity.email,
        "lead_store": lead_store,
        "reply_key": activity.key,
        "subject": activity.subject,
        "text": activity.text[:_PREVIEW_CHARS],
        "received_at": activity.at.isoformat(),
        "is_auto_reply": activity.is_auto_reply,
        "is_unsubscribe": activity.is_unsubscribe,
    }


def _emit_replied(
    activity: Activity, lead_store: str, record: str, activity_id: str | None
) -> None:
    emit_event(
        event=LEAD_REPLIED,
        id=_event_id(LEAD_REPLIED, activity.key),
        resource={
            "prefect.resource.id": f"coldsend.lead.{activity.lead_id}",
            "prefect.resource.name": activity.email,
            "coldsend.campaign.id": activity.campaign_id,
            "coldsend.crm.record": record,
            "coldsend.lead-store": lead_store,
        },
        related=[
            {**campaign_resource(activity.campaign_id), "prefect.resource.role": "campaign"},
            {
                "prefect.resource.id": f"coldsend.crm-record.{record}",
                "prefect.resource.role": "crm-record",
                "coldsend.lead-store": lead_store,
            },
        ],
        payload={
            **_reply_payload(activity, lead_store),
            "crm_record": record,
            "crm_activity_id": activity_id,
        },
    )


def _emit_unmatched(activity: Activity, lead_store: str) -> None:
    emit_event(
        event=REPLY_UNMATCHED,
        id=_event_id(REPLY_UNMATCHED, activity.key),
        resource={
            "prefect.resource.id": f"coldsend.lead.{activity.lead_id}",
            "prefect.resource.name": activity.email,
            "coldsend.campaign.id": activity.campaign_id,
        },
        related=[{**campaign_resource(activity.campaign_id), "prefect.resource.role": "campaign"}],
        payload={
            **_reply_payload(activity, lead_store),
            "crm_record": activity.source_id,
            "reason": "no record in the lead store (never synced from it, or deleted since)",
        },
    )


def log_campaign_replies(
    credentials: ColdSendCredentials,
    store: LeadStore,
    lead_store: str,
    campaign_id: str,
    *,
    include_sends: bool = False,
    max_requests: int = 200,
    campaign: str | None = None,
) -> ReplyLogReport:
    """Log the campaign's new replies on the store's records, exactly once; report the rest.

    Called from a flow (the write-back, whose summary shows `replies_section`). Reads within
    `max_requests` ColdSend requests (see `read_new_replies`), writes through the store's
    `ActivitySink`, emits one ``coldsend.lead.replied`` event per reply logged (and
    ``coldsend.reply.unmatched`` per reply whose lead has no record), publishes a table of
    the replies without a record, and moves the stored cursor past the leads now fully logged.
    """
    logger = get_run_logger()
    report = ReplyLogReport()
    try:
        store.activity_sink()
    except NotImplementedError as exc:
        # Said loudly, never skipped in silence; the statuses are still written.
        report.stopped_by = f"not supported: {exc}"
        logger.warning("Replies are not logged for this lead store: %s", exc)
        return report
    name = reply_cursor_name(lead_store, campaign_id)
    stored = cast(object, Variable.get(name, default=None))
    batch = read_new_campaign_replies(
        credentials,
        campaign_id,
        stored if isinstance(stored, str) else None,
        max_requests,
        include_sends,
    )
    activities = batch.activities
    report.replied_leads, report.pending = batch.replied, batch.pending
    report.read, report.deferred = len(batch.read), batch.deferred
    report.stopped_by = batch.stopped_by
    report.coldsend_requests = batch.requests
    report.activities = len(activities)
    result = log_activities_in_store(store, activities) if activities else ActivityResult()
    by_key = {a.key: a for a in activities}
    report.logged, report.already_logged = len(result.created), len(result.already_logged)
    report.skipped, report.no_record = len(result.skipped), len(result.no_record)
    report.failed, report.store_requests = len(result.failures), result.requests
    report.failures = [f"{f.key}: {f.reason}" for f in result.failures]
    # Events before the cursor moves: a crash in between re-reads these leads and re-emits
    # the same event ids, which the server stores and triggers on once.
    for logged in [*result.created, *result.already_logged]:
        activity = by_key.get(logged.key)
        if activity is not None and activity.kind == "reply":
            _emit_replied(activity, lead_store, logged.record, logged.activity_id)
    for activity in result.no_record:
        if activity.kind == "reply":
            _emit_unmatched(activity, lead_store)
    cursor = batch.cursor_after(result.done_keys)
    if cursor is not None and cursor != batch.after:
        Variable.set(name, cursor.dumps(), overwrite=True)
    report.cursor = cursor.dumps() if cursor else None
    if result.no_record:
        _publish_unmatched(result.no_record, campaign or campaign_id, lead_store)
    logger.info(
        "Replies: %d new leads read (%d left for later runs), %d activities logged, %d already "
        "logged, %d without a record, %d failed; %d ColdSend requests",
        report.read,
        report.deferred,
        report.logged,
        report.already_logged,
        report.no_record,
        report.failed,
        report.coldsend_requests,
    )
    return report


def replies_section(report: ReplyLogReport) -> str:
    """The write-back summary's section about replies (Markdown)."""
    if report.stopped_by and report.stopped_by.startswith("not supported"):
        return f"## Replies\n\nReplies are not logged: {report.stopped_by}."
    rows = [
        ("replied leads in the campaign", report.replied_leads),
        ("new since the last run", report.pending),
        ("read this run", report.read),
        ("left for the next runs", report.deferred),
        ("activities logged now", report.logged),
        ("already in the CRM", report.already_logged),
        ("not for this store (other stores' leads, older replies, sends)", report.skipped),
        ("replies without a record in the store", report.no_record),
        ("failed", report.failed),
        ("ColdSend requests", report.coldsend_requests),
    ]
    body = "## Replies\n\n" + markdown_table(("replies", "count"), rows)
    if report.deferred:
        body += (
            f"\n\nReading stopped ({report.stopped_by}); the next runs continue where this one "
            "stopped, oldest replies first."
        )
    if report.no_record:
        body += (
            f"\n\n{report.no_record} repl{'y' if report.no_record == 1 else 'ies'} came from "
            "leads with no record in the lead store: see the replies-without-record table and "
            f"the {REPLY_UNMATCHED} events."
        )
    return body


def _publish_unmatched(unmatched: list[Activity], campaign: str, lead_store: str) -> None:
    table = [
        {
            "email": a.email,
            "received_at": a.at.isoformat(),
            "subject": a.subject,
            "reply": a.text[:200],
            "crm_record": a.source_id or "",
            "lead_id": a.lead_id,
        }
        for a in unmatched[:_TABLE_ROWS]
    ]
    shown = f" First {len(table)} shown." if len(unmatched) > len(table) else ""
    create_table_artifact(
        table=table,
        key=artifact_key("replies", campaign, lead_store, "without-record"),
        description=(
            f"{len(unmatched)} repl{'y' if len(unmatched) == 1 else 'ies'} from leads with no "
            f"record in {lead_store} (never synced from it, or deleted since): nothing was "
            f"logged for them; each is also a {REPLY_UNMATCHED} event.{shown}"
        ),
    )


class FollowUpCreated(BaseModel):
    """What `create_follow_up_task` did."""

    key: str
    created: bool
    record: str | None = None
    task_id: str | None = None
    reason: str | None = None


@flow(name="create-follow-up-task")
def create_follow_up_task(
    lead_store: str,
    reply_key: str,
    crm_record: str | None,
    email: str,
    campaign_id: str,
    lead_id: str,
    subject: str = "",
    text: str = "",
    due_in_days: int = 1,
) -> FollowUpCreated:
    """Create an open follow-up Task for the record's owner when a lead replies (once per reply).

    Made for a deployment trigger on ``coldsend.lead.replied`` (deployments/prefect.yaml): the
    trigger passes the event's payload. The Task's idempotency key derives from the reply's,
    so a re-delivered event or a re-run creates nothing twice.

    Args:
        lead_store: The saved lead store (a Salesforce one: it creates Tasks).
        reply_key: The reply's idempotency key (``payload.reply_key``).
        crm_record: The record the reply was logged on.
        email / campaign_id / lead_id / subject / text: From the event payload.
        due_in_days: Due date of the Task, in days from now.

    Raises:
        ValueError: the lead store cannot hold tasks, or the record was not found.
    """
    store = load_lead_store(lead_store)
    key = activity_key("follow_up", reply_key)
    due = datetime.now(UTC) + timedelta(days=max(0, due_in_days))
    preview = text.strip()
    activity = Activity(
        key=key,
        kind="follow_up",
        campaign_id=campaign_id,
        lead_id=lead_id,
        email=email,
        source_id=crm_record,
        subject=f"Follow up: {email} replied" + (f" ({subject})" if subject else ""),
        text=(f"They wrote:\n{preview}" if preview else "They replied to the campaign."),
        at=due,
    )
    try:
        store.activity_sink()
    except NotImplementedError as exc:
        raise ValueError(f"{lead_store} cannot hold follow-up tasks: {exc}") from None
    result = log_activities_in_store(store, [activity])
    if result.skipped:
        raise ValueError(
            f"{lead_store} cannot hold follow-up tasks (Salesforce lead stores can): its "
            "replies are logged as columns or emails only"
        )
    if result.failures:
        raise RuntimeError(f"follow-up Task not created: {result.failures[0].reason}")
    if result.no_record:
        raise ValueError(
            f"record {crm_record!r} for {email} is not in {lead_store} (deleted since the reply?)"
        )
    done = (result.created or result.already_logged)[0]
    outcome = FollowUpCreated(
        key=key, created=bool(result.created), record=done.record, task_id=done.activity_id
    )
    get_run_logger().info(
        "Follow-up task for %s %s", email, "created" if outcome.created else "already existed"
    )
    return outcome
