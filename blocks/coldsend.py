"""ColdSend credentials: the API key as a secret and the base URL; builds a fresh client each call."""

from __future__ import annotations

import os
from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from blocks._logo import LOGO_URL
from blocks.budgets import ApiBudget, coldsend_budgets
from connectors.coldsend import DEFAULT_BASE_URL, ColdSendClient

__all__ = ["ColdSendCredentials"]

ENV_API_KEY = "COLDSEND_API_KEY"
ENV_BASE_URL = "COLDSEND_BASE_URL"


class ColdSendCredentials(Block):
    """Credentials for the ColdSend public API.

    The key is stored as a secret and never appears in logs, reprs or URLs. `get_client`
    builds a new `ColdSendClient` on every call, so tasks can run on any worker.

    Example:
        Load stored credentials and list campaigns:
        ```python
        from blocks import ColdSendCredentials

        coldsend = ColdSendCredentials.load("BLOCK_NAME")
        with coldsend.get_client() as client:
            for campaign in client.iter_campaigns():
                print(campaign.name, campaign.status)
        ```
    """

    _block_type_name = "ColdSend Credentials"
    _block_type_slug = "coldsend-credentials"
    _description = "API key and base URL for the ColdSend cold-email API."
    _documentation_url = "https://github.com/prefect-coldsend/prefect-coldsend#blocks"  # type: ignore[assignment]
    _logo_url = LOGO_URL

    api_key: SecretStr = Field(
        default=...,
        title="API key",
        description="A ColdSend API key (cs_live_...), sent in the X-API-Key header.",
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        title="Base URL",
        description="Root of the ColdSend public API; change it only for a proxy or the sandbox.",
    )

    def get_client(self, **kwargs: Any) -> ColdSendClient:
        """Build a new `ColdSendClient`; keyword arguments go to its constructor."""
        return ColdSendClient(self.api_key.get_secret_value(), base_url=self.base_url, **kwargs)

    def api_budgets(self) -> tuple[ApiBudget, ...]:
        """The key's shared request budgets (Prefect global concurrency limits, by key digest)."""
        return coldsend_budgets(self.api_key.get_secret_value())

    @classmethod
    def from_env(cls) -> ColdSendCredentials | None:
        """Credentials from COLDSEND_API_KEY (and optional COLDSEND_BASE_URL), if set."""
        key = os.environ.get(ENV_API_KEY, "").strip()
        if not key:
            return None
        return cls(
            api_key=SecretStr(key),
            base_url=os.environ.get(ENV_BASE_URL, "").strip() or DEFAULT_BASE_URL,
        )
