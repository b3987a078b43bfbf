"""Every block type as the Prefect UI meets it: its schema loads, and its form's API call saves it.

The UI's block form reads the type's latest schema, then sends ``POST /block_documents/``
with ``{name, block_schema_id, block_type_id, data}`` (edit: ``PATCH /block_documents/{id}``
with ``{data, merge_existing_data: false}``); a field holding another block is sent as
``{"$ref": {"block_document_id": ...}}``, a saved block picked from a list. These tests make
exactly those calls against a Prefect server and load the result the way the flows do.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prefect.blocks.core import Block
from prefect.filesystems import LocalFileSystem
from prefect.settings import PREFECT_API_URL

import blocks
from blocks import (
    ColdSendCredentials,
    CsvFileLeads,
    GoogleSheetLeads,
    GoogleSheetsCredentials,
    HubSpotContacts,
    HubSpotCredentials,
    ReportStorage,
    SalesforceCredentials,
    SalesforceLeads,
)

# What a user types into each form: required fields only (defaults are the form's own).
FORM_VALUES: dict[type[Block], dict[str, Any]] = {
    ColdSendCredentials: {"api_key": "cs_live_ui-form-0123456789"},
    SalesforceCredentials: {"consumer_key": "key", "consumer_secret": "ui-form-secret"},
    GoogleSheetsCredentials: {"access_token": "ui-form-token"},
    LocalFileSystem: {"basepath": "/srv/coldsend-reports"},
    SalesforceLeads: {"object_name": "Contact", "filters": [["LeadSource", "=", "Web"]]},
    GoogleSheetLeads: {"spreadsheet_id": "1AbCdEf", "worksheet": "Prospects"},
    CsvFileLeads: {"path": "/data/leads.csv"},
    HubSpotCredentials: {"access_token": "pat-ui-form-token"},
    HubSpotContacts: {"list_id": "42"},
    ReportStorage: {"public_url": "https://files.example.com/coldsend"},
}
# Fields that hold another block, and the saved block the form picks for each.
INNER: dict[type[Block], dict[str, type[Block]]] = {
    SalesforceLeads: {"credentials": SalesforceCredentials},
    GoogleSheetLeads: {"credentials": GoogleSheetsCredentials},
    HubSpotContacts: {"credentials": HubSpotCredentials},
    ReportStorage: {"storage": LocalFileSystem},
}
# One setting changed in each lead store's edit form (filters, worksheet, path...).
EDITS: dict[type[Block], tuple[str, Any]] = {
    SalesforceLeads: ("object_name", "Lead"),
    GoogleSheetLeads: ("worksheet", "Q4 list"),
    CsvFileLeads: ("path", "/data/other.csv"),
    HubSpotContacts: ("match_by", "email"),
    ReportStorage: ("public_url", "https://cdn.example.com/reports"),
}
OURS = [
    getattr(blocks, name)
    for name in blocks.__all__
    if isinstance(getattr(blocks, name), type)
    and issubclass(getattr(blocks, name), Block)
    and not getattr(blocks, name).__abstractmethods__
]


class _RetryBusy(httpx.HTTPTransport):
    """Sends a request again when the test server answers 503 (its SQLite database busy under
    a loaded machine), as a person would press Save again; any other answer is kept."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(5):
            response = super().handle_request(request)
            if response.status_code != 503 or attempt == 4:
                return response
            response.read()
            response.close()
            time.sleep(1 + attempt)
        raise AssertionError("unreachable")


@pytest.fixture
def api(prefect_server: None) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=str(PREFECT_API_URL.value()), timeout=30, transport=_RetryBusy()
    ) as client:
        yield client


def latest_schema(api: httpx.Client, block: type[Block]) -> dict[str, Any]:
    """What the UI's form is built from: the block type and its newest schema."""
    block.register_type_and_schema()
    block_type = api.get(f"/block_types/slug/{block.get_block_type_slug()}")
    block_type.raise_for_status()
    found = api.post(
        "/block_schemas/filter",
        json={"block_schemas": {"block_type_id": {"any_": [block_type.json()["id"]]}}},
    )
    found.raise_for_status()
    schema: dict[str, Any] = found.json()[0]
    return schema


def save_through_form(api: httpx.Client, block: type[Block], name: str) -> str:
    """Save `block` the way the UI's create form does; inner blocks are picked saved ones."""
    schema = latest_schema(api, block)
    data = dict(FORM_VALUES[block])
    for field, inner in INNER.get(block, {}).items():
        inner_id = save_through_form(api, inner, f"{name}-{field}")
        data[field] = {"$ref": {"block_document_id": inner_id}}
    response = api.post(
        "/block_documents/",
        json={
            "name": name,
            "block_schema_id": schema["id"],
            "block_type_id": schema["block_type_id"],
            "data": data,
        },
    )
    assert response.status_code == 201, response.text
    document_id: str = response.json()["id"]
    return document_id


def test_every_block_type_of_ours_has_a_form() -> None:
    assert set(OURS) <= set(FORM_VALUES), "add the new block type's form values here"


@pytest.mark.parametrize("block", OURS, ids=lambda b: b.__name__)
def test_the_ui_form_saves_every_block_type_and_the_flows_load_it(
    api: httpx.Client, block: type[Block]
) -> None:
    schema = latest_schema(api, block)
    fields = schema["fields"]
    assert fields["properties"] and fields["block_type_slug"] == block.get_block_type_slug()
    # A field holding another block is offered as a list of saved blocks of that type.
    for field, inner in INNER.get(block, {}).items():
        refs = schema["fields"]["block_schema_references"][field]
        refs = refs if isinstance(refs, list) else [refs]
        assert inner.get_block_type_slug() in {r["block_type_slug"] for r in refs}

    name = f"ui-{uuid.uuid4().hex[:8]}"
    document_id = save_through_form(api, block, name)

    # The block's page: inner blocks are references, shown by name, not "None".
    page = api.get(f"/block_documents/{document_id}").json()
    assert set(page["block_document_references"]) == set(INNER.get(block, {}))
    for field in INNER.get(block, {}):
        assert page["block_document_references"][field]["block_document"]["name"] == (
            f"{name}-{field}"
        )
    loaded = block.load(name)
    for field, value in FORM_VALUES[block].items():
        got = getattr(loaded, field)
        got = got.get_secret_value() if hasattr(got, "get_secret_value") else got
        assert got == value or [list(x) for x in got] == value, field
    for field, inner in INNER.get(block, {}).items():
        assert isinstance(getattr(loaded, field), inner)

    # The edit form: change a setting and send the whole form back.
    if block in EDITS:
        setting, value = EDITS[block]
        data = {**page["data"], setting: value}
        for field in INNER.get(block, {}):
            inner_id = page["block_document_references"][field]["block_document"]["id"]
            data[field] = {"$ref": {"block_document_id": inner_id}}
        edited = api.patch(
            f"/block_documents/{document_id}",
            json={"data": data, "merge_existing_data": False},
        )
        assert edited.status_code == 204, edited.text
        reloaded = block.load(name)
        assert getattr(reloaded, setting) == value
        for field, inner in INNER.get(block, {}).items():
            assert isinstance(getattr(reloaded, field), inner)


def test_a_lead_store_saved_from_python_references_its_credentials(
    api: httpx.Client,
) -> None:
    name = f"py-{uuid.uuid4().hex[:8]}"
    SalesforceLeads(
        credentials=SalesforceCredentials(consumer_key="key", consumer_secret="py-secret")
    ).save(name)

    page = api.get(f"/block_types/slug/salesforce-leads/block_documents/name/{name}").json()
    reference = page["block_document_references"]["credentials"]["block_document"]
    assert reference["name"] == name and reference["block_type"]["slug"] == (
        "salesforce-credentials"
    )
    credentials = SalesforceCredentials.load(name)
    assert credentials.consumer_secret is not None
    assert credentials.consumer_secret.get_secret_value() == "py-secret"

    # A second store may reuse the saved credentials: they are referenced, not copied.
    other = f"{name}-contacts"
    SalesforceLeads(credentials=credentials, object_name="Contact").save(other)
    page = api.get(f"/block_types/slug/salesforce-leads/block_documents/name/{other}").json()
    assert page["block_document_references"]["credentials"]["block_document"]["name"] == name

    # Saving again under a name whose credentials exist asks before replacing them.
    with pytest.raises(ValueError, match=r"overwrite=True .* SalesforceCredentials.load"):
        SalesforceLeads(
            credentials=SalesforceCredentials(consumer_key="k2", consumer_secret="s2")
        ).save(name)
