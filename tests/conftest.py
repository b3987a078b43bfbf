"""Test-wide settings: Prefect runs offline against a throwaway home; sandbox fixtures."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

# Before anything imports Prefect: no telemetry (there is no network), a private home.
_HOME = tempfile.mkdtemp(prefix="coldsend-tests-prefect-")
os.environ.setdefault("PREFECT_HOME", _HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("COLDSEND_REPORTS_DIR", os.path.join(_HOME, "reports"))
for _name in ("COLDSEND_API_KEY", "COLDSEND_BASE_URL"):
    os.environ.pop(_name, None)

# One server of each sandbox for the whole session, and the `stack` fixture (sandboxes plus
# saved blocks on a Prefect test server) for flow-level tests.
pytest_plugins = [
    "sandbox.coldsend.fixtures",
    "sandbox.hubspot.fixtures",
    "sandbox.salesforce.fixtures",
    "sandbox.sheets.fixtures",
    "tests._stack",
]


@pytest.fixture(scope="session", autouse=True)
def _no_heartbeats_in_process() -> Iterator[None]:
    """Flow runs made in this process go without heartbeats, as the CLI's on the embedded server.

    Nothing watches them here (crash detection is tested with real workers, which get
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY from their environment), and Prefect 3.8 joins each
    run's heartbeat thread at its end: up to 1 s per flow run and sub-flow, over the suite
    minutes of waiting.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture
def limits_and_automations_made_here_removed(prefect_server: None) -> Iterator[None]:
    """Delete the global concurrency limits and automations the test made, when it ends.

    For tests that run the deploy steps against the session's Prefect test server: the
    stack's ColdSend key and stores serve every later test, and their budgets left on the
    server (the key's hourly one: 500 requests, then 500 an hour) would pace those tests'
    requests for the rest of the session.
    """
    from prefect.client.orchestration import get_client

    def present() -> tuple[set[str], set[object]]:
        with get_client(sync_client=True) as client:
            limits = {limit.name for limit in client.read_global_concurrency_limits(limit=200)}
            return limits, {automation.id for automation in client.read_automations()}

    limits_before, automations_before = present()
    yield
    limits_after, automations_after = present()
    with get_client(sync_client=True) as client:
        for name in limits_after - limits_before:
            client.delete_global_concurrency_limit_by_name(name)
        for automation_id in automations_after - automations_before:
            client.delete_automation(automation_id)  # type: ignore[arg-type]


LOGO_FILE = Path(__file__).resolve().parent.parent / "blocks" / "logo.png"


@pytest.fixture(autouse=True)
def _block_logo_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect's block-standard logo test opens each block's logo URL; nothing is reachable here.

    The blocks' one logo URL (raw.githubusercontent.com, blocks/logo.png) is answered with
    the committed file it names; any other URL fails, so a wrong or missing logo still fails.
    """
    suite = sys.modules.get("prefect.testing.standard_test_suites.blocks")
    if suite is None:  # only the modules running the standard suite import it
        return
    from blocks._logo import LOGO_URL

    def urlopen(url: str) -> IO[bytes]:
        assert url == str(LOGO_URL), f"unexpected logo URL {url}"
        return LOGO_FILE.open("rb")

    monkeypatch.setattr(suite, "urlopen", urlopen)


@pytest.fixture(autouse=True)
def _upload_jobs_timed_afresh() -> None:
    """Each test learns upload job speeds as a new process would: a test that slows the
    sandbox's jobs down does not make the first polls of the next tests wait longer."""
    from connectors.coldsend.jobtiming import forget_upload_job_timings

    forget_upload_job_timings()
