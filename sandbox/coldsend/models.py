"""Request models, constants and the error type of the ColdSend emulator (contract sections 4-6, 10)."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

API_PREFIX = "/api/public/v1"
CONTROL_PREFIX = "/_sandbox"

CAMPAIGN_STATUSES = ("DRAFT", "ACTIVE", "PAUSED", "COMPLETED", "FAILED")
LEAD_STATUSES = (
    "PENDING",
    "QUEUED",
    "SENT",
    "OPENED",
    "REPLIED",
    "FAILED",
    "BOUNCED",
    "UNSUBSCRIBED",
    "EXTERNAL",
)
CampaignStatus = Literal["DRAFT", "ACTIVE", "PAUSED", "COMPLETED", "FAILED"]
LeadStatus = Literal[
    "PENDING",
    "QUEUED",
    "SENT",
    "OPENED",
    "REPLIED",
    "FAILED",
    "BOUNCED",
    "UNSUBSCRIBED",
    "EXTERNAL",
]
DuplicateAction = Literal["skip", "update", "replace"]
STANDARD_LEAD_FIELDS = ("email", "first_name", "last_name", "company")

MAX_UPLOAD_ROWS = 10_000
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

# Syntax-only address check: dot-atom local part, LDH labels, alphabetic (or punycode) TLD.
EMAIL_RE = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)


def normalize_email(value: str) -> str:
    """Trim and lower-case an address, the form used for every comparison."""
    return value.strip().lower()


def is_valid_email(normalized: str) -> bool:
    """Whether an already normalised address is syntactically acceptable."""
    return len(normalized) <= 254 and EMAIL_RE.match(normalized) is not None


def utc_now() -> str:
    """Now as ISO 8601 with millisecond precision and a ``Z`` suffix."""
    return format_ts(datetime.now(UTC))


def format_ts(value: datetime) -> str:
    """Format a datetime as ISO 8601 UTC with ``Z``; naive values are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ApiError(Exception):
    """An error answer: `detail` is a string, a 422 list, or a full body dict (403)."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.detail = detail

    def body(self) -> dict[str, Any]:
        """The JSON body to send."""
        if isinstance(self.detail, dict):
            return self.detail
        return {"detail": self.detail}


def validation_detail(
    exc: ValidationError, prefix: tuple[str | int, ...] = ("body",)
) -> list[dict[str, Any]]:
    """FastAPI-style 422 items, without the offending input (it may hold secrets)."""
    return [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


Scalar = str | int | float | bool | None
ShortText = Annotated[str, Field(max_length=255)]


# ---------------------------------------------------------------------------------------------
# Campaigns
# ---------------------------------------------------------------------------------------------


class Variant(BaseModel):
    """One version of an email (initial or follow-up)."""

    variant_name: str = Field(pattern=r"^[A-Za-z]+$", max_length=16)
    subject_template: str = Field(default="", max_length=500)
    email_content: str = Field(min_length=10, max_length=100_000)
    distribution_percent: int = Field(ge=0, le=100)


def _check_variants(variants: list[Variant]) -> list[Variant]:
    names = [v.variant_name.upper() for v in variants]
    if len(set(names)) != len(names):
        raise ValueError("variant_name must be unique within a campaign")
    if variants and sum(v.distribution_percent for v in variants) != 100:
        raise ValueError("distribution_percent of all variants must sum to exactly 100")
    return variants


class Sequence(BaseModel):
    """A follow-up step."""

    step_number: int = Field(ge=2, le=4)
    trigger_type: Literal["NOT_OPENED", "NOT_REPLIED", "OPENED_BUT_NOT_REPLIED"]
    wait_days: int = Field(ge=1, le=30)
    variants: list[Variant] = Field(default_factory=list, max_length=4)

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: list[Variant]) -> list[Variant]:
        return _check_variants(value)


class CampaignSettings(BaseModel):
    """The body of POST /campaigns, also used to validate a campaign after a partial update."""

    name: str = Field(min_length=8, max_length=255)
    timezone: str = "America/New_York"
    start_date: datetime | None = None
    sending_days: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5], min_length=1, max_length=7
    )
    sending_window_start: int = Field(default=9, ge=0, le=23)
    sending_window_end: int = Field(default=17, ge=1, le=24)
    sending_window_start_minute: int = Field(default=0, ge=0, le=59)
    sending_window_end_minute: int = Field(default=0, ge=0, le=59)
    daily_limit_per_inbox: int | None = Field(default=None, ge=1, le=100)
    enable_tracking: bool = False
    enable_unsubscribe: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value not in _timezones():
            raise ValueError(f"unknown IANA time zone {value[:64]!r}")
        return value

    @field_validator("sending_days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("sending_days must not repeat a day")
        return value

    @model_validator(mode="after")
    def _window(self) -> CampaignSettings:
        if self.sending_window_end == 24 and self.sending_window_end_minute:
            raise ValueError("sending window cannot end after 24:00")
        start = self.sending_window_start * 60 + self.sending_window_start_minute
        end = self.sending_window_end * 60 + self.sending_window_end_minute
        if end <= start:
            raise ValueError("sending_window_end must be after sending_window_start")
        return self

    def stored(self) -> dict[str, Any]:
        """JSON-ready form for the database and for responses."""
        data = self.model_dump()
        data["start_date"] = format_ts(self.start_date) if self.start_date else None
        return data


SETTINGS_FIELDS = tuple(CampaignSettings.model_fields)


class CampaignUpdate(BaseModel):
    """The body of PUT /campaigns/{id}: every field optional, only those sent change."""

    name: str | None = None
    timezone: str | None = None
    start_date: datetime | None = None
    sending_days: list[int] | None = None
    sending_window_start: int | None = None
    sending_window_end: int | None = None
    sending_window_start_minute: int | None = None
    sending_window_end_minute: int | None = None
    daily_limit_per_inbox: int | None = None
    enable_tracking: bool | None = None
    enable_unsubscribe: bool | None = None
    inbox_ids: list[Annotated[str, Field(pattern=r"^[0-9a-fA-F-]{32,36}$")]] | None = Field(
        default=None, min_length=1, max_length=100
    )
    variants: list[Variant] | None = Field(default=None, max_length=4)
    sequences: list[Sequence] | None = Field(default=None, max_length=3)
    lead_mapping: dict[str, str] | None = None
    launch: bool = False

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: list[Variant] | None) -> list[Variant] | None:
        return None if value is None else _check_variants(value)

    @field_validator("sequences")
    @classmethod
    def _sequences(cls, value: list[Sequence] | None) -> list[Sequence] | None:
        if value is None:
            return None
        steps = [s.step_number for s in value]
        if len(set(steps)) != len(steps):
            raise ValueError("step_number must be unique")
        if sum(s.wait_days for s in value) > 45:
            raise ValueError("the whole follow-up chain must fit in 45 days")
        return value


# ---------------------------------------------------------------------------------------------
# Leads
# ---------------------------------------------------------------------------------------------


def _email(value: str) -> str:
    if not is_valid_email(normalize_email(value)):
        raise ValueError("invalid email")
    return value.strip()


class ManualLead(BaseModel):
    """The body of POST /campaigns/{id}/leads/manual."""

    email: str = Field(max_length=254)
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    company: ShortText | None = None
    custom_fields: dict[str, Scalar] | None = None

    _check_email = field_validator("email")(_email)


class LeadUpdate(BaseModel):
    """The body of PUT /campaigns/{id}/leads/{lead_id}; `custom_fields` is a merge patch."""

    email: str | None = None
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    company: ShortText | None = None
    custom_fields: dict[str, Scalar] | None = None


class LeadIds(BaseModel):
    """The body of DELETE /campaigns/{id}/leads."""

    lead_ids: list[str] = Field(max_length=10_000)


# ---------------------------------------------------------------------------------------------
# Sender accounts
# ---------------------------------------------------------------------------------------------


class SenderAccountCreate(BaseModel):
    """The body of POST /sender-accounts/smtp. Passwords are `SecretStr` so they never print."""

    model_config = ConfigDict(hide_input_in_errors=True)

    email_address: str = Field(max_length=254)
    display_name: ShortText = ""
    inbox_type: Literal["GOOGLE_WORKSPACE", "OUTLOOK_365", "CUSTOM_SMTP"] = "CUSTOM_SMTP"
    smtp_host: str = Field(min_length=1, max_length=255)
    smtp_port: int = Field(ge=1, le=65535)
    smtp_username: str = Field(min_length=1, max_length=255)
    smtp_password: SecretStr = Field(min_length=1, max_length=1024)
    imap_host: str | None = Field(default=None, max_length=255)
    imap_port: int | None = Field(default=None, ge=1, le=65535)
    imap_username: str | None = Field(default=None, max_length=255)
    imap_password: SecretStr | None = Field(default=None, max_length=1024)
    daily_limit: int = Field(default=50, ge=1, le=100)

    _check_email = field_validator("email_address")(_email)


# ---------------------------------------------------------------------------------------------
# Control surface (/_sandbox)
# ---------------------------------------------------------------------------------------------


class KeyCreate(BaseModel):
    """POST /_sandbox/keys."""

    scopes: list[Annotated[str, Field(pattern=r"^(\*|[a-z_]+:[a-z_]+)$")]]
    name: str | None = Field(default=None, max_length=255)


class AdvanceRequest(BaseModel):
    """POST /_sandbox/advance."""

    steps: int = Field(default=1, ge=1, le=1000)


class LeadStatusRequest(BaseModel):
    """PUT /_sandbox/leads/status."""

    campaign_id: str
    email: str
    status: LeadStatus


class ReplyRequest(BaseModel):
    """POST /_sandbox/replies: a reply arrives from a lead (status REPLIED unless final)."""

    campaign_id: str
    email: str
    body: str = Field(min_length=1, max_length=100_000)
    subject: str | None = Field(default=None, max_length=998)
    received_at: datetime | None = None
    is_auto_reply: bool = False


class LimitsConfig(BaseModel):
    """Rate limits: per key, fixed windows."""

    per_minute: int = Field(default=100, ge=1)
    per_hour: int = Field(default=1000, ge=1)
    retry_after_header: bool = False


class LimitsPatch(BaseModel):
    """PUT /_sandbox/limits: fields left out keep their value."""

    per_minute: int | None = Field(default=None, ge=1)
    per_hour: int | None = Field(default=None, ge=1)
    retry_after_header: bool | None = None


class JobsConfig(BaseModel):
    """Upload job behaviour: speed and injected failures or stalls (seeded per job)."""

    rows_per_second: float = Field(default=20_000.0, gt=0)
    fail_rate: float = Field(default=0.0, ge=0, le=1)
    stall_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0


class JobsPatch(BaseModel):
    """PUT /_sandbox/jobs: fields left out keep their value."""

    rows_per_second: float | None = Field(default=None, gt=0)
    fail_rate: float | None = Field(default=None, ge=0, le=1)
    stall_rate: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = None
