"""Salesforce credentials: password, client-credentials or session login; builds a fresh connection."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

from blocks._logo import LOGO_URL
from connectors.salesforce import DEFAULT_API_VERSION, SalesforceConnection

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

    def get_client(self) -> SalesforceConnection:
        """Build a new `SalesforceConnection` (logs in on first use; retries in one layer)."""
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
        )
