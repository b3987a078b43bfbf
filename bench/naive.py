"""THE NAIVE BASELINE: the integration a hurried user writes, for comparison only.

Not part of prefect-coldsend and not to be copied. It does the same work as our pipeline
(Salesforce and a Google Sheet into two campaigns, launch, write statuses back) the obvious way:

* reads Salesforce with ``query_all`` (REST pages) and the sheet with ``get_all_records``;
* adds every lead with its own ``POST /campaigns/{id}/leads/manual`` (a 409 means "already there");
* launches, then polls the campaign at a fixed 0.5 s interval until it is ACTIVE, and before
  the write-back until sending has produced results;
* reads statuses by paging ``GET /campaigns/{id}/leads`` (100 a page, the maximum);
* writes each status back with its own request: one Salesforce ``PATCH`` per record, one
  Sheets ``values.update`` per row, without looking at what the CRM already holds.

It uses the same libraries (requests, simple-salesforce, gspread) with keep-alive sessions, so
the comparison is about the approach, not about a strawman's plumbing.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from gspread.utils import rowcol_to_a1

from bench.harness import Recorder

POLL_INTERVAL = 0.5
STATUS_COLUMN = "ColdSend Status"


class NaiveColdSend:
    """ColdSend calls the hurried way: requests, one call per thing."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base = base_url
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["X-API-Key"] = key

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.base}/{path}", timeout=60, **kwargs)

    def create_campaign(self, name: str, inbox_id: str) -> str:
        campaign_id: str = self.call("POST", "campaigns", json={"name": name}).json()["campaign_id"]
        body = {
            "inbox_ids": [inbox_id],
            "variants": [
                {
                    "variant_name": "A",
                    "subject_template": "Quick question, {{first_name}}",
                    "email_content": "Hi {{first_name}}, a short note about {{company}}.",
                    "distribution_percent": 100,
                }
            ],
        }
        self.call("PUT", f"campaigns/{campaign_id}", json=body).raise_for_status()
        return campaign_id

    def find_campaign(self, name: str) -> str | None:
        found = self.call("GET", "campaigns", params={"search": name, "limit": 100}).json()
        for campaign in found["campaigns"]:
            if campaign["name"] == name:
                return str(campaign["campaign_id"])
        return None

    def add_leads(self, campaign_id: str, leads: list[dict[str, Any]]) -> int:
        added = 0
        for lead in leads:
            response = self.call("POST", f"campaigns/{campaign_id}/leads/manual", json=lead)
            if response.status_code == 409:
                continue
            response.raise_for_status()
            added += 1
        return added

    def launch(self, campaign_id: str) -> None:
        if self.call("GET", f"campaigns/{campaign_id}").json()["status"] == "DRAFT":
            self.call("PUT", f"campaigns/{campaign_id}", json={"launch": True}).raise_for_status()
        while self.call("GET", f"campaigns/{campaign_id}").json()["status"] == "DRAFT":
            time.sleep(POLL_INTERVAL)

    def wait_for_results(self, campaign_id: str) -> None:
        while True:
            campaign = self.call("GET", f"campaigns/{campaign_id}").json()
            if campaign["sent_count"] or campaign["bounce_count"]:
                return
            time.sleep(POLL_INTERVAL)

    def all_leads(self, campaign_id: str) -> list[dict[str, Any]]:
        leads: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.call(
                "GET", f"campaigns/{campaign_id}/leads", params={"page": page, "limit": 100}
            ).json()
            leads.extend(body["leads"])
            if not body["pagination"]["has_next"]:
                return leads
            page += 1


def run(plan: dict[str, Any]) -> None:
    """Run the naive integration at ``plan["size"]`` and record it like ours."""
    from connectors.salesforce import SalesforceConnection
    from connectors.sheets import SheetsConnection

    rec = Recorder(plan)
    info = rec.info
    cs = NaiveColdSend(info.coldsend_base_url, info.coldsend_key)
    tag: str = plan["run_tag"]
    # Our connection objects only for logging in to the loopback services; every data call
    # below is the plain library call a hurried user makes.
    sf = SalesforceConnection(
        consumer_key=info.salesforce_client_id,
        consumer_secret=info.salesforce_client_secret,
        login_url=info.salesforce_url,
    ).client
    gc = SheetsConnection(api_base_url=info.sheets_url).client()
    campaigns: dict[str, str] = {}
    sheet_id: str = plan["spreadsheet_id"]

    def sync_salesforce() -> int:
        name = f"Benchmark {tag} salesforce"
        records = sf.query_all("SELECT Id, Email, FirstName, LastName, Company FROM Lead")[
            "records"
        ]
        campaign_id = cs.find_campaign(name) or cs.create_campaign(name, plan["inbox_id"])
        campaigns["salesforce"] = campaign_id
        added = cs.add_leads(
            campaign_id,
            [
                {
                    "email": r["Email"],
                    "first_name": r["FirstName"],
                    "last_name": r["LastName"],
                    "company": r["Company"],
                    "custom_fields": {"crm_record_id": r["Id"]},
                }
                for r in records
            ],
        )
        cs.launch(campaign_id)
        return added

    def sync_sheet() -> int:
        name = f"Benchmark {tag} sheets"
        rows = gc.open_by_key(sheet_id).worksheet("Leads").get_all_records()
        campaign_id = cs.find_campaign(name) or cs.create_campaign(name, plan["inbox_id"])
        campaigns["sheets"] = campaign_id
        added = cs.add_leads(
            campaign_id,
            [
                {
                    "email": r["Email"],
                    "first_name": r["First Name"],
                    "last_name": r["Last Name"],
                    "company": r["Company"],
                }
                for r in rows
            ],
        )
        cs.launch(campaign_id)
        return added

    def write_back_salesforce() -> int:
        campaign_id = campaigns["salesforce"]
        cs.wait_for_results(campaign_id)
        written = 0
        for lead in cs.all_leads(campaign_id):
            status = lead["status"]
            sf.Lead.update(
                lead["custom_fields"]["crm_record_id"],
                {
                    "ColdSend_Status__c": status,
                    "ColdSend_Opened__c": bool(lead["email_opened"]),
                    "ColdSend_Replied__c": bool(lead["email_replied"]),
                    "ColdSend_Bounced__c": status == "BOUNCED",
                    "HasOptedOutOfEmail": bool(lead["unsubscribed"]),
                },
            )
            written += 1
        return written

    def write_back_sheet() -> int:
        campaign_id = campaigns["sheets"]
        cs.wait_for_results(campaign_id)
        ws = gc.open_by_key(sheet_id).worksheet("Leads")
        values = ws.get_all_values()
        header = values[0]
        if STATUS_COLUMN not in header:
            if ws.col_count <= len(header):
                ws.add_cols(1)
            ws.update([[STATUS_COLUMN]], rowcol_to_a1(1, len(header) + 1), raw=True)
            header = [*header, STATUS_COLUMN]
        column = header.index(STATUS_COLUMN) + 1
        row_of = {row[0].strip().lower(): i + 1 for i, row in enumerate(values) if i and row}
        written = 0
        for lead in cs.all_leads(campaign_id):
            row = row_of[lead["email"].strip().lower()]
            ws.update_cell(row, column, lead["status"])
            written += 1
        return written

    leads = {"salesforce": plan["salesforce_leads"], "sheets": plan["sheet_leads"]}
    steps = [
        ("sync-salesforce", "sync", sync_salesforce),
        ("sync-sheets", "sync", sync_sheet),
        ("write-back-salesforce", "write-back", write_back_salesforce),
        ("write-back-sheets", "write-back", write_back_sheet),
    ]
    for name, group, fn in steps[:2]:
        added = rec.phase(name, leads[name.rsplit("-", 1)[1]], fn, group=group)
        rec.check(added == leads[name.rsplit("-", 1)[1]], f"naive {name} added every lead")
    rec.sandboxes.advance(plan["advance_steps"])
    for name, group, fn in steps[2:]:
        written = rec.phase(name, leads[name.rsplit("-", 1)[1]], fn, group=group)
        rec.check(written == leads[name.rsplit("-", 1)[1]], f"naive {name} wrote every record")
    if plan.get("rerun", False):
        for name, group, fn in steps:
            rec.phase(f"rerun-{name}", leads[name.rsplit("-", 1)[1]], fn, group=f"rerun-{group}")
    rec.extra["campaigns"] = campaigns
    rec.finish()
