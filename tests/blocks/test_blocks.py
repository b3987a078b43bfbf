"""Every block passes Prefect's block standards, builds fresh clients and keeps secrets secret."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import SecretStr, ValidationError

import blocks
from blocks import (
    ColdSendCredentials,
    CsvFileLeads,
    GoogleSheetLeads,
    GoogleSheetsCredentials,
    ReportStorage,
    SalesforceCredentials,
    SalesforceLeads,
)
from blocks._logo import LOGO_URL
from connectors.leads import FieldMapping
from tests.conftest import LOGO_FILE

ALL_BLOCKS = [
    ColdSendCredentials,
    SalesforceCredentials,
    GoogleSheetsCredentials,
    SalesforceLeads,
    GoogleSheetLeads,
    CsvFileLeads,
    ReportStorage,
]


class TestBlockStandards(BlockStandardTestSuite):
    @pytest.fixture(params=ALL_BLOCKS, ids=lambda b: b.__name__)
    def block(self, request: pytest.FixtureRequest) -> type[Block]:
        return request.param  # type: ignore[no-any-return]


def test_every_block_shows_the_logo_file_of_this_repository() -> None:
    assert str(LOGO_URL).endswith("/main/" + LOGO_FILE.relative_to(LOGO_FILE.parents[1]).as_posix())
    for block in ALL_BLOCKS:
        assert block._logo_url == LOGO_URL, block.__name__


def test_the_package_exports_every_block_for_prefect_block_register() -> None:
    exported = {getattr(blocks, name) for name in blocks.__all__}
    assert set(ALL_BLOCKS) <= exported


def test_coldsend_credentials_build_a_new_client_each_time_and_hide_the_key() -> None:
    creds = ColdSendCredentials(api_key=SecretStr("cs_live_block-secret-0123456789"))
    first, second = creds.get_client(), creds.get_client()
    try:
        assert first is not second
        assert first.base_url == "https://api.coldsend.pro/api/public/v1"
    finally:
        first.close()
        second.close()
    for text in (repr(creds), str(creds), creds.model_dump_json(), repr(first)):
        assert "block-secret" not in text


def test_coldsend_credentials_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLDSEND_API_KEY", raising=False)
    assert ColdSendCredentials.from_env() is None
    monkeypatch.setenv("COLDSEND_API_KEY", "cs_live_from-env")
    monkeypatch.setenv("COLDSEND_BASE_URL", "http://127.0.0.1:9/api/public/v1")
    creds = ColdSendCredentials.from_env()
    assert creds is not None
    assert creds.api_key.get_secret_value() == "cs_live_from-env"
    assert creds.base_url == "http://127.0.0.1:9/api/public/v1"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"username": "ann@acme.example"},
        {"consumer_key": "key-only"},
        {"session_id": "token-without-instance"},
    ],
)
def test_salesforce_credentials_need_one_complete_recipe(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="one complete recipe"):
        SalesforceCredentials(**kwargs)  # type: ignore[arg-type]


def test_salesforce_credentials_hide_every_secret() -> None:
    creds = SalesforceCredentials(
        username="ann@acme.example",
        password=SecretStr("pw-secret-1"),
        security_token=SecretStr("token-secret-2"),
        consumer_key="ck",
        consumer_secret=SecretStr("cs-secret-3"),
    )
    text = repr(creds) + creds.model_dump_json() + repr(creds.get_client())
    for secret in ("pw-secret-1", "token-secret-2", "cs-secret-3"):
        assert secret not in text


def test_lead_stores_describe_themselves_and_name_custom_fields(tmp_path: object) -> None:
    mapping = FieldMapping(email="Email", custom_fields={"industry": "Sector", "size": "Size"})
    csv_store = CsvFileLeads(path="/data/leads.csv", mapping=mapping)
    assert csv_store.describe() == "CSV file /data/leads.csv"
    assert csv_store.custom_field_names() == ["industry", "size"]
    sheet = GoogleSheetLeads(
        credentials=GoogleSheetsCredentials(api_base_url="http://127.0.0.1:9"),
        spreadsheet_id="sheet-id",
        worksheet="Leads",
        key_column="Id",
        match_by="Id",
    )
    assert sheet.custom_field_names() == []
    assert sheet.status_sink().match_value == "source_id"
    salesforce = SalesforceLeads(
        credentials=SalesforceCredentials(instance_url="https://x.example", session_id="t"),
        filters=[("LeadSource", "=", "Web")],
    )
    assert salesforce.describe() == "Salesforce Lead where LeadSource = 'Web'"
    assert SalesforceLeads.supports_incremental and not CsvFileLeads.supports_incremental
