"""Salesforce credentials: password, client-credentials or session login; builds a fresh connection."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

from blocks._logo import LOGO_URL
from blocks.budgets import (
    SALESFORCE_DAILY_ALLOCATION,
    SALESFORCE_DAILY_SHARE,
    ApiBudget,
    salesforce_budgets,
)
from connectors.salesforce import DEFAULT_API_VERSION, SalesforceConnection
from connectors.shared_budget import SharedBudget

__all__ = ["SalesforceCredentials"]


class SalesforceCredentials(Block):
    """Credentials for a Salesforce org, in one of three recipes.

    * username + password + security token (add consumer key and secret for the OAuth
      password grant);
    * consumer key + consumer secret alone: the OAuth client-credentials flow of a connected app;
    * instance URL + session id: a token obtained elsewhere (it cannot be renewed).

    Secrets are stored encrypted and never logged. `get_client` builds a new connection on
    every call; expired sessions are renewed when the recipe allows it.

    Example:
        ```python
        from blocks import SalesforceCredentials

        salesforce = SalesforceCredentials.load("BLOCK_NAME")
        connection = salesforce.get_client()
        print(connection.describe("Lead").name)
        ```
    """

    _block_type_name = "Salesforce Credentials"
    _block_type_slug = "salesforce-credentials"
    _description = (
        "Login for a Salesforce org: password, connected-app client credentials or session."
    )
    _documentation_url = "https://github.com/prefect-coldsend/prefect-coldsend#blocks"  # type: ignore[assignment]
    _logo_url = LOGO_URL

    username: str | None = Field(default=None, description="Salesforce username (password login).")
    password: SecretStr | None = Field(default=None, description="Salesforce password.")
    security_token: SecretStr | None = Field(
        default=None, description="Security token appended to the password by Salesforce."
    )
    consumer_key: str | None = Field(default=None, description="Connected app consumer key.")
    consumer_secret: SecretStr | None = Field(
        default=None, description="Connected app consumer secret."
    )
    instance_url: str | None = Field(
        default=None,
        description="Instance URL, e.g. https://acme.my.salesforce.com (with a session id).",
    )
    session_id: SecretStr | None = Field(
        default=None, description="An existing session id or access token."
    )
    domain: str = Field(
        default="login",
        description="'login' for production, 'test' for sandboxes, or a My Domain host.",
    )
    login_url: str | None = Field(
        default=None, description="Full login base URL overriding the domain (proxies, tests)."
    )
    api_version: str = Field(
        default=DEFAULT_API_VERSION, description="REST API version, e.g. 59.0."
    )
    daily_api_allocation: int = Field(
        default=SALESFORCE_DAILY_ALLOCATION,
        ge=2,
        title="Daily API allocation",
        description=(
            "The org's API requests per 24 hours (Setup > Company Information > API "
            "Requests, Last 24 Hours: the maximum). The default, 15,000, is the smallest "
            "allocation of an org with API access: set your org's figure."
        ),
    )
    daily_api_share: float = Field(
        default=SALESFORCE_DAILY_SHARE,
        gt=0,
        le=1,
        title="Share of the daily allocation",
        description=(
            "The part of the daily allocation all of this project's flows together may spend "
            "in any 24 hours, queued on the Prefect server (the rest stays for the org's "
            "other integrations)."
        ),
    )
    org_id: str | None = Field(
        default=None,
        title="Org id",
        description=(
            "The org's id (Setup > Company Information), naming its shared daily budget so "
            "every credentials block of the org shares one. Empty: the login host and user "
            "(or connected app) name it."
        ),
    )

    @model_validator(mode="after")
    def _one_complete_recipe(self) -> SalesforceCredentials:
        password_login = bool(self.username and self.password)
        client_credentials = bool(self.consumer_key and self.consumer_secret)
        session = bool(self.session_id and self.instance_url)
        if not (password_login or client_credentials or session):
            raise ValueError(
                "Salesforce credentials need one complete recipe: username + password "
                "(+ security_token), consumer_key + consumer_secret, or instance_url + session_id."
            )
        return self

    def get_client(self, shared_budget: SharedBudget | None = None) -> SalesforceConnection:
        """Build a new `SalesforceConnection` (logs in on first use; retries in one layer).

        Args:
            shared_budget: Also spend every API request from this budget shared with other
                processes (the flows pass the org's `api_budgets` on the Prefect server).
        """
        return SalesforceConnection(
            username=self.username,
            password=self.password,
            security_token=self.security_token,
            consumer_key=self.consumer_key,
            consumer_secret=self.consumer_secret,
            session_id=self.session_id,
            instance_url=self.instance_url,
            domain=self.domain,
            login_url=self.login_url,
            api_version=self.api_version,
            shared_budget=shared_budget,
            budgeted_allocation=self.daily_api_allocation if shared_budget else None,
        )

    def api_budgets(self) -> tuple[ApiBudget, ...]:
        """The org's shared daily budget (a Prefect global concurrency limit named by a
        digest of the org id, or of the login host and user; never a secret)."""
        return salesforce_budgets(
            self._org(), daily_allocation=self.daily_api_allocation, share=self.daily_api_share
        )

    def _org(self) -> str:
        if self.org_id:
            # 15- and 18-character ids of one org name one budget.
            return f"org\0{self.org_id.strip()[:15]}"
        host = self.instance_url or self.login_url or self.domain
        user = self.username or self.consumer_key or ""
        return f"login\0{host.rstrip('/').lower()}\0{user.lower()}"
