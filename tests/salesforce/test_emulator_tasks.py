"""The Salesforce emulator's Task activities: composite create, query by the reply key, deletes."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.salesforce.db import SANDBOX_USER_ID
from sandbox.salesforce.fixtures import SalesforceSandbox


class Api:
    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.base = f"{sandbox.url}/services/data/v59.0/"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer {sandbox.token()}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.base + path, timeout=30, **kwargs)


@pytest.fixture
def api(salesforce_sandbox: SalesforceSandbox) -> Api:
    return Api(salesforce_sandbox)


def _task(who: str, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "attributes": {"type": "Task"},
        "WhoId": who,
        "Subject": "Re: hello",
        "Status": "Completed",
        "ColdSend_Reply_Id__c": key,
        **extra,
    }


def test_composite_post_creates_tasks_queryable_by_reply_key(
    salesforce_sandbox: SalesforceSandbox, api: Api
) -> None:
    (lead,) = salesforce_sandbox.insert([{"LastName": "Lovelace", "Email": "ada@example.com"}])
    response = api(
        "POST",
        "composite/sobjects",
        json={"allOrNone": False, "records": [_task(lead, "k1"), _task(lead, "k2")]},
    )
    assert response.status_code == 200
    results = response.json()
    assert [r["success"] for r in results] == [True, True]
    assert all(r["id"].startswith("00T") for r in results)
    found = api(
        "GET",
        "query/",
        params={
            "q": "SELECT Id, WhoId, OwnerId, Status FROM Task WHERE ColdSend_Reply_Id__c IN ('k2', 'zz')"
        },
    ).json()
    assert found["totalSize"] == 1
    record = found["records"][0]
    assert (record["WhoId"], record["OwnerId"], record["Status"]) == (
        lead,
        SANDBOX_USER_ID,
        "Completed",
    )


def test_a_task_on_a_missing_or_deleted_record_fails_per_record(
    salesforce_sandbox: SalesforceSandbox, api: Api
) -> None:
    kept, gone = salesforce_sandbox.insert(
        [{"LastName": "A", "Email": "a@example.com"}, {"LastName": "B", "Email": "b@example.com"}]
    )
    assert api("DELETE", f"sobjects/Lead/{gone}").status_code == 204
    assert api("DELETE", f"sobjects/Lead/{gone}").status_code == 404
    results = api(
        "POST",
        "composite/sobjects",
        json={"allOrNone": False, "records": [_task(kept, "a"), _task(gone, "b")]},
    ).json()
    assert results[0]["success"] is True
    assert results[1]["success"] is False
    assert results[1]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_all_or_none_rolls_back_every_create(
    salesforce_sandbox: SalesforceSandbox, api: Api
) -> None:
    (lead,) = salesforce_sandbox.insert([{"LastName": "A", "Email": "a@example.com"}])
    results = api(
        "POST",
        "composite/sobjects",
        json={"allOrNone": True, "records": [_task(lead, "a"), _task(lead, "b", Status="Nope")]},
    ).json()
    assert [r["success"] for r in results] == [False, False]
    assert salesforce_sandbox.records("Task") == []


def test_composite_delete_and_single_create(
    salesforce_sandbox: SalesforceSandbox, api: Api
) -> None:
    (lead,) = salesforce_sandbox.insert([{"LastName": "A", "Email": "a@example.com"}])
    created = api("POST", "sobjects/Task/", json={"WhoId": lead, "Subject": "Call back"})
    assert created.status_code == 201
    task_id = created.json()["id"]
    results = api("DELETE", "composite/sobjects", params={"ids": f"{task_id},{lead}"}).json()
    assert [r["success"] for r in results] == [True, True]
    assert salesforce_sandbox.records("Task") == []
    assert salesforce_sandbox.records("Lead") == []
