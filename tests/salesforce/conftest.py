"""Fixtures for the Salesforce connector tests: the loopback emulator and connections to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.salesforce import SalesforceConnection
from sandbox.salesforce.fixtures import SalesforceSandbox

ConnectionFactory = Callable[..., SalesforceConnection]


@pytest.fixture
def connect(salesforce_sandbox: SalesforceSandbox) -> ConnectionFactory:
    """Build a real `SalesforceConnection` to the emulator (client credentials by default)."""

    def make(auth: str = "client_credentials", **overrides: Any) -> SalesforceConnection:
        kwargs = salesforce_sandbox.connection_kwargs(auth)  # type: ignore[arg-type]
        return SalesforceConnection(**{**kwargs, **overrides})

    return make


@pytest.fixture
def conn(connect: ConnectionFactory) -> SalesforceConnection:
    """A client-credentials connection to the emulator."""
    return connect()
