"""pytest fixtures for the Salesforce emulator: one server per session, state reset per test.

Use with ``from sandbox.salesforce.fixtures import *`` in a conftest.py. The sandbox imports
nothing from `connectors`, so instead of a ready connection the helper offers
`SalesforceSandbox.connection_kwargs`, the keyword arguments for
``connectors.salesforce.SalesforceConnection(**kwargs)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
import requests

from sandbox._server import RunningServer, start_server
from sandbox.salesforce.app import SalesforceSandboxApp, create_app

__all__ = ["SalesforceSandbox", "salesforce_sandbox", "salesforce_sandbox_server"]


@dataclass
class SalesforceSandbox:
    """A handle on a running emulator: where it is, how to log in, and its control surface."""

    url: str
    client_id: str
    client_secret: str = field(repr=False)
    username: str
    password: str = field(repr=False)
    security_token: str = field(repr=False)
    http: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        self.http.trust_env = False

    def _control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.url}/_sandbox/{path}", timeout=60, **kwargs)
        response.raise_for_status()
        return response.json()

    def token(self) -> str:
        """A fresh access token (valid for the configured token TTL)."""
        return str(self._control("POST", "token")["access_token"])

    def connection_kwargs(
        self,
        auth: Literal[
            "client_credentials", "password", "oauth_password", "session"
        ] = "client_credentials",
    ) -> dict[str, Any]:
        """Keyword arguments for ``SalesforceConnection`` logging in to this emulator."""
        if auth == "client_credentials":
            return {
                "consumer_key": self.client_id,
                "consumer_secret": self.client_secret,
                "login_url": self.url,
            }
        if auth == "password":
            return {
                "username": self.username,
                "password": self.password,
                "security_token": self.security_token,
                "login_url": self.url,
            }
        if auth == "oauth_password":
            return {
                "username": self.username,
                "password": self.password,
                "security_token": self.security_token,
                "consumer_key": self.client_id,
                "consumer_secret": self.client_secret,
                "login_url": self.url,
            }
        return {"session_id": self.token(), "instance_url": self.url}

    def seed(
        self, count: int, *, object: str = "Lead", seed: int = 0, bad_every: int | None = None
    ) -> list[str]:
        """Insert `count` deterministic synthetic records; returns their Ids in modstamp order.

        With `bad_every=k`, every k-th record has an invalid, missing or duplicate email.
        """
        body = {"object": object, "count": count, "seed": seed, "bad_every": bad_every}
        return list(self._control("POST", "seed", json=body)["ids"])

    def insert(self, records: list[dict[str, Any]], *, object: str = "Lead") -> list[str]:
        """Insert records as given (timestamps may be set); returns their Ids."""
        return list(
            self._control("POST", "records", json={"object": object, "records": records})["ids"]
        )

    def delete(self, record_id: str, *, object: str = "Lead") -> None:
        """Delete one record through the REST API (as a user removing it from the CRM)."""
        response = self.http.delete(
            f"{self.url}/services/data/v59.0/sobjects/{object}/{record_id}",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=60,
        )
        response.raise_for_status()

    def records(self, object: str = "Lead") -> list[dict[str, Any]]:
        """Every record of `object`, ordered by Id, as the REST API shows them."""
        return list(self._control("GET", f"records/{object}"))

    def by_id(self, object: str = "Lead") -> dict[str, dict[str, Any]]:
        """`records` keyed by Id."""
        return {r["Id"]: r for r in self.records(object)}

    def set_limits(
        self,
        *,
        daily_limit: int | None = None,
        token_ttl_seconds: float | None = None,
        used: int | None = None,
    ) -> dict[str, Any]:
        """Change the daily allocation, requests already used today, or token lifetime."""
        body = {
            k: v
            for k, v in {
                "daily_limit": daily_limit,
                "token_ttl_seconds": token_ttl_seconds,
                "used": used,
            }.items()
            if v is not None
        }
        return dict(self._control("PUT", "limits", json=body))

    def expire_tokens(self) -> None:
        """Invalidate every issued access token (the next API call answers 401)."""
        self._control("POST", "expire-tokens")

    def set_faults(self, **config: Any) -> dict[str, Any]:
        """Configure fault injection (see `sandbox._faults.FaultConfig`)."""
        return dict(self._control("PUT", "faults", json=config))

    def stats(self) -> dict[str, Any]:
        """``{"requests": {"<METHOD> <route>": n}, "total": n, "api_usage": n}`` since reset."""
        return dict(self._control("GET", "stats"))

    def reset_stats(self) -> None:
        """Zero the request counters (records and limits unchanged)."""
        self._control("POST", "stats/reset")

    def reset(self) -> None:
        """Delete records, jobs, tokens and counters; restore limits and faults."""
        self._control("POST", "reset")


@pytest.fixture(scope="session")
def salesforce_sandbox_server() -> Iterator[tuple[RunningServer, SalesforceSandboxApp]]:
    """One emulator for the whole test session."""
    app = create_app()
    server = start_server(app)
    try:
        yield server, app
    finally:
        server.stop()


@pytest.fixture
def salesforce_sandbox(
    salesforce_sandbox_server: tuple[RunningServer, SalesforceSandboxApp],
) -> Iterator[SalesforceSandbox]:
    """The session's emulator, reset before each test."""
    server, app = salesforce_sandbox_server
    state = app.state
    sandbox = SalesforceSandbox(
        url=server.url,
        client_id=state.client_id,
        client_secret=state.client_secret,
        username=state.username,
        password=state.password,
        security_token=state.security_token,
    )
    sandbox.reset()
    try:
        yield sandbox
    finally:
        sandbox.http.close()
