"""All four emulators together on loopback: the demo's and `prefect-coldsend sandbox`'s backend.

State can live in a directory (SQLite files plus the generated credentials), so a second start
finds the same campaigns, records, contacts and spreadsheets.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sandbox._server import RunningServer, start_server
from sandbox.coldsend import create_app as create_coldsend_app
from sandbox.hubspot import create_app as create_hubspot_app
from sandbox.salesforce import create_app as create_salesforce_app
from sandbox.sheets import create_app as create_sheets_app

__all__ = ["SandboxStack", "start_stack"]

COLDSEND_API_PREFIX = "/api/public/v1"


@dataclass
class SandboxStack:
    """Four running emulators and what it takes to connect to them."""

    coldsend: RunningServer
    salesforce: RunningServer
    sheets: RunningServer
    hubspot: RunningServer
    coldsend_admin_key: str = field(repr=False)
    salesforce_client_id: str
    salesforce_client_secret: str = field(repr=False)
    hubspot_token: str = field(repr=False)
    state_dir: Path | None = None
    salesforce_username: str = "user@sandbox.example"
    salesforce_password: str = field(default="", repr=False)
    salesforce_security_token: str = field(default="", repr=False)

    @property
    def coldsend_base_url(self) -> str:
        return self.coldsend.url + COLDSEND_API_PREFIX

    @property
    def salesforce_url(self) -> str:
        return self.salesforce.url

    @property
    def sheets_url(self) -> str:
        return self.sheets.url

    @property
    def hubspot_url(self) -> str:
        return self.hubspot.url

    def client_snippet(self) -> str:
        """Python lines giving users' own code the real clients on these sandboxes."""
        return "\n".join(
            [
                "from sandbox.clients import hubspot_client, salesforce_client, sheets_client",
                f"sf = salesforce_client({self.salesforce_url!r}, "
                f"username={self.salesforce_username!r}, password={self.salesforce_password!r}, "
                f"security_token={self.salesforce_security_token!r})",
                f"gc = sheets_client({self.sheets_url!r})",
                f"hs = hubspot_client({self.hubspot_url!r}, access_token={self.hubspot_token!r})",
            ]
        )

    def control(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        """Call an emulator's ``/_sandbox/`` control surface and return the JSON answer."""
        root = {
            "coldsend": self.coldsend,
            "salesforce": self.salesforce,
            "sheets": self.sheets,
            "hubspot": self.hubspot,
        }[service].url
        with httpx.Client(timeout=120.0, trust_env=False) as http:
            response = http.request(method, f"{root}/_sandbox/{path.lstrip('/')}", **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def create_coldsend_key(self, scopes: list[str], name: str | None = None) -> str:
        """A new ColdSend API key with exactly these scopes."""
        body = {"scopes": scopes, "name": name}
        return str(self.control("coldsend", "POST", "keys", json=body)["api_key"])

    def advance_sending(self, steps: int = 1) -> dict[str, Any]:
        """Move the simulated sending of every ACTIVE campaign forward by `steps` stages."""
        return dict(self.control("coldsend", "POST", "advance", json={"steps": steps}))

    def set_latency(self, latency_ms: float) -> None:
        """Inject the same latency into every API request of the four emulators."""
        for service in ("coldsend", "salesforce", "sheets", "hubspot"):
            self.control(service, "PUT", "faults", json={"latency_ms": latency_ms})

    def stop(self) -> None:
        for server in (self.coldsend, self.salesforce, self.sheets, self.hubspot):
            server.stop()


def _load_secrets(state_dir: Path | None) -> dict[str, str]:
    generated = {
        "coldsend_admin_key": "cs_live_" + secrets.token_urlsafe(24),
        "salesforce_client_secret": secrets.token_urlsafe(24),
        "hubspot_token": "pat-sandbox-" + secrets.token_urlsafe(24),
        "salesforce_password": secrets.token_urlsafe(12),
        "salesforce_security_token": secrets.token_hex(12),
    }
    if state_dir is None:
        return generated
    path = state_dir / "sandbox-credentials.json"
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        merged = {**generated, **stored}
        if merged != stored:
            # A state directory from before an emulator was added: keep its new secret too.
            path.write_text(json.dumps(merged, indent=2), encoding="utf-8")
        return merged
    path.write_text(json.dumps(generated, indent=2), encoding="utf-8")
    path.chmod(0o600)
    return generated


def start_stack(
    *,
    state_dir: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    coldsend_per_minute: int = 100,
    coldsend_per_hour: int = 1000,
) -> SandboxStack:
    """Start the ColdSend, Salesforce, Sheets and HubSpot emulators in background threads.

    Args:
        state_dir: Keep state here across restarts (in memory when None).
        host: Interface to bind (loopback by default).
        port: ColdSend's port; Salesforce, Sheets and HubSpot take the next three. 0 picks
            free ports.
        coldsend_per_minute / coldsend_per_hour: ColdSend's rate limits (the real ones by default).
    """
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
    creds = _load_secrets(state_dir)

    def db(name: str) -> str | None:
        return str(state_dir / name) if state_dir is not None else None

    coldsend_app = create_coldsend_app(
        db_path=db("coldsend.db"),
        admin_key=creds["coldsend_admin_key"],
        per_minute=coldsend_per_minute,
        per_hour=coldsend_per_hour,
    )
    salesforce_app = create_salesforce_app(
        db_path=db("salesforce.db"),
        client_secret=creds["salesforce_client_secret"],
        password=creds["salesforce_password"],
        security_token=creds["salesforce_security_token"],
    )
    sheets_app = create_sheets_app(db_path=db("sheets.db"))
    hubspot_app = create_hubspot_app(db_path=db("hubspot.db"), token=creds["hubspot_token"])
    started: list[RunningServer] = []
    try:
        for offset, app in enumerate((coldsend_app, salesforce_app, sheets_app, hubspot_app)):
            started.append(start_server(app, host=host, port=port + offset if port else 0))
    except BaseException:
        for server in started:
            server.stop()
        raise
    return SandboxStack(
        coldsend=started[0],
        salesforce=started[1],
        sheets=started[2],
        hubspot=started[3],
        coldsend_admin_key=creds["coldsend_admin_key"],
        salesforce_client_id="sandbox-client",
        salesforce_client_secret=creds["salesforce_client_secret"],
        hubspot_token=creds["hubspot_token"],
        state_dir=state_dir,
        salesforce_username=salesforce_app.state.username,
        salesforce_password=creds["salesforce_password"],
        salesforce_security_token=creds["salesforce_security_token"],
    )
