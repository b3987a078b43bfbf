"""Secrets never leave their fields: every flow runs with distinctive secrets, everything is scanned.

The ColdSend API key, the Salesforce password, security token, consumer secret and session ids,
and a Google service account's private key (and the access tokens they buy) must not appear in:
log records of any logger at DEBUG (httpx, httpcore, urllib3, simple_salesforce, gspread,
google.auth, prefect...), anything written to stdout/stderr, artifacts and events read back
from the Prefect server, flow and task run records (parameters, state messages), reject CSV
files, exception messages and tracebacks, reprs of every object holding a secret, and the
URLs the sandboxes saw (their request stats).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prefect import get_client
from prefect.client.schemas.objects import State
from prefect.client.schemas.sorting import ArtifactSort, FlowRunSort, TaskRunSort
from prefect.events.filters import EventFilter, EventOccurredFilter
from prefect.events.worker import EventsWorker
from pydantic import SecretStr

from blocks import (
    ColdSendCredentials,
    CsvFileLeads,
    GoogleSheetLeads,
    GoogleSheetsCredentials,
    SalesforceCredentials,
    SalesforceLeads,
)
from connectors.coldsend import ColdSendClient
from flows.campaigns import CampaignSpec, VariantSpec, ensure_campaign, launch_campaign_when_ready
from flows.pipeline import crm_to_campaign_pipeline
from flows.reports import reports_dir
from flows.sync import sync_leads_to_campaign
from flows.write_back import write_back_statuses
from sandbox._server import RunningServer, start_server
from sandbox.salesforce.app import SalesforceSandboxApp
from sandbox.salesforce.app import create_app as create_salesforce
from sandbox.salesforce.fixtures import SalesforceSandbox
from tests._stack import Stack

DEBUG_LOGGERS = (
    "",
    "prefect",
    "prefect.flow_runs",
    "prefect.task_runs",
    "httpx",
    "httpcore",
    "urllib3",
    "requests",
    "requests_oauthlib",
    "simple_salesforce",
    "gspread",
    "google",
    "google.auth",
    "connectors",
    "flows",
    "blocks",
    "sandbox",
    "uvicorn",
    "uvicorn.access",
)


class Capture(logging.Handler):
    """Keeps every record, formatted with its arguments and traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record) + " " + repr(record.args))
        except Exception as exc:  # a record that cannot be formatted is still scanned
            self.lines.append(f"{record.name} {record.msg!r} {record.args!r} ({exc})")


@pytest.fixture
def debug_logs() -> Iterator[Capture]:
    """Every logger at DEBUG (as PREFECT_LOGGING_LEVEL=DEBUG would), captured, then restored."""
    capture = Capture()
    names = set(DEBUG_LOGGERS) | set(logging.root.manager.loggerDict)
    saved: dict[str, int] = {}
    hooked: list[logging.Logger] = []
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.DEBUG)
        if name == "" or not logger.propagate:
            logger.addHandler(capture)
            hooked.append(logger)
    try:
        yield capture
    finally:
        for logger in hooked:
            logger.removeHandler(capture)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def salesforce_with_secrets() -> Iterator[tuple[SalesforceSandbox, SalesforceSandboxApp]]:
    """A private Salesforce emulator whose every credential is a distinctive random value."""
    app = create_salesforce(
        client_id="secops-consumer-key",
        client_secret="SFCONSUMERSECRET" + secrets.token_hex(12),
        username="secops@sandbox.example",
        password="SFPASSWORD" + secrets.token_hex(12),
        security_token="SFSECTOKEN" + secrets.token_hex(12),
    )
    server: RunningServer = start_server(app)
    state = app.state
    sandbox = SalesforceSandbox(
        url=server.url,
        client_id=state.client_id,
        client_secret=state.client_secret,
        username=state.username,
        password=state.password,
        security_token=state.security_token,
    )
    try:
        yield sandbox, app
    finally:
        sandbox.http.close()
        server.stop()


def _private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _failed(state: State[Any]) -> BaseException:
    assert state.is_failed(), f"expected a failure, got {state}"
    exc = state.result(raise_on_failure=False)
    assert isinstance(exc, BaseException)
    return exc


def _exception_text(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


def _variants(*names: str) -> list[str]:
    """A secret as it could appear: as is, URL-encoded, form-encoded."""
    return [form for name in names for form in {name, quote(name, safe=""), quote_plus(name)}]


def test_no_secret_reaches_logs_artifacts_events_errors_reprs_or_urls(
    stack: Stack,
    salesforce_with_secrets: tuple[SalesforceSandbox, SalesforceSandboxApp],
    debug_logs: Capture,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    started = time.time()
    sf, sf_app = salesforce_with_secrets
    tag = stack.tag
    pem = _private_key_pem()
    service_email = f"leads-sync-{tag}@project.iam.gserviceaccount.com"
    service_account = {
        "type": "service_account",
        "project_id": "secops",
        "private_key_id": "kid-" + tag,
        "private_key": pem,
        "client_email": service_email,
        "client_id": "1234567890",
        "token_uri": f"{stack.sheets.url}/token",
    }
    wrong_key = "cs_live_WRONGKEY" + secrets.token_hex(16)
    wrong_password = "SFWRONGPASSWORD" + secrets.token_hex(8)
    broken_key_body = "BROKENPRIVATEKEY" + secrets.token_hex(16)

    # -- stores and credentials -------------------------------------------------------------
    sf.seed(12, seed=5)
    sf_store_name = f"sec-sf-{tag}"
    SalesforceLeads(
        credentials=SalesforceCredentials(
            username=sf.username,
            password=SecretStr(sf.password),
            security_token=SecretStr(sf.security_token),
            consumer_key=sf.client_id,
            consumer_secret=SecretStr(sf.client_secret),
            login_url=sf.url,
        )
    ).save(sf_store_name, overwrite=True)
    session_id = sf.token()
    sf_session_store = f"sec-sf-session-{tag}"
    SalesforceLeads(
        credentials=SalesforceCredentials(session_id=SecretStr(session_id), instance_url=sf.url)
    ).save(sf_session_store, overwrite=True)
    SalesforceLeads(
        credentials=SalesforceCredentials(
            username=sf.username, password=SecretStr(wrong_password), login_url=sf.url
        )
    ).save(f"sec-sf-wrong-{tag}", overwrite=True)

    sheet_id = stack.sheets.create_spreadsheet(
        "Secrets",
        {"Sheet1": [["Email", "First Name"], *([f"sheet{i}@x.com", f"S{i}"] for i in range(6))]},
    )
    sheets_credentials = GoogleSheetsCredentials(
        service_account_info=service_account, api_base_url=stack.sheets.url
    )
    GoogleSheetLeads(credentials=sheets_credentials, spreadsheet_id=sheet_id).save(
        f"sec-sheet-{tag}", overwrite=True
    )
    GoogleSheetLeads(
        credentials=GoogleSheetsCredentials(
            service_account_info={
                **service_account,
                "private_key": "-----BEGIN PRIVATE KEY-----\n"
                + broken_key_body
                + "\n-----END PRIVATE KEY-----\n",
            },
            api_base_url=stack.sheets.url,
        ),
        spreadsheet_id=sheet_id,
    ).save(f"sec-sheet-broken-{tag}", overwrite=True)
    csv_path = tmp_path / "leads.csv"
    csv_path.write_text(
        "Email,First Name\n" + "".join(f"csv{i}@x.com,C{i}\n" for i in range(5)) + "=bad,x\n"
    )
    CsvFileLeads(path=str(csv_path)).save(f"sec-csv-{tag}", overwrite=True)
    ColdSendCredentials(api_key=SecretStr(wrong_key), base_url=stack.coldsend.base_url).save(
        f"sec-wrong-{tag}", overwrite=True
    )

    with ColdSendClient(stack.coldsend.admin_key, base_url=stack.coldsend.base_url) as admin:
        admin.create_smtp_inbox(
            email_address=f"sender-{tag}@acme.example",
            display_name="Sender",
            smtp_host="smtp.acme.example",
            smtp_port=587,
            smtp_username="sender",
            smtp_password="smtp-password-not-under-test",
        )
    spec = CampaignSpec(
        name=f"Secrets scan {tag}",
        variants=[
            VariantSpec(subject_template="Hi {{first_name}}", email_content="Hello, a test.")
        ],
        inbox_emails=[f"sender-{tag}@acme.example"],
    )
    cs = stack.coldsend_block

    # -- every flow, succeeding ----------------------------------------------------------------
    pipeline = crm_to_campaign_pipeline(
        campaign=spec, lead_store=f"salesforce-leads/{sf_store_name}", coldsend=cs
    )
    campaign_id = pipeline.campaign_id
    assert pipeline.launch.status == "ACTIVE" and pipeline.sync.uploaded == 12
    assert ensure_campaign(spec, coldsend=cs) == campaign_id
    sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=f"google-sheet-leads/sec-sheet-{tag}", coldsend=cs
    )
    sync_leads_to_campaign(
        campaign_id=campaign_id, lead_store=f"csv-file-leads/sec-csv-{tag}", coldsend=cs
    )
    stack.coldsend.advance(steps=3)
    for store in (
        f"salesforce-leads/{sf_session_store}",
        f"google-sheet-leads/sec-sheet-{tag}",
        f"csv-file-leads/sec-csv-{tag}",
    ):
        write_back_statuses(campaign_id=campaign_id, lead_store=store, coldsend=cs)
    assert len(stack.campaign_emails(campaign_id)) == 12 + 6 + 5

    # -- and failing -----------------------------------------------------------------------------
    empty_campaign = stack.new_campaign("Never ready")
    errors = [
        _failed(
            launch_campaign_when_ready(campaign_id=empty_campaign, coldsend=cs, return_state=True)
        ),
        _failed(
            sync_leads_to_campaign(
                campaign_id=campaign_id,
                lead_store=f"csv-file-leads/sec-csv-{tag}",
                coldsend=f"sec-wrong-{tag}",
                return_state=True,
            )
        ),
        _failed(
            sync_leads_to_campaign(
                campaign_id=campaign_id,
                lead_store=f"salesforce-leads/sec-sf-wrong-{tag}",
                coldsend=cs,
                return_state=True,
            )
        ),
        _failed(
            sync_leads_to_campaign(
                campaign_id=campaign_id,
                lead_store=f"google-sheet-leads/sec-sheet-broken-{tag}",
                coldsend=cs,
                return_state=True,
            )
        ),
    ]

    # -- the secrets, in every form they could leak in ----------------------------------------
    issued_sf_tokens = list(sf_app.state.tokens)
    sheets_token = "sandbox." + hashlib.sha256(service_email.encode()).hexdigest()[:24]
    pem_lines = [line for line in pem.splitlines() if len(line) >= 40]
    named = {
        "ColdSend API key": _variants(stack.api_key, stack.api_key.removeprefix("cs_live_")),
        "wrong ColdSend API key": _variants(wrong_key, wrong_key.removeprefix("cs_live_")),
        "Salesforce password": _variants(sf.password, sf.password + sf.security_token),
        "Salesforce security token": _variants(sf.security_token),
        "Salesforce consumer secret": _variants(sf.client_secret),
        "wrong Salesforce password": _variants(wrong_password),
        "Salesforce session id": _variants(session_id, *issued_sf_tokens),
        "Google private key": [*pem_lines, broken_key_body],
        "Google access token": _variants(sheets_token),
    }
    assert len(issued_sf_tokens) >= 2, "the logins under test did not happen"

    # -- everything captured --------------------------------------------------------------------
    surfaces: dict[str, str] = {}
    surfaces["logs"] = "\n".join(debug_logs.lines)
    out = capfd.readouterr()
    surfaces["stdout/stderr"] = out.out + out.err
    surfaces["exceptions"] = "\n".join(_exception_text(e) for e in errors)
    EventsWorker.drain_all(timeout=20)
    # The session's test server holds every earlier test's runs too: read the newest ones
    # (the default order is by random id), which are this test's.
    with get_client(sync_client=True) as client:
        surfaces["artifacts"] = "\n".join(
            a.model_dump_json()
            for a in client.read_artifacts(limit=200, sort=ArtifactSort.CREATED_DESC)
        )
        surfaces["flow runs"] = "\n".join(
            r.model_dump_json()
            for r in client.read_flow_runs(limit=200, sort=FlowRunSort.EXPECTED_START_TIME_DESC)
        )
        surfaces["task runs"] = "\n".join(
            r.model_dump_json()
            for r in client.read_task_runs(limit=200, sort=TaskRunSort.EXPECTED_START_TIME_DESC)
        )
        page = client.read_events(
            filter=EventFilter(occurred=EventOccurredFilter(since=_utc(started - 5))), limit=50
        )
        events = list(page.events)
        while page.next_page and len(events) < 2000:
            page = client.read_events_page(page.next_page)
            events.extend(page.events)
    surfaces["events"] = "\n".join(e.model_dump_json() for e in events)
    surfaces["reject CSV files"] = "\n".join(
        p.read_text(encoding="utf-8", errors="replace") for p in reports_dir().glob("*.csv")
    )
    surfaces["sandbox request paths"] = "\n".join(
        str(s) for s in (stack.coldsend.stats(), sf.stats(), stack.sheets.stats())
    )
    held = [
        ColdSendCredentials.load(cs.removeprefix("coldsend-credentials/")),
        SalesforceLeads.load(sf_store_name),
        SalesforceLeads.load(sf_session_store),
        GoogleSheetLeads.load(f"sec-sheet-{tag}"),
        sheets_credentials,
    ]
    reprs: list[str] = []
    for block in held:
        reprs += [repr(block), str(block), block.model_dump_json()]
        for make in ("get_client", "lead_source", "status_sink"):
            if hasattr(block, make):
                obj = getattr(block, make)()
                reprs += [repr(obj), str(obj)]
                if hasattr(obj, "close"):
                    obj.close()
        credentials = getattr(block, "credentials", None)
        if credentials is not None:
            conn = credentials.get_client()
            reprs += [repr(conn), str(conn), repr(credentials), credentials.model_dump_json()]
    surfaces["reprs"] = "\n".join(reprs)

    # Sanity: the surfaces really hold what the runs did (a silent capture would prove nothing).
    assert "HTTP Request" in surfaces["logs"] or "GET /services" in surfaces["logs"]
    assert campaign_id in surfaces["artifacts"] and campaign_id in surfaces["events"]
    assert "coldsend.leads.synced" in surfaces["events"]

    leaks = [
        f"{label} in {surface} near: {_context(text, form, secret_label=label)}"
        for surface, text in surfaces.items()
        for label, forms in named.items()
        for form in forms
        if form and form in text
    ]
    assert not leaks, "\n".join(leaks)


def _utc(epoch: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


def _context(text: str, secret: str, *, secret_label: str) -> str:
    """Where a secret appeared, with the secret itself masked (the failure must not leak it)."""
    at = text.index(secret)
    window = text[max(0, at - 120) : at + len(secret) + 60]
    return window.replace(secret, f"<{secret_label}>")
