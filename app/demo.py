"""The one-command demo: the whole pipeline against the loopback sandboxes, twice-runnable.

Seeds a Salesforce org with about 1,000 leads, a HubSpot account with a third as many
contacts (some opted out, some without an email) and a Google Sheet with a few hundred rows
(some bad), then runs ensure campaign, sync from all three, launch, a simulated day of sending
and the write-back to all three, on Prefect's embedded server, and prints what happened.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blocks import (
    ColdSendCredentials,
    GoogleSheetLeads,
    GoogleSheetsCredentials,
    HubSpotContacts,
    HubSpotCredentials,
    SalesforceCredentials,
    SalesforceLeads,
)
from connectors.leads import FieldMapping
from flows.campaigns import (
    CampaignSpec,
    FollowUpSpec,
    VariantSpec,
    ensure_campaign,
    launch_campaign_when_ready,
)
from flows.naming import ascii_fold, slugify
from flows.scopes import scopes_for
from flows.sync import SyncReport, sync_leads_to_campaign
from flows.write_back import WriteBackReport, write_back_statuses
from sandbox.stack import SandboxStack, start_stack

__all__ = ["DemoResult", "run_demo"]

BLOCK = "demo"
SHEET_TITLE = "Prospects"
INBOX = "outreach@demo-sender.example.com"
CAMPAIGN = "prefect-coldsend demo: Q4 outbound"
STORES = ("salesforce-leads/demo", "hubspot-contacts/demo", "google-sheet-leads/demo")
SHEET_HEADER = ["Email", "First Name", "Last Name", "Company", "Industry"]

# People as a sales team meets them: names in their own spelling, addresses as their
# companies assign them (ASCII, transliterated: Chloé Müller -> chloe.muller@...).
_FIRST = [
    "Ana", "Benjamin", "Chloé", "Dmitri", "Emeka", "Fatima", "Grace", "Hiroshi", "Inès", "Jonas",
    "Kwame", "Laura", "Mateo", "Nadia", "Oliver", "Priya", "Quentin", "Rosa", "Søren", "Tomás",
    "Ulrike", "Valentina", "Wei", "Yasmin", "Zoë", "Łukasz", "Aoife", "Björn", "Camille", "Diego",
]  # fmt: skip
_LAST = [
    "García", "Smith", "Müller", "Okafor", "Tanaka", "Dubois", "Kowalski", "Silva", "Ng",
    "O'Brien", "Johansson", "Rossi", "Nguyen", "Schäfer", "Fernández", "Patel", "Lefèvre",
    "Kim", "Novák", "Andersen", "Mensah", "Costa", "Wójcik", "Brennan", "Haddad", "Larsen",
]  # fmt: skip
_COMPANIES = [
    ("Northwind Logistics", "Logistics"), ("Brightpath Health", "Healthcare"),
    ("Lumen Retail Group", "Retail"), ("Kestrel Payments", "Fintech"),
    ("Atlas Freight", "Logistics"), ("Fernhill Clinics", "Healthcare"),
    ("Copperleaf Software", "SaaS"), ("Harbor & Vine", "Retail"), ("Quantly", "Fintech"),
    ("Meridian Analytics", "SaaS"), ("Bluebird Pharmacy", "Healthcare"),
    ("Stonebridge Capital", "Fintech"), ("Orchard Supply Co", "Retail"),
    ("Tidewater Shipping", "Logistics"), ("Nimbus Cloudworks", "SaaS"),
    ("Granite Peak Insurance", "Fintech"), ("Sunflower Grocers", "Retail"),
    ("Polar Cold Chain", "Logistics"), ("Helix Diagnostics", "Healthcare"),
    ("Papertrail HR", "SaaS"),
]  # fmt: skip


@dataclass
class DemoResult:
    """Everything the demo did, for the summary and for tests."""

    campaign_id: str
    syncs: dict[str, SyncReport] = field(default_factory=dict)
    launched: str = ""
    sending: dict[str, int] = field(default_factory=dict)
    write_backs: dict[str, WriteBackReport] = field(default_factory=dict)
    state_dir: Path | None = None


def _address(first: str, last: str, company: str, taken: set[str]) -> str:
    """first.last@company.example in ASCII, numbered when the company has two of a name."""
    local = ".".join(
        "".join(ch for ch in ascii_fold(part).lower() if ch.isalnum()) for part in (first, last)
    )
    domain = slugify(company.replace("&", "and")) + ".example"
    email, n = f"{local}@{domain}", 1
    while email in taken:
        n += 1
        email = f"{local}{n}@{domain}"
    taken.add(email)
    return email


def _sheet_rows(count: int, salesforce_emails: list[str], seed: int = 11) -> list[list[str]]:
    """A few hundred prospects, some shared with Salesforce, and some deliberately bad rows."""
    rng = random.Random(seed)
    rows: list[list[str]] = [SHEET_HEADER]
    taken: set[str] = set()
    for _ in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        company, industry = rng.choice(_COMPANIES)
        rows.append([_address(first, last, company, taken), first, last, company, industry])
    # Already in Salesforce, typed differently: reconciled, never sent twice.
    for email in salesforce_emails[:25]:
        rows.append([f"  {email.upper()} ", "Known", "Lead", "From Salesforce", "SaaS"])
    rows += [
        ["not-an-email", "Bad", "Address", "Nowhere", "Retail"],
        ["", "No", "Email", "Blank Inc", "Retail"],
        ["someone@", "Half", "Address", "Nowhere", "Retail"],
        [rows[1][0].upper(), "Duplicate", "Row", "Twice Ltd", "SaaS"],
        ["formula@prospect.example.org", '=HYPERLINK("x")', "Formula", "+cmd", "Fintech"],
        ["", "", "", "", ""],
        # Typed by hand with the accents of the name: ColdSend takes ASCII addresses only.
        ["renée.lefèvre@atelier-lefevre.example", "Renée", "Lefèvre", "Atelier Lefèvre", "Retail"],
    ]
    return rows


def _seed(stack: SandboxStack, *, leads: int, sheet_rows: int, state: dict[str, Any]) -> None:
    records = stack.control("salesforce", "GET", "records/Lead")
    if not records:
        stack.control(
            "salesforce",
            "POST",
            "seed",
            json={"object": "Lead", "count": leads, "seed": 7, "bad_every": 40},
        )
        records = stack.control("salesforce", "GET", "records/Lead")
    if not stack.control("hubspot", "GET", "contacts"):
        stack.control(
            "hubspot",
            "POST",
            "seed",
            json={"count": max(20, leads // 3), "seed": 5, "bad_every": 25, "opted_out_every": 15},
        )
    if "spreadsheet_id" not in state:
        sf_emails = [str(r["Email"]) for r in records if r.get("Email") and "@" in str(r["Email"])]
        body = {
            "title": "Demo prospects",
            "sheets": {SHEET_TITLE: _sheet_rows(sheet_rows, sf_emails)},
        }
        state["spreadsheet_id"] = stack.control("sheets", "POST", "spreadsheets", json=body)[
            "spreadsheet_id"
        ]
    # A key made by an older demo may lack a scope the demo needs now: make a new one.
    if "coldsend_key" not in state or state.get("coldsend_scopes") != sorted(scopes_for("demo")):
        state["coldsend_scopes"] = sorted(scopes_for("demo"))
        state["coldsend_key"] = stack.create_coldsend_key(
            sorted(scopes_for("demo")), name="prefect-coldsend demo"
        )


def _save_blocks(stack: SandboxStack, state: dict[str, Any]) -> None:
    ColdSendCredentials(api_key=state["coldsend_key"], base_url=stack.coldsend_base_url).save(
        BLOCK, overwrite=True
    )
    salesforce = SalesforceCredentials(
        consumer_key=stack.salesforce_client_id,
        consumer_secret=stack.salesforce_client_secret,
        login_url=stack.salesforce_url,
    )
    # Credentials are blocks of their own, referenced by the lead stores: the UI shows them on
    # the store's page and its edit form can change the store's settings.
    salesforce.save(BLOCK, overwrite=True)
    sheets = GoogleSheetsCredentials(api_base_url=stack.sheets_url)
    sheets.save(BLOCK, overwrite=True)
    SalesforceLeads(credentials=salesforce).save(BLOCK, overwrite=True)
    HubSpotContacts(
        credentials=HubSpotCredentials(
            access_token=stack.hubspot_token, base_url=stack.hubspot_url
        ),
        mapping=FieldMapping(
            email="email",
            first_name="firstname",
            last_name="lastname",
            company="company",
            custom_fields={"industry": "industry"},
        ),
    ).save(BLOCK, overwrite=True)
    GoogleSheetLeads(
        credentials=sheets,
        spreadsheet_id=state["spreadsheet_id"],
        worksheet=SHEET_TITLE,
        mapping=FieldMapping(
            email="Email",
            first_name="First Name",
            last_name="Last Name",
            company="Company",
            custom_fields={"industry": "Industry"},
        ),
    ).save(BLOCK, overwrite=True)


def _ensure_inbox(credentials: ColdSendCredentials) -> None:
    with credentials.get_client() as client:
        if any(i.email_address == INBOX for i in client.iter_inboxes()):
            return
        client.create_smtp_inbox(
            email_address=INBOX,
            display_name="Demo Sender",
            smtp_host="smtp.demo-sender.example.com",
            smtp_port=587,
            smtp_username=INBOX,
            smtp_password="demo-only-password",  # noqa: S106 - the sandbox's fake inbox
            daily_limit=50,
        )


def demo_campaign_spec() -> CampaignSpec:
    """The demo's campaign: one inbox, an A/B test and a follow-up."""
    return CampaignSpec(
        name=CAMPAIGN,
        inbox_emails=[INBOX],
        enable_tracking=True,
        variants=[
            VariantSpec(
                variant_name="A",
                subject_template="{{first_name}}, a faster CRM-to-inbox loop",
                email_content="Hi {{first_name}}, teams at {{company}} ...",
                distribution_percent=50,
            ),
            VariantSpec(
                variant_name="B",
                subject_template="Quick question about {{company}}",
                email_content="Hello {{first_name}}, would it help if ...",
                distribution_percent=50,
            ),
        ],
        sequences=[
            FollowUpSpec(
                step_number=2,
                trigger_type="NOT_REPLIED",
                wait_days=3,
                variants=[
                    VariantSpec(
                        subject_template="Re: {{company}}",
                        email_content="Bumping this up, {{first_name}}.",
                    )
                ],
            )
        ],
    )


def run_demo(
    *,
    state_dir: Path,
    leads: int = 1000,
    sheet_rows: int = 300,
    sending_steps: int = 4,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole pipeline against the sandboxes kept in `state_dir`; return what happened."""
    sandbox_dir = state_dir / "sandbox"
    echo(
        "Starting the ColdSend, Salesforce, HubSpot and Google Sheets sandboxes "
        f"(state in {sandbox_dir})"
    )
    stack = start_stack(state_dir=sandbox_dir)
    try:
        state_file = sandbox_dir / "demo-state.json"
        state: dict[str, Any] = (
            json.loads(state_file.read_text(encoding="utf-8")) if state_file.exists() else {}
        )
        _seed(stack, leads=leads, sheet_rows=sheet_rows, state=state)
        state_file.write_text(json.dumps(state, indent=2), encoding="utf-8")
        state_file.chmod(0o600)
        _save_blocks(stack, state)
        credentials = ColdSendCredentials(
            api_key=state["coldsend_key"], base_url=stack.coldsend_base_url
        )
        _ensure_inbox(credentials)

        echo("1/5 Ensuring the campaign exists as specified")
        campaign_id = ensure_campaign(demo_campaign_spec(), coldsend=BLOCK)
        result = DemoResult(campaign_id=campaign_id, state_dir=state_dir)
        echo("2/5 Syncing leads from Salesforce, HubSpot and the Google Sheet")
        for store in STORES:
            result.syncs[store] = sync_leads_to_campaign(
                campaign_id=campaign_id, lead_store=store, coldsend=BLOCK
            )
        echo("3/5 Launching the campaign")
        job_ids = [j for r in result.syncs.values() for j in r.job_ids]
        launch = launch_campaign_when_ready(
            campaign_id=campaign_id, coldsend=BLOCK, job_ids=job_ids
        )
        result.launched = launch.status
        echo("4/5 Simulating a day of sending")
        advanced = stack.advance_sending(sending_steps)
        result.sending = dict(advanced.get("campaigns", {}).get(campaign_id, {}).get("leads", {}))
        echo("5/5 Writing statuses back to Salesforce, HubSpot and the Google Sheet")
        for store in STORES:
            result.write_backs[store] = write_back_statuses(
                campaign_id=campaign_id, lead_store=store, coldsend=BLOCK
            )
        return result
    finally:
        stack.stop()


def format_summary(result: DemoResult, *, prefect_home: str | None) -> str:
    """A readable account of the demo run."""
    lines = ["", "prefect-coldsend demo: summary", "=" * 30, f"Campaign: {result.campaign_id}", ""]
    lines.append(
        f"{'sync from':<26}{'read':>7}{'uploaded':>10}{'in campaign':>13}{'dup in source':>15}"
        f"{'rejected':>10}{'suppressed':>12}"
    )
    for store, r in result.syncs.items():
        lines.append(
            f"{store:<26}{r.read:>7}{r.uploaded:>10}{r.already_in_campaign:>13}"
            f"{r.duplicate_in_source:>15}{r.rejected:>10}{r.suppressed:>12}"
        )
    rejects = [r.rejects_csv for r in result.syncs.values() if r.rejects_csv]
    if rejects:
        lines.append("Rejected rows (row number and reason): " + ", ".join(rejects))
    lines += ["", f"Campaign status after launch: {result.launched}"]
    if result.sending:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(result.sending.items()) if v)
        lines.append(f"After a simulated day of sending: {counts}")
    lines += [
        "",
        f"{'write-back to':<26}{'written':>9}{'unchanged':>11}{'kept later':>12}{'not found':>11}",
    ]
    for store, w in result.write_backs.items():
        lines.append(
            f"{store:<26}{w.written:>9}{w.unchanged:>11}{w.held_back:>12}{w.not_found:>11}"
        )
        by_status = ", ".join(f"{k} {v}" for k, v in w.by_status.items())
        lines.append(f"{'':<26}statuses exported: {by_status}")
        if w.replies is not None:
            rl = w.replies
            lines.append(
                f"{'':<26}replies logged: {rl.logged} now, {rl.already_logged} already, "
                f"{rl.no_record} without a record, {rl.deferred} left for the next runs"
            )
    lines += ["", *where_to_look(prefect_home)]
    lines.append(
        "Run the demo again: the second sync uploads nothing new and write-back writes only changes."
    )
    return "\n".join(lines)


def where_to_look(prefect_home: str | None) -> list[str]:
    """Where the runs and artifacts are: the server the demo used, else how to open its home."""
    api_url = os.environ.get("PREFECT_API_URL", "").strip()
    if api_url:
        ui = os.environ.get("PREFECT_UI_URL", "").strip() or api_url.rstrip("/").removesuffix(
            "/api"
        )
        return [
            f"Runs, artifacts (summaries, rejected rows) and blocks are on the Prefect server at {ui}:",
            f"  {ui}/runs   {ui}/artifacts   {ui}/blocks",
        ]
    prefect = Path(sys.executable).with_name("prefect")
    command = f"{prefect} server start" if prefect.exists() else "prefect server start"
    return [
        "Runs, artifacts (summaries, rejected rows) and blocks are in the demo's Prefect home:",
        (f"  PREFECT_HOME={prefect_home} " if prefect_home else "  ")
        + f"{command}   then open http://127.0.0.1:4200",
    ]
