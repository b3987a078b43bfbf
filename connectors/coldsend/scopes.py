"""Checking an API key's scopes before changing anything: probes that cannot change a thing.

ColdSend checks scopes before it validates a request or looks its campaign up, so a request
against `NIL_CAMPAIGN` (an id that never exists) answers 404 when the key has the scope and
403 when it lacks it. `verify_scopes` probes each scope once, remembering per key for a few
minutes what was seen granted; the first 403 (a `PermissionDeniedError` carrying the key's
granted scopes) is raised for the caller to explain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from connectors.coldsend.client import ColdSendClient
from connectors.coldsend.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    UnprocessableEntityError,
)

__all__ = [
    "NIL_CAMPAIGN",
    "REMEMBER_SCOPES_SECONDS",
    "ScopeMemory",
    "probe_scope",
    "scope_granted",
    "verify_scopes",
]

# A campaign id that never exists: probes against it can change nothing whatever they send.
NIL_CAMPAIGN = "00000000-0000-0000-0000-000000000000"
REMEMBER_SCOPES_SECONDS = 600.0
_LEGACY_WRITE_ACTIONS = frozenset({"create", "update", "delete", "pause", "activate"})


def scope_granted(granted: Iterable[str], required: str) -> bool:
    """Whether `granted` covers `required`: exact, ``*``, ``resource:all`` or legacy ``:write``."""
    have = set(granted)
    if required in have or "*" in have:
        return True
    resource, _, action = required.partition(":")
    if f"{resource}:all" in have:
        return True
    return action in _LEGACY_WRITE_ACTIONS and f"{resource}:write" in have


def probe_scope(client: ColdSendClient, scope: str) -> bool:
    """Send the cheapest request that needs `scope` and cannot change anything.

    Returns False for scopes without such a request (``campaigns:create``: the create itself
    is then the first change, and its 403 still comes before any).

    Raises:
        PermissionDeniedError: the key lacks `scope`.
    """
    try:
        if scope == "leads:create":
            client.add_lead(NIL_CAMPAIGN, email="scope-check@example.invalid")
        elif scope == "leads:update":
            client.update_lead(NIL_CAMPAIGN, NIL_CAMPAIGN, first_name="scope check")
        elif scope == "leads:delete":
            client.delete_leads(NIL_CAMPAIGN, lead_ids=[NIL_CAMPAIGN])
        elif scope == "campaigns:update":
            client.update_campaign(NIL_CAMPAIGN, name="scope check (never created)")
        elif scope == "leads:read":
            client.get_upload_job(NIL_CAMPAIGN, NIL_CAMPAIGN)
        elif scope == "campaigns:read":
            client.list_campaigns(limit=1)
        elif scope == "sender_accounts:read":
            client.list_inboxes(limit=1)
        else:
            return False
    except (NotFoundError, BadRequestError, UnprocessableEntityError, ConflictError):
        pass
    return True


class ScopeMemory:
    """Scopes a key was seen to have, by key fingerprint, for `seconds` (a key's scopes can
    change in ColdSend at any time). Shared by the stages of one pipeline run and by
    back-to-back runs in one process, so they do not probe the same scope twice."""

    def __init__(
        self,
        seconds: float = REMEMBER_SCOPES_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.clock = clock
        self._seen: dict[tuple[str, str], float] = {}

    def known(self, fingerprint: str, scope: str) -> bool:
        seen = self._seen.get((fingerprint, scope))
        return seen is not None and self.clock() - seen < self.seconds

    def remember(self, fingerprint: str, scope: str, *, age: float = 0.0) -> None:
        """Note `scope` as granted, seen `age` seconds ago (by another process, say)."""
        self._seen[(fingerprint, scope)] = self.clock() - max(age, 0.0)

    def clear(self) -> None:
        self._seen.clear()


DEFAULT_MEMORY = ScopeMemory()


def verify_scopes(
    client: ColdSendClient, scopes: Iterable[str], *, memory: ScopeMemory = DEFAULT_MEMORY
) -> None:
    """Probe each of `scopes` not remembered for this key (see `probe_scope`).

    Raises:
        PermissionDeniedError: at the first scope the key lacks; its ``granted`` list names
            every scope the key has, so callers can name all the missing ones.
    """
    for scope in sorted(scopes):
        if memory.known(client.key_fingerprint, scope):
            continue
        if probe_scope(client, scope):
            memory.remember(client.key_fingerprint, scope)
