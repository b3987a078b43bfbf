"""The Salesforce emulator's wire behaviour, checked with plain HTTP where the shape matters."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from sandbox.salesforce.fixtures import SalesforceSandbox


class Api:
    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.base = f"{sandbox.url}/services/data/v59.0/"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer {sandbox.token()}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.base + path
        return self.http.request(method, url, timeout=30, **kwargs)


@pytest.fixture
def api(salesforce_sandbox: SalesforceSandbox) -> Api:
    return Api(salesforce_sandbox)


def test_query_pages_at_2000_with_next_records_url(
    salesforce_sandbox: SalesforceSandbox, api: Api
) -> None:
    salesforce_sandbox.seed(2001)
    first = api("GET", "query/", params={"q": "SELECT Id FROM Lead ORDER BY Id"}).json()
    assert (first["totalSize"], first["done"], len(first["records"])) == (2001, False, 2000)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    assert first["records"][0]["attributes"]["type"] == "Lead"
    second = api("GET", salesforce_sandbox.url + first["nextRecordsUrl"]).json()
    assert (second["done"], len(second["records"])) == (True, 1)
    assert "nextRecordsUrl" not in second


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY"),
        ('SELECT Id FROM Lead WHERE Email = "x"', "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Email = 'a\\qb'", "MALFORMED_QUERY"),
        ("SELECT Id, Nope__c FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Lead WHERE HasOptedOutOfEmail = 'true'", "INVALID_FIELD"),
        ("SELECT Id FROM Lead WHERE CreatedDate > '2024-01-01'", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
    ],
)
def test_bad_queries_answer_400_with_salesforce_error_codes(api: Api, soql: str, code: str) -> None:
    response = api("GET", "query/", params={"q": soql})
    assert response.status_code == 400
    body = response.json()
    assert isinstance(body, list) and body[0]["errorCode"] == code and body[0]["message"]


def test_where_order_limit_offset_follow_soql_semantics(
    salesforce_sandbox: SalesforceSandbox, api: Api
) -> None:
    ids = salesforce_sandbox.insert(
        [
            {"Email": "a@x.io", "Country": "US", "HasOptedOutOfEmail": False},
            {"Email": "b@x.io", "Country": None, "HasOptedOutOfEmail": True},
            {"Email": "c@x.io", "Country": "ca", "HasOptedOutOfEmail": False},
            {"Email": "O'Hara@x.io", "Country": "DE", "HasOptedOutOfEmail": False},
        ]
    )

    def q(where: str, tail: str = "ORDER BY Email") -> list[str]:
        body = api(
            "GET", "query/", params={"q": f"SELECT Id FROM Lead WHERE {where} {tail}"}
        ).json()
        return [r["Id"] for r in body["records"]]

    assert q("Country != 'US'") == [ids[1], ids[2], ids[3]]  # != keeps nulls, as in SOQL
    assert q("Country IN ('CA', 'de')") == [ids[2], ids[3]]  # case-insensitive text
    assert q("NOT (Country = null OR HasOptedOutOfEmail = true) AND Email LIKE '%x.io'") == [
        ids[0],
        ids[2],
        ids[3],
    ]
    assert q("Email = 'o\\'hara@x.io'") == [ids[3]]
    assert q("Email != null", "ORDER BY Country DESC NULLS LAST, Email LIMIT 2 OFFSET 1") == [
        ids[3],
        ids[2],
    ]
    assert q("CreatedDate > 2000-01-01T00:00:00Z", "ORDER BY Email LIMIT 1") == [ids[0]]
    count = api(
        "GET", "query/", params={"q": "SELECT COUNT() FROM Lead WHERE Country NOT IN ('US')"}
    )
    assert count.json()["totalSize"] == 3


def test_errors_limits_and_token_expiry_use_salesforce_shapes(
    salesforce_sandbox: SalesforceSandbox, api: Api
) -> None:
    ok = api("GET", "sobjects/Lead/describe")
    assert ok.headers["Sforce-Limit-Info"] == "api-usage=1/15000"
    fields = {f["name"]: f for f in ok.json()["fields"]}
    assert fields["SystemModstamp"]["updateable"] is False
    assert fields["ColdSend_Opened__c"]["type"] == "boolean"

    missing = api("GET", "sobjects/Lead/00Q000000000ZZZAAA")
    assert (missing.status_code, missing.json()[0]["errorCode"]) == (404, "NOT_FOUND")

    salesforce_sandbox.set_limits(daily_limit=2)
    api("GET", "limits/")
    refused = api("GET", "limits/")
    assert refused.status_code == 403
    assert refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"

    salesforce_sandbox.set_limits(daily_limit=100, token_ttl_seconds=0.05)
    short = Api(salesforce_sandbox)
    time.sleep(0.1)
    expired = short("GET", "limits/")
    assert (expired.status_code, expired.json()[0]["errorCode"]) == (401, "INVALID_SESSION_ID")


def test_sobject_patch_and_composite_report_per_record(
    salesforce_sandbox: SalesforceSandbox, api: Api
) -> None:
    ids = salesforce_sandbox.seed(2)
    before = salesforce_sandbox.by_id()
    patched = api("PATCH", f"sobjects/Lead/{ids[0]}", json={"ColdSend_Status__c": "SENT"})
    assert patched.status_code == 204
    after = salesforce_sandbox.by_id()[ids[0]]
    assert after["ColdSend_Status__c"] == "SENT"
    assert after["SystemModstamp"] > before[ids[0]]["SystemModstamp"]

    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Lead"}, "id": ids[1], "ColdSend_Opened__c": True},
            {"attributes": {"type": "Lead"}, "id": "bogus", "ColdSend_Opened__c": True},
            {"attributes": {"type": "Lead"}, "id": ids[0], "SystemModstamp": "2020-01-01"},
        ],
    }
    results = api("PATCH", "composite/sobjects", json=body).json()
    assert [r["success"] for r in results] == [True, False, False]
    assert results[1]["errors"][0]["statusCode"] == "MALFORMED_ID"
    assert results[2]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"

    too_many = {"allOrNone": False, "records": [body["records"][0]] * 201}
    assert api("PATCH", "composite/sobjects", json=too_many).status_code == 400

    all_or_none = api("PATCH", "composite/sobjects", json={**body, "allOrNone": True}).json()
    assert all_or_none[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"


def test_bulk_ingest_and_query_follow_the_2_0_protocol(
    salesforce_sandbox: SalesforceSandbox, api: Api
) -> None:
    ids = salesforce_sandbox.seed(5)
    job = api(
        "POST", "jobs/ingest", json={"object": "Lead", "operation": "update", "contentType": "CSV"}
    ).json()
    assert job["state"] == "Open"
    csv_body = (
        "Id,ColdSend_Status__c,ColdSend_Opened__c\n"
        + "".join(f"{i},OPENED,true\n" for i in ids[:3])
        + "00Q000000000ZZZAAA,OPENED,true\n"
    )
    put = api(
        "PUT",
        f"jobs/ingest/{job['id']}/batches",
        data=csv_body,
        headers={"Content-Type": "text/csv"},
    )
    assert put.status_code == 201
    done = api("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"}).json()
    assert (done["state"], done["numberRecordsProcessed"], done["numberRecordsFailed"]) == (
        "JobComplete",
        4,
        1,
    )
    failed = api("GET", f"jobs/ingest/{job['id']}/failedResults").text.splitlines()
    assert failed[0] == "sf__Id,sf__Error,Id,ColdSend_Status__c,ColdSend_Opened__c"
    assert failed[1].startswith("00Q000000000ZZZAAA,ENTITY_IS_DELETED")
    ok = api("GET", f"jobs/ingest/{job['id']}/successfulResults").text.splitlines()
    assert len(ok) == 4 and ok[1].startswith(f"{ids[0]},false,")

    query = api(
        "POST",
        "jobs/query",
        json={"operation": "query", "query": "SELECT Id FROM Lead ORDER BY Id"},
    ).json()
    page = api("GET", f"jobs/query/{query['id']}/results", params={"maxRecords": 2})
    assert page.headers["Sforce-NumberOfRecords"] == "2"
    assert page.text.splitlines() == ["Id", ids[0], ids[1]]
    seen = page.text.splitlines()[1:]
    locator = page.headers["Sforce-Locator"]
    while locator != "null":
        page = api(
            "GET", f"jobs/query/{query['id']}/results", params={"maxRecords": 2, "locator": locator}
        )
        seen += page.text.splitlines()[1:]
        locator = page.headers["Sforce-Locator"]
    assert seen == ids

    bad = api("POST", "jobs/query", json={"operation": "query", "query": "SELECT Nope FROM Lead"})
    assert (bad.status_code, bad.json()[0]["errorCode"]) == (400, "INVALID_FIELD")


def test_control_surface_counts_requests_and_resets(
    salesforce_sandbox: SalesforceSandbox, api: Api
) -> None:
    api("GET", "limits/")
    stats = salesforce_sandbox.stats()
    assert stats["requests"] == {"GET /services/data/v{version}/limits/": 1}
    assert stats["total"] == 1
    assert salesforce_sandbox.set_faults(latency_ms=1)["latency_ms"] == 1
    salesforce_sandbox.reset()
    assert salesforce_sandbox.stats()["total"] == 0
    assert salesforce_sandbox.records() == []
    # Tokens are gone after a reset.
    assert api("GET", "limits/").status_code == 401


def test_hundred_thousand_records_seed_and_query_quickly(
    salesforce_sandbox: SalesforceSandbox, api: Api
) -> None:
    started = time.perf_counter()
    ids = salesforce_sandbox.seed(100_000, seed=5)
    last = api("GET", f"sobjects/Lead/{ids[-1]}").json()
    count = api(
        "GET", "query/", params={"q": f"SELECT COUNT() FROM Lead WHERE Email = '{last['Email']}'"}
    )
    since = api(
        "GET",
        "query/",
        params={
            "q": "SELECT Id FROM Lead WHERE SystemModstamp > 2000-01-01T00:00:00Z ORDER BY SystemModstamp, Id LIMIT 3"
        },
    )
    assert len(ids) == 100_000
    assert count.json()["totalSize"] == 1
    assert [r["Id"] for r in since.json()["records"]] == ids[:3]
    # A guard against a hang or a quadratic seed, not a speed target (bench/ measures speed):
    # a few seconds on an idle machine.
    assert time.perf_counter() - started < 120


def test_bulk_upsert_by_email_updates_matches_and_inserts_the_rest(
    salesforce_sandbox: SalesforceSandbox, conn: Any
) -> None:
    (existing,) = salesforce_sandbox.insert([{"Email": "old@x.io", "LastName": "Old"}])
    sf = conn.client
    (job,) = sf.bulk2.Lead.upsert(
        records=[
            {
                "Email": "OLD@x.io",
                "LastName": "Renamed",
                "Company": "",
                "ColdSend_Opened__c": "true",
            },
            # A new Lead needs its Company, as in a real org (REQUIRED_FIELD_MISSING otherwise).
            {"Email": "new@x.io", "LastName": "New", "Company": "N", "ColdSend_Opened__c": "false"},
        ],
        external_id_field="Email",
        wait=0,
    )
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (2, 0)
    records = {r["Email"].lower(): r for r in salesforce_sandbox.records()}
    assert records["old@x.io"]["Id"] == existing
    assert (records["old@x.io"]["LastName"], records["old@x.io"]["ColdSend_Opened__c"]) == (
        "Renamed",
        True,
    )
    assert (records["new@x.io"]["LastName"], records["new@x.io"]["ColdSend_Opened__c"]) == (
        "New",
        False,
    )


def test_deletions_survive_a_restart_and_ids_are_never_reused(tmp_path: Any) -> None:
    from sandbox.salesforce.db import OBJECTS, Database

    path = str(tmp_path / "sf.db")
    lead = OBJECTS["Lead"]
    db = Database(path)
    first, second = db.insert(
        lead, [{"LastName": "A", "Company": "C"}, {"LastName": "B", "Company": "C"}]
    )
    assert db.delete(lead, first)
    db.commit()
    again = Database(path)
    (third,) = again.insert(lead, [{"LastName": "C", "Company": "C"}])
    assert third not in (first, second)
    deleted, earliest = again.deleted_between(lead, "", "9999")
    assert [rid for rid, _ in deleted] == [first] and earliest == deleted[0][1]
