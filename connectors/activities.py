"""CRM activities from campaign results (a lead's replies, optionally its sent emails): the one
`Activity` record every reader yields and the `ActivitySink` protocol the lead stores implement.

Exactly once rests on `Activity.key`, an idempotency key derived from ColdSend's own ids (the
reply id, the sent email id). A sink stores the key with what it writes (a Salesforce Task's
``ColdSend_Reply_Id__c``, a HubSpot email's property, a sheet row's "Last reply at") and
reconciles before writing: a key the CRM already holds is counted as already logged, never
written again. A crashed or repeated run therefore re-sends the same keys and converges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from connectors.leads import WriteFailure

__all__ = [
    "Activity",
    "ActivityKind",
    "ActivityResult",
    "ActivitySink",
    "LoggedActivity",
    "activity_key",
]

ActivityKind = Literal["reply", "sent", "follow_up"]
"""``reply``: received from the lead; ``sent``: an email ColdSend sent; ``follow_up``: a to-do
for the record's owner (open, due at `Activity.at`), e.g. made by a trigger on a new reply."""

# Room for the key in any CRM text field (Salesforce text fields hold up to 255 characters).
_KEY_PREFIX = {
    "reply": "coldsend-reply:",
    "sent": "coldsend-email:",
    "follow_up": "coldsend-followup:",
}


def activity_key(kind: ActivityKind, item_id: str | None, *fallback: object) -> str:
    """The idempotency key of one activity.

    ColdSend's own id (``reply_id``, ``email_id``) when it has one; otherwise a digest of the
    `fallback` values (campaign, lead, time, subject, text), which are as stable as the reply.
    """
    if item_id and item_id.strip():
        return _KEY_PREFIX[kind] + item_id.strip()
    digest = hashlib.sha256("\x1f".join(map(str, fallback)).encode()).hexdigest()[:32]
    return _KEY_PREFIX[kind] + "h" + digest


@dataclass(frozen=True, slots=True)
class Activity:
    """One thing to log on a CRM record: a reply received from a lead, or an email sent to it.

    Attributes:
        key: Idempotency key (`activity_key`); the sink stores it with the activity.
        kind: ``"reply"`` (incoming), ``"sent"`` (outgoing) or ``"follow_up"`` (a to-do).
        campaign_id: The ColdSend campaign.
        lead_id: The lead's id in ColdSend.
        email: The lead's email, normalised.
        source_id: The CRM record id the sync stored with the lead (None: not known).
        subject: Email subject ("" when ColdSend gave none).
        text: The reply's text as ColdSend gives it (a preview), or a line about the send.
        at: When the reply was received or the email sent; a follow-up's due time.
        is_auto_reply: ColdSend flagged the reply as an automatic answer (out of office).
        is_unsubscribe: ColdSend read the reply as a request to unsubscribe.
    """

    key: str
    kind: ActivityKind
    campaign_id: str
    lead_id: str
    email: str
    source_id: str | None
    subject: str
    text: str
    at: datetime
    is_auto_reply: bool = False
    is_unsubscribe: bool = False

    @property
    def incoming(self) -> bool:
        return self.kind == "reply"


@dataclass(frozen=True, slots=True)
class LoggedActivity:
    """An activity the CRM holds: its key, the record it is on and its own id (when it has one)."""

    key: str
    record: str
    activity_id: str | None = None


@dataclass(slots=True)
class ActivityResult:
    """What a sink did with a batch of activities.

    ``received == len(created) + len(already_logged) + len(skipped) + len(no_record) +
    len(failures)``. ``no_record`` holds activities whose lead has no record in the store (never
    synced from it, or deleted since): nothing was written, and the caller reports them.
    ``skipped`` holds activities the store keeps no place for by design (a sheet's "Last reply"
    columns show a row's newest reply only, and no sends).
    """

    received: int = 0
    created: list[LoggedActivity] = field(default_factory=list)
    already_logged: list[LoggedActivity] = field(default_factory=list)
    skipped: list[LoggedActivity] = field(default_factory=list)
    no_record: list[Activity] = field(default_factory=list)
    failures: list[WriteFailure] = field(default_factory=list)
    requests: int = 0

    @property
    def balanced(self) -> bool:
        return self.received == (
            len(self.created)
            + len(self.already_logged)
            + len(self.skipped)
            + len(self.no_record)
            + len(self.failures)
        )

    @property
    def done_keys(self) -> set[str]:
        """Keys that need no further attempt: logged (now or before), skipped, or without a
        record (reported)."""
        out = {a.key for a in self.created}
        out.update(a.key for a in self.already_logged)
        out.update(a.key for a in self.skipped)
        out.update(a.key for a in self.no_record)
        return out


@runtime_checkable
class ActivitySink(Protocol):
    """Writes activities onto CRM records exactly once (reconciling by `Activity.key` first)."""

    def write_activities(self, activities: Sequence[Activity]) -> ActivityResult: ...
