"""SOQL's relative date literals: the [start, end) days each covers, and how operators use them."""

from __future__ import annotations

from datetime import date

import pytest

from sandbox.salesforce.db import OBJECTS
from sandbox.salesforce.soql import SoqlError, compile_query, date_literal_range, parse

MONDAY = date(2026, 12, 7)  # weeks start on Sunday 2026-12-06 (en_US)


@pytest.mark.parametrize(
    ("name", "n", "start", "end"),
    [
        ("TODAY", 1, date(2026, 12, 7), date(2026, 12, 8)),
        ("YESTERDAY", 1, date(2026, 12, 6), date(2026, 12, 7)),
        ("TOMORROW", 1, date(2026, 12, 8), date(2026, 12, 9)),
        # LAST_N_DAYS includes today: LAST_N_DAYS:1 is yesterday and today.
        ("LAST_N_DAYS", 1, date(2026, 12, 6), date(2026, 12, 8)),
        ("LAST_N_DAYS", 7, date(2026, 11, 30), date(2026, 12, 8)),
        ("LAST_90_DAYS", 1, date(2026, 9, 8), date(2026, 12, 8)),
        ("NEXT_N_DAYS", 3, date(2026, 12, 8), date(2026, 12, 11)),
        ("N_DAYS_AGO", 2, date(2026, 12, 5), date(2026, 12, 6)),
        ("THIS_WEEK", 1, date(2026, 12, 6), date(2026, 12, 13)),
        ("LAST_WEEK", 1, date(2026, 11, 29), date(2026, 12, 6)),
        ("NEXT_WEEK", 1, date(2026, 12, 13), date(2026, 12, 20)),
        ("LAST_N_WEEKS", 2, date(2026, 11, 22), date(2026, 12, 6)),
        ("THIS_MONTH", 1, date(2026, 12, 1), date(2027, 1, 1)),
        ("LAST_MONTH", 1, date(2026, 11, 1), date(2026, 12, 1)),
        ("NEXT_MONTH", 1, date(2027, 1, 1), date(2027, 2, 1)),
        ("LAST_N_MONTHS", 13, date(2025, 11, 1), date(2026, 12, 1)),
        ("N_MONTHS_AGO", 12, date(2025, 12, 1), date(2026, 1, 1)),
        ("THIS_QUARTER", 1, date(2026, 10, 1), date(2027, 1, 1)),
        ("LAST_QUARTER", 1, date(2026, 7, 1), date(2026, 10, 1)),
        ("NEXT_N_QUARTERS", 2, date(2027, 1, 1), date(2027, 7, 1)),
        ("THIS_YEAR", 1, date(2026, 1, 1), date(2027, 1, 1)),
        ("LAST_YEAR", 1, date(2025, 1, 1), date(2026, 1, 1)),
        ("N_YEARS_AGO", 2, date(2024, 1, 1), date(2025, 1, 1)),
        ("THIS_FISCAL_YEAR", 1, date(2026, 1, 1), date(2027, 1, 1)),
    ],
)
def test_each_literal_covers_salesforces_days(name: str, n: int, start: date, end: date) -> None:
    assert date_literal_range(name, n, MONDAY) == (start, end)


def _where(soql: str) -> tuple[str, list[object]]:
    sql, params, _ = compile_query(parse(soql), OBJECTS["Lead"].by_lower, "Lead", today=MONDAY)
    return sql.split(" WHERE ", 1)[1], params


@pytest.mark.parametrize(
    ("op", "sql", "params"),
    [
        ("=", '("CreatedDate" >= ? AND "CreatedDate" < ?)', ["2026-12-07", "2026-12-08"]),
        ("<", '"CreatedDate" < ?', ["2026-12-07"]),
        ("<=", '"CreatedDate" < ?', ["2026-12-08"]),
        (">", '"CreatedDate" >= ?', ["2026-12-08"]),
        (">=", '"CreatedDate" >= ?', ["2026-12-07"]),
    ],
)
def test_operators_compare_with_the_ranges_start_or_end(
    op: str, sql: str, params: list[str]
) -> None:
    where, got = _where(f"SELECT Id FROM Lead WHERE CreatedDate {op} TODAY")
    assert where == sql
    assert got == [f"{p}T00:00:00.000+0000" for p in params]


def test_literals_are_case_insensitive_and_take_spaces_around_the_colon() -> None:
    assert _where("SELECT Id FROM Lead WHERE CreatedDate = last_n_days : 7")[1][0] == (
        "2026-11-30T00:00:00.000+0000"
    )


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Lead WHERE Email = TODAY",
        "SELECT Id FROM Lead WHERE CreatedDate LIKE TODAY",
        "SELECT Id FROM Lead WHERE CreatedDate IN (TODAY, 2024-01-01)",
    ],
)
def test_misused_literals_are_refused(soql: str) -> None:
    with pytest.raises(SoqlError):
        _where(soql)
