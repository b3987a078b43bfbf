"""Loading credentials and lead stores for flows, with errors a person can act on."""

from __future__ import annotations

from typing import cast

from prefect.blocks.core import Block

from blocks.coldsend import ColdSendCredentials
from blocks.leads import LeadStore

__all__ = ["ConfigurationError", "load_coldsend", "load_lead_store"]


class ConfigurationError(ValueError):
    """Missing or wrong credentials or configuration; the message says what to do."""


def load_coldsend(block_name: str | None) -> ColdSendCredentials:
    """ColdSend credentials from a saved block, else from the environment, else a clear error.

    Args:
        block_name: A ColdSend Credentials block name (``"prod"`` or
            ``"coldsend-credentials/prod"``); None means COLDSEND_API_KEY, then a block named
            ``default``.
    """
    if block_name:
        name = block_name.removeprefix("coldsend-credentials/")
        try:
            return cast(ColdSendCredentials, ColdSendCredentials.load(name))
        except ValueError as exc:
            raise ConfigurationError(
                f"No ColdSend Credentials block named {name!r}. Create one in the UI or with "
                f"ColdSendCredentials(api_key=...).save({name!r})."
            ) from exc
    from_env = ColdSendCredentials.from_env()
    if from_env is not None:
        return from_env
    try:
        return cast(ColdSendCredentials, ColdSendCredentials.load("default"))
    except ValueError:
        raise ConfigurationError(
            "No ColdSend credentials: set COLDSEND_API_KEY (and COLDSEND_BASE_URL for a "
            "non-default endpoint), save a ColdSend Credentials block named 'default', or pass "
            "the name of one."
        ) from None


def load_lead_store(name: str) -> LeadStore:
    """A saved lead store block by ``"<block-type-slug>/<name>"`` (e.g. ``salesforce-leads/acme``)."""
    if "/" not in name:
        raise ConfigurationError(
            f"Lead store {name!r} must be written as '<block type>/<block name>', for example "
            "'salesforce-leads/acme', 'google-sheet-leads/events' or 'csv-file-leads/import'."
        )
    try:
        block = Block.load(name)
    except ValueError as exc:
        raise ConfigurationError(f"No saved lead store {name!r}: {exc}") from exc
    if not isinstance(block, LeadStore):
        raise ConfigurationError(
            f"Block {name!r} is a {type(block).__name__}, not a lead store (Salesforce Leads, "
            "Google Sheet Leads or CSV File Leads)."
        )
    return block
