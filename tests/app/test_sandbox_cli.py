"""`prefect-coldsend sandbox` as a new user meets it: exports to paste, an inbox, a busy port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import httpx

from connectors.coldsend import ColdSendClient

from .test_cli import CLI, ROOT, cli

SERVICES = 4  # ColdSend, Salesforce, Sheets, HubSpot on consecutive ports


def _free_ports() -> int:
    """A first port with the next SERVICES - 1 free as well."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + SERVICES > 65535:
            continue
        taken = []
        try:
            for port in range(first, first + SERVICES):
                sock = socket.socket()
                taken.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in taken:
                sock.close()
        return first
    raise AssertionError("no run of free ports found")


def test_sandbox_prints_exports_an_inbox_and_working_control_surfaces(tmp_path: Path) -> None:
    port = _free_ports()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.Popen(
        [*CLI, "sandbox", "--port", str(port), "--db", str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.strip().startswith("HubSpot ") and "/_sandbox/" in line:
                break
        text = "\n".join(lines)
        export = re.search(
            r"^\s*export COLDSEND_API_KEY=(\S+) COLDSEND_BASE_URL=(\S+)$", text, re.M
        )
        assert export, text
        key, base_url = export.groups()
        assert base_url == f"http://127.0.0.1:{port}/api/public/v1"
        assert "ColdSend sender inbox    sender@sandbox.example.com" in text
        with ColdSendClient(key, base_url=base_url) as client:
            assert [i.email_address for i in client.iter_inboxes()] == [
                "sender@sandbox.example.com"
            ]
        surfaces = re.findall(r"^\s+\w+\s+(http://\S+/_sandbox/)$", text, re.M)
        assert len(surfaces) == SERVICES, text
        for surface in surfaces:
            assert httpx.get(surface + "stats", timeout=30).status_code == 200, surface

        busy = cli("sandbox", "--port", str(port))
        assert busy.returncode == 1
        (error,) = [line for line in busy.stderr.splitlines() if line.startswith("error: ")]
        assert f"port {port} (ColdSend)" in error and "already in use" in error
        assert f"--port {port + 10}" in error
    finally:
        proc.terminate()
        proc.wait(timeout=60)
