"""SheetsStatusSink through the real gspread against the loopback emulator."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.leads import LeadStatus, MappingError, StatusUpdate, WriteFailure
from connectors.sheets import SheetsConnection, SheetsStatusSink, StatusColumns
from sandbox.sheets.fixtures import SheetsSandbox

S = LeadStatus
HEADERS = [
    "ColdSend Status",
    "ColdSend Opened",
    "ColdSend Replied",
    "ColdSend Unsubscribed",
    "ColdSend Bounced",
]


def _sink(conn: SheetsConnection, sid: str, **kwargs: Any) -> SheetsStatusSink:
    kwargs.setdefault("worksheet", "Leads")
    return SheetsStatusSink(conn.client(), spreadsheet_id=sid, **kwargs)


def test_write_back_adds_headers_and_writes_only_changes_in_one_read_one_write(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S",
        {
            "Leads": [
                ["Email", "Name"],
                ["a@example.com", "A"],
                ["b@example.com", "B"],
                ["c@example.com", "C"],
                ["d@example.com", "D"],
            ]
        },
    )
    sink = _sink(conn, sid)
    result = sink.write_statuses(
        [
            StatusUpdate("A@Example.com", S.REPLIED),
            StatusUpdate("c@example.com", S.SENT),
            StatusUpdate("ghost@example.com", S.SENT),
            StatusUpdate("not an email", S.SENT),
        ]
    )
    assert (result.received, result.written, result.unchanged, result.held_back) == (4, 2, 0, 0)
    assert result.not_found == ["ghost@example.com"]
    assert result.failures == [WriteFailure(key="not an email", reason="invalid email")]
    assert result.balanced
    assert result.requests == 2
    stats = sheets_sandbox.stats()
    assert stats["total"] == 2
    assert stats["GET /v4/spreadsheets/{id}/values/{range}"] == 1
    assert stats["POST /v4/spreadsheets/{id}/values:batchUpdate"] == 1
    values = sheets_sandbox.values(sid, "Leads")
    assert values[0] == ["Email", "Name", *HEADERS]
    assert values[1] == ["a@example.com", "A", "REPLIED", "TRUE", "TRUE", "FALSE", "FALSE"]
    assert values[2] == ["b@example.com", "B"]  # untouched
    assert values[3] == ["c@example.com", "C", "SENT", "FALSE", "FALSE", "FALSE", "FALSE"]
    assert values[4] == ["d@example.com", "D"]
    writes = sheets_sandbox.writes()
    assert {w["request"] for w in writes} == {1}
    assert all(w["valueInputOption"] == "RAW" for w in writes)
    # Only changed cells are sent: 5 headers + 5 cells on each of two rows.
    assert sum(w["cells"] for w in writes) == 15


def test_second_write_back_makes_no_write_request(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S", {"Leads": [["Email"], ["a@example.com"], ["b@example.com"]]}
    )
    sink = _sink(conn, sid)
    updates = [StatusUpdate("a@example.com", S.OPENED), StatusUpdate("b@example.com", S.BOUNCED)]
    first = sink.write_statuses(updates)
    assert first.written == 2
    sheets_sandbox.reset_stats()
    second = sink.write_statuses(updates)
    assert (second.written, second.unchanged, second.requests) == (0, 2, 1)
    assert sheets_sandbox.stats() == {"total": 1, "GET /v4/spreadsheets/{id}/values/{range}": 1}
    assert len({w["request"] for w in sheets_sandbox.writes()}) == 1


def test_statuses_never_move_backwards_and_flags_stay_true(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S",
        {
            "Leads": [
                ["Email", *HEADERS],
                ["a@example.com", "REPLIED", "TRUE", "TRUE", "FALSE", "FALSE"],
                ["b@example.com", "unsubscribed", "FALSE", "FALSE", "TRUE", "FALSE"],
                ["c@example.com", "REPLIED", "TRUE", "TRUE", "FALSE", "FALSE"],
                ["d@example.com", "SENT"],
            ]
        },
    )
    result = _sink(conn, sid).write_statuses(
        [
            StatusUpdate("a@example.com", S.SENT),  # late SENT: REPLIED stays
            StatusUpdate("b@example.com", S.OPENED),  # final status stays
            StatusUpdate("c@example.com", S.UNSUBSCRIBED),  # final status wins
            StatusUpdate("d@example.com", S.OPENED),
        ]
    )
    assert (result.written, result.held_back, result.unchanged) == (2, 2, 0)
    values = sheets_sandbox.values(sid, "Leads")
    assert values[1][1] == "REPLIED"
    assert values[2][1] == "unsubscribed"
    # Replied stays TRUE after the unsubscribe; Unsubscribed turns TRUE.
    assert values[3][1:] == ["UNSUBSCRIBED", "TRUE", "TRUE", "TRUE", "FALSE"]
    assert values[4][1:] == ["OPENED", "TRUE", "FALSE", "FALSE", "FALSE"]


def test_formula_looking_values_stay_text(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S", {"Leads": [["Email", "Status"], ["a@example.com", "=HYPERLINK(1)"]]}
    )
    columns = StatusColumns(status="Status", opened="=cmd|' /C calc'!A0", replied=None)
    _sink(conn, sid, columns=columns).write_statuses([StatusUpdate("a@example.com", S.SENT)])
    values = sheets_sandbox.values(sid, "Leads")
    # The new header starting with "=" is stored as a plain string, not a formula object.
    assert values[0][2] == "=cmd|' /C calc'!A0"
    assert isinstance(values[0][2], str)
    assert values[1][1] == "SENT"
    assert [w["valueInputOption"] for w in sheets_sandbox.writes()] == ["RAW"]


def test_match_by_key_column_with_source_id(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S", {"Leads": [["Id", "Email"], ["L-1", "a@example.com"], ["L-2", "b@example.com"]]}
    )
    sink = _sink(
        conn,
        sid,
        match_by="Id",
        match_value="source_id",
        columns=StatusColumns(opened=None, replied=None, unsubscribed=None, bounced=None),
    )
    result = sink.write_statuses(
        [
            StatusUpdate("b@example.com", S.SENT, source_id="L-2"),
            StatusUpdate("x@example.com", S.SENT),
        ]
    )
    assert result.written == 1
    assert result.failures == []
    assert result.not_found == ["x@example.com"]
    assert sheets_sandbox.values(sid, "Leads")[2] == ["L-2", "b@example.com", "SENT"]


def test_missing_match_column_is_a_clear_error(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": [["Mail"], ["a@example.com"]]})
    with pytest.raises(MappingError, match=r"'Email'.*Available: 'Mail'"):
        _sink(conn, sid).write_statuses([StatusUpdate("a@example.com", S.SENT)])
    assert sheets_sandbox.writes() == []


def test_no_updates_makes_no_request(sheets_sandbox: SheetsSandbox, conn: SheetsConnection) -> None:
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": [["Email"]]})
    result = _sink(conn, sid).write_statuses([])
    assert result.requests == 0
    assert sheets_sandbox.stats()["total"] == 0


def test_full_grid_is_grown_before_adding_status_columns(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    header = [f"H{i}" for i in range(25)] + ["Email"]  # 26 columns fill the A:Z grid
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": [header, [""] * 25 + ["a@example.com"]]})
    result = _sink(conn, sid).write_statuses([StatusUpdate("a@example.com", S.SENT)])
    assert result.written == 1
    assert result.requests == 4  # values read + metadata + grid resize + values write
    info = sheets_sandbox.sheet_info(sid, "Leads")
    assert info["columnCount"] == 31
    assert info["values"][1][26] == "SENT"
    # Next time the columns exist: back to one read and one write.
    again = _sink(conn, sid).write_statuses([StatusUpdate("a@example.com", S.REPLIED)])
    assert again.requests == 2


def test_worksheet_by_index_and_rows_sharing_an_email(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S", {"First": [["Email"], ["a@example.com"], ["b@example.com"], ["A@example.com"]]}
    )
    result = _sink(conn, sid, worksheet=0).write_statuses([StatusUpdate("a@example.com", S.SENT)])
    assert (result.received, result.written) == (1, 1)
    assert result.requests == 3  # metadata for the index, values read, values write
    values = sheets_sandbox.values(sid, "First")
    assert values[1][1] == "SENT" and values[3][1] == "SENT"
    assert values[2] == ["b@example.com"]


def _shrink_grid(box: SheetsSandbox, sid: str, rows: int, cols: int = 26) -> None:
    """Give the Leads worksheet a grid of `rows` x `cols` (new sheets get at least 1000 x 26)."""
    box.client().open_by_key(sid).worksheet("Leads").resize(rows=rows, cols=cols)
    box.reset_stats()


VALUES_GET = "GET /v4/spreadsheets/{id}/values/{range}"
METADATA = "GET /v4/spreadsheets/{id}"
VALUES_WRITE = "POST /v4/spreadsheets/{id}/values:batchUpdate"


def test_paged_read_misses_no_row_after_blank_rows_across_a_page_boundary(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    # page_rows=4: the first read asks for rows 1-6 (header, 4 rows, one more to see whether the
    # grid ends there), then 7-10 and 11-14. Rows 4-8 are blank: the first page comes back with
    # 3 rows only, which must not be taken for the end of the sheet.
    rows: list[list[Any]] = [
        ["Email", "Name"],
        ["a@example.com", "A"],
        ["b@example.com", "B"],
        [],
        [],
        [],
        [],
        [],
        ["c@example.com", "C"],
        ["d@example.com", "D"],
        [],
        ["A@example.com", "A again"],  # the same key as row 2, two pages later
        ["e@example.com", "E", "", "", "", "", "", "wide"],  # the widest row, on the last page
        ["f@example.com", "F"],
    ]
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": rows})
    _shrink_grid(sheets_sandbox, sid, rows=14)
    result = _sink(conn, sid, page_rows=4).write_statuses(
        [
            StatusUpdate("a@example.com", S.OPENED),
            StatusUpdate("c@example.com", S.SENT),
            StatusUpdate("f@example.com", S.BOUNCED),
            StatusUpdate("ghost@example.com", S.SENT),
        ]
    )
    assert (result.received, result.written, result.unchanged) == (4, 3, 0)
    assert result.not_found == ["ghost@example.com"]
    assert result.balanced
    # 3 pages, 1 metadata read (the grid reaches past the first read), 1 write.
    assert result.requests == 5
    stats = sheets_sandbox.stats()
    assert (stats[VALUES_GET], stats[METADATA], stats[VALUES_WRITE]) == (3, 1, 1)
    values = sheets_sandbox.values(sid, "Leads")
    # New columns start right of the widest row (H), although it is on the last page.
    assert values[0] == ["Email", "Name", "", "", "", "", "", "", *HEADERS]
    pad = [""] * 6
    assert values[1] == ["a@example.com", "A", *pad, "OPENED", "TRUE", "FALSE", "FALSE", "FALSE"]
    assert values[2] == ["b@example.com", "B"]
    assert values[8] == ["c@example.com", "C", *pad, "SENT", "FALSE", "FALSE", "FALSE", "FALSE"]
    assert values[9] == ["d@example.com", "D"]
    assert values[11][8:] == ["OPENED", "TRUE", "FALSE", "FALSE", "FALSE"]
    assert values[12] == ["e@example.com", "E", "", "", "", "", "", "wide"]
    assert values[13][8:] == ["BOUNCED", "FALSE", "FALSE", "FALSE", "TRUE"]
    # One write request: the header block, and one block per run of changed rows.
    assert {w["request"] for w in sheets_sandbox.writes()} == {1}


@pytest.mark.parametrize(
    ("grid_rows", "requests", "reads", "metadata"),
    [
        (6, 2, 1, 0),  # header_row + page_rows rows: the read's range shows the grid ends there
        (7, 3, 1, 1),  # the first read reaches the grid's end exactly: metadata tells
        (8, 4, 2, 1),  # one row more: metadata, then a second page
    ],
)
def test_request_budget_around_one_page(
    sheets_sandbox: SheetsSandbox,
    conn: SheetsConnection,
    grid_rows: int,
    requests: int,
    reads: int,
    metadata: int,
) -> None:
    rows: list[list[Any]] = [["Email"]] + [[] for _ in range(grid_rows - 2)] + [["z@example.com"]]
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": rows})
    _shrink_grid(sheets_sandbox, sid, rows=grid_rows)
    result = _sink(conn, sid, page_rows=5).write_statuses([StatusUpdate("z@example.com", S.SENT)])
    assert result.written == 1 and result.not_found == []
    assert result.requests == requests
    stats = sheets_sandbox.stats()
    assert (stats[VALUES_GET], stats.get(METADATA, 0), stats[VALUES_WRITE]) == (reads, metadata, 1)
    assert sheets_sandbox.values(sid, "Leads")[grid_rows - 1][1] == "SENT"


def test_paged_read_of_a_tab_index_uses_the_metadata_it_already_read(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    rows: list[list[Any]] = [["Email"]] + [[f"u{i}@example.com"] for i in range(12)]
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": rows})
    _shrink_grid(sheets_sandbox, sid, rows=13)
    result = _sink(conn, sid, worksheet=0, page_rows=5).write_statuses(
        [StatusUpdate("u0@example.com", S.SENT), StatusUpdate("u11@example.com", S.SENT)]
    )
    assert result.written == 2
    # metadata (title and grid size), rows 1-6, 7-11, 12-13, then the write
    assert result.requests == 5
    values = sheets_sandbox.values(sid, "Leads")
    assert values[1][1] == "SENT" and values[12][1] == "SENT"


def test_full_grid_found_on_a_later_page_is_grown_with_the_metadata_already_read(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    rows: list[list[Any]] = [["Email"]] + [[f"u{i}@example.com"] for i in range(8)]
    rows.append(["u8@example.com"] + [""] * 24 + ["last column"])  # fills A:Z, on page 2
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": rows})
    _shrink_grid(sheets_sandbox, sid, rows=10)
    result = _sink(conn, sid, page_rows=4).write_statuses([StatusUpdate("u1@example.com", S.SENT)])
    assert result.written == 1
    # rows 1-6, metadata, rows 7-10, grid resize, write: no second metadata read for the resize
    assert result.requests == 5
    info = sheets_sandbox.sheet_info(sid, "Leads")
    assert info["columnCount"] == 31
    assert info["values"][0][26:] == HEADERS
    assert info["values"][2][26:] == ["SENT", "FALSE", "FALSE", "FALSE", "FALSE"]


def test_rows_above_a_lower_header_count_for_where_new_columns_go(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    rows: list[list[Any]] = [
        ["Report", "", "", "generated today"],
        ["Email", "Name"],
        ["a@example.com", "A"],
        [],
        [],
        ["b@example.com", "B"],
    ]
    sid = sheets_sandbox.create_spreadsheet("S", {"Leads": rows})
    _shrink_grid(sheets_sandbox, sid, rows=6)
    result = _sink(conn, sid, header_row=2, page_rows=1).write_statuses(
        [StatusUpdate("a@example.com", S.SENT), StatusUpdate("b@example.com", S.SENT)]
    )
    assert result.written == 2
    # rows 1-4, metadata, rows 5, 6, write
    assert result.requests == 5
    values = sheets_sandbox.values(sid, "Leads")
    assert values[1] == ["Email", "Name", "", "", *HEADERS]
    assert values[5][4] == "SENT"


def test_page_rows_must_be_positive(conn: SheetsConnection) -> None:
    with pytest.raises(ValueError, match="page_rows must be >= 1"):
        _sink(conn, "sid", page_rows=0)


def test_status_columns_apart_and_out_of_order_get_only_their_cells(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = sheets_sandbox.create_spreadsheet(
        "S",
        {
            "Leads": [
                ["Email", "ColdSend Bounced", "Notes", "ColdSend Status"],
                ["a@example.com", "FALSE", "keep me", "SENT"],
                ["b@example.com", "", "keep me too"],
            ]
        },
    )
    result = _sink(conn, sid).write_statuses(
        [StatusUpdate("a@example.com", S.REPLIED), StatusUpdate("b@example.com", S.BOUNCED)]
    )
    assert result.written == 2 and result.requests == 2
    values = sheets_sandbox.values(sid, "Leads")
    assert values[0] == [
        "Email",
        "ColdSend Bounced",
        "Notes",
        "ColdSend Status",
        "ColdSend Opened",
        "ColdSend Replied",
        "ColdSend Unsubscribed",
    ]
    assert values[1] == ["a@example.com", "FALSE", "keep me", "REPLIED", "TRUE", "TRUE", "FALSE"]
    assert values[2] == [
        "b@example.com",
        "TRUE",
        "keep me too",
        "BOUNCED",
        "FALSE",
        "FALSE",
        "FALSE",
    ]
    # Notes (C) is inside the written range but sent as null; row 2's B did not change.
    assert sum(w["cells"] for w in sheets_sandbox.writes()) == 3 + 4 + 5
