"""Properties the other suites do not already pin down (see the report for what exists).

* CSV chunker: both limits at once, row identities and greedy filling (tests/client covers the
  byte limit with the default row limit and the text round trip).
* Status order: the fold of `advance` over any sequence is "first final status, else the highest
  rank", and the tabular sinks' `plan_row` is idempotent and never lowers a status or a flag.
* SOQL filters: any value, executed by the Salesforce emulator through the real library, matches
  exactly the records holding that value (tests/salesforce covers escaping at the parser level).
"""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors._tabular import plan_row
from connectors.coldsend import UploadTooLarge, iter_csv_parts
from connectors.coldsend.csvparts import RowRef
from connectors.leads import (
    FINAL_STATUSES,
    Lead,
    LeadStatus,
    WriteResult,
    advance,
    parse_status,
    status_rank,
)
from connectors.salesforce import SalesforceConnection, SalesforceLeadSource
from sandbox.salesforce.fixtures import SalesforceSandbox

EXAMPLES = int(os.environ.get("COLDSEND_PROPERTY_EXAMPLES", "150"))
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=25)


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def _encoded(row: list[str]) -> int:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(row)
    return len(buf.getvalue().encode())


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.lists(
        st.tuples(
            _text, _text, st.one_of(st.none(), st.integers(1, 10**6)), st.one_of(st.none(), _text)
        ),
        min_size=1,
        max_size=25,
    ),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=120, max_value=1500),
)
def test_parts_hold_both_limits_keep_row_identities_and_fill_greedily(
    values: list[tuple[str, str, int | None, str | None]], max_rows: int, max_bytes: int
) -> None:
    leads = [
        Lead(
            email=f"p{i}@x.com",
            first_name=first,
            custom_fields={"note": note},
            row_number=row,
            source_id=sid,
        )
        for i, (first, note, row, sid) in enumerate(values)
    ]
    header = ["email", "first_name", "last_name", "company", "note", "crm_record_id"]
    want = [
        [x.email, x.first_name, "", "", x.custom_fields["note"], x.source_id or ""] for x in leads
    ]
    too_big = any(_encoded(header) + _encoded(row) > max_bytes for row in want)
    try:
        parts = list(
            iter_csv_parts(leads, custom_fields=["note"], max_rows=max_rows, max_bytes=max_bytes)
        )
    except UploadTooLarge as exc:
        assert too_big, f"refused although every row fits: {exc}"
        return
    assert not too_big, "a row larger than an upload file was let through"

    got: list[list[str]] = []
    for position, part in enumerate(parts):
        rows = _rows(part.data)
        assert part.index == position
        assert rows[0] == header
        assert 1 <= part.row_count == len(part.rows) == len(rows) - 1 <= max_rows
        assert len(part.data) <= max_bytes
        got.extend(rows[1:])
    assert got == want
    refs = [ref for part in parts for ref in part.rows]
    assert refs == [RowRef(x.email, x.row_number, x.source_id) for x in leads]
    # Greedy: a part is closed only when it is full or the next row would not fit in it.
    start = 0
    for part in parts[:-1]:
        start += part.row_count
        assert part.row_count == max_rows or len(part.data) + _encoded(want[start]) > max_bytes


_statuses = st.sampled_from(list(LeadStatus))


@settings(max_examples=EXAMPLES)
@given(st.one_of(st.none(), _statuses), st.lists(_statuses, max_size=15))
def test_folding_advance_keeps_the_first_final_status_else_the_highest(
    start: LeadStatus | None, seq: list[LeadStatus]
) -> None:
    held = start
    for status in seq:
        held = advance(held, status)
    seen = ([start] if start is not None else []) + seq
    if not seen:
        assert held is None
        return
    finals = [s for s in seen if s in FINAL_STATUSES]
    if finals:
        assert held is finals[0]
    else:
        top = max(status_rank(s) for s in seen)
        assert held is next(s for s in seen if status_rank(s) == top)


_cells = st.one_of(
    st.sampled_from(["", " ", "TRUE", "FALSE", "true", " True ", "no", "x"]),
    _statuses.map(lambda s: s.value),
    _statuses.map(lambda s: f" {s.value.lower()} "),
    _text,
)


@settings(max_examples=EXAMPLES)
@given(st.lists(_cells, min_size=0, max_size=5), st.lists(_statuses, min_size=1, max_size=6))
def test_tabular_write_back_never_lowers_a_status_or_flag_and_a_rerun_writes_nothing(
    row: list[str], statuses: list[LeadStatus]
) -> None:
    flag_cols = (1, 2, 3, 4)
    result = WriteResult()
    changes = plan_row(row, statuses, status_col=0, flag_cols=flag_cols, result=result, count=True)
    assert result.written + result.unchanged + result.held_back == len(statuses)
    new = list(row) + [""] * (5 - len(row))
    for col, value in changes:
        new[col] = value

    before = parse_status(row[0]) if row else None
    expected = before
    for status in statuses:
        expected = advance(expected, status)
    assert parse_status(new[0]) is expected
    if before is not None and expected is not None and before not in FINAL_STATUSES:
        assert expected in FINAL_STATUSES or status_rank(expected) >= status_rank(before)
    for col in flag_cols:
        was_true = col < len(row) and row[col].strip().upper() == "TRUE"
        if was_true:
            assert new[col].strip().upper() == "TRUE", f"flag column {col} went back"
        else:
            assert new[col] in ("TRUE", "FALSE") or (col < len(row) and new[col] == row[col])
    again = plan_row(
        new, statuses, status_col=0, flag_cols=flag_cols, result=WriteResult(), count=True
    )
    assert again == [], "a second write-back of the same statuses changed the row again"


_soql_text = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\t\\'\"%_"),
    min_size=1,
    max_size=20,
)


@settings(
    max_examples=max(10, EXAMPLES // 4),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(_soql_text, min_size=1, max_size=3, unique_by=str.casefold), st.booleans())
def test_any_filter_value_matches_exactly_the_records_holding_it(
    salesforce_sandbox: SalesforceSandbox, values: list[str], use_in: bool
) -> None:
    salesforce_sandbox.reset()
    stamp = datetime(2024, 1, 1, tzinfo=UTC)
    records = []
    for i, value in enumerate(values):
        for j, source in enumerate((value, value + "\u2063decoy", "\u2063" + value)):
            records.append(
                {
                    "Email": f"r{i}-{j}@x.com",
                    "LastName": "P",
                    "LeadSource": source,
                    "SystemModstamp": (stamp + timedelta(seconds=3 * i + j)).strftime(
                        "%Y-%m-%dT%H:%M:%S.000+0000"
                    ),
                }
            )
    salesforce_sandbox.insert(records)
    conn = SalesforceConnection(**salesforce_sandbox.connection_kwargs())
    targets = values if use_in else values[:1]
    flt = ("LeadSource", "IN", targets) if use_in else ("LeadSource", "=", targets[0])
    got = {x.email for x in SalesforceLeadSource(conn, filters=[flt]).read() if isinstance(x, Lead)}
    expected = {f"r{i}-0@x.com" for i, v in enumerate(values) if v in targets}
    assert got == expected
