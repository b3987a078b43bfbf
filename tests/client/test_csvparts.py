"""Splitting leads into upload files: limits, row identities, CSV round trip, bounded memory."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.coldsend import InvalidRequestError, UploadTooLarge, iter_csv_parts
from connectors.leads import Lead


def make_leads(n: int, *, start: int = 1, company: str = "Acme, Inc.") -> Iterator[Lead]:
    for i in range(start, start + n):
        yield Lead(
            email=f"person{i}@example.com",
            first_name="Ann",
            last_name=f"O'Neil {i}",
            company=company,
            custom_fields={"industry": "Retail", "city": 'Quote "City"'},
            source_id=f"00Q{i:012d}",
            row_number=i,
        )


def read_part(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_exactly_10000_rows_per_part() -> None:
    parts = list(iter_csv_parts(make_leads(25_000)))
    assert [p.row_count for p in parts] == [10_000, 10_000, 5_000]
    assert [p.index for p in parts] == [0, 1, 2]
    for part in parts:
        rows = read_part(part.data)
        assert len(rows) == part.row_count + 1
        assert len(part.rows) == part.row_count


def test_a_multiple_of_the_row_limit_yields_no_empty_part() -> None:
    assert [p.row_count for p in iter_csv_parts(make_leads(20_000))] == [10_000, 10_000]
    assert list(iter_csv_parts([])) == []


def test_header_values_and_row_identities() -> None:
    (part,) = iter_csv_parts(make_leads(3), custom_fields=["industry", "city", "missing"])
    rows = read_part(part.data)
    assert rows[0] == [
        "email",
        "first_name",
        "last_name",
        "company",
        "industry",
        "city",
        "missing",
        "crm_record_id",
    ]
    assert rows[2] == [
        "person2@example.com",
        "Ann",
        "O'Neil 2",
        "Acme, Inc.",
        "Retail",
        'Quote "City"',
        "",
        "00Q000000000002",
    ]
    assert part.mapping == {
        "email": "email",
        "first_name": "first_name",
        "last_name": "last_name",
        "company": "company",
        "industry": "industry",
        "city": "city",
        "missing": "missing",
    }
    # rows[i] is data row i + 1 of the file, as upload jobs number them.
    assert [(r.email, r.row_number, r.source_id) for r in part.rows][1] == (
        "person2@example.com",
        2,
        "00Q000000000002",
    )


def test_source_id_column_can_be_renamed_or_left_out() -> None:
    (part,) = iter_csv_parts(make_leads(1), source_id_column="sf_id")
    assert read_part(part.data)[0][-1] == "sf_id"
    (part,) = iter_csv_parts(make_leads(1), source_id_column=None)
    assert read_part(part.data)[0] == ["email", "first_name", "last_name", "company"]


def test_newlines_and_unicode_survive_the_round_trip() -> None:
    lead = Lead(
        email="zoe@example.com", first_name="Zoë", company="Line one\nLine two\r\n\u2028end"
    )
    (part,) = iter_csv_parts([lead])
    text = "Line one\nLine two\r\n\u2028end"
    assert read_part(part.data)[1][:4] == ["zoe@example.com", "Zoë", "", text]


@pytest.mark.parametrize("max_bytes", [300, 1_000, 4_096, 65_536])
def test_byte_limit_is_never_exceeded_and_no_row_is_lost(max_bytes: int) -> None:
    leads = list(make_leads(3_000, company="Ünïcode Cörp"))
    parts = list(iter_csv_parts(leads, max_bytes=max_bytes, custom_fields=["industry"]))
    assert all(len(p.data) <= max_bytes for p in parts)
    assert all(p.row_count > 0 for p in parts)
    emails = [row[0] for p in parts for row in read_part(p.data)[1:]]
    assert emails == [lead.email for lead in leads]
    assert [r.email for p in parts for r in p.rows] == emails
    if max_bytes >= 4_096:
        # Parts are filled, not cut early: each one would overflow with the next row.
        for part in parts[:-1]:
            assert len(part.data) > max_bytes - 200


def test_both_limits_together() -> None:
    parts = list(iter_csv_parts(make_leads(2_500), max_rows=1_000, max_bytes=50_000))
    assert all(p.row_count <= 1_000 and len(p.data) <= 50_000 for p in parts)
    assert sum(p.row_count for p in parts) == 2_500


def test_a_row_too_big_for_any_file_is_named() -> None:
    leads = [
        *make_leads(5),
        Lead(email="huge@example.com", company="x" * 5_000, source_id="00Qhuge", row_number=6),
    ]
    parts = iter_csv_parts(leads, max_bytes=2_000)
    with pytest.raises(
        UploadTooLarge, match=r"row 6 \(record 00Qhuge\) with email 'huge@example.com'"
    ):
        list(parts)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"custom_fields": ["email"]}, "'email'"),
        ({"custom_fields": ["industry", "Industry"]}, "'Industry'"),
        ({"custom_fields": ["custom_company"]}, "custom_company"),
        ({"custom_fields": [""]}, "non-empty"),
        ({"custom_fields": ["crm_record_id"]}, "crm_record_id"),
        ({"source_id_column": " "}, "blank"),
        ({"max_rows": 10_001}, "max_rows"),
        ({"max_rows": 0}, "max_rows"),
        ({"max_bytes": 50 * 1024 * 1024 + 1}, "max_bytes"),
    ],
)
def test_bad_settings_are_refused_before_reading(kwargs: dict[str, object], needle: str) -> None:
    def leads() -> Iterator[Lead]:
        raise AssertionError("no lead should be read")
        yield  # pragma: no cover

    with pytest.raises(InvalidRequestError) as caught:
        next(iter_csv_parts(leads(), **kwargs))  # type: ignore[arg-type]
    assert needle in str(caught.value)


def test_memory_is_bounded_by_one_part_not_by_the_lead_count() -> None:
    tracemalloc.start()
    try:
        total = 0
        for part in iter_csv_parts(make_leads(100_000), custom_fields=["industry"]):
            total += part.row_count
            del part
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 100_000
    # One part is ~1 MB of CSV plus 10,000 row identities (~2 MB); 100,000 leads held at
    # once would be well over 30 MB.
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_leads_are_consumed_lazily() -> None:
    consumed = 0

    def counting() -> Iterator[Lead]:
        nonlocal consumed
        for lead in make_leads(50_000):
            consumed += 1
            yield lead

    first = next(iter_csv_parts(counting()))
    assert first.row_count == 10_000
    assert consumed <= 10_000 + 512  # at most one encoding batch read ahead


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(_TEXT, _TEXT, _TEXT, _TEXT, st.one_of(st.none(), _TEXT)),
        min_size=1,
        max_size=30,
    ),
    st.integers(min_value=400, max_value=5_000),
)
def test_any_text_round_trips_through_the_parts(
    values: list[tuple[str, str, str, str, str | None]], max_bytes: int
) -> None:
    leads = [
        Lead(
            email=f"p{i}@example.com",
            first_name=a,
            last_name=b,
            company=c,
            custom_fields={"note": d},
            source_id=e,
        )
        for i, (a, b, c, d, e) in enumerate(values)
    ]
    try:
        parts = list(iter_csv_parts(leads, custom_fields=["note"], max_bytes=max_bytes))
    except UploadTooLarge:
        return  # a row over max_bytes; covered by its own test
    got = [row for p in parts for row in read_part(p.data)[1:]]
    want = [
        [x.email, x.first_name, x.last_name, x.company, x.custom_fields["note"], x.source_id or ""]
        for x in leads
    ]
    assert got == want
    assert all(len(p.data) <= max_bytes for p in parts)
