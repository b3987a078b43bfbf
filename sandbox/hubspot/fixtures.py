"""pytest fixtures for the HubSpot emulator: one server per session, state reset per test.

Use with ``pytest_plugins = ["sandbox.hubspot.fixtures"]``. The sandbox imports nothing from
`connectors`; `HubSpotSandbox` gives the URL and token to build a
``connectors.hubspot.HubSpotConnection`` (or a ``hubspot.HubSpot`` client) with.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from sandbox._server import RunningServer, start_server
from sandbox.hubspot.app import HubSpotSandboxApp, create_app

__all__ = ["HubSpotSandbox", "hubspot_sandbox", "hubspot_sandbox_server"]

# Tests raise the limits unless they test them: HubSpot's real 5 searches a second would make
# every incremental read wait.
UNLIMITED = {"ten_second_limit": 1_000_000, "search_per_second": 1_000_000, "daily_limit": 10**9}


@dataclass
class HubSpotSandbox:
    """A handle on a running emulator: its URL, its all-scopes token and its control surface."""

    url: str
    token: str = field(repr=False)
    app: HubSpotSandboxApp = field(repr=False)
    http: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        self.http.trust_env = False

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.url}/_sandbox/{path}", timeout=120, **kwargs)
        response.raise_for_status()
        return response.json()

    def new_token(self, scopes: list[str] | None = None, expires_in: float | None = None) -> str:
        body: dict[str, Any] = {"scopes": scopes}
        if expires_in is not None:
            body["expires_in_seconds"] = expires_in
        return str(self.control("POST", "tokens", json=body)["token"])

    def seed(self, count: int, **kwargs: Any) -> dict[str, Any]:
        return dict(self.control("POST", "seed", json={"count": count, **kwargs}))

    def add_contacts(self, contacts: list[dict[str, Any]]) -> list[str]:
        return list(self.control("POST", "contacts", json={"contacts": contacts})["ids"])

    def contacts(self) -> dict[str, dict[str, Any]]:
        return {c["hs_object_id"]: c for c in self.control("GET", "contacts")}

    def emails(self) -> list[dict[str, Any]]:
        """Every email engagement: id, properties and the contact ids it is associated with."""
        return list(self.control("GET", "emails"))

    def set_limits(self, **limits: Any) -> dict[str, Any]:
        return dict(self.control("PUT", "limits", json=limits))

    def stats(self) -> dict[str, Any]:
        return dict(self.control("GET", "stats"))

    def reset_stats(self) -> None:
        self.control("POST", "stats/reset")


@pytest.fixture(scope="session")
def hubspot_sandbox_server() -> Iterator[tuple[RunningServer, HubSpotSandboxApp]]:
    """One emulator server for the whole test session."""
    app = create_app()
    server = start_server(app)
    try:
        yield server, app
    finally:
        server.stop()


@pytest.fixture
def hubspot_sandbox(
    hubspot_sandbox_server: tuple[RunningServer, HubSpotSandboxApp],
) -> HubSpotSandbox:
    """The session's emulator, reset: no contacts, default properties, limits lifted."""
    server, app = hubspot_sandbox_server
    sandbox = HubSpotSandbox(url=server.url, token=app.state.default_token, app=app)
    sandbox.control("POST", "reset")
    sandbox.set_limits(**UNLIMITED)
    return sandbox
