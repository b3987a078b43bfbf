"""Bad Salesforce records and SOQL-injection attempts in filters, through the real library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.leads import FieldMapping, Lead
from connectors.salesforce import SalesforceConnection, SalesforceLeadSource
from sandbox.salesforce.fixtures import SalesforceSandbox

from ._corpus import Case, emails
from .test_csv_corpus import check_outcome


def _records(*rows: dict[str, Any]) -> list[dict[str, Any]]:
    """Records with increasing modstamps, so the read order (and the row number) is the order given."""
    start = datetime(2024, 5, 1, 12, tzinfo=UTC)
    out = []
    for i, row in enumerate(rows):
        stamp = (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        out.append({"LastName": "Doe", "Company": "Acme", "SystemModstamp": stamp, **row})
    return out


# Row numbers are positions in the read (SystemModstamp order); rejects also carry the record Id.
RECORD_CASES: list[Case] = [
    Case(
        "sf-missing-emails",
        _records({"Email": None}, {"Email": ""}, {"Email": "   "}, {"Email": "ok@x.com"}),
        valid=emails("ok@x.com"),
        rejects=((1, "missing email"), (2, "missing email"), (3, "missing email")),
    ),
    Case(
        "sf-invalid-emails",
        _records(
            {"Email": "ann(at)x.com"},
            {"Email": "ann@x"},
            {"Email": "ann@x..com"},
            {"Email": "b@x.com"},
        ),
        valid=emails("b@x.com"),
        rejects=((1, "no '@'"), (2, "domain is malformed"), (3, "domain is malformed")),
    ),
    Case(
        "sf-internationalised",
        _records({"Email": "müller@x.de"}, {"Email": "info@münchen.de"}, {"Email": "Ωmega@x.gr"}),
        valid=emails("info@xn--mnchen-3ya.de"),
        rejects=((1, "non-ASCII"), (3, "non-ASCII")),
    ),
    Case(
        "sf-duplicates-differing-in-case-and-spaces",
        _records({"Email": "Dup@X.com"}, {"Email": " dup@x.com "}, {"Email": "DUP@X.COM"}),
        valid=emails("dup@x.com"),
        rejects=((2, "already read at row 1"), (3, "already read at row 1")),
    ),
    Case(
        "sf-formula-looking-values",
        _records(
            {"Email": "a@x.com", "FirstName": "=1+1", "Company": "@SUM(A1)"},
            {"Email": "b@x.com", "FirstName": "+cmd", "Company": "-2+3"},
        ),
        valid=emails("a@x.com", "b@x.com"),
    ),
    Case(
        "sf-huge-field",
        _records({"Email": "a@x.com", "Company": "c" * 131_072}, {"Email": "b@x.com"}),
        valid=emails("a@x.com", "b@x.com"),
    ),
    Case(
        "sf-unicode-and-quotes-in-names",
        _records({"Email": "a@x.com", "LastName": 'O\'Brien "Bob" 李\n\t'}),
        valid=emails("a@x.com"),
    ),
    Case("sf-no-records", []),
    Case(
        "sf-unknown-mapping-field",
        _records({"Email": "a@x.com"}),
        mapping=FieldMapping(email="Email", custom_fields={"tier": "Tier__c"}),
        error=("MappingError", "'Tier__c' (mapped to tier)"),
    ),
    Case(
        "sf-email-mapped-to-a-non-email-field",
        _records({"Email": "a@x.com", "Company": "Acme"}),
        mapping=FieldMapping(email="Company"),
        rejects=((1, "no '@'"),),
    ),
]


@pytest.mark.parametrize("case", RECORD_CASES, ids=[c.id for c in RECORD_CASES])
def test_salesforce_bad_records(case: Case, salesforce_sandbox: SalesforceSandbox) -> None:
    ids = salesforce_sandbox.insert(case.data) if case.data else []
    source = SalesforceLeadSource(
        SalesforceConnection(**salesforce_sandbox.connection_kwargs()), mapping=case.mapping
    )
    if case.error is not None:
        kind, fragment = case.error
        with pytest.raises(Exception) as info:
            list(source.read())
        assert type(info.value).__name__ == kind and fragment in str(info.value)
        return
    items = list(source.read())
    check_outcome(items, case)
    # Every reject also names the record, so a person can open it in Salesforce.
    for item in items:
        assert item.source_id == ids[item.row_number - 1]  # type: ignore[operator]


# -- SOQL injection: a filter value is one literal, whatever it holds --------------------------

SOQL_INJECTIONS: list[tuple[str, str]] = [
    ("close-quote-or", "Web' OR LeadSource != 'x"),
    ("close-quote-or-null", "x' OR Id != null OR LeadSource = '"),
    ("backslash-escape", "\\' OR Email != null OR LeadSource = \\'"),
    ("double-quotes", 'Web" OR "1"="1'),
    ("statement-terminator", "'; DELETE FROM Lead; --"),
    ("newline", "Web'\nOR LeadSource != '"),
    ("like-wildcards", "%"),
    ("unicode-quote", "Web\u2019 OR LeadSource != \u2018x"),
]


@pytest.mark.parametrize(
    "payload", [p for _, p in SOQL_INJECTIONS], ids=[i for i, _ in SOQL_INJECTIONS]
)
def test_injection_in_a_filter_value_matches_only_that_literal_text(
    payload: str, salesforce_sandbox: SalesforceSandbox
) -> None:
    salesforce_sandbox.insert(
        _records(
            {"Email": "web1@x.com", "LeadSource": "Web"},
            {"Email": "web2@x.com", "LeadSource": "Web"},
            {"Email": "other@x.com", "LeadSource": "x"},
            {"Email": "target@x.com", "LeadSource": payload},
        )
    )
    conn = SalesforceConnection(**salesforce_sandbox.connection_kwargs())
    for op, value in (("=", payload), ("IN", [payload, "no such source"])):
        source = SalesforceLeadSource(conn, filters=[("LeadSource", op, value)])
        got = [i.email for i in source.read() if isinstance(i, Lead)]
        assert got == ["target@x.com"], f"{op}: {got}"
    assert len(salesforce_sandbox.records()) == 4


@pytest.mark.parametrize(
    ("bad_filter", "fragment"),
    [
        (("LeadSource = 'Web' OR Email", "!=", "x"), "not a valid lead field"),
        (("LeadSource", "= 'Web' OR Email !=", "x"), "operator"),
        (("Email) OR (Id", "!=", None), "not a valid lead field"),
    ],
    ids=["field-name", "operator", "parenthesis"],
)
def test_injection_in_a_field_name_or_operator_is_refused_before_any_query(
    bad_filter: tuple[str, str, Any], fragment: str, salesforce_sandbox: SalesforceSandbox
) -> None:
    salesforce_sandbox.insert(_records({"Email": "a@x.com"}))
    conn = SalesforceConnection(**salesforce_sandbox.connection_kwargs())
    conn.describe("Lead")
    salesforce_sandbox.reset_stats()
    with pytest.raises(Exception) as info:
        SalesforceLeadSource(conn, filters=[bad_filter]).read()
    assert type(info.value).__name__ == "SoqlBuildError"
    assert fragment in str(info.value).lower()
    assert not any("query" in route for route in salesforce_sandbox.stats()["requests"])
