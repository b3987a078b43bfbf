"""Safe SOQL building: literals, escaping, field/operator/type checks, and round trips."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.salesforce import AnyOf, Condition, FieldInfo, ObjectInfo, SoqlBuildError
from connectors.salesforce.soql import (
    count_query,
    escape_like,
    escape_string,
    literal,
    select_query,
    where_clause,
)
from sandbox.salesforce.db import OBJECTS
from sandbox.salesforce.soql import SoqlError, compile_query, parse, parse_literal

LEAD = ObjectInfo(
    name="Lead",
    fields={f.name.lower(): FieldInfo(f.name, f.type, f.updateable) for f in OBJECTS["Lead"].fields}
    | {"score__c": FieldInfo("Score__c", "double", True), "due__c": FieldInfo("Due__c", "date")},
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("O'Brien", r"'O\'Brien'"),
        ("back\\slash", r"'back\\slash'"),
        ('say "hi"\n', r"'say \"hi\"\n'"),
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-1.5, "-1.5"),
        (1e-7, "0.0000001"),
        (Decimal("12.50"), "12.50"),
        (date(2024, 2, 29), "2024-02-29"),
        (
            datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T12:00:00.000Z",
        ),
    ],
)
def test_literal_writes_each_type_as_soql(value: object, expected: str) -> None:
    assert literal(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), object(), b"bytes"])
def test_literal_refuses_values_soql_cannot_express(bad: object) -> None:
    with pytest.raises(SoqlBuildError):
        literal(bad)  # type: ignore[arg-type]


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(SoqlBuildError, match="no time zone"):
        literal(datetime(2024, 1, 1))


def test_where_clause_ands_clauses_and_uses_canonical_field_names() -> None:
    where = where_clause(
        [("leadsource", "=", "Web"), ("Country", "in", ["US", "CA"]), ("Email", "!=", None)], LEAD
    )
    assert where == "LeadSource = 'Web' AND Country IN ('US', 'CA') AND Email != null"


def test_any_of_groups_with_or_inside_parentheses() -> None:
    where = where_clause(
        [
            AnyOf([("Country", "=", "US"), [("Country", "=", "CA"), ("LeadSource", "=", "Web")]]),
            Condition("HasOptedOutOfEmail", "=", False),
        ],
        LEAD,
    )
    assert where == (
        "(Country = 'US' OR (Country = 'CA' AND LeadSource = 'Web')) AND HasOptedOutOfEmail = false"
    )


@pytest.mark.parametrize(
    ("clause", "message"),
    [
        (("Nope__c", "=", "x"), "Lead has no field 'Nope__c'"),
        (("Email = 'a' OR Id", "!=", None), "not a valid Lead field name"),
        (("Email", "= 'x' OR Email", "y"), "operator"),
        (("Email", "INCLUDES", ["x"]), "operator"),
        (("Email", "=", 5), "Lead.Email is a email field"),
        (("HasOptedOutOfEmail", "=", "true"), "boolean field"),
        (("Score__c", "=", True), "double field"),
        (("CreatedDate", ">", date(2024, 1, 1)), "datetime field"),
        (("Country", "IN", "US"), "needs a list"),
        (("Country", "IN", []), "at least one value"),
        (("Country", "=", ["US"]), "use IN"),
        (("Country", ">", None), "null can only"),
        (("Country", "LIKE", None), "null can only"),
    ],
)
def test_bad_filters_are_refused_naming_the_problem(
    clause: tuple[str, str, object], message: str
) -> None:
    with pytest.raises(SoqlBuildError, match=message.replace("(", r"\(")):
        where_clause([clause], LEAD)


INJECTIONS = [
    "x' OR Id != null OR Email = 'y",
    "x\\' OR 1=1 --",
    "\\",
    "'",
    "%' OR Name LIKE '%",
    "a'); DELETE FROM Lead; --",
    "\\\\' OR Email != null OR Email = '",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_attempts_stay_one_literal_in_the_emulator_parser(payload: str) -> None:
    soql = select_query(LEAD, ["Id"], where=[where_clause([("Email", "=", payload)], LEAD)])
    query = parse(soql)
    assert query.where is not None
    # The whole condition is still one comparison on Email with the payload as its value.
    assert query.where.field == "Email"  # type: ignore[union-attr]
    assert query.where.value.value == payload  # type: ignore[union-attr]


def test_like_escaping_matches_wildcards_literally() -> None:
    pattern = escape_like("50%_off") + "%"
    soql = where_clause([("Company", "LIKE", pattern)], LEAD)
    assert soql == r"Company LIKE '50\%\_off%'"


def test_select_and_count_queries_validate_field_names() -> None:
    assert (
        select_query(LEAD, ["id", "email"], where=["a", "b"], order_by=["systemmodstamp"], limit=5)
        == "SELECT Id, Email FROM Lead WHERE (a) AND (b) ORDER BY SystemModstamp LIMIT 5"
    )
    assert (
        count_query(LEAD, where=["Email != null"]) == "SELECT COUNT() FROM Lead WHERE Email != null"
    )
    with pytest.raises(SoqlBuildError, match="'Bogus'"):
        select_query(LEAD, ["Id", "Bogus"])


# -- properties: whatever the text, it survives escaping and parsing unchanged ------------------

text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)


@given(text)
def test_escaped_string_round_trips_through_the_sandbox_parser(value: str) -> None:
    assert parse_literal(literal(value)).value == value
    assert parse_literal("'" + escape_string(value) + "'").value == value


@given(st.lists(text, min_size=1, max_size=4), text)
def test_any_filter_values_compile_to_one_condition_per_clause(
    values: list[str], other: str
) -> None:
    where = where_clause([("Email", "IN", values), ("Company", "!=", other)], LEAD)
    query = parse(f"SELECT Id FROM Lead WHERE {where}")
    _, params, _ = compile_query(query, OBJECTS["Lead"].by_lower, "Lead")
    assert params == [*values, other]


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2999, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.booleans(),
)
def test_typed_literals_round_trip(moment: datetime, number: int, flag: bool) -> None:
    parsed = parse_literal(literal(moment))
    assert parsed.kind == "datetime"
    assert (
        parsed.value[:23]
        == moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    )
    assert parse_literal(literal(number)).value == number
    assert parse_literal(literal(flag)).value is flag


def test_sandbox_parser_rejects_malformed_queries_like_salesforce() -> None:
    for bad in [
        "SELECT FROM Lead",
        "SELECT Id FROM Lead WHERE",
        "SELECT Id FROM Lead WHERE Email = 'x",
    ]:
        with pytest.raises(SoqlError) as info:
            parse(bad)
        assert info.value.code == "MALFORMED_QUERY"


@given(text)
def test_escape_like_matches_exactly_the_text_in_the_sandbox(value: str) -> None:
    where = where_clause([("Company", "LIKE", escape_like(value))], LEAD)
    query = parse(f"SELECT Id FROM Lead WHERE {where}")
    assert query.where is not None
    lit = query.where.value  # type: ignore[union-attr]
    # The pattern SQLite runs (escape char \) unescapes to exactly the text, no wildcards left.
    unescaped, i = [], 0
    while i < len(lit.like):
        ch = lit.like[i]
        if ch == "\\":
            unescaped.append(lit.like[i + 1])
            i += 2
            continue
        assert ch not in "%_"
        unescaped.append(ch)
        i += 1
    assert "".join(unescaped) == value
