"""The sandboxes plus saved blocks pointing at them, on one Prefect test server (a pytest plugin)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from blocks import (
    ColdSendCredentials,
    CsvFileLeads,
    GoogleSheetLeads,
    GoogleSheetsCredentials,
    SalesforceCredentials,
    SalesforceLeads,
)
from connectors.coldsend import ColdSendClient
from connectors.leads import FieldMapping
from flows.scopes import FLOW_SCOPES as ALL_FLOW_SCOPES
from sandbox.coldsend.fixtures import ColdSendControl
from sandbox.salesforce.fixtures import SalesforceSandbox
from sandbox.sheets.fixtures import SheetsSandbox

# Everything the flows need, nothing more (least privilege is part of what is tested).
FLOW_SCOPES = sorted(ALL_FLOW_SCOPES["pipeline"] | ALL_FLOW_SCOPES["write-back"])


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One Prefect test server for the whole session (it takes 6 to 22 s to start here)."""
    with prefect_test_harness(server_startup_timeout=90):
        yield


@dataclass
class Stack:
    """The sandboxes plus saved blocks pointing at them; names are unique per test."""

    coldsend: ColdSendControl
    salesforce: SalesforceSandbox
    sheets: SheetsSandbox
    coldsend_block: str
    api_key: str
    tag: str

    def client(self) -> ColdSendClient:
        return ColdSendClient(self.api_key, base_url=self.coldsend.base_url)

    def new_campaign(self, name: str = "Flow test campaign") -> str:
        with self.client() as client:
            return client.create_campaign(name=f"{name} {self.tag}").campaign_id

    def campaign_emails(self, campaign_id: str) -> list[str]:
        with self.client() as client, client.export_leads(campaign_id) as rows:
            return [row.email for row in rows]

    def salesforce_store(self, **kwargs: object) -> str:
        name = f"sf-{self.tag}"
        SalesforceLeads(
            credentials=SalesforceCredentials(**self.salesforce.connection_kwargs()),
            **kwargs,
        ).save(name, overwrite=True)
        return f"salesforce-leads/{name}"

    def sheet_store(self, spreadsheet_id: str, **kwargs: object) -> str:
        name = f"sheet-{self.tag}"
        GoogleSheetLeads(
            credentials=GoogleSheetsCredentials(api_base_url=self.sheets.url),
            spreadsheet_id=spreadsheet_id,
            **kwargs,
        ).save(name, overwrite=True)
        return f"google-sheet-leads/{name}"

    def csv_store(self, path: Path, mapping: FieldMapping | None = None) -> str:
        name = f"csv-{self.tag}"
        CsvFileLeads(path=str(path), mapping=mapping).save(name, overwrite=True)
        return f"csv-file-leads/{name}"


@pytest.fixture
def stack(
    prefect_server: None,
    coldsend_sandbox: ColdSendControl,
    salesforce_sandbox: SalesforceSandbox,
    sheets_sandbox: SheetsSandbox,
) -> Stack:
    tag = uuid.uuid4().hex[:8]
    api_key = coldsend_sandbox.new_key(FLOW_SCOPES)
    ColdSendCredentials(api_key=api_key, base_url=coldsend_sandbox.base_url).save(
        f"cs-{tag}", overwrite=True
    )
    return Stack(
        coldsend=coldsend_sandbox,
        salesforce=salesforce_sandbox,
        sheets=sheets_sandbox,
        coldsend_block=f"cs-{tag}",
        api_key=api_key,
        tag=tag,
    )
