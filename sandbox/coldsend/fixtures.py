"""pytest fixtures that run the ColdSend emulator on loopback: ``from sandbox.coldsend.fixtures import *``.

`coldsend_server` starts one emulator per test session; `coldsend_sandbox` resets it before
each test (data, faults, job settings, stats), lifts the rate limits out of the way and hands
out a `ColdSendControl` that drives the ``/_sandbox/`` control surface over HTTP.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from sandbox._server import RunningServer, start_server
from sandbox.coldsend.app import ColdSendApp, create_app
from sandbox.coldsend.models import API_PREFIX

__all__ = ["ColdSendControl", "ColdSendServer", "coldsend_sandbox", "coldsend_server"]

GENEROUS_PER_MINUTE = 1_000_000
GENEROUS_PER_HOUR = 10_000_000


@dataclass
class ColdSendServer:
    """A running emulator.

    Attributes:
        root_url: e.g. ``http://127.0.0.1:54321`` (the control surface lives under it).
        base_url: The API base URL, ``root_url + "/api/public/v1"``.
        admin_key: API key with scope ``*``; survives resets.
        app: The ASGI app (``app.sandbox`` gives in-process access to state).
    """

    root_url: str
    base_url: str
    admin_key: str = field(repr=False)
    app: ColdSendApp = field(repr=False)
    running: RunningServer = field(repr=False)
    control: ColdSendControl = field(init=False, repr=False)


class ColdSendControl:
    """Test-side handle on a running emulator; every call goes over HTTP to ``/_sandbox/``.

    Example:
        >>> def test_sync(coldsend_sandbox):  # doctest: +SKIP
        ...     key = coldsend_sandbox.new_key(["campaigns:all", "leads:all"])
        ...     client = MyClient(base_url=coldsend_sandbox.base_url, api_key=key)
    """

    def __init__(self, server: ColdSendServer) -> None:
        self.server = server
        self.root_url = server.root_url
        self.base_url = server.base_url
        self.admin_key = server.admin_key
        self._http = httpx.Client(base_url=f"{server.root_url}/_sandbox", timeout=60.0)

    def __repr__(self) -> str:
        return f"ColdSendControl(root_url={self.root_url!r})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def new_key(self, scopes: list[str], name: str | None = None) -> str:
        """Create an API key with `scopes` (e.g. ``["leads:all"]``, ``["*"]``) and return it."""
        key: str = self._call("POST", "/keys", {"scopes": scopes, "name": name})["api_key"]
        return key

    def reset(self) -> None:
        """Wipe data (not the admin key) and restore default limits, faults and job settings."""
        self._call("POST", "/reset")

    def set_limits(
        self,
        per_minute: int | None = None,
        per_hour: int | None = None,
        retry_after_header: bool | None = None,
    ) -> dict[str, Any]:
        """Change rate limits; arguments left as None keep their value."""
        body = {
            "per_minute": per_minute,
            "per_hour": per_hour,
            "retry_after_header": retry_after_header,
        }
        result: dict[str, Any] = self._call(
            "PUT", "/limits", {k: v for k, v in body.items() if v is not None}
        )
        return result

    def set_faults(self, **kwargs: Any) -> dict[str, Any]:
        """Replace the fault config (`sandbox._faults.FaultConfig` fields); no kwargs = none."""
        result: dict[str, Any] = self._call("PUT", "/faults", kwargs)
        return result

    def set_jobs(
        self,
        rows_per_second: float | None = None,
        fail_rate: float | None = None,
        stall_rate: float | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Change upload job speed and injected failures/stalls; None keeps a value."""
        body = {
            "rows_per_second": rows_per_second,
            "fail_rate": fail_rate,
            "stall_rate": stall_rate,
            "seed": seed,
        }
        result: dict[str, Any] = self._call(
            "PUT", "/jobs", {k: v for k, v in body.items() if v is not None}
        )
        return result

    def advance(self, steps: int = 1) -> dict[str, Any]:
        """Run the send simulation `steps` times; per-campaign lead counts by status."""
        result: dict[str, Any] = self._call("POST", "/advance", {"steps": steps})
        return result

    def set_lead_status(self, campaign_id: str, email: str, status: str) -> dict[str, Any]:
        """Force one lead's status (e.g. ``UNSUBSCRIBED``); returns the lead."""
        body = {"campaign_id": campaign_id, "email": email, "status": status}
        result: dict[str, Any] = self._call("PUT", "/leads/status", body)
        return result

    def add_reply(
        self,
        campaign_id: str,
        email: str,
        body: str,
        *,
        subject: str | None = None,
        received_at: str | None = None,
        is_auto_reply: bool = False,
    ) -> dict[str, Any]:
        """A reply from the lead arrives (the lead becomes REPLIED); returns the lead detail."""
        payload: dict[str, Any] = {"campaign_id": campaign_id, "email": email, "body": body}
        if subject is not None:
            payload["subject"] = subject
        if received_at is not None:
            payload["received_at"] = received_at
        if is_auto_reply:
            payload["is_auto_reply"] = True
        result: dict[str, Any] = self._call("POST", "/replies", payload)
        return result

    def stats(self) -> dict[str, Any]:
        """``{"requests": {"<METHOD> <route>": n}, "total": n, "rate_limited": n}`` (/api/ only)."""
        result: dict[str, Any] = self._call("GET", "/stats")
        return result

    def reset_stats(self) -> None:
        """Zero the request counters."""
        self._call("POST", "/stats/reset")


def _disable_nagle(running: RunningServer) -> None:
    """Set TCP_NODELAY on the listening socket (accepted connections inherit it on Linux).

    asyncio only sets it itself for sockets created with ``proto=IPPROTO_TCP``; without it
    every response written in two parts (headers, body) waits ~40 ms for a delayed ACK.
    """
    for server in getattr(running._server, "servers", []):
        for sock in server.sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@pytest.fixture(scope="session")
def coldsend_server() -> Iterator[ColdSendServer]:
    """One ColdSend emulator for the whole test session."""
    app = create_app()
    running = start_server(app)
    _disable_nagle(running)
    server = ColdSendServer(
        root_url=running.url,
        base_url=f"{running.url}{API_PREFIX}",
        admin_key=app.sandbox.admin_key,
        app=app,
        running=running,
    )
    # One control client per session: building an httpx client costs ~25 ms (TLS context).
    server.control = ColdSendControl(server)
    yield server
    server.control.close()
    running.stop()


@pytest.fixture
def coldsend_sandbox(coldsend_server: ColdSendServer) -> ColdSendControl:
    """The session's emulator, freshly reset, with rate limits lifted out of the way."""
    control = coldsend_server.control
    control.reset()
    control.set_limits(per_minute=GENEROUS_PER_MINUTE, per_hour=GENEROUS_PER_HOUR)
    return control
