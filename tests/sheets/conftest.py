"""Fixtures for the Google Sheets tests: the emulator (one per session) and real gspread clients."""

from __future__ import annotations

import pytest

from connectors.sheets import SheetsConnection
from sandbox.sheets.fixtures import SheetsSandbox

from ._helpers import Sleeps


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def conn(sheets_sandbox: SheetsSandbox) -> SheetsConnection:
    """A connection to the sandbox as user 'tester' (quotas are per user)."""
    return SheetsConnection(api_base_url=sheets_sandbox.url, access_token="tester")
