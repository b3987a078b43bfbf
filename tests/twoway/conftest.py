"""Fixtures for the two-way sync tests: connections to the loopback sandboxes."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.salesforce import SalesforceConnection
from connectors.sheets import SheetsConnection
from sandbox.salesforce.fixtures import SalesforceSandbox
from sandbox.sheets.fixtures import SheetsSandbox


@pytest.fixture
def sf_conn(salesforce_sandbox: SalesforceSandbox) -> SalesforceConnection:
    kwargs: dict[str, Any] = salesforce_sandbox.connection_kwargs()
    return SalesforceConnection(**kwargs)


@pytest.fixture
def sheets_conn(sheets_sandbox: SheetsSandbox) -> SheetsConnection:
    return SheetsConnection(api_base_url=sheets_sandbox.url, access_token="tester")
