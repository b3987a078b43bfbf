"""Fixtures of the ColdSend client tests: a client on a mock transport, and the real emulator."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from connectors.coldsend import ColdSendClient

from ._helpers import API_KEY, BASE_URL, Handler, Recorder


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_client(recorder: Recorder) -> Iterator[Callable[..., ColdSendClient]]:
    """Build a client whose requests go to `handler`, with fake time; closed after the test."""
    made: list[ColdSendClient] = []

    def make(handler: Handler, **kwargs: Any) -> ColdSendClient:
        def record(request: httpx.Request) -> httpx.Response:
            request.read()
            recorder.requests.append(request)
            recorder.keys_seen.append(request.headers.get("x-api-key"))
            return handler(request)

        options: dict[str, Any] = {
            "base_url": BASE_URL,
            "transport": httpx.MockTransport(record),
            "sleep": recorder.sleep,
            "clock": recorder.clock,
            "rng": random.Random(7),
        }
        options.update(kwargs)
        client = ColdSendClient(API_KEY, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
