"""SalesforceStatusSink: read current values, never backwards, write only what changes."""

from __future__ import annotations

import pytest

from connectors.leads import LeadStatus, MappingError, StatusSink, StatusUpdate, WriteResult
from connectors.salesforce import (
    SalesforceBudgetExceeded,
    SalesforceConnection,
    SalesforceStatusSink,
    StatusFields,
)
from sandbox.salesforce.fixtures import SalesforceSandbox

COMPOSITE = "PATCH /services/data/v{version}/composite/sobjects"
QUERY = "GET /services/data/v{version}/query/"
INGEST = "POST /services/data/v{version}/jobs/ingest"
S = LeadStatus


def updates_for(records: list[dict], statuses: list[LeadStatus]) -> list[StatusUpdate]:
    return [
        StatusUpdate(email=r["Email"] or "", status=s, source_id=r["Id"])
        for r, s in zip(records, statuses, strict=True)
    ]


def write_requests(stats: dict) -> int:
    return sum(n for route, n in stats["requests"].items() if not route.startswith("GET "))


def test_sink_implements_the_protocol(conn: SalesforceConnection) -> None:
    assert isinstance(SalesforceStatusSink(conn), StatusSink)


def test_write_back_writes_changes_and_derived_flags_then_nothing_the_second_time(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.seed(6)
    records = salesforce_sandbox.records()
    statuses = [S.SENT, S.OPENED, S.REPLIED, S.BOUNCED, S.UNSUBSCRIBED, S.QUEUED]
    sink = SalesforceStatusSink(conn)
    salesforce_sandbox.reset_stats()

    result = sink.write_statuses(updates_for(records, statuses))

    assert (result.received, result.written, result.unchanged, result.held_back) == (6, 6, 0, 0)
    assert result.balanced and not result.failures and not result.not_found
    after = salesforce_sandbox.by_id()
    got = [
        (
            after[r["Id"]]["ColdSend_Status__c"],
            after[r["Id"]]["ColdSend_Opened__c"],
            after[r["Id"]]["ColdSend_Replied__c"],
            after[r["Id"]]["ColdSend_Bounced__c"],
            after[r["Id"]]["HasOptedOutOfEmail"],
        )
        for r in records
    ]
    assert got == [
        ("SENT", False, False, False, False),
        ("OPENED", True, False, False, False),
        ("REPLIED", True, True, False, False),
        ("BOUNCED", False, False, True, False),
        ("UNSUBSCRIBED", False, False, False, True),
        ("QUEUED", False, False, False, False),
    ]
    stats = salesforce_sandbox.stats()
    assert stats["requests"][COMPOSITE] == 1
    # describe + one read + one composite call, as the sink itself counted them.
    assert result.requests == stats["total"] == 3

    salesforce_sandbox.reset_stats()
    again = sink.write_statuses(updates_for(records, statuses))
    assert (again.written, again.unchanged) == (0, 6)
    assert write_requests(salesforce_sandbox.stats()) == 0
    assert again.requests == 1  # the read; describe is cached
    assert salesforce_sandbox.by_id() == after


def test_statuses_never_move_backwards_and_final_ones_never_change(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    ids = salesforce_sandbox.insert(
        [
            {
                "Email": "a@example.com",
                "ColdSend_Status__c": "REPLIED",
                "ColdSend_Opened__c": True,
                "ColdSend_Replied__c": True,
            },
            {
                "Email": "b@example.com",
                "ColdSend_Status__c": "BOUNCED",
                "ColdSend_Bounced__c": True,
            },
            {"Email": "c@example.com", "ColdSend_Status__c": "SENT"},
            {
                "Email": "d@example.com",
                "ColdSend_Status__c": "OPENED",
                "ColdSend_Opened__c": True,
                "HasOptedOutOfEmail": True,
            },
        ]
    )
    before = salesforce_sandbox.by_id()
    result = SalesforceStatusSink(conn).write_statuses(
        [
            StatusUpdate("a@example.com", S.SENT, ids[0]),
            StatusUpdate("b@example.com", S.OPENED, ids[1]),
            StatusUpdate("c@example.com", S.REPLIED, ids[2]),
            StatusUpdate("d@example.com", S.OPENED, ids[3]),
        ]
    )
    assert (result.written, result.held_back, result.unchanged) == (1, 2, 1)
    after = salesforce_sandbox.by_id()
    assert after[ids[0]] == before[ids[0]]  # REPLIED kept, not even SystemModstamp moved
    assert after[ids[1]] == before[ids[1]]
    assert after[ids[2]]["ColdSend_Status__c"] == "REPLIED"
    assert after[ids[2]]["ColdSend_Opened__c"] and after[ids[2]]["ColdSend_Replied__c"]
    # A person's manual opt-out is never cleared by a non-UNSUBSCRIBED status.
    assert after[ids[3]]["HasOptedOutOfEmail"] is True


def test_several_updates_for_one_record_fold_to_the_furthest(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    (rid,) = salesforce_sandbox.insert([{"Email": "x@example.com"}])
    result = SalesforceStatusSink(conn).write_statuses(
        [
            StatusUpdate("x@example.com", S.OPENED, rid),
            StatusUpdate("x@example.com", S.SENT, rid),
        ]
    )
    assert (result.received, result.written, result.held_back) == (2, 1, 1)
    assert salesforce_sandbox.by_id()[rid]["ColdSend_Status__c"] == "OPENED"


def test_unknown_records_and_missing_ids_are_accounted_for(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    (rid,) = salesforce_sandbox.insert([{"Email": "x@example.com"}])
    ghost = "00Q000000000ZZZAAA"
    result = SalesforceStatusSink(conn).write_statuses(
        [
            StatusUpdate("x@example.com", S.SENT, rid),
            StatusUpdate("y@example.com", S.SENT, ghost),
            StatusUpdate("z@example.com", S.SENT, None),
        ]
    )
    assert result.written == 1
    # No record id: the lead came from another store; it is not this store's to write.
    assert result.not_found == ["z@example.com", ghost]
    assert result.failures == []
    assert result.balanced


def test_match_by_email_updates_every_record_with_that_email(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    ids = salesforce_sandbox.insert(
        [{"Email": "Dup@Example.com"}, {"Email": "dup@example.com"}, {"Email": "solo@example.com"}]
    )
    result = SalesforceStatusSink(conn, match_by="email").write_statuses(
        [
            StatusUpdate(" DUP@example.com ", S.OPENED),
            StatusUpdate("nobody@example.com", S.OPENED),
        ]
    )
    assert (result.written, result.not_found) == (1, ["nobody@example.com"])
    after = salesforce_sandbox.by_id()
    assert [after[i]["ColdSend_Status__c"] for i in ids] == ["OPENED", "OPENED", None]


def test_record_errors_land_in_the_result_for_composite_and_bulk(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.seed(5)
    records = salesforce_sandbox.records()
    # Lead.Status is a restricted picklist: ColdSend statuses are not among its values.
    fields = StatusFields(
        status="Status", opened=None, replied=None, bounced=None, unsubscribed=None
    )
    for threshold in (100, 1):
        sink = SalesforceStatusSink(
            conn, fields=fields, bulk_threshold=threshold, bulk_poll_seconds=0
        )
        result = sink.write_statuses(updates_for(records, [S.SENT] * 5))
        assert result.written == 0
        assert sorted(f.key for f in result.failures) == sorted(r["Id"] for r in records)
        assert all("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in f.reason for f in result.failures)


def test_large_write_back_uses_one_bulk_job(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.seed(2500)
    records = salesforce_sandbox.records()
    sink = SalesforceStatusSink(conn, bulk_threshold=2000, bulk_poll_seconds=0)
    sink.write_statuses([])  # describe once, outside the counts below
    salesforce_sandbox.reset_stats()
    result = sink.write_statuses(updates_for(records, [S.OPENED] * 2500))

    assert (result.written, result.received) == (2500, 2500)
    stats = salesforce_sandbox.stats()["requests"]
    assert stats[INGEST] == 1 and COMPOSITE not in stats
    ingest = sum(n for route, n in stats.items() if "/jobs/ingest" in route)
    assert ingest <= 8
    assert all(r["ColdSend_Opened__c"] for r in salesforce_sandbox.records())

    salesforce_sandbox.reset_stats()
    again = sink.write_statuses(updates_for(records, [S.SENT] * 2500))
    assert (again.held_back, again.written) == (2500, 0)
    assert write_requests(salesforce_sandbox.stats()) == 1  # only the Bulk query job's POST
    assert INGEST not in salesforce_sandbox.stats()["requests"]


def test_status_fields_are_checked_against_describe_before_any_read(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.reset_stats()
    update = [StatusUpdate("a@example.com", S.SENT, "00Q000000000001AAA")]
    with pytest.raises(MappingError, match="'Nope__c' \\(status\\) does not exist"):
        SalesforceStatusSink(conn, fields=StatusFields(status="Nope__c")).write_statuses(update)
    with pytest.raises(MappingError, match="'Country' is a string field, not a checkbox"):
        SalesforceStatusSink(conn, fields=StatusFields(opened="Country")).write_statuses(update)
    with pytest.raises(MappingError, match=r"SystemModstamp.*not updateable"):
        SalesforceStatusSink(conn, fields=StatusFields(status="SystemModstamp")).write_statuses(
            update
        )
    assert QUERY not in salesforce_sandbox.stats()["requests"]
    with pytest.raises(MappingError, match="'HasOptedOutOfEmail' is a boolean field, not text"):
        SalesforceStatusSink(conn, fields=StatusFields(status="HasOptedOutOfEmail")).write_statuses(
            update
        )
    with pytest.raises(ValueError, match="not a Salesforce field name"):
        StatusFields(status="Email' OR Id != null")


def test_budget_refuses_a_write_back_too_large_for_what_is_left(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    salesforce_sandbox.seed(1000)
    records = salesforce_sandbox.records()
    salesforce_sandbox.set_limits(daily_limit=100, used=95)
    with pytest.raises(SalesforceBudgetExceeded, match="writing 1000 Lead statuses"):
        SalesforceStatusSink(conn).write_statuses(updates_for(records, [S.SENT] * 1000))
    assert all(r["ColdSend_Status__c"] is None for r in salesforce_sandbox.records())


def test_field_names_are_matched_case_insensitively(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    (rid,) = salesforce_sandbox.insert(
        [{"Email": "x@example.com", "ColdSend_Status__c": "REPLIED"}]
    )
    fields = StatusFields(status="coldsend_status__c", opened="COLDSEND_OPENED__C", replied=None)
    result = SalesforceStatusSink(conn, fields=fields).write_statuses(
        [StatusUpdate("x@example.com", S.SENT, rid)]
    )
    assert result.written == 1  # only the opened flag; REPLIED is kept
    record = salesforce_sandbox.by_id()[rid]
    assert (record["ColdSend_Status__c"], record["ColdSend_Opened__c"]) == ("REPLIED", True)


def test_empty_batch_makes_no_data_request(conn: SalesforceConnection) -> None:
    result = SalesforceStatusSink(conn).write_statuses([])
    assert result == WriteResult(requests=result.requests)
    assert result.requests <= 1  # describe only


BULK_QUERY = "POST /services/data/v{version}/jobs/query"


def test_a_large_batch_reads_its_scope_with_one_bulk_query_and_finds_records_edited_out_of_it(
    salesforce_sandbox: SalesforceSandbox, conn: SalesforceConnection
) -> None:
    # 4,200 ids need two Bulk queries by Id IN (...) (about 4,000 fit in one statement).
    web = salesforce_sandbox.insert(
        [
            {"Email": f"w{i}@example.com", "LastName": "Web", "LeadSource": "Web"}
            for i in range(4_200)
        ]
    )
    # A record synced while it was a web lead, then moved out of the scope by someone.
    (moved,) = salesforce_sandbox.insert(
        [{"Email": "moved@example.com", "LastName": "Moved", "LeadSource": "Phone"}]
    )
    updates = [StatusUpdate(f"w{i}@example.com", S.SENT, rid) for i, rid in enumerate(web)]
    updates.append(StatusUpdate("moved@example.com", S.REPLIED, moved))
    sink = SalesforceStatusSink(conn, scope=[("LeadSource", "=", "Web")], bulk_poll_seconds=0)
    sink.write_statuses([])  # describe once, outside the counts below
    salesforce_sandbox.reset_stats()

    result = sink.write_statuses(updates)

    assert (result.received, result.written) == (4_201, 4_201) and not result.not_found
    stats = salesforce_sandbox.stats()["requests"]
    # One COUNT() of the scope, one Bulk query of it, one REST query for the moved record.
    assert stats[BULK_QUERY] == 1 and stats[QUERY] == 2
    after = salesforce_sandbox.by_id()
    assert after[moved]["ColdSend_Status__c"] == "REPLIED"
    assert {after[rid]["ColdSend_Status__c"] for rid in web} == {"SENT"}

    # A scope much larger than the batch is not scanned: the ids are read by Id IN (...).
    narrow = SalesforceStatusSink(
        conn, scope=[("LeadSource", "=", "Web")], bulk_poll_seconds=0, scan_factor=0.5
    )
    salesforce_sandbox.reset_stats()
    again = narrow.write_statuses([StatusUpdate(u.email, S.OPENED, u.source_id) for u in updates])
    # Statuses only move forward: the moved record's REPLIED stays.
    assert (again.written, again.held_back) == (4_200, 1)
    stats = salesforce_sandbox.stats()["requests"]
    assert stats[BULK_QUERY] == 2 and stats[QUERY] == 1  # the COUNT() that ruled the scan out
