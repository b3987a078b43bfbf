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
