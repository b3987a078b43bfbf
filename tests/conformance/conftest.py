"""Fixtures for the conformance suites: real client libraries built by `sandbox.clients`."""

from __future__ import annotations

from collections.abc import Iterator

import gspread
import pytest
from simple_salesforce.api import Salesforce

from sandbox.clients import salesforce_client, sheets_client
from sandbox.salesforce.fixtures import SalesforceSandbox
from sandbox.sheets.fixtures import SheetsSandbox


@pytest.fixture
def sf(salesforce_sandbox: SalesforceSandbox) -> Iterator[Salesforce]:
    """simple-salesforce logged in with the printed username, password and security token."""
    client = salesforce_client(
        salesforce_sandbox.url,
        username=salesforce_sandbox.username,
        password=salesforce_sandbox.password,
        security_token=salesforce_sandbox.security_token,
    )
    try:
        yield client
    finally:
        client.session.close()


@pytest.fixture
def gc(sheets_sandbox: SheetsSandbox) -> gspread.Client:
    """gspread on the Sheets sandbox, quotas lifted (the guide's calls are many and quick)."""
    sheets_sandbox.set_limits(reads_per_minute=None, writes_per_minute=None)
    return sheets_client(sheets_sandbox.url, user="conformance")
