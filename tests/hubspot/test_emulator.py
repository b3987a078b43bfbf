"""The HubSpot emulator's answers, as HubSpot documents them, over plain HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox._server import serving
from sandbox.hubspot import create_app
from sandbox.hubspot.app import READ
from sandbox.hubspot.fixtures import HubSpotSandbox

CONTACTS = "/crm/v3/objects/contacts"


def _call(
    sandbox: HubSpotSandbox, method: str, path: str, token: str | None = None, **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or sandbox.token}"}
    return sandbox.http.request(method, sandbox.url + path, headers=headers, timeout=60, **kwargs)


def test_search_pages_stop_at_10000_with_a_400(hubspot_sandbox: HubSpotSandbox) -> None:
    hubspot_sandbox.seed(10_200, same_modified=10_200)
    body = {"limit": 200, "after": "9800"}
    page = _call(hubspot_sandbox, "POST", CONTACTS + "/search", json=body).json()
    assert page["total"] == 10_200 and len(page["results"]) == 200
    assert page["paging"]["next"]["after"] == "10000"  # offered, as HubSpot does
    refused = _call(hubspot_sandbox, "POST", CONTACTS + "/search", json={**body, "after": "10000"})
    assert refused.status_code == 400
    assert refused.json()["category"] == "VALIDATION_ERROR"
    assert {"status", "message", "correlationId"} <= set(refused.json())


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 201},
        {"sorts": [{"propertyName": "email"}, {"propertyName": "createdate"}]},
        {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]},
        {
            "filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "LIKE", "value": "1"}]}
            ]
        },
        {"filterGroups": [{"filters": []}] * 6},
        {
            "filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 7}
            ]
        },
    ],
)
def test_searches_hubspot_refuses_are_refused(hubspot_sandbox: HubSpotSandbox, body: Any) -> None:
    answer = _call(hubspot_sandbox, "POST", CONTACTS + "/search", json=body)
    assert answer.status_code == 400, answer.text


def test_search_filters_sorts_and_default_properties(hubspot_sandbox: HubSpotSandbox) -> None:
    hubspot_sandbox.add_contacts(
        [
            {"email": "b@example.com", "firstname": "Bo", "lifecyclestage": "lead"},
            {"email": "A@example.com", "firstname": "Al", "lifecyclestage": "lead"},
            {"email": "c@example.com", "firstname": "Cy", "lifecyclestage": "customer"},
        ]
    )
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}]},
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": "C@EXAMPLE.COM"}]},
        ],
        "sorts": [{"propertyName": "firstname", "direction": "DESCENDING"}],
    }
    page = _call(hubspot_sandbox, "POST", CONTACTS + "/search", json=body).json()
    assert [r["properties"]["firstname"] for r in page["results"]] == ["Cy", "Bo", "Al"]
    assert set(page["results"][0]["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }
    assert (
        "X-HubSpot-RateLimit-Max"
        not in _call(hubspot_sandbox, "POST", CONTACTS + "/search", json={}).headers
    )


def test_list_pages_by_id_with_repeated_or_comma_separated_properties(
    hubspot_sandbox: HubSpotSandbox,
) -> None:
    hubspot_sandbox.seed(150)
    first = _call(
        hubspot_sandbox, "GET", CONTACTS, params=[("limit", 100), ("properties", "email,company")]
    )
    assert first.headers["X-HubSpot-RateLimit-Max"] == "1000000"
    body = first.json()
    assert len(body["results"]) == 100
    assert set(body["results"][0]["properties"]) == {"email", "company"}
    after = body["paging"]["next"]["after"]
    second = _call(
        hubspot_sandbox,
        "GET",
        CONTACTS,
        params=[
            ("limit", 100),
            ("after", after),
            ("properties", "email"),
            ("properties", "company"),
        ],
    ).json()
    assert len(second["results"]) == 50 and "paging" not in second
    assert _call(hubspot_sandbox, "GET", CONTACTS, params={"limit": 101}).status_code == 400


def test_batches_answer_207_with_per_row_errors(hubspot_sandbox: HubSpotSandbox) -> None:
    (cid,) = hubspot_sandbox.add_contacts([{"email": "a@example.com"}])
    inputs = [{"id": cid, "properties": {"firstname": "Ann"}}, {"id": "999999", "properties": {}}]
    answer = _call(hubspot_sandbox, "POST", CONTACTS + "/batch/update", json={"inputs": inputs})
    assert answer.status_code == 207
    body = answer.json()
    assert body["status"] == "COMPLETE" and body["numErrors"] == 1
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"]["ids"] == ["999999"]
    assert [r["id"] for r in body["results"]] == [cid]
    bad = _call(
        hubspot_sandbox,
        "POST",
        CONTACTS + "/batch/update",
        json={"inputs": [{"id": cid, "properties": {"hs_object_id": "1", "nope": "x"}}]},
    )
    assert bad.status_code == 400 and "PROPERTY_DOESNT_EXIST" in bad.json()["message"]
    too_many = [{"id": str(i)} for i in range(101)]
    assert (
        _call(
            hubspot_sandbox, "POST", CONTACTS + "/batch/read", json={"inputs": too_many}
        ).status_code
        == 400
    )
    created = _call(
        hubspot_sandbox,
        "POST",
        CONTACTS + "/batch/create",
        json={"inputs": [{"properties": {"email": "new@example.com"}}]},
    )
    assert created.status_code == 201
    conflict = _call(
        hubspot_sandbox, "POST", CONTACTS, json={"properties": {"email": "NEW@example.com"}}
    )
    assert conflict.status_code == 409


def test_tokens_and_scopes(hubspot_sandbox: HubSpotSandbox) -> None:
    unknown = _call(hubspot_sandbox, "GET", CONTACTS, token="nope")
    assert unknown.status_code == 401 and unknown.json()["category"] == "INVALID_AUTHENTICATION"
    expired = hubspot_sandbox.new_token(expires_in=0)
    assert _call(hubspot_sandbox, "GET", CONTACTS, token=expired).json()["category"] == (
        "EXPIRED_AUTHENTICATION"
    )
    reader = hubspot_sandbox.new_token([READ])
    refused = _call(hubspot_sandbox, "POST", CONTACTS + "/batch/update", token=reader, json={})
    assert refused.status_code == 403
    body = refused.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.write"]


def test_rate_limit_buckets_answer_hubspots_429(hubspot_sandbox: HubSpotSandbox) -> None:
    hubspot_sandbox.set_limits(ten_second_limit=2, search_per_second=1)
    first = _call(hubspot_sandbox, "GET", CONTACTS)
    assert first.headers["X-HubSpot-RateLimit-Remaining"] == "1"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    _call(hubspot_sandbox, "GET", CONTACTS)
    limited = _call(hubspot_sandbox, "GET", CONTACTS)
    assert limited.status_code == 429
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert limited.json()["errorType"] == "RATE_LIMIT"
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    _call(hubspot_sandbox, "POST", CONTACTS + "/search", json={})  # its own bucket
    search = _call(hubspot_sandbox, "POST", CONTACTS + "/search", json={})
    assert search.status_code == 429 and search.json()["policyName"] == "SECONDLY"
    stats = hubspot_sandbox.stats()
    assert stats["rate_limited"] == {"TEN_SECONDLY_ROLLING": 1, "SECONDLY": 1}
    assert stats["requests"][f"GET {CONTACTS}"] == 3


def test_properties_and_groups(hubspot_sandbox: HubSpotSandbox) -> None:
    props = _call(hubspot_sandbox, "GET", "/crm/v3/properties/contacts").json()["results"]
    optout = next(p for p in props if p["name"] == "hs_email_optout")
    assert optout["type"] == "bool" and optout["modificationMetadata"]["readOnlyValue"]
    new = {"name": "tier", "label": "Tier", "type": "string", "fieldType": "text", "groupName": "x"}
    assert (
        _call(hubspot_sandbox, "POST", "/crm/v3/properties/contacts", json=new).status_code == 400
    )
    group = {"name": "x", "label": "X"}
    assert (
        _call(hubspot_sandbox, "POST", "/crm/v3/properties/contacts/groups", json=group).status_code
        == 201
    )
    assert (
        _call(hubspot_sandbox, "POST", "/crm/v3/properties/contacts", json=new).status_code == 201
    )
    assert (
        _call(hubspot_sandbox, "POST", "/crm/v3/properties/contacts", json=new).status_code == 409
    )
    assert (
        _call(hubspot_sandbox, "GET", "/crm/v3/properties/contacts/tier").json()["groupName"] == "x"
    )


def test_state_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "hubspot.db")
    app = create_app(db_path=db, token="tok")
    app.state.store.seed(5)
    with serving(app) as server:
        headers = {"Authorization": "Bearer tok"}
        requests.post(
            server.url + "/crm/v3/properties/contacts/groups",
            json={"name": "coldsend", "label": "ColdSend"},
            headers=headers,
            timeout=30,
        ).raise_for_status()
        requests.post(
            server.url + CONTACTS + "/batch/update",
            json={"inputs": [{"id": "1001", "properties": {"firstname": "Changed"}}]},
            headers=headers,
            timeout=30,
        ).raise_for_status()
    again = create_app(db_path=db, token="tok")
    assert len(again.state.store.contacts) == 5
    assert again.state.store.contacts[1001].props["firstname"] == "Changed"
    assert "coldsend" in again.state.store.groups
