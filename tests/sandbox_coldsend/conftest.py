"""Fixtures for the ColdSend emulator tests: the shared sandbox fixtures plus an API client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.coldsend.fixtures import ColdSendControl, ColdSendServer


@pytest.fixture(scope="session")
def _admin_client(coldsend_server: ColdSendServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=coldsend_server.base_url,
        headers={"X-API-Key": coldsend_server.admin_key},
        timeout=30.0,
    ) as client:
        yield client


@pytest.fixture
def api(coldsend_sandbox: ColdSendControl, _admin_client: httpx.Client) -> httpx.Client:
    """An httpx client on the API base URL with the admin key, on a freshly reset sandbox."""
    return _admin_client
