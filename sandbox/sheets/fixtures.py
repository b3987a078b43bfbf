"""pytest fixtures for the Sheets emulator: one server per session, state reset for every test.

Use from a conftest.py::

    from sandbox.sheets.fixtures import sheets_sandbox, sheets_server  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import gspread
import pytest
import requests

from sandbox._server import RunningServer, start_server
from sandbox.clients import GOOGLE_APIS, sandbox_session, sheets_client
from sandbox.sheets.app import create_app

__all__ = ["GOOGLE_SHEETS_BASE", "SheetsSandbox", "sheets_sandbox", "sheets_server"]

GOOGLE_SHEETS_BASE = "https://sheets.googleapis.com"


class SheetsSandbox:
    """A handle on a running emulator: seed spreadsheets, inspect values, writes and stats."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._http = requests.Session()
        self._http.trust_env = False

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, self.url + path, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Forget every spreadsheet, write record, stat, limit change and fault."""
        self._call("POST", "/_sandbox/reset")

    def create_spreadsheet(
        self, title: str = "Leads", sheets: dict[str, list[list[Any]]] | None = None
    ) -> str:
        """Create a spreadsheet with the given worksheets (name -> rows); returns its id."""
        body = {"title": title, "sheets": sheets if sheets is not None else {"Sheet1": []}}
        return str(self._call("POST", "/_sandbox/spreadsheets", json=body)["spreadsheet_id"])

    def values(self, spreadsheet_id: str, sheet: str = "Sheet1") -> list[list[Any]]:
        """The stored cells of a worksheet, as stored (formulas as ``{"formula": "=..."}``)."""
        return list(self.sheet_info(spreadsheet_id, sheet)["values"])

    def sheet_info(self, spreadsheet_id: str, sheet: str = "Sheet1") -> dict[str, Any]:
        """Grid size and id of a worksheet along with its values."""
        return dict(
            self._call(
                "GET",
                f"/_sandbox/spreadsheets/{spreadsheet_id}/values/{quote(sheet, safe='')}",
            )
        )

    def writes(self) -> list[dict[str, Any]]:
        """One record per range written: request, api, range, valueInputOption, cells."""
        return list(self._call("GET", "/_sandbox/writes")["writes"])

    def set_limits(
        self,
        *,
        reads_per_minute: int | None = 60,
        writes_per_minute: int | None = 60,
        window_seconds: float = 60.0,
    ) -> None:
        """Change the per-user quotas (None lifts one) and start fresh windows."""
        self._call(
            "PUT",
            "/_sandbox/limits",
            json={
                "reads_per_minute": reads_per_minute,
                "writes_per_minute": writes_per_minute,
                "window_seconds": window_seconds,
            },
        )

    def set_faults(self, **config: Any) -> None:
        """Configure `sandbox._faults.FaultConfig` (latency_ms, error_rate, drop_rate, ...)."""
        self._call("PUT", "/_sandbox/faults", json=config)

    def stats(self) -> dict[str, int]:
        """Requests received per ``"<METHOD> <route>"`` and in ``total``; ``rate_limited``
        counts answers of 429 (quota spent), present once there was one."""
        return dict(self._call("GET", "/_sandbox/stats"))

    def reset_stats(self) -> None:
        self._call("POST", "/_sandbox/stats/reset")

    def session(self, token: str | None = None) -> requests.Session:
        """A `requests.Session` that sends Google Sheets (and Drive) calls to the sandbox."""
        session = sandbox_session(self.url, prefixes=GOOGLE_APIS)
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def client(self, token: str | None = None) -> gspread.Client:
        """A real `gspread.Client` wired to the sandbox (token = the user for quotas)."""
        return sheets_client(self.url, user=token)


@pytest.fixture(scope="session")
def sheets_server() -> Iterator[RunningServer]:
    """The emulator, started once per test session."""
    server = start_server(create_app())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sheets_sandbox(sheets_server: RunningServer) -> SheetsSandbox:
    """A handle on the session's emulator, reset before the test."""
    sandbox = SheetsSandbox(sheets_server.url)
    sandbox.reset()
    return sandbox
