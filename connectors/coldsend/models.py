"""pydantic models of every ColdSend request and response (contract sections 4 to 7).

Request models forbid unknown fields and check the documented limits so bad input fails
before any request with a message naming the field. Response models allow extra fields and
give most fields defaults, so a new or missing server field never breaks parsing.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from connectors.leads import LeadStatus

__all__ = [
    "MAX_PAGE_SIZE",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_ROWS",
    "Campaign",
    "CampaignCreate",
    "CampaignCreated",
    "CampaignLead",
    "CampaignPage",
    "CampaignStateChanged",
    "CampaignStatus",
    "CampaignSummary",
    "CampaignUpdate",
    "CampaignUpdated",
    "DeleteLeadsResult",
    "DuplicateAction",
    "EmailInteraction",
    "Inbox",
    "InboxCreated",
    "InboxPage",
    "InboxType",
    "LeadCreate",
    "LeadDetail",
    "LeadPage",
    "LeadReply",
    "LeadStatus",
    "LeadUpdate",
    "OperationResult",
    "Pagination",
    "SequenceStep",
    "Sequences",
    "SkippedLead",
    "SmtpInboxCreate",
    "TriggerType",
    "UploadAccepted",
    "UploadJob",
    "UploadJobStatus",
    "UploadRowError",
    "Variant",
    "Variants",
    "check_sequences",
    "check_variants",
]

MAX_UPLOAD_ROWS = 10_000
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_PAGE_SIZE = 100

DuplicateAction = Literal["skip", "update", "replace"]


class CampaignStatus(StrEnum):
    """Where a campaign is in DRAFT -> ACTIVE <-> PAUSED -> COMPLETED (or FAILED)."""

    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class UploadJobStatus(StrEnum):
    """Where a CSV upload job is: PENDING -> VALIDATING -> IN_PROGRESS -> COMPLETED | FAILED."""

    PENDING = "PENDING"
    VALIDATING = "VALIDATING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        """Whether the job has finished (COMPLETED or FAILED)."""
        return self in (UploadJobStatus.COMPLETED, UploadJobStatus.FAILED)


class TriggerType(StrEnum):
    """When a follow-up step is sent."""

    NOT_OPENED = "NOT_OPENED"
    NOT_REPLIED = "NOT_REPLIED"
    OPENED_BUT_NOT_REPLIED = "OPENED_BUT_NOT_REPLIED"


class InboxType(StrEnum):
    """The kind of mailbox behind a sender account."""

    GOOGLE_WORKSPACE = "GOOGLE_WORKSPACE"
    OUTLOOK_365 = "OUTLOOK_365"
    CUSTOM_SMTP = "CUSTOM_SMTP"


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


class _Request(BaseModel):
    # Inputs are never echoed in validation messages: some carry passwords. Assignments are
    # validated like construction, so a model edited in place (a campaign spec's variant) still
    # holds only what the API accepts.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, validate_assignment=True)


@cache
def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@cache
def _have_zone_data() -> bool:
    # Without tz data on the machine every name would look unknown; then the server decides.
    return _known_zone("America/New_York")


def _check_zone(value: str | None) -> str | None:
    if value is not None and _have_zone_data() and not _known_zone(value):
        raise ValueError(f"{value!r} is not an IANA time zone name such as 'Europe/Berlin'")
    return value


class Variant(_Request):
    """One version of the first email; up to 4, their `distribution_percent` summing to 100.

    The defaults make a single variant short to write: ``Variant(subject_template=...,
    email_content=...)`` is variant "A" sent to every lead.
    """

    variant_name: str = Field(default="A", pattern=r"^[A-Za-z]+$", max_length=10)
    subject_template: str = Field(max_length=500)
    email_content: str = Field(min_length=10, max_length=100_000)
    distribution_percent: int = Field(default=100, ge=0, le=100)


def check_variants(value: list[Variant]) -> list[Variant]:
    """Variant names unique (case-insensitively) and percentages summing to 100."""
    names = [v.variant_name.upper() for v in value]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique, got {names}")
    total = sum(v.distribution_percent for v in value)
    if value and total != 100:
        raise ValueError(f"distribution_percent of all variants must sum to 100, got {total}")
    return value


Variants = Annotated[list[Variant], Field(max_length=4), AfterValidator(check_variants)]
"""A campaign's (or a follow-up step's) variants: at most 4, checked by `check_variants`."""


class SequenceStep(_Request):
    """A follow-up step: sent `wait_days` after the previous one when `trigger_type` holds."""

    step_number: int = Field(ge=2, le=4)
    trigger_type: TriggerType = TriggerType.NOT_REPLIED
    wait_days: int = Field(ge=1, le=30)
    variants: Annotated[Variants, Field(min_length=1)]


def check_sequences(value: list[SequenceStep]) -> list[SequenceStep]:
    """Step numbers unique and at most 45 days of waiting in all."""
    steps = [s.step_number for s in value]
    if len(set(steps)) != len(steps):
        raise ValueError(f"sequence step_number values must be unique, got {steps}")
    days = sum(s.wait_days for s in value)
    if days > 45:
        raise ValueError(f"follow-up steps wait {days} days in all; at most 45 are allowed")
    return value


Sequences = Annotated[list[SequenceStep], Field(max_length=3), AfterValidator(check_sequences)]
"""A campaign's follow-up steps: at most 3, checked by `check_sequences`."""


def _check_window(
    start: int | None, end: int | None, start_minute: int | None, end_minute: int | None
) -> None:
    if start is None or end is None:
        return
    if end * 60 + (end_minute or 0) <= start * 60 + (start_minute or 0):
        raise ValueError(
            f"sending_window_end ({end}:{end_minute or 0:02d}) must be after "
            f"sending_window_start ({start}:{start_minute or 0:02d})"
        )


_Name = Annotated[str, Field(min_length=8, max_length=255)]
_Days = Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(min_length=1, max_length=7)]


class _CampaignFields(_Request):
    @field_validator("timezone", check_fields=False)
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return _check_zone(value)

    @field_validator("sending_days", check_fields=False)
    @classmethod
    def _days(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"sending_days must not repeat a day, got {value}")
        return value

    @field_validator("name", check_fields=False)
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("name must not be blank")
        return value


class CampaignCreate(_CampaignFields):
    """Body of POST /campaigns."""

    name: _Name
    timezone: str = "America/New_York"
    start_date: datetime | None = None
    sending_days: _Days = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    sending_window_start: int = Field(default=9, ge=0, le=23)
    sending_window_end: int = Field(default=17, ge=1, le=24)
    sending_window_start_minute: int = Field(default=0, ge=0, le=59)
    sending_window_end_minute: int = Field(default=0, ge=0, le=59)
    daily_limit_per_inbox: int | None = Field(default=None, ge=1, le=100)
    enable_tracking: bool = False
    enable_unsubscribe: bool = True

    @model_validator(mode="after")
    def _window(self) -> CampaignCreate:
        _check_window(
            self.sending_window_start,
            self.sending_window_end,
            self.sending_window_start_minute,
            self.sending_window_end_minute,
        )
        return self


class CampaignUpdate(_CampaignFields):
    """Body of PUT /campaigns/{id}: only the fields set are sent and changed."""

    name: _Name | None = None
    timezone: str | None = None
    start_date: datetime | None = None
    sending_days: _Days | None = None
    sending_window_start: int | None = Field(default=None, ge=0, le=23)
    sending_window_end: int | None = Field(default=None, ge=1, le=24)
    sending_window_start_minute: int | None = Field(default=None, ge=0, le=59)
    sending_window_end_minute: int | None = Field(default=None, ge=0, le=59)
    daily_limit_per_inbox: int | None = Field(default=None, ge=1, le=100)
    enable_tracking: bool | None = None
    enable_unsubscribe: bool | None = None
    inbox_ids: list[str] | None = Field(default=None, min_length=1)
    variants: Variants | None = None
    sequences: Sequences | None = None
    lead_mapping: dict[str, Any] | None = None
    launch: bool | None = None

    @field_validator("inbox_ids")
    @classmethod
    def _inboxes_ok(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not i.strip() for i in value):
            raise ValueError("inbox_ids must not contain empty ids")
        return value

    @model_validator(mode="after")
    def _window(self) -> CampaignUpdate:
        for name in ("name", "timezone", "sending_days", "enable_tracking", "enable_unsubscribe"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be set to null")
        _check_window(
            self.sending_window_start,
            self.sending_window_end,
            self.sending_window_start_minute,
            self.sending_window_end_minute,
        )
        return self

    def body(self) -> dict[str, Any]:
        """The JSON body: exactly the fields that were set (an explicit None is sent as null)."""
        return self.model_dump(mode="json", exclude_unset=True)


_Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$"
    ),
]


class LeadCreate(_Request):
    """Body of POST /campaigns/{id}/leads/manual."""

    email: _Email
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    custom_fields: dict[str, str] | None = None


class LeadUpdate(_Request):
    """Body of PUT /campaigns/{id}/leads/{lead_id}; `custom_fields` is a merge patch."""

    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    custom_fields: dict[str, str | None] | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body: exactly the fields that were set."""
        return self.model_dump(mode="json", exclude_unset=True)


class SmtpInboxCreate(_Request):
    """Body of POST /sender-accounts/smtp. Passwords are `SecretStr` and never shown in reprs."""

    email_address: _Email
    display_name: str = Field(min_length=1, max_length=255)
    inbox_type: InboxType = InboxType.CUSTOM_SMTP
    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(ge=1, le=65535)
    smtp_username: str = Field(min_length=1)
    smtp_password: SecretStr
    imap_host: str | None = None
    imap_port: int | None = Field(default=None, ge=1, le=65535)
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    daily_limit: int | None = Field(default=None, ge=1, le=100)

    def body(self) -> dict[str, Any]:
        """The JSON body, with the passwords revealed (they have to reach the server)."""
        out = self.model_dump(mode="json", exclude_none=True)
        out["smtp_password"] = self.smtp_password.get_secret_value()
        if self.imap_password is not None:
            out["imap_password"] = self.imap_password.get_secret_value()
        return out


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class OperationResult(_Response):
    """The envelope every action returns: ``success`` and a human ``message``."""

    success: bool = True
    message: str = ""


class Pagination(_Response):
    """Where a page sits in a listing."""

    page: int = 1
    limit: int = 20
    total: int = 0
    pages: int = 0
    has_next: bool = False
    has_prev: bool = False


class CampaignCreated(OperationResult):
    """Answer to POST /campaigns."""

    campaign_id: str
    name: str = ""
    status: CampaignStatus = CampaignStatus.DRAFT
    created_at: datetime | None = None


class _CampaignCounts(_Response):
    total_leads: int = 0
    sent_count: int = 0
    open_count: int = 0
    reply_count: int = 0
    bounce_count: int = 0
    unsubscribe_count: int = 0


class CampaignSummary(_CampaignCounts):
    """One campaign in GET /campaigns."""

    campaign_id: str
    name: str = ""
    status: CampaignStatus
    created_at: datetime | None = None
    launched_at: datetime | None = None


class CampaignPage(OperationResult):
    """A page of GET /campaigns."""

    campaigns: list[CampaignSummary] = Field(default_factory=list)
    pagination: Pagination = Field(default_factory=Pagination)


class Campaign(_CampaignCounts):
    """GET /campaigns/{id}: every setting, the attached inboxes and content, and counters."""

    campaign_id: str
    name: str = ""
    status: CampaignStatus
    timezone: str | None = None
    start_date: datetime | None = None
    sending_days: list[int] = Field(default_factory=list)
    sending_window_start: int | None = None
    sending_window_end: int | None = None
    sending_window_start_minute: int | None = None
    sending_window_end_minute: int | None = None
    daily_limit_per_inbox: int | None = None
    enable_tracking: bool | None = None
    enable_unsubscribe: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    launched_at: datetime | None = None
    inbox_ids: list[str] = Field(default_factory=list)
    variants: list[dict[str, Any]] = Field(default_factory=list)
    sequences: list[dict[str, Any]] = Field(default_factory=list)
    lead_mapping: dict[str, Any] | None = None


class CampaignUpdated(OperationResult):
    """Answer to PUT /campaigns/{id}, including a launch attempt.

    A launch that is refused for missing requirements still answers 200: check
    `status` or `missing_requirements` (a subset of ``["leads", "inboxes", "variants"]``).
    """

    campaign_id: str
    name: str = ""
    status: CampaignStatus
    is_launch_ready: bool = False
    missing_requirements: list[str] = Field(default_factory=list)
    updated_at: datetime | None = None


class CampaignStateChanged(OperationResult):
    """Answer to pause, activate and delete.

    `status` is the new state; after a delete it may be a value outside `CampaignStatus`
    (such as ``"DELETED"``), kept as the string the API sent.
    """

    campaign_id: str
    status: CampaignStatus | str | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _known_status(cls, value: object) -> object:
        if isinstance(value, str) and value in CampaignStatus.__members__:
            return CampaignStatus(value)
        return value


class UploadAccepted(OperationResult):
    """Answer to POST /campaigns/{id}/leads: the job to poll."""

    job_id: str
    campaign_id: str = ""
    status: UploadJobStatus = UploadJobStatus.PENDING
    total_rows: int | None = None


class UploadRowError(_Response):
    """One rejected row of an upload; `row` is the 1-based data row of the file."""

    row: int | None = None
    email: str | None = None
    error: str = ""


class UploadJob(_Response):
    """GET /campaigns/{id}/leads/upload/{job_id}."""

    job_id: str
    campaign_id: str = ""
    status: UploadJobStatus
    progress_percentage: float | None = None
    total_count: int | None = None
    processed_count: int | None = None
    success_count: int | None = None
    duplicate_count: int | None = None
    error_count: int | None = None
    errors: list[UploadRowError] = Field(default_factory=list)
    started_at: datetime | None = None
    completed_at: datetime | None = None


class CampaignLead(_Response):
    """A lead as the API returns it (named so it is not confused with `connectors.leads.Lead`)."""

    lead_id: str
    batch_id: str | None = None
    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    status: LeadStatus
    last_contacted_at: datetime | None = None
    opened_at: datetime | None = None
    replied_at: datetime | None = None
    created_at: datetime | None = None
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    sequence_step: int | None = None
    email_opened: bool = False
    email_replied: bool = False
    unsubscribed: bool = False


class EmailInteraction(_Response):
    """One email sent to a lead and what happened to it."""

    email_id: str | None = None
    sequence_step: int | None = None
    subject: str | None = None
    sent_at: datetime | None = None
    opened_at: datetime | None = None
    replied_at: datetime | None = None
    inbox_email: str | None = None
    sent: bool = False
    opened: bool = False
    bounced: bool = False


class LeadReply(_Response):
    """A reply received from a lead."""

    reply_id: str | None = None
    subject: str | None = None
    received_at: datetime | None = None
    body_preview: str | None = None
    is_auto_reply: bool = False
    is_unsubscribe: bool = False


class LeadDetail(CampaignLead):
    """GET /campaigns/{id}/leads/{lead_id}: the lead with its emails and replies."""

    delivery_status: str | None = None
    email_interactions: list[EmailInteraction] = Field(default_factory=list)
    replies: list[LeadReply] = Field(default_factory=list)


class LeadPage(OperationResult):
    """A page of GET /campaigns/{id}/leads."""

    leads: list[CampaignLead] = Field(default_factory=list)
    pagination: Pagination = Field(default_factory=Pagination)


class SkippedLead(_Response):
    """A lead DELETE kept, and why (only PENDING leads are deleted)."""

    lead_id: str
    reason: str = ""


class DeleteLeadsResult(OperationResult):
    """Answer to DELETE /campaigns/{id}/leads."""

    deleted_count: int = 0
    skipped: list[SkippedLead] = Field(default_factory=list)


class Inbox(_Response):
    """A sender account (credentials are never returned)."""

    inbox_id: str
    email_address: str = ""
    display_name: str | None = None
    inbox_type: InboxType | None = None
    daily_limit: int | None = None
    overall_status: str | None = None
    created_at: datetime | None = None


class InboxCreated(OperationResult, Inbox):
    """Answer to POST /sender-accounts/smtp."""


class InboxPage(OperationResult):
    """A page of GET /sender-accounts."""

    sender_accounts: list[Inbox] = Field(default_factory=list)
    pagination: Pagination = Field(default_factory=Pagination)
