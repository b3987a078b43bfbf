"""The three sandboxes for the benchmark, each in its own subprocess, and a thin control client.

Each sandbox runs in a separate process (``python -m bench.sandboxes coldsend``) so that the
process running the integration under test pays only for its own CPU. A server prints one JSON
line with its address and credentials on stdout (never argv) and serves until stdin closes.

`Sandboxes` drives the ``/_sandbox/`` control surfaces over plain HTTP: reset, rate limits lifted,
injected latency, seeding, send simulation and per-route request counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("coldsend", "salesforce", "sheets")
UNLIMITED = 1_000_000_000


def serve(service: str) -> None:
    """Run one sandbox in this process until stdin closes (the subprocess entry point)."""
    from sandbox._server import start_server

    info: dict[str, Any]
    if service == "coldsend":
        from sandbox.coldsend.app import create_app as coldsend_app

        app: Any = coldsend_app(per_minute=UNLIMITED, per_hour=UNLIMITED)
        server = start_server(app)
        info = {"url": server.url, "admin_key": app.sandbox.admin_key}
    elif service == "salesforce":
        from sandbox.salesforce.app import create_app as salesforce_app

        app = salesforce_app(daily_limit=UNLIMITED)
        server = start_server(app)
        state = app.state
        info = {
            "url": server.url,
            "client_id": state.client_id,
            "client_secret": state.client_secret,
        }
    elif service == "sheets":
        from sandbox.sheets.app import create_app as sheets_app

        server = start_server(sheets_app(reads_per_minute=None, writes_per_minute=None))
        info = {"url": server.url}
    elif service == "hubspot":
        # Not one of SERVICES: the HubSpot benchmark (bench/bench_hubspot.py) starts it alone.
        from sandbox.hubspot.app import create_app as hubspot_app

        app = hubspot_app()
        server = start_server(app)
        info = {"url": server.url, "token": app.state.default_token}
    else:
        raise SystemExit(f"unknown sandbox {service!r}; one of {', '.join(SERVICES)}, hubspot")
    print(json.dumps(info), flush=True)
    sys.stdin.read()
    server.stop()


@dataclass
class SandboxInfo:
    """Where the three sandboxes listen and how to log in (secrets kept out of the repr)."""

    coldsend_url: str
    coldsend_key: str = field(repr=False)
    salesforce_url: str
    salesforce_client_id: str
    salesforce_client_secret: str = field(repr=False)
    sheets_url: str

    @property
    def coldsend_base_url(self) -> str:
        return f"{self.coldsend_url}/api/public/v1"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SandboxInfo:
        return cls(**json.loads(text))


@contextmanager
def running_sandboxes() -> Iterator[SandboxInfo]:
    """Start the three sandbox subprocesses; stop them (close their stdin) on exit."""
    with ExitStack() as stack:
        infos: dict[str, dict[str, Any]] = {}
        procs = []
        for service in SERVICES:
            proc = stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.sandboxes", service],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                )
            )
            procs.append((service, proc))
        for service, proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the {service} sandbox did not start")
            infos[service] = json.loads(line)
        try:
            yield SandboxInfo(
                coldsend_url=infos["coldsend"]["url"],
                coldsend_key=infos["coldsend"]["admin_key"],
                salesforce_url=infos["salesforce"]["url"],
                salesforce_client_id=infos["salesforce"]["client_id"],
                salesforce_client_secret=infos["salesforce"]["client_secret"],
                sheets_url=infos["sheets"]["url"],
            )
        finally:
            for _, proc in procs:
                assert proc.stdin is not None
                proc.stdin.close()
            for _, proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


class Sandboxes:
    """Control of the three running sandboxes over their ``/_sandbox/`` surfaces."""

    def __init__(self, info: SandboxInfo) -> None:
        self.info = info
        self.http = httpx.Client(timeout=600.0)
        self._urls = {
            "coldsend": info.coldsend_url,
            "salesforce": info.salesforce_url,
            "sheets": info.sheets_url,
        }

    def close(self) -> None:
        self.http.close()

    def _call(self, service: str, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self._urls[service]}/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def prepare(self, latency_ms: float) -> None:
        """Wipe every sandbox, lift the rate limits, inject `latency_ms` on each API request."""
        for service in SERVICES:
            self._call(service, "POST", "reset")
        self._call("coldsend", "PUT", "limits", {"per_minute": UNLIMITED, "per_hour": UNLIMITED})
        self._call("salesforce", "PUT", "limits", {"daily_limit": UNLIMITED})
        self._call(
            "sheets",
            "PUT",
            "limits",
            {"reads_per_minute": None, "writes_per_minute": None, "window_seconds": 60.0},
        )
        for service in SERVICES:
            self._call(service, "PUT", "faults", {"latency_ms": latency_ms})
        self.reset_stats()

    def seed_salesforce(self, count: int, seed: int) -> list[str]:
        """`count` valid synthetic Leads; returns their Ids."""
        body = {"object": "Lead", "count": count, "seed": seed, "bad_every": None}
        return list(self._call("salesforce", "POST", "seed", body)["ids"])

    def create_sheet(self, title: str, worksheet: str, rows: list[list[str]]) -> str:
        """A spreadsheet with one worksheet holding `rows` (header first); returns its id."""
        body = {"title": title, "sheets": {worksheet: rows}}
        return str(self._call("sheets", "POST", "spreadsheets", body)["spreadsheet_id"])

    def sheet_values(self, spreadsheet_id: str, worksheet: str) -> list[list[Any]]:
        return list(
            self._call("sheets", "GET", f"spreadsheets/{spreadsheet_id}/values/{worksheet}")[
                "values"
            ]
        )

    def salesforce_records(self) -> list[dict[str, Any]]:
        return list(self._call("salesforce", "GET", "records/Lead"))

    def advance(self, steps: int) -> dict[str, Any]:
        """Run the ColdSend send simulation `steps` times."""
        result: dict[str, Any] = self._call("coldsend", "POST", "advance", {"steps": steps})
        return result

    def reset_stats(self) -> None:
        for service in SERVICES:
            self._call(service, "POST", "stats/reset")

    def stats(self) -> dict[str, dict[str, int]]:
        """Requests per service since the last reset: ``{service: {"total": n, route: n}}``."""
        out: dict[str, dict[str, int]] = {}
        for service in SERVICES:
            raw = self._call(service, "GET", "stats")
            routes = raw["requests"] if isinstance(raw.get("requests"), dict) else raw
            counts = {k: int(v) for k, v in routes.items() if k != "total"}
            out[service] = {"total": int(raw.get("total", sum(counts.values()))), **counts}
        return out


if __name__ == "__main__":
    serve(sys.argv[1] if len(sys.argv) > 1 else "")
