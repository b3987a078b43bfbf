"""The sync definitions format: the shipped JSON Schema is current, and models map to stores."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from app.definitions import (
    SCHEMA_PATH,
    Definitions,
    DefinitionsError,
    json_schema,
    load_definitions,
    parse_definitions,
)
from blocks import CsvFileLeads

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_schema_is_generated_from_the_models() -> None:
    shipped = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert shipped == json_schema(), (
        "app/coldsend.schema.json is stale: regenerate it with "
        "`prefect-coldsend schema > app/coldsend.schema.json`"
    )


def test_the_readme_example_validates_against_the_schema_and_the_models() -> None:
    example = yaml.safe_load((ROOT / "examples" / "coldsend.yaml").read_text(encoding="utf-8"))
    jsonschema.validate(example, json_schema())
    parsed = parse_definitions(example)
    assert [s.name for s in parsed.syncs] == ["web-leads", "salesforce-web", "events-sheet"]


def test_the_schema_rejects_what_the_models_reject() -> None:
    bad = {"syncs": [{"name": "x", "source": {"csv": "a.csv"}, "campaign": {"id": "1"}, "typo": 1}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json_schema())
    with pytest.raises(DefinitionsError, match="sync 'x', field typo"):
        parse_definitions(bad)


def test_an_inline_csv_store_keeps_one_match_key_and_write_back_columns(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_text("Email,CRM Id\na@example.com,1\n")
    (tmp_path / "coldsend.yaml").write_text(
        yaml.safe_dump(
            {
                "syncs": [
                    {
                        "name": "by-key",
                        "source": {"csv": "leads.csv"},
                        "key_column": "CRM Id",
                        "campaign": {"id": "c"},
                        "write_back": {"status": "Stage"},
                        "opt_outs": {"ignore_store_opt_outs": True},
                    },
                    {"name": "by-email", "source": {"csv": "leads.csv"}, "campaign": {"id": "c"}},
                ]
            }
        )
    )
    definitions = load_definitions(tmp_path / "coldsend.yaml")
    assert isinstance(definitions, Definitions)
    by_key, by_email = (definitions.lead_store(s) for s in definitions.syncs)
    assert isinstance(by_key, CsvFileLeads) and isinstance(by_email, CsvFileLeads)
    assert by_key.path == str(tmp_path / "leads.csv")
    assert (by_key.match_by, by_key.key_column, by_key.status_column) == (
        "CRM Id",
        "CRM Id",
        "Stage",
    )
    assert by_key.ignore_store_opt_outs is True
    assert by_email.match_by is None  # the column the mapping reads emails from


def test_a_saved_block_source_refuses_settings_the_block_holds(tmp_path: Path) -> None:
    data = {
        "syncs": [
            {
                "name": "saved",
                "source": {"block": "salesforce-leads/acme"},
                "mapping": {"email": "Email"},
                "campaign": {"id": "c"},
            }
        ]
    }
    with pytest.raises(DefinitionsError, match="holds its own mapping: edit the block"):
        parse_definitions(data)


def test_inline_crm_sources_load_their_credentials_blocks_by_name(
    prefect_server: None, tmp_path: Path
) -> None:
    from blocks import HubSpotContacts, HubSpotCredentials, SalesforceCredentials, SalesforceLeads

    HubSpotCredentials(access_token="pat-test", base_url="http://127.0.0.1:9").save(
        "defs-hs", overwrite=True
    )
    SalesforceCredentials(instance_url="http://127.0.0.1:9", session_id="s").save(
        "defs-sf", overwrite=True
    )
    data = {
        "syncs": [
            {
                "name": "sf",
                "source": {
                    "salesforce": {
                        "object": "Contact",
                        "filters": [["LeadSource", "=", "Web"]],
                        "credentials": "defs-sf",
                    }
                },
                "match_by": "email",
                "opt_outs": {"column": "Do_Not_Email__c"},
                "write_back": {"status": "Stage__c"},
                "campaign": {"id": "c"},
            },
            {
                "name": "hs",
                "source": {
                    "hubspot": {"list_id": "42", "credentials": "hubspot-credentials/defs-hs"}
                },
                "campaign": {"id": "c"},
            },
            {
                "name": "missing",
                "source": {"hubspot": {"credentials": "nope"}},
                "campaign": {"id": "c"},
            },
        ]
    }
    definitions = Definitions(parse_definitions(data), base=tmp_path)
    sf, hs, missing = definitions.syncs
    sf_store = definitions.lead_store(sf)
    assert isinstance(sf_store, SalesforceLeads)
    assert (sf_store.object_name, sf_store.match_by, sf_store.status_field) == (
        "Contact",
        "email",
        "Stage__c",
    )
    assert sf_store.filters == [("LeadSource", "=", "Web")]
    assert sf_store.opt_out_field == "Do_Not_Email__c"
    hs_store = definitions.lead_store(hs)
    assert isinstance(hs_store, HubSpotContacts)
    assert (hs_store.list_id, hs_store.match_by) == ("42", "id")
    with pytest.raises(
        DefinitionsError,
        match=r"sync 'missing', field source\.hubspot\.credentials: no HubSpotCredentials block named 'nope'",
    ):
        definitions.lead_store(missing)


def test_a_secret_in_the_file_is_refused_with_where_it_belongs() -> None:
    data = {
        "syncs": [
            {
                "name": "sf",
                "source": {"salesforce": {"credentials": "acme", "password": "hunter2"}},
                "campaign": {"id": "c"},
            }
        ],
        "api_key": "cs_live_abc",
    }
    with pytest.raises(DefinitionsError) as info:
        parse_definitions(data)
    problems = info.value.problems
    assert any(
        p.startswith("sync 'sf', field source.salesforce.password") and "credentials block" in p
        for p in problems
    ), problems
    assert any(p.startswith("file, field api_key") and "COLDSEND_API_KEY" in p for p in problems)
    assert "hunter2" not in str(info.value) and "cs_live_abc" not in str(info.value)
