"""SheetsLeadSource through the real gspread against the loopback emulator."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.leads import FieldMapping, Lead, MappingError, Reject
from connectors.sheets import (
    NoHeaderError,
    SheetsConnection,
    SheetsLeadSource,
    SheetsNotFoundError,
    WorksheetNotFoundError,
)
from sandbox.sheets.fixtures import SheetsSandbox


def _read(conn: SheetsConnection, sid: str, **kwargs: Any) -> list[Lead | Reject]:
    return list(SheetsLeadSource(conn.client(), spreadsheet_id=sid, **kwargs).read())


def test_reads_leads_with_mapping_custom_fields_and_key(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "CRM",
        {
            "Intro": [["not this one"]],
            "My Leads": [
                ["Work Email", "Given", "Org", "Sector", "CRM Id"],
                ["Ann@Example.com ", "Ann", "Acme", "Retail", "L-1"],
                ["bob@example.org", "Bob", "", "", "L-2"],
            ],
        },
    )
    mapping = FieldMapping(
        email="Work Email", first_name="Given", company="Org", custom_fields={"industry": "Sector"}
    )
    source = SheetsLeadSource(
        conn.client(),
        spreadsheet_id=sid,
        worksheet="My Leads",
        mapping=mapping,
        key_column="CRM Id",
    )
    items = list(source.read())
    assert items == [
        Lead(
            email="ann@example.com",
            first_name="Ann",
            company="Acme",
            custom_fields={"industry": "Retail"},
            source_id="L-1",
            row_number=2,
        ),
        Lead(
            email="bob@example.org",
            first_name="Bob",
            custom_fields={"industry": ""},
            source_id="L-2",
            row_number=3,
        ),
    ]
    # One metadata call and one values call, whatever the sheet's size (below page_rows).
    assert source.requests == 2
    assert sheets_sandbox.stats()["total"] == 2


def test_default_mapping_uses_optional_columns_when_present(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S", {"Sheet1": [["email", "Last Name"], ["a@example.com", "Lovelace"]]}
    )
    assert _read(conn, sid) == [Lead(email="a@example.com", last_name="Lovelace", row_number=2)]


def test_blank_and_duplicate_headers_get_names_a_mapping_can_use(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S",
        {
            "Sheet1": [
                ["Email", "Name", "", "Name", " name "],
                ["a@example.com", "first", "blank-col", "second", "third"],
            ]
        },
    )
    mapping = FieldMapping(
        email="Email",
        first_name="Name",
        custom_fields={"c": "Column C", "n2": "Name (2)", "n3": "name (3)"},
    )
    (lead,) = _read(conn, sid, mapping=mapping)
    assert isinstance(lead, Lead)
    assert lead.first_name == "first"
    assert lead.custom_fields == {"c": "blank-col", "n2": "second", "n3": "third"}


def test_blank_rows_skipped_row_numbers_are_sheet_rows(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S",
        {
            "Sheet1": [
                ["Title of my list"],
                [],
                ["Email", "First Name"],
                ["a@example.com", "A"],
                [],
                ["", "  "],
                ["b@example.com", "B"],
            ]
        },
    )
    items = _read(conn, sid, header_row=3)
    assert [(i.email, i.row_number) for i in items] == [
        ("a@example.com", 4),
        ("b@example.com", 7),
    ]


def test_numbers_and_unicode_stay_text_as_shown(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S",
        {
            "Sheet1": [
                ["Email", "First Name", "Zip", "Score", "Big"],
                ["zoë@münchen.de", "Zoë 日本", "00123", 1e5, 12345678901234],
                ["jo@example.com", "Jo", "1e5", 2.5, True],
            ]
        },
    )
    mapping = FieldMapping(
        email="Email",
        first_name="First Name",
        custom_fields={"zip": "Zip", "score": "Score", "big": "Big"},
    )
    items = _read(conn, sid, mapping=mapping)
    # A non-ASCII local part is refused by the shared email rules; the name stays intact.
    assert isinstance(items[0], Reject)
    assert "non-ASCII" in items[0].reason
    assert items[1] == Lead(
        email="jo@example.com",
        first_name="Jo",
        custom_fields={"zip": "1e5", "score": "2.5", "big": "TRUE"},
        row_number=3,
    )
    sid2 = sheets_sandbox.create_spreadsheet(
        "S2",
        {"Sheet1": [["Email", "First Name", "Zip"], ["ann@bücher.de", "Zoë 日本", "00123"]]},
    )
    (lead,) = _read(
        conn,
        sid2,
        mapping=FieldMapping(email="Email", first_name="First Name", custom_fields={"zip": "Zip"}),
    )
    assert lead == Lead(
        email="ann@xn--bcher-kva.de",
        first_name="Zoë 日本",
        custom_fields={"zip": "00123"},
        row_number=2,
    )


def test_missing_email_column_is_a_clear_mapping_error_before_any_lead(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S", {"Leads": [["Contact", "Name"], ["a@example.com", "A"]]}
    )
    source = SheetsLeadSource(conn.client(), spreadsheet_id=sid, worksheet="Leads")
    with pytest.raises(MappingError) as info:
        next(iter(source.read()))
    message = str(info.value)
    assert "no email column" in message and "'Email'" in message
    assert "'Contact'" in message and "'Name'" in message
    assert "--map email=COLUMN" in message
    with pytest.raises(MappingError, match="'CRM Id'"):
        _read(
            conn,
            sid,
            worksheet="Leads",
            mapping=FieldMapping(email="Contact"),
            key_column="CRM Id",
        )


def test_header_only_sheet_yields_nothing(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Sheet1": [["Email", "First Name"]]})
    assert _read(conn, sid) == []


def test_empty_sheet_and_blank_header_are_clear_errors(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S", {"Empty": [], "Blank": [["", " "], ["a@example.com"]]}
    )
    with pytest.raises(NoHeaderError, match=r"'Empty'.*is empty"):
        _read(conn, sid, worksheet="Empty")
    with pytest.raises(NoHeaderError, match=r"blank header row \(row 1\)"):
        _read(conn, sid, worksheet=1)


def test_invalid_and_duplicate_emails_are_rejects_with_row_numbers(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S",
        {
            "Sheet1": [
                ["Email"],
                ["a@example.com"],
                ["not-an-email"],
                [""],
                ["A@EXAMPLE.COM"],
                ["b@example"],
            ]
        },
    )
    items = _read(conn, sid)
    assert isinstance(items[0], Lead)
    rejects = [(i.row_number, i.reason) for i in items if isinstance(i, Reject)]
    assert [r for r, _ in rejects] == [3, 5, 6]
    assert "not-an-email" in rejects[0][1]
    assert "duplicate" in rejects[1][1] and "row 2" in rejects[1][1]
    assert "domain" in rejects[2][1]


def test_unknown_worksheet_and_spreadsheet(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": [["Email"]], "Other": []})
    with pytest.raises(WorksheetNotFoundError, match=r"'Nope'.*'Leads', 'Other'"):
        _read(conn, sid, worksheet="Nope")
    with pytest.raises(WorksheetNotFoundError, match="index 5"):
        _read(conn, sid, worksheet=5)
    with pytest.raises(SheetsNotFoundError) as info:
        _read(conn, "missing-spreadsheet")
    assert info.value.status == 404 and info.value.google_status == "NOT_FOUND"


def test_quoted_sheet_titles_work(sheets_sandbox: SheetsSandbox, conn: SheetsConnection) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S", {"Ann's leads! 2024": [["Email"], ["a@example.com"]]}
    )
    assert [i.email for i in _read(conn, sid, worksheet="Ann's leads! 2024")] == ["a@example.com"]


def test_large_sheet_is_read_in_pages(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    rows: list[list[Any]] = [["Email", "First Name"]]
    rows += [[f"user{i}@example.com", f"U{i}"] for i in range(2_500)]
    rows[1200] = []  # a blank row on a page boundary region
    sid = sheets_sandbox.create_spreadsheet("Big", {"Sheet1": rows})
    source = SheetsLeadSource(conn.client(), spreadsheet_id=sid, page_rows=1000)
    items = list(source.read())
    assert len(items) == 2_499
    assert all(isinstance(i, Lead) for i in items)
    assert items[-1].row_number == 2_501
    assert items[1199].row_number == 1_202  # row 1201 was blank
    # metadata + ceil(2501 / 1000) pages (the grid has exactly 2501 rows)
    assert source.requests == 1 + 3


def test_blank_rows_across_a_page_end_do_not_end_the_read(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    rows: list[list[Any]] = [["Email"], ["a@example.com"], [], [], [], [], ["b@example.com"]]
    sid = sheets_sandbox.create_spreadsheet("S", {"Sheet1": rows})
    sheets_sandbox.client().open_by_key(sid).sheet1.resize(rows=9)
    source = SheetsLeadSource(conn.client(), spreadsheet_id=sid, page_rows=2)
    items = list(source.read())
    assert [(i.email, i.row_number) for i in items if isinstance(i, Lead)] == [
        ("a@example.com", 2),
        ("b@example.com", 7),
    ]
    assert source.requests == 1 + 4  # metadata, rows 1-3, 4-5, 6-7, 8-9


def test_header_row_below_the_grid_is_no_header_not_an_api_error(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Sheet1": [["Email"], ["a@example.com"]]})
    sheets_sandbox.client().open_by_key(sid).sheet1.resize(rows=3)
    with pytest.raises(NoHeaderError, match="is empty"):
        _read(conn, sid, header_row=5)
