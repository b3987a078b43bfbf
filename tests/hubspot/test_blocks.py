"""HubSpot blocks: Prefect's block standards, fresh paced clients, secrets kept secret, wiring."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import SecretStr

import blocks
from blocks import HubSpotContacts, HubSpotCredentials
from connectors.hubspot import HubSpotContactSource, HubSpotStatusSink
from connectors.leads import FieldMapping, Lead, LeadStatus, StatusUpdate
from sandbox.hubspot.fixtures import HubSpotSandbox


class TestHubSpotBlockStandards(BlockStandardTestSuite):
    @pytest.fixture(params=[HubSpotCredentials, HubSpotContacts], ids=lambda b: b.__name__)
    def block(self, request: pytest.FixtureRequest) -> type[Block]:
        return request.param  # type: ignore[no-any-return]


def test_slugs_and_exports() -> None:
    assert HubSpotContacts.get_block_type_slug() == "hubspot-contacts"
    assert HubSpotCredentials.get_block_type_slug() == "hubspot-credentials"
    assert {"HubSpotContacts", "HubSpotCredentials"} <= set(blocks.__all__)


def test_credentials_build_a_new_paced_client_each_time_and_hide_the_token() -> None:
    creds = HubSpotCredentials(
        access_token=SecretStr("pat-na1-block-secret"), requests_per_ten_seconds=190
    )
    first, second = creds.get_client(), creds.get_client()
    assert first is not second
    assert first.base_url == "https://api.hubapi.com"
    assert first.api_window.limit == 190 and first.search_window.limit == 5
    for text in (repr(creds), str(creds), creds.model_dump_json(), repr(first)):
        assert "block-secret" not in text


def test_the_store_reads_and_writes_back_through_the_sandbox(
    hubspot_sandbox: HubSpotSandbox,
) -> None:
    hubspot_sandbox.add_contacts(
        [
            {"email": "ada@example.com", "firstname": "Ada", "industry": "Math"},
            {"email": "out@example.com", "hs_email_optout": "true"},
        ]
    )
    creds = HubSpotCredentials(
        access_token=SecretStr(hubspot_sandbox.token), base_url=hubspot_sandbox.url
    )
    store = HubSpotContacts(
        credentials=creds,
        mapping=FieldMapping(email="email", custom_fields={"industry": "industry"}),
        filters=[("email", "is set", None)],
    )
    assert store.custom_field_names() == ["industry"]
    assert store.written_columns()[0] == "coldsend_status" and len(store.written_columns()) == 5
    assert store.describe() == "HubSpot contacts where email is set None"
    source = store.lead_source()
    assert isinstance(source, HubSpotContactSource)
    leads = [i for i in source.read() if isinstance(i, Lead)]
    assert {(lead.email, lead.opted_out) for lead in leads} == {
        ("ada@example.com", False),
        ("out@example.com", True),
    }
    ignoring = store.model_copy(update={"ignore_store_opt_outs": True})
    assert not any(i.opted_out for i in ignoring.lead_source().read() if isinstance(i, Lead))
    sink = store.status_sink()
    assert isinstance(sink, HubSpotStatusSink)
    ada = next(lead for lead in leads if lead.email == "ada@example.com")
    result = sink.write_statuses([StatusUpdate(ada.email, LeadStatus.SENT, ada.source_id)])
    assert result.written == 1
    listed = HubSpotContacts(credentials=creds, list_id="7")
    assert listed.describe() == "HubSpot contacts in list 7"
