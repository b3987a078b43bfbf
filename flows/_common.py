"""Loading credentials and lead stores for flows, and checking a key's ColdSend scopes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import cast

from prefect.blocks.core import Block

from blocks.coldsend import ColdSendCredentials
from blocks.leads import LeadStore
from connectors.coldsend import ColdSendClient, PermissionDeniedError
from connectors.coldsend.scopes import NIL_CAMPAIGN, scope_granted
from connectors.coldsend.scopes import verify_scopes as probe_scopes
from flows.scope_memory import SCOPE_MEMORY
from flows.scopes import scopes_for

__all__ = [
    "NIL_CAMPAIGN",
    "ConfigurationError",
    "MissingScopes",
    "lead_store_label",
    "load_coldsend",
    "load_lead_store",
    "missing_scopes_error",
    "scope_granted",
    "scopes_checked",
    "verify_scopes",
]


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


def lead_store_label(store: str | LeadStore) -> str:
    """How runs name a lead store: its ``"<block-type>/<name>"``, or for a store given inline
    (not saved: the CLI's --csv, a sync definition) its type and description."""
    if isinstance(store, str):
        return store
    saved = getattr(store, "_block_document_name", None)
    slug = store.get_block_type_slug()
    if saved and not str(saved).startswith("anonymous-"):
        return f"{slug}/{saved}"
    return f"{slug}:{store.describe()}"


def load_lead_store(name: str | LeadStore) -> LeadStore:
    """A saved lead store block by ``"<block-type-slug>/<name>"`` (e.g. ``salesforce-leads/acme``),
    or the store itself when given one (an unsaved block, e.g. from ``--csv``)."""
    if isinstance(name, LeadStore):
        return name
    if name.lower().endswith((".csv", ".tsv", ".txt")):
        raise ConfigurationError(
            f"Lead store {name!r} looks like a file: a lead store is a saved block "
            "('<block type>/<block name>'). For a CSV file use `prefect-coldsend sync --csv "
            f"{name}` (or a csv source in a sync definitions file), or save a CSV File Leads "
            "block."
        )
    if "/" not in name:
        raise ConfigurationError(
            f"Lead store {name!r} must be written as '<block type>/<block name>', for example "
            "'salesforce-leads/acme', 'hubspot-contacts/acme', 'google-sheet-leads/events' or "
            "'csv-file-leads/import'."
        )
    try:
        block = Block.load(name)
    except ValueError as exc:
        raise ConfigurationError(f"No saved lead store {name!r}: {exc}") from exc
    if not isinstance(block, LeadStore):
        raise ConfigurationError(
            f"Block {name!r} is a {type(block).__name__}, not a lead store (Salesforce Leads, "
            "HubSpot Contacts, Google Sheet Leads or CSV File Leads)."
        )
    return block


# -- least privilege -------------------------------------------------------------------------


class MissingScopes(ConfigurationError):
    """The ColdSend API key lacks scopes a flow needs; raised before the flow changes anything.

    Attributes:
        flow: The flow that needs them (a key of `flows.scopes.FLOW_SCOPES`).
        missing: The scopes to add to the key.
        granted: The scopes the key has, as ColdSend reported them.
        when: Why these scopes are needed on this run, for scopes a flow needs only at times
            (the sync's leads:update and leads:delete); "" otherwise.
    """

    def __init__(
        self, flow: str, missing: list[str], granted: list[str], *, when: str = ""
    ) -> None:
        self.flow, self.missing, self.granted = flow, missing, granted
        needs = ", ".join(sorted(scopes_for(flow) | set(missing)))
        super().__init__(
            f"The ColdSend API key lacks the scope(s) {', '.join(missing)} needed by the "
            f"{flow} flow{' ' + when if when else ''} (it needs {needs}; the key has "
            f"{', '.join(granted) or 'none'}). Add them to the key in ColdSend, or use a key "
            "that has them."
        )


def missing_scopes_error(flow: str, denied: PermissionDeniedError) -> MissingScopes:
    """Every scope `flow` needs that the key lacks, from the ``granted`` list of one 403."""
    needed = scopes_for(flow)
    missing = sorted(s for s in needed if not scope_granted(denied.granted, s))
    # A 403 without a granted list (or for a scope outside the table) still names its scope.
    for scope in denied.missing or denied.required:
        if scope not in missing:
            missing.append(scope)
    return MissingScopes(flow, missing, sorted(denied.granted))


@contextmanager
def scopes_checked(flow: str) -> Iterator[None]:
    """Turn a 403 from ColdSend anywhere inside into `MissingScopes` naming every missing scope."""
    try:
        yield
    except PermissionDeniedError as exc:
        raise missing_scopes_error(flow, exc) from None


def verify_scopes(client: ColdSendClient, flow: str, scopes: Iterable[str]) -> None:
    """Probe each of `scopes` (`connectors.coldsend.scopes`); raise `MissingScopes` for `flow`
    at the first 403, naming every scope `flow` lacks, not only the one probed. A scope seen
    granted in the last ten minutes for the same key, by this run or any other of the Prefect
    server (`flows.scope_memory`), is not probed again."""
    with scopes_checked(flow):
        probe_scopes(client, scopes, memory=SCOPE_MEMORY)
