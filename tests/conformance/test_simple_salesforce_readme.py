"""simple-salesforce's README, call by call, against the Salesforce sandbox.

Each test runs the README's calls as written (the objects and fields are the sandbox's: Contact,
Lead and Account with an ``External_Id__c`` external-id field standing in for the README's
made-up custom fields) and checks the answers' shapes against Salesforce's REST API reference:
create ``{id, success, errors}``, upsert ``201 {..., created: true}`` / ``200 {..., created:
false}``, query ``{totalSize, done, records[attributes{type, url}]}``, ``deleted/`` and
``updated/`` bodies, Bulk 2.0 job info and results CSV headers. Calls the sandbox does not
emulate (SOSL search, Bulk 1.0, Apex, the Metadata API) are listed in the README's sandbox
section, not here.
"""

from __future__ import annotations

import csv
import datetime
import io
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import format_soql
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_external_id

from sandbox.clients import salesforce_client
from sandbox.salesforce.fixtures import SalesforceSandbox

_RESULT_KEYS = {"id", "success", "errors"}
_ERROR_KEYS = {"statusCode", "message", "fields"}


def _is_sf_id(value: Any, prefix: str) -> bool:
    return isinstance(value, str) and len(value) == 18 and value.startswith(prefix)


def test_every_login_of_the_readme_reaches_the_sandbox(
    salesforce_sandbox: SalesforceSandbox,
) -> None:
    by_password = salesforce_client(
        salesforce_sandbox.url,
        username=salesforce_sandbox.username,
        password=salesforce_sandbox.password,
        security_token=salesforce_sandbox.security_token,
    )
    by_client_credentials = salesforce_client(
        salesforce_sandbox.url,
        consumer_key=salesforce_sandbox.client_id,
        consumer_secret=salesforce_sandbox.client_secret,
    )
    by_session = salesforce_client(salesforce_sandbox.url, session_id=by_password.session_id)
    for sf in (by_password, by_client_credentials, by_session):
        assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0
    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
        salesforce_client(
            salesforce_sandbox.url,
            username=salesforce_sandbox.username,
            password="wrong",
            security_token=salesforce_sandbox.security_token,
        )
    with pytest.raises(ValueError, match="username"):
        salesforce_client(salesforce_sandbox.url, username="only-a-name")


def test_record_management(sf: Salesforce) -> None:
    created = sf.Contact.create({"LastName": "Smith", "Email": "example@example.com"})
    assert set(created) == _RESULT_KEYS
    assert created["success"] is True and created["errors"] == []
    contact_id = created["id"]
    assert _is_sf_id(contact_id, "003")

    contact = sf.Contact.get(contact_id)
    assert contact["attributes"] == {
        "type": "Contact",
        "url": f"/services/data/v{sf.sf_version}/sobjects/Contact/{contact_id}",
    }
    assert (contact["Id"], contact["LastName"], contact["Email"]) == (
        contact_id,
        "Smith",
        "example@example.com",
    )

    assert sf.Contact.update(contact_id, {"LastName": "Jones", "FirstName": "John"}) == 204
    again = sf.Contact.get(contact_id)
    assert (again["FirstName"], again["LastName"], again["Name"]) == ("John", "Jones", "John Jones")

    assert sf.Contact.delete(contact_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(contact_id)

    # The README's window ends now; a second later here, as its end is cut to whole seconds.
    end = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
    deleted = sf.Contact.deleted(end - datetime.timedelta(days=10), end)
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    assert [r["id"] for r in deleted["deletedRecords"]] == [contact_id]
    assert set(deleted["deletedRecords"][0]) == {"id", "deletedDate"}

    kept = sf.Contact.create({"LastName": "Kept"})["id"]
    end = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
    updated = sf.Contact.updated(end - datetime.timedelta(days=10), end)
    assert set(updated) == {"ids", "latestDateCovered"}
    assert updated["ids"] == [kept]


def test_custom_external_ids_get_and_upsert(sf: Salesforce) -> None:
    # The README's get_by_custom_id('My_Custom_ID__c', '22') and
    # upsert('customExtIdField__c/11999', ...), on the sandbox's external-id field.
    created = sf.Contact.upsert(
        "External_Id__c/11999", {"LastName": "Smith", "Email": "smith@example.com"}
    )
    assert created == 201
    assert sf.Contact.upsert("External_Id__c/11999", {"LastName": "Smythe"}) == 200
    raw = sf.Contact.upsert("External_Id__c/11999", {"FirstName": "Jo"}, raw_response=True)
    body = raw.json()
    assert set(body) == {"id", "success", "errors", "created"} and body["created"] is False

    found = sf.Contact.get_by_custom_id("External_Id__c", "11999")
    assert (found["LastName"], found["FirstName"], found["Email"]) == (
        "Smythe",
        "Jo",
        "smith@example.com",
    )
    assert found["Id"] == body["id"]

    external_id = format_external_id("External_Id__c", "this/that & the other")
    assert sf.Contact.upsert(external_id, {"LastName": "Other"}) == 201
    odd = sf.Contact.get_by_custom_id("External_Id__c", "this/that & the other")
    assert odd["External_Id__c"] == "this/that & the other"

    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get_by_custom_id("External_Id__c", "no-such-id")
    with pytest.raises(SalesforceResourceNotFound, match="external ID field"):
        sf.Contact.upsert("LastName/Smythe", {"FirstName": "X"})


def test_queries(sf: Salesforce, salesforce_sandbox: SalesforceSandbox) -> None:
    for i in range(3):
        sf.Contact.create({"LastName": "Jones", "Email": f"jones{i}@example.com"})
    sf.Contact.create({"LastName": "Smith", "Email": "smith@example.com"})

    result = sf.query("SELECT Id, Email FROM Contact WHERE LastName = 'Jones'")
    assert set(result) == {"totalSize", "done", "records"}
    assert (result["totalSize"], result["done"]) == (3, True)
    assert set(result["records"][0]) == {"attributes", "Id", "Email"}

    every = sf.query_all("SELECT Id, Email FROM Contact WHERE LastName = 'Jones'")
    assert len(every["records"]) == 3
    lazy = list(sf.query_all_iter("SELECT Id, Email FROM Contact WHERE LastName = 'Jones'"))
    assert sorted(r["Email"] for r in lazy) == [f"jones{i}@example.com" for i in range(3)]

    one = format_soql("SELECT Id, Email FROM Contact WHERE LastName = {}", "Jones")
    named = format_soql(
        "SELECT Id, Email FROM Contact WHERE LastName = {last_name}", last_name="Jones"
    )
    within = format_soql(
        "SELECT Id, Email FROM Contact WHERE LastName IN {names}", names=["Smith", "Jones"]
    )
    like = format_soql("SELECT Id, Email FROM Contact WHERE Name LIKE '{:like}%'", "Jones")
    assert [sf.query(q)["totalSize"] for q in (one, named, within, like)] == [3, 3, 4, 3]

    # Paging: nextRecordsUrl, then query_more by locator id and by full URL.
    salesforce_sandbox.seed(2001)
    first = sf.query("SELECT Id FROM Lead")
    assert (first["done"], len(first["records"])) == (False, 2000)
    url = first["nextRecordsUrl"]
    by_url = sf.query_more(url, True)
    by_id = sf.query_more(url.rsplit("/", 1)[1])
    assert by_url["records"] == by_id["records"] and len(by_id["records"]) == 1


def test_metadata_and_describe(sf: Salesforce) -> None:
    meta = sf.Contact.metadata()
    assert set(meta) == {"objectDescribe", "recentItems"}
    assert meta["objectDescribe"]["name"] == "Contact"
    assert meta["objectDescribe"]["keyPrefix"] == "003"
    assert meta["objectDescribe"]["urls"]["rowTemplate"].endswith("/sobjects/Contact/{ID}")

    describe = sf.Lead.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    for required in ("LastName", "Company"):
        assert fields[required]["nillable"] is False
        assert fields[required]["createable"] is True
        assert fields[required]["defaultedOnCreate"] is False
    assert fields["Status"]["nillable"] is False and fields["Status"]["defaultedOnCreate"] is True
    assert fields["Name"]["createable"] is False and fields["Name"]["nameField"] is True
    assert fields["External_Id__c"]["externalId"] is True

    labels = [s["label"] for s in sf.describe()["sobjects"]]
    assert {"Lead", "Contact", "Account"} <= set(labels)


def test_required_fields_and_types_are_enforced_like_salesforce(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Lead.create({"LastName": "Lovelace"})
    (error,) = missing.value.content
    assert error == {
        "errorCode": "REQUIRED_FIELD_MISSING",
        "message": "Required fields are missing: [Company]",
        "fields": ["Company"],
    }
    lead = sf.Lead.create({"LastName": "Lovelace", "Company": "Engines"})["id"]
    assert sf.Lead.get(lead)["Status"] == "Open - Not Contacted"  # defaulted on create
    with pytest.raises(SalesforceMalformedRequest, match="REQUIRED_FIELD_MISSING"):
        sf.Lead.update(lead, {"LastName": None})
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_EMAIL_ADDRESS"):
        sf.Lead.update(lead, {"Email": "not an email"})
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_TYPE_ON_FIELD_IN_RECORD"):
        sf.Account.create({"Name": "Acme", "NumberOfEmployees": "many"})
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD_FOR_INSERT_UPDATE"):
        sf.Lead.update(lead, {"Name": "Ada Lovelace"})
    account = sf.Account.create({"Name": "Acme", "NumberOfEmployees": 12, "AnnualRevenue": 1.5})
    got = sf.Account.get(account["id"])
    assert (got["NumberOfEmployees"], got["AnnualRevenue"]) == (12, 1.5)


def test_composite_sobject_collections(sf: Salesforce) -> None:
    created = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Lead"}, "LastName": "A", "Company": "C"},
                {"attributes": {"type": "Lead"}, "LastName": "B"},
                {"attributes": {"type": "Contact"}, "LastName": "C"},
            ],
        },
    )
    assert [set(r) for r in created] == [_RESULT_KEYS] * 3
    assert [r["success"] for r in created] == [True, False, True]
    assert set(created[1]["errors"][0]) == _ERROR_KEYS
    assert created[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert created[1]["id"] is None
    ids = [created[0]["id"], created[2]["id"]]

    updated = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Lead"}, "id": ids[0], "FirstName": "Ada"},
                {"attributes": {"type": "Contact"}, "id": ids[1], "FirstName": "Grace"},
            ],
        },
    )
    assert [r["success"] for r in updated] == [True, True]
    assert sf.Lead.get(ids[0])["Name"] == "Ada A"

    deleted = sf.restful(
        "composite/sobjects", method="DELETE", params={"ids": ",".join(ids), "allOrNone": "false"}
    )
    assert [(r["id"], r["success"]) for r in deleted] == [(ids[0], True), (ids[1], True)]
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> str:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def test_bulk_2_0(sf: Salesforce, tmp_path: Path) -> None:
    # The README's CSVs (AccountId dropped: the sandbox has no lookups), wait shortened.
    header = ["External_Id__c", "Email", "FirstName", "LastName"]
    sample = _write_csv(
        tmp_path / "sample.csv",
        header,
        [
            ["CustomID1", "contact1@example.com", "Bob", "x"],
            ["CustomID2", "contact2@example.com", "Alice", "y"],
        ],
    )
    (inserted,) = sf.bulk2.Contact.insert(sample, batch_size=10000, wait=0)
    assert inserted["numberRecordsProcessed"] == 2 and inserted["numberRecordsFailed"] == 0
    assert set(inserted) == {
        "numberRecordsFailed",
        "numberRecordsProcessed",
        "numberRecordsTotal",
        "job_id",
    }
    successes = sf.bulk2.Contact.get_successful_records(inserted["job_id"])
    reader = csv.reader(io.StringIO(successes))
    assert next(reader) == ["sf__Id", "sf__Created", *header]
    assert [(row[1], row[2]) for row in reader] == [("true", "CustomID1"), ("true", "CustomID2")]

    upsert_csv = _write_csv(
        tmp_path / "upsert.csv",
        ["External_Id__c", "LastName"],
        [["CustomID1", "X"], ["CustomID3", "Z"]],
    )
    (upserted,) = sf.bulk2.Contact.upsert(
        csv_file=upsert_csv, external_id_field="External_Id__c", wait=0
    )
    assert (upserted["numberRecordsProcessed"], upserted["numberRecordsFailed"]) == (2, 0)
    data = [
        {"External_Id__c": "CustomID1", "LastName": "X1"},
        {"External_Id__c": "CustomID2", "LastName": "Y1"},
    ]
    sf.bulk2.Contact.upsert(records=data, external_id_field="External_Id__c", wait=0)
    names = {
        r["External_Id__c"]: r["LastName"]
        for r in sf.query_all("SELECT External_Id__c, LastName FROM Contact")["records"]
    }
    assert names == {"CustomID1": "X1", "CustomID2": "Y1", "CustomID3": "Z"}

    results = list(
        sf.bulk2.Contact.query(
            "SELECT Id, Name FROM Contact ORDER BY External_Id__c",
            max_records=2,
            column_delimiter="COMMA",
            line_ending="LF",
        )
    )
    assert len(results) == 2  # two pages of at most two records
    rows = [r for page in results for r in csv.DictReader(io.StringIO(page))]
    assert [r["Name"] for r in rows] == ["Bob X1", "Alice Y1", "Z"]

    downloads = sf.bulk2.Contact.download(
        "SELECT Id, Email FROM Contact", path=str(tmp_path), max_records=200000
    )
    assert [d["number_of_records"] for d in downloads] == [3]
    with Path(downloads[0]["file"]).open(newline="") as handle:
        assert next(csv.reader(handle)) == ["Id", "Email"]

    ids = [r["Id"] for r in rows]
    delete_csv = _write_csv(tmp_path / "delete.csv", ["Id"], [[ids[0]], ["003000000000000ZZZ"]])
    (deleted,) = sf.bulk2.Contact.delete(delete_csv, wait=0)
    assert (deleted["numberRecordsProcessed"], deleted["numberRecordsFailed"]) == (2, 1)
    failed = list(
        csv.DictReader(io.StringIO(sf.bulk2.Contact.get_failed_records(deleted["job_id"])))
    )
    assert [f["sf__Error"].split(":")[0] for f in failed] == ["ENTITY_IS_DELETED"]
    hard_csv = _write_csv(tmp_path / "hard.csv", ["Id"], [[ids[1]]])
    sf.bulk2.Contact.hard_delete(hard_csv, wait=0)
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 1

    bad_csv = _write_csv(tmp_path / "bad.csv", ["LastName", "Company"], [["NoCompany", ""]])
    (bad,) = sf.bulk2.Lead.insert(bad_csv, wait=0)
    assert bad["numberRecordsFailed"] == 1
    (failure,) = csv.DictReader(io.StringIO(sf.bulk2.Lead.get_failed_records(bad["job_id"])))
    assert failure["sf__Error"].startswith("REQUIRED_FIELD_MISSING:Required fields are missing")


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("CreatedDate = LAST_N_DAYS:7", ["recent", "today"]),
        ("CreatedDate = TODAY", ["today"]),
        ("CreatedDate = YESTERDAY", []),
        ("CreatedDate < LAST_N_DAYS:7", ["old"]),
        ("CreatedDate > LAST_N_DAYS:30", []),
        ("CreatedDate = LAST_N_DAYS:30 AND NOT (Name LIKE 'Ada%')", ["recent"]),
        ("Name = 'Ada today'", ["today"]),
        ("Name LIKE '%today' OR (Email = null AND Status IN ('Open - Not Contacted'))", ["today"]),
        ("LastName NOT IN ('old', 'recent') AND Email != null", ["today"]),
        ("(LeadSource = 'Web' OR LeadSource = 'Phone') AND Country != null", ["old", "recent"]),
    ],
)
def test_soql_date_literals_name_and_operators(
    sf: Salesforce, salesforce_sandbox: SalesforceSandbox, where: str, expected: list[str]
) -> None:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    noon_today = now.replace(hour=12, minute=0, second=0)

    def stamp(moment: datetime.datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    common = {"Company": "C", "Status": "Open - Not Contacted"}
    salesforce_sandbox.insert(
        [
            {
                **common,
                "FirstName": "Grace",
                "LastName": "old",
                "Email": "o@x.io",
                "LeadSource": "Web",
                "Country": "US",
                "CreatedDate": stamp(noon_today - datetime.timedelta(days=40)),
            },
            {
                **common,
                "FirstName": "Alan",
                "LastName": "recent",
                "Email": "r@x.io",
                "LeadSource": "Phone",
                "Country": "GB",
                "CreatedDate": stamp(noon_today - datetime.timedelta(days=3)),
            },
            {
                **common,
                "FirstName": "Ada",
                "LastName": "today",
                "Email": "t@x.io",
                "CreatedDate": stamp(now),
            },
        ]
    )
    found = sf.query_all(f"SELECT LastName FROM Lead WHERE {where} ORDER BY LastName")
    assert sorted(r["LastName"] for r in found["records"]) == sorted(expected)
