"""HubSpot: credentials (private app token or service key) and the HubSpot contacts lead store."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from blocks._logo import LOGO_URL
from blocks.budgets import ApiBudget, hubspot_budgets
from blocks.leads import LeadStore
from connectors.hubspot import (
    DEFAULT_BASE_URL,
    DEFAULT_OPT_OUT_PROPERTIES,
    HubSpotConnection,
    HubSpotContactSource,
    HubSpotLimits,
    HubSpotStatusSink,
    StatusProperties,
)
from connectors.hubspot.activities import DEFAULT_KEY_PROPERTY, HubSpotActivitySink
from connectors.leads import FieldMapping
from connectors.shared_budget import SharedBudget

__all__ = ["HubSpotContacts", "HubSpotCredentials"]

_DOCS = "https://github.com/prefect-coldsend/prefect-coldsend#lead-stores"


class HubSpotCredentials(Block):
    """A HubSpot account's API access: a private app access token or a service key.

    The token needs the scopes ``crm.objects.contacts.read`` (sync),
    ``crm.objects.contacts.write`` (write-back), ``crm.schemas.contacts.read`` (checking the
    mapped properties), ``crm.schemas.contacts.write`` (only to create the ColdSend status
    properties once) and ``crm.lists.read`` (only for a store narrowed by a list).
    `get_client` builds a new, paced connection on every call.

    Example:
        ```python
        from blocks import HubSpotCredentials

        hubspot = HubSpotCredentials.load("BLOCK_NAME")
        connection = hubspot.get_client()
        print(len(connection.properties()), "contact properties")
        ```
    """

    _block_type_name = "HubSpot Credentials"
    _block_type_slug = "hubspot-credentials"
    _description = (
        "A HubSpot private app access token or service key, and the account's rate limit."
    )
    _documentation_url = "https://github.com/prefect-coldsend/prefect-coldsend#blocks"  # type: ignore[assignment]
    _logo_url = LOGO_URL

    access_token: SecretStr = Field(
        default=...,
        title="Access token",
        description="A private app access token (pat-...) or a service key.",
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        description="HubSpot's API root; the sandbox's URL for dry runs and tests.",
    )
    requests_per_ten_seconds: int = Field(
        default=100,
        ge=1,
        le=1000,
        description=(
            "The account's burst limit per 10 seconds: 100 (Free, Starter) or 190 "
            "(Professional, Enterprise). Requests are paced to stay under it."
        ),
    )
    searches_per_second: int = Field(
        default=5, ge=1, le=50, description="CRM search requests per second (HubSpot allows 5)."
    )

    def get_client(self, shared_budget: SharedBudget | None = None) -> HubSpotConnection:
        """Build a new `HubSpotConnection` (the official client, paced to this account's limits).

        Args:
            shared_budget: Also pace every request by this budget shared with other
                processes (the flows pass the app's `api_budgets` on the Prefect server).
        """
        return HubSpotConnection(
            access_token=self.access_token,
            base_url=self.base_url,
            limits=self.limits(),
            shared_budget=shared_budget,
        )

    def limits(self) -> HubSpotLimits:
        """The account's plan limits, as set on this block."""
        return HubSpotLimits(
            per_ten_seconds=self.requests_per_ten_seconds,
            searches_per_second=self.searches_per_second,
        )

    def api_budgets(self) -> tuple[ApiBudget, ...]:
        """The app's shared request budgets (Prefect global concurrency limits named by a
        digest of the token): its 10-second bucket and its searches a second."""
        return hubspot_budgets(self.access_token.get_secret_value(), self.limits())


class HubSpotContacts(LeadStore):
    """HubSpot contacts, optionally narrowed by a list or property filters, and the properties
    that receive campaign statuses.

    Reads are incremental by ``lastmodifieddate`` (CRM search, any number of contacts sharing
    one timestamp); full reads page the objects API. HubSpot's "Unsubscribed from all email"
    (``hs_email_optout``) is the opt-out signal. The write-back reads the status properties of
    100 contacts at a time, never moves a status backwards and batch-updates only the contacts
    whose values change; the status properties are created in a "ColdSend" group when missing.

    Example:
        ```python
        from blocks import HubSpotContacts

        store = HubSpotContacts.load("BLOCK_NAME")
        for lead in store.lead_source().read():
            print(lead)
        ```
    """

    _block_type_name = "HubSpot Contacts"
    _block_type_slug = "hubspot-contacts"
    _description = "HubSpot contacts as a lead source and a status sink."
    _documentation_url = _DOCS  # type: ignore[assignment]
    _logo_url = LOGO_URL

    supports_incremental: ClassVar[bool] = True

    credentials: HubSpotCredentials = Field(
        default=...,
        title="Credentials",
        description="A saved HubSpot Credentials block; the UI lists them, or adds one.",
    )
    mapping: FieldMapping | None = Field(
        default=None,
        description=(
            "Contact property (internal name) for each lead field, custom fields included; "
            "default email, firstname, lastname, company."
        ),
    )
    list_id: str | None = Field(
        default=None, description="Only the members of this HubSpot list (its list id)."
    )
    filters: list[tuple[str, str, Any]] = Field(
        default_factory=list,
        description=(
            "Up to 4 conditions ANDed together, e.g. [['lifecyclestage', '=', 'lead']]; "
            "operators = != < <= > >= in, not in, contains, is set, is not set. Not with list_id."
        ),
    )
    match_by: Literal["id", "email"] = Field(
        default="id", description="Match campaign leads to contacts by contact id or by email."
    )
    opt_out_property: str | None = Field(
        default=None,
        description=(
            "A checkbox property marking contacts not to email, read besides hs_email_optout "
            "(always read unless ignore_store_opt_outs)."
        ),
    )
    non_marketing_opted_out: bool = Field(
        default=False,
        description="Also treat non-marketing contacts (hs_marketable_status false) as opted out.",
    )
    status_property: str = Field(
        default="coldsend_status", description="Property receiving the ColdSend status."
    )
    opened_property: str | None = Field(
        default="coldsend_opened", description="Checkbox set once the lead opened."
    )
    replied_property: str | None = Field(
        default="coldsend_replied", description="Checkbox set once the lead replied."
    )
    unsubscribed_property: str | None = Field(
        default="coldsend_unsubscribed", description="Checkbox set once the lead unsubscribed."
    )
    bounced_property: str | None = Field(
        default="coldsend_bounced", description="Checkbox set once an email bounced."
    )
    create_status_properties: bool = Field(
        default=True,
        description="Create missing status properties (needs crm.schemas.contacts.write).",
    )

    reply_key_property: str = Field(
        default=DEFAULT_KEY_PROPERTY,
        description=(
            "Email property holding each reply's id, so every reply is logged on the contact "
            "as an email exactly once (created when missing)."
        ),
    )

    def opt_out_properties(self) -> tuple[str, ...]:
        """The properties read as the opt-out signal; none with `ignore_store_opt_outs`."""
        if self.ignore_store_opt_outs:
            return ()
        extra = (self.opt_out_property,) if self.opt_out_property else ()
        return tuple(dict.fromkeys((*DEFAULT_OPT_OUT_PROPERTIES, *extra)))

    def lead_source(self, budget: SharedBudget | None = None) -> HubSpotContactSource:
        return HubSpotContactSource(
            self.credentials.get_client(budget),
            mapping=self.mapping,
            filters=[tuple(f) for f in self.filters],
            list_id=self.list_id,
            opt_out_properties=self.opt_out_properties(),
            non_marketing_opted_out=self.non_marketing_opted_out and not self.ignore_store_opt_outs,
        )

    def status_sink(self, budget: SharedBudget | None = None) -> HubSpotStatusSink:
        return HubSpotStatusSink(
            self.credentials.get_client(budget),
            match_by=self.match_by,
            create_properties=self.create_status_properties,
            properties=StatusProperties(
                status=self.status_property,
                opened=self.opened_property,
                replied=self.replied_property,
                unsubscribed=self.unsubscribed_property,
                bounced=self.bounced_property,
            ),
        )

    def activity_sink(self, budget: SharedBudget | None = None) -> HubSpotActivitySink:
        return HubSpotActivitySink(
            self.credentials.get_client(budget),
            match_by=self.match_by,
            key_property=self.reply_key_property,
        )

    def api_budgets(self) -> tuple[ApiBudget, ...]:
        return self.credentials.api_budgets()

    def written_columns(self) -> list[str]:
        """The status properties the write-back fills."""
        names = (
            self.status_property,
            self.opened_property,
            self.replied_property,
            self.unsubscribed_property,
            self.bounced_property,
        )
        return [name for name in names if name]

    def describe(self) -> str:
        if self.list_id:
            return f"HubSpot contacts in list {self.list_id}"
        where = " AND ".join(f"{f} {op} {v!r}" for f, op, v in self.filters)
        return "HubSpot contacts" + (f" where {where}" if where else "")
