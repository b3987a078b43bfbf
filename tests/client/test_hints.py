"""The fix named in the error when the base URL is wrong: nothing listening, or no API path."""

from __future__ import annotations

import socket

import pytest

from connectors.coldsend import APIConnectionError, ColdSendClient, NotFoundError
from sandbox.coldsend.fixtures import ColdSendControl


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_closed_port_says_nothing_answers_there() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api/public/v1"
    with (
        ColdSendClient("cs_live_x", base_url=url, max_retries=0) as client,
        pytest.raises(APIConnectionError) as info,
    ):
        client.list_campaigns(limit=1)
    message = str(info.value)
    assert "Nothing answers at http://127.0.0.1:" in message
    assert "COLDSEND_BASE_URL" in message and "prefect-coldsend sandbox" in message


def test_a_base_url_without_the_api_path_says_which_url_to_use(
    coldsend_sandbox: ColdSendControl,
) -> None:
    root = coldsend_sandbox.base_url.removesuffix("/api/public/v1")
    key = coldsend_sandbox.new_key(["campaigns:read"])
    with ColdSendClient(key, base_url=root) as client, pytest.raises(NotFoundError) as info:
        client.list_campaigns(limit=1)
    assert f"use {root}/api/public/v1" in str(info.value)
    # With the right URL, a 404 carries no such hint.
    with (
        ColdSendClient(key, base_url=coldsend_sandbox.base_url) as client,
        pytest.raises(NotFoundError) as info,
    ):
        client.get_campaign("00000000-0000-0000-0000-000000000000")
    assert "does not end in" not in str(info.value)
