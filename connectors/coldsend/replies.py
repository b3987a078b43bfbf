"""New replies of a campaign, read within a request budget: which leads to read, and their replies.

ColdSend has no "replies since" endpoint: a lead's replies come only with that lead (``GET
/campaigns/{id}/leads/{lead_id}``, one request each). So the leads worth reading are chosen
from the campaign's REPLIED leads (``GET /campaigns/{id}/leads?status=REPLIED``, 100 a page),
ordered by (``replied_at``, ``lead_id``) and compared with a `ReplyCursor`: only leads after it
are read, oldest first, until the run's request budget (or the key's hourly reserve) is spent.
A lead whose ``replied_at`` moves on (a new reply) sorts after the cursor again and is re-read.

The cursor only saves requests: it is never needed for correctness. Without it every replied
lead is read again (over as many runs as the budget needs) and the CRM sink's idempotency keys
(`connectors.activities`) keep each reply logged once. It advances only past leads whose every
activity the CRM now holds (`ReplyBatch.cursor_after`), so a crash re-reads, never skips.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.activities import Activity, activity_key
from connectors.coldsend.client import ColdSendClient
from connectors.coldsend.errors import NotFoundError, RateLimitError
from connectors.coldsend.models import MAX_PAGE_SIZE, CampaignLead, LeadDetail, LeadStatus

__all__ = [
    "RepliedLead",
    "ReplyBatch",
    "ReplyCursor",
    "activities_of",
    "read_new_replies",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, order=True)
class ReplyCursor:
    """A position in the (``replied_at``, ``lead_id``) order of a campaign's replied leads."""

    replied_at: datetime
    lead_id: str

    def dumps(self) -> str:
        return f"{self.replied_at.astimezone(UTC).isoformat()}|{self.lead_id}"

    @classmethod
    def loads(cls, text: object) -> ReplyCursor | None:
        """The cursor stored as `dumps` made it; None for anything else (then all is re-read)."""
        if not isinstance(text, str) or "|" not in text:
            return None
        stamp, _, lead_id = text.partition("|")
        try:
            at = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        if at.tzinfo is None or not lead_id:
            return None
        return cls(at.astimezone(UTC), lead_id)


def _position(lead: CampaignLead) -> ReplyCursor:
    at = lead.replied_at
    at = _EPOCH if at is None else (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    return ReplyCursor(at, lead.lead_id)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def activities_of(
    detail: LeadDetail, campaign_id: str, source_id: str | None, *, include_sends: bool = False
) -> list[Activity]:
    """The activities of one lead: each reply, and each email sent when `include_sends`."""
    email = detail.email.strip().lower()
    out: list[Activity] = []
    if include_sends:
        for sent in detail.email_interactions:
            if not sent.sent or sent.sent_at is None:
                continue
            step = f" (step {sent.sequence_step})" if sent.sequence_step else ""
            inbox = f" from {sent.inbox_email}" if sent.inbox_email else ""
            out.append(
                Activity(
                    key=activity_key(
                        "sent", sent.email_id, campaign_id, detail.lead_id, sent.sent_at
                    ),
                    kind="sent",
                    campaign_id=campaign_id,
                    lead_id=detail.lead_id,
                    email=email,
                    source_id=source_id,
                    subject=_text(sent.subject),
                    text=f"Sent by ColdSend{inbox}{step}.",
                    at=sent.sent_at,
                )
            )
    for reply in detail.replies:
        at = reply.received_at or detail.replied_at or _EPOCH
        subject, text = _text(reply.subject), _text(reply.body_preview)
        out.append(
            Activity(
                key=activity_key(
                    "reply", reply.reply_id, campaign_id, detail.lead_id, at, subject, text
                ),
                kind="reply",
                campaign_id=campaign_id,
                lead_id=detail.lead_id,
                email=email,
                source_id=source_id,
                subject=subject,
                text=text,
                at=at,
                is_auto_reply=reply.is_auto_reply,
                is_unsubscribe=reply.is_unsubscribe,
            )
        )
    return out


@dataclass(slots=True)
class RepliedLead:
    """One replied lead read this run: where it sits in the order, and its activities."""

    position: ReplyCursor
    email: str
    source_id: str | None
    activities: list[Activity]


@dataclass(slots=True)
class ReplyBatch:
    """What `read_new_replies` read.

    Attributes:
        replied: REPLIED leads in the campaign.
        pending: Of those, the leads after the cursor (new or with a newer reply).
        read: The leads read this run, in cursor order.
        deferred: Pending leads left for a later run (budget or rate-limit reserve).
        gone: Leads listed as replied that ColdSend no longer has when read (deleted meanwhile).
        requests: ColdSend requests this read made (listing pages included).
        stopped_by: Why reading stopped early ("budget", "hourly reserve", "rate limited").
    """

    campaign_id: str
    after: ReplyCursor | None = None
    replied: int = 0
    pending: int = 0
    read: list[RepliedLead] = field(default_factory=list)
    deferred: int = 0
    gone: int = 0
    requests: int = 0
    stopped_by: str | None = None

    @property
    def activities(self) -> list[Activity]:
        return [a for lead in self.read for a in lead.activities]

    def cursor_after(self, done_keys: Iterable[str]) -> ReplyCursor | None:
        """The cursor to store once the CRM holds `done_keys`: past every lead read in order
        whose activities are all done, stopping at the first that is not (re-read next run)."""
        done = set(done_keys)
        cursor = self.after
        for lead in self.read:
            if not all(a.key in done for a in lead.activities):
                break
            cursor = lead.position
        return cursor


def read_new_replies(
    client: ColdSendClient,
    campaign_id: str,
    *,
    after: ReplyCursor | None = None,
    max_requests: int = 200,
    hourly_reserve: int = 100,
    source_id_field: str = "crm_record_id",
    include_sends: bool = False,
    clock: Callable[[], float] = time.time,
    before_read: Callable[[int], None] | None = None,
) -> ReplyBatch:
    """Read the replies of the campaign's leads that replied after `after`, within a budget.

    Costs one listing request per 100 replied leads plus one request per lead read. Reading
    stops, leaving the rest to the next run, when `max_requests` are spent, or when the key's
    rate-limit headers show the hour window binding with `hourly_reserve` requests or fewer
    left (so other flows sharing the key keep some budget and nothing runs into a 429).
    The client's own pacing spreads the requests within the minute window.

    Args:
        client: The ColdSend client (key with leads:read).
        campaign_id: The campaign.
        after: The stored cursor; None reads every replied lead (over several runs if needed).
        max_requests: ColdSend requests this call may make.
        hourly_reserve: Requests of the hour window left untouched for other flows.
        source_id_field: The lead custom field holding the CRM record id (set by the sync).
        include_sends: Also return each email sent to the lead as an activity.
        clock: Unix time, for the rate-limit reset (injectable).
        before_read: Called with 1 before each lead is read (e.g. to take a slot of a shared
            API budget as the reads go, rather than all at once).

    Returns:
        A `ReplyBatch`; pass the CRM sink's done keys to `cursor_after` for the next cursor.
    """
    if max_requests < 1:
        raise ValueError(f"max_requests must be >= 1, got {max_requests}")
    start = client.request_count
    batch = ReplyBatch(campaign_id=campaign_id, after=after)
    listed = list(
        client.iter_leads(campaign_id, status=LeadStatus.REPLIED, page_size=MAX_PAGE_SIZE)
    )
    batch.replied = len(listed)
    pending: list[tuple[ReplyCursor, CampaignLead]] = []
    for lead in listed:
        position = _position(lead)
        if after is None or position > after:
            pending.append((position, lead))
    pending.sort(key=lambda item: item[0])
    batch.pending = len(pending)
    for index, (position, lead) in enumerate(pending):
        if client.request_count - start >= max_requests:
            batch.stopped_by = "budget"
        elif _reserve_reached(client, hourly_reserve, clock()):
            batch.stopped_by = "hourly reserve"
        if batch.stopped_by:
            batch.deferred = len(pending) - index
            break
        raw_id = lead.custom_fields.get(source_id_field) if lead.custom_fields else None
        source_id = str(raw_id).strip() if raw_id is not None else ""
        if before_read is not None:
            before_read(1)
        try:
            detail = client.get_lead(campaign_id, lead.lead_id)
        except NotFoundError:
            batch.gone += 1
            batch.read.append(
                RepliedLead(position, lead.email.strip().lower(), source_id or None, [])
            )
            continue
        except RateLimitError:
            # Another user of the key took the budget: leave the rest for the next run.
            batch.stopped_by = "rate limited"
            batch.deferred = len(pending) - index
            break
        batch.read.append(
            RepliedLead(
                position,
                lead.email.strip().lower(),
                source_id or None,
                activities_of(detail, campaign_id, source_id or None, include_sends=include_sends),
            )
        )
    batch.requests = client.request_count - start
    return batch


def _reserve_reached(client: ColdSendClient, reserve: int, now: float) -> bool:
    state = client.rate_limit
    if state is None or reserve <= 0:
        return False
    # The headers describe the window that binds first; a reset more than two minutes away is
    # the hour window (the minute window is the client's pacing to handle).
    return state.remaining <= reserve and state.reset - now > 120
