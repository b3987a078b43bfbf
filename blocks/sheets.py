"""Google Sheets credentials: a service account's key as a secret; builds a fresh gspread client."""

from __future__ import annotations

import gspread
from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import Field, SecretStr

from blocks._logo import LOGO_URL
from blocks.budgets import ApiBudget, sheets_budgets
from connectors.sheets import GOOGLE_SHEETS_API, SheetsConnection

__all__ = ["GoogleSheetsCredentials"]


class GoogleSheetsCredentials(Block):
    """Credentials for the Google Sheets API.

    Give the JSON key of a service account (share the spreadsheet with its email address), or
    an OAuth access token. The key is stored as a secret and never logged. `get_client` builds
    a new gspread client on every call.

    Example:
        ```python
        from blocks import GoogleSheetsCredentials

        sheets = GoogleSheetsCredentials.load("BLOCK_NAME")
        client = sheets.get_client()
        print(client.open_by_key("1AbC...").title)
        ```
    """

    _block_type_name = "Google Sheets Credentials"
    _block_type_slug = "google-sheets-credentials"
    _description = "Service-account key (or access token) for the Google Sheets API."
    _documentation_url = "https://github.com/prefect-coldsend/prefect-coldsend#blocks"  # type: ignore[assignment]
    _logo_url = LOGO_URL

    service_account_info: SecretDict | None = Field(
        default=None,
        title="Service account info",
        description="The JSON key file Google issues for a service account, as an object.",
    )
    access_token: SecretStr | None = Field(
        default=None, description="An OAuth access token, instead of a service account."
    )
    api_base_url: str = Field(
        default=GOOGLE_SHEETS_API,
        title="API base URL",
        description="Root of the Sheets API; change it only for a proxy or the sandbox.",
    )

    def get_client(self) -> gspread.Client:
        """Build a new `gspread.Client` (the connector does bounded retries and pacing)."""
        return SheetsConnection(
            service_account_info=(
                self.service_account_info.get_secret_value() if self.service_account_info else None
            ),
            access_token=self.access_token.get_secret_value() if self.access_token else None,
            api_base_url=self.api_base_url,
        ).client()

    def api_budgets(self) -> tuple[ApiBudget, ...]:
        """The Google user's shared request budget (a Prefect global concurrency limit named
        by a digest of the service account's email or the token, never the key)."""
        return sheets_budgets(self._user())

    def _user(self) -> str:
        """Who Google counts the requests of: quotas are per user (the service account)."""
        if self.service_account_info is not None:
            info = self.service_account_info.get_secret_value()
            email = info.get("client_email") if isinstance(info, dict) else None
            if email:
                return f"service-account\0{email}"
        if self.access_token is not None:
            return f"token\0{self.access_token.get_secret_value()}"
        # No credentials (the sandbox, a proxy adding its own): one user per endpoint.
        return f"anonymous\0{self.api_base_url}"
