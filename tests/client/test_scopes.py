"""Scope probes in the connector layer: a granted scope answers 404, a missing one 403."""

from __future__ import annotations

import pytest

from connectors.coldsend import ColdSendClient, PermissionDeniedError
from connectors.coldsend.scopes import ScopeMemory, probe_scope, scope_granted, verify_scopes
from sandbox.coldsend.fixtures import ColdSendControl


def _requests(sandbox: ColdSendControl) -> int:
    return sum(sandbox.stats()["requests"].values())


def test_probes_change_nothing_and_a_missing_scope_names_what_the_key_has(
    coldsend_sandbox: ColdSendControl,
) -> None:
    key = coldsend_sandbox.new_key(["campaigns:read", "leads:read"])
    clock = [0.0]
    memory = ScopeMemory(seconds=600, clock=lambda: clock[0])
    with ColdSendClient(key, base_url=coldsend_sandbox.base_url, max_retries=0) as client:
        verify_scopes(client, ["campaigns:read", "leads:read"], memory=memory)
        coldsend_sandbox.reset_stats()
        verify_scopes(client, ["campaigns:read", "leads:read"], memory=memory)
        assert _requests(coldsend_sandbox) == 0  # remembered
        clock[0] = 601.0
        verify_scopes(client, ["leads:read"], memory=memory)
        assert _requests(coldsend_sandbox) == 1  # forgotten after the window: probed again
        with pytest.raises(PermissionDeniedError) as info:
            verify_scopes(client, ["leads:create"], memory=memory)
        assert sorted(info.value.granted) == ["campaigns:read", "leads:read"]
        assert probe_scope(client, "campaigns:create") is False  # no harmless probe exists
        assert client.list_campaigns(limit=1).pagination.total == 0


@pytest.mark.parametrize(
    ("granted", "required", "ok"),
    [
        (["leads:create"], "leads:create", True),
        (["*"], "campaigns:update", True),
        (["leads:all"], "leads:delete", True),
        (["campaigns:write"], "campaigns:update", True),
        (["campaigns:write"], "campaigns:read", False),
        (["leads:read"], "leads:create", False),
    ],
)
def test_scope_granted(granted: list[str], required: str, ok: bool) -> None:
    assert scope_granted(granted, required) is ok
