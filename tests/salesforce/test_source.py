"""SalesforceLeadSource over the real simple-salesforce against the loopback emulator."""

from __future__ import annotations

from datetime import datetime

import pytest

from connectors.leads import FieldMapping, Lead, LeadSource, MappingError, Reject
from connectors.salesforce import (
    SalesforceConnection,
    SalesforceLeadSource,
    SalesforceQueryError,
    SoqlBuildError,
)
from sandbox.salesforce.fixtures import SalesforceSandbox

QUERY = "GET /services/data/v{version}/query/"
QUERY_MORE = "GET /services/data/v{version}/query/{locator}"
DESCRIBE = "GET /services/data/v{version}/sobjects/{object}/describe"


def leads(items: list[Lead | Reject]) -> list[Lead]:
    return [i for i in items if isinstance(i, Lead)]


def test_source_implements_the_protocol(conn: SalesforceConnection) -> None:
    assert isinstance(SalesforceLeadSource(conn), LeadSource)


def test_full_read_pages_across_the_2000_boundary_in_modstamp_order(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    ids = salesforce_sandbox.seed(4100, seed=3)
    salesforce_sandbox.reset_stats()
    source = SalesforceLeadSource(conn)
    items = list(source.read())

    assert [i.source_id for i in items] == ids  # seeded in increasing SystemModstamp order
    assert [i.row_number for i in items] == list(range(1, 4101))
    assert all(isinstance(i, Lead) for i in items)
    stats = salesforce_sandbox.stats()["requests"]
    assert stats[QUERY_MORE] == 2  # 4100 records = 3 pages of 2000
    assert stats[QUERY] == 2  # COUNT() + the first page
    assert source.last_read_api == "rest"
    by_id = salesforce_sandbox.by_id()
    first = items[0]
    assert isinstance(first, Lead)
    raw = by_id[first.source_id or ""]
    assert (first.email, first.first_name, first.last_name, first.company) == (
        raw["Email"],
        raw["FirstName"],
        raw["LastName"],
        raw["Company"],
    )
    assert first.modified_at == datetime.fromisoformat(raw["SystemModstamp"])
    assert source.high_water_mark == max(i.modified_at for i in leads(items))  # type: ignore[type-var]


def test_incremental_read_returns_only_records_modified_after_the_cursor(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    ids = salesforce_sandbox.seed(2500)
    source = SalesforceLeadSource(conn)
    list(source.read())
    cursor = source.high_water_mark
    assert cursor is not None

    assert list(source.read(since=cursor)) == []
    # Touch three records, one of them far behind the cursor in the original order.
    for rid in (ids[5], ids[2001], ids[-1]):
        conn.call(lambda sf, rid=rid: sf.Lead.update(rid, {"Country": "NZ"}))
    changed = list(source.read(since=cursor))
    assert [i.source_id for i in changed] == [ids[5], ids[2001], ids[-1]]
    assert source.high_water_mark is not None and source.high_water_mark > cursor


def test_rest_and_bulk_reads_yield_identical_records(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.seed(2300, seed=7, bad_every=9)
    mapping = FieldMapping(
        email="Email",
        first_name="FirstName",
        last_name="LastName",
        company="Company",
        custom_fields={"country": "Country", "opted_out": "HasOptedOutOfEmail"},
    )
    rest = SalesforceLeadSource(conn, mapping=mapping, bulk_threshold=10_000)
    bulk = SalesforceLeadSource(conn, mapping=mapping, bulk_threshold=100, bulk_poll_seconds=0)
    rest_items = list(rest.read())
    salesforce_sandbox.reset_stats()
    bulk_items = list(bulk.read())

    assert (rest.last_read_api, bulk.last_read_api) == ("rest", "bulk")
    assert bulk_items == rest_items
    assert bulk.high_water_mark == rest.high_water_mark
    assert any(isinstance(i, Reject) for i in rest_items)
    requests = salesforce_sandbox.stats()["requests"]
    assert requests["POST /services/data/v{version}/jobs/query"] == 1
    assert QUERY_MORE not in requests


def test_bad_records_become_rejects_naming_the_record(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    ids = salesforce_sandbox.seed(30, bad_every=5)
    items = list(SalesforceLeadSource(conn).read())
    rejects = [i for i in items if isinstance(i, Reject)]
    # bad_every=5: records 5, 10, 15... cycle through invalid, missing, duplicate emails.
    assert [r.source_id for r in rejects] == [ids[4], ids[9], ids[14], ids[19], ids[24], ids[29]]
    reasons = [r.reason for r in rejects]
    assert reasons[0].startswith("invalid email")
    assert reasons[1] == "missing email"
    assert reasons[2].startswith("duplicate email")
    assert rejects[0].where == f"row 5 (record {ids[4]})"
    assert len(items) == 30


def test_unknown_mapping_field_raises_before_any_data_read(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.seed(10)
    salesforce_sandbox.reset_stats()
    source = SalesforceLeadSource(
        conn, mapping=FieldMapping(email="Email", custom_fields={"tier": "Tier__c"})
    )
    with pytest.raises(MappingError, match="Tier__c"):
        source.read()
    assert salesforce_sandbox.stats()["requests"] == {DESCRIBE: 1}


def test_filters_are_applied_and_unknown_filter_fields_refused(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.seed(200, seed=1)
    records = salesforce_sandbox.records()
    source = SalesforceLeadSource(
        conn, filters=[("Country", "IN", ["US", "CA"]), ("LeadSource", "=", "Web")]
    )
    got = {i.source_id for i in source.read()}
    expected = {
        r["Id"] for r in records if r["Country"] in ("US", "CA") and r["LeadSource"] == "Web"
    }
    assert got == expected and got

    with pytest.raises(SoqlBuildError, match="Lead has no field 'Region'"):
        SalesforceLeadSource(conn, filters=[("Region", "=", "EU")]).read()
    injected = SalesforceLeadSource(conn, filters=[("Country", "=", "US' OR Country != '")])
    assert list(injected.read()) == []


def test_contact_source_needs_no_company(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    ids = salesforce_sandbox.seed(5, object="Contact")
    items = list(SalesforceLeadSource(conn, object_name="Contact").read())
    assert [i.source_id for i in items] == ids
    assert all(i.source_id and i.source_id.startswith("003") for i in items)
    assert all(isinstance(i, Lead) and i.company == "" for i in items)


def test_malformed_and_invalid_field_queries_become_typed_errors(
    conn: SalesforceConnection,
) -> None:
    with pytest.raises(SalesforceQueryError, match="MALFORMED_QUERY") as malformed:
        conn.call(lambda sf: sf.query("SELECT Id FROM Lead WHERE Email = 'x' OR"))
    assert malformed.value.status == 400
    with pytest.raises(SalesforceQueryError, match=r"INVALID_FIELD.*Bogus") as invalid:
        conn.call(lambda sf: sf.query("SELECT Id, Bogus FROM Lead"))
    assert invalid.value.error_code == "INVALID_FIELD"


def test_bulk_read_resumes_after_token_expiry_mid_read(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.seed(300)
    expected = [i.source_id for i in SalesforceLeadSource(conn).read()]
    source = SalesforceLeadSource(conn, bulk_threshold=10, bulk_poll_seconds=0, bulk_page_size=100)
    stream = source.read()
    first = [next(stream).source_id for _ in range(150)]
    salesforce_sandbox.reset_stats()
    salesforce_sandbox.expire_tokens()
    rest = [i.source_id for i in stream]

    assert first + rest == expected
    requests = salesforce_sandbox.stats()["requests"]
    # One new login, then a new job starting after the last record already yielded.
    assert requests["POST /services/data/v{version}/jobs/query"] == 1
