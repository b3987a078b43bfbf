"""Fixtures for the HubSpot connector tests: the loopback emulator and real connections to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.hubspot import HubSpotConnection, HubSpotLimits
from sandbox.hubspot.fixtures import HubSpotSandbox

ConnectionFactory = Callable[..., HubSpotConnection]
FAST = HubSpotLimits(per_ten_seconds=100_000, searches_per_second=100_000)


class FakeTime:
    """A clock that moves only when slept (tests of pacing and retry waits)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def connect(hubspot_sandbox: HubSpotSandbox) -> ConnectionFactory:
    """Build a real `HubSpotConnection` (hubspot-api-client) to the emulator."""

    def make(**overrides: Any) -> HubSpotConnection:
        kwargs: dict[str, Any] = {
            "access_token": hubspot_sandbox.token,
            "base_url": hubspot_sandbox.url,
            "limits": FAST,
        }
        return HubSpotConnection(**{**kwargs, **overrides})

    return make


@pytest.fixture
def conn(connect: ConnectionFactory) -> HubSpotConnection:
    return connect()
